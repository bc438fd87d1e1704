//! The learner API (/v1) served by the real LMS modules.

mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn catalog_course_and_lesson_with_etag_and_cache_control() {
    let n = TestNode::start(None, |c| c.cache_ttl = std::time::Duration::from_secs(120)).await.ready().await;
    let courses = n.get("/v1/courses").await;
    assert_eq!(courses.status, 200);
    let list = courses.json()["courses"].as_array().unwrap().clone();
    assert!(list.len() >= 3);
    let lessons: u64 = list.iter().map(|c| c["lessons"].as_u64().unwrap()).sum();
    let quizzes: u64 = list.iter().map(|c| c["quizzes"].as_u64().unwrap()).sum();
    assert!(lessons >= 20 && quizzes >= 3, "{lessons} lessons, {quizzes} quizzes");

    let course = n.get("/v1/courses/science").await.json();
    assert_eq!(course["lessons"][0]["id"], "scientific-method");
    assert_eq!(course["quizzes"][0]["id"], "science-check");

    let lesson = n.get("/v1/courses/science/lessons/photosynthesis").await;
    assert_eq!(lesson.status, 200);
    assert!(lesson.json()["body"].as_str().unwrap().contains("chloroplasts"));
    assert_eq!(lesson.header("cache-control"), Some("public, max-age=120"));
    let etag = lesson.header("etag").unwrap().to_string();
    let auth = lms_node::client::basic_auth(USER, PASSWORD);
    let again = n
        .client
        .get(
            &n.url("/v1/courses/science/lessons/photosynthesis"),
            &[("authorization", &auth), ("if-none-match", &etag)],
        )
        .await
        .unwrap();
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));

    assert_eq!(n.get("/v1/courses/science/lessons/nope").await.status, 404);
    assert_eq!(n.get("/v1/courses/nope").await.status, 404);
    let anon = n.client.get(&n.url("/v1/courses"), &[]).await.unwrap();
    assert_eq!(anon.status, 401);
    n.stop().await;
}

#[tokio::test]
async fn cache_disabled_means_no_store() {
    let n = TestNode::start(None, |c| c.cache_enabled = false).await.ready().await;
    let lesson = n.get("/v1/courses/english/lessons/greetings").await;
    assert_eq!(lesson.header("cache-control"), Some("no-store"));
    n.stop().await;
}

#[tokio::test]
async fn quiz_attempt_records_statements_and_progress_follows() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    let quiz = n.get("/v1/quizzes/english-check").await;
    assert_eq!(quiz.status, 200);
    let text = quiz.text();
    assert!(!text.contains("answer") && !text.contains("explanation"), "answer key leaked: {text}");

    let before = n.get("/v1/learners/lin/progress?course=english").await.json();
    assert_eq!(before["courses"][0]["lessons_completed"], 0);
    assert_eq!(before["courses"][0]["passed"], false);

    // Lessons completed by xAPI, the way a learning client reports them.
    let base = "https://lms.example.org/xapi/activities/courses/english/lessons";
    let lessons =
        ["greetings", "alphabet-and-sounds", "simple-sentences", "present-simple", "questions", "asking-for-help"];
    let batch: Vec<_> = lessons
        .iter()
        .map(|l| {
            let mut s = statement(&uuid(), "lin", "http://adlnet.gov/expapi/verbs/completed", &format!("{base}/{l}"));
            s["result"] = json!({"duration": "PT10M"});
            s
        })
        .collect();
    assert_eq!(n.send("POST", "/xapi/statements", serde_json::Value::from(batch).to_string()).await.status, 200);

    let wrong = n
        .send(
            "POST",
            "/v1/quizzes/english-check/attempts",
            json!({"learner": "lin", "answers": {"q1": "b"}}).to_string(),
        )
        .await;
    assert_eq!(wrong.status, 200, "{}", wrong.text());
    assert_eq!(wrong.json()["passed"], false);
    let right = n
        .send(
            "POST",
            "/v1/quizzes/english-check/attempts",
            json!({"learner": "lin", "answers": {"q1": "a", "q2": "b", "q3": "c", "q4": "b", "q5": "a"}, "duration": "PT3M"}).to_string(),
        )
        .await;
    let r = right.json();
    assert_eq!(r["passed"], true);
    assert_eq!(r["score"]["raw"], 5);
    // Every statement the attempt reported is stored.
    for id in r["statement_ids"].as_array().unwrap() {
        let s = n.get(&format!("/xapi/statements?statementId={}", id.as_str().unwrap())).await;
        assert_eq!(s.status, 200, "statement {id} of the attempt is missing");
        assert_eq!(s.json()["actor"]["account"]["name"], "lin");
    }

    let p = n.get("/v1/learners/lin/progress?course=english").await.json();
    let c = &p["courses"][0];
    assert_eq!(c["lessons_completed"], 6);
    assert_eq!(c["percent_complete"], 100.0);
    assert_eq!(c["completed"], true);
    assert_eq!(c["passed"], true);
    assert_eq!(c["best_scaled_score"], 1.0);
    assert_eq!(c["quizzes"][0]["attempts"], 2);
    assert_eq!(c["total_duration_seconds"], 6.0 * 600.0 + 180.0);
    assert!(c["last_activity"].is_string());
    let all = n.get("/v1/learners/lin/progress").await.json();
    assert_eq!(all["courses"].as_array().unwrap().len(), 5, "every course of the pack");

    // Bad input is named.
    for (body, needle) in [
        (json!({"answers": {}}), "learner"),
        (json!({"learner": "lin", "answers": {"q9": "a"}}), "answers.q9"),
        (json!({"learner": "l i n", "answers": {}}), "learner"),
        (json!({"learner": "lin", "answers": {}, "registration": "nope"}), "registration"),
    ] {
        let r = n.send("POST", "/v1/quizzes/english-check/attempts", body.to_string()).await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains(needle), "{}", r.text());
    }
    assert_eq!(n.get("/v1/learners/lin/progress?course=nope").await.status, 404);
    assert_eq!(n.get("/v1/learners/lin/progress?color=red").await.status, 400);
    assert_eq!(
        n.send("POST", "/v1/quizzes/nope/attempts", json!({"learner": "lin", "answers": {}}).to_string()).await.status,
        404
    );
    n.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    n.get("/v1/courses/arithmetic/lessons/decimals").await;
    n.send("POST", "/xapi/statements", statement(&uuid(), "m", "https://v", "https://a").to_string()).await;
    let m = n.client.get(&n.url("/metrics"), &[]).await.unwrap();
    assert_eq!(m.status, 200);
    let text = m.text();
    for needle in [
        "lms_http_requests_total{method=\"GET\",route=\"/v1/courses/{course}/lessons/{lesson}\",status=\"200\"} 1",
        "lms_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/courses/{course}/lessons/{lesson}\",le=\"+Inf\"} 1",
        "lms_module_instantiation_seconds_count{module=\"catalog\"}",
        "lms_statements_stored_total 1",
        "lms_db_commit_duration_seconds_count",
        "lms_modules_ready 1",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    // promtool is the reference parser; CI installs it (Debian package prometheus).
    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(e) if std::env::var("CI").is_ok() => panic!("promtool is required in CI: {e}"),
        Err(e) => eprintln!("promtool not installed ({e}); text checks only"),
    }
    n.stop().await;
}

