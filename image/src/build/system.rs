//! The build steps about the system and the disk: kernel and initramfs,
//! the system partition and its dm-verity tree, the data partition, the
//! ESP with slot A's boot entry, the GPT disk, the system bundle that
//! updates other nodes to this system, and the signed manifest.

use super::{Build, copy, write};
use crate::disk::{self, Part};
use crate::inputs::Resolved;
use crate::manifest::{Content, FileEntry, Manifest};
use crate::tool::run;
use lms_bundle::verity::{BLOCK, Verity};
use std::path::Path;
use std::process::Command;

fn size_of(p: &Path) -> Result<u64, String> {
    Ok(std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?.len())
}

pub(super) fn kernel(b: &mut Build) -> Result<String, String> {
    let slot = b.esp().join("a");
    let (kver, mods) = crate::initramfs::build(&b.inputs, &slot)?;
    b.kernel_release = kver.clone();
    Ok(format!("kernel {kver}, {} modules, dmsetup", mods.len()))
}

pub(super) fn squashfs(b: &mut Build) -> Result<String, String> {
    let system = b.system();
    for a in b.inputs.iter().filter(|i| i.kind == "artifact") {
        let (Some(path), Some(spec)) = (&a.path, b.def.artifact.iter().find(|x| x.name == a.name)) else { continue };
        let dest = system.join(spec.dest.trim_start_matches('/'));
        if spec.unpack {
            std::fs::create_dir_all(&dest).map_err(|e| e.to_string())?;
            run(Command::new("tar").arg("-xzf").arg(path).arg("-C").arg(&dest).arg("--no-same-owner"))?;
        } else {
            copy(path, &dest, if spec.dest.starts_with("/bin/") { 0o755 } else { 0o644 })?;
        }
    }
    copy(&b.local("lms.settings", &b.lms.settings)?, &system.join("share/lms/lms.toml"), 0o644)?;
    if let Some(r) = &b.lms.roster {
        copy(&b.local("lms.roster", r)?, &system.join("share/lms/roster.csv"), 0o644)?;
    }
    write(
        &system.join("etc/os-release"),
        format!(
            "NAME=\"LMS edge appliance\"\nID=lms-edge\nIMAGE_ID={}\nIMAGE_VERSION={}\nBUILD_ID={}\nSYSTEM_VERSION={}\n",
            b.def.name,
            env!("CARGO_PKG_VERSION"),
            b.epoch,
            b.system_version
        )
        .as_bytes(),
        0o644,
    )?;
    disk::fix_times(&system, b.epoch)?;
    let img = b.w.join("system.img");
    disk::squashfs(&system, &img, b.epoch)?;
    Ok(format!("{} bytes, system version {}", size_of(&img)?, b.system_version))
}

