//! Offline-first sync to an upstream LRS: another lms-node as the hub, or a
//! scripted upstream that fails, throttles, stalls and refuses on purpose.

mod common;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::*;
use lms_node::Config;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const VERB: &str = "http://adlnet.gov/expapi/verbs/experienced";
const POISON_VERB: &str = "https://verbs.example.org/poison";

fn edge(upstream: &str, user: &str, password: &str) -> impl FnOnce(&mut Config) {
    let (upstream, user, password) = (upstream.to_string(), user.to_string(), password.to_string());
    move |c: &mut Config| {
        c.upstream = Some(upstream);
        c.upstream_user = Some(user);
        c.upstream_password = Some(password);
        c.sync_enabled = true;
        c.sync_interval = Duration::from_secs(1);
        c.sync_timeout = Duration::from_secs(2);
    }
}

/// Posts `n` statements in batches of 100; returns their ids.
async fn write(n: &TestNode, count: usize, tag: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for chunk in 0..count.div_ceil(100) {
        let batch: Vec<Value> = (0..100.min(count - chunk * 100))
            .map(|i| {
                let id = uuid();
                ids.push(id.clone());
                statement(&id, &format!("{tag}-{}", i % 37), VERB, &format!("https://a.example.org/{tag}/{chunk}/{i}"))
            })
            .collect();
        let r = n.send("POST", "/xapi/statements", Value::from(batch).to_string()).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    ids
}

async fn sync_status(n: &TestNode) -> Value {
    n.client.get(&format!("{}/v1/sync/status", n.admin), &[]).await.unwrap().json()
}

/// Waits for an empty outbox. No statement is written meanwhile, so every
/// snapshot on the way must account for the same number of statements:
/// queued, or counted once as sent, duplicate or set aside (issue 9).
async fn wait_drained(n: &TestNode, within: Duration) -> Value {
    let start = Instant::now();
    let accounted = |s: &Value| {
        ["outbox_depth", "sent_total", "duplicates_total", "rejected_total"]
            .map(|k| s[k].as_u64().unwrap())
            .iter()
            .sum::<u64>()
    };
    let mut total = None;
    loop {
        let s = sync_status(n).await;
        let t = *total.get_or_insert(accounted(&s));
        assert_eq!(accounted(&s), t, "a status snapshot that does not add up: {s}");
        if s["outbox_depth"] == 0 {
            return s;
        }
        assert!(start.elapsed() < within, "outbox not drained within {within:?}: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every statement id the node holds, by paging through GET /xapi/statements.
async fn all_ids(n: &TestNode) -> Vec<String> {
    let mut ids = Vec::new();
    let mut next = "/xapi/statements?limit=500&ascending=true".to_string();
    while !next.is_empty() {
        let page = n.get(&next).await.json();
        for s in page["statements"].as_array().unwrap() {
            ids.push(s["id"].as_str().unwrap().to_string());
        }
        next = page["more"].as_str().unwrap().to_string();
    }
    ids
}

#[tokio::test]
async fn upstream_down_for_10000_statements_then_up_delivers_each_exactly_once() {
    let port = free_port();
    let e = TestNode::start(None, edge(&format!("http://127.0.0.1:{port}/xapi"), USER, PASSWORD)).await;
    let ids = write(&e, 10_000, "down").await;
    let s = sync_status(&e).await;
    assert_eq!(s["outbox_depth"], 10_000, "{s}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = sync_status(&e).await;
    assert!(s["errors_total"].as_u64().unwrap() >= 1, "the upstream is down: {s}");
    assert!(s["oldest_unsent_age_seconds"].as_f64().unwrap() > 0.0);

    // The link returns.
    let hub = TestNode::start_at(&format!("127.0.0.1:{port}"), None, |_| {}).await;
    let started = Instant::now();
    let s = wait_drained(&e, Duration::from_secs(60)).await;
    eprintln!("drained 10000 statements in {:?}", started.elapsed());
    assert_eq!(s["sent_total"], 10_000);
    assert_eq!(s["rejected_total"], 0);

    let got = all_ids(&hub).await;
    assert_eq!(got.len(), 10_000, "the hub holds each statement once");
    assert_eq!(got.iter().collect::<BTreeSet<_>>(), ids.iter().collect::<BTreeSet<_>>());
    let metrics = hub.client.get(&hub.url("/metrics"), &[]).await.unwrap().text();
    assert!(metrics.contains("lms_statements_stored_total 10000"), "hub stored a statement twice");
    let em = e.client.get(&e.url("/metrics"), &[]).await.unwrap().text();
    assert!(em.contains("lms_sync_outbox_depth 0") && em.contains("lms_sync_sent_total 10000"), "{em}");
    e.stop().await;
    hub.stop().await;
}

#[derive(Clone, Copy, Debug)]
enum Act {
    Status(u16),
    Slow(Duration),
}

#[derive(Default)]
struct Fake {
    script: Mutex<VecDeque<Act>>,
    /// Every delivery of every id (duplicates at the transport level).
    deliveries: Mutex<HashMap<String, usize>>,
    requests: Mutex<usize>,
    /// Delay every request by this much (a slow link).
    delay: Mutex<Duration>,
    /// Answer every request with this status until cleared (a rotated password, a wrong URL).
    always: Mutex<Option<u16>>,
}

async fn fake_statements(State(f): State<Arc<Fake>>, body: axum::body::Bytes) -> axum::response::Response {
    *f.requests.lock().unwrap() += 1;
    if let Some(s) = *f.always.lock().unwrap() {
        return (StatusCode::from_u16(s).unwrap(), "not for you").into_response();
    }
    let act = f.script.lock().unwrap().pop_front();
    let delay = *f.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match act {
        Some(Act::Status(s)) => return (StatusCode::from_u16(s).unwrap(), "scripted failure").into_response(),
        Some(Act::Slow(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "expected an array").into_response();
    };
    if items.iter().any(|s| s["verb"]["id"] == POISON_VERB) {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "verb not allowed here"}))).into_response();
    }
    let mut d = f.deliveries.lock().unwrap();
    let ids: Vec<Value> = items
        .iter()
        .map(|s| {
            let id = s["id"].as_str().unwrap().to_string();
            *d.entry(id.clone()).or_default() += 1;
            Value::String(id)
        })
        .collect();
    axum::Json(ids).into_response()
}

async fn start_fake(f: Arc<Fake>, port: u16) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new().route("/xapi/statements", axum::routing::post(fake_statements)).with_state(f);
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() })
}

