//! The pages as the host asks for them, over a small content pack.

use super::*;
use lms_content::{Choice, CompletionRules, Course, Lesson, Question, Quiz};
use serde_json::{Value, json};

fn pack() {
    let lesson = |id: &str, title: &str, body: &str| Lesson {
        id: id.into(),
        title: title.into(),
        minutes: 5,
        body: body.into(),
    };
    let course = Course {
        id: "maths".into(),
        title: "Maths <b>".into(),
        language: "zh-CN".into(),
        description: "Numbers".into(),
        completion: CompletionRules { lessons_required: None, quizzes_to_pass: vec!["maths-check".into()] },
        lessons: vec![
            lesson("one", "One", "# Start\n\nFirst <script>x()</script> lesson."),
            lesson("two", "Two", "Second lesson."),
        ],
        quizzes: vec![Quiz {
            id: "maths-check".into(),
            title: "Check".into(),
            mastery_score: 0.5,
            questions: vec![Question {
                id: "q1".into(),
                prompt: "1 + 1?".into(),
                choices: vec![Choice { id: "a".into(), text: "2".into() }, Choice { id: "b".into(), text: "3".into() }],
                answer: "a".into(),
                explanation: "One and one make two.".into(),
            }],
        }],
    };
    lms_sdk::testing::set_content(&lms_content::flatten("https://lms.example/x", &[course]).docs);
}

fn request(op: &str, lang: &str, body: Value) -> Request {
    let mut r = lms_sdk::testing::request(op);
    r.ctx.language = Some(lang.into());
    r.ctx.csrf = Some("tok<en>".into());
    r.body = Some(body);
    r
}

fn person() -> Value {
    json!({"id": "mei", "name": "王美 <script>", "role": "learner"})
}

fn progress(done: &[&str], attempts: usize, passed: bool) -> Value {
    json!({
        "course": "maths", "lessons_total": 2, "lessons_completed": done.len(), "completed_lessons": done,
        "percent_complete": done.len() as f64 * 50.0,
        "quizzes": [{"quiz": "maths-check", "attempts": attempts, "best_scaled_score": if attempts > 0 { Some(if passed { 1.0 } else { 0.0 }) } else { None }, "passed": passed}],
        "last_activity": if done.is_empty() { Value::Null } else { json!("2026-12-03T06:40:00.000Z") },
        "passed": passed,
    })
}

fn page_of(r: &Request) -> String {
    let resp = handle(r);
    assert_eq!(resp.status, 200, "{}", resp.body.get());
    resp.html.expect("a page")
}

