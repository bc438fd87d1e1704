//! The coach view (`/coach`): who may see what is decided here, in the
//! host, before any data is gathered. A coach sees their own classes and
//! the learners in them; an admin sees every class; a learner gets 403
//! (logged), whatever URL they type. Each learner's progress comes from the
//! progress module over that learner's statements, as on their own pages.

use super::super::error::ApiError;
use super::super::learner::{learner_actor, may_see_learner, progress_call};
use super::{Page, SignedIn, data, fail, show, with};
use crate::http::{AppState, Params};
use crate::roster::{Person, Role};
use axum::extract::State;
use serde_json::{Value, json};

/// Only people with one of `roles` (`who`: "a coach") pass; anyone else
/// gets 403, logged.
fn only(s: &SignedIn, roles: &[Role], who: &str) -> Result<(), ApiError> {
    let p = &s.session.person;
    if roles.contains(&p.role) {
        return Ok(());
    }
    tracing::warn!(person = %p.id, role = p.role.as_str(), "refused: not {who}");
    Err(ApiError::Forbidden(format!("{} is not {who}", p.id)))
}

/// Only coaches and admins reach the coach view.
pub(super) fn coach_only(s: &SignedIn) -> Result<(), ApiError> {
    only(s, &[Role::Coach, Role::Admin], "a coach")
}

/// A coach reaches their own classes, an admin every class.
fn may_see_class(s: &SignedIn, class: &str) -> Result<(), ApiError> {
    coach_only(s)?;
    let p = &s.session.person;
    if p.role == Role::Admin || p.classes.iter().any(|c| c == class) {
        return Ok(());
    }
    tracing::warn!(person = %p.id, class, "refused: another coach's class");
    Err(ApiError::Forbidden(format!("{} does not coach class {class}", p.id)))
}

async fn roster<T: Send + 'static>(
    node: &AppState,
    f: impl FnOnce(&crate::roster::Roster) -> Result<T, crate::roster::RosterError> + Send + 'static,
) -> Result<T, axum::response::Response> {
    node.roster(f).await.map_err(|e| fail(e.into()))
}

/// `learner`'s progress in every course (the progress module's `courses`).
async fn progress_of(node: &AppState, s: &SignedIn, learner: &str) -> Result<Value, axum::response::Response> {
    let call = progress_call(node, learner, None).await.map_err(fail)?;
    let mut v = data(node, s, call).await?;
    Ok(v["courses"].take())
}

/// GET /coach: my classes (an admin: every class).
pub async fn classes(State(node): State<AppState>, s: SignedIn) -> Page {
    coach_only(&s).map_err(fail)?;
    let p = s.session.person.clone();
    let mut classes = roster(&node, |r| r.classes()).await?;
    if p.role != Role::Admin {
        classes.retain(|c| p.classes.contains(&c.name));
        // A class of mine with no members yet still shows.
        for name in &p.classes {
            if !classes.iter().any(|c| &c.name == name) {
                classes.push(crate::roster::classes::ClassSummary { name: name.clone(), learners: 0 });
            }
        }
        classes.sort_by(|a, b| a.name.cmp(&b.name));
    }
    show(&node, &s, with(s.page("coach"), "classes", json!(classes))).await
}

/// The class's learners, each with their progress.
async fn class_learners(node: &AppState, s: &SignedIn, class: &str) -> Result<Value, axum::response::Response> {
    let c = class.to_string();
    let people: Vec<Person> = roster(node, move |r| r.learners_in(&c)).await?;
    let mut out = Vec::with_capacity(people.len());
    for p in people {
        let progress = progress_of(node, s, &p.id).await?;
        out.push(json!({"id": p.id, "name": p.name, "classes": p.classes, "progress": progress}));
    }
    Ok(Value::Array(out))
}

