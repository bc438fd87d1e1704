//! `cargo xtask setup`: the one place that makes a fresh Debian machine able
//! to build, boot and test the appliance. `cargo xtask run` and
//! `cargo xtask ci` call it first; `.ci/run` is just `cargo xtask ci`.
//!
//! It observes the machine, plans what is missing (Debian packages, rustup
//! targets and components), applies the plan in one apt transaction, then
//! observes again: the second plan must be empty and every tool must be on
//! PATH, or it stops naming what is missing, before any build. Running it
//! twice changes nothing the second time (the re-plan proves it every run).
//!
//! QEMU's packages are one set: `qemu-system-x86` pins `qemu-system-common`
//! to its own version, and a `qemu-utils` from another release (a machine may
//! ship 10.0 from backports while bookworm has 7.2) makes apt *remove*
//! `qemu-img` to satisfy it. So both are installed at one version, together.

use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian puts the filesystem tools (not on a normal user's PATH).
const SBIN: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// How to tell a requirement is met.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// A command on PATH (or in sbin).
    Command(&'static str),
    /// A file at this path.
    File(&'static str),
}

/// One thing the build, the boot or the tests need, and the package that has it.
pub struct Need {
    pub probe: Probe,
    pub package: &'static str,
    pub why: &'static str,
}

const fn cmd(name: &'static str, package: &'static str, why: &'static str) -> Need {
    Need { probe: Probe::Command(name), package, why }
}

pub const NEEDS: &[Need] = &[
    cmd("cc", "build-essential", "rusqlite's bundled SQLite"),
    cmd("musl-gcc", "musl-tools", "static lms-node and lms-updater for the image"),
    cmd("strip", "binutils", "stripping the image's binaries"),
    cmd("git", "git", "SOURCE_DATE_EPOCH of the image build"),
    cmd("curl", "curl", "lms-image fetches pinned artifacts by URL"),
    cmd("dpkg-deb", "dpkg", "unpacking the pinned kernel and busybox"),
    cmd("depmod", "kmod", "the initramfs' kernel module closure"),
    cmd("sfdisk", "fdisk", "the image's GPT"),
    cmd("mkfs.vfat", "dosfstools", "the ESP"),
    cmd("mcopy", "mtools", "filling the ESP"),
    cmd("mmd", "mtools", "filling the ESP"),
    cmd("mksquashfs", "squashfs-tools", "the system partition"),
    cmd("veritysetup", "cryptsetup-bin", "the system slots' dm-verity hash trees"),
    cmd("mkfs.ext4", "e2fsprogs", "the data partition"),
    cmd("debugfs", "e2fsprogs", "pinning the data partition's timestamps"),
    cmd("qemu-system-x86_64", "qemu-system-x86", "booting the image"),
    cmd("qemu-img", "qemu-utils", "overlays and qcow2 disks for the VM"),
    Need { probe: Probe::File("/usr/share/OVMF/OVMF_CODE_4M.fd"), package: "ovmf", why: "UEFI boot" },
    Need { probe: Probe::File("/usr/share/OVMF/OVMF_VARS_4M.fd"), package: "ovmf", why: "UEFI boot" },
    cmd("promtool", "prometheus", "checking /metrics in the tests"),
    cmd("chromium", "chromium", "the browser tests (headless, driven by playwright-core)"),
    cmd("node", "nodejs", "the browser tests' driver (playwright-core, axe-core)"),
    cmd("npm", "nodejs", "installing the browser tests' packages from their lock file"),
    Need {
        probe: Probe::File("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
        package: "fonts-wqy-zenhei",
        why: "Chinese text in the browser tests' screenshots",
    },
];

/// The browser tests' npm packages, installed by `npm ci` from the lock file.
pub const BROWSER_TESTS: &str = "browser-tests";
/// Written into node_modules after `npm ci`: the sha256 of the lock file it installed.
const NPM_STAMP: &str = "node_modules/.lms-lock-sha256";

/// Installed together at one version, whatever was there before.
pub const QEMU_SET: &[&str] = &["qemu-system-x86", "qemu-utils"];

pub const RUST_TARGETS: &[&str] = &["wasm32-wasip1", "x86_64-unknown-linux-musl"];
pub const RUST_COMPONENTS: &[&str] = &["rustfmt", "clippy"];
/// `cargo xtask fuzz` (and so CI) runs the fuzz targets with this cargo-fuzz.
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// What the machine has, as far as the plan cares.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    /// Needs whose probe failed, by index into `NEEDS`.
    pub missing: Vec<usize>,
    /// Installed version of each package of `QEMU_SET` (None: not installed).
    pub qemu_installed: Vec<Option<String>>,
    /// Whether apt has package lists (`apt-get download` needs them).
    pub apt_lists: bool,
    pub targets: BTreeSet<String>,
    pub components: BTreeSet<String>,
    /// `cargo fuzz --version`'s version, when it runs.
    pub cargo_fuzz: Option<String>,
    /// browser-tests/node_modules holds what the lock file pins.
    pub npm_installed: bool,
}

/// What setup will do; empty when the machine is ready.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub apt_update: bool,
    /// Plain package names.
    pub packages: BTreeSet<String>,
    /// The QEMU set needs installing at one version (the candidate of `qemu-system-x86`).
    pub qemu_set: bool,
    pub targets: Vec<String>,
    pub components: Vec<String>,
    /// cargo-fuzz is missing or another version: `cargo install` it.
    pub cargo_fuzz: bool,
    /// `npm ci` in browser-tests.
    pub npm_ci: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        *self == Plan::default()
    }
}

