//! Statements with attachments (multipart/mixed in and out), signed
//! statements, and the rules where xAPI 1.0.3 and 2.0 differ, against a
//! real node on 127.0.0.1:0.

mod common;
use base64::Engine as _;
use common::*;
use lms_node::client::basic_auth;
use serde_json::{Value, json};
use sha2::Digest as _;

const ANSWERED: &str = "http://adlnet.gov/expapi/verbs/answered";
const ACT: &str = "https://lms.example.org/xapi/activities/essay";
const SIGNATURE: &str = "http://adlnet.gov/expapi/attachments/signature";
const BOUNDARY: &str = "abcABC0123'()+_,-./:=?";

fn sha256(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn declaration(bytes: &[u8], content_type: &str, usage: &str) -> Value {
    json!({"usageType": usage, "display": {"en-US": "an attachment"}, "contentType": content_type,
           "length": bytes.len(), "sha2": sha256(bytes)})
}

/// A multipart/mixed body: the JSON, then each (content type, hash header, bytes).
fn multipart(json: &Value, parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut b = format!("--{BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{json}").into_bytes();
    for (ct, hash, bytes) in parts {
        b.extend(
            format!(
                "\r\n--{BOUNDARY}\r\nContent-Type: {ct}\r\nContent-Transfer-Encoding: binary\r\nX-Experience-API-Hash: {hash}\r\n\r\n"
            )
            .bytes(),
        );
        b.extend_from_slice(bytes);
    }
    b.extend(format!("\r\n--{BOUNDARY}--\r\n").bytes());
    b
}

async fn send_multipart(
    n: &TestNode,
    method: &str,
    path: &str,
    body: Vec<u8>,
    version: &str,
) -> lms_node::client::Reply {
    let auth = basic_auth(USER, PASSWORD);
    let ct = format!("multipart/mixed; boundary=\"{BOUNDARY}\"");
    n.client
        .send(
            method.parse().unwrap(),
            &n.url(path),
            &[("authorization", &auth), ("X-Experience-API-Version", version), ("content-type", &ct)],
            body,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn attachments_go_in_as_parts_and_come_back_with_attachments_true() {
    let n = TestNode::start(None, |_| {}).await;
    let essay = b"here is a simple attachment".as_slice();
    let picture: Vec<u8> = (0..=255u8).cycle().take(3000).collect(); // binary, with CR LF and NUL bytes
    let id = uuid();
    let mut s = statement(&id, "ann", ANSWERED, ACT);
    s["attachments"] = json!([
        declaration(essay, "text/plain; charset=ascii", "https://lms.example.org/attachments/essay"),
        declaration(&picture, "image/png", "https://lms.example.org/attachments/picture"),
    ]);
    let body = multipart(&s, &[("text/plain", &sha256(essay), essay), ("image/png", &sha256(&picture), &picture)]);
    let r = send_multipart(&n, "POST", "/xapi/statements", body, "2.0.0").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!([id]));

    // Without attachments=true: JSON, the declarations only.
    let plain = n.get(&format!("/xapi/statements?statementId={id}")).await;
    assert_eq!(plain.header("content-type"), Some("application/json"));
    assert_eq!(plain.json()["attachments"][1]["sha2"], sha256(&picture));

    // With it: the statement, then each attachment's bytes under its hash.
    let r = n.get(&format!("/xapi/statements?statementId={id}&attachments=true")).await;
    assert_eq!(r.status, 200);
    let parts = parts_of(&r).await;
    assert_eq!(parts.len(), 3);
    let first: Value = serde_json::from_slice(&parts[0].1).unwrap();
    assert_eq!(first["id"], id);
    assert_eq!(parts[1].1, essay);
    assert_eq!(parts[2].1, picture, "binary bytes come back exactly");
    assert_eq!(parts[2].0["x-experience-api-hash"], sha256(&picture).as_str());
    assert_eq!(parts[2].0["content-transfer-encoding"], "binary");
    assert!(r.header("x-experience-api-consistent-through").is_some());

    // A page with attachments=true carries them too.
    let r = n.get(&format!("/xapi/statements?activity={ACT}&attachments=true")).await;
    let parts = parts_of(&r).await;
    let page: Value = serde_json::from_slice(&parts[0].1).unwrap();
    assert_eq!(page["statements"][0]["id"], id);
    assert_eq!(parts.len(), 3);

    // PUT takes the same body; one copy of an attachment serves a batch.
    let (a, b) = (uuid(), uuid());
    let mut sa = statement(&a, "ann", ANSWERED, ACT);
    sa["attachments"] = json!([declaration(essay, "text/plain", "https://u/essay")]);
    let mut sb = sa.clone();
    sb["id"] = json!(b);
    let r = send_multipart(
        &n,
        "POST",
        "/xapi/statements",
        multipart(&json!([sa, sb]), &[("text/plain", &sha256(essay), essay)]),
        "1.0.3",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let put_id = uuid();
    let mut sp = statement(&put_id, "ann", ANSWERED, ACT);
    sp["attachments"] = json!([declaration(essay, "text/plain", "https://u/essay")]);
    let r = send_multipart(
        &n,
        "PUT",
        &format!("/xapi/statements?statementId={put_id}"),
        multipart(&sp, &[("text/plain", &sha256(essay), essay)]),
        "2.0.0",
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let parts = parts_of(&n.get(&format!("/xapi/statements?statementId={b}&attachments=true")).await).await;
    assert_eq!(parts[1].1, essay);
    n.stop().await;
}

#[tokio::test]
async fn bad_parts_are_refused_whole_and_name_the_problem() {
    let n = TestNode::start(None, |_| {}).await;
    let essay = b"an essay".as_slice();
    let with_attachment = |id: &str| {
        let mut s = statement(id, "ann", ANSWERED, ACT);
        s["attachments"] = json!([declaration(essay, "text/plain", "https://u/essay")]);
        s
    };
    let stored = |id: String| {
        let n = &n;
        async move { n.get(&format!("/xapi/statements?statementId={id}")).await.status }
    };

    // The part's bytes do not hash to its header.
    let id = uuid();
    let r = send_multipart(
        &n,
        "POST",
        "/xapi/statements",
        multipart(&with_attachment(&id), &[("text/plain", &sha256(essay), b"another essay")]),
        "2.0.0",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["field"], "part 2");
    assert!(r.json()["message"].as_str().unwrap().contains("hash to"), "{}", r.text());
    assert_eq!(stored(id).await, 404);

    // A declaration without fileUrl and no part: as JSON, and as multipart.
    let id = uuid();
    let r = n.send("POST", "/xapi/statements", with_attachment(&id).to_string()).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["field"], "attachments[0].sha2");
    let r =
        send_multipart(&n, "POST", "/xapi/statements", multipart(&json!([with_attachment(&id)]), &[]), "2.0.0").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "[0].attachments[0].sha2");
    assert_eq!(stored(id).await, 404);

    // A part no statement declares.
    let id = uuid();
    let stray = b"stray".as_slice();
    let r = send_multipart(
        &n,
        "POST",
        "/xapi/statements",
        multipart(
            &with_attachment(&id),
            &[("text/plain", &sha256(essay), essay), ("text/plain", &sha256(stray), stray)],
        ),
        "2.0.0",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "part 3");

    // A part without its hash header; a first part that is not JSON; no boundary.
    let body = format!(
        "--{BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{}\r\n--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nan essay\r\n--{BOUNDARY}--\r\n",
        with_attachment(&id)
    );
    let r = send_multipart(&n, "POST", "/xapi/statements", body.into_bytes(), "2.0.0").await;
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("X-Experience-API-Hash"), "{}", r.text());
    let body = format!("--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{BOUNDARY}--\r\n");
    let r = send_multipart(&n, "POST", "/xapi/statements", body.into_bytes(), "2.0.0").await;
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("part 1"), "{}", r.text());
    let auth = basic_auth(USER, PASSWORD);
    let r = n
        .client
        .send(
            "POST".parse().unwrap(),
            &n.url("/xapi/statements"),
            &[("authorization", &auth), XAPI, ("content-type", "multipart/mixed")],
            "x",
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("boundary"), "{}", r.text());
    assert_eq!(stored(id).await, 404);

    // fileUrl-only attachments need no part, as JSON or multipart.
    let mut by_url = with_attachment(&uuid());
    by_url["attachments"][0]["fileUrl"] = json!("https://files.example.org/essay.txt");
    assert_eq!(n.send("POST", "/xapi/statements", by_url.to_string()).await.status, 200);
    by_url["id"] = json!(uuid());
    assert_eq!(send_multipart(&n, "POST", "/xapi/statements", multipart(&by_url, &[]), "2.0.0").await.status, 200);
    n.stop().await;
}

