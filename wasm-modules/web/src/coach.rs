//! The coach's pages: my classes, a class's table (learners × courses, with
//! who needs help), that table as CSV, and one learner's detail. The host
//! decides who may see what (a coach their own classes and those classes'
//! learners, an admin every class) and passes the learners' progress from
//! the progress module; these pages show it and apply the needs-help rule.

use crate::frame::{Frame, field, page, param, person};
use crate::i18n::{Messages, percent};
use crate::learner::{COURSE_COLUMNS, CourseRow, course_doc, index, when};
use askama::Template;
use lms_content::{CourseDoc, CourseProgress, IndexDoc};
use lms_sdk::{Request, Response, download};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A class as the host lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct ClassSummary {
    pub name: String,
    pub learners: usize,
}

/// One learner of a class with their progress in every course.
#[derive(Debug, Clone, Deserialize)]
pub struct LearnerProgress {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub classes: Vec<String>,
    pub progress: Vec<CourseProgress>,
}

/// Why a learner needs help.
#[derive(Debug, Clone, PartialEq)]
pub enum Help {
    /// Failed this quiz this many times and has not passed it.
    FailedQuiz { quiz: String, failures: usize },
    /// No statement for this many whole days.
    Inactive { days: i64 },
    /// No statement at all.
    NeverActive,
}

/// Failed attempts at one quiz before a learner needs help.
pub const FAILURES_FOR_HELP: usize = 2;

/// The learner's newest activity over all courses.
fn last_active(progress: &[CourseProgress]) -> Option<String> {
    progress.iter().filter_map(|p| p.last_activity.clone()).max()
}

/// Whole days from `from` to `to` (RFC 3339); `None` when either is not one.
fn days_between(from: &str, to: &str) -> Option<i64> {
    let a = OffsetDateTime::parse(from, &Rfc3339).ok()?;
    let b = OffsetDateTime::parse(to, &Rfc3339).ok()?;
    Some((b - a).whole_days())
}

/// The needs-help rule: a quiz failed [`FAILURES_FOR_HELP`] times and not
/// passed since, or no activity for `inactive_days` days (or none ever).
pub fn needs_help(progress: &[CourseProgress], now: &str, inactive_days: u32) -> Vec<Help> {
    let mut out: Vec<Help> = progress
        .iter()
        .flat_map(|c| &c.quizzes)
        .filter(|q| !q.passed && q.failures >= FAILURES_FOR_HELP)
        .map(|q| Help::FailedQuiz { quiz: q.quiz.clone(), failures: q.failures })
        .collect();
    match last_active(progress) {
        None => out.push(Help::NeverActive),
        Some(last) => {
            if let Some(days) = days_between(&last, now)
                && days >= i64::from(inactive_days)
            {
                out.push(Help::Inactive { days });
            }
        }
    }
    out
}

/// The courses in catalog order, with their documents (titles of quizzes).
fn courses(index: &IndexDoc, lang: &str) -> Result<Vec<CourseDoc>, Response> {
    index.courses.iter().map(|c| course_doc(&c.id, lang)).collect()
}

fn quiz_titles(courses: &[CourseDoc]) -> BTreeMap<String, String> {
    courses.iter().flat_map(|c| &c.quizzes).map(|q| (q.id.clone(), q.title.clone())).collect()
}

fn help_text(h: &Help, titles: &BTreeMap<String, String>, m: &Messages) -> String {
    match h {
        Help::FailedQuiz { quiz, failures } => m.with(
            "help-failed-quiz",
            &[("quiz", titles.get(quiz).cloned().unwrap_or_else(|| quiz.clone())), ("failures", failures.to_string())],
        ),
        Help::Inactive { days } => m.with("help-inactive", &[("days", days.to_string())]),
        Help::NeverActive => m.get("help-never-active"),
    }
}

