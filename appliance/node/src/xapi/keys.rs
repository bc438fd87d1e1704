//! What a stored statement is found by: the keys of the Statement
//! resource's filters (xAPI Communication 2.1.3, "Query Parameters"), one
//! row per key in one table, `statement_keys (kind, key, seq)`.
//!
//! - `agent` matches the Actor or an Agent/Group Object ([`AGENT`]);
//!   `related_agents=true` also Authority, Instructor, Team, context agents
//!   and groups and the same inside a SubStatement ([`RELATED_AGENT`]);
//! - `activity` matches an Activity Object ([`ACTIVITY`]);
//!   `related_activities=true` also the context activities and a
//!   SubStatement's ([`RELATED_ACTIVITY`]);
//! - `verb` ([`VERB`]) and `registration` ([`REGISTRATION`]).
//!
//! A statement whose Object is a StatementRef meets a filter when the
//! statement it targets does ("Filter Conditions for StatementRefs"): it
//! carries its target's keys beside its own, copied when it is stored, or
//! when the target arrives later ([`REFERS`] rows find the referrers). The
//! chain of targets is followed up to [`MAX_CHAIN`] deep. The node's own
//! reads (progress, the once-per-lesson check) leave referrers out
//! (`statement_ref IS NULL`).
//!
//! One table ordered by (kind, key, seq) replaces four secondary indexes:
//! a filtered page is a walk down one key's rows in sequence order.

use super::ifi_key;
use rusqlite::{Connection, params};
use serde_json::Value;
use std::collections::BTreeSet;

/// The id of the statement a StatementRef targets (lower case).
pub const REFERS: i64 = 0;
pub const AGENT: i64 = 1;
pub const RELATED_AGENT: i64 = 2;
pub const VERB: i64 = 3;
pub const ACTIVITY: i64 = 4;
pub const RELATED_ACTIVITY: i64 = 5;
pub const REGISTRATION: i64 = 6;

/// How far a chain of StatementRefs passes its keys on.
pub const MAX_CHAIN: usize = 8;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS statement_keys (
    kind INTEGER NOT NULL,
    key  TEXT NOT NULL,
    seq  INTEGER NOT NULL,
    PRIMARY KEY (kind, key, seq)
) WITHOUT ROWID;
";

pub type Keys = BTreeSet<(i64, String)>;

/// A statement's own keys, [`REFERS`] included.
pub fn of(s: &Value) -> Keys {
    let mut k = Keys::new();
    let mut agent = |k: &mut Keys, a: &Value, direct: bool| {
        if let Some(key) = ifi_key(a) {
            if direct {
                k.insert((AGENT, key.clone()));
            }
            k.insert((RELATED_AGENT, key));
        }
        for m in a.get("member").and_then(Value::as_array).into_iter().flatten() {
            if let Some(key) = ifi_key(m) {
                k.insert((RELATED_AGENT, key));
            }
        }
    };
    agent(&mut k, &s["actor"], true);
    agent(&mut k, &s["authority"], false);
    if let Some(v) = s["verb"]["id"].as_str() {
        k.insert((VERB, v.to_string()));
    }
    if let Some(r) = s["context"]["registration"].as_str() {
        k.insert((REGISTRATION, r.to_ascii_lowercase()));
    }
    let object = &s["object"];
    match object_type(object) {
        "Agent" | "Group" => agent(&mut k, object, true),
        "StatementRef" => {
            if let Some(id) = object["id"].as_str() {
                k.insert((REFERS, id.to_ascii_lowercase()));
            }
        }
        "SubStatement" => {
            agent(&mut k, &object["actor"], false);
            match object_type(&object["object"]) {
                "Agent" | "Group" => agent(&mut k, &object["object"], false),
                "Activity" => related_activity(&mut k, &object["object"]),
                _ => {}
            }
            context(&mut k, &object["context"], &mut agent);
        }
        _ => {
            if let Some(id) = object["id"].as_str() {
                k.insert((ACTIVITY, id.to_string()));
                k.insert((RELATED_ACTIVITY, id.to_string()));
            }
        }
    }
    context(&mut k, &s["context"], &mut agent);
    k
}

fn object_type(o: &Value) -> &str {
    o.get("objectType").and_then(Value::as_str).unwrap_or("Activity")
}

fn related_activity(k: &mut Keys, a: &Value) {
    if let Some(id) = a["id"].as_str() {
        k.insert((RELATED_ACTIVITY, id.to_string()));
    }
}

fn context(k: &mut Keys, c: &Value, agent: &mut impl FnMut(&mut Keys, &Value, bool)) {
    agent(k, &c["instructor"], false);
    agent(k, &c["team"], false);
    for a in c["contextAgents"].as_array().into_iter().flatten() {
        agent(k, &a["agent"], false);
    }
    for g in c["contextGroups"].as_array().into_iter().flatten() {
        agent(k, &g["group"], false);
    }
    if let Some(ca) = c["contextActivities"].as_object() {
        for list in ca.values() {
            // 1.0.x allowed a single Activity where 2.0 wants an array.
            match list {
                Value::Array(items) => items.iter().for_each(|a| related_activity(k, a)),
                one => related_activity(k, one),
            }
        }
    }
}

