//! Pages for people in a browser (issue 11). The `web` module renders them;
//! the host finds who is signed in ([`SignedIn`]), picks the language, hands
//! the forms their CSRF token, gathers what a page shows from the other
//! modules (progress, quiz), and adds the headers every page carries.
//! Without a `web` module in the bundle the pages answer 503 (the JSON API
//! works on). The pages' static files come from the active module set
//! ([`asset`]).
//!
//! Language: the `lang` query parameter, else the person's saved choice,
//! else the `lms_lang` cookie (the switch sets it before sign-in), else the
//! browser's Accept-Language, else the node's `default_language`.

pub mod coach;
pub mod content;
mod learner;
mod shared;
pub(crate) use shared::escape;

pub use learner::{catalog, course, home, launch, lesson, progress, quiz, quiz_submit};

use super::AppState;
use super::auth::User;
use super::error::ApiError;
use super::learner::{Call, answer, respond, run};
use super::session::{CSRF_COOKIE, FORM_MAX, cookie, double_submit_ok, form, same, see_other, session_of, set_cookie};
use crate::roster::sessions::Session;
use axum::extract::{FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The cookie that keeps the language chosen before signing in.
pub const LANGUAGE_COOKIE: &str = "lms_lang";

/// Languages pages come in; `default_language` is one of them.
pub const LANGUAGES: [&str; 2] = ["zh-CN", "en"];

/// Sent with every page: nothing from outside the node, no inline script,
/// no framing, no sniffing. Content packages' own pages (issue 13) are
/// served from elsewhere and can never script these.
pub const PAGE_HEADERS: &[(&str, &str)] = &[
    ("content-type", "text/html; charset=utf-8"),
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
];

/// The page language: `?lang=` (the switch on every page), else the
/// browser's Accept-Language (by q), else the node's default.
pub fn language(query: Option<&str>, headers: &HeaderMap, default: &str) -> String {
    if let Some(l) = query.and_then(pick) {
        return l.to_string();
    }
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    crate::xapi::canonical::accepted(accept).iter().find_map(|t| pick(t)).unwrap_or(default).to_string()
}

/// The page language a language tag asks for, if it is one of ours.
fn pick(tag: &str) -> Option<&'static str> {
    let t = tag.trim().to_ascii_lowercase();
    if t.starts_with("zh") {
        Some("zh-CN")
    } else if t == "en" || t.starts_with("en-") {
        Some("en")
    } else {
        None
    }
}

fn is_language(l: &str) -> bool {
    LANGUAGES.contains(&l)
}

/// The language of a page request (see the module docs for the order).
fn page_language(node: &AppState, query: Option<&str>, headers: &HeaderMap, saved: Option<&str>) -> String {
    choose_language(query, headers, saved, &node.cfg.default_language)
}

/// [`page_language`] with the node's default given.
fn choose_language(query: Option<&str>, headers: &HeaderMap, saved: Option<&str>, default: &str) -> String {
    let q = super::query_pairs(query).unwrap_or_default();
    let asked = q.iter().find(|(k, _)| k == "lang").map(|(_, v)| v.as_str());
    let cookie_lang = cookie(headers, LANGUAGE_COOKIE);
    let chosen = saved.filter(|l| is_language(l)).or(cookie_lang.as_deref().filter(|l| is_language(l)));
    // A `?lang=` that is none of ours is as if there were none.
    match (asked.and_then(pick), chosen) {
        (Some(l), _) => l.to_string(),
        (None, Some(l)) => l.to_string(),
        (None, None) => language(None, headers, default),
    }
}

fn valid_token(t: &str) -> bool {
    (16..=64).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The person a page is for. A request without a live session (none,
/// expired, ended or tampered with) is sent to the sign-in page.
pub struct SignedIn {
    pub session: Session,
    pub language: String,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, node: &AppState) -> Result<SignedIn, Response> {
        let session = match session_of(node, &parts.headers).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(see_other("/login")),
            Err(e) => return Err(e.into_response()),
        };
        let language = page_language(node, parts.uri.query(), &parts.headers, session.language.as_deref());
        Ok(SignedIn { session, language })
    }
}

impl SignedIn {
    /// The person as a user of the API: their own records only.
    pub fn user(&self) -> User {
        User::signed_in(self.session.person.clone())
    }

    pub fn id(&self) -> &str {
        &self.session.person.id
    }

