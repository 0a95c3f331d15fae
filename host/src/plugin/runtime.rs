//! The wasmtime runtime: one `Engine` (pooling allocator, epoch interruption), compiled
//! components cached on disk, an `InstancePre` per plugin, and a fresh `Store` per call with
//! the plugin's memory and compute limits set before the first instruction runs.
//!
//! A run never reuses an instance, but need not wait for one to be made: after a plugin's
//! run, the next run's instance is made in the background ([`Spare`]) and called once with
//! `describe`, so instantiation and the guest's first-call set-up (each about half a
//! millisecond for a Python or JavaScript component) are off the path a run's `cmd_cost`
//! measures.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, PoolingAllocationConfig, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::WasiHttpCtx;

use super::bindings::{Plugin, v0_1, v0_2};
use super::cache::{self, Cache, ChildFailure, Compiler};
use super::contract::{self, Contract, Instance, Pre};
use super::grants::Grants;
use super::host_impl::{GrantedHosts, Pools, RunState};
use super::stdio::{self, Call, Capture, Stream};
use super::{ExecOutcome, PluginError, PluginInfo, RunRequest};

/// How often the epoch advances; the granularity of compute-time checks.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Instances that may exist at once (pool size); concurrent runs beyond it wait.
const POOL_INSTANCES: u32 = 256;
/// Largest memory any plugin may be granted.
pub const MAX_MEMORY_MB: u64 = 1024;
/// Bytes of each pooled linear memory reset in place (not returned to the kernel) when a run ends.
const KEEP_RESIDENT: usize = 2 << 20;
/// Longest reason a `validate` may give: it becomes the one-line `x-reason` header.
pub const MAX_REASON_CHARS: usize = 300;

