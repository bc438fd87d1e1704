//! Shared test harness: real LMS modules (built once by `cargo xtask
//! modules`), a node on 127.0.0.1:0 with real files in a temp dir, and
//! helpers to make hostile module directories from WAT.
#![allow(dead_code)]

pub mod people;

use lms_node::client::{Client, Reply, basic_auth};
use lms_node::server::{AdminListener, run_with_content};
use lms_node::{Config, Node};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const XAPI: (&str, &str) = ("X-Experience-API-Version", "2.0.0");
pub const USER: &str = "kiosk";
pub const PASSWORD: &str = "s3cret-pass";

/// The factory content pack (`appliance/content`): the courses every node
/// test reads, as the node reads them from a content bundle.
pub fn factory_content() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../content")
}

/// The real module directory. Under `cargo xtask ci` it is prebuilt
/// (LMS_TEST_MODULES); a plain `cargo test` builds it once here.
pub fn real_modules() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    DIR.get_or_init(|| {
        let _g = LOCK.lock().unwrap();
        if let Ok(d) = std::env::var("LMS_TEST_MODULES") {
            return PathBuf::from(d);
        }
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lms-modules");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let status = std::process::Command::new(cargo)
            .args(["run", "--quiet", "-p", "xtask", "--", "modules", "--out"])
            .arg(&out)
            .current_dir(root)
            .status()
            .expect("running cargo xtask modules");
        assert!(status.success(), "cargo xtask modules failed");
        out
    })
    .clone()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A copy of the real modules at `to`, with `bundle_version` and the named
/// modules replaced by `wasm` bytes (manifest size and sha256 updated).
pub fn module_dir(to: &Path, bundle_version: &str, replace: &[(&str, Vec<u8>)]) {
    copy_dir(&real_modules(), to);
    let mpath = to.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["bundle_version"] = bundle_version.into();
    for (name, wasm) in replace {
        let entry = m["modules"].as_array_mut().unwrap().iter_mut().find(|e| e["name"] == *name).unwrap();
        std::fs::write(to.join(entry["file"].as_str().unwrap()), wasm).unwrap();
        entry["size"] = (wasm.len() as u64).into();
        entry["sha256"] = hex::encode(Sha256::digest(wasm)).into();
    }
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

/// Module directories `a` (1.0.0) and `b` (2.0.0) under `dir`, and a
/// `current` link to `a` (as the updater lays them out): (a, b, current).
pub fn two_versions(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (a, b) = (dir.join("a"), dir.join("b"));
    module_dir(&a, "1.0.0", &[]);
    module_dir(&b, "2.0.0", &[]);
    let current = dir.join("current");
    std::os::unix::fs::symlink(&a, &current).unwrap();
    (a, b, current)
}

/// A module that implements the ABI in WAT, with `handle` as the body of
/// `lms_handle` (must leave an i64 on the stack) and a self-test answer.
pub fn wat_module(handle: &str, self_test_json: &str) -> Vec<u8> {
    wat_module_importing("", handle, self_test_json)
}

/// The answer at offset 1024 of every WAT module: `lms_handle` may end with
/// `i64.const {OK_ANSWER}` to answer 200 `{"ok":true}`.
pub const OK_ANSWER_JSON: &str = r#"{"status":200,"body":{"ok":true}}"#;
pub const OK_ANSWER: u64 = (1024u64 << 32) | OK_ANSWER_JSON.len() as u64;

/// The same, with `imports` (WAT import declarations) before the rest.
pub fn wat_module_importing(imports: &str, handle: &str, self_test_json: &str) -> Vec<u8> {
    let esc = |j: &str| j.replace('\\', "\\\\").replace('"', "\\\"");
    let (escaped, answer) = (esc(self_test_json), esc(OK_ANSWER_JSON));
    let packed = (16u64 << 32) | self_test_json.len() as u64;
    let text = format!(
        r#"(module
  {imports}
  (memory (export "memory") 2)
  (data (i32.const 16) "{escaped}")
  (data (i32.const 1024) "{answer}")
  (global $bump (mut i32) (i32.const 4096))
  (func (export "lms_abi_version") (result i32) i32.const 1)
  (func (export "lms_alloc") (param $n i32) (result i32) (local $p i32)
    global.get $bump local.set $p
    global.get $bump local.get $n i32.add global.set $bump
    local.get $p)
  (func (export "lms_self_test") (result i64) i64.const {packed})
  (func (export "lms_handle") (param i32 i32) (result i64) {handle}))"#
    );
    wat::parse_str(text).expect("valid WAT")
}