    /// Refuses (403) a form of `what` whose `csrf` field is not this
    /// session's token: stale, or sent from another site.
    fn form_token(&self, what: &str, sent: Option<&str>) -> Result<(), ApiError> {
        if same(&self.session.csrf, sent.unwrap_or("")) {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!("csrf: the {what} form is stale or came from another site; reload it")))
    }

    /// A call of the web module's page `op`, with the person in the body.
    fn page(&self, op: &'static str) -> Call {
        let p = &self.session.person;
        let mut call = Call::new("web", op);
        call.language = Some(self.language.clone());
        call.csrf = Some(self.session.csrf.clone());
        call.body = Some(person_body(p));
        call
    }
}

/// A web call's body for a page `p` is signed in to: `{person: {id, name, role}}`.
fn person_body(p: &crate::roster::Person) -> Value {
    serde_json::json!({"person": {"id": p.id, "name": p.name, "role": p.role.as_str()}})
}

/// A page's answer: the page, or the response that stops it (a module's
/// error, a redirect, an API error), already final.
pub(super) type Page = Result<Response, Response>;

pub(super) fn fail(e: ApiError) -> Response {
    e.into_response()
}

/// Runs `call` and sends its answer as it is.
pub(super) async fn show(node: &AppState, s: &SignedIn, call: Call) -> Page {
    let resp = answer(node, &s.user(), call).await.map_err(fail)?;
    respond(resp).map_err(fail)
}

/// Runs `call` for the JSON a page needs; a module's error stops the page.
pub(super) async fn data(node: &AppState, s: &SignedIn, call: Call) -> Result<Value, Response> {
    let resp = answer(node, &s.user(), call).await.map_err(fail)?;
    if !(200..300).contains(&resp.status) {
        return Err(respond(resp).unwrap_or_else(fail));
    }
    serde_json::from_str(resp.body.get()).map_err(|e| fail(ApiError::Unavailable(format!("module answer: {e}"))))
}

/// Adds `key: value` to a page call's body.
pub(super) fn with(mut call: Call, key: &str, value: Value) -> Call {
    if let Some(Value::Object(b)) = call.body.as_mut() {
        b.insert(key.into(), value);
    }
    call
}

/// Middleware of the page routes: an error answer (JSON from `ApiError`)
/// becomes a page in the person's language with the same status, so a
/// person never sees JSON. If the page cannot be rendered (no `web` module)
/// the JSON answer goes out as it was.
pub async fn html_errors(State(node): State<AppState>, req: Request, next: axum::middleware::Next) -> Response {
    let headers = req.headers().clone();
    let (path, query) = (req.uri().path().to_string(), req.uri().query().map(str::to_string));
    let resp = next.run(req).await;
    let json = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if resp.status().as_u16() < 400 || !json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let original = || Response::from_parts(parts.clone(), axum::body::Body::from(bytes.clone()));
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_default();
    let session = session_of(&node, &headers).await.ok().flatten();
    let mut call = Call::new("web", "error_page");
    call.query.insert("status".into(), parts.status.as_u16().to_string());
    call.query.insert("message".into(), message);
    call.query.insert("path".into(), local_path(Some(&path)).to_string());
    call.language =
        Some(page_language(&node, query.as_deref(), &headers, session.as_ref().and_then(|s| s.language.as_deref())));
    let user = match &session {
        Some(s) => {
            let p = &s.person;
            call.csrf = Some(s.csrf.clone());
            call.body = Some(person_body(p));
            User::signed_in(p.clone())
        }
        None => {
            call.csrf = Some(login_token(&headers));
            User::anonymous()
        }
    };
    match answer(&node, &user, call).await {
        Ok(r) if r.status == 200 && r.html.is_some() => match respond(r) {
            Ok(mut page) => {
                *page.status_mut() = parts.status;
                page
            }
            Err(_) => original(),
        },
        _ => original(),
    }
}

/// GET /login: the sign-in form, with the double-submit CSRF cookie.
pub async fn login_page(
    State(node): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = super::query_pairs(raw.as_deref())?;
    let language = page_language(&node, raw.as_deref(), &headers, None);
    let csrf = login_token(&headers);
    let mut call = Call::new("web", "login_page");
    if let Some((_, v)) = q.iter().find(|(k, _)| k == "error") {
        call.query.insert("error".into(), v.clone());
    }
    call.language = Some(language);
    call.csrf = Some(csrf.clone());
    let mut resp = run(&node, &User::anonymous(), call).await?;
    set_cookie(
        &mut resp,
        cookie::Cookie::build((CSRF_COOKIE, csrf)).path("/").http_only(true).same_site(cookie::SameSite::Lax).build(),
    );
    Ok(resp)
}

