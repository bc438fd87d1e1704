//! Attachments (xAPI 2.0 Part Two §2.4.11, Part Three §1.5.2; 1.0.3
//! §2.4.11 and Communication §1.5.2): the raw parts of a multipart/mixed
//! statement request, matched to the statements' attachment declarations by
//! the SHA-2 of their bytes, and signed statements' JWS (Part Two §2.6).
//! Reading the multipart body is HTTP's (`http::xapi::multipart`); what the
//! parts must be is here.

use super::validate::{Invalid, SIGNATURE_USAGE};
use axum::body::Bytes;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::Digest as _;

/// One attachment's bytes, checked against the hash it was sent under.
#[derive(Debug, Clone)]
pub struct Part {
    /// Lower-case hex, as declared in `sha2` and `X-Experience-API-Hash`.
    pub sha2: String,
    pub content_type: String,
    pub bytes: Bytes,
}

/// Adds `part` to `parts` unless a part with its SHA-2 is there already:
/// an attachment's bytes travel once per request or answer.
pub fn push_once(parts: &mut Vec<Part>, part: &Part) {
    if !parts.iter().any(|p| p.sha2 == part.sha2) {
        parts.push(part.clone());
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid { field: field.into(), message: message.into() }
}

/// The hex SHA-2 of `bytes` with the digest whose length `like` has
/// (SHA-224/256/384/512), or None for another length.
pub fn sha2_hex(like: &str, bytes: &[u8]) -> Option<String> {
    Some(match like.len() {
        56 => hex::encode(sha2::Sha224::digest(bytes)),
        64 => hex::encode(sha2::Sha256::digest(bytes)),
        96 => hex::encode(sha2::Sha384::digest(bytes)),
        128 => hex::encode(sha2::Sha512::digest(bytes)),
        _ => return None,
    })
}

/// A part as received: its `X-Experience-API-Hash` must be the SHA-2 of its
/// bytes. `field` names it in errors (e.g. `part 2`).
pub fn part(field: &str, hash: Option<&str>, content_type: &str, bytes: Bytes) -> Result<Part, Invalid> {
    let hash = hash.ok_or_else(|| invalid(field, "has no X-Experience-API-Hash header"))?.trim().to_ascii_lowercase();
    let actual = sha2_hex(&hash, &bytes).ok_or_else(|| {
        invalid(field, format!("X-Experience-API-Hash {hash:?} is not a SHA-224/256/384/512 hash in hex"))
    })?;
    if actual != hash {
        return Err(invalid(
            field,
            format!("X-Experience-API-Hash is {hash} but the part's {} bytes hash to {actual}", bytes.len()),
        ));
    }
    Ok(Part { sha2: hash, content_type: content_type.to_string(), bytes })
}

/// A `multipart/mixed` body (the JSON, then each part under its hash) and
/// its Content-Type: statement answers with `attachments=true`, and sync's
/// POSTs upstream (an LRS pushes attachments with their statements).
pub fn multipart(json: &str, parts: &[Part]) -> (String, Vec<u8>) {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).expect("the OS random source");
    let boundary = format!("xapi-{}", hex::encode(raw));
    let mut body: Vec<u8> = Vec::with_capacity(json.len() + parts.iter().map(|p| p.bytes.len() + 200).sum::<usize>());
    body.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/json\r\n\r\n").as_bytes());
    body.extend_from_slice(json.as_bytes());
    for p in parts {
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Type: {}\r\nContent-Transfer-Encoding: binary\r\nX-Experience-API-Hash: {}\r\n\r\n",
                p.content_type, p.sha2
            )
            .as_bytes(),
        );
        body.extend_from_slice(&p.bytes);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/mixed; boundary={boundary}"), body)
}

/// A statement's attachment declarations with their field paths: its own,
/// and those of a SubStatement object.
pub fn declared<'a>(statement: &'a Value, path: &str) -> Vec<(String, &'a Map<String, Value>)> {
    let mut out = Vec::new();
    let own = |s: &'a Value, p: String, out: &mut Vec<(String, &'a Map<String, Value>)>| {
        for (i, a) in s.get("attachments").and_then(Value::as_array).into_iter().flatten().enumerate() {
            if let Some(m) = a.as_object() {
                out.push((format!("{p}attachments[{i}]"), m));
            }
        }
    };
    let prefix = if path.is_empty() { String::new() } else { format!("{path}.") };
    own(statement, prefix.clone(), &mut out);
    if statement["object"].get("objectType").and_then(Value::as_str) == Some("SubStatement") {
        own(&statement["object"], format!("{prefix}object."), &mut out);
    }
    out
}

