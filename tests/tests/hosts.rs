//! A store address naming several MySQL hosts (`mysql://user@h1:port,h2:port/db`), each host here
//! a proxy in front of the machine's MariaDB whose link the test cuts: a node whose first host
//! does not answer starts on the next; a node moves off the host in use when its link is cut,
//! without losing or doubling a fire time, and back to the first host once it answers again; a
//! call caught connecting to a host that died is answered through the next.

use std::time::Duration;

use ruqi_tests::cluster::{Cluster, Proxy, assert_each_fire_time_once};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_moves_between_the_hosts_of_its_store_address() {
    let mut c = Cluster::new("hosts", &["--lease", "3"]).await;
    let mariadb = "127.0.0.1:3306".parse().unwrap();
    let (p1, p2) = (Proxy::start(mariadb).await, Proxy::start(mariadb).await);
    let db = c.db.name.clone();
    let url = |hosts: &str| format!("{}/{db}", ruqi_tests::mysql_server().replace("127.0.0.1:3306", hosts));

    // The first host does not answer at start (nothing listens there): the node uses the next.
    c.store_url = url(&format!("127.0.0.1:1,{}", p2.addr));
    let b = c.start_node().await;
    b.client.add("interval", "b0", "echo:b", "1s").await;
    assert!(b.terminate().success());

    // Both hosts up: the first is used. Its link cut: the node moves to the second within the
    // lease and keeps running every fire time; restored: the node goes back to it.
    c.store_url = url(&format!("{},{}", p1.addr, p2.addr));
    let a = c.start_node().await;
    for i in 0..3 {
        a.client.add("interval", &format!("h{i}"), "echo:up", "1s").await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    p1.cut();
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(a.client.wait_ok("job_list", Duration::from_secs(5)).await, "the API answers through the second host");
    p1.restore();
    tokio::time::sleep(Duration::from_secs(9)).await;
    // Back on the first host: cutting the second changes nothing.
    p2.cut();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(a.client.wait_ok("job_list", Duration::from_secs(2)).await);
    let log = a.log_text();
    assert!(a.terminate().success());
    assert!(log.contains("database host failed; using another"), "{log}");
    assert!(log.contains("back on the first database host"), "{log}");
    let runs = c.runs().await;
    let runs: Vec<_> = runs.into_iter().filter(|r| r.job_id.starts_with('h')).collect();
    let counts = assert_each_fire_time_once(&runs, 1.0);
    for i in 0..3 {
        assert!(counts[&format!("h{i}")] >= 20, "every fire time ran through both moves: {counts:?}");
    }
}

/// A call that is connecting to the host in use when that host dies (its port refuses, as after
/// `kill -9`) is answered through the next host once the node moves there. sqlx retries a
/// refused connect until the pool's acquire timeout (5 s) whatever happens to the pool; the
/// node points those retries at the new host, so the call does not fail with a pool timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_connecting_to_a_host_that_died_is_answered_through_the_next() {
    let mut c = Cluster::new("hosts_dead", &[]).await;
    let mariadb = "127.0.0.1:3306".parse().unwrap();
    let (p1, p2) = (Proxy::start(mariadb).await, Proxy::start(mariadb).await);
    let db = c.db.name.clone();
    c.store_url =
        format!("{}/{db}", ruqi_tests::mysql_server().replace("127.0.0.1:3306", &format!("{},{}", p1.addr, p2.addr)));
    let a = c.start_node().await;
    a.client.add("date", "d0", "echo:d", "2099-01-01 00:00:00").await;
    p1.kill();
    // The listener's task ends on its next poll: give it a moment, so the calls below meet a
    // refused port, not the last accepted-and-closed connection.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (list, one) = tokio::join!(a.client.get("job_list", ""), a.client.get("job_show", "job_id=d0"));
    let log = a.log_text();
    assert!(a.terminate().success());
    assert_eq!(list.stat, "OK", "job_list through the next host: {:?}\n{log}", list.reason);
    assert_eq!(one.stat, "OK", "job_show through the next host: {:?}\n{log}", one.reason);
    assert!(log.contains("database host failed; using another"), "{log}");
}
