//! The in-memory store: nothing survives a restart. For tests and throwaway runs.
//!
//! One `Mutex` around everything: operations are short and never await while holding it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use futures_util::StreamExt;

use super::{DeadlineMove, FinishOutcome, JobStore, RowStream, RunEnd, StoreError, Streak};
use crate::clock::Timestamp;
use crate::model::StatsOverview;
use crate::model::{
    AlertDraft, AlertFilter, AlertRecord, AlertState, AuditEntry, AuditFilter, ClaimedRun, HistoryFilter,
    HistoryRecord, Job, JobFilter, JobId, JobVersion, NodeSeen, Outcome, Page, RetryPlan, RunFilter, RunRecord,
    RunState, RunTrigger,
};

#[derive(Debug, Clone)]
struct Entry {
    job: Job,
    claim_owner: Option<String>,
    lease_until: Option<Timestamp>,
    revision: i64,
    /// The retry the job waits for.
    retry: Option<RetryPlan>,
}

#[derive(Debug, Default)]
struct Inner {
    jobs: BTreeMap<String, Entry>,
    history: Vec<HistoryRecord>,
    next_history_id: i64,
    nodes: BTreeMap<String, NodeSeen>,
    /// Runs by id, with their whole output.
    runs: BTreeMap<String, (RunRecord, Vec<u8>)>,
    /// Alerts, oldest first (their ids are their place + 1).
    alerts: Vec<AlertEntry>,
    /// The audit trail, oldest first.
    audit: Vec<AuditEntry>,
    /// Job versions, oldest first.
    versions: Vec<JobVersion>,
}

/// An alert and what its delivery needs besides what is shown.
#[derive(Debug, Clone)]
struct AlertEntry {
    alert: AlertRecord,
    next_try: Timestamp,
    claim: Option<(String, Timestamp)>,
}

impl Inner {
    /// Queues `draft` at `now` under its quiet window (see `after::queue_alert`).
    fn queue_alert(&mut self, draft: &AlertDraft, now: Timestamp) {
        let last = self.alerts.iter().rev().find(|a| a.alert.job_id == draft.job_id && a.alert.kind == draft.kind);
        let (created, earlier) = match last {
            Some(a) => (Some(a.alert.created), a.alert.suppressed),
            None => (None, 0),
        };
        if let Some(created) = created
            && draft.quiet > chrono::Duration::zero()
            && created > now - draft.quiet
        {
            for a in self
                .alerts
                .iter_mut()
                .filter(|a| a.alert.job_id == draft.job_id && a.alert.kind == draft.kind && a.alert.created == created)
            {
                a.alert.suppressed += 1;
            }
            return;
        }
        for target in &draft.targets {
            let alert = AlertRecord {
                id: self.alerts.len() as i64 + 1,
                kind: draft.kind,
                job_id: draft.job_id.clone(),
                job_name: draft.job_name.clone(),
                target: target.clone(),
                fire_time: draft.fire_time,
                run_id: draft.run_id.clone(),
                node: draft.node.clone(),
                outcome: draft.outcome,
                output: draft.output.clone(),
                detail: draft.detail.clone(),
                created: now,
                state: AlertState::Pending,
                attempts: 0,
                sent: None,
                answer: None,
                suppressed: 0,
                earlier_suppressed: earlier,
            };
            self.alerts.push(AlertEntry { alert, next_try: now, claim: None });
        }
    }

