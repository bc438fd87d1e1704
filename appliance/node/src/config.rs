//! Node settings: defaults, then a TOML file (`--config`), then the
//! environment names the seed deployment uses, then command-line flags.
//! Every error names where the bad value came from (file and key, or the
//! environment variable).

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}={value:?}: {message}")]
    Env { var: &'static str, value: String, message: String },
    #[error("setting {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Everything the node reads at start. Field names are the TOML keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This node's name (the appliance settings file's top-level `node_id`); /readyz reports it.
    pub node_id: Option<String>,
    /// Public listener (learners and clients).
    pub listen: String,
    /// Admin listener: a loopback `IP:PORT` or `unix:/path`. Never public.
    pub admin_listen: Option<String>,
    /// The content listener: package files for browsers, on an origin of
    /// their own (see `content::serve`), e.g. `0.0.0.0:8081` (the appliance
    /// sets it); unset, none are served.
    pub content_listen: Option<String>,
    /// lms-updater's Prometheus text files (one per kind: modules, content,
    /// system), appended to /metrics so one scrape shows the updates too
    /// (versions, trials, rejected versions, the last error).
    pub updater_metrics: Vec<PathBuf>,
    pub data_dir: PathBuf,
    /// The module directory to serve (for the appliance, the updater's `current` link).
    pub modules: PathBuf,
    /// The content pack to serve (the updater's content `current` link);
    /// when it is not a pack (no `pack.toml`) the catalog is empty (or, for
    /// a format 1 module directory, its own `content.json` serves).
    pub content: PathBuf,
    /// The origin browsers reach this node's public listener at (e.g.
    /// `http://node.example:8080`) and its content listener at (e.g.
    /// `http://node.example:8081`): cmi5 launch URLs name both (the AU's
    /// files on the content origin, the LRS endpoint and fetch URL here).
    pub public_url: Option<String>,
    pub content_url: Option<String>,
    /// Packages added on the node itself (`POST /admin/content/packages`):
    /// a content pack on the data partition beside the signed content,
    /// kept across content updates; default `{data_dir}/local-content`.
    pub local_content: Option<PathBuf>,
    /// Largest package an admin may add on the node, in bytes.
    pub max_package_bytes: u64,
    /// htpasswd file with bcrypt entries for /xapi and /v1.
    pub credentials: Option<PathBuf>,
    /// What each credential may do, in xAPI scope names (see `http::scopes`).
    /// Unset: `scopes.toml` beside `credentials`, when it exists; a
    /// credential it does not name gets `statements/write` +
    /// `statements/read/mine`.
    pub credential_scopes: Option<PathBuf>,
    /// The people who sign in with a browser (issue 11); default
    /// `{data_dir}/roster.db`.
    pub roster: Option<PathBuf>,
    /// How long a browser sign-in lasts.
    #[serde(deserialize_with = "de_secs")]
    pub session_ttl: Duration,
    /// Pages' language when neither the person nor the browser picks one
    /// (`zh-CN` or `en`).
    pub default_language: String,
    /// The coach view lists a learner as needing help after this many days
    /// without activity (besides two failed attempts at a quiz).
    pub needs_help_inactive_days: u32,
    /// Serve HTTPS on the public listener with this certificate chain (PEM)
    /// and key (PEM); both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,

    pub cache_enabled: bool,
    #[serde(deserialize_with = "de_secs")]
    pub cache_ttl: Duration,
    pub sync_enabled: bool,
    #[serde(deserialize_with = "de_secs")]
    pub sync_interval: Duration,

    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest xAPI document (State, Activity/Agent Profile) stored, in
    /// bytes; a larger PUT or POST gets 413 and changes nothing.
    pub max_document_bytes: usize,
    /// Public connections open at once; past it a new connection gets 503
    /// and is closed. The admin listener has its own connections
    /// (ADMIN_CONNECTIONS), so a flood of public ones never locks the operator out.
    pub max_connections: usize,
    /// Longest a client may take to send a request's headers, and the
    /// longest an idle keep-alive connection stays open.
    #[serde(deserialize_with = "de_secs")]
    pub header_timeout: Duration,
    /// Longest one request (body upload included) may take.
    #[serde(deserialize_with = "de_secs")]
    pub request_timeout: Duration,
    /// Wall-clock budget of one module call.
    #[serde(deserialize_with = "de_secs")]
    pub module_timeout: Duration,
    /// Linear-memory cap of one module instance, in bytes.
    pub module_memory_bytes: u64,
    /// Module instances that may run at once (pooling allocator slots).
    pub module_instances: u32,
    /// Compile modules for the architecture's baseline instead of this CPU's
    /// features, so code compiled elsewhere (the image build's precompiled
    /// factory modules) is valid here. The appliance sets it.
    pub portable_module_code: bool,
    /// `account.homePage` of learner actors (`/v1/learners/{learner}`).
    pub learner_home_page: String,
    /// Most statements handed to the progress module for one learner.
    pub progress_statement_limit: usize,
    /// Most bytes of (reduced) statements handed to the progress module for
    /// one learner; each statement is cut to what progress reads first.
    pub progress_statement_bytes: usize,
    /// Most statement writes committed in one transaction (group commit).
    pub group_commit_max: usize,

    /// Upstream LRS base URL (statements go to `{upstream}/statements`),
    /// e.g. `http://hub.example.org:8080/xapi`. Statements are queued for it
    /// whenever it is set; they are sent while `sync_enabled` is true.
    pub upstream: Option<String>,
    pub upstream_user: Option<String>,
    pub upstream_password: Option<String>,
    /// A file holding the upstream password (first line), instead of `upstream_password`.
    pub upstream_password_file: Option<PathBuf>,
    /// Trust only these CA certificates (PEM) for an https:// upstream (a
    /// private PKI); without it, Mozilla's roots built into lms-node.
    pub upstream_ca_file: Option<PathBuf>,
    /// Statements per upstream POST.
    pub sync_batch_size: usize,
    /// Most statements the outbox may hold; new statements are refused (503) beyond it.
    pub outbox_limit: u64,
    /// Budget of one upstream request.
    #[serde(deserialize_with = "de_secs")]
    pub sync_timeout: Duration,
    /// While learners' requests are being answered, sync rests this many
    /// times as long as its last batch took before the next one (0: never
    /// rests, the default: lms-bench measured no gain in learners' P99 from
    /// resting, only a slower drain; see BENCHMARKS.md).
    pub sync_pace: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: None,
            listen: "0.0.0.0:8080".into(),
            admin_listen: Some("127.0.0.1:9090".into()),
            content_listen: None,
            updater_metrics: Vec::new(),
            data_dir: PathBuf::from("/data/lms"),
            modules: PathBuf::from("/data/modules/current"),
            content: PathBuf::from("/data/content/current"),
            local_content: None,
            public_url: None,
            content_url: None,
            max_package_bytes: 2 << 30,
            credentials: None,
            credential_scopes: None,
            roster: None,
            session_ttl: Duration::from_secs(12 * 3600),
            default_language: "zh-CN".into(),
            needs_help_inactive_days: 7,
            tls_cert: None,
            tls_key: None,
            cache_enabled: true,
            cache_ttl: Duration::from_secs(300),
            sync_enabled: false,
            sync_interval: Duration::from_secs(10),
            max_body_bytes: 1 << 20,
            max_document_bytes: 1 << 20,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            module_timeout: Duration::from_millis(500),
            module_memory_bytes: 64 << 20,
            module_instances: 128,
            portable_module_code: false,
            learner_home_page: "https://lms.example.org/learners".into(),
            progress_statement_limit: 10_000,
            progress_statement_bytes: 4 << 20,
            group_commit_max: 256,
            upstream: None,
            upstream_user: None,
            upstream_password: None,
            upstream_password_file: None,
            upstream_ca_file: None,
            sync_batch_size: 500,
            outbox_limit: 1_000_000,
            sync_timeout: Duration::from_secs(30),
            sync_pace: 0.0,
        }
    }
}

