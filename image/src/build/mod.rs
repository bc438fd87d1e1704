//! `lms-image build`: from a definition to a signed, reproducible disk image
//! and the system bundle that updates nodes to it.
//!
//! The build is the list of declared [`STEPS`], each with what it reads, what
//! it writes and the progress event it reports (omicron's update-engine is
//! the model); they run in order on one [`Build`], writing only into a work
//! directory beside the output. The last step swaps the finished directory
//! into place, so a failed build leaves the previous image untouched.
//!
//! Steps live where their subject does: [`lms`] (policy, our binaries, the
//! factory bundles), [`system`] (kernel, partitions, verity, ESP, disk,
//! system bundle, manifest).

mod lms;
mod system;

use crate::definition::{Definition, Disk, Lms};
use crate::disk::Placed;
use crate::inputs::Resolved;
use crate::manifest::{Input, Manifest};
use crate::progress::Progress;
use std::path::{Path, PathBuf};

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
    /// The system version (monotonic; nodes refuse older systems).
    /// Default: `MAJOR.MINOR.SOURCE_DATE_EPOCH` of this lms-image.
    pub system_version: Option<String>,
    pub json: bool,
}

pub struct Built {
    pub manifest: Manifest,
    pub disk_bytes: u64,
}

/// One step of the build: its name (the progress event's), what it reads
/// and what it writes (both reported with the event), and the work.
pub struct Step {
    pub name: &'static str,
    pub reads: &'static [&'static str],
    pub writes: &'static [&'static str],
    run: fn(&mut Build) -> Result<String, String>,
}

pub const STEPS: &[Step] = &[
    Step { name: "inputs", reads: &["[[debian]]", "[[artifact]]"], writes: &["cache/<sha256>"], run: lms::inputs },
    Step {
        name: "policy check (Gatekeeper rego)",
        reads: &["lms.policies", "lms.manifests", "lms.k3s_config"],
        writes: &["system:/share/lms/k3s-manifests", "system:/etc/rancher/k3s"],
        run: lms::policy,
    },
    Step {
        name: "lms-node and lms-updater (static)",
        reads: &["workspace | --lms-node --lms-updater"],
        writes: &["system:/bin/lms-node", "system:/bin/lms-updater"],
        run: lms::binaries,
    },
    Step {
        name: "factory module bundle",
        reads: &["workspace modules | --modules", "--key", "lms.trusted_keys", "lms.settings"],
        writes: &["system:/share/lms/factory.bundle", "system:/etc/lms/keys", "data:/lms/module-cache"],
        run: lms::modules,
    },
    Step {
        name: "factory content bundle",
        reads: &["lms.content", "lms.content_version", "--key"],
        writes: &["system:/share/lms/factory-content.bundle"],
        run: lms::content,
    },
    Step {
        name: "kernel and initramfs",
        reads: &["linux-image-*", "busybox-static", "[[debian]] initramfs"],
        writes: &["esp:/a/vmlinuz", "esp:/a/initrd.img"],
        run: system::kernel,
    },
    Step {
        name: "system partition (squashfs)",
        reads: &["[[artifact]]", "lms.settings", "lms.roster"],
        writes: &["system.img"],
        run: system::squashfs,
    },
    Step {
        name: "dm-verity hash tree",
        reads: &["system.img"],
        writes: &["system.img (tree appended)", "root hash"],
        run: system::verity,
    },
    Step {
        name: "data partition (ext4)",
        reads: &["lms.settings", "lms.credentials", "lms.credential_scopes"],
        writes: &["data.img"],
        run: system::data,
    },
    Step {
        name: "EFI system partition (systemd-boot)",
        reads: &["systemd-boot-efi", "root hash", "disk.cmdline"],
        writes: &["esp.img"],
        run: system::esp,
    },
    Step {
        name: "GPT disk image",
        reads: &["esp.img", "system.img", "data.img"],
        writes: &["disk.img", "boot/"],
        run: system::disk,
    },
    Step {
        name: "system bundle",
        reads: &["esp:/a/vmlinuz", "esp:/a/initrd.img", "system.img", "--key"],
        writes: &["system.bundle"],
        run: system::bundle,
    },
    Step {
        name: "manifest and signature",
        reads: &["everything above"],
        writes: &["manifest.json", "manifest.sig"],
        run: system::manifest,
    },
];

