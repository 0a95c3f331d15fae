//! SQL text shared by the SQL backends (both use `?` placeholders): the statements that carry
//! the claim and fencing rules, written once so SQLite and MySQL cannot drift apart, and the
//! `WHERE` clauses of the API's job and history filters and the `LIMIT … OFFSET …` of a page,
//! built with bound parameters for any sqlx database. Ending a group of runs is one statement
//! per group and so differs by dialect (SQLite: `UPDATE … FROM (VALUES …) RETURNING`; MySQL:
//! the rows locked with `SELECT … FOR UPDATE`, then `UPDATE … JOIN`); both keep the fencing
//! rule of a single run: only a run whose claim, revision and fire time still stand ends it.

use sqlx::{Database, Encode, QueryBuilder, Type};

use super::RunEnd;
use super::rows::{ts_to_epoch, ts_to_text};
use crate::model::{ClaimedRun, HistoryFilter, HistoryRecord, JobFilter, JobId, Page, RetryPlan, RunFilter, RunRecord};

/// Replaces a job's definition (binds: next, state, name, trigger, rule, u_time, id). Bumping
/// `revision` marks the change for runs in flight and always changes the row, so the affected
/// row count finds an existing job even when every value is the same. A pending retry is
/// dropped: the job runs as it was just told to.
pub const UPDATE_JOB: &str = "UPDATE ruqi_jobs SET next_run_time = ?, job_state = ?, job_name = ?, job_trigger = ?,
     job_rule = ?, u_time = ?, revision = revision + 1, retry_at = NULL, retry_attempt = NULL, retry_fire = NULL,
     fail_streak = ?, paused_reason = ?, probe_at = ?, probe_wait = ?, deadline_fire = ?, deadline_at = ?
     WHERE id = ?";
/// The follow-up columns of a job's row, in [`bind_health`]'s order (after `UPDATE_JOB`'s
/// `u_time`, and in [`insert_jobs`]).
pub const HEALTH_COLUMNS: &str = "fail_streak, paused_reason, probe_at, probe_wait, deadline_fire, deadline_at";

/// Binds a job's follow-up state ([`HEALTH_COLUMNS`]): its count of failed runs in a row, the
/// breaker's pause and probe, and the deadline watch (due `deadline` seconds after the fire time).
pub fn bind_health<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>,
    job: &'q crate::model::Job,
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    i64: Encode<'q, DB> + Type<DB>,
    Option<f64>: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
{
    let h = &job.health;
    let due = h.deadline_fire.zip(job.follow.deadline_secs).map(|(f, d)| ts_to_epoch(f) + d as f64);
    q.bind(i64::from(h.fail_streak))
        .bind(h.paused_reason.as_deref())
        .bind(h.probe_at.map(ts_to_epoch))
        .bind(h.probe_wait_secs)
        .bind(h.deadline_fire.map(ts_to_epoch))
        .bind(due)
}
/// Most new jobs one `INSERT` carries (16 values each: under SQLite's 32,766 and MySQL's 65,535
/// bound values).
pub const NEW_JOBS_PER_INSERT: usize = 1000;

