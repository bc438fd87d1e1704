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

/// Seconds of the day at which the guest's lms-updater logged a line
/// containing `what` (its log is mirrored to the console on development
/// images, each line starting with an RFC 3339 time), the first such line.
fn logged_at(console: &str, what: &str) -> Option<f64> {
    let line = console.lines().find(|l| l.contains(what))?;
    let t = line.find('T').and_then(|i| line.get(i + 1..i + 16))?;
    let (h, rest) = t.split_once(':')?;
    let (m, sec) = rest.split_once(':')?;
    Some(
        h.parse::<f64>().ok()? * 3600.0
            + m.parse::<f64>().ok()? * 60.0
            + sec.trim_end_matches('Z').parse::<f64>().ok()?,
    )
}

/// What `fsck.fat -n` says of a copy of the disk's ESP (it changes nothing).
fn fsck_report(disk: &Path, scratch: &Path) -> (bool, String) {
    let esp = scratch.join("esp-copy.img");
    let off = esp_offset(disk);
    ok(Command::new("dd").arg(format!("if={}", disk.display())).arg(format!("of={}", esp.display())).args([
        "bs=1M",
        &format!("skip={}", off >> 20),
        "count=64",
        "status=none",
    ]));
    let o = Command::new("fsck.fat").arg("-n").arg(&esp).output().unwrap();
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// `fsck.fat -n` on a copy of the disk's ESP finds nothing.
fn fsck_esp(disk: &Path, scratch: &Path) {
    let (clean, report) = fsck_report(disk, scratch);
    assert!(clean, "fsck.fat -n on the ESP:\n{report}");
}

/// A repository served to the guest (10.0.2.2), the dev settings pointing
/// at it (poll every 3 s, gate within `health`), a release key.
struct Setup {
    repo: std::path::PathBuf,
    spec: std::path::PathBuf,
    key: std::path::PathBuf,
    pubkey: std::path::PathBuf,
}

fn setup(dir: &Path, health: &str) -> Setup {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let port = serve(repo.clone());
    let settings = dir.join("lms.toml");
    let factory = std::fs::read_to_string(root().join("appliance/factory/lms-dev.toml")).unwrap();
    let factory = factory
        .replace("repository = \"http://10.0.2.2:8000/\"", &format!("repository = \"http://10.0.2.2:{port}/\""))
        .replace("poll_interval = \"10m\"", "poll_interval = \"3s\"")
        .replace("health_timeout = \"120s\"", &format!("health_timeout = \"{health}\""));
    assert!(
        factory.contains("system_dir = \"/data/system\"") && factory.contains(health),
        "the dev settings changed shape"
    );
    std::fs::write(&settings, factory).unwrap();
    let (key, pubkey) = keygen(dir);
    Setup { repo, spec: definition(dir, &settings), key, pubkey }
}

/// Builds a release at `epoch` into `out`, its kernel command line extended by `extra`.
fn release(s: &Setup, i: &Inputs, out: &Path, epoch: &str, extra: &str) {
    let text = std::fs::read_to_string(&s.spec).unwrap();
    let spec = out.with_extension("toml");
    let changed = text.replace(
        "cmdline = \"console=ttyS0 panic=10 quiet lms.debug=1\"",
        &format!("cmdline = \"console=ttyS0 panic=10 quiet lms.debug=1{extra}\""),
    );
    assert!(extra.is_empty() || changed != text, "the dev definition's cmdline changed shape");
    std::fs::write(&spec, changed).unwrap();
    let o = build_at(&spec, out, &s.key, i, epoch);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn publish(s: &Setup, release: &Path) {
    ok(Command::new(lms_image())
        .arg("publish")
        .arg("--bundle")
        .arg(release.join("system.bundle"))
        .arg("--repo")
        .arg(&s.repo)
        .args(["--channel", "system-stable", "--key"])
        .arg(&s.key));
}

/// Whether the console shows `text` within `limit`.
fn console_shows(vm: &Vm, text: &str, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if vm.console_text().contains(text) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Flashes release `a` onto `dir/node.img`, as a node leaves the factory.
fn flashed(s: &Setup, a: &Path, dir: &Path) -> std::path::PathBuf {
    let disk = dir.join("node.img");
    ok(Command::new(lms_image()).arg("flash").arg(a).arg("--device").arg(&disk).arg("--pubkey").arg(&s.pubkey));
    disk
}

/// Powers the node on: UEFI with its variable store kept in `dir` (its
/// NVRAM), guest reboots staying inside this QEMU, the kernel of `a` only
/// for the record (the disk's ESP decides what boots).
fn power_on(a: &Path, disk: &Path, dir: &Path) -> Vm {
    let vars = dir.join("OVMF_VARS.fd");
    let boot = Boot { dir: a, uefi: true, overlay: None, disk: Some(disk), scratch: dir };
    Vm::start_with(boot, &["--reboot".as_ref(), "--uefi-vars".as_ref(), vars.as_os_str()])
}

/// Polls the node's admin-detail /readyz until it runs `version`; the time it took.
fn wait_for_system(vm: &Vm, version: &str, since: Instant, limit: Duration) -> Duration {
    while since.elapsed() < limit {
        let (code, ready) = vm.http("GET", "/readyz", Some("demo:demo"), None);
        if code == 200 && ready.contains(&format!("\"system_version\":\"{version}\"")) {
            return since.elapsed();
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("not on system {version} within {limit:?}:\n{}", vm.console_text());
}

#[test]
fn a_to_b_over_the_network_keeps_the_records_and_blesses_b() {
    let Some(i) = inputs() else { return };
    let d = tempfile::tempdir().unwrap();
    let s = setup(d.path(), "120s");
    let (a, b) = (d.path().join("release-a"), d.path().join("release-b"));
    release(&s, &i, &a, EPOCH, "");
    release(&s, &i, &b, RELEASE_B, "");
    let (va, vb) = (system_version(&a), system_version(&b));
    let disk = flashed(&s, &a, d.path());
    assert_eq!(entries(&disk), ["lms-a.conf"]);

    let mut vm = power_on(&a, &disk, d.path());
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
    publish(&s, &b);
    // The node writes slot B, reboots into it (QEMU stays up), gates it.
    let on_b = wait_for_system(&vm, &vb, t, Duration::from_secs(600));
    assert!(vm.http("GET", "/readyz", Some("demo:demo"), None).1.contains("\"system_slot\":\"b\""));
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
    // Where the time went, by the guest's own clock (its updater's log).
    let c = vm.console_text();
    let at = |w: &str| logged_at(&c, w);
    if let (Some(start), Some(ready), Some(gated)) = (
        at("streaming the system image into the slot"),
        at("ready to try after a reboot"),
        at("passed its health gate; committed"),
    ) {
        let b = std::fs::read(b.join("system.bundle")).unwrap();
        eprintln!(
            "system update: download + write + read back + verity + ESP {:.1} s ({} bytes of bundle parts); reboot request to B committed {:.1} s",
            ready - start,
            b.len(),
            gated - ready
        );
    }
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

const RELEASE_C: &str = "1767398400"; // two days after EPOCH

/// Two bad systems in a row, on the real boot path. B1's kernel never
/// reaches userspace (its entry names an init that does not exist; the
/// kernel panics and `panic=10` restarts): systemd-boot spends its three
/// tries and boots A by itself. B2 boots but its node never gets ready: its
/// own updater fails the gate, marks it bad and reboots into A. A reports
/// both, with their reasons, and serves learners throughout what it runs.
#[test]
fn failed_systems_fall_back_to_a_and_are_not_retried() {
    let Some(i) = inputs() else { return };
    let d = tempfile::tempdir().unwrap();
    let s = setup(d.path(), "20s");
    let (a, b1, b2) = (d.path().join("release-a"), d.path().join("release-b1"), d.path().join("release-b2"));
    release(&s, &i, &a, EPOCH, "");
    release(&s, &i, &b1, RELEASE_B, " rdinit=/no-such-init");
    release(&s, &i, &b2, RELEASE_C, " lms.skip=lms-node");
    let (va, vb1, vb2) = (system_version(&a), system_version(&b1), system_version(&b2));
    let disk = flashed(&s, &a, d.path());
    let mut vm = power_on(&a, &disk, d.path());
    vm.wait_ready(Duration::from_secs(400));
    let (code, body) = vm.http("POST", "/xapi/statements", Some("demo:demo"), Some(&statement(RECORD, "grace")));
    assert_eq!(code, 200, "{body}");

    // The node's /metrics carries the system updater's journal.
    let metrics_has = |vm: &Vm, want: &str| vm.http("GET", "/metrics", None, None).1.contains(want);
    // Waits for `want` in /metrics, recording every change of the ESP's entries.
    let watch = |vm: &Vm, want: &str, seen: &mut Vec<Vec<String>>| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(900) {
            let e = entries(&disk);
            if seen.last() != Some(&e) {
                seen.push(e);
            }
            if metrics_has(vm, want) {
                return t.elapsed();
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("{want} not in /metrics within 900 s; entries {seen:?}\n{}", vm.console_text());
    };

    // B1: written, tried three times, never up; A again, by the boot loader alone.
    publish(&s, &b1);
    let mut seen = Vec::new();
    let want = format!("lms_updater_info{{kind=\"system\",current=\"{va}\",previous=\"\",last_rejected=\"{vb1}\"}} 1");
    let back = watch(&vm, &want, &mut seen);
    // The counter went down (the host sees some of the renames), three
    // kernels panicked, and A's updater read the spent counter.
    let flat: Vec<&String> = seen.iter().flatten().collect();
    assert!(flat.iter().any(|x| *x == "lms-b+3.conf"), "{seen:?}");
    // The console copy of the updater's log trails its journal (busybox
    // tail polls once a second): wait for the line, within bounds.
    assert!(console_shows(&vm, "gave up on it after 3 tries", Duration::from_secs(30)), "{}", vm.console_text());
    let console = vm.console_text();
    assert_eq!(console.matches("] Kernel panic - not syncing").count(), 3, "{console}");
    assert_eq!(entries(&disk), ["lms-a.conf"], "B1's spent entry is removed once reported");
    eprintln!("B1 (kernel never up): published to reported from A {back:?}; entries seen {seen:?}");

    // B2: boots, its gate fails, it marks itself bad and reboots into A.
    publish(&s, &b2);
    let mut seen = Vec::new();
    let want = format!("lms_updater_info{{kind=\"system\",current=\"{va}\",previous=\"\",last_rejected=\"{vb2}\"}} 1");
    let back = watch(&vm, &want, &mut seen);
    assert!(vm.console_text().contains("lms-node skipped (lms.skip=lms-node)"), "B2 never booted: {seen:?}");
    assert_eq!(entries(&disk), ["lms-a.conf", "lms-b+0-1.conf"], "B2 marked bad by itself");
    assert!(metrics_has(&vm, "lms_updater_rejected_versions{kind=\"system\"} 2"));
    eprintln!("B2 (gate fails): published to reported from A {back:?}; entries seen {seen:?}");
    let ready = vm.http("GET", "/readyz", Some("demo:demo"), None).1;
    assert!(
        ready.contains(&format!("\"system_version\":\"{va}\"")) && ready.contains("\"system_slot\":\"a\""),
        "{ready}"
    );
    // Neither is tried again: a few polls later the entries have not moved.
    let settled = entries(&disk);
    std::thread::sleep(Duration::from_secs(15));
    assert_eq!(entries(&disk), settled);
    let (code, body) = vm.http("GET", &format!("/xapi/statements?statementId={RECORD}"), Some("demo:demo"), None);
    assert_eq!(code, 200, "{body}");
    vm.power_button(Duration::from_secs(120));
    drop(vm);
    fsck_esp(&disk, d.path());
}

/// The power is cut (QEMU killed) right after each step of a system update
/// and while the new system blesses itself. After every cut the node comes
/// back serving on a complete system (A, or B on trial), the ESP passes
/// `fsck.fat -n`, slot B never has two entries, and the update finishes.
#[test]
fn a_power_cut_at_every_step_leaves_a_node_that_comes_back() {
    let Some(i) = inputs() else { return };
    let d = tempfile::tempdir().unwrap();
    let s = setup(d.path(), "120s");
    let (a, b) = (d.path().join("release-a"), d.path().join("release-b"));
    release(&s, &i, &a, EPOCH, "");
    release(&s, &i, &b, RELEASE_B, "");
    let (va, vb) = (system_version(&a), system_version(&b));
    let disk = flashed(&s, &a, d.path());
    let mut vm = power_on(&a, &disk, d.path());
    vm.wait_ready(Duration::from_secs(400));
    let (code, body) = vm.http("POST", "/xapi/statements", Some("demo:demo"), Some(&statement(RECORD, "grace")));
    assert_eq!(code, 200, "{body}");
    publish(&s, &b);
    let t = Instant::now();
    // Where the power goes: the updater's step markers (its log is on the
    // console), and the first byte of the image stream (mid-write).
    let cuts = [
        "step=EntryDisabled",
        "streaming the system image",
        "step=ImageWritten",
        "step=ImageVerified",
        "step=BootFilesWritten",
        "step=TrialRecorded",
        "step=Switched",
        "step=Blessed",
    ];
    // The update runs on while the test watches: a cut lands after the
    // latest marker this boot has shown, and the next cut waits for a later one.
    let mut next = 0;
    let mut done = Vec::new();
    while next < cuts.len() {
        let seen = Instant::now();
        let cut = loop {
            let text = vm.console_text();
            let plain = text.replace("\u{1b}[3m", "").replace("\u{1b}[0m", "").replace("\u{1b}[2m", "");
            let latest = (next..cuts.len()).rev().find(|&k| {
                let m = cuts[k];
                plain.lines().any(|l| l.contains(m) && (m.starts_with("streaming") || l.contains("kind=\"system\"")))
            });
            if let Some(k) = latest {
                next = k + 1;
                break cuts[k];
            }
            assert!(seen.elapsed() < Duration::from_secs(600), "never reached {}:\n{text}", cuts[next]);
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(vm); // the power cut
        done.push(cut);
        assert!(entries(&disk).iter().filter(|e| e.starts_with("lms-b")).count() <= 1, "{cut}: {:?}", entries(&disk));
        // Cut inside an ESP write, FAT may be left marked dirty (lms-init's
        // fsck.fat -a clears it at the next boot); anything else is damage.
        let (_, report) = fsck_report(&disk, d.path());
        let damage: Vec<&str> = report
            .lines()
            .filter(|l| {
                !(l.starts_with("fsck.fat ")
                    || l.contains("Dirty bit is set")
                    || l.contains("Automatically removing dirty bit")
                    || l.contains("Leaving filesystem unchanged")
                    || l.contains(" files, "))
            })
            .collect();
        assert!(damage.is_empty(), "the ESP after the cut at {cut}:\n{report}");
        vm = power_on(&a, &disk, d.path());
        vm.wait_ready(Duration::from_secs(400));
        let ready = vm.http("GET", "/readyz", Some("demo:demo"), None).1;
        let on_a = ready.contains(&format!("\"system_version\":\"{va}\"")) && ready.contains("\"system_slot\":\"a\"");
        let on_b = ready.contains(&format!("\"system_version\":\"{vb}\"")) && ready.contains("\"system_slot\":\"b\"");
        assert!(on_a || on_b, "after the cut at {cut}: {ready}");
        eprintln!(
            "cut at {cut}: back on {} ({:?} since publish); entries {:?}",
            if on_a { "A" } else { "B" },
            t.elapsed(),
            entries(&disk)
        );
    }
    // The update finishes by itself: B blessed, committed, records there.
    let until = Instant::now() + Duration::from_secs(300);
    while entries(&disk) != ["lms-a.conf", "lms-b.conf"] {
        assert!(
            Instant::now() < until,
            "B never committed after the cuts: {:?}\n{}",
            entries(&disk),
            vm.console_text()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    wait_for_system(&vm, &vb, Instant::now(), Duration::from_secs(120));
    let (code, body) = vm.http("GET", &format!("/xapi/statements?statementId={RECORD}"), Some("demo:demo"), None);
    assert_eq!(code, 200, "{body}");
    eprintln!("{} power cuts ({done:?}), then committed {:?} after publish", done.len(), t.elapsed());
    assert!(done.len() >= 5, "too few distinct cut points: {done:?}");
    vm.power_button(Duration::from_secs(120));
    drop(vm);
    fsck_esp(&disk, d.path());
}
