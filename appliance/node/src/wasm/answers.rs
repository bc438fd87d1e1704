//! Answers a module gives everyone alike, kept per module set (issue 11).
//! A call that carries nothing of a person (no actor, body, statements or
//! CSRF token) and gets a 200 with `Cache-Control: public...` and no
//! statements is the same for every caller until the module set changes, so
//! the host serves it from here for `cache_ttl` instead of calling the
//! module again. The cache belongs to its [`super::ModuleSet`]: a module
//! update or reload starts with an empty one.

use lms_abi::Response;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes of answers one module set keeps.
const CAPACITY_BYTES: u64 = 32 << 20;
/// Largest answer kept.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// What identifies a shareable call: module, op, path parameters, query
/// and language, made into one text once per request.
pub struct Key(String);

impl Key {
    pub fn new(
        module: &str,
        op: &str,
        params: &BTreeMap<String, String>,
        query: &BTreeMap<String, String>,
        language: Option<&str>,
    ) -> Key {
        // Length-prefixing every part cannot collide, whatever the parts hold.
        let mut k = String::with_capacity(64);
        let mut put = |s: &str| {
            k.push_str(&s.len().to_string());
            k.push(':');
            k.push_str(s);
        };
        put(module);
        put(op);
        for (a, b) in params {
            put(a);
            put(b);
        }
        put("?");
        for (a, b) in query {
            put(a);
            put(b);
        }
        put(language.unwrap_or(""));
        Key(k)
    }
}

struct Kept {
    answer: Response,
    until: Instant,
}

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<String, Arc<Kept>> for Weight {
    fn weight(&self, key: &String, v: &Arc<Kept>) -> u64 {
        let html = v.answer.html.as_ref().map_or(0, String::len);
        (key.len() + v.answer.body.get().len() + html + 128) as u64
    }
}

pub struct Answers {
    cache: quick_cache::sync::Cache<String, Arc<Kept>, Weight>,
}

impl Default for Answers {
    fn default() -> Self {
        Answers { cache: quick_cache::sync::Cache::with_weighter(4096, CAPACITY_BYTES, Weight) }
    }
}

impl Answers {
    /// The kept answer of `key`, while it is fresh.
    pub fn get(&self, key: &Key) -> Option<Response> {
        let kept = self.cache.get(&key.0)?;
        (Instant::now() < kept.until).then(|| kept.answer.clone())
    }

    /// Keeps `answer` for `ttl` when it is one everyone may share.
    pub fn put(&self, key: &Key, answer: &Response, ttl: Duration) {
        if shareable(answer) {
            self.keep(key, answer, ttl);
        }
    }

    /// Keeps `answer` for `ttl`: the caller has made it the same for
    /// everyone (a page rendered with slots for the person).
    pub fn keep(&self, key: &Key, answer: &Response, ttl: Duration) {
        let size = answer.body.get().len() + answer.html.as_ref().map_or(0, String::len);
        if !ttl.is_zero() && size <= MAX_ANSWER_BYTES {
            self.cache.insert(key.0.clone(), Arc::new(Kept { answer: answer.clone(), until: Instant::now() + ttl }));
        }
    }

    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

/// A 200 marked public, with nothing to store and no page or file.
fn shareable(r: &Response) -> bool {
    r.status == 200
        && r.statements.is_empty()
        && r.html.is_none()
        && r.download.is_none()
        && r.cache_control.as_deref().is_some_and(|c| c.starts_with("public"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, cc: Option<&str>) -> Response {
        Response {
            status,
            body: serde_json::value::to_raw_value(&serde_json::json!({"a": 1})).unwrap(),
            etag: Some("\"e\"".into()),
            cache_control: cc.map(str::to_string),
            statements: vec![],
            html: None,
            once: false,
            download: None,
            facts: None,
        }
    }

    #[test]
    fn only_public_answers_are_kept_and_only_while_fresh() {
        let a = Answers::default();
        let (p, q) = (BTreeMap::from([("course".to_string(), "c".to_string())]), BTreeMap::new());
        let key = Key::new("catalog", "get_course", &p, &q, None);
        a.put(&key, &answer(200, Some("no-store")), Duration::from_secs(60));
        a.put(&key, &answer(404, Some("public, max-age=60")), Duration::from_secs(60));
        assert!(a.get(&key).is_none());
        a.put(&key, &answer(200, Some("public, max-age=60")), Duration::ZERO);
        assert!(a.get(&key).is_none(), "a zero ttl keeps nothing");
        a.put(&key, &answer(200, Some("public, max-age=60")), Duration::from_secs(60));
        assert_eq!(a.get(&key).unwrap().etag.as_deref(), Some("\"e\""));
        let other = BTreeMap::from([("course".to_string(), "d".to_string())]);
        assert!(a.get(&Key::new("catalog", "get_course", &other, &q, None)).is_none(), "another course");
        let p2 = BTreeMap::from([("course".to_string(), "c".to_string())]);
        let key = Key::new("catalog", "get_course", &p2, &q, Some("en"));
        assert!(a.get(&key).is_none(), "another language");
        a.put(&key, &answer(200, Some("public, max-age=60")), Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(a.get(&key).is_none(), "stale");
    }
}
