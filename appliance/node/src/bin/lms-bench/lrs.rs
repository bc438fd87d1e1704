//! The LRS: statement POST (single, and batches beside a commit-per-statement
//! baseline), State documents, and filtered statement GET over a store of a
//! million statements.

use crate::harness::{compare, scenario, wanted};
use crate::nodes::{Node, config_with};
use crate::{Bench, XAPI};
use lms_node::client::Client;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// A lesson-completed statement of `learner` (lesson `i % 8` of arithmetic).
pub fn statement(learner: &str, i: u64) -> Value {
    json!({
        "actor": {"objectType": "Agent", "account": {"homePage": "https://lms.example.org/learners", "name": learner}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": format!("https://lms.example.org/xapi/activities/courses/arithmetic/lessons/l{}", i % 8)},
        "result": {"duration": "PT1M"},
    })
}

/// A load that POSTs `per` statements per request to `base`.
fn poster(
    c: &Client,
    a: &Arc<String>,
    base: &str,
    per: u64,
) -> impl Fn(u64) -> PostFut + Send + Sync + Clone + 'static {
    let (c, a, u) = (c.clone(), a.clone(), Arc::new(format!("{base}/xapi/statements")));
    move |i: u64| {
        let (c, a, u) = (c.clone(), a.clone(), u.clone());
        Box::pin(async move {
            let body = if per == 1 {
                statement(&format!("l{}", i % 1000), i).to_string()
            } else {
                let batch: Vec<Value> = (0..per).map(|k| statement(&format!("b{}", (i + k) % 1000), i + k)).collect();
                Value::from(batch).to_string()
            };
            c.send("POST".parse().unwrap(), &u, &[("authorization", &a), XAPI[0], XAPI[1]], body)
                .await
                .map(|r| r.status.as_u16())
        })
    }
}

/// The query string of request `i` of a filter scenario.
type QueryOf = Box<dyn Fn(u64) -> String + Send + Sync>;

type PostFut = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u16, String>> + Send>>;

pub async fn statements(b: &Bench, node: &Node) {
    scenario(&b.args, "statement POST (1)", 1.0, poster(&b.client, &b.auth, &node.base, 1)).await;

    // The baseline commits (and fsyncs) every statement on its own.
    let name = "statement POST batch 100 vs a commit per statement";
    if wanted(&b.args, name) {
        let cfg = config_with(b, "commit-each.toml", "group_commit_max = 1\n");
        let baseline = Node::up(b, &b.work.path().join("commit-each-data"), Some(&cfg)).await;
        compare(
            &b.args,
            name,
            vec![
                ("batch 100, group commit", 100.0, poster(&b.client, &b.auth, &node.base, 100)),
                ("1 per request, a commit each (baseline)", 1.0, poster(&b.client, &b.auth, &baseline.base, 1)),
            ],
        )
        .await;
    }
}

/// State documents as a cmi5 AU keeps its bookmark: PUT, then GET, for
/// 1,000 learners.
pub async fn state(b: &Bench, node: &Node) {
    let doc = |i: u64| {
        let agent = json!({"objectType": "Agent", "account": {"homePage": "https://lms.example.org/learners", "name": format!("s{}", i % 1000)}});
        format!(
            "/xapi/activities/state?activityId={}&agent={}&stateId=bookmark",
            urlencode("https://lms.example.org/xapi/activities/courses/arithmetic"),
            urlencode(&agent.to_string())
        )
    };
    let (c, a, base) = (b.client.clone(), b.auth.clone(), Arc::new(node.base.clone()));
    scenario(&b.args, "State PUT", 1.0, move |i| {
        let (c, a, url) = (c.clone(), a.clone(), format!("{base}{}", doc(i)));
        async move {
            let body = json!({"location": format!("slide-{}", i % 40), "suspend_data": "x".repeat(200)}).to_string();
            c.send("PUT".parse().unwrap(), &url, &[("authorization", &a), XAPI[0], XAPI[1]], body)
                .await
                .map(|r| r.status.as_u16())
        }
    })
    .await;
    let (c, a, base) = (b.client.clone(), b.auth.clone(), Arc::new(node.base.clone()));
    scenario(&b.args, "State GET", 1.0, move |i| {
        let (c, a, url) = (c.clone(), a.clone(), format!("{base}{}", doc(i)));
        async move { c.get(&url, &[("authorization", &a), XAPI[0]]).await.map(|r| r.status.as_u16()) }
    })
    .await;
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_string()
}

const LEARNERS: u64 = 10_000;
const ACTIVITIES: u64 = 2_000;
const VERBS: [&str; 8] =
    ["completed", "passed", "failed", "attempted", "experienced", "answered", "progressed", "terminated"];

