//! `lms-image build`: from a definition to a signed, reproducible disk image.
//!
//! Steps, in order (nothing is written to the output directory until the
//! last one; a failed build leaves the previous image untouched):
//! inputs -> policy check -> binaries -> modules + factory bundle ->
//! kernel + initramfs -> ESP / system / data filesystems -> GPT disk ->
//! manifest + signature -> swap into place.

use crate::definition::Definition;
use crate::disk::{self, Part};
use crate::inputs::{Resolved, System, resolve};
use crate::manifest::{Content, FileEntry, Input, Manifest};
use crate::progress::Progress;
use crate::tool::run;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const STEPS: usize = 10;

/// Everything `build` needs besides the definition.
pub struct Options {
    pub spec: PathBuf,
    pub out: PathBuf,
    pub key: PathBuf,
    pub cache: PathBuf,
    /// Prebuilt static binaries and module directory; built from the workspace when `None`.
    pub lms_node: Option<PathBuf>,
    pub lms_updater: Option<PathBuf>,
    pub modules: Option<PathBuf>,
    pub json: bool,
}

pub struct Built {
    pub manifest: Manifest,
    pub disk_bytes: u64,
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<u64, String> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let n = std::fs::copy(from, to).map_err(|e| format!("{} -> {}: {e}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())?;
    Ok(n)
}

fn write(to: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(to, bytes).map_err(|e| format!("{}: {e}", to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
}

/// The Cargo workspace the definition lives in (our binaries are built from it).
fn workspace_of(spec: &Path) -> Result<PathBuf, String> {
    let start = std::fs::canonicalize(spec).map_err(|e| format!("{}: {e}", spec.display()))?;
    start
        .ancestors()
        .find(|d| std::fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]")))
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            format!("{} is not inside a Cargo workspace; pass --lms-node, --lms-updater and --modules", spec.display())
        })
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn target_dir(ws: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| ws.join("target"))
}

const MUSL: &str = "x86_64-unknown-linux-musl";

/// Static release builds of lms-node and lms-updater, stripped into `dir`.
fn binaries(o: &Options, dir: &Path) -> Result<(PathBuf, PathBuf, String), String> {
    let (node, updater, how) = match (&o.lms_node, &o.lms_updater) {
        (Some(n), Some(u)) => (n.clone(), u.clone(), "given".to_string()),
        (None, None) => {
            let ws = workspace_of(&o.spec)?;
            run(Command::new(cargo())
                .args(["build", "--release", "--locked", "--target", MUSL])
                .args(["-p", "lms-node", "--bin", "lms-node", "-p", "lms-updater", "--bin", "lms-updater"])
                .current_dir(&ws))?;
            let rel = target_dir(&ws).join(MUSL).join("release");
            (rel.join("lms-node"), rel.join("lms-updater"), format!("cargo build --release --target {MUSL}"))
        }
        _ => return Err("--lms-node and --lms-updater go together".into()),
    };
    let mut out = Vec::new();
    for (name, src) in [("lms-node", &node), ("lms-updater", &updater)] {
        let dest = dir.join(name);
        run(Command::new("strip").arg("-o").arg(&dest).arg(src))?;
        out.push(dest);
    }
    Ok((out.remove(0), out.remove(0), how))
}

fn modules(o: &Options, tmp: &Path) -> Result<PathBuf, String> {
    if let Some(m) = &o.modules {
        return Ok(m.clone());
    }
    let ws = workspace_of(&o.spec)?;
    let out = tmp.join("modules");
    run(Command::new(cargo()).args(["xtask", "modules", "--out"]).arg(&out).current_dir(&ws))?;
    Ok(out)
}

fn extract(deb: &Resolved, to: &Path) -> Result<(), String> {
    let path = deb.path.as_ref().ok_or_else(|| format!("{} is absent", deb.name))?;
    run(Command::new("dpkg-deb").arg("-x").arg(path).arg(to))
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

pub fn build(def: &Definition, o: &Options) -> Result<Built, String> {
    let (disk_def, lms) = def.image_parts(&o.spec).map_err(|e| e.to_string())?;
    let mut progress = Progress::new(STEPS, o.json);
    let epoch = lms_bundle::build_time().unix_timestamp();

    progress.step("inputs");
    let inputs = resolve(def, &o.spec, &o.cache, &System).map_err(|e| e.to_string())?;
    let absent: Vec<&Resolved> = inputs.iter().filter(|i| i.absent.is_some()).collect();
    for a in &absent {
        progress.warn(&format!(
            "{} {} is ABSENT from this image: {}",
            a.name,
            a.version,
            a.absent.as_deref().unwrap_or("")
        ));
    }
    progress.done(&format!("{} verified, {} absent", inputs.len() - absent.len(), absent.len()));
    let key = lms_bundle::keys::load_signing(&o.key).map_err(|e| format!("--key {}: {e}", o.key.display()))?;
    let key_id = lms_bundle::keys::key_id(&key.verifying_key());
    let local = |key: &str, rel: &Path| def.local(&o.spec, key, rel).map_err(|e| e.to_string());
    let policy_dir = local("lms.policies", &lms.policies)?;

    let parent = o.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".lms-image-build-")
        .tempdir_in(parent)
        .map_err(|e| format!("{}: {e}", parent.display()))?;
    let w = work.path();
    let (esp, system, data, result) = (w.join("esp"), w.join("system"), w.join("data"), w.join("result"));
    for d in [&esp, &system, &data, &result, &w.join("bin")] {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }

    progress.step("policy check (Gatekeeper rego)");
    let policy = crate::policy::Policy::load(&policy_dir)?;
    let manifests_dir = system.join("share/lms/k3s-manifests");
    std::fs::create_dir_all(&manifests_dir).map_err(|e| e.to_string())?;
    let mut checked = 0;
    if let Some(m) = &lms.manifests {
        let dir = local("lms.manifests", m)?;
        checked = policy.check_dir(&dir).map_err(|e| format!("policy check failed:\n{e}"))?;
        for (rel, p, is_dir) in disk::walk(&dir)? {
            if !is_dir {
                copy(&p, &manifests_dir.join(rel), 0o644)?;
            }
        }
    }
    for (rel, p, is_dir) in disk::walk(&policy_dir)? {
        if !is_dir {
            copy(&p, &manifests_dir.join(format!("gatekeeper-{rel}")), 0o644)?;
        }
    }
    copy(&local("lms.k3s_config", &lms.k3s_config)?, &system.join("etc/rancher/k3s/config.yaml"), 0o644)?;
    progress.done(&format!("{checked} manifests pass {} constraints", policy.constraints()));

    progress.step("lms-node and lms-updater (static)");
    let (node, updater, how) = binaries(o, &w.join("bin"))?;
    copy(&node, &system.join("bin/lms-node"), 0o755)?;
    copy(&updater, &system.join("bin/lms-updater"), 0o755)?;
    let mut extra: Vec<Input> = Vec::new();
    for (name, p) in [("lms-node", &node), ("lms-updater", &updater)] {
        extra.push(Input {
            kind: "workspace".into(),
            name: name.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            source: how.clone(),
            sha256: lms_bundle::sha256_file(p)?,
            absent: None,
        });
    }
    progress.done(&how);

    progress.step("factory module bundle");
    let mdir = modules(o, w)?;
    let mtext = std::fs::read(mdir.join("manifest.json")).map_err(|e| format!("{}: {e}", mdir.display()))?;
    let version = serde_json::from_slice::<serde_json::Value>(&mtext)
        .ok()
        .and_then(|v| v["bundle_version"].as_str().map(str::to_string))
        .ok_or_else(|| format!("{}: manifest.json has no bundle_version", mdir.display()))?;
    let bundle = system.join("share/lms/factory.bundle");
    std::fs::create_dir_all(bundle.parent().unwrap()).map_err(|e| e.to_string())?;
    lms_bundle::create(&mdir, &version, &key, &bundle).map_err(|e| format!("bundling {}: {e}", mdir.display()))?;
    extra.push(Input {
        kind: "bundle".into(),
        name: "factory-modules".into(),
        version: version.clone(),
        source: "cargo xtask modules".into(),
        sha256: lms_bundle::sha256_file(&bundle)?,
        absent: None,
    });
    if let Some(rel) = &lms.content {
        progress.step("factory content bundle");
        let pack = local("lms.content", rel)?;
        let checked = lms_package::pack::check(&pack).map_err(|e| format!("lms.content: {e}"))?;
        let out = system.join("share/lms/factory-content.bundle");
        lms_bundle::content::create(&pack, &lms.content_version, checked.courses, &key, &out)
            .map_err(|e| format!("bundling the content pack {}: {e}", pack.display()))?;
        extra.push(Input {
            kind: "bundle".into(),
            name: "factory-content".into(),
            version: lms.content_version.clone(),
            source: format!("lms.content {}", rel.display()),
            sha256: lms_bundle::sha256_file(&out)?,
            absent: None,
        });
    }
    let pubkey = o.key.with_extension("pub");
    copy(&pubkey, &system.join("etc/lms/keys/factory.pub"), 0o644)?;
    for (i, k) in lms.trusted_keys.iter().enumerate() {
        let src = local(&format!("lms.trusted_keys[{i}]"), k)?;
        lms_bundle::keys::load_verifying(&src).map_err(|e| format!("lms.trusted_keys[{i}] {}: {e}", src.display()))?;
        let name = src.file_name().unwrap().to_string_lossy().into_owned();
        copy(&src, &system.join("etc/lms/keys").join(name), 0o644)?;
    }
    // The node's code cache on the data partition, compiled by the very
    // lms-node binary of the image (static, so it runs here) with the
    // factory settings: the first boot loads instead of compiling.
    let settings = local("lms.settings", &lms.settings)?;
    // Its entries are authenticated with a key derived from the signing key
    // (secret, and the same on every build, so images stay reproducible);
    // the node replaces it with a random key of its own on first start.
    let cache_dir = data.join("lms/module-cache");
    let cache_key = w.join("cache.key");
    let derived: [u8; 32] = sha2::Sha256::new()
        .chain_update(b"lms-image factory code-cache key v1\0")
        .chain_update(key.to_bytes())
        .finalize()
        .into();
    write_private(&cache_key, &derived)?;
    let compiled = run(Command::new(&node)
        .arg("precompile")
        .arg("--config")
        .arg(&settings)
        .arg("--modules")
        .arg(&mdir)
        .arg("--cache-dir")
        .arg(&cache_dir)
        .arg("--cache-key")
        .arg(&cache_key)
        .env("LMS_LOG", "warn"));
    let _ = std::fs::remove_file(&cache_key);
    compiled?;
    progress.done(&format!("version {version}, signed by key {key_id}, precompiled for the node"));

    progress.step("kernel and initramfs");
    let (kver, mods) = crate::initramfs::build(&inputs, &esp)?;
    progress.done(&format!("kernel {kver}, {} modules", mods.len()));

    progress.step("system partition (squashfs)");
    for a in inputs.iter().filter(|i| i.kind == "artifact") {
        let (Some(path), Some(spec)) = (&a.path, def.artifact.iter().find(|x| x.name == a.name)) else { continue };
        let dest = system.join(spec.dest.trim_start_matches('/'));
        if spec.unpack {
            std::fs::create_dir_all(&dest).map_err(|e| e.to_string())?;
            run(Command::new("tar").arg("-xzf").arg(path).arg("-C").arg(&dest).arg("--no-same-owner"))?;
        } else {
            copy(path, &dest, if spec.dest.starts_with("/bin/") { 0o755 } else { 0o644 })?;
        }
    }
    copy(&settings, &system.join("share/lms/lms.toml"), 0o644)?;
    if let Some(r) = &lms.roster {
        copy(&local("lms.roster", r)?, &system.join("share/lms/roster.csv"), 0o644)?;
    }
    write(
        &system.join("etc/os-release"),
        format!(
            "NAME=\"LMS edge appliance\"\nID=lms-edge\nIMAGE_ID={}\nIMAGE_VERSION={}\nBUILD_ID={epoch}\n",
            def.name,
            env!("CARGO_PKG_VERSION")
        )
        .as_bytes(),
        0o644,
    )?;
    disk::fix_times(&system, epoch)?;
    let system_img = w.join("system.img");
    disk::squashfs(&system, &system_img, epoch)?;
    progress.done(&format!("{} bytes", std::fs::metadata(&system_img).map(|m| m.len()).unwrap_or(0)));

    progress.step("data partition (ext4)");
    copy(&settings, &data.join("etc/lms.toml"), 0o600)?;
    if let Some(c) = &lms.credentials {
        copy(&local("lms.credentials", c)?, &data.join("etc/htpasswd"), 0o600)?;
    }
    if let Some(c) = &lms.credential_scopes {
        copy(&local("lms.credential_scopes", c)?, &data.join("etc/scopes.toml"), 0o600)?;
    }
    for d in ["lms", "modules", "rancher"] {
        std::fs::create_dir_all(data.join(d)).map_err(|e| e.to_string())?;
    }
    disk::fix_times(&data, epoch)?;
    let data_img = w.join("data.img");
    disk::ext4(&data, &data_img, disk_def.data_mib, epoch, &format!("{}/data", def.name))?;
    progress.done(&format!("{} MiB", disk_def.data_mib));

    progress.step("EFI system partition (systemd-boot)");
    let sdboot = inputs
        .iter()
        .find(|i| i.kind == "debian" && i.name == "systemd-boot-efi")
        .ok_or("the definition has no Debian package systemd-boot-efi")?;
    let sd = w.join("systemd-boot");
    extract(sdboot, &sd)?;
    copy(&sd.join("usr/lib/systemd/boot/efi/systemd-bootx64.efi"), &esp.join("EFI/BOOT/BOOTX64.EFI"), 0o644)?;
    write(&esp.join("loader/loader.conf"), b"default lms.conf\ntimeout 0\neditor no\n", 0o644)?;
    write(
        &esp.join("loader/entries/lms.conf"),
        format!(
            "title LMS appliance ({})\nlinux /vmlinuz\ninitrd /initrd.img\noptions {}\n",
            def.name, disk_def.cmdline
        )
        .as_bytes(),
        0o644,
    )?;
    disk::fix_times(&esp, epoch)?;
    let esp_img = w.join("esp.img");
    disk::fat(&esp, &esp_img, disk_def.esp_mib, epoch, &format!("{}/esp", def.name))?;
    progress.done(&format!("{} MiB", disk_def.esp_mib));

    progress.step("GPT disk image");
    let disk_img = result.join("disk.img");
    let placed = disk::gpt(
        &disk_img,
        &[
            Part { name: "ESP", type_guid: disk::ESP_TYPE, image: &esp_img, mib: disk_def.esp_mib },
            Part { name: "lms-system", type_guid: disk::SYSTEM_TYPE, image: &system_img, mib: disk_def.system_mib },
            Part { name: "lms-data", type_guid: disk::DATA_TYPE, image: &data_img, mib: disk_def.data_mib },
        ],
        &def.name,
    )?;
    copy(&esp.join("vmlinuz"), &result.join("boot/vmlinuz"), 0o644)?;
    copy(&esp.join("initrd.img"), &result.join("boot/initrd.img"), 0o644)?;
    let disk_bytes = std::fs::metadata(&disk_img).map_err(|e| e.to_string())?.len();
    progress.done(&format!("{:.1} MiB", disk_bytes as f64 / (1 << 20) as f64));

    progress.step("manifest and signature");
    let mut files = Vec::new();
    for rel in ["disk.img", "boot/vmlinuz", "boot/initrd.img"] {
        let p = result.join(rel);
        files.push(FileEntry {
            path: rel.into(),
            size: std::fs::metadata(&p).map_err(|e| e.to_string())?.len(),
            sha256: lms_bundle::sha256_file(&p)?,
        });
    }
    let mut all_contents = contents("ESP", &esp)?;
    all_contents.extend(contents("lms-system", &system)?);
    all_contents.extend(contents("lms-data", &data)?);
    let manifest = Manifest {
        format: crate::manifest::FORMAT,
        name: def.name.clone(),
        arch: def.arch.as_str().into(),
        builder: format!("lms-image {}", env!("CARGO_PKG_VERSION")),
        source_date_epoch: epoch,
        kernel: kver,
        cmdline: disk_def.cmdline.clone(),
        inputs: inputs.iter().map(Input::from).chain(extra).collect(),
        files,
        partitions: placed,
        contents: all_contents,
        signed_by: key_id,
    };
    crate::manifest::write_signed(&result, &manifest, &key)?;
    progress.done("manifest.json, manifest.sig");

    // Swap the finished image into place; the previous one stays until then.
    let old = w.join("previous");
    if o.out.exists() {
        std::fs::rename(&o.out, &old).map_err(|e| format!("{}: {e}", o.out.display()))?;
    }
    if let Err(e) = std::fs::rename(&result, &o.out) {
        if old.exists() {
            let _ = std::fs::rename(&old, &o.out);
        }
        return Err(format!("{}: {e}", o.out.display()));
    }
    progress.finished(&format!("{} ({:.1} MiB disk)", o.out.display(), disk_bytes as f64 / (1 << 20) as f64));
    Ok(Built { manifest, disk_bytes })
}

/// Writes a secret file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| format!("{}: {e}", path.display()))
}
