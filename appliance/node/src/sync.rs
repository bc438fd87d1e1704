//! Offline-first forwarding of statements to an upstream LRS.
//!
//! Every statement stored while an upstream is configured is queued in the
//! `outbox` table in the same transaction (so an acknowledged statement is
//! already queued). This worker sends the oldest queued statements as one
//! xAPI `POST {upstream}/statements` batch, with Basic credentials and the
//! version header, and removes them from the outbox only after the upstream
//! answered 2xx: delivery is at least once, ids never change, and an LRS
//! answers a repeated id with the same statement as a no-op, so the effect is
//! exactly once.
//!
//! A batch the upstream refuses for its content (400, 409, 413, 422) is split
//! in halves until the offending statement is alone: alone, 409 means the
//! upstream already holds that id (delivered, counted as a duplicate); 400,
//! 413 or 422 set it aside in `sync_rejected` with the reason, so it never
//! blocks the queue. Every other answer says nothing about one statement:
//! 401/403 (credentials rotated), 404 (wrong URL), 408, 429, 5xx, any other
//! status, timeouts and connection errors keep the whole batch queued and
//! back off exponentially with jitter, capped at `sync_interval`, so a
//! returning link is noticed within one interval; the reason shows in
//! `/v1/sync/status` and the metrics.
//!
//! The counters of what left the outbox live in the store's [`Ledger`],
//! changed with the outbox in one commit, so a status snapshot always adds up.

use crate::client::{Client, basic_auth};
use crate::node::Node;
use crate::xapi::attachments::{self, Part};
use crate::xapi::store::{Ledger, Verdicts};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncStats {
    pub last_success: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub errors_total: u64,
    pub consecutive_failures: u32,
    pub oldest_unsent: Option<String>,
    #[serde(skip)]
    near_limit_warned: bool,
}

#[derive(Default)]
pub struct SyncState {
    stats: Mutex<SyncStats>,
}

impl SyncState {
    pub fn snapshot(&self) -> SyncStats {
        self.stats.lock().unwrap().clone()
    }
    fn update(&self, f: impl FnOnce(&mut SyncStats)) {
        f(&mut self.stats.lock().unwrap())
    }
}

/// The `Authorization` value for the upstream, from the settings.
pub fn upstream_auth(cfg: &crate::Config) -> Result<Option<String>, String> {
    let Some(user) = &cfg.upstream_user else { return Ok(None) };
    let password = match (&cfg.upstream_password, &cfg.upstream_password_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| format!("upstream_password_file {}: {e}", f.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        (None, None) => {
            return Err("upstream_user is set but neither upstream_password nor upstream_password_file".into());
        }
    };
    Ok(Some(basic_auth(user, &password)))
}

fn now() -> String {
    crate::xapi::format_stored(time::OffsetDateTime::now_utc())
}

fn age_seconds(stored: &str) -> Option<f64> {
    let t = crate::xapi::validate::parse_timestamp(stored)?;
    Some((time::OffsetDateTime::now_utc() - t).as_seconds_f64().max(0.0))
}

/// `GET /v1/sync/status` and the admin listener's copy.
pub fn status(node: &Node) -> Value {
    let s = node.sync.snapshot();
    let Ledger { depth, sent, duplicates, rejected } = node.store.ledger();
    let limit = node.store.outbox_limit();
    json!({
        "enabled": node.cfg.sync_enabled,
        "upstream": node.cfg.upstream,
        "interval_seconds": node.cfg.sync_interval.as_secs_f64(),
        "outbox_depth": depth,
        "outbox_limit": limit,
        "near_limit": limit.is_some_and(|l| depth * 10 >= l * 8),
        "oldest_unsent": s.oldest_unsent,
        "oldest_unsent_age_seconds": s.oldest_unsent.as_deref().and_then(age_seconds),
        "last_success": s.last_success,
        "last_error": s.last_error,
        "last_error_at": s.last_error_at,
        "sent_total": sent,
        "duplicates_total": duplicates,
        "rejected_total": rejected,
        "errors_total": s.errors_total,
        "consecutive_failures": s.consecutive_failures,
    })
}

/// Publishes the sync gauges and counters into the node's metrics.
pub fn publish_metrics(node: &Node) {
    if node.cfg.upstream.is_none() {
        return;
    }
    let s = node.sync.snapshot();
    let ledger = node.store.ledger();
    let m = &node.metrics;
    m.set("lms_sync_outbox_depth", "Statements queued for the upstream LRS.", "gauge", ledger.depth as f64);
    m.set(
        "lms_sync_outbox_limit",
        "Most statements the outbox may hold.",
        "gauge",
        node.store.outbox_limit().unwrap_or(0) as f64,
    );
    m.set(
        "lms_sync_oldest_unsent_age_seconds",
        "Age of the oldest statement not yet delivered upstream (0 when none).",
        "gauge",
        s.oldest_unsent.as_deref().and_then(age_seconds).unwrap_or(0.0),
    );
    let last = s
        .last_success
        .as_deref()
        .and_then(crate::xapi::validate::parse_timestamp)
        .map_or(0.0, |t| t.unix_timestamp() as f64);
    m.set("lms_sync_last_success_timestamp_seconds", "When the upstream last took a batch (Unix time).", "gauge", last);
    m.set("lms_sync_sent_total", "Statements delivered upstream.", "counter", ledger.sent as f64);
    m.set(
        "lms_sync_duplicates_total",
        "Statements the upstream already held (409), delivered.",
        "counter",
        ledger.duplicates as f64,
    );
    m.set(
        "lms_sync_rejected_total",
        "Statements the upstream refused as invalid, set aside.",
        "counter",
        ledger.rejected as f64,
    );
    m.set(
        "lms_sync_errors_total",
        "Failed upstream attempts (network, credentials, URL, 429, 5xx): the batch stays queued.",
        "counter",
        s.errors_total as f64,
    );
    m.set(
        "lms_sync_consecutive_failures",
        "Upstream attempts failed in a row (0 after a success).",
        "gauge",
        s.consecutive_failures as f64,
    );
}

type Verdict = Result<Verdicts, String>;

/// Most bytes of an upstream's answer read (10,000 ids are 400 KB).
const SYNC_ANSWER_MAX: usize = 1 << 20;

/// What an upstream answer means for the statements it was about.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Taken,
    /// About one of the statements: split the batch to find it.
    Split,
    /// Alone: the upstream holds this id already.
    Duplicate,
    /// Alone: refused for its own content; set it aside.
    Refused,
    /// About the link, the credentials or the upstream itself: keep everything queued.
    Retry(String),
}

