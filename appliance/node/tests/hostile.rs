//! Hostile clients against a real node on 127.0.0.1 (issue 10): each test
//! is one attack as it was reproduced, and what the node must do instead.

mod common;
use common::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes (or `within` passes); returns what arrived
/// and whether the peer closed.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// Case 3, slowloris: 1,100 half-sent requests used every file descriptor
/// lms-node had, and /healthz, xAPI and the admin listener stopped answering.
/// Now: connections past the cap get 503 at once, half-sent headers are cut
/// off after `header_timeout`, and the admin listener has its own connections.
#[tokio::test]
async fn half_sent_requests_neither_exhaust_the_node_nor_lock_out_the_admin() {
    let n = TestNode::start(None, |c| {
        c.max_connections = 40;
        c.header_timeout = Duration::from_secs(1);
    })
    .await;
    let public = addr(&n.base);
    let mut held = Vec::new();
    for _ in 0..60 {
        let mut s = TcpStream::connect(&public).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: edge\r\nX-Slow: ").await.unwrap();
        held.push(s);
    }
    let t = Instant::now();
    // The operator still gets in.
    let r = n.client.get(&format!("{}/healthz", n.admin), &[]).await.unwrap();
    assert_eq!(r.status, 200);
    let r = n.client.get(&format!("{}/v1/sync/status", n.admin), &[]).await.unwrap();
    assert_eq!(r.status, 200);
    // A public connection past the cap is told so, not left hanging.
    let mut extra = TcpStream::connect(&public).await.unwrap();
    extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n").await.unwrap();
    let (answer, closed) = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503") && answer.contains("too_many_connections"), "{answer}");
    assert!(closed);

    // Every half-sent request is cut off after the header timeout.
    let mut cut = 0;
    for s in &mut held {
        let (_, closed) = read_until_closed(s, Duration::from_secs(5)).await;
        cut += closed as usize;
    }
    assert_eq!(cut, held.len(), "half-sent requests kept their connections");
    eprintln!("{} half-sent connections cut within {:?}", held.len(), t.elapsed());
    drop(held);
    // And the public side answers again.
    let start = Instant::now();
    loop {
        match n.client.get(&n.url("/healthz"), &[]).await {
            Ok(r) if r.status == 200 => break,
            other => assert!(start.elapsed() < Duration::from_secs(5), "public listener did not recover: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    n.stop().await;
}

/// Idle keep-alive connections are closed after the header timeout too.
#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let n = TestNode::start(None, |c| c.header_timeout = Duration::from_secs(1)).await;
    let mut s = TcpStream::connect(addr(&n.base)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n").await.unwrap();
    let t = Instant::now();
    let (answer, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed && t.elapsed() < Duration::from_secs(4), "idle connection kept for {:?}", t.elapsed());
    n.stop().await;
}

/// Case 9, metrics label flood: 20k requests with unique 1 KB methods made
/// `/metrics` 390 MB for good. Made-up methods now share the label `other`.
#[tokio::test]
async fn made_up_methods_do_not_grow_metrics() {
    let n = TestNode::start(None, |_| {}).await;
    let before = n.client.get(&n.url("/metrics"), &[]).await.unwrap().text().len();
    for i in 0..300 {
        let mut s = TcpStream::connect(addr(&n.base)).await.unwrap();
        let method = format!("M{i:0>1000}");
        s.write_all(format!("{method} /healthz HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let _ = read_until_closed(&mut s, Duration::from_secs(5)).await;
    }
    let text = n.client.get(&n.url("/metrics"), &[]).await.unwrap().text();
    assert!(!text.contains("M0000"), "a made-up method became a label");
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(text.len() < before + 4096, "/metrics grew from {before} to {} bytes", text.len());
    n.stop().await;
}
