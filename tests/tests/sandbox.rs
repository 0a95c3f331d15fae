//! The sandbox's promises against a real server and real plugins: script cmds run without a
//! shell and only scripts inside the work directory (refused at add time and again at run
//! time, symlinks included), an operator-granted shell restores RuQi 1.x's behaviour, a run
//! whose claim is lost is cancelled with its process group and records nothing, strings from
//! plugins are bounded, and `validate` has a limit of its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ruqi::clock::ManualClock;
use ruqi_tests::{ServerOptions, TestServer};
use serde_json::json;

/// A work directory with `scripts/ok.sh` (prints `ok`) and, beside it (outside), `outside/evil.sh`
/// which writes the marker file `pwned` when it runs.
fn workdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("scripts")).unwrap();
    std::fs::create_dir_all(dir.path().join("outside")).unwrap();
    std::fs::write(work.join("scripts/ok.sh"), "echo ok\n").unwrap();
    std::fs::write(
        dir.path().join("outside/evil.sh"),
        format!("touch {}\necho evil\n", dir.path().join("pwned").display()),
    )
    .unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside/evil.sh"), work.join("scripts/link.sh")).unwrap();
    (dir, work)
}

fn pwned(dir: &Path) -> bool {
    dir.join("pwned").exists()
}

async fn add(c: &ruqi_tests::Client, id: &str, cmd: &str, rule: &str) -> ruqi_tests::Answer {
    c.post("job_add", json!({"job_trigger": "date", "job_id": id, "job_name": "t", "cmd": cmd, "rule": rule})).await
}

#[tokio::test]
async fn shell_syntax_and_scripts_outside_the_workdir_are_refused_at_add_time() {
    let (dir, work) = workdir();
    let s = TestServer::start(ServerOptions { workdir: Some(work.clone()), ..Default::default() }).await;
    let c = &s.client;
    let evil = dir.path().join("outside/evil.sh");
    let cases = [
        ("bash scripts/ok.sh | sh", "a pipe (|)"),
        ("bash scripts/ok.sh $(touch x)", "an expansion ($)"),
        ("bash scripts/ok.sh `touch x`", "a command substitution (`)"),
        ("bash scripts/ok.sh > /tmp/x", "a redirection"),
        ("bash scripts/ok.sh < /etc/passwd", "a redirection"),
        ("bash scripts/ok.sh &", "a control operator (&)"),
        ("bash scripts/ok.sh\ntouch x", "a line break"),
        ("bash scripts/ok.sh \"$HOME\"", "an expansion ($)"),
        ("bash ../outside/evil.sh", "outside the work directory"),
        (&format!("bash {}", evil.display()), "outside the work directory"),
        ("bash 'scripts/ok.sh", "cannot split"),
    ];
    for (n, (cmd, why)) in cases.iter().enumerate() {
        let a = add(c, &format!("j{n}"), cmd, "now").await;
        assert_eq!(a.stat, "ERR", "{cmd:?}");
        let reason = a.reason.unwrap_or_default();
        assert!(reason.starts_with("(scripts) Cmd does not meet expectations"), "{cmd:?}: {reason}");
        assert!(reason.contains(why), "{cmd:?}: {reason}");
    }
    // RuQi 1.x's own refusals keep its exact reason; a symlink leading out is a missing script
    for cmd in ["bash scripts/ok.sh; id", "bash scripts/ok.sh && id", "sh scripts/ok.sh", "bash scripts/link.sh"] {
        let a = add(c, "x", cmd, "now").await;
        assert_eq!((a.stat.as_str(), a.reason.as_deref()), ("ERR", Some("(scripts) Cmd does not meet expectations")));
    }
    assert_eq!(c.get("job_list", "").await.data()["total"], 0, "nothing was added");
    // quoted operators are plain words: the script gets them as arguments
    std::fs::write(work.join("scripts/args.sh"), "echo \"[$1] [$2]\"\n").unwrap();
    assert_eq!(add(c, "quoted", "bash scripts/args.sh 'a | b' \"c > d\"", "now").await.stat, "OK");
    let rows = c.wait_history("quoted", 1, Duration::from_secs(20)).await;
    assert_eq!(rows[0]["cmd_output"], "[a | b] [c > d]");
    assert!(!pwned(dir.path()));
    s.stop().await;
}

