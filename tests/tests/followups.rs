//! What happens after a run, at the API boundary, on SQLite and on MariaDB: alerts (`alert`,
//! `alert_on`, `alert_quiet`) POSTed through the http-post plugin to a real webhook receiver
//! (Python's `http.server`, `tests/scripts/alert_receiver.py`) with the keys a receiver reads,
//! one per job and kind per quiet window and the rest counted, retried with a growing delay when
//! the receiver fails, and listed by `alert_list`; the circuit breaker (`pause_after_failures`,
//! `resume_after`: paused with its reason, a `probe` run, resumed with a `recovery` alert;
//! `job_resume`); chains (`on_success`, `on_failure`: a `chain` run of the next job with the
//! ending run in its params; cycles, unknown jobs and removing a chained-to job refused);
//! `deadline` (an alert while the run still goes on); bad input refused without change. Then two
//! real nodes on one MariaDB database: a chain and an alert happen once when the node running
//! the job is killed with `kill -9`, and an alert being retried is delivered by the survivor.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use ruqi_tests::cluster::Cluster;
use ruqi_tests::{Client, MysqlDb, ServerOptions, TestServer, install_plugin, ok, refused, wait_until};

/// The zone of the in-process test servers (`ServerOptions`' default), in which the API prints times.
const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

/// A cron rule that does not fire during a test (03:00:00 on January 1st).
const NEVER: &str = "0 0 3 1 1 *";

/// The webhook receiver these tests start.
const RECEIVER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/alert_receiver.py");

/// Keys every alert POSTed to a webhook carries.
const ALERT_KEYS: [&str; 10] =
    ["kind", "job_id", "job_name", "fire_time", "node", "outcome", "run_id", "output", "text", "url"];

/// Keys of an `alert_list` item.
const LIST_KEYS: [&str; 14] = [
    "id",
    "job_id",
    "kind",
    "target",
    "state",
    "attempts",
    "created",
    "sent",
    "answer",
    "suppressed",
    "run_id",
    "fire_time",
    "node",
    "text",
];

/// Polls `$probe` (an expression giving an `Option`; `.await` allowed) every 100 ms until it
/// gives `Some`, and yields that value; fails the test with `$what` if `$within` passes first.
/// The async twin of [`ruqi_tests::wait_until`]: an in-process server runs on the test's own
/// runtime, whose two workers a sleeping thread must not hold.
macro_rules! eventually {
    ($within:expr, $what:expr, $probe:expr) => {{
        let within: Duration = $within;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(found) = $probe {
                break found;
            }
            assert!(tokio::time::Instant::now() < deadline, "{} (waited {:?})", $what, within);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }};
}

// ---------------------------------------------------------------------------------------------
// The webhook receiver

/// `tests/scripts/alert_receiver.py` on 127.0.0.1 (killed when dropped): every POST it got, one
/// JSON line each in a file of its own folder.
struct Receiver {
    port: u16,
    out: PathBuf,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Receiver {
    /// Starts a receiver that answers the first `fail_first` POSTs with HTTP 500, the rest 200.
    async fn start(fail_first: u32) -> Self {
        use tokio::io::AsyncBufReadExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("posts.jsonl");
        let mut child = tokio::process::Command::new("python3")
            .arg(RECEIVER_SCRIPT)
            .arg(&out)
            .arg("--fail")
            .arg(fail_first.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3");
        let mut line = String::new();
        tokio::io::BufReader::new(child.stdout.take().expect("receiver stdout"))
            .read_line(&mut line)
            .await
            .expect("receiver port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("receiver port, got {line:?}"));
        Self { port, out, _child: child, _dir: dir }
    }

    /// The URL of `path` on the receiver (an alert target).
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Every POST so far, in the order received (`n`, `time`, `path`, `status`, `body`, …).
    fn posts(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("receiver line {l:?}: {e}")))
            .collect()
    }

    /// The POSTs of alerts of `kind`, answered or not.
    fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.posts().into_iter().filter(|p| p["body"]["kind"] == kind).collect()
    }

    /// The POSTs of alerts of `kind` the receiver answered 200 (delivered).
    fn delivered(&self, kind: &str) -> Vec<Value> {
        self.of_kind(kind).into_iter().filter(|p| p["status"] == 200).collect()
    }

