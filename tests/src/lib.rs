//! Shared harness of the integration tests: real plugins built from `plugins/` by `build.rs`,
//! a real server on 127.0.0.1 with a temporary plugins folder and SQLite file, and a small
//! client that reads RuQi's envelope (`stat`, `x-reason`, `data`), and a private MariaDB
//! database per test ([`MysqlDb`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

pub mod cluster;
pub mod galera;

/// Polls `cond` every 100 ms until it holds; false if it does not within `within`.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `ruqi` binary built beside the tests (`make test` builds it first).
pub fn ruqi_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe.parent().and_then(|d| d.parent()).expect("target dir").join("ruqi");
    assert!(bin.exists(), "{} is missing: run `cargo build -p ruqi` (make test does)", bin.display());
    bin
}

/// Folder holding the built `*.wasm` components of `plugins/`: this tree's, or the folder
/// `RUQI_WASM_DIR` names (laid out alike: cargo's `wasm32-wasip2/release`), which lets the bench
/// measure another build of RuQi with that build's own plugins.
pub fn wasm_dir() -> PathBuf {
    std::env::var_os("RUQI_WASM_DIR").map_or_else(|| PathBuf::from(env!("RUQI_TEST_WASM_DIR")), PathBuf::from)
}

/// Waits (up to 10 s) until `plugin` has an instance ready for its next run.
pub async fn until_spare(plugin: &ruqi::plugin::LoadedPlugin) {
    for _ in 0..1000 {
        if plugin.spare_ready() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no instance was made ahead of the next run");
}

/// `tests/fixtures`: scripts the shell-bridge tests run.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("RUQI_TEST_FIXTURES"))
}

/// The built component of crate `name` (e.g. `shell-bridge`).
pub fn wasm(name: &str) -> PathBuf {
    wasm_dir().join(format!("{}.wasm", name.replace('-', "_")))
}

/// Copies the component of crate `name` into `dir` as `<name>.wasm`, with an optional grants file.
pub fn install_plugin(dir: &Path, name: &str, grants: Option<&str>) {
    std::fs::copy(wasm(name), dir.join(format!("{name}.wasm"))).expect("copy plugin");
    if let Some(g) = grants {
        std::fs::write(dir.join(format!("{name}.toml")), g).expect("write grants");
    }
}

/// `target/polyglot`: where `make plugins` builds the Python and JavaScript plugins (`wasm/`)
/// and where tests keep their compiled code between runs (`cache/`).
pub fn polyglot_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root).join("target/polyglot")
}

/// The SHA-256 of a component file, as the host names its compiled code
/// (`<sha256 of the .wasm>-<engine hash>.cwasm`).
pub fn component_digest(file: &Path) -> std::io::Result<String> {
    use sha2::Digest as _;
    Ok(sha2::Sha256::digest(std::fs::read(file)?).iter().map(|b| format!("{b:02x}")).collect())
}

/// Copies the `*.cwasm` of `from` whose name starts with one of `digests` and that `to` lacks
/// (best effort: a cache only saves time).
pub fn copy_compiled(from: &Path, to: &Path, digests: &[String]) {
    let _ = std::fs::create_dir_all(to);
    for entry in std::fs::read_dir(from).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let target = to.join(&name);
        if name.ends_with(".cwasm") && digests.iter().any(|d| name.starts_with(d.as_str())) && !target.exists() {
            let tmp = to.join(format!(".{name}.tmp{}", std::process::id()));
            if std::fs::copy(entry.path(), &tmp).and_then(|_| std::fs::rename(&tmp, &target)).is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
        }
    }
}

/// A run of `cmd` for job `job`, as the dispatcher hands it to a plugin (for tests and
/// benchmarks that call the plugin runtime directly).
pub fn run_request(cmd: &str, job: &str) -> ruqi::plugin::RunRequest {
    ruqi::plugin::RunRequest {
        run_id: format!("run-{job}"),
        job_id: job.into(),
        job_name: job.into(),
        cmd: cmd.into(),
        fire_time: "2026-11-30 10:00:00".into(),
        params: None,
    }
}