/// The filter keys a referrer of statement `id` takes on: that statement's
/// own (not its [`REFERS`]) and, down the chain, its targets'.
fn inherited(conn: &Connection, id: &str) -> rusqlite::Result<Keys> {
    let mut out = Keys::new();
    let mut next = Some(id.to_string());
    let mut body_of = conn.prepare_cached("SELECT body FROM statements WHERE id = ?1")?;
    for _ in 0..MAX_CHAIN {
        let Some(id) = next.take() else { break };
        let body: Option<String> = body_of.query_row([&id], |r| r.get(0)).ok();
        let Some(v) = body.and_then(|b| serde_json::from_str::<Value>(&b).ok()) else { break };
        for (kind, key) in of(&v) {
            if kind == REFERS {
                next = Some(key);
            } else {
                out.insert((kind, key));
            }
        }
    }
    Ok(out)
}

/// Writes the keys of the statement just stored as `seq` (id `id`): its
/// own, its target's when it is a StatementRef, and its own to every
/// statement stored earlier that targets it.
pub fn write(conn: &Connection, seq: i64, id: &str, own: &Keys) -> rusqlite::Result<()> {
    let mut insert =
        conn.prepare_cached("INSERT OR IGNORE INTO statement_keys (kind, key, seq) VALUES (?1, ?2, ?3)")?;
    for (kind, key) in own {
        insert.execute(params![kind, key, seq])?;
    }
    let target = own.iter().find(|(kind, _)| *kind == REFERS).map(|(_, t)| t.as_str());
    let passed_on = match target {
        Some(t) => {
            let inherited = inherited(conn, t)?;
            for (kind, key) in &inherited {
                insert.execute(params![kind, key, seq])?;
            }
            inherited
        }
        None => Keys::new(),
    };
    let referrers: Vec<i64> = conn
        .prepare_cached("SELECT seq FROM statement_keys WHERE kind = ?1 AND key = ?2")?
        .query_map(params![REFERS, id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for r in referrers {
        for (kind, key) in own.iter().chain(&passed_on).filter(|(kind, _)| *kind != REFERS) {
            insert.execute(params![kind, key, r])?;
        }
    }
    Ok(())
}

/// Fills `statement_keys` for every stored statement, in the order they
/// were stored (a database from before the table), reading 10,000 rows at
/// a time so a large store never sits in memory whole.
pub fn fill(conn: &Connection) -> rusqlite::Result<usize> {
    let (mut after, mut total) = (i64::MIN, 0);
    loop {
        let rows: Vec<(i64, String, String)> = conn
            .prepare_cached("SELECT seq, id, body FROM statements WHERE seq > ?1 ORDER BY seq LIMIT 10000")?
            .query_map([after], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = rows.last() else { return Ok(total) };
        after = last.0;
        total += rows.len();
        for (seq, id, body) in &rows {
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            write(conn, *seq, id, &of(&v))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_follow_the_filters_of_the_standard() {
        let s = json!({
            "actor": {"mbox": "mailto:a@x.org"},
            "verb": {"id": "https://v"},
            "object": {"objectType": "SubStatement", "actor": {"mbox": "mailto:b@x.org"}, "verb": {"id": "https://w"},
                       "object": {"id": "https://sub-activity"}},
            "context": {"registration": "ABC", "instructor": {"mbox": "mailto:t@x.org"},
                        "contextActivities": {"parent": [{"id": "https://course"}], "grouping": {"id": "https://one"}}},
            "authority": {"account": {"homePage": "https://n", "name": "kiosk"}}
        });
        let k = of(&s);
        let has = |kind: i64, key: &str| k.contains(&(kind, key.to_string()));
        assert!(has(AGENT, "mbox:mailto:a@x.org") && has(RELATED_AGENT, "mbox:mailto:a@x.org"));
        assert!(!has(AGENT, "mbox:mailto:b@x.org") && has(RELATED_AGENT, "mbox:mailto:b@x.org"));
        assert!(has(RELATED_AGENT, "mbox:mailto:t@x.org") && has(RELATED_AGENT, "account:https://n|kiosk"));
        assert!(has(VERB, "https://v") && !has(VERB, "https://w"));
        assert!(has(REGISTRATION, "abc"));
        assert!(!k.iter().any(|(kind, _)| *kind == ACTIVITY));
        for a in ["https://sub-activity", "https://course", "https://one"] {
            assert!(has(RELATED_ACTIVITY, a), "{a}");
        }
    }
}
