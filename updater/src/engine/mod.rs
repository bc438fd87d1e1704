//! The one install flow every payload kind goes through (see the crate
//! documentation for the steps); [`crate::kinds`] plugs in what differs.

mod fetch;
mod report;

pub(crate) use fetch::Sink;

use crate::kinds::{Payload, Switched, TrialFound};
use crate::{config, node, repo, state};
use lms_bundle::channel::{self, ChannelMeta};
use lms_bundle::{BundleError, Limits, Version};
use node::NodeControl;
use repo::Transport;
use state::{Installed, Layout, Rejected, State, Trial};
use std::path::Path;
use std::time::{Duration, Instant};

/// The points of an install the fault-injection tests stop at, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Downloaded,
    Staged,
    SlotReady,
    TrialRecorded,
    Switched,
    Reloaded,
    Healthy,
    Committed,
    PreviousLinked,
    Collected,
    /// System kind: the target slot's boot entry is gone (update step 2).
    EntryDisabled,
    /// System kind: part of the image is in the slot partition, checkpointed (step 3).
    ImageCheckpoint,
    /// System kind: the whole image is in the slot partition (step 3).
    ImageWritten,
    /// System kind: read back, sha256 and verity tree checked (step 4).
    ImageVerified,
    /// System kind: kernel and initramfs on the ESP (step 5).
    BootFilesWritten,
    /// System kind: the new system passed its gate and its entry is blessed.
    Blessed,
}

pub const STEPS: [Step; 10] = [
    Step::Downloaded,
    Step::Staged,
    Step::SlotReady,
    Step::TrialRecorded,
    Step::Switched,
    Step::Reloaded,
    Step::Healthy,
    Step::Committed,
    Step::PreviousLinked,
    Step::Collected,
];

/// The points of a system install the power-cut tests stop at, in order
/// (the reboot lies between `Switched` and `Blessed`).
pub const SYSTEM_STEPS: [Step; 9] = [
    Step::Downloaded,
    Step::EntryDisabled,
    Step::ImageCheckpoint,
    Step::ImageWritten,
    Step::ImageVerified,
    Step::BootFilesWritten,
    Step::TrialRecorded,
    Step::Switched,
    Step::Blessed,
];

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Fetch(String),
    #[error("{0}")]
    Disk(String),
    #[error("simulated crash at {0:?}")]
    Crashed(Step),
}

#[derive(Debug, PartialEq)]
pub enum Outcome {
    UpToDate {
        version: Option<String>,
        note: String,
    },
    Installed {
        version: String,
    },
    RolledBack {
        version: String,
        reason: String,
    },
    /// A system kind's candidate is ready to try: it runs after the reboot
    /// (requested at once, or when the maintenance window opens).
    Rebooting {
        version: String,
        reboot: String,
    },
}

/// Where the clock may be trusted from: the build time of this updater.
fn clock_floor() -> time::OffsetDateTime {
    option_env!("SOURCE_DATE_EPOCH")
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::macros::datetime!(2026-01-01 00:00 UTC))
}

fn now() -> String {
    lms_bundle::rfc3339(time::OffsetDateTime::now_utc())
}

pub struct Updater {
    /// What kind of payload this engine installs (modules, content).
    pub payload: Box<dyn Payload>,
    pub layout: Layout,
    pub channel: String,
    pub node_id: String,
    pub health_timeout: Duration,
    pub trusted: Vec<ed25519_dalek::VerifyingKey>,
    pub transport: Box<dyn Transport>,
    pub node: Box<dyn NodeControl>,
    pub limits: Limits,
    /// Fault injection: stop dead (no cleanup) when this step is reached.
    pub crash_at: Option<Step>,
    /// Tests only: a pause after each step (the `step_pause` setting).
    pub step_pause: Duration,
    /// When a kind that needs a reboot (the system) may have it.
    pub reboot: crate::reboot::Reboot,
    /// The clock, replaceable for tests of untrusted clocks.
    pub clock: fn() -> time::OffsetDateTime,
}

pub(crate) fn disk<E: std::fmt::Display>(e: E) -> UpdateError {
    UpdateError::Disk(e.to_string())
}

pub(crate) fn sha256_file(path: &Path) -> Result<String, UpdateError> {
    lms_bundle::sha256_file(path).map_err(UpdateError::Disk)
}

