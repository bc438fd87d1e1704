//! Browser sessions, in the roster database so they survive a restart. The
//! cookie carries a random 256-bit token; the database keeps only its
//! SHA-256, so a copy of the database signs nobody in. Each session has its
//! own CSRF token for the forms it posts.

use super::{Person, Roster, RosterError};
use base64::Engine as _;
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY,
    person       TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    csrf         TEXT NOT NULL,
    created      INTEGER NOT NULL,
    expires      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires);
";

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub person: Person,
    pub csrf: String,
    pub expires: i64,
    /// The page language the person chose (`zh-CN`, `en`), if they did.
    pub language: Option<String>,
}

pub fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("the OS random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Roster {
    /// Starts a session for `id` lasting `ttl`; returns its cookie token.
    pub fn start_session(&self, id: &str, ttl: std::time::Duration) -> Result<String, RosterError> {
        let token = random_token(32);
        let t = now();
        self.conn
            .execute(
                "INSERT INTO sessions (token_sha256, person, csrf, created, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![digest(&token), id, random_token(18), t, t + ttl.as_secs() as i64],
            )
            .map_err(self.db())?;
        // Expired sessions go when new ones come (cheap: indexed).
        self.conn.execute("DELETE FROM sessions WHERE expires <= ?1", [t]).map_err(self.db())?;
        Ok(token)
    }

    /// The live session of a cookie token; None when unknown, tampered with
    /// or expired (the person removed from the roster ends it too).
    pub fn session(&self, token: &str) -> Result<Option<Session>, RosterError> {
        if token.is_empty() || token.len() > 100 {
            return Ok(None);
        }
        let row = self
            .conn
            .prepare_cached(
                "SELECT s.person, s.csrf, s.expires, p.language FROM sessions s JOIN people p ON p.id = s.person
                 WHERE s.token_sha256 = ?1 AND s.expires > ?2",
            )
            .map_err(self.db())?
            .query_row(params![digest(token), now()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get(3)?))
            })
            .optional()
            .map_err(self.db())?;
        let Some((id, csrf, expires, language)) = row else { return Ok(None) };
        Ok(self.credentials(&id)?.map(|(person, _)| Session { person, csrf, expires, language }))
    }

    /// Saves the page language `id` chose.
    pub fn set_language(&self, id: &str, language: &str) -> Result<(), RosterError> {
        let n = self
            .conn
            .execute("UPDATE people SET language = ?2 WHERE id = ?1", params![id, language])
            .map_err(self.db())?;
        if n == 0 { Err(RosterError::NotFound(id.into())) } else { Ok(()) }
    }

    pub fn end_session(&self, token: &str) -> Result<(), RosterError> {
        self.conn.execute("DELETE FROM sessions WHERE token_sha256 = ?1", [digest(token)]).map_err(self.db())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{NewPerson, Role};
    use super::*;

    #[test]
    fn sessions_live_until_they_expire_or_end() {
        let d = tempfile::tempdir().unwrap();
        let mut r = Roster::open(&d.path().join("roster.db")).unwrap();
        r.add(&NewPerson::new("amina", "Amina", Role::Learner, &["7B".into()], "learner-pass").unwrap()).unwrap();
        let token = r.start_session("amina", std::time::Duration::from_secs(60)).unwrap();
        let s = r.session(&token).unwrap().unwrap();
        assert_eq!(s.person.id, "amina");
        assert!(s.csrf.len() >= 20);
        // Tampered or unknown tokens sign nobody in; the database holds no token.
        let mut tampered = token.clone();
        tampered.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
        assert!(r.session(&tampered).unwrap().is_none());
        let stored: String = r.conn.query_row("SELECT token_sha256 FROM sessions", [], |x| x.get(0)).unwrap();
        assert_ne!(stored, token);
        // Survives reopening (a restart); ends on sign-out.
        drop(r);
        let r = Roster::open(&d.path().join("roster.db")).unwrap();
        assert!(r.session(&token).unwrap().is_some());
        r.end_session(&token).unwrap();
        assert!(r.session(&token).unwrap().is_none());
        // Expired.
        let t = r.start_session("amina", std::time::Duration::from_secs(0)).unwrap();
        assert!(r.session(&t).unwrap().is_none());
        // Removing the person ends their sessions.
        let t = r.start_session("amina", std::time::Duration::from_secs(60)).unwrap();
        r.remove("amina").unwrap();
        assert!(r.session(&t).unwrap().is_none());
    }
}
