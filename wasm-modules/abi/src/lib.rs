//! The host ABI between `lms-node` (the host) and the LMS guest modules.
//!
//! Both sides depend on this crate, so the names below are the single source of
//! truth for the wire contract. A guest is a core wasm module (wasm32-wasip1)
//! that exports:
//!
//! * `lms_abi_version() -> i32`: must equal [`ABI_VERSION`]; the host refuses others.
//! * `lms_alloc(len: i32) -> i32`: a guest buffer of `len` bytes for the host to fill.
//! * `lms_handle(ptr: i32, len: i32) -> i64`: takes a JSON [`Request`], returns a
//!   JSON [`Response`] packed as `(ptr << 32) | len` (see [`pack`]).
//! * `lms_self_test() -> i64`: returns a JSON [`SelfTest`], packed the same way.
//!
//! and may import from module `"lms"`:
//!
//! * `content_size(key_ptr, key_len) -> i32`: byte length of a content-pack
//!   document, or -1 when there is no such key.
//! * `content_read(key_ptr, key_len, dst_ptr) -> i32`: copies the document to
//!   `dst_ptr`; returns its length or -1.
//! * `log(level, ptr, len)`: a UTF-8 line for the host's log.
//!
//! The host runs every request in a fresh instance, so a guest never frees what
//! it allocates and keeps no state between requests. Effects (statements to
//! record) travel back in the response; the host applies them.
//!
//! What this crate must never do: grow dependencies beyond serde, because every
//! guest carries it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Bumped on any incompatible change to the exports, imports or JSON shapes.
pub const ABI_VERSION: i32 = 1;

pub const IMPORT_MODULE: &str = "lms";
pub const IMPORT_CONTENT_SIZE: &str = "content_size";
pub const IMPORT_CONTENT_READ: &str = "content_read";
pub const IMPORT_LOG: &str = "log";

pub const EXPORT_ABI_VERSION: &str = "lms_abi_version";
pub const EXPORT_ALLOC: &str = "lms_alloc";
pub const EXPORT_HANDLE: &str = "lms_handle";
pub const EXPORT_SELF_TEST: &str = "lms_self_test";

/// Log levels for the `log` import.
pub const LOG_ERROR: i32 = 1;
pub const LOG_WARN: i32 = 2;
pub const LOG_INFO: i32 = 3;
pub const LOG_DEBUG: i32 = 4;

/// Packs a guest (pointer, length) pair into the i64 that `lms_handle` returns.
pub fn pack(ptr: u32, len: u32) -> i64 {
    (((ptr as u64) << 32) | len as u64) as i64
}

/// The inverse of [`pack`].
pub fn unpack(v: i64) -> (u32, u32) {
    let v = v as u64;
    ((v >> 32) as u32, v as u32)
}

/// One call into a module.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// What to do, e.g. `get_lesson`. Each module documents its ops.
    pub op: String,
    /// Path parameters by name (`course`, `lesson`, `quiz`, `learner`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Query-string parameters.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// The request body, already parsed as JSON by the host.
    #[serde(default)]
    pub body: Option<Value>,
    /// The client's `If-None-Match` header, if any.
    #[serde(default)]
    pub if_none_match: Option<String>,
    /// Stored xAPI statements the op needs (progress); the host selects them
    /// and cuts each to id, verb id, object (id, objectType, definition
    /// type), result (completion, success, duration, score), context
    /// (registration, contextActivities ids), timestamp and stored, within a
    /// byte budget (lms-node `progress_statement_bytes`).
    #[serde(default)]
    pub statements: Vec<Value>,
    /// What this module answered as `facts` the last time it was asked
    /// about the same learner, when the host still has it: then
    /// `statements` holds only the learner's statements stored since, to be
    /// folded in. `None`: start from nothing (`statements` is the whole
    /// history). Added in ABI 1 without a version change (progress facts,
    /// issue 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<Box<RawValue>>,
    pub ctx: Context,
}

