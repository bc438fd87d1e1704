//! SCORM through the node (issue 13): the launch from the learner app, the
//! player page on the content origin, scorm-again's commits turned into
//! xAPI statements and State, and a suspended attempt resumed.

mod common;
use common::people::*;
use common::*;
use serde_json::{Value, json};

const COURSE: &str = "org-example-lms-water-cycle";

fn q(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn on_content(n: &TestNode, method: &str, path: &str, body: Option<Value>) -> lms_node::client::Reply {
    let url = format!("{}{path}", n.content);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    n.client
        .send(method.parse().unwrap(), &url, &[("content-type", "application/json")], axum::body::Bytes::from(body))
        .await
        .unwrap()
}

/// Launches the SCO as `cookie` and returns the player page's path.
async fn launch(n: &TestNode, cookie: &str, csrf: &str, unit: usize) -> String {
    let r = post_form(n, &format!("/courses/{COURSE}/launch/{unit}"), cookie, &format!("csrf={csrf}")).await;
    assert_eq!(r.status, 303, "{}", r.text());
    r.header("location").unwrap().strip_prefix(&n.content).unwrap().to_string()
}

#[tokio::test]
async fn a_sco_commits_become_statements_and_a_suspended_attempt_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let n = node_with_packages(dir.path()).await;
    people(&n);
    let (amina, csrf) = signed_in(&n, "amina").await;

    // The asset opens as its file; the SCO in the player.
    let asset = post_form(&n, &format!("/courses/{COURSE}/launch/1"), &amina, &format!("csrf={csrf}")).await;
    assert!(asset.header("location").unwrap().ends_with("/glossary.html"), "{:?}", asset.header("location"));
    let play = launch(&n, &amina, &csrf, 0).await;
    let secret = play.strip_prefix("/scorm/play/").unwrap().to_string();
    let page = on_content(&n, "GET", &play, None).await;
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-src 'self'"), "{csp}");
    let html = page.text();
    assert!(html.contains(r#"src="/scorm/runtime/scorm12.js""#), "{html}");
    let data: Value = serde_json::from_str(
        html.split(r#"<script id="launch" type="application/json">"#)
            .nth(1)
            .unwrap()
            .split("</script>")
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data["init"]["core"]["student_id"], "amina");
    assert_eq!(data["init"]["student_data"]["mastery_score"], "80");
    assert_eq!(data["init"]["launch_data"], "level=basic");
    // The learner's page language: the player page's and the SCO's preference.
    let lang = data["init"]["student_preference"]["language"].as_str().unwrap();
    assert!(["zh-CN", "en"].contains(&lang) && html.contains(&format!(r#"<html lang="{lang}">"#)), "{html}");
    assert!(data["sco"].as_str().unwrap().ends_with("/index.html?part=1"), "{data}");
    let js = on_content(&n, "GET", "/scorm/runtime/scorm12.js", None).await;
    assert!(js.status == 200 && js.text().contains("Scorm12API"));
    // gzip'd for browsers that take it (the 2004 runtime is 565 KB plain).
    let url = format!("{}/scorm/runtime/scorm2004.js", n.content);
    let gz = n.client.get(&url, &[("accept-encoding", "gzip, br")]).await.unwrap();
    assert_eq!((gz.header("content-encoding"), gz.header("vary")), (Some("gzip"), Some("accept-encoding")));
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz.body[..]), &mut plain).unwrap();
    assert!(plain.contains("Scorm2004API") && gz.body.len() * 4 < plain.len(), "{} of {}", gz.body.len(), plain.len());
    assert_eq!(on_content(&n, "GET", "/scorm/runtime/other.js", None).await.status, 404);
    assert_eq!(on_content(&n, "GET", &format!("/scorm/state/{secret}"), None).await.json(), json!({}));

    // The SCO saves its place and leaves suspended.
    let commit = |fin: bool, exit: &str| {
        json!({"successStatus": "unknown", "completionStatus": "incomplete", "totalTimeSeconds": 30,
               "runtimeData": {"cmi": {"core": {"lesson_location": "page-3", "exit": exit, "lesson_status": "incomplete"},
                                       "suspend_data": "seen=1,2,3"}}, "_final": fin})
    };
    let r = on_content(&n, "POST", &format!("/scorm/commit/{secret}"), Some(commit(false, ""))).await;
    assert_eq!(r.json(), json!({"result": true, "errorCode": 0}));
    let r = on_content(&n, "POST", &format!("/scorm/commit/{secret}?final=true"), Some(commit(true, "suspend"))).await;
    assert_eq!(r.json()["result"], true);
    let r = on_content(&n, "POST", &format!("/scorm/commit/{secret}"), Some(commit(false, ""))).await;
    assert_eq!(r.json(), json!({"result": false, "errorCode": 101}), "the attempt is over");
    assert_eq!(on_content(&n, "GET", &play, None).await.status, 404);

    // Launched again: the attempt resumes where it was left.
    let play = launch(&n, &amina, &csrf, 0).await;
    let secret = play.strip_prefix("/scorm/play/").unwrap().to_string();
    let resumed = on_content(&n, "GET", &format!("/scorm/state/{secret}"), None).await.json();
    assert_eq!(
        resumed,
        json!({"cmi": {"core": {"lesson_location": "page-3", "entry": "resume"}, "suspend_data": "seen=1,2,3"}})
    );
    // Then passes (scorm-again reports status and score in its commit).
    // An interaction and an objective (as scorm-again sends collections).
    let done = json!({"successStatus": "passed", "completionStatus": "completed", "totalTimeSeconds": 90,
                      "score": {"raw": 90, "min": 0, "max": 100},
                      "runtimeData": {"cmi": {"core": {"exit": "", "lesson_status": "passed"},
                          "interactions": {"0": {"id": "q 1", "type": "choice", "student_response": "sun,heat",
                                                 "result": "correct", "correct_responses": {"0": {"pattern": "sun,heat"}}}},
                          "objectives": {"0": {"id": "evaporation", "status": "passed", "score": {"raw": "90"}}}}}});
    let r = on_content(&n, "POST", &format!("/scorm/commit/{secret}?final=true"), Some(done)).await;
    assert_eq!(r.json()["result"], true);

    let agent = q(r#"{"account":{"homePage":"https://lms.example.org/learners","name":"amina"}}"#);
    let stored = n.get(&format!("/xapi/statements?agent={agent}&ascending=true&limit=50")).await.json();
    let verbs: Vec<&str> = stored["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["verb"]["id"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        verbs,
        ["initialized", "suspended", "resumed", "scored", "completed", "passed", "responded", "passed", "terminated"]
    );
    let st = |i: usize| &stored["statements"][i];
    // One attempt, suspended and resumed: the same attempt activity.
    let attempt = |i: usize| st(i)["context"]["contextActivities"]["grouping"][0].clone();
    assert_eq!(attempt(0)["definition"]["type"], "http://adlnet.gov/expapi/activities/attempt");
    assert!(attempt(0)["id"].as_str().unwrap().contains("?attemptId="), "{}", attempt(0));
    assert!((1..9).all(|i| attempt(i) == attempt(0)), "one attempt throughout");
    assert_eq!(st(1)["verb"]["id"], "http://adlnet.gov/expapi/verbs/suspended");
    assert_eq!(st(3)["result"]["score"]["scaled"], 0.9);
    let responded = st(6);
    assert!(responded["object"]["id"].as_str().unwrap().ends_with("/unit/0/interaction/q%201"), "{responded}");
    assert_eq!(responded["object"]["definition"]["interactionType"], "choice");
    assert_eq!(responded["object"]["definition"]["correctResponsesPattern"], json!(["sun[,]heat"]));
    assert_eq!(responded["result"], json!({"response": "sun[,]heat", "success": true}));
    assert!(responded["context"]["contextActivities"]["parent"][0]["id"].as_str().unwrap().ends_with("/unit/0"));
    assert!(st(7)["object"]["id"].as_str().unwrap().ends_with("/unit/0/objective/evaporation"));
    assert_eq!(st(7)["result"], json!({"success": true, "score": {"scaled": 0.9}}));
    assert_eq!(st(8)["result"]["score"]["scaled"], 0.9, "terminated carries the overall result: {}", st(8));
    assert_eq!(
        (st(8)["result"]["success"].as_bool(), st(8)["result"]["completion"].as_bool()),
        (Some(true), Some(true))
    );
    let passed = &stored["statements"][5];
    assert_eq!(passed["result"]["score"]["scaled"], 0.9);
    assert_eq!(
        passed["context"]["registration"], stored["statements"][0]["context"]["registration"],
        "one registration"
    );
    assert!(passed["object"]["id"].as_str().unwrap().ends_with(&format!("/scorm/{COURSE}/unit/0")));
    let course =
        common::people::page(&get_as(&n, &format!("{amina}; lms_lang=en"), &format!("/courses/{COURSE}")).await);
    assert!(course.contains("1 of 1 lessons completed"), "{course}");

    assert_eq!(on_content(&n, "GET", "/scorm/play/made-up", None).await.status, 404);
    let r = on_content(&n, "POST", "/scorm/commit/made-up", Some(json!({}))).await;
    assert_eq!(r.json()["errorCode"], 101);
    n.stop().await;
}

/// An HTML5 app and a PDF record nothing themselves: opening one from the
/// course page records `experienced` (with completion) and opens the file.
#[tokio::test]
async fn html5_and_media_count_as_done_once_opened() {
    let dir = tempfile::tempdir().unwrap();
    let n = node_with_packages(dir.path()).await;
    people(&n);
    let (bo, csrf) = signed_in(&n, "bo").await;
    let en = format!("{bo}; lms_lang=en");
    let catalog = common::people::page(&get_as(&n, &en, "/courses").await);
    assert!(catalog.contains("Rain gauge") && catalog.contains("Teacher guide"), "{catalog}");
    let ids: Vec<String> = n.node.current().unwrap().packages.keys().cloned().collect();
    let (app, guide) = (
        ids.iter().find(|i| i.contains("rain")).unwrap().clone(),
        ids.iter().find(|i| i.contains("guide")).unwrap().clone(),
    );
    for (course, file) in [(&app, "/index.html"), (&guide, "/guide.pdf")] {
        let page = common::people::page(&get_as(&n, &en, &format!("/courses/{course}")).await);
        assert!(
            page.contains("0 of 1 lessons completed") && page.contains(&format!("/courses/{course}/launch/0")),
            "{page}"
        );
        let r = post_form(&n, &format!("/courses/{course}/launch/0"), &bo, &format!("csrf={csrf}")).await;
        assert_eq!(r.status, 303, "{}", r.text());
        let to = r.header("location").unwrap().to_string();
        assert!(to.starts_with(&format!("{}/p/{course}/", n.content)) && to.ends_with(file), "{to}");
        assert_eq!(n.client.get(&to, &[]).await.unwrap().status, 200, "the file is served");
        let page = common::people::page(&get_as(&n, &en, &format!("/courses/{course}")).await);
        assert!(page.contains("1 of 1 lessons completed"), "{page}");
    }
    assert_eq!(post_form(&n, &format!("/courses/{app}/launch/5"), &bo, &format!("csrf={csrf}")).await.status, 404);
    let agent = q(r#"{"account":{"homePage":"https://lms.example.org/learners","name":"bo"}}"#);
    let stored = n.get(&format!("/xapi/statements?agent={agent}")).await.json();
    let s = stored["statements"].as_array().unwrap();
    assert_eq!(s.len(), 2);
    assert!(s.iter().all(|s| s["verb"]["id"] == "http://adlnet.gov/expapi/verbs/experienced"
        && s["result"]["completion"] == true
        && s["authority"]["account"]["name"] == "person:bo"));
    n.stop().await;
}
