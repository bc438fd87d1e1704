//! The wasm module host: one wasmtime `Engine` per process with the pooling
//! allocator, one `InstancePre` per module, and a fresh instance for every
//! call, bounded by an epoch deadline and a linear-memory cap.
//!
//! A module directory is loaded as a whole ([`Host::load`]): manifest, every
//! file's size and sha256, ABI version, imports and exports, content pack,
//! then each module's self-test. Any failure refuses the whole set, so the
//! node never serves a mix of versions. Compiled code is cached in the data
//! directory by module hash and engine build, authenticated with a per-node
//! key ([`CodeCache`]), so restarts and reloads of an unchanged module skip
//! compilation and nobody else's code is ever loaded.

pub mod answers;
mod codecache;
pub mod facts;
mod wasi;

pub use codecache::CodeCache;

use lms_abi::{ModuleManifest, Request, Response, SelfTest};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::{
    Caller, Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolingAllocationConfig,
    ResourceLimiter, Store, Trap,
};

use crate::metrics::Metrics;

/// The modules the node's routes call; a set without any of them is refused.
pub const REQUIRED_MODULES: [&str; 3] = ["catalog", "progress", "quiz"];

/// Hard caps on what a module directory may hold, checked before reading.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
pub const MAX_MODULE_BYTES: u64 = 64 << 20;
pub const MAX_CONTENT_BYTES: u64 = 64 << 20;
/// The pages' static files together (CSS, icons, a little script).
pub const MAX_ASSET_BYTES: u64 = 8 << 20;
/// Largest response a module may return.
pub const MAX_RESPONSE_BYTES: u32 = 16 << 20;

/// One epoch tick; deadlines are counted in these.
const TICK: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: u64,
    pub instances: u32,
    /// Baseline ISA instead of the host CPU's features (portable compiled code).
    pub portable_code: bool,
}

/// This binary's own target triple: naming it explicitly makes Wasmtime
/// compile for the architecture's baseline, not the features of this CPU.
fn portable_target() -> String {
    let env = if cfg!(target_env = "musl") { "musl" } else { "gnu" };
    format!("{}-unknown-linux-{env}", std::env::consts::ARCH)
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{path}: manifest: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("{path}: sha256 is {actual}, manifest says {expected}")]
    Hash { path: PathBuf, expected: String, actual: String },
    #[error("module {module}: {message}")]
    Module { module: String, message: String },
    #[error("module {module} failed its self-test: {message}")]
    SelfTest { module: String, message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("no module {0:?} is loaded")]
    NoSuchModule(String),
    #[error("module {module}: every instance slot is busy")]
    Busy { module: String },
    #[error("module {module}: ran past its {timeout_ms} ms deadline and was stopped")]
    Timeout { module: String, timeout_ms: u128 },
    #[error("module {module}: exceeded its {limit_bytes}-byte memory limit and was stopped")]
    MemoryLimit { module: String, limit_bytes: u64 },
    #[error("module {module}: trapped: {message}")]
    Trap { module: String, message: String },
    #[error("module {module}: returned a malformed response: {message}")]
    BadResponse { module: String, message: String },
}

/// Content-pack documents by key, as raw JSON bytes.
pub struct Content {
    docs: HashMap<String, Vec<u8>>,
}

impl Content {
    /// Documents as `lms_content::flatten` makes them.
    pub fn from_docs(docs: std::collections::BTreeMap<String, serde_json::Value>) -> Content {
        Content { docs: docs.into_iter().map(|(k, v)| (k, serde_json::to_vec(&v).expect("json"))).collect() }
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.docs.get(key).map(Vec::as_slice)
    }
}

/// A static file of the module directory, served at `/static/{file}`.
pub struct Asset {
    pub bytes: axum::body::Bytes,
    pub sha256: String,
    pub content_type: &'static str,
}

/// The type a browser is told, by extension; other kinds are refused at load.
fn asset_type(file: &str) -> Option<&'static str> {
    Some(match file.rsplit_once('.')?.1 {
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        _ => return None,
    })
}

struct Loaded {
    pre: InstancePre<CallState>,
    has_initialize: bool,
}

