//! kill -9 of a real lms-node process in the middle of an upstream batch:
//! after a restart the upstream still ends with every statement exactly once.

mod common;
use common::*;
use lms_node::client::{Client, basic_auth};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An upstream that stores a batch at once but answers late (so the node
/// dies between the upstream taking a batch and the node hearing so), and
/// remembers every id it received.
async fn slow_upstream(
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    delay: Arc<Mutex<Duration>>,
    arrived: Arc<std::sync::atomic::AtomicUsize>,
) {
    let app = axum::Router::new().route(
        "/xapi/statements",
        axum::routing::post(move |body: axum::body::Bytes| {
            let (seen, delay, arrived) = (seen.clone(), delay.clone(), arrived.clone());
            async move {
                // Store first, answer late: the worst case for the sender,
                // whose batch is in the upstream but not yet acknowledged.
                let items: Vec<Value> = serde_json::from_slice(&body).unwrap();
                let ids: Vec<String> = items.iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
                seen.lock().unwrap().extend(ids.iter().cloned());
                arrived.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let d = *delay.lock().unwrap();
                tokio::time::sleep(d).await;
                axum::Json(ids)
            }
        }),
    );
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
}

#[tokio::test]
async fn kill_9_mid_batch_then_restart_is_still_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    write_credentials(&dir.path().join("htpasswd"));
    let up_port = free_port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let delay = Arc::new(Mutex::new(Duration::from_millis(1500)));
    let arrived = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    slow_upstream(up_port, seen.clone(), delay.clone(), arrived.clone()).await;
    std::fs::write(
        dir.path().join("node.toml"),
        format!(
            "upstream = \"http://127.0.0.1:{up_port}/xapi\"\nupstream_user = \"edge\"\nupstream_password = \"x\"\n\
             sync_enabled = true\nsync_interval = \"1s\"\nsync_batch_size = 200\nsync_timeout = \"10s\"\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new(Duration::from_secs(20));
    let auth = basic_auth(USER, PASSWORD);
    let mut child = spawn_node(dir.path(), port);
    let start = Instant::now();
    while client.get(&format!("{base}/healthz"), &[]).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ids = Vec::new();
    for _ in 0..5 {
        let batch: Vec<Value> = (0..100)
            .map(|i| {
                let id = uuid();
                ids.push(id.clone());
                statement(&id, "k", "https://verbs/v", &format!("https://a/{i}"))
            })
            .collect();
        let r = client
            .send(
                "POST".parse().unwrap(),
                &format!("{base}/xapi/statements"),
                &[("authorization", &auth), XAPI, ("content-type", "application/json")],
                Value::from(batch).to_string(),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200);
    }
    // Wait until a batch is in flight at the slow upstream, then kill -9.
    let start = Instant::now();
    while arrived.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < Duration::from_secs(20), "no batch was sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    *delay.lock().unwrap() = Duration::ZERO;

    let mut child = spawn_node(dir.path(), port);
    let start = Instant::now();
    loop {
        let r = client.get(&format!("{base}/v1/sync/status"), &[("authorization", &auth)]).await;
        if let Ok(r) = r
            && r.status == 200
            && r.json()["outbox_depth"] == 0
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "outbox not drained after restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let seen = seen.lock().unwrap();
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), 500, "every statement reached the upstream");
    assert!(ids.iter().all(|i| distinct.contains(i)));
    // The batch cut by the kill was sent again with the same ids, so an LRS
    // keeps one copy of each (the hub test checks that on lms-node itself).
    assert!(seen.len() > 500, "the batch cut by the kill was not re-sent: {} deliveries", seen.len());
}
