//! The progress module: derives a learner's progress per course from the
//! xAPI statements the host selected for that learner (never voided ones),
//! by the completion rules in the content pack.
//!
//! Progress is a fold: each statement changes a course's [`CourseFacts`]
//! (lessons completed, quiz attempts, time, last activity), and the answer
//! is computed from the facts. The module answers its facts to the host
//! (`Response::facts`), which hands them back next time with only the
//! statements stored since, so a learner's whole history is read once per
//! module set. A module update starts from no facts, so changed rules apply
//! to all history at once. The answer depends on the facts, statements and
//! query only (never the clock), as the ABI asks of a module with facts.
//!
//! Op: `progress {learner}` with optional query `course`.

#![allow(clippy::result_large_err)] // a Response is the error answer, as in the other modules

use lms_content::{CourseDoc, CourseProgress, IndexDoc, QuizDoc, QuizProgress, course_key, quiz_key};
use lms_sdk::{Request, Response, SelfTest, content, error, json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

lms_sdk::export_module!(handle: handle, self_test: self_test);

const VERB_COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
const VERB_PASSED: &str = "http://adlnet.gov/expapi/verbs/passed";
const VERB_FAILED: &str = "http://adlnet.gov/expapi/verbs/failed";
/// cmi5: the LMS waived a unit, which meets any moveOn.
const VERB_WAIVED: &str = "https://w3id.org/xapi/adl/verbs/waived";

/// What the statements so far say about one course.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CourseFacts {
    /// Lessons completed; for a launched unit (a cmi5 AU), units that sent
    /// `completed`, which with `passed` decides whether it is done.
    #[serde(default)]
    pub completed: BTreeSet<String>,
    /// Launched units that sent `passed`.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub passed: BTreeSet<String>,
    #[serde(default)]
    pub quizzes: BTreeMap<String, QuizProgress>,
    #[serde(default)]
    pub duration: f64,
    #[serde(default)]
    pub last: Option<String>,
}

/// The facts of every course, by course id: what the host keeps.
pub type Facts = BTreeMap<String, CourseFacts>;

fn course_and_mastery(id: &str) -> Result<(CourseDoc, BTreeMap<String, f64>), Response> {
    let course = match content::<CourseDoc>(&course_key(id)) {
        Ok(Some(c)) => c,
        Ok(None) => return Err(error(500, "content_missing", format!("course {id:?} has no document"))),
        Err(e) => return Err(error(500, "content_invalid", e)),
    };
    let mut mastery = BTreeMap::new();
    for q in &course.quizzes {
        match content::<QuizDoc>(&quiz_key(&q.id)) {
            Ok(Some(doc)) => {
                mastery.insert(q.id.clone(), doc.mastery_score);
            }
            Ok(None) => return Err(error(500, "content_missing", format!("quiz {:?} has no document", q.id))),
            Err(e) => return Err(error(500, "content_invalid", e)),
        }
    }
    Ok((course, mastery))
}

pub fn handle(req: &Request) -> Response {
    match progress(req) {
        Ok(r) | Err(r) => r,
    }
}

