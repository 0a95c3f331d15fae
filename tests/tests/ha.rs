//! High availability on a real MariaDB with several real `ruqi serve` processes: the work is
//! shared and each fire time runs once; kill -9 fails over within the lease; a stalled node
//! (SIGSTOP past its lease) is fenced off; a database outage is survived without manual action.
//! Every test has its own database; timing figures are printed (stderr) for the notes.

use std::time::Duration;

use chrono::Utc;
use nix::sys::signal::Signal;
use ruqi_tests::cluster::{Cluster, NodeProcess, Proxy, StoredRun, assert_each_fire_time_once, percentile};

/// Lease used by these tests (the minimum), so failover is quick.
const LEASE_S: f64 = 3.0;

async fn add_jobs(nodes: &[&NodeProcess], prefix: &str, n: usize, rule: &str, cmd: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("{prefix}{i}");
        // through different nodes: a job added on one is run by all
        nodes[i % nodes.len()].client.add("interval", &id, cmd, rule).await;
        ids.push(id);
    }
    ids
}

fn by_node(runs: &[StoredRun]) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for r in runs {
        *m.entry(r.node.clone()).or_insert(0) += 1;
    }
    m
}

async fn share_the_work(n_nodes: usize) {
    let mut c = Cluster::new(&format!("ha{n_nodes}"), &["--lease", "3"]).await;
    let mut nodes = Vec::new();
    for _ in 0..n_nodes {
        nodes.push(c.start_node().await);
    }
    let refs: Vec<&NodeProcess> = nodes.iter().collect();
    let mut ids = add_jobs(&refs, "iv", 6, "1s", "echo:tick").await;
    for i in 0..4 {
        // cron every second, seconds field first
        let id = format!("cr{i}");
        refs[i % n_nodes]
            .client
            .post(
                "job_add",
                serde_json::json!({"job_trigger": "cron", "job_id": id, "job_name": "ha", "cmd": "echo:cron", "rule": "* * * * * *"}),
            )
            .await;
        ids.push(id);
    }
    tokio::time::sleep(Duration::from_secs(62)).await;
    for n in nodes {
        assert!(n.terminate().success());
    }
    let runs = c.runs().await;
    let counts = assert_each_fire_time_once(&runs, 1.0);
    assert_eq!(counts.len(), ids.len(), "every job ran: {counts:?}");
    for (job, n) in &counts {
        assert!(*n >= 58, "job {job} ran {n} times in 62 s");
    }
    assert!(runs.iter().all(|r| r.success));
    let spread = by_node(&runs);
    assert_eq!(spread.len(), n_nodes, "every node ran some: {spread:?}");
    for (node, n) in &spread {
        assert!(*n * n_nodes * 5 >= runs.len(), "node {node} ran only {n} of {} runs: {spread:?}", runs.len());
    }
    let mut late: Vec<f64> =
        runs.iter().map(|r| r.started.timestamp_micros() as f64 / 1e6 - r.fire_time).collect::<Vec<_>>();
    late.sort_by(f64::total_cmp);
    eprintln!(
        "{n_nodes} nodes, {} runs, spread {spread:?}; lateness p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
        runs.len(),
        percentile(&late, 50.0) * 1e3,
        percentile(&late, 99.0) * 1e3,
        late.last().unwrap() * 1e3
    );
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_work_and_run_each_fire_time_once() {
    share_the_work(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_the_work_and_run_each_fire_time_once() {
    share_the_work(3).await;
}

/// Waits until `node` holds at least one claim; returns them.
async fn wait_for_claims(c: &Cluster, node: &str) -> Vec<(String, f64)> {
    for _ in 0..200 {
        let claims = c.claims_of(node).await;
        if !claims.is_empty() {
            return claims;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("node {node} never held a claim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_fails_over_within_the_lease_and_loses_nothing() {
    let mut c = Cluster::new("hakill", &["--lease", "3"]).await;
    let mut nodes = vec![c.start_node().await, c.start_node().await, c.start_node().await];
    // runs of 1 s every 2 s: a node holds claims about half of the time
    let refs: Vec<&NodeProcess> = nodes.iter().collect();
    add_jobs(&refs, "k", 6, "2s", "bash scripts/work.sh 1").await;
    let mut orphans: Vec<(String, f64, String, chrono::DateTime<Utc>)> = Vec::new();
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(3000 + 1700 * round as u64)).await;
        let victim = nodes.remove(round % nodes.len());
        let claims = wait_for_claims(&c, &victim.name).await;
        let killed_at = Utc::now();
        let name = victim.name.clone();
        victim.kill9();
        orphans.extend(claims.into_iter().map(|(job, fire)| (job, fire, name.clone(), killed_at)));
        nodes.push(c.start_node().await);
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    for n in nodes {
        assert!(n.terminate().success());
    }
    let runs = c.runs().await;
    let counts = assert_each_fire_time_once(&runs, 2.0);
    assert_eq!(counts.len(), 6, "{counts:?}");
    let mut failovers = Vec::new();
    for (job, fire, victim, killed_at) in &orphans {
        let Some(run) = runs.iter().find(|r| &r.job_id == job && (r.fire_time - fire).abs() < 1e-6) else {
            panic!("fire time {fire} of {job}, held by the killed node, never ran");
        };
        if &run.node == victim {
            continue; // it finished just before the kill
        }
        let after = (run.started - *killed_at).num_milliseconds() as f64 / 1e3;
        assert!(after <= LEASE_S + 3.0, "{job}@{fire} taken over {after:.2} s after the kill (lease {LEASE_S} s)");
        failovers.push(after);
    }
    assert!(!failovers.is_empty(), "no claim was taken over: {orphans:?}");
    failovers.sort_by(f64::total_cmp);
    eprintln!(
        "failover after kill -9 (lease {LEASE_S} s), {} claims: median {:.2} s, worst {:.2} s",
        failovers.len(),
        percentile(&failovers, 50.0),
        failovers.last().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stalled_past_its_lease_is_fenced_off() {
    let mut c = Cluster::new("hastop", &["--lease", "3"]).await;
    let a = c.start_node().await;
    let b = c.start_node().await;
    add_jobs(&[&a, &b], "s", 4, "2s", "bash scripts/work.sh 1").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = wait_for_claims(&c, &a.name).await;
    a.signal(Signal::SIGSTOP);
    let stopped_at = Utc::now();
    tokio::time::sleep(Duration::from_secs_f64(LEASE_S + 4.0)).await;
    // b took every job over while a was stopped (but a run a ended, and recorded, in the moment
    // between reading its claims and stopping it)
    let runs = c.runs().await;
    let mut taken_over = 0;
    for (job, fire) in &held {
        let run = runs.iter().find(|r| &r.job_id == job && (r.fire_time - fire).abs() < 1e-6);
        match run {
            Some(r) if r.node == b.name => taken_over += 1,
            Some(r) if r.node == a.name && r.ended <= stopped_at => {}
            other => panic!("{job}@{fire} not taken over by b: {other:?} (a stopped at {stopped_at})"),
        }
    }
    assert!(taken_over > 0, "none of a's claims {held:?} was taken over");
    a.signal(Signal::SIGCONT);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let resumed_at = Utc::now() - chrono::Duration::seconds(8);
    let log = a.log_text();
    let (a_name, b_name) = (a.name.clone(), b.name.clone());
    assert!(a.terminate().success());
    assert!(b.terminate().success());
    let runs = c.runs().await;
    assert_each_fire_time_once(&runs, 2.0);
    // the stalled node's late results did not replace the rows of the node that took over
    for (job, fire) in &held {
        let r = runs.iter().find(|r| &r.job_id == job && (r.fire_time - fire).abs() < 1e-6).unwrap();
        assert_eq!(r.node, b_name, "{job}@{fire}");
    }
    // nothing a started after it was stopped except fresh claims made after it resumed
    for r in runs.iter().filter(|r| r.node == a_name && r.started > stopped_at) {
        assert!(r.started >= resumed_at - chrono::Duration::milliseconds(500), "a ran {r:?} while stopped");
    }
    assert!(runs.iter().any(|r| r.node == a_name && r.started > resumed_at), "a takes work again after it resumes");
    assert!(log.contains("lost"), "a logged its lost claims: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_survived_without_manual_action() {
    let mut c = Cluster::new("haout", &["--lease", "3"]).await;
    let proxy = Proxy::start("127.0.0.1:3306".parse().unwrap()).await;
    c.store_url =
        format!("{}/{}", ruqi_tests::mysql_server().replace("127.0.0.1:3306", &proxy.addr.to_string()), c.db.name);
    let a = c.start_node().await;
    let b = c.start_node().await;
    add_jobs(&[&a, &b], "o", 4, "1s", "echo:up").await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // the API says what is wrong, in RuQi's envelope, and does not hang
    let started = std::time::Instant::now();
    let answer = a.client.get("job_list", "").await;
    assert_eq!(answer.stat, "ERR_SERVER_EXCEPTION", "{}", answer.text);
    assert!(answer.reason.as_deref().is_some_and(|r| r.contains("database")), "{:?}", answer.reason);
    assert!(started.elapsed() < Duration::from_secs(15), "answered in {:?}", started.elapsed());
    let add = b.client.post("job_add", serde_json::json!({"job_trigger": "interval", "job_id": "lost", "job_name": "x", "cmd": "echo:x", "rule": "1s"})).await;
    assert_eq!(add.stat, "ERR_SERVER_EXCEPTION", "{}", add.text);
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.restore();

    // back by itself: the API answers, a new job runs, missed fire times ran once each
    assert!(a.client.wait_ok("job_list", Duration::from_secs(10)).await, "the API did not recover");
    a.client.add("interval", "after", "echo:after", "1s").await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(a.terminate().success());
    assert!(b.terminate().success());
    let runs = c.runs().await;
    let counts = assert_each_fire_time_once(&runs, 1.0);
    assert!(counts.get("after").is_some_and(|n| *n >= 5), "{counts:?}");
    assert!(!counts.contains_key("lost"), "an add refused during the outage left nothing");
    for i in 0..4 {
        // ~17 s of 1 s fire times: none lost to the outage (they ran late, once each)
        assert!(counts[&format!("o{i}")] >= 15, "{counts:?}");
    }
}

/// `scheduler_nodes` on one node lists every node of the store: itself (`this`), the others
/// up; one stopped with SIGTERM as stopped, one killed as silent once its heartbeats stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_of_the_store_is_listed_up_stopped_or_silent() {
    let mut c = Cluster::new("nodes", &[]).await;
    let (a, b, k) = (c.start_node().await, c.start_node().await, c.start_node().await);
    let state_of = |list: &serde_json::Value, name: &str| {
        list["list"].as_array().unwrap().iter().find(|n| n["name"] == name).map(|n| n["state"].clone())
    };
    let nodes = a.client.get("scheduler_nodes", "").await;
    assert_eq!(nodes.stat, "OK");
    let d = nodes.data().clone();
    assert_eq!(d["total"], 3, "{d}");
    for n in [&a, &b, &k] {
        assert_eq!(state_of(&d, &n.name), Some("up".into()), "{} in {d}", n.name);
    }
    let this: Vec<_> = d["list"].as_array().unwrap().iter().filter(|n| n["this"] == true).collect();
    assert_eq!(this.len(), 1);
    assert_eq!(this[0]["name"], a.name.as_str());
    assert_eq!(this[0]["version"], env!("CARGO_PKG_VERSION"));

    let (b_name, k_name) = (b.name.clone(), k.name.clone());
    assert!(b.terminate().success());
    k.kill9();
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let d = loop {
        let d = a.client.get("scheduler_nodes", "").await.data().clone();
        if state_of(&d, &k_name) == Some("silent".into()) || std::time::Instant::now() > deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(state_of(&d, &b_name), Some("stopped".into()), "{d}");
    assert_eq!(state_of(&d, &k_name), Some("silent".into()), "{d}");
    assert_eq!(state_of(&d, &a.name), Some("up".into()), "{d}");
    assert_eq!(a.client.get("scheduler_nodes", "within_minutes=10081").await.stat, "ERR_BAD_PARAMS");
    assert!(a.terminate().success());
}
