//! The audit trail and job versions at the API boundary: every change made through the API is
//! recorded (who: the caller's token name and address; what: the route and its parameters; for
//! a job, the fields that changed, before and after), and every definition a job is given
//! (`job_add`, `job_modify`, `job_rollback`) is kept as a version. A job's definition is the
//! set of job_add parameters that makes it: what `job_export` lists and `ruqi apply` sends.
//! Also the routes `audit_list`, `job_versions`, `job_rollback` and `job_export`.

use serde_json::{Map, Value, json};

use super::AppState;
use super::envelope::{ApiError, Params, Reply};
use super::routes::Route;
use crate::model::{AuditEntry, AuditFilter, Job, JobFilter, JobId, Page};
use crate::trigger::format_python;

/// Who made a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Its token's name (see `Tokens::caller`).
    pub name: String,
    /// Its address.
    pub peer: String,
}

/// A job's definition: the job_add parameters that make it (defaults left out), plus
/// `"paused": true` for a paused job.
pub fn definition(job: &Job) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert("job_id".into(), json!(job.id.as_str()));
    d.insert("job_name".into(), json!(job.name));
    d.insert("job_trigger".into(), json!(job.trigger.kind().as_str()));
    d.insert("rule".into(), json!(job.trigger.rule()));
    d.insert("cmd".into(), json!(job.cmd));
    let (p, f) = (&job.policy, &job.follow);
    let ids = |l: &[JobId]| json!(l.iter().map(ToString::to_string).collect::<Vec<_>>());
    let optional = [
        ("timezone", job.timezone.map(|z| json!(z.name()))),
        ("calendar", job.calendar.as_ref().map(|c| json!(c.to_string()))),
        ("timeout", p.timeout_secs.map(|v| json!(v))),
        ("kill_grace", p.kill_grace_secs.map(|v| json!(v))),
        ("retries", (p.retries > 0).then(|| json!(p.retries))),
        ("retry_delay", p.retry_delay_secs.map(|v| json!(v))),
        ("retry_backoff", p.retry_backoff.map(|v| json!(v))),
        ("retry_max_delay", p.retry_max_delay_secs.map(|v| json!(v))),
        ("misfire", p.misfire.map(|v| json!(v.as_str()))),
        ("misfire_grace", p.misfire_grace_secs.map(|v| json!(v))),
        ("jitter", p.jitter_secs.map(|v| json!(v))),
        ("overlap", p.overlap.map(|v| json!(v.as_str()))),
        ("alert", (!f.alert.is_empty()).then(|| json!(f.alert))),
        (
            "alert_on",
            (!f.alert_on.is_empty()).then(|| json!(f.alert_on.iter().map(|k| k.as_str()).collect::<Vec<_>>())),
        ),
        ("alert_quiet", f.alert_quiet_secs.map(|v| json!(v))),
        ("on_success", (!f.on_success.is_empty()).then(|| ids(&f.on_success))),
        ("on_failure", (!f.on_failure.is_empty()).then(|| ids(&f.on_failure))),
        ("pause_after_failures", f.pause_after_failures.map(|v| json!(v))),
        ("resume_after", f.resume_after_secs.map(|v| json!(v))),
        ("deadline", f.deadline_secs.map(|v| json!(v))),
        ("paused", job.next_run_time.is_none().then(|| json!(true))),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            d.insert(key.into(), value);
        }
    }
    d
}

/// The fields of two definitions that differ: (before, after), a field absent on one side as
/// `null`.
fn diff(before: &Map<String, Value>, after: &Map<String, Value>) -> (Map<String, Value>, Map<String, Value>) {
    let (mut b, mut a) = (Map::new(), Map::new());
    for key in before.keys().chain(after.keys()) {
        let (x, y) = (before.get(key).unwrap_or(&Value::Null), after.get(key).unwrap_or(&Value::Null));
        if x != y && !b.contains_key(key) {
            b.insert(key.clone(), x.clone());
            a.insert(key.clone(), y.clone());
        }
    }
    (b, a)
}

/// A change about to be made: what the audit trail needs from before it.
pub struct Pending {
    route: Route,
    params: Value,
    job_id: Option<JobId>,
    before: Option<Map<String, Value>>,
}

/// Whether `route` changes a job's definition (or its being paused): its audit entry has the
/// fields before and after.
fn changes_definition(route: Route) -> bool {
    matches!(
        route,
        Route::JobAdd | Route::JobModify | Route::JobRollback | Route::JobRemove | Route::JobPause | Route::JobResume
    )
}