pub const SELF_TEST_OK: &str = r#"{"ok":true,"checks":["wat"]}"#;
/// `lms_handle` that never returns.
pub const LOOP_FOREVER: &str = "(loop $l (br $l)) i64.const 0";
/// `lms_handle` that grows memory until it is stopped.
pub const GROW_FOREVER: &str = "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) i64.const 0";

pub struct TestNode {
    pub base: String,
    pub admin: String,
    /// The content listener (package files).
    pub content: String,
    pub client: Client,
    pub node: Arc<Node>,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// `USER` (scope `all`) and `other` (no scopes entry: xAPI's default,
/// statements/write + statements/read/mine), with `scopes.toml` beside them.
pub fn write_credentials(path: &Path) {
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    std::fs::write(path, format!("{USER}:{hash}\nother:{}\n", bcrypt::hash("other-pass", 4).unwrap())).unwrap();
    std::fs::write(path.with_file_name("scopes.toml"), format!("{USER} = [\"all\"]\n")).unwrap();
}

impl TestNode {
    /// A node serving `modules` (None: the real modules) and the factory
    /// content, after `tweak`.
    pub async fn start(modules: Option<PathBuf>, tweak: impl FnOnce(&mut Config)) -> TestNode {
        Self::start_at("127.0.0.1:0", modules, tweak).await
    }