/// `INSERT INTO ruqi_jobs (…) VALUES (…), (…) …` for `jobs`, each a new job (unclaimed, revision
/// 1); the caller appends its dialect's conflict clause.
pub fn insert_jobs<'a, DB>(jobs: &[&'a crate::model::Job]) -> QueryBuilder<'a, DB>
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    f64: Encode<'a, DB> + Type<DB>,
    Option<f64>: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
    Vec<u8>: Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new(format!(
        "INSERT INTO ruqi_jobs (id, next_run_time, job_state, job_lock, job_name, job_trigger, job_rule, u_time, \
         c_time, revision, {HEALTH_COLUMNS}) "
    ));
    q.push_values(jobs.iter().copied(), |mut row, job| {
        let h = &job.health;
        let due = h.deadline_fire.zip(job.follow.deadline_secs).map(|(f, d)| ts_to_epoch(f) + d as f64);
        row.push_bind(job.id.as_str())
            .push_bind(job.next_run_time.map(ts_to_epoch))
            .push_bind(super::rows::job_state(job))
            .push("0")
            .push_bind(job.name.as_str())
            .push_bind(job.trigger.kind().as_str())
            .push_bind(job.trigger.rule())
            .push_bind(ts_to_text(job.updated))
            .push_bind(ts_to_text(job.created))
            .push("1")
            .push_bind(i64::from(h.fail_streak))
            .push_bind(h.paused_reason.as_deref())
            .push_bind(h.probe_at.map(ts_to_epoch))
            .push_bind(h.probe_wait_secs)
            .push_bind(h.deadline_fire.map(ts_to_epoch))
            .push_bind(due);
    });
    q
}

/// Deletes a job (binds: id).
pub const REMOVE_JOB: &str = "DELETE FROM ruqi_jobs WHERE id = ?";
/// Parks an undecodable row: kept, never claimed again (binds: id).
pub const PARK_JOB: &str =
    "UPDATE ruqi_jobs SET next_run_time = NULL, job_lock = 0, claim_owner = NULL, lease_until = NULL WHERE id = ?";
/// Holds a RuQi 1.x row that could not be adopted for ever, touching none of 1.x's columns
/// (binds: `legacy::UNADOPTED`, `legacy::UNADOPTED_LEASE`, id).
pub const HOLD_UNADOPTED: &str = "UPDATE ruqi_jobs SET claim_owner = ?, lease_until = ? WHERE id = ?";
/// Extends this node's lease (binds: lease_until, id, node).
pub const RENEW_CLAIM: &str = "UPDATE ruqi_jobs SET lease_until = ? WHERE id = ? AND claim_owner = ?";
/// Releases a claim on a job the API changed during the run (binds: id, node, revision).
pub const RELEASE_SUPERSEDED: &str = "UPDATE ruqi_jobs SET job_lock = 0, claim_owner = NULL, lease_until = NULL
     WHERE id = ? AND claim_owner = ? AND revision <> ?";
/// Whether a job exists (binds: id).
pub const COUNT_JOB: &str = "SELECT COUNT(*) FROM ruqi_jobs WHERE id = ?";
/// Releases every claim of a node (binds: node).
pub const RELEASE_CLAIMS: &str =
    "UPDATE ruqi_jobs SET job_lock = 0, claim_owner = NULL, lease_until = NULL WHERE claim_owner = ?";
/// Marks a node stopped (binds: stopped, name).
pub const NODE_STOPPED: &str = "UPDATE ruqi_nodes SET stopped = ? WHERE name = ?";
/// Forgets nodes long gone (binds: seen before).
pub const NODE_FORGET: &str = "DELETE FROM ruqi_nodes WHERE seen < ?";
/// The nodes seen since (binds: since).
pub const NODES_SINCE: &str =
    "SELECT name, version, started, seen, stopped FROM ruqi_nodes WHERE seen >= ? ORDER BY seen DESC, name";

/// Claims a job for a manual run unless a live claim holds it (binds: node, lease_until, u_time,
/// id, now).
pub const CLAIM_JOB: &str = "UPDATE ruqi_jobs SET job_lock = 1, claim_owner = ?, lease_until = ?, u_time = ?
     WHERE id = ? AND (claim_owner IS NULL OR lease_until < ?)";
/// Plans the retry of a run that held no claim (binds: retry_at, retry_attempt, retry_fire,
/// next_run_time = retry_at, id, revision, retry_at): only on an unclaimed job of the same
/// revision that waits for no other run and fires next after the retry is due.
pub const PLAN_RETRY: &str = "UPDATE ruqi_jobs SET retry_at = ?, retry_attempt = ?, retry_fire = ?, next_run_time = ?
     WHERE id = ? AND revision = ? AND claim_owner IS NULL AND retry_at IS NULL AND next_run_time > ?";
