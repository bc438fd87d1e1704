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
