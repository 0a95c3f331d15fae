//! Clocks on real `ruqi serve` processes under libfaketime (Debian's `faketime`, which
//! `make test` installs): a node's wall clock skewed or stepped while the real clock, the
//! monotonic clock and the database's clock go on. What the runs did is read from their own
//! side effects (`scripts/mark.sh` writes the real time it started and the fire time it ran
//! for) as well as from the history.
//!
//! - Alone on SQLite the node's clock is the clock: after a step back of an hour interval jobs
//!   go on from now, cron jobs wait for their next fire time (the ones before it ran already);
//!   after a step forward every job goes on, none left locked by the node itself.
//! - On MySQL the nodes follow the database's clock: a node's step changes nothing, and a
//!   node skewed by ±3 s, or by twice the lease, runs nothing early and nothing twice.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ruqi_tests::cluster::{Cluster, Mark, NodeProcess, doubled_marks, longest_silence, mark_starts};

/// libfaketime's multi-threaded build (RuQi runs on several threads).
const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// A node's fake clock: an offset from the real one, read from a file the test rewrites
/// (the node sees a step at once). The monotonic clock is left real, as an NTP step leaves it.
struct FakeTime {
    file: PathBuf,
}

impl FakeTime {
    fn new(dir: &Path, name: &str, offset_s: i64) -> Self {
        let t = Self { file: dir.join(format!("{name}.faketime")) };
        t.set(offset_s);
        t
    }

    /// Moves the node's wall clock to the real time plus `offset_s`.
    fn set(&self, offset_s: i64) {
        std::fs::write(&self.file, format!("{offset_s:+}\n")).expect("faketime file");
    }

    fn env(&self) -> Vec<(String, String)> {
        assert!(Path::new(FAKETIME_LIB).exists(), "libfaketime missing: `make galera` installs Debian's faketime");
        [
            ("LD_PRELOAD", FAKETIME_LIB),
            ("FAKETIME_TIMESTAMP_FILE", self.file.to_str().expect("utf-8 path")),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec()
    }
}

fn real_now() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

async fn add_mark_jobs(node: &NodeProcess, prefix: &str, n: usize, rule: &str, seconds: f64) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("{prefix}{i}");
        node.client.add("interval", &id, &format!("bash scripts/mark.sh {seconds}"), rule).await;
        ids.push(id);
    }
    ids
}

async fn add_cron_mark_job(node: &NodeProcess, id: &str) {
    let answer = node
        .client
        .post(
            "job_add",
            serde_json::json!({"job_trigger": "cron", "job_id": id, "job_name": "clock", "cmd": "bash scripts/mark.sh 0", "rule": "* * * * * *"}),
        )
        .await;
    assert_eq!(answer.stat, "OK", "{answer:?}");
}

/// Every (job, fire time) marked at most once.
fn assert_no_fire_time_twice(marks: &[Mark]) {
    let doubled = doubled_marks(marks);
    assert!(doubled.is_empty(), "fire times run twice: {doubled:?}");
}