/// Releases the claim a manual run held, leaving the schedule be (binds: id, node).
pub const RELEASE_CLAIM: &str =
    "UPDATE ruqi_jobs SET job_lock = 0, claim_owner = NULL, lease_until = NULL WHERE id = ? AND claim_owner = ?";
/// The states of a run row its node vouches for (renews, ends, reads kills for): waiting to
/// start, or running.
pub const LIVE: &str = "state IN ('running', 'waiting')";
/// The columns of a [`super::rows::RunRow`] (the output's length, not the output).
pub const RUN_COLUMNS: &str = "run_id, job_id, job_name, cmd, fire_time, run_trigger, attempt, node, state, started, \
     ended, lease_until, outcome, kill_requested, params, LENGTH(output) AS output_len";
/// The start of a run row (binds: run_id, job_id, job_name, cmd, fire_time, run_trigger,
/// attempt, node, state, started, lease_until, params, output as bytes); each dialect adds its
/// take-over clause.
pub const INSERT_RUN: &str = "INSERT INTO ruqi_runs (run_id, job_id, job_name, cmd, fire_time, run_trigger, attempt,
     node, state, started, ended, lease_until, outcome, kill_requested, params, output)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL, 0, ?, ?)";
/// Ends a run row (binds: ended, outcome, output, run_id, node).
pub const END_RUN: &str = "UPDATE ruqi_runs SET state = 'ended', ended = ?, outcome = ?, output = ?
     WHERE run_id = ? AND node = ? AND state IN ('running', 'waiting')";
/// `INSERT INTO ruqi_runs … VALUES (…), (…)`: the ended rows of runs that executed on `node`, whole;
/// the caller adds the dialect's clause that ends the existing row instead (only one this node
/// is running), so the end is written whether or not the run's start was written before it.
pub fn push_run_ends<'a, DB>(q: &mut QueryBuilder<'a, DB>, ended: &[&'a RunEnd], node: &'a str)
where
    DB: Database,
    &'a str: Encode<'a, DB> + Type<DB>,
    f64: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    &'a [u8]: Encode<'a, DB> + Type<DB>,
{
    q.push(
        "INSERT INTO ruqi_runs (run_id, job_id, job_name, cmd, fire_time, run_trigger, attempt, node, state, started,
         ended, lease_until, outcome, kill_requested, output) ",
    );
    q.push_values(ended, |mut b, end| {
        let (run, meta) = (&end.run, end.history.as_ref().and_then(|h| h.run.as_ref()).expect("an executed run"));
        b.push_bind(run.run_id.as_str())
            .push_bind(run.job.id.as_str())
            .push_bind(run.job.name.as_str())
            .push_bind(run.job.cmd.as_str())
            .push_bind(ts_to_epoch(run.fire_time))
            .push_bind(run.trigger.as_str())
            .push_bind(i64::from(run.attempt))
            .push_bind(node)
            .push("'ended'")
            .push_bind(ts_to_epoch(meta.started))
            .push_bind(ts_to_epoch(meta.ended))
            .push_bind(ts_to_epoch(meta.ended))
            .push_bind(meta.outcome.as_str())
            .push("0")
            .push_bind(end.output.as_deref().unwrap_or_default().as_bytes());
    });
}

/// Deletes the rows of claimed runs that did not execute (skipped as missed, or their calendar
/// no longer admits the day); the caller binds the node and appends `AND run_id IN (…)`.
pub const DROP_RUNS: &str = "DELETE FROM ruqi_runs WHERE state = 'running' AND node = ";
/// Ends a run row, its output kept (binds: ended, outcome, run_id, node).
pub const END_RUN_KEEP_OUTPUT: &str = "UPDATE ruqi_runs SET state = 'ended', ended = ?, outcome = ?
     WHERE run_id = ? AND node = ? AND state IN ('running', 'waiting')";
