//! lms-updater against a local-directory repository and a model of lms-node
//! whose /readyz reports the bundle version `current` points at (the real
//! node is in e2e.rs). Covers the version floor, replayed and expired
//! metadata, the health gate, a crash at every install step, and random
//! orders of events.

use ed25519_dalek::SigningKey;
use lms_bundle::channel::{BundleRef, ChannelMeta};
use lms_bundle::keys;
use lms_bundle::testing::module_dir;
use lms_updater::node::NodeControl;
use lms_updater::repo::DirRepo;
use lms_updater::{Outcome, STEPS, Step, UpdateError, Updater};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// What lms-node does, as far as the updater can see: after a reload its
/// /readyz reports the version `current` points at, unless that version is
/// one it cannot run.
struct ModelNode {
    current: PathBuf,
    broken: Arc<Mutex<Vec<String>>>,
}

impl NodeControl for ModelNode {
    fn reload(&self) -> Result<(), String> {
        Ok(())
    }
    fn ready_version(&self) -> Result<Option<String>, String> {
        let Ok(bytes) = std::fs::read(self.current.join("manifest.json")) else { return Ok(None) };
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        let version = v["bundle_version"].as_str().unwrap().to_string();
        Ok((!self.broken.lock().unwrap().contains(&version)).then_some(version))
    }
}

struct World {
    dir: tempfile::TempDir,
    broken: Arc<Mutex<Vec<String>>>,
    meta_version: u64,
}

impl World {
    fn new() -> World {
        World { dir: tempfile::tempdir().unwrap(), broken: Arc::new(Mutex::new(vec![])), meta_version: 0 }
    }
    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }
    fn modules(&self) -> PathBuf {
        self.dir.path().join("modules")
    }
    fn bundle(&self, version: &str) -> PathBuf {
        let src = self.dir.path().join(format!("src-{version}"));
        module_dir(&src, version);
        let out = self.dir.path().join(format!("{version}.bundle"));
        lms_bundle::create(&src, version, &key(), &out).unwrap();
        out
    }
    /// What `lms-image publish` writes.
    fn publish(&mut self, version: &str, expires_in: i64) {
        let b = self.bundle(version);
        let bytes = std::fs::read(&b).unwrap();
        let rel = format!("bundles/lms-modules-{version}.bundle");
        std::fs::create_dir_all(self.repo().join("bundles")).unwrap();
        std::fs::create_dir_all(self.repo().join("channels")).unwrap();
        std::fs::write(self.repo().join(&rel), &bytes).unwrap();
        self.meta_version += 1;
        let now = time::OffsetDateTime::now_utc();
        let meta = ChannelMeta {
            format: 1,
            channel: "stable".into(),
            metadata_version: self.meta_version,
            created: lms_bundle::rfc3339(now),
            expires: lms_bundle::rfc3339(now + time::Duration::seconds(expires_in)),
            rollout_percent: 100,
            bundle: BundleRef {
                version: version.into(),
                path: rel,
                size: bytes.len() as u64,
                sha256: lms_bundle::sha256_hex(&bytes),
            },
        };
        let m = serde_json::to_vec(&meta).unwrap();
        std::fs::write(self.repo().join("channels/stable.json.sig"), keys::sign(&key(), &m)).unwrap();
        std::fs::write(self.repo().join("channels/stable.json"), m).unwrap();
    }
    fn updater(&self) -> Updater {
        Updater {
            payload: Box::new(lms_updater::kinds::modules::Modules),
            layout: lms_updater::state::Layout { root: self.modules() },
            channel: "stable".into(),
            node_id: "edge-001".into(),
            health_timeout: Duration::from_millis(400),
            trusted: vec![key().verifying_key()],
            transport: Box::new(DirRepo(self.repo())),
            node: Box::new(ModelNode { current: self.modules().join("current"), broken: self.broken.clone() }),
            limits: Default::default(),
            crash_at: None,
            step_pause: Duration::ZERO,
            reboot: lms_updater::reboot::Reboot::immediate(std::env::temp_dir().join("lms-updater-test-reboot")),
            clock: time::OffsetDateTime::now_utc,
        }
    }
    fn snapshot(&self) -> (String, Option<String>) {
        let u = self.updater();
        (std::fs::read_to_string(u.layout.state_file()).unwrap_or_default(), u.layout.link_target(&u.layout.current()))
    }
}

