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

pub struct Http {
    rt: tokio::runtime::Runtime,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Http {
    pub fn new(timeout: Duration) -> Http {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let mut c = HttpConnector::new();
        c.set_connect_timeout(Some(timeout));
        let client = rt.block_on(async { Client::builder(TokioExecutor::new()).build(c) });
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
                let resp = self.client.request(req).await.map_err(|e| format!("{url}: {e}"))?;
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
    pub fn download_into(&self, url: &str, file: &mut std::fs::File, have: u64, total: u64) -> Result<u64, String> {
        let req = self.request("GET", url, (have > 0).then_some(have))?;
        self.rt.block_on(async {
            let resp = tokio::time::timeout(self.timeout, self.client.request(req))
                .await
                .map_err(|_| format!("{url}: no answer within {:?}", self.timeout))?
                .map_err(|e| format!("{url}: {e}"))?;
            let status = resp.status().as_u16();
            match (status, have) {
                (206, h) if h > 0 => {}
                (200, 0) => {}
                (200, _) => return Err("restart".into()),
                (s, _) => return Err(format!("{url}: HTTP {s}")),
            }
            let mut body = resp.into_body();
            let mut len = have;
            loop {
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
