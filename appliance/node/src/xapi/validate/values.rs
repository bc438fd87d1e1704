//! The standard's value types (xAPI 2.0 Part Two §4.5 "Data Types"; 1.0.3
//! §4.1.x): IRIs, UUIDs, language tags and maps, timestamps, durations,
//! extensions.

use super::{R, Spec, err, join, object, string};
use serde_json::Value;

/// An absolute IRI: a scheme, a colon, no spaces.
pub fn is_iri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    let mut cs = scheme.chars();
    cs.next().is_some_and(|c| c.is_ascii_alphabetic())
        && cs.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !s.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`')
        })
}

pub(super) fn iri(v: &Value, path: &str) -> R {
    let s = string(v, path)?;
    if is_iri(s) { Ok(()) } else { err(path, format!("{s:?} is not an absolute IRI")) }
}

pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

pub(super) fn uuid(v: &Value, path: &str) -> R {
    let s = string(v, path)?;
    if is_uuid(s) { Ok(()) } else { err(path, format!("{s:?} is not a UUID")) }
}

/// RFC 5646 shape: a 2-8 letter primary subtag, then 1-8 alphanumeric subtags.
pub fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or_default();
    (2..=8).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

pub(super) fn language_map(v: &Value, path: &str) -> R {
    for (k, val) in object(v, path)? {
        let p = join(path, k);
        if !is_language_tag(k) {
            return err(&p, format!("{k:?} is not a language tag"));
        }
        string(val, &p)?;
    }
    Ok(())
}

/// An ISO 8601 timestamp with a time zone (RFC 3339 profile), as xAPI 2.0
/// requires of every timestamp.
pub fn parse_timestamp(s: &str) -> Option<time::OffsetDateTime> {
    if s.ends_with("-00:00") {
        return None; // xAPI forbids the "unknown offset" form
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// A timestamp under `spec`'s rules: 2.0 requires the time zone; 1.0.3 only
/// recommends it, so there a timestamp without one is read as UTC.
pub fn parse_timestamp_in(s: &str, spec: Spec) -> Option<time::OffsetDateTime> {
    parse_timestamp(s).or_else(|| {
        let f = time::macros::format_description!(
            version = 2,
            "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
        );
        (spec == Spec::V1).then(|| time::PrimitiveDateTime::parse(s, &f).ok().map(|t| t.assume_utc())).flatten()
    })
}

pub(super) fn timestamp(v: &Value, path: &str, spec: Spec) -> R {
    let s = string(v, path)?;
    if parse_timestamp_in(s, spec).is_some() {
        Ok(())
    } else if spec == Spec::V2 && parse_timestamp_in(s, Spec::V1).is_some() {
        err(path, format!("{s:?} has no time zone, which xAPI 2.0 requires (1.0.3 allowed it)"))
    } else {
        err(path, format!("{s:?} is not an ISO 8601 timestamp with a time zone"))
    }
}

/// ISO 8601 duration: `P[nY][nM][nW][nD][T[nH][nM][n[.n]S]]`, at least one part.
pub fn is_duration(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('P') else { return false };
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    fn parts(s: &str, units: &str, allow_fraction_on: char) -> Option<usize> {
        let mut n = 0;
        let mut num = String::new();
        let mut last = 0usize;
        for c in s.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let pos = units.find(c)?;
                if num.is_empty()
                    || pos < last
                    || (num.contains('.') && c != allow_fraction_on)
                    || num.parse::<f64>().is_err()
                {
                    return None;
                }
                last = pos + 1;
                num.clear();
                n += 1;
            }
        }
        num.is_empty().then_some(n)
    }
    let Some(d) = parts(date, "YMWD", 'D') else { return false };
    match time {
        None => d > 0,
        Some(t) => matches!(parts(t, "HMS", 'S'), Some(n) if n > 0),
    }
}

pub(super) fn extensions(v: &Value, path: &str) -> R {
    for k in object(v, path)?.keys() {
        if !is_iri(k) {
            return err(&join(path, k), "extension keys must be IRIs");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_tags() {
        for d in ["PT1H", "P1D", "P1Y2M3W4DT5H6M7.5S", "PT0S"] {
            assert!(is_duration(d), "{d}");
        }
        for d in ["P", "PT", "P1H", "PT1.5M", "1D", "PT1S1M"] {
            assert!(!is_duration(d), "{d}");
        }
        assert!(
            is_language_tag("en-US")
                && is_language_tag("zh-Hant-TW")
                && !is_language_tag("e")
                && !is_language_tag("en_US")
        );
    }

    #[test]
    fn a_timestamp_without_a_zone_is_1_0_3_only() {
        let t = "2026-01-02T03:04:05.678";
        assert!(parse_timestamp_in(t, Spec::V2).is_none());
        assert_eq!(parse_timestamp_in(t, Spec::V1), parse_timestamp("2026-01-02T03:04:05.678Z"));
        assert!(parse_timestamp_in("2026-01-02T03:04:05-00:00", Spec::V1).is_none());
        assert!(parse_timestamp_in("yesterday", Spec::V1).is_none());
    }
}
