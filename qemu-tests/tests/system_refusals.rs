//! System bundles a node must refuse, and a system changed after it was
//! committed, on the real image (UEFI, systemd-boot, dm-verity). Published
//! to the node's repository one after the other: a system signed by a key
//! the node does not trust, one older than the system it runs, and the
//! right release with one byte of its image changed in the repository
//! (a broken mirror). Each is refused with nothing unverified on the disk,
//! and the node keeps serving. Then the mended release installs and is
//! committed; a byte of its partition is changed on the powered-off disk;
//! at the next boot dm-verity finds it, lms-init marks B bad, and the node
//! is back on A by itself, reporting why.

use lms_qemu_tests::system::*;
use lms_qemu_tests::*;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const OLDER: &str = "1767139200"; // a day before EPOCH
const RECORD: &str = "0b9f4f3e-5d7c-4c1a-9a57-2f6b8e1d4c02";
const BLOCK: usize = 4096;

/// Copies the files under `from` into `to`, the channel metadata last (a
/// node polling meanwhile sees the new release only once all its blobs are there).
fn sync_repo(from: &Path, to: &Path) {
    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            if e.file_type().unwrap().is_dir() { files(&e.path(), out) } else { out.push(e.path()) }
        }
    }
    let mut all = Vec::new();
    files(from, &mut all);
    all.sort_by_key(|p| p.starts_with(from.join("channels")));
    for f in all {
        let target = to.join(f.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&f, &target).unwrap();
    }
}

/// The blob of the published system image of `version` in `repo`.
fn image_blob(repo: &Path, version: &str) -> std::path::PathBuf {
    for e in std::fs::read_dir(repo.join("system")).unwrap().map(Result::unwrap) {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
        if m["system_version"] == version {
            let p = m["parts"].as_array().unwrap().iter().find(|p| p["name"] == "system.img").unwrap();
            return repo.join("blobs").join(p["sha256"].as_str().unwrap());
        }
    }
    panic!("system {version} not published in {}", repo.display());
}

/// Bytes of the partition `name` in the disk file.
fn read_partition(disk: &Path, name: &str) -> Vec<u8> {
    let (off, len) = partition(disk, name);
    let mut f = std::fs::File::open(disk).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    let mut out = vec![0u8; len as usize];
    f.read_exact(&mut out).unwrap();
    out
}

/// Every block of slot B is still empty or the genuine image's block there
/// (nothing unverified reached it); none from block `from` on was written.
fn nothing_unverified_in_b(disk: &Path, genuine: &[u8], from: usize, what: &str) {
    let slot = read_partition(disk, "lms-system-b");
    for (i, b) in slot.chunks(BLOCK).enumerate() {
        let empty = b.iter().all(|x| *x == 0);
        let good = genuine.get(i * BLOCK..(i + 1) * BLOCK) == Some(b);
        assert!(empty || (good && i < from), "{what}: block {i} of slot B holds bytes that are not B's verified image");
    }
}

/// Waits until the updater's log on the console shows `text` (the node
/// polls every 3 s), and checks the node kept serving and stayed on A;
/// `error`: the refusal is an error in /metrics (a downgrade is not: the
/// node is up to date).
fn refused(vm: &Vm, text: &str, error: bool, va: &str, disk: &Path) {
    assert!(console_shows(vm, text, Duration::from_secs(180)), "no refusal {text:?}:\n{}", vm.console_text());
    let ready = vm.http("GET", "/readyz", Some("demo:demo"), None).1;
    assert!(
        ready.contains(&format!("\"system_version\":\"{va}\"")) && ready.contains("\"system_slot\":\"a\""),
        "{ready}"
    );
    assert_eq!(entries(disk), ["lms-a.conf"], "{text}: the ESP's entries changed");
    let metrics = vm.http("GET", "/metrics", None, None).1;
    let want = format!("lms_updater_last_error{{kind=\"system\"}} {}", error as u8);
    assert!(metrics.contains(&want), "{want} not in {metrics}");
}

