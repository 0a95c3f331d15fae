//! test-v02: an echo plugin built for `ruqi:executor@0.2.0` (the frozen `wit/v0.2`), as a
//! plugin compiled before `redis-pipeline` existed would be. It serves `v02:TEXT` and answers
//! `TEXT (run RUN_ID, params P)`; `v02:log` also logs through the 0.2 `host` interface and
//! answers whether the `shell` config is granted, to show the 0.2 imports are linked.

mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../wit/v0.2",
    });
}

use bindings::exports::ruqi::executor::executor::Guest;
use bindings::ruqi::executor::host::{self, LogLevel};
use bindings::ruqi::executor::types::{PluginInfo, RunOutcome, RunRequest};

const PREFIX: &str = "v02:";

struct V02;

impl Guest for V02 {
    fn describe() -> PluginInfo {
        PluginInfo { name: "test-v02".into(), version: env!("CARGO_PKG_VERSION").into(), prefixes: vec![PREFIX.into()] }
    }

    fn validate(cmd: String) -> Result<(), String> {
        match cmd.strip_prefix(PREFIX) {
            Some(text) if !text.is_empty() => Ok(()),
            _ => Err(format!("v02 cmds look like {PREFIX}TEXT with a non-empty TEXT")),
        }
    }

    fn execute(run: RunRequest) -> Result<RunOutcome, String> {
        let text = run.cmd.strip_prefix(PREFIX).unwrap_or_default();
        if text == "log" {
            host::log(LogLevel::Info, &format!("run {} of job {}", run.run_id, run.job_id));
            let shell = host::config("shell").is_some();
            return Ok(RunOutcome { success: true, output: format!("logged (shell granted: {shell})") });
        }
        let params = run.params.as_deref().unwrap_or("none");
        Ok(RunOutcome { success: true, output: format!("{text} (run {}, params {params})", run.run_id) })
    }
}

bindings::export!(V02 with_types_in bindings);
