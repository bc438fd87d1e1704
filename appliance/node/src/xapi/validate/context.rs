//! The Context (xAPI 2.0 Part Two §2.4.6; 1.0.3 §2.4.6): registration,
//! instructor, team, contextActivities, revision, platform, language,
//! statement, extensions, and 2.0's contextAgents and contextGroups.

use super::actor::{actor, agent, group};
use super::object::{activity, statement_ref};
use super::values::{extensions, iri, is_language_tag, uuid};
use super::{R, Spec, err, join, keys, object, string};
use serde_json::Value;

const KEYS_1_0: [&str; 9] = [
    "registration",
    "instructor",
    "team",
    "contextActivities",
    "revision",
    "platform",
    "language",
    "statement",
    "extensions",
];

pub(super) fn context(v: &Value, path: &str, object_is_activity: bool, spec: Spec) -> R {
    let m = object(v, path)?;
    if spec == Spec::V1 {
        for k in ["contextAgents", "contextGroups"] {
            if m.contains_key(k) {
                return err(&join(path, k), "is an xAPI 2.0 property: send X-Experience-API-Version 2.0.0 to use it");
            }
        }
    }
    let mut allowed = KEYS_1_0.to_vec();
    allowed.extend(["contextAgents", "contextGroups"]);
    keys(m, path, &allowed)?;
    for (k, val) in m {
        let p = join(path, k);
        match k.as_str() {
            "registration" => uuid(val, &p)?,
            "instructor" => actor(val, &p)?,
            "team" => group(val, &p)?,
            "contextActivities" => context_activities(val, &p)?,
            "contextAgents" => context_actors(val, &p, "contextAgent", "agent")?,
            "contextGroups" => context_actors(val, &p, "contextGroup", "group")?,
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

/// parent, grouping, category, other: each an Activity or an array of them.
fn context_activities(v: &Value, p: &str) -> R {
    let ca = object(v, p)?;
    keys(ca, p, &["parent", "grouping", "category", "other"])?;
    for (ck, cv) in ca {
        let cp = join(p, ck);
        match cv {
            Value::Array(items) => {
                for (i, a) in items.iter().enumerate() {
                    activity(a, &format!("{cp}[{i}]"))?;
                }
            }
            _ => activity(cv, &cp)?,
        }
    }
    Ok(())
}

/// 2.0's contextAgents / contextGroups: arrays of `{objectType: tag, who, relevantTypes?}`.
fn context_actors(v: &Value, p: &str, tag: &str, who: &str) -> R {
    let arr = v.as_array().map_or_else(|| err(p, "must be an array"), Ok)?;
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
    Ok(())
}
