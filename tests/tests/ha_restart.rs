//! The real MariaDB server restarted under load: two nodes recover without manual action and
//! every fire time inside the misfire grace still runs once. This is its own test binary, and
//! cargo runs test binaries one after another, so no other test sees the server go away.
//! It needs the rights `make test` has to stop and start the local server.

use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use ruqi_tests::cluster::{Cluster, assert_each_fire_time_once};

fn mysqladmin(args: &[&str]) -> bool {
    Command::new("mysqladmin").args(["-uroot", "-h127.0.0.1"]).args(args).output().is_ok_and(|o| o.status.success())
}

/// Starts the server as `make services` does and waits until it answers.
fn start_mariadb() {
    let _ = std::fs::create_dir_all("/run/mysqld");
    let _ = Command::new("chown").args(["mysql:mysql", "/run/mysqld"]).status();
    let status = Command::new("start-stop-daemon")
        .args(["--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd"])
        .status()
        .expect("start-stop-daemon");
    assert!(status.success(), "could not start mariadbd: {status}");
    for _ in 0..120 {
        if mysqladmin(&["ping"]) {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("MariaDB did not come back within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_recover_from_a_mariadb_restart_under_load() {
    assert!(nix::unistd::geteuid().is_root(), "this test restarts the local MariaDB: run it as root (make test in CI)");
    let mut c = Cluster::new("harestart", &["--lease", "3"]).await;
    let a = c.start_node().await;
    let b = c.start_node().await;
    for i in 0..4 {
        [&a, &b][i % 2].client.add("interval", &format!("r{i}"), "echo:load", "1s").await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;

    let stopped = tokio::task::spawn_blocking(|| mysqladmin(&["shutdown"])).await.unwrap();
    assert!(stopped, "mysqladmin shutdown failed");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answer = a.client.get("job_list", "").await;
    tokio::task::spawn_blocking(start_mariadb).await.unwrap();
    assert_eq!(answer.stat, "ERR_SERVER_EXCEPTION", "while the server was down: {}", answer.text);

    assert!(b.client.wait_ok("job_list", Duration::from_secs(15)).await, "the API did not recover after the restart");
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(a.terminate().success());
    assert!(b.terminate().success());
    let runs = c.runs().await;
    let counts = assert_each_fire_time_once(&runs, 1.0);
    let last = runs.iter().map(|r| r.started).max().unwrap();
    assert!(Utc::now() - last < chrono::Duration::seconds(12), "runs resumed after the restart");
    for i in 0..4 {
        assert!(counts[&format!("r{i}")] >= 12, "{counts:?}");
    }
}
