//! Native courses: the schema content teams write them in, their checks,
//! and the flattened documents the modules read.
//!
//! Authors write one TOML file per course (the factory content pack's
//! `appliance/content/courses/*.toml`, parsed into [`Course`]; lms-package
//! keeps packs). `cargo xtask modules` validates them and flattens
//! them into `content.json`: a map from document key to document, so that a
//! module handling one request reads only the one document it needs through
//! the host's `content_size`/`content_read` imports instead of parsing the
//! whole pack in every fresh instance.
//!
//! Keys: `index`, `course/{course}`, `lesson/{course}/{lesson}`, `quiz/{quiz}`.
//! Quiz documents hold the answer key; only the quiz module reads them, and it
//! never serves the key.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub const PACK_FORMAT: u32 = 1;

/// One authored course, as written in `pack/<course>.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Course {
    pub id: String,
    pub title: String,
    /// The language the course is written in (a BCP 47 tag such as `en` or
    /// `zh-CN`): the key of its titles in xAPI language maps.
    pub language: String,
    pub description: String,
    pub completion: CompletionRules,
    pub lessons: Vec<Lesson>,
    #[serde(default)]
    pub quizzes: Vec<Quiz>,
}

/// When a course counts as completed and passed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CompletionRules {
    /// Lessons a learner must complete; `None` means all of them.
    #[serde(default)]
    pub lessons_required: Option<u32>,
    /// Quizzes a learner must pass for the course to count as passed.
    #[serde(default)]
    pub quizzes_to_pass: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lesson {
    pub id: String,
    pub title: String,
    pub minutes: u32,
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quiz {
    pub id: String,
    pub title: String,
    /// Scaled score (0..=1) at or above which an attempt passes.
    pub mastery_score: f64,
    pub questions: Vec<Question>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub prompt: String,
    pub choices: Vec<Choice>,
    /// The id of the right choice. Never served to learners.
    pub answer: String,
    /// Shown after an attempt.
    pub explanation: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub id: String,
    pub text: String,
}

/// `index`: every course.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexDoc {
    pub activity_base: String,
    pub courses: Vec<CourseSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CourseSummary {
    pub id: String,
    pub title: String,
    pub description: String,
    pub lessons: usize,
    pub quizzes: usize,
    /// The texts in other page languages (imported packages carry several).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub i18n: BTreeMap<String, Localized>,
}

/// A course's texts in one page language: title, description and, by
/// lesson id, the lessons' titles.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Localized {
    pub title: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lessons: BTreeMap<String, String>,
}

impl CourseSummary {
    /// The summary with its texts in `lang`, when it has them.
    pub fn localized(mut self, lang: &str) -> CourseSummary {
        if let Some(l) = self.i18n.remove(lang) {
            (self.title, self.description) = (l.title, l.description);
        }
        self
    }
}

/// `course/{course}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CourseDoc {
    pub id: String,
    pub title: String,
    pub language: String,
    pub description: String,
    pub activity_id: String,
    pub completion: CompletionRules,
    pub lessons: Vec<Entry>,
    pub quizzes: Vec<Entry>,
    /// The texts in other page languages (imported packages carry several).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub i18n: BTreeMap<String, Localized>,
}

impl CourseDoc {
    /// The course with its texts in `lang`, when it has them.
    pub fn localized(mut self, lang: &str) -> CourseDoc {
        if let Some(mut l) = self.i18n.remove(lang) {
            (self.title, self.description) = (l.title, l.description);
            for e in &mut self.lessons {
                if let Some(t) = l.lessons.remove(&e.id) {
                    e.title = t;
                }
            }
        }
        self
    }
}

/// A lesson or quiz as listed in a course.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub title: String,
    pub activity_id: String,
    /// An imported package's unit, launched rather than read (a cmi5 AU):
    /// done when its moveOn is met.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
}

/// How a launched unit is opened and when it counts as done.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Launch {
    /// The unit's index in its package (`POST /courses/{course}/launch/{unit}`).
    pub unit: usize,
    /// cmi5 moveOn: `NotApplicable`, `Passed`, `Completed`,
    /// `CompletedAndPassed` or `CompletedOrPassed`.
    pub move_on: String,
    /// Whether a coach may mark it done by other means (cmi5 `waived`).
    #[serde(default)]
    pub waivable: bool,
}

