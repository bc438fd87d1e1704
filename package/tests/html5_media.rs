//! HTML5 apps and single videos or PDFs as courses.

use lms_package::course::{Kind, UnitKind};
use lms_package::pack::Input;
use lms_package::testing::zip;
use lms_package::{Files, Limits, Options, pack, read};

#[test]
fn an_html5_app_takes_its_title_from_its_page_or_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("Fraction Wall.zip");
    zip(&app, &[("index.html", "<!doctype html><title>分数墙 &amp; more</title>".as_bytes()), ("app.js", b"1")]);
    let p = read(&app, &Options::default(), &Limits::default()).unwrap();
    assert_eq!(
        (p.course.kind, p.course.id.as_str(), p.course.title[""].as_str()),
        (Kind::Html5, "fraction-wall", "分数墙 & more")
    );
    assert_eq!((p.course.units[0].kind, p.course.units[0].href.as_str()), (UnitKind::Page, "index.html"));
    let untitled = dir.path().join("untitled.zip");
    zip(&untitled, &[("index.html", b"<p>hi")]);
    let err = read(&untitled, &Options::default(), &Limits::default()).err().unwrap().to_string();
    assert_eq!(err, "untitled.zip: index.html: has no <title>; give the course a title (--title)");
    let p2 = read(&untitled, &Options { id: None, title: Some("Hello") }, &Limits::default()).unwrap();
    let added = pack::add(&dir.path().join("pack"), vec![Input::Package(p), Input::Package(p2)]).unwrap();
    assert_eq!(added.iter().map(|a| a.course.as_str()).collect::<Vec<_>>(), ["fraction-wall", "untitled"]);
}

#[test]
fn a_video_or_pdf_needs_a_title_and_is_what_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("Rain.MP4");
    let mut mp4 = vec![0, 0, 0, 24];
    mp4.extend_from_slice(b"ftypisom");
    mp4.resize(10_000, 9);
    std::fs::write(&video, &mp4).unwrap();
    let err = read(&video, &Options::default(), &Limits::default()).err().unwrap().to_string();
    assert!(err.contains("Rain.MP4") && err.contains("--title"), "{err}");
    let p = read(&video, &Options { id: None, title: Some("How rain forms") }, &Limits::default()).unwrap();
    assert_eq!(
        (p.course.kind, p.course.units[0].kind, p.course.units[0].href.as_str()),
        (Kind::Media, UnitKind::Video, "rain.mp4")
    );
    assert!(matches!(p.files, Files::Single { .. }));
    let pack_dir = dir.path().join("pack");
    pack::add(&pack_dir, vec![Input::Package(p)]).unwrap();
    assert_eq!(std::fs::read(pack_dir.join("packages/rain/files/rain.mp4")).unwrap(), mp4);

    let pdf = dir.path().join("guide.pdf");
    std::fs::write(&pdf, b"%PDF-1.7\n...").unwrap();
    let p = read(&pdf, &Options { id: Some("teacher-guide"), title: Some("Guide") }, &Limits::default()).unwrap();
    assert_eq!((p.course.id.as_str(), p.course.units[0].kind), ("teacher-guide", UnitKind::Pdf));
    // An .mp4 that is not one is not media.
    let fake = dir.path().join("fake.mp4");
    std::fs::write(&fake, b"#!/bin/sh\nrm -rf /").unwrap();
    let err = read(&fake, &Options { id: None, title: Some("x") }, &Limits::default()).err().unwrap().to_string();
    assert!(err.contains("not a zip, an XML course structure, a video"), "{err}");
}
