//! The registry: the plugins loaded from the plugins folder, and choosing one per cmd by
//! the longest matching prefix.
//!
//! The loaded set is an immutable snapshot behind a lock that is held only to clone an `Arc`,
//! so a reload never blocks runs and runs in flight keep the version they started with.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;

use super::grants::Grants;
use super::runtime::{LoadedPlugin, MAX_REASON_CHARS, Runtime, bounded_line};
use super::{ExecOutcome, PluginError, RunRequest};
#[cfg(doc)]
use crate::watch::DEBOUNCE;
use crate::watch::watch_folder;

/// One `.wasm` file of the folder and what became of it.
#[derive(Debug, Clone)]
pub enum PluginStatus {
    /// Loaded and serving.
    Loaded {
        /// the file
        file: PathBuf,
        /// plugin name
        name: String,
        /// plugin version
        version: String,
        /// prefixes served
        prefixes: Vec<String>,
        /// the contract version it was built for (`ruqi:executor@0.1.0`)
        contract: String,
        /// grants, one line
        grants: String,
    },
    /// Not loaded (a previous version of the same file may still be serving).
    Failed {
        /// the file
        file: PathBuf,
        /// why
        error: String,
    },
}

#[derive(Default)]
struct Snapshot {
    /// By file, in file-name order.
    plugins: BTreeMap<PathBuf, Arc<LoadedPlugin>>,
    failures: BTreeMap<PathBuf, String>,
    /// Prefix → plugin, longest first.
    prefixes: Vec<(String, Arc<LoadedPlugin>)>,
}

/// See the module doc.
pub struct Registry {
    runtime: Arc<Runtime>,
    dir: PathBuf,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Serialises reloads (the watcher and explicit calls).
    reloading: tokio::sync::Mutex<()>,
    /// Files of the folder a reload is reading or compiling that serve nothing yet, by name.
    loading: std::sync::Mutex<BTreeSet<String>>,
    /// Where runs are counted, once set.
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

impl Registry {
    /// Loads every `*.wasm` in `dir`. A missing folder is an error; a bad plugin is not (it is
    /// reported in [`Registry::statuses`] and the log).
    pub async fn open(runtime: Arc<Runtime>, dir: PathBuf) -> Result<Self, PluginError> {
        if !dir.is_dir() {
            return Err(PluginError::Folder { path: dir.display().to_string(), reason: "not a directory".into() });
        }
        let registry = Self {
            runtime,
            dir,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            reloading: tokio::sync::Mutex::new(()),
            loading: std::sync::Mutex::new(BTreeSet::new()),
            metrics: std::sync::OnceLock::new(),
        };
        registry.reload().await?;
        Ok(registry)
    }

    /// The plugins folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rescans the folder: new and changed files are loaded, removed ones dropped; a file that
    /// fails to load keeps its previous version serving. Then the compiled cache is pruned of
    /// entries no file of the folder matches.
    pub async fn reload(&self) -> Result<(), PluginError> {
        let _one_at_a_time = self.reloading.lock().await;
        // File I/O and hashing run on the blocking pool, never on the async runtime.
        let dir = self.dir.clone();
        let files = tokio::task::spawn_blocking(move || wasm_files(&dir))
            .await
            .map_err(|e| PluginError::Folder { path: self.dir.display().to_string(), reason: e.to_string() })??;
        let old = self.current();
        let mut next = Snapshot::default();
        // Until a new file is loaded, a cmd with its prefix is told it is still loading.
        *self.loading.lock().unwrap_or_else(|p| p.into_inner()) =
            files.iter().filter(|f| !old.plugins.contains_key(*f)).map(|f| file_name(f)).collect();
        let mut digests = BTreeSet::new();
        for file in files {
            let loaded = self.load_one(&old, &file, &mut digests).await;
            self.loading.lock().unwrap_or_else(|p| p.into_inner()).remove(&file_name(&file));
            match loaded {
                Ok(p) => {
                    next.plugins.insert(file, p);
                }
                Err(e) => {
                    tracing::error!(file = %file.display(), error = %e, "plugin not loaded");
                    if let Some(prev) = old.plugins.get(&file) {
                        next.plugins.insert(file.clone(), prev.clone());
                    }
                    next.failures.insert(file, e.to_string());
                }
            }
        }
        // Prefix table: first file (by name) wins a contested prefix; the other is refused.
        let mut owner: BTreeMap<String, Arc<LoadedPlugin>> = BTreeMap::new();
        let mut refused = Vec::new();
        for (file, p) in &next.plugins {
            let clash = p.info.prefixes.iter().find_map(|pre| owner.get(pre).map(|o| (pre.clone(), o.clone())));
            if let Some((prefix, first)) = clash {
                let e = PluginError::DuplicatePrefix {
                    prefix,
                    first: first.info.name.clone(),
                    second: p.info.name.clone(),
                };
                tracing::error!(file = %file.display(), error = %e, "plugin not loaded");
                refused.push((file.clone(), e.to_string()));
                continue;
            }
            for pre in &p.info.prefixes {
                owner.insert(pre.clone(), p.clone());
            }
        }
        for (file, e) in refused {
            next.plugins.remove(&file);
            next.failures.insert(file, e);
        }
        next.prefixes = owner.into_iter().collect();
        next.prefixes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        for p in next.plugins.values() {
            if !old.plugins.values().any(|o| Arc::ptr_eq(o, p)) {
                tracing::info!(plugin = %p.info.name, version = %p.info.version, prefixes = ?p.info.prefixes, "plugin loaded");
            }
        }
        // The cache keeps an entry for every file of the folder and every plugin serving.
        digests.extend(next.plugins.values().map(|p| p.digest.clone()));
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        let runtime = self.runtime.clone();
        if let Ok(pruned) = tokio::task::spawn_blocking(move || runtime.prune_cache(&digests)).await
            && !pruned.is_empty()
        {
            tracing::info!(entries = ?pruned, "compiled plugins no plugin file matches removed from the cache");
        }
        Ok(())
    }