fn classify(status: u16, alone: bool) -> Answer {
    match status {
        200..=299 => Answer::Taken,
        400 | 409 | 413 | 422 if !alone => Answer::Split,
        409 => Answer::Duplicate,
        400 | 413 | 422 => Answer::Refused,
        401 | 403 => Answer::Retry(format!(
            "HTTP {status}: the upstream refused this node's credentials (check upstream_user and upstream_password)"
        )),
        404 => Answer::Retry("HTTP 404: no xAPI statements resource there (check upstream)".into()),
        _ => Answer::Retry(format!("HTTP {status}")),
    }
}

struct Upstream {
    client: Client,
    url: String,
    auth: Option<String>,
}

impl Upstream {
    /// Sends `items`; splits on a content refusal to find the statement the upstream refuses.
    /// Statements that arrived with attachment bytes go with them
    /// (multipart/mixed): an LRS must not push statements without them.
    fn deliver<'a>(
        &'a self,
        items: &'a [(i64, String)],
        carried: &'a HashMap<i64, Vec<Part>>,
    ) -> Pin<Box<dyn Future<Output = Verdict> + Send + 'a>> {
        Box::pin(async move {
            let mut body = String::with_capacity(items.iter().map(|(_, s)| s.len() + 1).sum::<usize>() + 2);
            body.push('[');
            for (i, (_, s)) in items.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(s);
            }
            body.push(']');
            let mut parts: Vec<Part> = Vec::new();
            for p in items.iter().filter_map(|(seq, _)| carried.get(seq)).flatten() {
                attachments::push_once(&mut parts, p);
            }
            let (content_type, body) = if parts.is_empty() {
                ("application/json".to_string(), body.into_bytes())
            } else {
                attachments::multipart(&body, &parts)
            };
            let mut headers = vec![("X-Experience-API-Version", "2.0.0"), ("content-type", content_type.as_str())];
            if let Some(a) = &self.auth {
                headers.push(("authorization", a));
            }
            let r = self.client.send("POST".parse().unwrap(), &self.url, &headers, body).await?;
            let status = r.status.as_u16();
            let seqs = || items.iter().map(|(s, _)| *s).collect::<Vec<_>>();
            Ok(match classify(status, items.len() == 1) {
                Answer::Taken => Verdicts { sent: seqs(), ..Default::default() },
                Answer::Duplicate => Verdicts { duplicates: seqs(), ..Default::default() },
                Answer::Split => {
                    let (a, b) = items.split_at(items.len() / 2);
                    let mut v = self.deliver(a, carried).await?;
                    v.extend(self.deliver(b, carried).await?);
                    v
                }
                Answer::Refused => {
                    let text = r.text();
                    let reason =
                        format!("upstream answered HTTP {status}: {}", text.chars().take(300).collect::<String>());
                    Verdicts { rejected: vec![(items[0].0, reason)], ..Default::default() }
                }
                Answer::Retry(why) => return Err(format!("{}: {why}", self.url)),
            })
        })
    }
}

