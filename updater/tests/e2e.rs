//! End to end with a real lms-node and the real LMS modules, over HTTP: v1
//! installed on an empty node, v2 published and taken, a signed v3 whose
//! catalog module fails its self-test rolled back to v2, then content
//! bundles through the same engine, with learners' requests answered
//! throughout. The repository is served over HTTP with Range
//! support, and the v2 download resumes from a partial file.

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use lms_bundle::keys;
use lms_node::client::{Client, basic_auth};
use lms_updater::node::HttpNode;
use lms_updater::{Outcome, Updater};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn real_modules() -> PathBuf {
    if let Ok(d) = std::env::var("LMS_TEST_MODULES") {
        return PathBuf::from(d);
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lms-modules");
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["run", "--quiet", "-p", "xtask", "--", "modules", "--out"])
        .arg(&out)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .status()
        .unwrap();
    assert!(status.success());
    out
}

/// A copy of the real modules as `version`; `broken` replaces the catalog
/// module with one whose self-test fails.
fn module_dir(to: &Path, version: &str, broken: bool) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(real_modules()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
    let mp = to.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    m["bundle_version"] = version.into();
    if broken {
        let wasm = lms_bundle::testing::failing_module("catalog broken on purpose");
        let entry = m["modules"].as_array_mut().unwrap().iter_mut().find(|e| e["name"] == "catalog").unwrap();
        std::fs::write(to.join(entry["file"].as_str().unwrap()), &wasm).unwrap();
        entry["size"] = wasm.len().into();
        entry["sha256"] = hex::encode(Sha256::digest(&wasm)).into();
    }
    std::fs::write(&mp, serde_json::to_vec(&m).unwrap()).unwrap();
}

/// Static files with `Range: bytes=N-`, like any web server or CDN.
async fn serve_file(
    State(root): State<PathBuf>,
    UrlPath(rel): UrlPath<String>,
    headers: HeaderMap,
) -> axum::response::Response {
    if !lms_bundle::safe_relative_path(&rel) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(bytes) = std::fs::read(root.join(&rel)) else { return StatusCode::NOT_FOUND.into_response() };
    let from = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<usize>().ok());
    match from {
        Some(n) if n < bytes.len() => {
            let range = format!("bytes {n}-{}/{}", bytes.len() - 1, bytes.len());
            (StatusCode::PARTIAL_CONTENT, [(header::CONTENT_RANGE, range)], bytes[n..].to_vec()).into_response()
        }
        _ => bytes.into_response(),
    }
}

struct Running {
    base: String,
    admin: String,
    repo_url: String,
}

