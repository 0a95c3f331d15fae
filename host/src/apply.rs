//! Jobs as code: `ruqi export` writes every job of a server as TOML (`[[job]]` tables holding
//! each job's job_add parameters, as `job_export` lists them), and `ruqi apply -f FILE` makes
//! the server's jobs match such a file: it prints the plan (jobs added, changed with their
//! fields, removed only with `--prune`), then carries it out through the API (`job_add_many`,
//! `job_modify` with `replace`, `job_pause`/`job_resume`, `job_remove` with `force`). A file
//! `export` wrote applies as no change.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::cli::{CliError, Client};

/// The chain parameters: a job added by `apply` gets them once every job of the file exists.
const CHAINS: [&str; 2] = ["on_success", "on_failure"];

/// Most jobs `apply` adds in one `job_add_many` request.
const ADD_BATCH_JOBS: usize = 1_000;
/// Most bytes of jobs (as JSON) in one `job_add_many` request: half the server's default body
/// limit (`--max-body-bytes`, 1 MiB).
const ADD_BATCH_BYTES: usize = 512 * 1024;

/// A field that changes: its name, the server's value, the file's.
pub type FieldChange = (String, Value, Value);

/// What `apply` would do.
#[derive(Debug, Default)]
pub struct Plan {
    /// Jobs in the file and not on the server.
    pub added: Vec<Map<String, Value>>,
    /// Jobs on both that differ: the file's definition and the fields that change (name,
    /// server's value, file's value).
    pub changed: Vec<(Map<String, Value>, Vec<FieldChange>)>,
    /// Jobs on the server and not in the file.
    pub extra: Vec<String>,
    /// Jobs that are the same.
    pub unchanged: usize,
}

/// Reads a jobs file: TOML with one `[[job]]` table per job, each at least `job_id`.
pub fn read_file(text: &str) -> Result<Vec<Map<String, Value>>, String> {
    let doc: Value = toml::from_str(text).map_err(|e| format!("not a jobs file: {}", e.message()))?;
    let jobs = match doc.get("job") {
        None => return Ok(Vec::new()),
        Some(Value::Array(jobs)) => jobs,
        Some(_) => return Err("`job` must be an array of tables ([[job]])".into()),
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let Value::Object(def) = job else { return Err(format!("job {}: not a table", i + 1)) };
        let Some(id) = def.get("job_id").and_then(Value::as_str) else {
            return Err(format!("job {}: no job_id", i + 1));
        };
        if !seen.insert(id.to_owned()) {
            return Err(format!("job {id} is in the file twice"));
        }
        let mut def = def.clone();
        normalize_rule(&mut def);
        out.push(def);
    }
    Ok(out)
}

/// Writes a cron or interval rule as the server keeps it (`1h` is `3600s`), so a file written
/// by hand compares equal to the server's jobs it matches. A rule that does not parse is left
/// for the server to refuse.
fn normalize_rule(def: &mut Map<String, Value>) {
    use crate::trigger::{Trigger, TriggerKind};
    let kind = def.get("job_trigger").and_then(Value::as_str).and_then(|k| TriggerKind::parse(k).ok());
    let (Some(kind @ (TriggerKind::Cron | TriggerKind::Interval)), Some(rule)) =
        (kind, def.get("rule").and_then(Value::as_str))
    else {
        return;
    };
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    if let Ok(trigger) = Trigger::parse(kind, rule, chrono_tz::UTC, now) {
        def.insert("rule".into(), json!(trigger.rule()));
    }
}

