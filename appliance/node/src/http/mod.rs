//! The HTTP surface: the public router (learners, xAPI clients, probes) and
//! the admin router (reload; loopback or unix socket only), with the
//! extractors and middleware they share.

pub mod auth;
pub mod error;
mod learner;
mod ops;
pub mod pages;
pub mod scopes;
pub mod session;
mod xapi;

use crate::node::Node;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use error::ApiError;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

pub type AppState = Arc<Node>;

/// Routes learners and clients reach.
pub fn public_router(node: AppState) -> Router {
    // xAPI 1.0.3's Alternate Request Syntax changes a request's method, so it
    // runs before routing: around the whole router (axum's layers run after).
    let routed =
        tower::Layer::layer(&middleware::from_fn_with_state(node.clone(), xapi::alternate::rewrite), routes(node));
    Router::new().fallback_service(routed)
}

fn routes(node: AppState) -> Router {
    let v1 = Router::new()
        .route("/v1/courses", get(learner::courses))
        .route("/v1/courses/{course}", get(learner::course))
        .route("/v1/courses/{course}/lessons/{lesson}", get(learner::lesson))
        .route("/v1/quizzes/{quiz}", get(learner::quiz))
        .route("/v1/quizzes/{quiz}/attempts", post(learner::attempt))
        .route("/v1/learners/{learner}/progress", get(learner::progress))
        .route("/v1/sync/status", get(ops::public_sync_status))
        .route_layer(middleware::from_fn_with_state(node.clone(), session::require_client_or_session));
    let xapi_authed = Router::new()
        .route(
            "/xapi/statements",
            get(xapi::statements::get_statements)
                .put(xapi::statements::put_statement)
                .post(xapi::statements::post_statements),
        )
        .route(
            "/xapi/activities/state",
            get(xapi::documents::state)
                .put(xapi::documents::state)
                .post(xapi::documents::state)
                .delete(xapi::documents::state),
        )
        .route(
            "/xapi/activities/profile",
            get(xapi::documents::activity_profile)
                .put(xapi::documents::activity_profile)
                .post(xapi::documents::activity_profile)
                .delete(xapi::documents::activity_profile),
        )
        .route(
            "/xapi/agents/profile",
            get(xapi::documents::agent_profile)
                .put(xapi::documents::agent_profile)
                .post(xapi::documents::agent_profile)
                .delete(xapi::documents::agent_profile),
        )
        .route("/xapi/activities", get(xapi::activities::activity))
        .route("/xapi/agents", get(xapi::activities::agents))
        .route_layer(middleware::from_fn_with_state(node.clone(), session::require_client_or_session));
    let xapi = Router::new()
        .route("/xapi/about", get(xapi::about))
        .merge(xapi_authed)
        .route_layer(middleware::from_fn(xapi::version_header))
        .method_not_allowed_fallback(method_not_allowed)
        // After the fallback, so a preflight (OPTIONS) meets CORS first.
        .layer(xapi::cors());
    // The cmi5 fetch URL: POSTed by an AU from the content origin, so
    // cross-origin like /xapi (never with cookies).
    let cmi5 = Router::new().route("/cmi5/fetch/{id}", post(crate::content::cmi5::fetch)).layer(xapi::cors());
    // What people open in a browser: errors come back as pages.
    let pages = Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/language", post(pages::set_language))
        .route("/courses", get(pages::catalog))
        .route("/courses/{course}", get(pages::course))
        .route("/courses/{course}/lessons/{lesson}", get(pages::lesson))
        .route("/courses/{course}/launch/{unit}", post(pages::launch))
        .route("/quizzes/{quiz}", get(pages::quiz).post(pages::quiz_submit))
        .route("/progress", get(pages::progress))
        .route("/coach", get(pages::coach::classes))
        .route("/coach/classes/{class}", get(pages::coach::class))
        .route("/coach/classes/{class}/csv", get(pages::coach::class_csv))
        .route("/coach/learners/{learner}", get(pages::coach::learner))
        .route("/coach/learners/{learner}/waive", post(pages::coach::waive))
        .route("/roster", get(pages::coach::roster_page))
        .route("/content/packages", get(pages::content::page).post(pages::content::upload))
        .route_layer(middleware::from_fn_with_state(node.clone(), pages::html_errors));
    Router::new()
        .merge(pages)
        .route("/static/{file}", get(pages::asset))
        .route("/media/{course}/{tag}/{*path}", get(crate::content::serve::media))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::public_readyz))
        .route("/metrics", get(ops::metrics))
        .merge(v1)
        .method_not_allowed_fallback(method_not_allowed)
        // Merged after the line above, which would replace its CORS-wrapped fallback.
        .merge(xapi)
        .merge(cmi5)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(node.cfg.max_body_bytes))
        .layer(middleware::from_fn_with_state(node.clone(), deadline))
        .layer(middleware::from_fn_with_state(node.clone(), observe))
        .layer(middleware::from_fn_with_state(node.clone(), in_flight))
        .with_state(node)
}

