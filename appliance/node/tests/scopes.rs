//! Issue 10, case 10: credentials were not scoped: any credential read and
//! voided every statement and acted for any learner, so one stolen edge
//! credential on a hub exposed every city's records. Now each credential
//! has xAPI scopes (scopes.toml beside the htpasswd file); `other` here has
//! no entry, so it gets the default statements/write + statements/read/mine.

mod common;
use common::*;
use lms_node::client::basic_auth;
use serde_json::{Value, json};

const OTHER: (&str, &str) = ("other", "other-pass");
const EXPERIENCED: &str = "http://adlnet.gov/expapi/verbs/experienced";

async fn as_other(n: &TestNode, method: &str, path: &str, body: &str) -> (u16, Value) {
    let auth = basic_auth(OTHER.0, OTHER.1);
    let r = n
        .client
        .send(
            method.parse().unwrap(),
            &n.url(path),
            &[("authorization", &auth), XAPI, ("content-type", "application/json")],
            body.to_string(),
        )
        .await
        .unwrap();
    (r.status.as_u16(), serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

fn voiding(target: &str) -> Value {
    json!({
        "id": uuid(),
        "actor": {"objectType": "Agent", "account": {"homePage": "https://lms.example.org/learners", "name": "ops"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided", "display": {"en-US": "voided"}},
        "object": {"objectType": "StatementRef", "id": target},
    })
}

#[tokio::test]
async fn a_default_credential_writes_and_reads_only_its_own_statements() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    let kiosks = uuid();
    let r = n
        .send(
            "POST",
            "/xapi/statements",
            statement(&kiosks, "amina", EXPERIENCED, "https://a.example.org/1").to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mine = uuid();
    let (code, _) = as_other(
        &n,
        "POST",
        "/xapi/statements",
        &statement(&mine, "amina", EXPERIENCED, "https://a.example.org/2").to_string(),
    )
    .await;
    assert_eq!(code, 200);

    // The page holds only its own; the kiosk's (scope all) sees both.
    let (code, page) = as_other(&n, "GET", "/xapi/statements", "").await;
    assert_eq!(code, 200);
    let ids: Vec<&str> = page["statements"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [mine.as_str()]);
    assert_eq!(n.get("/xapi/statements").await.json()["statements"].as_array().unwrap().len(), 2);
    // Another's statement by id is as if it did not exist; a filter does not widen it.
    assert_eq!(as_other(&n, "GET", &format!("/xapi/statements?statementId={kiosks}"), "").await.0, 404);
    assert_eq!(as_other(&n, "GET", &format!("/xapi/statements?statementId={mine}"), "").await.0, 200);
    let agent = urlencoding(r#"{"account":{"homePage":"https://lms.example.org/learners","name":"amina"}}"#);
    let (_, page) = as_other(&n, "GET", &format!("/xapi/statements?agent={agent}"), "").await;
    assert_eq!(page["statements"].as_array().unwrap().len(), 1);

    // Acting for learners and reading operations need more than the default.
    let (code, body) = as_other(&n, "GET", "/v1/learners/amina/progress", "").await;
    assert_eq!(code, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("statements/read/mine"), "{body}");
    assert_eq!(as_other(&n, "GET", "/v1/sync/status", "").await.0, 403);
    assert_eq!(n.get("/v1/learners/amina/progress").await.status, 200);
    n.stop().await;
}

#[tokio::test]
async fn only_the_authority_or_scope_all_voids_a_statement() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    let kiosks = uuid();
    n.send("POST", "/xapi/statements", statement(&kiosks, "amina", EXPERIENCED, "https://a.example.org/1").to_string())
        .await;
    let (code, body) = as_other(&n, "POST", "/xapi/statements", &voiding(&kiosks).to_string()).await;
    assert_eq!(code, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains(&kiosks), "{body}");
    assert_eq!(n.get(&format!("/xapi/statements?statementId={kiosks}")).await.status, 200, "voided anyway");

    // A voiding statement sent before its target (xAPI lets it be stored)
    // does not void the target another credential stores later.
    let later = uuid();
    let (code, _) = as_other(&n, "POST", "/xapi/statements", &voiding(&later).to_string()).await;
    assert_eq!(code, 200);
    n.send("POST", "/xapi/statements", statement(&later, "amina", EXPERIENCED, "https://a.example.org/3").to_string())
        .await;
    assert_eq!(n.get(&format!("/xapi/statements?statementId={later}")).await.status, 200, "voided by a stranger");

    // Its own statement it voids; the kiosk (scope all) voids anyone's.
    let mine = uuid();
    as_other(
        &n,
        "POST",
        "/xapi/statements",
        &statement(&mine, "amina", EXPERIENCED, "https://a.example.org/2").to_string(),
    )
    .await;
    assert_eq!(as_other(&n, "POST", "/xapi/statements", &voiding(&mine).to_string()).await.0, 200);
    assert_eq!(n.get(&format!("/xapi/statements?voidedStatementId={mine}")).await.status, 200);
    assert_eq!(n.send("POST", "/xapi/statements", voiding(&kiosks).to_string()).await.status, 200);
    assert_eq!(n.get(&format!("/xapi/statements?voidedStatementId={kiosks}")).await.status, 200);
    n.stop().await;
}

#[tokio::test]
async fn a_credential_scoped_write_only_cannot_read() {
    let n = TestNode::start(None, |_| {}).await;
    std::fs::write(n.dir.path().join("scopes.toml"), "kiosk = [\"all\"]\nother = [\"statements/write\"]\n").unwrap();
    assert_eq!(n.reload().await.status, 200);
    let n = n.ready().await;
    let (code, _) = as_other(
        &n,
        "POST",
        "/xapi/statements",
        &statement(&uuid(), "amina", EXPERIENCED, "https://a.example.org/2").to_string(),
    )
    .await;
    assert_eq!(code, 200);
    let (code, body) = as_other(&n, "GET", "/xapi/statements", "").await;
    assert_eq!(code, 403, "{body}");
    n.stop().await;
}

#[tokio::test]
async fn a_bad_scopes_file_keeps_the_previous_scopes() {
    let n = TestNode::start(None, |_| {}).await.ready().await;
    std::fs::write(n.dir.path().join("scopes.toml"), "kiosk = [\"all\"]\nother = [\"statements/delete\"]\n").unwrap();
    n.reload().await;
    // Still the old scopes: the kiosk reads everything, other its own.
    assert_eq!(n.get("/v1/learners/amina/progress").await.status, 200);
    assert_eq!(as_other(&n, "GET", "/xapi/statements", "").await.0, 200);
    n.stop().await;
}

fn urlencoding(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
