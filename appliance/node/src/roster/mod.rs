//! The roster: the people who use a node in a browser (issue 11) — learners,
//! coaches and admins — with their classes and password hashes, in SQLite
//! on the data partition (setting `roster`, default `{data_dir}/roster.db`).
//!
//! `lms-node roster ...` changes it; a running node reads it at every
//! sign-in, so changes take effect without a restart. Every value is
//! checked here, once, whoever writes it (the CLI, the CSV import, later the
//! admin pages); a bad value names its field.

pub mod classes;
pub mod import;
pub mod sessions;

pub use sessions::Session;

use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// bcrypt cost of roster passwords: ~70 ms here, so a class of 40 signing
/// in at once is answered within 2 s on two bcrypt slots.
pub const BCRYPT_COST: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Learner,
    Coach,
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "learner" => Ok(Role::Learner),
            "coach" => Ok(Role::Coach),
            "admin" => Ok(Role::Admin),
            other => Err(format!("{other:?} is not a role (learner, coach, admin)")),
        }
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Learner => "learner",
            Role::Coach => "coach",
            Role::Admin => "admin",
        }
    }
}

/// One person, as listed (never with the password hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub classes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("no person with id {0:?}")]
    NotFound(String),
    #[error("a person with id {0:?} already exists")]
    Exists(String),
    #[error("roster {path}: {message}")]
    Db { path: PathBuf, message: String },
}

fn invalid(field: &'static str, message: impl Into<String>) -> RosterError {
    RosterError::Invalid { field, message: message.into() }
}

/// The id doubles as the learner's xAPI `account.name` and appears in URLs.
pub fn check_id(id: &str) -> Result<(), RosterError> {
    let ok = (1..=128).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if ok { Ok(()) } else { Err(invalid("id", format!("{id:?}: 1-128 characters of A-Z a-z 0-9 . _ @ -"))) }
}

pub fn check_name(name: &str) -> Result<(), RosterError> {
    let n = name.chars().count();
    if n == 0 || n > 200 || name.trim() != name || name.chars().any(char::is_control) {
        return Err(invalid("name", format!("{name:?}: 1-200 characters, no control characters or outer spaces")));
    }
    Ok(())
}

/// Class names may be Chinese ("三年级一班"): letters and digits of any
/// script, space, `.`, `_`, `-`; no `;` (the CSV separator).
pub fn check_class(class: &str) -> Result<(), RosterError> {
    let n = class.chars().count();
    let ok = (1..=64).contains(&n)
        && class.trim() == class
        && class.chars().all(|c| c.is_alphanumeric() || " ._-".contains(c));
    if ok { Ok(()) } else { Err(invalid("classes", format!("{class:?}: 1-64 letters, digits, spaces, . _ -"))) }
}

pub fn check_password(pw: &str) -> Result<(), RosterError> {
    let n = pw.chars().count();
    if !(8..=72).contains(&pw.len()) || n == 0 {
        return Err(invalid("password", "8 to 72 bytes (bcrypt reads no further)"));
    }
    Ok(())
}

pub fn hash_password(pw: &str) -> Result<String, RosterError> {
    check_password(pw)?;
    bcrypt::hash(pw, BCRYPT_COST).map_err(|e| invalid("password", e.to_string()))
}

/// A checked person with a hashed password, ready to store.
pub struct NewPerson {
    pub person: Person,
    pub hash: String,
}

impl std::fmt::Debug for NewPerson {
    /// Never the hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewPerson").field("person", &self.person).finish_non_exhaustive()
    }
}

