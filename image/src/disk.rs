//! Partition filesystems and the GPT disk, each from a staging directory,
//! without root and reproducibly (fixed ids, timestamps from
//! SOURCE_DATE_EPOCH, sorted entries):
//!
//! 1. `ESP`          FAT (mkfs.vfat + mtools): systemd-boot, one boot entry,
//!    kernel and initramfs per system slot (`a/`, `b/`)
//! 2. `lms-system-a` squashfs (mksquashfs, zstd) + its dm-verity tree, read-only:
//!    binaries, factory bundles, keys, k3s parts
//! 3. `lms-system-b` the other slot: empty until a system update writes it
//! 4. `lms-data`     ext4 (mkfs.ext4 -d): settings; the node's database, module
//!    and content slots, the updater's journal, k3s state
//!
//! lms-init finds the partitions by their GPT names.

use crate::tool::run;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1 << 20;
const SECTOR: u64 = 512;

pub const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// "Linux root (x86-64)" from the Discoverable Partitions Specification.
pub const SYSTEM_TYPE: &str = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";
/// "Linux filesystem data".
pub const DATA_TYPE: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

/// A UUID derived from `seed`: the same definition gives the same ids.
pub fn uuid(seed: &str) -> String {
    let h = Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b).to_uppercase();
    format!("{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..])
}

/// Every file and directory under `root`, sorted, as (relative path, is_dir).
pub fn walk(root: &Path) -> Result<Vec<(String, PathBuf, bool)>, String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let p = e.map_err(|e| e.to_string())?.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let is_dir = p.is_dir();
            if is_dir {
                stack.push(p.clone());
            }
            out.push((rel, p, is_dir));
        }
    }
    out.sort();
    Ok(out)
}

/// Sets every mtime under `root` to `epoch` (the filesystems copy them).
pub fn fix_times(root: &Path, epoch: i64) -> Result<(), String> {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch.max(0) as u64);
    let mut all = walk(root)?;
    all.push((String::new(), root.to_path_buf(), true));
    for (_, p, _) in all.iter().rev() {
        let f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
        f.set_modified(t).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

/// FAT filesystem image of `mib` MiB holding `staging`.
pub fn fat(staging: &Path, out: &Path, mib: u64, epoch: i64, seed: &str) -> Result<(), String> {
    let volid = &uuid(seed).replace('-', "")[..8];
    let _ = std::fs::remove_file(out);
    run(Command::new("mkfs.vfat")
        .args(["--invariant", "-i", volid, "-n", "LMS-ESP", "-C"])
        .arg(out)
        .arg((mib * 1024).to_string())
        .env("SOURCE_DATE_EPOCH", epoch.to_string()))?;
    for (rel, path, is_dir) in walk(staging)? {
        let target = format!("::/{rel}");
        let mut c = Command::new(if is_dir { "mmd" } else { "mcopy" });
        c.arg("-i").arg(out);
        if !is_dir {
            c.arg("-m").arg(&path);
        }
        c.arg(&target).env("SOURCE_DATE_EPOCH", epoch.to_string()).env("TZ", "UTC").env("MTOOLS_SKIP_CHECK", "1");
        run(&mut c)?;
    }
    Ok(())
}

/// Read-only squashfs (zstd) of `staging`, owned by root.
pub fn squashfs(staging: &Path, out: &Path, epoch: i64) -> Result<(), String> {
    let _ = std::fs::remove_file(out);
    let e = epoch.to_string();
    run(Command::new("mksquashfs")
        .arg(staging)
        .arg(out)
        .args(["-noappend", "-all-root", "-no-xattrs", "-comp", "zstd", "-quiet", "-no-progress"])
        .args(["-mkfs-time", &e, "-all-time", &e])
        .env_remove("SOURCE_DATE_EPOCH"))
}

/// ext4 of `mib` MiB holding `staging`, fixed UUID and hash seed.
pub fn ext4(staging: &Path, out: &Path, mib: u64, epoch: i64, seed: &str) -> Result<(), String> {
    let _ = std::fs::remove_file(out);
    let f = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    f.set_len(mib * MIB).map_err(|e| e.to_string())?;
    let id = uuid(seed).to_lowercase();
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "lms-data", "-b", "4096", "-U", &id])
        .arg("-E")
        .arg(format!("hash_seed={id},root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0"))
        .arg("-d")
        .arg(staging)
        .arg(out)
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .env("SOURCE_DATE_EPOCH", epoch.to_string()))?;
    // mkfs.ext4 -d copies each file's owner, atime and ctime from the build
    // machine: files belong to root (whoever built the image) and the times
    // are pinned (debugfs runs with the same fake clock).
    let mut script = String::new();
    let entries = walk(staging)?;
    for p in std::iter::once("/".to_string()).chain(entries.iter().map(|(rel, _, _)| format!("/{rel}"))) {
        for field in ["atime", "ctime", "mtime"] {
            script.push_str(&format!("sif \"{p}\" {field} @{epoch}\n"));
        }
        for field in ["uid", "gid"] {
            script.push_str(&format!("sif \"{p}\" {field} 0\n"));
        }
    }
    let cmds = out.with_extension("debugfs");
    std::fs::write(&cmds, script).map_err(|e| e.to_string())?;
    let r = run(Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&cmds)
        .arg(out)
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string()));
    let _ = std::fs::remove_file(&cmds);
    r
}

