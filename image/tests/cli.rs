//! lms-image keygen, bundle and publish as an operator runs them, and
//! lms-updater's exit codes and status against what they produce.

use lms_bundle::testing::module_dir;
use std::process::Command;

fn image(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lms-image")).args(args).output().unwrap()
}

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn keygen_bundle_publish() {
    let d = tempfile::tempdir().unwrap();
    let p = |s: &str| d.path().join(s).to_str().unwrap().to_string();
    ok(&image(&["keygen", "--out", &p("release")]));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(p("release.key")).unwrap().permissions().mode() & 0o777, 0o600);
    let again = image(&["keygen", "--out", &p("release")]);
    assert_eq!(again.status.code(), Some(1), "keygen must not overwrite a key");

    module_dir(&d.path().join("m1"), "1.0.0");
    let out = ok(&image(&[
        "bundle",
        "--modules",
        &p("m1"),
        "--version",
        "1.0.0",
        "--key",
        &p("release.key"),
        "--out",
        &p("b1"),
    ]));
    assert!(out.contains("version 1.0.0"), "{out}");
    let bad =
        image(&["bundle", "--modules", &p("m1"), "--version", "1.0", "--key", &p("release.key"), "--out", &p("bx")]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("1.0"));

    ok(&image(&[
        "publish",
        "--bundle",
        &p("b1"),
        "--repo",
        &p("repo"),
        "--channel",
        "stable",
        "--key",
        &p("release.key"),
        "--rollout",
        "50",
    ]));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("repo/channels/stable.json")).unwrap()).unwrap();
    assert_eq!(meta["metadata_version"], 1);
    assert_eq!(meta["rollout_percent"], 50);
    assert!(d.path().join("repo").join(meta["bundle"]["path"].as_str().unwrap()).is_file());

    // The same version again is refused: nodes would never take it.
    let again = image(&[
        "publish",
        "--bundle",
        &p("b1"),
        "--repo",
        &p("repo"),
        "--channel",
        "stable",
        "--key",
        &p("release.key"),
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already offers 1.0.0"));

    module_dir(&d.path().join("m2"), "1.1.0");
    ok(&image(&["bundle", "--modules", &p("m2"), "--version", "1.1.0", "--key", &p("release.key"), "--out", &p("b2")]));
    ok(&image(&[
        "publish",
        "--bundle",
        &p("b2"),
        "--repo",
        &p("repo"),
        "--channel",
        "stable",
        "--key",
        &p("release.key"),
    ]));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("repo/channels/stable.json")).unwrap()).unwrap();
    assert_eq!(meta["metadata_version"], 2);

    // A bundle signed by another key is not published.
    ok(&image(&["keygen", "--out", &p("other")]));
    module_dir(&d.path().join("m3"), "1.2.0");
    ok(&image(&["bundle", "--modules", &p("m3"), "--version", "1.2.0", "--key", &p("other.key"), "--out", &p("b3")]));
    let e = image(&[
        "publish",
        "--bundle",
        &p("b3"),
        "--repo",
        &p("repo"),
        "--channel",
        "stable",
        "--key",
        &p("release.key"),
    ]);
    assert_eq!(e.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&e.stderr).contains("signature"), "{}", String::from_utf8_lossy(&e.stderr));
}

/// `publish` takes a system bundle too: its parts land as blobs in the same
/// repository, its manifest under `system/`, its own channel; an older
/// system is refused.
#[test]
fn publish_puts_a_system_bundle_on_its_own_channel() {
    let d = tempfile::tempdir().unwrap();
    let p = |s: &str| d.path().join(s).to_str().unwrap().to_string();
    ok(&image(&["keygen", "--out", &p("release")]));
    let key = lms_bundle::keys::load_signing(&d.path().join("release.key")).unwrap();
    let b2 = lms_bundle::testing::system_bundle(d.path(), "0.1.2", 16, &key);
    let b1 = lms_bundle::testing::system_bundle(d.path(), "0.1.1", 16, &key);
    let publish = |b: &std::path::Path| {
        image(&["publish", "--bundle", b.to_str().unwrap(), "--repo", &p("repo"), "--channel", "system-stable"])
    };
    let out = ok(&image(&[
        "publish",
        "--bundle",
        b2.to_str().unwrap(),
        "--repo",
        &p("repo"),
        "--channel",
        "system-stable",
        "--key",
        &p("release.key"),
    ]));
    assert!(out.contains("published 0.1.2 to channel system-stable"), "{out}");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("repo/channels/system-stable.json")).unwrap()).unwrap();
    assert_eq!(meta["bundle"]["path"], "system/lms-system-0.1.2.json");
    assert_eq!(std::fs::read_dir(d.path().join("repo/blobs")).unwrap().count(), 3, "kernel, initramfs, image");
    let older = image(&[
        "publish",
        "--bundle",
        b1.to_str().unwrap(),
        "--repo",
        &p("repo"),
        "--channel",
        "system-stable",
        "--key",
        &p("release.key"),
    ]);
    assert_eq!(older.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&older.stderr).contains("0.1.2"), "{}", String::from_utf8_lossy(&older.stderr));
    // Without --key nothing happens at all.
    assert!(!publish(&b1).status.success());
}
