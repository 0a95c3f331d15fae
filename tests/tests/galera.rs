//! RuQi on a real MariaDB Galera cluster: 3 `mariadbd` members on 127.0.0.1 that the test starts
//! in a folder of its own ([`ruqi_tests::galera::Galera`]; `make galera` installs Galera, rsync
//! and libfaketime). Member `i` serves SQL on `3311+i` and uses `3411+i`, `3511+i` and `3611+i`
//! for Galera (clear of the machine's MariaDB on 3306).
//!
//! Two RuQi nodes, each first on its own member and given all three hosts, start at the same
//! instant (both migrate: they take turns); interval, cron and date jobs run; the first node's
//! member is killed with `kill -9` and restarted while they run. Every fire time runs once and
//! none is lost, by the scripts' own side effects as well as by the history; the first node goes
//! on through another member.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ruqi_tests::cluster::{Cluster, StoredRun, assert_each_fire_time_once, doubled_marks, longest_silence, runs_in};
use ruqi_tests::galera::Galera;

/// Base port of the cluster: SQL on 3311–3313.
const BASE_PORT: u16 = 3311;
/// The nodes' lease (the default): a member's death may cost a node at most this.
const LEASE_S: &str = "10";
/// The database the nodes share.
const DB: &str = "ruqi_galera";

/// `wsrep_cluster_size` as member `i` sees it (None when it does not answer).
fn cluster_size(g: &Galera, i: usize) -> Option<usize> {
    g.sql(i, "SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size'").ok()?.split('\t').nth(1)?.trim().parse().ok()
}

/// Runs blocking cluster work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// The store address of a node that uses the members in `order`.
fn hosts(g: &Galera, order: [usize; 3]) -> String {
    let list: Vec<String> = order.iter().map(|i| g.addr(*i)).collect();
    format!("mysql://root@{}/{DB}", list.join(","))
}

