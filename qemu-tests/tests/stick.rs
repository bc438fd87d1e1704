//! An update from a USB stick, with no network at all: the node's LAN
//! reaches nothing outside it (QEMU `restrict=on`; the learners' forwarded
//! port still works) and its repository URL answers nothing. A FAT stick
//! labelled LMS-UPDATE holds a repository with a signed 2.0.0 published on
//! it; plugged in as a second disk, lms-init mounts it read-only and the
//! node's lms-updater installs 2.0.0 from it.

use lms_qemu_tests::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn ok(c: &mut Command) {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?}: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_usb_stick_updates_a_node_without_a_network() {
    let Some(i) = inputs() else { return };
    let d = tempfile::tempdir().unwrap();
    let settings = d.path().join("lms.toml");
    let factory = std::fs::read_to_string(root().join("appliance/factory/lms-dev.toml")).unwrap();
    let factory = factory
        .replace("repository = \"http://10.0.2.2:8000/\"", "repository = \"http://10.0.2.2:9/\"")
        .replace("poll_interval = \"10m\"", "poll_interval = \"3s\"");
    assert!(
        factory.contains(":9/") && factory.contains("stick_repository = \"/media/lms-update\""),
        "the dev settings changed shape"
    );
    std::fs::write(&settings, factory).unwrap();
    let (key, _) = keygen(d.path());
    let image = d.path().join("image");
    let o = build(&definition(d.path(), &settings), &image, &key, &i);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The stick: a repository with 2.0.0 on `stable`, on a FAT file system.
    let repo = made_dir(d.path().join("repo"));
    module_release(&i, d.path(), "2.0.0", false, &key, &repo);
    let stick = d.path().join("stick.img");
    ok(Command::new("mkfs.vfat").args(["-C", "-n", "LMS-UPDATE"]).arg(&stick).arg("65536"));
    for e in std::fs::read_dir(&repo).unwrap().map(Result::unwrap) {
        ok(Command::new("mcopy").args(["-s", "-i"]).arg(&stick).arg(e.path()).arg("::/").env("MTOOLS_SKIP_CHECK", "1"));
    }

    let boot = Boot { dir: &image, uefi: false, overlay: None, disk: None, scratch: d.path() };
    let mut vm = Vm::start_with(boot, &["--offline".as_ref(), "--stick".as_ref(), stick.as_os_str()]);
    vm.wait_ready(Duration::from_secs(300));
    let t = Instant::now();
    loop {
        let (code, ready) = vm.http("GET", "/readyz", Some("demo:demo"), None);
        if code == 200 && ready.contains("\"bundle_version\":\"2.0.0\"") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(180), "no 2.0.0 from the stick: {ready}\n{}", vm.console_text());
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("ready to serving 2.0.0 from the stick in {:?}", t.elapsed());
    let console = vm.console_text();
    assert!(console.contains("(LMS-UPDATE) mounted read-only at /media/lms-update"), "{console}");
    assert_eq!(vm.http("GET", "/v1/courses", Some("demo:demo"), None).0, 200);
    vm.power_button(Duration::from_secs(120));
}