impl NewPerson {
    pub fn new(id: &str, name: &str, role: Role, classes: &[String], password: &str) -> Result<NewPerson, RosterError> {
        check_id(id)?;
        check_name(name)?;
        let mut cs: Vec<String> = Vec::new();
        for c in classes {
            check_class(c)?;
            if !cs.contains(c) {
                cs.push(c.clone());
            }
        }
        let hash = hash_password(password)?;
        Ok(NewPerson { person: Person { id: id.into(), name: name.into(), role, classes: cs }, hash })
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS people (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    role     TEXT NOT NULL CHECK (role IN ('learner', 'coach', 'admin')),
    password TEXT NOT NULL,
    language TEXT,
    changed  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS memberships (
    person TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    class  TEXT NOT NULL,
    PRIMARY KEY (person, class)
);
CREATE INDEX IF NOT EXISTS memberships_class ON memberships(class);
";

pub struct Roster {
    path: PathBuf,
    conn: Connection,
}

/// What storing one person did.
#[derive(Debug, PartialEq, Eq)]
enum Put {
    Added,
    Replaced,
    /// The id exists and replacing was not asked for.
    Refused,
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> RosterError + Copy + '_ {
    move |e| RosterError::Db { path: path.to_path_buf(), message: e.to_string() }
}

impl Roster {
    /// Opens (creating if needed) the roster at `path`.
    pub fn open(path: &Path) -> Result<Roster, RosterError> {
        let db = db_err(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| RosterError::Db { path: path.to_path_buf(), message: e.to_string() })?;
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )
        .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        conn.execute_batch(sessions::SCHEMA).map_err(db)?;
        Ok(Roster { path: path.to_path_buf(), conn })
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> RosterError + '_ {
        db_err(&self.path)
    }

    /// Adds `p`; an existing id is refused unless `replace`.
    fn put(tx: &rusqlite::Transaction, p: &NewPerson, replace: bool) -> rusqlite::Result<Put> {
        let now = crate::xapi::format_stored(time::OffsetDateTime::now_utc());
        let existed: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM people WHERE id = ?1)", [&p.person.id], |r| r.get(0))?;
        if existed && !replace {
            return Ok(Put::Refused);
        }
        tx.execute(
            "INSERT INTO people (id, name, role, password, changed) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET name = ?2, role = ?3, password = ?4, changed = ?5",
            params![p.person.id, p.person.name, p.person.role.as_str(), p.hash, now],
        )?;
        tx.execute("DELETE FROM memberships WHERE person = ?1", [&p.person.id])?;
        for c in &p.person.classes {
            tx.execute("INSERT INTO memberships (person, class) VALUES (?1, ?2)", [&p.person.id, c])?;
        }
        Ok(if existed { Put::Replaced } else { Put::Added })
    }

    pub fn add(&mut self, p: &NewPerson) -> Result<(), RosterError> {
        let db = db_err(&self.path);
        let tx = self.conn.transaction().map_err(db)?;
        if Self::put(&tx, p, false).map_err(db)? == Put::Refused {
            return Err(RosterError::Exists(p.person.id.clone()));
        }
        tx.commit().map_err(db)
    }

    /// Adds or replaces every person, in one transaction: all or nothing.
    /// Returns (added, replaced).
    pub fn import(&mut self, people: &[NewPerson]) -> Result<(usize, usize), RosterError> {
        let db = db_err(&self.path);
        let tx = self.conn.transaction().map_err(db)?;
        let mut added = 0;
        for p in people {
            added += usize::from(Self::put(&tx, p, true).map_err(db)? == Put::Added);
        }
        tx.commit().map_err(db)?;
        Ok((added, people.len() - added))
    }

    pub fn passwd(&self, id: &str, password: &str) -> Result<(), RosterError> {
        check_id(id)?;
        let hash = hash_password(password)?;
        let now = crate::xapi::format_stored(time::OffsetDateTime::now_utc());
        let n = self
            .conn
            .execute("UPDATE people SET password = ?2, changed = ?3 WHERE id = ?1", params![id, hash, now])
            .map_err(self.db())?;
        if n == 0 { Err(RosterError::NotFound(id.into())) } else { Ok(()) }
    }

    pub fn remove(&self, id: &str) -> Result<(), RosterError> {
        check_id(id)?;
        let n = self.conn.execute("DELETE FROM people WHERE id = ?1", [id]).map_err(self.db())?;
        if n == 0 { Err(RosterError::NotFound(id.into())) } else { Ok(()) }
    }

    pub fn list(&self) -> Result<Vec<Person>, RosterError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.id, p.name, p.role, group_concat(m.class, char(10))
                 FROM people p LEFT JOIN memberships m ON m.person = p.id GROUP BY p.id ORDER BY p.id",
            )
            .map_err(self.db())?;
        let rows = stmt
            .query_map([], |r| {
                let role: String = r.get(2)?;
                let classes: Option<String> = r.get(3)?;
                let mut classes: Vec<String> =
                    classes.map(|c| c.split('\n').map(str::to_string).collect()).unwrap_or_default();
                classes.sort();
                Ok(Person { id: r.get(0)?, name: r.get(1)?, role: role.parse().unwrap_or(Role::Learner), classes })
            })
            .map_err(self.db())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.db())
    }

    /// The person `id` and their password hash (for sign-in).
    pub fn credentials(&self, id: &str) -> Result<Option<(Person, String)>, RosterError> {
        let row = self
            .conn
            .query_row("SELECT name, role, password FROM people WHERE id = ?1", [id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })
            .optional()
            .map_err(self.db())?;
        let Some((name, role, hash)) = row else { return Ok(None) };
        let role = role.parse().map_err(|m| invalid("role", m))?;
        Ok(Some((Person { id: id.into(), name, role, classes: self.classes_of(id)? }, hash)))
    }

    /// The classes `id` belongs to, in order.
    pub fn classes_of(&self, id: &str) -> Result<Vec<String>, RosterError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT class FROM memberships WHERE person = ?1 ORDER BY class")
            .map_err(self.db())?;
        let classes = stmt.query_map([id], |r| r.get(0)).map_err(self.db())?;
        classes.collect::<Result<Vec<String>, _>>().map_err(self.db())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_by_field() {
        assert!(check_id("amina.k@school-1").is_ok());
        assert!(check_id("a/b").unwrap_err().to_string().starts_with("id:"));
        assert!(check_name("王小明").is_ok());
        assert!(check_name(" x").is_err() && check_name("a\nb").is_err() && check_name("").is_err());
        assert!(check_class("三年级一班").is_ok() && check_class("7B").is_ok());
        assert!(check_class("a;b").unwrap_err().to_string().starts_with("classes:"));
        assert!(check_password("short").unwrap_err().to_string().starts_with("password:"));
        assert!("teacher".parse::<Role>().is_err());
    }

    #[test]
    fn add_list_passwd_remove() {
        let d = tempfile::tempdir().unwrap();
        let mut r = Roster::open(&d.path().join("roster.db")).unwrap();
        let p = NewPerson::new("amina", "Amina K", Role::Learner, &["7B".into(), "7B".into()], "learner-pass").unwrap();
        r.add(&p).unwrap();
        assert!(matches!(r.add(&p), Err(RosterError::Exists(_))));
        let listed = r.list().unwrap();
        assert_eq!(
            listed,
            [Person { id: "amina".into(), name: "Amina K".into(), role: Role::Learner, classes: vec!["7B".into()] }]
        );
        let (_, hash) = r.credentials("amina").unwrap().unwrap();
        assert!(bcrypt::verify("learner-pass", &hash).unwrap());
        r.passwd("amina", "another-pass").unwrap();
        let (_, hash) = r.credentials("amina").unwrap().unwrap();
        assert!(bcrypt::verify("another-pass", &hash).unwrap());
        assert!(matches!(r.passwd("nobody", "another-pass"), Err(RosterError::NotFound(_))));
        r.remove("amina").unwrap();
        assert!(r.list().unwrap().is_empty());
        assert!(matches!(r.remove("amina"), Err(RosterError::NotFound(_))));
    }
}
