//! `lms-image verify DIR --pubkey PUB`: exit 0 only when manifest.sig holds
//! and every listed file matches its sha256; otherwise name what differs.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    dir: PathBuf,
    #[arg(long)]
    pubkey: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let key =
        lms_bundle::keys::load_verifying(&a.pubkey).map_err(|e| anyhow::anyhow!("{}: {e}", a.pubkey.display()))?;
    let bad = crate::manifest::verify(&a.dir, &key).map_err(anyhow::Error::msg)?;
    if !bad.is_empty() {
        anyhow::bail!("{} does not verify:\n  {}", a.dir.display(), bad.join("\n  "));
    }
    let (m, _) = crate::manifest::Manifest::read(&a.dir).map_err(anyhow::Error::msg)?;
    println!(
        "{}: signature by key {} holds; {} files match their sha256",
        a.dir.display(),
        lms_bundle::keys::key_id(&key),
        m.files.len()
    );
    Ok(())
}
