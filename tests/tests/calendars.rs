//! Business calendars through the API, on SQLite and MariaDB: working and rest days (an
//! adjusted Saturday fires, a holiday does not), the fallback past the data, refusals, the
//! calendar kept and removed by job_modify, runs that fire or not on the real clock, reloads
//! that take effect, and a broken file that keeps the last good version. Also: two nodes in
//! different zones on one MariaDB agree on the times of a job that has its own zone.

use std::time::Duration;

use chrono::{Datelike as _, NaiveDate, TimeZone as _};
use ruqi_tests::{MysqlDb, ServerOptions, TestServer};
use serde_json::{Value, json};

const HELLO: &str = "bash scripts/hello.sh";

/// The calendar the repository ships.
fn shipped_cn() -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../calendars/cn.toml"))
        .expect("calendars/cn.toml")
}

/// 2026-09-25 00:00 in Shanghai (a Friday), the first day of 2026's Mid-autumn holiday.
fn before_national_day() -> ruqi::clock::ManualClock {
    ruqi::clock::ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 9, 24, 16, 0, 0).unwrap())
}

fn job(trigger: &str, id: &str, rule: &str, extra: Value) -> Value {
    let mut j = json!({"job_trigger": trigger, "job_id": id, "job_name": "cal", "cmd": HELLO, "rule": rule});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        j[k] = v;
    }
    j
}

fn list(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().map(|x| x.as_str().unwrap_or_default().to_owned()).collect()
}

/// The stores every test here runs on: a SQLite file (the default) and a MariaDB database.
async fn stores(tag: &str) -> Vec<(Option<String>, Option<MysqlDb>)> {
    let db = MysqlDb::create(tag).await;
    vec![(None, None), (Some(db.url.clone()), Some(db))]
}

