//! Probes, metrics and the admin operations.

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::time::Duration;

/// The process is up and answering.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

fn modules_json(node: &AppState) -> Value {
    let state = node.modules.load();
    match &state.set {
        None => json!({"bundle_version": null, "content_version": null, "modules": [], "last_error": state.last_error}),
        Some(set) => json!({
            "bundle_version": set.manifest.bundle_version,
            "content_version": set.content_info.as_ref().and_then(|c| c.version.clone()),
            "content": set.content_info,
            "local_packages": set.local_packages,
            "modules": set.manifest.modules.iter().map(|m| {
                let st = set.self_tests.iter().find(|(n, _)| n == &m.name).map(|(_, s)| s.checks.clone());
                json!({"name": m.name, "version": m.version, "sha256": m.sha256, "self_test": {"ok": true, "checks": st}})
            }).collect::<Vec<_>>(),
            "last_error": state.last_error,
        }),
    }
}

/// Public readiness: 200 `{"ready":true}` or 503 `{"ready":false}`, no
/// more: paths, node id, module hashes and reasons are for the admin
/// listener, or for a credential with scope `all/read` or `all`.
pub async fn public_readyz(
    State(node): State<AppState>,
    from: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let from = from.map(|c| c.0.0.ip());
    let details = super::auth::optional(&node.auth, &headers, from).await.is_some_and(|u| u.scopes.reads_operations());
    let resp = readyz(State(node)).await;
    if details {
        return resp;
    }
    let status = resp.status();
    (status, Json(json!({"ready": status == StatusCode::OK}))).into_response()
}

/// 200 only when the database takes writes and every module is loaded and
/// passed its self-test; 503 with the reason otherwise.
pub async fn readyz(State(node): State<AppState>) -> Response {
    let db = match tokio::time::timeout(Duration::from_secs(2), node.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("database write check timed out after 2 s".to_string()),
    };
    let modules = node.current();
    let mut body = modules_json(&node);
    body["database"] = json!(db.as_ref().map(|_| "ok").unwrap_or_else(|e| e.as_str()));
    let reasons: Vec<String> = [db.err(), modules.err()].into_iter().flatten().collect();
    body["ready"] = json!(reasons.is_empty());
    body["node_id"] = json!(node.cfg.node_id);
    let (system_version, system_slot) = running_system();
    body["system_version"] = json!(system_version);
    body["system_slot"] = json!(system_slot);
    if reasons.is_empty() {
        (StatusCode::OK, Json(body)).into_response()
    } else {
        body["reason"] = json!(reasons.join("; "));
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// Prometheus texts that share metric families (each kind of lms-updater
/// writes the same names with its own `kind` label) as one exposition:
/// each family's HELP and TYPE once, its samples together.
pub fn merge_families(texts: &[String]) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut families: std::collections::HashMap<String, (Vec<String>, Vec<String>)> = Default::default();
    for line in texts.iter().flat_map(|t| t.lines()).filter(|l| !l.trim().is_empty()) {
        let (name, comment) = match line.strip_prefix("# ") {
            Some(c) => (c.split_whitespace().nth(1).unwrap_or_default().to_string(), true),
            None => (line.split(['{', ' ']).next().unwrap_or_default().to_string(), false),
        };
        if !families.contains_key(&name) {
            order.push(name.clone());
        }
        let (head, samples) = families.entry(name).or_default();
        if comment {
            if !head.iter().any(|h| h == line) {
                head.push(line.to_string());
            }
        } else {
            samples.push(line.to_string());
        }
    }
    let mut out = String::new();
    for name in order {
        let (head, samples) = &families[&name];
        for l in head.iter().chain(samples) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// The appliance system this node runs (its version from the read-only
/// system partition, its A/B slot from the kernel command line), read once;
/// `None` off the appliance (development, tests).
fn running_system() -> &'static (Option<String>, Option<String>) {
    static SYSTEM: std::sync::OnceLock<(Option<String>, Option<String>)> = std::sync::OnceLock::new();
    SYSTEM.get_or_init(|| {
        let version = std::fs::read_to_string("/system/etc/os-release")
            .ok()
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("SYSTEM_VERSION=")).map(str::to_string));
        let slot = std::fs::read_to_string("/proc/cmdline")
            .ok()
            .and_then(|t| t.split_whitespace().find_map(|w| w.strip_prefix("lms.slot=")).map(str::to_string));
        (version, slot)
    })
}

pub async fn metrics(State(node): State<AppState>) -> Response {
    crate::sync::publish_metrics(&node);
    node.auth.publish(&node.metrics);
    let mut text = node.metrics.render();
    // Small files written by rename; a missing one (a kind not in use) is skipped.
    let files: Vec<String> = node
        .cfg
        .updater_metrics
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter(|t| t.len() < 64 << 10)
        .collect();
    text.push_str(&merge_families(&files));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// Loads the module directory again. 200 with the new versions, or 500 with
/// the reason while the previous modules keep serving.
pub async fn reload(State(node): State<AppState>) -> Response {
    match node.reload().await {
        Ok(r) => {
            (StatusCode::OK, Json(json!({"reloaded": true, "bundle_version": r.bundle_version, "content_version": r.content_version, "modules": r.modules})))
                .into_response()
        }
        Err(e) => {
            let serving = node.modules.load().set.as_ref().map(|s| s.manifest.bundle_version.clone());
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "reload_failed", "message": e, "serving": serving})),
            )
                .into_response()
        }
    }
}

pub async fn status(State(node): State<AppState>) -> Json<Value> {
    let mut body = modules_json(&node);
    body["modules_dir"] = json!(node.cfg.modules);
    body["database"] = json!(node.store.path());
    Json(body)
}

/// The same on the public listener, for a credential with scope `all/read` or `all`.
pub async fn public_sync_status(
    State(node): State<AppState>,
    axum::Extension(user): axum::Extension<super::auth::User>,
) -> Result<Json<Value>, super::error::ApiError> {
    user.may(user.scopes.reads_operations(), "read the sync status")?;
    Ok(sync_status(State(node)).await)
}

/// Upstream sync: outbox depth, oldest unsent age, last success and error, totals.
pub async fn sync_status(State(node): State<AppState>) -> Json<Value> {
    let mut v = crate::sync::status(&node);
    if let Ok(rejected) = node.store.sync_rejected(20).await {
        v["rejected_recent"] =
            rejected.into_iter().map(|(id, reason, at)| json!({"id": id, "reason": reason, "at": at})).collect();
    }
    Json(v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn updater_files_merge_into_one_family_each() {
        let a = "# HELP x_info I.\n# TYPE x_info gauge\nx_info{kind=\"modules\"} 1\n# HELP y Y.\n# TYPE y gauge\ny{kind=\"modules\"} 0\n";
        let b = a.replace("modules", "system");
        let m = super::merge_families(&[a.to_string(), b]);
        assert_eq!(
            m,
            "# HELP x_info I.\n# TYPE x_info gauge\nx_info{kind=\"modules\"} 1\nx_info{kind=\"system\"} 1\n# HELP y Y.\n# TYPE y gauge\ny{kind=\"modules\"} 0\ny{kind=\"system\"} 0\n"
        );
    }
}
