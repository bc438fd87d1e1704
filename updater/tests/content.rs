//! The content kind through the one engine: only the files a node lacks
//! are downloaded (counted), every byte is verified, a crash at any step
//! leaves a complete content version, a failed gate rolls back, a content
//! bundle file installs from a USB stick, and a slow content download does
//! not hold up a module update.

use ed25519_dalek::SigningKey;
use lms_updater::kinds::content::Content;
use lms_updater::kinds::modules::Modules;
use lms_updater::node::NodeControl;
use lms_updater::repo::{DirRepo, Transport};
use lms_updater::{Outcome, STEPS, Step, UpdateError, Updater};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

/// lms-node as the updater sees it: /readyz reports the content version
/// `current` holds (unless it is one it cannot serve) and the module
/// version of its module directory.
struct ModelNode {
    content: PathBuf,
    modules: PathBuf,
    broken: Arc<Mutex<Vec<String>>>,
}

impl NodeControl for ModelNode {
    fn reload(&self) -> Result<(), String> {
        Ok(())
    }
    fn ready_version(&self) -> Result<Option<String>, String> {
        let Ok(b) = std::fs::read(self.modules.join("current/manifest.json")) else { return Ok(None) };
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        Ok(v["bundle_version"].as_str().map(str::to_string))
    }
    fn ready_content_version(&self) -> Result<Option<String>, String> {
        let Ok(b) = std::fs::read(self.content.join("current/.content.json")) else { return Ok(None) };
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        let version = v["content_version"].as_str().unwrap().to_string();
        Ok((!self.broken.lock().unwrap().contains(&version)).then_some(version))
    }
}

/// A repository that counts the bytes it hands out and can be slowed down.
struct Counting {
    inner: DirRepo,
    bytes: Arc<AtomicU64>,
    delay: Duration,
}

