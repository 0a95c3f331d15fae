//! baichuan: publishes one message per run to the Baichuan (百川) queue in Redis, the way
//! RuQi's `run_mq` and a butterfly Baichuan worker expect (reference §3.3, §5).
//!
//! cmd: `/topic`, `/topic#DATA` or `/topic#DATA#MSG_ID` (DATA defaults to `{}`, MSG_ID to a new
//! uuid4; with more `#` parts, as in RuQi, the rest is ignored). The message is written in one
//! `MULTI … EXEC` transaction so a consumer never sees half of it:
//!
//! ```text
//! SADD  mq:queues mq:queue:{topic}
//! HSET  mq:msg:<id> data … origin topic status queued created_at … enqueued_at … timeout 180 ip … run_id …
//! RPUSH mq:queue:{topic} <id>
//! ```
//!
//! Params (a run started by hand with `job_run?params=`) must be a JSON object: its top-level
//! keys are merged into the message's `data` (the cmd's DATA, which must then be a JSON object
//! too), a key of the params replacing DATA's; the message's other fields (`origin`, `run_id`, …)
//! are the host's and stay as they are. Params that are not a JSON object, or DATA that is not
//! one when params are given, fail the run and nothing is published.
//!
//! The Redis address comes from the granted config value `redis_url`
//! (`redis://[[user]:password@]host[:port][/db]`). The message goes over the connection the host
//! keeps for the plugin (`redis-pipeline`, `ruqi:executor@0.3`): one round trip per run, no
//! connect, and only to the socket addresses granted to the plugin.

use ruqi_plugin_sdk::{Executor, PluginInfo, RedisReply, RunOutcome, RunRequest, host};

/// RuQi's `timeout` field of a queued message (stored, not enforced by workers).
const MSG_TIMEOUT: &str = "180";
/// Used when the operator granted no `redis_url`.
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// A cmd split the way RuQi's `run_mq` splits it.
#[derive(Debug, PartialEq)]
struct Publish<'a> {
    topic: &'a str,
    data: &'a str,
    msg_id: Option<&'a str>,
}

fn parse(cmd: &str) -> Result<Publish<'_>, String> {
    let parts: Vec<&str> = cmd.split('#').collect();
    let (topic, data, msg_id) = match parts.as_slice() {
        [topic] => (*topic, "{}", None),
        [topic, data, id] => (*topic, *data, Some(*id)),
        [topic, data, ..] => (*topic, *data, None),
        [] => unreachable!("split yields at least one part"),
    };
    if topic.len() < 2 || !topic.starts_with('/') || topic.chars().any(char::is_whitespace) {
        return Err(format!("baichuan topic must be a route such as /app/handler, not {topic:?}"));
    }
    // As in RuQi (RQ's `msg_id or uuid4()`), an empty id means a new one.
    let msg_id = msg_id.filter(|id| !id.is_empty());
    if msg_id.is_some_and(|id| id.chars().any(char::is_whitespace)) {
        return Err("baichuan message id must not contain spaces".into());
    }
    Ok(Publish { topic, data, msg_id })
}

/// The message's `data`: the cmd's DATA with the top-level keys of `params` merged in (the
/// params' winning); DATA unchanged without params.
fn data_with(data: &str, params: Option<&str>) -> Result<String, String> {
    use serde_json::{Map, Value};
    let Some(params) = params else {
        return Ok(data.to_owned());
    };
    let params = match serde_json::from_str::<Value>(params) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(format!("params must be a JSON object, not {params:?}")),
        Err(e) => return Err(format!("params must be a JSON object: {e}")),
    };
    let mut merged: Map<String, Value> = serde_json::from_str(data).map_err(|_| {
        format!("params are merged into the message data, which must then be a JSON object, not {data:?}")
    })?;
    merged.extend(params);
    Ok(Value::Object(merged).to_string())
}