/// Pads the squashfs to whole blocks and appends its dm-verity tree
/// (`veritysetup format`, salt and UUID derived from the definition, so the
/// tree is reproducible), then checks it with the updater's own verifier.
pub(super) fn verity(b: &mut Build) -> Result<String, String> {
    let img = b.w.join("system.img");
    let fs_bytes = size_of(&img)?;
    let data_blocks = fs_bytes.div_ceil(BLOCK);
    let hash_offset = data_blocks * BLOCK;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .and_then(|f| f.set_len(hash_offset))
        .map_err(|e| format!("{}: {e}", img.display()))?;
    let salt = lms_bundle::sha256_hex(format!("{}/system-verity-salt", b.def.name).as_bytes());
    let uuid = disk::uuid(&format!("{}/system-verity", b.def.name)).to_lowercase();
    let out = Command::new("veritysetup")
        .args(["format", "--hash-offset", &hash_offset.to_string(), "--data-blocks", &data_blocks.to_string()])
        .args(["--salt", &salt, "--uuid", &uuid])
        .arg(&img)
        .arg(&img)
        .output()
        .map_err(|e| format!("veritysetup (apt-get install cryptsetup-bin): {e}"))?;
    if !out.status.success() {
        return Err(format!("veritysetup format {}: {}", img.display(), String::from_utf8_lossy(&out.stderr).trim()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let root_hash = text
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .map(|r| r.trim().to_string())
        .ok_or_else(|| format!("veritysetup format printed no root hash:\n{text}"))?;
    let v = Verity { data_blocks, hash_offset, salt, root_hash };
    let mut f = std::fs::File::open(&img).map_err(|e| e.to_string())?;
    lms_bundle::verity::verify(&mut f, &v).map_err(|e| format!("{}: {e}", img.display()))?;
    let detail = format!("root hash {}, {} tree blocks", v.root_hash, v.hash_blocks());
    b.verity = Some(v);
    Ok(detail)
}

pub(super) fn data(b: &mut Build) -> Result<String, String> {
    let data = b.data();
    copy(&b.local("lms.settings", &b.lms.settings)?, &data.join("etc/lms.toml"), 0o600)?;
    if let Some(c) = &b.lms.credentials {
        copy(&b.local("lms.credentials", c)?, &data.join("etc/htpasswd"), 0o600)?;
    }
    if let Some(c) = &b.lms.credential_scopes {
        copy(&b.local("lms.credential_scopes", c)?, &data.join("etc/scopes.toml"), 0o600)?;
    }
    for d in ["lms", "modules", "rancher"] {
        std::fs::create_dir_all(data.join(d)).map_err(|e| e.to_string())?;
    }
    disk::fix_times(&data, b.epoch)?;
    let img = b.w.join("data.img");
    disk::ext4(&data, &img, b.disk_def.data_mib, b.epoch, &format!("{}/data", b.def.name))?;
    Ok(format!("{} MiB", b.disk_def.data_mib))
}

/// The kernel options of slot `slot`'s entry.
fn options(b: &Build, slot: char) -> String {
    lms_bundle::system::entry_options(&b.disk_def.cmdline, slot, b.verity.as_ref().expect("the verity step ran"))
}

/// systemd-boot as the removable-media loader, `loader.conf` without a
/// `default` (boot counting must be able to skip a bad entry; see
/// ../shared/OTA.md), and slot A's entry without a try counter (good).
pub(super) fn esp(b: &mut Build) -> Result<String, String> {
    let esp = b.esp();
    let sdboot = find_deb(&b.inputs, "systemd-boot-efi")?;
    let sd = b.w.join("systemd-boot");
    let path = sdboot.path.as_ref().ok_or_else(|| format!("{} is absent", sdboot.name))?;
    run(Command::new("dpkg-deb").arg("-x").arg(path).arg(&sd))?;
    copy(&sd.join("usr/lib/systemd/boot/efi/systemd-bootx64.efi"), &esp.join("EFI/BOOT/BOOTX64.EFI"), 0o644)?;
    write(&esp.join("loader/loader.conf"), b"timeout 0\neditor no\n", 0o644)?;
    // Slot B's kernel and initramfs go here when a system update writes B.
    std::fs::create_dir_all(esp.join("b")).map_err(|e| e.to_string())?;
    let title = format!("LMS appliance ({})", b.def.name);
    let entry = lms_bundle::system::boot_entry(&title, &b.system_version, 'a', &options(b, 'a'));
    write(&esp.join("loader/entries/lms-a.conf"), entry.as_bytes(), 0o644)?;
    // Room for a second slot's kernel and initramfs beside these.
    let slot_bytes = size_of(&esp.join("a/vmlinuz"))? + size_of(&esp.join("a/initrd.img"))?;
    let need = size_of(&esp.join("EFI/BOOT/BOOTX64.EFI"))? + 2 * slot_bytes + (1 << 20);
    if need > b.disk_def.esp_mib << 20 {
        return Err(format!(
            "[disk] esp_mib = {} is too small: two kernel + initramfs sets and systemd-boot need {} MiB",
            b.disk_def.esp_mib,
            need.div_ceil(1 << 20)
        ));
    }
    disk::fix_times(&esp, b.epoch)?;
    disk::fat(&esp, &b.w.join("esp.img"), b.disk_def.esp_mib, b.epoch, &format!("{}/esp", b.def.name))?;
    Ok(format!("{} MiB, entry lms-a.conf (system {})", b.disk_def.esp_mib, b.system_version))
}

fn find_deb<'a>(inputs: &'a [Resolved], name: &str) -> Result<&'a Resolved, String> {
    inputs
        .iter()
        .find(|i| i.kind == "debian" && i.name == name)
        .ok_or_else(|| format!("the definition has no Debian package {name}"))
}

/// GPT: ESP, both system slots (B empty), data. The data partition comes
/// last so that a larger disk can grow it.
pub(super) fn disk(b: &mut Build) -> Result<String, String> {
    let (esp_img, system_img, data_img) = (b.w.join("esp.img"), b.w.join("system.img"), b.w.join("data.img"));
    let d = b.disk_def;
    let out = b.result().join("disk.img");
    b.placed = disk::gpt(
        &out,
        &[
            Part { name: "ESP", type_guid: disk::ESP_TYPE, image: Some(&esp_img), mib: d.esp_mib },
            Part { name: "lms-system-a", type_guid: disk::SYSTEM_TYPE, image: Some(&system_img), mib: d.system_mib },
            Part { name: "lms-system-b", type_guid: disk::SYSTEM_TYPE, image: None, mib: d.system_mib },
            Part { name: "lms-data", type_guid: disk::DATA_TYPE, image: Some(&data_img), mib: d.data_mib },
        ],
        &b.def.name,
    )?;
    copy(&b.esp().join("a/vmlinuz"), &b.result().join("boot/vmlinuz"), 0o644)?;
    copy(&b.esp().join("a/initrd.img"), &b.result().join("boot/initrd.img"), 0o644)?;
    b.disk_bytes = size_of(&out)?;
    Ok(format!("{:.1} MiB", b.disk_bytes as f64 / (1 << 20) as f64))
}

/// `system.bundle`: this system for nodes that run another (see lms_bundle::system).
pub(super) fn bundle(b: &mut Build) -> Result<String, String> {
    let esp = b.esp();
    let out = b.result().join("system.bundle");
    let m = lms_bundle::system::create(
        &lms_bundle::system::SystemParts {
            name: &b.def.name,
            version: &b.system_version,
            kernel_release: &b.kernel_release,
            cmdline: &b.disk_def.cmdline,
            kernel: &esp.join("a/vmlinuz"),
            initrd: &esp.join("a/initrd.img"),
            image: &b.w.join("system.img"),
            verity: b.verity.clone().expect("the verity step ran"),
        },
        &b.key,
        &out,
    )
    .map_err(|e| format!("system bundle: {e}"))?;
    Ok(format!("version {}, {} bytes", m.system_version, size_of(&out)?))
}

fn contents(partition: &str, root: &Path) -> Result<Vec<Content>, String> {
    Ok(disk::walk(root)?
        .into_iter()
        .filter(|(_, _, is_dir)| !is_dir)
        .map(|(rel, p, _)| Content {
            partition: partition.into(),
            path: format!("/{rel}"),
            size: std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0),
        })
        .collect())
}