/// The sign-in form's double-submit token: the browser's, or a new one.
fn login_token(headers: &HeaderMap) -> String {
    cookie(headers, CSRF_COOKIE).filter(|t| valid_token(t)).unwrap_or_else(|| crate::roster::sessions::random_token(24))
}

/// A path of this node to come back to: `/...`, never `//host` or a scheme.
fn local_path(next: Option<&String>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains(['\\', '\r', '\n']) && n.len() <= 512 => n,
        _ => "/",
    }
}

/// POST /language (form: `csrf`, `lang`, `next`): the language switch on
/// every page. Signed in, the choice is saved with the person (the form
/// carries the session's token); before sign-in it is kept in a cookie
/// (the form carries the sign-in page's token). Then back to `next`.
pub async fn set_language(State(node): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let tls = req.extensions().get::<crate::server::OverTls>().is_some();
    let headers = req.headers().clone();
    let f = form(req, FORM_MAX).await?;
    let lang = f.get("lang").map(String::as_str).unwrap_or("");
    if !is_language(lang) {
        return Err(ApiError::field("invalid_field", "lang", format!("lang: {lang:?} is not one of {LANGUAGES:?}")));
    }
    let sent = f.get("csrf").map(String::as_str).unwrap_or("");
    match &session_of(&node, &headers).await? {
        Some(s) if same(&s.csrf, sent) => {
            let (id, l) = (s.person.id.clone(), lang.to_string());
            node.roster(move |r| r.set_language(&id, &l)).await?;
            if let Some(token) = cookie(&headers, super::session::SESSION_COOKIE) {
                node.sessions.forget(&token);
            }
        }
        None if double_submit_ok(&headers, sent) => {}
        _ => return Err(ApiError::Forbidden("csrf: the language form is stale or came from another site".into())),
    }
    let mut resp = see_other(local_path(f.get("next")));
    set_cookie(
        &mut resp,
        cookie::Cookie::build((LANGUAGE_COOKIE, lang.to_string()))
            .path("/")
            .same_site(cookie::SameSite::Lax)
            .secure(tls)
            .max_age(cookie::time::Duration::days(365))
            .build(),
    );
    Ok(resp)
}

/// GET /static/{file}: a static file of the active module set, by its
/// content-hashed name, cacheable for a year (a changed file is a new name).
pub async fn asset(State(node): State<AppState>, Path(file): Path<String>, headers: HeaderMap) -> Response {
    let set = match node.current() {
        Ok(s) => s,
        Err(reason) => return ApiError::Unavailable(format!("modules not ready: {reason}")).into_response(),
    };
    let Some(a) = set.asset(&file) else {
        return ApiError::NotFound(format!("no static file {file:?} in the active modules")).into_response();
    };
    let etag = format!("\"{}\"", a.sha256);
    let matches = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(&etag));
    let mut resp = if matches { StatusCode::NOT_MODIFIED.into_response() } else { a.bytes.clone().into_response() };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_by_query_then_browser_then_default() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_LANGUAGE, axum::http::HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(language(Some("en"), &h("zh-CN"), "zh-CN"), "en");
        assert_eq!(language(None, &h("en-US,en;q=0.9,zh;q=0.8"), "zh-CN"), "en");
        assert_eq!(language(None, &h("fr;q=1, zh-TW;q=0.5, en;q=0.2"), "en"), "zh-CN");
        assert_eq!(language(None, &h("fr, de"), "en"), "en");
        assert_eq!(language(None, &HeaderMap::new(), "zh-CN"), "zh-CN");
        assert_eq!(language(Some("xx"), &h("en;q=0"), "zh-CN"), "zh-CN");
    }

    #[test]
    fn page_language_asked_then_saved_then_cookie_then_browser() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("en"));
        assert_eq!(choose_language(Some("lang=zh-CN"), &h, Some("en"), "en"), "zh-CN");
        assert_eq!(choose_language(Some("lang=xx"), &h, Some("zh-CN"), "en"), "zh-CN", "a bad ?lang is ignored");
        assert_eq!(choose_language(None, &h, None, "zh-CN"), "en");
        h.insert(header::COOKIE, HeaderValue::from_static("lms_lang=zh-CN"));
        assert_eq!(choose_language(None, &h, None, "en"), "zh-CN");
        assert_eq!(choose_language(None, &h, Some("en"), "zh-CN"), "en", "the saved choice beats the cookie");
    }
}