/// A loaded, self-tested module directory. Requests hold an `Arc` to the set
/// they started on, so a reload never pulls modules from under them.
pub struct ModuleSet {
    pub manifest: ModuleManifest,
    pub dir: PathBuf,
    pub self_tests: Vec<(String, SelfTest)>,
    modules: HashMap<String, Loaded>,
    content: Arc<Content>,
    /// Where the content came from when not from the module directory.
    pub content_info: Option<crate::content::ContentInfo>,
    /// Packages added on the node itself (the local content pack), set by
    /// the node after loading.
    pub local_packages: Vec<String>,
    /// Every package whose files the content listener serves (signed and
    /// local), by course id.
    pub packages: crate::content::serve::PackageIndex,
    /// Native courses' media (`/media/...` on the public listener).
    pub media: crate::content::serve::MediaIndex,
    assets: HashMap<String, Asset>,
    /// Answers everyone shares, for this set only.
    pub answers: answers::Answers,
    /// Progress facts and answers per learner, for this set only.
    pub facts: facts::Facts,
}

impl ModuleSet {
    /// Lists the set's launchable packages (`packages`, signed and local) in
    /// the content the modules read, as courses beside the native ones
    /// (`content::package_courses`); a native course of the same id wins.
    pub fn list_packages(&mut self) {
        let extra = crate::content::package_courses(&self.packages);
        if extra.is_empty() {
            return;
        }
        let mut docs = self.content.docs.clone();
        let mut index: lms_content::IndexDoc = match docs.get("index").and_then(|b| serde_json::from_slice(b).ok()) {
            Some(i) => i,
            None => return,
        };
        for (summary, doc) in extra {
            let key = lms_content::course_key(&doc.id);
            if docs.contains_key(&key) {
                continue;
            }
            docs.insert(key, serde_json::to_vec(&doc).expect("json"));
            index.courses.push(summary);
        }
        docs.insert("index".into(), serde_json::to_vec(&index).expect("json"));
        self.content = Arc::new(Content { docs });
    }

    /// The static file `file` (its content-hashed name), if the manifest lists it.
    pub fn asset(&self, file: &str) -> Option<&Asset> {
        self.assets.get(file)
    }
}

struct MemLimiter {
    max: usize,
    hit: bool,
}

impl ResourceLimiter for MemLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.hit = true;
            // Trap rather than return -1: a guest that cannot grow is stopped
            // now, with a cause we can name.
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
        Ok(true)
    }
    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

pub struct CallState {
    content: Arc<Content>,
    limiter: MemLimiter,
    module: Arc<str>,
}

pub struct Host {
    engine: Engine,
    linker: Linker<CallState>,
    limits: Limits,
    cache: Option<CodeCache>,
    metrics: Arc<Metrics>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

fn guest_memory(caller: &mut Caller<'_, CallState>) -> Option<wasmtime::Memory> {
    caller.get_export("memory").and_then(|e| e.into_memory())
}

/// `ptr..ptr+len` when it lies inside a guest memory of `size` bytes. Every
/// host call checks a guest's (pointer, length) with this before it
/// allocates or copies anything: a guest may pass any i32.
pub(crate) fn guest_range(size: usize, ptr: i32, len: i32) -> Option<std::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end <= size).then_some(start..end)
}

fn read_guest(caller: &mut Caller<'_, CallState>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let mem = guest_memory(caller)?;
    let r = guest_range(mem.data_size(&*caller), ptr, len)?;
    Some(mem.data(&*caller)[r].to_vec())
}

