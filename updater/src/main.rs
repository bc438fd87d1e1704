//! `lms-updater --config FILE [--pin-keys DIR] [--run-as UID:GID] [--kind modules|content|system] <daemon | check | install SRC | status | rollback> [--json]`
//!
//! Exit codes: 0 up to date, updated and healthy, or a new system ready to
//! try after the reboot; 2 an update failed its health checks and was rolled
//! back; 1 error, nothing changed.

use clap::{Parser, Subcommand};
use lms_updater::{Outcome, Updater, config::Config};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    version,
    about = "Keeps this node's LMS modules current, verified and healthy",
    after_help = "Exit codes: 0 up to date or updated and healthy; 2 update failed its health checks and was rolled back; 1 error, nothing changed."
)]
struct Cli {
    #[arg(long)]
    config: PathBuf,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    /// Trust only keys inside this directory (the appliance's read-only
    /// /system/etc/lms/keys): a `trusted_keys` entry elsewhere, such as on
    /// the writable data partition, is refused (exit 1).
    #[arg(long, global = true)]
    pin_keys: Option<PathBuf>,
    /// Drop to this user and group (numbers, UID:GID) once the settings are
    /// read: the appliance runs lms-updater as its own user.
    #[arg(long, global = true, value_parser = lms_settings::privileges::parse_run_as)]
    run_as: Option<(u32, u32)>,
    /// Which payload `check`, `status` and `rollback` act on (`install`
    /// tells content and system bundles by their contents; `daemon` runs
    /// every kind the settings enable).
    #[arg(long, global = true, value_enum, default_value_t = Kind::Modules)]
    kind: Kind,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Kind {
    Modules,
    Content,
    System,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check and install in a loop (poll_interval plus jitter; backoff on errors).
    Daemon,
    /// One cycle: fetch channel metadata, install if newer, health-gate it.
    Check,
    /// Install one bundle file (modules or content) or http:// URL through the same checks.
    Install { src: String },
    /// Current and previous versions, state, rejected versions, last error.
    Status,
    /// Return to the retained previous version by hand.
    Rollback,
}

fn report(json: bool, r: &Result<Outcome, lms_updater::UpdateError>) -> ExitCode {
    let (code, value) = match r {
        Ok(Outcome::UpToDate { version, note }) => {
            (0, serde_json::json!({"result": "up_to_date", "version": version, "note": note}))
        }
        Ok(Outcome::Installed { version }) => (0, serde_json::json!({"result": "installed", "version": version})),
        Ok(Outcome::RolledBack { version, reason }) => {
            (2, serde_json::json!({"result": "rolled_back", "version": version, "reason": reason}))
        }
        Ok(Outcome::Rebooting { version, reboot }) => {
            (0, serde_json::json!({"result": "rebooting", "version": version, "reboot": reboot}))
        }
        Err(e) => (1, serde_json::json!({"result": "error", "error": e.to_string()})),
    };
    if json {
        println!("{value}");
    } else {
        match r {
            Ok(Outcome::UpToDate { version, note }) => {
                println!("up to date ({}): {note}", version.as_deref().unwrap_or("nothing installed"))
            }
            Ok(Outcome::Installed { version }) => println!("installed {version}: healthy and committed"),
            Ok(Outcome::RolledBack { version, reason }) => println!("rolled back from {version}: {reason}"),
            Ok(Outcome::Rebooting { version, reboot }) => {
                println!("system {version} is ready to try on the next boot: {reboot}")
            }
            Err(e) => eprintln!("lms-updater: {}", lms_bundle::cap_text(&e.to_string(), 4096)),
        }
    }
    ExitCode::from(code)
}

fn jitter(max: Duration) -> Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    max.mul_f64((nanos % 1000) as f64 / 1000.0)
}

