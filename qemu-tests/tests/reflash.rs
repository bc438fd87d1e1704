//! An OS reflash keeps the node's data: release A is flashed onto a disk
//! file and boots (learning records written, power button), release B of the
//! same definition is flashed with `--keep-data`, and the node boots B's
//! system partition with A's data partition: the records are still there.
//! A flash that does not verify writes nothing. A node flashed before the
//! A/B layout (one system partition, a 24 MiB ESP, the data partition at
//! 37 MiB) moves to it with the same command, and keeps its records.

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
    vm.power_button(Duration::from_secs(120));
    drop(vm);

    // A node of the layout before A/B: its data partition (A's, with the
    // record) where that layout kept it. B moves it and keeps the record.
    let old = d.path().join("old-layout.img");
    old_layout_device(&device, &old);
    let o = flash(&b, &old, &pubkey, true);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("lms-data (67108864 bytes) moved from byte 38797312"), "{out}");
    let mut vm = Vm::start(Boot { dir: &b, uefi: false, overlay: None, disk: Some(&old), scratch: d.path() });
    vm.wait_ready(Duration::from_secs(300));
    let (code, body) = vm.http("GET", &format!("/xapi/statements?statementId={RECORD}"), Some("demo:demo"), None);
    assert_eq!(code, 200, "the record did not survive the move to the A/B layout: {body}");
    assert!(!vm.console_text().contains("factory bundle installed"), "{}", vm.console_text());
}

/// Writes `out`: the GPT of the layout before A/B (ESP 24 MiB at 1 MiB,
/// `lms-system` 12 MiB, `lms-data` at 37 MiB: 24 MiB then, the size of
/// `device`'s here) with `device`'s data partition copied to where that
/// layout had it.
fn old_layout_device(device: &Path, out: &Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    const MIB: u64 = 1 << 20;
    let o = Command::new("sfdisk").arg("--json").arg(device).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = v["partitiontable"]["partitions"].as_array().unwrap().iter().find(|p| p["name"] == "lms-data").unwrap();
    let (start, size) = (p["start"].as_u64().unwrap() * 512, p["size"].as_u64().unwrap() * 512);
    assert_eq!(size, 64 * MIB);
    let mut data = vec![0u8; size as usize];
    let mut f = std::fs::File::open(device).unwrap();
    f.seek(SeekFrom::Start(start)).unwrap();
    f.read_exact(&mut data).unwrap();
    let mut g = std::fs::File::create(out).unwrap();
    g.set_len(37 * MIB + size + MIB).unwrap();
    g.seek(SeekFrom::Start(37 * MIB)).unwrap();
    g.write_all(&data).unwrap();
    drop(g);
    let script = format!(
        "label: gpt\nunit: sectors\nfirst-lba: 2048\n\
        start=2048, size=49152, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"ESP\"\n\
        start=51200, size=24576, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=\"lms-system\"\n\
        start=75776, size={}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"lms-data\"\n",
        size / 512
    );
    let mut c = Command::new("sfdisk")
        .args(["--no-reread", "--no-tell-kernel", "-q"])
        .arg(out)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success());
}
