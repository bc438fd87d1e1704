//! Package files, served to browsers from the content listener
//! (`content_listen`, default port 8081): a separate origin from the node's
//! pages, so a package's scripts never run where the learner's session and
//! the node's pages live. No wasm on this path: the host reads the file.
//!
//! `GET|HEAD /p/{course}/{tag}/{*path}`: `tag` is the first 16 hex digits
//! of the package's sha256, so a URL always names the same bytes and is
//! cached `immutable`; a new version of the package has a new tag (the old
//! tag answers 404). ETag is the file's sha256 (If-None-Match: 304).
//! Files are kept in memory by sha256 ([`KeptFiles`]: small ones whole,
//! larger ones in chunks that single ranges are cut from); everything else (HEAD,
//! several ranges, If-Range, unsatisfiable ranges, large files whole) is
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

/// A native course's media: the files its lessons show (its pack's
/// `courses/<id>/`), served from the public origin at
/// `/media/{course}/{tag}/{*path}` ([`media`]; `tag`: the file's sha256,
/// first 16 hex digits) with a CSP that lets nothing in them run.
#[derive(Debug)]
pub struct MediaFiles {
    pub root: PathBuf,
    /// Path in the media directory -> sha256.
    pub files: HashMap<String, String>,
}

/// Native courses' media, by course id.
pub type MediaIndex = HashMap<String, Arc<MediaFiles>>;

/// The URL (on the node's own origin) a lesson shows a media file at.
pub fn media_url(course: &str, path: &str, sha256: &str) -> String {
    format!("/media/{course}/{}/{path}", &sha256[..16.min(sha256.len())])
}

/// A native course's media, indexed from its checked pack at `dir`.
pub fn index_media(dir: &std::path::Path, pack: &lms_package::pack::Checked) -> MediaIndex {
    pack.media
        .iter()
        .map(|(course, list)| {
            let files = list.iter().map(|f| (f.path.clone(), f.sha256.clone())).collect();
            let root = dir.join(lms_package::pack::COURSES_DIR).join(course);
            (course.clone(), Arc::new(MediaFiles { root, files }))
        })
        .collect()
}

/// Media are images, video and audio shown inside the node's pages;
/// opened on their own (an SVG is a document) nothing in them runs.
const MEDIA_POLICY: &str = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'";

