//! The rules a launch token is held to: which statements and documents it
//! reaches ([`may_write`], [`may_document`]) and the cmi5 verb rules of a
//! session and a registration ([`verbs`]).

use super::{Grant, SESSION_EXT};
use crate::http::error::ApiError;
use crate::xapi::documents::{Kind as DocKind, Place};
use serde_json::Value;

pub(super) const INITIALIZED: &str = "http://adlnet.gov/expapi/verbs/initialized";
pub(super) const COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
pub(super) const PASSED: &str = "http://adlnet.gov/expapi/verbs/passed";
pub(super) const FAILED: &str = "http://adlnet.gov/expapi/verbs/failed";
pub(super) const TERMINATED: &str = "http://adlnet.gov/expapi/verbs/terminated";

/// Checks a batch against the session's state and the cmi5 verb rules
/// (section 9.3: initialized first and once, terminated last, completed and
/// passed once per registration, one of passed/failed per session, no
/// failed after passed; 9.5: passed at or above masteryScore, failed below,
/// completed with completion true), and, when `apply`, records it. The
/// caller checks with `apply = false` before storing and applies after the
/// store took the batch, so a refused or failed write changes no state.
pub fn verbs(g: &Grant, statements: &[Value], apply: bool) -> Result<(), ApiError> {
    let mut s = g.session.lock().unwrap_or_else(|p| p.into_inner());
    if s.abandoned {
        tracing::warn!(session = %g.session_id, "refused a cmi5 AU statement: the session was abandoned");
        return Err(ApiError::Forbidden(
            "the session was abandoned (the learner launched again); it takes no more statements (cmi5 9.3.6)".into(),
        ));
    }
    let (mut initialized, mut terminated, mut judged) = (s.initialized, s.terminated, s.judged);
    let (mut completed, mut passed) = (s.recorded.completed, s.recorded.passed);
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
        (s.recorded.completed, s.recorded.passed) = (completed, passed);
        s.last_at = time::OffsetDateTime::now_utc();
    }
    Ok(())
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
/// and registration (`LMS.LaunchData` read-only: a write naming no id, as a
/// DELETE of all states does, would change it too), its actor's Agent
/// Profile (read), its activity's Activity Profile (read).
pub fn may_document(g: &Grant, place: &Place, id: Option<&str>, write: bool) -> Result<(), ApiError> {
    if write && place.kind == DocKind::State && id.is_none_or(|i| i == super::LAUNCH_DATA) {
        return Err(ApiError::Forbidden(format!(
            "{} is the LMS's; an AU may read it, not change it",
            super::LAUNCH_DATA
        )));
    }
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
