//! Resolving a definition's inputs into a local cache named by sha256, before
//! anything of an image is written: Debian packages with `apt-get download`,
//! artifacts from a local path or their upstream URL (curl). A required input
//! that cannot be had stops the build with the key, file or URL named; an
//! optional one is recorded as absent with the reason. Nothing ever stands in
//! for a missing binary.

use crate::definition::{Definition, Source};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{file}: {key} ({what}): {message}")]
pub struct InputError {
    pub file: PathBuf,
    pub key: String,
    pub what: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub kind: &'static str,
    pub name: String,
    pub version: String,
    /// Where it came from (or would have): `debian`, a URL, a local path.
    pub source: String,
    pub sha256: String,
    /// Why the image carries it, from the definition.
    pub purpose: Option<String>,
    /// The verified file in the cache; `None` when absent.
    pub path: Option<PathBuf>,
    /// A Debian package the initramfs takes programs and libraries from.
    pub initramfs: bool,
    pub absent: Option<String>,
}

/// How inputs are fetched; tests substitute their own.
pub trait Fetch {
    /// Downloads `name=version` into `dir`; returns the .deb path.
    fn apt(&self, name: &str, version: &str, dir: &Path) -> Result<PathBuf, String>;
    /// Downloads `url` to `dest`.
    fn url(&self, url: &str, dest: &Path) -> Result<(), String>;
}

/// apt-get and curl, as on any Debian build machine.
pub struct System;

