//! The document resources over HTTP (xAPI 2.0 Part Three §2.6–2.8; 1.0.3
//! §7.4–7.6): `/xapi/activities/state`, `/xapi/activities/profile`,
//! `/xapi/agents/profile`. GET one document (with its content type, a quoted
//! ETag and Last-Modified; 304 on a matching If-None-Match) or the ids
//! (`since`); PUT; POST merges JSON objects; DELETE one, or every state of
//! an activity + agent (+ registration). The rules they share are in
//! [`crate::xapi::documents`].

use super::{agent_param, http_date, iri_param, params};
use crate::http::AppState;
use crate::http::auth::User;
use crate::http::error::ApiError;
use crate::http::learner::learner_actor;
use crate::xapi::documents::{Change, Kind, Place, Precondition, Write, is_json};
use crate::xapi::validate::{is_uuid, parse_timestamp};
use crate::xapi::{format_stored, ifi_key};
use axum::Extension;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::BTreeMap;

pub async fn state(
    State(node): State<AppState>,
    Extension(user): Extension<User>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    document(Kind::State, &node, &user, method, &headers, raw.as_deref(), body).await
}

pub async fn activity_profile(
    State(node): State<AppState>,
    Extension(user): Extension<User>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    document(Kind::ActivityProfile, &node, &user, method, &headers, raw.as_deref(), body).await
}

pub async fn agent_profile(
    State(node): State<AppState>,
    Extension(user): Extension<User>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    document(Kind::AgentProfile, &node, &user, method, &headers, raw.as_deref(), body).await
}

fn known(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::State => &["activityId", "agent", "registration", "stateId", "since"],
        Kind::ActivityProfile => &["activityId", "profileId", "since"],
        Kind::AgentProfile => &["agent", "profileId", "since"],
    }
}

fn required<'a>(p: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, ApiError> {
    p.get(name).map(String::as_str).ok_or_else(|| ApiError::field("missing_param", name, format!("{name} is required")))
}

/// The place a request names, from its parameters.
fn place_of(kind: Kind, p: &BTreeMap<String, String>) -> Result<Place, ApiError> {
    let activity = match kind {
        Kind::AgentProfile => String::new(),
        _ => iri_param(required(p, "activityId")?, "activityId")?,
    };
    let agent = match kind {
        Kind::ActivityProfile => String::new(),
        _ => agent_param(required(p, "agent")?, "agent")?.1,
    };
    let registration = match p.get("registration") {
        Some(r) if is_uuid(r) => Some(r.to_ascii_lowercase()),
        Some(r) => return Err(ApiError::field("invalid_param", "registration", format!("{r:?} is not a UUID"))),
        None => None,
    };
    Ok(Place { kind, activity, agent, registration })
}

/// Who may read or write a place's documents. A client credential by its
/// scopes: `state` for states, `profile` for both profiles, `all`; `all/read`
/// reads. A signed-in person reaches their own agent's states and agent
/// profile, and reads activity profiles; anything else is 403 and logged.
/// (Issue 10's per-launch tokens come in here: one actor, one registration,
/// one activity.)
fn may(node: &AppState, user: &User, place: &Place, id: Option<&str>, write: bool) -> Result<(), ApiError> {
    if let Some(g) = &user.launch {
        return crate::content::cmi5::may_document(g, place, id, write);
    }
    let Some(person) = &user.person else {
        let s = user.scopes;
        let allowed = match place.kind {
            Kind::State => s.has_state(),
            _ => s.has_profile(),
        } || (!write && s.reads_operations());
        let what = format!("{} {}", if write { "write" } else { "read" }, place.kind.as_str().replace('_', " "));
        return user.may(allowed, &format!("{what} documents"));
    };
    let own = ifi_key(&learner_actor(node, &person.id)).unwrap_or_default();
    let allowed = match place.kind {
        Kind::ActivityProfile => !write,
        _ => place.agent == own,
    };
    if allowed {
        return Ok(());
    }
    tracing::warn!(person = %person.id, kind = place.kind.as_str(), agent = %place.agent, write, "refused: a document that is not the person's own");
    Err(ApiError::Forbidden(format!(
        "{} may reach only their own {} documents",
        person.id,
        if place.kind == Kind::ActivityProfile { "(and read activity profile)" } else { "agent's" }
    )))
}

/// ETags of an If-Match / If-None-Match header, without quotes (`*` kept).
fn etags(headers: &HeaderMap, name: header::HeaderName) -> Option<Vec<String>> {
    let values: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    if values.is_empty() {
        return None;
    }
    Some(
        values
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().trim_start_matches("W/").trim_matches('"').to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect(),
    )
}

