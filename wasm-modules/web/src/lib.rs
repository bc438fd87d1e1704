//! The web module: the pages learners and coaches see (issue 11), rendered
//! from compiled templates (askama: checked and HTML-escaped when the module
//! is built) with messages from Fluent translation files (`i18n/*.ftl`), in
//! the language the host chose (`ctx.language`: zh-CN or en). It ships in the
//! signed bundle with its static files (`static/`, served by the host under
//! content-hashed URLs), so a fix to a page reaches the fleet as a module
//! update.
//!
//! Every page's forms carry `ctx.csrf`; signed-in pages get the person in
//! `body.person` ({id, name, role}). Ops:
//! - `login_page` (query `error=signin` after a refused sign-in);
//! - `home`, `progress` (body `progress`: the progress module's courses);
//! - `catalog`; `course {course}` (body `progress`: that course's; or
//!   `slots` for the page all readers share) and `course_marks {course}`
//!   (body `progress`: the reader's part of that shared page);
//! - `lesson {course, lesson}` (emits `completed`, marked `once`);
//! - `quiz {quiz}` (body `quiz`: the quiz module's `get_quiz`), and
//!   `quiz_result {quiz}` (plus body `result`: its `attempt` answer);
//! - the coach view: `coach` (body `classes`), `coach_class {class}` and
//!   `coach_class_csv {class}` (body `learners`: each with `progress`, and
//!   `inactive_days`), `coach_learner` (body `learner`, `inactive_days`),
//!   `roster` (admins: body `people`), `content_page` (coaches and admins:
//!   the package upload form, body `added` or `error` after one).
//!
//! Pages use no script and no asset from outside the node.

// A page's steps return `Result<Response, Response>`: the error is the
// answer that stops the page early (a 400, a 404). One per request, so its
// size (128 bytes) costs nothing worth boxing every return for.
#![allow(clippy::result_large_err)]

mod coach;
mod frame;
pub mod i18n;
mod learner;
mod markdown;

use askama::Template;
use frame::{Frame, page};
use i18n::Messages;
use lms_sdk::{Request, Response, SelfTest, error};

pub use learner::answer_field;

lms_sdk::export_module!(handle: handle, self_test: self_test);

pub fn handle(req: &Request) -> Response {
    let out = match req.op.as_str() {
        "login_page" => login_page(req),
        "home" => learner::home(req),
        "catalog" => learner::catalog(req),
        "course" => learner::course(req),
        "course_marks" => learner::course_marks(req),
        "lesson" => learner::lesson(req),
        "quiz" => learner::quiz(req),
        "quiz_result" => learner::quiz_result(req),
        "progress" => learner::progress(req),
        "error_page" => error_page(req),
        "coach" => coach::classes(req),
        "coach_class" => coach::class(req),
        "coach_class_csv" => coach::class_csv(req),
        "coach_learner" => coach::learner(req),
        "roster" => coach::roster(req),
        "content_page" => coach::content_page(req),
        other => Err(error(400, "unknown_op", format!("web has no op {other:?}"))),
    };
    out.unwrap_or_else(|e| e)
}

#[derive(Template)]
#[template(path = "login.html")]
struct Login {
    frame: Frame,
    title: String,
    heading: String,
    failed: bool,
    failed_text: String,
    username: String,
    password: String,
    submit: String,
}

fn login_page(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    Ok(page(&Login {
        frame: Frame::new(&m, req, "/login".into(), None)?,
        title: m.get("sign-in-title"),
        heading: m.get("sign-in-heading"),
        failed: req.query.get("error").is_some_and(|e| e == "signin"),
        failed_text: m.get("sign-in-failed"),
        username: m.get("username"),
        password: m.get("password"),
        submit: m.get("sign-in-submit"),
    }))
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    frame: Frame,
    title: String,
    text: String,
    detail: String,
    home_href: &'static str,
    home_text: String,
}

/// `error_page` (query `status`, `message`, `path`; body `person` when
/// someone is signed in): what a person sees instead of an error's JSON.
/// The page answers 200; the host sends it with the error's status.
fn error_page(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let who = req.body.as_ref().and_then(|b| b.get("person")).is_some().then(|| frame::person(req)).transpose()?;
    let kind = match req.query.get("status").map(String::as_str) {
        Some("403") => "403",
        Some("404") => "404",
        Some("400" | "413" | "415") => "400",
        Some("503") => "503",
        _ => "other",
    };
    let detail =
        req.query.get("message").filter(|d| !d.is_empty()).map(|d| m.with("error-detail", &[("detail", d.clone())]));
    let path = req.query.get("path").cloned().unwrap_or_else(|| "/".into());
    Ok(page(&ErrorPage {
        title: m.get(&format!("error-{kind}-title")),
        text: m.get(&format!("error-{kind}-text")),
        detail: detail.unwrap_or_default(),
        home_href: if who.is_some() { "/" } else { "/login" },
        home_text: m.get(if who.is_some() { "error-home" } else { "error-sign-in" }),
        frame: Frame::new(&m, req, path, who.as_ref())?,
    }))
}

pub fn self_test() -> SelfTest {
    let mut checks = match i18n::check() {
        Ok(c) => c,
        Err(e) => return SelfTest { ok: false, checks: vec![], error: Some(e) },
    };
    for name in ["app.css", "icon.svg"] {
        if frame::asset(name).is_empty() {
            return SelfTest { ok: false, checks, error: Some(format!("static/{name} is not built in")) };
        }
    }
    checks.push("assets".into());
    SelfTest { ok: true, checks, error: None }
}

#[cfg(test)]
mod tests;
