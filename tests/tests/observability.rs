//! What operators watch: `/healthz`, `/readyz` (store reachable, plugins loaded), `/metrics` in
//! Prometheus' text format (runs by plugin and outcome, lateness, API requests by route and stat,
//! gauges), behind the token; and the log: one line per run with job_id, run_id, plugin,
//! duration and outcome, JSON with `--log-format json`, no colour codes when not on a terminal.

use std::time::Duration;

use ruqi_tests::cluster::{NodeProcess, node_args};
use ruqi_tests::{ServerOptions, TestServer, install_plugin, ruqi_bin};
use serde_json::{Value, json};

async fn get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The value of the first sample line `name{…labels…} value` whose labels contain `labels`.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let s = TestServer::start(ServerOptions { tokens: vec!["t".into()], ..Default::default() }).await;
    let addr = s.node.as_ref().unwrap().addr;
    assert_eq!(get(addr, "/healthz", None).await, (200, "ok\n".into()));
    assert_eq!(get(addr, "/readyz", None).await, (200, "ready\n".into()));
    assert_eq!(get(addr, "/metrics", None).await.0, 401, "metrics are behind the token");

    let c = s.client.with_token("t");
    c.add("date", "ok", "bash scripts/hello.sh", "now").await;
    c.add("date", "bad", "bash scripts/fail.sh", "now").await;
    c.wait_history("ok", 1, Duration::from_secs(20)).await;
    c.wait_history("bad", 1, Duration::from_secs(20)).await;
    assert_eq!(c.post("job_show", json!({"job_id": "nope"})).await.stat, "ERR");
    let (status, text) = get(addr, "/metrics", Some("t")).await;
    assert_eq!(status, 200);
    let want = [
        ("ruqi_runs_started_total", r#"plugin="shell-bridge""#, 2.0),
        ("ruqi_runs_finished_total", r#"outcome="succeeded""#, 1.0),
        ("ruqi_runs_finished_total", r#"outcome="failed""#, 1.0),
        ("ruqi_run_duration_seconds_count", r#"plugin="shell-bridge""#, 2.0),
        ("ruqi_fire_lateness_seconds_count", "", 2.0),
        ("ruqi_api_requests_total", r#"route="job_add",stat="OK""#, 2.0),
        ("ruqi_api_requests_total", r#"route="job_show",stat="ERR""#, 1.0),
        ("ruqi_plugins_loaded", "", 1.0),
        ("ruqi_plugin_load_failures", "", 0.0),
        ("ruqi_jobs_stored", "", 0.0),
        ("ruqi_claims_held", "", 0.0),
        ("ruqi_store_errors_total", "", 0.0),
    ];
    for (name, labels, value) in want {
        assert_eq!(sample(&text, name, labels), Some(value), "{name}{{{labels}}} in\n{text}");
    }
    assert!(text.contains("# TYPE ruqi_run_duration_seconds histogram"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "OpenMetrics text ends with # EOF");
    s.stop().await;

    // no plugins: not ready, and it says why
    let s = TestServer::start(ServerOptions { plugins: vec![], ..Default::default() }).await;
    let (status, text) = get(s.node.as_ref().unwrap().addr, "/readyz", None).await;
    assert_eq!(status, 503);
    assert!(text.contains("plugins: no plugin loaded"), "{text}");
    s.stop().await;
}

#[tokio::test]
async fn logs_are_one_json_object_per_line_with_one_line_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    install_plugin(&plugins, "shell-bridge", None);
    let store = format!("sqlite://{}", dir.path().join("r.db").display());
    let mut args = node_args(&store, &plugins, &ruqi_tests::fixtures());
    args.extend(["--log-format".into(), "json".into()]);
    // `--log-format` is a global flag: it may follow the `serve` NodeProcess puts first
    let node = NodeProcess::serve(&ruqi_bin(), &args, dir.path().join("log.json")).await;
    node.client.add("date", "j1", "bash scripts/hello.sh", "now").await;
    node.client.wait_history("j1", 1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = node.log_text();
    assert!(!log.contains('\u{1b}'), "no colour codes in a file");
    let lines: Vec<Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let runs: Vec<&Value> = lines.iter().filter(|l| l["message"] == "run").collect();
    assert_eq!(runs.len(), 1, "one line per run: {log}");
    let run = runs[0];
    assert_eq!(
        (run["job_id"].as_str(), run["plugin"].as_str(), run["outcome"].as_str()),
        (Some("j1"), Some("shell-bridge"), Some("succeeded"))
    );
    assert!(run["run_id"].as_str().is_some_and(|r| r.len() == 32) && run["duration_s"].as_f64().is_some(), "{run}");
    node.terminate();
}
