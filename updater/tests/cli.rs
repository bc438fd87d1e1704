//! lms-updater as a program: the config contract, `status --json`, and exit
//! code 1 with nothing changed for bad input (the health-gate exit code 2 is
//! covered through the library in updater.rs and e2e.rs).

use std::process::Command;

fn run(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lms-updater")).arg("--config").arg(config).args(args).output().unwrap()
}

fn run_pinned(config: &std::path::Path, keys: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lms-updater"))
        .arg("--config")
        .arg(config)
        .arg("--pin-keys")
        .arg(keys)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn config_status_and_refusals() {
    let d = tempfile::tempdir().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    std::fs::write(d.path().join("release.pub"), hex::encode(key.verifying_key().to_bytes())).unwrap();
    let cfg = d.path().join("updater.toml");
    let modules = d.path().join("modules");
    std::fs::write(
        &cfg,
        format!(
            r#"repository = "{repo}"
channel = "stable"
trusted_keys = ["{key}"]
modules_dir = "{modules}"
node_admin = "http://127.0.0.1:9"
node_ready = "http://127.0.0.1:9/readyz"
health_timeout = "2s"
poll_interval = "10m"
node_id = "edge-001"
"#,
            repo = d.path().join("repo").display(),
            key = d.path().join("release.pub").display(),
            modules = modules.display()
        ),
    )
    .unwrap();

    let s = run(&cfg, &["status", "--json"]);
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let v: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    for k in ["current", "previous", "state", "rejected", "last_error"] {
        assert!(v.get(k).is_some(), "status lacks {k}: {v}");
    }
    assert_eq!(v["state"], "idle");

    // No repository yet: an error, exit 1, nothing installed.
    let c = run(&cfg, &["check", "--json"]);
    assert_eq!(c.status.code(), Some(1));
    let out: serde_json::Value = serde_json::from_slice(&c.stdout).unwrap();
    assert_eq!(out["result"], "error");
    assert!(out["error"].as_str().unwrap().contains("channels/stable.json"), "{out}");

    // A garbage bundle: exit 1, named, nothing changed.
    std::fs::write(d.path().join("junk.bundle"), b"not a bundle").unwrap();
    let i = run(&cfg, &["install", d.path().join("junk.bundle").to_str().unwrap()]);
    assert_eq!(i.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&i.stderr).contains("bundle"), "{}", String::from_utf8_lossy(&i.stderr));
    assert!(!modules.join("current").exists());
    let s: serde_json::Value = serde_json::from_slice(&run(&cfg, &["status", "--json"]).stdout).unwrap();
    assert!(s["last_error"].as_str().is_some());

    // Nothing to roll back to.
    assert_eq!(run(&cfg, &["rollback"]).status.code(), Some(1));

    // Issue 10, case 13: keys may be pinned to a directory (the appliance's
    // read-only /system/etc/lms/keys); a trusted key elsewhere, or a link
    // out of it, is refused before anything runs.
    let pinned = d.path().join("pinned");
    std::fs::create_dir(&pinned).unwrap();
    let outside = run_pinned(&cfg, &pinned, &["status"]);
    assert_eq!(outside.status.code(), Some(1));
    let err = String::from_utf8_lossy(&outside.stderr);
    assert!(err.contains("trusted_keys") && err.contains("--pin-keys"), "{err}");
    std::os::unix::fs::symlink(d.path().join("release.pub"), pinned.join("release.pub")).unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap();
    let key_line = format!("trusted_keys = [\"{}\"]", d.path().join("release.pub").display());
    assert!(text.contains(&key_line));
    std::fs::write(
        &cfg,
        text.replace(&key_line, &format!("trusted_keys = [\"{}\"]", pinned.join("release.pub").display())),
    )
    .unwrap();
    assert_eq!(run_pinned(&cfg, &pinned, &["status"]).status.code(), Some(1), "a link out of the pinned directory");
    std::fs::remove_file(pinned.join("release.pub")).unwrap();
    std::fs::copy(d.path().join("release.pub"), pinned.join("release.pub")).unwrap();
    let ok = run_pinned(&cfg, &pinned, &["status"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    // An unknown config key is named with the file.
    std::fs::write(&cfg, format!("{}\npoll_intervall = \"1m\"\n", std::fs::read_to_string(&cfg).unwrap())).unwrap();
    let e = run(&cfg, &["status"]);
    assert_eq!(e.status.code(), Some(1));
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(err.contains("poll_intervall") && err.contains("updater.toml"), "{err}");

    // A repository the updater cannot reach is refused when settings load
    // (issue 10, case 2: it used to be taken as a relative directory).
    let good = std::fs::read_to_string(&cfg).unwrap().replace("poll_intervall = \"1m\"\n", "");
    let repo_line = good.lines().find(|l| l.starts_with("repository")).unwrap().to_string();
    std::fs::write(&cfg, good.replace(&repo_line, "repository = \"ftp://updates.example.org/lms\"")).unwrap();
    let e = run(&cfg, &["check"]);
    assert_eq!(e.status.code(), Some(1));
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(err.contains("repository") && err.contains("ftp://"), "{err}");
}

/// Content through the same program: `--kind content` needs `content_dir`;
/// `install` tells a content bundle by its contents and gates it like any
/// update (no node answers here, so it is rolled back: exit 2); a tampered
/// one is refused (exit 1) with nothing changed; `status` shows both kinds.
#[test]
fn content_kind_from_the_command_line() {
    let d = tempfile::tempdir().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    std::fs::write(d.path().join("release.pub"), hex::encode(key.verifying_key().to_bytes())).unwrap();
    let cfg = d.path().join("updater.toml");
    let base = format!(
        r#"repository = "{repo}"
trusted_keys = ["{key}"]
modules_dir = "{modules}"
node_admin = "http://127.0.0.1:9"
node_ready = "http://127.0.0.1:9/readyz"
health_timeout = "1s"
node_id = "edge-001"
"#,
        repo = d.path().join("repo").display(),
        key = d.path().join("release.pub").display(),
        modules = d.path().join("modules").display()
    );
    std::fs::write(&cfg, &base).unwrap();
    let e = run(&cfg, &["--kind", "content", "check"]);
    assert_eq!(e.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&e.stderr).contains("content_dir"));

    let content = d.path().join("content");
    std::fs::write(&cfg, format!("{base}content_dir = \"{}\"\n", content.display())).unwrap();
    let pack = d.path().join("pack");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(pack.join("science.toml"), "id = \"science\"\n").unwrap();
    let bundle = d.path().join("content.bundle");
    lms_bundle::content::create(&pack, "1.0.0", vec!["science".into()], &key, &bundle).unwrap();

    let mut tampered = std::fs::read(&bundle).unwrap();
    let at = tampered.windows(7).position(|w| w == b"science").unwrap();
    tampered[at] = b'S';
    let bad = d.path().join("tampered.bundle");
    std::fs::write(&bad, tampered).unwrap();
    let i = run(&cfg, &["install", bad.to_str().unwrap(), "--json"]);
    assert_eq!(i.status.code(), Some(1), "{}", String::from_utf8_lossy(&i.stdout));
    assert!(!content.join("current").exists());

    let i = run(&cfg, &["install", bundle.to_str().unwrap(), "--json"]);
    let out: serde_json::Value = serde_json::from_slice(&i.stdout).unwrap();
    assert_eq!((i.status.code(), out["result"].as_str()), (Some(2), Some("rolled_back")), "{out}");
    assert!(!content.join("current").exists(), "a version no node served stayed current");

    let s = run(&cfg, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!((v["kind"].as_str(), v["content"]["kind"].as_str()), (Some("modules"), Some("content")), "{v}");
    assert_eq!(v["content"]["rejected"][0]["version"], "1.0.0", "{v}");
}

/// The system kind as an operator drives it: settings with `system_dir`,
/// a system bundle from a USB stick through `install` (exit 0, "rebooting",
/// a reboot request), `status --kind system --json` with both slots, and a
/// bad `reboot_window` refused when the settings load.
#[test]
fn system_install_and_status_from_the_command_line() {
    let d = tempfile::tempdir().unwrap();
    let p = |s: &str| d.path().join(s);
    let key = ed25519_dalek::SigningKey::from_bytes(&[6; 32]);
    std::fs::write(p("release.pub"), hex::encode(key.verifying_key().to_bytes())).unwrap();
    let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
    ok(Command::new("mkfs.vfat").arg("-C").arg(p("esp.img")).arg("16384"));
    for dir in ["::/loader", "::/loader/entries", "::/a", "::/b"] {
        ok(Command::new("mmd").arg("-i").arg(p("esp.img")).arg(dir));
    }
    std::fs::write(p("lms-a.conf"), "title A\nversion 0.1.1\nsort-key lms\n").unwrap();
    ok(Command::new("mcopy").arg("-i").arg(p("esp.img")).arg(p("lms-a.conf")).arg("::/loader/entries/lms-a.conf"));
    for s in ["a.img", "b.img"] {
        std::fs::File::create(p(s)).unwrap().set_len(2 << 20).unwrap();
    }
    std::fs::write(p("cmdline"), "console=ttyS0 lms.slot=a\n").unwrap();
    std::fs::write(p("os-release"), "IMAGE_ID=lms-edge-cli\nSYSTEM_VERSION=0.1.1\n").unwrap();
    let bundle = lms_bundle::testing::system_bundle_for(d.path(), "lms-edge-cli", "0.1.2", 24, &key);
    let settings = |window: &str| {
        format!(
            r#"repository = "{repo}"
trusted_keys = ["{key}"]
modules_dir = "{modules}"
node_admin = "http://127.0.0.1:9"
node_ready = "http://127.0.0.1:9/readyz"
node_id = "edge-001"
system_dir = "{system}"
cmdline_file = "{cmdline}"
os_release = "{os}"
reboot_request = "{reboot}"
{window}
[system_devices]
esp = "{esp}"
a = "{a}"
b = "{b}"
"#,
            repo = p("repo").display(),
            key = p("release.pub").display(),
            modules = p("modules").display(),
            system = p("system").display(),
            cmdline = p("cmdline").display(),
            os = p("os-release").display(),
            reboot = p("run/reboot").display(),
            esp = p("esp.img").display(),
            a = p("a.img").display(),
            b = p("b.img").display(),
        )
    };
    let cfg = p("updater.toml");
    std::fs::write(&cfg, settings("reboot_window = \"2:00-4:00\"")).unwrap();
    let bad = run(&cfg, &["status", "--kind", "system", "--json"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("reboot_window"), "{}", String::from_utf8_lossy(&bad.stderr));

    std::fs::write(&cfg, settings("")).unwrap();
    let i = run(&cfg, &["install", bundle.to_str().unwrap(), "--json"]);
    assert!(i.status.success(), "{}", String::from_utf8_lossy(&i.stderr));
    let out: serde_json::Value = serde_json::from_slice(&i.stdout).unwrap();
    assert_eq!(out["result"], "rebooting", "{out}");
    assert_eq!(out["version"], "0.1.2");
    assert!(p("run/reboot").is_file(), "no reboot request");
    let s = run(&cfg, &["status", "--kind", "system", "--json"]);
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let v: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(v["kind"], "system");
    assert_eq!(v["state"], "trial");
    assert_eq!(v["booted"], "a");
    assert_eq!(v["running_version"], "0.1.1");
    assert_eq!(v["slots"]["a"]["state"], "booted");
    assert_eq!(v["slots"]["b"]["state"], "on trial");
    assert_eq!(v["slots"]["b"]["entry"], "lms-b+3.conf");
    // Plain `status` shows the system beside the modules.
    let all = run(&cfg, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(v["system"]["trial"]["candidate"]["version"], "0.1.2", "{v}");
}