    /// Writes what `end` sets off (see `after::apply_after_end`).
    fn apply_after(&mut self, end: &RunEnd, now: Timestamp) {
        let Some(after) = end.after.as_deref() else { return };
        for run in &after.chained {
            self.runs.entry(run.run_id.clone()).or_insert_with(|| (run.clone(), Vec::new()));
        }
        let mut drafts: Vec<AlertDraft> = after.alerts.clone();
        if let Some(e) = self.jobs.get_mut(end.run.job.id.as_str()) {
            let h = &mut e.job.health;
            match &after.streak {
                None => {}
                Some(Streak::Reset { resume }) => {
                    let broke = h.fail_streak > 0;
                    h.fail_streak = 0;
                    let mut resumed = false;
                    if let Some((next, watch)) = resume
                        && h.paused_reason.is_some()
                    {
                        e.job.next_run_time = *next;
                        h.paused_reason = None;
                        h.probe_at = None;
                        h.probe_wait_secs = None;
                        h.deadline_fire = watch.and_then(|w| w.to);
                        resumed = true;
                    }
                    if broke || resumed {
                        drafts.extend(after.recovery.clone());
                    }
                }
                Some(Streak::Grow { pause_after, reason, probe }) => {
                    h.fail_streak += 1;
                    if let Some(threshold) = pause_after
                        && h.fail_streak >= *threshold
                        && h.paused_reason.is_none()
                    {
                        e.job.next_run_time = None;
                        h.paused_reason = Some(reason.clone());
                        h.probe_at = probe.map(|(at, _)| at);
                        h.probe_wait_secs = probe.map(|(_, wait)| wait);
                        h.deadline_fire = None;
                        e.retry = None;
                        drafts.extend(after.paused.clone());
                    }
                }
                Some(Streak::ProbeFailed { at, wait }) if h.paused_reason.is_some() => {
                    h.probe_at = Some(*at);
                    h.probe_wait_secs = Some(*wait);
                    h.fail_streak += 1;
                }
                Some(Streak::ProbeFailed { .. }) => {}
            }
            if let Some(watch) = &after.deadline
                && watch.from.is_some()
                && h.deadline_fire == watch.from
            {
                h.deadline_fire = watch.to;
            }
        }
        for draft in &drafts {
            self.queue_alert(draft, now);
        }
    }
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

impl MemoryStore {
    /// Records one change (see [`JobStore::record_audits`]).
    fn record_one_audit(&self, entry: &AuditEntry, version: Option<&str>) {
        let mut inner = self.lock();
        let id = inner.audit.len() as i64 + 1;
        inner.audit.push(AuditEntry { id, ..entry.clone() });
        if let (Some(definition), Some(job_id)) = (version, &entry.job_id) {
            let number =
                inner.versions.iter().filter(|v| v.job_id == *job_id).map(|v| v.version).max().unwrap_or(0) + 1;
            inner.versions.push(JobVersion {
                job_id: job_id.clone(),
                version: number,
                at: entry.at,
                caller: entry.caller.clone(),
                definition: definition.to_owned(),
            });
        }
    }

    /// Ends one run (see [`JobStore::finish_runs`]), planning `retry` when it is rescheduled.
    fn finish_one(
        &self,
        run: &ClaimedRun,
        node: &str,
        next: Option<Timestamp>,
        history: Option<&HistoryRecord>,
        retry: Option<RetryPlan>,
    ) -> FinishOutcome {
        let mut inner = self.lock();

        let id = run.job.id.as_str();
        if !run.reschedules() {
            // A run started by hand leaves the schedule be; it releases the claim it took.
            if let Some(h) = history {
                inner.next_history_id += 1;
                let row = HistoryRecord { id: inner.next_history_id, ..h.clone() };
                inner.history.push(row);
            }
            if !run.holds_claim {
                return FinishOutcome::Rescheduled;
            }
            return match inner.jobs.get_mut(id) {
                Some(e) if e.claim_owner.as_deref() == Some(node) => {
                    e.claim_owner = None;
                    e.lease_until = None;
                    FinishOutcome::Rescheduled
                }
                _ => FinishOutcome::LostClaim,
            };
        }
        // The run happened: its row is kept whatever became of the claim (one per job and fire
        // time of the runs a fire time made; runs by hand and backfills are not constrained).
        if let Some(h) = history {
            let by_hand = |r: &HistoryRecord| {
                r.run.as_ref().is_some_and(|m| matches!(m.trigger, RunTrigger::Manual | RunTrigger::Backfill))
            };
            let dup = !by_hand(h)
                && h.fire_time.is_some()
                && inner.history.iter().any(|r| !by_hand(r) && r.job_id == h.job_id && r.fire_time == h.fire_time);
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
            return FinishOutcome::LostClaim;
        }
        if !current {
            if let Some(e) = inner.jobs.get_mut(id) {
                e.claim_owner = None;
                e.lease_until = None;
            }
            return FinishOutcome::Superseded;
        }
        if !same_fire {
            // A stale run of this node (it stalled past its lease, another node ran this fire
            // time, and this node has since claimed a later one): leave the current claim be.
            return FinishOutcome::LostClaim;
        }
        match next {
            Some(t) => {
                let e = inner.jobs.get_mut(id).expect("checked above");
                e.job.next_run_time = Some(t);
                e.claim_owner = None;
                e.lease_until = None;
                e.retry = retry;
            }
            None => {
                inner.jobs.remove(id);
            }
        }
        FinishOutcome::Rescheduled
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
    async fn add_jobs(
        &self,
        jobs: &[Job],
        audits: &[(AuditEntry, Option<String>)],
        atomic: bool,
    ) -> Result<Vec<bool>, StoreError> {
        let new = super::NewJobs::new(jobs);
        let added = {
            let mut inner = self.lock();
            let added = new.added(|id| !inner.jobs.contains_key(id));
            if atomic && added.contains(&false) {
                return Ok(added);
            }
            for job in &new.fresh {
                let entry =
                    Entry { job: (*job).clone(), claim_owner: None, lease_until: None, revision: 1, retry: None };
                inner.jobs.insert(job.id.to_string(), entry);
            }
            added
        };
        for (entry, version) in super::audits_of_added(audits, &added) {
            self.record_one_audit(&entry, version.as_deref());
        }
        Ok(added)
    }

    async fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let e = inner.jobs.get_mut(job.id.as_str()).ok_or_else(|| StoreError::NotFound(job.id.to_string()))?;
        let created = e.job.created;
        e.job = job.clone();
        e.job.created = created;
        e.revision += 1;
        e.retry = None;
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
            .filter(|j| !filter.with_calendar || j.calendar.is_some())
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
        let runs: Vec<ClaimedRun> = due
            .into_iter()
            .take(limit as usize)
            .map(|e| {
                e.claim_owner = Some(node.to_owned());
                e.lease_until = Some(lease_until);
                let fire_time = e.job.next_run_time.expect("claimable jobs have a next run time");
                match e.retry {
                    Some(plan) if plan.at == fire_time => ClaimedRun::retry(e.job.clone(), plan, e.revision),
                    _ => ClaimedRun::scheduled(e.job.clone(), fire_time, e.revision),
                }
            })
            .collect();
        Ok(runs)
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
        Ok(self.finish_one(run, node, next, history, None))
    }

