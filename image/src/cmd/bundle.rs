use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Module directory, as `cargo xtask modules` writes it.
    #[arg(long)]
    modules: PathBuf,
    /// Bundle version (MAJOR.MINOR.PATCH); must match the directory's manifest.
    #[arg(long)]
    version: String,
    /// Signing key (PREFIX.key from keygen).
    #[arg(long)]
    key: PathBuf,
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let key = lms_bundle::keys::load_signing(&a.key)?;
    let m = lms_bundle::create(&a.modules, &a.version, &key, &a.out)
        .with_context(|| format!("bundling {}", a.modules.display()))?;
    let bytes = std::fs::read(&a.out).with_context(|| format!("reading back {}", a.out.display()))?;
    println!(
        "bundle {} version {} ({} files, {} bytes, sha256 {}) signed by key {}",
        a.out.display(),
        m.bundle_version,
        m.files.len(),
        bytes.len(),
        lms_bundle::sha256_hex(&bytes),
        lms_bundle::keys::key_id(&key.verifying_key())
    );
    Ok(())
}
