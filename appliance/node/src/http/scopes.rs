//! What each client credential may do, in xAPI's scope names (xAPI 1.0.3
//! §6.4.2 / 2.0 "Authorization Scope"): `statements/write`,
//! `statements/read/mine`, `statements/read`, `state`, `profile`, `define`,
//! `all/read`, `all`. They come from a TOML file beside the htpasswd file
//! (`credential_scopes`, default `scopes.toml` in the same directory):
//!
//! ```toml
//! kiosk = ["all"]
//! edge-001 = ["statements/write", "statements/read/mine"]
//! ```
//!
//! A credential the file does not name gets xAPI's default,
//! `statements/write` + `statements/read/mine`: it may report, and read back
//! only what it reported. So an edge's credential stolen on a hub exposes
//! that edge's records, not every city's (issue 10, case 10).

use std::collections::HashMap;
use std::path::Path;

/// A set of scopes (bit flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes(u16);

const NAMES: [(&str, u16); 8] = [
    ("statements/write", 1),
    ("statements/read/mine", 1 << 1),
    ("statements/read", 1 << 2),
    ("state", 1 << 3),
    ("profile", 1 << 4),
    ("define", 1 << 5),
    ("all/read", 1 << 6),
    ("all", 1 << 7),
];

fn bit(name: &str) -> u16 {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b).expect("known scope name")
}

impl Scopes {
    /// xAPI's default for a credential nobody scoped.
    pub fn default_scopes() -> Scopes {
        Scopes(bit("statements/write") | bit("statements/read/mine"))
    }

    pub fn all() -> Scopes {
        Scopes(bit("all"))
    }

    /// What a browser session has as a client: nothing (a person's rights
    /// come from their role, checked per route).
    pub fn none() -> Scopes {
        Scopes(0)
    }

    fn has(self, names: &[&str]) -> bool {
        names.iter().any(|n| self.0 & bit(n) != 0)
    }

    pub fn writes_statements(self) -> bool {
        self.has(&["statements/write", "all"])
    }

    /// Reads every statement (not only its own).
    pub fn reads_all_statements(self) -> bool {
        self.has(&["statements/read", "all/read", "all"])
    }

    /// Reads at least the statements it stored itself.
    pub fn reads_own_statements(self) -> bool {
        self.reads_all_statements() || self.has(&["statements/read/mine"])
    }

    /// Reads and writes State documents.
    pub fn has_state(self) -> bool {
        self.has(&["state", "all"])
    }

    /// Reads and writes Activity and Agent Profile documents.
    pub fn has_profile(self) -> bool {
        self.has(&["profile", "all"])
    }

    /// Voids statements another credential stored.
    pub fn voids_any(self) -> bool {
        self.has(&["all"])
    }

    /// Reads the node's own operational details (readiness details, sync status).
    pub fn reads_operations(self) -> bool {
        self.has(&["all/read", "all"])
    }

    pub fn names(self) -> Vec<&'static str> {
        NAMES.iter().filter(|(_, b)| self.0 & b != 0).map(|(n, _)| *n).collect()
    }
}

/// Scopes by credential name, from the file's text; every error names the
/// file and the line.
pub fn parse(path: &Path, text: &str) -> Result<HashMap<String, Scopes>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        match line {
            Some(l) => format!("scopes file {} line {l}: {}", path.display(), e.message()),
            None => format!("scopes file {}: {}", path.display(), e.message()),
        }
    })?;
    let line_of = |key: &str| {
        text.lines()
            .position(|l| {
                let l = l.trim_start();
                l.strip_prefix(key).or_else(|| l.strip_prefix(&format!("\"{key}\""))).is_some_and(|r| {
                    let r = r.trim_start();
                    r.starts_with('=')
                })
            })
            .map(|i| i + 1)
    };
    let mut out = HashMap::new();
    for (user, value) in table {
        let at = match line_of(&user) {
            Some(l) => format!("scopes file {} line {l}: credential {user:?}", path.display()),
            None => format!("scopes file {}: credential {user:?}", path.display()),
        };
        let list = value.as_array().ok_or_else(|| format!("{at}: expected a list of scope names"))?;
        if list.is_empty() {
            return Err(format!("{at}: an empty list (remove the credential from the htpasswd file instead)"));
        }
        let mut s = 0u16;
        for v in list {
            let name = v.as_str().ok_or_else(|| format!("{at}: scope {v} is not a string"))?;
            let b = NAMES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b).ok_or_else(|| {
                let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
                format!("{at}: unknown scope {name:?} (known: {})", known.join(", "))
            })?;
            s |= b;
        }
        out.insert(user, Scopes(s));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_names_and_what_they_allow() {
        let p = Path::new("scopes.toml");
        let m = parse(p, "# c\nkiosk = [\"all\"]\nedge = [\"statements/write\"]\nops = [\"all/read\"]\n").unwrap();
        let (kiosk, edge, ops) = (m["kiosk"], m["edge"], m["ops"]);
        assert!(kiosk.writes_statements() && kiosk.reads_all_statements() && kiosk.voids_any());
        assert!(edge.writes_statements() && !edge.reads_own_statements() && !edge.voids_any());
        assert!(!ops.writes_statements() && ops.reads_all_statements() && ops.reads_operations());
        let d = Scopes::default_scopes();
        assert!(d.writes_statements() && d.reads_own_statements() && !d.reads_all_statements());
        assert_eq!(d.names(), ["statements/write", "statements/read/mine"]);
    }

    #[test]
    fn bad_files_name_the_line() {
        let p = Path::new("scopes.toml");
        let e = parse(p, "a = [\"all\"]\nb = [\"statements/delete\"]\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("\"b\"") && e.contains("statements/delete"), "{e}");
        let e = parse(p, "a = [\"all\"]\nb = \n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let e = parse(p, "a = \"all\"\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("list"), "{e}");
        assert!(parse(p, "a = []\n").unwrap_err().contains("empty"));
    }
}
