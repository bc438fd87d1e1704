//! The load loop and its report: requests in flight for a while, then the
//! median run of several with its percentiles.

use crate::Args;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Run {
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub errors: u64,
}

fn pct(sorted: &[u32], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    Duration::from_micros(sorted[i] as u64)
}

/// Drives `make` for `secs` with `conc` requests in flight.
pub async fn load<F, Fut>(secs: u64, conc: usize, make: F) -> Run
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<u16, String>> + Send,
{
    let make = Arc::new(make);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..conc {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            let mut i = w as u64 * 1_000_000_000;
            while Instant::now() < deadline {
                let t = Instant::now();
                match make(i).await {
                    Ok(s) if s < 400 => lat.push(t.elapsed().as_micros() as u32),
                    _ => errors += 1,
                }
                i += 1;
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    Run { rps: all.len() as f64 / elapsed, p50: pct(&all, 0.5), p99: pct(&all, 0.99), p999: pct(&all, 0.999), errors }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Whether `--only` lets a scenario of this name run.
pub fn wanted(args: &Args, name: &str) -> bool {
    args.only.as_deref().is_none_or(|o| name.contains(o))
}

/// Runs one scenario `args.runs` times and prints its median run.
pub async fn scenario<F, Fut>(args: &Args, name: &str, per_request: f64, make: F)
where
    F: Fn(u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<u16, String>> + Send,
{
    if !wanted(args, name) {
        return;
    }
    let mut runs = Vec::new();
    for _ in 0..args.runs {
        runs.push(load(args.seconds, args.concurrency, make.clone()).await);
    }
    report(name, per_request, runs);
}

/// Runs variants of one scenario side by side: run k of every variant
/// before run k+1 of any, so a noisy minute hits them alike. Each variant
/// is (label, statements per request, load); prints each variant's median
/// run and its ratio (in statements/s when a request carries several) to
/// the last variant, the baseline.
pub async fn compare<F, Fut>(args: &Args, name: &str, variants: Vec<(&str, f64, F)>)
where
    F: Fn(u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<u16, String>> + Send,
{
    if !wanted(args, name) {
        return;
    }
    let mut runs: Vec<Vec<Run>> = variants.iter().map(|_| Vec::new()).collect();
    for _ in 0..args.runs {
        for (k, (_, _, make)) in variants.iter().enumerate() {
            runs[k].push(load(args.seconds, args.concurrency, make.clone()).await);
        }
    }
    let mut rates = Vec::new();
    for ((label, per_request, _), runs) in variants.iter().zip(runs) {
        rates.push(report(&format!("{name} [{label}]"), *per_request, runs) * per_request);
    }
    let (base_label, base) = (variants.last().unwrap().0, *rates.last().unwrap());
    let ratios: Vec<String> = variants
        .iter()
        .zip(&rates)
        .take(variants.len() - 1)
        .map(|((label, _, _), rate)| format!("{label} {:.2}x", rate / base.max(1e-9)))
        .collect();
    println!("{:<28} {} {base_label}", "", ratios.join(", "));
}

/// Prints the median of `runs` (by requests/s) and every run's rate;
/// answers the median's requests/s.
pub fn report(name: &str, per_request: f64, mut runs: Vec<Run>) -> f64 {
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let all_rps: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.rps)).collect();
    let m = &runs[runs.len() / 2];
    let unit = if per_request > 1.0 { format!(" ({:.0} statements/s)", m.rps * per_request) } else { String::new() };
    println!(
        "{name:<28} {:>9.0} req/s{unit}  p50 {} ms  p99 {} ms  p999 {} ms  errors {}  runs [{}]",
        m.rps,
        ms(m.p50),
        ms(m.p99),
        ms(m.p999),
        m.errors,
        all_rps.join(", ")
    );
    m.rps
}
