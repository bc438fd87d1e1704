//! Actors (xAPI 2.0 Part Two §2.4.2; 1.0.3 §2.4.2): Agents, identified and
//! anonymous Groups, and the inverse functional identifiers.

use super::values::iri;
use super::{R, err, join, keys, object, required, string};
use serde_json::{Map, Value};

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
        iri(required(a, &p, "homePage")?, &join(&p, "homePage"))?;
        string(required(a, &p, "name")?, &join(&p, "name"))?;
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

/// An Agent, or a Group when its objectType says so.
pub fn actor(v: &Value, path: &str) -> R {
    if v.get("objectType").and_then(Value::as_str) == Some("Group") { group(v, path) } else { agent(v, path) }
}
