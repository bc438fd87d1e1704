//! Content bundles: signed manifest of every file, blobs by sha256; a
//! published v2 stores only the blobs v1 did not have; tampering, an
//! unknown key and a downgrade are refused before anything is written.

use lms_bundle::content::{self, ContentLimits};
use std::path::Path;

fn key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

fn pack(dir: &Path, lesson: &str) {
    std::fs::create_dir_all(dir.join("packages/geo/files/au")).unwrap();
    std::fs::write(dir.join("science.toml"), "id = \"science\"\n").unwrap();
    std::fs::write(dir.join("packages/geo/course.json"), "{}").unwrap();
    std::fs::write(dir.join("packages/geo/files/au/index.html"), lesson).unwrap();
    std::fs::write(dir.join("packages/geo/files/au/video one.mp4"), vec![5u8; 100_000]).unwrap();
    // The same bytes twice travel once.
    std::fs::write(dir.join("packages/geo/files/au/copy.mp4"), vec![5u8; 100_000]).unwrap();
    std::fs::create_dir_all(dir.join(".staging")).unwrap();
    std::fs::write(dir.join(".staging/leftover"), "not content").unwrap();
}

fn blobs(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn bundle_publish_and_a_second_version_adds_only_what_changed() {
    let d = tempfile::tempdir().unwrap();
    let (p1, p2, repo) = (d.path().join("p1"), d.path().join("p2"), d.path().join("repo"));
    pack(&p1, "<h1>Rocks</h1>");
    pack(&p2, "<h1>Rocks and soil</h1>");
    let k = key(7);
    let b1 = d.path().join("c1.bundle");
    let m = content::create(&p1, "1.0.0", vec!["geo".into(), "science".into()], &k, &b1).unwrap();
    assert_eq!(m.files.len(), 5, "{:?}", m.files);
    assert!(m.files.iter().all(|f| !f.path.starts_with(".staging")));
    assert!(m.files.iter().any(|f| f.path == "packages/geo/files/au/video one.mp4"));
    assert!(content::is_content_bundle(&b1));
    let mut seen = Vec::new();
    let (read, _, _) = content::read_bundle(&b1, &[k.verifying_key()], &ContentLimits::default(), |sha, r| {
        std::io::copy(r, &mut std::io::sink()).unwrap();
        seen.push(sha.to_string());
        Ok(())
    })
    .unwrap();
    assert_eq!(read, m);
    assert_eq!(seen.len(), 4, "the two identical videos are one blob");

    let week = std::time::Duration::from_secs(7 * 86400);
    let meta = content::publish(&repo, &b1, "content-stable", &k, week, 100).unwrap();
    assert_eq!((meta.bundle.version.as_str(), meta.bundle.path.as_str()), ("1.0.0", "content/lms-content-1.0.0.json"));
    assert_eq!(meta.bundle.sha256, lms_bundle::sha256_hex(&std::fs::read(repo.join(&meta.bundle.path)).unwrap()));
    let after_v1 = blobs(&repo);
    assert_eq!(after_v1.len(), 4);

    let b2 = d.path().join("c2.bundle");
    content::create(&p2, "1.1.0", vec!["geo".into(), "science".into()], &k, &b2).unwrap();
    let meta2 = content::publish(&repo, &b2, "content-stable", &k, week, 100).unwrap();
    assert_eq!(meta2.metadata_version, 2);
    let new: Vec<String> = blobs(&repo).into_iter().filter(|b| !after_v1.contains(b)).collect();
    assert_eq!(new, [lms_bundle::sha256_hex(b"<h1>Rocks and soil</h1>")], "only the changed file is new");

    // Not above what the channel offers, or signed by another key: refused, nothing written.
    let before = blobs(&repo);
    let err = content::publish(&repo, &b1, "content-stable", &k, week, 100).unwrap_err().to_string();
    assert!(err.contains("already offers 1.1.0"), "{err}");
    let b3 = d.path().join("c3.bundle");
    pack(&p1, "<h1>Rocks, soil and sand</h1>");
    content::create(&p1, "1.2.0", vec![], &key(8), &b3).unwrap();
    let err = content::publish(&repo, &b3, "content-stable", &k, week, 100).unwrap_err().to_string();
    assert!(err.contains("signature"), "{err}");
    assert_eq!(blobs(&repo), before);
}

#[test]
fn a_tampered_bundle_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let p1 = d.path().join("p1");
    pack(&p1, "<h1>Rocks</h1>");
    let k = key(7);
    let b = d.path().join("c.bundle");
    content::create(&p1, "1.0.0", vec![], &k, &b).unwrap();
    let bytes = std::fs::read(&b).unwrap();
    let flip = |needle: &[u8], with: &[u8]| {
        let at = bytes.windows(needle.len()).position(|w| w == needle).expect("needle");
        let mut t = bytes.clone();
        t[at..at + with.len()].copy_from_slice(with);
        let path = d.path().join("t.bundle");
        std::fs::write(&path, t).unwrap();
        let repo = d.path().join("repo-t");
        let r = content::publish(&repo, &path, "c", &k, std::time::Duration::from_secs(60), 100);
        (r.map(|_| ()).unwrap_err().to_string(), repo)
    };
    // A blob's bytes changed: its hash no longer matches its name.
    let (err, repo) = flip(b"<h1>Rocks</h1>", b"<h1>Rocky</h1>");
    assert!(err.contains("sha256"), "{err}");
    assert!(std::fs::read_dir(repo.join("blobs")).unwrap().next().is_none(), "a bad blob was kept");
    assert!(!repo.join("channels").exists());
    // The manifest changed: its signature fails before it is parsed.
    let (err, _) = flip(b"\"content_version\": \"1.0.0\"", b"\"content_version\": \"9.0.0\"");
    assert!(err.contains("signature"), "{err}");
}

#[test]
fn manifests_with_unsafe_paths_or_over_limits_are_refused() {
    let k = key(1);
    let entry = |path: &str, size: u64| serde_json::json!({"path": path, "size": size, "sha256": "a".repeat(64)});
    let check = |files: Vec<serde_json::Value>, limits: &ContentLimits, expect: &str| {
        let m = serde_json::json!({"format": 1, "content_version": "1.0.0", "created": "2026-01-01T00:00:00Z", "courses": [], "files": files});
        let bytes = serde_json::to_vec(&m).unwrap();
        let sig = lms_bundle::keys::sign(&k, &bytes);
        let err = content::verify_manifest(&bytes, &sig, &[k.verifying_key()], limits).unwrap_err().to_string();
        assert!(err.contains(expect), "{err}");
    };
    let l = ContentLimits::default();
    check(vec![entry("../etc/passwd", 1)], &l, "not a safe relative path");
    check(vec![entry("/abs", 1)], &l, "not a safe relative path");
    check(vec![entry("a", 1), entry("a", 1)], &l, "listed twice");
    check(vec![entry("a", 1), entry("a/b", 1)], &l, "lies inside a");
    check(vec![entry("big.mp4", 5 << 30)], &l, "over the");
    let small = ContentLimits { max_total_bytes: 10, ..ContentLimits::default() };
    check(vec![entry("a", 6), entry("b", 6)], &small, "the content is 12 bytes");
}