/// A path segment: class names may hold spaces and Chinese.
fn segment(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn class_href(class: &str) -> String {
    format!("/coach/classes/{}", segment(class))
}

fn learner_href(learner: &str) -> String {
    format!("/coach/learners/{}", segment(learner))
}

fn inactive_days(req: &Request) -> Result<u32, Response> {
    field::<u32>(req, "inactive_days")
}

pub struct ClassCard {
    pub href: String,
    pub name: String,
    pub count: String,
}

#[derive(Template)]
#[template(path = "coach.html")]
struct Classes {
    add_content: String,
    frame: Frame,
    title: String,
    no_classes: String,
    classes: Vec<ClassCard>,
}

/// `coach`: body `{person, classes: [ClassSummary]}`.
pub fn classes(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let who = person(req)?;
    let list: Vec<ClassSummary> = field(req, "classes")?;
    let classes = list
        .iter()
        .map(|c| ClassCard {
            href: class_href(&c.name),
            name: c.name.clone(),
            count: m.with("class-learners", &[("count", c.learners.to_string())]),
        })
        .collect();
    Ok(page(&Classes {
        frame: Frame::new(&m, req, "/coach".into(), Some(&who))?,
        title: m.get("coach-title"),
        no_classes: m.get("no-classes"),
        classes,
        add_content: m.get("content-link"),
    }))
}

#[derive(Template)]
#[template(path = "content.html")]
struct ContentPage {
    frame: Frame,
    title: String,
    intro: String,
    added: Option<String>,
    added_link: Option<(String, String)>,
    failed_heading: String,
    failed: Option<String>,
    file_label: String,
    file_help: String,
    title_label: String,
    submit: String,
}

/// `content_page`: body `{person, added?: {course, title, units}, error?}`:
/// the form coaches and admins add a package with, and what the last one
/// gave (the course added, or the problem named).
pub fn content_page(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let who = person(req)?;
    let body = req.body.clone().unwrap_or_default();
    let added = body.get("added").filter(|a| a.is_object());
    Ok(page(&ContentPage {
        frame: Frame::new(&m, req, "/content/packages".into(), Some(&who))?,
        title: m.get("content-title"),
        intro: m.get("content-intro"),
        added: added.map(|a| {
            m.with(
                "content-added",
                &[
                    ("title", a["title"].as_str().unwrap_or_default().to_string()),
                    ("units", a["units"].as_u64().unwrap_or(0).to_string()),
                ],
            )
        }),
        added_link: added.and_then(|a| a["course"].as_str()).map(|c| (format!("/courses/{c}"), m.get("content-open"))),
        failed_heading: m.get("content-failed"),
        failed: body.get("error").and_then(|e| e.as_str()).map(str::to_string),
        file_label: m.get("content-file"),
        file_help: m.get("content-file-help"),
        title_label: m.get("content-title-field"),
        submit: m.get("content-submit"),
    }))
}

pub struct Cell {
    pub percent: f64,
    pub quizzes: String,
}

pub struct ClassRow {
    pub href: String,
    pub name: String,
    pub cells: Vec<Cell>,
    pub last: String,
}

pub struct HelpLine {
    pub href: String,
    pub name: String,
    /// The reasons, joined by the language's list separator.
    pub reasons: String,
}

#[derive(Template)]
#[template(path = "coach_class.html")]
struct ClassPage {
    frame: Frame,
    title: String,
    summary: String,
    csv_href: String,
    csv_text: String,
    help_heading: String,
    help_rule: String,
    no_help: String,
    help: Vec<HelpLine>,
    table_heading: String,
    col_learner: String,
    col_last: String,
    courses: Vec<String>,
    rows: Vec<ClassRow>,
    no_learners: String,
}

/// The class the host named and its learners.
fn class_body(req: &Request) -> Result<(String, Vec<LearnerProgress>), Response> {
    Ok((param(req, "class")?.to_string(), field(req, "learners")?))
}

fn progress_in<'a>(l: &'a LearnerProgress, course: &str) -> Option<&'a CourseProgress> {
    l.progress.iter().find(|p| p.course == course)
}