#[tokio::test]
async fn errors_throttling_stalls_and_a_poisoned_statement() {
    let fake = Arc::new(Fake::default());
    fake.script.lock().unwrap().extend([
        Act::Status(500),
        Act::Status(503),
        Act::Status(429),
        Act::Status(429),
        Act::Slow(Duration::from_secs(4)), // beyond the 2 s sync_timeout
    ]);
    let port = free_port();
    let _srv = start_fake(fake.clone(), port).await;
    let e = TestNode::start(None, edge(&format!("http://127.0.0.1:{port}/xapi"), USER, PASSWORD)).await;
    let mut ids = write(&e, 299, "f").await;
    let poison = uuid();
    let r = e
        .send("POST", "/xapi/statements", statement(&poison, "p", POISON_VERB, "https://a.example.org/p").to_string())
        .await;
    assert_eq!(r.status, 200);
    ids.extend(write(&e, 200, "g").await);

    let s = wait_drained(&e, Duration::from_secs(60)).await;
    assert_eq!(s["rejected_total"], 1, "{s}");
    assert!(s["errors_total"].as_u64().unwrap() >= 5, "{s}");
    assert_eq!(s["sent_total"], 499);
    let rejected = &s["rejected_recent"][0];
    assert_eq!(rejected["id"], poison);
    assert!(rejected["reason"].as_str().unwrap().contains("400"), "{rejected}");
    {
        let delivered = fake.deliveries.lock().unwrap();
        assert_eq!(delivered.len(), 499);
        assert!(ids.iter().all(|i| delivered.contains_key(i)), "a statement did not arrive");
        assert!(!delivered.contains_key(&poison));
    }
    e.stop().await;
}

