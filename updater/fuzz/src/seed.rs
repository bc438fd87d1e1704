//! `seed OUT_DIR MODULE_DIR...`: corpus seeds for every target from real
//! bundles of real module directories, signed with the test key:
//! OUT_DIR/bundle/ gets the bundle files as they are, OUT_DIR/bundle_signed/
//! their encoding in the signed target's framing, OUT_DIR/channel/ the
//! channel document publishing the first one.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((out, dirs)) = args.split_first().filter(|(_, d)| !d.is_empty()) else {
        eprintln!("usage: seed OUT_DIR MODULE_DIR...");
        std::process::exit(2);
    };
    let out = std::path::Path::new(out);
    for t in ["bundle", "bundle_signed", "channel", "bundles"] {
        std::fs::create_dir_all(out.join(t)).unwrap();
    }
    let key = ed25519_dalek::SigningKey::from_bytes(&lms_bundle_fuzz::TEST_KEY);
    let mut bundles = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let d = std::path::Path::new(d);
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("manifest.json")).unwrap()).unwrap();
        let b = out.join("bundles").join(format!("{i}.bundle"));
        lms_bundle::create(d, m["bundle_version"].as_str().unwrap(), &key, &b)
            .unwrap_or_else(|e| panic!("bundling {}: {e}", d.display()));
        bundles.push(b);
    }
    for (i, b) in bundles.iter().enumerate() {
        std::fs::copy(b, out.join("bundle").join(format!("real-{i}.bundle"))).unwrap();
        let seed = lms_bundle_fuzz::seed_from_bundle(b).unwrap_or_else(|e| panic!("{}: {e}", b.display()));
        std::fs::write(out.join("bundle_signed").join(format!("real-{i}")), seed).unwrap();
    }
    // A real channel document: the first bundle published with the test key.
    let repo = out.join("repo");
    let _ = std::fs::remove_dir_all(&repo);
    let first = &bundles[0];
    lms_bundle::channel::publish(&repo, first, "stable", &key, std::time::Duration::from_secs(86400 * 30), 100)
        .unwrap_or_else(|e| panic!("publishing {}: {e}", first.display()));
    let mut doc = std::fs::read(repo.join(lms_bundle::channel::meta_path("stable"))).unwrap();
    doc.extend(std::fs::read(repo.join(lms_bundle::channel::sig_path("stable"))).unwrap());
    std::fs::write(out.join("channel").join("real-0"), doc).unwrap();
    let _ = std::fs::remove_dir_all(&repo);
    println!("seeded {} bundle(s) into {}", bundles.len(), out.display());
}
