//! The learner's pages. Each gathers what the page shows from the module
//! that owns it (progress from `progress`, the quiz and its grading from
//! `quiz`) for the signed-in person only, then has `web` render it. The
//! person is always the session's: no path or form field names a learner.

use super::super::error::ApiError;
use super::super::learner::{Call, learner_actor, progress_call};
use super::super::session::{FORM_MAX, form};
use super::{Page, SignedIn, data, fail, show, with};
use crate::http::{AppState, Params};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// The signed-in learner's progress: every course, or one.
async fn my_progress(node: &AppState, s: &SignedIn, course: Option<String>) -> Result<Value, Response> {
    let call = progress_call(node, s.id(), course).await.map_err(fail)?;
    let mut v = data(node, s, call).await?;
    Ok(v["courses"].take())
}

/// GET /: the signed-in person's home; without a session, the sign-in page.
pub async fn home(State(node): State<AppState>, s: SignedIn) -> Page {
    let progress = my_progress(&node, &s, None).await?;
    show(&node, &s, with(s.page("home"), "progress", progress)).await
}

/// GET /courses: every course.
pub async fn catalog(State(node): State<AppState>, s: SignedIn) -> Page {
    super::shared::show_shared(&node, &s, s.page("catalog")).await
}

/// GET /courses/{course}: its lessons and quizzes with my status.
pub async fn course(State(node): State<AppState>, s: SignedIn, p: Params) -> Page {
    let course = p.get("course");
    let mut progress = my_progress(&node, &s, Some(course.clone())).await?;
    super::shared::show_course(&node, &s, course, progress[0].take()).await
}

/// GET /courses/{course}/lessons/{lesson}: the lesson; reading it marks it
/// completed (stored once per learner).
pub async fn lesson(State(node): State<AppState>, s: SignedIn, p: Params) -> Page {
    let call = s.page("lesson").param("course", p.get("course")).param("lesson", p.get("lesson"));
    super::shared::show_shared(&node, &s, call).await
}

/// GET /quizzes/{quiz}: the quiz as a form.
pub async fn quiz(State(node): State<AppState>, s: SignedIn, p: Params) -> Page {
    let q = data(&node, &s, Call::new("quiz", "get_quiz").param("quiz", p.get("quiz"))).await?;
    show(&node, &s, with(s.page("quiz").param("quiz", p.get("quiz")), "quiz", q)).await
}

/// Longest quiz form: a few hundred questions' answers.
const QUIZ_FORM_MAX: usize = 64 * 1024;

/// POST /quizzes/{quiz} (form: `csrf`, `answer-{question}` = choice id):
/// grades the attempt as the signed-in learner, stores its statements, and
/// shows the score with per-question feedback.
pub async fn quiz_submit(State(node): State<AppState>, s: SignedIn, p: Params, req: Request) -> Page {
    let f = form(req, QUIZ_FORM_MAX).await.map_err(fail)?;
    s.form_token("quiz", f.get("csrf").map(String::as_str)).map_err(fail)?;
    let answers: Map<String, Value> = f
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("answer-").map(|q| (q.to_string(), Value::String(v.clone()))))
        .collect();
    let quiz = p.get("quiz");
    let public = data(&node, &s, Call::new("quiz", "get_quiz").param("quiz", quiz.clone())).await?;
    let mut attempt = Call::new("quiz", "attempt").param("quiz", quiz.clone());
    attempt.actor = Some(learner_actor(&node, s.id()));
    attempt.body = Some(serde_json::json!({"answers": answers}));
    let result = data(&node, &s, attempt).await?;
    let call = with(with(s.page("quiz_result").param("quiz", quiz), "quiz", public), "result", result);
    show(&node, &s, call).await
}

/// POST /courses/{course}/launch/{unit} (form: `csrf`): opens a unit of an
/// imported course (a cmi5 AU) for the signed-in learner: the cmi5 launch
/// (LaunchData, `launched`, a one-time fetch URL) with the learner as actor
/// under their registration of the course, then 303 to the AU on the
/// content origin. The AU comes back to the course page when it ends.
pub async fn launch(State(node): State<AppState>, s: SignedIn, p: Params, req: Request) -> Page {
    let f = form(req, FORM_MAX).await.map_err(fail)?;
    s.form_token("launch", f.get("csrf").map(String::as_str)).map_err(fail)?;
    let course = p.get("course");
    let unit: usize = p
        .get("unit")
        .parse()
        .map_err(|_| fail(ApiError::NotFound(format!("{course} has no unit {:?}", p.get("unit")))))?;
    let public = node.cfg.public_url.clone().unwrap_or_default();
    let return_url = format!("{}/courses/{course}", public.trim_end_matches('/'));
    let registration = crate::content::cmi5::learner_registration(s.id(), &course);
    let actor = learner_actor(&node, s.id());
    let kind = node.current().ok().and_then(|set| set.packages.get(&course).map(|p| p.kind));
    let to = match kind {
        Some(lms_package::course::Kind::Scorm12 | lms_package::course::Kind::Scorm2004) => {
            let language = s.language.clone();
            let l = crate::content::scorm::Launch {
                course: course.clone(),
                unit,
                actor,
                registration,
                return_url,
                language,
            };
            crate::content::scorm::launch(&node, l).await
        }
        Some(lms_package::course::Kind::Html5 | lms_package::course::Kind::Media) => {
            let authority = crate::http::learner::authority(&node, &s.user());
            crate::content::open_unit(&node, &course, unit, actor, &authority).await
        }
        _ => crate::content::cmi5::launch(
            &node,
            crate::content::cmi5::LaunchRequest {
                course: course.clone(),
                au: Value::from(unit),
                actor,
                registration: Some(registration),
                launch_mode: None,
                return_url: Some(return_url),
                language: Some(s.language.clone()),
            },
        )
        .await
        .map(|l| l.url),
    }
    .map_err(|e| match e {
        // The admin contract names fields; a person sees the course is not there.
        ApiError::BadRequest { field: Some(_), .. } => {
            fail(ApiError::NotFound(format!("{course} has no unit {unit} to launch")))
        }
        e => fail(e),
    })?;
    let mut resp = axum::http::StatusCode::SEE_OTHER.into_response();
    let location = axum::http::HeaderValue::from_str(&to)
        .map_err(|_| fail(ApiError::Unavailable("the launch URL is not a valid header value".into())))?;
    resp.headers_mut().insert(axum::http::header::LOCATION, location);
    Ok(resp)
}

/// GET /progress: my progress in every course.
pub async fn progress(State(node): State<AppState>, s: SignedIn) -> Page {
    let progress = my_progress(&node, &s, None).await?;
    show(&node, &s, with(s.page("progress"), "progress", progress)).await
}