    async fn finish_runs(&self, node: &str, ends: &[RunEnd], now: Timestamp) -> Result<Vec<FinishOutcome>, StoreError> {
        let mut out = Vec::with_capacity(ends.len());
        for end in ends {
            let outcome = self.finish_one(&end.run, node, end.next, end.history.as_ref(), end.retry);
            if outcome != FinishOutcome::LostClaim {
                self.lock().apply_after(end, now);
            }
            out.push(outcome);
            if let Some((run_id, ended, outcome, output)) = end.run_row_end() {
                let mut inner = self.lock();
                match inner.runs.get_mut(run_id) {
                    Some((r, out)) if r.node == node && r.state == RunState::Running => {
                        r.state = RunState::Ended;
                        r.ended = Some(ended);
                        r.outcome = Some(outcome);
                        *out = output.as_bytes().to_vec();
                        r.output_len = out.len() as u64;
                    }
                    Some(_) => {}
                    None => {
                        // Its start is not written yet: the row is written whole, ended.
                        let mut row = RunRecord::running(&end.run, node, ended, ended);
                        row.state = RunState::Ended;
                        row.ended = Some(ended);
                        row.outcome = Some(outcome);
                        row.output_len = output.len() as u64;
                        inner.runs.insert(run_id.to_owned(), (row, output.as_bytes().to_vec()));
                    }
                }
            } else if end.history.is_none() {
                // Claimed but not executed (missed): no run to keep.
                let mut inner = self.lock();
                if inner.runs.get(&end.run.run_id).is_some_and(|(r, _)| r.node == node && r.state == RunState::Running)
                {
                    inner.runs.remove(&end.run.run_id);
                }
            }
        }
        Ok(out)
    }

    async fn claim_job(
        &self,
        id: &JobId,
        node: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Option<(Job, i64)>, StoreError> {
        let mut inner = self.lock();
        let Some(e) = inner.jobs.get_mut(id.as_str()) else { return Err(StoreError::NotFound(id.to_string())) };
        if e.claim_owner.is_some() && e.lease_until.is_some_and(|l| l >= now) {
            return Ok(None);
        }
        e.claim_owner = Some(node.to_owned());
        e.lease_until = Some(lease_until);
        Ok(Some((e.job.clone(), e.revision)))
    }

    async fn plan_retry(&self, id: &JobId, revision: i64, plan: RetryPlan) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(e) = inner.jobs.get_mut(id.as_str()) else { return Ok(false) };
        let fires_after = e.job.next_run_time.is_some_and(|n| n > plan.at);
        if e.revision != revision || e.claim_owner.is_some() || e.retry.is_some() || !fires_after {
            return Ok(false);
        }
        e.retry = Some(plan);
        e.job.next_run_time = Some(plan.at);
        Ok(true)
    }

