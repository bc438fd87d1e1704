//! xAPI 2.0 (IEEE 9274.1.1) statement validation: structure, types, key case,
//! nulls, UUIDs, IRIs, mailto, language tags, timestamps, durations, scores,
//! and the one-identifier rule for agents. Every error names the field path
//! (for example `actor.mbox` or `context.contextActivities.parent[0].id`).

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

type R<T = ()> = Result<T, Invalid>;

fn err<T>(field: &str, message: impl Into<String>) -> R<T> {
    Err(Invalid { field: field.to_string(), message: message.into() })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn object<'a>(v: &'a Value, path: &str) -> R<&'a Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        Value::Null => err(path, "must not be null"),
        _ => err(path, "must be an object"),
    }
}

/// Rejects keys outside `allowed` (keys are case-sensitive) and null values.
fn keys(m: &Map<String, Value>, path: &str, allowed: &[&str]) -> R {
    for (k, v) in m {
        if !allowed.contains(&k.as_str()) {
            let hint = allowed
                .iter()
                .find(|a| a.eq_ignore_ascii_case(k))
                .map(|a| format!(" (did you mean {a:?}? keys are case-sensitive)"))
                .unwrap_or_default();
            return err(&join(path, k), format!("unknown property{hint}"));
        }
        if v.is_null() {
            return err(&join(path, k), "must not be null");
        }
    }
    Ok(())
}

fn string<'a>(v: &'a Value, path: &str) -> R<&'a str> {
    v.as_str().map_or_else(|| err(path, "must be a string"), Ok)
}

fn boolean(v: &Value, path: &str) -> R {
    if v.is_boolean() { Ok(()) } else { err(path, "must be true or false") }
}

fn number(v: &Value, path: &str) -> R<f64> {
    v.as_f64().map_or_else(|| err(path, "must be a number"), Ok)
}

