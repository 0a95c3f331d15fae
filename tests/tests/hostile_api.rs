//! Hostile requests against a real server (until the OpenAPI document exists to fuzz from):
//! huge and deeply nested bodies, invalid UTF-8, repeated keys, huge and negative paging,
//! 10,000-character ids, `../`, NUL and SQL metacharacters in every field. Every answer is
//! RuQi's envelope (never a 5xx, never a hang, never a crash), and a refused request changes
//! nothing: the job list and the history are the same before and after it.

use reqwest::Method;
use ruqi_tests::{Answer, Client, ServerOptions, TestServer};
use serde_json::{Value, json};

const HELLO: &str = "bash scripts/hello.sh";
const FIELDS: [&str; 5] = ["job_trigger", "job_id", "job_name", "cmd", "rule"];
const ROUTES: [&str; 11] = [
    "job_add",
    "job_modify",
    "job_remove",
    "job_pause",
    "job_resume",
    "job_show",
    "job_list",
    "job_history_list",
    "job_history_clear",
    "scheduler_status",
    "scheduler_wakeup",
];

/// Strings that break naive code: path traversal, NUL, SQL, quotes, control and wide characters.
fn nasty() -> Vec<String> {
    vec![
        "../../../etc/passwd".into(),
        "a\u{0}b".into(),
        "' OR '1'='1".into(),
        "x'; DROP TABLE ruqi_jobs; --".into(),
        "\" OR \"\"=\"".into(),
        "%00%27%22".into(),
        "\r\nX-Injected: 1".into(),
        "😀\u{202e}如期\u{feff}".into(),
        "x".repeat(10_000),
        " ".into(),
        "\\".into(),
        "${jndi:ldap://127.0.0.1/x}".into(),
    ]
}

/// Everything a request could have changed.
async fn state(c: &Client) -> (Value, Value) {
    let jobs = c.get("job_list", "").await;
    let history = c.get("job_history_list", "page_size=0").await;
    assert_eq!((jobs.stat.as_str(), history.stat.as_str()), ("OK", "OK"));
    (jobs.data().clone(), history.data()["total"].clone())
}

/// The answer is RuQi's: HTTP 200 with a JSON body holding one of its stats, or 400 with an
/// empty body for an unknown path.
fn assert_envelope(what: &str, a: &Answer) {
    assert!(a.status == 200 || a.status == 400, "{what}: HTTP {} {}", a.status, a.text);
    if a.status == 400 {
        assert_eq!(a.reason.as_deref(), Some("API Not Found"), "{what}");
        return;
    }
    let allowed = ["OK", "ERR", "ERR_BAD_PARAMS"];
    assert!(allowed.contains(&a.stat.as_str()), "{what}: stat {:?} ({:?}) body {}", a.stat, a.reason, a.text);
    if a.stat != "OK" {
        assert_eq!(a.body.as_object().map(|o| o.len()), Some(1), "{what}: error bodies hold only stat");
        let reason = a.reason.as_deref().unwrap_or_default();
        assert!(!reason.is_empty() && reason.is_ascii(), "{what}: reason {reason:?}");
    }
}

/// Sends a request that must be refused, and checks it changed nothing.
async fn refused(c: &Client, what: &str, method: Method, path: &str, body: Option<Vec<u8>>) {
    let before = state(c).await;
    let a = c.send_raw(method, path, &[], body).await;
    assert_envelope(what, &a);
    assert_ne!(a.stat, "OK", "{what}: refused");
    assert_eq!(state(c).await, before, "{what}: a refused request changed nothing");
}

