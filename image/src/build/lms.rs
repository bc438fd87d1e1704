//! The build steps about the LMS itself: pinned inputs, the Gatekeeper
//! policy check, our static binaries, the factory module and content
//! bundles (and the code cache precompiled for the first boot).

use super::{Build, copy};
use crate::disk;
use crate::inputs::{Resolved, System, resolve};
use crate::manifest::Input;
use crate::tool::run;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::Command;

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

fn made(kind: &str, name: &str, version: &str, source: String, file: &Path) -> Result<Input, String> {
    Ok(Input {
        kind: kind.into(),
        name: name.into(),
        version: version.into(),
        source,
        sha256: lms_bundle::sha256_file(file)?,
        absent: None,
    })
}

pub(super) fn inputs(b: &mut Build) -> Result<String, String> {
    b.inputs = resolve(b.def, &b.o.spec, &b.o.cache, &System).map_err(|e| e.to_string())?;
    let absent: Vec<&Resolved> = b.inputs.iter().filter(|i| i.absent.is_some()).collect();
    let mut out = String::new();
    for a in &absent {
        out.push_str(&format!(
            "warning: {} {} is ABSENT from this image: {}\n",
            a.name,
            a.version,
            a.absent.as_deref().unwrap_or("")
        ));
    }
    out.push_str(&format!("{} verified, {} absent", b.inputs.len() - absent.len(), absent.len()));
    Ok(out)
}

pub(super) fn policy(b: &mut Build) -> Result<String, String> {
    let policy_dir = b.local("lms.policies", &b.lms.policies)?;
    let policy = crate::policy::Policy::load(&policy_dir)?;
    let manifests_dir = b.system().join("share/lms/k3s-manifests");
    std::fs::create_dir_all(&manifests_dir).map_err(|e| e.to_string())?;
    let mut checked = 0;
    if let Some(m) = &b.lms.manifests {
        let dir = b.local("lms.manifests", m)?;
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
    copy(&b.local("lms.k3s_config", &b.lms.k3s_config)?, &b.system().join("etc/rancher/k3s/config.yaml"), 0o644)?;
    Ok(format!("{checked} manifests pass {} constraints", policy.constraints()))
}

/// Static release builds of lms-node and lms-updater, stripped into `bin/`
/// and onto the system partition.
pub(super) fn binaries(b: &mut Build) -> Result<String, String> {
    let o = b.o;
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
    for (name, src) in [("lms-node", &node), ("lms-updater", &updater)] {
        let dest = b.w.join("bin").join(name);
        run(Command::new("strip").arg("-o").arg(&dest).arg(src))?;
        copy(&dest, &b.system().join("bin").join(name), 0o755)?;
        b.extra.push(made("workspace", name, env!("CARGO_PKG_VERSION"), how.clone(), &dest)?);
    }
    Ok(how)
}

/// The factory module bundle, the trusted keys, and the node's code cache
/// compiled by the image's own lms-node so the first boot loads instead of
/// compiling.
pub(super) fn modules(b: &mut Build) -> Result<String, String> {
    let mdir = match &b.o.modules {
        Some(m) => m.clone(),
        None => {
            let ws = workspace_of(&b.o.spec)?;
            let out = b.w.join("modules");
            run(Command::new(cargo()).args(["xtask", "modules", "--out"]).arg(&out).current_dir(&ws))?;
            out
        }
    };
    let mtext = std::fs::read(mdir.join("manifest.json")).map_err(|e| format!("{}: {e}", mdir.display()))?;
    let version = serde_json::from_slice::<serde_json::Value>(&mtext)
        .ok()
        .and_then(|v| v["bundle_version"].as_str().map(str::to_string))
        .ok_or_else(|| format!("{}: manifest.json has no bundle_version", mdir.display()))?;
    let bundle = b.system().join("share/lms/factory.bundle");
    std::fs::create_dir_all(bundle.parent().unwrap()).map_err(|e| e.to_string())?;
    lms_bundle::create(&mdir, &version, &b.key, &bundle).map_err(|e| format!("bundling {}: {e}", mdir.display()))?;
    b.extra.push(made("bundle", "factory-modules", &version, "cargo xtask modules".into(), &bundle)?);

    copy(&b.o.key.with_extension("pub"), &b.system().join("etc/lms/keys/factory.pub"), 0o644)?;
    for (i, k) in b.lms.trusted_keys.iter().enumerate() {
        let src = b.local(&format!("lms.trusted_keys[{i}]"), k)?;
        lms_bundle::keys::load_verifying(&src).map_err(|e| format!("lms.trusted_keys[{i}] {}: {e}", src.display()))?;
        let name = src.file_name().unwrap().to_string_lossy().into_owned();
        copy(&src, &b.system().join("etc/lms/keys").join(name), 0o644)?;
    }

    // The cache's entries are authenticated with a key derived from the
    // signing key (secret, and the same on every build, so images stay
    // reproducible); the node replaces it with a random key of its own on
    // first start.
    let settings = b.local("lms.settings", &b.lms.settings)?;
    let cache_key = b.w.join("cache.key");
    let derived: [u8; 32] = sha2::Sha256::new()
        .chain_update(b"lms-image factory code-cache key v1\0")
        .chain_update(b.key.to_bytes())
        .finalize()
        .into();
    write_private(&cache_key, &derived)?;
    let compiled = run(Command::new(b.w.join("bin/lms-node"))
        .arg("precompile")
        .arg("--config")
        .arg(&settings)
        .arg("--modules")
        .arg(&mdir)
        .arg("--cache-dir")
        .arg(b.data().join("lms/module-cache"))
        .arg("--cache-key")
        .arg(&cache_key)
        .env("LMS_LOG", "warn"));
    let _ = std::fs::remove_file(&cache_key);
    compiled?;
    Ok(format!("version {version}, signed by key {}, precompiled for the node", b.key_id))
}

pub(super) fn content(b: &mut Build) -> Result<String, String> {
    let Some(rel) = &b.lms.content else {
        return Ok("none (the definition names no [lms] content pack)".into());
    };
    let pack = b.local("lms.content", rel)?;
    let checked = lms_package::pack::check(&pack).map_err(|e| format!("lms.content: {e}"))?;
    let out = b.system().join("share/lms/factory-content.bundle");
    lms_bundle::content::create(&pack, &b.lms.content_version, checked.courses, &b.key, &out)
        .map_err(|e| format!("bundling the content pack {}: {e}", pack.display()))?;
    let source = format!("lms.content {}", rel.display());
    b.extra.push(made("bundle", "factory-content", &b.lms.content_version, source, &out)?);
    Ok(format!("version {}", b.lms.content_version))
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