/// A receiver written with Python's `http.server`, which reads exactly `Content-Length` bytes
/// of a request body (a chunked body reads as empty there), and answers what it got as JSON.
const PY_RECEIVER: &str = r#"
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(n)
        try:
            got = json.loads(raw) if raw else {}
        except ValueError:
            got = None
        body = json.dumps({"got": got, "length": self.headers.get('Content-Length'),
                           "chunked": self.headers.get('Transfer-Encoding'),
                           "key": self.headers.get('Idempotency-Key')}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// Starts [`PY_RECEIVER`] on 127.0.0.1: the process (killed when dropped) and its port.
pub async fn python_receiver() -> (tokio::process::Child, u16) {
    python_server(PY_RECEIVER).await
}

/// Starts a Python HTTP server `script` that prints its port on its first line: the process
/// (killed when dropped) and that port.
pub async fn python_server(script: &str) -> (tokio::process::Child, u16) {
    use tokio::io::AsyncBufReadExt;
    let mut py = tokio::process::Command::new("python3")
        .args(["-c", script])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let mut line = String::new();
    tokio::io::BufReader::new(py.stdout.take().unwrap()).read_line(&mut line).await.unwrap();
    let port: u16 = line.trim().parse().expect("receiver port");
    (py, port)
}

/// One answer of the API.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `stat` of the body ("" when the body is not JSON).
    pub stat: String,
    /// `x-reason`, if any.
    pub reason: Option<String>,
    /// The whole body as JSON (Null when not JSON).
    pub body: Value,
    /// The raw body.
    pub text: String,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// `data` of the body.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
}

/// Asserts `a` is OK (`what` names the request in the failure); its `data`.
pub fn ok(a: &Answer, what: &str) -> Value {
    assert_eq!(a.stat, "OK", "{what}: {:?} {}", a.reason, a.text);
    a.data().clone()
}

/// Asserts the request was refused (an `ERR…` stat with a reason); the reason.
pub fn refused(a: &Answer, what: &str) -> String {
    assert_ne!(a.stat, "OK", "{what} was accepted: {}", a.text);
    assert!(a.stat.starts_with("ERR"), "{what}: {a:?}");
    let reason = a.reason.clone().unwrap_or_default();
    assert!(!reason.is_empty(), "{what}: refused without a reason: {a:?}");
    reason
}

