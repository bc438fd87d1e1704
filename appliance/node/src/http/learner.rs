//! The learner API under /v1: each route is one call into an LMS module.
//! The node supplies what a module cannot have (the clock, a request id, the
//! learner's actor, the learner's statements) and applies what it returns
//! (statements are stored durably before the response goes out).

use super::auth::User;
use super::error::ApiError;
use super::{AppState, JsonBody, Params, query_pairs};
use crate::wasm::ModuleSet;
use crate::wasm::facts::Mark;
use crate::xapi::{self, ifi_key, store::Query};
use axum::Extension;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use lms_abi::{Context, Request};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Learner ids appear in paths and in xAPI account names.
/// The same rule as the roster's ids (a learner id is a roster id).
fn check_learner(id: &str) -> Result<(), ApiError> {
    crate::roster::check_id(id).map_err(|_| {
        ApiError::field("invalid_learner", "learner", "learner ids are 1-128 characters of A-Z a-z 0-9 . _ @ -")
    })
}

/// A client credential needs `statements/read`; a learner sees only
/// themselves, a coach the learners of their classes, an admin everyone.
/// A refusal is 403 and logged.
pub(super) async fn may_see_learner(node: &AppState, user: &User, learner: &str) -> Result<(), ApiError> {
    let Some(p) = &user.person else {
        return user.may(user.scopes.reads_all_statements(), "read a learner's statements");
    };
    let allowed = match p.role {
        crate::roster::Role::Admin => true,
        _ if p.id == learner => true,
        crate::roster::Role::Coach => {
            let (l, classes) = (learner.to_string(), p.classes.clone());
            node.roster(move |r| r.shares_class(&l, &classes)).await?
        }
        crate::roster::Role::Learner => false,
    };
    if allowed {
        Ok(())
    } else {
        tracing::warn!(person = %p.id, role = p.role.as_str(), learner, "refused: another learner's records");
        Err(ApiError::Forbidden(format!("{} may not see the records of {learner}", p.id)))
    }
}

pub fn learner_actor(node: &AppState, learner: &str) -> Value {
    json!({"objectType": "Agent", "account": {"homePage": node.cfg.learner_home_page, "name": learner}})
}

/// The authority recorded on statements stored under `user`'s client
/// credential (`credential:NAME`) or browser session (`person:ID`).
pub fn authority(node: &AppState, user: &User) -> Value {
    let name = match &user.person {
        Some(p) => format!("person:{}", p.id),
        None => format!("credential:{}", user.name),
    };
    json!({"objectType": "Agent", "account": {"homePage": node.cfg.learner_home_page, "name": name}})
}

pub(super) struct Call {
    module: &'static str,
    pub(super) op: &'static str,
    pub(super) params: BTreeMap<String, String>,
    pub(super) query: BTreeMap<String, String>,
    pub(super) body: Option<Value>,
    if_none_match: Option<String>,
    pub(super) actor: Option<Value>,
    statements: Vec<Value>,
    /// For pages: the language to render in and the forms' CSRF token.
    pub language: Option<String>,
    pub csrf: Option<String>,
    /// The module set to call, when the caller chose it (progress facts
    /// come from one set and must go back to it).
    set: Option<Arc<ModuleSet>>,
    /// The module's kept facts (see `wasm::facts`), and where to keep the
    /// new ones: learner, query text, mark.
    facts: Option<Box<RawValue>>,
    keep_facts: Option<(String, String, Mark)>,
    /// The answer, already known (kept at the learner's current mark).
    known: Option<lms_abi::Response>,
}

impl Call {
    pub(super) fn new(module: &'static str, op: &'static str) -> Call {
        Call {
            module,
            op,
            params: BTreeMap::new(),
            query: BTreeMap::new(),
            body: None,
            if_none_match: None,
            actor: None,
            statements: vec![],
            language: None,
            csrf: None,
            set: None,
            facts: None,
            keep_facts: None,
            known: None,
        }
    }

    pub(super) fn param(mut self, k: &str, v: String) -> Call {
        self.params.insert(k.to_string(), v);
        self
    }

    /// The call made on `set` rather than on the current module set.
    pub(super) fn on(mut self, set: Arc<ModuleSet>) -> Call {
        self.set = Some(set);
        self
    }
}

