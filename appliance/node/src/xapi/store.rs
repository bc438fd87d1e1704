//! The statement store: SQLite in WAL mode with `synchronous=FULL`, so a
//! committed transaction is on disk. One writer thread owns the write
//! connection and commits whatever writes are waiting as one transaction
//! (group commit): throughput comes from sharing fsyncs, never from skipping
//! them. Each request's statements sit in their own savepoint, so one
//! request's conflict never fails another's. Reads use a small pool of
//! read-only connections and run on blocking threads. The writer thread is
//! in `writer.rs`, the query walk in `query.rs`.

use super::Prepared;
pub use super::query::{Only, Page, Query};
use super::query::{run_query, scan};
use super::writer::{Job, Writer, checkpointer};
use super::{documents, keys};
use crate::metrics::Metrics;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("statement {id} already exists with different content")]
    Conflict { id: String },
    #[error("database {path}: {message}")]
    Db { path: PathBuf, message: String },
    #[error("the statement writer has stopped")]
    Closed,
    #[error(transparent)]
    Document(#[from] super::documents::Refused),
    #[error(
        "the upstream outbox holds {depth} statements, its limit is {limit}: refusing new statements until sync drains it"
    )]
    OutboxFull { depth: u64, limit: u64 },
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS statements (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    fingerprint    BLOB NOT NULL,
    actor          TEXT NOT NULL,
    -- object_agent, activity, registration: no longer written (the filters
    -- read statement_keys); kept so an older database needs no rebuild.
    object_agent   TEXT,
    verb           TEXT NOT NULL,
    activity       TEXT,
    registration   TEXT,
    voiding_target TEXT,
    voided         INTEGER NOT NULL DEFAULT 0,
    stored         TEXT NOT NULL,
    body           TEXT NOT NULL,
    -- IFI key of the credential that stored it (statements/read/mine, voiding).
    authority      TEXT,
    -- A voiding statement from a credential that may void anyone's (scope all).
    void_any       INTEGER NOT NULL DEFAULT 0,
    -- The id a StatementRef Object targets (voiding statements too).
    statement_ref  TEXT
);
-- The filters' keys are in statement_keys (keys.rs), beside the actor's
-- index the node's own per-learner reads use.
CREATE INDEX IF NOT EXISTS statements_actor ON statements(actor, seq);
CREATE INDEX IF NOT EXISTS statements_voiding ON statements(voiding_target) WHERE voiding_target IS NOT NULL;
CREATE INDEX IF NOT EXISTS statements_stored ON statements(stored);
-- Statements still to be forwarded upstream, queued in the transaction that stores them.
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY);
-- Statements the upstream refused as invalid, set aside with its reason.
CREATE TABLE IF NOT EXISTS sync_rejected (seq INTEGER PRIMARY KEY, reason TEXT NOT NULL, at TEXT NOT NULL);
-- How many statements have left the outbox, by verdict; changed in the
-- transaction that removes them, so the totals and the outbox always agree.
CREATE TABLE IF NOT EXISTS sync_totals (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    sent       INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    rejected   INTEGER NOT NULL
);
INSERT OR IGNORE INTO sync_totals (id, sent, duplicates, rejected) VALUES (1, 0, 0, 0);
-- Attachment bytes, once per SHA-2, and which statements delivered them: a
-- reader gets the bytes of a statement only when that statement's request
-- carried them, so declaring someone else's hash with a fileUrl reveals
-- nothing.
CREATE TABLE IF NOT EXISTS attachments (
    sha2         TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    body         BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS statement_attachments (
    seq  INTEGER NOT NULL,
    sha2 TEXT NOT NULL,
    PRIMARY KEY (seq, sha2)
) WITHOUT ROWID;
"#;

/// What the upstream made of a batch, by outbox sequence number.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdicts {
    /// Taken (2xx).
    pub sent: Vec<i64>,
    /// Already held by the upstream (409 for that statement alone): delivered.
    pub duplicates: Vec<i64>,
    /// Refused for its own content, with the reason: set aside for good.
    pub rejected: Vec<(i64, String)>,
}

