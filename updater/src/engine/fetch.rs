//! Bytes in: downloads that resume, hash and back off, and the room they
//! need. Used by every payload kind (a module bundle, content blobs, a
//! system image streamed into its slot).

use super::{UpdateError, Updater, disk, sha256_file};
use std::path::Path;
use std::time::Duration;

/// Up to half of `d`, from the clock's nanoseconds (good enough to spread a fleet).
fn jitter(d: Duration) -> Duration {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    d.mul_f64(f64::from(n % 1000) / 2000.0)
}

fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out-pointer.
    (unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

impl Updater {
    /// Refuses to start when `dir`'s file system has less than `need` bytes
    /// free (`what` says what they are for).
    pub(crate) fn need_space(&self, need: u64, what: &str) -> Result<(), UpdateError> {
        if let Some(free) = free_bytes(&self.layout.root)
            && free < need
        {
            return Err(UpdateError::Disk(format!(
                "{} has {free} bytes free; {what} needs about {need}",
                self.layout.root.display()
            )));
        }
        Ok(())
    }

    /// Downloads `rel` (`size` bytes, `sha256`) from the repository into
    /// `done`, resuming a partial download (`done` + `.part`) and backing
    /// off between attempts; the bytes must hash to `sha256`.
    pub(crate) fn download_to(&self, rel: &str, size: u64, sha256: &str, done: &Path) -> Result<(), UpdateError> {
        if done.exists() && sha256_file(done)? == sha256 {
            return Ok(());
        }
        let part = done.with_extension("part");
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&part).map_err(disk)?;
        let mut have = file.metadata().map_err(disk)?.len();
        if have > size {
            file.set_len(0).map_err(disk)?;
            have = 0;
        }
        self.pull(rel, size, &mut file, have, &mut |_| Ok(()))?;
        file.sync_all().map_err(disk)?;
        let got = sha256_file(&part)?;
        if got != sha256 {
            let _ = std::fs::remove_file(&part);
            return Err(UpdateError::Refused(format!("{}: sha256 {got}, the signed metadata says {}", rel, sha256)));
        }
        std::fs::rename(&part, done).map_err(disk)?;
        Ok(())
    }

    /// Brings bytes `have..size` of `rel` into `file` at its position (a
    /// partial file opened for appending, or a partition seeked to `have`),
    /// resuming after each interruption; between attempts it backs off
    /// (doubling, with jitter, at most 10 s; 6 attempts), so a fleet does not
    /// hammer a failing server in step. `progress(len)` runs after every
    /// attempt that moved bytes (a checkpoint).
    pub(crate) fn pull(
        &self,
        rel: &str,
        size: u64,
        file: &mut std::fs::File,
        mut have: u64,
        progress: &mut dyn FnMut(u64) -> Result<(), UpdateError>,
    ) -> Result<(), UpdateError> {
        use std::io::Seek;
        let mut delay = Duration::from_millis(200);
        let mut last_err = String::new();
        for _attempt in 0..6 {
            if have == size {
                break;
            }
            match self.transport.download(rel, file, have, size) {
                Ok(len) => {
                    have = len;
                    progress(have)?;
                    continue;
                }
                Err(e) if e == "restart" => {
                    // The server sent the whole file again: start over.
                    have = 0;
                    if file.metadata().map_err(disk)?.is_file() {
                        file.set_len(0).map_err(disk)?;
                    }
                    file.seek(std::io::SeekFrom::Start(0)).map_err(disk)?;
                }
                Err(e) => {
                    tracing::warn!(error = %e, have, "download interrupted; resuming");
                    last_err = e;
                    have = file.stream_position().map_err(disk)?.max(have);
                }
            }
            std::thread::sleep(delay + jitter(delay));
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        if have != size {
            return Err(UpdateError::Fetch(format!(
                "{rel}: got {have} of {size} bytes ({last_err}); what arrived is kept for the next attempt"
            )));
        }
        Ok(())
    }
}
