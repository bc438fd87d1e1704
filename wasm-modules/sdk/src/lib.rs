//! Guest-side glue for LMS modules: the exports every module needs
//! ([`export_module!`]), typed access to content-pack documents, logging and
//! response helpers.
//!
//! On wasm32 the content and log calls go to the host imports named in
//! `lms-abi`. On native targets (unit tests of module logic) they go to an
//! in-memory store that tests fill with [`testing::set_content`], so the same
//! module code runs in both places.

pub use lms_abi::{Context, Request, Response, SelfTest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

#[cfg(target_arch = "wasm32")]
mod host {
    #[link(wasm_import_module = "lms")]
    unsafe extern "C" {
        pub fn content_size(key_ptr: *const u8, key_len: i32) -> i32;
        pub fn content_read(key_ptr: *const u8, key_len: i32, dst: *mut u8) -> i32;
        pub fn log(level: i32, ptr: *const u8, len: i32);
    }
}

/// The raw bytes of a content document, or `None` when the key is absent.
pub fn content_raw(key: &str) -> Option<Vec<u8>> {
    #[cfg(target_arch = "wasm32")]
    {
        // SAFETY: the host reads `key` within its bounds and writes at most
        // `size` bytes (the size it just reported) into our buffer.
        unsafe {
            let size = host::content_size(key.as_ptr(), key.len() as i32);
            if size < 0 {
                return None;
            }
            let mut buf = vec![0u8; size as usize];
            let n = host::content_read(key.as_ptr(), key.len() as i32, buf.as_mut_ptr());
            if n != size {
                return None;
            }
            Some(buf)
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        testing::get(key)
    }
}

/// A content document parsed as `T`. `Ok(None)` when absent; `Err` names the
/// key when the document does not have the expected shape.
pub fn content<T: DeserializeOwned>(key: &str) -> Result<Option<T>, String> {
    match content_raw(key) {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("content document {key:?}: {e}")),
    }
}

/// Sends a line to the host's log.
pub fn log(level: i32, msg: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host reads `msg` within its bounds.
    unsafe {
        host::log(level, msg.as_ptr(), msg.len() as i32)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (level, msg);
    }
}

fn raw<T: Serialize>(body: &T) -> Box<RawValue> {
    let s = serde_json::to_string(body).unwrap_or_else(|_| "null".to_string());
    RawValue::from_string(s).expect("serde_json output is valid JSON")
}

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: u16, body: &T) -> Response {
    Response {
        status,
        body: raw(body),
        etag: None,
        cache_control: None,
        statements: Vec::new(),
        html: None,
        once: false,
        download: None,
        facts: None,
    }
}

/// A page: the host sends `text` as HTML (see `lms_abi::Response::html`).
pub fn html(status: u16, text: String) -> Response {
    Response {
        status,
        body: raw(&serde_json::Value::Null),
        etag: None,
        cache_control: None,
        statements: Vec::new(),
        html: Some(text),
        once: false,
        download: None,
        facts: None,
    }
}

/// A file to download (see `lms_abi::Response::download`).
pub fn download(content_type: &str, file_name: String, text: String) -> Response {
    Response {
        download: Some(Box::new(lms_abi::Download { content_type: content_type.to_string(), file_name, text })),
        ..json(200, &serde_json::Value::Null)
    }
}

/// A JSON error response: `{"error": code, "message": message}`.
pub fn error(status: u16, code: &str, message: impl Into<String>) -> Response {
    json(status, &serde_json::json!({"error": code, "message": message.into()}))
}

/// The `Cache-Control` value for a cacheable response under `ctx`.
pub fn cache_control(ctx: &Context) -> String {
    if ctx.cache_ttl == 0 { "no-store".to_string() } else { format!("public, max-age={}", ctx.cache_ttl) }
}

/// A strong ETag over bytes (FNV-1a 64, enough to tell content versions apart).
pub fn etag(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("\"{h:016x}\"")
}

pub use lms_abi::etag_matches;

/// The id of the `n`-th statement a request emits: the request's UUID with its
/// last four hex digits replaced by `n`. Still a well-formed v4 UUID, unique
/// per request and index (106 random bits remain).
pub fn statement_id(ctx: &Context, n: u16) -> String {
    let id = &ctx.request_id;
    if id.len() == 36 { format!("{}{n:04x}", &id[..32]) } else { id.clone() }
}

