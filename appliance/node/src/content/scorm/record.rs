//! One scorm-again commit as xAPI, the way ADL's xAPI SCORM Profile maps
//! the SCORM data model, each change once per attempt:
//!
//! - `initialized` (a new attempt) or `resumed` (a suspended one goes on);
//! - `scored` with each new score (SCORM 1.2 raw / 100, 2004 scaled);
//! - `completed`, `passed` / `failed` (with the score) on the SCO;
//! - `responded` for each interaction's response (`cmi.interactions`: the
//!   interaction as an xAPI interaction activity under the SCO, its type,
//!   correct responses and description; success when SCORM says correct or
//!   wrong; SCORM 1.2's `,` / `.` delimiters as xAPI's `[,]` / `[.]`);
//! - `passed` / `failed` / `completed` for each objective's status
//!   (`cmi.objectives`, an objective activity under the SCO);
//! - `terminated` (with the duration and the SCO's overall result) or
//!   `suspended` (duration) when the SCO finishes.
//!
//! Every statement's context: the learner's registration, the attempt and
//! the course in `grouping`, the profile in `category`, and the SCO as
//! `parent` of interactions and objectives. The authority is `lms:scorm`.

use super::{Attempt, STATE_ID, state_place};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::xapi::validate::INTERACTION_TYPES;
use serde_json::{Value, json};

const VERB: &str = "http://adlnet.gov/expapi/verbs/";
const ACTIVITY_TYPE: &str = "http://adlnet.gov/expapi/activities/";
const PROFILE: &str = "https://w3id.org/xapi/scorm";

/// The statements and State of one commit.
pub(super) async fn record(node: &AppState, a: &Attempt, c: &Value, last: bool) -> Result<(), ApiError> {
    let rd = &c["runtimeData"];
    let cmi = if rd.get("cmi").is_some() { rd["cmi"].clone() } else { rd.clone() };
    let exit = if a.version == "1.2" { cmi["core"]["exit"].as_str() } else { cmi["exit"].as_str() }.unwrap_or_default();
    let completion = c["completionStatus"].as_str().unwrap_or("unknown").to_string();
    let success = c["successStatus"].as_str().unwrap_or("unknown").to_string();
    let score = score(&c["score"]);
    let now = time::OffsetDateTime::now_utc();
    let duration = super::super::iso_duration(now - a.started);
    let mut out = Vec::new();
    {
        let mut seen = a.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.finished {
            return Err(ApiError::Conflict("the attempt has ended".into()));
        }
        let sco = |verb: &str, result: Value| statement(a, verb, sco_activity(a), result, false, now);
        if !seen.initialized {
            out.push(sco(if a.resumed { "resumed" } else { "initialized" }, Value::Null));
            seen.initialized = true;
        }
        if let Some(s) = score.as_ref().filter(|s| seen.score.as_ref() != Some(*s)) {
            out.push(sco("scored", json!({"score": s})));
            seen.score = Some(s.clone());
        }
        if completion == "completed" && seen.completion != "completed" {
            out.push(sco("completed", json!({"completion": true, "duration": duration})));
        }
        if (success == "passed" || success == "failed") && seen.success != success {
            let mut result = json!({"success": success == "passed", "duration": duration});
            if let Some(s) = &score {
                result["score"] = s.clone();
            }
            out.push(sco(&success, result));
        }
        for (key, verb, object, result) in interactions(a, &cmi).into_iter().chain(objectives(a, &cmi)) {
            if seen.recorded.insert(key) {
                out.push(statement(a, &verb, object, result, true, now));
            }
        }
        if last {
            let mut result = json!({"duration": duration});
            let verb = if exit == "suspend" { "suspended" } else { "terminated" };
            if verb == "terminated" {
                // The SCO's overall result, as far as SCORM knows it.
                match completion.as_str() {
                    "completed" => result["completion"] = json!(true),
                    "incomplete" => result["completion"] = json!(false),
                    _ => {}
                }
                if success == "passed" || success == "failed" {
                    result["success"] = json!(success == "passed");
                }
                if let Some(s) = &score {
                    result["score"] = s.clone();
                }
            }
            out.push(sco(verb, result));
            seen.finished = true;
        }
        seen.completion = completion.clone();
        seen.success = success.clone();
    }
    let kept = json!({
        "version": a.version, "cmi": cmi, "exit": exit, "completion": completion, "success": success,
        "score": score, "attempt": a.attempt, "attempts": a.attempts,
    });
    let place = state_place(&a.activity, &a.actor_key, &a.registration);
    super::super::put_json_document(node, place, STATE_ID, &kept).await?;
    if out.is_empty() {
        return Ok(());
    }
    super::super::store_statements(node, out, "scorm", &super::super::lms_authority(node, "lms:scorm")).await
}