impl Config {
    /// Where the roster is: `roster`, else `{data_dir}/roster.db`.
    pub fn local_content_path(&self) -> PathBuf {
        self.local_content.clone().unwrap_or_else(|| self.data_dir.join("local-content"))
    }

    pub fn roster_path(&self) -> PathBuf {
        self.roster.clone().unwrap_or_else(|| self.data_dir.join("roster.db"))
    }

    /// Reads `path` over the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let parse = |message: String| ConfigError::Parse { path: path.to_path_buf(), message };
        let table = lms_settings::section(&text, "node").map_err(parse)?;
        table.try_into().map_err(|e: toml::de::Error| parse(e.to_string().trim().to_string()))
    }

    /// Applies the seed deployment's environment names (its ConfigMap keys,
    /// upper-cased): SYNC_ENABLED, SYNC_INTERVAL, CACHE_ENABLED, CACHE_TTL.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let bad = |var: &'static str, value: &str, message: String| ConfigError::Env {
            var,
            value: value.to_string(),
            message,
        };
        if let Some(v) = get("SYNC_ENABLED") {
            self.sync_enabled = parse_bool(&v).map_err(|m| bad("SYNC_ENABLED", &v, m))?;
        }
        if let Some(v) = get("CACHE_ENABLED") {
            self.cache_enabled = parse_bool(&v).map_err(|m| bad("CACHE_ENABLED", &v, m))?;
        }
        if let Some(v) = get("SYNC_INTERVAL") {
            self.sync_interval = parse_duration(&v).map_err(|m| bad("SYNC_INTERVAL", &v, m))?;
        }
        if let Some(v) = get("CACHE_TTL") {
            self.cache_ttl = parse_duration(&v).map_err(|m| bad("CACHE_TTL", &v, m))?;
        }
        Ok(())
    }

    /// Checks cross-field rules once everything is applied.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid { key, message: message.into() };
        if self.max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes", "must be at least 1024"));
        }
        if self.max_document_bytes < 1024 {
            return Err(invalid("max_document_bytes", "must be at least 1024"));
        }
        if !crate::http::pages::LANGUAGES.contains(&self.default_language.as_str()) {
            return Err(invalid("default_language", "must be zh-CN or en"));
        }
        if self.needs_help_inactive_days == 0 || self.needs_help_inactive_days > 3650 {
            return Err(invalid("needs_help_inactive_days", "must be between 1 and 3650"));
        }
        if self.max_connections == 0 {
            return Err(invalid("max_connections", "must be at least 1"));
        }
        if self.header_timeout.is_zero() {
            return Err(invalid("header_timeout", "must be above zero"));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request_timeout", "must be above zero"));
        }
        if self.module_timeout.is_zero() {
            return Err(invalid("module_timeout", "must be above zero"));
        }
        if self.module_memory_bytes < (2 << 20) {
            return Err(invalid("module_memory_bytes", "must be at least 2 MiB"));
        }
        if self.module_instances == 0 {
            return Err(invalid("module_instances", "must be at least 1"));
        }
        if self.group_commit_max == 0 {
            return Err(invalid("group_commit_max", "must be at least 1"));
        }
        if !(0.0..=10.0).contains(&self.sync_pace) {
            return Err(invalid("sync_pace", "must be between 0 and 10"));
        }
        if self.sync_batch_size == 0 || self.sync_batch_size > 10_000 {
            return Err(invalid("sync_batch_size", "must be between 1 and 10000"));
        }
        if self.outbox_limit == 0 {
            return Err(invalid("outbox_limit", "must be at least 1"));
        }
        if let Some(u) = &self.upstream {
            lms_settings::tls::check_url(u).map_err(|m| invalid("upstream", &m))?;
        }
        if let Some(ca) = &self.upstream_ca_file {
            lms_settings::tls::client_config(Some(ca)).map_err(|m| invalid("upstream_ca_file", &m))?;
        }
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => {}
            (Some(c), Some(k)) => {
                lms_settings::tls::server_config(c, k).map_err(|m| invalid("tls_cert", &m))?;
            }
            (Some(_), None) => return Err(invalid("tls_key", "tls_cert is set but tls_key is not")),
            (None, Some(_)) => return Err(invalid("tls_cert", "tls_key is set but tls_cert is not")),
        }
        if self.sync_enabled && self.upstream.is_none() {
            return Err(invalid("sync_enabled", "sync is enabled but no upstream is set"));
        }
        if self.upstream_password.is_some() && self.upstream_password_file.is_some() {
            return Err(invalid("upstream_password_file", "set upstream_password or upstream_password_file, not both"));
        }
        Ok(())
    }

    /// The module sandbox's limits from these settings.
    pub fn module_limits(&self) -> crate::wasm::Limits {
        crate::wasm::Limits {
            timeout: self.module_timeout,
            memory_bytes: self.module_memory_bytes,
            instances: self.module_instances,
            portable_code: self.portable_module_code,
        }
    }

    /// Seconds clients may cache cacheable responses; 0 when caching is off.
    pub fn effective_cache_ttl(&self) -> u64 {
        if self.cache_enabled { self.cache_ttl.as_secs() } else { 0 }
    }
}

pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

pub use lms_settings::parse_duration;

fn de_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(n) => Ok(Duration::from_secs(n)),
        Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_errors_name_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.toml");
        std::fs::write(&p, "listen = \"127.0.0.1:1\"\ncache_tll = 5\n").unwrap();
        let e = Config::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("node.toml") && e.contains("cache_tll"), "{e}");
        std::fs::write(&p, "cache_ttl = \"5 parsecs\"\n").unwrap();
        let e = Config::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("cache_ttl"), "{e}");
        std::fs::write(&p, "cache_ttl = \"120s\"\nsync_interval = 3\n").unwrap();
        let c = Config::from_file(&p).unwrap();
        assert_eq!(c.cache_ttl, Duration::from_secs(120));
        assert_eq!(c.sync_interval, Duration::from_secs(3));
        std::fs::write(&p, "sync_pace = 0.5\n").unwrap();
        assert_eq!(Config::from_file(&p).unwrap().sync_pace, 0.5);
        let c = Config { sync_pace: -1.0, ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("sync_pace"));
    }

    #[test]
    fn appliance_settings_file_gives_the_node_its_table() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lms.toml");
        std::fs::write(&p, "node_id = \"edge-7\"\n[node]\ncache_ttl = \"60s\"\n[updater]\nchannel = \"beta\"\n")
            .unwrap();
        let c = Config::from_file(&p).unwrap();
        assert_eq!(c.node_id.as_deref(), Some("edge-7"));
        assert_eq!(c.cache_ttl, Duration::from_secs(60));
        std::fs::write(&p, "[node]\ncache_tll = 5\n").unwrap();
        let e = Config::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("lms.toml") && e.contains("cache_tll"), "{e}");
    }

    #[test]
    fn env_overrides_and_names_the_variable() {
        let mut c = Config::default();
        c.apply_env(|k| match k {
            "SYNC_ENABLED" => Some("true".into()),
            "CACHE_TTL" => Some("60".into()),
            "CACHE_ENABLED" => Some("false".into()),
            _ => None,
        })
        .unwrap();
        assert!(c.sync_enabled);
        assert_eq!(c.cache_ttl, Duration::from_secs(60));
        assert_eq!(c.effective_cache_ttl(), 0);
        let e = c.apply_env(|k| (k == "SYNC_INTERVAL").then(|| "soon".into())).unwrap_err();
        assert!(e.to_string().contains("SYNC_INTERVAL"), "{e}");
    }
}
