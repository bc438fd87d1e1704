//! lms-package: the content teams' packages in, course structures out.
//!
//! Where it sits: the release side (`lms-image content add`) and the node
//! (a package added by an admin) both read a package through [`read`], which
//! checks it against its standard and returns a [`Course`] (the structure
//! the node serves and launches) plus the package's files, still unread in
//! their archive. [`pack::add`] then writes courses into a content pack
//! directory, all of them or none.
//!
//! Formats: cmi5 (a zip with `cmi5.xml` at its root, Zip32 or Zip64, or a
//! standalone `cmi5.xml` whose URLs are all absolute), SCORM 1.2 and 2004
//! (`imsmanifest.xml`), HTML5 apps (`index.html` and its assets), one video
//! (MP4, WebM) or PDF.
//!
//! What it must never do: write outside the directory it was given, follow
//! or create a link, trust a size a zip declares, or add part of a package.

// An ImportError names package, file, line, element and value: big, and
// made once per refused package, never on a hot path.
#![allow(clippy::result_large_err)]

pub mod archive;
pub mod cmi5;
pub mod course;
mod html5;
mod media;
pub mod pack;
pub mod scorm;
mod xml;

pub use course::Course;

use std::path::Path;

/// A refused package: which package, which file in it, where (line and
/// element), the offending value, and why. Printed on one line, e.g.
/// `course.zip: cmi5.xml:12: <au moveOn>: "Sometimes" is not one of ...`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{package}: {file}{}{}: {message}{}",
    line.map(|l| format!(":{l}")).unwrap_or_default(),
    element.as_ref().map(|e| format!(": <{e}>")).unwrap_or_default(),
    value.as_ref().map(|v| format!(" (found {v:?})")).unwrap_or_default())]
pub struct ImportError {
    /// The package as the user named it (its file name).
    pub package: String,
    /// The file inside the package (`cmi5.xml`), or the package itself.
    pub file: String,
    pub line: Option<u32>,
    /// The element, or `element attribute`.
    pub element: Option<String>,
    pub value: Option<String>,
    pub message: String,
}

impl ImportError {
    /// A problem with the package as a whole (not a file inside it).
    pub fn package(package: &str, message: impl Into<String>) -> ImportError {
        ImportError {
            package: package.to_string(),
            file: package.to_string(),
            line: None,
            element: None,
            value: None,
            message: message.into(),
        }
    }

    pub fn file(package: &str, file: &str, message: impl Into<String>) -> ImportError {
        ImportError { file: file.to_string(), ..ImportError::package(package, message) }
    }
}

/// Caps on what one package may make us read or write. A zip states sizes
/// it may lie about: these are counted as the bytes come, not believed.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The package file as received.
    pub max_package_bytes: u64,
    /// Entries in its archive.
    pub max_entries: usize,
    /// One file after decompression (a video, say).
    pub max_file_bytes: u64,
    /// Everything the archive unpacks to.
    pub max_total_bytes: u64,
    /// Unpacked bytes per packed byte beyond the first MiB of a file: real
    /// media does not compress 100:1, zip bombs do.
    pub max_ratio: u64,
    /// The course structure document (`cmi5.xml`).
    pub max_structure_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_package_bytes: 8 << 30,
            max_entries: 50_000,
            max_file_bytes: 4 << 30,
            max_total_bytes: 8 << 30,
            max_ratio: 100,
            max_structure_bytes: 16 << 20,
        }
    }
}

/// A package that passed every check: its course and where its files are.
pub struct Package {
    pub course: Course,
    pub files: Files,
}

/// Where a package's files come from.
pub enum Files {
    /// A standalone course structure: its AUs all live elsewhere.
    None,
    /// The zip it came in.
    Zip(archive::Archive),
    /// One file (a video or PDF), stored under `name`.
    Single { path: std::path::PathBuf, name: String },
}

/// What the caller may decide about a package.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options<'a> {
    /// The course id in the pack (default: made from the package's own id,
    /// or its file name).
    pub id: Option<&'a str>,
    /// The title, for kinds that carry none (a video, a PDF, an HTML5 app
    /// without a `<title>`).
    pub title: Option<&'a str>,
}