/// An absolute IRI: a scheme, a colon, no spaces.
pub fn is_iri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    let mut cs = scheme.chars();
    cs.next().is_some_and(|c| c.is_ascii_alphabetic())
        && cs.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !s.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`')
        })
}

fn iri(v: &Value, path: &str) -> R {
    let s = string(v, path)?;
    if is_iri(s) { Ok(()) } else { err(path, format!("{s:?} is not an absolute IRI")) }
}

pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn uuid(v: &Value, path: &str) -> R {
    let s = string(v, path)?;
    if is_uuid(s) { Ok(()) } else { err(path, format!("{s:?} is not a UUID")) }
}

/// RFC 5646 shape: a 2-8 letter primary subtag, then 1-8 alphanumeric subtags.
pub fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or_default();
    (2..=8).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn language_map(v: &Value, path: &str) -> R {
    for (k, val) in object(v, path)? {
        let p = join(path, k);
        if !is_language_tag(k) {
            return err(&p, format!("{k:?} is not a language tag"));
        }
        string(val, &p)?;
    }
    Ok(())
}

/// An ISO 8601 timestamp with a time zone (RFC 3339 profile).
pub fn parse_timestamp(s: &str) -> Option<time::OffsetDateTime> {
    if s.ends_with("-00:00") {
        return None; // xAPI forbids the "unknown offset" form
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

fn timestamp(v: &Value, path: &str) -> R {
    let s = string(v, path)?;
    if parse_timestamp(s).is_some() {
        Ok(())
    } else {
        err(path, format!("{s:?} is not an ISO 8601 timestamp with a time zone"))
    }
}

/// ISO 8601 duration: `P[nY][nM][nW][nD][T[nH][nM][n[.n]S]]`, at least one part.
pub fn is_duration(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('P') else { return false };
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    fn parts(s: &str, units: &str, allow_fraction_on: char) -> Option<usize> {
        let mut n = 0;
        let mut num = String::new();
        let mut last = 0usize;
        for c in s.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let pos = units.find(c)?;
                if num.is_empty()
                    || pos < last
                    || (num.contains('.') && c != allow_fraction_on)
                    || num.parse::<f64>().is_err()
                {
                    return None;
                }
                last = pos + 1;
                num.clear();
                n += 1;
            }
        }
        num.is_empty().then_some(n)
    }
    let Some(d) = parts(date, "YMWD", 'D') else { return false };
    match time {
        None => d > 0,
        Some(t) => matches!(parts(t, "HMS", 'S'), Some(n) if n > 0),
    }
}

fn extensions(v: &Value, path: &str) -> R {
    for k in object(v, path)?.keys() {
        if !is_iri(k) {
            return err(&join(path, k), "extension keys must be IRIs");
        }
    }
    Ok(())
}

const IFIS: [&str; 4] = ["mbox", "mbox_sha1sum", "openid", "account"];

fn ifi_count(m: &Map<String, Value>) -> usize {
    IFIS.iter().filter(|k| m.contains_key(**k)).count()
}

fn check_ifis(m: &Map<String, Value>, path: &str) -> R {
    if let Some(v) = m.get("mbox") {
        let p = join(path, "mbox");
        let s = string(v, &p)?;
        let ok = s.strip_prefix("mailto:").is_some_and(|a| {
            a.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !a.contains(char::is_whitespace))
        });
        if !ok {
            return err(&p, format!("{s:?} is not a mailto: IRI with an address"));
        }
    }
    if let Some(v) = m.get("mbox_sha1sum") {
        let p = join(path, "mbox_sha1sum");
        let s = string(v, &p)?;
        if s.len() != 40 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
            return err(&p, "must be 40 hex digits (SHA-1)");
        }
    }
    if let Some(v) = m.get("openid") {
        iri(v, &join(path, "openid"))?;
    }
    if let Some(v) = m.get("account") {
        let p = join(path, "account");
        let a = object(v, &p)?;
        keys(a, &p, &["homePage", "name"])?;
        iri(
            a.get("homePage").ok_or_else(|| Invalid { field: join(&p, "homePage"), message: "is required".into() })?,
            &join(&p, "homePage"),
        )?;
        string(
            a.get("name").ok_or_else(|| Invalid { field: join(&p, "name"), message: "is required".into() })?,
            &join(&p, "name"),
        )?;
    }
    Ok(())
}

pub fn agent(v: &Value, path: &str) -> R {
    let m = object(v, path)?;
    keys(m, path, &["objectType", "name", "mbox", "mbox_sha1sum", "openid", "account"])?;
    if let Some(t) = m.get("objectType")
        && string(t, &join(path, "objectType"))? != "Agent"
    {
        return err(&join(path, "objectType"), "must be \"Agent\"");
    }
    if let Some(n) = m.get("name") {
        string(n, &join(path, "name"))?;
    }
    if ifi_count(m) != 1 {
        return err(path, "an Agent must have exactly one of mbox, mbox_sha1sum, openid, account");
    }
    check_ifis(m, path)
}

pub fn group(v: &Value, path: &str) -> R {
    let m = object(v, path)?;
    keys(m, path, &["objectType", "name", "member", "mbox", "mbox_sha1sum", "openid", "account"])?;
    if string(m.get("objectType").unwrap_or(&Value::Null), &join(path, "objectType"))? != "Group" {
        return err(&join(path, "objectType"), "must be \"Group\"");
    }
    if let Some(n) = m.get("name") {
        string(n, &join(path, "name"))?;
    }
    let ifis = ifi_count(m);
    if ifis > 1 {
        return err(path, "a Group has at most one of mbox, mbox_sha1sum, openid, account");
    }
    check_ifis(m, path)?;
    match m.get("member") {
        Some(Value::Array(members)) => {
            if ifis == 0 && members.is_empty() {
                return err(&join(path, "member"), "an anonymous Group must list its members");
            }
            for (i, a) in members.iter().enumerate() {
                agent(a, &format!("{path}.member[{i}]"))?;
            }
        }
        Some(_) => return err(&join(path, "member"), "must be an array of Agents"),
        None if ifis == 0 => return err(&join(path, "member"), "an anonymous Group must list its members"),
        None => {}
    }
    Ok(())
}

pub fn actor(v: &Value, path: &str) -> R {
    if v.get("objectType").and_then(Value::as_str) == Some("Group") { group(v, path) } else { agent(v, path) }
}

fn verb(v: &Value, path: &str) -> R {
    let m = object(v, path)?;
    keys(m, path, &["id", "display"])?;
    iri(
        m.get("id").ok_or_else(|| Invalid { field: join(path, "id"), message: "is required".into() })?,
        &join(path, "id"),
    )?;
    if let Some(d) = m.get("display") {
        language_map(d, &join(path, "display"))?;
    }
    Ok(())
}

const INTERACTION_TYPES: [&str; 10] = [
    "true-false",
    "choice",
    "fill-in",
    "long-fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
    "other",
];

fn definition(v: &Value, path: &str) -> R {
    let m = object(v, path)?;
    keys(
        m,
        path,
        &[
            "name",
            "description",
            "type",
            "moreInfo",
            "extensions",
            "interactionType",
            "correctResponsesPattern",
            "choices",
            "scale",
            "source",
            "target",
            "steps",
        ],
    )?;
    for (k, val) in m {
        let p = join(path, k);
        match k.as_str() {
            "name" | "description" => language_map(val, &p)?,
            "type" | "moreInfo" => iri(val, &p)?,
            "extensions" => extensions(val, &p)?,
            "interactionType" => {
                let t = string(val, &p)?;
                if !INTERACTION_TYPES.contains(&t) {
                    return err(&p, format!("{t:?} is not an interaction type"));
                }
            }
            "correctResponsesPattern" => {
                let arr = val.as_array().map_or_else(|| err(&p, "must be an array of strings"), Ok)?;
                for (i, s) in arr.iter().enumerate() {
                    string(s, &format!("{p}[{i}]"))?;
                }
            }
            _ => {
                let arr = val.as_array().map_or_else(|| err(&p, "must be an array"), Ok)?;
                for (i, c) in arr.iter().enumerate() {
                    let cp = format!("{p}[{i}]");
                    let cm = object(c, &cp)?;
                    keys(cm, &cp, &["id", "description"])?;
                    string(cm.get("id").unwrap_or(&Value::Null), &join(&cp, "id"))?;
                    if let Some(d) = cm.get("description") {
                        language_map(d, &join(&cp, "description"))?;
                    }
                }
            }
        }
    }
    if m.keys().any(|k| ["choices", "scale", "source", "target", "steps"].contains(&k.as_str()))
        && !m.contains_key("interactionType")
    {
        return err(&join(path, "interactionType"), "is required with interaction components");
    }
    Ok(())
}

fn activity(v: &Value, path: &str) -> R {
    let m = object(v, path)?;
    keys(m, path, &["objectType", "id", "definition"])?;
    if let Some(t) = m.get("objectType")
        && string(t, &join(path, "objectType"))? != "Activity"
    {
        return err(&join(path, "objectType"), "must be \"Activity\"");
    }
    iri(
        m.get("id").ok_or_else(|| Invalid { field: join(path, "id"), message: "is required".into() })?,
        &join(path, "id"),
    )?;
    if let Some(d) = m.get("definition") {
        definition(d, &join(path, "definition"))?;
    }
    Ok(())
}

fn statement_ref(v: &Value, path: &str) -> R {
    let m = object(v, path)?;
    keys(m, path, &["objectType", "id"])?;
    if m.get("objectType").and_then(Value::as_str) != Some("StatementRef") {
        return err(&join(path, "objectType"), "must be \"StatementRef\"");
    }
    uuid(m.get("id").unwrap_or(&Value::Null), &join(path, "id"))
}

fn object_of(v: &Value, path: &str, in_sub: bool) -> R {
    let t = match v.get("objectType") {
        None => "Activity",
        Some(t) => string(t, &join(path, "objectType"))?,
    };
    match t {
        "Activity" => activity(v, path),
        "Agent" => agent(v, path),
        "Group" => group(v, path),
        "StatementRef" => statement_ref(v, path),
        "SubStatement" if in_sub => err(&join(path, "objectType"), "a SubStatement cannot contain a SubStatement"),
        "SubStatement" => statement_body(v, path, true),
        other => err(&join(path, "objectType"), format!("{other:?} is not an object type")),
    }
}

fn result(v: &Value, path: &str) -> R {
    let m = object(v, path)?;
    keys(m, path, &["score", "success", "completion", "response", "duration", "extensions"])?;
    if let Some(s) = m.get("score") {
        let p = join(path, "score");
        let sm = object(s, &p)?;
        keys(sm, &p, &["scaled", "raw", "min", "max"])?;
        let get = |k: &str| sm.get(k).map(|v| number(v, &join(&p, k))).transpose();
        let (scaled, raw, min, max) = (get("scaled")?, get("raw")?, get("min")?, get("max")?);
        if let Some(s) = scaled
            && !(-1.0..=1.0).contains(&s)
        {
            return err(&join(&p, "scaled"), "must be between -1 and 1");
        }
        if let (Some(lo), Some(hi)) = (min, max)
            && lo >= hi
        {
            return err(&join(&p, "max"), "must be greater than min");
        }
        if let Some(r) = raw
            && (min.is_some_and(|lo| r < lo) || max.is_some_and(|hi| r > hi))
        {
            return err(&join(&p, "raw"), "must lie between min and max");
        }
    }
    for k in ["success", "completion"] {
        if let Some(b) = m.get(k) {
            boolean(b, &join(path, k))?;
        }
    }
    if let Some(r) = m.get("response") {
        string(r, &join(path, "response"))?;
    }
    if let Some(d) = m.get("duration") {
        let p = join(path, "duration");
        if !is_duration(string(d, &p)?) {
            return err(&p, "is not an ISO 8601 duration");
        }
    }
    if let Some(e) = m.get("extensions") {
        extensions(e, &join(path, "extensions"))?;
    }
    Ok(())
}

fn context(v: &Value, path: &str, object_is_activity: bool) -> R {
    let m = object(v, path)?;
    keys(
        m,
        path,
        &[
            "registration",
            "instructor",
            "team",
            "contextActivities",
            "contextAgents",
            "contextGroups",
            "revision",
            "platform",
            "language",
            "statement",
            "extensions",
        ],
    )?;
    for (k, val) in m {
        let p = join(path, k);
        match k.as_str() {
            "registration" => uuid(val, &p)?,
            "instructor" => actor(val, &p)?,
            "team" => group(val, &p)?,
            "contextActivities" => {
                let ca = object(val, &p)?;
                keys(ca, &p, &["parent", "grouping", "category", "other"])?;
                for (ck, cv) in ca {
                    let cp = join(&p, ck);
                    match cv {
                        Value::Array(items) => {
                            for (i, a) in items.iter().enumerate() {
                                activity(a, &format!("{cp}[{i}]"))?;
                            }
                        }
                        _ => activity(cv, &cp)?,
                    }
                }
            }
            "contextAgents" | "contextGroups" => {
                let arr = val.as_array().map_or_else(|| err(&p, "must be an array"), Ok)?;
                let (tag, who) =
                    if k == "contextAgents" { ("contextAgent", "agent") } else { ("contextGroup", "group") };
                for (i, item) in arr.iter().enumerate() {
                    let ip = format!("{p}[{i}]");
                    let im = object(item, &ip)?;
                    keys(im, &ip, &["objectType", who, "relevantTypes"])?;
                    if im.get("objectType").and_then(Value::as_str) != Some(tag) {
                        return err(&join(&ip, "objectType"), format!("must be {tag:?}"));
                    }
                    let target = im.get(who).unwrap_or(&Value::Null);
                    if who == "agent" {
                        agent(target, &join(&ip, who))?
                    } else {
                        group(target, &join(&ip, who))?
                    }
                    if let Some(rt) = im.get("relevantTypes") {
                        let rp = join(&ip, "relevantTypes");
                        let arr = rt
                            .as_array()
                            .filter(|a| !a.is_empty())
                            .map_or_else(|| err(&rp, "must be a non-empty array of IRIs"), Ok)?;
                        for (j, t) in arr.iter().enumerate() {
                            iri(t, &format!("{rp}[{j}]"))?;
                        }
                    }
                }
            }
            "revision" | "platform" => {
                string(val, &p)?;
                if !object_is_activity {
                    return err(&p, "is only allowed when the object is an Activity");
                }
            }
            "language" => {
                if !is_language_tag(string(val, &p)?) {
                    return err(&p, "is not a language tag");
                }
            }
            "statement" => statement_ref(val, &p)?,
            _ => extensions(val, &p)?,
        }
    }
    Ok(())
}

fn attachments(v: &Value, path: &str) -> R {
    let arr = v.as_array().map_or_else(|| err(path, "must be an array"), Ok)?;
    for (i, a) in arr.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let m = object(a, &p)?;
        keys(m, &p, &["usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"])?;
        for req in ["usageType", "display", "contentType", "length", "sha2"] {
            if !m.contains_key(req) {
                return err(&join(&p, req), "is required");
            }
        }
        iri(&m["usageType"], &join(&p, "usageType"))?;
        language_map(&m["display"], &join(&p, "display"))?;
        if let Some(d) = m.get("description") {
            language_map(d, &join(&p, "description"))?;
        }
        string(&m["contentType"], &join(&p, "contentType"))?;
        if !m["length"].is_u64() {
            return err(&join(&p, "length"), "must be a non-negative integer");
        }
        string(&m["sha2"], &join(&p, "sha2"))?;
        if let Some(u) = m.get("fileUrl") {
            iri(u, &join(&p, "fileUrl"))?;
        }
    }
    Ok(())
}

fn statement_body(v: &Value, path: &str, sub: bool) -> R {
    let m = object(v, path)?;
    if sub {
        keys(m, path, &["objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments"])?;
    } else {
        keys(
            m,
            path,
            &[
                "id",
                "actor",
                "verb",
                "object",
                "result",
                "context",
                "timestamp",
                "stored",
                "authority",
                "version",
                "attachments",
            ],
        )?;
    }
    for req in ["actor", "verb", "object"] {
        if !m.contains_key(req) {
            return err(&join(path, req), "is required");
        }
    }
    if let Some(id) = m.get("id") {
        uuid(id, &join(path, "id"))?;
    }
    actor(&m["actor"], &join(path, "actor"))?;
    verb(&m["verb"], &join(path, "verb"))?;
    object_of(&m["object"], &join(path, "object"), sub)?;
    if let Some(r) = m.get("result") {
        result(r, &join(path, "result"))?;
    }
    if let Some(c) = m.get("context") {
        let object_is_activity = m["object"].get("objectType").is_none_or(|t| t == "Activity");
        context(c, &join(path, "context"), object_is_activity)?;
    }
    for k in ["timestamp", "stored"] {
        if let Some(t) = m.get(k) {
            timestamp(t, &join(path, k))?;
        }
    }
    if let Some(a) = m.get("authority") {
        actor(a, &join(path, "authority"))?;
    }
    if let Some(ver) = m.get("version") {
        let p = join(path, "version");
        let s = string(ver, &p)?;
        if !(s.starts_with("1.0") || s.starts_with("2.0")) {
            return err(&p, format!("{s:?} is not a supported xAPI version (1.0.x or 2.0.x)"));
        }
    }
    if let Some(a) = m.get("attachments") {
        attachments(a, &join(path, "attachments"))?;
    }
    if m["verb"]["id"] == super::VERB_VOIDED
        && m["object"].get("objectType").and_then(Value::as_str) != Some("StatementRef")
    {
        return err(&join(path, "object"), "a voiding statement's object must be a StatementRef");
    }
    Ok(())
}

/// Validates one statement; `path` prefixes field names (e.g. `[3]` in a batch).
pub fn statement(v: &Value, path: &str) -> R {
    statement_body(v, path, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa0",
            "actor": {"objectType": "Agent", "name": "Ann", "mbox": "mailto:ann@example.org"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
            "object": {"id": "https://lms.example.org/a/1", "definition": {"name": {"en": "One"}, "interactionType": "choice", "choices": [{"id": "a"}]}},
            "result": {"score": {"scaled": 0.5, "raw": 5, "min": 0, "max": 10}, "success": true, "duration": "PT1M30.5S"},
            "context": {"registration": "ec531277-b57b-4c15-8d91-d292c5b2b8f7", "contextActivities": {"parent": {"id": "https://x/p"}}, "language": "en-GB", "platform": "x"},
            "timestamp": "2026-01-02T03:04:05.678Z"
        })
    }

    fn field_of(mut f: impl FnMut(&mut Value)) -> String {
        let mut s = good();
        f(&mut s);
        statement(&s, "").unwrap_err().field
    }

    #[test]
    fn accepts_a_full_statement() {
        statement(&good(), "").unwrap();
    }

    #[test]
    fn rejections_name_the_field() {
        assert_eq!(field_of(|s| s["actor"]["mbox"] = json!("ann@example.org")), "actor.mbox");
        assert_eq!(field_of(|s| s["actor"]["openid"] = json!("https://id")), "actor");
        assert_eq!(
            field_of(|s| {
                s["actor"].as_object_mut().unwrap().remove("mbox");
            }),
            "actor"
        );
        assert_eq!(field_of(|s| s["id"] = json!("not-a-uuid")), "id");
        assert_eq!(field_of(|s| s["verb"]["id"] = json!("completed")), "verb.id");
        assert_eq!(field_of(|s| s["verb"]["display"] = json!({"english!": "x"})), "verb.display.english!");
        assert_eq!(field_of(|s| s["result"]["score"]["scaled"] = json!(1.5)), "result.score.scaled");
        assert_eq!(field_of(|s| s["result"]["score"]["raw"] = json!(11)), "result.score.raw");
        assert_eq!(field_of(|s| s["result"]["success"] = json!("yes")), "result.success");
        assert_eq!(field_of(|s| s["result"]["duration"] = json!("90 seconds")), "result.duration");
        assert_eq!(field_of(|s| s["timestamp"] = json!("yesterday")), "timestamp");
        assert_eq!(field_of(|s| s["timestamp"] = json!("2026-01-02T03:04:05-00:00")), "timestamp");
        assert_eq!(field_of(|s| s["Actor"] = json!({})), "Actor");
        assert_eq!(field_of(|s| s["result"]["response"] = Value::Null), "result.response");
        assert_eq!(field_of(|s| s["context"]["registration"] = json!(5)), "context.registration");
        assert_eq!(field_of(|s| s["context"]["language"] = json!("e")), "context.language");
        assert_eq!(
            field_of(|s| s["context"]["contextActivities"]["parent"] = json!([{"id": "x y"}])),
            "context.contextActivities.parent[0].id"
        );
        assert_eq!(field_of(|s| s["object"]["objectType"] = json!("Thing")), "object.objectType");
        assert_eq!(
            field_of(|s| s["object"]["definition"]["interactionType"] = json!("essay")),
            "object.definition.interactionType"
        );
        assert_eq!(field_of(|s| s["version"] = json!("0.9")), "version");
        assert_eq!(
            field_of(|s| {
                s.as_object_mut().unwrap().remove("verb");
            }),
            "verb"
        );
        assert_eq!(field_of(|s| s["actor"] = json!({"objectType": "Group", "member": []})), "actor.member");
        assert_eq!(field_of(|s| s["actor"]["mbox_sha1sum"] = json!("abc")), "actor");
        assert_eq!(field_of(|s| s["actor"] = json!({"account": {"homePage": "https://x"}})), "actor.account.name");
    }

    #[test]
    fn case_hint_for_wrong_key_case() {
        let mut s = good();
        s["Verb"] = s["verb"].take();
        s.as_object_mut().unwrap().remove("verb");
        let e = statement(&s, "").unwrap_err();
        assert!(e.message.contains("case-sensitive"), "{e}");
    }

    #[test]
    fn voiding_needs_a_statement_ref() {
        let mut s = good();
        s["verb"]["id"] = json!(super::super::VERB_VOIDED);
        assert_eq!(statement(&s, "").unwrap_err().field, "object");
        s["object"] = json!({"objectType": "StatementRef", "id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa0"});
        s.as_object_mut().unwrap().remove("context");
        statement(&s, "").unwrap();
    }

    #[test]
    fn substatement_rules() {
        let mut s = good();
        let inner = json!({"objectType": "SubStatement", "actor": {"mbox": "mailto:b@x.org"}, "verb": {"id": "https://v"}, "object": {"id": "https://o"}});
        s["object"] = inner.clone();
        s.as_object_mut().unwrap().remove("context");
        statement(&s, "").unwrap();
        let mut nested = inner.clone();
        nested["object"] = inner;
        s["object"] = nested;
        assert_eq!(statement(&s, "").unwrap_err().field, "object.object.objectType");
    }

    #[test]
    fn durations_and_tags() {
        for d in ["PT1H", "P1D", "P1Y2M3W4DT5H6M7.5S", "PT0S"] {
            assert!(is_duration(d), "{d}");
        }
        for d in ["P", "PT", "P1H", "PT1.5M", "1D", "PT1S1M"] {
            assert!(!is_duration(d), "{d}");
        }
        assert!(
            is_language_tag("en-US")
                && is_language_tag("zh-Hant-TW")
                && !is_language_tag("e")
                && !is_language_tag("en_US")
        );
    }
}
