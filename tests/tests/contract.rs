//! The versions of the plugin contract, at the registry level with real plugins: a plugin built
//! for `ruqi:executor@0.1.0` loads, says which contract it was built for, and runs unchanged; a
//! run with params is refused for it with a reason instead of losing them. The built-in
//! plugins' params: shell-bridge's extra arguments (a real script), http-post's JSON merged into
//! the body (a Python `http.server` receiver), baichuan's merged into the message data (read
//! back with `redis-cli`).

use std::sync::Arc;

use ruqi::plugin::{Contract, ExecOutcome, PluginStatus, Registry, RunRequest, Runtime};
use serde_json::{Value, json};

/// A registry over a fresh plugins folder holding `plugins` (crate name, grants file), running
/// commands in the test fixtures.
async fn registry(plugins: &[(&str, Option<&str>)]) -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    for (name, grants) in plugins {
        ruqi_tests::install_plugin(dir.path(), name, *grants);
    }
    let runtime = Arc::new(Runtime::new(ruqi_tests::fixtures(), None).unwrap());
    let registry = Registry::open(runtime, dir.path().to_owned()).await.unwrap();
    (dir, registry)
}

/// A run of `cmd` for job `job`, with `params`.
fn run(cmd: &str, job: &str, params: Option<&str>) -> RunRequest {
    RunRequest { params: params.map(str::to_owned), ..ruqi_tests::run_request(cmd, job) }
}

