//! The versions of `ruqi:executor` this host speaks: 0.3 (current, [`WIT_VERSION`]), 0.2 (no
//! `redis-pipeline`) and 0.1 (also a `run-request` without `params`). Which one a component
//! exports, a pre-instance and an instance of each kind, and the calls into one with their
//! types converted to and from the current ones; the older `host` imports are answered by the
//! current implementation.
//!
//! A run with params is never given to a plugin built for 0.1 with its params dropped: the
//! run fails with [`Contract::refusal`]'s reason, so the operator learns that the plugin must be
//! rebuilt to receive them.

use wasmtime::Engine;
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre};

use super::bindings::ruqi::executor::{host, types};
use super::bindings::{Plugin, PluginPre, WIT_VERSION, v0_1, v0_2};
use super::host_impl::RunState;
use super::{PluginInfo, RunRequest};

/// The interface every plugin exports, without its version.
const EXECUTOR: &str = "ruqi:executor/executor@";

/// A contract version this host speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `ruqi:executor@0.3.x`, the version this host speaks ([`WIT_VERSION`]).
    Current,
    /// `ruqi:executor@0.2.x`: no `redis-pipeline` in `host`.
    V0_2,
    /// `ruqi:executor@0.1.x`: no `params` in a `run-request` either.
    Legacy,
}

impl Contract {
    /// Every version spoken, newest first.
    const ALL: [Self; 3] = [Self::Current, Self::V0_2, Self::Legacy];

    /// The version whose bindings the host was built with (`0.3.0`).
    pub fn version(self) -> &'static str {
        match self {
            Self::Current => WIT_VERSION,
            Self::V0_2 => v0_2::WIT_VERSION,
            Self::Legacy => v0_1::WIT_VERSION,
        }
    }

    /// The versions this host speaks, for messages:
    /// `ruqi:executor@0.3.0, ruqi:executor@0.2.0 and ruqi:executor@0.1.0`.
    pub fn spoken() -> String {
        let names: Vec<String> = Self::ALL.iter().map(|c| format!("ruqi:executor@{}", c.version())).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => names.concat(),
        }
    }

    /// The contract a plugin exporting `ruqi:executor/executor@{version}` was built for: the
    /// same major version, and for 0.x the same minor version, as one this host speaks.
    fn of(version: &str) -> Option<Self> {
        let theirs = numbers(version);
        Self::ALL.into_iter().find(|c| {
            let ours = numbers(c.version());
            match (ours.as_slice(), theirs.as_slice()) {
                ([0, a, ..], [0, b, ..]) => a == b,
                ([a, ..], [b, ..]) => *a != 0 && a == b,
                _ => false,
            }
        })
    }

    /// Why `request` cannot be given to a plugin built for this contract, if it cannot: a
    /// plugin built for 0.1 has no way to receive params, and dropping them would run the job
    /// with something other than what was asked.
    pub fn refusal(self, request: &RunRequest) -> Option<String> {
        (self == Self::Legacy && request.params.is_some()).then(|| {
            format!(
                "this plugin was built for ruqi:executor@{}, which has no params; rebuild it against \
                 ruqi:executor@{WIT_VERSION} to receive them (or start the run without params)",
                self.version()
            )
        })
    }
}

/// `0.2.1` → `[0, 2, 1]` (a pre-release or build suffix is ignored).
fn numbers(version: &str) -> Vec<u64> {
    version.split(['.', '-', '+']).take(3).map_while(|p| p.parse().ok()).collect()
}

/// The contract `component` was built for and its full name (`ruqi:executor@0.1.0`), or, as
/// `Err`, what it exports instead when this host speaks no version of it.
pub(super) fn detect(engine: &Engine, component: &Component) -> Result<(Contract, String), String> {
    let ty = component.component_type();
    let found: Vec<String> =
        ty.exports(engine).filter_map(|(name, _)| name.strip_prefix(EXECUTOR).map(str::to_owned)).collect();
    let Some(version) = found.first() else {
        return Err("no ruqi:executor/executor export (not a RuQi plugin)".into());
    };
    let name = format!("ruqi:executor@{version}");
    match Contract::of(version) {
        Some(contract) => Ok((contract, name)),
        None => Err(name),
    }
}