/// GET|HEAD /media/{course}/{tag}/{*path} on the public listener.
pub async fn media(
    State(node): State<AppState>,
    Path((course, tag, path)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let Ok(set) = node.current() else { return StatusCode::SERVICE_UNAVAILABLE.into_response() };
    let Some(m) = set.media.get(&course).cloned() else { return StatusCode::NOT_FOUND.into_response() };
    let (Some(sha), Some((mime, _))) = (m.files.get(&path), lms_content::media_type(&path)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if tag.len() != 16 || !sha.starts_with(&tag) {
        return StatusCode::NOT_FOUND.into_response();
    }
    serve_listed(&node, req, sha, m.root.join(&path), mime, MEDIA_POLICY).await
}

/// Package files kept in memory, by sha256: they never change under their
/// hash, so a kept copy is never stale and survives reloads. Small files
/// are kept whole; larger ones in 1 MiB chunks, so the ranges a video
/// player asks for come from memory once the video has been watched (the
/// way a CDN slices). Bounded by bytes; what falls out is read again.
pub struct KeptFiles {
    cache: quick_cache::sync::Cache<String, axum::body::Bytes, ByteWeight>,
    lens: quick_cache::sync::Cache<String, u64>,
}

#[derive(Clone)]
struct ByteWeight;

impl quick_cache::Weighter<String, axum::body::Bytes> for ByteWeight {
    fn weight(&self, key: &String, v: &axum::body::Bytes) -> u64 {
        (key.len() + v.len() + 64) as u64
    }
}

/// Bytes of files kept, the largest file kept whole, and the chunk size of
/// larger ones.
const KEPT_BYTES: u64 = 64 << 20;
const KEPT_FILE_MAX: u64 = 1 << 20;
const CHUNK: u64 = 1 << 20;

impl Default for KeptFiles {
    fn default() -> Self {
        KeptFiles {
            cache: quick_cache::sync::Cache::with_weighter(4096, KEPT_BYTES, ByteWeight),
            lens: quick_cache::sync::Cache::new(4096),
        }
    }
}

impl KeptFiles {
    /// The bytes of the file at `path` whose sha256 is `sha`, when it is
    /// small enough to keep whole (`None`: serve it another way).
    pub async fn get(&self, sha: &str, path: &std::path::Path) -> Option<axum::body::Bytes> {
        if let Some(b) = self.cache.get(sha) {
            return Some(b);
        }
        if self.len(sha, path).await? > KEPT_FILE_MAX {
            return None;
        }
        let path = path.to_path_buf();
        let bytes = axum::body::Bytes::from(tokio::task::spawn_blocking(move || std::fs::read(path).ok()).await.ok()??);
        self.cache.insert(sha.to_string(), bytes.clone());
        Some(bytes)
    }

    /// The file's length.
    pub async fn len(&self, sha: &str, path: &std::path::Path) -> Option<u64> {
        if let Some(n) = self.lens.get(sha) {
            return Some(n);
        }
        let path = path.to_path_buf();
        let n = tokio::task::spawn_blocking(move || std::fs::metadata(path).ok().map(|m| m.len())).await.ok()??;
        self.lens.insert(sha.to_string(), n);
        Some(n)
    }

    /// Bytes `start..=end` of the file (`end` < its length), from its
    /// kept chunks, reading the missing ones.
    pub async fn range(&self, sha: &str, path: &std::path::Path, start: u64, end: u64) -> Option<axum::body::Bytes> {
        let len = self.len(sha, path).await?;
        let (first, last) = (start / CHUNK, end / CHUNK);
        let mut parts = Vec::new();
        for i in first..=last {
            let key = format!("{sha}#{i}");
            let chunk = match self.cache.get(&key) {
                Some(c) => c,
                None => {
                    let (path, at) = (path.to_path_buf(), i * CHUNK);
                    let size = CHUNK.min(len.checked_sub(at)?);
                    let read = tokio::task::spawn_blocking(move || {
                        use std::os::unix::fs::FileExt;
                        let mut buf = vec![0; size as usize];
                        std::fs::File::open(path).ok()?.read_exact_at(&mut buf, at).ok()?;
                        Some(buf)
                    });
                    let c = axum::body::Bytes::from(read.await.ok()??);
                    self.cache.insert(key, c.clone());
                    c
                }
            };
            let from = if i == first { (start - i * CHUNK) as usize } else { 0 };
            let to = if i == last { (end - i * CHUNK) as usize + 1 } else { chunk.len() };
            parts.push(chunk.slice(from..to.min(chunk.len())));
        }
        if parts.len() == 1 {
            return parts.pop();
        }
        Some(axum::body::Bytes::from(parts.concat()))
    }
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

fn mime_of(path: &str) -> &'static str {
    mime_guess::from_path(path).first_raw().unwrap_or("application/octet-stream")
}

/// The Range header of a plain GET (no If-Range), for [`one_range`].
fn single_range(req: &Request) -> Option<String> {
    if req.method() != axum::http::Method::GET || req.headers().contains_key(header::IF_RANGE) {
        return None;
    }
    req.headers().get(header::RANGE)?.to_str().ok().map(str::to_string)
}

/// Longest single range answered from the kept chunks.
const RANGE_MAX: u64 = 8 << 20;

/// A GET of one satisfiable range (a video seeking), from the kept chunks
/// of the file: 206 with Content-Range. `None` for anything else
/// (several ranges, one that cannot be satisfied, If-Range, a longer span),
/// which ServeFile answers as RFC 9110 says.
async fn one_range(
    node: &AppState,
    range: Option<String>,
    sha: &str,
    path: PathBuf,
    mime: &'static str,
) -> Option<Response> {
    let parsed = http_range_header::parse_range_header(&range?).ok()?;
    let len = node.package_files.len(sha, &path).await?;
    let ranges = parsed.validate(len).ok()?;
    let [r] = ranges.as_slice() else { return None };
    let (start, end) = (*r.start(), *r.end());
    if end - start + 1 > RANGE_MAX {
        return None;
    }
    let bytes = node.package_files.range(sha, &path, start, end).await?;
    let mut resp = (StatusCode::PARTIAL_CONTENT, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")).ok()?);
    Some(resp)
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
    serve_listed(&node, req, sha, pkg.root.join(&path), mime_of(&path), policy(pkg.kind)).await
}

/// Answers a GET or HEAD of the listed file at `path` whose sha256 is
/// `sha`: ETag (If-None-Match: 304), kept bytes or ranges, else
/// ServeFile; cached `immutable` (its URL names its bytes), with `csp`.
async fn serve_listed(
    node: &AppState,
    req: Request,
    sha: &str,
    path: PathBuf,
    mime: &'static str,
    csp: &'static str,
) -> Response {
    let etag = format!("\"{sha}\"");
    let whole = req.method() == axum::http::Method::GET && !req.headers().contains_key(header::RANGE);
    let mut resp = if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else if let Some(bytes) = if whole { node.package_files.get(sha, &path).await } else { None } {
        ([(header::CONTENT_TYPE, HeaderValue::from_static(mime))], bytes).into_response()
    } else if let Some(r) = one_range(node, single_range(&req), sha, path.clone(), mime).await {
        r
    } else {
        match tower_http::services::ServeFile::new(path).oneshot(req).await {
            Ok(r) => r.map(axum::body::Body::new),
            Err(e) => match e {},
        }
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

#[cfg(test)]
mod kept_tests {
    use super::*;

    #[tokio::test]
    async fn ranges_across_chunks_are_the_files_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("video.mp4");
        let bytes: Vec<u8> = (0..(2 * CHUNK + 12_345)).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let kept = KeptFiles::default();
        let n = bytes.len() as u64;
        assert_eq!(kept.len("s", &path).await, Some(n));
        assert!(kept.get("s", &path).await.is_none(), "over the whole-file limit");
        for (a, b) in [(0, 99), (CHUNK - 10, CHUNK + 9), (CHUNK - 1, 2 * CHUNK), (2 * CHUNK + 1, n - 1), (0, n - 1)] {
            let got = kept.range("s", &path, a, b).await.unwrap();
            assert_eq!(&got[..], &bytes[a as usize..=b as usize], "{a}-{b}");
        }
        // Kept: the file may go away and the chunks still answer.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&kept.range("s", &path, 5, 10).await.unwrap()[..], &bytes[5..=10]);
    }
}
