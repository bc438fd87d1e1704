//! The whole system (kernel, initramfs, the system partition with its
//! dm-verity tree) into the inactive A/B slot, tried after a reboot with
//! systemd-boot's boot counting, judged by the new system's local health
//! gate, then blessed, or abandoned with the old system still there.
//!
//! The update, in order (each step is in the journal or on the ESP, and
//! safe to lose power in; see ../../../../ARCHITECTURE.md):
//! 1. `fetch`: the signed channel metadata (engine), then the system
//!    manifest and its signature, checked with its version and kind before
//!    anything is written.
//!    `stage` then fetches the kernel and initramfs (into RAM, each against
//!    its sha256) and the image's verity tree (checked against the signed
//!    root hash), still before any write;
//! 2. the target slot's boot entries are removed, so a slot being written
//!    can never be booted;
//! 3. the system image is streamed into the slot partition, each data block
//!    written only once it matches the tree ([`stream`]), fsynced and
//!    checkpointed as it goes (a power cut resumes from the checkpoint);
//! 4. read back: the partition's sha256 and then its verity tree;
//! 5. kernel and initramfs to the ESP (`/a/`, `/b/`: temporary name, read
//!    back, rename);
//! 6. `switch`: the boot entry with a try counter (`lms-b+3.conf`, higher
//!    `version` than the running one) lands by one rename: the commit point
//!    of "try the new system". The engine journals the trial before it.
//! 7. the reboot, at once or in the maintenance window (the engine).
//! 8. on the new system, `found_trial` says `Booted`; the engine's gate asks
//!    the node for readiness (modules loaded) and `served` reports the
//!    running system's version; passed: `bless` drops the counter, the
//!    journal commits. Failed: the reason is journaled, `abandon` marks the
//!    entry bad (`+0-N`) and the node reboots into the old slot.
//! 9. back on the old slot, `found_trial` reads the entry (tries spent,
//!    marked bad, or gone) and the engine records the version as rejected:
//!    it is never tried again by itself.

mod esp;
mod slots;
mod stream;

pub use esp::{Entry, Esp};
pub use slots::Devices;

use super::{Payload, Switched, TrialFound};
use crate::node::NodeControl;
use crate::repo::{DirRepo, Transport};
use crate::state::{Installed, State, Trial};
use crate::{Step, UpdateError, Updater};
use lms_bundle::Version;
use lms_bundle::channel::BundleRef;
use lms_bundle::system::{self as format, IMAGE, INITRD, KERNEL, SystemLimits, SystemManifest};
use lms_bundle::verity::Tree;
use std::path::{Path, PathBuf};

/// What a system slot record keeps (in the engine's `slots/<version>-<sha>`).
const SLOT_MANIFEST: &str = "system.json";
const SLOT_SIGNATURE: &str = "system.json.sig";
const SLOT_LETTER: &str = "slot";

pub struct System {
    pub devices: Devices,
    /// Parts on their way to the ESP, and a system bundle's parts from a USB
    /// stick: in RAM (`/run/lms-updater`), never on the small data partition.
    pub scratch: PathBuf,
    pub cmdline: PathBuf,
    pub os_release: PathBuf,
    pub tries: u32,
    pub limits: SystemLimits,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> UpdateError + '_ {
    move |e| UpdateError::Disk(format!("{}: {e}", path.display()))
}

/// Bytes of image `sha256` written to `slot` and fsynced (a `.part` file:
/// the engine's clean-up keeps it, like a partial download).
fn checkpoint_of(u: &Updater, sha256: &str, slot: char) -> PathBuf {
    u.layout.cache().join(format!("{sha256}-{slot}.image.part"))
}