/// Pure: decides what to change from what was observed.
pub fn plan(o: &Observed) -> Plan {
    let mut p = Plan::default();
    for &i in &o.missing {
        let pkg = NEEDS[i].package;
        if !QEMU_SET.contains(&pkg) {
            p.packages.insert(pkg.to_string());
        }
    }
    let first = o.qemu_installed.first().cloned().flatten();
    p.qemu_set = first.is_none()
        || o.qemu_installed.iter().any(|v| *v != first)
        || o.missing.iter().any(|&i| QEMU_SET.contains(&NEEDS[i].package));
    p.apt_update = !p.packages.is_empty() || p.qemu_set || !o.apt_lists;
    p.targets = RUST_TARGETS.iter().filter(|t| !o.targets.contains(**t)).map(|t| t.to_string()).collect();
    p.components = RUST_COMPONENTS.iter().filter(|c| !o.components.contains(**c)).map(|c| c.to_string()).collect();
    p.cargo_fuzz = o.cargo_fuzz.as_deref() != Some(CARGO_FUZZ_VERSION);
    p.npm_ci = !o.npm_installed;
    p
}

/// PATH with the sbin directories appended, for setup's probes and for every
/// command xtask starts (lms-image runs sfdisk, mkfs.*, debugfs, depmod).
pub fn tool_path() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    for s in SBIN {
        if !dirs.iter().any(|d| d == Path::new(s)) {
            dirs.push(PathBuf::from(s));
        }
    }
    std::env::join_paths(dirs).expect("PATH entries are valid")
}

