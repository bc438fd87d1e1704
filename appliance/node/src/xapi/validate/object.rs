//! The Object (xAPI 2.0 Part Two §2.4.4; 1.0.3 §2.4.4): Activities with
//! their definitions and interaction components, Agents and Groups,
//! StatementRefs and SubStatements.

use super::actor::{agent, group};
use super::values::{extensions, iri, language_map, uuid};
use super::{R, Spec, err, join, keys, object, required, statement_body, string};
use serde_json::Value;

/// xAPI's interaction types (SCORM's, 1.2 and 2004, are among them).
pub(crate) const INTERACTION_TYPES: [&str; 10] = [
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

const COMPONENT_LISTS: [&str; 5] = ["choices", "scale", "source", "target", "steps"];

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
            _ => components(val, &p)?,
        }
    }
    if m.keys().any(|k| COMPONENT_LISTS.contains(&k.as_str())) && !m.contains_key("interactionType") {
        return err(&join(path, "interactionType"), "is required with interaction components");
    }
    Ok(())
}

/// An interaction component list (choices, scale, source, target, steps).
fn components(v: &Value, path: &str) -> R {
    let arr = v.as_array().map_or_else(|| err(path, "must be an array"), Ok)?;
    for (i, c) in arr.iter().enumerate() {
        let cp = format!("{path}[{i}]");
        let cm = object(c, &cp)?;
        keys(cm, &cp, &["id", "description"])?;
        string(cm.get("id").unwrap_or(&Value::Null), &join(&cp, "id"))?;
        if let Some(d) = cm.get("description") {
            language_map(d, &join(&cp, "description"))?;
        }
    }
    Ok(())
}

pub(super) fn activity(v: &Value, path: &str) -> R {
    let m = object(v, path)?;
    keys(m, path, &["objectType", "id", "definition"])?;
    if let Some(t) = m.get("objectType")
        && string(t, &join(path, "objectType"))? != "Activity"
    {
        return err(&join(path, "objectType"), "must be \"Activity\"");
    }
    iri(required(m, path, "id")?, &join(path, "id"))?;
    if let Some(d) = m.get("definition") {
        definition(d, &join(path, "definition"))?;
    }
    Ok(())
}

pub(super) fn statement_ref(v: &Value, path: &str) -> R {
    let m = object(v, path)?;
    keys(m, path, &["objectType", "id"])?;
    if m.get("objectType").and_then(Value::as_str) != Some("StatementRef") {
        return err(&join(path, "objectType"), "must be \"StatementRef\"");
    }
    uuid(m.get("id").unwrap_or(&Value::Null), &join(path, "id"))
}

/// A statement's object by its objectType (Activity when absent); a
/// SubStatement's object cannot be another SubStatement.
pub(super) fn object_of(v: &Value, path: &str, in_sub: bool, spec: Spec) -> R {
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
        "SubStatement" => statement_body(v, path, true, spec),
        other => err(&join(path, "objectType"), format!("{other:?} is not an object type")),
    }
}
