//! The xAPI statement resource: single and batch POST.

use crate::harness::scenario;
use crate::nodes::Node;
use crate::{Bench, XAPI};
use serde_json::{Value, json};

/// A lesson-completed statement of `learner` (lesson `i % 8` of arithmetic).
pub fn statement(learner: &str, i: u64) -> Value {
    json!({
        "actor": {"objectType": "Agent", "account": {"homePage": "https://lms.example.org/learners", "name": learner}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": format!("https://lms.example.org/xapi/activities/courses/arithmetic/lessons/l{}", i % 8)},
        "result": {"duration": "PT1M"},
    })
}

pub async fn statements(b: &Bench, node: &Node) {
    let (c, a, u) = (b.client.clone(), b.auth.clone(), node.url("/xapi/statements"));
    scenario(&b.args, "statement POST (1)", 1.0, move |i| {
        let (c, a, u) = (c.clone(), a.clone(), u.clone());
        async move {
            let body = statement(&format!("l{}", i % 1000), i).to_string();
            c.send("POST".parse().unwrap(), &u, &[("authorization", &a), XAPI[0], XAPI[1]], body)
                .await
                .map(|r| r.status.as_u16())
        }
    })
    .await;

    let (c, a, u) = (b.client.clone(), b.auth.clone(), node.url("/xapi/statements"));
    scenario(&b.args, "statement POST (batch 100)", 100.0, move |i| {
        let (c, a, u) = (c.clone(), a.clone(), u.clone());
        async move {
            let batch: Vec<Value> = (0..100).map(|k| statement(&format!("b{}", (i + k) % 1000), i + k)).collect();
            let body = Value::from(batch).to_string();
            c.send("POST".parse().unwrap(), &u, &[("authorization", &a), XAPI[0], XAPI[1]], body)
                .await
                .map(|r| r.status.as_u16())
        }
    })
    .await;
}
