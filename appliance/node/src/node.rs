//! The node's shared state: settings, statement store, wasm host, the module
//! set currently served, credentials and metrics; and the reload operation
//! (SIGHUP and POST /admin/reload).

use crate::config::Config;
use crate::http::auth::{Auth, CredentialsError};
use crate::metrics::Metrics;
use crate::wasm::{Host, ModuleSet};
use crate::xapi::store::{Store, StoreError};
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("wasm engine: {0}")]
    Engine(String),
    #[error(transparent)]
    Roster(#[from] crate::roster::RosterError),
}

/// What the node serves right now.
#[derive(Default)]
pub struct ModuleState {
    /// The set requests run on; `None` until one has loaded.
    pub set: Option<Arc<ModuleSet>>,
    /// Why the last load or reload failed, if it did.
    pub last_error: Option<String>,
}

pub struct Node {
    pub cfg: Config,
    pub store: Store,
    pub host: Arc<Host>,
    pub modules: ArcSwap<ModuleState>,
    pub auth: Arc<Auth>,
    /// The people who sign in with a browser (one connection; calls go
    /// through [`Node::roster`] on a blocking thread).
    roster: Arc<std::sync::Mutex<crate::roster::Roster>>,
    pub metrics: Arc<Metrics>,
    /// Sessions recently read from the roster (see `http::session`).
    pub sessions: crate::http::session::SessionCache,
    pub sync: crate::sync::SyncState,
    /// Requests on the public listener being answered now; sync paces its
    /// drain while there are any.
    pub in_flight: std::sync::atomic::AtomicUsize,
    /// Open cmi5 launches: fetch URLs and their tokens.
    pub launches: crate::content::cmi5::Launches,
    /// Open SCORM launches (the player page's secrets).
    pub players: crate::content::scorm::Players,
    /// Small package files kept in memory by sha256 (content listener).
    pub package_files: crate::content::serve::KeptFiles,
    reload_lock: tokio::sync::Mutex<()>,
}

/// The result of a successful reload, for the admin API and logs.
#[derive(Debug, serde::Serialize)]
pub struct Reloaded {
    pub bundle_version: String,
    /// The content version served, when content comes from an installed content directory.
    pub content_version: Option<String>,
    pub modules: Vec<(String, String)>,
}

