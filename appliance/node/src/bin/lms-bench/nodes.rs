//! The nodes under test: real `lms-node` processes on loopback ports, and
//! the in-process baselines (a native lesson handler, the module host).

use crate::harness::ms;
use crate::{Bench, LESSON, PASSWORD, USER};
use lms_node::client::basic_auth;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running `lms-node serve`; killed when dropped.
pub struct Node {
    child: std::process::Child,
    pub base: String,
}

impl Node {
    /// Starts a node on `port` with its own data directory and, when given,
    /// a settings file (else the bench's `--config`).
    pub fn start_on(b: &Bench, port: u16, data: &Path, config: Option<&Path>) -> Node {
        Node::start_serving(b, port, data, config, &b.content)
    }

    /// The same, serving the content pack `content`.
    pub fn start_serving(b: &Bench, port: u16, data: &Path, config: Option<&Path>, content: &Path) -> Node {
        let mut cmd = std::process::Command::new(&b.exe);
        cmd.arg("serve");
        if let Some(c) = config.or(b.args.config.as_deref()) {
            cmd.arg("--config").arg(c);
        }
        cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--admin-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data)
            .arg("--modules")
            .arg(&b.args.modules)
            .arg("--content")
            .arg(content)
            .arg("--credentials")
            .arg(&b.creds)
            .env("LMS_LOG", "warn")
            .stdout(std::process::Stdio::null());
        let child = cmd.spawn().expect("starting lms-node");
        Node { child, base: format!("http://127.0.0.1:{port}") }
    }

    /// Starts a node and waits until it is ready.
    pub async fn up(b: &Bench, data: &Path, config: Option<&Path>) -> Node {
        Node::up_serving(b, data, config, &b.content).await
    }

    /// The same, serving the content pack `content`.
    pub async fn up_serving(b: &Bench, data: &Path, config: Option<&Path>, content: &Path) -> Node {
        let node = Node::start_serving(b, free_port(), data, config, content);
        node.ready(b, Instant::now()).await;
        node
    }

    /// Waits for /readyz; answers the time since `started`.
    pub async fn ready(&self, b: &Bench, started: Instant) -> Duration {
        loop {
            if b.client.get(&format!("{}/readyz", self.base), &[]).await.is_ok_and(|r| r.status == 200) {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            assert!(started.elapsed() < Duration::from_secs(120), "node never became ready");
        }
    }

    pub fn url(&self, path: &str) -> Arc<String> {
        Arc::new(format!("{}{path}", self.base))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A settings file: the bench's `--config` (if any) followed by `extra`.
pub fn config_with(b: &Bench, name: &str, extra: &str) -> PathBuf {
    let mut text = b.args.config.as_ref().map(|c| std::fs::read_to_string(c).unwrap()).unwrap_or_default();
    text.push('\n');
    text.push_str(extra);
    let path = b.work.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Process start to /readyz, cold (compiles modules) and warm (cached code).
pub async fn process_start(b: &Bench, data: &Path) {
    for label in ["cold (compile)", "warm (cached code)"] {
        let t = Instant::now();
        let node = Node::start_on(b, free_port(), data, None);
        let d = node.ready(b, t).await;
        println!("process start to /readyz     {label}: {} ms", ms(d));
    }
}
/// A native handler serving the same lesson document the catalog module
/// serves, with the same auth check and ETag: the baseline for wasm overhead.
pub async fn native_server(b: &Bench) -> String {
    use axum::http::{HeaderMap, StatusCode, header};
    let pack = b.courses();
    let doc = Arc::new(serde_json::to_vec(&pack["docs"]["lesson/arithmetic/fractions"]).unwrap());
    let expected = Arc::new(basic_auth(USER, PASSWORD));
    let app = axum::Router::new().route(
        LESSON,
        axum::routing::get(move |headers: HeaderMap| {
            let (doc, expected) = (doc.clone(), expected.clone());
            async move {
                if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
                    return Err(StatusCode::UNAUTHORIZED);
                }
                let mut h: u64 = 0xcbf29ce484222325;
                for b in doc.iter() {
                    h ^= *b as u64;
                    h = h.wrapping_mul(0x100000001b3);
                }
                Ok((
                    [
                        (header::ETAG, format!("\"{h:016x}\"")),
                        (header::CACHE_CONTROL, "public, max-age=300".to_string()),
                        (header::CONTENT_TYPE, "application/json".to_string()),
                    ],
                    doc.to_vec(),
                ))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Loads the modules through the node's own host, then measures what a
/// request pays before the module runs.
pub fn cold_start(modules: &Path, cache: &Path) {
    use lms_node::metrics::Metrics;
    use lms_node::wasm::{Host, Limits};
    let metrics = Arc::new(Metrics::default());
    let limits =
        Limits { timeout: Duration::from_secs(1), memory_bytes: 64 << 20, instances: 64, portable_code: false };
    let host = Host::new(limits, Some(lms_node::wasm::CodeCache::open(cache, None).unwrap()), metrics.clone()).unwrap();
    let t = Instant::now();
    host.load(modules, None).expect("load");
    let compile = t.elapsed();
    let mut cached = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        host.load(modules, None).expect("load");
        cached.push(t.elapsed());
    }
    cached.sort();
    let set = host.load(modules, None).unwrap();
    let req = lms_abi::Request {
        op: "list_courses".into(),
        params: Default::default(),
        query: Default::default(),
        body: None,
        if_none_match: None,
        statements: vec![],
        facts: None,
        ctx: lms_abi::Context {
            cache_ttl: 300,
            actor: None,
            now: "2026-01-01T00:00:00Z".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            language: None,
            csrf: None,
        },
    };
    let before = metrics.render();
    let mut calls = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        host.call(&set, "catalog", &req).unwrap();
        calls.push(t.elapsed());
    }
    calls.sort();
    let inst = instantiation_mean(&metrics.render(), "catalog").unwrap_or_default();
    let _ = before;
    println!(
        "module cold start            load {} modules: compile {} ms, from precompiled cache median {} ms (incl. self-tests)",
        set.manifest.modules.len(),
        ms(compile),
        ms(cached[cached.len() / 2])
    );
    println!(
        "module call (in process)     instantiate mean {:.1} us; full call (instantiate + list_courses) p50 {:.1} us p99 {:.1} us",
        inst.as_secs_f64() * 1e6,
        calls[calls.len() / 2].as_secs_f64() * 1e6,
        calls[calls.len() * 99 / 100].as_secs_f64() * 1e6
    );
    course_render(&host, &set, req);
}

/// What a course page costs the web module: the whole page rendered for one
/// reader (every request before the outline was shared) against only the
/// reader's marks (what a course page costs when its marks are not kept).
fn course_render(host: &lms_node::wasm::Host, set: &lms_node::wasm::ModuleSet, mut req: lms_abi::Request) {
    let progress = serde_json::json!({
        "course": "arithmetic", "lessons_total": 8, "lessons_completed": 1, "completed_lessons": ["place-value"],
        "percent_complete": 12.5, "quizzes": [{"quiz": "arithmetic-check", "attempts": 1, "best_scaled_score": 0.4}],
        "last_activity": "2026-12-06T06:40:00.000Z",
    });
    req.params.insert("course".into(), "arithmetic".into());
    req.ctx.language = Some("zh-CN".into());
    req.ctx.csrf = Some("bench-csrf-0123456789".into());
    let mut p50 = |op: &str, body: serde_json::Value| {
        req.op = op.into();
        req.body = Some(body);
        let mut t: Vec<Duration> = (0..1000)
            .map(|_| {
                let start = Instant::now();
                let r = host.call(set, "web", &req).unwrap();
                assert_eq!(r.status, 200, "{op}: {}", r.body.get());
                start.elapsed()
            })
            .collect();
        t.sort();
        t[t.len() / 2].as_secs_f64() * 1e6
    };
    let person = serde_json::json!({"id": "bench", "name": "Bench", "role": "learner"});
    let whole = p50("course", serde_json::json!({"person": person, "progress": progress}));
    let marks = p50("course_marks", serde_json::json!({"progress": progress}));
    println!(
        "course page render (web)     whole page for one reader p50 {whole:.1} us; the reader's marks only p50 {marks:.1} us ({:.0}%)",
        marks / whole * 100.0
    );
}

fn instantiation_mean(text: &str, module: &str) -> Option<Duration> {
    let find = |suffix: &str| -> Option<f64> {
        let key = format!("lms_module_instantiation_seconds_{suffix}{{module=\"{module}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&key)).and_then(|v| v.parse().ok())
    };
    let (sum, count) = (find("sum")?, find("count")?);
    (count > 0.0).then(|| Duration::from_secs_f64(sum / count))
}
