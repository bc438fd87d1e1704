//! Build progress: a bar on a terminal, plain lines otherwise, or one JSON
//! event per line (`--json`) for tools.

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    total: usize,
    n: usize,
    json: bool,
    tty: bool,
    started: Instant,
    step_started: Instant,
    name: String,
}

impl Progress {
    pub fn new(total: usize, json: bool) -> Progress {
        Progress {
            total,
            n: 0,
            json,
            tty: !json && std::io::stderr().is_terminal(),
            started: Instant::now(),
            step_started: Instant::now(),
            name: String::new(),
        }
    }

    /// The next step starts; it reads `reads` and writes `writes` (both in
    /// the JSON event, for tools that show or check the build's flow).
    pub fn step(&mut self, name: &str, reads: &[&str], writes: &[&str]) {
        self.n += 1;
        self.name = name.to_string();
        self.step_started = Instant::now();
        if self.json {
            let e = serde_json::json!({
                "event": "step", "step": self.n, "of": self.total, "name": name, "reads": reads, "writes": writes,
            });
            println!("{e}");
        } else if self.tty {
            let filled = self.n * 20 / self.total.max(1);
            eprint!("\r\x1b[2K[{}{}] {}/{} {name}", "#".repeat(filled), "-".repeat(20 - filled), self.n, self.total);
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("[{}/{}] {name}", self.n, self.total);
        }
    }

    /// The current step finished; `detail` says what it made.
    pub fn done(&mut self, detail: &str) {
        let ms = self.step_started.elapsed().as_millis();
        if self.json {
            let e = serde_json::json!({"event": "done", "step": self.n, "name": self.name, "ms": ms, "detail": detail});
            println!("{e}");
        } else {
            if self.tty {
                eprint!("\r\x1b[2K");
            }
            eprintln!("[{}/{}] {}: {detail} ({:.1} s)", self.n, self.total, self.name, ms as f64 / 1000.0);
        }
    }

    /// A notice that must not be missed (an absent optional input, a dev key).
    pub fn warn(&self, message: &str) {
        if self.json {
            println!("{}", serde_json::json!({"event": "warning", "message": message}));
        } else {
            eprintln!("warning: {message}");
        }
    }

    pub fn finished(&self, detail: &str) {
        let s = self.started.elapsed().as_secs_f64();
        if self.json {
            println!("{}", serde_json::json!({"event": "finished", "seconds": s, "detail": detail}));
        } else {
            eprintln!("built in {s:.1} s: {detail}");
        }
    }
}
