//! Content bundles: a content pack (courses, packages, media) as signed,
//! content-addressed files, so a node updating from one version to the next
//! downloads only the files it does not already have.
//!
//! A content bundle is a blob bundle ([`crate::blobs`]; a plain tar, media
//! does not compress) whose manifest `content.json` lists the pack's
//! courses and every file's path, size and sha256; published, the manifest
//! lives under `content/`.
//!
//! What this module must never do: parse a manifest before its signature
//! holds, accept a path that could leave the content directory, or accept
//! a blob whose bytes do not hash to its name.

use super::blobs::{self, BlobManifest};
use super::{BundleError, Version, io_err, keys, rfc3339};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const CONTENT_FORMAT: u32 = 1;
pub const MANIFEST_ENTRY: &str = "content.json";
pub const SIGNATURE_ENTRY: &str = "content.sig";
pub use blobs::{BLOBS_DIR, blob_path};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContentManifest {
    pub format: u32,
    pub content_version: String,
    pub created: String,
    /// The course ids in the pack (what the node's health gate expects to
    /// see in the catalog).
    pub courses: Vec<String>,
    pub files: Vec<ContentFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContentFile {
    /// Relative to the content directory (`science.toml`,
    /// `packages/geology/files/au/index.html`).
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Caps on a content manifest and what it may make a node store. Media is
/// large: the defaults allow 8 GiB in all, 4 GiB for one file.
#[derive(Debug, Clone)]
pub struct ContentLimits {
    pub max_manifest_bytes: u64,
    pub max_files: usize,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
}

impl Default for ContentLimits {
    fn default() -> Self {
        ContentLimits {
            max_manifest_bytes: 16 << 20,
            max_files: 200_000,
            max_file_bytes: 4 << 30,
            max_total_bytes: 8 << 30,
        }
    }
}

/// A path inside a content directory that is safe to create: relative, no
/// `.`/`..`/empty components, no backslash, colon or control character.
/// Packages from authoring tools use spaces and non-ASCII names, so those
/// are allowed (unlike module bundle paths).
pub fn safe_content_path(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 1024
        && !p.starts_with('/')
        && p.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.len() <= 255
                && !c.chars().any(|ch| ch.is_control() || ch == '\\' || ch == ':')
        })
}

/// Checks the signature over `bytes` first, then parses and checks every
/// entry: version, paths (safe, unique, no file inside another), sizes and
/// hashes in form, the limits.
pub fn verify_manifest(
    bytes: &[u8],
    sig: &[u8],
    trusted: &[VerifyingKey],
    limits: &ContentLimits,
) -> Result<ContentManifest, BundleError> {
    let m: ContentManifest = blobs::verified_json(MANIFEST_ENTRY, bytes, sig, trusted, limits.max_manifest_bytes)?;
    let bad = |s: String| Err(BundleError::Manifest(format!("{MANIFEST_ENTRY}: {s}")));
    if m.format != CONTENT_FORMAT {
        return bad(format!("format {} is not {CONTENT_FORMAT}", m.format));
    }
    if let Err(e) = m.content_version.parse::<Version>() {
        return bad(format!("content_version: {e}"));
    }
    if m.files.len() > limits.max_files {
        return bad(format!("{} files, over the limit of {}", m.files.len(), limits.max_files));
    }
    let mut total: u64 = 0;
    let mut paths = std::collections::BTreeSet::new();
    for f in &m.files {
        if !safe_content_path(&f.path) {
            return bad(format!("file path {:?} is not a safe relative path", super::cap_text(&f.path, 200)));
        }
        if !super::is_sha256_hex(&f.sha256) {
            return bad(format!("{}: sha256 is not 64 lowercase hex digits", f.path));
        }
        if f.size > limits.max_file_bytes {
            return Err(BundleError::TooLarge { what: f.path.clone(), size: f.size, limit: limits.max_file_bytes });
        }
        total = total.saturating_add(f.size);
        if !paths.insert(f.path.as_str()) {
            return bad(format!("{} is listed twice", f.path));
        }
    }
    if total > limits.max_total_bytes {
        return Err(BundleError::TooLarge { what: "the content".into(), size: total, limit: limits.max_total_bytes });
    }
    for p in &paths {
        let mut at = 0;
        while let Some(slash) = p[at..].find('/') {
            if paths.contains(&p[..at + slash]) {
                return bad(format!("{p} lies inside {}, which is a file", &p[..at + slash]));
            }
            at += slash + 1;
        }
    }
    Ok(m)
}

