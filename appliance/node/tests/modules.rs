//! Module loading, the sandbox and hot reload.

mod common;
use common::*;
use std::time::Duration;

#[tokio::test]
async fn starts_without_modules_and_picks_them_up_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let mods = dir.path().join("modules");
    let n = TestNode::start(Some(mods.clone()), |_| {}).await;
    // Give the first load time to fail.
    for _ in 0..100 {
        if n.node.modules.load().last_error.as_deref() != Some("modules are loading") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(n.client.get(&n.url("/healthz"), &[]).await.unwrap().status, 200);
    let ready = n.client.get(&format!("{}/readyz", n.admin), &[]).await.unwrap();
    assert_eq!(ready.status, 503);
    assert!(ready.json()["reason"].as_str().unwrap().contains("manifest.json"), "{}", ready.text());
    let lesson = n.get("/v1/courses/arithmetic/lessons/decimals").await;
    assert_eq!(lesson.status, 503);
    assert!(lesson.json()["message"].as_str().unwrap().contains("manifest.json"));

    module_dir(&mods, "1.0.0", &[]);
    let r = n.reload().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ready = n.client.get(&format!("{}/readyz", n.admin), &[]).await.unwrap();
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["bundle_version"], "1.0.0");
    assert_eq!(n.get("/v1/courses/arithmetic/lessons/decimals").await.status, 200);
    n.stop().await;
}

#[tokio::test]
async fn a_failed_reload_keeps_the_old_modules_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mods = dir.path().join("modules");
    module_dir(&mods, "1.0.0", &[]);
    let n = TestNode::start(Some(mods.clone()), |_| {}).await.ready().await;

    // A tampered byte in a module.
    let mut wasm = std::fs::read(mods.join("quiz.wasm")).unwrap();
    let last = wasm.len() - 1;
    wasm[last] ^= 0xff;
    std::fs::write(mods.join("quiz.wasm"), &wasm).unwrap();
    let r = n.reload().await;
    assert_eq!(r.status, 500);
    assert!(r.json()["message"].as_str().unwrap().contains("quiz.wasm"), "{}", r.text());
    assert_eq!(r.json()["serving"], "1.0.0");
    let ready = n.client.get(&format!("{}/readyz", n.admin), &[]).await.unwrap();
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["bundle_version"], "1.0.0");
    assert!(ready.json()["last_error"].as_str().unwrap().contains("sha256"));
    assert_eq!(n.get("/v1/quizzes/science-check").await.status, 200);

    // A module set whose self-test fails is refused too.
    let broken = dir.path().join("broken");
    module_dir(
        &broken,
        "2.0.0",
        &[("progress", wat_module(LOOP_FOREVER, r#"{"ok":false,"error":"rules do not load"}"#))],
    );
    std::fs::remove_dir_all(&mods).unwrap();
    std::fs::rename(&broken, &mods).unwrap();
    let r = n.reload().await;
    assert_eq!(r.status, 500);
    let msg = r.json()["message"].as_str().unwrap().to_string();
    assert!(msg.contains("progress") && msg.contains("rules do not load"), "{msg}");
    assert_eq!(n.client.get(&format!("{}/readyz", n.admin), &[]).await.unwrap().json()["bundle_version"], "1.0.0");
    n.stop().await;
}

#[tokio::test]
async fn a_looping_module_gets_its_request_ended_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mods = dir.path().join("modules");
    module_dir(&mods, "6.6.6", &[("catalog", wat_module(LOOP_FOREVER, SELF_TEST_OK))]);
    let n = TestNode::start(Some(mods), |c| c.module_timeout = Duration::from_millis(100)).await.ready().await;
    let t = std::time::Instant::now();
    let r = n.get("/v1/courses").await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["error"], "module_timeout");
    assert!(t.elapsed() < Duration::from_secs(5), "deadline not enforced: {:?}", t.elapsed());
    // Other modules, and the node, are unaffected.
    assert_eq!(n.get("/v1/quizzes/science-check").await.status, 200);
    assert_eq!(n.client.get(&n.url("/healthz"), &[]).await.unwrap().status, 200);
    n.stop().await;
}