impl Launch {
    /// Whether a unit that sent `completed` and/or `passed` meets its moveOn
    /// (an unknown rule asks for both).
    pub fn met(&self, completed: bool, passed: bool) -> bool {
        match self.move_on.as_str() {
            "NotApplicable" => true,
            "Passed" => passed,
            "Completed" => completed,
            "CompletedOrPassed" => completed || passed,
            _ => completed && passed,
        }
    }
}

/// `lesson/{course}/{lesson}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LessonDoc {
    pub course: String,
    pub id: String,
    pub title: String,
    pub language: String,
    pub minutes: u32,
    pub activity_id: String,
    pub body: String,
    pub previous: Option<String>,
    pub next: Option<String>,
    /// The media the body names (see [`media_refs`]): path -> the URL the
    /// node serves it at, filled in by the node when it loads the pack.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub media: BTreeMap<String, String>,
}

/// `quiz/{quiz}`, answer key included.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuizDoc {
    pub id: String,
    pub course: String,
    pub title: String,
    pub language: String,
    pub activity_id: String,
    pub course_activity_id: String,
    pub mastery_score: f64,
    pub questions: Vec<Question>,
}

/// The flattened pack as written to `content.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackFile {
    pub format: u32,
    pub docs: BTreeMap<String, serde_json::Value>,
}

/// A learner's progress in one course, as the progress module derives it
/// from their statements and the pages (learner and coach) show it. One
/// definition for the module that writes it and the module that reads it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CourseProgress {
    pub course: String,
    pub title: String,
    pub lessons_total: usize,
    pub lessons_required: usize,
    pub lessons_completed: usize,
    pub completed_lessons: Vec<String>,
    pub percent_complete: f64,
    /// Best scaled score over all attempts of the course's quizzes.
    pub best_scaled_score: Option<f64>,
    pub quizzes: Vec<QuizProgress>,
    pub total_duration_seconds: f64,
    /// The newest statement's timestamp in this course (RFC 3339, UTC).
    pub last_activity: Option<String>,
    pub completed: bool,
    pub passed: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct QuizProgress {
    pub quiz: String,
    pub attempts: usize,
    /// Attempts that scored below the quiz's mastery score.
    pub failures: usize,
    pub best_scaled_score: Option<f64>,
    pub passed: bool,
}

impl CourseProgress {
    /// Any lesson read or quiz tried.
    pub fn started(&self) -> bool {
        self.lessons_completed > 0 || self.quizzes.iter().any(|q| q.attempts > 0)
    }

    /// How many of the course's quizzes are passed.
    pub fn quizzes_passed(&self) -> usize {
        self.quizzes.iter().filter(|q| q.passed).count()
    }
}

pub fn course_key(course: &str) -> String {
    format!("course/{course}")
}
pub fn lesson_key(course: &str, lesson: &str) -> String {
    format!("lesson/{course}/{lesson}")
}
pub fn quiz_key(quiz: &str) -> String {
    format!("quiz/{quiz}")
}
pub fn course_activity(base: &str, course: &str) -> String {
    format!("{base}/courses/{course}")
}
pub fn lesson_activity(base: &str, course: &str, lesson: &str) -> String {
    format!("{base}/courses/{course}/lessons/{lesson}")
}
pub fn quiz_activity(base: &str, quiz: &str) -> String {
    format!("{base}/quizzes/{quiz}")
}

/// What a media file of a lesson is shown as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
}

/// The media a lesson may show, by extension: (extension, MIME type, kind).
/// Anything else is refused when the course is checked.
pub const MEDIA_TYPES: &[(&str, &str, MediaKind)] = &[
    ("png", "image/png", MediaKind::Image),
    ("jpg", "image/jpeg", MediaKind::Image),
    ("jpeg", "image/jpeg", MediaKind::Image),
    ("gif", "image/gif", MediaKind::Image),
    ("webp", "image/webp", MediaKind::Image),
    ("svg", "image/svg+xml", MediaKind::Image),
    ("mp4", "video/mp4", MediaKind::Video),
    ("webm", "video/webm", MediaKind::Video),
    ("mp3", "audio/mpeg", MediaKind::Audio),
    ("ogg", "audio/ogg", MediaKind::Audio),
];

/// The MIME type and kind of a media path, by its extension.
pub fn media_type(path: &str) -> Option<(&'static str, MediaKind)> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    MEDIA_TYPES.iter().find(|(e, _, _)| *e == ext).map(|(_, m, k)| (*m, *k))
}

