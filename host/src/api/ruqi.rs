//! RuQi's routes — the seed's names and the 1.x aliases — and their handlers.

use serde_json::{Value, json};

use chrono_tz::Tz;

use super::envelope::{ApiError, Params, Reply};
pub use super::routes::Route;
use super::{AppState, listing, text};
use crate::calendar::CalendarRule;
use crate::clock::Timestamp;
use crate::dispatch::{HandRun, RunNowError};
use crate::model::{
    FollowUp, HistoryFilter, HistoryRecord, Job, JobFilter, JobHealth, JobId, MAX_JOB_NAME_LEN, Outcome, Overlap, Page,
    RunFilter, RunPolicy, RunRecord, RunState, RunTrigger,
};
use crate::run::StopReason;
use crate::scheduler::IDLE_WAIT;
use crate::store::StoreError;
use crate::trigger::{Trigger, TriggerError, TriggerKind, format_python, format_seconds};

/// Longest normalised rule the store keeps (the seed's `job_rule varchar(64)`).
const MAX_RULE_LEN: usize = 64;
/// RuQi's `TIMEOUT_MAX`: the longest wait `scheduler_status` reports.
const TIMEOUT_MAX: f64 = 4_294_967.0;

/// Runs the handler of `route`, once its parameters passed the route's signature; a change
/// that succeeds is recorded in the audit trail as `caller`'s.
pub async fn call(state: &AppState, route: Route, p: Params, caller: &super::audit::Caller) -> Result<Reply, ApiError> {
    let spec = route.spec();
    let names = |params: &[super::routes::Param]| params.iter().map(|p| p.name).collect::<Vec<_>>();
    p.check(&names(spec.required), &names(spec.optional))?;
    let pending = super::audit::before(state, route, &p).await;
    let mut written = None;
    let result = handler(state, route, &p, caller, &mut written).await;
    let answered = result.as_ref().ok().map(super::audit::answered_run);
    if let (Some(pending), Some(run)) = (pending, answered) {
        super::audit::record(state, pending, caller, run, written.as_ref()).await;
    }
    result
}

/// The handler of `route`; a handler that writes a job leaves it in `written` (for the audit
/// trail). `job_add` and `job_add_many` hand their jobs' entries, as `caller`'s, to the store with
/// the jobs.
async fn handler(
    state: &AppState,
    route: Route,
    p: &Params,
    caller: &super::audit::Caller,
    written: &mut Option<Job>,
) -> Result<Reply, ApiError> {
    let p = p.clone();
    match route {
        Route::JobAdd => job_add(state, &p, Some(caller), written).await,
        Route::JobAddMany => super::bulk::job_add_many(state, &p, caller).await,
        Route::JobModify => job_modify(state, &p, written).await,
        Route::JobRemove => job_remove(state, &job_id(&p)?, p.boolean("force")?.unwrap_or(false)).await,
        Route::JobPause => job_pause(state, &job_id(&p)?, written).await,
        Route::JobResume => job_resume(state, &job_id(&p)?, written).await,
        Route::JobShow => job_show(state, &job_id(&p)?).await,
        Route::JobList => job_list(state, &p).await,
        Route::HistoryList => history_list(state, &p).await,
        Route::HistoryClear => history_clear(state, &p).await,
        Route::Status => Ok(status(state)),
        Route::Wakeup => {
            state.scheduler.wake();
            Ok(Reply::Ok)
        }
        Route::NextFireTimes => next_fire_times(state, &p),
        Route::PluginList => Ok(plugin_list(state)),
        Route::Nodes => nodes(state, &p).await,
        Route::CalendarList => Ok(calendar_list(state)),
        Route::CalendarDays => calendar_days(state, &p),
        Route::JobRun => job_run(state, &p).await,
        Route::RunList => run_list(state, &p).await,
        Route::RunShow => run_show(state, &p).await,
        Route::RunOutput => run_output(state, &p).await,
        Route::RunKill => run_kill(state, &p).await,
        Route::JobBackfill => job_backfill(state, &p).await,
        Route::AlertList => super::follow::alert_list(state, &p, page(&p, Some(0))?).await,
        Route::AuditList => super::audit::audit_list(state, &p, page(&p, Some(0))?).await,
        Route::JobVersions => super::audit::job_versions(state, &job_id(&p)?).await,
        Route::JobRollback => job_rollback(state, &p, written).await,
        Route::JobExport => super::audit::job_export(state).await,
        Route::StatsOverview => super::stats::overview(state).await,
        Route::JobStrip => super::stats::strip(state, &p, &job_id(&p)?).await,
    }
}

/// Longest `timeout` of a job, seconds (30 days).
const MAX_TIMEOUT_SECS: u64 = 30 * 86_400;
/// Most output bytes one `run_output` answer carries.
const MAX_OUTPUT_PIECE: u64 = 1024 * 1024;

