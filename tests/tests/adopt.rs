//! Switching over from RuQi 1.x in place: the rows a live 1.x instance wrote
//! (`shared/fixtures/ruqi-1x/jobs.sql`) are loaded into a fresh MariaDB database, a real
//! `ruqi serve` starts on it, and every fixture job answers through the API what 1.x answered
//! (`get_jobs.json`, `get_job.jsonl`; time-dependent next run times aside); the due ones run and
//! append to 1.x's history. A corrupted pickle, a pickle of an unexpected shape and an unknown
//! trigger stay parked, as they were, each with its reason, while the rest works.

use std::path::PathBuf;
use std::time::Duration;

use ruqi_tests::cluster::{NodeProcess, node_args};
use ruqi_tests::{MysqlDb, install_plugin, ruqi_bin};
use serde_json::{Value, json};

/// A copy of `shared/fixtures/ruqi-1x` (what a running RuQi 1.x wrote and answered).
fn fixture_dir() -> PathBuf {
    ruqi_tests::fixtures().join("ruqi-1x")
}

fn fixture(name: &str) -> String {
    let path = fixture_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Three rows RuQi must keep as they are, beside the nine good ones.
const BAD_ROWS: &str = "
INSERT INTO ruqi_jobs SELECT 'fx-bad-pickle', 1795573304.04614, LEFT(job_state, 200), 0, 'bad', 'interval', '300s',
 u_time, c_time FROM ruqi_jobs WHERE id = 'fx-interval';
INSERT INTO ruqi_jobs VALUES ('fx-bad-shape', 1795573304.04614, '(lp0\\nI1\\na.', 0, 'bad', 'interval', '300s',
 '2026-11-25 02:16:44', '2026-11-25 02:16:44');
INSERT INTO ruqi_jobs SELECT 'fx-bad-trigger', 1795573304.04614, job_state, 0, 'bad', 'calendar', job_rule, u_time, c_time
 FROM ruqi_jobs WHERE id = 'fx-unicode';
";

async fn load_fixture(db: &MysqlDb) {
    let mut conn = db.connect().await;
    sqlx::raw_sql(&fixture("jobs.sql")).execute(&mut conn).await.expect("jobs.sql loads");
    sqlx::raw_sql(BAD_ROWS).execute(&mut conn).await.expect("bad rows load");
}

/// The output of `ruqi migrate ARGS…` (stdout), asserting it succeeds.
fn migrate(args: &[&str]) -> String {
    let out = std::process::Command::new(ruqi_bin()).arg("migrate").args(args).output().expect("ruqi migrate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn a_live_ruqi_1x_database_is_adopted_in_place() {
    let db = MysqlDb::create("adopt").await;
    load_fixture(&db).await;

    // dry run: what would be converted and what cannot, changing nothing
    let plan = migrate(&["--dry-run", "--store", &db.url, "--timezone", "UTC"]);
    for id in ["fx-baichuan", "fx-cron-nightly", "fx-date-us", "fx-http", "fx-paused", "fx-unicode"] {
        assert!(plan.contains(&format!("would convert {id}: ")), "{id}: {plan}");
    }
    assert!(
        plan.contains("would convert fx-interval: interval \"300s\", next run 2026-11-25 02:21:44.046139"),
        "{plan}"
    );
    assert!(plan.contains("would keep fx-bad-pickle as it is: "), "{plan}");
    assert!(
        plan.contains("would keep fx-bad-shape as it is: job_state: expected a dict at the top, found list"),
        "{plan}"
    );
    assert!(plan.contains("would keep fx-bad-trigger as it is: unknown trigger \"calendar\""), "{plan}");
    assert!(plan.contains("RuQi 1.x job rows: 12, history rows whose times would move to UTC: 3"), "{plan}");
    let mut conn = db.connect().await;
    let pickles: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ruqi_jobs WHERE LEFT(job_state, 1) = '('")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(pickles, 12, "the dry run changed nothing");
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '_sqlx_migrations'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 0, "nor migrated anything");

    // three jobs are due a few seconds after the switch
    let soon = chrono::Utc::now().timestamp() as f64 + 4.0;
    sqlx::query("UPDATE ruqi_jobs SET next_run_time = ? WHERE id IN ('fx-interval', 'fx-unicode', 'fx-http')")
        .bind(soon)
        .execute(&mut conn)
        .await
        .unwrap();

    // the switch: 1.x is stopped, ruqi serve starts on its database
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
    std::fs::create_dir(&plugins).unwrap();
    for p in ["shell-bridge", "http-post", "baichuan"] {
        install_plugin(&plugins, p, None);
    }
    std::fs::write(dir.path().join("scripts/test.sh"), "echo \"out:$1\"\necho \"err:$1\" >&2\n").unwrap();
    std::fs::write(dir.path().join("scripts/test.py"), "import sys\nprint('args: ' + ' '.join(sys.argv[1:]))\n")
        .unwrap();
    let args = node_args(&db.url, &plugins, dir.path());
    let node = NodeProcess::serve(&ruqi_bin(), &args, dir.path().join("node.log")).await;
    let c = &node.client;

    // job_list answers for the fixture jobs what 1.x answered
    let listed = c.get("job_list", "").await;
    assert_eq!(listed.stat, "OK", "{:?}", listed.reason);
    let want: Value = serde_json::from_str(&fixture("get_jobs.json")).unwrap();
    assert_eq!(listed.data()["total"], want["data"]["total"], "the nine good jobs; the kept rows are not listed");
    let got: Vec<Value> = listed.data()["list"].as_array().unwrap().clone();
    for w in want["data"]["list"].as_array().unwrap() {
        let id = w["job_id"].as_str().unwrap();
        let g = got.iter().find(|g| g["job_id"] == w["job_id"]).unwrap_or_else(|| panic!("{id} listed"));
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(g), keys(w), "{id}: fields and their order");
        for field in ["job_id", "c_time", "cmd", "rule", "job_trigger", "job_name"] {
            assert_eq!(g[field], w[field], "{id}: {field}");
        }
        // next run times that cannot have moved since the capture
        if ["fx-date", "fx-date-us", "fx-paused"].contains(&id) {
            assert_eq!(g["next_run_time"], w["next_run_time"], "{id}: next_run_time");
        }
    }
    // the same JSON text as 1.x for a whole item (ensure_ascii escapes included)
    assert!(listed.text.contains(r#""cmd": "bash scripts/test.sh \u4f60\u597d""#), "{}", listed.text);

    // job_show answers what get_job answered
    for line in fixture("get_job.jsonl").lines() {
        let w: Value = serde_json::from_str(line).unwrap();
        let id = w["data"]["job_id"].as_str().unwrap();
        let shown = c.post("job_show", json!({"job_id": id})).await;
        assert_eq!(shown.stat, "OK", "{id}: {:?}", shown.reason);
        for field in ["job_id", "cmd", "rule", "job_trigger", "job_name"] {
            assert_eq!(shown.data()[field], w["data"][field], "{id}: {field}");
        }
        if id == "fx-paused" {
            assert_eq!(shown.data()["nexttime"], "None");
        }
    }
    let shown = c.post("job_show", json!({"job_id": "fx-date-us"})).await;
    assert_eq!(shown.data()["nexttime"], "2031-06-01 08:00:00.123456", "microseconds kept from the pickle");

    // the kept rows: a clear reason, and the rows untouched but for the claim that holds them
    let reasons = [
        ("fx-bad-pickle", "pickle"),
        ("fx-bad-shape", "expected a dict at the top, found list"),
        ("fx-bad-trigger", "unknown trigger \"calendar\""),
    ];
    for (id, why) in reasons {
        let a = c.post("job_show", json!({"job_id": id})).await;
        assert_eq!(a.stat, "ERR", "{id}");
        let reason = a.reason.unwrap_or_default();
        assert!(
            reason.contains("written by RuQi 1.x and could not be adopted") && reason.contains(why),
            "{id}: {reason}"
        );
    }
    let kept: Vec<(String, Option<f64>, Option<String>)> =
        sqlx::query_as("SELECT id, next_run_time, claim_owner FROM ruqi_jobs WHERE id LIKE 'fx-bad-%' ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    for (id, next, owner) in &kept {
        assert_eq!(*next, Some(1795573304.04614), "{id}: 1.x's next run time kept");
        assert_eq!(owner.as_deref(), Some("ruqi:unadopted-1.x-row"), "{id}");
    }

    // the due jobs run on their schedule, their history appended after 1.x's rows
    for (id, ok, out) in [
        ("fx-interval", true, "args: a b"),
        ("fx-unicode", true, "out:你好\nerr:你好"),
        ("fx-http", false, "connection refused"),
    ] {
        let rows = c.wait_history(id, 1, Duration::from_secs(30)).await;
        assert_eq!(rows.len(), 1, "{id}: ran once");
        assert_eq!(rows[0]["cmd_is_success"], ok, "{id}: {}", rows[0]);
        assert!(rows[0]["cmd_output"].as_str().unwrap().contains(out), "{id}: {}", rows[0]);
        assert!(rows[0]["id"].as_i64().unwrap() > 1002, "{id}: appended to 1.x's history");
    }
    let interval = c.post("job_show", json!({"job_id": "fx-interval"})).await;
    let next =
        chrono::NaiveDateTime::parse_from_str(interval.data()["nexttime"].as_str().unwrap(), "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc();
    assert_eq!((next.timestamp() as f64 - soon) as i64, 300, "the 300 s grid goes on");
    let history = c.get("job_history_list", "page_size=0").await;
    let ids: Vec<i64> = history.data()["list"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    for old in [1, 1001, 1002] {
        assert!(ids.contains(&old), "1.x's history row {old} is still listed");
    }
    let first = history.data()["list"].as_array().unwrap().iter().find(|r| r["id"] == 1).unwrap().clone();
    assert_eq!(
        (first["c_time"].as_str(), first["cmd_output"].as_str(), first["scheduler_name"].as_str()),
        (Some("2026-11-25 01:40:27"), Some("out:hi\nerr:hi"), Some("vm:18586:22276"))
    );

    // a second start (or `ruqi migrate`) finds nothing more to convert and keeps the bad rows
    let again = migrate(&["--store", &db.url, "--timezone", "UTC"]);
    assert!(again.contains("kept fx-bad-shape as it is") && !again.contains("converted"), "{again}");
    node.terminate();
}
