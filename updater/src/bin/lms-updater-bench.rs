//! `lms-updater-bench`: times the update path on this machine: verify and
//! stage a 20 MB bundle, the atomic swap of `current`, and a full rollback
//! decision (switch back, reload, old version ready) once the health gate
//! has given up. Uses a model node that answers at once, so the rollback
//! figure is the updater's own cost, not lms-node's reload time. Then a
//! content update: the factory courses plus a 12 MiB video installed, and a
//! one-lesson fix, with the bytes each downloads against the bundle's size.

use lms_updater::node::NodeControl;
use lms_updater::state::Layout;
use std::path::Path;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Instant0;
impl NodeControl for Instant0 {
    fn reload(&self) -> Result<(), String> {
        Ok(())
    }
    fn ready_version(&self) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// Incompressible bytes, like compiled wasm and media in a real pack.
fn noise(bytes: usize) -> Vec<u8> {
    let mut data = vec![0u8; bytes];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    data
}

fn module_dir(dir: &Path, version: &str, bytes: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let data = noise(bytes);
    let sha = lms_bundle::sha256_hex;
    let m = serde_json::json!({"format": lms_abi::MANIFEST_FORMAT, "bundle_version": version, "abi": 1,
        "modules": [{"name": "catalog", "version": "1.0.0", "file": "catalog.wasm", "size": data.len(), "sha256": sha(&data)}]});
    std::fs::write(dir.join("catalog.wasm"), &data).unwrap();
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&m).unwrap()).unwrap();
}

fn main() {
    let dir = tempfile_dir();
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let src = dir.join("src");
    module_dir(&src, "1.0.0", 20 << 20);
    let bundle = dir.join("b.bundle");
    let t = Instant::now();
    lms_bundle::create(&src, "1.0.0", &key, &bundle).unwrap();
    println!("bundle create (20 MB payload)       {}", ms(t.elapsed()));

    let mut stage = Vec::new();
    for i in 0..5 {
        let staging = dir.join(format!("staging{i}"));
        let t = Instant::now();
        lms_bundle::verify_and_unpack(&bundle, &[key.verifying_key()], &Default::default(), &staging).unwrap();
        stage.push(t.elapsed());
    }
    println!("verify + stage 20 MB bundle         median {} of 5 (incl. syncfs)", ms(median(stage)));

    let layout = Layout { root: dir.clone() };
    std::fs::create_dir_all(layout.slots().join("a")).unwrap();
    std::fs::create_dir_all(layout.slots().join("b")).unwrap();
    let mut swaps = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        layout.set_link(&layout.current(), Some(if i % 2 == 0 { "a" } else { "b" })).unwrap();
        swaps.push(t.elapsed());
    }
    println!("swap of current (rename + dir fsync) median {} of 200", ms(median(swaps)));

    let node = Instant0;
    let mut rollbacks = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        layout.set_link(&layout.current(), Some("a")).unwrap();
        node.reload().unwrap();
        let _ = node.ready_version();
        rollbacks.push(t.elapsed());
    }
    println!(
        "rollback decision (switch + reload)  median {} of 50 (model node answers at once)",
        ms(median(rollbacks))
    );
    content_update(&dir, &key);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A repository that counts the bytes it hands out.
struct Counting(lms_updater::repo::DirRepo, std::sync::Arc<std::sync::atomic::AtomicU64>);

