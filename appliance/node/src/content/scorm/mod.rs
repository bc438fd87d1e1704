//! SCORM 1.2 and 2004 SCOs, run in the node's player page on the content
//! origin. The runtime is scorm-again (MIT, vendored unchanged in
//! `assets/scorm-again`): `window.API` / `window.API_1484_11` in the player
//! page, which opens the SCO in a frame of the same origin. scorm-again
//! commits the SCO's data to the node; the node turns it into xAPI as ADL's
//! xAPI SCORM profile describes ([`record`]) and keeps the runtime data in
//! the State resource, from which a suspended attempt resumes (location,
//! suspend data, the same attempt).
//!
//! Routes of the content listener:
//! - `GET /scorm/play/{launch}`: the player page of a launch;
//! - `GET /scorm/runtime/{file}`: scorm-again and the player's script;
//! - `GET /scorm/state/{launch}`: what the attempt resumes from;
//! - `POST /scorm/commit/{launch}[?final=true]`: scorm-again's commits.
//!
//! `{launch}` is a random secret per launch (the only credential the
//! player holds; it reaches this learner's attempt of this SCO only).
//! Launches live in memory, like cmi5 sessions.

mod record;

use super::cmi5::{actor_key, checked_registration, package};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::xapi::documents::{Kind as DocKind, Place};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lms_package::course::{Kind, UnitKind};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const RUNTIME_12: &str = include_str!("../../../assets/scorm-again/scorm12.min.js");
const RUNTIME_2004: &str = include_str!("../../../assets/scorm-again/scorm2004.min.js");
const PLAYER: &str = include_str!("../../../assets/scorm-player.js");
/// The State document a SCO's runtime data is kept in.
pub const STATE_ID: &str = "scorm.runtime";
/// Attempt IRIs the State document keeps (the latest).
const MAX_ATTEMPTS_KEPT: usize = 50;

/// The LMS's activity id of a SCORM course's unit.
pub fn unit_activity(activity_base: &str, course: &str, unit: usize) -> String {
    format!("{}/scorm/{course}/unit/{unit}", activity_base.trim_end_matches('/'))
}

/// Open SCORM launches by their secret.
#[derive(Default)]
pub struct Players {
    launches: Mutex<HashMap<String, Arc<Attempt>>>,
}

/// One launch of a SCO for one learner.
pub struct Attempt {
    version: &'static str,
    /// The learner's page language: the player page's, and the SCO's
    /// learner preference.
    language: String,
    title: String,
    sco: String,
    return_url: String,
    init: Value,
    actor: Value,
    actor_key: String,
    registration: String,
    activity: String,
    course_activity: String,
    /// The attempt's IRI (`{activity}?attemptId={uuid}`): new at each
    /// launch, kept when a suspended attempt resumes.
    attempt: String,
    /// This SCO's attempts, oldest first (the profile's `attempts`).
    attempts: Vec<String>,
    /// Launched over a suspended attempt: it starts with `resumed`.
    resumed: bool,
    started: time::OffsetDateTime,
    seen: Mutex<Seen>,
}

/// What this attempt has recorded so far (from the kept runtime data at
/// launch, then from each commit), so each change is recorded once.
#[derive(Default)]
struct Seen {
    initialized: bool,
    completion: String,
    success: String,
    /// The last score reported (`scored` once per new score).
    score: Option<Value>,
    /// Interaction responses and objective statuses recorded, by key.
    recorded: std::collections::HashSet<String>,
    finished: bool,
}

pub struct Launch {
    pub course: String,
    pub unit: usize,
    pub actor: Value,
    pub registration: String,
    pub return_url: String,
    /// The learner's page language (zh-CN, en).
    pub language: String,
}

