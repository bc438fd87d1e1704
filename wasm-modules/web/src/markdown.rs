//! Lesson bodies: CommonMark rendered to HTML with pulldown-cmark. A course
//! is written by a content team, not by the node's developers, so raw HTML in
//! a body is shown as text, links and images keep only safe schemes, and
//! headings start below the page's own `h1`.

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd, html};

fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    match lower.split_once(':') {
        // A scheme before any '/', '?' or '#' is a scheme; only these.
        Some((scheme, _)) if !scheme.contains(['/', '?', '#']) => {
            matches!(scheme, "http" | "https" | "mailto")
        }
        _ => true,
    }
}

fn lower(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H2,
        HeadingLevel::H2 => HeadingLevel::H3,
        HeadingLevel::H3 => HeadingLevel::H4,
        HeadingLevel::H4 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
}

/// The HTML of a lesson body.
pub fn render(body: &str) -> String {
    let parser = Parser::new_ext(body, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(|e| match e {
        Event::Html(t) | Event::InlineHtml(t) => Event::Text(t),
        Event::Start(Tag::Heading { level, id, classes, attrs }) => {
            Event::Start(Tag::Heading { level: lower(level), id, classes, attrs })
        }
        Event::End(TagEnd::Heading(level)) => Event::End(TagEnd::Heading(lower(level))),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) if !safe_url(&dest_url) => {
            Event::Start(Tag::Link { link_type, dest_url: CowStr::Borrowed("#"), title, id })
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) if !safe_url(&dest_url) => {
            Event::Start(Tag::Image { link_type, dest_url: CowStr::Borrowed(""), title, id })
        }
        other => other,
    });
    let mut out = String::with_capacity(body.len() * 5 / 4 + 64);
    html::push_html(&mut out, parser);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_headings_and_no_raw_html() {
        let out = render("# Part\n\nOne <script>alert(1)</script> two.\n\n<img src=x onerror=y>\n\nThree");
        assert!(out.contains("<h2>Part</h2>") && out.contains("<p>Three</p>"), "{out}");
        assert!(!out.contains("<script") && !out.contains("<img"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
    }

    #[test]
    fn only_safe_link_schemes() {
        let out =
            render("[a](javascript:alert(1)) [b](https://example.org/x) [c](../c) ![d](data:image/png;base64,xx)");
        assert!(!out.contains("javascript:") && !out.contains("data:"), "{out}");
        assert!(out.contains(r#"href="https://example.org/x""#) && out.contains(r#"href="../c""#), "{out}");
        assert!(out.contains(r##"href="#""##), "{out}");
    }
}