/// A commit's score as xAPI's: scaled when given, else raw over max (SCORM
/// 1.2: raw / 100), with raw, min and max when they are consistent.
pub(super) fn score(s: &Value) -> Option<Value> {
    let (raw, min, max) = (num(&s["raw"]), num(&s["min"]), num(&s["max"]));
    let scaled = num(&s["scaled"]).or(match (raw, max) {
        (Some(r), Some(m)) if m > 0.0 => Some(r / m),
        (Some(r), None) => Some(r / 100.0),
        _ => None,
    })?;
    let mut out = json!({"scaled": (scaled.clamp(-1.0, 1.0) * 10000.0).round() / 10000.0});
    if let (Some(r), Some(lo), Some(hi)) = (raw, min, max)
        && lo <= r
        && r <= hi
    {
        out["raw"] = json!(r);
        out["min"] = json!(lo);
        out["max"] = json!(hi);
    }
    Some(out)
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str().and_then(|t| t.trim().parse().ok()))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default().trim()
}

/// The entries of a SCORM collection as scorm-again sends it: an array,
/// an object keyed "0", "1", ... or one holding `childArray`.
fn entries(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(m) if m.get("childArray").is_some_and(Value::is_array) => entries(&m["childArray"]),
        Value::Object(m) => {
            let mut e: Vec<(usize, &Value)> = m.iter().filter_map(|(k, v)| Some((k.parse().ok()?, v))).collect();
            e.sort_by_key(|(i, _)| *i);
            e.into_iter().map(|(_, v)| v).collect()
        }
        _ => Vec::new(),
    }
}

/// An id from the SCO as one IRI path segment.
fn segment(id: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(id, KEEP).to_string()
}

fn sco_activity(a: &Attempt) -> Value {
    json!({"objectType": "Activity", "id": a.activity, "definition": {
        "type": format!("{ACTIVITY_TYPE}lesson"), "name": {"und": a.title}}})
}

/// A SCORM 1.2 response or pattern in xAPI's format (SCORM 2004's is it).
fn response_12(kind: &str, r: &str) -> String {
    match kind {
        "true-false" => match r {
            "t" | "1" | "true" => "true".into(),
            "f" | "0" | "false" => "false".into(),
            other => other.into(),
        },
        "choice" | "sequencing" => r.split(',').map(str::trim).collect::<Vec<_>>().join("[,]"),
        "matching" => r.split(',').map(|p| p.trim().replace('.', "[.]")).collect::<Vec<_>>().join("[,]"),
        _ => r.into(),
    }
}

/// Each interaction with a response: (key, verb, object, result).
fn interactions(a: &Attempt, cmi: &Value) -> Vec<(String, String, Value, Value)> {
    let twelve = a.version == "1.2";
    entries(&cmi["interactions"])
        .into_iter()
        .filter_map(|i| {
            let id = text(&i["id"]);
            let raw = text(if twelve { &i["student_response"] } else { &i["learner_response"] });
            if id.is_empty() || raw.is_empty() {
                return None;
            }
            let kind = Some(text(&i["type"])).filter(|t| INTERACTION_TYPES.contains(t)).unwrap_or("other");
            let convert = |r: &str| if twelve { response_12(kind, r) } else { r.to_string() };
            let mut definition = json!({
                "type": format!("{ACTIVITY_TYPE}cmi.interaction"), "interactionType": kind, "name": {"und": id},
            });
            let patterns: Vec<String> = entries(&i["correct_responses"])
                .into_iter()
                .map(|p| convert(text(&p["pattern"])))
                .filter(|p| !p.is_empty())
                .collect();
            if !patterns.is_empty() {
                definition["correctResponsesPattern"] = json!(patterns);
            }
            if !text(&i["description"]).is_empty() {
                definition["description"] = json!({"und": text(&i["description"])});
            }
            let response = convert(raw);
            let mut result = json!({"response": response});
            match text(&i["result"]) {
                "correct" => result["success"] = json!(true),
                "incorrect" | "wrong" => result["success"] = json!(false),
                _ => {}
            }
            let object = json!({"objectType": "Activity", "id": format!("{}/interaction/{}", a.activity, segment(id)),
                                "definition": definition});
            Some((format!("interaction {id} {response}"), "responded".to_string(), object, result))
        })
        .collect()
}

