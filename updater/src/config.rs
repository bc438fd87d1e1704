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

pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("expected a duration like 30s, 500ms, 10m; got {v:?}"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("unknown unit {unit:?} in {v:?} (ms, s, m, h)")),
    })
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse_duration(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
        let cfg: Config = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("config {}: {}", path.display(), e.to_string().trim()))?;
        if !lms_bundle::channel::valid_channel_name(&cfg.channel) {
            anyhow::bail!("config {}: channel {:?} is not a valid channel name", path.display(), cfg.channel);
        }
        if cfg.trusted_keys.is_empty() {
            anyhow::bail!("config {}: trusted_keys is empty; nothing could ever verify", path.display());
        }
        Ok(cfg)
    }
}
