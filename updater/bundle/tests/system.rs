//! System bundles: signed manifest of kernel, initramfs and the verity'd
//! system image; published as blobs beside a manifest; tampering, an
//! unknown key, a bad manifest and a version not above the channel's are
//! refused.

use lms_bundle::system::{self, IMAGE, SystemLimits, SystemManifest};
use lms_bundle::testing::system_bundle;

fn key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

#[test]
fn a_system_bundle_verifies_publishes_and_refuses_what_it_should() {
    let d = tempfile::tempdir().unwrap();
    let k = key(3);
    let b1 = system_bundle(d.path(), "1.0.1", 40, &k);
    assert!(system::is_system_bundle(&b1));
    assert!(!lms_bundle::content::is_content_bundle(&b1));
    let (m, _, _) =
        lms_bundle::blobs::read_head::<SystemManifest>(&b1, &[k.verifying_key()], &SystemLimits::default()).unwrap();
    assert_eq!(m.system_version, "1.0.1");
    assert_eq!(m.part(IMAGE).size, m.verity.total_bytes());
    assert!(m.entry_options('b').ends_with(&format!(
        "lms.slot=b lms.verity=40:{}:{}:{}",
        40 * 4096,
        m.verity.salt,
        m.verity.root_hash
    )));

    // Unknown key.
    let e = lms_bundle::blobs::read_head::<SystemManifest>(&b1, &[key(4).verifying_key()], &SystemLimits::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("signature"), "{e}");

    // A byte of the image changed inside the bundle: the read fails on its hash.
    let mut bytes = std::fs::read(&b1).unwrap();
    let at = bytes.len() - 4096 * 3;
    bytes[at] ^= 0xff;
    let tampered = d.path().join("tampered.bundle");
    std::fs::write(&tampered, &bytes).unwrap();
    let e = lms_bundle::blobs::read_bundle::<SystemManifest>(
        &tampered,
        &[k.verifying_key()],
        &SystemLimits::default(),
        |_, r| {
            std::io::copy(r, &mut std::io::sink())
                .map(|_| ())
                .map_err(|e| lms_bundle::BundleError::Layout(e.to_string()))
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sha256"), "{e}");

    // Published: manifest + blobs; the channel offers it; older is refused.
    let repo = d.path().join("repo");
    let week = std::time::Duration::from_secs(7 * 86400);
    let meta = system::publish(&repo, &b1, "system-stable", &k, week, 100).unwrap();
    assert_eq!(meta.bundle.path, "system/lms-system-1.0.1.json");
    for p in &m.parts {
        assert!(repo.join("blobs").join(&p.sha256).is_file(), "{}", p.name);
    }
    let b0 = system_bundle(d.path(), "1.0.0", 8, &k);
    let e = system::publish(&repo, &b0, "system-stable", &k, week, 100).unwrap_err().to_string();
    assert!(e.contains("not above") || e.contains("1.0.1"), "{e}");
    let e = system::publish(&repo, &tampered, "system-stable", &k, week, 100).unwrap_err().to_string();
    assert!(e.contains("sha256") || e.contains("not above"), "{e}");
}

#[test]
fn manifests_a_node_would_refuse_are_refused() {
    let k = key(5);
    let good = serde_json::json!({
        "format": 1, "system_version": "1.2.3", "created": "2026-01-01T00:00:00Z", "name": "n", "kernel": "6.1",
        "cmdline": "console=ttyS0",
        "parts": [
            {"name": "vmlinuz", "size": 10, "sha256": "a".repeat(64)},
            {"name": "initrd.img", "size": 10, "sha256": "b".repeat(64)},
            {"name": "system.img", "size": 3 * 4096 + 2 * 4096, "sha256": "c".repeat(64)},
        ],
        "verity": {"data_blocks": 3, "hash_offset": 3 * 4096, "salt": "00", "root_hash": "d".repeat(64)},
    });
    let check = |v: &serde_json::Value| {
        let bytes = serde_json::to_vec(v).unwrap();
        let sig = lms_bundle::keys::sign(&k, &bytes);
        system::verify_manifest(&bytes, &sig, &[k.verifying_key()], &SystemLimits::default()).map_err(|e| e.to_string())
    };
    check(&good).unwrap();
    let cases: [(&str, serde_json::Value, &str); 6] = [
        ("/system_version", "1.2".into(), "system_version"),
        ("/parts/0/name", "bzImage".into(), "exactly"),
        ("/parts/1/sha256", "x".into(), "sha256"),
        ("/parts/2/size", (4096 * 6).into(), "verity tree ends"),
        ("/verity/root_hash", "abc".into(), "root_hash"),
        ("/cmdline", "a\ninit=/bin/sh".into(), "one line"),
    ];
    for (ptr, value, want) in cases {
        let mut v = good.clone();
        *v.pointer_mut(ptr).unwrap() = value;
        let e = check(&v).unwrap_err();
        assert!(e.contains(want), "{ptr}: {e}");
    }
}
