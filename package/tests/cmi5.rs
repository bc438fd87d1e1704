//! cmi5 packages in: valid ones (zip, Zip64, standalone XML, more than
//! 1,000 AUs) land in a pack; each class of invalid one is refused naming
//! the package, file, line, element and value, and adds nothing.

use lms_package::course::{LaunchMethod, MoveOn, Node};
use lms_package::pack::Input;
use lms_package::testing::{Entry, au, structure, zip, zip_with};
use lms_package::{Limits, Options, pack};

#[allow(clippy::result_large_err)] // as in the crate: refusals only
fn read(path: &Path, id: Option<&str>, limits: &Limits) -> Result<lms_package::Package, lms_package::ImportError> {
    lms_package::read(path, &Options { id, title: None }, limits)
}
use std::path::{Path, PathBuf};

const COURSE: &str = "https://courses.example.org/cmi5/geology";

fn geology() -> String {
    let objectives = r#"  <objectives>
    <objective id="https://courses.example.org/objectives/rocks">
      <title><langstring lang="en-US">Rocks</langstring></title>
      <description><langstring lang="en-US">Know the three kinds.</langstring></description>
    </objective>
  </objectives>"#;
    let block = format!(
        r#"  <block id="{COURSE}/blocks/materials">
    <title><langstring lang="en-US">Materials</langstring></title>
    <description><langstring lang="en-US">Rock and soil.</langstring></description>
    <objectives><objective idref="https://courses.example.org/objectives/rocks"/></objectives>
{}
{}
  </block>"#,
        au(
            &format!("{COURSE}/aus/rocks"),
            "Rocks",
            " au/index.html?mode=full ",
            r#"moveOn="CompletedAndPassed" masteryScore="0.8""#
        ),
        au(
            &format!("{COURSE}/aus/soil"),
            "Soil",
            "https://media.example.org/soil/launch.html",
            r#"launchMethod="OwnWindow""#
        ),
    );
    structure(
        COURSE,
        "Geology",
        &format!(
            "{objectives}\n{block}\n{}",
            au(&format!("{COURSE}/aus/exam"), "Exam", "au/exam.html", r#"moveOn="Passed""#)
        ),
    )
}

fn write_zip(dir: &Path, name: &str, xml: &str, entry: Entry) -> PathBuf {
    let path = dir.join(name);
    zip_with(
        &path,
        &[
            ("cmi5.xml", xml.as_bytes(), entry),
            ("au/index.html", b"<!doctype html><title>Rocks</title>", entry),
            ("au/exam.html", b"<!doctype html><title>Exam</title>", entry),
            ("au/media/clip.mp4", &[7u8; 4096], entry),
        ],
    );
    path
}

#[test]
fn a_zip_package_lands_in_the_pack_with_its_structure_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = write_zip(dir.path(), "geology.zip", &geology(), Entry::File);
    let p = read(&pkg, None, &Limits::default()).unwrap();
    let c = &p.course;
    assert_eq!((c.id.as_str(), c.publisher_id.as_str(), c.source.as_str()), ("geology", COURSE, "geology.zip"));
    assert_eq!(c.title["zh-CN"], "课程 Geology");
    assert_eq!(c.source_sha256, lms_package::sha256_hex(&std::fs::read(&pkg).unwrap()));
    assert_eq!(c.aus.len(), 3);
    let rocks = &c.aus[0];
    // Values are trimmed on import (cmi5 13.1); the query string stays for the launch.
    assert_eq!(rocks.url, "au/index.html?mode=full");
    assert!(rocks.in_package);
    assert_eq!((rocks.move_on, rocks.mastery_score), (MoveOn::CompletedAndPassed, Some(0.8)));
    assert_eq!(rocks.blocks, [format!("{COURSE}/blocks/materials")]);
    assert!(rocks.objectives.is_empty());
    let Node::Block(materials) = &c.children[0] else { panic!("{:?}", c.children) };
    assert_eq!(materials.objectives, ["https://courses.example.org/objectives/rocks"]);
    let soil = &c.aus[1];
    assert!(!soil.in_package && soil.launch_method == LaunchMethod::OwnWindow && soil.move_on == MoveOn::NotApplicable);
    assert!(matches!(&c.children[..], [Node::Block(b), Node::Au(2)] if b.children == [Node::Au(0), Node::Au(1)]));

    let pack_dir = dir.path().join("pack");
    let added = pack::add(&pack_dir, vec![Input::Package(p)]).unwrap();
    assert_eq!(added[0].course, "geology");
    assert_eq!((added[0].aus[2].index, added[0].aus[2].title.as_str()), (2, "Exam"));
    let stored: lms_package::Course =
        serde_json::from_slice(&std::fs::read(pack_dir.join("packages/geology/course.json")).unwrap()).unwrap();
    assert_eq!(stored.aus[0].id, format!("{COURSE}/aus/rocks"));
    let clip = std::fs::read(pack_dir.join("packages/geology/files/au/media/clip.mp4")).unwrap();
    assert_eq!(clip, [7u8; 4096]);
    let files: Vec<lms_package::archive::FileEntry> =
        serde_json::from_slice(&std::fs::read(pack_dir.join("packages/geology/files.json")).unwrap()).unwrap();
    let listed = files.iter().find(|f| f.path == "au/media/clip.mp4").unwrap();
    assert_eq!((listed.size, listed.sha256.clone()), (4096, lms_package::sha256_hex(&clip)));
    assert!(!pack_dir.join(".staging").exists());

    // The same course again (a fixed typo) replaces it; another course under its id is refused.
    let fixed = geology().replace("Know the three kinds.", "Know the three kinds of rock.");
    let again = write_zip(dir.path(), "geology-v2.zip", &fixed, Entry::File);
    pack::add(&pack_dir, vec![Input::Package(read(&again, None, &Limits::default()).unwrap())]).unwrap();
    let stored: lms_package::Course =
        serde_json::from_slice(&std::fs::read(pack_dir.join("packages/geology/course.json")).unwrap()).unwrap();
    assert_eq!(stored.source, "geology-v2.zip");
    let other = write_zip(
        dir.path(),
        "other.zip",
        &geology().replace(COURSE, "https://else.example.org/x/geology"),
        Entry::File,
    );
    let err = pack::add(&pack_dir, vec![Input::Package(read(&other, None, &Limits::default()).unwrap())])
        .unwrap_err()
        .to_string();
    assert!(err.contains("other.zip") && err.contains(&format!("already {COURSE}")), "{err}");
    // ... unless it is given an id of its own.
    pack::add(&pack_dir, vec![Input::Package(read(&other, Some("geology-2"), &Limits::default()).unwrap())]).unwrap();
    assert!(pack_dir.join("packages/geology-2/course.json").exists());
}