#[tokio::test]
async fn an_over_allocating_module_is_stopped_at_its_memory_cap() {
    let dir = tempfile::tempdir().unwrap();
    let mods = dir.path().join("modules");
    module_dir(&mods, "6.6.7", &[("catalog", wat_module(GROW_FOREVER, SELF_TEST_OK))]);
    let n = TestNode::start(Some(mods), |c| c.module_memory_bytes = 8 << 20).await.ready().await;
    let r = n.get("/v1/courses").await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.json()["error"], "module_memory_limit");
    assert!(r.json()["message"].as_str().unwrap().contains("8388608"));
    assert_eq!(n.get("/v1/quizzes/science-check").await.status, 200);
    n.stop().await;
}

#[tokio::test]
async fn real_modules_run_within_a_small_memory_cap() {
    let n = TestNode::start(None, |c| c.module_memory_bytes = 4 << 20).await.ready().await;
    assert_eq!(n.get("/v1/courses/science/lessons/cells").await.status, 200);
    assert_eq!(n.get("/v1/learners/x/progress").await.status, 200);
    n.stop().await;
}

#[tokio::test]
async fn no_request_fails_during_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, current) = two_versions(dir.path());
    let n = std::sync::Arc::new(TestNode::start(Some(current.clone()), |_| {}).await.ready().await);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (n, stop) = (n.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut count = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = n.get("/v1/courses/arithmetic/lessons/fractions").await;
                assert_eq!(r.status, 200, "request failed during reload: {}", r.text());
                count += 1;
            }
            count
        }));
    }
    for i in 0..4 {
        // Switch the link atomically, as lms-updater does, then reload.
        let tmp = dir.path().join("current.tmp");
        std::os::unix::fs::symlink(if i % 2 == 0 { &b } else { &a }, &tmp).unwrap();
        std::fs::rename(&tmp, &current).unwrap();
        let r = n.reload().await;
        assert_eq!(r.status, 200, "{}", r.text());
        let want = if i % 2 == 0 { "2.0.0" } else { "1.0.0" };
        assert_eq!(n.client.get(&format!("{}/readyz", n.admin), &[]).await.unwrap().json()["bundle_version"], want);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    assert!(total > 0);
}

#[test]
fn admin_listener_must_be_loopback_or_unix() {
    use lms_node::server::AdminAddr;
    assert!("127.0.0.1:9090".parse::<AdminAddr>().is_ok());
    assert!("[::1]:9090".parse::<AdminAddr>().is_ok());
    assert!(matches!("unix:/run/lms/admin.sock".parse::<AdminAddr>(), Ok(AdminAddr::Unix(_))));
    let e = "0.0.0.0:9090".parse::<AdminAddr>().unwrap_err();
    assert!(e.contains("loopback"), "{e}");
    assert!("10.0.0.5:9090".parse::<AdminAddr>().is_err());
}

/// Issue 10, case 8: host calls check a guest's (pointer, length) against
/// its memory before allocating. `random_get(0, 0x7fffffff)` used to make
/// the host allocate and fill 2 GiB (42 s for one request, past the
/// deadline, which does not interrupt host calls).
#[tokio::test]
async fn host_calls_refuse_lengths_past_guest_memory_without_allocating() {
    let imports = r#"(import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "lms" "content_size" (func $content_size (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))"#;
    // Each hostile call must fail; a call within bounds must succeed; else trap.
    let handle = format!(
        "(if (i32.eqz (call $random_get (i32.const 0) (i32.const 0x7fffffff))) (then unreachable))
         (if (i32.eqz (call $random_get (i32.const 0x1fff0) (i32.const 32))) (then unreachable))
         (if (i32.ne (call $random_get (i32.const 8192) (i32.const 64)) (i32.const 0)) (then unreachable))
         (if (i32.ne (call $content_size (i32.const 0) (i32.const 0x7fffffff)) (i32.const -1)) (then unreachable))
         (i32.store (i32.const 4096) (i32.const 0x7ffffff0))
         (i32.store (i32.const 4100) (i32.const 0x7fffffff))
         (if (i32.eqz (call $fd_write (i32.const 2) (i32.const 4096) (i32.const 1) (i32.const 4104))) (then unreachable))
         i64.const {OK_ANSWER}"
    );
    let dir = tempfile::tempdir().unwrap();
    let mods = dir.path().join("modules");
    module_dir(&mods, "6.6.8", &[("catalog", wat_module_importing(imports, &handle, SELF_TEST_OK))]);
    let n = TestNode::start(Some(mods), |_| {}).await.ready().await;
    let t = std::time::Instant::now();
    let r = n.get("/v1/courses").await;
    assert_eq!(r.status, 200, "a host call took a length past guest memory: {}", r.text());
    assert_eq!(r.json()["ok"], true);
    assert!(t.elapsed() < Duration::from_secs(2), "the request took {:?}", t.elapsed());
    n.stop().await;
}