/// The running runs whose lease ran out before `now` (binds: now): a plain read, which takes no
/// lock, so the sweep never holds up claims and run ends; they are then ended by id.
pub const LOST_RUNS: &str = "SELECT run_id FROM ruqi_runs WHERE state IN ('running', 'waiting') AND lease_until < ?";
/// Ends lost runs by id: the caller binds the end, then `WHERE` [`LIVE`] `AND lease_until <`
/// now, and appends `AND run_id IN (…)`.
pub const END_LOST_RUNS: &str = "UPDATE ruqi_runs SET state = 'ended', outcome = 'lost', ended = ";
/// Renews a node's live runs by id: the caller binds the lease, then `WHERE` [`LIVE`] `AND
/// node =` the node, and appends `AND run_id IN (…)`.
pub const RENEW_RUNS: &str = "UPDATE ruqi_runs SET lease_until = ";
/// Asks for a kill (binds: run_id).
pub const REQUEST_KILL: &str =
    "UPDATE ruqi_runs SET kill_requested = 1 WHERE run_id = ? AND state IN ('running', 'waiting')";
/// Which of a node's running runs are asked to be killed: the caller binds the node and appends
/// `AND run_id IN (…)`.
pub const KILL_REQUESTS: &str =
    "SELECT run_id FROM ruqi_runs WHERE kill_requested = 1 AND state IN ('running', 'waiting') AND node = ";

/// Appends ` AND run_id IN (?, …)`: rows found by primary key, whatever the secondary indexes.
pub fn push_run_ids<'a, DB>(q: &mut QueryBuilder<'a, DB>, ids: &'a [String])
where
    DB: Database,
    &'a str: Encode<'a, DB> + Type<DB>,
{
    q.push(" AND run_id IN (");
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(id.as_str());
    }
    q.push(")");
}
/// A piece of a run's output (binds: offset + 1, max, run_id).
pub const RUN_OUTPUT: &str = "SELECT SUBSTR(output, ?, ?) FROM ruqi_runs WHERE run_id = ?";
/// The listing order of runs, most recently started first.
pub const RUN_ORDER: &str = " ORDER BY started DESC, run_id DESC";

/// `INSERT INTO ruqi_runs … VALUES (…), (…)`: the rows of freshly claimed runs, running on `node`
/// from `now` with the claim's lease (epoch seconds). The caller adds the dialect's take-over
/// clause: a row of the same id (the same fire time) that another node was running starts again
/// here; an ended one (the run's end written before its start) is left as it is.
pub fn push_claimed_runs<'a, DB>(
    q: &mut QueryBuilder<'a, DB>,
    runs: &'a [ClaimedRun],
    node: &'a str,
    now: f64,
    lease: f64,
) where
    DB: Database,
    &'a str: Encode<'a, DB> + Type<DB>,
    f64: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    &'a [u8]: Encode<'a, DB> + Type<DB>,
{
    q.push(
        "INSERT INTO ruqi_runs (run_id, job_id, job_name, cmd, fire_time, run_trigger, attempt, node, state, started,
         lease_until, kill_requested, output) ",
    );
    q.push_values(runs, |mut b, run| {
        b.push_bind(run.run_id.as_str())
            .push_bind(run.job.id.as_str())
            .push_bind(run.job.name.as_str())
            .push_bind(run.job.cmd.as_str())
            .push_bind(ts_to_epoch(run.fire_time))
            .push_bind(run.trigger.as_str())
            .push_bind(i64::from(run.attempt))
            .push_bind(node)
            .push("'running'")
            .push_bind(now)
            .push_bind(lease)
            .push("0")
            .push_bind(&[][..]);
    });
}

/// Binds [`PLAN_RETRY`]'s values: the plan of job `id` at `revision`.
pub fn bind_plan_retry<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>,
    id: &'q JobId,
    revision: i64,
    plan: &RetryPlan,
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    f64: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    let at = ts_to_epoch(plan.at);
    q.bind(at)
        .bind(i64::from(plan.attempt))
        .bind(ts_to_epoch(plan.fire))
        .bind(at)
        .bind(id.as_str())
        .bind(revision)
        .bind(at)
}