/// The contract `ruqi plugin list` shows for the plugin named `name`.
fn listed_contract(registry: &Registry, name: &str) -> String {
    registry
        .statuses()
        .into_iter()
        .find_map(|s| match s {
            PluginStatus::Loaded { name: n, contract, .. } if n == name => Some(contract),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{name} is not loaded: {:?}", registry.statuses()))
}

#[tokio::test]
async fn a_plugin_built_for_0_1_loads_says_so_and_runs_unchanged() {
    let (_dir, r) = registry(&[("test-v01", None), ("template", None)]).await;
    assert_eq!(listed_contract(&r, "test-v01"), "ruqi:executor@0.1.0");
    assert_eq!(listed_contract(&r, "echo"), "ruqi:executor@0.3.0");
    assert_eq!(r.select("v01:x").unwrap().contract_kind(), Contract::Legacy);
    assert_eq!(r.select("echo:x").unwrap().contract_kind(), Contract::Current);

    assert_eq!(r.validate("v01:hi").await, Ok(()));
    assert_eq!(r.validate("v01:").await, Err("v01 cmds look like v01:TEXT with a non-empty TEXT".into()));
    // The first run makes its instance; the next ones take the instance made ahead of them.
    for job in ["j1", "j2", "j3"] {
        let outcome = r.execute(&run("v01:hi", job, None)).await;
        assert_eq!(outcome, ExecOutcome::Finished { success: true, output: format!("hi (run run-{job})") });
        ruqi_tests::until_spare(&r.select("v01:hi").unwrap()).await;
    }
    // Its `host` imports are the 0.1 ones, linked beside 0.3's.
    let outcome = r.execute(&run("v01:log", "log", None)).await;
    assert_eq!(outcome.into_output(), "logged (shell granted: false)");
    // A plugin built for 0.3 beside it runs as before.
    assert_eq!(r.execute(&run("echo:hello", "echo", None)).await.into_output(), "hello");
}

#[tokio::test]
async fn a_plugin_built_for_0_2_loads_says_so_and_gets_its_params() {
    let (_dir, r) = registry(&[("test-v02", None), ("template", None)]).await;
    assert_eq!(listed_contract(&r, "test-v02"), "ruqi:executor@0.2.0");
    assert_eq!(r.select("v02:x").unwrap().contract_kind(), Contract::V0_2);
    assert_eq!(r.validate("v02:").await, Err("v02 cmds look like v02:TEXT with a non-empty TEXT".into()));
    for job in ["j1", "j2"] {
        let outcome = r.execute(&run("v02:hi", job, Some("--verbose"))).await;
        let want = format!("hi (run run-{job}, params --verbose)");
        assert_eq!(outcome, ExecOutcome::Finished { success: true, output: want });
        ruqi_tests::until_spare(&r.select("v02:hi").unwrap()).await;
    }
    assert_eq!(r.execute(&run("v02:hi", "n", None)).await.into_output(), "hi (run run-n, params none)");
    // Its `host` imports are the 0.2 ones, linked beside 0.3's.
    assert_eq!(r.execute(&run("v02:log", "log", None)).await.into_output(), "logged (shell granted: false)");
    assert_eq!(r.execute(&run("echo:hello", "echo", None)).await.into_output(), "hello");
}

#[tokio::test]
async fn params_for_a_plugin_built_for_0_1_fail_the_run_with_the_reason() {
    let (_dir, r) = registry(&[("test-v01", None)]).await;
    let outcome = r.execute(&run("v01:hi", "p", Some("--verbose"))).await;
    assert!(!outcome.success());
    assert_eq!(outcome.label(), "refused");
    assert_eq!(
        outcome.into_output(),
        "this plugin was built for ruqi:executor@0.1.0, which has no params; rebuild it against \
         ruqi:executor@0.3.0 to receive them (or start the run without params)"
    );
    // Without params the same cmd runs; an empty text is still params, and still refused.
    assert!(r.execute(&run("v01:hi", "p", None)).await.success());
    assert_eq!(r.execute(&run("v01:hi", "p", Some(""))).await.label(), "refused");
}

/// `outcome`'s history output, and whether it succeeded.
fn output(outcome: ExecOutcome) -> (bool, String) {
    (outcome.success(), outcome.into_output())
}

#[tokio::test]
async fn shell_bridge_appends_params_as_arguments_and_refuses_shell_syntax() {
    let script = "bash scripts/echo_args.sh first";
    let (_dir, r) = registry(&[("shell-bridge", None)]).await;
    assert_eq!(output(r.execute(&run(script, "none", None)).await), (true, "[first]".into()));
    let params = r#"two "three four" 'five$six' it\'s"#;
    assert_eq!(
        output(r.execute(&run(script, "args", Some(params))).await),
        (true, "[first]\n[two]\n[three four]\n[five$six]\n[it's]".into())
    );
    for (params, reason) in [
        ("x; id", "params refused: a command separator (;) is shell syntax; params are plain arguments"),
        ("$(id)", "params refused: an expansion ($) is shell syntax; params are plain arguments"),
        ("a | tee b", "params refused: a pipe (|) is shell syntax; params are plain arguments"),
        ("'open", "params refused: cannot split them into words: missing closing quote"),
    ] {
        let outcome = r.execute(&run(script, "bad", Some(params))).await;
        assert!(matches!(outcome, ExecOutcome::Declared(_)), "{params}: {outcome:?}");
        assert_eq!(outcome.into_output(), reason, "{params}");
    }
}

#[tokio::test]
async fn with_a_granted_shell_each_param_stays_one_quoted_argument() {
    let grants = "programs = [\"bash\"]\nshell = \"bash\"\n";
    let (_dir, r) = registry(&[("shell-bridge", Some(grants))]).await;
    let params = r#"'$(echo pwned)' "a  b" '*'"#;
    assert_eq!(
        output(r.execute(&run("bash scripts/echo_args.sh", "shell", Some(params))).await),
        (true, "[$(echo pwned)]\n[a  b]\n[*]".into())
    );
    let outcome = r.execute(&run("bash scripts/echo_args.sh", "shell", Some("x && id"))).await;
    assert_eq!(
        outcome.into_output(),
        "params refused: a control operator (&) is shell syntax; params are plain arguments"
    );
}

#[tokio::test]
async fn http_post_merges_params_into_the_body_and_refuses_other_params() {
    let (mut py, port) = ruqi_tests::python_receiver().await;
    let (_dir, r) = registry(&[("http-post", None)]).await;
    let answer = |outcome: ExecOutcome| -> Value {
        assert!(outcome.success(), "{outcome:?}");
        serde_json::from_str(&outcome.into_output()).unwrap()
    };
    let cmd = format!(r#"http://127.0.0.1:{port}/hook#{{"a":1,"b":"cmd"}}"#);
    let got = answer(r.execute(&run(&cmd, "merge", Some(r#"{"b":"params","c":[1,{"d":true}]}"#))).await);
    assert_eq!(got["got"], json!({"a": 1, "b": "params", "c": [1, {"d": true}]}), "{got}");
    assert_eq!(got["key"], "run-merge", "{got}");
    // A cmd without a body sends the params alone; without params the cmd's body goes as it is.
    let bare = format!("http://127.0.0.1:{port}/hook");
    let got = answer(r.execute(&run(&bare, "bare", Some(r#"{"only":"params"}"#))).await);
    assert_eq!(got["got"], json!({"only": "params"}));
    let got = answer(r.execute(&run(&cmd, "none", None)).await);
    assert_eq!(got["got"], json!({"a": 1, "b": "cmd"}));

    for (params, reason) in [
        ("[1,2]", r#"params must be a JSON object, not "[1,2]""#),
        ("\"text\"", r#"params must be a JSON object, not "\"text\"""#),
        ("a=1", "params must be a JSON object: expected value at line 1 column 1"),
    ] {
        let outcome = r.execute(&run(&cmd, "bad", Some(params))).await;
        assert!(matches!(outcome, ExecOutcome::Declared(_)), "{params}: {outcome:?}");
        assert_eq!(outcome.into_output(), reason, "{params}");
    }
    let _ = py.kill().await;
}

/// `redis-cli ARGS…` against the test Redis: its output, trimmed.
fn redis_cli(args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379"])
        .args(args)
        .output()
        .expect("redis-cli");
    assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn baichuan_merges_params_into_the_message_data() {
    let (_dir, r) = registry(&[("baichuan", None)]).await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let topic = format!("/ruqi-test-params-{tag}/hello");
    let (queue, msg_id) = (format!("mq:queue:{{{topic}}}"), format!("ruqi-test-params-{tag}-m1"));
    let key = format!("mq:msg:{msg_id}");
    let cmd = format!(r#"{topic}#{{"str_info":"mq","n":1}}#{msg_id}"#);
    let outcome = r.execute(&run(&cmd, "mq", Some(r#"{"n":2,"extra":"p"}"#))).await;
    assert_eq!(output(outcome), (true, msg_id.clone()));
    let data: Value = serde_json::from_str(&redis_cli(&["HGET", &key, "data"])).unwrap();
    assert_eq!(data, json!({"str_info": "mq", "n": 2, "extra": "p"}));
    // The message's own fields are the plugin's, whatever the params hold.
    assert_eq!(redis_cli(&["HGET", &key, "run_id"]), "run-mq");
    assert_eq!(redis_cli(&["HGET", &key, "origin"]), topic);
    assert_eq!(redis_cli(&["HGET", &key, "status"]), "queued");
    assert_eq!(redis_cli(&["LPOP", &queue]), msg_id);

    // Data that is not a JSON object cannot take params, nor can params that are not one:
    // nothing is published.
    for (cmd, params, reason) in [
        (
            format!("{topic}#plain#{msg_id}x"),
            "{}",
            r#"params are merged into the message data, which must then be a JSON object, not "plain""#,
        ),
        (format!("{topic}#{{}}#{msg_id}x"), "[]", r#"params must be a JSON object, not "[]""#),
    ] {
        let outcome = r.execute(&run(&cmd, "bad", Some(params))).await;
        assert!(matches!(outcome, ExecOutcome::Declared(_)), "{cmd}: {outcome:?}");
        assert_eq!(outcome.into_output(), reason);
    }
    assert_eq!(redis_cli(&["EXISTS", &format!("{key}x")]), "0");
    assert_eq!(redis_cli(&["LLEN", &queue]), "0");
    redis_cli(&["DEL", &key]);
    redis_cli(&["SREM", "mq:queues", &queue]);
}

#[tokio::test]
async fn plugin_check_and_list_name_the_contract_a_plugin_was_built_for() {
    let dir = tempfile::tempdir().unwrap();
    ruqi_tests::install_plugin(dir.path(), "test-v01", None);
    let out = std::process::Command::new(ruqi_tests::ruqi_bin())
        .args(["plugin", "check"])
        .arg(dir.path().join("test-v01.wasm"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains(
            "contract: ruqi:executor@0.1.0 (this host speaks ruqi:executor@0.3.0, ruqi:executor@0.2.0 and \
             ruqi:executor@0.1.0)\n"
        ),
        "{text}"
    );
    assert!(text.contains("ruqi:executor/host@0.1.0"), "{text}");

    ruqi_tests::install_plugin(dir.path(), "template", None);
    let out = std::process::Command::new(ruqi_tests::ruqi_bin())
        .args(["plugin", "list", "--plugins"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = |name: &str| text.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_owned();
    assert!(line("test-v01 0.1.0").ends_with("prefixes: \"v01:\"  contract: ruqi:executor@0.1.0"), "{text}");
    assert!(line("echo 0.1.0").ends_with("prefixes: \"echo:\"  contract: ruqi:executor@0.3.0"), "{text}");
}
