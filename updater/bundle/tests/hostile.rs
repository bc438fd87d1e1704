//! The hostile bundle corpus: one case per attack, each refused with an
//! error that names what is wrong, and the staging directory left absent.
//! The cases are built here from a valid bundle (with real signatures from
//! test keys) rather than stored as binary files, so each one shows exactly
//! which bytes are hostile.

use ed25519_dalek::SigningKey;
use flate2::write::GzEncoder;
use lms_bundle::testing::module_dir;
use lms_bundle::{BundleError, Limits, keys, verify_and_unpack};
use std::path::{Path, PathBuf};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// One raw tar entry: name written byte for byte (so `..` and friends survive).
struct Raw {
    name: String,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Option<String>,
}

fn raw(name: &str, data: &[u8]) -> Raw {
    Raw { name: name.into(), kind: tar::EntryType::Regular, data: data.to_vec(), link: None }
}

fn write_bundle(path: &Path, entries: &[Raw]) {
    let f = std::fs::File::create(path).unwrap();
    let mut b = tar::Builder::new(GzEncoder::new(f, flate2::Compression::fast()));
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let name = e.name.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(0o644);
        if let Some(l) = &e.link {
            h.set_link_name(l).unwrap();
        }
        h.set_cksum();
        b.append(&h, e.data.as_slice()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

struct Case {
    dir: tempfile::TempDir,
    files: Vec<(String, Vec<u8>)>,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        module_dir(&dir.path().join("mods"), "1.0.0");
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path().join("mods"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
            })
            .collect();
        files.sort();
        Case { dir, files }
    }

    fn manifest(&self, files: &[(String, Vec<u8>)]) -> Vec<u8> {
        let entries: Vec<_> = files
            .iter()
            .map(|(p, d)| serde_json::json!({"path": p, "size": d.len(), "sha256": lms_bundle::sha256_hex(d)}))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "format": 1, "bundle_version": "1.0.0", "abi": 1, "created": "2026-01-01T00:00:00Z", "files": entries,
        }))
        .unwrap()
    }

    /// The valid entry list: manifest, signature, payload.
    fn entries(&self, signer: &SigningKey) -> Vec<Raw> {
        let m = self.manifest(&self.files);
        let mut v = vec![raw("bundle.json", &m), raw("bundle.sig", &keys::sign(signer, &m))];
        for (p, d) in &self.files {
            v.push(raw(&format!("payload/{p}"), d));
        }
        v
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `entries` as a bundle and verifies it with the trusted key.
    fn verify(&self, entries: &[Raw], limits: &Limits) -> (Result<lms_bundle::BundleManifest, BundleError>, PathBuf) {
        let b = self.path("case.bundle");
        write_bundle(&b, entries);
        self.verify_file(&b, limits)
    }

    fn verify_file(&self, b: &Path, limits: &Limits) -> (Result<lms_bundle::BundleManifest, BundleError>, PathBuf) {
        let staging = self.path("staging");
        let _ = std::fs::remove_dir_all(&staging);
        (verify_and_unpack(b, &[key(1).verifying_key()], limits, &staging), staging)
    }
}

fn refused(case: &Case, entries: &[Raw], needle: &str) {
    refused_with(case, entries, &Limits::default(), needle)
}

fn refused_with(case: &Case, entries: &[Raw], limits: &Limits, needle: &str) {
    let (r, staging) = case.verify(entries, limits);
    let e = r.expect_err("hostile bundle accepted").to_string();
    assert!(e.contains(needle), "error {e:?} does not mention {needle:?}");
    assert!(!staging.exists(), "staging left behind after: {e}");
}

#[test]
fn the_valid_bundle_verifies() {
    let c = Case::new();
    let (r, staging) = c.verify(&c.entries(&key(1)), &Limits::default());
    let m = r.unwrap();
    assert_eq!(m.files.len(), 2, "manifest.json and the module: code only");
    assert!(staging.join("manifest.json").is_file());
}

