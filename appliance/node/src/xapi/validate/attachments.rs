//! Attachment metadata (xAPI 2.0 Part Two §2.4.11; 1.0.3 §2.4.11). Whether
//! the bytes arrived and match `sha2`, and a signature's JWS, are checked
//! where the multipart body is read (`xapi::attachments`).

use super::values::{iri, language_map};
use super::{R, err, join, keys, object, string};
use serde_json::Value;

/// The usageType of a signed statement's JWS (Part Two §2.6 "Signed Statements").
pub const SIGNATURE_USAGE: &str = "http://adlnet.gov/expapi/attachments/signature";

/// Hex digits of SHA-224, SHA-256, SHA-384 or SHA-512.
pub fn is_sha2(s: &str) -> bool {
    matches!(s.len(), 56 | 64 | 96 | 128) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An Internet Media Type: `type/subtype`, parameters allowed.
fn is_media_type(s: &str) -> bool {
    let essence = s.split(';').next().unwrap_or_default().trim();
    essence.split_once('/').is_some_and(|(t, sub)| {
        let token =
            |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
        token(t) && token(sub)
    })
}

pub(super) fn attachments(v: &Value, path: &str) -> R {
    let arr = v.as_array().map_or_else(|| err(path, "must be an array"), Ok)?;
    for (i, a) in arr.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let m = object(a, &p)?;
        keys(m, &p, &["usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"])?;
        for req in ["usageType", "display", "contentType", "length", "sha2"] {
            if !m.contains_key(req) {
                return err(&join(&p, req), "is required");
            }
        }
        iri(&m["usageType"], &join(&p, "usageType"))?;
        language_map(&m["display"], &join(&p, "display"))?;
        if let Some(d) = m.get("description") {
            language_map(d, &join(&p, "description"))?;
        }
        let content_type = string(&m["contentType"], &join(&p, "contentType"))?;
        if !is_media_type(content_type) {
            return err(&join(&p, "contentType"), format!("{content_type:?} is not an Internet Media Type"));
        }
        if !m["length"].is_u64() {
            return err(&join(&p, "length"), "must be a non-negative integer");
        }
        let sha2 = string(&m["sha2"], &join(&p, "sha2"))?;
        if !is_sha2(sha2) {
            return err(&join(&p, "sha2"), format!("{sha2:?} is not a SHA-2 hash in hex"));
        }
        if let Some(u) = m.get("fileUrl") {
            iri(u, &join(&p, "fileUrl"))?;
        }
        if m["usageType"] == SIGNATURE_USAGE && content_type != "application/octet-stream" {
            return err(
                &join(&p, "contentType"),
                "a signature attachment's contentType must be application/octet-stream",
            );
        }
    }
    Ok(())
}
