//! System bundles: the whole appliance system (kernel, initramfs, and the
//! system partition's image with its dm-verity tree) as a blob bundle
//! ([`crate::blobs`]) whose manifest `system.json` names each part's size
//! and sha256, the verity parameters and the system version. Published, the
//! manifest lives under `system/`; the parts are blobs beside the content's.
//!
//! The updater writes `system.img` into the inactive slot's partition, reads
//! it back against its sha256 and the verity tree against `verity`, and puts
//! the kernel and initramfs on the ESP; the boot entry it writes carries the
//! root hash, which the initramfs hands to dm-verity.

use super::blobs::{self, BlobManifest};
use super::verity::Verity;
use super::{BundleError, Version, keys, rfc3339};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const SYSTEM_FORMAT: u32 = 1;
pub const MANIFEST_ENTRY: &str = "system.json";
pub const SIGNATURE_ENTRY: &str = "system.sig";
/// The three parts, by name.
pub const KERNEL: &str = "vmlinuz";
pub const INITRD: &str = "initrd.img";
pub const IMAGE: &str = "system.img";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SystemManifest {
    pub format: u32,
    /// Monotonic: a node refuses a system older than the one it runs.
    pub system_version: String,
    pub created: String,
    /// The image definition's name (a node takes systems of its own kind only).
    pub name: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Kernel command line besides the slot's own `lms.slot`/`lms.verity` options.
    pub cmdline: String,
    pub parts: Vec<SystemPart>,
    pub verity: Verity,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SystemPart {
    /// `vmlinuz`, `initrd.img` or `system.img`.
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// Caps on what a system manifest may make a node write.
#[derive(Debug, Clone)]
pub struct SystemLimits {
    pub max_manifest_bytes: u64,
    /// The kernel and the initramfs each (they go to the ESP).
    pub max_boot_file_bytes: u64,
    /// The system image (it goes to a slot partition, which also bounds it).
    pub max_image_bytes: u64,
}

impl Default for SystemLimits {
    fn default() -> Self {
        SystemLimits { max_manifest_bytes: 64 << 10, max_boot_file_bytes: 128 << 20, max_image_bytes: 8 << 30 }
    }
}

impl SystemManifest {
    pub fn part(&self, name: &str) -> &SystemPart {
        self.parts.iter().find(|p| p.name == name).expect("verified manifests list every part")
    }

    /// The kernel options of a boot entry for this system in `slot`.
    pub fn entry_options(&self, slot: char) -> String {
        entry_options(&self.cmdline, slot, &self.verity)
    }
}

/// The boot entries' `sort-key`: the same for both slots, so systemd-boot
/// orders them by `version`, the newest first (../shared/OTA.md).
pub const SORT_KEY: &str = "lms";

/// A slot's boot entry (systemd-boot Type #1): title, `version` (the boot
/// loader boots the highest first), the shared `sort-key`, the slot's kernel
/// and initramfs on the ESP (`/a/`, `/b/`), and the kernel options that
/// carry the slot and its verity root.
pub fn boot_entry(title: &str, version: &str, slot: char, options: &str) -> String {
    format!(
        "title {title} (system {version}, slot {slot})\nversion {version}\nsort-key {SORT_KEY}\nlinux /{slot}/vmlinuz\ninitrd /{slot}/initrd.img\noptions {options}\n"
    )
}

/// The kernel options of a boot entry: the system's command line, the slot
/// (`lms.slot=a|b`, the partition `lms-system-<slot>`) and its verity
/// parameters (`lms.verity=DATA_BLOCKS:HASH_OFFSET:SALT:ROOT_HASH`), which
/// the initramfs hands to dm-verity.
pub fn entry_options(cmdline: &str, slot: char, v: &Verity) -> String {
    format!("{cmdline} lms.slot={slot} lms.verity={}:{}:{}:{}", v.data_blocks, v.hash_offset, v.salt, v.root_hash)
}

/// Checks the signature over `bytes` first, then parses and checks every
/// field: format, version, the three parts (once each, sizes within the
/// limits, sha256 in form), the verity parameters against the image size.
pub fn verify_manifest(
    bytes: &[u8],
    sig: &[u8],
    trusted: &[VerifyingKey],
    limits: &SystemLimits,
) -> Result<SystemManifest, BundleError> {
    let m: SystemManifest = blobs::verified_json(MANIFEST_ENTRY, bytes, sig, trusted, limits.max_manifest_bytes)?;
    let bad = |s: String| Err(BundleError::Manifest(format!("{MANIFEST_ENTRY}: {s}")));
    if m.format != SYSTEM_FORMAT {
        return bad(format!("format {} is not {SYSTEM_FORMAT}", m.format));
    }
    if let Err(e) = m.system_version.parse::<Version>() {
        return bad(format!("system_version: {e}"));
    }
    if m.cmdline.contains('\n') || m.kernel.contains('\n') || m.name.contains('\n') {
        return bad("name, kernel and cmdline are one line each".into());
    }
    let mut names: Vec<&str> = m.parts.iter().map(|p| p.name.as_str()).collect();
    names.sort();
    if names != [INITRD, IMAGE, KERNEL] {
        return bad(format!("parts are {names:?}; a system has exactly {KERNEL}, {INITRD} and {IMAGE}"));
    }
    for p in &m.parts {
        if !super::is_sha256_hex(&p.sha256) {
            return bad(format!("{}: sha256 is not 64 lowercase hex digits", p.name));
        }
        let limit = if p.name == IMAGE { limits.max_image_bytes } else { limits.max_boot_file_bytes };
        if p.size > limit {
            return Err(BundleError::TooLarge { what: p.name.clone(), size: p.size, limit });
        }
    }
    m.verity.check().map_err(|e| BundleError::Manifest(format!("{MANIFEST_ENTRY}: {e}")))?;
    if m.verity.total_bytes() != m.part(IMAGE).size {
        return bad(format!(
            "verity tree ends at byte {}, {IMAGE} is {} bytes",
            m.verity.total_bytes(),
            m.part(IMAGE).size
        ));
    }
    Ok(m)
}

impl BlobManifest for SystemManifest {
    const MANIFEST_ENTRY: &'static str = MANIFEST_ENTRY;
    const SIGNATURE_ENTRY: &'static str = SIGNATURE_ENTRY;
    type Limits = SystemLimits;
    fn max_manifest_bytes(limits: &SystemLimits) -> u64 {
        limits.max_manifest_bytes
    }
    fn verify(bytes: &[u8], sig: &[u8], trusted: &[VerifyingKey], limits: &SystemLimits) -> Result<Self, BundleError> {
        verify_manifest(bytes, sig, trusted, limits)
    }
    fn blobs(&self) -> Vec<(&str, u64)> {
        self.parts.iter().map(|p| (p.sha256.as_str(), p.size)).collect()
    }
    fn version(&self) -> &str {
        &self.system_version
    }
    fn repo_path(version: &str) -> String {
        manifest_path(version)
    }
}

/// What a system is built from (the image build's outputs).
pub struct SystemParts<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub kernel_release: &'a str,
    pub cmdline: &'a str,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    /// The system partition's image: filesystem, then the verity tree.
    pub image: &'a Path,
    pub verity: Verity,
}

/// Writes the signed system bundle to `out`. Deterministic: same parts and
/// SOURCE_DATE_EPOCH, same bytes.
pub fn create(p: &SystemParts, key: &ed25519_dalek::SigningKey, out: &Path) -> Result<SystemManifest, BundleError> {
    p.version.parse::<Version>().map_err(|e| BundleError::Manifest(format!("system_version: {e}")))?;
    let mut parts = Vec::new();
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (name, path) in [(KERNEL, p.kernel), (INITRD, p.initrd), (IMAGE, p.image)] {
        let (size, sha256) = blobs::hash_file(path)?;
        files.insert(sha256.clone(), path.to_path_buf());
        parts.push(SystemPart { name: name.into(), size, sha256 });
    }
    let manifest = SystemManifest {
        format: SYSTEM_FORMAT,
        system_version: p.version.into(),
        created: rfc3339(super::build_time()),
        name: p.name.into(),
        kernel: p.kernel_release.into(),
        cmdline: p.cmdline.into(),
        parts,
        verity: p.verity.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&manifest).expect("json");
    // Refuse to sign what a node would refuse.
    let sig = keys::sign(key, &bytes);
    verify_manifest(&bytes, &sig, &[key.verifying_key()], &SystemLimits::default())?;
    blobs::write(out, (MANIFEST_ENTRY, SIGNATURE_ENTRY), &bytes, &sig, &files)?;
    Ok(manifest)
}

/// Whether the file at `path` is a system bundle.
pub fn is_system_bundle(path: &Path) -> bool {
    blobs::starts_with_entry(path, MANIFEST_ENTRY)
}

/// Where a published system version's manifest lives in a repository.
pub fn manifest_path(version: &str) -> String {
    format!("system/lms-system-{version}.json")
}

/// Puts a system bundle into the repository (see [`blobs::publish`]).
pub fn publish(
    repo: &Path,
    bundle: &Path,
    channel: &str,
    key: &ed25519_dalek::SigningKey,
    expires_in: std::time::Duration,
    rollout_percent: u8,
) -> Result<super::channel::ChannelMeta, BundleError> {
    blobs::publish::<SystemManifest>(repo, bundle, channel, key, expires_in, rollout_percent)
}