/// Every regular file under `dir` (hidden entries, such as an import's
/// staging, left out), as sorted relative paths.
fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), BundleError> {
    for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let e = e.map_err(io_err(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        let ft = e.file_type().map_err(io_err(&e.path()))?;
        if ft.is_dir() {
            walk(&e.path(), &path, out)?;
        } else if ft.is_file() {
            if !safe_content_path(&path) {
                return Err(BundleError::Entry { path, reason: "not a safe path for a content file".into() });
            }
            out.push(path);
        } else {
            return Err(BundleError::Entry { path, reason: "content packs hold only files and directories".into() });
        }
    }
    Ok(())
}

/// The manifest of the pack at `dir` for `version` (files hashed) and where
/// each distinct blob's bytes are.
pub fn manifest_of(
    dir: &Path,
    version: &str,
    courses: Vec<String>,
) -> Result<(ContentManifest, BTreeMap<String, PathBuf>), BundleError> {
    version.parse::<Version>().map_err(BundleError::Manifest)?;
    let mut paths = Vec::new();
    walk(dir, "", &mut paths)?;
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    let mut blobs = BTreeMap::new();
    for p in paths {
        let full = dir.join(&p);
        let (size, sha256) = blobs::hash_file(&full)?;
        blobs.entry(sha256.clone()).or_insert(full);
        files.push(ContentFile { path: p, size, sha256 });
    }
    let manifest = ContentManifest {
        format: CONTENT_FORMAT,
        content_version: version.to_string(),
        created: rfc3339(super::build_time()),
        courses,
        files,
    };
    Ok((manifest, blobs))
}

/// Writes the signed content bundle for the pack at `dir` to `out`.
/// Deterministic: same pack and SOURCE_DATE_EPOCH, same bytes.
pub fn create(
    dir: &Path,
    version: &str,
    courses: Vec<String>,
    key: &ed25519_dalek::SigningKey,
    out: &Path,
) -> Result<ContentManifest, BundleError> {
    let (manifest, files) = manifest_of(dir, version, courses)?;
    let bytes = serde_json::to_vec_pretty(&manifest).expect("json");
    let sig = keys::sign(key, &bytes);
    blobs::write(out, (MANIFEST_ENTRY, SIGNATURE_ENTRY), &bytes, &sig, &files)?;
    Ok(manifest)
}

impl BlobManifest for ContentManifest {
    const MANIFEST_ENTRY: &'static str = MANIFEST_ENTRY;
    const SIGNATURE_ENTRY: &'static str = SIGNATURE_ENTRY;
    type Limits = ContentLimits;
    fn max_manifest_bytes(limits: &ContentLimits) -> u64 {
        limits.max_manifest_bytes
    }
    fn verify(bytes: &[u8], sig: &[u8], trusted: &[VerifyingKey], limits: &ContentLimits) -> Result<Self, BundleError> {
        verify_manifest(bytes, sig, trusted, limits)
    }
    fn blobs(&self) -> Vec<(&str, u64)> {
        self.files.iter().map(|f| (f.sha256.as_str(), f.size)).collect()
    }
    fn version(&self) -> &str {
        &self.content_version
    }
    fn repo_path(version: &str) -> String {
        manifest_path(version)
    }
}

/// Whether the file at `path` is a content bundle (a tar whose first entry
/// is `content.json`), as opposed to a gzip'd module bundle.
pub fn is_content_bundle(path: &Path) -> bool {
    blobs::starts_with_entry(path, MANIFEST_ENTRY)
}

/// Only the verified manifest of a content bundle (see [`blobs::read_head`]).
pub fn read_head(
    path: &Path,
    trusted: &[VerifyingKey],
    limits: &ContentLimits,
) -> Result<(ContentManifest, Vec<u8>, Vec<u8>), BundleError> {
    blobs::read_head(path, trusted, limits)
}

/// Reads a content bundle blob by blob (see [`blobs::read_bundle`]).
pub fn read_bundle(
    path: &Path,
    trusted: &[VerifyingKey],
    limits: &ContentLimits,
    blob: impl FnMut(&str, &mut dyn std::io::Read) -> Result<(), BundleError>,
) -> Result<(ContentManifest, Vec<u8>, Vec<u8>), BundleError> {
    blobs::read_bundle(path, trusted, limits, blob)
}

/// Where a published content version's manifest lives in a repository.
pub fn manifest_path(version: &str) -> String {
    format!("content/lms-content-{version}.json")
}

/// Puts a content bundle into the repository (see [`blobs::publish`]).
pub fn publish(
    repo: &Path,
    bundle: &Path,
    channel: &str,
    key: &ed25519_dalek::SigningKey,
    expires_in: std::time::Duration,
    rollout_percent: u8,
) -> Result<super::channel::ChannelMeta, BundleError> {
    blobs::publish::<ContentManifest>(repo, bundle, channel, key, expires_in, rollout_percent)
}
