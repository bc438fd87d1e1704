//! A package's zip, checked before a byte of it is unpacked: every entry a
//! safe relative path to a regular file (no links, no `..`, no absolute or
//! Windows paths, no name twice), not encrypted, within the [`Limits`]
//! by what it declares; then, while unpacking, by what actually comes out
//! (a lying header stops at its declared size, the CRC is checked at the end).

use crate::{ImportError, Limits};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

/// A file unpacked from a package: its path in the package, size, sha256.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

pub struct Archive {
    name: String,
    zip: zip::ZipArchive<std::fs::File>,
    /// Regular files by path, with their index and declared size.
    files: BTreeMap<String, (usize, u64)>,
    limits: Limits,
}

/// A path inside a package that is safe to create under a directory (the
/// same rule content bundles apply on the node).
pub use lms_bundle::content::safe_content_path as safe_path;

impl Archive {
    /// Opens the zip at `path` (`name`: how errors call the package) and
    /// checks its directory: names, types, declared sizes, ratios.
    pub fn open(path: &Path, name: &str, limits: &Limits) -> Result<Archive, ImportError> {
        let err = |m: String| ImportError::package(name, m);
        let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        let size = file.metadata().map_err(|e| err(e.to_string()))?.len();
        if size > limits.max_package_bytes {
            return Err(err(format!("{size} bytes, over the {}-byte limit for a package", limits.max_package_bytes)));
        }
        let mut zip = zip::ZipArchive::new(file).map_err(|e| err(format!("not a readable zip: {e}")))?;
        // The zip crate indexes entries by name, so a second entry of one
        // name would silently hide the first: which one a browser gets would
        // depend on the reader. Refuse it.
        if zip.has_duplicate_names() {
            return Err(err("a file name appears twice in the zip".into()));
        }
        if zip.len() > limits.max_entries {
            return Err(err(format!("{} entries, over the limit of {}", zip.len(), limits.max_entries)));
        }
        let mut files = BTreeMap::new();
        let mut total: u64 = 0;
        for i in 0..zip.len() {
            let entry = zip.by_index_raw(i).map_err(|e| err(format!("zip entry {i}: {e}")))?;
            let entry_name =
                entry.name().map_err(|e| err(format!("zip entry {i}: its name is not text: {e}")))?.into_owned();
            let refuse = |m: &str| {
                Err(ImportError { value: Some(entry_name.clone()), ..ImportError::file(name, &entry_name, m) })
            };
            if entry.encrypted() {
                return refuse("an encrypted entry; packages are served as they are, so they cannot be encrypted");
            }
            if entry.is_symlink() {
                return refuse("a symbolic link; a package holds only files and directories");
            }
            if entry.is_dir() {
                if !safe_path(entry_name.trim_end_matches('/')) {
                    return refuse("an unsafe path (absolute, '..', a backslash or colon, or a control character)");
                }
                continue;
            }
            if !safe_path(&entry_name) {
                return refuse("an unsafe path (absolute, '..', a backslash or colon, or a control character)");
            }
            let (declared, packed) = (entry.size(), entry.compressed_size());
            if declared > limits.max_file_bytes {
                return refuse(&format!(
                    "declares {declared} bytes, over the {}-byte limit for one file",
                    limits.max_file_bytes
                ));
            }
            if declared > (1 << 20) && declared / packed.max(1) > limits.max_ratio {
                return refuse(&format!(
                    "{declared} bytes packed into {packed}: over {}:1, a zip bomb, not content",
                    limits.max_ratio
                ));
            }
            total = total.saturating_add(declared);
            if total > limits.max_total_bytes {
                return Err(err(format!("unpacks to more than the {}-byte limit", limits.max_total_bytes)));
            }
            if files.insert(entry_name.clone(), (i, declared)).is_some() {
                return refuse("appears twice in the zip");
            }
        }
        // A name used both as a file and as a directory cannot be unpacked.
        for path in files.keys() {
            let mut at = 0;
            while let Some(slash) = path[at..].find('/') {
                let dir = &path[..at + slash];
                if files.contains_key(dir) {
                    return Err(ImportError {
                        value: Some(dir.to_string()),
                        ..ImportError::file(name, path, "its directory is also a file in the zip")
                    });
                }
                at += slash + 1;
            }
        }
        Ok(Archive { name: name.to_string(), zip, files, limits: limits.clone() })
    }

    pub fn has(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// The regular files' paths, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The whole of a small file (a course structure), at most `max` bytes.
    pub fn read_small(&mut self, path: &str, max: u64) -> Result<Vec<u8>, ImportError> {
        let (index, declared) = self.files[path];
        if declared > max {
            return Err(ImportError::file(&self.name, path, format!("{declared} bytes, over the {max}-byte limit")));
        }
        let mut out = Vec::new();
        self.copy(path, index, declared, &mut out)?;
        Ok(out)
    }

    /// Unpacks every file under `dest` (which must exist and be empty), each
    /// hashed as it is written. The caller syncs the tree once afterwards.
    pub fn unpack(&mut self, dest: &Path) -> Result<Vec<FileEntry>, ImportError> {
        let files: Vec<(String, (usize, u64))> = self.files.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let mut out = Vec::with_capacity(files.len());
        for (path, (index, declared)) in files {
            let target = dest.join(&path);
            let name = self.name.clone();
            let io = |e: std::io::Error| ImportError::file(&name, &path, format!("{}: {e}", target.display()));
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            let mut hashing = HashingWriter::create(&target).map_err(io)?;
            self.copy(&path, index, declared, &mut hashing)?;
            let (size, sha256) = hashing.finish().map_err(io)?;
            out.push(FileEntry { path, size, sha256 });
        }
        Ok(out)
    }

    /// Copies one entry, refusing more bytes than it declared (or than a
    /// file may have) and a CRC that does not match.
    fn copy(&mut self, path: &str, index: usize, declared: u64, out: &mut dyn Write) -> Result<u64, ImportError> {
        let name = self.name.clone();
        let err = |m: String| ImportError::file(&name, path, m);
        let entry = self.zip.by_index(index).map_err(|e| err(format!("cannot read: {e}")))?;
        let cap = declared.min(self.limits.max_file_bytes);
        let mut limited = entry.take(cap + 1);
        let n = std::io::copy(&mut limited, out).map_err(|e| err(format!("cannot unpack: {e}")))?;
        if n > cap {
            return Err(err(format!("unpacks to more than the {declared} bytes it declares")));
        }
        if n != declared {
            return Err(err(format!("unpacks to {n} bytes, it declares {declared}")));
        }
        Ok(n)
    }
}

/// A new file that hashes and counts what is written to it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl HashingWriter<std::io::BufWriter<std::fs::File>> {
    /// Creates `target`, which must not exist yet.
    pub(crate) fn create(target: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(target)?;
        Ok(HashingWriter { inner: std::io::BufWriter::new(file), hash: Sha256::new(), size: 0 })
    }

    /// Flushes; the size and sha256 hex of what was written.
    pub(crate) fn finish(mut self) -> std::io::Result<(u64, String)> {
        self.inner.flush()?;
        Ok((self.size, hex::encode(self.hash.finalize())))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_stay_inside() {
        for ok in ["index.html", "story_content/user.js", "media/My Video (1).mp4", "课程/第一课.html"] {
            assert!(safe_path(ok), "{ok}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../../b", "a//b", "./a", "a\\..\\b", "C:/x", "a/\u{0}b", "a/."] {
            assert!(!safe_path(bad), "{bad}");
        }
    }
}
