//! The in-memory store: nothing survives a restart. For tests and throwaway runs.
//!
//! One `Mutex` around everything: operations are short and never await while holding it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use futures_util::StreamExt;

use super::{FinishOutcome, JobStore, RowStream, StoreError};
use crate::clock::Timestamp;
use crate::model::{ClaimedRun, HistoryFilter, HistoryRecord, Job, JobFilter, JobId, NodeSeen, Page};

#[derive(Debug, Clone)]
struct Entry {
    job: Job,
    claim_owner: Option<String>,
    lease_until: Option<Timestamp>,
    revision: i64,
}

#[derive(Debug, Default)]
struct Inner {
    jobs: BTreeMap<String, Entry>,
    history: Vec<HistoryRecord>,
    next_history_id: i64,
    nodes: BTreeMap<String, NodeSeen>,
}

/// See the module doc.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn page_of<T>(rows: Vec<T>, page: Page) -> Vec<T> {
    let it = rows.into_iter().skip(page.offset as usize);
    match page.limit {
        Some(n) => it.take(n as usize).collect(),
        None => it.collect(),
    }
}

fn history_matches(r: &HistoryRecord, f: &HistoryFilter) -> bool {
    f.job_id.as_ref().is_none_or(|v| *v == r.job_id)
        && f.job_name.as_ref().is_none_or(|v| *v == r.job_name)
        && f.success.is_none_or(|v| v == r.success)
        && f.scheduler_name.as_ref().is_none_or(|v| *v == r.scheduler_name)
}

fn claimable(e: &Entry, now: Timestamp) -> bool {
    e.job.next_run_time.is_some_and(|t| t <= now) && (e.claim_owner.is_none() || e.lease_until.is_some_and(|l| l < now))
}

