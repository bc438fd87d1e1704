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
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let def = Definition::load(&a.spec)?;
    let inputs = resolve(&def, &a.spec, &a.cache, &System).context("resolving inputs")?;
    let (kver, modules) = crate::initramfs::build(&inputs, &a.out).map_err(anyhow::Error::msg)?;
    let [k, i] = crate::initramfs::outputs(&a.out);
    println!("kernel {kver}: {}", k.display());
    println!("initramfs with busybox and {} modules: {}", modules.len(), i.display());
    Ok(())
}