#[test]
fn the_sign_in_page_in_both_languages() {
    let mut r = request("login_page", "zh-CN", Value::Null);
    let zh = page_of(&r);
    assert!(zh.contains(r#"<html lang="zh-CN">"#) && zh.contains("登录") && zh.contains(r#"name="username""#));
    // The token is escaped, never markup; signed out, there is no navigation.
    assert!(zh.contains("tok&#60;en&#62;") || zh.contains("tok&lt;en&gt;"), "{zh}");
    assert!(!zh.contains(r#"action="/logout""#) && zh.contains(r#"action="/language""#));
    assert!(zh.contains(frame::asset("app.css")) && frame::asset("app.css").starts_with("/static/app."));
    r.ctx.language = Some("en".into());
    let en = page_of(&r);
    assert!(en.contains(r#"<html lang="en">"#) && en.contains("Sign in") && !en.contains("role=\"alert\""));
    r.ctx.language = Some("fr".into());
    assert!(page_of(&r).contains("登录"), "unknown languages fall back to Chinese");
    r.query.insert("error".into(), "signin".into());
    let failed = page_of(&r);
    assert!(failed.contains("role=\"alert\"") && failed.contains("aria-describedby=\"sign-in-error\""));
    r.ctx.csrf = None;
    assert_eq!(handle(&r).status, 500);
}

#[test]
fn home_continues_the_course_touched_last() {
    pack();
    let zh =
        page_of(&request("home", "zh-CN", json!({"person": person(), "progress": [progress(&["one"], 0, false)]})));
    assert!(zh.contains("欢迎，王美 &#60;script&#62;") || zh.contains("欢迎，王美 &lt;script&gt;"), "{zh}");
    assert!(zh.contains(r#"href="/courses/maths/lessons/two""#) && zh.contains("继续：Two"), "{zh}");
    assert!(zh.contains(r#"aria-current="page""#) && zh.contains(r#"action="/logout""#));
    assert!(!zh.contains("<b>"), "course titles are escaped");
    let fresh = page_of(&request("home", "en", json!({"person": person(), "progress": [progress(&[], 0, false)]})));
    assert!(fresh.contains("You have not started a course yet.") && !fresh.contains("Continue:"), "{fresh}");
    assert_eq!(handle(&request("home", "en", json!({"person": person()}))).status, 400);
    assert_eq!(handle(&request("home", "en", json!({"progress": []}))).status, 400);
}

#[test]
fn catalog_and_course_show_my_status() {
    pack();
    let cat = page_of(&request("catalog", "en", json!({"person": person()})));
    assert!(cat.contains(r#"href="/courses/maths""#) && cat.contains("2 lessons, 1 quizzes"), "{cat}");
    let mut r = request("course", "en", json!({"person": person(), "progress": progress(&["one"], 2, false)}));
    r.params.insert("course".into(), "maths".into());
    let c = page_of(&r);
    assert!(
        c.contains("1 of 2 lessons completed") && c.contains("Not passed yet: best score 0% after 2 attempts"),
        "{c}"
    );
    assert!(
        c.contains(r#"<a href="/courses/maths/lessons/one">One</a> · <span class="status-done">Completed</span>"#),
        "{c}"
    );
    r.params.insert("course".into(), "nope".into());
    assert_eq!(handle(&r).status, 404);
}

/// The page every reader shares, with the reader's marks filled into its
/// slots as the host does, is exactly the page rendered for that reader.
#[test]
fn the_shared_course_page_filled_with_my_marks_is_my_page() {
    pack();
    for (lang, p) in [("en", progress(&["one"], 2, false)), ("zh-CN", progress(&["one", "two"], 1, true))] {
        let mut mine = request("course", lang, json!({"person": person(), "progress": p}));
        mine.params.insert("course".into(), "maths".into());
        let mut shared = request("course", lang, json!({"person": person(), "slots": "S1ot"}));
        shared.params = mine.params.clone();
        let mut marks = request("course_marks", lang, json!({"progress": p}));
        marks.params = mine.params.clone();
        let marks = handle(&marks);
        assert_eq!(marks.status, 200, "{}", marks.body.get());
        let marks: Vec<String> =
            serde_json::from_value(serde_json::from_str::<Value>(marks.body.get()).unwrap()["marks"].clone()).unwrap();
        assert_eq!(marks.len(), 1 + 2 + 1, "the summary, two lessons, one quiz");
        let mut filled = page_of(&shared);
        assert!(!filled.contains("Completed") && !filled.contains("已完成"), "no reader's status in the shared page");
        for (n, mark) in marks.iter().enumerate() {
            let slot = format!("S1ot{n};");
            assert_eq!(filled.matches(&slot).count(), 1, "{slot} once in {filled}");
            filled = filled.replace(&slot, mark);
        }
        assert_eq!(filled, page_of(&mine));
    }
    let mut bad = request("course", "en", json!({"person": person(), "slots": "a\"><script>"}));
    bad.params.insert("course".into(), "maths".into());
    assert_eq!(handle(&bad).status, 400, "a slot prefix is letters and digits only");
}

#[test]
fn a_lesson_is_markdown_without_raw_html_and_is_completed_once() {
    pack();
    let mut r = request("lesson", "zh-CN", json!({"person": person()}));
    r.params.insert("course".into(), "maths".into());
    r.params.insert("lesson".into(), "one".into());
    r.ctx.actor = Some(json!({"objectType": "Agent", "account": {"homePage": "https://h", "name": "mei"}}));
    let resp = handle(&r);
    let page = resp.html.clone().unwrap();
    assert!(page.contains("<h2>Start</h2>") && page.contains("&lt;script&gt;") && !page.contains("<script"), "{page}");
    assert!(page.contains("下一课：Two") && !page.contains("参加测验"), "{page}");
    assert!(resp.once && resp.statements.len() == 1);
    let s = &resp.statements[0];
    assert_eq!(s["verb"]["id"], "http://adlnet.gov/expapi/verbs/completed");
    assert_eq!(s["object"]["id"], "https://lms.example/x/courses/maths/lessons/one");
    assert_eq!(s["actor"]["account"]["name"], "mei");
    // The lesson's name is keyed by its course's language, never "und".
    assert_eq!(s["object"]["definition"]["name"], json!({"zh-CN": "One"}));
    // The last lesson leads on to the quiz.
    r.params.insert("lesson".into(), "two".into());
    assert!(page_of(&r).contains(r#"href="/quizzes/maths-check""#));
    r.params.insert("lesson".into(), "three".into());
    assert_eq!(handle(&r).status, 404);
}

fn public_quiz() -> Value {
    json!({"id": "maths-check", "course": "maths", "title": "Check", "mastery_score": 0.5,
           "questions": [{"id": "q1", "prompt": "1 + 1?", "choices": [{"id": "a", "text": "2"}, {"id": "b", "text": "3"}]}]})
}

#[test]
fn the_quiz_form_and_its_result() {
    pack();
    let mut r = request("quiz", "en", json!({"person": person(), "quiz": public_quiz()}));
    r.params.insert("quiz".into(), "maths-check".into());
    let form = page_of(&r);
    assert!(form.contains(r#"<form method="post" action="/quizzes/maths-check""#), "{form}");
    assert!(form.contains(r#"<legend>Question 1: 1 + 1?</legend>"#), "{form}");
    assert!(
        form.contains(
            r#"<label for="q1-a"><input type="radio" id="q1-a" name="answer-q1" value="a" required> 2</label>"#
        ),
        "{form}"
    );
    assert!(form.contains("You pass with 50% or more."));
    let graded = json!({"score": {"raw": 0, "max": 1, "scaled": 0.0}, "passed": false,
        "feedback": [{"question": "q1", "your_answer": "b", "correct": false, "explanation": null}]});
    let mut r = request("quiz_result", "zh-CN", json!({"person": person(), "quiz": public_quiz(), "result": graded}));
    r.params.insert("quiz".into(), "maths-check".into());
    let res = page_of(&r);
    assert!(res.contains("你答对了 0/1 题（0%）") && res.contains("你的答案：3") && res.contains("不正确"), "{res}");
    assert!(res.contains("这次没有通过") && !res.contains("One and one"), "{res}");
    r.body.as_mut().unwrap()["result"] = json!({"score": {"raw": 1, "max": 1, "scaled": 1.0}, "passed": true,
        "feedback": [{"question": "q1", "your_answer": "a", "correct": true, "explanation": "One and one make two."}]});
    let res = page_of(&r);
    assert!(res.contains("你通过了") && res.contains("One and one make two."), "{res}");
}

#[test]
fn my_progress_is_a_table_of_every_course() {
    pack();
    let p = page_of(&request(
        "progress",
        "en",
        json!({"person": person(), "progress": [progress(&["one", "two"], 1, true)]}),
    ));
    assert!(
        p.contains(r#"<th scope="col">Quizzes passed</th>"#)
            && p.contains("<td>2/2</td><td>100%</td><td>1/1</td><td>2026-12-03 06:40 UTC</td>"),
        "{p}"
    );
    let none = page_of(&request("progress", "zh-CN", json!({"person": person(), "progress": []})));
    assert!(none.contains("<td>0/2</td><td>0%</td><td>0/1</td><td>从未</td>"), "{none}");
}

#[test]
fn translations_are_complete_and_assets_built_in() {
    let t = self_test();
    assert!(t.ok, "{:?}", t.error);
    assert_eq!(Messages::new(Some("en")).get("no-such-message"), "no-such-message");
    assert!(handle(&request("nope", "en", Value::Null)).status == 400);
}
