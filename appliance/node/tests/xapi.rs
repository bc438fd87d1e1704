//! The xAPI statement resource against a real node on 127.0.0.1:0.

mod common;
use common::*;
use serde_json::{Value, json};

const COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
const ACT: &str = "https://lms.example.org/xapi/activities/courses/arithmetic/lessons/fractions";

#[tokio::test]
async fn version_header_is_required_and_always_returned() {
    let n = TestNode::start(None, |_| {}).await;
    let auth = lms_node::client::basic_auth(USER, PASSWORD);
    let r = n.client.get(&n.url("/xapi/statements"), &[("authorization", &auth)]).await.unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "X-Experience-API-Version");
    assert_eq!(r.header("x-experience-api-version"), Some("2.0.0"));
    let r = n
        .client
        .get(&n.url("/xapi/statements"), &[("authorization", &auth), ("X-Experience-API-Version", "0.95")])
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    // /about needs neither the header nor credentials.
    let r = n.client.get(&n.url("/xapi/about"), &[]).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.json()["version"].as_array().unwrap().contains(&json!("2.0.0")));
    assert_eq!(r.header("x-experience-api-version"), Some("2.0.0"));
    n.stop().await;
}

#[tokio::test]
async fn credentials_are_required() {
    let n = TestNode::start(None, |_| {}).await;
    let url = n.url("/xapi/statements");
    let r = n.client.get(&url, &[XAPI]).await.unwrap();
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    assert_eq!(r.header("x-experience-api-version"), Some("2.0.0"));
    let wrong = lms_node::client::basic_auth(USER, "wrong");
    assert_eq!(n.client.get(&url, &[XAPI, ("authorization", &wrong)]).await.unwrap().status, 401);
    let garbage = n.client.get(&url, &[XAPI, ("authorization", "Basic !!!")]).await.unwrap();
    assert_eq!(garbage.status, 401);
    assert_eq!(garbage.json()["error"], "unauthorized");
    assert_eq!(n.get("/xapi/statements").await.status, 200);
    n.stop().await;
}

#[tokio::test]
async fn post_put_get_duplicates_and_conflicts() {
    let n = TestNode::start(None, |_| {}).await;
    let id = uuid();
    let s = statement(&id, "ann", COMPLETED, ACT);
    let r = n.send("POST", "/xapi/statements", s.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!([id]));

    // The same statement again changes nothing.
    let r = n.send("POST", "/xapi/statements", s.to_string()).await;
    assert_eq!(r.status, 200);
    let stored_first = n.get(&format!("/xapi/statements?statementId={id}")).await.json()["stored"].clone();
    let r = n.send("PUT", &format!("/xapi/statements?statementId={id}"), s.to_string()).await;
    assert_eq!(r.status, 204);
    let got = n.get(&format!("/xapi/statements?statementId={id}")).await;
    assert_eq!(got.status, 200);
    assert!(got.header("x-experience-api-consistent-through").is_some());
    assert_eq!(got.json()["stored"], stored_first, "a repeat must not change the stored statement");
    assert_eq!(got.json()["authority"]["account"]["name"], format!("credential:{USER}"));

    // A different statement under the same id: 409, old one kept.
    let mut other = s.clone();
    other["verb"]["id"] = json!("http://adlnet.gov/expapi/verbs/attempted");
    let r = n.send("PUT", &format!("/xapi/statements?statementId={id}"), other.to_string()).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["error"], "conflict");
    let r =
        n.send("POST", "/xapi/statements", json!([statement(&uuid(), "ann", COMPLETED, ACT), other]).to_string()).await;
    assert_eq!(r.status, 409);
    assert_eq!(n.get(&format!("/xapi/statements?statementId={id}")).await.json()["verb"]["id"], COMPLETED);

    // PUT without an id in the body takes the parameter's; a mismatch is 400.
    let id2 = uuid();
    let mut no_id = statement(&id2, "bob", COMPLETED, ACT);
    no_id.as_object_mut().unwrap().remove("id");
    assert_eq!(n.send("PUT", &format!("/xapi/statements?statementId={id2}"), no_id.to_string()).await.status, 204);
    assert_eq!(n.get(&format!("/xapi/statements?statementId={id2}")).await.json()["actor"]["account"]["name"], "bob");
    let r = n
        .send(
            "PUT",
            &format!("/xapi/statements?statementId={}", uuid()),
            statement(&uuid(), "bob", COMPLETED, ACT).to_string(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(n.send("PUT", "/xapi/statements", no_id.to_string()).await.status, 400);
    assert_eq!(n.get(&format!("/xapi/statements?statementId={}", uuid())).await.status, 404);
    n.stop().await;
}

#[tokio::test]
async fn a_batch_with_one_invalid_statement_is_rejected_whole() {
    let n = TestNode::start(None, |_| {}).await;
    let good = statement(&uuid(), "cat", COMPLETED, ACT);
    let mut bad = statement(&uuid(), "cat", COMPLETED, ACT);
    bad["actor"]["mbox"] = json!("mailto:cat@example.org"); // two identifiers
    let r = n.send("POST", "/xapi/statements", json!([good, bad]).to_string()).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "[1].actor");
    let all = n.get("/xapi/statements").await.json();
    assert_eq!(all["statements"].as_array().unwrap().len(), 0, "nothing of the batch may be stored");

    for (body, field) in [
        (json!({"actor": {"mbox": "cat@example.org"}, "verb": {"id": COMPLETED}, "object": {"id": ACT}}), "actor.mbox"),
        (
            json!({"actor": {"mbox": "mailto:c@x.org"}, "verb": {"id": COMPLETED}, "object": {"id": ACT}, "result": {"success": null}}),
            "result.success",
        ),
        (json!({"actor": {"mbox": "mailto:c@x.org"}, "Verb": {"id": COMPLETED}, "object": {"id": ACT}}), "Verb"),
        (
            json!({"actor": {"mbox": "mailto:c@x.org"}, "verb": {"id": COMPLETED, "display": {"not a tag": "x"}}, "object": {"id": ACT}}),
            "verb.display.not a tag",
        ),
        (
            json!({"id": "123", "actor": {"mbox": "mailto:c@x.org"}, "verb": {"id": COMPLETED}, "object": {"id": ACT}}),
            "id",
        ),
    ] {
        let r = n.send("POST", "/xapi/statements", body.to_string()).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.json()["field"], field, "{}", r.text());
    }
    // Two different statements with one id in a batch.
    let id = uuid();
    let r = n
        .send(
            "POST",
            "/xapi/statements",
            json!([statement(&id, "a", COMPLETED, ACT), statement(&id, "b", COMPLETED, ACT)]).to_string(),
        )
        .await;
    assert_eq!(r.status, 400);
    n.stop().await;
}