/// The web call of a class page (`op`): the class, its learners' progress
/// and the needs-help setting.
async fn class_call(
    node: &AppState,
    s: &SignedIn,
    p: &Params,
    op: &'static str,
) -> Result<super::Call, axum::response::Response> {
    let class = p.get("class");
    may_see_class(s, &class).map_err(fail)?;
    let learners = class_learners(node, s, &class).await?;
    let call = s.page(op).param("class", class);
    Ok(with(with(call, "learners", learners), "inactive_days", json!(node.cfg.needs_help_inactive_days)))
}

/// GET /coach/classes/{class}: learners × courses and who needs help.
pub async fn class(State(node): State<AppState>, s: SignedIn, p: Params) -> Page {
    let call = class_call(&node, &s, &p, "coach_class").await?;
    show(&node, &s, call).await
}

/// GET /coach/classes/{class}/csv: the class table as a CSV download.
pub async fn class_csv(State(node): State<AppState>, s: SignedIn, p: Params) -> Page {
    let call = class_call(&node, &s, &p, "coach_class_csv").await?;
    show(&node, &s, call).await
}

/// GET /coach/learners/{learner}: one learner's courses and quizzes. A coach
/// must share a class with them (`may_see_learner`, as on the JSON API).
pub async fn learner(State(node): State<AppState>, s: SignedIn, p: Params) -> Page {
    coach_only(&s).map_err(fail)?;
    let id = p.get("learner");
    crate::roster::check_id(&id).map_err(|e| fail(e.into()))?;
    may_see_learner(&node, &s.user(), &id).await.map_err(fail)?;
    let wanted = id.clone();
    let Some(mut learner) = roster(&node, move |r| r.person(&wanted)).await? else {
        return Err(fail(ApiError::NotFound(format!("no learner {id:?} in the roster"))));
    };
    let me = &s.session.person;
    if me.role != Role::Admin {
        learner.classes.retain(|c| me.classes.contains(c));
    }
    let progress = progress_of(&node, &s, &learner.id).await?;
    let body = json!({"id": learner.id, "name": learner.name, "classes": learner.classes, "progress": progress});
    let call = with(s.page("coach_learner"), "learner", body);
    show(&node, &s, with(call, "inactive_days", json!(node.cfg.needs_help_inactive_days))).await
}

/// POST /coach/learners/{learner}/waive (form: `csrf`, `course`, `unit`,
/// `reason`): a coach of the learner's class (or an admin) marks a unit
/// of an imported course as done by other means: cmi5 `waived` in the
/// learner's registration of the course, then back to the learner's page.
pub async fn waive(State(node): State<AppState>, s: SignedIn, p: Params, req: axum::extract::Request) -> Page {
    coach_only(&s).map_err(fail)?;
    let f = super::super::session::form(req, super::super::session::FORM_MAX).await.map_err(fail)?;
    s.form_token("waive", f.get("csrf").map(String::as_str)).map_err(fail)?;
    let id = p.get("learner");
    crate::roster::check_id(&id).map_err(|e| fail(e.into()))?;
    may_see_learner(&node, &s.user(), &id).await.map_err(fail)?;
    let field = |k: &str| f.get(k).cloned().unwrap_or_default();
    let unit: usize =
        field("unit").parse().map_err(|_| fail(ApiError::field("invalid_field", "unit", "unit: a number")))?;
    let course = field("course");
    let request = crate::content::cmi5::WaiveRequest {
        registration: crate::content::cmi5::learner_registration(&id, &course),
        course,
        au: json!(unit),
        actor: learner_actor(&node, &id),
        reason: field("reason"),
    };
    crate::content::cmi5::waive(&node, request).await.map_err(fail)?;
    tracing::info!(coach = %s.id(), learner = %id, "waived a unit");
    Ok(super::super::session::see_other(&format!("/coach/learners/{id}")))
}

/// GET /roster: everyone on the node (admins only). Changes go through
/// `lms-node roster` on the node.
pub async fn roster_page(State(node): State<AppState>, s: SignedIn) -> Page {
    only(&s, &[Role::Admin], "an admin").map_err(fail)?;
    let people = roster(&node, |r| r.list()).await?;
    show(&node, &s, with(s.page("roster"), "people", json!(people))).await
}
