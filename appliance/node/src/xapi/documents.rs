//! The three document resources (xAPI 2.0 Part Three §2.6 "Document
//! Resources"; 1.0.3 §7.4–7.6): State, Activity Profile and Agent Profile.
//! A document is bytes with a content type, addressed by its resource's
//! parameters and its id. This module holds what is the same for the three:
//! where a document lives ([`Place`]), the concurrency rules (ETag is the
//! SHA-1 hex of the stored bytes; `If-Match`, `If-None-Match`, and 409 for a
//! header-less PUT over an existing profile), the JSON merge of POST, and the
//! SQL. Writes run on the store's writer thread inside its group commit
//! ([`apply`]), so a 2xx means the document is fsynced, like a statement.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS documents (
    -- 'state', 'activity_profile' or 'agent_profile'
    kind         TEXT NOT NULL,
    -- activityId ('' for agent profiles)
    activity     TEXT NOT NULL,
    -- the agent's IFI key ('' for activity profiles)
    agent        TEXT NOT NULL,
    -- a state's registration, lower case ('' for none)
    registration TEXT NOT NULL,
    doc_id       TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body         BLOB NOT NULL,
    etag         TEXT NOT NULL,
    updated      TEXT NOT NULL,
    PRIMARY KEY (kind, activity, agent, registration, doc_id)
) WITHOUT ROWID;
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    State,
    ActivityProfile,
    AgentProfile,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::State => "state",
            Kind::ActivityProfile => "activity_profile",
            Kind::AgentProfile => "agent_profile",
        }
    }

    /// The name of the id parameter: `stateId` or `profileId`.
    pub fn id_param(self) -> &'static str {
        match self {
            Kind::State => "stateId",
            _ => "profileId",
        }
    }
}

/// The documents of one activity and/or agent (and registration), already
/// checked: the resource's parameters other than the document's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub kind: Kind,
    pub activity: String,
    /// IFI key (see [`super::ifi_key`]).
    pub agent: String,
    /// States only. For one document, `None` is the document stored without
    /// a registration; for a list or a delete-all, `None` means any.
    pub registration: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Document {
    pub content_type: String,
    pub body: Vec<u8>,
    /// SHA-1 hex of `body`, unquoted.
    pub etag: String,
    /// When it was last written, in the store's `stored` form.
    pub updated: String,
}

/// The SHA-1 hex of a document's bytes: its ETag (without the quotes).
pub fn etag_of(body: &[u8]) -> String {
    hex::encode(Sha1::digest(body))
}

/// Whether a content type is JSON's (parameters such as charset ignored).
pub fn is_json(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json")
}

#[derive(Debug, Clone)]
pub enum Change {
    /// PUT: the document becomes these bytes.
    Put {
        content_type: String,
        body: Vec<u8>,
    },
    /// POST: a JSON object merged into the stored one, top-level keys of the
    /// new one winning (or stored as is when there is none).
    Merge {
        body: Map<String, Value>,
    },
    Delete,
    /// DELETE without an id: every document of the place.
    DeleteAll,
}

/// The request's concurrency headers. Each list holds ETags without quotes,
/// or `*`.
#[derive(Debug, Clone, Default)]
pub struct Precondition {
    pub if_match: Option<Vec<String>>,
    pub if_none_match: Option<Vec<String>>,
    /// Profiles: a PUT over an existing document without either header is
    /// refused (409), so one client cannot blindly overwrite another's.
    /// States accept such writes, as the standard and real content need.
    pub required_to_replace: bool,
}

#[derive(Debug, Clone)]
pub struct Write {
    pub place: Place,
    /// `None` only for [`Change::DeleteAll`].
    pub id: Option<String>,
    pub change: Change,
    pub pre: Precondition,
    pub updated: String,
}

