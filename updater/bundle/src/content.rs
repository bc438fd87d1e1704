//! Content bundles: a content pack (courses, packages, media) as signed,
//! content-addressed files, so a node updating from one version to the next
//! downloads only the files it does not already have.
//!
//! A content bundle file is a plain tar (media does not compress) holding
//! `content.json` (the manifest: format, version, creation time, the pack's
//! courses, and every file's path, size and sha256), `content.sig` (64 raw
//! bytes: ed25519 over the manifest's exact bytes), then each distinct file
//! once as `blobs/<sha256>`. Published, the blobs go to the repository's
//! `blobs/` (shared by every version) and the manifest beside its signature
//! under `content/`; the channel's metadata points at the manifest.
//!
//! What this module must never do: parse a manifest before its signature
//! holds, accept a path that could leave the content directory, or accept
//! a blob whose bytes do not hash to its name.

use super::{BundleError, Version, io_err, keys, rfc3339, sha256_hex};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const CONTENT_FORMAT: u32 = 1;
pub const MANIFEST_ENTRY: &str = "content.json";
pub const SIGNATURE_ENTRY: &str = "content.sig";
pub const BLOBS_DIR: &str = "blobs";

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
    if bytes.len() as u64 > limits.max_manifest_bytes {
        return Err(BundleError::TooLarge {
            what: MANIFEST_ENTRY.into(),
            size: bytes.len() as u64,
            limit: limits.max_manifest_bytes,
        });
    }
    if !keys::verify_any(trusted, bytes, sig) {
        return Err(BundleError::Signature { keys: trusted.len() });
    }
    let m: ContentManifest =
        serde_json::from_slice(bytes).map_err(|e| BundleError::Manifest(format!("{MANIFEST_ENTRY}: {e}")))?;
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

fn hash_file(path: &Path) -> Result<(u64, String), BundleError> {
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h).map_err(io_err(path))?;
    Ok((n, hex::encode(h.finalize())))
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
        let (size, sha256) = hash_file(&full)?;
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
    let (manifest, blobs) = manifest_of(dir, version, courses)?;
    let bytes = serde_json::to_vec_pretty(&manifest).expect("json");
    let sig = keys::sign(key, &bytes);
    let tmp = out.with_extension("tmp");
    let file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let mtime = super::build_time().unix_timestamp().max(0) as u64;
    let mut append = |path: &str, size: u64, data: &mut dyn Read| {
        tar.append(&super::tar_header(path, size, mtime), data).map_err(io_err(&tmp))
    };
    append(MANIFEST_ENTRY, bytes.len() as u64, &mut &bytes[..])?;
    append(SIGNATURE_ENTRY, sig.len() as u64, &mut &sig[..])?;
    for (sha, path) in &blobs {
        let mut f = std::fs::File::open(path).map_err(io_err(path))?;
        let size = f.metadata().map_err(io_err(path))?.len();
        append(&format!("{BLOBS_DIR}/{sha}"), size, &mut f)?;
    }
    let mut w = tar.into_inner().map_err(io_err(&tmp))?;
    w.flush().map_err(io_err(&tmp))?;
    let file = w.into_inner().map_err(|e| BundleError::Io { path: tmp.clone(), message: e.to_string() })?;
    file.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, out).map_err(io_err(out))?;
    Ok(manifest)
}

/// Whether the file at `path` is a content bundle (a tar whose first entry
/// is `content.json`), as opposed to a gzip'd module bundle.
pub fn is_content_bundle(path: &Path) -> bool {
    let mut head = [0u8; 512];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && head.starts_with(MANIFEST_ENTRY.as_bytes())
        && head[MANIFEST_ENTRY.len()] == 0
}

type Entries<'a> = tar::Entries<'a, std::io::BufReader<std::fs::File>>;

/// The next entry, which must be `name` and at most `max` bytes, read whole.
fn next_small(path: &Path, entries: &mut Entries, name: &str, max: u64) -> Result<Vec<u8>, BundleError> {
    let mut e = entries
        .next()
        .ok_or_else(|| BundleError::Layout(format!("{name} missing")))?
        .map_err(|e| BundleError::Container { offset: 0, message: e.to_string() })?;
    let got = e.path_bytes().into_owned();
    if got != name.as_bytes() {
        return Err(BundleError::Layout(format!("expected {name}, found {:?}", String::from_utf8_lossy(&got))));
    }
    if e.size() > max {
        return Err(BundleError::TooLarge { what: name.into(), size: e.size(), limit: max });
    }
    let mut out = Vec::new();
    e.read_to_end(&mut out).map_err(io_err(path))?;
    Ok(out)
}

/// The manifest at the head of the bundle, verified before it is parsed.
fn head_of(
    path: &Path,
    entries: &mut Entries,
    trusted: &[VerifyingKey],
    limits: &ContentLimits,
) -> Result<(ContentManifest, Vec<u8>, Vec<u8>), BundleError> {
    let bytes = next_small(path, entries, MANIFEST_ENTRY, limits.max_manifest_bytes)?;
    let sig = next_small(path, entries, SIGNATURE_ENTRY, 64)?;
    let manifest = verify_manifest(&bytes, &sig, trusted, limits)?;
    Ok((manifest, bytes, sig))
}

fn open_tar(path: &Path) -> Result<tar::Archive<std::io::BufReader<std::fs::File>>, BundleError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    Ok(tar::Archive::new(std::io::BufReader::new(file)))
}

