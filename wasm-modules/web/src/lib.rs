//! The web module: the pages learners and coaches see (issue 11), rendered
//! from compiled templates (askama: checked and HTML-escaped when the module
//! is built) with messages from Fluent translation files (`i18n/*.ftl`), in
//! the language the host chose (`ctx.language`: zh-CN or en). It ships in the
//! signed bundle, so a fix to a page reaches the fleet as a module update.
//!
//! Ops: `login_page` (query `error=signin` after a refused sign-in; the
//! host passes the form's CSRF token in `ctx.csrf`); `home` (body
//! `{"person": {"id", "name", "role"}}`, the signed-in person as the host
//! knows them; `ctx.csrf` is the session's token for the sign-out form).
//!
//! Pages use no script and no asset from outside the node.

use askama::Template;
use fluent_bundle::FluentArgs;
use fluent_bundle::{FluentBundle, FluentResource};
use lms_content::IndexDoc;
use lms_sdk::{Request, Response, SelfTest, content, error, html};

lms_sdk::export_module!(handle: handle, self_test: self_test);

/// Languages with a translation file; the first is the fallback.
pub const LANGUAGES: [(&str, &str); 2] =
    [("zh-CN", include_str!("../i18n/zh-CN.ftl")), ("en", include_str!("../i18n/en.ftl"))];

/// One language's messages.
pub struct Messages {
    pub lang: &'static str,
    bundle: FluentBundle<FluentResource>,
}

impl Messages {
    /// The messages of `lang`, or of the first language when there is none.
    pub fn new(lang: Option<&str>) -> Messages {
        let (code, text) = LANGUAGES.iter().find(|(c, _)| Some(*c) == lang).copied().unwrap_or(LANGUAGES[0]);
        let id = code.parse().expect("a valid language tag");
        let mut bundle = FluentBundle::new(vec![id]);
        // No Unicode isolation marks: the pages are single-direction.
        bundle.set_use_isolating(false);
        let resource = FluentResource::try_new(text.to_string()).unwrap_or_else(|(r, _)| r);
        let _ = bundle.add_resource(resource);
        Messages { lang: code, bundle }
    }

    /// The message `key`; the key itself when missing (the self-test
    /// refuses a module where any is).
    pub fn get(&self, key: &str) -> String {
        self.format(key, None)
    }

    /// The message `key` with its variables.
    pub fn with(&self, key: &str, args: &[(&str, String)]) -> String {
        let mut a = FluentArgs::new();
        for (k, v) in args {
            a.set(*k, v.clone());
        }
        self.format(key, Some(&a))
    }

    fn format(&self, key: &str, args: Option<&FluentArgs>) -> String {
        let Some(pattern) = self.bundle.get_message(key).and_then(|m| m.value()) else { return key.to_string() };
        let mut errors = Vec::new();
        self.bundle.format_pattern(pattern, args, &mut errors).into_owned()
    }
}

/// What base.html needs of every page.
struct Frame {
    lang: &'static str,
    app_name: String,
    language_switch: String,
}

impl Frame {
    fn new(m: &Messages) -> Frame {
        Frame { lang: m.lang, app_name: m.get("app-name"), language_switch: m.get("language-switch") }
    }
}