#[tokio::test]
async fn client_mistakes_get_json_4xx_never_500() {
    let n = TestNode::start(None, |c| c.max_body_bytes = 4096).await;
    for (method, path, body, status) in [
        ("POST", "/xapi/statements", "{not json", 400),
        ("POST", "/xapi/statements", "", 400),
        ("POST", "/xapi/statements", "42", 400),
        ("POST", "/xapi/statements?foo=1", "{}", 400),
        ("GET", "/xapi/statements?limit=-1", "", 400),
        ("GET", "/xapi/statements?agent={bad", "", 400),
        ("GET", "/xapi/statements?since=yesterday", "", 400),
        ("GET", "/xapi/statements?statementId=x&verb=y", "", 400),
        ("GET", "/xapi/statements?unknown=1", "", 400),
        ("GET", "/nope", "", 404),
        ("DELETE", "/xapi/statements", "", 405),
        ("POST", "/v1/quizzes/arithmetic-check/attempts", "[]", 400),
    ] {
        let r = n.send(method, path, body).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{method} {path}: not a JSON error: {}", r.text());
    }
    let big = format!("[{}]", vec![statement(&uuid(), "x", COMPLETED, ACT).to_string(); 40].join(","));
    let r = n.send("POST", "/xapi/statements", big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "payload_too_large");
    n.stop().await;
}