/// The state before a change made by `route` (`None` for a route that changes nothing): the
/// job's definition, read only for a route that changes an existing one.
pub async fn before(state: &AppState, route: Route, p: &Params) -> Option<Pending> {
    // job_add and job_add_many have their jobs' entries written with the jobs (`added_entry`).
    if route.is_read_only() || matches!(route, Route::Wakeup | Route::JobAdd | Route::JobAddMany) {
        return None;
    }
    let job_id = p.string("job_id").ok().flatten().and_then(|id| JobId::parse(&id).ok());
    let before = match &job_id {
        Some(id) if changes_definition(route) && route != Route::JobAdd => {
            state.store.get_job(id).await.ok().flatten().map(|j| definition(&j))
        }
        _ => None,
    };
    Some(Pending { route, params: p.to_value(), job_id, before })
}

/// The run a successful answer names (`job_run`'s).
pub fn answered_run(reply: &Reply) -> Option<String> {
    match reply {
        Reply::Data(d) => d.get("run_id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// Records a change that succeeded (its answer naming `answered_run`; `written`, the job as the
/// change wrote it, `None` when it removed it): its audit entry and, when it set the job's
/// definition, that definition as the job's next version, in one transaction. A failure to
/// record is logged; the change stands.
pub async fn record(
    state: &AppState,
    pending: Pending,
    caller: &Caller,
    answered_run: Option<String>,
    written: Option<&Job>,
) {
    let action = pending.route.spec().names[0];
    let (entry, version) = entry(state, pending, caller, answered_run, written);
    if let Err(e) = state.audit.record(entry, version).await {
        tracing::error!(error = %e, action, "cannot record the change in the audit trail");
    }
}

/// The audit entry of `job` added by `caller` with `params` (job_add's, or one job of a
/// job_add_many), setting its first version: written by the store with the job.
pub fn added_entry(state: &AppState, caller: &Caller, job: &Job, params: &Params) -> (AuditEntry, Option<String>) {
    let pending =
        Pending { route: Route::JobAdd, params: params.to_value(), job_id: Some(job.id.clone()), before: None };
    entry(state, pending, caller, None, Some(job))
}

/// The audit entry of a change that succeeded, and the version it set (see [`record`]).
fn entry(
    state: &AppState,
    pending: Pending,
    caller: &Caller,
    answered_run: Option<String>,
    written: Option<&Job>,
) -> (AuditEntry, Option<String>) {
    let Pending { route, params, job_id, before } = pending;
    let action = route.spec().names[0];
    let mut detail = json!({ "params": params });
    let after = written.map(definition);
    if job_id.is_some() && changes_definition(route) {
        let (b, a) = diff(before.as_ref().unwrap_or(&Map::new()), after.as_ref().unwrap_or(&Map::new()));
        detail["before"] = Value::Object(b);
        detail["after"] = Value::Object(a);
    }
    let run_id = answered_run.or_else(|| params.get("run_id").and_then(Value::as_str).map(str::to_owned));
    let now = state.clock.now();
    let entry = AuditEntry {
        id: 0,
        at: now,
        node: state.node.clone(),
        caller: caller.name.clone(),
        peer: caller.peer.clone(),
        action: action.to_owned(),
        job_id: job_id.as_ref().map(ToString::to_string),
        run_id,
        detail: detail.to_string(),
    };
    let version = match (after, route) {
        (Some(mut def), Route::JobAdd | Route::JobModify | Route::JobRollback) => {
            def.remove("paused");
            Some(Value::Object(def).to_string())
        }
        _ => None,
    };
    (entry, version)
}

/// Writes audit entries for the API: the entries of requests that arrive together share one
/// transaction (group commit), and each request waits for its own to be written.
pub struct AuditWriter {
    queue: tokio::sync::mpsc::UnboundedSender<Queued>,
}

/// An entry, its version, and whom to tell when it is written.
type Queued = ((AuditEntry, Option<String>), tokio::sync::oneshot::Sender<Result<(), String>>);

/// Entries written in one transaction at most.
const AUDIT_BATCH: usize = 256;

impl AuditWriter {
    /// A writer into `store` (its task ends when the writer is dropped).
    pub fn start(store: std::sync::Arc<dyn crate::store::JobStore>) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::unbounded_channel::<Queued>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(AUDIT_BATCH);
            while rx.recv_many(&mut batch, AUDIT_BATCH).await > 0 {
                let (entries, waiting): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                let result = store.record_audits(&entries).await.map_err(|e| e.to_string());
                for w in waiting {
                    let _ = w.send(result.clone());
                }
            }
        });
        Self { queue }
    }

    /// Writes `entry` (with the definition it set, `version`); returns once it is written.
    pub async fn record(&self, entry: AuditEntry, version: Option<String>) -> Result<(), String> {
        let (done, written) = tokio::sync::oneshot::channel();
        self.queue.send(((entry, version), done)).map_err(|_| "the audit writer stopped".to_owned())?;
        written.await.map_err(|_| "the audit writer stopped".to_owned())?
    }
}

