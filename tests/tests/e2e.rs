//! End to end: the demo of the README, persistence across a restart, the `ruqi` binary's
//! exit codes, `plugin list`, and SIGTERM letting a running run finish.

use std::process::{Command, Stdio};
use std::time::Duration;

use ruqi_tests::{Client, ServerOptions, TestServer, ruqi_bin};

#[tokio::test]
async fn demo_job_runs_every_two_seconds_and_survives_a_restart() {
    let mut s = TestServer::start(ServerOptions::default()).await;
    s.client.add("interval", "hello", "bash scripts/hello.sh", "2s").await;
    let rows = s.client.wait_history("hello", 2, Duration::from_secs(15)).await;
    assert!(rows.len() >= 2);
    let first_node = s.node.as_ref().unwrap().name.clone();
    s.restart().await;
    let before = s.client.history("hello").await.len();
    assert!(before >= 2, "history kept");
    let shown = s.client.get("job_show", "job_id=hello").await;
    assert_eq!(shown.data()["rule"], "2s");
    let rows = s.client.wait_history("hello", before + 1, Duration::from_secs(15)).await;
    assert!(rows.len() > before, "the job keeps running after the restart");
    assert_eq!(rows.last().unwrap()["scheduler_name"], first_node.as_str());
    s.stop().await;
}

#[test]
fn bad_settings_exit_with_code_2_and_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["serve", "--listen", "nope"], "invalid setting listen"),
        (&["serve", "--store", "postgres://x", "--plugins", "."], "invalid setting store"),
        (&["serve", "--plugins", "/nonexistent/plugins"], "invalid setting plugins"),
        (&["serve", "--plugins", ".", "--timezone", "Mars/Base"], "invalid setting timezone"),
    ];
    for (args, want) in cases {
        let out =
            Command::new(ruqi_bin()).args(args).current_dir(dir.path()).env_remove("RUQI_CONFIG").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.lines().any(|l| l.starts_with("ruqi: ") && l.contains(want)), "{args:?}: {stderr}");
    }
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "colour = \"blue\"\n").unwrap();
    let out = Command::new(ruqi_bin()).args(["serve", "--config"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plugin_list_shows_plugins_prefixes_grants_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    ruqi_tests::install_plugin(dir.path(), "shell-bridge", None);
    ruqi_tests::install_plugin(dir.path(), "template", Some("memory_mb = 8\n"));
    std::fs::write(dir.path().join("junk.wasm"), b"junk").unwrap();
    let out = Command::new(ruqi_bin()).args(["plugin", "list", "--plugins"]).arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("shell-bridge 0.1.0") && stdout.contains("prefixes: \"bash\" \"python\" \"\""), "{stdout}");
    assert!(stdout.contains("programs=bash,python"), "{stdout}");
    assert!(stdout.contains("echo 0.1.0") && stdout.contains("memory=8MiB"), "{stdout}");
    assert!(stdout.contains("FAILED") && stdout.contains("junk.wasm"), "{stdout}");
}

#[tokio::test]
async fn sigterm_lets_the_running_run_finish_and_record_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    ruqi_tests::install_plugin(&plugins, "shell-bridge", None);
    let scripts = dir.path().join("scripts");
    std::fs::create_dir(&scripts).unwrap();
    std::fs::write(scripts.join("slow.sh"), "sleep 2\necho finished\n").unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let db = dir.path().join("ruqi.db");
    let spawn = || {
        Command::new(ruqi_bin())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--timezone", "UTC"])
            .arg("--store")
            .arg(format!("sqlite://{}", db.display()))
            .arg("--plugins")
            .arg(&plugins)
            .arg("--workdir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    /// Kills the node if the test fails before it is done with it.
    struct Reaped(Option<std::process::Child>);
    impl Drop for Reaped {
        fn drop(&mut self) {
            if let Some(mut c) = self.0.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut guard = Reaped(Some(spawn()));
    let client = Client::new(format!("127.0.0.1:{port}").parse().unwrap());
    let mut up = false;
    for _ in 0..100 {
        if reqwest::get(format!("http://127.0.0.1:{port}/ruqi/scheduler_status")).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "server did not come up");
    client.add("date", "slow", "bash scripts/slow.sh", "now").await;
    tokio::time::sleep(Duration::from_millis(700)).await; // the run is under way
    let mut child = guard.0.take().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
    // the run finished and its history row was written before the process left
    let guard = Reaped(Some(spawn()));
    for _ in 0..100 {
        if reqwest::get(format!("http://127.0.0.1:{port}/ruqi/scheduler_status")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = client.history("slow").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["cmd_output"], "finished");
    assert_eq!(rows[0]["cmd_is_success"], true);
    drop(guard);
}

#[tokio::test]
async fn migrate_prepares_a_mysql_database_that_serve_no_migrate_then_accepts() {
    let db = ruqi_tests::MysqlDb::create("migrate").await;
    let dir = tempfile::tempdir().unwrap();
    let serve_no_migrate = || {
        Command::new(ruqi_bin())
            .args(["serve", "--no-migrate", "--listen", "127.0.0.1:0", "--store", &db.url, "--plugins"])
            .arg(dir.path())
            .env_remove("RUQI_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let out = serve_no_migrate().wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("ruqi migrate"), "{stderr}");

    // migrate needs only the store: no plugins folder here
    let out = Command::new(ruqi_bin()).args(["migrate", "--store", &db.url]).current_dir(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut conn = db.connect().await;
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN ('ruqi_jobs', 'ruqi_jobs_history')",
    )
    .bind(&db.name)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 2);
    drop(conn);

    // now serving without migrating starts
    let log = dir.path().join("serve.log");
    let mut child = Command::new(ruqi_bin())
        .args(["serve", "--no-migrate", "--listen", "127.0.0.1:0", "--store", &db.url, "--plugins"])
        .arg(dir.path())
        .env_remove("RUQI_CONFIG")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if std::fs::read_to_string(&log).unwrap_or_default().contains("listening on") {
            up = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(up, "serve --no-migrate on a migrated database: {}", std::fs::read_to_string(&log).unwrap_or_default());
}