#[test]
fn zip64_and_standalone_structures_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = write_zip(dir.path(), "geology64.zip", &geology(), Entry::File64);
    assert_eq!(read(&pkg, None, &Limits::default()).unwrap().course.aus.len(), 3);

    let standalone =
        structure(COURSE, "Remote", &au(&format!("{COURSE}/aus/a"), "A", "https://cdn.example.org/a/index.html", ""));
    let path = dir.path().join("cmi5.xml");
    std::fs::write(&path, &standalone).unwrap();
    let p = read(&path, None, &Limits::default()).unwrap();
    assert!(matches!(p.files, lms_package::Files::None) && !p.course.aus[0].in_package);
    let pack_dir = dir.path().join("pack");
    pack::add(&pack_dir, vec![Input::Package(p)]).unwrap();
    assert_eq!(std::fs::read_to_string(pack_dir.join("packages/geology/files.json")).unwrap().trim(), "[]");

    // Standalone, a relative URL has nothing to point at (cmi5 14.2).
    std::fs::write(&path, standalone.replace("https://cdn.example.org/a/index.html", "a/index.html")).unwrap();
    let err = read(&path, None, &Limits::default()).err().unwrap().to_string();
    assert!(err.starts_with("cmi5.xml: cmi5.xml:") && err.contains("<url>") && err.contains("14.2"), "{err}");
}