/// Only the verified manifest of a content bundle (and its exact bytes and
/// signature), without reading the blobs.
pub fn read_head(
    path: &Path,
    trusted: &[VerifyingKey],
    limits: &ContentLimits,
) -> Result<(ContentManifest, Vec<u8>, Vec<u8>), BundleError> {
    let mut archive = open_tar(path)?;
    let mut entries = archive.entries().map_err(io_err(path))?;
    head_of(path, &mut entries, trusted, limits)
}

/// Reads a content bundle: its manifest is verified before it is parsed,
/// then every blob is handed to `blob(sha256, reader)` after it has been
/// checked to be one the manifest lists, with the size it lists; `blob`
/// must consume the reader, and the bytes are hashed as they pass and
/// compared at the end (a blob that does not match its name fails the
/// whole read; whatever `blob` wrote of it the caller must discard).
pub fn read_bundle(
    path: &Path,
    trusted: &[VerifyingKey],
    limits: &ContentLimits,
    mut blob: impl FnMut(&str, &mut dyn Read) -> Result<(), BundleError>,
) -> Result<(ContentManifest, Vec<u8>, Vec<u8>), BundleError> {
    let mut archive = open_tar(path)?;
    let mut entries = archive.entries().map_err(io_err(path))?;
    let (manifest, bytes, sig) = head_of(path, &mut entries, trusted, limits)?;
    let sizes: BTreeMap<&str, u64> = manifest.files.iter().map(|f| (f.sha256.as_str(), f.size)).collect();
    for e in entries {
        let mut e = e.map_err(|e| BundleError::Container { offset: 0, message: e.to_string() })?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let Some(sha) = name.strip_prefix(&format!("{BLOBS_DIR}/")).map(str::to_string) else {
            return Err(BundleError::Entry {
                path: name,
                reason: "a content bundle holds only blobs after its manifest".into(),
            });
        };
        if e.header().entry_type() != tar::EntryType::Regular {
            return Err(BundleError::Entry { path: name, reason: "not a regular file".into() });
        }
        let Some(&size) = sizes.get(sha.as_str()) else {
            return Err(BundleError::Entry { path: name, reason: "no file of the manifest has this sha256".into() });
        };
        if e.size() != size {
            return Err(BundleError::Size { path: name, expected: size, actual: e.size() });
        }
        let mut hashing = HashingReader { inner: &mut e, hash: Sha256::new() };
        blob(&sha, &mut hashing)?;
        let actual = hex::encode(hashing.hash.finalize());
        if actual != sha {
            return Err(BundleError::Hash { path: name, expected: sha, actual });
        }
    }
    Ok((manifest, bytes, sig))
}

struct HashingReader<'r, R> {
    inner: &'r mut R,
    hash: Sha256,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Where a published content version's manifest lives in a repository.
pub fn manifest_path(version: &str) -> String {
    format!("content/lms-content-{version}.json")
}

/// Where a blob lives in a repository.
pub fn blob_path(sha256: &str) -> String {
    format!("{BLOBS_DIR}/{sha256}")
}

/// Puts a content bundle into the repository at `repo`: blobs it lacks
/// (each checked against its name as it is written), the manifest and its
/// signature, then the channel's signed metadata pointing at the manifest.
/// Refuses a bundle that does not verify with `key` and a version not above
/// the channel's.
pub fn publish(
    repo: &Path,
    bundle: &Path,
    channel: &str,
    key: &ed25519_dalek::SigningKey,
    expires_in: std::time::Duration,
    rollout_percent: u8,
) -> Result<super::channel::ChannelMeta, BundleError> {
    let previous = super::channel::check_publish(repo, channel, key, rollout_percent)?;
    let (head, _, _) = read_head(bundle, &[key.verifying_key()], &ContentLimits::default())?;
    let version: Version = head.content_version.parse().map_err(BundleError::Manifest)?;
    super::channel::check_version(previous.as_ref(), channel, version)?;
    let blobs = repo.join(BLOBS_DIR);
    std::fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
    let (manifest, bytes, sig) = read_bundle(bundle, &[key.verifying_key()], &ContentLimits::default(), |sha, r| {
        let target = blobs.join(sha);
        if target.exists() {
            // Already published by an earlier version: read past it.
            std::io::copy(r, &mut std::io::sink()).map_err(io_err(&target))?;
            return Ok(());
        }
        // Written under a temporary name; renamed below once it hashed right.
        let tmp = blobs.join(format!(".{sha}.tmp"));
        let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        std::io::copy(r, &mut f).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        Ok(())
    })
    .inspect_err(|_| remove_temporaries(&blobs))?;
    for f in &manifest.files {
        let tmp = blobs.join(format!(".{}.tmp", f.sha256));
        if tmp.exists() {
            std::fs::rename(&tmp, blobs.join(&f.sha256)).map_err(io_err(&tmp))?;
        }
    }
    let rel = manifest_path(&manifest.content_version);
    super::channel::write_atomic(&repo.join(format!("{rel}.sig")), &sig)?;
    super::channel::write_atomic(&repo.join(&rel), &bytes)?;
    super::channel::commit(
        repo,
        channel,
        key,
        previous.as_ref(),
        expires_in,
        rollout_percent,
        super::channel::BundleRef {
            version: version.to_string(),
            path: rel,
            size: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        },
    )
}

fn remove_temporaries(blobs: &Path) {
    if let Ok(entries) = std::fs::read_dir(blobs) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
