//! The follow-up parameters of job_add and job_modify (`alert`, `alert_on`, `alert_quiet`,
//! `on_success`, `on_failure`, `pause_after_failures`, `resume_after`, `deadline`), checked
//! before anything is written: alert targets through the plugins that would deliver them,
//! chained job ids against the store (they exist, and no chain loops). Also what `job_show`
//! adds for them, the guard of `job_remove` for chained-to jobs, and `alert_list`.

use serde_json::{Value, json};

use super::AppState;
use super::envelope::{ApiError, Params, Reply};
use crate::clock::Timestamp;
use crate::model::{AlertFilter, AlertKind, AlertRecord, AlertState, FollowUp, Job, JobId, MAX_PROBE_WAIT_SECS, Page};
use crate::trigger::format_python;

/// Most alert targets, and chained jobs per list, of one job.
const MAX_LIST: usize = 20;
/// Longest alert target.
const MAX_TARGET_LEN: usize = 1000;
/// Longest `alert_quiet`, `deadline` (a week).
const MAX_WINDOW_SECS: u64 = 7 * 86_400;
/// Most failed runs in a row the breaker may wait for.
const MAX_PAUSE_AFTER: u64 = 1000;

/// A list parameter: a JSON list of strings, or comma-separated text; `none` (or an empty
/// JSON list) is the empty list; `None` when not given.
fn list(p: &Params, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    let bad = || {
        ApiError::BadParams(format!(
            "Param check failed: {name} must be a comma-separated list or a JSON list of strings"
        ))
    };
    let items: Vec<String> = match p.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => {
            items.iter().map(|v| v.as_str().map(|s| s.trim().to_owned()).ok_or_else(bad)).collect::<Result<_, _>>()?
        }
        Some(Value::String(s)) if s.trim() == "none" => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(|s| s.trim().to_owned()).collect(),
        Some(_) => return Err(bad()),
    };
    if items.iter().any(String::is_empty) {
        return Err(ApiError::BadParams(format!("Param check failed: {name} has an empty item")));
    }
    if items.len() > MAX_LIST {
        return Err(ApiError::BadParams(format!("Param check failed: {name} has more than {MAX_LIST} items")));
    }
    let mut seen = std::collections::HashSet::new();
    Ok(Some(items.into_iter().filter(|i| seen.insert(i.clone())).collect()))
}

/// A count parameter of at most `max`.
fn count(p: &Params, name: &str, max: u64) -> Result<Option<u64>, ApiError> {
    match p.uint(name)? {
        Some(n) if n > max => Err(ApiError::BadParams(format!("Param check failed: {name} must be at most {max}"))),
        n => Ok(n),
    }
}