#[tokio::test]
async fn filters_paging_and_voiding() {
    let n = TestNode::start(None, |_| {}).await;
    let reg = uuid();
    let mut batch = Vec::new();
    for i in 0..7 {
        let mut s = statement(&uuid(), if i % 2 == 0 { "eve" } else { "fay" }, COMPLETED, &format!("{ACT}{i}"));
        if i < 3 {
            s["context"] = json!({"registration": reg});
        }
        batch.push(s);
    }
    let ids: Vec<String> =
        serde_json::from_value(n.send("POST", "/xapi/statements", Value::from(batch).to_string()).await.json())
            .unwrap();
    let mid =
        n.get(&format!("/xapi/statements?statementId={}", ids[3])).await.json()["stored"].as_str().unwrap().to_string();

    let q = |s: &str| serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_string();
    let agent = q(r#"{"account":{"homePage":"https://lms.example.org/learners","name":"eve"}}"#);
    let got = n.get(&format!("/xapi/statements?agent={agent}")).await.json();
    assert_eq!(got["statements"].as_array().unwrap().len(), 4);
    let got = n.get(&format!("/xapi/statements?registration={reg}&ascending=true")).await.json();
    let got_ids: Vec<&str> = got["statements"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(got_ids, ids[..3].iter().map(String::as_str).collect::<Vec<_>>());
    let got = n.get(&format!("/xapi/statements?activity={}", q(&format!("{ACT}5")))).await.json();
    assert_eq!(got["statements"][0]["id"], ids[5]);
    let got = n.get(&format!("/xapi/statements?verb={}", q(COMPLETED))).await.json();
    assert_eq!(got["statements"].as_array().unwrap().len(), 7);
    // Newest first by default.
    assert_eq!(got["statements"][0]["id"], ids[6]);
    // All seven share one stored time (one request), so since excludes them all.
    let got = n.get(&format!("/xapi/statements?since={}", q(&mid))).await.json();
    assert_eq!(got["statements"].as_array().unwrap().len(), 0);
    let got = n.get(&format!("/xapi/statements?until={}", q(&mid))).await.json();
    assert_eq!(got["statements"].as_array().unwrap().len(), 7);

    // Paging through `more`.
    let mut seen = Vec::new();
    let mut next = "/xapi/statements?limit=3&ascending=true".to_string();
    while !next.is_empty() {
        let page = n.get(&next).await.json();
        for s in page["statements"].as_array().unwrap() {
            seen.push(s["id"].as_str().unwrap().to_string());
        }
        next = page["more"].as_str().unwrap().to_string();
        assert!(seen.len() <= 7);
    }
    assert_eq!(seen, ids);

    // Voiding: the target disappears from statementId and queries, and is
    // found by voidedStatementId.
    let void = json!({
        "actor": {"mbox": "mailto:teacher@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": ids[0]},
    });
    assert_eq!(n.send("POST", "/xapi/statements", void.to_string()).await.status, 200);
    assert_eq!(n.get(&format!("/xapi/statements?statementId={}", ids[0])).await.status, 404);
    let v = n.get(&format!("/xapi/statements?voidedStatementId={}", ids[0])).await;
    assert_eq!(v.status, 200);
    assert_eq!(v.json()["id"], ids[0]);
    // The six left, and the voiding statement: it targets a statement that
    // meets the filter (Filter Conditions for StatementRefs).
    let got = n.get(&format!("/xapi/statements?verb={}", q(COMPLETED))).await.json();
    let got: Vec<&Value> = got["statements"].as_array().unwrap().iter().collect();
    assert_eq!(got.len(), 7);
    assert_eq!(got[0]["verb"]["id"], "http://adlnet.gov/expapi/verbs/voided");
    assert!(got.iter().all(|s| s["id"] != ids[0].as_str()));
    let ids_format = n.get(&format!("/xapi/statements?statementId={}&format=ids", ids[1])).await.json();
    assert!(ids_format["verb"].get("display").is_none());
    n.stop().await;
}

#[tokio::test]
async fn related_filters_and_statements_targeting_others() {
    let n = TestNode::start(None, |_| {}).await;
    let q = |s: &str| serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_string();
    let ben = json!({"mbox": "mailto:ben@example.org"});
    let andrew = json!({"mbox": "mailto:andrew@example.org"});
    let course = "https://lms.example.org/xapi/activities/courses/safety";
    let training = "https://lms.example.org/xapi/activities/courses/safety/explosives";
    let (passed, confirmed, commented) = (uuid(), uuid(), uuid());
    // A statement that targets one not stored yet (the target comes later).
    let early = json!({"id": commented, "actor": andrew, "verb": {"id": "https://example.org/verbs/commented"},
                       "object": {"objectType": "StatementRef", "id": confirmed}});
    assert_eq!(n.send("POST", "/xapi/statements", early.to_string()).await.status, 200);
    let batch = json!([
        {"id": passed, "actor": ben, "verb": {"id": "http://adlnet.gov/expapi/verbs/passed"},
         "object": {"id": training}, "context": {"contextActivities": {"parent": [{"id": course}]},
                                                "instructor": {"mbox": "mailto:ines@example.org"}}},
        {"id": confirmed, "actor": andrew, "verb": {"id": "https://example.org/verbs/confirmed"},
         "object": {"objectType": "StatementRef", "id": passed}},
        {"actor": andrew, "verb": {"id": "https://example.org/verbs/planned"},
         "object": {"objectType": "SubStatement", "actor": ben, "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"},
                    "object": {"id": course}}},
    ]);
    let r = n.send("POST", "/xapi/statements", batch.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let planned = r.json()[2].as_str().unwrap().to_string();
    let ids = |path: String| {
        let n = &n;
        async move {
            let r = n.get(&path).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            let mut v: Vec<String> = r.json()["statements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string())
                .collect();
            v.sort();
            v
        }
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<String>>()
    };
    // Ben's: his own, the statement confirming it and (recursively) the
    // comment on the confirmation, which was stored before either.
    assert_eq!(
        ids(format!("/xapi/statements?agent={}", q(&ben.to_string()))).await,
        sorted(vec![&passed, &confirmed, &commented])
    );
    // related_agents also finds him inside the SubStatement, and the instructor.
    assert_eq!(
        ids(format!("/xapi/statements?agent={}&related_agents=true", q(&ben.to_string()))).await,
        sorted(vec![&passed, &confirmed, &commented, &planned])
    );
    let ines = json!({"mbox": "mailto:ines@example.org"});
    assert!(ids(format!("/xapi/statements?agent={}", q(&ines.to_string()))).await.is_empty());
    assert_eq!(ids(format!("/xapi/statements?agent={}&related_agents=true", q(&ines.to_string()))).await.len(), 3);
    // The course is only a parent and inside a SubStatement: related_activities.
    assert!(ids(format!("/xapi/statements?activity={}", q(course))).await.is_empty());
    assert_eq!(
        ids(format!("/xapi/statements?activity={}&related_activities=true", q(course))).await,
        sorted(vec![&passed, &confirmed, &commented, &planned])
    );
    // Filters combine: the confirmation meets verb and agent through its target.
    assert_eq!(
        ids(format!(
            "/xapi/statements?agent={}&verb={}",
            q(&ben.to_string()),
            q("http://adlnet.gov/expapi/verbs/passed")
        ))
        .await,
        sorted(vec![&passed, &confirmed, &commented])
    );
    assert_eq!(
        ids(format!(
            "/xapi/statements?agent={}&verb={}",
            q(&andrew.to_string()),
            q("https://example.org/verbs/confirmed")
        ))
        .await,
        sorted(vec![&confirmed, &commented])
    );
    let r = n.get("/xapi/statements?related_agents=yes").await;
    assert_eq!(r.status, 400);
    n.stop().await;
}

#[tokio::test]
async fn canonical_format_last_modified_and_head() {
    let n = TestNode::start(None, |_| {}).await;
    let id = uuid();
    let s = json!({"id": id, "actor": {"mbox": "mailto:wu@example.org"},
        "verb": {"id": COMPLETED, "display": {"en-US": "completed", "zh-CN": "完成"}},
        "object": {"id": ACT, "definition": {"name": {"en": "Fractions", "zh-CN": "分数"},
                                             "description": {"en": "Parts of a whole"}}}});
    assert_eq!(n.send("POST", "/xapi/statements", s.to_string()).await.status, 200);
    let auth = lms_node::client::basic_auth(USER, PASSWORD);
    let get = |path: String, lang: &'static str| {
        let (n, auth) = (&n, auth.clone());
        async move {
            n.client.get(&n.url(&path), &[("authorization", &auth), XAPI, ("accept-language", lang)]).await.unwrap()
        }
    };
    let one = get(format!("/xapi/statements?statementId={id}&format=canonical"), "zh-CN, en;q=0.5").await;
    assert_eq!(one.status, 200);
    let v = one.json();
    assert_eq!(v["verb"]["display"], json!({"zh-CN": "完成"}));
    assert_eq!(v["object"]["definition"]["name"], json!({"zh-CN": "分数"}));
    assert_eq!(v["object"]["definition"]["description"], json!({"en": "Parts of a whole"}));
    // Last-Modified is the statement's stored time, to the second.
    let stored =
        time::OffsetDateTime::parse(v["stored"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap();
    let lm = one.header("last-modified").expect("Last-Modified");
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    assert_eq!(lm, stored.format(&fmt).unwrap());
    let page = get("/xapi/statements?format=canonical".into(), "en").await;
    assert_eq!(page.json()["statements"][0]["verb"]["display"], json!({"en-US": "completed"}));
    assert_eq!(page.header("last-modified"), Some(lm));
    assert!(page.header("x-experience-api-consistent-through").is_some());
    // exact returns the maps as stored.
    let exact = n.get(&format!("/xapi/statements?statementId={id}")).await.json();
    assert_eq!(exact["verb"]["display"].as_object().unwrap().len(), 2);
    // HEAD on the GET routes: the headers without the body.
    let head = n.send("HEAD", &format!("/xapi/statements?statementId={id}"), "").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(head.header("x-experience-api-consistent-through").is_some());
    for path in ["/xapi/about", "/xapi/statements"] {
        assert_eq!(n.send("HEAD", path, "").await.status, 200, "{path}");
    }
    n.stop().await;
}

/// xAPI 1.0.3's Alternate Request Syntax: `POST ?method=X` with the headers,
/// the body (`content`) and the parameters in a form. 2.0 removed it.
#[tokio::test]
async fn alternate_request_syntax_is_1_0_3s_and_never_uses_cookies() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    common::people::people(&n);
    let auth = lms_node::client::basic_auth(USER, PASSWORD);
    let form = |path: &str, headers: Vec<(&'static str, String)>, body: String| {
        let (n, path) = (&n, path.to_string());
        async move {
            let mut h: Vec<(&str, &str)> = vec![("content-type", "application/x-www-form-urlencoded")];
            h.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            n.client.send("POST".parse().unwrap(), &n.url(&path), &h, body).await.unwrap()
        }
    };
    let enc = |pairs: &[(&str, &str)]| serde_urlencoded::to_string(pairs).unwrap();

    // A GET as a POST, headers as headers.
    let r = form(
        "/xapi/statements?method=GET",
        vec![("authorization", auth.clone()), ("x-experience-api-version", "1.0.3".into())],
        enc(&[("limit", "1")]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["statements"].is_array() && r.json()["more"].is_string());
    assert_eq!(r.header("x-experience-api-version"), Some("1.0.3"));

    // A PUT with everything in the form, headers too.
    let id = uuid();
    let s = statement(&id, "ann", COMPLETED, ACT).to_string();
    let put = |extra: &[(&'static str, &'static str)], s: &str, id: &str| {
        let mut pairs: Vec<(&str, &str)> =
            vec![("statementId", id), ("content", s), ("X-Experience-API-Version", "1.0.3"), ("Authorization", &auth)];
        pairs.extend_from_slice(extra);
        serde_urlencoded::to_string(&pairs).unwrap()
    };
    let r = form("/xapi/statements?method=PUT", vec![], put(&[], &s, &id)).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(n.get(&format!("/xapi/statements?statementId={id}")).await.json()["version"], "1.0.0");

    // Refusals: not a POST; parameters beside method; no content; a bad
    // method; a version it does not speak; 2.0; a body that is not a form.
    let r = n.send("PUT", "/xapi/statements?method=POST", s.clone()).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "method");
    let r = form(&format!("/xapi/statements?method=PUT&statementId={id}"), vec![], put(&[], &s, &id)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "statementId");
    let r =
        form("/xapi/statements?method=PUT", vec![("authorization", auth.clone())], enc(&[("statementId", &id)])).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "content");
    let r = form("/xapi/statements?method=PATCH", vec![], put(&[], &s, &id)).await;
    assert_eq!(r.status, 400);
    let other = uuid();
    let r = form("/xapi/statements?method=PUT", vec![], put(&[("X-Experience-API-Version", "0.8")], &s, &other)).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r =
        form("/xapi/statements?method=PUT", vec![], put(&[("X-Experience-API-Version", "2.0.0")], &s, &other)).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("1.0.3"), "{}", r.text());
    let r = form(
        "/xapi/statements?method=PUT",
        vec![("authorization", auth.clone()), ("x-experience-api-version", "1.0.3".into())],
        json!({"statementId": other, "content": s}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(n.get(&format!("/xapi/statements?statementId={other}")).await.status, 404);

    // A signed-in browser's cookie is no credential here: another site's
    // form could otherwise write as the learner.
    let (cookie, _) = common::people::signed_in(&n, "amina").await;
    let direct = n.client.get(&n.url("/xapi/statements"), &[("cookie", &cookie), XAPI]).await.unwrap();
    assert_eq!(direct.status, 200, "the session reads her own statements directly: {}", direct.text());
    let r = form(
        "/xapi/statements?method=GET",
        vec![("cookie", cookie), ("x-experience-api-version", "1.0.3".into())],
        String::new(),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    n.stop().await;
}
