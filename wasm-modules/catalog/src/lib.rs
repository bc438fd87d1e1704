//! The catalog module: lists courses, a course's lessons and quizzes, and
//! serves lesson content with an ETag and Cache-Control (304 on a matching
//! If-None-Match).
//!
//! Ops: `list_courses`, `get_course {course}`, `get_lesson {course, lesson}`.
//! It never reads quiz documents, so it cannot leak answer keys.

// An error here is the module's answer (`Response`, 128 bytes), one per request.
#![allow(clippy::result_large_err)]

use lms_content::{CourseDoc, IndexDoc, LessonDoc, course_key, lesson_key};
use lms_sdk::{Request, Response, SelfTest, content, content_raw, error, json};
use serde_json::value::RawValue;

lms_sdk::export_module!(handle: handle, self_test: self_test);

pub fn handle(req: &Request) -> Response {
    match req.op.as_str() {
        "list_courses" => list_courses(),
        "get_course" => get_course(req),
        "get_lesson" => get_lesson(req),
        other => error(400, "unknown_op", format!("catalog has no op {other:?}")),
    }
}

fn param<'a>(req: &'a Request, name: &str) -> Result<&'a str, Response> {
    req.params
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| error(400, "missing_param", format!("missing path parameter {name:?}")))
}

fn list_courses() -> Response {
    match content::<IndexDoc>("index") {
        Ok(Some(index)) => {
            let courses: Vec<_> = index
                .courses
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.id, "title": c.title, "description": c.description,
                        "lessons": c.lessons, "quizzes": c.quizzes,
                    })
                })
                .collect();
            json(200, &serde_json::json!({ "courses": courses }))
        }
        Ok(None) => error(500, "content_missing", "the content pack has no index"),
        Err(e) => error(500, "content_invalid", e),
    }
}

fn get_course(req: &Request) -> Response {
    let course = match param(req, "course") {
        Ok(c) => c,
        Err(r) => return r,
    };
    match content::<CourseDoc>(&course_key(course)) {
        Ok(Some(doc)) => json(200, &doc),
        Ok(None) => error(404, "not_found", format!("no course {course:?}")),
        Err(e) => error(500, "content_invalid", e),
    }
}

