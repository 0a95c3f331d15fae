//! The audit trail, job versions and jobs as code, at the API boundary and through the real
//! `ruqi` binary, on SQLite and on MariaDB. Callers come from a tokens file (`TOKEN name=NAME`,
//! `TOKEN read-only name=NAME`, and a token without a name, recorded as `token-` and 8 hex
//! digits of its SHA-256; no tokens at all: `anonymous`). Every change that succeeds is in
//! `audit_list` with its caller, peer, node, params and, for a job, only the fields that changed;
//! a refused request records nothing; the list filters by job, caller and time and pages.
//! `job_versions` numbers each definition a job is given (add, modify, rollback; not pause and
//! resume); `job_rollback` makes one current again, also for a removed job. `ruqi export` and
//! `ruqi apply` carry 1,000 jobs round trip: no change, then an edited file's plan, applied with
//! and without `--prune`. `ruqi audit --caller` lists one caller's changes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::{Value, json};

use ruqi_tests::{Answer, Client, MysqlDb, ServerOptions, TestServer, install_plugin, ok, refused, ruqi_bin};

/// The tokens file of these tests' servers: two named tokens, a named read-only one, and one
/// without a name.
const TOKENS_FILE: &str = "# the callers of the audit tests\n\
alice-s3cret name=alice\n\
bob-s3cret   name=bob\n\
\n\
viewer-s3cret read-only name=viewer   # may only read\n\
plain-s3cret\n";

const ALICE: &str = "alice-s3cret";
const BOB: &str = "bob-s3cret";
const VIEWER: &str = "viewer-s3cret";
const PLAIN: &str = "plain-s3cret";

/// Where the tests' requests come from, as the audit trail records it.
const LOOPBACK: &str = "127.0.0.1";

/// A cron rule that does not fire during a test (03:00:00 on January 1st).
const NEVER: &str = "0 0 3 1 1 *";
/// Another one (04:30:00 on January 1st).
const OTHER: &str = "0 30 4 1 1 *";

/// A script that ends at once.
const QUICK: &str = "bash scripts/quick.sh";

/// An alert target nothing listens on (alerts are only queued: no job of these tests fails).
const HOOK: &str = "http://127.0.0.1:9/hook";

/// Polls `$probe` (an expression giving an `Option`; `.await` allowed) every 100 ms until it
/// gives `Some`, and yields that value; fails the test with `$what` if `$within` passes first.
/// An in-process server runs on the test's own runtime, whose two workers a sleeping thread
/// must not hold.
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
// Servers, clients and small readers

/// The scripts these tests run, written into the work directory.
fn write_scripts(dir: &Path) {
    let scripts = dir.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    let files =
        [("quick.sh", "echo \"quick $RUQI_JOB_ID\"\n"), ("sleep.sh", "echo sleeping\nsleep \"$1\"\necho awake\n")];
    for (name, text) in files {
        std::fs::write(scripts.join(name), text).unwrap();
    }
}

/// A server on 127.0.0.1 with `plugins`, its store `store` (a SQLite file in its folder when
/// `None`), its callers from [`TOKENS_FILE`] (given as `tokens_file`, as `--tokens-file` does),
/// and a work directory holding [`write_scripts`]. Built as [`TestServer::start`] builds one,
/// through `app::start_with`, which serves with the peer's address.
async fn server(store: Option<String>, plugins: &[&str]) -> (TestServer, tempfile::TempDir) {
    let work = tempfile::tempdir().expect("work dir");
    write_scripts(work.path());
    let dir = tempfile::tempdir().expect("server dir");
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir(&plugin_dir).expect("plugins dir");
    for name in plugins {
        install_plugin(&plugin_dir, name, None);
    }
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, TOKENS_FILE).expect("tokens file");
    let store = store.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("ruqi.db").display()));
    let args = ruqi::config::ServeArgs {
        listen: Some("127.0.0.1:0".into()),
        store: Some(store),
        plugins: Some(plugin_dir),
        workdir: Some(work.path().to_owned()),
        tokens_file: Some(tokens),
        timezone: Some("Asia/Shanghai".into()),
        shutdown_grace: Some(5),
        ..Default::default()
    };
    let settings = args.settings().expect("settings with a tokens file");
    let deps = ruqi::app::Deps::default();
    let node = ruqi::app::start_with(settings.clone(), deps.clone()).await.expect("server starts");
    let client = Client::new(node.addr);
    (TestServer { client, node: Some(node), dir, settings, deps }, work)
}

/// The running node's name (`host:port:pid`), as audit entries name it.
fn node_name(s: &TestServer) -> String {
    s.node.as_ref().expect("a running node").name.clone()
}

/// The server's base URL, for the CLI.
fn server_url(s: &TestServer) -> String {
    format!("http://{}", s.node.as_ref().expect("a running node").addr)
}

/// The caller the audit trail names for a token without a name.
fn unnamed_caller(token: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(token.as_bytes());
    format!("token-{}", digest.iter().take(4).map(|b| format!("{b:02x}")).collect::<String>())
}

/// A whole job as `job_add` and `job_modify` take it, with `extra` parameters.
fn spec(id: &str, trigger: &str, cmd: &str, rule: &str, extra: Value) -> Value {
    ruqi_tests::job_body("audited", id, trigger, cmd, rule, extra)
}

async fn add(c: &Client, body: Value) {
    let what = format!("add {}", body["job_id"]);
    ok(&c.post("job_add", body).await, &what);
}

async fn show(c: &Client, id: &str) -> Value {
    ok(&c.post("job_show", json!({"job_id": id})).await, &format!("job_show {id}"))
}

/// `audit_list` with `query`: its total and the page's entries (newest first).
async fn audit(c: &Client, query: Value) -> (u64, Vec<Value>) {
    let d = ok(&c.post("audit_list", query.clone()).await, &format!("audit_list {query}"));
    let total = d["total"].as_u64().unwrap_or_else(|| panic!("audit_list total: {d}"));
    (total, d["list"].as_array().cloned().unwrap_or_default())
}

/// The newest audit entry.
async fn newest(c: &Client) -> Value {
    let (_, list) = audit(c, json!({"page_size": 1})).await;
    list.into_iter().next().expect("an audit entry")
}

/// `job_versions` of `id`.
async fn versions(c: &Client, id: &str) -> Value {
    ok(&c.post("job_versions", json!({"job_id": id})).await, &format!("job_versions {id}"))
}

