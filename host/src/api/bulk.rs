//! Adding jobs fast: `job_add_many` (a list of jobs checked one by one as `job_add` checks them,
//! added in one transaction), and the writer that gives the `job_add` requests arriving together
//! one transaction (group commit), as the dispatcher does for run ends.

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::AppState;
use super::envelope::{ApiError, Params, Reply};
use super::routes::Route;
use crate::model::{AuditEntry, Job};
use crate::store::{JobStore, StoreError};

/// An audit entry and the version it sets.
type Audit = (AuditEntry, Option<String>);
/// A job to add, its audit entry, and whom to tell when it is written.
type Queued = (Job, Audit, oneshot::Sender<Result<(), StoreError>>);

/// Writes the jobs `job_add` adds, each with its audit entry and first version in the same
/// transaction: the jobs of requests that arrive together share one (group commit), and each
/// request waits for its own job's answer.
pub struct JobWriter {
    queue: mpsc::UnboundedSender<Queued>,
}

/// Jobs inserted in one transaction at most.
const JOB_BATCH: usize = 512;

impl JobWriter {
    /// A writer into `store` (its task ends when the writer is dropped).
    pub fn start(store: std::sync::Arc<dyn JobStore>) -> Self {
        let (queue, mut rx) = mpsc::unbounded_channel::<Queued>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(JOB_BATCH);
            while rx.recv_many(&mut batch, JOB_BATCH).await > 0 {
                let (mut jobs, mut audits, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
                for (job, audit, w) in batch.drain(..) {
                    jobs.push(job);
                    audits.push(audit);
                    waiting.push(w);
                }
                match store.add_jobs(&jobs, &audits, false).await {
                    Ok(added) => {
                        for ((job, added), w) in jobs.iter().zip(added).zip(waiting) {
                            let answer =
                                if added { Ok(()) } else { Err(StoreError::AlreadyExists(job.id.to_string())) };
                            let _ = w.send(answer);
                        }
                    }
                    // One job the database refuses must not fail the others: each alone, then.
                    Err(_) => {
                        for ((job, audit), w) in jobs.into_iter().zip(audits).zip(waiting) {
                            let one =
                                store.add_jobs(std::slice::from_ref(&job), std::slice::from_ref(&audit), false).await;
                            let _ = w.send(match one {
                                Ok(added) if added.first() == Some(&true) => Ok(()),
                                Ok(_) => Err(StoreError::AlreadyExists(job.id.to_string())),
                                Err(e) => Err(e),
                            });
                        }
                    }
                }
            }
        });
        Self { queue }
    }

    /// Adds `job` with its audit entry; returns once both are written (`AlreadyExists` when its
    /// id is taken: then neither is).
    pub async fn add(&self, job: Job, audit: Audit) -> Result<(), StoreError> {
        let (done, written) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the job writer stopped".to_owned());
        self.queue.send((job, audit, done)).map_err(|_| stopped())?;
        written.await.map_err(|_| stopped())?
    }
}

/// Most jobs one `job_add_many` carries.
pub const MAX_JOBS_PER_ADD: usize = 100_000;
/// Refusals an atomic `job_add_many`'s reason names (the rest are counted).
const REASONS_NAMED: usize = 5;

/// A job of a `job_add_many` that was not added: its place in the list, id, and why.
struct Refusal {
    index: usize,
    job_id: Option<String>,
    error: ApiError,
}

