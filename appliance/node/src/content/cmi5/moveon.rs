//! moveOn and `satisfied` (cmi5 9.3.9, 9.6.1): when every AU of a block,
//! or of the course, meets its moveOn criterion in a registration, the LMS
//! records `satisfied` with its own id for that block or course, once per
//! registration. What each AU has met is read back from the stored
//! statements of the registration (completed, passed, waived), so the rule
//! holds across node restarts and for AUs of earlier sessions.

use super::rules::{COMPLETED, PASSED};
use super::{CATEGORY, SESSION_EXT, lms_statements};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::xapi::store::Query;
use lms_package::course::{Course, MoveOn, Node};
use serde_json::{Value, json};
use std::collections::HashSet;

pub(super) const WAIVED: &str = "https://w3id.org/xapi/adl/verbs/waived";
const SATISFIED: &str = "https://w3id.org/xapi/adl/verbs/satisfied";
const BLOCK_TYPE: &str = "https://w3id.org/xapi/cmi5/activitytype/block";
const COURSE_TYPE: &str = "https://w3id.org/xapi/cmi5/activitytype/course";

/// What a registration has recorded for one AU.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Met {
    pub completed: bool,
    pub passed: bool,
    pub waived: bool,
}

/// Whether `m` meets `move_on` (a waived AU meets any).
pub fn meets(move_on: MoveOn, m: Met) -> bool {
    m.waived
        || match move_on {
            MoveOn::NotApplicable => true,
            MoveOn::Passed => m.passed,
            MoveOn::Completed => m.completed,
            MoveOn::CompletedAndPassed => m.completed && m.passed,
            MoveOn::CompletedOrPassed => m.completed || m.passed,
        }
}

/// The LMS's id of a course (never the publisher's: it is under the pack's
/// activity base, beside the AUs' launch ids).
pub fn course_activity(activity_base: &str, course: &str) -> String {
    format!("{}/cmi5/{course}", activity_base.trim_end_matches('/'))
}

/// The LMS's id of a course's `n`th block (document order).
pub fn block_activity(activity_base: &str, course: &str, n: usize) -> String {
    format!("{}/block/{n}", course_activity(activity_base, course))
}

/// Something that can be satisfied: a block or the course.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub id: String,
    pub kind: &'static str,
    pub name: Value,
    /// The AU indexes it holds, at any depth.
    pub aus: Vec<usize>,
}

/// Every block (document order) and then the course, with their AUs.
pub fn targets(course: &Course, activity_base: &str) -> Vec<Target> {
    fn walk(nodes: &[Node], base: &str, course: &str, out: &mut Vec<Target>) -> Vec<usize> {
        let mut aus = Vec::new();
        for n in nodes {
            match n {
                Node::Au(i) => aus.push(*i),
                Node::Unit(_) => {}
                Node::Block(b) => {
                    let at = out.len();
                    out.push(Target {
                        id: block_activity(base, course, at),
                        kind: BLOCK_TYPE,
                        name: super::lang_map(&b.title),
                        aus: vec![],
                    });
                    let inner = walk(&b.children, base, course, out);
                    aus.extend(&inner);
                    out[at].aus = inner;
                }
            }
        }
        aus
    }
    let mut out = Vec::new();
    let aus = walk(&course.children, activity_base, &course.id, &mut out);
    out.push(Target {
        id: course_activity(activity_base, &course.id),
        kind: COURSE_TYPE,
        name: super::lang_map(&course.title),
        aus,
    });
    out
}

/// The targets whose AUs all meet their moveOn now and that are not yet
/// satisfied (`done`): blocks first, the course last.
pub fn newly_satisfied(course: &Course, activity_base: &str, met: &[Met], done: &HashSet<String>) -> Vec<Target> {
    targets(course, activity_base)
        .into_iter()
        .filter(|t| !done.contains(&t.id))
        .filter(|t| t.aus.iter().all(|&i| course.aus.get(i).is_some_and(|a| meets(a.move_on, met[i]))))
        .collect()
}