/// `coach_class {class}`: body `{person, inactive_days, learners: [LearnerProgress]}`.
pub fn class(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let who = person(req)?;
    let (class, learners) = class_body(req)?;
    let days = inactive_days(req)?;
    let docs = courses(&index(m.lang)?, m.lang)?;
    let titles = quiz_titles(&docs);
    let rows = learners
        .iter()
        .map(|l| ClassRow {
            href: learner_href(&l.id),
            name: l.name.clone(),
            cells: docs
                .iter()
                .map(|c| {
                    let p = progress_in(l, &c.id);
                    let passed = p.map_or(0, CourseProgress::quizzes_passed);
                    Cell {
                        percent: p.map_or(0.0, |p| p.percent_complete),
                        quizzes: m.with(
                            "cell-quizzes",
                            &[("passed", passed.to_string()), ("total", c.quizzes.len().to_string())],
                        ),
                    }
                })
                .collect(),
            last: when(&last_active(&l.progress), &m),
        })
        .collect();
    let help = learners
        .iter()
        .filter_map(|l| {
            let reasons = needs_help(&l.progress, &req.ctx.now, days);
            (!reasons.is_empty()).then(|| HelpLine {
                href: learner_href(&l.id),
                name: l.name.clone(),
                reasons: reasons
                    .iter()
                    .map(|h| help_text(h, &titles, &m))
                    .collect::<Vec<_>>()
                    .join(&m.get("list-separator")),
            })
        })
        .collect();
    Ok(page(&ClassPage {
        frame: Frame::new(&m, req, class_href(&class), Some(&who))?,
        title: m.with("class-title", &[("class", class.clone())]),
        summary: m.with("class-learners", &[("count", learners.len().to_string())]),
        csv_href: format!("{}/csv", class_href(&class)),
        csv_text: m.get("export-csv"),
        help_heading: m.get("needs-help"),
        help_rule: m.with("help-rule", &[("failures", FAILURES_FOR_HELP.to_string()), ("days", days.to_string())]),
        no_help: m.get("no-help"),
        help,
        table_heading: m.get("class-table"),
        col_learner: m.get("col-learner"),
        col_last: m.get("col-last-active"),
        courses: docs.iter().map(|c| c.title.clone()).collect(),
        rows,
        no_learners: m.get("no-learners"),
    }))
}

/// A spreadsheet would run a cell that starts like a formula: such text
/// gets a leading `'` (OWASP's advice on CSV injection).
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_string() }
}

/// An ASCII file name for the class's CSV (class names may be Chinese).
fn csv_name(class: &str, now: &str) -> String {
    let date = now.get(..10).unwrap_or("today");
    let ascii = class.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ascii { format!("class-{class}-{date}.csv") } else { format!("class-{date}.csv") }
}

