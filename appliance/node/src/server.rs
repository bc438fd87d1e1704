//! Listeners and lifecycle: `run(node, listeners, shutdown)` serves the public
//! and admin routers until `shutdown` resolves, then drains requests in
//! flight. The first module load starts only once the sockets accept, so
//! /healthz answers from the first moment.

use crate::http;
use crate::node::Node;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::{TcpListener, UnixListener};

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
                // A stale socket from a previous run would make bind fail.
                let _ = std::fs::remove_file(p);
                AdminListener::Unix(UnixListener::bind(p)?)
            }
        })
    }
}

pub async fn run(
    node: Arc<Node>,
    public: TcpListener,
    admin: Option<AdminListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    crate::sync::spawn(node.clone(), stop_rx.clone());
    let loader = node.clone();
    tokio::spawn(async move {
        let _ = loader.reload().await;
    });

    let public_app = http::public_router(node.clone());
    let public_srv = axum::serve(public, public_app).with_graceful_shutdown(stopped(stop_rx.clone()));
    let admin_app = http::admin_router(node.clone());
    let admin_task = match admin {
        None => None,
        Some(AdminListener::Tcp(l)) => {
            Some(tokio::spawn(axum::serve(l, admin_app).with_graceful_shutdown(stopped(stop_rx.clone())).into_future()))
        }
        Some(AdminListener::Unix(l)) => {
            Some(tokio::spawn(axum::serve(l, admin_app).with_graceful_shutdown(stopped(stop_rx.clone())).into_future()))
        }
    };
    public_srv.await?;
    if let Some(t) = admin_task {
        t.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}