    async fn start_runs(
        &self,
        node: &str,
        runs: &[ClaimedRun],
        started: Timestamp,
        lease_until: Timestamp,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for run in runs {
            let keep = inner.runs.get(&run.run_id).is_some_and(|(r, _)| r.state == RunState::Ended || r.node == node);
            if !keep {
                inner
                    .runs
                    .insert(run.run_id.clone(), (RunRecord::running(run, node, started, lease_until), Vec::new()));
            }
        }
        Ok(())
    }

    async fn start_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let mut row = run.clone();
        row.output_len = 0;
        row.kill_requested = false;
        inner.runs.insert(run.run_id.clone(), (row, Vec::new()));
        Ok(())
    }

    async fn append_run_output(&self, run_id: &str, node: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if let Some((r, out)) = self.lock().runs.get_mut(run_id)
            && r.node == node
            && r.state == RunState::Running
        {
            out.extend_from_slice(bytes);
            r.output_len = out.len() as u64;
        }
        Ok(())
    }

    async fn renew_runs(&self, node: &str, run_ids: &[String], lease_until: Timestamp) -> Result<(), StoreError> {
        for (r, _) in self.lock().runs.values_mut() {
            if r.node == node && r.state.is_live() && run_ids.contains(&r.run_id) {
                r.lease_until = lease_until;
            }
        }
        Ok(())
    }

    async fn end_run(
        &self,
        run_id: &str,
        node: &str,
        outcome: Outcome,
        now: Timestamp,
        output: Option<&str>,
    ) -> Result<(), StoreError> {
        if let Some((r, out)) = self.lock().runs.get_mut(run_id)
            && r.node == node
            && r.state.is_live()
        {
            r.state = RunState::Ended;
            r.ended = Some(now);
            r.outcome = Some(outcome);
            if let Some(o) = output {
                *out = o.as_bytes().to_vec();
            }
            r.output_len = out.len() as u64;
        }
        Ok(())
    }

    async fn end_lost_runs(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut n = 0;
        for (r, _) in self.lock().runs.values_mut() {
            if r.state.is_live() && r.lease_until < now && r.trigger == RunTrigger::Chain && r.attempt < 3 {
                // A chained run its node did not end goes back in the queue (see `after`).
                r.state = RunState::Pending;
                r.node = String::new();
                r.attempt += 1;
                continue;
            }
            if r.state.is_live() && r.lease_until < now {
                r.state = RunState::Ended;
                r.ended = Some(now);
                r.outcome = Some(Outcome::Lost);
                n += 1;
            }
        }
        Ok(n)
    }

    async fn request_kill(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let mut inner = self.lock();
        Ok(inner.runs.get_mut(run_id).map(|(r, _)| {
            if r.state.is_live() {
                r.kill_requested = true;
            }
            r.clone()
        }))
    }

