//! Overlap policies and backfill at the API boundary, on SQLite and on MariaDB: what a fire time
//! that comes while a run of its job goes on does under `skip` (RuQi's: skipped, counted in the
//! metrics), `buffer_one` (the latest runs once the run ends), `buffer_all` (each runs, in
//! order), `cancel_other` (the running run is killed) and `allow` (runs beside it), read from
//! the history rows' fire, start and end times; runs started by hand under the same policies
//! (waiting, refused, replacing); `job_backfill` (dry run, the 10,000 bound, one after another);
//! bad input refused without change. Then two real nodes on MariaDB: the rule holds across them,
//! also when the node running the job is killed with `kill -9`.

use std::path::Path;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeZone};
use serde_json::{Value, json};

use ruqi_tests::cluster::Cluster;
use ruqi_tests::{Client, MysqlDb, ServerOptions, TestServer, ok};

fn write_scripts(dir: &Path) {
    let scripts = dir.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(scripts.join("sleep.sh"), "echo sleeping\nsleep \"$1\"\n").unwrap();
    std::fs::write(scripts.join("quick.sh"), "echo \"at $RUQI_FIRE_TIME\"\n").unwrap();
    std::fs::write(scripts.join("fails.sh"), "echo failing\nexit 3\n").unwrap();
    std::fs::write(scripts.join("args.sh"), "for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\n").unwrap();
}

async fn server(store: Option<String>) -> (TestServer, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    write_scripts(work.path());
    let opts = ServerOptions { store, workdir: Some(work.path().to_owned()), ..Default::default() };
    (TestServer::start(opts).await, work)
}

async fn add(c: &Client, trigger: &str, id: &str, cmd: &str, rule: &str, extra: Value) {
    let mut body = json!({"job_trigger": trigger, "job_id": id, "job_name": "ov", "cmd": cmd, "rule": rule});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    ok(&c.post("job_add", body).await, &format!("add {id}"));
}

/// A time as the API prints it (Asia/Shanghai, the test servers' zone), in seconds.
fn secs(v: &Value) -> f64 {
    let t = NaiveDateTime::parse_from_str(v.as_str().unwrap_or_else(|| panic!("a time: {v}")), "%Y-%m-%d %H:%M:%S%.f")
        .unwrap();
    chrono_tz::Asia::Shanghai.from_local_datetime(&t).unwrap().timestamp_micros() as f64 / 1e6
}

/// One history row's fire, start and end times, and outcome.
#[derive(Debug)]
struct Row {
    fire: f64,
    started: f64,
    ended: f64,
    outcome: String,
    node: String,
}

/// The job's history rows, oldest fire time first.
async fn rows(c: &Client, job: &str) -> Vec<Row> {
    let mut rows: Vec<Row> = c
        .history(job)
        .await
        .iter()
        .map(|r| Row {
            fire: secs(&r["fire_time"]),
            started: secs(&r["started"]),
            ended: secs(&r["ended"]),
            outcome: r["outcome"].as_str().unwrap().to_owned(),
            node: r["scheduler_name"].as_str().unwrap().to_owned(),
        })
        .collect();
    rows.sort_by(|a, b| a.fire.total_cmp(&b.fire));
    rows
}

/// Asserts no run of `rows` started before the one before it ended.
fn never_overlapping(job: &str, rows: &[Row]) {
    for w in rows.windows(2) {
        assert!(w[1].started >= w[0].ended - 0.001, "{job}: a run started while another went on: {w:?}");
    }
}

fn gaps(rows: &[Row]) -> Vec<f64> {
    rows.windows(2).map(|w| ((w[1].fire - w[0].fire) * 1000.0).round() / 1000.0).collect()
}