/// Ends a request (its body upload included) that runs past
/// `request_timeout`, so a client trickling a body cannot hold a
/// connection slot for long.
async fn deadline(axum::extract::State(node): axum::extract::State<AppState>, req: Request, next: Next) -> Response {
    let limit = node.cfg.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => axum::response::IntoResponse::into_response(ApiError::Timeout(limit)),
    }
}

/// Routes only the operator (and lms-updater) reaches.
pub fn admin_router(node: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/admin/reload", post(ops::reload))
        .route("/admin/status", get(ops::status))
        .route("/admin/content/packages", post(crate::content::upload::add_package))
        .route("/admin/cmi5/launch-url", post(crate::content::cmi5::launch_url))
        .route("/admin/cmi5/waive", post(crate::content::cmi5::waive_admin))
        .route("/v1/sync/status", get(ops::sync_status))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(node.clone(), observe))
        .with_state(node)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Counts a public request in `Node::in_flight` until it is answered (or
/// dropped): sync paces its drain by it.
async fn in_flight(axum::extract::State(node): axum::extract::State<AppState>, req: Request, next: Next) -> Response {
    struct Guard<'a>(&'a std::sync::atomic::AtomicUsize);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    node.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _guard = Guard(&node.in_flight);
    next.run(req).await
}

/// Records latency and status per route template (never per raw path, so
/// learner ids do not explode the series count).
async fn observe(axum::extract::State(node): axum::extract::State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    node.metrics.request(method.as_str(), &route, resp.status().as_u16(), start.elapsed());
    resp
}

/// A JSON request body, within the size limit; errors are JSON 4xx.
pub struct JsonBody(pub serde_json::Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        // A browser may send text/plain (or a form) cross-site without a
        // preflight, with Basic credentials it has cached: only a JSON type
        // is a request a program meant to make.
        let ct = req.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedMediaType(if ct.is_empty() {
                "none".into()
            } else {
                ct.chars().take(100).collect()
            }));
        }
        let bytes = body_bytes(req, state).await?;
        if bytes.is_empty() {
            return Err(ApiError::bad("malformed_json", "body: expected JSON, got an empty body"));
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| ApiError::bad("malformed_json", format!("body: {e}")))
    }
}

/// A request's whole body, within `max_body_bytes` (413 beyond it, 400 when
/// it cannot be read).
pub async fn body_bytes(req: Request, state: &AppState) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(state.cfg.max_body_bytes)
        } else {
            ApiError::bad("unreadable_body", e.body_text())
        }
    })
}

/// Path parameters by name; malformed ones are a JSON 400.
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|p| Params(p.0))
            .map_err(|e| ApiError::bad("invalid_path", e.body_text()))
    }
}

impl Params {
    pub fn get(&self, k: &str) -> String {
        self.0.get(k).cloned().unwrap_or_default()
    }
}

/// Query parameters in order; malformed encoding is a JSON 400.
pub fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or(""))
        .map_err(|e| ApiError::bad("invalid_query", format!("query string: {e}")))
}