/// The scheme of a URL (`https`, `data`, `javascript`), if it has one: what
/// comes before its first `:` when no `/`, `?` or `#` does.
pub fn url_scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.trim().split_once(':')?;
    (!scheme.contains(['/', '?', '#'])).then_some(scheme)
}

/// The course's own media a lesson body names: the destinations of its
/// Markdown images (`![a diagram](water-cycle.svg)`, `![the lab](lab.mp4)`
/// for a video) that are not URLs with a scheme. They are paths in the
/// course's media directory (`courses/<course id>/` of the pack), served by
/// the node; in body order, each once.
pub fn media_refs(body: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Parser, Tag};
    let mut out: Vec<String> = Vec::new();
    for e in Parser::new(body) {
        if let Event::Start(Tag::Image { dest_url, .. }) = e {
            let d = dest_url.trim();
            if url_scheme(d).is_none() && !d.starts_with('#') && !out.iter().any(|o| o == d) {
                out.push(d.to_string());
            }
        }
    }
    out
}

/// Why `path` cannot be a lesson's media file, if it cannot: it must be a
/// plain relative path (no `..`, no empty, `.`-led or absolute parts, no
/// backslash, query or fragment) with one of [`MEDIA_TYPES`]' extensions.
pub fn media_path_problem(path: &str) -> Option<String> {
    let plain = !path.is_empty()
        && !path.contains(['\\', '?', '#', '%'])
        && path.split('/').all(|p| !p.is_empty() && !p.starts_with('.') && p.chars().all(|c| !c.is_control()));
    if !plain {
        return Some("not a plain relative path inside the course's media directory".into());
    }
    if media_type(path).is_none() {
        let known: Vec<&str> = MEDIA_TYPES.iter().map(|(e, _, _)| *e).collect();
        return Some(format!("not a media file this node serves (one of {})", known.join(", ")));
    }
    None
}

