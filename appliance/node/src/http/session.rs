//! Browser sign-in (issue 11): `POST /login` and `POST /logout`, the
//! session cookie, and the middleware that lets /v1 take a browser session
//! as well as a client credential.
//!
//! - `POST /login` (form: `username`, `password`, `csrf`): the `csrf` field
//!   must equal the `lms_csrf` cookie (double submit; the sign-in page sets
//!   it), so another site cannot sign a browser in as someone else. The
//!   password goes through the same bounded check as client credentials
//!   (`Auth::check_hash`: unknown people cost a bcrypt like known ones,
//!   failures per address back off). Success: 303 to `/` with the session
//!   cookie (`lms_session`, HttpOnly, SameSite=Lax, Secure over TLS).
//!   Failure: 303 to `/login?error=signin`, the same for a wrong password
//!   and an unknown person.
//! - `POST /logout` (form: `csrf`, the session's token): ends the session.
//! - Cookies are parsed and written with the `cookie` crate.

use super::AppState;
use super::auth::{User, Verdict, client_addr};
use super::error::ApiError;
use crate::roster::sessions::Session;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

pub const SESSION_COOKIE: &str = "lms_session";
pub const CSRF_COOKIE: &str = "lms_csrf";
/// Longest form a sign-in, sign-out or language switch may post.
pub(crate) const FORM_MAX: usize = 4096;

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

pub(super) fn set_cookie(resp: &mut Response, c: cookie::Cookie<'_>) {
    if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn session_cookie(value: String, max_age: std::time::Duration, tls: bool) -> cookie::Cookie<'static> {
    cookie::Cookie::build((SESSION_COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .secure(tls)
        .max_age(cookie::time::Duration::seconds(max_age.as_secs() as i64))
        .build()
}

pub(super) fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(header::LOCATION, HeaderValue::from_str(to).expect("a plain path"));
    r
}

/// A form-encoded body of at most `max` bytes, as fields.
pub(super) async fn form(req: Request, max: usize) -> Result<HashMap<String, String>, ApiError> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(ApiError::UnsupportedMediaType(ct.chars().take(100).collect()));
    }
    let bytes = axum::body::to_bytes(req.into_body(), max).await.map_err(|_| ApiError::PayloadTooLarge(max))?;
    serde_urlencoded::from_bytes(&bytes).map_err(|e| ApiError::bad("malformed_form", format!("form: {e}")))
}

/// Constant-time comparison of two tokens.
pub(super) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The live session of the request's cookie; None without one, or when it
/// is unknown, expired, ended or tampered with.
pub(super) async fn session_of(node: &AppState, headers: &HeaderMap) -> Result<Option<Session>, ApiError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    if let Some(s) = node.sessions.get(&token) {
        return Ok(Some(s));
    }
    let key = token.clone();
    let found = node.roster(move |r| r.session(&token)).await?;
    if let Some(s) = &found {
        node.sessions.put(key, s.clone());
    }
    Ok(found)
}

/// How long a session read from the roster is reused. A roster change made
/// elsewhere (`lms-node roster` removing a person, a new role) reaches a
/// signed-in page within this time; sign-out and the language switch on
/// this node apply at once.
pub const SESSION_REUSE: std::time::Duration = std::time::Duration::from_secs(5);

/// Live sessions recently read from the roster, by cookie token, so a page
/// costs no roster query (three SQLite reads behind one connection) while a
/// class works.
pub struct SessionCache {
    cache: quick_cache::sync::Cache<String, (Session, std::time::Instant)>,
}

impl Default for SessionCache {
    fn default() -> Self {
        SessionCache { cache: quick_cache::sync::Cache::new(10_000) }
    }
}

impl SessionCache {
    fn get(&self, token: &str) -> Option<Session> {
        let (s, read) = self.cache.get(token)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        (read.elapsed() < SESSION_REUSE && s.expires > now).then_some(s)
    }

    fn put(&self, token: String, s: Session) {
        self.cache.insert(token, (s, std::time::Instant::now()));
    }

