//! The wasmtime runtime: one `Engine` (pooling allocator, epoch interruption), compiled
//! components cached on disk, an `InstancePre` per plugin, and a fresh `Store` per call with
//! the plugin's memory and compute limits set before the first instruction runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, PoolingAllocationConfig, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::WasiHttpCtx;

use super::bindings::{Plugin, PluginPre, WIT_VERSION};
use super::grants::Grants;
use super::host_impl::{GrantedHosts, RunState};
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
    /// The `ruqi:executor` version it was built for.
    pub contract: String,
    /// The largest memory it asked for while starting and describing itself, in bytes.
    pub memory_at_start: u64,
    pre: PluginPre<RunState>,
}

impl LoadedPlugin {
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
    cache_dir: Option<PathBuf>,
    workdir: Arc<PathBuf>,
    ticker: Option<std::thread::JoinHandle<()>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
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
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::<RunState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        Plugin::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)
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
        Ok(Self { engine, linker, cache_dir, workdir: Arc::new(workdir), ticker: Some(ticker), stop })
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
        let component = {
            let (engine, cache, digest) = (self.engine.clone(), self.cache_dir.clone(), digest.clone());
            tokio::task::spawn_blocking(move || compile_cached(&engine, &bytes, cache.as_deref(), &digest))
                .await
                .map_err(|e| load_err(e.to_string()))?
                .map_err(load_err)?
        };
        let contract = check_version(&self.engine, &component).map_err(|found| PluginError::IncompatibleVersion {
            path: file.display().to_string(),
            found,
            expected: WIT_VERSION.to_owned(),
        })?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| load_err(format!("{e:#}")))?;
        let pre = PluginPre::new(pre).map_err(|e| load_err(format!("{e:#}")))?;
        let grants = Arc::new(grants);
        let mut plugin = LoadedPlugin {
            info: PluginInfo { name: String::new(), version: String::new(), prefixes: Vec::new() },
            file: file.to_owned(),
            digest,
            grants,
            contract,
            memory_at_start: 0,
            pre,
        };
        let mut store = self.new_store(&plugin, "", Duration::from_secs(plugin.grants.cpu_secs));
        let info = async {
            let inst = plugin.pre.instantiate_async(&mut store).await?;
            inst.ruqi_executor_executor().call_describe(&mut store).await
        }
        .await
        .map_err(|e| load_err(format!("describe failed: {e:#}")))?;
        plugin.info = PluginInfo { name: info.name, version: info.version, prefixes: info.prefixes };
        plugin.memory_at_start = store.data().cap.peak as u64;
        Ok(plugin)
    }

    /// A fresh store for one call, limited to `cpu` of guest compute time.
    fn new_store(&self, plugin: &LoadedPlugin, job_id: &str, cpu: Duration) -> Store<RunState> {
        let grants = plugin.grants.clone();
        let mut wasi = WasiCtxBuilder::new();
        if !grants.sockets.is_empty() {
            let allowed: Vec<String> = grants.sockets.clone();
            wasi.allow_tcp(true).socket_addr_check(move |addr, _use| {
                // Binding to 0.0.0.0:0 precedes every connect; the connect itself is checked.
                let ok =
                    addr.port() == 0 && addr.ip().is_unspecified() || allowed.iter().any(|a| *a == addr.to_string());
                Box::pin(async move { ok })
            });
        }
        let state = RunState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            grants: grants.clone(),
            workdir: self.workdir.clone(),
            plugin: Arc::from(plugin.info.name.as_str()),
            job_id: job_id.to_owned(),
            started: Instant::now(),
            host_time: Duration::ZERO,
            cap: MemoryCap { limit: (grants.memory_mb.min(MAX_MEMORY_MB) * 1024 * 1024) as usize, hit: false, peak: 0 },
            http: WasiHttpCtx::new(),
            http_hooks: GrantedHosts::new(grants.clone()),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.cap);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |ctx| {
            if ctx.data().guest_time() > cpu {
                return Err(CpuLimitExceeded(cpu).into());
            }
            // Yield so a busy guest shares its runtime thread with other tasks.
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }

    /// Asks the plugin whether it accepts `cmd`; `Err` carries the plugin's reason (one line,
    /// at most [`MAX_REASON_CHARS`]), or what went wrong running the check. Bounded by the
    /// plugin's `validate_timeout_secs`, not by its run limit: it holds an API request.
    pub async fn validate(&self, plugin: &LoadedPlugin, cmd: &str) -> Result<(), String> {
        let limit = Duration::from_secs(plugin.grants.validate_timeout_secs);
        let mut store = self.new_store(plugin, "", limit.min(Duration::from_secs(plugin.grants.cpu_secs)));
        let result = tokio::time::timeout(limit, async {
            let inst = plugin.pre.instantiate_async(&mut store).await?;
            inst.ruqi_executor_executor().call_validate(&mut store, cmd).await
        })
        .await;
        let reason = match result {
            Ok(Ok(Ok(()))) => return Ok(()),
            Ok(Ok(Err(reason))) => reason,
            Ok(Err(e)) => describe_failure(&store, e).into_output(),
            Err(_) => format!("validating the cmd took longer than {}s (validate_timeout_secs)", limit.as_secs()),
        };
        Err(bounded_line(&reason, MAX_REASON_CHARS))
    }

    /// Executes one run.
    ///
    /// The run is bounded in wall-clock time by the plugin's `timeout_secs`: dropping the
    /// wasmtime call at the deadline abandons the instance (its store is dropped with it).
    /// Every string the plugin returns is cut at its `output_limit`.
    pub async fn execute(&self, plugin: &LoadedPlugin, request: &RunRequest) -> ExecOutcome {
        let mut store = self.new_store(plugin, &request.job_id, Duration::from_secs(plugin.grants.cpu_secs));
        let limit = Duration::from_secs(plugin.grants.timeout_secs);
        let result = tokio::time::timeout(limit, async {
            let inst = plugin.pre.instantiate_async(&mut store).await?;
            inst.ruqi_executor_executor().call_execute(&mut store, request).await
        })
        .await;
        let kept = plugin.grants.output_limit;
        match result {
            Ok(Ok(Ok(outcome))) => {
                ExecOutcome::Finished { success: outcome.success, output: bounded(outcome.output, kept) }
            }
            Ok(Ok(Err(reason))) => ExecOutcome::Declared(bounded(reason, kept)),
            Ok(Err(e)) => describe_failure(&store, e),
            Err(_) => ExecOutcome::Timeout(limit),
        }
    }
}

