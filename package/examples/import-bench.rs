//! `cargo run --release -p lms-package --features testing --example import-bench`:
//! time to read and add a cmi5 package of 1,000 and 5,000 AUs (each AU its
//! own launch page) to a content pack; medians of 5 runs.

use lms_package::pack::Input;
use lms_package::testing::{au, structure, zip};
use lms_package::{Limits, Options, pack};
use std::time::{Duration, Instant};

fn main() {
    let dir = std::env::temp_dir().join(format!("lms-import-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let course = "https://courses.example.org/cmi5/big";
    for n in [1_000, 5_000] {
        let aus: Vec<String> = (0..n)
            .map(|i| {
                au(&format!("{course}/aus/{i}"), &format!("Unit {i}"), &format!("au/{i}.html"), r#"moveOn="Completed""#)
            })
            .collect();
        let xml = structure(course, "Big", &aus.join("\n"));
        let pages: Vec<(String, Vec<u8>)> = (0..n)
            .map(|i| (format!("au/{i}.html"), format!("<!doctype html><title>Unit {i}</title>").into_bytes()))
            .collect();
        let mut files: Vec<(&str, &[u8])> = vec![("cmi5.xml", xml.as_bytes())];
        files.extend(pages.iter().map(|(p, b)| (p.as_str(), b.as_slice())));
        let pkg = dir.join(format!("big-{n}.zip"));
        zip(&pkg, &files);
        let mut times = Vec::new();
        for run in 0..5 {
            let packdir = dir.join(format!("pack-{n}-{run}"));
            let t = Instant::now();
            let p = lms_package::read(&pkg, &Options::default(), &Limits::default()).unwrap();
            pack::add(&packdir, vec![Input::Package(p)]).unwrap();
            times.push(t.elapsed());
            let _ = std::fs::remove_dir_all(&packdir);
        }
        times.sort();
        let median: Duration = times[times.len() / 2];
        println!(
            "import a {n}-AU cmi5 package ({} bytes, {} files): median {:.1} ms of 5 (read, check, unpack, syncfs)",
            std::fs::metadata(&pkg).unwrap().len(),
            n + 1,
            median.as_secs_f64() * 1000.0
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
