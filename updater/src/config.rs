//! `lms-updater --config FILE`: TOML, unknown keys refused, errors name the
//! file and the key.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `http://host:port/path/` or a local directory (a mounted USB stick).
    pub repository: String,
    /// Where a USB stick holding a repository appears (lms-init mounts a
    /// filesystem labelled `LMS-UPDATE` there, read-only): while it is
    /// there, each file the updater needs is taken from it when it has it,
    /// else from `repository`. Everything is signed and hashed either way.
    #[serde(default)]
    pub stick_repository: Option<PathBuf>,
    #[serde(default = "default_channel")]
    pub channel: String,
    pub trusted_keys: Vec<PathBuf>,
    /// Slots, links and the updater's state live here; lms-node serves `modules_dir/current`.
    pub modules_dir: PathBuf,
    /// lms-node's admin listener, for reload.
    pub node_admin: String,
    /// lms-node's readiness probe.
    pub node_ready: String,
    #[serde(default = "default_health_timeout", deserialize_with = "de_duration")]
    pub health_timeout: Duration,
    #[serde(default = "default_poll", deserialize_with = "de_duration")]
    pub poll_interval: Duration,
    pub node_id: String,
    /// Trust only these CA certificates (PEM) for an https:// repository (a
    /// private PKI); without it, Mozilla's roots built into lms-updater.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Where content slots, links and the content journal live (lms-node
    /// serves `content_dir/current`); without it content is not updated.
    #[serde(default)]
    pub content_dir: Option<PathBuf>,
    #[serde(default = "default_content_channel")]
    pub content_channel: String,
    /// The most a content version may hold, all files together (media is
    /// large; the data partition is not).
    #[serde(default = "default_max_content_bytes")]
    pub max_content_bytes: u64,
    /// Where the system updates' journal and downloads live (on the data
    /// partition); without it the system is not updated over the air.
    #[serde(default)]
    pub system_dir: Option<PathBuf>,
    #[serde(default = "default_system_channel")]
    pub system_channel: String,
    /// The partitions a system update writes, when not found by their GPT
    /// names (`ESP`, `lms-system-a`, `lms-system-b`): files in tests.
    #[serde(default)]
    pub system_devices: Option<SystemDevices>,
    /// The kernel command line of the running system (`lms.slot=`).
    #[serde(default = "default_cmdline")]
    pub cmdline_file: PathBuf,
    /// The running system's os-release (`SYSTEM_VERSION=`, `IMAGE_ID=`).
    #[serde(default = "default_os_release")]
    pub os_release: PathBuf,
    /// The file lms-init watches for a reboot request.
    #[serde(default = "default_reboot_request")]
    pub reboot_request: PathBuf,
    /// `HH:MM-HH:MM` (UTC): reboot into a new system only then; unset: at once.
    #[serde(default)]
    pub reboot_window: Option<String>,
    /// How many boots a new system gets before the boot loader gives up on it.
    #[serde(default = "default_boot_tries")]
    pub boot_tries: u32,
    /// Tests only: wait this long after each install step (a power-cut test
    /// watching the log then cuts right after the step it means). Never set
    /// on a real node; default 0.
    #[serde(default, deserialize_with = "de_duration")]
    pub step_pause: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemDevices {
    pub esp: PathBuf,
    pub a: PathBuf,
    pub b: PathBuf,
}

fn default_system_channel() -> String {
    "system-stable".into()
}
fn default_cmdline() -> PathBuf {
    "/proc/cmdline".into()
}
fn default_os_release() -> PathBuf {
    "/system/etc/os-release".into()
}
fn default_reboot_request() -> PathBuf {
    "/run/lms-updater/reboot".into()
}
fn default_boot_tries() -> u32 {
    3
}

fn default_content_channel() -> String {
    "content-stable".into()
}
fn default_max_content_bytes() -> u64 {
    8 << 30
}

fn default_channel() -> String {
    "stable".into()
}
fn default_health_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_poll() -> Duration {
    Duration::from_secs(600)
}

pub use lms_settings::parse_duration;

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse_duration(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
        let table =
            lms_settings::section(&text, "updater").map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
        let cfg: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("config {}: {}", path.display(), e.to_string().trim()))?;
        if let Some(w) = &cfg.reboot_window
            && let Err(e) = crate::reboot::parse_window(w)
        {
            anyhow::bail!("config {}: reboot_window {e}", path.display());
        }
        if !(1..=10).contains(&cfg.boot_tries) {
            anyhow::bail!("config {}: boot_tries {} is not between 1 and 10", path.display(), cfg.boot_tries);
        }
        for (key, name) in [
            ("channel", &cfg.channel),
            ("content_channel", &cfg.content_channel),
            ("system_channel", &cfg.system_channel),
        ] {
            if !lms_bundle::channel::valid_channel_name(name) {
                anyhow::bail!("config {}: {key} {name:?} is not a valid channel name", path.display());
            }
        }
        if let Err(e) = crate::repo::parse_source(&cfg.repository) {
            anyhow::bail!("config {}: repository {e}", path.display());
        }
        if let Err(e) = lms_settings::tls::client_config(cfg.ca_file.as_deref()) {
            anyhow::bail!("config {}: ca_file {e}", path.display());
        }
        if cfg.trusted_keys.is_empty() {
            anyhow::bail!("config {}: trusted_keys is empty; nothing could ever verify", path.display());
        }
        Ok(cfg)
    }

    /// Refuses every trusted key that is not a file inside `dir` (symbolic
    /// links resolved): the keys that decide what may run on the node must
    /// come from the read-only system, not from the settings' writable home.
    pub fn pinned_to(self, dir: &Path) -> anyhow::Result<Config> {
        let root = dir.canonicalize().map_err(|e| anyhow::anyhow!("--pin-keys {}: {e}", dir.display()))?;
        for k in &self.trusted_keys {
            let real = k.canonicalize().map_err(|e| anyhow::anyhow!("trusted_keys {}: {e}", k.display()))?;
            if !real.starts_with(&root) {
                anyhow::bail!(
                    "trusted_keys {}: outside the pinned key directory {} (--pin-keys); a key from a writable place could sign anything",
                    k.display(),
                    root.display()
                );
            }
        }
        Ok(self)
    }
}
