//! The store: source of truth for jobs, claims and history. One trait, several backends
//! (`memory`, `sqlite`, `mysql` for HA), all passing the same conformance suite in `tests/`.
//!
//! Claims: a due job is claimed by one node (`claim_owner`, `lease_until`) and stays claimed
//! while its run executes, so runs of one job never overlap on a node or across nodes. The
//! claim is released by `finish_run`, which also reschedules (or deletes a finished date job)
//! and writes the history row in one transaction. API changes bump the job's `revision`; a
//! run finishing on an older revision only releases its claim and leaves the new schedule be.

mod after;
mod audit;
pub mod legacy;
mod memory;
mod mysql;
mod query;
mod rows;
mod sqlite;
mod stats;

use async_trait::async_trait;
use chrono_tz::Tz;
use futures_util::StreamExt;

pub use memory::MemoryStore;
pub use mysql::MysqlStore;
pub use rows::is_exact;
pub use sqlite::SqliteStore;
pub use stats::{KEEP as STATS_KEEP, Rollup, rollup};

use crate::clock::Timestamp;
use crate::model::StatsOverview;
use crate::model::{
    AlertDraft, AlertFilter, AlertRecord, AlertState, AuditEntry, AuditFilter, ClaimedRun, HistoryFilter,
    HistoryRecord, Job, JobFilter, JobId, JobVersion, NodeSeen, Outcome, Page, RetryPlan, RunFilter, RunRecord,
};

/// Errors of the store boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `add_job` with an id that exists.
    #[error("job id {0} already exists")]
    AlreadyExists(String),
    /// No job with that id.
    #[error("no job with id {0}")]
    NotFound(String),
    /// The store URL is not one we understand.
    #[error("invalid store url: {0}")]
    InvalidUrl(String),
    /// A stored row could not be decoded.
    #[error("corrupt row for job {id}: {reason}")]
    Corrupt {
        /// the job id
        id: String,
        /// what was wrong
        reason: String,
    },
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// None of the database hosts the store address names answers and is ready.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A row RuQi 1.x wrote that could not be adopted into our format.
    #[error("job {id} was written by RuQi 1.x and could not be adopted: {reason}; the row is kept as it was")]
    Unadopted {
        /// the job id
        id: String,
        /// why it could not be converted
        reason: String,
    },
    /// The database's schema is older than this build and migrating was not allowed.
    #[error("store not migrated: {0}")]
    NotMigrated(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Rows read from the store while the consumer takes them (see [`JobStore::stream_jobs`]).
pub type RowStream<T> = futures_util::stream::BoxStream<'static, Result<T, StoreError>>;

/// Rows produced by `produce` on a task of its own and handed over a small bounded channel:
/// a consumer that reads slowly holds the producer back, so memory stays flat; a consumer that
/// goes away stops it (its next send fails).
pub(crate) fn channel_stream<T, F, Fut>(produce: F) -> RowStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, StoreError>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(produce(tx));
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|row| (row, rx)) }).boxed()
}

/// The end of one claimed run, as [`JobStore::finish_runs`] records it.
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// The run.
    pub run: ClaimedRun,
    /// Its job's next fire time; `None` deletes the job (its last run).
    pub next: Option<Timestamp>,
    /// Its history row (`None` for a run skipped as missed).
    pub history: Option<HistoryRecord>,
    /// The run's whole output, kept with its run row (`ruqi_runs`); its history row has the
    /// 4,096-character summary. Only for a run that executed (its run row was started).
    pub output: Option<String>,
    /// The retry the job waits for now (its failed run is tried again at `next`); `None` clears
    /// a pending one.
    pub retry: Option<RetryPlan>,
    /// What the end sets off (alerts, chained runs, the breaker, the deadline watch), written in
    /// the same transaction; `None` for a job with no follow-ups.
    pub after: Option<Box<AfterEnd>>,
}

