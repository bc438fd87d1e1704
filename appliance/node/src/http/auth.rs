//! HTTP Basic authentication against an htpasswd file of bcrypt entries (as
//! `htpasswd -B` writes them). bcrypt is slow on purpose, so a verified
//! (user, password) pair is remembered by its SHA-256 until the file is
//! reloaded: only the first request of a client pays for bcrypt. Misses run
//! on blocking threads, at most two at a time, so wrong passwords cannot
//! starve learners' requests of CPU.

use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("credentials file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("credentials file {path} line {line}: {message}")]
    Line { path: PathBuf, line: usize, message: String },
}

/// The authenticated user, put into request extensions by [`require`].
#[derive(Debug, Clone)]
pub struct User(pub String);

const CACHE_MAX: usize = 100_000;

pub struct Auth {
    path: Option<PathBuf>,
    users: RwLock<Arc<HashMap<String, String>>>,
    verified: Mutex<HashSet<[u8; 32]>>,
    bcrypt_slots: Semaphore,
}

pub fn parse_htpasswd(path: &Path, text: &str) -> Result<HashMap<String, String>, CredentialsError> {
    let mut users = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: String| CredentialsError::Line { path: path.to_path_buf(), line: i + 1, message };
        let (user, hash) = line.split_once(':').ok_or_else(|| err("expected user:hash".into()))?;
        if user.is_empty() {
            return Err(err("empty user name".into()));
        }
        if !(hash.starts_with("$2y$") || hash.starts_with("$2a$") || hash.starts_with("$2b$")) {
            return Err(err(format!(
                "user {user:?}: only bcrypt entries ($2y$, as `htpasswd -B` writes) are accepted"
            )));
        }
        if users.insert(user.to_string(), hash.to_string()).is_some() {
            return Err(err(format!("user {user:?} is listed twice")));
        }
    }
    Ok(users)
}

impl Auth {
    /// Without a file nobody is let in: the node never runs open by accident.
    pub fn load(path: Option<&Path>) -> Result<Auth, CredentialsError> {
        let auth = Auth {
            path: path.map(Path::to_path_buf),
            users: RwLock::new(Arc::new(HashMap::new())),
            verified: Mutex::new(HashSet::new()),
            bcrypt_slots: Semaphore::new(2),
        };
        auth.reload()?;
        Ok(auth)
    }

    /// Re-reads the file; on error the previous users stay in force.
    pub fn reload(&self) -> Result<usize, CredentialsError> {
        let Some(path) = &self.path else {
            tracing::warn!("no credentials file: /xapi and /v1 refuse every request");
            return Ok(0);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| CredentialsError::Read { path: path.clone(), message: e.to_string() })?;
        let users = parse_htpasswd(path, &text)?;
        let n = users.len();
        *self.users.write().unwrap() = Arc::new(users);
        self.verified.lock().unwrap().clear();
        Ok(n)
    }

    pub async fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.read().unwrap().get(user).cloned() else {
            return false;
        };
        let key: [u8; 32] = {
            let mut h = Sha256::new();
            for part in [user.as_bytes(), b"\0", password.as_bytes(), b"\0", hash.as_bytes()] {
                h.update(part);
            }
            h.finalize().into()
        };
        if self.verified.lock().unwrap().contains(&key) {
            return true;
        }
        let Ok(_slot) = self.bcrypt_slots.acquire().await else { return false };
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if ok {
            let mut cache = self.verified.lock().unwrap();
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(key);
        }
        ok
    }
}

fn basic(req: &Request) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Middleware: 401 unless the request carries valid Basic credentials.
pub async fn require(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let Some((user, password)) = basic(&req) else {
        return Err(ApiError::Unauthorized);
    };
    if !auth.verify(&user, &password).await {
        return Err(ApiError::Unauthorized);
    }
    req.extensions_mut().insert(User(user));
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_lines_are_checked() {
        let p = Path::new("creds");
        let h = bcrypt::hash("pw", 4).unwrap();
        let users = parse_htpasswd(p, &format!("# comment\n\nann:{h}\n")).unwrap();
        assert_eq!(users.len(), 1);
        let e = parse_htpasswd(p, "ann:{SHA}abc\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("bcrypt"), "{e}");
        let e = parse_htpasswd(p, &format!("ann:{h}\nann:{h}\n")).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("twice"), "{e}");
        assert!(parse_htpasswd(p, "nocolon\n").unwrap_err().to_string().contains("line 1"));
    }

    #[tokio::test]
    async fn verify_caches_successes_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("htpasswd");
        std::fs::write(&f, format!("ann:{}\n", bcrypt::hash("right", 4).unwrap())).unwrap();
        let auth = Auth::load(Some(&f)).unwrap();
        assert!(!auth.verify("ann", "wrong").await);
        assert!(auth.verify("ann", "right").await);
        assert!(auth.verify("ann", "right").await);
        assert!(!auth.verify("bob", "right").await);
        assert_eq!(auth.verified.lock().unwrap().len(), 1);
        // A changed file drops cached passwords.
        std::fs::write(&f, format!("ann:{}\n", bcrypt::hash("new", 4).unwrap())).unwrap();
        auth.reload().unwrap();
        assert!(!auth.verify("ann", "right").await);
        assert!(auth.verify("ann", "new").await);
    }
}