#[test]
fn more_than_a_thousand_aus() {
    let dir = tempfile::tempdir().unwrap();
    let aus: Vec<String> = (0..1200)
        .map(|i| au(&format!("{COURSE}/aus/{i}"), &format!("Unit {i}"), "au/index.html", r#"moveOn="Completed""#))
        .collect();
    let xml = structure(COURSE, "Big", &aus.join("\n"));
    let pkg = write_zip(dir.path(), "big.zip", &xml, Entry::File);
    let started = std::time::Instant::now();
    let p = read(&pkg, None, &Limits::default()).unwrap();
    let added = pack::add(&dir.path().join("pack"), vec![Input::Package(p)]).unwrap();
    eprintln!("1,200 AUs read and added in {:?}", started.elapsed());
    assert_eq!(added[0].aus.len(), 1200);
    assert_eq!(added[0].aus[1199].id, format!("{COURSE}/aus/1199"));
}

/// Each class of invalid structure: (what is wrong, the XML, what the error must say).
#[test]
fn every_invalid_structure_is_refused_naming_where_and_what() {
    let a = |id: &str, url: &str, attrs: &str| au(id, "T", url, attrs);
    let ok_au = a(&format!("{COURSE}/aus/1"), "au/index.html", "");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "course id not an IRI",
            structure("geology", "G", &ok_au),
            vec![":3:", "<course id>", "absolute IRI", "\"geology\""],
        ),
        (
            "AU id not an IRI",
            structure(COURSE, "G", &a("aus/1", "au/index.html", "")),
            vec![":7:", "<au id>", "\"aus/1\""],
        ),
        (
            "two AUs with one id",
            structure(COURSE, "G", &format!("{ok_au}\n{ok_au}")),
            vec![":12:", "<au id>", "already the id of the AU on line 7"],
        ),
        (
            "a block with the id of an AU",
            structure(
                COURSE,
                "G",
                &format!(
                    "{ok_au}\n  <block id=\"{COURSE}/aus/1\"><title><langstring>B</langstring></title><description><langstring/></description>{ok_au}</block>"
                ),
            ),
            vec!["<block id>", "already the id of the AU"],
        ),
        (
            "two objectives with one id",
            structure(
                COURSE,
                "G",
                &format!(
                    "<objectives><objective id=\"https://o.example/1\"><title><langstring>O</langstring></title><description><langstring/></description></objective><objective id=\"https://o.example/1\"><title><langstring>O</langstring></title><description><langstring/></description></objective></objectives>\n{ok_au}"
                ),
            ),
            vec!["<objective id>", "already the id of the objective"],
        ),
        (
            "a reference to no objective",
            structure(
                COURSE,
                "G",
                &ok_au.replace("<url>", "<objectives><objective idref=\"https://o.example/none\"/></objectives><url>"),
            ),
            vec!["<objective idref>", "names no objective", "https://o.example/none"],
        ),
        (
            "moveOn not in the list",
            structure(COURSE, "G", &a(&format!("{COURSE}/aus/1"), "au/index.html", r#"moveOn="Sometimes""#)),
            vec!["<au moveOn>", "\"Sometimes\"", "CompletedOrPassed"],
        ),
        (
            "masteryScore above 1",
            structure(COURSE, "G", &a(&format!("{COURSE}/aus/1"), "au/index.html", r#"masteryScore="1.5""#)),
            vec!["<au masteryScore>", "\"1.5\"", "from 0 to 1"],
        ),
        (
            "masteryScore not a decimal",
            structure(COURSE, "G", &a(&format!("{COURSE}/aus/1"), "au/index.html", r#"masteryScore="8e-1""#)),
            vec!["<au masteryScore>", "\"8e-1\""],
        ),
        (
            "launchMethod not in the list",
            structure(COURSE, "G", &a(&format!("{COURSE}/aus/1"), "au/index.html", r#"launchMethod="Popup""#)),
            vec!["<au launchMethod>", "\"Popup\""],
        ),
        (
            "an unknown attribute",
            structure(COURSE, "G", &a(&format!("{COURSE}/aus/1"), "au/index.html", r#"colour="red""#)),
            vec!["<au colour>", "unknown attribute"],
        ),
        (
            "url names no file",
            structure(COURSE, "G", &a(&format!("{COURSE}/aus/1"), "au/missing.html", "")),
            vec!["<url>", "\"au/missing.html\"", "not a file in the package"],
        ),
        (
            "url leaves the package",
            structure(COURSE, "G", &a(&format!("{COURSE}/aus/1"), "../outside.html", "")),
            vec!["<url>", "leaves the package"],
        ),
        (
            "url absolute path",
            structure(COURSE, "G", &a(&format!("{COURSE}/aus/1"), "/au/index.html", "")),
            vec!["<url>", "neither fully qualified nor relative"],
        ),
        ("url empty", structure(COURSE, "G", &a(&format!("{COURSE}/aus/1"), "  ", "")), vec!["<url>", "empty"]),
        (
            "url missing",
            structure(COURSE, "G", &ok_au.replace("<url>au/index.html</url>", "")),
            vec!["<au>", "<url> is required"],
        ),
        (
            "elements out of order",
            structure(
                COURSE,
                "G",
                &ok_au.replace("<url>au/index.html</url>", "").replace("<title>", "<url>au/index.html</url><title>"),
            ),
            vec!["<title>", "out of order"],
        ),
        ("no AU or block", structure(COURSE, "G", ""), vec!["<courseStructure>", "<au|block> is required"]),
        (
            "a block without members",
            structure(
                COURSE,
                "G",
                &format!(
                    "<block id=\"{COURSE}/b\"><title><langstring>B</langstring></title><description><langstring/></description></block>"
                ),
            ),
            vec!["<block>", "<au|block> is required"],
        ),
        ("an empty AU title", structure(COURSE, "G", &ok_au.replace(">T<", "> <")), vec!["<title>", "empty"]),
        (
            "a bad language tag",
            structure(COURSE, "G", &ok_au.replace("lang=\"en-US\">T", "lang=\"en_US\">T")),
            vec!["<langstring lang>", "\"en_US\""],
        ),
        (
            "another namespace at the root",
            structure(COURSE, "G", &ok_au).replace(lms_package::testing::NS, "https://example.org/not-cmi5"),
            vec!["<courseStructure>", "root element"],
        ),
        (
            "not well-formed",
            structure(COURSE, "G", &ok_au).replace("</course>", "</curse>"),
            vec!["cmi5.xml:", "not well-formed"],
        ),
        (
            "a DTD (entity expansion)",
            format!(
                "<!DOCTYPE x [<!ENTITY a \"aaaa\">]>{}",
                structure(COURSE, "G", &ok_au).replace("<?xml version=\"1.0\" encoding=\"utf-8\"?>", "")
            ),
            vec!["not well-formed", "DTD"],
        ),
        ("a bad id given", structure(COURSE, "G", &ok_au), vec!["course id must be"]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let pack_dir = dir.path().join("pack");
    for (what, xml, expected) in cases {
        let pkg = write_zip(dir.path(), "bad.zip", &xml, Entry::File);
        let id = (what == "a bad id given").then_some("Geo Logy");
        let err = match read(&pkg, id, &Limits::default()) {
            Ok(p) => match pack::add(&pack_dir, vec![Input::Package(p)]) {
                Ok(_) => panic!("{what}: accepted"),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        assert!(err.starts_with("bad.zip: "), "{what}: {err}");
        for e in expected {
            assert!(err.contains(e), "{what}: {err:?} lacks {e:?}");
        }
    }
    assert!(
        !pack_dir.join("packages").exists() || std::fs::read_dir(pack_dir.join("packages")).unwrap().next().is_none()
    );
}

#[test]
fn hostile_zips_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let xml = structure(COURSE, "G", &au(&format!("{COURSE}/aus/1"), "T", "index.html", ""));
    let limits = Limits::default();
    let check = |name: &str, files: &[(&str, &[u8], Entry)], expected: &[&str]| {
        let path = dir.path().join(name);
        zip_with(&path, files);
        let err = read(&path, None, &limits).err().unwrap_or_else(|| panic!("{name} accepted")).to_string();
        for e in expected {
            assert!(err.contains(e), "{name}: {err:?} lacks {e:?}");
        }
    };
    let x = xml.as_bytes();
    check(
        "traversal.zip",
        &[("cmi5.xml", x, Entry::File), ("index.html", b"x", Entry::File), ("../evil.html", b"x", Entry::File)],
        &["traversal.zip: ../evil.html", "unsafe path"],
    );
    check(
        "absolute.zip",
        &[("cmi5.xml", x, Entry::File), ("index.html", b"x", Entry::File), ("/etc/cron.d/x", b"x", Entry::File)],
        &["unsafe path", "/etc/cron.d/x"],
    );
    check(
        "backslash.zip",
        &[("cmi5.xml", x, Entry::File), ("index.html", b"x", Entry::File), ("..\\evil.html", b"x", Entry::File)],
        &["unsafe path"],
    );
    check(
        "link.zip",
        &[("cmi5.xml", x, Entry::File), ("index.html", b"/etc/passwd", Entry::Symlink)],
        &["link.zip: index.html", "symbolic link"],
    );
    // The zip writer will not write a name twice: write two, then rename one in place.
    let twice = dir.path().join("twice.zip");
    zip(&twice, &[("cmi5.xml", x), ("index.html", b"a"), ("indey.html", b"b")]);
    let bytes = std::fs::read(&twice).unwrap();
    let mut patched = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"indey.html") {
            patched.extend_from_slice(b"index.html");
            i += 10;
        } else {
            patched.push(bytes[i]);
            i += 1;
        }
    }
    std::fs::write(&twice, patched).unwrap();
    let err = read(&twice, None, &limits).err().unwrap().to_string();
    assert!(err.starts_with("twice.zip: twice.zip: a file name appears twice"), "{err}");
    check(
        "dirfile.zip",
        &[("cmi5.xml", x, Entry::File), ("index.html", b"a", Entry::File), ("index.html/x", b"b", Entry::File)],
        &["also a file"],
    );
    let zeros = vec![0u8; 64 << 20];
    check(
        "bomb.zip",
        &[("cmi5.xml", x, Entry::File), ("index.html", &zeros, Entry::File)],
        &["bomb.zip: index.html", "zip bomb"],
    );
    check("notcmi5.zip", &[("start.html", b"x", Entry::File)], &["none of cmi5.xml"]);
    // A nested cmi5.xml is not at the root.
    check(
        "nested.zip",
        &[("course/cmi5.xml", x, Entry::File), ("course/index.html", b"x", Entry::File)],
        &["none of cmi5.xml"],
    );

    let broken = dir.path().join("broken.zip");
    std::fs::write(&broken, b"PK\x03\x04 this is not really a zip at all").unwrap();
    let err = read(&broken, None, &limits).err().unwrap().to_string();
    assert!(err.starts_with("broken.zip: broken.zip: not a readable zip"), "{err}");
    let neither = dir.path().join("notes.txt");
    std::fs::write(&neither, b"hello").unwrap();
    assert!(read(&neither, None, &limits).err().unwrap().to_string().contains("not a zip, an XML course structure"));

    // Limits apply to what a zip holds, not to what it says it holds.
    let small = Limits { max_file_bytes: 1000, ..Limits::default() };
    let path = dir.path().join("big-file.zip");
    zip(&path, &[("cmi5.xml", x), ("index.html", &[1u8; 2000])]);
    let err = read(&path, None, &small).err().unwrap().to_string();
    assert!(err.contains("index.html") && err.contains("over the 1000-byte limit"), "{err}");
}

#[test]
fn a_batch_with_one_bad_package_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pack_dir = dir.path().join("pack");
    std::fs::create_dir_all(pack_dir.join("courses")).unwrap();
    let science = Path::new(env!("CARGO_MANIFEST_DIR")).join("../appliance/content/courses/science.toml");
    std::fs::copy(science, pack_dir.join("courses/science.toml")).unwrap();
    let good = read(&write_zip(dir.path(), "geology.zip", &geology(), Entry::File), None, &Limits::default()).unwrap();
    let clash_xml = geology().replace(COURSE, "https://courses.example.org/cmi5/science");
    let clash = read(&write_zip(dir.path(), "science.zip", &clash_xml, Entry::File), None, &Limits::default()).unwrap();
    let err = pack::add(&pack_dir, vec![Input::Package(good), Input::Package(clash)]).unwrap_err().to_string();
    assert!(err.contains("science.zip") && err.contains("courses/science.toml"), "{err}");
    assert!(!pack_dir.join("packages/geology").exists(), "the good package was added");
    assert!(!pack_dir.join(".staging").exists());
}

/// The cmi5 course authored in the repository for launch tests imports as
/// written: one block, one AU with its query string and launch parameters.
#[test]
fn the_authored_test_course_imports() {
    let dir = tempfile::tempdir().unwrap();
    let z = dir.path().join("water-safety.zip");
    lms_package::testing::zip_tree(&lms_package::testing::data_dir().join("cmi5"), &z, &[]);
    let c = read(&z, None, &Limits::default()).unwrap().course;
    assert_eq!((c.id.as_str(), c.title["zh-CN"].as_str()), ("water-safety", "水上安全"));
    let au = &c.aus[0];
    assert_eq!(
        (au.url.as_str(), au.move_on, au.mastery_score),
        ("au/index.html?lesson=currents", MoveOn::CompletedAndPassed, Some(0.8))
    );
    assert_eq!(au.launch_parameters.as_deref(), Some(r#"{"quiz": true}"#));
    assert!(au.in_package);
}