    /// The same, with the public listener on `addr`.
    pub async fn start_at(addr: &str, modules: Option<PathBuf>, tweak: impl FnOnce(&mut Config)) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("htpasswd");
        write_credentials(&creds);
        let mut cfg = Config {
            listen: "127.0.0.1:0".into(),
            admin_listen: Some("127.0.0.1:0".into()),
            data_dir: dir.path().join("data"),
            modules: modules.unwrap_or_else(real_modules),
            content: factory_content(),
            credentials: Some(creds),
            module_instances: 32,
            ..Config::default()
        };
        let public = tokio::net::TcpListener::bind(addr).await.unwrap();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let content = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", public.local_addr().unwrap());
        let admin_url = format!("http://{}", admin.local_addr().unwrap());
        let content_url = format!("http://{}", content.local_addr().unwrap());
        // The origins a browser reaches, as an appliance's settings name them
        // (the two ports are two origins).
        cfg.public_url = Some(base.clone());
        cfg.content_url = Some(content_url.clone());
        tweak(&mut cfg);
        let node = Node::new(cfg).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_with_content(
            node.clone(),
            public,
            Some(AdminListener::Tcp(admin)),
            Some(content),
            async {
                let _ = rx.await;
            },
        ));
        TestNode {
            base,
            admin: admin_url,
            content: content_url,
            client: Client::new(Duration::from_secs(30)),
            node,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// POSTs `body` as JSON to `path` on the admin listener.
    #[allow(dead_code)]
    pub async fn admin_json(&self, path: &str, body: serde_json::Value) -> lms_node::client::Reply {
        let h = [("content-type", "application/json")];
        let url = format!("{}{path}", self.admin);
        self.client.send("POST".parse().unwrap(), &url, &h, axum::body::Bytes::from(body.to_string())).await.unwrap()
    }

    /// Waits until /readyz says 200 (or panics with its last answer).
    pub async fn ready(self) -> TestNode {
        wait_ready(&self.client, &self.base).await;
        self
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Reply {
        let auth = basic_auth(USER, PASSWORD);
        self.client.get(&self.url(path), &[("authorization", &auth), XAPI]).await.unwrap()
    }

    pub async fn send(&self, method: &str, path: &str, body: impl Into<String>) -> Reply {
        let auth = basic_auth(USER, PASSWORD);
        self.client
            .send(
                method.parse().unwrap(),
                &self.url(path),
                &[("authorization", &auth), XAPI, ("content-type", "application/json")],
                body.into(),
            )
            .await
            .unwrap()
    }

    pub async fn reload(&self) -> Reply {
        self.client.send("POST".parse().unwrap(), &format!("{}/admin/reload", self.admin), &[], "").await.unwrap()
    }
}

pub async fn wait_ready(client: &Client, base: &str) {
    let start = Instant::now();
    loop {
        let r = client.get(&format!("{base}/readyz"), &[]).await;
        if let Ok(r) = &r
            && r.status == 200
        {
            return;
        }
        if start.elapsed() > Duration::from_secs(90) {
            panic!("node at {base} not ready after 90 s: {r:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A valid statement about `learner` with a fixed id.
pub fn statement(id: &str, learner: &str, verb: &str, activity: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "actor": {"objectType": "Agent", "account": {"homePage": "https://lms.example.org/learners", "name": learner}},
        "verb": {"id": verb, "display": {"en-US": "did"}},
        "object": {"objectType": "Activity", "id": activity},
    })
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A free port on 127.0.0.1 (for listeners a test starts later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The real `lms-node` binary on `port`, with its data, credentials (from
/// [`write_credentials`]) and an optional `node.toml` in `dir`, serving the
/// real modules and the factory content.
pub fn spawn_node(dir: &Path, port: u16) -> std::process::Child {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lms-node"));
    cmd.arg("serve");
    if dir.join("node.toml").exists() {
        cmd.arg("--config").arg(dir.join("node.toml"));
    }
    cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--admin-listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--modules")
        .arg(real_modules())
        .arg("--content")
        .arg(factory_content())
        .arg("--credentials")
        .arg(dir.join("htpasswd"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting lms-node")
}

/// The parts of a multipart/mixed answer (`attachments=true`): (headers, bytes).
pub async fn parts_of(r: &Reply) -> Vec<(axum::http::HeaderMap, Vec<u8>)> {
    let ct = r.header("content-type").expect("a content type");
    assert!(ct.starts_with("multipart/mixed"), "{ct}");
    let boundary = ct.split("boundary=").nth(1).unwrap().trim_matches('"').to_string();
    let body = r.body.clone();
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut m = multer::Multipart::new(stream, boundary);
    let mut out = Vec::new();
    while let Some(f) = m.next_field().await.unwrap() {
        let h = f.headers().clone();
        out.push((h, f.bytes().await.unwrap().to_vec()));
    }
    out
}

/// The factory courses plus the packages authored for the tests as a
/// content pack in `dir/current`: the cmi5 course `water-safety` (one
/// block, one AU, CompletedAndPassed at 0.8) and the SCORM 1.2 course
/// `water-cycle` (a SCO with masteryscore 80, and an asset), an HTML5 app
/// (`rain-gauge`) and a PDF (`guide`).
#[allow(dead_code)]
pub fn pack_with_cmi5(dir: &Path) -> PathBuf {
    let pack = dir.join("current");
    lms_package::pack::copy_with(&factory_content(), &pack, &|_, text| text).unwrap();
    let mut inputs = Vec::new();
    for (data, zip) in [("cmi5", "water-safety.zip"), ("scorm12", "water-cycle.zip")] {
        let z = dir.join(zip);
        lms_package::testing::zip_tree(&lms_package::testing::data_dir().join(data), &z, &[]);
        let p = lms_package::read(&z, &Default::default(), &Default::default()).unwrap();
        inputs.push(lms_package::pack::Input::Package(p));
    }
    // An HTML5 app and a PDF, which record nothing themselves.
    let app = dir.join("rain-app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("index.html"),
        "<!doctype html><html><head><title>Rain gauge</title></head><body>app</body></html>",
    )
    .unwrap();
    let z = dir.join("rain-gauge.zip");
    lms_package::testing::zip_tree(&app, &z, &[]);
    inputs.push(lms_package::pack::Input::Package(
        lms_package::read(&z, &Default::default(), &Default::default()).unwrap(),
    ));
    let pdf = dir.join("guide.pdf");
    std::fs::write(&pdf, b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n").unwrap();
    let options = lms_package::Options { title: Some("Teacher guide"), ..Default::default() };
    inputs.push(lms_package::pack::Input::Package(lms_package::read(&pdf, &options, &Default::default()).unwrap()));
    lms_package::pack::add(&pack, inputs).unwrap();
    pack
}

/// A ready node serving [`pack_with_cmi5`]'s pack, made in `dir`.
#[allow(dead_code)]
pub async fn node_with_packages(dir: &Path) -> TestNode {
    let pack = pack_with_cmi5(dir);
    TestNode::start(None, move |c| c.content = pack).await.ready().await
}