/// The `timeout` and `kill_grace` parameters over `base` (a new job's defaults, or the
/// modified job's own: a parameter not given keeps it).
fn policy(p: &Params, base: RunPolicy) -> Result<RunPolicy, ApiError> {
    let mut policy = base;
    if let Some(t) = p.uint("timeout")? {
        if t > MAX_TIMEOUT_SECS {
            return Err(ApiError::BadParams(format!(
                "Param check failed: timeout must be at most {MAX_TIMEOUT_SECS} seconds (0: no limit)"
            )));
        }
        policy.timeout_secs = (t > 0).then_some(t);
    }
    if let Some(g) = p.uint("kill_grace")? {
        if g > crate::config::MAX_KILL_GRACE_SECS {
            return Err(ApiError::BadParams(format!(
                "Param check failed: kill_grace must be at most {} seconds",
                crate::config::MAX_KILL_GRACE_SECS
            )));
        }
        policy.kill_grace_secs = Some(g);
    }
    if let Some(n) = p.uint("retries")? {
        if n > MAX_RETRIES {
            return Err(ApiError::BadParams(format!("Param check failed: retries must be from 0 to {MAX_RETRIES}")));
        }
        policy.retries = n as u32;
    }
    let seconds = |name: &str| -> Result<Option<u64>, ApiError> {
        match p.uint(name)? {
            Some(s) if s > MAX_RETRY_DELAY_SECS => Err(ApiError::BadParams(format!(
                "Param check failed: {name} must be at most {MAX_RETRY_DELAY_SECS} seconds"
            ))),
            s => Ok(s),
        }
    };
    if let Some(d) = seconds("retry_delay")? {
        policy.retry_delay_secs = Some(d);
    }
    if let Some(d) = seconds("retry_max_delay")? {
        policy.retry_max_delay_secs = Some(d);
    }
    let bad_backoff = || ApiError::BadParams("Param check failed: retry_backoff must be a number from 1 to 100".into());
    let backoff = match p.get("retry_backoff") {
        Some(Value::Number(n)) => Some(n.as_f64().ok_or_else(bad_backoff)?),
        _ => p.string("retry_backoff")?.map(|raw| raw.trim().parse::<f64>().map_err(|_| bad_backoff())).transpose()?,
    };
    if let Some(factor) = backoff {
        if !(1.0..=100.0).contains(&factor) {
            return Err(bad_backoff());
        }
        policy.retry_backoff = Some(factor);
    }
    if let Some(o) = one_of(p, "overlap", &Overlap::NAMES)? {
        policy.overlap = Overlap::parse(&o).filter(|o| *o != Overlap::Skip);
    }
    if let Some(m) = one_of(p, "misfire", &["skip", "once", "all"])? {
        policy.misfire = crate::model::Misfire::parse(&m);
    }
    if let Some(g) = p.uint("misfire_grace")? {
        if g > MAX_MISFIRE_GRACE_SECS {
            return Err(ApiError::BadParams(format!(
                "Param check failed: misfire_grace must be at most {MAX_MISFIRE_GRACE_SECS} seconds"
            )));
        }
        policy.misfire_grace_secs = Some(g);
    }
    if let Some(j) = p.uint("jitter")? {
        if j > MAX_JITTER_SECS {
            return Err(ApiError::BadParams(format!(
                "Param check failed: jitter must be at most {MAX_JITTER_SECS} seconds"
            )));
        }
        policy.jitter_secs = (j > 0).then_some(j);
    }
    Ok(policy)
}

/// Longest `jitter`, seconds (an hour).
const MAX_JITTER_SECS: u64 = 3600;

/// Refuses a jitter as long as the gap between two of the rule's next fire times: fire times
/// would pass each other.
fn check_jitter(state: &AppState, job: &Job, now: Timestamp) -> Result<(), ApiError> {
    let Some(jitter) = job.policy.jitter_secs else { return Ok(()) };
    let tz = job.zone(state.tz);
    let first = state.calendars.next_fire(job.calendar.as_ref(), &job.trigger, tz, None, now);
    let second = first.and_then(|t| state.calendars.next_fire(job.calendar.as_ref(), &job.trigger, tz, Some(t), now));
    if let (Some(a), Some(b)) = (first, second)
        && (b - a).num_seconds() <= jitter as i64
    {
        return Err(ApiError::Refused(format!(
            "Param check failed: jitter {jitter}s is not shorter than the rule's gap of {}s",
            (b - a).num_seconds()
        )));
    }
    Ok(())
}

/// Longest `misfire_grace`, seconds (a week).
const MAX_MISFIRE_GRACE_SECS: u64 = 7 * 86_400;

/// Most `retries` of a job.
const MAX_RETRIES: u64 = 32;
/// Longest `retry_delay` / `retry_max_delay`, seconds (a week).
const MAX_RETRY_DELAY_SECS: u64 = 7 * 86_400;

/// An optional parameter that must be one of `words`.
pub(super) fn one_of(p: &Params, name: &str, words: &[&str]) -> Result<Option<String>, ApiError> {
    match p.string(name)? {
        Some(v) if !words.contains(&v.as_str()) => {
            Err(ApiError::BadParams(format!("Param check failed: {name} must be one of {}", words.join(", "))))
        }
        v => Ok(v),
    }
}

fn run_id(p: &Params) -> Result<String, ApiError> {
    let raw = p.required_string("run_id")?;
    if raw.is_empty() || raw.len() > 64 {
        return Err(ApiError::BadParams("Param check failed: run_id must be 1 to 64 characters".into()));
    }
    Ok(raw)
}

/// A run as `run_list` and `run_show` show it.
fn run_item(r: &RunRecord, now: Timestamp, tz: Tz) -> Value {
    let elapsed = (r.ended.unwrap_or(now) - r.started).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6;
    json!({
        "run_id": r.run_id,
        "job_id": r.job_id,
        "job_name": r.job_name,
        "cmd": r.cmd,
        "node": r.node,
        "trigger": r.trigger.as_str(),
        "attempt": r.attempt,
        "state": r.state.as_str(),
        "outcome": r.outcome.map(Outcome::as_str),
        "fire_time": format_python(r.fire_time, tz),
        "started": format_python(r.started, tz),
        "ended": r.ended.map(|t| format_python(t, tz)),
        "elapsed": elapsed,
        "kill_requested": r.kill_requested,
        "output_bytes": r.output_len,
        "params": r.params,
    })
}

/// The longest prefix of `bytes` that ends on a whole UTF-8 character (a piece cut inside
/// one is completed by the next call), as text.
fn whole_chars(bytes: &[u8], complete: bool) -> (String, usize) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_owned(), bytes.len()),
        Err(e) if !complete && e.error_len().is_none() => {
            let n = e.valid_up_to();
            (String::from_utf8_lossy(&bytes[..n]).into_owned(), n)
        }
        Err(_) => (String::from_utf8_lossy(bytes).into_owned(), bytes.len()),
    }
}

/// Longest `params` of `job_run`, bytes.
const MAX_PARAMS_BYTES: usize = 65_536;

async fn job_run(state: &AppState, p: &Params) -> Result<Reply, ApiError> {
    let id = job_id(p)?;
    let overlap = one_of(p, "overlap", &Overlap::NAMES)?.and_then(|o| Overlap::parse(&o));
    let params = match p.get("params") {
        // A JSON body may give an object or array for a plugin that takes JSON: passed as its text.
        Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v.to_string()),
        _ => p.string("params")?,
    };
    if params.as_ref().is_some_and(|t| t.len() > MAX_PARAMS_BYTES) {
        return Err(ApiError::BadParams(format!(
            "Param check failed: params must be at most {MAX_PARAMS_BYTES} bytes"
        )));
    }
    let ask =
        HandRun { job_id: id.clone(), trigger: RunTrigger::Manual, fire_time: None, run_id: None, overlap, params };
    match state.dispatcher.run_by_hand(ask).await {
        Ok((run_id, _)) => {
            tracing::info!(job_id = %id, run_id = %run_id, "job_run");
            Ok(Reply::Data(json!({"run_id": run_id, "job_id": id.as_str(), "node": state.node})))
        }
        Err(e) => Err(run_error(&id, e)),
    }
}

