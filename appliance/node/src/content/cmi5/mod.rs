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
//! A launch also closes the learner's open session of the same registration
//! (`abandoned`, 9.3.6) and, with every AU batch that completes or passes,
//! records `satisfied` for the blocks and the course whose moveOn is met
//! ([`moveon`]).
//!
//! Sessions live in memory: a node restart ends them (the AU's next request
//! is 401 and the learner launches again; what it stored is kept, and what
//! the registration recorded is read back from the store at the next
//! launch). A session that was open at the restart gets no `abandoned`.

pub mod moveon;
mod rules;
mod waive;

pub use rules::{may_document, may_write, verbs};
pub use waive::{WaiveRequest, waive, waive_admin};

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::xapi::documents::{Kind as DocKind, Place};
use axum::Json;
use axum::extract::{Path, State};
use lms_package::course::{Au, Course, LangMap, LaunchMethod};
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
    /// The publisher's AU id (the contextTemplate's grouping).
    pub publisher_au: String,
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
    /// Held while a registration's `satisfied` statements are decided and
    /// written (`moveon::satisfy`).
    satisfying: tokio::sync::Mutex<()>,
}

/// A registration's record for the session's AU, as the verb rules need it
/// (read from the store at launch).
#[derive(Debug, Default)]
pub struct Recorded {
    pub completed: bool,
    pub passed: bool,
}

