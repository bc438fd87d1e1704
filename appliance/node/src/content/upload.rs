//! `POST /admin/content/packages` (admin listener): a coach's or admin's
//! package added on the node itself, into the local content pack on the
//! data partition (`local_content`), which content updates never touch.
//! Body `application/zip` (cmi5, SCORM, HTML5) or `application/xml` (a
//! standalone cmi5.xml); `?id=` and `?title=` as `lms-image content add`
//! takes them, `?name=` the file name errors should use. 201
//! `{"course", "aus": [{"index", "id", "title"}]}`, or 400 naming the
//! package, file, line, element and value, with nothing added.

use crate::http::AppState;
use crate::http::error::ApiError;
use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use http_body_util::BodyExt;
use lms_package::pack::{self, Input};
use std::collections::HashMap;
use std::io::Write;

pub async fn add_package(
    State(node): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<(StatusCode, Json<pack::Added>), ApiError> {
    let ctype = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let ext = match ctype.split(';').next().unwrap_or("").trim() {
        "application/zip" | "application/x-zip-compressed" => "zip",
        "application/xml" | "text/xml" => "xml",
        other => {
            return Err(ApiError::bad(
                "unsupported_package_type",
                format!(
                    "Content-Type {other:?}: send application/zip (cmi5, SCORM, HTML5) or application/xml (cmi5.xml)"
                ),
            ));
        }
    };
    let name =
        q.get("name").cloned().unwrap_or_else(|| if ext == "zip" { "package.zip".into() } else { "cmi5.xml".into() });
    if name.contains('/') || name.contains('\\') || name.is_empty() || name.len() > 200 {
        return Err(ApiError::field("invalid_name", "name", "a file name, without directories"));
    }
    // The body goes to a file (packages carry video), counted against the cap.
    let upload = upload_dir(&node)?;
    let path = upload.path().join(&name);
    let max = node.cfg.max_package_bytes;
    let mut file = std::fs::File::create(&path).map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let mut body = req.into_body();
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad("unreadable_body", e.to_string()))?;
        if let Some(data) = frame.data_ref() {
            size += data.len() as u64;
            if size > max {
                return Err(ApiError::PayloadTooLarge(max as usize));
            }
            file.write_all(data).map_err(|e| ApiError::Unavailable(e.to_string()))?;
        }
    }
    drop(file);
    let added = import(&node, upload, name, q.get("id").cloned(), q.get("title").cloned()).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// A fresh directory under `{data_dir}/tmp` for one upload (removed when
/// dropped, so nothing half-received is left).
pub fn upload_dir(node: &AppState) -> Result<tempfile::TempDir, ApiError> {
    let tmp_dir = node.cfg.data_dir.join("tmp");
    std::fs::create_dir_all(&tmp_dir).map_err(|e| ApiError::Unavailable(format!("{}: {e}", tmp_dir.display())))?;
    tempfile::Builder::new().prefix("upload-").tempdir_in(&tmp_dir).map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// Checks the package `name` received in `upload` and adds it to the local
/// content pack (all or nothing), then reloads so it is served at once.
/// The same for the admin API and the coaches' upload page.
pub async fn import(
    node: &AppState,
    upload: tempfile::TempDir,
    name: String,
    id: Option<String>,
    title: Option<String>,
) -> Result<pack::Added, ApiError> {
    let path = upload.path().join(&name);
    let max = node.cfg.max_package_bytes;
    let local = node.cfg.local_content_path();
    let taken: Vec<String> = node
        .current()
        .ok()
        .and_then(|s| s.content_info.clone())
        .map(|c| c.courses.into_iter().chain(c.packages).collect())
        .unwrap_or_default();
    let added = tokio::task::spawn_blocking(move || -> Result<pack::Added, ApiError> {
        let limits = lms_package::Limits { max_package_bytes: max, ..Default::default() };
        let options = lms_package::Options { id: id.as_deref(), title: title.as_deref() };
        let p =
            lms_package::read(&path, &options, &limits).map_err(|e| ApiError::bad("invalid_package", e.to_string()))?;
        if taken.contains(&p.course.id) {
            return Err(ApiError::bad(
                "course_id_taken",
                format!(
                    "{name}: course id {:?} is the signed content's; give the package another id (?id=)",
                    p.course.id
                ),
            ));
        }
        let mut added = pack::add(&local, vec![Input::Package(p)]).map_err(|e| match e {
            pack::AddError::Package(e) => ApiError::bad("invalid_package", e.to_string()),
            other => ApiError::Unavailable(other.to_string()),
        })?;
        drop(upload);
        Ok(added.remove(0))
    })
    .await
    .map_err(|e| ApiError::Unavailable(format!("package import stopped: {e}")))??;
    tracing::info!(course = %added.course, units = added.aus.len(), "package added on the node (local content)");
    // The node's content listing (/readyz) takes it in at once.
    if let Err(e) = node.reload().await {
        tracing::warn!(error = %e, "reload after adding a package failed");
    }
    Ok(added)
}
