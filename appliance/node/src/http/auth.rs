//! HTTP Basic authentication against an htpasswd file of bcrypt entries (as
//! `htpasswd -B` writes them). bcrypt is slow on purpose, so a verified
//! (user, password) pair is remembered by its SHA-256 until the file is
//! changed: only the first request of a client pays for bcrypt.
//!
//! bcrypt is also the cheapest way to attack a node, so every miss is bounded
//! (issue 10, case 5): at most `BCRYPT_SLOTS` run at once, each on a blocking
//! thread that holds its permit until bcrypt is done (a client that resets
//! frees nothing early); at most `BCRYPT_QUEUE` wait, the rest get 503 with
//! Retry-After; an unknown user is checked against a dummy hash of the same
//! cost, so the answer's time does not tell which users exist; and each
//! client address has a budget of failed checks (a token bucket), past which
//! its unverified attempts get 429 with Retry-After and cost no bcrypt.

use super::error::ApiError;
use super::scopes::{self, Scopes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("credentials file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("credentials file {path} line {line}: {message}")]
    Line { path: PathBuf, line: usize, message: String },
    #[error("{0}")]
    Scopes(String),
}

/// The authenticated credential and what it may do, put into request
/// extensions by [`require`].
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub scopes: Scopes,
    /// Set when the request came with a browser session, not a client
    /// credential: the person signed in (their scopes are none).
    pub person: Option<crate::roster::Person>,
    /// Set when the request came with a cmi5 launch token: what it may do.
    pub launch: Option<std::sync::Arc<crate::content::cmi5::Grant>>,
}

impl User {
    /// A person signed in with a browser session: their own records only,
    /// no client scopes.
    pub fn signed_in(person: crate::roster::Person) -> User {
        User { name: person.id.clone(), scopes: Scopes::none(), person: Some(person), launch: None }
    }

    /// Nobody signed in (the sign-in page, an error page before sign-in):
    /// no scopes, no person; such a call can store nothing of anyone's.
    pub fn anonymous() -> User {
        User { name: "anonymous".into(), scopes: Scopes::none(), person: None, launch: None }
    }

    /// A cmi5 AU session's token (see `content::cmi5::Grant`).
    pub fn launched(grant: std::sync::Arc<crate::content::cmi5::Grant>) -> User {
        User {
            name: format!("cmi5 session {}", grant.session_id),
            scopes: Scopes::none(),
            person: None,
            launch: Some(grant),
        }
    }

    /// Ok when the credential has the scope `what` needs, else 403 naming it.
    pub fn may(&self, allowed: bool, what: &str) -> Result<(), ApiError> {
        if allowed {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "credential {:?} (scopes: {}) may not {what}",
                self.name,
                self.scopes.names().join(", ")
            )))
        }
    }
}

const CACHE_MAX: usize = 100_000;
/// bcrypt checks running at once (of the node's cores, learners keep the rest).
const BCRYPT_SLOTS: usize = 2;
/// bcrypt checks waiting for a slot; past it: 503. A class of 40 signing
/// in at once fits (issue 11); a flood waits at most 64 checks (~2 s at
/// cost 10 on two slots).
const BCRYPT_QUEUE: usize = 64;
/// Failed checks a client address may make in a burst, and per minute after.
const FAILURE_BURST: f64 = 20.0;
const FAILURES_PER_MINUTE: f64 = 20.0;
/// Client addresses tracked at once (a flood of addresses resets the table).
const ADDRESSES_MAX: usize = 10_000;

/// What a check of credentials came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    /// Too many checks waiting: try again in this many seconds.
    Busy(u64),
    /// This address failed too often: try again in this many seconds.
    Backoff(u64),
}

/// Failed-check budget of one client address.
struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

#[derive(Default)]
pub struct AuthStats {
    pub bcrypt_total: std::sync::atomic::AtomicU64,
    pub busy_total: std::sync::atomic::AtomicU64,
    pub backoff_total: std::sync::atomic::AtomicU64,
}