/// After the store took an AU's batch: `satisfied` for what it met, under
/// the AU's session. A failure here is logged, never the AU's error (its
/// statements are stored); the next batch or launch decides again.
pub async fn after_batch(node: &AppState, g: &super::Grant, statements: &[Value]) {
    if !judges(statements, &g.activity_id) {
        return;
    }
    let Ok(set) = node.current() else { return };
    let Some(pkg) = set.packages.get(&g.course).cloned() else { return };
    if let Err(e) = satisfy(node, &pkg.course, &pkg.activity_base, &g.actor, &g.registration, &g.session_id).await {
        tracing::warn!(session = %g.session_id, "cmi5: satisfied not recorded: {e}");
    }
}

/// Whether a batch an AU sent may have met its moveOn.
pub fn judges(statements: &[Value], activity_id: &str) -> bool {
    statements.iter().any(|s| {
        let v = s["verb"]["id"].as_str().unwrap_or_default();
        (v == COMPLETED || v == PASSED) && s["object"]["id"].as_str() == Some(activity_id)
    })
}

/// The object ids of `actor_key`'s statements with `verb` in `registration`.
async fn objects(
    node: &AppState,
    actor_key: &str,
    registration: &str,
    verb: &str,
) -> Result<HashSet<String>, ApiError> {
    let q = Query {
        agent: Some(actor_key.to_string()),
        verb: Some(verb.to_string()),
        registration: Some(registration.to_string()),
        limit: 100_000,
        ..Query::default()
    };
    let page = node.store.query(q).await?;
    Ok(page
        .statements
        .iter()
        .filter_map(|s| serde_json::from_str::<Value>(s).ok())
        .filter_map(|s| s["object"]["id"].as_str().map(str::to_string))
        .collect())
}

/// What the registration has recorded for each AU of `course`, by the AUs'
/// launch ids (`au_activity`).
pub async fn recorded(
    node: &AppState,
    course: &Course,
    activity_base: &str,
    actor_key: &str,
    registration: &str,
) -> Result<Vec<Met>, ApiError> {
    let completed = objects(node, actor_key, registration, COMPLETED).await?;
    let passed = objects(node, actor_key, registration, PASSED).await?;
    let waived = objects(node, actor_key, registration, WAIVED).await?;
    Ok(course
        .aus
        .iter()
        .map(|a| {
            let id = super::au_activity(activity_base, &course.id, a.index);
            Met { completed: completed.contains(&id), passed: passed.contains(&id), waived: waived.contains(&id) }
        })
        .collect())
}

