//! Course content from a content directory (what lms-updater installs):
//! the node serves its native courses (module bundles carry none),
//! reports the installed content_version on /readyz, takes a new version on
//! reload, and keeps serving the previous content when a new pack is bad.

mod common;
use common::*;
use std::path::Path;

/// A copy of the factory content pack with the science course retitled,
/// as installed (with lms-updater's slot manifest) when `version` is set.
fn pack(dir: &Path, title: &str, version: Option<&str>) {
    let retitle = |_: &str, text: String| text.replace("title = \"Basic Science\"", &format!("title = \"{title}\""));
    lms_package::pack::copy_with(&factory_content(), dir, &retitle).unwrap();
    if let Some(v) = version {
        std::fs::write(
            dir.join(".content.json"),
            format!(r#"{{"format":1,"content_version":"{v}","created":"","courses":[],"files":[]}}"#),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn content_comes_from_the_content_directory_and_reloads() {
    let content = tempfile::tempdir().unwrap();
    let dir = content.path().join("current");
    pack(&dir, "Science Today", Some("1.2.0"));
    let d2 = dir.clone();
    let n = TestNode::start(None, move |c| c.content = d2).await.ready().await;
    let r = n.get("/v1/courses").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Science Today") && !r.text().contains("Basic Science"), "{}", r.text());
    let ready = n.client.get(&format!("{}/readyz", n.admin), &[]).await.unwrap().json();
    assert_eq!(ready["content_version"], "1.2.0", "{ready}");
    assert_eq!(ready["content"]["courses"][1], "science", "{ready}");

    // A new version in place, then a reload: served at once.
    std::fs::remove_dir_all(&dir).unwrap();
    pack(&dir, "Science Tomorrow", Some("1.3.0"));
    let r = n.reload().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["content_version"], "1.3.0");
    assert!(n.get("/v1/courses").await.text().contains("Science Tomorrow"));

    // A pack that does not check: the reload is refused with the reason,
    // and the content in force keeps serving.
    let arithmetic = dir.join("courses/arithmetic.toml");
    let text = std::fs::read_to_string(&arithmetic).unwrap().replace("id = \"arithmetic\"", "id = \"Arithmetic!\"");
    std::fs::write(&arithmetic, text).unwrap();
    std::fs::write(dir.join(".content.json"), r#"{"content_version":"1.4.0"}"#).unwrap();
    let r = n.reload().await;
    assert_ne!(r.status, 200);
    assert!(r.text().contains("Arithmetic!"), "{}", r.text());
    assert!(n.get("/v1/courses").await.text().contains("Science Tomorrow"));
    let ready = n.client.get(&format!("{}/readyz", n.admin), &[]).await.unwrap().json();
    assert_eq!(ready["content_version"], "1.3.0", "{ready}");
    n.stop().await;
}

#[tokio::test]
async fn without_a_content_pack_the_catalog_is_empty_unless_the_bundle_is_format_1() {
    use sha2::{Digest, Sha256};
    let empty = tempfile::tempdir().unwrap();
    let d = empty.path().join("current");
    // Module bundles carry code only: no pack, no courses (a first boot
    // before the factory content is installed), and the node is ready.
    let d2 = d.clone();
    let n = TestNode::start(None, move |c| c.content = d2).await.ready().await;
    let r = n.get("/v1/courses").await;
    assert_eq!((r.status.as_u16(), r.json()["courses"].clone()), (200, serde_json::json!([])), "{}", r.text());
    let ready = n.client.get(&format!("{}/readyz", n.admin), &[]).await.unwrap().json();
    assert!(ready["content_version"].is_null() && ready["content"].is_null(), "{ready}");
    n.stop().await;

    // A format 1 directory (from before content had its own bundles)
    // still serves the courses it carries.
    let old = empty.path().join("format1");
    copy_dir(&real_modules(), &old);
    let pack = lms_package::pack::check(&factory_content()).unwrap();
    let flat = serde_json::to_vec(&lms_content::flatten(&pack.activity_base, &pack.natives)).unwrap();
    std::fs::write(old.join("content.json"), &flat).unwrap();
    let mpath = old.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["format"] = 1.into();
    m["content"] =
        serde_json::json!({"file": "content.json", "size": flat.len(), "sha256": hex::encode(Sha256::digest(&flat))});
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    let n = TestNode::start(Some(old.clone()), move |c| c.content = d).await.ready().await;
    assert!(n.get("/v1/courses").await.text().contains("Basic Science"));
    n.stop().await;

    // Format 2 with content listed is refused at load, naming why.
    m["format"] = 2.into();
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    let metrics = std::sync::Arc::new(lms_node::metrics::Metrics::default());
    let host = lms_node::wasm::Host::new(lms_node::Config::default().module_limits(), None, metrics).unwrap();
    let err = host.load(&old, None).err().expect("refused").to_string();
    assert!(err.contains("content bundles"), "{err}");
}

/// A package added on the node (admin listener only) lands in the local
/// content pack, is listed, survives a content update, and a bad one is
/// refused naming where, with nothing added.
#[tokio::test]
async fn packages_added_on_the_node_are_kept_beside_the_signed_content() {
    use lms_package::testing::{au, structure, zip};
    let content = tempfile::tempdir().unwrap();
    let dir = content.path().join("current");
    pack(&dir, "Basic Science", Some("1.0.0"));
    let d2 = dir.clone();
    let n = TestNode::start(None, move |c| c.content = d2).await.ready().await;
    let course = "https://teachers.example.org/cmi5/rivers";
    let good = structure(course, "Rivers", &au(&format!("{course}/aus/1"), "Where rivers start", "index.html", ""));
    let pkg = content.path().join("rivers.zip");
    zip(&pkg, &[("cmi5.xml", good.as_bytes()), ("index.html", b"<title>Rivers</title>")]);
    let bytes = std::fs::read(&pkg).unwrap();
    let post = |url: String, ctype: &'static str, body: Vec<u8>| {
        let client = n.client.clone();
        async move {
            client
                .send("POST".parse().unwrap(), &url, &[("content-type", ctype)], axum::body::Bytes::from(body))
                .await
                .unwrap()
        }
    };
    let admin = |q: &str| format!("{}/admin/content/packages{q}", n.admin);

    // Only on the admin listener.
    assert_eq!(post(n.url("/admin/content/packages"), "application/zip", bytes.clone()).await.status, 404);
    let r = post(admin("?name=rivers.zip"), "application/zip", bytes.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({"course": "rivers", "aus": [{"index": 0, "id": format!("{course}/aus/1"), "title": "Where rivers start"}]})
    );
    let local = n.dir.path().join("data/local-content");
    assert!(local.join("packages/rivers/files/index.html").is_file());
    let ready = n.client.get(&format!("{}/readyz", n.admin), &[]).await.unwrap().json();
    assert_eq!(ready["local_packages"], serde_json::json!(["rivers"]), "{ready}");

    // Refused: another type, a broken structure (named), an id the signed content has.
    let r = post(admin(""), "text/plain", bytes.clone()).await;
    assert_eq!(r.status, 400);
    let broken = good.replace("<url>index.html</url>", "<url>missing.html</url>");
    let bad = content.path().join("bad.zip");
    zip(&bad, &[("cmi5.xml", broken.as_bytes()), ("index.html", b"x")]);
    let r = post(admin("?name=bad.zip"), "application/zip", std::fs::read(&bad).unwrap()).await;
    assert_eq!(r.status, 400);
    let msg = r.json()["message"].as_str().unwrap().to_string();
    assert!(msg.starts_with("bad.zip: cmi5.xml:") && msg.contains("missing.html"), "{msg}");
    let r = post(admin("?name=rivers.zip&id=science"), "application/zip", bytes.clone()).await;
    assert_eq!((r.status.as_u16(), r.json()["error"].as_str()), (400, Some("course_id_taken")), "{}", r.text());
    let listed: Vec<_> = std::fs::read_dir(local.join("packages")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(listed, ["rivers"]);

    // A content update replaces the signed pack; the local package stays.
    std::fs::remove_dir_all(&dir).unwrap();
    pack(&dir, "Science Again", Some("1.1.0"));
    assert_eq!(n.reload().await.status, 200);
    let ready = n.client.get(&format!("{}/readyz", n.admin), &[]).await.unwrap().json();
    assert_eq!(
        (ready["content_version"].as_str(), ready["local_packages"][0].as_str()),
        (Some("1.1.0"), Some("rivers"))
    );
    n.stop().await;
}

/// Package files come from the content listener, not the node's own
/// origin: under a tag naming the package's bytes, with ETag (304), Range
/// (206, 416), their type, immutable caching, and a CSP that sandboxes
/// cmi5, HTML5 and media content; nothing outside the package's list.
#[tokio::test]
async fn package_files_are_served_from_their_own_origin() {
    use lms_package::testing::{au, structure, zip};
    let content = tempfile::tempdir().unwrap();
    let dir = content.path().join("current");
    pack(&dir, "Basic Science", Some("1.0.0"));
    let course = "https://teachers.example.org/cmi5/rivers";
    let xml = structure(course, "Rivers", &au(&format!("{course}/aus/1"), "Start", "au/index.html", ""));
    let video: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let pkg = content.path().join("rivers.zip");
    zip(
        &pkg,
        &[
            ("cmi5.xml", xml.as_bytes()),
            ("au/index.html", b"<!doctype html><title>Rivers</title>"),
            ("au/clip.mp4", &video),
        ],
    );
    let p = lms_package::read(&pkg, &Default::default(), &Default::default()).unwrap();
    let tag: String = p.course.source_sha256.chars().take(16).collect();
    lms_package::pack::add(&dir, vec![lms_package::pack::Input::Package(p)]).unwrap();
    let d2 = dir.clone();
    let n = TestNode::start(None, move |c| c.content = d2).await.ready().await;
    let get = |path: String, headers: Vec<(&'static str, String)>| {
        let (client, url) = (n.client.clone(), format!("{}{path}", n.content));
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            client.get(&url, &h).await.unwrap()
        }
    };
    let page = get(format!("/p/rivers/{tag}/au/index.html"), vec![]).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html"));
    assert!(page.header("content-security-policy").unwrap().starts_with("sandbox allow-scripts"), "no sandbox");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page.header("cache-control").unwrap().contains("immutable"));
    assert!(page.header("set-cookie").is_none());
    let etag = page.header("etag").unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", lms_package::sha256_hex(b"<!doctype html><title>Rivers</title>")));
    assert_eq!(get(format!("/p/rivers/{tag}/au/index.html"), vec![("if-none-match", etag)]).await.status, 304);

    // Video seeking: a range, and one past the end.
    let part = get(format!("/p/rivers/{tag}/au/clip.mp4"), vec![("range", "bytes=1000-1999".into())]).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 1000-1999/200000"));
    assert_eq!(part.header("content-type"), Some("video/mp4"));
    assert_eq!(&part.body[..], &video[1000..2000]);
    let past = get(format!("/p/rivers/{tag}/au/clip.mp4"), vec![("range", "bytes=300000-".into())]).await;
    assert_eq!(past.status, 416);
    let tail = get(format!("/p/rivers/{tag}/au/clip.mp4"), vec![("range", "bytes=-100".into())]).await;
    assert_eq!((tail.status.as_u16(), tail.header("content-range")), (206, Some("bytes 199900-199999/200000")));
    assert_eq!(&tail.body[..], &video[199_900..]);
    let whole = get(format!("/p/rivers/{tag}/au/clip.mp4"), vec![]).await;
    assert_eq!((whole.status.as_u16(), whole.body.len()), (200, video.len()));
    assert_eq!(whole.header("content-type"), Some("video/mp4"));
    // Twice: the second answer comes from the kept copy, the same bytes.
    for _ in 0..2 {
        let again = get(format!("/p/rivers/{tag}/au/index.html"), vec![]).await;
        assert_eq!((again.status.as_u16(), &again.body[..]), (200, &b"<!doctype html><title>Rivers</title>"[..]));
        assert_eq!(again.header("content-type"), Some("text/html"));
    }

    // Nothing but listed files of the current bytes: not the structure's
    // neighbours, not another tag, not a path out, not on the node's origin.
    for bad in [
        format!("/p/rivers/{tag}/au/missing.html"),
        "/p/rivers/0000000000000000/au/index.html".to_string(),
        format!("/p/rivers/{tag}/../course.json"),
        format!("/p/rivers/{tag}/%2e%2e/files.json"),
        format!("/p/nope/{tag}/au/index.html"),
    ] {
        assert_eq!(get(bad.clone(), vec![]).await.status, 404, "{bad}");
    }
    let on_node = n.client.get(&n.url(&format!("/p/rivers/{tag}/au/index.html")), &[]).await.unwrap();
    assert_ne!(on_node.status, 200, "package files must not be served from the node's own origin");
    n.stop().await;
}

/// A multipart/form-data body: the fields in order, then the file.
fn form_data(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "lms-test-boundary-7c1d";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
    }
    if let Some((name, bytes)) = file {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"package\"; filename=\"{name}\"\r\nContent-Type: application/zip\r\n\r\n")
                .as_bytes(),
        );
        body.extend(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Coaches and admins add a package from the browser: the same checks and
/// local pack as the admin API; learners may not; the form's token counts.
#[tokio::test]
async fn a_coach_adds_a_package_from_the_upload_page() {
    use common::people::*;
    let n = TestNode::start(None, |_| {}).await.ready().await;
    people(&n);
    let (wang, csrf) = signed_in(&n, "wang").await;
    let (amina, amina_csrf) = signed_in(&n, "amina").await;
    let en = format!("{wang}; lms_lang=en");
    let form = page(&get_as(&n, &en, "/content/packages").await);
    assert!(form.contains(r#"enctype="multipart/form-data""#) && form.contains(r#"name="package""#), "{form}");
    assert!(page(&get_as(&n, &en, "/coach").await).contains(r#"href="/content/packages""#));
    assert_eq!(get_as(&n, &amina, "/content/packages").await.status, 403);

    let dir = tempfile::tempdir().unwrap();
    let z = dir.path().join("half.zip");
    lms_package::testing::zip_tree(&lms_package::testing::data_dir().join("scorm2004"), &z, &[]);
    let zip = std::fs::read(&z).unwrap();
    let post = |cookie: String, fields: Vec<(&'static str, String)>, file: Option<(&'static str, Vec<u8>)>| {
        let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (ct, body) = form_data(&f, file.as_ref().map(|(n, b)| (*n, b.as_slice())));
        let (client, url) = (n.client.clone(), n.url("/content/packages"));
        async move {
            let h = [("cookie", cookie.as_str()), ("content-type", ct.as_str())];
            client.send("POST".parse().unwrap(), &url, &h, axum::body::Bytes::from(body)).await.unwrap()
        }
    };
    let file = || Some(("half.zip", zip.clone()));
    assert_eq!(post(en.clone(), vec![("csrf", "stale-token-0123456789".into())], file()).await.status, 403);
    assert_eq!(post(en.clone(), vec![], file()).await.status, 403, "no token before the file");
    assert_eq!(post(amina.clone(), vec![("csrf", amina_csrf)], file()).await.status, 403, "learners may not");
    let bad = post(en.clone(), vec![("csrf", csrf.clone())], Some(("notes.zip", b"not a zip".to_vec()))).await;
    assert_eq!(bad.status, 400);
    let text = bad.text();
    assert!(text.contains("notes.zip") && text.contains("role=\"alert\""), "the problem is named: {text}");
    let r = post(en.clone(), vec![("csrf", csrf.clone()), ("title", "".into())], file()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let text = r.text();
    assert!(text.contains("Added") && text.contains("role=\"status\""), "{text}");
    let id = n.node.current().unwrap().local_packages.first().cloned().expect("one local package");
    assert!(text.contains(&format!(r#"href="/courses/{id}""#)), "{text}");
    assert!(page(&get_as(&n, &en, "/courses").await).contains(&format!(r#"href="/courses/{id}""#)));
    n.stop().await;
}

/// A native lesson shows the course's own media: an image and a video from
/// its media directory, at URLs on the node's origin that name their bytes
/// (immutable, ETag, Range for seeking, a CSP under which nothing in them
/// runs); a file the lessons do not show, another tag or a missing file is
/// 404, and a lesson naming a missing file refuses the pack on reload.
#[tokio::test]
async fn lessons_show_their_courses_images_and_videos() {
    use common::people::*;
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("current");
    lms_package::pack::copy_with(&factory_content(), &pack, &|_, text| text).unwrap();
    // A video in the science course beside the factory pack's diagram.
    let video: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(pack.join("courses/science/rain.mp4"), &video).unwrap();
    std::fs::write(pack.join("courses/science/unused.png"), b"not shown by any lesson").unwrap();
    let toml = pack.join("courses/science.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace(
        "The Earth's water is always on the move",
        "![Rain falling on a hill](rain.mp4)\n\nThe Earth's water is always on the move",
    );
    std::fs::write(&toml, text).unwrap();
    let p2 = pack.clone();
    let n = TestNode::start(None, move |c| c.content = p2).await.ready().await;
    people(&n);

    // The lesson document carries the URLs; the page shows them.
    let doc = n.get("/v1/courses/science/lessons/water-cycle").await.json();
    let (svg, mp4) = (doc["media"]["water-cycle.svg"].as_str().unwrap(), doc["media"]["rain.mp4"].as_str().unwrap());
    assert!(svg.starts_with("/media/science/") && svg.ends_with("/water-cycle.svg"), "{doc}");
    let (cookie, _) = signed_in(&n, "amina").await;
    let html = page(&get_as(&n, &cookie, "/courses/science/lessons/water-cycle").await);
    assert!(html.contains(&format!(r#"<img src="{svg}" alt="The water cycle: evaporation"#)), "{html}");
    assert!(
        html.contains(&format!(
            r#"<video controls preload="metadata" src="{mp4}" aria-label="Rain falling on a hill">"#
        )),
        "{html}"
    );

    // The files, as the browser fetches them.
    let r = n.client.get(&n.url(svg), &[]).await.unwrap();
    assert_eq!((r.status.as_u16(), r.header("content-type")), (200, Some("image/svg+xml")));
    assert_eq!(r.body.as_ref(), std::fs::read(factory_content().join("courses/science/water-cycle.svg")).unwrap());
    assert!(r.header("content-security-policy").unwrap().starts_with("sandbox;"), "nothing in an SVG runs");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r.header("cache-control").unwrap().contains("immutable"));
    let etag = r.header("etag").unwrap().to_string();
    let again = n.client.get(&n.url(svg), &[("if-none-match", &etag)]).await.unwrap();
    assert_eq!(again.status, 304);
    let part = n.client.get(&n.url(mp4), &[("range", "bytes=1000-1999")]).await.unwrap();
    assert_eq!((part.status.as_u16(), part.header("content-type")), (206, Some("video/mp4")));
    assert_eq!(part.body.as_ref(), &video[1000..2000]);
    assert_eq!(part.header("content-range"), Some("bytes 1000-1999/300000"));
    let tag = svg.split('/').nth(3).unwrap();
    for path in [
        format!("/media/science/{tag}/unused.png"),
        "/media/science/0000000000000000/water-cycle.svg".to_string(),
        format!("/media/science/{tag}/../science.toml"),
        format!("/media/arithmetic/{tag}/water-cycle.svg"),
    ] {
        assert_eq!(n.client.get(&n.url(&path), &[]).await.unwrap().status, 404, "{path}");
    }

    // A lesson naming a file the pack lacks: the reload is refused, naming
    // the course file, the lesson and the path; the old pack keeps serving.
    std::fs::remove_file(pack.join("courses/science/rain.mp4")).unwrap();
    let r = n.reload().await;
    assert_ne!(r.status, 200);
    assert!(
        r.text().contains("science.toml") && r.text().contains("water-cycle") && r.text().contains("rain.mp4"),
        "{}",
        r.text()
    );
    assert_eq!(n.client.get(&n.url(svg), &[]).await.unwrap().status, 200);
    n.stop().await;
}
