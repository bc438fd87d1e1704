//! The appliance image end to end: reproducible, signed and tamper-evident;
//! boots under QEMU (direct kernel boot and the full UEFI path) to a node that
//! serves learners, keeps acknowledged writes across a power-button
//! shutdown and across a hard power cut (QEMU killed), and comes back with
//! the same data.
//!
//! One image is built per test binary and shared; the VMs run one at a time
//! (TCG on a 2-core machine).

use lms_qemu_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

struct Built {
    dir: PathBuf,
    pubkey: PathBuf,
    key: PathBuf,
    scratch: PathBuf,
}

static VM_LOCK: Mutex<()> = Mutex::new(());

/// The dev image, built once for every test here.
fn image(i: &Inputs) -> &'static Built {
    static IMAGE: OnceLock<Built> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let scratch = tempfile::tempdir().unwrap().keep();
        let (key, pubkey) = keygen(&scratch);
        let dir = scratch.join("image");
        let t = Instant::now();
        let o = build(&dev_definition(), &dir, &key, i);
        assert!(o.status.success(), "lms-image build: {}", String::from_utf8_lossy(&o.stderr));
        eprintln!("image built in {:?}", t.elapsed());
        Built { dir, pubkey, key, scratch }
    })
}

fn verify(dir: &Path, pubkey: &Path) -> std::process::Output {
    Command::new(lms_image()).arg("verify").arg(dir).arg("--pubkey").arg(pubkey).output().unwrap()
}

fn flip_byte(file: &Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(file).unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x01]).unwrap();
}

#[test]
fn two_builds_are_bit_identical_and_verify_catches_one_changed_byte() {
    let Some(i) = inputs() else { return };
    let img = image(&i);
    let again = img.scratch.join("again");
    let t = Instant::now();
    let o = build(&dev_definition(), &again, &img.key, &i);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!("rebuild from a warm cache: {:?}", t.elapsed());
    for f in ["disk.img", "manifest.json", "manifest.sig", "boot/initrd.img", "boot/vmlinuz", "system.bundle"] {
        assert!(
            std::fs::read(img.dir.join(f)).unwrap() == std::fs::read(again.join(f)).unwrap(),
            "{f} differs between two builds"
        );
    }

    let ok = verify(&again, &img.pubkey);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    // One byte inside the system partition.
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(again.join("manifest.json")).unwrap()).unwrap();
    let sys = m["partitions"].as_array().unwrap().iter().find(|p| p["name"] == "lms-system-a").unwrap();
    let at = sys["offset"].as_u64().unwrap() + 4096;
    flip_byte(&again.join("disk.img"), at);
    let bad = verify(&again, &img.pubkey);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(err.contains("disk.img") && err.contains("lms-system-a"), "{err}");
    flip_byte(&again.join("disk.img"), at);
    assert!(verify(&again, &img.pubkey).status.success());

    // One byte of the kernel, then of the manifest itself.
    flip_byte(&again.join("boot/vmlinuz"), 1000);
    let err = String::from_utf8_lossy(&verify(&again, &img.pubkey).stderr).into_owned();
    assert!(err.contains("boot/vmlinuz"), "{err}");
    flip_byte(&again.join("boot/vmlinuz"), 1000);
    flip_byte(&again.join("manifest.json"), 10);
    let bad = verify(&again, &img.pubkey);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("signature"), "{}", String::from_utf8_lossy(&bad.stderr));

    // A different key does not verify it either.
    let (_, other) = keygen(&made_dir(img.scratch.join("other-key")));
    assert!(!verify(&img.dir, &other).status.success());

    // inspect names what is absent.
    let o = Command::new(lms_image()).arg("inspect").arg(&img.dir).arg("--json").output().unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let absent: Vec<&str> = v["absent"].as_array().unwrap().iter().filter_map(|a| a["name"].as_str()).collect();
    if !Path::new(&root()).join("appliance/artifacts").exists() {
        assert!(absent.contains(&"wasmedge") && absent.contains(&"k3s-airgap-images"), "{absent:?}");
    }
}

const FIRST: &str = "6d1c6a1e-5f0e-4a57-9a59-2b1d8c0e0001";
const SECOND: &str = "6d1c6a1e-5f0e-4a57-9a59-2b1d8c0e0002";

