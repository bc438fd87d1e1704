//! The quiz module: serves a quiz's questions (never its answer key), grades an
//! attempt against the key in the content pack, and returns the xAPI
//! statements of the attempt (one `answered` per question, then `passed` or
//! `failed` for the quiz) for the host to store before it answers.
//!
//! Ops: `get_quiz {quiz}`, `attempt {quiz}` with body
//! `{"learner": "...", "answers": {"q1": "b", ...}, "registration"?: UUID, "duration"?: "PT2M"}`
//! and `ctx.actor` set by the host.

use lms_content::{QuizDoc, quiz_key};
use lms_sdk::{Request, Response, SelfTest, content, error, json, statement_id};
use serde_json::{Value, json};

lms_sdk::export_module!(handle: handle, self_test: self_test);

pub const VERB_ANSWERED: &str = "http://adlnet.gov/expapi/verbs/answered";
pub const VERB_PASSED: &str = "http://adlnet.gov/expapi/verbs/passed";
pub const VERB_FAILED: &str = "http://adlnet.gov/expapi/verbs/failed";
const ACTIVITY_ASSESSMENT: &str = "http://adlnet.gov/expapi/activities/assessment";
const ACTIVITY_INTERACTION: &str = "http://adlnet.gov/expapi/activities/cmi.interaction";

pub fn handle(req: &Request) -> Response {
    let Some(quiz_id) = req.params.get("quiz") else {
        return error(400, "missing_param", "missing path parameter \"quiz\"");
    };
    let quiz = match content::<QuizDoc>(&quiz_key(quiz_id)) {
        Ok(Some(q)) => q,
        Ok(None) => return error(404, "not_found", format!("no quiz {quiz_id:?}")),
        Err(e) => return error(500, "content_invalid", e),
    };
    match req.op.as_str() {
        "get_quiz" => get_quiz(&quiz),
        "attempt" => attempt(req, &quiz),
        other => error(400, "unknown_op", format!("quiz has no op {other:?}")),
    }
}

fn get_quiz(quiz: &QuizDoc) -> Response {
    let questions: Vec<Value> =
        quiz.questions.iter().map(|q| json!({"id": q.id, "prompt": q.prompt, "choices": q.choices})).collect();
    json(
        200,
        &json!({
            "id": quiz.id, "course": quiz.course, "title": quiz.title,
            "mastery_score": quiz.mastery_score, "questions": questions,
        }),
    )
}

/// A graded attempt, before it becomes statements.
#[derive(Debug, PartialEq)]
pub struct Grade {
    pub correct: u32,
    pub total: u32,
    pub per_question: Vec<(String, Option<String>, bool)>,
}

/// Grades `answers` (question id -> choice id) against the key. Unanswered
/// questions count as wrong; unknown questions or choices are the client's
/// mistake and are named.
pub fn grade(quiz: &QuizDoc, answers: &serde_json::Map<String, Value>) -> Result<Grade, String> {
    for (qid, v) in answers {
        let Some(q) = quiz.questions.iter().find(|q| &q.id == qid) else {
            return Err(format!("answers.{qid}: quiz {:?} has no such question", quiz.id));
        };
        let Some(choice) = v.as_str() else {
            return Err(format!("answers.{qid}: must be a string (a choice id)"));
        };
        if !q.choices.iter().any(|c| c.id == choice) {
            return Err(format!("answers.{qid}: {choice:?} is not one of the question's choices"));
        }
    }
    let mut g = Grade { correct: 0, total: quiz.questions.len() as u32, per_question: vec![] };
    for q in &quiz.questions {
        let given = answers.get(&q.id).and_then(Value::as_str).map(str::to_string);
        let ok = given.as_deref() == Some(q.answer.as_str());
        g.correct += ok as u32;
        g.per_question.push((q.id.clone(), given, ok));
    }
    Ok(g)
}