/// The answer to a run that could not be started by hand.
fn run_error(id: &JobId, e: RunNowError) -> ApiError {
    match e {
        RunNowError::Store(StoreError::NotFound(_)) => ApiError::no_job(id.as_str()),
        RunNowError::Store(e) => e.into(),
        e => ApiError::Refused(e.to_string()),
    }
}

/// Most fire times one `job_backfill` runs (or lists).
const MAX_BACKFILL: usize = 10_000;
/// Fire times counted, at most, to say how many a refused window holds.
const MAX_BACKFILL_COUNTED: usize = 1_000_000;

async fn job_backfill(state: &AppState, p: &Params) -> Result<Reply, ApiError> {
    let id = job_id(p)?;
    let job = state.store.get_job(&id).await?.ok_or_else(|| ApiError::no_job(id.as_str()))?;
    if matches!(job.trigger, crate::trigger::Trigger::Date(_)) {
        return Err(ApiError::Refused(format!(
            "job {id} has a date trigger: only cron and interval jobs can be backfilled"
        )));
    }
    let zone = job.zone(state.tz);
    let now = state.clock.now();
    let instant = |name: &str| -> Result<Timestamp, ApiError> {
        let raw =
            p.string(name)?.ok_or_else(|| ApiError::BadParams(format!("Param check failed: {name} is required")))?;
        let bad = || {
            ApiError::BadParams(format!(
                "Param check failed: {name} {raw:?} is not a time YYYY-mm-dd HH:MM:SS[.ffffff]"
            ))
        };
        if raw.trim() == "now" {
            return Err(bad());
        }
        crate::trigger::DateTrigger::parse(raw.trim(), zone, now).map(|d| d.at()).map_err(|_| bad())
    };
    let (start, end) = (instant("start")?, instant("end")?);
    if end < start {
        return Err(ApiError::BadParams("Param check failed: end is before start".into()));
    }
    let dry_run = p.boolean("dry_run")?.unwrap_or(false);
    let overlap = one_of(p, "overlap", &["buffer_all", "allow"])?.and_then(|o| Overlap::parse(&o));
    // The window's fire times in the job's zone and calendar (stepping a rule costs microseconds;
    // a window too wide is counted up to a bound, off the async threads).
    let (calendars, tz, counted) = (state.calendars.clone(), state.tz, job.clone());
    let fires = tokio::task::spawn_blocking(move || {
        let mut fires = Vec::new();
        let mut next = calendars.next_for_job(&counted, tz, None, start);
        while let Some(t) = next.filter(|t| *t <= end) {
            fires.push(t);
            if fires.len() >= MAX_BACKFILL_COUNTED {
                break;
            }
            next = calendars.next_for_job(&counted, tz, Some(t), start);
        }
        fires
    })
    .await
    .map_err(|e| ApiError::Server(format!("counting fire times: {e}")))?;
    if fires.len() > MAX_BACKFILL {
        let count = if fires.len() >= MAX_BACKFILL_COUNTED {
            format!("at least {MAX_BACKFILL_COUNTED}")
        } else {
            fires.len().to_string()
        };
        return Err(ApiError::Refused(format!(
            "the window holds {count} fire times; at most {MAX_BACKFILL} can be backfilled in one request"
        )));
    }
    let planned: Vec<(Timestamp, String)> = fires.iter().map(|t| (*t, crate::model::fresh_run_id())).collect();
    let list: Vec<Value> = planned
        .iter()
        .map(|(t, run_id)| json!({"fire_time": format_python(*t, zone), "run_id": (!dry_run).then_some(run_id)}))
        .collect();
    if !dry_run && !planned.is_empty() {
        if state.dispatcher.is_stopping() {
            return Err(ApiError::Refused(RunNowError::Stopping.to_string()));
        }
        state.dispatcher.backfill(id.clone(), planned, overlap);
        tracing::info!(job_id = %id, fire_times = fires.len(), "job_backfill");
    }
    Ok(Reply::Data(json!({"job_id": id.as_str(), "count": fires.len(), "dry_run": dry_run, "list": list})))
}

async fn run_list(state: &AppState, p: &Params) -> Result<Reply, ApiError> {
    let filter = RunFilter {
        job_id: p.string("job_id")?,
        state: match one_of(p, "state", &["waiting", "running", "ended"])?.as_deref() {
            Some("waiting") => Some(RunState::Waiting),
            Some("running") => Some(RunState::Running),
            Some("ended") => Some(RunState::Ended),
            _ => None,
        },
    };
    let page = page(p, Some(0))?;
    let (total, runs) = state.store.list_runs(&filter, page).await?;
    let now = state.clock.now();
    let list: Vec<Value> = runs.iter().map(|r| run_item(r, now, state.tz)).collect();
    Ok(Reply::Data(json!({"total": total, "list": list})))
}

async fn find_run(state: &AppState, id: &str) -> Result<RunRecord, ApiError> {
    state.store.get_run(id).await?.ok_or_else(|| ApiError::Refused(format!("no run with id {id}")))
}

async fn run_show(state: &AppState, p: &Params) -> Result<Reply, ApiError> {
    let id = run_id(p)?;
    let run = find_run(state, &id).await?;
    let bytes = state.store.run_output(&id, 0, crate::config::MAX_RUN_OUTPUT_LIMIT as u64).await?;
    let mut item = run_item(&run, state.clock.now(), state.tz);
    if let Some(map) = item.as_object_mut() {
        map.insert("output".into(), json!(String::from_utf8_lossy(&bytes)));
    }
    Ok(Reply::Data(item))
}

