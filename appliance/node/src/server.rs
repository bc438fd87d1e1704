//! Listeners and lifecycle: `run(node, listeners, shutdown)` serves the public
//! and admin routers until `shutdown` resolves, then drains requests in
//! flight. The first module load starts only once the sockets accept, so
//! /healthz answers from the first moment.

use crate::http;
use crate::node::Node;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::ListenerExt;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Where the admin listener may be: loopback TCP or a unix socket.
#[derive(Debug, Clone, PartialEq)]
pub enum AdminAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl std::str::FromStr for AdminAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            return Ok(AdminAddr::Unix(PathBuf::from(path)));
        }
        let addr: SocketAddr =
            s.parse().map_err(|_| format!("admin listener {s:?}: expected IP:PORT or unix:/path"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("admin listener {s:?}: must be a loopback address or a unix socket, never public"));
        }
        Ok(AdminAddr::Tcp(addr))
    }
}

pub enum AdminListener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl AdminListener {
    pub async fn bind(addr: &AdminAddr) -> std::io::Result<AdminListener> {
        Ok(match addr {
            AdminAddr::Tcp(a) => AdminListener::Tcp(TcpListener::bind(a).await?),
            AdminAddr::Unix(p) => {
                use std::os::unix::fs::{FileTypeExt, PermissionsExt};
                // A stale socket from a previous run would make bind fail;
                // anything else at that path is not ours to delete.
                match std::fs::symlink_metadata(p) {
                    Ok(m) if m.file_type().is_socket() => std::fs::remove_file(p)?,
                    Ok(_) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::AlreadyExists,
                            format!("{} exists and is not a socket; refusing to replace it", p.display()),
                        ));
                    }
                    Err(_) => {}
                }
                let l = UnixListener::bind(p)?;
                // Only the node's own user may reach the admin routes.
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))?;
                AdminListener::Unix(l)
            }
        })
    }
}

/// Connections the admin listener takes at once, apart from the public ones.
pub const ADMIN_CONNECTIONS: usize = 64;

/// How one listener treats connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Open at once; past it a new connection is answered 503 and closed.
    pub max: usize,
    /// For a request's headers, and for an idle keep-alive connection.
    pub header_timeout: Duration,
}

/// What a connection past the cap gets: a plain answer, then closed, so
/// the client learns why instead of waiting.
fn full_answer() -> Vec<u8> {
    let body = r#"{"error":"too_many_connections","message":"too many open connections; try again"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Put into the extensions of a request that came over TLS (cookies are
/// then `Secure`).
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// Serves `app` on `listener` until `stop` turns true, then lets requests
/// in flight finish. Unlike `axum::serve`, every connection holds a permit
/// (a cap on open connections, so file descriptors cannot run out) and must
/// send its headers within `header_timeout` (slowloris), which hyper also
/// applies to idle keep-alive connections.
async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: ConnLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: Clone + Send + Sync + 'static,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    loop {
        let (io, addr) = tokio::select! {
            c = listener.accept() => c,
            _ = stop.wait_for(|s| *s) => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let mut io = io;
                let _ = tokio::time::timeout(Duration::from_secs(1), io.write_all(&full_answer())).await;
            });
            continue;
        };
        let app = app.clone();
        let secure = tls.is_some();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr.clone()));
            if secure {
                req.extensions_mut().insert(OverTls);
            }
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let (watcher, http, tls) = (graceful.watcher(), http.clone(), tls.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => drop(watcher.watch(http.serve_connection(TokioIo::new(io), svc)).await),
                Some(acceptor) => {
                    // The handshake gets the header timeout too (slowloris over TLS).
                    let Ok(Ok(stream)) = tokio::time::timeout(limits.header_timeout, acceptor.accept(io)).await else {
                        return;
                    };
                    drop(watcher.watch(http.serve_connection(TokioIo::new(stream), svc)).await)
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Raises this process's soft open-file limit to its hard limit (as Go's
/// runtime does) and warns when the connection caps could still exhaust it.
/// Returns the soft limit in force.
pub fn raise_open_file_limit(max_connections: usize) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    // SQLite, module code, the sync client and logs need some of their own.
    let needed = (max_connections + ADMIN_CONNECTIONS + 256) as u64;
    if lim.rlim_cur < needed {
        tracing::warn!(
            limit = lim.rlim_cur,
            needed,
            "the open-file limit is below max_connections plus the node's own files: lower max_connections or raise the limit"
        );
    }
    lim.rlim_cur
}

pub async fn run(
    node: Arc<Node>,
    public: TcpListener,
    admin: Option<AdminListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_with_content(node, public, admin, None, shutdown).await
}

/// [`run`], with the content listener (package files, an origin of their
/// own; same connection limits as the public listener).
pub async fn run_with_content(
    node: Arc<Node>,
    public: TcpListener,
    admin: Option<AdminListener>,
    content: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    crate::sync::spawn(node.clone(), stop_rx.clone());
    let loader = node.clone();
    tokio::spawn(async move {
        let _ = loader.reload().await;
    });

    let header_timeout = node.cfg.header_timeout;
    let public_limits = ConnLimits { max: node.cfg.max_connections, header_timeout };
    let admin_limits = ConnLimits { max: ADMIN_CONNECTIONS, header_timeout };
    let tls = match (&node.cfg.tls_cert, &node.cfg.tls_key) {
        (Some(c), Some(k)) => Some(tokio_rustls::TlsAcceptor::from(
            lms_settings::tls::server_config(c, k).map_err(std::io::Error::other)?,
        )),
        _ => None,
    };
    // Answers go out as written: with Nagle's algorithm, the last part of a
    // response larger than a segment waits for the client's delayed ACK
    // (40 ms on Linux) before it is sent.
    let nodelay = |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    };
    let public = public.tap_io(nodelay);
    let public_srv = serve(public, http::public_router(node.clone()), public_limits, tls, stop_rx.clone());
    let admin_app = http::admin_router(node.clone());
    let admin_task = match admin {
        None => None,
        Some(AdminListener::Tcp(l)) => Some(tokio::spawn(serve(l, admin_app, admin_limits, None, stop_rx.clone()))),
        Some(AdminListener::Unix(l)) => Some(tokio::spawn(serve(l, admin_app, admin_limits, None, stop_rx.clone()))),
    };
    let content_task = content.map(|l| {
        let app = crate::content::serve::router(node.clone());
        tokio::spawn(serve(l.tap_io(nodelay), app, public_limits, None, stop_rx.clone()))
    });
    public_srv.await?;
    if let Some(t) = content_task {
        t.await.map_err(std::io::Error::other)??;
    }
    if let Some(t) = admin_task {
        t.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}