/// The sha2 of each declaration, lower case.
fn sha2_of(m: &Map<String, Value>) -> String {
    m.get("sha2").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase()
}

/// Matches a request's parts to its statements' declarations (Part Three
/// §1.5.2): a declaration without `fileUrl` needs a part with its hash; a
/// part no declaration names is refused; a signature part must verify
/// (`signature`). Returns, per statement, the parts it carries.
pub fn match_parts(statements: &[Value], paths: &[String], parts: &[Part]) -> Result<Vec<Vec<Part>>, Invalid> {
    let mut used = vec![false; parts.len()];
    let mut out = Vec::with_capacity(statements.len());
    for (s, path) in statements.iter().zip(paths) {
        let mut mine: Vec<Part> = Vec::new();
        for (field, decl) in declared(s, path) {
            let sha2 = sha2_of(decl);
            let found = parts.iter().position(|p| p.sha2 == sha2);
            match found {
                Some(i) => {
                    used[i] = true;
                    push_once(&mut mine, &parts[i]);
                }
                None if decl.contains_key("fileUrl") => {}
                None => {
                    return Err(invalid(
                        format!("{field}.sha2"),
                        format!("no part of the request has X-Experience-API-Hash {sha2}, and there is no fileUrl"),
                    ));
                }
            }
            if decl.get("usageType").and_then(Value::as_str) == Some(SIGNATURE_USAGE) {
                let jws = found.map(|i| &parts[i].bytes).ok_or_else(|| {
                    invalid(format!("{field}.sha2"), "a signature attachment must carry its JWS as a part")
                })?;
                signature(s, jws).map_err(|m| invalid(&field, m))?;
            }
        }
        out.push(mine);
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(invalid(
            format!("part {}", i + 2),
            format!("X-Experience-API-Hash {} matches no attachment of the statements", parts[i].sha2),
        ));
    }
    Ok(out)
}