impl Host {
    pub fn new(limits: Limits, cache: Option<CodeCache>, metrics: Arc<Metrics>) -> wasmtime::Result<Host> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(limits.instances)
            .total_memories(limits.instances)
            .total_tables(limits.instances)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .max_memory_size(limits.memory_bytes as usize)
            // Reset the first MiBs of a slot with memset instead of madvise:
            // madvise costs a TLB shootdown on every core plus page faults on
            // the next request, which dominated small requests (perf).
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        if limits.portable_code {
            config.target(&portable_target())?;
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        linker.func_wrap(
            lms_abi::IMPORT_MODULE,
            lms_abi::IMPORT_CONTENT_SIZE,
            |mut caller: Caller<'_, CallState>, kp: i32, kl: i32| -> i32 {
                let Some(key) = read_guest(&mut caller, kp, kl) else { return -1 };
                let content = caller.data().content.clone();
                std::str::from_utf8(&key).ok().and_then(|k| content.get(k)).map_or(-1, |d| d.len() as i32)
            },
        )?;
        linker.func_wrap(
            lms_abi::IMPORT_MODULE,
            lms_abi::IMPORT_CONTENT_READ,
            |mut caller: Caller<'_, CallState>, kp: i32, kl: i32, dst: i32| -> i32 {
                let Some(key) = read_guest(&mut caller, kp, kl) else { return -1 };
                let content = caller.data().content.clone();
                let Some(doc) = std::str::from_utf8(&key).ok().and_then(|k| content.get(k)) else {
                    return -1;
                };
                let Some(mem) = guest_memory(&mut caller) else { return -1 };
                match mem.write(&mut caller, dst as u32 as usize, doc) {
                    Ok(()) => doc.len() as i32,
                    Err(_) => -1,
                }
            },
        )?;
        linker.func_wrap(
            lms_abi::IMPORT_MODULE,
            lms_abi::IMPORT_LOG,
            |mut caller: Caller<'_, CallState>, level: i32, p: i32, l: i32| {
                let msg = read_guest(&mut caller, p, l.min(4096)).unwrap_or_default();
                let msg = String::from_utf8_lossy(&msg);
                let module = caller.data().module.clone();
                match level {
                    lms_abi::LOG_ERROR => tracing::error!(%module, "{msg}"),
                    lms_abi::LOG_WARN => tracing::warn!(%module, "{msg}"),
                    lms_abi::LOG_INFO => tracing::info!(%module, "{msg}"),
                    _ => tracing::debug!(%module, "{msg}"),
                }
            },
        )?;
        wasi::add_to_linker(&mut linker)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (e, stop) = (engine.clone(), ticker_stop.clone());
        std::thread::Builder::new().name("lms-epoch".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                e.increment_epoch();
            }
        })?;
        Ok(Host { engine, linker, limits, cache, metrics, ticker_stop })
    }

    /// Loads and self-tests a module directory, with the course content of
    /// `content_dir` when that is a content pack (else the module
    /// directory's own). Blocking (compiles wasm).
    pub fn load(&self, dir: &Path, content_dir: Option<&Path>) -> Result<ModuleSet, LoadError> {
        let manifest_path = dir.join(lms_abi::MANIFEST_FILE);
        let bytes = read_capped(&manifest_path, MAX_MANIFEST_BYTES)?;
        let manifest: ModuleManifest = serde_json::from_slice(&bytes)
            .map_err(|e| LoadError::Manifest { path: manifest_path.clone(), message: e.to_string() })?;
        let bad = |message: String| LoadError::Manifest { path: manifest_path.clone(), message };
        manifest.check_format().map_err(bad)?;
        if manifest.abi != lms_abi::ABI_VERSION {
            return Err(bad(format!("abi {} is not this node's ABI {}", manifest.abi, lms_abi::ABI_VERSION)));
        }
        for required in REQUIRED_MODULES {
            if !manifest.modules.iter().any(|m| m.name == required) {
                return Err(bad(format!("modules: {required:?} is missing")));
            }
        }

        let (content, content_info, packages, media) =
            match content_dir.map(crate::content::load).transpose()?.flatten() {
                Some(l) => (Arc::new(l.content), Some(l.info), l.packages, l.media),
                None => {
                    let content = bundled_content(dir, &manifest, &manifest_path)?;
                    (Arc::new(content), None, Default::default(), Default::default())
                }
            };

        let mut modules = HashMap::new();
        for entry in &manifest.modules {
            if modules.contains_key(&entry.name) {
                return Err(bad(format!("module {:?} is listed twice", entry.name)));
            }
            let path = checked_path(dir, &entry.file, &manifest_path)?;
            let wasm = read_verified(&path, entry.size, &entry.sha256, MAX_MODULE_BYTES)?;
            let module = self.compile(&entry.name, &entry.sha256, &wasm)?;
            let merr = |message: String| LoadError::Module { module: entry.name.clone(), message };
            for export in [
                lms_abi::EXPORT_ABI_VERSION,
                lms_abi::EXPORT_ALLOC,
                lms_abi::EXPORT_HANDLE,
                lms_abi::EXPORT_SELF_TEST,
                "memory",
            ] {
                if module.get_export(export).is_none() {
                    return Err(merr(format!("does not export {export:?}")));
                }
            }
            let pre = self.linker.instantiate_pre(&module).map_err(|e| merr(format!("{e:#}")))?;
            let has_initialize = module.get_export("_initialize").is_some();
            modules.insert(entry.name.clone(), Loaded { pre, has_initialize });
        }
        let assets = load_assets(dir, &manifest, &manifest_path)?;
        let mut set = ModuleSet {
            manifest,
            dir: dir.to_path_buf(),
            self_tests: vec![],
            modules,
            content,
            content_info,
            local_packages: Vec::new(),
            packages,
            media,
            assets,
            answers: Default::default(),
            facts: Default::default(),
        };

        let names: Vec<String> = set.manifest.modules.iter().map(|m| m.name.clone()).collect();
        for name in names {
            let st = self.self_test(&set, &name)?;
            set.self_tests.push((name, st));
        }
        Ok(set)
    }

    /// This engine build's key in the code cache.
    fn engine_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        h.finish()
    }

    /// Drops the cached code of every module not in `sets` (module
    /// directories: the one loaded, the one a rollback would go back to;
    /// unreadable ones count as empty). Best effort: logged, never fatal.
    pub fn prune_code_cache(&self, sets: &[&Path]) {
        let Some(cache) = &self.cache else { return };
        let mut keep = std::collections::HashSet::new();
        for dir in sets {
            let Ok(bytes) = read_capped(&dir.join(lms_abi::MANIFEST_FILE), MAX_MANIFEST_BYTES) else { continue };
            if let Ok(m) = serde_json::from_slice::<ModuleManifest>(&bytes) {
                keep.extend(m.modules.into_iter().map(|e| e.sha256));
            }
        }
        match cache.retain(self.engine_hash(), &keep) {
            Ok(0) => {}
            Ok(freed) => {
                tracing::info!(freed, kept = keep.len(), "code cache: compiled code no set uses any more removed")
            }
            Err(e) => tracing::warn!(error = %e, "code cache: could not remove old entries"),
        }
    }

    fn compile(&self, name: &str, sha256: &str, wasm: &[u8]) -> Result<Module, LoadError> {
        let merr = |message: String| LoadError::Module { module: name.to_string(), message };
        let Some(cache) = &self.cache else {
            return Module::new(&self.engine, wasm).map_err(|e| merr(format!("compile: {e:#}")));
        };
        let engine = self.engine_hash();
        if let Some(code) = cache.get(engine, sha256) {
            // SAFETY: the code carries this node's MAC over this engine
            // build, this module's hash and these bytes: it is our own
            // serialization of this exact module for this exact engine.
            match unsafe { Module::deserialize(&self.engine, &code) } {
                Ok(m) => return Ok(m),
                Err(e) => tracing::warn!(module = name, error = %e, "cached code unusable; recompiling"),
            }
        }
        let module = Module::new(&self.engine, wasm).map_err(|e| merr(format!("compile: {e:#}")))?;
        // The cache is an optimisation: failing to write it is logged, not fatal.
        let write = || -> std::io::Result<()> {
            let code = module.serialize().map_err(std::io::Error::other)?;
            cache.put(engine, sha256, &code)
        };
        if let Err(e) = write() {
            tracing::warn!(module = name, error = %e, "could not cache compiled code");
        }
        Ok(module)
    }

    fn self_test(&self, set: &ModuleSet, name: &str) -> Result<SelfTest, LoadError> {
        let fail = |message: String| LoadError::SelfTest { module: name.to_string(), message };
        let out = self
            .run(set, name, |store, instance| {
                let f = instance.get_typed_func::<(), i64>(&mut *store, lms_abi::EXPORT_SELF_TEST)?;
                f.call(&mut *store, ())
            })
            .map_err(|e| fail(e.to_string()))?;
        let st: SelfTest = serde_json::from_slice(&out).map_err(|e| fail(format!("malformed report: {e}")))?;
        if !st.ok {
            return Err(fail(st.error.clone().unwrap_or_else(|| "no reason given".into())));
        }
        Ok(st)
    }

    /// Runs one request through `module` in a fresh instance. Blocking.
    pub fn call(&self, set: &ModuleSet, module: &str, req: &Request) -> Result<Response, CallError> {
        let input = serde_json::to_vec(req).expect("requests serialize");
        let out = self.run(set, module, |store, instance| {
            let alloc = instance.get_typed_func::<i32, i32>(&mut *store, lms_abi::EXPORT_ALLOC)?;
            let handle = instance.get_typed_func::<(i32, i32), i64>(&mut *store, lms_abi::EXPORT_HANDLE)?;
            let memory =
                instance.get_memory(&mut *store, "memory").ok_or_else(|| wasmtime::Error::msg("no memory export"))?;
            let len = input.len() as i32;
            let ptr = alloc.call(&mut *store, len)?;
            memory.write(&mut *store, ptr as u32 as usize, &input)?;
            handle.call(&mut *store, (ptr, len))
        });
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                self.metrics.module_call(module, e.kind());
                return Err(e);
            }
        };
        let resp = serde_json::from_slice::<Response>(&out).map_err(|e| {
            self.metrics.module_call(module, "bad_response");
            CallError::BadResponse { module: module.to_string(), message: e.to_string() }
        })?;
        if !(100..=599).contains(&resp.status) {
            self.metrics.module_call(module, "bad_response");
            return Err(CallError::BadResponse {
                module: module.to_string(),
                message: format!("status {}", resp.status),
            });
        }
        self.metrics.module_call(module, "ok");
        Ok(resp)
    }

    /// Instantiates `module`, runs `f` (which returns a packed pointer/length)
    /// and copies the bytes it points at out of the instance.
    fn run(
        &self,
        set: &ModuleSet,
        module: &str,
        f: impl FnOnce(&mut Store<CallState>, &wasmtime::Instance) -> wasmtime::Result<i64>,
    ) -> Result<Vec<u8>, CallError> {
        let loaded = set.modules.get(module).ok_or_else(|| CallError::NoSuchModule(module.to_string()))?;
        let state = CallState {
            content: set.content.clone(),
            limiter: MemLimiter { max: self.limits.memory_bytes as usize, hit: false },
            module: Arc::from(module),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let ticks = (self.limits.timeout.as_millis() / TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);

        let t = Instant::now();
        let instance = loaded.pre.instantiate(&mut store).map_err(|e| self.classify(&store, module, e, true))?;
        self.metrics.instantiated(module, t.elapsed());

        let result = (|| {
            if loaded.has_initialize {
                instance.get_typed_func::<(), ()>(&mut store, "_initialize")?.call(&mut store, ())?;
            }
            let packed = f(&mut store, &instance)?;
            let (ptr, len) = lms_abi::unpack(packed);
            if len > MAX_RESPONSE_BYTES {
                return Err(wasmtime::Error::msg(format!("response of {len} bytes is over the limit")));
            }
            let memory =
                instance.get_memory(&mut store, "memory").ok_or_else(|| wasmtime::Error::msg("no memory export"))?;
            let mut out = vec![0u8; len as usize];
            memory.read(&store, ptr as usize, &mut out)?;
            Ok(out)
        })();
        result.map_err(|e| self.classify(&store, module, e, false))
    }

    fn classify(&self, store: &Store<CallState>, module: &str, e: wasmtime::Error, instantiating: bool) -> CallError {
        let module = module.to_string();
        if store.data().limiter.hit {
            return CallError::MemoryLimit { module, limit_bytes: self.limits.memory_bytes };
        }
        if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
            return CallError::Timeout { module, timeout_ms: self.limits.timeout.as_millis() };
        }
        if instantiating && format!("{e:#}").contains("maximum concurrent") {
            return CallError::Busy { module };
        }
        CallError::Trap { module, message: format!("{e:#}") }
    }
}