/// A rendered page, or the render error as a 500.
fn page(t: &impl Template) -> Response {
    match t.render() {
        Ok(text) => html(200, text),
        Err(e) => error(500, "render_failed", e.to_string()),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct Login {
    frame: Frame,
    title: String,
    heading: String,
    failed: bool,
    failed_text: String,
    csrf: String,
    username: String,
    password: String,
    submit: String,
}

struct CourseLine {
    title: String,
    description: String,
    counts: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    frame: Frame,
    title: String,
    welcome: String,
    my_courses: String,
    no_courses: String,
    courses: Vec<CourseLine>,
    csrf: String,
    sign_out: String,
}

pub fn handle(req: &Request) -> Response {
    match req.op.as_str() {
        "login_page" => login_page(req),
        "home" => home(req),
        other => error(400, "unknown_op", format!("web has no op {other:?}")),
    }
}

fn login_page(req: &Request) -> Response {
    let m = Messages::new(req.ctx.language.as_deref());
    let Some(csrf) = req.ctx.csrf.clone() else {
        return error(500, "no_csrf", "the host gave no CSRF token for the sign-in form");
    };
    page(&Login {
        frame: Frame::new(&m),
        title: m.get("sign-in-title"),
        heading: m.get("sign-in-heading"),
        failed: req.query.get("error").is_some_and(|e| e == "signin"),
        failed_text: m.get("sign-in-failed"),
        csrf,
        username: m.get("username"),
        password: m.get("password"),
        submit: m.get("sign-in-submit"),
    })
}

fn home(req: &Request) -> Response {
    let m = Messages::new(req.ctx.language.as_deref());
    let Some(csrf) = req.ctx.csrf.clone() else {
        return error(500, "no_csrf", "the host gave no CSRF token for the sign-out form");
    };
    let person = req.body.as_ref().and_then(|b| b.get("person"));
    let Some(name) = person.and_then(|p| p.get("name")).and_then(|n| n.as_str()) else {
        return error(400, "missing_person", "home needs body.person.name");
    };
    let index = match content::<IndexDoc>("index") {
        Ok(Some(i)) => i,
        Ok(None) => return error(500, "content_missing", "the content pack has no index"),
        Err(e) => return error(500, "content_invalid", e),
    };
    let courses = index
        .courses
        .iter()
        .map(|c| CourseLine {
            title: c.title.clone(),
            description: c.description.clone(),
            counts: m.with("course-counts", &[("lessons", c.lessons.to_string()), ("quizzes", c.quizzes.to_string())]),
        })
        .collect();
    page(&Home {
        frame: Frame::new(&m),
        title: m.get("home-title"),
        welcome: m.with("welcome", &[("name", name.to_string())]),
        my_courses: m.get("my-courses"),
        no_courses: m.get("no-courses"),
        courses,
        csrf,
        sign_out: m.get("sign-out"),
    })
}

/// The message ids of a translation file.
fn ids(text: &str) -> Vec<String> {
    let r = FluentResource::try_new(text.to_string()).unwrap_or_else(|(r, _)| r);
    let mut ids: Vec<String> = r
        .entries()
        .filter_map(|e| match e {
            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
            _ => None,
        })
        .collect();
    ids.sort();
    ids
}

pub fn self_test() -> SelfTest {
    let mut checks = Vec::new();
    // Every language has every message, and each file parses cleanly.
    let reference = ids(LANGUAGES[1].1);
    for (code, text) in LANGUAGES {
        if let Err((_, errs)) = FluentResource::try_new(text.to_string()) {
            return SelfTest { ok: false, checks, error: Some(format!("i18n/{code}.ftl: {errs:?}")) };
        }
        if ids(text) != reference {
            return SelfTest {
                ok: false,
                checks,
                error: Some(format!("i18n/{code}.ftl does not have the same messages as i18n/en.ftl")),
            };
        }
        checks.push(format!("i18n {code}"));
    }
    SelfTest { ok: true, checks, error: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(op: &str, language: Option<&str>, csrf: Option<&str>) -> Request {
        let mut r = lms_sdk::testing::request(op);
        r.ctx.language = language.map(str::to_string);
        r.ctx.csrf = csrf.map(str::to_string);
        r
    }

    #[test]
    fn the_sign_in_page_in_both_languages() {
        let zh = handle(&request("login_page", Some("zh-CN"), Some("tok<en>"))).html.unwrap();
        assert!(zh.contains(r#"<html lang="zh-CN">"#) && zh.contains("登录") && zh.contains(r#"name="username""#));
        // The token is escaped, never markup.
        assert!(zh.contains("tok&#60;en&#62;") || zh.contains("tok&lt;en&gt;"), "{zh}");
        let en = handle(&request("login_page", Some("en"), Some("t"))).html.unwrap();
        assert!(en.contains(r#"<html lang="en">"#) && en.contains("Sign in") && !en.contains("role=\"alert\""));
        // Unknown languages fall back to Chinese.
        assert!(handle(&request("login_page", Some("fr"), Some("t"))).html.unwrap().contains("登录"));
        let mut failed = request("login_page", Some("en"), Some("t"));
        failed.query.insert("error".into(), "signin".into());
        let page = handle(&failed).html.unwrap();
        assert!(page.contains("role=\"alert\"") && page.contains("aria-describedby=\"sign-in-error\""), "{page}");
        assert_eq!(handle(&request("login_page", None, None)).status, 500);
    }

    #[test]
    fn home_greets_the_person_and_lists_courses_escaped() {
        let docs = std::collections::BTreeMap::from([(
            "index".to_string(),
            serde_json::json!({"activity_base": "https://x", "courses": [
                {"id": "c", "title": "Maths <b>", "description": "Numbers", "lessons": 2, "quizzes": 1}
            ]}),
        )]);
        lms_sdk::testing::set_content(&docs);
        let mut r = request("home", Some("zh-CN"), Some("tok"));
        r.body = Some(serde_json::json!({"person": {"id": "mei", "name": "王美 <script>", "role": "learner"}}));
        let page = handle(&r).html.unwrap();
        assert!(page.contains("欢迎,王美 &#60;script&#62;") || page.contains("欢迎,王美 &lt;script&gt;"), "{page}");
        assert!(page.contains("2 节课,1 个测验") && !page.contains("<b>"), "{page}");
        assert!(page.contains(r#"action="/logout""#) && page.contains(r#"value="tok""#));
        r.body = None;
        assert_eq!(handle(&r).status, 400);
    }

    #[test]
    fn translations_are_complete() {
        let t = self_test();
        assert!(t.ok, "{:?}", t.error);
        assert_eq!(Messages::new(Some("en")).get("no-such-message"), "no-such-message");
    }
}