/// A whole job as `job_add` and `job_modify` take it (named `name`), with `extra` parameters.
pub fn job_body(name: &str, id: &str, trigger: &str, cmd: &str, rule: &str, extra: Value) -> Value {
    let mut body =
        serde_json::json!({"job_trigger": trigger, "job_id": id, "job_name": name, "cmd": cmd, "rule": rule});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

/// A client for one server.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    /// A client of `http://addr`.
    pub fn new(addr: std::net::SocketAddr) -> Self {
        Self { base: format!("http://{addr}"), http: reqwest::Client::new(), token: None }
    }

    /// The same client sending `Authorization: Bearer token`.
    pub fn with_token(&self, token: &str) -> Self {
        Self { token: Some(token.to_owned()), ..self.clone() }
    }

    /// Sends `method path?query` with an optional raw body.
    pub async fn send(&self, method: reqwest::Method, path_and_query: &str, body: Option<&str>) -> Answer {
        self.send_raw(method, path_and_query, &[], body.map(|b| b.as_bytes().to_vec())).await
    }

    /// Sends `method path?query` with extra headers and optional raw body bytes.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{}", self.base, path_and_query));
        if let Some(b) = body {
            req = req.body(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.timeout(Duration::from_secs(30)).send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let reason = headers.get("x-reason").map(|v| v.to_str().unwrap_or_default().to_owned());
        let text = resp.text().await.expect("body");
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let stat = body["stat"].as_str().unwrap_or_default().to_owned();
        Answer { status, stat, reason, body, text, headers }
    }

    /// POST `/ruqi/<route>` with a JSON body.
    pub async fn post(&self, route: &str, body: Value) -> Answer {
        self.send(reqwest::Method::POST, &format!("/ruqi/{route}"), Some(&body.to_string())).await
    }

    /// GET `/ruqi/<route>?<query>`.
    pub async fn get(&self, route: &str, query: &str) -> Answer {
        let q = if query.is_empty() { String::new() } else { format!("?{query}") };
        self.send(reqwest::Method::GET, &format!("/ruqi/{route}{q}"), None).await
    }

    /// Adds a job, asserting OK.
    pub async fn add(&self, trigger: &str, id: &str, cmd: &str, rule: &str) {
        let a = self
            .post(
                "job_add",
                serde_json::json!({"job_trigger": trigger, "job_id": id, "job_name": "t", "cmd": cmd, "rule": rule}),
            )
            .await;
        assert_eq!(a.stat, "OK", "add {id}: {:?}", a.reason);
    }

    /// History rows of a job (all pages), newest first.
    pub async fn history(&self, job_id: &str) -> Vec<Value> {
        let a = self.get("job_history_list", &format!("job_id={job_id}&page_size=0")).await;
        assert_eq!(a.stat, "OK", "{:?}", a.reason);
        a.data()["list"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `route` until it answers `stat: OK`; false if it does not within `within`.
    pub async fn wait_ok(&self, route: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.get(route, "").await.stat == "OK" {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Polls until `job_id` has at least `n` history rows (or `within` passes).
    pub async fn wait_history(&self, job_id: &str, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let rows = self.history(job_id).await;
            if rows.len() >= n || tokio::time::Instant::now() > deadline {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A server running in this process on 127.0.0.1 with its own folder.
pub struct TestServer {
    /// Its client.
    pub client: Client,
    /// The running node.
    pub node: Option<ruqi::app::Node>,
    /// Temporary folder holding `plugins/` and `ruqi.db`.
    pub dir: tempfile::TempDir,
    /// The settings it was started with.
    pub settings: ruqi::config::Settings,
    /// What it was built with (its clock).
    pub deps: ruqi::app::Deps,
}

/// Options of a [`TestServer`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Plugins to install, with optional grants text.
    pub plugins: Vec<(&'static str, Option<String>)>,
    /// Store URL; default: a SQLite file in the server's folder.
    pub store: Option<String>,
    /// Bearer tokens.
    pub tokens: Vec<String>,
    /// Zone.
    pub timezone: &'static str,
    /// Work directory (default: tests/fixtures).
    pub workdir: Option<PathBuf>,
    /// Read-only bearer tokens.
    pub read_tokens: Vec<String>,
    /// Claim lease in seconds (default: the service's).
    pub lease: Option<u64>,
    /// Largest request body (default: the service's).
    pub max_body_bytes: Option<usize>,
    /// A clock the test moves by hand (default: the wall clock).
    pub clock: Option<ruqi::clock::ManualClock>,
    /// Calendar files (`NAME`, TOML text) written to the server's `calendars/` folder (beside
    /// `plugins/`); none: no folder.
    pub calendars: Vec<(&'static str, String)>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            plugins: vec![("shell-bridge", None)],
            store: None,
            tokens: Vec::new(),
            timezone: "Asia/Shanghai",
            workdir: None,
            read_tokens: Vec::new(),
            lease: None,
            max_body_bytes: None,
            clock: None,
            calendars: Vec::new(),
        }
    }
}

impl TestServer {
    /// Starts a server.
    pub async fn start(opts: ServerOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).expect("plugins dir");
        for (name, grants) in &opts.plugins {
            install_plugin(&plugins, name, grants.as_deref());
        }
        if !opts.calendars.is_empty() {
            let folder = dir.path().join("calendars");
            std::fs::create_dir(&folder).expect("calendars dir");
            for (name, text) in &opts.calendars {
                std::fs::write(folder.join(format!("{name}.toml")), text).expect("calendar file");
            }
        }
        let store = opts.store.clone().unwrap_or_else(|| format!("sqlite://{}", dir.path().join("ruqi.db").display()));
        let args = ruqi::config::ServeArgs {
            listen: Some("127.0.0.1:0".into()),
            store: Some(store),
            plugins: Some(plugins),
            workdir: Some(opts.workdir.clone().unwrap_or_else(fixtures)),
            tokens: Some(opts.tokens.join(",")),
            read_tokens: Some(opts.read_tokens.join(",")),
            timezone: Some(opts.timezone.into()),
            shutdown_grace: Some(5),
            lease: opts.lease,
            max_body_bytes: opts.max_body_bytes,
            ..Default::default()
        };
        let settings = args.settings().expect("settings");
        let deps = match opts.clock {
            Some(clock) => ruqi::app::Deps { clock: Some(std::sync::Arc::new(clock)) },
            None => ruqi::app::Deps::default(),
        };
        let node = ruqi::app::start_with(settings.clone(), deps.clone()).await.expect("server starts");
        Self { client: Client::new(node.addr), node: Some(node), dir, settings, deps }
    }

    /// Stops the server (graceful) and starts it again on the same folder and store.
    pub async fn restart(&mut self) {
        if let Some(n) = self.node.take() {
            n.shutdown().await.expect("clean shutdown");
        }
        let node = ruqi::app::start_with(self.settings.clone(), self.deps.clone()).await.expect("server restarts");
        self.client = Client::new(node.addr);
        self.node = Some(node);
    }

    /// The plugins folder.
    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// The calendars folder (beside `plugins/`; it exists when calendars were given).
    pub fn calendars_dir(&self) -> PathBuf {
        self.dir.path().join("calendars")
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Some(n) = self.node.take() {
            n.shutdown().await.expect("clean shutdown");
        }
    }
}

/// The MariaDB server the tests use (`RUQI_TEST_MYSQL`, default root on 127.0.0.1:3306).
pub fn mysql_server() -> String {
    std::env::var("RUQI_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// A database of its own for one test on the real MariaDB, dropped when this goes away
/// (after killing any connection still using it, so the drop never waits on a lock).
pub struct MysqlDb {
    /// Database name (`ruqi_t_<tag>_<random>`).
    pub name: String,
    /// `mysql://…/<name>`, for `--store`.
    pub url: String,
}

impl MysqlDb {
    /// Creates an empty database.
    pub async fn create(tag: &str) -> Self {
        let name = format!("ruqi_t_{tag}_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let mut admin = Self::admin().await;
        sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4").as_str())
            .await
            .expect("create test database");
        let url = format!("{}/{name}", mysql_server());
        Self { name, url }
    }

    /// A connection to the server (database `test`).
    pub async fn admin() -> sqlx::MySqlConnection {
        use sqlx::Connection;
        sqlx::MySqlConnection::connect(&format!("{}/test", mysql_server()))
            .await
            .expect("MariaDB on 127.0.0.1:3306 (make test starts it)")
    }

    /// A connection to this database.
    pub async fn connect(&self) -> sqlx::MySqlConnection {
        use sqlx::Connection;
        sqlx::MySqlConnection::connect(&self.url).await.expect("connect to test database")
    }

    async fn drop_database(name: String) {
        let mut admin = Self::admin().await;
        let ids: Vec<u64> = sqlx::query_scalar("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ?")
            .bind(&name)
            .fetch_all(&mut admin)
            .await
            .unwrap_or_default();
        for id in ids {
            let _ = sqlx::Executor::execute(&mut admin, format!("KILL CONNECTION {id}").as_str()).await;
        }
        let _ = sqlx::Executor::execute(&mut admin, format!("DROP DATABASE IF EXISTS `{name}`").as_str()).await;
    }
}

impl Drop for MysqlDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run inside a runtime: do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), Self::drop_database(name)).await })
        })
        .join();
    }
}