/// Cuts `s` to at most `limit` bytes, on a character boundary.
pub(super) fn bounded(mut s: String, limit: usize) -> String {
    if s.len() > limit {
        let mut end = limit;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The last `limit` bytes of `s` at most, from a character boundary.
pub(super) fn bounded_tail(s: &str, limit: usize) -> String {
    let mut start = s.len().saturating_sub(limit);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_owned()
}

/// `s` as one line of at most `limit` bytes: control characters (line breaks included) are
/// shown escaped, so a plugin's text can neither forge log lines nor break a header.
pub(crate) fn bounded_line(s: &str, limit: usize) -> String {
    let mut out = String::with_capacity(s.len().min(limit));
    for c in s.chars() {
        let piece: String = if c.is_control() { c.escape_default().collect() } else { c.into() };
        if out.len() + piece.len() > limit {
            out.push('…');
            break;
        }
        out.push_str(&piece);
    }
    out
}

/// Error raised from the epoch callback when a run used up its compute time.
#[derive(Debug, thiserror::Error)]
#[error("plugin exceeded its compute time limit of {0:?}")]
struct CpuLimitExceeded(Duration);

/// A loaded plugin: what it said about itself, its grants, and its pre-linked component.
pub struct LoadedPlugin {
    /// From `describe`.
    pub info: PluginInfo,
    /// The `.wasm` file it was loaded from.
    pub file: PathBuf,
    /// SHA-256 of the file.
    pub digest: String,
    /// What the operator granted it.
    pub grants: Arc<Grants>,
    /// The `ruqi:executor` version it was built for (`ruqi:executor@0.1.0`).
    pub contract: String,
    /// The largest memory it asked for while starting and describing itself, in bytes.
    pub memory_at_start: u64,
    /// Its grants file as operators name it, `plugins/NAME.toml` (the folder's own name).
    pub grants_file: String,
    /// The interfaces it imports (`wasi:cli/environment@0.2.0`, …), in its own order.
    pub imports: Vec<String>,
    pre: Pre,
    spare: Arc<Spare>,
    /// Its kept-alive HTTP and Redis connections (closed when this load of it is dropped).
    pools: Pools,
}

/// A fresh instance made before the run it is for: its store, and the bindings to call it.
struct Ready {
    store: Store<RunState>,
    instance: Instance,
}

/// The instance a plugin keeps ready for its next run (one at most). Each instance serves one
/// run and is dropped after it, as without a spare.
#[derive(Default)]
struct Spare(std::sync::Mutex<Slot>);

/// Where a plugin's next instance stands.
#[derive(Default)]
enum Slot {
    /// None is ready, none is being made.
    #[default]
    Idle,
    /// A task is making one (it holds the [`Claim`]).
    Making,
    Ready(Ready),
}

impl Spare {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ready instance, if there is one.
    fn take(&self) -> Option<Ready> {
        let mut slot = self.slot();
        match std::mem::take(&mut *slot) {
            Slot::Ready(ready) => Some(ready),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// The right to make the next instance, unless one is ready or being made.
    fn claim(self: &Arc<Self>) -> Option<Claim> {
        let mut slot = self.slot();
        matches!(*slot, Slot::Idle).then(|| {
            *slot = Slot::Making;
            Claim(self.clone())
        })
    }
}

/// A task's claim to make a plugin's next instance: it becomes [`Slot::Ready`] when the
/// instance is made, and goes back to [`Slot::Idle`] when dropped without one (the making
/// failed, or panicked).
struct Claim(Arc<Spare>);

impl Claim {
    fn fulfil(self, ready: Ready) {
        *self.0.slot() = Slot::Ready(ready);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut slot = self.0.slot();
        if matches!(*slot, Slot::Making) {
            *slot = Slot::Idle;
        }
    }
}

impl LoadedPlugin {
    /// The contract version it was built for, as this host speaks it.
    pub fn contract_kind(&self) -> Contract {
        self.pre.contract()
    }

    /// Whether an instance is ready for this plugin's next run (see [`Runtime::execute`]).
    pub fn spare_ready(&self) -> bool {
        matches!(*self.spare.slot(), Slot::Ready(_))
    }

    /// Why a memory limit of `granted_mb` MiB is too small for the plugin to start, if it is.
    pub fn start_memory_refusal(&self, granted_mb: u64) -> Option<String> {
        (self.initial_memory_mib() > granted_mb).then(|| {
            format!(
                "it needs {} MiB of memory at start, more than its memory limit of {granted_mb} MiB (raise memory_mb in {})",
                self.initial_memory_mib(),
                self.grants_file
            )
        })
    }

    /// [`LoadedPlugin::memory_at_start`] in MiB, rounded up.
    pub fn initial_memory_mib(&self) -> u64 {
        self.memory_at_start.div_ceil(1024 * 1024)
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin").field("info", &self.info).field("file", &self.file).finish_non_exhaustive()
    }
}

/// The per-store limiter: caps memory growth and remembers that it did.
pub(super) struct MemoryCap {
    pub(super) limit: usize,
    pub(super) hit: bool,
    /// The most memory asked for so far, in bytes (each memory on its own).
    pub(super) peak: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        self.peak = self.peak.max(desired);
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The engine, linker and settings shared by all plugins.
pub struct Runtime {
    engine: Engine,
    linker: Linker<RunState>,
    cache: Option<Cache>,
    compiler: Compiler,
    workdir: Arc<PathBuf>,
    ticker: Option<std::thread::JoinHandle<()>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// The output limit of a plugin whose grants set none (the node's `--run-output-limit`).
    output_limit: usize,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

impl Runtime {
    /// Builds the engine. `cache_dir` keeps compiled components between starts; `workdir` is
    /// where granted commands run and relative paths resolve.
    pub fn new(workdir: PathBuf, cache_dir: Option<PathBuf>) -> Result<Self, PluginError> {
        let engine = engine()?;
        let mut linker = Linker::<RunState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        // Every contract's `host` interface, side by side: their names differ by version.
        Plugin::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        v0_2::Plugin::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        v0_1::Plugin::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Engine(format!("{e:#}")))?;

        // Epoch ticker: a plain thread, so a guest hogging every runtime worker cannot starve it.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ticker = {
            let (engine, stop) = (engine.clone(), stop.clone());
            std::thread::Builder::new()
                .name("ruqi-epoch".into())
                .spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| PluginError::Engine(e.to_string()))?
        };
        let compiler = if cache_dir.is_some() { Compiler::for_this_process() } else { Compiler::InProcess };
        let cache = cache_dir.map(|dir| Cache::new(dir, &engine));
        Ok(Self {
            engine,
            linker,
            cache,
            compiler,
            workdir: Arc::new(workdir),
            ticker: Some(ticker),
            stop,
            output_limit: super::grants::DEFAULT_OUTPUT_LIMIT,
        })
    }

    /// Gives plugins whose grants set no `output_limit` this one (the node's run output limit).
    pub fn with_output_limit(mut self, limit: usize) -> Self {
        self.output_limit = limit;
        self
    }

    /// The output limit of a plugin whose grants set none.
    pub fn output_limit(&self) -> usize {
        self.output_limit
    }

    /// Compiles components with `compiler` when the cache has none (the default: a child
    /// `ruqi` process when this is the `ruqi` binary and there is a cache, else in process).
    pub fn with_compiler(mut self, compiler: Compiler) -> Self {
        self.compiler = compiler;
        self
    }

    /// `ruqi plugin compile`: compiles `bytes` for this host's engine and writes them to the
    /// cache folder `cache_dir`; returns the entry written (blocking).
    pub fn compile_to_cache(bytes: &[u8], cache_dir: &Path) -> Result<PathBuf, PluginError> {
        let engine = engine()?;
        let cache = Cache::new(cache_dir.to_owned(), &engine);
        let digest = hex(&Sha256::digest(bytes));
        cache::compile_to(&engine, bytes, &cache, &digest)
            .map_err(|reason| PluginError::Load { path: "-".into(), reason })
    }

    /// Removes the cache entries no file digest in `keep` matches, and those of other builds
    /// of ruqi; returns their names (blocking).
    pub fn prune_cache(&self, keep: &BTreeSet<String>) -> Vec<String> {
        self.cache.as_ref().map(|c| c.prune(keep)).unwrap_or_default()
    }

    /// The work directory commands run in.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// Reads a plugin file and its SHA-256 (blocking file I/O: call it off the async runtime).
    pub fn read_file(file: &Path) -> Result<(Vec<u8>, String), PluginError> {
        let bytes = std::fs::read(file)
            .map_err(|e| PluginError::Load { path: file.display().to_string(), reason: e.to_string() })?;
        let digest = hex(&Sha256::digest(&bytes));
        Ok((bytes, digest))
    }

    /// Reads `file` (on the blocking pool) and loads it: [`Runtime::load`] for one file.
    pub async fn load_file(&self, file: &Path, grants: Grants) -> Result<LoadedPlugin, PluginError> {
        let path = file.to_owned();
        let (bytes, digest) = tokio::task::spawn_blocking(move || Self::read_file(&path))
            .await
            .map_err(|e| PluginError::Load { path: file.display().to_string(), reason: e.to_string() })??;
        self.load(file, bytes, digest, grants).await
    }

    /// Compiles `bytes` (the content of `file`, with its `digest` from [`Runtime::read_file`]),
    /// or loads them from the cache, checks the contract version, pre-links, and asks the
    /// plugin to `describe` itself.
    pub async fn load(
        &self,
        file: &Path,
        bytes: Vec<u8>,
        digest: String,
        grants: Grants,
    ) -> Result<LoadedPlugin, PluginError> {
        let load_err = |reason: String| PluginError::Load { path: file.display().to_string(), reason };
        let component = self.component(file, bytes, &digest).await.map_err(load_err)?;
        let (kind, contract) = contract::detect(&self.engine, &component).map_err(|found| {
            PluginError::IncompatibleVersion { path: file.display().to_string(), found, spoken: Contract::spoken() }
        })?;
        let imports = component.component_type().imports(&self.engine).map(|(name, _)| name.to_owned()).collect();
        let pre = self.linker.instantiate_pre(&component).map_err(|e| load_err(format!("{e:#}")))?;
        let pre = Pre::new(kind, pre).map_err(|e| load_err(format!("{e:#}")))?;
        let grants = Arc::new(grants);
        let mut plugin = LoadedPlugin {
            // Until it has described itself, the plugin is named after its file.
            info: PluginInfo { name: file_stem(file).to_owned(), version: String::new(), prefixes: Vec::new() },
            file: file.to_owned(),
            digest,
            grants,
            contract,
            memory_at_start: 0,
            grants_file: grants_file(file),
            imports,
            pre,
            spare: Arc::default(),
            pools: Pools::default(),
        };
        let mut store = self.new_store(&plugin, "", Duration::from_secs(plugin.grants.cpu_secs));
        let info = async {
            let inst = plugin.pre.instantiate(&mut store).await?;
            inst.describe(&mut store).await
        }
        .await;
        let (_, stderr) = self.log_streams(&plugin, &store, Call::Describe);
        plugin.memory_at_start = store.data().cap.peak as u64;
        let info = match info {
            Ok(info) => info,
            Err(_) if store.data().cap.hit => {
                let granted = plugin.grants.memory_mb.min(MAX_MEMORY_MB);
                return Err(load_err(plugin.start_memory_refusal(granted).unwrap_or_default()));
            }
            Err(e) => {
                let failure = failure(&plugin, &store, e, &stderr.text);
                return Err(load_err(format!("describe failed: {}", failure.reason())));
            }
        };
        plugin.info = info;
        Ok(plugin)
    }

    /// The compiled component of `bytes` (the content of `file`): from the cache, else
    /// compiled by the child compiler into the cache and loaded from there, else compiled here.
    async fn component(&self, file: &Path, bytes: Vec<u8>, digest: &str) -> Result<Component, String> {
        let join = |e: tokio::task::JoinError| e.to_string();
        let cached = || {
            let (engine, cache, digest) = (self.engine.clone(), self.cache.clone(), digest.to_owned());
            tokio::task::spawn_blocking(move || cache.and_then(|c| c.get(&engine, &digest)))
        };
        if let Some(c) = cached().await.map_err(join)? {
            return Ok(c);
        }
        if let (Compiler::Child(exe), Some(cache)) = (&self.compiler, &self.cache) {
            let started = Instant::now();
            match cache::compile_in_child(exe, &bytes, cache, digest).await {
                Ok(()) => {
                    let seconds = started.elapsed().as_secs_f64();
                    tracing::info!(file = %file.display(), seconds, "plugin compiled in a child process");
                    if let Some(c) = cached().await.map_err(join)? {
                        return Ok(c);
                    }
                    tracing::warn!(file = %file.display(), "the compiled plugin is unusable; compiling in this process");
                }
                Err(ChildFailure::Refused(reason)) => return Err(reason),
                Err(ChildFailure::Unavailable(error)) => {
                    tracing::warn!(file = %file.display(), %error, "cannot compile in a child process; compiling in this process");
                }
            }
        }
        let (engine, cache, digest) = (self.engine.clone(), self.cache.clone(), digest.to_owned());
        tokio::task::spawn_blocking(move || cache::compile_here(&engine, &bytes, cache.as_ref(), &digest))
            .await
            .map_err(join)?
    }

    /// Logs what the guest wrote to stdout and stderr during `call` (see [`stdio::log`]) and
    /// returns it.
    fn log_streams(
        &self,
        plugin: &LoadedPlugin,
        store: &Store<RunState>,
        call: Call<'_>,
    ) -> (stdio::Captured, stdio::Captured) {
        let (out, err) = (store.data().stdout.captured(), store.data().stderr.captured());
        let limit = plugin.grants.output_limit;
        stdio::log(&plugin.info.name, call, Stream::Stdout, &out, limit);
        stdio::log(&plugin.info.name, call, Stream::Stderr, &err, limit);
        (out, err)
    }

    /// A fresh store for one call of `plugin`, limited to `cpu` of guest compute time.
    fn new_store(&self, plugin: &LoadedPlugin, job_id: &str, cpu: Duration) -> Store<RunState> {
        new_store(&self.engine, &self.workdir, &plugin.grants, &plugin.pools, &plugin.info.name, job_id, cpu)
    }

    /// In the background, drops `used` (the store of the run that just ended: its memory is
    /// reset then) and makes the instance `plugin`'s next run will use, unless one is ready or
    /// being made. The cost of both is paid between runs, not by the next one; the new instance
    /// is made after the old one is gone, so it takes the pool slot the old one held (whose
    /// pages are resident already).
    ///
    /// The new instance answers `describe` (a call without effects, as the contract says)
    /// before it is put aside: a guest's first call into a fresh instance pays for the
    /// language runtime's lazy set-up and for the copy-on-write faults of the pages it
    /// touches (Python and JavaScript: about half a millisecond), and `describe` pays it here.
    fn recycle(&self, plugin: &LoadedPlugin, used: Store<RunState>) {
        let Some(claim) = plugin.spare.claim() else {
            // The next instance is ready or being made (runs at once): a task per drop
            // would cost more than the reset it moves.
            drop(used);
            return;
        };
        let cpu = Duration::from_secs(plugin.grants.cpu_secs);
        let (engine, workdir, grants) = (self.engine.clone(), self.workdir.clone(), plugin.grants.clone());
        let pools = plugin.pools.clone();
        let (pre, name) = (plugin.pre.clone(), plugin.info.name.clone());
        tokio::spawn(async move {
            drop(used);
            let mut store = new_store(&engine, &workdir, &grants, &pools, &name, "", cpu);
            // Instantiation runs the guest's start code, `describe` its first call: bounded
            // by the run's compute limit.
            let made = tokio::time::timeout(cpu, async {
                let instance = pre.instantiate(&mut store).await?;
                instance.describe(&mut store).await?;
                Ok::<_, wasmtime::Error>(instance)
            })
            .await;
            match made {
                Ok(Ok(instance)) if !store.data().cap.hit => {
                    // What the guest printed while starting belongs to no run.
                    store.data().stdout.clear();
                    store.data().stderr.clear();
                    claim.fulfil(Ready { store, instance });
                }
                // The next run makes its own instance, and reports what goes wrong.
                Ok(Ok(_)) => tracing::debug!(plugin = %name, "making an instance ahead of a run hit the memory limit"),
                Ok(Err(e)) => tracing::debug!(plugin = %name, error = %e, "cannot make an instance ahead of a run"),
                Err(_) => tracing::debug!(plugin = %name, "making an instance ahead of a run timed out"),
            }
        });
    }

    /// Asks the plugin whether it accepts `cmd`; `Err` carries the plugin's reason (one line,
    /// at most [`MAX_REASON_CHARS`]), or what went wrong running the check. Bounded by the
    /// plugin's `validate_timeout_secs`, not by its run limit: it holds an API request.
    pub async fn validate(&self, plugin: &LoadedPlugin, cmd: &str) -> Result<(), String> {
        let limit = Duration::from_secs(plugin.grants.validate_timeout_secs);
        let mut store = self.new_store(plugin, "", limit.min(Duration::from_secs(plugin.grants.cpu_secs)));
        let result = tokio::time::timeout(limit, async {
            let inst = plugin.pre.instantiate(&mut store).await?;
            inst.validate(&mut store, cmd).await
        })
        .await;
        let (_, stderr) = self.log_streams(plugin, &store, Call::Validate { cmd });
        let reason = match result {
            Ok(Ok(Ok(()))) => return Ok(()),
            Ok(Ok(Err(_)) | Err(_)) if store.data().cap.hit => memory_limit(plugin, String::new()).reason(),
            Ok(Ok(Err(reason))) => reason,
            Ok(Err(e)) => failure(plugin, &store, e, &stderr.text).reason(),
            Err(_) => format!("validating the cmd took longer than {}s (validate_timeout_secs)", limit.as_secs()),
        };
        Err(bounded_line(&reason, MAX_REASON_CHARS))
    }

    /// Executes one run, in the instance made for it ahead of time when there is one (see
    /// [`Runtime::recycle`]), else in one made now. Either way the instance is fresh: no other
    /// run has used it, and its compute-time account starts with the call.
    ///
    /// The run is bounded in wall-clock time by the plugin's `timeout_secs`: dropping the
    /// wasmtime call at the deadline abandons the instance (its store is dropped with it).
    /// Every string the plugin returns is cut at its `output_limit`.
    pub async fn execute(
        &self,
        plugin: &LoadedPlugin,
        request: &RunRequest,
        control: Option<&crate::run::RunControl>,
    ) -> ExecOutcome {
        if let Some(reason) = plugin.pre.contract().refusal(request) {
            return ExecOutcome::Refused(reason);
        }
        let cpu = Duration::from_secs(plugin.grants.cpu_secs);
        let (mut store, ready) = match plugin.spare.take() {
            Some(Ready { mut store, instance }) => {
                store.data_mut().job_id.clone_from(&request.job_id);
                arm(&mut store, cpu);
                (store, Some(instance))
            }
            None => (self.new_store(plugin, &request.job_id, cpu), None),
        };
        store.data_mut().control = control.cloned();
        let limit = Duration::from_secs(plugin.grants.timeout_secs);
        let result = tokio::time::timeout(limit, async {
            let inst = match ready {
                Some(inst) => inst,
                None => plugin.pre.instantiate(&mut store).await?,
            };
            inst.execute(&mut store, request).await
        })
        .await;
        let outcome = self.outcome(plugin, request, &store, result, limit);
        self.recycle(plugin, store);
        outcome
    }

    /// What `execute`'s call ended in.
    fn outcome(
        &self,
        plugin: &LoadedPlugin,
        request: &RunRequest,
        store: &Store<RunState>,
        result: Result<
            wasmtime::Result<Result<super::bindings::ruqi::executor::types::RunOutcome, String>>,
            tokio::time::error::Elapsed,
        >,
        limit: Duration,
    ) -> ExecOutcome {
        let (_, stderr) =
            self.log_streams(plugin, store, Call::Execute { job_id: &request.job_id, fire_time: &request.fire_time });
        let kept = plugin.grants.output_limit;
        let hit_memory_limit = store.data().cap.hit;
        let outcome = match result {
            Ok(Ok(Ok(outcome))) if outcome.success || !hit_memory_limit => {
                ExecOutcome::Finished { success: outcome.success, output: bounded(outcome.output, kept) }
            }
            // The guest turned a refused memory growth into a failure of its own: say what happened.
            Ok(Ok(Ok(outcome))) => memory_limit(plugin, bounded(outcome.output, kept)),
            Ok(Ok(Err(reason))) if hit_memory_limit => memory_limit(plugin, bounded(reason, kept)),
            Ok(Ok(Err(reason))) => ExecOutcome::Declared(bounded(reason, kept)),
            Ok(Err(e)) => failure(plugin, store, e, &stderr.text),
            Err(_) => ExecOutcome::Timeout(limit),
        };
        fit(outcome, kept)
    }
}

/// A fresh store for one call of the plugin `name` with `grants`, limited to `cpu` of guest
/// compute time.
fn new_store(
    engine: &Engine,
    workdir: &Arc<PathBuf>,
    grants: &Arc<Grants>,
    pools: &Pools,
    name: &str,
    job_id: &str,
    cpu: Duration,
) -> Store<RunState> {
    let mut wasi = WasiCtxBuilder::new();
    if !grants.sockets.is_empty() {
        let allowed = grants.clone();
        wasi.allow_tcp(true).socket_addr_check(move |addr, _use| {
            // Binding to 0.0.0.0:0 precedes every connect; the connect itself is checked.
            let ok = addr.port() == 0 && addr.ip().is_unspecified() || allowed.allows_socket(&addr);
            Box::pin(async move { ok })
        });
    }
    let (stdout, stderr) = (Capture::new(grants.output_limit), Capture::new(grants.output_limit));
    wasi.stdout(stdout.clone()).stderr(stderr.clone());
    let state = RunState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        grants: grants.clone(),
        workdir: workdir.clone(),
        plugin: Arc::from(name),
        job_id: job_id.to_owned(),
        started: Instant::now(),
        host_time: Duration::ZERO,
        cap: MemoryCap { limit: (grants.memory_mb.min(MAX_MEMORY_MB) * 1024 * 1024) as usize, hit: false, peak: 0 },
        http: WasiHttpCtx::new(),
        http_hooks: GrantedHosts::new(grants.clone(), pools.http.clone()),
        redis: pools.redis.clone(),
        stdout,
        stderr,
        control: None,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.cap);
    arm(&mut store, cpu);
    store
}

/// Starts the store's compute-time account now, limited to `cpu`: checked at every epoch tick.
fn arm(store: &mut Store<RunState>, cpu: Duration) {
    let state = store.data_mut();
    state.started = Instant::now();
    state.host_time = Duration::ZERO;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |ctx| {
        if ctx.data().guest_time() > cpu {
            return Err(CpuLimitExceeded(cpu).into());
        }
        // Yield so a busy guest shares its runtime thread with other tasks.
        Ok(UpdateDeadline::Yield(1))
    });
}

/// The outcome of a call during which the limiter refused a memory growth; `guest` is what
/// the guest made of it (its own error, its stderr), if anything.
fn memory_limit(plugin: &LoadedPlugin, guest: String) -> ExecOutcome {
    ExecOutcome::MemoryLimit {
        mb: plugin.grants.memory_mb.min(MAX_MEMORY_MB),
        grants_file: plugin.grants_file.clone(),
        guest,
    }
}

/// Classifies a call that ended in a wasmtime error: compute limit, memory limit, or a trap
/// explained by its kind and by what the guest's `stderr` says about it.
fn failure(plugin: &LoadedPlugin, store: &Store<RunState>, e: wasmtime::Error, stderr: &str) -> ExecOutcome {
    if let Some(cpu) = e.downcast_ref::<CpuLimitExceeded>() {
        return ExecOutcome::CpuLimit(cpu.0);
    }
    let limit = plugin.grants.output_limit;
    if store.data().cap.hit {
        return memory_limit(plugin, bounded_tail(stderr.trim_end(), limit));
    }
    let kind = trap_kind(&e);
    let reason = match stdio::cause(stderr) {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind,
    };
    let reason = bounded_line(&reason, limit);
    let stderr = bounded_tail(stderr.trim_start_matches(['\r', '\n']).trim_end(), limit);
    ExecOutcome::Trapped { reason, stderr }
}

/// `outcome` with the guest's text under its first line cut so that the whole output fits in
/// `limit` bytes: a trap's stderr keeps its end, what the guest made of a refused memory growth
/// its start.
fn fit(mut outcome: ExecOutcome, limit: usize) -> ExecOutcome {
    let room = limit.saturating_sub(outcome.reason().len() + 1);
    match &mut outcome {
        ExecOutcome::Trapped { stderr, .. } if stderr.len() > room => *stderr = bounded_tail(stderr, room),
        ExecOutcome::MemoryLimit { guest, .. } if guest.len() > room => *guest = bounded(std::mem::take(guest), room),
        _ => {}
    }
    outcome
}

/// What ended a call, on one line: the wasm trap (``wasm trap: wasm `unreachable` instruction
/// executed``), the guest's `exit`, or else the messages of the error chain without the wasm
/// backtrace (a host call that failed, a result in a shape the host cannot read).
fn trap_kind(e: &wasmtime::Error) -> String {
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return format!("the plugin called exit (status {})", exit.0);
    }
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return trap.to_string();
    }
    let backtrace = e.downcast_ref::<wasmtime::WasmBacktrace>().map(ToString::to_string);
    let parts: Vec<String> = e
        .chain()
        .map(|c| c.to_string())
        .filter(|m| Some(m) != backtrace.as_ref())
        .filter_map(|m| m.lines().next().map(|l| l.trim().to_owned()))
        .filter(|m| !m.is_empty())
        .collect();
    if parts.is_empty() { "trap".into() } else { parts.join(": ") }
}

