//! `lms-image flash DIR --device PATH --pubkey PUB [--keep-data]`: write a
//! verified image onto a disk (a block device, or a disk file for VMs).
//! With `--keep-data` only the GPT, the ESP and the system slots are
//! written, so a node keeps its data partition (database, module slots,
//! settings) across an OS reflash. A device whose `lms-data` lies elsewhere
//! (a node flashed before the A/B layout, which had one system partition
//! and a smaller ESP) has it moved to where this image puts it, in an order
//! that survives a power cut at any point: the data is copied to its new
//! place first (the old copy untouched), then the new GPT (backup, then
//! primary) is written, and only then the ESP and system slots over the old
//! places; a flash cut short is simply run again.

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

/// Where every image's first partition starts: the primary GPT lies before.
const FIRST_PARTITION: u64 = 1 << 20;

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

/// A private copy of the image's disk.img, checked against the signed
/// manifest as it is made: the flash writes from these bytes, so a disk.img
/// changed after `verify` read it is never written.
fn private_copy(dir: &Path, m: &Manifest) -> anyhow::Result<std::fs::File> {
    use sha2::Digest;
    let want = m.files.iter().find(|f| f.path == "disk.img").context("the manifest lists no disk.img")?;
    let path = dir.join("disk.img");
    let mut src = std::fs::File::open(&path).with_context(|| path.display().to_string())?;
    let mut copy = tempfile::tempfile().context("a private copy of disk.img in the temp directory")?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        copy.write_all(&buf[..n])?;
        len += n as u64;
    }
    let got = hex::encode(h.finalize());
    if len != want.size || got != want.sha256 {
        bail!("{}: changed since it was verified (sha256 {got}, {len} bytes); nothing written", path.display());
    }
    Ok(copy)
}

/// Whether a device of `device_len` bytes (a block device when `block`) has
/// room for `needed` bytes. A regular file grows, as long as its filesystem
/// can reserve the space (checked with fallocate before writing).
pub fn room(device_len: u64, block: bool, needed: u64) -> Result<(), String> {
    if block && device_len < needed {
        return Err(format!("the device holds {device_len} bytes but the image needs {needed}; nothing written"));
    }
    Ok(())
}

/// Opens the target: a block device exclusively (O_EXCL: refused while it
/// is mounted or in use), a disk file created if missing.
fn open_device(device: &Path) -> anyhow::Result<(std::fs::File, bool)> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let block = std::fs::metadata(device).is_ok_and(|m| m.file_type().is_block_device());
    let mut o = std::fs::OpenOptions::new();
    o.write(true).read(true);
    if block {
        o.custom_flags(libc::O_EXCL);
    } else {
        o.create(!device.starts_with("/dev"));
    }
    let f = o.open(device).with_context(|| {
        format!("{} (a block device in use or mounted is refused; unmount it first)", device.display())
    })?;
    Ok((f, block))
}