/// Why a document write changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// 412: If-Match / If-None-Match did not hold.
    #[error("{0}")]
    Precondition(String),
    /// 409: a PUT over an existing profile without a concurrency header.
    #[error("{0}")]
    NeedsPrecondition(String),
    /// 400: POST merge where a side is not a JSON object.
    #[error("{0}")]
    NotMergeable(String),
}

fn place_args(p: &Place) -> (&'static str, &str, &str, &str) {
    (p.kind.as_str(), &p.activity, &p.agent, p.registration.as_deref().unwrap_or(""))
}

/// One document, or `None`.
pub fn get(c: &Connection, place: &Place, id: &str) -> rusqlite::Result<Option<Document>> {
    let (kind, activity, agent, reg) = place_args(place);
    c.prepare_cached(
        "SELECT content_type, body, etag, updated FROM documents
         WHERE kind = ?1 AND activity = ?2 AND agent = ?3 AND registration = ?4 AND doc_id = ?5",
    )?
    .query_row(params![kind, activity, agent, reg, id], |r| {
        Ok(Document { content_type: r.get(0)?, body: r.get(1)?, etag: r.get(2)?, updated: r.get(3)? })
    })
    .optional()
}

/// The ids of a place's documents (updated after `since`, when given), and
/// the newest `updated` among them.
pub fn ids(c: &Connection, place: &Place, since: Option<&str>) -> rusqlite::Result<(Vec<String>, Option<String>)> {
    let (kind, activity, agent, _) = place_args(place);
    let mut st = c.prepare_cached(
        "SELECT doc_id, updated FROM documents
         WHERE kind = ?1 AND activity = ?2 AND agent = ?3 AND (?4 IS NULL OR registration = ?4)
           AND (?5 IS NULL OR updated > ?5)
         ORDER BY doc_id",
    )?;
    let rows = st.query_map(params![kind, activity, agent, place.registration, since], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let (mut out, mut newest): (Vec<String>, Option<String>) = (Vec::new(), None);
    for row in rows {
        let (id, updated) = row?;
        if newest.as_ref().is_none_or(|n| *n < updated) {
            newest = Some(updated);
        }
        out.push(id);
    }
    // A state's ids may repeat across registrations when none was named.
    out.dedup();
    Ok((out, newest))
}

fn holds(list: &[String], etag: &str) -> bool {
    list.iter().any(|t| t == "*" || t == etag)
}

/// Checks the preconditions against the stored document (None: there is none).
fn check(pre: &Precondition, current: Option<&str>, what: &str, replacing: bool) -> Result<(), Refused> {
    if let Some(list) = &pre.if_match
        && !current.is_some_and(|etag| holds(list, etag))
    {
        return Err(Refused::Precondition(match current {
            None => format!("If-Match: {what} does not exist"),
            Some(etag) => format!("If-Match: {what} has ETag \"{etag}\", not one of those given"),
        }));
    }
    if let Some(list) = &pre.if_none_match
        && let Some(etag) = current
        && holds(list, etag)
    {
        return Err(Refused::Precondition(format!("If-None-Match: {what} exists with ETag \"{etag}\"")));
    }
    if replacing
        && pre.required_to_replace
        && current.is_some()
        && pre.if_match.is_none()
        && pre.if_none_match.is_none()
    {
        return Err(Refused::NeedsPrecondition(format!(
            "{what} exists: send If-Match with its ETag (or If-None-Match: *) to say which version you replace"
        )));
    }
    Ok(())
}

/// Applies one write inside the writer's open transaction. `Ok(Err(..))`
/// changed nothing; `Err` is a database failure (the writer rolls back).
pub fn apply(c: &Connection, w: &Write) -> rusqlite::Result<Result<(), Refused>> {
    let (kind, activity, agent, reg) = place_args(&w.place);
    let Some(id) = w.id.as_deref() else {
        let mut del = c.prepare_cached(
            "DELETE FROM documents WHERE kind = ?1 AND activity = ?2 AND agent = ?3 AND (?4 IS NULL OR registration = ?4)",
        )?;
        del.execute(params![kind, activity, agent, w.place.registration])?;
        return Ok(Ok(()));
    };
    let current = get(c, &w.place, id)?;
    let what = format!("{} {id:?}", w.place.kind.id_param());
    let replacing = matches!(w.change, Change::Put { .. });
    if let Err(e) = check(&w.pre, current.as_ref().map(|d| d.etag.as_str()), &what, replacing) {
        return Ok(Err(e));
    }
    let (content_type, body) = match &w.change {
        Change::DeleteAll => unreachable!("handled above"),
        Change::Delete => {
            c.prepare_cached(
                "DELETE FROM documents
                 WHERE kind = ?1 AND activity = ?2 AND agent = ?3 AND registration = ?4 AND doc_id = ?5",
            )?
            .execute(params![kind, activity, agent, reg, id])?;
            return Ok(Ok(()));
        }
        Change::Put { content_type, body } => (content_type.clone(), body.clone()),
        Change::Merge { body } => match merged(current.as_ref(), body, &what) {
            Ok(v) => ("application/json".to_string(), v),
            Err(e) => return Ok(Err(e)),
        },
    };
    let etag = etag_of(&body);
    c.prepare_cached(
        "INSERT INTO documents (kind, activity, agent, registration, doc_id, content_type, body, etag, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (kind, activity, agent, registration, doc_id)
         DO UPDATE SET content_type = excluded.content_type, body = excluded.body,
                       etag = excluded.etag, updated = excluded.updated",
    )?
    .execute(params![kind, activity, agent, reg, id, content_type, body, etag, w.updated])?;
    Ok(Ok(()))
}

/// POST's merge: the stored JSON object with the new one's top-level keys
/// written over it. A stored document that is not a JSON object cannot be
/// merged into.
fn merged(current: Option<&Document>, new: &Map<String, Value>, what: &str) -> Result<Vec<u8>, Refused> {
    let Some(doc) = current else {
        return Ok(serde_json::to_vec(new).expect("json"));
    };
    let stored = is_json(&doc.content_type)
        .then(|| serde_json::from_slice::<Value>(&doc.body).ok())
        .flatten()
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        });
    let Some(mut stored) = stored else {
        return Err(Refused::NotMergeable(format!(
            "{what} is stored as {} that is not a JSON object: POST merges JSON objects only (PUT replaces it)",
            doc.content_type
        )));
    };
    for (k, v) in new {
        stored.insert(k.clone(), v.clone());
    }
    Ok(serde_json::to_vec(&stored).expect("json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        c
    }

    fn state(reg: Option<&str>) -> Place {
        Place {
            kind: Kind::State,
            activity: "https://a".into(),
            agent: "mbox:mailto:a@x.org".into(),
            registration: reg.map(str::to_string),
        }
    }

    fn write(place: Place, id: &str, change: Change, pre: Precondition) -> Write {
        Write { place, id: Some(id.into()), change, pre, updated: "2026-01-01T00:00:00.000000Z".into() }
    }

    fn put(body: &[u8], ct: &str) -> Change {
        Change::Put { content_type: ct.into(), body: body.to_vec() }
    }

    #[test]
    fn etag_is_the_sha1_of_the_bytes() {
        assert_eq!(etag_of(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn merge_overwrites_top_level_keys_and_refuses_non_json() {
        let c = db();
        let m = |v: Value| Change::Merge { body: v.as_object().unwrap().clone() };
        apply(&c, &write(state(None), "s", m(json!({"a": 1, "b": {"x": 1}})), Precondition::default()))
            .unwrap()
            .unwrap();
        apply(&c, &write(state(None), "s", m(json!({"b": {"y": 2}, "c": 3})), Precondition::default()))
            .unwrap()
            .unwrap();
        let d = get(&c, &state(None), "s").unwrap().unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&d.body).unwrap(), json!({"a": 1, "b": {"y": 2}, "c": 3}));
        assert_eq!(d.etag, etag_of(&d.body));

        apply(&c, &write(state(None), "bin", put(b"\x00\x01", "application/octet-stream"), Precondition::default()))
            .unwrap()
            .unwrap();
        let r = apply(&c, &write(state(None), "bin", m(json!({"a": 1})), Precondition::default())).unwrap();
        assert!(matches!(r, Err(Refused::NotMergeable(_))), "{r:?}");
        assert_eq!(get(&c, &state(None), "bin").unwrap().unwrap().body, b"\x00\x01");
    }

    #[test]
    fn preconditions_refuse_and_change_nothing() {
        let c = db();
        let profile =
            Place { kind: Kind::AgentProfile, activity: String::new(), agent: "x".into(), registration: None };
        let strict = Precondition { required_to_replace: true, ..Precondition::default() };
        apply(&c, &write(profile.clone(), "p", put(b"1", "text/plain"), strict.clone())).unwrap().unwrap();
        let etag = etag_of(b"1");
        // A blind PUT over an existing profile: 409.
        let r = apply(&c, &write(profile.clone(), "p", put(b"2", "text/plain"), strict.clone())).unwrap();
        assert!(matches!(r, Err(Refused::NeedsPrecondition(_))), "{r:?}");
        // A wrong If-Match, and If-None-Match: * over an existing one: 412.
        for pre in [
            Precondition { if_match: Some(vec!["beef".into()]), ..strict.clone() },
            Precondition { if_none_match: Some(vec!["*".into()]), ..strict.clone() },
        ] {
            let r = apply(&c, &write(profile.clone(), "p", put(b"2", "text/plain"), pre)).unwrap();
            assert!(matches!(r, Err(Refused::Precondition(_))), "{r:?}");
        }
        assert_eq!(get(&c, &profile, "p").unwrap().unwrap().body, b"1");
        // The right If-Match replaces it.
        let pre = Precondition { if_match: Some(vec![etag]), ..strict };
        apply(&c, &write(profile.clone(), "p", put(b"2", "text/plain"), pre)).unwrap().unwrap();
        assert_eq!(get(&c, &profile, "p").unwrap().unwrap().body, b"2");
        // States take blind writes.
        apply(&c, &write(state(None), "s", put(b"1", "text/plain"), Precondition::default())).unwrap().unwrap();
        apply(&c, &write(state(None), "s", put(b"2", "text/plain"), Precondition::default())).unwrap().unwrap();
    }

    #[test]
    fn registrations_keep_states_apart_and_delete_all_spans_them() {
        let c = db();
        let reg = "fd41c918-b88b-4b20-a0a5-a4c32391aaa0";
        apply(&c, &write(state(None), "s", put(b"none", "text/plain"), Precondition::default())).unwrap().unwrap();
        apply(&c, &write(state(Some(reg)), "s", put(b"reg", "text/plain"), Precondition::default())).unwrap().unwrap();
        apply(&c, &write(state(Some(reg)), "t", put(b"reg", "text/plain"), Precondition::default())).unwrap().unwrap();
        assert_eq!(get(&c, &state(None), "s").unwrap().unwrap().body, b"none");
        assert_eq!(get(&c, &state(Some(reg)), "s").unwrap().unwrap().body, b"reg");
        assert_eq!(ids(&c, &state(Some(reg)), None).unwrap().0, ["s", "t"]);
        assert_eq!(ids(&c, &state(None), None).unwrap().0, ["s", "t"]);
        assert_eq!(ids(&c, &state(None), Some("2026-01-01T00:00:00.000000Z")).unwrap().0, Vec::<String>::new());
        let all = Write {
            id: None,
            change: Change::DeleteAll,
            ..write(state(None), "", Change::Delete, Precondition::default())
        };
        apply(&c, &all).unwrap().unwrap();
        assert!(ids(&c, &state(None), None).unwrap().0.is_empty());
    }
}
