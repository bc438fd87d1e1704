use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A module bundle (lms-image bundle), a content bundle (lms-image content
    /// bundle) or a system bundle (DIR/system.bundle of lms-image build).
    #[arg(long)]
    bundle: PathBuf,
    /// Repository root directory (plain files: any web server, CDN or USB stick carries it).
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

pub fn run(a: Args) -> anyhow::Result<()> {
    let expires_in = lms_settings::parse_duration(&a.expires).map_err(|m| anyhow::anyhow!("--expires: {m}"))?;
    let key = lms_bundle::keys::load_signing(&a.key)?;
    // One command for every kind: content and system bundles are plain
    // tars that start with their manifest, a module bundle a gzip'd tar.
    let publish = if lms_bundle::content::is_content_bundle(&a.bundle) {
        lms_bundle::content::publish
    } else if lms_bundle::system::is_system_bundle(&a.bundle) {
        lms_bundle::system::publish
    } else {
        lms_bundle::channel::publish
    };
    let meta = publish(&a.repo, &a.bundle, &a.channel, &key, expires_in, a.rollout)
        .with_context(|| format!("publishing {} to {}", a.bundle.display(), a.repo.display()))?;
    println!(
        "published {} to channel {} (metadata version {}, rollout {}%, expires {}) in {}",
        meta.bundle.version,
        a.channel,
        meta.metadata_version,
        meta.rollout_percent,
        meta.expires,
        a.repo.display()
    );
    Ok(())
}
