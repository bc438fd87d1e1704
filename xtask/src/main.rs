//! Developer automation (`cargo xtask ...`): builds the LMS modules into a
//! module directory and runs the CI steps in the order CI runs them.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use lms_abi::{FileEntry, ModuleEntry, ModuleManifest};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

mod fuzz;
mod setup;

/// Seconds each fuzz target runs in `cargo xtask ci`.
const CI_FUZZ_SECONDS: u64 = 60;

/// The modules every bundle carries, by name, with their crate.
const MODULES: &[(&str, &str)] =
    &[("catalog", "lms-catalog"), ("progress", "lms-progress"), ("quiz", "lms-quiz"), ("web", "lms-web")];

#[derive(Parser)]
#[command(about = "LMS appliance developer tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build all LMS modules for wasm32-wasip1 and write a module directory.
    Modules {
        #[arg(long)]
        out: PathBuf,
        /// The bundle version written into manifest.json.
        #[arg(long, default_value = "1.0.0")]
        bundle_version: String,
    },
    /// The main job: build the default (development) appliance image and boot
    /// it under QEMU; the LMS answers on 127.0.0.1:PORT (demo:demo).
    Run {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Direct kernel boot instead of UEFI firmware + systemd-boot (faster under TCG).
        #[arg(long)]
        direct: bool,
    },
    /// Build the modules and start lms-node natively on 127.0.0.1:8080 (demo:demo), no VM.
    Node {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Everything CI checks: fmt, clippy, modules, all tests, then every fuzz
    /// target for a bounded time (runs setup first).
    Ci,
    /// Seed the fuzz targets with real bundles (signed with the targets' test
    /// key) and run each for SECONDS with cargo-fuzz; prints coverage.
    Fuzz {
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// One target only (bundle, bundle_signed, channel).
        #[arg(long)]
        only: Option<String>,
    },
    /// Install what a fresh Debian machine lacks (packages, rustup targets and
    /// components), then check every tool; `run` and `ci` do this first.
    Setup {
        /// Only report; exit 1 when anything would change.
        #[arg(long)]
        check: bool,
    },
    /// Run the load benchmark against a release build.
    Bench {
        /// Extra arguments for lms-bench.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    match xtask() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn xtask() -> Result<()> {
    // lms-image and the tests run sfdisk, mkfs.*, debugfs and depmod, which
    // Debian keeps in sbin, off a normal user's PATH.
    // SAFETY: first thing in main, before any thread exists.
    unsafe { std::env::set_var("PATH", setup::tool_path()) };
    match Cli::parse().cmd {
        Cmd::Setup { check } => setup::ensure(check)?,
        Cmd::Modules { out, bundle_version } => {
            build_modules(&out, &bundle_version)?;
            println!("module directory written to {}", out.display());
        }
        Cmd::Run { port, direct } => {
            setup::ensure(false)?;
            cargo(&["build", "--locked", "-p", "lms-image"])?;
            let image = target_dir().join("lms-dev/image");
            let lms_image = target_dir().join("debug/lms-image");
            // lms-image builds the static binaries and the modules from this workspace itself.
            run(Command::new(&lms_image)
                .arg("build")
                .arg("appliance/appliance-dev.toml")
                .arg("--out")
                .arg(&image)
                .arg("--cache")
                .arg(target_dir().join("lms-image-cache"))
                .current_dir(root()))?;
            println!(
                "booting {} under QEMU; learner API credentials demo:demo; Ctrl-C (or `poweroff` on the console) stops the VM",
                image.display()
            );
            let mut c = Command::new(&lms_image);
            // The content listener on the next port: the dev settings name
            // http://127.0.0.1:8081 as the origin cmi5 launches open.
            c.arg("run").arg(&image).arg("--port").arg(port.to_string());
            c.arg("--content-port").arg((port + 1).to_string());
            if direct {
                c.arg("--direct");
            }
            run(&mut c)?;
        }
        Cmd::Node { listen } => {
            let dir = target_dir().join("lms-dev");
            let modules = dir.join("modules");
            build_modules(&modules, "1.0.0")?;
            let creds = dir.join("credentials");
            if !creds.exists() {
                let hash = bcrypt::hash("demo", 10)?;
                std::fs::write(&creds, format!("demo:{hash}\n"))?;
            }
            // demo may do everything, as in the development image.
            let scopes = dir.join("scopes.toml");
            if !scopes.exists() {
                std::fs::copy(root().join("appliance/factory/dev-scopes.toml"), &scopes)?;
            }
            cargo(&["build", "--release", "-p", "lms-node"])?;
            let node = target_dir().join("release/lms-node");
            let data = dir.join("data");
            if !data.join("roster.db").exists() {
                // The same demo people as the development image (README).
                run(Command::new(&node)
                    .args(["roster", "--data-dir"])
                    .arg(&data)
                    .arg("import")
                    .arg(root().join("appliance/factory/dev-roster.csv")))?;
            }
            println!(
                "starting lms-node on http://{listen}/ (client credentials demo:demo; people demo-learner and demo-coach, passwords as the ids)"
            );
            run(Command::new(&node).args([
                "serve",
                "--listen",
                &listen,
                "--admin-listen",
                "127.0.0.1:9090",
                "--data-dir",
                dir.join("data").to_str().unwrap(),
                "--modules",
                modules.to_str().unwrap(),
                "--content",
                root().join("appliance/content").to_str().unwrap(),
                "--credentials",
                creds.to_str().unwrap(),
            ]))?;
        }
        Cmd::Ci => {
            setup::ensure(false)?;
            cargo(&["fmt", "--all", "--check"])?;
            cargo(&["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])?;
            let modules = target_dir().join("lms-test-modules");
            build_modules(&modules, "1.0.0")?;
            // The static binaries the image tests put into the VM.
            let (node, updater) = build_static()?;
            run(Command::new(cargo_bin())
                // One failing test binary must not hide the others' results.
                .args(["test", "--workspace", "--locked", "--no-fail-fast"])
                .env("LMS_TEST_MODULES", &modules)
                .env("LMS_TEST_NODE_MUSL", &node)
                .env("LMS_TEST_UPDATER_MUSL", &updater))?;
            fuzz::run(CI_FUZZ_SECONDS, None)?;
        }
        Cmd::Fuzz { seconds, only } => {
            setup::ensure(false)?;
            fuzz::run(seconds, only.as_deref())?;
        }
        Cmd::Bench { args } => {
            let modules = target_dir().join("lms-bench-modules");
            build_modules(&modules, "1.0.0")?;
            cargo(&["build", "--release", "--locked", "-p", "lms-node", "--bins"])?;
            run(Command::new(target_dir().join("release/lms-bench"))
                .arg("--modules")
                .arg(&modules)
                .arg("--content")
                .arg(root().join("appliance/content"))
                .args(args))?;
        }
    }
    Ok(())
}

/// Static (musl) release builds of lms-node and lms-updater, as the image carries them.
fn build_static() -> Result<(PathBuf, PathBuf)> {
    let target = "x86_64-unknown-linux-musl";
    // One invocation, as `lms-image build` does it: the same feature set, built once.
    cargo(&[
        "build",
        "--release",
        "--locked",
        "--target",
        target,
        "-p",
        "lms-node",
        "--bin",
        "lms-node",
        "-p",
        "lms-updater",
        "--bin",
        "lms-updater",
    ])?;
    let dir = target_dir().join(target).join("release");
    Ok((dir.join("lms-node"), dir.join("lms-updater")))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Where cargo puts build output (honours CARGO_TARGET_DIR, as CI sets it).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn cargo(args: &[&str]) -> Result<()> {
    run(Command::new(cargo_bin()).args(args).current_dir(root()))
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Builds the guest crates and lays out a module directory at `out`:
/// manifest.json, one .wasm per module and the web module's static files:
/// code and templates only (format 2); the courses are the content pack's
/// (`appliance/content`), shipped in content bundles.
pub fn build_modules(out: &Path, bundle_version: &str) -> Result<()> {
    let mut args = vec!["build", "--profile", "wasm", "--target", "wasm32-wasip1", "--locked"];
    for (_, krate) in MODULES {
        args.extend(["-p", krate]);
    }
    cargo(&args)?;

    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut modules = Vec::new();
    for (name, krate) in MODULES {
        let src = target_dir().join("wasm32-wasip1/wasm").join(format!("{}.wasm", krate.replace('-', "_")));
        let bytes = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
        let file = format!("{name}.wasm");
        std::fs::write(out.join(&file), &bytes)?;
        modules.push(ModuleEntry {
            name: name.to_string(),
            version: crate_version(krate)?,
            file,
            size: bytes.len() as u64,
            sha256: sha256(&bytes),
        });
    }
    let assets = copy_assets(&root().join("wasm-modules/web/static"), out)?;
    let manifest = ModuleManifest {
        format: lms_abi::MANIFEST_FORMAT,
        bundle_version: bundle_version.to_string(),
        abi: lms_abi::ABI_VERSION,
        modules,
        content: None,
        assets,
    };
    // The manifest goes last: a directory with a manifest is complete.
    std::fs::write(out.join(lms_abi::MANIFEST_FILE), serde_json::to_vec_pretty(&manifest)?)?;
    Ok(())
}

/// Copies the web module's static files into the module directory under
/// their content-hashed names (the names the module's build script links to).
fn copy_assets(from: &Path, out: &Path) -> Result<Vec<FileEntry>> {
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(from)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
    names.sort();
    let mut assets = Vec::new();
    for path in names {
        let name =
            path.file_name().and_then(|n| n.to_str()).with_context(|| format!("{}: not UTF-8", path.display()))?;
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let hash = sha256(&bytes);
        let file = lms_abi::asset_file_name(name, &hash);
        std::fs::write(out.join(&file), &bytes)?;
        assets.push(FileEntry { file, size: bytes.len() as u64, sha256: hash });
    }
    Ok(assets)
}

fn crate_version(krate: &str) -> Result<String> {
    let dir = krate.trim_start_matches("lms-");
    let path = root().join("wasm-modules").join(dir).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let v: toml::Value = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    v.get("package")
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .with_context(|| format!("{}: package.version missing", path.display()))
}