/// Issue 10, case 1: a hub that refuses the edge's credentials or is at the
/// wrong URL says nothing about any one statement. Before the fix, each
/// batch was bisected down to single statements and every one set aside for
/// good, with `last_error: null`.
#[tokio::test]
async fn credentials_refused_or_wrong_url_keep_everything_queued() {
    for status in [401, 403, 404] {
        let fake = Arc::new(Fake::default());
        *fake.always.lock().unwrap() = Some(status);
        let port = free_port();
        let _srv = start_fake(fake.clone(), port).await;
        let e = TestNode::start(None, edge(&format!("http://127.0.0.1:{port}/xapi"), USER, PASSWORD)).await;
        let ids = write(&e, 10, "cred").await;
        let start = Instant::now();
        while *fake.requests.lock().unwrap() < 3 {
            assert!(start.elapsed() < Duration::from_secs(20), "HTTP {status}: the edge stopped trying");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let s = sync_status(&e).await;
        assert_eq!(s["rejected_total"], 0, "HTTP {status} set statements aside: {s}");
        assert_eq!(s["outbox_depth"], 10, "HTTP {status}: {s}");
        assert!(s["last_error"].as_str().unwrap().contains(&status.to_string()), "{s}");
        assert!(s["errors_total"].as_u64().unwrap() >= 3, "{s}");
        let em = e.client.get(&e.url("/metrics"), &[]).await.unwrap().text();
        assert!(em.contains("lms_sync_rejected_total 0") && em.contains("lms_sync_outbox_depth 10"), "{em}");
        assert!(!em.contains("lms_sync_consecutive_failures 0"), "{em}");

        // The operator fixes the password (or the URL): everything arrives.
        *fake.always.lock().unwrap() = None;
        let s = wait_drained(&e, Duration::from_secs(30)).await;
        assert_eq!((s["sent_total"].as_u64(), s["rejected_total"].as_u64()), (Some(10), Some(0)), "{s}");
        let delivered = fake.deliveries.lock().unwrap().clone();
        assert!(ids.iter().all(|i| delivered.get(i) == Some(&1)), "HTTP {status}: {delivered:?}");
        e.stop().await;
    }
}

#[tokio::test]
async fn the_outbox_limit_refuses_new_statements_and_says_so() {
    let port = free_port();
    let e = TestNode::start(None, |c| {
        edge(&format!("http://127.0.0.1:{port}/xapi"), USER, PASSWORD)(c);
        c.outbox_limit = 50;
    })
    .await;
    write(&e, 40, "x").await;
    let s = sync_status(&e).await;
    assert_eq!(s["near_limit"], true, "{s}");
    write(&e, 10, "y").await;
    let r =
        e.send("POST", "/xapi/statements", statement(&uuid(), "z", VERB, "https://a.example.org/z").to_string()).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"], "outbox_full");
    // Nothing acknowledged was dropped.
    assert_eq!(sync_status(&e).await["outbox_depth"], 50);
    assert_eq!(all_ids(&e).await.len(), 50);
    e.stop().await;
}

#[tokio::test]
async fn two_edges_sync_into_one_hub_at_once() {
    let hub = TestNode::start(None, |_| {}).await;
    let up = format!("{}/xapi", hub.base);
    let a = TestNode::start(None, edge(&up, USER, PASSWORD)).await;
    let b = TestNode::start(None, edge(&up, "other", "other-pass")).await;
    let (ia, ib) = tokio::join!(write(&a, 1000, "a"), write(&b, 1000, "b"));
    wait_drained(&a, Duration::from_secs(60)).await;
    wait_drained(&b, Duration::from_secs(60)).await;
    let got: BTreeSet<String> = all_ids(&hub).await.into_iter().collect();
    assert_eq!(got.len(), 2000);
    assert!(ia.iter().chain(&ib).all(|i| got.contains(i)));
    let sa = hub.get(&format!("/xapi/statements?statementId={}", ia[0])).await.json();
    let sb = hub.get(&format!("/xapi/statements?statementId={}", ib[0])).await.json();
    assert_eq!(sa["authority"]["account"]["name"], format!("credential:{USER}"));
    assert_eq!(sb["authority"]["account"]["name"], "credential:other");
    for n in [a, b, hub] {
        n.stop().await;
    }
}

/// An LRS must not push statements upstream without the attachment bytes
/// it received for them: they go as multipart/mixed, and the hub has them.
#[tokio::test]
async fn attachments_travel_upstream_with_their_statements() {
    use lms_node::xapi::attachments::{Part, multipart};
    let hub = TestNode::start(None, |_| {}).await;
    let e = TestNode::start(None, edge(&format!("{}/xapi", hub.base), USER, PASSWORD)).await;
    let essay = axum::body::Bytes::from_static(b"an essay, written offline");
    let sha2 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&essay));
    let with = uuid();
    let mut s = statement(&with, "ann", VERB, "https://a.example.org/essay");
    s["attachments"] = json!([{"usageType": "https://u/essay", "display": {"en": "essay"},
        "contentType": "text/plain", "length": essay.len(), "sha2": sha2}]);
    let without = uuid();
    let batch = json!([s, statement(&without, "ann", VERB, "https://a.example.org/plain")]);
    let (ct, body) = multipart(
        &batch.to_string(),
        &[Part { sha2: sha2.clone(), content_type: "text/plain".into(), bytes: essay.clone() }],
    );
    let auth = lms_node::client::basic_auth(USER, PASSWORD);
    let r = e
        .client
        .send(
            "POST".parse().unwrap(),
            &e.url("/xapi/statements"),
            &[("authorization", &auth), XAPI, ("content-type", &ct)],
            body,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    wait_drained(&e, Duration::from_secs(30)).await;
    let parts = parts_of(&hub.get(&format!("/xapi/statements?statementId={with}&attachments=true")).await).await;
    assert_eq!(parts.len(), 2, "the statement and its attachment");
    assert_eq!(parts[1].1, essay.to_vec());
    assert_eq!(hub.get(&format!("/xapi/statements?statementId={without}")).await.status, 200);
    for n in [e, hub] {
        n.stop().await;
    }
}