/// Declaring another statement's hash with a fileUrl does not reach its bytes.
#[tokio::test]
async fn a_hash_alone_does_not_reveal_anyone_elses_attachment() {
    let n = TestNode::start(None, |_| {}).await;
    let secret = b"ann's private essay".as_slice();
    let mut s = statement(&uuid(), "ann", ANSWERED, ACT);
    s["attachments"] = json!([declaration(secret, "text/plain", "https://u/essay")]);
    let r = send_multipart(
        &n,
        "POST",
        "/xapi/statements",
        multipart(&s, &[("text/plain", &sha256(secret), secret)]),
        "2.0.0",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let probe = uuid();
    let mut p = statement(&probe, "mallory", ANSWERED, "https://lms.example.org/probe");
    p["attachments"] = json!([declaration(secret, "text/plain", "https://u/essay")]);
    p["attachments"][0]["fileUrl"] = json!("https://mallory.example/x");
    assert_eq!(n.send("POST", "/xapi/statements", p.to_string()).await.status, 200);
    let parts = parts_of(&n.get(&format!("/xapi/statements?statementId={probe}&attachments=true")).await).await;
    assert_eq!(parts.len(), 1, "only the statement: its request carried no bytes");
    n.stop().await;
}

/// A compact JWS of `payload` signed with a PKCS#8 RSA key, with `x5c` when given.
fn jws(payload: &Value, alg: &str, key_der: &[u8], x5c: Option<&[u8]>) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut header = json!({"alg": alg});
    if let Some(cert) = x5c {
        header["x5c"] = json!([base64::engine::general_purpose::STANDARD.encode(cert)]);
    }
    let signing_input = format!("{}.{}", b64.encode(header.to_string()), b64.encode(payload.to_string()));
    let key = ring::signature::RsaKeyPair::from_pkcs8(key_der).unwrap();
    let padding: &dyn ring::signature::RsaEncoding = match alg {
        "RS384" => &ring::signature::RSA_PKCS1_SHA384,
        "RS512" => &ring::signature::RSA_PKCS1_SHA512,
        _ => &ring::signature::RSA_PKCS1_SHA256,
    };
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(padding, &ring::rand::SystemRandom::new(), signing_input.as_bytes(), &mut sig).unwrap();
    format!("{signing_input}.{}", b64.encode(sig))
}