impl Updater {
    pub fn from_config(cfg: &config::Config) -> anyhow::Result<Updater> {
        let trusted =
            cfg.trusted_keys.iter().map(|p| lms_bundle::keys::load_verifying(p)).collect::<Result<Vec<_>, _>>()?;
        Ok(Updater {
            payload: Box::new(crate::kinds::modules::Modules),
            layout: Layout { root: cfg.modules_dir.clone() },
            channel: cfg.channel.clone(),
            node_id: cfg.node_id.clone(),
            health_timeout: cfg.health_timeout,
            trusted,
            transport: repo::with_stick(
                repo::open(
                    repo::parse_source(&cfg.repository).map_err(anyhow::Error::msg)?,
                    Duration::from_secs(30),
                    lms_settings::tls::client_config(cfg.ca_file.as_deref()).map_err(anyhow::Error::msg)?,
                ),
                cfg.stick_repository.as_deref(),
            ),
            node: Box::new(node::HttpNode::new(&cfg.node_admin, &cfg.node_ready, cfg.health_timeout)),
            limits: Limits::default(),
            crash_at: None,
            step_pause: cfg.step_pause,
            reboot: crate::reboot::Reboot::from_config(cfg),
            clock: time::OffsetDateTime::now_utc,
        })
    }

    /// The engine for the whole system, when the settings give it a
    /// `system_dir`: its own journal and channel, the same repository,
    /// keys, node and gate.
    pub fn system_from_config(cfg: &config::Config) -> anyhow::Result<Option<Updater>> {
        let Some(dir) = &cfg.system_dir else { return Ok(None) };
        let mut u = Updater::from_config(cfg)?;
        u.payload = Box::new(crate::kinds::system::System::from_config(cfg).map_err(anyhow::Error::msg)?);
        u.layout = Layout { root: dir.clone() };
        u.channel = cfg.system_channel.clone();
        Ok(Some(u))
    }

    /// The engine for content, when the settings give it a `content_dir`:
    /// the same repository, keys, node and gate, its own directory and
    /// channel, so module and content updates never wait for each other.
    pub fn content_from_config(cfg: &config::Config) -> anyhow::Result<Option<Updater>> {
        let Some(dir) = &cfg.content_dir else { return Ok(None) };
        let mut u = Updater::from_config(cfg)?;
        let limits = lms_bundle::content::ContentLimits {
            max_total_bytes: cfg.max_content_bytes,
            max_file_bytes: cfg.max_content_bytes.min(lms_bundle::content::ContentLimits::default().max_file_bytes),
            ..Default::default()
        };
        u.payload = Box::new(crate::kinds::content::Content { limits });
        u.layout = Layout { root: dir.clone() };
        u.channel = cfg.content_channel.clone();
        Ok(Some(u))
    }

    pub(crate) fn step(&self, s: Step) -> Result<(), UpdateError> {
        tracing::info!(kind = self.payload.name(), step = ?s, "install step");
        if !self.step_pause.is_zero() {
            std::thread::sleep(self.step_pause);
        }
        if self.crash_at == Some(s) { Err(UpdateError::Crashed(s)) } else { Ok(()) }
    }

    pub fn state(&self) -> Result<State, UpdateError> {
        self.layout.load().map_err(UpdateError::Disk)
    }

    fn save(&self, s: &State) -> Result<(), UpdateError> {
        self.layout.save(s).map_err(UpdateError::Disk)?;
        self.write_metrics(s);
        Ok(())
    }

    /// Records `e` as the last error (best effort) and returns it.
    fn fail(&self, e: UpdateError) -> UpdateError {
        if !matches!(e, UpdateError::Crashed(_))
            && let Ok(mut s) = self.state()
        {
            s.last_error = Some(e.to_string());
            let _ = self.save(&s);
        }
        e
    }

    pub fn clock_trusted(&self, s: &State) -> bool {
        let now = (self.clock)();
        let last = s.last_trusted_time.as_deref().and_then(channel::parse_time);
        now >= clock_floor() && last.is_none_or(|l| now + Duration::from_secs(3600) >= l)
    }

