//! People in the roster and their browser sessions: sign in with the form,
//! then GET and POST as that person.

use super::TestNode;
use lms_node::client::Reply;
use lms_node::roster::{NewPerson, Role, Roster};

pub const CSRF: &str = "test-csrf-token-0123456789";

pub fn people(n: &TestNode) {
    let mut r = Roster::open(&n.node.cfg.roster_path()).unwrap();
    for (id, role, class) in [
        ("amina", Role::Learner, "7B"),
        ("bo", Role::Learner, "8A"),
        ("wang", Role::Coach, "7B"),
        ("root", Role::Admin, ""),
    ] {
        let classes: Vec<String> = if class.is_empty() { vec![] } else { vec![class.into()] };
        r.add(&NewPerson::new(id, id, role, &classes, &format!("{id}-password")).unwrap()).unwrap();
    }
}

pub async fn post_form(n: &TestNode, path: &str, cookies: &str, form: &str) -> Reply {
    n.client
        .send(
            "POST".parse().unwrap(),
            &n.url(path),
            &[("cookie", cookies), ("content-type", "application/x-www-form-urlencoded")],
            form.to_string(),
        )
        .await
        .unwrap()
}

pub async fn login(n: &TestNode, user: &str, password: &str) -> Reply {
    post_form(n, "/login", &format!("lms_csrf={CSRF}"), &format!("username={user}&password={password}&csrf={CSRF}"))
        .await
}

/// The session cookie pair (`lms_session=...`) of a successful sign-in.
pub fn session_of(r: &Reply) -> String {
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/"));
    let set: Vec<&str> = r.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    let s = set.iter().find(|c| c.starts_with("lms_session=")).unwrap_or_else(|| panic!("no session cookie: {set:?}"));
    assert!(s.contains("HttpOnly") && s.contains("SameSite=Lax") && s.contains("Path=/"), "{s}");
    assert!(!s.contains("Secure"), "Secure over plain HTTP: {s}");
    s.split(';').next().unwrap().to_string()
}

pub async fn get_as(n: &TestNode, cookie: &str, path: &str) -> Reply {
    n.client.get(&n.url(path), &[("cookie", cookie)]).await.unwrap()
}

/// A page's text, after checking the headers every page carries.
pub fn page(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.header("content-security-policy").unwrap().contains("script-src 'self'"));
    r.text()
}

/// The session's CSRF token, as the page's forms carry it.
pub fn csrf_in(page: &str) -> String {
    let at = page.find(r#"name="csrf" value=""#).expect("a form with a csrf field") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

/// Signs `who` in (password `{who}-password`): their cookie and CSRF token.
pub async fn signed_in(n: &TestNode, who: &str) -> (String, String) {
    let cookie = session_of(&login(n, who, &format!("{who}-password")).await);
    let home = page(&get_as(n, &format!("{cookie}; lms_lang=en"), "/").await);
    (cookie, csrf_in(&home))
}
