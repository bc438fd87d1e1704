//! `lms-image flash DIR --device PATH --pubkey PUB [--keep-data]`: write a
//! verified image onto a disk (a block device, or a disk file for VMs).
//! With `--keep-data` only the GPT, the ESP and the system partition are
//! written, so a node keeps its data partition (database, module slots,
//! settings) across an OS reflash; the device's `lms-data` partition must be
//! exactly where this image puts it, or nothing is written.

use crate::manifest::Manifest;
use anyhow::{Context, bail};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    dir: PathBuf,
    /// The target disk (/dev/sdX) or a disk file.
    #[arg(long)]
    device: PathBuf,
    /// The image must verify against this key before a byte is written.
    #[arg(long)]
    pubkey: PathBuf,
    /// Replace the OS (ESP + system partition) and keep the data partition.
    #[arg(long)]
    keep_data: bool,
}

/// The device's GPT partition `name`: (offset, size) in bytes, via sfdisk.
fn device_partition(device: &Path, name: &str) -> anyhow::Result<Option<(u64, u64)>> {
    let o = std::process::Command::new("sfdisk")
        .arg("--json")
        .arg(device)
        .output()
        .context("running sfdisk (apt-get install fdisk)")?;
    if !o.status.success() {
        bail!("{}: no readable partition table: {}", device.display(), String::from_utf8_lossy(&o.stderr).trim());
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    let sector = v["partitiontable"]["sectorsize"].as_u64().unwrap_or(512);
    Ok(v["partitiontable"]["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .map(|p| (p["start"].as_u64().unwrap_or(0) * sector, p["size"].as_u64().unwrap_or(0) * sector)))
}

fn copy_range(src: &mut std::fs::File, dst: &mut std::fs::File, from: u64, len: u64, to: u64) -> anyhow::Result<()> {
    src.seek(SeekFrom::Start(from))?;
    dst.seek(SeekFrom::Start(to))?;
    let n = std::io::copy(&mut src.take(len), dst)?;
    anyhow::ensure!(n == len, "short copy: {n} of {len} bytes");
    Ok(())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let key =
        lms_bundle::keys::load_verifying(&a.pubkey).map_err(|e| anyhow::anyhow!("{}: {e}", a.pubkey.display()))?;
    let bad = crate::manifest::verify(&a.dir, &key).map_err(anyhow::Error::msg)?;
    if !bad.is_empty() {
        bail!("{} does not verify; nothing written:\n  {}", a.dir.display(), bad.join("\n  "));
    }
    let (m, _) = Manifest::read(&a.dir).map_err(anyhow::Error::msg)?;
    let image = a.dir.join("disk.img");
    let image_len = std::fs::metadata(&image)?.len();
    let mut src = std::fs::File::open(&image).with_context(|| image.display().to_string())?;
    if a.keep_data {
        let data = m.partitions.iter().find(|p| p.name == "lms-data").context("the image has no lms-data partition")?;
        match device_partition(&a.device, "lms-data")? {
            Some((off, size)) if off == data.offset && size == data.size => {}
            Some((off, size)) => bail!(
                "{}: its lms-data partition is at bytes {off}..{} but this image's is at {}..{}; nothing written \
                 (flash without --keep-data to start the node afresh)",
                a.device.display(),
                off + size,
                data.offset,
                data.offset + data.size
            ),
            None => bail!("{}: no lms-data partition; nothing written (flash without --keep-data)", a.device.display()),
        }
        let mut dst =
            std::fs::OpenOptions::new().write(true).open(&a.device).with_context(|| a.device.display().to_string())?;
        // GPT + ESP + system, everything before the data partition.
        copy_range(&mut src, &mut dst, 0, data.offset, 0)?;
        // The backup GPT, where a disk of exactly this image's size keeps it.
        let dev_len = dst.seek(SeekFrom::End(0))?;
        let tail = data.offset + data.size;
        if dev_len == image_len {
            copy_range(&mut src, &mut dst, tail, image_len - tail, tail)?;
        }
        dst.flush()?;
        dst.sync_all()?;
        println!(
            "{}: ESP and system partition replaced from {} ({} bytes); lms-data kept",
            a.device.display(),
            a.dir.display(),
            data.offset
        );
    } else {
        let mut dst = std::fs::OpenOptions::new()
            .write(true)
            .create(!a.device.starts_with("/dev"))
            .open(&a.device)
            .with_context(|| a.device.display().to_string())?;
        copy_range(&mut src, &mut dst, 0, image_len, 0)?;
        dst.flush()?;
        dst.sync_all()?;
        println!("{}: {} written ({image_len} bytes), data partition fresh", a.device.display(), a.dir.display());
    }
    Ok(())
}
