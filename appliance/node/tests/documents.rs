//! The document resources (State, Activity Profile, Agent Profile), the
//! Activities and Agents resources and both xAPI versions, against a real
//! node on 127.0.0.1:0.

mod common;
use common::people::{people, signed_in};
use common::*;
use lms_node::client::{Reply, basic_auth};
use serde_json::{Value, json};

const ACT: &str = "https://lms.example.org/xapi/activities/courses/arithmetic";

fn agent(name: &str) -> Value {
    json!({"objectType": "Agent", "account": {"homePage": "https://lms.example.org/learners", "name": name}})
}

fn enc(v: &str) -> String {
    serde_urlencoded::to_string([("x", v)]).unwrap()[2..].to_string()
}

fn state_url(who: &str, state: Option<&str>, registration: Option<&str>) -> String {
    let mut u = format!("/xapi/activities/state?activityId={}&agent={}", enc(ACT), enc(&agent(who).to_string()));
    if let Some(s) = state {
        u.push_str(&format!("&stateId={}", enc(s)));
    }
    if let Some(r) = registration {
        u.push_str(&format!("&registration={r}"));
    }
    u
}

/// A request as the test credential (scope `all`) with `headers` besides.
async fn call(n: &TestNode, method: &str, path: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
    let auth = basic_auth(USER, PASSWORD);
    let mut h: Vec<(&str, &str)> = vec![("authorization", &auth), XAPI];
    h.extend_from_slice(headers);
    n.client.send(method.parse().unwrap(), &n.url(path), &h, body.into()).await.unwrap()
}

const JSON: (&str, &str) = ("content-type", "application/json");

fn sha1_hex(b: &[u8]) -> String {
    lms_node::xapi::documents::etag_of(b)
}