fn installed(v: &str) -> Outcome {
    Outcome::Installed { version: v.into() }
}

#[test]
fn installs_newer_versions_and_keeps_the_previous() {
    let mut w = World::new();
    w.publish("1.0.0", 3600);
    let u = w.updater();
    assert_eq!(u.check().unwrap(), installed("1.0.0"));
    assert!(matches!(u.check().unwrap(), Outcome::UpToDate { .. }));
    w.publish("1.1.0", 3600);
    assert_eq!(u.check().unwrap(), installed("1.1.0"));
    let s = u.status_json().unwrap();
    assert_eq!(s["current"]["version"], "1.1.0");
    assert_eq!(s["previous"]["version"], "1.0.0");
    assert_eq!(s["state"], "idle");
    assert_eq!(u.verify_current().unwrap().as_deref(), Some("1.1.0"));
    assert_eq!(u.layout.link_target(&u.layout.previous()).unwrap(), s["previous"]["slot"].as_str().unwrap());
    // Only current + previous are kept.
    assert_eq!(std::fs::read_dir(u.layout.slots()).unwrap().count(), 2);
    let prom = std::fs::read_to_string(u.layout.metrics_file()).unwrap();
    assert!(prom.contains("current=\"1.1.0\""));
}

#[test]
fn downgrade_is_refused_and_changes_nothing() {
    let mut w = World::new();
    w.publish("2.0.0", 3600);
    let u = w.updater();
    u.check().unwrap();
    let before = w.snapshot();
    let old = w.bundle("1.5.0");
    let e = u.install(&old).unwrap_err().to_string();
    assert!(e.contains("1.5.0") && e.contains("2.0.0"), "{e}");
    let after = w.snapshot();
    assert_eq!(before.1, after.1, "current changed");
    assert!(!u.layout.staging().exists());
    // Reinstalling the same version is no change either.
    let same = w.bundle("2.0.0");
    assert!(u.install(&same).is_err() || matches!(u.install(&same).unwrap(), Outcome::UpToDate { .. }));
}

#[test]
fn replayed_metadata_is_refused() {
    let mut w = World::new();
    w.publish("1.0.0", 3600);
    let old_meta = std::fs::read(w.repo().join("channels/stable.json")).unwrap();
    let old_sig = std::fs::read(w.repo().join("channels/stable.json.sig")).unwrap();
    let u = w.updater();
    u.check().unwrap();
    w.publish("1.1.0", 3600);
    u.check().unwrap();
    let before = w.snapshot();
    std::fs::write(w.repo().join("channels/stable.json"), old_meta).unwrap();
    std::fs::write(w.repo().join("channels/stable.json.sig"), old_sig).unwrap();
    let e = u.check().unwrap_err().to_string();
    assert!(e.contains("replayed"), "{e}");
    assert_eq!(before.1, w.snapshot().1);
    assert_eq!(u.status_json().unwrap()["last_error"].as_str().unwrap(), e);
}

#[test]
fn expired_metadata_is_refused_unless_the_clock_is_untrusted() {
    let mut w = World::new();
    w.publish("1.0.0", -60);
    let u = w.updater();
    let e = u.check().unwrap_err().to_string();
    assert!(e.contains("expired"), "{e}");
    assert!(u.verify_current().unwrap().is_none(), "nothing installed");

    // A node whose clock says 2001 cannot judge expiry; it still installs
    // only verified, newer bundles and says its clock is untrusted.
    let mut u = w.updater();
    u.clock = || time::macros::datetime!(2001-01-01 00:00 UTC);
    assert_eq!(u.check().unwrap(), installed("1.0.0"));
    assert_eq!(u.status_json().unwrap()["clock_trusted"], false);
}

