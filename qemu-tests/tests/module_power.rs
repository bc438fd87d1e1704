//! Power cuts during a module update, on a flashed disk (UEFI, writes kept
//! across boots): a signed 2.0.0 is published and the power goes right
//! after each install step the updater logs. Every boot after a cut serves
//! a complete module set, 1.0.0 or 2.0.0 and nothing in between; the
//! learner's record survives; the update ends committed by itself.

use lms_qemu_tests::system::*;
use lms_qemu_tests::*;
use std::time::{Duration, Instant};

const RECORD: &str = "4c3a2b1d-7e6f-4a5b-9c8d-1e2f3a4b5c6d";

/// The bundle version the node serves, after checking a learner gets the
/// catalog and a lesson (the whole set answers).
fn serves_a_whole_set(vm: &Vm, cut: &str) -> String {
    let ready = vm.http("GET", "/readyz", Some("demo:demo"), None).1;
    let version = ["1.0.0", "2.0.0"]
        .into_iter()
        .find(|v| ready.contains(&format!("\"bundle_version\":\"{v}\"")))
        .unwrap_or_else(|| panic!("after the cut at {cut}: {ready}"));
    for path in ["/v1/courses", "/v1/courses/arithmetic/lessons/place-value"] {
        let (code, body) = vm.http("GET", path, Some("demo:demo"), None);
        assert_eq!(code, 200, "after the cut at {cut}, {path}: {body}");
    }
    version.to_string()
}

#[test]
fn a_power_cut_at_each_module_install_step_leaves_a_whole_set() {
    let Some(i) = inputs() else { return };
    let d = tempfile::tempdir().unwrap();
    // The updater pauses 3 s after each step: the cuts land where meant.
    let s = setup_with(d.path(), "120s", "step_pause = \"3s\"");
    let a = d.path().join("release-a");
    release(&s, &i, &a, EPOCH, "");
    let disk = flashed(&s, &a, d.path());
    let mut vm = power_on(&a, &disk, d.path());
    vm.wait_ready(Duration::from_secs(400));
    vm.wait_content("1.0.0", Duration::from_secs(180));
    assert_eq!(serves_a_whole_set(&vm, "none (first boot)"), "1.0.0");
    let (code, body) = vm.http("POST", "/xapi/statements", Some("demo:demo"), Some(&statement(RECORD, "lin")));
    assert_eq!(code, 200, "{body}");
    // The first boot's factory install logs the same steps, and the console
    // copy of the log trails it: the daemon's first look at the (still
    // empty) channel comes after them, so from then on every step marker
    // is the update's.
    assert!(
        console_shows(&vm, "channels/stable.json: HTTP 404", Duration::from_secs(120)),
        "the updater daemon never checked the channel:\n{}",
        vm.console_text()
    );

    let t = Instant::now();
    module_release(&i, d.path(), "2.0.0", false, &s.key, &s.repo);
    // Before the switch; during the reload (the node compiles the new
    // modules); reloaded but not yet judged; committed but not yet tidied.
    let cuts = ["step=Staged", "step=Switched", "step=Reloaded", "step=Committed"];
    let mut seen = Vec::new();
    let check = |vm: &mut Vm, cut: &str| {
        vm.wait_ready(Duration::from_secs(400));
        let v = serves_a_whole_set(vm, cut);
        eprintln!("cut at {cut}: back serving {v} ({:?} since publish)", t.elapsed());
        seen.push(v);
    };
    let (mut vm, done) = power_cuts(vm, &cuts, "modules", |_| {}, || power_on(&a, &disk, d.path()), check);
    // The update finishes by itself and stays.
    let until = Instant::now() + Duration::from_secs(300);
    while serves_a_whole_set(&vm, "the last") != "2.0.0" {
        assert!(Instant::now() < until, "2.0.0 never served after the cuts:\n{}", vm.console_text());
        std::thread::sleep(Duration::from_secs(1));
    }
    let (code, body) = vm.http("GET", &format!("/xapi/statements?statementId={RECORD}"), Some("demo:demo"), None);
    assert_eq!(code, 200, "the record did not survive: {body}");
    eprintln!("power cuts at {done:?}, boots served {seen:?}; 2.0.0 after {:?}", t.elapsed());
    assert!(done.len() >= 3, "too few of the cut points {cuts:?}: {done:?}");
    vm.power_button(Duration::from_secs(120));
    drop(vm);
    // Powered on once more: still 2.0.0 (committed, not a trial undone at boot).
    let mut vm = power_on(&a, &disk, d.path());
    vm.wait_ready(Duration::from_secs(400));
    assert_eq!(serves_a_whole_set(&vm, "after the commit"), "2.0.0");
    vm.power_button(Duration::from_secs(120));
}