pub struct Auth {
    path: Option<PathBuf>,
    scopes_path: Option<PathBuf>,
    users: RwLock<Arc<HashMap<String, String>>>,
    scopes: RwLock<Arc<HashMap<String, Scopes>>>,
    /// Checked against when the user is unknown, at the entries' cost.
    /// The cost unknown users are checked at: the file's highest.
    dummy_cost: std::sync::atomic::AtomicU32,
    verified: Mutex<HashSet<[u8; 32]>>,
    bcrypt_slots: Arc<Semaphore>,
    queue: Arc<Semaphore>,
    failures: Mutex<HashMap<std::net::IpAddr, Bucket>>,
    pub stats: AuthStats,
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
    /// `scopes_path` None: `scopes.toml` beside `path`.
    pub fn load(path: Option<&Path>, scopes_path: Option<&Path>) -> Result<Auth, CredentialsError> {
        let scopes_path = scopes_path.map(Path::to_path_buf).or_else(|| path.map(|p| p.with_file_name("scopes.toml")));
        let auth = Auth {
            path: path.map(Path::to_path_buf),
            scopes_path,
            users: RwLock::new(Arc::new(HashMap::new())),
            scopes: RwLock::new(Arc::new(HashMap::new())),
            dummy_cost: std::sync::atomic::AtomicU32::new(10),
            verified: Mutex::new(HashSet::new()),
            bcrypt_slots: Arc::new(Semaphore::new(BCRYPT_SLOTS)),
            queue: Arc::new(Semaphore::new(BCRYPT_SLOTS + BCRYPT_QUEUE)),
            failures: Mutex::new(HashMap::new()),
            stats: AuthStats::default(),
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
        let scopes = self.read_scopes(&users)?;
        let n = users.len();
        // The dummy costs what a real entry costs (the highest cost in the file).
        let cost = users.values().filter_map(|h| h.get(4..6)?.parse::<u32>().ok()).max().unwrap_or(10);
        self.dummy_cost.store(cost.clamp(4, 31), Relaxed);
        *self.users.write().unwrap() = Arc::new(users);
        *self.scopes.write().unwrap() = Arc::new(scopes);
        // The cache is not cleared: its keys include the hash, so a changed
        // or removed entry matches nothing, and everyone else keeps theirs.
        Ok(n)
    }

    /// The scopes file's entries; none when it does not exist (everyone
    /// then has the default scopes).
    fn read_scopes(&self, users: &HashMap<String, String>) -> Result<HashMap<String, Scopes>, CredentialsError> {
        let Some(path) = &self.scopes_path else { return Ok(HashMap::new()) };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(file = %path.display(), "no scopes file: every credential may write statements and read its own");
                return Ok(HashMap::new());
            }
            Err(e) => return Err(CredentialsError::Scopes(format!("scopes file {}: {e}", path.display()))),
        };
        let scopes = scopes::parse(path, &text).map_err(CredentialsError::Scopes)?;
        for name in scopes.keys().filter(|n| !users.contains_key(*n)) {
            tracing::warn!(credential = %name, file = %path.display(), "scopes given for a credential the htpasswd file does not have");
        }
        Ok(scopes)
    }

    /// What `user` may do.
    pub fn scopes_of(&self, user: &str) -> Scopes {
        self.scopes.read().unwrap().get(user).copied().unwrap_or_else(Scopes::default_scopes)
    }

    /// `ip`'s failure budget: None when it has a token left (and, with
    /// `take`, spends it on a failure), else how many seconds until it has.
    fn over_budget(&self, ip: std::net::IpAddr, take: bool) -> Option<u64> {
        let now = std::time::Instant::now();
        let mut map = self.failures.lock().unwrap();
        if map.len() >= ADDRESSES_MAX && !map.contains_key(&ip) {
            map.clear();
        }
        let b = map.entry(ip).or_insert(Bucket { tokens: FAILURE_BURST, at: now });
        let rate = FAILURES_PER_MINUTE / 60.0;
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(FAILURE_BURST);
        b.at = now;
        if b.tokens < 1.0 {
            return Some(((1.0 - b.tokens) / rate).ceil() as u64);
        }
        if take {
            b.tokens -= 1.0;
        }
        None
    }

    /// Checks `user`:`password`; `from` is the client's address (None for
    /// callers without one, such as tests).
    pub async fn check(&self, user: &str, password: &str, from: Option<std::net::IpAddr>) -> Verdict {
        let known = self.users.read().unwrap().get(user).cloned();
        self.check_hash(user, known, password, from, self.dummy_cost.load(Relaxed)).await
    }

    /// Checks `password` against `known` (a bcrypt hash; None: nobody by
    /// that name, checked against the dummy so the answer takes as long),
    /// under the same bounds as every credential check: the cache of
    /// verified pairs, the per-address budget, the queue and the slots.
    /// `user` only keys the cache; `dummy_cost` is the cost the known
    /// entries of that kind have. The roster's sign-in uses it too.
    pub async fn check_hash(
        &self,
        user: &str,
        known: Option<String>,
        password: &str,
        from: Option<std::net::IpAddr>,
        dummy_cost: u32,
    ) -> Verdict {
        if let Some(hash) = &known
            && self.verified.lock().unwrap().contains(&cache_key(user, password, hash))
        {
            return Verdict::Valid;
        }
        if let Some(ip) = from
            && let Some(wait) = self.over_budget(ip, false)
        {
            self.stats.backoff_total.fetch_add(1, Relaxed);
            return Verdict::Backoff(wait);
        }
        let Ok(queued) = self.queue.clone().try_acquire_owned() else {
            self.stats.busy_total.fetch_add(1, Relaxed);
            return Verdict::Busy(1);
        };
        let Ok(slot) = self.bcrypt_slots.clone().acquire_owned().await else { return Verdict::Invalid };
        let hash = known.clone().unwrap_or_else(|| dummy_hash(dummy_cost));
        let pw = password.to_string();
        self.stats.bcrypt_total.fetch_add(1, Relaxed);
        // The permits live in the blocking task: a client that goes away
        // frees its slot only when bcrypt has finished.
        let ok = tokio::task::spawn_blocking(move || {
            let ok = bcrypt::verify(pw, &hash).unwrap_or(false);
            drop((slot, queued));
            ok
        })
        .await
        .unwrap_or(false);
        match (ok, known) {
            (true, Some(hash)) => {
                let mut cache = self.verified.lock().unwrap();
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
                cache.insert(cache_key(user, password, &hash));
                Verdict::Valid
            }
            _ => {
                if let Some(ip) = from {
                    self.over_budget(ip, true);
                }
                Verdict::Invalid
            }
        }
    }

    pub async fn verify(&self, user: &str, password: &str) -> bool {
        self.check(user, password, None).await == Verdict::Valid
    }

    /// Publishes the counters into the node's metrics.
    pub fn publish(&self, m: &crate::metrics::Metrics) {
        let s = &self.stats;
        m.set(
            "lms_auth_bcrypt_total",
            "Credential checks that ran bcrypt.",
            "counter",
            s.bcrypt_total.load(Relaxed) as f64,
        );
        m.set(
            "lms_auth_busy_total",
            "Credential checks refused with 503: too many waiting.",
            "counter",
            s.busy_total.load(Relaxed) as f64,
        );
        m.set(
            "lms_auth_backoff_total",
            "Credential checks refused with 429: the address failed too often.",
            "counter",
            s.backoff_total.load(Relaxed) as f64,
        );
    }
}