#[async_trait]
impl JobStore for MemoryStore {
    async fn add_job(&self, job: &Job) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.jobs.contains_key(job.id.as_str()) {
            return Err(StoreError::AlreadyExists(job.id.to_string()));
        }
        let entry = Entry { job: job.clone(), claim_owner: None, lease_until: None, revision: 1 };
        inner.jobs.insert(job.id.to_string(), entry);
        Ok(())
    }

    async fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let e = inner.jobs.get_mut(job.id.as_str()).ok_or_else(|| StoreError::NotFound(job.id.to_string()))?;
        let created = e.job.created;
        e.job = job.clone();
        e.job.created = created;
        e.revision += 1;
        Ok(())
    }

    async fn remove_job(&self, id: &JobId) -> Result<(), StoreError> {
        self.lock().jobs.remove(id.as_str()).map(|_| ()).ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        Ok(self.lock().jobs.get(id.as_str()).map(|e| e.job.clone()))
    }

    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<(u64, Vec<Job>), StoreError> {
        let inner = self.lock();
        let mut rows: Vec<Job> = inner
            .jobs
            .values()
            .map(|e| &e.job)
            .filter(|j| filter.job_id.as_ref().is_none_or(|v| v == j.id.as_str()))
            .filter(|j| filter.job_name.as_ref().is_none_or(|v| *v == j.name))
            .cloned()
            .collect();
        rows.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        Ok((rows.len() as u64, page_of(rows, page)))
    }

    async fn stream_jobs(&self, filter: &JobFilter) -> Result<RowStream<Job>, StoreError> {
        // Already in memory: the list is the stream.
        let (_, jobs) = self.list_jobs(filter, Page::ALL).await?;
        Ok(futures_util::stream::iter(jobs.into_iter().map(Ok)).boxed())
    }

    async fn next_wakeup(&self) -> Result<Option<Timestamp>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .jobs
            .values()
            .filter_map(|e| {
                let next = e.job.next_run_time?;
                match (&e.claim_owner, e.lease_until) {
                    (None, _) => Some(next),
                    (Some(_), Some(lease)) => Some(next.max(lease)),
                    (Some(_), None) => None,
                }
            })
            .min())
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        node: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedRun>, StoreError> {
        let mut inner = self.lock();
        let mut due: Vec<&mut Entry> = inner.jobs.values_mut().filter(|e| claimable(e, now)).collect();
        due.sort_by_key(|e| e.job.next_run_time);
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|e| {
                e.claim_owner = Some(node.to_owned());
                e.lease_until = Some(lease_until);
                let fire_time = e.job.next_run_time.expect("claimable jobs have a next run time");
                ClaimedRun { job: e.job.clone(), fire_time, revision: e.revision }
            })
            .collect())
    }

    async fn renew_claim(&self, id: &JobId, node: &str, lease_until: Timestamp) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        match inner.jobs.get_mut(id.as_str()) {
            Some(e) if e.claim_owner.as_deref() == Some(node) => {
                e.lease_until = Some(lease_until);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn finish_run(
        &self,
        run: &ClaimedRun,
        node: &str,
        next: Option<Timestamp>,
        history: Option<&HistoryRecord>,
        _now: Timestamp,
    ) -> Result<FinishOutcome, StoreError> {
        let mut inner = self.lock();
        let id = run.job.id.as_str();
        // The run happened: its row is kept whatever became of the claim (one per fire time).
        if let Some(h) = history {
            let dup = inner
                .history
                .iter()
                .any(|r| r.job_id == h.job_id && r.fire_time.is_some() && r.fire_time == h.fire_time);
            if !dup {
                inner.next_history_id += 1;
                let mut row = h.clone();
                row.id = inner.next_history_id;
                inner.history.push(row);
            }
        }
        let (owned, current, same_fire) = match inner.jobs.get(id) {
            Some(e) => (
                e.claim_owner.as_deref() == Some(node),
                e.revision == run.revision,
                e.job.next_run_time == Some(run.fire_time),
            ),
            None => (true, false, false),
        };
        if !owned {
            return Ok(FinishOutcome::LostClaim);
        }
        if !current {
            if let Some(e) = inner.jobs.get_mut(id) {
                e.claim_owner = None;
                e.lease_until = None;
            }
            return Ok(FinishOutcome::Superseded);
        }
        if !same_fire {
            // A stale run of this node (it stalled past its lease, another node ran this fire
            // time, and this node has since claimed a later one): leave the current claim be.
            return Ok(FinishOutcome::LostClaim);
        }
        match next {
            Some(t) => {
                let e = inner.jobs.get_mut(id).expect("checked above");
                e.job.next_run_time = Some(t);
                e.claim_owner = None;
                e.lease_until = None;
            }
            None => {
                inner.jobs.remove(id);
            }
        }
        Ok(FinishOutcome::Rescheduled)
    }

    async fn release_claims(&self, node: &str) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let mut n = 0;
        for e in inner.jobs.values_mut().filter(|e| e.claim_owner.as_deref() == Some(node)) {
            e.claim_owner = None;
            e.lease_until = None;
            n += 1;
        }
        Ok(n)
    }

    async fn list_history(&self, filter: &HistoryFilter, page: Page) -> Result<(u64, Vec<HistoryRecord>), StoreError> {
        let inner = self.lock();
        let mut rows: Vec<HistoryRecord> =
            inner.history.iter().filter(|r| history_matches(r, filter)).cloned().collect();
        rows.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        Ok((rows.len() as u64, page_of(rows, page)))
    }

    async fn stream_history(&self, filter: &HistoryFilter) -> Result<RowStream<HistoryRecord>, StoreError> {
        let (_, rows) = self.list_history(filter, Page::ALL).await?;
        Ok(futures_util::stream::iter(rows.into_iter().map(Ok)).boxed())
    }

    async fn clear_history(&self, filter: &HistoryFilter, before: Timestamp, limit: u64) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let mut victims: Vec<(Timestamp, i64)> = inner
            .history
            .iter()
            .filter(|r| r.created < before && history_matches(r, filter))
            .map(|r| (r.created, r.id))
            .collect();
        victims.sort();
        victims.truncate(limit as usize);
        let ids: std::collections::HashSet<i64> = victims.iter().map(|v| v.1).collect();
        inner.history.retain(|r| !ids.contains(&r.id));
        Ok(ids.len() as u64)
    }

    async fn node_seen(&self, node: &NodeSeen) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.nodes.insert(node.name.clone(), NodeSeen { stopped: None, ..node.clone() });
        let forget = node.seen - super::NODE_FORGOTTEN_AFTER;
        inner.nodes.retain(|_, n| n.seen >= forget);
        Ok(())
    }

    async fn node_stopped(&self, name: &str, now: Timestamp) -> Result<(), StoreError> {
        if let Some(n) = self.lock().nodes.get_mut(name) {
            n.stopped = Some(now);
        }
        Ok(())
    }

    async fn nodes(&self, since: Timestamp) -> Result<Vec<NodeSeen>, StoreError> {
        let mut nodes: Vec<NodeSeen> = self.lock().nodes.values().filter(|n| n.seen >= since).cloned().collect();
        nodes.sort_by(|a, b| b.seen.cmp(&a.seen).then_with(|| a.name.cmp(&b.name)));
        Ok(nodes)
    }
}
