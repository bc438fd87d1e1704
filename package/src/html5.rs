//! Plain HTML5 apps (Kolibri's kind): a zip with `index.html` at its root
//! and whatever assets it loads. Nothing in it talks to an LMS; the node
//! records that it was opened.

use crate::course::{Course, Kind, LangMap, Node, Unit, UnitKind};
use crate::{ImportError, Options, valid_id};

pub const START_FILE: &str = "index.html";

/// The course of an HTML5 app whose start page is `page`.
pub fn course(package: &str, page: &[u8], options: &Options) -> Result<Course, ImportError> {
    let title = match options.title {
        Some(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => page_title(page).ok_or_else(|| {
            ImportError::file(package, START_FILE, "has no <title>; give the course a title (--title)")
        })?,
    };
    let id = course_id(package, options.id)?;
    Ok(Course {
        format: crate::course::COURSE_FORMAT,
        kind: Kind::Html5,
        publisher_id: format!("urn:lms:html5:{id}"),
        id,
        title: LangMap::from([(String::new(), title.clone())]),
        description: LangMap::new(),
        source: package.to_string(),
        source_sha256: String::new(),
        objectives: Vec::new(),
        children: vec![Node::Unit(0)],
        aus: Vec::new(),
        units: vec![Unit {
            index: 0,
            id: START_FILE.into(),
            title: LangMap::from([(String::new(), title)]),
            kind: UnitKind::Page,
            href: START_FILE.into(),
            mastery_score: None,
            completion_threshold: None,
            data_from_lms: None,
            blocks: Vec::new(),
        }],
    })
}

/// The id given, or one made from the package's file name.
pub(crate) fn course_id(package: &str, given: Option<&str>) -> Result<String, ImportError> {
    match given {
        Some(id) if valid_id(id) => Ok(id.to_string()),
        Some(id) => Err(ImportError {
            value: Some(id.to_string()),
            ..ImportError::package(package, "the course id must be 1-64 of a-z, 0-9 and -")
        }),
        None => {
            let stem = package.rsplit_once('.').map(|(s, _)| s).unwrap_or(package);
            Ok(crate::id_from_iri(stem))
        }
    }
}

/// The text of the page's `<title>`, whitespace collapsed, the five XML
/// entities decoded; `None` when it has none (or an empty one).
fn page_title(page: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&page[..page.len().min(64 * 1024)]);
    let lower = text.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let raw: String = text[start..end].split_whitespace().collect::<Vec<_>>().join(" ");
    let decoded = raw
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let decoded: String = decoded.chars().take(200).collect();
    (!decoded.is_empty()).then_some(decoded)
}

#[cfg(test)]
mod tests {
    #[test]
    fn titles_from_pages() {
        let t = |s: &str| super::page_title(s.as_bytes());
        assert_eq!(t("<html><head><TITLE>\n  Fractions &amp; you </TITLE>"), Some("Fractions & you".into()));
        assert_eq!(t("<title>分数</title>"), Some("分数".into()));
        assert_eq!(t("<title> </title>"), None);
        assert_eq!(t("<p>no title"), None);
    }
}