/// Check and install in a loop: poll_interval plus jitter, backing off
/// (15 s doubling, at most poll_interval) while checks fail.
fn run_forever(updater: &Updater, poll: Duration, json: bool) -> ! {
    let mut failures = 0u32;
    loop {
        let r = updater.check();
        report(json, &r);
        let wait = if r.is_err() {
            failures += 1;
            (Duration::from_secs(15) * 2u32.pow(failures.min(6))).min(poll)
        } else {
            failures = 0;
            poll
        };
        std::thread::sleep(wait + jitter(wait / 10));
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LMS_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let cfg = match Config::load(&cli.config).and_then(|c| match &cli.pin_keys {
        Some(dir) => c.pinned_to(dir),
        None => Ok(c),
    }) {
        Ok(c) => c,
        Err(e) => {
            // Bad settings exit 1 (2 is taken: "rolled back"); the message names the key.
            eprintln!("lms-updater: {}", lms_bundle::cap_text(&format!("{e:#}"), 4096));
            return ExitCode::from(1);
        }
    };
    if let Some((uid, gid)) = cli.run_as
        && let Err(e) = lms_settings::privileges::drop_to(uid, gid)
    {
        eprintln!("lms-updater: --run-as {uid}:{gid}: {e}");
        return ExitCode::from(1);
    }
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("lms-updater: {}", lms_bundle::cap_text(&e.to_string(), 4096));
        ExitCode::from(1)
    };
    let modules = match Updater::from_config(&cfg) {
        Ok(u) => u,
        Err(e) => return fail(&format!("{e:#}")),
    };
    let content = match Updater::content_from_config(&cfg) {
        Ok(c) => c,
        Err(e) => return fail(&format!("{e:#}")),
    };
    // A node whose disk has no A/B slots (flashed before them) still updates
    // its modules and content; only a system command fails, naming why.
    let (system, system_error) = match Updater::system_from_config(&cfg) {
        Ok(s) => (s, None),
        Err(e) => (None, Some(format!("system updates: {e:#}"))),
    };
    if let Some(e) = &system_error {
        tracing::warn!("{e}");
    }
    let file = |src: &str, test: fn(&std::path::Path) -> bool| {
        std::path::Path::new(src).is_file() && test(std::path::Path::new(src))
    };
    let chosen = match &cli.cmd {
        Cmd::Install { src } if file(src, lms_bundle::content::is_content_bundle) => Kind::Content,
        Cmd::Install { src } if file(src, lms_bundle::system::is_system_bundle) => Kind::System,
        Cmd::Install { .. } => Kind::Modules,
        _ => cli.kind,
    };
    let updater = match (chosen, &content, &system) {
        (Kind::Modules, _, _) => &modules,
        (Kind::Content, Some(c), _) => c,
        (Kind::Content, None, _) => return fail(&"content updates need content_dir in the [updater] settings"),
        (Kind::System, _, Some(s)) => s,
        (Kind::System, _, None) => {
            return fail(
                &system_error.as_deref().unwrap_or("system updates need system_dir in the [updater] settings"),
            );
        }
    };
    match cli.cmd {
        Cmd::Check => report(cli.json, &updater.check()),
        Cmd::Install { src } => {
            let path =
                match lms_updater::repo::local_or_download(&src, &updater.layout.cache(), Duration::from_secs(60)) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("lms-updater: {}", lms_bundle::cap_text(&e.to_string(), 4096));
                        return ExitCode::from(1);
                    }
                };
            report(cli.json, &updater.install(&path))
        }
        Cmd::Rollback => report(cli.json, &updater.rollback()),
        Cmd::Status => match updater.recover().and_then(|_| updater.status_json()) {
            Ok(mut v) => {
                // Plain `status` shows content and the system too, when this
                // node updates them.
                if cli.kind == Kind::Modules {
                    for (key, other) in [("content", &content), ("system", &system)] {
                        if let Some(o) = other {
                            v[key] = o
                                .recover()
                                .and_then(|_| o.status_json())
                                .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
                        }
                    }
                }
                if cli.json {
                    println!("{v}");
                } else {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("lms-updater: {}", lms_bundle::cap_text(&e.to_string(), 4096));
                ExitCode::from(1)
            }
        },
        Cmd::Daemon => {
            // Each kind in its own loop: a long content download never
            // holds up a module fix, nor the other way round.
            let poll = cfg.poll_interval;
            let json = cli.json;
            for other in [content, system].into_iter().flatten() {
                std::thread::spawn(move || run_forever(&other, poll, json));
            }
            run_forever(&modules, poll, json)
        }
    }
}
