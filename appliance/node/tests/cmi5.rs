//! cmi5 launch through the node: the admin contract, LaunchData, the
//! launched statement, the one-time fetch URL, and a launch token that
//! reaches only its learner, registration and activity.

mod common;
use common::people::*;
use common::*;
use serde_json::{Value, json};

const PUBLIC: &str = "http://lms.test:8080";
const CONTENT: &str = "http://content.test:8081";
const SATISFIED: &str = "https://w3id.org/xapi/adl/verbs/satisfied";

fn q(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    let q = url.split_once('?').unwrap().1;
    q.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), percent_encoding::percent_decode_str(v).decode_utf8().unwrap().into_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_cmi5_launch_as_the_spec_asks() {
    // The authored test course in a content pack.
    let dir = tempfile::tempdir().unwrap();
    let pack = pack_with_cmi5(dir.path());
    let d2 = pack.clone();
    let n = TestNode::start(None, move |c| {
        c.content = d2;
        c.public_url = Some(PUBLIC.into());
        c.content_url = Some(CONTENT.into());
    })
    .await
    .ready()
    .await;
    let actor =
        json!({"objectType": "Agent", "account": {"homePage": "https://lms.example.org/learners", "name": "amina"}});
    let admin_post = |path: &'static str, body: Value| n.admin_json(path, body);

    // Refusals first: unknown course, unknown AU, an actor without an account.
    for (body, field) in [
        (json!({"course": "nope", "au": 0, "actor": actor}), "course"),
        (json!({"course": "water-safety", "au": 7, "actor": actor}), "au"),
        (json!({"course": "water-safety", "au": 0, "actor": {"mbox": "mailto:a@example.org"}}), "actor"),
    ] {
        let r = admin_post("/admin/cmi5/launch-url", body).await;
        assert_eq!((r.status.as_u16(), r.json()["field"].as_str()), (400, Some(field)), "{}", r.text());
    }

    let r = admin_post(
        "/admin/cmi5/launch-url",
        json!({"course": "water-safety", "au": "https://lms.example.org/cmi5/courses/water-safety/aus/currents", "actor": actor, "return_url": "http://lms.test:8080/courses"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let launch = r.json();
    let url = launch["url"].as_str().unwrap().to_string();
    let registration = launch["registration"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("{CONTENT}/p/water-safety/")) && url.contains("/au/index.html?lesson=currents&"),
        "{url}"
    );
    let params = query_of(&url);
    assert_eq!(params["endpoint"], format!("{PUBLIC}/xapi/"));
    assert_eq!(params["registration"], registration);
    assert_eq!(serde_json::from_str::<Value>(&params["actor"]).unwrap(), actor);
    let activity = params["activityId"].clone();
    assert_ne!(
        activity, "https://lms.example.org/cmi5/courses/water-safety/aus/currents",
        "the launch id is the LMS's own"
    );
    assert!(params["fetch"].starts_with(&format!("{PUBLIC}/cmi5/fetch/")));

    // LaunchData, as the LMS wrote it before the launch.
    let state = |reg: &str| {
        format!(
            "/xapi/activities/state?activityId={}&agent={}&registration={reg}&stateId=LMS.LaunchData",
            q(&activity),
            q(&actor.to_string())
        )
    };
    let ld = n.get(&state(&registration)).await;
    assert_eq!(ld.status, 200, "{}", ld.text());
    let ld = ld.json();
    let session = ld["contextTemplate"]["extensions"]["https://w3id.org/xapi/cmi5/context/extensions/sessionid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        ld["contextTemplate"]["contextActivities"]["grouping"][0]["id"],
        "https://lms.example.org/cmi5/courses/water-safety/aus/currents"
    );
    assert_eq!(
        (ld["launchMode"].as_str(), ld["moveOn"].as_str(), ld["masteryScore"].as_f64()),
        (Some("Normal"), Some("CompletedAndPassed"), Some(0.8))
    );
    assert_eq!(ld["launchParameters"], r#"{"quiz": true}"#);
    assert_eq!(ld["returnURL"], "http://lms.test:8080/courses");
    // The launched statement, before the launch.
    let s = n
        .get(&format!(
            "/xapi/statements?registration={registration}&verb={}",
            q("http://adlnet.gov/expapi/verbs/launched")
        ))
        .await
        .json();
    let launched = &s["statements"][0];
    assert_eq!(launched["object"]["id"], activity.as_str());
    assert_eq!(
        launched["context"]["extensions"]["https://w3id.org/xapi/cmi5/context/extensions/launchurl"],
        url.as_str()
    );

    // The fetch URL: once, then error 1; one the node never issued, error 2.
    let fetch_path = params["fetch"].strip_prefix(PUBLIC).unwrap().to_string();
    let post_public = |path: String| {
        let (client, url) = (n.client.clone(), n.url(&path));
        async move { client.send("POST".parse().unwrap(), &url, &[], axum::body::Bytes::new()).await.unwrap() }
    };
    let first = post_public(fetch_path.clone()).await;
    assert_eq!(first.status, 200);
    let token = first.json()["auth-token"].as_str().unwrap().to_string();
    assert_eq!(post_public(fetch_path).await.json()["error-code"], "1");
    assert_eq!(post_public("/cmi5/fetch/made-up".into()).await.json()["error-code"], "2");

    // The token: LaunchData readable, not writable; statements of its own
    // learner, registration and session; nothing else.
    let auth = format!("Basic {token}");
    let as_au = |method: &'static str, path: String, body: String| {
        let (client, url, auth) = (n.client.clone(), n.url(&path), auth.clone());
        async move {
            let h = [
                ("authorization", auth.as_str()),
                ("x-experience-api-version", "1.0.3"),
                ("content-type", "application/json"),
            ];
            client.send(method.parse().unwrap(), &url, &h, axum::body::Bytes::from(body)).await.unwrap()
        }
    };
    assert_eq!(as_au("GET", state(&registration), String::new()).await.status, 200);
    // cmi5LearnerPreferences (11.0), written by the LMS at launch: readable
    // by the AU, not writable (the spec lets the LMS refuse with 403).
    let prefs = format!("/xapi/agents/profile?agent={}&profileId=cmi5LearnerPreferences", q(&actor.to_string()));
    let p = as_au("GET", prefs.clone(), String::new()).await;
    assert_eq!(p.status, 200, "{}", p.text());
    assert_eq!(
        (p.json()["languagePreference"].as_str(), p.json()["audioPreference"].as_str()),
        (Some("zh-CN"), Some("on"))
    );
    assert_eq!(as_au("PUT", prefs, r#"{"languagePreference":"fr"}"#.into()).await.status, 403);
    assert_eq!(as_au("PUT", state(&registration), "{}".into()).await.status, 403);
    assert_eq!(as_au("GET", state(&uuid::Uuid::new_v4().to_string()), String::new()).await.status, 403);
    // Another learner's state, same activity and registration: 403 too.
    let bo = json!({"objectType": "Agent", "account": {"homePage": "https://lms.example.org/learners", "name": "bo"}});
    let bos = state(&registration).replace(&q(&actor.to_string()), &q(&bo.to_string()));
    assert!(bos.contains("bo%22"), "{bos}");
    assert_eq!(as_au("GET", bos, String::new()).await.status, 403, "another learner's state");
    let statement = |actor: &Value, reg: &str| {
        json!({
            "actor": actor, "verb": {"id": "http://adlnet.gov/expapi/verbs/initialized"},
            "object": {"objectType": "Activity", "id": activity},
            "context": {"registration": reg, "extensions": {"https://w3id.org/xapi/cmi5/context/extensions/sessionid": session}},
        })
        .to_string()
    };
    let r = as_au("POST", "/xapi/statements".into(), statement(&actor, &registration)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(as_au("POST", "/xapi/statements".into(), statement(&bo, &registration)).await.status, 403);
    assert_eq!(
        as_au("POST", "/xapi/statements".into(), statement(&actor, &uuid::Uuid::new_v4().to_string())).await.status,
        403
    );
    let mine = as_au("GET", "/xapi/statements".into(), String::new()).await.json();
    assert!(mine["statements"].as_array().unwrap().iter().all(|s| s["actor"]["account"]["name"] == "amina"));
    assert_eq!(as_au("GET", format!("/xapi/activities?activityId={}", q(&activity)), String::new()).await.status, 403);

    // The verb rules of a session and a registration (cmi5 9.3, 9.5).
    let send = |verb: &str, result: Value| {
        let s = json!({
            "actor": actor, "verb": {"id": format!("http://adlnet.gov/expapi/verbs/{verb}")},
            "object": {"objectType": "Activity", "id": activity}, "result": result,
            "context": {"registration": registration, "extensions": {"https://w3id.org/xapi/cmi5/context/extensions/sessionid": session}},
        });
        as_au("POST", "/xapi/statements".into(), s.to_string())
    };
    let status = |r: lms_node::client::Reply| r.status.as_u16();
    assert_eq!(status(send("initialized", json!({})).await), 403, "initialized twice");
    assert_eq!(status(send("completed", json!({"completion": false})).await), 403, "completed without completion");
    assert_eq!(status(send("completed", json!({"completion": true})).await), 200);
    assert_eq!(status(send("completed", json!({"completion": true})).await), 403, "completed twice");
    assert_eq!(
        status(send("passed", json!({"success": true, "score": {"scaled": 0.5}})).await),
        403,
        "passed below mastery"
    );
    assert_eq!(
        status(send("failed", json!({"success": false, "score": {"scaled": 0.9}})).await),
        403,
        "failed above mastery"
    );
    assert_eq!(status(send("passed", json!({"success": true, "score": {"scaled": 0.9}})).await), 200);
    assert_eq!(
        status(send("failed", json!({"success": false, "score": {"scaled": 0.2}})).await),
        403,
        "failed after passed"
    );
    assert_eq!(status(send("terminated", json!({})).await), 200);
    assert_eq!(status(send("experienced", json!({})).await), 403, "after terminated");
    let stored = n.get(&format!("/xapi/statements?registration={registration}&limit=50")).await.json();
    let verbs: Vec<&str> = stored["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["verb"]["id"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        verbs,
        ["terminated", "satisfied", "satisfied", "passed", "completed", "initialized", "launched"],
        "only what the rules allow was stored, and completed + passed met the AU's moveOn"
    );
    // satisfied (cmi5 9.3.9): the block, then the course, with the LMS's own
    // ids and types, in the session that met them.
    let satisfied: Vec<&Value> =
        stored["statements"].as_array().unwrap().iter().filter(|s| s["verb"]["id"] == SATISFIED).rev().collect();
    let ids: Vec<&str> = satisfied.iter().map(|s| s["object"]["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "https://lms.example.org/xapi/activities/cmi5/water-safety/block/0",
            "https://lms.example.org/xapi/activities/cmi5/water-safety"
        ]
    );
    let types: Vec<&str> = satisfied
        .iter()
        .map(|s| s["object"]["definition"]["type"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(types, ["block", "course"]);
    for s in &satisfied {
        assert_eq!(
            s["context"]["extensions"]["https://w3id.org/xapi/cmi5/context/extensions/sessionid"],
            session.as_str()
        );
        assert_eq!(s["context"]["registration"], registration.as_str());
        assert_eq!(s["actor"], actor);
    }

    // A new session of the same registration: initialized must come first,
    // and passed is not taken twice in the registration.
    let r = admin_post(
        "/admin/cmi5/launch-url",
        json!({"course": "water-safety", "au": 0, "actor": actor, "registration": registration}),
    )
    .await;
    let params2 = query_of(r.json()["url"].as_str().unwrap());
    let token2 = post_public(params2["fetch"].strip_prefix(PUBLIC).unwrap().to_string()).await.json()["auth-token"]
        .as_str()
        .unwrap()
        .to_string();
    let ld2 = n.get(&state(&registration)).await.json();
    let session2 = ld2["contextTemplate"]["extensions"]["https://w3id.org/xapi/cmi5/context/extensions/sessionid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(session2, session);
    let send2 = |verb: &str, result: Value| {
        let s = json!({
            "actor": actor, "verb": {"id": format!("http://adlnet.gov/expapi/verbs/{verb}")},
            "object": {"objectType": "Activity", "id": activity}, "result": result,
            "context": {"registration": registration, "extensions": {"https://w3id.org/xapi/cmi5/context/extensions/sessionid": session2}},
        });
        let (client, url, auth) = (n.client.clone(), n.url("/xapi/statements"), format!("Basic {token2}"));
        async move {
            let h = [
                ("authorization", auth.as_str()),
                ("x-experience-api-version", "1.0.3"),
                ("content-type", "application/json"),
            ];
            client
                .send("POST".parse().unwrap(), &url, &h, axum::body::Bytes::from(s.to_string()))
                .await
                .unwrap()
                .status
                .as_u16()
        }
    };
    assert_eq!(send2("passed", json!({"success": true, "score": {"scaled": 0.9}})).await, 403, "before initialized");
    assert_eq!(send2("initialized", json!({})).await, 200);
    assert_eq!(
        send2("passed", json!({"success": true, "score": {"scaled": 0.95}})).await,
        403,
        "passed twice in a registration"
    );
    assert_eq!(send2("experienced", json!({})).await, 200);

    // Launching again while that session is open abandons it (9.3.6): the
    // LMS records abandoned with the session's duration, and its token is
    // done. The course is not satisfied twice.
    let r = admin_post(
        "/admin/cmi5/launch-url",
        json!({"course": "water-safety", "au": 0, "actor": actor, "registration": registration}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let abandoned = n
        .get(&format!(
            "/xapi/statements?registration={registration}&verb={}",
            q("https://w3id.org/xapi/adl/verbs/abandoned")
        ))
        .await
        .json();
    let abandoned = abandoned["statements"].as_array().unwrap();
    assert_eq!(abandoned.len(), 1, "{abandoned:?}");
    assert_eq!(
        abandoned[0]["context"]["extensions"]["https://w3id.org/xapi/cmi5/context/extensions/sessionid"],
        session2.as_str()
    );
    assert_eq!(abandoned[0]["object"]["id"], activity.as_str());
    assert!(abandoned[0]["result"]["duration"].as_str().unwrap().starts_with("PT"), "{}", abandoned[0]);
    assert_eq!(send2("experienced", json!({})).await, 401, "an abandoned session's token is done");
    let all = n.get(&format!("/xapi/statements?registration={registration}&verb={}", q(SATISFIED))).await.json();
    assert_eq!(all["statements"].as_array().unwrap().len(), 2, "each satisfied once per registration");
    n.stop().await;
}

#[tokio::test]
async fn launches_need_the_origins_browsers_reach() {
    let n = TestNode::start(None, |c| {
        c.public_url = None;
        c.content_url = None;
    })
    .await
    .ready()
    .await;
    let body = json!({"course": "x", "au": 0, "actor": {}}).to_string();
    let r = n
        .client
        .send(
            "POST".parse().unwrap(),
            &format!("{}/admin/cmi5/launch-url", n.admin),
            &[("content-type", "application/json")],
            axum::body::Bytes::from(body),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("public_url"));
    n.stop().await;
}

/// The learner app's launch: a form on the course page (CSRF), the learner
/// as actor, one registration per learner and course, a 303 to the AU on
/// the content origin, which the page's form-action lets the form reach.
#[tokio::test]
async fn a_learner_launches_from_the_course_page() {
    let dir = tempfile::tempdir().unwrap();
    let n = node_with_packages(dir.path()).await;
    people(&n);
    let (amina, csrf) = signed_in(&n, "amina").await;
    let course = get_as(&n, &amina, "/courses/water-safety").await;
    let csp = course.header("content-security-policy").unwrap().to_string();
    assert!(csp.contains(&format!("form-action 'self' {}", n.content)), "{csp}");
    let page = page(&course);
    assert!(page.contains(r#"action="/courses/water-safety/launch/0""#), "{page}");
    // The package's texts in the page's language.
    assert!(page.contains("水上安全") && page.contains("开始：水流"), "{page}");
    let en = common::people::page(&get_as(&n, &format!("{amina}; lms_lang=en"), "/courses/water-safety").await);
    assert!(en.contains("<h1>Water safety</h1>") && en.contains("Start: Currents") && !en.contains("水流"), "{en}");
    let en_catalog = common::people::page(&get_as(&n, &format!("{amina}; lms_lang=en"), "/courses").await);
    assert!(en_catalog.contains("Water safety"), "{en_catalog}");
    let catalog = common::people::page(&get_as(&n, &amina, "/courses").await);
    assert!(catalog.contains(r#"href="/courses/water-safety""#), "the imported course is in the catalog: {catalog}");

    assert_eq!(post_form(&n, "/courses/water-safety/launch/0", &amina, "csrf=stale").await.status, 403);
    assert_eq!(post_form(&n, "/courses/water-safety/launch/9", &amina, &format!("csrf={csrf}")).await.status, 404);
    assert_eq!(post_form(&n, "/courses/nope/launch/0", &amina, &format!("csrf={csrf}")).await.status, 404);
    let mut registrations = Vec::new();
    for _ in 0..2 {
        let r = post_form(&n, "/courses/water-safety/launch/0", &amina, &format!("csrf={csrf}")).await;
        assert_eq!(r.status, 303, "{}", r.text());
        let to = r.header("location").unwrap().to_string();
        assert!(to.starts_with(&format!("{}/p/water-safety/", n.content)), "{to}");
        let params = query_of(&to);
        let actor: Value = serde_json::from_str(&params["actor"]).unwrap();
        assert_eq!(actor["account"]["name"], "amina", "the learner is the session's");
        registrations.push(params["registration"].clone());
    }
    assert_eq!(registrations[0], registrations[1], "one registration per learner and course");
    let (bo, bo_csrf) = signed_in(&n, "bo").await;
    let r = post_form(&n, "/courses/water-safety/launch/0", &bo, &format!("csrf={bo_csrf}")).await;
    let bo_launch = query_of(r.header("location").unwrap());
    let bo_registration = bo_launch["registration"].clone();
    assert_ne!(bo_registration, registrations[0]);

    // waived (9.3.7) through the admin contract: a reason cmi5 names, once
    // per AU and registration; it meets the AU's moveOn, so the block and
    // the course are satisfied under the waiver's own session id.
    let waive = |reason: &str| {
        let body = json!({"course": "water-safety", "au": 0, "actor": serde_json::from_str::<Value>(&bo_launch["actor"]).unwrap(),
                          "registration": bo_registration, "reason": reason});
        n.admin_json("/admin/cmi5/waive", body)
    };
    let r = waive("Because").await;
    assert_eq!((r.status.as_u16(), r.json()["field"].as_str()), (400, Some("reason")), "{}", r.text());
    let r = waive("Tested Out").await;
    assert_eq!(r.status, 201, "{}", r.text());
    let session = r.json()["session"].as_str().unwrap().to_string();
    assert_eq!(waive("Administrative").await.status, 409, "waived once per registration");
    let stored =
        n.get(&format!("/xapi/statements?registration={bo_registration}&limit=50&ascending=true")).await.json();
    let after_launch: Vec<(&str, &str)> = stored["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["verb"]["id"].as_str().unwrap().rsplit('/').next().unwrap(),
                s["context"]["extensions"]["https://w3id.org/xapi/cmi5/context/extensions/sessionid"].as_str().unwrap(),
            )
        })
        .skip(1)
        .collect();
    assert_eq!(
        after_launch,
        [("waived", session.as_str()), ("satisfied", session.as_str()), ("satisfied", session.as_str())]
    );
    let waived = &stored["statements"][1];
    assert_eq!(waived["result"]["extensions"]["https://w3id.org/xapi/cmi5/result/extensions/reason"], "Tested Out");
    assert_eq!(
        (waived["result"]["success"].as_bool(), waived["result"]["completion"].as_bool()),
        (Some(true), Some(true))
    );
    let course = common::people::page(&get_as(&n, &format!("{bo}; lms_lang=en"), "/courses/water-safety").await);
    assert!(course.contains("1 of 1 lessons completed"), "a waived AU counts as done: {course}");

    // The coach view: wang coaches 7B (amina), not 8A (bo).
    let (wang, wang_csrf) = signed_in(&n, "wang").await;
    let detail = common::people::page(&get_as(&n, &format!("{wang}; lms_lang=en"), "/coach/learners/amina").await);
    assert!(
        detail.contains(r#"action="/coach/learners/amina/waive""#) && detail.contains(r#"value="Tested Out""#),
        "{detail}"
    );
    let form =
        |course: &str, reason: &str, csrf: &str| format!("csrf={csrf}&course={course}&unit=0&reason={}", q(reason));
    let waive_as = |who: &str, learner: &str, body: String| {
        let (who, path) = (who.to_string(), format!("/coach/learners/{learner}/waive"));
        let n = &n;
        async move { post_form(n, &path, &who, &body).await.status.as_u16() }
    };
    assert_eq!(waive_as(&wang, "amina", form("water-safety", "Administrative", "stale")).await, 403, "CSRF");
    assert_eq!(
        waive_as(&wang, "bo", form("water-safety", "Administrative", &wang_csrf)).await,
        403,
        "not wang's class"
    );
    assert_eq!(waive_as(&amina, "amina", form("water-safety", "Administrative", &csrf)).await, 403, "learners cannot");
    assert_eq!(waive_as(&wang, "amina", form("nope", "Administrative", &wang_csrf)).await, 400);
    assert_eq!(waive_as(&wang, "amina", form("water-safety", "Administrative", &wang_csrf)).await, 303);
    let detail = common::people::page(&get_as(&n, &format!("{wang}; lms_lang=en"), "/coach/learners/amina").await);
    assert!(!detail.contains("/waive"), "nothing left to waive: {detail}");
    let mine = common::people::page(&get_as(&n, &format!("{amina}; lms_lang=en"), "/courses/water-safety").await);
    assert!(mine.contains("1 of 1 lessons completed"), "{mine}");
    n.stop().await;
}