    /// Watches the plugins folder and reloads when a `.wasm` or `.toml` file is added, changed
    /// or removed, until `cancel`. Changes take effect [`DEBOUNCE`] after the folder goes quiet.
    pub fn watch(self: &Arc<Self>, cancel: CancellationToken) -> Result<tokio::task::JoinHandle<()>, PluginError> {
        let this = self.clone();
        watch_folder(&self.dir, &["wasm", "toml"], cancel, move || {
            let this = this.clone();
            async move {
                tracing::info!(dir = %this.dir.display(), "plugins folder changed, reloading");
                if let Err(e) = this.reload().await {
                    tracing::error!(error = %e, "plugins folder reload failed; the loaded plugins keep serving");
                }
            }
        })
        .map_err(|e| PluginError::Folder { path: self.dir.display().to_string(), reason: e.to_string() })
    }

    /// Loads `file` with its grants, reusing the loaded version when neither changed; adds the
    /// file's digest to `digests`.
    async fn load_one(
        &self,
        old: &Snapshot,
        file: &Path,
        digests: &mut BTreeSet<String>,
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        let (dir, path, output_limit) = (self.dir.clone(), file.to_owned(), self.runtime.output_limit());
        let read = tokio::task::spawn_blocking(move || {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            let grants = Grants::load(&dir, &stem)?.with_default_output_limit(output_limit);
            let (bytes, digest) = Runtime::read_file(&path)?;
            Ok::<_, PluginError>((grants, bytes, digest))
        })
        .await
        .map_err(|e| PluginError::Load { path: file.display().to_string(), reason: e.to_string() })?;
        let (grants, bytes, digest) = read?;
        digests.insert(digest.clone());
        if let Some(prev) = old.plugins.get(file)
            && prev.digest == digest
            && *prev.grants == grants
        {
            return Ok(prev.clone());
        }
        Ok(Arc::new(self.runtime.load(file, bytes, digest, grants).await?))
    }

    /// Every `.wasm` file and its state, in file-name order.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        let snap = self.current();
        let mut out: Vec<PluginStatus> = snap
            .plugins
            .iter()
            .filter(|(f, _)| !snap.failures.contains_key(*f))
            .map(|(file, p)| PluginStatus::Loaded {
                file: file.clone(),
                name: p.info.name.clone(),
                version: p.info.version.clone(),
                prefixes: p.info.prefixes.clone(),
                contract: p.contract.clone(),
                grants: p.grants.summary(),
            })
            .collect();
        out.extend(
            snap.failures.iter().map(|(file, error)| PluginStatus::Failed { file: file.clone(), error: error.clone() }),
        );
        out.sort_by(|a, b| status_file(a).cmp(status_file(b)));
        out
    }

    /// The plugin serving `cmd`, as runs and `validate` choose it.
    pub fn select(&self, cmd: &str) -> Option<Arc<LoadedPlugin>> {
        self.serving(cmd).ok()
    }

