//! The Verb (xAPI 2.0 Part Two §2.4.3; 1.0.3 §2.4.3): an IRI and a display map.

use super::values::{iri, language_map};
use super::{Invalid, R, join, keys, object};
use serde_json::Value;

pub(super) fn verb(v: &Value, path: &str) -> R {
    let m = object(v, path)?;
    keys(m, path, &["id", "display"])?;
    iri(
        m.get("id").ok_or_else(|| Invalid { field: join(path, "id"), message: "is required".into() })?,
        &join(path, "id"),
    )?;
    if let Some(d) = m.get("display") {
        language_map(d, &join(path, "display"))?;
    }
    Ok(())
}
