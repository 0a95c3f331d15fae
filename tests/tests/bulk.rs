//! `job_add_many`, at the API boundary of a real node, on SQLite and on MariaDB: a list of jobs
//! added in one request, each checked as `job_add` checks it. Without `atomic` the jobs that pass
//! are added and each refused one is named by its place in the list, its id, its stat and its
//! reason (a bad rule, an unknown parameter, an item that is not an object, an id taken in the
//! store or earlier in the list). With `atomic=1` one refusal (also one found only by the store:
//! an id taken) adds none. The list may be the body itself, or JSON text in a query. Added jobs
//! run, are counted by `job_list`, and each has its audit entry and first version. Thousands of
//! jobs in one request cross the store's rows-per-statement chunks; a list longer than the limit
//! is refused before anything is checked.

use std::time::Duration;

use serde_json::{Value, json};

use ruqi_tests::{Client, MysqlDb, ServerOptions, TestServer, job_body, ok, refused};

/// A cron rule that does not fire during a test (03:00:00 on January 1st).
const NEVER: &str = "0 0 3 1 1 *";
/// A script of the fixtures that ends at once.
const HELLO: &str = "bash scripts/hello.sh";

fn never(id: &str) -> Value {
    job_body("bulk", id, "cron", HELLO, NEVER, json!({}))
}

/// `job_list`'s total.
async fn total(c: &Client) -> u64 {
    ok(&c.get("job_list", "page_size=1").await, "job_list")["total"].as_u64().expect("total")
}

