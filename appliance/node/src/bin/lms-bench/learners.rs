//! What learners ask for: lessons (with the native baseline), their pages
//! signed in, their progress (with and without kept facts), quiz attempts,
//! and a class signing in at once.

use crate::harness::{compare, ms, scenario, wanted};
use crate::nodes::{Node, config_with, native_server};
use crate::{Bench, LESSON, XAPI};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The lesson document as JSON from the catalog module, and the same bytes
/// from a native handler with the same auth check and ETag.
pub async fn lessons(b: &Bench, node: &Node) {
    let (c, a, u) = (b.client.clone(), b.auth.clone(), node.url(LESSON));
    scenario(&b.args, "lesson GET (wasm)", 1.0, move |_| {
        let (c, a, u) = (c.clone(), a.clone(), u.clone());
        async move { c.get(&u, &[("authorization", &a)]).await.map(|r| r.status.as_u16()) }
    })
    .await;

    if !wanted(&b.args, "lesson GET (native, no wasm)") {
        return;
    }
    let native = native_server(b).await;
    let (c, a, u) = (b.client.clone(), b.auth.clone(), Arc::new(format!("{native}{LESSON}")));
    scenario(&b.args, "lesson GET (native, no wasm)", 1.0, move |_| {
        let (c, a, u) = (c.clone(), a.clone(), u.clone());
        async move { c.get(&u, &[("authorization", &a)]).await.map(|r| r.status.as_u16()) }
    })
    .await;
}

pub async fn quiz_attempts(b: &Bench, node: &Node) {
    let (c, a, u) = (b.client.clone(), b.auth.clone(), node.url("/v1/quizzes/arithmetic-check/attempts"));
    scenario(&b.args, "quiz attempt POST", 1.0, move |i| {
        let (c, a, u) = (c.clone(), a.clone(), u.clone());
        async move {
            let body = json!({"learner": format!("q{}", i % 1000), "answers": {"q1": "b", "q2": "c", "q3": "a", "q4": "d", "q5": "a"}}).to_string();
            c.send("POST".parse().unwrap(), &u, &[("authorization", &a), ("content-type", "application/json")], body).await.map(|r| r.status.as_u16())
        }
    })
    .await;
}

/// Learners whose progress is asked for, each with [`HISTORY`] statements.
const PROGRESS_LEARNERS: usize = 32;
const HISTORY: usize = 500;

/// Progress GET for learners with 500 statements each, on a node that keeps
/// progress facts (the default) beside one that folds every statement on
/// every request (`cache_enabled = false`, what the node did before facts).
/// The second pair adds a new statement for the learner on every 10th
/// request, so the kept facts must take in new statements as they come.
pub async fn progress(b: &Bench) {
    if !wanted(&b.args, "progress GET (500 stmts) progress GET + 1 in 10 a new statement") {
        return;
    }
    let pack = b.courses();
    let acts = activities(&pack);
    let baseline_cfg = config_with(b, "no-facts.toml", "cache_enabled = false\n");
    let facts = Node::up(b, &b.work.path().join("facts-data"), None).await;
    let baseline = Node::up(b, &b.work.path().join("baseline-data"), Some(&baseline_cfg)).await;
    for node in [&facts, &baseline] {
        for l in 0..PROGRESS_LEARNERS {
            let history = history(&acts, &format!("p{l}"), HISTORY);
            for batch in history.chunks(100) {
                b.post(&format!("{}/xapi/statements", node.base), &XAPI, Value::from(batch.to_vec()).to_string()).await;
            }
        }
    }
    let get = |node: &Node, every: u64| {
        let (c, a, base) = (b.client.clone(), b.auth.clone(), Arc::new(node.base.clone()));
        let acts = Arc::new(acts.clone());
        move |i: u64| {
            let (c, a, base, acts) = (c.clone(), a.clone(), base.clone(), acts.clone());
            async move {
                let learner = format!("p{}", i % PROGRESS_LEARNERS as u64);
                if every > 0 && i.is_multiple_of(every) {
                    let s = history_statement(&acts, &learner, (i / every) as usize % 97);
                    let url = format!("{base}/xapi/statements");
                    return c
                        .send("POST".parse().unwrap(), &url, &[("authorization", &a), XAPI[0], XAPI[1]], s.to_string())
                        .await
                        .map(|r| r.status.as_u16());
                }
                let url = format!("{base}/v1/learners/{learner}/progress");
                c.get(&url, &[("authorization", &a)]).await.map(|r| r.status.as_u16())
            }
        }
    };
    compare(
        &b.args,
        "progress GET (500 stmts)",
        vec![("kept facts", 1.0, get(&facts, 0)), ("no facts (baseline)", 1.0, get(&baseline, 0))],
    )
    .await;
    compare(
        &b.args,
        "progress GET + 1 in 10 a new statement",
        vec![("kept facts", 1.0, get(&facts, 10)), ("no facts (baseline)", 1.0, get(&baseline, 10))],
    )
    .await;
}

/// The pack's activities in the order a learner meets them: each course's
/// lessons, then its quizzes (true).
fn activities(pack: &Value) -> Vec<(String, bool)> {
    let mut acts = Vec::new();
    for (key, doc) in pack["docs"].as_object().unwrap() {
        if key.starts_with("course/") {
            for l in doc["lessons"].as_array().into_iter().flatten() {
                acts.push((l["activity_id"].as_str().unwrap().to_string(), false));
            }
            for q in doc["quizzes"].as_array().into_iter().flatten() {
                if let Some(id) = q["activity_id"].as_str() {
                    acts.push((id.to_string(), true));
                }
            }
        }
    }
    acts
}

/// The first `n` statements of a learner working through the content pack.
fn history(acts: &[(String, bool)], learner: &str, n: usize) -> Vec<Value> {
    (0..n).map(|k| history_statement(acts, learner, k)).collect()
}