/// Starts the worker when sync is enabled; it stops when `stop` turns true.
pub fn spawn(node: Arc<Node>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let (Some(upstream), true) = (node.cfg.upstream.clone(), node.cfg.sync_enabled) else { return };
    let settings = upstream_auth(&node.cfg)
        .and_then(|auth| Ok((auth, lms_settings::tls::client_config(node.cfg.upstream_ca_file.as_deref())?)));
    let (auth, trust) = match settings {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "sync not started");
            node.sync.update(|s| s.last_error = Some(e));
            return;
        }
    };
    let up = Upstream {
        // An upstream's answer to a batch is its ids: a few KiB. A hub that
        // answers with a flood must not make the edge buffer it.
        client: Client::with_trust(node.cfg.sync_timeout, trust).with_max_body(SYNC_ANSWER_MAX),
        url: format!("{}/statements", upstream.trim_end_matches('/')),
        auth,
    };
    tokio::spawn(async move {
        tracing::info!(upstream = %up.url, interval = ?node.cfg.sync_interval, "sync started");
        loop {
            if *stop.borrow() {
                break;
            }
            let wait = cycle(&node, &up).await;
            publish_metrics(&node);
            if let Some(d) = wait {
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    });
}

/// One send; returns how long to wait before the next (None: go on at once).
async fn cycle(node: &Node, up: &Upstream) -> Option<Duration> {
    let interval = node.cfg.sync_interval;
    let oldest = node.store.oldest_unsent().await.ok().flatten();
    warn_near_limit(node);
    node.sync.update(|s| s.oldest_unsent = oldest.clone());
    let batch = match node.store.outbox_batch(node.cfg.sync_batch_size).await {
        Ok(b) => b,
        Err(e) => {
            node.sync.update(|s| s.last_error = Some(e.to_string()));
            return Some(interval);
        }
    };
    if batch.is_empty() {
        return Some(interval);
    }
    let carried = match node.store.attachments_at(batch.iter().map(|(seq, _)| *seq).collect()).await {
        Ok(c) => c,
        Err(e) => {
            node.sync.update(|s| s.last_error = Some(e.to_string()));
            return Some(interval);
        }
    };
    let started = std::time::Instant::now();
    match up.deliver(&batch, &carried).await {
        Ok(verdicts) => {
            for (seq, reason) in &verdicts.rejected {
                tracing::warn!(seq, %reason, "upstream refused a statement; set aside");
            }
            if let Err(e) = node.store.ack(verdicts).await {
                node.sync.update(|s| s.last_error = Some(e.to_string()));
                return Some(interval);
            }
            node.sync.update(|s| {
                s.last_success = Some(now());
                s.consecutive_failures = 0;
            });
            pace(node, started.elapsed())
        }
        Err(e) => {
            let failures = node.sync.snapshot().consecutive_failures + 1;
            tracing::warn!(error = %e, failures, "upstream unavailable; backing off");
            node.sync.update(|s| {
                s.last_error = Some(e);
                s.last_error_at = Some(now());
                s.errors_total += 1;
                s.consecutive_failures = failures;
            });
            let base = Duration::from_millis(250).saturating_mul(1 << failures.min(16));
            let capped = base.min(interval);
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            // Jitter: 80-100% of the step, so many nodes do not return in lockstep.
            Some(capped.mul_f64(0.8 + (nanos % 1000) as f64 / 5000.0))
        }
    }
}

/// The rest before the next batch: none when nobody is waiting on the
/// node; while requests are in flight, `sync_pace` times what the last
/// batch took (at most a second), so the drain yields CPU and the writer
/// to learners and goes at full speed again when they are done.
fn pace(node: &Node, took: Duration) -> Option<Duration> {
    let busy = node.in_flight.load(std::sync::atomic::Ordering::Relaxed) > 0;
    (busy && node.cfg.sync_pace > 0.0).then(|| took.mul_f64(node.cfg.sync_pace).min(Duration::from_secs(1)))
}

fn warn_near_limit(node: &Node) {
    let (Some(limit), depth) = (node.store.outbox_limit(), node.store.outbox_depth()) else { return };
    let near = depth * 10 >= limit * 8;
    let warned = node.sync.snapshot().near_limit_warned;
    if near && !warned {
        tracing::error!(
            depth,
            limit,
            "the upstream outbox is above 80% of its limit; new statements will be refused at the limit"
        );
    }
    if near != warned && (near || depth * 10 < limit * 7) {
        node.sync.update(|s| s.near_limit_warned = near);
    }
}

#[cfg(test)]
mod tests {
    use super::{Answer, classify};

    #[test]
    fn only_a_statements_own_refusal_sets_it_aside() {
        for status in [400, 413, 422] {
            assert_eq!(classify(status, false), Answer::Split, "{status}");
            assert_eq!(classify(status, true), Answer::Refused, "{status}");
        }
        assert_eq!(classify(409, false), Answer::Split);
        assert_eq!(classify(409, true), Answer::Duplicate);
        assert_eq!(classify(204, true), Answer::Taken);
        // About the link, the credentials or the URL: never a verdict on a statement.
        for status in [301, 401, 403, 404, 405, 408, 410, 429, 500, 503] {
            for alone in [false, true] {
                assert!(matches!(classify(status, alone), Answer::Retry(_)), "{status} alone={alone}");
            }
        }
        let Answer::Retry(why) = classify(401, true) else { unreachable!() };
        assert!(why.contains("upstream_password"), "{why}");
    }
}