    /// Brings the directory back in line with the journal. Run first by
    /// every command, so a crash at any point heals on the next start.
    pub fn recover(&self) -> Result<(), UpdateError> {
        for d in [self.layout.root.clone(), self.layout.slots(), self.layout.cache()] {
            std::fs::create_dir_all(&d).map_err(|e| UpdateError::Disk(format!("{}: {e}", d.display())))?;
        }
        if self.layout.staging().exists() {
            std::fs::remove_dir_all(self.layout.staging()).map_err(disk)?;
        }
        for stale in ["current.tmp", "previous.tmp", "state.json.tmp"] {
            let _ = std::fs::remove_file(self.layout.root.join(stale));
        }
        let mut s = self.state()?;
        let before = s.clone();
        self.payload.reconcile(self, &mut s)?;
        if s != before {
            self.save(&s)?;
        }
        if let Some(trial) = s.trial.take() {
            match self.payload.found_trial(self, &trial)? {
                TrialFound::Interrupted => {
                    self.layout
                        .set_link(&self.layout.current(), trial.from.as_ref().map(|f| f.slot.as_str()))
                        .map_err(disk)?;
                    if let Err(e) = self.node.reload() {
                        tracing::warn!(error = %e, "node reload after rollback failed (it will load current when it starts)");
                    }
                    let c = &trial.candidate;
                    let times = match &s.interrupted {
                        Some(i) if i.sha256 == c.sha256 => i.times + 1,
                        _ => 1,
                    };
                    if times >= state::INTERRUPTED_TRIALS_MAX {
                        let reason = format!(
                            "its health trial was cut short {times} times in a row (lms-updater or the node stopped); rolled back"
                        );
                        tracing::error!(version = %c.version, "{reason}; not taken again");
                        s.interrupted = None;
                        self.reject(&mut s, &trial, reason);
                    } else {
                        tracing::warn!(version = %c.version, times, "lms-updater stopped during the health trial (a power cut?); rolled back, to be tried again");
                        s.interrupted =
                            Some(state::Interrupted { version: c.version.clone(), sha256: c.sha256.clone(), times });
                        s.current = trial.from.clone();
                        s.last_error = Some(format!(
                            "{} rolled back: its health trial was cut short ({times} of {} times before it is rejected)",
                            c.version,
                            state::INTERRUPTED_TRIALS_MAX
                        ));
                    }
                    self.save(&s)?;
                }
                // Kept as journaled; `check` and `install` ask for the reboot.
                TrialFound::Waiting => s.trial = Some(trial),
                TrialFound::NotSwitched => {
                    tracing::warn!(version = %trial.candidate.version, "stopped before its switch; the next check starts it again");
                    s.trial = None;
                    self.save(&s)?;
                }
                TrialFound::Booted => self.judge_booted(&mut s, trial)?,
                TrialFound::Failed(reason) => {
                    tracing::error!(version = %trial.candidate.version, %reason, "the new system failed its trial; back on the old one");
                    self.payload.abandon(self, &trial.candidate, false)?;
                    self.reject(&mut s, &trial, reason);
                    self.save(&s)?;
                }
            }
        }
        // The links follow the journal (they may lag it after a crash).
        for (link, want) in [(self.layout.current(), &s.current), (self.layout.previous(), &s.previous)] {
            let want = want.as_ref().map(|i| i.slot.clone());
            if self.layout.link_target(&link) != want && (want.is_some() || link.symlink_metadata().is_ok()) {
                self.layout.set_link(&link, want.as_deref()).map_err(disk)?;
            }
        }
        self.collect(&s)
    }