async fn run_output(state: &AppState, p: &Params) -> Result<Reply, ApiError> {
    let id = run_id(p)?;
    let offset = p.uint("offset")?.unwrap_or(0);
    // The state first: output read after a run is seen ended is its whole output.
    let run = find_run(state, &id).await?;
    let bytes = state.store.run_output(&id, offset, MAX_OUTPUT_PIECE).await?;
    let ended = run.state == RunState::Ended;
    let (text, used) = whole_chars(&bytes, ended && (bytes.len() as u64) < MAX_OUTPUT_PIECE);
    Ok(Reply::Data(json!({
        "run_id": id,
        "state": run.state.as_str(),
        "outcome": run.outcome.map(Outcome::as_str),
        "offset": offset,
        "next_offset": offset + used as u64,
        "output": text,
    })))
}

async fn run_kill(state: &AppState, p: &Params) -> Result<Reply, ApiError> {
    let id = run_id(p)?;
    let run = state.store.request_kill(&id).await?.ok_or_else(|| ApiError::Refused(format!("no run with id {id}")))?;
    if run.state == RunState::Ended {
        let how = run.outcome.map_or("ended", Outcome::as_str);
        return Err(ApiError::Refused(format!("run {id} already ended ({how})")));
    }
    if run.node == state.node {
        state.dispatcher.stop_local(&id, StopReason::Killed);
    }
    tracing::info!(job_id = %run.job_id, run_id = %id, node = %run.node, "run_kill");
    Ok(Reply::Data(json!({"run_id": id, "node": run.node, "state": "running", "kill_requested": true})))
}

/// Longest look back of `scheduler_nodes`, in minutes (a week: rows older are deleted).
const MAX_NODES_WITHIN: u64 = 10_080;

/// The nodes seen on this store in the last `within_minutes`: `up` when its last heartbeat
/// is recent, `stopped` when it shut down cleanly, `silent` otherwise (killed, stalled, or cut
/// off from the store: its claims expire with their lease).
async fn nodes(state: &AppState, p: &Params) -> Result<Reply, ApiError> {
    let within = p.uint("within_minutes")?.unwrap_or(10);
    if within > MAX_NODES_WITHIN {
        return Err(ApiError::BadParams(format!(
            "Param check failed: within_minutes must be at most {MAX_NODES_WITHIN}"
        )));
    }
    let now = state.clock.now();
    let since = now - chrono::Duration::minutes(within as i64);
    let up_after = now - chrono::Duration::from_std(crate::scheduler::NODE_HEARTBEAT * 3).unwrap_or_default();
    let list: Vec<Value> = state
        .store
        .nodes(since)
        .await?
        .into_iter()
        .map(|n| {
            let health = match n.stopped {
                Some(_) => "stopped",
                None if n.seen >= up_after => "up",
                None => "silent",
            };
            json!({
                "name": n.name, "version": n.version, "state": health, "this": n.name == state.node,
                "started": format_python(n.started, state.tz), "seen": format_python(n.seen, state.tz),
                "stopped": n.stopped.map(|t| format_python(t, state.tz)),
            })
        })
        .collect();
    Ok(Reply::Data(json!({"total": list.len(), "list": list})))
}

/// Longest list `job_next_fire_times` gives.
const MAX_FIRE_TIMES: u64 = 50;

/// The next fire times a trigger and rule would have if added now, with job_add's reasons.
fn next_fire_times(state: &AppState, p: &Params) -> Result<Reply, ApiError> {
    let now = state.clock.now();
    let kind = TriggerKind::parse(&p.required_string("job_trigger")?).map_err(|e| ApiError::Refused(e.to_string()))?;
    let tz = timezone(p)?.unwrap_or(state.tz);
    let trigger =
        Trigger::parse(kind, &p.required_string("rule")?, tz, now).map_err(|e| ApiError::Refused(e.to_string()))?;
    let calendar = calendar(state, p, &trigger)?;
    let count = p.uint("count")?.unwrap_or(5).min(MAX_FIRE_TIMES);
    let mut times = Vec::new();
    let mut prev = None;
    while (times.len() as u64) < count {
        let Some(t) = state.calendars.next_fire(calendar.as_ref(), &trigger, tz, prev, now) else { break };
        times.push(format_python(t, tz));
        prev = Some(t);
    }
    Ok(Reply::Data(json!({"rule": trigger.rule(), "list": times})))
}

/// This node's plugins and the files that failed to load.
fn plugin_list(state: &AppState) -> Reply {
    let list: Vec<Value> = state
        .validator
        .plugins()
        .into_iter()
        .map(|s| match s {
            crate::plugin::PluginStatus::Loaded { file, name, version, prefixes, contract, grants } => json!({
                "file": file.display().to_string(), "status": "loaded", "name": name, "version": version,
                "prefixes": prefixes, "contract": contract, "grants": grants, "error": null,
            }),
            crate::plugin::PluginStatus::Failed { file, error } => json!({
                "file": file.display().to_string(), "status": "failed", "name": null, "version": null,
                "prefixes": [], "contract": null, "grants": null, "error": error,
            }),
        })
        .collect();
    Reply::Data(json!({"list": list}))
}

fn job_id(p: &Params) -> Result<JobId, ApiError> {
    let raw = p.required_string("job_id")?;
    if raw.is_empty() {
        return Err(ApiError::BadParams("Param check failed: job_id must not be empty".into()));
    }
    JobId::parse(&raw).map_err(ApiError::Refused)
}

/// A job as given to add/modify, validated in RuQi's order.
struct JobSpec {
    id: JobId,
    name: String,
    cmd: String,
    trigger: Trigger,
    /// The `timezone` given, if any.
    timezone: Option<Tz>,
    /// The `calendar` given: `None` not given, `Some(None)` given as `none` (the job has none).
    calendar: Option<Option<CalendarRule>>,
}

/// The optional `calendar` parameter (`cn`, `cn:rest`; `none` for no calendar), checked against
/// the loaded calendars and the trigger (a date fires once: a calendar cannot apply).
fn calendar_param(state: &AppState, p: &Params, trigger: &Trigger) -> Result<Option<Option<CalendarRule>>, ApiError> {
    let Some(raw) = p.string("calendar")? else { return Ok(None) };
    if raw == "none" {
        return Ok(Some(None));
    }
    let rule = state.calendars.check(&raw).map_err(|e| ApiError::Refused(format!("Param check failed: {e}")))?;
    if trigger.kind() == TriggerKind::Date {
        return Err(ApiError::Refused(
            "Param check failed: a calendar applies to cron and interval jobs, not to a date job (it fires once)"
                .into(),
        ));
    }
    Ok(Some(Some(rule)))
}

