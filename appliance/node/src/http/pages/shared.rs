//! Pages that are the same for everyone with the same role and language (a
//! lesson, the catalog): the web module renders one once per module set
//! with slots where the person goes (their name, their forms' CSRF token,
//! the actor of the statement the page records), the host keeps that render
//! in the set's shared answers (`cache_enabled`, `cache_ttl`) and fills the
//! slots in per request. A module update or reload starts with none kept.
//!
//! The slot markers are random per process, so no content can contain
//! them; the name is HTML-escaped as the template would have escaped it.

use super::super::error::ApiError;
use super::super::learner::{Call, bad_response, call_module, keep_statements, learner_actor, respond};
use super::{Page, SignedIn, fail, show, with};
use crate::http::AppState;
use crate::wasm::ModuleSet;
use crate::wasm::answers::Key;
use axum::response::Response;
use lms_abi::Response as Answer;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::{Arc, LazyLock};

struct Slots {
    name: String,
    csrf: String,
    /// The prefix of the numbered slots of a reader's marks (letters and
    /// digits only: the module refuses anything else).
    marks: String,
}

static SLOTS: LazyLock<Slots> = LazyLock::new(|| {
    let token = || crate::roster::sessions::random_token(18).replace(['-', '_'], "x");
    Slots {
        name: format!("lmsslotname{}", token()),
        csrf: format!("lmsslotcsrf{}", token()),
        marks: format!("lmsslotmark{}", token()),
    }
});

/// Text as askama escapes it in HTML.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&#38;"),
            '<' => out.push_str("&#60;"),
            '>' => out.push_str("&#62;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Shows the page of `call` (a `SignedIn::page` call of a page that is the
/// same for everyone but for the slots) from the shared render.
pub(super) async fn show_shared(node: &AppState, s: &SignedIn, call: Call) -> Page {
    if !node.cfg.cache_enabled {
        let mut call = call;
        call.actor = Some(learner_actor(node, s.id()));
        return show(node, s, call).await;
    }
    let set = node.current().map_err(|r| fail(ApiError::Unavailable(format!("modules not ready: {r}"))))?;
    let resp = shared_render(node, s, &set, call).await?;
    respond(resp).map_err(fail)
}

/// The page of `call` from `set`'s shared render (rendered now when none is
/// kept), with the person's name and CSRF token filled in and its
/// statements stored as the person's. A page that is not a 200 is returned
/// as the module answered it, never kept.
async fn shared_render(node: &AppState, s: &SignedIn, set: &Arc<ModuleSet>, call: Call) -> Result<Answer, Response> {
    let person = &s.session.person;
    let variant = format!("{}/{}", s.language, person.role.as_str());
    let key = Key::new("web", call.op, &call.params, &call.query, Some(&variant));
    let kept = match set.answers.get(&key) {
        Some(k) => k,
        None => {
            let mut render = call.on(set.clone());
            render.csrf = Some(SLOTS.csrf.clone());
            render.actor = Some(learner_actor(node, "slot"));
            if let Some(p) = render.body.as_mut().and_then(|b| b.get_mut("person")) {
                p["name"] = Value::String(SLOTS.name.clone());
                p["id"] = Value::String("slot".into());
            }
            let mut resp = call_module(node, render).await.map_err(fail)?;
            if resp.status != 200 || resp.html.is_none() {
                // A 404 and the like: nothing of the person in it, nothing stored.
                return Ok(resp);
            }
            for st in &mut resp.statements {
                if let Some(o) = st.as_object_mut() {
                    // The host gives each stored statement its own id and time.
                    o.remove("id");
                    o.remove("timestamp");
                }
            }
            set.answers.keep(&key, &resp, node.cfg.cache_ttl);
            resp
        }
    };
    let mut resp = kept;
    if let Some(html) = resp.html.take() {
        resp.html = Some(html.replace(&SLOTS.csrf, &s.session.csrf).replace(&SLOTS.name, &escape(&person.name)));
    }
    let actor = learner_actor(node, &person.id);
    for st in &mut resp.statements {
        st["actor"] = actor.clone();
    }
    keep_statements(node, &s.user(), "web", resp).await.map_err(fail)
}

/// The course page: the outline every reader of the course shares, from
/// the shared render with a slot for each of the reader's marks (the
/// summary, each lesson's and quiz's status), filled with the marks of the
/// reader's `progress`. The marks are rendered by `course_marks` and kept
/// by what they depend on (course, language, the progress itself), so a
/// reader whose progress has not changed since, or who is where another
/// reader was, costs no module call.
pub(super) async fn show_course(node: &AppState, s: &SignedIn, course: String, progress: Value) -> Page {
    let page = s.page("course").param("course", course.clone());
    if !node.cfg.cache_enabled {
        let mut page = show(node, s, with(page, "progress", progress)).await?;
        launch_forms_may_leave(node, &mut page);
        return Ok(page);
    }
    let set = node.current().map_err(|r| fail(ApiError::Unavailable(format!("modules not ready: {r}"))))?;
    let mut resp = shared_render(node, s, &set, with(page, "slots", Value::String(SLOTS.marks.clone()))).await?;
    if resp.status != 200 || resp.html.is_none() {
        return respond(resp).map_err(fail);
    }
    let html = resp.html.take().unwrap_or_default();
    let marks = course_marks(node, &set, &s.language, course, progress).await?;
    resp.html = Some(fill(&html, &SLOTS.marks, &marks).map_err(|e| fail(bad_response("web", e)))?);
    let mut page = respond(resp).map_err(fail)?;
    launch_forms_may_leave(node, &mut page);
    Ok(page)
}

/// A course page's launch forms answer with a redirect to the content
/// origin, which the page's `form-action` must name (browsers hold the
/// redirect of a form to it too). Nothing else is let in.
fn launch_forms_may_leave(node: &AppState, page: &mut Response) {
    let Some(origin) = node.cfg.content_url.as_deref().and_then(origin_of) else { return };
    let h = axum::http::header::CONTENT_SECURITY_POLICY;
    let csp = page.headers().get(&h).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let widened = csp.replace("form-action 'self'", &format!("form-action 'self' {origin}"));
    if let Ok(v) = axum::http::HeaderValue::from_str(&widened) {
        page.headers_mut().insert(h, v);
    }
}

/// `scheme://host[:port]` of a URL, if it is an http(s) one.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    let ok = matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    ok.then(|| format!("{scheme}://{host}"))
}

