//! What the dashboard's overview and run strips read, at the API boundary on SQLite and MariaDB:
//! `stats_overview` counts the runs of the last hour per minute and per hour by outcome (a
//! fire time skipped past the misfire grace as `missed`), gives lateness p50/p99 for scheduled runs, and lists the
//! slowest and the most failing jobs; `job_strip` answers a job's last runs, newest first; bad
//! input is refused; `ruqi stats` prints the overview.

use std::time::Duration;

use ruqi_tests::{MysqlDb, ServerOptions, TestServer};
use serde_json::{Value, json};

/// Sums `runs[outcome]` over buckets.
fn total(buckets: &Value, outcome: &str) -> u64 {
    buckets.as_array().into_iter().flatten().map(|b| b["runs"][outcome].as_u64().unwrap_or(0)).sum()
}

async fn overview_and_strip(store: Option<String>) {
    let s = TestServer::start(ServerOptions {
        plugins: vec![("shell-bridge", None), ("test-hostile", None)],
        store,
        ..Default::default()
    })
    .await;
    let c = &s.client;
    for (id, cmd, rule) in
        [("ok", "hostile:noop", "1s"), ("bad", "hostile:fail", "1s"), ("slow", "hostile:sleep", "2s")]
    {
        let body = json!({"job_trigger": "interval", "job_id": id, "job_name": "stats", "cmd": cmd, "rule": rule});
        assert_eq!(c.post("job_add", body).await.stat, "OK", "{id}");
    }
    // Runs for a few seconds; the rollups are written with the runs' ends.
    let mut data = Value::Null;
    for _ in 0..150 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let a = c.get("stats_overview", "").await;
        assert_eq!(a.stat, "OK");
        data = a.data().clone();
        if total(&data["minutes"], "success") >= 4 && total(&data["minutes"], "failed") >= 4 {
            break;
        }
    }
    let (ok_runs, failed) = (total(&data["minutes"], "success"), total(&data["minutes"], "failed"));
    assert!(ok_runs >= 4 && failed >= 4, "{data}");
    // The hours hold at least what the minutes do (the same runs, summed differently).
    assert!(total(&data["hours"], "success") >= ok_runs && total(&data["hours"], "failed") >= failed, "{data}");
    let minute = &data["minutes"].as_array().unwrap()[0];
    assert!(minute["start"].as_str().is_some_and(|t| t.ends_with(":00")), "minutes start on the minute: {minute}");
    assert!(
        data["minutes"].as_array().unwrap().iter().any(|m| m["late_p99_ms"].as_f64().is_some_and(|p| p >= 0.0)),
        "scheduled runs have a lateness: {data}"
    );
    let failing = data["failing"].as_array().unwrap();
    assert_eq!(failing[0]["job_id"], "bad", "{data}");
    assert!(failing.iter().all(|j| j["job_id"] != "ok"), "a job without failures is not failing: {data}");
    let slowest = data["slowest"].as_array().unwrap();
    assert!(!slowest.is_empty() && slowest.iter().all(|j| j["runs"].as_u64() > Some(0)), "{data}");

    // A job's strip: its last runs, newest first, each with its outcome.
    let strip = c.get("job_strip", "job_id=bad&count=3").await;
    assert_eq!(strip.stat, "OK");
    let list = strip.data()["list"].as_array().unwrap().clone();
    assert_eq!(list.len(), 3, "{}", strip.data());
    assert!(list.iter().all(|r| r["outcome"] == "failed" && r["run_id"].is_string()), "{list:?}");
    assert!(list[0]["ended"].as_str() >= list[2]["ended"].as_str(), "newest first: {list:?}");
    assert_eq!(c.get("job_strip", "job_id=nobody").await.data()["list"], json!([]));
    for bad in ["job_id=bad&count=0", "job_id=bad&count=201", "job_id=bad&count=x", "count=3"] {
        assert_ne!(c.get("job_strip", bad).await.stat, "OK", "{bad}");
    }
    assert_ne!(c.get("stats_overview", "job_id=x").await.stat, "OK", "stats_overview takes no parameter");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_and_strip_on_sqlite() {
    overview_and_strip(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_and_strip_on_mariadb() {
    let db = MysqlDb::create("stats").await;
    overview_and_strip(Some(db.url.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_fire_time_is_counted() {
    let s = TestServer::start(ServerOptions { plugins: vec![("test-hostile", None)], ..Default::default() }).await;
    let c = &s.client;
    // With a misfire grace of 0, every fire time is found late (by microseconds) and skipped.
    let body = json!({"job_trigger": "interval", "job_id": "late", "job_name": "stats", "cmd": "hostile:noop",
        "rule": "1s", "misfire_grace": 0});
    assert_eq!(c.post("job_add", body).await.stat, "OK");
    let mut data = Value::Null;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        data = c.get("stats_overview", "").await.data().clone();
        if total(&data["minutes"], "missed") >= 2 {
            break;
        }
    }
    assert!(total(&data["minutes"], "missed") >= 2, "{data}");
    assert_eq!(total(&data["minutes"], "success"), 0, "nothing ran: {data}");
    assert_eq!(c.get("job_strip", "job_id=late").await.data()["list"], json!([]), "a missed fire time is no run");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_the_overview() {
    let s = TestServer::start(ServerOptions { plugins: vec![("test-hostile", None)], ..Default::default() }).await;
    let body =
        json!({"job_trigger": "interval", "job_id": "bad", "job_name": "stats", "cmd": "hostile:fail", "rule": "1s"});
    assert_eq!(s.client.post("job_add", body).await.stat, "OK");
    assert!(!s.client.wait_history("bad", 2, Duration::from_secs(10)).await.is_empty());
    let out = std::process::Command::new(ruqi_tests::ruqi_bin())
        .args(["--server", &format!("http://{}", s.node.as_ref().unwrap().addr), "stats"])
        .output()
        .expect("ruqi stats");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("last hour:") && text.contains("failed"), "{text}");
    assert!(text.contains("most failing jobs") && text.contains("bad"), "{text}");
    s.stop().await;
}
