//! Progress facts (issue 12): what a module answered as `facts` about a
//! learner, kept per module set with the sequence number of the learner's
//! last statement folded in, so the next call reads and ships only the
//! statements stored since (usually none) instead of the whole history.
//! Also the last answer per learner and query: while the learner has no new
//! statements and nothing was voided, the same request gets it again without
//! a module call (the ABI's promise for a module that returns facts).
//!
//! Like [`super::answers`], the cache belongs to its [`super::ModuleSet`]:
//! a module update starts with none, so changed rules are applied to every
//! learner's whole history. A voided statement (the store's void
//! generation moves) also starts every learner over. Nothing here is
//! durable: a restart rebuilds facts on each learner's first request.

use lms_abi::Response;
use serde_json::value::RawValue;
use std::sync::Arc;

/// Bytes of facts and answers one module set keeps.
const CAPACITY_BYTES: u64 = 32 << 20;

/// Where a learner's history stood when facts or an answer were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Sequence number of the last statement folded in (0: none).
    pub seq: i64,
    /// The store's void generation then.
    pub voids: u64,
}

enum Kept {
    Facts(Mark, Box<RawValue>),
    Answer(Mark, Response),
}

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<String, Arc<Kept>> for Weight {
    fn weight(&self, key: &String, v: &Arc<Kept>) -> u64 {
        let size = match &**v {
            Kept::Facts(_, f) => f.get().len(),
            Kept::Answer(_, r) => r.body.get().len(),
        };
        (key.len() + size + 96) as u64
    }
}

pub struct Facts {
    cache: quick_cache::sync::Cache<String, Arc<Kept>, Weight>,
}

impl Default for Facts {
    fn default() -> Self {
        Facts { cache: quick_cache::sync::Cache::with_weighter(4096, CAPACITY_BYTES, Weight) }
    }
}

fn facts_key(module: &str, learner: &str) -> String {
    format!("f{}:{module}{learner}", module.len())
}

fn answer_key(module: &str, learner: &str, query: &str) -> String {
    format!("a{}:{module}{}:{learner}{query}", module.len(), learner.len())
}

impl Facts {
    /// The facts kept for `learner`, when made at the current void generation.
    pub fn get(&self, module: &str, learner: &str, voids: u64) -> Option<(Mark, Box<RawValue>)> {
        match &*self.cache.get(&facts_key(module, learner))? {
            Kept::Facts(mark, f) if mark.voids == voids => Some((*mark, f.clone())),
            _ => None,
        }
    }

    /// The answer kept for `learner` and `query` (the caller's text of it),
    /// when it was made at exactly `mark`.
    pub fn answer(&self, module: &str, learner: &str, query: &str, mark: Mark) -> Option<Response> {
        match &*self.cache.get(&answer_key(module, learner, query))? {
            Kept::Answer(m, r) if *m == mark => Some(r.clone()),
            _ => None,
        }
    }

    /// Keeps a 200 answer's facts and the answer itself (without its facts).
    pub fn keep(&self, module: &str, learner: &str, query: &str, mark: Mark, resp: &mut Response) {
        let Some(facts) = resp.facts.take() else { return };
        if resp.status != 200 || !resp.statements.is_empty() {
            return;
        }
        self.cache.insert(facts_key(module, learner), Arc::new(Kept::Facts(mark, facts)));
        self.cache.insert(answer_key(module, learner, query), Arc::new(Kept::Answer(mark, resp.clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(facts: &str) -> Response {
        let mut r = lms_abi::Response {
            status: 200,
            body: RawValue::from_string("{\"ok\":1}".into()).unwrap(),
            etag: None,
            cache_control: None,
            statements: vec![],
            html: None,
            once: false,
            download: None,
            facts: None,
        };
        r.facts = Some(RawValue::from_string(facts.into()).unwrap());
        r
    }

    #[test]
    fn facts_and_answers_hold_only_at_their_mark() {
        let f = Facts::default();
        let mark = Mark { seq: 7, voids: 0 };
        let mut r = resp("{\"c\":1}");
        f.keep("progress", "ann", "", mark, &mut r);
        assert!(r.facts.is_none(), "facts are not sent to the client");
        let (m, facts) = f.get("progress", "ann", 0).unwrap();
        assert_eq!((m, facts.get()), (mark, "{\"c\":1}"));
        assert!(f.get("progress", "ann", 1).is_none(), "a void since: start over");
        assert!(f.get("progress", "bo", 0).is_none());
        assert!(f.answer("progress", "ann", "", mark).is_some());
        assert!(f.answer("progress", "ann", "", Mark { seq: 8, voids: 0 }).is_none(), "a newer statement");
        assert!(f.answer("progress", "ann", "course=c", mark).is_none(), "another query");
        // A learner id cannot pose as another's key with a query.
        assert!(f.answer("progress", "an", "n", mark).is_none());
    }
}
