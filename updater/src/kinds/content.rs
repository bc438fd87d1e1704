//! Course content: a signed manifest of the content pack's files (path,
//! size, sha256), each file fetched by its sha256 from the repository's
//! `blobs/` only when neither the installed version nor the cache has it,
//! so a one-file fix costs that file. The slot is the pack itself, with the
//! manifest and its signature kept beside it (`.content.json`,
//! `.content.json.sig`) so it can be re-verified at any time. The node's /readyz
//! reports the `content_version` it serves.

use super::Payload;
use crate::engine::{disk, sha256_file};
use crate::node::NodeControl;
use crate::{UpdateError, Updater};
use lms_bundle::channel::BundleRef;
use lms_bundle::content::{self as format, ContentLimits, ContentManifest};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest and signature a content slot keeps beside the pack.
pub const SLOT_MANIFEST: &str = ".content.json";
pub const SLOT_SIGNATURE: &str = ".content.json.sig";

#[derive(Default)]
pub struct Content {
    pub limits: ContentLimits,
}

fn blobs(u: &Updater) -> PathBuf {
    u.layout.cache().join("blobs")
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> UpdateError + '_ {
    move |e| UpdateError::Disk(format!("{}: {e}", path.display()))
}

/// The files of the installed version by sha256 (one path each), from its
/// manifest: what an update may reuse instead of downloading.
fn installed_files(u: &Updater) -> BTreeMap<String, PathBuf> {
    let Ok(dir) = std::fs::canonicalize(u.layout.current()) else { return BTreeMap::new() };
    let Ok(bytes) = std::fs::read(dir.join(SLOT_MANIFEST)) else { return BTreeMap::new() };
    let Ok(m) = serde_json::from_slice::<ContentManifest>(&bytes) else { return BTreeMap::new() };
    // Reused bytes are hashed again as they are staged, so a file changed on
    // disk since is caught there, not trusted here.
    m.files.into_iter().map(|f| (f.sha256, dir.join(f.path))).collect()
}

impl Content {
    /// The manifest at `manifest` with its signature beside it, verified
    /// (signature before parse).
    fn verified(&self, u: &Updater, manifest: &Path) -> Result<(ContentManifest, Vec<u8>, Vec<u8>), UpdateError> {
        let bytes = std::fs::read(manifest).map_err(io(manifest))?;
        let sig_path = sig_of(manifest);
        let sig = std::fs::read(&sig_path).map_err(io(&sig_path))?;
        let m = format::verify_manifest(&bytes, &sig, &u.trusted, &self.limits)?;
        Ok((m, bytes, sig))
    }
}