async fn document(
    kind: Kind,
    node: &AppState,
    user: &User,
    method: Method,
    headers: &HeaderMap,
    raw: Option<&str>,
    body: Body,
) -> Result<Response, ApiError> {
    let p = params(raw, known(kind))?;
    let place = place_of(kind, &p)?;
    let id_name = kind.id_param();
    let id = p.get(id_name).cloned();
    if id.as_deref() == Some("") {
        return Err(ApiError::field("invalid_param", id_name, format!("{id_name} must not be empty")));
    }
    let since = match p.get("since") {
        None => None,
        Some(_) if id.is_some() || method != Method::GET => {
            return Err(ApiError::field(
                "invalid_query",
                "since",
                format!("since lists ids: it goes with GET and no {id_name}"),
            ));
        }
        Some(s) => Some(format_stored(parse_timestamp(s).ok_or_else(|| {
            ApiError::field("invalid_param", "since", format!("since {s:?} is not an ISO 8601 timestamp"))
        })?)),
    };
    let write = method != Method::GET && method != Method::HEAD;
    may(node, user, &place, id.as_deref(), write)?;
    if !write {
        return match id {
            Some(id) => get_one(node, place, id, headers).await,
            None => get_ids(node, place, since).await,
        };
    }
    let need_id =
        || id.clone().ok_or_else(|| ApiError::field("missing_param", id_name, format!("{id_name} is required")));
    let change = match method {
        Method::PUT => {
            need_id()?;
            let (content_type, body) = read_body(node, headers, body).await?;
            if is_json(&content_type) && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
                return Err(ApiError::bad("malformed_json", format!("body: Content-Type {content_type} but not JSON")));
            }
            Change::Put { content_type, body }
        }
        Method::POST => {
            need_id()?;
            let (content_type, body) = read_body(node, headers, body).await?;
            let object = is_json(&content_type)
                .then(|| serde_json::from_slice::<Value>(&body).ok())
                .flatten()
                .and_then(|v| match v {
                    Value::Object(m) => Some(m),
                    _ => None,
                });
            match object {
                Some(body) => Change::Merge { body },
                None => {
                    return Err(ApiError::field(
                        "not_mergeable",
                        "body",
                        format!(
                            "POST merges a JSON object (Content-Type application/json) into the document; this body is {content_type}{}",
                            if is_json(&content_type) { " but not a JSON object" } else { "" }
                        ),
                    ));
                }
            }
        }
        Method::DELETE => match (&id, kind) {
            (Some(_), _) => Change::Delete,
            (None, Kind::State) => Change::DeleteAll,
            (None, _) => return Err(ApiError::field("missing_param", id_name, format!("{id_name} is required"))),
        },
        _ => return Err(ApiError::MethodNotAllowed),
    };
    let pre = Precondition {
        if_match: etags(headers, header::IF_MATCH),
        if_none_match: etags(headers, header::IF_NONE_MATCH),
        required_to_replace: kind != Kind::State,
    };
    let updated = format_stored(time::OffsetDateTime::now_utc());
    node.store.write_document(Write { place, id, change, pre, updated }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The body and its content type (application/octet-stream when none was
/// sent), within `max_document_bytes` (413 beyond it, nothing stored).
async fn read_body(node: &AppState, headers: &HeaderMap, body: Body) -> Result<(String, Vec<u8>), ApiError> {
    let limit = node.cfg.max_document_bytes;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().chars().take(200).collect::<String>())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/octet-stream".into());
    let bytes = http_body_util::Limited::new(body, limit).collect().await.map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::bad("unreadable_body", format!("body: {e}"))
        }
    })?;
    Ok((content_type, bytes.to_bytes().to_vec()))
}

async fn get_one(node: &AppState, place: Place, id: String, headers: &HeaderMap) -> Result<Response, ApiError> {
    let what = format!("{} {id:?}", place.kind.id_param());
    let doc = node.store.document(place, id).await?.ok_or_else(|| ApiError::NotFound(format!("no document {what}")))?;
    let etag = format!("\"{}\"", doc.etag);
    let not_modified =
        etags(headers, header::IF_NONE_MATCH).is_some_and(|l| l.iter().any(|t| *t == doc.etag || t == "*"));
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = (StatusCode::OK, doc.body).into_response();
        if let Ok(ct) = HeaderValue::from_str(&doc.content_type) {
            r.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(v) = http_date(&doc.updated).and_then(|d| HeaderValue::from_str(&d).ok()) {
        h.insert(header::LAST_MODIFIED, v);
    }
    Ok(resp)
}

async fn get_ids(node: &AppState, place: Place, since: Option<String>) -> Result<Response, ApiError> {
    let (ids, newest) = node.store.document_ids(place, since).await?;
    let mut resp = axum::Json(ids).into_response();
    if let Some(v) = newest.as_deref().and_then(http_date).and_then(|d| HeaderValue::from_str(&d).ok()) {
        resp.headers_mut().insert(header::LAST_MODIFIED, v);
    }
    Ok(resp)
}
