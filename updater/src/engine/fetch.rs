//! Bytes in: downloads that resume, hash and back off, and the room they
//! need. Used by every payload kind (a module bundle, content blobs, a
//! system image streamed into its slot).

use super::{Transport, UpdateError, Updater, disk, sha256_file};

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
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&part).map_err(disk)?;
        let mut have = file.metadata().map_err(disk)?.len();
        if have > size {
            file.set_len(0).map_err(disk)?;
            have = 0;
        }
        let mut sink = FileSink { file, len: have };
        self.pull(&*self.transport, rel, size, &mut sink, &mut |_| Ok(()))?;
        sink.file.sync_all().map_err(disk)?;
        let got = sha256_file(&part)?;
        if got != sha256 {
            let _ = std::fs::remove_file(&part);
            return Err(UpdateError::Refused(format!("{}: sha256 {got}, the signed metadata says {}", rel, sha256)));
        }
        std::fs::rename(&part, done).map_err(disk)?;
        Ok(())
    }

    /// Brings bytes `sink.received()..size` of `rel` (from the repository or
    /// a local directory) into `sink` (a partial
    /// file, or a partition that takes only verified blocks), resuming after
    /// each interruption; between attempts it backs off (doubling, with
    /// jitter, at most 10 s; 6 attempts), so a fleet does not hammer a
    /// failing server in step. `progress(sink)` runs after every attempt
    /// that moved bytes (a checkpoint). A sink that refuses bytes (they do
    /// not verify) ends it at once: nothing a retry would mend.
    pub(crate) fn pull<S: Sink>(
        &self,
        from: &dyn Transport,
        rel: &str,
        size: u64,
        sink: &mut S,
        progress: &mut dyn FnMut(&mut S) -> Result<(), UpdateError>,
    ) -> Result<(), UpdateError> {
        let mut have = sink.received();
        let mut delay = Duration::from_millis(200);
        let mut last_err = String::new();
        for _attempt in 0..6 {
            if have == size {
                break;
            }
            let got = from.download(rel, sink, have, size);
            if let Some(refused) = sink.refused() {
                return Err(UpdateError::Refused(format!("{rel}: {refused}")));
            }
            match got {
                Ok(_) => {
                    have = sink.received();
                    progress(sink)?;
                    continue;
                }
                Err(e) if e == "restart" => {
                    // The server sent the whole file again (it ignores
                    // Range): start over, this once from byte 0.
                    tracing::warn!(rel, have, "the repository ignores byte ranges; downloading from the start");
                    sink.restart().map_err(disk)?;
                    have = 0;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, have, "download interrupted; resuming");
                    last_err = e;
                    if sink.received() > have {
                        have = sink.received();
                        progress(sink)?;
                    }
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

/// Where a download's bytes go. The transport writes into it; `received`
/// is where the next attempt starts.
pub(crate) trait Sink: std::io::Write {
    /// Bytes of the file taken so far (from byte 0).
    fn received(&self) -> u64;
    /// The server sends the whole file again: back to byte 0.
    fn restart(&mut self) -> std::io::Result<()>;
    /// Why the sink stopped taking bytes, when they did not verify (a
    /// write error that no retry mends).
    fn refused(&self) -> Option<String> {
        None
    }
}

/// A partial download file, opened for appending.
struct FileSink {
    file: std::fs::File,
    len: u64,
}

impl std::io::Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Sink for FileSink {
    fn received(&self) -> u64 {
        self.len
    }
    fn restart(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.len = 0;
        Ok(())
    }
}
