//! Packages made on the spot for tests: a zip from (name, bytes) pairs and
//! cmi5 course structures.

use std::io::Write;
use std::path::Path;

/// How a test zip stores an entry.
#[derive(Clone, Copy, PartialEq)]
pub enum Entry {
    File,
    /// A Zip64 entry (sizes in the Zip64 extra field).
    File64,
    Symlink,
}

/// Writes a zip at `path` holding `files` (deflated).
pub fn zip(path: &Path, files: &[(&str, &[u8])]) {
    zip_with(path, &files.iter().map(|(n, b)| (*n, *b, Entry::File)).collect::<Vec<_>>());
}

pub fn zip_with(path: &Path, files: &[(&str, &[u8], Entry)]) {
    let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, bytes, kind) in files {
        let o = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        match kind {
            Entry::Symlink => w.add_symlink(*name, String::from_utf8_lossy(bytes), o).unwrap(),
            Entry::File | Entry::File64 => {
                w.start_file(*name, o.large_file(*kind == Entry::File64)).unwrap();
                w.write_all(bytes).unwrap();
            }
        }
    }
    w.finish().unwrap();
}

pub const NS: &str = "https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd";

/// A course structure around `body` (objectives, blocks and AUs).
pub fn structure(course_id: &str, title: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<courseStructure xmlns="{NS}">
  <course id="{course_id}">
    <title><langstring lang="en-US">{title}</langstring><langstring lang="zh-CN">课程 {title}</langstring></title>
    <description><langstring lang="en-US">A course for tests.</langstring></description>
  </course>
{body}
</courseStructure>
"#
    )
}

/// One AU element.
pub fn au(id: &str, title: &str, url: &str, attrs: &str) -> String {
    format!(
        r#"  <au id="{id}" {attrs}>
    <title><langstring lang="en-US">{title}</langstring></title>
    <description><langstring lang="en-US">About {title}.</langstring></description>
    <url>{url}</url>
  </au>"#
    )
}

/// Zips the tree at `dir` (the repository's authored test packages) to `out`,
/// with `replace` applied to `edit`'s text first: (file, from, to).
pub fn zip_tree(dir: &Path, out: &Path, edits: &[(&str, &str, &str)]) {
    let mut files = Vec::new();
    collect(dir, dir, &mut files);
    files.sort();
    let mut contents: Vec<(String, Vec<u8>)> = Vec::new();
    for rel in files {
        let mut bytes = std::fs::read(dir.join(&rel)).unwrap();
        for (file, from, to) in edits {
            if *file == rel {
                let text = String::from_utf8(bytes).unwrap();
                assert!(text.contains(from), "{file} lacks {from:?}");
                bytes = text.replace(from, to).into_bytes();
            }
        }
        contents.push((rel, bytes));
    }
    let refs: Vec<(&str, &[u8])> = contents.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    zip(out, &refs);
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

/// The authored test packages' directory (`package/tests/data`).
pub fn data_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}