/// Entry points used by [`export_module!`]; not for direct use.
#[doc(hidden)]
pub mod rt {
    use super::*;

    pub fn alloc(len: i32) -> i32 {
        let mut buf = Vec::<u8>::with_capacity(len.max(0) as usize);
        let ptr = buf.as_mut_ptr();
        // A fresh instance serves one call; the host discards it afterwards,
        // so nothing is ever freed.
        std::mem::forget(buf);
        ptr as usize as i32
    }

    fn leak(bytes: Vec<u8>) -> i64 {
        let bytes = bytes.into_boxed_slice();
        let len = bytes.len() as u32;
        let ptr = Box::leak(bytes).as_ptr() as usize as u32;
        lms_abi::pack(ptr, len)
    }

    /// # Safety
    /// `ptr..ptr+len` must be memory the host filled after `alloc(len)`.
    pub unsafe fn handle(ptr: i32, len: i32, f: fn(&Request) -> Response) -> i64 {
        // SAFETY: guaranteed by the caller (the host wrote exactly `len` bytes there).
        let input = unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len as usize) };
        let resp = match serde_json::from_slice::<Request>(input) {
            Ok(req) => f(&req),
            Err(e) => error(400, "bad_module_request", format!("request JSON: {e}")),
        };
        leak(serde_json::to_vec(&resp).unwrap_or_default())
    }

    pub fn self_test(f: fn() -> SelfTest) -> i64 {
        leak(serde_json::to_vec(&f()).unwrap_or_default())
    }
}

/// Defines the ABI exports of a module from its handler and self-test.
#[macro_export]
macro_rules! export_module {
    (handle: $handle:path, self_test: $self_test:path $(,)?) => {
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn lms_abi_version() -> i32 {
            $crate::rt_abi_version()
        }
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn lms_alloc(len: i32) -> i32 {
            $crate::rt::alloc(len)
        }
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn lms_handle(ptr: i32, len: i32) -> i64 {
            // SAFETY: the host calls this with a buffer from lms_alloc that it filled.
            unsafe { $crate::rt::handle(ptr, len, $handle) }
        }
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn lms_self_test() -> i64 {
            $crate::rt::self_test($self_test)
        }
    };
}

#[doc(hidden)]
pub fn rt_abi_version() -> i32 {
    lms_abi::ABI_VERSION
}

/// In-memory content for native unit tests of module logic.
#[cfg(not(target_arch = "wasm32"))]
pub mod testing {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    thread_local! {
        static DOCS: RefCell<BTreeMap<String, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
    }

    /// Replaces this thread's content with `docs` (key -> JSON document).
    pub fn set_content(docs: &BTreeMap<String, serde_json::Value>) {
        DOCS.with(|d| {
            *d.borrow_mut() = docs.iter().map(|(k, v)| (k.clone(), serde_json::to_vec(v).expect("json"))).collect()
        });
    }

    pub(crate) fn get(key: &str) -> Option<Vec<u8>> {
        DOCS.with(|d| d.borrow().get(key).cloned())
    }

    /// A request for `op` with a fixed context (no actor, no language).
    pub fn request(op: &str) -> lms_abi::Request {
        lms_abi::Request {
            op: op.to_string(),
            params: Default::default(),
            query: Default::default(),
            body: None,
            if_none_match: None,
            statements: Vec::new(),
            facts: None,
            ctx: lms_abi::Context {
                cache_ttl: 0,
                actor: None,
                now: "2026-01-01T00:00:00.000000Z".into(),
                request_id: "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b".into(),
                language: None,
                csrf: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_match_rules() {
        let t = etag(b"hello");
        assert!(etag_matches(Some(&t), &t));
        assert!(etag_matches(Some(&format!("\"x\", W/{t}")), &t));
        assert!(etag_matches(Some("*"), &t));
        assert!(!etag_matches(Some("\"other\""), &t));
        assert!(!etag_matches(None, &t));
        assert_ne!(etag(b"a"), etag(b"b"));
    }

    #[test]
    fn statement_ids_differ_per_index_and_keep_uuid_shape() {
        let ctx = Context {
            cache_ttl: 0,
            actor: None,
            now: String::new(),
            request_id: "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b".into(),
            language: None,
            csrf: None,
        };
        assert_eq!(statement_id(&ctx, 0), "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a70000");
        assert_eq!(statement_id(&ctx, 258), "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a70102");
    }
}