#[test]
fn v1_then_v2_then_a_failing_v3_is_rolled_back_while_learners_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let modules_dir = dir.path().join("modules");
    let content_dir = dir.path().join("content");
    let creds = dir.path().join("htpasswd");
    std::fs::write(&creds, format!("kiosk:{}\n", bcrypt_hash("pw"))).unwrap();
    std::fs::create_dir_all(&repo).unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let pubfile = dir.path().join("release.pub");
    std::fs::write(&pubfile, hex::encode(key.verifying_key().to_bytes())).unwrap();

    // lms-node serving modules_dir/current (absent at first), and the repo server.
    let (tx, rx) = std::sync::mpsc::channel();
    let current = modules_dir.join("current");
    let content_current = content_dir.join("current");
    let (data, creds2, repo2) = (dir.path().join("data"), creds.clone(), repo.clone());
    let served = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let hammer = Arc::new(AtomicBool::new(false));
    // The catalog until content is installed, then a lesson too.
    let lessons = Arc::new(AtomicBool::new(false));
    let (served2, failures2, hammer2, lessons2) = (served.clone(), failures.clone(), hammer.clone(), lessons.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let repo_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let running = Running {
                base: format!("http://{}", public.local_addr().unwrap()),
                admin: format!("http://{}", admin.local_addr().unwrap()),
                repo_url: format!("http://{}/", repo_l.local_addr().unwrap()),
            };
            let app = axum::Router::new().route("/{*path}", axum::routing::get(serve_file)).with_state(repo2);
            tokio::spawn(async move { axum::serve(repo_l, app).await.unwrap() });
            let cfg = lms_node::Config {
                listen: "127.0.0.1:0".into(),
                data_dir: data,
                modules: current,
                content: content_current,
                credentials: Some(creds2),
                module_instances: 32,
                ..Default::default()
            };
            let node = lms_node::Node::new(cfg).unwrap();
            // Learners, once the first version is up: every answer must be 200.
            let base = running.base.clone();
            tokio::spawn(async move {
                let client = Client::new(Duration::from_secs(10));
                let auth = basic_auth("kiosk", "pw");
                loop {
                    if hammer2.load(Ordering::Relaxed) {
                        let url = match lessons2.load(Ordering::Relaxed) {
                            true => format!("{base}/v1/courses/science/lessons/forces"),
                            false => format!("{base}/v1/courses"),
                        };
                        match client.get(&url, &[("authorization", &auth)]).await {
                            Ok(r) if r.status == 200 => {
                                served2.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) => failures2.lock().unwrap().push(format!("{} {}", r.status, r.text())),
                            Err(e) => failures2.lock().unwrap().push(e),
                        }
                    } else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            });
            tx.send(running).unwrap();
            lms_node::server::run(
                node,
                public,
                Some(lms_node::server::AdminListener::Tcp(admin)),
                std::future::pending(),
            )
            .await
            .unwrap();
        });
    });
    let running = rx.recv().unwrap();
    let ready = format!("{}/readyz", running.admin);

    let updater = Updater {
        payload: Box::new(lms_updater::kinds::modules::Modules),
        layout: lms_updater::state::Layout { root: modules_dir.clone() },
        channel: "stable".into(),
        node_id: "edge-001".into(),
        health_timeout: Duration::from_secs(30),
        trusted: vec![keys::load_verifying(&pubfile).unwrap()],
        transport: lms_updater::repo::open(
            lms_updater::repo::parse_source(&running.repo_url).unwrap(),
            Duration::from_secs(30),
            lms_settings::tls::client_config(None).unwrap(),
        ),
        node: Box::new(HttpNode::new(&running.admin, &ready, Duration::from_secs(30))),
        limits: Default::default(),
        crash_at: None,
        step_pause: Duration::ZERO,
        reboot: lms_updater::reboot::Reboot::immediate(std::env::temp_dir().join("lms-updater-test-reboot")),
        clock: time::OffsetDateTime::now_utc,
    };
    let publish = |version: &str, broken: bool| {
        let src = dir.path().join(format!("src-{version}"));
        module_dir(&src, version, broken);
        let b = dir.path().join(format!("{version}.bundle"));
        lms_bundle::create(&src, version, &key, &b).unwrap();
        lms_bundle::channel::publish(&repo, &b, "stable", &key, Duration::from_secs(3600), 100).unwrap();
    };
    let node_version = || {
        let http = lms_updater::http::Http::new(Duration::from_secs(5));
        let a = http.call("GET", &ready, 1 << 20).unwrap();
        (a.status, serde_json::from_slice::<serde_json::Value>(&a.body).unwrap()["bundle_version"].clone())
    };

    // An empty node: not ready until the first bundle arrives.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(node_version().0, 503);
    publish("1.0.0", false);
    assert_eq!(updater.check().unwrap(), Outcome::Installed { version: "1.0.0".into() });
    assert_eq!(node_version(), (200, "1.0.0".into()));
    hammer.store(true, Ordering::Relaxed);

    // v2: start from a partial download, as after a cut connection.
    publish("2.0.0", false);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.join("channels/stable.json")).unwrap()).unwrap();
    let bundle = std::fs::read(repo.join(meta["bundle"]["path"].as_str().unwrap())).unwrap();
    let part = modules_dir.join("cache").join(format!("{}.part", meta["bundle"]["sha256"].as_str().unwrap()));
    std::fs::write(&part, &bundle[..bundle.len() / 3]).unwrap();
    assert_eq!(updater.check().unwrap(), Outcome::Installed { version: "2.0.0".into() });
    assert_eq!(node_version(), (200, "2.0.0".into()));

    // v3 is signed and well-formed, but its catalog fails its self-test.
    publish("3.0.0", true);
    match updater.check().unwrap() {
        Outcome::RolledBack { version, reason } => {
            assert_eq!(version, "3.0.0");
            assert!(reason.contains("self-test") && reason.contains("broken on purpose"), "{reason}");
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
    assert_eq!(node_version(), (200, "2.0.0".into()));
    let status = updater.status_json().unwrap();
    assert_eq!(status["current"]["version"], "2.0.0");
    assert_eq!(status["rejected"][0]["version"], "3.0.0");

    // Content through the same engine and the same node: v1 installed and
    // served; a signed v2 whose pack the node refuses is rolled back.
    let content = Updater::content_from_config(&lms_updater::config::Config {
        repository: running.repo_url.clone(),
        stick_repository: None,
        channel: "stable".into(),
        trusted_keys: vec![pubfile.clone()],
        modules_dir: modules_dir.clone(),
        node_admin: running.admin.clone(),
        node_ready: ready.clone(),
        health_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_secs(600),
        node_id: "edge-001".into(),
        ca_file: None,
        content_dir: Some(content_dir.clone()),
        content_channel: "content-stable".into(),
        max_content_bytes: 1 << 30,
        system_dir: None,
        system_channel: "system-stable".into(),
        system_devices: None,
        cmdline_file: "/proc/cmdline".into(),
        os_release: "/system/etc/os-release".into(),
        reboot_request: dir.path().join("reboot"),
        reboot_window: None,
        boot_tries: 3,
        step_pause: Duration::ZERO,
    })
    .unwrap()
    .unwrap();
    let publish_content = |version: &str, course_id: &str| {
        let pack = dir.path().join(format!("pack-{version}"));
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../appliance/content");
        let rename = |_: &str, text: String| text.replace("id = \"science\"", &format!("id = \"{course_id}\""));
        lms_package::pack::copy_with(&src, &pack, &rename).unwrap();
        let b = dir.path().join(format!("content-{version}.bundle"));
        lms_bundle::content::create(&pack, version, vec![], &key, &b).unwrap();
        lms_bundle::content::publish(&repo, &b, "content-stable", &key, Duration::from_secs(3600), 100).unwrap();
    };
    let node_content = || {
        let http = lms_updater::http::Http::new(Duration::from_secs(5));
        serde_json::from_slice::<serde_json::Value>(&http.call("GET", &ready, 1 << 20).unwrap().body).unwrap()["content_version"].clone()
    };
    publish_content("1.0.0", "science");
    assert_eq!(content.check().unwrap(), Outcome::Installed { version: "1.0.0".into() });
    assert_eq!(node_content(), "1.0.0");
    lessons.store(true, Ordering::Relaxed);
    publish_content("1.1.0", "Science!");
    match content.check().unwrap() {
        Outcome::RolledBack { version, reason } => {
            assert_eq!(version, "1.1.0");
            assert!(reason.contains("Science!"), "{reason}");
        }
        other => panic!("expected a content rollback, got {other:?}"),
    }
    assert_eq!(node_content(), "1.0.0");
    assert_eq!(node_version(), (200, "2.0.0".into()), "the modules kept serving through the content update");

    std::thread::sleep(Duration::from_millis(300));
    hammer.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(200));
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "learner requests failed during updates: {failures:?}");
    assert!(served.load(Ordering::Relaxed) > 10, "the learner load did not run");
}

/// Cost 4: the test's credentials need not be strong, only real.
fn bcrypt_hash(pw: &str) -> String {
    bcrypt::hash(pw, 4).unwrap()
}
