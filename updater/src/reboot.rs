//! When a kind that needs a reboot (the system) may have it: at once, or
//! inside a maintenance window (`reboot_window = "02:00-04:00"`, UTC, may
//! wrap midnight). lms-updater runs as its own user and cannot reboot the
//! node itself: it asks lms-init by creating a request file that init
//! watches (`reboot_request`, default `/run/lms-updater/reboot`), and init
//! stops the services, syncs and reboots.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Reboot {
    pub request: PathBuf,
    /// Minutes after midnight UTC: [start, end).
    pub window: Option<(u32, u32)>,
    pub clock: fn() -> time::OffsetDateTime,
}

/// `HH:MM-HH:MM` as minutes after midnight.
pub fn parse_window(s: &str) -> Result<(u32, u32), String> {
    let minutes = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
        (h < 24 && m < 60 && t.trim().len() == 5).then_some(h * 60 + m)
    };
    let (a, b) = s.split_once('-').ok_or_else(|| format!("{s:?} is not HH:MM-HH:MM"))?;
    match (minutes(a), minutes(b)) {
        (Some(a), Some(b)) if a != b => Ok((a, b)),
        _ => Err(format!("{s:?} is not HH:MM-HH:MM (24-hour, UTC, start and end differ)")),
    }
}

impl Reboot {
    pub fn from_config(cfg: &crate::config::Config) -> Reboot {
        Reboot {
            request: cfg.reboot_request.clone(),
            window: cfg.reboot_window.as_deref().map(|w| parse_window(w).expect("checked when the settings load")),
            clock: time::OffsetDateTime::now_utc,
        }
    }

    /// At once, through `request` (tests and tools).
    pub fn immediate(request: PathBuf) -> Reboot {
        Reboot { request, window: None, clock: time::OffsetDateTime::now_utc }
    }

    pub fn in_window(&self) -> bool {
        let Some((start, end)) = self.window else { return true };
        let now = (self.clock)();
        let m = u32::from(now.hour()) * 60 + u32::from(now.minute());
        if start < end { (start..end).contains(&m) } else { m >= start || m < end }
    }

    /// Asks for the reboot now when the window allows; says what happened.
    pub fn when_allowed(&self) -> Result<String, String> {
        if self.in_window() {
            self.now()
        } else {
            let (s, e) = self.window.unwrap_or_default();
            Ok(format!(
                "waiting for the maintenance window {:02}:{:02}-{:02}:{:02} UTC",
                s / 60,
                s % 60,
                e / 60,
                e % 60
            ))
        }
    }

    /// Asks lms-init for a reboot at once.
    pub fn now(&self) -> Result<String, String> {
        if let Some(dir) = self.request.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        crate::state::write_atomic(&self.request, lms_bundle::rfc3339((self.clock)()).as_bytes())?;
        Ok(format!("reboot requested ({})", self.request.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_wrap_midnight() {
        assert_eq!(parse_window("02:00-04:30").unwrap(), (120, 270));
        assert_eq!(parse_window("23:00-01:00").unwrap(), (1380, 60));
        for bad in ["2:00-4:00", "02:00", "25:00-01:00", "02:00-02:00", "02:60-03:00"] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
        fn midnight() -> time::OffsetDateTime {
            time::OffsetDateTime::UNIX_EPOCH
        }
        fn noon() -> time::OffsetDateTime {
            time::OffsetDateTime::UNIX_EPOCH.replace_hour(12).unwrap()
        }
        let mut r = Reboot { request: "/nonexistent/x".into(), window: Some((1380, 60)), clock: midnight };
        assert!(r.in_window());
        r.clock = noon;
        assert!(!r.in_window());
        assert!(r.when_allowed().unwrap().contains("23:00-01:00"));
    }
}
