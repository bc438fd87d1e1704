//! Package files, served to browsers from the content listener
//! (`content_listen`, default port 8081): a separate origin from the node's
//! pages, so a package's scripts never run where the learner's session and
//! the node's pages live. No wasm on this path: the host reads the file.
//!
//! `GET|HEAD /p/{course}/{tag}/{*path}`: `tag` is the first 16 hex digits
//! of the package's sha256, so a URL always names the same bytes and is
//! cached `immutable`; a new version of the package has a new tag (the old
//! tag answers 404). ETag is the file's sha256 (If-None-Match: 304);
//! `Range` (video seeking), Last-Modified and Content-Type come from
//! tower-http's ServeFile. Every answer carries nosniff, no referrer (a
//! cmi5 launch URL holds a fetch URL) and a Content-Security-Policy:
//! cmi5, HTML5 and media run sandboxed without same-origin (an opaque
//! origin: no cookies, no storage shared with anything); SCORM keeps the
//! content origin (its runtime and the SCO must reach each other).

use crate::http::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lms_package::course::Kind;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

/// One package's files, as its `files.json` lists them.
#[derive(Debug)]
pub struct PackageFiles {
    pub kind: Kind,
    /// The course the package is (its AUs, for launches).
    pub course: Arc<lms_package::Course>,
    /// Its pack's `activity_base` (the LMS's own activity ids for it).
    pub activity_base: String,
    /// `packages/<course>/files` of the pack it is in.
    pub root: PathBuf,
    /// The URL tag: the package file's sha256, first 16 hex digits.
    pub tag: String,
    /// Path in the package -> sha256.
    pub files: HashMap<String, String>,
}

/// Every served package by course id.
pub type PackageIndex = HashMap<String, Arc<PackageFiles>>;

/// The index entries of a checked pack at `dir`.
pub fn index_pack(dir: &std::path::Path, pack: &lms_package::pack::Checked) -> PackageIndex {
    pack.packages
        .iter()
        .map(|c| {
            let files = pack.files.get(&c.id).map(|l| l.iter().map(|f| (f.path.clone(), f.sha256.clone())).collect());
            let entry = PackageFiles {
                kind: c.kind,
                course: Arc::new(c.clone()),
                activity_base: pack.activity_base.clone(),
                root: dir.join(lms_package::pack::PACKAGES_DIR).join(&c.id).join(lms_package::pack::FILES_DIR),
                tag: c.source_sha256.chars().take(16).collect(),
                files: files.unwrap_or_default(),
            };
            (c.id.clone(), Arc::new(entry))
        })
        .collect()
}

/// The CSP a package's files get (see the module documentation).
fn policy(kind: Kind) -> &'static str {
    match kind {
        Kind::Scorm12 | Kind::Scorm2004 => "frame-ancestors *; object-src 'none'; base-uri 'none'",
        Kind::Cmi5 | Kind::Html5 | Kind::Media => {
            "sandbox allow-scripts allow-forms allow-popups allow-popups-to-escape-sandbox allow-downloads; object-src 'none'; base-uri 'none'"
        }
    }
}

pub fn router(node: AppState) -> axum::Router {
    axum::Router::new()
        .route("/p/{course}/{tag}/{*path}", axum::routing::get(file))
        .merge(super::scorm::router())
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(node)
}

async fn file(
    State(node): State<AppState>,
    Path((course, tag, path)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let Ok(set) = node.current() else { return StatusCode::SERVICE_UNAVAILABLE.into_response() };
    let Some(pkg) = set.packages.get(&course).cloned() else { return StatusCode::NOT_FOUND.into_response() };
    // Only the files the package lists, under the tag of its current bytes.
    let Some(sha) = pkg.files.get(&path).filter(|_| tag == pkg.tag) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{sha}\"");
    let mut resp = if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match tower_http::services::ServeFile::new(pkg.root.join(&path)).oneshot(req).await {
            Ok(r) => r.map(axum::body::Body::new),
            Err(e) => match e {},
        }
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy(pkg.kind)));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}