/// Statement `k` of a learner's history: lessons completed with their
/// time, quizzes failed and passed with a score, in time order, the way the
/// learner app records them.
fn history_statement(acts: &[(String, bool)], learner: &str, k: usize) -> Value {
    let actor =
        json!({"objectType": "Agent", "account": {"homePage": "https://lms.example.org/learners", "name": learner}});
    let (object, quiz) = &acts[k % acts.len()];
    let timestamp = format!("2026-09-{:02}T{:02}:{:02}:00Z", 1 + k / 1440 % 28, k / 60 % 24, k % 60);
    if *quiz {
        let scaled = [0.4, 0.6, 0.9][k % 3];
        let verb = if scaled >= 0.8 { "passed" } else { "failed" };
        json!({"actor": actor, "verb": {"id": format!("http://adlnet.gov/expapi/verbs/{verb}")},
               "object": {"id": object}, "timestamp": timestamp,
               "result": {"score": {"scaled": scaled}, "duration": "PT4M"}})
    } else {
        json!({"actor": actor, "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
               "object": {"id": object}, "timestamp": timestamp,
               "result": {"completion": true, "duration": "PT6M"}})
    }
}

/// A class signing in at the same moment (issue 11: 40 learners, all
/// answered within 3 s): 40 fresh sign-ins (new passwords each run, so no
/// verified pair is cached) fired at once; the slowest answer per run.
pub async fn sign_ins(b: &Bench, node: &Node, data: &Path) {
    if !wanted(&b.args, "40 sign-ins at once") {
        return;
    }
    let (args, client, base) = (&b.args, &b.client, node.base.as_str());
    use lms_node::roster::{NewPerson, Role, Roster};
    const CLASS: usize = 40;
    let mut roster = Roster::open(&data.join("roster.db")).unwrap();
    let people: Vec<NewPerson> = (0..CLASS)
        .map(|i| {
            NewPerson::new(&format!("pupil{i}"), &format!("Pupil {i}"), Role::Learner, &[], "run-0-password").unwrap()
        })
        .collect();
    roster.import(&people).unwrap();
    let mut slowest = Vec::new();
    for run in 1..=args.runs {
        let pw = format!("run-{run}-password");
        for i in 0..CLASS {
            roster.passwd(&format!("pupil{i}"), &pw).unwrap();
        }
        let t = Instant::now();
        let tasks: Vec<_> = (0..CLASS)
            .map(|i| {
                let (c, url, pw) = (client.clone(), format!("{base}/login"), pw.clone());
                tokio::spawn(async move {
                    let form = format!("username=pupil{i}&password={pw}&csrf=bench-csrf-0123456789");
                    let r = c
                        .send(
                            "POST".parse().unwrap(),
                            &url,
                            &[
                                ("cookie", "lms_csrf=bench-csrf-0123456789"),
                                ("content-type", "application/x-www-form-urlencoded"),
                            ],
                            form,
                        )
                        .await;
                    (r.map(|r| r.header("location") == Some("/")).unwrap_or(false), t.elapsed())
                })
            })
            .collect();
        let mut worst = Duration::ZERO;
        let mut ok = 0;
        for task in tasks {
            let (signed_in, took) = task.await.unwrap();
            ok += usize::from(signed_in);
            worst = worst.max(took);
        }
        assert_eq!(ok, CLASS, "sign-ins failed in run {run}");
        slowest.push(worst);
    }
    slowest.sort();
    let all: Vec<String> = slowest.iter().map(|d| ms(*d)).collect();
    println!(
        "{CLASS} sign-ins at once (bcrypt cost {}): slowest answer median {} ms  runs [{}]",
        lms_node::roster::BCRYPT_COST,
        ms(slowest[slowest.len() / 2]),
        all.join(", ")
    );
}

/// The learner's pages as a signed-in browser asks for them (HTML, session
/// cookie): a lesson (rendered by the web module, the completed statement
/// checked once per view) and a course page (the learner's progress from
/// their statements, then rendered).
pub async fn pages(b: &Bench, node: &Node, data: &Path) {
    use lms_node::roster::{NewPerson, Role, Roster};
    if !wanted(&b.args, "lesson page (HTML, signed in) course page (HTML, signed in)") {
        return;
    }
    let (args, client, base) = (&b.args, &b.client, node.base.as_str());
    let mut roster = Roster::open(&data.join("roster.db")).unwrap();
    let _ = roster.remove("page-reader");
    roster.add(&NewPerson::new("page-reader", "Page Reader", Role::Learner, &[], "page-password").unwrap()).unwrap();
    let r = client
        .send(
            "POST".parse().unwrap(),
            &format!("{base}/login"),
            &[("cookie", "lms_csrf=bench-csrf-0123456789"), ("content-type", "application/x-www-form-urlencoded")],
            "username=page-reader&password=page-password&csrf=bench-csrf-0123456789".to_string(),
        )
        .await
        .unwrap();
    let session = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("lms_session="))
        .and_then(|c| c.split(';').next())
        .expect("the bench learner signs in")
        .to_string();
    let cookie = Arc::new(format!("{session}; lms_lang=zh-CN"));
    for (name, path) in [
        ("lesson page (HTML, signed in)", "/courses/arithmetic/lessons/fractions"),
        ("course page (HTML, signed in)", "/courses/arithmetic"),
    ] {
        let (c, k, u) = (client.clone(), cookie.clone(), Arc::new(format!("{base}{path}")));
        scenario(args, name, 1.0, move |_| {
            let (c, k, u) = (c.clone(), k.clone(), u.clone());
            async move { c.get(&u, &[("cookie", &k)]).await.map(|r| r.status.as_u16()) }
        })
        .await;
    }
}