#[test]
fn direct_boot_serves_learners_and_keeps_data_across_a_power_cycle() {
    let Some(i) = inputs() else { return };
    let img = image(&i);
    let _one_vm = VM_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let overlay = img.scratch.join("direct.qcow2");
    let _ = std::fs::remove_file(&overlay);
    let boot = || Boot { dir: &img.dir, uefi: false, overlay: Some(&overlay), disk: None, scratch: &img.scratch };

    let mut vm = Vm::start(boot());
    let first = vm.wait_ready(Duration::from_secs(300));
    eprintln!("first boot (direct kernel boot, factory bundle install): QEMU start to /readyz 200 in {first:?}");
    let (code, ready) = vm.http("GET", "/readyz", Some("demo:demo"), None);
    assert_eq!(code, 200, "{ready}");
    assert!(ready.contains("\"bundle_version\":\"1.0.0\"") && ready.contains("\"node_id\":\"edge-dev\""), "{ready}");
    // The factory content bundle goes in after the modules, through the
    // updater's gate: then the node serves the content pack (module bundles
    // carry no courses).
    let took = vm.wait_content("1.0.0", Duration::from_secs(180));
    eprintln!("factory content served {took:?} after the node was first ready");
    let (code, courses) = vm.http("GET", "/v1/courses", Some("demo:demo"), None);
    assert_eq!(code, 200, "{courses}");
    assert!(courses.contains("arithmetic"), "{courses}");
    assert_eq!(vm.http("GET", "/v1/courses", None, None).0, 401);
    assert_eq!(
        vm.http("GET", "/readyz", None, None),
        (200, "{\"ready\":true}".to_string()),
        "public /readyz tells more"
    );
    let (code, body) = vm.http("POST", "/xapi/statements", Some("demo:demo"), Some(&statement(FIRST, "ada")));
    assert_eq!(code, 200, "{body}");
    // The image's demo learner (roster imported on first boot, as the node's
    // user) signs in and reaches their own progress, not another's.
    let session = sign_in(&vm, "demo-learner", "demo-learner");
    assert_eq!(page(&vm, &session, "/v1/learners/demo-learner/progress", None).0, 200);
    assert_eq!(page(&vm, &session, "/v1/learners/ada/progress", None).0, 403);
    learner_flow(&vm, &session);
    coach_view(&vm);

    let down = vm.power_button(Duration::from_secs(120));
    let console = vm.console_text();
    assert!(console.contains("data partition unmounted cleanly"), "{console}");
    eprintln!("power button to QEMU exit: {down:?}");
    drop(vm);

    let mut vm = Vm::start(boot());
    let second = vm.wait_ready(Duration::from_secs(300));
    eprintln!("second boot (code cache on the data partition): QEMU start to /readyz 200 in {second:?}");
    let (code, body) = vm.http("GET", &format!("/xapi/statements?statementId={FIRST}"), Some("demo:demo"), None);
    assert_eq!(code, 200, "the statement did not survive the power cycle: {body}");
    assert!(body.contains("ada"), "{body}");
    let console = vm.console_text();
    assert!(
        !console.contains("factory bundle installed"),
        "second boot installed the factory bundle again:\n{console}"
    );

    // A hard power cut right after a 200: QEMU is killed, no shutdown at all.
    let (code, body) = vm.http("POST", "/xapi/statements", Some("demo:demo"), Some(&statement(SECOND, "ada")));
    assert_eq!(code, 200, "{body}");
    drop(vm);
    let mut vm = Vm::start(boot());
    vm.wait_ready(Duration::from_secs(300));
    for id in [FIRST, SECOND] {
        let (code, body) = vm.http("GET", &format!("/xapi/statements?statementId={id}"), Some("demo:demo"), None);
        assert_eq!(code, 200, "statement {id} lost by the power cut: {body}");
    }
    // What the learner did in the browser survived both power cycles.
    let (code, body) = vm.http("GET", "/v1/learners/demo-learner/progress?course=arithmetic", Some("demo:demo"), None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""completed_lessons":["place-value"]"#) && body.contains(r#""passed":true"#), "{body}");
}

/// The learner app on the booted image, as a browser without JavaScript
/// uses it: home, a lesson (recorded as completed), the quiz form posted
/// with the page's CSRF token (all right), the score, my progress.
fn learner_flow(vm: &Vm, session: &str) {
    let (code, home) = page(vm, session, "/", None);
    assert_eq!(code, 200, "{home}");
    assert!(home.contains("欢迎") && home.contains(r#"href="/static/app."#), "{home}");
    let at = home.find(r#"name="csrf" value=""#).expect("a form with a CSRF token") + 19;
    let csrf = home[at..].split('"').next().unwrap().to_string();
    let (code, lesson) = page(vm, session, "/courses/arithmetic/lessons/place-value", None);
    assert_eq!(code, 200, "{lesson}");
    assert!(lesson.contains("Place value") && lesson.contains("本课已标记为完成"), "{lesson}");
    let (code, quiz) = page(vm, session, "/quizzes/arithmetic-check", None);
    assert!(code == 200 && quiz.contains(r#"name="answer-q1""#), "{quiz}");
    let answers = format!("csrf={csrf}&answer-q1=b&answer-q2=c&answer-q3=a&answer-q4=d&answer-q5=b");
    let (code, result) = page(vm, session, "/quizzes/arithmetic-check", Some(&answers));
    assert_eq!(code, 200, "{result}");
    assert!(result.contains("你答对了 5/5 题") && result.contains("你通过了"), "{result}");
    let (code, progress) = page(vm, session, "/progress", None);
    assert!(code == 200 && progress.contains("<td>1/8</td><td>12.5%</td><td>1/1</td>"), "{progress}");
}

/// The image's demo coach sees what the demo learner just did: the class
/// table with their percent and passed quiz, the CSV, the learner's detail;
/// and the learner is refused the coach pages.
fn coach_view(vm: &Vm) {
    let coach = sign_in(vm, "demo-coach", "demo-coach");
    let (code, classes) = page(vm, &coach, "/coach", None);
    assert!(code == 200 && classes.contains(r#"href="/coach/classes/demo%2Dclass""#), "{classes}");
    let (code, class) = page(vm, &coach, "/coach/classes/demo-class", None);
    assert_eq!(code, 200, "{class}");
    assert!(class.contains("示例学员") && class.contains("12.5%"), "{class}");
    let (code, csv) = page(vm, &coach, "/coach/classes/demo-class/csv", None);
    assert!(code == 200 && csv.starts_with('\u{feff}') && csv.contains("demo-learner"), "{csv}");
    let (code, detail) = page(vm, &coach, "/coach/learners/demo-learner", None);
    assert!(code == 200 && detail.contains("<td>1/8</td><td>12.5%</td><td>1/1</td>"), "{detail}");
    let learner = sign_in(vm, "demo-learner", "demo-learner");
    assert_eq!(page(vm, &learner, "/coach/classes/demo-class", None).0, 403);
}

/// GET `path` (or POST the form `form`) with the session cookie: status and body.
fn page(vm: &Vm, cookie: &str, path: &str, form: Option<&str>) -> (u16, String) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-s", "-m", "60", "-w", "\n%{http_code}", "-H", &format!("Cookie: {cookie}")]);
    if let Some(f) = form {
        cmd.args(["--data", f]);
    }
    let o = cmd.arg(format!("http://127.0.0.1:{}{path}", vm.port)).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn uefi_boot_from_the_disk_reaches_ready() {
    let Some(i) = inputs() else { return };
    let img = image(&i);
    let _one_vm = VM_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut vm = Vm::start(Boot { dir: &img.dir, uefi: true, overlay: None, disk: None, scratch: &img.scratch });
    let took = vm.wait_ready(Duration::from_secs(400));
    eprintln!("UEFI (OVMF + systemd-boot from the ESP): QEMU start to /readyz 200 in {took:?}");
    let (code, _) = vm.http("GET", "/v1/courses", Some("demo:demo"), None);
    assert_eq!(code, 200);
}

/// dm-verity on the real boot path: one byte changed in slot A's system
/// partition (inside the squashfs) after the image was signed. The boot reads
/// the whole slot through a checking mapping first, finds the block, and
/// never mounts it; with no other slot to fall back to, the node says so and
/// waits instead of running a modified system.
#[test]
fn a_byte_changed_in_the_system_partition_never_runs() {
    let Some(i) = inputs() else { return };
    let img = image(&i);
    let _one_vm = VM_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(img.dir.join("manifest.json")).unwrap()).unwrap();
    let sys = m["partitions"].as_array().unwrap().iter().find(|p| p["name"] == "lms-system-a").unwrap();
    let disk = img.scratch.join("tampered-system.img");
    let st = Command::new("cp").arg("--sparse=always").arg(img.dir.join("disk.img")).arg(&disk).status().unwrap();
    assert!(st.success());
    // A block in the middle of the squashfs, which nothing reads early by chance.
    let data_blocks = m["verity"]["data_blocks"].as_u64().unwrap();
    flip_byte(&disk, sys["offset"].as_u64().unwrap() + data_blocks / 2 * 4096 + 17);
    let vm = Vm::start(Boot { dir: &img.dir, uefi: false, overlay: None, disk: Some(&disk), scratch: &img.scratch });
    let t = Instant::now();
    let mut console = String::new();
    while t.elapsed() < Duration::from_secs(180) {
        console = vm.console_text();
        if console.contains("no other slot to boot") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(console.contains("does not match its verity tree"), "no verity check:\n{console}");
    assert!(console.contains("corrupted"), "the kernel named no corrupted block:\n{console}");
    assert!(console.contains("no other slot to boot"), "{console}");
    assert!(!console.contains("mounted read-only through dm-verity"), "the changed system was mounted:\n{console}");
    assert!(!console.contains("ready to serve"), "{console}");
    eprintln!("tampered system partition: refused {:?} after QEMU start", t.elapsed());
    drop(vm);
    let _ = std::fs::remove_file(&disk);
}

/// Signs `user` in through the form, as a browser would; the session cookie pair.
fn sign_in(vm: &Vm, user: &str, password: &str) -> String {
    let csrf = "qemu-test-csrf-0123456789";
    let o = std::process::Command::new("curl")
        .args(["-s", "-m", "60", "-o", "/dev/null", "-D", "-", "-H", &format!("Cookie: lms_csrf={csrf}")])
        .args(["--data", &format!("username={user}&password={password}&csrf={csrf}")])
        .arg(format!("http://127.0.0.1:{}/login", vm.port))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(head.starts_with("HTTP/1.1 303") && head.contains("location: /\r\n"), "{head}");
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: lms_session="))
        .map(|v| format!("lms_session={}", v.split(';').next().unwrap()))
        .unwrap_or_else(|| panic!("no session cookie: {head}"))
}