fn attempt(req: &Request, quiz: &QuizDoc) -> Response {
    let Some(actor) = req.ctx.actor.clone() else {
        return error(400, "missing_learner", "the attempt names no learner");
    };
    let Some(body) = req.body.as_ref().and_then(Value::as_object) else {
        return error(400, "invalid_body", "body must be a JSON object");
    };
    let Some(answers) = body.get("answers").and_then(Value::as_object) else {
        return error(400, "invalid_field", "answers: must be an object of question id -> choice id");
    };
    let registration = match body.get("registration") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return error(400, "invalid_field", "registration: must be a UUID string"),
    };
    let duration = match body.get("duration") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return error(400, "invalid_field", "duration: must be an ISO 8601 duration string"),
    };
    let g = match grade(quiz, answers) {
        Ok(g) => g,
        Err(e) => return error(400, "invalid_field", e),
    };
    let scaled = if g.total == 0 { 0.0 } else { g.correct as f64 / g.total as f64 };
    let passed = scaled >= quiz.mastery_score;

    let mut context = json!({
        "contextActivities": {
            "parent": [{"id": quiz.activity_id, "objectType": "Activity"}],
            "grouping": [{"id": quiz.course_activity_id, "objectType": "Activity"}],
        },
        "platform": "lms-edge",
    });
    if let Some(r) = &registration {
        context["registration"] = json!(r);
    }
    let mut statements = Vec::new();
    let mut feedback = Vec::new();
    for (i, (qid, given, ok)) in g.per_question.iter().enumerate() {
        let q = quiz.questions.iter().find(|q| &q.id == qid).expect("graded question exists");
        let mut result = json!({"success": ok});
        if let Some(given) = given {
            result["response"] = json!(given);
        }
        statements.push(json!({
            "id": statement_id(&req.ctx, i as u16),
            "actor": actor,
            "verb": {"id": VERB_ANSWERED, "display": {"en-US": "answered"}},
            "object": {
                "objectType": "Activity",
                "id": format!("{}/questions/{qid}", quiz.activity_id),
                "definition": {
                    "type": ACTIVITY_INTERACTION,
                    "name": {quiz.language.as_str(): q.prompt},
                    "interactionType": "choice",
                },
            },
            "result": result,
            "context": context,
            "timestamp": req.ctx.now,
        }));
        feedback.push(json!({
            "question": qid,
            "your_answer": given,
            "correct": ok,
            // The explanation gives the answer away, so it is shown only to
            // learners who already have it right.
            "explanation": if *ok { Some(q.explanation.as_str()) } else { None },
            "hint": if *ok { None } else { Some("Not quite. Review the course's lessons and try again.") },
        }));
    }
    let mut result = json!({
        "score": {"scaled": scaled, "raw": g.correct, "min": 0, "max": g.total},
        "success": passed,
        "completion": true,
    });
    if let Some(d) = &duration {
        result["duration"] = json!(d);
    }
    let mut quiz_context = json!({
        "contextActivities": {"grouping": [{"id": quiz.course_activity_id, "objectType": "Activity"}]},
        "platform": "lms-edge",
    });
    if let Some(r) = &registration {
        quiz_context["registration"] = json!(r);
    }
    let (verb, word) = if passed { (VERB_PASSED, "passed") } else { (VERB_FAILED, "failed") };
    let quiz_statement_id = statement_id(&req.ctx, g.per_question.len() as u16);
    statements.push(json!({
        "id": quiz_statement_id,
        "actor": actor,
        "verb": {"id": verb, "display": {"en-US": word}},
        "object": {
            "objectType": "Activity",
            "id": quiz.activity_id,
            "definition": {"type": ACTIVITY_ASSESSMENT, "name": {quiz.language.as_str(): quiz.title}},
        },
        "result": result,
        "context": quiz_context,
        "timestamp": req.ctx.now,
    }));
    let ids: Vec<Value> = statements.iter().map(|s| s["id"].clone()).collect();
    let mut resp = json(
        200,
        &json!({
            "quiz": quiz.id,
            "score": {"raw": g.correct, "max": g.total, "scaled": scaled},
            "mastery_score": quiz.mastery_score,
            "passed": passed,
            "feedback": feedback,
            "statement_ids": ids,
        }),
    );
    resp.statements = statements;
    resp
}

