//! `lms-image content add` as a content team runs it: packages of every
//! kind land in a pack; a batch with one bad package changes nothing and
//! says where the problem is.

use lms_package::testing::{au, data_dir, structure, zip, zip_tree};
use std::path::Path;
use std::process::Command;

fn image(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lms-image")).args(args).output().unwrap()
}

/// Every file under `dir` with its bytes, to compare a pack before and after.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(snapshot(&p));
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn content_add_imports_every_kind_or_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = |s: &str| d.path().join(s).to_str().unwrap().to_string();
    let course = "https://courses.example.org/cmi5/rivers";
    let xml = structure(
        course,
        "Rivers",
        &au(&format!("{course}/aus/1"), "Where rivers start", "index.html?x=1", r#"moveOn="Completed""#),
    );
    zip(Path::new(&p("rivers.zip")), &[("cmi5.xml", xml.as_bytes()), ("index.html", b"<title>x</title>")]);
    zip_tree(&data_dir().join("scorm12"), Path::new(&p("water.zip")), &[]);
    let native = Path::new(env!("CARGO_MANIFEST_DIR")).join("../appliance/content/courses/science.toml");

    let o = image(&[
        "content",
        "add",
        "--pack",
        &p("pack"),
        &p("rivers.zip"),
        &p("water.zip"),
        native.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let added: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = added.as_array().unwrap().iter().map(|c| c["course"].as_str().unwrap()).collect();
    assert_eq!(ids, ["rivers", "org-example-lms-water-cycle", "science"]);
    assert_eq!(
        added[0]["aus"][0],
        serde_json::json!({"index": 0, "id": format!("{course}/aus/1"), "title": "Where rivers start"})
    );
    assert!(Path::new(&p("pack/packages/rivers/files/index.html")).is_file());
    assert!(Path::new(&p("pack/courses/science.toml")).is_file());
    // Its media came along from the directory beside it (courses/science/).
    assert_eq!(
        std::fs::read(p("pack/courses/science/water-cycle.svg")).unwrap(),
        std::fs::read(native.with_file_name("science/water-cycle.svg")).unwrap()
    );
    let order = std::fs::read_to_string(p("pack/pack.toml")).unwrap();
    assert!(order.contains(r#"courses = ["rivers", "org-example-lms-water-cycle", "science"]"#), "{order}");

    let o = image(&["content", "add", "--pack", &p("pack"), "--title", "Rain", &p("rivers.zip"), &p("water.zip")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--id and --title name one package"));

    // One bad package in a batch: nothing changes, and the error says where.
    let before = snapshot(Path::new(&p("pack")));
    let broken = structure(
        course,
        "Rivers",
        &au(&format!("{course}/aus/1"), "Where rivers start", "index.html", r#"moveOn="Eventually""#),
    );
    zip(Path::new(&p("broken.zip")), &[("cmi5.xml", broken.as_bytes()), ("index.html", b"x")]);
    let fixed = xml.replace("Where rivers start", "Where rivers begin");
    zip(Path::new(&p("rivers-fixed.zip")), &[("cmi5.xml", fixed.as_bytes()), ("index.html", b"<title>x</title>")]);
    let o = image(&["content", "add", "--pack", &p("pack"), &p("rivers-fixed.zip"), &p("broken.zip")]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("broken.zip: cmi5.xml:7: <au moveOn>") && err.contains("\"Eventually\""), "{err}");
    assert_eq!(snapshot(Path::new(&p("pack"))), before, "a refused batch changed the pack");
    // A native course with a problem names its file and field, and changes nothing.
    let bad_toml = d.path().join("bad.toml");
    std::fs::write(
        &bad_toml,
        std::fs::read_to_string(&native).unwrap().replace("id = \"science\"", "id = \"Science!\""),
    )
    .unwrap();
    let o = image(&["content", "add", "--pack", &p("pack"), bad_toml.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() == Some(1) && err.contains("bad.toml") && err.contains("course \"Science!\": id must be"),
        "{err}"
    );
    assert_eq!(snapshot(Path::new(&p("pack"))), before);
    // A lesson showing a file its course's media directory lacks: refused,
    // naming the course file, the lesson and the path.
    std::fs::create_dir_all(p("alone")).unwrap();
    std::fs::copy(&native, p("alone/science.toml")).unwrap();
    let o = image(&["content", "add", "--pack", &p("pack"), &p("alone/science.toml")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() == Some(1)
            && err.contains("alone/science.toml")
            && err.contains("lesson \"water-cycle\" shows \"water-cycle.svg\""),
        "{err}"
    );
    assert_eq!(snapshot(Path::new(&p("pack"))), before);
    // The fixed package alone replaces its course.
    let o = image(&["content", "add", "--pack", &p("pack"), &p("rivers-fixed.zip")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("added rivers to"));
    let c = std::fs::read_to_string(p("pack/packages/rivers/course.json")).unwrap();
    assert!(c.contains("Where rivers begin"), "{c}");
}

#[test]
fn content_bundle_and_publish_put_a_pack_on_its_own_channel() {
    let d = tempfile::tempdir().unwrap();
    let p = |s: &str| d.path().join(s).to_str().unwrap().to_string();
    assert!(image(&["keygen", "--out", &p("release")]).status.success());
    zip_tree(&data_dir().join("scorm2004"), Path::new(&p("fractions.zip")), &[]);
    let native = Path::new(env!("CARGO_MANIFEST_DIR")).join("../appliance/content/courses/science.toml");
    let run = |args: &[&str]| {
        let o = image(args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    run(&["content", "add", "--pack", &p("pack"), "--id", "fractions", &p("fractions.zip")]);
    run(&["content", "add", "--pack", &p("pack"), native.to_str().unwrap()]);
    let out = run(&[
        "content",
        "bundle",
        "--pack",
        &p("pack"),
        "--version",
        "1.0.0",
        "--key",
        &p("release.key"),
        "--out",
        &p("c1.bundle"),
    ]);
    assert!(out.contains("version 1.0.0 (2 courses, 7 files"), "{out}"); // the science diagram is one
    let out = run(&[
        "publish",
        "--bundle",
        &p("c1.bundle"),
        "--repo",
        &p("repo"),
        "--channel",
        "content-stable",
        "--key",
        &p("release.key"),
    ]);
    assert!(out.contains("published 1.0.0 to channel content-stable"), "{out}");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p("repo/channels/content-stable.json")).unwrap()).unwrap();
    assert_eq!(meta["bundle"]["path"], "content/lms-content-1.0.0.json");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p("repo/content/lms-content-1.0.0.json")).unwrap()).unwrap();
    assert_eq!(manifest["courses"], serde_json::json!(["fractions", "science"]), "catalog order: as added");

    // A pack whose files do not match its lists is not bundled.
    std::fs::write(p("pack/packages/fractions/files/content/half.html"), "changed by hand").unwrap();
    let o = image(&[
        "content",
        "bundle",
        "--pack",
        &p("pack"),
        "--version",
        "1.1.0",
        "--key",
        &p("release.key"),
        "--out",
        &p("c2.bundle"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(1) && err.contains("half.html") && err.contains("files.json says"), "{err}");
    assert!(!Path::new(&p("c2.bundle")).exists());
}
