//! An OS reflash keeps the node's data: release A is flashed onto a disk
//! file and boots (learning records written, power button), release B of the
//! same definition is flashed with `--keep-data`, and the node boots B's
//! system partition with A's data partition: the records are still there.
//! A flash that does not verify writes nothing.

use lms_qemu_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const RELEASE_B: &str = "1767312000"; // a day after EPOCH

fn flash(dir: &Path, device: &Path, pubkey: &Path, keep_data: bool) -> std::process::Output {
    let mut c = Command::new(lms_image());
    c.arg("flash").arg(dir).arg("--device").arg(device).arg("--pubkey").arg(pubkey);
    if keep_data {
        c.arg("--keep-data");
    }
    c.output().unwrap()
}

const RECORD: &str = "7e2d7b2f-6a1f-4b68-8b6a-3c2e9d1f0001";

#[test]
fn an_os_reflash_keeps_the_data_partition() {
    let Some(i) = inputs() else { return };
    let d = tempfile::tempdir().unwrap();
    let (key, pubkey) = keygen(d.path());
    let (a, b) = (d.path().join("release-a"), d.path().join("release-b"));
    for (dir, epoch) in [(&a, EPOCH), (&b, RELEASE_B)] {
        let o = build_at(&dev_definition(), dir, &key, &i, epoch);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let device = d.path().join("device.img");
    let o = flash(&a, &device, &pubkey, false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let mut vm = Vm::start(Boot { dir: &a, uefi: false, overlay: None, disk: Some(&device), scratch: d.path() });
    vm.wait_ready(Duration::from_secs(300));
    assert!(vm.console_text().contains(&format!("lms-edge-dev build {EPOCH}")), "{}", vm.console_text());
    let (code, body) = vm.http("POST", "/xapi/statements", Some("demo:demo"), Some(&statement(RECORD, "grace")));
    assert_eq!(code, 200, "{body}");
    vm.power_button(Duration::from_secs(120));
    drop(vm);

    // A key that did not sign B: nothing is written.
    let before = std::fs::read(&device).unwrap();
    let (_, stranger) = keygen(&made_dir(d.path().join("stranger")));
    let o = flash(&b, &device, &stranger, true);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing written"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&device).unwrap() == before, "a failed flash changed the disk");

    let o = flash(&b, &device, &pubkey, true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut vm = Vm::start(Boot { dir: &b, uefi: false, overlay: None, disk: Some(&device), scratch: d.path() });
    vm.wait_ready(Duration::from_secs(300));
    let console = vm.console_text();
    assert!(
        console.contains(&format!("lms-edge-dev build {RELEASE_B}")),
        "B's system partition is not the one running:\n{console}"
    );
    assert!(
        !console.contains("factory bundle installed"),
        "the kept data partition already had its modules:\n{console}"
    );
    let (code, body) = vm.http("GET", &format!("/xapi/statements?statementId={RECORD}"), Some("demo:demo"), None);
    assert_eq!(code, 200, "the record did not survive the reflash: {body}");
}
