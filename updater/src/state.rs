//! The updater's journal (`state.json` in modules_dir), written atomically
//! before and after every transition, and the on-disk layout of slots.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Installed {
    pub version: String,
    /// sha256 of the bundle file it came from.
    pub sha256: String,
    /// Directory name under `slots/`.
    pub slot: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Trial {
    pub candidate: Installed,
    pub from: Option<Installed>,
    pub started: String,
    /// Why the candidate failed, written before it is marked bad (a kind
    /// that reboots reads it back on the old system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rejected {
    pub version: String,
    pub sha256: String,
    pub reason: String,
    pub at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub current: Option<Installed>,
    pub previous: Option<Installed>,
    /// Set before `current` is switched to a candidate; cleared when the
    /// health gate decides. Found set at start: the updater died mid-trial.
    pub trial: Option<Trial>,
    /// The version floor: never install at or below it (except `rollback`).
    pub highest_committed: Option<String>,
    pub rejected: Vec<Rejected>,
    /// Newest channel metadata version seen: older ones are replays.
    pub last_metadata_version: u64,
    /// The latest clock reading that looked right; a clock behind it is not trusted.
    pub last_trusted_time: Option<String>,
    pub last_error: Option<String>,
    pub last_check: Option<String>,
    /// A candidate whose trial was cut short (the updater or the node
    /// stopped: a power cut), and how many times in a row: it is tried
    /// again until [`INTERRUPTED_TRIALS_MAX`], then rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interrupted>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Interrupted {
    pub version: String,
    pub sha256: String,
    pub times: u32,
}

/// Trials of one candidate cut short in a row before it is rejected (a
/// power cut is not the candidate's fault; a candidate that keeps stopping
/// the node is).
pub const INTERRUPTED_TRIALS_MAX: u32 = 3;

/// Longest error text kept in state.json.
pub const TEXT_MAX: usize = 2048;

/// Paths under modules_dir.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn slots(&self) -> PathBuf {
        self.root.join("slots")
    }
    pub fn slot(&self, name: &str) -> PathBuf {
        self.slots().join(name)
    }
    pub fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }
    pub fn current(&self) -> PathBuf {
        self.root.join("current")
    }
    pub fn previous(&self) -> PathBuf {
        self.root.join("previous")
    }
    pub fn state_file(&self) -> PathBuf {
        self.root.join("state.json")
    }
    pub fn metrics_file(&self) -> PathBuf {
        self.root.join("updater.prom")
    }

    pub fn load(&self) -> Result<State, String> {
        let p = self.state_file();
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(format!("{}: {e}", p.display())),
        }
    }

    /// Writes `s`, with every error text capped at `TEXT_MAX` bytes.
    pub fn save(&self, s: &State) -> Result<(), String> {
        let mut s = s.clone();
        let cap = |t: &mut String| *t = lms_bundle::cap_text(t, TEXT_MAX);
        s.last_error.iter_mut().for_each(cap);
        s.rejected.iter_mut().for_each(|r| cap(&mut r.reason));
        write_atomic(&self.state_file(), &serde_json::to_vec_pretty(&s).expect("json"))
    }

    /// Points `link` at `slots/<slot>` (or removes it) in one rename, then
    /// makes the directory entry durable.
    pub fn set_link(&self, link: &Path, slot: Option<&str>) -> Result<(), String> {
        let err = |e: std::io::Error| format!("{}: {e}", link.display());
        match slot {
            Some(name) => {
                let tmp = link.with_extension("tmp");
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(Path::new("slots").join(name), &tmp).map_err(err)?;
                std::fs::rename(&tmp, link).map_err(err)?;
            }
            None => match std::fs::remove_file(link) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(err(e)),
            },
        }
        sync_dir(&self.root)
    }

    /// The slot a link points at, if it is a link into `slots/`.
    pub fn link_target(&self, link: &Path) -> Option<String> {
        let t = std::fs::read_link(link).ok()?;
        let rest = t.strip_prefix("slots").ok()?;
        rest.to_str().map(str::to_string)
    }
}

pub fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Temp file in the same directory, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let dir = path.parent().ok_or_else(|| format!("{}: no parent directory", path.display()))?;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10, case 4: an error echoing attacker bytes made state.json
    /// 1.5 GB (and every later `status` took 38 s).
    #[test]
    fn stored_error_texts_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout { root: dir.path().to_path_buf() };
        let s = State {
            last_error: Some("x".repeat(1 << 20)),
            rejected: vec![Rejected {
                version: "1.0.0".into(),
                sha256: "0".repeat(64),
                reason: "y".repeat(1 << 20),
                at: "t".into(),
            }],
            ..State::default()
        };
        l.save(&s).unwrap();
        assert!(std::fs::metadata(l.state_file()).unwrap().len() < 3 * TEXT_MAX as u64);
        let back = l.load().unwrap();
        assert!(back.last_error.unwrap().len() < TEXT_MAX + 64);
    }
}
