//! ed25519 keys on disk: `PREFIX.key` (the 32-byte seed, hex, mode 0600) and
//! `PREFIX.pub` (the 32-byte public key, hex). A key's id is the first 8
//! bytes of the SHA-256 of its public key, for logs and manifests.

use super::BundleError;
use ed25519_dalek::{Signature, Signer};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use std::path::Path;

fn key_err(path: &Path, message: impl Into<String>) -> BundleError {
    BundleError::Key { path: path.to_path_buf(), message: message.into() }
}

fn read_hex32(path: &Path) -> Result<[u8; 32], BundleError> {
    let text = std::fs::read_to_string(path).map_err(|e| key_err(path, e.to_string()))?;
    let bytes = hex::decode(text.trim()).map_err(|e| key_err(path, format!("not hex: {e}")))?;
    bytes.try_into().map_err(|b: Vec<u8>| key_err(path, format!("{} bytes, expected 32", b.len())))
}

/// Writes a fresh key pair. Refuses to overwrite an existing key.
pub fn generate(prefix: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf), BundleError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let secret_path = prefix.with_extension("key");
    let public_path = prefix.with_extension("pub");
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| key_err(&secret_path, format!("no randomness: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret_path)
        .map_err(|e| key_err(&secret_path, e.to_string()))?;
    f.write_all(format!("{}\n", hex::encode(seed)).as_bytes()).map_err(|e| key_err(&secret_path, e.to_string()))?;
    f.sync_all().map_err(|e| key_err(&secret_path, e.to_string()))?;
    std::fs::write(&public_path, format!("{}\n", hex::encode(key.verifying_key().to_bytes())))
        .map_err(|e| key_err(&public_path, e.to_string()))?;
    Ok((secret_path, public_path))
}

pub fn load_signing(path: &Path) -> Result<SigningKey, BundleError> {
    Ok(SigningKey::from_bytes(&read_hex32(path)?))
}

pub fn load_verifying(path: &Path) -> Result<VerifyingKey, BundleError> {
    VerifyingKey::from_bytes(&read_hex32(path)?).map_err(|e| key_err(path, format!("not an ed25519 public key: {e}")))
}

pub fn key_id(key: &VerifyingKey) -> String {
    super::sha256_hex(&key.to_bytes())[..16].to_string()
}

pub fn sign(key: &SigningKey, message: &[u8]) -> [u8; 64] {
    key.sign(message).to_bytes()
}

/// True when `sig` (64 raw bytes) is a signature over `message` by any of `trusted`.
pub fn verify_any(trusted: &[VerifyingKey], message: &[u8], sig: &[u8]) -> bool {
    let Ok(sig) = <[u8; 64]>::try_from(sig) else { return false };
    let sig = Signature::from_bytes(&sig);
    trusted.iter().any(|k| k.verify_strict(message, &sig).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_sign_verify() {
        let dir = tempfile::tempdir().unwrap();
        let (sk, pk) = generate(&dir.path().join("release")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777, 0o600);
        let key = load_signing(&sk).unwrap();
        let public = load_verifying(&pk).unwrap();
        let sig = sign(&key, b"hello");
        assert!(verify_any(&[public], b"hello", &sig));
        assert!(!verify_any(&[public], b"hellO", &sig));
        assert!(!verify_any(&[public], b"hello", &sig[..63]));
        assert!(generate(&dir.path().join("release")).is_err(), "must not overwrite a key");
    }
}