fn get_lesson(req: &Request) -> Response {
    let (course, lesson) = match (param(req, "course"), param(req, "lesson")) {
        (Ok(c), Ok(l)) => (c, l),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    // The hot path: the stored document is served as it is, never re-parsed
    // into structs; only its bytes are hashed for the ETag.
    let Some(bytes) = content_raw(&lesson_key(course, lesson)) else {
        return error(404, "not_found", format!("no lesson {lesson:?} in course {course:?}"));
    };
    let etag = lms_sdk::etag(&bytes);
    let cache_control = lms_sdk::cache_control(&req.ctx);
    if lms_sdk::etag_matches(req.if_none_match.as_deref(), &etag) {
        let mut r = json(304, &serde_json::Value::Null);
        r.etag = Some(etag);
        r.cache_control = Some(cache_control);
        return r;
    }
    let body = match String::from_utf8(bytes)
        .map_err(|e| e.to_string())
        .and_then(|s| RawValue::from_string(s).map_err(|e| e.to_string()))
    {
        Ok(b) => b,
        Err(e) => return error(500, "content_invalid", format!("lesson {lesson:?}: {e}")),
    };
    Response {
        status: 200,
        body,
        etag: Some(etag),
        cache_control: Some(cache_control),
        statements: Vec::new(),
        html: None,
        once: false,
        download: None,
        facts: None,
    }
}

/// Every course in the index has a readable course document, and every lesson
/// it lists has a document with a body.
pub fn self_test() -> SelfTest {
    match check_content() {
        Ok(checks) => SelfTest { ok: true, checks, error: None },
        Err(e) => SelfTest { ok: false, checks: Vec::new(), error: Some(e) },
    }
}

fn check_content() -> Result<Vec<String>, String> {
    let index = content::<IndexDoc>("index")?.ok_or("content pack has no index")?;
    // An empty index is a node whose content has not arrived yet (a first
    // boot installs the modules before the factory content): nothing to check.
    let mut lessons = 0;
    for c in &index.courses {
        let course = content::<CourseDoc>(&course_key(&c.id))?
            .ok_or_else(|| format!("course {:?} is in the index but has no document", c.id))?;
        for l in &course.lessons {
            let doc = content::<LessonDoc>(&lesson_key(&c.id, &l.id))?
                .ok_or_else(|| format!("lesson {:?} of course {:?} has no document", l.id, c.id))?;
            if doc.body.trim().is_empty() {
                return Err(format!("lesson {:?} of course {:?} is empty", l.id, c.id));
            }
            lessons += 1;
        }
    }
    Ok(vec![format!("index lists {} courses", index.courses.len()), format!("{lessons} lessons readable")])
}

#[cfg(test)]
mod tests {
    use super::*;
    use lms_sdk::Context;
    use std::collections::BTreeMap;

    pub(crate) fn fixture() {
        let course = lms_content::Course {
            id: "c".into(),
            title: "Course".into(),
            language: "en".into(),
            description: "d".into(),
            completion: Default::default(),
            lessons: vec![lms_content::Lesson {
                id: "l1".into(),
                title: "One".into(),
                minutes: 3,
                body: "text ".repeat(50),
            }],
            quizzes: vec![],
        };
        lms_sdk::testing::set_content(&lms_content::flatten("https://x", &[course]).docs);
    }

    fn req(op: &str, params: &[(&str, &str)], inm: Option<String>) -> Request {
        Request {
            op: op.into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            query: BTreeMap::new(),
            body: None,
            if_none_match: inm,
            statements: vec![],
            facts: None,
            ctx: Context {
                cache_ttl: 300,
                actor: None,
                now: "2026-01-01T00:00:00Z".into(),
                request_id: "00000000-0000-4000-8000-000000000000".into(),
                language: None,
                csrf: None,
            },
        }
    }

    #[test]
    fn lesson_has_etag_cache_control_and_304() {
        fixture();
        let r = handle(&req("get_lesson", &[("course", "c"), ("lesson", "l1")], None));
        assert_eq!(r.status, 200);
        assert_eq!(r.cache_control.as_deref(), Some("public, max-age=300"));
        let etag = r.etag.clone().unwrap();
        let again = handle(&req("get_lesson", &[("course", "c"), ("lesson", "l1")], Some(etag)));
        assert_eq!(again.status, 304);
        let other = handle(&req("get_lesson", &[("course", "c"), ("lesson", "l1")], Some("\"nope\"".into())));
        assert_eq!(other.status, 200);
    }

    #[test]
    fn unknown_lesson_and_course_are_404() {
        fixture();
        assert_eq!(handle(&req("get_lesson", &[("course", "c"), ("lesson", "zz")], None)).status, 404);
        assert_eq!(handle(&req("get_course", &[("course", "zz")], None)).status, 404);
        assert_eq!(handle(&req("get_course", &[("course", "c")], None)).status, 200);
        assert_eq!(handle(&req("nope", &[], None)).status, 400);
    }

    #[test]
    fn self_test_passes_on_good_content_and_fails_without() {
        fixture();
        assert!(self_test().ok);
        lms_sdk::testing::set_content(&BTreeMap::new());
        let st = self_test();
        assert!(!st.ok);
        assert!(st.error.unwrap().contains("no index"));
        // An empty index (no content installed yet) passes: a first boot
        // installs the modules before the content.
        let empty = lms_content::flatten("", &[]);
        lms_sdk::testing::set_content(&empty.docs);
        let st = self_test();
        assert!(st.ok, "{:?}", st.error);
        assert_eq!(handle(&req("list_courses", &[], None)).status, 200);
    }
}
