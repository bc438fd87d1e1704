//! `waived` (cmi5 9.3.7): the LMS records that a learner met an AU's
//! requirements by other means (a coach's decision), with a reason (9.5.5.2),
//! under a session id of its own that carries nothing else but the
//! `satisfied` statements it leads to; once per AU and registration.
//!
//! `POST /admin/cmi5/waive` (admin listener) takes `{"course", "au" (index
//! or id), "actor", "registration", "reason"}` and answers 201
//! `{"registration", "session"}`; the coach view waives for a learner of
//! the coach's class.

use super::moveon::{self, WAIVED};
use super::{CATEGORY, SESSION_EXT, actor_key, au_activity, au_index, checked_registration, lms_statements, package};
use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// The reasons cmi5 names (9.5.5.2).
pub const REASONS: [&str; 4] = ["Tested Out", "Equivalent AU", "Equivalent Outside Activity", "Administrative"];
const REASON_EXT: &str = "https://w3id.org/xapi/cmi5/result/extensions/reason";
const MOVEON_CATEGORY: &str = "https://w3id.org/xapi/cmi5/context/categories/moveon";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaiveRequest {
    pub course: String,
    pub au: Value,
    pub actor: Value,
    pub registration: String,
    pub reason: String,
}

/// `POST /admin/cmi5/waive`.
pub async fn waive_admin(
    State(node): State<AppState>,
    Json(req): Json<WaiveRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let registration = checked_registration(&req.registration)?;
    let session = waive(&node, req).await?;
    Ok((StatusCode::CREATED, Json(json!({"registration": registration, "session": session}))))
}

/// Records `waived` for the AU and then `satisfied` for what that meets;
/// the session id of both. 409 when the AU is already waived in the
/// registration.
pub async fn waive(node: &AppState, req: WaiveRequest) -> Result<String, ApiError> {
    if !REASONS.contains(&req.reason.as_str()) {
        return Err(ApiError::field("invalid_reason", "reason", format!("{:?} is not one of {REASONS:?}", req.reason)));
    }
    let pkg = package(node, &req.course)?;
    let course = &pkg.course;
    let au = &course.aus[au_index(course, &req.au)?];
    let key = actor_key(&req.actor)?;
    let registration = checked_registration(&req.registration)?;
    let activity = au_activity(&pkg.activity_base, &course.id, au.index);
    let session = uuid::Uuid::new_v4().to_string();
    {
        // One decision at a time, as for satisfied: never two waived.
        let _one = node.launches.satisfying.lock().await;
        let met = moveon::recorded(node, course, &pkg.activity_base, &key, &registration).await?;
        if met[au.index].waived {
            return Err(ApiError::Conflict(format!(
                "{} AU {} is already waived in registration {registration}",
                course.id, au.index
            )));
        }
        let statement = json!({
            "actor": req.actor,
            "verb": {"id": WAIVED, "display": {"en-US": "waived"}},
            "object": {"objectType": "Activity", "id": activity},
            "result": {"success": true, "completion": true, "extensions": {REASON_EXT: req.reason}},
            "context": {
                "registration": registration,
                "contextActivities": {
                    "grouping": [{"objectType": "Activity", "id": au.id}],
                    "category": [{"id": CATEGORY}, {"id": MOVEON_CATEGORY}],
                },
                "extensions": {SESSION_EXT: session},
            },
            "timestamp": crate::xapi::format_stored(time::OffsetDateTime::now_utc()),
        });
        lms_statements(node, vec![statement], "waived").await?;
    }
    moveon::satisfy(node, course, &pkg.activity_base, &req.actor, &registration, &session).await?;
    tracing::info!(course = %course.id, au = au.index, %registration, reason = %req.reason, "cmi5 AU waived");
    Ok(session)
}
