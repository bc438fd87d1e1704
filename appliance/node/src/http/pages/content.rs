//! The coaches' and admins' upload page (issue 13): a package added on the
//! node from the browser, through the same import as the admin API
//! (`content::upload::import`: checked whole against its standard, into
//! the local content pack that content updates never touch).

use super::super::error::ApiError;
use super::{Page, SignedIn, fail, show, with};
use crate::http::AppState;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use serde_json::json;
use std::io::Write;

/// GET /content/packages: the upload form.
pub async fn page(State(node): State<AppState>, s: SignedIn) -> Page {
    super::coach::coach_only(&s).map_err(fail)?;
    show(&node, &s, s.page("content_page")).await
}

/// POST /content/packages (multipart/form-data: `csrf` first, `title`?,
/// `package` the file): adds the package and shows what it became, or
/// the problem (400) with nothing added. The upload must arrive within
/// `request_timeout`; large videos go through the admin API or a content
/// bundle.
pub async fn upload(State(node): State<AppState>, s: SignedIn, req: Request) -> Page {
    super::coach::coach_only(&s).map_err(fail)?;
    let ctype = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let boundary = multer::parse_boundary(&ctype).map_err(|_| fail(ApiError::UnsupportedMediaType(ctype.clone())))?;
    let mut form = multer::Multipart::new(req.into_body().into_data_stream(), boundary);
    let bad = |e: multer::Error| fail(ApiError::bad("invalid_form", format!("the upload form: {e}")));
    let dir = crate::content::upload::upload_dir(&node).map_err(fail)?;
    let max = node.cfg.max_package_bytes;
    let (mut token, mut title, mut name) = (None, None, None);
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => token = Some(field.text().await.map_err(bad)?),
            Some("title") => {
                let t = field.text().await.map_err(bad)?;
                title = Some(t.trim().chars().take(200).collect::<String>()).filter(|t: &String| !t.is_empty());
            }
            Some("package") => {
                // The token comes first in the form: no file is taken without it.
                s.form_token("upload", token.as_deref()).map_err(fail)?;
                let file = field
                    .file_name()
                    .and_then(|f| f.rsplit(['/', '\\']).next())
                    .filter(|f| !f.is_empty() && f.len() <= 200 && !f.starts_with('.'))
                    .unwrap_or("package.zip")
                    .to_string();
                let path = dir.path().join(&file);
                let mut out = std::fs::File::create(&path).map_err(|e| fail(ApiError::Unavailable(e.to_string())))?;
                let mut size = 0u64;
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    size += chunk.len() as u64;
                    if size > max {
                        return Err(fail(ApiError::PayloadTooLarge(max as usize)));
                    }
                    out.write_all(&chunk).map_err(|e| fail(ApiError::Unavailable(e.to_string())))?;
                }
                name = Some(file).filter(|_| size > 0);
            }
            _ => {}
        }
    }
    s.form_token("upload", token.as_deref()).map_err(fail)?;
    let result = match name {
        None => Err("choose a package file".to_string()),
        Some(name) => crate::content::upload::import(&node, dir, name, None, title).await.map_err(|e| e.to_string()),
    };
    match result {
        Ok(added) => {
            let set = node.current().ok();
            let pkg = set.as_ref().and_then(|set| set.packages.get(&added.course));
            let title =
                pkg.map(|p| crate::content::text_in(&p.course.title, &s.language)).unwrap_or(added.course.clone());
            let units = pkg.map(|p| p.course.aus.len().max(p.course.units.len())).unwrap_or(added.aus.len());
            let body = json!({"course": added.course, "title": title, "units": units});
            let mut page = show(&node, &s, with(s.page("content_page"), "added", body)).await?;
            *page.status_mut() = StatusCode::CREATED;
            Ok(page)
        }
        Err(e) => {
            let mut page = show(&node, &s, with(s.page("content_page"), "error", json!(e))).await?;
            *page.status_mut() = StatusCode::BAD_REQUEST;
            Ok(page)
        }
    }
}
