//! The pages' messages: one Fluent file per language (`i18n/*.ftl`), all
//! with the same message ids (the self-test refuses a module where not).

use fluent_bundle::FluentArgs;
use fluent_bundle::{FluentBundle, FluentResource};

/// Languages with a translation file; the first is the fallback.
pub const LANGUAGES: [(&str, &str); 2] =
    [("zh-CN", include_str!("../i18n/zh-CN.ftl")), ("en", include_str!("../i18n/en.ftl"))];

/// One language's messages.
pub struct Messages {
    pub lang: &'static str,
    bundle: FluentBundle<FluentResource>,
}

impl Messages {
    /// The messages of `lang`, or of the first language when there is none.
    pub fn new(lang: Option<&str>) -> Messages {
        let (code, text) = LANGUAGES.iter().find(|(c, _)| Some(*c) == lang).copied().unwrap_or(LANGUAGES[0]);
        let id = code.parse().expect("a valid language tag");
        let mut bundle = FluentBundle::new(vec![id]);
        // No Unicode isolation marks: the pages are single-direction.
        bundle.set_use_isolating(false);
        let resource = FluentResource::try_new(text.to_string()).unwrap_or_else(|(r, _)| r);
        let _ = bundle.add_resource(resource);
        Messages { lang: code, bundle }
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
        let Some(pattern) = self.bundle.get_message(key).and_then(|m| m.value()) else { return key.to_string() };
        let mut errors = Vec::new();
        self.bundle.format_pattern(pattern, args, &mut errors).into_owned()
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
        if have != reference {
            let missing: Vec<_> = reference.iter().filter(|k| !have.contains(k)).collect();
            let extra: Vec<_> = have.iter().filter(|k| !reference.contains(k)).collect();
            return Err(format!("i18n/{code}.ftl differs from i18n/en.ftl: missing {missing:?}, extra {extra:?}"));
        }
        checks.push(format!("i18n {code}"));
    }
    Ok(checks)
}

/// A whole percent of a 0..=1 fraction, for display.
pub fn percent(scaled: f64) -> String {
    format!("{}", (scaled * 100.0).round() as i64)
}
