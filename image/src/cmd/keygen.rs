use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Writes PREFIX.key and PREFIX.pub; refuses to overwrite.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let (secret, public) = lms_bundle::keys::generate(&a.out)?;
    let key = lms_bundle::keys::load_verifying(&public)?;
    println!("private key {} (keep it offline)", secret.display());
    println!("public key  {} (id {})", public.display(), lms_bundle::keys::key_id(&key));
    Ok(())
}