fn progress(req: &Request) -> Result<Response, Response> {
    if req.op != "progress" {
        return Err(error(400, "unknown_op", format!("progress has no op {:?}", req.op)));
    }
    let Some(learner) = req.params.get("learner") else {
        return Err(error(400, "missing_param", "missing path parameter \"learner\""));
    };
    let index = match content::<IndexDoc>("index") {
        Ok(Some(i)) => i,
        Ok(None) => return Err(error(500, "content_missing", "the content pack has no index")),
        Err(e) => return Err(error(500, "content_invalid", e)),
    };
    let wanted: Vec<&str> = match req.query.get("course") {
        Some(c) if !index.courses.iter().any(|x| &x.id == c) => {
            return Err(error(404, "not_found", format!("no course {c:?}")));
        }
        Some(c) => vec![c.as_str()],
        None => index.courses.iter().map(|c| c.id.as_str()).collect(),
    };
    let mut facts: Facts = match &req.facts {
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|e| error(400, "invalid_facts", format!("facts the host handed back do not read: {e}")))?,
        None => Facts::new(),
    };
    // Fold the new statements into every course's facts (all courses, so
    // the facts stay whole whichever course is asked for next).
    let mut docs = BTreeMap::new();
    if !req.statements.is_empty() || req.facts.is_none() {
        for c in &index.courses {
            let (course, mastery) = course_and_mastery(&c.id)?;
            fold(&course, &mastery, facts.entry(c.id.clone()).or_default(), &req.statements);
            docs.insert(c.id.clone(), course);
        }
    }
    let mut out = Vec::new();
    for id in wanted {
        let course = match docs.remove(id) {
            Some(c) => c,
            None => course_and_mastery(id)?.0,
        };
        out.push(finish(&course, facts.get(id).cloned().unwrap_or_default()));
    }
    let mut resp = json(200, &serde_json::json!({"learner": learner, "courses": out}));
    resp.facts = serde_json::value::to_raw_value(&facts).ok();
    Ok(resp)
}

/// Progress in one course from a learner's statements.
pub fn course_progress(course: &CourseDoc, mastery: &BTreeMap<String, f64>, statements: &[Value]) -> CourseProgress {
    let mut facts = CourseFacts::default();
    fold(course, mastery, &mut facts, statements);
    finish(course, facts)
}

/// Folds `statements` (oldest first) into a course's facts.
pub fn fold(course: &CourseDoc, mastery: &BTreeMap<String, f64>, facts: &mut CourseFacts, statements: &[Value]) {
    let lesson_ids: BTreeMap<&str, &str> =
        course.lessons.iter().map(|l| (l.activity_id.as_str(), l.id.as_str())).collect();
    let quiz_ids: BTreeMap<&str, &str> =
        course.quizzes.iter().map(|q| (q.activity_id.as_str(), q.id.as_str())).collect();
    for s in statements {
        let object = s["object"]["id"].as_str().unwrap_or_default();
        let verb = s["verb"]["id"].as_str().unwrap_or_default();
        let in_course = object == course.activity_id
            || lesson_ids.contains_key(object)
            || quiz_ids.contains_key(object)
            || s["context"]["contextActivities"]["grouping"]
                .as_array()
                .is_some_and(|g| g.iter().any(|a| a["id"] == course.activity_id.as_str()));
        if !in_course {
            continue;
        }
        if let Some(ts) = s["timestamp"].as_str()
            && facts.last.as_deref().is_none_or(|l| ts > l)
        {
            // RFC 3339 timestamps in UTC ("Z") compare correctly as strings;
            // the host normalises stored timestamps to that form.
            facts.last = Some(ts.to_string());
        }
        let result = &s["result"];
        if let Some(lesson) = lesson_ids.get(object) {
            if verb == VERB_COMPLETED || result["completion"] == true {
                facts.completed.insert(lesson.to_string());
            }
            if verb == VERB_PASSED || verb == VERB_WAIVED {
                facts.passed.insert(lesson.to_string());
            }
            facts.duration += result["duration"].as_str().and_then(parse_duration).unwrap_or(0.0);
        } else if let Some(quiz) = quiz_ids.get(object)
            && (verb == VERB_PASSED || verb == VERB_FAILED)
        {
            let entry = facts.quizzes.entry(quiz.to_string()).or_default();
            entry.attempts += 1;
            let scaled = result["score"]["scaled"].as_f64();
            let mastered = scaled.is_some_and(|s| mastery.get(*quiz).is_some_and(|m| s >= *m));
            if let Some(scaled) = scaled {
                entry.best_scaled_score = Some(entry.best_scaled_score.map_or(scaled, |b| b.max(scaled)));
            }
            if mastered {
                entry.passed = true;
            } else {
                entry.failures += 1;
            }
            facts.duration += result["duration"].as_str().and_then(parse_duration).unwrap_or(0.0);
        }
    }
}