impl CallError {
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::NoSuchModule(_) => "not_loaded",
            CallError::Busy { .. } => "busy",
            CallError::Timeout { .. } => "timeout",
            CallError::MemoryLimit { .. } => "memory_limit",
            CallError::Trap { .. } => "trap",
            CallError::BadResponse { .. } => "bad_response",
        }
    }
}

/// A manifest file name must name a file directly inside the directory.
fn checked_path(dir: &Path, file: &str, manifest: &Path) -> Result<PathBuf, LoadError> {
    let ok = !file.is_empty() && !file.contains('/') && !file.contains('\\') && file != "." && file != "..";
    if !ok {
        return Err(LoadError::Manifest {
            path: manifest.to_path_buf(),
            message: format!("file {file:?} must be a plain file name inside the module directory"),
        });
    }
    Ok(dir.join(file))
}

fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, LoadError> {
    let ferr = |message: String| LoadError::File { path: path.to_path_buf(), message };
    let meta = std::fs::symlink_metadata(path).map_err(|e| ferr(e.to_string()))?;
    if !meta.is_file() {
        return Err(ferr("not a regular file".into()));
    }
    if meta.len() > cap {
        return Err(ferr(format!("{} bytes is over the {cap}-byte limit", meta.len())));
    }
    std::fs::read(path).map_err(|e| ferr(e.to_string()))
}