/// Prepares a launch of unit `unit` (a SCO; an asset opens as its file)
/// and the URL to open on the content origin.
pub async fn launch(node: &AppState, req: Launch) -> Result<String, ApiError> {
    let content = super::content_origin(node)?;
    let pkg = package(node, &req.course)?;
    let version = match pkg.kind {
        Kind::Scorm12 => "1.2",
        Kind::Scorm2004 => "2004",
        _ => return Err(ApiError::field("unknown_unit", "unit", format!("{} is not a SCORM course", req.course))),
    };
    let course = &pkg.course;
    let unit = course
        .units
        .get(req.unit)
        .ok_or_else(|| ApiError::field("unknown_unit", "unit", format!("{} has no unit {}", course.id, req.unit)))?;
    let file = format!("/p/{}/{}/{}", course.id, pkg.tag, unit.href);
    if unit.kind != UnitKind::Sco {
        return Ok(format!("{content}{file}"));
    }
    let key = actor_key(&req.actor)?;
    let registration = checked_registration(&req.registration)?;
    let activity = unit_activity(&pkg.activity_base, &course.id, unit.index);
    let kept = node.store.document(state_place(&activity, &key, &registration), STATE_ID.into()).await?;
    let kept: Value = kept.and_then(|d| serde_json::from_slice(&d.body).ok()).unwrap_or(Value::Null);
    let seen = Seen {
        completion: kept["completion"].as_str().unwrap_or_default().to_string(),
        success: kept["success"].as_str().unwrap_or_default().to_string(),
        score: Some(kept["score"].clone()).filter(|s| !s.is_null()),
        ..Default::default()
    };
    // A suspended attempt goes on; anything else starts a new one.
    let resumed = kept["exit"] == "suspend";
    let attempt = match kept["attempt"].as_str() {
        Some(a) if resumed => a.to_string(),
        _ => format!("{activity}?attemptId={}", uuid::Uuid::new_v4()),
    };
    let mut attempts: Vec<String> =
        kept["attempts"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(String::from)).collect();
    if !attempts.contains(&attempt) {
        attempts.push(attempt.clone());
    }
    let keep_from = attempts.len().saturating_sub(MAX_ATTEMPTS_KEPT);
    attempts.drain(..keep_from);
    let name = req.actor["account"]["name"].as_str().unwrap_or_default().to_string();
    let mut init = if version == "1.2" {
        json!({"core": {"student_id": name, "student_name": name}, "student_preference": {"language": req.language}})
    } else {
        json!({"learner_id": name, "learner_name": name, "learner_preference": {"language": req.language}})
    };
    if let Some(d) = &unit.data_from_lms {
        init["launch_data"] = json!(d);
    }
    if let Some(m) = unit.mastery_score {
        if version == "1.2" {
            init["student_data"] = json!({"mastery_score": format!("{}", (m * 100.0).round())});
        } else {
            init["scaled_passing_score"] = json!(format!("{m}"));
        }
    }
    let attempt = Attempt {
        version,
        title: super::text_in(&unit.title, &req.language),
        language: req.language,
        sco: file,
        return_url: req.return_url,
        init,
        actor: req.actor,
        actor_key: key,
        registration,
        activity,
        course_activity: super::cmi5::moveon::course_activity(&pkg.activity_base, &course.id),
        attempt,
        attempts,
        resumed,
        started: time::OffsetDateTime::now_utc(),
        seen: Mutex::new(seen),
    };
    let secret = crate::roster::sessions::random_token(24);
    node.players.launches.lock().unwrap_or_else(|p| p.into_inner()).insert(secret.clone(), Arc::new(attempt));
    tracing::info!(course = %req.course, unit = req.unit, "SCORM launch prepared");
    Ok(format!("{content}/scorm/play/{secret}"))
}

fn state_place(activity: &str, actor_key: &str, registration: &str) -> Place {
    Place {
        kind: DocKind::State,
        activity: activity.to_string(),
        agent: actor_key.to_string(),
        registration: Some(registration.to_string()),
    }
}

fn attempt(node: &AppState, secret: &str) -> Result<Arc<Attempt>, StatusCode> {
    node.players.launches.lock().unwrap_or_else(|p| p.into_inner()).get(secret).cloned().ok_or(StatusCode::NOT_FOUND)
}

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/scorm/play/{launch}", axum::routing::get(play))
        .route("/scorm/runtime/{file}", axum::routing::get(runtime))
        .route("/scorm/state/{launch}", axum::routing::get(resume))
        .route("/scorm/commit/{launch}", axum::routing::post(commit))
}

/// The player page: the runtime, the launch's data, the SCO's frame.
async fn play(State(node): State<AppState>, Path(secret): Path<String>) -> Response {
    let a = match attempt(&node, &secret) {
        Ok(a) => a,
        Err(s) => return s.into_response(),
    };
    let data = json!({
        "version": a.version,
        "commit": format!("/scorm/commit/{secret}"),
        "state": format!("/scorm/state/{secret}"),
        "sco": a.sco,
        "returnUrl": a.return_url,
        "init": a.init,
    });
    // In a JSON script block: no "</" may close it early.
    let data = data.to_string().replace('<', "\\u003c");
    let runtime = if a.version == "1.2" { "scorm12.js" } else { "scorm2004.js" };
    let escape = crate::http::pages::escape;
    let (title, lang) = (escape(&a.title), escape(&a.language));
    let page = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>html,body{{margin:0;height:100%}}iframe{{border:0;width:100%;height:100%;display:block}}</style>\
         <script id=\"launch\" type=\"application/json\">{data}</script>\
         <script src=\"/scorm/runtime/{runtime}\"></script><script src=\"/scorm/runtime/player.js\"></script></head>\
         <body><iframe id=\"sco\" title=\"{title}\"></iframe></body></html>\n"
    );
    let mut r = page.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; frame-src 'self'; object-src 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

