//! The real binary: SIGHUP reloads the modules (what an operator or init
//! sends), SIGTERM drains and exits 0, bad settings exit 2 naming the key.

mod common;
use common::*;
use lms_node::client::Client;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The bundle version public /readyz tells a credential with scope `all`.
async fn version(client: &Client, base: &str) -> Option<String> {
    let auth = lms_node::client::basic_auth(USER, PASSWORD);
    let r = client.get(&format!("{base}/readyz"), &[("authorization", &auth)]).await.ok()?;
    (r.status == 200).then(|| r.json()["bundle_version"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn sighup_reloads_and_sigterm_drains() {
    let dir = tempfile::tempdir().unwrap();
    let (_a, b, current) = two_versions(dir.path());
    write_credentials(&dir.path().join("htpasswd"));
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lms-node"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg(format!("--admin-listen=unix:{}", dir.path().join("admin.sock").display()))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--modules")
        .arg(&current)
        .arg("--credentials")
        .arg(dir.path().join("htpasswd"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = Client::new(Duration::from_secs(10));
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while version(&client, &base).await.as_deref() != Some("1.0.0") {
        assert!(start.elapsed() < Duration::from_secs(60), "never ready on 1.0.0");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dir.path().join("admin.sock").exists(), "admin listener on a unix socket");

    let tmp = dir.path().join("current.tmp");
    std::os::unix::fs::symlink(&b, &tmp).unwrap();
    std::fs::rename(&tmp, &current).unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let start = Instant::now();
    while version(&client, &base).await.as_deref() != Some("2.0.0") {
        assert!(start.elapsed() < Duration::from_secs(60), "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM should end in a clean exit: {status}");
}

#[test]
fn bad_settings_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("node.toml");
    std::fs::write(&cfg, "cache_ttl = 300\nsync_intervall = \"10s\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lms-node")).args(["serve", "--config"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sync_intervall") && err.contains("node.toml"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_lms-node"))
        .args(["serve", "--admin-listen", "0.0.0.0:9090", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
    let out = Command::new(env!("CARGO_BIN_EXE_lms-node"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env("SYNC_INTERVAL", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SYNC_INTERVAL"));
}

/// Issue 10, case 13: every service ran as root. `--run-as UID:GID` drops
/// to the service's user once the settings are read, before listening.
#[tokio::test]
async fn run_as_drops_to_the_services_own_user() {
    let dir = tempfile::tempdir().unwrap();
    write_credentials(&dir.path().join("htpasswd"));
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let port = free_port();
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_lms-node"))
            .args(["serve", "--run-as", "65534:65534", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin-listen", &format!("127.0.0.1:{}", free_port())])
            .arg("--data-dir")
            .arg(&data)
            .arg("--modules")
            .arg(real_modules())
            .arg("--credentials")
            .arg(dir.path().join("htpasswd"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Not root: dropping is refused, plainly, and the node does not start.
        let out = spawn().wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--run-as 65534:65534"));
        eprintln!("not root: checked the refusal only");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    let mut child = spawn();
    let client = Client::new(Duration::from_secs(10));
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while version(&client, &base).await.is_none() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("lms-node exited ({status}): {err}");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let line =
        |k: &str| status.lines().find(|l| l.starts_with(k)).unwrap().split_whitespace().skip(1).collect::<Vec<_>>();
    assert_eq!(line("Uid:"), ["65534"; 4], "{status}");
    assert_eq!(line("Gid:"), ["65534"; 4], "{status}");
    assert_eq!(line("Groups:"), Vec::<&str>::new(), "{status}");
    assert_eq!(line("NoNewPrivs:"), ["1"]);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(data.join("lms.sqlite3")).unwrap().uid(), 65534);
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}