    async fn kill_requests(&self, node: &str, run_ids: &[String]) -> Result<Vec<String>, StoreError> {
        Ok(self
            .lock()
            .runs
            .values()
            .filter(|(r, _)| r.node == node && r.state.is_live() && r.kill_requested)
            .filter(|(r, _)| run_ids.contains(&r.run_id))
            .map(|(r, _)| r.run_id.clone())
            .collect())
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.lock().runs.get(run_id).map(|(r, _)| r.clone()))
    }

    async fn run_output(&self, run_id: &str, offset: u64, max: u64) -> Result<Vec<u8>, StoreError> {
        Ok(self.lock().runs.get(run_id).map_or_else(Vec::new, |(_, out)| {
            let start = (offset as usize).min(out.len());
            let end = start.saturating_add(max as usize).min(out.len());
            out[start..end].to_vec()
        }))
    }

    async fn list_runs(&self, filter: &RunFilter, page: Page) -> Result<(u64, Vec<RunRecord>), StoreError> {
        let inner = self.lock();
        let mut rows: Vec<RunRecord> = inner
            .runs
            .values()
            .map(|(r, _)| r)
            .filter(|r| {
                filter.job_id.as_ref().is_none_or(|j| *j == r.job_id) && filter.state.is_none_or(|s| s == r.state)
            })
            .cloned()
            .collect();
        rows.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| b.run_id.cmp(&a.run_id)));
        Ok((rows.len() as u64, page_of(rows, page)))
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
        let mut old: Vec<(Timestamp, String)> = inner
            .runs
            .values()
            .map(|(r, _)| r)
            .filter(|r| r.state == RunState::Ended && r.started < before)
            .filter(|r| filter.job_id.as_ref().is_none_or(|j| *j == r.job_id))
            .filter(|r| filter.job_name.as_ref().is_none_or(|n| *n == r.job_name))
            .map(|r| (r.started, r.run_id.clone()))
            .collect();
        old.sort();
        old.truncate(limit as usize);
        for (_, id) in old {
            inner.runs.remove(&id);
        }
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

    async fn record_audits(&self, entries: &[(AuditEntry, Option<String>)]) -> Result<(), StoreError> {
        for (entry, version) in entries {
            self.record_one_audit(entry, version.as_deref());
        }
        Ok(())
    }

    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<(u64, Vec<AuditEntry>), StoreError> {
        let inner = self.lock();
        let rows: Vec<AuditEntry> = inner
            .audit
            .iter()
            .rev()
            .filter(|a| filter.job_id.as_ref().is_none_or(|v| Some(v) == a.job_id.as_ref()))
            .filter(|a| filter.caller.as_ref().is_none_or(|v| *v == a.caller))
            .filter(|a| filter.since.is_none_or(|t| a.at >= t) && filter.until.is_none_or(|t| a.at < t))
            .cloned()
            .collect();
        Ok((rows.len() as u64, page_of(rows, page)))
    }

    async fn list_versions(&self, job_id: &str) -> Result<Vec<JobVersion>, StoreError> {
        Ok(self.lock().versions.iter().rev().filter(|v| v.job_id == job_id).cloned().collect())
    }

    async fn get_version(&self, job_id: &str, version: u32) -> Result<Option<JobVersion>, StoreError> {
        Ok(self.lock().versions.iter().find(|v| v.job_id == job_id && v.version == version).cloned())
    }

    async fn stats(&self, now: Timestamp) -> Result<StatsOverview, StoreError> {
        // Computed from history (a store for tests and throwaway runs).
        let inner = self.lock();
        let bucket = |secs: i64, width: i64| secs - secs.rem_euclid(width);
        let mut minutes: BTreeMap<i64, crate::model::StatsBucket> = BTreeMap::new();
        let mut hours: BTreeMap<i64, crate::model::StatsBucket> = BTreeMap::new();
        for h in &inner.history {
            let Some(meta) = &h.run else { continue };
            let secs = meta.ended.timestamp();
            let late = matches!(meta.trigger, RunTrigger::Scheduled | RunTrigger::Retry).then(|| {
                (meta.started - h.fire_time.unwrap_or(meta.started)).num_microseconds().unwrap_or(0).max(0) as f64
                    / 1000.0
            });
            for (map, width, window) in
                [(&mut minutes, 60, chrono::Duration::hours(1)), (&mut hours, 3600, chrono::Duration::days(7))]
            {
                if meta.ended < now - window {
                    continue;
                }
                let start = bucket(secs, width);
                let b = map.entry(start).or_insert_with(|| crate::model::StatsBucket {
                    start: chrono::DateTime::from_timestamp(start, 0).unwrap_or_default(),
                    ..Default::default()
                });
                *b.runs.entry(meta.outcome.as_str().to_owned()).or_default() += 1;
                if let Some(ms) = late {
                    b.late[crate::model::LATENESS_BOUNDS_MS.iter().position(|x| ms <= *x).unwrap_or(13)] += 1;
                }
            }
        }
        Ok(StatsOverview {
            minutes: minutes.into_values().collect(),
            hours: hours.into_values().collect(),
            ..Default::default()
        })
    }

    async fn add_rollups(&self, node: &str, rollup: &super::Rollup) -> Result<(), StoreError> {
        // The overview is computed from history here.
        let _ = (node, rollup);
        Ok(())
    }

    async fn prune_stats(&self, before: Timestamp) -> Result<(), StoreError> {
        let _ = before;
        Ok(())
    }

    async fn last_runs(&self, job_id: &str, n: u32) -> Result<Vec<HistoryRecord>, StoreError> {
        Ok(self.lock().history.iter().rev().filter(|h| h.job_id == job_id).take(n as usize).cloned().collect())
    }

    async fn take_pending_runs(
        &self,
        node: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let mut inner = self.lock();
        let mut pending: Vec<&mut RunRecord> =
            inner.runs.values_mut().map(|(r, _)| r).filter(|r| r.state == RunState::Pending).collect();
        pending.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.run_id.cmp(&b.run_id)));
        Ok(pending
            .into_iter()
            .take(limit as usize)
            .map(|r| {
                r.state = RunState::Waiting;
                r.node = node.to_owned();
                r.lease_until = lease_until;
                r.clone()
            })
            .collect())
    }

    async fn due_probes(&self, now: Timestamp, limit: u32) -> Result<Vec<JobId>, StoreError> {
        let inner = self.lock();
        let mut due: Vec<(Timestamp, JobId)> = inner
            .jobs
            .values()
            .filter_map(|e| e.job.health.probe_at.filter(|at| *at <= now).map(|at| (at, e.job.id.clone())))
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit as usize).map(|(_, id)| id).collect())
    }

    async fn due_deadlines(&self, now: Timestamp, limit: u32) -> Result<Vec<Job>, StoreError> {
        let inner = self.lock();
        let mut due: Vec<(Timestamp, Job)> = inner
            .jobs
            .values()
            .filter_map(|e| {
                let fire = e.job.health.deadline_fire?;
                let at = fire + chrono::Duration::seconds(e.job.follow.deadline_secs? as i64);
                (at <= now).then(|| (at, e.job.clone()))
            })
            .collect();
        due.sort_by_key(|(at, _)| *at);
        Ok(due.into_iter().take(limit as usize).map(|(_, job)| job).collect())
    }

    async fn deadline_passed(
        &self,
        job: &JobId,
        watch: DeadlineMove,
        alert: Option<&AlertDraft>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(e) = inner.jobs.get_mut(job.as_str()) else { return Ok(false) };
        if watch.from.is_none() || e.job.health.deadline_fire != watch.from {
            return Ok(false);
        }
        e.job.health.deadline_fire = watch.to;
        if let Some(draft) = alert {
            inner.queue_alert(draft, now);
        }
        Ok(true)
    }

    async fn claim_alerts(
        &self,
        node: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let mut inner = self.lock();
        let mut due: Vec<&mut AlertEntry> = inner
            .alerts
            .iter_mut()
            .filter(|a| {
                a.alert.state == AlertState::Pending
                    && a.next_try <= now
                    && a.claim.as_ref().is_none_or(|(_, until)| *until < now)
            })
            .collect();
        due.sort_by_key(|a| (a.next_try, a.alert.id));
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|a| {
                a.claim = Some((node.to_owned(), until));
                a.alert.attempts += 1;
                a.alert.clone()
            })
            .collect())
    }

    async fn end_alert(
        &self,
        id: i64,
        node: &str,
        state: AlertState,
        answer: &str,
        next_try: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(a) = inner.alerts.get_mut(usize::try_from(id - 1).unwrap_or(usize::MAX))
            && a.claim.as_ref().is_some_and(|(owner, _)| owner == node)
        {
            a.alert.state = state;
            a.alert.answer = Some(answer.to_owned());
            a.next_try = next_try.unwrap_or(now);
            a.claim = None;
            if state == AlertState::Sent {
                a.alert.sent = Some(now);
            }
        }
        Ok(())
    }

    async fn list_alerts(&self, filter: &AlertFilter, page: Page) -> Result<(u64, Vec<AlertRecord>), StoreError> {
        let inner = self.lock();
        let rows: Vec<AlertRecord> = inner
            .alerts
            .iter()
            .rev()
            .map(|a| &a.alert)
            .filter(|a| filter.job_id.as_ref().is_none_or(|v| *v == a.job_id))
            .filter(|a| filter.kind.is_none_or(|k| k == a.kind))
            .filter(|a| filter.state.is_none_or(|s| s == a.state))
            .cloned()
            .collect();
        Ok((rows.len() as u64, page_of(rows, page)))
    }
}