#[test]
fn tampered_metadata_and_bundle_change_nothing() {
    let mut w = World::new();
    w.publish("1.0.0", 3600);
    let u = w.updater();
    u.check().unwrap();
    w.publish("1.1.0", 3600);
    let before = w.snapshot();
    let meta = w.repo().join("channels/stable.json");
    let mut bytes = std::fs::read(&meta).unwrap();
    let i = bytes.iter().position(|b| *b == b'1').unwrap();
    bytes[i] = b'9';
    std::fs::write(&meta, &bytes).unwrap();
    assert!(u.check().unwrap_err().to_string().contains("signature"));
    // Metadata intact, bundle bytes tampered: caught by the metadata's sha256.
    w.publish("1.2.0", 3600);
    let b = w.repo().join("bundles/lms-modules-1.2.0.bundle");
    let mut bytes = std::fs::read(&b).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&b, &bytes).unwrap();
    let e = u.check().unwrap_err().to_string();
    assert!(e.contains("sha256"), "{e}");
    assert_eq!(before.1, w.snapshot().1);
}

#[test]
fn a_version_that_fails_its_health_check_is_rolled_back_and_not_retried() {
    let mut w = World::new();
    w.publish("1.0.0", 3600);
    let u = w.updater();
    u.check().unwrap();
    w.broken.lock().unwrap().push("1.1.0".into());
    w.publish("1.1.0", 3600);
    match u.check().unwrap() {
        Outcome::RolledBack { version, reason } => {
            assert_eq!(version, "1.1.0");
            assert!(reason.contains("not ready"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(u.verify_current().unwrap().as_deref(), Some("1.0.0"));
    let s = u.status_json().unwrap();
    assert_eq!(s["rejected"][0]["version"], "1.1.0");
    assert!(s["last_error"].as_str().unwrap().contains("rolled back"));
    // Never retried automatically, even once it would pass.
    w.broken.lock().unwrap().clear();
    assert!(matches!(u.check().unwrap(), Outcome::UpToDate { .. }));
    assert_eq!(u.verify_current().unwrap().as_deref(), Some("1.0.0"));
    // A newer fix is taken.
    w.publish("1.1.1", 3600);
    assert_eq!(u.check().unwrap(), installed("1.1.1"));
}

#[test]
fn manual_rollback_returns_to_previous_and_keeps_the_floor() {
    let mut w = World::new();
    w.publish("1.0.0", 3600);
    let u = w.updater();
    u.check().unwrap();
    w.publish("1.1.0", 3600);
    u.check().unwrap();
    assert!(matches!(u.rollback().unwrap(), Outcome::RolledBack { .. }));
    assert_eq!(u.verify_current().unwrap().as_deref(), Some("1.0.0"));
    assert!(u.rollback().unwrap_err().to_string().contains("no previous"));
    // The rolled-back version is not taken again by the next check.
    assert!(matches!(u.check().unwrap(), Outcome::UpToDate { .. }));
    assert_eq!(u.verify_current().unwrap().as_deref(), Some("1.0.0"));
}

/// Kills the install at every step in turn; each time the next start must
/// find `current` complete and verified (rolled back when it died
/// mid-trial), and a later check must finish the job.
#[test]
fn a_crash_at_every_step_recovers_to_a_consistent_state() {
    for step in STEPS {
        let mut w = World::new();
        w.publish("1.0.0", 3600);
        w.updater().check().unwrap();
        w.publish("2.0.0", 3600);
        let mut dying = w.updater();
        dying.crash_at = Some(step);
        assert!(matches!(dying.check(), Err(UpdateError::Crashed(s)) if s == step), "{step:?}");

        let u = w.updater();
        u.recover().unwrap();
        let serving = u.verify_current().unwrap_or_else(|e| panic!("{step:?}: current broken: {e}"));
        let s = u.status_json().unwrap();
        assert_eq!(s["state"], "idle", "{step:?}");
        let in_trial = matches!(step, Step::TrialRecorded | Step::Switched | Step::Reloaded | Step::Healthy);
        let committed = matches!(step, Step::Committed | Step::PreviousLinked | Step::Collected);
        if committed {
            assert_eq!(serving.as_deref(), Some("2.0.0"), "{step:?}");
            assert_eq!(s["previous"]["version"], "1.0.0", "{step:?}");
            assert_eq!(u.layout.link_target(&u.layout.previous()).as_deref(), s["previous"]["slot"].as_str());
        } else {
            assert_eq!(serving.as_deref(), Some("1.0.0"), "{step:?}");
        }
        assert_eq!(s["rejected"].as_array().unwrap().len(), 0, "{step:?}: a cut trial is not a failed one: {s}");
        assert_eq!(s["interrupted"]["times"].as_u64(), in_trial.then_some(1), "{step:?}: {s}");
        assert!(!u.layout.staging().exists(), "{step:?}");
        let slots = std::fs::read_dir(u.layout.slots()).unwrap().count();
        assert!(slots <= 2, "{step:?}: {slots} slots kept");

        // The next cycle ends in the final state: 2.0.0 committed.
        let r = u.check().unwrap();
        assert_eq!(u.verify_current().unwrap().as_deref(), Some("2.0.0"), "{step:?}: {r:?}");
        assert!(u.status_json().unwrap()["interrupted"].is_null(), "{step:?}");
    }
}

/// A candidate whose trial is cut short again and again (it may be what
/// stops the node) is rejected at the third time, and not taken again.
#[test]
fn a_trial_cut_short_three_times_is_rejected() {
    let mut w = World::new();
    w.publish("1.0.0", 3600);
    w.updater().check().unwrap();
    w.publish("2.0.0", 3600);
    for time in 1..=3 {
        let mut dying = w.updater();
        dying.crash_at = Some(Step::Reloaded);
        assert!(matches!(dying.check(), Err(UpdateError::Crashed(Step::Reloaded))), "{time}");
        let u = w.updater();
        u.recover().unwrap();
        assert_eq!(u.verify_current().unwrap().as_deref(), Some("1.0.0"), "{time}");
        let s = u.status_json().unwrap();
        if time < 3 {
            assert_eq!(s["interrupted"]["times"], time, "{s}");
            assert!(s["rejected"].as_array().unwrap().is_empty(), "{s}");
        } else {
            assert!(s["interrupted"].is_null(), "{s}");
            assert_eq!(s["rejected"][0]["version"], "2.0.0", "{s}");
            assert!(s["rejected"][0]["reason"].as_str().unwrap().contains("cut short 3 times"), "{s}");
        }
    }
    let o = w.updater().check().unwrap();
    assert!(matches!(&o, Outcome::UpToDate { note, .. } if note.contains("rejected earlier")), "{o:?}");
}

/// Random orders of publishes, broken versions, crashes, rollbacks and
/// restarts (a fixed-seed generator, so failures reproduce). After every
/// event: `current` verifies, no trial is left open, at most two slots, and
/// the committed floor never goes down.
#[test]
fn random_orders_of_events_keep_the_invariants() {
    let mut seed: u64 = 0x5eed_1234;
    let mut rand = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut w = World::new();
    let mut next_minor = 0u64;
    let mut floor: Option<lms_bundle::Version> = None;
    for round in 0..60 {
        match rand(5) {
            0 | 1 => {
                next_minor += 1;
                let v = format!("1.{next_minor}.0");
                if rand(3) == 0 {
                    w.broken.lock().unwrap().push(v.clone());
                }
                w.publish(&v, 3600);
            }
            _ => {}
        }
        let mut u = w.updater();
        if rand(3) == 0 {
            u.crash_at = Some(STEPS[rand(STEPS.len() as u64) as usize]);
        }
        let _ = match rand(6) {
            0 => u.rollback(),
            _ => u.check(),
        };
        let u = w.updater();
        u.recover().unwrap();
        let serving = u.verify_current().unwrap_or_else(|e| panic!("round {round}: {e}"));
        let s = u.status_json().unwrap();
        assert_eq!(s["state"], "idle", "round {round}");
        assert!(std::fs::read_dir(u.layout.slots()).unwrap().count() <= 2, "round {round}");
        if let Some(v) = &serving {
            assert!(!w.broken.lock().unwrap().contains(v), "round {round}: serving broken {v}");
        }
        let f: Option<lms_bundle::Version> = s["highest_committed"].as_str().map(|v| v.parse().unwrap());
        assert!(f >= floor, "round {round}: floor went down");
        floor = f;
    }
}