/// Binds a run row's values to [`INSERT_RUN`], in its order (an empty output).
pub fn bind_run<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>,
    run: &'q RunRecord,
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    f64: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    &'q [u8]: Encode<'q, DB> + Type<DB>,
{
    q.bind(run.run_id.as_str())
        .bind(run.job_id.as_str())
        .bind(run.job_name.as_str())
        .bind(run.cmd.as_str())
        .bind(ts_to_epoch(run.fire_time))
        .bind(run.trigger.as_str())
        .bind(i64::from(run.attempt))
        .bind(run.node.as_str())
        .bind(run.state.as_str())
        .bind(ts_to_epoch(run.started))
        .bind(ts_to_epoch(run.lease_until))
        .bind(run.params.as_deref())
        .bind(&[][..])
}

/// Appends the conditions that pick the ended runs `job_history_clear` deletes with the history
/// rows of the same filter: ended before `before` (epoch seconds), of the filter's job and name.
pub fn push_old_runs<'a, DB>(q: &mut QueryBuilder<'a, DB>, f: &HistoryFilter, before: f64)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB> + 'a,
    f64: Encode<'a, DB> + Type<DB> + 'a,
{
    q.push(" WHERE state = 'ended' AND started < ").push_bind(before);
    if let Some(id) = &f.job_id {
        q.push(" AND job_id = ").push_bind(id.clone());
    }
    if let Some(name) = &f.job_name {
        q.push(" AND job_name = ").push_bind(name.clone());
    }
}

/// Appends `WHERE …` for a run filter.
pub fn push_run_filter<'a, DB>(q: &mut QueryBuilder<'a, DB>, f: &RunFilter)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB> + 'a,
    &'static str: Encode<'a, DB> + Type<DB> + 'a,
{
    let mut sep = " WHERE ";
    if let Some(id) = &f.job_id {
        q.push(sep).push("job_id = ").push_bind(id.clone());
        sep = " AND ";
    }
    if let Some(state) = f.state {
        q.push(sep).push("state = ").push_bind(state.as_str());
    }
}

/// The start of a history insert; [`push_history_values`] appends the rows, the caller the
/// dialect's keep-the-first-row clause for `(job_id, fire_time)` of the runs a fire time made
/// (scheduled runs and retries; runs by hand and backfills are not constrained).
/// SQLite's keep-the-first-row clause of a history insert: the unique index is partial (runs by
/// hand and backfills are left out), so the conflict target names its condition.
pub const HISTORY_CONFLICT: &str = " ON CONFLICT (job_id, fire_time) WHERE run_trigger IS NULL OR run_trigger NOT IN ('manual', 'backfill') DO NOTHING";
pub const INSERT_HISTORY: &str = "INSERT INTO ruqi_jobs_history (job_id, job_name, cmd, cmd_is_success, cmd_output,
     cmd_cost, scheduler_name, c_time, fire_time, c_time_local, run_id, started, ended, attempt, run_trigger, outcome) ";