#[tokio::test]
async fn signed_statements_are_checked_as_the_standard_says() {
    let n = TestNode::start(None, |_| {}).await;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jws");
    let key = std::fs::read(fixtures.join("signer.pkcs8.der")).unwrap();
    let cert = std::fs::read(fixtures.join("signer.cert.der")).unwrap();
    let other_key = std::fs::read(fixtures.join("other.pkcs8.der")).unwrap();

    // Sign the statement as it is before the signature is added, then add it.
    let post_signed = |original: Value, token: String| {
        let n = &n;
        async move {
            let mut s = original;
            s["attachments"] = json!([declaration(token.as_bytes(), "application/octet-stream", SIGNATURE)]);
            let body = multipart(&s, &[("application/octet-stream", &sha256(token.as_bytes()), token.as_bytes())]);
            send_multipart(n, "POST", "/xapi/statements", body, "2.0.0").await
        }
    };
    for alg in ["RS256", "RS384", "RS512"] {
        let s = statement(&uuid(), "ann", ANSWERED, ACT);
        let r = post_signed(s.clone(), jws(&s, alg, &key, Some(&cert))).await;
        assert_eq!(r.status, 200, "{alg}: {}", r.text());
    }
    // Without x5c a well-formed JWS is accepted (the standard leaves trust to readers).
    let s = statement(&uuid(), "ann", ANSWERED, ACT);
    assert_eq!(post_signed(s.clone(), jws(&s, "RS256", &other_key, None)).await.status, 200);

    let refused = |r: lms_node::client::Reply, needle: &str| {
        assert_eq!(r.status, 400, "{}", r.text());
        let m = r.json()["message"].as_str().unwrap().to_string();
        assert!(m.contains(needle), "{needle:?} not in {m}");
        assert_eq!(r.json()["field"], "attachments[0]");
    };
    // The payload is not this statement.
    let s = statement(&uuid(), "ann", ANSWERED, ACT);
    let mut changed = s.clone();
    changed["verb"]["id"] = json!("http://adlnet.gov/expapi/verbs/failed");
    refused(post_signed(s, jws(&changed, "RS256", &key, Some(&cert))).await, "payload");
    // Signed with a key that is not the certificate's.
    let s = statement(&uuid(), "ann", ANSWERED, ACT);
    refused(post_signed(s.clone(), jws(&s, "RS256", &other_key, Some(&cert))).await, "does not verify");
    // Signed with RS512 but labelled RS256.
    let token = jws(&s, "RS512", &key, Some(&cert));
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut pieces: Vec<String> = token.split('.').map(str::to_string).collect();
    pieces[0] = b64
        .encode(json!({"alg": "RS256", "x5c": [base64::engine::general_purpose::STANDARD.encode(&cert)]}).to_string());
    refused(post_signed(s.clone(), pieces.join(".")).await, "does not verify");
    // Not RSA + SHA; not a JWS at all.
    let hs = format!("{}.{}.c2ln", b64.encode(r#"{"alg":"HS256"}"#), b64.encode(s.to_string()));
    refused(post_signed(s.clone(), hs).await, "RS256");
    refused(post_signed(s.clone(), "not a jws".into()).await, "compact");

    // A signature attachment must be application/octet-stream.
    let mut wrong_type = s.clone();
    let token = jws(&s, "RS256", &key, Some(&cert));
    wrong_type["attachments"] = json!([declaration(token.as_bytes(), "text/plain", SIGNATURE)]);
    let r = send_multipart(
        &n,
        "POST",
        "/xapi/statements",
        multipart(&wrong_type, &[("text/plain", &sha256(token.as_bytes()), token.as_bytes())]),
        "2.0.0",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "attachments[0].contentType");
    assert_eq!(n.get(&format!("/xapi/statements?statementId={}", s["id"].as_str().unwrap())).await.status, 404);
    n.stop().await;
}

#[tokio::test]
async fn where_1_0_3_and_2_0_differ_the_request_version_decides() {
    let n = TestNode::start(None, |_| {}).await;
    let auth = basic_auth(USER, PASSWORD);
    let post = |version: &'static str, body: Value| {
        let (n, auth) = (&n, auth.clone());
        async move {
            n.client
                .send(
                    "POST".parse().unwrap(),
                    &n.url("/xapi/statements"),
                    &[
                        ("authorization", &auth),
                        ("X-Experience-API-Version", version),
                        ("content-type", "application/json"),
                    ],
                    body.to_string(),
                )
                .await
                .unwrap()
        }
    };
    let mut s = statement(&uuid(), "ann", ANSWERED, ACT);
    s["context"] = json!({"contextAgents": [{"objectType": "contextAgent", "agent": {"mbox": "mailto:coach@x.org"}}]});
    let r = post("1.0.3", s.clone()).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["field"], "context.contextAgents");
    assert_eq!(r.header("x-experience-api-version"), Some("1.0.3"));
    assert_eq!(post("2.0.0", s).await.status, 200);

    let mut s = statement(&uuid(), "ann", ANSWERED, ACT);
    s["timestamp"] = json!("2026-03-04T05:06:07.890");
    let r = post("2.0.0", s.clone()).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "timestamp");
    let r = post("1.0.3", s.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = n.get(&format!("/xapi/statements?statementId={}", s["id"].as_str().unwrap())).await.json();
    assert_eq!(got["version"], "1.0.0", "stored under the 1.0.3 request's default");
    n.stop().await;
}
