//! The xAPI 2.0 statement resource: validation, preparation for storage and
//! the SQLite store with group commit. HTTP handling is in `http::xapi`.

pub mod attachments;
pub mod canonical;
pub mod documents;
pub mod keys;
pub mod query;
pub mod store;
pub mod validate;
mod writer;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub const XAPI_VERSION: &str = "2.0.0";
pub const VERB_VOIDED: &str = "http://adlnet.gov/expapi/verbs/voided";

/// A validated statement with the columns the store indexes.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub id: String,
    /// SHA-256 of the statement as received (minus the fields the LRS sets),
    /// to tell a repeat of the same statement from a conflicting one.
    pub fingerprint: [u8; 32],
    pub actor: String,
    pub verb: String,
    pub voiding_target: Option<String>,
    /// The statement a StatementRef Object targets (lower case).
    pub statement_ref: Option<String>,
    /// What the Statement resource's filters find it by ([`keys`]).
    pub keys: keys::Keys,
    /// IFI key of the credential storing it.
    pub authority: String,
    /// May void statements other credentials stored (scope `all`); set by
    /// the caller, false from [`prepare`].
    pub void_any: bool,
    pub stored: String,
    /// The statement as it will be returned, JSON text.
    pub body: String,
    /// The attachment bytes the request carried for it (set by the caller
    /// after matching the parts, empty from [`prepare`]).
    pub attachments: Vec<attachments::Part>,
    /// Store it only when this query finds nothing at commit time (set by
    /// the caller for `Response::once`, `None` from [`prepare`]): the writer
    /// checks it in the transaction that would insert, so two requests at
    /// the same moment cannot both store it.
    pub unless_found: Option<Box<query::Query>>,
}

/// The inverse-functional identifier of an Agent or identified Group, as one
/// comparable string. `None` for an anonymous Group.
pub fn ifi_key(agent: &Value) -> Option<String> {
    if let Some(m) = agent.get("mbox").and_then(Value::as_str) {
        return Some(format!("mbox:{}", m.to_ascii_lowercase()));
    }
    if let Some(s) = agent.get("mbox_sha1sum").and_then(Value::as_str) {
        return Some(format!("sha1:{}", s.to_ascii_lowercase()));
    }
    if let Some(o) = agent.get("openid").and_then(Value::as_str) {
        return Some(format!("openid:{o}"));
    }
    let a = agent.get("account")?;
    Some(format!("account:{}|{}", a.get("homePage")?.as_str()?, a.get("name")?.as_str()?))
}

/// A stored statement cut down to what the progress module reads (the ABI's
/// `statements`): id, verb id, the object's id, type and definition type,
/// the result's completion, success, score and duration, the context's
/// registration and contextActivities (ids only), timestamp and stored.
/// Extensions, responses, display maps and attachments are left out, so a
/// statement's size there does not depend on what a content package put in it.
pub fn for_progress(body: &str) -> Option<Value> {
    let s: Value = serde_json::from_str(body).ok()?;
    let pick = |v: &Value, keys: &[&str]| -> Value {
        let mut m = Map::new();
        for k in keys {
            if let Some(x) = v.get(*k) {
                m.insert((*k).to_string(), x.clone());
            }
        }
        Value::Object(m)
    };
    let mut out = pick(&s, &["id", "timestamp", "stored"]);
    out["verb"] = pick(&s["verb"], &["id"]);
    let mut object = pick(&s["object"], &["id", "objectType"]);
    if let Some(t) = s["object"]["definition"].get("type") {
        object["definition"] = serde_json::json!({ "type": t });
    }
    out["object"] = object;
    if let Some(r) = s.get("result") {
        let mut result = pick(r, &["completion", "success", "duration"]);
        if let Some(score) = r.get("score") {
            result["score"] = pick(score, &["scaled", "raw", "min", "max"]);
        }
        out["result"] = result;
    }
    if let Some(c) = s.get("context") {
        let mut context = pick(c, &["registration"]);
        if let Some(Value::Object(groups)) = c.get("contextActivities") {
            let ids = groups
                .iter()
                .map(|(k, list)| {
                    let list = match list {
                        Value::Array(a) => a.iter().map(|a| pick(a, &["id"])).collect(),
                        one => vec![pick(one, &["id"])],
                    };
                    (k.clone(), Value::Array(list))
                })
                .collect();
            context["contextActivities"] = Value::Object(ids);
        }
        out["context"] = context;
    }
    Some(out)
}

