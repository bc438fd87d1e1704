//! The VM harness for the end-to-end tests: builds images with the real
//! `lms-image build`, boots them with `lms-image run --json` (QEMU TCG,
//! forwarded port on 127.0.0.1) and talks to the node over HTTP with curl.
//!
//! Inputs come from `cargo xtask ci`: LMS_TEST_MODULES (module directory),
//! LMS_TEST_NODE_MUSL and LMS_TEST_UPDATER_MUSL (static release binaries).
//! Without them (a plain `cargo test`) the VM tests say so and skip; under
//! CI (CI set) they fail instead.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// SOURCE_DATE_EPOCH for test builds (2026-01-01).
pub const EPOCH: &str = "1767225600";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The lms-image binary cargo built next to this test.
pub fn lms_image() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("lms-image");
    assert!(bin.exists(), "{} missing: build it with `cargo build -p lms-image`", bin.display());
    bin
}

/// Static binaries and modules from `cargo xtask ci`, or None (with a note).
pub struct Inputs {
    pub node: PathBuf,
    pub updater: PathBuf,
    pub modules: PathBuf,
}

pub fn inputs() -> Option<Inputs> {
    let get = |k: &str| std::env::var_os(k).map(PathBuf::from);
    let qemu = Command::new("qemu-system-x86_64").arg("--version").output().is_ok();
    match (get("LMS_TEST_NODE_MUSL"), get("LMS_TEST_UPDATER_MUSL"), get("LMS_TEST_MODULES"), qemu) {
        (Some(node), Some(updater), Some(modules), true) => Some(Inputs { node, updater, modules }),
        _ => {
            assert!(std::env::var("CI").is_err(), "CI runs the VM tests through `cargo xtask ci` with QEMU installed");
            eprintln!("VM test skipped: needs qemu-system-x86_64 and LMS_TEST_* from `cargo xtask ci`");
            None
        }
    }
}

/// `path`, created (with its parents) if missing.
pub fn made_dir(path: PathBuf) -> PathBuf {
    std::fs::create_dir_all(&path).unwrap();
    path
}

/// A signing key pair made with `lms-image keygen` in `dir`: (key, pub).
pub fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    let prefix = dir.join("signing");
    let o = Command::new(lms_image()).arg("keygen").arg("--out").arg(&prefix).output().unwrap();
    assert!(o.status.success(), "keygen: {}", String::from_utf8_lossy(&o.stderr));
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

/// `lms-image build` of `spec` into `out`; returns its output.
pub fn build(spec: &Path, out: &Path, key: &Path, i: &Inputs) -> std::process::Output {
    build_at(spec, out, key, i, EPOCH)
}

/// The same with another SOURCE_DATE_EPOCH (another release of the same definition).
pub fn build_at(spec: &Path, out: &Path, key: &Path, i: &Inputs, epoch: &str) -> std::process::Output {
    Command::new(lms_image())
        .arg("build")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .arg("--key")
        .arg(key)
        .arg("--cache")
        .arg(cache())
        .arg("--lms-node")
        .arg(&i.node)
        .arg("--lms-updater")
        .arg(&i.updater)
        .arg("--modules")
        .arg(&i.modules)
        .env("SOURCE_DATE_EPOCH", epoch)
        .output()
        .unwrap()
}

/// Pinned inputs, shared by every test (and kept between runs).
pub fn cache() -> PathBuf {
    // target/tmp, where the other crates' tests keep it too.
    lms_image().parent().unwrap().parent().unwrap().join("tmp/lms-image-cache")
}

pub fn dev_definition() -> PathBuf {
    root().join("appliance/appliance-dev.toml")
}

/// An xAPI statement by learner `name` with statement id `id`.
pub fn statement(id: &str, name: &str) -> String {
    serde_json::json!({
        "id": id,
        "actor": {"account": {"homePage": "https://lms.example.org/learners", "name": name}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
        "object": {"id": "https://lms.example.org/courses/arithmetic/lessons/counting"},
    })
    .to_string()
}

/// A VM booted with `lms-image run --json`.
pub struct Vm {
    child: Child,
    pub port: u16,
    pub started: Instant,
    pub console: PathBuf,
    pub monitor: PathBuf,
    events: std::sync::mpsc::Receiver<serde_json::Value>,
}

pub struct Boot<'a> {
    pub dir: &'a Path,
    pub uefi: bool,
    pub overlay: Option<&'a Path>,
    /// A raw disk file made with `lms-image flash`, booted read-write.
    pub disk: Option<&'a Path>,
    pub scratch: &'a Path,
}

impl Vm {
    pub fn start(b: Boot) -> Vm {
        Vm::start_with(b, &[])
    }

