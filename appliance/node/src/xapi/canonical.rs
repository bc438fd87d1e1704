//! `format=canonical` (xAPI Communication 2.1.3, "Language Filtering
//! Requirements for Canonical Format Statements"): every language map in a
//! statement keeps one entry, chosen for that map by the request's
//! `Accept-Language` (RFC 2616 section 14.4, applied per map).

use serde_json::{Map, Value};

/// The languages a request's Accept-Language accepts, best first (`q=0`
/// left out, the first 20 ranges read); also the pages' language choice.
pub fn accepted(header: Option<&str>) -> Vec<String> {
    let mut tags: Vec<(f32, usize, String)> = header
        .unwrap_or("")
        .split(',')
        .take(20)
        .enumerate()
        .filter_map(|(i, part)| {
            let mut it = part.split(';');
            let tag = it.next()?.trim().to_ascii_lowercase();
            let q = it.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.parse().ok()).unwrap_or(1.0);
            (!tag.is_empty() && q > 0.0).then_some((q, i, tag))
        })
        .collect();
    tags.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    tags.into_iter().map(|(_, _, t)| t).collect()
}

/// The statement (JSON text) with each language map cut to one entry.
pub fn format(body: &str, accepted: &[String]) -> String {
    let Ok(mut s) = serde_json::from_str::<Value>(body) else { return body.to_string() };
    statement(&mut s, accepted);
    s.to_string()
}

fn statement(s: &mut Value, accepted: &[String]) {
    one(s.pointer_mut("/verb/display"), accepted);
    object(s.get_mut("object"), accepted);
    if s.pointer("/object/objectType").and_then(Value::as_str) == Some("SubStatement") {
        one(s.pointer_mut("/object/verb/display"), accepted);
        object(s.pointer_mut("/object/object"), accepted);
        context(s.pointer_mut("/object/context"), accepted);
    }
    context(s.get_mut("context"), accepted);
    for a in s.get_mut("attachments").and_then(Value::as_array_mut).into_iter().flatten() {
        one(a.get_mut("display"), accepted);
        one(a.get_mut("description"), accepted);
    }
}

fn context(c: Option<&mut Value>, accepted: &[String]) {
    let Some(ca) = c.and_then(|c| c.get_mut("contextActivities")).and_then(Value::as_object_mut) else { return };
    for list in ca.values_mut() {
        match list {
            Value::Array(items) => items.iter_mut().for_each(|a| object(Some(a), accepted)),
            one => object(Some(one), accepted),
        }
    }
}

/// An Activity's definition: name, description and interaction components.
fn object(o: Option<&mut Value>, accepted: &[String]) {
    let Some(d) = o.and_then(|o| o.get_mut("definition")) else { return };
    one(d.get_mut("name"), accepted);
    one(d.get_mut("description"), accepted);
    for list in ["choices", "scale", "source", "target", "steps"] {
        for c in d.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
            one(c.get_mut("description"), accepted);
        }
    }
}

/// Keeps the one entry of a language map that `accepted` prefers: an exact
/// tag, else a tag the entry's is a prefix of or that is a prefix of it;
/// with `*` or no acceptable tag, the first entry.
fn one(map: Option<&mut Value>, accepted: &[String]) {
    let Some(m) = map.and_then(Value::as_object_mut) else { return };
    if m.len() <= 1 {
        return;
    }
    if let Some(k) = pick(m, accepted).cloned() {
        m.retain(|existing, _| *existing == k);
    }
}

fn pick<'a>(m: &'a Map<String, Value>, accepted: &[String]) -> Option<&'a String> {
    for tag in accepted {
        if tag == "*" {
            break;
        }
        let exact = m.keys().find(|k| k.eq_ignore_ascii_case(tag));
        let related = || {
            m.keys().find(|k| {
                let k = k.to_ascii_lowercase();
                k.starts_with(&format!("{tag}-")) || tag.starts_with(&format!("{k}-"))
            })
        };
        if let Some(k) = exact.or_else(related) {
            return Some(k);
        }
    }
    m.keys().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_map_keeps_the_best_accepted_language() {
        let s = json!({
            "verb": {"id": "https://v", "display": {"en-US": "passed", "zh-CN": "通过", "de": "bestanden"}},
            "object": {"id": "https://a", "definition": {
                "name": {"en-GB": "Fractions", "zh-CN": "分数"},
                "description": {"de": "Brüche", "fr": "Fractions"},
                "choices": [{"id": "a", "description": {"en": "one", "zh": "一"}}]}},
            "context": {"contextActivities": {"parent": [{"id": "https://c", "definition": {"name": {"en": "C", "zh-CN": "课"}}}]}}
        });
        let out: Value =
            serde_json::from_str(&format(&s.to_string(), &accepted(Some("zh-CN;q=0.9, en;q=0.8, *;q=0.1")))).unwrap();
        assert_eq!(out["verb"]["display"], json!({"zh-CN": "通过"}));
        assert_eq!(out["object"]["definition"]["name"], json!({"zh-CN": "分数"}));
        // No accepted language: one entry all the same.
        assert_eq!(out["object"]["definition"]["description"].as_object().unwrap().len(), 1);
        // "zh-CN" accepts the broader "zh".
        assert_eq!(out["object"]["definition"]["choices"][0]["description"], json!({"zh": "一"}));
        assert_eq!(out["context"]["contextActivities"]["parent"][0]["definition"]["name"], json!({"zh-CN": "课"}));
        let en: Value = serde_json::from_str(&format(&s.to_string(), &accepted(Some("en")))).unwrap();
        assert_eq!(en["verb"]["display"], json!({"en-US": "passed"}));
        assert!(en["object"]["definition"].get("extensions").is_none(), "nothing added");
        assert!(en.get("attachments").is_none() && en["verb"].get("id").is_some());
        assert_eq!(accepted(Some("fr;q=0, de, en;q=0.5")), vec!["de", "en"]);
    }
}