    /// Removes slots and cached bundles nothing refers to.
    fn collect(&self, s: &State) -> Result<(), UpdateError> {
        let trial = s.trial.as_ref().map(|t| &t.candidate);
        let keep: Vec<&str> =
            [s.current.as_ref(), s.previous.as_ref(), trial].into_iter().flatten().map(|i| i.slot.as_str()).collect();
        for e in std::fs::read_dir(self.layout.slots()).map_err(disk)? {
            let e = e.map_err(disk)?;
            if !keep.contains(&e.file_name().to_string_lossy().as_ref()) {
                std::fs::remove_dir_all(e.path()).map_err(disk)?;
            }
        }
        for e in std::fs::read_dir(self.layout.cache()).map_err(disk)? {
            let e = e.map_err(disk)?;
            // A partial download is kept: the next attempt resumes it.
            if !e.file_name().to_string_lossy().ends_with(".part") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(())
    }

    /// One cycle: metadata, then install when newer, in rollout and not rejected.
    pub fn check(&self) -> Result<Outcome, UpdateError> {
        self.recover()?;
        self.check_inner().map_err(|e| self.fail(e))
    }

    fn check_inner(&self) -> Result<Outcome, UpdateError> {
        let mut s = self.state()?;
        if let Some(waiting) = self.waiting_for_reboot(&s)? {
            return Ok(waiting);
        }
        let bytes = self.transport.fetch(&channel::meta_path(&self.channel), 1 << 20).map_err(UpdateError::Fetch)?;
        let sig = self.transport.fetch(&channel::sig_path(&self.channel), 1024).map_err(UpdateError::Fetch)?;
        let meta: ChannelMeta = channel::verify(&bytes, &sig, &self.trusted, &self.channel)?;
        if meta.metadata_version < s.last_metadata_version {
            return Err(UpdateError::Refused(format!(
                "channel metadata version {} is older than version {} already seen (replayed metadata)",
                meta.metadata_version, s.last_metadata_version
            )));
        }
        if self.clock_trusted(&s) {
            let now = (self.clock)();
            let expires = channel::parse_time(&meta.expires).expect("verified");
            if now > expires {
                return Err(UpdateError::Refused(format!("channel metadata expired at {}", meta.expires)));
            }
            s.last_trusted_time = Some(lms_bundle::rfc3339(now));
        } else {
            tracing::warn!(
                "the clock is not trustworthy (earlier than this updater's build or than a time seen before): expiry not enforced; version floor and metadata version still are"
            );
        }
        s.last_metadata_version = meta.metadata_version;
        s.last_check = Some(now());
        s.last_error = None;
        self.save(&s)?;

        let offered: Version = meta.bundle.version.parse().map_err(UpdateError::Refused)?;
        if s.current.as_ref().is_some_and(|c| c.version == meta.bundle.version) {
            return Ok(Outcome::UpToDate {
                version: Some(meta.bundle.version),
                note: "running the channel's version".into(),
            });
        }
        if let Some(r) = s.rejected.iter().find(|r| r.sha256 == meta.bundle.sha256 || r.version == meta.bundle.version)
        {
            return Ok(Outcome::UpToDate {
                version: s.current.map(|c| c.version),
                note: format!("channel offers {}, rejected earlier: {}", r.version, r.reason),
            });
        }
        if let Some(floor) = &s.highest_committed
            && offered <= floor.parse::<Version>().map_err(UpdateError::Refused)?
        {
            return Ok(Outcome::UpToDate {
                version: s.current.map(|c| c.version),
                note: format!("channel offers {offered}, not above {floor} already committed here"),
            });
        }
        if !channel::in_rollout(&self.node_id, &meta.bundle.version, meta.rollout_percent) {
            return Ok(Outcome::UpToDate {
                version: s.current.map(|c| c.version),
                note: format!("{offered} is rolling out to {}% of nodes, not yet this one", meta.rollout_percent),
            });
        }
        let identity = self.payload.fetch(self, &meta.bundle)?;
        self.step(Step::Downloaded)?;
        self.install_identity(&identity, Some(&meta.bundle.sha256))
    }

    /// A candidate still waiting for its reboot (a kind that reboots; after
    /// `recover`, no other trial is left) is not installed again, by a check
    /// or by hand: the reboot is asked for again when allowed.
    fn waiting_for_reboot(&self, s: &State) -> Result<Option<Outcome>, UpdateError> {
        let Some(t) = &s.trial else { return Ok(None) };
        let reboot = self.reboot.when_allowed().map_err(UpdateError::Disk)?;
        Ok(Some(Outcome::Rebooting { version: t.candidate.version.clone(), reboot }))
    }

    /// `install SRC`: one bundle file, through the same checks and gate.
    pub fn install(&self, path: &Path) -> Result<Outcome, UpdateError> {
        self.recover()?;
        if let Some(waiting) = self.waiting_for_reboot(&self.state()?)? {
            return Ok(waiting);
        }
        let identity = self.payload.take_file(self, path).map_err(|e| self.fail(e))?;
        self.install_identity(&identity, None).map_err(|e| self.fail(e))
    }

    /// Installs the payload `identity` names (the file whose sha256 the
    /// channel signs: a module bundle, a content manifest).
    fn install_identity(&self, path: &Path, expected_sha: Option<&str>) -> Result<Outcome, UpdateError> {
        let mut s = self.state()?;
        let sha = sha256_file(path)?;
        if let Some(want) = expected_sha
            && want != sha
        {
            return Err(UpdateError::Refused(format!("{}: sha256 {sha}, expected {want}", path.display())));
        }
        if let Some(r) = s.rejected.iter().find(|r| r.sha256 == sha) {
            return Err(UpdateError::Refused(format!("bundle {} was rejected earlier: {}", r.version, r.reason)));
        }
        if s.current.as_ref().is_some_and(|c| c.sha256 == sha) {
            return Ok(Outcome::UpToDate { version: s.current.map(|c| c.version), note: "already current".into() });
        }
        let staging = self.layout.staging();
        let staged = self.payload.stage(self, path, &staging).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&staging);
        })?;
        let refuse = |msg: String| {
            let _ = std::fs::remove_dir_all(&staging);
            Err(UpdateError::Refused(msg))
        };
        let version: Version = match staged.parse() {
            Ok(v) => v,
            Err(e) => return refuse(e),
        };
        if let Some(floor) = &s.highest_committed
            && version <= floor.parse::<Version>().map_err(UpdateError::Refused)?
        {
            return refuse(format!(
                "version {version} is not above {floor}, the highest version committed on this node (use rollback to return to the retained previous version)"
            ));
        }
        if s.rejected.iter().any(|r| r.version == staged) {
            return refuse(format!("version {version} was rejected earlier on this node"));
        }
        self.step(Step::Staged)?;

        let candidate =
            Installed { version: version.to_string(), sha256: sha.clone(), slot: format!("{version}-{}", &sha[..12]) };
        let slot = self.layout.slot(&candidate.slot);
        if slot.exists() {
            std::fs::remove_dir_all(&slot).map_err(disk)?;
        }
        std::fs::rename(&staging, &slot).map_err(disk)?;
        state::sync_dir(&self.layout.slots()).map_err(UpdateError::Disk)?;
        self.step(Step::SlotReady)?;

        let from = s.current.clone();
        s.trial = Some(Trial { candidate: candidate.clone(), from: from.clone(), started: now(), failure: None });
        self.save(&s)?;
        self.step(Step::TrialRecorded)?;

        let switched = self.payload.switch(self, &candidate)?;
        self.step(Step::Switched)?;
        if switched == Switched::Reboot {
            tracing::info!(kind = self.payload.name(), version = %candidate.version, "ready to try after a reboot");
            let reboot = self.reboot.when_allowed().map_err(UpdateError::Disk)?;
            return Ok(Outcome::Rebooting { version: candidate.version, reboot });
        }
        tracing::info!(kind = self.payload.name(), version = %candidate.version, "switched current; asking the node to reload");
        let reloaded = self.node.reload();
        self.step(Step::Reloaded)?;

        let verdict = match reloaded {
            Err(e) => Err(e),
            Ok(()) => self.wait_ready(&candidate.version),
        };
        let trial = s.trial.take().expect("recorded above");
        match verdict {
            Ok(()) => {
                self.step(Step::Healthy)?;
                self.commit(&mut s, trial)?;
                tracing::info!(version = %candidate.version, "update committed");
                Ok(Outcome::Installed { version: candidate.version })
            }
            Err(reason) => {
                tracing::error!(version = %candidate.version, %reason, "health gate failed; rolling back");
                self.layout.set_link(&self.layout.current(), from.as_ref().map(|f| f.slot.as_str())).map_err(disk)?;
                if let Err(e) = self.node.reload() {
                    tracing::error!(error = %e, "reload after rollback failed");
                }
                if let Some(f) = &from
                    && let Err(e) = self.wait_ready(&f.version)
                {
                    tracing::error!(error = %e, "previous version not ready after rollback");
                }
                self.reject(&mut s, &trial, reason.clone());
                self.save(&s)?;
                self.collect(&s)?;
                Ok(Outcome::RolledBack { version: candidate.version, reason })
            }
        }
    }

    /// The trial passed its gate: the journal commits it (the floor rises,
    /// the old version becomes `previous`), then links and clean-up follow.
    fn commit(&self, s: &mut State, trial: Trial) -> Result<(), UpdateError> {
        let version: Version = trial.candidate.version.parse().map_err(UpdateError::Refused)?;
        let floor = s.highest_committed.as_ref().and_then(|f| f.parse::<Version>().ok());
        if floor.is_none_or(|f| version > f) {
            s.highest_committed = Some(version.to_string());
        }
        s.previous = trial.from;
        s.current = Some(trial.candidate);
        s.trial = None;
        s.last_error = None;
        s.interrupted = None;
        self.save(s)?;
        self.step(Step::Committed)?;
        self.layout.set_link(&self.layout.previous(), s.previous.as_ref().map(|p| p.slot.as_str())).map_err(disk)?;
        self.step(Step::PreviousLinked)?;
        self.collect(s)?;
        self.step(Step::Collected)
    }

    /// The trial failed: its version is remembered as rejected (never tried
    /// again by itself) and the version it started from is current again.
    fn reject(&self, s: &mut State, trial: &Trial, reason: String) {
        s.rejected.push(Rejected {
            version: trial.candidate.version.clone(),
            sha256: trial.candidate.sha256.clone(),
            reason: reason.clone(),
            at: now(),
        });
        s.current = trial.from.clone();
        s.trial = None;
        s.last_error = Some(format!("{} rolled back: {reason}", trial.candidate.version));
    }

    /// A kind that reboots into its candidate finds itself running it: the
    /// local health gate decides (the network is not part of it). Passed:
    /// bless, then commit. Failed: the reason goes into the journal first,
    /// then the candidate is marked bad and the node reboots into the old one.
    fn judge_booted(&self, s: &mut State, mut trial: Trial) -> Result<(), UpdateError> {
        let version = trial.candidate.version.clone();
        match self.wait_ready(&version) {
            Ok(()) => {
                self.payload.bless(self, &trial.candidate)?;
                self.step(Step::Blessed)?;
                tracing::info!(kind = self.payload.name(), %version, "the new system passed its health gate; committed");
                self.commit(s, trial)
            }
            Err(reason) => {
                let reason = format!("health gate on the new system: {reason}");
                tracing::error!(%version, %reason, "marking it bad and rebooting into the old system");
                trial.failure = Some(reason.clone());
                s.trial = Some(trial.clone());
                self.save(s)?;
                self.payload.abandon(self, &trial.candidate, true)?;
                self.reject(s, &trial, reason);
                self.save(s)?;
                self.reboot.now().map(|_| ()).map_err(UpdateError::Disk)
            }
        }
    }

    /// Waits until the node's /readyz reports `version`, up to the health timeout.
    fn wait_ready(&self, version: &str) -> Result<(), String> {
        let start = Instant::now();
        let mut last = String::from("no answer yet");
        while start.elapsed() < self.health_timeout {
            match self.payload.served(&*self.node) {
                Ok(Some(v)) if v == version => return Ok(()),
                Ok(Some(v)) => last = format!("node ready but serving {v}"),
                Ok(None) => last = "node not ready".into(),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("{version} not ready within {:?}: {last}", self.health_timeout))
    }

    /// By hand: back to the retained previous version.
    pub fn rollback(&self) -> Result<Outcome, UpdateError> {
        self.recover()?;
        self.payload.rollback_by_hand().map_err(|e| self.fail(UpdateError::Refused(e)))?;
        let mut s = self.state()?;
        let Some(prev) = s.previous.clone() else {
            return Err(self.fail(UpdateError::Refused("no previous version is retained".into())));
        };
        let cur = s.current.clone();
        self.layout.set_link(&self.layout.current(), Some(&prev.slot)).map_err(disk)?;
        let served = self.node.reload().and_then(|_| self.wait_ready(&prev.version));
        if let Some(c) = &cur {
            s.rejected.push(Rejected {
                version: c.version.clone(),
                sha256: c.sha256.clone(),
                reason: "rolled back by operator".into(),
                at: now(),
            });
        }
        s.current = Some(prev.clone());
        s.previous = None;
        s.last_error = served.as_ref().err().map(|e| format!("after rollback: {e}"));
        self.save(&s)?;
        self.layout.set_link(&self.layout.previous(), None).map_err(disk)?;
        self.collect(&s)?;
        Ok(Outcome::RolledBack {
            version: cur.map(|c| c.version).unwrap_or_default(),
            reason: "rolled back by operator".into(),
        })
    }
}