impl Verdicts {
    pub fn extend(&mut self, other: Verdicts) {
        self.sent.extend(other.sent);
        self.duplicates.extend(other.duplicates);
        self.rejected.extend(other.rejected);
    }
}

/// The outbox's depth and what has left it, by verdict. The writer changes
/// them together, under one lock, right after the commit that changes the
/// outbox, so every snapshot adds up: a statement is queued, or counted once
/// as sent, duplicate or rejected, never neither and never twice. The totals
/// are kept in the database too, so they survive restarts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ledger {
    pub depth: u64,
    pub sent: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

impl Ledger {
    pub(super) fn apply(&mut self, queued: u64, left: Ledger) {
        self.depth = (self.depth + queued).saturating_sub(left.sent + left.duplicates + left.rejected);
        self.sent += left.sent;
        self.duplicates += left.duplicates;
        self.rejected += left.rejected;
    }
}

/// Upstream queueing: on when the node has an upstream.
#[derive(Debug, Clone, Copy)]
pub struct OutboxConfig {
    pub limit: u64,
}

/// What [`Store::reduced`] read.
#[derive(Debug, Default)]
pub struct Reduced {
    pub statements: Vec<serde_json::Value>,
    /// Some were left out for the byte budget.
    pub cut: bool,
    /// Sequence number of the last statement read (its cursor).
    pub last: Option<i64>,
}

#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
    readers: Arc<Mutex<Vec<Connection>>>,
    ledger: Arc<Mutex<Ledger>>,
    outbox: Option<OutboxConfig>,
    /// Grows by one after each commit that voided a stored statement, so a
    /// summary of statements (progress facts) knows to start over.
    voids: Arc<AtomicU64>,
    /// The checkpointer runs while any clone of the store exists.
    _alive: mpsc::Sender<()>,
}

/// Creates the schema, and brings a database an older node made up to it:
/// `authority` and `void_any` came with credential scopes (version 2); the
/// authority of older rows is read from their bodies.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_statements: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'statements')",
        [],
        |r| r.get(0),
    )?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if has_statements && version < 2 && !has_column(conn, "authority")? {
        conn.execute_batch(
            "BEGIN;
                 ALTER TABLE statements ADD COLUMN authority TEXT;
                 ALTER TABLE statements ADD COLUMN void_any INTEGER NOT NULL DEFAULT 0;
                 UPDATE statements SET authority = 'account:' || json_extract(body, '$.authority.account.homePage')
                                                   || '|' || json_extract(body, '$.authority.account.name');
                 COMMIT;",
        )?;
    }
    if has_statements && version < 3 && !has_column(conn, "statement_ref")? {
        conn.execute_batch("ALTER TABLE statements ADD COLUMN statement_ref TEXT;")?;
    }
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(documents::SCHEMA)?;
    conn.execute_batch(keys::SCHEMA)?;
    conn.execute_batch("CREATE INDEX IF NOT EXISTS statements_authority ON statements(authority, seq);")?;
    if has_statements && version < 3 {
        // Version 3: the filters' keys in one table instead of four indexes.
        let t = std::time::Instant::now();
        conn.execute_batch("BEGIN")?;
        let filled = (|| {
            conn.execute_batch(
                "UPDATE statements SET statement_ref = lower(json_extract(body, '$.object.id'))
                   WHERE json_extract(body, '$.object.objectType') = 'StatementRef';
                 DROP INDEX IF EXISTS statements_object_agent; DROP INDEX IF EXISTS statements_verb;
                 DROP INDEX IF EXISTS statements_activity; DROP INDEX IF EXISTS statements_registration;
                 DELETE FROM statement_keys;",
            )?;
            keys::fill(conn)
        })();
        match filled {
            Ok(n) => {
                conn.execute_batch("COMMIT")?;
                tracing::info!(statements = n, seconds = t.elapsed().as_secs_f64(), "statement keys built");
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    conn.execute_batch("PRAGMA user_version = 3;")
}

/// Whether the `statements` table has column `name` (an older node's may not).
fn has_column(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM pragma_table_info('statements') WHERE name = ?1)", [name], |r| {
        r.get(0)
    })
}

pub(super) fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Db { path: path.to_path_buf(), message: e.to_string() }
}

