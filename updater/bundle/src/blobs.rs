//! The container that content bundles and system bundles share: a plain
//! tar holding a manifest, its signature (64 raw bytes: ed25519 over the
//! manifest's exact bytes), then each distinct file once as
//! `blobs/<sha256>`. Published, the blobs go to the repository's `blobs/`
//! (shared by every version and kind: a release that changes one file adds
//! one blob) and the manifest beside its signature; the channel's metadata
//! points at the manifest.
//!
//! A kind says only what its manifest is ([`BlobManifest`]); reading,
//! writing and publishing are the same for all. What this module must never
//! do: parse a manifest before its signature holds, or accept a blob whose
//! bytes do not hash to its name or whose size is not the listed one.

use super::{BundleError, Version, io_err, sha256_hex};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const BLOBS_DIR: &str = "blobs";

/// What one kind of blob bundle says about itself.
pub trait BlobManifest: Sized {
    /// First tar entry (`content.json`, `system.json`).
    const MANIFEST_ENTRY: &'static str;
    /// Second tar entry (`content.sig`, `system.sig`).
    const SIGNATURE_ENTRY: &'static str;
    type Limits: Default;
    fn max_manifest_bytes(limits: &Self::Limits) -> u64;
    /// Checks the signature over `bytes` first, then parses and checks.
    fn verify(bytes: &[u8], sig: &[u8], trusted: &[VerifyingKey], limits: &Self::Limits) -> Result<Self, BundleError>;
    /// Every blob: (sha256, size); the same blob may be listed twice.
    fn blobs(&self) -> Vec<(&str, u64)>;
    fn version(&self) -> &str;
    /// Where a published version's manifest lives in a repository.
    fn repo_path(version: &str) -> String;
}

/// The manifest `entry` of a bundle: at most `max` bytes, its signature
/// checked over the exact bytes before anything parses them, then JSON.
pub fn verified_json<M: serde::de::DeserializeOwned>(
    entry: &str,
    bytes: &[u8],
    sig: &[u8],
    trusted: &[VerifyingKey],
    max: u64,
) -> Result<M, BundleError> {
    if bytes.len() as u64 > max {
        return Err(BundleError::TooLarge { what: entry.into(), size: bytes.len() as u64, limit: max });
    }
    if !super::keys::verify_any(trusted, bytes, sig) {
        return Err(BundleError::Signature { keys: trusted.len() });
    }
    serde_json::from_slice(bytes).map_err(|e| BundleError::Manifest(format!("{entry}: {e}")))
}

/// Where a blob lives in a repository.
pub fn blob_path(sha256: &str) -> String {
    format!("{BLOBS_DIR}/{sha256}")
}

/// Writes a bundle: the manifest's exact `bytes`, their signature, then
/// each blob (sha256 -> file holding its bytes) once. Deterministic.
pub fn write(
    out: &Path,
    names: (&str, &str),
    bytes: &[u8],
    sig: &[u8],
    blobs: &BTreeMap<String, PathBuf>,
) -> Result<(), BundleError> {
    let tmp = out.with_extension("tmp");
    let file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let mtime = super::build_time().unix_timestamp().max(0) as u64;
    let mut append = |path: &str, size: u64, data: &mut dyn Read| {
        tar.append(&super::tar_header(path, size, mtime), data).map_err(io_err(&tmp))
    };
    append(names.0, bytes.len() as u64, &mut &bytes[..])?;
    append(names.1, sig.len() as u64, &mut &sig[..])?;
    for (sha, path) in blobs {
        let mut f = std::fs::File::open(path).map_err(io_err(path))?;
        let size = f.metadata().map_err(io_err(path))?.len();
        append(&blob_path(sha), size, &mut f)?;
    }
    let mut w = tar.into_inner().map_err(io_err(&tmp))?;
    w.flush().map_err(io_err(&tmp))?;
    let file = w.into_inner().map_err(|e| BundleError::Io { path: tmp.clone(), message: e.to_string() })?;
    file.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, out).map_err(io_err(out))
}

