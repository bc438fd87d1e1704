//! The compiled-code cache on the data partition, authenticated. Loading
//! cached code is `Module::deserialize`: native code run as the node, so a
//! file that anyone but this node wrote must never be loaded (issue 10,
//! case 13). Each entry carries an HMAC-SHA256, under a per-node secret
//! (`key`, 32 random bytes, mode 0600, in the cache directory), of the
//! engine's compatibility hash, the module's sha256 and the code; an entry
//! without a valid MAC is compiled again and rewritten.
//!
//! The image build precompiles the factory modules with a key of its own
//! (`lms-node precompile --cache-key FILE`, derived by lms-image from its
//! signing key so builds stay reproducible) and marks it `key.factory`. On
//! its first start a node replaces that key with a fresh random one and
//! re-authenticates the entries the factory key verifies, so no two nodes
//! share a key.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

type HmacSha256 = Hmac<Sha256>;

pub struct CodeCache {
    dir: PathBuf,
    key: [u8; 32],
}

fn read_key(path: &Path) -> std::io::Result<Option<[u8; 32]>> {
    match std::fs::read(path) {
        Ok(b) => <[u8; 32]>::try_from(b.as_slice())
            .map(Some)
            .map_err(|_| std::io::Error::other(format!("{}: not a 32-byte key", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `key` to `path` (mode 0600) through a temporary file and a rename.
fn write_key(path: &Path, key: &[u8; 32]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(key)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl CodeCache {
    /// Opens the cache in `dir`, creating it and its key when needed; with
    /// `factory_key`, that key is used and marked as the factory's (the
    /// image build). A factory key found here is replaced (see above).
    pub fn open(dir: &Path, factory_key: Option<[u8; 32]>) -> std::io::Result<CodeCache> {
        std::fs::create_dir_all(dir)?;
        let (key_path, marker) = (dir.join("key"), dir.join("key.factory"));
        if let Some(key) = factory_key {
            write_key(&key_path, &key)?;
            std::fs::write(&marker, b"")?;
            return Ok(CodeCache { dir: dir.to_path_buf(), key });
        }
        let key = match read_key(&key_path)? {
            Some(k) if marker.exists() => {
                let fresh = CodeCache { dir: dir.to_path_buf(), key: random_key()? };
                fresh.adopt(&CodeCache { dir: dir.to_path_buf(), key: k })?;
                write_key(&key_path, &fresh.key)?;
                std::fs::remove_file(&marker)?;
                tracing::info!(dir = %dir.display(), "code cache: the factory key was replaced by this node's own");
                fresh.key
            }
            Some(k) => k,
            None => {
                let k = random_key()?;
                write_key(&key_path, &k)?;
                k
            }
        };
        Ok(CodeCache { dir: dir.to_path_buf(), key })
    }

    /// The HMAC over what an entry vouches for: engine build, module hash, code.
    fn hmac(&self, engine: u64, sha256: &str, code: &[u8]) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("any key length");
        m.update(&engine.to_le_bytes());
        m.update(sha256.as_bytes());
        m.update(code);
        m
    }

    fn mac(&self, engine: u64, sha256: &str, code: &[u8]) -> String {
        hex::encode(self.hmac(engine, sha256, code).finalize().into_bytes())
    }

    fn paths(&self, engine: u64, sha256: &str) -> (PathBuf, PathBuf) {
        let file = self.dir.join(format!("{sha256}-{engine:016x}.cwasm"));
        let mac = file.with_extension("cwasm.mac");
        (file, mac)
    }

    /// The cached code for (`engine`, `sha256`), only when its MAC holds.
    pub fn get(&self, engine: u64, sha256: &str) -> Option<Vec<u8>> {
        let (file, mac) = self.paths(engine, sha256);
        let code = std::fs::read(&file).ok()?;
        let want = hex::decode(std::fs::read_to_string(&mac).ok()?.trim()).ok()?;
        // verify_slice compares in constant time.
        self.hmac(engine, sha256, &code).verify_slice(&want).ok().map(|_| code)
    }

    pub fn put(&self, engine: u64, sha256: &str, code: &[u8]) -> std::io::Result<()> {
        let (file, mac) = self.paths(engine, sha256);
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, code)?;
        std::fs::rename(&tmp, &file)?;
        std::fs::write(&mac, self.mac(engine, sha256, code))
    }

    /// Removes every entry but those of `engine` for a module in `keep`
    /// (by sha256): code of modules no set on this node uses any more, and
    /// of other engine builds. Without this, each module update would leave
    /// its compiled code on the (small) data partition for good. Returns
    /// the bytes freed.
    pub fn retain(&self, engine: u64, keep: &std::collections::HashSet<String>) -> std::io::Result<u64> {
        let mut freed = 0;
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".cwasm").or_else(|| name.strip_suffix(".cwasm.mac")) else { continue };
            let Some((sha256, built)) = stem.rsplit_once('-') else { continue };
            if keep.contains(sha256) && u64::from_str_radix(built, 16) == Ok(engine) {
                continue;
            }
            freed += e.metadata().map(|m| m.len()).unwrap_or(0);
            std::fs::remove_file(e.path())?;
        }
        Ok(freed)
    }

    /// Re-authenticates under this key every entry `old` verifies; others
    /// are left to fail (and be recompiled).
    fn adopt(&self, old: &CodeCache) -> std::io::Result<()> {
        for e in std::fs::read_dir(&self.dir)? {
            let name = e?.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".cwasm") else { continue };
            let Some((sha256, engine)) = stem.rsplit_once('-') else { continue };
            let Ok(engine) = u64::from_str_radix(engine, 16) else { continue };
            if let Some(code) = old.get(engine, sha256) {
                std::fs::write(self.paths(engine, sha256).1, self.mac(engine, sha256, &code))?;
            }
        }
        Ok(())
    }
}

fn random_key() -> std::io::Result<[u8; 32]> {
    let mut k = [0u8; 32];
    getrandom::fill(&mut k).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_verify_only_under_their_key_and_a_factory_key_is_replaced() {
        let d = tempfile::tempdir().unwrap();
        let factory = CodeCache::open(d.path(), Some([7; 32])).unwrap();
        factory.put(1, "abc", b"code").unwrap();
        assert_eq!(factory.get(1, "abc").as_deref(), Some(&b"code"[..]));
        // Tampered code, or a MAC for other code, is refused.
        std::fs::write(d.path().join("abc-0000000000000001.cwasm"), b"evil").unwrap();
        assert!(factory.get(1, "abc").is_none());
        factory.put(1, "abc", b"code").unwrap();
        // First start of the node: a new key, the factory's entry still loads.
        let node = CodeCache::open(d.path(), None).unwrap();
        assert_ne!(node.key, [7; 32]);
        assert!(!d.path().join("key.factory").exists());
        assert_eq!(node.get(1, "abc").as_deref(), Some(&b"code"[..]));
        // An entry MAC'd with the factory key (known to every node of the
        // image) no longer verifies.
        std::fs::write(d.path().join("abc-0000000000000001.cwasm.mac"), factory.mac(1, "abc", b"code")).unwrap();
        assert!(node.get(1, "abc").is_none());
        // The key stays across restarts, private to the node.
        let again = CodeCache::open(d.path(), None).unwrap();
        assert_eq!(again.key, node.key);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(d.path().join("key")).unwrap().permissions().mode() & 0o777, 0o600);
    }

    /// Only the kept modules' code of this engine stays; the key stays.
    #[test]
    fn retain_drops_code_no_set_uses() {
        let d = tempfile::tempdir().unwrap();
        let c = CodeCache::open(d.path(), None).unwrap();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        c.put(1, &a, b"code a").unwrap();
        c.put(1, &b, b"code b").unwrap();
        c.put(2, &a, b"code a, another engine").unwrap();
        let keep: std::collections::HashSet<String> = [a.clone()].into();
        let freed = c.retain(1, &keep).unwrap();
        assert!(freed >= (b"code b".len() + b"code a, another engine".len()) as u64, "{freed}");
        assert_eq!(c.get(1, &a).as_deref(), Some(&b"code a"[..]));
        assert!(c.get(1, &b).is_none() && c.get(2, &a).is_none());
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [format!("{a}-0000000000000001.cwasm"), format!("{a}-0000000000000001.cwasm.mac"), "key".into()]
        );
    }
}