/// The learner's progress, with each course's `last_activity` reduced to
/// whether there is one (two nodes stamp the quiz's statements each with
/// its own clock).
async fn progress(n: &TestNode, q: &str) -> serde_json::Value {
    let mut p = n.get(&format!("/v1/learners/lin/progress{q}")).await.json();
    for c in p["courses"].as_array_mut().unwrap() {
        c["last_activity"] = json!(c["last_activity"].is_string());
    }
    p
}

/// Progress from kept facts (only the statements stored since are folded
/// in; the answer reused while nothing is new) must always equal progress
/// rebuilt from the whole history: two nodes, one with the caches off, get
/// the same statements, voids included, and answer the same after each.
#[tokio::test]
async fn progress_from_kept_facts_equals_a_full_rebuild() {
    let kept = TestNode::start(None, |_| {}).await.ready().await;
    let full = TestNode::start(None, |c| c.cache_enabled = false).await.ready().await;
    let base = "https://lms.example.org/xapi/activities/courses/english/lessons";
    let completed =
        |l: &str| statement(&uuid(), "lin", "http://adlnet.gov/expapi/verbs/completed", &format!("{base}/{l}"));
    let first = completed("greetings");
    let void = json!({
        "actor": first["actor"], "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": first["id"]},
    });
    let steps: Vec<(&str, &str, serde_json::Value)> = vec![
        ("POST", "/xapi/statements", first.clone()),
        ("POST", "/xapi/statements", json!([completed("alphabet-and-sounds"), completed("questions")])),
        ("POST", "/v1/quizzes/english-check/attempts", json!({"learner": "lin", "answers": {"q1": "b"}})),
        ("POST", "/xapi/statements", void),
        ("POST", "/xapi/statements", completed("present-simple")),
        (
            "POST",
            "/v1/quizzes/english-check/attempts",
            json!({"learner": "lin", "answers": {"q1": "a", "q2": "b", "q3": "c", "q4": "b", "q5": "a"}}),
        ),
    ];
    for (i, (method, path, body)) in steps.into_iter().enumerate() {
        for n in [&kept, &full] {
            let r = n.send(method, path, body.to_string()).await;
            assert_eq!(r.status, 200, "step {i}: {}", r.text());
        }
        // Twice on the kept node: the second answer comes from the kept mark.
        for q in ["", "?course=english", "?course=english", ""] {
            let (a, b) = (progress(&kept, q).await, progress(&full, q).await);
            assert_eq!(a, b, "step {i}, progress{q}");
        }
    }
    let c = &progress(&kept, "?course=english").await["courses"][0];
    assert_eq!(c["lessons_completed"], 3, "greetings was voided: {c}");
    assert_eq!((c["quizzes"][0]["attempts"].as_u64(), c["passed"].as_bool()), (Some(2), Some(false)));
    kept.stop().await;
    full.stop().await;
}