pub(super) fn manifest(b: &mut Build) -> Result<String, String> {
    let result = b.result();
    let mut files = Vec::new();
    for rel in ["disk.img", "boot/vmlinuz", "boot/initrd.img", "system.bundle"] {
        let p = result.join(rel);
        files.push(FileEntry { path: rel.into(), size: size_of(&p)?, sha256: lms_bundle::sha256_file(&p)? });
    }
    let mut all_contents = contents("ESP", &b.esp())?;
    all_contents.extend(contents("lms-system-a", &b.system())?);
    all_contents.extend(contents("lms-data", &b.data())?);
    let manifest = Manifest {
        format: crate::manifest::FORMAT,
        name: b.def.name.clone(),
        arch: b.def.arch.as_str().into(),
        builder: format!("lms-image {}", env!("CARGO_PKG_VERSION")),
        source_date_epoch: b.epoch,
        system_version: b.system_version.clone(),
        kernel: b.kernel_release.clone(),
        cmdline: options(b, 'a'),
        verity: b.verity.clone(),
        inputs: b.inputs.iter().map(crate::manifest::Input::from).chain(b.extra.clone()).collect(),
        files,
        partitions: b.placed.clone(),
        contents: all_contents,
        signed_by: b.key_id.clone(),
    };
    crate::manifest::write_signed(&result, &manifest, &b.key)?;
    b.manifest = Some(manifest);
    Ok("manifest.json, manifest.sig".into())
}