#[tokio::test]
async fn state_round_trips_json_and_binary_merges_lists_and_deletes() {
    let n = TestNode::start(None, |_| {}).await;
    let url = state_url("ann", Some("bookmark"), None);

    // PUT without concurrency headers (as cmi5 AUs and scormdriver.js do), twice.
    let body = br#"{"page": 3,  "score": {"raw": 1}}"#;
    for _ in 0..2 {
        let r = call(&n, "PUT", &url, &[JSON], body.to_vec()).await;
        assert_eq!(r.status, 204, "{}", r.text());
    }
    let r = call(&n, "GET", &url, &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], body, "stored byte for byte");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("etag").unwrap(), format!("\"{}\"", sha1_hex(body)));
    assert!(r.header("last-modified").unwrap().ends_with(" GMT"));
    assert_eq!(r.header("x-experience-api-version"), Some("2.0.0"));
    // A matching If-None-Match: 304.
    let etag = r.header("etag").unwrap().to_string();
    assert_eq!(call(&n, "GET", &url, &[("if-none-match", &etag)], "").await.status, 304);
    // HEAD: the headers without the body.
    let r = call(&n, "HEAD", &url, &[], "").await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag").unwrap(), etag);

    // POST merges top-level keys.
    let r = call(&n, "POST", &url, &[JSON], r#"{"page": 4, "done": true}"#).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = call(&n, "GET", &url, &[], "").await;
    assert_eq!(r.json(), json!({"page": 4, "score": {"raw": 1}, "done": true}));

    // Binary round-trips; POST over it is 400 and changes nothing.
    let bin = state_url("ann", Some("suspend"), None);
    let bytes: Vec<u8> = (0..=255u8).collect();
    let r = call(&n, "PUT", &bin, &[("content-type", "application/octet-stream")], bytes.clone()).await;
    assert_eq!(r.status, 204);
    let r = call(&n, "POST", &bin, &[JSON], r#"{"a": 1}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "not_mergeable");
    let r = call(&n, "GET", &bin, &[], "").await;
    assert_eq!(r.body.to_vec(), bytes);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    // POST of something that is not JSON: 400, nothing stored.
    let r = call(&n, "POST", &state_url("ann", Some("new"), None), &[("content-type", "text/plain")], "hello").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "body");
    assert_eq!(call(&n, "GET", &state_url("ann", Some("new"), None), &[], "").await.status, 404);

    // A registration keeps its own states.
    let reg = uuid();
    let r = call(&n, "PUT", &state_url("ann", Some("bookmark"), Some(&reg)), &[JSON], r#"{"r": 1}"#).await;
    assert_eq!(r.status, 204);
    assert_eq!(call(&n, "GET", &url, &[], "").await.json()["page"], 4);
    // Ids: all of the activity + agent, or one registration's; since.
    let r = call(&n, "GET", &state_url("ann", None, None), &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!(["bookmark", "suspend"]));
    let r = call(&n, "GET", &state_url("ann", None, Some(&reg)), &[], "").await;
    assert_eq!(r.json(), json!(["bookmark"]));
    let since = format!("{}&since={}", state_url("ann", None, None), enc("2999-01-01T00:00:00Z"));
    assert_eq!(call(&n, "GET", &since, &[], "").await.json(), json!([]));
    // Another agent's states are apart.
    assert_eq!(call(&n, "GET", &state_url("bo", None, None), &[], "").await.json(), json!([]));

    // DELETE one, then all of the activity + agent.
    assert_eq!(call(&n, "DELETE", &bin, &[], "").await.status, 204);
    assert_eq!(call(&n, "GET", &bin, &[], "").await.status, 404);
    assert_eq!(call(&n, "DELETE", &state_url("ann", None, None), &[], "").await.status, 204);
    assert_eq!(call(&n, "GET", &state_url("ann", None, None), &[], "").await.json(), json!([]));
    n.stop().await;
}

#[tokio::test]
async fn profiles_honour_if_match_and_refuse_blind_overwrites() {
    let n = TestNode::start(None, |_| {}).await;
    let urls = [
        format!("/xapi/activities/profile?activityId={}&profileId=settings", enc(ACT)),
        format!("/xapi/agents/profile?agent={}&profileId=preferences", enc(&agent("ann").to_string())),
    ];
    for url in &urls {
        // Creating needs no header; If-None-Match: * says "only if new".
        let r = call(&n, "PUT", url, &[JSON, ("if-none-match", "*")], r#"{"v": 1}"#).await;
        assert_eq!(r.status, 204, "{url}: {}", r.text());
        let etag = call(&n, "GET", url, &[], "").await.header("etag").unwrap().to_string();
        // A blind PUT over it: 409; a stale If-Match or If-None-Match: *: 412; nothing changes.
        let r = call(&n, "PUT", url, &[JSON], r#"{"v": 2}"#).await;
        assert_eq!(r.status, 409, "{url}: {}", r.text());
        for h in [("if-match", "\"0000000000000000000000000000000000000000\""), ("if-none-match", "*")] {
            let r = call(&n, "PUT", url, &[JSON, h], r#"{"v": 2}"#).await;
            assert_eq!(r.status, 412, "{url} {h:?}: {}", r.text());
            assert_eq!(r.json()["error"], "precondition_failed");
        }
        let r = call(&n, "DELETE", url, &[("if-match", "\"00\"")], "").await;
        assert_eq!(r.status, 412);
        assert_eq!(call(&n, "GET", url, &[], "").await.json(), json!({"v": 1}));
        // The current ETag replaces it; POST merges without a header.
        assert_eq!(call(&n, "PUT", url, &[JSON, ("if-match", &etag)], r#"{"v": 2}"#).await.status, 204);
        assert_eq!(call(&n, "POST", url, &[JSON], r#"{"w": 3}"#).await.status, 204);
        assert_eq!(call(&n, "GET", url, &[], "").await.json(), json!({"v": 2, "w": 3}));
        // If-Match on a document that does not exist: 412.
        let missing = url.replace("Id=settings", "Id=none").replace("Id=preferences", "Id=none");
        assert_eq!(call(&n, "PUT", &missing, &[JSON, ("if-match", "*")], "{}").await.status, 412);
        // The list, then DELETE (a profile needs its id).
        let list = url.split("&profileId").next().unwrap();
        assert_eq!(call(&n, "GET", list, &[], "").await.json().as_array().unwrap().len(), 1);
        assert_eq!(call(&n, "DELETE", list, &[], "").await.status, 400);
        assert_eq!(call(&n, "DELETE", url, &[], "").await.status, 204);
        assert_eq!(call(&n, "GET", url, &[], "").await.status, 404);
    }
    n.stop().await;
}

#[tokio::test]
async fn bad_document_requests_name_the_problem_and_change_nothing() {
    let n = TestNode::start(None, |c| c.max_document_bytes = 4096).await;
    let url = state_url("ann", Some("s"), None);
    for (path, field) in [
        (url.replace("agent=", "agent=%7Bnot-json"), "agent"),
        (state_url("ann", Some("s"), None).replace("activityId=https", "activityId=not%20an%20iri"), "activityId"),
        (format!("/xapi/activities/state?agent={}&stateId=s", enc(&agent("ann").to_string())), "activityId"),
        (format!("{}&registration=nope", url), "registration"),
        (format!("{url}&colour=red"), "colour"),
        (format!("{url}&since=2020-01-01T00:00:00Z"), "since"),
    ] {
        let r = call(&n, "PUT", &path, &[JSON], "{}").await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.json()["field"].as_str().unwrap().starts_with(field), "{path}: {}", r.text());
    }
    // An agent without an identifier.
    let anon = format!("/xapi/agents/profile?profileId=p&agent={}", enc(r#"{"objectType":"Agent","name":"x"}"#));
    assert_eq!(call(&n, "GET", &anon, &[], "").await.status, 400);
    // JSON that is not JSON.
    let r = call(&n, "PUT", &url, &[JSON], "{oops").await;
    assert_eq!(r.status, 400);
    // Oversize: 413 naming the limit, nothing stored.
    let r = call(&n, "PUT", &url, &[("content-type", "text/plain")], vec![b'x'; 5000]).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.json()["message"].as_str().unwrap().contains("4096"));
    assert_eq!(call(&n, "GET", &url, &[], "").await.status, 404);
    // PUT/POST need the id.
    assert_eq!(call(&n, "PUT", &state_url("ann", None, None), &[JSON], "{}").await.status, 400);
    n.stop().await;
}

#[tokio::test]
async fn both_versions_are_spoken_and_answered_in_kind() {
    let n = TestNode::start(None, |_| {}).await;
    let auth = basic_auth(USER, PASSWORD);
    let v103 = ("X-Experience-API-Version", "1.0.3");
    let id = uuid();
    let s = statement(&id, "ann", "http://adlnet.gov/expapi/verbs/completed", ACT);
    let r = n
        .client
        .send(
            "POST".parse().unwrap(),
            &n.url("/xapi/statements"),
            &[("authorization", &auth), v103, JSON],
            s.to_string(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-experience-api-version"), Some("1.0.3"));
    let r = n
        .client
        .get(&n.url(&format!("/xapi/statements?statementId={id}")), &[("authorization", &auth), v103])
        .await
        .unwrap();
    assert_eq!(r.header("x-experience-api-version"), Some("1.0.3"));
    assert_eq!(r.json()["version"], "1.0.0", "1.0.3 sets a missing version to 1.0.0");
    let r = n.client.get(&n.url(&state_url("ann", None, None)), &[("authorization", &auth), v103]).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-experience-api-version"), Some("1.0.3"));
    // A statement stored over 2.0 keeps 2.0.0.
    let id2 = uuid();
    assert_eq!(
        n.send("POST", "/xapi/statements", statement(&id2, "ann", "https://v", ACT).to_string()).await.status,
        200
    );
    assert_eq!(n.get(&format!("/xapi/statements?statementId={id2}")).await.json()["version"], "2.0.0");
    // Anything else: 400 naming the header, on every resource.
    for path in ["/xapi/statements", &state_url("ann", None, None), "/xapi/agents?agent=x"] {
        for bad in ["1.0.4", "2.1.0", "1.1"] {
            let r = n
                .client
                .get(&n.url(path), &[("authorization", &auth), ("X-Experience-API-Version", bad)])
                .await
                .unwrap();
            assert_eq!(r.status, 400, "{path} {bad}");
            assert_eq!(r.json()["field"], "X-Experience-API-Version");
        }
    }
    // HEAD on GET routes.
    let r = call(&n, "HEAD", "/xapi/statements", &[], "").await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert!(r.header("x-experience-api-consistent-through").is_some());
    n.stop().await;
}

#[tokio::test]
async fn activities_and_agents_answer_from_stored_statements() {
    let n = TestNode::start(None, |_| {}).await;
    let mut a = statement(&uuid(), "ann", "https://v", ACT);
    a["actor"]["name"] = json!("Ann");
    a["object"]["definition"] =
        json!({"name": {"en": "Arithmetic", "zh-CN": "算术"}, "type": "http://adlnet.gov/expapi/activities/course"});
    let mut b = statement(&uuid(), "ann", "https://v", ACT);
    b["object"]["definition"] = json!({"name": {"en": "Arithmetic 2"}});
    for s in [a, b] {
        assert_eq!(n.send("POST", "/xapi/statements", s.to_string()).await.status, 200);
    }
    let r = n.get(&format!("/xapi/activities?activityId={}", enc(ACT))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"objectType": "Activity", "id": ACT, "definition": {"name": {"en": "Arithmetic 2", "zh-CN": "算术"}, "type": "http://adlnet.gov/expapi/activities/course"}})
    );
    let unknown = n.get(&format!("/xapi/activities?activityId={}", enc("https://x/none"))).await;
    assert_eq!(unknown.json(), json!({"objectType": "Activity", "id": "https://x/none"}));
    assert_eq!(n.get("/xapi/activities").await.status, 400);

    let r = n.get(&format!("/xapi/agents?agent={}", enc(&agent("ann").to_string()))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"objectType": "Person", "name": ["Ann"], "account": [{"homePage": "https://lms.example.org/learners", "name": "ann"}]})
    );
    assert_eq!(n.get("/xapi/agents?agent=%7B%7D").await.status, 400);
    n.stop().await;
}

#[tokio::test]
async fn who_may_reach_documents() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    people(&n);
    // A credential with xAPI's default scopes has no state or profile scope.
    let other = basic_auth("other", "other-pass");
    let r = n
        .client
        .send(
            "PUT".parse().unwrap(),
            &n.url(&state_url("ann", Some("s"), None)),
            &[("authorization", &other), XAPI, JSON],
            "{}",
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.json()["message"].as_str().unwrap().contains("state"));

    // A learner's session: their own states and agent profile, no one else's.
    let (cookie, _) = signed_in(&n, "amina").await;
    let as_amina = |method: &'static str, path: String, body: &'static str| {
        let (n, cookie) = (&n, cookie.clone());
        async move {
            n.client
                .send(method.parse().unwrap(), &n.url(&path), &[("cookie", &cookie), XAPI, JSON], body)
                .await
                .unwrap()
        }
    };
    assert_eq!(as_amina("PUT", state_url("amina", Some("s"), None), r#"{"mine": 1}"#).await.status, 204);
    assert_eq!(as_amina("GET", state_url("amina", Some("s"), None), "").await.json(), json!({"mine": 1}));
    let own_profile = format!("/xapi/agents/profile?agent={}&profileId=p", enc(&agent("amina").to_string()));
    assert_eq!(as_amina("PUT", own_profile, "{}").await.status, 204);
    call(&n, "PUT", &state_url("bo", Some("s"), None), &[JSON], r#"{"bo": 1}"#).await;
    for (method, path) in [
        ("GET", state_url("bo", Some("s"), None)),
        ("PUT", state_url("bo", Some("s"), None)),
        ("DELETE", state_url("bo", None, None)),
        ("GET", format!("/xapi/agents/profile?agent={}&profileId=p", enc(&agent("bo").to_string()))),
        ("PUT", format!("/xapi/activities/profile?activityId={}&profileId=p", enc(ACT))),
        ("GET", format!("/xapi/agents?agent={}", enc(&agent("bo").to_string()))),
    ] {
        let r = as_amina(method, path.clone(), "{}").await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
    }
    assert_eq!(call(&n, "GET", &state_url("bo", Some("s"), None), &[], "").await.json(), json!({"bo": 1}));
    // Reading an activity profile is allowed.
    let ap = format!("/xapi/activities/profile?activityId={}", enc(ACT));
    assert_eq!(as_amina("GET", ap, "").await.status, 200);
    n.stop().await;
}

#[tokio::test]
async fn content_from_another_origin_may_call_the_lrs_but_not_with_the_session() {
    let n = TestNode::start(None, |_| {}).await;
    let origin = ("origin", "https://content.example.com");
    // The preflight of a PUT with the headers content sends.
    let r = n
        .client
        .send(
            "OPTIONS".parse().unwrap(),
            &n.url(&state_url("ann", Some("s"), None)),
            &[
                origin,
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "authorization,content-type,x-experience-api-version,if-match"),
            ],
            "",
        )
        .await
        .unwrap();
    assert!(r.status.is_success(), "{}: {}", r.status, r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("access-control-allow-methods").unwrap().contains("PUT"));
    let allowed = r.header("access-control-allow-headers").unwrap().to_ascii_lowercase();
    for h in ["authorization", "content-type", "x-experience-api-version", "if-match"] {
        assert!(allowed.contains(h), "{allowed}");
    }
    assert_eq!(r.header("access-control-allow-credentials"), None, "cookies never go cross-origin");
    // The request itself: its answer is readable there, with the ETag.
    let r = call(&n, "PUT", &state_url("ann", Some("s"), None), &[JSON, origin], "{}").await;
    assert_eq!(r.status, 204);
    let r = call(&n, "GET", &state_url("ann", Some("s"), None), &[origin], "").await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("access-control-expose-headers").unwrap().to_ascii_lowercase().contains("etag"));
    n.stop().await;
}
