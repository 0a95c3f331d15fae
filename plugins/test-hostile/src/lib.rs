//! test-hostile: misbehaves on request so the host's defences can be tested. The cmd after
//! `hostile:` picks the behaviour: `noop`, `loop`, `alloc`, `trap`, `bigout`, `ungranted`,
//! `declare`, `fail`, `hugeerr` (a 10 MB declared error), `hugelog` (a 10 MB log line with line
//! breaks), `sleep` (sleeps 300 s without computing), `print` (writes to stdout and stderr),
//! `print-trap` (writes lines to stderr, then panics), `oom-declared` (a refused allocation
//! turned into a declared error), `exit` (exits with status 3), `flood` (10 MB to stdout and
//! stderr, then panics), `count` (how many runs this instance has executed, itself included:
//! `1` unless an instance served two runs); in validate: `validate-loop` (loops), `validate-sleep` (sleeps 300 s),
//! `validate-panic` (panics), `refuse` and `refuse-long` (a 100 KB multi-line reason).

use std::sync::atomic::{AtomicU32, Ordering};

use ruqi_plugin_sdk::{Executor, PluginInfo, RunOutcome, RunRequest, host};

struct Hostile;

/// Runs this instance has executed.
static RUNS: AtomicU32 = AtomicU32::new(0);

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
            "hostile:validate-sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(300));
                Ok(())
            }
            "hostile:validate-panic" => panic!("a bug in validate"),
            "hostile:refuse" => Err("hostile refuses this cmd".into()),
            "hostile:refuse-long" => Err("refused\r\nx-injected: 1\n".repeat(5000)),
            _ => Ok(()),
        }
    }

    fn execute(run: RunRequest) -> Result<RunOutcome, String> {
        let runs = RUNS.fetch_add(1, Ordering::Relaxed) + 1;
        match run.cmd.trim_start_matches("hostile:") {
            "noop" => Ok(RunOutcome::ok("")),
            "count" => Ok(RunOutcome::ok(runs.to_string())),
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
            "hugeerr" => Err("e".repeat(10 << 20)),
            "hugelog" => {
                host::log(ruqi_plugin_sdk::LogLevel::Warn, &"forged\n".repeat(10 << 17));
                Ok(RunOutcome::ok("logged"))
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(300));
                Ok(RunOutcome::ok("woke up"))
            }
            "print" => {
                println!("to stdout\x1b[31m");
                eprintln!("to stderr");
                Ok(RunOutcome::ok("printed"))
            }
            "print-trap" => {
                eprintln!("first line\nsecond line");
                panic!("a bug in execute")
            }
            "oom-declared" => {
                let mut v: Vec<u8> = Vec::new();
                match v.try_reserve(256 << 20) {
                    Ok(()) => Ok(RunOutcome::ok("got 256 MiB")),
                    Err(e) => Err(format!("cannot allocate: {e}")),
                }
            }
            "exit" => std::process::exit(3),
            "flood" => {
                let line = "y".repeat(1023);
                for _ in 0..10 * 1024 {
                    println!("{line}");
                    eprintln!("{line}");
                }
                panic!("flooded")
            }
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
