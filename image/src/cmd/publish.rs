//! Publishing writes plain files (any web server, CDN or USB stick carries
//! them): `bundles/<name>` and `channels/<channel>.json` + `.json.sig`.
//! Every file lands by rename, so a reader sees the old or the new file,
//! never half of one.

use anyhow::{Context, bail};
use lms_bundle::channel::{BundleRef, CHANNEL_FORMAT, ChannelMeta, meta_path, sig_path, valid_channel_name};
use lms_bundle::{Version, keys};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    bundle: PathBuf,
    /// Repository root directory.
    #[arg(long)]
    repo: PathBuf,
    #[arg(long)]
    channel: String,
    /// Signing key (PREFIX.key).
    #[arg(long)]
    key: PathBuf,
    /// How long nodes may act on this metadata: 30d, 12h, 90m, 3600s.
    #[arg(long, default_value = "30d")]
    expires: String,
    /// Percent of nodes (by a stable hash of their id) that should take it.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(0..=100))]
    rollout: u8,
}

fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().with_context(|| format!("--expires {s:?}: expected a number and a unit (d, h, m, s)"))?;
    let secs = match unit {
        "d" => n * 86400,
        "h" => n * 3600,
        "m" => n * 60,
        "s" | "" => n,
        _ => bail!("--expires {s:?}: unknown unit {unit:?} (d, h, m, s)"),
    };
    Ok(Duration::from_secs(secs))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("path has a parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("temp file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if !valid_channel_name(&a.channel) {
        bail!("--channel {:?}: use letters, digits, '-' and '_'", a.channel);
    }
    let expires_in = parse_duration(&a.expires)?;
    let key = keys::load_signing(&a.key)?;
    let public = key.verifying_key();

    // Publish only what a node would accept: verify the bundle fully first.
    let scratch = tempfile::tempdir()?;
    let manifest = lms_bundle::verify_and_unpack(&a.bundle, &[public], &Default::default(), &scratch.path().join("x"))
        .with_context(|| format!("{} does not verify with this key", a.bundle.display()))?;
    let version: Version = manifest.bundle_version.parse().map_err(anyhow::Error::msg)?;

    let meta_file = a.repo.join(meta_path(&a.channel));
    let previous = if meta_file.exists() {
        let bytes = std::fs::read(&meta_file).with_context(|| format!("reading {}", meta_file.display()))?;
        let sig = std::fs::read(a.repo.join(sig_path(&a.channel)))
            .with_context(|| format!("reading {}", a.repo.join(sig_path(&a.channel)).display()))?;
        Some(
            lms_bundle::channel::verify(&bytes, &sig, &[public], &a.channel)
                .with_context(|| format!("{}: existing metadata does not verify with this key", meta_file.display()))?,
        )
    } else {
        None
    };
    if let Some(p) = &previous {
        let current: Version = p.bundle.version.parse().map_err(anyhow::Error::msg)?;
        if version <= current {
            bail!(
                "channel {} already offers {current}; nodes never take {version} (a version at or below one they ran)",
                a.channel
            );
        }
    }

    let bytes = std::fs::read(&a.bundle).with_context(|| format!("reading {}", a.bundle.display()))?;
    let rel = format!("bundles/lms-modules-{version}.bundle");
    write_atomic(&a.repo.join(&rel), &bytes)?;
    let now = lms_bundle::build_time();
    let meta = ChannelMeta {
        format: CHANNEL_FORMAT,
        channel: a.channel.clone(),
        metadata_version: previous.as_ref().map_or(1, |p| p.metadata_version + 1),
        created: lms_bundle::rfc3339(now),
        expires: lms_bundle::rfc3339(now + expires_in),
        rollout_percent: a.rollout,
        bundle: BundleRef {
            version: version.to_string(),
            path: rel.clone(),
            size: bytes.len() as u64,
            sha256: lms_bundle::sha256_hex(&bytes),
        },
    };
    let meta_bytes = serde_json::to_vec_pretty(&meta)?;
    let sig = keys::sign(&key, &meta_bytes);
    // The signature goes first: a reader between the two renames sees a
    // mismatch, refuses it and tries again next poll.
    write_atomic(&a.repo.join(sig_path(&a.channel)), &sig)?;
    write_atomic(&meta_file, &meta_bytes)?;
    println!(
        "published {version} to channel {} (metadata version {}, rollout {}%, expires {}) in {}",
        a.channel,
        meta.metadata_version,
        meta.rollout_percent,
        meta.expires,
        a.repo.display()
    );
    Ok(())
}