/// The reader's marks of a course page (see [`show_course`]).
async fn course_marks(
    node: &AppState,
    set: &Arc<ModuleSet>,
    language: &str,
    course: String,
    progress: Value,
) -> Result<Vec<String>, Response> {
    let digest = Sha256::digest(progress.to_string().as_bytes());
    let variant = format!("{language}/{}", hex::encode(&digest[..16]));
    let mut call = Call::new("web", "course_marks").param("course", course).on(set.clone());
    let key = Key::new("web", call.op, &call.params, &call.query, Some(&variant));
    let resp = match set.answers.get(&key) {
        Some(kept) => kept,
        None => {
            call.language = Some(language.to_string());
            call.body = Some(serde_json::json!({ "progress": progress }));
            let resp = call_module(node, call).await.map_err(fail)?;
            if resp.status != 200 {
                return Err(respond(resp).unwrap_or_else(fail));
            }
            set.answers.keep(&key, &resp, node.cfg.cache_ttl);
            resp
        }
    };
    #[derive(serde::Deserialize)]
    struct Marks {
        marks: Vec<String>,
    }
    let m: Marks =
        serde_json::from_str(resp.body.get()).map_err(|e| fail(bad_response("web", format!("course_marks: {e}"))))?;
    Ok(m.marks)
}

/// `html` with each slot `{prefix}{n};` replaced by `marks[n]`. Every mark
/// fills exactly one slot, or the page and its marks do not belong together.
fn fill(html: &str, prefix: &str, marks: &[String]) -> Result<String, String> {
    let mut out = String::with_capacity(html.len() + marks.iter().map(String::len).sum::<usize>());
    let mut used = vec![false; marks.len()];
    let mut rest = html;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at]);
        let after = &rest[at + prefix.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let n: Option<usize> = after[..digits].parse().ok();
        match (n, after.as_bytes().get(digits)) {
            (Some(n), Some(b';')) if n < marks.len() && !used[n] => {
                out.push_str(&marks[n]);
                used[n] = true;
            }
            _ => return Err(format!("course: slot {:?} has no mark of the {} given", &after[..digits], marks.len())),
        }
        rest = &after[digits + 1..];
    }
    out.push_str(rest);
    match used.iter().position(|u| !u) {
        Some(n) => Err(format!("course: mark {n} of {} has no slot in the page", marks.len())),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_as_the_templates_do() {
        assert_eq!(escape(r#"王美 <script>"x"&'y'"#), "王美 &#60;script&#62;&#34;x&#34;&#38;&#39;y&#39;");
        assert!(SLOTS.name.len() > 20 && SLOTS.name != SLOTS.csrf);
        assert!(SLOTS.marks.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn origins_of_the_content_url() {
        assert_eq!(origin_of("http://10.0.0.5:8081/").as_deref(), Some("http://10.0.0.5:8081"));
        assert_eq!(origin_of("https://content.example.org").as_deref(), Some("https://content.example.org"));
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("http://a b/"), None);
        assert_eq!(origin_of("http://x.org; script-src *"), None);
    }

    #[test]
    fn each_mark_fills_its_one_slot() {
        let marks = ["<b>0</b>".to_string(), "one".into(), "ten".into()];
        assert_eq!(fill("a P1; b P0; c P2;", "P", &marks).unwrap(), "a one b <b>0</b> c ten");
        assert!(fill("P0; P1;", "P", &marks).unwrap_err().contains("mark 2 of 3 has no slot"));
        assert!(fill("P0; P1; P2; P1;", "P", &marks).is_err(), "a slot twice");
        assert!(fill("P0; P1; P3;", "P", &marks).is_err(), "a slot without a mark");
        assert!(fill("P0; P1; P2", "P", &marks).is_err(), "a slot not closed");
        assert_eq!(fill("none", "P", &[]).unwrap(), "none");
    }
}
