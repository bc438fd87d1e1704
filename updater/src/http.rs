//! A blocking HTTP/1.1 client for the updater's few requests (metadata,
//! ranged bundle downloads, the node's reload and readiness), on a private
//! single-threaded tokio runtime. Every read is capped.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::io::Write;
use std::time::Duration;

/// The slowest a download may be, over any window of the timeout: a server
/// trickling a byte every few seconds (each under the timeout) would
/// otherwise hold `check` forever. Downloads resume, so a slow link still
/// gets there in later attempts.
pub const MIN_BYTES_PER_SEC: u64 = 1024;

pub struct Http {
    rt: tokio::runtime::Runtime,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Http {
    /// http:// and https:// with Mozilla's roots built in.
    pub fn new(timeout: Duration) -> Http {
        Http::with_trust(timeout, lms_settings::tls::client_config(None).expect("the built-in roots load"))
    }

    /// https:// trusting what `tls` trusts (a pinned private CA: `ca_file`).
    pub fn with_trust(timeout: Duration, tls: std::sync::Arc<rustls::ClientConfig>) -> Http {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let mut c = HttpConnector::new();
        c.set_connect_timeout(Some(timeout));
        let https = lms_settings::tls::https_connector(c, &tls);
        // No idle connections are kept: this runtime runs only inside a
        // call, so a kept connection the server closed meanwhile goes
        // unnoticed, and the next request on it fails ("connection closed
        // before message completed": a node's reload after its idle timeout
        // failed that way and rolled back a good update; found in the VM).
        let client =
            rt.block_on(async { Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(https) });
        Http { rt, client, timeout }
    }

    fn request(&self, method: &str, url: &str, range_from: Option<u64>) -> Result<hyper::Request<Full<Bytes>>, String> {
        let mut b = hyper::Request::builder().method(method).uri(url);
        if let Some(from) = range_from {
            b = b.header("range", format!("bytes={from}-"));
        }
        b.body(Full::new(Bytes::new())).map_err(|e| format!("{url}: {e}"))
    }

    /// GET or POST `url`, reading at most `cap` bytes of body.
    pub fn call(&self, method: &str, url: &str, cap: u64) -> Result<Answer, String> {
        let req = self.request(method, url, None)?;
        self.rt.block_on(async {
            let fut = async {
                let resp =
                    self.client.request(req).await.map_err(|e| format!("{url}: {}", lms_settings::error_chain(&e)))?;
                let status = resp.status().as_u16();
                let mut body = resp.into_body();
                let mut out = Vec::new();
                while let Some(frame) = body.frame().await {
                    let frame = frame.map_err(|e| format!("{url}: {e}"))?;
                    if let Some(d) = frame.data_ref() {
                        if out.len() as u64 + d.len() as u64 > cap {
                            return Err(format!("{url}: answer larger than {cap} bytes"));
                        }
                        out.extend_from_slice(d);
                    }
                }
                Ok(Answer { status, body: out })
            };
            tokio::time::timeout(self.timeout, fut)
                .await
                .map_err(|_| format!("{url}: no answer within {:?}", self.timeout))?
        })
    }

    /// Appends `url`'s bytes from offset `have` to `file` (HTTP Range), never
    /// past `total`. Returns the new length. A server that ignores Range
    /// (200) makes the caller start over: returns Err with "restart".
    pub fn download_into(&self, url: &str, file: &mut dyn Write, have: u64, total: u64) -> Result<u64, String> {
        let req = self.request("GET", url, (have > 0).then_some(have))?;
        self.rt.block_on(async {
            let resp = tokio::time::timeout(self.timeout, self.client.request(req))
                .await
                .map_err(|_| format!("{url}: no answer within {:?}", self.timeout))?
                .map_err(|e| format!("{url}: {}", lms_settings::error_chain(&e)))?;
            let status = resp.status().as_u16();
            match (status, have) {
                (206, h) if h > 0 => {}
                (200, 0) => {}
                (200, _) => return Err("restart".into()),
                (s, _) => return Err(format!("{url}: HTTP {s}")),
            }
            let mut body = resp.into_body();
            let mut len = have;
            let (mut window, mut at_window) = (tokio::time::Instant::now(), have);
            let floor = MIN_BYTES_PER_SEC * self.timeout.as_secs().max(1);
            loop {
                if window.elapsed() >= self.timeout {
                    if len - at_window < floor {
                        return Err(format!(
                            "{url}: too slow at byte {len}: {} bytes in {:?}, below {MIN_BYTES_PER_SEC} bytes/s",
                            len - at_window,
                            self.timeout
                        ));
                    }
                    (window, at_window) = (tokio::time::Instant::now(), len);
                }
                let frame = match tokio::time::timeout(self.timeout, body.frame()).await {
                    Err(_) => return Err(format!("{url}: stalled at byte {len}")),
                    Ok(None) => break,
                    Ok(Some(f)) => f.map_err(|e| format!("{url}: interrupted at byte {len}: {e}"))?,
                };
                if let Some(d) = frame.data_ref() {
                    if len + d.len() as u64 > total {
                        return Err(format!("{url}: more than the {total} bytes the metadata promised"));
                    }
                    file.write_all(d).map_err(|e| format!("writing download: {e}"))?;
                    len += d.len() as u64;
                }
            }
            Ok(len)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A server that closes an idle keep-alive connection (lms-node's admin
    /// listener does) must not fail the next request: no connection is
    /// reused across calls.
    #[test]
    fn a_connection_the_server_closed_while_idle_is_not_reused() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap();
                std::thread::sleep(Duration::from_millis(100));
                drop(s); // idle timeout: closed
            }
        });
        let http = Http::new(Duration::from_secs(5));
        let url = format!("http://127.0.0.1:{port}/admin/reload");
        for _ in 0..3 {
            let a = http.call("POST", &url, 1024).unwrap();
            assert_eq!((a.status, a.body.as_slice()), (200, &b"ok"[..]));
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Issue 10, case 6: a repository sending one byte at a time, each just
    /// under the timeout, kept `check` alive forever.
    #[test]
    fn a_trickling_download_is_cut_off() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n").unwrap();
            while s.write_all(b"x").and_then(|_| s.flush()).is_ok() {
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        let http = Http::new(Duration::from_secs(1));
        let dir = tempfile::tempdir().unwrap();
        let mut f = std::fs::File::create(dir.path().join("part")).unwrap();
        let t = std::time::Instant::now();
        let e = http.download_into(&format!("http://127.0.0.1:{port}/b"), &mut f, 0, 1_000_000).unwrap_err();
        assert!(e.contains("too slow"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    }

    /// Issue 10, case 2: https:// repositories did not work at all. A
    /// repository behind a private CA is reached with that CA pinned, and
    /// refused without it.
    #[test]
    fn https_with_a_pinned_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        let server = lms_settings::tls::server_config(&cert, &key).unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                let conn = rustls::ServerConnection::new(server.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, s);
                let mut buf = [0u8; 4096];
                if tls.read(&mut buf).is_err() {
                    continue; // the untrusting client gave up in the handshake
                }
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello");
                let _ = tls.flush();
            }
        });
        let url = format!("https://127.0.0.1:{port}/channels/stable.json");
        let e = Http::new(Duration::from_secs(5)).call("GET", &url, 1024).err().expect("trusted an unknown CA");
        assert!(e.contains("certificate") || e.contains("Unknown"), "{e}");
        let trust = lms_settings::tls::client_config(Some(&cert)).unwrap();
        let a = Http::with_trust(Duration::from_secs(5), trust).call("GET", &url, 1024).unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"hello"[..]));
    }
}
