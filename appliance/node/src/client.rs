//! A small HTTP/1.1 client over hyper with keep-alive, shared by the load
//! benchmark, the tests and upstream sync. Not a general-purpose client: it
//! sends a body, reads the whole answer (up to a cap), and reports errors as
//! text. `http://` and `https://` (rustls; trust from `lms_settings::tls`).

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

#[derive(Clone)]
pub struct Client {
    inner: HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    /// Most bytes of an answer's body read; a larger answer is an error,
    /// found out without buffering it.
    max_body: usize,
}

/// The default cap on an answer's body.
pub const MAX_BODY: usize = 64 << 20;

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Client {
    /// Trusts Mozilla's roots for https://.
    pub fn new(timeout: Duration) -> Client {
        Client::with_trust(timeout, lms_settings::tls::client_config(None).expect("the built-in roots load"))
    }

    /// Trusts what `tls` trusts for https:// (see `lms_settings::tls::client_config`).
    pub fn with_trust(timeout: Duration, tls: std::sync::Arc<rustls::ClientConfig>) -> Client {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let connector = lms_settings::tls::https_connector(http, &tls);
        Client {
            inner: HyperClient::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build(connector),
            timeout,
            max_body: MAX_BODY,
        }
    }

    /// The same client, reading at most `bytes` of any answer's body.
    pub fn with_max_body(mut self, bytes: usize) -> Client {
        self.max_body = bytes;
        self
    }

    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Reply, String> {
        let mut req = hyper::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into())).map_err(|e| format!("{url}: {e}"))?;
        let fut = async {
            let resp =
                self.inner.request(req).await.map_err(|e| format!("{url}: {}", lms_settings::error_chain(&e)))?;
            let (parts, body) = resp.into_parts();
            let max = self.max_body;
            let body = http_body_util::Limited::new(body, max)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        format!("{url}: answer larger than {max} bytes")
                    } else {
                        format!("{url}: reading body: {e}")
                    }
                })?
                .to_bytes();
            Ok(Reply { status: parts.status, headers: parts.headers, body })
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| format!("{url}: no answer within {:?}", self.timeout))?
    }

    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
        self.send(Method::GET, url, headers, Bytes::new()).await
    }
}

/// `Authorization` header value for HTTP Basic.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}