/// Ids appear in URLs and activity IRIs: keep them to a safe alphabet.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A BCP 47 language tag as xAPI language maps key them: a 2-3 letter
/// language, then subtags of 1-8 letters or digits (`en`, `zh-CN`,
/// `zh-Hans-CN`). `und` (undetermined) is refused: a course knows its
/// language.
pub fn valid_language(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let first = parts.next().unwrap_or_default();
    (2..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_alphabetic())
        && !first.eq_ignore_ascii_case("und")
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Checks a set of courses for everything the modules rely on.
/// Returns every problem found, each naming the course and field.
pub fn validate(courses: &[Course]) -> Vec<String> {
    let mut errs = Vec::new();
    let mut course_ids = BTreeSet::new();
    let mut quiz_ids = BTreeSet::new();
    for c in courses {
        let at = format!("course {:?}", c.id);
        if !valid_id(&c.id) {
            errs.push(format!("{at}: id must be 1-64 chars of a-z, 0-9, '-'"));
        }
        if !course_ids.insert(c.id.clone()) {
            errs.push(format!("{at}: duplicate course id"));
        }
        if c.title.trim().is_empty() {
            errs.push(format!("{at}: empty title"));
        }
        if !valid_language(&c.language) {
            errs.push(format!("{at}: language {:?} is not a language tag such as \"en\" or \"zh-CN\"", c.language));
        }
        if c.lessons.is_empty() {
            errs.push(format!("{at}: no lessons"));
        }
        let mut lesson_ids = BTreeSet::new();
        for l in &c.lessons {
            if !valid_id(&l.id) {
                errs.push(format!("{at} lesson {:?}: bad id", l.id));
            }
            if !lesson_ids.insert(l.id.clone()) {
                errs.push(format!("{at} lesson {:?}: duplicate id", l.id));
            }
            if l.body.trim().len() < 200 {
                errs.push(format!("{at} lesson {:?}: body shorter than 200 chars", l.id));
            }
            for m in media_refs(&l.body) {
                if let Some(problem) = media_path_problem(&m) {
                    errs.push(format!("{at} lesson {:?}: media {m:?}: {problem}", l.id));
                }
            }
        }
        if let Some(n) = c.completion.lessons_required
            && (n == 0 || n as usize > c.lessons.len())
        {
            errs.push(format!(
                "{at}: completion.lessons_required = {n} but the course has {} lessons",
                c.lessons.len()
            ));
        }
        let local_quizzes: BTreeSet<&str> = c.quizzes.iter().map(|q| q.id.as_str()).collect();
        for q in &c.completion.quizzes_to_pass {
            if !local_quizzes.contains(q.as_str()) {
                errs.push(format!("{at}: completion.quizzes_to_pass names unknown quiz {q:?}"));
            }
        }
        for q in &c.quizzes {
            let qat = format!("{at} quiz {:?}", q.id);
            if !valid_id(&q.id) {
                errs.push(format!("{qat}: bad id"));
            }
            if !quiz_ids.insert(q.id.clone()) {
                errs.push(format!("{qat}: quiz ids must be unique across courses"));
            }
            if !(0.0..=1.0).contains(&q.mastery_score) {
                errs.push(format!("{qat}: mastery_score must be within 0..=1"));
            }
            if q.questions.is_empty() {
                errs.push(format!("{qat}: no questions"));
            }
            let mut qids = BTreeSet::new();
            for question in &q.questions {
                let qq = format!("{qat} question {:?}", question.id);
                if !valid_id(&question.id) || !qids.insert(question.id.clone()) {
                    errs.push(format!("{qq}: bad or duplicate id"));
                }
                if question.choices.len() < 2 {
                    errs.push(format!("{qq}: needs at least two choices"));
                }
                let mut cids = BTreeSet::new();
                for ch in &question.choices {
                    if !cids.insert(ch.id.as_str()) {
                        errs.push(format!("{qq}: duplicate choice {:?}", ch.id));
                    }
                }
                if !cids.contains(question.answer.as_str()) {
                    errs.push(format!("{qq}: answer {:?} is not one of its choices", question.answer));
                }
            }
        }
    }
    errs
}

/// Flattens validated courses into the documents modules read.
pub fn flatten(activity_base: &str, courses: &[Course]) -> PackFile {
    let mut docs = BTreeMap::new();
    let index = IndexDoc {
        activity_base: activity_base.to_string(),
        courses: courses
            .iter()
            .map(|c| CourseSummary {
                id: c.id.clone(),
                title: c.title.clone(),
                description: c.description.clone(),
                lessons: c.lessons.len(),
                quizzes: c.quizzes.len(),
                i18n: BTreeMap::new(),
            })
            .collect(),
    };
    docs.insert("index".to_string(), to_value(&index));
    for c in courses {
        let course = CourseDoc {
            id: c.id.clone(),
            title: c.title.clone(),
            language: c.language.clone(),
            description: c.description.clone(),
            activity_id: course_activity(activity_base, &c.id),
            completion: c.completion.clone(),
            lessons: c
                .lessons
                .iter()
                .map(|l| Entry {
                    id: l.id.clone(),
                    title: l.title.clone(),
                    activity_id: lesson_activity(activity_base, &c.id, &l.id),
                    launch: None,
                })
                .collect(),
            quizzes: c
                .quizzes
                .iter()
                .map(|q| Entry {
                    id: q.id.clone(),
                    title: q.title.clone(),
                    activity_id: quiz_activity(activity_base, &q.id),
                    launch: None,
                })
                .collect(),
            i18n: BTreeMap::new(),
        };
        docs.insert(course_key(&c.id), to_value(&course));
        for (i, l) in c.lessons.iter().enumerate() {
            let lesson = LessonDoc {
                course: c.id.clone(),
                id: l.id.clone(),
                title: l.title.clone(),
                language: c.language.clone(),
                minutes: l.minutes,
                activity_id: lesson_activity(activity_base, &c.id, &l.id),
                body: l.body.trim().to_string(),
                previous: i.checked_sub(1).map(|p| c.lessons[p].id.clone()),
                next: c.lessons.get(i + 1).map(|n| n.id.clone()),
                media: BTreeMap::new(),
            };
            docs.insert(lesson_key(&c.id, &l.id), to_value(&lesson));
        }
        for q in &c.quizzes {
            let quiz = QuizDoc {
                id: q.id.clone(),
                course: c.id.clone(),
                title: q.title.clone(),
                language: c.language.clone(),
                activity_id: quiz_activity(activity_base, &q.id),
                course_activity_id: course_activity(activity_base, &c.id),
                mastery_score: q.mastery_score,
                questions: q.questions.clone(),
            };
            docs.insert(quiz_key(&q.id), to_value(&quiz));
        }
    }
    PackFile { format: PACK_FORMAT, docs }
}

/// Content documents are plain data: serializing them cannot fail.
fn to_value<T: Serialize>(doc: &T) -> serde_json::Value {
    serde_json::to_value(doc).expect("content documents always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn course() -> Course {
        Course {
            id: "c".into(),
            title: "C".into(),
            language: "en".into(),
            description: "d".into(),
            completion: CompletionRules { lessons_required: None, quizzes_to_pass: vec!["q".into()] },
            lessons: vec![Lesson { id: "l1".into(), title: "L1".into(), minutes: 5, body: "x".repeat(300) }],
            quizzes: vec![Quiz {
                id: "q".into(),
                title: "Q".into(),
                mastery_score: 0.5,
                questions: vec![Question {
                    id: "q1".into(),
                    prompt: "?".into(),
                    choices: vec![
                        Choice { id: "a".into(), text: "A".into() },
                        Choice { id: "b".into(), text: "B".into() },
                    ],
                    answer: "a".into(),
                    explanation: "because".into(),
                }],
            }],
        }
    }

    #[test]
    fn lessons_name_their_media_as_markdown_images() {
        let body = "Look: ![the water cycle](diagrams/cycle.svg \"Cycle\")\n\n![rain](rain.mp4) ![again](rain.mp4)\n\n\
                    [a link](notes.pdf) ![far](https://example.org/x.png) ![inline](data:image/png;base64,xx)";
        assert_eq!(media_refs(body), ["diagrams/cycle.svg", "rain.mp4"]);
        assert_eq!(media_type("diagrams/Cycle.SVG"), Some(("image/svg+xml", MediaKind::Image)));
        assert_eq!(media_type("rain.mp4").map(|t| t.1), Some(MediaKind::Video));
        for bad in ["../secret.png", "/etc/x.png", "a//b.png", ".hidden.png", "a\\b.png", "x.png?v=1", "x%2e.png"] {
            assert!(media_path_problem(bad).unwrap().contains("plain relative path"), "{bad}");
        }
        assert!(media_path_problem("x.exe").unwrap().contains("one of png"), "x.exe");
        assert_eq!(media_path_problem("diagrams/cycle.svg"), None);

        // A course naming one is refused with the lesson and the path.
        let mut c = course();
        c.lessons[0].body = format!("{}\n\n![x](../../etc/passwd.png) ![y](run.sh)", "x".repeat(300));
        let errs = validate(&[c]).join("; ");
        assert!(
            errs.contains("lesson \"l1\": media \"../../etc/passwd.png\"") && errs.contains("\"run.sh\""),
            "{errs}"
        );
    }

    #[test]
    fn good_course_validates_and_flattens() {
        assert!(validate(&[course()]).is_empty());
        let pack = flatten("https://x", &[course()]);
        assert!(pack.docs.contains_key("index"));
        assert!(pack.docs.contains_key("course/c"));
        assert!(pack.docs.contains_key("lesson/c/l1"));
        assert!(pack.docs.contains_key("quiz/q"));
    }

    #[test]
    fn answer_outside_choices_is_named() {
        let mut c = course();
        c.quizzes[0].questions[0].answer = "z".into();
        let errs = validate(&[c]);
        assert!(errs.iter().any(|e| e.contains("answer \"z\"")), "{errs:?}");
    }

    #[test]
    fn unknown_quiz_in_rules_is_named() {
        let mut c = course();
        c.completion.quizzes_to_pass = vec!["nope".into()];
        let errs = validate(&[c]);
        assert!(errs.iter().any(|e| e.contains("unknown quiz \"nope\"")), "{errs:?}");
    }

    #[test]
    fn a_course_names_its_language_and_docs_carry_it() {
        for bad in ["", "und", "e", "english", "zh_CN", "zh-", "zh-CN-toolongsubtag"] {
            let mut c = course();
            c.language = bad.into();
            let errs = validate(&[c]);
            assert!(errs.iter().any(|e| e.contains("language")), "{bad:?}: {errs:?}");
        }
        for good in ["en", "zh-CN", "zh-Hans-CN", "yue"] {
            let mut c = course();
            c.language = good.into();
            assert!(validate(&[c]).is_empty(), "{good}");
        }
        let mut c = course();
        c.language = "zh-CN".into();
        let pack = flatten("https://x", &[c]);
        for key in ["course/c", "lesson/c/l1", "quiz/q"] {
            assert_eq!(pack.docs[key]["language"], "zh-CN", "{key}");
        }
    }
}
