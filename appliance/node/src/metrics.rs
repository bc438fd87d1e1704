//! Prometheus metrics, rendered in the text exposition format that
//! `promtool check metrics` accepts. Hand-rolled: a few atomics and maps are
//! all the node needs, and the hot path must stay allocation-free once a
//! route's series exists.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

const BUCKETS: [f64; 14] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(d.as_nanos() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}", self.buckets[i].load(Relaxed));
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Per (method, route) request statistics.
#[derive(Default)]
pub struct RouteStats {
    pub latency: Histogram,
    by_status: Mutex<BTreeMap<u16, u64>>,
}

/// Labelled series created on first use, then shared.
struct Family<K, V>(RwLock<HashMap<K, Arc<V>>>);

impl<K: std::hash::Hash + Eq + Clone + Ord, V: Default> Family<K, V> {
    fn new() -> Self {
        Family(RwLock::new(HashMap::new()))
    }
    fn get(&self, k: &K) -> Arc<V> {
        if let Some(v) = self.0.read().unwrap().get(k) {
            return v.clone();
        }
        self.0.write().unwrap().entry(k.clone()).or_default().clone()
    }
    fn sorted(&self) -> Vec<(K, Arc<V>)> {
        let mut v: Vec<_> = self.0.read().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

pub struct Metrics {
    routes: Family<(String, String), RouteStats>,
    instantiation: Family<String, Histogram>,
    module_calls: Family<(String, &'static str), AtomicU64>,
    pub statements_stored: AtomicU64,
    pub db_commit: Histogram,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    pub modules_ready: AtomicU64,
    /// Gauges and counters other parts (sync) publish: name -> (help, type, value).
    extra: Mutex<BTreeMap<&'static str, (&'static str, &'static str, f64)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            routes: Family::new(),
            instantiation: Family::new(),
            module_calls: Family::new(),
            statements_stored: AtomicU64::new(0),
            db_commit: Histogram::default(),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            modules_ready: AtomicU64::new(0),
            extra: Mutex::new(BTreeMap::new()),
        }
    }
}

/// The method as a label: a client picks any token as its method, so only
/// the standard ones become series of their own (a flood of made-up methods
/// must not grow `/metrics`).
fn method_label(method: &str) -> &'static str {
    const KNOWN: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"];
    KNOWN.iter().find(|k| **k == method).copied().unwrap_or("other")
}

impl Metrics {
    pub fn request(&self, method: &str, route: &str, status: u16, d: Duration) {
        let s = self.routes.get(&(method_label(method).to_string(), route.to_string()));
        s.latency.observe(d);
        *s.by_status.lock().unwrap().entry(status).or_default() += 1;
    }

    pub fn instantiated(&self, module: &str, d: Duration) {
        self.instantiation.get(&module.to_string()).observe(d);
    }

    pub fn module_call(&self, module: &str, outcome: &'static str) {
        self.module_calls.get(&(module.to_string(), outcome)).fetch_add(1, Relaxed);
    }

    /// Sets a gauge or counter owned by another component.
    pub fn set(&self, name: &'static str, help: &'static str, kind: &'static str, value: f64) {
        self.extra.lock().unwrap().insert(name, (help, kind, value));
    }

    pub fn render(&self) -> String {
        let mut o = String::with_capacity(8192);
        let head = |o: &mut String, name: &str, help: &str, kind: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let routes = self.routes.sorted();
        head(&mut o, "lms_http_requests_total", "HTTP requests by method, route and status.", "counter");
        for ((m, r), s) in &routes {
            for (code, n) in s.by_status.lock().unwrap().iter() {
                let _ = writeln!(o, "lms_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{code}\"}} {n}");
            }
        }
        head(&mut o, "lms_http_request_duration_seconds", "HTTP request latency by method and route.", "histogram");
        for ((m, r), s) in &routes {
            s.latency.render(&mut o, "lms_http_request_duration_seconds", &format!("method=\"{m}\",route=\"{r}\""));
        }
        head(
            &mut o,
            "lms_module_instantiation_seconds",
            "Time to instantiate a wasm module for one call.",
            "histogram",
        );
        for (m, h) in self.instantiation.sorted() {
            h.render(&mut o, "lms_module_instantiation_seconds", &format!("module=\"{m}\""));
        }
        head(&mut o, "lms_module_calls_total", "Module calls by module and outcome.", "counter");
        for ((m, outcome), n) in self.module_calls.sorted() {
            let _ = writeln!(o, "lms_module_calls_total{{module=\"{m}\",outcome=\"{outcome}\"}} {}", n.load(Relaxed));
        }
        head(&mut o, "lms_statements_stored_total", "xAPI statements newly stored.", "counter");
        let _ = writeln!(o, "lms_statements_stored_total {}", self.statements_stored.load(Relaxed));
        head(
            &mut o,
            "lms_db_commit_duration_seconds",
            "SQLite commit latency (one group commit, fsync included).",
            "histogram",
        );
        self.db_commit.render(&mut o, "lms_db_commit_duration_seconds", "");
        head(&mut o, "lms_module_reloads_total", "Module reloads by result.", "counter");
        let _ = writeln!(o, "lms_module_reloads_total{{result=\"ok\"}} {}", self.reloads_ok.load(Relaxed));
        let _ = writeln!(o, "lms_module_reloads_total{{result=\"failed\"}} {}", self.reloads_failed.load(Relaxed));
        head(&mut o, "lms_modules_ready", "1 when every module is loaded and passed its self-test.", "gauge");
        let _ = writeln!(o, "lms_modules_ready {}", self.modules_ready.load(Relaxed));
        for (name, (help, kind, v)) in self.extra.lock().unwrap().iter() {
            head(&mut o, name, help, kind);
            let _ = writeln!(o, "{name} {v}");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_histograms_and_counters() {
        let m = Metrics::default();
        m.request("GET", "/v1/courses", 200, Duration::from_micros(300));
        m.request("GET", "/v1/courses", 200, Duration::from_millis(3));
        m.instantiated("catalog", Duration::from_micros(20));
        let text = m.render();
        assert!(text.contains("lms_http_requests_total{method=\"GET\",route=\"/v1/courses\",status=\"200\"} 2"));
        assert!(text.contains(
            "lms_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/courses\",le=\"0.0005\"} 1"
        ));
        assert!(text.contains("lms_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/courses\"} 2"));
        assert!(text.contains("lms_module_instantiation_seconds_count{module=\"catalog\"} 1"));
    }

    #[test]
    fn made_up_methods_share_one_label() {
        let m = Metrics::default();
        for i in 0..1000 {
            m.request(&format!("X{i:0>1000}"), "unmatched", 405, Duration::from_micros(10));
        }
        m.request("PUT", "unmatched", 405, Duration::from_micros(10));
        let text = m.render();
        assert!(text.contains("lms_http_requests_total{method=\"other\",route=\"unmatched\",status=\"405\"} 1000"));
        assert!(text.contains("method=\"PUT\""));
        assert!(text.len() < 16 << 10, "{} bytes", text.len());
    }
}
