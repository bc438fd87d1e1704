//! Signed module bundles and channel metadata: the one format the release
//! side (`lms-image bundle`, `lms-image publish`) writes and the device side
//! (`lms-updater`) reads.
//!
//! A bundle is a gzip'd tar whose first entry is `bundle.json` (the
//! manifest: format, bundle version, target ABI, creation time, and each
//! payload file's path, size and sha256), whose second is `bundle.sig` (64
//! raw bytes: an ed25519 signature over the manifest's exact bytes), followed
//! by the payload under `payload/`: a module directory.
//!
//! Channel metadata is `channels/<name>.json` plus `channels/<name>.json.sig`,
//! the same scheme: signature over the exact bytes, checked before parsing.
//!
//! What this crate must never do: parse signed content before its signature
//! holds, read past a size cap, or write anything outside the staging
//! directory it was given.

pub mod blobs;
pub mod channel;
pub mod content;
pub mod keys;
pub mod system;
mod unpack;
pub mod verity;

pub use unpack::{Limits, sync_tree, verify_and_unpack};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const BUNDLE_FORMAT: u32 = 1;
pub const MANIFEST_ENTRY: &str = "bundle.json";
pub const SIGNATURE_ENTRY: &str = "bundle.sig";
pub const PAYLOAD_PREFIX: &str = "payload/";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("bundle: {what} is {size} bytes, over the {limit}-byte limit")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("bundle: not a readable tar.gz near compressed byte {offset}: {message}")]
    Container { offset: u64, message: String },
    #[error("bundle: {0}")]
    Layout(String),
    #[error("bundle: signature does not verify with any trusted key ({keys} tried)")]
    Signature { keys: usize },
    #[error("bundle manifest: {0}")]
    Manifest(String),
    #[error("bundle entry {path:?}: {reason}")]
    Entry { path: String, reason: String },
    #[error("bundle file {path}: sha256 {actual}, manifest says {expected}")]
    Hash { path: String, expected: String, actual: String },
    #[error("bundle file {path}: {actual} bytes, manifest says {expected}")]
    Size { path: String, expected: u64, actual: u64 },
    #[error("bundle file {0}: listed in the manifest but not in the bundle")]
    Missing(String),
    #[error("bundle targets ABI {found}; this node runs ABI {supported}")]
    Abi { found: i32, supported: i32 },
    #[error("key {path}: {message}")]
    Key { path: PathBuf, message: String },
}

pub(crate) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> BundleError + '_ {
    move |e| BundleError::Io { path: path.to_path_buf(), message: e.to_string() }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    pub format: u32,
    pub bundle_version: String,
    pub abi: i32,
    /// RFC 3339; from SOURCE_DATE_EPOCH when set, so builds reproduce.
    pub created: String,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// A semantic version `MAJOR.MINOR.PATCH` (pre-release/build suffixes are
/// refused: versions order updates and must compare without ambiguity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version(pub u64, pub u64, pub u64);

impl std::str::FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Version, String> {
        let parts: Vec<&str> = s.split('.').collect();
        let num = |p: &str| -> Result<u64, String> {
            if p.is_empty() || (p.len() > 1 && p.starts_with('0')) || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{s:?} is not a version like 1.2.3"));
            }
            p.parse().map_err(|_| format!("{s:?}: number too large"))
        };
        match parts.as_slice() {
            [a, b, c] => Ok(Version(num(a)?, num(b)?, num(c)?)),
            _ => Err(format!("{s:?} is not a version like 1.2.3")),
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// A relative path of safe components: no absolute paths, `..`, `.`, empty
/// components, backslashes or control characters.
pub fn safe_relative_path(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 255
        && !p.starts_with('/')
        && p.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 of a file, streamed; the error names the file.
pub fn sha256_file(path: &Path) -> Result<String, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(hex::encode(h.finalize()))
}

/// sha256 of `len` bytes of `file` (a file, or a disk or partition device)
/// from `offset`; an error when it ends before them.
pub fn sha256_region(file: &Path, offset: u64, len: u64) -> Result<String, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    f.seek(SeekFrom::Start(offset)).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f.take(len), &mut h).map_err(|e| format!("{}: {e}", file.display()))?;
    if n != len {
        return Err(format!("{}: ends inside bytes {offset}..{}", file.display(), offset + len));
    }
    Ok(hex::encode(h.finalize()))
}

/// Seconds since the epoch for "now", or SOURCE_DATE_EPOCH when set.
pub fn build_time() -> time::OffsetDateTime {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc)
}

pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("0 ns is valid")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formattable")
}

/// A sha256 as this crate writes it: 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `text` cut to at most `max` bytes (at a character boundary), saying how
/// much was cut: for error texts that are stored or printed, whatever an
/// attacker managed to put into them.
pub fn cap_text(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes)", &text[..end], text.len() - end)
}

pub(crate) fn tar_header(path: &str, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).expect("validated path fits");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h
}

