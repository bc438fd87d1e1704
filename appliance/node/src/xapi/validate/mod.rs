//! Statement validation, split as the standard's Data part is (xAPI 2.0
//! Part Two §2.4; 1.0.3 §2.4): `actor`, `verb`, `object`, `result`,
//! `context`, `attachments`, and the value types they share (`values`).
//! Structure, types, key case, nulls, the one-identifier rule for agents;
//! where 1.0.3 and 2.0 differ the request's [`Spec`] decides. Every error
//! names the field path (for example `actor.mbox` or
//! `context.contextActivities.parent[0].id`).

mod actor;
mod attachments;
mod context;
mod object;
pub(crate) use object::INTERACTION_TYPES;
mod result;
mod values;
mod verb;

pub use actor::{actor, agent, group};
pub use attachments::{SIGNATURE_USAGE, is_sha2};
pub use values::{is_duration, is_iri, is_language_tag, is_uuid, parse_timestamp, parse_timestamp_in};

use serde_json::{Map, Value};

/// Which edition of the standard a request speaks (its
/// `X-Experience-API-Version`): 1.0.0-1.0.3, or 2.0.x (IEEE 9274.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    V1,
    V2,
}

impl Spec {
    /// The `version` a statement stored without one gets: 1.0.3 says
    /// "1.0.0", 2.0 says "2.0.0".
    pub fn statement_default(self) -> &'static str {
        match self {
            Spec::V1 => "1.0.0",
            Spec::V2 => super::XAPI_VERSION,
        }
    }
}

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

/// `m[key]`, or "is required" naming `path.key`.
fn required<'a>(m: &'a Map<String, Value>, path: &str, key: &str) -> R<&'a Value> {
    m.get(key).map_or_else(|| err(&join(path, key), "is required"), Ok)
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

fn statement_body(v: &Value, path: &str, sub: bool, spec: Spec) -> R {
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
        values::uuid(id, &join(path, "id"))?;
    }
    actor(&m["actor"], &join(path, "actor"))?;
    verb::verb(&m["verb"], &join(path, "verb"))?;
    object::object_of(&m["object"], &join(path, "object"), sub, spec)?;
    if let Some(r) = m.get("result") {
        result::result(r, &join(path, "result"))?;
    }
    if let Some(c) = m.get("context") {
        let object_is_activity = m["object"].get("objectType").is_none_or(|t| t == "Activity");
        context::context(c, &join(path, "context"), object_is_activity, spec)?;
    }
    for k in ["timestamp", "stored"] {
        if let Some(t) = m.get(k) {
            values::timestamp(t, &join(path, k), spec)?;
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
        attachments::attachments(a, &join(path, "attachments"))?;
    }
    if m["verb"]["id"] == super::VERB_VOIDED
        && m["object"].get("objectType").and_then(Value::as_str) != Some("StatementRef")
    {
        return err(&join(path, "object"), "a voiding statement's object must be a StatementRef");
    }
    Ok(())
}

/// Validates one statement; `path` prefixes field names (e.g. `[3]` in a batch).
pub fn statement(v: &Value, path: &str, spec: Spec) -> R {
    statement_body(v, path, false, spec)
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
        statement(&s, "", Spec::V2).unwrap_err().field
    }

    #[test]
    fn accepts_a_full_statement() {
        statement(&good(), "", Spec::V2).unwrap();
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
        let e = statement(&s, "", Spec::V2).unwrap_err();
        assert!(e.message.contains("case-sensitive"), "{e}");
    }

    #[test]
    fn voiding_needs_a_statement_ref() {
        let mut s = good();
        s["verb"]["id"] = json!(super::super::VERB_VOIDED);
        assert_eq!(statement(&s, "", Spec::V2).unwrap_err().field, "object");
        s["object"] = json!({"objectType": "StatementRef", "id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa0"});
        s.as_object_mut().unwrap().remove("context");
        statement(&s, "", Spec::V2).unwrap();
    }

    #[test]
    fn substatement_rules() {
        let mut s = good();
        let inner = json!({"objectType": "SubStatement", "actor": {"mbox": "mailto:b@x.org"}, "verb": {"id": "https://v"}, "object": {"id": "https://o"}});
        s["object"] = inner.clone();
        s.as_object_mut().unwrap().remove("context");
        statement(&s, "", Spec::V2).unwrap();
        let mut nested = inner.clone();
        nested["object"] = inner;
        s["object"] = nested;
        assert_eq!(statement(&s, "", Spec::V2).unwrap_err().field, "object.object.objectType");
    }

    #[test]
    fn the_request_edition_decides_where_1_0_3_and_2_0_differ() {
        let mut s = good();
        s["context"]["contextAgents"] = json!([{"objectType": "contextAgent", "agent": {"mbox": "mailto:t@x.org"}}]);
        statement(&s, "", Spec::V2).unwrap();
        let e = statement(&s, "", Spec::V1).unwrap_err();
        assert_eq!(e.field, "context.contextAgents");
        assert!(e.message.contains("2.0"), "{e}");

        let mut s = good();
        s["timestamp"] = json!("2026-01-02T03:04:05.678");
        statement(&s, "", Spec::V1).unwrap();
        let e = statement(&s, "", Spec::V2).unwrap_err();
        assert_eq!(e.field, "timestamp");
        assert!(e.message.contains("time zone"), "{e}");
    }

    #[test]
    fn attachment_metadata() {
        let mut s = good();
        let a = json!({"usageType": "https://u", "display": {"en": "x"}, "contentType": "text/plain", "length": 3,
            "sha2": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"});
        s["attachments"] = json!([a.clone()]);
        statement(&s, "", Spec::V2).unwrap();
        for (k, bad) in [("sha2", json!("abc")), ("contentType", json!("plain")), ("length", json!(-1))] {
            let mut s = s.clone();
            s["attachments"][0][k] = bad;
            assert_eq!(statement(&s, "", Spec::V2).unwrap_err().field, format!("attachments[0].{k}"));
        }
        let mut sig = a;
        sig["usageType"] = json!(SIGNATURE_USAGE);
        s["attachments"] = json!([sig]);
        assert_eq!(statement(&s, "", Spec::V2).unwrap_err().field, "attachments[0].contentType");
    }
}
