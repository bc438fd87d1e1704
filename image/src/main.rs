//! `lms-image`: keygen, bundle, publish, and resolving an appliance
//! definition's pinned inputs (the image build itself is issue 4).
//!
//! Exit codes: 0 success; 1 error (the message names the file, key or value).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod cmd;
mod definition;
mod initramfs;
mod inputs;

#[derive(Parser)]
#[command(version, about = "LMS appliance release tool", after_help = "Exit codes: 0 success, 1 error.")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write PREFIX.key (ed25519 private key, mode 0600) and PREFIX.pub.
    Keygen(cmd::keygen::Args),
    /// Pack a module directory into a signed bundle.
    Bundle(cmd::bundle::Args),
    /// Put a bundle into a static update repository and sign channel metadata.
    Publish(cmd::publish::Args),
    /// Resolve and verify every pinned input of an appliance definition.
    Inputs(cmd::inputs::Args),
    /// Kernel + initramfs from the definition's Debian packages.
    Initramfs(cmd::initramfs::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().cmd {
        Cmd::Keygen(a) => cmd::keygen::run(a),
        Cmd::Bundle(a) => cmd::bundle::run(a),
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
