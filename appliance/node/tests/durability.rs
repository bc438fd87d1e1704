//! A 2xx to a statement write means it is on disk: kill -9 the real binary
//! right after the answers arrive, start it again, and every acknowledged
//! statement is there. (kill -9 keeps the kernel's page cache; the power-loss
//! half of the promise rests on SQLite WAL with synchronous=FULL, which
//! fsyncs the WAL before COMMIT returns.)

mod common;
use common::*;
use lms_node::client::{Client, basic_auth};
use std::time::Duration;

async fn wait_healthy(client: &Client, base: &str) {
    for _ in 0..600 {
        if client.get(&format!("{base}/healthz"), &[]).await.is_ok_and(|r| r.status == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("lms-node at {base} did not come up");
}

#[tokio::test]
async fn kill_9_right_after_2xx_keeps_every_acknowledged_statement() {
    let dir = tempfile::tempdir().unwrap();
    write_credentials(&dir.path().join("htpasswd"));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new(Duration::from_secs(20));
    let auth = basic_auth(USER, PASSWORD);

    let mut child = spawn_node(dir.path(), port);
    wait_healthy(&client, &base).await;

    // Many concurrent writers, so acknowledgements come out of group commits.
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (client, base, auth) = (client.clone(), base.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..10 {
                let id = uuid();
                let s = statement(&id, &format!("w{w}"), "https://verbs/v", &format!("https://a/{i}"));
                let r = client
                    .send(
                        "POST".parse().unwrap(),
                        &format!("{base}/xapi/statements"),
                        &[("authorization", &auth), XAPI, ("content-type", "application/json")],
                        s.to_string(),
                    )
                    .await
                    .unwrap();
                assert_eq!(r.status, 200, "{}", r.text());
                acked.push(id);
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    // The moment the last answer is in: no graceful anything.
    child.kill().unwrap();
    child.wait().unwrap();

    let mut child = spawn_node(dir.path(), port);
    wait_healthy(&client, &base).await;
    for id in &acked {
        let r = client
            .get(&format!("{base}/xapi/statements?statementId={id}"), &[("authorization", &auth), XAPI])
            .await
            .unwrap();
        assert_eq!(r.status, 200, "acknowledged statement {id} lost after kill -9");
    }
    assert_eq!(acked.len(), 160);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The same promise for documents: a State and an Agent Profile written
/// (PUT, then POST merges) are there after kill -9 right after their 204s.
#[tokio::test]
async fn kill_9_right_after_a_document_2xx_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    write_credentials(&dir.path().join("htpasswd"));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new(Duration::from_secs(20));
    let auth = basic_auth(USER, PASSWORD);
    let agent = r#"{"objectType":"Agent","mbox":"mailto:ann@example.org"}"#;
    let enc = |v: &str| serde_urlencoded::to_string([("x", v)]).unwrap()[2..].to_string();
    let state = |i: usize| {
        format!("{base}/xapi/activities/state?activityId={}&agent={}&stateId=s{i}", enc("https://a/1"), enc(agent))
    };
    let profile = format!("{base}/xapi/agents/profile?agent={}&profileId=prefs", enc(agent));

    let mut child = spawn_node(dir.path(), port);
    wait_healthy(&client, &base).await;
    let send = |method: &'static str, url: String, body: String| {
        let (client, auth) = (client.clone(), auth.clone());
        async move {
            let h = [("authorization", auth.as_str()), XAPI, ("content-type", "application/json")];
            let r = client.send(method.parse().unwrap(), &url, &h, body).await.unwrap();
            assert_eq!(r.status, 204, "{method} {url}: {}", r.text());
        }
    };
    let mut tasks = Vec::new();
    for i in 0..20 {
        tasks.push(tokio::spawn(send("PUT", state(i), format!(r#"{{"n": {i}}}"#))));
    }
    for t in tasks {
        t.await.unwrap();
    }
    send("PUT", profile.clone(), r#"{"lang": "zh-CN"}"#.into()).await;
    send("POST", profile.clone(), r#"{"volume": 3}"#.into()).await;
    child.kill().unwrap();
    child.wait().unwrap();

    let mut child = spawn_node(dir.path(), port);
    wait_healthy(&client, &base).await;
    for i in 0..20 {
        let r = client.get(&state(i), &[("authorization", &auth), XAPI]).await.unwrap();
        assert_eq!(r.status, 200, "state s{i} lost after kill -9");
        assert_eq!(r.json(), serde_json::json!({"n": i}));
    }
    let r = client.get(&profile, &[("authorization", &auth), XAPI]).await.unwrap();
    assert_eq!(r.json(), serde_json::json!({"lang": "zh-CN", "volume": 3}));
    child.kill().unwrap();
    child.wait().unwrap();
}
