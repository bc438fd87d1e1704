//! Statement requests and answers with attachments: `multipart/mixed`
//! (xAPI 2.0 Part Three §1.5.2; 1.0.3 Communication §1.5.2). The first part
//! is the JSON, each later part one attachment's raw bytes under its
//! `X-Experience-API-Hash`. What the parts must match is `xapi::attachments`.

use crate::http::error::ApiError;
use crate::http::{AppState, JsonBody, body_bytes};
use crate::xapi::attachments::{self, Part};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The body of a statement PUT or POST: JSON, or multipart/mixed with the
/// attachment parts (each already checked against its hash).
pub struct StatementBody {
    pub json: Value,
    pub parts: Vec<Part>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::field("malformed_multipart", "body", message)
}

impl FromRequest<AppState> for StatementBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let Some(boundary) = mixed_boundary(&ct)? else {
            let JsonBody(json) = JsonBody::from_request(req, state).await?;
            return Ok(StatementBody { json, parts: Vec::new() });
        };
        read(body_bytes(req, state).await?, boundary).await
    }
}

/// The boundary of a `multipart/mixed` Content-Type; None for another type.
fn mixed_boundary(content_type: &str) -> Result<Option<String>, ApiError> {
    let Ok(m) = content_type.parse::<mime::Mime>() else { return Ok(None) };
    if m.type_() != mime::MULTIPART || !m.subtype().as_str().eq_ignore_ascii_case("mixed") {
        return Ok(None);
    }
    m.get_param(mime::BOUNDARY)
        .map(|b| Some(b.as_str().to_string()))
        .ok_or_else(|| bad("a multipart/mixed Content-Type needs a boundary parameter"))
}

async fn read(bytes: Bytes, boundary: String) -> Result<StatementBody, ApiError> {
    let stream = futures_once(bytes);
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut json = None;
    let mut parts = Vec::new();
    let mut n = 0usize;
    while let Some(field) = multipart.next_field().await.map_err(|e| bad(format!("part {}: {e}", n + 1)))? {
        n += 1;
        let name = format!("part {n}");
        let content_type = field.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        if n == 1 {
            let essence = content_type.as_deref().unwrap_or("").split(';').next().unwrap_or("").trim().to_string();
            if !essence.eq_ignore_ascii_case("application/json") {
                return Err(bad(format!(
                    "part 1 must be the statements as application/json, not {}",
                    content_type.as_deref().unwrap_or("a part without a Content-Type")
                )));
            }
            let body = field.bytes().await.map_err(|e| bad(format!("{name}: {e}")))?;
            json = Some(
                serde_json::from_slice(&body)
                    .map_err(|e| ApiError::bad("malformed_json", format!("part 1 (the statements): {e}")))?,
            );
            continue;
        }
        if let Some(enc) = field.headers().get("content-transfer-encoding") {
            let enc = enc.to_str().unwrap_or("(not text)");
            if !enc.trim().eq_ignore_ascii_case("binary") {
                return Err(bad(format!("{name}: Content-Transfer-Encoding is {enc:?}; attachment parts are binary")));
            }
        }
        let hash = field.headers().get("x-experience-api-hash").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = field.bytes().await.map_err(|e| bad(format!("{name}: {e}")))?;
        let part = attachments::part(&name, hash.as_deref(), content_type.as_deref().unwrap_or(""), body)?;
        parts.push(part);
    }
    let json = json.ok_or_else(|| bad("the multipart body has no parts: part 1 must be the statements"))?;
    Ok(StatementBody { json, parts })
}

/// One chunk as the stream multer reads.
fn futures_once(bytes: Bytes) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::once(async move { Ok(bytes) })
}

/// A `multipart/mixed` answer: the JSON, then each attachment.
pub fn response(json: String, parts: &[Part]) -> Response {
    let (content_type, body) = attachments::multipart(&json, parts);
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], Body::from(body)).into_response()
}
