//! Arbitrary bytes as a bundle file: must never panic, hang, write outside
//! the staging directory, or leave it behind on error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("lms-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let bundle = dir.join("input.bundle");
    std::fs::write(&bundle, data).unwrap();
    let staging = dir.join("staging");
    let _ = std::fs::remove_dir_all(&staging);
    let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
    let limits = lms_bundle::Limits { max_decompressed_bytes: 16 << 20, ..Default::default() };
    if lms_bundle::verify_and_unpack(&bundle, &[key], &limits, &staging).is_err() {
        assert!(!staging.exists());
    }
});