fn epoch(t: chrono::DateTime<chrono::Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_three_galera_members_run_each_fire_time_once_through_a_member_kill() {
    let started = Instant::now();
    let g = Arc::new(blocking(|| Galera::start(3, BASE_PORT)).await.unwrap_or_else(|e| panic!("cluster start: {e}")));
    eprintln!("galera: 3 members started in {:.1?}", started.elapsed());
    {
        let g = g.clone();
        blocking(move || g.create_database(DB)).await.expect("create database");
    }
    let c = Cluster::new("galera", &["--lease", LEASE_S]).await;

    // Both nodes start at once, each on its own member first: both migrate, taking turns.
    let (url_a, url_b) = (hosts(&g, [0, 1, 2]), hosts(&g, [1, 2, 0]));
    let (a, b) = tokio::join!(c.start_node_at(&url_a, "a", &[]), c.start_node_at(&url_b, "b", &[]));
    let turn = g.sql(2, &format!("SELECT COUNT(*) FROM {DB}.ruqi_migration_turn")).expect("turn table");
    assert_eq!(turn.trim(), "0", "the migration turn was ended");

    // Interval and cron jobs every second, date jobs every half second for 30 s; through both nodes.
    let mark = "bash scripts/mark.sh 0";
    let mut every_second = Vec::new();
    for i in 0..6 {
        let id = format!("iv{i}");
        [&a, &b][i % 2].client.add("interval", &id, mark, "1s").await;
        every_second.push(id);
    }
    for i in 0..3 {
        let id = format!("cr{i}");
        let answer = [&a, &b][i % 2]
            .client
            .post(
                "job_add",
                serde_json::json!({"job_trigger": "cron", "job_id": id, "job_name": "g", "cmd": mark, "rule": "* * * * * *"}),
            )
            .await;
        assert_eq!(answer.stat, "OK", "{answer:?}");
        every_second.push(id);
    }
    let first_date = chrono::Utc::now() + chrono::Duration::seconds(3);
    let mut dates = Vec::new();
    for i in 0..60 {
        let id = format!("d{i:02}");
        let at = (first_date + chrono::Duration::milliseconds(500 * i)).format("%Y-%m-%d %H:%M:%S%.6f").to_string();
        [&a, &b][i as usize % 2].client.add("date", &id, mark, &at).await;
        dates.push(id);
    }

    tokio::time::sleep(Duration::from_secs(10)).await;
    let killed = epoch(chrono::Utc::now());
    {
        let g = g.clone();
        blocking(move || g.kill9(0)).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let restarting = Instant::now();
    {
        let g = g.clone();
        blocking(move || g.restart(0)).await.unwrap_or_else(|e| panic!("restart of member 0: {e}"));
    }
    let restarted = epoch(chrono::Utc::now());
    eprintln!("galera: member 0 rejoined in {:.1?}", restarting.elapsed());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let end = epoch(chrono::Utc::now());
    let (log_a, log_b) = (a.log_text(), b.log_text());
    for i in 0..3 {
        let status = g.sql(
            i,
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_cert_failures', 'wsrep_local_bf_aborts', 'wsrep_local_replays', 'wsrep_last_committed')",
        );
        eprintln!("galera: member {i}: {}", status.unwrap_or_default().replace('\n', ", "));
    }
    assert!(a.terminate().success(), "node a stops cleanly\n{log_a}");
    assert!(b.terminate().success(), "node b stops cleanly\n{log_b}");

    // Side effects: no fire time twice, each date job once.
    let marks = c.marks();
    let doubled = doubled_marks(&marks);
    assert!(doubled.is_empty(), "fire times run twice: {doubled:?}\nA:\n{log_a}\nB:\n{log_b}");
    for id in &dates {
        assert_eq!(
            marks.iter().filter(|m| &m.job_id == id).count(),
            1,
            "date job {id} ran once\nA:\n{log_a}\nB:\n{log_b}"
        );
    }

    // The history, read through a member that stayed up: each fire time once, no gap.
    let history: Vec<StoredRun> = {
        use sqlx::Connection as _;
        let mut conn = sqlx::MySqlConnection::connect(&format!("{}/{DB}", g.server_url(2))).await.expect("member 2");
        sqlx::Executor::execute(&mut conn, "SET SESSION wsrep_sync_wait = 1").await.expect("causal reads");
        runs_in(&mut conn).await
    };
    let repeating: Vec<StoredRun> = history.iter().filter(|r| !r.job_id.starts_with('d')).cloned().collect();
    let counts = assert_each_fire_time_once(&repeating, 1.0);
    assert_eq!(history.len(), marks.len(), "a history row for each run, a run for each history row");
    let by_node = |from: f64, to: f64| {
        let mut m = std::collections::BTreeMap::<String, usize>::new();
        for r in history.iter().filter(|r| r.fire_time >= from && r.fire_time < to) {
            *m.entry(r.node.clone()).or_default() += 1;
        }
        m
    };
    let (before, during, after) = (by_node(0.0, killed), by_node(killed, restarted), by_node(restarted, f64::MAX));
    eprintln!("galera: runs by node before the kill {before:?}, while member 0 was down {during:?}, after {after:?}");
    let silences: Vec<f64> = every_second.iter().map(|id| longest_silence(&marks, id, killed - 1.0, end)).collect();
    let longest = silences.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "galera: {} runs, {} doubled, per job {counts:?}; longest gap of an every-second job from the kill on {longest:.1} s",
        marks.len(),
        doubled.len()
    );
    for id in &every_second {
        assert!(counts.get(id).is_some_and(|n| *n >= 25), "{id} ran all along: {counts:?}");
    }
    assert_eq!(during.len(), 2, "both nodes ran jobs while member 0 was down: {during:?}\nA:\n{log_a}");
    assert!(
        longest < LEASE_S.parse::<f64>().unwrap(),
        "a member's death cost {longest:.1} s, more than a lease (Galera's eviction takes ~6 s)\nA:\n{log_a}\nB:\n{log_b}"
    );
    assert!(log_a.contains("using another"), "node a moved off its dead member:\n{log_a}");
    for i in 0..3 {
        assert_eq!(cluster_size(&g, i), Some(3), "member {i} sees the cluster whole again");
    }
}
