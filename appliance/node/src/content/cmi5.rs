//! cmi5 launch, as the cmi5 specification's sections 8 and 10 ask of an
//! LMS: a registration and a session id; the `LMS.LaunchData` State
//! document; the `launched` statement; the launch URL with `endpoint`,
//! `fetch`, `actor`, `registration` and `activityId` merged into the AU's
//! own query string; the one-time fetch URL that hands out the session's
//! auth token; and that token as a credential limited to its actor,
//! registration and activity (see [`Grant`]).
//!
//! `POST /admin/cmi5/launch-url` (admin listener) is the contract for
//! outside tools: `{"course", "au" (index or id), "actor", "registration"?,
//! "launch_mode"?, "return_url"?}` -> `{"url", "registration"}`.
//!
//! Sessions live in memory: a node restart ends them (the AU's next request
//! is 401 and the learner launches again; what it stored is kept).

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::xapi::documents::{Change, Kind as DocKind, Place, Precondition, Write};
use axum::Json;
use axum::extract::{Path, State};
use base64::Engine;
use lms_package::course::{Au, Course, LaunchMethod};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const LAUNCH_DATA: &str = "LMS.LaunchData";
/// How launch tokens start, so client credentials never look them up.
const TOKEN_PREFIX: &str = "cmi5-";
const SESSION_EXT: &str = "https://w3id.org/xapi/cmi5/context/extensions/sessionid";
const CATEGORY: &str = "https://w3id.org/xapi/cmi5/context/categories/cmi5";

/// What a launch token may do: statements and documents of one actor, one
/// registration and one activity (the AU's launch activity id).
#[derive(Debug)]
pub struct Grant {
    /// The session's progress through the cmi5 verbs (section 9.3).
    pub session: Mutex<Session>,
    /// The AU's masteryScore, which passed and failed scores are held to.
    pub mastery_score: Option<f64>,
    pub actor: Value,
    /// The actor's IFI key (`crate::xapi::ifi_key`).
    pub actor_key: String,
    pub registration: String,
    pub activity_id: String,
    pub session_id: String,
    pub course: String,
    pub au: usize,
}

struct Fetch {
    token: String,
    used: bool,
}

/// Open launches: fetch URLs and the tokens they hand out.
#[derive(Default)]
pub struct Launches {
    fetches: Mutex<HashMap<String, Fetch>>,
    tokens: Mutex<HashMap<String, Arc<Grant>>>,
    /// What each registration has recorded per AU (completed, passed),
    /// shared by its sessions.
    registrations: Mutex<HashMap<RegistrationAu, Arc<Mutex<Recorded>>>>,
}

/// (registration, course, AU index).
type RegistrationAu = (String, String, usize);

/// A registration's record for one AU.
#[derive(Debug, Default)]
pub struct Recorded {
    pub completed: bool,
    pub passed: bool,
}

/// One AU session's state, as the cmi5 verb rules need it.
#[derive(Debug, Default)]
pub struct Session {
    pub initialized: bool,
    pub terminated: bool,
    /// passed or failed already sent in this session.
    pub judged: bool,
    pub registration: Arc<Mutex<Recorded>>,
}

const INITIALIZED: &str = "http://adlnet.gov/expapi/verbs/initialized";
const COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
const PASSED: &str = "http://adlnet.gov/expapi/verbs/passed";
const FAILED: &str = "http://adlnet.gov/expapi/verbs/failed";
const TERMINATED: &str = "http://adlnet.gov/expapi/verbs/terminated";

