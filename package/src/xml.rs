//! What the XML-based formats (cmi5.xml, imsmanifest.xml) share: reading
//! the bytes as a document, and errors that name the line and element.

use crate::ImportError;
use roxmltree::Node;

/// The document's text: UTF-8, without a byte order mark.
pub(crate) fn text<'b>(package: &str, file: &str, bytes: &'b [u8]) -> Result<&'b str, ImportError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ImportError::file(package, file, format!("not UTF-8 text at byte offset {}", e.valid_up_to())))?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Parses `text`; roxmltree refuses DTDs by default, so a package cannot
/// make us expand entities.
pub(crate) fn document<'t>(package: &str, file: &str, text: &'t str) -> Result<roxmltree::Document<'t>, ImportError> {
    roxmltree::Document::parse(text).map_err(|e| ImportError {
        line: Some(e.pos().row),
        ..ImportError::file(package, file, format!("not well-formed XML: {e}"))
    })
}

/// Where errors in one document point.
#[derive(Clone, Copy)]
pub(crate) struct Src<'a, 'd> {
    pub package: &'a str,
    pub file: &'a str,
    pub doc: &'a roxmltree::Document<'d>,
}

impl Src<'_, '_> {
    /// The line of `n`. roxmltree counts lines from the start of the text,
    /// so this is for errors only: callers keep byte offsets ([`Node::range`])
    /// and turn them into lines when they report.
    pub fn line(&self, n: Node) -> u32 {
        self.line_at(n.range().start)
    }

    pub fn line_at(&self, offset: usize) -> u32 {
        self.doc.text_pos_at(offset).row
    }

    /// An error at element `n` (and its attribute `attr`), naming `value`.
    pub fn err(&self, n: Node, attr: Option<&str>, value: Option<&str>, message: impl Into<String>) -> ImportError {
        let element = match attr {
            Some(a) => format!("{} {a}", n.tag_name().name()),
            None => n.tag_name().name().to_string(),
        };
        ImportError {
            line: Some(self.line(n)),
            element: Some(element),
            value: value.map(str::to_string),
            ..ImportError::file(self.package, self.file, message)
        }
    }
}

/// xs:decimal: an optional sign, digits, an optional fraction; no exponent.
pub(crate) fn decimal(v: &str) -> Option<f64> {
    let body = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    (!(int.is_empty() && frac.is_empty()) && digits(int) && digits(frac)).then(|| v.parse().ok()).flatten()
}