impl Fetch for System {
    fn apt(&self, name: &str, version: &str, dir: &Path) -> Result<PathBuf, String> {
        let out = std::process::Command::new("apt-get")
            .args(["download", "-q", &format!("{name}={version}")])
            .current_dir(dir)
            .output()
            .map_err(|e| format!("running apt-get: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "apt-get download {name}={version} failed: {} (is the pin still on the mirror? run apt-get update)",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        std::fs::read_dir(dir)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or_else(|| format!("apt-get download {name}={version} produced no .deb"))
    }

    fn url(&self, url: &str, dest: &Path) -> Result<(), String> {
        let out = std::process::Command::new("curl")
            .args(["--fail", "--silent", "--show-error", "--location", "--max-time", "300", "--output"])
            .arg(dest)
            .arg(url)
            .output()
            .map_err(|e| format!("running curl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("unreachable: {}", String::from_utf8_lossy(&out.stderr).trim()))
        }
    }
}

use lms_bundle::sha256_file;

/// Puts `file` into the cache under its pinned hash after checking it.
fn admit(file: &Path, want: &str, cache: &Path) -> Result<PathBuf, String> {
    let got = sha256_file(file)?;
    if got != want {
        return Err(format!("{}: sha256 is {got}, pinned {want}", file.display()));
    }
    let dest = cache.join(want);
    if file != dest {
        std::fs::copy(file, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    }
    Ok(dest)
}

pub fn resolve(
    def: &Definition,
    def_file: &Path,
    cache: &Path,
    fetch: &dyn Fetch,
) -> Result<Vec<Resolved>, InputError> {
    let base = def_file.parent().unwrap_or(Path::new("."));
    let err =
        |key: String, what: String, message: String| InputError { file: def_file.to_path_buf(), key, what, message };
    std::fs::create_dir_all(cache).map_err(|e| err("cache".into(), cache.display().to_string(), e.to_string()))?;
    let cached = |sha: &str| -> Option<PathBuf> {
        let p = cache.join(sha);
        (sha256_file(&p).ok().as_deref() == Some(sha)).then_some(p)
    };
    let mut out = Vec::new();
    for (i, d) in def.debian.iter().enumerate() {
        let what = format!("{} {}", d.name, d.version);
        let path = match cached(&d.sha256) {
            Some(p) => p,
            None => {
                let tmp = tempfile::tempdir_in(cache)
                    .map_err(|e| err(format!("debian[{i}]"), what.clone(), e.to_string()))?;
                let deb = fetch
                    .apt(&d.name, &d.version, tmp.path())
                    .map_err(|m| err(format!("debian[{i}]"), what.clone(), m))?;
                admit(&deb, &d.sha256, cache).map_err(|m| err(format!("debian[{i}].sha256"), what.clone(), m))?
            }
        };
        out.push(Resolved {
            kind: "debian",
            name: d.name.clone(),
            version: d.version.clone(),
            source: "debian".into(),
            sha256: d.sha256.clone(),
            purpose: d.purpose.clone(),
            path: Some(path),
            initramfs: d.initramfs,
            absent: None,
        });
    }
    let arch = def.arch.as_str();
    for (i, a) in def.artifact.iter().enumerate() {
        let what = format!("{} {}", a.name, a.version);
        let key = format!("artifact[{i}].{arch}");
        let Some(src) = a.source(def.arch) else {
            out.push(absent(a, "-", "", format!("no source for {arch} in the definition")));
            continue;
        };
        match fetch_artifact(src, base, cache, fetch, &cached) {
            Ok((path, source)) => out.push(Resolved {
                kind: "artifact",
                name: a.name.clone(),
                version: a.version.clone(),
                source,
                sha256: src.sha256.clone(),
                purpose: None,
                path: Some(path),
                initramfs: false,
                absent: None,
            }),
            Err((sub, message)) if !a.optional || sub.ends_with("sha256") => {
                return Err(err(format!("{key}{sub}"), what, message));
            }
            Err((_, message)) => {
                let source =
                    src.url.clone().or_else(|| src.path.as_ref().map(|p| p.display().to_string())).unwrap_or_default();
                out.push(absent(a, &source, &src.sha256, message));
            }
        }
    }
    Ok(out)
}

fn absent(a: &crate::definition::ArtifactInput, source: &str, sha: &str, reason: String) -> Resolved {
    Resolved {
        kind: "artifact",
        name: a.name.clone(),
        version: a.version.clone(),
        source: source.to_string(),
        sha256: sha.to_string(),
        purpose: None,
        path: None,
        initramfs: false,
        absent: Some(reason),
    }
}

/// A local path first (when given and present), then the URL. A file that
/// is there but has the wrong hash is an error even for optional inputs:
/// it means the definition or the file is wrong, not that it is missing.
fn fetch_artifact(
    src: &Source,
    base: &Path,
    cache: &Path,
    fetch: &dyn Fetch,
    cached: &dyn Fn(&str) -> Option<PathBuf>,
) -> Result<(PathBuf, String), (String, String)> {
    if let Some(p) = cached(&src.sha256) {
        return Ok((p, "cache".into()));
    }
    let mut why = Vec::new();
    if let Some(rel) = &src.path {
        let p = base.join(rel);
        if p.exists() {
            let path = admit(&p, &src.sha256, cache).map_err(|m| (".sha256".to_string(), m))?;
            return Ok((path, p.display().to_string()));
        }
        why.push(format!("{}: no such file", p.display()));
    }
    if let Some(url) = &src.url {
        let part = cache.join(format!("{}.download", src.sha256));
        match fetch.url(url, &part) {
            Ok(()) => {
                let r = admit(&part, &src.sha256, cache).map_err(|m| (".sha256".to_string(), format!("{url}: {m}")));
                let _ = std::fs::remove_file(&part);
                return r.map(|p| (p, url.clone()));
            }
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                why.push(format!("{url}: {e}"));
            }
        }
    }
    Err((if src.path.is_some() && src.url.is_none() { ".path".into() } else { ".url".into() }, why.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    struct FakeApt(Vec<u8>);
    impl Fetch for FakeApt {
        fn apt(&self, name: &str, _: &str, dir: &Path) -> Result<PathBuf, String> {
            let p = dir.join(format!("{name}.deb"));
            std::fs::write(&p, &self.0).map_err(|e| e.to_string())?;
            Ok(p)
        }
        fn url(&self, url: &str, _: &Path) -> Result<(), String> {
            Err(format!("{url}: offline"))
        }
    }

    fn def(dir: &Path, body: &str) -> (Definition, PathBuf) {
        let f = dir.join("appliance.toml");
        std::fs::write(&f, format!("format = 1\nname = \"t\"\narch = \"amd64\"\n{body}")).unwrap();
        (Definition::load(&f).unwrap(), f)
    }

    #[test]
    fn debian_packages_are_checked_and_cached_by_hash() {
        let d = tempfile::tempdir().unwrap();
        let deb = b"a debian package".to_vec();
        let sha = hex::encode(Sha256::digest(&deb));
        let (def1, f) =
            def(d.path(), &format!("[[debian]]\nname = \"busybox-static\"\nversion = \"1\"\nsha256 = \"{sha}\"\n"));
        let cache = d.path().join("cache");
        let r = resolve(&def1, &f, &cache, &FakeApt(deb.clone())).unwrap();
        assert_eq!(r[0].path.as_deref(), Some(cache.join(&sha).as_path()));
        // Cached: the fetcher is not asked again (this one would give other bytes).
        resolve(&def1, &f, &cache, &FakeApt(b"other".to_vec())).unwrap();
        let (def2, f2) = def(
            d.path(),
            "[[debian]]\nname = \"busybox-static\"\nversion = \"1\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n",
        );
        let e = resolve(&def2, &f2, &cache, &FakeApt(deb)).unwrap_err().to_string();
        assert!(e.contains("debian[0].sha256") && e.contains("busybox-static"), "{e}");
    }
}