fn sig_of(manifest: &Path) -> PathBuf {
    let mut s = manifest.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

impl System {
    pub fn from_config(cfg: &crate::config::Config) -> Result<System, String> {
        let devices = match &cfg.system_devices {
            Some(d) => Devices { esp: d.esp.clone(), a: d.a.clone(), b: d.b.clone() },
            None => Devices::discover()?,
        };
        Ok(System {
            devices,
            scratch: cfg.reboot_request.parent().map(Path::to_path_buf).unwrap_or_else(|| "/run/lms-updater".into()),
            cmdline: cfg.cmdline_file.clone(),
            os_release: cfg.os_release.clone(),
            tries: cfg.boot_tries,
            limits: SystemLimits::default(),
        })
    }

    fn esp(&self) -> Esp {
        Esp { device: self.devices.esp.clone() }
    }

    fn booted(&self) -> Result<char, UpdateError> {
        slots::booted(&self.cmdline).map_err(UpdateError::Disk)
    }

    /// (IMAGE_ID, SYSTEM_VERSION) of the running system.
    fn running(&self) -> Result<(String, String), UpdateError> {
        slots::running(&self.os_release).map_err(UpdateError::Disk)
    }

    /// The manifest at `path` (signature beside it), verified: signature
    /// before parse, then this node's kind, and a version above both the
    /// running system and the highest ever committed, never rejected.
    fn verified(&self, u: &Updater, path: &Path) -> Result<SystemManifest, UpdateError> {
        let bytes = std::fs::read(path).map_err(io(path))?;
        let sig = std::fs::read(sig_of(path)).map_err(io(&sig_of(path)))?;
        let m = format::verify_manifest(&bytes, &sig, &u.trusted, &self.limits)?;
        let (kind, running) = self.running()?;
        if m.name != kind {
            return Err(UpdateError::Refused(format!(
                "system {} is for {:?}; this node runs {kind:?}",
                m.system_version, m.name
            )));
        }
        let version: Version = m.system_version.parse().map_err(UpdateError::Refused)?;
        let s = u.state()?;
        for (floor, what) in
            [(Some(running), "the running system"), (s.highest_committed, "the highest committed here")]
        {
            if let Some(f) = floor.and_then(|f| f.parse::<Version>().ok())
                && version <= f
            {
                return Err(UpdateError::Refused(format!(
                    "system {version} is not above {f}, {what} (systems only move forward)"
                )));
            }
        }
        if let Some(r) = s.rejected.iter().find(|r| r.version == m.system_version) {
            return Err(UpdateError::Refused(format!("system {} was rejected earlier: {}", r.version, r.reason)));
        }
        Ok(m)
    }

    fn blobs(&self) -> PathBuf {
        self.scratch.join("blobs")
    }

    /// A part's bytes in scratch (`blobs/<sha256>`), downloaded when missing.
    fn part_file(&self, u: &Updater, m: &SystemManifest, name: &str) -> Result<PathBuf, UpdateError> {
        let p = m.part(name);
        let path = self.blobs().join(&p.sha256);
        std::fs::create_dir_all(self.blobs()).map_err(io(&path))?;
        u.download_to(&lms_bundle::blobs::blob_path(&p.sha256), p.size, &p.sha256, &path)?;
        Ok(path)
    }

    /// The image's hash area (its dm-verity tree), from a file in scratch
    /// (a USB stick's bundle) or the repository, checked against the signed
    /// root hash: the tree every streamed block is then checked against.
    fn tree(&self, u: &Updater, m: &SystemManifest) -> Result<Tree, UpdateError> {
        let p = m.part(IMAGE);
        let mut area = stream::HashArea::new(&m.verity);
        self.with_image_source(u, &p.sha256, |from, rel| u.pull(from, rel, p.size, &mut area, &mut |_| Ok(())))?;
        Tree::new(&m.verity, area.bytes).map_err(|e| UpdateError::Refused(format!("{IMAGE}: {e}")))
    }

    /// `pull` runs with the image's source: a local copy in scratch (a USB
    /// stick's bundle) or the repository.
    fn with_image_source<R>(
        &self,
        u: &Updater,
        sha256: &str,
        pull: impl FnOnce(&dyn Transport, &str) -> Result<R, UpdateError>,
    ) -> Result<R, UpdateError> {
        if self.blobs().join(sha256).exists() {
            pull(&DirRepo(self.blobs()), sha256)
        } else {
            pull(&*u.transport, &lms_bundle::blobs::blob_path(sha256))
        }
    }

    /// Step 3: the image into `slot`, each data block written only once it
    /// matches `tree` (see [`stream`]), resuming from the checkpoint a power
    /// cut left (`cache/<sha>-<slot>.image.part`: verified bytes written and
    /// fsynced; kept, like a partial download, until the entry is written).
    /// Step 4: the partition read back against the sha256 and the tree.
    fn write_image(&self, u: &Updater, m: &SystemManifest, tree: &Tree, slot: char) -> Result<(), UpdateError> {
        let dev = self.devices.slot(slot);
        let p = m.part(IMAGE);
        let room = slots::size(dev).map_err(UpdateError::Disk)?;
        if p.size > room {
            return Err(UpdateError::Refused(format!(
                "{IMAGE} is {} bytes; the slot partition {} holds {room}",
                p.size,
                dev.display()
            )));
        }
        // One checkpoint per slot: another image's progress on this slot is void.
        let checkpoint = checkpoint_of(u, &p.sha256, slot);
        let suffix = format!("-{slot}.image.part");
        for e in std::fs::read_dir(u.layout.cache()).map_err(io(&u.layout.cache()))?.flatten() {
            if e.file_name().to_string_lossy().ends_with(&suffix) && e.path() != checkpoint {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let mut sink =
            stream::SlotSink::open(dev.to_path_buf(), tree, &m.verity, p.size, checkpoint.clone()).map_err(io(dev))?;
        tracing::info!(version = %m.system_version, from = sink.written(), size = p.size, device = %dev.display(), "streaming the system image into the slot");
        let mut checkpointed = |sink: &mut stream::SlotSink| -> Result<(), UpdateError> {
            sink.checkpoint().map_err(io(dev))?;
            u.step(Step::ImageCheckpoint)
        };
        self.with_image_source(u, &p.sha256, |from, rel| u.pull(from, rel, p.size, &mut sink, &mut checkpointed))?;
        sink.finish(&p.sha256).map_err(|e| UpdateError::Refused(format!("{IMAGE}: {e}")))?;
        crate::state::write_atomic(&checkpoint, p.size.to_string().as_bytes()).map_err(UpdateError::Disk)?;
        u.step(Step::ImageWritten)?;
        // Step 4: what the partition now holds, not what was sent.
        let got = lms_bundle::sha256_region(dev, 0, p.size).map_err(UpdateError::Disk)?;
        if got != p.sha256 {
            let _ = std::fs::remove_file(&checkpoint);
            return Err(UpdateError::Disk(format!(
                "{}: read back sha256 {got}, the signed manifest says {}; the slot will be written again",
                dev.display(),
                p.sha256
            )));
        }
        let mut f = std::fs::File::open(dev).map_err(io(dev))?;
        lms_bundle::verity::verify(&mut f, &m.verity).map_err(|e| {
            let _ = std::fs::remove_file(&checkpoint);
            UpdateError::Disk(format!("{}: {e}; the slot will be written again", dev.display()))
        })?;
        u.step(Step::ImageVerified)
    }

    /// The slot a candidate was written to: its record says; a record a
    /// power cut damaged is worked out instead (the candidate always goes
    /// to the slot not running when it is installed, so it is the booted
    /// slot when it runs, else the other one).
    fn slot_of(&self, u: &Updater, c: &Installed) -> Result<char, UpdateError> {
        let p = u.layout.slot(&c.slot).join(SLOT_LETTER);
        match std::fs::read_to_string(&p).map(|t| t.trim().to_string()).as_deref() {
            Ok("a") => Ok('a'),
            Ok("b") => Ok('b'),
            other => {
                let booted = self.booted()?;
                let (_, running) = self.running()?;
                let slot = if running == c.version { booted } else { slots::other(booted) };
                tracing::warn!(record = %p.display(), found = ?other, %slot, "slot record unreadable; using the slot the candidate must be in");
                Ok(slot)
            }
        }
    }

    fn entry_of(&self, slot: char) -> Result<Option<Entry>, UpdateError> {
        let mut all: Vec<Entry> =
            self.esp().entries().map_err(UpdateError::Disk)?.into_iter().filter(|e| e.slot == slot).collect();
        if all.len() > 1 {
            return Err(UpdateError::Disk(format!(
                "the ESP holds {} entries for slot {slot}: {:?}",
                all.len(),
                all.iter().map(|e| &e.file).collect::<Vec<_>>()
            )));
        }
        Ok(all.pop())
    }
}

impl Payload for System {
    fn name(&self) -> &'static str {
        "system"
    }

    fn fetch(&self, u: &Updater, offer: &BundleRef) -> Result<PathBuf, UpdateError> {
        if offer.size > self.limits.max_manifest_bytes {
            return Err(UpdateError::Refused(format!(
                "{}: {} bytes, over the {}-byte limit for a system manifest",
                offer.path, offer.size, self.limits.max_manifest_bytes
            )));
        }
        let manifest = u.layout.cache().join(format!("{}.manifest", offer.sha256));
        u.download_to(&offer.path, offer.size, &offer.sha256, &manifest)?;
        let sig = u.transport.fetch(&format!("{}.sig", offer.path), 64).map_err(UpdateError::Fetch)?;
        crate::state::write_atomic(&sig_of(&manifest), &sig).map_err(UpdateError::Disk)?;
        self.verified(u, &manifest)?;
        Ok(manifest)
    }

    /// A system bundle on a USB stick: its manifest verified first, then
    /// each part hashed into the cache as it is read.
    fn take_file(&self, u: &Updater, file: &Path) -> Result<PathBuf, UpdateError> {
        let (m, bytes, sig) = lms_bundle::blobs::read_head::<SystemManifest>(file, &u.trusted, &self.limits)?;
        let manifest = u.layout.cache().join(format!("{}.manifest", lms_bundle::sha256_hex(&bytes)));
        crate::state::write_atomic(&manifest, &bytes).map_err(UpdateError::Disk)?;
        crate::state::write_atomic(&sig_of(&manifest), &sig).map_err(UpdateError::Disk)?;
        self.verified(u, &manifest)?;
        let blobs = self.blobs();
        std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;
        let wanted: Vec<String> = m.parts.iter().map(|p| p.sha256.clone()).collect();
        lms_bundle::blobs::read_bundle::<SystemManifest>(file, &u.trusted, &self.limits, |sha, r| {
            let tmp = blobs.join(format!("{sha}.part"));
            let mut f = std::fs::File::create(&tmp)
                .map_err(|e| lms_bundle::BundleError::Io { path: tmp.clone(), message: e.to_string() })?;
            std::io::copy(r, &mut f)
                .map_err(|e| lms_bundle::BundleError::Io { path: tmp.clone(), message: e.to_string() })?;
            Ok(())
        })?;
        for sha in wanted {
            let tmp = blobs.join(format!("{sha}.part"));
            if tmp.exists() {
                std::fs::rename(&tmp, blobs.join(&sha)).map_err(io(&tmp))?;
            }
        }
        Ok(manifest)
    }

    fn stage(&self, u: &Updater, manifest: &Path, staging: &Path) -> Result<String, UpdateError> {
        let m = self.verified(u, manifest)?;
        let target = slots::other(self.booted()?);
        let esp = self.esp();
        // Before anything is written: the kernel and initramfs (into RAM,
        // each against its sha256) and the image's verity tree (against the
        // signed root hash). A bad one leaves the disk as it was.
        let mut boot_files = Vec::new();
        for name in [KERNEL, INITRD] {
            boot_files.push((name, self.part_file(u, &m, name)?));
        }
        let tree = self.tree(u, &m)?;
        // 2. The target slot can never be booted while it is being written.
        let removed = esp.remove_entries(target).map_err(UpdateError::Disk)?;
        tracing::info!(slot = %target, removed, "boot entries of the target slot removed");
        u.step(Step::EntryDisabled)?;
        // 3-4. The image, each block verified before it is written; read back.
        self.write_image(u, &m, &tree, target)?;
        // 5. Kernel and initramfs, checked again against the manifest, then
        // written to the ESP (read back there before its rename).
        for (name, file) in boot_files {
            let bytes = std::fs::read(&file).map_err(io(&file))?;
            if lms_bundle::sha256_hex(&bytes) != m.part(name).sha256 {
                let _ = std::fs::remove_file(&file);
                return Err(UpdateError::Disk(format!("{}: changed in the cache", file.display())));
            }
            esp.write_file(&target.to_string(), name, &bytes).map_err(UpdateError::Disk)?;
            let _ = std::fs::remove_file(&file);
        }
        u.step(Step::BootFilesWritten)?;
        // The record of what the slot holds (the engine renames it into slots/).
        std::fs::create_dir_all(staging).map_err(io(staging))?;
        std::fs::copy(manifest, staging.join(SLOT_MANIFEST)).map_err(io(manifest))?;
        std::fs::copy(sig_of(manifest), staging.join(SLOT_SIGNATURE)).map_err(io(manifest))?;
        std::fs::write(staging.join(SLOT_LETTER), target.to_string()).map_err(io(staging))?;
        // The files' bytes, not only their names: a power cut after the
        // engine's rename must not leave an empty record (found by the
        // QEMU power-cut test).
        lms_bundle::sync_tree(staging)?;
        Ok(m.system_version)
    }

    /// The gate's question: the node is ready with its modules, on this
    /// system; the answer is the running system's version.
    fn served(&self, node: &dyn NodeControl) -> Result<Option<String>, String> {
        if node.ready_version()?.is_none() {
            return Ok(None);
        }
        Ok(Some(slots::running(&self.os_release)?.1))
    }

    fn verify_slot(&self, u: &Updater, dir: &Path) -> Result<String, String> {
        let bytes = std::fs::read(dir.join(SLOT_MANIFEST)).map_err(|e| format!("{}: {e}", dir.display()))?;
        let sig = std::fs::read(dir.join(SLOT_SIGNATURE)).map_err(|e| format!("{}: {e}", dir.display()))?;
        let m = format::verify_manifest(&bytes, &sig, &u.trusted, &self.limits).map_err(|e| e.to_string())?;
        let letter = std::fs::read_to_string(dir.join(SLOT_LETTER)).map_err(|e| e.to_string())?;
        let dev = self.devices.slot(if letter.trim() == "b" { 'b' } else { 'a' });
        let got = lms_bundle::sha256_region(dev, 0, m.part(IMAGE).size)?;
        if got != m.part(IMAGE).sha256 {
            return Err(format!("{}: sha256 {got}, the manifest says {}", dev.display(), m.part(IMAGE).sha256));
        }
        Ok(m.system_version)
    }

    /// Step 6: the boot entry with a try counter, by one rename: from here on the
    /// boot loader tries the new system first.
    fn switch(&self, u: &Updater, c: &Installed) -> Result<Switched, UpdateError> {
        let slot = self.slot_of(u, c)?;
        let rec = u.layout.slot(&c.slot);
        let bytes = std::fs::read(rec.join(SLOT_MANIFEST)).map_err(io(&rec))?;
        let sig = std::fs::read(rec.join(SLOT_SIGNATURE)).map_err(io(&rec))?;
        let m = format::verify_manifest(&bytes, &sig, &u.trusted, &self.limits)?;
        let title = format!("LMS appliance ({})", m.name);
        let entry = format::boot_entry(&title, &m.system_version, slot, &m.entry_options(slot));
        let esp = self.esp();
        esp.remove_entries(slot).map_err(UpdateError::Disk)?;
        let tmp = format!(".lms-{slot}.conf.tmp");
        esp.write_file("loader/entries", &tmp, entry.as_bytes()).map_err(UpdateError::Disk)?;
        esp.rename_entry(&tmp, &Entry::name(slot, Some((self.tries, 0)))).map_err(UpdateError::Disk)?;
        // The slot is complete and tried from here on: its checkpoint is done.
        let _ = std::fs::remove_file(checkpoint_of(u, &m.part(IMAGE).sha256, slot));
        Ok(Switched::Reboot)
    }

    fn found_trial(&self, u: &Updater, t: &Trial) -> Result<TrialFound, UpdateError> {
        let slot = self.slot_of(u, &t.candidate)?;
        let booted = self.booted()?;
        let (_, running) = self.running()?;
        if booted == slot && running == t.candidate.version {
            return Ok(TrialFound::Booted);
        }
        let why = |default: String| TrialFound::Failed(t.failure.clone().unwrap_or(default));
        Ok(match self.entry_of(slot)? {
            // Entries go only with a failure journaled first: none and no
            // failure means the commit point was never reached.
            None if t.failure.is_none() => TrialFound::NotSwitched,
            None => why(String::new()),
            Some(Entry { counter: Some((left, 0)), .. }) if left > 0 => TrialFound::Waiting,
            Some(Entry { counter: Some((0, done)), .. }) => why(format!(
                "the boot loader gave up on it after {done} tries without a healthy start (a kernel or initramfs that \
                 never reached the health gate); the node runs slot {booted} ({running})"
            )),
            Some(Entry { counter: Some((_, done)), .. }) => {
                why(format!("tried {done} times; the node came back on slot {booted} ({running})"))
            }
            Some(Entry { counter: None, .. }) => {
                why(format!("its entry is blessed but the node runs slot {booted} ({running}); treated as failed"))
            }
        })
    }

    /// The counter goes: the entry is good from now on.
    fn bless(&self, _u: &Updater, c: &Installed) -> Result<(), UpdateError> {
        let slot = self.booted()?;
        match self.entry_of(slot)? {
            Some(Entry { counter: None, .. }) => Ok(()),
            Some(e) => self.esp().rename_entry(&e.file, &Entry::name(slot, None)).map_err(UpdateError::Disk),
            None => Err(UpdateError::Disk(format!("no boot entry for slot {slot} to bless ({})", c.version))),
        }
    }

    /// Running it: marked bad (`+0-N`), so the boot loader takes the old
    /// slot; not running it: its entry removed.
    fn abandon(&self, u: &Updater, c: &Installed, booted: bool) -> Result<(), UpdateError> {
        let slot = self.slot_of(u, c)?;
        match (booted, self.entry_of(slot)?) {
            (true, Some(e)) => {
                let done = e.counter.map(|(_, d)| d).unwrap_or(1);
                self.esp().rename_entry(&e.file, &Entry::name(slot, Some((0, done)))).map_err(UpdateError::Disk)
            }
            (false, Some(_)) => self.esp().remove_entries(slot).map(|_| ()).map_err(UpdateError::Disk),
            (_, None) => Ok(()),
        }
    }

    /// The running system is what `current` names: a node just flashed (no
    /// journal yet) or reflashed by hand gets its journal from it. When the
    /// committed system's entry is marked bad and the node runs the other
    /// slot, the committed system stopped starting (its slot failed the
    /// boot-time verity check, or its tries ran out): that is recorded as a
    /// rejection with the reason, then the running system is current.
    fn reconcile(&self, u: &Updater, s: &mut State) -> Result<(), UpdateError> {
        if s.trial.is_some() {
            return Ok(());
        }
        let booted = self.booted()?;
        let (_, running) = self.running()?;
        if s.current.as_ref().is_some_and(|c| c.version == running) {
            return Ok(());
        }
        if let Some(c) = s.current.clone()
            && let Ok(slot) = self.slot_of(u, &c)
            && slot != booted
            && let Some(Entry { counter: Some((0, _)), file, .. }) = self.entry_of(slot)?
        {
            let reason = format!(
                "system {} on slot {slot} stopped starting after it was committed (its partition failed the \
                 boot-time verity check, or its boots never reached userspace); its entry {file} is marked bad \
                 and the node runs slot {booted} ({running})",
                c.version
            );
            tracing::error!("{reason}");
            s.rejected.push(crate::state::Rejected {
                version: c.version.clone(),
                sha256: c.sha256.clone(),
                reason: reason.clone(),
                at: lms_bundle::rfc3339(time::OffsetDateTime::now_utc()),
            });
            s.last_error = Some(reason);
        } else {
            tracing::info!(%running, slot = %booted, "the journal takes the running system as current");
        }
        s.previous = None;
        s.current =
            Some(Installed { version: running.clone(), sha256: String::new(), slot: format!("running-{booted}") });
        let v: Version = running.parse().map_err(UpdateError::Refused)?;
        if s.highest_committed.as_ref().and_then(|f| f.parse::<Version>().ok()).is_none_or(|f| v > f) {
            s.highest_committed = Some(running);
        }
        Ok(())
    }

    /// A system is not switched by a link: going back means booting the
    /// other slot, which the boot entries decide.
    fn rollback_by_hand(&self) -> Result<(), String> {
        Err("rollback by hand is not supported for the system: the other slot boots when the running one's entry \
             is marked bad or its tries run out"
            .into())
    }

    fn status(&self, _u: &Updater) -> serde_json::Value {
        let booted = self.booted().ok();
        let running = self.running().ok().map(|r| r.1);
        let entries = self.esp().entries();
        let slot = |c: char| {
            let entry = entries.as_ref().ok().and_then(|es| es.iter().find(|e| e.slot == c).cloned());
            let state = match (&entry, booted == Some(c)) {
                (_, true) => "booted",
                (None, false) => "no boot entry",
                (Some(Entry { counter: None, .. }), false) => "good",
                (Some(Entry { counter: Some((0, _)), .. }), false) => "bad",
                (Some(_), false) => "on trial",
            };
            serde_json::json!({"device": self.devices.slot(c), "entry": entry.map(|e| e.file), "state": state})
        };
        serde_json::json!({
            "booted": booted.map(|c| c.to_string()),
            "running_version": running,
            "slots": {"a": slot('a'), "b": slot('b')},
            "esp": entries.err(),
        })
    }
}
