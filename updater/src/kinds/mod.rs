//! What differs between the payload kinds the one engine installs. Modeled
//! on Rugix's `BootFlow` and Bottlerocket's updog: the engine owns the
//! steps, the journal, the switch, the gate and the recovery; a kind says
//! only how its payload is brought in and verified into a slot, which
//! version of it the node reports serving, and how a slot is re-verified.
//!
//! Kinds: [`modules::Modules`] (one signed bundle file, unpacked),
//! [`content::Content`] (a signed manifest of content-addressed files, of
//! which only those the node lacks are downloaded) and [`system::System`]
//! (the whole system into the inactive A/B slot; tried after a reboot,
//! judged by the new system itself, blessed or abandoned).

pub mod content;
pub mod modules;
pub mod system;

use crate::node::NodeControl;
use crate::state::{Installed, State, Trial};
use crate::{UpdateError, Updater};
use lms_bundle::channel::BundleRef;
use std::path::{Path, PathBuf};

/// Where a candidate stands after its kind switched to it.
#[derive(Debug, PartialEq, Eq)]
pub enum Switched {
    /// Serving now: the engine asks the node to reload and gates at once.
    Live,
    /// It runs after a reboot; the new system judges it.
    Reboot,
}

/// What a kind makes of a trial the journal records, when the updater starts.
#[derive(Debug, PartialEq, Eq)]
pub enum TrialFound {
    /// The updater stopped mid-trial (live kinds): roll back.
    Interrupted,
    /// Not tried yet (the reboot has not happened): keep waiting.
    Waiting,
    /// The switch never happened (stopped between the journal and the
    /// commit point): drop the trial; the next check installs it again.
    NotSwitched,
    /// This is the candidate running: gate it now.
    Booted,
    /// It was tried and the node is back on the old one, for this reason.
    Failed(String),
}

pub trait Payload: Send + Sync {
    /// `modules`, `content`: in logs, status and errors.
    fn name(&self) -> &'static str;
    /// Brings what the channel offers into the kind's cache (resumable,
    /// every byte hashed); returns the file the channel's sha256 names
    /// (the payload's identity).
    fn fetch(&self, u: &Updater, offer: &BundleRef) -> Result<PathBuf, UpdateError>;
    /// The same for a file an operator hands to `install` (a USB stick).
    fn take_file(&self, u: &Updater, file: &Path) -> Result<PathBuf, UpdateError>;
    /// Verifies the payload `identity` names (signature first) and builds
    /// the new slot's complete tree in `staging`; returns its version.
    fn stage(&self, u: &Updater, identity: &Path, staging: &Path) -> Result<String, UpdateError>;
    /// The version of this kind the node reports serving (None: not ready).
    fn served(&self, node: &dyn NodeControl) -> Result<Option<String>, String>;
    /// Checks that a slot is complete and every byte matches its signed
    /// manifest; returns its version.
    fn verify_slot(&self, u: &Updater, dir: &Path) -> Result<String, String>;

    /// Makes `candidate`'s slot the one served. Default: the `current`
    /// link, in one rename.
    fn switch(&self, u: &Updater, candidate: &Installed) -> Result<Switched, UpdateError> {
        u.layout.set_link(&u.layout.current(), Some(&candidate.slot)).map_err(UpdateError::Disk)?;
        Ok(Switched::Live)
    }

    /// A trial found in the journal at start. Default: the updater died
    /// during a live trial.
    fn found_trial(&self, _u: &Updater, _trial: &Trial) -> Result<TrialFound, UpdateError> {
        Ok(TrialFound::Interrupted)
    }

    /// The booted candidate passed its gate: make it stay (before the
    /// journal commits it).
    fn bless(&self, _u: &Updater, _candidate: &Installed) -> Result<(), UpdateError> {
        Ok(())
    }

    /// The candidate failed: make sure it is never started again by itself
    /// (`booted`: it is the one running, and a reboot follows).
    fn abandon(&self, _u: &Updater, _candidate: &Installed, _booted: bool) -> Result<(), UpdateError> {
        Ok(())
    }

    /// Brings the journal in line with what is really running, before
    /// anything else (the system kind: a node reflashed by hand).
    fn reconcile(&self, _u: &Updater, _s: &mut State) -> Result<(), UpdateError> {
        Ok(())
    }

    /// Whether `rollback` by hand (the `current` link back to the retained
    /// previous slot, then a reload) applies to this kind; Err says why not.
    fn rollback_by_hand(&self) -> Result<(), String> {
        Ok(())
    }

    /// What `status --json` shows for this kind besides the journal.
    fn status(&self, _u: &Updater) -> serde_json::Value {
        serde_json::Value::Null
    }
}