/// One node stepped back an hour, then forward an hour (back to the real time).
async fn steps_an_hour(c: &mut Cluster, shared: bool) {
    let fake = FakeTime::new(c.path(), "node", 0);
    let node = c.start_node_env(&fake.env()).await;
    // Each step is made 0.8 s after the interval jobs' fire times, while they wait for the next:
    // after the step forward that one is an hour late, and the misfire policy must not take the
    // fire times they ran before the step back for missed ones.
    let ids = add_mark_jobs(&node, "iv", 4, "1s", 0.0).await;
    add_cron_mark_job(&node, "cron").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let phase = c.marks().iter().find(|m| m.job_id == "iv0").map(|m| m.fire_time.fract()).expect("iv0 ran");
    let wait = (phase + 0.8 - real_now().fract()).rem_euclid(1.0);
    tokio::time::sleep(Duration::from_secs_f64(wait)).await;

    let back = real_now();
    fake.set(-3600);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let forward = real_now();
    fake.set(0);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let end = real_now();
    let marks = c.marks();
    let log = node.log_text();
    assert!(node.terminate().success());

    assert_no_fire_time_twice(&marks);
    for id in &ids {
        let after_back = longest_silence(&marks, id, back, forward);
        let after_forward = longest_silence(&marks, id, forward, end);
        eprintln!(
            "{id}: longest silence {after_back:.2} s after the step back, {after_forward:.2} s after the step forward"
        );
        assert!(after_back < 3.5, "{id} fell silent {after_back:.2} s after the step back\n{log}");
        assert!(after_forward < 3.5, "{id} fell silent {after_forward:.2} s after the step forward\n{log}");
    }
    let cron_back = longest_silence(&marks, "cron", back, forward);
    let cron_forward = longest_silence(&marks, "cron", forward, end);
    eprintln!("cron: longest silence {cron_back:.2} s after the step back, {cron_forward:.2} s after the step forward");
    assert!(cron_forward < 3.5, "the cron job fell silent {cron_forward:.2} s after the step forward\n{log}");
    if shared {
        // The database's clock did not step: nothing changes for any job.
        assert!(cron_back < 3.5, "the cron job fell silent {cron_back:.2} s though the database's clock went on");
        assert!(log.contains("wall clock stepped"), "the step is noted:\n{log}");
    } else {
        // The node's clock is the clock: the hour of fire times before the cron job's next
        // one ran already and is not run again.
        let rerun = mark_starts(&marks, "cron").into_iter().filter(|t| *t > back + 1.5 && *t < forward).count();
        assert_eq!(rerun, 0, "the cron job ran while its fire times lay an hour ahead\n{log}");
        assert!(log.contains("clock stepped back"), "the step is noted:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alone_on_sqlite_interval_jobs_go_on_after_a_step_back_and_every_job_after_a_step_forward() {
    let mut c = Cluster::new("clocksq", &["--lease", "10"]).await;
    c.store_url = format!("sqlite://{}", c.path().join("ruqi.db").display());
    steps_an_hour(&mut c, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mysql_a_step_of_the_nodes_clock_changes_nothing() {
    let mut c = Cluster::new("clockmy", &["--lease", "10"]).await;
    steps_an_hour(&mut c, true).await;
    let history = c.runs().await;
    let counts = ruqi_tests::cluster::assert_each_fire_time_once(&history, 1.0);
    eprintln!("history rows per job: {counts:?}");
}

/// The offset a `/readyz` warning names (`… off the database's by +2.999 s …`), in seconds.
fn warned_offset(page: &str) -> f64 {
    page.split("off the database's by ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {page:?}"))
}

/// Node A's clock runs 3 s behind the database's; node B's ahead: by 3 s, then by twice the
/// lease. The jobs' runs last 1.5 s every 2 s, so each node's view of the other's leases is
/// tested while runs go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mysql_skewed_nodes_run_nothing_early_and_nothing_twice() {
    let mut c = Cluster::new("clockskew", &["--lease", "10"]).await;
    let fake_a = FakeTime::new(c.path(), "a", -3);
    let a = c.start_node_env(&fake_a.env()).await;
    let fake = FakeTime::new(c.path(), "b", 3);
    let b = c.start_node_env(&fake.env()).await;
    let mut ids = add_mark_jobs(&a, "q", 4, "1s", 0.0).await;
    ids.extend(add_mark_jobs(&b, "long", 4, "2s", 1.5).await);

    tokio::time::sleep(Duration::from_secs(3)).await;
    let ready = b.client.send(reqwest::Method::GET, "/readyz", None).await.text;
    assert!(ready.contains("ready") && ready.contains("off the database's"), "B warns of its skew: {ready}");
    // The same page as curl reads it (a client not ours).
    let curl =
        std::process::Command::new("curl").args(["-sS", &format!("http://{}/readyz", b.addr)]).output().expect("curl");
    let by_curl = String::from_utf8_lossy(&curl.stdout);
    assert!(by_curl.starts_with("ready\nwarning: "), "curl: {by_curl}");
    assert!((warned_offset(&by_curl) - 3.0).abs() < 0.5, "curl: {by_curl}");
    let metrics = b.client.send(reqwest::Method::GET, "/metrics", None).await.text;
    let offset: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ruqi_clock_offset_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .expect("ruqi_clock_offset_seconds");
    assert!((offset - 3.0).abs() < 0.5, "B's offset {offset}");
    let ready_a = a.client.send(reqwest::Method::GET, "/readyz", None).await.text;
    assert!(ready_a.starts_with("ready"), "A warns of its skew: {ready_a}");
    assert!((warned_offset(&ready_a) + 3.0).abs() < 0.5, "A warns of its skew: {ready_a}");

    tokio::time::sleep(Duration::from_secs(9)).await;
    let twice_lease = real_now();
    fake.set(20);
    tokio::time::sleep(Duration::from_secs(14)).await;
    let log_a = a.log_text();
    let log_b = b.log_text();
    assert!(a.terminate().success());
    assert!(b.terminate().success());

    let marks = c.marks();
    assert_no_fire_time_twice(&marks);
    let early: Vec<&Mark> = marks.iter().filter(|m| m.started < m.fire_time - 0.05).collect();
    assert!(early.is_empty(), "runs started before their fire time: {early:?}");
    let history = c.runs().await;
    let mut by_node = std::collections::BTreeMap::<String, (usize, usize)>::new();
    for r in &history {
        let entry = by_node.entry(r.node.clone()).or_default();
        if r.fire_time < twice_lease {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
    eprintln!("runs by node (A -3 s and B +3 s, then B +20 s): {by_node:?}; {} marks", marks.len());
    assert_eq!(history.len(), marks.len(), "a history row for each run");
    assert_eq!(by_node.len(), 2, "both nodes worked: {by_node:?}\nA:\n{log_a}\nB:\n{log_b}");
    for id in &ids {
        assert!(marks.iter().any(|m| &m.job_id == id && m.fire_time > twice_lease + 2.0), "{id} went on");
    }
}
