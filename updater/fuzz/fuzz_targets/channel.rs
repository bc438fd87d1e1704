//! Arbitrary metadata and signature bytes: verification must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
    let (meta, sig) = data.split_at(data.len().saturating_sub(64));
    let _ = lms_bundle::channel::verify(meta, sig, &[key.verifying_key()], "stable");
    // A validly signed arbitrary document exercises the parser past the signature.
    let signed = lms_bundle::keys::sign(&key, data);
    let _ = lms_bundle::channel::verify(data, &signed, &[key.verifying_key()], "stable");
});