    /// `start` with more `lms-image run` arguments (`--reboot`, `--uefi-vars F`).
    pub fn start_with(b: Boot, extra: &[&std::ffi::OsStr]) -> Vm {
        let console = b.scratch.join(format!("console-{}.log", std::process::id()));
        let monitor = b.scratch.join("monitor.sock");
        let _ = std::fs::remove_file(&monitor);
        let mut c = Command::new(lms_image());
        c.arg("run").arg(b.dir).arg("--json").arg("--console").arg(&console).arg("--monitor").arg(&monitor);
        if !b.uefi {
            c.arg("--direct");
        }
        if let Some(o) = b.overlay {
            c.arg("--overlay").arg(o);
        }
        if let Some(disk) = b.disk {
            c.arg("--disk").arg(disk);
        }
        c.args(extra);
        // lms-image run (and with it QEMU) dies with the test, even when the
        // test is killed: no VM is ever left behind.
        // SAFETY: prctl between fork and exec is async-signal-safe.
        unsafe {
            use std::os::unix::process::CommandExt;
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let started = Instant::now();
        let mut child = c.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let first = events.recv_timeout(Duration::from_secs(30)).expect("lms-image run printed no event");
        assert_eq!(first["event"], "listening", "{first}");
        let port = first["port"].as_u64().unwrap() as u16;
        Vm { child, port, started, console, monitor, events }
    }

    /// Waits for the `ready` event (/readyz 200); returns the time from QEMU start.
    pub fn wait_ready(&mut self, limit: Duration) -> Duration {
        loop {
            match self.events.recv_timeout(limit.saturating_sub(self.started.elapsed())) {
                Ok(e) if e["event"] == "ready" => return self.started.elapsed(),
                Ok(e) if e["event"] == "exited" => {
                    panic!("the VM exited before it was ready: {e}\n{}", self.console_text())
                }
                Ok(_) => {}
                Err(_) => panic!("/readyz not 200 within {limit:?}; console:\n{}", self.console_text()),
            }
        }
    }

    /// Waits until the node serves the content bundle `version` (a first
    /// boot installs the factory modules, then the factory content: the
    /// node is ready between the two with an empty catalog); the time it took.
    pub fn wait_content(&self, version: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let (_, ready) = self.http("GET", "/readyz", Some("demo:demo"), None);
            if ready.contains(&format!("\"content_version\":\"{version}\"")) {
                return started.elapsed();
            }
            assert!(started.elapsed() < limit, "no content_version {version}: {ready}\n{}", self.console_text());
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Waits for QEMU to end by itself (the `exited` event, which reports its
    /// status); panics when it is still running after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> String {
        loop {
            match self.events.recv_timeout(limit.saturating_sub(self.started.elapsed())) {
                Ok(e) if e["event"] == "exited" => return e.to_string(),
                Ok(_) => {}
                Err(_) => panic!("QEMU still running after {limit:?}; console:\n{}", self.console_text()),
            }
        }
    }

    /// Presses the power button (QEMU system_powerdown) and waits for QEMU
    /// to exit; presses again every 15 s, as a person would.
    pub fn power_button(&mut self, limit: Duration) -> Duration {
        use std::io::{Read, Write};
        let t = Instant::now();
        let mut s = std::os::unix::net::UnixStream::connect(&self.monitor).expect("QEMU monitor socket");
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf); // the monitor's banner and prompt
        let mut pressed = None::<Instant>;
        while t.elapsed() < limit {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "lms-image run: {st}");
                return t.elapsed();
            }
            if pressed.is_none_or(|p| p.elapsed() > Duration::from_secs(15)) {
                let _ = s.write_all(b"system_powerdown\n");
                let _ = s.read(&mut buf);
                pressed = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no clean poweroff within {limit:?}; console:\n{}", self.console_text());
    }

    /// One command on the QEMU monitor (`set_link uplink off`); its answer.
    pub fn monitor(&self, command: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&self.monitor).expect("QEMU monitor socket");
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf); // the monitor's banner and prompt
        s.write_all(format!("{command}\n").as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    pub fn console_text(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// curl against the node: (status, body).
    pub fn http(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&str>) -> (u16, String) {
        let mut c = Command::new("curl");
        c.args(["-s", "-m", "30", "-X", method, "-w", "\n%{http_code}", "-H", "X-Experience-API-Version: 2.0.0"]);
        if let Some(a) = auth {
            c.args(["-u", a]);
        }
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        let o = c.arg(format!("http://127.0.0.1:{}{path}", self.port)).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test's console outlives its temporary directory.
        if std::thread::panicking() {
            let dir = lms_image().parent().unwrap().parent().unwrap().join("tmp/qemu-failed");
            let name = std::thread::current().name().unwrap_or("test").replace("::", "-");
            let keep = dir.join(format!("{name}-{}.log", self.started.elapsed().as_millis()));
            if std::fs::create_dir_all(&dir).and_then(|_| std::fs::copy(&self.console, &keep)).is_ok() {
                eprintln!("console of the failed test kept at {}", keep.display());
            }
        }
    }
}

/// A static file server for the update repository: GET, whole files or
/// from a byte on (`Range: bytes=N-`, answered 206), as nginx or a CDN
/// serves a repository.
pub fn serve(root: PathBuf) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let mut from = None::<usize>;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    let lower = h.to_ascii_lowercase();
                    if let Some(r) = lower.strip_prefix("range: bytes=") {
                        from = r.trim().strip_suffix('-').and_then(|n| n.parse().ok());
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
                let mut out = &stream;
                match (!path.contains("..")).then(|| std::fs::read(root.join(&path))).and_then(Result::ok) {
                    Some(body) if from.is_some_and(|f| f < body.len()) => {
                        let f = from.unwrap();
                        let _ = write!(
                            out,
                            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {f}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len() - 1,
                            body.len(),
                            body.len() - f
                        );
                        let _ = out.write_all(&body[f..]);
                    }
                    Some(body) => {
                        let _ = write!(
                            out,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = out.write_all(&body);
                    }
                    None => {
                        let _ = write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    }
                }
            });
        }
    });
    port
}