/// An instant parameter (`YYYY-mm-dd HH:MM:SS[.ffffff]` in the node's zone).
fn instant(state: &AppState, p: &Params, name: &str) -> Result<Option<crate::clock::Timestamp>, ApiError> {
    let Some(raw) = p.string(name)? else { return Ok(None) };
    let bad = || ApiError::BadParams(format!("Param check failed: {name} must be YYYY-mm-dd HH:MM:SS[.ffffff]"));
    if raw.trim() == "now" {
        return Err(bad());
    }
    crate::trigger::DateTrigger::parse(raw.trim(), state.tz, state.clock.now()).map(|d| Some(d.at())).map_err(|_| bad())
}

/// `audit_list`.
pub async fn audit_list(state: &AppState, p: &Params, page: Page) -> Result<Reply, ApiError> {
    let filter = AuditFilter {
        job_id: p.string("job_id")?,
        caller: p.string("caller")?,
        since: instant(state, p, "since")?,
        until: instant(state, p, "until")?,
    };
    let (total, entries) = state.store.list_audit(&filter, page).await?;
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let detail: Value = serde_json::from_str(&e.detail).unwrap_or(Value::Null);
            json!({
                "id": e.id,
                "at": format_python(e.at, state.tz),
                "node": e.node,
                "caller": e.caller,
                "peer": e.peer,
                "action": e.action,
                "job_id": e.job_id,
                "run_id": e.run_id,
                "params": detail.get("params"),
                "before": detail.get("before"),
                "after": detail.get("after"),
            })
        })
        .collect();
    Ok(Reply::Data(json!({"total": total, "list": list})))
}

/// `job_versions`.
pub async fn job_versions(state: &AppState, id: &JobId) -> Result<Reply, ApiError> {
    let versions = state.store.list_versions(id.as_str()).await?;
    if versions.is_empty() && state.store.get_job(id).await?.is_none() {
        return Err(ApiError::no_job(id.as_str()));
    }
    let current = state.store.get_job(id).await?.map(|j| {
        let mut d = definition(&j);
        d.remove("paused");
        Value::Object(d)
    });
    let list: Vec<Value> = versions
        .iter()
        .map(|v| {
            let def: Value = serde_json::from_str(&v.definition).unwrap_or(Value::Null);
            json!({
                "version": v.version,
                "at": format_python(v.at, state.tz),
                "caller": v.caller,
                "current": current.as_ref() == Some(&def),
                "definition": def,
            })
        })
        .collect();
    Ok(Reply::Data(json!({"job_id": id.as_str(), "total": list.len(), "list": list})))
}

/// The parameters that make a job's definition current, for `job_modify` with `replace`
/// (parameters a definition leaves out take their defaults) or `job_add`.
pub fn definition_params(def: &Map<String, Value>, replace: bool) -> Params {
    let mut map = def.clone();
    map.remove("paused");
    if replace {
        map.insert("replace".into(), json!(true));
    }
    Params::from_object(map)
}

/// The version `version` of job `id`'s definition.
pub async fn version_definition(state: &AppState, id: &JobId, version: u32) -> Result<Map<String, Value>, ApiError> {
    let v = state
        .store
        .get_version(id.as_str(), version)
        .await?
        .ok_or_else(|| ApiError::Refused(format!("job {id} has no version {version} (job_versions lists them)")))?;
    match serde_json::from_str(&v.definition) {
        Ok(Value::Object(def)) => Ok(def),
        _ => Err(ApiError::Refused(format!("version {version} of job {id} cannot be read"))),
    }
}

/// `job_export`: every job's definition, oldest first (the order `ruqi apply` adds them in).
pub async fn job_export(state: &AppState) -> Result<Reply, ApiError> {
    let (_, mut jobs) = state.store.list_jobs(&JobFilter::default(), Page::ALL).await?;
    jobs.reverse();
    let list: Vec<Value> = jobs.iter().map(|j| Value::Object(definition(j))).collect();
    Ok(Reply::Data(json!({"total": list.len(), "list": list})))
}