/// What the host tells every call about its surroundings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Context {
    /// Seconds a client may cache cacheable responses; 0 means do not cache.
    pub cache_ttl: u64,
    /// The xAPI actor of the learner the request is about, when there is one.
    #[serde(default)]
    pub actor: Option<Value>,
    /// The current time, RFC 3339, from the host clock.
    pub now: String,
    /// A fresh UUID (v4) for this request. Modules derive the ids of the
    /// statements they emit from it (see `lms_sdk::statement_id`), since a
    /// module instance has no randomness of its own.
    pub request_id: String,
    /// The language pages are rendered in (`zh-CN` or `en`), chosen by the
    /// host: the person's choice, else Accept-Language, else the node's
    /// `default_language`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The CSRF token the page's forms must carry (the host checks it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
}

/// A module's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub status: u16,
    /// The JSON body, passed through by the host unparsed.
    pub body: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// xAPI statements the host must store durably before it answers.
    /// Ids and timestamps the module leaves out are filled in by the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<Value>,
    /// A page instead of JSON: the host sends this text as
    /// `text/html; charset=utf-8` (with its own security headers) and
    /// ignores `body`. Added in ABI 1 without a version change: older
    /// modules never set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Store each of `statements` only when the actor has no statement with
    /// the same verb and object yet (a lesson is completed once, however
    /// often it is read). Added in ABI 1 without a version change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub once: bool,
    /// A file to download instead of JSON or a page (the coach's CSV
    /// export): the host sends `text` with `content_type` (one of
    /// [`DOWNLOAD_TYPES`]) as an attachment named `file_name`, and ignores
    /// `body`. Added in ABI 1 without a version change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<Box<Download>>,
    /// A running summary of the learner's statements (see
    /// [`Request::facts`]) for the host to keep per learner and module set
    /// and hand back next time with only the newer statements. A module
    /// that returns facts promises that its answer depends only on the
    /// request's params, query, facts and statements (not on the clock or
    /// the request id), so the host may answer the same request again
    /// without calling it while the learner has no new statements. A new
    /// module set starts with no facts: changed rules apply to all history.
    /// Added in ABI 1 without a version change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<Box<RawValue>>,
}

/// Whether an `If-None-Match` value names `etag` (or `*`); weak
/// validators compare by their tag, as GET allows.
pub fn etag_matches(if_none_match: Option<&str>, etag: &str) -> bool {
    match if_none_match {
        None => false,
        Some(v) => v.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == etag),
    }
}

/// See [`Response::download`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Download {
    pub content_type: String,
    /// 1-100 characters of `A-Z a-z 0-9 . _ -`.
    pub file_name: String,
    pub text: String,
}

/// The content types a module may send as a [`Download`].
pub const DOWNLOAD_TYPES: [&str; 1] = ["text/csv; charset=utf-8"];

impl Download {
    /// Why the host must not send this download, if it must not.
    pub fn check(&self) -> Result<(), String> {
        if !DOWNLOAD_TYPES.contains(&self.content_type.as_str()) {
            return Err(format!("download content_type {:?} is not one of {DOWNLOAD_TYPES:?}", self.content_type));
        }
        let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if !(1..=100).contains(&self.file_name.len())
            || !self.file_name.bytes().all(ok)
            || self.file_name.starts_with('.')
        {
            return Err(format!(
                "download file_name {:?} is not 1-100 characters of A-Z a-z 0-9 . _ -",
                self.file_name
            ));
        }
        Ok(())
    }
}

