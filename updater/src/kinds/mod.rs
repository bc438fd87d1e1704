//! What differs between the payload kinds the one engine installs. Modeled
//! on Rugix's `BootFlow` and Bottlerocket's updog: the engine owns the
//! steps, the journal, the switch, the gate and the recovery; a kind says
//! only how its payload is brought in and verified into a slot, which
//! version of it the node reports serving, and how a slot is re-verified.
//!
//! Kinds: [`modules::Modules`] (one signed bundle file, unpacked) and
//! [`content::Content`] (a signed manifest of content-addressed files, of
//! which only those the node lacks are downloaded).

pub mod content;
pub mod modules;

use crate::node::NodeControl;
use crate::{UpdateError, Updater};
use lms_bundle::channel::BundleRef;
use std::path::{Path, PathBuf};

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
}