#[tokio::test]
async fn hostile_requests_get_the_envelope_and_change_nothing() {
    let s = TestServer::start(ServerOptions::default()).await;
    let c = &s.client;
    // something to protect: a job with history
    c.add("interval", "keep", HELLO, "1h").await;
    c.add("date", "ran", HELLO, "now").await;
    c.wait_history("ran", 1, std::time::Duration::from_secs(20)).await;

    // bodies: too big, too deep, not UTF-8, not an object, truncated, repeated keys
    let deep = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("huge", format!("{{\"job_id\": \"{}\"}}", "x".repeat(2 << 20)).into_bytes()),
        ("deep", deep.into_bytes()),
        ("deep array", format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes()),
        ("invalid utf-8", b"{\"job_id\": \"\xff\xfe\", \"job_trigger\": \"date\"}".to_vec()),
        ("array", b"[1, 2]".to_vec()),
        ("null", b"null".to_vec()),
        ("truncated", b"{\"job_id\": \"a".to_vec()),
        ("form", b"job_id=a&job_trigger=date".to_vec()),
        ("nul bytes", vec![0u8; 4096]),
    ];
    for route in ROUTES {
        for (what, body) in &bodies {
            refused(c, &format!("{route} {what}"), Method::POST, &format!("/ruqi/{route}"), Some(body.clone())).await;
        }
    }

    // queries: repeated keys, unknown keys, huge and negative paging, junk percent-escapes
    let queries = [
        "job_id=a&job_id=b",
        "page_size=2&page_size=3",
        "page_index=-1",
        "page_size=-5&page_index=1",
        "page_index=99999999999999999999999",
        "page_index=abc",
        "page_index=1.5",
        "display=html",
        "is_success=maybe",
        "unknown=1",
        "job_id=%ff%fe%fd&x=%zz",
    ];
    for route in ["job_list", "job_history_list", "get_jobs", "get_history"] {
        for q in queries {
            refused(c, &format!("{route}?{q}"), Method::GET, &format!("/ruqi/{route}?{q}"), None).await;
        }
    }
    // enormous but valid paging is just an empty page
    for q in ["page_index=18446744073709551615&page_size=18446744073709551615", "page_index=4294967296&page_size=1"] {
        let a = c.get("job_history_list", q).await;
        assert_envelope(q, &a);
        assert_eq!((a.stat.as_str(), a.data()["list"].as_array().map(Vec::len)), ("OK", Some(0)), "{q}");
    }

    // every field of add/modify gets every nasty string, the other fields valid
    let valid = json!({"job_trigger": "interval", "job_id": "nasty", "job_name": "n", "cmd": HELLO, "rule": "1h"});
    for field in FIELDS {
        for value in nasty() {
            for route in ["job_add", "job_modify"] {
                let mut body = valid.clone();
                body[field] = json!(value);
                let what = format!("{route} {field}={:.40?}", value);
                let before = state(c).await;
                let a = c.post(route, body).await;
                assert_envelope(&what, &a);
                if a.stat == "OK" {
                    // accepted as data (an odd but valid id or name): it reads back as given, then goes
                    let id = if field == "job_id" { value.clone() } else { "nasty".into() };
                    let shown = c.post("job_show", json!({"job_id": id})).await;
                    assert_eq!(shown.stat, "OK", "{what}: shown");
                    if field != "job_id" && field != "rule" && field != "job_trigger" {
                        assert_eq!(shown.data()[field], json!(value), "{what}: stored as given");
                    }
                    let removed = c.post("job_remove", json!({"job_id": id})).await;
                    assert_eq!(removed.stat, "OK", "{what}: removed");
                } else {
                    assert_eq!(state(c).await, before, "{what}: a refused request changed nothing");
                }
            }
        }
    }
    // ids through every route taking one, and filters through the listings
    for value in nasty() {
        for route in ["job_remove", "job_pause", "job_resume", "job_show"] {
            refused(
                c,
                &format!("{route} {value:.40?}"),
                Method::POST,
                &format!("/ruqi/{route}"),
                Some(json!({"job_id": value}).to_string().into_bytes()),
            )
            .await;
        }
        for route in ["job_list", "job_history_list"] {
            let a = c.post(route, json!({"job_id": value, "job_name": value})).await;
            assert_envelope(&format!("{route} filter"), &a);
            assert_eq!((a.stat.as_str(), a.data()["total"].as_u64()), ("OK", Some(0)));
        }
        let a = c.post("job_history_clear", json!({"job_id": value, "job_name": value})).await;
        assert_eq!((a.stat.as_str(), a.data()["deleted"].as_u64()), ("OK", Some(0)));
    }
    // types: numbers, arrays, objects, booleans where strings belong
    for field in FIELDS {
        for value in [json!(1), json!(-1.5e308), json!([1]), json!({"a": 1}), json!(true)] {
            let mut body = valid.clone();
            body[field] = value;
            refused(
                c,
                &format!("job_add {field} typed"),
                Method::POST,
                "/ruqi/job_add",
                Some(body.to_string().into_bytes()),
            )
            .await;
        }
    }
    // paths: traversal, case, encodings
    for path in
        ["/ruqi/../ruqi/job_list", "/RUQI/job_list", "/ruqi/job_list%00", "/ruqi//job_list", "/ruqi/job_list/.."]
    {
        let a = c.send(Method::GET, path, None).await;
        assert!(a.status == 200 || a.status == 400 || a.status == 404, "{path}: HTTP {}", a.status);
    }
    // still serving, the protected job and its history intact
    let shown = c.post("job_show", json!({"job_id": "keep"})).await;
    assert_eq!((shown.stat.as_str(), shown.data()["rule"].as_str()), ("OK", Some("3600s")));
    assert_eq!(c.history("ran").await.len(), 1);
    assert_eq!(c.get("scheduler_status", "").await.stat, "OK");
    s.stop().await;
}