/// Classifies a wasmtime error: compute limit, memory limit, or another trap.
fn describe_failure(store: &Store<RunState>, e: wasmtime::Error) -> ExecOutcome {
    if let Some(cpu) = e.downcast_ref::<CpuLimitExceeded>() {
        return ExecOutcome::CpuLimit(cpu.0);
    }
    if store.data().cap.hit {
        return ExecOutcome::MemoryLimit(store.data().grants.memory_mb);
    }
    ExecOutcome::Trapped(format!("{e:#}").lines().next().unwrap_or("trap").to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compiles `bytes`, or loads the artifact cached under `cache/<digest>-<engine>.cwasm`.
fn compile_cached(engine: &Engine, bytes: &[u8], cache: Option<&Path>, digest: &str) -> Result<Component, String> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let path = cache.map(|c| c.join(format!("{digest}-{:016x}.cwasm", h.finish())));
    if let Some(p) = &path
        && p.exists()
    {
        // SAFETY: the file was written by `Component::serialize` of this same engine
        // configuration (the name carries its compatibility hash) into our own cache folder;
        // wasmtime additionally checks the header before using it.
        #[allow(unsafe_code)]
        match unsafe { Component::deserialize_file(engine, p) } {
            Ok(c) => return Ok(c),
            Err(e) => tracing::warn!(path = %p.display(), error = %e, "ignoring unusable cached component"),
        }
    }
    let component = Component::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
    if let Some(p) = &path
        && let Ok(serialized) = component.serialize()
    {
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        let written =
            p.parent().map(std::fs::create_dir_all).transpose().and_then(|_| std::fs::write(&tmp, serialized));
        if written.and_then(|_| std::fs::rename(&tmp, p)).is_err() {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!(path = %p.display(), "could not cache compiled component");
        }
    }
    Ok(component)
}

/// Checks that the component exports `ruqi:executor/executor` at a version compatible with
/// ours (same major; for 0.x, same minor): `Ok` and `Err` name the version it was built for.
fn check_version(engine: &Engine, component: &Component) -> Result<String, String> {
    let ty = component.component_type();
    let found: Vec<String> = ty
        .exports(engine)
        .filter_map(|(name, _)| name.strip_prefix("ruqi:executor/executor@").map(str::to_owned))
        .collect();
    let Some(version) = found.first() else {
        return Err("no ruqi:executor/executor export (not a RuQi plugin)".into());
    };
    let parts = |v: &str| -> Vec<u64> { v.split(['.', '-']).take(3).filter_map(|p| p.parse().ok()).collect() };
    let (ours, theirs) = (parts(WIT_VERSION), parts(version));
    let compatible = match (ours.as_slice(), theirs.as_slice()) {
        ([0, a, ..], [0, b, ..]) => a == b,
        ([a, ..], [b, ..]) => a == b,
        _ => false,
    };
    if compatible { Ok(format!("ruqi:executor@{version}")) } else { Err(format!("ruqi:executor@{version}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_from_plugins_are_bounded() {
        assert_eq!(bounded("héllo".into(), 2), "h");
        assert_eq!(bounded("abc".into(), 10), "abc");
        assert_eq!(bounded_line("a\nb\r\u{1b}[31m", 100), "a\\nb\\r\\u{1b}[31m");
        assert_eq!(bounded_line(&"x".repeat(1000), 10), format!("{}…", "x".repeat(10)));
        assert_eq!(bounded_line("如期而至", 6), "如期…");
    }
}
