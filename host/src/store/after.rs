//! What a run's end sets off, as SQL both backends run in the transaction that records the end
//! (`finish_runs`): chained runs queued, the job's count of failed runs in a row and the
//! circuit breaker, the deadline watch, and alerts queued under the job's quiet window. Written
//! once, as macros expanded in each backend over its own transaction (both dialects take the
//! same text with `?` placeholders); the alert row's columns and their decoding live here too.

use super::StoreError;
use super::rows::epoch_to_ts;
use crate::model::{AlertKind, AlertRecord, AlertState, Outcome};

/// Zeroes the count of failed runs in a row; changes the row only if it was not 0, so the
/// affected count says the end broke a run of failures (binds: id).
pub const RESET_STREAK: &str = "UPDATE ruqi_jobs SET fail_streak = 0 WHERE id = ? AND fail_streak > 0";
/// One more failed run in a row (binds: id).
pub const GROW_STREAK: &str = "UPDATE ruqi_jobs SET fail_streak = fail_streak + 1 WHERE id = ?";
/// The breaker pauses the job once the count reaches its threshold, unless it paused it already
/// (binds: reason, probe_at, probe_wait, id, threshold). A retry it waited for is dropped.
pub const BREAKER_PAUSE: &str = "UPDATE ruqi_jobs SET next_run_time = NULL, paused_reason = ?, probe_at = ?,
     probe_wait = ?, deadline_fire = NULL, deadline_at = NULL, retry_at = NULL, retry_attempt = NULL,
     retry_fire = NULL WHERE id = ? AND fail_streak >= ? AND paused_reason IS NULL";
/// A probe succeeded: the job the breaker paused is resumed (binds: next_run_time,
/// deadline_fire, deadline_at, id).
pub const RESUME_PROBED: &str = "UPDATE ruqi_jobs SET next_run_time = ?, paused_reason = NULL, probe_at = NULL,
     probe_wait = NULL, fail_streak = 0, deadline_fire = ?, deadline_at = ? WHERE id = ? AND paused_reason IS NOT NULL";
/// A probe failed: the next one waits longer (binds: probe_at, probe_wait, id).
pub const PROBE_FAILED: &str = "UPDATE ruqi_jobs SET probe_at = ?, probe_wait = ?, fail_streak = fail_streak + 1
     WHERE id = ? AND paused_reason IS NOT NULL";
/// Moves the deadline watch on if it still watches what the mover saw (binds: deadline_fire,
/// deadline_at, id, the fire time watched).
pub const MOVE_DEADLINE: &str =
    "UPDATE ruqi_jobs SET deadline_fire = ?, deadline_at = ? WHERE id = ? AND deadline_fire = ?";
/// The latest alert of a job and kind: when it was queued and how many it held back since
/// (binds: job_id, kind).
pub const LAST_ALERT: &str =
    "SELECT created, suppressed FROM ruqi_alerts WHERE job_id = ? AND kind = ? ORDER BY id DESC LIMIT 1";
/// Counts an alert the quiet window holds back on the alert (every target's row) it follows
/// (binds: job_id, kind, created).
pub const SUPPRESS_ALERT: &str =
    "UPDATE ruqi_alerts SET suppressed = suppressed + 1 WHERE job_id = ? AND kind = ? AND created = ?";
/// Queues an alert to one target (binds: job_id, job_name, kind, target, fire_time, run_id,
/// node, outcome, output, detail, created, next_try, earlier_suppressed).
pub const INSERT_ALERT: &str = "INSERT INTO ruqi_alerts (job_id, job_name, kind, target, fire_time, run_id, node,
     outcome, output, detail, created, next_try, earlier_suppressed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// The columns of an [`AlertRow`].
pub const ALERT_COLUMNS: &str = "id, job_id, job_name, kind, target, fire_time, run_id, node, outcome, output, detail, \
     created, state, attempts, sent, answer, suppressed, earlier_suppressed";
/// Due alerts, oldest first (binds: now, now; the caller adds the limit).
pub const DUE_ALERTS: &str = "SELECT id FROM ruqi_alerts WHERE state = 'pending' AND next_try <= ?
     AND (claim_owner IS NULL OR claim_until < ?) ORDER BY next_try, id LIMIT ";
/// Records a try of an alert its node claimed (binds: state, answer, next_try, sent, id, node).
pub const END_ALERT: &str = "UPDATE ruqi_alerts SET state = ?, answer = ?, next_try = ?, sent = ?,
     claim_owner = NULL, claim_until = NULL WHERE id = ? AND claim_owner = ?";
