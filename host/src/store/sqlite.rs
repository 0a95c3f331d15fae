//! The embedded SQLite store (the default): one file, WAL journal, the seed's tables.
//!
//! Each claim is one `UPDATE … RETURNING` statement, and each write transaction starts with a
//! write, so SQLite never has to upgrade a read lock (which would fail with `SQLITE_BUSY`
//! instead of waiting out the busy timeout).

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono_tz::Tz;
use futures_util::StreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite};

use super::after::{
    ALERT_COLUMNS, ALERT_ORDER, AlertRow, CHAINING_JOBS, DUE_ALERTS, DUE_DEADLINES, DUE_PROBES, END_ALERT,
    MOVE_DEADLINE, PENDING_RUNS, REQUEUE_LOST_CHAINED, apply_after_end, push_alert_filter, queue_alert,
};
use super::audit::{
    AUDIT_COLUMNS, AUDIT_ORDER, AuditRow, VERSION, VERSIONS, VersionRow, insert_audits, push_audit_filter,
};
use super::legacy::{UNADOPTED, UNADOPTED_LEASE};
use super::query::{
    CLAIM_JOB, COUNT_JOB, DROP_RUNS, END_LOST_RUNS, END_RUN, END_RUN_KEEP_OUTPUT, HISTORY_CONFLICT, HISTORY_ORDER,
    HOLD_UNADOPTED, INSERT_HISTORY, INSERT_RUN, JOB_ORDER, KILL_REQUESTS, LIVE, LOST_RUNS, NEW_JOBS_PER_INSERT,
    NODE_FORGET, NODE_STOPPED, NODES_SINCE, PARK_JOB, PLAN_RETRY, RELEASE_CLAIM, RELEASE_CLAIMS, RELEASE_SUPERSEDED,
    REMOVE_JOB, RENEW_CLAIM, RENEW_RUNS, REQUEST_KILL, RUN_COLUMNS, RUN_ORDER, RUN_OUTPUT, UPDATE_JOB, bind_health,
    bind_plan_retry, bind_run, insert_jobs, job_count, paged_select, push_claimed_runs, push_history_filter,
    push_history_values, push_job_filter, push_old_runs, push_page, push_run_ends, push_run_filter, push_run_ids,
};
use super::rows::{
    HISTORY_COLUMNS, HistoryRow, JOB_COLUMNS, JobRow, RETRY_COLUMNS, RunRow, claimed_runs, job_state, ts_to_epoch,
    ts_to_text,
};
use super::stats::{Rollup, prune_rollups, write_rollups};
use super::{DeadlineMove, FinishOutcome, JobStore, RowStream, RunEnd, StoreError, channel_stream};
use crate::clock::Timestamp;
use crate::model::StatsOverview;
use crate::model::{
    AlertDraft, AlertFilter, AlertRecord, AlertState, AuditEntry, AuditFilter, ClaimedRun, HistoryFilter,
    HistoryRecord, Job, JobFilter, JobId, JobVersion, NodeSeen, Outcome, Page, RetryPlan, RunFilter, RunRecord,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// See the module doc.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    tz: Tz,
    /// Taken by the writes that come often (claims, run ends, the runs' leases and output, the
    /// API's jobs and audit trail, alerts, rollups): they queue here instead of meeting as
    /// `SQLITE_BUSY` inside SQLite, whose busy handler sleeps in steps of up to 100 ms (one node owns the file, so one lock
    /// in the process orders them).
    writes: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH` or `sqlite::memory:`)
    /// and applies the migrations.
    pub async fn open(url: &str, tz: Tz) -> Result<Self, StoreError> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(format!("{url}: {e}")))?
            .create_if_missing(true)
            .journal_mode(if in_memory { SqliteJournalMode::Memory } else { SqliteJournalMode::Wal })
            .synchronous(SqliteSynchronous::Normal)
            // SQLite's own page cache size and no `mmap_size`: memory stays flat whatever the
            // file's size (a mapped file counts in RSS: 650 MB while streaming 1,000,000 rows; a
            // 32 MiB cache per connection, 180 MB), and neither made runs measurably cheaper.
            .busy_timeout(Duration::from_secs(10));
        if !in_memory {
            // One connection first creates the file, switches it to WAL and applies the migrations,
            // alone: a pool connection opening meanwhile could find the new file locked (seen once:
            // `database is locked` at open).
            let first = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
            MIGRATOR.run(&first).await?;
            first.close().await;
        }
        // An in-memory database exists per connection: keep exactly one.
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 4 })
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        if in_memory {
            MIGRATOR.run(&pool).await?;
        }
        Ok(Self { pool, tz, writes: Default::default() })
    }

    fn decode_jobs(&self, rows: Vec<JobRow>) -> Result<Vec<Job>, StoreError> {
        rows.into_iter().map(|r| r.into_job(self.tz)).collect()
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn add_jobs(
        &self,
        jobs: &[Job],
        audits: &[(AuditEntry, Option<String>)],
        atomic: bool,
    ) -> Result<Vec<bool>, StoreError> {
        // One multi-row insert per chunk; the ids it returns are the jobs it added.
        let new = super::NewJobs::new(jobs);
        let mut inserted = HashSet::with_capacity(new.fresh.len());
        let _write = self.writes.lock().await;
        let mut tx = self.pool.begin().await?;
        for chunk in new.fresh.chunks(NEW_JOBS_PER_INSERT) {
            let mut q = insert_jobs::<Sqlite>(chunk);
            q.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
            let ids: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx).await?;
            inserted.extend(ids);
        }
        let added = new.added(|id| inserted.contains(id));
        if atomic && added.contains(&false) {
            tx.rollback().await?;
            return Ok(added);
        }
        for chunk in super::audits_of_added(audits, &added).chunks(super::AUDITS_PER_INSERT) {
            insert_audits!(tx, Sqlite, chunk);
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        let _write = self.writes.lock().await;
        let q = sqlx::query(UPDATE_JOB)
            .bind(job.next_run_time.map(ts_to_epoch))
            .bind(job_state(job))
            .bind(&job.name)
            .bind(job.trigger.kind().as_str())
            .bind(job.trigger.rule())
            .bind(ts_to_text(job.updated));
        let res = bind_health(q, job).bind(job.id.as_str()).execute(&self.pool).await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound(job.id.to_string()));
        }
        Ok(())
    }

    async fn remove_job(&self, id: &JobId) -> Result<(), StoreError> {
        let _write = self.writes.lock().await;
        let res = sqlx::query(REMOVE_JOB).bind(id.as_str()).execute(&self.pool).await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound(id.to_string()));
        }
        Ok(())
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        let row: Option<JobRow> = sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM ruqi_jobs WHERE id = ?"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.into_job(self.tz)).transpose()
    }

    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<(u64, Vec<Job>), StoreError> {
        let total: i64 = if *filter == JobFilter::default() {
            // Kept by triggers (migration 0012).
            sqlx::query_scalar("SELECT n FROM ruqi_job_count WHERE id = 1").fetch_one(&self.pool).await?
        } else {
            job_count::<Sqlite>(filter).build_query_scalar().fetch_one(&self.pool).await?
        };
        let mut q = paged_select::<Sqlite>(JOB_COLUMNS, "ruqi_jobs", JOB_ORDER, page, total as u64, |q| {
            push_job_filter(q, filter)
        });
        let rows: Vec<JobRow> = q.build_query_as().fetch_all(&self.pool).await?;
        Ok((total as u64, self.decode_jobs(rows)?))
    }

    async fn stream_jobs(&self, filter: &JobFilter) -> Result<RowStream<Job>, StoreError> {
        let (pool, filter, tz) = (self.pool.clone(), filter.clone(), self.tz);
        Ok(channel_stream(move |tx| async move {
            let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {JOB_COLUMNS} FROM ruqi_jobs"));
            push_job_filter(&mut q, &filter);
            q.push(JOB_ORDER);
            let mut rows = q.build_query_as::<JobRow>().fetch(&pool);
            while let Some(row) = rows.next().await {
                let job = row.map_err(StoreError::from).and_then(|r| r.into_job(tz));
                if tx.send(job).await.is_err() {
                    return;
                }
            }
        }))
    }

    async fn next_wakeup(&self) -> Result<Option<Timestamp>, StoreError> {
        // Two index range reads on (claim_owner, next_run_time), not a scan of every job (`> ''`, not
        // `IS NOT NULL`: SQLite plans only the former as a range of the index).
        let (free, leased): (Option<f64>, Option<f64>) = sqlx::query_as(
            "SELECT (SELECT next_run_time FROM ruqi_jobs WHERE claim_owner IS NULL AND next_run_time IS NOT NULL
                     ORDER BY next_run_time LIMIT 1),
                    (SELECT MIN(MAX(next_run_time, COALESCE(lease_until, next_run_time))) FROM ruqi_jobs
                     WHERE claim_owner > '' AND next_run_time IS NOT NULL)",
        )
        .fetch_one(&self.pool)
        .await?;
        let next = match (free, leased) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(next.map(super::rows::epoch_to_ts))
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        node: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedRun>, StoreError> {
        let _write = self.writes.lock().await;
        let now_e = ts_to_epoch(now);
        let rows: Vec<JobRow> = sqlx::query_as(&format!(
            "UPDATE ruqi_jobs SET job_lock = 1, claim_owner = ?, lease_until = ?, u_time = ?
             WHERE id IN (SELECT id FROM ruqi_jobs WHERE next_run_time <= ?
                          AND (claim_owner IS NULL OR lease_until < ?) ORDER BY next_run_time LIMIT ?)
             RETURNING {JOB_COLUMNS}, {RETRY_COLUMNS}"
        ))
        .bind(node)
        .bind(ts_to_epoch(lease_until))
        .bind(ts_to_text(now))
        .bind(now_e)
        .bind(now_e)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let claimed = claimed_runs(rows, self.tz);
        for id in &claimed.undecodable {
            // Keep the row (nothing is lost) but park it so it cannot loop.
            sqlx::query(PARK_JOB).bind(id).execute(&self.pool).await?;
        }
        for id in &claimed.unadopted {
            sqlx::query(HOLD_UNADOPTED).bind(UNADOPTED).bind(UNADOPTED_LEASE).bind(id).execute(&self.pool).await?;
        }
        Ok(claimed.runs)
    }

    async fn renew_claim(&self, id: &JobId, node: &str, lease_until: Timestamp) -> Result<bool, StoreError> {
        let _write = self.writes.lock().await;
        let res = sqlx::query(RENEW_CLAIM)
            .bind(ts_to_epoch(lease_until))
            .bind(id.as_str())
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() == 1)
    }

    async fn finish_run(
        &self,
        run: &ClaimedRun,
        node: &str,
        next: Option<Timestamp>,
        history: Option<&HistoryRecord>,
        now: Timestamp,
    ) -> Result<FinishOutcome, StoreError> {
        let end = RunEnd { run: run.clone(), next, history: history.cloned(), output: None, retry: None, after: None };
        Ok(self.finish_runs(node, std::slice::from_ref(&end), now).await?[0])
    }

    async fn finish_runs(&self, node: &str, ends: &[RunEnd], now: Timestamp) -> Result<Vec<FinishOutcome>, StoreError> {
        let _write = self.writes.lock().await;
        let mut tx = self.pool.begin().await?;
        let rows: Vec<&HistoryRecord> = ends.iter().filter_map(|e| e.history.as_ref()).collect();
        if !rows.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new(INSERT_HISTORY);
            push_history_values(&mut q, &rows);
            q.push(HISTORY_CONFLICT);
            q.build().execute(&mut *tx).await?;
        }
        // The runs' rows: one statement ends those that executed, one drops those that did not.
        let ended: Vec<&RunEnd> = ends.iter().filter(|e| e.run_row_end().is_some()).collect();
        if !ended.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new("");
            push_run_ends(&mut q, &ended, node);
            q.push(
                " ON CONFLICT (run_id) DO UPDATE SET state = 'ended', ended = excluded.ended, outcome = excluded.outcome,
                 output = excluded.output WHERE ruqi_runs.node = excluded.node AND ruqi_runs.state = 'running'",
            );
            q.build().execute(&mut *tx).await?;
        }
        let dropped: Vec<&str> = ends.iter().filter(|e| e.history.is_none()).map(|e| e.run.run_id.as_str()).collect();
        if !dropped.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new(DROP_RUNS);
            q.push_bind(node).push(" AND run_id IN (");
            let mut ids = q.separated(", ");
            for id in &dropped {
                ids.push_bind(*id);
            }
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
        // One statement for every reschedule and one for every deletion (each statement is a
        // round trip to SQLite's worker thread), each saying which rows it changed.
        let scheduled = || ends.iter().filter(|e| e.run.reschedules());
        let resched: Vec<(&ClaimedRun, Timestamp, Option<RetryPlan>)> =
            scheduled().filter_map(|e| e.next.map(|t| (&e.run, t, e.retry))).collect();
        let ending: Vec<&ClaimedRun> = scheduled().filter(|e| e.next.is_none()).map(|e| &e.run).collect();
        let mut done: HashSet<String> = HashSet::with_capacity(ends.len());
        if !resched.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new(
                "UPDATE ruqi_jobs SET next_run_time = v.next, job_lock = 0, claim_owner = NULL, lease_until = NULL,
                 retry_at = v.retry_at, retry_attempt = v.retry_attempt, retry_fire = v.retry_fire, u_time = ",
            );
            q.push_bind(ts_to_text(now));
            q.push(
                " FROM (SELECT column1 AS vid, column2 AS next, column3 AS rev, column4 AS fire, column5 AS retry_at,
                 column6 AS retry_attempt, column7 AS retry_fire FROM (",
            );
            q.push_values(&resched, |mut b, (run, next, retry)| {
                b.push_bind(run.job.id.as_str())
                    .push_bind(ts_to_epoch(*next))
                    .push_bind(run.revision)
                    .push_bind(ts_to_epoch(run.due))
                    .push_bind(retry.map(|r| ts_to_epoch(r.at)))
                    .push_bind(retry.map(|r| i64::from(r.attempt)))
                    .push_bind(retry.map(|r| ts_to_epoch(r.fire)));
            });
            q.push(")) AS v WHERE ruqi_jobs.id = v.vid AND ruqi_jobs.claim_owner = ").push_bind(node);
            q.push(" AND ruqi_jobs.revision = v.rev AND ruqi_jobs.next_run_time = v.fire RETURNING ruqi_jobs.id");
            done.extend(q.build_query_scalar::<String>().fetch_all(&mut *tx).await?);
        }
        if !ending.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM ruqi_jobs WHERE claim_owner = ");
            q.push_bind(node).push(" AND (id, revision, next_run_time) IN (");
            q.push_values(&ending, |mut b, run| {
                b.push_bind(run.job.id.as_str()).push_bind(run.revision).push_bind(ts_to_epoch(run.due));
            });
            q.push(") RETURNING id");
            done.extend(q.build_query_scalar::<String>().fetch_all(&mut *tx).await?);
        }
        let mut outcomes: Vec<FinishOutcome> = Vec::with_capacity(ends.len());
        for RunEnd { run, .. } in ends {
            let id = run.job.id.as_str();
            if !run.reschedules() {
                // A run started by hand leaves the schedule be; it releases the claim it took.
                let released = match run.holds_claim {
                    true => sqlx::query(RELEASE_CLAIM).bind(id).bind(node).execute(&mut *tx).await?.rows_affected(),
                    false => 1,
                };
                outcomes.push(if released == 1 { FinishOutcome::Rescheduled } else { FinishOutcome::LostClaim });
                continue;
            }
            outcomes.push(if done.contains(id) {
                FinishOutcome::Rescheduled
            } else {
                // Rare: the API changed the job during the run, or another node took it over.
                let released =
                    sqlx::query(RELEASE_SUPERSEDED).bind(id).bind(node).bind(run.revision).execute(&mut *tx).await?;
                let exists: i64 = sqlx::query_scalar(COUNT_JOB).bind(id).fetch_one(&mut *tx).await?;
                if released.rows_affected() == 1 || exists == 0 {
                    FinishOutcome::Superseded
                } else {
                    FinishOutcome::LostClaim
                }
            });
        }
        // What the ends set off (a run that lost its claim sets off nothing: its fire time is
        // the new owner's).
        for (end, outcome) in ends.iter().zip(&outcomes) {
            if end.after.is_some() && *outcome != FinishOutcome::LostClaim {
                apply_after_end!(tx, " ON CONFLICT (run_id) DO NOTHING", end, ts_to_epoch(now));
            }
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn claim_job(
        &self,
        id: &JobId,
        node: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Option<(Job, i64)>, StoreError> {
        let row: Option<JobRow> = sqlx::query_as(&format!("{CLAIM_JOB} RETURNING {JOB_COLUMNS}"))
            .bind(node)
            .bind(ts_to_epoch(lease_until))
            .bind(ts_to_text(now))
            .bind(id.as_str())
            .bind(ts_to_epoch(now))
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => {
                let revision = row.revision;
                Ok(Some((row.into_job(self.tz)?, revision)))
            }
            None if self.get_job(id).await?.is_none() => Err(StoreError::NotFound(id.to_string())),
            None => Ok(None),
        }
    }

    async fn plan_retry(&self, id: &JobId, revision: i64, plan: RetryPlan) -> Result<bool, StoreError> {
        let _write = self.writes.lock().await;
        let res = bind_plan_retry(sqlx::query(PLAN_RETRY), id, revision, &plan).execute(&self.pool).await?;
        Ok(res.rows_affected() == 1)
    }

    async fn start_runs(
        &self,
        node: &str,
        runs: &[ClaimedRun],
        started: Timestamp,
        lease_until: Timestamp,
    ) -> Result<(), StoreError> {
        if runs.is_empty() {
            return Ok(());
        }
        let _write = self.writes.lock().await;
        let mut q = QueryBuilder::<Sqlite>::new("");
        push_claimed_runs(&mut q, runs, node, ts_to_epoch(started), ts_to_epoch(lease_until));
        q.push(
            " ON CONFLICT (run_id) DO UPDATE SET node = excluded.node, started = excluded.started,
             lease_until = excluded.lease_until, kill_requested = 0, output = excluded.output
             WHERE ruqi_runs.state = 'running' AND ruqi_runs.node <> excluded.node",
        );
        q.build().execute(&self.pool).await?;
        Ok(())
    }

    async fn start_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let _write = self.writes.lock().await;
        bind_run(
            sqlx::query(&format!(
                "{INSERT_RUN} ON CONFLICT (run_id) DO UPDATE SET node = excluded.node, state = excluded.state,
             started = excluded.started, ended = NULL, lease_until = excluded.lease_until, outcome = NULL,
             kill_requested = 0, output = excluded.output"
            )),
            run,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn append_run_output(&self, run_id: &str, node: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let _write = self.writes.lock().await;
        sqlx::query(
            "UPDATE ruqi_runs SET output = CAST(output || ? AS BLOB) WHERE run_id = ? AND node = ? AND state = 'running'",
        )
        .bind(bytes)
        .bind(run_id)
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn renew_runs(&self, node: &str, run_ids: &[String], lease_until: Timestamp) -> Result<(), StoreError> {
        if run_ids.is_empty() {
            return Ok(());
        }
        let _write = self.writes.lock().await;
        let mut q = QueryBuilder::<Sqlite>::new(RENEW_RUNS);
        q.push_bind(ts_to_epoch(lease_until)).push(" WHERE ").push(LIVE).push(" AND node = ").push_bind(node);
        push_run_ids(&mut q, run_ids);
        q.build().execute(&self.pool).await?;
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
        let q = match output {
            Some(out) => sqlx::query(END_RUN).bind(ts_to_epoch(now)).bind(outcome.as_str()).bind(out.as_bytes()),
            None => sqlx::query(END_RUN_KEEP_OUTPUT).bind(ts_to_epoch(now)).bind(outcome.as_str()),
        };
        q.bind(run_id).bind(node).execute(&self.pool).await?;
        Ok(())
    }

    async fn end_lost_runs(&self, now: Timestamp) -> Result<u64, StoreError> {
        let now = ts_to_epoch(now);
        let ids: Vec<String> = sqlx::query_scalar(LOST_RUNS).bind(now).fetch_all(&self.pool).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let _write = self.writes.lock().await;
        sqlx::query(REQUEUE_LOST_CHAINED).bind(now).execute(&self.pool).await?;
        let mut q = QueryBuilder::<Sqlite>::new(END_LOST_RUNS);
        q.push_bind(now).push(" WHERE ").push(LIVE).push(" AND lease_until < ").push_bind(now);
        push_run_ids(&mut q, &ids);
        Ok(q.build().execute(&self.pool).await?.rows_affected())
    }

    async fn request_kill(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        sqlx::query(REQUEST_KILL).bind(run_id).execute(&self.pool).await?;
        self.get_run(run_id).await
    }

    async fn kill_requests(&self, node: &str, run_ids: &[String]) -> Result<Vec<String>, StoreError> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = QueryBuilder::<Sqlite>::new(KILL_REQUESTS);
        q.push_bind(node);
        push_run_ids(&mut q, run_ids);
        Ok(q.build_query_scalar().fetch_all(&self.pool).await?)
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let row: Option<RunRow> = sqlx::query_as(&format!("SELECT {RUN_COLUMNS} FROM ruqi_runs WHERE run_id = ?"))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(RunRow::into_record).transpose()
    }

    async fn run_output(&self, run_id: &str, offset: u64, max: u64) -> Result<Vec<u8>, StoreError> {
        let piece: Option<Option<Vec<u8>>> = sqlx::query_scalar(RUN_OUTPUT)
            .bind(offset.saturating_add(1).min(i64::MAX as u64) as i64)
            .bind(max.min(i64::MAX as u64) as i64)
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(piece.flatten().unwrap_or_default())
    }

    async fn list_runs(&self, filter: &RunFilter, page: Page) -> Result<(u64, Vec<RunRecord>), StoreError> {
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM ruqi_runs");
        push_run_filter(&mut count, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {RUN_COLUMNS} FROM ruqi_runs"));
        push_run_filter(&mut q, filter);
        q.push(RUN_ORDER);
        push_page(&mut q, page);
        let rows: Vec<RunRow> = q.build_query_as().fetch_all(&self.pool).await?;
        Ok((total as u64, rows.into_iter().map(RunRow::into_record).collect::<Result<_, _>>()?))
    }

    async fn release_claims(&self, node: &str) -> Result<u64, StoreError> {
        let res = sqlx::query(RELEASE_CLAIMS).bind(node).execute(&self.pool).await?;
        Ok(res.rows_affected())
    }

    async fn list_history(&self, filter: &HistoryFilter, page: Page) -> Result<(u64, Vec<HistoryRecord>), StoreError> {
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM ruqi_jobs_history");
        let _ = push_history_filter(&mut count, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut q =
            paged_select::<Sqlite>(HISTORY_COLUMNS, "ruqi_jobs_history", HISTORY_ORDER, page, total as u64, |q| {
                let _ = push_history_filter(q, filter);
            });
        let rows: Vec<HistoryRow> = q.build_query_as().fetch_all(&self.pool).await?;
        Ok((total as u64, rows.into_iter().map(HistoryRow::into_record).collect::<Result<_, _>>()?))
    }

    async fn stream_history(&self, filter: &HistoryFilter) -> Result<RowStream<HistoryRecord>, StoreError> {
        let (pool, filter) = (self.pool.clone(), filter.clone());
        Ok(channel_stream(move |tx| async move {
            let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {HISTORY_COLUMNS} FROM ruqi_jobs_history"));
            let _ = push_history_filter(&mut q, &filter);
            q.push(HISTORY_ORDER);
            let mut rows = q.build_query_as::<HistoryRow>().fetch(&pool);
            while let Some(row) = rows.next().await {
                if tx.send(row.map_err(StoreError::from).and_then(HistoryRow::into_record)).await.is_err() {
                    return;
                }
            }
        }))
    }

    async fn clear_history(&self, filter: &HistoryFilter, before: Timestamp, limit: u64) -> Result<u64, StoreError> {
        let mut q =
            QueryBuilder::<Sqlite>::new("DELETE FROM ruqi_jobs_history WHERE id IN (SELECT id FROM ruqi_jobs_history");
        let filtered = push_history_filter(&mut q, filter);
        q.push(if filtered { " AND c_time < " } else { " WHERE c_time < " }).push_bind(ts_to_text(before));
        q.push(" ORDER BY c_time, id LIMIT ").push_bind(limit.min(i64::MAX as u64) as i64).push(")");
        let deleted = q.build().execute(&self.pool).await?.rows_affected();
        // The runs' rows (and whole outputs) go with their history.
        let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM ruqi_runs WHERE run_id IN (SELECT run_id FROM ruqi_runs");
        push_old_runs(&mut q, filter, ts_to_epoch(before));
        q.push(" ORDER BY started LIMIT ").push_bind(limit.min(i64::MAX as u64) as i64).push(")");
        q.build().execute(&self.pool).await?;
        Ok(deleted)
    }

    async fn node_seen(&self, node: &NodeSeen) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ruqi_nodes (name, version, started, seen, stopped) VALUES (?, ?, ?, ?, NULL)
             ON CONFLICT (name) DO UPDATE SET version = excluded.version, started = excluded.started,
             seen = excluded.seen, stopped = NULL",
        )
        .bind(&node.name)
        .bind(&node.version)
        .bind(ts_to_epoch(node.started))
        .bind(ts_to_epoch(node.seen))
        .execute(&self.pool)
        .await?;
        sqlx::query(NODE_FORGET).bind(ts_to_epoch(node.seen - super::NODE_FORGOTTEN_AFTER)).execute(&self.pool).await?;
        Ok(())
    }

    async fn node_stopped(&self, name: &str, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(NODE_STOPPED).bind(ts_to_epoch(now)).bind(name).execute(&self.pool).await?;
        Ok(())
    }

    async fn nodes(&self, since: Timestamp) -> Result<Vec<NodeSeen>, StoreError> {
        let rows: Vec<(String, String, f64, f64, Option<f64>)> =
            sqlx::query_as(NODES_SINCE).bind(ts_to_epoch(since)).fetch_all(&self.pool).await?;
        Ok(super::rows::nodes(rows))
    }

    async fn record_audits(&self, entries: &[(AuditEntry, Option<String>)]) -> Result<(), StoreError> {
        let _write = self.writes.lock().await;
        let mut tx = self.pool.begin().await?;
        insert_audits!(tx, Sqlite, entries);
        tx.commit().await?;
        Ok(())
    }

    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<(u64, Vec<AuditEntry>), StoreError> {
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM ruqi_audit");
        push_audit_filter(&mut count, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {AUDIT_COLUMNS} FROM ruqi_audit"));
        push_audit_filter(&mut q, filter);
        q.push(AUDIT_ORDER);
        push_page(&mut q, page);
        let rows: Vec<AuditRow> = q.build_query_as().fetch_all(&self.pool).await?;
        Ok((total as u64, rows.into_iter().map(AuditEntry::from).collect()))
    }

    async fn list_versions(&self, job_id: &str) -> Result<Vec<JobVersion>, StoreError> {
        let rows: Vec<VersionRow> = sqlx::query_as(VERSIONS).bind(job_id).fetch_all(&self.pool).await?;
        rows.into_iter().map(VersionRow::into_version).collect()
    }

    async fn get_version(&self, job_id: &str, version: u32) -> Result<Option<JobVersion>, StoreError> {
        let row: Option<VersionRow> =
            sqlx::query_as(VERSION).bind(job_id).bind(i64::from(version)).fetch_optional(&self.pool).await?;
        row.map(VersionRow::into_version).transpose()
    }

    async fn stats(&self, now: Timestamp) -> Result<StatsOverview, StoreError> {
        use super::stats::{
            FAILING, SLOWEST, buckets, hours_sql, job_stats, jobs_sql, minutes_sql, sqlx_row::StatsRow,
        };
        let since = |d: chrono::Duration| ts_to_epoch(now - d);
        let minutes: Vec<StatsRow> =
            sqlx::query_as(&minutes_sql()).bind(since(chrono::Duration::hours(1))).fetch_all(&self.pool).await?;
        let hours: Vec<StatsRow> =
            sqlx::query_as(&hours_sql()).bind(since(chrono::Duration::days(7))).fetch_all(&self.pool).await?;
        // The jobs of yesterday and today (UTC days).
        let today = ts_to_epoch(now) - ts_to_epoch(now).rem_euclid(86_400.0);
        let day = today - 86_400.0;
        let slowest = sqlx::query_as(&jobs_sql(SLOWEST)).bind(day).fetch_all(&self.pool).await?;
        let failing = sqlx::query_as(&jobs_sql(FAILING)).bind(day).fetch_all(&self.pool).await?;
        Ok(StatsOverview {
            minutes: buckets(minutes),
            hours: buckets(hours),
            slowest: job_stats(slowest, false),
            failing: job_stats(failing, true),
        })
    }

    async fn add_rollups(&self, node: &str, rollup: &Rollup) -> Result<(), StoreError> {
        let _write = self.writes.lock().await;
        let mut tx = self.pool.begin().await?;
        write_rollups!(
            tx,
            Sqlite,
            rollup,
            node,
            |keys: &str| format!(" ON CONFLICT ({keys}) DO UPDATE SET"),
            |c: &str| { format!("excluded.{c}") }
        );
        tx.commit().await?;
        Ok(())
    }

    async fn prune_stats(&self, before: Timestamp) -> Result<(), StoreError> {
        let _write = self.writes.lock().await;
        prune_rollups!(&self.pool, before);
        Ok(())
    }

    async fn last_runs(&self, job_id: &str, n: u32) -> Result<Vec<HistoryRecord>, StoreError> {
        let rows: Vec<HistoryRow> = sqlx::query_as(&format!(
            "SELECT {HISTORY_COLUMNS} FROM ruqi_jobs_history WHERE job_id = ? ORDER BY id DESC LIMIT {n}"
        ))
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(HistoryRow::into_record).collect()
    }

    async fn jobs_chaining_to(&self, id: &JobId) -> Result<Vec<Job>, StoreError> {
        let rows: Vec<JobRow> =
            sqlx::query_as(&format!("SELECT {JOB_COLUMNS}{CHAINING_JOBS}")).fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.into_job(self.tz).ok())
            .filter(|j| j.follow.on_success.contains(id) || j.follow.on_failure.contains(id))
            .collect())
    }

    async fn take_pending_runs(
        &self,
        node: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let _write = self.writes.lock().await;
        let rows: Vec<RunRow> = sqlx::query_as(&format!(
            "UPDATE ruqi_runs SET state = 'waiting', node = ?, lease_until = ?
             WHERE run_id IN ({PENDING_RUNS}{limit}) AND state = 'pending' RETURNING {RUN_COLUMNS}"
        ))
        .bind(node)
        .bind(ts_to_epoch(lease_until))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(RunRow::into_record).collect()
    }

    async fn due_probes(&self, now: Timestamp, limit: u32) -> Result<Vec<JobId>, StoreError> {
        let ids: Vec<String> =
            sqlx::query_scalar(&format!("{DUE_PROBES}{limit}")).bind(ts_to_epoch(now)).fetch_all(&self.pool).await?;
        Ok(ids.iter().filter_map(|id| JobId::parse(id).ok()).collect())
    }

    async fn due_deadlines(&self, now: Timestamp, limit: u32) -> Result<Vec<Job>, StoreError> {
        let rows: Vec<JobRow> = sqlx::query_as(&format!("SELECT {JOB_COLUMNS}{DUE_DEADLINES}{limit}"))
            .bind(ts_to_epoch(now))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().filter_map(|r| r.into_job(self.tz).ok()).collect())
    }

    async fn deadline_passed(
        &self,
        job: &JobId,
        watch: DeadlineMove,
        alert: Option<&AlertDraft>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let Some(from) = watch.from else { return Ok(false) };
        let _write = self.writes.lock().await;
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(MOVE_DEADLINE)
            .bind(watch.to.map(ts_to_epoch))
            .bind(watch.due.map(ts_to_epoch))
            .bind(job.as_str())
            .bind(ts_to_epoch(from))
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if moved && let Some(draft) = alert {
            queue_alert!(tx, draft, ts_to_epoch(now));
        }
        tx.commit().await?;
        Ok(moved)
    }

    async fn claim_alerts(
        &self,
        node: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let now = ts_to_epoch(now);
        let _write = self.writes.lock().await;
        let rows: Vec<AlertRow> = sqlx::query_as(&format!(
            "UPDATE ruqi_alerts SET claim_owner = ?, claim_until = ?, attempts = attempts + 1
             WHERE id IN ({DUE_ALERTS}{limit}) RETURNING {ALERT_COLUMNS}"
        ))
        .bind(node)
        .bind(ts_to_epoch(until))
        .bind(now)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut alerts = rows.into_iter().map(AlertRow::into_record).collect::<Result<Vec<_>, _>>()?;
        alerts.sort_by_key(|a| a.id);
        Ok(alerts)
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
        let _write = self.writes.lock().await;
        sqlx::query(END_ALERT)
            .bind(state.as_str())
            .bind(answer)
            .bind(ts_to_epoch(next_try.unwrap_or(now)))
            .bind((state == AlertState::Sent).then(|| ts_to_epoch(now)))
            .bind(id)
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_alerts(&self, filter: &AlertFilter, page: Page) -> Result<(u64, Vec<AlertRecord>), StoreError> {
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM ruqi_alerts");
        push_alert_filter(&mut count, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {ALERT_COLUMNS} FROM ruqi_alerts"));
        push_alert_filter(&mut q, filter);
        q.push(ALERT_ORDER);
        push_page(&mut q, page);
        let rows: Vec<AlertRow> = q.build_query_as().fetch_all(&self.pool).await?;
        Ok((total as u64, rows.into_iter().map(AlertRow::into_record).collect::<Result<_, _>>()?))
    }
}
