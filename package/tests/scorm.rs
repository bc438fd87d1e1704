//! SCORM 1.2 and 2004 packages authored in the repository import with their
//! structure; each class of broken manifest is refused naming where.

use lms_package::course::{Kind, Node, UnitKind};
use lms_package::pack::Input;
use lms_package::testing::{data_dir, zip_tree};
use lms_package::{Limits, Options, pack, read};

#[test]
fn scorm_1_2_and_2004_packages_import() {
    let dir = tempfile::tempdir().unwrap();
    let z12 = dir.path().join("water-cycle.zip");
    zip_tree(&data_dir().join("scorm12"), &z12, &[]);
    let p = read(&z12, &Options::default(), &Limits::default()).unwrap();
    let c = &p.course;
    assert_eq!(
        (c.kind, c.id.as_str(), c.publisher_id.as_str()),
        (Kind::Scorm12, "org-example-lms-water-cycle", "org.example.lms.water-cycle")
    );
    assert_eq!(c.title[""], "The Water Cycle");
    assert_eq!(c.units.len(), 2);
    let sco = &c.units[0];
    assert_eq!((sco.kind, sco.href.as_str(), sco.mastery_score), (UnitKind::Sco, "index.html?part=1", Some(0.8)));
    assert_eq!(sco.data_from_lms.as_deref(), Some("level=basic"));
    assert_eq!((c.units[1].kind, c.units[1].href.as_str()), (UnitKind::Asset, "glossary.html"));
    assert_eq!(c.children, [Node::Unit(0), Node::Unit(1)]);

    let z2004 = dir.path().join("fractions.zip");
    zip_tree(&data_dir().join("scorm2004"), &z2004, &[]);
    let p2004 = read(&z2004, &Options { id: Some("fractions"), title: None }, &Limits::default()).unwrap();
    let c = &p2004.course;
    assert_eq!((c.kind, c.id.as_str(), c.title[""].as_str()), (Kind::Scorm2004, "fractions", "分数入门 Fractions"));
    let sco = &c.units[0];
    // xml:base on <resources> puts the SCO under content/.
    assert_eq!(sco.href, "content/half.html");
    assert_eq!((sco.mastery_score, sco.completion_threshold), (Some(0.7), Some(0.8)));
    assert_eq!(sco.blocks, ["module-1"]);
    assert!(matches!(&c.children[..], [Node::Block(b)] if b.id == "module-1" && b.children == [Node::Unit(0)]));

    let pack_dir = dir.path().join("pack");
    let added = pack::add(&pack_dir, vec![Input::Package(p), Input::Package(p2004)]).unwrap();
    assert_eq!(added[1].aus[0].title, "What is a half?");
    assert!(pack_dir.join("packages/fractions/files/content/half.html").is_file());
    assert!(pack_dir.join("packages/org-example-lms-water-cycle/files/shared/sco.js").is_file());
}

/// What is wrong, which authored package, the edits that break it, what the error must say.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str, &'a str)>, Vec<&'a str>);

