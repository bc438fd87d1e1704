//! The LRS under /xapi, one module per resource as the standard lays them
//! out (xAPI 2.0 Part Three §2; 1.0.3 §7): statements, the three document
//! resources, agents and activities, and about. This module holds what they
//! share: the version header, query parameters, the agent parameter, HTTP
//! dates.

pub mod activities;
pub mod alternate;
pub mod documents;
pub mod multipart;
pub mod statements;

use crate::http::error::ApiError;
use crate::xapi::{ifi_key, validate};
use axum::Json;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const VERSION_HEADER: &str = "x-experience-api-version";

/// The xAPI version a request named (`X-Experience-API-Version`): 1.0.0 to
/// 1.0.3, or 2.0.x. Its answer carries the same; statements stored without
/// a `version` get this version's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(String);

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let ok = match s.strip_prefix("2.0.") {
            Some(patch) => !patch.is_empty() && patch.len() <= 4 && patch.bytes().all(|b| b.is_ascii_digit()),
            None => matches!(s, "1.0.0" | "1.0.1" | "1.0.2" | "1.0.3"),
        };
        ok.then(|| Version(s.to_string()))
    }

    pub fn latest() -> Version {
        Version(crate::xapi::XAPI_VERSION.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_1_0(&self) -> bool {
        self.0.starts_with("1.0")
    }

    /// Which edition's rules its statements follow.
    pub fn spec(&self) -> validate::Spec {
        if self.is_1_0() { validate::Spec::V1 } else { validate::Spec::V2 }
    }
}

/// Every /xapi request except /xapi/about must name a version we speak;
/// anything else is 400 naming the header. The answer carries the request's
/// version (about without one: 2.0.0).
pub async fn version_header(mut req: Request, next: Next) -> Response {
    let is_about = req.uri().path() == "/xapi/about";
    let sent = req.headers().get(VERSION_HEADER).map(|v| v.to_str().unwrap_or("(not text)").to_string());
    let version = match (sent, is_about) {
        (Some(v), about) => match Version::parse(&v) {
            Some(version) => version,
            None if about => Version::latest(),
            None => {
                return with_version(
                    ApiError::field(
                        "unsupported_version",
                        "X-Experience-API-Version",
                        format!(
                            "X-Experience-API-Version {:?} is not supported: send 1.0.0-1.0.3 or 2.0.x",
                            v.chars().take(40).collect::<String>()
                        ),
                    )
                    .into_response(),
                    &Version::latest(),
                );
            }
        },
        (None, true) => Version::latest(),
        (None, false) => {
            return with_version(
                ApiError::field(
                    "missing_version",
                    "X-Experience-API-Version",
                    "the X-Experience-API-Version header is required (1.0.3 or 2.0.0)",
                )
                .into_response(),
                &Version::latest(),
            );
        }
    };
    req.extensions_mut().insert(version.clone());
    with_version(next.run(req).await, &version)
}

pub(super) fn with_version(mut resp: Response, v: &Version) -> Response {
    if let Ok(h) = HeaderValue::from_str(v.as_str()) {
        resp.headers_mut().insert(VERSION_HEADER, h);
    }
    resp
}

/// CORS for the LRS: content served from another origin (a CDN, a content
/// server, a package opened from elsewhere) calls it with the credential its
/// launch gave it, in an `Authorization` header it sets itself. Any origin
/// may, and preflights are answered; but `Access-Control-Allow-Credentials`
/// is never sent, so a browser never attaches the node's session cookie to
/// another origin's request: a page elsewhere cannot act as the learner who
/// is signed in here.
pub fn cors() -> tower_http::cors::CorsLayer {
    use axum::http::{Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let version = axum::http::HeaderName::from_static(VERSION_HEADER);
    let consistent = axum::http::HeaderName::from_static("x-experience-api-consistent-through");
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::HEAD, Method::PUT, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            version.clone(),
        ])
        .expose_headers([header::ETAG, header::LAST_MODIFIED, header::CONTENT_TYPE, version, consistent])
        .max_age(std::time::Duration::from_secs(600))
}

pub async fn about() -> Json<Value> {
    Json(json!({"version": ["1.0.3", crate::xapi::XAPI_VERSION]}))
}

/// A resource's query parameters by name: an unknown or repeated one is 400
/// naming it.
pub fn params(raw: Option<&str>, known: &[&str]) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for (k, v) in crate::http::query_pairs(raw)? {
        if !known.contains(&k.as_str()) {
            return Err(ApiError::field("invalid_query", k.clone(), format!("unknown parameter {k:?}")));
        }
        if out.insert(k.clone(), v).is_some() {
            return Err(ApiError::field("invalid_query", k.clone(), format!("parameter {k:?} given twice")));
        }
    }
    Ok(out)
}

/// The `agent` (or other `name`) parameter: an Agent or identified Group as
/// JSON, checked as a statement's actor is; returns it and its IFI key.
pub fn agent_param(value: &str, name: &str) -> Result<(Value, String), ApiError> {
    let agent: Value = serde_json::from_str(value)
        .map_err(|e| ApiError::field("invalid_param", name, format!("{name} must be an Agent as JSON: {e}")))?;
    validate::actor(&agent, name).map_err(|e| ApiError::field("invalid_param", e.field.clone(), e.to_string()))?;
    let key = ifi_key(&agent).ok_or_else(|| {
        ApiError::field(
            "invalid_param",
            name,
            format!("{name} must have an identifier (mbox, mbox_sha1sum, openid or account)"),
        )
    })?;
    Ok((agent, key))
}

/// An IRI parameter (activityId, verb, activity).
pub fn iri_param(value: &str, name: &str) -> Result<String, ApiError> {
    if validate::is_iri(value) {
        Ok(value.to_string())
    } else {
        Err(ApiError::field("invalid_param", name, format!("{name} {value:?} is not an absolute IRI")))
    }
}

/// The store's `stored` form (UTC, microseconds) as an HTTP date
/// (`Last-Modified`), or None when it does not parse.
pub fn http_date(stored: &str) -> Option<String> {
    let t = validate::parse_timestamp(stored)?;
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.to_offset(time::UtcOffset::UTC).format(&f).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_1_0_0_to_1_0_3_and_2_0_x_are_spoken() {
        for ok in ["1.0.0", "1.0.1", "1.0.2", "1.0.3", "2.0.0", "2.0.1"] {
            assert!(Version::parse(ok).is_some(), "{ok}");
        }
        for bad in ["1.0.4", "1.0", "1.1.0", "2.0", "2.0.", "2.0.x", "3.0.0", "", "0.95"] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(Version::parse("1.0.3").unwrap().spec().statement_default(), "1.0.0");
        assert_eq!(Version::parse("2.0.0").unwrap().spec().statement_default(), "2.0.0");
    }

    #[test]
    fn http_dates_are_rfc_7231() {
        assert_eq!(http_date("2026-03-04T05:06:07.123456Z").as_deref(), Some("Wed, 04 Mar 2026 05:06:07 GMT"));
    }
}