/// Each objective with a status: (key, verb, object, result).
fn objectives(a: &Attempt, cmi: &Value) -> Vec<(String, String, Value, Value)> {
    let twelve = a.version == "1.2";
    entries(&cmi["objectives"])
        .into_iter()
        .flat_map(|o| {
            let id = text(&o["id"]);
            let statuses: Vec<&str> = if twelve {
                vec![text(&o["status"])]
            } else {
                vec![text(&o["completion_status"]), text(&o["success_status"])]
            };
            statuses
                .into_iter()
                .filter(|s| !id.is_empty() && matches!(*s, "completed" | "passed" | "failed"))
                .map(|verb| {
                    let object = json!({"objectType": "Activity", "id": format!("{}/objective/{}", a.activity, segment(id)),
                                        "definition": {"type": format!("{ACTIVITY_TYPE}objective"), "name": {"und": id}}});
                    let mut result = match verb {
                        "completed" => json!({"completion": true}),
                        _ => json!({"success": verb == "passed"}),
                    };
                    if verb != "completed"
                        && let Some(s) = score(&o["score"])
                    {
                        result["score"] = s;
                    }
                    (format!("objective {id} {verb}"), verb.to_string(), object, result)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn statement(a: &Attempt, verb: &str, object: Value, result: Value, in_sco: bool, now: time::OffsetDateTime) -> Value {
    let mut context_activities = json!({
        "grouping": [
            {"objectType": "Activity", "id": a.attempt, "definition": {"type": format!("{ACTIVITY_TYPE}attempt")}},
            {"objectType": "Activity", "id": a.course_activity},
        ],
        "category": [{"objectType": "Activity", "id": PROFILE, "definition": {"type": format!("{ACTIVITY_TYPE}profile")}}],
    });
    if in_sco {
        context_activities["parent"] = json!([{"objectType": "Activity", "id": a.activity}]);
    }
    let mut s = json!({
        "actor": a.actor,
        "verb": {"id": format!("{VERB}{verb}"), "display": {"en-US": verb}},
        "object": object,
        "context": {"registration": a.registration, "contextActivities": context_activities},
        "timestamp": crate::xapi::format_stored(now),
    });
    if !result.is_null() {
        s["result"] = result;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_as_xapi_takes_them() {
        assert_eq!(
            score(&json!({"raw": "100", "min": "0", "max": "100"})),
            Some(json!({"scaled": 1.0, "raw": 100.0, "min": 0.0, "max": 100.0}))
        );
        assert_eq!(score(&json!({"raw": 40})), Some(json!({"scaled": 0.4})));
        assert_eq!(score(&json!({"scaled": 0.75, "raw": 150, "min": 0, "max": 100})), Some(json!({"scaled": 0.75})));
        assert_eq!(score(&json!({})), None);
    }

    #[test]
    fn collections_as_scorm_again_sends_them() {
        let want = ["a", "b"];
        for v in [
            json!([{"id": "a"}, {"id": "b"}]),
            json!({"1": {"id": "b"}, "0": {"id": "a"}, "_count": 2}),
            json!({"childArray": [{"id": "a"}, {"id": "b"}]}),
        ] {
            let ids: Vec<&str> = entries(&v).into_iter().map(|e| text(&e["id"])).collect();
            assert_eq!(ids, want, "{v}");
        }
        assert!(entries(&json!(null)).is_empty());
    }

    #[test]
    fn scorm_12_responses_in_xapi_format() {
        assert_eq!(response_12("choice", "a, c"), "a[,]c");
        assert_eq!(response_12("matching", "1.a,2.b"), "1[.]a[,]2[.]b");
        assert_eq!(response_12("true-false", "t"), "true");
        assert_eq!(response_12("fill-in", "a,b"), "a,b");
        assert_eq!(segment("q 1/é"), "q%201%2F%C3%A9");
    }
}
