//! What the engine tells: `status --json` and the Prometheus text file.

use super::{UpdateError, Updater};
use crate::state::{self, Installed, State};

impl Updater {
    pub fn status_json(&self) -> Result<serde_json::Value, UpdateError> {
        let s = self.state()?;
        let mut v = serde_json::json!({
            "kind": self.payload.name(),
            "current": s.current,
            "previous": s.previous,
            "state": if s.trial.is_some() { "trial" } else { "idle" },
            "trial": s.trial,
            "rejected": s.rejected,
            "interrupted": s.interrupted,
            "last_error": s.last_error,
            "highest_committed": s.highest_committed,
            "last_metadata_version": s.last_metadata_version,
            "last_check": s.last_check,
            "clock_trusted": self.clock_trusted(&s),
            "channel": self.channel,
            "repository": self.transport.describe(),
        });
        // What the kind knows besides the journal (the system: both slots).
        let extra = self.payload.status(self);
        if let serde_json::Value::Object(m) = extra {
            for (k, x) in m {
                v[k] = x;
            }
        }
        Ok(v)
    }

    /// Prometheus text for node_exporter's textfile collector (best effort).
    pub(super) fn write_metrics(&self, s: &State) {
        let v = |i: &Option<Installed>| i.as_ref().map(|i| i.version.clone()).unwrap_or_default();
        let kind = self.payload.name();
        let last_rejected = s.rejected.last().map(|r| r.version.clone()).unwrap_or_default();
        let text = format!(
            "# HELP lms_updater_info Versions on this node, per payload kind.\n# TYPE lms_updater_info gauge\nlms_updater_info{{kind=\"{kind}\",current=\"{}\",previous=\"{}\",last_rejected=\"{last_rejected}\"}} 1\n\
             # HELP lms_updater_rejected_versions Versions rejected on this node (health gate, failed boot, operator).\n# TYPE lms_updater_rejected_versions gauge\nlms_updater_rejected_versions{{kind=\"{kind}\"}} {}\n\
             # HELP lms_updater_in_trial 1 while a new version is on trial.\n# TYPE lms_updater_in_trial gauge\nlms_updater_in_trial{{kind=\"{kind}\"}} {}\n\
             # HELP lms_updater_last_error 1 when the last operation failed.\n# TYPE lms_updater_last_error gauge\nlms_updater_last_error{{kind=\"{kind}\"}} {}\n",
            v(&s.current),
            v(&s.previous),
            s.rejected.len(),
            s.trial.is_some() as u8,
            s.last_error.is_some() as u8
        );
        let _ = state::write_atomic(&self.layout.metrics_file(), text.as_bytes());
    }

    /// Checks that `current` is a complete, verified slot of this kind; the
    /// version it holds.
    pub fn verify_current(&self) -> Result<Option<String>, String> {
        let link = self.layout.current();
        if link.symlink_metadata().is_err() {
            return Ok(None);
        }
        let dir = std::fs::canonicalize(&link).map_err(|e| format!("{}: {e}", link.display()))?;
        self.payload.verify_slot(self, &dir).map(Some)
    }
}