/// A copy of the factory content pack at `dir` with the body of lesson
/// `lesson` of `course` replaced, as a content fix in an update would ship.
fn pack_with_lesson(dir: &std::path::Path, course: &str, lesson: &str, body: &str) {
    let fix = |name: &str, text: String| {
        if name != format!("{course}.toml") {
            return text;
        }
        let at = text.find(&format!("id = \"{lesson}\"")).expect("the lesson");
        let start = at + text[at..].find("body = \"\"\"").unwrap() + 10;
        let end = start + text[start..].find("\"\"\"").unwrap();
        format!("{}{body}\n{}", &text[..start], &text[end..])
    };
    lms_package::pack::copy_with(&factory_content(), dir, &fix).unwrap();
}

#[tokio::test]
async fn shared_answers_are_kept_per_module_set_and_dropped_by_an_update() {
    const LESSON: &str = "/v1/courses/arithmetic/lessons/fractions";
    let dir = tempfile::tempdir().unwrap();
    let (_a, b, current) = two_versions(dir.path());
    let (fixed_pack, content) = (dir.path().join("content-2"), dir.path().join("content"));
    let fixed = format!("Fixed in 2.0.0. {}", "A fraction names equal parts of a whole. ".repeat(6));
    pack_with_lesson(&fixed_pack, "arithmetic", "fractions", &fixed);
    std::os::unix::fs::symlink(factory_content(), &content).unwrap();
    let c2 = content.clone();
    let n = TestNode::start(Some(current.clone()), move |c| c.content = c2).await.ready().await;
    let kept = || n.node.current().unwrap().answers.len();
    assert_eq!(kept(), 0);
    let first = n.get(LESSON).await;
    assert_eq!(first.status, 200);
    assert_eq!(kept(), 1, "the lesson is kept for everyone");
    let again = n.get(LESSON).await;
    assert_eq!((again.text(), again.header("etag")), (first.text(), first.header("etag")));
    assert_eq!(again.header("cache-control"), first.header("cache-control"));
    // The kept answer still honours If-None-Match.
    let etag = first.header("etag").unwrap().to_string();
    let auth = lms_node::client::basic_auth(USER, PASSWORD);
    let r = n.client.get(&n.url(LESSON), &[("authorization", &auth), ("if-none-match", &etag)]).await.unwrap();
    assert_eq!((r.status.as_u16(), r.text().as_str()), (304, ""));
    // Answers carrying a person are never kept: a learner's progress.
    assert_eq!(n.get("/v1/learners/amina/progress").await.status, 200);
    assert_eq!(kept(), 1);

    // An update of modules and content: the new set starts empty and serves
    // the fixed lesson.
    for (link, to) in [(&current, &b), (&content, &fixed_pack)] {
        let tmp = dir.path().join("link.tmp");
        std::os::unix::fs::symlink(to, &tmp).unwrap();
        std::fs::rename(&tmp, link).unwrap();
    }
    let r = n.reload().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(kept(), 0);
    let fixed = n.get(LESSON).await;
    assert!(fixed.text().contains("Fixed in 2.0.0."), "{}", fixed.text());
    assert_ne!(fixed.header("etag"), first.header("etag"));
    n.stop().await;

    // With caching off nothing is kept.
    let n = TestNode::start(Some(current), |c| c.cache_enabled = false).await.ready().await;
    assert_eq!(n.get(LESSON).await.status, 200);
    assert_eq!(n.node.current().unwrap().answers.len(), 0);
    n.stop().await;
}