/// A well-formed bcrypt hash of `cost` that costs a full bcrypt to check
/// (verify runs the key schedule before it compares): made, not computed,
/// so loading credentials never spends a bcrypt. Its result is ignored
/// (an unknown user is refused whatever it says).
fn dummy_hash(cost: u32) -> String {
    format!("$2b${:02}${}{}", cost.clamp(4, 31), ".".repeat(22), ".".repeat(31))
}

fn cache_key(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [user.as_bytes(), b"\0", password.as_bytes(), b"\0", hash.as_bytes()] {
        h.update(part);
    }
    h.finalize().into()
}

fn basic(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
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
    let user = client(&auth, req.headers(), client_addr(&req)).await?;
    req.extensions_mut().insert(user);
    Ok(next.run(req).await)
}

/// The address a request came from (None for callers without one, such as tests).
pub fn client_addr(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())
}

/// The client credential of a request's Basic header: 401 without one or
/// with a wrong one, 503/429 when the checks are bounded.
pub async fn client(
    auth: &Auth,
    headers: &axum::http::HeaderMap,
    from: Option<std::net::IpAddr>,
) -> Result<User, ApiError> {
    let Some((user, password)) = basic(headers) else {
        return Err(ApiError::Unauthorized);
    };
    verdict(auth.check(&user, &password, from).await, from)?;
    Ok(User { scopes: auth.scopes_of(&user), name: user, person: None, launch: None })
}

/// A check's verdict as the answer it gets.
pub fn verdict(v: Verdict, from: Option<std::net::IpAddr>) -> Result<(), ApiError> {
    match v {
        Verdict::Valid => Ok(()),
        Verdict::Invalid => Err(ApiError::Unauthorized),
        Verdict::Busy(secs) => Err(ApiError::Busy(secs)),
        Verdict::Backoff(secs) => {
            tracing::warn!(from = ?from, "credential failures from this address: backing off");
            Err(ApiError::TooManyAttempts(secs))
        }
    }
}

/// The credential a request carries, when it has one and it is valid;
/// None otherwise (for routes that answer everyone, and tell more to some).
pub async fn optional(auth: &Auth, headers: &axum::http::HeaderMap, from: Option<std::net::IpAddr>) -> Option<User> {
    client(auth, headers, from).await.ok()
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

    /// The dummy must parse (a malformed hash fails fast, which would tell
    /// unknown users from known ones) and match nothing.
    #[test]
    fn the_dummy_hash_is_a_real_check() {
        for cost in [4, 10, 12] {
            let d = dummy_hash(cost);
            assert_eq!(bcrypt::verify("anything", &d).ok(), Some(false), "{d}");
            assert_eq!(&d[4..6], format!("{cost:02}"));
        }
    }

    #[tokio::test]
    async fn verify_caches_successes_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("htpasswd");
        std::fs::write(&f, format!("ann:{}\n", bcrypt::hash("right", 4).unwrap())).unwrap();
        let auth = Auth::load(Some(&f), None).unwrap();
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