/// Checks a batch against the session's state and the cmi5 verb rules
/// (section 9.3: initialized first and once, terminated last, completed and
/// passed once per registration, one of passed/failed per session, no
/// failed after passed; 9.5: passed at or above masteryScore, failed below,
/// completed with completion true), and, when `apply`, records it. The
/// caller checks with `apply = false` before storing and applies after the
/// store took the batch, so a refused or failed write changes no state.
pub fn verbs(g: &Grant, statements: &[Value], apply: bool) -> Result<(), ApiError> {
    let mut s = g.session.lock().unwrap_or_else(|p| p.into_inner());
    let reg = s.registration.clone();
    let mut r = reg.lock().unwrap_or_else(|p| p.into_inner());
    let (mut initialized, mut terminated, mut judged) = (s.initialized, s.terminated, s.judged);
    let (mut completed, mut passed) = (r.completed, r.passed);
    for (i, st) in statements.iter().enumerate() {
        let refuse = |why: String| {
            tracing::warn!(session = %g.session_id, "refused a cmi5 AU statement: {why}");
            Err(ApiError::Forbidden(format!("statement [{i}]: {why} (cmi5 9.3)")))
        };
        let verb = st["verb"]["id"].as_str().unwrap_or_default();
        if terminated {
            return refuse("the session has terminated; it takes no more statements".into());
        }
        if !initialized && verb != INITIALIZED {
            return refuse("the first statement of a session is initialized".into());
        }
        // The rules below are for cmi5 defined statements: about the AU itself.
        let about_au = st["object"]["id"].as_str() == Some(g.activity_id.as_str());
        let scaled = st["result"]["score"]["scaled"].as_f64();
        match verb {
            INITIALIZED if initialized => return refuse("initialized is sent once per session".into()),
            INITIALIZED => initialized = true,
            COMPLETED if about_au => {
                if completed {
                    return refuse("completed is sent once per registration".into());
                }
                if st["result"]["completion"] != Value::Bool(true) {
                    return refuse("completed carries result.completion true".into());
                }
                completed = true;
            }
            PASSED | FAILED if about_au => {
                if judged {
                    return refuse("one of passed or failed per session".into());
                }
                if verb == PASSED && passed {
                    return refuse("passed is sent once per registration".into());
                }
                if verb == FAILED && passed {
                    return refuse("failed may not follow passed in a registration".into());
                }
                if let (Some(m), Some(sc)) = (g.mastery_score, scaled) {
                    if verb == PASSED && sc < m {
                        return refuse(format!("passed with score {sc}, below the masteryScore {m}"));
                    }
                    if verb == FAILED && sc >= m {
                        return refuse(format!("failed with score {sc}, at or above the masteryScore {m}"));
                    }
                }
                judged = true;
                passed |= verb == PASSED;
            }
            TERMINATED => terminated = true,
            _ => {}
        }
    }
    if apply {
        (s.initialized, s.terminated, s.judged) = (initialized, terminated, judged);
        (r.completed, r.passed) = (completed, passed);
    }
    Ok(())
}

impl Launches {
    /// The grant of an `Authorization` header value (`Basic <token>`), if it
    /// is a launch token.
    pub fn grant(&self, authorization: &str) -> Option<Arc<Grant>> {
        let token = authorization.strip_prefix("Basic ")?.trim();
        // Every authenticated request asks: only launch tokens take the lock.
        if !token.starts_with(TOKEN_PREFIX) {
            return None;
        }
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(token).cloned()
    }
}

fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("system randomness");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The launch activity id of an AU: the LMS's own, distinct from the
/// publisher's AU id (cmi5 requires both), stable for the course and AU,
/// under the activity base its content pack declares.
pub fn au_activity(activity_base: &str, course: &str, au: usize) -> String {
    format!("{}/cmi5/{course}/au/{au}", activity_base.trim_end_matches('/'))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchRequest {
    pub course: String,
    pub au: Value,
    pub actor: Value,
    pub registration: Option<String>,
    pub launch_mode: Option<String>,
    pub return_url: Option<String>,
}

#[derive(serde::Serialize)]
pub struct Launched {
    pub url: String,
    pub registration: String,
}

/// `POST /admin/cmi5/launch-url`.
pub async fn launch_url(
    State(node): State<AppState>,
    Json(req): Json<LaunchRequest>,
) -> Result<Json<Launched>, ApiError> {
    Ok(Json(launch(&node, req).await?))
}

/// Prepares one AU session and returns the URL to open.
pub async fn launch(node: &AppState, req: LaunchRequest) -> Result<Launched, ApiError> {
    let (public, content) = match (&node.cfg.public_url, &node.cfg.content_url) {
        (Some(p), Some(c)) => (p.trim_end_matches('/').to_string(), c.trim_end_matches('/').to_string()),
        _ => {
            return Err(ApiError::Unavailable(
                "cmi5 launches need the settings public_url and content_url (the origins browsers reach)".into(),
            ));
        }
    };
    let set = node.current().map_err(ApiError::Unavailable)?;
    let pkg = set.packages.get(&req.course).cloned().ok_or_else(|| {
        ApiError::field("unknown_course", "course", format!("no course {:?} on this node", req.course))
    })?;
    let course: &Course = &pkg.course;
    let au: &Au = match &req.au {
        Value::Number(n) => n.as_u64().and_then(|i| course.aus.get(i as usize)),
        Value::String(id) => course.aus.iter().find(|a| &a.id == id),
        _ => None,
    }
    .ok_or_else(|| ApiError::field("unknown_au", "au", format!("{} has no AU {}", req.course, req.au)))?;
    let actor_key = match (&req.actor["account"]["homePage"], &req.actor["account"]["name"]) {
        (Value::String(_), Value::String(_)) => crate::xapi::ifi_key(&req.actor),
        _ => None,
    }
    .ok_or_else(|| ApiError::field("invalid_actor", "actor", "an xAPI Agent with an account (homePage, name)"))?;
    let registration = match req.registration {
        Some(r) if crate::xapi::validate::is_uuid(&r) => r.to_ascii_lowercase(),
        Some(r) => return Err(ApiError::field("invalid_registration", "registration", format!("{r:?} is not a UUID"))),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let launch_mode = req.launch_mode.unwrap_or_else(|| "Normal".into());
    if !["Normal", "Browse", "Review"].contains(&launch_mode.as_str()) {
        return Err(ApiError::field("invalid_launch_mode", "launch_mode", "Normal, Browse or Review"));
    }
    let session_id = uuid::Uuid::new_v4().to_string();
    let activity_id = au_activity(&pkg.activity_base, &req.course, au.index);
    let move_on = serde_json::to_value(au.move_on).expect("enum");
    let mut launch_data = json!({
        "contextTemplate": {
            "contextActivities": {"grouping": [{"objectType": "Activity", "id": au.id}]},
            "extensions": {SESSION_EXT: session_id},
        },
        "launchMode": launch_mode,
        "launchMethod": if au.launch_method == LaunchMethod::OwnWindow { "OwnWindow" } else { "AnyWindow" },
        "moveOn": move_on,
    });
    if let Some(m) = au.mastery_score {
        launch_data["masteryScore"] = json!(m);
    }
    if let Some(p) = &au.launch_parameters {
        launch_data["launchParameters"] = json!(p);
    }
    if let Some(k) = &au.entitlement_key {
        launch_data["entitlementKey"] = json!({"courseStructure": k});
    }
    if let Some(r) = &req.return_url {
        launch_data["returnURL"] = json!(r);
    }
    // The LMS writes LaunchData before the launch (the AU may only read it).
    let place = Place {
        kind: DocKind::State,
        activity: activity_id.clone(),
        agent: actor_key.clone(),
        registration: Some(registration.clone()),
    };
    node.store
        .write_document(Write {
            place,
            id: Some(LAUNCH_DATA.into()),
            change: Change::Put { content_type: "application/json".into(), body: launch_data.to_string().into_bytes() },
            pre: Precondition { if_match: None, if_none_match: None, required_to_replace: false },
            updated: crate::xapi::format_stored(time::OffsetDateTime::now_utc()),
        })
        .await?;

    // The launch URL: the AU's own (with its query) on the content origin,
    // or its absolute URL, plus the cmi5 parameters.
    let fetch_id = random_token(18);
    let base =
        if au.in_package { format!("{content}/p/{}/{}/{}", req.course, pkg.tag, au.url) } else { au.url.clone() };
    let params = [
        ("endpoint", format!("{public}/xapi/")),
        ("fetch", format!("{public}/cmi5/fetch/{fetch_id}")),
        ("actor", req.actor.to_string()),
        ("registration", registration.clone()),
        ("activityId", activity_id.clone()),
    ];
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}{}", query.join("&"));

    let mut launched = json!({
        "actor": req.actor,
        "verb": {"id": "http://adlnet.gov/expapi/verbs/launched", "display": {"en-US": "Launched"}},
        "object": {"objectType": "Activity", "id": activity_id, "definition": {"name": au.title}},
        "context": {
            "registration": registration,
            "contextActivities": {"grouping": [{"objectType": "Activity", "id": au.id}], "category": [{"id": CATEGORY}]},
            "extensions": {
                SESSION_EXT: session_id,
                "https://w3id.org/xapi/cmi5/context/extensions/launchmode": launch_mode,
                "https://w3id.org/xapi/cmi5/context/extensions/launchurl": url,
                "https://w3id.org/xapi/cmi5/context/extensions/moveon": move_on,
            },
        },
        "timestamp": crate::xapi::format_stored(time::OffsetDateTime::now_utc()),
    });
    if let Some(m) = au.mastery_score {
        launched["context"]["extensions"]["https://w3id.org/xapi/cmi5/context/extensions/masteryscore"] = json!(m);
    }
    if let Some(p) = &au.launch_parameters {
        launched["context"]["extensions"]["https://w3id.org/xapi/cmi5/context/extensions/launchparameters"] = json!(p);
    }
    let authority =
        json!({"objectType": "Agent", "account": {"homePage": node.cfg.learner_home_page, "name": "lms:cmi5"}});
    let p = crate::xapi::prepare(
        launched,
        "launched",
        &authority,
        time::OffsetDateTime::now_utc(),
        crate::xapi::validate::Spec::V2,
    )
    .map_err(|e| ApiError::Unavailable(format!("the launched statement does not validate: {e}")))?;
    node.store.write(vec![p]).await?;

    let token = format!("{TOKEN_PREFIX}{}", random_token(24));
    let registration_state = node
        .launches
        .registrations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry((registration.clone(), req.course.clone(), au.index))
        .or_default()
        .clone();
    let grant = Grant {
        session: Mutex::new(Session { registration: registration_state, ..Default::default() }),
        mastery_score: au.mastery_score,
        actor: req.actor.clone(),
        actor_key,
        registration: registration.clone(),
        activity_id,
        session_id,
        course: req.course.clone(),
        au: au.index,
    };
    node.launches.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(token.clone(), Arc::new(grant));
    node.launches.fetches.lock().unwrap_or_else(|p| p.into_inner()).insert(fetch_id, Fetch { token, used: false });
    tracing::info!(course = %req.course, au = au.index, %registration, "cmi5 launch prepared");
    Ok(Launched { url, registration })
}

/// `POST /cmi5/fetch/{id}` (public): the auth token once, then error 1.
pub async fn fetch(State(node): State<AppState>, Path(id): Path<String>) -> Json<Value> {
    let mut fetches = node.launches.fetches.lock().unwrap_or_else(|p| p.into_inner());
    Json(match fetches.get_mut(&id) {
        Some(f) if !f.used => {
            f.used = true;
            json!({"auth-token": f.token})
        }
        Some(_) => json!({"error-code": "1", "error-text": "The authorization token has already been returned."}),
        None => json!({"error-code": "2", "error-text": "This fetch URL is not one this node issued."}),
    })
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Statements a launch token may store: its actor, its registration, its
/// session; no voiding. (Objects other than the AU's activity are "cmi5
/// allowed" statements, such as interactions.)
pub fn may_write(g: &Grant, statements: &[Value]) -> Result<(), ApiError> {
    for (i, s) in statements.iter().enumerate() {
        let refuse = |why: &str| {
            tracing::warn!(session = %g.session_id, "refused a cmi5 AU statement: {why}");
            Err(ApiError::Forbidden(format!("statement [{i}]: {why}")))
        };
        if crate::xapi::ifi_key(&s["actor"]).as_deref() != Some(g.actor_key.as_str()) {
            return refuse("the actor is not the launched learner");
        }
        if s["context"]["registration"].as_str().map(str::to_ascii_lowercase).as_deref()
            != Some(g.registration.as_str())
        {
            return refuse("context.registration is not the launch's registration");
        }
        if s["context"]["extensions"][SESSION_EXT].as_str() != Some(g.session_id.as_str()) {
            return refuse("the session id extension is not the launch's session");
        }
        if s["verb"]["id"] == "http://adlnet.gov/expapi/verbs/voided" {
            return refuse("an AU may not void statements (cmi5 6.3)");
        }
    }
    Ok(())
}

/// Documents a launch token may reach: its actor's State of its activity
/// and registration (LaunchData read-only, checked by the caller), its
/// actor's Agent Profile (read), its activity's Activity Profile (read).
pub fn may_document(g: &Grant, place: &Place, write: bool) -> Result<(), ApiError> {
    let allowed = match place.kind {
        DocKind::State => {
            place.agent == g.actor_key
                && place.activity == g.activity_id
                && place.registration.as_deref() == Some(g.registration.as_str())
        }
        DocKind::AgentProfile => !write && place.agent == g.actor_key,
        DocKind::ActivityProfile => !write && place.activity == g.activity_id,
    };
    if allowed {
        return Ok(());
    }
    tracing::warn!(session = %g.session_id, kind = place.kind.as_str(), write, "refused a cmi5 AU document request");
    Err(ApiError::Forbidden(
        "a cmi5 launch token reaches only its learner's state for its activity and registration (and reads their profiles)"
            .into(),
    ))
}