/// [`calendar_param`] where only a calendar or none can be meant (job_next_fire_times).
fn calendar(state: &AppState, p: &Params, trigger: &Trigger) -> Result<Option<CalendarRule>, ApiError> {
    Ok(calendar_param(state, p, trigger)?.flatten())
}

/// The optional `timezone` parameter: an IANA zone name.
fn timezone(p: &Params) -> Result<Option<Tz>, ApiError> {
    match p.string("timezone")? {
        None => Ok(None),
        Some(name) => name.parse::<Tz>().map(Some).map_err(|_| {
            ApiError::BadParams(format!(
                "Param check failed: timezone {name:?} is not an IANA time zone name (e.g. Asia/Shanghai, UTC)"
            ))
        }),
    }
}

/// RuQi's default name for a job added with `job_name: null`: its executing function.
fn default_name(cmd: &str) -> &'static str {
    if cmd.starts_with("http") {
        "run_http"
    } else if cmd.starts_with('/') {
        "run_mq"
    } else {
        "run_cmd"
    }
}

/// Cmds already checked while answering one request, with their answers: a bulk add checks
/// each distinct cmd once.
pub(super) type CmdChecks = std::collections::HashMap<String, Result<(), String>>;

/// The job a job_add/job_modify describes; its rule is read in the `timezone` given, else in
/// `default_tz` (the node's zone, or the zone the modified job already has). `checks` holds the
/// cmds this request checked already.
async fn job_spec(
    state: &AppState,
    p: &Params,
    now: Timestamp,
    default_tz: Tz,
    checks: &mut CmdChecks,
) -> Result<JobSpec, ApiError> {
    let kind_raw = p.required_string("job_trigger")?;
    let id = job_id(p)?;
    let given_tz = timezone(p)?;
    let cmd = p.required_string("cmd")?;
    let rule = p.required_string("rule")?;
    let name = match p.string("job_name")? {
        Some(n) if n.is_empty() => {
            return Err(ApiError::BadParams("Param check failed: job_name must not be empty".into()));
        }
        Some(n) => n,
        None => default_name(&cmd).to_owned(),
    };
    // RuQi's order: trigger kind, rule shape, cmd, then rule values.
    let kind = TriggerKind::parse(&kind_raw).map_err(|e| ApiError::Refused(e.to_string()))?;
    let trigger = Trigger::parse(kind, &rule, given_tz.unwrap_or(default_tz), now);
    if let Err(TriggerError::RuleNotMatch) = trigger {
        return Err(ApiError::Refused(TriggerError::RuleNotMatch.to_string()));
    }
    let checked = match checks.get(&cmd) {
        Some(answer) => answer.clone(),
        None => {
            let answer = state.validator.validate(&cmd).await;
            checks.insert(cmd.clone(), answer.clone());
            answer
        }
    };
    checked.map_err(ApiError::Refused)?;
    let trigger = trigger.map_err(|e| ApiError::Refused(e.to_string()))?;
    if let Trigger::Date(d) = &trigger
        && !crate::store::is_exact(d.at())
    {
        return Err(ApiError::Refused(format!(
            "Job_rule not match: {} cannot be stored exactly (after 2106-02-07 UTC, give whole seconds)",
            d.rule()
        )));
    }
    if name.chars().count() > MAX_JOB_NAME_LEN {
        return Err(ApiError::Refused(format!("job_name is longer than {MAX_JOB_NAME_LEN} characters")));
    }
    if trigger.rule().chars().count() > MAX_RULE_LEN {
        return Err(ApiError::Refused(format!("rule is longer than {MAX_RULE_LEN} characters")));
    }
    let calendar = calendar_param(state, p, &trigger)?;
    Ok(JobSpec { id, name, cmd, trigger, timezone: given_tz, calendar })
}

/// `job_add`; the job's audit entry, as `caller`'s, is written with it (none without a caller:
/// the route that called it records its own).
async fn job_add(
    state: &AppState,
    p: &Params,
    caller: Option<&super::audit::Caller>,
    written: &mut Option<Job>,
) -> Result<Reply, ApiError> {
    let job = new_job(state, p, state.clock.now(), &mut CmdChecks::new()).await?;
    match caller {
        Some(caller) => {
            let audit = super::audit::added_entry(state, caller, &job, p);
            state.jobs.add(job.clone(), audit).await?;
        }
        None => state.store.add_job(&job).await?,
    }
    tracing::info!(job_id = %job.id, trigger = job.trigger.kind().as_str(), rule = %job.trigger.rule(), "add_job");
    state.scheduler.wake();
    *written = Some(job);
    Ok(Reply::Ok)
}

/// The new job `p` (job_add's parameters) describes, checked as job_add checks it.
pub(super) async fn new_job(
    state: &AppState,
    p: &Params,
    now: Timestamp,
    checks: &mut CmdChecks,
) -> Result<Job, ApiError> {
    let spec = job_spec(state, p, now, state.tz, checks).await?;
    let mut job = Job {
        id: spec.id,
        name: spec.name,
        cmd: spec.cmd,
        trigger: spec.trigger,
        next_run_time: None,
        created: now,
        updated: now,
        timezone: spec.timezone,
        calendar: spec.calendar.flatten(),
        home_zone: Some(state.tz),
        policy: policy(p, RunPolicy::default())?,
        follow: FollowUp::default(),
        health: JobHealth::default(),
    };
    check_jitter(state, &job, now)?;
    job.follow = super::follow::follow_up(state, p, &job.id, FollowUp::default()).await?;
    job.next_run_time = state.calendars.next_for_job(&job, state.tz, None, now);
    super::follow::watch_deadline(&mut job);
    Ok(job)
}

async fn existing(state: &AppState, id: &JobId) -> Result<Job, ApiError> {
    state.store.get_job(id).await?.ok_or_else(|| ApiError::no_job(id.as_str()))
}

