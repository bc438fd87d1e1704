//! `lms-image initramfs [SPEC] --out DIR`: kernel + initramfs from the
//! definition's Debian packages (the boot half of `build`, issue 4).

use crate::definition::Definition;
use crate::inputs::{System, resolve};
use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(default_value = "appliance/appliance-dev.toml")]
    spec: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "target/lms-image-cache")]
    cache: PathBuf,
    /// A static (musl) lms-node to start at boot.
    #[arg(long)]
    lms_node: Option<PathBuf>,
    /// Module directory for it (as `cargo xtask modules` writes it).
    #[arg(long)]
    modules: Option<PathBuf>,
    /// htpasswd file for it.
    #[arg(long)]
    credentials: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let def = Definition::load(&a.spec)?;
    let inputs = resolve(&def, &a.spec, &a.cache, &System).context("resolving inputs")?;
    let payload = crate::initramfs::Payload { lms_node: a.lms_node, modules: a.modules, credentials: a.credentials };
    let (kver, modules) = crate::initramfs::build(&inputs, &payload, &a.out).map_err(anyhow::Error::msg)?;
    let [k, i] = crate::initramfs::outputs(&a.out);
    println!("kernel {kver}: {}", k.display());
    println!("initramfs with busybox and {} modules: {}", modules.len(), i.display());
    Ok(())
}