impl Transport for Counting {
    fn fetch(&self, rel: &str, cap: u64) -> Result<Vec<u8>, String> {
        let b = self.inner.fetch(rel, cap)?;
        self.bytes.fetch_add(b.len() as u64, Ordering::SeqCst);
        Ok(b)
    }
    fn download(&self, rel: &str, out: &mut dyn std::io::Write, have: u64, total: u64) -> Result<u64, String> {
        std::thread::sleep(self.delay);
        let n = self.inner.download(rel, out, have, total)?;
        self.bytes.fetch_add(n - have, Ordering::SeqCst);
        Ok(n)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

struct World {
    dir: tempfile::TempDir,
    broken: Arc<Mutex<Vec<String>>>,
    bytes: Arc<AtomicU64>,
}

const VIDEO: usize = 300_000;

impl World {
    fn new() -> World {
        World { dir: tempfile::tempdir().unwrap(), broken: Arc::default(), bytes: Arc::default() }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    /// A content pack whose lesson text is `lesson`, bundled as `version`.
    fn bundle(&self, version: &str, lesson: &str) -> PathBuf {
        let pack = self.path(&format!("pack-{version}"));
        std::fs::create_dir_all(pack.join("packages/geo/files/media")).unwrap();
        std::fs::write(pack.join("science.toml"), "id = \"science\"\n").unwrap();
        std::fs::write(pack.join("packages/geo/course.json"), "{\"id\": \"geo\"}").unwrap();
        std::fs::write(pack.join("packages/geo/files/index.html"), lesson).unwrap();
        std::fs::write(pack.join("packages/geo/files/media/rain.mp4"), vec![3u8; VIDEO]).unwrap();
        let out = self.path(&format!("content-{version}.bundle"));
        lms_bundle::content::create(&pack, version, vec!["geo".into(), "science".into()], &key(), &out).unwrap();
        out
    }
    fn publish(&self, version: &str, lesson: &str) {
        let b = self.bundle(version, lesson);
        let week = Duration::from_secs(7 * 86400);
        lms_bundle::content::publish(&self.path("repo"), &b, "content-stable", &key(), week, 100).unwrap();
    }
    fn updater(&self, delay: Duration) -> Updater {
        Updater {
            payload: Box::new(Content::default()),
            layout: lms_updater::state::Layout { root: self.path("content") },
            channel: "content-stable".into(),
            node_id: "edge-001".into(),
            health_timeout: Duration::from_millis(400),
            trusted: vec![key().verifying_key()],
            transport: Box::new(Counting { inner: DirRepo(self.path("repo")), bytes: self.bytes.clone(), delay }),
            node: Box::new(ModelNode {
                content: self.path("content"),
                modules: self.path("modules"),
                broken: self.broken.clone(),
            }),
            limits: Default::default(),
            crash_at: None,
            step_pause: Duration::ZERO,
            reboot: lms_updater::reboot::Reboot::immediate(std::env::temp_dir().join("lms-updater-test-reboot")),
            clock: time::OffsetDateTime::now_utc,
        }
    }
    fn downloaded(&self) -> u64 {
        self.bytes.swap(0, Ordering::SeqCst)
    }
    fn manifest_size(&self, version: &str) -> u64 {
        std::fs::metadata(self.path(&format!("repo/content/lms-content-{version}.json"))).unwrap().len()
    }
}

#[test]
fn an_update_downloads_only_the_files_the_node_lacks() {
    let w = World::new();
    w.publish("1.0.0", "<h1>Rocks</h1>");
    let u = w.updater(Duration::ZERO);
    assert_eq!(u.check().unwrap(), Outcome::Installed { version: "1.0.0".into() });
    let first = w.downloaded();
    assert!(first > VIDEO as u64, "{first}");
    assert_eq!(u.verify_current().unwrap().as_deref(), Some("1.0.0"));
    let current = std::fs::canonicalize(u.layout.current()).unwrap();
    assert_eq!(std::fs::read_to_string(current.join("packages/geo/files/index.html")).unwrap(), "<h1>Rocks</h1>");

    // A one-word fix: the manifest, its signature and the one changed file.
    w.publish("1.0.1", "<h1>Rock</h1>");
    assert_eq!(u.check().unwrap(), Outcome::Installed { version: "1.0.1".into() });
    let second = w.downloaded();
    let channel_meta = std::fs::metadata(w.path("repo/channels/content-stable.json")).unwrap().len() + 64;
    let expected = channel_meta + w.manifest_size("1.0.1") + 64 + "<h1>Rock</h1>".len() as u64;
    eprintln!("content update bytes: first install {first}, one-file fix {second} (expected {expected})");
    assert_eq!(second, expected, "the one-file fix downloaded more than that file");
    let s = u.status_json().unwrap();
    assert_eq!(
        (s["kind"].as_str(), s["current"]["version"].as_str(), s["previous"]["version"].as_str()),
        (Some("content"), Some("1.0.1"), Some("1.0.0"))
    );
    // The reused video is the installed file, linked, not a second copy.
    let current = std::fs::canonicalize(u.layout.current()).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert!(std::fs::metadata(current.join("packages/geo/files/media/rain.mp4")).unwrap().nlink() >= 2);
}

#[test]
fn tampered_files_another_key_and_a_downgrade_are_refused() {
    let w = World::new();
    w.publish("1.0.0", "<h1>Rocks</h1>");
    let u = w.updater(Duration::ZERO);
    u.check().unwrap();
    w.publish("1.1.0", "<h1>Rocks and soil</h1>");
    // The changed file, altered in the repository after signing.
    let blob = w.path(&format!("repo/blobs/{}", lms_bundle::sha256_hex(b"<h1>Rocks and soil</h1>")));
    std::fs::write(&blob, "<h1>Rocks and SOIL</h1>").unwrap();
    let err = u.check().unwrap_err().to_string();
    assert!(err.contains("sha256"), "{err}");
    assert_eq!(u.verify_current().unwrap().as_deref(), Some("1.0.0"));
    assert!(!u.layout.staging().exists());

    // A node that trusts another key takes nothing.
    let mut stranger = w.updater(Duration::ZERO);
    stranger.trusted = vec![SigningKey::from_bytes(&[1; 32]).verifying_key()];
    assert!(matches!(stranger.check(), Err(UpdateError::Bundle(lms_bundle::BundleError::Signature { .. }))));

    // A content bundle file older than what is installed.
    std::fs::write(&blob, "<h1>Rocks and soil</h1>").unwrap();
    u.check().unwrap();
    let old = w.bundle("1.0.5", "<h1>Old</h1>");
    let err = u.install(&old).unwrap_err().to_string();
    assert!(err.contains("not above 1.1.0"), "{err}");
    assert_eq!(u.verify_current().unwrap().as_deref(), Some("1.1.0"));
}

#[test]
fn a_failed_gate_rolls_back_and_a_usb_bundle_installs() {
    let w = World::new();
    let u = w.updater(Duration::ZERO);
    // From a USB stick: a content bundle file, no network.
    let usb = w.bundle("1.0.0", "<h1>Rocks</h1>");
    assert_eq!(u.install(&usb).unwrap(), Outcome::Installed { version: "1.0.0".into() });
    assert_eq!(u.verify_current().unwrap().as_deref(), Some("1.0.0"));
    assert_eq!(w.downloaded(), 0);
    // The node cannot serve 2.0.0: back to 1.0.0, and 2.0.0 is not tried again.
    w.broken.lock().unwrap().push("2.0.0".into());
    w.publish("2.0.0", "<h1>Broken</h1>");
    assert!(matches!(u.check().unwrap(), Outcome::RolledBack { version, .. } if version == "2.0.0"));
    assert_eq!(u.verify_current().unwrap().as_deref(), Some("1.0.0"));
    assert!(matches!(u.check().unwrap(), Outcome::UpToDate { .. }));
}

#[test]
fn a_crash_at_every_step_leaves_a_complete_content_version() {
    for step in STEPS {
        let w = World::new();
        w.publish("1.0.0", "<h1>Rocks</h1>");
        w.updater(Duration::ZERO).check().unwrap();
        w.publish("2.0.0", "<h1>Rocks and soil</h1>");
        let mut dying = w.updater(Duration::ZERO);
        dying.crash_at = Some(step);
        assert!(matches!(dying.check(), Err(UpdateError::Crashed(s)) if s == step), "{step:?}");
        let u = w.updater(Duration::ZERO);
        u.recover().unwrap();
        let serving = u.verify_current().unwrap_or_else(|e| panic!("{step:?}: current broken: {e}"));
        let committed = matches!(step, Step::Committed | Step::PreviousLinked | Step::Collected);
        assert_eq!(serving.as_deref(), Some(if committed { "2.0.0" } else { "1.0.0" }), "{step:?}");
        assert!(!u.layout.staging().exists(), "{step:?}");
        // A trial cut short is rolled back and tried again: 2.0.0 either way.
        u.check().unwrap();
        assert_eq!(u.verify_current().unwrap().as_deref(), Some("2.0.0"), "{step:?}");
    }
}

/// Modules and content keep their own journals and slots: a module update
/// completes while a slow content download is still running.
#[test]
fn a_slow_content_download_does_not_hold_up_a_module_update() {
    let w = World::new();
    w.publish("1.0.0", "<h1>Rocks</h1>");
    // A module channel in the same repository.
    let src = w.path("modules-src");
    lms_bundle::testing::module_dir(&src, "1.0.0");
    let mb = w.path("m.bundle");
    lms_bundle::create(&src, "1.0.0", &key(), &mb).unwrap();
    lms_bundle::channel::publish(&w.path("repo"), &mb, "stable", &key(), Duration::from_secs(3600), 100).unwrap();

    let content = w.updater(Duration::from_millis(1500));
    let slow = std::thread::spawn(move || content.check());
    std::thread::sleep(Duration::from_millis(200));
    let mut modules = w.updater(Duration::ZERO);
    modules.payload = Box::new(Modules);
    modules.layout = lms_updater::state::Layout { root: w.path("modules") };
    modules.channel = "stable".into();
    let started = std::time::Instant::now();
    assert_eq!(modules.check().unwrap(), Outcome::Installed { version: "1.0.0".into() });
    let took = started.elapsed();
    assert!(!slow.is_finished(), "the content download was not slow enough to show anything");
    assert_eq!(slow.join().unwrap().unwrap(), Outcome::Installed { version: "1.0.0".into() });
    eprintln!("module update took {took:?} while the content download ran");
}

/// An installed file damaged on disk is not reused: the update fetches it
/// again instead of failing (and refusing the version) for ever.
#[test]
fn a_damaged_installed_file_is_downloaded_again() {
    let w = World::new();
    w.publish("1.0.0", "<h1>Rocks</h1>");
    let u = w.updater(Duration::ZERO);
    u.check().unwrap();
    let current = std::fs::canonicalize(u.layout.current()).unwrap();
    std::fs::write(current.join("packages/geo/files/media/rain.mp4"), b"bit rot").unwrap();
    w.downloaded();
    w.publish("1.1.0", "<h1>Rocks and soil</h1>");
    assert_eq!(u.check().unwrap(), Outcome::Installed { version: "1.1.0".into() });
    assert!(w.downloaded() > VIDEO as u64, "the damaged video was not fetched again");
    assert_eq!(u.verify_current().unwrap().as_deref(), Some("1.1.0"));
}