async fn job_modify(state: &AppState, p: &Params, written: &mut Option<Job>) -> Result<Reply, ApiError> {
    let now = state.clock.now();
    // Without `timezone`, a job keeps its own zone (a client that knows nothing of zones does
    // not drop it). The job is read once; a missing one is reported after the spec is checked,
    // in RuQi's order of errors.
    let known = match job_id(p) {
        Ok(id) => state.store.get_job(&id).await?,
        Err(_) => None,
    };
    let default_tz = known.as_ref().map_or(state.tz, |j| j.zone(state.tz));
    let spec = job_spec(state, p, now, default_tz, &mut CmdChecks::new()).await?;
    let old = known.ok_or_else(|| ApiError::no_job(spec.id.as_str()))?;
    // `replace`: what is not given takes its default (a definition made current as a whole).
    let replace = p.boolean("replace")?.unwrap_or(false);
    let timezone = if replace { spec.timezone } else { spec.timezone.or(old.timezone) };
    // Like the zone, the calendar stays unless one (or `none`) is given.
    let calendar = match spec.calendar {
        Some(c) => c,
        None if replace => None,
        None => old.calendar.clone(),
    };
    if calendar.is_some() && spec.trigger.kind() == TriggerKind::Date {
        return Err(ApiError::Refused(
            "Param check failed: the job has a calendar, which cannot apply to a date job; give calendar=none".into(),
        ));
    }
    // A paused job stays paused; otherwise the new trigger decides the next run (RuQi kept
    // the old next run time once; we recompute it).
    // A job kept from before home zones were stored takes this node's, like a new one.
    let home_zone = old.home_zone.or(Some(state.tz));
    let (base_policy, base_follow) =
        if replace { (RunPolicy::default(), FollowUp::default()) } else { (old.policy, old.follow.clone()) };
    let policy = policy(p, base_policy)?;
    let follow = super::follow::follow_up(state, p, &old.id, base_follow).await?;
    let mut job = Job {
        name: spec.name,
        cmd: spec.cmd,
        trigger: spec.trigger,
        updated: now,
        timezone,
        calendar,
        home_zone,
        policy,
        follow,
        ..old
    };
    check_jitter(state, &job, now)?;
    job.next_run_time = job.next_run_time.and_then(|_| state.calendars.next_for_job(&job, state.tz, None, now));
    super::follow::watch_deadline(&mut job);
    state.store.update_job(&job).await?;
    tracing::info!(job_id = %job.id, "modify_job");
    state.scheduler.wake();
    *written = Some(job);
    Ok(Reply::Ok)
}

async fn job_rollback(state: &AppState, p: &Params, written: &mut Option<Job>) -> Result<Reply, ApiError> {
    let id = job_id(p)?;
    let version = p
        .uint("version")?
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| ApiError::BadParams("Param check failed: version must be a positive integer".into()))?;
    let def = super::audit::version_definition(state, &id, version).await?;
    let exists = state.store.get_job(&id).await?.is_some();
    let params = super::audit::definition_params(&def, exists);
    if exists { job_modify(state, &params, written).await } else { job_add(state, &params, None, written).await }?;
    tracing::info!(job_id = %id, version, "job_rollback");
    Ok(Reply::Ok)
}

async fn job_remove(state: &AppState, id: &JobId, force: bool) -> Result<Reply, ApiError> {
    super::follow::check_remove(state, id, force, state.clock.now()).await?;
    state.store.remove_job(id).await?;
    tracing::info!(job_id = %id, "Removed job");
    state.scheduler.wake();
    Ok(Reply::Ok)
}

async fn job_pause(state: &AppState, id: &JobId, written: &mut Option<Job>) -> Result<Reply, ApiError> {
    let job = existing(state, id).await?;
    // Paused by hand: the breaker's pause and probe, and the deadline watch, end with it.
    let health = JobHealth { fail_streak: job.health.fail_streak, ..JobHealth::default() };
    let job = Job { next_run_time: None, updated: state.clock.now(), health, ..job };
    state.store.update_job(&job).await?;
    tracing::info!(job_id = %id, "pause_job");
    state.scheduler.wake();
    *written = Some(job);
    Ok(Reply::Ok)
}

async fn job_resume(state: &AppState, id: &JobId, written: &mut Option<Job>) -> Result<Reply, ApiError> {
    let now = state.clock.now();
    let job = existing(state, id).await?;
    match state.calendars.next_for_job(&job, state.tz, None, now) {
        Some(next) => {
            let mut job = Job { next_run_time: Some(next), updated: now, health: JobHealth::default(), ..job };
            super::follow::watch_deadline(&mut job);
            state.store.update_job(&job).await?;
            tracing::info!(job_id = %id, "resume_job");
            *written = Some(job);
        }
        None => {
            // A trigger that can never fire again: RuQi removes the job and answers OK.
            state.store.remove_job(id).await?;
            tracing::info!(job_id = %id, "resume_job: trigger will never fire; Removed job");
        }
    }
    state.scheduler.wake();
    Ok(Reply::Ok)
}

async fn job_show(state: &AppState, id: &JobId) -> Result<Reply, ApiError> {
    let job = existing(state, id).await?;
    let tz = job.zone(state.tz);
    let mut data = json!({
        "nexttime": job.next_run_time.map_or_else(|| "None".to_owned(), |t| format_python(t, tz)),
        "job_id": job.id.as_str(),
        "cmd": job.cmd,
        "rule": job.trigger.rule(),
        "job_trigger": job.trigger.kind().as_str(),
        "job_name": job.name,
    });
    zone_fields(&mut data, &job);
    if let Some(map) = data.as_object_mut() {
        super::follow::show(map, &job, tz);
    }
    if let (Some(rule), Some(map)) = (&job.calendar, data.as_object_mut())
        && let Some(note) = job.next_run_time.and_then(|t| state.calendars.note(rule, t, tz))
    {
        map.insert("calendar_note".into(), json!(note));
    }
    Ok(Reply::Data(data))
}

