//! Plugins against a real server: hostile plugins (loop, allocate, trap, 100 MB output,
//! ungranted capability) each end as a failed run with a clear output while the host keeps
//! serving; shell-bridge's timeout kills the whole process group; prefix selection.

use std::time::Duration;

use ruqi_tests::{ServerOptions, TestServer};
use serde_json::json;

const HOSTILE_GRANTS: &str = "memory_mb = 16\ncpu_secs = 1\noutput_limit = 4096\n";

async fn hostile_server() -> TestServer {
    TestServer::start(ServerOptions {
        plugins: vec![("shell-bridge", None), ("test-hostile", Some(HOSTILE_GRANTS.into()))],
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn hostile_plugins_fail_their_run_and_the_host_keeps_serving() {
    let s = hostile_server().await;
    let c = &s.client;
    c.add("interval", "healthy", "bash scripts/hello.sh", "1s").await;
    let cases = [
        ("loop", "plugin exceeded its compute time limit of 1s"),
        ("alloc", "plugin exceeded its memory limit of 16 MiB"),
        ("trap", "plugin trapped: "),
        ("bigout", "plugin exceeded its memory limit of 16 MiB"),
        ("ungranted", "program \"bash\" is not granted to plugin test-hostile"),
        ("declare", "declared failure"),
        ("fail", "ran and failed"),
    ];
    for (what, _) in cases {
        c.add("date", what, &format!("hostile:{what}"), "now").await;
    }
    for (what, want) in cases {
        let rows = c.wait_history(what, 1, Duration::from_secs(30)).await;
        assert_eq!(rows.len(), 1, "{what}: one history row");
        assert_eq!(rows[0]["cmd_is_success"], false, "{what}");
        let out = rows[0]["cmd_output"].as_str().unwrap();
        assert!(out.starts_with(want), "{what}: {out}");
        // date jobs are gone after their run
        assert_eq!(c.post("job_show", json!({"job_id": what})).await.stat, "ERR", "{what}");
    }
    // the healthy job kept running meanwhile, and the API answers
    let before = c.history("healthy").await.len();
    let after = c.wait_history("healthy", before + 2, Duration::from_secs(10)).await;
    assert!(after.len() >= before + 2);
    assert!(after.iter().all(|r| r["cmd_is_success"] == true));
    s.stop().await;
}

#[tokio::test]
async fn huge_output_is_truncated_to_the_history_limit() {
    let s = TestServer::start(ServerOptions {
        plugins: vec![("test-hostile", Some("memory_mb = 512\ncpu_secs = 20\n".into()))],
        ..Default::default()
    })
    .await;
    let c = &s.client;
    c.add("date", "big", "hostile:bigout", "now").await;
    let rows = c.wait_history("big", 1, Duration::from_secs(60)).await;
    assert_eq!(rows[0]["cmd_is_success"], true);
    assert_eq!(rows[0]["cmd_output"].as_str().unwrap().len(), 4096);
    s.stop().await;
}

#[tokio::test]
async fn a_plugin_that_loops_in_validate_is_refused_not_hung() {
    let s = hostile_server().await;
    let a = s.client.post("job_add", json!({"job_trigger": "interval", "job_id": "v", "job_name": "n", "cmd": "hostile:validate-loop", "rule": "1s"})).await;
    assert_eq!(a.stat, "ERR");
    assert!(a.reason.unwrap().contains("compute time limit"));
    let a = s
        .client
        .post(
            "job_add",
            json!({"job_trigger": "interval", "job_id": "v", "job_name": "n", "cmd": "hostile:refuse", "rule": "1s"}),
        )
        .await;
    assert_eq!((a.stat.as_str(), a.reason.as_deref()), ("ERR", Some("hostile refuses this cmd")));
    assert_eq!(s.client.get("job_list", "").await.data()["total"], 0);
    s.stop().await;
}

#[tokio::test]
async fn script_timeout_kills_the_whole_process_group() {
    let s = TestServer::start(ServerOptions {
        plugins: vec![("shell-bridge", Some("programs = [\"bash\"]\ncommand_timeout_secs = 1\n".into()))],
        ..Default::default()
    })
    .await;
    let c = &s.client;
    let pidfile = s.dir.path().join("child.pid");
    c.add("date", "slow", &format!("bash scripts/spawn_and_sleep.sh {}", pidfile.display()), "now").await;
    let rows = c.wait_history("slow", 1, Duration::from_secs(20)).await;
    assert_eq!(rows[0]["cmd_is_success"], false);
    assert_eq!(rows[0]["cmd_output"], "exe timeout");
    let cost = rows[0]["cmd_cost"].as_f64().unwrap();
    assert!((0.9..5.0).contains(&cost), "cost {cost}");
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    // the background child was in the group and is gone (or a zombie reaped by init soon)
    let mut gone = false;
    for _ in 0..50 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.contains(") Z ") {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "child {pid} survived the timeout");
    // python is not granted here: refused at run time with a clear reason
    c.add("date", "py", "python scripts/args.py a b", "now").await;
    let rows = c.wait_history("py", 1, Duration::from_secs(20)).await;
    assert_eq!(rows[0]["cmd_is_success"], false);
    assert_eq!(rows[0]["cmd_output"], "program \"python\" is not granted to plugin shell-bridge");
    s.stop().await;
}

#[tokio::test]
async fn python_scripts_get_their_arguments() {
    let s = TestServer::start(ServerOptions::default()).await;
    s.client.add("date", "py", "python scripts/args.py a b", "now").await;
    let rows = s.client.wait_history("py", 1, Duration::from_secs(20)).await;
    assert_eq!(rows[0]["cmd_output"], "args: a b");
    assert_eq!(rows[0]["cmd_is_success"], true);
    s.stop().await;
}

#[tokio::test]
async fn longest_prefix_wins_and_unclaimed_cmds_fall_back_to_shell_bridge() {
    let s = TestServer::start(ServerOptions {
        plugins: vec![("shell-bridge", None), ("template", None)],
        ..Default::default()
    })
    .await;
    let c = &s.client;
    c.add("date", "echo", "echo:hi there", "now").await;
    let rows = c.wait_history("echo", 1, Duration::from_secs(20)).await;
    assert_eq!((rows[0]["cmd_output"].as_str(), rows[0]["cmd_is_success"].as_bool()), (Some("hi there"), Some(true)));
    let a = c
        .post("job_add", json!({"job_trigger": "date", "job_id": "e2", "job_name": "n", "cmd": "echo:", "rule": "now"}))
        .await;
    assert_eq!(
        (a.stat.as_str(), a.reason.as_deref()),
        ("ERR", Some("echo cmds look like echo:TEXT with a non-empty TEXT"))
    );
    // `echo x` is not `echo:`: shell-bridge's fallback refuses it with RuQi's reason
    let a = c
        .post(
            "job_add",
            json!({"job_trigger": "date", "job_id": "e3", "job_name": "n", "cmd": "echo x", "rule": "now"}),
        )
        .await;
    assert_eq!(a.reason.as_deref(), Some("(scripts) Cmd does not meet expectations"));
    s.stop().await;
}

#[tokio::test]
async fn without_plugins_cmds_are_refused_with_a_reason() {
    let s = TestServer::start(ServerOptions { plugins: vec![], ..Default::default() }).await;
    let a = s.client.post("job_add", json!({"job_trigger": "date", "job_id": "x", "job_name": "n", "cmd": "bash scripts/hello.sh", "rule": "now"})).await;
    assert_eq!((a.stat.as_str(), a.reason.as_deref()), ("ERR", Some("no plugin serves this cmd")));
    s.stop().await;
}

#[tokio::test]
async fn registry_refuses_duplicate_prefixes_and_reports_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    ruqi_tests::install_plugin(dir.path(), "template", None);
    std::fs::copy(ruqi_tests::wasm("template"), dir.path().join("zz-copy.wasm")).unwrap();
    std::fs::write(dir.path().join("broken.wasm"), b"not wasm").unwrap();
    let runtime = std::sync::Arc::new(ruqi::plugin::Runtime::new(ruqi_tests::fixtures(), None).unwrap());
    let registry = ruqi::plugin::Registry::open(runtime, dir.path().to_owned()).await.unwrap();
    let statuses = format!("{:?}", registry.statuses());
    assert!(statuses.contains("broken.wasm") && statuses.contains("cannot load plugin"), "{statuses}");
    assert!(statuses.contains("prefix \\\"echo:\\\" is claimed by both echo and echo"), "{statuses}");
    assert!(registry.select("echo:x").unwrap().file.ends_with("template.wasm"));
    assert!(registry.select("bash x").is_none());
}

/// Adds a job with `cmd`, returning (stat, reason); removes it again when it was added.
async fn try_add(c: &ruqi_tests::Client, cmd: &str) -> (String, String) {
    let a = c
        .post(
            "job_add",
            json!({"job_trigger": "interval", "job_id": "probe", "job_name": "t", "cmd": cmd, "rule": "1h"}),
        )
        .await;
    if a.stat == "OK" {
        assert_eq!(c.post("job_remove", json!({"job_id": "probe"})).await.stat, "OK");
    }
    (a.stat, a.reason.unwrap_or_default())
}

/// Polls `try_add(cmd)` until its stat is `want`; returns how long it took.
async fn until_stat(c: &ruqi_tests::Client, cmd: &str, want: &str) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let (stat, reason) = try_add(c, cmd).await;
        if stat == want {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{cmd}: still {stat} ({reason})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn plugins_dropped_into_the_folder_are_hot_reloaded() {
    let s = TestServer::start(ServerOptions::default()).await;
    let c = &s.client;
    let dir = s.plugins_dir();
    // not served yet: the shell-bridge fallback refuses it with RuQi's reason
    assert_eq!(try_add(c, "echo:hi").await, ("ERR".into(), "(scripts) Cmd does not meet expectations".into()));

    // added: a job with its prefix runs
    ruqi_tests::install_plugin(&dir, "template", None);
    until_stat(c, "echo:hi", "OK").await;
    c.add("date", "echoed", "echo:dropped in", "now").await;
    let rows = c.wait_history("echoed", 1, Duration::from_secs(10)).await;
    assert_eq!((rows[0]["cmd_is_success"].clone(), rows[0]["cmd_output"].clone()), (json!(true), json!("dropped in")));

    // replaced by a broken file: once the reload has seen it fail, the previous version keeps serving
    std::fs::write(dir.join("template.wasm"), b"not a component").unwrap();
    let registry = s.node.as_ref().unwrap().registry.clone();
    let failed = || {
        registry
            .statuses()
            .iter()
            .any(|st| matches!(st, ruqi::plugin::PluginStatus::Failed { file, .. } if file.ends_with("template.wasm")))
    };
    let started = std::time::Instant::now();
    while !failed() {
        assert!(started.elapsed() < Duration::from_secs(20), "the reload never reported the broken file");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(try_add(c, "echo:still").await.0, "OK");

    // removed: refused again
    std::fs::remove_file(dir.join("template.wasm")).unwrap();
    until_stat(c, "echo:hi", "ERR").await;
    // the host keeps serving scripts throughout
    assert_eq!(try_add(c, "bash scripts/hello.sh").await.0, "OK");
    s.stop().await;
}