/// Statement `k` of the big store: learner `k % 10,000`, one of 8 verbs,
/// one of 2,000 activities, a registration per 20 statements.
fn stored(k: u64) -> Value {
    json!({
        "actor": {"objectType": "Agent", "account": {"homePage": "https://lms.example.org/learners", "name": format!("m{}", k % LEARNERS)}},
        "verb": {"id": format!("http://adlnet.gov/expapi/verbs/{}", VERBS[(k / 3 % 8) as usize])},
        "object": {"id": format!("https://lms.example.org/xapi/activities/a{}", k * 7 % ACTIVITIES)},
        "context": {"registration": registration(k / 20)},
        "result": {"duration": "PT2M", "score": {"scaled": 0.75}},
    })
}

fn registration(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// Filtered statement GET, a page of 100, over a store of `--store`
/// statements (1,000,000 by default) that the bench writes first.
pub async fn filters(b: &Bench) {
    let names = "statement GET (1M) by agent, verb, activity, registration, since, agent+verb";
    if !wanted(&b.args, names) && !wanted(&b.args, "statement GET") {
        return;
    }
    let node = Node::up(b, &b.work.path().join("big-data"), None).await;
    let total = b.args.store;
    let t = Instant::now();
    let writers = 8u64;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (c, a, u) = (b.client.clone(), b.auth.clone(), format!("{}/xapi/statements", node.base));
        tasks.push(tokio::spawn(async move {
            let mut k = w * 100;
            while k < total {
                let batch: Vec<Value> = (k..(k + 100).min(total)).map(stored).collect();
                let r = c
                    .send(
                        "POST".parse().unwrap(),
                        &u,
                        &[("authorization", &a), XAPI[0], XAPI[1]],
                        Value::from(batch).to_string(),
                    )
                    .await
                    .expect("loading the big store");
                assert_eq!(r.status.as_u16(), 200, "loading the big store: {}", r.text());
                k += writers * 100;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!("big store: {total} statements written in {:.1} s", t.elapsed().as_secs_f64());
    let last = b
        .client
        .get(&format!("{}/xapi/statements?limit=1", node.base), &[("authorization", &b.auth), XAPI[0]])
        .await
        .unwrap();
    let newest = last.json()["statements"][0]["stored"].as_str().unwrap_or("").to_string();
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let since = time::OffsetDateTime::parse(&newest, rfc3339).expect("stored is RFC 3339") - time::Duration::seconds(1);
    let since = urlencode(&since.format(rfc3339).unwrap());
    let agent = |i: u64| {
        urlencode(
            &json!({"account": {"homePage": "https://lms.example.org/learners", "name": format!("m{}", i % LEARNERS)}})
                .to_string(),
        )
    };
    let filters: Vec<(&str, QueryOf)> = vec![
        ("by agent", Box::new(move |i| format!("agent={}", agent(i)))),
        (
            "by verb",
            Box::new(|i| {
                format!("verb={}", urlencode(&format!("http://adlnet.gov/expapi/verbs/{}", VERBS[(i % 8) as usize])))
            }),
        ),
        (
            "by activity",
            Box::new(|i| {
                format!(
                    "activity={}",
                    urlencode(&format!("https://lms.example.org/xapi/activities/a{}", i % ACTIVITIES))
                )
            }),
        ),
        ("by registration", Box::new(move |i| format!("registration={}", registration(i % (total / 20).max(1))))),
        // Stored within the last second of the load: newest first, a page.
        ("since", Box::new(move |_| format!("since={since}"))),
        (
            "agent+verb",
            Box::new(move |i| {
                let who = urlencode(&json!({"account": {"homePage": "https://lms.example.org/learners", "name": format!("m{}", i % LEARNERS)}}).to_string());
                format!(
                    "agent={who}&verb={}",
                    urlencode(&format!("http://adlnet.gov/expapi/verbs/{}", VERBS[(i / 7 % 8) as usize]))
                )
            }),
        ),
    ];
    for (label, query) in filters {
        let query = Arc::new(query);
        let (c, a, base) = (b.client.clone(), b.auth.clone(), Arc::new(node.base.clone()));
        scenario(&b.args, &format!("statement GET (1M) {label}"), 1.0, move |i| {
            let url = format!("{base}/xapi/statements?limit=100&{}", query(i));
            let (c, a) = (c.clone(), a.clone());
            async move { c.get(&url, &[("authorization", &a), XAPI[0]]).await.map(|r| r.status.as_u16()) }
        })
        .await;
    }
}
