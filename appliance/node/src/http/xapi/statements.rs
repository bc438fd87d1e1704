//! The Statement resource (xAPI 2.0 Part Three §2.1; 1.0.3 §7.2): PUT, POST, GET.

use super::Version;
use super::multipart::{self, StatementBody};
use crate::http::auth::User;
use crate::http::error::ApiError;
use crate::http::learner::{authority, learner_actor};
use crate::http::{AppState, query_pairs};
use crate::xapi::attachments::{self, Part};
use crate::xapi::store::{Only, Query};
use crate::xapi::validate::{self, is_uuid, parse_timestamp_in};
use crate::xapi::{self, canonical, format_stored, ifi_key};
use axum::Extension;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// The most statements one GET returns.
const MAX_LIMIT: usize = 500;

/// PUT /xapi/statements?statementId=ID: stores one statement under ID. 204.
pub async fn put_statement(
    State(node): State<AppState>,
    Extension(user): Extension<User>,
    Extension(version): Extension<Version>,
    RawQuery(raw): RawQuery,
    StatementBody { json: mut body, parts }: StatementBody,
) -> Result<Response, ApiError> {
    let q = query_pairs(raw.as_deref())?;
    let mut id = None;
    for (k, v) in q {
        match k.as_str() {
            "statementId" => id = Some(v),
            _ => return Err(ApiError::field("invalid_query", k.clone(), format!("unknown parameter {k:?}"))),
        }
    }
    let id = id.ok_or_else(|| ApiError::field("missing_param", "statementId", "statementId is required"))?;
    if !is_uuid(&id) {
        return Err(ApiError::field("invalid_param", "statementId", format!("{id:?} is not a UUID")));
    }
    let obj = body
        .as_object_mut()
        .ok_or_else(|| ApiError::field("invalid_statement", "statement", "must be one statement object"))?;
    match obj.get("id") {
        None => {
            obj.insert("id".into(), Value::String(id.clone()));
        }
        Some(Value::String(s)) if s.eq_ignore_ascii_case(&id) => {}
        Some(_) => return Err(ApiError::field("invalid_statement", "id", "id differs from the statementId parameter")),
    }
    may_write(&node, &user, std::slice::from_ref(&body))?;
    let summary = cmi5_summary(&user, std::slice::from_ref(&body));
    let carried = carried(std::slice::from_ref(&body), &[String::new()], &parts, version.spec())?;
    let mut p = xapi::prepare(body, "", &authority(&node, &user), time::OffsetDateTime::now_utc(), version.spec())?;
    p.attachments = carried.into_iter().next().unwrap_or_default();
    let batch = owned_voids(&node, &user, vec![p]).await?;
    node.store.write(batch).await?;
    cmi5_recorded(&node, &user, &summary).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// POST /xapi/statements: one statement or an array, all or nothing. 200 with the ids in order.
pub async fn post_statements(
    State(node): State<AppState>,
    Extension(user): Extension<User>,
    Extension(version): Extension<Version>,
    RawQuery(raw): RawQuery,
    StatementBody { json: body, parts }: StatementBody,
) -> Result<Response, ApiError> {
    if let Some((k, _)) = query_pairs(raw.as_deref())?.into_iter().next() {
        return Err(ApiError::field("invalid_query", k.clone(), format!("unknown parameter {k:?}")));
    }
    let (items, batch) = match body {
        Value::Array(a) => (a, true),
        other => (vec![other], false),
    };
    may_write(&node, &user, &items)?;
    let summary = cmi5_summary(&user, &items);
    let paths: Vec<String> = (0..items.len()).map(|i| if batch { format!("[{i}]") } else { String::new() }).collect();
    let mut carried = carried(&items, &paths, &parts, version.spec())?;
    let now = time::OffsetDateTime::now_utc();
    let auth = authority(&node, &user);
    let mut prepared = Vec::with_capacity(items.len());
    let mut seen: HashMap<String, [u8; 32]> = HashMap::new();
    for (i, (s, path)) in items.into_iter().zip(paths).enumerate() {
        let mut p = xapi::prepare(s, &path, &auth, now, version.spec())?;
        p.attachments = std::mem::take(&mut carried[i]);
        match seen.get(&p.id) {
            Some(fp) if *fp != p.fingerprint => {
                return Err(ApiError::field(
                    "invalid_statement",
                    format!("{path}.id"),
                    format!("id {} appears twice in the batch with different content", p.id),
                ));
            }
            Some(_) => continue,
            None => {
                seen.insert(p.id.clone(), p.fingerprint);
            }
        }
        prepared.push(p);
    }
    let ids: Vec<String> = prepared.iter().map(|p| p.id.clone()).collect();
    let prepared = owned_voids(&node, &user, prepared).await?;
    if !prepared.is_empty() {
        node.store.write(prepared).await?;
    }
    cmi5_recorded(&node, &user, &summary).await;
    Ok(Json(ids).into_response())
}

/// The attachment bytes each statement carries, matched by hash to its
/// declarations, signatures verified, before anything is prepared (a bad
/// part refuses the whole request). Statements without attachments, the
/// usual case, skip all of it.
fn carried(
    items: &[Value],
    paths: &[String],
    parts: &[Part],
    spec: validate::Spec,
) -> Result<Vec<Vec<Part>>, ApiError> {
    if parts.is_empty() && items.iter().all(|s| attachments::declared(s, "").is_empty()) {
        return Ok(vec![Vec::new(); items.len()]);
    }
    // The declarations are read below: check them first, so an error names
    // the field (prepare checks the rest again; attachments are rare).
    for (s, path) in items.iter().zip(paths) {
        validate::statement(s, path, spec)?;
    }
    Ok(attachments::match_parts(items, paths, parts)?)
}

/// A client credential writes with `statements/write`; a signed-in person
/// writes statements whose actor is themselves (403 otherwise, logged).
/// What a cmi5 session's rules need of a batch (its verbs, objects and
/// results), kept from before the statements are consumed.
fn cmi5_summary(user: &User, statements: &[Value]) -> Vec<Value> {
    if user.launch.is_none() {
        return Vec::new();
    }
    statements
        .iter()
        .map(|s| serde_json::json!({"verb": s["verb"], "object": {"id": s["object"]["id"]}, "result": s["result"]}))
        .collect()
}

/// After the store took a launch token's batch: the session moves on, and
/// what it met may satisfy blocks and the course.
async fn cmi5_recorded(node: &AppState, user: &User, summary: &[Value]) {
    if let Some(g) = &user.launch {
        let _ = crate::content::cmi5::verbs(g, summary, true);
        crate::content::cmi5::moveon::after_batch(node, g, summary).await;
    }
}

fn may_write(node: &AppState, user: &User, statements: &[Value]) -> Result<(), ApiError> {
    if let Some(g) = &user.launch {
        crate::content::cmi5::may_write(g, statements)?;
        return crate::content::cmi5::verbs(g, statements, false);
    }
    let Some(person) = &user.person else {
        return user.may(user.scopes.writes_statements(), "write statements");
    };
    let own = ifi_key(&learner_actor(node, &person.id));
    for (i, s) in statements.iter().enumerate() {
        if ifi_key(&s["actor"]) != own {
            tracing::warn!(person = %person.id, "refused: a statement about someone else");
            return Err(ApiError::Forbidden(format!(
                "statement [{i}]: {} may store statements only with themselves as the actor",
                person.id
            )));
        }
    }
    Ok(())
}

/// What the reader may see: a client credential all statements
/// (`statements/read`) or those it stored (`statements/read/mine`); a
/// signed-in person the statements with themselves as the actor.
fn readable(node: &AppState, user: &User) -> Result<Only, ApiError> {
    if let Some(g) = &user.launch {
        return Ok(Only { authority: None, actor: Some(g.actor_key.clone()) });
    }
    if let Some(person) = &user.person {
        return Ok(Only { authority: None, actor: ifi_key(&learner_actor(node, &person.id)) });
    }
    user.may(user.scopes.reads_own_statements(), "read statements")?;
    let mine = (!user.scopes.reads_all_statements()).then(|| ifi_key(&authority(node, user))).flatten();
    Ok(Only { authority: mine, actor: None })
}

/// Marks the batch's voiding statements with the credential's right to void
/// anyone's, and refuses (403) one that voids a stored statement another
/// credential stored when it has no such right. The store applies the same
/// rule when it commits, also to targets that arrive later.
async fn owned_voids(
    node: &AppState,
    user: &User,
    mut batch: Vec<xapi::Prepared>,
) -> Result<Vec<xapi::Prepared>, ApiError> {
    let any = user.scopes.voids_any();
    for (i, p) in batch.iter_mut().enumerate() {
        p.void_any = any;
        let Some(target) = &p.voiding_target else { continue };
        if any {
            continue;
        }
        if let Some(owner) = node.store.authority_of(target.clone()).await?
            && owner != p.authority
        {
            return Err(ApiError::Forbidden(format!(
                "statement [{i}] voids {target}, which another credential stored: only its authority or a credential with scope all may void it"
            )));
        }
    }
    Ok(batch)
}

/// GET /xapi/statements: one statement by id, or a filtered page; a
/// credential with only `statements/read/mine` sees the ones it stored.
pub async fn get_statements(
    State(node): State<AppState>,
    Extension(user): Extension<User>,
    Extension(version): Extension<Version>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let only = readable(&node, &user)?;
    let pairs = query_pairs(raw.as_deref())?;
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in pairs {
        const KNOWN: [&str; 16] = [
            "statementId",
            "voidedStatementId",
            "agent",
            "verb",
            "activity",
            "registration",
            "related_activities",
            "related_agents",
            "since",
            "until",
            "limit",
            "format",
            "attachments",
            "ascending",
            "cursor",
            "",
        ];
        if !KNOWN.contains(&k.as_str()) || k.is_empty() {
            return Err(ApiError::field("invalid_query", k.clone(), format!("unknown parameter {k:?}")));
        }
        if params.insert(k.clone(), v).is_some() {
            return Err(ApiError::field("invalid_query", k.clone(), format!("parameter {k:?} given twice")));
        }
    }
    let format = params.get("format").map(String::as_str).unwrap_or("exact");
    if !["exact", "ids", "canonical"].contains(&format) {
        return Err(ApiError::field("invalid_param", "format", "format must be exact, ids or canonical"));
    }
    for flag in ["attachments", "ascending", "related_activities", "related_agents"] {
        if let Some(v) = params.get(flag)
            && v != "true"
            && v != "false"
        {
            return Err(ApiError::field("invalid_param", flag, format!("{flag} must be true or false")));
        }
    }
    let languages = match format {
        "canonical" => canonical::accepted(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok())),
        _ => Vec::new(),
    };
    let shape = |body: &str| match format {
        "ids" => ids_format(body),
        "canonical" => canonical::format(body, &languages),
        _ => body.to_string(),
    };
    let consistent = format_stored(time::OffsetDateTime::now_utc());
    let with_attachments = params.get("attachments").map(String::as_str) == Some("true");

    let single = match (params.get("statementId"), params.get("voidedStatementId")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "invalid_query",
                "voidedStatementId",
                "statementId and voidedStatementId exclude each other",
            ));
        }
        (Some(id), None) => Some((id.clone(), false, "statementId")),
        (None, Some(id)) => Some((id.clone(), true, "voidedStatementId")),
        (None, None) => None,
    };
    if let Some((id, voided, name)) = single {
        if let Some(other) =
            params.keys().find(|k| !["statementId", "voidedStatementId", "format", "attachments"].contains(&k.as_str()))
        {
            return Err(ApiError::field(
                "invalid_query",
                other.clone(),
                format!("{other} cannot be combined with {name}"),
            ));
        }
        if !is_uuid(&id) {
            return Err(ApiError::field("invalid_param", name, format!("{id:?} is not a UUID")));
        }
        let (body, stored) = node
            .store
            .get(id.clone(), voided, only)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no statement {id}")))?;
        let body = if format == "exact" { body } else { shape(&body) };
        let parts = if with_attachments { Some(node.store.attachments_of(vec![id.clone()]).await?) } else { None };
        return Ok(statement_response(body, &consistent, Some(&stored), parts.as_deref()));
    }

    let flag = |name: &str| params.get(name).map(String::as_str) == Some("true");
    let mut q = Query {
        limit: MAX_LIMIT,
        authority: only.authority,
        actor: only.actor,
        related_agents: flag("related_agents"),
        related_activities: flag("related_activities"),
        targeting: true,
        ..Query::default()
    };
    if let Some(a) = params.get("agent") {
        let agent: Value = serde_json::from_str(a)
            .map_err(|e| ApiError::field("invalid_param", "agent", format!("agent must be JSON: {e}")))?;
        validate::actor(&agent, "agent").map_err(ApiError::from)?;
        q.agent = Some(
            ifi_key(&agent)
                .ok_or_else(|| ApiError::field("invalid_param", "agent", "agent must have an identifier"))?,
        );
    }
    if let Some(v) = params.get("verb") {
        if !validate::is_iri(v) {
            return Err(ApiError::field("invalid_param", "verb", "verb must be an IRI"));
        }
        q.verb = Some(v.clone());
    }
    if let Some(v) = params.get("activity") {
        if !validate::is_iri(v) {
            return Err(ApiError::field("invalid_param", "activity", "activity must be an IRI"));
        }
        q.activity = Some(v.clone());
    }
    if let Some(v) = params.get("registration") {
        if !is_uuid(v) {
            return Err(ApiError::field("invalid_param", "registration", "registration must be a UUID"));
        }
        q.registration = Some(v.clone());
    }
    for (name, slot) in [("since", &mut q.since), ("until", &mut q.until)] {
        if let Some(v) = params.get(name) {
            let t = parse_timestamp_in(v, version.spec()).ok_or_else(|| {
                ApiError::field("invalid_param", name, format!("{name} must be an ISO 8601 timestamp"))
            })?;
            *slot = Some(format_stored(t));
        }
    }
    if let Some(v) = params.get("limit") {
        let n: usize =
            v.parse().map_err(|_| ApiError::field("invalid_param", "limit", "limit must be a non-negative integer"))?;
        q.limit = if n == 0 { MAX_LIMIT } else { n.min(MAX_LIMIT) };
    }
    q.ascending = params.get("ascending").map(String::as_str) == Some("true");
    if let Some(v) = params.get("cursor") {
        q.cursor = Some(
            v.parse().map_err(|_| ApiError::field("invalid_param", "cursor", "cursor must come from a more link"))?,
        );
    }
    let page = node.store.query(q).await?;
    let more = match page.next {
        None => String::new(),
        Some(cursor) => {
            let mut next: Vec<(&str, String)> =
                params.iter().filter(|(k, _)| *k != "cursor").map(|(k, v)| (k.as_str(), v.clone())).collect();
            next.push(("cursor", cursor.to_string()));
            format!("/xapi/statements?{}", serde_urlencoded::to_string(next).unwrap_or_default())
        }
    };
    let mut out = String::with_capacity(page.statements.iter().map(|s| s.len() + 1).sum::<usize>() + 64);
    out.push_str("{\"statements\":[");
    for (i, s) in page.statements.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if format == "exact" {
            out.push_str(s);
        } else {
            out.push_str(&shape(s));
        }
    }
    out.push_str("],\"more\":");
    out.push_str(&serde_json::to_string(&more).expect("json"));
    out.push('}');
    let parts = if with_attachments {
        // Only statements that declare attachments can have any stored.
        let ids = page
            .statements
            .iter()
            .filter(|s| s.contains("\"attachments\""))
            .filter_map(|s| serde_json::from_str::<Value>(s).ok()?["id"].as_str().map(str::to_string))
            .collect();
        Some(node.store.attachments_of(ids).await?)
    } else {
        None
    };
    Ok(statement_response(out, &consistent, page.last_stored.as_deref(), parts.as_deref()))
}