/// Whether the file at `path` is a tar whose first entry is `entry`.
pub fn starts_with_entry(path: &Path, entry: &str) -> bool {
    let mut head = [0u8; 512];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && head.starts_with(entry.as_bytes())
        && head[entry.len()] == 0
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
fn head_of<M: BlobManifest>(
    path: &Path,
    entries: &mut Entries,
    trusted: &[VerifyingKey],
    limits: &M::Limits,
) -> Result<(M, Vec<u8>, Vec<u8>), BundleError> {
    let bytes = next_small(path, entries, M::MANIFEST_ENTRY, M::max_manifest_bytes(limits))?;
    let sig = next_small(path, entries, M::SIGNATURE_ENTRY, 64)?;
    let manifest = M::verify(&bytes, &sig, trusted, limits)?;
    Ok((manifest, bytes, sig))
}

fn open_tar(path: &Path) -> Result<tar::Archive<std::io::BufReader<std::fs::File>>, BundleError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    Ok(tar::Archive::new(std::io::BufReader::new(file)))
}

/// Only the verified manifest of a bundle (and its exact bytes and
/// signature), without reading the blobs.
pub fn read_head<M: BlobManifest>(
    path: &Path,
    trusted: &[VerifyingKey],
    limits: &M::Limits,
) -> Result<(M, Vec<u8>, Vec<u8>), BundleError> {
    let mut archive = open_tar(path)?;
    let mut entries = archive.entries().map_err(io_err(path))?;
    head_of(path, &mut entries, trusted, limits)
}

/// Reads a bundle: its manifest is verified before it is parsed, then
/// every blob is handed to `blob(sha256, reader)` after it has been checked
/// to be one the manifest lists, with the size it lists; `blob` must consume
/// the reader, and the bytes are hashed as they pass and compared at the end
/// (a blob that does not match its name fails the whole read; whatever
/// `blob` wrote of it the caller must discard).
pub fn read_bundle<M: BlobManifest>(
    path: &Path,
    trusted: &[VerifyingKey],
    limits: &M::Limits,
    mut blob: impl FnMut(&str, &mut dyn Read) -> Result<(), BundleError>,
) -> Result<(M, Vec<u8>, Vec<u8>), BundleError> {
    let mut archive = open_tar(path)?;
    let mut entries = archive.entries().map_err(io_err(path))?;
    let (manifest, bytes, sig) = head_of::<M>(path, &mut entries, trusted, limits)?;
    let sizes: BTreeMap<String, u64> = manifest.blobs().into_iter().map(|(s, n)| (s.to_string(), n)).collect();
    for e in entries {
        let mut e = e.map_err(|e| BundleError::Container { offset: 0, message: e.to_string() })?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let Some(sha) = name.strip_prefix(&format!("{BLOBS_DIR}/")).map(str::to_string) else {
            return Err(BundleError::Entry {
                path: name,
                reason: "the bundle holds only blobs after its manifest".into(),
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

/// Puts a bundle into the repository at `repo`: blobs it lacks (each
/// checked against its name as it is written), the manifest and its
/// signature, then the channel's signed metadata pointing at the manifest.
/// Refuses a bundle that does not verify with `key` and a version not above
/// the channel's.
pub fn publish<M: BlobManifest>(
    repo: &Path,
    bundle: &Path,
    channel: &str,
    key: &ed25519_dalek::SigningKey,
    expires_in: std::time::Duration,
    rollout_percent: u8,
) -> Result<super::channel::ChannelMeta, BundleError> {
    let previous = super::channel::check_publish(repo, channel, key, rollout_percent)?;
    let limits = M::Limits::default();
    let (head, _, _) = read_head::<M>(bundle, &[key.verifying_key()], &limits)?;
    let version: Version = head.version().parse().map_err(BundleError::Manifest)?;
    super::channel::check_version(previous.as_ref(), channel, version)?;
    let blobs = repo.join(BLOBS_DIR);
    std::fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
    let (manifest, bytes, sig) = read_bundle::<M>(bundle, &[key.verifying_key()], &limits, |sha, r| {
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
    for (sha, _) in manifest.blobs() {
        let tmp = blobs.join(format!(".{sha}.tmp"));
        if tmp.exists() {
            std::fs::rename(&tmp, blobs.join(sha)).map_err(io_err(&tmp))?;
        }
    }
    let rel = M::repo_path(manifest.version());
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

/// sha256 and size of a file.
pub fn hash_file(path: &Path) -> Result<(u64, String), BundleError> {
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h).map_err(io_err(path))?;
    Ok((n, hex::encode(h.finalize())))
}