fn publish(p: &Publish<'_>, msg_id: &str, run_id: &str) -> Result<(), String> {
    let url = host::config("redis_url").unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned());
    // The host's kept connection: opened at the plugin's first run, reused by the next ones.
    let local = host::redis_local_address(&url)?;
    let ip = local.rsplit_once(':').map_or(local.as_str(), |(ip, _)| ip).trim_start_matches('[').trim_end_matches(']');
    let now = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    let queue = format!("mq:queue:{{{}}}", p.topic);
    let key = format!("mq:msg:{msg_id}");
    let hset: Vec<&str> = vec![
        "HSET",
        &key,
        "data",
        p.data,
        "origin",
        p.topic,
        "status",
        "queued",
        "created_at",
        &now,
        "enqueued_at",
        &now,
        "timeout",
        MSG_TIMEOUT,
        "ip",
        ip,
        // The run's id (stable for a job's fire time): a consumer drops a replay by it. A 1.x
        // worker reads only the fields above and ignores this one.
        "run_id",
        run_id,
    ];
    let commands: Vec<Vec<&str>> =
        vec![vec!["MULTI"], vec!["SADD", "mq:queues", &queue], hset, vec!["RPUSH", &queue, msg_id], vec!["EXEC"]];
    let commands: Vec<Vec<Vec<u8>>> =
        commands.iter().map(|c| c.iter().map(|a| a.as_bytes().to_vec()).collect()).collect();
    // One write, one round trip: MULTI, three QUEUED, then EXEC's array of three integers.
    let replies = host::redis_pipeline(&url, &commands)?;
    if let Some(RedisReply::Error(e)) = replies.iter().find(|r| matches!(r, RedisReply::Error(_))) {
        return Err(format!("redis: {e}"));
    }
    match replies.as_slice() {
        [.., RedisReply::Array(3), RedisReply::Int(_), RedisReply::Int(_), RedisReply::Int(_)] => Ok(()),
        other => Err(format!("redis did not queue the message: {:?}", other.last())),
    }
}

struct Baichuan;

impl Executor for Baichuan {
    fn describe() -> PluginInfo {
        PluginInfo::new("baichuan", env!("CARGO_PKG_VERSION"), &["/"])
    }

    fn validate(cmd: String) -> Result<(), String> {
        parse(&cmd).map(|_| ())
    }

    fn execute(run: RunRequest) -> Result<RunOutcome, String> {
        let mut p = parse(&run.cmd)?;
        let data = data_with(p.data, run.params.as_deref())?;
        p.data = &data;
        let msg_id = p.msg_id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
        Ok(match publish(&p, &msg_id, &run.run_id) {
            Ok(()) => RunOutcome::ok(msg_id),
            Err(e) => RunOutcome::failed(format!("publish of {msg_id} to {} failed: {e}", p.topic)),
        })
    }
}

ruqi_plugin_sdk::export_plugin!(Baichuan);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_ruqi() {
        assert_eq!(parse("/a/b").unwrap(), Publish { topic: "/a/b", data: "{}", msg_id: None });
        assert_eq!(parse("/a#{\"x\":1}").unwrap(), Publish { topic: "/a", data: "{\"x\":1}", msg_id: None });
        assert_eq!(parse("/a#d#id1").unwrap(), Publish { topic: "/a", data: "d", msg_id: Some("id1") });
        assert_eq!(parse("/a#d#id1#x").unwrap(), Publish { topic: "/a", data: "d", msg_id: None });
        assert!(parse("/").is_err());
        assert!(parse("/a b").is_err());
        assert_eq!(parse("/a#d#").unwrap(), Publish { topic: "/a", data: "d", msg_id: None });
        assert!(parse("/a#d#x y").is_err());
    }

    #[test]
    fn params_merge_into_the_data() {
        assert_eq!(data_with("d", None).unwrap(), "d");
        assert_eq!(data_with("{}", Some(r#"{"p":1}"#)).unwrap(), r#"{"p":1}"#);
        assert_eq!(data_with(r#"{"a":1,"p":0}"#, Some(r#"{"p":1}"#)).unwrap(), r#"{"a":1,"p":1}"#);
        assert!(data_with("d", Some("{}")).unwrap_err().contains("must then be a JSON object"));
        assert_eq!(data_with("{}", Some("7")).unwrap_err(), r#"params must be a JSON object, not "7""#);
    }
}