/// A statement GET's answer: `X-Experience-API-Consistent-Through`, and
/// `Last-Modified` from the (latest) `stored` of what it returns; with
/// `attachments=true`, multipart/mixed with the attachments' bytes.
fn statement_response(body: String, consistent: &str, stored: Option<&str>, parts: Option<&[Part]>) -> Response {
    let mut resp = match parts {
        Some(parts) => multipart::response(body, parts),
        None => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(consistent) {
        resp.headers_mut().insert("x-experience-api-consistent-through", v);
    }
    if let Some(v) = stored.and_then(super::http_date).and_then(|d| HeaderValue::from_str(&d).ok()) {
        resp.headers_mut().insert(header::LAST_MODIFIED, v);
    }
    resp
}

/// `format=ids`: agents, groups, activities and verbs reduced to their identifiers.
fn ids_format(body: &str) -> String {
    fn reduce_agent(a: &mut Value) {
        if let Some(m) = a.as_object_mut() {
            m.retain(|k, _| {
                ["objectType", "mbox", "mbox_sha1sum", "openid", "account", "member"].contains(&k.as_str())
            });
            if let Some(Value::Array(members)) = m.get_mut("member") {
                members.iter_mut().for_each(reduce_agent);
            }
        }
    }
    let Ok(mut s) = serde_json::from_str::<Value>(body) else { return body.to_string() };
    reduce_agent(&mut s["actor"]);
    if let Some(v) = s["verb"].as_object_mut() {
        v.retain(|k, _| k == "id");
    }
    match s["object"].get("objectType").and_then(Value::as_str).unwrap_or("Activity") {
        "Agent" | "Group" => reduce_agent(&mut s["object"]),
        "Activity" => {
            if let Some(o) = s["object"].as_object_mut() {
                o.retain(|k, _| k == "id" || k == "objectType");
            }
        }
        _ => {}
    }
    s.to_string()
}