/// A course's progress from its facts, by its completion rules.
pub fn finish(course: &CourseDoc, mut facts: CourseFacts) -> CourseProgress {
    // A lesson is done when completed; a launched unit when its moveOn is met.
    let completed: BTreeSet<&str> = course
        .lessons
        .iter()
        .filter(|l| {
            let sent = facts.completed.contains(&l.id);
            match &l.launch {
                None => sent,
                Some(launch) => launch.met(sent, facts.passed.contains(&l.id)),
            }
        })
        .map(|l| l.id.as_str())
        .collect();
    let completed = &completed;
    let lessons_total = course.lessons.len();
    let lessons_required =
        course.completion.lessons_required.map_or(lessons_total, |n| (n as usize).min(lessons_total));
    let quizzes: Vec<QuizProgress> = course
        .quizzes
        .iter()
        .map(|q| {
            let mut p = facts.quizzes.remove(q.id.as_str()).unwrap_or_default();
            p.quiz = q.id.clone();
            p
        })
        .collect();
    let best = quizzes
        .iter()
        .filter_map(|q| q.best_scaled_score)
        .fold(None, |acc: Option<f64>, s| Some(acc.map_or(s, |a| a.max(s))));
    let is_completed = completed.len() >= lessons_required;
    let all_passed = course.completion.quizzes_to_pass.iter().all(|q| quizzes.iter().any(|p| &p.quiz == q && p.passed));
    let percent = if lessons_total == 0 {
        100.0
    } else {
        (completed.len() as f64 * 1000.0 / lessons_total as f64).round() / 10.0
    };
    CourseProgress {
        course: course.id.clone(),
        title: course.title.clone(),
        lessons_total,
        lessons_required,
        lessons_completed: completed.len(),
        completed_lessons: course
            .lessons
            .iter()
            .filter(|l| completed.contains(l.id.as_str()))
            .map(|l| l.id.clone())
            .collect(),
        percent_complete: percent,
        best_scaled_score: best,
        quizzes,
        total_duration_seconds: facts.duration,
        last_activity: facts.last,
        completed: is_completed,
        passed: is_completed && all_passed,
    }
}

