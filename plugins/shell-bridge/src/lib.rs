//! shell-bridge: runs RuQi's script cmds (`bash scripts/x.sh`, `python x.py a b`).
//!
//! Validation is RuQi's `_check_cmd`, with its reason text. A WASI component cannot spawn
//! processes, so execution goes through the host's `run-command` capability, which runs only
//! the programs the operator granted this plugin. It also serves the empty prefix: every cmd
//! that no other plugin claims is a script to RuQi, and is refused here with RuQi's reason.

use ruqi_plugin_sdk::{Executor, PluginInfo, RunOutcome, RunRequest, host};

/// RuQi's reason for a script cmd it refuses.
const REASON: &str = "(scripts) Cmd does not meet expectations";

struct ShellBridge;

impl Executor for ShellBridge {
    fn describe() -> PluginInfo {
        PluginInfo::new("shell-bridge", env!("CARGO_PKG_VERSION"), &["bash", "python", ""])
    }

    fn validate(cmd: String) -> Result<(), String> {
        if cmd.contains(';') || cmd.contains("&&") || cmd.contains("||") {
            return Err(REASON.into());
        }
        let tokens: Vec<&str> = cmd.split_whitespace().collect();
        if tokens.len() < 2 || !matches!(tokens[0], "bash" | "python") || !host::path_exists(tokens[1]) {
            return Err(REASON.into());
        }
        Ok(())
    }

    fn execute(run: RunRequest) -> Result<RunOutcome, String> {
        let out = host::run_command(&run.cmd)?;
        Ok(RunOutcome { success: out.exit_code == Some(0), output: out.output })
    }
}

ruqi_plugin_sdk::export_plugin!(ShellBridge);
