//! lms-image, the release side of the appliance: the image builder library
//! (definition -> pinned inputs -> policy check -> filesystems -> signed GPT
//! disk), verification, booting under QEMU, flashing, and the keys, module
//! bundles and update repository that lms-updater consumes. `cmd` holds one
//! module per subcommand; the binary only parses and dispatches.
//!
//! It must never put a stand-in where a pinned input is missing (absent
//! optional inputs are recorded as absent), nor write an output before the
//! definition and its inputs have been checked.

pub mod build;
pub mod cmd;
pub mod definition;
pub mod disk;
pub mod initramfs;
pub mod inputs;
pub mod manifest;
pub mod policy;
pub mod progress;
pub mod qemu;
pub mod tool;
