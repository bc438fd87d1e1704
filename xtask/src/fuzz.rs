//! `cargo xtask fuzz`: the cargo-fuzz targets of updater/fuzz, seeded with
//! real bundles of the real modules (signed with the targets' test key, so
//! `bundle_signed` and `channel` start behind the signature), each run for a
//! bounded time. The corpus lives in the target directory and grows from run
//! to run; a crash fails the run and names its reproducer.

use anyhow::{Context, Result, bail};
use std::process::Command;

pub const TARGETS: &[&str] = &["bundle", "bundle_signed", "channel"];

/// What libFuzzer reported at the end of a run.
#[derive(Debug, Default, PartialEq)]
pub struct Stats {
    pub coverage: u64,
    pub features: u64,
    pub corpus: u64,
    pub executions: u64,
}

/// Reads libFuzzer's last `DONE`/status line and its final stats.
pub fn parse_stats(log: &str) -> Stats {
    let mut s = Stats::default();
    let field = |line: &str, key: &str| -> Option<u64> {
        let mut words = line.split_whitespace();
        words.position(|w| w == key)?;
        words.next()?.split('/').next()?.parse().ok()
    };
    for line in log.lines() {
        if line.starts_with('#') && line.contains(" cov: ") {
            s.coverage = field(line, "cov:").unwrap_or(s.coverage);
            s.features = field(line, "ft:").unwrap_or(s.features);
            s.corpus = field(line, "corp:").unwrap_or(s.corpus);
        }
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            s.executions = v.trim().parse().unwrap_or(0);
        }
    }
    s
}

pub fn run(seconds: u64, only: Option<&str>) -> Result<()> {
    let targets: Vec<&str> = match only {
        Some(t) if TARGETS.contains(&t) => vec![t],
        Some(t) => bail!("no fuzz target {t:?} (targets: {})", TARGETS.join(", ")),
        None => TARGETS.to_vec(),
    };
    let root = crate::root();
    let fuzz_dir = root.join("updater/fuzz");
    let target = crate::target_dir();
    let modules = target.join("lms-fuzz-modules");
    crate::build_modules(&modules, "1.0.0")?;
    let corpus = target.join("fuzz-corpus");
    crate::run(
        Command::new(crate::cargo_bin())
            .args(["run", "--quiet", "--release", "--bin", "seed", "--manifest-path"])
            .arg(fuzz_dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target.join("fuzz-seed"))
            .arg("--")
            .arg(&corpus)
            .arg(&modules),
    )?;
    let mut rows = Vec::new();
    for t in targets {
        let artifacts = target.join("fuzz-artifacts").join(t);
        std::fs::create_dir_all(&artifacts)?;
        let out = Command::new(crate::cargo_bin())
            .current_dir(root.join("updater"))
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--fuzz-dir"])
            .arg(&fuzz_dir)
            .arg("--target-dir")
            .arg(target.join("fuzz"))
            .arg(t)
            .arg(corpus.join(t))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .args(["-print_final_stats=1", "-rss_limit_mb=2048", "-timeout=10"])
            .output()
            .with_context(|| format!("running cargo fuzz run {t}"))?;
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
            bail!(
                "fuzz target {t} failed ({}); reproducers in {}:\n{}",
                out.status,
                artifacts.display(),
                tail.join("\n")
            );
        }
        let s = parse_stats(&log);
        if s.executions == 0 {
            bail!("fuzz target {t} ran nothing:\n{log}");
        }
        rows.push((t, s));
    }
    println!("fuzz: {seconds} s per target, corpus in {}", corpus.display());
    println!("{:<14} {:>9} {:>9} {:>8} {:>11}", "target", "coverage", "features", "corpus", "executions");
    for (t, s) in rows {
        println!("{t:<14} {:>9} {:>9} {:>8} {:>11}", s.coverage, s.features, s.corpus, s.executions);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libfuzzer_stats_are_read() {
        let log = "INFO: seed corpus: files: 3\n#2\tINITED cov: 1200 ft: 1500 corp: 3/40Kb exec/s: 0 rss: 60Mb\n\
                   #9000\tNEW    cov: 3096 ft: 4303 corp: 237/1503b lim: 11 exec/s: 344 rss: 368Mb\n\
                   #10666\tDONE   cov: 3100 ft: 4310 corp: 240/1600b lim: 11 exec/s: 344 rss: 368Mb\n\
                   stat::number_of_executed_units: 10666\nstat::average_exec_per_sec:     344\n";
        assert_eq!(parse_stats(log), Stats { coverage: 3100, features: 4310, corpus: 240, executions: 10666 });
        assert_eq!(parse_stats("nothing"), Stats::default());
    }
}