/// Reserves `len` bytes of a regular file up front, so a full filesystem
/// fails before a byte is written instead of leaving half an image.
fn reserve(f: &std::fs::File, device: &Path, len: u64) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: posix_fallocate on an open, writable descriptor.
    let r = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, len as libc::off_t) };
    if r != 0 {
        bail!(
            "{}: cannot reserve {len} bytes: {}; nothing written",
            device.display(),
            std::io::Error::from_raw_os_error(r)
        );
    }
    Ok(())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let key =
        lms_bundle::keys::load_verifying(&a.pubkey).map_err(|e| anyhow::anyhow!("{}: {e}", a.pubkey.display()))?;
    let bad = crate::manifest::verify(&a.dir, &key).map_err(anyhow::Error::msg)?;
    if !bad.is_empty() {
        bail!("{} does not verify; nothing written:\n  {}", a.dir.display(), bad.join("\n  "));
    }
    let m = crate::manifest::read_verified(&a.dir, &key).map_err(|e| anyhow::anyhow!("{e}; nothing written"))?;
    let mut src = private_copy(&a.dir, &m)?;
    let image_len = src.seek(SeekFrom::End(0))?;
    let (mut dst, block) = open_device(&a.device)?;
    let dev_len = dst.seek(SeekFrom::End(0))?;
    if a.keep_data {
        let data = m.partitions.iter().find(|p| p.name == "lms-data").context("the image has no lms-data partition")?;
        room(dev_len, block, data.offset + data.size).map_err(|e| anyhow::anyhow!("{}: {e}", a.device.display()))?;
        let moved = match device_partition(&a.device, "lms-data")? {
            // In place: the same partition, or a smaller one where this
            // image's starts (an older, smaller layout: it grows around its
            // file system, which keeps its size).
            Some((off, size)) if off == data.offset && size <= data.size => None,
            Some((off, size)) if size <= data.size && (off + size <= data.offset || data.offset + data.size <= off) => {
                Some((off, size))
            }
            Some((off, size)) => bail!(
                "{}: its lms-data partition is at bytes {off}..{} but this image's is at {}..{} ({} bytes), and it \
                 cannot be moved there (larger, or overlapping); nothing written (flash without --keep-data to \
                 start the node afresh)",
                a.device.display(),
                off + size,
                data.offset,
                data.offset + data.size,
                data.size
            ),
            None => bail!("{}: no lms-data partition; nothing written (flash without --keep-data)", a.device.display()),
        };
        if !block && dev_len < image_len {
            reserve(&dst, &a.device, image_len)?;
        }
        let dev_len = dst.seek(SeekFrom::End(0))?;
        if let Some((off, size)) = moved {
            // 1. The data to its new place; the old copy stays as it is.
            // A second open file (its own offset) to read the old place from.
            let mut from = std::fs::File::open(&a.device).with_context(|| a.device.display().to_string())?;
            copy_range(&mut from, &mut dst, off, size, data.offset)?;
            dst.sync_all()?;
        }
        // 2. The backup GPT, where a disk of exactly this image's size keeps
        // it, then the primary GPT: from here on the table names the new places.
        let tail = data.offset + data.size;
        if dev_len == image_len {
            copy_range(&mut src, &mut dst, tail, image_len - tail, tail)?;
            dst.sync_all()?;
        }
        copy_range(&mut src, &mut dst, 0, FIRST_PARTITION, 0)?;
        dst.sync_all()?;
        // 3. ESP and system slots, everything between the GPT and the data.
        copy_range(&mut src, &mut dst, FIRST_PARTITION, data.offset - FIRST_PARTITION, FIRST_PARTITION)?;
        dst.flush()?;
        dst.sync_all()?;
        if let Some((off, size)) = moved {
            println!(
                "{}: lms-data ({size} bytes) moved from byte {off} to byte {} for this image's layout",
                a.device.display(),
                data.offset
            );
        }
        println!(
            "{}: ESP and system slots replaced from {} ({} bytes); lms-data kept",
            a.device.display(),
            a.dir.display(),
            data.offset
        );
    } else {
        room(dev_len, block, image_len).map_err(|e| anyhow::anyhow!("{}: {e}", a.device.display()))?;
        if !block {
            reserve(&dst, &a.device, image_len)?;
        }
        copy_range(&mut src, &mut dst, 0, image_len, 0)?;
        dst.flush()?;
        dst.sync_all()?;
        println!("{}: {} written ({image_len} bytes), data partition fresh", a.device.display(), a.dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::room;

    /// Issue 10, case 11: a 20 MiB target got a broken GPT after ENOSPC.
    #[test]
    fn a_device_too_small_is_refused_before_writing() {
        let e = room(20 << 20, true, 62 << 20).unwrap_err();
        assert!(e.contains("20971520") && e.contains("nothing written"), "{e}");
        room(64 << 20, true, 62 << 20).unwrap();
        // A disk file grows; fallocate checks its filesystem has the room.
        room(0, false, 62 << 20).unwrap();
    }
}
