//! lms-node: the edge node that serves a city's learners.
//!
//! Where it sits: the image boots it (port 8080, admin on loopback); it
//! serves the module directory and the content pack lms-updater keeps
//! current (`--modules`, `--content`; reloaded on SIGHUP or POST
//! /admin/reload) and stores learning records as
//! xAPI statements in SQLite under `--data-dir`.
//!
//! Request flow: axum router (auth, metrics) -> handler -> for /v1 a fresh
//! wasm instance of the LMS module (`wasm`), whose emitted statements are
//! stored before the answer; for /xapi the statement store (`xapi`).
//!
//! What it must never do: acknowledge a statement that is not on disk, serve
//! a half-loaded module set, let a module's loop or allocation take the node
//! down, or answer a client's mistake with a 500.

pub mod client;
pub mod config;
pub mod content;
pub mod http;
pub mod metrics;
pub mod node;
pub mod roster;
pub mod server;
pub mod sync;
pub mod wasm;
pub mod xapi;

pub use config::Config;
pub use node::Node;