/// Every job's definition as `job_export` gives it, by id.
async fn exported(c: &Client) -> BTreeMap<String, Value> {
    let d = ok(&c.post("job_export", json!({})).await, "job_export");
    let list = d["list"].as_array().cloned().unwrap_or_default();
    assert_eq!(d["total"].as_u64(), Some(list.len() as u64), "job_export total: {}", d["total"]);
    list.into_iter().map(|def| (def["job_id"].as_str().expect("a definition's job_id").to_owned(), def)).collect()
}

/// Polls `run_show` until the run has ended (it may not be listed yet at first); its data.
async fn run_ended(c: &Client, run_id: &str, within: Duration) -> Value {
    eventually!(within, format!("run {run_id} ended"), {
        let a = c.post("run_show", json!({"run_id": run_id})).await;
        (a.stat == "OK" && a.data()["state"] == "ended").then(|| a.data().clone())
    })
}

/// An object's keys, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    k.sort();
    k
}

/// A number the API shows as a JSON number or as text.
fn num(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// The ids of audit entries.
fn ids(list: &[Value]) -> Vec<i64> {
    list.iter().map(|e| e["id"].as_i64().unwrap_or_else(|| panic!("an audit entry's id: {e}"))).collect()
}

/// The actions of audit entries.
fn actions(list: &[Value]) -> Vec<String> {
    list.iter().map(|e| e["action"].as_str().unwrap_or_default().to_owned()).collect()
}

/// One field of each item of a list.
fn column(list: &[Value], key: &str) -> Vec<Value> {
    list.iter().map(|item| item[key].clone()).collect()
}

/// Checks who, where and what of an audit entry (`job_id` only when given).
fn assert_entry(e: &Value, action: &str, caller: &str, job_id: Option<&str>, node: &str) {
    assert_eq!(e["action"], action, "{e}");
    assert_eq!(e["caller"], caller, "{e}");
    assert_eq!(e["peer"], LOOPBACK, "{e}");
    assert_eq!(e["node"], node, "{e}");
    if let Some(id) = job_id {
        assert_eq!(e["job_id"], id, "{e}");
    }
    assert!(e["at"].as_str().is_some_and(|t| t.len() >= 19), "at: {e}");
    assert!(e["id"].is_number(), "id: {e}");
}

/// Runs the real `ruqi` with `--server URL --token TOK` before `args`.
async fn cli(server: &str, token: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(ruqi_bin())
        .args(["--server", server, "--token", token])
        .args(args)
        .env_remove("RUQI_SERVER")
        .env_remove("RUQI_TOKEN")
        .output()
        .await
        .expect("run ruqi")
}

/// Standard output of a run of the CLI that succeeded.
fn stdout_of(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

// ---------------------------------------------------------------------------------------------
// 1. Every change audited, with its caller; nothing for a refusal; filters and pages

/// Each kind of change (add, modify, pause, resume, run, kill, backfill, history clear,
/// rollback, remove) by named and unnamed tokens: its entry names the caller, the peer and the
/// node; a modify's before/after hold exactly the rule and timeout it changed. Refused requests
/// (bad input, no job, read-only token, no or a wrong token) and changes of nothing record
/// nothing. The list filters by job, caller and a since/until window, and pages.
async fn every_change_is_audited_with_its_caller(store: Option<String>) {
    let (s, _work) = server(store, &["shell-bridge"]).await;
    let node = node_name(&s);
    let (alice, bob) = (s.client.with_token(ALICE), s.client.with_token(BOB));
    let (viewer, plain, nobody) = (s.client.with_token(VIEWER), s.client.with_token(PLAIN), s.client.clone());
    let plain_name = unnamed_caller(PLAIN);

    // job_add: every field of the new definition, each null before.
    add(&alice, spec("audited", "cron", QUICK, NEVER, json!({"timeout": 30, "retries": 1}))).await;
    let first = show(&alice, "audited").await;
    let e = newest(&alice).await;
    assert_entry(&e, "job_add", "alice", Some("audited"), &node);
    assert!(e["run_id"].is_null(), "{e}");
    assert_eq!(e["params"]["job_id"], "audited", "{e}");
    assert_eq!(num(&e["params"]["timeout"]), Some(30.0), "{e}");
    let after = &e["after"];
    assert_eq!((&after["job_id"], &after["rule"], &after["cmd"]), (&json!("audited"), &first["rule"], &json!(QUICK)));
    assert_eq!(after["job_trigger"], "cron", "{e}");
    assert_eq!((num(&after["timeout"]), num(&after["retries"])), (Some(30.0), Some(1.0)), "{e}");
    assert!(after.get("paused").is_none(), "a new job is not paused: {e}");
    assert_eq!(keys(&e["before"]), keys(after), "{e}");
    assert!(e["before"].as_object().is_some_and(|b| b.values().all(Value::is_null)), "{e}");

    // job_modify: exactly the rule and the timeout changed (retries kept).
    ok(&bob.post("job_modify", spec("audited", "cron", QUICK, OTHER, json!({"timeout": 60}))).await, "modify");
    let second = show(&alice, "audited").await;
    assert_ne!(first["rule"], second["rule"]);
    assert_eq!(num(&second["retries"]), Some(1.0), "{second}");
    let e = newest(&alice).await;
    assert_entry(&e, "job_modify", "bob", Some("audited"), &node);
    assert_eq!(keys(&e["before"]), ["rule", "timeout"], "{e}");
    assert_eq!(keys(&e["after"]), ["rule", "timeout"], "{e}");
    assert_eq!((&e["before"]["rule"], &e["after"]["rule"]), (&first["rule"], &second["rule"]), "{e}");
    assert_eq!((num(&e["before"]["timeout"]), num(&e["after"]["timeout"])), (Some(30.0), Some(60.0)), "{e}");
    assert_eq!(num(&e["params"]["timeout"]), Some(60.0), "{e}");

    // job_pause and job_resume: only `paused`.
    ok(&alice.post("job_pause", json!({"job_id": "audited"})).await, "pause");
    let e = newest(&alice).await;
    assert_entry(&e, "job_pause", "alice", Some("audited"), &node);
    assert_eq!((&e["before"], &e["after"]), (&json!({"paused": null}), &json!({"paused": true})), "{e}");
    ok(&bob.post("job_resume", json!({"job_id": "audited"})).await, "resume");
    let e = newest(&alice).await;
    assert_entry(&e, "job_resume", "bob", Some("audited"), &node);
    assert_eq!((&e["before"], &e["after"]), (&json!({"paused": true}), &json!({"paused": null})), "{e}");

    // job_run: the entry carries the run_id the answer gave.
    let started = ok(&alice.post("job_run", json!({"job_id": "audited"})).await, "job_run");
    let run = started["run_id"].as_str().expect("job_run's run_id").to_owned();
    let e = newest(&alice).await;
    assert_entry(&e, "job_run", "alice", Some("audited"), &node);
    assert_eq!(e["run_id"], run.as_str(), "{e}");
    assert_eq!(e["node"], started["node"], "{e}");
    assert!(e["before"].is_null() && e["after"].is_null(), "a run changes no definition: {e}");
    assert_eq!(run_ended(&alice, &run, Duration::from_secs(15)).await["outcome"], "success");

    // job_backfill: one fire time of the job's rule (04:30 on January 1st).
    let window = json!({"job_id": "audited", "start": "2024-01-01 04:29:00", "end": "2024-01-01 04:31:00"});
    let backfill = ok(&alice.post("job_backfill", window).await, "job_backfill");
    assert_eq!(num(&backfill["count"]), Some(1.0), "{backfill}");
    let e = newest(&alice).await;
    assert_entry(&e, "job_backfill", "alice", Some("audited"), &node);
    assert_eq!(e["params"]["start"], "2024-01-01 04:29:00", "{e}");
    let backfilled = backfill["list"][0]["run_id"].as_str().expect("the backfilled run's id").to_owned();
    run_ended(&alice, &backfilled, Duration::from_secs(15)).await;

    // job_history_clear.
    ok(&bob.post("job_history_clear", json!({"job_id": "audited", "retention_day": 0})).await, "history clear");
    let e = newest(&alice).await;
    assert_entry(&e, "job_history_clear", "bob", Some("audited"), &node);
    assert_eq!(num(&e["params"]["retention_day"]), Some(0.0), "{e}");

    // run_kill of a running run, by another caller than the one who started it.
    add(&alice, spec("sleeper", "cron", "bash scripts/sleep.sh 30", NEVER, json!({}))).await;
    let started = ok(&alice.post("job_run", json!({"job_id": "sleeper"})).await, "run the sleeper");
    let sleeping = started["run_id"].as_str().expect("the sleeper's run_id").to_owned();
    eventually!(Duration::from_secs(10), "the sleeper running", {
        let a = alice.post("run_show", json!({"run_id": &sleeping})).await;
        (a.stat == "OK" && a.data()["state"] == "running").then_some(())
    });
    let killed = ok(&bob.post("run_kill", json!({"run_id": &sleeping})).await, "run_kill");
    assert_eq!(killed["kill_requested"], true, "{killed}");
    let e = newest(&alice).await;
    assert_entry(&e, "run_kill", "bob", None, &node);
    assert_eq!(e["run_id"], sleeping.as_str(), "{e}");
    assert_eq!(run_ended(&alice, &sleeping, Duration::from_secs(20)).await["outcome"], "killed");

    // Two seconds on, so that the changes below fall in a later second than all above.
    tokio::time::sleep(Duration::from_millis(2100)).await;

    // job_rollback: the rule and timeout of version 1 come back.
    ok(&alice.post("job_rollback", json!({"job_id": "audited", "version": 1})).await, "rollback");
    let e = newest(&alice).await;
    assert_entry(&e, "job_rollback", "alice", Some("audited"), &node);
    assert_eq!(num(&e["params"]["version"]), Some(1.0), "{e}");
    assert_eq!(keys(&e["before"]), ["rule", "timeout"], "{e}");
    assert_eq!((&e["before"]["rule"], &e["after"]["rule"]), (&second["rule"], &first["rule"]), "{e}");
    assert_eq!((num(&e["before"]["timeout"]), num(&e["after"]["timeout"])), (Some(60.0), Some(30.0)), "{e}");
    assert_eq!(show(&alice, "audited").await["rule"], first["rule"]);

    // job_remove by a token without a name: every field before, none after.
    ok(&plain.post("job_remove", json!({"job_id": "audited"})).await, "remove");
    let e = newest(&alice).await;
    assert_entry(&e, "job_remove", &plain_name, Some("audited"), &node);
    assert_eq!((&e["before"]["job_id"], &e["before"]["rule"]), (&json!("audited"), &first["rule"]), "{e}");
    assert_eq!(keys(&e["before"]), keys(&e["after"]), "{e}");
    assert!(e["after"].as_object().is_some_and(|a| a.values().all(Value::is_null)), "{e}");

    // Refused requests, reads and a wakeup record nothing.
    let (total, _) = audit(&alice, json!({})).await;
    assert_eq!(total, 12);
    refused(&alice.post("job_add", spec("bad", "cron", QUICK, "61 * * * * *", json!({}))).await, "a bad rule");
    refused(&alice.post("job_add", spec("sleeper", "cron", QUICK, NEVER, json!({}))).await, "a taken id");
    refused(&alice.post("job_add", spec("odd", "cron", QUICK, NEVER, json!({"colour": "red"}))).await, "odd param");
    refused(&alice.post("job_modify", spec("ghost", "cron", QUICK, NEVER, json!({}))).await, "modify of no job");
    refused(&alice.post("job_resume", json!({"job_id": "audited"})).await, "resume of a removed job");
    refused(&alice.post("run_kill", json!({"run_id": &sleeping})).await, "kill of an ended run");
    refused(&alice.post("job_rollback", json!({"job_id": "audited", "version": 99})).await, "an unknown version");
    refused(&alice.post("job_rollback", json!({"job_id": "ghost", "version": 1})).await, "rollback of no job");
    assert_eq!(viewer.post("job_pause", json!({"job_id": "sleeper"})).await.stat, "ERR_FORBIDDEN");
    assert_eq!(viewer.post("job_remove", json!({"job_id": "sleeper"})).await.stat, "ERR_FORBIDDEN");
    assert_eq!(nobody.post("job_remove", json!({"job_id": "sleeper"})).await.stat, "ERR_UNAUTHORIZED");
    let stranger = s.client.with_token("not-a-token");
    assert_eq!(stranger.post("job_pause", json!({"job_id": "sleeper"})).await.stat, "ERR_UNAUTHORIZED");
    ok(&alice.post("scheduler_wakeup", json!({})).await, "wakeup");
    ok(&viewer.post("job_show", json!({"job_id": "sleeper"})).await, "a read");
    refused(&alice.post("audit_list", json!({"since": "yesterday"})).await, "a since that is no time");
    assert_ne!(show(&alice, "sleeper").await["nexttime"], "None", "the refused pause changed nothing");
    let (total, full) = audit(&viewer, json!({"page_size": 0})).await;
    assert_eq!((total, full.len()), (12, 12), "refusals and reads recorded nothing: {full:?}");

    // The whole trail, newest first.
    let expected: Vec<(&str, &str, Option<&str>)> = vec![
        ("job_remove", plain_name.as_str(), Some("audited")),
        ("job_rollback", "alice", Some("audited")),
        ("run_kill", "bob", None),
        ("job_run", "alice", Some("sleeper")),
        ("job_add", "alice", Some("sleeper")),
        ("job_history_clear", "bob", Some("audited")),
        ("job_backfill", "alice", Some("audited")),
        ("job_run", "alice", Some("audited")),
        ("job_resume", "bob", Some("audited")),
        ("job_pause", "alice", Some("audited")),
        ("job_modify", "bob", Some("audited")),
        ("job_add", "alice", Some("audited")),
    ];
    for (e, (action, caller, job)) in full.iter().zip(&expected) {
        assert_entry(e, action, caller, *job, &node);
    }
    let all_ids = ids(&full);
    assert!(all_ids.windows(2).all(|w| w[0] > w[1]), "newest first: {all_ids:?}");

    // By caller, and by job.
    for caller in ["alice", "bob", plain_name.as_str()] {
        let (total, list) = audit(&alice, json!({"caller": caller, "page_size": 0})).await;
        let want: Vec<&str> = expected.iter().filter(|x| x.1 == caller).map(|x| x.0).collect();
        assert_eq!(total as usize, want.len(), "caller {caller}: {list:?}");
        assert_eq!(actions(&list), want, "caller {caller}");
        assert!(list.iter().all(|e| e["caller"] == caller), "caller {caller}: {list:?}");
    }
    for caller in ["viewer", "nobody"] {
        assert_eq!(audit(&alice, json!({"caller": caller})).await.0, 0, "caller {caller}");
    }
    let (total, list) = audit(&alice, json!({"job_id": "audited", "page_size": 0})).await;
    let want: Vec<&str> = expected.iter().filter(|x| x.2 == Some("audited")).map(|x| x.0).collect();
    assert_eq!((total, want.len()), (9, 9), "job audited: {list:?}");
    assert_eq!(actions(&list), want, "job audited");
    assert!(list.iter().all(|e| e["job_id"] == "audited"), "{list:?}");
    assert_eq!(audit(&alice, json!({"job_id": "ghost"})).await.0, 0);

    // A window: since the second of the rollback, only it and the removal; until then, the rest.
    let boundary = full[1]["at"].as_str().expect("at")[..19].to_owned();
    let (total, list) = audit(&alice, json!({"since": &boundary, "page_size": 0})).await;
    assert_eq!((total, ids(&list)), (2, all_ids[..2].to_vec()), "since {boundary}");
    let (total, list) = audit(&alice, json!({"until": &boundary, "page_size": 0})).await;
    assert_eq!((total, ids(&list)), (10, all_ids[2..].to_vec()), "until {boundary}");
    assert_eq!(audit(&alice, json!({"since": &boundary, "job_id": "audited"})).await.0, 2);
    assert_eq!(audit(&alice, json!({"since": &boundary, "caller": "alice"})).await.0, 1);
    assert_eq!(audit(&alice, json!({"until": &boundary, "caller": "bob"})).await.0, 4);
    assert_eq!(audit(&alice, json!({"since": &boundary, "until": &boundary})).await.0, 0);

    // Pages of 5: the same entries in the same order, the total of all.
    for (page, range) in [(1, 0..5), (2, 5..10), (3, 10..12), (4, 12..12)] {
        let (total, list) = audit(&alice, json!({"page_size": 5, "page_index": page})).await;
        assert_eq!(total, 12, "page {page}");
        assert_eq!(ids(&list), all_ids[range].to_vec(), "page {page}");
    }
    // Also as a query string.
    let q = ok(&alice.get("audit_list", "caller=bob&page_size=2").await, "audit_list GET");
    assert_eq!((q["total"].as_u64(), q["list"].as_array().map(Vec::len)), (Some(4), Some(2)), "{q}");
    assert_eq!(q["list"][0]["action"], "run_kill", "{q}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_audited_with_its_caller_on_sqlite() {
    every_change_is_audited_with_its_caller(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_audited_with_its_caller_on_mariadb() {
    let db = MysqlDb::create("audit_trail").await;
    every_change_is_audited_with_its_caller(Some(db.url.clone())).await;
}

/// A node without tokens records its callers as `anonymous`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tokens_the_caller_is_anonymous() {
    let s = TestServer::start(ServerOptions::default()).await;
    let c = &s.client;
    c.add("cron", "anon", "bash scripts/hello.sh", NEVER).await;
    let e = newest(c).await;
    assert_entry(&e, "job_add", "anonymous", Some("anon"), &node_name(&s));
    assert_eq!(audit(c, json!({"caller": "anonymous"})).await.0, 1);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Versions and rollback

/// Add and two modifies make versions 1-3, newest first and only the newest current (the second
/// modify with `replace=1` drops the timeout, retries and overlap); pause and resume make none.
/// Rolling back to 1 makes version 4 with version 1's definition, and the timeout is back. A
/// bad version, an unknown job and a read-only token are refused without change. After
/// job_remove, a rollback adds the job again (version 5, by an unnamed token).
async fn versions_and_rollback(store: Option<String>) {
    let (s, _work) = server(store, &["shell-bridge"]).await;
    let (alice, bob) = (s.client.with_token(ALICE), s.client.with_token(BOB));
    let (viewer, plain) = (s.client.with_token(VIEWER), s.client.with_token(PLAIN));
    let plain_name = unnamed_caller(PLAIN);
    let id = "versioned";

    add(&alice, spec(id, "cron", QUICK, NEVER, json!({"timeout": 30, "retries": 2, "overlap": "buffer_one"}))).await;
    let shown1 = show(&alice, id).await;
    ok(&bob.post("job_modify", spec(id, "cron", QUICK, OTHER, json!({}))).await, "modify keeping the rest");
    let shown2 = show(&alice, id).await;
    assert_eq!(num(&shown2["timeout"]), Some(30.0), "a modify without replace keeps the timeout: {shown2}");
    ok(&alice.post("job_modify", spec(id, "cron", QUICK, OTHER, json!({"replace": 1}))).await, "modify replacing");
    let shown3 = show(&alice, id).await;
    for gone in ["timeout", "retries", "overlap"] {
        assert!(shown3.get(gone).is_none(), "replace=1 drops {gone}: {shown3}");
    }

    let v = versions(&alice, id).await;
    assert_eq!((&v["job_id"], num(&v["total"])), (&json!(id), Some(3.0)), "{v}");
    let list = v["list"].as_array().expect("versions list").clone();
    assert_eq!(column(&list, "version"), [json!(3), json!(2), json!(1)], "{v}");
    assert_eq!(column(&list, "caller"), [json!("alice"), json!("bob"), json!("alice")], "{v}");
    assert_eq!(column(&list, "current"), [json!(true), json!(false), json!(false)], "{v}");
    assert!(list.iter().all(|item| item["at"].is_string()), "{v}");
    let def = |i: usize| list[i]["definition"].clone();
    let (def3, def2, def1) = (def(0), def(1), def(2));
    assert_eq!((&def1["job_id"], &def1["rule"], &def1["cmd"]), (&json!(id), &shown1["rule"], &json!(QUICK)), "{def1}");
    assert_eq!((num(&def1["timeout"]), num(&def1["retries"])), (Some(30.0), Some(2.0)), "{def1}");
    assert_eq!((&def1["overlap"], &def1["job_trigger"]), (&json!("buffer_one"), &json!("cron")), "{def1}");
    assert_eq!((&def2["rule"], num(&def2["timeout"])), (&shown2["rule"], Some(30.0)), "{def2}");
    assert_eq!(def3["rule"], shown3["rule"], "{def3}");
    for gone in ["timeout", "retries", "overlap", "paused"] {
        assert!(def3.get(gone).is_none(), "version 3 has no {gone}: {def3}");
    }

    // Pause and resume make no version.
    ok(&alice.post("job_pause", json!({"job_id": id})).await, "pause");
    ok(&alice.post("job_resume", json!({"job_id": id})).await, "resume");
    assert_eq!(num(&versions(&alice, id).await["total"]), Some(3.0));

    // Back to version 1: a new version 4, current, with version 1's definition.
    ok(&bob.post("job_rollback", json!({"job_id": id, "version": 1})).await, "rollback to 1");
    let v = versions(&alice, id).await;
    assert_eq!(num(&v["total"]), Some(4.0), "{v}");
    let list = v["list"].as_array().expect("versions list").clone();
    assert_eq!(column(&list, "version"), [json!(4), json!(3), json!(2), json!(1)], "{v}");
    assert_eq!((&list[0]["caller"], &list[0]["current"]), (&json!("bob"), &json!(true)), "{v}");
    assert_eq!(list[0]["definition"], def1, "{v}");
    assert_eq!((&list[1]["current"], &list[2]["current"]), (&json!(false), &json!(false)), "{v}");
    let back = show(&alice, id).await;
    assert_eq!(back["rule"], shown1["rule"], "{back}");
    assert_eq!((num(&back["timeout"]), num(&back["retries"])), (Some(30.0), Some(2.0)), "the timeout is back: {back}");
    assert_eq!(back["overlap"], "buffer_one", "{back}");
    assert_ne!(back["nexttime"], "None", "{back}");
    let e = newest(&alice).await;
    assert_eq!((&e["action"], &e["caller"], &e["job_id"]), (&json!("job_rollback"), &json!("bob"), &json!(id)), "{e}");

    // Refused, and nothing changes.
    refused(&alice.post("job_rollback", json!({"job_id": id, "version": 99})).await, "an unknown version");
    refused(&alice.post("job_rollback", json!({"job_id": id, "version": 0})).await, "version 0");
    refused(&alice.post("job_rollback", json!({"job_id": id, "version": "one"})).await, "a version that is no number");
    refused(&alice.post("job_rollback", json!({"job_id": "never-was", "version": 1})).await, "no such job");
    let denied = viewer.post("job_rollback", json!({"job_id": id, "version": 3})).await;
    assert_eq!(denied.stat, "ERR_FORBIDDEN", "{denied:?}");
    refused(&alice.post("job_versions", json!({"job_id": "never-was"})).await, "versions of no job");
    assert_eq!(num(&versions(&alice, id).await["total"]), Some(4.0));
    assert_eq!(num(&show(&alice, id).await["timeout"]), Some(30.0));

    // Removed: its versions stay, none current; a rollback adds it again.
    ok(&alice.post("job_remove", json!({"job_id": id})).await, "remove");
    refused(&alice.post("job_show", json!({"job_id": id})).await, "show of a removed job");
    let v = versions(&alice, id).await;
    assert_eq!(num(&v["total"]), Some(4.0), "{v}");
    assert!(v["list"].as_array().is_some_and(|l| l.iter().all(|i| i["current"] == false)), "{v}");
    ok(&plain.post("job_rollback", json!({"job_id": id, "version": 3})).await, "rollback of a removed job");
    let again = show(&alice, id).await;
    assert_eq!(again["rule"], shown3["rule"], "{again}");
    assert!(again.get("timeout").is_none(), "version 3 has no timeout: {again}");
    assert_ne!(again["nexttime"], "None", "added back scheduled: {again}");
    let v = versions(&alice, id).await;
    assert_eq!(num(&v["total"]), Some(5.0), "{v}");
    let top = &v["list"][0];
    assert_eq!((&top["version"], &top["caller"]), (&json!(5), &json!(plain_name)), "{v}");
    assert_eq!(top["current"], true, "{v}");
    assert_eq!(top["definition"], def3, "{v}");
    let e = newest(&alice).await;
    assert_eq!((&e["action"], &e["caller"]), (&json!("job_rollback"), &json!(plain_name)), "{e}");
    assert_eq!((&e["before"]["job_id"], &e["after"]["job_id"]), (&Value::Null, &json!(id)), "re-added: {e}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_rollback_on_sqlite() {
    versions_and_rollback(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_rollback_on_mariadb() {
    let db = MysqlDb::create("audit_versions").await;
    versions_and_rollback(Some(db.url.clone())).await;
}

// ---------------------------------------------------------------------------------------------
// 3. Jobs as code: export and apply, 1,000 jobs

/// How many jobs the round trip carries.
const JOBS: usize = 1000;

/// Job `i` of the round trip: cron (January 1st, 03:mm:ss), interval (hand-written hours) or
/// date (2099) by turns, some with a timeout, retries, an overlap policy, an alert target and
/// kinds; every 50th + 1 chains (on_success) to the one before it.
fn bulk_job(i: usize) -> Value {
    let id = format!("job-{i:04}");
    let (trigger, rule) = match i % 3 {
        0 => ("cron", format!("{} {} 3 1 1 *", i % 60, (i / 60) % 60)),
        1 => ("interval", format!("{}h", 1 + i % 24)),
        _ => ("date", format!("2099-{:02}-{:02} 10:{:02}:00", 1 + i % 12, 1 + i % 28, i % 60)),
    };
    let mut extra = serde_json::Map::new();
    if i.is_multiple_of(5) {
        extra.insert("timeout".into(), json!(30 + i));
    }
    if i.is_multiple_of(7) {
        extra.insert("retries".into(), json!(1 + i % 3));
    }
    if i.is_multiple_of(11) {
        let overlap = ["buffer_one", "allow", "buffer_all", "cancel_other"][(i / 11) % 4];
        extra.insert("overlap".into(), json!(overlap));
    }
    if i.is_multiple_of(13) {
        extra.insert("alert".into(), json!([HOOK]));
    }
    if i.is_multiple_of(26) {
        extra.insert("alert_on".into(), json!(["failure", "killed"]));
    }
    if i % 50 == 1 {
        extra.insert("on_success".into(), json!([format!("job-{:04}", i - 1)]));
    }
    let mut body = spec(&id, trigger, QUICK, &rule, Value::Object(extra));
    body["job_name"] = json!("bulk");
    body
}

/// Adds `bodies` a few at a time, asserting each was added.
async fn add_all(c: &Client, bodies: Vec<Value>) {
    let answers: Vec<(String, Answer)> = futures_util::stream::iter(bodies)
        .map(|body| {
            let c = c.clone();
            async move {
                let id = body["job_id"].as_str().unwrap_or_default().to_owned();
                (id, c.post("job_add", body).await)
            }
        })
        .buffer_unordered(6)
        .collect()
        .await;
    for (id, a) in &answers {
        ok(a, &format!("add {id}"));
    }
}

/// A jobs file as `ruqi export` writes it, cut into its `[[job]]` tables (lines), for editing.
#[derive(Clone)]
struct JobsFile {
    head: Vec<String>,
    blocks: Vec<Vec<String>>,
}

impl JobsFile {
    fn parse(text: &str) -> Self {
        let mut file = Self { head: Vec::new(), blocks: Vec::new() };
        for line in text.lines() {
            if line.trim() == "[[job]]" {
                file.blocks.push(vec![line.to_owned()]);
            } else if let Some(block) = file.blocks.last_mut() {
                block.push(line.to_owned());
            } else {
                file.head.push(line.to_owned());
            }
        }
        file
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for line in self.head.iter().chain(self.blocks.iter().flatten()) {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// The value text of `key = …` in a table.
    fn value(block: &[String], key: &str) -> Option<String> {
        block.iter().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_owned())
        })
    }

    fn id(block: &[String]) -> Option<String> {
        Self::value(block, "job_id").map(|v| v.trim_matches(|c| c == '"' || c == '\'').to_owned())
    }

    /// Where job `id`'s table is.
    fn index(&self, id: &str) -> usize {
        self.blocks
            .iter()
            .position(|b| Self::id(b).as_deref() == Some(id))
            .unwrap_or_else(|| panic!("job {id} is not in the file"))
    }

    fn get(&self, id: &str, key: &str) -> Option<String> {
        Self::value(&self.blocks[self.index(id)], key)
    }

    fn has_line(&self, id: &str, line: &str) -> bool {
        self.blocks[self.index(id)].iter().any(|l| l.trim() == line)
    }

    /// Writes `key = value` (value as TOML text) over the line of `key` in job `id`'s table.
    fn set(&mut self, id: &str, key: &str, value: &str) {
        let i = self.index(id);
        let line = self.blocks[i]
            .iter_mut()
            .find(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == key))
            .unwrap_or_else(|| panic!("job {id} has no {key}"));
        *line = format!("{key} = {value}");
    }

    /// Drops the line of `key` from job `id`'s table.
    fn unset(&mut self, id: &str, key: &str) {
        let i = self.index(id);
        let before = self.blocks[i].len();
        self.blocks[i].retain(|l| l.split_once('=').is_none_or(|(k, _)| k.trim() != key));
        assert_eq!(self.blocks[i].len(), before - 1, "job {id} had one {key}");
    }

    fn remove(&mut self, id: &str) {
        let i = self.index(id);
        self.blocks.remove(i);
    }

    fn push(&mut self, table: &str) {
        self.blocks.push(table.lines().map(str::to_owned).collect());
    }
}

/// 1,000 jobs (cron, interval, date; timeouts, retries, overlap, alerts, chains, one paused)
/// exported by `ruqi export` apply as no change. The file edited (a rule written by hand as
/// `30m`, a timeout removed, two jobs added, the first chaining to the second, one deleted):
/// a dry run without `--prune` plans the changes and keeps the deleted one, changing nothing;
/// `apply --prune` prints that plan with the removal and carries it out, after which the
/// server's jobs are the file's (a second dry run: all unchanged). Without `--prune` a job not
/// in the file stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jobs_export_and_apply_round_trip() {
    let (s, _work) = server(None, &["shell-bridge", "http-post"]).await;
    let (alice, bob) = (s.client.with_token(ALICE), s.client.with_token(BOB));
    let url = server_url(&s);

    // The jobs: chains once their targets exist; one paused.
    let (plain_jobs, chains): (Vec<usize>, Vec<usize>) = (0..JOBS).partition(|i| i % 50 != 1);
    add_all(&alice, plain_jobs.into_iter().map(bulk_job).collect()).await;
    add_all(&alice, chains.into_iter().map(bulk_job).collect()).await;
    ok(&alice.post("job_pause", json!({"job_id": "job-0777"})).await, "pause job-0777");
    let defs = exported(&alice).await;
    assert_eq!(defs.len(), JOBS);
    assert_eq!(defs["job-0777"]["paused"], true, "{}", defs["job-0777"]);
    assert_eq!(defs["job-0004"]["rule"], "18000s", "{}", defs["job-0004"]);
    assert_eq!(defs["job-0051"]["on_success"], json!(["job-0050"]), "{}", defs["job-0051"]);

    // Exported, the file applies as no change.
    let exported_text = stdout_of(cli(&url, ALICE, &["export"]).await, "export");
    let file = JobsFile::parse(&exported_text);
    assert_eq!(file.blocks.len(), JOBS, "one [[job]] table a job");
    assert!(file.has_line("job-0777", "paused = true"), "{:?}", file.blocks[file.index("job-0777")]);
    assert_eq!(file.get("job-0004", "rule").as_deref(), Some("\"18000s\""));
    assert_eq!(file.get("job-0010", "timeout").as_deref(), Some("40"));
    assert!(file.get("job-0001", "on_success").is_some_and(|v| v.contains("\"job-0000\"")), "chains are exported");
    assert!(file.get("job-0013", "alert").is_some_and(|v| v.contains(HOOK)), "alerts are exported");
    let path = s.dir.path().join("jobs.toml");
    let path_arg = path.to_str().expect("a UTF-8 path").to_owned();
    std::fs::write(&path, &exported_text).expect("write the jobs file");
    let plan = stdout_of(cli(&url, ALICE, &["apply", "-f", path_arg.as_str(), "--dry-run"]).await, "apply --dry-run");
    assert_eq!(plan, format!("0 to add, 0 to change, 0 to remove, {JOBS} unchanged\n"));

    // The file edited.
    let mut edited = file.clone();
    edited.set("job-0004", "rule", "\"30m\"");
    edited.unset("job-0010", "timeout");
    edited.remove("job-0998");
    edited.push(
        "[[job]]\ncmd = \"bash scripts/quick.sh\"\njob_id = \"new-chained\"\njob_name = \"by hand\"\n\
         job_trigger = \"cron\"\non_success = [\"new-target\"]\nrule = \"0 15 3 1 1 *\"\ntimeout = 15\n",
    );
    edited.push(
        "[[job]]\ncmd = \"bash scripts/quick.sh\"\njob_id = \"new-target\"\njob_name = \"by hand\"\n\
         job_trigger = \"interval\"\nrule = \"2h\"\n",
    );
    std::fs::write(&path, edited.render()).expect("write the edited jobs file");
    let rule_change = ("job-0004", "    rule: \"18000s\" -> \"1800s\"\n");
    let timeout_change = ("job-0010", "    timeout: 40 -> (none)\n");
    let (a, b) = if edited.index("job-0004") < edited.index("job-0010") {
        (rule_change, timeout_change)
    } else {
        (timeout_change, rule_change)
    };
    let changes = format!("~ {}\n{}~ {}\n{}", a.0, a.1, b.0, b.1);
    let added = "+ new-chained (added)\n+ new-target (added)\n";

    // A dry run without --prune: the plan, the deleted job kept, nothing done.
    let plan = stdout_of(cli(&url, ALICE, &["apply", "-f", path_arg.as_str(), "--dry-run"]).await, "edited --dry-run");
    assert_eq!(
        plan,
        format!(
            "{added}{changes}  job-0998 (not in the file; kept: --prune removes it)\n\
             2 to add, 2 to change, 0 to remove, 997 unchanged\n"
        )
    );
    assert_eq!(show(&alice, "job-0004").await["rule"], "18000s");
    refused(&alice.post("job_show", json!({"job_id": "new-target"})).await, "a job a dry run would add");
    assert_eq!(exported(&alice).await.len(), JOBS);

    // Applied with --prune.
    let out = stdout_of(cli(&url, ALICE, &["apply", "-f", path_arg.as_str(), "--prune"]).await, "apply --prune");
    assert_eq!(
        out,
        format!("{added}{changes}- job-0998 (removed)\n2 to add, 2 to change, 1 to remove, 997 unchanged\napplied\n")
    );
    let defs = exported(&alice).await;
    assert_eq!(defs.len(), JOBS + 1);
    assert!(!defs.contains_key("job-0998"), "job-0998 pruned");
    assert_eq!(defs["job-0004"]["rule"], "1800s", "{}", defs["job-0004"]);
    assert!(defs["job-0010"].get("timeout").is_none(), "{}", defs["job-0010"]);
    assert_eq!(defs["job-0010"]["rule"], "39600s", "the rest of job-0010 kept: {}", defs["job-0010"]);
    assert_eq!(defs["new-target"]["rule"], "7200s", "{}", defs["new-target"]);
    assert_eq!(defs["new-chained"]["on_success"], json!(["new-target"]), "{}", defs["new-chained"]);
    assert_eq!(num(&defs["new-chained"]["timeout"]), Some(15.0), "{}", defs["new-chained"]);
    assert_eq!(defs["job-0777"]["paused"], true, "still paused: {}", defs["job-0777"]);
    assert_eq!(defs["job-0001"]["on_success"], json!(["job-0000"]), "{}", defs["job-0001"]);
    assert_eq!(num(&defs["job-0000"]["timeout"]), Some(30.0), "{}", defs["job-0000"]);
    let e = audit(&alice, json!({"job_id": "job-0998", "page_size": 1})).await.1;
    assert_eq!((&e[0]["action"], &e[0]["caller"]), (&json!("job_remove"), &json!("alice")), "{e:?}");
    let plan = stdout_of(cli(&url, ALICE, &["apply", "-f", path_arg.as_str(), "--dry-run"]).await, "second --dry-run");
    assert_eq!(plan, format!("0 to add, 0 to change, 0 to remove, {} unchanged\n", JOBS + 1));

    // Without --prune, a job not in the file stays.
    add(&bob, spec("extra", "interval", QUICK, "3h", json!({}))).await;
    let out = stdout_of(cli(&url, ALICE, &["apply", "-f", path_arg.as_str()]).await, "apply");
    assert_eq!(
        out,
        format!(
            "  extra (not in the file; kept: --prune removes it)\n\
             0 to add, 0 to change, 0 to remove, {} unchanged\napplied\n",
            JOBS + 1
        )
    );
    show(&alice, "extra").await;
    assert_eq!(exported(&alice).await.len(), JOBS + 2);
    s.stop().await;
}

/// `apply` adds a file's new jobs all or nothing: one the server refuses (a cmd no plugin
/// accepts) among them, and none is added; the error names it. Mended, the file applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_adds_a_files_new_jobs_all_or_nothing() {
    let (s, _work) = server(None, &["shell-bridge"]).await;
    let alice = s.client.with_token(ALICE);
    let url = server_url(&s);
    let job = |id: &str, cmd: &str| {
        format!(
            "[[job]]\ncmd = \"{cmd}\"\njob_id = \"{id}\"\njob_name = \"n\"\njob_trigger = \"interval\"\nrule = \"2h\"\n"
        )
    };
    let path = s.dir.path().join("new.toml");
    let path_arg = path.to_str().expect("a UTF-8 path").to_owned();
    let good: String = (0..5).map(|i| job(&format!("new-{i}"), "bash scripts/quick.sh")).collect();
    std::fs::write(&path, format!("{good}{}", job("new-bad", "bash scripts/missing.sh"))).unwrap();
    let out = cli(&url, ALICE, &["apply", "-f", path_arg.as_str()]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a refused job fails the apply: {err}");
    assert!(err.contains("1 of 6 jobs refused, none added: job 5 (new-bad)"), "{err}");
    assert!(exported(&alice).await.is_empty(), "none of the file's jobs was added");

    std::fs::write(&path, format!("{good}{}", job("new-bad", "bash scripts/quick.sh"))).unwrap();
    let out = stdout_of(cli(&url, ALICE, &["apply", "-f", path_arg.as_str()]).await, "apply mended");
    assert!(out.ends_with("6 to add, 0 to change, 0 to remove, 0 unchanged\napplied\n"), "{out}");
    assert_eq!(exported(&alice).await.len(), 6);
    let e = audit(&alice, json!({"job_id": "new-3", "page_size": 1})).await.1;
    assert_eq!(e[0]["caller"], "alice", "{e:?}");
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4. The CLI: `ruqi audit --caller`, `ruqi job versions|rollback`

/// A table the CLI printed: its columns, its rows' cells, its total.
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    total: u64,
}

impl Table {
    /// Cuts each line at the columns' starts in the header (cells may hold blanks).
    fn parse(text: &str) -> Self {
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() >= 3, "a table: {text}");
        let header = lines[0];
        let columns: Vec<String> = header.split_whitespace().map(str::to_owned).collect();
        let mut starts = Vec::new();
        let mut from = 0;
        for c in &columns {
            let at = from + header[from..].find(c.as_str()).expect("a column in the header");
            starts.push(at);
            from = at + c.len();
        }
        assert!(lines[1].starts_with('-'), "an underline: {text}");
        let last = lines[lines.len() - 1];
        let total = last.strip_prefix("total: ").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{text}"));
        let rows = lines[2..lines.len() - 1]
            .iter()
            .map(|line| {
                (0..starts.len())
                    .map(|i| {
                        let end = starts.get(i + 1).copied().unwrap_or(line.len()).min(line.len());
                        line.get(starts[i].min(end)..end).unwrap_or_default().trim().to_owned()
                    })
                    .collect()
            })
            .collect();
        Self { columns, rows, total }
    }

    /// The cells of column `name`.
    fn cells(&self, name: &str) -> Vec<String> {
        let i = self.columns.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name}"));
        self.rows.iter().map(|r| r[i].clone()).collect()
    }
}

/// `ruqi audit --caller NAME` lists only that caller's changes (a read-only token may read
/// them), with the peer and what changed; `ruqi job versions` and `ruqi job rollback` show and
/// restore a version, and a read-only token's rollback fails with the server's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_one_callers_changes() {
    let (s, _work) = server(None, &["shell-bridge"]).await;
    let (alice, bob) = (s.client.with_token(ALICE), s.client.with_token(BOB));
    let url = server_url(&s);
    add(&alice, spec("cli-a", "cron", QUICK, NEVER, json!({}))).await;
    add(&alice, spec("cli-b", "cron", QUICK, NEVER, json!({}))).await;
    add(&bob, spec("cli-c", "cron", QUICK, NEVER, json!({}))).await;
    ok(&bob.post("job_modify", spec("cli-a", "cron", QUICK, OTHER, json!({}))).await, "modify cli-a");

    let audit_of = |caller: &'static str| {
        let url = url.clone();
        async move {
            let args = ["audit", "--caller", caller];
            Table::parse(&stdout_of(cli(&url, VIEWER, &args).await, &format!("ruqi audit --caller {caller}")))
        }
    };
    let t = audit_of("alice").await;
    assert_eq!(t.columns, ["at", "caller", "peer", "action", "job_id", "run_id", "changed"]);
    assert_eq!((t.total, t.rows.len()), (2, 2));
    assert_eq!(t.cells("caller"), ["alice", "alice"]);
    assert_eq!(t.cells("peer"), [LOOPBACK, LOOPBACK]);
    assert_eq!(t.cells("action"), ["job_add", "job_add"]);
    assert_eq!(t.cells("job_id"), ["cli-b", "cli-a"]);

    let t = audit_of("bob").await;
    assert_eq!((t.total, t.rows.len()), (2, 2));
    assert_eq!(t.cells("caller"), ["bob", "bob"]);
    assert_eq!(t.cells("action"), ["job_modify", "job_add"]);
    assert_eq!(t.cells("job_id"), ["cli-a", "cli-c"]);
    let changed = t.cells("changed")[0].clone();
    assert!(changed.starts_with("rule: ") && !changed.contains("timeout"), "the modify changed the rule: {changed}");

    let t = audit_of("nobody").await;
    assert_eq!((t.total, t.rows.len()), (0, 0));
    let all = Table::parse(&stdout_of(cli(&url, VIEWER, &["audit"]).await, "ruqi audit"));
    assert_eq!(all.cells("caller"), ["bob", "bob", "alice", "alice"], "without --caller: everyone's");
    let args = ["audit", "--id", "cli-a", "--caller", "bob"];
    let one = Table::parse(&stdout_of(cli(&url, VIEWER, &args).await, "ruqi audit --id --caller"));
    assert_eq!((one.cells("action"), one.cells("job_id")), (vec!["job_modify".to_owned()], vec!["cli-a".to_owned()]));

    // Versions and rollback through the CLI.
    let t = Table::parse(&stdout_of(cli(&url, VIEWER, &["job", "versions", "cli-a"]).await, "job versions"));
    assert_eq!(t.cells("version"), ["2", "1"]);
    assert_eq!(t.cells("caller"), ["bob", "alice"]);
    let out = cli(&url, VIEWER, &["job", "rollback", "cli-a", "1"]).await;
    assert!(!out.status.success(), "a read-only token cannot roll back: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERR_FORBIDDEN"), "{out:?}");
    let out = stdout_of(cli(&url, ALICE, &["job", "rollback", "cli-a", "1"]).await, "job rollback");
    assert_eq!(out, "cli-a is at version 1's definition again\n");
    assert_eq!(show(&alice, "cli-a").await["rule"], show(&alice, "cli-b").await["rule"], "version 1's rule is back");
    let t = Table::parse(&stdout_of(cli(&url, VIEWER, &["job", "versions", "cli-a"]).await, "job versions"));
    assert_eq!(t.cells("version"), ["3", "2", "1"]);
    assert_eq!(t.cells("caller")[0], "alice");
    let t = audit_of("alice").await;
    assert_eq!((t.total, t.cells("action")[0].as_str()), (3, "job_rollback"));
    s.stop().await;
}
