//! The Activities and Agents resources (xAPI 2.0 Part Three §2.4–2.5;
//! 1.0.3 §7.5–7.6, the non-document halves): what the LRS knows of an
//! activity (its definition, merged from the statements stored about it)
//! and of an agent (a Person object).

use super::{agent_param, iri_param, params};
use crate::http::AppState;
use crate::http::auth::User;
use crate::http::error::ApiError;
use crate::http::learner::learner_actor;
use crate::xapi::ifi_key;
use crate::xapi::store::Query;
use axum::Extension;
use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::{Map, Value, json};

/// How many of the newest statements about an activity its definition is
/// merged from.
const DEFINITION_STATEMENTS: usize = 200;

/// GET /xapi/activities?activityId=IRI: `{"objectType": "Activity", "id",
/// "definition"?}`. The definition merges those of the newest statements
/// with the activity as their object, oldest first: a later statement's
/// fields win, language maps merge per language. An activity nobody
/// described is answered with its id alone.
pub async fn activity(
    State(node): State<AppState>,
    Extension(user): Extension<User>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = params(raw.as_deref(), &["activityId"])?;
    let id = iri_param(
        p.get("activityId").ok_or_else(|| ApiError::field("missing_param", "activityId", "activityId is required"))?,
        "activityId",
    )?;
    if user.person.is_none() {
        // (A cmi5 launch token has no scopes: refused here.)
        user.may(user.scopes.reads_all_statements() || user.scopes.reads_operations(), "read activities")?;
    }
    let q = Query { activity: Some(id.clone()), limit: DEFINITION_STATEMENTS, ..Query::default() };
    let page = node.store.query(q).await?;
    let mut definition = Map::new();
    for body in page.statements.iter().rev() {
        let Ok(s) = serde_json::from_str::<Value>(body) else { continue };
        if let Some(Value::Object(d)) = s["object"].get("definition") {
            merge_definition(&mut definition, d);
        }
    }
    let mut out = json!({"objectType": "Activity", "id": id});
    if !definition.is_empty() {
        out["definition"] = Value::Object(definition);
    }
    Ok(Json(out))
}

fn merge_definition(into: &mut Map<String, Value>, d: &Map<String, Value>) {
    for (k, v) in d {
        match (k.as_str(), into.get_mut(k), v) {
            ("name" | "description", Some(Value::Object(have)), Value::Object(new)) => {
                for (lang, text) in new {
                    have.insert(lang.clone(), text.clone());
                }
            }
            _ => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// GET /xapi/agents?agent=JSON: the Person object for the agent: every
/// identifier and name it is known by (the one asked for, and the names its
/// statements gave it). A signed-in person may ask only about themselves.
pub async fn agents(
    State(node): State<AppState>,
    Extension(user): Extension<User>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = params(raw.as_deref(), &["agent"])?;
    let (agent, key) = agent_param(
        p.get("agent").ok_or_else(|| ApiError::field("missing_param", "agent", "agent is required"))?,
        "agent",
    )?;
    match &user.person {
        Some(person) if ifi_key(&learner_actor(&node, &person.id)).as_deref() != Some(key.as_str()) => {
            tracing::warn!(person = %person.id, agent = %key, "refused: another agent's Person object");
            return Err(ApiError::Forbidden(format!("{} may ask only about themselves", person.id)));
        }
        Some(_) => {}
        None => user.may(user.scopes.reads_all_statements() || user.scopes.reads_operations(), "read agents")?,
    }
    let q = Query { agent: Some(key), limit: DEFINITION_STATEMENTS, ..Query::default() };
    let page = node.store.query(q).await?;
    let mut names: Vec<Value> = Vec::new();
    let mut add_name = |n: &Value| {
        if n.is_string() && !names.contains(n) {
            names.push(n.clone());
        }
    };
    add_name(&agent["name"]);
    for body in &page.statements {
        let Ok(s) = serde_json::from_str::<Value>(body) else { continue };
        for a in [&s["actor"], &s["object"]] {
            if ifi_key(a).as_deref() == ifi_key(&agent).as_deref() {
                add_name(&a["name"]);
            }
        }
    }
    let mut person = json!({"objectType": "Person"});
    if !names.is_empty() {
        person["name"] = Value::Array(names);
    }
    for k in ["mbox", "mbox_sha1sum", "openid", "account"] {
        if let Some(v) = agent.get(k) {
            person[k] = json!([v]);
        }
    }
    Ok(Json(person))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_merge_later_fields_over_earlier_and_language_maps_per_language() {
        let mut d = Map::new();
        merge_definition(
            &mut d,
            json!({"name": {"en": "A", "zh-CN": "甲"}, "type": "https://t/1"}).as_object().unwrap(),
        );
        merge_definition(&mut d, json!({"name": {"en": "A2"}, "type": "https://t/2"}).as_object().unwrap());
        assert_eq!(Value::Object(d), json!({"name": {"en": "A2", "zh-CN": "甲"}, "type": "https://t/2"}));
    }
}