fn on_path(name: &str) -> bool {
    std::env::split_paths(&tool_path()).any(|d| d.join(name).is_file())
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).env("PATH", tool_path()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn installed_version(pkg: &str) -> Option<String> {
    let v = output("dpkg-query", &["-W", "-f", "${db:Status-Abbrev}${Version}", pkg])?;
    // "ii " = installed; anything else (rc: removed, config left) is not.
    v.strip_prefix("ii ").map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn observe() -> Observed {
    let missing = NEEDS
        .iter()
        .enumerate()
        .filter(|(_, n)| match n.probe {
            Probe::Command(c) => !on_path(c),
            Probe::File(f) => !Path::new(f).is_file(),
        })
        .map(|(i, _)| i)
        .collect();
    let lines = |s: Option<String>| -> BTreeSet<String> {
        s.unwrap_or_default().lines().map(|l| l.split_whitespace().next().unwrap_or("").to_string()).collect()
    };
    Observed {
        missing,
        qemu_installed: QEMU_SET.iter().map(|p| installed_version(p)).collect(),
        apt_lists: output("apt-cache", &["show", "busybox-static"]).is_some(),
        targets: lines(output("rustup", &["target", "list", "--installed"])),
        components: lines(output("rustup", &["component", "list", "--installed"]))
            .into_iter()
            // "clippy-x86_64-unknown-linux-gnu" -> "clippy"
            .map(|c| RUST_COMPONENTS.iter().find(|k| c.starts_with(*k)).map_or(c.clone(), |k| k.to_string()))
            .collect(),
        // "cargo-fuzz 0.13.2"
        cargo_fuzz: output("cargo", &["fuzz", "--version"])
            .and_then(|s| s.split_whitespace().nth(1).map(str::to_string)),
        npm_installed: lock_sha256().is_some_and(|want| {
            std::fs::read_to_string(crate::root().join(BROWSER_TESTS).join(NPM_STAMP)).is_ok_and(|s| s.trim() == want)
        }),
    }
}

fn lock_sha256() -> Option<String> {
    use sha2::Digest;
    let lock = std::fs::read(crate::root().join(BROWSER_TESTS).join("package-lock.json")).ok()?;
    Some(hex::encode(sha2::Sha256::digest(lock)))
}

fn candidate(pkg: &str) -> Result<String> {
    let policy = output("apt-cache", &["policy", pkg]).with_context(|| format!("apt-cache policy {pkg}"))?;
    policy
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate:").map(|v| v.trim().to_string()))
        .filter(|v| v != "(none)")
        .with_context(|| format!("apt has no candidate version of {pkg}: is it in the configured sources?"))
}

fn is_root() -> bool {
    output("id", &["-u"]).is_some_and(|u| u.trim() == "0")
}

/// Runs a privileged command: directly as root, through sudo otherwise.
fn privileged(args: &[String]) -> Result<()> {
    let mut c = if is_root() {
        let mut c = Command::new(&args[0]);
        c.args(&args[1..]);
        c
    } else if on_path("sudo") {
        let mut c = Command::new("sudo");
        c.args(args);
        c
    } else {
        bail!("setup needs root to run: {}\nrun it as root, then run this command again", args.join(" "));
    };
    let status = c
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("PATH", tool_path())
        .status()
        .with_context(|| format!("running {}", args.join(" ")))?;
    if !status.success() {
        bail!("{} failed: {status}", args.join(" "));
    }
    Ok(())
}

fn describe(p: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    if p.apt_update {
        out.push("apt-get update".to_string());
    }
    if !p.packages.is_empty() || p.qemu_set {
        let mut pk: Vec<String> = p.packages.iter().cloned().collect();
        if p.qemu_set {
            pk.push(format!("{} (one version)", QEMU_SET.join(" + ")));
        }
        out.push(format!("apt-get install {}", pk.join(" ")));
    }
    if !p.targets.is_empty() {
        out.push(format!("rustup target add {}", p.targets.join(" ")));
    }
    if !p.components.is_empty() {
        out.push(format!("rustup component add {}", p.components.join(" ")));
    }
    if p.cargo_fuzz {
        out.push(format!("cargo install cargo-fuzz --locked --version {CARGO_FUZZ_VERSION}"));
    }
    if p.npm_ci {
        out.push(format!("npm ci in {BROWSER_TESTS} (playwright-core, axe-core from the lock file)"));
    }
    out
}

fn apply(p: &Plan) -> Result<()> {
    if p.apt_update {
        privileged(&["apt-get".into(), "update".into(), "-qq".into()])?;
    }
    if !p.packages.is_empty() || p.qemu_set {
        let mut args: Vec<String> =
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "--allow-downgrades"]
                .map(String::from)
                .to_vec();
        args.extend(p.packages.iter().cloned());
        if p.qemu_set {
            let v = candidate(QEMU_SET[0])?;
            args.extend(QEMU_SET.iter().map(|q| format!("{q}={v}")));
        }
        privileged(&args)?;
    }
    for t in &p.targets {
        crate::run(Command::new("rustup").args(["target", "add", t]))?;
    }
    for c in &p.components {
        crate::run(Command::new("rustup").args(["component", "add", c]))?;
    }
    if p.cargo_fuzz {
        crate::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ_VERSION]))?;
    }
    if p.npm_ci {
        let dir = crate::root().join(BROWSER_TESTS);
        crate::run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir))?;
        if let Some(sha) = lock_sha256() {
            std::fs::write(dir.join(NPM_STAMP), sha)?;
        }
    }
    Ok(())
}