fn sig_of(manifest: &Path) -> PathBuf {
    let mut s = manifest.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

impl Payload for Content {
    fn name(&self) -> &'static str {
        "content"
    }

    fn fetch(&self, u: &Updater, offer: &BundleRef) -> Result<PathBuf, UpdateError> {
        let manifest = u.layout.cache().join(format!("{}.manifest", offer.sha256));
        if offer.size > self.limits.max_manifest_bytes {
            return Err(UpdateError::Refused(format!(
                "{}: {} bytes, over the {}-byte limit for a content manifest",
                offer.path, offer.size, self.limits.max_manifest_bytes
            )));
        }
        u.download_to(&offer.path, offer.size, &offer.sha256, &manifest)?;
        let sig = u.transport.fetch(&format!("{}.sig", offer.path), 64).map_err(UpdateError::Fetch)?;
        crate::state::write_atomic(&sig_of(&manifest), &sig).map_err(UpdateError::Disk)?;
        let (m, _, _) = self.verified(u, &manifest)?;

        let have = installed_files(u);
        let dir = blobs(u);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let wanted: BTreeMap<&str, u64> = m.files.iter().map(|f| (f.sha256.as_str(), f.size)).collect();
        // Blobs of a version no longer offered only take space.
        for e in std::fs::read_dir(&dir).map_err(io(&dir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !wanted.contains_key(name.trim_end_matches(".part")) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let missing: Vec<(&str, u64)> = wanted
            .iter()
            .filter(|(sha, _)| !have.contains_key(**sha) && !dir.join(sha).exists())
            .map(|(sha, size)| (*sha, *size))
            .collect();
        let bytes: u64 = missing.iter().map(|(_, s)| s).sum();
        u.need_space(bytes.saturating_mul(2), &format!("{} new content files ({bytes} bytes)", missing.len()))?;
        tracing::info!(version = %m.content_version, files = missing.len(), bytes, "downloading the content files this node lacks");
        for (sha, size) in missing {
            u.download_to(&format::blob_path(sha), size, sha, &dir.join(sha))?;
        }
        Ok(manifest)
    }

    fn take_file(&self, u: &Updater, file: &Path) -> Result<PathBuf, UpdateError> {
        let dir = blobs(u);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut written: Vec<String> = Vec::new();
        let read = format::read_bundle(file, &u.trusted, &self.limits, |sha, r| {
            let tmp = dir.join(format!("{sha}.part"));
            let mut f = std::fs::File::create(&tmp)
                .map_err(|e| lms_bundle::BundleError::Io { path: tmp.clone(), message: e.to_string() })?;
            std::io::copy(r, &mut f)
                .map_err(|e| lms_bundle::BundleError::Io { path: tmp.clone(), message: e.to_string() })?;
            written.push(sha.to_string());
            Ok(())
        });
        let (m, bytes, sig) = match read {
            Ok(r) => r,
            Err(e) => {
                for sha in &written {
                    let _ = std::fs::remove_file(dir.join(format!("{sha}.part")));
                }
                return Err(e.into());
            }
        };
        // Every blob hashed to its name: keep them.
        for sha in &written {
            std::fs::rename(dir.join(format!("{sha}.part")), dir.join(sha)).map_err(disk)?;
        }
        let manifest = u.layout.cache().join(format!("{}.manifest", lms_bundle::sha256_hex(&bytes)));
        crate::state::write_atomic(&manifest, &bytes).map_err(UpdateError::Disk)?;
        crate::state::write_atomic(&sig_of(&manifest), &sig).map_err(UpdateError::Disk)?;
        tracing::info!(version = %m.content_version, files = written.len(), "content bundle read from {}", file.display());
        Ok(manifest)
    }

    fn stage(&self, u: &Updater, manifest: &Path, staging: &Path) -> Result<String, UpdateError> {
        let (m, bytes, sig) = self.verified(u, manifest)?;
        std::fs::create_dir_all(staging).map_err(io(staging))?;
        let have = installed_files(u);
        let dir = blobs(u);
        let mut placed: BTreeMap<&str, PathBuf> = BTreeMap::new();
        for f in &m.files {
            let dst = staging.join(&f.path);
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            let downloaded = dir.join(&f.sha256);
            let mut reused = false;
            if let Some(first) = placed.get(f.sha256.as_str()) {
                link_or_copy(first, &dst)?;
            } else if downloaded.exists() {
                std::fs::rename(&downloaded, &dst).map_err(io(&dst))?;
            } else if let Some(old) = have.get(&f.sha256) {
                link_or_copy(old, &dst)?;
                reused = true;
            } else {
                return Err(UpdateError::Fetch(format!(
                    "content file {} ({}) is neither downloaded nor installed",
                    f.path, f.sha256
                )));
            }
            let mut got = sha256_file(&dst)?;
            if got != f.sha256 && reused {
                // The installed copy changed on disk since it was verified
                // (a failing card, a hand edit): fetch the file from the
                // repository instead of refusing this version forever (an
                // install from a bundle file with no network fails here,
                // naming the file).
                tracing::warn!(path = %f.path, "installed content file is damaged; downloading it again");
                std::fs::remove_file(&dst).map_err(io(&dst))?;
                u.download_to(&format::blob_path(&f.sha256), f.size, &f.sha256, &downloaded)?;
                std::fs::rename(&downloaded, &dst).map_err(io(&dst))?;
                got = sha256_file(&dst)?;
            }
            if got != f.sha256 {
                return Err(UpdateError::Refused(format!(
                    "content file {}: sha256 {got}, the signed manifest says {}",
                    f.path, f.sha256
                )));
            }
            placed.insert(f.sha256.as_str(), dst);
        }
        std::fs::write(staging.join(SLOT_MANIFEST), &bytes).map_err(io(staging))?;
        std::fs::write(staging.join(SLOT_SIGNATURE), &sig).map_err(io(staging))?;
        lms_bundle::sync_tree(staging)?;
        Ok(m.content_version)
    }

    fn served(&self, node: &dyn NodeControl) -> Result<Option<String>, String> {
        node.ready_content_version()
    }

    fn verify_slot(&self, u: &Updater, dir: &Path) -> Result<String, String> {
        let (m, _, _) = self.verified(u, &dir.join(SLOT_MANIFEST)).map_err(|e| e.to_string())?;
        for f in &m.files {
            let path = dir.join(&f.path);
            let got = sha256_file(&path).map_err(|e| e.to_string())?;
            if got != f.sha256 {
                return Err(format!("{}: sha256 {got}, manifest says {}", f.path, f.sha256));
            }
        }
        Ok(m.content_version)
    }
}

/// A hard link (slots are never written after they are made, so sharing an
/// inode with the installed version is safe and costs no space), or a copy
/// where links cannot be made.
fn link_or_copy(from: &Path, to: &Path) -> Result<(), UpdateError> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).map(|_| ()).map_err(io(to))
}