/// What a run's end sets off, written in the transaction that records the end, so none of it
/// is lost or doubled when a node dies (see `crate::followup`).
#[derive(Debug, Clone, Default)]
pub struct AfterEnd {
    /// Runs of other jobs to queue (`trigger=chain`, state `pending`), each written once by its
    /// id (derived from the ending run's, so an end recorded again queues nothing more).
    pub chained: Vec<RunRecord>,
    /// What the end does to the job's count of failed runs in a row.
    pub streak: Option<Streak>,
    /// Alerts to queue whatever the count says (failure, timeout, killed, missed).
    pub alerts: Vec<AlertDraft>,
    /// The `recovery` alert, queued when the end breaks a run of failures (or resumes the job).
    pub recovery: Option<AlertDraft>,
    /// The `paused` alert, queued when the breaker pauses the job.
    pub paused: Option<AlertDraft>,
    /// The deadline watch moves on: it watched `from` (unchanged since the claim), it watches
    /// `to` now (`None`: nothing), due at `due`.
    pub deadline: Option<DeadlineMove>,
}

/// What a run's end does to its job's count of failed runs in a row.
#[derive(Debug, Clone)]
pub enum Streak {
    /// A success: the count goes back to 0; a probe's success also resumes the job the breaker
    /// paused, at `resume` (its next fire time; the deadline watch from there).
    Reset {
        /// The resumed job's next fire time and deadline watch, for a probe.
        resume: Option<(Option<Timestamp>, Option<DeadlineMove>)>,
    },
    /// A failure: the count grows; at `pause_after` the breaker pauses the job.
    Grow {
        /// The breaker's threshold.
        pause_after: Option<u32>,
        /// Why (kept as `paused_reason`).
        reason: String,
        /// When the first probe is due, and the wait (seconds), if the job has `resume_after`.
        probe: Option<(Timestamp, f64)>,
    },
    /// A failed probe: the job stays paused; the next probe is due at `at` after `wait` seconds.
    ProbeFailed {
        /// When the next probe is due.
        at: Timestamp,
        /// The wait, seconds.
        wait: f64,
    },
}

/// The deadline watch of a job moving on (see [`AfterEnd::deadline`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeadlineMove {
    /// The fire time watched until now (the move happens only if it still is).
    pub from: Option<Timestamp>,
    /// The fire time watched from now on.
    pub to: Option<Timestamp>,
    /// When its deadline passes.
    pub due: Option<Timestamp>,
}

impl RunEnd {
    /// What ends the run's row: its id, end, outcome and whole output (a run that executed).
    pub fn run_row_end(&self) -> Option<(&str, Timestamp, Outcome, &str)> {
        let meta = self.history.as_ref()?.run.as_ref()?;
        Some((meta.run_id.as_str(), meta.ended, meta.outcome, self.output.as_deref()?))
    }
}

/// What `finish_run` did with the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishOutcome {
    /// Rescheduled to the given next time (or deleted when it was `None`).
    Rescheduled,
    /// The job was changed or removed through the API during the run; only the claim was released.
    Superseded,
    /// This node no longer held the claim (its lease expired and another node took it).
    LostClaim,
}

/// The audit entries of the jobs `added` (`audits` empty, or one per job).
pub(crate) fn audits_of_added(
    audits: &[(AuditEntry, Option<String>)],
    added: &[bool],
) -> Vec<(AuditEntry, Option<String>)> {
    audits.iter().zip(added).filter(|(_, a)| **a).map(|(e, _)| e.clone()).collect()
}

/// Audit entries written by one statement at most (eight values each: under SQLite's 32,766).
pub(crate) const AUDITS_PER_INSERT: usize = 1000;

/// New jobs to insert: `fresh` leaves out each job an earlier one has the id of (it is never
/// added); [`NewJobs::added`] says, for every job, whether it was.
pub(crate) struct NewJobs<'a> {
    all: &'a [Job],
    repeated: Vec<bool>,
    /// The jobs to try.
    pub fresh: Vec<&'a Job>,
}

