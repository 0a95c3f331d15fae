//! Plugins: WASI components implementing `ruqi:executor` that execute runs. This module owns
//! the WIT/wasmtime boundary: nothing outside it names a wasmtime type.
//!
//! - `bindings`: the generated types (`ruqi:executor@0.3.0`, and the frozen 0.2.0 and 0.1.0 in
//!   `v0_2` and `v0_1`).
//! - `contract`: which contract version a plugin was built for, and calls into each kind.
//! - `grants`: what the operator allows each plugin (`plugins/<name>.toml`).
//! - `host_impl`: the host interface plugins import.
//! - `redis`: the Redis connections the host keeps for a plugin (`redis-pipeline`).
//! - `runtime`: engine, per-call stores and limits, what a failed call means.
//! - `cache`: compiled components on disk, compiled in a child process.
//! - `stdio`: each call's captured stdout and stderr.
//! - `registry`: the loaded plugins of the plugins folder, and picking one for a cmd.

mod bindings;
mod cache;
mod command;
mod contract;
mod grants;
mod host_impl;
mod redis;
mod registry;
mod runtime;
mod stdio;

use std::time::Duration;

pub use bindings::WIT_VERSION;
pub use cache::Compiler;
pub use contract::Contract;
pub use grants::Grants;
pub use registry::{PluginStatus, Registry};
pub use runtime::{LoadedPlugin, MAX_MEMORY_MB, Runtime};

/// The request passed to `execute` (the WIT `run-request`).
pub type RunRequest = bindings::ruqi::executor::types::RunRequest;

/// Errors of the plugin boundary.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// The engine could not be configured.
    #[error("plugin engine: {0}")]
    Engine(String),
    /// The plugins folder is missing or unreadable.
    #[error("plugins folder {path}: {reason}")]
    Folder {
        /// the folder
        path: String,
        /// why
        reason: String,
    },
    /// A `.wasm` file could not be loaded.
    #[error("cannot load plugin {path}: {reason}")]
    Load {
        /// the file
        path: String,
        /// why
        reason: String,
    },
    /// A plugin's grants file is invalid.
    #[error("invalid grants file {path}: {reason}")]
    Grants {
        /// the file
        path: String,
        /// why
        reason: String,
    },
    /// A plugin was built for a version of the contract this host does not speak.
    #[error("plugin {path} was built for {found}, this host speaks {spoken}")]
    IncompatibleVersion {
        /// the file
        path: String,
        /// what it was built for
        found: String,
        /// the versions this host speaks ([`Contract::spoken`])
        spoken: String,
    },
    /// Two plugins claim the same prefix.
    #[error("prefix {prefix:?} is claimed by both {first} and {second}")]
    DuplicatePrefix {
        /// the prefix
        prefix: String,
        /// the plugin loaded first
        first: String,
        /// the plugin refused
        second: String,
    },
}

/// What a plugin said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The cmd prefixes it serves.
    pub prefixes: Vec<String>,
}

/// How one execution ended, as the plugin boundary sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecOutcome {
    /// The plugin returned an outcome.
    Finished {
        /// its success flag
        success: bool,
        /// its output
        output: String,
    },
    /// The plugin declared a failure (`err` from `execute`).
    Declared(String),
    /// The plugin trapped.
    Trapped {
        /// One line: the trap (`wasm trap: …`) and, after `: `, what the guest's stderr says
        /// about it (a panic message, a traceback's last line).
        reason: String,
        /// The end of the guest's stderr (at most its `output_limit`), empty if none.
        stderr: String,
    },
    /// The plugin used up its compute time.
    CpuLimit(Duration),
    /// The run took longer than its wall-clock limit.
    Timeout(Duration),
    /// The plugin tried to grow memory past its limit (whatever it did after the refusal).
    MemoryLimit {
        /// the limit, MiB
        mb: u64,
        /// its grants file, as `plugins/NAME.toml`
        grants_file: String,
        /// what the guest made of the refusal (its declared error, or its stderr), if anything
        guest: String,
    },
    /// No plugin serves the cmd: why (empty: no plugin at all claims it).
    NoPlugin(String),
    /// The run was not given to the plugin serving it, which cannot take what the run carries
    /// (params, for a plugin built for `ruqi:executor@0.1.0`): why.
    Refused(String),
}

impl ExecOutcome {
    /// Whether the run succeeded.
    pub fn success(&self) -> bool {
        matches!(self, Self::Finished { success: true, .. })
    }

    /// The outcome's name in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Finished { success: true, .. } => "succeeded",
            Self::Finished { success: false, .. } => "failed",
            Self::Declared(_) => "declared_failure",
            Self::Trapped { .. } => "trapped",
            Self::CpuLimit(_) => "cpu_limit",
            Self::Timeout(_) => "timed_out",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::NoPlugin(_) => "no_plugin",
            Self::Refused(_) => "refused",
        }
    }

    /// The first line of what history records, the reason of a failure: what `validate`
    /// answers as the `x-reason`.
    pub fn reason(&self) -> String {
        match self {
            Self::Finished { output, .. } | Self::Declared(output) => output.clone(),
            Self::Trapped { reason, .. } => format!("plugin trapped: {reason}"),
            Self::CpuLimit(d) => format!("plugin exceeded its compute time limit of {}s", d.as_secs()),
            Self::Timeout(d) => format!("plugin exceeded its time limit of {}s", d.as_secs()),
            Self::MemoryLimit { mb, grants_file, .. } => {
                format!("plugin exceeded its memory limit of {mb} MiB (raise memory_mb in {grants_file})")
            }
            Self::NoPlugin(reason) if !reason.is_empty() => reason.clone(),
            Self::NoPlugin(_) => "no plugin serves this cmd".into(),
            Self::Refused(reason) => reason.clone(),
        }
    }

    /// The output history records: the reason, then for a trap the end of the guest's stderr
    /// and for a refused memory growth what the guest made of it, on the following lines.
    pub fn into_output(self) -> String {
        let reason = self.reason();
        match self {
            Self::Finished { output, .. } | Self::Declared(output) => output,
            Self::Trapped { stderr: more, .. } | Self::MemoryLimit { guest: more, .. } if !more.trim().is_empty() => {
                format!("{reason}\n{}", more.trim_end())
            }
            _ => reason,
        }
    }
}
