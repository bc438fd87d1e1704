//! System updates through the one engine, on a real FAT ESP (mkfs.vfat)
//! and slot partitions that are files, with a model of systemd-boot's boot
//! counting between the "reboots" (the real boot loader, kernel and power
//! cuts are in qemu-tests). Covers A -> B committed, a B that fails its
//! health gate, a B whose kernel never comes up, refusals before any
//! write, and a stop at every step of the install.

use ed25519_dalek::SigningKey;
use lms_bundle::Version;
use lms_updater::kinds::system::{Devices, Entry, Esp, System};
use lms_updater::node::NodeControl;
use lms_updater::repo::DirRepo;
use lms_updater::{Outcome, SYSTEM_STEPS, Step, UpdateError, Updater};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const NAME: &str = "lms-edge-test";
const FACTORY: &str = "0.1.1";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

/// lms-node as the gate sees it: ready with its modules, or not.
struct Node(Arc<AtomicBool>);

impl NodeControl for Node {
    fn reload(&self) -> Result<(), String> {
        Ok(())
    }
    fn ready_version(&self) -> Result<Option<String>, String> {
        Ok(self.0.load(Ordering::SeqCst).then(|| "1.0.0".to_string()))
    }
}

struct World {
    dir: tempfile::TempDir,
    node_ready: Arc<AtomicBool>,
}

fn run(c: &mut Command) {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?}: {}", String::from_utf8_lossy(&o.stderr));
}

impl World {
    /// A node as flashed: slot A runs FACTORY (entry lms-a.conf), B empty.
    fn new() -> World {
        let w = World { dir: tempfile::tempdir().unwrap(), node_ready: Arc::new(AtomicBool::new(true)) };
        let esp = w.p("esp.img");
        run(Command::new("mkfs.vfat").args(["-C"]).arg(&esp).arg("16384"));
        for d in ["::/loader", "::/loader/entries", "::/a", "::/b"] {
            run(Command::new("mmd").arg("-i").arg(&esp).arg(d));
        }
        let entry = w.p("lms-a.conf");
        std::fs::write(&entry, lms_bundle::system::boot_entry("LMS", FACTORY, 'a', "console=ttyS0 lms.slot=a"))
            .unwrap();
        run(Command::new("mcopy").arg("-i").arg(&esp).arg(&entry).arg("::/loader/entries/lms-a.conf"));
        for s in ["a.img", "b.img"] {
            std::fs::File::create(w.p(s)).unwrap().set_len(2 << 20).unwrap();
        }
        w.booted('a', FACTORY);
        w
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn booted(&self, slot: char, version: &str) {
        std::fs::write(self.p("cmdline"), format!("console=ttyS0 lms.slot={slot} lms.verity=x\n")).unwrap();
        std::fs::write(self.p("os-release"), format!("ID=lms-edge\nIMAGE_ID={NAME}\nSYSTEM_VERSION={version}\n"))
            .unwrap();
    }
    fn esp(&self) -> Esp {
        Esp { device: self.p("esp.img") }
    }
    fn entries(&self) -> Vec<String> {
        self.esp().entries().unwrap().into_iter().map(|e| e.file).collect()
    }
    /// A signed system bundle of `version` for this node's kind; its parts
    /// stay in `system-<version>/`.
    fn bundle(&self, version: &str, key: &SigningKey) -> PathBuf {
        lms_bundle::testing::system_bundle_for(self.dir.path(), NAME, version, 40, key)
    }
    fn publish(&self, version: &str) {
        let b = self.bundle(version, &key());
        lms_bundle::system::publish(&self.p("repo"), &b, "system-stable", &key(), Duration::from_secs(3600), 100)
            .unwrap();
    }
    fn updater(&self) -> Updater {
        let system = System {
            scratch: self.p("ram"),
            devices: Devices { esp: self.p("esp.img"), a: self.p("a.img"), b: self.p("b.img") },
            cmdline: self.p("cmdline"),
            os_release: self.p("os-release"),
            tries: 3,
            limits: Default::default(),
        };
        Updater {
            payload: Box::new(system),
            layout: lms_updater::state::Layout { root: self.p("system") },
            channel: "system-stable".into(),
            node_id: "edge-001".into(),
            health_timeout: Duration::from_millis(500),
            trusted: vec![key().verifying_key()],
            transport: Box::new(DirRepo(self.p("repo"))),
            node: Box::new(Node(self.node_ready.clone())),
            limits: Default::default(),
            crash_at: None,
            step_pause: Duration::ZERO,
            reboot: lms_updater::reboot::Reboot::immediate(self.p("reboot-request")),
            clock: time::OffsetDateTime::now_utc,
        }
    }
    fn take_reboot_request(&self) -> bool {
        std::fs::remove_file(self.p("reboot-request")).is_ok()
    }

    /// What systemd-boot 252 does at power-on (../shared/OTA.md): entries
    /// with tries left before those without, then the highest `version`;
    /// a counted entry loses a try (renamed) before its kernel starts.
    /// Then the kernel runs that slot's system. Returns the slot booted.
    fn power_on(&self) -> char {
        let esp = self.esp();
        let mut all: Vec<(Entry, Version)> = esp
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| {
                let text = String::from_utf8(esp.read_file(&format!("loader/entries/{}", e.file)).unwrap()).unwrap();
                let v = text.lines().find_map(|l| l.strip_prefix("version ")).unwrap().parse().unwrap();
                (e, v)
            })
            .collect();
        all.sort_by(|(a, va), (b, vb)| {
            let spent = |e: &Entry| e.counter.is_some_and(|(left, _)| left == 0);
            spent(a).cmp(&spent(b)).then(vb.cmp(va))
        });
        let (e, v) = all.first().expect("an entry to boot").clone();
        if let Some((left, done)) = e.counter
            && left > 0
        {
            esp.rename_entry(&e.file, &Entry::name(e.slot, Some((left - 1, done + 1)))).unwrap();
        }
        self.booted(e.slot, &v.to_string());
        e.slot
    }

