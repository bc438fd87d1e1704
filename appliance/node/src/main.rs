//! `lms-node serve ...`: parses flags, sets up logging, runs the server;
//! `lms-node precompile ...` and `lms-node roster ...` (roster_cmd.rs).
//!
//! Exit codes: 0 clean shutdown; 1 runtime error; 2 bad configuration.

mod roster_cmd;

use clap::{Parser, Subcommand};
use lms_node::server::{AdminAddr, AdminListener};
use lms_node::{Config, Node};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "LMS edge node",
    after_help = "Exit codes: 0 clean shutdown, 1 runtime error, 2 bad configuration."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve learners (public listener) and operators (admin listener).
    Serve(ServeArgs),
    /// Compile and self-test a module directory into a code cache (the image
    /// build fills the data partition's cache so a first boot does not compile).
    Precompile(PrecompileArgs),
    /// The people who sign in with a browser: add, passwd, remove, list, import.
    Roster(roster_cmd::Args),
}

#[derive(clap::Args)]
struct PrecompileArgs {
    /// Settings file (the module limits and portable_module_code must match the node's).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The module directory.
    #[arg(long)]
    modules: PathBuf,
    /// The node's code cache: DATA_DIR/module-cache.
    #[arg(long)]
    cache_dir: PathBuf,
    /// Authenticate the entries with this 32-byte key (a file) and mark it as
    /// the factory's: the node replaces it with its own on first start.
    /// Without it the cache's own key is used (made when missing).
    #[arg(long)]
    cache_key: Option<PathBuf>,
}

fn read_cache_key(p: &std::path::Path) -> Result<[u8; 32], String> {
    let b = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
    <[u8; 32]>::try_from(b.as_slice()).map_err(|_| format!("{}: {} bytes, a key is 32", p.display(), b.len()))
}

/// Loads (compiles, caches, self-tests) the modules once; exit 0, 1 on a bad module, 2 on bad settings.
fn precompile(a: PrecompileArgs) -> ExitCode {
    let cfg = match a.config.as_deref().map(Config::from_file).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            eprintln!("lms-node: {e}");
            return ExitCode::from(2);
        }
    };
    let metrics = std::sync::Arc::new(lms_node::metrics::Metrics::default());
    let key = match a.cache_key.as_deref().map(read_cache_key).transpose() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("lms-node: --cache-key {e}");
            return ExitCode::from(2);
        }
    };
    let cache = match lms_node::wasm::CodeCache::open(&a.cache_dir, key) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lms-node: code cache {}: {e}", a.cache_dir.display());
            return ExitCode::FAILURE;
        }
    };
    let host = match lms_node::wasm::Host::new(cfg.module_limits(), Some(cache), metrics) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("lms-node: module engine: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match host.load(&a.modules, None) {
        Ok(set) => {
            println!(
                "compiled and self-tested bundle {} ({} modules) into {}",
                set.manifest.bundle_version,
                set.manifest.modules.len(),
                a.cache_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lms-node: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Public listener, e.g. 0.0.0.0:8080.
    #[arg(long)]
    listen: Option<String>,
    /// Database, module cache and node state.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The module directory (manifest.json, modules, static files).
    #[arg(long)]
    modules: Option<PathBuf>,
    /// The content pack directory (pack.toml, courses/, packages/).
    #[arg(long)]
    content: Option<PathBuf>,
    /// htpasswd file with bcrypt entries.
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// Admin listener: loopback IP:PORT or unix:/path.
    #[arg(long)]
    admin_listen: Option<String>,
    /// TOML settings file (keys as in Config).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Drop to this user and group (numbers, UID:GID) once the settings are
    /// read, before listening: the appliance runs lms-node as its own user.
    #[arg(long, value_parser = lms_settings::privileges::parse_run_as)]
    run_as: Option<(u32, u32)>,
}

fn settings(a: ServeArgs) -> anyhow::Result<Config> {
    let mut cfg = match &a.config {
        Some(p) => Config::from_file(p)?,
        None => Config::default(),
    };
    cfg.apply_env(|k| std::env::var(k).ok())?;
    if let Some(v) = a.listen {
        cfg.listen = v;
    }
    if let Some(v) = a.data_dir {
        cfg.data_dir = v;
    }
    if let Some(v) = a.modules {
        cfg.modules = v;
    }
    if let Some(v) = a.content {
        cfg.content = v;
    }
    if let Some(v) = a.credentials {
        cfg.credentials = Some(v);
    }
    if let Some(v) = a.admin_listen {
        cfg.admin_listen = Some(v);
    }
    cfg.validate()?;
    if let Some(a) = &cfg.admin_listen {
        a.parse::<AdminAddr>().map_err(anyhow::Error::msg)?;
    }
    Ok(cfg)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: draining requests in flight");
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    use anyhow::Context;
    let admin_addr: Option<AdminAddr> =
        cfg.admin_listen.as_deref().map(str::parse).transpose().map_err(anyhow::Error::msg)?;
    let public = tokio::net::TcpListener::bind(&cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
    let admin = match &admin_addr {
        Some(a) => Some(AdminListener::bind(a).await.with_context(|| format!("binding admin listener {a:?}"))?),
        None => None,
    };
    let content = match &cfg.content_listen {
        Some(a) => {
            Some(tokio::net::TcpListener::bind(a).await.with_context(|| format!("binding content listener {a}"))?)
        }
        None => None,
    };
    let open_files = lms_node::server::raise_open_file_limit(cfg.max_connections);
    let node = Node::new(cfg)?;
    tracing::info!(listen = %public.local_addr()?, admin = ?admin_addr, modules = %node.cfg.modules.display(), open_files, "lms-node serving");

    let reloader = node.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading modules and credentials");
            let _ = reloader.reload().await;
        }
    });
    lms_node::server::run_with_content(node, public, admin, content, shutdown_signal()).await?;
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LMS_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = match Cli::parse().cmd {
        Cmd::Serve(a) => a,
        Cmd::Precompile(a) => return precompile(a),
        Cmd::Roster(a) => return roster_cmd::run(a),
    };
    let run_as = args.run_as;
    let cfg = match settings(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lms-node: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Some((uid, gid)) = run_as {
        // Before the runtime starts its threads.
        if let Err(e) = lms_settings::privileges::drop_to(uid, gid) {
            eprintln!("lms-node: --run-as {uid}:{gid}: {e}");
            return ExitCode::from(2);
        }
        tracing::info!(uid, gid, "running as the service's own user");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(serve(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lms-node: {e:#}");
            ExitCode::FAILURE
        }
    }
}
