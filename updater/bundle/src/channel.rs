//! Channel metadata: which bundle a channel's nodes should run. Signed like
//! a bundle manifest (signature over the exact bytes, checked first), with a
//! metadata version that only grows (replays are refused), an expiry, and a
//! rollout share that nodes apply by a stable hash of their id.

use super::{BundleError, Version, keys};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const CHANNEL_FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelMeta {
    pub format: u32,
    pub channel: String,
    /// Grows by one with every publish; a node refuses anything older than
    /// the newest it has seen.
    pub metadata_version: u64,
    pub created: String,
    /// RFC 3339. A node with a trustworthy clock refuses metadata past it.
    pub expires: String,
    /// Percent (0-100) of nodes that should take this bundle.
    pub rollout_percent: u8,
    pub bundle: BundleRef,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BundleRef {
    pub version: String,
    /// Relative to the repository root.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

pub fn meta_path(channel: &str) -> String {
    format!("channels/{channel}.json")
}

pub fn sig_path(channel: &str) -> String {
    format!("channels/{channel}.json.sig")
}

pub fn valid_channel_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks the signature over `bytes` first, then parses and checks shape.
pub fn verify(bytes: &[u8], sig: &[u8], trusted: &[VerifyingKey], channel: &str) -> Result<ChannelMeta, BundleError> {
    if !keys::verify_any(trusted, bytes, sig) {
        return Err(BundleError::Signature { keys: trusted.len() });
    }
    let m: ChannelMeta =
        serde_json::from_slice(bytes).map_err(|e| BundleError::Manifest(format!("channel metadata: {e}")))?;
    let bad = |s: String| Err(BundleError::Manifest(format!("channel metadata: {s}")));
    if m.format != CHANNEL_FORMAT {
        return bad(format!("format {} is not {CHANNEL_FORMAT}", m.format));
    }
    if m.channel != channel {
        return bad(format!("is for channel {:?}, not {channel:?}", m.channel));
    }
    if m.rollout_percent > 100 {
        return bad("rollout_percent is over 100".into());
    }
    if let Err(e) = m.bundle.version.parse::<Version>() {
        return bad(format!("bundle.version: {e}"));
    }
    if !super::safe_relative_path(&m.bundle.path) {
        return bad(format!("bundle.path {:?} is not a safe relative path", m.bundle.path));
    }
    // The updater names cache files after it: nothing but 64 hex digits.
    if !super::is_sha256_hex(&m.bundle.sha256) {
        return bad(format!(
            "bundle.sha256 {:?} is not 64 lowercase hex digits",
            super::cap_text(&m.bundle.sha256, 80)
        ));
    }
    if parse_time(&m.expires).is_none() {
        return bad("expires is not an RFC 3339 time".into());
    }
    Ok(m)
}

pub fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Whether `node_id` falls inside a rollout of `percent` for `version`:
/// stable per node and version, spread evenly across nodes.
pub fn in_rollout(node_id: &str, version: &str, percent: u8) -> bool {
    if percent >= 100 {
        return true;
    }
    let h = Sha256::digest(format!("{node_id}\0{version}").as_bytes());
    let bucket = u64::from_be_bytes(h[..8].try_into().unwrap()) % 100;
    bucket < percent as u64
}

pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<(), BundleError> {
    use std::io::Write;
    let io = |e: std::io::Error| BundleError::Io { path: path.to_path_buf(), message: e.to_string() };
    let dir = path.parent().expect("repository paths have a parent");
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// Before anything is published to `channel`: its name and the rollout are
/// sane, and the metadata already there (returned) verifies with `key`.
pub(crate) fn check_publish(
    repo: &std::path::Path,
    channel: &str,
    key: &ed25519_dalek::SigningKey,
    rollout_percent: u8,
) -> Result<Option<ChannelMeta>, BundleError> {
    if !valid_channel_name(channel) {
        return Err(BundleError::Manifest(format!("channel {channel:?}: use letters, digits, '-' and '_'")));
    }
    if rollout_percent > 100 {
        return Err(BundleError::Manifest(format!("rollout {rollout_percent}% is over 100")));
    }
    let io = |p: &std::path::Path| {
        let p = p.to_path_buf();
        move |e: std::io::Error| BundleError::Io { path: p.clone(), message: e.to_string() }
    };
    let meta_file = repo.join(meta_path(channel));
    if !meta_file.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&meta_file).map_err(io(&meta_file))?;
    let sig_file = repo.join(sig_path(channel));
    let sig = std::fs::read(&sig_file).map_err(io(&sig_file))?;
    Ok(Some(verify(&bytes, &sig, &[key.verifying_key()], channel)?))
}

/// Refuses a version a channel's nodes would never take: not above the one
/// it offers.
pub(crate) fn check_version(
    previous: Option<&ChannelMeta>,
    channel: &str,
    version: Version,
) -> Result<(), BundleError> {
    if let Some(p) = previous {
        let current: Version = p.bundle.version.parse().map_err(BundleError::Manifest)?;
        if version <= current {
            return Err(BundleError::Manifest(format!(
                "channel {channel} already offers {current}; nodes never take {version} (not above a version they ran)"
            )));
        }
    }
    Ok(())
}

/// Writes the channel's signed metadata pointing at `bundle` (metadata
/// version one above `previous`).
pub(crate) fn commit(
    repo: &std::path::Path,
    channel: &str,
    key: &ed25519_dalek::SigningKey,
    previous: Option<&ChannelMeta>,
    expires_in: std::time::Duration,
    rollout_percent: u8,
    bundle: BundleRef,
) -> Result<ChannelMeta, BundleError> {
    let now = super::build_time();
    let meta = ChannelMeta {
        format: CHANNEL_FORMAT,
        channel: channel.to_string(),
        metadata_version: previous.map_or(1, |p| p.metadata_version + 1),
        created: super::rfc3339(now),
        expires: super::rfc3339(now + expires_in),
        rollout_percent,
        bundle,
    };
    let meta_bytes = serde_json::to_vec_pretty(&meta).expect("json");
    // A reader between the two renames sees a mismatched pair, refuses it
    // as unsigned and tries again at its next poll.
    write_atomic(&repo.join(sig_path(channel)), &keys::sign(key, &meta_bytes))?;
    write_atomic(&repo.join(meta_path(channel)), &meta_bytes)?;
    Ok(meta)
}

/// Places the module bundle `bundle` in the static repository at `repo` and
/// writes signed metadata for `channel` (metadata version one above the
/// current one). Plain files, each landing by rename. Refuses a bundle that
/// does not verify with `key`, existing metadata that does not, and a
/// version not above the one the channel already offers.
pub fn publish(
    repo: &std::path::Path,
    bundle: &std::path::Path,
    channel: &str,
    key: &ed25519_dalek::SigningKey,
    expires_in: std::time::Duration,
    rollout_percent: u8,
) -> Result<ChannelMeta, BundleError> {
    let previous = check_publish(repo, channel, key, rollout_percent)?;
    let scratch = std::env::temp_dir().join(format!(
        "lms-publish-{}-{}",
        std::process::id(),
        super::sha256_hex(channel.as_bytes())
    ));
    let _ = std::fs::remove_dir_all(&scratch);
    let manifest = super::verify_and_unpack(bundle, &[key.verifying_key()], &Default::default(), &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let manifest = manifest?;
    let version: Version = manifest.bundle_version.parse().map_err(BundleError::Manifest)?;
    check_version(previous.as_ref(), channel, version)?;
    let bytes =
        std::fs::read(bundle).map_err(|e| BundleError::Io { path: bundle.to_path_buf(), message: e.to_string() })?;
    let rel = format!("bundles/lms-modules-{version}.bundle");
    write_atomic(&repo.join(&rel), &bytes)?;
    let bundle_ref = BundleRef {
        version: version.to_string(),
        path: rel,
        size: bytes.len() as u64,
        sha256: super::sha256_hex(&bytes),
    };
    commit(repo, channel, key, previous.as_ref(), expires_in, rollout_percent, bundle_ref)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_is_stable_and_proportional() {
        let inside = (0..10_000).filter(|i| in_rollout(&format!("edge-{i}"), "1.2.0", 25)).count();
        assert!((2200..2800).contains(&inside), "{inside}");
        assert_eq!(in_rollout("edge-7", "1.2.0", 25), in_rollout("edge-7", "1.2.0", 25));
        assert!(in_rollout("x", "1.0.0", 100));
        assert!(!(0..1000).any(|i| in_rollout(&format!("n{i}"), "1.0.0", 0)));
    }

    /// Issue 10, case 12: the signed `bundle.sha256` became part of a cache
    /// path without a format check.
    #[test]
    fn bundle_sha256_must_be_hex() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        for (sha, ok) in [("a".repeat(64), true), ("../../etc/passwd".into(), false), ("A".repeat(64), false)] {
            let meta = serde_json::json!({
                "format": CHANNEL_FORMAT, "channel": "stable", "metadata_version": 1, "created": "2026-01-01T00:00:00Z",
                "expires": "2099-01-01T00:00:00Z", "rollout_percent": 100,
                "bundle": {"version": "1.0.0", "path": "bundles/b.bundle", "size": 1, "sha256": sha},
            });
            let bytes = serde_json::to_vec(&meta).unwrap();
            let sig = keys::sign(&key, &bytes);
            let r = verify(&bytes, &sig, &[key.verifying_key()], "stable");
            assert_eq!(r.is_ok(), ok, "{sha}: {r:?}");
            if !ok {
                assert!(r.unwrap_err().to_string().contains("bundle.sha256"));
            }
        }
    }
}
