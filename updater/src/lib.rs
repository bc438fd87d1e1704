//! lms-updater: keeps a node's LMS modules and content current without
//! ever leaving them broken.
//!
//! One update engine ([`engine`]), several payload kinds ([`kinds`]): the
//! engine owns the flow every kind goes through, each step journaled in its
//! kind's `state.json`: fetch signed channel metadata -> bring the payload
//! in (resumable, every byte hashed) -> verify it and build the new slot
//! in `staging/` -> rename into `slots/<version>-<sha>` -> journal the
//! trial -> switch the `current` link in one rename -> ask lms-node to
//! reload -> health gate (the node serves the new version) -> commit
//! (journal, `previous` link, clean up) or switch back and remember the
//! version as rejected. A kind plugs in only what differs: how its payload
//! is fetched and staged, and what the health gate asks the node.
//!
//! After a crash at any point, [`Updater::recover`] (run first by every
//! command) brings the directory back to the journal: a trial that was not
//! committed is rolled back; half-made slots and staging are removed.
//!
//! What it must never do: point `current` at anything but a complete,
//! verified slot; install at or below the highest version ever committed
//! (except an explicit `rollback`); act on metadata it has not verified.

pub mod config;
pub mod engine;
pub mod http;
pub mod kinds;
pub mod node;
pub mod reboot;
pub mod repo;
pub mod state;

pub use engine::{Outcome, STEPS, SYSTEM_STEPS, Step, UpdateError, Updater};