/// Runs queued by a chain, oldest first (the caller adds the limit).
pub const PENDING_RUNS: &str = "SELECT run_id FROM ruqi_runs WHERE state = 'pending' ORDER BY started, run_id LIMIT ";
/// The jobs that chain to any job (their `job_state` names `on_success` or `on_failure`): a
/// scan of the rows' blobs, for `job_remove`'s guard (the caller adds the columns before it).
pub const CHAINING_JOBS: &str =
    " FROM ruqi_jobs WHERE job_state LIKE '%\"on_success\"%' OR job_state LIKE '%\"on_failure\"%'";
/// Jobs whose probe is due (binds: now; the caller adds the limit).
pub const DUE_PROBES: &str = "SELECT id FROM ruqi_jobs WHERE probe_at <= ? ORDER BY probe_at LIMIT ";
/// Jobs whose watched fire time passed its deadline (binds: now; the caller adds the limit).
pub const DUE_DEADLINES: &str = " FROM ruqi_jobs WHERE deadline_at <= ? ORDER BY deadline_at LIMIT ";

/// One `ruqi_alerts` row.
#[derive(Debug, sqlx::FromRow)]
pub struct AlertRow {
    /// `id`
    pub id: i64,
    /// `job_id`
    pub job_id: String,
    /// `job_name`
    pub job_name: String,
    /// `kind`
    pub kind: String,
    /// `target`
    pub target: String,
    /// `fire_time`
    pub fire_time: Option<f64>,
    /// `run_id`
    pub run_id: Option<String>,
    /// `node`
    pub node: String,
    /// `outcome`
    pub outcome: Option<String>,
    /// `output`
    pub output: String,
    /// `detail`
    pub detail: String,
    /// `created`
    pub created: f64,
    /// `state`
    pub state: String,
    /// `attempts`
    pub attempts: i64,
    /// `sent`
    pub sent: Option<f64>,
    /// `answer`
    pub answer: Option<String>,
    /// `suppressed`
    pub suppressed: i64,
    /// `earlier_suppressed`
    pub earlier_suppressed: i64,
}

impl AlertRow {
    /// Decodes the row.
    pub fn into_record(self) -> Result<AlertRecord, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { id: self.job_id.clone(), reason };
        let kind = AlertKind::parse(&self.kind).ok_or_else(|| corrupt(format!("alert kind {:?}", self.kind)))?;
        let state = AlertState::parse(&self.state).ok_or_else(|| corrupt(format!("alert state {:?}", self.state)))?;
        let outcome = match &self.outcome {
            Some(o) => Some(Outcome::parse(o).ok_or_else(|| corrupt(format!("alert outcome {o:?}")))?),
            None => None,
        };
        Ok(AlertRecord {
            id: self.id,
            kind,
            job_id: self.job_id,
            job_name: self.job_name,
            target: self.target,
            fire_time: self.fire_time.map(epoch_to_ts),
            run_id: self.run_id,
            node: self.node,
            outcome,
            output: self.output,
            detail: self.detail,
            created: epoch_to_ts(self.created),
            state,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            sent: self.sent.map(epoch_to_ts),
            answer: self.answer,
            suppressed: u64::try_from(self.suppressed).unwrap_or(0),
            earlier_suppressed: u64::try_from(self.earlier_suppressed).unwrap_or(0),
        })
    }
}

/// Queues `$draft` (an `&AlertDraft`) at `$now` (epoch seconds) on `$conn`: held back and counted
/// on the latest alert of its job and kind when that one is younger than the job's quiet
/// window, else a row per target.
macro_rules! queue_alert {
    ($conn:expr, $draft:expr, $now:expr) => {{
        let draft: &$crate::model::AlertDraft = $draft;
        let now: f64 = $now;
        let kind = draft.kind.as_str();
        let last: Option<(f64, i64)> = sqlx::query_as($crate::store::after::LAST_ALERT)
            .bind(draft.job_id.as_str())
            .bind(kind)
            .fetch_optional(&mut *$conn)
            .await?;
        let quiet = draft.quiet.num_microseconds().unwrap_or(0) as f64 / 1e6;
        match last {
            Some((created, _)) if quiet > 0.0 && created > now - quiet => {
                sqlx::query($crate::store::after::SUPPRESS_ALERT)
                    .bind(draft.job_id.as_str())
                    .bind(kind)
                    .bind(created)
                    .execute(&mut *$conn)
                    .await?;
            }
            last => {
                let earlier = last.map_or(0, |(_, held)| held);
                for target in &draft.targets {
                    sqlx::query($crate::store::after::INSERT_ALERT)
                        .bind(draft.job_id.as_str())
                        .bind(draft.job_name.as_str())
                        .bind(kind)
                        .bind(target.as_str())
                        .bind(draft.fire_time.map($crate::store::rows::ts_to_epoch))
                        .bind(draft.run_id.as_deref())
                        .bind(draft.node.as_str())
                        .bind(draft.outcome.map(|o| o.as_str()))
                        .bind(draft.output.as_str())
                        .bind(draft.detail.as_str())
                        .bind(now)
                        .bind(now)
                        .bind(earlier)
                        .execute(&mut *$conn)
                        .await?;
                }
            }
        }
    }};
}
pub(crate) use queue_alert;

