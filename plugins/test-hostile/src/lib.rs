//! test-hostile: misbehaves on request so the host's defences can be tested. The cmd after
//! `hostile:` picks the behaviour: `noop`, `loop`, `alloc`, `trap`, `bigout`, `ungranted`,
//! `declare`, `validate-loop` (loops in validate), `fail`.

use ruqi_plugin_sdk::{Executor, PluginInfo, RunOutcome, RunRequest, host};

struct Hostile;

fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

impl Executor for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo::new("test-hostile", env!("CARGO_PKG_VERSION"), &["hostile:"])
    }

    fn validate(cmd: String) -> Result<(), String> {
        match cmd.as_str() {
            "hostile:validate-loop" => spin(),
            "hostile:refuse" => Err("hostile refuses this cmd".into()),
            _ => Ok(()),
        }
    }

    fn execute(run: RunRequest) -> Result<RunOutcome, String> {
        match run.cmd.trim_start_matches("hostile:") {
            "noop" => Ok(RunOutcome::ok("")),
            "loop" => spin(),
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("hostile plugin panics on purpose"),
            "bigout" => Ok(RunOutcome::ok("x".repeat(100 * 1024 * 1024))),
            "ungranted" => host::run_command("bash -c 'echo should not run'").map(RunOutcome::ok_from),
            "declare" => Err("declared failure".into()),
            "fail" => Ok(RunOutcome::failed("ran and failed")),
            other => Err(format!("unknown hostile behaviour {other:?}")),
        }
    }
}

trait OkFrom {
    fn ok_from(out: ruqi_plugin_sdk::CommandOutput) -> RunOutcome;
}

impl OkFrom for RunOutcome {
    fn ok_from(out: ruqi_plugin_sdk::CommandOutput) -> RunOutcome {
        RunOutcome::ok(out.output)
    }
}

ruqi_plugin_sdk::export_plugin!(Hostile);