/// Runs `call` on its module and stores the statements it returns (a 2xx
/// only), durably, before the caller answers. The module's answer, with a
/// status the host can send.
pub(super) async fn answer(node: &AppState, user: &User, call: Call) -> Result<lms_abi::Response, ApiError> {
    let module = call.module;
    let resp = call_module(node, call).await?;
    keep_statements(node, user, module, resp).await
}

/// Runs `call` on its module (or takes the set's shared answer) and checks
/// what the module answered; stores nothing.
pub(super) async fn call_module(node: &AppState, mut call: Call) -> Result<lms_abi::Response, ApiError> {
    if let Some(known) = call.known.take() {
        return Ok(known);
    }
    let set = match call.set.take() {
        Some(set) => set,
        None => current(node)?,
    };
    let module = call.module;
    // What is the same for everyone comes from the set's shared answers,
    // looked up before anything per-request (clock, request id) is made.
    let shared = node.cfg.cache_enabled
        && call.actor.is_none()
        && call.csrf.is_none()
        && call.body.is_none()
        && call.statements.is_empty();
    let key = shared
        .then(|| crate::wasm::answers::Key::new(module, call.op, &call.params, &call.query, call.language.as_deref()));
    if let Some(kept) = key.as_ref().and_then(|k| set.answers.get(k)) {
        return Ok(not_modified_if_matched(kept, call.if_none_match.as_deref()));
    }
    let req = Request {
        op: call.op.to_string(),
        params: call.params,
        query: call.query,
        body: call.body,
        if_none_match: call.if_none_match,
        statements: call.statements,
        facts: call.facts,
        ctx: Context {
            cache_ttl: node.cfg.effective_cache_ttl(),
            actor: call.actor,
            now: xapi::format_stored(time::OffsetDateTime::now_utc()),
            request_id: uuid::Uuid::new_v4().to_string(),
            language: call.language,
            csrf: call.csrf,
        },
    };
    let host = node.host.clone();
    let (set, resp) = tokio::task::spawn_blocking(move || {
        let resp = host.call(&set, module, &req);
        (set, resp)
    })
    .await
    .map_err(|e| ApiError::Unavailable(format!("module call aborted: {e}")))?;
    let mut resp = resp?;
    match &call.keep_facts {
        Some((learner, query, mark)) => set.facts.keep(module, learner, query, *mark, &mut resp),
        None => resp.facts = None,
    }
    if let Some(k) = &key {
        set.answers.put(k, &resp, node.cfg.cache_ttl);
    }
    let bad = |message: String| bad_response(module, message);
    // 1xx would desync the connection's framing; outside 200-599 a module is wrong.
    if !(200..=599).contains(&resp.status) {
        return Err(bad(format!("status {} is outside 200-599", resp.status)));
    }
    // A module is signed, yet what it names is still checked: only a known
    // type, and a file name that cannot break the header.
    if let Some(file) = &resp.download {
        file.check().map_err(bad)?;
    }
    Ok(resp)
}

pub(super) fn bad_response(module: &str, message: String) -> ApiError {
    ApiError::Module(crate::wasm::CallError::BadResponse { module: module.into(), message })
}

/// Stores the statements of a module's 2xx answer, durably, under `user`'s
/// authority (each once per actor when the answer says `once`).
pub(super) async fn keep_statements(
    node: &AppState,
    user: &User,
    module: &str,
    mut resp: lms_abi::Response,
) -> Result<lms_abi::Response, ApiError> {
    let now = time::OffsetDateTime::now_utc();
    if (200..300).contains(&resp.status) && !resp.statements.is_empty() {
        let statements = std::mem::take(&mut resp.statements);
        let statements = if resp.once { not_yet_stored(node, statements).await? } else { statements };
        let auth = authority(node, user);
        let mut batch = Vec::with_capacity(statements.len());
        for (i, s) in statements.into_iter().enumerate() {
            // The read above spares the writer a rereading learner; this
            // check in the writer's transaction keeps two reads at the same
            // moment (a double click) from both storing it.
            let unless_found = resp.once.then(|| once_query(&s)).flatten().map(Box::new);
            let mut p = xapi::prepare(s, &format!("statements[{i}]"), &auth, now, xapi::validate::Spec::V2)
                .map_err(|e| bad_response(module, format!("emitted an invalid statement: {e}")))?;
            p.unless_found = unless_found;
            batch.push(p);
        }
        if !batch.is_empty() {
            node.store.write(batch).await?;
        }
    }
    Ok(resp)
}