/// Writes definitions as a jobs file.
pub fn write_file(defs: &[Map<String, Value>]) -> Result<String, String> {
    let mut text = String::from("# RuQi jobs: `ruqi apply -f FILE` makes a server's jobs match this file.\n\n");
    for def in defs {
        let table: BTreeMap<&String, &Value> = def.iter().collect();
        let mut one = BTreeMap::new();
        one.insert("job", vec![table]);
        text.push_str(&toml::to_string(&one).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    Ok(text)
}

/// The plan that makes `server`'s jobs `file`'s.
pub fn plan(file: &[Map<String, Value>], server: &[Map<String, Value>]) -> Plan {
    let on_server: BTreeMap<&str, &Map<String, Value>> =
        server.iter().filter_map(|d| Some((d.get("job_id")?.as_str()?, d))).collect();
    let mut plan = Plan::default();
    for def in file {
        let id = def.get("job_id").and_then(Value::as_str).unwrap_or_default();
        match on_server.get(id) {
            None => plan.added.push(def.clone()),
            Some(current) => {
                let mut fields = Vec::new();
                for key in current.keys().chain(def.keys()) {
                    let (was, will) = (current.get(key).unwrap_or(&Value::Null), def.get(key).unwrap_or(&Value::Null));
                    if !same(was, will) && !fields.iter().any(|(k, _, _): &FieldChange| k == key) {
                        fields.push((key.clone(), was.clone(), will.clone()));
                    }
                }
                if fields.is_empty() {
                    plan.unchanged += 1;
                } else {
                    plan.changed.push((def.clone(), fields));
                }
            }
        }
    }
    let in_file: std::collections::HashSet<&str> =
        file.iter().filter_map(|d| d.get("job_id").and_then(Value::as_str)).collect();
    plan.extra = on_server.keys().filter(|id| !in_file.contains(*id)).map(|id| (*id).to_owned()).collect();
    plan
}

/// Whether two values of a field are the same (`paused = false` is no `paused`; an integer
/// and the same float are the same number).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Bool(false)) | (Value::Bool(false), Value::Null) => true,
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The plan as people read it.
pub fn describe(plan: &Plan, prune: bool) -> String {
    let mut out = String::new();
    let show = |v: &Value| if v.is_null() { "(none)".to_owned() } else { v.to_string() };
    for def in &plan.added {
        let _ = writeln!(out, "+ {} (added)", def.get("job_id").and_then(Value::as_str).unwrap_or_default());
    }
    for (def, fields) in &plan.changed {
        let id = def.get("job_id").and_then(Value::as_str).unwrap_or_default();
        let _ = writeln!(out, "~ {id}");
        for (key, was, will) in fields {
            let _ = writeln!(out, "    {key}: {} -> {}", show(was), show(will));
        }
    }
    for id in &plan.extra {
        let _ = writeln!(
            out,
            "{} {id}{}",
            if prune { "-" } else { " " },
            if prune { " (removed)" } else { " (not in the file; kept: --prune removes it)" }
        );
    }
    let removed = if prune { plan.extra.len() } else { 0 };
    let _ = writeln!(
        out,
        "{} to add, {} to change, {} to remove, {} unchanged",
        plan.added.len(),
        plan.changed.len(),
        removed,
        plan.unchanged
    );
    out
}

/// Reads every job's definition from the server.
pub async fn server_jobs(client: &Client) -> Result<Vec<Map<String, Value>>, CliError> {
    let answer = client.call("job_export", json!({})).await?;
    Ok(answer["data"]["list"]
        .as_array()
        .map(|l| l.iter().filter_map(|d| d.as_object().cloned()).collect())
        .unwrap_or_default())
}

/// Adds `jobs` in one `job_add_many` with `atomic`: all of them, or none and the reason.
async fn add_many(client: &Client, jobs: Vec<Value>) -> Result<(), CliError> {
    client.call("job_add_many", json!({"jobs": jobs, "atomic": 1})).await.map(drop)
}

/// Carries `plan` out on the server: adds (in `job_add_many` requests of up to 1,000 jobs, each
/// all or nothing; their chains once every job exists), changes, pauses and resumes, and with
/// `prune` removes.
pub async fn carry_out(client: &Client, plan: &Plan, prune: bool) -> Result<(), CliError> {
    let params = |def: &Map<String, Value>, drop_chains: bool| {
        let mut p = def.clone();
        p.remove("paused");
        if drop_chains {
            for key in CHAINS {
                p.remove(key);
            }
        }
        p
    };
    let paused = |def: &Map<String, Value>| def.get("paused").and_then(Value::as_bool).unwrap_or(false);
    let id = |def: &Map<String, Value>| def.get("job_id").cloned().unwrap_or(Value::Null);
    // The new jobs go in `job_add_many` requests with `atomic`: a request whose jobs the server
    // refuses one of adds none of them, and the error names the job and why.
    let mut batch: Vec<Value> = Vec::new();
    let mut bytes = 0;
    for def in &plan.added {
        let job = Value::Object(params(def, true));
        let size = job.to_string().len();
        if !batch.is_empty() && (batch.len() == ADD_BATCH_JOBS || bytes + size > ADD_BATCH_BYTES) {
            add_many(client, std::mem::take(&mut batch)).await?;
            bytes = 0;
        }
        bytes += size;
        batch.push(job);
    }
    if !batch.is_empty() {
        add_many(client, batch).await?;
    }
    for def in plan.added.iter().filter(|d| paused(d)) {
        client.call("job_pause", json!({"job_id": id(def)})).await?;
    }
    for def in plan.added.iter().filter(|d| CHAINS.iter().any(|k| d.contains_key(*k))) {
        let mut p = params(def, false);
        p.insert("replace".into(), json!(true));
        client.call("job_modify", Value::Object(p)).await?;
    }
    for (def, fields) in &plan.changed {
        if fields.iter().any(|(k, _, _)| k != "paused") {
            let mut p = params(def, false);
            p.insert("replace".into(), json!(true));
            client.call("job_modify", Value::Object(p)).await?;
        }
        if let Some((_, was, _)) = fields.iter().find(|(k, _, _)| k == "paused") {
            let route = if paused(def) { "job_pause" } else { "job_resume" };
            // A modify keeps a job paused, and resuming a running job is harmless.
            if paused(def) || was.as_bool() == Some(true) {
                client.call(route, json!({"job_id": id(def)})).await?;
            }
        }
    }
    if prune {
        for job in &plan.extra {
            client.call("job_remove", json!({"job_id": job, "force": true})).await?;
        }
    }
    Ok(())
}