impl Node {
    /// Opens the store and builds the engine. Modules are not loaded here:
    /// call [`Node::reload`] (the server does, right after it starts
    /// listening), so /healthz answers while they load or when they are broken.
    pub fn new(cfg: Config) -> Result<Arc<Node>, StartError> {
        let metrics = Arc::new(Metrics::default());
        let outbox = cfg.upstream.as_ref().map(|_| crate::xapi::store::OutboxConfig { limit: cfg.outbox_limit });
        let store = Store::open(&cfg.data_dir, cfg.group_commit_max, outbox, metrics.clone())?;
        let cache = match crate::wasm::CodeCache::open(&cfg.data_dir.join("module-cache"), None) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "no code cache: modules are compiled on every start");
                None
            }
        };
        let host =
            Host::new(cfg.module_limits(), cache, metrics.clone()).map_err(|e| StartError::Engine(format!("{e:#}")))?;
        let auth = Arc::new(Auth::load(cfg.credentials.as_deref(), cfg.credential_scopes.as_deref())?);
        let roster = Arc::new(std::sync::Mutex::new(crate::roster::Roster::open(&cfg.roster_path())?));
        Ok(Arc::new(Node {
            cfg,
            store,
            host: Arc::new(host),
            modules: ArcSwap::from_pointee(ModuleState { set: None, last_error: Some("modules are loading".into()) }),
            auth,
            roster,
            metrics,
            sessions: Default::default(),
            sync: Default::default(),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            launches: Default::default(),
            players: Default::default(),
            package_files: Default::default(),
            reload_lock: tokio::sync::Mutex::new(()),
        }))
    }

    /// Runs `f` on the roster on a blocking thread.
    pub async fn roster<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::roster::Roster) -> Result<T, crate::roster::RosterError> + Send + 'static,
    ) -> Result<T, crate::roster::RosterError> {
        let r = self.roster.clone();
        tokio::task::spawn_blocking(move || f(&r.lock().unwrap_or_else(|p| p.into_inner())))
            .await
            .map_err(|e| crate::roster::RosterError::Db { path: self.cfg.roster_path(), message: e.to_string() })?
    }

    /// The module set to run a request on, or why there is none.
    pub fn current(&self) -> Result<Arc<ModuleSet>, String> {
        let state = self.modules.load();
        state.set.clone().ok_or_else(|| state.last_error.clone().unwrap_or_else(|| "no modules loaded".into()))
    }

    /// Loads the module directory again and swaps it in. Requests already
    /// running finish on the set they started with. On failure the previous
    /// set keeps serving and the reason is kept for /readyz.
    pub async fn reload(self: &Arc<Self>) -> Result<Reloaded, String> {
        let _one_at_a_time = self.reload_lock.lock().await;
        if let Err(e) = self.auth.reload() {
            tracing::error!(error = %e, "credentials not reloaded; the previous ones stay in force");
        }
        let (host, dir, content) = (self.host.clone(), self.cfg.modules.clone(), self.cfg.content.clone());
        let local = self.cfg.local_content_path();
        let loaded = tokio::task::spawn_blocking(move || {
            let mut set = host.load(&dir, Some(&content))?;
            // The compiled code kept: this set's and that of every set the
            // updater still keeps (`slots/` beside `current`: the previous
            // one a rollback returns to, a trial's).
            let mut sets = vec![dir.clone()];
            if let Some(Ok(slots)) = dir.parent().map(|p| std::fs::read_dir(p.join("slots"))) {
                sets.extend(slots.flatten().map(|e| e.path()));
            }
            host.prune_code_cache(&sets.iter().map(std::path::PathBuf::as_path).collect::<Vec<_>>());
            let local = crate::content::local_packages(&local)?;
            let mut ids: Vec<String> = local.keys().cloned().collect();
            ids.sort();
            set.local_packages = ids;
            // Signed content wins over a local package of the same id (the
            // upload refuses such ids; this covers one signed later).
            for (id, files) in local {
                set.packages.entry(id).or_insert(files);
            }
            set.list_packages();
            Ok::<_, crate::wasm::LoadError>(set)
        })
        .await
        .map_err(|e| format!("loader panicked: {e}"))
        .and_then(|r| r.map_err(|e| e.to_string()));
        let previous = self.modules.load_full();
        match loaded {
            Ok(set) => {
                let out = Reloaded {
                    bundle_version: set.manifest.bundle_version.clone(),
                    content_version: set.content_info.as_ref().and_then(|c| c.version.clone()),
                    modules: set.manifest.modules.iter().map(|m| (m.name.clone(), m.version.clone())).collect(),
                };
                tracing::info!(bundle = %out.bundle_version, content = ?out.content_version, dir = %self.cfg.modules.display(), "modules loaded");
                self.modules.store(Arc::new(ModuleState { set: Some(Arc::new(set)), last_error: None }));
                self.metrics.reloads_ok.fetch_add(1, Relaxed);
                self.metrics.modules_ready.store(1, Relaxed);
                Ok(out)
            }
            Err(e) => {
                tracing::error!(error = %e, dir = %self.cfg.modules.display(), "module load failed; previous modules keep serving");
                self.modules.store(Arc::new(ModuleState { set: previous.set.clone(), last_error: Some(e.clone()) }));
                self.metrics.reloads_failed.fetch_add(1, Relaxed);
                self.metrics.modules_ready.store(previous.set.is_some() as u64, Relaxed);
                Err(e)
            }
        }
    }
}