    /// The plugin serving `cmd`, or why none does. A cmd that starts like a prefix (`word:`)
    /// that no plugin claims is not handed to the empty-prefix fallback (shell-bridge would
    /// answer with RuQi's script reason, which says nothing about the prefix): the reason names
    /// the prefix, and the files still loading. RuQi 1.x sent every cmd starting with `http`
    /// to HTTP, so those keep their 1.x treatment.
    fn serving(&self, cmd: &str) -> Result<Arc<LoadedPlugin>, String> {
        let snap = self.current();
        let found = snap.prefixes.iter().find(|(pre, _)| cmd.starts_with(pre.as_str()));
        match (found, unclaimed_prefix(cmd)) {
            (Some((pre, p)), _) if !pre.is_empty() => Ok(p.clone()),
            (_, Some(prefix)) => {
                let loading = self.loading.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let mut reason = format!("no plugin serves the cmd prefix {prefix:?}");
                if !loading.is_empty() {
                    reason
                        .push_str(&format!(" (still loading: {})", loading.into_iter().collect::<Vec<_>>().join(", ")));
                }
                Err(bounded_line(&reason, MAX_REASON_CHARS))
            }
            (Some((_, p)), None) => Ok(p.clone()),
            (None, None) => Err(ExecOutcome::NoPlugin(String::new()).reason()),
        }
    }

    /// Asks the serving plugin to validate `cmd`; `Err` is the reason to show the caller.
    pub async fn validate(&self, cmd: &str) -> Result<(), String> {
        let p = self.serving(cmd)?;
        self.runtime.validate(&p, cmd).await
    }

    /// Counts runs into `metrics` from now on.
    pub fn set_metrics(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Executes a run with the plugin serving its cmd.
    pub async fn execute(&self, request: &RunRequest) -> ExecOutcome {
        self.execute_controlled(request, None).await
    }

    /// [`Registry::execute`] steered by `control`: its commands get the run's environment, print
    /// to its live output, and are stopped (SIGTERM, then SIGKILL after the grace) when it is.
    pub async fn execute_controlled(
        &self,
        request: &RunRequest,
        control: Option<&crate::run::RunControl>,
    ) -> ExecOutcome {
        let p = match self.serving(&request.cmd) {
            Ok(p) => p,
            Err(reason) => {
                let outcome = ExecOutcome::NoPlugin(reason);
                tracing::info!(job_id = %request.job_id, run_id = %request.run_id, outcome = outcome.label(), "run");
                if let Some(m) = self.metrics.get() {
                    m.run_finished("-", outcome.label(), 0.0);
                }
                return outcome;
            }
        };
        let metrics = self.metrics.get();
        if let Some(m) = metrics {
            m.runs_started.get_or_create(&crate::metrics::PluginLabel { plugin: p.info.name.clone() }).inc();
        }
        let started = std::time::Instant::now();
        let outcome = self.runtime.execute(&p, request, control).await;
        let seconds = started.elapsed().as_secs_f64();
        if let Some(m) = metrics {
            m.run_finished(&p.info.name, outcome.label(), seconds);
        }
        // The one line per run operators read (and log shippers parse).
        tracing::info!(
            job_id = %request.job_id,
            run_id = %request.run_id,
            plugin = %p.info.name,
            duration_s = seconds,
            outcome = outcome.label(),
            "run"
        );
        outcome
    }

    /// Plugins loaded and files that failed to load.
    pub fn counts(&self) -> (usize, usize) {
        let snap = self.current();
        (
            snap.plugins.len() - snap.plugins.keys().filter(|f| snap.failures.contains_key(*f)).count(),
            snap.failures.len(),
        )
    }
}

/// The prefix-shaped start of `cmd` (`dingtalk:` of `dingtalk:hi`: a word of letters, digits,
/// `-`, `_`, `.` or `+`, starting with a letter, then a colon), unless the word starts with `http`
/// (RuQi 1.x's HTTP cmds).
fn unclaimed_prefix(cmd: &str) -> Option<&str> {
    let (word, _) = cmd.split_once(':')?;
    let shaped = word.starts_with(|c: char| c.is_ascii_alphabetic())
        && word.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'));
    (shaped && !word.starts_with("http")).then(|| &cmd[..=word.len()])
}

fn file_name(file: &Path) -> String {
    file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The `*.wasm` files of `dir`, in name order (blocking).
fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, PluginError> {
    let folder_err = |e: std::io::Error| PluginError::Folder { path: dir.display().to_string(), reason: e.to_string() };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(folder_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn status_file(s: &PluginStatus) -> &Path {
    match s {
        PluginStatus::Loaded { file, .. } | PluginStatus::Failed { file, .. } => file,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_shaped_cmds() {
        let cases = [
            ("dingtalk:hi", Some("dingtalk:")),
            ("notify.v2:x y", Some("notify.v2:")),
            ("echo:", Some("echo:")),
            ("bash scripts/a.sh", None),
            ("python a.py x:y", None),
            ("echo x:y", None),
            ("http://example.org/", None),
            ("httpfoo:x", None),
            ("/topic#data", None),
            (":x", None),
            ("9x:y", None),
            (" dingtalk:hi", None),
        ];
        for (cmd, want) in cases {
            assert_eq!(unclaimed_prefix(cmd), want, "{cmd}");
        }
    }
}