/// Every quiz in the pack is readable and its answer key is consistent (each
/// answer is one of its question's choices): a broken key would grade every
/// learner wrongly, so the node must not go ready with it.
pub fn self_test() -> SelfTest {
    let run = || -> Result<Vec<String>, String> {
        let index = content::<lms_content::IndexDoc>("index")?.ok_or("content pack has no index")?;
        let mut quizzes = 0;
        for c in &index.courses {
            let course = content::<lms_content::CourseDoc>(&lms_content::course_key(&c.id))?
                .ok_or_else(|| format!("course {:?} has no document", c.id))?;
            for q in &course.quizzes {
                let doc =
                    content::<QuizDoc>(&quiz_key(&q.id))?.ok_or_else(|| format!("quiz {:?} has no document", q.id))?;
                for question in &doc.questions {
                    if !question.choices.iter().any(|ch| ch.id == question.answer) {
                        return Err(format!(
                            "quiz {:?} question {:?}: answer {:?} is not one of its choices",
                            q.id, question.id, question.answer
                        ));
                    }
                }
                quizzes += 1;
            }
        }
        Ok(vec![format!("{quizzes} quiz answer keys consistent")])
    };
    match run() {
        Ok(checks) => SelfTest { ok: true, checks, error: None },
        Err(e) => SelfTest { ok: false, checks: vec![], error: Some(e) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lms_content::{Choice, Course, Question, Quiz};
    use lms_sdk::Context;

    fn fixture() {
        let q = |id: &str, answer: &str| Question {
            id: id.into(),
            prompt: format!("prompt {id}"),
            choices: vec![Choice { id: "a".into(), text: "A".into() }, Choice { id: "b".into(), text: "B".into() }],
            answer: answer.into(),
            explanation: format!("secret-explanation-{id}"),
        };
        let course = Course {
            id: "c".into(),
            title: "C".into(),
            language: "en".into(),
            description: "d".into(),
            completion: Default::default(),
            lessons: vec![],
            quizzes: vec![Quiz {
                id: "qz".into(),
                title: "Quiz".into(),
                mastery_score: 0.5,
                questions: vec![q("q1", "a"), q("q2", "b")],
            }],
        };
        lms_sdk::testing::set_content(&lms_content::flatten("https://x", &[course]).docs);
    }

    fn req(op: &str, body: Option<Value>) -> Request {
        Request {
            op: op.into(),
            params: [("quiz".to_string(), "qz".to_string())].into(),
            query: Default::default(),
            body,
            if_none_match: None,
            statements: vec![],
            facts: None,
            ctx: Context {
                cache_ttl: 0,
                actor: Some(json!({"objectType": "Agent", "account": {"homePage": "https://x", "name": "ann"}})),
                now: "2026-01-01T00:00:00Z".into(),
                request_id: "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b".into(),
                language: None,
                csrf: None,
            },
        }
    }

    fn body(r: &Response) -> Value {
        serde_json::from_str(r.body.get()).unwrap()
    }

    #[test]
    fn questions_are_served_without_the_key() {
        fixture();
        let r = handle(&req("get_quiz", None));
        assert_eq!(r.status, 200);
        let text = r.body.get();
        assert!(!text.contains("answer"), "{text}");
        assert!(!text.contains("secret-explanation"), "{text}");
    }

    #[test]
    fn attempt_is_graded_and_emits_statements() {
        fixture();
        let r = handle(&req("attempt", Some(json!({"answers": {"q1": "a", "q2": "a"}}))));
        assert_eq!(r.status, 200, "{}", r.body.get());
        let b = body(&r);
        assert_eq!(b["score"]["raw"], 1);
        assert_eq!(b["passed"], true);
        assert_eq!(r.statements.len(), 3);
        assert_eq!(r.statements[2]["verb"]["id"], VERB_PASSED);
        assert_eq!(r.statements[2]["object"]["definition"]["name"], json!({"en": "Quiz"}));
        assert_eq!(r.statements[0]["object"]["definition"]["name"], json!({"en": "prompt q1"}));
        assert_eq!(r.statements[2]["result"]["score"]["scaled"], 0.5);
        assert_eq!(r.statements[1]["result"]["success"], false);
        // The wrong answer's explanation (which names the key) is withheld.
        assert!(!r.body.get().contains("secret-explanation-q2"));
        let ids: Vec<_> = r.statements.iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids[0] != ids[1] && ids[1] != ids[2]);
    }

    #[test]
    fn failing_attempt_and_unanswered_questions() {
        fixture();
        let r = handle(&req("attempt", Some(json!({"answers": {}}))));
        assert_eq!(body(&r)["passed"], false);
        assert_eq!(r.statements.last().unwrap()["verb"]["id"], VERB_FAILED);
    }

    #[test]
    fn bad_attempts_are_named_400s() {
        fixture();
        for (b, needle) in [
            (json!({"answers": {"q9": "a"}}), "answers.q9"),
            (json!({"answers": {"q1": "z"}}), "answers.q1"),
            (json!({"answers": {"q1": 1}}), "answers.q1"),
            (json!({"answers": []}), "answers"),
            (json!([]), "body"),
        ] {
            let r = handle(&req("attempt", Some(b)));
            assert_eq!(r.status, 400);
            assert!(r.body.get().contains(needle), "{}", r.body.get());
        }
    }

    #[test]
    fn self_test_catches_a_broken_key() {
        fixture();
        assert!(self_test().ok);
        let mut docs = lms_content::flatten("https://x", &[]).docs;
        docs.insert("index".into(), json!({"activity_base": "https://x", "courses": [{"id": "c", "title": "", "description": "", "lessons": 0, "quizzes": 1}]}));
        docs.insert("course/c".into(), json!({"id": "c", "title": "", "language": "en", "description": "", "activity_id": "https://x/courses/c", "completion": {}, "lessons": [], "quizzes": [{"id": "qz", "title": "", "activity_id": ""}]}));
        docs.insert("quiz/qz".into(), json!({"id": "qz", "course": "c", "title": "", "language": "en", "activity_id": "https://x/quizzes/qz", "course_activity_id": "https://x/courses/c", "mastery_score": 0.5,
            "questions": [{"id": "q1", "prompt": "", "choices": [{"id": "a", "text": ""}], "answer": "z", "explanation": ""}]}));
        lms_sdk::testing::set_content(&docs);
        let st = self_test();
        assert!(!st.ok);
        assert!(st.error.unwrap().contains("answer \"z\""));
    }
}
