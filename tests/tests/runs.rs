//! Run control at the API boundary, on SQLite and on MariaDB: run ids (stable for a fire time),
//! history's run keys, `job_run` (a paused job too; refused while a run holds the job unless
//! `overlap=allow`), the whole output and its live tail (`run_output`), `run_kill` (the script's
//! whole process tree gone, checked in /proc), a job's `timeout`, the environment a script gets,
//! bad input refused without change, and a body over `--max-body-bytes` answered to a plain
//! client (Python's urllib). Then the cluster: a run killed through the other of two real nodes.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use ruqi_tests::cluster::Cluster;
use ruqi_tests::{Client, MysqlDb, ServerOptions, TestServer, ok};

/// The scripts these tests run, written into the server's work directory.
fn write_scripts(dir: &Path) {
    let scripts = dir.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    let files = [
        ("quick.sh", "echo \"run $RUQI_RUN_ID job $RUQI_JOB_ID at $RUQI_FIRE_TIME\"\n"),
        // A background child and a foreground sleep, their pids written down for the test.
        ("tree.sh", "echo $$ > \"$1.lead\"\nsleep 1000 &\necho $! > \"$1.bg\"\necho started\nsleep 1000\n"),
        ("ticks.sh", "for i in 1 2 3 4 5 6 7 8 9 10; do echo \"tick $i\"; sleep 0.3; done\n"),
        ("big.sh", "head -c 100000 /dev/zero | tr '\\0' 'x'\necho\necho end-of-big\n"),
        ("sleep.sh", "echo sleeping\nsleep \"$1\"\n"),
        ("stubborn.sh", "trap 'echo got-term' TERM\necho $$ > \"$1.lead\"\nwhile true; do sleep 0.1; done\n"),
        ("fails.sh", "echo \"failing $RUQI_RUN_ID\"\nexit 3\n"),
        // Fails the first time (leaving a mark), succeeds after.
        ("flaky.sh", "if [ -e \"$1\" ]; then echo fine; else touch \"$1\"; echo first-fails; exit 1; fi\n"),
    ];
    for (name, text) in files {
        std::fs::write(scripts.join(name), text).unwrap();
    }
}

async fn server(store: Option<String>) -> (TestServer, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    write_scripts(work.path());
    let opts = ServerOptions {
        store,
        workdir: Some(work.path().to_owned()),
        tokens: vec!["full".into()],
        read_tokens: vec!["reader".into()],
        ..Default::default()
    };
    let server = TestServer::start(opts).await;
    (server, work)
}

async fn add(c: &Client, trigger: &str, id: &str, cmd: &str, rule: &str, extra: Value) {
    let mut body = json!({"job_trigger": trigger, "job_id": id, "job_name": "rc", "cmd": cmd, "rule": rule});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    ok(&c.post("job_add", body).await, &format!("add {id}"));
}