/// `check`: report only, exit non-zero when anything would change.
pub fn ensure(check: bool) -> Result<()> {
    let before = plan(&observe());
    if before.is_empty() {
        println!("setup: this machine has everything; nothing to change");
        return Ok(());
    }
    if check {
        bail!("setup would change this machine:\n  {}\nrun `cargo xtask setup`", describe(&before).join("\n  "));
    }
    println!("setup: {}", describe(&before).join("; "));
    apply(&before)?;
    let o = observe();
    if !o.missing.is_empty() {
        let names: Vec<String> = o
            .missing
            .iter()
            .map(|&i| {
                let n = &NEEDS[i];
                let what = match n.probe {
                    Probe::Command(c) => c,
                    Probe::File(f) => f,
                };
                format!("{what} (package {}, for {})", n.package, n.why)
            })
            .collect();
        bail!("after setup these are still missing:\n  {}", names.join("\n  "));
    }
    let after = plan(&o);
    if !after.is_empty() {
        bail!("setup did not converge; a second pass would still do:\n  {}", describe(&after).join("\n  "));
    }
    println!("setup: done; a second pass finds nothing to change");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> Observed {
        Observed {
            missing: vec![],
            qemu_installed: vec![Some("1:7.2".into()), Some("1:7.2".into())],
            apt_lists: true,
            targets: RUST_TARGETS.iter().map(|t| t.to_string()).collect(),
            components: RUST_COMPONENTS.iter().map(|t| t.to_string()).collect(),
            cargo_fuzz: Some(CARGO_FUZZ_VERSION.into()),
            npm_installed: true,
        }
    }

    fn need(name: &str) -> usize {
        NEEDS.iter().position(|n| matches!(n.probe, Probe::Command(c) if c == name)).unwrap()
    }

    #[test]
    fn a_ready_machine_needs_nothing() {
        assert!(plan(&ready()).is_empty());
    }

    #[test]
    fn a_newer_qemu_utils_alone_is_replaced_by_one_consistent_set() {
        // The fresh CI machine: qemu-img from backports, no qemu-system.
        let mut o = ready();
        o.qemu_installed = vec![None, Some("1:10.0.2+ds-2+deb13u1~bpo12+1".into())];
        o.missing = vec![need("qemu-system-x86_64")];
        let p = plan(&o);
        assert!(p.qemu_set && p.apt_update);
        assert!(p.packages.is_empty(), "the QEMU packages go in as a pinned set, not by name: {p:?}");
    }

    #[test]
    fn mismatched_qemu_versions_are_fixed_even_when_every_tool_is_there() {
        let mut o = ready();
        o.qemu_installed = vec![Some("1:7.2".into()), Some("1:10.0".into())];
        assert!(plan(&o).qemu_set);
    }

    #[test]
    fn missing_tools_name_their_packages_once() {
        let mut o = ready();
        o.missing = vec![need("mkfs.ext4"), need("debugfs"), need("promtool")];
        let p = plan(&o);
        assert_eq!(p.packages.iter().map(String::as_str).collect::<Vec<_>>(), ["e2fsprogs", "prometheus"]);
        assert!(!p.qemu_set);
    }

    #[test]
    fn missing_targets_and_package_lists_are_planned() {
        let mut o = ready();
        o.targets.remove("x86_64-unknown-linux-musl");
        o.apt_lists = false;
        let p = plan(&o);
        assert_eq!(p.targets, ["x86_64-unknown-linux-musl"]);
        assert!(p.apt_update && p.packages.is_empty());
    }

    #[test]
    fn cargo_fuzz_is_installed_at_its_pinned_version() {
        let mut o = ready();
        assert!(!plan(&o).cargo_fuzz);
        o.cargo_fuzz = None;
        assert!(plan(&o).cargo_fuzz);
        o.cargo_fuzz = Some("0.11.0".into());
        let p = plan(&o);
        assert!(p.cargo_fuzz && !p.apt_update, "{p:?}");
    }
}
