//! The command-line client against a real server: `ruqi job add|modify|pause|resume|show|list|
//! remove`, `ruqi history list|clear`, `ruqi scheduler status|wakeup|nodes`, `ruqi plugin list` print
//! aligned tables or, with `--json`, the API's answer; a refusal exits non-zero with the
//! server's reason; the token comes from `RUQI_TOKEN`. `ruqi plugin check FILE` loads a plugin
//! here, without a server, and says whether this host accepts it.

use std::process::Output;
use std::time::Duration;

use ruqi_tests::{ServerOptions, TestServer, ruqi_bin};

fn ruqi(server: &str, args: &[&str]) -> Output {
    std::process::Command::new(ruqi_bin())
        .args(args)
        .env("RUQI_SERVER", server)
        .env("RUQI_TOKEN", "s3cret")
        .output()
        .expect("ruqi")
}

fn ok(server: &str, args: &[&str]) -> String {
    let out = ruqi(server, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

// Multi-threaded: the CLI runs as a blocking child process while this runtime serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_a_server() {
    let s = TestServer::start(ServerOptions { tokens: vec!["s3cret".into()], ..Default::default() }).await;
    let server = format!("http://{}", s.node.as_ref().unwrap().addr);
    let server = server.as_str();
    assert_eq!(
        ok(
            server,
            &[
                "job",
                "add",
                "demo",
                "--trigger",
                "interval",
                "--rule",
                "1s",
                "--cmd",
                "bash scripts/hello.sh",
                "--name",
                "d"
            ]
        ),
        "added demo\n"
    );
    let list = ok(server, &["job", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with("job_id  job_name  job_trigger  rule  next_run_time"), "{list}");
    assert!(lines[2].starts_with("demo    d         interval     1s   "), "{list}");
    assert_eq!(lines.last(), Some(&"total: 1"));
    let shown = ok(server, &["job", "show", "demo"]);
    assert!(shown.contains("rule         1s") && shown.contains("cmd          bash scripts/hello.sh"), "{shown}");
    assert!(!shown.contains("timezone"), "{shown}");
    let zoned = ["job", "add", "tz", "--trigger", "cron", "--rule", "0 0 9 * * *", "--cmd", "bash scripts/hello.sh"];
    assert_eq!(ok(server, &[&zoned[..], &["--timezone", "Europe/Paris"]].concat()), "added tz\n");
    let shown = ok(server, &["job", "show", "tz"]);
    assert!(shown.contains("timezone               Europe/Paris"), "{shown}");
    assert_eq!(ok(server, &["job", "remove", "tz"]), "removed tz\n");
    // a policy on add, and a backfill's dry run: the window's fire times in the job's zone
    let hourly = ["job", "add", "bf", "--trigger", "cron", "--rule", "0 0 * * * *", "--cmd", "bash scripts/hello.sh"];
    assert_eq!(ok(server, &[&hourly[..], &["--overlap", "buffer_all"]].concat()), "added bf\n");
    assert!(ok(server, &["job", "show", "bf"]).contains("buffer_all"));
    let window = ["--start", "2026-12-01 00:00:00", "--end", "2026-12-01 02:00:00", "--dry-run"];
    assert_eq!(
        ok(server, &[&["job", "backfill", "bf"][..], &window].concat()),
        "2026-12-01 00:00:00\t-\n2026-12-01 01:00:00\t-\n2026-12-01 02:00:00\t-\n3 fire times (dry run)\n"
    );
    let out = ruqi(
        server,
        &[
            "job",
            "add",
            "bad",
            "--trigger",
            "cron",
            "--rule",
            "0 0 * * * *",
            "--cmd",
            "bash scripts/hello.sh",
            "--overlap",
            "often",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(ok(server, &["job", "remove", "bf"]), "removed bf\n");
    // refused: non-zero exit, the server's stat and reason on stderr, nothing added
    let out = ruqi(
        server,
        &["job", "add", "bad", "--trigger", "cron", "--rule", "61 * * * * *", "--cmd", "bash scripts/hello.sh"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ruqi: ERR: Job_rule not match: second: 61 is out of range 0-59\n"
    );
    let out = ruqi(server, &["job", "pause", "nope"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("No job by the id of nope"));
    // JSON is the API's answer
    let json: serde_json::Value = serde_json::from_str(&ok(server, &["job", "list", "--json"])).unwrap();
    assert_eq!((json["stat"].as_str(), json["data"]["total"].as_u64()), (Some("OK"), Some(1)));
    // runs show up in the history
    s.client.with_token("s3cret").wait_history("demo", 1, Duration::from_secs(20)).await;
    let history = ok(server, &["history", "list", "--id", "demo"]);
    assert!(history.contains("demo") && history.contains("true") && history.contains("hello from RuQi"), "{history}");
    assert!(ok(server, &["history", "list", "--failed"]).ends_with("total: 0\n"));
    for (args, want) in [
        (&["job", "pause", "demo"][..], "paused demo\n"),
        (&["job", "resume", "demo"], "resumed demo\n"),
        (
            &["job", "modify", "demo", "--trigger", "cron", "--rule", "0 0 3 * * *", "--cmd", "bash scripts/hello.sh"],
            "modified demo\n",
        ),
        (&["scheduler", "wakeup"], "woken\n"),
        (&["job", "remove", "demo"], "removed demo\n"),
        (&["history", "clear", "--retention-days", "0"], ""),
    ] {
        let out = ok(server, args);
        assert!(out == want || want.is_empty() && out.starts_with("deleted "), "{args:?}: {out}");
    }
    assert!(ok(server, &["scheduler", "status"]).contains("check_time"));
    let nodes = ok(server, &["scheduler", "nodes"]);
    assert!(nodes.starts_with("name ") && nodes.contains("  up     true  "), "{nodes}");
    let plugins = ok(server, &["plugin", "list"]);
    assert!(plugins.contains("loaded  shell-bridge  0.1.0    bash python"), "{plugins}");
    // a wrong token or no server: a clear error, non-zero
    let out = std::process::Command::new(ruqi_bin())
        .args(["job", "list", "--server", server, "--token", "x"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "ruqi: ERR_UNAUTHORIZED: invalid bearer token\n");
    let out = ruqi("http://127.0.0.1:9", &["job", "list"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
    s.stop().await;
}

#[test]
fn plugin_check_loads_a_plugin_offline() {
    let dir = tempfile::tempdir().unwrap();
    ruqi_tests::install_plugin(dir.path(), "template", Some("memory_mb = 8\n"));
    let check = || {
        std::process::Command::new(ruqi_bin())
            .args(["plugin", "check"])
            .arg(dir.path().join("template.wasm"))
            .output()
            .unwrap()
    };
    let out = check();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("echo 0.1.0\n  prefixes: \"echo:\""), "{text}");
    assert!(
        text.contains(
            "contract: ruqi:executor@0.3.0 (this host speaks ruqi:executor@0.3.0, ruqi:executor@0.2.0 and \
             ruqi:executor@0.1.0)\n"
        ),
        "{text}"
    );
    assert!(text.contains("memory: needs 2 MiB at start, granted 8 MiB"), "{text}");
    assert!(text.contains("  imports: ruqi:executor/host@0.3.0 ") && text.contains(" wasi:cli/stdout@0.2."), "{text}");
    assert!(text.ends_with("\n  accepted\n"), "{text}");
    // it warmed the compiled cache beside the file
    let cached = std::fs::read_dir(dir.path().join(".cache"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .count();
    assert_eq!(cached, 1);
    // too little memory granted: the report says so, and the command fails
    std::fs::write(dir.path().join("template.toml"), "memory_mb = 1\n").unwrap();
    let out = check();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    let refused = format!(
        "  refused: it needs 2 MiB of memory at start, more than its memory limit of 1 MiB (raise memory_mb in {}/template.toml)\n",
        dir.path().file_name().unwrap().to_string_lossy()
    );
    assert!(text.contains("memory: needs 2 MiB at start, granted 1 MiB") && text.ends_with(&refused), "{text}");
    std::fs::write(dir.path().join("junk.wasm"), b"junk").unwrap();
    let out = std::process::Command::new(ruqi_bin())
        .args(["plugin", "check"])
        .arg(dir.path().join("junk.wasm"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot load plugin"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