/// For a job with its own zone (an extension of RuQi's shape, so jobs added the 1.x way look
/// exactly as in 1.x): `timezone`, and the next run time as RFC 3339 with its offset, which
/// tells the two occurrences of a repeated local hour apart.
fn zone_fields(data: &mut Value, job: &Job) {
    let Some(map) = data.as_object_mut() else { return };
    let p = &job.policy;
    let optional = [
        ("calendar", job.calendar.as_ref().map(|rule| json!(rule.to_string()))),
        ("timeout", p.timeout_secs.map(|t| json!(t))),
        ("kill_grace", p.kill_grace_secs.map(|g| json!(g))),
        ("misfire", p.misfire.map(|m| json!(m.as_str()))),
        ("misfire_grace", p.misfire_grace_secs.map(|g| json!(g))),
        ("jitter", p.jitter_secs.map(|j| json!(j))),
        ("overlap", p.overlap.map(|o| json!(o.as_str()))),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            map.insert(key.into(), value);
        }
    }
    if p.retries > 0 {
        map.insert("retries".into(), json!(p.retries));
        map.insert("retry_delay".into(), json!(p.retry_delay_secs.unwrap_or(crate::model::DEFAULT_RETRY_DELAY_SECS)));
        map.insert("retry_backoff".into(), json!(p.retry_backoff.unwrap_or(crate::model::DEFAULT_RETRY_BACKOFF)));
        map.insert(
            "retry_max_delay".into(),
            json!(p.retry_max_delay_secs.unwrap_or(crate::model::DEFAULT_RETRY_MAX_DELAY_SECS)),
        );
    }
    if let Some(tz) = job.timezone {
        map.insert("timezone".into(), json!(tz.name()));
        let rfc = job.next_run_time.map(|t| {
            let local = crate::trigger::utc_to_local(t, tz);
            let offset = (local - t.naive_utc()).num_seconds() as i32;
            chrono::FixedOffset::east_opt(offset)
                .map(|o| t.with_timezone(&o).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false))
                .unwrap_or_else(|| t.to_rfc3339())
        });
        map.insert("next_run_time_rfc3339".into(), json!(rfc));
    }
}

/// The `display` parameter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Display {
    Table,
    Text,
}

fn display(p: &Params) -> Result<Display, ApiError> {
    match p.string("display")?.as_deref() {
        None | Some("table") => Ok(Display::Table),
        Some("text") => Ok(Display::Text),
        Some(other) => {
            Err(ApiError::BadParams(format!("Param check failed: display must be table or text, not {other}")))
        }
    }
}

/// RuQi's paging: 1-based (`page_index` 0 acts as 1), `page_size` 0 = no limit, and no paging
/// at all without a `page_index` (unless the route pages by default).
fn page(p: &Params, default_index: Option<u64>) -> Result<Page, ApiError> {
    let size = p.uint("page_size")?.unwrap_or(15);
    match p.uint("page_index")?.or(default_index) {
        None => Ok(Page::ALL),
        Some(_) if size == 0 => Ok(Page::ALL),
        Some(index) => Ok(Page { offset: (index.max(1) - 1).saturating_mul(size), limit: Some(size) }),
    }
}

const JOB_TEXT_HEADERS: [&str; 7] = ["job_id", "job_name", "job_trigger", "rule", "next_run_time", "c_time", "cmd"];
const HISTORY_TEXT_HEADERS: [&str; 8] =
    ["id", "c_time", "job_id", "job_name", "success", "cost", "scheduler_name", "output"];

fn job_item(j: &Job, node_tz: Tz) -> Value {
    let tz = j.zone(node_tz);
    let mut item = json!({
        "next_run_time": j.next_run_time.map(|t| format_seconds(t, tz)),
        "job_id": j.id.as_str(),
        "c_time": format_seconds(j.created, tz),
        "cmd": j.cmd,
        "rule": j.trigger.rule(),
        "job_trigger": j.trigger.kind().as_str(),
        "job_name": j.name,
    });
    zone_fields(&mut item, j);
    if let Some(map) = item.as_object_mut() {
        super::follow::show(map, j, tz);
    }
    item
}

fn job_cells(j: &Job, node_tz: Tz) -> Vec<String> {
    let tz = j.zone(node_tz);
    vec![
        j.id.to_string(),
        j.name.clone(),
        j.trigger.kind().as_str().to_owned(),
        j.trigger.rule(),
        j.next_run_time.map_or_else(|| "paused".to_owned(), |t| format_seconds(t, tz)),
        format_seconds(j.created, tz),
        j.cmd.clone(),
    ]
}

/// No rows, only the total: what an unpaged listing asks the store before streaming rows.
const COUNT_ONLY: Page = Page { offset: 0, limit: Some(0) };

async fn job_list(state: &AppState, p: &Params) -> Result<Reply, ApiError> {
    let filter = JobFilter { job_id: p.string("job_id")?, job_name: p.string("job_name")?, with_calendar: false };
    let shown = display(p)?;
    let page = page(p, None)?;
    let tz = state.tz;
    if page == Page::ALL {
        // Every row, as RuQi answers: streamed, so memory does not grow with the table.
        let (total, _) = state.store.list_jobs(&filter, COUNT_ONLY).await?;
        let rows = state.store.stream_jobs(&filter).await?;
        return Ok(match shown {
            Display::Text => Reply::Stream(
                listing::text(&JOB_TEXT_HEADERS, total, rows, move |j| job_cells(j, tz)),
                "text/plain; charset=utf-8",
            ),
            Display::Table => Reply::Stream(listing::json(total, rows, move |j| job_item(j, tz)), "application/json"),
        });
    }
    let (total, jobs) = state.store.list_jobs(&filter, page).await?;
    if shown == Display::Text {
        let rows: Vec<Vec<String>> = jobs.iter().map(|j| job_cells(j, tz)).collect();
        return Ok(Reply::Text(text::table(&JOB_TEXT_HEADERS, &rows, total)));
    }
    let list: Vec<Value> = jobs.iter().map(|j| job_item(j, tz)).collect();
    Ok(Reply::Data(json!({"total": total, "list": list})))
}

fn history_item(r: &HistoryRecord, tz: Tz) -> Value {
    json!({
        "cmd_cost": r.cost,
        "job_name": r.job_name,
        "job_id": r.job_id,
        "cmd_output": r.output,
        "c_time": format_seconds(r.created, tz),
        "cmd": r.cmd,
        "id": r.id,
        "scheduler_name": r.scheduler_name,
        "cmd_is_success": r.success,
        "run_id": r.run.as_ref().map(|m| m.run_id.as_str()),
        "fire_time": r.fire_time.map(|t| format_python(t, tz)),
        "started": r.run.as_ref().map(|m| format_python(m.started, tz)),
        "ended": r.run.as_ref().map(|m| format_python(m.ended, tz)),
        "attempt": r.run.as_ref().map(|m| m.attempt),
        "trigger": r.run.as_ref().map(|m| m.trigger.as_str()),
        "outcome": r.run.as_ref().map(|m| m.outcome.as_str()),
    })
}

