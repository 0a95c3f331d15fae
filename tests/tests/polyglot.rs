//! Plugins written in Python and JavaScript, against a real `ruqi serve` (a child process whose log
//! the test reads): the templates (`pyecho:`, `jsecho:`), the test plugins (`pyhostile:`,
//! `jshostile:`) ending runs each way, and the chat-robot notifier (`dingtalk:`, `feishu:`, `lark:`,
//! `wecom:`) posting to a local robot server that checks the official message formats and
//! signatures; alerts (a failed run's) delivered through the notifier to Python's `http.server`
//! posing as the DingTalk, Feishu and WeCom robot APIs (`tests/scripts/alert_receiver.py`); and
//! `ruqi plugin new` in the three languages, the Python and JavaScript scaffolds
//! built with the tools `make plugins` installs and loaded by `ruqi plugin check`.
//!
//! `make plugins` builds the components beforehand (into `target/polyglot/wasm`). Compiling one
//! (12–18 MB) takes ~15 s of CPU, so the server test keeps their compiled code between runs in
//! `target/polyglot/cache`. (componentize-py and componentize-js do not build byte-identical
//! components twice, so the scaffolds, built afresh each run, are compiled each run.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::routing::post;
use base64::Engine as _;
use hmac::Mac as _;
use ruqi_tests::cluster::{NodeProcess, node_args};
use ruqi_tests::{Client, component_digest, copy_compiled, fixtures, polyglot_dir, ruqi_bin};
use serde_json::{Value, json};

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repository root")
}

/// The component `make plugins` built from `plugins/<name>/` (app.py or plugin.js).
fn polyglot_wasm(name: &str) -> PathBuf {
    let path = polyglot_dir().join("wasm").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `make plugins` (it builds the Python and JavaScript plugins)",
        path.display()
    );
    path
}

/// Compiled code of the components `make plugins` built, kept between test runs.
fn shared_cache() -> PathBuf {
    polyglot_dir().join("cache")
}

fn digest(file: &Path) -> String {
    component_digest(file).expect("read component")
}

/// [`check_plugins`] with the compiled code of earlier runs copied into `.cache` beside the files
/// first, and what it compiled copied back (entries of components no longer built are dropped).
fn check_plugins_cached(files: &[PathBuf]) -> Vec<String> {
    let digests: Vec<String> = files.iter().map(|f| digest(f)).collect();
    let local = files[0].parent().expect("folder").join(".cache");
    copy_compiled(&shared_cache(), &local, &digests);
    let outputs = check_plugins(files);
    copy_compiled(&local, &shared_cache(), &digests);
    for entry in std::fs::read_dir(shared_cache()).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !digests.iter().any(|d| name.starts_with(d.as_str())) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    outputs
}

