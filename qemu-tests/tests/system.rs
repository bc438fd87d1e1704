//! Over-the-air updates of the whole system on the real image: UEFI (OVMF
//! with a variable store that persists, systemd-boot from the ESP), the
//! guest rebooting itself inside QEMU. Release A is flashed and serves a
//! learner; release B's system bundle is published on `system-stable` of a
//! repository on the host; the node writes slot B, reboots into it, gates
//! and blesses it, and the learner's records are still there.

use lms_qemu_tests::system::*;
use lms_qemu_tests::*;
use std::time::{Duration, Instant};

const RECORD: &str = "7e2d7b2f-6a1f-4b68-8b6a-3c2e9d1f0b01";

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

const RELEASE_D: &str = "1767484800"; // three days after EPOCH

/// Three bad systems in a row, on the real boot path. B1's kernel never
/// reaches userspace (its entry names an init that does not exist; the
/// kernel panics and `panic=10` restarts): systemd-boot spends its three
/// tries and boots A by itself. B2 boots but its node never gets ready: its
/// own updater fails the gate, marks it bad and reboots into A. B3 hangs on
/// its way up with no panic: the watchdog restarts it until its tries are
/// spent. A reports each, with its reason, and serves learners throughout.

#[test]
fn failed_systems_fall_back_to_a_and_are_not_retried() {
    let Some(i) = inputs() else { return };
    let d = tempfile::tempdir().unwrap();
    let s = setup(d.path(), "20s");
    let (a, b1, b2) = (d.path().join("release-a"), d.path().join("release-b1"), d.path().join("release-b2"));
    release(&s, &i, &a, EPOCH, "");
    release(&s, &i, &b1, RELEASE_B, " rdinit=/no-such-init");
    release(&s, &i, &b2, RELEASE_C, " lms.skip=lms-node");
    let b3 = d.path().join("release-b3");
    release(&s, &i, &b3, RELEASE_D, " lms.hang=1 lms.watchdog=20");
    let (va, vb1, vb2, vb3) = (system_version(&a), system_version(&b1), system_version(&b2), system_version(&b3));
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
    // B3: boots, then hangs before its services with no panic (lms.hang=1):
    // only the watchdog (lms.watchdog=20) restarts it, three times; then A.
    publish(&s, &b3);
    let mut seen = Vec::new();
    let want = format!("lms_updater_info{{kind=\"system\",current=\"{va}\",previous=\"\",last_rejected=\"{vb3}\"}} 1");
    let back = watch(&vm, &want, &mut seen);
    let console = vm.console_text();
    assert_eq!(console.matches("hanging before the services (lms.hang=1)").count(), 3, "{console}");
    assert_eq!(console.matches("] Kernel panic - not syncing").count(), 3, "only B1's panics: {console}");
    assert!(metrics_has(&vm, "lms_updater_rejected_versions{kind=\"system\"} 3"));
    eprintln!("B3 (hangs, watchdog): published to reported from A {back:?}; entries seen {seen:?}");

    // None is tried again: a few polls later the entries have not moved.
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
    let s = setup_with(d.path(), "120s", "step_pause = \"3s\"");
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
    let t = &t;
    let after_cut = |cut: &str| {
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
    };
    let check = |vm: &mut Vm, cut: &str| {
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
    };
    let (mut vm, done) = power_cuts(vm, &cuts, "system", after_cut, || power_on(&a, &disk, d.path()), check);
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
    // The updater pauses 3 s after each step: nearly every marker gets its cut.
    assert!(done.len() >= 6, "too few of the {} cut points: {done:?}", cuts.len());
    vm.power_button(Duration::from_secs(120));
    drop(vm);
    fsck_esp(&disk, d.path());
}
