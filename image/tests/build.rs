//! `lms-image build` refuses bad input before it writes anything, and a
//! failed build leaves the previous image in the output directory untouched:
//! a manifest that breaks a Gatekeeper constraint (named with the rule), an
//! unknown key, a missing table or file. The full build and its boot are
//! tested in qemu-tests/.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel).canonicalize().unwrap().display().to_string()
}

/// A definition with no Debian packages (so nothing is fetched) and the
/// repository's appliance files; `extra_lms` and `disk` replace parts.
fn definition(dir: &Path, disk: &str, extra_lms: &str) -> PathBuf {
    let f = dir.join("appliance.toml");
    let text = format!(
        "format = 1\nname = \"t\"\narch = \"amd64\"\n{disk}\n[lms]\nsettings = \"{}\"\nk3s_config = \"{}\"\npolicies = \"{}\"\n{extra_lms}\n",
        repo("appliance/factory/lms-dev.toml"),
        repo("appliance/k3s/config.yaml"),
        repo("appliance/k3s/policy"),
    );
    std::fs::write(&f, text).unwrap();
    f
}

const DISK: &str = "[disk]\nesp_mib = 24\nsystem_mib = 12\ndata_mib = 24\ncmdline = \"console=ttyS0\"";

/// Runs a build into `dir/out`, which already holds a previous image; returns stderr.
fn failing_build(dir: &Path, spec: &Path) -> String {
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("disk.img"), b"the previous image").unwrap();
    let key = dir.join("k");
    Command::new(env!("CARGO_BIN_EXE_lms-image")).arg("keygen").arg("--out").arg(&key).output().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_lms-image"))
        .arg("build")
        .arg(spec)
        .arg("--out")
        .arg(&out)
        .arg("--key")
        .arg(key.with_extension("key"))
        .arg("--cache")
        .arg(dir.join("cache"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(out.join("disk.img")).unwrap(), b"the previous image", "the previous image was touched");
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".lms-image-build"))
        .collect();
    assert!(leftovers.is_empty(), "a failed build left its work directory behind");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_manifest_that_breaks_a_constraint_fails_the_build_naming_both() {
    let d = tempfile::tempdir().unwrap();
    let manifests = d.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("quiz-worker.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: quiz-worker\nspec:\n  template:\n    spec:\n      runtimeClassName: wasmedge\n      containers:\n        - name: quiz\n          image: lms/quiz:1\n",
    )
    .unwrap();
    let spec = definition(d.path(), DISK, &format!("manifests = \"{}\"", manifests.display()));
    let err = failing_build(d.path(), &spec);
    assert!(err.contains("quiz-worker.yaml") && err.contains("Deployment/quiz-worker"), "{err}");
    assert!(err.contains("edge-containers-have-limits") && err.contains("no cpu limit"), "{err}");
    assert!(!err.contains("edge-pods-run-wasmedge"), "the runtime class was set: {err}");
}

#[test]
fn bad_definitions_fail_before_anything_is_written() {
    let d = tempfile::tempdir().unwrap();
    let spec =
        definition(d.path(), "[disk]\nesp_mib = 24\nsystem_mib = 12\ndata_mib = 24\ncmdline = \"\"\nswap_mib = 4", "");
    let err = failing_build(d.path(), &spec);
    assert!(err.contains("appliance.toml") && err.contains("swap_mib"), "{err}");

    let spec = definition(d.path(), "", "");
    let err = failing_build(d.path(), &spec);
    assert!(err.contains("appliance.toml") && err.contains("disk") && err.contains("missing"), "{err}");

    let spec = definition(d.path(), DISK, "credentials = \"no-such-htpasswd\"");
    let err = failing_build(d.path(), &spec);
    assert!(err.contains("lms.credentials") && err.contains("no-such-htpasswd"), "{err}");
}
