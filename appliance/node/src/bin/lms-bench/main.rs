//! `lms-bench`: the load benchmark an operator runs on their own hardware.
//!
//! Starts real `lms-node` processes (the binary next to this one) on free
//! loopback ports with fresh data directories, drives them over HTTP/1.1
//! keep-alive from this process, and prints requests/s and P50/P99/P999 per
//! scenario. Where a figure needs a baseline (the same lesson served by a
//! native handler, progress without kept facts) the baseline runs beside it
//! in the same invocation, run for run, and the ratio is printed.
//!
//! - [`nodes`]: the processes under test and the in-process baselines;
//! - [`harness`]: the load loop and the report;
//! - [`learners`]: what learners ask for (lessons, pages, progress, quizzes, sign-in);
//! - [`lrs`]: the LRS (statement POST, State documents, filtered GET over 1M statements);
//! - [`sync`]: the drain of a backlog into a hub.

mod content;
mod harness;
mod learners;
mod lrs;
mod nodes;
mod sync;

use clap::Parser;
use lms_node::client::{Client, basic_auth};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(about = "LMS node load benchmark")]
pub struct Args {
    /// Module directory (as `cargo xtask modules` writes it).
    #[arg(long)]
    modules: PathBuf,
    /// Content pack the nodes serve (default: the factory pack,
    /// `appliance/content` of this checkout).
    #[arg(long)]
    content: Option<PathBuf>,
    /// Seconds per run of each scenario.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Runs per scenario; the median run is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Concurrent requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Only scenarios whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Statements in the sync backlog drained from an edge node into a hub.
    #[arg(long, default_value_t = 50_000)]
    backlog: usize,
    /// Statements in the store the filtered statement GETs read.
    #[arg(long, default_value_t = 1_000_000)]
    store: u64,
    /// Settings file for the benchmarked nodes (e.g. `portable_module_code = true`, as on the appliance).
    #[arg(long)]
    config: Option<PathBuf>,
}

const USER: &str = "bench";
const PASSWORD: &str = "bench-password";
const LESSON: &str = "/v1/courses/arithmetic/lessons/fractions";
/// The headers of an xAPI statement POST.
const XAPI: [(&str, &str); 2] = [("X-Experience-API-Version", "2.0.0"), ("content-type", "application/json")];

/// What every scenario shares: the arguments, the node binary, a scratch
/// directory, the client credential and the HTTP client.
pub struct Bench {
    args: Args,
    /// The content pack the nodes serve.
    content: PathBuf,
    exe: PathBuf,
    work: tempfile::TempDir,
    creds: PathBuf,
    client: Client,
    auth: Arc<String>,
}

impl Bench {
    /// POSTs `body` with the client credential and `headers`; panics on a
    /// transport error or an error answer (setup steps, not measurements).
    async fn post(&self, url: &str, headers: &[(&str, &str)], body: String) {
        let mut all = vec![("authorization", self.auth.as_str())];
        all.extend_from_slice(headers);
        let r = self.client.send("POST".parse().unwrap(), url, &all, body).await.expect("bench setup POST");
        assert!(r.status.as_u16() < 300, "bench setup POST {url}: {}", r.status);
    }

    /// The served courses flattened as the modules read them:
    /// `{"format", "docs": {key: document}}`.
    fn courses(&self) -> serde_json::Value {
        let pack = lms_package::pack::check(&self.content).expect("the bench's content pack checks");
        serde_json::to_value(lms_content::flatten(&pack.activity_base, &pack.natives)).unwrap()
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let exe = std::env::current_exe().unwrap().with_file_name("lms-node");
    let work = tempfile::tempdir().unwrap();
    let creds = work.path().join("htpasswd");
    std::fs::write(&creds, format!("{USER}:{}\n", bcrypt::hash(PASSWORD, 10).unwrap())).unwrap();
    // The bench acts for any learner (progress), so its credential has every scope.
    std::fs::write(work.path().join("scopes.toml"), format!("{USER} = [\"all\"]\n")).unwrap();
    let client = Client::new(std::time::Duration::from_secs(30));
    println!(
        "lms-bench: {} s x {} runs per scenario, {} in flight, {} cores",
        args.seconds,
        args.runs,
        args.concurrency,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let auth = Arc::new(basic_auth(USER, PASSWORD));
    let content =
        args.content.clone().unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../content")));
    let b = Bench { args, content, exe, work, creds, client, auth };

    let data = b.work.path().join("data");
    nodes::process_start(&b, &data).await;
    nodes::cold_start(&b.args.modules, &b.work.path().join("probe-cache"));
    {
        let node = nodes::Node::up(&b, &data, None).await;
        learners::lessons(&b, &node).await;
        learners::pages(&b, &node, &data).await;
        lrs::statements(&b, &node).await;
        lrs::state(&b, &node).await;
        learners::quiz_attempts(&b, &node).await;
        learners::sign_ins(&b, &node, &data).await;
    }
    learners::progress(&b).await;
    lrs::filters(&b).await;
    content::package_files(&b).await;
    sync::drain(&b).await;
}
