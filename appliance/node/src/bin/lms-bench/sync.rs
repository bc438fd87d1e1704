//! Backlog drain from an edge node into a hub node (both real processes).

use crate::harness::{load, ms, wanted};
use crate::lrs::statement;
use crate::nodes::{Node, free_port};
use crate::{Bench, PASSWORD, USER};
use lms_node::client::Client;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Backlog drain from an edge node into a hub node (both real processes),
/// and learners' single-statement POST latency on the edge while it drains
/// compared with afterwards: flat out (`sync_pace = 0`, the default) and,
/// beside it, paced (`sync_pace = 1`: rest as long as each batch took
/// while learners' requests are in flight).
pub async fn drain(b: &Bench) {
    if !wanted(&b.args, "sync drain") {
        return;
    }
    for (label, extra) in [("unpaced (sync_pace = 0, default)", ""), ("paced (sync_pace = 1)", "sync_pace = 1\n")] {
        println!("-- sync drain, {label}");
        drain_once(b, label, extra).await;
    }
}

async fn drain_once(b: &Bench, label: &str, extra: &str) {
    let (args, client, auth) = (&b.args, &b.client, &b.auth);
    let tag = if extra.is_empty() { "unpaced" } else { "paced" };
    let hub_port = free_port();
    let cfg = crate::nodes::config_with(
        b,
        &format!("edge-{tag}.toml"),
        &format!(
            "upstream = \"http://127.0.0.1:{hub_port}/xapi\"\nupstream_user = \"{USER}\"\nupstream_password = \"{PASSWORD}\"\n\
             sync_enabled = true\nsync_interval = \"1s\"\noutbox_limit = 10000000\n{extra}"
        ),
    );
    let edge = Node::up(b, &b.work.path().join(format!("edge-data-{tag}")), Some(&cfg)).await;
    let edge_base = edge.base.clone();
    let mut k = 0u64;
    while (k as usize) < args.backlog {
        let batch: Vec<Value> = (0..100).map(|j| statement(&format!("s{}", (k + j) % 1000), k + j)).collect();
        k += 100;
        b.post(&format!("{edge_base}/xapi/statements"), &crate::XAPI, Value::from(batch).to_string()).await;
    }
    let status = |c: Client, a: Arc<String>, b: String| async move {
        c.get(&format!("{b}/v1/sync/status"), &[("authorization", &a)]).await.map(|r| r.json()).unwrap_or_default()
    };
    let depth0 = status(client.clone(), auth.clone(), edge_base.clone()).await["outbox_depth"].as_u64().unwrap_or(0);

    let post = |c: Client, a: Arc<String>, u: Arc<String>| {
        move |i: u64| {
            let (c, a, u) = (c.clone(), a.clone(), u.clone());
            async move {
                let body = statement(&format!("live{}", i % 1000), i).to_string();
                c.send(
                    "POST".parse().unwrap(),
                    &u,
                    &[
                        ("authorization", &a),
                        ("X-Experience-API-Version", "2.0.0"),
                        ("content-type", "application/json"),
                    ],
                    body,
                )
                .await
                .map(|r| r.status.as_u16())
            }
        }
    };
    let url = Arc::new(format!("{edge_base}/xapi/statements"));
    // The hub comes up: the edge starts draining within one sync interval.
    let hub = Node::start_on(b, hub_port, &b.work.path().join(format!("hub-data-{tag}")), None);
    // The clock starts when the hub answers (its /xapi needs no modules).
    let hub_health = format!("http://127.0.0.1:{hub_port}/healthz");
    while !client.get(&hub_health, &[]).await.is_ok_and(|r| r.status == 200) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t0 = Instant::now();
    let conc = args.concurrency.min(8);
    let during = load(args.seconds, conc, post(client.clone(), auth.clone(), url.clone())).await;
    let drained_at = loop {
        let s = status(client.clone(), auth.clone(), edge_base.clone()).await;
        if s["outbox_depth"] == 0 {
            break t0.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(t0.elapsed() < Duration::from_secs(600), "backlog never drained: {s}");
    };
    let sent = status(client.clone(), auth.clone(), edge_base.clone()).await["sent_total"].as_u64().unwrap_or(0);
    let idle = load(args.seconds, conc, post(client.clone(), auth.clone(), url.clone())).await;
    println!(
        "sync drain edge -> hub         {sent} statements (backlog {depth0}) in {:.2} s: {:.0} statements/s (from the hub answering; includes up to one 1 s backoff step)",
        drained_at.as_secs_f64(),
        sent as f64 / drained_at.as_secs_f64()
    );
    println!(
        "statement POST while draining  {:.0} req/s  p50 {} ms  p99 {} ms  ({conc} in flight, {} failed)",
        during.rps,
        ms(during.p50),
        ms(during.p99),
        during.errors
    );
    assert_eq!(during.errors + idle.errors, 0, "learners' POSTs failed: the figures would mean nothing");
    println!(
        "statement POST after draining  {:.0} req/s  p50 {} ms  p99 {} ms  -> P99 ratio draining/idle {:.2} ({label})",
        idle.rps,
        ms(idle.p50),
        ms(idle.p99),
        during.p99.as_secs_f64() / idle.p99.as_secs_f64().max(1e-9)
    );
    drop((edge, hub));
}