#[tokio::test]
async fn sync_settings_are_checked() {
    let mut c = Config { sync_enabled: true, ..Config::default() };
    assert!(c.validate().unwrap_err().to_string().contains("no upstream"));
    c.upstream = Some("ftp://x".into());
    assert!(c.validate().unwrap_err().to_string().contains("upstream"));
    c.upstream = Some("http://hub/xapi".into());
    c.validate().unwrap();
    c.upstream_user = Some("edge".into());
    assert!(lms_node::sync::upstream_auth(&c).unwrap_err().contains("upstream_password"));
}

/// Issue 10, case 6: a hub answering 200 with a 3 GiB body made the edge
/// buffer all of it (3.2 GB in 2 s, every cycle). The edge now reads at most
/// 1 MiB of an answer, keeps the batch queued and says why.
#[tokio::test]
async fn a_hub_answering_with_a_flood_is_not_buffered() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let written = Arc::new(AtomicU64::new(0));
    let most = Arc::new(AtomicU64::new(0));
    let (w, m) = (written.clone(), most.clone());
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let (w, m) = (w.clone(), m.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 16];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3221225472\r\n\r\n").await;
                let chunk = vec![b'['; 1 << 16];
                let mut this = 0u64;
                while s.write_all(&chunk).await.is_ok() {
                    this += chunk.len() as u64;
                    w.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    m.fetch_max(this, Ordering::Relaxed);
                    if this > 4 << 30 {
                        break;
                    }
                }
            });
        }
    });
    let e = TestNode::start(None, edge(&format!("http://127.0.0.1:{port}/xapi"), USER, PASSWORD)).await;
    write(&e, 5, "flood").await;
    let start = Instant::now();
    let s = loop {
        let s = sync_status(&e).await;
        if s["errors_total"].as_u64().unwrap() >= 2 {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(s["last_error"].as_str().unwrap().contains("larger than"), "{s}");
    assert_eq!(s["outbox_depth"], 5, "{s}");
    let most = most.load(Ordering::Relaxed);
    eprintln!("the flooding hub got {most} bytes out per answer at most");
    assert!(most < 32 << 20, "the edge read {most} bytes of one answer");
    e.stop().await;
}

/// A self-signed certificate for 127.0.0.1, written as (cert.pem, key.pem).
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

/// Issue 10, case 2: an edge could only reach its hub over http://, so
/// credentials and learners' records crossed the network in clear text.
/// Now the hub serves HTTPS (tls_cert, tls_key) and the edge trusts it
/// through a pinned private CA (upstream_ca_file); a client that does not
/// trust the certificate gets nowhere.
#[tokio::test]
async fn an_edge_syncs_to_an_https_hub_it_trusts_by_a_pinned_ca() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path());
    let (c2, k2) = (cert.clone(), key.clone());
    let hub = TestNode::start(None, move |c| {
        c.tls_cert = Some(c2);
        c.tls_key = Some(k2);
    })
    .await;
    let https = hub.base.replace("http://", "https://");
    // The default trust (Mozilla's roots) does not know this certificate.
    let e = lms_node::client::Client::new(Duration::from_secs(5)).get(&format!("{https}/healthz"), &[]).await;
    assert!(e.is_err(), "{e:?}");
    // Plain HTTP to a TLS listener gets no answer either.
    assert!(hub.client.get(&format!("{}/healthz", hub.base), &[]).await.is_err());

    let up = format!("{https}/xapi");
    let ca = cert.clone();
    let edge_node = TestNode::start(None, move |c| {
        edge(&up, USER, PASSWORD)(c);
        c.upstream_ca_file = Some(ca);
    })
    .await;
    let ids = write(&edge_node, 50, "tls").await;
    let s = wait_drained(&edge_node, Duration::from_secs(30)).await;
    assert_eq!(s["sent_total"], 50, "{s}");
    let trusting = lms_node::client::Client::with_trust(
        Duration::from_secs(5),
        lms_settings::tls::client_config(Some(&cert)).unwrap(),
    );
    let auth = lms_node::client::basic_auth(USER, PASSWORD);
    let r = trusting
        .get(&format!("{https}/xapi/statements?statementId={}", ids[0]), &[("authorization", &auth), XAPI])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    edge_node.stop().await;
    hub.stop().await;
}

#[tokio::test]
async fn tls_and_upstream_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config { tls_cert: Some(dir.path().join("missing.pem")), ..Config::default() };
    assert!(c.validate().unwrap_err().to_string().contains("tls_key"));
    c.tls_key = Some(dir.path().join("missing-key.pem"));
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("tls_cert") && e.contains("missing.pem"), "{e}");
    let c = Config { upstream: Some("https://hub.example.org/xapi".into()), ..Config::default() };
    c.validate().unwrap();
    let c = Config { upstream: Some("htps://typo".into()), ..Config::default() };
    assert!(c.validate().unwrap_err().to_string().contains("upstream"));
    let c = Config { upstream_ca_file: Some(dir.path().join("nope.pem")), ..Config::default() };
    assert!(c.validate().unwrap_err().to_string().contains("upstream_ca_file"));
}