#[test]
fn bad_bundles_are_refused_and_a_changed_slot_falls_back() {
    let Some(i) = inputs() else { return };
    let d = tempfile::tempdir().unwrap();
    let s = setup(d.path(), "120s");
    let (stranger, _) = keygen(&made_dir(d.path().join("stranger")));
    let dir = |n: &str| d.path().join(n);
    release(&s, &i, &dir("release-a"), EPOCH, "");
    release(&s, &i, &dir("release-b"), RELEASE_B, "");
    release(&s, &i, &dir("release-old"), OLDER, "");
    release_signed(&s, &i, &dir("release-forged"), RELEASE_C, "", &stranger);
    let (va, vb) = (system_version(&dir("release-a")), system_version(&dir("release-b")));
    let disk = flashed(&s, &dir("release-a"), d.path());
    let mut vm = power_on(&dir("release-a"), &disk, d.path());
    vm.wait_ready(Duration::from_secs(400));
    let (code, body) = vm.http("POST", "/xapi/statements", Some("demo:demo"), Some(&statement(RECORD, "ada")));
    assert_eq!(code, 200, "{body}");
    let empty = vec![];

    // A system signed by someone else (with their own channel metadata).
    let t = Instant::now();
    publish_to(&s.repo, &dir("release-forged"), &stranger);
    refused(&vm, "signature does not verify with any trusted key", true, &va, &disk);
    nothing_unverified_in_b(&disk, &empty, 0, "unknown key");
    eprintln!("unknown key refused {:?} after publish", t.elapsed());

    // A genuine system older than the running one (a fresh repository: the
    // stranger's metadata is gone).
    std::fs::remove_dir_all(&s.repo).unwrap();
    std::fs::create_dir(&s.repo).unwrap();
    let t = Instant::now();
    publish(&s, &dir("release-old"));
    let old = system_version(&dir("release-old"));
    refused(&vm, &format!("channel offers {old}, not above {va} already committed here"), false, &va, &disk);
    nothing_unverified_in_b(&disk, &empty, 0, "downgrade");
    eprintln!("downgrade refused {:?} after publish", t.elapsed());

    // B, with one byte of its image changed in the repository after signing.
    let stage = dir("stage");
    sync_repo(&s.repo, &made_dir(stage.clone()));
    publish_to(&stage, &dir("release-b"), &s.key);
    let blob = image_blob(&stage, &vb);
    let genuine = std::fs::read(&blob).unwrap();
    let at = 6 * 1024 * 1024 + 5;
    let mut bad = genuine.clone();
    bad[at] ^= 0x01;
    std::fs::write(&blob, &bad).unwrap();
    let t = Instant::now();
    sync_repo(&stage, &s.repo);
    let block = at / BLOCK;
    refused(
        &vm,
        &format!("data block {block} (byte {}) does not match the signed tree", block * BLOCK),
        true,
        &va,
        &disk,
    );
    nothing_unverified_in_b(&disk, &genuine, block, "changed blob");
    eprintln!("changed image blob refused at block {block} {:?} after publish", t.elapsed());

    // The mirror mended: the same release installs, B is committed.
    let t = Instant::now();
    std::fs::write(image_blob(&s.repo, &vb), &genuine).unwrap();
    while entries(&disk) != ["lms-a.conf", "lms-b.conf"] {
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "B never committed: {:?}\n{}",
            entries(&disk),
            vm.console_text()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let ready = vm.http("GET", "/readyz", Some("demo:demo"), None).1;
    assert!(ready.contains(&format!("\"system_version\":\"{vb}\"")), "{ready}");
    eprintln!("mended: B committed {:?} after the blob was fixed", t.elapsed());
    vm.power_button(Duration::from_secs(120));
    drop(vm);

    // A byte of B's system partition changes on the powered-off disk.
    let (off, _) = partition(&disk, "lms-system-b");
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&disk).unwrap();
    let byte = off + 1024 * 1024 + 123;
    let mut one = [0u8; 1];
    f.seek(SeekFrom::Start(byte)).unwrap();
    f.read_exact(&mut one).unwrap();
    f.seek(SeekFrom::Start(byte)).unwrap();
    f.write_all(&[one[0] ^ 0x01]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let t = Instant::now();
    let mut vm = power_on(&dir("release-a"), &disk, d.path());
    vm.wait_ready(Duration::from_secs(600));
    let console = vm.console_text();
    assert!(console.contains("slot b: the system partition does not match its verity tree"), "{console}");
    assert!(console.contains("slot b marked bad; rebooting into slot a"), "{console}");
    let ready = vm.http("GET", "/readyz", Some("demo:demo"), None).1;
    assert!(
        ready.contains(&format!("\"system_version\":\"{va}\"")) && ready.contains("\"system_slot\":\"a\""),
        "{ready}"
    );
    assert_eq!(entries(&disk), ["lms-a.conf", "lms-b+0-1.conf"]);
    let want = format!("current=\"{va}\"");
    let mut metrics = String::new();
    for _ in 0..60 {
        metrics = vm.http("GET", "/metrics", None, None).1;
        if metrics.contains(&want) && metrics.contains(&format!("last_rejected=\"{vb}\"")) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(metrics.contains(&want) && metrics.contains(&format!("last_rejected=\"{vb}\"")), "{metrics}");
    let (code, body) = vm.http("GET", &format!("/xapi/statements?statementId={RECORD}"), Some("demo:demo"), None);
    assert_eq!(code, 200, "the record did not survive: {body}");
    eprintln!("changed B found at boot; back on A and reported {:?} after power-on", t.elapsed());
    vm.power_button(Duration::from_secs(120));
    drop(vm);
    fsck_esp(&disk, d.path());
}
