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
use super::super::learner::{Call, call_module, keep_statements, learner_actor, respond};
use super::{Page, SignedIn, fail, show};
use crate::http::AppState;
use serde_json::Value;
use std::sync::LazyLock;

struct Slots {
    name: String,
    csrf: String,
}

static SLOTS: LazyLock<Slots> = LazyLock::new(|| Slots {
    name: format!("lmsslotname{}", crate::roster::sessions::random_token(18)),
    csrf: format!("lmsslotcsrf{}", crate::roster::sessions::random_token(18)),
});

/// Text as askama escapes it in HTML.
fn escape(text: &str) -> String {
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
    let person = &s.session.person;
    let variant = format!("{}/{}", s.language, person.role.as_str());
    let key = crate::wasm::answers::Key::new("web", call.op, &call.params, &call.query, Some(&variant));
    let kept = match set.answers.get(&key) {
        Some(k) => k,
        None => {
            let mut render = call;
            render.csrf = Some(SLOTS.csrf.clone());
            render.actor = Some(learner_actor(node, "slot"));
            if let Some(p) = render.body.as_mut().and_then(|b| b.get_mut("person")) {
                p["name"] = Value::String(SLOTS.name.clone());
                p["id"] = Value::String("slot".into());
            }
            let mut resp = call_module(node, render).await.map_err(fail)?;
            if resp.status != 200 || resp.html.is_none() {
                // A 404 and the like: nothing of the person in it, nothing stored.
                return respond(resp).map_err(fail);
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
    let resp = keep_statements(node, &s.user(), "web", resp).await.map_err(fail)?;
    respond(resp).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_as_the_templates_do() {
        assert_eq!(escape(r#"王美 <script>"x"&'y'"#), "王美 &#60;script&#62;&#34;x&#34;&#38;&#39;y&#39;");
        assert!(SLOTS.name.len() > 20 && SLOTS.name != SLOTS.csrf);
    }
}
