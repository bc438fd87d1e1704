//! `lms-image`: builds, verifies, inspects and boots the appliance image;
//! makes keys and signed module bundles and publishes them.
//!
//! Exit codes: 0 success; 1 error (the message names the file, key or value).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

use lms_image::cmd;

#[derive(Parser)]
#[command(version, about = "LMS appliance release tool", after_help = "Exit codes: 0 success, 1 error.")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the signed, reproducible disk image (disk.img, manifest.json, manifest.sig).
    Build(cmd::build::Args),
    /// Check manifest.sig and every file's sha256; name what differs.
    Verify(cmd::verify::Args),
    /// List inputs, files with sizes, and absent optional parts.
    Inspect(cmd::inspect::Args),
    /// Boot the image under QEMU (TCG) and print where the LMS answers.
    Run(cmd::run::Args),
    /// Write a verified image onto a disk; --keep-data replaces only the OS.
    Flash(cmd::flash::Args),
    /// Write PREFIX.key (ed25519 private key, mode 0600) and PREFIX.pub.
    Keygen(cmd::keygen::Args),
    /// Pack a module directory into a signed bundle.
    Bundle(cmd::bundle::Args),
    /// Content packs: import cmi5, SCORM, HTML5, video, PDF and native courses.
    Content(cmd::content::Args),
    /// Put a bundle into a static update repository and sign channel metadata.
    Publish(cmd::publish::Args),
    /// Resolve and verify every pinned input of an appliance definition.
    Inputs(cmd::inputs::Args),
    /// Kernel + initramfs from the definition's Debian packages.
    Initramfs(cmd::initramfs::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().cmd {
        Cmd::Build(a) => cmd::build::run(a),
        Cmd::Verify(a) => cmd::verify::run(a),
        Cmd::Inspect(a) => cmd::inspect::run(a),
        Cmd::Run(a) => cmd::run::run(a),
        Cmd::Flash(a) => cmd::flash::run(a),
        Cmd::Keygen(a) => cmd::keygen::run(a),
        Cmd::Bundle(a) => cmd::bundle::run(a),
        Cmd::Content(a) => cmd::content::run(a),
        Cmd::Publish(a) => cmd::publish::run(a),
        Cmd::Inputs(a) => cmd::inputs::run(a),
        Cmd::Initramfs(a) => cmd::initramfs::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lms-image: {e:#}");
            ExitCode::FAILURE
        }
    }
}
