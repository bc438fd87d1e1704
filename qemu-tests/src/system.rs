//! Helpers of the system-update scenarios (tests/system*.rs): releases of
//! the dev definition at other SOURCE_DATE_EPOCHs, a repository served to
//! the guest, a flashed disk powered on under UEFI with kept NVRAM, and
//! what the disk's GPT and ESP hold, read from the host.

use super::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// SOURCE_DATE_EPOCHs of later releases: a day, two days after EPOCH.
pub const RELEASE_B: &str = "1767312000";
pub const RELEASE_C: &str = "1767398400";

pub fn ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn system_version(image: &Path) -> String {
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(image.join("manifest.json")).unwrap()).unwrap();
    m["system_version"].as_str().unwrap().to_string()
}

/// (byte offset, bytes) of the partition named `name` in a disk file (from its GPT).
pub fn partition(disk: &Path, name: &str) -> (u64, u64) {
    let v: serde_json::Value = serde_json::from_str(&ok(Command::new("sfdisk").arg("--json").arg(disk))).unwrap();
    let p = v["partitiontable"]["partitions"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap();
    (p["start"].as_u64().unwrap() * 512, p["size"].as_u64().unwrap() * 512)
}

/// The ESP's byte offset in a disk file.
pub fn esp_offset(disk: &Path) -> u64 {
    partition(disk, "ESP").0
}

/// The boot entries on the disk's ESP (mtools reads it in place).
pub fn entries(disk: &Path) -> Vec<String> {
    let o = Command::new("mdir")
        .args(["-b", "-i"])
        .arg(format!("{}@@{}", disk.display(), esp_offset(disk)))
        .arg("::/loader/entries")
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap();
    let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .filter(|n| n.starts_with("lms-"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Seconds of the day at which the guest's lms-updater logged a line
/// containing `what` (its log is mirrored to the console on development
/// images, each line starting with an RFC 3339 time), the first such line.
pub fn logged_at(console: &str, what: &str) -> Option<f64> {
    let line = console.lines().find(|l| l.contains(what))?;
    let t = line.find('T').and_then(|i| line.get(i + 1..i + 16))?;
    let (h, rest) = t.split_once(':')?;
    let (m, sec) = rest.split_once(':')?;
    Some(
        h.parse::<f64>().ok()? * 3600.0
            + m.parse::<f64>().ok()? * 60.0
            + sec.trim_end_matches('Z').parse::<f64>().ok()?,
    )
}

/// What `fsck.fat -n` says of a copy of the disk's ESP (it changes nothing).
pub fn fsck_report(disk: &Path, scratch: &Path) -> (bool, String) {
    let esp = scratch.join("esp-copy.img");
    let off = esp_offset(disk);
    ok(Command::new("dd").arg(format!("if={}", disk.display())).arg(format!("of={}", esp.display())).args([
        "bs=1M",
        &format!("skip={}", off >> 20),
        "count=64",
        "status=none",
    ]));
    let o = Command::new("fsck.fat").arg("-n").arg(&esp).output().unwrap();
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// `fsck.fat -n` on a copy of the disk's ESP finds nothing.
pub fn fsck_esp(disk: &Path, scratch: &Path) {
    let (clean, report) = fsck_report(disk, scratch);
    assert!(clean, "fsck.fat -n on the ESP:\n{report}");
}

/// A repository served to the guest (10.0.2.2), the dev settings pointing
/// at it (poll every 3 s, gate within `health`), a release key.
pub struct Setup {
    pub repo: std::path::PathBuf,
    pub spec: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub pubkey: std::path::PathBuf,
}

pub fn setup(dir: &Path, health: &str) -> Setup {
    setup_with(dir, health, "")
}

/// The same with more `[updater]` settings lines (`step_pause = "2s"`).
pub fn setup_with(dir: &Path, health: &str, updater: &str) -> Setup {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let port = serve(repo.clone());
    let settings = dir.join("lms.toml");
    let factory = std::fs::read_to_string(root().join("appliance/factory/lms-dev.toml")).unwrap();
    let factory = factory
        .replace("repository = \"http://10.0.2.2:8000/\"", &format!("repository = \"http://10.0.2.2:{port}/\""))
        .replace("poll_interval = \"10m\"", &format!("poll_interval = \"3s\"\n{updater}"))
        .replace("health_timeout = \"120s\"", &format!("health_timeout = \"{health}\""));
    assert!(
        factory.contains("system_dir = \"/data/system\"") && factory.contains(health),
        "the dev settings changed shape"
    );
    std::fs::write(&settings, factory).unwrap();
    let (key, pubkey) = keygen(dir);
    Setup { repo, spec: definition(dir, &settings), key, pubkey }
}

/// Builds a release at `epoch` into `out`, its kernel command line extended by `extra`.
pub fn release(s: &Setup, i: &Inputs, out: &Path, epoch: &str, extra: &str) {
    release_signed(s, i, out, epoch, extra, &s.key)
}

/// The same, signed with `key`.
pub fn release_signed(s: &Setup, i: &Inputs, out: &Path, epoch: &str, extra: &str, key: &Path) {
    let text = std::fs::read_to_string(&s.spec).unwrap();
    let spec = out.with_extension("toml");
    let changed = text.replace(
        "cmdline = \"console=ttyS0 panic=10 quiet lms.debug=1\"",
        &format!("cmdline = \"console=ttyS0 panic=10 quiet lms.debug=1{extra}\""),
    );
    assert!(extra.is_empty() || changed != text, "the dev definition's cmdline changed shape");
    std::fs::write(&spec, changed).unwrap();
    let o = build_at(&spec, out, key, i, epoch);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

pub fn publish(s: &Setup, release: &Path) {
    publish_to(&s.repo, release, &s.key)
}

/// Publishes `release`'s system bundle on `system-stable` of `repo`, signed with `key`.
pub fn publish_to(repo: &Path, release: &Path, key: &Path) {
    ok(Command::new(lms_image())
        .arg("publish")
        .arg("--bundle")
        .arg(release.join("system.bundle"))
        .arg("--repo")
        .arg(repo)
        .args(["--channel", "system-stable", "--key"])
        .arg(key));
}

/// Whether the console shows `text` within `limit`.
pub fn console_shows(vm: &Vm, text: &str, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if vm.console_text().contains(text) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Flashes release `a` onto `dir/node.img`, as a node leaves the factory.
pub fn flashed(s: &Setup, a: &Path, dir: &Path) -> std::path::PathBuf {
    let disk = dir.join("node.img");
    ok(Command::new(lms_image()).arg("flash").arg(a).arg("--device").arg(&disk).arg("--pubkey").arg(&s.pubkey));
    disk
}

/// Powers the node on: UEFI with its variable store kept in `dir` (its
/// NVRAM), guest reboots staying inside this QEMU, the kernel of `a` only
/// for the record (the disk's ESP decides what boots).
pub fn power_on(a: &Path, disk: &Path, dir: &Path) -> Vm {
    let vars = dir.join("OVMF_VARS.fd");
    let boot = Boot { dir: a, uefi: true, overlay: None, disk: Some(disk), scratch: dir };
    Vm::start_with(boot, &["--reboot".as_ref(), "--uefi-vars".as_ref(), vars.as_os_str()])
}

/// Polls the node's admin-detail /readyz until it runs `version`; the time it took.
pub fn wait_for_system(vm: &Vm, version: &str, since: Instant, limit: Duration) -> Duration {
    while since.elapsed() < limit {
        let (code, ready) = vm.http("GET", "/readyz", Some("demo:demo"), None);
        if code == 200 && ready.contains(&format!("\"system_version\":\"{version}\"")) {
            return since.elapsed();
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("not on system {version} within {limit:?}:\n{}", vm.console_text());
}

/// Power cuts while an update runs on: the updater's log is on the console
/// (development images) and pauses after each step (`step_pause`, longer
/// than the console's lag), so a cut lands right after the marker it was
/// seen for. Markers are `cuts`, in order (a marker `step=X` counts on a
/// line of the payload `kind`; any other marker on any line; only what the
/// console shows since the call, or since the boot); each cut waits for the
/// next marker or a later one (a cut that landed late may have let the
/// update pass some), and lands after the latest seen. The VM is dropped
/// (QEMU killed: the power cut), `after_cut(cut)` inspects the disk,
/// `boot()` powers the node on again and `check(vm, cut)` judges that boot.
/// Returns the VM of the last boot and the markers cut at.
pub fn power_cuts<'c>(
    mut vm: Vm,
    cuts: &[&'c str],
    kind: &str,
    mut after_cut: impl FnMut(&str),
    mut boot: impl FnMut() -> Vm,
    mut check: impl FnMut(&mut Vm, &str),
) -> (Vm, Vec<&'c str>) {
    let in_kind = format!("kind=\"{kind}\"");
    // What the console showed before (a first boot's factory install logs
    // the same steps) does not count; each boot after a cut has a new console.
    let mut before = vm.console_text().len();
    let mut next = 0;
    let mut done = Vec::new();
    while next < cuts.len() {
        let seen = Instant::now();
        let cut = loop {
            let text = vm.console_text();
            let text = text.get(before..).unwrap_or_default();
            let plain = text.replace("\u{1b}[3m", "").replace("\u{1b}[0m", "").replace("\u{1b}[2m", "");
            let latest = (next..cuts.len()).rev().find(|&k| {
                let m = cuts[k];
                plain.lines().any(|l| l.contains(m) && (!m.starts_with("step=") || l.contains(&in_kind)))
            });
            if let Some(k) = latest {
                next = k + 1;
                break cuts[k];
            }
            assert!(seen.elapsed() < Duration::from_secs(600), "never reached {}:\n{text}", cuts[next]);
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(vm); // the power cut
        done.push(cut);
        after_cut(cut);
        vm = boot();
        before = 0;
        check(&mut vm, cut);
    }
    (vm, done)
}
