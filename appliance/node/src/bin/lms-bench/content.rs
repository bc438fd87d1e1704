//! Package files from the content listener against nginx serving the same
//! files, side by side (issue 13: ≥ 80% of nginx's requests/s): a 50 KB
//! script whole, and 64 KiB ranges of a 5 MB video (a player seeking).
//! nginx (Debian's nginx-light) runs with its stock worker count and
//! settings (tcp_nodelay on), sendfile and no access log; without it
//! installed the scenarios say so and skip.

use crate::Bench;
use crate::harness::{compare, wanted};
use crate::nodes::{Node, config_with, free_port};
use lms_node::client::Client;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCRIPT: &str = "package file GET (50 KB script)";
const VIDEO: &str = "package file GET (Range 64 KiB of a 5 MB video)";
const NGINX: &str = "/usr/sbin/nginx";

type GetFut = Pin<Box<dyn std::future::Future<Output = Result<u16, String>> + Send>>;

/// A load that GETs `url` (with a Range of 64 KiB at a moving offset of a
/// file of `size` bytes when given) and checks the status.
fn getter(c: &Client, url: String, range_of: Option<u64>) -> impl Fn(u64) -> GetFut + Send + Sync + Clone + 'static {
    let (c, u) = (c.clone(), Arc::new(url));
    move |i: u64| {
        let (c, u) = (c.clone(), u.clone());
        Box::pin(async move {
            let r = match range_of {
                Some(size) => {
                    let start = (i * 65_536 * 7) % (size - 65_536);
                    let range = format!("bytes={start}-{}", start + 65_535);
                    c.get(&u, &[("range", &range)]).await?
                }
                None => c.get(&u, &[]).await?,
            };
            match (range_of, r.status.as_u16()) {
                (Some(_), 206) | (None, 200) => Ok(r.status.as_u16()),
                (_, s) => Err(format!("status {s}")),
            }
        })
    }
}

/// Deterministic bytes that do not compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A zip of `names` in `dir` (stored: the files do not compress).
fn write_zip(dir: &Path, out: &Path, names: &[&str]) {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    for name in names {
        let o = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        w.start_file(*name, o).unwrap();
        w.write_all(&std::fs::read(dir.join(name)).unwrap()).unwrap();
    }
    w.finish().unwrap();
}

pub async fn package_files(b: &Bench) {
    if !wanted(&b.args, &format!("{SCRIPT} {VIDEO}")) {
        return;
    }
    if !Path::new(NGINX).exists() {
        println!("{SCRIPT}: skipped, nginx is not installed (apt-get install nginx-light) to run beside it");
        return;
    }
    // A content pack with one HTML5 package: a page, a 50 KB script, a 5 MB video.
    let work = b.work.path().join("content-bench");
    let (src, pack) = (work.join("src"), work.join("pack"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(src.join("index.html"), "<!doctype html><title>Bench</title><script src=\"app.js\"></script>")
        .unwrap();
    let script: Vec<u8> = noise(50_000, 7).iter().map(|b| b"abcdefghij;(){}= \n"[(*b as usize) % 18]).collect();
    std::fs::write(src.join("app.js"), script).unwrap();
    const VIDEO_BYTES: u64 = 5_000_000;
    std::fs::write(src.join("lesson.mp4"), noise(VIDEO_BYTES as usize, 11)).unwrap();
    // The factory courses beside it, as on a node.
    let factory = &b.content;
    lms_package::pack::copy_with(factory, &pack, &|_, text| text).unwrap();
    let zip = work.join("bench-app.zip");
    write_zip(&src, &zip, &["index.html", "app.js", "lesson.mp4"]);
    let read = lms_package::read(&zip, &Default::default(), &Default::default()).expect("the bench package imports");
    lms_package::pack::add(&pack, vec![lms_package::pack::Input::Package(read)]).expect("the bench pack");
    let checked = lms_package::pack::check(&pack).expect("the bench pack checks");
    let course = checked.packages[0].clone();
    let tag: String = course.source_sha256.chars().take(16).collect();

    let content_port = free_port();
    let cfg = config_with(b, "content-bench.toml", &format!("content_listen = \"127.0.0.1:{content_port}\"\n"));
    let node = Node::up_serving(b, &b.work.path().join("content-bench-data"), Some(&cfg), &pack).await;
    let node_files = format!("http://127.0.0.1:{content_port}/p/{}/{tag}", course.id);

    let nginx_port = free_port();
    let root = pack.join(lms_package::pack::PACKAGES_DIR);
    let conf = work.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes auto;\ndaemon off;\npid {pid};\nerror_log {log} warn;\nevents {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  types {{ text/javascript js; video/mp4 mp4; text/html html; }}\n\
             client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};\n\
             server {{ listen 127.0.0.1:{nginx_port}; root {root}; }}\n}}\n",
            pid = work.join("nginx.pid").display(),
            log = work.join("nginx-error.log").display(),
            tmp = work.display(),
            root = root.display(),
        ),
    )
    .unwrap();
    let mut nginx =
        std::process::Command::new(NGINX).arg("-c").arg(&conf).arg("-p").arg(&work).spawn().expect("starting nginx");
    let nginx_files = format!("http://127.0.0.1:{nginx_port}/{}/{}", course.id, lms_package::pack::FILES_DIR);
    let started = Instant::now();
    while b.client.get(&format!("{nginx_files}/index.html"), &[]).await.map(|r| r.status.as_u16()) != Ok(200) {
        assert!(started.elapsed() < Duration::from_secs(10), "nginx never answered; see {}", work.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    compare(
        &b.args,
        SCRIPT,
        vec![
            ("lms-node content listener", 1.0, getter(&b.client, format!("{node_files}/app.js"), None)),
            ("nginx, same file (baseline)", 1.0, getter(&b.client, format!("{nginx_files}/app.js"), None)),
        ],
    )
    .await;
    compare(
        &b.args,
        VIDEO,
        vec![
            (
                "lms-node content listener",
                1.0,
                getter(&b.client, format!("{node_files}/lesson.mp4"), Some(VIDEO_BYTES)),
            ),
            (
                "nginx, same file (baseline)",
                1.0,
                getter(&b.client, format!("{nginx_files}/lesson.mp4"), Some(VIDEO_BYTES)),
            ),
        ],
    )
    .await;
    let _ = nginx.kill();
    let _ = nginx.wait();
    drop(node);
}