/// Appends `VALUES (…), (…)` for history rows, all in one statement (group commit). The last
/// column, `c_time_local = 0`, says our times are UTC (RuQi 1.x rows default to its local time).
pub fn push_history_values<'a, DB>(q: &mut QueryBuilder<'a, DB>, rows: &[&'a HistoryRecord])
where
    DB: Database,
    &'a str: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
    bool: Encode<'a, DB> + Type<DB>,
    f64: Encode<'a, DB> + Type<DB>,
    Option<f64>: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    Option<i64>: Encode<'a, DB> + Type<DB>,
{
    q.push_values(rows, |mut b, h| {
        let run = h.run.as_ref();
        b.push_bind(h.job_id.as_str())
            .push_bind(h.job_name.as_str())
            .push_bind(h.cmd.as_str())
            .push_bind(h.success)
            .push_bind(h.output.as_str())
            .push_bind(h.cost)
            .push_bind(h.scheduler_name.as_str())
            .push_bind(ts_to_text(h.created))
            .push_bind(h.fire_time.map(ts_to_epoch))
            .push("0")
            .push_bind(run.map(|r| r.run_id.as_str()))
            .push_bind(run.map(|r| ts_to_epoch(r.started)))
            .push_bind(run.map(|r| ts_to_epoch(r.ended)))
            .push_bind(run.map(|r| i64::from(r.attempt)))
            .push_bind(run.map(|r| r.trigger.as_str()))
            .push_bind(run.map(|r| r.outcome.as_str()));
    });
}

/// The listing order of jobs, newest first; one direction, so the `(ruqi_format, c_time)` index
/// (which ends with the primary key) serves a page without sorting.
pub const JOB_ORDER: &str = " ORDER BY c_time DESC, id DESC";
/// The listing order of history rows, newest first (the `c_time` index, ending with the id).
pub const HISTORY_ORDER: &str = " ORDER BY c_time DESC, id DESC";

/// `SELECT COUNT(*)` of the jobs a filter selects. Unfiltered, the count of every row minus the
/// rows not in our format (an index range read): databases count a whole table much faster
/// than the rows of one index value.
pub fn job_count<'a, DB>(f: &JobFilter) -> QueryBuilder<'a, DB>
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB> + 'a,
{
    if f.job_id.is_none() && f.job_name.is_none() && !f.with_calendar {
        return QueryBuilder::new(
            "SELECT (SELECT COUNT(*) FROM ruqi_jobs) - (SELECT COUNT(*) FROM ruqi_jobs WHERE ruqi_format = 0)",
        );
    }
    let mut q = QueryBuilder::new("SELECT COUNT(*) FROM ruqi_jobs");
    push_job_filter(&mut q, f);
    q
}

/// Appends `WHERE …` for a job filter (`id`, `job_name`, a calendar named). Rows in RuQi 1.x's
/// format that could not be adopted (a pickle, not our JSON `job_state`: `ruqi_format = 0`) are left out.
pub fn push_job_filter<'a, DB>(q: &mut QueryBuilder<'a, DB>, f: &JobFilter)
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB> + 'a,
{
    q.push(" WHERE ruqi_format = 1");
    if let Some(id) = &f.job_id {
        q.push(" AND id = ").push_bind(id.clone());
    }
    if let Some(name) = &f.job_name {
        q.push(" AND job_name = ").push_bind(name.clone());
    }
    if f.with_calendar {
        // `job_state` holds the key `cal` only for a job with a calendar (`JobState`).
        q.push(" AND job_state LIKE '%\"cal\":\"%'");
    }
}

/// Appends `WHERE …` for a history filter (`job_id`, `job_name`, success, `scheduler_name`);
/// whether it wrote a `WHERE` (a caller adding a condition goes on with `AND` or `WHERE`).
pub fn push_history_filter<'a, DB>(q: &mut QueryBuilder<'a, DB>, f: &HistoryFilter) -> bool
where
    DB: Database,
    String: Encode<'a, DB> + Type<DB> + 'a,
    bool: Encode<'a, DB> + Type<DB> + 'a,
{
    // No `WHERE` at all when unfiltered: a bare `COUNT(*)` is the databases' fast path.
    let mut sep = " WHERE ";
    let mut cond = |q: &mut QueryBuilder<'a, DB>, column: &str| {
        q.push(sep).push(column).push(" = ");
        sep = " AND ";
    };
    if let Some(v) = &f.job_id {
        cond(q, "job_id");
        q.push_bind(v.clone());
    }
    if let Some(v) = &f.job_name {
        cond(q, "job_name");
        q.push_bind(v.clone());
    }
    if let Some(v) = f.success {
        cond(q, "cmd_is_success");
        q.push_bind(v);
    }
    if let Some(v) = &f.scheduler_name {
        cond(q, "scheduler_name");
        q.push_bind(v.clone());
    }
    sep == " AND "
}