/// A plugin's pre-linked component, for the contract it was built for.
#[derive(Clone)]
pub(super) enum Pre {
    /// Built for 0.3.
    Current(PluginPre<RunState>),
    /// Built for 0.2.
    V0_2(v0_2::PluginPre<RunState>),
    /// Built for 0.1.
    Legacy(v0_1::PluginPre<RunState>),
}

impl Pre {
    /// Checks that `pre` exports the `contract`'s executor interface and wraps it.
    pub(super) fn new(contract: Contract, pre: InstancePre<RunState>) -> wasmtime::Result<Self> {
        Ok(match contract {
            Contract::Current => Self::Current(PluginPre::new(pre)?),
            Contract::V0_2 => Self::V0_2(v0_2::PluginPre::new(pre)?),
            Contract::Legacy => Self::Legacy(v0_1::PluginPre::new(pre)?),
        })
    }

    /// The contract the plugin was built for.
    pub(super) fn contract(&self) -> Contract {
        match self {
            Self::Current(_) => Contract::Current,
            Self::V0_2(_) => Contract::V0_2,
            Self::Legacy(_) => Contract::Legacy,
        }
    }

    /// A fresh instance in `store`.
    pub(super) async fn instantiate(&self, store: &mut Store<RunState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Self::Current(pre) => Instance::Current(pre.instantiate_async(store).await?),
            Self::V0_2(pre) => Instance::V0_2(pre.instantiate_async(store).await?),
            Self::Legacy(pre) => Instance::Legacy(pre.instantiate_async(store).await?),
        })
    }
}

/// One instance of a plugin, of either contract.
pub(super) enum Instance {
    /// Built for 0.3.
    Current(Plugin),
    /// Built for 0.2.
    V0_2(v0_2::Plugin),
    /// Built for 0.1.
    Legacy(v0_1::Plugin),
}

impl Instance {
    /// `describe`.
    pub(super) async fn describe(&self, store: &mut Store<RunState>) -> wasmtime::Result<PluginInfo> {
        Ok(match self {
            Self::Current(p) => {
                let i = p.ruqi_executor_executor().call_describe(store).await?;
                PluginInfo { name: i.name, version: i.version, prefixes: i.prefixes }
            }
            Self::V0_2(p) => {
                let i = p.ruqi_executor_executor().call_describe(store).await?;
                PluginInfo { name: i.name, version: i.version, prefixes: i.prefixes }
            }
            Self::Legacy(p) => {
                let i = p.ruqi_executor_executor().call_describe(store).await?;
                PluginInfo { name: i.name, version: i.version, prefixes: i.prefixes }
            }
        })
    }

    /// `validate(cmd)`.
    pub(super) async fn validate(
        &self,
        store: &mut Store<RunState>,
        cmd: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Self::Current(p) => p.ruqi_executor_executor().call_validate(store, cmd).await,
            Self::V0_2(p) => p.ruqi_executor_executor().call_validate(store, cmd).await,
            Self::Legacy(p) => p.ruqi_executor_executor().call_validate(store, cmd).await,
        }
    }

    /// `execute(request)`. A legacy instance gets the request without its params: the caller
    /// refuses a run with params for it first ([`Contract::refusal`]).
    pub(super) async fn execute(
        &self,
        store: &mut Store<RunState>,
        request: &RunRequest,
    ) -> wasmtime::Result<Result<types::RunOutcome, String>> {
        match self {
            Self::Current(p) => p.ruqi_executor_executor().call_execute(store, request).await,
            Self::V0_2(p) => {
                let request = v0_2::ruqi::executor::types::RunRequest {
                    run_id: request.run_id.clone(),
                    job_id: request.job_id.clone(),
                    job_name: request.job_name.clone(),
                    cmd: request.cmd.clone(),
                    fire_time: request.fire_time.clone(),
                    params: request.params.clone(),
                };
                let result = p.ruqi_executor_executor().call_execute(store, &request).await?;
                Ok(result.map(|o| types::RunOutcome { success: o.success, output: o.output }))
            }
            Self::Legacy(p) => {
                debug_assert!(request.params.is_none(), "params for a plugin built for 0.1");
                let request = v0_1::ruqi::executor::types::RunRequest {
                    run_id: request.run_id.clone(),
                    job_id: request.job_id.clone(),
                    job_name: request.job_name.clone(),
                    cmd: request.cmd.clone(),
                    fire_time: request.fire_time.clone(),
                };
                let result = p.ruqi_executor_executor().call_execute(store, &request).await?;
                Ok(result.map(|o| types::RunOutcome { success: o.success, output: o.output }))
            }
        }
    }
}

