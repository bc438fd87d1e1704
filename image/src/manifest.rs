//! manifest.json and manifest.sig: what an image is made of and the
//! sha256 of every file the build wrote, signed (ed25519, the same keys as
//! module bundles) over the manifest's exact bytes. `verify` needs only the
//! public key; `inspect` reads it without one.

use crate::disk::Placed;
use crate::inputs::Resolved;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// 2: A/B system slots with dm-verity (`lms-system-a`, `lms-system-b`), `system_version`, `verity`.
pub const FORMAT: u32 = 2;
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    pub arch: String,
    pub builder: String,
    pub source_date_epoch: i64,
    /// The system's version (monotonic; what `system.bundle` updates nodes to).
    pub system_version: String,
    pub kernel: String,
    /// Slot A's kernel command line (direct kernel boot uses it as is).
    pub cmdline: String,
    /// Slot A's dm-verity parameters.
    pub verity: Option<lms_bundle::verity::Verity>,
    /// Pinned inputs, our binaries and the factory bundle; absent ones carry the reason.
    pub inputs: Vec<Input>,
    /// Files of the output directory (paths relative to it).
    pub files: Vec<FileEntry>,
    pub partitions: Vec<Placed>,
    /// What each partition holds.
    pub contents: Vec<Content>,
    /// Key id of the key that signed the manifest and the factory bundle.
    pub signed_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Input {
    pub kind: String,
    pub name: String,
    pub version: String,
    pub source: String,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub absent: Option<String>,
}

impl From<&Resolved> for Input {
    fn from(r: &Resolved) -> Input {
        Input {
            kind: r.kind.into(),
            name: r.name.clone(),
            version: r.version.clone(),
            source: r.source.clone(),
            sha256: r.sha256.clone(),
            // Stable words, not the fetch error (which differs between build
            // machines and would make the manifest host-dependent); the build
            // log has the details.
            absent: r.absent.as_ref().map(|_| format!("could not be had from its pinned sources ({})", r.source)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Content {
    pub partition: String,
    pub path: String,
    pub size: u64,
}

impl Manifest {
    pub fn read(dir: &Path) -> Result<(Manifest, Vec<u8>), String> {
        let p = dir.join(MANIFEST);
        let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", p.display()))?;
        if m.format != FORMAT {
            return Err(format!("{}: format {} is not {FORMAT}", p.display(), m.format));
        }
        Ok((m, bytes))
    }
}

/// The manifest bytes of `dir` when `key`'s signature holds over them:
/// Ok(Err(why)) when it does not.
fn signed_bytes(dir: &Path, key: &lms_bundle::keys::VerifyingKey) -> Result<Result<Vec<u8>, String>, String> {
    let p = dir.join(MANIFEST);
    let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let s = dir.join(SIGNATURE);
    let sig_text = std::fs::read_to_string(&s).map_err(|e| format!("{}: {e}", s.display()))?;
    let sig = hex::decode(sig_text.trim()).map_err(|e| format!("{}: not hex: {e}", s.display()))?;
    if !lms_bundle::keys::verify_any(std::slice::from_ref(key), &bytes, &sig) {
        return Ok(Err(format!(
            "{}: the signature does not hold for {} with key {}",
            s.display(),
            p.display(),
            lms_bundle::keys::key_id(key)
        )));
    }
    Ok(Ok(bytes))
}

/// The manifest of `dir`, from the very bytes whose signature `key` checked
/// (read once: nothing can swap the file between the check and the use).
pub fn read_verified(dir: &Path, key: &lms_bundle::keys::VerifyingKey) -> Result<Manifest, String> {
    let bytes = signed_bytes(dir, key)??;
    let p = dir.join(MANIFEST);
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", p.display()))?;
    if m.format != FORMAT {
        return Err(format!("{}: format {} is not {FORMAT}", p.display(), m.format));
    }
    Ok(m)
}

/// Writes manifest.json and manifest.sig (hex ed25519 signature + newline).
pub fn write_signed(dir: &Path, m: &Manifest, key: &lms_bundle::keys::SigningKey) -> Result<(), String> {
    let mut bytes = serde_json::to_vec_pretty(m).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    let sig = lms_bundle::keys::sign(key, &bytes);
    std::fs::write(dir.join(MANIFEST), &bytes).map_err(|e| e.to_string())?;
    std::fs::write(dir.join(SIGNATURE), format!("{}\n", hex::encode(sig))).map_err(|e| e.to_string())
}

/// Checks the signature, then every listed file; returns what differs
/// (empty when the image is intact).
pub fn verify(dir: &Path, key: &lms_bundle::keys::VerifyingKey) -> Result<Vec<String>, String> {
    if let Err(why) = signed_bytes(dir, key)? {
        return Ok(vec![why]);
    }
    let (m, _) = Manifest::read(dir)?;
    let mut bad = Vec::new();
    for f in &m.files {
        let path = dir.join(&f.path);
        match std::fs::metadata(&path) {
            Err(e) => bad.push(format!("{}: {e}", f.path)),
            Ok(md) if md.len() != f.size => {
                bad.push(format!("{}: size {} but the manifest says {}", f.path, md.len(), f.size))
            }
            Ok(_) => {
                let got = lms_bundle::sha256_file(&path)?;
                if got != f.sha256 {
                    let at = first_difference_hint(&path, &m, f);
                    bad.push(format!("{}: sha256 {got} but the manifest says {}{at}", f.path, f.sha256));
                }
            }
        }
    }
    Ok(bad)
}

/// For disk.img: which partitions no longer match, with their byte ranges.
fn first_difference_hint(path: &Path, m: &Manifest, f: &FileEntry) -> String {
    if f.path != "disk.img" {
        return String::new();
    }
    let changed: Vec<String> = m
        .partitions
        .iter()
        .filter(|p| lms_bundle::sha256_region(path, p.offset, p.size).ok().as_deref() != Some(p.sha256.as_str()))
        .map(|p| format!("{} (bytes {}..{})", p.name, p.offset, p.offset + p.size))
        .collect();
    if changed.is_empty() {
        " (outside the partitions: GPT or padding)".into()
    } else {
        format!(" (changed: partition {})", changed.join(", "))
    }
}
