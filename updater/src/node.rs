//! How the updater talks to lms-node: ask it to reload, and read which
//! bundle version its /readyz reports. Behind a trait so tests can stand a
//! model of the node in (the end-to-end test uses the real one).

use crate::http::Http;
use std::time::Duration;

pub trait NodeControl: Send {
    /// Ask the node to load `current` again. Err carries the node's reason.
    fn reload(&self) -> Result<(), String>;
    /// Ok(Some(version)) when /readyz answers 200 for that bundle version;
    /// Ok(None) when it is not ready; Err when it cannot be reached.
    fn ready_version(&self) -> Result<Option<String>, String>;
    /// The same for the content version /readyz reports (`content_version`).
    fn ready_content_version(&self) -> Result<Option<String>, String> {
        Ok(None)
    }
}

pub struct HttpNode {
    pub admin: String,
    pub ready: String,
    http: Http,
    /// Reload compiles every module (and runs its self-test) before it answers:
    /// on a slow node that takes longer than a probe, so it gets the health gate's budget.
    reload_http: Http,
}

impl HttpNode {
    pub fn new(admin: &str, ready: &str, reload_timeout: Duration) -> HttpNode {
        HttpNode {
            admin: admin.trim_end_matches('/').to_string(),
            ready: ready.to_string(),
            http: Http::new(Duration::from_secs(10)),
            reload_http: Http::new(reload_timeout.max(Duration::from_secs(10))),
        }
    }
}

impl HttpNode {
    /// A string field of the /readyz answer when it is 200.
    fn ready_field(&self, field: &str) -> Result<Option<String>, String> {
        let a = self.http.call("GET", &self.ready, 1 << 20)?;
        if a.status != 200 {
            return Ok(None);
        }
        let v: serde_json::Value = serde_json::from_slice(&a.body).map_err(|e| format!("{}: {e}", self.ready))?;
        Ok(v[field].as_str().map(str::to_string))
    }
}

impl NodeControl for HttpNode {
    fn reload(&self) -> Result<(), String> {
        let a = self.reload_http.call("POST", &format!("{}/admin/reload", self.admin), 1 << 20)?;
        if a.status == 200 {
            return Ok(());
        }
        let msg = serde_json::from_slice::<serde_json::Value>(&a.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&a.body).into_owned());
        Err(format!("node refused the reload (HTTP {}): {msg}", a.status))
    }

    fn ready_version(&self) -> Result<Option<String>, String> {
        self.ready_field("bundle_version")
    }

    fn ready_content_version(&self) -> Result<Option<String>, String> {
        self.ready_field("content_version")
    }
}
