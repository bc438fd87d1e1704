//! The boot half of the image: kernel + initramfs built from the pinned
//! Debian packages boot under QEMU (TCG, direct kernel boot) to lms-init,
//! which loads every module the appliance needs; and the initramfs is
//! bit-for-bit reproducible. Needs qemu-system-x86_64, dpkg-deb and depmod
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

/// The static lms-node inside the VM serves learners on a forwarded port.
/// `cargo xtask ci` builds the musl binary and the modules and passes them in.
#[test]
fn the_vm_serves_learners_on_a_forwarded_port() {
    let (Ok(node), Ok(modules)) = (std::env::var("LMS_TEST_NODE_MUSL"), std::env::var("LMS_TEST_MODULES")) else {
        assert!(std::env::var("CI").is_err(), "CI runs this through `cargo xtask ci`, which sets LMS_TEST_NODE_MUSL");
        eprintln!("LMS_TEST_NODE_MUSL/LMS_TEST_MODULES not set: VM serving not tested (run `cargo xtask ci`)");
        return;
    };
    if Command::new("qemu-system-x86_64").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "CI must have qemu-system-x86_64");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let stripped = d.path().join("lms-node");
    let s = Command::new("strip").arg("-o").arg(&stripped).arg(&node).status().unwrap();
    assert!(s.success(), "strip {node}");
    let creds = d.path().join("htpasswd");
    // Cost 4: real bcrypt, if weak; only this test's VM uses it.
    std::fs::write(&creds, format!("kiosk:{}\n", bcrypt::hash("pw", 4).unwrap())).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = d.path().join("boot");
    let o = Command::new(env!("CARGO_BIN_EXE_lms-image"))
        .arg("initramfs")
        .arg(root.join("appliance/appliance-dev.toml"))
        .arg("--out")
        .arg(&out)
        .arg("--cache")
        .arg(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lms-image-cache"))
        .arg("--lms-node")
        .arg(&stripped)
        .arg("--modules")
        .arg(&modules)
        .arg("--credentials")
        .arg(&creds)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let start = Instant::now();
    let mut vm = qemu(&out, "1024", "console=ttyS0 panic=-1")
        .args([
            "-netdev",
            &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:8080"),
            "-device",
            "virtio-net-pci,netdev=n0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let get = |path: &str, auth: bool| -> Option<(u16, String)> {
        let mut args = vec!["-s".to_string(), "-m".into(), "5".into(), "-w".into(), "\n%{http_code}".into()];
        if auth {
            args.extend(["-u".into(), "kiosk:pw".into()]);
        }
        args.push(format!("http://127.0.0.1:{port}{path}"));
        let o = Command::new("curl").args(&args).output().ok()?;
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n')?;
        Some((code.trim().parse().ok()?, body.to_string()))
    };
    let mut ready = None;
    while start.elapsed() < Duration::from_secs(300) {
        if let Some((200, body)) = get("/readyz", false) {
            ready = Some((start.elapsed(), body));
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let courses = get("/v1/courses", true);
    let _ = vm.kill();
    let _ = vm.wait();
    let (took, body) = ready.expect("/readyz never answered 200 from the VM");
    assert!(body.contains("\"bundle_version\":\"1.0.0\""), "{body}");
    let (code, courses) = courses.unwrap();
    assert_eq!(code, 200, "{courses}");
    assert!(courses.contains("arithmetic"), "{courses}");
    eprintln!("QEMU start to /readyz 200: {took:?} (TCG, debug musl lms-node compiling modules in the guest)");
}
