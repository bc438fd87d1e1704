//! Offline and back: the node has two network cards, the learners' LAN
//! (the forwarded port) and its uplink to a hub (a second lms-node on the
//! host, reached at 10.0.3.2). Learners write statements; the uplink's link
//! is cut on the QEMU monitor (`set_link uplink off`) while they go on
//! writing, and the node answers them and queues; the link comes back, and
//! the hub ends with every statement exactly once.

use lms_qemu_tests::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The hub: the same static lms-node, on the host, with the dev credentials.
struct Hub {
    child: Child,
    port: u16,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn hub(i: &Inputs, dir: &std::path::Path) -> Hub {
    let factory = root().join("appliance/factory");
    std::fs::copy(factory.join("dev-htpasswd"), dir.join("htpasswd")).unwrap();
    std::fs::copy(factory.join("dev-scopes.toml"), dir.join("scopes.toml")).unwrap();
    let (port, admin) = (free_port(), free_port());
    let mut c = Command::new(&i.node);
    c.arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}"), "--admin-listen", &format!("127.0.0.1:{admin}")])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--modules")
        .arg(&i.modules)
        .arg("--credentials")
        .arg(dir.join("htpasswd"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl between fork and exec is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let hub = Hub { child: c.spawn().unwrap(), port };
    let t = Instant::now();
    while hub_get(&hub, "/readyz").0 != 200 {
        assert!(t.elapsed() < Duration::from_secs(60), "the hub never got ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    hub
}

fn hub_get(hub: &Hub, path: &str) -> (u16, String) {
    let o = Command::new("curl")
        .args(["-s", "-m", "10", "-u", "demo:demo", "-H", "X-Experience-API-Version: 2.0.0", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{}{path}", hub.port))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// How many of `ids` the hub holds.
fn on_hub(hub: &Hub, ids: &[String]) -> usize {
    ids.iter().filter(|id| hub_get(hub, &format!("/xapi/statements?statementId={id}")).0 == 200).count()
}

fn outbox_depth(vm: &Vm) -> u64 {
    let (_, body) = vm.http("GET", "/v1/sync/status", Some("demo:demo"), None);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["outbox_depth"].as_u64().unwrap_or_else(|| panic!("no outbox_depth in {body}"))
}

/// Learners write `n` statements (ids from `from`); every answer must be 200.
fn learners_write(vm: &Vm, from: usize, n: usize, ids: &mut Vec<String>) {
    for k in from..from + n {
        let id = format!("5e1f0000-0000-4000-8000-{k:012}");
        let (code, body) = vm.http("POST", "/xapi/statements", Some("demo:demo"), Some(&statement(&id, "mei")));
        assert_eq!(code, 200, "statement {k}: {body}");
        assert_eq!(vm.http("GET", "/v1/courses", Some("demo:demo"), None).0, 200);
        ids.push(id);
    }
}

#[test]
fn offline_and_back_every_statement_reaches_the_hub_once() {
    let Some(i) = inputs() else { return };
    let d = tempfile::tempdir().unwrap();
    let hub = hub(&i, &made_dir(d.path().join("hub")));
    let settings = d.path().join("lms.toml");
    let factory = std::fs::read_to_string(root().join("appliance/factory/lms-dev.toml")).unwrap();
    let uplink = format!(
        "sync_interval = \"2s\"\nsync_enabled = true\nupstream = \"http://10.0.3.2:{}/xapi\"\nupstream_user = \"demo\"\nupstream_password = \"demo\"",
        hub.port
    );
    let changed = factory.replace("sync_interval = \"10s\"", &uplink);
    assert!(changed != factory, "the dev settings changed shape");
    std::fs::write(&settings, changed).unwrap();
    let (key, _) = keygen(d.path());
    let image = d.path().join("image");
    let o = build(&definition(d.path(), &settings), &image, &key, &i);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let boot = Boot { dir: &image, uefi: false, overlay: None, disk: None, scratch: d.path() };
    let mut vm = Vm::start_with(boot, &["--uplink".as_ref()]);
    vm.wait_ready(Duration::from_secs(300));

    // Online: statements reach the hub.
    let mut ids = Vec::new();
    learners_write(&vm, 0, 10, &mut ids);
    let t = Instant::now();
    while on_hub(&hub, &ids) < ids.len() {
        assert!(t.elapsed() < Duration::from_secs(120), "online statements not on the hub:\n{}", vm.console_text());
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!("online: 10 statements on the hub within {:?}", t.elapsed());

    // The uplink goes down; learners go on, the node answers and queues.
    let answer = vm.monitor("set_link uplink off");
    assert!(!answer.contains("not found") && !answer.contains("rror"), "{answer}");
    let offline = Instant::now();
    learners_write(&vm, 10, 30, &mut ids);
    std::thread::sleep(Duration::from_secs(8)); // several sync intervals
    let queued = outbox_depth(&vm);
    assert_eq!(queued, 30, "the node should hold the 30 offline statements");
    assert_eq!(on_hub(&hub, &ids[10..]), 0, "statements got past a link that is down");
    eprintln!("offline: 30 statements answered and queued ({queued} in the outbox) over {:?}", offline.elapsed());

    // Back: everything arrives, once.
    vm.monitor("set_link uplink on");
    let back = Instant::now();
    while on_hub(&hub, &ids) < ids.len() || outbox_depth(&vm) > 0 {
        assert!(
            back.elapsed() < Duration::from_secs(180),
            "after the link came back: {} of {} on the hub, outbox {}",
            on_hub(&hub, &ids),
            ids.len(),
            outbox_depth(&vm)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!("link back: the outbox drained to the hub in {:?}", back.elapsed());
    let (code, body) = hub_get(&hub, "/xapi/statements?limit=500");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut got: Vec<String> =
        v["statements"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want, "the hub holds each statement exactly once, and nothing else");
    vm.power_button(Duration::from_secs(120));
}