    /// The kinds of the alerts delivered, in the order received.
    fn delivered_kinds(&self) -> Vec<String> {
        self.posts()
            .iter()
            .filter(|p| p["status"] == 200)
            .map(|p| p["body"]["kind"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Servers, scripts and small readers

/// The scripts these tests run, written into the work directory.
fn write_scripts(dir: &Path) {
    let scripts = dir.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    let files = [
        ("ok.sh", "echo \"done $RUQI_JOB_ID\"\n"),
        ("fails.sh", "echo \"failing $RUQI_JOB_ID $RUQI_RUN_ID\"\necho \"second line\"\nexit 3\n"),
        // Fails while the flag file named by $1 exists.
        (
            "flagfail.sh",
            "if [ -e \"$1\" ]; then echo \"flag $1 is up: failing\"; exit 1; fi\necho \"flag $1 is gone: fine\"\n",
        ),
        ("sleep.sh", "echo sleeping\nsleep \"$1\"\necho awake\n"),
        // What a chained run got: its params in the environment and/or as arguments.
        (
            "chained.sh",
            "echo \"job $RUQI_JOB_ID run $RUQI_RUN_ID\"\necho \"env: ${RUQI_PARAMS:-}\"\necho \"args: $*\"\n",
        ),
        ("slowfail.sh", "echo \"started $RUQI_RUN_ID\"\nsleep \"$1\"\necho giving-up\nexit 1\n"),
    ];
    for (name, text) in files {
        std::fs::write(scripts.join(name), text).unwrap();
    }
}

/// A server with shell-bridge (scripts) and http-post (alert targets) on `store` (SQLite when
/// `None`), its work directory holding [`write_scripts`].
async fn server(store: Option<String>) -> (TestServer, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    write_scripts(work.path());
    let opts = ServerOptions {
        store,
        workdir: Some(work.path().to_owned()),
        plugins: vec![("shell-bridge", None), ("http-post", None)],
        ..Default::default()
    };
    (TestServer::start(opts).await, work)
}

/// A whole job as `job_add` and `job_modify` take it, with `extra` parameters.
fn spec(id: &str, trigger: &str, cmd: &str, rule: &str, extra: Value) -> Value {
    ruqi_tests::job_body("fu", id, trigger, cmd, rule, extra)
}

async fn add(c: &Client, trigger: &str, id: &str, cmd: &str, rule: &str, extra: Value) {
    ok(&c.post("job_add", spec(id, trigger, cmd, rule, extra)).await, &format!("add {id}"));
}

async fn show(c: &Client, id: &str) -> Value {
    ok(&c.post("job_show", json!({"job_id": id})).await, &format!("job_show {id}"))
}

/// `alert_list` with `query`: its total and the page's items (newest first).
async fn alert_list(c: &Client, query: Value) -> (u64, Vec<Value>) {
    let d = ok(&c.post("alert_list", query.clone()).await, &format!("alert_list {query}"));
    let total = d["total"].as_u64().unwrap_or_else(|| panic!("alert_list total: {d}"));
    (total, d["list"].as_array().cloned().unwrap_or_default())
}

/// Polls `run_show` until the run has ended; its data.
async fn ended(c: &Client, run_id: &str, within: Duration) -> Value {
    eventually!(within, format!("run {run_id} ended"), {
        let d = ok(&c.post("run_show", json!({"run_id": run_id})).await, "run_show");
        (d["state"] == "ended").then_some(d)
    })
}

/// Polls until `run_list` shows a running run of `job`; its id.
async fn running_run(c: &Client, job: &str, within: Duration) -> String {
    eventually!(within, format!("a running run of {job}"), {
        let d = ok(&c.post("run_list", json!({"job_id": job, "state": "running"})).await, "run_list");
        d["list"][0]["run_id"].as_str().map(str::to_owned)
    })
}

/// A list the API shows as a JSON list or as comma-separated text, sorted.
fn words(v: &Value) -> Vec<String> {
    let mut w: Vec<String> = match v {
        Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
        Value::String(s) => s.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect(),
        _ => Vec::new(),
    };
    w.sort();
    w
}

/// A number the API shows as a JSON number or as text.
fn num(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// A run's params (JSON text, or an object) as JSON.
fn params_of(run: &Value) -> Value {
    match &run["params"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|e| panic!("params are not JSON ({e}): {run}")),
        other => other.clone(),
    }
}

/// A time as the API prints it (`zone`, `%Y-%m-%d %H:%M:%S[.f]`), or RFC 3339, or epoch seconds.
fn instant(v: &Value, zone: Tz) -> Option<DateTime<Utc>> {
    if let Some(secs) = v.as_f64() {
        return DateTime::from_timestamp_micros((secs * 1e6).round() as i64);
    }
    let s = v.as_str()?;
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    zone.from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc))
}

/// Whether two times name the same instant (to the millisecond), whatever their format.
fn same_instant(a: &Value, b: &Value, zone: Tz) -> bool {
    match (instant(a, zone), instant(b, zone)) {
        (Some(x), Some(y)) => (x - y).num_milliseconds().abs() <= 1,
        _ => false,
    }
}

/// Whether `text` names the time `fire` (to the second, truncated or rounded; in `zone` or UTC,
/// with a space or a `T`).
fn names_time(text: &str, fire: &Value, zone: Tz) -> bool {
    let Some(t) = instant(fire, zone) else { return false };
    [t, t + chrono::Duration::seconds(1)].iter().any(|t| {
        let local = t.with_timezone(&zone);
        [
            local.format("%Y-%m-%d %H:%M:%S").to_string(),
            local.format("%Y-%m-%dT%H:%M:%S").to_string(),
            t.format("%Y-%m-%d %H:%M:%S").to_string(),
            t.format("%Y-%m-%dT%H:%M:%S").to_string(),
        ]
        .iter()
        .any(|form| text.contains(form.as_str()))
    })
}

/// The history row with the earliest fire time.
fn earliest(rows: &[Value]) -> &Value {
    rows.iter().min_by_key(|r| r["fire_time"].as_str().unwrap_or_default().to_owned()).expect("a history row")
}

/// Checks an alert's body against the history row of the run it is about.
fn assert_alert_about(body: &Value, kind: &str, row: &Value, zone: Tz) {
    for key in ALERT_KEYS {
        assert!(body.get(key).is_some(), "the alert lacks {key}: {body}");
    }
    assert_eq!(body["kind"], kind, "{body}");
    assert_eq!(body["job_id"], row["job_id"], "{body}");
    assert_eq!(body["job_name"], row["job_name"], "{body}");
    assert_eq!(body["run_id"], row["run_id"], "the alert names the run: {body} {row}");
    assert_eq!(body["node"], row["scheduler_name"], "the alert names the node that ran it: {body} {row}");
    assert_eq!(body["outcome"], row["outcome"], "{body} {row}");
    assert!(same_instant(&body["fire_time"], &row["fire_time"], zone), "fire time: {body} {row}");
    let text = body["text"].as_str().unwrap_or_else(|| panic!("text: {body}"));
    let (job, node) = (row["job_id"].as_str().unwrap(), row["scheduler_name"].as_str().unwrap());
    assert!(text.contains(job), "the text names the job: {text}");
    assert!(text.contains(node), "the text names the node: {text}");
    assert!(names_time(text, &row["fire_time"], zone), "the text names the fire time {}: {text}", row["fire_time"]);
}

// ---------------------------------------------------------------------------------------------
// 1. A failure alert, once per quiet window

/// A job failing every second with `alert` (default `alert_on`) and `alert_quiet=600`: one
/// failure alert reaches the receiver with every key, about the first failure; the later
/// failures are counted on it (`suppressed`); `alert_list` shows it and filters.
async fn a_failure_alert_goes_out_once_per_quiet_window(store: Option<String>) {
    let rx = Receiver::start(0).await;
    let (s, _work) = server(store).await;
    let c = &s.client;
    let target = rx.url("hooks/ruqi");
    let extra = json!({"job_name": "nightly report", "alert": [target], "alert_quiet": 600});
    add(c, "interval", "report-fl", "bash scripts/fails.sh", "1s", extra).await;
    let shown = show(c, "report-fl").await;
    assert_eq!(words(&shown["alert"]), std::slice::from_ref(&target), "{shown}");
    assert_eq!(num(&shown["alert_quiet"]), Some(600.0), "{shown}");

    // Five failures, about one a second; then the job stops.
    let rows = c.wait_history("report-fl", 5, Duration::from_secs(15)).await;
    assert!(rows.len() >= 5, "{rows:?}");
    ok(&c.post("job_pause", json!({"job_id": "report-fl"})).await, "pause");
    let rows = c.history("report-fl").await;
    assert!(rows.iter().all(|r| r["outcome"] == "failed"), "{rows:?}");

    // One alert, sent, the failures after it counted on it.
    let filter = json!({"job_id": "report-fl", "kind": "failure"});
    let item = eventually!(Duration::from_secs(10), "the failure alert sent, >= 3 failures counted on it", {
        let (_, list) = alert_list(c, filter.clone()).await;
        list.into_iter().next().filter(|r| r["state"] == "sent" && num(&r["suppressed"]).unwrap_or(0.0) >= 3.0)
    });
    assert_eq!(alert_list(c, filter.clone()).await.0, 1, "one failure alert per quiet window");

    // The receiver got it once, with every key, about the first failure.
    let posts = rx.of_kind("failure");
    assert_eq!(posts.len(), 1, "{posts:?}");
    let post = &posts[0];
    assert_eq!(post["status"], 200, "{post}");
    assert_eq!(post["path"], "/hooks/ruqi", "{post}");
    let body = &post["body"];
    let first = earliest(&rows);
    assert_alert_about(body, "failure", first, SHANGHAI);
    assert_eq!(body["job_name"], "nightly report");
    assert_eq!(body["outcome"], "failed");
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("fail"), "the text names the outcome: {text}");
    let output = body["output"].as_str().unwrap_or_else(|| panic!("output: {body}"));
    assert!(output.contains("failing report-fl"), "the alert carries the run's first lines: {body}");
    assert!(body["url"].is_null(), "a node without --public-url links nothing: {body}");

    // alert_list shows the same alert.
    for key in LIST_KEYS {
        assert!(item.get(key).is_some(), "alert_list item lacks {key}: {item}");
    }
    assert_eq!((item["job_id"].as_str(), item["kind"].as_str()), (Some("report-fl"), Some("failure")), "{item}");
    assert_eq!(item["target"], target.as_str(), "{item}");
    assert_eq!(num(&item["attempts"]), Some(1.0), "{item}");
    assert_eq!(item["run_id"], body["run_id"], "{item}");
    assert_eq!(item["node"], body["node"], "{item}");
    assert_eq!(item["text"], body["text"], "{item}");
    assert!(same_instant(&item["fire_time"], &first["fire_time"], SHANGHAI), "{item}");
    assert!(item["created"].is_string() && item["sent"].is_string(), "{item}");
    assert!(!item["id"].is_null(), "{item}");

    // Its filters: by state, kind and job; also as a query string.
    let count = |q: Value| async move { alert_list(c, q).await.0 };
    assert_eq!(count(json!({"job_id": "report-fl", "kind": "failure", "state": "sent"})).await, 1);
    assert_eq!(count(json!({"job_id": "report-fl", "kind": "failure", "state": "pending"})).await, 0);
    assert_eq!(count(json!({"job_id": "report-fl", "kind": "failure", "state": "failed"})).await, 0);
    assert_eq!(count(json!({"job_id": "report-fl", "kind": "recovery"})).await, 0);
    assert_eq!(count(json!({"job_id": "no-such-job"})).await, 0);
    let q = ok(&c.get("alert_list", "job_id=report-fl&kind=failure&page_size=5").await, "alert_list GET");
    assert_eq!((q["total"].as_u64(), q["list"][0]["id"].clone()), (Some(1), item["id"].clone()), "{q}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_alert_goes_out_once_per_quiet_window_on_sqlite() {
    a_failure_alert_goes_out_once_per_quiet_window(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_alert_goes_out_once_per_quiet_window_on_mariadb() {
    let db = MysqlDb::create("fu_quiet").await;
    a_failure_alert_goes_out_once_per_quiet_window(Some(db.url.clone())).await;
}

// ---------------------------------------------------------------------------------------------
// 2. Delivery retried with backoff

/// A receiver that fails its first two POSTs with HTTP 500: the alert is tried again after about
/// 1 s, then 2 s, and ends `sent` at the third attempt; the receiver got exactly three POSTs of
/// the same alert, and nothing after.
async fn an_alert_is_retried_until_the_receiver_takes_it(store: Option<String>) {
    let rx = Receiver::start(2).await;
    let (s, _work) = server(store).await;
    let c = &s.client;
    add(
        c,
        "date",
        "retry-fl",
        "bash scripts/fails.sh",
        "now",
        json!({"alert": rx.url("flaky"), "alert_on": "failure"}),
    )
    .await;
    let item = eventually!(Duration::from_secs(25), "the alert delivered", {
        let (_, list) = alert_list(c, json!({"job_id": "retry-fl"})).await;
        list.into_iter().find(|r| r["state"] == "sent")
    });
    assert_eq!(item["kind"], "failure", "{item}");
    assert_eq!(num(&item["attempts"]), Some(3.0), "{item}");
    let answer = item["answer"].as_str().map_or_else(|| item["answer"].to_string(), str::to_owned);
    assert!(answer.contains("ok"), "the receiver's last answer is kept: {item}");

    let posts = rx.posts();
    let statuses: Vec<u64> = posts.iter().map(|p| p["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [500, 500, 200], "{posts:?}");
    let rows = c.history("retry-fl").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    for p in &posts {
        assert_alert_about(&p["body"], "failure", &rows[0], SHANGHAI);
    }
    let t: Vec<f64> = posts.iter().map(|p| p["time"].as_f64().unwrap()).collect();
    let (gap1, gap2) = (t[1] - t[0], t[2] - t[1]);
    assert!((0.7..=3.5).contains(&gap1), "first retry after ~1 s: {gap1}");
    assert!((1.5..=6.0).contains(&gap2), "second retry after ~2 s: {gap2}");

    // Delivered: never sent again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rx.posts().len(), 3);
    assert_eq!(alert_list(c, json!({"job_id": "retry-fl", "state": "failed"})).await.0, 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_retried_until_the_receiver_takes_it_on_sqlite() {
    an_alert_is_retried_until_the_receiver_takes_it(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_retried_until_the_receiver_takes_it_on_mariadb() {
    let db = MysqlDb::create("fu_retry").await;
    an_alert_is_retried_until_the_receiver_takes_it(Some(db.url.clone())).await;
}

// ---------------------------------------------------------------------------------------------
// 3. The circuit breaker, its probe and the recovery

/// A job failing while a flag file exists, `pause_after_failures=2`, `resume_after=2`,
/// `alert_on=paused,recovery`: after two failures it is paused with a reason and a `paused`
/// alert; once the flag is gone a `probe` run succeeds, the job runs by its rule again and a
/// `recovery` alert follows; no failure alert (not asked for). `job_resume` clears a breaker too.
async fn the_breaker_pauses_probes_and_recovers(store: Option<String>) {
    let rx = Receiver::start(0).await;
    let (s, work) = server(store).await;
    let c = &s.client;
    let flag = work.path().join("breaker.flag");
    std::fs::write(&flag, "").unwrap();
    let extra = json!({"alert": rx.url("breaker"), "alert_on": "paused,recovery",
                       "pause_after_failures": 2, "resume_after": 2});
    add(c, "interval", "flaky-br", "bash scripts/flagfail.sh breaker.flag", "1s", extra).await;
    let shown = show(c, "flaky-br").await;
    assert_eq!(num(&shown["pause_after_failures"]), Some(2.0), "{shown}");
    assert_eq!(num(&shown["resume_after"]), Some(2.0), "{shown}");
    assert_eq!(words(&shown["alert_on"]), ["paused", "recovery"], "{shown}");
    assert!(shown.get("paused_reason").is_none_or(Value::is_null), "{shown}");

    // Two failures: paused, with its reason.
    let paused = eventually!(Duration::from_secs(10), "the breaker pauses the job", {
        let d = show(c, "flaky-br").await;
        d["paused_reason"].is_string().then_some(d)
    });
    std::fs::remove_file(flag).unwrap();
    assert_eq!(paused["nexttime"], "None", "{paused}");
    assert!(!paused["paused_reason"].as_str().unwrap().trim().is_empty(), "{paused}");
    let failed = c.history("flaky-br").await;
    assert!(failed.len() >= 2 && failed.iter().all(|r| r["outcome"] == "failed"), "{failed:?}");

    // The flag is gone: the probe succeeds and the job is resumed.
    let resumed = eventually!(Duration::from_secs(12), "the probe resumes the job", {
        let d = show(c, "flaky-br").await;
        (d.get("paused_reason").is_none_or(Value::is_null) && d["nexttime"] != "None").then_some(d)
    });
    assert!(resumed["nexttime"].is_string(), "{resumed}");
    let rows = c.history("flaky-br").await;
    let probe = rows
        .iter()
        .find(|r| r["trigger"] == "probe" && r["outcome"] == "success")
        .unwrap_or_else(|| panic!("a successful probe run: {rows:?}"))
        .clone();
    // …and runs by its rule again.
    eventually!(Duration::from_secs(6), "a scheduled run after the probe", {
        let rows = c.history("flaky-br").await;
        rows.iter().any(|r| r["trigger"] == "scheduled" && r["outcome"] == "success").then_some(())
    });
    ok(&c.post("job_pause", json!({"job_id": "flaky-br"})).await, "pause");

    // The receiver got `paused`, then `recovery` (about the probe), and no failure alert.
    let kinds = eventually!(Duration::from_secs(10), "the paused and recovery alerts", {
        let k = rx.delivered_kinds();
        (k.len() >= 2).then_some(k)
    });
    assert_eq!(kinds, ["paused", "recovery"], "{:?}", rx.posts());
    let (paused_posts, recovery_posts) = (rx.delivered("paused"), rx.delivered("recovery"));
    let paused_alert = &paused_posts[0]["body"];
    assert_eq!(paused_alert["job_id"], "flaky-br", "{paused_alert}");
    assert!(paused_alert["text"].as_str().unwrap_or_default().contains("flaky-br"), "{paused_alert}");
    assert_alert_about(&recovery_posts[0]["body"], "recovery", &probe, SHANGHAI);
    let (_, items) = alert_list(c, json!({"job_id": "flaky-br"})).await;
    let listed: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap_or_default()).collect();
    assert_eq!(listed, ["recovery", "paused"], "newest first: {items:?}");

    // A job the breaker paused is resumed by hand too.
    add(c, "interval", "hand-br", "bash scripts/fails.sh", "1s", json!({"pause_after_failures": 1})).await;
    eventually!(Duration::from_secs(10), "hand-br paused by its breaker", {
        show(c, "hand-br").await["paused_reason"].is_string().then_some(())
    });
    ok(&c.post("job_resume", json!({"job_id": "hand-br"})).await, "resume");
    let d = show(c, "hand-br").await;
    assert!(d.get("paused_reason").is_none_or(Value::is_null) && d["nexttime"] != "None", "{d}");
    ok(&c.post("job_pause", json!({"job_id": "hand-br"})).await, "pause");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_pauses_probes_and_recovers_on_sqlite() {
    the_breaker_pauses_probes_and_recovers(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_pauses_probes_and_recovers_on_mariadb() {
    let db = MysqlDb::create("fu_breaker").await;
    the_breaker_pauses_probes_and_recovers(Some(db.url.clone())).await;
}

// ---------------------------------------------------------------------------------------------
// 4. Chains

/// `first-a` succeeds once: `then-b` (its `on_success`) runs once as `chain`, its params naming
/// the ending run, which its script sees; `else-c` (its `on_failure`) does not run. Then a
/// failing source runs `else-c`. Refused: a chain that would loop (the reason names the cycle),
/// a chain to a job that does not exist, removing a job another chains to (unless `force=1`).
async fn chains_run_the_next_job(store: Option<String>) {
    let (s, _work) = server(store).await;
    let c = &s.client;
    add(c, "cron", "then-b", "bash scripts/chained.sh", NEVER, json!({})).await;
    add(c, "cron", "else-c", "bash scripts/chained.sh", NEVER, json!({})).await;
    let b_next = show(c, "then-b").await["nexttime"].clone();
    add(c, "date", "first-a", "bash scripts/ok.sh", "now", json!({"on_success": "then-b", "on_failure": ["else-c"]}))
        .await;

    let a = c.wait_history("first-a", 1, Duration::from_secs(10)).await;
    assert_eq!((a.len(), a[0]["outcome"].as_str()), (1, Some("success")), "{a:?}");
    let a_run = a[0]["run_id"].as_str().unwrap().to_owned();
    let b = c.wait_history("then-b", 1, Duration::from_secs(10)).await;
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!((b[0]["trigger"].as_str(), b[0]["outcome"].as_str()), (Some("chain"), Some("success")), "{b:?}");
    let b_run = b[0]["run_id"].as_str().unwrap().to_owned();
    assert_ne!(b_run, a_run);
    let shown = ended(c, &b_run, Duration::from_secs(5)).await;
    assert_eq!(shown["trigger"], "chain", "{shown}");
    let params = params_of(&shown);
    assert_eq!(params["run_id"], a_run.as_str(), "{params}");
    assert_eq!(params["job_id"], "first-a", "{params}");
    assert_eq!(params["outcome"], a[0]["outcome"], "{params}");
    assert!(params["output"].as_str().unwrap_or_default().contains("done first-a"), "{params}");
    let out = shown["output"].as_str().unwrap();
    assert!(out.contains(&a_run), "the script sees the params (RUQI_PARAMS or its arguments): {out}");
    let listed = ok(&c.post("run_list", json!({"job_id": "then-b"})).await, "run_list");
    assert_eq!(listed["list"][0]["trigger"], "chain", "{listed}");
    // Once, and the other branch not at all; b keeps its own schedule.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(c.history("then-b").await.len(), 1);
    assert!(c.history("else-c").await.is_empty(), "on_failure does not run after a success");
    assert_eq!(show(c, "then-b").await["nexttime"], b_next);

    // A failing source runs its on_failure job, with the failure in its params.
    add(
        c,
        "date",
        "second-a",
        "bash scripts/fails.sh",
        "now",
        json!({"on_success": ["then-b"], "on_failure": "else-c"}),
    )
    .await;
    let src = c.wait_history("second-a", 1, Duration::from_secs(10)).await;
    let cc = c.wait_history("else-c", 1, Duration::from_secs(10)).await;
    assert_eq!((cc.len(), cc[0]["trigger"].as_str()), (1, Some("chain")), "{cc:?}");
    let shown = ended(c, cc[0]["run_id"].as_str().unwrap(), Duration::from_secs(5)).await;
    let params = params_of(&shown);
    assert_eq!((params["run_id"].clone(), params["job_id"].clone()), (src[0]["run_id"].clone(), json!("second-a")));
    assert_eq!(params["outcome"], src[0]["outcome"], "{params}");
    assert_ne!(params["outcome"], "success", "{params}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(c.history("then-b").await.len(), 1, "on_success does not run after a failure");
    assert_eq!(c.history("else-c").await.len(), 1);

    // A cycle is refused, naming it; nothing changes.
    add(c, "cron", "loop-b", "bash scripts/ok.sh", NEVER, json!({})).await;
    add(c, "cron", "loop-a", "bash scripts/ok.sh", NEVER, json!({"on_success": "loop-b"})).await;
    assert_eq!(words(&show(c, "loop-a").await["on_success"]), ["loop-b"]);
    let before = show(c, "loop-b").await;
    let cycle = spec("loop-b", "cron", "bash scripts/ok.sh", NEVER, json!({"on_success": "loop-a"}));
    let reason = refused(&c.post("job_modify", cycle).await, "a cycle");
    assert!(
        reason.contains("loop-b -> loop-a -> loop-b") || reason.contains("loop-a -> loop-b -> loop-a"),
        "the reason names the cycle: {reason}"
    );
    assert_eq!(show(c, "loop-b").await, before);

    // A chain to a job that does not exist.
    let before = show(c, "loop-a").await;
    let unknown = spec("loop-a", "cron", "bash scripts/ok.sh", NEVER, json!({"on_failure": "no-such-job"}));
    assert!(refused(&c.post("job_modify", unknown).await, "unknown id").contains("no-such-job"));
    assert_eq!(show(c, "loop-a").await, before);
    let unknown = spec("orphan", "cron", "bash scripts/ok.sh", NEVER, json!({"on_success": "no-such-job"}));
    assert!(refused(&c.post("job_add", unknown).await, "unknown id").contains("no-such-job"));
    assert_eq!(c.post("job_show", json!({"job_id": "orphan"})).await.stat, "ERR", "not added");

    // A job another chains to is removed only with force=1.
    let reason = refused(&c.post("job_remove", json!({"job_id": "loop-b"})).await, "remove a chained-to job");
    assert!(reason.contains("loop-a"), "the reason names the job chaining to it: {reason}");
    assert_eq!(c.post("job_show", json!({"job_id": "loop-b"})).await.stat, "OK", "still there");
    ok(&c.post("job_remove", json!({"job_id": "loop-b", "force": 1})).await, "remove with force");
    assert_eq!(c.post("job_show", json!({"job_id": "loop-b"})).await.stat, "ERR", "removed");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_run_the_next_job_on_sqlite() {
    chains_run_the_next_job(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_run_the_next_job_on_mariadb() {
    let db = MysqlDb::create("fu_chain").await;
    chains_run_the_next_job(Some(db.url.clone())).await;
}

// ---------------------------------------------------------------------------------------------
// 5. Deadlines

/// A run sleeping 5 s with `deadline=2` (default `alert_on`, which holds `deadline`): a
/// `deadline` alert goes out about 2 s after the fire time, while the run still goes on; a run
/// that ends in time raises none.
async fn a_missed_deadline_alerts_while_the_run_goes_on(store: Option<String>) {
    let rx = Receiver::start(0).await;
    let (s, _work) = server(store).await;
    let c = &s.client;
    let before_add = Instant::now();
    add(c, "date", "late-dl", "bash scripts/sleep.sh 5", "now", json!({"alert": rx.url("dl"), "deadline": 2})).await;
    assert_eq!(num(&show(c, "late-dl").await["deadline"]), Some(2.0));
    add(c, "date", "prompt-dl", "bash scripts/ok.sh", "now", json!({"alert": rx.url("dl"), "deadline": 2})).await;

    let post = eventually!(Duration::from_secs(10), "a deadline alert for late-dl", {
        rx.delivered("deadline").into_iter().find(|p| p["body"]["job_id"] == "late-dl")
    });
    let waited = before_add.elapsed();
    assert!((Duration::from_millis(1800)..=Duration::from_secs(7)).contains(&waited), "sent {waited:?} after the add");

    let rows = c.wait_history("late-dl", 1, Duration::from_secs(10)).await;
    assert_eq!((rows.len(), rows[0]["outcome"].as_str()), (1, Some("success")), "{rows:?}");
    let run_ended = instant(&rows[0]["ended"], SHANGHAI).expect("ended");
    let sent = post["time"].as_f64().unwrap();
    assert!(sent < run_ended.timestamp_micros() as f64 / 1e6, "sent while the run went on: {post} {}", rows[0]);
    let body = &post["body"];
    for key in ALERT_KEYS {
        assert!(body.get(key).is_some(), "the alert lacks {key}: {body}");
    }
    assert!(same_instant(&body["fire_time"], &rows[0]["fire_time"], SHANGHAI), "{body} {}", rows[0]);
    assert!(body["text"].as_str().unwrap_or_default().contains("late-dl"), "{body}");
    assert_eq!(alert_list(c, json!({"job_id": "late-dl", "kind": "deadline"})).await.0, 1);

    // prompt-dl ended well within its deadline, which passed seconds ago: no alert.
    assert_eq!(c.history("prompt-dl").await.len(), 1);
    assert!(rx.of_kind("deadline").iter().all(|p| p["body"]["job_id"] != "prompt-dl"), "{:?}", rx.posts());
    assert_eq!(alert_list(c, json!({"job_id": "prompt-dl", "kind": "deadline"})).await.0, 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_deadline_alerts_while_the_run_goes_on_on_sqlite() {
    a_missed_deadline_alerts_while_the_run_goes_on(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_deadline_alerts_while_the_run_goes_on_on_mariadb() {
    let db = MysqlDb::create("fu_deadline").await;
    a_missed_deadline_alerts_while_the_run_goes_on(Some(db.url.clone())).await;
}

// ---------------------------------------------------------------------------------------------
// 6. Bad input

/// Each bad value of the new parameters is refused by `job_add` (no job) and by `job_modify`
/// (the job as it was, though the request also changes its rule); a job chaining to itself is
/// refused; `alert_list` refuses an unknown state.
async fn bad_input_changes_nothing(store: Option<String>) {
    let rx = Receiver::start(0).await;
    let (s, _work) = server(store).await;
    let c = &s.client;
    let target = rx.url("hook");
    add(
        c,
        "cron",
        "steady",
        "bash scripts/ok.sh",
        NEVER,
        json!({"alert": [target], "alert_on": "failure", "pause_after_failures": 3}),
    )
    .await;
    let before = show(c, "steady").await;
    let cases = [
        ("an unknown alert_on word", json!({"alert": [target], "alert_on": "failure,bogus"}), Some("bogus")),
        ("an alert target no plugin serves", json!({"alert": "nosuchprefix:x"}), Some("nosuchprefix")),
        ("a bad target among good ones", json!({"alert": [target, "nosuchprefix:x"]}), Some("nosuchprefix")),
        ("a negative pause_after_failures", json!({"pause_after_failures": -1}), None),
        ("a pause_after_failures that is not a number", json!({"pause_after_failures": "many"}), None),
        ("a negative resume_after", json!({"pause_after_failures": 2, "resume_after": -5}), None),
        ("a negative alert_quiet", json!({"alert": [target], "alert_quiet": -1}), None),
        ("a deadline that is not a number", json!({"deadline": "soon"}), None),
        ("a chain to a job that does not exist", json!({"on_failure": "no-such-job"}), Some("no-such-job")),
    ];
    for (what, extra, named) in &cases {
        let fresh = spec("fresh", "cron", "bash scripts/ok.sh", NEVER, extra.clone());
        let reason = refused(&c.post("job_add", fresh).await, &format!("job_add with {what}"));
        if let Some(name) = named {
            assert!(reason.contains(*name), "{what}: the reason names {name}: {reason}");
        }
        assert_eq!(c.post("job_show", json!({"job_id": "fresh"})).await.stat, "ERR", "{what}: not added");
        let modify = spec("steady", "cron", "bash scripts/ok.sh", "0 0 4 1 1 *", extra.clone());
        refused(&c.post("job_modify", modify).await, &format!("job_modify with {what}"));
        assert_eq!(show(c, "steady").await, before, "{what}: the job is unchanged");
    }
    // A job chaining to itself.
    let selfish = spec("selfish", "cron", "bash scripts/ok.sh", NEVER, json!({"on_success": "selfish"}));
    assert!(refused(&c.post("job_add", selfish).await, "a self loop").contains("selfish"));
    assert_eq!(c.post("job_show", json!({"job_id": "selfish"})).await.stat, "ERR", "not added");
    let selfish = spec("steady", "cron", "bash scripts/ok.sh", "0 0 4 1 1 *", json!({"on_failure": ["steady"]}));
    assert!(refused(&c.post("job_modify", selfish).await, "a self loop").contains("steady"));
    assert_eq!(show(c, "steady").await, before, "the job is unchanged");
    assert_eq!(ok(&c.get("job_list", "").await, "job_list")["total"], 1, "only steady");
    // alert_list: an unknown state.
    refused(&c.post("alert_list", json!({"state": "lost"})).await, "alert_list state=lost");
    assert!(rx.posts().is_empty(), "nothing was sent");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_changes_nothing_on_sqlite() {
    bad_input_changes_nothing(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_changes_nothing_on_mariadb() {
    let db = MysqlDb::create("fu_bad").await;
    bad_input_changes_nothing(Some(db.url.clone())).await;
}

// ---------------------------------------------------------------------------------------------
// Two real nodes

/// What the nodes of the cluster test give as `--public-url` (nothing listens there: the link
/// is only read).
const PUBLIC_URL: &str = "http://ruqi.example.test:8080";

/// Two real nodes on one MariaDB database (`--lease 3`).
///
/// First, `slow-a` (a date job: prints, sleeps 4 s, fails; `on_failure` → `after`; a failure
/// alert) starts on one node, which is killed with `kill -9` while the script sleeps. The other
/// node takes the fire time over once the lease runs out and runs it again (the same run id);
/// that run fails, so: `slow-a` has one history row, from the survivor; `after` runs exactly once
/// in total, as `chain`, with the run in its params; the failure alert is queued once (nothing
/// suppressed) and delivered once, naming the survivor and linking the run under `--public-url`.
///
/// Then a third node joins, and a receiver that fails its first two POSTs gets the failure alert
/// of `quick-a` (fails at once); the node that ran it is killed right after the run's end is
/// recorded, while the alert waits for its retries. The last node delivers it: it ends `sent`
/// and the receiver answered 200 exactly once.
///
/// Takes ~40 s: three node starts, a lease to run out, a 4 s script twice and the retry delays,
/// and a few seconds of waiting for any duplicate to show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_and_an_alert_happen_once_across_a_node_kill() {
    let rx = Receiver::start(0).await;
    let mut c = Cluster::new("fu_cluster", &["--lease", "3", "--public-url", PUBLIC_URL]).await;
    install_plugin(&c.plugins_dir(), "http-post", None);
    write_scripts(c.path());
    let x = c.start_node().await;
    let y = c.start_node().await;
    add(&x.client, "cron", "after", "bash scripts/chained.sh", NEVER, json!({})).await;
    let extra = json!({"on_failure": "after", "alert": [rx.url("cluster")], "alert_on": "failure"});
    add(&x.client, "date", "slow-a", "bash scripts/slowfail.sh 4", "now", extra).await;

    // The node running slow-a dies while its script sleeps.
    let run = running_run(&x.client, "slow-a", Duration::from_secs(15)).await;
    let runner =
        ok(&x.client.post("run_show", json!({"run_id": run})).await, "run_show")["node"].as_str().unwrap().to_owned();
    let (dead, survivor) = if runner.ends_with(&format!(":{}", x.pid())) { (x, y) } else { (y, x) };
    assert_eq!(dead.name, runner);
    dead.kill9();

    // The survivor runs the fire time again, under the same run id, and it fails there.
    let a = survivor.client.wait_history("slow-a", 1, Duration::from_secs(40)).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!((a[0]["outcome"].as_str(), a[0]["run_id"].as_str()), (Some("failed"), Some(run.as_str())), "{a:?}");
    assert_eq!(a[0]["scheduler_name"], survivor.name.as_str(), "{a:?}");

    // `after` runs once, as chain, with the failed run in its params.
    let b = survivor.client.wait_history("after", 1, Duration::from_secs(20)).await;
    assert_eq!((b.len(), b[0]["trigger"].as_str()), (1, Some("chain")), "{b:?}");
    let shown = ended(&survivor.client, b[0]["run_id"].as_str().unwrap(), Duration::from_secs(10)).await;
    let params = params_of(&shown);
    assert_eq!(
        (params["run_id"].as_str(), params["job_id"].as_str()),
        (Some(run.as_str()), Some("slow-a")),
        "{params}"
    );

    // The failure alert: delivered once, by whichever node, about the survivor's run.
    assert!(wait_until(Duration::from_secs(20), || !rx.delivered("failure").is_empty()), "no failure alert");
    tokio::time::sleep(Duration::from_secs(4)).await; // time for a duplicate run, chain or alert to show
    assert_eq!(survivor.client.history("slow-a").await.len(), 1);
    assert_eq!(survivor.client.history("after").await.len(), 1, "the chained job ran exactly once");
    let posts = rx.of_kind("failure");
    assert_eq!(posts.len(), 1, "one failure alert: {posts:?}");
    let body = &posts[0]["body"];
    assert_alert_about(body, "failure", &a[0], chrono_tz::UTC);
    assert!(body["output"].as_str().unwrap_or_default().contains("giving-up"), "{body}");
    let url = body["url"].as_str().unwrap_or_else(|| panic!("a link under --public-url: {body}"));
    assert!(url.starts_with(PUBLIC_URL) && url.contains(run.as_str()), "{url}");
    let (total, items) = alert_list(&survivor.client, json!({"job_id": "slow-a", "kind": "failure"})).await;
    assert_eq!(total, 1, "{items:?}");
    assert_eq!((items[0]["state"].as_str(), num(&items[0]["attempts"])), (Some("sent"), Some(1.0)), "{items:?}");
    assert_eq!(num(&items[0]["suppressed"]), Some(0.0), "queued once, not twice: {items:?}");
    assert_eq!(items[0]["node"], survivor.name.as_str(), "{items:?}");

    // An alert waiting for its retries outlives the node that queued it.
    let flaky = Receiver::start(2).await;
    let z = c.start_node().await;
    let extra = json!({"alert": flaky.url("flaky"), "alert_on": "failure"});
    add(&survivor.client, "date", "quick-a", "bash scripts/fails.sh", "now", extra).await;
    let rows = eventually!(Duration::from_secs(15), "quick-a ran", {
        let rows = z.client.history("quick-a").await;
        (!rows.is_empty()).then_some(rows)
    });
    let ran = rows[0]["scheduler_name"].as_str().unwrap().to_owned();
    let (dead, last) = if ran == survivor.name { (survivor, z) } else { (z, survivor) };
    dead.kill9();
    let item = eventually!(Duration::from_secs(40), "quick-a's alert delivered by the last node", {
        let (_, list) = alert_list(&last.client, json!({"job_id": "quick-a", "kind": "failure"})).await;
        list.into_iter().find(|i| i["state"] == "sent")
    });
    assert!(num(&item["attempts"]).unwrap_or(0.0) >= 3.0, "{item}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let posts = flaky.posts();
    assert!(posts.len() >= 3, "{posts:?}");
    assert_eq!(posts.iter().filter(|p| p["status"] == 200).count(), 1, "delivered exactly once: {posts:?}");
    assert!(posts.iter().all(|p| p["body"]["run_id"] == rows[0]["run_id"]), "{posts:?}");
    assert_eq!(alert_list(&last.client, json!({"job_id": "quick-a"})).await.0, 1);
    assert!(last.terminate().success());
}
