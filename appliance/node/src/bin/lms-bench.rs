//! `lms-bench`: the load benchmark an operator runs on their own hardware.
//!
//! Starts a real `lms-node` process (the binary next to this one) on a free
//! loopback port with a fresh data directory, drives it over HTTP/1.1
//! keep-alive from this process, and prints requests/s and P50/P99/P999 per
//! scenario, the same lesson served by a native handler (no wasm) for the
//! wasm overhead, module cold start and process start to /readyz.
//! With `--url` it drives an existing node instead (cold start and process
//! start are then measured locally only).

use clap::Parser;
use lms_node::client::{Client, basic_auth};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "LMS node load benchmark")]
struct Args {
    /// Module directory (as `cargo xtask modules` writes it).
    #[arg(long)]
    modules: PathBuf,
    /// Seconds per run of each scenario.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Runs per scenario; the median run is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Concurrent requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Only scenarios whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Statements in the sync backlog drained from an edge node into a hub.
    #[arg(long, default_value_t = 50_000)]
    backlog: usize,
    /// Settings file for the benchmarked nodes (e.g. `portable_module_code = true`, as on the appliance).
    #[arg(long)]
    config: Option<PathBuf>,
}

const USER: &str = "bench";
const PASSWORD: &str = "bench-password";
const LESSON: &str = "/v1/courses/arithmetic/lessons/fractions";

struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
    p999: Duration,
    errors: u64,
}

fn pct(sorted: &[u32], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    Duration::from_micros(sorted[i] as u64)
}