/// Seconds in an ISO 8601 duration such as `PT1H30M`, `P1DT2.5S` (years and
/// months are taken as 365 and 30 days). `None` when it is not one.
pub fn parse_duration(s: &str) -> Option<f64> {
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = 0.0;
    let mut any = false;
    let mut eat = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for ch in part.chars() {
            if ch.is_ascii_digit() || ch == '.' {
                num.push(ch);
            } else {
                let mult = units.iter().find(|(u, _)| *u == ch)?.1;
                total += num.parse::<f64>().ok()? * mult;
                num.clear();
                any = true;
            }
        }
        num.is_empty().then_some(())
    };
    eat(date, &[('Y', 31_536_000.0), ('M', 2_592_000.0), ('W', 604_800.0), ('D', 86_400.0)])?;
    if let Some(t) = time {
        if t.is_empty() {
            return None;
        }
        eat(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    any.then_some(total)
}

/// The pack must let every course's rules be evaluated: each course document
/// reads, and each quiz its rules name has a mastery score.
pub fn self_test() -> SelfTest {
    let run = || -> Result<Vec<String>, String> {
        let index = content::<IndexDoc>("index")?.ok_or("content pack has no index")?;
        for c in &index.courses {
            let course = content::<CourseDoc>(&course_key(&c.id))?
                .ok_or_else(|| format!("course {:?} has no document", c.id))?;
            for q in &course.completion.quizzes_to_pass {
                content::<QuizDoc>(&quiz_key(q))?
                    .ok_or_else(|| format!("course {:?} requires quiz {q:?}, which has no document", c.id))?;
            }
            // Exercise the rules on an empty history: nothing is complete.
            let p = course_progress(&course, &BTreeMap::new(), &[]);
            if p.completed && p.lessons_required > 0 {
                return Err(format!("course {:?} counts as completed with no statements", c.id));
            }
        }
        if parse_duration("PT1M30S") != Some(90.0) {
            return Err("duration parser".into());
        }
        Ok(vec![format!("rules of {} courses evaluate", index.courses.len())])
    };
    match run() {
        Ok(checks) => SelfTest { ok: true, checks, error: None },
        Err(e) => SelfTest { ok: false, checks: vec![], error: Some(e) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lms_content::{Choice, CompletionRules, Course, Lesson, Question, Quiz, flatten};
    use serde_json::json;

    fn course() -> CourseDoc {
        let lesson = |id: &str| Lesson { id: id.into(), title: id.into(), minutes: 1, body: "b".repeat(300) };
        let c = Course {
            id: "c".into(),
            title: "C".into(),
            language: "en".into(),
            description: "".into(),
            completion: CompletionRules { lessons_required: Some(2), quizzes_to_pass: vec!["qz".into()] },
            lessons: vec![lesson("l1"), lesson("l2"), lesson("l3")],
            quizzes: vec![Quiz {
                id: "qz".into(),
                title: "Q".into(),
                mastery_score: 0.8,
                questions: vec![Question {
                    id: "q1".into(),
                    prompt: "".into(),
                    choices: vec![
                        Choice { id: "a".into(), text: "".into() },
                        Choice { id: "b".into(), text: "".into() },
                    ],
                    answer: "a".into(),
                    explanation: "".into(),
                }],
            }],
        };
        serde_json::from_value(flatten("https://x", &[c]).docs["course/c"].clone()).unwrap()
    }

    fn st(verb: &str, object: &str, result: Value, ts: &str) -> Value {
        json!({"verb": {"id": verb}, "object": {"id": object}, "result": result, "timestamp": ts})
    }

    /// The host keeps the facts as JSON and hands them back with the newer
    /// statements: folding in parts that way must give what folding the
    /// whole history at once gives.
    #[test]
    fn folding_in_parts_through_kept_facts_equals_folding_all() {
        let c = course();
        let mastery = BTreeMap::from([("qz".to_string(), 0.8)]);
        let s = vec![
            st(VERB_COMPLETED, "https://x/courses/c/lessons/l1", json!({"duration": "PT5M"}), "2026-01-01T10:00:00Z"),
            st(VERB_FAILED, "https://x/quizzes/qz", json!({"score": {"scaled": 0.5}}), "2026-01-01T11:00:00Z"),
            st(VERB_FAILED, "https://x/quizzes/qz", json!({"score": {"scaled": 0.6}}), "2026-01-01T12:00:00Z"),
            st(VERB_COMPLETED, "https://x/courses/c/lessons/l2", json!({}), "2026-01-02T10:00:00Z"),
            st(VERB_PASSED, "https://x/quizzes/qz", json!({"score": {"scaled": 0.9}}), "2026-01-03T00:00:00Z"),
        ];
        let whole = course_progress(&c, &mastery, &s);
        for cut in 0..=s.len() {
            let mut facts = CourseFacts::default();
            fold(&c, &mastery, &mut facts, &s[..cut]);
            let kept = serde_json::to_string(&facts).unwrap();
            let mut facts: CourseFacts = serde_json::from_str(&kept).unwrap();
            fold(&c, &mastery, &mut facts, &s[cut..]);
            assert_eq!(
                serde_json::to_value(finish(&c, facts)).unwrap(),
                serde_json::to_value(&whole).unwrap(),
                "cut at {cut}"
            );
        }
        assert_eq!((whole.quizzes[0].attempts, whole.quizzes[0].failures, whole.passed), (3, 2, true));
    }

    /// An imported cmi5 AU listed as a lesson is done when its moveOn is met.
    #[test]
    fn a_launched_unit_is_done_by_its_move_on() {
        let mut c = course();
        c.completion.lessons_required = None;
        c.completion.quizzes_to_pass.clear();
        c.lessons.truncate(2);
        for (l, rule) in c.lessons.iter_mut().zip(["CompletedAndPassed", "Passed"]) {
            l.launch = Some(lms_content::Launch { unit: 0, move_on: rule.into(), waivable: true });
        }
        let (l1, l2) = ("https://x/courses/c/lessons/l1", "https://x/courses/c/lessons/l2");
        let m = BTreeMap::new();
        let done = |s: &[Value]| course_progress(&c, &m, s).completed_lessons;
        let completed = st(VERB_COMPLETED, l1, json!({"completion": true}), "2026-01-01T10:00:00Z");
        assert!(done(std::slice::from_ref(&completed)).is_empty(), "completed alone does not meet CompletedAndPassed");
        let passed = st(VERB_PASSED, l1, json!({"success": true}), "2026-01-01T10:01:00Z");
        assert_eq!(done(&[completed.clone(), passed.clone()]), ["l1"]);
        let p2 = st(VERB_WAIVED, l2, json!({"success": true, "completion": true}), "2026-01-01T10:02:00Z");
        let all = course_progress(&c, &m, &[completed, passed, p2]);
        assert_eq!((all.completed_lessons.len(), all.completed, all.percent_complete), (2, true, 100.0));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT1H30M"), Some(5400.0));
        assert_eq!(parse_duration("P1DT2.5S"), Some(86402.5));
        assert_eq!(parse_duration("PT"), None);
        assert_eq!(parse_duration("P"), None);
        assert_eq!(parse_duration("1H"), None);
        assert_eq!(parse_duration("PT5X"), None);
    }

    #[test]
    fn completion_and_pass_follow_the_rules() {
        let c = course();
        let mastery = BTreeMap::from([("qz".to_string(), 0.8)]);
        let p = course_progress(&c, &mastery, &[]);
        assert_eq!((p.lessons_completed, p.completed, p.passed), (0, false, false));

        let mut s = vec![
            st(VERB_COMPLETED, "https://x/courses/c/lessons/l1", json!({"duration": "PT5M"}), "2026-01-01T10:00:00Z"),
            st(VERB_COMPLETED, "https://x/courses/c/lessons/l1", json!({}), "2026-01-01T10:01:00Z"),
            st(VERB_COMPLETED, "https://x/courses/c/lessons/l2", json!({}), "2026-01-02T10:00:00Z"),
            st(
                VERB_FAILED,
                "https://x/quizzes/qz",
                json!({"score": {"scaled": 0.5}, "duration": "PT1M"}),
                "2026-01-01T09:00:00Z",
            ),
            st(VERB_COMPLETED, "https://elsewhere/lesson", json!({}), "2027-01-01T00:00:00Z"),
        ];
        let p = course_progress(&c, &mastery, &s);
        assert_eq!(p.lessons_completed, 2);
        assert_eq!(p.completed_lessons, vec!["l1", "l2"]);
        assert!(p.completed);
        assert!(!p.passed, "quiz not passed yet");
        assert_eq!(p.percent_complete, 66.7);
        assert_eq!(p.best_scaled_score, Some(0.5));
        assert_eq!(p.total_duration_seconds, 360.0);
        assert_eq!(p.last_activity.as_deref(), Some("2026-01-02T10:00:00Z"));

        s.push(st(VERB_PASSED, "https://x/quizzes/qz", json!({"score": {"scaled": 0.9}}), "2026-01-03T00:00:00Z"));
        let p = course_progress(&c, &mastery, &s);
        assert!(p.passed);
        assert_eq!(p.best_scaled_score, Some(0.9));
        assert_eq!((p.quizzes[0].attempts, p.quizzes[0].failures), (2, 1));
    }
}