/// A signed statement's JWS (Part Two §2.6): compact serialization, alg
/// RS256/RS384/RS512, a payload that is the statement as it was before the
/// signature was added (the LRS's own fields aside), and, when the header
/// carries an X.509 chain (`x5c`), a signature the first certificate's key
/// made. Who that certificate belongs to is not judged here: the standard
/// leaves trust to the reader.
pub fn signature(statement: &Value, jws: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(jws).map_err(|_| "the signature part is not JWS text".to_string())?.trim();
    let pieces: Vec<&str> = text.split('.').collect();
    let [header_b64, payload_b64, sig_b64] = pieces[..] else {
        return Err("the signature is not a JWS in compact serialization (three base64url parts)".into());
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let decode = |what: &str, s: &str| b64.decode(s).map_err(|e| format!("the JWS {what} is not base64url: {e}"));
    let header: Value = serde_json::from_slice(&decode("header", header_b64)?)
        .map_err(|e| format!("the JWS header is not JSON: {e}"))?;
    let alg = header["alg"].as_str().unwrap_or_default();
    let verify_alg = match alg {
        "RS256" => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        "RS384" => webpki::ring::RSA_PKCS1_2048_8192_SHA384,
        "RS512" => webpki::ring::RSA_PKCS1_2048_8192_SHA512,
        other => return Err(format!("the JWS alg is {other:?}: xAPI allows RS256, RS384 or RS512")),
    };
    let payload: Value = serde_json::from_slice(&decode("payload", payload_b64)?)
        .map_err(|e| format!("the JWS payload is not a JSON statement: {e}"))?;
    if !equivalent(statement, &payload) {
        return Err("the JWS payload is not the statement that carries it".into());
    }
    let sig = decode("signature", sig_b64)?;
    if let Some(chain) = header.get("x5c") {
        let first = chain
            .as_array()
            .and_then(|c| c.first())
            .and_then(Value::as_str)
            .ok_or_else(|| "the JWS header's x5c must be an array of base64 certificates".to_string())?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(first)
            .map_err(|e| format!("the JWS header's x5c[0] is not base64: {e}"))?;
        let der = rustls_pki_types::CertificateDer::from(der);
        let cert = webpki::EndEntityCert::try_from(&der)
            .map_err(|e| format!("the JWS header's x5c[0] is not an X.509 certificate: {e}"))?;
        let signed = format!("{header_b64}.{payload_b64}");
        cert.verify_signature(verify_alg, signed.as_bytes(), &sig)
            .map_err(|e| format!("the JWS signature does not verify with the x5c[0] certificate ({alg}): {e}"))?;
    }
    Ok(())
}

/// Statement equivalence for signatures: what the LRS may have set or
/// changed (id when the payload has none, authority, stored, version, a
/// timestamp it filled in) and the signature attachment itself do not count.
fn equivalent(received: &Value, payload: &Value) -> bool {
    let strip = |v: &Value, keep_id: bool, keep_timestamp: bool| -> Value {
        let mut m = v.as_object().cloned().unwrap_or_default();
        for k in ["authority", "stored", "version"] {
            m.remove(k);
        }
        if !keep_id {
            m.remove("id");
        }
        if !keep_timestamp {
            m.remove("timestamp");
        }
        if let Some(id) = m.get_mut("id").and_then(|i| i.as_str().map(str::to_ascii_lowercase)) {
            m.insert("id".into(), Value::String(id));
        }
        if let Some(Value::Array(list)) = m.get_mut("attachments") {
            list.retain(|a| a.get("usageType").and_then(Value::as_str) != Some(SIGNATURE_USAGE));
            if list.is_empty() {
                m.remove("attachments");
            }
        }
        Value::Object(m)
    };
    let (id, ts) = (payload.get("id").is_some(), payload.get("timestamp").is_some());
    strip(received, id, ts) == strip(payload, id, ts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_part_must_hash_to_its_header() {
        let bytes = Bytes::from_static(b"here is a simple attachment");
        let good = "495395e777cd98da653df9615d09c0fd6bb2f8d4788394cd53c56a3bfdcd848a";
        assert_eq!(part("part 2", Some(good), "text/plain", bytes.clone()).unwrap().sha2, good);
        let e = part("part 2", Some(&good.replace('4', "5")), "text/plain", bytes.clone()).unwrap_err();
        assert!(e.message.contains("hash to"), "{e}");
        assert_eq!(part("part 3", None, "text/plain", bytes.clone()).unwrap_err().field, "part 3");
        assert!(part("part 2", Some("abc"), "text/plain", bytes).is_err());
    }

    #[test]
    fn declarations_need_a_part_or_a_file_url_and_parts_need_a_declaration() {
        let sha = hex::encode(sha2::Sha256::digest(b"x"));
        let decl = json!({"usageType": "https://u", "display": {"en": "x"}, "contentType": "text/plain", "length": 1, "sha2": sha});
        let s = json!({"attachments": [decl], "object": {"id": "https://a"}});
        let p = part("part 2", Some(&sha), "text/plain", Bytes::from_static(b"x")).unwrap();
        let paths = vec![String::new()];
        assert_eq!(match_parts(std::slice::from_ref(&s), &paths, std::slice::from_ref(&p)).unwrap()[0].len(), 1);
        let e = match_parts(std::slice::from_ref(&s), &paths, &[]).unwrap_err();
        assert_eq!(e.field, "attachments[0].sha2");
        let mut with_url = s.clone();
        with_url["attachments"][0]["fileUrl"] = json!("https://files/x");
        assert!(match_parts(std::slice::from_ref(&with_url), &paths, &[]).unwrap()[0].is_empty());
        let stray = part("part 3", Some(&hex::encode(sha2::Sha256::digest(b"y"))), "text/plain", "y".into()).unwrap();
        let e = match_parts(&[s], &paths, &[p, stray]).unwrap_err();
        assert_eq!(e.field, "part 3");
    }

    #[test]
    fn malformed_signatures_are_named() {
        let s =
            json!({"actor": {"mbox": "mailto:a@x.org"}, "verb": {"id": "https://v"}, "object": {"id": "https://a"}});
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let jws = |h: Value, p: &Value| format!("{}.{}.c2ln", b64(&h), b64(p));
        assert!(signature(&s, jws(json!({"alg": "RS256"}), &s).as_bytes()).is_ok());
        assert!(signature(&s, b"not a jws").unwrap_err().contains("compact"));
        assert!(signature(&s, jws(json!({"alg": "HS256"}), &s).as_bytes()).unwrap_err().contains("RS256"));
        let mut other = s.clone();
        other["verb"]["id"] = json!("https://w");
        assert!(signature(&s, jws(json!({"alg": "RS384"}), &other).as_bytes()).unwrap_err().contains("payload"));
        // The LRS's own fields do not count.
        let mut stored = s.clone();
        stored["stored"] = json!("2026-01-01T00:00:00Z");
        stored["authority"] = json!({"mbox": "mailto:lrs@x.org"});
        stored["id"] = json!("fd41c918-b88b-4b20-a0a5-a4c32391aaa0");
        assert!(signature(&stored, jws(json!({"alg": "RS512"}), &s).as_bytes()).is_ok());
        let bad_cert = jws(json!({"alg": "RS256", "x5c": ["bm90IGEgY2VydA=="]}), &s);
        assert!(signature(&s, bad_cert.as_bytes()).unwrap_err().contains("x5c"));
    }
}
