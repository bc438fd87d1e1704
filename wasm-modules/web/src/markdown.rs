//! Lesson bodies: CommonMark rendered to HTML with pulldown-cmark. A course
//! is written by a content team, not by the node's developers, so raw HTML in
//! a body is shown as text, links and images keep only safe schemes, and
//! headings start below the page's own `h1`.
//!
//! The course's own media (`![alt](path)`, see `lms_content::media_refs`)
//! point at the URLs the node serves them at (the lesson document's
//! `media`); a video or audio file is shown as a `<video>` / `<audio>`
//! player named by its alt text, which is also its fallback.

use lms_content::MediaKind;
use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd, html};
use std::collections::BTreeMap;

/// A URL without a scheme, or with one of these.
fn safe_url(url: &str) -> bool {
    lms_content::url_scheme(url).is_none_or(|s| matches!(s.to_ascii_lowercase().as_str(), "http" | "https" | "mailto"))
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

/// The HTML of a lesson body whose media are served at `media` (path ->
/// URL); a relative image not there is dropped (its alt text stays).
pub fn render(body: &str, media: &BTreeMap<String, String>) -> String {
    let mut events: Vec<Event> = Vec::new();
    // A video or audio image becomes a player: its tag, its src and where
    // its opening tag goes once the alt text (its name) is known.
    let mut player: Option<(&'static str, String, usize)> = None;
    let parser = Parser::new_ext(body, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH);
    for e in parser {
        match e {
            Event::Html(t) | Event::InlineHtml(t) => events.push(Event::Text(t)),
            Event::Start(Tag::Heading { level, id, classes, attrs }) => {
                events.push(Event::Start(Tag::Heading { level: lower(level), id, classes, attrs }))
            }
            Event::End(TagEnd::Heading(level)) => events.push(Event::End(TagEnd::Heading(lower(level)))),
            Event::Start(Tag::Link { link_type, dest_url, title, id }) if !safe_url(&dest_url) => {
                events.push(Event::Start(Tag::Link { link_type, dest_url: CowStr::Borrowed("#"), title, id }))
            }
            Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
                let own = media.get(dest_url.trim());
                let kind = own.and_then(|_| lms_content::media_type(dest_url.trim())).map(|(_, k)| k);
                match (own, kind) {
                    (Some(url), Some(k @ (MediaKind::Video | MediaKind::Audio))) => {
                        let tag = if k == MediaKind::Video { "video" } else { "audio" };
                        player = Some((tag, escape_attr(url), events.len()));
                        events.push(Event::Html(CowStr::Borrowed("")));
                    }
                    (Some(url), _) => events.push(Event::Start(Tag::Image {
                        link_type,
                        dest_url: CowStr::from(url.clone()),
                        title,
                        id,
                    })),
                    (None, _) => {
                        // Not the course's own file: a URL with a safe scheme, or nothing.
                        let absolute = lms_content::url_scheme(&dest_url).is_some();
                        let dest = if absolute && safe_url(&dest_url) { dest_url } else { "".into() };
                        events.push(Event::Start(Tag::Image { link_type, dest_url: dest, title, id }))
                    }
                }
            }
            Event::End(TagEnd::Image) if player.is_some() => {
                let (tag, src, at) = player.take().expect("a player");
                let alt: String = events[at + 1..]
                    .iter()
                    .filter_map(|e| if let Event::Text(t) | Event::Code(t) = e { Some(t.as_ref()) } else { None })
                    .collect();
                let open =
                    format!("<{tag} controls preload=\"metadata\" src=\"{src}\" aria-label=\"{}\">", escape_attr(&alt));
                events[at] = Event::Html(CowStr::from(open));
                events.push(Event::Html(CowStr::from(format!("</{tag}>"))));
            }
            other => events.push(other),
        }
    }
    let mut out = String::with_capacity(body.len() * 5 / 4 + 64);
    html::push_html(&mut out, events.into_iter());
    out
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_headings_and_no_raw_html() {
        let out =
            render("# Part\n\nOne <script>alert(1)</script> two.\n\n<img src=x onerror=y>\n\nThree", &BTreeMap::new());
        assert!(out.contains("<h2>Part</h2>") && out.contains("<p>Three</p>"), "{out}");
        assert!(!out.contains("<script") && !out.contains("<img"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
    }

    #[test]
    fn only_safe_link_schemes() {
        let out = render(
            "[a](javascript:alert(1)) [b](https://example.org/x) [c](../c) ![d](data:image/png;base64,xx)",
            &BTreeMap::new(),
        );
        assert!(!out.contains("javascript:") && !out.contains("data:"), "{out}");
        assert!(out.contains(r#"href="https://example.org/x""#) && out.contains(r#"href="../c""#), "{out}");
        assert!(out.contains(r##"href="#""##), "{out}");
    }

    #[test]
    fn the_course_media_point_at_the_node_and_videos_are_players() {
        let media: BTreeMap<String, String> = [
            ("cycle.svg".to_string(), "/media/science/0123456789abcdef/cycle.svg".to_string()),
            ("rain.mp4".to_string(), "/media/science/fedcba9876543210/rain.mp4".to_string()),
            ("birds.mp3".to_string(), "/media/science/00112233445566aa/birds.mp3".to_string()),
        ]
        .into();
        let out = render(
            "![The water cycle](cycle.svg)\n\n![Rain on a \"window\" <b>](rain.mp4)\n\n![Birdsong](birds.mp3)\n\n![gone](missing.png)",
            &media,
        );
        assert!(out.contains(r#"<img src="/media/science/0123456789abcdef/cycle.svg" alt="The water cycle""#), "{out}");
        assert!(
            out.contains(r#"<video controls preload="metadata" src="/media/science/fedcba9876543210/rain.mp4" aria-label="Rain on a &quot;window&quot; &lt;b&gt;">"#),
            "{out}"
        );
        assert!(
            out.contains("&lt;b&gt;</video>") && !out.contains("<b>"),
            "the alt text is the fallback, as text: {out}"
        );
        assert!(out.contains(r#"<audio controls preload="metadata" src="/media/science/00112233445566aa/birds.mp3" aria-label="Birdsong">Birdsong</audio>"#), "{out}");
        assert!(out.contains(r#"<img src="" alt="gone""#), "a relative image the node does not serve: {out}");
    }
}
