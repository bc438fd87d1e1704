//! `lms-image inspect DIR [--json]`: inputs, the image's files with sizes,
//! and every optional part that is absent.

use crate::manifest::Manifest;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    dir: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let (m, bytes) = Manifest::read(&a.dir).map_err(anyhow::Error::msg)?;
    if a.json {
        let v: serde_json::Value = serde_json::from_slice(&bytes)?;
        let absent: Vec<_> = m.inputs.iter().filter(|i| i.absent.is_some()).collect();
        let out = serde_json::json!({"manifest": v, "absent": absent});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("{} ({}), built by {}, SOURCE_DATE_EPOCH {}", m.name, m.arch, m.builder, m.source_date_epoch);
    println!("kernel {}; command line: {}", m.kernel, m.cmdline);
    println!("signed by key {}\n", m.signed_by);
    println!("inputs:");
    for i in &m.inputs {
        let state = if i.absent.is_some() { "ABSENT" } else { "ok" };
        println!("  {state:6} {:9} {} {}  {}  sha256 {}", i.kind, i.name, i.version, i.source, i.sha256);
    }
    println!("\nfiles:");
    for f in &m.files {
        println!("  {:>12}  {}  sha256 {}", f.size, f.path, f.sha256);
    }
    println!("\npartitions:");
    for p in &m.partitions {
        let used: u64 = m.contents.iter().filter(|c| c.partition == p.name).map(|c| c.size).sum();
        println!(
            "  {:11} {:>10} bytes at {:>10}  (files inside: {used} bytes)  uuid {}",
            p.name, p.size, p.offset, p.uuid
        );
    }
    println!("\ncontents:");
    for c in &m.contents {
        println!("  {:11} {:>10}  {}", c.partition, c.size, c.path);
    }
    let absent: Vec<_> = m.inputs.iter().filter(|i| i.absent.is_some()).collect();
    println!("\nabsent optional parts: {}", if absent.is_empty() { "none" } else { "" });
    for i in absent {
        println!("  {} {}: {}", i.name, i.version, i.absent.as_deref().unwrap_or(""));
    }
    Ok(())
}