#[test]
fn bundles_from_create_verify_and_are_reproducible() {
    let c = Case::new();
    // SAFETY: no other test in this binary reads or writes SOURCE_DATE_EPOCH.
    unsafe { std::env::set_var("SOURCE_DATE_EPOCH", "1767225600") };
    let (a, b) = (c.path("a.bundle"), c.path("b.bundle"));
    lms_bundle::create(&c.path("mods"), "1.0.0", &key(1), &a).unwrap();
    lms_bundle::create(&c.path("mods"), "1.0.0", &key(1), &b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "same inputs, different bytes");
    c.verify_file(&a, &Limits::default()).0.unwrap();
    let e = lms_bundle::create(&c.path("mods"), "2.0.0", &key(1), &c.path("c.bundle")).unwrap_err();
    assert!(e.to_string().contains("differs from bundle_version"), "{e}");
}

#[test]
fn tampered_byte() {
    let c = Case::new();
    let mut e = c.entries(&key(1));
    e[3].data[0] ^= 1; // a payload byte after signing
    refused(&c, &e, "sha256");
}

#[test]
fn tampered_manifest() {
    let c = Case::new();
    let mut e = c.entries(&key(1));
    e[0].data[5] ^= 1;
    refused(&c, &e, "signature");
}

#[test]
fn truncated() {
    let c = Case::new();
    let full = c.path("full.bundle");
    write_bundle(&full, &c.entries(&key(1)));
    let bytes = std::fs::read(&full).unwrap();
    let cut = c.path("cut.bundle");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (r, staging) = c.verify_file(&cut, &Limits::default());
    let e = r.unwrap_err().to_string();
    assert!(e.contains("byte") || e.contains("ends before") || e.contains("not in the bundle"), "{e}");
    assert!(!staging.exists());
}

#[test]
fn wrong_key() {
    let c = Case::new();
    refused(&c, &c.entries(&key(2)), "signature does not verify");
}

#[test]
fn unsigned() {
    let c = Case::new();
    let mut e = c.entries(&key(1));
    e.remove(1);
    refused(&c, &e, "expected bundle.sig");
}

#[test]
fn path_traversal_in_entry() {
    let c = Case::new();
    let mut e = c.entries(&key(1));
    e[3].name = "payload/../catalog.wasm".into();
    refused(&c, &e, "unsafe path");
    let mut e = c.entries(&key(1));
    e[3].name = "/etc/catalog.wasm".into();
    refused(&c, &e, "outside payload");
}

#[test]
fn path_traversal_in_manifest() {
    let c = Case::new();
    let mut files = c.files.clone();
    files.push(("../escape".into(), b"x".to_vec()));
    let m = c.manifest(&files);
    let e = vec![raw("bundle.json", &m), raw("bundle.sig", &keys::sign(&key(1), &m))];
    refused(&c, &e, "not a safe relative path");
}

#[test]
fn symlink() {
    let c = Case::new();
    let mut e = c.entries(&key(1));
    e[3] = Raw {
        name: "payload/catalog.wasm".into(),
        kind: tar::EntryType::Symlink,
        data: vec![],
        link: Some("/etc/shadow".into()),
    };
    refused(&c, &e, "symbolic link");
}

#[test]
fn hardlink() {
    let c = Case::new();
    let mut e = c.entries(&key(1));
    e[3] = Raw {
        name: "payload/catalog.wasm".into(),
        kind: tar::EntryType::Link,
        data: vec![],
        link: Some("payload/content.json".into()),
    };
    refused(&c, &e, "hard link");
}

#[test]
fn device_node() {
    let c = Case::new();
    let mut e = c.entries(&key(1));
    e[3] = Raw { name: "payload/catalog.wasm".into(), kind: tar::EntryType::Block, data: vec![], link: None };
    refused(&c, &e, "block device");
    e[3].kind = tar::EntryType::Char;
    refused(&c, &e, "character device");
}

#[test]
fn duplicate_entry() {
    let c = Case::new();
    let mut e = c.entries(&key(1));
    let again = raw(&e[3].name.clone(), &e[3].data.clone());
    e.push(again);
    refused(&c, &e, "appears twice");
}

#[test]
fn file_not_in_the_manifest() {
    let c = Case::new();
    let mut e = c.entries(&key(1));
    e.push(raw("payload/extra.wasm", b"surprise"));
    refused(&c, &e, "not listed in the manifest");
}

#[test]
fn file_missing_from_the_bundle() {
    let c = Case::new();
    let mut e = c.entries(&key(1));
    e.pop();
    refused(&c, &e, "listed in the manifest but not in the bundle");
}