fn read_verified(path: &Path, size: u64, sha256: &str, cap: u64) -> Result<Vec<u8>, LoadError> {
    if size > cap {
        return Err(LoadError::File {
            path: path.to_path_buf(),
            message: format!("manifest size {size} is over the {cap}-byte limit"),
        });
    }
    // A file larger than the manifest says is refused before it is read.
    let bytes = read_capped(path, size)?;
    if bytes.len() as u64 != size {
        return Err(LoadError::File {
            path: path.to_path_buf(),
            message: format!("{} bytes, manifest says {size}", bytes.len()),
        });
    }
    let actual = hex::encode(Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(sha256) {
        return Err(LoadError::Hash { path: path.to_path_buf(), expected: sha256.to_string(), actual });
    }
    Ok(bytes)
}

/// Reads and checks every asset: a known type, a name that carries its
/// hash (so its URL can be cached forever), the listed size and sha256.
fn load_assets(dir: &Path, m: &ModuleManifest, manifest: &Path) -> Result<HashMap<String, Asset>, LoadError> {
    let bad = |message: String| LoadError::Manifest { path: manifest.to_path_buf(), message };
    let total: u64 = m.assets.iter().map(|a| a.size).sum();
    if total > MAX_ASSET_BYTES {
        return Err(bad(format!("assets: {total} bytes in all is over the {MAX_ASSET_BYTES}-byte limit")));
    }
    let mut out = HashMap::new();
    for a in &m.assets {
        let path = checked_path(dir, &a.file, manifest)?;
        let content_type = asset_type(&a.file)
            .ok_or_else(|| bad(format!("assets: {:?} is not a css, js, svg, png, ico or webp file", a.file)))?;
        let hash = a.sha256.get(..lms_abi::ASSET_HASH_LEN).unwrap_or("");
        if !a.file.split('.').any(|part| part.eq_ignore_ascii_case(hash)) {
            return Err(bad(format!("assets: {:?} does not carry its hash {hash:?} in its name", a.file)));
        }
        let bytes = read_verified(&path, a.size, &a.sha256, MAX_ASSET_BYTES)?;
        if out
            .insert(a.file.clone(), Asset { bytes: bytes.into(), sha256: a.sha256.to_ascii_lowercase(), content_type })
            .is_some()
        {
            return Err(bad(format!("assets: {:?} is listed twice", a.file)));
        }
    }
    Ok(out)
}

/// The courses when the node has no content pack: a format 1 directory's
/// own (bundles from before content had its own updates), else none yet
/// (a first boot installs the factory modules, then the factory content):
/// an empty catalog.
fn bundled_content(dir: &Path, manifest: &ModuleManifest, manifest_path: &Path) -> Result<Content, LoadError> {
    let Some(entry) = &manifest.content else {
        return Ok(Content::from_docs(lms_content::flatten("", &[]).docs));
    };
    let path = checked_path(dir, &entry.file, manifest_path)?;
    let bytes = read_verified(&path, entry.size, &entry.sha256, MAX_CONTENT_BYTES)?;
    parse_content(&path, &bytes)
}

fn parse_content(path: &Path, bytes: &[u8]) -> Result<Content, LoadError> {
    #[derive(serde::Deserialize)]
    struct Pack {
        format: u32,
        docs: serde_json::Map<String, serde_json::Value>,
    }
    let err = |message: String| LoadError::File { path: path.to_path_buf(), message };
    let pack: Pack = serde_json::from_slice(bytes).map_err(|e| err(format!("content pack: {e}")))?;
    if pack.format != 1 {
        return Err(err(format!("content pack format {} is not 1", pack.format)));
    }
    let docs = pack.docs.into_iter().map(|(k, v)| (k, serde_json::to_vec(&v).expect("json"))).collect();
    Ok(Content { docs })
}