/// Packs the module directory `dir` into a signed bundle at `out`.
/// Deterministic: same inputs and SOURCE_DATE_EPOCH, same bytes.
pub fn create(
    dir: &Path,
    version: &str,
    key: &ed25519_dalek::SigningKey,
    out: &Path,
) -> Result<BundleManifest, BundleError> {
    version.parse::<Version>().map_err(BundleError::Manifest)?;
    let created = build_time();
    let mut names: Vec<String> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let e = e.map_err(io_err(dir))?;
        let ft = e.file_type().map_err(io_err(&e.path()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !ft.is_file() {
            return Err(BundleError::Entry { path: name, reason: "module directories hold only regular files".into() });
        }
        if !safe_relative_path(&name) {
            return Err(BundleError::Entry { path: name, reason: "unsafe file name".into() });
        }
        names.push(name);
    }
    names.sort();
    if !names.iter().any(|n| n == lms_abi::MANIFEST_FILE) {
        return Err(BundleError::Missing(format!("{}/{}", dir.display(), lms_abi::MANIFEST_FILE)));
    }
    // The module directory's own manifest names the ABI the modules target.
    let module_manifest: lms_abi::ModuleManifest =
        serde_json::from_slice(&std::fs::read(dir.join(lms_abi::MANIFEST_FILE)).map_err(io_err(dir))?)
            .map_err(|e| BundleError::Manifest(format!("{}: {e}", dir.join(lms_abi::MANIFEST_FILE).display())))?;
    if module_manifest.bundle_version != version {
        return Err(BundleError::Manifest(format!(
            "--version {version} differs from bundle_version {} in {}",
            module_manifest.bundle_version,
            dir.join(lms_abi::MANIFEST_FILE).display()
        )));
    }
    let mut files = Vec::new();
    let mut contents = Vec::new();
    for n in &names {
        let p = dir.join(n);
        let bytes = std::fs::read(&p).map_err(io_err(&p))?;
        files.push(FileEntry { path: n.clone(), size: bytes.len() as u64, sha256: sha256_hex(&bytes) });
        contents.push(bytes);
    }
    let manifest = BundleManifest {
        format: BUNDLE_FORMAT,
        bundle_version: version.to_string(),
        abi: module_manifest.abi,
        created: rfc3339(created),
        files,
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("json");
    let sig = keys::sign(key, &manifest_bytes);

    let tmp = out.with_extension("tmp");
    let file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let gz = flate2::GzBuilder::new().mtime(0).write(file, flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    let mtime = created.unix_timestamp().max(0) as u64;
    let mut append =
        |path: &str, data: &[u8]| tar.append(&tar_header(path, data.len() as u64, mtime), data).map_err(io_err(&tmp));
    append(MANIFEST_ENTRY, &manifest_bytes)?;
    append(SIGNATURE_ENTRY, &sig)?;
    for (n, bytes) in names.iter().zip(&contents) {
        append(&format!("{PAYLOAD_PREFIX}{n}"), bytes)?;
    }
    let gz = tar.into_inner().map_err(io_err(&tmp))?;
    let mut file = gz.finish().map_err(io_err(&tmp))?;
    file.flush().map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, out).map_err(io_err(out))?;
    Ok(manifest)
}

/// Test support shared by the crates that handle bundles.
#[cfg(feature = "testing")]
pub mod testing {
    use std::path::Path;

    /// A small but well-formed module directory for `version`: a manifest
    /// and one module (format 2: code only). Enough for the bundle and
    /// updater layers, which never run the wasm.
    pub fn module_dir(dir: &Path, version: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let wasm = format!("\0asm module of {version}").into_bytes();
        let sha = super::sha256_hex;
        let manifest = serde_json::json!({
            "format": lms_abi::MANIFEST_FORMAT, "bundle_version": version, "abi": 1,
            "modules": [{"name": "catalog", "version": "1.0.0", "file": "catalog.wasm", "size": wasm.len(), "sha256": sha(&wasm)}],
        });
        std::fs::write(dir.join("catalog.wasm"), &wasm).unwrap();
        std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    }

    /// A module with every export of the ABI whose self-test answers
    /// `{"ok": false, "error": error}`: what a release with a broken module
    /// looks like to the node, which must roll it back.
    pub fn failing_module(error: &str) -> Vec<u8> {
        let report = serde_json::json!({"ok": false, "checks": ["catalog"], "error": error}).to_string();
        let packed = (1024u64 << 32) | report.len() as u64;
        let escaped = report.replace('\\', "\\\\").replace('"', "\\\"");
        let wat = format!(
            r#"(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "{escaped}")
  (func (export "lms_abi_version") (result i32) i32.const {abi})
  (func (export "lms_alloc") (param i32) (result i32) i32.const 4096)
  (func (export "lms_handle") (param i32 i32) (result i64) i64.const 0)
  (func (export "lms_self_test") (result i64) i64.const {packed}))"#,
            abi = lms_abi::ABI_VERSION
        );
        wat::parse_str(&wat).expect("valid WAT")
    }

    /// A file of `data_blocks` pseudo-random 4 KiB blocks (from `seed`)
    /// with the dm-verity tree `veritysetup format` appends, as an image
    /// build makes it; its verity parameters.
    pub fn verity_image(img: &Path, data_blocks: u64, seed: u32) -> super::verity::Verity {
        use super::verity::BLOCK;
        let mut bytes = Vec::with_capacity((data_blocks * BLOCK) as usize);
        // Any seed, even 0, gives a stream of its own (xorshift needs non-zero).
        let mut x: u32 = seed.wrapping_mul(2_654_435_761).wrapping_add(0x9e37_79b9) | 1;
        let mut x2 = seed;
        while bytes.len() < (data_blocks * BLOCK) as usize {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x2 = x2.wrapping_add(1);
            bytes.extend_from_slice(&(x ^ x2.rotate_left(16)).to_le_bytes());
        }
        std::fs::write(img, &bytes).unwrap();
        let salt = "5a".repeat(32);
        let out = std::process::Command::new("veritysetup")
            .args(["format", "--hash-offset", &(data_blocks * BLOCK).to_string()])
            .args(["--data-blocks", &data_blocks.to_string(), "--salt", &salt])
            .args(["--uuid", "00000000-0000-4000-8000-000000000001"])
            .arg(img)
            .arg(img)
            .output()
            .expect("veritysetup (Debian cryptsetup-bin; cargo xtask setup installs it)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let root = text.lines().find_map(|l| l.strip_prefix("Root hash:")).unwrap().trim().to_string();
        let v = super::verity::Verity { data_blocks, hash_offset: data_blocks * BLOCK, salt, root_hash: root };
        assert_eq!(std::fs::metadata(img).unwrap().len(), v.total_bytes(), "verity tree size");
        v
    }

    /// A signed system bundle of `version` in `dir` (kernel and initramfs
    /// are a few bytes of text; the image holds `blocks` blocks and a real
    /// verity tree): its path.
    pub fn system_bundle(
        dir: &Path,
        version: &str,
        blocks: u64,
        key: &ed25519_dalek::SigningKey,
    ) -> std::path::PathBuf {
        system_bundle_for(dir, "lms-edge-test", version, blocks, key)
    }

    /// The same for the kind of node `name` (its IMAGE_ID); the parts stay in
    /// `dir/system-<version>/`.
    pub fn system_bundle_for(
        dir: &Path,
        name: &str,
        version: &str,
        blocks: u64,
        key: &ed25519_dalek::SigningKey,
    ) -> std::path::PathBuf {
        let d = dir.join(format!("system-{version}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("vmlinuz"), format!("kernel of {version}")).unwrap();
        std::fs::write(d.join("initrd.img"), format!("initramfs of {version}")).unwrap();
        let seed = version.bytes().fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
        let verity = verity_image(&d.join("system.img"), blocks, seed);
        let out = dir.join(format!("system-{version}.bundle"));
        super::system::create(
            &super::system::SystemParts {
                name,
                version,
                kernel_release: "6.1.0-test",
                cmdline: "console=ttyS0 panic=10",
                kernel: &d.join("vmlinuz"),
                initrd: &d.join("initrd.img"),
                image: &d.join("system.img"),
                verity,
            },
            key,
            &out,
        )
        .unwrap();
        out
    }

    #[cfg(test)]
    mod tests {
        /// The failing module is valid wasm with every export, and its
        /// self-test report is JSON saying ok = false with the error.
        #[test]
        fn the_failing_module_reports_a_failed_self_test() {
            let wasm = super::failing_module("broken \"on purpose\"");
            let at = wasm.windows(10).position(|w| w == br#"{"checks":"#).expect("the report in the data section");
            let end = at + wasm[at..].windows(6).position(|w| w == b"false}").unwrap() + 6;
            let v: serde_json::Value = serde_json::from_slice(&wasm[at..end]).unwrap();
            assert_eq!((v["ok"].as_bool(), v["error"].as_str()), (Some(false), Some("broken \"on purpose\"")));
            for export in ["lms_abi_version", "lms_alloc", "lms_handle", "lms_self_test", "memory"] {
                assert!(wasm.windows(export.len()).any(|w| w == export.as_bytes()), "{export}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_and_refuse_junk() {
        let v = |s: &str| s.parse::<Version>();
        assert!(v("1.10.0").unwrap() > v("1.9.9").unwrap());
        assert_eq!(v("2.0.0").unwrap().to_string(), "2.0.0");
        for bad in ["1.0", "1.0.0-rc1", "01.0.0", "a.b.c", "", "1..0"] {
            assert!(v(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn path_safety() {
        for ok in ["a.wasm", "dir/file.json", "x-y_z.1"] {
            assert!(safe_relative_path(ok), "{ok}");
        }
        for bad in ["/etc/passwd", "../x", "a/../b", "a//b", "./a", "a\\b", "", "a b", "a/."] {
            assert!(!safe_relative_path(bad), "{bad}");
        }
    }
}
