//! `lms-image build [SPEC] --out DIR [--key KEY]`: the bootable, signed disk image.

use crate::build::{Options, build};
use crate::definition::Definition;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Appliance definition.
    #[arg(default_value = "appliance/appliance.toml")]
    spec: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Signs manifest.sig and the factory bundle (PREFIX.key from keygen; PREFIX.pub
    /// goes into the image as a trusted bundle key). Default: a development key
    /// made once under the cache directory, and the build says so.
    #[arg(long)]
    key: Option<PathBuf>,
    #[arg(long, default_value = "target/lms-image-cache")]
    cache: PathBuf,
    /// A static (musl) lms-node to use instead of building one.
    #[arg(long, requires = "lms_updater")]
    lms_node: Option<PathBuf>,
    /// A static (musl) lms-updater to use instead of building one.
    #[arg(long, requires = "lms_node")]
    lms_updater: Option<PathBuf>,
    /// A module directory (`cargo xtask modules`) to use instead of building one.
    #[arg(long)]
    modules: Option<PathBuf>,
    /// The system version the image and its system.bundle carry (monotonic:
    /// nodes refuse a system older than theirs). Default: MAJOR.MINOR of
    /// lms-image, then SOURCE_DATE_EPOCH (`0.1.1767225600`).
    #[arg(long)]
    system_version: Option<String>,
    /// One JSON event per line on stdout instead of progress on stderr.
    #[arg(long)]
    json: bool,
}

/// SOURCE_DATE_EPOCH when set, else the time of the workspace's last commit
/// (so two builds of one commit agree), else the definition's mtime.
fn source_date_epoch(spec: &Path) -> i64 {
    if let Some(v) = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse().ok()) {
        return v;
    }
    let dir = spec.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::process::Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .or_else(|| {
            std::fs::metadata(spec)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
        })
        .unwrap_or(0)
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let def = Definition::load(&a.spec)?;
    let epoch = source_date_epoch(&a.spec);
    // SAFETY: set before any thread exists; every timestamp of the build
    // (bundle, filesystems, cpio) reads it from here on.
    unsafe { std::env::set_var("SOURCE_DATE_EPOCH", epoch.to_string()) };
    let key = match a.key {
        Some(k) => k,
        None => {
            let prefix = a.cache.join("dev-signing");
            let key = prefix.with_extension("key");
            if !key.exists() {
                std::fs::create_dir_all(&a.cache)?;
                lms_bundle::keys::generate(&prefix)?;
            }
            eprintln!("warning: no --key: signing with the development key {} (not for hardware)", key.display());
            key
        }
    };
    let built = build(
        &def,
        &Options {
            spec: a.spec,
            out: a.out.clone(),
            key,
            cache: a.cache,
            lms_node: a.lms_node,
            lms_updater: a.lms_updater,
            modules: a.modules,
            system_version: a.system_version,
            json: a.json,
        },
    )
    .map_err(anyhow::Error::msg)?;
    if !a.json {
        println!(
            "image {} ({} bytes, system {}): disk.img, boot/, system.bundle, manifest.json, manifest.sig",
            a.out.display(),
            built.disk_bytes,
            built.manifest.system_version
        );
        for i in built.manifest.inputs.iter().filter(|i| i.absent.is_some()) {
            println!("ABSENT: {} {} ({})", i.name, i.version, i.absent.as_deref().unwrap_or(""));
        }
    }
    Ok(())
}
