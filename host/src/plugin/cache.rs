//! Compiled components: the on-disk cache (`plugins/.cache/<sha256>-<engine>.cwasm`), compiling
//! in a child process, and pruning entries no plugin file matches.
//!
//! Compiling a large component (an 18 MB Python or JavaScript plugin) takes ~18 s of CPU and
//! leaves the compiling process 330–420 MB larger for good (the allocator keeps what Cranelift
//! used). The serving process therefore does not compile: it runs `ruqi plugin compile -` as a
//! child, hands it the file's bytes on stdin, and loads what the child wrote to the cache with
//! [`Component::deserialize_file`], which maps the file instead of reading it. Only when the
//! child cannot be started (or the host is not the `ruqi` binary, e.g. a test harness) does it
//! compile in process.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled code comes from when the cache has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compiler {
    /// Compile in this process.
    InProcess,
    /// Run `EXE plugin compile - --cache DIR` (the `ruqi` binary) and load what it wrote.
    Child(PathBuf),
}

impl Compiler {
    /// The child compiler when this process is the `ruqi` binary, else in process. (A test
    /// harness or another embedding is not `ruqi`: starting it with `plugin compile` would not
    /// compile anything; it can name a `ruqi` binary with [`super::Runtime::with_compiler`].)
    pub fn for_this_process() -> Self {
        match std::env::current_exe() {
            Ok(exe) if exe.file_stem().is_some_and(|s| s == "ruqi") => Self::Child(exe),
            _ => Self::InProcess,
        }
    }
}

/// Temporary files of a compile that was interrupted are removed after this long.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// The cache folder of one engine configuration.
#[derive(Debug, Clone)]
pub(super) struct Cache {
    dir: PathBuf,
    /// The engine's compatibility hash, hashed to 16 hex digits: part of every entry's name.
    tag: String,
}

impl Cache {
    /// The cache in `dir` for `engine`.
    pub(super) fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Self { dir, tag: format!("{:016x}", h.finish()) }
    }

    /// The entry of the component whose file has SHA-256 `digest`.
    pub(super) fn entry(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.tag))
    }

    /// The cached component for `digest`, if there is a usable one (blocking).
    pub(super) fn get(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let p = self.entry(digest);
        if !p.exists() {
            return None;
        }
        // SAFETY: the file was written by `Component::serialize` of this same engine
        // configuration (its name carries the compatibility hash) into our own cache folder;
        // wasmtime additionally checks the header before using it.
        #[allow(unsafe_code)]
        match unsafe { Component::deserialize_file(engine, &p) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "ignoring unusable cached component");
                None
            }
        }
    }

    /// Writes `component` as the entry for `digest` (atomically: a temporary file renamed).
    fn put(&self, component: &Component, digest: &str) -> Result<PathBuf, String> {
        let p = self.entry(digest);
        let serialized = component.serialize().map_err(|e| format!("{e:#}"))?;
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        let written = std::fs::create_dir_all(&self.dir).and_then(|_| std::fs::write(&tmp, serialized));
        if let Err(e) = written.and_then(|_| std::fs::rename(&tmp, &p)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("cannot write {}: {e}", p.display()));
        }
        Ok(p)
    }

    /// Removes the entries whose digest is not in `keep` and those of another engine (another
    /// build of ruqi), and temporary files older than an hour; returns the removed names
    /// (blocking).
    pub(super) fn prune(&self, keep: &BTreeSet<String>) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut removed = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = match name.split_once('-') {
                Some((digest, rest)) if rest.ends_with(".cwasm") => {
                    rest != format!("{}.cwasm", self.tag) || !keep.contains(digest)
                }
                Some((_, rest)) if rest.contains(".tmp") => entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_TEMP)),
                _ => false,
            };
            if stale && std::fs::remove_file(entry.path()).is_ok() {
                removed.push(name);
            }
        }
        removed
    }
}

/// Compiles `bytes` in this process and writes the result to `cache` (blocking). A cache that
/// cannot be written is logged, not an error.
pub(super) fn compile_here(
    engine: &Engine,
    bytes: &[u8],
    cache: Option<&Cache>,
    digest: &str,
) -> Result<Component, String> {
    let component = Component::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
    if let Some(cache) = cache
        && let Err(e) = cache.put(&component, digest)
    {
        tracing::warn!(error = %e, "could not cache the compiled component");
    }
    Ok(component)
}

/// What `ruqi plugin compile` does: compiles `bytes` and writes the cache entry (blocking).
pub(super) fn compile_to(engine: &Engine, bytes: &[u8], cache: &Cache, digest: &str) -> Result<PathBuf, String> {
    let component = Component::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
    cache.put(&component, digest)
}

/// Why a child compile gave no component.
pub(super) enum ChildFailure {
    /// The child could not be started or talked to: compiling in process is still possible.
    Unavailable(String),
    /// The child ran and refused the file (not a component, …): the reason.
    Refused(String),
}

/// Runs `exe plugin compile - --cache DIR`, feeding it `bytes`, and waits for it; then the
/// entry for `digest` is in the cache. The child is killed if this future is dropped.
pub(super) async fn compile_in_child(
    exe: &Path,
    bytes: &[u8],
    cache: &Cache,
    digest: &str,
) -> Result<(), ChildFailure> {
    let unavailable = |what: &str, e: std::io::Error| ChildFailure::Unavailable(format!("{what}: {e}"));
    let mut child = tokio::process::Command::new(exe)
        .args(["plugin", "compile", "-", "--cache"])
        .arg(&cache.dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| unavailable("cannot start the compiler process", e))?;
    let mut stdin = child.stdin.take().ok_or_else(|| ChildFailure::Unavailable("no stdin".into()))?;
    // Write while the child reads; a child that dies early shows in its exit status below.
    let fed = async {
        let r = stdin.write_all(bytes).await;
        drop(stdin);
        r
    };
    let (fed, out) = tokio::join!(fed, child.wait_with_output());
    let out = out.map_err(|e| unavailable("the compiler process", e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let reason = stderr.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
        let reason = reason.strip_prefix("ruqi: ").unwrap_or(reason);
        return Err(match out.status.code() {
            Some(_) if !reason.is_empty() => ChildFailure::Refused(reason.to_owned()),
            _ => ChildFailure::Refused(format!("the compiler process ended with {}", out.status)),
        });
    }
    if let Err(e) = fed {
        return Err(unavailable("feeding the compiler process", e));
    }
    let written = String::from_utf8_lossy(&out.stdout);
    if written.trim() != cache.entry(digest).display().to_string() {
        return Err(ChildFailure::Unavailable(format!("the compiler process wrote {:?}", written.trim())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_entries_of_kept_digests_of_this_engine() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = Cache::new(dir.path().to_owned(), &engine);
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        for name in [
            cache.entry(&a).file_name().unwrap().to_string_lossy().into_owned(),
            cache.entry(&b).file_name().unwrap().to_string_lossy().into_owned(),
            format!("{a}-0123456789abcdef.cwasm"),
            format!("{a}-{}.tmp42", cache.tag),
            "README".into(),
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let mut removed = cache.prune(&BTreeSet::from([a.clone()]));
        removed.sort();
        assert_eq!(removed, [format!("{a}-0123456789abcdef.cwasm"), format!("{b}-{}.cwasm", cache.tag)]);
        assert!(cache.entry(&a).exists(), "kept");
        assert!(dir.path().join(format!("{a}-{}.tmp42", cache.tag)).exists(), "a young temporary file is kept");
    }
}