impl lms_updater::repo::Transport for Counting {
    fn fetch(&self, rel: &str, cap: u64) -> Result<Vec<u8>, String> {
        let b = self.0.fetch(rel, cap)?;
        self.1.fetch_add(b.len() as u64, std::sync::atomic::Ordering::SeqCst);
        Ok(b)
    }
    fn download(&self, rel: &str, out: &mut dyn std::io::Write, have: u64, total: u64) -> Result<u64, String> {
        let n = self.0.download(rel, out, have, total)?;
        self.1.fetch_add(n - have, std::sync::atomic::Ordering::SeqCst);
        Ok(n)
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// Reports the content version `current` holds, at once.
struct ContentNode(std::path::PathBuf);
impl NodeControl for ContentNode {
    fn reload(&self) -> Result<(), String> {
        Ok(())
    }
    fn ready_version(&self) -> Result<Option<String>, String> {
        Ok(None)
    }
    fn ready_content_version(&self) -> Result<Option<String>, String> {
        let b = std::fs::read(self.0.join("current/.content.json")).map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_slice(&b).map_err(|e| e.to_string())?;
        Ok(v["content_version"].as_str().map(str::to_string))
    }
}

/// The factory courses and a 12 MiB video, at `version`, with `fix`
/// appended to one lesson's course file.
fn content_pack(dir: &Path, video: &[u8], fix: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../appliance/content");
    std::fs::create_dir_all(dir.join("courses")).unwrap();
    std::fs::create_dir_all(dir.join("packages/rain/files")).unwrap();
    std::fs::copy(src.join("pack.toml"), dir.join("pack.toml")).unwrap();
    // The course files only: the bench's node does not check the pack.
    for e in std::fs::read_dir(src.join("courses")).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            continue;
        }
        let mut text = std::fs::read_to_string(e.path()).unwrap();
        if e.file_name() == "science.toml" {
            text.push_str(fix);
        }
        std::fs::write(dir.join("courses").join(e.file_name()), text).unwrap();
    }
    std::fs::write(dir.join("packages/rain/course.json"), "{}").unwrap();
    std::fs::write(dir.join("packages/rain/files/rain.mp4"), video).unwrap();
}

fn content_update(dir: &Path, key: &ed25519_dalek::SigningKey) {
    use std::sync::atomic::Ordering;
    let video = noise(12 << 20);
    let (mut first, mut fix, mut first_bytes, mut fix_bytes, mut bundle_size) = (vec![], vec![], 0, 0, 0);
    for run in 0..3 {
        let root = dir.join(format!("content-run{run}"));
        let repo = root.join("repo");
        let publish = |version: &str, fix: &str| {
            let pack = root.join(format!("pack-{version}"));
            content_pack(&pack, &video, fix);
            let b = root.join(format!("{version}.bundle"));
            lms_bundle::content::create(&pack, version, vec![], key, &b).unwrap();
            lms_bundle::content::publish(&repo, &b, "content-stable", key, Duration::from_secs(3600), 100).unwrap();
            std::fs::metadata(&b).unwrap().len()
        };
        let bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let u = lms_updater::Updater {
            payload: Box::new(lms_updater::kinds::content::Content::default()),
            layout: Layout { root: root.join("content") },
            channel: "content-stable".into(),
            node_id: "bench".into(),
            health_timeout: Duration::from_secs(5),
            trusted: vec![key.verifying_key()],
            transport: Box::new(Counting(lms_updater::repo::DirRepo(repo.clone()), bytes.clone())),
            node: Box::new(ContentNode(root.join("content"))),
            limits: Default::default(),
            crash_at: None,
            step_pause: Duration::ZERO,
            reboot: lms_updater::reboot::Reboot::immediate(root.join("reboot")),
            clock: time::OffsetDateTime::now_utc,
        };
        publish("1.0.0", "");
        let t = Instant::now();
        u.check().unwrap();
        first.push(t.elapsed());
        first_bytes = bytes.swap(0, Ordering::SeqCst);
        bundle_size = publish("1.0.1", "\n# a one-line fix\n");
        let t = Instant::now();
        u.check().unwrap();
        fix.push(t.elapsed());
        fix_bytes = bytes.swap(0, Ordering::SeqCst);
        let _ = std::fs::remove_dir_all(&root);
    }
    println!(
        "content first install (factory courses + 12 MiB video) median {} of 3, {first_bytes} bytes downloaded",
        ms(median(first))
    );
    println!(
        "content one-file fix                 median {} of 3, {fix_bytes} bytes downloaded of a {bundle_size}-byte bundle ({:.3}%)",
        ms(median(fix)),
        fix_bytes as f64 * 100.0 / bundle_size as f64
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("lms-updater-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