/// Drives `make` for `secs` with `conc` requests in flight.
async fn load<F, Fut>(secs: u64, conc: usize, make: F) -> Run
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<u16, String>> + Send,
{
    let make = Arc::new(make);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..conc {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            let mut i = w as u64 * 1_000_000_000;
            while Instant::now() < deadline {
                let t = Instant::now();
                match make(i).await {
                    Ok(s) if s < 400 => lat.push(t.elapsed().as_micros() as u32),
                    _ => errors += 1,
                }
                i += 1;
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    Run { rps: all.len() as f64 / elapsed, p50: pct(&all, 0.5), p99: pct(&all, 0.99), p999: pct(&all, 0.999), errors }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn scenario<F, Fut>(args: &Args, name: &str, per_request: f64, make: F)
where
    F: Fn(u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<u16, String>> + Send,
{
    if args.only.as_deref().is_some_and(|o| !name.contains(o)) {
        return;
    }
    let mut runs = Vec::new();
    for _ in 0..args.runs {
        runs.push(load(args.seconds, args.concurrency, make.clone()).await);
    }
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let all_rps: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.rps)).collect();
    let m = &runs[runs.len() / 2];
    let unit = if per_request > 1.0 { format!(" ({:.0} statements/s)", m.rps * per_request) } else { String::new() };
    println!(
        "{name:<28} {:>9.0} req/s{unit}  p50 {} ms  p99 {} ms  p999 {} ms  errors {}  runs [{}]",
        m.rps,
        ms(m.p50),
        ms(m.p99),
        ms(m.p999),
        m.errors,
        all_rps.join(", ")
    );
}

fn statement(learner: &str, i: u64) -> Value {
    json!({
        "actor": {"objectType": "Agent", "account": {"homePage": "https://lms.example.org/learners", "name": learner}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": format!("https://lms.example.org/xapi/activities/courses/arithmetic/lessons/l{}", i % 8)},
        "result": {"duration": "PT1M"},
    })
}

fn spawn_node(exe: &Path, args: &Args, data: &Path, creds: &Path, port: u16) -> std::process::Child {
    spawn_node_with(exe, args, data, creds, port, args.config.as_deref())
}

fn spawn_node_with(
    exe: &Path,
    args: &Args,
    data: &Path,
    creds: &Path,
    port: u16,
    config: Option<&Path>,
) -> std::process::Child {
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("serve");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--admin-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data)
        .arg("--modules")
        .arg(&args.modules)
        .arg("--credentials")
        .arg(creds)
        .env("LMS_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("starting lms-node")
}

async fn time_to_ready(client: &Client, base: &str, started: Instant) -> Duration {
    loop {
        if client.get(&format!("{base}/readyz"), &[]).await.is_ok_and(|r| r.status == 200) {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(started.elapsed() < Duration::from_secs(120), "node never became ready");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A native handler serving the same lesson document the catalog module
/// serves, with the same auth check and ETag: the baseline for wasm overhead.
async fn native_server(modules: &Path) -> String {
    use axum::http::{HeaderMap, StatusCode, header};
    let pack: Value = serde_json::from_slice(&std::fs::read(modules.join("content.json")).unwrap()).unwrap();
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
fn cold_start(modules: &Path, cache: &Path) {
    use lms_node::metrics::Metrics;
    use lms_node::wasm::{Host, Limits};
    let metrics = Arc::new(Metrics::default());
    let limits =
        Limits { timeout: Duration::from_secs(1), memory_bytes: 64 << 20, instances: 64, portable_code: false };
    let host = Host::new(limits, Some(lms_node::wasm::CodeCache::open(cache, None).unwrap()), metrics.clone()).unwrap();
    let t = Instant::now();
    host.load(modules).expect("load");
    let compile = t.elapsed();
    let mut cached = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        host.load(modules).expect("load");
        cached.push(t.elapsed());
    }
    cached.sort();
    let set = host.load(modules).unwrap();
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
}

fn instantiation_mean(text: &str, module: &str) -> Option<Duration> {
    let find = |suffix: &str| -> Option<f64> {
        let key = format!("lms_module_instantiation_seconds_{suffix}{{module=\"{module}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&key)).and_then(|v| v.parse().ok())
    };
    let (sum, count) = (find("sum")?, find("count")?);
    (count > 0.0).then(|| Duration::from_secs_f64(sum / count))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let exe = std::env::current_exe().unwrap().with_file_name("lms-node");
    let work = tempfile::tempdir().unwrap();
    let creds = work.path().join("htpasswd");
    std::fs::write(&creds, format!("{USER}:{}\n", bcrypt::hash(PASSWORD, 10).unwrap())).unwrap();
    // The bench acts for any learner (progress), so its credential has every scope.
    std::fs::write(work.path().join("scopes.toml"), format!("{USER} = [\"all\"]\n")).unwrap();
    let client = Client::new(Duration::from_secs(30));
    println!(
        "lms-bench: {} s x {} runs per scenario, {} in flight, {} cores",
        args.seconds,
        args.runs,
        args.concurrency,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );

    // Process start to /readyz: cold (compiles modules) and warm (cached code).
    let data = work.path().join("data");
    for label in ["cold (compile)", "warm (cached code)"] {
        let port = free_port();
        let t = Instant::now();
        let mut child = spawn_node(&exe, &args, &data, &creds, port);
        let d = time_to_ready(&client, &format!("http://127.0.0.1:{port}"), t).await;
        println!("process start to /readyz     {label}: {} ms", ms(d));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    cold_start(&args.modules, &work.path().join("probe-cache"));

    let port = free_port();
    let mut child = spawn_node(&exe, &args, &data, &creds, port);
    let base = format!("http://127.0.0.1:{port}");
    time_to_ready(&client, &base, Instant::now()).await;
    let auth = Arc::new(basic_auth(USER, PASSWORD));
    let url = |p: &str| Arc::new(format!("{base}{p}"));

    let (c, a, u) = (client.clone(), auth.clone(), url(LESSON));
    scenario(&args, "lesson GET (wasm)", 1.0, move |_| {
        let (c, a, u) = (c.clone(), a.clone(), u.clone());
        async move { c.get(&u, &[("authorization", &a)]).await.map(|r| r.status.as_u16()) }
    })
    .await;

    let native = native_server(&args.modules).await;
    let (c, a, u) = (client.clone(), auth.clone(), Arc::new(format!("{native}{LESSON}")));
    scenario(&args, "lesson GET (native, no wasm)", 1.0, move |_| {
        let (c, a, u) = (c.clone(), a.clone(), u.clone());
        async move { c.get(&u, &[("authorization", &a)]).await.map(|r| r.status.as_u16()) }
    })
    .await;

    pages(&args, &client, &base, &data).await;

    let xapi = [("X-Experience-API-Version", "2.0.0"), ("content-type", "application/json")];
    let (c, a, u) = (client.clone(), auth.clone(), url("/xapi/statements"));
    scenario(&args, "statement POST (1)", 1.0, move |i| {
        let (c, a, u) = (c.clone(), a.clone(), u.clone());
        async move {
            let body = statement(&format!("l{}", i % 1000), i).to_string();
            c.send("POST".parse().unwrap(), &u, &[("authorization", &a), xapi[0], xapi[1]], body)
                .await
                .map(|r| r.status.as_u16())
        }
    })
    .await;

    let (c, a, u) = (client.clone(), auth.clone(), url("/xapi/statements"));
    scenario(&args, "statement POST (batch 100)", 100.0, move |i| {
        let (c, a, u) = (c.clone(), a.clone(), u.clone());
        async move {
            let batch: Vec<Value> = (0..100).map(|k| statement(&format!("b{}", (i + k) % 1000), i + k)).collect();
            let body = Value::from(batch).to_string();
            c.send("POST".parse().unwrap(), &u, &[("authorization", &a), xapi[0], xapi[1]], body)
                .await
                .map(|r| r.status.as_u16())
        }
    })
    .await;

    // A learner with a realistic history (50 statements) for progress.
    let history: Vec<Value> = (0..50).map(|k| statement("progress-learner", k)).collect();
    client
        .send(
            "POST".parse().unwrap(),
            &format!("{base}/xapi/statements"),
            &[("authorization", &auth), xapi[0], xapi[1]],
            Value::from(history).to_string(),
        )
        .await
        .unwrap();
    let (c, a, u) = (client.clone(), auth.clone(), url("/v1/learners/progress-learner/progress"));
    scenario(&args, "progress GET (50 stmts)", 1.0, move |_| {
        let (c, a, u) = (c.clone(), a.clone(), u.clone());
        async move { c.get(&u, &[("authorization", &a)]).await.map(|r| r.status.as_u16()) }
    })
    .await;

    let (c, a, u) = (client.clone(), auth.clone(), url("/v1/quizzes/arithmetic-check/attempts"));
    scenario(&args, "quiz attempt POST", 1.0, move |i| {
        let (c, a, u) = (c.clone(), a.clone(), u.clone());
        async move {
            let body = json!({"learner": format!("q{}", i % 1000), "answers": {"q1": "b", "q2": "c", "q3": "a", "q4": "d", "q5": "a"}}).to_string();
            c.send("POST".parse().unwrap(), &u, &[("authorization", &a), ("content-type", "application/json")], body).await.map(|r| r.status.as_u16())
        }
    })
    .await;

    if args.only.as_deref().is_none_or(|o| "sign-in".contains(o)) {
        sign_ins(&args, &client, &base, &data).await;
    }

    child.kill().unwrap();
    child.wait().unwrap();

    if args.only.as_deref().is_none_or(|o| "sync drain".contains(o)) {
        sync_drain(&args, &exe, work.path(), &creds, &client, &auth).await;
    }
}

/// Backlog drain from an edge node into a hub node (both real processes),
/// and learners' single-statement POST latency on the edge while it drains
/// compared with afterwards.
async fn sync_drain(args: &Args, exe: &Path, work: &Path, creds: &Path, client: &Client, auth: &Arc<String>) {
    let hub_port = free_port();
    let cfg = work.join("edge.toml");
    std::fs::write(
        &cfg,
        format!(
            "upstream = \"http://127.0.0.1:{hub_port}/xapi\"\nupstream_user = \"{USER}\"\nupstream_password = \"{PASSWORD}\"\n\
             sync_enabled = true\nsync_interval = \"1s\"\noutbox_limit = 10000000\n"
        ),
    )
    .unwrap();
    let edge_port = free_port();
    let mut edge = spawn_node_with(exe, args, &work.join("edge-data"), creds, edge_port, Some(&cfg));
    let edge_base = format!("http://127.0.0.1:{edge_port}");
    time_to_ready(client, &edge_base, Instant::now()).await;
    let xapi =
        [("authorization", auth.as_str()), ("X-Experience-API-Version", "2.0.0"), ("content-type", "application/json")];
    let mut k = 0u64;
    while (k as usize) < args.backlog {
        let batch: Vec<Value> = (0..100).map(|j| statement(&format!("s{}", (k + j) % 1000), k + j)).collect();
        k += 100;
        client
            .send(
                "POST".parse().unwrap(),
                &format!("{edge_base}/xapi/statements"),
                &xapi,
                Value::from(batch).to_string(),
            )
            .await
            .unwrap();
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
                    &[("authorization", &a), ("X-Experience-API-Version", "2.0.0")],
                    body,
                )
                .await
                .map(|r| r.status.as_u16())
            }
        }
    };
    let url = Arc::new(format!("{edge_base}/xapi/statements"));
    // The hub comes up: the edge starts draining within one sync interval.
    let mut hub = spawn_node(exe, args, &work.join("hub-data"), creds, hub_port);
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
        "statement POST while draining  {:.0} req/s  p50 {} ms  p99 {} ms  ({conc} in flight)",
        during.rps,
        ms(during.p50),
        ms(during.p99)
    );
    println!(
        "statement POST after draining  {:.0} req/s  p50 {} ms  p99 {} ms  -> P99 ratio draining/idle {:.2}",
        idle.rps,
        ms(idle.p50),
        ms(idle.p99),
        during.p99.as_secs_f64() / idle.p99.as_secs_f64().max(1e-9)
    );
    for c in [&mut edge, &mut hub] {
        c.kill().unwrap();
        c.wait().unwrap();
    }
}

/// A class signing in at the same moment (issue 11: 40 learners, all
/// answered within 3 s): 40 fresh sign-ins (new passwords each run, so no
/// verified pair is cached) fired at once; the slowest answer per run.
async fn sign_ins(args: &Args, client: &Client, base: &str, data: &Path) {
    use lms_node::roster::{NewPerson, Role, Roster};
    const CLASS: usize = 40;
    let mut roster = Roster::open(&data.join("roster.db")).unwrap();
    let people: Vec<NewPerson> = (0..CLASS)
        .map(|i| {
            NewPerson::new(&format!("pupil{i}"), &format!("Pupil {i}"), Role::Learner, &[], "run-0-password").unwrap()
        })
        .collect();
    roster.import(&people).unwrap();
    let mut slowest = Vec::new();
    for run in 1..=args.runs {
        let pw = format!("run-{run}-password");
        for i in 0..CLASS {
            roster.passwd(&format!("pupil{i}"), &pw).unwrap();
        }
        let t = Instant::now();
        let tasks: Vec<_> = (0..CLASS)
            .map(|i| {
                let (c, url, pw) = (client.clone(), format!("{base}/login"), pw.clone());
                tokio::spawn(async move {
                    let form = format!("username=pupil{i}&password={pw}&csrf=bench-csrf-0123456789");
                    let r = c
                        .send(
                            "POST".parse().unwrap(),
                            &url,
                            &[
                                ("cookie", "lms_csrf=bench-csrf-0123456789"),
                                ("content-type", "application/x-www-form-urlencoded"),
                            ],
                            form,
                        )
                        .await;
                    (r.map(|r| r.header("location") == Some("/")).unwrap_or(false), t.elapsed())
                })
            })
            .collect();
        let mut worst = Duration::ZERO;
        let mut ok = 0;
        for task in tasks {
            let (signed_in, took) = task.await.unwrap();
            ok += usize::from(signed_in);
            worst = worst.max(took);
        }
        assert_eq!(ok, CLASS, "sign-ins failed in run {run}");
        slowest.push(worst);
    }
    slowest.sort();
    let all: Vec<String> = slowest.iter().map(|d| ms(*d)).collect();
    println!(
        "{CLASS} sign-ins at once (bcrypt cost {}): slowest answer median {} ms  runs [{}]",
        lms_node::roster::BCRYPT_COST,
        ms(slowest[slowest.len() / 2]),
        all.join(", ")
    );
}

/// The learner's pages as a signed-in browser asks for them (HTML, session
/// cookie): a lesson (rendered by the web module, the completed statement
/// checked once per view) and a course page (the learner's progress from
/// their statements, then rendered).
async fn pages(args: &Args, client: &Client, base: &str, data: &Path) {
    use lms_node::roster::{NewPerson, Role, Roster};
    if args.only.as_deref().is_some_and(|o| !"lesson page course page".contains(o)) {
        return;
    }
    let mut roster = Roster::open(&data.join("roster.db")).unwrap();
    let _ = roster.remove("page-reader");
    roster.add(&NewPerson::new("page-reader", "Page Reader", Role::Learner, &[], "page-password").unwrap()).unwrap();
    let r = client
        .send(
            "POST".parse().unwrap(),
            &format!("{base}/login"),
            &[("cookie", "lms_csrf=bench-csrf-0123456789"), ("content-type", "application/x-www-form-urlencoded")],
            "username=page-reader&password=page-password&csrf=bench-csrf-0123456789".to_string(),
        )
        .await
        .unwrap();
    let session = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("lms_session="))
        .and_then(|c| c.split(';').next())
        .expect("the bench learner signs in")
        .to_string();
    let cookie = Arc::new(format!("{session}; lms_lang=zh-CN"));
    for (name, path) in [
        ("lesson page (HTML, signed in)", "/courses/arithmetic/lessons/fractions"),
        ("course page (HTML, signed in)", "/courses/arithmetic"),
    ] {
        let (c, k, u) = (client.clone(), cookie.clone(), Arc::new(format!("{base}{path}")));
        scenario(args, name, 1.0, move |_| {
            let (c, k, u) = (c.clone(), k.clone(), u.clone());
            async move { c.get(&u, &[("cookie", &k)]).await.map(|r| r.status.as_u16()) }
        })
        .await;
    }
}