#[test]
fn oversize() {
    let c = Case::new();
    let limits = Limits { max_file_bytes: 10, ..Limits::default() };
    refused_with(&c, &c.entries(&key(1)), &limits, "over the 10-byte limit");
    let limits = Limits { max_bundle_bytes: 100, ..Limits::default() };
    refused_with(&c, &c.entries(&key(1)), &limits, "the bundle file");
}

#[test]
fn gzip_bomb() {
    let c = Case::new();
    let mut files = c.files.clone();
    files.push(("zeros.bin".into(), vec![0u8; 64 << 20]));
    let m = c.manifest(&files);
    let mut e = vec![raw("bundle.json", &m), raw("bundle.sig", &keys::sign(&key(1), &m))];
    for (p, d) in &files {
        e.push(raw(&format!("payload/{p}"), d));
    }
    let limits = Limits { max_decompressed_bytes: 8 << 20, ..Limits::default() };
    let b = c.path("bomb.bundle");
    write_bundle(&b, &e);
    assert!(std::fs::metadata(&b).unwrap().len() < 1 << 20, "the bomb should be small on the wire");
    let (r, staging) = c.verify_file(&b, &limits);
    let err = r.unwrap_err().to_string();
    assert!(err.contains("decompressed"), "{err}");
    assert!(!staging.exists());
}

#[test]
fn incompatible_abi() {
    let c = Case::new();
    let mut m: serde_json::Value = serde_json::from_slice(&c.manifest(&c.files)).unwrap();
    m["abi"] = 99.into();
    let m = serde_json::to_vec(&m).unwrap();
    let mut e = c.entries(&key(1));
    e[0].data = m.clone();
    e[1].data = keys::sign(&key(1), &m).to_vec();
    refused(&c, &e, "ABI 99");
}

#[test]
fn existing_staging_is_never_reused() {
    let c = Case::new();
    let staging = c.path("staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("planted"), b"x").unwrap();
    let b = c.path("ok.bundle");
    write_bundle(&b, &c.entries(&key(1)));
    let e = verify_and_unpack(&b, &[key(1).verifying_key()], &Limits::default(), &staging).unwrap_err();
    assert!(e.to_string().contains("staging"), "{e}");
    assert!(staging.join("planted").exists(), "a directory it did not create must be left alone");
}

#[test]
fn a_write_error_in_staging_leaves_nothing() {
    let c = Case::new();
    let b = c.path("ok.bundle");
    write_bundle(&b, &c.entries(&key(1)));
    let e = verify_and_unpack(&b, &[key(1).verifying_key()], &Limits::default(), Path::new("/proc/no/such/staging"));
    assert!(e.is_err());
}

/// Issue 10, case 4: an unsigned bundle whose first entry is a GNU long
/// name of 500 MiB made the tar reader hold all of it, echo it into the
/// error and `state.json`. Extension entries are refused as they are met,
/// before their data is read, with a short error. (8 MiB here; the size
/// does not change the path taken.)
#[test]
fn gnu_long_name_before_the_signature() {
    let c = Case::new();
    let mut entries = c.entries(&key(9));
    let long =
        Raw { name: "././@LongLink".into(), kind: tar::EntryType::GNULongName, data: vec![b'a'; 8 << 20], link: None };
    entries.insert(0, long);
    let (r, staging) = c.verify(&entries, &Limits::default());
    let e = r.expect_err("hostile bundle accepted").to_string();
    assert!(e.contains("GNU long-name"), "{}", lms_bundle::cap_text(&e, 300));
    assert!(e.len() < 1024, "the error echoes {} bytes", e.len());
    assert!(!staging.exists());
}

#[test]
fn pax_header_in_the_payload() {
    let c = Case::new();
    let mut entries = c.entries(&key(1));
    let pax = Raw {
        name: "payload/PaxHeaders/x".into(),
        kind: tar::EntryType::XHeader,
        data: b"30 path=payload/manifest.json\n".to_vec(),
        link: None,
    };
    entries.insert(2, pax);
    refused(&c, &entries, "PAX extension");
}

#[test]
fn error_texts_are_capped() {
    let t = "é".repeat(5000);
    let c = lms_bundle::cap_text(&t, 101);
    assert!(c.len() < 140 && c.ends_with("more bytes)"), "{c}");
    assert_eq!(lms_bundle::cap_text("short", 101), "short");
}
