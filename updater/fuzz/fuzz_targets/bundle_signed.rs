//! Bundles built from the fuzzer's bytes and signed with the trusted test
//! key, so the unpacker and the manifest parser are fuzzed behind the
//! signature (random bytes never get past it: issue 10, fuzzing).
//!
//! Input framing (see `lms_bundle_fuzz::decode`): a mode byte, the manifest
//! (or, in "matching" mode, the fields a generated manifest takes), then
//! entries of (type, name, data). In matching mode the manifest lists every
//! regular payload entry with its true size and sha256, so inputs reach the
//! writes, renames and the final tree checks too.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("lms-fuzz-signed-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let bundle = dir.join("input.bundle");
    let key = ed25519_dalek::SigningKey::from_bytes(&lms_bundle_fuzz::TEST_KEY);
    std::fs::write(&bundle, lms_bundle_fuzz::encode_bundle(&lms_bundle_fuzz::decode(data), &key)).unwrap();
    let staging = dir.join("staging");
    let _ = std::fs::remove_dir_all(&staging);
    let limits = lms_bundle::Limits { max_decompressed_bytes: 16 << 20, ..Default::default() };
    match lms_bundle::verify_and_unpack(&bundle, &[key.verifying_key()], &limits, &staging) {
        Err(_) => assert!(!staging.exists(), "staging left behind on error"),
        Ok(_) => {
            // Everything written stays inside the staging directory, as regular files.
            for e in walk(&staging) {
                let m = std::fs::symlink_metadata(&e).unwrap();
                assert!(m.is_file() || m.is_dir(), "{} is neither file nor directory", e.display());
                assert!(e.starts_with(&staging));
            }
            let _ = std::fs::remove_dir_all(&staging);
        }
    }
});

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}