#[tokio::test]
async fn a_script_swapped_for_a_link_after_add_is_refused_at_run_time() {
    let (dir, work) = workdir();
    let clock = ManualClock::new(chrono::Utc::now());
    let s = TestServer::start(ServerOptions {
        workdir: Some(work.clone()),
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    let c = &s.client;
    let local = ruqi::clock::Clock::now(&clock).with_timezone(&chrono_tz::Asia::Shanghai);
    let at = (local + chrono::Duration::hours(1)).format("%Y-%m-%d %H:%M:%S").to_string();
    assert_eq!(add(c, "swap", "bash scripts/ok.sh", &at).await.stat, "OK");
    std::fs::remove_file(work.join("scripts/ok.sh")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside/evil.sh"), work.join("scripts/ok.sh")).unwrap();
    clock.advance(chrono::Duration::hours(1));
    c.post("scheduler_wakeup", json!({})).await;
    let rows = c.wait_history("swap", 1, Duration::from_secs(20)).await;
    assert_eq!(rows[0]["cmd_is_success"], false);
    let out = rows[0]["cmd_output"].as_str().unwrap();
    assert!(out.contains("outside the work directory"), "{out}");
    assert!(!pwned(dir.path()), "the script outside the work directory did not run");
    s.stop().await;
}

#[tokio::test]
async fn granted_script_roots_and_a_granted_shell_widen_what_runs() {
    let (dir, work) = workdir();
    let outside = dir.path().join("outside");
    let grants = format!("programs = [\"bash\"]\nscript_roots = [\"{}\"]\n", outside.display());
    let s = TestServer::start(ServerOptions {
        workdir: Some(work.clone()),
        plugins: vec![("shell-bridge", Some(grants))],
        ..Default::default()
    })
    .await;
    let a = add(&s.client, "root", "bash ../outside/evil.sh", "now").await;
    assert_eq!(a.stat, "OK", "{:?}", a.reason);
    let rows = s.client.wait_history("root", 1, Duration::from_secs(20)).await;
    assert_eq!(rows[0]["cmd_output"], "evil");
    assert!(pwned(dir.path()));
    s.stop().await;

    // RuQi 1.x's behaviour, granted explicitly: the line goes to the shell
    let s = TestServer::start(ServerOptions {
        workdir: Some(work.clone()),
        plugins: vec![("shell-bridge", Some("programs = [\"bash\"]\nshell = \"/bin/sh\"\n".into()))],
        ..Default::default()
    })
    .await;
    assert_eq!(add(&s.client, "piped", "bash scripts/ok.sh | tr a-z A-Z", "now").await.stat, "OK");
    let rows = s.client.wait_history("piped", 1, Duration::from_secs(20)).await;
    assert_eq!(rows[0]["cmd_output"], "OK");
    s.stop().await;
}

/// Takes the claim on `job` away from the node, as another node taking it over would.
async fn steal_claim(db: &Path, job: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    let stolen = sqlx::query("UPDATE ruqi_jobs SET claim_owner = 'thief:1:1', lease_until = 9e12 WHERE id = ?")
        .bind(job)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(stolen.rows_affected(), 1);
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn process_gone(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.is_empty() || stat.contains(") Z ")
}

#[tokio::test]
async fn a_run_whose_claim_is_lost_is_cancelled_and_records_nothing() {
    let s = TestServer::start(ServerOptions {
        lease: Some(3),
        plugins: vec![("shell-bridge", None), ("test-hostile", None)],
        ..Default::default()
    })
    .await;
    let c = &s.client;
    let db = s.dir.path().join("ruqi.db");
    // a script whose background child would outlive it
    let pidfile = s.dir.path().join("child.pid");
    let script = format!("bash scripts/spawn_and_sleep.sh {}", pidfile.display());
    let a = add(c, "script", &script, "now").await;
    assert_eq!(a.stat, "OK", "{:?}", a.reason);
    wait_for("the script to start", || pidfile.exists() && std::fs::read_to_string(&pidfile).unwrap().ends_with('\n'))
        .await;
    let child: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    // a plugin blocked in a WASI call
    assert_eq!(add(c, "plugin", "hostile:sleep", "now").await.stat, "OK");
    tokio::time::sleep(Duration::from_millis(500)).await;
    steal_claim(&db, "script").await;
    steal_claim(&db, "plugin").await;
    // within a renewal period (lease / 3) the runs are cancelled: the process group is killed
    wait_for("the script's process group to be killed", || process_gone(child)).await;
    // nothing is recorded for the fire times the thief now owns, and the claims stay the thief's
    tokio::time::sleep(Duration::from_secs(2)).await;
    for job in ["script", "plugin"] {
        assert!(c.history(job).await.is_empty(), "{job}: no history row");
    }
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    let owners: Vec<String> =
        sqlx::query_scalar("SELECT claim_owner FROM ruqi_jobs ORDER BY id").fetch_all(&mut conn).await.unwrap();
    assert_eq!(owners, ["thief:1:1", "thief:1:1"]);
    s.stop().await;
}

const HOSTILE: &str = "memory_mb = 64\ncpu_secs = 1\noutput_limit = 4096\nvalidate_timeout_secs = 1\n";

#[tokio::test]
async fn strings_from_plugins_are_bounded_and_validate_has_its_own_limit() {
    let s = TestServer::start(ServerOptions {
        plugins: vec![("shell-bridge", None), ("test-hostile", Some(HOSTILE.into()))],
        ..Default::default()
    })
    .await;
    let c = &s.client;
    // a 100 KB multi-line reason becomes one short line
    let a = add(c, "long", "hostile:refuse-long", "now").await;
    assert_eq!(a.stat, "ERR");
    let reason = a.reason.unwrap();
    assert!(
        reason.len() <= 310 && reason.starts_with("refused\\r\\nx-injected: 1\\n"),
        "{} bytes: {reason}",
        reason.len()
    );
    assert!(a.headers.get("x-injected").is_none());
    // validate that sleeps (no compute) is cut at validate_timeout_secs, not the run limit
    let started = std::time::Instant::now();
    let a = add(c, "sleepy", "hostile:validate-sleep", "now").await;
    assert_eq!(a.stat, "ERR");
    assert!(a.reason.unwrap().contains("longer than 1s (validate_timeout_secs)"));
    assert!(started.elapsed() < Duration::from_secs(10), "answered in {:?}", started.elapsed());
    // a 10 MB declared error and a 10 MB log line end their runs normally
    assert_eq!(add(c, "err", "hostile:hugeerr", "now").await.stat, "OK");
    assert_eq!(add(c, "log", "hostile:hugelog", "now").await.stat, "OK");
    let rows = c.wait_history("err", 1, Duration::from_secs(20)).await;
    assert_eq!(
        (rows[0]["cmd_is_success"].clone(), rows[0]["cmd_output"].as_str().unwrap().len()),
        (json!(false), 4096)
    );
    let rows = c.wait_history("log", 1, Duration::from_secs(20)).await;
    assert_eq!(rows[0]["cmd_output"], "logged");
    assert_eq!(c.get("job_list", "").await.data()["total"], 0);
    s.stop().await;
}
