//! Pages for people in a browser (issue 11). The `web` module renders them;
//! the host picks the language, hands the forms their CSRF token, and adds
//! the headers every page carries. Without a `web` module in the bundle the
//! pages answer 503 (the JSON API works on).

use super::AppState;
use super::auth::User;
use super::error::ApiError;
use super::learner::{Call, run};
use super::scopes::Scopes;
use super::session::{CSRF_COOKIE, SESSION_COOKIE, cookie, see_other, set_cookie};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;

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
    let pick = |tag: &str| {
        let t = tag.trim().to_ascii_lowercase();
        if t.starts_with("zh") {
            Some("zh-CN")
        } else if t == "en" || t.starts_with("en-") {
            Some("en")
        } else {
            None
        }
    };
    if let Some(l) = query.and_then(pick) {
        return l.to_string();
    }
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut tags: Vec<(f32, &str)> = accept
        .split(',')
        .take(20)
        .filter_map(|part| {
            let mut it = part.split(';');
            let tag = it.next()?.trim();
            let q = it.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.parse().ok()).unwrap_or(1.0);
            Some((q, tag))
        })
        .collect();
    tags.sort_by(|a, b| b.0.total_cmp(&a.0));
    tags.iter().filter(|(q, _)| *q > 0.0).find_map(|(_, t)| pick(t)).unwrap_or(default).to_string()
}

/// The language of a page request: its `lang` parameter, the browser's, the node's.
fn page_language(node: &AppState, q: &[(String, String)], headers: &HeaderMap) -> String {
    let lang = q.iter().find(|(k, _)| k == "lang").map(|(_, v)| v.as_str());
    language(lang, headers, &node.cfg.default_language)
}

fn valid_token(t: &str) -> bool {
    (16..=64).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// GET /login: the sign-in form, with the double-submit CSRF cookie.
pub async fn login_page(
    State(node): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = super::query_pairs(raw.as_deref())?;
    let language = page_language(&node, &q, &headers);
    let csrf = cookie(&headers, CSRF_COOKIE)
        .filter(|t| valid_token(t))
        .unwrap_or_else(|| crate::roster::sessions::random_token(24));
    let mut call = Call::new("web", "login_page");
    if let Some((_, v)) = q.iter().find(|(k, _)| k == "error") {
        call.query.insert("error".into(), v.clone());
    }
    call.language = Some(language);
    call.csrf = Some(csrf.clone());
    let anonymous = User { name: "anonymous".into(), scopes: Scopes::none(), person: None };
    let mut resp = run(&node, &anonymous, call).await?;
    set_cookie(
        &mut resp,
        cookie::Cookie::build((CSRF_COOKIE, csrf)).path("/").http_only(true).same_site(cookie::SameSite::Lax).build(),
    );
    Ok(resp)
}

/// GET /: the signed-in person's home; without a session, the sign-in page.
pub async fn home(
    State(node): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let Some(token) = cookie(&headers, SESSION_COOKIE) else { return Ok(see_other("/login")) };
    let Some(session) = node.roster(move |r| r.session(&token)).await? else { return Ok(see_other("/login")) };
    let q = super::query_pairs(raw.as_deref())?;
    let mut call = Call::new("web", "home");
    call.language = Some(page_language(&node, &q, &headers));
    call.csrf = Some(session.csrf.clone());
    let p = &session.person;
    call.body = Some(serde_json::json!({"person": {"id": p.id, "name": p.name, "role": p.role.as_str()}}));
    let user = User { name: p.id.clone(), scopes: Scopes::none(), person: Some(session.person.clone()) };
    run(&node, &user, call).await
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
}
