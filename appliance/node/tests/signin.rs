//! Browser sign-in against a real node (issue 11): roster people sign in
//! with a form, get a session cookie, and /v1 then acts for them only.

mod common;
use common::people::*;
use common::*;
use lms_node::roster::Roster;

#[tokio::test]
async fn a_learner_signs_in_and_reaches_only_their_own_records() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    people(&n); // added while the node runs: no restart needed
    let amina = session_of(&login(&n, "amina", "amina-password").await);
    assert_eq!(get_as(&n, &amina, "/v1/courses").await.status, 200);
    assert_eq!(get_as(&n, &amina, "/v1/learners/amina/progress").await.status, 200);
    let r = get_as(&n, &amina, "/v1/learners/bo/progress").await;
    assert_eq!(r.status, 403, "{}", r.text());

    // An attempt is the session's learner's, whatever the body says.
    let attempt = |learner: Option<&str>| {
        let mut b = serde_json::json!({"answers": {"q1": "a"}});
        if let Some(l) = learner {
            b["learner"] = l.into();
        }
        b.to_string()
    };
    let send = |body: String| {
        let c = amina.clone();
        let url = n.url("/v1/quizzes/science-check/attempts");
        let client = n.client.clone();
        async move {
            client
                .send("POST".parse().unwrap(), &url, &[("cookie", &c), ("content-type", "application/json")], body)
                .await
                .unwrap()
        }
    };
    let r = send(attempt(Some("bo"))).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = send(attempt(None)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let stored = n.get("/xapi/statements?limit=5").await.json();
    let names: Vec<&str> = stored["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["actor"]["account"]["name"].as_str().unwrap())
        .collect();
    assert!(!names.is_empty() && names.iter().all(|a| *a == "amina"), "{names:?}");
    assert!(stored.to_string().contains("person:amina"), "authority is the person");

    // A session is no client credential: operations stay closed; in the
    // LRS the person reads and writes statements with themselves as actor.
    assert_eq!(get_as(&n, &amina, "/v1/sync/status").await.status, 403);
    let bo_id = uuid();
    let bo = statement(&bo_id, "bo", "https://v", "https://a");
    assert_eq!(n.send("POST", "/xapi/statements", bo.to_string()).await.status, 200);
    let xapi_as = |method: &str, path: &str, body: String| {
        let h = [("cookie", amina.as_str()), XAPI, ("content-type", "application/json")];
        let (client, url, method) = (n.client.clone(), n.url(path), method.parse().unwrap());
        async move { client.send(method, &url, &h, body).await.unwrap() }
    };
    let r = xapi_as("GET", "/xapi/statements", String::new()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let actors: Vec<String> =
        r.json()["statements"].as_array().unwrap().iter().map(|s| s["actor"]["account"]["name"].to_string()).collect();
    assert!(!actors.is_empty() && actors.iter().all(|a| a == "\"amina\""), "{actors:?}");
    assert_eq!(xapi_as("GET", &format!("/xapi/statements?statementId={bo_id}"), String::new()).await.status, 404);
    let r = xapi_as("POST", "/xapi/statements", statement(&uuid(), "bo", "https://v", "https://a").to_string()).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let mine = statement(&uuid(), "amina", "https://v", "https://a");
    let r = xapi_as("POST", "/xapi/statements", mine.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    n.stop().await;
}

#[tokio::test]
async fn coaches_see_their_classes_and_admins_everyone() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    people(&n);
    let wang = session_of(&login(&n, "wang", "wang-password").await);
    assert_eq!(get_as(&n, &wang, "/v1/learners/amina/progress").await.status, 200);
    assert_eq!(get_as(&n, &wang, "/v1/learners/bo/progress").await.status, 403);
    let root = session_of(&login(&n, "root", "root-password").await);
    assert_eq!(get_as(&n, &root, "/v1/learners/bo/progress").await.status, 200);
    n.stop().await;
}

#[tokio::test]
async fn bad_sign_ins_change_nothing_and_look_alike() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    people(&n);
    for (user, pw) in [("amina", "wrong-password"), ("nobody", "amina-password"), ("a/b", "x")] {
        let r = login(&n, user, pw).await;
        assert_eq!(r.status, 303, "{user}: {}", r.text());
        assert_eq!(r.header("location"), Some("/login?error=signin"), "{user}");
        assert!(r.headers.get_all("set-cookie").iter().all(|c| !c.to_str().unwrap().starts_with("lms_session=")));
    }
    // No CSRF cookie, or a field that differs: 403.
    let form = format!("username=amina&password=amina-password&csrf={CSRF}");
    assert_eq!(post_form(&n, "/login", "", &form).await.status, 403);
    assert_eq!(post_form(&n, "/login", "lms_csrf=another-token-0123456789", &form).await.status, 403);
    // An oversize form, and JSON instead of a form.
    let big = format!("{form}&pad={}", "x".repeat(10_000));
    assert_eq!(post_form(&n, "/login", &format!("lms_csrf={CSRF}"), &big).await.status, 413);
    let r = n
        .client
        .send("POST".parse().unwrap(), &n.url("/login"), &[("content-type", "application/json")], "{}".to_string())
        .await
        .unwrap();
    assert_eq!(r.status, 415);
    // A tampered or made-up session cookie signs nobody in.
    let amina = session_of(&login(&n, "amina", "amina-password").await);
    let mut tampered = amina.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(get_as(&n, &tampered, "/v1/courses").await.status, 401);
    assert_eq!(get_as(&n, "lms_session=made-up", "/v1/courses").await.status, 401);
    n.stop().await;
}

#[tokio::test]
async fn sessions_survive_a_restart_expire_and_end_on_sign_out() {
    let shared = tempfile::tempdir().unwrap();
    let data = shared.path().join("data");
    let d = data.clone();
    let n = TestNode::start(None, move |c| c.data_dir = d).await.ready().await;
    people(&n);
    let amina = session_of(&login(&n, "amina", "amina-password").await);
    n.stop().await;

    let d = data.clone();
    let n = TestNode::start(None, move |c| c.data_dir = d).await.ready().await;
    assert_eq!(get_as(&n, &amina, "/v1/courses").await.status, 200, "the session did not survive a restart");
    // Sign-out needs the session's CSRF token (the pages put it in their forms).
    let token = amina.strip_prefix("lms_session=").unwrap().to_string();
    let csrf = Roster::open(&n.node.cfg.roster_path()).unwrap().session(&token).unwrap().unwrap().csrf;
    assert_eq!(post_form(&n, "/logout", &amina, "csrf=wrong").await.status, 403);
    assert_eq!(get_as(&n, &amina, "/v1/courses").await.status, 200, "a refused sign-out ended the session");
    let r = post_form(&n, "/logout", &amina, &format!("csrf={csrf}")).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
    assert_eq!(get_as(&n, &amina, "/v1/courses").await.status, 401);
    n.stop().await;

    // session_ttl: an expired session is signed out.
    let d = data.clone();
    let n = TestNode::start(None, move |c| {
        c.data_dir = d;
        c.session_ttl = std::time::Duration::from_secs(1);
    })
    .await
    .ready()
    .await;
    let amina = session_of(&login(&n, "amina", "amina-password").await);
    assert_eq!(get_as(&n, &amina, "/v1/courses").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(get_as(&n, &amina, "/v1/courses").await.status, 401);
    n.stop().await;
}

/// GET /login: the web module's page in the browser's language, with the
/// CSRF token in the form and in a cookie, and the page headers.
#[tokio::test]
async fn the_sign_in_page_comes_from_the_web_module_and_works() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    people(&n);
    let r = n.client.get(&n.url("/login"), &[]).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let page = r.text();
    assert!(page.contains(r#"<html lang="zh-CN">"#) && page.contains("登录"), "{page}");
    let set = r.header("set-cookie").unwrap();
    let token = set.strip_prefix("lms_csrf=").unwrap().split(';').next().unwrap().to_string();
    assert!(page.contains(&format!(r#"name="csrf" value="{token}""#)), "the form lacks the cookie's token");

    let en = n.client.get(&n.url("/login"), &[("accept-language", "en-GB,en;q=0.9")]).await.unwrap().text();
    assert!(en.contains(r#"<html lang="en">"#) && en.contains("Sign in"), "{en}");
    let failed = n.client.get(&n.url("/login?error=signin&lang=en"), &[]).await.unwrap().text();
    assert!(failed.contains("role=\"alert\""), "{failed}");

    // The form as a browser posts it signs in.
    let r = post_form(
        &n,
        "/login",
        &format!("lms_csrf={token}"),
        &format!("csrf={token}&username=amina&password=amina-password"),
    )
    .await;
    let session = session_of(&r);
    assert_eq!(get_as(&n, &session, "/v1/learners/amina/progress").await.status, 200);
    n.stop().await;
}

/// A browser without a session gets 401 without a Basic challenge (which
/// would open a credentials dialog); a program still gets the challenge.
#[tokio::test]
async fn browsers_are_not_asked_for_basic_credentials() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    let program = n.client.get(&n.url("/v1/courses"), &[]).await.unwrap();
    assert_eq!(program.status, 401);
    assert!(program.header("www-authenticate").is_some());
    for headers in [[("sec-fetch-mode", "cors")], [("cookie", "lms_session=expired-or-made-up")]] {
        let r = n.client.get(&n.url("/v1/courses"), &headers).await.unwrap();
        assert_eq!(r.status, 401);
        assert!(r.header("www-authenticate").is_none(), "{headers:?}");
        assert_eq!(r.json()["error"], "sign_in_required");
    }
    n.stop().await;
}

#[tokio::test]
async fn a_person_removed_from_the_roster_is_signed_out_within_the_session_reuse_time() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    people(&n);
    let amina = session_of(&login(&n, "amina", "amina-password").await);
    assert_eq!(get_as(&n, &amina, "/").await.status, 200);
    assert_eq!(get_as(&n, &amina, "/").await.status, 200, "the reused session");
    Roster::open(&n.node.cfg.roster_path()).unwrap().remove("amina").unwrap();
    tokio::time::sleep(lms_node::http::session::SESSION_REUSE + std::time::Duration::from_millis(300)).await;
    let r = get_as(&n, &amina, "/").await;
    assert_eq!((r.status.as_u16(), r.header("location")), (303, Some("/login")));
    assert_eq!(get_as(&n, &amina, "/v1/learners/amina/progress").await.status, 401);
    n.stop().await;
}