fn history_cells(r: &HistoryRecord, tz: Tz) -> Vec<String> {
    let out: String = r.output.lines().next().unwrap_or_default().chars().take(60).collect();
    vec![
        r.id.to_string(),
        format_seconds(r.created, tz),
        r.job_id.clone(),
        r.job_name.clone(),
        if r.success { "ok" } else { "FAILED" }.to_owned(),
        format!("{:.3}", r.cost),
        r.scheduler_name.clone(),
        out,
    ]
}

async fn history_list(state: &AppState, p: &Params) -> Result<Reply, ApiError> {
    let filter = HistoryFilter {
        job_id: p.string("job_id")?,
        job_name: p.string("job_name")?,
        success: p.boolean("is_success")?,
        scheduler_name: p.string("scheduler_name")?,
    };
    let shown = display(p)?;
    let page = page(p, Some(0))?;
    let tz = state.tz;
    if page == Page::ALL {
        let (total, _) = state.store.list_history(&filter, COUNT_ONLY).await?;
        let rows = state.store.stream_history(&filter).await?;
        return Ok(match shown {
            Display::Text => Reply::Stream(
                listing::text(&HISTORY_TEXT_HEADERS, total, rows, move |r| history_cells(r, tz)),
                "text/plain; charset=utf-8",
            ),
            Display::Table => {
                Reply::Stream(listing::json(total, rows, move |r| history_item(r, tz)), "application/json")
            }
        });
    }
    let (total, rows) = state.store.list_history(&filter, page).await?;
    if shown == Display::Text {
        let cells: Vec<Vec<String>> = rows.iter().map(|r| history_cells(r, tz)).collect();
        return Ok(Reply::Text(text::table(&HISTORY_TEXT_HEADERS, &cells, total)));
    }
    let list: Vec<Value> = rows.iter().map(|r| history_item(r, tz)).collect();
    Ok(Reply::Data(json!({"total": total, "list": list})))
}

async fn history_clear(state: &AppState, p: &Params) -> Result<Reply, ApiError> {
    let filter = HistoryFilter { job_id: p.string("job_id")?, job_name: p.string("job_name")?, ..Default::default() };
    let retention_day = p.uint("retention_day")?.unwrap_or(180);
    let limit = p.uint("limit_num")?.unwrap_or(1000);
    let days = i64::try_from(retention_day).ok().and_then(chrono::Duration::try_days);
    let Some(days) = days.filter(|_| retention_day <= 36_500) else {
        return Err(ApiError::BadParams("Param check failed: retention_day must be at most 36500".into()));
    };
    let before = state.clock.now() - days;
    let deleted = state.store.clear_history(&filter, before, limit).await?;
    tracing::info!(deleted, retention_day, "job_history_clear");
    Ok(Reply::Data(json!({"deleted": deleted})))
}

fn status(state: &AppState) -> Reply {
    let s = state.scheduler.status();
    let tz = state.tz;
    let wait = match (s.check_time, s.next_wakeup_time, s.wait_seconds) {
        (None, _, _) | (_, _, None) => Value::Null,
        (Some(_), None, Some(_)) => json!(IDLE_WAIT.as_secs()),
        (Some(_), Some(_), Some(w)) if w <= 0.0 => json!(0),
        (Some(_), Some(_), Some(w)) => json!(((w.min(TIMEOUT_MAX)) * 1e6).round() / 1e6),
    };
    Reply::Data(json!({
        "wait_seconds": wait,
        "next_wakeup_time": s.next_wakeup_time.map(|t| format_seconds(t, tz)),
        "check_time": s.check_time.map(|t| format_seconds(t, tz)),
    }))
}

/// The calendars this node loaded, and files that failed to parse (`calendar_list`).
fn calendar_list(state: &AppState) -> Reply {
    let list: Vec<Value> = state
        .calendars
        .statuses()
        .into_iter()
        .map(|s| {
            let cal = s.calendar.as_deref();
            json!({
                "name": s.name,
                "status": if cal.is_some() { "loaded" } else { "failed" },
                "description": cal.map(|c| c.description.clone()),
                "source": cal.map(|c| c.source.clone()),
                "file": cal.map(|c| c.file.display().to_string()),
                "years": cal.map_or_else(Vec::new, |c| c.years.keys().copied().collect()),
                "error": s.error,
            })
        })
        .collect();
    Reply::Data(json!({"total": list.len(), "list": list}))
}

/// A calendar's working and rest days in one month (`calendar_days`, `month=YYYY-MM`).
fn calendar_days(state: &AppState, p: &Params) -> Result<Reply, ApiError> {
    let name = p.required_string("calendar")?;
    let raw_month = p.required_string("month")?;
    let first = chrono::NaiveDate::parse_from_str(&format!("{raw_month}-01"), "%Y-%m-%d")
        .ok()
        .filter(|d| (1900..=9999).contains(&chrono::Datelike::year(d)) && raw_month.len() == 7)
        .ok_or_else(|| ApiError::BadParams(format!("Param check failed: month {raw_month:?} is not YYYY-MM")))?;
    let Some(cal) = state.calendars.get(&name) else {
        let e = state
            .calendars
            .check(&name)
            .err()
            .map_or_else(|| format!("calendar {name:?} is not loaded"), |e| e.to_string());
        return Err(ApiError::Refused(format!("Param check failed: {e}")));
    };
    let (mut work, mut rest) = (Vec::new(), Vec::new());
    let mut covered = true;
    for day in first.iter_days().take_while(|d| chrono::Datelike::month(d) == chrono::Datelike::month(&first)) {
        let info = cal.day(day);
        covered &= info.covered;
        let text = day.format("%Y-%m-%d").to_string();
        if info.working { work.push(text) } else { rest.push(text) }
    }
    let mut data = json!({
        "calendar": cal.name, "month": raw_month, "covered": covered, "workdays": work, "rest_days": rest,
    });
    if !covered && let Some(map) = data.as_object_mut() {
        map.insert(
            "note".into(),
            json!(format!(
                "{} has no data for {}: Monday to Friday are shown as working days",
                cal.name,
                chrono::Datelike::year(&first)
            )),
        );
    }
    Ok(Reply::Data(data))
}
