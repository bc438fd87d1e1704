//! The store's writer thread: the one connection that writes, committing
//! whatever jobs are waiting as one transaction (group commit), each job in
//! its own savepoint; and the checkpointer that copies the WAL back.

use super::store::{Ledger, OutboxConfig, StoreError, Verdicts, db_err};
use super::{Prepared, documents, keys};
use crate::metrics::Metrics;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;

pub(super) enum Job {
    Write {
        batch: Vec<Prepared>,
        reply: oneshot::Sender<Result<usize, StoreError>>,
    },
    Ping {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// A State / Activity Profile / Agent Profile write.
    Document {
        write: Box<documents::Write>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Sync's verdicts: delivered rows leave the outbox; rejected ones leave
    /// it for `sync_rejected`, with the reason.
    Ack {
        verdicts: Verdicts,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// Copies the WAL back into the database with PASSIVE checkpoints on its own
/// connection, so commits never wait for checkpoint I/O. PASSIVE never blocks
/// the writer or readers; the WAL restarts from its beginning once a
/// checkpoint has caught up.
pub(super) fn checkpointer(path: &Path, alive: mpsc::Receiver<()>) {
    let Ok(conn) = Connection::open(path) else { return };
    let _ = conn.busy_timeout(std::time::Duration::from_millis(100));
    loop {
        match alive.recv_timeout(std::time::Duration::from_millis(250)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "checkpoint skipped");
        }
    }
}

pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) metrics: Arc<Metrics>,
    pub(super) path: PathBuf,
    pub(super) outbox: Option<OutboxConfig>,
    pub(super) ledger: Arc<Mutex<Ledger>>,
    pub(super) voids: Arc<AtomicU64>,
}

/// What one job's savepoint produced, before the commit decides its fate.
enum Outcome {
    Wrote { new: usize, queued: u64, voided: bool },
    Acked { left: Ledger },
    Failed(StoreError),
    Done,
}

impl Writer {
    pub(super) fn run(mut self, rx: mpsc::Receiver<Job>, max: usize) {
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            while jobs.len() < max {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            self.commit_group(jobs);
        }
        // All senders are gone: the node is shutting down. Fold the WAL back
        // in so the next start opens a compact database.
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    fn commit_group(&mut self, jobs: Vec<Job>) {
        let err = db_err(&self.path);
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE").map_err(&err) {
            reply_all(jobs, e);
            return;
        }
        let mut outcomes = Vec::with_capacity(jobs.len());
        // Depth as it will be if this group commits, for the outbox limit.
        let mut depth = self.ledger.lock().unwrap().depth;
        for job in &jobs {
            let outcome = match job {
                Job::Ping { .. } => Outcome::Done,
                Job::Document { write, .. } => match documents::apply(&self.conn, write) {
                    Ok(Ok(())) => Outcome::Done,
                    Ok(Err(refused)) => Outcome::Failed(refused.into()),
                    Err(e) => {
                        let e = err(e);
                        let _ = self.conn.execute_batch("ROLLBACK");
                        tracing::error!(error = %e, "document write failed; the group is rolled back");
                        reply_all(jobs, e);
                        return;
                    }
                },
                Job::Write { batch, .. } => match self.outbox {
                    Some(o) if depth + batch.len() as u64 > o.limit => {
                        Outcome::Failed(StoreError::OutboxFull { depth, limit: o.limit })
                    }
                    _ => match write_batch(&self.conn, batch, self.outbox.is_some()) {
                        Ok((new, voided)) => {
                            let queued = if self.outbox.is_some() { new as u64 } else { 0 };
                            depth += queued;
                            Outcome::Wrote { new, queued, voided }
                        }
                        Err(WriteErr::Conflict(id)) => Outcome::Failed(StoreError::Conflict { id }),
                        Err(WriteErr::Db(e)) => {
                            // Part of this request may be written: the whole
                            // group is rolled back and every job refused.
                            let e = err(e);
                            let _ = self.conn.execute_batch("ROLLBACK");
                            tracing::error!(error = %e, "write failed; the group is rolled back");
                            reply_all(jobs, e);
                            return;
                        }
                    },
                },
                Job::Ack { verdicts, .. } => match ack(&self.conn, verdicts) {
                    Ok(left) => {
                        depth = depth.saturating_sub(left.sent + left.duplicates + left.rejected);
                        Outcome::Acked { left }
                    }
                    Err(e) => Outcome::Failed(err(e)),
                },
            };
            outcomes.push(outcome);
        }
        let t = Instant::now();
        let committed = self.conn.execute_batch("COMMIT").map_err(&err);
        self.metrics.db_commit.observe(t.elapsed());
        if let Err(e) = committed {
            let _ = self.conn.execute_batch("ROLLBACK");
            tracing::error!(error = %e, "group commit failed; every write in it is refused");
            reply_all(jobs, e);
            return;
        }
        let mut stored = 0;
        if outcomes.iter().any(|o| matches!(o, Outcome::Wrote { voided: true, .. })) {
            self.voids.fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        {
            // One lock for the whole group: readers see it before or after.
            let mut ledger = self.ledger.lock().unwrap();
            for o in &outcomes {
                match o {
                    Outcome::Wrote { new, queued, .. } => {
                        stored += *new as u64;
                        ledger.apply(*queued, Ledger::default());
                    }
                    Outcome::Acked { left } => ledger.apply(0, *left),
                    _ => {}
                }
            }
        }
        self.metrics.statements_stored.fetch_add(stored, Relaxed);
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            let result = match &outcome {
                Outcome::Failed(e) => Err(e.clone()),
                _ => Ok(()),
            };
            match job {
                Job::Write { reply, .. } => drop(reply.send(match outcome {
                    Outcome::Wrote { new, .. } => Ok(new),
                    _ => result.map(|_| 0),
                })),
                Job::Ping { reply } | Job::Ack { reply, .. } | Job::Document { reply, .. } => drop(reply.send(result)),
            }
        }
    }
}

fn reply_all(jobs: Vec<Job>, e: StoreError) {
    for job in jobs {
        match job {
            Job::Write { reply, .. } => drop(reply.send(Err(e.clone()))),
            Job::Ping { reply } | Job::Ack { reply, .. } | Job::Document { reply, .. } => {
                drop(reply.send(Err(e.clone())))
            }
        }
    }
}

/// Removes the verdicts' rows from the outbox and counts each row that
/// actually left (a row acknowledged twice counts once), in the totals too.
fn ack(conn: &Connection, v: &Verdicts) -> rusqlite::Result<Ledger> {
    let mut del = conn.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?;
    let mut aside =
        conn.prepare_cached("INSERT OR REPLACE INTO sync_rejected (seq, reason, at) VALUES (?1, ?2, ?3)")?;
    let now = super::format_stored(time::OffsetDateTime::now_utc());
    let mut left = Ledger::default();
    for seq in &v.sent {
        left.sent += del.execute([seq])? as u64;
    }
    for seq in &v.duplicates {
        left.duplicates += del.execute([seq])? as u64;
    }
    for (seq, reason) in &v.rejected {
        let n = del.execute([seq])? as u64;
        if n > 0 {
            aside.execute(params![seq, reason, now])?;
        }
        left.rejected += n;
    }
    conn.prepare_cached(
        "UPDATE sync_totals SET sent = sent + ?1, duplicates = duplicates + ?2, rejected = rejected + ?3 WHERE id = 1",
    )?
    .execute(params![left.sent as i64, left.duplicates as i64, left.rejected as i64])?;
    Ok(left)
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

/// One request's statements: all or none. The writer thread is the only
/// writer, so checking every id first and then inserting cannot race; that
/// spares a savepoint per request (whose page copies dominated batch writes).
/// A database error here aborts the whole group (see `commit_group`).
fn write_batch(conn: &Connection, batch: &[Prepared], queue: bool) -> Result<(usize, bool), WriteErr> {
    let mut existing = conn.prepare_cached("SELECT fingerprint FROM statements WHERE id = ?1")?;
    for p in batch {
        let fp: Option<Vec<u8>> = existing.query_row([&p.id], |r| r.get(0)).optional()?;
        if fp.is_some_and(|fp| fp != p.fingerprint) {
            return Err(WriteErr::Conflict(p.id.clone()));
        }
    }
    insert_all(conn, batch, queue)
}

/// Inserts the batch; returns how many were new and whether a stored
/// statement was voided.
fn insert_all(conn: &Connection, batch: &[Prepared], queue: bool) -> Result<(usize, bool), WriteErr> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO statements (id, fingerprint, actor, verb,
                                 voiding_target, voided, stored, body, authority, void_any, statement_ref)
         VALUES (?1, ?2, ?3, ?4, ?5,
                 EXISTS (SELECT 1 FROM statements
                         WHERE voiding_target = ?1 AND (void_any = 1 OR authority = ?8)),
                 ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(id) DO NOTHING",
    )?;
    // Only the statement's own authority, or a credential with scope `all`,
    // voids it (a statement voiding one it may not is stored, and voids nothing).
    let mut void = conn.prepare_cached(
        "UPDATE statements SET voided = 1
         WHERE id = ?1 AND voiding_target IS NULL AND (?2 = 1 OR authority = ?3)",
    )?;
    let mut enqueue = conn.prepare_cached("INSERT INTO outbox (seq) VALUES (?1)")?;
    let mut blob = conn.prepare_cached(
        "INSERT INTO attachments (sha2, content_type, body) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    )?;
    let mut delivered =
        conn.prepare_cached("INSERT OR IGNORE INTO statement_attachments (seq, sha2) VALUES (?1, ?2)")?;
    let (mut new, mut voided) = (0, false);
    for p in batch {
        if let Some(q) = &p.unless_found
            && !super::query::run_query(conn, q)?.statements.is_empty()
        {
            continue; // already stored (`once`): nothing to add
        }
        let n = insert.execute(params![
            p.id,
            &p.fingerprint[..],
            p.actor,
            p.verb,
            p.voiding_target,
            p.stored,
            p.body,
            p.authority,
            p.void_any,
            p.statement_ref
        ])?;
        if n == 0 {
            continue; // the same statement again (checked above): changes nothing
        }
        new += 1;
        let seq = conn.last_insert_rowid();
        keys::write(conn, seq, &p.id, &p.keys)?;
        if queue {
            enqueue.execute([seq])?;
        }
        for a in &p.attachments {
            blob.execute(params![a.sha2, a.content_type, &a.bytes[..]])?;
            delivered.execute(params![seq, a.sha2])?;
        }
        if let Some(target) = &p.voiding_target {
            voided |= void.execute(params![target, p.void_any, p.authority])? > 0;
        }
    }
    Ok((new, voided))
}