/// `job_add_many`: each job of the list checked as job_add checks it, those that pass added in one
/// transaction. With `atomic`, one refusal leaves them all out and is the answer's reason.
pub(super) async fn job_add_many(
    state: &AppState,
    p: &Params,
    caller: &super::audit::Caller,
) -> Result<Reply, ApiError> {
    let atomic = p.boolean("atomic")?.unwrap_or(false);
    let bad_list =
        || ApiError::BadParams("Param check failed: jobs must be a JSON list of objects of job_add parameters".into());
    let items = match p.get("jobs") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::String(text)) => serde_json::from_str::<Vec<Value>>(text).map_err(|_| bad_list())?,
        _ => return Err(bad_list()),
    };
    if items.len() > MAX_JOBS_PER_ADD {
        return Err(ApiError::BadParams(format!(
            "Param check failed: jobs holds {} jobs; one job_add_many adds at most {MAX_JOBS_PER_ADD}",
            items.len()
        )));
    }
    let spec = Route::JobAdd.spec();
    let names = |params: &[super::routes::Param]| params.iter().map(|p| p.name).collect::<Vec<_>>();
    let (required, optional) = (names(spec.required), names(spec.optional));
    let now = state.clock.now();
    let mut checks = super::ruqi::CmdChecks::new();
    let (mut jobs, mut from, mut params, mut refused) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (index, item) in items.into_iter().enumerate() {
        let Value::Object(map) = item else {
            refused.push(Refusal { index, job_id: None, error: bad_list() });
            continue;
        };
        let job_id = map.get("job_id").and_then(Value::as_str).map(str::to_owned);
        let item = Params::from_object(map);
        let job = match item.check(&required, &optional) {
            Ok(()) => super::ruqi::new_job(state, &item, now, &mut checks).await,
            Err(e) => Err(e),
        };
        match job {
            Ok(job) => {
                jobs.push(job);
                from.push(index);
                params.push(item);
            }
            Err(error) => refused.push(Refusal { index, job_id, error }),
        }
    }
    if atomic && !refused.is_empty() {
        return Err(atomic_refusal(&refused, from.len() + refused.len()));
    }
    let audits: Vec<Audit> =
        jobs.iter().zip(&params).map(|(job, p)| super::audit::added_entry(state, caller, job, p)).collect();
    let added = state.store.add_jobs(&jobs, &audits, atomic).await?;
    // An atomic list with an id taken is written not at all; `added` still says which one.
    let none_added = atomic && added.contains(&false);
    let total = jobs.len() + refused.len();
    let mut ids = Vec::with_capacity(jobs.len());
    for ((job, index), added) in jobs.iter().zip(from).zip(added) {
        if !added {
            let error = ApiError::from(StoreError::AlreadyExists(job.id.to_string()));
            refused.push(Refusal { index, job_id: Some(job.id.to_string()), error });
        } else if !none_added {
            ids.push(job.id.as_str());
        }
    }
    refused.sort_by_key(|r| r.index);
    if none_added {
        return Err(atomic_refusal(&refused, total));
    }
    tracing::info!(added = ids.len(), refused = refused.len(), "add_jobs");
    if !ids.is_empty() {
        state.scheduler.wake();
    }
    let refused: Vec<Value> = refused
        .iter()
        .map(|r| json!({"index": r.index, "job_id": r.job_id, "stat": r.error.stat(), "reason": r.error.to_string()}))
        .collect();
    Ok(Reply::Data(json!({ "count": ids.len(), "added": ids, "refused": refused })))
}

/// The reason an atomic `job_add_many` added nothing: how many of `total` were refused, and why the
/// first few were.
fn atomic_refusal(refused: &[Refusal], total: usize) -> ApiError {
    let mut reason = format!("{} of {total} jobs refused, none added:", refused.len());
    for r in refused.iter().take(REASONS_NAMED) {
        let id = r.job_id.as_deref().map(|i| format!(" ({i})")).unwrap_or_default();
        reason.push_str(&format!(" job {}{id}: {};", r.index, r.error));
    }
    if refused.len() > REASONS_NAMED {
        reason.push_str(&format!(" and {} more", refused.len() - REASONS_NAMED));
    }
    let reason = reason.trim_end_matches(';').to_owned();
    if refused.iter().all(|r| matches!(r.error, ApiError::BadParams(_))) {
        ApiError::BadParams(reason)
    } else {
        ApiError::Refused(reason)
    }
}