/// `coach_class_csv {class}`: the class table as CSV, UTF-8 with a byte
/// order mark (so spreadsheets read Chinese names right), one row per
/// learner: id, name, per course percent complete and quizzes passed, last
/// active (RFC 3339), and the needs-help reasons.
pub fn class_csv(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let (class, learners) = class_body(req)?;
    let days = inactive_days(req)?;
    let docs = courses(&index(m.lang)?, m.lang)?;
    let titles = quiz_titles(&docs);
    let mut header = vec![m.get("col-learner-id"), m.get("col-learner")];
    for c in &docs {
        header.push(m.with("csv-percent", &[("course", c.title.clone())]));
        header.push(m.with("csv-quizzes", &[("course", c.title.clone()), ("total", c.quizzes.len().to_string())]));
    }
    header.push(m.get("col-last-active"));
    header.push(m.get("needs-help"));
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| lms_sdk::error(500, "csv_failed", e.to_string());
    w.write_record(header.iter().map(|h| cell(h))).map_err(fail)?;
    for l in &learners {
        let mut row = vec![cell(&l.id), cell(&l.name)];
        for c in &docs {
            let p = progress_in(l, &c.id);
            row.push(format!("{}", p.map_or(0.0, |p| p.percent_complete)));
            row.push(p.map_or(0, CourseProgress::quizzes_passed).to_string());
        }
        row.push(last_active(&l.progress).unwrap_or_default());
        let reasons: Vec<String> =
            needs_help(&l.progress, &req.ctx.now, days).iter().map(|h| help_text(h, &titles, &m)).collect();
        row.push(cell(&reasons.join(&m.get("list-separator"))));
        w.write_record(&row).map_err(fail)?;
    }
    let bytes = w.into_inner().map_err(|e| lms_sdk::error(500, "csv_failed", e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| lms_sdk::error(500, "csv_failed", e.to_string()))?;
    Ok(download("text/csv; charset=utf-8", csv_name(&class, &req.ctx.now), format!("\u{feff}{text}")))
}

pub struct QuizLine {
    pub title: String,
    pub attempts: usize,
    pub failures: usize,
    pub best: String,
    pub status: String,
    pub class: &'static str,
}

/// A launched unit (a cmi5 AU) the learner has not done, which the coach
/// may mark as done by other means (cmi5 `waived`).
pub struct WaiveLine {
    pub course: String,
    pub unit: usize,
    pub label: String,
}

/// The reasons cmi5 names for a waiver (the form's values) and their
/// message ids.
const WAIVE_REASONS: [(&str, &str); 4] = [
    ("Tested Out", "waive-tested-out"),
    ("Equivalent AU", "waive-equivalent-au"),
    ("Equivalent Outside Activity", "waive-equivalent-outside"),
    ("Administrative", "waive-administrative"),
];

#[derive(Template)]
#[template(path = "coach_learner.html")]
struct LearnerPage {
    frame: Frame,
    title: String,
    back: Vec<(String, String)>,
    about: String,
    help_heading: String,
    help: Vec<String>,
    courses_heading: String,
    course_columns: [String; 5],
    courses: Vec<CourseRow>,
    quizzes_heading: String,
    quiz_columns: [String; 5],
    quizzes: Vec<QuizLine>,
    waive_heading: String,
    waive_intro: String,
    waive_button: String,
    waive_reason: String,
    waive_action: String,
    reasons: Vec<(&'static str, String)>,
    waive: Vec<WaiveLine>,
}

/// `coach_learner {learner}`: body `{person, inactive_days, learner: LearnerProgress}`.
pub fn learner(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let who = person(req)?;
    let l: LearnerProgress = field(req, "learner")?;
    let days = inactive_days(req)?;
    let docs = courses(&index(m.lang)?, m.lang)?;
    let titles = quiz_titles(&docs);
    let mut quizzes = Vec::new();
    let mut waive = Vec::new();
    let courses = docs
        .iter()
        .map(|c| {
            let p = progress_in(&l, &c.id).cloned().unwrap_or_default();
            for u in c
                .lessons
                .iter()
                .filter(|u| u.launch.as_ref().is_some_and(|l| l.waivable) && !p.completed_lessons.contains(&u.id))
            {
                waive.push(WaiveLine {
                    course: c.id.clone(),
                    unit: u.launch.as_ref().map_or(0, |x| x.unit),
                    label: m.with("waive-unit", &[("course", c.title.clone()), ("unit", u.title.clone())]),
                });
            }
            for q in &c.quizzes {
                let qp = p.quizzes.iter().find(|x| x.quiz == q.id).cloned().unwrap_or_default();
                let (status, class) = if qp.passed {
                    (m.get("status-passed"), "status-done")
                } else if qp.attempts > 0 {
                    (m.get("status-not-passed"), "status-failed")
                } else {
                    (m.get("quiz-not-attempted"), "")
                };
                quizzes.push(QuizLine {
                    title: q.title.clone(),
                    attempts: qp.attempts,
                    failures: qp.failures,
                    best: qp.best_scaled_score.map(|s| format!("{}%", percent(s))).unwrap_or_else(|| "—".into()),
                    status,
                    class,
                });
            }
            CourseRow::new(None, &c.title, (c.lessons.len(), c.quizzes.len()), &p, &m)
        })
        .collect();
    Ok(page(&LearnerPage {
        frame: Frame::new(&m, req, learner_href(&l.id), Some(&who))?,
        title: l.name.clone(),
        back: l.classes.iter().map(|c| (class_href(c), m.with("back-to-class", &[("class", c.clone())]))).collect(),
        about: m.with("learner-about", &[("id", l.id.clone()), ("last", when(&last_active(&l.progress), &m))]),
        help_heading: m.get("needs-help"),
        help: needs_help(&l.progress, &req.ctx.now, days).iter().map(|h| help_text(h, &titles, &m)).collect(),
        courses_heading: m.get("learner-courses"),
        course_columns: COURSE_COLUMNS.map(|k| m.get(k)),
        courses,
        quizzes_heading: m.get("quizzes-heading"),
        quiz_columns: ["col-quiz", "col-attempts", "col-failures", "col-best", "col-status"].map(|k| m.get(k)),
        quizzes,
        waive_heading: m.get("waive-heading"),
        waive_intro: m.get("waive-intro"),
        waive_button: m.get("waive-button"),
        waive_reason: m.get("waive-reason"),
        waive_action: format!("{}/waive", learner_href(&l.id)),
        reasons: WAIVE_REASONS.iter().map(|(v, k)| (*v, m.get(k))).collect(),
        waive,
    }))
}

/// A person as the host lists them for an admin.
#[derive(Debug, Clone, Deserialize)]
pub struct RosterEntry {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub classes: Vec<String>,
}

pub struct RosterLine {
    /// The learner's detail page (learners only).
    pub href: Option<String>,
    pub name: String,
    pub id: String,
    pub role: String,
    pub classes: String,
}

#[derive(Template)]
#[template(path = "roster.html")]
struct RosterPage {
    frame: Frame,
    title: String,
    summary: String,
    how: String,
    columns: [String; 4],
    people: Vec<RosterLine>,
}

/// `roster`: body `{person, people: [RosterEntry]}` (admins only; the host checks).
pub fn roster(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let who = person(req)?;
    let list: Vec<RosterEntry> = field(req, "people")?;
    let people = list
        .iter()
        .map(|p| RosterLine {
            href: (p.role == "learner").then(|| learner_href(&p.id)),
            name: p.name.clone(),
            id: p.id.clone(),
            role: m.get(&format!("role-{}", p.role)),
            classes: p.classes.join(&m.get("list-separator")),
        })
        .collect();
    Ok(page(&RosterPage {
        frame: Frame::new(&m, req, "/roster".into(), Some(&who))?,
        title: m.get("roster-title"),
        summary: m.with("roster-count", &[("count", list.len().to_string())]),
        how: m.get("roster-how"),
        columns: ["col-name", "col-id", "col-role", "col-classes"].map(|k| m.get(k)),
        people,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lms_content::QuizProgress;

    fn course(last: Option<&str>, failures: usize, passed: bool) -> CourseProgress {
        CourseProgress {
            course: "c".into(),
            last_activity: last.map(str::to_string),
            quizzes: vec![QuizProgress {
                quiz: "qz".into(),
                attempts: failures,
                failures,
                passed,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn needs_help_after_two_failures_or_n_quiet_days() {
        let now = "2026-12-10T12:00:00.000000Z";
        assert_eq!(needs_help(&[course(Some("2026-12-09T08:00:00Z"), 1, false)], now, 7), vec![]);
        assert_eq!(
            needs_help(&[course(Some("2026-12-09T08:00:00Z"), 2, false)], now, 7),
            vec![Help::FailedQuiz { quiz: "qz".into(), failures: 2 }]
        );
        assert_eq!(needs_help(&[course(Some("2026-12-09T08:00:00Z"), 3, true)], now, 7), vec![], "passed since");
        assert_eq!(
            needs_help(&[course(Some("2026-12-03T11:00:00Z"), 0, false)], now, 7),
            vec![Help::Inactive { days: 7 }]
        );
        assert_eq!(needs_help(&[course(Some("2026-12-03T13:00:00Z"), 0, false)], now, 7), vec![], "6 days 23 h");
        assert_eq!(needs_help(&[course(None, 0, false)], now, 7), vec![Help::NeverActive]);
        assert_eq!(needs_help(&[], now, 7), vec![Help::NeverActive]);
    }

    #[test]
    fn csv_cells_cannot_be_formulas_and_names_stay_ascii() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("王小明"), "王小明");
        assert_eq!(csv_name("3A", "2026-12-03T11:00:00Z"), "class-3A-2026-12-03.csv");
        assert_eq!(csv_name("三年级 一班", "2026-12-03T11:00:00Z"), "class-2026-12-03.csv");
        assert_eq!(class_href("三年级 一班"), "/coach/classes/%E4%B8%89%E5%B9%B4%E7%BA%A7%20%E4%B8%80%E7%8F%AD");
    }
}