#[test]
fn every_broken_manifest_is_refused_naming_where_and_what() {
    let m = "imsmanifest.xml";
    let cases: Vec<Case> = vec![
        (
            "an unknown version",
            "scorm12",
            vec![(m, "<schemaversion>1.2", "<schemaversion>1.3")],
            vec![":11:", "<schemaversion>", "\"1.3\""],
        ),
        (
            "a default organization that is not there",
            "scorm12",
            vec![(m, "default=\"water-cycle-org\"", "default=\"nope\"")],
            vec!["<organizations default>", "\"nope\""],
        ),
        (
            "an item naming no resource",
            "scorm12",
            vec![(m, "identifierref=\"asset-glossary\"", "identifierref=\"asset-nothing\"")],
            vec!["<item identifierref>", "\"asset-nothing\""],
        ),
        (
            "a launch file that is not in the package",
            "scorm12",
            vec![(m, "href=\"glossary.html\">", "href=\"glosary.html\">")],
            vec!["<resource href>", "not a file in the package"],
        ),
        (
            "a resource on another server",
            "scorm12",
            vec![(m, "href=\"glossary.html\">", "href=\"https://cdn.example.org/g.html\">")],
            vec!["<resource href>", "outside the package"],
        ),
        (
            "a resource outside the package",
            "scorm12",
            vec![(m, "href=\"glossary.html\">", "href=\"../glossary.html\">")],
            vec!["<resource href>", "leaves the package"],
        ),
        (
            "no scormtype",
            "scorm12",
            vec![(m, "adlcp:scormtype=\"asset\" ", "")],
            vec!["<resource adlcp:scormType>", "required"],
        ),
        (
            "a wrong scormtype",
            "scorm12",
            vec![(m, "adlcp:scormtype=\"asset\"", "adlcp:scormtype=\"page\"")],
            vec!["\"page\"", "sco or asset"],
        ),
        (
            "a leaf item that launches nothing",
            "scorm12",
            vec![(m, " identifierref=\"asset-glossary\"", "")],
            vec!["<item>", "leaf item"],
        ),
        (
            "two items with one identifier",
            "scorm12",
            vec![(m, "identifier=\"glossary\"", "identifier=\"lesson\"")],
            vec!["<item identifier>", "\"lesson\"", "already the identifier on line"],
        ),
        (
            "two resources with one identifier",
            "scorm12",
            vec![(m, "identifier=\"asset-glossary\" type", "identifier=\"sco-lesson\" type")],
            vec!["<resource identifier>", "\"sco-lesson\""],
        ),
        (
            "a mastery score above 100",
            "scorm12",
            vec![(m, "<adlcp:masteryscore>80", "<adlcp:masteryscore>180")],
            vec!["<masteryscore>", "\"180\"", "0 to 100"],
        ),
        (
            "an empty item title",
            "scorm12",
            vec![(m, "<title>Glossary</title>", "<title> </title>")],
            vec!["<title>", "empty"],
        ),
        (
            "no organizations",
            "scorm12",
            vec![(m, "<organizations default=\"water-cycle-org\">", "<orgs>"), (m, "</organizations>", "</orgs>")],
            vec!["<manifest>", "<organizations> is required"],
        ),
        (
            "another root",
            "scorm12",
            vec![(m, "xmlns=\"http://www.imsproject.org/xsd/imscp_rootv1p1p2\"", "xmlns=\"http://example.org/cp\"")],
            vec!["<manifest>", "root element"],
        ),
        (
            "a nested manifest",
            "scorm12",
            vec![(m, "  <resources>", "  <manifest identifier=\"sub\"/>\n  <resources>")],
            vec!["<manifest>", "nested manifests"],
        ),
        (
            "a measure out of range",
            "scorm2004",
            vec![(m, "<imsss:minNormalizedMeasure>0.7", "<imsss:minNormalizedMeasure>1.7")],
            vec!["<minNormalizedMeasure>", "\"1.7\""],
        ),
        (
            "a threshold out of range",
            "scorm2004",
            vec![(m, "minProgressMeasure=\"0.8\"", "minProgressMeasure=\"80\"")],
            vec!["<completionThreshold>", "\"80\""],
        ),
        (
            "a wrong xml:base",
            "scorm2004",
            vec![(m, "xml:base=\"content/\"", "xml:base=\"contents/\"")],
            vec!["<resource href>", "\"contents/half.html\""],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (what, tree, edits, expected) in cases {
        let z = dir.path().join("bad-scorm.zip");
        zip_tree(&data_dir().join(tree), &z, &edits);
        let err = match read(&z, &Options::default(), &Limits::default()) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.starts_with("bad-scorm.zip: imsmanifest.xml:"), "{what}: {err}");
        for e in expected {
            assert!(err.contains(e), "{what}: {err:?} lacks {e:?}");
        }
    }
}