/// The result of `lms_self_test`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SelfTest {
    pub ok: bool,
    /// Checks that ran, by name.
    #[serde(default)]
    pub checks: Vec<String>,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The file at the root of a module directory (what `cargo xtask modules`
/// writes and what a signed bundle unpacks to).
pub const MANIFEST_FILE: &str = "manifest.json";
/// Version of the module-directory manifest format this build writes: 2,
/// code and templates only (course content comes in content bundles).
/// Format 1 directories carried the courses as `content` too; nodes still
/// load them (see [`ModuleManifest::check_format`]).
pub const MANIFEST_FORMAT: u32 = 2;

/// `manifest.json` of a module directory: what the node loads and checks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModuleManifest {
    pub format: u32,
    /// The bundle's semantic version; `/readyz` reports it.
    pub bundle_version: String,
    /// The host ABI every module in the directory was built against.
    pub abi: i32,
    pub modules: Vec<ModuleEntry>,
    /// Format 1 only: the courses flattened (`content.json`), served when
    /// the node has no content pack. Format 2 has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<FileEntry>,
    /// Static files the pages use (CSS, icons), served by the host at
    /// `/static/{file}` with immutable caching: each `file` carries the
    /// first 16 hex digits of its sha256 (`app.0123456789abcdef.css`), so a
    /// changed file is a new URL. Added in format 1; older directories have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assets: Vec<FileEntry>,
}

impl ModuleManifest {
    /// The formats a node reads: 1 must carry `content`, 2 must not (a
    /// module bundle that still ships courses would be served beside the
    /// content bundle's and drift from it).
    pub fn check_format(&self) -> Result<(), String> {
        match (self.format, &self.content) {
            (1, Some(_)) | (MANIFEST_FORMAT, None) => Ok(()),
            (1, None) => Err("format 1 lists no content".into()),
            (MANIFEST_FORMAT, Some(c)) => Err(format!(
                "format {MANIFEST_FORMAT} carries code and templates only, yet lists content {:?}: courses come in content bundles",
                c.file
            )),
            (f, _) => Err(format!("format {f} is not one this node reads (1, {MANIFEST_FORMAT})")),
        }
    }
}

/// Hex digits of an asset's sha256 its file name carries.
pub const ASSET_HASH_LEN: usize = 16;

/// The content-hashed file name of an asset: `app.css` with sha256 hex
/// `h` is `app.{h[..16]}.css`.
pub fn asset_file_name(name: &str, sha256_hex: &str) -> String {
    let h = &sha256_hex[..ASSET_HASH_LEN.min(sha256_hex.len())];
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{h}.{ext}"),
        None => format!("{name}.{h}"),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModuleEntry {
    /// `catalog`, `progress` or `quiz`.
    pub name: String,
    pub version: String,
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_two_carries_no_content_and_format_one_must() {
        let entry = FileEntry { file: "content.json".into(), size: 2, sha256: "00".into() };
        let m = |format, content: Option<FileEntry>| ModuleManifest {
            format,
            bundle_version: "1.0.0".into(),
            abi: ABI_VERSION,
            modules: vec![],
            content,
            assets: vec![],
        };
        assert!(m(2, None).check_format().is_ok());
        assert!(m(1, Some(entry.clone())).check_format().is_ok());
        assert!(m(2, Some(entry.clone())).check_format().unwrap_err().contains("content bundles"));
        assert!(m(1, None).check_format().unwrap_err().contains("no content"));
        assert!(m(3, None).check_format().unwrap_err().contains("format 3"));
        // Format 2 written without the field; format 1 read with it.
        assert!(!serde_json::to_string(&m(2, None)).unwrap().contains("content"));
    }

    #[test]
    fn downloads_name_a_known_type_and_a_plain_file_name() {
        let d = |t: &str, n: &str| Download { content_type: t.into(), file_name: n.into(), text: String::new() };
        assert!(d("text/csv; charset=utf-8", "class-3A-2026-12-03.csv").check().is_ok());
        assert!(d("text/html", "x.html").check().unwrap_err().contains("content_type"));
        for bad in ["", ".hidden", "a\"b.csv", "a\r\nSet-Cookie: x", "../x.csv", "名单.csv"] {
            assert!(d("text/csv; charset=utf-8", bad).check().unwrap_err().contains("file_name"), "{bad:?}");
        }
    }

    #[test]
    fn pack_roundtrip() {
        for (p, l) in [(0, 0), (1, 2), (u32::MAX, u32::MAX), (65536, 17)] {
            assert_eq!(unpack(pack(p, l)), (p, l));
        }
    }
}