/// Polls `run_show` until the run is in `state`; its data.
async fn in_state(c: &Client, run_id: &str, state: &str, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let d = ok(&c.post("run_show", json!({"run_id": run_id})).await, "run_show");
        if d["state"] == state {
            return d;
        }
        assert!(tokio::time::Instant::now() < deadline, "run {run_id} not {state}: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(c: &Client, body: Value) -> String {
    ok(&c.post("job_run", body).await, "job_run")["run_id"].as_str().unwrap().to_owned()
}

async fn policies(store: Option<String>) {
    let (s, _work) = server(store).await;
    let c = &s.client;

    // Bad input: refused, nothing stored or changed.
    let bad = c
        .post(
            "job_add",
            json!({"job_trigger": "interval", "job_id": "bad", "job_name": "x", "cmd": "bash scripts/quick.sh",
                   "rule": "1s", "overlap": "sometimes"}),
        )
        .await;
    assert_eq!(bad.stat, "ERR_BAD_PARAMS", "{bad:?}");
    assert_eq!(c.post("job_show", json!({"job_id": "bad"})).await.stat, "ERR");

    // Five interval jobs whose runs outlast their interval, one per policy, side by side.
    let long = |secs: &str| format!("bash scripts/sleep.sh {secs}");
    add(c, "interval", "skip", &long("2.5"), "1s", json!({})).await;
    add(c, "interval", "b1", &long("2.5"), "1s", json!({"overlap": "buffer_one"})).await;
    add(c, "interval", "ball", &long("1.5"), "1s", json!({"overlap": "buffer_all"})).await;
    add(c, "interval", "cancel", &long("100"), "2s", json!({"overlap": "cancel_other"})).await;
    add(c, "interval", "allow", &long("2.5"), "1s", json!({"overlap": "allow"})).await;
    let retried = json!({"overlap": "allow", "retries": 1, "retry_delay": 2});
    add(c, "cron", "allowretry", "bash scripts/fails.sh", "*/10 * * * * *", retried).await;
    assert_eq!(ok(&c.post("job_show", json!({"job_id": "b1"})).await, "show")["overlap"], "buffer_one");
    assert!(ok(&c.post("job_show", json!({"job_id": "skip"})).await, "show").get("overlap").is_none());
    tokio::time::sleep(Duration::from_secs(10)).await;
    for job in ["skip", "b1", "ball", "cancel", "allow"] {
        ok(&c.post("job_pause", json!({"job_id": job})).await, "pause");
    }
    // An `allow` job lets go of its claim when a run starts; a failed run still gets its retry.
    let tried = c.wait_history("allowretry", 2, Duration::from_secs(15)).await;
    let tries: Vec<(Option<&str>, Option<u64>)> =
        tried.iter().rev().map(|r| (r["trigger"].as_str(), r["attempt"].as_u64())).collect();
    assert_eq!(tries[..2], [(Some("scheduled"), Some(1)), (Some("retry"), Some(2))], "{tried:?}");
    ok(&c.post("job_pause", json!({"job_id": "allowretry"})).await, "pause");

    // skip: the fire times that came during a run are skipped: the next run is the rule's
    // first fire time after its end (3 s later), and they are counted.
    let r = rows(c, "skip").await;
    assert!(r.len() >= 2, "{r:?}");
    never_overlapping("skip", &r);
    assert!(gaps(&r).iter().all(|g| *g == 3.0), "skip: {:?}", gaps(&r));
    let metrics = c.send(reqwest::Method::GET, "/metrics", None).await.text;
    let skipped: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ruqi_runs_overlap_skipped_total "))
        .expect("overlap metric")
        .parse()
        .unwrap();
    assert!(skipped >= 4.0, "{skipped}");

    // buffer_one: the latest fire time that came during a run starts as soon as it ends.
    let r = rows(c, "b1").await;
    assert!(r.len() >= 3, "{r:?}");
    never_overlapping("b1", &r);
    assert!(gaps(&r).iter().all(|g| *g == 2.0 || *g == 3.0), "b1: {:?}", gaps(&r));
    for w in r.windows(2) {
        assert!(w[1].started - w[0].ended < 0.9, "b1 waited for a fire time instead of starting: {w:?}");
        assert!(w[1].fire <= w[0].ended, "b1 ran a fire time that came during the run before: {w:?}");
    }

    // buffer_all: every fire time runs, in order, one after another.
    let r = rows(c, "ball").await;
    assert!(r.len() >= 5, "{r:?}");
    never_overlapping("ball", &r);
    assert!(gaps(&r).iter().all(|g| *g == 1.0), "ball: {:?}", gaps(&r));

    // cancel_other: each run is killed when the next fire time comes, which then runs.
    let r = rows(c, "cancel").await;
    assert!(r.len() >= 3, "{r:?}");
    never_overlapping("cancel", &r);
    assert!(gaps(&r).iter().all(|g| *g == 2.0), "cancel: {:?}", gaps(&r));
    for w in r.windows(2) {
        assert_eq!(w[0].outcome, "killed", "{w:?}");
        assert!((w[0].ended - w[1].fire).abs() < 1.5, "killed at the next fire time: {w:?}");
    }
    let row = &c.history("cancel").await.into_iter().find(|r| r["outcome"] == "killed").unwrap();
    assert!(row["cmd_output"].as_str().unwrap().contains("cancel_other"), "{row}");

    // allow: every fire time runs at once, beside the runs still going.
    let r = rows(c, "allow").await;
    assert!(r.len() >= 6, "{r:?}");
    assert!(gaps(&r).iter().all(|g| *g == 1.0), "allow: {:?}", gaps(&r));
    assert!(r.windows(2).any(|w| w[1].started < w[0].ended), "allow: runs overlap: {r:?}");
    assert!(r.iter().all(|r| r.started - r.fire < 0.9), "allow: on time: {r:?}");

    // By hand, under the job's policy. buffer_one: a second run waits (and shows so), a third is
    // refused while one waits; the waiting one starts when the first ends.
    let never = "0 0 3 1 1 *";
    add(c, "cron", "mb1", "bash scripts/sleep.sh 2", never, json!({"overlap": "buffer_one"})).await;
    let first = run(c, json!({"job_id": "mb1"})).await;
    let second = run(c, json!({"job_id": "mb1"})).await;
    assert_eq!(ok(&c.post("run_show", json!({"run_id": second})).await, "show")["state"], "waiting");
    let waiting = ok(&c.post("run_list", json!({"job_id": "mb1", "state": "waiting"})).await, "run_list");
    assert_eq!(waiting["total"], 1, "{waiting}");
    let third = c.post("job_run", json!({"job_id": "mb1"})).await;
    assert_eq!(third.stat, "ERR", "{third:?}");
    assert!(third.reason.unwrap().contains("already waits"));
    let a = in_state(c, &first, "ended", Duration::from_secs(10)).await;
    let b = in_state(c, &second, "ended", Duration::from_secs(10)).await;
    assert_eq!((a["outcome"].as_str(), b["outcome"].as_str()), (Some("success"), Some("success")));
    assert!(secs(&b["started"]) >= secs(&a["ended"]) - 0.001, "{a} {b}");
    assert_eq!(c.history("mb1").await.len(), 2);

    // A waiting run can be killed: it never runs.
    let first = run(c, json!({"job_id": "mb1"})).await;
    let second = run(c, json!({"job_id": "mb1"})).await;
    ok(&c.post("run_kill", json!({"run_id": second})).await, "kill the waiting run");
    let killed = in_state(c, &second, "ended", Duration::from_secs(3)).await;
    assert_eq!(killed["outcome"], "killed");
    in_state(c, &first, "ended", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(c.history("mb1").await.len(), 3, "the killed waiting run left no history row");

    // cancel_other: a run asked for by hand replaces the running one.
    add(c, "cron", "mc", "bash scripts/sleep.sh 100", never, json!({"overlap": "cancel_other"})).await;
    let first = run(c, json!({"job_id": "mc"})).await;
    in_state(c, &first, "running", Duration::from_secs(5)).await;
    let second = run(c, json!({"job_id": "mc"})).await;
    let a = in_state(c, &first, "ended", Duration::from_secs(5)).await;
    assert_eq!(a["outcome"], "killed");
    in_state(c, &second, "running", Duration::from_secs(5)).await;
    ok(&c.post("run_kill", json!({"run_id": second})).await, "kill");
    in_state(c, &second, "ended", Duration::from_secs(5)).await;

    // The policy given with the request wins over the job's (skip here): the run waits.
    add(c, "cron", "ms", "bash scripts/sleep.sh 1", never, json!({})).await;
    let first = run(c, json!({"job_id": "ms"})).await;
    assert_eq!(c.post("job_run", json!({"job_id": "ms"})).await.stat, "ERR");
    let second = run(c, json!({"job_id": "ms", "overlap": "buffer_all"})).await;
    let a = in_state(c, &first, "ended", Duration::from_secs(10)).await;
    let b = in_state(c, &second, "ended", Duration::from_secs(10)).await;
    assert!(secs(&b["started"]) >= secs(&a["ended"]) - 0.001, "{a} {b}");
    let bad = c.post("job_run", json!({"job_id": "ms", "overlap": "never"})).await;
    assert_eq!(bad.stat, "ERR_BAD_PARAMS", "{bad:?}");
    let bad = c.post("job_run", json!({"job_id": "ms", "params": "x".repeat(70_000)})).await;
    assert_eq!(bad.stat, "ERR_BAD_PARAMS", "{bad:?}");

    // params reach the plugin: shell-bridge appends them as arguments (shell quoting, no shell
    // syntax); the run's row keeps them.
    add(c, "cron", "args", "bash scripts/args.sh fixed", never, json!({})).await;
    let id = run(c, json!({"job_id": "args", "params": "a 'b c'"})).await;
    let shown = in_state(c, &id, "ended", Duration::from_secs(10)).await;
    assert_eq!((shown["outcome"].as_str(), shown["output"].as_str()), (Some("success"), Some("[fixed]\n[a]\n[b c]")));
    assert_eq!(shown["params"], "a 'b c'");
    let id = run(c, json!({"job_id": "args", "params": "x; rm -rf /tmp/nothing"})).await;
    let shown = in_state(c, &id, "ended", Duration::from_secs(10)).await;
    assert_eq!(shown["outcome"], "failed", "{shown}");
    assert!(!shown["output"].as_str().unwrap().contains("[x"), "{shown}");
    // The same through curl, a client not written here: params in a JSON body, a backfill's
    // dry run in a query string.
    let base = format!("http://{}/ruqi", s.node.as_ref().unwrap().addr);
    let curl = |args: &[&str]| -> Value {
        let out = std::process::Command::new("curl").arg("-sS").args(args).output().expect("curl");
        assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("curl {args:?}: {e}"))
    };
    let job_run = format!("{base}/job_run");
    let body = json!({"job_id": "args", "params": "x 'y z'"}).to_string();
    let answer = curl(&["-H", "Content-Type: application/json", "--data-binary", &body, &job_run]);
    assert_eq!(answer["stat"], "OK", "{answer}");
    let shown = in_state(c, answer["data"]["run_id"].as_str().unwrap(), "ended", Duration::from_secs(10)).await;
    assert_eq!(shown["output"], "[fixed]\n[x]\n[y z]", "{shown}");
    let dry =
        format!("{base}/job_backfill?job_id=args&start=2026-01-01%2000:00:00&end=2026-01-01%2004:00:00&dry_run=1");
    let answer = curl(&[&dry]);
    assert_eq!((answer["stat"].as_str(), answer["data"]["count"].as_u64()), (Some("OK"), Some(1)), "{answer}");
    assert_eq!(answer["data"]["list"][0]["fire_time"], "2026-01-01 03:00:00", "{answer}");

    backfill(c).await;
    s.stop().await;
}

/// `job_backfill`: a dry run lists the window's fire times (the job's zone); a window of more
/// than 10,000 is refused with its count; a real one runs each, one after another, as
/// `backfill`, beside the history of the fire times that already ran; bad input is refused.
async fn backfill(c: &Client) {
    add(c, "cron", "bf", "bash scripts/quick.sh", "0 0 * * * *", json!({})).await;
    let window = json!({"job_id": "bf", "start": "2026-12-01 00:00:00", "end": "2026-12-01 03:00:00"});
    let mut dry = window.clone();
    dry["dry_run"] = json!(1);
    let d = ok(&c.post("job_backfill", dry).await, "dry run");
    assert_eq!((d["count"].as_u64(), d["dry_run"].as_bool()), (Some(4), Some(true)), "{d}");
    let fires: Vec<&str> = d["list"].as_array().unwrap().iter().map(|f| f["fire_time"].as_str().unwrap()).collect();
    assert_eq!(fires, ["2026-12-01 00:00:00", "2026-12-01 01:00:00", "2026-12-01 02:00:00", "2026-12-01 03:00:00"]);
    assert!(d["list"][0]["run_id"].is_null());
    assert!(c.history("bf").await.is_empty(), "a dry run runs nothing");

    let d = ok(&c.post("job_backfill", window.clone()).await, "backfill");
    assert_eq!(d["count"], 4);
    let ids: Vec<String> = d["list"].as_array().unwrap().iter().map(|f| f["run_id"].as_str().unwrap().into()).collect();
    // Each run's row is written when it starts waiting for the one before it.
    let history = c.wait_history("bf", 4, Duration::from_secs(20)).await;
    let last = in_state(c, &ids[3], "ended", Duration::from_secs(5)).await;
    assert_eq!((last["trigger"].as_str(), last["outcome"].as_str()), (Some("backfill"), Some("success")));
    assert!(history.iter().all(|r| r["trigger"] == "backfill"), "{history:?}");
    let r = rows(c, "bf").await;
    never_overlapping("bf", &r);
    assert_eq!(gaps(&r), [3600.0, 3600.0, 3600.0]);
    // The same window again: its own runs and rows, beside the first.
    let d = ok(&c.post("job_backfill", window).await, "backfill again");
    let again = d["list"][3]["run_id"].as_str().unwrap().to_owned();
    assert!(!ids.contains(&again));
    assert_eq!(c.wait_history("bf", 8, Duration::from_secs(20)).await.len(), 8);

    // Too wide: refused with the count; nothing runs.
    add(c, "cron", "bfs", "bash scripts/quick.sh", "* * * * * *", json!({})).await;
    ok(&c.post("job_pause", json!({"job_id": "bfs"})).await, "pause");
    let wide = json!({"job_id": "bfs", "start": "2026-12-01 00:00:00", "end": "2026-12-02 00:00:00"});
    let a = c.post("job_backfill", wide).await;
    assert_eq!(a.stat, "ERR", "{a:?}");
    assert!(a.reason.as_deref().unwrap().contains("86401"), "{a:?}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(c.history("bfs").await.is_empty());
    // A date job, an unknown job, a bad time, an end before the start.
    add(c, "date", "bfd", "bash scripts/quick.sh", "2030-01-01 00:00:00", json!({})).await;
    let cases = [
        (json!({"job_id": "bfd", "start": "2026-12-01 00:00:00", "end": "2026-12-01 03:00:00"}), "ERR"),
        (json!({"job_id": "nope", "start": "2026-12-01 00:00:00", "end": "2026-12-01 03:00:00"}), "ERR"),
        (json!({"job_id": "bf", "start": "yesterday", "end": "2026-12-01 03:00:00"}), "ERR_BAD_PARAMS"),
        (json!({"job_id": "bf", "start": "2026-12-01 03:00:00", "end": "2026-12-01 00:00:00"}), "ERR_BAD_PARAMS"),
        (json!({"job_id": "bf", "start": "2026-12-01 00:00:00"}), "ERR_BAD_PARAMS"),
        (
            json!({"job_id": "bf", "start": "2026-12-01 00:00:00", "end": "2026-12-01 01:00:00", "overlap": "skip"}),
            "ERR_BAD_PARAMS",
        ),
    ];
    for (body, stat) in cases {
        let a = c.post("job_backfill", body.clone()).await;
        assert_eq!(a.stat, stat, "{body}: {a:?}");
    }
    assert_eq!(c.history("bf").await.len(), 8, "refused requests ran nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlap_policies_and_backfill_on_sqlite() {
    policies(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlap_policies_and_backfill_on_mariadb() {
    let db = MysqlDb::create("overlap").await;
    policies(Some(db.url.clone())).await;
}

/// Two real nodes on MariaDB: a `buffer_all` job whose runs outlast its interval runs every fire
/// time once, never two at once, whichever node takes it; a `buffer_one` job's node is killed
/// with `kill -9` while it runs, and the other node goes on by the same rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_holds_across_nodes_and_a_node_kill() {
    let mut c = Cluster::new("overlap2", &["--lease", "3"]).await;
    write_scripts(c.path());
    let a = c.start_node().await;
    let b = c.start_node().await;
    add(&a.client, "interval", "all", "bash scripts/sleep.sh 1.5", "1s", json!({"overlap": "buffer_all"})).await;
    add(&a.client, "interval", "one", "bash scripts/sleep.sh 2.5", "1s", json!({"overlap": "buffer_one"})).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    // The node running `one` now dies.
    let runner = ok(&a.client.post("run_list", json!({"job_id": "one", "state": "running"})).await, "run_list")["list"]
        [0]["node"]
        .as_str()
        .map(str::to_owned);
    let (dead, survivor) = match runner {
        Some(n) if n.ends_with(&format!(":{}", a.pid())) => (a, b),
        _ => (b, a),
    };
    dead.kill9();
    tokio::time::sleep(Duration::from_secs(10)).await;
    for job in ["all", "one"] {
        ok(&survivor.client.post("job_pause", json!({"job_id": job})).await, "pause");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = rows(&survivor.client, "all").await;
    assert!(all.len() >= 6, "{all:?}");
    // Every fire time once and in order, never two runs at once, whichever node ran them (a run
    // lost with the dead node ran again on the survivor, under the same fire time).
    never_overlapping("all", &all);
    assert!(gaps(&all).iter().all(|g| *g == 1.0), "all: {:?}", gaps(&all));
    let one = rows(&survivor.client, "one").await;
    never_overlapping("one", &one);
    let last = one.last().expect("runs of one");
    assert!(last.started > one[0].started + 8.0, "the survivor went on: {one:?}");
    assert!(one.iter().filter(|r| r.started > one[0].started + 8.0).all(|r| r.node == last.node), "{one:?}");
    assert!(last.node.ends_with(&format!(":{}", survivor.pid())), "the survivor ran the last run: {last:?}");
    assert!(survivor.terminate().success());
}