/// `SELECT {columns} FROM {table}`, filtered by `filter`, in `order`, one `page` of it, of the
/// `total` rows the filter selects. A limited page is a deferred join: the page's ids are found
/// first on an index alone (OFFSET skips index entries, not rows: a page deep in 1,000,000 jobs
/// took seconds on MariaDB, which sorted the whole table), then only those rows are read. A page
/// past the middle is found from the other end (the index read backwards, `order` reversed), so
/// the last pages cost what the first do.
pub fn paged_select<'a, DB>(
    columns: &str,
    table: &str,
    order: &str,
    page: Page,
    total: u64,
    filter: impl FnOnce(&mut QueryBuilder<'a, DB>),
) -> QueryBuilder<'a, DB>
where
    DB: Database,
{
    let Some(limit) = page.limit else {
        let mut q = QueryBuilder::new(format!("SELECT {columns} FROM {table}"));
        filter(&mut q);
        q.push(order);
        push_page(&mut q, page);
        return q;
    };
    let mut q = QueryBuilder::new(format!("SELECT {columns} FROM {table} JOIN (SELECT id AS page_id FROM {table}"));
    filter(&mut q);
    debug_assert!(order.trim_start_matches(" ORDER BY ").split(", ").all(|key| key.ends_with(" DESC")));
    match from_the_end(page.offset, limit, total) {
        Some(back) => {
            q.push(order.replace(" DESC", " ASC"));
            push_page(&mut q, back);
        }
        None => {
            q.push(order);
            push_page(&mut q, page);
        }
    }
    q.push(format!(") AS page ON {table}.id = page.page_id")).push(order);
    q
}

/// The page of `limit` rows at `offset` (of `total`) counted from the other end, when it lies
/// past the middle: the same rows, in reverse order.
fn from_the_end(offset: u64, limit: u64, total: u64) -> Option<Page> {
    if offset >= total || offset <= total / 2 {
        return None;
    }
    let end = offset.saturating_add(limit).min(total);
    Some(Page { offset: total - end, limit: Some(end - offset) })
}

/// Appends `LIMIT n OFFSET m`; "all rows" is the largest limit both dialects accept. The numbers
/// are written into the SQL, not bound: MariaDB plans a derived table's `LIMIT ?` without its
/// value and read all 1,000,000 index entries for page 1 (0.75 s, against 1 ms with literals).
/// They are integers the API parsed, so nothing a client sends reaches the SQL text.
pub fn push_page<DB: Database>(q: &mut QueryBuilder<'_, DB>, page: Page) {
    let limit = page.limit.map_or(i64::MAX, |l| l.min(i64::MAX as u64) as i64);
    let offset = page.offset.min(i64::MAX as u64) as i64;
    q.push(format_args!(" LIMIT {limit} OFFSET {offset}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_past_the_middle_are_counted_from_the_end() {
        let back = |offset, limit, total| from_the_end(offset, limit, total).map(|p| (p.offset, p.limit));
        // Up to the middle, and past the end: as asked.
        assert_eq!(back(0, 15, 100), None);
        assert_eq!(back(50, 15, 100), None);
        assert_eq!(back(100, 15, 100), None);
        assert_eq!(back(0, 15, 0), None);
        // Rows 51..66 of 100 are rows 34..49 from the end; the last page is cut at the end.
        assert_eq!(back(51, 15, 100), Some((34, Some(15))));
        assert_eq!(back(90, 15, 100), Some((0, Some(10))));
        assert_eq!(back(99, 15, 100), Some((0, Some(1))));
        assert_eq!(back(u64::MAX - 1, u64::MAX, u64::MAX), Some((0, Some(1))));
    }
}
