//! The statement store: SQLite in WAL mode with `synchronous=FULL`, so a
//! committed transaction is on disk. One writer thread owns the write
//! connection and commits whatever writes are waiting as one transaction
//! (group commit): throughput comes from sharing fsyncs, never from skipping
//! them. Each request's statements sit in their own savepoint, so one
//! request's conflict never fails another's. Reads use a small pool of
//! read-only connections and run on blocking threads.

use super::Prepared;
use crate::metrics::Metrics;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("statement {id} already exists with different content")]
    Conflict { id: String },
    #[error("database {path}: {message}")]
    Db { path: PathBuf, message: String },
    #[error("the statement writer has stopped")]
    Closed,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS statements (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    fingerprint    BLOB NOT NULL,
    actor          TEXT NOT NULL,
    object_agent   TEXT,
    verb           TEXT NOT NULL,
    activity       TEXT,
    registration   TEXT,
    voiding_target TEXT,
    voided         INTEGER NOT NULL DEFAULT 0,
    stored         TEXT NOT NULL,
    body           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS statements_actor ON statements(actor, seq);
CREATE INDEX IF NOT EXISTS statements_object_agent ON statements(object_agent, seq) WHERE object_agent IS NOT NULL;
CREATE INDEX IF NOT EXISTS statements_verb ON statements(verb, seq);
CREATE INDEX IF NOT EXISTS statements_activity ON statements(activity, seq);
CREATE INDEX IF NOT EXISTS statements_registration ON statements(registration, seq) WHERE registration IS NOT NULL;
CREATE INDEX IF NOT EXISTS statements_voiding ON statements(voiding_target) WHERE voiding_target IS NOT NULL;
CREATE INDEX IF NOT EXISTS statements_stored ON statements(stored);
"#;

enum Job {
    Write { batch: Vec<Prepared>, reply: oneshot::Sender<Result<usize, StoreError>> },
    Ping { reply: oneshot::Sender<Result<(), StoreError>> },
}

/// Filters of a statement query (already parsed and checked).
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// IFI key; matches the actor or an Agent/Group object.
    pub agent: Option<String>,
    pub verb: Option<String>,
    pub activity: Option<String>,
    pub registration: Option<String>,
    /// Stored-time bounds, in the store's fixed-width UTC form.
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: usize,
    pub ascending: bool,
    /// Continue after (ascending) or before (descending) this sequence number.
    pub cursor: Option<i64>,
}

pub struct Page {
    pub statements: Vec<String>,
    /// Cursor of the next page, when there is one.
    pub next: Option<i64>,
}

#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Db { path: path.to_path_buf(), message: e.to_string() }
}