/// Records `satisfied` for every block and the course of `course` that the
/// registration has newly met, under `session_id` (the AU session that met
/// them, or a new one outside a session). One at a time per node, so two
/// sessions finishing together cannot both record the same one. Answers
/// what the registration has recorded for each AU (read for the decision;
/// a launch seeds its session from it).
pub async fn satisfy(
    node: &AppState,
    course: &Course,
    activity_base: &str,
    actor: &Value,
    registration: &str,
    session_id: &str,
) -> Result<Vec<Met>, ApiError> {
    let _one = node.launches.satisfying.lock().await;
    let actor_key = crate::xapi::ifi_key(actor)
        .ok_or_else(|| ApiError::Unavailable("satisfied: the launch's actor has no IFI".into()))?;
    let met = recorded(node, course, activity_base, &actor_key, registration).await?;
    let done = objects(node, &actor_key, registration, SATISFIED).await?;
    let course_id = course_activity(activity_base, &course.id);
    let now = crate::xapi::format_stored(time::OffsetDateTime::now_utc());
    let statements: Vec<Value> = newly_satisfied(course, activity_base, &met, &done)
        .into_iter()
        .map(|t| {
            let mut context = json!({
                "registration": registration,
                "contextActivities": {"category": [{"id": CATEGORY}]},
                "extensions": {SESSION_EXT: session_id},
            });
            if t.kind == BLOCK_TYPE {
                context["contextActivities"]["grouping"] = json!([{"objectType": "Activity", "id": course_id}]);
            }
            json!({
                "actor": actor,
                "verb": {"id": SATISFIED, "display": {"en-US": "satisfied"}},
                "object": {"objectType": "Activity", "id": t.id, "definition": {"type": t.kind, "name": t.name}},
                "context": context,
                "timestamp": now,
            })
        })
        .collect();
    let n = statements.len();
    if n > 0 {
        lms_statements(node, statements, "satisfied").await?;
        tracing::info!(course = %course.id, %registration, satisfied = n, "cmi5 moveOn met");
    }
    Ok(met)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// course: block A [au0, block B [au1]], au2 (outside any block).
    fn course() -> Course {
        let au = |i: usize, move_on: MoveOn| {
            json!({"index": i, "id": format!("https://pub.example/au/{i}"), "title": {"en-US": "AU"}, "description": {},
                   "objectives": [], "url": "a.html", "in_package": true, "launch_method": "AnyWindow",
                   "move_on": move_on, "mastery_score": null, "launch_parameters": null, "entitlement_key": null,
                   "activity_type": null, "blocks": []})
        };
        let block = |id: &str, children: Value| json!({"block": {"id": id, "title": {"en-US": id}, "description": {}, "objectives": [], "children": children}});
        serde_json::from_value(json!({
            "format": 1, "kind": "cmi5", "id": "c", "publisher_id": "https://pub.example/c",
            "title": {"en-US": "C"}, "description": {}, "source": "c.zip", "source_sha256": "00", "objectives": [],
            "children": [block("https://pub.example/a", json!([{"au": 0}, block("https://pub.example/b", json!([{"au": 1}]))])), {"au": 2}],
            "aus": [au(0, MoveOn::Completed), au(1, MoveOn::CompletedAndPassed), au(2, MoveOn::NotApplicable)],
        }))
        .unwrap()
    }

    #[test]
    fn move_on_rules() {
        let m = |completed, passed| Met { completed, passed, waived: false };
        assert!(meets(MoveOn::NotApplicable, m(false, false)));
        assert!(meets(MoveOn::Passed, m(false, true)) && !meets(MoveOn::Passed, m(true, false)));
        assert!(meets(MoveOn::Completed, m(true, false)) && !meets(MoveOn::Completed, m(false, true)));
        assert!(meets(MoveOn::CompletedAndPassed, m(true, true)) && !meets(MoveOn::CompletedAndPassed, m(true, false)));
        assert!(meets(MoveOn::CompletedOrPassed, m(false, true)) && !meets(MoveOn::CompletedOrPassed, m(false, false)));
        assert!(meets(MoveOn::CompletedAndPassed, Met { waived: true, ..Met::default() }));
    }

    #[test]
    fn blocks_then_the_course_each_once_with_the_lms_ids() {
        let c = course();
        let base = "https://lms.example/x/";
        let t = targets(&c, base);
        let ids: Vec<&str> = t.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "https://lms.example/x/cmi5/c/block/0",
                "https://lms.example/x/cmi5/c/block/1",
                "https://lms.example/x/cmi5/c"
            ]
        );
        assert_eq!((t[0].aus.clone(), t[1].aus.clone(), t[2].aus.clone()), (vec![0, 1], vec![1], vec![0, 1, 2]));
        assert!(t.iter().all(|t| !t.id.starts_with("https://pub.example")), "never the publisher's ids");
        let ids = |v: Vec<Target>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
        let none = HashSet::new();
        let mut met = vec![Met::default(); 3];
        assert!(newly_satisfied(&c, base, &met, &none).is_empty(), "au2 alone meets nothing with an AU left");
        met[1] = Met { completed: true, passed: true, waived: false };
        assert_eq!(ids(newly_satisfied(&c, base, &met, &none)), ["https://lms.example/x/cmi5/c/block/1"]);
        met[0].completed = true;
        let all = ids(newly_satisfied(&c, base, &met, &none));
        assert_eq!(all.len(), 3, "{all:?}");
        let done: HashSet<String> = all[..2].iter().cloned().collect();
        assert_eq!(ids(newly_satisfied(&c, base, &met, &done)), ["https://lms.example/x/cmi5/c"], "each once");
    }
}