fn file_stem(file: &Path) -> &str {
    file.file_stem().and_then(|s| s.to_str()).unwrap_or_default()
}

/// `plugins/NAME.toml` for the plugin file `plugins/NAME.wasm`: its grants file, named from
/// its folder as an operator finds it.
fn grants_file(file: &Path) -> String {
    match file.parent().and_then(|d| d.file_name()).and_then(|d| d.to_str()) {
        Some(folder) => format!("{folder}/{}.toml", file_stem(file)),
        None => format!("{}.toml", file_stem(file)),
    }
}

/// The engine every plugin runs in (and `ruqi plugin compile` compiles for: the same
/// configuration, so the compiled code is compatible).
fn engine() -> Result<Engine, PluginError> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 4)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 4)
        .total_stacks(POOL_INSTANCES)
        .max_memories_per_component(4)
        .max_memory_size((MAX_MEMORY_MB * 1024 * 1024) as usize)
        // A run's instance is dropped at its end: reset its slot with `memset` (only the
        // pages it dirtied, found with PAGEMAP_SCAN on Linux ≥ 6.7) instead of `madvise`,
        // whose TLB shootdowns were ~7% of a no-op run's CPU; batch what must be decommitted.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT / 16)
        .decommit_batch_size(16);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool))
        .max_wasm_stack(1 << 20);
    Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_from_plugins_are_bounded() {
        assert_eq!(bounded("héllo".into(), 2), "h");
        assert_eq!(bounded("abc".into(), 10), "abc");
        assert_eq!(bounded_tail("如期而至", 7), "而至");
        assert_eq!(bounded_tail("abc", 10), "abc");
        assert_eq!(bounded_line("a\nb\r\u{1b}[31m", 100), "a\\nb\\r\\u{1b}[31m");
        assert_eq!(bounded_line(&"x".repeat(1000), 10), format!("{}…", "x".repeat(10)));
        assert_eq!(bounded_line("如期而至", 6), "如期…");
    }
}