    /// Forgets the session of `token` (signed out, or changed).
    pub fn forget(&self, token: &str) {
        self.cache.remove(token);
    }
}

/// The double-submit check of forms posted before sign-in: `sent` equals
/// the `lms_csrf` cookie the sign-in page set.
pub(super) fn double_submit_ok(headers: &HeaderMap, sent: &str) -> bool {
    cookie(headers, CSRF_COOKIE).is_some_and(|e| e.len() >= 16 && same(&e, sent))
}

pub async fn login(State(node): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let from = client_addr(&req);
    let tls = req.extensions().get::<crate::server::OverTls>().is_some();
    let headers = req.headers().clone();
    let f = form(req, FORM_MAX).await?;
    if !double_submit_ok(&headers, f.get("csrf").map(String::as_str).unwrap_or("")) {
        return Err(ApiError::Forbidden("csrf: the sign-in form is stale or came from another site; reload it".into()));
    }
    let (Some(username), Some(password)) = (f.get("username"), f.get("password")) else {
        return Err(ApiError::bad("missing_field", "username and password are required"));
    };
    let id = username.trim().to_string();
    let known = if crate::roster::check_id(&id).is_ok() {
        let lookup = id.clone();
        node.roster(move |r| r.credentials(&lookup)).await?.map(|(_, hash)| hash)
    } else {
        None
    };
    match node.auth.check_hash(&format!("person:{id}"), known, password, from, crate::roster::BCRYPT_COST).await {
        Verdict::Valid => {}
        Verdict::Invalid => {
            tracing::info!(person = %id, from = ?from, "sign-in refused");
            return Ok(see_other("/login?error=signin"));
        }
        other => super::auth::verdict(other, from).map(|_| ())?,
    }
    let ttl = node.cfg.session_ttl;
    let person = id.clone();
    let token = node.roster(move |r| r.start_session(&person, ttl)).await?;
    tracing::info!(person = %id, "signed in");
    let mut resp = see_other("/");
    set_cookie(&mut resp, session_cookie(token, ttl, tls));
    set_cookie(
        &mut resp,
        cookie::Cookie::build((CSRF_COOKIE, "")).path("/").max_age(cookie::time::Duration::ZERO).build(),
    );
    Ok(resp)
}

pub async fn logout(State(node): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let tls = req.extensions().get::<crate::server::OverTls>().is_some();
    let Some(token) = cookie(req.headers(), SESSION_COOKIE) else { return Ok(see_other("/login")) };
    let headers = req.headers().clone();
    let f = form(req, FORM_MAX).await?;
    let Some(session) = session_of(&node, &headers).await? else { return Ok(see_other("/login")) };
    if !same(&session.csrf, f.get("csrf").map(String::as_str).unwrap_or("")) {
        return Err(ApiError::Forbidden("csrf: the sign-out form is stale or came from another site".into()));
    }
    node.sessions.forget(&token);
    node.roster(move |r| r.end_session(&token)).await?;
    let mut resp = see_other("/login");
    set_cookie(&mut resp, session_cookie(String::new(), std::time::Duration::ZERO, tls));
    Ok(resp)
}

/// Middleware for /v1: a client credential (Basic) or a browser session.
/// With a session the request acts for that person only (see the handlers).
pub async fn require_client_or_session(
    State(node): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let from = client_addr(&req);
    let launch =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| node.launches.grant(v));
    let user = if let Some(grant) = launch {
        // A cmi5 AU's token: its actor, registration and activity only.
        User::launched(grant)
    } else if req.headers().contains_key(header::AUTHORIZATION) {
        super::auth::client(&node.auth, req.headers(), from).await?
    } else if cookie(req.headers(), SESSION_COOKIE).is_some() {
        User::signed_in(session_of(&node, req.headers()).await?.ok_or(ApiError::SignInRequired)?.person)
    } else if req.headers().contains_key("sec-fetch-mode") {
        // A browser (they all send Sec-Fetch-*): no Basic challenge.
        return Err(ApiError::SignInRequired);
    } else {
        return Err(ApiError::Unauthorized);
    };
    req.extensions_mut().insert(user);
    Ok(next.run(req).await)
}