/// The follow-ups a job_add/job_modify asks for, over `base` (a new job's: none; a modified
/// job's own: a parameter not given keeps it), all checked: targets served by a loaded plugin
/// that takes them, chained jobs that exist and make no loop with the chains in the store.
pub async fn follow_up(state: &AppState, p: &Params, id: &JobId, base: FollowUp) -> Result<FollowUp, ApiError> {
    let mut f = base;
    if let Some(targets) = list(p, "alert")? {
        for t in &targets {
            if t.len() > MAX_TARGET_LEN {
                return Err(ApiError::BadParams(format!(
                    "Param check failed: an alert target is longer than {MAX_TARGET_LEN} characters"
                )));
            }
            let cmd = crate::followup::sample_cmd(t);
            state
                .validator
                .validate(&cmd)
                .await
                .map_err(|reason| ApiError::Refused(format!("alert target {t:?} cannot be used: {reason}")))?;
        }
        f.alert = targets;
    }
    if let Some(kinds) = list(p, "alert_on")? {
        f.alert_on = kinds
            .iter()
            .map(|k| {
                AlertKind::parse(k).ok_or_else(|| {
                    ApiError::BadParams(format!(
                        "Param check failed: alert_on {k:?} is not one of {}",
                        AlertKind::NAMES.join(", ")
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(q) = count(p, "alert_quiet", MAX_WINDOW_SECS)? {
        f.alert_quiet_secs = Some(q);
    }
    if let Some(n) = count(p, "pause_after_failures", MAX_PAUSE_AFTER)? {
        f.pause_after_failures = (n > 0).then_some(n as u32);
    }
    if let Some(s) = count(p, "resume_after", MAX_PROBE_WAIT_SECS)? {
        f.resume_after_secs = (s > 0).then_some(s);
    }
    if let Some(s) = count(p, "deadline", MAX_WINDOW_SECS)? {
        f.deadline_secs = (s > 0).then_some(s);
    }
    let ids = |name: &str| -> Result<Option<Vec<JobId>>, ApiError> {
        list(p, name)?
            .map(|l| {
                l.iter()
                    .map(|i| {
                        JobId::parse(i).map_err(|e| ApiError::BadParams(format!("Param check failed: {name}: {e}")))
                    })
                    .collect()
            })
            .transpose()
    };
    let (on_success, on_failure) = (ids("on_success")?, ids("on_failure")?);
    if on_success.is_some() || on_failure.is_some() {
        f.on_success = on_success.unwrap_or(f.on_success);
        f.on_failure = on_failure.unwrap_or(f.on_failure);
        check_chains(state, id, &f).await?;
    }
    Ok(f)
}

/// Refuses chains to jobs that do not exist and chains that would loop (naming the loop).
async fn check_chains(state: &AppState, id: &JobId, f: &FollowUp) -> Result<(), ApiError> {
    let next = |f: &FollowUp| -> Vec<JobId> { f.on_success.iter().chain(&f.on_failure).cloned().collect() };
    for target in next(f) {
        if target != *id && state.store.get_job(&target).await?.is_none() {
            return Err(ApiError::Refused(format!("cannot chain to job {target}: there is no such job")));
        }
    }
    // Breadth-first from the job over the chains as they would be: a path back to it is a loop.
    let mut parent: std::collections::HashMap<JobId, JobId> = std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([id.clone()]);
    while let Some(job) = queue.pop_front() {
        let targets = if job == *id {
            next(f)
        } else {
            state.store.get_job(&job).await?.map(|j| next(&j.follow)).unwrap_or_default()
        };
        for target in targets {
            if target == *id {
                let mut cycle = vec![job.to_string()];
                let mut at = &job;
                while let Some(p) = parent.get(at) {
                    cycle.push(p.to_string());
                    at = p;
                }
                cycle.reverse();
                cycle.push(id.to_string());
                return Err(ApiError::Refused(format!("the chain would loop: {}", cycle.join(" -> "))));
            }
            if !parent.contains_key(&target) {
                parent.insert(target.clone(), job.clone());
                queue.push_back(target);
            }
        }
    }
    Ok(())
}

/// Sets the job's deadline watch after its next run time changed: the fire time it watched is
/// kept (a modify does not forgive a late run), else its next fire time; none when paused.
pub fn watch_deadline(job: &mut Job) {
    job.health.deadline_fire = match (job.follow.deadline_secs, job.next_run_time) {
        (Some(_), Some(next)) => Some(job.health.deadline_fire.map_or(next, |w| w.min(next))),
        _ => None,
    };
}

/// Refuses to remove a job other jobs chain to, naming them (unless forced: their chains then
/// drop it).
pub async fn check_remove(state: &AppState, id: &JobId, force: bool, now: Timestamp) -> Result<(), ApiError> {
    let by = state.store.jobs_chaining_to(id).await?;
    if by.is_empty() {
        return Ok(());
    }
    if !force {
        let names: Vec<String> = by.iter().map(|j| j.id.to_string()).collect();
        return Err(ApiError::Refused(format!(
            "job {id} is chained to by {}; give force=1 to remove it anyway (their chains then drop it)",
            names.join(", ")
        )));
    }
    for mut job in by {
        job.follow.on_success.retain(|j| j != id);
        job.follow.on_failure.retain(|j| j != id);
        job.updated = now;
        state.store.update_job(&job).await?;
    }
    Ok(())
}

/// What `job_show` adds for a job's follow-ups (only what is set).
pub fn show(map: &mut serde_json::Map<String, Value>, job: &Job, tz: chrono_tz::Tz) {
    let f = &job.follow;
    let ids = |l: &[JobId]| json!(l.iter().map(ToString::to_string).collect::<Vec<_>>());
    if !f.alert.is_empty() {
        map.insert("alert".into(), json!(f.alert));
        map.insert("alert_on".into(), json!(f.kinds().iter().map(|k| k.as_str()).collect::<Vec<_>>()));
        map.insert("alert_quiet".into(), json!(f.quiet().num_seconds()));
    } else if !f.alert_on.is_empty() {
        map.insert("alert_on".into(), json!(f.alert_on.iter().map(|k| k.as_str()).collect::<Vec<_>>()));
    }
    if !f.on_success.is_empty() {
        map.insert("on_success".into(), ids(&f.on_success));
    }
    if !f.on_failure.is_empty() {
        map.insert("on_failure".into(), ids(&f.on_failure));
    }
    let optional = [
        ("pause_after_failures", f.pause_after_failures.map(|n| json!(n))),
        ("resume_after", f.resume_after_secs.map(|s| json!(s))),
        ("deadline", f.deadline_secs.map(|s| json!(s))),
        ("paused_reason", job.health.paused_reason.as_ref().map(|r| json!(r))),
        ("next_probe", job.health.probe_at.map(|t| json!(format_python(t, tz)))),
        ("deadline_fire", job.health.deadline_fire.map(|t| json!(format_python(t, tz)))),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            map.insert(key.into(), value);
        }
    }
    if job.health.fail_streak > 0 {
        map.insert("failures_in_a_row".into(), json!(job.health.fail_streak));
    }
}

/// An alert as `alert_list` shows it.
fn alert_item(a: &AlertRecord, state: &AppState) -> Value {
    let settings = &state.dispatcher.config().alerts;
    json!({
        "id": a.id,
        "job_id": a.job_id,
        "job_name": a.job_name,
        "kind": a.kind.as_str(),
        "target": a.target,
        "state": a.state.as_str(),
        "attempts": a.attempts,
        "created": format_python(a.created, state.tz),
        "sent": a.sent.map(|t| format_python(t, state.tz)),
        "answer": a.answer,
        "suppressed": a.suppressed,
        "suppressed_before": a.earlier_suppressed,
        "fire_time": a.fire_time.map(|t| format_python(t, state.tz)),
        "run_id": a.run_id,
        "node": a.node,
        "outcome": a.outcome.map(|o| o.as_str()),
        "text": crate::followup::alert_text(a, settings, state.tz),
    })
}

/// `alert_list`.
pub async fn alert_list(state: &AppState, p: &Params, page: Page) -> Result<Reply, ApiError> {
    let one_of = super::ruqi::one_of;
    let kind = one_of(p, "kind", &AlertKind::NAMES)?.and_then(|k| AlertKind::parse(&k));
    let state_ = one_of(p, "state", &["pending", "sent", "failed"])?.and_then(|s| AlertState::parse(&s));
    let filter = AlertFilter { job_id: p.string("job_id")?, kind, state: state_ };
    let (total, alerts) = state.store.list_alerts(&filter, page).await?;
    let list: Vec<Value> = alerts.iter().map(|a| alert_item(a, state)).collect();
    Ok(Reply::Data(json!({"total": total, "list": list})))
}
