//! An update over the network, end to end: the image boots with its factory
//! bundle (1.0.0), a signed 2.0.0 is published to an update repository on the
//! host (reached from the VM at 10.0.2.2 through QEMU user networking), and
//! the node's lms-updater daemon fetches, verifies, installs and health-gates
//! it while learners keep getting answers.

use lms_qemu_tests::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn lms_image_ok(args: &[&std::ffi::OsStr]) {
    let o = Command::new(lms_image()).args(args).output().unwrap();
    assert!(o.status.success(), "lms-image {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

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
    let v2 = d.path().join("v2");
    std::fs::create_dir_all(&v2).unwrap();
    for e in std::fs::read_dir(&i.modules).unwrap().map(Result::unwrap) {
        std::fs::copy(e.path(), v2.join(e.file_name())).unwrap();
    }
    let manifest = std::fs::read_to_string(v2.join("manifest.json")).unwrap();
    std::fs::write(v2.join("manifest.json"), manifest.replace("\"1.0.0\"", "\"2.0.0\"")).unwrap();
    let bundle = d.path().join("lms-2.0.0.bundle");
    lms_image_ok(&[
        "bundle".as_ref(),
        "--modules".as_ref(),
        v2.as_os_str(),
        "--version".as_ref(),
        "2.0.0".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        "--out".as_ref(),
        bundle.as_os_str(),
    ]);
    lms_image_ok(&[
        "publish".as_ref(),
        "--bundle".as_ref(),
        bundle.as_os_str(),
        "--repo".as_ref(),
        repo.as_os_str(),
        "--channel".as_ref(),
        "stable".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
    ]);

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
}
