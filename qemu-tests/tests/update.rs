//! An update over the network, end to end: the image boots with its factory
//! bundle (1.0.0), a signed 2.0.0 is published to an update repository on the
//! host (reached from the VM at 10.0.2.2 through QEMU user networking), and
//! the node's lms-updater daemon fetches, verifies, installs and health-gates
//! it while learners keep getting answers. Then a signed 3.0.0 whose modules
//! fail their self-test: the node rolls it back by itself, keeps serving,
//! and does not take it again.

use lms_qemu_tests::*;
use std::time::{Duration, Instant};

#[test]
fn the_node_takes_a_published_update_over_the_network() {
    let Some(i) = inputs() else { return };
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let port = serve(repo.clone());

    let settings = d.path().join("lms.toml");
    let factory = std::fs::read_to_string(root().join("appliance/factory/lms-dev.toml")).unwrap();
    let factory = factory
        .replace("repository = \"http://10.0.2.2:8000/\"", &format!("repository = \"http://10.0.2.2:{port}/\""))
        .replace("poll_interval = \"10m\"", "poll_interval = \"3s\"");
    assert!(factory.contains(&format!(":{port}/")) && factory.contains("\"3s\""), "the dev settings changed shape");
    std::fs::write(&settings, factory).unwrap();
    let (key, _) = keygen(d.path());
    let image = d.path().join("image");
    let o = build(&definition(d.path(), &settings), &image, &key, &i);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let mut vm = Vm::start(Boot { dir: &image, uefi: false, overlay: None, disk: None, scratch: d.path() });
    vm.wait_ready(Duration::from_secs(300));
    assert!(vm.http("GET", "/readyz", Some("demo:demo"), None).1.contains("\"bundle_version\":\"1.0.0\""));

    // Release 2.0.0: same modules, new version, signed with the image's key.
    module_release(&i, d.path(), "2.0.0", false, &key, &repo);
    let t = Instant::now();
    let mut learner_failures = 0;
    loop {
        if vm.http("GET", "/v1/courses", Some("demo:demo"), None).0 != 200 {
            learner_failures += 1;
        }
        let (code, ready) = vm.http("GET", "/readyz", Some("demo:demo"), None);
        if code == 200 && ready.contains("\"bundle_version\":\"2.0.0\"") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "no update to 2.0.0 within 180 s: {ready}\n{}",
            vm.console_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("published to serving 2.0.0 in {:?}", t.elapsed());
    assert_eq!(learner_failures, 0, "learners got errors during the update");

    // Release 3.0.0, signed, whose catalog fails its self-test on the node
    // (a module that reports a failure): the node installs it, the health gate
    // fails, it goes back to 2.0.0 by itself and never takes 3.0.0 again.
    module_release(&i, d.path(), "3.0.0", true, &key, &repo);
    let t = Instant::now();
    let rolled_back = |m: &str| {
        m.lines().any(|l| {
            l.starts_with("lms_updater_info{kind=\"modules\",current=\"2.0.0\",")
                && l.contains("last_rejected=\"3.0.0\"")
        })
    };
    loop {
        if vm.http("GET", "/v1/courses", Some("demo:demo"), None).0 != 200 {
            learner_failures += 1;
        }
        if rolled_back(&vm.http("GET", "/metrics", None, None).1) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(240),
            "3.0.0 not rolled back within 240 s: {}\n{}",
            vm.http("GET", "/metrics", None, None).1,
            vm.console_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("published a failing 3.0.0 to rolled back to 2.0.0 in {:?}", t.elapsed());
    assert_eq!(learner_failures, 0, "learners got errors while 3.0.0 was tried and rolled back");
    let ready = vm.http("GET", "/readyz", Some("demo:demo"), None);
    assert!(ready.0 == 200 && ready.1.contains("\"bundle_version\":\"2.0.0\""), "{ready:?}");
    // Not retried: several polls later it is still the one rejection.
    std::thread::sleep(Duration::from_secs(12));
    let metrics = vm.http("GET", "/metrics", None, None).1;
    assert!(rolled_back(&metrics), "{metrics}");
    assert!(metrics.contains("lms_updater_rejected_versions{kind=\"modules\"} 1"), "{metrics}");
    let console = vm.console_text();
    assert!(console.contains("rolled back from 3.0.0"), "the rollback is not on the console:\n{console}");
}
