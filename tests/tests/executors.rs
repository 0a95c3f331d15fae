//! The http-post and baichuan executors against real services on 127.0.0.1: a local HTTP
//! server (axum) and the machine's Redis. Each test uses its own topic, message ids and
//! server, so tests run in parallel.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use redis::AsyncCommands;
use ruqi_tests::{ServerOptions, TestServer};
use serde_json::{Value, json};

/// What the local HTTP server received.
#[derive(Default, Clone)]
struct Seen {
    requests: Arc<Mutex<Vec<(String, String, String)>>>,
}

/// A local HTTP server; returns its base URL and what it saw.
async fn http_server() -> (String, Seen) {
    let seen = Seen::default();
    let record = |seen: Seen, path: &'static str| {
        move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                seen.requests.lock().unwrap().push((path.to_owned(), ct, body.clone()));
                body
            }
        }
    };
    let app = axum::Router::new()
        .route(
            "/ok",
            post({
                let seen = seen.clone();
                move |headers: HeaderMap, body: String| {
                    let seen = seen.clone();
                    async move {
                        let ct =
                            headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                        seen.requests.lock().unwrap().push(("/ok".into(), ct, body.clone()));
                        let got: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                        axum::Json(json!({"stat": "OK", "got": got}))
                    }
                }
            })
            .get(|| async { axum::Json(json!({"stat": "OK", "method": "GET"})) }),
        )
        .route("/stat-err", post(|| async { axum::Json(json!({"stat": "ERR_BAD_PARAMS"})) }))
        .route("/not-json", post(|| async { "hello" }))
        .route("/boom", post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "{\"stat\": \"ERR\"}").into_response() }))
        .route("/see-other", post(|| async { Redirect::to("/ok") }))
        .route("/temporary", post(|| async { Redirect::temporary("/ok") }))
        .route("/echo", post(record(seen.clone(), "/echo")))
        .route("/slow", post(|| async { tokio::time::sleep(Duration::from_secs(30)).await }))
        .route("/health", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

async fn server_with(plugin: &'static str, grants: Option<&str>) -> TestServer {
    TestServer::start(ServerOptions { plugins: vec![(plugin, grants.map(str::to_owned))], ..Default::default() }).await
}

async fn run_once(s: &TestServer, id: &str, cmd: &str) -> Value {
    s.client.add("date", id, cmd, "now").await;
    let rows = s.client.wait_history(id, 1, Duration::from_secs(30)).await;
    assert_eq!(rows.len(), 1, "{id}: one history row");
    rows[0].clone()
}

#[tokio::test]
async fn http_post_sends_json_and_judges_the_answer_like_ruqi() {
    let (base, seen) = http_server().await;
    let s = server_with("http-post", None).await;
    let cases = [
        // (id, cmd, success, output starts with)
        (
            "ok",
            format!(r#"{base}/ok#{{"str_info":"hi"}}"#),
            true,
            r#"{"stat":"OK","got":{"str_info":"hi"}}"#.to_owned(),
        ),
        ("empty", format!("{base}/ok"), true, r#"{"stat":"OK","got":{}}"#.to_owned()),
        ("stat", format!("{base}/stat-err"), true, r#"{"stat":"ERR_BAD_PARAMS"}"#.to_owned()),
        ("see-other", format!("{base}/see-other"), true, r#"{"stat":"OK","method":"GET"}"#.to_owned()),
        ("temporary", format!(r#"{base}/temporary#{{"a":1}}"#), true, r#"{"stat":"OK","got":{"a":1}}"#.to_owned()),
        ("notjson", format!("{base}/not-json"), false, "HTTP 200: the answer is not JSON: hello".to_owned()),
        ("boom", format!("{base}/boom"), false, "HTTP 500: {\"stat\": \"ERR\"}".to_owned()),
        (
            "refused",
            "http://127.0.0.1:1/x".to_owned(),
            false,
            "POST http://127.0.0.1:1/x failed: connection refused".to_owned(),
        ),
    ];
    for (id, cmd, success, want) in &cases {
        let row = run_once(&s, id, cmd).await;
        assert_eq!(row["cmd_is_success"], *success, "{id}: {row}");
        let out = row["cmd_output"].as_str().unwrap();
        assert!(out.starts_with(want.as_str()), "{id}: {out}");
        assert_eq!(row["cmd"], cmd.as_str());
    }
    let requests = seen.requests.lock().unwrap().clone();
    let first = requests.iter().find(|(p, _, b)| p == "/ok" && b.contains("str_info")).expect("the POST arrived");
    assert_eq!(first.1, "application/json");
    s.stop().await;
}

#[tokio::test]
async fn http_post_refuses_bad_cmds_at_add_time() {
    let s = server_with("http-post", None).await;
    let cases = [
        ("http://h/p#[1]", "the part after # must be a JSON object"),
        ("http://h/p#{bad", "the part after # must be a JSON object"),
        ("http://h/p#", "the part after # must be a JSON object"),
        ("http://", "invalid url"),
    ];
    for (cmd, want) in cases {
        let a = s
            .client
            .post(
                "job_add",
                json!({"job_trigger": "date", "job_id": "bad", "job_name": "t", "cmd": cmd, "rule": "now"}),
            )
            .await;
        assert_eq!(a.stat, "ERR", "{cmd}");
        assert!(a.reason.as_deref().unwrap_or_default().contains(want), "{cmd}: {:?}", a.reason);
    }
    assert_eq!(s.client.get("job_list", "").await.data()["total"], 0);
    s.stop().await;
}

#[tokio::test]
async fn http_post_reaches_only_granted_origins() {
    let (base, seen) = http_server().await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    let denied = |row: &Value| {
        assert_eq!(row["cmd_is_success"], false, "{row}");
        let out = row["cmd_output"].as_str().unwrap();
        assert!(out.contains("request denied: host not granted to this plugin"), "{out}");
    };
    // another host; the right host on its default port only; the right host on another port
    for (n, grant) in
        ["example.org", "127.0.0.1", &format!("127.0.0.1:{}", port.parse::<u16>().unwrap() + 1)].into_iter().enumerate()
    {
        let s = server_with("http-post", Some(&format!("hosts = [\"{grant}\"]\n"))).await;
        denied(&run_once(&s, &format!("denied{n}"), &format!("{base}/echo#{{}}")).await);
        s.stop().await;
    }
    assert!(seen.requests.lock().unwrap().is_empty(), "nothing reached the server");

    for (n, grant) in [format!("127.0.0.1:{port}"), "127.0.0.1:*".to_owned(), "*".to_owned()].iter().enumerate() {
        let s = server_with("http-post", Some(&format!("hosts = [\"{grant}\"]\n"))).await;
        let row = run_once(&s, &format!("granted{n}"), &format!("{base}/echo#{{\"x\":2}}")).await;
        assert_eq!(row["cmd_is_success"], true, "{grant}: {row}");
        s.stop().await;
    }
    assert_eq!(seen.requests.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn every_redirect_hop_is_checked_against_the_grant() {
    // A granted origin that redirects to one that is not: the second hop is refused.
    let (target, seen) = http_server().await;
    let app = axum::Router::new().route(
        "/away",
        post({
            let target = target.clone();
            move || async move { Redirect::temporary(&format!("{target}/echo")) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let s = server_with("http-post", Some(&format!("hosts = [\"127.0.0.1:{}\"]\n", addr.port()))).await;
    let row = run_once(&s, "hop", &format!("http://{addr}/away#{{\"x\":1}}")).await;
    assert_eq!(row["cmd_is_success"], false, "{row}");
    assert!(row["cmd_output"].as_str().unwrap().contains("request denied"), "{row}");
    assert!(seen.requests.lock().unwrap().is_empty(), "the redirect target was not reached");
    s.stop().await;
}

#[tokio::test]
async fn http_post_sends_content_length_to_a_plain_python_server() {
    let (mut py, port) = ruqi_tests::python_receiver().await;
    let s = server_with("http-post", None).await;
    let body = r#"{"str_info": "你好", "n": [1, 2, {"deep": true}]}"#;
    let row = run_once(&s, "py", &format!("http://127.0.0.1:{port}/hook#{body}")).await;
    assert_eq!(row["cmd_is_success"], true, "{row}");
    let answer: Value = serde_json::from_str(row["cmd_output"].as_str().unwrap()).unwrap();
    let sent: Value = serde_json::from_str(body).unwrap();
    assert_eq!(answer["got"], sent, "the receiver read the whole body: {answer}");
    assert_eq!(answer["length"], json!(body.len().to_string()));
    assert_eq!(answer["chunked"], Value::Null);
    // The run's id goes with the request, for the receiver to drop a replay by.
    assert_eq!(answer["key"], row["run_id"], "Idempotency-Key is the run id: {answer} {row}");
    assert_eq!(row["run_id"].as_str().map(str::len), Some(32));
    s.stop().await;
    let _ = py.kill().await;
}

#[tokio::test]
async fn a_run_longer_than_the_plugin_time_limit_fails_and_the_host_goes_on() {
    let (base, _) = http_server().await;
    let s = server_with("http-post", Some("hosts = [\"*\"]\ntimeout_secs = 1\n")).await;
    let row = run_once(&s, "slow", &format!("{base}/slow")).await;
    assert_eq!(row["cmd_is_success"], false);
    assert_eq!(row["cmd_output"], "plugin exceeded its time limit of 1s");
    let row = run_once(&s, "after", &format!("{base}/ok")).await;
    assert_eq!(row["cmd_is_success"], true);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// baichuan

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open("redis://127.0.0.1:6379/0").unwrap().get_multiplexed_async_connection().await.expect("redis")
}

fn unique(tag: &str) -> String {
    format!("ruqi-test-{tag}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn baichuan_publishes_a_message_a_worker_can_read() {
    let s = server_with("baichuan", None).await;
    let topic = format!("/{}/hello", unique("topic"));
    let msg_id = unique("msg");
    let row = run_once(&s, "mq", &format!("{topic}#{{\"str_info\":\"mq\"}}#{msg_id}")).await;
    assert_eq!(row["cmd_is_success"], true, "{row}");
    assert_eq!(row["cmd_output"], msg_id.as_str());

    let mut r = redis().await;
    let queue = format!("mq:queue:{{{topic}}}");
    let is_member: bool = r.sismember("mq:queues", &queue).await.unwrap();
    assert!(is_member, "queue registered in mq:queues");
    let popped: Option<String> = r.lpop(&queue, None).await.unwrap();
    assert_eq!(popped.as_deref(), Some(msg_id.as_str()));
    let msg: std::collections::HashMap<String, String> = r.hgetall(format!("mq:msg:{msg_id}")).await.unwrap();
    assert_eq!(msg["data"], r#"{"str_info":"mq"}"#);
    assert_eq!(msg["origin"], topic);
    assert_eq!(msg["status"], "queued");
    assert_eq!(msg["timeout"], "180");
    assert_eq!(msg["ip"], "127.0.0.1");
    // The run's id is in the message, as read by a client that is not ours (redis-cli).
    let cli = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "HGET", &format!("mq:msg:{msg_id}"), "run_id"])
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&cli.stdout).trim(), row["run_id"].as_str().unwrap(), "{row}");
    let re = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$").unwrap();
    for field in ["created_at", "enqueued_at"] {
        let v = &msg[field];
        assert!(re.is_match(v), "{field} = {v}");
    }
    let _: () = r.del(format!("mq:msg:{msg_id}")).await.unwrap();
    let _: () = r.srem("mq:queues", &queue).await.unwrap();

    // no data, no id: `{}` and a new uuid4
    let row = run_once(&s, "mq2", &topic).await;
    let id = row["cmd_output"].as_str().unwrap().to_owned();
    assert!(
        regex::Regex::new("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
            .unwrap()
            .is_match(&id)
    );
    let data: String = r.hget(format!("mq:msg:{id}"), "data").await.unwrap();
    assert_eq!(data, "{}");
    let popped: Option<String> = r.lpop(&queue, None).await.unwrap();
    assert_eq!(popped.as_deref(), Some(id.as_str()));
    let _: () = r.del(format!("mq:msg:{id}")).await.unwrap();
    let _: () = r.srem("mq:queues", &queue).await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn baichuan_outage_is_a_failed_run_with_a_history_row() {
    let grants = "sockets = [\"127.0.0.1:1\"]\n[config]\nredis_url = \"redis://127.0.0.1:1/0\"\n";
    let s = server_with("baichuan", Some(grants)).await;
    let row = run_once(&s, "down", "/some/topic#{}#m1").await;
    assert_eq!(row["cmd_is_success"], false);
    let out = row["cmd_output"].as_str().unwrap();
    assert!(out.starts_with("publish of m1 to /some/topic failed: redis at 127.0.0.1:1:"), "{out}");
    s.stop().await;
}

#[tokio::test]
async fn baichuan_cannot_reach_an_address_not_granted() {
    // the config points at the real Redis, but no socket is granted
    let grants = "[config]\nredis_url = \"redis://127.0.0.1:6379/0\"\n";
    let s = server_with("baichuan", Some(grants)).await;
    let msg_id = unique("denied");
    let row = run_once(&s, "denied", &format!("/t#{{}}#{msg_id}")).await;
    assert_eq!(row["cmd_is_success"], false);
    assert!(row["cmd_output"].as_str().unwrap().contains("redis at 127.0.0.1:6379"), "{row}");
    let mut r = redis().await;
    let exists: bool = r.exists(format!("mq:msg:{msg_id}")).await.unwrap();
    assert!(!exists, "nothing was written");
    s.stop().await;
}

/// A Redis server of the test's own, on a free port, so that `CLIENT LIST` shows only the
/// connections this test made; killed when dropped.
struct PrivateRedis {
    child: std::process::Child,
    port: u16,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server");
        let redis = Self { child, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while redis.cli(&["PING"]) != "PONG" {
            assert!(std::time::Instant::now() < deadline, "the private redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        redis
    }

    /// `redis-cli ARGS…` against it, trimmed (empty when it cannot connect).
    fn cli(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// baichuan's grants file for it: its address, and its url as `redis_url`.
    fn grant(&self) -> String {
        format!("sockets = [\"127.0.0.1:{0}\"]\n[config]\nredis_url = \"redis://127.0.0.1:{0}/0\"\n", self.port)
    }

    /// Its clients but the `redis-cli` asking, one `CLIENT LIST` line each.
    fn clients(&self) -> Vec<String> {
        self.cli(&["CLIENT", "LIST"]).lines().filter(|l| !l.contains("cmd=client|list")).map(str::to_owned).collect()
    }

    /// Waits until it has `n` clients; their lines.
    async fn until_clients(&self, n: usize, what: &str) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let clients = self.clients();
            if clients.len() == n {
                return clients;
            }
            assert!(tokio::time::Instant::now() < deadline, "{what}: {clients:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baichuan_shares_one_kept_connection_until_its_grants_change() {
    let redis = PrivateRedis::start();
    let grant = redis.grant();
    let s = server_with("baichuan", Some(&grant)).await;
    let c = &s.client;
    // Twenty jobs run at once, then one of them twice more: every message arrives whole, over
    // one connection the host opened and named for the plugin.
    for n in 0..20 {
        c.add("cron", &format!("mq{n}"), &format!("/kept/topic#{{\"n\":{n}}}#msg{n}"), "0 0 3 1 1 *").await;
    }
    for n in 0..20 {
        let a = c.post("job_run", json!({"job_id": format!("mq{n}")})).await;
        assert_eq!(a.stat, "OK", "{a:?}");
    }
    for n in 0..20 {
        let rows = c.wait_history(&format!("mq{n}"), 1, Duration::from_secs(30)).await;
        assert_eq!(rows[0]["cmd_is_success"], true, "{}", rows[0]);
    }
    for run in 2..=3 {
        assert_eq!(c.post("job_run", json!({"job_id": "mq0"})).await.stat, "OK");
        let rows = c.wait_history("mq0", run, Duration::from_secs(30)).await;
        assert_eq!(rows[0]["cmd_is_success"], true, "{}", rows[0]);
    }
    assert_eq!(redis.cli(&["LLEN", "mq:queue:{/kept/topic}"]), "22");
    for n in 0..20 {
        let fields = redis.cli(&["HMGET", &format!("mq:msg:msg{n}"), "data", "status", "ip"]);
        assert_eq!(fields, format!("{{\"n\":{n}}}\nqueued\n127.0.0.1"), "message {n}");
    }
    let clients = redis.clients();
    assert_eq!(clients.len(), 1, "twenty-two runs, one kept connection: {clients:?}");
    assert!(clients[0].contains(" name=ruqi:baichuan "), "{clients:?}");

    // A grant change reloads the plugin: the connection its old grants allowed is closed, and
    // the reloaded plugin opens its own at its first run.
    let grants_file = s.plugins_dir().join("baichuan.toml");
    std::fs::write(&grants_file, format!("timeout_secs = 20\n{grant}")).unwrap();
    redis.until_clients(0, "the old connection was not closed after the grant change").await;
    assert_eq!(c.post("job_run", json!({"job_id": "mq1"})).await.stat, "OK");
    let rows = c.wait_history("mq1", 2, Duration::from_secs(30)).await;
    assert_eq!(rows[0]["cmd_is_success"], true, "{}", rows[0]);
    let reopened = redis.until_clients(1, "the reloaded plugin opened one connection").await;
    assert_ne!(reopened[0].split(' ').nth(1), clients[0].split(' ').nth(1), "a new connection: {reopened:?}");

    // Grants that no longer allow the address: closed, and the run is refused before connecting.
    std::fs::write(&grants_file, format!("[config]\nredis_url = \"redis://127.0.0.1:{}/0\"\n", redis.port)).unwrap();
    redis.until_clients(0, "the connection of the old grants stayed open").await;
    assert_eq!(c.post("job_run", json!({"job_id": "mq2"})).await.stat, "OK");
    let rows = c.wait_history("mq2", 2, Duration::from_secs(30)).await;
    assert_eq!(rows[0]["cmd_is_success"], false, "{}", rows[0]);
    let out = rows[0]["cmd_output"].as_str().unwrap_or_default();
    assert!(out.contains("address not granted to this plugin"), "{out}");
    assert!(redis.clients().is_empty(), "no connection to an address the grants refuse");
    assert_eq!(redis.cli(&["LLEN", "mq:queue:{/kept/topic}"]), "23");
    s.stop().await;
}

#[tokio::test]
async fn baichuan_reconnects_after_redis_closed_its_connection() {
    let redis = PrivateRedis::start();
    let grant = redis.grant();
    let s = server_with("baichuan", Some(&grant)).await;
    let c = &s.client;
    c.add("cron", "re", "/re/topic#{}", "0 0 3 1 1 *").await;
    assert_eq!(c.post("job_run", json!({"job_id": "re"})).await.stat, "OK");
    assert_eq!(c.wait_history("re", 1, Duration::from_secs(30)).await[0]["cmd_is_success"], true);
    // The server drops every client (as a restart or `CLIENT KILL` would): the next run finds
    // the kept connection closed and opens a new one before sending anything.
    assert_eq!(redis.cli(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]), "1");
    redis.until_clients(0, "killed").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for run in 2..=3 {
        assert_eq!(c.post("job_run", json!({"job_id": "re"})).await.stat, "OK");
        let rows = c.wait_history("re", run, Duration::from_secs(30)).await;
        assert_eq!(rows[0]["cmd_is_success"], true, "{}", rows[0]);
    }
    assert_eq!(redis.cli(&["LLEN", "mq:queue:{/re/topic}"]), "3");
    redis.until_clients(1, "one connection again").await;
    s.stop().await;
}

#[tokio::test]
async fn baichuan_replaces_a_connection_whose_server_stopped_answering() {
    let redis = PrivateRedis::start();
    let s = server_with("baichuan", Some(&format!("timeout_secs = 60\n{}", redis.grant()))).await;
    let c = &s.client;
    c.add("cron", "hung", "/hung/topic#{}", "0 0 3 1 1 *").await;
    assert_eq!(c.post("job_run", json!({"job_id": "hung"})).await.stat, "OK");
    assert_eq!(c.wait_history("hung", 1, Duration::from_secs(30)).await[0]["cmd_is_success"], true);
    // The server stops answering for 13 s (its clients' commands wait): the publish fails after
    // 10 s, well within the run's own 60 s, with the reason; the next one, once the server
    // answers again, goes over a new connection.
    assert_eq!(redis.cli(&["CLIENT", "PAUSE", "13000", "ALL"]), "OK");
    assert_eq!(c.post("job_run", json!({"job_id": "hung"})).await.stat, "OK");
    let rows = c.wait_history("hung", 2, Duration::from_secs(40)).await;
    assert_eq!(rows[0]["cmd_is_success"], false, "{}", rows[0]);
    let out = rows[0]["cmd_output"].as_str().unwrap_or_default();
    assert!(out.contains(&format!("redis at 127.0.0.1:{}:", redis.port)), "{out}");
    let cost = rows[0]["cmd_cost"].as_f64().unwrap_or_default();
    assert!((9.0..30.0).contains(&cost), "failed at the reply time limit, not the run's: {cost} s");
    // (`CLIENT LIST` itself waits for the pause to end.)
    redis.until_clients(0, "the connection that stopped answering was closed").await;
    assert_eq!(c.post("job_run", json!({"job_id": "hung"})).await.stat, "OK");
    let rows = c.wait_history("hung", 3, Duration::from_secs(30)).await;
    assert_eq!(rows[0]["cmd_is_success"], true, "{}", rows[0]);
    redis.until_clients(1, "a new connection, kept").await;
    s.stop().await;
}

/// A plain HTTP/1.1 receiver that keeps connections alive: it answers every request with
/// `{"stat": "OK"}` and counts the connections it accepted and the ones the client closed.
async fn keep_alive_receiver()
-> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted, closed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, c) = (accepted.clone(), closed.clone());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            let c = c.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = conn.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        c.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    // Answer each whole request (headers and a Content-Length body) read so far.
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                            .unwrap_or(0usize);
                        if seen.len() < end + 4 + length {
                            break;
                        }
                        seen.drain(..end + 4 + length);
                        let body = "{\"stat\": \"OK\"}";
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if conn.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, accepted, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_post_keeps_its_connection_until_its_grants_change() {
    use std::sync::atomic::Ordering;
    let (addr, accepted, closed) = keep_alive_receiver().await;
    let grant = format!("hosts = [\"127.0.0.1:{}\"]\n", addr.port());
    let s = server_with("http-post", Some(&grant)).await;
    let c = &s.client;
    c.add("cron", "kept", &format!("http://{addr}/hook#{{\"n\":1}}"), "0 0 3 1 1 *").await;
    for n in 1..=3 {
        let a = c.post("job_run", json!({"job_id": "kept"})).await;
        assert_eq!(a.stat, "OK", "{a:?}");
        let rows = c.wait_history("kept", n, Duration::from_secs(20)).await;
        assert_eq!(rows.len(), n, "run {n} recorded");
        assert_eq!(rows[0]["cmd_is_success"], true, "{}", rows[0]);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "three runs, one kept-alive connection");
    assert_eq!(closed.load(Ordering::SeqCst), 0, "the connection is kept between runs");

    // A grant change reloads the plugin: the connection its old grants allowed is closed.
    let grants_file = s.plugins_dir().join("http-post.toml");
    std::fs::write(&grants_file, format!("{grant}timeout_secs = 20\n")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while closed.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the old connection was not closed after the grant change");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = c.post("job_run", json!({"job_id": "kept"})).await;
    assert_eq!(a.stat, "OK", "{a:?}");
    let rows = c.wait_history("kept", 4, Duration::from_secs(20)).await;
    assert_eq!(rows[0]["cmd_is_success"], true, "{}", rows[0]);
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "the reloaded plugin opened a connection of its own");

    // Grants that no longer allow the origin: the run is refused before any connection.
    std::fs::write(&grants_file, "hosts = [\"127.0.0.1:9\"]\n").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while closed.load(Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the connection of the old grants stayed open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = c.post("job_run", json!({"job_id": "kept"})).await;
    assert_eq!(a.stat, "OK", "{a:?}");
    let rows = c.wait_history("kept", 5, Duration::from_secs(20)).await;
    assert_eq!(rows[0]["cmd_is_success"], false, "{}", rows[0]);
    assert!(rows[0]["cmd_output"].as_str().unwrap_or_default().contains("denied"), "{}", rows[0]);
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "no connection to an origin the grants refuse");
    s.stop().await;
}

/// A keep-alive receiver not written here: Python's `http.server` speaking HTTP/1.1, answering
/// each POST with the client's port (one port = one connection).
const PY_KEEP_ALIVE: &str = r#"
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length') or 0))
        body = json.dumps({"stat": "OK", "port": self.client_address[1]}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_post_reuses_its_connection_to_pythons_http_server() {
    let (mut py, port) = ruqi_tests::python_server(PY_KEEP_ALIVE).await;
    let s = server_with("http-post", None).await;
    let c = &s.client;
    c.add("cron", "py-kept", &format!("http://127.0.0.1:{port}/hook#{{\"n\":1}}"), "0 0 3 1 1 *").await;
    let mut ports = Vec::new();
    for n in 1..=3 {
        let a = c.post("job_run", json!({"job_id": "py-kept"})).await;
        assert_eq!(a.stat, "OK", "{a:?}");
        let rows = c.wait_history("py-kept", n, Duration::from_secs(20)).await;
        assert_eq!(rows.len(), n, "run {n} recorded");
        assert_eq!(rows[0]["cmd_is_success"], true, "{}", rows[0]);
        let answer: Value = serde_json::from_str(rows[0]["cmd_output"].as_str().unwrap()).unwrap();
        ports.push(answer["port"].as_u64().expect("the receiver's answer names the client port"));
    }
    assert!(ports.iter().all(|p| *p == ports[0]), "three runs over one connection: client ports {ports:?}");
    s.stop().await;
    let _ = py.kill().await;
}
