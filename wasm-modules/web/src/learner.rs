//! The learner's pages: home, catalog, course, lesson, quiz (form and
//! result) and progress. The host passes the signed-in person and, where a
//! page shows them, the learner's progress (from the progress module) or the
//! quiz (from the quiz module, without its answer key); the course texts
//! come from the content pack.

use crate::frame::{Frame, doc, field, page, param, person};
use crate::i18n::{Messages, percent};
use crate::markdown;
use askama::Template;
use lms_content::{CourseDoc, CourseProgress, IndexDoc, LessonDoc, QuizProgress, course_key};
use lms_sdk::{Request, Response, statement_id};
use serde::Deserialize;
use serde_json::json;

const VERB_COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
const ACTIVITY_LESSON: &str = "http://adlnet.gov/expapi/activities/lesson";

/// A quiz as the quiz module serves it: no answer key.
#[derive(Debug, Clone, Deserialize)]
pub struct PublicQuiz {
    pub id: String,
    pub course: String,
    pub title: String,
    pub mastery_score: f64,
    pub questions: Vec<PublicQuestion>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PublicQuestion {
    pub id: String,
    pub prompt: String,
    pub choices: Vec<PublicChoice>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PublicChoice {
    pub id: String,
    pub text: String,
}

/// A graded attempt as the quiz module answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct Graded {
    pub score: Score,
    pub passed: bool,
    pub feedback: Vec<Feedback>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Score {
    pub raw: u32,
    pub max: u32,
    pub scaled: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Feedback {
    pub question: String,
    pub your_answer: Option<String>,
    pub correct: bool,
    pub explanation: Option<String>,
}

/// "2026-12-03 06:40 UTC" of an RFC 3339 UTC timestamp.
pub fn when(ts: &Option<String>, m: &Messages) -> String {
    match ts {
        Some(t) if t.len() >= 16 => format!("{} {} UTC", &t[..10], &t[11..16]),
        _ => m.get("never"),
    }
}

/// The catalog with each course's texts in the page language `lang`.
pub fn index(lang: &str) -> Result<IndexDoc, Response> {
    let mut i = doc::<IndexDoc>("index")?;
    i.courses = i.courses.into_iter().map(|c| c.localized(lang)).collect();
    Ok(i)
}

/// A course with its texts in the page language `lang`.
pub fn course_doc(id: &str, lang: &str) -> Result<CourseDoc, Response> {
    Ok(doc::<CourseDoc>(&course_key(id))?.localized(lang))
}

fn lesson_href(course: &str, lesson: &str) -> String {
    format!("/courses/{course}/lessons/{lesson}")
}

pub struct CourseCard {
    pub href: String,
    pub title: String,
    pub description: String,
    pub counts: String,
    pub percent: f64,
    pub percent_text: String,
}

pub struct Continue {
    pub course: String,
    pub href: String,
    pub link: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    frame: Frame,
    title: String,
    welcome: String,
    resume: Option<Continue>,
    continue_heading: String,
    my_courses: String,
    not_started: String,
    browse: String,
    courses: Vec<CourseCard>,
}

/// Where to go on in a course: the first lesson not completed, else the
/// course page (to take its quiz or review).
fn next_step(course: &CourseDoc, p: &CourseProgress, m: &Messages) -> Continue {
    match course.lessons.iter().find(|l| !p.completed_lessons.contains(&l.id)) {
        Some(l) => Continue {
            course: course.title.clone(),
            // A launched unit starts from its form on the course page.
            href: match &l.launch {
                Some(_) => format!("/courses/{}#{}", course.id, l.id),
                None => lesson_href(&course.id, &l.id),
            },
            link: m.with("continue-lesson", &[("lesson", l.title.clone())]),
        },
        None => Continue {
            course: course.title.clone(),
            href: format!("/courses/{}", course.id),
            link: m.get("review-course"),
        },
    }
}

fn card(c: &lms_content::CourseSummary, p: Option<&CourseProgress>, m: &Messages) -> CourseCard {
    let pct = p.map_or(0.0, |p| p.percent_complete);
    CourseCard {
        href: format!("/courses/{}", c.id),
        title: c.title.clone(),
        description: c.description.clone(),
        counts: m.with("course-counts", &[("lessons", c.lessons.to_string()), ("quizzes", c.quizzes.to_string())]),
        percent: pct,
        percent_text: m.with("percent-complete", &[("percent", format!("{pct}"))]),
    }
}

/// `home`: body `{person, progress: [CourseProgress]}`.
pub fn home(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let who = person(req)?;
    let progress: Vec<CourseProgress> = field(req, "progress")?;
    let index = index(m.lang)?;
    let started: Vec<&CourseProgress> = progress.iter().filter(|p| p.started()).collect();
    // Continue in the course touched last that is not yet passed.
    let latest = started.iter().filter(|p| !p.passed).max_by(|a, b| a.last_activity.cmp(&b.last_activity));
    let resume = match latest {
        Some(p) => Some(next_step(&course_doc(&p.course, m.lang)?, p, &m)),
        None => None,
    };
    let courses = index
        .courses
        .iter()
        .filter_map(|c| started.iter().find(|p| p.course == c.id).map(|p| card(c, Some(p), &m)))
        .collect();
    Ok(page(&Home {
        frame: Frame::new(&m, req, "/".into(), Some(&who))?,
        title: m.get("home-title"),
        welcome: m.with("welcome", &[("name", who.name.clone())]),
        resume,
        continue_heading: m.get("continue-heading"),
        my_courses: m.get("my-courses"),
        not_started: m.get("not-started"),
        browse: m.get("browse-courses"),
        courses,
    }))
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct Catalog {
    frame: Frame,
    title: String,
    no_courses: String,
    courses: Vec<CourseCard>,
}

/// `catalog`: body `{person}`.
pub fn catalog(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let who = person(req)?;
    let courses = index(m.lang)?.courses.iter().map(|c| card(c, None, &m)).collect();
    Ok(page(&Catalog {
        frame: Frame::new(&m, req, "/courses".into(), Some(&who))?,
        title: m.get("catalog-title"),
        no_courses: m.get("no-courses"),
        courses,
    }))
}

pub struct Line {
    /// The entry's id (the anchor of a launched unit's line).
    pub id: String,
    pub href: String,
    /// For a unit that is launched (a cmi5 AU): the form's action.
    pub launch: Option<String>,
    pub title: String,
    /// The reader's status of this line: HTML, or a slot the host fills.
    pub mark: String,
}

/// What of a course page is the reader's own: the summary (progress bar,
/// lessons done, passed, where to go on), then each lesson's status, then
/// each quiz's, in the course's order. Rendered here per reader
/// (`course_marks`), or left as slots in a page shared by every reader.
pub struct Marks {
    pub summary: String,
    pub lessons: Vec<String>,
    pub quizzes: Vec<String>,
}

impl Marks {
    /// Slots numbered in the order of [`Marks::list`]: `{prefix}{n};`.
    fn slots(prefix: &str, course: &CourseDoc) -> Marks {
        let mut n = 0..;
        let mut slot = || format!("{prefix}{};", n.next().unwrap_or_default());
        Marks {
            summary: slot(),
            lessons: course.lessons.iter().map(|_| slot()).collect(),
            quizzes: course.quizzes.iter().map(|_| slot()).collect(),
        }
    }

    fn list(self) -> Vec<String> {
        let mut all = vec![self.summary];
        all.extend(self.lessons);
        all.extend(self.quizzes);
        all
    }
}

#[derive(Template)]
#[template(path = "course_summary.html")]
struct Summary {
    percent: f64,
    done_text: String,
    passed_text: Option<String>,
    resume: Continue,
}

#[derive(Template)]
#[template(path = "status.html")]
struct Status {
    status: String,
    /// `status-done`, `status-failed` or empty: how the status is marked
    /// (besides its words).
    class: &'static str,
}

fn html_of(t: &impl Template) -> Result<String, Response> {
    t.render().map_err(|e| lms_sdk::error(500, "render_failed", e.to_string()))
}

/// The reader's marks of `course` from their progress `p`.
fn marks(course: &CourseDoc, p: &CourseProgress, m: &Messages) -> Result<Marks, Response> {
    let summary = html_of(&Summary {
        percent: p.percent_complete,
        done_text: m
            .with("lessons-done", &[("done", p.lessons_completed.to_string()), ("total", p.lessons_total.to_string())]),
        passed_text: p.passed.then(|| m.get("course-passed")),
        resume: next_step(course, p, m),
    })?;
    let lessons = course
        .lessons
        .iter()
        .map(|l| {
            let done = p.completed_lessons.contains(&l.id);
            html_of(&Status {
                status: m.get(if done { "status-completed" } else { "status-not-started" }),
                class: if done { "status-done" } else { "" },
            })
        })
        .collect::<Result<_, _>>()?;
    let quizzes = course
        .quizzes
        .iter()
        .map(|q| {
            let (status, class) = quiz_status(p.quizzes.iter().find(|x| x.quiz == q.id), m);
            html_of(&Status { status, class })
        })
        .collect::<Result<_, _>>()?;
    Ok(Marks { summary, lessons, quizzes })
}

#[derive(Template)]
#[template(path = "course.html")]
struct CoursePage {
    frame: Frame,
    title: String,
    description: String,
    marks: Marks,
    lessons_heading: String,
    lessons: Vec<Line>,
    quizzes_heading: String,
    quizzes: Vec<Line>,
}

fn quiz_status(q: Option<&QuizProgress>, m: &Messages) -> (String, &'static str) {
    match q {
        Some(q) if q.passed => {
            (m.with("quiz-passed", &[("best", percent(q.best_scaled_score.unwrap_or(0.0)))]), "status-done")
        }
        Some(q) if q.attempts > 0 => (
            m.with(
                "quiz-not-passed",
                &[("best", percent(q.best_scaled_score.unwrap_or(0.0))), ("attempts", q.attempts.to_string())],
            ),
            "status-failed",
        ),
        _ => (m.get("quiz-not-attempted"), ""),
    }
}

/// A slot prefix the host chose: letters and digits only, so it is the
/// same text escaped or not and cannot break the HTML around it.
fn slot_prefix(req: &Request) -> Result<Option<String>, Response> {
    match req.body.as_ref().and_then(|b| b.get("slots")) {
        None => Ok(None),
        Some(serde_json::Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(lms_sdk::error(400, "invalid_field", "course: body.slots must be letters and digits")),
    }
}

/// `course {course}`: body `{person, progress: CourseProgress}`, or
/// `{person, slots: PREFIX}` for the page every reader shares: each of the
/// reader's marks is then the slot `{PREFIX}{n};`, numbered as
/// `course_marks` lists them.
pub fn course(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let who = person(req)?;
    let id = param(req, "course")?;
    let course = course_doc(id, m.lang)?;
    let marks = match slot_prefix(req)? {
        Some(prefix) => Marks::slots(&prefix, &course),
        None => marks(&course, &field::<CourseProgress>(req, "progress")?, &m)?,
    };
    let lessons = course
        .lessons
        .iter()
        .zip(&marks.lessons)
        .map(|(l, mark)| Line {
            id: l.id.clone(),
            href: lesson_href(&course.id, &l.id),
            launch: l.launch.as_ref().map(|u| format!("/courses/{}/launch/{}", course.id, u.unit)),
            title: match &l.launch {
                Some(_) => m.with("launch-unit", &[("unit", l.title.clone())]),
                None => l.title.clone(),
            },
            mark: mark.clone(),
        })
        .collect();
    let quizzes = course
        .quizzes
        .iter()
        .zip(&marks.quizzes)
        .map(|(q, mark)| Line {
            id: q.id.clone(),
            href: format!("/quizzes/{}", q.id),
            launch: None,
            title: q.title.clone(),
            mark: mark.clone(),
        })
        .collect();
    Ok(page(&CoursePage {
        frame: Frame::new(&m, req, format!("/courses/{id}"), Some(&who))?,
        title: course.title.clone(),
        description: course.description.clone(),
        marks,
        lessons_heading: m.get("lessons-heading"),
        lessons,
        quizzes_heading: m.get("quizzes-heading"),
        quizzes,
    }))
}

/// `course_marks {course}`: body `{progress: CourseProgress}`; answers
/// `{"marks": [html...]}`, the reader's marks in slot order, to fill the
/// shared `course` page with.
pub fn course_marks(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let course = course_doc(param(req, "course")?, m.lang)?;
    let marks = marks(&course, &field::<CourseProgress>(req, "progress")?, &m)?;
    Ok(lms_sdk::json(200, &json!({"marks": marks.list()})))
}

pub struct Link {
    pub href: String,
    pub text: String,
}

#[derive(Template)]
#[template(path = "lesson.html")]
struct LessonPage {
    frame: Frame,
    title: String,
    back: Link,
    minutes: String,
    completed: String,
    body: String,
    previous: Option<Link>,
    next: Option<Link>,
    quizzes: Vec<Link>,
}

/// `lesson {course, lesson}`: body `{person}`, `ctx.actor` the learner. The
/// page, and a `completed` statement the host stores once per learner.
pub fn lesson(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let who = person(req)?;
    let (cid, lid) = (param(req, "course")?, param(req, "lesson")?);
    let course = course_doc(cid, m.lang)?;
    let lesson = doc::<LessonDoc>(&lms_content::lesson_key(cid, lid))?;
    let title_of = |id: &Option<String>| {
        id.as_ref().and_then(|id| course.lessons.iter().find(|l| &l.id == id)).map(|l| (l.id.clone(), l.title.clone()))
    };
    let previous = title_of(&lesson.previous)
        .map(|(id, t)| Link { href: lesson_href(cid, &id), text: m.with("previous-lesson", &[("lesson", t)]) });
    let next = title_of(&lesson.next)
        .map(|(id, t)| Link { href: lesson_href(cid, &id), text: m.with("next-lesson", &[("lesson", t)]) });
    // After the last lesson, the way on is the course's quizzes.
    let quizzes = if next.is_none() {
        course
            .quizzes
            .iter()
            .map(|q| Link {
                href: format!("/quizzes/{}", q.id),
                text: m.with("take-quiz", &[("quiz", q.title.clone())]),
            })
            .collect()
    } else {
        vec![]
    };
    let mut resp = page(&LessonPage {
        frame: Frame::new(&m, req, lesson_href(cid, lid), Some(&who))?,
        title: lesson.title.clone(),
        back: Link {
            href: format!("/courses/{cid}"),
            text: m.with("back-to-course", &[("course", course.title.clone())]),
        },
        minutes: m.with("lesson-minutes", &[("minutes", lesson.minutes.to_string())]),
        completed: m.get("lesson-completed"),
        body: markdown::render(&lesson.body, &lesson.media),
        previous,
        next,
        quizzes,
    });
    if let Some(actor) = req.ctx.actor.clone() {
        let course_activity = json!([{"id": course.activity_id, "objectType": "Activity"}]);
        resp.statements.push(json!({
            "id": statement_id(&req.ctx, 0),
            "actor": actor,
            "verb": {"id": VERB_COMPLETED, "display": {"en-US": "completed"}},
            "object": {
                "objectType": "Activity",
                "id": lesson.activity_id,
                "definition": {"type": ACTIVITY_LESSON, "name": {lesson.language.as_str(): lesson.title}},
            },
            "result": {"completion": true},
            "context": {
                "contextActivities": {"parent": course_activity, "grouping": course_activity},
                "platform": "lms-edge",
            },
            "timestamp": req.ctx.now,
        }));
        resp.once = true;
    }
    Ok(resp)
}

pub struct QuestionView {
    pub legend: String,
    pub name: String,
    pub choices: Vec<ChoiceView>,
}

pub struct ChoiceView {
    pub id: String,
    pub value: String,
    pub text: String,
}

#[derive(Template)]
#[template(path = "quiz.html")]
struct QuizPage {
    frame: Frame,
    title: String,
    back: Link,
    intro: String,
    action: String,
    questions: Vec<QuestionView>,
    submit: String,
}

/// The form field of a question's answer (the host reads these back).
pub fn answer_field(question: &str) -> String {
    format!("answer-{question}")
}

fn course_link(course: &str, m: &Messages) -> Result<Link, Response> {
    let c = course_doc(course, m.lang)?;
    Ok(Link { href: format!("/courses/{course}"), text: m.with("back-to-course", &[("course", c.title)]) })
}

/// `quiz {quiz}`: body `{person, quiz: PublicQuiz}`.
pub fn quiz(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let who = person(req)?;
    let q: PublicQuiz = field(req, "quiz")?;
    let questions = q
        .questions
        .iter()
        .enumerate()
        .map(|(i, x)| QuestionView {
            legend: m.with("question-legend", &[("n", (i + 1).to_string()), ("prompt", x.prompt.clone())]),
            name: answer_field(&x.id),
            choices: x
                .choices
                .iter()
                .map(|c| ChoiceView { id: format!("{}-{}", x.id, c.id), value: c.id.clone(), text: c.text.clone() })
                .collect(),
        })
        .collect();
    Ok(page(&QuizPage {
        frame: Frame::new(&m, req, format!("/quizzes/{}", q.id), Some(&who))?,
        title: q.title.clone(),
        back: course_link(&q.course, &m)?,
        intro: m.with("quiz-intro", &[("mastery", percent(q.mastery_score))]),
        action: format!("/quizzes/{}", q.id),
        questions,
        submit: m.get("submit-answers"),
    }))
}

pub struct FeedbackView {
    pub prompt: String,
    pub answer: String,
    pub verdict: String,
    pub class: &'static str,
    pub note: String,
}

#[derive(Template)]
#[template(path = "quiz_result.html")]
struct ResultPage {
    frame: Frame,
    title: String,
    score: String,
    verdict: String,
    passed: bool,
    feedback: Vec<FeedbackView>,
    again: Link,
    back: Link,
}

/// `quiz_result {quiz}`: body `{person, quiz: PublicQuiz, result: Graded}`.
pub fn quiz_result(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let who = person(req)?;
    let q: PublicQuiz = field(req, "quiz")?;
    let g: Graded = field(req, "result")?;
    let feedback = g
        .feedback
        .iter()
        .filter_map(|f| {
            let question = q.questions.iter().find(|x| x.id == f.question)?;
            let given = f.your_answer.as_ref().and_then(|a| question.choices.iter().find(|c| &c.id == a));
            Some(FeedbackView {
                prompt: question.prompt.clone(),
                answer: match given {
                    Some(c) => m.with("your-answer", &[("answer", c.text.clone())]),
                    None => m.get("no-answer"),
                },
                verdict: m.get(if f.correct { "answer-correct" } else { "answer-wrong" }),
                class: if f.correct { "status-done" } else { "status-failed" },
                note: match (&f.explanation, f.correct) {
                    (Some(e), true) => e.clone(),
                    _ => m.get("answer-hint"),
                },
            })
        })
        .collect();
    Ok(page(&ResultPage {
        frame: Frame::new(&m, req, format!("/quizzes/{}", q.id), Some(&who))?,
        title: m.with("result-title", &[("quiz", q.title.clone())]),
        score: m.with(
            "result-score",
            &[
                ("correct", g.score.raw.to_string()),
                ("total", g.score.max.to_string()),
                ("percent", percent(g.score.scaled)),
            ],
        ),
        verdict: if g.passed {
            m.get("result-passed")
        } else {
            m.with("result-failed", &[("mastery", percent(q.mastery_score))])
        },
        passed: g.passed,
        feedback,
        again: Link { href: format!("/quizzes/{}", q.id), text: m.get("try-again") },
        back: course_link(&q.course, &m)?,
    }))
}

/// One course's line in a progress table: the learner's own (`/progress`,
/// linked to the course) and the coach's view of a learner (unlinked). One
/// row type and one template part (`course_row.html`) for both.
pub struct CourseRow {
    pub href: Option<String>,
    pub title: String,
    pub lessons: String,
    pub percent: f64,
    pub quizzes: String,
    pub last: String,
}

/// The columns of a [`CourseRow`] table, in the order the template writes them.
pub const COURSE_COLUMNS: [&str; 5] = ["col-course", "col-lessons", "col-percent", "col-quizzes", "col-last-active"];

impl CourseRow {
    pub fn new(
        href: Option<String>,
        title: &str,
        (lessons, quizzes): (usize, usize),
        p: &CourseProgress,
        m: &Messages,
    ) -> CourseRow {
        CourseRow {
            href,
            title: title.to_string(),
            lessons: format!("{}/{lessons}", p.lessons_completed),
            percent: p.percent_complete,
            quizzes: format!("{}/{quizzes}", p.quizzes_passed()),
            last: when(&p.last_activity, m),
        }
    }
}

#[derive(Template)]
#[template(path = "progress.html")]
struct ProgressPage {
    frame: Frame,
    title: String,
    columns: [String; 5],
    rows: Vec<CourseRow>,
}

/// `progress`: body `{person, progress: [CourseProgress]}`.
pub fn progress(req: &Request) -> Result<Response, Response> {
    let m = Messages::new(req.ctx.language.as_deref());
    let who = person(req)?;
    let progress: Vec<CourseProgress> = field(req, "progress")?;
    let index = index(m.lang)?;
    let rows = index
        .courses
        .iter()
        .map(|c| {
            let p = progress.iter().find(|p| p.course == c.id).cloned().unwrap_or_default();
            CourseRow::new(Some(format!("/courses/{}", c.id)), &c.title, (c.lessons, c.quizzes), &p, &m)
        })
        .collect();
    Ok(page(&ProgressPage {
        frame: Frame::new(&m, req, "/progress".into(), Some(&who))?,
        title: m.get("progress-title"),
        columns: COURSE_COLUMNS.map(|k| m.get(k)),
        rows,
    }))
}
