//! The Result (xAPI 2.0 Part Two §2.4.5; 1.0.3 §2.4.5): score, success,
//! completion, response, duration, extensions.

use super::values::{extensions, is_duration};
use super::{R, boolean, err, join, keys, number, object, string};
use serde_json::Value;

pub(super) fn result(v: &Value, path: &str) -> R {
    let m = object(v, path)?;
    keys(m, path, &["score", "success", "completion", "response", "duration", "extensions"])?;
    if let Some(s) = m.get("score") {
        score(s, &join(path, "score"))?;
    }
    for k in ["success", "completion"] {
        if let Some(b) = m.get(k) {
            boolean(b, &join(path, k))?;
        }
    }
    if let Some(r) = m.get("response") {
        string(r, &join(path, "response"))?;
    }
    if let Some(d) = m.get("duration") {
        let p = join(path, "duration");
        if !is_duration(string(d, &p)?) {
            return err(&p, "is not an ISO 8601 duration");
        }
    }
    if let Some(e) = m.get("extensions") {
        extensions(e, &join(path, "extensions"))?;
    }
    Ok(())
}

fn score(v: &Value, p: &str) -> R {
    let sm = object(v, p)?;
    keys(sm, p, &["scaled", "raw", "min", "max"])?;
    let get = |k: &str| sm.get(k).map(|v| number(v, &join(p, k))).transpose();
    let (scaled, raw, min, max) = (get("scaled")?, get("raw")?, get("min")?, get("max")?);
    if let Some(s) = scaled
        && !(-1.0..=1.0).contains(&s)
    {
        return err(&join(p, "scaled"), "must be between -1 and 1");
    }
    if let (Some(lo), Some(hi)) = (min, max)
        && lo >= hi
    {
        return err(&join(p, "max"), "must be greater than min");
    }
    if let Some(r) = raw
        && (min.is_some_and(|lo| r < lo) || max.is_some_and(|hi| r > hi))
    {
        return err(&join(p, "raw"), "must lie between min and max");
    }
    Ok(())
}