    fn fsck(&self) {
        let o = Command::new("fsck.fat").arg("-n").arg(self.p("esp.img")).output().unwrap();
        assert!(
            o.status.success(),
            "fsck.fat -n: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

fn rebooting(o: Outcome) -> String {
    match o {
        Outcome::Rebooting { version, .. } => version,
        other => panic!("expected a reboot into the new system, got {other:?}"),
    }
}

#[test]
fn a_to_b_is_written_tried_after_the_reboot_gated_and_blessed() {
    let w = World::new();
    w.publish("0.1.2");
    let u = w.updater();
    assert_eq!(rebooting(u.check().unwrap()), "0.1.2");
    assert!(w.take_reboot_request(), "the reboot was not requested");
    assert_eq!(w.entries(), ["lms-a.conf", "lms-b+3.conf"]);
    let s = u.status_json().unwrap();
    assert_eq!(s["state"], "trial");
    assert_eq!(s["slots"]["b"]["state"], "on trial");
    assert_eq!(s["slots"]["a"]["state"], "booted");
    // What B holds is the signed image, byte for byte, and its boot files.
    let img = std::fs::read(w.p("system-0.1.2/system.img")).unwrap();
    assert!(std::fs::read(w.p("b.img")).unwrap().starts_with(&img));
    assert_eq!(w.esp().read_file("b/vmlinuz").unwrap(), b"kernel of 0.1.2");
    assert_eq!(w.esp().read_file("b/initrd.img").unwrap(), b"initramfs of 0.1.2");
    let entry = String::from_utf8(w.esp().read_file("loader/entries/lms-b+3.conf").unwrap()).unwrap();
    assert!(entry.contains("version 0.1.2\nsort-key lms\nlinux /b/vmlinuz\ninitrd /b/initrd.img\n"), "{entry}");
    assert!(entry.contains("lms.slot=b lms.verity=40:163840:"), "{entry}");
    // Checking again before the reboot changes nothing; nor does installing
    // by hand (a USB stick) over the waiting candidate, and `status` asks for
    // no reboot.
    assert_eq!(rebooting(u.check().unwrap_or_else(|e| panic!("{e}"))), "0.1.2");
    assert!(w.take_reboot_request());
    let usb = w.bundle("0.1.9", &key());
    assert_eq!(rebooting(u.install(&usb).unwrap()), "0.1.2");
    assert!(w.take_reboot_request());
    assert_eq!(w.entries(), ["lms-a.conf", "lms-b+3.conf"]);
    assert_eq!(u.status_json().unwrap()["state"], "trial");
    u.recover().unwrap();
    assert!(!w.take_reboot_request(), "recover asked for a reboot");
    w.fsck();

    assert_eq!(w.power_on(), 'b');
    assert_eq!(w.entries(), ["lms-a.conf", "lms-b+2-1.conf"]);
    let u = w.updater();
    let up = u.check().unwrap();
    assert!(matches!(up, Outcome::UpToDate { .. }), "{up:?}");
    assert_eq!(w.entries(), ["lms-a.conf", "lms-b.conf"], "blessed: no counter");
    let s = u.status_json().unwrap();
    assert_eq!(s["current"]["version"], "0.1.2");
    assert_eq!(s["highest_committed"], "0.1.2");
    assert_eq!(s["state"], "idle");
    assert_eq!(s["booted"], "b");
    assert_eq!(s["slots"]["a"]["state"], "good");
    w.fsck();
    // Going back by hand is not a link switch for a system: refused, nothing moves.
    let e = u.rollback().unwrap_err().to_string();
    assert!(e.contains("not supported for the system"), "{e}");
    assert_eq!(w.entries(), ["lms-a.conf", "lms-b.conf"]);
    assert_eq!(u.status_json().unwrap()["current"]["version"], "0.1.2");
    // The next boot takes B again (higher version, good), and so does the one after.
    assert_eq!(w.power_on(), 'b');
    assert_eq!(w.power_on(), 'b');

    // The next system goes to A, the slot not running; B stays as it is.
    w.publish("0.1.3");
    assert_eq!(rebooting(w.updater().check().unwrap()), "0.1.3");
    assert_eq!(w.entries(), ["lms-a+3.conf", "lms-b.conf"]);
    assert_eq!(w.power_on(), 'a');
    assert!(matches!(w.updater().check().unwrap(), Outcome::UpToDate { .. }));
    assert_eq!(w.entries(), ["lms-a.conf", "lms-b.conf"]);
    assert_eq!(w.power_on(), 'a');
    w.fsck();
}

#[test]
fn a_b_that_fails_its_health_gate_goes_back_to_a_and_is_not_retried() {
    let w = World::new();
    w.publish("0.1.2");
    rebooting(w.updater().check().unwrap());
    assert_eq!(w.power_on(), 'b');
    w.node_ready.store(false, Ordering::SeqCst);
    let e = w.updater().check();
    assert!(e.is_ok() || matches!(e, Err(UpdateError::Fetch(_))), "{e:?}");
    assert_eq!(w.entries(), ["lms-a.conf", "lms-b+0-1.conf"], "marked bad");
    assert!(w.take_reboot_request(), "no reboot into the old system");
    assert_eq!(w.power_on(), 'a');
    w.node_ready.store(true, Ordering::SeqCst);
    let u = w.updater();
    let o = u.check().unwrap();
    assert!(matches!(&o, Outcome::UpToDate { note, .. } if note.contains("rejected earlier")), "{o:?}");
    let s = u.status_json().unwrap();
    assert_eq!(s["current"]["version"], FACTORY);
    assert_eq!(s["rejected"][0]["version"], "0.1.2");
    assert!(s["rejected"][0]["reason"].as_str().unwrap().contains("health gate on the new system"), "{s}");
    assert!(!w.take_reboot_request());
    assert_eq!(w.power_on(), 'a', "the bad entry is never booted while A is good");
    w.fsck();
}

#[test]
fn a_b_that_never_comes_up_spends_its_tries_and_is_rejected_on_a() {
    let w = World::new();
    w.publish("0.1.2");
    rebooting(w.updater().check().unwrap());
    // The kernel panics three times: no updater ever runs on B.
    for _ in 0..3 {
        assert_eq!(w.power_on(), 'b');
    }
    assert_eq!(w.entries(), ["lms-a.conf", "lms-b+0-3.conf"]);
    assert_eq!(w.power_on(), 'a', "the boot loader falls back by itself");
    let u = w.updater();
    let o = u.check().unwrap();
    assert!(matches!(&o, Outcome::UpToDate { note, .. } if note.contains("rejected earlier")), "{o:?}");
    let s = u.status_json().unwrap();
    assert!(s["rejected"][0]["reason"].as_str().unwrap().contains("gave up on it after 3 tries"), "{s}");
    assert_eq!(w.entries(), ["lms-a.conf"], "the failed entry is gone");
    assert_eq!(s["slots"]["b"]["state"], "no boot entry");
}

#[test]
fn refused_before_anything_is_written() {
    let w = World::new();
    let esp_before = std::fs::read(w.p("esp.img")).unwrap();
    let untouched = |what: &str| {
        assert!(std::fs::read(w.p("esp.img")).unwrap() == esp_before, "{what}: the ESP changed");
        assert!(std::fs::read(w.p("b.img")).unwrap().iter().all(|b| *b == 0), "{what}: slot B was written");
    };
    // Signed by a key this node does not trust (published with its own metadata key).
    let stranger = SigningKey::from_bytes(&[4; 32]);
    let b = w.bundle("0.1.2", &stranger);
    let u = w.updater();
    let e = u.install(&b).unwrap_err().to_string();
    assert!(e.contains("signature"), "{e}");
    untouched("unknown key");
    // A tampered bundle: one byte of the manifest.
    let good = w.bundle("0.1.3", &key());
    let mut bytes = std::fs::read(&good).unwrap();
    let at = bytes.windows(25).position(|x| x == b"\"system_version\": \"0.1.3\"").unwrap() + 23;
    bytes[at] = b'9';
    let tampered = w.p("tampered.bundle");
    std::fs::write(&tampered, &bytes).unwrap();
    let e = u.install(&tampered).unwrap_err().to_string();
    assert!(e.contains("signature"), "{e}");
    untouched("tampered");
    // Older than the running system (a downgrade), from the channel.
    w.booted('a', "0.2.0");
    w.publish("0.1.4");
    let o = u.check().unwrap();
    assert!(matches!(&o, Outcome::UpToDate { note, .. } if note.contains("not above 0.2.0")), "{o:?}");
    let e = u.install(&w.p("system-0.1.4.bundle")).unwrap_err().to_string();
    assert!(e.contains("not above 0.2.0"), "{e}");
    untouched("downgrade");
    // Another kind of node's system.
    w.booted('a', FACTORY);
    std::fs::write(w.p("os-release"), format!("IMAGE_ID=other-kind\nSYSTEM_VERSION={FACTORY}\n")).unwrap();
    let e = u.install(&good).unwrap_err().to_string();
    assert!(e.contains("other-kind"), "{e}");
    untouched("other kind");
}

/// The blob of part `name` of release `version` in the repository.
fn blob_of(w: &World, version: &str, name: &str) -> PathBuf {
    let bytes = std::fs::read(w.p(&format!("system-{version}/{name}"))).unwrap();
    w.p("repo").join(lms_bundle::blobs::blob_path(&lms_bundle::sha256_hex(&bytes)))
}

/// A repository whose blobs went bad after signing (a broken mirror, an
/// attacker without the key): every byte is checked before it is written.
/// A bad kernel or verity tree leaves the slot as it was; a bad block of
/// the image stops the stream there, with only verified blocks before it
/// on the partition. A bad download is not a rejected version: once the
/// repository is mended, the same version installs.
#[test]
fn tampered_parts_are_refused_before_their_bytes_are_written() {
    let w = World::new();
    w.publish("0.1.2");
    let image = std::fs::read(w.p("system-0.1.2/system.img")).unwrap();
    let u = w.updater();
    let block = 4096;
    // What, where, the refusal, the verified bytes written before it.
    for (what, part, at, refusal, written) in [
        // First: a good kernel, once downloaded, is kept (in RAM) for the next attempt.
        ("a byte of the kernel", "vmlinuz", 3, "sha256", 0),
        ("the last byte of the verity tree", "system.img", image.len() - 1, "root hash", 0),
        (
            "a byte of data block 17",
            "system.img",
            17 * block + 5,
            "data block 17 (byte 69632) does not match",
            17 * block,
        ),
        // Not covered by the root hash: held back until the whole image's sha256 matches.
        (
            "a byte of the verity superblock",
            "system.img",
            40 * block + 10,
            "bytes after the data were not written",
            40 * block,
        ),
    ] {
        let blob = blob_of(&w, "0.1.2", part);
        let clean = std::fs::read(&blob).unwrap();
        let mut bad = clean.clone();
        bad[at] ^= 0x01;
        std::fs::write(&blob, &bad).unwrap();
        let e = u.check().unwrap_err().to_string();
        assert!(e.starts_with("refused: ") && e.contains(refusal), "{what}: {e}");
        let slot = std::fs::read(w.p("b.img")).unwrap();
        assert!(slot[..written] == image[..written], "{what}: verified blocks before the bad one");
        assert!(slot[written..].iter().all(|b| *b == 0), "{what}: bytes written from the bad block on");
        assert_eq!(w.entries(), ["lms-a.conf"], "{what}");
        assert!(w.esp().read_file("b/vmlinuz").is_err(), "{what}: a kernel reached the ESP");
        let s = u.status_json().unwrap();
        assert!(s["last_error"].as_str().unwrap().contains(refusal), "{what}: {s}");
        std::fs::write(&blob, &clean).unwrap();
    }
    assert_eq!(rebooting(u.check().unwrap()), "0.1.2");
    assert!(std::fs::read(w.p("b.img")).unwrap().starts_with(&image));
    assert_eq!(w.entries(), ["lms-a.conf", "lms-b+3.conf"]);
}

/// A repository that cuts the image's stream (from byte 0) after `cut` bytes once, and
/// counts what it hands out per file.
struct Cutting {
    inner: DirRepo,
    image: String,
    cut: std::sync::Mutex<Option<u64>>,
    sent: Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>,
}

impl lms_updater::repo::Transport for Cutting {
    fn fetch(&self, rel: &str, cap: u64) -> Result<Vec<u8>, String> {
        self.inner.fetch(rel, cap)
    }
    fn download(&self, rel: &str, out: &mut dyn std::io::Write, have: u64, total: u64) -> Result<u64, String> {
        let cut = if rel == self.image && have == 0 { self.cut.lock().unwrap().take() } else { None };
        let n = match cut {
            Some(at) => {
                let mut all = Vec::new();
                self.inner.download(rel, &mut all, have, total)?;
                out.write_all(&all[..(at - have) as usize]).map_err(|e| e.to_string())?;
                Err(format!("connection reset at byte {at}"))
            }
            None => self.inner.download(rel, out, have, total),
        };
        let got = match &n {
            Ok(len) => len - have,
            Err(_) => cut.unwrap_or(have) - have,
        };
        *self.sent.lock().unwrap().entry(rel.to_string()).or_default() += got;
        n
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// The power goes while the image streams: the verified bytes up to the
/// last checkpoint stay, and the next run downloads only the rest.
#[test]
fn a_cut_stream_resumes_from_its_checkpoint() {
    let w = World::new();
    w.publish("0.1.2");
    let image = std::fs::read(w.p("system-0.1.2/system.img")).unwrap();
    let rel = lms_bundle::blobs::blob_path(&lms_bundle::sha256_hex(&image));
    let sent = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let cutting = |cut: Option<u64>| Cutting {
        inner: DirRepo(w.p("repo")),
        image: rel.clone(),
        cut: std::sync::Mutex::new(cut),
        sent: sent.clone(),
    };
    let mut dying = w.updater();
    dying.transport = Box::new(cutting(Some(100_000)));
    dying.crash_at = Some(Step::ImageCheckpoint);
    let e = dying.check().unwrap_err();
    assert!(matches!(e, UpdateError::Crashed(Step::ImageCheckpoint)), "{e:?}");
    // 24 whole blocks verified and written; the rest of the block in flight is not.
    let slot = std::fs::read(w.p("b.img")).unwrap();
    assert!(slot[..24 * 4096] == image[..24 * 4096]);
    assert!(slot[24 * 4096..].iter().all(|b| *b == 0));
    let hash_area = (image.len() - 40 * 4096) as u64;
    assert_eq!(sent.lock().unwrap()[&rel], hash_area + 100_000);

    sent.lock().unwrap().clear();
    let mut u = w.updater();
    u.transport = Box::new(cutting(None));
    assert_eq!(rebooting(u.check().unwrap()), "0.1.2");
    assert!(std::fs::read(w.p("b.img")).unwrap().starts_with(&image));
    assert_eq!(sent.lock().unwrap()[&rel], hash_area + image.len() as u64 - 24 * 4096, "resumed at block 24");
}

/// Every step of the install, stopped dead; the next run finishes the
/// update: one entry for B, the image whole, the ESP consistent.
#[test]
fn a_stop_at_every_step_ends_in_one_complete_trial() {
    for step in SYSTEM_STEPS {
        let w = World::new();
        w.publish("0.1.2");
        let mut dying = w.updater();
        dying.crash_at = Some(step);
        let first = dying.check();
        if step == Step::Blessed {
            // The stop comes after the reboot, on B.
            rebooting(first.unwrap());
            assert_eq!(w.power_on(), 'b');
            let e = dying.check().unwrap_err();
            assert!(matches!(e, UpdateError::Crashed(Step::Blessed)), "{e:?}");
        } else {
            assert!(matches!(first, Err(UpdateError::Crashed(s)) if s == step), "{step:?}: {first:?}");
        }
        let b_entries = w.entries().iter().filter(|e| e.starts_with("lms-b")).count();
        assert!(b_entries <= 1, "{step:?}: {:?}", w.entries());
        w.fsck();
        let u = w.updater();
        let again = u.check().unwrap_or_else(|e| panic!("{step:?}: {e}"));
        if step == Step::Blessed {
            assert!(matches!(again, Outcome::UpToDate { .. }), "{step:?}: {again:?}");
            assert_eq!(w.entries(), ["lms-a.conf", "lms-b.conf"]);
            continue;
        }
        assert_eq!(rebooting(again), "0.1.2", "{step:?}");
        assert_eq!(w.entries(), ["lms-a.conf", "lms-b+3.conf"], "{step:?}");
        let img = std::fs::read(w.p("system-0.1.2/system.img")).unwrap();
        assert!(std::fs::read(w.p("b.img")).unwrap().starts_with(&img), "{step:?}");
        assert_eq!(w.power_on(), 'b');
        assert!(matches!(w.updater().check().unwrap(), Outcome::UpToDate { .. }), "{step:?}");
        assert_eq!(w.entries(), ["lms-a.conf", "lms-b.conf"], "{step:?}");
        w.fsck();
    }
}

/// A committed B whose partition later fails the boot-time verity check:
/// lms-init marks its entry bad and reboots into A; A's updater reports
/// why and does not take B's version again.
#[test]
fn a_committed_b_that_stops_starting_is_reported_from_a() {
    let w = World::new();
    w.publish("0.1.2");
    rebooting(w.updater().check().unwrap());
    assert_eq!(w.power_on(), 'b');
    assert!(matches!(w.updater().check().unwrap(), Outcome::UpToDate { .. }));
    assert_eq!(w.entries(), ["lms-a.conf", "lms-b.conf"]);
    // What lms-init's fall_back does on B.
    w.esp().rename_entry("lms-b.conf", "lms-b+0-1.conf").unwrap();
    assert_eq!(w.power_on(), 'a');
    let u = w.updater();
    u.recover().unwrap();
    let s = u.status_json().unwrap();
    assert_eq!(s["current"]["version"], FACTORY);
    let reason = s["rejected"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("stopped starting after it was committed") && reason.contains("lms-b+0-1.conf"), "{s}");
    assert_eq!(s["last_error"].as_str().unwrap(), reason, "{s}");
    assert_eq!(s["slots"]["b"]["state"], "bad");
    let o = u.check().unwrap();
    assert!(matches!(&o, Outcome::UpToDate { note, .. } if note.contains("rejected earlier")), "{o:?}");
}

/// A slot record emptied by a power cut (its name durable, its bytes not)
/// does not stop the new system from being judged: the slot is worked out.
#[test]
fn an_emptied_slot_record_does_not_stop_the_trial() {
    let w = World::new();
    w.publish("0.1.2");
    rebooting(w.updater().check().unwrap());
    for e in std::fs::read_dir(w.p("system/slots")).unwrap() {
        std::fs::write(e.unwrap().path().join("slot"), "").unwrap();
    }
    assert_eq!(w.power_on(), 'b');
    assert!(matches!(w.updater().check().unwrap(), Outcome::UpToDate { .. }));
    assert_eq!(w.entries(), ["lms-a.conf", "lms-b.conf"]);
}