/// A kept answer for a request: 304 when the client has its ETag already.
fn not_modified_if_matched(mut kept: lms_abi::Response, if_none_match: Option<&str>) -> lms_abi::Response {
    if kept.etag.as_deref().is_some_and(|e| lms_abi::etag_matches(if_none_match, e)) {
        kept.status = 304;
        kept.body = serde_json::value::to_raw_value(&Value::Null).unwrap_or(kept.body);
    }
    kept
}

/// What finds a statement "the same" as `s` for `Response::once`: the same
/// actor, verb and object; `None` when `s` lacks one (then it is stored).
fn once_query(s: &Value) -> Option<Query> {
    Some(Query {
        agent: Some(ifi_key(&s["actor"])?),
        verb: Some(s["verb"]["id"].as_str()?.to_string()),
        activity: Some(s["object"]["id"].as_str()?.to_string()),
        limit: 1,
        ..Query::default()
    })
}

/// The statements whose actor has none with the same verb and object yet
/// (`Response::once`).
async fn not_yet_stored(node: &AppState, statements: Vec<Value>) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(statements.len());
    for s in statements {
        let Some(q) = once_query(&s) else {
            out.push(s);
            continue;
        };
        if node.store.query(q).await?.statements.is_empty() {
            out.push(s);
        }
    }
    Ok(out)
}

/// A module's answer as an HTTP response: JSON, or a page with the
/// headers every page carries.
pub(super) fn respond(resp: lms_abi::Response) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(resp.status).map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let mut builder = Response::builder().status(status);
    if let Some(etag) = resp.etag.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
        builder = builder.header(header::ETAG, etag);
    }
    if let Some(cc) = resp.cache_control.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
        builder = builder.header(header::CACHE_CONTROL, cc);
    }
    // 204 and 304 carry no body, whatever the module put there.
    let body = if status == StatusCode::NOT_MODIFIED || status == StatusCode::NO_CONTENT {
        Body::empty()
    } else if let Some(file) = resp.download {
        builder = builder
            .header(header::CONTENT_TYPE, file.content_type)
            .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", file.file_name))
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        if resp.cache_control.is_none() {
            builder = builder.header(header::CACHE_CONTROL, "no-store");
        }
        Body::from(file.text)
    } else if let Some(page) = resp.html {
        for (k, v) in super::pages::PAGE_HEADERS {
            builder = builder.header(*k, *v);
        }
        if resp.cache_control.is_none() {
            // Pages carry the person's data and CSRF tokens.
            builder = builder.header(header::CACHE_CONTROL, "no-store");
        }
        Body::from(page)
    } else {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
        Body::from(String::from(Box::<str>::from(resp.body)))
    };
    builder.body(body).map_err(|e| ApiError::Unavailable(e.to_string()))
}

pub(super) async fn run(node: &AppState, user: &User, call: Call) -> Result<Response, ApiError> {
    respond(answer(node, user, call).await?)
}

pub async fn courses(State(node): State<AppState>, Extension(user): Extension<User>) -> Result<Response, ApiError> {
    run(&node, &user, Call::new("catalog", "list_courses")).await
}

pub async fn course(
    State(node): State<AppState>,
    Extension(user): Extension<User>,
    p: Params,
) -> Result<Response, ApiError> {
    run(&node, &user, Call::new("catalog", "get_course").param("course", p.get("course"))).await
}

pub async fn lesson(
    State(node): State<AppState>,
    Extension(user): Extension<User>,
    p: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut call = Call::new("catalog", "get_lesson").param("course", p.get("course")).param("lesson", p.get("lesson"));
    call.if_none_match = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string);
    run(&node, &user, call).await
}

pub async fn quiz(
    State(node): State<AppState>,
    Extension(user): Extension<User>,
    p: Params,
) -> Result<Response, ApiError> {
    run(&node, &user, Call::new("quiz", "get_quiz").param("quiz", p.get("quiz"))).await
}