/// One AU session's state, as the cmi5 verb rules need it.
#[derive(Debug)]
pub struct Session {
    pub initialized: bool,
    pub terminated: bool,
    /// The learner launched again while this session was open (cmi5 9.3.6):
    /// it takes nothing more.
    pub abandoned: bool,
    /// passed or failed already sent in this session.
    pub judged: bool,
    pub recorded: Recorded,
    pub launched_at: time::OffsetDateTime,
    /// When the AU last stored statements (the launch, before it did).
    pub last_at: time::OffsetDateTime,
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
    /// The learner's languages, most wanted first (RFC 5646 tags, comma
    /// separated), for the `cmi5LearnerPreferences` Agent Profile; the
    /// node's `default_language` when not given.
    #[serde(default)]
    pub language: Option<String>,
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
    let public = node.cfg.public_url.as_deref().map(|p| p.trim_end_matches('/').to_string()).ok_or_else(|| {
        ApiError::Unavailable(
            "cmi5 launches need the setting public_url (the origin browsers reach the node at)".into(),
        )
    })?;
    let content = super::content_origin(node)?;
    let pkg = package(node, &req.course)?;
    let course: &Course = &pkg.course;
    let au: &Au = &course.aus[au_index(course, &req.au)?];
    let actor_key = actor_key(&req.actor)?;
    let registration = match req.registration {
        Some(r) => checked_registration(&r)?,
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
    // The learner's open session of this registration ends here (9.3.6).
    abandon_open(node, &actor_key, &registration).await?;
    learner_preferences(node, &actor_key, req.language.as_deref()).await?;
    // The LMS writes LaunchData before the launch (the AU may only read it).
    let place = Place {
        kind: DocKind::State,
        activity: activity_id.clone(),
        agent: actor_key.clone(),
        registration: Some(registration.clone()),
    };
    super::put_json_document(node, place, LAUNCH_DATA, &launch_data).await?;

    // The launch URL: the AU's own (with its query) on the content origin,
    // or its absolute URL, plus the cmi5 parameters.
    let fetch_id = crate::roster::sessions::random_token(18);
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
        "object": {"objectType": "Activity", "id": activity_id, "definition": {"name": lang_map(&au.title)}},
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
    lms_statements(node, vec![launched], "launched").await?;

    // moveOn is evaluated at registration too (9.6.1): blocks of
    // NotApplicable AUs are satisfied at once, under a session id of their
    // own. What the registration recorded, read for that from the store,
    // seeds the session, so the verb rules hold across sessions and restarts.
    let outside = uuid::Uuid::new_v4().to_string();
    let met = moveon::satisfy(node, course, &pkg.activity_base, &req.actor, &registration, &outside).await?;
    let now = time::OffsetDateTime::now_utc();
    let session = Session {
        initialized: false,
        terminated: false,
        abandoned: false,
        judged: false,
        recorded: Recorded { completed: met[au.index].completed, passed: met[au.index].passed },
        launched_at: now,
        last_at: now,
    };
    let token = format!("{TOKEN_PREFIX}{}", crate::roster::sessions::random_token(24));
    let grant = Grant {
        session: Mutex::new(session),
        mastery_score: au.mastery_score,
        actor: req.actor.clone(),
        actor_key,
        registration: registration.clone(),
        activity_id,
        publisher_au: au.id.clone(),
        session_id,
        course: req.course.clone(),
        au: au.index,
    };
    node.launches.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(token.clone(), Arc::new(grant));
    node.launches.fetches.lock().unwrap_or_else(|p| p.into_inner()).insert(fetch_id, Fetch { token, used: false });
    tracing::info!(course = %req.course, au = au.index, %registration, "cmi5 launch prepared");
    Ok(Launched { url, registration })
}

/// The Agent Profile `cmi5LearnerPreferences` (cmi5 11.0) the AU reads on
/// start: the learner's languages, audio on. Written when missing or when
/// the languages changed; what else it holds is kept.
async fn learner_preferences(node: &AppState, actor_key: &str, language: Option<&str>) -> Result<(), ApiError> {
    const PROFILE: &str = "cmi5LearnerPreferences";
    let wanted = language.filter(|l| !l.trim().is_empty()).unwrap_or(&node.cfg.default_language).to_string();
    if !wanted.split(',').all(|t| crate::xapi::validate::is_language_tag(t.trim())) {
        return Err(ApiError::field(
            "invalid_language",
            "language",
            format!("{wanted:?} is not a list of RFC 5646 tags"),
        ));
    }
    let place = || Place {
        kind: DocKind::AgentProfile,
        activity: String::new(),
        agent: actor_key.to_string(),
        registration: None,
    };
    let mut prefs = match node.store.document(place(), PROFILE.into()).await? {
        Some(d) => serde_json::from_slice::<Value>(&d.body).ok().filter(Value::is_object).unwrap_or_else(|| json!({})),
        None => json!({}),
    };
    if prefs["languagePreference"].as_str() == Some(wanted.as_str()) {
        return Ok(());
    }
    prefs["languagePreference"] = json!(wanted);
    if prefs.get("audioPreference").is_none() {
        prefs["audioPreference"] = json!("on");
    }
    super::put_json_document(node, place(), PROFILE, &prefs).await
}

/// A learner's registration of a course in the learner app: one per
/// learner and course, the same on every launch (so what they did counts
/// on), made from both as a name-based UUID.
pub fn learner_registration(learner: &str, course: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("lms-registration\n{learner}\n{course}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid().to_string()
}

/// The imported package `course` of the active content.
pub(super) fn package(node: &AppState, course: &str) -> Result<Arc<crate::content::serve::PackageFiles>, ApiError> {
    let set = node.current().map_err(ApiError::Unavailable)?;
    set.packages
        .get(course)
        .cloned()
        .ok_or_else(|| ApiError::field("unknown_course", "course", format!("no course {course:?} on this node")))
}

/// The index of the AU `au` names (its index, or its publisher id).
pub(super) fn au_index(course: &Course, au: &Value) -> Result<usize, ApiError> {
    match au {
        Value::Number(n) => n.as_u64().map(|i| i as usize).filter(|i| *i < course.aus.len()),
        Value::String(id) => course.aus.iter().position(|a| &a.id == id),
        _ => None,
    }
    .ok_or_else(|| ApiError::field("unknown_au", "au", format!("{} has no AU {au}", course.id)))
}

/// The IFI key of an actor, which must be an Agent with an account.
pub(super) fn actor_key(actor: &Value) -> Result<String, ApiError> {
    match (&actor["account"]["homePage"], &actor["account"]["name"]) {
        (Value::String(_), Value::String(_)) => crate::xapi::ifi_key(actor),
        _ => None,
    }
    .ok_or_else(|| ApiError::field("invalid_actor", "actor", "an xAPI Agent with an account (homePage, name)"))
}

pub(super) fn checked_registration(r: &str) -> Result<String, ApiError> {
    if crate::xapi::validate::is_uuid(r) {
        Ok(r.to_ascii_lowercase())
    } else {
        Err(ApiError::field("invalid_registration", "registration", format!("{r:?} is not a UUID")))
    }
}

/// A language map as xAPI takes it: a langstring without a language is `und`.
pub(super) fn lang_map(m: &LangMap) -> Value {
    let out: serde_json::Map<String, Value> =
        m.iter().map(|(k, v)| (if k.is_empty() { "und".to_string() } else { k.clone() }, json!(v))).collect();
    Value::Object(out)
}

/// Stores statements the LMS makes (launched, abandoned, satisfied,
/// waived) under its own authority, `lms:cmi5`, in one batch.
pub(super) async fn lms_statements(node: &AppState, statements: Vec<Value>, what: &str) -> Result<(), ApiError> {
    super::store_statements(node, statements, what, &super::lms_authority(node, "lms:cmi5")).await
}

/// How long a terminated session's token still answers (the AU may read
/// before it leaves), and how long any launch token lives.
const TERMINATED_GRACE: time::Duration = time::Duration::hours(1);
const TOKEN_LIFETIME: time::Duration = time::Duration::hours(24);

/// Closes the learner's open sessions of `registration` (any AU of it):
/// each gets `abandoned` with its duration (launch to the AU's last
/// statements, 9.5.4.2) and its token stops working. Tokens past their
/// time go too.
async fn abandon_open(node: &AppState, actor_key: &str, registration: &str) -> Result<(), ApiError> {
    let now = time::OffsetDateTime::now_utc();
    let mut open = Vec::new();
    {
        let mut tokens = node.launches.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.retain(|_, g| {
            let mut s = g.session.lock().unwrap_or_else(|p| p.into_inner());
            if s.launched_at + TOKEN_LIFETIME < now || (s.terminated && s.last_at + TERMINATED_GRACE < now) {
                return false;
            }
            if g.actor_key == actor_key && g.registration == registration && !s.terminated {
                s.abandoned = true;
                open.push((g.clone(), s.last_at - s.launched_at));
                return false;
            }
            true
        });
        let live: std::collections::HashSet<String> = tokens.keys().cloned().collect();
        node.launches.fetches.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, f| live.contains(&f.token));
    }
    if open.is_empty() {
        return Ok(());
    }
    let statements = open
        .iter()
        .map(|(g, took)| {
            json!({
                "actor": g.actor,
                "verb": {"id": "https://w3id.org/xapi/adl/verbs/abandoned", "display": {"en-US": "abandoned"}},
                "object": {"objectType": "Activity", "id": g.activity_id},
                "result": {"duration": super::iso_duration(*took)},
                "context": {
                    "registration": g.registration,
                    "contextActivities": {"grouping": [{"objectType": "Activity", "id": g.publisher_au}], "category": [{"id": CATEGORY}]},
                    "extensions": {SESSION_EXT: g.session_id},
                },
                "timestamp": crate::xapi::format_stored(now),
            })
        })
        .collect();
    for (g, _) in &open {
        tracing::info!(session = %g.session_id, course = %g.course, au = g.au, "cmi5 session abandoned by a new launch");
    }
    lms_statements(node, statements, "abandoned").await
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