/// Implements an older contract's `types` and `host` interfaces (module `$v` of the bindings)
/// for `RunState`: the same capabilities as 0.3's but `redis-pipeline` and
/// `redis-local-address`, answered by its implementation.
macro_rules! older_host {
    ($v:ident) => {
        /// An older shared types interface has no functions.
        impl $v::ruqi::executor::types::Host for RunState {}

        impl $v::ruqi::executor::host::Host for RunState {
            async fn log(&mut self, level: $v::ruqi::executor::host::LogLevel, message: String) {
                use $v::ruqi::executor::host::LogLevel as Old;
                let level = match level {
                    Old::Trace => host::LogLevel::Trace,
                    Old::Debug => host::LogLevel::Debug,
                    Old::Info => host::LogLevel::Info,
                    Old::Warn => host::LogLevel::Warn,
                    Old::Error => host::LogLevel::Error,
                };
                host::Host::log(self, level, message).await;
            }

            async fn config(&mut self, key: String) -> Option<String> {
                host::Host::config(self, key).await
            }

            async fn path_exists(&mut self, path: String) -> bool {
                host::Host::path_exists(self, path).await
            }

            async fn run_command(
                &mut self,
                command_line: String,
            ) -> Result<$v::ruqi::executor::host::CommandOutput, String> {
                let out = host::Host::run_command(self, command_line).await?;
                Ok($v::ruqi::executor::host::CommandOutput {
                    exit_code: out.exit_code,
                    output: out.output,
                    timed_out: out.timed_out,
                })
            }
        }
    };
}

older_host!(v0_2);
older_host!(v0_1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_spoken() {
        let cases = [
            ("0.3.0", Some(Contract::Current)),
            ("0.3.2", Some(Contract::Current)),
            ("0.2.0", Some(Contract::V0_2)),
            ("0.2.7", Some(Contract::V0_2)),
            ("0.1.0", Some(Contract::Legacy)),
            ("0.1.3-rc1", Some(Contract::Legacy)),
            ("0.4.0", None),
            ("0.0.1", None),
            ("1.0.0", None),
            ("2.1.0", None),
            ("x", None),
        ];
        for (version, want) in cases {
            assert_eq!(Contract::of(version), want, "{version}");
        }
        assert_eq!(Contract::spoken(), "ruqi:executor@0.3.0, ruqi:executor@0.2.0 and ruqi:executor@0.1.0");
    }

    #[test]
    fn params_are_refused_for_a_plugin_built_for_0_1() {
        let mut request = RunRequest {
            run_id: "r".into(),
            job_id: "j".into(),
            job_name: "j".into(),
            cmd: "v01:x".into(),
            fire_time: "2026-01-01 00:00:00".into(),
            params: None,
        };
        assert_eq!(Contract::Legacy.refusal(&request), None);
        request.params = Some("a".into());
        assert_eq!(Contract::Current.refusal(&request), None);
        let reason = Contract::Legacy.refusal(&request).unwrap();
        assert!(reason.starts_with("this plugin was built for ruqi:executor@0.1.0, which has no params;"), "{reason}");
    }
}