/// Body: `{"learner": "...", "answers": {"q1": "b"}, "registration"?: UUID, "duration"?: "PT2M"}`.
pub async fn attempt(
    State(node): State<AppState>,
    Extension(user): Extension<User>,
    p: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let named = match body.get("learner") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::field("invalid_field", "learner", "learner: must be a string")),
        None => None,
    };
    // A person attempts as themselves: the learner is the session's, never
    // the body's. A client credential names the learner.
    let learner = match (&user.person, named) {
        (Some(p), Some(n)) if n != p.id => {
            tracing::warn!(person = %p.id, named = %n, "attempt for another learner refused");
            return Err(ApiError::Forbidden(format!("signed in as {}: you may not record attempts for {n}", p.id)));
        }
        (Some(p), _) => p.id.clone(),
        (None, Some(n)) => {
            user.may(user.scopes.writes_statements(), "record attempts")?;
            n
        }
        (None, None) => return Err(ApiError::field("missing_field", "learner", "learner: required")),
    };
    check_learner(&learner)?;
    if let Some(r) = body.get("registration")
        && !r.as_str().is_some_and(xapi::validate::is_uuid)
    {
        return Err(ApiError::field("invalid_field", "registration", "registration: must be a UUID"));
    }
    if let Some(d) = body.get("duration")
        && !d.as_str().is_some_and(xapi::validate::is_duration)
    {
        return Err(ApiError::field("invalid_field", "duration", "duration: must be an ISO 8601 duration"));
    }
    let mut call = Call::new("quiz", "attempt").param("quiz", p.get("quiz"));
    call.actor = Some(learner_actor(&node, &learner));
    call.body = Some(body);
    run(&node, &user, call).await
}

pub async fn progress(
    State(node): State<AppState>,
    Extension(user): Extension<User>,
    p: Params,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let learner = p.get("learner");
    check_learner(&learner)?;
    may_see_learner(&node, &user, &learner).await?;
    let mut course = None;
    for (k, v) in query_pairs(raw.as_deref())? {
        if k != "course" {
            return Err(ApiError::field(
                "invalid_query",
                k.clone(),
                format!("unknown query parameter {k:?} (only course)"),
            ));
        }
        course = Some(v);
    }
    run(&node, &user, progress_call(&node, &learner, course).await?).await
}

fn current(node: &AppState) -> Result<Arc<ModuleSet>, ApiError> {
    node.current().map_err(|reason| ApiError::Unavailable(format!("modules not ready: {reason}")))
}

/// The progress module's call for `learner` (optionally one course). With
/// the set's kept facts for the learner it carries only the statements
/// stored since them (usually none: then the answer kept at that mark is
/// the answer, no module call); without, the learner's whole history. The
/// caller has checked who may see them.
pub(super) async fn progress_call(node: &AppState, learner: &str, course: Option<String>) -> Result<Call, ApiError> {
    const MODULE: &str = "progress";
    let set = current(node)?;
    let mut call = Call::new(MODULE, "progress").param("learner", learner.to_string());
    let query = course.as_ref().map(|c| format!("course={c}")).unwrap_or_default();
    if let Some(c) = course {
        call.query.insert("course".into(), c);
    }
    let actor = learner_actor(node, learner);
    // Read before the statements: a void committed in between makes the
    // facts start over next time, never miss it.
    let voids = node.store.void_generation();
    let kept = node.cfg.cache_enabled.then(|| set.facts.get(MODULE, learner, voids)).flatten();
    let q = Query {
        agent: ifi_key(&actor),
        ascending: true,
        limit: node.cfg.progress_statement_limit,
        cursor: kept.as_ref().map(|(mark, _)| mark.seq),
        ..Query::default()
    };
    // Bounded in bytes as well as in count: a learner with a few huge
    // statements costs the module (and the host) what progress reads of them.
    let read = node.store.reduced(q, node.cfg.progress_statement_bytes, xapi::for_progress).await?;
    if read.cut {
        tracing::warn!(learner = %learner, budget = node.cfg.progress_statement_bytes, "progress: statements past the byte budget left for the next call");
    }
    let mark = Mark { seq: read.last.or(kept.as_ref().map(|(m, _)| m.seq)).unwrap_or(0), voids };
    if read.statements.is_empty() && kept.is_some() {
        call.known = set.facts.answer(MODULE, learner, &query, mark);
    }
    call.facts = kept.map(|(_, facts)| facts);
    call.statements = read.statements;
    call.actor = Some(actor);
    call.keep_facts = node.cfg.cache_enabled.then(|| (learner.to_string(), query, mark));
    call.set = Some(set);
    Ok(call)
}