/// Writes what `$end` (an `&RunEnd`) sets off on `$conn` at `$now` (epoch seconds); `$ignore` is
/// the dialect's clause that leaves an existing run row be (a chained run queued already).
/// Runs after the end's reschedule, so a pause overrides the next fire time it wrote.
macro_rules! apply_after_end {
    ($conn:expr, $ignore:expr, $end:expr, $now:expr) => {{
        use $crate::store::Streak;
        use $crate::store::after as sql;
        use $crate::store::rows::ts_to_epoch;
        let end: &$crate::store::RunEnd = $end;
        let now: f64 = $now;
        if let Some(after) = end.after.as_deref() {
            let id = end.run.job.id.as_str();
            for run in &after.chained {
                $crate::store::query::bind_run(
                    sqlx::query(&format!("{}{}", $crate::store::query::INSERT_RUN, $ignore)),
                    run,
                )
                .execute(&mut *$conn)
                .await?;
            }
            let mut drafts: Vec<&$crate::model::AlertDraft> = after.alerts.iter().collect();
            match &after.streak {
                None => {}
                Some(Streak::Reset { resume }) => {
                    let broke = sqlx::query(sql::RESET_STREAK).bind(id).execute(&mut *$conn).await?.rows_affected() > 0;
                    let resumed = match resume {
                        Some((next, watch)) => {
                            sqlx::query(sql::RESUME_PROBED)
                                .bind(next.map(ts_to_epoch))
                                .bind(watch.and_then(|w| w.to).map(ts_to_epoch))
                                .bind(watch.and_then(|w| w.due).map(ts_to_epoch))
                                .bind(id)
                                .execute(&mut *$conn)
                                .await?
                                .rows_affected()
                                > 0
                        }
                        None => false,
                    };
                    if broke || resumed {
                        drafts.extend(after.recovery.as_ref());
                    }
                }
                Some(Streak::Grow { pause_after, reason, probe }) => {
                    sqlx::query(sql::GROW_STREAK).bind(id).execute(&mut *$conn).await?;
                    if let Some(threshold) = pause_after {
                        let paused = sqlx::query(sql::BREAKER_PAUSE)
                            .bind(reason.as_str())
                            .bind(probe.map(|(at, _)| ts_to_epoch(at)))
                            .bind(probe.map(|(_, wait)| wait))
                            .bind(id)
                            .bind(i64::from(*threshold))
                            .execute(&mut *$conn)
                            .await?
                            .rows_affected()
                            > 0;
                        if paused {
                            drafts.extend(after.paused.as_ref());
                        }
                    }
                }
                Some(Streak::ProbeFailed { at, wait }) => {
                    sqlx::query(sql::PROBE_FAILED)
                        .bind(ts_to_epoch(*at))
                        .bind(*wait)
                        .bind(id)
                        .execute(&mut *$conn)
                        .await?;
                }
            }
            if let Some(watch) = &after.deadline
                && let Some(from) = watch.from
            {
                sqlx::query(sql::MOVE_DEADLINE)
                    .bind(watch.to.map(ts_to_epoch))
                    .bind(watch.due.map(ts_to_epoch))
                    .bind(id)
                    .bind(ts_to_epoch(from))
                    .execute(&mut *$conn)
                    .await?;
            }
            for draft in drafts {
                $crate::store::after::queue_alert!($conn, draft, now);
            }
        }
    }};
}
pub(crate) use apply_after_end;

/// Appends `WHERE …` for an alert filter.
pub fn push_alert_filter<'a, DB>(q: &mut sqlx::QueryBuilder<'a, DB>, f: &crate::model::AlertFilter)
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB> + 'a,
    &'static str: sqlx::Encode<'a, DB> + sqlx::Type<DB> + 'a,
{
    let mut sep = " WHERE ";
    if let Some(id) = &f.job_id {
        q.push(sep).push("job_id = ").push_bind(id.clone());
        sep = " AND ";
    }
    if let Some(kind) = f.kind {
        q.push(sep).push("kind = ").push_bind(kind.as_str());
        sep = " AND ";
    }
    if let Some(state) = f.state {
        q.push(sep).push("state = ").push_bind(state.as_str());
    }
}

/// Newest alerts first.
pub const ALERT_ORDER: &str = " ORDER BY id DESC";
/// Puts the runs a chain queued whose node died before they ended back in the queue, up to
/// their third attempt (binds: now); `END_LOST_RUNS` ends the others as lost.
pub const REQUEUE_LOST_CHAINED: &str = "UPDATE ruqi_runs SET state = 'pending', node = '', attempt = attempt + 1
     WHERE state IN ('running', 'waiting') AND run_trigger = 'chain' AND attempt < 3 AND lease_until < ?";
