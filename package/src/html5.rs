//! Plain HTML5 apps (Kolibri's kind): a zip with `index.html` at its root
//! and whatever assets it loads. Nothing in it talks to an LMS; the node
//! records that it was opened.

use crate::course::{Course, Kind, UnitKind};
use crate::{ImportError, Options};

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
    Ok(Course::single(package, Kind::Html5, id, title, (UnitKind::Page, START_FILE.into())))
}

/// The id given, or one made from the package's file name.
pub(crate) fn course_id(package: &str, given: Option<&str>) -> Result<String, ImportError> {
    crate::course_id(package, given, || {
        let stem = package.rsplit_once('.').map(|(s, _)| s).unwrap_or(package);
        crate::id_from_iri(stem)
    })
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
