//! LMS modules: one signed bundle (gzip'd tar) per version, unpacked into
//! a module directory; the node's /readyz reports its `bundle_version`.

use super::Payload;
use crate::engine::sha256_file;
use crate::node::NodeControl;
use crate::{UpdateError, Updater};
use lms_bundle::channel::BundleRef;
use std::path::{Path, PathBuf};

pub struct Modules;

impl Payload for Modules {
    fn name(&self) -> &'static str {
        "modules"
    }

    fn fetch(&self, u: &Updater, b: &BundleRef) -> Result<PathBuf, UpdateError> {
        let done = u.layout.cache().join(format!("{}.bundle", b.sha256));
        u.need_space(b.size.saturating_mul(4), &format!("a {}-byte bundle, downloaded and staged,", b.size))?;
        u.download_to(&b.path, b.size, &b.sha256, &done)?;
        Ok(done)
    }

    fn take_file(&self, _u: &Updater, file: &Path) -> Result<PathBuf, UpdateError> {
        Ok(file.to_path_buf())
    }

    fn stage(&self, u: &Updater, bundle: &Path, staging: &Path) -> Result<String, UpdateError> {
        let manifest = lms_bundle::verify_and_unpack(bundle, &u.trusted, &u.limits, staging)?;
        let inner: lms_abi::ModuleManifest = std::fs::read(staging.join(lms_abi::MANIFEST_FILE))
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| UpdateError::Refused(format!("payload {}: {e}", lms_abi::MANIFEST_FILE)))?;
        if inner.bundle_version != manifest.bundle_version {
            return Err(UpdateError::Refused(format!(
                "payload {} says bundle_version {}, the signed manifest says {}",
                lms_abi::MANIFEST_FILE,
                inner.bundle_version,
                manifest.bundle_version
            )));
        }
        Ok(manifest.bundle_version)
    }

    fn served(&self, node: &dyn NodeControl) -> Result<Option<String>, String> {
        node.ready_version()
    }

    fn verify_slot(&self, _u: &Updater, dir: &Path) -> Result<String, String> {
        let m: lms_abi::ModuleManifest = serde_json::from_slice(
            &std::fs::read(dir.join(lms_abi::MANIFEST_FILE)).map_err(|e| format!("{}: {e}", dir.display()))?,
        )
        .map_err(|e| e.to_string())?;
        let mut files: Vec<(&str, &str)> = m.modules.iter().map(|e| (e.file.as_str(), e.sha256.as_str())).collect();
        files.extend(m.content.iter().map(|c| (c.file.as_str(), c.sha256.as_str())));
        files.extend(m.assets.iter().map(|a| (a.file.as_str(), a.sha256.as_str())));
        for (f, want) in files {
            let got = sha256_file(&dir.join(f)).map_err(|e| e.to_string())?;
            if got != want {
                return Err(format!("{f}: sha256 {got}, manifest says {want}"));
            }
        }
        Ok(m.bundle_version)
    }
}
