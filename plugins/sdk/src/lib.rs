//! `ruqi-plugin-sdk`: the glue between a plugin author's code and the `ruqi:executor` WIT
//! contract, so that a plugin is one `impl Executor` and one `export_plugin!` line.
//!
//! ```ignore
//! use ruqi_plugin_sdk::{Executor, PluginInfo, RunOutcome, RunRequest};
//! struct Echo;
//! impl Executor for Echo {
//!     fn describe() -> PluginInfo { PluginInfo::new("echo", env!("CARGO_PKG_VERSION"), &["echo:"]) }
//!     fn validate(_cmd: String) -> Result<(), String> { Ok(()) }
//!     fn execute(run: RunRequest) -> Result<RunOutcome, String> { Ok(RunOutcome::ok(run.cmd)) }
//! }
//! ruqi_plugin_sdk::export_plugin!(Echo);
//! ```

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_world_plugin",
        default_bindings_module: "ruqi_plugin_sdk::bindings",
    });
}

pub use bindings::exports::ruqi::executor::executor::Guest as Executor;
pub use bindings::ruqi::executor::host::{self, CommandOutput, LogLevel, RedisReply};
pub use bindings::ruqi::executor::types::{PluginInfo, RunOutcome, RunRequest};

/// Exports `$ty` (which implements [`Executor`]) as the plugin's `ruqi:executor/executor`.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ident) => {
        $crate::bindings::__export_world_plugin!($ty with_types_in $crate::bindings);
    };
}

impl PluginInfo {
    /// A plugin description.
    pub fn new(name: &str, version: &str, prefixes: &[&str]) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
        }
    }
}

impl RunOutcome {
    /// A successful outcome with `output`.
    pub fn ok(output: impl Into<String>) -> Self {
        Self { success: true, output: output.into() }
    }

    /// A failed outcome with `output`.
    pub fn failed(output: impl Into<String>) -> Self {
        Self { success: false, output: output.into() }
    }
}

/// Logs through the host, tagged with the plugin and the run.
pub fn log(level: LogLevel, message: &str) {
    host::log(level, message);
}
