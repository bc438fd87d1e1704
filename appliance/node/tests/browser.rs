//! Pages as people see them (issue 11): browser-tests/*.mjs drive Debian's
//! headless chromium (playwright-core) against a real node; axe-core checks
//! accessibility. `cargo xtask setup` installs chromium and the npm packages
//! from browser-tests/package-lock.json. Screenshots are kept in
//! target/tmp/browser-artifacts.

mod common;
use common::*;
use lms_node::roster::{NewPerson, Role, Roster};
use std::path::{Path, PathBuf};

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts")
}

/// A node with the learner mei (王美, class 7B), another learner, bo (8A),
/// mei's coach li (李老师, 7B) and an admin, root.
async fn node_with_people() -> TestNode {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    let mut r = Roster::open(&n.node.cfg.roster_path()).unwrap();
    r.add(&NewPerson::new("mei", "王美", Role::Learner, &["7B".into()], "mei-password").unwrap()).unwrap();
    r.add(&NewPerson::new("bo", "Bo", Role::Learner, &["8A".into()], "bo-password").unwrap()).unwrap();
    r.add(&NewPerson::new("li", "李老师", Role::Coach, &["7B".into()], "li-password").unwrap()).unwrap();
    r.add(&NewPerson::new("root", "Admin", Role::Admin, &[], "root-password").unwrap()).unwrap();
    n
}

/// Runs `browser-tests/{script}` against `n` with `args`, failing with its output.
async fn run_script(n: &TestNode, script: &str, args: &[&str]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../browser-tests");
    assert!(
        dir.join("node_modules/playwright-core").is_dir() && Path::new("/usr/bin/chromium").exists(),
        "the browser tests need chromium and browser-tests/node_modules: run `cargo xtask setup`"
    );
    let mut cmd = std::process::Command::new("timeout");
    // A hung browser fails the test instead of holding CI.
    cmd.args(["240", "node"]).arg(dir.join(script)).arg(&n.base).arg(artifacts()).args(args);
    // On a blocking thread: the node under test keeps serving meanwhile.
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().expect("running node");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success(), "{script} failed:\n{text}");
}

fn screenshots(pages: &[&str], langs: &[&str]) {
    for page in pages {
        for lang in langs {
            let f = artifacts().join(format!("{page}-{lang}.png"));
            assert!(f.exists(), "no screenshot {}", f.display());
        }
    }
}

#[tokio::test]
async fn sign_in_page_in_a_real_browser() {
    let n = node_with_people().await;
    run_script(&n, "login.mjs", &["mei", "mei-password", "王美"]).await;
    screenshots(&["login", "home"], &["zh-CN", "en"]);
    screenshots(&["login-refused"], &["en"]);
    n.stop().await;
}

#[tokio::test]
async fn a_learners_day_in_a_real_browser() {
    let n = node_with_people().await;
    run_script(&n, "learner.mjs", &["mei", "mei-password", "bo"]).await;
    screenshots(&["home", "catalog", "course", "lesson", "quiz", "quiz-result", "progress"], &["zh-CN", "en"]);
    n.stop().await;
}

#[tokio::test]
async fn a_coach_sees_a_learner_and_exports_the_class_in_a_real_browser() {
    let n = node_with_people().await;
    let args = ["li", "li-password", "mei", "mei-password", "王美", "8A", "root", "root-password"];
    run_script(&n, "coach.mjs", &args).await;
    screenshots(&["coach", "coach-class", "coach-learner", "coach-refused", "roster"], &["zh-CN", "en"]);
    n.stop().await;
}

/// Imported courses taken in the browser (issue 13): the cmi5 AU authored
/// in the repository runs on the content origin and the node records what
/// the cmi5 spec asks of an LMS; the SCORM 1.2 SCO runs in the node's
/// player (scorm-again) and its commits become xAPI statements.
#[tokio::test]
async fn a_cmi5_course_taken_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let n = node_with_packages(dir.path()).await;
    let mut r = Roster::open(&n.node.cfg.roster_path()).unwrap();
    r.add(&NewPerson::new("mei", "王美", Role::Learner, &["7B".into()], "mei-password").unwrap()).unwrap();
    r.add(&NewPerson::new("li", "李老师", Role::Coach, &["7B".into()], "li-password").unwrap()).unwrap();
    let content = n.content.clone();
    let upload = dir.path().join("half.zip");
    lms_package::testing::zip_tree(&lms_package::testing::data_dir().join("scorm2004"), &upload, &[]);
    let upload = upload.display().to_string();
    let uploaded = "org-example-lms-fractions";
    let args = ["mei", "mei-password", &content, "li", "li-password", "org-example-lms-water-cycle", &upload, uploaded];
    run_script(&n, "cmi5.mjs", &args).await;
    screenshots(
        &["course-cmi5", "coach-waive", "content-upload", "course-scorm2004", "scorm2004-player"],
        &["zh-CN", "en"],
    );
    screenshots(&["content-added"], &["en"]);
    assert_eq!(n.node.current().unwrap().local_packages.len(), 1, "the upload landed in the local pack");
    let agent = serde_urlencoded::to_string([(
        "agent",
        r#"{"account":{"homePage":"https://lms.example.org/learners","name":"mei"}}"#,
    )])
    .unwrap();
    let stored = n.get(&format!("/xapi/statements?{agent}&limit=50&ascending=true")).await.json();
    let verbs = |kind: &str| -> Vec<String> {
        stored["statements"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                s["object"]["id"].as_str().unwrap().contains(kind)
                    || s["verb"]["id"].as_str().unwrap().ends_with("satisfied") && kind == "/cmi5/"
            })
            .map(|s| s["verb"]["id"].as_str().unwrap().rsplit('/').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        verbs("/cmi5/"),
        ["launched", "initialized", "completed", "passed", "satisfied", "satisfied", "terminated"],
        "what the LMS and the AU recorded, in order"
    );
    // The SCO, through scorm-again's commits, as the xAPI SCORM profile has it.
    // (The SCO's answer is an interaction: `responded`.)
    assert_eq!(
        verbs("/scorm/org-example-lms-water-cycle/"),
        ["initialized", "scored", "completed", "passed", "responded", "terminated"]
    );
    // The SCORM 2004 SCO: started twice for the accessibility checks (left
    // unfinished), then taken: scored, completed and passed at scaled 1, its
    // numeric interaction answered right, its objective passed, terminated.
    let taken = verbs(&format!("/scorm/{uploaded}/"));
    let want = ["initialized", "scored", "completed", "passed", "responded", "passed", "terminated"].map(String::from);
    assert!(taken.ends_with(&want), "{taken:?}");
    let answered = stored["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["object"]["id"].as_str().unwrap().ends_with("/interaction/halves-in-a-whole"))
        .expect("the 2004 interaction");
    assert_eq!(answered["result"], serde_json::json!({"response": "2", "success": true}));
    assert_eq!(answered["object"]["definition"]["interactionType"], "numeric");
    assert_eq!(answered["object"]["definition"]["correctResponsesPattern"], serde_json::json!(["2[:]2"]));
    let passed = stored["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["object"]["id"].as_str().unwrap().contains("/scorm/")
                && s["verb"]["id"].as_str().unwrap().ends_with("passed")
        })
        .unwrap();
    assert_eq!(passed["result"]["score"], serde_json::json!({"scaled": 1.0, "raw": 100.0, "min": 0.0, "max": 100.0}));
    assert_eq!(passed["authority"]["account"]["name"], "lms:scorm");
    n.stop().await;
}
