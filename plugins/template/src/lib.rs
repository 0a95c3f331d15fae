//! template: the example plugin a plugin author copies. It serves cmds `echo:TEXT`, refuses
//! an empty TEXT at add time, and returns TEXT as the run's output.

use ruqi_plugin_sdk::{Executor, LogLevel, PluginInfo, RunOutcome, RunRequest, log};

const PREFIX: &str = "echo:";

struct Echo;

impl Executor for Echo {
    fn describe() -> PluginInfo {
        PluginInfo::new("echo", env!("CARGO_PKG_VERSION"), &[PREFIX])
    }

    fn validate(cmd: String) -> Result<(), String> {
        match cmd.strip_prefix(PREFIX) {
            Some(text) if !text.is_empty() => Ok(()),
            _ => Err(format!("echo cmds look like {PREFIX}TEXT with a non-empty TEXT")),
        }
    }

    fn execute(run: RunRequest) -> Result<RunOutcome, String> {
        log(LogLevel::Info, &format!("echoing for run {}", run.run_id));
        Ok(RunOutcome::ok(run.cmd.strip_prefix(PREFIX).unwrap_or_default()))
    }
}

ruqi_plugin_sdk::export_plugin!(Echo);
