//! Verification and unpacking of a bundle into a fresh staging directory.
//! Order: size cap on the file; manifest entry read (capped); signature
//! checked over its exact bytes; only then the manifest parsed; then each
//! payload entry checked against the manifest (type, path, size) before a
//! byte of it is written, and hashed while it streams.

use super::{
    BUNDLE_FORMAT, BundleError, BundleManifest, MANIFEST_ENTRY, PAYLOAD_PREFIX, SIGNATURE_ENTRY, Version, io_err, keys,
    safe_relative_path,
};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::rc::Rc;

/// Caps on what a bundle may make us read or write. The defaults fit the LMS
/// modules with a wide margin (a real bundle is about 1 MB).
#[derive(Debug, Clone)]
pub struct Limits {
    /// The bundle file as received (compressed).
    pub max_bundle_bytes: u64,
    /// Everything the gzip stream may expand to (gzip bombs stop here).
    pub max_decompressed_bytes: u64,
    pub max_manifest_bytes: u64,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bundle_bytes: 256 << 20,
            max_decompressed_bytes: 512 << 20,
            max_manifest_bytes: 1 << 20,
            max_file_bytes: 128 << 20,
            max_total_bytes: 384 << 20,
            max_files: 1000,
        }
    }
}

struct Counting<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

struct Capped<R> {
    inner: R,
    left: u64,
    tripped: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min(self.left.saturating_add(1).min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            self.tripped.set(true);
            return Err(std::io::Error::other("decompressed size limit reached"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn kind_name(t: tar::EntryType) -> &'static str {
    match t {
        tar::EntryType::Symlink => "a symbolic link",
        tar::EntryType::Link => "a hard link",
        tar::EntryType::Char => "a character device",
        tar::EntryType::Block => "a block device",
        tar::EntryType::Fifo => "a FIFO",
        tar::EntryType::Directory => "a directory",
        tar::EntryType::GNULongName | tar::EntryType::GNULongLink => "a GNU long-name extension",
        tar::EntryType::XHeader | tar::EntryType::XGlobalHeader => "a PAX extension header",
        _ => "not a regular file",
    }
}

/// Verifies `bundle` against `trusted` keys and unpacks its payload into
/// `staging`, which must not exist yet. On any error `staging` is removed
/// and nothing else has been touched.
pub fn verify_and_unpack(
    bundle: &Path,
    trusted: &[VerifyingKey],
    limits: &Limits,
    staging: &Path,
) -> Result<BundleManifest, BundleError> {
    let mut created = false;
    let result = unpack_inner(bundle, trusted, limits, staging, &mut created);
    if result.is_err() && created {
        let _ = std::fs::remove_dir_all(staging);
    }
    result
}

fn unpack_inner(
    bundle: &Path,
    trusted: &[VerifyingKey],
    limits: &Limits,
    staging: &Path,
    created: &mut bool,
) -> Result<BundleManifest, BundleError> {
    let file = std::fs::File::open(bundle).map_err(io_err(bundle))?;
    let size = file.metadata().map_err(io_err(bundle))?.len();
    if size > limits.max_bundle_bytes {
        return Err(BundleError::TooLarge { what: "the bundle file".into(), size, limit: limits.max_bundle_bytes });
    }
    let offset = Rc::new(Cell::new(0u64));
    let tripped = Rc::new(Cell::new(false));
    let gz = flate2::read::GzDecoder::new(Counting { inner: std::io::BufReader::new(file), read: offset.clone() });
    let mut archive =
        tar::Archive::new(Capped { inner: gz, left: limits.max_decompressed_bytes, tripped: tripped.clone() });
    let container = |e: std::io::Error| {
        if tripped.get() {
            BundleError::TooLarge {
                what: "the decompressed bundle".into(),
                size: limits.max_decompressed_bytes + 1,
                limit: limits.max_decompressed_bytes,
            }
        } else {
            BundleError::Container { offset: offset.get(), message: e.to_string() }
        }
    };
    // Raw: the tar crate would otherwise read GNU long names and PAX
    // extension records into memory by itself, before any check and before
    // the signature (a 500 MiB long name took 3.5 GB). Raw, they arrive as
    // entries of their own type, which nothing below accepts.
    let mut entries = archive.entries().map_err(container)?.raw(true);

    let mut read_small = |name: &str, cap: u64| -> Result<Vec<u8>, BundleError> {
        let mut e = match entries.next() {
            Some(e) => e.map_err(container)?,
            None => return Err(BundleError::Layout(format!("ends before {name}"))),
        };
        let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let kind = e.header().entry_type();
        if path != name || kind != tar::EntryType::Regular {
            return Err(BundleError::Layout(format!(
                "expected {name} as a regular file here, found {path:?} ({})",
                if kind == tar::EntryType::Regular { "a regular file" } else { kind_name(kind) }
            )));
        }
        let declared = e.header().size().map_err(container)?;
        if declared > cap {
            return Err(BundleError::TooLarge { what: name.to_string(), size: declared, limit: cap });
        }
        let mut buf = Vec::with_capacity(declared as usize);
        e.by_ref().take(cap + 1).read_to_end(&mut buf).map_err(container)?;
        Ok(buf)
    };
    let manifest_bytes = read_small(MANIFEST_ENTRY, limits.max_manifest_bytes)?;
    let signature = read_small(SIGNATURE_ENTRY, 64)?;
    // Nothing of the manifest is looked at before this line.
    if !keys::verify_any(trusted, &manifest_bytes, &signature) {
        return Err(BundleError::Signature { keys: trusted.len() });
    }
    let manifest: BundleManifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| BundleError::Manifest(e.to_string()))?;
    check_manifest(&manifest, limits)?;

    let wanted: BTreeMap<&str, &super::FileEntry> = manifest.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let dirs: BTreeSet<String> = manifest
        .files
        .iter()
        .flat_map(|f| {
            let parts: Vec<&str> = f.path.split('/').collect();
            (1..parts.len()).map(move |i| parts[..i].join("/"))
        })
        .collect();
    std::fs::create_dir(staging).map_err(io_err(staging))?;
    *created = true;
    let mut seen = BTreeSet::new();
    for e in entries {
        let mut e = e.map_err(container)?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let entry_err = |reason: String| BundleError::Entry { path: raw.clone(), reason };
        let Some(rel) = raw.strip_prefix(PAYLOAD_PREFIX) else {
            return Err(entry_err("outside payload/".into()));
        };
        let kind = e.header().entry_type();
        if kind == tar::EntryType::Directory {
            let d = rel.trim_end_matches('/');
            if !safe_relative_path(d) || !dirs.contains(d) {
                return Err(entry_err("a directory the manifest does not imply".into()));
            }
            continue;
        }
        if kind != tar::EntryType::Regular {
            return Err(entry_err(format!("is {}; only regular files are allowed", kind_name(kind))));
        }
        if !safe_relative_path(rel) {
            return Err(entry_err("unsafe path (absolute, .., or odd characters)".into()));
        }
        let Some(want) = wanted.get(rel) else {
            return Err(entry_err("not listed in the manifest".into()));
        };
        if !seen.insert(rel.to_string()) {
            return Err(entry_err("appears twice".into()));
        }
        let declared = e.header().size().map_err(container)?;
        if declared != want.size {
            return Err(BundleError::Size { path: rel.to_string(), expected: want.size, actual: declared });
        }
        let dest = staging.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut out = std::fs::OpenOptions::new().write(true).create_new(true).open(&dest).map_err(io_err(&dest))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        let mut limited = e.by_ref().take(want.size);
        loop {
            let n = limited.read(&mut buf).map_err(container)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io_err(&dest))?;
            total += n as u64;
        }
        if total != want.size {
            return Err(BundleError::Size { path: rel.to_string(), expected: want.size, actual: total });
        }
        let actual = hex::encode(hasher.finalize());
        if actual != want.sha256 {
            return Err(BundleError::Hash { path: rel.to_string(), expected: want.sha256.clone(), actual });
        }
    }
    if let Some(missing) = wanted.keys().find(|p| !seen.contains(**p)) {
        return Err(BundleError::Missing(missing.to_string()));
    }
    sync_tree(staging)?;
    Ok(manifest)
}

fn check_manifest(m: &BundleManifest, limits: &Limits) -> Result<(), BundleError> {
    let bad = |s: String| Err(BundleError::Manifest(s));
    if m.format != BUNDLE_FORMAT {
        return bad(format!("format {} is not {BUNDLE_FORMAT}", m.format));
    }
    if let Err(e) = m.bundle_version.parse::<Version>() {
        return bad(format!("bundle_version: {e}"));
    }
    if m.abi != lms_abi::ABI_VERSION {
        return Err(BundleError::Abi { found: m.abi, supported: lms_abi::ABI_VERSION });
    }
    if m.files.len() > limits.max_files {
        return bad(format!("{} files, over the limit of {}", m.files.len(), limits.max_files));
    }
    let mut total = 0u64;
    let mut paths = BTreeSet::new();
    for (i, f) in m.files.iter().enumerate() {
        if !safe_relative_path(&f.path) {
            return bad(format!("files[{i}].path {:?} is not a safe relative path", f.path));
        }
        if !paths.insert(f.path.as_str()) {
            return bad(format!("files[{i}].path {:?} is listed twice", f.path));
        }
        if f.size > limits.max_file_bytes {
            return Err(BundleError::TooLarge { what: f.path.clone(), size: f.size, limit: limits.max_file_bytes });
        }
        if !super::is_sha256_hex(&f.sha256) {
            return bad(format!("files[{i}].sha256 is not 64 lowercase hex digits"));
        }
        total += f.size;
    }
    if total > limits.max_total_bytes {
        return Err(BundleError::TooLarge { what: "the payload".into(), size: total, limit: limits.max_total_bytes });
    }
    if !paths.contains(lms_abi::MANIFEST_FILE) {
        return bad(format!("the payload has no {}", lms_abi::MANIFEST_FILE));
    }
    Ok(())
}

/// One flush for the whole staged tree (syncfs), then the directory entry.
pub fn sync_tree(dir: &Path) -> Result<(), BundleError> {
    use std::os::fd::AsRawFd;
    let d = std::fs::File::open(dir).map_err(io_err(dir))?;
    // SAFETY: syncfs on a valid, open descriptor.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(io_err(dir)(std::io::Error::last_os_error()));
    }
    d.sync_all().map_err(io_err(dir))
}