impl Store {
    /// Opens (creating if needed) `dir/lms.sqlite3` and starts the writer.
    pub fn open(dir: &Path, group_commit_max: usize, metrics: Arc<Metrics>) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Db { path: dir.to_path_buf(), message: e.to_string() })?;
        let path = dir.join("lms.sqlite3");
        let conn = Connection::open(&path).map_err(db_err(&path))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )
        .map_err(db_err(&path))?;
        conn.execute_batch(SCHEMA).map_err(db_err(&path))?;
        let (tx, rx) = mpsc::channel();
        let wpath = path.clone();
        std::thread::Builder::new()
            .name("lms-store-writer".into())
            .spawn(move || writer(conn, rx, group_commit_max, metrics, wpath))
            .map_err(|e| StoreError::Db { path: path.clone(), message: e.to_string() })?;
        Ok(Store { path, jobs: tx, readers: Arc::new(Mutex::new(Vec::new())) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores a batch atomically: all statements or none. Resolves once the
    /// transaction holding it is committed (fsynced). Returns how many were new.
    pub async fn write(&self, batch: Vec<Prepared>) -> Result<usize, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.jobs.send(Job::Write { batch, reply }).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Proves the database takes a write transaction right now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.jobs.send(Job::Ping { reply }).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` with a read-only connection on a blocking thread.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match this.readers.lock().unwrap().pop() {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &this.path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(db_err(&this.path))?;
                    c.busy_timeout(std::time::Duration::from_secs(5)).map_err(db_err(&this.path))?;
                    c
                }
            };
            let out = f(&conn).map_err(db_err(&this.path));
            let mut pool = this.readers.lock().unwrap();
            if pool.len() < 8 {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// One statement by id. `voided` selects whether a voided statement is
    /// wanted (voidedStatementId) or hidden (statementId).
    pub async fn get(&self, id: String, voided: bool) -> Result<Option<String>, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT body FROM statements WHERE id = ?1 AND voided = ?2")?
                .query_row(params![id.to_ascii_lowercase(), voided as i64], |r| r.get(0))
                .optional()
        })
        .await
    }

    pub async fn query(&self, q: Query) -> Result<Page, StoreError> {
        self.read(move |c| run_query(c, &q)).await
    }
}

fn run_query(c: &Connection, q: &Query) -> rusqlite::Result<Page> {
    let mut sql = String::from("SELECT seq, body FROM statements WHERE voided = 0");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut add = |cond: &str, v: rusqlite::types::Value| {
        args.push(v);
        sql.push_str(&cond.replace('?', &format!("?{}", args.len())));
    };
    if let Some(a) = &q.agent {
        // Both placeholders become the same numbered parameter.
        add(" AND (actor = ? OR object_agent = ?)", a.clone().into());
    }
    if let Some(v) = &q.verb {
        add(" AND verb = ?", v.clone().into());
    }
    if let Some(v) = &q.activity {
        add(" AND activity = ?", v.clone().into());
    }
    if let Some(v) = &q.registration {
        add(" AND registration = ?", v.to_ascii_lowercase().into());
    }
    if let Some(v) = &q.since {
        add(" AND stored > ?", v.clone().into());
    }
    if let Some(v) = &q.until {
        add(" AND stored <= ?", v.clone().into());
    }
    if let Some(cur) = q.cursor {
        add(if q.ascending { " AND seq > ?" } else { " AND seq < ?" }, cur.into());
    }
    sql.push_str(if q.ascending { " ORDER BY seq ASC" } else { " ORDER BY seq DESC" });
    sql.push_str(&format!(" LIMIT {}", q.limit + 1));
    let mut stmt = c.prepare_cached(&sql)?;
    let rows =
        stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut statements = Vec::new();
    let mut last = None;
    let mut next = None;
    for row in rows {
        let (seq, body) = row?;
        if statements.len() == q.limit {
            next = last;
            break;
        }
        last = Some(seq);
        statements.push(body);
    }
    Ok(Page { statements, next })
}

fn writer(mut conn: Connection, rx: mpsc::Receiver<Job>, max: usize, metrics: Arc<Metrics>, path: PathBuf) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < max {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        commit_group(&mut conn, jobs, &metrics, &path);
    }
    // All senders are gone: the node is shutting down. Fold the WAL back in so
    // the next start opens a compact database.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
}

/// What one job's savepoint produced, before the commit decides its fate.
enum Outcome {
    Wrote(usize),
    Failed(StoreError),
    Pinged,
}

fn commit_group(conn: &mut Connection, jobs: Vec<Job>, metrics: &Metrics, path: &Path) {
    let err = db_err(path);
    let mut outcomes = Vec::with_capacity(jobs.len());
    let began = conn.execute_batch("BEGIN IMMEDIATE").map_err(&err);
    if let Err(e) = began {
        reply_all(jobs, |_| Err(e.clone()));
        return;
    }
    for job in &jobs {
        outcomes.push(match job {
            Job::Ping { .. } => Outcome::Pinged,
            Job::Write { batch, .. } => match write_batch(conn, batch) {
                Ok(n) => Outcome::Wrote(n),
                Err(e) => Outcome::Failed(match e {
                    WriteErr::Conflict(id) => StoreError::Conflict { id },
                    WriteErr::Db(e) => err(e),
                }),
            },
        });
    }
    let t = Instant::now();
    let committed = conn.execute_batch("COMMIT").map_err(&err);
    metrics.db_commit.observe(t.elapsed());
    if let Err(e) = committed {
        let _ = conn.execute_batch("ROLLBACK");
        tracing::error!(error = %e, "group commit failed; every write in it is refused");
        reply_all(jobs, |_| Err(e.clone()));
        return;
    }
    let stored: usize = outcomes.iter().map(|o| if let Outcome::Wrote(n) = o { *n } else { 0 }).sum();
    metrics.statements_stored.fetch_add(stored as u64, Relaxed);
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        match (job, outcome) {
            (Job::Write { reply, .. }, Outcome::Wrote(n)) => drop(reply.send(Ok(n))),
            (Job::Write { reply, .. }, Outcome::Failed(e)) => drop(reply.send(Err(e))),
            (Job::Ping { reply }, _) => drop(reply.send(Ok(()))),
            (Job::Write { reply, .. }, Outcome::Pinged) => drop(reply.send(Err(StoreError::Closed))),
        }
    }
}

fn reply_all(jobs: Vec<Job>, e: impl Fn(()) -> Result<(), StoreError>) {
    for job in jobs {
        match job {
            Job::Write { reply, .. } => drop(reply.send(e(()).map(|_| 0))),
            Job::Ping { reply } => drop(reply.send(e(()))),
        }
    }
}

enum WriteErr {
    Conflict(String),
    Db(rusqlite::Error),
}

impl From<rusqlite::Error> for WriteErr {
    fn from(e: rusqlite::Error) -> Self {
        WriteErr::Db(e)
    }
}

/// One request's statements inside a savepoint: all or none.
fn write_batch(conn: &Connection, batch: &[Prepared]) -> Result<usize, WriteErr> {
    conn.execute_batch("SAVEPOINT job")?;
    match insert_all(conn, batch) {
        Ok(n) => {
            conn.execute_batch("RELEASE job")?;
            Ok(n)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(e)
        }
    }
}

fn insert_all(conn: &Connection, batch: &[Prepared]) -> Result<usize, WriteErr> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO statements (id, fingerprint, actor, object_agent, verb, activity, registration,
                                 voiding_target, voided, stored, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,
                 EXISTS (SELECT 1 FROM statements WHERE voiding_target = ?1), ?9, ?10)
         ON CONFLICT(id) DO NOTHING",
    )?;
    let mut existing = conn.prepare_cached("SELECT fingerprint FROM statements WHERE id = ?1")?;
    let mut void = conn.prepare_cached("UPDATE statements SET voided = 1 WHERE id = ?1 AND voiding_target IS NULL")?;
    let mut new = 0;
    for p in batch {
        let n = insert.execute(params![
            p.id,
            &p.fingerprint[..],
            p.actor,
            p.object_agent,
            p.verb,
            p.activity,
            p.registration,
            p.voiding_target,
            p.stored,
            p.body
        ])?;
        if n == 0 {
            let fp: Vec<u8> = existing.query_row([&p.id], |r| r.get(0))?;
            if fp != p.fingerprint {
                return Err(WriteErr::Conflict(p.id.clone()));
            }
            continue; // the same statement again: changes nothing
        }
        new += 1;
        if let Some(target) = &p.voiding_target {
            void.execute([target])?;
        }
    }
    Ok(new)
}
