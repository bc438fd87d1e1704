//! xAPI 1.0.3's Alternate Request Syntax (Communication §1.3): a client that
//! can only POST a form and set no headers (old browsers' cross-domain
//! requests) sends `POST ...?method=PUT` with a form body carrying the
//! headers (`Authorization`, `X-Experience-API-Version`, `Content-Type`,
//! `If-Match`, `If-None-Match`), the body as `content`, and the resource's
//! parameters. It is rebuilt into the request it stands for before
//! anything else sees it. xAPI 2.0 removed the syntax: a request naming
//! 2.0 gets 400.
//!
//! A form POST is what a page on another site can make a browser send, so
//! the rebuilt request never carries the browser's cookies: only the
//! credentials the client put in the form or its own headers count.

use super::{VERSION_HEADER, Version, with_version};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Form fields that are headers of the request they stand for.
const HEADER_FIELDS: [&str; 6] =
    ["authorization", "x-experience-api-version", "content-type", "content-length", "if-match", "if-none-match"];

pub async fn rewrite(State(node): State<AppState>, req: Request, next: Next) -> Response {
    let query = match req.uri().query() {
        Some(q) if req.uri().path().starts_with("/xapi/") => {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok().filter(|p| p.iter().any(|(k, _)| k == "method"))
        }
        _ => None,
    };
    let Some(query) = query else { return next.run(req).await };
    match rebuild(&node, req, query).await {
        Ok(req) => next.run(req).await,
        Err(e) => with_version(e.into_response(), &Version::parse("1.0.3").expect("1.0.3")),
    }
}

fn refuse(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::field("alternate_syntax", field, message)
}

/// The request `req` stands for; `query` is its query string, which names `method`.
async fn rebuild(node: &AppState, req: Request, query: Vec<(String, String)>) -> Result<Request, ApiError> {
    if req.method() != Method::POST {
        return Err(refuse(
            "method",
            format!("the Alternate Request Syntax (method=) is sent as POST, not {}", req.method()),
        ));
    }
    if let Some((extra, _)) = query.iter().find(|(k, _)| k != "method") {
        return Err(refuse(
            extra,
            format!("with method= the query string holds nothing else: send {extra:?} as a form field"),
        ));
    }
    // Every pair is a `method` now, and there is at least one.
    let method = match query[0].1.to_ascii_uppercase().as_str() {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        "PUT" => Method::PUT,
        "POST" => Method::POST,
        "DELETE" => Method::DELETE,
        other => return Err(refuse("method", format!("method={other:?}: send GET, HEAD, PUT, POST or DELETE"))),
    };
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(refuse(
            "Content-Type",
            format!("the Alternate Request Syntax's body is a form (application/x-www-form-urlencoded), not {ct:?}"),
        ));
    }
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let mut headers = std::mem::take(&mut parts.headers);
    for h in [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::COOKIE] {
        headers.remove(h);
    }
    // Outside the routes' body limit layer: the same limit, applied here.
    let body = axum::body::to_bytes(body, node.cfg.max_body_bytes).await.map_err(|e| {
        if e.into_inner().is::<http_body_util::LengthLimitError>() {
            ApiError::PayloadTooLarge(node.cfg.max_body_bytes)
        } else {
            ApiError::bad("unreadable_body", "the form body could not be read")
        }
    })?;
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| refuse("body", format!("the form body is not application/x-www-form-urlencoded: {e}")))?;
    let (mut params, mut content) = (Vec::new(), None);
    for (k, v) in form {
        let lower = k.to_ascii_lowercase();
        if lower == "content" {
            content = Some(v);
        } else if HEADER_FIELDS.contains(&lower.as_str()) {
            if lower == "content-length" {
                continue; // the rebuilt body has its own length
            }
            let value =
                HeaderValue::from_str(&v).map_err(|_| refuse(&k, format!("form field {k} is not a header value")))?;
            headers.insert(HeaderName::from_bytes(lower.as_bytes()).expect("a known header name"), value);
        } else {
            params.push((k, v));
        }
    }
    if let Some(v) = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok())
        && Version::parse(v).is_some_and(|v| !v.is_1_0())
    {
        return Err(refuse(
            "X-Experience-API-Version",
            format!("the Alternate Request Syntax is xAPI 1.0.3's; {v} removed it: send the request itself"),
        ));
    }
    if matches!(method, Method::PUT | Method::POST) && content.is_none() {
        return Err(refuse("content", format!("method={method} needs the body in a form field named content")));
    }
    if content.is_some() && !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    let uri = match params.is_empty() {
        true => path,
        false => format!("{path}?{}", serde_urlencoded::to_string(&params).unwrap_or_default()),
    };
    parts.method = method;
    parts.uri = uri.parse::<Uri>().map_err(|e| refuse("body", format!("the form's parameters: {e}")))?;
    parts.headers = headers;
    Ok(Request::from_parts(parts, Body::from(content.unwrap_or_default())))
}
