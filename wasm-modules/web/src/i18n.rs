//! The pages' messages: one Fluent file per language (`i18n/*.ftl`), all
//! with the same message ids (the self-test refuses a module where not).

use fluent_bundle::FluentArgs;
use fluent_bundle::{FluentBundle, FluentResource};
use std::cell::RefCell;

/// Languages with a translation file; the first is the fallback.
pub const LANGUAGES: [(&str, &str); 2] =
    [("zh-CN", include_str!("../i18n/zh-CN.ftl")), ("en", include_str!("../i18n/en.ftl"))];

/// One language's messages.
///
/// Every page is rendered in a fresh module instance, so parsing a whole
/// translation file per request was most of a page's cost (24 of 29 us for
/// the course page, measured natively). Instead the file is split into its
/// entries (a message starts at a line beginning with its id; indented lines
/// continue it) and each message is parsed by Fluent the first time a page
/// asks for it. [`check`] refuses a file where this split and Fluent's own
/// parse disagree, so the split never changes what a message says.
pub struct Messages {
    pub lang: &'static str,
    entries: Vec<(&'static str, &'static str)>,
    bundle: RefCell<FluentBundle<FluentResource>>,
    loaded: RefCell<Vec<&'static str>>,
}

/// The entries of a translation file: each message's id and its source
/// (the id line and its indented continuation lines). Comments and blank
/// lines end an entry and belong to none.
pub fn entries(text: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    let mut open: Option<(&'static str, usize, usize)> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let end = at + line.len();
        let first = line.bytes().next().unwrap_or(b'\n');
        if first == b' ' && !line.trim().is_empty() {
            if let Some(o) = open.as_mut() {
                o.2 = end;
            }
        } else {
            if let Some((id, start, stop)) = open.take() {
                out.push((id, &text[start..stop]));
            }
            if first.is_ascii_alphabetic() || first == b'-' {
                let id = line.split('=').next().unwrap_or_default().trim();
                open = Some((id, at, end));
            }
        }
        at = end;
    }
    if let Some((id, start, stop)) = open {
        out.push((id, &text[start..stop]));
    }
    out
}

impl Messages {
    /// The messages of `lang`, or of the first language when there is none.
    pub fn new(lang: Option<&str>) -> Messages {
        let (code, text) = LANGUAGES.iter().find(|(c, _)| Some(*c) == lang).copied().unwrap_or(LANGUAGES[0]);
        let id = code.parse().expect("a valid language tag");
        let mut bundle = FluentBundle::new(vec![id]);
        // No Unicode isolation marks: the pages are single-direction.
        bundle.set_use_isolating(false);
        let entries = entries(text);
        // Terms (`-name = ...`) may be used by any message: load them all.
        for (id, src) in &entries {
            if id.starts_with('-') {
                let resource = FluentResource::try_new(src.to_string()).unwrap_or_else(|(r, _)| r);
                let _ = bundle.add_resource(resource);
            }
        }
        Messages { lang: code, entries, bundle: RefCell::new(bundle), loaded: RefCell::new(Vec::new()) }
    }

    /// The message `key`; the key itself when missing.
    pub fn get(&self, key: &str) -> String {
        self.format(key, None)
    }

    /// The message `key` with its variables.
    pub fn with(&self, key: &str, args: &[(&str, String)]) -> String {
        let mut a = FluentArgs::new();
        for (k, v) in args {
            a.set(*k, v.clone());
        }
        self.format(key, Some(&a))
    }

    fn format(&self, key: &str, args: Option<&FluentArgs>) -> String {
        if !self.loaded.borrow().contains(&key)
            && let Some((id, src)) = self.entries.iter().find(|(id, _)| *id == key)
        {
            let resource = FluentResource::try_new(src.to_string()).unwrap_or_else(|(r, _)| r);
            let _ = self.bundle.borrow_mut().add_resource(resource);
            self.loaded.borrow_mut().push(id);
        }
        let bundle = self.bundle.borrow();
        let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else { return key.to_string() };
        let mut errors = Vec::new();
        bundle.format_pattern(pattern, args, &mut errors).into_owned()
    }
}

/// The message ids of a translation file.
pub fn ids(text: &str) -> Vec<String> {
    let r = FluentResource::try_new(text.to_string()).unwrap_or_else(|(r, _)| r);
    let mut ids: Vec<String> = r
        .entries()
        .filter_map(|e| match e {
            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
            _ => None,
        })
        .collect();
    ids.sort();
    ids
}

/// Every language parses and has exactly the messages of `en`.
pub fn check() -> Result<Vec<String>, String> {
    let reference = ids(LANGUAGES[1].1);
    let mut checks = Vec::new();
    for (code, text) in LANGUAGES {
        if let Err((_, errs)) = FluentResource::try_new(text.to_string()) {
            return Err(format!("i18n/{code}.ftl: {errs:?}"));
        }
        let have = ids(text);
        let mut split: Vec<String> =
            entries(text).iter().filter(|(id, _)| !id.starts_with('-')).map(|(id, _)| id.to_string()).collect();
        split.sort();
        if split != have {
            return Err(format!("i18n/{code}.ftl: its entries split into {split:?}, Fluent reads {have:?}"));
        }
        if have != reference {
            let missing: Vec<_> = reference.iter().filter(|k| !have.contains(k)).collect();
            let extra: Vec<_> = have.iter().filter(|k| !reference.contains(k)).collect();
            return Err(format!("i18n/{code}.ftl differs from i18n/en.ftl: missing {missing:?}, extra {extra:?}"));
        }
        // Each message read alone says what it says in the whole file.
        let whole = FluentResource::try_new(text.to_string()).unwrap_or_else(|(r, _)| r);
        let mut bundle = FluentBundle::new(vec![code.parse().expect("a valid language tag")]);
        bundle.set_use_isolating(false);
        let _ = bundle.add_resource(&whole);
        let lazy = Messages::new(Some(code));
        for id in &have {
            let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else { continue };
            let full = bundle.format_pattern(pattern, None, &mut Vec::new()).into_owned();
            if lazy.get(id) != full {
                return Err(format!("i18n/{code}.ftl: message {id:?} reads differently alone: {:?}", lazy.get(id)));
            }
        }
        checks.push(format!("i18n {code}"));
    }
    Ok(checks)
}

/// A whole percent of a 0..=1 fraction, for display.
pub fn percent(scaled: f64) -> String {
    format!("{}", (scaled * 100.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_splits_into_its_messages() {
        let text = "# comment\nhello = Hello { $name }\nlong =\n    first line\n    second line\n\n-brand = Node\nabout = About { -brand }\n";
        let e = entries(text);
        let ids: Vec<_> = e.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, ["hello", "long", "-brand", "about"]);
        assert_eq!(e[1].1, "long =\n    first line\n    second line\n");
        assert_eq!(e[0].1, "hello = Hello { $name }\n");
    }

    #[test]
    fn messages_read_alone_match_the_whole_file() {
        // check() compares every message of both shipped files.
        assert_eq!(check().unwrap(), ["i18n zh-CN", "i18n en"]);
        let m = Messages::new(Some("en"));
        assert_eq!(m.with("welcome", &[("name", "Mei".into())]), "Welcome, Mei");
        assert_eq!(m.get("no-such-message"), "no-such-message");
    }
}
