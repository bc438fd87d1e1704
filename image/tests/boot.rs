//! The boot half of the image, cheaply: kernel + initramfs built from the
//! pinned Debian packages boot under QEMU (TCG, direct kernel boot) to
//! lms-init, which loads every module the appliance needs; and the initramfs
//! is bit-for-bit reproducible. The whole disk image is booted by
//! qemu-tests/. Needs qemu-system-x86_64, dpkg-deb and depmod
//! (`.ci/run` installs them) and the Debian mirror (or a warm cache).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// QEMU under TCG, direct kernel boot of `dir`'s vmlinuz + initrd.img,
/// serial console on stdio.
fn qemu(dir: &Path, memory: &str, append: &str) -> Command {
    let mut c = Command::new("qemu-system-x86_64");
    c.args(["-accel", "tcg", "-m", memory, "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio"])
        .arg("-kernel")
        .arg(dir.join("vmlinuz"))
        .arg("-initrd")
        .arg(dir.join("initrd.img"))
        .args(["-append", append]);
    c
}

fn build(out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lms-image-cache");
    let o = Command::new(env!("CARGO_BIN_EXE_lms-image"))
        .arg("initramfs")
        .arg(root.join("appliance/appliance-dev.toml"))
        .arg("--out")
        .arg(out)
        .arg("--cache")
        .arg(&cache)
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .output()
        .unwrap();
    assert!(o.status.success(), "lms-image initramfs: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn kernel_and_initramfs_boot_under_qemu_and_reproduce() {
    if Command::new("qemu-system-x86_64").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "CI must have qemu-system-x86_64 (.ci/run installs it)");
        eprintln!("qemu-system-x86_64 not installed: boot not tested here");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    build(&a);
    build(&b);
    assert_eq!(
        std::fs::read(a.join("initrd.img")).unwrap(),
        std::fs::read(b.join("initrd.img")).unwrap(),
        "two builds from the same inputs differ"
    );

    let start = Instant::now();
    let mut child = qemu(&a, "512", "console=ttyS0 lms.smoke=1 panic=-1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            panic!("the VM did not power off within 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let console = reader.join().unwrap();
    let line = console
        .lines()
        .find(|l| l.contains("lms-init: userspace up"))
        .unwrap_or_else(|| panic!("no lms-init line:\n{console}"));
    assert!(!console.contains("could not load"), "a module failed to load:\n{console}");
    let n: usize = line.split(", ").nth(1).and_then(|p| p.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(n >= 9, "{line}");
    eprintln!("booted to lms-init in {:?} (QEMU TCG, direct kernel boot)", start.elapsed());
}