/// Runs `program args…` in the repository root.
fn spawn(program: &Path, args: &[&str]) -> std::process::Child {
    Command::new(program)
        .args(args)
        .current_dir(root())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

/// Waits for `child`, asserting success; its stdout.
fn finish(child: std::process::Child, what: &str) -> String {
    let Output { status, stdout, stderr } = child.wait_with_output().expect("wait");
    let (stdout, stderr) = (String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    assert!(status.success(), "{what} failed ({status}):\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// `ruqi plugin check` on each file at once (each compiles into `.cache` beside its file); the
/// outputs, in order.
fn check_plugins(files: &[PathBuf]) -> Vec<String> {
    let children: Vec<_> =
        files.iter().map(|f| (f, spawn(&ruqi_bin(), &["plugin", "check", f.to_str().expect("utf-8 path")]))).collect();
    children.into_iter().map(|(f, c)| finish(c, &format!("ruqi plugin check {}", f.display()))).collect()
}

// ---------------------------------------------------------------------------------------------
// A local chat-robot server: DingTalk, Feishu / Lark and WeCom webhooks, checking what the
// official documentation asks for and answering as those services do.

const DINGTALK_SECRET: &str = "SEC0123456789abcdef";
const FEISHU_SECRET: &str = "fs-secret-42";
const WECOM_KEY: &str = "k-oncall";

/// One request the robot server received.
#[derive(Debug, Clone)]
struct Delivery {
    /// `dingtalk`, `feishu` or `wecom`.
    kind: &'static str,
    /// The access token, hook id or key from the URL.
    robot: String,
    query: HashMap<String, String>,
    body: Value,
    /// What the server answered.
    answer: Value,
}

type Deliveries = Arc<Mutex<Vec<Delivery>>>;

fn hmac_base64(key: &[u8], message: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// DingTalk: token `signed` checks `timestamp` (ms, within an hour) and `sign` =
/// base64(HmacSHA256(secret, "timestamp\nsecret")) on the URL; token `plain` signs nothing.
fn dingtalk(query: &HashMap<String, String>, body: &Value) -> Value {
    let token = query.get("access_token").map(String::as_str);
    if !matches!(token, Some("signed" | "plain")) {
        return json!({"errcode": 300001, "errmsg": "token is not exist"});
    }
    if token == Some("signed") {
        let ts = query.get("timestamp").cloned().unwrap_or_default();
        let fresh = ts.parse::<i64>().is_ok_and(|t| (now_ms() - t).abs() < 3_600_000);
        let want = hmac_base64(DINGTALK_SECRET.as_bytes(), format!("{ts}\n{DINGTALK_SECRET}").as_bytes());
        if !fresh || query.get("sign") != Some(&want) {
            return json!({"errcode": 310000, "errmsg": "sign not match"});
        }
    } else if query.contains_key("sign") {
        return json!({"errcode": 310000, "errmsg": "unexpected sign"});
    }
    if body["msgtype"] != "text" || body["text"]["content"].as_str().is_none_or(str::is_empty) {
        return json!({"errcode": 40035, "errmsg": "missing text content"});
    }
    json!({"errcode": 0, "errmsg": "ok"})
}

/// Feishu / Lark: `timestamp` (s, within an hour) and `sign` = base64(HmacSHA256(key =
/// "timestamp\nsecret", empty message)) in the JSON body, with `msg_type` and `content.text`.
fn feishu(body: &Value) -> Value {
    let ts = body["timestamp"].as_str().unwrap_or_default();
    let fresh = ts.parse::<i64>().is_ok_and(|t| (now_ms() / 1000 - t).abs() < 3600);
    let want = hmac_base64(format!("{ts}\n{FEISHU_SECRET}").as_bytes(), b"");
    if !fresh || body["sign"].as_str() != Some(want.as_str()) {
        return json!({"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"});
    }
    if body["msg_type"] != "text" || body["content"]["text"].as_str().is_none_or(str::is_empty) {
        return json!({"code": 9499, "msg": "Bad Request"});
    }
    json!({"code": 0, "msg": "success", "data": {}})
}

/// WeCom: the `key` on the URL is the robot; nothing is signed.
fn wecom(query: &HashMap<String, String>, body: &Value) -> Value {
    if query.get("key").map(String::as_str) != Some(WECOM_KEY) {
        return json!({"errcode": 93000, "errmsg": "invalid webhook url"});
    }
    if body["msgtype"] != "text" || body["text"]["content"].as_str().is_none_or(str::is_empty) {
        return json!({"errcode": 44004, "errmsg": "empty content"});
    }
    json!({"errcode": 0, "errmsg": "ok"})
}

/// Starts the robot server; its port and what it received.
async fn robot_server() -> (u16, Deliveries) {
    let seen = Deliveries::default();
    async fn record(
        seen: &Deliveries,
        kind: &'static str,
        robot: String,
        query: HashMap<String, String>,
        body: String,
    ) -> axum::Json<Value> {
        let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let answer = match kind {
            "dingtalk" => dingtalk(&query, &body),
            "feishu" => feishu(&body),
            _ => wecom(&query, &body),
        };
        seen.lock().unwrap().push(Delivery { kind, robot, query, body, answer: answer.clone() });
        axum::Json(answer)
    }
    let app = axum::Router::new()
        .route(
            "/robot/send",
            post(|State(s): State<Deliveries>, Query(q): Query<HashMap<String, String>>, body: String| async move {
                let robot = q.get("access_token").cloned().unwrap_or_default();
                record(&s, "dingtalk", robot, q, body).await
            }),
        )
        .route(
            "/open-apis/bot/v2/hook/{hook}",
            post(
                |State(s): State<Deliveries>,
                 UrlPath(hook): UrlPath<String>,
                 Query(q): Query<HashMap<String, String>>,
                 body: String| async move { record(&s, "feishu", hook, q, body).await },
            ),
        )
        .route(
            "/cgi-bin/webhook/send",
            post(|State(s): State<Deliveries>, Query(q): Query<HashMap<String, String>>, body: String| async move {
                let robot = q.get("key").cloned().unwrap_or_default();
                record(&s, "wecom", robot, q, body).await
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

/// `tests/scripts/alert_receiver.py` posing as the robot APIs (checking the notifier's
/// signatures), killed when dropped: its port, the file of what it received, the child.
async fn python_robots(dir: &Path) -> (u16, PathBuf, tokio::process::Child) {
    use tokio::io::AsyncBufReadExt;
    let out = dir.join("robots.jsonl");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/alert_receiver.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .arg(&out)
        .args(["--dingtalk-secret", DINGTALK_SECRET, "--feishu-secret", FEISHU_SECRET])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let mut line = String::new();
    tokio::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).await.expect("port");
    (line.trim().parse().unwrap_or_else(|_| panic!("receiver port, got {line:?}")), out, child)
}

/// The notifier's grants: the robot servers' origins only, and robots pointing at them (the
/// `py…` robots at the Python one, on `py_port`).
fn notifier_grants(port: u16, py_port: u16) -> String {
    let base = format!("http://127.0.0.1:{port}");
    let py = format!("http://127.0.0.1:{py_port}");
    format!(
        r#"hosts = ["127.0.0.1:{port}", "127.0.0.1:{py_port}"]
timeout_secs = 20
[config]
"dingtalk.ops" = "{base}/robot/send?access_token=signed"
"dingtalk.ops.secret" = "{DINGTALK_SECRET}"
"dingtalk.plain" = "{base}/robot/send?access_token=plain"
"dingtalk.stale" = "{base}/robot/send?access_token=signed"
"dingtalk.stale.secret" = "SECnot-the-robots-secret"
"feishu.dev" = "{base}/open-apis/bot/v2/hook/fs1"
"feishu.dev.secret" = "{FEISHU_SECRET}"
"lark.intl" = "{base}/open-apis/bot/v2/hook/lk1"
"lark.intl.secret" = "{FEISHU_SECRET}"
"wecom.oncall" = "{base}/cgi-bin/webhook/send?key={WECOM_KEY}"
"wecom.gone" = "{base}/cgi-bin/webhook/send?key=k-removed"
"wecom.far" = "http://localhost:{port}/cgi-bin/webhook/send?key={WECOM_KEY}"
"dingtalk.pyops" = "{py}/robot/send?access_token=py"
"dingtalk.pyops.secret" = "{DINGTALK_SECRET}"
"feishu.pydev" = "{py}/open-apis/bot/v2/hook/py1"
"feishu.pydev.secret" = "{FEISHU_SECRET}"
"wecom.pyoncall" = "{py}/cgi-bin/webhook/send?key=py-key"
"#
    )
}

// ---------------------------------------------------------------------------------------------

/// `(stat, x-reason)` of adding a date job with `cmd`.
async fn add(c: &Client, id: &str, cmd: &str) -> (String, String) {
    let a = c
        .post("job_add", json!({"job_trigger": "date", "job_id": id, "job_name": "t", "cmd": cmd, "rule": "now"}))
        .await;
    (a.stat, a.reason.unwrap_or_default())
}

/// Polls the node's log until it contains every one of `needles` (or 10 s pass); the log.
async fn log_with(node: &NodeProcess, needles: &[&str]) -> String {
    for _ in 0..100 {
        let log = node.log_text();
        if needles.iter().all(|n| log.contains(n)) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.log_text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_javascript_plugins_in_a_real_server() {
    let (port, deliveries) = robot_server().await;
    let dir = tempfile::tempdir().unwrap();
    let (py_port, py_out, _py_robots) = python_robots(dir.path()).await;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    for name in ["template-python", "template-js", "test-python", "test-js", "notifier"] {
        std::fs::copy(polyglot_wasm(name), plugins.join(format!("{name}.wasm"))).unwrap();
    }
    std::fs::write(plugins.join("test-python.toml"), "cpu_secs = 5\n").unwrap();
    std::fs::write(plugins.join("test-js.toml"), "cpu_secs = 5\n").unwrap();
    std::fs::write(plugins.join("notifier.toml"), notifier_grants(port, py_port)).unwrap();
    // Compile ahead (in parallel, cached): the server then starts in well under its 30 s.
    let files: Vec<PathBuf> = ["template-python", "template-js", "test-python", "test-js", "notifier"]
        .iter()
        .map(|n| plugins.join(format!("{n}.wasm")))
        .collect();
    let checks = check_plugins_cached(&files);
    for (out, prefix) in checks.iter().zip(["pyecho:", "jsecho:", "pyhostile:", "jshostile:", "dingtalk:"]) {
        assert!(out.contains(&format!("{prefix:?}")) && out.contains("accepted"), "{out}");
    }

    let store = format!("sqlite://{}", dir.path().join("ruqi.db").display());
    let node =
        NodeProcess::serve(&ruqi_bin(), &node_args(&store, &plugins, &fixtures()), dir.path().join("node.log")).await;
    let c = &node.client;

    // Refused at add time, with the plugin's reason (nothing stored).
    let refused = [
        ("pyecho:", "pyecho cmds look like pyecho:TEXT with a non-empty TEXT"),
        ("jsecho:", "jsecho cmds look like jsecho:TEXT with a non-empty TEXT"),
        ("pyhostile:nope", "pyhostile does not know 'nope'"),
        ("jshostile:nope", "jshostile does not know \"nope\""),
        ("wecom:oncall#  ", "the text after wecom:oncall# is empty"),
        ("feishu:dev", "notifier cmds look like feishu:ROBOT#TEXT"),
        (
            "dingtalk:nobody#hi",
            "no dingtalk robot named \"nobody\": grant \"dingtalk.nobody\" = \"WEBHOOK URL\" in [config] of plugins/notifier.toml",
        ),
    ];
    for (cmd, reason) in refused {
        assert_eq!(add(c, "refused", cmd).await, ("ERR".to_owned(), reason.to_owned()), "{cmd}");
    }
    // A prefix no loaded plugin serves (there is no fallback plugin here). Host branch (i15 host
    // side): the reason names the prefix. Collected, with the other such checks, into `failures`.
    let mut failures = Vec::new();
    let want = ("ERR".to_owned(), "no plugin serves the cmd prefix \"xyz:\"".to_owned());
    let got = add(c, "refused", "xyz:hello").await;
    if got != want {
        failures.push(format!("xyz:hello: {got:?}, want {want:?}"));
    }
    assert_eq!(c.get("job_list", "").await.data()["total"], 0);

    // Runs: (job id, cmd, success, what the output must contain).
    let runs = [
        ("py-echo", "pyecho:hello from python", true, "hello from python"),
        ("js-echo", "jsecho:hello from js", true, "hello from js"),
        ("py-fail", "pyhostile:fail", false, "ran and failed"),
        ("js-fail", "jshostile:fail", false, "ran and failed"),
        ("py-declare", "pyhostile:declare", false, "declared failure from python"),
        ("js-declare", "jshostile:declare", false, "declared failure from js"),
        ("py-print", "pyhostile:print", true, "printed"),
        ("js-print", "jshostile:print", true, "printed"),
        // An exception traps the run; the traceback's last line (stderr) says why. Host branch:
        // the trap reason carries the guest's last stderr line.
        ("py-raise", "pyhostile:raise", false, "ValueError: a bug in execute"),
        ("js-raise", "jshostile:raise", false, "a bug in execute"),
        ("js-reject", "jshostile:reject", false, "a bug after await"),
        // A trap without an exception: os.abort().
        ("py-abort", "pyhostile:abort", false, "plugin trapped: "),
        ("py-alloc", "pyhostile:alloc", false, "plugin exceeded its memory limit of 64 MiB"),
        // SpiderMonkey says `out of memory` (today as the function's error; with the host branch's
        // stderr capture, after the memory limit reason).
        ("js-alloc", "jshostile:alloc", false, "out of memory"),
        ("ding", "dingtalk:ops#hello 你好", true, r#""errcode":0"#),
        ("ding-plain", "dingtalk:plain#unsigned robot", true, r#""errcode":0"#),
        ("ding-stale", "dingtalk:stale#wrong secret", false, "dingtalk robot stale refused the message: HTTP 200: "),
        ("feishu", "feishu:dev#hello feishu", true, r#""code":0"#),
        ("lark", "lark:intl#hello lark", true, r#""code":0"#),
        ("wecom", "wecom:oncall#hello wecom", true, r#""errcode":0"#),
        ("wecom-gone", "wecom:gone#anyone?", false, "93000"),
        // localhost is not granted (only 127.0.0.1:port): the host refuses the request.
        ("wecom-far", "wecom:far#not granted", false, ""),
    ];
    for (id, cmd, _, _) in &runs {
        c.add("date", id, cmd, "now").await;
    }
    for (id, cmd, success, want) in &runs {
        let rows = c.wait_history(id, 1, Duration::from_secs(60)).await;
        assert_eq!(rows.len(), 1, "{id}: one history row");
        let out = rows[0]["cmd_output"].as_str().unwrap_or_default();
        if rows[0]["cmd_is_success"] != *success || !out.contains(want) {
            failures.push(format!(
                "{id} ({cmd}): success {} output {out:?}, want {success} and {want:?}",
                rows[0]["cmd_is_success"]
            ));
        }
    }

    // What the robots received: signed where the robot signs, in the official formats.
    let seen = deliveries.lock().unwrap().clone();
    let find = |kind: &str, text: &str| {
        seen.iter()
            .find(|d| d.kind == kind && d.body.to_string().contains(text))
            .unwrap_or_else(|| panic!("no {kind} request with {text:?}: {seen:#?}"))
            .clone()
    };
    let ding = find("dingtalk", "hello 你好");
    assert_eq!(ding.body, json!({"msgtype": "text", "text": {"content": "hello 你好"}}));
    assert!(ding.query.contains_key("timestamp") && ding.query.contains_key("sign"), "{ding:?}");
    assert_eq!(ding.answer["errcode"], 0, "{ding:?}");
    let plain = find("dingtalk", "unsigned robot");
    assert!(!plain.query.contains_key("sign") && plain.answer["errcode"] == 0, "{plain:?}");
    assert_eq!(find("dingtalk", "wrong secret").answer["errcode"], 310000);
    let fs = find("feishu", "hello feishu");
    assert_eq!(
        (fs.robot.as_str(), &fs.body["msg_type"], &fs.body["content"]),
        ("fs1", &json!("text"), &json!({"text": "hello feishu"}))
    );
    assert_eq!(fs.answer["code"], 0, "{fs:?}");
    assert_eq!(find("feishu", "hello lark").robot, "lk1");
    let wc = find("wecom", "hello wecom");
    assert_eq!(wc.body, json!({"msgtype": "text", "text": {"content": "hello wecom"}}));
    assert!(
        seen.iter().all(|d| !d.body.to_string().contains("not granted")),
        "an ungranted request arrived: {seen:#?}"
    );

    // Alerts through the notifier: a failed run's reaches each robot once, as a text message
    // that names the job and its outcome (the Python robots check the signatures).
    let alerting = json!({"job_trigger": "date", "job_id": "alerting", "job_name": "t", "cmd": "pyhostile:fail",
        "rule": "now", "alert": ["dingtalk:pyops", "feishu:pydev", "wecom:pyoncall"], "alert_on": "failure"});
    assert_eq!(c.post("job_add", alerting).await.stat, "OK");
    let mut sent = Vec::new();
    for _ in 0..300 {
        let a = c.get("alert_list", "job_id=alerting&state=sent").await;
        sent = a.data()["list"].as_array().cloned().unwrap_or_default();
        if sent.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if sent.len() != 3 {
        let all = c.get("alert_list", "job_id=alerting").await;
        failures.push(format!("3 alerts sent to the robots, got: {}", all.data()));
    }
    let posts: Vec<Value> = std::fs::read_to_string(&py_out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for robot in ["dingtalk", "feishu", "wecom"] {
        let got: Vec<&Value> = posts.iter().filter(|p| p["robot"] == robot).collect();
        let text = |p: &Value| {
            p["body"]["text"]["content"]
                .as_str()
                .or(p["body"]["content"]["text"].as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let ok = got.len() == 1
            && (got[0]["answer"]["errcode"] == 0 || got[0]["answer"]["code"] == 0)
            && text(got[0]).contains("alerting")
            && text(got[0]).contains("failed");
        if !ok {
            failures.push(format!("{robot}: one signed text alert naming the job and outcome, got {got:?}"));
        }
    }

    // What a guest prints is in the server's log, with the run. Host branch: stdout and stderr
    // are captured and logged.
    let wanted = [
        "python host log for py-print",
        "js host log for js-print",
        "http request refused: origin not granted",
        "python stdout for py-print",
        "python stderr for py-print",
        "js stdout for js-print",
        "js stderr for js-print",
    ];
    let log = log_with(&node, &wanted).await;
    for w in wanted {
        if !log.contains(w) {
            failures.push(format!("the server log lacks {w:?}"));
        }
    }
    assert!(failures.is_empty(), "{}\n\nserver log:\n{}", failures.join("\n"), node.log_text());
    assert!(node.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_new_scaffolds_build_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().to_str().unwrap();
    for (name, lang) in [("demo-rs", "rust"), ("demo-py", "python"), ("demo-js", "js")] {
        let out = finish(spawn(&ruqi_bin(), &["plugin", "new", name, "--lang", lang, "--dir", at]), "ruqi plugin new");
        assert!(out.starts_with(&format!("created {at}/{name} (")), "{out}");
        assert!(dir.path().join(name).join(format!("{name}.toml")).is_file(), "{name}: grants file");
    }
    let again =
        spawn(&ruqi_bin(), &["plugin", "new", "demo-py", "--lang", "python", "--dir", at]).wait_with_output().unwrap();
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists already"));

    // Rust: a member crate of plugins/ (building it would need the workspace), so its files.
    let rs = dir.path().join("demo-rs");
    let cargo = std::fs::read_to_string(rs.join("Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"demo-rs\"") && cargo.contains("ruqi-plugin-sdk.workspace = true"), "{cargo}");
    let lib = std::fs::read_to_string(rs.join("src/lib.rs")).unwrap();
    assert!(lib.contains("const PREFIX: &str = \"demo-rs:\";") && lib.contains("export_plugin!(DemoRs)"), "{lib}");

    // Python and JavaScript: built with the tools `make plugins` installed, then loaded.
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let componentize_py = polyglot_dir().join("venv/bin/componentize-py");
    let componentize_js = polyglot_dir().join("js/node_modules/.bin/componentize-js");
    for tool in [&componentize_py, &componentize_js] {
        assert!(tool.exists(), "{} is missing: run `make plugins`", tool.display());
    }
    let py_out = out.join("demo-py.wasm");
    let js_out = out.join("demo-js.wasm");
    let py_src = dir.path().join("demo-py");
    let js_src = dir.path().join("demo-js/plugin.js");
    let py = spawn(
        &componentize_py,
        &[
            "-q",
            "-d",
            "wit",
            "-w",
            "plugin",
            "componentize",
            "-p",
            py_src.to_str().unwrap(),
            "app",
            "-o",
            py_out.to_str().unwrap(),
        ],
    );
    let js = spawn(
        &componentize_js,
        &[js_src.to_str().unwrap(), "--wit", "wit", "--world-name", "plugin", "--out", js_out.to_str().unwrap()],
    );
    finish(py, "componentize-py");
    finish(js, "componentize-js");
    for name in ["demo-py", "demo-js"] {
        std::fs::copy(dir.path().join(name).join(format!("{name}.toml")), out.join(format!("{name}.toml"))).unwrap();
    }
    let checks = check_plugins(&[py_out, js_out]);
    for (out, name) in checks.iter().zip(["demo-py", "demo-js"]) {
        assert!(out.starts_with(&format!("{name} 0.1.0")), "{out}");
        assert!(out.contains(&format!("prefixes: \"{name}:\"")) && out.contains("accepted"), "{out}");
    }
}