/// The dev definition with its files made absolute and its settings replaced.
pub fn definition(dir: &Path, settings: &Path) -> PathBuf {
    let appliance = root().join("appliance").canonicalize().unwrap();
    let text = std::fs::read_to_string(dev_definition())
        .unwrap()
        .replace("settings = \"factory/lms-dev.toml\"", &format!("settings = \"{}\"", settings.display()))
        .replace("\"factory/", &format!("\"{}/factory/", appliance.display()))
        .replace("\"k3s/", &format!("\"{}/k3s/", appliance.display()))
        .replace("content = \"content\"", &format!("content = \"{}/content\"", appliance.display()));
    let f = dir.join("appliance.toml");
    std::fs::write(&f, text).unwrap();
    f
}

/// `lms-image ARGS`, which must succeed.
pub fn lms_image_ok(args: &[&std::ffi::OsStr]) {
    let o = Command::new(lms_image()).args(args).output().unwrap();
    assert!(o.status.success(), "lms-image {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// Bundles the test modules as `version` and publishes it on `stable` of
/// `repo`. `broken`: its catalog is a module whose self-test reports a
/// failure (the node refuses the whole set; content no longer comes with
/// the modules, so the module itself has to fail).
pub fn module_release(i: &Inputs, dir: &Path, version: &str, broken: bool, key: &Path, repo: &Path) {
    let modules = dir.join(format!("modules-{version}"));
    std::fs::create_dir_all(&modules).unwrap();
    for e in std::fs::read_dir(&i.modules).unwrap().map(Result::unwrap) {
        std::fs::copy(e.path(), modules.join(e.file_name())).unwrap();
    }
    let mp = modules.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    m["bundle_version"] = version.into();
    // Each release's modules are new bytes (a custom section naming the
    // release), as real releases are: the node compiles them when it loads
    // them, which is where an install spends its time.
    for entry in m["modules"].as_array_mut().unwrap() {
        let file = modules.join(entry["file"].as_str().unwrap());
        let mut wasm = std::fs::read(&file).unwrap();
        let name = b"lms-test-release";
        let payload = [&[name.len() as u8][..], name, version.as_bytes()].concat();
        wasm.push(0); // custom section
        leb128(payload.len() as u64, &mut wasm);
        wasm.extend_from_slice(&payload);
        std::fs::write(&file, &wasm).unwrap();
        entry["size"] = wasm.len().into();
        entry["sha256"] = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&wasm)).into();
    }
    if broken {
        let wasm = lms_bundle::testing::failing_module("deliberately broken release (qemu scenario 5)");
        let entry = m["modules"].as_array_mut().unwrap().iter_mut().find(|e| e["name"] == "catalog").unwrap();
        std::fs::write(modules.join(entry["file"].as_str().unwrap()), &wasm).unwrap();
        entry["size"] = wasm.len().into();
        entry["sha256"] = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&wasm)).into();
    }
    std::fs::write(&mp, serde_json::to_vec(&m).unwrap()).unwrap();
    let bundle = dir.join(format!("lms-{version}.bundle"));
    lms_image_ok(&[
        "bundle".as_ref(),
        "--modules".as_ref(),
        modules.as_os_str(),
        "--version".as_ref(),
        version.as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        "--out".as_ref(),
        bundle.as_os_str(),
    ]);
    lms_image_ok(&[
        "publish".as_ref(),
        "--bundle".as_ref(),
        bundle.as_os_str(),
        "--repo".as_ref(),
        repo.as_os_str(),
        "--channel".as_ref(),
        "stable".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
    ]);
}

pub mod system;

/// Unsigned LEB128, as wasm sizes are written.
fn leb128(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}
