//! RuQi's HTTP API against a real server (SQLite store, real shell-bridge plugin): routes and
//! aliases, parameter parsing, the envelope, every validation reason, paging, display, auth.

use reqwest::Method;
use ruqi_tests::{ServerOptions, TestServer};
use serde_json::{Value, json};

fn job(trigger: &str, id: &str, cmd: &str, rule: &str) -> Value {
    json!({"job_trigger": trigger, "job_id": id, "job_name": "n", "cmd": cmd, "rule": rule})
}

const HELLO: &str = "bash scripts/hello.sh";

/// A clock the test moves by hand, standing at a fixed instant.
fn manual_clock() -> ruqi::clock::ManualClock {
    use chrono::TimeZone;
    ruqi::clock::ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap())
}

#[tokio::test]
async fn every_route_and_alias_answers_in_the_envelope() {
    let s = TestServer::start(ServerOptions::default()).await;
    let c = &s.client;
    // seed names and 1.x aliases, each on its own job
    for (add, modify, pause, resume, show, remove, id) in [
        ("job_add", "job_modify", "job_pause", "job_resume", "job_show", "job_remove", "a"),
        ("add_job", "modify_job", "pause_job", "resume_job", "get_job", "remove_job", "b"),
    ] {
        assert_eq!(c.post(add, job("cron", id, HELLO, "0 0 3 * * *")).await.stat, "OK");
        assert_eq!(c.post(modify, job("interval", id, HELLO, "5m")).await.stat, "OK");
        let shown = c.post(show, json!({"job_id": id})).await;
        assert_eq!(shown.stat, "OK");
        assert_eq!(shown.data()["rule"], "300s");
        assert_eq!(shown.data()["job_trigger"], "interval");
        assert_eq!(c.post(pause, json!({"job_id": id})).await.stat, "OK");
        assert_eq!(c.post(show, json!({"job_id": id})).await.data()["nexttime"], "None");
        assert_eq!(c.post(resume, json!({"job_id": id})).await.stat, "OK");
        assert_ne!(c.post(show, json!({"job_id": id})).await.data()["nexttime"], "None");
        assert_eq!(c.post(remove, json!({"job_id": id})).await.stat, "OK");
        assert_eq!(c.post(show, json!({"job_id": id})).await.stat, "ERR");
    }
    for list in ["job_list", "get_jobs", "job_history_list", "get_history"] {
        let a = c.get(list, "").await;
        assert_eq!(a.stat, "OK", "{list}");
        assert_eq!(a.data()["total"], 0, "{list}");
    }
    assert_eq!(c.get("job_history_clear", "").await.stat, "OK");
    for st in ["scheduler_status", "status"] {
        let a = c.get(st, "").await;
        assert_eq!(a.stat, "OK");
        let keys: Vec<&String> = a.data().as_object().unwrap().keys().collect();
        assert_eq!(keys, ["wait_seconds", "next_wakeup_time", "check_time"]);
    }
    for w in ["scheduler_wakeup", "wakeup"] {
        assert_eq!(c.post(w, json!({})).await.text, r#"{"stat": "OK"}"#);
        assert_eq!(c.post(w, json!({"x": 1})).await.stat, "ERR_BAD_PARAMS");
    }
    s.stop().await;
}

#[tokio::test]
async fn routing_methods_and_envelope_headers() {
    let s = TestServer::start(ServerOptions::default()).await;
    let c = &s.client;
    // trailing slash, any method
    for m in [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        let a = c.send(m.clone(), "/ruqi/job_list/", None).await;
        assert_eq!((a.status, a.stat.as_str()), (200, "OK"), "{m}");
    }
    // unknown or wrong-case paths: 400, empty body, API Not Found
    for p in ["/ruqi/nope", "/RUQI/job_list", "/ruqi/job_list//", "/other", "/ruqi/"] {
        let a = c.send(Method::GET, p, None).await;
        assert_eq!((a.status, a.text.as_str(), a.reason.as_deref()), (400, "", Some("API Not Found")), "{p}");
    }
    // headers: ruqi on handler answers (OK, ERR), not on ERR_BAD_PARAMS
    let ok = c.get("job_list", "").await;
    assert!(ok.headers.contains_key("ruqi") && ok.headers.contains_key("x-reqid") && ok.headers.contains_key("x-cost"));
    assert_eq!(ok.headers["x-reqid"].len(), 16);
    let err = c.post("job_pause", json!({"job_id": "missing"})).await;
    assert!(err.headers.contains_key("ruqi"));
    assert_eq!(err.text, r#"{"stat": "ERR"}"#);
    let bad = c.get("job_list", "x=1").await;
    assert!(!bad.headers.contains_key("ruqi"));
    assert_eq!(
        (bad.text.as_str(), bad.reason.as_deref()),
        (r#"{"stat": "ERR_BAD_PARAMS"}"#, Some("Param check failed"))
    );
    s.stop().await;
}

#[tokio::test]
async fn parameter_parsing_follows_ruqi() {
    let s = TestServer::start(ServerOptions::default()).await;
    let c = &s.client;
    c.add("interval", "p1", HELLO, "10s").await;
    // query string form, `+` as space in values, blank value = missing
    let a = c.send(Method::GET, "/ruqi/job_show?job_id=p1", None).await;
    assert_eq!(a.stat, "OK");
    let a = c.send(Method::GET, "/ruqi/job_show?job_id=", None).await;
    assert_eq!((a.stat.as_str(), a.reason.as_deref()), ("ERR_BAD_PARAMS", Some("Param check failed")));
    // body wins over query for POST
    let a = c.send(Method::POST, "/ruqi/job_show?job_id=nope", Some(r#"{"job_id": "p1"}"#)).await;
    assert_eq!(a.stat, "OK");
    // the body of PUT/DELETE is ignored
    let a = c.send(Method::PUT, "/ruqi/job_show", Some(r#"{"job_id": "p1"}"#)).await;
    assert_eq!(a.stat, "ERR_BAD_PARAMS");
    // bodies that are not a JSON object
    for body in ["[1]", "null", "job_id=p1", "{", "\"p1\""] {
        let a = c.send(Method::POST, "/ruqi/job_show", Some(body)).await;
        assert_eq!((a.stat.as_str(), a.reason.as_deref()), ("ERR_BAD_PARAMS", Some("Param check exception")), "{body}");
    }
    // an empty POST body is fine
    assert_eq!(c.send(Method::POST, "/ruqi/job_list", Some("")).await.stat, "OK");
    // a repeated query key is refused (RuQi crashed)
    let a = c.send(Method::GET, "/ruqi/job_list?page_size=2&page_size=3", None).await;
    assert_eq!(a.stat, "ERR_BAD_PARAMS");
    // unknown and missing parameters
    for (route, body) in [
        ("job_add", json!({"job_trigger": "interval", "job_id": "x", "job_name": "n", "cmd": HELLO})),
        (
            "job_add",
            json!({"job_trigger": "interval", "job_id": "x", "job_name": "n", "cmd": HELLO, "rule": "1s", "extra": 1}),
        ),
        ("job_show", json!({})),
        ("job_remove", json!({"id": "p1"})),
        ("scheduler_status", json!({"a": 1})),
    ] {
        let a = c.post(route, body).await;
        assert_eq!((a.stat.as_str(), a.reason.as_deref()), ("ERR_BAD_PARAMS", Some("Param check failed")), "{route}");
    }
    s.stop().await;
}

#[tokio::test]
async fn add_validation_reasons_and_nothing_changes() {
    let s = TestServer::start(ServerOptions::default()).await;
    let c = &s.client;
    let cases: Vec<(Value, &str, &str)> = vec![
        (job("crontab", "v", HELLO, "* * * * * *"), "ERR", "Job_trigger not in jobs_map"),
        (job("Cron", "v", HELLO, "* * * * * *"), "ERR", "Job_trigger not in jobs_map"),
        (job("cron", "v", HELLO, "* * * * *"), "ERR", "Job_rule not match"),
        (job("cron", "v", HELLO, "*  * * * * *"), "ERR", "Job_rule not match"),
        (job("interval", "v", HELLO, "10S"), "ERR", "Job_rule not match"),
        (job("interval", "v", HELLO, "1h30m"), "ERR", "Job_rule not match"),
        (job("date", "v", HELLO, "20301216"), "ERR", "Job_rule not match"),
        (job("date", "v", HELLO, "2030/12/16"), "ERR", "Job_rule not match"),
        (job("cron", "v", "sh scripts/hello.sh", "* * * * * *"), "ERR", "(scripts) Cmd does not meet expectations"),
        (job("cron", "v", "python3 scripts/args.py", "* * * * * *"), "ERR", "(scripts) Cmd does not meet expectations"),
        (job("cron", "v", "bash scripts/missing.sh", "* * * * * *"), "ERR", "(scripts) Cmd does not meet expectations"),
        (
            job("cron", "v", "bash scripts/hello.sh; rm -rf /", "* * * * * *"),
            "ERR",
            "(scripts) Cmd does not meet expectations",
        ),
        (
            job("cron", "v", "bash scripts/hello.sh && x", "* * * * * *"),
            "ERR",
            "(scripts) Cmd does not meet expectations",
        ),
        (
            job("cron", "v", "bash scripts/hello.sh || x", "* * * * * *"),
            "ERR",
            "(scripts) Cmd does not meet expectations",
        ),
        (job("cron", "v", "bash", "* * * * * *"), "ERR", "(scripts) Cmd does not meet expectations"),
        // rule shape is checked before the cmd, rule values after it (RuQi's order)
        (job("cron", "v", "sh x", "* * * *"), "ERR", "Job_rule not match"),
        (job("cron", "v", "sh x", "61 * * * * *"), "ERR", "(scripts) Cmd does not meet expectations"),
        // values RuQi answered with ERR_SERVER_EXCEPTION: ERR with a precise reason
        (job("cron", "v", HELLO, "61 * * * * *"), "ERR", "Job_rule not match: second: 61 is out of range 0-59"),
        (job("cron", "v", HELLO, "* * * * * 7"), "ERR", "Job_rule not match: day_of_week: 7 is out of range 0-6"),
        (job("date", "v", HELLO, "2030-13-45"), "ERR", "Job_rule not match: 2030-13-45 is not a valid date"),
        (
            job("interval", "v", HELLO, "99999999999d"),
            "ERR",
            "Job_rule not match: interval: the first run would come after 9999-12-31 23:59:59, the latest time kept",
        ),
        // job_id / job_name problems
        (job("interval", "", HELLO, "1s"), "ERR_BAD_PARAMS", "Param check failed: job_id must not be empty"),
        (
            json!({"job_trigger": "interval", "job_id": 5, "job_name": "n", "cmd": HELLO, "rule": "1s"}),
            "ERR_BAD_PARAMS",
            "Param check failed: job_id must be a string",
        ),
        (
            json!({"job_trigger": "interval", "job_id": "v", "job_name": "", "cmd": HELLO, "rule": "1s"}),
            "ERR_BAD_PARAMS",
            "Param check failed: job_name must not be empty",
        ),
        (
            json!({"job_trigger": "interval", "job_id": "v", "job_name": "n", "cmd": 1, "rule": "1s"}),
            "ERR_BAD_PARAMS",
            "Param check failed: cmd must be a string",
        ),
        (
            json!({"job_trigger": "interval", "job_id": "v", "job_name": "x".repeat(65), "cmd": HELLO, "rule": "1s"}),
            "ERR",
            "job_name is longer than 64 characters",
        ),
        (job("interval", &"x".repeat(256), HELLO, "1s"), "ERR", "job_id is longer than 255 characters"),
        (
            job("cron", "v", HELLO, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25 * * * * *"),
            "ERR",
            "rule is longer than 64 characters",
        ),
    ];
    for (body, stat, reason) in cases {
        let a = c.post("job_add", body.clone()).await;
        assert_eq!((a.stat.as_str(), a.reason.as_deref()), (stat, Some(reason)), "{body}");
        assert_eq!(a.status, 200);
    }
    assert_eq!(c.get("job_list", "").await.data()["total"], 0, "refused adds changed nothing");
    // a duplicate id: ERR naming the id, the first job untouched
    c.add("cron", "dup", HELLO, "0 0 3 * * *").await;
    let a = c.post("job_add", job("interval", "dup", HELLO, "1s")).await;
    assert_eq!((a.stat.as_str(), a.reason.as_deref()), ("ERR", Some("Conflicting job id: dup already exists")));
    assert_eq!(c.post("job_show", json!({"job_id": "dup"})).await.data()["rule"], "0 0 3 * * *");
    // a refused modify changes nothing either
    let a = c.post("job_modify", job("cron", "dup", HELLO, "bad")).await;
    assert_eq!(a.stat, "ERR");
    assert_eq!(c.post("job_show", json!({"job_id": "dup"})).await.data()["rule"], "0 0 3 * * *");
    s.stop().await;
}

#[tokio::test]
async fn rules_are_normalised_and_quirks_kept() {
    let s = TestServer::start(ServerOptions { timezone: "UTC", ..Default::default() }).await;
    let c = &s.client;
    let cases = [
        ("interval", "1m", "60s"),
        ("interval", "2h", "7200s"),
        ("interval", "1d", "86400s"),
        ("interval", "0s", "1s"),
        ("interval", "10 s", "10s"),
        ("interval", "-5s", "5s"),
        ("cron", "00 05 * * * *", "0 5 * * * *"),
        ("cron", "0 0 0 * JAN-mar MON-fri", "0 0 0 * jan-mar mon-fri"),
        ("cron", "1-1 * * last * *", "1 * * last * *"),
        ("date", "2030-12-16", "2030-12-16 00:00:00"),
        ("date", "2030-1-2 3:4:5", "2030-01-02 03:04:05"),
        ("date", "2030-12-16T18:03:17", "2030-12-16 18:03:17"),
        ("date", "2030-12-16 18:05:17.682862", "2030-12-16 18:05:17.682862"),
        ("date", "2030-12-16 18:03:17xyz", "2030-12-16 18:03:17"),
    ];
    for (i, (trigger, rule, want)) in cases.iter().enumerate() {
        let id = format!("n{i}");
        c.add(trigger, &id, HELLO, rule).await;
        assert_eq!(c.post("job_show", json!({"job_id": id})).await.data()["rule"], *want, "{rule}");
    }
    // a cron that can never fire is accepted, stored paused, removed on resume
    c.add("cron", "never", HELLO, "0 0 0 31 2 *").await;
    let shown = c.post("job_show", json!({"job_id": "never"})).await;
    assert_eq!(shown.data()["nexttime"], "None");
    let listed = c.get("job_list", "job_id=never").await;
    assert_eq!(listed.data()["list"][0]["next_run_time"], Value::Null);
    assert_eq!(c.post("job_resume", json!({"job_id": "never"})).await.stat, "OK");
    assert_eq!(c.post("job_show", json!({"job_id": "never"})).await.stat, "ERR");
    // job_name null takes RuQi's function name
    let a = c
        .post(
            "job_add",
            json!({"job_trigger": "cron", "job_id": "nn", "job_name": null, "cmd": HELLO, "rule": "0 0 3 * * *"}),
        )
        .await;
    assert_eq!(a.stat, "OK");
    assert_eq!(c.post("job_show", json!({"job_id": "nn"})).await.data()["job_name"], "run_cmd");
    s.stop().await;
}

#[tokio::test]
async fn show_list_fields_and_time_formats() {
    let s = TestServer::start(ServerOptions { timezone: "Asia/Shanghai", ..Default::default() }).await;
    let c = &s.client;
    c.add("date", "d1", HELLO, "2030-12-16 18:05:17.682862").await;
    let shown = c.post("job_show", json!({"job_id": "d1"})).await;
    assert!(shown.text.starts_with(r#"{"stat": "OK", "data": {"nexttime": "2030-12-16 18:05:17.682862", "job_id": "d1", "cmd": "bash scripts/hello.sh", "rule": "#), "{}", shown.text);
    let keys: Vec<&String> = shown.data().as_object().unwrap().keys().collect();
    assert_eq!(keys, ["nexttime", "job_id", "cmd", "rule", "job_trigger", "job_name"]);
    let list = c.get("job_list", "").await;
    let item = &list.data()["list"][0];
    let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["next_run_time", "job_id", "c_time", "cmd", "rule", "job_trigger", "job_name"]);
    assert_eq!(item["next_run_time"], "2030-12-16 18:05:17", "seconds, truncated");
    assert_eq!(item["c_time"].as_str().unwrap().len(), 19);
    // non-ASCII is written as \u escapes, as Python's json.dumps does
    let a = c
        .post(
            "job_add",
            json!({"job_trigger": "cron", "job_id": "如期", "job_name": "名", "cmd": HELLO, "rule": "0 0 3 * * *"}),
        )
        .await;
    assert_eq!(a.stat, "OK");
    let shown = c.post("job_show", json!({"job_id": "如期"})).await;
    assert!(shown.text.contains(r#""job_id": "\u5982\u671f""#), "{}", shown.text);
    s.stop().await;
}

#[tokio::test]
async fn job_list_filters_and_paging() {
    let clock = manual_clock();
    let s = TestServer::start(ServerOptions { clock: Some(clock.clone()), ..Default::default() }).await;
    let c = &s.client;
    for i in 0..7 {
        let name = if i % 2 == 0 { "even" } else { "odd" };
        let a = c.post("job_add", json!({"job_trigger": "cron", "job_id": format!("j{i}"), "job_name": name, "cmd": HELLO, "rule": "0 0 3 * * *"})).await;
        assert_eq!(a.stat, "OK");
        clock.advance(chrono::Duration::seconds(1)); // each job a later c_time
    }
    let ids = |a: &ruqi_tests::Answer| -> Vec<String> {
        a.data()["list"].as_array().unwrap().iter().map(|j| j["job_id"].as_str().unwrap().to_owned()).collect()
    };
    // newest first; no page_index = everything (page_size alone is ignored)
    let all = c.get("job_list", "page_size=2").await;
    assert_eq!(all.data()["total"], 7);
    assert_eq!(ids(&all), ["j6", "j5", "j4", "j3", "j2", "j1", "j0"]);
    let cases = [
        ("page_index=1&page_size=3", vec!["j6", "j5", "j4"]),
        ("page_index=0&page_size=3", vec!["j6", "j5", "j4"]),
        ("page_index=3&page_size=3", vec!["j0"]),
        ("page_index=4&page_size=3", vec![]),
        ("page_index=2&page_size=0", vec!["j6", "j5", "j4", "j3", "j2", "j1", "j0"]),
        ("page_index=1", vec!["j6", "j5", "j4", "j3", "j2", "j1", "j0"]),
        ("job_name=odd", vec!["j5", "j3", "j1"]),
        ("job_name=odd&job_id=j3", vec!["j3"]),
        ("job_id=j3&job_name=even", vec![]),
    ];
    for (q, want) in cases {
        let a = c.get("job_list", q).await;
        assert_eq!(a.stat, "OK", "{q}");
        assert_eq!(ids(&a), want, "{q}");
    }
    assert_eq!(c.get("job_list", "job_name=odd&page_index=1&page_size=1").await.data()["total"], 3);
    // JSON numbers work as well as strings
    assert_eq!(ids(&c.post("job_list", json!({"page_index": 2, "page_size": 3})).await), ["j3", "j2", "j1"]);
    for q in ["page_index=-1", "page_index=abc", "page_size=x&page_index=1", "display=html"] {
        assert_eq!(c.get("job_list", q).await.stat, "ERR_BAD_PARAMS", "{q}");
    }
    // display=text: a plain-text table
    let t = c.get("job_list", "display=text&job_name=odd").await;
    assert_eq!(t.headers["content-type"], "text/plain; charset=utf-8");
    assert!(t.text.starts_with("job_id  job_name  job_trigger"), "{}", t.text);
    assert!(t.text.contains("j5") && t.text.ends_with("total: 3\n"), "{}", t.text);
    s.stop().await;
}

#[tokio::test]
async fn pause_resume_modify_are_idempotent_and_recompute() {
    let s = TestServer::start(ServerOptions::default()).await;
    let c = &s.client;
    c.add("cron", "m", HELLO, "0 0 3 * * *").await;
    for _ in 0..3 {
        assert_eq!(c.post("job_pause", json!({"job_id": "m"})).await.stat, "OK", "pause twice in one second");
    }
    // modify keeps a paused job paused
    assert_eq!(c.post("job_modify", job("interval", "m", HELLO, "5m")).await.stat, "OK");
    assert_eq!(c.post("job_show", json!({"job_id": "m"})).await.data()["nexttime"], "None");
    for _ in 0..3 {
        assert_eq!(c.post("job_resume", json!({"job_id": "m"})).await.stat, "OK", "resume twice in one second");
    }
    for _ in 0..2 {
        assert_eq!(c.post("job_modify", job("interval", "m", HELLO, "5m")).await.stat, "OK", "identical modify");
    }
    // modify recomputes the next run time from the new trigger (RuQi kept the old one)
    c.add("cron", "far", HELLO, "0 0 3 1 1 *").await;
    assert_eq!(c.post("job_modify", job("interval", "far", HELLO, "1h")).await.stat, "OK");
    let next = c.get("job_list", "job_id=far").await.data()["list"][0]["next_run_time"].as_str().unwrap().to_owned();
    let next = chrono::NaiveDateTime::parse_from_str(&next, "%Y-%m-%d %H:%M:%S").unwrap();
    let now = chrono::Utc::now().with_timezone(&chrono_tz_shanghai()).naive_local();
    let ahead = (next - now).num_seconds();
    assert!((3590..=3601).contains(&ahead), "next run in {ahead}s, want about 1h");
    // unknown ids: ERR with RuQi's one-line reason, for every id route
    for route in ["job_pause", "job_resume", "job_remove", "job_show"] {
        let a = c.post(route, json!({"job_id": "ghost"})).await;
        assert_eq!(
            (a.stat.as_str(), a.reason.as_deref()),
            ("ERR", Some("u'No job by the id of ghost was found'")),
            "{route}"
        );
    }
    let a = c.post("job_modify", job("interval", "ghost", HELLO, "1s")).await;
    assert_eq!((a.stat.as_str(), a.reason.as_deref()), ("ERR", Some("u'No job by the id of ghost was found'")));
    s.stop().await;
}

fn chrono_tz_shanghai() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).unwrap()
}

#[tokio::test]
async fn bearer_tokens_guard_every_route() {
    let s =
        TestServer::start(ServerOptions { tokens: vec!["t0ken".into(), "other".into()], ..Default::default() }).await;
    let anon = &s.client;
    for (route, q) in [("job_list", ""), ("scheduler_status", ""), ("job_show", "job_id=x"), ("get_jobs", "")] {
        let a = anon.get(route, q).await;
        assert_eq!((a.status, a.text.as_str()), (401, r#"{"stat": "ERR_UNAUTHORIZED"}"#), "{route}");
    }
    let a = anon.with_token("wrong").get("job_list", "").await;
    assert_eq!(a.status, 401);
    let a = anon.with_token("wrong").post("job_add", job("interval", "x", HELLO, "1s")).await;
    assert_eq!(a.status, 401);
    let ok = anon.with_token("other");
    assert_eq!(ok.get("job_list", "").await.data()["total"], 0, "the refused add changed nothing");
    assert_eq!(ok.post("job_add", job("interval", "x", HELLO, "1h")).await.stat, "OK");
    assert_eq!(anon.with_token("t0ken").get("job_list", "").await.data()["total"], 1);
    // the scheme is case-insensitive (RFC 7235)
    for value in ["Bearer t0ken", "bearer t0ken", "BEARER t0ken", "BeArEr  other"] {
        let a = anon.send_raw(Method::GET, "/ruqi/job_list", &[("authorization", value)], None).await;
        assert_eq!((a.status, a.stat.as_str()), (200, "OK"), "{value}");
    }
    for value in ["Basic t0ken", "t0ken", "Bearer", "Bearer t0ke", "Bearert0ken"] {
        let a = anon.send_raw(Method::GET, "/ruqi/job_list", &[("authorization", value)], None).await;
        assert_eq!(a.status, 401, "{value}");
    }
    s.stop().await;
}

#[tokio::test]
async fn read_only_tokens_read_and_change_nothing() {
    let s = TestServer::start(ServerOptions {
        tokens: vec!["admin".into()],
        read_tokens: vec!["viewer".into()],
        ..Default::default()
    })
    .await;
    let admin = s.client.with_token("admin");
    assert_eq!(admin.post("job_add", job("interval", "x", HELLO, "1h")).await.stat, "OK");
    let viewer = s.client.with_token("viewer");
    for (route, q) in [
        ("job_list", ""),
        ("get_jobs", ""),
        ("job_show", "job_id=x"),
        ("job_history_list", ""),
        ("scheduler_status", ""),
    ] {
        let a = viewer.get(route, q).await;
        assert_eq!((a.status, a.stat.as_str()), (200, "OK"), "{route}");
    }
    let writes = [
        ("job_add", job("interval", "y", HELLO, "1h")),
        ("job_modify", job("interval", "x", HELLO, "2h")),
        ("job_pause", json!({"job_id": "x"})),
        ("job_resume", json!({"job_id": "x"})),
        ("job_remove", json!({"job_id": "x"})),
        ("job_history_clear", json!({})),
        ("scheduler_wakeup", json!({})),
        ("add_job", job("interval", "y", HELLO, "1h")),
    ];
    for (route, body) in writes {
        let a = viewer.post(route, body).await;
        assert_eq!((a.status, a.text.as_str()), (403, r#"{"stat": "ERR_FORBIDDEN"}"#), "{route}");
        assert!(a.reason.unwrap().contains("read-only"), "{route}");
    }
    let shown = admin.post("job_show", json!({"job_id": "x"})).await;
    assert_eq!(
        (shown.data()["rule"].as_str(), admin.get("job_list", "").await.data()["total"].as_u64()),
        (Some("3600s"), Some(1))
    );
    s.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_in_the_envelope_after_the_token() {
    let s =
        TestServer::start(ServerOptions { tokens: vec!["t".into()], max_body_bytes: Some(4096), ..Default::default() })
            .await;
    let c = s.client.with_token("t");
    let mut big = job("interval", "big", HELLO, "1h");
    big["job_name"] = json!("x".repeat(5000));
    let a = c.post("job_add", big.clone()).await;
    assert_eq!((a.status, a.text.as_str()), (200, r#"{"stat": "ERR_BAD_PARAMS"}"#));
    assert!(a.reason.as_deref().unwrap().contains("larger than 4096 bytes (setting max-body-bytes)"), "{:?}", a.reason);
    assert_eq!(a.headers.get("content-type").unwrap(), "application/json");
    // no token: refused before the body is looked at
    let a = s.client.post("job_add", big).await;
    assert_eq!(a.status, 401);
    // a body without Content-Length (chunked) is cut at the limit too
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(b"{\"job_name\": \"".to_vec()), Ok(vec![b'x'; 8000]), Ok(b"\"}".to_vec())];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let resp = reqwest::Client::new()
        .post(format!("http://{}/ruqi/job_add", s.node.as_ref().unwrap().addr))
        .bearer_auth("t")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), r#"{"stat": "ERR_BAD_PARAMS"}"#);
    assert_eq!(c.get("job_list", "").await.data()["total"], 0, "nothing was added");
    // at the limit is fine
    assert_eq!(c.post("job_add", job("interval", "small", HELLO, "1h")).await.stat, "OK");
    s.stop().await;
}

#[tokio::test]
async fn dates_the_store_cannot_hold_exactly_are_refused() {
    let s = TestServer::start(ServerOptions { timezone: "UTC", ..Default::default() }).await;
    let c = &s.client;
    let a = c.post("job_add", job("date", "far", HELLO, "9999-12-31 23:59:59.999999")).await;
    assert_eq!(a.stat, "ERR");
    assert!(a.reason.unwrap().contains("cannot be stored exactly"));
    let a = c.post("job_add", job("date", "year0", HELLO, "0000-06-15 12:00:00")).await;
    assert_eq!(a.stat, "ERR");
    for (id, rule) in [("far", "9999-12-31 23:59:59"), ("micro", "2106-02-07 06:28:15.999999")] {
        assert_eq!(c.post("job_add", job("date", id, HELLO, rule)).await.stat, "OK", "{rule}");
        let shown = c.post("job_show", json!({"job_id": id})).await;
        assert_eq!((shown.data()["nexttime"].as_str(), shown.data()["rule"].as_str()), (Some(rule), Some(rule)));
        let listed = c.get("job_list", &format!("job_id={id}")).await;
        assert_eq!(listed.data()["list"][0]["next_run_time"].as_str(), Some(&rule[..19]));
    }
    s.stop().await;
}

#[tokio::test]
async fn history_filters_paging_display_and_clear() {
    let clock = manual_clock();
    let s = TestServer::start(ServerOptions { clock: Some(clock.clone()), ..Default::default() }).await;
    let c = &s.client;
    c.add("interval", "ok", HELLO, "1s").await;
    c.add("interval", "bad", "bash scripts/fail.sh", "1s").await;
    // three fire times each, one clock second at a time
    for n in 1..=3 {
        clock.advance(chrono::Duration::seconds(1));
        for job in ["ok", "bad"] {
            assert_eq!(c.wait_history(job, n, std::time::Duration::from_secs(20)).await.len(), n, "{job}");
        }
    }
    assert_eq!(c.post("job_pause", json!({"job_id": "ok"})).await.stat, "OK");
    assert_eq!(c.post("job_pause", json!({"job_id": "bad"})).await.stat, "OK");
    clock.advance(chrono::Duration::seconds(1)); // every row is now in the past
    let (ok_rows, bad_rows) = (c.history("ok").await, c.history("bad").await);
    assert_eq!((ok_rows.len(), bad_rows.len()), (3, 3), "exactly one row per fire time, none after the pause");

    let row = &bad_rows[0];
    let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
    // RuQi's keys in RuQi's order, then the run's (an extension).
    assert_eq!(
        keys,
        [
            "cmd_cost",
            "job_name",
            "job_id",
            "cmd_output",
            "c_time",
            "cmd",
            "id",
            "scheduler_name",
            "cmd_is_success",
            "run_id",
            "fire_time",
            "started",
            "ended",
            "attempt",
            "trigger",
            "outcome"
        ]
    );
    assert_eq!((row["trigger"].as_str(), row["outcome"].as_str()), (Some("scheduled"), Some("failed")));
    assert_eq!(row["cmd_is_success"], false);
    assert_eq!(row["cmd_output"], "to stdout\nto stderr", "stderr merged, trailing newline stripped");
    assert!(row["cmd_cost"].is_f64());
    let node = s.node.as_ref().unwrap().name.clone();
    assert_eq!(row["scheduler_name"], node.as_str());
    assert_eq!(ok_rows[0]["cmd_is_success"], true);
    assert!(ok_rows[0]["cmd_output"].as_str().unwrap().starts_with("hello from RuQi at "));

    // pages by default (15), filters
    let all = c.get("job_history_list", "").await;
    let total = all.data()["total"].as_u64().unwrap();
    assert_eq!(total, 6);
    assert_eq!(all.data()["list"].as_array().unwrap().len() as u64, total.min(15));
    let only_failed = c.get("job_history_list", "is_success=0&page_size=0").await;
    assert!(only_failed.data()["list"].as_array().unwrap().iter().all(|r| r["cmd_is_success"] == false));
    assert_eq!(only_failed.data()["total"].as_u64().unwrap() as usize, c.history("bad").await.len());
    for q in ["is_success=true", "is_success=1"] {
        let a = c.get("job_history_list", &format!("{q}&page_size=0")).await;
        assert!(a.data()["list"].as_array().unwrap().iter().all(|r| r["job_id"] == "ok"), "{q}");
    }
    assert_eq!(
        c.get("job_history_list", &format!("scheduler_name={node}")).await.data()["total"].as_u64().unwrap(),
        total
    );
    assert_eq!(c.get("job_history_list", "scheduler_name=elsewhere").await.data()["total"], 0);
    assert_eq!(c.get("job_history_list", "is_success=maybe").await.stat, "ERR_BAD_PARAMS");
    let page2 = c.get("job_history_list", "job_id=ok&page_index=2&page_size=1").await;
    assert_eq!(page2.data()["list"][0]["id"], c.history("ok").await[1]["id"]);
    let text = c.get("job_history_list", "display=text").await;
    assert!(text.text.starts_with("id  ") && text.text.contains("FAILED"), "{}", text.text);

    // clear: nothing is older than a day; retention_day=0 clears, limit_num bounds it
    let kept = c.get("job_history_clear", "").await;
    assert_eq!(kept.data()["deleted"], 0);
    let bad_n = c.history("bad").await.len() as u64;
    let one = c.post("job_history_clear", json!({"job_id": "bad", "retention_day": 0, "limit_num": 1})).await;
    assert_eq!(one.data()["deleted"], 1);
    assert_eq!(c.history("bad").await.len() as u64, bad_n - 1);
    let rest = c.post("job_history_clear", json!({"job_name": "t", "retention_day": "0"})).await;
    assert_eq!(rest.data()["deleted"].as_u64().unwrap(), total - 1);
    assert_eq!(c.get("job_history_list", "").await.data()["total"], 0);
    assert_eq!(c.get("job_history_clear", "retention_day=-1").await.stat, "ERR_BAD_PARAMS");
    s.stop().await;
}

/// Per-job time zones (extension): a job given `timezone` reads its rule there, prints its times
/// there and says so (`timezone`, `next_run_time_rfc3339`); a job without one is exactly as
/// in 1.x; an unknown zone changes nothing; job_modify without `timezone` keeps the job's zone.
#[tokio::test]
async fn a_job_may_have_its_own_time_zone() {
    let s = TestServer::start(ServerOptions { clock: Some(manual_clock()), ..Default::default() }).await;
    let c = &s.client;
    // the node is in Asia/Shanghai; 2026-11-24 10:00 UTC is 05:00 in New York (EST)
    let mut zoned = job("cron", "ny", HELLO, "0 0 9 * * *");
    zoned["timezone"] = json!("America/New_York");
    assert_eq!(c.post("job_add", zoned.clone()).await.stat, "OK");
    let shown = c.post("job_show", json!({"job_id": "ny"})).await;
    let d = shown.data();
    assert_eq!(d["nexttime"], "2026-11-24 09:00:00", "{d}");
    assert_eq!(d["timezone"], "America/New_York");
    assert_eq!(d["next_run_time_rfc3339"], "2026-11-24T09:00:00-05:00");
    let listed = c.get("job_list", "job_id=ny").await;
    let item = &listed.data()["list"][0];
    assert_eq!(item["next_run_time"], "2026-11-24 09:00:00", "{item}");
    assert_eq!(item["c_time"], "2026-11-24 05:00:00");
    assert_eq!(item["timezone"], "America/New_York");

    // a job without a zone: the node's zone, and 1.x's keys only
    assert_eq!(c.post("job_add", job("cron", "sh", HELLO, "0 0 9 * * *")).await.stat, "OK");
    let d = c.post("job_show", json!({"job_id": "sh"})).await.data().clone();
    assert_eq!(d["nexttime"], "2026-11-25 09:00:00", "{d}");
    let keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["nexttime", "job_id", "cmd", "rule", "job_trigger", "job_name"]);

    // modify without a zone keeps it; with another zone moves the rule there
    assert_eq!(c.post("job_modify", job("cron", "ny", HELLO, "0 30 9 * * *")).await.stat, "OK");
    let d = c.post("job_show", json!({"job_id": "ny"})).await.data().clone();
    assert_eq!(
        (d["nexttime"].as_str(), d["timezone"].as_str()),
        (Some("2026-11-24 09:30:00"), Some("America/New_York"))
    );
    let mut utc = job("cron", "ny", HELLO, "0 30 9 * * *");
    utc["timezone"] = json!("UTC");
    assert_eq!(c.post("job_modify", utc).await.stat, "OK");
    let d = c.post("job_show", json!({"job_id": "ny"})).await.data().clone();
    assert_eq!(d["next_run_time_rfc3339"], "2026-11-25T09:30:00+00:00", "{d}");

    // an unknown zone is refused with its name, and changes nothing
    let mut bad = job("cron", "bad", HELLO, "0 0 9 * * *");
    bad["timezone"] = json!("Mars/Olympus_Mons");
    let a = c.post("job_add", bad).await;
    assert_eq!(a.stat, "ERR_BAD_PARAMS");
    let reason = a.reason.clone().unwrap_or_default();
    assert!(reason.contains("Mars/Olympus_Mons"), "{reason}");
    assert_eq!(c.post("job_show", json!({"job_id": "bad"})).await.stat, "ERR");

    // next fire times in a zone, for the dashboard's form
    let times = c
        .post(
            "job_next_fire_times",
            json!({"job_trigger": "cron", "rule": "0 0 11 * * *", "timezone": "Europe/London", "count": 2}),
        )
        .await;
    assert_eq!(times.data()["list"], json!(["2026-11-24 11:00:00", "2026-11-25 11:00:00"]));
    s.stop().await;
}
