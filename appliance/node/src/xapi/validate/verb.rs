//! The Verb (xAPI 2.0 Part Two §2.4.3; 1.0.3 §2.4.3): an IRI and a display map.

use super::values::{iri, language_map};
use super::{R, join, keys, object, required};
use serde_json::Value;

pub(super) fn verb(v: &Value, path: &str) -> R {
    let m = object(v, path)?;
    keys(m, path, &["id", "display"])?;
    iri(required(m, path, "id")?, &join(path, "id"))?;
    if let Some(d) = m.get("display") {
        language_map(d, &join(path, "display"))?;
    }
    Ok(())
}