/// A node on `store` (default SQLite) with the shipped `cn.toml`, its clock at
/// [`before_national_day`].
async fn cn_server(store: Option<String>) -> TestServer {
    TestServer::start(ServerOptions {
        store,
        clock: Some(before_national_day()),
        calendars: vec![("cn", shipped_cn())],
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn working_days_follow_the_china_calendar_and_its_adjusted_days() {
    for (store, _db) in stores("calwork").await {
        let s = cn_server(store).await;
        let c = &s.client;
        // Every working day at 9:00. In 2026, Mid-autumn is 09-25..09-27 (a Friday to a Sunday), National
        // Day 10-01..10-07, and the Saturday 10-10 is a working day.
        let a = c
            .post(
                "job_next_fire_times",
                json!({"job_trigger": "cron", "rule": "0 0 9 * * *", "calendar": "cn", "count": 6}),
            )
            .await;
        assert_eq!(a.stat, "OK", "{:?}", a.reason);
        let days = list(&a.data()["list"]);
        assert_eq!(
            days,
            [
                "2026-09-28 09:00:00",
                "2026-09-29 09:00:00",
                "2026-09-30 09:00:00",
                "2026-10-08 09:00:00",
                "2026-10-09 09:00:00",
                "2026-10-10 09:00:00",
            ],
            "the adjusted Saturday fires, the holidays do not"
        );
        // The cron's day fields still apply: Saturdays that are working days.
        assert_eq!(
            list(
                &c.post(
                    "job_next_fire_times",
                    json!({"job_trigger": "cron", "rule": "0 0 9 * * sat", "calendar": "cn", "count": 1}),
                )
                .await
                .data()["list"]
            ),
            ["2026-10-10 09:00:00"]
        );
        // The inverse: rest days only (weekends and holidays, not the adjusted days).
        let rest = c
            .post(
                "job_next_fire_times",
                json!({"job_trigger": "cron", "rule": "0 0 9 * * *", "calendar": "cn:rest", "count": 4}),
            )
            .await;
        assert_eq!(
            list(&rest.data()["list"]),
            ["2026-09-25 09:00:00", "2026-09-26 09:00:00", "2026-09-27 09:00:00", "2026-10-01 09:00:00"]
        );

        // A job with the calendar: stored, shown, next run on a working day.
        let add = c.post("job_add", job("cron", "report", "0 0 9 * * *", json!({"calendar": "cn"}))).await;
        assert_eq!(add.stat, "OK", "{:?}", add.reason);
        let d = c.post("job_show", json!({"job_id": "report"})).await.data().clone();
        assert_eq!((d["nexttime"].as_str(), d["calendar"].as_str()), (Some("2026-09-28 09:00:00"), Some("cn")), "{d}");
        assert!(d.get("calendar_note").is_none(), "2026 is covered: {d}");
        let item = c.get("job_list", "job_id=report").await.data()["list"][0].clone();
        assert_eq!(item["calendar"], "cn", "{item}");

        // job_modify without `calendar` keeps it; `calendar=none` removes it.
        let m = c.post("job_modify", job("cron", "report", "0 0 9 * * sat", json!({}))).await;
        assert_eq!(m.stat, "OK", "{:?}", m.reason);
        let d = c.post("job_show", json!({"job_id": "report"})).await.data().clone();
        assert_eq!((d["nexttime"].as_str(), d["calendar"].as_str()), (Some("2026-10-10 09:00:00"), Some("cn")), "{d}");
        let m = c.post("job_modify", job("cron", "report", "0 0 9 * * sat", json!({"calendar": "none"}))).await;
        assert_eq!(m.stat, "OK", "{:?}", m.reason);
        let d = c.post("job_show", json!({"job_id": "report"})).await.data().clone();
        assert_eq!(d["nexttime"], "2026-09-26 09:00:00", "{d}");
        assert!(d.get("calendar").is_none(), "{d}");

        // The month view.
        let m = c.get("calendar_days", "calendar=cn&month=2026-10").await;
        assert_eq!(m.stat, "OK", "{:?}", m.reason);
        let work = list(&m.data()["workdays"]);
        assert_eq!(work.first().map(String::as_str), Some("2026-10-08"));
        assert!(work.contains(&"2026-10-10".to_owned()) && !work.contains(&"2026-10-05".to_owned()));
        assert_eq!(m.data()["covered"], true);
        let listed = c.get("calendar_list", "").await;
        let cn = &listed.data()["list"][0];
        assert_eq!((cn["name"].as_str(), cn["status"].as_str()), (Some("cn"), Some("loaded")), "{cn}");
        assert!(cn["years"].as_array().unwrap().contains(&json!(2020)), "{cn}");
        s.stop().await;
    }
}

#[tokio::test]
async fn bad_calendars_are_refused_and_change_nothing() {
    for (store, _db) in stores("calbad").await {
        let s = cn_server(store).await;
        let c = &s.client;
        for (trigger, rule, calendar, says) in [
            ("cron", "0 0 9 * * *", "us", "calendar \"us\" is not loaded (calendars: cn)"),
            ("cron", "0 0 9 * * *", "cn:holiday", "not NAME, NAME:work or NAME:rest"),
            ("cron", "0 0 9 * * *", "../cn", "not NAME"),
            ("date", "2026-10-01 09:00:00", "cn", "not to a date job"),
        ] {
            let a = c.post("job_add", job(trigger, "bad", rule, json!({"calendar": calendar}))).await;
            assert_eq!(a.stat, "ERR", "{calendar}");
            let reason = a.reason.unwrap_or_default();
            assert!(reason.contains(says), "{calendar}: {reason}");
            assert_eq!(c.post("job_show", json!({"job_id": "bad"})).await.stat, "ERR", "nothing stored");
        }
        let a = c.get("calendar_days", "calendar=cn&month=2026-13").await;
        assert_eq!(a.stat, "ERR_BAD_PARAMS", "{:?}", a.reason);
        let a = c.get("calendar_days", "calendar=nope&month=2026-10").await;
        assert_eq!(a.stat, "ERR", "{:?}", a.reason);
        // A job whose calendar cannot apply to the new trigger: refused, the job unchanged.
        assert_eq!(c.post("job_add", job("cron", "keep", "0 0 9 * * *", json!({"calendar": "cn"}))).await.stat, "OK");
        let a = c.post("job_modify", job("date", "keep", "2026-10-01 09:00:00", json!({}))).await;
        assert_eq!(a.stat, "ERR", "{:?}", a.reason);
        assert_eq!(c.post("job_show", json!({"job_id": "keep"})).await.data()["job_trigger"], "cron");
        s.stop().await;
    }
}

#[tokio::test]
async fn a_year_past_the_data_falls_back_to_monday_to_friday_and_says_so() {
    // The clock in 2027, which the shipped file does not cover (its notice was not out).
    let clock = ruqi::clock::ManualClock::new(chrono::Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    let s = TestServer::start(ServerOptions {
        clock: Some(clock),
        calendars: vec![("cn", shipped_cn())],
        ..Default::default()
    })
    .await;
    let c = &s.client;
    assert_eq!(c.post("job_add", job("cron", "y27", "0 0 9 * * *", json!({"calendar": "cn"}))).await.stat, "OK");
    let d = c.post("job_show", json!({"job_id": "y27"})).await.data().clone();
    // 2027-01-01 is a Friday: a working day by the fallback (it will be a holiday once the year is added).
    assert_eq!(d["nexttime"], "2027-01-01 09:00:00", "{d}");
    let note = d["calendar_note"].as_str().unwrap_or_default();
    assert!(note.contains("no data for 2027") && note.contains("cn.toml"), "{d}");
    let m = c.get("calendar_days", "calendar=cn&month=2027-01").await;
    assert_eq!(m.data()["covered"], false, "{}", m.text);
    assert!(m.data()["note"].as_str().unwrap_or_default().contains("no data for 2027"));
    s.stop().await;
}

/// A calendar file that makes `rest` a day off (listed as a holiday when it is a weekday) and
/// `work` a working day (listed as an adjusted day when it falls on a weekend).
fn calendar_file(rest: Option<NaiveDate>, work: Option<NaiveDate>) -> String {
    let mut years = std::collections::BTreeMap::<i32, (Vec<String>, Vec<String>)>::new();
    let weekend = |d: NaiveDate| matches!(d.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun);
    if let Some(d) = rest.filter(|d| !weekend(*d)) {
        years.entry(d.year()).or_default().0.push(format!("\"{d}\""));
    }
    if let Some(d) = work.filter(|d| weekend(*d)) {
        years.entry(d.year()).or_default().1.push(format!("\"{d}\""));
    }
    let mut text = String::from("description = \"test\"\nsource = \"this test\"\n");
    let today = chrono::Utc::now().year();
    for y in today - 1..=today + 1 {
        let (h, w) = years.remove(&y).unwrap_or_default();
        text.push_str(&format!("[years.{y}]\nholidays = [{}]\nworkdays = [{}]\n", h.join(", "), w.join(", ")));
    }
    text
}

/// Today in UTC (the test nodes run in UTC), after waiting for midnight when it is less than two
/// minutes away (the test must not straddle two days).
async fn today_utc() -> NaiveDate {
    let now = chrono::Utc::now();
    let midnight = now.date_naive().succ_opt().unwrap().and_hms_opt(0, 0, 1).unwrap().and_utc();
    if midnight - now < chrono::Duration::minutes(2) {
        tokio::time::sleep((midnight - now).to_std().unwrap_or_default()).await;
    }
    chrono::Utc::now().date_naive()
}

#[tokio::test]
async fn runs_fire_only_on_admitted_days_and_a_reload_takes_effect() {
    for (store, _db) in stores("calrun").await {
        let today = today_utc().await;
        let s = TestServer::start(ServerOptions {
            store,
            timezone: "UTC",
            calendars: vec![("t", calendar_file(Some(today), None))],
            ..Default::default()
        })
        .await;
        let c = &s.client;
        let add = |id: &'static str, cal: &'static str| {
            let c = c.clone();
            async move {
                let a = c.post("job_add", job("interval", id, "1s", json!({"calendar": cal}))).await;
                assert_eq!(a.stat, "OK", "{id}: {:?}", a.reason);
            }
        };
        add("work", "t").await;
        add("rest", "t:rest").await;
        // Today is a rest day: the rest-day job runs, the working-day one waits for another day.
        assert!(c.wait_history("rest", 2, Duration::from_secs(10)).await.len() >= 2, "the rest-day job runs");
        assert!(c.history("work").await.is_empty(), "no run on a rest day");
        let next = c.post("job_show", json!({"job_id": "work"})).await.data()["nexttime"].as_str().unwrap().to_owned();
        assert!(next.as_str() >= format!("{} 00:00:00", today.succ_opt().unwrap()).as_str(), "{next}");

        // Today becomes a working day: the working-day job's next run moves to now, and it runs;
        // the rest-day job stops.
        std::fs::write(s.calendars_dir().join("t.toml"), calendar_file(None, Some(today))).unwrap();
        let rows = c.wait_history("work", 2, Duration::from_secs(15)).await;
        assert!(rows.len() >= 2, "the reload made today a working day: {rows:?}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let rest_runs = c.history("rest").await.len();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(c.history("rest").await.len(), rest_runs, "the rest-day job no longer runs today");

        // A broken file is refused, listed with its error, and the last good version stays.
        std::fs::write(s.calendars_dir().join("t.toml"), "[years.2026]\nholidays = [\"2026-02-30\"]\n").unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let listed = loop {
            let l = c.get("calendar_list", "").await;
            if !l.data()["list"][0]["error"].is_null() || tokio::time::Instant::now() > deadline {
                break l;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let t = &listed.data()["list"][0];
        assert_eq!(t["status"], "loaded", "the last good version stays: {t}");
        assert!(t["error"].as_str().unwrap_or_default().contains("2026-02-30"), "{t}");
        let before = c.history("work").await.len();
        let rows = c.wait_history("work", before + 2, Duration::from_secs(10)).await;
        assert!(rows.len() >= before + 2, "still a working day under the last good version");
        s.stop().await;
    }
}

#[tokio::test]
async fn nodes_in_different_zones_agree_on_every_job() {
    let db = MysqlDb::create("calzones").await;
    let start = |tz: &'static str| {
        TestServer::start(ServerOptions { store: Some(db.url.clone()), timezone: tz, ..Default::default() })
    };
    let (shanghai, new_york) = (start("Asia/Shanghai").await, start("America/New_York").await);
    let (a, b) = (&shanghai.client, &new_york.client);
    let add = a
        .post(
            "job_add",
            job("cron", "berlin", "0 30 9 * * *", json!({"timezone": "Europe/Berlin", "calendar": "none"})),
        )
        .await;
    // `none` with no calendars folder: no calendar, accepted.
    assert_eq!(add.stat, "OK", "{:?}", add.reason);
    let (da, db_) = (
        a.post("job_show", json!({"job_id": "berlin"})).await.data().clone(),
        b.post("job_show", json!({"job_id": "berlin"})).await.data().clone(),
    );
    assert_eq!(da, db_, "both nodes show the same times");
    assert!(da["next_run_time_rfc3339"].as_str().unwrap().contains("T09:30:00+0"), "{da}");

    // A job added without a zone keeps the zone of the node that added it (as 1.x's pickled trigger
    // kept its scheduler's): both nodes read its rule there, and show 1.x's keys only.
    assert_eq!(b.post("job_add", job("cron", "home", "0 0 9 * * *", json!({}))).await.stat, "OK");
    let (ha, hb) = (
        a.post("job_show", json!({"job_id": "home"})).await.data().clone(),
        b.post("job_show", json!({"job_id": "home"})).await.data().clone(),
    );
    assert_eq!(ha, hb, "both nodes show the same times");
    assert!(ha["nexttime"].as_str().unwrap().ends_with(" 09:00:00"), "{ha}");
    assert!(ha.get("timezone").is_none(), "{ha}");
    let listed = a.get("job_list", "job_id=home").await.data()["list"][0].clone();
    assert_eq!(listed["next_run_time"], hb["nexttime"], "{listed}");
    // Modified through the other node, it keeps its zone.
    assert_eq!(a.post("job_modify", job("cron", "home", "0 0 10 * * *", json!({}))).await.stat, "OK");
    let hb = b.post("job_show", json!({"job_id": "home"})).await.data().clone();
    // (read in New York, the adding node's zone, though the Shanghai node changed it)
    assert!(hb["nexttime"].as_str().unwrap().ends_with(" 10:00:00"), "{hb}");

    // A date job in Berlin's local time, two seconds ahead, runs once, at that instant, whichever
    // node takes it.
    let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    let at = (chrono::Utc::now() + chrono::Duration::seconds(3)).with_timezone(&berlin);
    let rule = at.format("%Y-%m-%d %H:%M:%S").to_string();
    let add = b.post("job_add", job("date", "once", &rule, json!({"timezone": "Europe/Berlin"}))).await;
    assert_eq!(add.stat, "OK", "{:?}", add.reason);
    let rows = a.wait_history("once", 1, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rows_now = a.history("once").await;
    assert_eq!((rows.len(), rows_now.len()), (1, 1), "exactly one run: {rows_now:?}");
    // History times are in the node's zone (Shanghai for `a`): the run ended at or after its time.
    let ended = chrono::NaiveDateTime::parse_from_str(rows[0]["c_time"].as_str().unwrap(), "%Y-%m-%d %H:%M:%S")
        .unwrap()
        .and_local_timezone(chrono_tz::Asia::Shanghai)
        .unwrap();
    assert!(ended.timestamp() >= at.timestamp(), "ran at {ended}, due at {at}");
    shanghai.stop().await;
    new_york.stop().await;
}

#[tokio::test]
async fn a_file_changed_while_the_node_was_down_is_followed_at_start() {
    let holiday = "[years.2026]\nholidays = [\"2026-09-25\"]\n";
    let mut s = TestServer::start(ServerOptions {
        clock: Some(before_national_day()),
        calendars: vec![("t", holiday.into())],
        ..Default::default()
    })
    .await;
    let add = s.client.post("job_add", job("cron", "nine", "0 0 9 * * *", json!({"calendar": "t"}))).await;
    assert_eq!(add.stat, "OK", "{:?}", add.reason);
    let shown = |c: ruqi_tests::Client| async move {
        c.post("job_show", json!({"job_id": "nine"})).await.data()["nexttime"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(shown(s.client.clone()).await, "2026-09-28 09:00:00", "09-25 is a holiday in the file");
    if let Some(n) = s.node.take() {
        n.shutdown().await.expect("clean shutdown");
    }
    std::fs::write(s.calendars_dir().join("t.toml"), "[years.2026]\n").unwrap();
    s.restart().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut next = shown(s.client.clone()).await;
    while next != "2026-09-25 09:00:00" && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        next = shown(s.client.clone()).await;
    }
    assert_eq!(next, "2026-09-25 09:00:00", "the day is a working day again");
    s.stop().await;
}

/// The shipped `cn.toml` read through the API agrees, day by day from 2020 to 2026, with the
/// Python package it was taken from (`chinese_calendar.is_workday`, installed by `make pytools`).
#[tokio::test]
async fn the_shipped_calendar_agrees_with_chinese_calendar_every_day() {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/pytools/bin/python");
    assert!(python.exists(), "{} is missing: run `make pytools` (make test does)", python.display());
    let script = "import chinese_calendar as c, datetime as d\n\
        day = d.date(2020, 1, 1)\n\
        while day.year < 2027:\n\
        \x20   print(day, int(c.is_workday(day)))\n\
        \x20   day += d.timedelta(days=1)\n";
    let out = std::process::Command::new(&python).args(["-c", script]).output().expect("run python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want: std::collections::BTreeMap<String, bool> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(day, w)| (day.to_owned(), w == "1")))
        .collect();
    assert_eq!(want.len(), 2557, "2020-01-01..2026-12-31");
    let s = cn_server(None).await;
    let mut ours = std::collections::BTreeMap::new();
    for year in 2020..=2026 {
        for month in 1..=12 {
            let a = s.client.get("calendar_days", &format!("calendar=cn&month={year}-{month:02}")).await;
            assert_eq!((a.stat.as_str(), &a.data()["covered"]), ("OK", &json!(true)), "{year}-{month}: {}", a.text);
            for (key, working) in [("workdays", true), ("rest_days", false)] {
                ours.extend(list(&a.data()[key]).into_iter().map(|d| (d, working)));
            }
        }
    }
    let differ: Vec<_> = want.iter().filter(|(d, w)| ours.get(*d) != Some(w)).take(10).collect();
    assert!(differ.is_empty(), "days where chinese_calendar says otherwise (day, its is_workday): {differ:?}");
    s.stop().await;
}