/// What the steps share: the definition, the work directory and what the
/// steps before made.
pub struct Build<'a> {
    def: &'a Definition,
    o: &'a Options,
    disk_def: &'a Disk,
    lms: &'a Lms,
    epoch: i64,
    system_version: String,
    key: lms_bundle::keys::SigningKey,
    key_id: String,
    /// The work directory: staging trees `esp/`, `system/`, `data/`, `bin/`,
    /// the filesystem images, and `result/` (what is swapped into `out`).
    w: PathBuf,
    inputs: Vec<Resolved>,
    /// Inputs the build made (our binaries, the factory bundles).
    extra: Vec<Input>,
    kernel_release: String,
    verity: Option<lms_bundle::verity::Verity>,
    placed: Vec<Placed>,
    disk_bytes: u64,
    manifest: Option<Manifest>,
}

impl Build<'_> {
    fn esp(&self) -> PathBuf {
        self.w.join("esp")
    }
    fn system(&self) -> PathBuf {
        self.w.join("system")
    }
    fn data(&self) -> PathBuf {
        self.w.join("data")
    }
    fn result(&self) -> PathBuf {
        self.w.join("result")
    }
    /// A file the definition names, relative to it.
    fn local(&self, key: &str, rel: &Path) -> Result<PathBuf, String> {
        self.def.local(&self.o.spec, key, rel).map_err(|e| e.to_string())
    }
}

fn default_system_version(epoch: i64) -> String {
    let mut v = env!("CARGO_PKG_VERSION").split('.');
    format!("{}.{}.{}", v.next().unwrap_or("0"), v.next().unwrap_or("0"), epoch.max(0))
}

pub fn build(def: &Definition, o: &Options) -> Result<Built, String> {
    let (disk_def, lms) = def.image_parts(&o.spec).map_err(|e| e.to_string())?;
    let epoch = lms_bundle::build_time().unix_timestamp();
    let system_version = o.system_version.clone().unwrap_or_else(|| default_system_version(epoch));
    system_version.parse::<lms_bundle::Version>().map_err(|e| format!("--system-version {system_version}: {e}"))?;
    let key = lms_bundle::keys::load_signing(&o.key).map_err(|e| format!("--key {}: {e}", o.key.display()))?;
    let key_id = lms_bundle::keys::key_id(&key.verifying_key());

    let parent = o.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".lms-image-build-")
        .tempdir_in(parent)
        .map_err(|e| format!("{}: {e}", parent.display()))?;
    let w = work.path().to_path_buf();
    for d in ["esp", "system", "data", "result", "bin"] {
        std::fs::create_dir_all(w.join(d)).map_err(|e| e.to_string())?;
    }
    let mut b = Build {
        def,
        o,
        disk_def,
        lms,
        epoch,
        system_version,
        key,
        key_id,
        w,
        inputs: Vec::new(),
        extra: Vec::new(),
        kernel_release: String::new(),
        verity: None,
        placed: Vec::new(),
        disk_bytes: 0,
        manifest: None,
    };
    let mut progress = Progress::new(STEPS.len(), o.json);
    for step in STEPS {
        progress.step(step.name, step.reads, step.writes);
        let detail = (step.run)(&mut b)?;
        for warning in detail.lines().filter_map(|l| l.strip_prefix("warning: ")) {
            progress.warn(warning);
        }
        progress.done(detail.lines().last().unwrap_or(""));
    }

    // Swap the finished image into place; the previous one stays until then.
    let old = b.w.join("previous");
    if o.out.exists() {
        std::fs::rename(&o.out, &old).map_err(|e| format!("{}: {e}", o.out.display()))?;
    }
    if let Err(e) = std::fs::rename(b.result(), &o.out) {
        if old.exists() {
            let _ = std::fs::rename(&old, &o.out);
        }
        return Err(format!("{}: {e}", o.out.display()));
    }
    progress.finished(&format!("{} ({:.1} MiB disk)", o.out.display(), b.disk_bytes as f64 / (1 << 20) as f64));
    Ok(Built { manifest: b.manifest.take().expect("the manifest step ran"), disk_bytes: b.disk_bytes })
}

/// Copies `from` to `to` (parents made) with `mode`; the bytes copied.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_declare_what_they_read_and_write() {
        let mut names = std::collections::BTreeSet::new();
        for s in STEPS {
            assert!(names.insert(s.name), "{} twice", s.name);
            assert!(!s.reads.is_empty() && !s.writes.is_empty(), "{}", s.name);
        }
        assert_eq!(STEPS.last().unwrap().name, "manifest and signature");
    }

    #[test]
    fn the_default_system_version_grows_with_the_source_date() {
        let a: lms_bundle::Version = default_system_version(1_767_225_600).parse().unwrap();
        let b: lms_bundle::Version = default_system_version(1_767_312_000).parse().unwrap();
        assert!(b > a);
    }
}