impl Store {
    /// Opens (creating if needed) `dir/lms.sqlite3` and starts the writer.
    pub fn open(
        dir: &Path,
        group_commit_max: usize,
        outbox: Option<OutboxConfig>,
        metrics: Arc<Metrics>,
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Db { path: dir.to_path_buf(), message: e.to_string() })?;
        let path = dir.join("lms.sqlite3");
        let conn = Connection::open(&path).map_err(db_err(&path))?;
        conn.execute_batch(
            // A 64 MiB page cache keeps the indexes' hot pages in memory (random
            // UUID keys touch pages all over the id index).
            // Checkpoints run on their own thread (below), never in a commit.
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;
             PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=0;",
        )
        .map_err(db_err(&path))?;
        migrate(&conn).map_err(db_err(&path))?;
        let ledger = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM outbox), sent, duplicates, rejected FROM sync_totals WHERE id = 1",
                [],
                |r| {
                    let n = |i| r.get::<_, i64>(i).map(|v| v as u64);
                    Ok(Ledger { depth: n(0)?, sent: n(1)?, duplicates: n(2)?, rejected: n(3)? })
                },
            )
            .map_err(db_err(&path))?;
        let ledger = Arc::new(Mutex::new(ledger));
        let (alive, watch) = mpsc::channel::<()>();
        let cpath = path.clone();
        std::thread::Builder::new()
            .name("lms-checkpoint".into())
            .spawn(move || checkpointer(&cpath, watch))
            .map_err(|e| StoreError::Db { path: path.clone(), message: e.to_string() })?;
        let (tx, rx) = mpsc::channel();
        let voids = Arc::new(AtomicU64::new(0));
        let w = Writer { conn, metrics, path: path.clone(), outbox, ledger: ledger.clone(), voids: voids.clone() };
        std::thread::Builder::new()
            .name("lms-store-writer".into())
            .spawn(move || w.run(rx, group_commit_max))
            .map_err(|e| StoreError::Db { path: path.clone(), message: e.to_string() })?;
        Ok(Store { path, jobs: tx, readers: Arc::new(Mutex::new(Vec::new())), ledger, outbox, voids, _alive: alive })
    }

    /// How many commits so far voided a stored statement (since start).
    pub fn void_generation(&self) -> u64 {
        self.voids.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Statements waiting to go upstream.
    pub fn outbox_depth(&self) -> u64 {
        self.ledger().depth
    }

    /// One consistent snapshot of the outbox depth and the sync totals.
    pub fn ledger(&self) -> Ledger {
        *self.ledger.lock().unwrap()
    }

    pub fn outbox_limit(&self) -> Option<u64> {
        self.outbox.map(|o| o.limit)
    }

    /// The oldest `limit` queued statements: (sequence, JSON text).
    pub async fn outbox_batch(&self, limit: usize) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT o.seq, s.body FROM outbox o JOIN statements s ON s.seq = o.seq ORDER BY o.seq LIMIT ?1",
            )?;
            st.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
        .await
    }

    /// `stored` of the oldest queued statement.
    pub async fn oldest_unsent(&self) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT s.stored FROM outbox o JOIN statements s ON s.seq = o.seq ORDER BY o.seq LIMIT 1")?
                .query_row([], |r| r.get(0))
                .optional()
        })
        .await
    }

    /// Statements the upstream refused, with reasons (newest first).
    pub async fn sync_rejected(&self, limit: usize) -> Result<Vec<(String, String, String)>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT s.id, r.reason, r.at FROM sync_rejected r JOIN statements s ON s.seq = r.seq ORDER BY r.seq DESC LIMIT ?1",
            )?;
            st.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect()
        })
        .await
    }

    /// Records sync's verdicts in the next group commit.
    pub async fn ack(&self, verdicts: Verdicts) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.jobs.send(Job::Ack { verdicts, reply }).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
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

    /// Applies a document write in the next group commit: resolves once it
    /// is committed (fsynced), or with [`StoreError::Document`] when its
    /// preconditions refused it (nothing changed).
    pub async fn write_document(&self, write: documents::Write) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.jobs.send(Job::Document { write: Box::new(write), reply }).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// One document.
    pub async fn document(
        &self,
        place: documents::Place,
        id: String,
    ) -> Result<Option<documents::Document>, StoreError> {
        self.read(move |c| documents::get(c, &place, &id)).await
    }

    /// The ids of a place's documents updated after `since`, and the newest update.
    pub async fn document_ids(
        &self,
        place: documents::Place,
        since: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        self.read(move |c| documents::ids(c, &place, since.as_deref())).await
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
    /// wanted (voidedStatementId) or hidden (statementId); `only`, when
    /// given, hides statements another credential stored or with another actor.
    /// Statement `id` (voided or not, as asked) and its `stored`, when the
    /// reader may see it.
    pub async fn get(&self, id: String, voided: bool, only: Only) -> Result<Option<(String, String)>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT body, stored FROM statements WHERE id = ?1 AND voided = ?2
                 AND (?3 IS NULL OR authority = ?3) AND (?4 IS NULL OR actor = ?4)",
            )?
            .query_row(params![id.to_ascii_lowercase(), voided as i64, only.authority, only.actor], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
        .await
    }

    /// The attachment bytes the requests of statements `ids` carried, each
    /// SHA-2 once, in the order first met (`attachments=true`).
    pub async fn attachments_of(&self, ids: Vec<String>) -> Result<Vec<super::attachments::Part>, StoreError> {
        self.read(move |c| {
            let mut q = c.prepare_cached(
                "SELECT a.sha2, a.content_type, a.body FROM statements s
                 JOIN statement_attachments sa ON sa.seq = s.seq
                 JOIN attachments a ON a.sha2 = sa.sha2
                 WHERE s.id = ?1",
            )?;
            let mut out: Vec<super::attachments::Part> = Vec::new();
            for id in ids {
                let rows = q.query_map([id.to_ascii_lowercase()], |r| {
                    Ok(super::attachments::Part {
                        sha2: r.get(0)?,
                        content_type: r.get(1)?,
                        bytes: r.get::<_, Vec<u8>>(2)?.into(),
                    })
                })?;
                for part in rows {
                    super::attachments::push_once(&mut out, &part?);
                }
            }
            Ok(out)
        })
        .await
    }

    /// The attachment bytes of the statements at `seqs` (sync), by seq.
    pub async fn attachments_at(
        &self,
        seqs: Vec<i64>,
    ) -> Result<HashMap<i64, Vec<super::attachments::Part>>, StoreError> {
        let (Some(lo), Some(hi)) = (seqs.iter().min().copied(), seqs.iter().max().copied()) else {
            return Ok(HashMap::new());
        };
        self.read(move |c| {
            let mut q = c.prepare_cached(
                "SELECT sa.seq, a.sha2, a.content_type, a.body FROM statement_attachments sa
                 JOIN attachments a ON a.sha2 = sa.sha2 WHERE sa.seq BETWEEN ?1 AND ?2",
            )?;
            let mut out: HashMap<i64, Vec<super::attachments::Part>> = HashMap::new();
            let rows = q.query_map([lo, hi], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    super::attachments::Part {
                        sha2: r.get(1)?,
                        content_type: r.get(2)?,
                        bytes: r.get::<_, Vec<u8>>(3)?.into(),
                    },
                ))
            })?;
            for row in rows {
                let (seq, part) = row?;
                if seqs.contains(&seq) {
                    out.entry(seq).or_default().push(part);
                }
            }
            Ok(out)
        })
        .await
    }

    /// The authority (IFI key) that stored statement `id`, when it is stored.
    pub async fn authority_of(&self, id: String) -> Result<Option<String>, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT coalesce(authority, '') FROM statements WHERE id = ?1")?
                .query_row([id.to_ascii_lowercase()], |r| r.get(0))
                .optional()
        })
        .await
    }

    pub async fn query(&self, q: Query) -> Result<Page, StoreError> {
        self.read(move |c| run_query(c, &q)).await
    }

    /// The statements `q` selects, each cut down by `reduce` as it is read
    /// (so one large statement costs its own size once, never the page's),
    /// until the reduced ones would pass `budget` bytes of JSON.
    pub async fn reduced(
        &self,
        q: Query,
        budget: usize,
        reduce: fn(&str) -> Option<serde_json::Value>,
    ) -> Result<Reduced, StoreError> {
        self.read(move |c| {
            let mut r = Reduced::default();
            let mut used = 0usize;
            scan(c, &q, |seq, body, _| {
                if r.statements.len() == q.limit {
                    return false;
                }
                if let Some(v) = reduce(&body) {
                    let size = serde_json::to_string(&v).map(|t| t.len()).unwrap_or(0);
                    if used + size > budget {
                        r.cut = true;
                        return false;
                    }
                    used += size;
                    r.statements.push(v);
                }
                r.last = Some(seq);
                true
            })?;
            Ok(r)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database an older node wrote (no authority column, four filter
    /// indexes) opens, its statements keep their authority (read from their
    /// bodies) and are found by the filters through statement_keys.
    #[tokio::test]
    async fn an_older_database_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lms.sqlite3");
        {
            let old = SCHEMA.replace(
                "    body           TEXT NOT NULL,\n    -- IFI key of the credential that stored it (statements/read/mine, voiding).\n    authority      TEXT,\n    -- A voiding statement from a credential that may void anyone's (scope all).\n    void_any       INTEGER NOT NULL DEFAULT 0,\n    -- The id a StatementRef Object targets (voiding statements too).\n    statement_ref  TEXT\n",
                "    body           TEXT NOT NULL\n",
            );
            assert_ne!(old, SCHEMA, "the old schema differs only by the new columns");
            let c = Connection::open(&path).unwrap();
            c.execute_batch(&old).unwrap();
            let body = r#"{"id":"a","authority":{"objectType":"Agent","account":{"homePage":"https://h","name":"credential:kiosk"}}}"#;
            c.execute(
                "INSERT INTO statements (id, fingerprint, actor, verb, stored, body) VALUES ('a', x'00', 'x', 'v', 's', ?1)",
                [body],
            )
            .unwrap();
            // Version 1 found statements by four indexes; version 3 by statement_keys.
            c.execute_batch("CREATE INDEX statements_verb ON statements(verb, seq);").unwrap();
            for (id, body) in [
                (
                    "b",
                    r#"{"id":"b","actor":{"mbox":"mailto:b@x.org"},"verb":{"id":"https://v"},"object":{"id":"https://a"}}"#,
                ),
                (
                    "c",
                    r#"{"id":"c","actor":{"mbox":"mailto:c@x.org"},"verb":{"id":"https://w"},"object":{"objectType":"StatementRef","id":"B"}}"#,
                ),
            ] {
                c.execute(
                    "INSERT INTO statements (id, fingerprint, actor, verb, stored, body) VALUES (?1, x'00', 'x', 'v', 's', ?2)",
                    [id, body],
                )
                .unwrap();
            }
        }
        let store = Store::open(dir.path(), 8, None, Arc::new(Metrics::default())).unwrap();
        let found = |q: Query| {
            let store = store.clone();
            async move { store.query(Query { limit: 10, targeting: true, ..q }).await.unwrap().statements.len() }
        };
        assert_eq!(found(Query { verb: Some("https://v".into()), ..Query::default() }).await, 2);
        assert_eq!(found(Query { agent: Some("mbox:mailto:b@x.org".into()), ..Query::default() }).await, 2);
        assert_eq!(found(Query { activity: Some("https://a".into()), ..Query::default() }).await, 2);
        assert_eq!(
            store
                .query(Query { limit: 10, verb: Some("https://v".into()), ..Query::default() })
                .await
                .unwrap()
                .statements
                .len(),
            1,
            "the node's own reads leave statements targeting others out"
        );
        assert_eq!(
            store
                .read(|c| c
                    .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'statements_verb'", [], |r| r
                        .get::<_, i64>(0)))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store.authority_of("a".into()).await.unwrap().as_deref(),
            Some("account:https://h|credential:kiosk")
        );
        drop(store);
        // Opening again changes nothing.
        let store = Store::open(dir.path(), 8, None, Arc::new(Metrics::default())).unwrap();
        assert_eq!(
            store.authority_of("a".into()).await.unwrap().as_deref(),
            Some("account:https://h|credential:kiosk")
        );
    }
}