/// Polls `run_show` until the run has ended; its data.
async fn ended(c: &Client, run_id: &str, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let d = ok(&c.post("run_show", json!({"run_id": run_id})).await, "run_show");
        if d["state"] == "ended" {
            return d;
        }
        assert!(tokio::time::Instant::now() < deadline, "run {run_id} still running: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until `run_list` shows a running run of `job`; its id.
async fn running_run(c: &Client, job: &str, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let d = ok(&c.post("run_list", json!({"job_id": job, "state": "running"})).await, "run_list");
        if let Some(id) = d["list"][0]["run_id"].as_str() {
            return id.to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "no running run of {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pid_in(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether a process is alive (a zombie counts as gone).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

async fn wait_file(path: &Path, within: Duration) -> i32 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(pid) = pid_in(path) {
            return pid;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} never written", path.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Everything a single node does with runs, on the store `store` (SQLite when `None`).
async fn run_control(store: Option<String>) {
    let (s, work) = server(store).await;
    let c = s.client.with_token("full");

    // A scheduled run: its id is the one every node derives from the fire time, in history
    // with its new keys, its whole output in run_show, and the script saw its environment.
    add(&c, "interval", "quick", "bash scripts/quick.sh", "1s", json!({})).await;
    let rows = c.wait_history("quick", 1, Duration::from_secs(10)).await;
    let row = &rows[0];
    let run_id = row["run_id"].as_str().expect("history has run_id").to_owned();
    assert_eq!(row["trigger"], "scheduled");
    assert_eq!(row["outcome"], "success");
    assert_eq!(row["attempt"], 1);
    assert!(row["started"].is_string() && row["ended"].is_string() && row["fire_time"].is_string(), "{row}");
    let fire = chrono::NaiveDateTime::parse_from_str(row["fire_time"].as_str().unwrap(), "%Y-%m-%d %H:%M:%S%.f")
        .unwrap()
        .and_local_timezone(chrono_tz::Asia::Shanghai)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let id = ruqi::model::JobId::parse("quick").unwrap();
    assert_eq!(run_id, ruqi::model::scheduled_run_id(&id, fire), "run id derived from job and fire time");
    assert!(row["cmd_output"].as_str().unwrap().contains(&format!("run {run_id} job quick at ")), "{row}");
    let shown = ended(&c, &run_id, Duration::from_secs(5)).await;
    assert_eq!(shown["outcome"], "success");
    assert_eq!(shown["trigger"], "scheduled");
    assert_eq!(shown["output"], row["cmd_output"]);
    ok(&c.post("job_remove", json!({"job_id": "quick"})).await, "remove");

    // Run now, on a paused job: it runs once as `manual` and the job stays paused.
    add(&c, "cron", "manual", "bash scripts/quick.sh", "0 0 3 * * *", json!({})).await;
    ok(&c.post("job_pause", json!({"job_id": "manual"})).await, "pause");
    let d = ok(&c.post("job_run", json!({"job_id": "manual"})).await, "job_run");
    let manual = d["run_id"].as_str().unwrap().to_owned();
    assert_ne!(manual, run_id);
    let shown = ended(&c, &manual, Duration::from_secs(10)).await;
    assert_eq!((shown["trigger"].as_str(), shown["outcome"].as_str()), (Some("manual"), Some("success")));
    assert!(shown["output"].as_str().unwrap().contains(&format!("run {manual} job manual")));
    let rows = c.history("manual").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["run_id"], manual.as_str());
    assert_eq!(ok(&c.post("job_show", json!({"job_id": "manual"})).await, "show")["nexttime"], "None");
    // Unknown job; a read-only token may read runs but not start or kill one.
    let a = c.post("job_run", json!({"job_id": "nope"})).await;
    assert_eq!(a.stat, "ERR");
    assert!(a.reason.unwrap().contains("No job by the id of nope"));
    let reader = s.client.with_token("reader");
    assert_eq!(reader.post("job_run", json!({"job_id": "manual"})).await.stat, "ERR_FORBIDDEN");
    assert_eq!(reader.post("run_kill", json!({"run_id": manual})).await.stat, "ERR_FORBIDDEN");
    assert_eq!(reader.post("run_show", json!({"run_id": manual})).await.stat, "OK");

    // Overlap: a second run while one holds the job is refused, unless overlap=allow.
    add(&c, "cron", "long", "bash scripts/sleep.sh 3", "0 0 3 * * *", json!({})).await;
    let first =
        ok(&c.post("job_run", json!({"job_id": "long"})).await, "job_run long")["run_id"].as_str().unwrap().to_owned();
    let again = c.post("job_run", json!({"job_id": "long"})).await;
    assert_eq!(again.stat, "ERR", "{again:?}");
    assert!(again.reason.unwrap().contains("in progress"));
    let beside = ok(&c.post("job_run", json!({"job_id": "long", "overlap": "allow"})).await, "allow")["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = ok(&c.post("run_list", json!({"job_id": "long", "state": "running"})).await, "run_list");
    assert_eq!(listed["total"], 2, "{listed}");
    for id in [&first, &beside] {
        assert_eq!(ended(&c, id, Duration::from_secs(10)).await["outcome"], "success");
    }

    // Kill: the script's whole process tree is gone and the history says `killed`.
    add(&c, "cron", "tree", "bash scripts/tree.sh tree1", "0 0 3 * * *", json!({})).await;
    let run =
        ok(&c.post("job_run", json!({"job_id": "tree"})).await, "run tree")["run_id"].as_str().unwrap().to_owned();
    let lead = wait_file(&work.path().join("tree1.lead"), Duration::from_secs(10)).await;
    let bg = wait_file(&work.path().join("tree1.bg"), Duration::from_secs(10)).await;
    assert!(alive(lead) && alive(bg));
    let asked = tokio::time::Instant::now();
    let k = ok(&c.post("run_kill", json!({"run_id": run})).await, "run_kill");
    assert_eq!(k["kill_requested"], true);
    let shown = ended(&c, &run, Duration::from_secs(4)).await;
    assert!(asked.elapsed() < Duration::from_secs(3), "killed in {:?}", asked.elapsed());
    assert_eq!(shown["outcome"], "killed");
    assert!(shown["output"].as_str().unwrap().contains("started"), "{shown}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!alive(lead) && !alive(bg), "process tree gone: lead {lead} bg {bg}");
    let row = &c.history("tree").await[0];
    assert_eq!((row["outcome"].as_str(), row["cmd_is_success"].as_bool()), (Some("killed"), Some(false)));
    // Killing it again, or a run that does not exist, is refused with the reason.
    let again = c.post("run_kill", json!({"run_id": run})).await;
    assert_eq!(again.stat, "ERR");
    assert!(again.reason.unwrap().contains("already ended (killed)"));
    let none = c.post("run_kill", json!({"run_id": "0123456789abcdef"})).await;
    assert_eq!(none.stat, "ERR");
    assert!(none.reason.unwrap().contains("no run with id"));

    // A command that ignores SIGTERM is killed after the job's kill grace.
    add(&c, "cron", "stubborn", "bash scripts/stubborn.sh st", "0 0 3 * * *", json!({"kill_grace": 1})).await;
    let run = ok(&c.post("job_run", json!({"job_id": "stubborn"})).await, "run")["run_id"].as_str().unwrap().to_owned();
    let lead = wait_file(&work.path().join("st.lead"), Duration::from_secs(10)).await;
    ok(&c.post("run_kill", json!({"run_id": run})).await, "kill stubborn");
    let shown = ended(&c, &run, Duration::from_secs(5)).await;
    assert_eq!(shown["outcome"], "killed");
    assert!(shown["output"].as_str().unwrap().contains("got-term"), "{shown}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!alive(lead), "SIGKILL after the grace");

    // Timeout: stopped as by a kill and recorded as `timeout`; job_show shows the policy.
    add(&c, "interval", "slow", "bash scripts/sleep.sh 30", "1s", json!({"timeout": 1})).await;
    assert_eq!(ok(&c.post("job_show", json!({"job_id": "slow"})).await, "show")["timeout"], 1);
    let rows = c.wait_history("slow", 1, Duration::from_secs(10)).await;
    assert_eq!(rows[0]["outcome"], "timeout", "{}", rows[0]);
    assert!(rows[0]["cmd_cost"].as_f64().unwrap() < 3.0, "{}", rows[0]);
    assert!(rows[0]["cmd_output"].as_str().unwrap().contains("timeout of 1s"));
    ok(&c.post("job_remove", json!({"job_id": "slow"})).await, "remove slow");

    // Retries: a failed run is tried again after the delay, growing by the backoff, with its
    // own run id and attempt number; then the date job is done.
    add(
        &c,
        "date",
        "retry",
        "bash scripts/fails.sh",
        "now",
        json!({"retries": 2, "retry_delay": 1, "retry_backoff": 2}),
    )
    .await;
    let rows = c.wait_history("retry", 3, Duration::from_secs(20)).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let mut rows = rows;
    rows.reverse();
    let attempts: Vec<_> =
        rows.iter().map(|r| (r["attempt"].as_u64(), r["trigger"].as_str().unwrap().to_owned())).collect();
    assert_eq!(attempts, [(Some(1), "scheduled".into()), (Some(2), "retry".into()), (Some(3), "retry".into())]);
    let time = |r: &Value, k: &str| {
        chrono::NaiveDateTime::parse_from_str(r[k].as_str().unwrap(), "%Y-%m-%d %H:%M:%S%.f").unwrap()
    };
    let gap1 = (time(&rows[1], "started") - time(&rows[0], "ended")).as_seconds_f64();
    let gap2 = (time(&rows[2], "started") - time(&rows[1], "ended")).as_seconds_f64();
    assert!((1.0..2.5).contains(&gap1) && (2.0..3.5).contains(&gap2), "delays {gap1} {gap2}");
    let ids: std::collections::BTreeSet<_> = rows.iter().map(|r| r["run_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 3, "each attempt has its own id");
    assert!(rows.iter().all(|r| r["outcome"] == "failed"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(c.history("retry").await.len(), 3, "no retry past `retries`");
    assert_eq!(c.post("job_show", json!({"job_id": "retry"})).await.stat, "ERR", "the date job is done");
    // A retry that succeeds ends the chain; the job goes on by its rule.
    let mark = work.path().join("flaky.mark");
    add(
        &c,
        "date",
        "flaky",
        &format!("bash scripts/flaky.sh {}", mark.display()),
        "now",
        json!({"retries": 3, "retry_delay": 1}),
    )
    .await;
    let rows = c.wait_history("flaky", 2, Duration::from_secs(15)).await;
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0]["attempt"].as_u64(), rows[0]["outcome"].as_str()), (Some(2), Some("success")));
    assert_eq!((rows[1]["attempt"].as_u64(), rows[1]["outcome"].as_str()), (Some(1), Some("failed")));
    // A killed run is never retried.
    add(&c, "date", "nokill", "bash scripts/sleep.sh 30", "now", json!({"retries": 2, "retry_delay": 1})).await;
    let run = running_run(&c, "nokill", Duration::from_secs(10)).await;
    ok(&c.post("run_kill", json!({"run_id": run})).await, "kill");
    ended(&c, &run, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rows = c.history("nokill").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["outcome"], "killed");
    let shown = ok(&c.post("job_show", json!({"job_id": "long"})).await, "show");
    assert!(shown.get("retries").is_none(), "a job without retries shows none");

    // The live tail: output is read while the run goes on, and the pieces add up to the whole.
    add(&c, "cron", "ticks", "bash scripts/ticks.sh", "0 0 3 * * *", json!({})).await;
    let run = ok(&c.post("job_run", json!({"job_id": "ticks"})).await, "run")["run_id"].as_str().unwrap().to_owned();
    let (mut offset, mut text, mut seen_running) = (0u64, String::new(), false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let d = ok(&c.post("run_output", json!({"run_id": run, "offset": offset})).await, "run_output");
        let piece = d["output"].as_str().unwrap();
        if d["state"] == "running" && piece.contains("tick") {
            seen_running = true;
        }
        text.push_str(piece);
        let next = d["next_offset"].as_u64().unwrap();
        if d["state"] == "ended" && next == offset {
            break;
        }
        offset = next;
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(seen_running, "output was readable while the run went on");
    assert!(text.contains("tick 1") && text.contains("tick 10"), "{text:?}");

    // The whole output is kept; history keeps RuQi's 4,096-character summary.
    add(&c, "cron", "big", "bash scripts/big.sh", "0 0 3 * * *", json!({})).await;
    let run = ok(&c.post("job_run", json!({"job_id": "big"})).await, "run")["run_id"].as_str().unwrap().to_owned();
    let shown = ended(&c, &run, Duration::from_secs(10)).await;
    let whole = shown["output"].as_str().unwrap();
    assert!(whole.len() > 100_000 && whole.ends_with("end-of-big"), "{}", whole.len());
    assert_eq!(shown["output_bytes"].as_u64().unwrap() as usize, whole.len());
    let row = &c.history("big").await[0];
    assert_eq!(row["cmd_output"].as_str().unwrap().chars().count(), 4096);

    // Bad input changes nothing.
    let before = ok(&c.post("job_show", json!({"job_id": "big"})).await, "show");
    for (body, stat) in [
        (json!({"timeout": "abc"}), "ERR_BAD_PARAMS"),
        (json!({"timeout": -1}), "ERR_BAD_PARAMS"),
        (json!({"timeout": 99_999_999}), "ERR_BAD_PARAMS"),
        (json!({"kill_grace": 99_999}), "ERR_BAD_PARAMS"),
        (json!({"retries": 33}), "ERR_BAD_PARAMS"),
        (json!({"retries": 2, "retry_backoff": "0.5"}), "ERR_BAD_PARAMS"),
        (json!({"retries": 2, "retry_backoff": "fast"}), "ERR_BAD_PARAMS"),
        (json!({"retries": 2, "retry_delay": 99_999_999}), "ERR_BAD_PARAMS"),
    ] {
        let mut full = json!({"job_trigger": "cron", "job_id": "big", "job_name": "rc", "cmd": "bash scripts/big.sh", "rule": "0 0 4 * * *"});
        full.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
        assert_eq!(c.post("job_modify", full.clone()).await.stat, stat, "{full}");
    }
    assert_eq!(ok(&c.post("job_show", json!({"job_id": "big"})).await, "show"), before);
    assert_eq!(c.post("run_show", json!({})).await.stat, "ERR_BAD_PARAMS");
    assert_eq!(c.post("run_list", json!({"state": "sleeping"})).await.stat, "ERR_BAD_PARAMS");
    assert_eq!(c.post("job_run", json!({"job_id": "big", "overlap": "maybe"})).await.stat, "ERR_BAD_PARAMS");
    assert_eq!(c.post("run_output", json!({"run_id": run, "offset": "x"})).await.stat, "ERR_BAD_PARAMS");
    let far = ok(&c.post("run_output", json!({"run_id": run, "offset": 10_000_000})).await, "far offset");
    assert_eq!((far["output"].as_str(), far["next_offset"].as_u64()), (Some(""), Some(10_000_000)));

    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_control_on_sqlite() {
    run_control(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_control_on_mariadb() {
    let db = MysqlDb::create("runs").await;
    run_control(Some(db.url.clone())).await;
}

/// A body over `--max-body-bytes` gets its answer, also from a client that writes the whole
/// body before it reads (Python's urllib), and the job is not added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_answered_to_a_plain_client() {
    let s = TestServer::start(ServerOptions { max_body_bytes: Some(64 * 1024), ..Default::default() }).await;
    let url = format!("http://{}/ruqi/job_add", s.node.as_ref().unwrap().addr);
    let script = r#"
import json, sys, urllib.request
body = json.dumps({"job_trigger": "interval", "job_id": "huge", "job_name": "x" * 1000000,
                   "cmd": "bash scripts/hello.sh", "rule": "1s"}).encode()
req = urllib.request.Request(sys.argv[1], data=body, headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=30) as r:
    print(r.status, r.headers.get("x-reason"), r.read().decode())
"#;
    let out = tokio::process::Command::new("python3").arg("-c").arg(script).arg(&url).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("200 ") && stdout.contains("larger than 65536 bytes"), "{stdout}");
    assert!(stdout.contains("ERR_BAD_PARAMS"), "{stdout}");
    assert_eq!(s.client.post("job_show", json!({"job_id": "huge"})).await.stat, "ERR");
    s.stop().await;
}

/// Two real nodes on MariaDB: a run executing on one node is killed through the other, its
/// process tree is gone, and one history row says `killed`; the run's row names its node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_killed_through_the_other_node() {
    let mut c = Cluster::new("runkill", &["--lease", "3"]).await;
    write_scripts(c.path());
    let a = c.start_node().await;
    let b = c.start_node().await;
    a.client
        .post(
            "job_add",
            json!({"job_trigger": "date", "job_id": "t", "job_name": "k", "cmd": "bash scripts/tree.sh kx", "rule": "now"}),
        )
        .await;
    let run = running_run(&a.client, "t", Duration::from_secs(15)).await;
    let lead = wait_file(&c.path().join("kx.lead"), Duration::from_secs(10)).await;
    let bg = wait_file(&c.path().join("kx.bg"), Duration::from_secs(10)).await;
    let shown = ok(&b.client.post("run_show", json!({"run_id": run})).await, "show");
    let runner = shown["node"].as_str().unwrap().to_owned();
    let other = if runner.ends_with(&format!(":{}", a.pid())) { &b } else { &a };
    let asked = tokio::time::Instant::now();
    ok(&other.client.post("run_kill", json!({"run_id": run})).await, "kill through the other node");
    let shown = ended(&other.client, &run, Duration::from_secs(5)).await;
    let took = asked.elapsed();
    eprintln!("killed through the other node in {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(shown["outcome"], "killed");
    assert_eq!(shown["node"], runner.as_str());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!alive(lead) && !alive(bg), "process tree gone");
    let rows = a.client.history("t").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0]["outcome"].as_str(), rows[0]["run_id"].as_str()), (Some("killed"), Some(run.as_str())));
    assert!(a.terminate().success() && b.terminate().success());
}

/// Two real nodes on MariaDB: a retry planned by a node that is then killed with `kill -9` runs on
/// the other node when it comes due (it is written with the failed run's end, not held in memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_survives_the_death_of_the_node_that_planned_it() {
    let mut c = Cluster::new("retry9", &["--lease", "3"]).await;
    write_scripts(c.path());
    let a = c.start_node().await;
    let b = c.start_node().await;
    let add = json!({"job_trigger": "date", "job_id": "r", "job_name": "k", "cmd": "bash scripts/fails.sh",
                     "rule": "now", "retries": 1, "retry_delay": 4});
    ok(&a.client.post("job_add", add).await, "add");
    let first = a.client.wait_history("r", 1, Duration::from_secs(15)).await;
    assert_eq!(first.len(), 1);
    let planner = first[0]["scheduler_name"].as_str().unwrap().to_owned();
    let (dead, survivor) = if planner.ends_with(&format!(":{}", a.pid())) { (a, b) } else { (b, a) };
    dead.kill9();
    let rows = survivor.client.wait_history("r", 2, Duration::from_secs(20)).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0]["attempt"].as_u64(), rows[0]["trigger"].as_str()), (Some(2), Some("retry")));
    assert_ne!(rows[0]["scheduler_name"].as_str(), Some(planner.as_str()), "the other node ran the retry");
    assert!(survivor.terminate().success());
}

/// Fire times missed for longer than the misfire grace (here: a clock moved 95 s ahead at once,
/// as after downtime) follow each job's `misfire`: none run (`skip`, RuQi's), the latest runs once
/// (`once`), or each runs in order (`all`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_fire_times_follow_the_job_misfire_policy() {
    use chrono::TimeZone;
    let t0 = chrono::Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
    let clock = ruqi::clock::ManualClock::new(t0);
    let work = tempfile::tempdir().unwrap();
    write_scripts(work.path());
    let s = TestServer::start(ServerOptions {
        workdir: Some(work.path().to_owned()),
        clock: Some(clock.clone()),
        timezone: "UTC",
        ..Default::default()
    })
    .await;
    let c = s.client.clone();
    for policy in ["skip", "once", "all"] {
        add(
            &c,
            "interval",
            &format!("m_{policy}"),
            "bash scripts/quick.sh",
            "10s",
            json!({"misfire": policy, "misfire_grace": 1}),
        )
        .await;
    }
    let shown = ok(&c.post("job_show", json!({"job_id": "m_all"})).await, "show");
    assert_eq!((shown["misfire"].as_str(), shown["misfire_grace"].as_u64()), (Some("all"), Some(1)));
    // Jitter: the fire time moves later by less than the jitter, the same way every time it is
    // computed; one as long as the rule's gap is refused.
    add(&c, "interval", "jit", "bash scripts/quick.sh", "10s", json!({"jitter": 5})).await;
    let next = ok(&c.post("job_show", json!({"job_id": "jit"})).await, "show")["nexttime"].as_str().unwrap().to_owned();
    assert!(next.as_str() > "2026-11-24 10:00:10" && next.as_str() < "2026-11-24 10:00:15", "{next}");
    ok(&c.post("job_pause", json!({"job_id": "jit"})).await, "pause");
    ok(&c.post("job_resume", json!({"job_id": "jit"})).await, "resume");
    assert_eq!(ok(&c.post("job_show", json!({"job_id": "jit"})).await, "show")["nexttime"], next.as_str());
    ok(&c.post("job_remove", json!({"job_id": "jit"})).await, "remove");
    let wide = json!({"job_trigger": "interval", "job_id": "wide", "job_name": "rc", "cmd": "bash scripts/quick.sh",
                      "rule": "10s", "jitter": 10});
    let a = c.post("job_add", wide).await;
    assert_eq!(a.stat, "ERR", "{a:?}");
    assert!(a.reason.unwrap().contains("not shorter than the rule's gap"));
    clock.advance(chrono::Duration::seconds(95));
    ok(&c.post("scheduler_wakeup", json!({})).await, "wakeup");
    let all = c.wait_history("m_all", 9, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fires = |rows: &[Value]| {
        let mut f: Vec<String> = rows.iter().map(|r| r["fire_time"].as_str().unwrap().to_owned()).collect();
        f.sort();
        f
    };
    let expected: Vec<String> =
        (1..=9).map(|k| format!("2026-11-24 10:{:02}:{:02}", k * 10 / 60, k * 10 % 60)).collect();
    assert_eq!(fires(&all), expected, "all: each missed fire time, in order");
    assert_eq!(fires(&c.history("m_once").await), ["2026-11-24 10:01:30"], "once: the latest");
    assert!(c.history("m_skip").await.is_empty(), "skip: none");
    // Each goes on from its next fire time.
    for policy in ["skip", "once", "all"] {
        let d = ok(&c.post("job_show", json!({"job_id": format!("m_{policy}")})).await, "show");
        assert_eq!(d["nexttime"], "2026-11-24 10:01:40", "{policy}");
    }
    // A bad policy changes nothing.
    let bad = json!({"job_trigger": "interval", "job_id": "m_all", "job_name": "rc", "cmd": "bash scripts/quick.sh",
                     "rule": "10s", "misfire": "sometimes"});
    assert_eq!(c.post("job_modify", bad).await.stat, "ERR_BAD_PARAMS");
    s.stop().await;
}