type Gzipped = std::sync::OnceLock<axum::body::Bytes>;

/// The player's scripts, gzip'd once (scorm-again's SCORM 2004 runtime is
/// 565 KB minified, 107 KB gzip'd: what a learner's first launch loads).
fn gzipped(kept: &'static Gzipped, body: &'static str) -> axum::body::Bytes {
    use std::io::Write;
    kept.get_or_init(|| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(body.as_bytes()).expect("in memory");
        gz.finish().expect("in memory").into()
    })
    .clone()
}

async fn runtime(Path(file): Path<String>, headers: axum::http::HeaderMap) -> Response {
    static GZIPPED: [Gzipped; 3] = [Gzipped::new(), Gzipped::new(), Gzipped::new()];
    let (body, kept) = match file.as_str() {
        "scorm12.js" => (RUNTIME_12, &GZIPPED[0]),
        "scorm2004.js" => (RUNTIME_2004, &GZIPPED[1]),
        "player.js" => (PLAYER, &GZIPPED[2]),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.split(';').next().unwrap_or_default().trim() == "gzip"));
    let mut r = if gzip { gzipped(kept, body).into_response() } else { body.into_response() };
    let h = r.headers_mut();
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// What the attempt resumes from: the kept location and suspend data, when
/// the learner left the SCO suspended.
async fn resume(State(node): State<AppState>, Path(secret): Path<String>) -> Response {
    let a = match attempt(&node, &secret) {
        Ok(a) => a,
        Err(s) => return s.into_response(),
    };
    let kept = match node.store.document(state_place(&a.activity, &a.actor_key, &a.registration), STATE_ID.into()).await
    {
        Ok(d) => d.and_then(|d| serde_json::from_slice::<Value>(&d.body).ok()).unwrap_or(Value::Null),
        Err(e) => return ApiError::from(e).into_response(),
    };
    if kept["exit"] != "suspend" {
        return Json(json!({})).into_response();
    }
    let cmi = &kept["cmi"];
    let resumed = if a.version == "1.2" {
        json!({"core": {"lesson_location": cmi["core"]["lesson_location"], "entry": "resume"}, "suspend_data": cmi["suspend_data"]})
    } else {
        json!({"location": cmi["location"], "entry": "resume", "suspend_data": cmi["suspend_data"]})
    };
    Json(json!({ "cmi": strip_nulls(resumed) })).into_response()
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, strip_nulls(v))).collect())
        }
        v => v,
    }
}

#[derive(serde::Deserialize)]
struct Final {
    #[serde(rename = "final")]
    done: Option<String>,
}

/// scorm-again's commit: `{successStatus, completionStatus,
/// totalTimeSeconds, score?, runtimeData}`. Answers its `{result,
/// errorCode}` (101 when the attempt is unknown or over).
async fn commit(
    State(node): State<AppState>,
    Path(secret): Path<String>,
    Query(q): Query<Final>,
    body: axum::body::Bytes,
) -> Response {
    let refuse = |code: u16| Json(json!({"result": false, "errorCode": code})).into_response();
    let Ok(a) = attempt(&node, &secret) else { return refuse(101) };
    let Ok(c) = serde_json::from_slice::<Value>(&body) else { return refuse(201) };
    let last = q.done.as_deref() == Some("true");
    match record::record(&node, &a, &c, last).await {
        Ok(()) => {
            if last {
                node.players.launches.lock().unwrap_or_else(|p| p.into_inner()).remove(&secret);
            }
            Json(json!({"result": true, "errorCode": 0})).into_response()
        }
        Err(e) => {
            tracing::warn!("SCORM commit not recorded: {e}");
            refuse(101)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_is_the_pinned_scorm_again() {
        use sha2::{Digest, Sha256};
        let hex = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
        assert_eq!(hex(RUNTIME_12), "cf86d5840673b1ae90d00a1f6689376312842b65c7595b417b1259bfb0fc56b6");
        assert_eq!(hex(RUNTIME_2004), "cc03a8c90f1f7cff3ad41d9e246a0c37760d7502bed53b1335622c189768e4ea");
    }
}
