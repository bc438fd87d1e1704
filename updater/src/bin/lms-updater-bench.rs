//! `lms-updater-bench`: times the update path on this machine: verify and
//! stage a 20 MB bundle, the atomic swap of `current`, and a full rollback
//! decision (switch back, reload, old version ready) once the health gate
//! has given up. Uses a model node that answers at once, so the rollback
//! figure is the updater's own cost, not lms-node's reload time.

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

fn module_dir(dir: &Path, version: &str, bytes: usize) {
    std::fs::create_dir_all(dir).unwrap();
    // Incompressible, like compiled wasm and media in a real pack.
    let mut data = vec![0u8; bytes];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let content = br#"{"format":1,"docs":{}}"#;
    let sha = lms_bundle::sha256_hex;
    let m = serde_json::json!({"format": 1, "bundle_version": version, "abi": 1,
        "modules": [{"name": "catalog", "version": "1.0.0", "file": "catalog.wasm", "size": data.len(), "sha256": sha(&data)}],
        "content": {"file": "content.json", "size": content.len(), "sha256": sha(content)}});
    std::fs::write(dir.join("catalog.wasm"), &data).unwrap();
    std::fs::write(dir.join("content.json"), content).unwrap();
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
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("lms-updater-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
