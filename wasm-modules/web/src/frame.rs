//! What every page shares: the frame `base.html` draws (language, the
//! stylesheet, the skip link, the signed-in person's navigation and sign-out
//! form, the language switch) and the person the host says is signed in.

use crate::i18n::Messages;
use askama::Template;
use lms_sdk::{Request, Response, error, html};
use serde::Deserialize;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The URL of the static file `name` (a file of `static/`).
pub fn asset(name: &str) -> &'static str {
    ASSETS.iter().find(|(n, _)| *n == name).map(|(_, url)| *url).unwrap_or("")
}

/// The signed-in person, as the host passes them in `body.person`
/// (`{id, name, role}`; the pages show the name).
#[derive(Debug, Clone, Deserialize)]
pub struct Person {
    pub name: String,
    /// `learner`, `coach` or `admin`: coaches and admins see the coach view.
    #[serde(default)]
    pub role: String,
}

impl Person {
    pub fn coaches(&self) -> bool {
        self.role == "coach" || self.role == "admin"
    }
}

pub struct NavItem {
    pub href: &'static str,
    pub label: String,
    pub current: bool,
}

pub struct Frame {
    pub lang: &'static str,
    pub app_name: String,
    pub css: &'static str,
    pub icon: &'static str,
    pub skip: String,
    /// This page's path: where the language switch comes back to.
    pub path: String,
    /// The token the page's forms carry (the session's, or the sign-in
    /// form's double-submit token).
    pub csrf: String,
    pub language_switch: String,
    /// Empty when nobody is signed in.
    pub nav: Vec<NavItem>,
    pub nav_label: String,
    pub signed_in_as: String,
    pub sign_out: String,
}

/// The sections of the navigation, by path; `/coach` is for coaches and
/// admins, `/roster` for admins.
const SECTIONS: [(&str, &str); 5] = [
    ("/", "nav-home"),
    ("/courses", "nav-courses"),
    ("/progress", "nav-progress"),
    ("/coach", "nav-coach"),
    ("/roster", "nav-roster"),
];

impl Frame {
    /// The frame of a page at `path`, for `person` when someone is signed in.
    pub fn new(m: &Messages, req: &Request, path: String, person: Option<&Person>) -> Result<Frame, Response> {
        let Some(csrf) = req.ctx.csrf.clone() else {
            return Err(error(500, "no_csrf", "the host gave no CSRF token for the page's forms"));
        };
        let section = SECTIONS.iter().rev().find(|(p, _)| path == *p || (*p != "/" && path.starts_with(p)));
        let nav = match person {
            None => vec![],
            Some(p) => SECTIONS
                .iter()
                .filter(|(href, _)| match *href {
                    "/coach" => p.coaches(),
                    "/roster" => p.role == "admin",
                    _ => true,
                })
                .map(|(href, key)| NavItem { href, label: m.get(key), current: section.is_some_and(|s| s.0 == *href) })
                .collect(),
        };
        Ok(Frame {
            lang: m.lang,
            app_name: m.get("app-name"),
            css: asset("app.css"),
            icon: asset("icon.svg"),
            skip: m.get("skip-to-content"),
            path,
            csrf,
            language_switch: m.get("language-switch"),
            nav,
            nav_label: m.get("nav-label"),
            signed_in_as: person.map(|p| m.with("signed-in-as", &[("name", p.name.clone())])).unwrap_or_default(),
            sign_out: m.get("sign-out"),
        })
    }
}

/// `body.person`, which the host sets on every signed-in page.
pub fn person(req: &Request) -> Result<Person, Response> {
    let p = req.body.as_ref().and_then(|b| b.get("person")).cloned();
    p.and_then(|p| serde_json::from_value(p).ok())
        .ok_or_else(|| error(400, "missing_person", format!("{} needs body.person {{id, name, role}}", req.op)))
}

/// `body.{key}` as `T`; a 400 naming the field otherwise.
pub fn field<T: serde::de::DeserializeOwned>(req: &Request, key: &str) -> Result<T, Response> {
    let v = req.body.as_ref().and_then(|b| b.get(key)).cloned().unwrap_or(serde_json::Value::Null);
    serde_json::from_value(v).map_err(|e| error(400, "invalid_field", format!("{}: body.{key}: {e}", req.op)))
}

/// A path parameter the host always sets.
pub fn param<'a>(req: &'a Request, key: &str) -> Result<&'a str, Response> {
    req.params.get(key).map(String::as_str).ok_or_else(|| error(400, "missing_param", format!("missing {key:?}")))
}

/// A rendered page, or the render error as a 500.
pub fn page(t: &impl Template) -> Response {
    match t.render() {
        Ok(text) => html(200, text),
        Err(e) => error(500, "render_failed", e.to_string()),
    }
}

/// A content document the pages need; a missing one is a 404 (a course or
/// lesson that is not in the pack), a malformed one a 500.
pub fn doc<T: serde::de::DeserializeOwned>(key: &str) -> Result<T, Response> {
    match lms_sdk::content::<T>(key) {
        Ok(Some(d)) => Ok(d),
        Ok(None) => Err(error(404, "not_found", format!("no {key:?} in the content pack"))),
        Err(e) => Err(error(500, "content_invalid", e)),
    }
}
