//! Where bundles come from: an HTTP repository or a local directory (a USB
//! stick). Both behave the same: small files are read whole under a cap,
//! bundles are downloaded into a cache file named by their sha256, resuming
//! a partial download.

use crate::http::Http;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub trait Transport: Send {
    /// Reads `rel` whole; errors past `cap` bytes.
    fn fetch(&self, rel: &str, cap: u64) -> Result<Vec<u8>, String>;
    /// Appends bytes of `rel` from `have` to `file`; returns the new length.
    fn download(&self, rel: &str, out: &mut dyn std::io::Write, have: u64, total: u64) -> Result<u64, String>;
    fn describe(&self) -> String;
}

/// What a `repository` setting names.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    Url(String),
    Dir(PathBuf),
}

/// `http://` and `https://` URLs, `file:///abs` and absolute paths; anything
/// else (another scheme, a relative path) is refused when settings load.
pub fn parse_source(repository: &str) -> Result<Source, String> {
    if repository.starts_with("http://") || repository.starts_with("https://") {
        return Ok(Source::Url(repository.trim_end_matches('/').to_string()));
    }
    let path = repository.strip_prefix("file://").unwrap_or(repository);
    if path.starts_with('/') {
        return Ok(Source::Dir(PathBuf::from(path)));
    }
    Err(format!("{repository:?}: expected an http:// or https:// URL, or an absolute directory path (a USB stick)"))
}

pub fn open(source: Source, timeout: Duration, tls: std::sync::Arc<rustls::ClientConfig>) -> Box<dyn Transport> {
    match source {
        Source::Url(base) => Box::new(HttpRepo { base, http: Http::with_trust(timeout, tls) }),
        Source::Dir(d) => Box::new(DirRepo(d)),
    }
}

pub struct HttpRepo {
    base: String,
    http: Http,
}

impl Transport for HttpRepo {
    fn fetch(&self, rel: &str, cap: u64) -> Result<Vec<u8>, String> {
        let url = format!("{}/{rel}", self.base);
        let a = self.http.call("GET", &url, cap)?;
        if a.status != 200 {
            return Err(format!("{url}: HTTP {}", a.status));
        }
        Ok(a.body)
    }
    fn download(&self, rel: &str, out: &mut dyn std::io::Write, have: u64, total: u64) -> Result<u64, String> {
        self.http.download_into(&format!("{}/{rel}", self.base), out, have, total)
    }
    fn describe(&self) -> String {
        self.base.clone()
    }
}

pub struct DirRepo(pub PathBuf);

impl DirRepo {
    fn path(&self, rel: &str) -> Result<PathBuf, String> {
        if !lms_bundle::safe_relative_path(rel) {
            return Err(format!("{rel:?} is not a safe path inside the repository"));
        }
        Ok(self.0.join(rel))
    }
}

impl Transport for DirRepo {
    fn fetch(&self, rel: &str, cap: u64) -> Result<Vec<u8>, String> {
        let p = self.path(rel)?;
        let f = std::fs::File::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let mut out = Vec::new();
        f.take(cap + 1).read_to_end(&mut out).map_err(|e| format!("{}: {e}", p.display()))?;
        if out.len() as u64 > cap {
            return Err(format!("{}: larger than {cap} bytes", p.display()));
        }
        Ok(out)
    }
    fn download(&self, rel: &str, out: &mut dyn std::io::Write, have: u64, total: u64) -> Result<u64, String> {
        let p = self.path(rel)?;
        let mut src = std::fs::File::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        src.seek(SeekFrom::Start(have)).map_err(|e| format!("{}: {e}", p.display()))?;
        let copied =
            std::io::copy(&mut src.take(total - have + 1), out).map_err(|e| format!("{}: {e}", p.display()))?;
        let len = have + copied;
        if len > total {
            return Err(format!("{}: more than the {total} bytes the metadata promised", p.display()));
        }
        Ok(len)
    }
    fn describe(&self) -> String {
        self.0.display().to_string()
    }
}

/// The bytes of a bundle named by `src`: a URL is downloaded into `cache`,
/// a path is used as it is.
pub fn local_or_download(src: &str, cache: &Path, timeout: Duration) -> Result<PathBuf, String> {
    if !(src.starts_with("http://") || src.starts_with("https://")) {
        return Ok(PathBuf::from(src));
    }
    std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let dest = cache.join("install-src.bundle");
    let a = Http::new(timeout).call("GET", src, 512 << 20)?;
    if a.status != 200 {
        return Err(format!("{src}: HTTP {}", a.status));
    }
    std::fs::write(&dest, &a.body).map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10, case 2: any value but http:// was taken as a relative
    /// directory, so `https://` settings failed every check with "No such file".
    #[test]
    fn repository_settings_are_urls_or_absolute_paths() {
        assert_eq!(
            parse_source("https://u.example.org/lms/").unwrap(),
            Source::Url("https://u.example.org/lms".into())
        );
        assert_eq!(parse_source("http://10.0.2.2:8000").unwrap(), Source::Url("http://10.0.2.2:8000".into()));
        assert_eq!(parse_source("/media/usb/lms").unwrap(), Source::Dir("/media/usb/lms".into()));
        assert_eq!(parse_source("file:///media/usb").unwrap(), Source::Dir("/media/usb".into()));
        for bad in ["ftp://x/y", "htps://typo", "relative/dir", "s3://bucket"] {
            assert!(parse_source(bad).is_err(), "{bad}");
        }
    }
}