/// UTC, microseconds, fixed width: sorts as text in time order.
pub fn format_stored(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Validates `v` and turns it into a [`Prepared`] statement: assigns an id
/// when there is none, sets `stored` and `authority`, `version` when it has
/// none (the default of the request's edition, `spec`), fills in a
/// missing `timestamp` with `stored`.
pub fn prepare(
    mut v: Value,
    path: &str,
    authority: &Value,
    now: time::OffsetDateTime,
    spec: validate::Spec,
) -> Result<Prepared, validate::Invalid> {
    validate::statement(&v, path, spec)?;
    let m: &mut Map<String, Value> = v.as_object_mut().expect("validated as object");
    if !m.contains_key("id") {
        m.insert("id".into(), Value::String(uuid::Uuid::new_v4().to_string()));
    }
    let fingerprint = {
        let mut received = m.clone();
        for k in ["stored", "authority", "version"] {
            received.remove(k);
        }
        // serde_json's Map is ordered by key, so this is a canonical form.
        Sha256::digest(serde_json::to_vec(&received).expect("json")).into()
    };
    let stored = format_stored(now);
    m.insert("stored".into(), Value::String(stored.clone()));
    m.entry("timestamp").or_insert_with(|| Value::String(stored.clone()));
    m.insert("authority".into(), authority.clone());
    m.entry("version").or_insert_with(|| Value::String(spec.statement_default().into()));
    let id = m["id"].as_str().expect("validated").to_ascii_lowercase();
    m.insert("id".into(), Value::String(id.clone()));
    let object = &m["object"];
    let object_type = object.get("objectType").and_then(Value::as_str).unwrap_or("Activity");
    let verb = m["verb"]["id"].as_str().expect("validated").to_string();
    let statement_ref =
        (object_type == "StatementRef").then(|| object["id"].as_str().map(str::to_ascii_lowercase)).flatten();
    let voiding_target = if verb == VERB_VOIDED { statement_ref.clone() } else { None };
    let actor = ifi_key(&m["actor"]).unwrap_or_default();
    Ok(Prepared {
        id,
        fingerprint,
        keys: keys::of(&v),
        actor,
        verb,
        voiding_target,
        statement_ref,
        authority: ifi_key(authority).unwrap_or_default(),
        void_any: false,
        stored,
        body: serde_json::to_string(&v).expect("json"),
        attachments: Vec::new(),
        unless_found: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn authority() -> Value {
        json!({"objectType": "Agent", "account": {"homePage": "https://node", "name": "kiosk"}})
    }

    #[test]
    fn prepare_fills_lrs_fields_and_indexes() {
        let now = time::macros::datetime!(2026-03-04 05:06:07.123456 UTC);
        let p = prepare(
            json!({"actor": {"mbox": "mailto:Ann@X.org"}, "verb": {"id": "https://v"}, "object": {"id": "https://a"}}),
            "",
            &authority(),
            now,
            validate::Spec::V2,
        )
        .unwrap();
        assert_eq!(p.stored, "2026-03-04T05:06:07.123456Z");
        assert_eq!(p.actor, "mbox:mailto:ann@x.org");
        assert!(p.keys.contains(&(keys::ACTIVITY, "https://a".to_string())), "{:?}", p.keys);
        let body: Value = serde_json::from_str(&p.body).unwrap();
        assert_eq!(body["timestamp"], body["stored"]);
        assert_eq!(body["version"], XAPI_VERSION);
        assert_eq!(body["authority"], authority());
        assert!(validate::is_uuid(body["id"].as_str().unwrap()));
    }

    #[test]
    fn fingerprint_ignores_lrs_fields_but_not_content() {
        let now = time::OffsetDateTime::now_utc();
        let s = json!({"id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa0", "actor": {"mbox": "mailto:a@x.org"}, "verb": {"id": "https://v"}, "object": {"id": "https://a"}});
        let a = prepare(s.clone(), "", &authority(), now, validate::Spec::V2).unwrap();
        let mut with_stored = s.clone();
        with_stored["stored"] = json!("2020-01-01T00:00:00Z");
        let b = prepare(with_stored, "", &json!({"mbox": "mailto:other@x.org"}), now, validate::Spec::V2).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        let mut changed = s;
        changed["object"]["id"] = json!("https://b");
        assert_ne!(a.fingerprint, prepare(changed, "", &authority(), now, validate::Spec::V2).unwrap().fingerprint);
    }
}