pub struct Part<'a> {
    pub name: &'a str,
    pub type_guid: &'a str,
    /// What the partition starts with; `None`: zeros (an empty slot).
    pub image: Option<&'a Path>,
    /// The partition's size; the image must fit.
    pub mib: u64,
}

/// Where a partition landed on the disk.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Placed {
    pub name: String,
    pub type_guid: String,
    pub uuid: String,
    pub offset: u64,
    pub size: u64,
    pub sha256: String,
}

/// Lays the partition images out on a GPT disk at `out` (1 MiB aligned,
/// sizes from the definition) and returns where each went.
pub fn gpt(out: &Path, parts: &[Part], seed: &str) -> Result<Vec<Placed>, String> {
    let mut placed = Vec::new();
    let mut offset = MIB;
    for p in parts {
        let len = match p.image {
            Some(i) => std::fs::metadata(i).map_err(|e| format!("{}: {e}", i.display()))?.len(),
            None => 0,
        };
        let size = p.mib * MIB;
        if len > size {
            return Err(format!(
                "partition {}: its filesystem is {} bytes, more than the {} MiB the definition gives it ([disk] {}_mib)",
                p.name,
                len,
                p.mib,
                p.name.trim_start_matches("lms-").trim_end_matches("-a").trim_end_matches("-b").to_lowercase()
            ));
        }
        placed.push(Placed {
            name: p.name.into(),
            type_guid: p.type_guid.into(),
            uuid: uuid(&format!("{seed}/partition/{}", p.name)),
            offset,
            size,
            sha256: String::new(),
        });
        offset += size;
    }
    // The backup GPT takes the last 33 sectors; keep a whole MiB.
    let total = offset + MIB;
    let _ = std::fs::remove_file(out);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut disk = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
        disk.set_len(total).map_err(|e| e.to_string())?;
        for (p, at) in parts.iter().zip(&placed) {
            let Some(image) = p.image else { continue };
            let mut src = std::fs::File::open(image).map_err(|e| format!("{}: {e}", image.display()))?;
            disk.seek(SeekFrom::Start(at.offset)).map_err(|e| e.to_string())?;
            std::io::copy(&mut src, &mut disk).map_err(|e| e.to_string())?;
        }
        disk.flush().map_err(|e| e.to_string())?;
    }
    let mut script =
        format!("label: gpt\nlabel-id: {}\nunit: sectors\nfirst-lba: 2048\n", uuid(&format!("{seed}/disk")));
    for p in &placed {
        script.push_str(&format!(
            "start={}, size={}, type={}, uuid={}, name=\"{}\"\n",
            p.offset / SECTOR,
            p.size / SECTOR,
            p.type_guid,
            p.uuid,
            p.name
        ));
    }
    let mut child = Command::new("sfdisk")
        .args(["--no-reread", "--no-tell-kernel", "-q"])
        .arg(out)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("sfdisk: {e} (is fdisk installed?)"))?;
    use std::io::Write;
    child.stdin.take().unwrap().write_all(script.as_bytes()).map_err(|e| e.to_string())?;
    let o = child.wait_with_output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!("sfdisk {}: {}", out.display(), String::from_utf8_lossy(&o.stderr).trim()));
    }
    for p in &mut placed {
        p.sha256 = lms_bundle::sha256_region(out, p.offset, p.size)?;
    }
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_and_well_formed() {
        let a = uuid("lms-edge-dev/disk");
        assert_eq!(a, uuid("lms-edge-dev/disk"));
        assert_ne!(a, uuid("lms-edge/disk"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    /// Issue 10, case 12: `mkfs.ext4 -d` kept the builder's uid on the data
    /// partition's files (a non-root builder's uid then owns /data/etc).
    #[test]
    fn data_partition_files_belong_to_root() {
        let d = tempfile::tempdir().unwrap();
        let staging = d.path().join("staging");
        std::fs::create_dir_all(staging.join("etc")).unwrap();
        std::fs::write(staging.join("etc/lms.toml"), "node_id = \"x\"\n").unwrap();
        // As root, make the files a stranger's; otherwise they are already
        // the (non-root) builder's.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            for p in [staging.join("etc"), staging.join("etc/lms.toml")] {
                std::os::unix::fs::chown(&p, Some(1234), Some(1234)).unwrap();
            }
        }
        let img = d.path().join("data.img");
        ext4(&staging, &img, 8, 1_700_000_000, "test/data").unwrap();
        for p in ["/etc", "/etc/lms.toml"] {
            let o = Command::new("debugfs").args(["-R", &format!("stat {p}")]).arg(&img).output().unwrap();
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(text.contains("User:     0   Group:     0"), "{p}: {text}");
        }
    }
}
