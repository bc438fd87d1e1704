//! `lms-node roster add|passwd|remove|list|import`: the roster from the
//! command line, reading the same settings as `serve` (`--config`,
//! `--data-dir`). Passwords come only from stdin, never from arguments
//! (which other users of the node can read in /proc).
//!
//! Exit codes: 0 done; 1 refused (bad value, unknown or duplicate id, bad
//! CSV line), nothing changed; 2 bad settings.

use lms_node::Config;
use lms_node::roster::{NewPerson, Role, Roster, import};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// TOML settings file (as for `serve`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (as for `serve`); the roster defaults to DATA_DIR/roster.db.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Drop to the node's user first (UID:GID; on the appliance 1001:1001),
    /// so files the roster creates stay the node's.
    #[arg(long, value_parser = lms_settings::privileges::parse_run_as)]
    run_as: Option<(u32, u32)>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Add a person (the password is the first line of stdin).
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: Role,
        /// A class the person belongs to (repeat for several).
        #[arg(long = "class")]
        classes: Vec<String>,
        /// Read the password from stdin (required).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a person's password (the first line of stdin).
    Passwd {
        #[arg(long)]
        id: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a person (their learning records stay).
    Remove {
        #[arg(long)]
        id: String,
    },
    /// Everyone, without password hashes.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add or replace everyone in a CSV file (header id,name,role,classes,password).
    Import { file: PathBuf },
}

fn password(flag: bool) -> Result<String, String> {
    if !flag {
        return Err("--password-stdin is required: passwords are read from stdin, never from arguments".into());
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("reading the password from stdin: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn run(a: Args) -> ExitCode {
    let mut cfg = match a.config.as_deref().map(Config::from_file).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            eprintln!("lms-node roster: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(d) = a.data_dir {
        cfg.data_dir = d;
    }
    if let Some((uid, gid)) = a.run_as
        && let Err(e) = lms_settings::privileges::drop_to(uid, gid)
    {
        eprintln!("lms-node roster: --run-as {uid}:{gid}: {e}");
        return ExitCode::from(2);
    }
    let path = cfg.roster_path();
    let result = Roster::open(&path).map_err(|e| e.to_string()).and_then(|mut r| match a.cmd {
        Cmd::Add { id, name, role, classes, password_stdin } => {
            let p =
                NewPerson::new(&id, &name, role, &classes, &password(password_stdin)?).map_err(|e| e.to_string())?;
            r.add(&p).map_err(|e| e.to_string())?;
            Ok(format!("added {id} ({})", role.as_str()))
        }
        Cmd::Passwd { id, password_stdin } => {
            r.passwd(&id, &password(password_stdin)?).map_err(|e| e.to_string())?;
            Ok(format!("password of {id} changed"))
        }
        Cmd::Remove { id } => {
            r.remove(&id).map_err(|e| e.to_string())?;
            Ok(format!("removed {id}"))
        }
        Cmd::List { json } => {
            let people = r.list().map_err(|e| e.to_string())?;
            if json {
                return Ok(serde_json::to_string_pretty(&people).expect("json"));
            }
            let mut out = String::new();
            for p in &people {
                out.push_str(&format!("{}\t{}\t{}\t{}\n", p.id, p.role.as_str(), p.name, p.classes.join(";")));
            }
            out.push_str(&format!("{} people in {}", people.len(), path.display()));
            Ok(out)
        }
        Cmd::Import { file } => {
            let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let people = import::parse(&file.display().to_string(), &bytes).map_err(|e| e.to_string())?;
            let (added, replaced) = r.import(&people).map_err(|e| e.to_string())?;
            Ok(format!("imported {}: {added} added, {replaced} replaced", file.display()))
        }
    });
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lms-node roster: {e}");
            ExitCode::FAILURE
        }
    }
}
