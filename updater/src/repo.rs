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

/// `net`, behind a USB stick's repository at `stick` when one is configured.
pub fn with_stick(net: Box<dyn Transport>, stick: Option<&Path>) -> Box<dyn Transport> {
    match stick {
        Some(dir) => Box::new(StickFirst { stick: DirRepo(dir.to_path_buf()), net }),
        None => net,
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

/// A USB stick's repository in front of the configured one: a file the
/// stick holds (it is mounted and has it) comes from the stick, any other
/// from `net`. Nothing is trusted for where it came from: channel
/// metadata and manifests are signed, blobs hashed, as from the network.
pub struct StickFirst {
    pub stick: DirRepo,
    pub net: Box<dyn Transport>,
}

impl StickFirst {
    fn pick(&self, rel: &str) -> &dyn Transport {
        match self.stick.path(rel) {
            Ok(p) if p.is_file() => {
                tracing::debug!(file = %p.display(), "from the USB stick");
                &self.stick
            }
            _ => &*self.net,
        }
    }
}

impl Transport for StickFirst {
    fn fetch(&self, rel: &str, cap: u64) -> Result<Vec<u8>, String> {
        self.pick(rel).fetch(rel, cap)
    }
    fn download(&self, rel: &str, out: &mut dyn std::io::Write, have: u64, total: u64) -> Result<u64, String> {
        self.pick(rel).download(rel, out, have, total)
    }
    fn describe(&self) -> String {
        format!("{} (a USB stick, when it holds the file), else {}", self.stick.describe(), self.net.describe())
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

    /// A file the stick holds comes from it; any other, and every file
    /// once the stick is gone, from the network.
    #[test]
    fn a_stick_goes_before_the_network_file_by_file() {
        let d = tempfile::tempdir().unwrap();
        let (stick, net) = (d.path().join("stick"), d.path().join("net"));
        for (dir, files) in [(&stick, &["channels/stable.json"][..]), (&net, &["channels/stable.json", "blobs/x"])] {
            for f in files {
                std::fs::create_dir_all(dir.join(f).parent().unwrap()).unwrap();
                std::fs::write(dir.join(f), format!("{} of {}", f, dir.display())).unwrap();
            }
        }
        let t = with_stick(Box::new(DirRepo(net.clone())), Some(&stick));
        let got = |rel: &str| String::from_utf8(t.fetch(rel, 1000).unwrap()).unwrap();
        assert!(got("channels/stable.json").ends_with("stick"));
        assert!(got("blobs/x").ends_with("net"));
        let mut out = Vec::new();
        t.download("channels/stable.json", &mut out, 0, 1000).unwrap();
        assert!(String::from_utf8(out).unwrap().ends_with("stick"));
        std::fs::remove_dir_all(&stick).unwrap(); // unplugged
        assert!(got("channels/stable.json").ends_with("net"));
        assert!(t.describe().contains("USB stick"));
    }
}