/// Reads and checks the package at `path`, whichever kind it is: a zip
/// with `cmi5.xml` (cmi5), `imsmanifest.xml` (SCORM 1.2 or 2004) or
/// `index.html` (HTML5) at its root; a standalone `cmi5.xml`; a video
/// (MP4, WebM) or PDF.
pub fn read(path: &Path, options: &Options, limits: &Limits) -> Result<Package, ImportError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    let head = sniff(path).map_err(|e| ImportError::package(&name, e))?;
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        let mut zip = archive::Archive::open(path, &name, limits)?;
        let course = if zip.has(cmi5::STRUCTURE_FILE) {
            let xml = zip.read_small(cmi5::STRUCTURE_FILE, limits.max_structure_bytes)?;
            cmi5::parse(&name, &xml, Some(&zip), options.id)?
        } else if zip.has(scorm::MANIFEST_FILE) {
            let xml = zip.read_small(scorm::MANIFEST_FILE, limits.max_structure_bytes)?;
            scorm::parse(&name, &xml, &zip, options.id)?
        } else if zip.has(html5::START_FILE) {
            let page = zip.read_small(html5::START_FILE, limits.max_structure_bytes)?;
            html5::course(&name, &page, options)?
        } else {
            return Err(ImportError::package(
                &name,
                "a zip with none of cmi5.xml (cmi5), imsmanifest.xml (SCORM) or index.html (HTML5) at its root",
            ));
        };
        return finish(course, path, &name, Files::Zip(zip));
    }
    let size = std::fs::metadata(path).map_err(|e| ImportError::package(&name, e.to_string()))?.len();
    if let Some(kind) = media::kind(&name, &head) {
        if size > limits.max_file_bytes {
            return Err(ImportError::package(
                &name,
                format!("{size} bytes, over the {}-byte limit for one file", limits.max_file_bytes),
            ));
        }
        let course = media::course(&name, kind, options)?;
        let stored = course.units[0].href.clone();
        return finish(course, path, &name, Files::Single { path: path.to_path_buf(), name: stored });
    }
    if looks_like_xml(&head) {
        if size > limits.max_structure_bytes {
            return Err(ImportError::package(
                &name,
                format!("{size} bytes, over the {}-byte limit for a course structure", limits.max_structure_bytes),
            ));
        }
        let xml = std::fs::read(path).map_err(|e| ImportError::package(&name, e.to_string()))?;
        let course = cmi5::parse(&name, &xml, None, options.id)?;
        return finish(course, path, &name, Files::None);
    }
    Err(ImportError::package(&name, "not a zip, an XML course structure, a video (MP4, WebM) or a PDF"))
}

fn finish(mut course: Course, path: &Path, name: &str, files: Files) -> Result<Package, ImportError> {
    course.source_sha256 = sha256_file(path).map_err(|e| ImportError::package(name, e))?;
    Ok(Package { course, files })
}

fn looks_like_xml(head: &[u8]) -> bool {
    let head = head.strip_prefix("\u{feff}".as_bytes()).unwrap_or(head);
    head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

fn sniff(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    if !f.metadata().map_err(|e| e.to_string())?.is_file() {
        return Err("not a regular file".into());
    }
    let mut head = vec![0; 64];
    let n = f.read(&mut head).map_err(|e| e.to_string())?;
    head.truncate(n);
    Ok(head)
}

/// sha256 hex, as bundles and packs name files by it.
pub use lms_bundle::{sha256_file, sha256_hex};
/// A course id as the pack and the node's URLs use it (1-64 of `a-z`,
/// `0-9`, `-`): native courses' rule.
pub use lms_content::valid_id;

/// The course id `given` when it is one, else the one `derived` makes.
pub(crate) fn course_id(
    package: &str,
    given: Option<&str>,
    derived: impl FnOnce() -> String,
) -> Result<String, ImportError> {
    match given {
        Some(id) if valid_id(id) => Ok(id.to_string()),
        Some(id) => Err(ImportError {
            value: Some(id.to_string()),
            ..ImportError::package(package, "the course id must be 1-64 of a-z, 0-9 and -")
        }),
        None => Ok(derived()),
    }
}

/// A course id made from an IRI: its last path segment, lowercased, other
/// characters as `-`; the IRI's hash when nothing usable remains.
pub fn id_from_iri(iri: &str) -> String {
    let tail = iri.trim_end_matches('/').rsplit(['/', ':', '#', '?', '=']).next().unwrap_or_default();
    let mut id = String::new();
    for c in tail.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            id.push(c);
        } else if !id.ends_with('-') && !id.is_empty() {
            id.push('-');
        }
    }
    let id = id.trim_end_matches('-');
    let id: String = id.chars().take(48).collect();
    if id.len() >= 3 {
        id.trim_end_matches('-').to_string()
    } else {
        format!("course-{}", &sha256_hex(iri.as_bytes())[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_iris() {
        assert_eq!(id_from_iri("https://example.org/courses/Intro_Geology/"), "intro-geology");
        assert_eq!(id_from_iri("urn:uuid:0F1E2D3C-aaaa"), "0f1e2d3c-aaaa");
        assert!(id_from_iri("https://example.org/课程").starts_with("course-"));
        for iri in ["https://x.org/a", "https://x.org/汉字/é/", "urn:x:"] {
            assert!(valid_id(&id_from_iri(iri)), "{iri}: {}", id_from_iri(iri));
        }
    }

    #[test]
    fn errors_name_package_file_line_element_and_value() {
        let e = ImportError {
            line: Some(12),
            element: Some("au moveOn".into()),
            value: Some("Sometimes".into()),
            ..ImportError::file("course.zip", "cmi5.xml", "not one of NotApplicable, Passed")
        };
        assert_eq!(
            e.to_string(),
            r#"course.zip: cmi5.xml:12: <au moveOn>: not one of NotApplicable, Passed (found "Sometimes")"#
        );
    }
}

/// Test support shared by the crates that import packages: zips and
/// course structures made on the spot.
#[cfg(any(test, feature = "testing"))]
pub mod testing;
