//! `lms-image inputs [SPEC] [--cache DIR] [--json]`: resolves and verifies
//! every pinned input of an appliance definition, as `build` will do before
//! it writes anything, and lists them with what is absent.

use crate::definition::Definition;
use crate::inputs::{System, resolve};
use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Appliance definition.
    #[arg(default_value = "appliance/appliance.toml")]
    spec: PathBuf,
    /// Input cache, files named by sha256.
    #[arg(long, default_value = "target/lms-image-cache")]
    cache: PathBuf,
    #[arg(long)]
    json: bool,
    /// Only parse and check the definition; fetch nothing.
    #[arg(long)]
    no_fetch: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let def = Definition::load(&a.spec)?;
    if a.no_fetch {
        let n = def.debian.len() + def.artifact.len();
        if a.json {
            println!("{}", serde_json::json!({"name": def.name, "arch": def.arch.as_str(), "inputs": n}));
        } else {
            println!("{} ({}): {n} inputs declared; definition is valid", def.name, def.arch.as_str());
        }
        return Ok(());
    }
    let inputs = resolve(&def, &a.spec, &a.cache, &System).context("resolving inputs")?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&inputs)?);
        return Ok(());
    }
    println!("{} ({}), {} inputs:", def.name, def.arch.as_str(), inputs.len());
    for i in &inputs {
        match &i.absent {
            None => println!(
                "  {:<8} {:<36} {:<22} {}  from {}{}",
                i.kind,
                i.name,
                i.version,
                &i.sha256[..16],
                i.source,
                i.purpose.as_deref().map(|p| format!(" ({p})")).unwrap_or_default()
            ),
            Some(why) => println!("  {:<8} {:<36} {:<22} ABSENT: {why}", i.kind, i.name, i.version),
        }
    }
    Ok(())
}