impl<'a> NewJobs<'a> {
    /// `jobs`, split.
    pub fn new(all: &'a [Job]) -> Self {
        let mut seen = std::collections::HashSet::with_capacity(all.len());
        let repeated: Vec<bool> = all.iter().map(|j| !seen.insert(j.id.as_str())).collect();
        let fresh = all.iter().zip(&repeated).filter(|(_, r)| !**r).map(|(j, _)| j).collect();
        Self { all, repeated, fresh }
    }

    /// For each job, whether it was added: not repeated, and `inserted` says so of its id.
    pub fn added(&self, inserted: impl Fn(&str) -> bool) -> Vec<bool> {
        self.all.iter().zip(&self.repeated).map(|(j, r)| !r && inserted(j.id.as_str())).collect()
    }
}

/// The persistence contract. Every method takes `now` from the caller's `Clock`.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Inserts a new job; `AlreadyExists` when the id is taken.
    async fn add_job(&self, job: &Job) -> Result<(), StoreError> {
        match self.add_jobs(std::slice::from_ref(job), &[], false).await?.first() {
            Some(true) => Ok(()),
            _ => Err(StoreError::AlreadyExists(job.id.to_string())),
        }
    }
    /// Inserts new jobs in one transaction and says, for each, whether it was added (`false`:
    /// its id is taken, or an earlier job of `jobs` has it). `audits` is empty or holds each
    /// job's audit entry and version, written in the same transaction for the jobs added. With
    /// `atomic`, a job that cannot be added leaves them all out: nothing is written (the answer
    /// still says which jobs could not be added).
    async fn add_jobs(
        &self,
        jobs: &[Job],
        audits: &[(AuditEntry, Option<String>)],
        atomic: bool,
    ) -> Result<Vec<bool>, StoreError>;
    /// Replaces a job's definition and schedule (keeps `created` and any claim); `NotFound`.
    async fn update_job(&self, job: &Job) -> Result<(), StoreError>;
    /// Deletes a job (history stays); `NotFound`.
    async fn remove_job(&self, id: &JobId) -> Result<(), StoreError>;
    /// One job.
    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError>;
    /// Jobs matching `filter`, newest first, and the total matching count.
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<(u64, Vec<Job>), StoreError>;
    /// Every job matching `filter`, in `list_jobs` order, read while the stream is consumed.
    async fn stream_jobs(&self, filter: &JobFilter) -> Result<RowStream<Job>, StoreError>;
    /// Whether the store answers (a cheap query); for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError> {
        self.next_wakeup().await.map(|_| ())
    }
    /// The database server's clock, for a store several nodes share (the time they agree on,
    /// see `crate::clock::AgreedClock`); `None` for a store private to one node.
    async fn database_time(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(None)
    }
    /// The earliest instant something may become claimable: the next unclaimed fire time,
    /// or the expiry of a lease on a due job.
    async fn next_wakeup(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Claims up to `limit` due jobs (`next_run_time <= now`, unclaimed or lease expired),
    /// earliest first, for `node` until `lease_until`.
    async fn claim_due(
        &self,
        now: Timestamp,
        node: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedRun>, StoreError>;
    /// Extends this node's lease on a claimed job; false when the claim was lost.
    async fn renew_claim(&self, id: &JobId, node: &str, lease_until: Timestamp) -> Result<bool, StoreError>;
    /// Ends a claimed run: writes `history` (at most one row per job and fire time), then
    /// reschedules to `next` or deletes the job when `next` is `None` — unless the job
    /// changed since it was claimed or this node lost the claim.
    async fn finish_run(
        &self,
        run: &ClaimedRun,
        node: &str,
        next: Option<Timestamp>,
        history: Option<&HistoryRecord>,
        now: Timestamp,
    ) -> Result<FinishOutcome, StoreError>;
    /// [`JobStore::finish_run`] for several runs at once, in one transaction where the backend
    /// has them (group commit): one outcome per run, in order.
    async fn finish_runs(&self, node: &str, ends: &[RunEnd], now: Timestamp) -> Result<Vec<FinishOutcome>, StoreError> {
        let mut out = Vec::with_capacity(ends.len());
        for end in ends {
            out.push(self.finish_run(&end.run, node, end.next, end.history.as_ref(), now).await?);
            if let Some((run_id, ended, outcome, output)) = end.run_row_end() {
                self.end_run(run_id, node, outcome, ended, Some(output)).await?;
            }
        }
        Ok(out)
    }
    /// Converts the job rows (and history times) a RuQi 1.x node wrote into this database into
    /// our format, in place (see `legacy`); nothing to do for stores 1.x never wrote.
    async fn adopt_legacy(&self, now: Timestamp) -> Result<legacy::AdoptionReport, StoreError> {
        let _ = now;
        Ok(legacy::AdoptionReport::default())
    }
    /// Claims one job for a run started by hand (`job_run`), whatever its next fire time (a
    /// paused job too), unless a run holds it: the job and its revision, or `None` when it is
    /// claimed (a run of it is going on). `NotFound` when there is no such job.
    async fn claim_job(
        &self,
        id: &JobId,
        node: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Option<(Job, i64)>, StoreError>;
    /// Plans `plan`, the retry of a run of job `id` that held no claim (an `overlap=allow` job
    /// lets go of it when a run starts): the job then waits for it, unless the job changed since
    /// `revision`, is claimed, already waits for a run, or fires again before the retry is due
    /// (the retry gives way to that run, as any retry does). Whether it was planned.
    async fn plan_retry(&self, id: &JobId, revision: i64, plan: RetryPlan) -> Result<bool, StoreError>;
    /// Writes the rows of runs `node` claimed, as running from `started` (off the claim's path: a
    /// run's end may be written before its start, which then leaves the ended row be). A row of
    /// the same id another node was running (it died) is taken over.
    async fn start_runs(
        &self,
        node: &str,
        runs: &[ClaimedRun],
        started: Timestamp,
        lease_until: Timestamp,
    ) -> Result<(), StoreError>;
    /// Writes a run's row as started on its node (`state = running`). A row with the same id
    /// (the same scheduled fire time, taken over from a node that died) is taken over: it
    /// starts again on this node with an empty output.
    async fn start_run(&self, run: &RunRecord) -> Result<(), StoreError>;
    /// Appends bytes to a running run's stored output (the live tail).
    async fn append_run_output(&self, run_id: &str, node: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// Extends the lease of the runs `run_ids` that `node` is running.
    async fn renew_runs(&self, node: &str, run_ids: &[String], lease_until: Timestamp) -> Result<(), StoreError>;
    /// Ends a running run of `node` with `outcome` at `now`, storing `output` as its whole
    /// output (`None` keeps what was appended while it ran: a run whose claim was lost).
    async fn end_run(
        &self,
        run_id: &str,
        node: &str,
        outcome: Outcome,
        now: Timestamp,
        output: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Ends, as `lost`, the running runs whose lease ran out before `now` (their node died);
    /// how many.
    async fn end_lost_runs(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// Asks for a running run to be killed (any node may; its node sees it at its next look):
    /// the run as it stands after the request, `None` when there is no such run.
    async fn request_kill(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError>;
    /// Which of the runs `run_ids` that `node` is running are asked to be killed.
    async fn kill_requests(&self, node: &str, run_ids: &[String]) -> Result<Vec<String>, StoreError>;
    /// One run.
    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError>;
    /// At most `max` bytes of a run's stored output from byte `offset` on.
    async fn run_output(&self, run_id: &str, offset: u64, max: u64) -> Result<Vec<u8>, StoreError>;
    /// Runs matching `filter`, most recently started first, and the total matching count.
    async fn list_runs(&self, filter: &RunFilter, page: Page) -> Result<(u64, Vec<RunRecord>), StoreError>;
    /// Releases every claim `node` holds (graceful shutdown).
    async fn release_claims(&self, node: &str) -> Result<u64, StoreError>;
    /// History rows matching `filter`, newest first, and the total matching count.
    async fn list_history(&self, filter: &HistoryFilter, page: Page) -> Result<(u64, Vec<HistoryRecord>), StoreError>;
    /// Every history row matching `filter`, in `list_history` order, read while the stream is consumed.
    async fn stream_history(&self, filter: &HistoryFilter) -> Result<RowStream<HistoryRecord>, StoreError>;
    /// Deletes at most `limit` rows matching `filter` written before `before`, oldest first.
    async fn clear_history(&self, filter: &HistoryFilter, before: Timestamp, limit: u64) -> Result<u64, StoreError>;
    /// Writes that `node` is alive at `now` (clearing a stopped mark), and forgets nodes not
    /// seen since [`NODE_FORGOTTEN_AFTER`].
    async fn node_seen(&self, node: &NodeSeen) -> Result<(), StoreError>;
    /// Marks `name` as stopped cleanly at `now`.
    async fn node_stopped(&self, name: &str, now: Timestamp) -> Result<(), StoreError>;
    /// The nodes seen at or after `since`, most recently seen first.
    async fn nodes(&self, since: Timestamp) -> Result<Vec<NodeSeen>, StoreError>;

    /// The jobs whose `on_success` or `on_failure` name `id`.
    async fn jobs_chaining_to(&self, id: &JobId) -> Result<Vec<Job>, StoreError> {
        let mut jobs = self.stream_jobs(&JobFilter::default()).await?;
        let mut by = Vec::new();
        while let Some(job) = jobs.next().await {
            match job {
                Ok(job) if job.follow.on_success.contains(id) || job.follow.on_failure.contains(id) => by.push(job),
                Ok(_) | Err(StoreError::Corrupt { .. } | StoreError::Unadopted { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(by)
    }
    /// Takes up to `limit` runs a chain queued (`pending`, oldest first) for `node`: each is
    /// now `waiting` on it until `lease_until` (one node takes each).
    async fn take_pending_runs(
        &self,
        node: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<RunRecord>, StoreError>;
    /// Jobs the breaker paused whose probe run is due at `now`, earliest first.
    async fn due_probes(&self, now: Timestamp, limit: u32) -> Result<Vec<JobId>, StoreError>;
    /// Jobs a watched fire time of which has passed its deadline at `now`, earliest first.
    async fn due_deadlines(&self, now: Timestamp, limit: u32) -> Result<Vec<Job>, StoreError>;
    /// A watched fire time passed its deadline: moves the job's watch on (`watch.from` must
    /// still be watched) and queues `alert`; whether the watch moved (one node does it).
    async fn deadline_passed(
        &self,
        job: &JobId,
        watch: DeadlineMove,
        alert: Option<&AlertDraft>,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Claims up to `limit` alerts due at `now` (pending, next try due, unclaimed or claim run
    /// out) for `node` until `until`, oldest first.
    async fn claim_alerts(
        &self,
        node: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<AlertRecord>, StoreError>;
    /// Records a try of alert `id` that `node` claimed: `state` (`Pending`: tried again at
    /// `next_try`), what the target answered, at `now`.
    async fn end_alert(
        &self,
        id: i64,
        node: &str,
        state: AlertState,
        answer: &str,
        next_try: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Alerts matching `filter`, newest first, and the total matching count.
    async fn list_alerts(&self, filter: &AlertFilter, page: Page) -> Result<(u64, Vec<AlertRecord>), StoreError>;

    /// Records changes made through the API in the audit trail, each with the job's definition it
    /// set (its job's next version, numbered in the statement that stores it) when it has one: all
    /// in one transaction (the API's group commit).
    async fn record_audits(&self, entries: &[(AuditEntry, Option<String>)]) -> Result<(), StoreError>;
    /// Audit entries matching `filter`, newest first, and the total matching count.
    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<(u64, Vec<AuditEntry>), StoreError>;
    /// A job's versions, newest first.
    async fn list_versions(&self, job_id: &str) -> Result<Vec<JobVersion>, StoreError>;
    /// One version of a job's definition.
    async fn get_version(&self, job_id: &str, version: u32) -> Result<Option<JobVersion>, StoreError>;

    /// What the dashboard's overview draws, from the run rollups, as of `now`.
    async fn stats(&self, now: Timestamp) -> Result<StatsOverview, StoreError>;
    /// Adds `rollup` (what a node's run ends added up to since its last call) to the run rollups,
    /// as `node`'s rows: one statement per table.
    async fn add_rollups(&self, node: &str, rollup: &Rollup) -> Result<(), StoreError>;
    /// Deletes the run rollups older than `before`.
    async fn prune_stats(&self, before: Timestamp) -> Result<(), StoreError>;
    /// The last `n` history rows of a job, newest first (an index read whatever history holds).
    async fn last_runs(&self, job_id: &str, n: u32) -> Result<Vec<HistoryRecord>, StoreError>;
}

/// A node's row is deleted once it has not been seen for this long.
pub const NODE_FORGOTTEN_AFTER: chrono::Duration = chrono::Duration::days(7);

/// Opens the store named by `url` and applies its migrations: `memory`, `sqlite://PATH`
/// (`sqlite::memory:` too), `mysql://user:pass@host:port/db` (`mariadb://` too).
pub async fn open(url: &str, tz: Tz) -> Result<std::sync::Arc<dyn JobStore>, StoreError> {
    open_with(url, tz, true).await
}

/// [`open`], applying migrations only when `migrate`; without it a MySQL database whose
/// migrations are behind is refused (`StoreError::NotMigrated`). SQLite files, private to
/// one node, are always migrated.
pub async fn open_with(url: &str, tz: Tz, migrate: bool) -> Result<std::sync::Arc<dyn JobStore>, StoreError> {
    if url == "memory" {
        return Ok(std::sync::Arc::new(MemoryStore::new()));
    }
    if url.starts_with("sqlite:") {
        return Ok(std::sync::Arc::new(SqliteStore::open(url, tz).await?));
    }
    if is_shared(url) {
        return Ok(std::sync::Arc::new(MysqlStore::open(url, tz, migrate).await?));
    }
    Err(StoreError::InvalidUrl(format!(
        "{} (expected memory, sqlite://PATH or mysql://user:pass@host:port/db)",
        redact_url(url)
    )))
}

/// Whether a url names a store this build understands, without opening it.
pub fn url_is_known(url: &str) -> bool {
    url == "memory" || url.starts_with("sqlite:") || is_shared(url)
}

/// Whether the store can be shared by several nodes (MySQL/MariaDB): nodes then poll it.
pub fn is_shared(url: &str) -> bool {
    url.starts_with("mysql://") || url.starts_with("mariadb://")
}

/// The url with its password replaced by `***`, for logs and messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = rest.split_once('/').map_or((rest, None), |(a, t)| (a, Some(t)));
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return url.to_owned() };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let masked = if userinfo.contains(':') { format!("{user}:***") } else { user.to_owned() };
    match tail {
        Some(t) => format!("{scheme}://{masked}@{host}/{t}"),
        None => format!("{scheme}://{masked}@{host}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_classified_and_redacted() {
        assert!(url_is_known("mysql://root@127.0.0.1:3306/test") && is_shared("mariadb://u:p@h/db"));
        assert!(url_is_known("sqlite://x.db") && !is_shared("sqlite://x.db") && !url_is_known("postgres://h/db"));
        assert_eq!(redact_url("mysql://u:s3cr%40t@h:3306/db"), "mysql://u:***@h:3306/db");
        assert_eq!(redact_url("mysql://root@127.0.0.1/test"), "mysql://root@127.0.0.1/test");
        assert_eq!(redact_url("sqlite://ruqi.db"), "sqlite://ruqi.db");
    }
}
