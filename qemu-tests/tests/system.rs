//! Over-the-air updates of the whole system on the real image: UEFI (OVMF
//! with a variable store that persists, systemd-boot from the ESP), the
//! guest rebooting itself inside QEMU. Release A is flashed and serves a
//! learner; release B's system bundle is published on `system-stable` of a
//! repository on the host; the node writes slot B, reboots into it, gates
//! and blesses it, and the learner's records are still there.

use lms_qemu_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RELEASE_B: &str = "1767312000"; // a day after EPOCH
const RECORD: &str = "7e2d7b2f-6a1f-4b68-8b6a-3c2e9d1f0b01";

fn ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn system_version(image: &Path) -> String {
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(image.join("manifest.json")).unwrap()).unwrap();
    m["system_version"].as_str().unwrap().to_string()
}

/// The ESP's byte offset in a disk file (from its GPT).
fn esp_offset(disk: &Path) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&ok(Command::new("sfdisk").arg("--json").arg(disk))).unwrap();
    let p = v["partitiontable"]["partitions"].as_array().unwrap().iter().find(|p| p["name"] == "ESP").unwrap();
    p["start"].as_u64().unwrap() * 512
}

/// The boot entries on the disk's ESP (mtools reads it in place).
fn entries(disk: &Path) -> Vec<String> {
    let o = Command::new("mdir")
        .args(["-b", "-i"])
        .arg(format!("{}@@{}", disk.display(), esp_offset(disk)))
        .arg("::/loader/entries")
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap();
    let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .filter(|n| n.starts_with("lms-"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// `fsck.fat -n` on a copy of the disk's ESP.
fn fsck_esp(disk: &Path, scratch: &Path) {
    let esp = scratch.join("esp-copy.img");
    let off = esp_offset(disk);
    ok(Command::new("dd").arg(format!("if={}", disk.display())).arg(format!("of={}", esp.display())).args([
        "bs=1M",
        &format!("skip={}", off >> 20),
        "count=64",
        "status=none",
    ]));
    ok(Command::new("fsck.fat").arg("-n").arg(&esp));
}

#[test]
fn a_to_b_over_the_network_keeps_the_records_and_blesses_b() {
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
    assert!(factory.contains("system_dir = \"/data/system\""), "the dev settings changed shape");
    std::fs::write(&settings, factory).unwrap();
    let (key, pubkey) = keygen(d.path());
    let spec = definition(d.path(), &settings);
    let (a, b) = (d.path().join("release-a"), d.path().join("release-b"));
    for (dir, epoch) in [(&a, EPOCH), (&b, RELEASE_B)] {
        let o = build_at(&spec, dir, &key, &i, epoch);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (va, vb) = (system_version(&a), system_version(&b));
    let disk = d.path().join("node.img");
    ok(Command::new(lms_image()).arg("flash").arg(&a).arg("--device").arg(&disk).arg("--pubkey").arg(&pubkey));
    assert_eq!(entries(&disk), ["lms-a.conf"]);

    let vars = d.path().join("OVMF_VARS.fd");
    let boot = Boot { dir: &a, uefi: true, overlay: None, disk: Some(&disk), scratch: d.path() };
    let mut vm = Vm::start_with(boot, &["--reboot".as_ref(), "--uefi-vars".as_ref(), vars.as_os_str()]);
    let first = vm.wait_ready(Duration::from_secs(400));
    let ready = vm.http("GET", "/readyz", Some("demo:demo"), None).1;
    assert!(
        ready.contains(&format!("\"system_version\":\"{va}\"")) && ready.contains("\"system_slot\":\"a\""),
        "{ready}"
    );
    let (code, body) = vm.http("POST", "/xapi/statements", Some("demo:demo"), Some(&statement(RECORD, "grace")));
    assert_eq!(code, 200, "{body}");
    eprintln!("release A (system {va}) ready {first:?} after QEMU start (UEFI)");

    let t = Instant::now();
    ok(Command::new(lms_image())
        .arg("publish")
        .arg("--bundle")
        .arg(b.join("system.bundle"))
        .arg("--repo")
        .arg(&repo)
        .args(["--channel", "system-stable", "--key"])
        .arg(&key));
    // The node writes slot B, reboots into it (QEMU stays up), gates it.
    let mut on_b = None;
    while t.elapsed() < Duration::from_secs(600) {
        let (code, ready) = vm.http("GET", "/readyz", Some("demo:demo"), None);
        if code == 200 && ready.contains(&format!("\"system_version\":\"{vb}\"")) {
            assert!(ready.contains("\"system_slot\":\"b\""), "{ready}");
            on_b = Some(t.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let on_b = on_b.unwrap_or_else(|| panic!("not on system {vb} within 600 s:\n{}", vm.console_text()));
    let console = vm.console_text();
    assert!(console.contains("lms-updater asked for a reboot"), "{console}");
    assert!(console.contains("system slot b (/dev/vda3) mounted read-only through dm-verity"), "{console}");
    // Committed: the entry loses its counter (the updater blesses it after the gate).
    let mut blessed = None;
    while t.elapsed() < on_b + Duration::from_secs(180) {
        if entries(&disk) == ["lms-a.conf", "lms-b.conf"] {
            blessed = Some(t.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let blessed = blessed.unwrap_or_else(|| panic!("B never blessed: {:?}\n{}", entries(&disk), vm.console_text()));
    eprintln!("system {va} -> {vb}: published to serving B {on_b:?}, to blessed {blessed:?}");
    let (code, body) = vm.http("GET", &format!("/xapi/statements?statementId={RECORD}"), Some("demo:demo"), None);
    assert_eq!(code, 200, "the record did not survive the system update: {body}");
    // The updater's journal, as the node's /metrics shows it.
    let want = format!("lms_updater_info{{kind=\"system\",current=\"{vb}\",previous=\"{va}\",last_rejected=\"\"}} 1");
    let mut metrics = String::new();
    for _ in 0..30 {
        metrics = vm.http("GET", "/metrics", None, None).1;
        if metrics.contains(&want) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(metrics.contains(&want), "{want} not in /metrics:\n{metrics}");
    vm.power_button(Duration::from_secs(120));
    drop(vm);
    fsck_esp(&disk, d.path());
    assert_eq!(entries(&disk), ["lms-a.conf", "lms-b.conf"]);
}