/// The refusals of a `job_add_many` answer as (index, job_id, stat, reason).
fn refusals(data: &Value) -> Vec<(u64, Value, String, String)> {
    data["refused"]
        .as_array()
        .expect("refused list")
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().expect("index"),
                r["job_id"].clone(),
                r["stat"].as_str().expect("stat").to_owned(),
                r["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect()
}

/// A list holding two good jobs and one of each kind of refusal: a bad rule, an unknown
/// parameter, an item that is not an object, an id taken in the store, an id earlier in the list.
fn mixed_list() -> Value {
    json!([
        never("bulk-a"),
        job_body("bulk", "bulk-bad-rule", "cron", HELLO, "61 * * * * *", json!({})),
        {"job_trigger": "cron", "job_id": "bulk-unknown", "cmd": HELLO, "rule": NEVER, "colour": "red"},
        "not an object",
        never("taken"),
        never("bulk-a"),
        job_body("bulk", "bulk-now", "date", HELLO, "now", json!({"timeout": 30})),
    ])
}

async fn mixed_lists(store: Option<String>) {
    let s = TestServer::start(ServerOptions { store, ..Default::default() }).await;
    let c = &s.client;
    ok(&c.post("job_add", never("taken")).await, "add taken");

    // Atomic: the same list adds nothing, and the reason says why (the refusals the checks find;
    // the store is not asked then).
    let a = c.post("job_add_many", json!({"jobs": mixed_list(), "atomic": 1})).await;
    let reason = refused(&a, "atomic mixed list");
    assert_eq!(a.stat, "ERR", "{a:?}");
    assert!(reason.starts_with("3 of 7 jobs refused, none added:"), "{reason}");
    assert!(reason.contains("job 1 (bulk-bad-rule)") && reason.contains("job 3:"), "{reason}");
    assert_eq!(total(c).await, 1, "an atomic refusal adds nothing");

    // Atomic, every job valid but one id taken in the store: only the store finds it.
    let list = json!([never("fresh-1"), never("taken"), never("fresh-2")]);
    let a = c.send(reqwest::Method::POST, "/ruqi/job_add_many?atomic=1", Some(&list.to_string())).await;
    let reason = refused(&a, "atomic list with a taken id");
    assert_eq!(reason, "1 of 3 jobs refused, none added: job 1 (taken): Conflicting job id: taken already exists");
    assert_eq!(total(c).await, 1, "the store's refusal adds nothing either");
    refused(&c.post("job_show", json!({"job_id": "fresh-1"})).await, "fresh-1 was not added");

    // Not atomic: the two good jobs are added, each refusal is named.
    let d = ok(&c.post("job_add_many", json!({"jobs": mixed_list()})).await, "mixed list");
    assert_eq!(d["count"], 2, "{d}");
    assert_eq!(d["added"], json!(["bulk-a", "bulk-now"]), "{d}");
    let r = refusals(&d);
    let places: Vec<u64> = r.iter().map(|x| x.0).collect();
    assert_eq!(places, [1, 2, 3, 4, 5], "{d}");
    assert_eq!(r[0].1, "bulk-bad-rule");
    assert_eq!(r[0].2, "ERR");
    assert!(r[0].3.contains("61"), "the reason names the bad field: {:?}", r[0]);
    assert_eq!(
        (r[1].1.clone(), r[1].2.as_str(), r[1].3.as_str()),
        (json!("bulk-unknown"), "ERR_BAD_PARAMS", "Param check failed")
    );
    assert_eq!((r[2].1.clone(), r[2].2.as_str()), (Value::Null, "ERR_BAD_PARAMS"));
    assert_eq!((r[3].1.clone(), r[3].2.as_str()), (json!("taken"), "ERR"));
    assert_eq!(r[3].3, "Conflicting job id: taken already exists");
    assert_eq!((r[4].1.clone(), r[4].3.as_str()), (json!("bulk-a"), "Conflicting job id: bulk-a already exists"));
    assert_eq!(total(c).await, 3);

    // The added jobs are whole jobs: shown, versioned, audited, run.
    let shown = ok(&c.post("job_show", json!({"job_id": "bulk-a"})).await, "show bulk-a");
    assert_eq!((shown["rule"].as_str(), shown["cmd"].as_str()), (Some(NEVER), Some(HELLO)), "{shown}");
    let v = ok(&c.post("job_versions", json!({"job_id": "bulk-now"})).await, "versions");
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["list"][0]["definition"]["timeout"], 30, "{v}");
    let audit = ok(&c.post("audit_list", json!({"job_id": "bulk-a"})).await, "audit of bulk-a");
    assert_eq!(audit["total"], 1, "{audit}");
    assert_eq!(audit["list"][0]["action"], "job_add", "{audit}");
    let runs = c.wait_history("bulk-now", 1, Duration::from_secs(20)).await;
    assert_eq!(runs.len(), 1, "the date job added in bulk ran once");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_lists_on_sqlite() {
    mixed_lists(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_lists_on_mariadb() {
    let db = MysqlDb::create("bulk_mixed").await;
    mixed_lists(Some(db.url.clone())).await;
}

/// `n` jobs `prefix-0` … in one request (the body the list itself); then the same ids again: all
/// refused as taken, nothing changed.
async fn thousands(store: Option<String>, n: usize) {
    let s = TestServer::start(ServerOptions { store, max_body_bytes: Some(64 << 20), ..Default::default() }).await;
    let c = &s.client;
    let list: Vec<Value> = (0..n).map(|i| never(&format!("many-{i}"))).collect();
    let body = Value::Array(list).to_string();
    let a = c.send(reqwest::Method::POST, "/ruqi/job_add_many", Some(&body)).await;
    let d = ok(&a, "thousands");
    assert_eq!(d["count"].as_u64(), Some(n as u64));
    assert_eq!(d["refused"], json!([]));
    assert_eq!(total(c).await, n as u64);
    let again = ok(&c.send(reqwest::Method::POST, "/ruqi/job_add_many", Some(&body)).await, "again");
    assert_eq!(again["count"], 0);
    assert_eq!(refusals(&again).len(), n);
    assert_eq!(total(c).await, n as u64);
    let last = ok(&c.post("job_show", json!({"job_id": format!("many-{}", n - 1)})).await, "last");
    assert_eq!(last["rule"], NEVER);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_on_sqlite() {
    thousands(None, 20_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_on_mariadb() {
    let db = MysqlDb::create("bulk_many").await;
    thousands(Some(db.url.clone()), 5_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lists_are_refused_whole() {
    let s = TestServer::start(ServerOptions { max_body_bytes: Some(8 << 20), ..Default::default() }).await;
    let c = &s.client;
    for (body, what) in [
        (json!({}), "no jobs"),
        (json!({"jobs": {"job_id": "x"}}), "an object"),
        (json!({"jobs": 3}), "a number"),
        (json!({"jobs": "[not json"}), "bad JSON text"),
        (json!({"jobs": [never("x")], "atomic": "maybe"}), "a bad atomic"),
    ] {
        let a = c.post("job_add_many", body).await;
        refused(&a, what);
        assert_eq!(a.stat, "ERR_BAD_PARAMS", "{what}: {a:?}");
    }
    let over: Vec<Value> = (0..100_001).map(|_| json!({})).collect();
    let a = c.send(reqwest::Method::POST, "/ruqi/job_add_many", Some(&Value::Array(over).to_string())).await;
    let reason = refused(&a, "too many");
    assert!(reason.contains("at most 100000"), "{reason}");
    assert_eq!(total(c).await, 0);

    // The list as JSON text in a query.
    let text = json!([never("q-1"), never("q-2")]).to_string();
    let query = format!("jobs={}", urlencode(&text));
    let d = ok(&c.get("job_add_many", &query).await, "list in a query");
    assert_eq!(d["added"], json!(["q-1", "q-2"]));
    // An empty list adds nothing and is no error.
    let d = ok(&c.post("job_add_many", json!({"jobs": []})).await, "empty list");
    assert_eq!((d["count"].as_u64(), d["added"].clone()), (Some(0), json!([])));
    assert_eq!(total(c).await, 2);
    s.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The list posted by curl from a file, as an operator would (a client not ours).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_posts_a_list_file() {
    let s = TestServer::start(ServerOptions::default()).await;
    let file = s.dir.path().join("jobs.json");
    std::fs::write(&file, json!([never("curl-1"), never("curl-2"), never("curl-3")]).to_string()).unwrap();
    let url = format!("http://{}/ruqi/job_add_many?atomic=1", s.node.as_ref().unwrap().addr);
    let out = std::process::Command::new("curl")
        .args(["-sS", "-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", file.display()))
        .arg(&url)
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("a JSON answer");
    assert_eq!(answer["stat"], "OK", "{answer}");
    assert_eq!(answer["data"]["added"], json!(["curl-1", "curl-2", "curl-3"]), "{answer}");
    assert_eq!(total(&s.client).await, 3);
    s.stop().await;
}
