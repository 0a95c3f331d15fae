//! Row types and conversions between database columns and `model` types, shared by the SQL
//! backends: epoch-second doubles, datetime text, and the `job_state` blob (JSON).

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::calendar::CalendarRule;
use crate::clock::Timestamp;
use crate::model::{
    AlertKind, ClaimedRun, FollowUp, HistoryRecord, Job, JobHealth, JobId, Outcome, RetryPlan, RunMeta, RunRecord,
    RunState, RunTrigger,
};
use crate::trigger::{Trigger, TriggerKind};

const TEXT_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// What `ruqi_jobs.job_state` holds: what the indexed columns do not.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobState {
    /// Format version of this blob.
    pub v: u32,
    /// The job's cmd.
    pub cmd: String,
    /// Interval grid start or date instant, as epoch microseconds.
    pub anchor_us: Option<i64>,
    /// The job's own IANA zone, when it has one (else the node's `--timezone` applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// The job's calendar rule (`cn`, `cn:rest`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cal: Option<String>,
    /// The zone of the node that added the job (see `Job::home_zone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_tz: Option<String>,
    /// The job's `timeout`, seconds, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// The job's `kill_grace`, seconds, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_grace: Option<u64>,
    /// The job's `retries`, when it has any.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// The job's `retry_delay`, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<u64>,
    /// The job's `retry_backoff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff: Option<f64>,
    /// The job's `retry_max_delay`, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_max_delay: Option<u64>,
    /// The job's `misfire` (`skip`, `once`, `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfire: Option<String>,
    /// The job's `misfire_grace`, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfire_grace: Option<u64>,
    /// The job's `jitter`, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<u64>,
    /// The job's `overlap` policy (`buffer_one`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<String>,
    /// The job's `alert` targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert: Vec<String>,
    /// The job's `alert_on` kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert_on: Vec<String>,
    /// The job's `alert_quiet`, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_quiet: Option<u64>,
    /// The job's `on_success` job ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_success: Vec<String>,
    /// The job's `on_failure` job ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<String>,
    /// The job's `pause_after_failures`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_after_failures: Option<u32>,
    /// The job's `resume_after`, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_after: Option<u64>,
    /// The job's `deadline`, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Epoch seconds (with fraction) as the seed's `next_run_time DOUBLE` holds them.
pub fn ts_to_epoch(t: Timestamp) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

/// The inverse of [`ts_to_epoch`], rounded to the microsecond.
pub fn epoch_to_ts(e: f64) -> Timestamp {
    DateTime::from_timestamp_micros((e * 1e6).round() as i64).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whether the store keeps `t` exactly: `next_run_time` is a DOUBLE of epoch seconds, exact to
/// the microsecond for every instant until 2^32 s (2106-02-07 06:28:16 UTC), and to the whole second
/// far beyond year 9999; in between, some microseconds are not.
/// (Below the microsecond nothing is kept, by design.)
pub fn is_exact(t: Timestamp) -> bool {
    epoch_to_ts(ts_to_epoch(t)).timestamp_micros() == t.timestamp_micros()
}

/// UTC datetime text with microseconds (sorts like the instant).
pub fn ts_to_text(t: Timestamp) -> String {
    t.format(TEXT_FORMAT).to_string()
}

/// The inverse of [`ts_to_text`]; also reads second-precision text.
pub fn text_to_ts(s: &str) -> Result<Timestamp, String> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").map(|n| n.and_utc()).map_err(|e| format!("{s:?}: {e}"))
}

/// The columns of one `ruqi_jobs` row that make a `Job`.
#[derive(Debug, sqlx::FromRow)]
pub struct JobRow {
    /// `id`
    pub id: String,
    /// `next_run_time`
    pub next_run_time: Option<f64>,
    /// `job_state`
    pub job_state: Vec<u8>,
    /// `job_name`
    pub job_name: Option<String>,
    /// `job_trigger`
    pub job_trigger: Option<String>,
    /// `job_rule`
    pub job_rule: Option<String>,
    /// `u_time`
    pub u_time: String,
    /// `c_time`
    pub c_time: String,
    /// `revision`
    pub revision: i64,
    /// `retry_at` (selected by the claims only)
    #[sqlx(default)]
    pub retry_at: Option<f64>,
    /// `retry_attempt` (selected by the claims only)
    #[sqlx(default)]
    pub retry_attempt: Option<i64>,
    /// `retry_fire` (selected by the claims only)
    #[sqlx(default)]
    pub retry_fire: Option<f64>,
    /// `fail_streak`
    #[sqlx(default)]
    pub fail_streak: Option<i64>,
    /// `paused_reason`
    #[sqlx(default)]
    pub paused_reason: Option<String>,
    /// `probe_at`
    #[sqlx(default)]
    pub probe_at: Option<f64>,
    /// `probe_wait`
    #[sqlx(default)]
    pub probe_wait: Option<f64>,
    /// `deadline_fire`
    #[sqlx(default)]
    pub deadline_fire: Option<f64>,
}

/// The pending-retry columns a claim selects besides [`JOB_COLUMNS`].
pub const RETRY_COLUMNS: &str = "retry_at, retry_attempt, retry_fire";

/// The columns `SELECT`ed for a [`JobRow`].
pub const JOB_COLUMNS: &str = "id, next_run_time, job_state, job_name, job_trigger, job_rule, u_time, c_time, revision, \
     fail_streak, paused_reason, probe_at, probe_wait, deadline_fire";

impl JobRow {
    /// Decodes the row; cron rules are read in `tz`.
    pub fn into_job(self, tz: Tz) -> Result<Job, StoreError> {
        if super::legacy::is_legacy_state(&self.job_state) {
            return Err(super::legacy::unadopted(&self, tz));
        }
        let corrupt = |reason: String| StoreError::Corrupt { id: self.id.clone(), reason };
        let state: JobState =
            serde_json::from_slice(&self.job_state).map_err(|e| corrupt(format!("job_state: {e}")))?;
        let kind = TriggerKind::parse(self.job_trigger.as_deref().unwrap_or_default())
            .map_err(|_| corrupt(format!("job_trigger {:?}", self.job_trigger)))?;
        let anchor = state.anchor_us.and_then(DateTime::from_timestamp_micros);
        let zone = |name: &Option<String>| {
            name.as_ref()
                .map(|name| name.parse::<Tz>().map_err(|_| corrupt(format!("unknown time zone {name:?}"))))
                .transpose()
        };
        let (timezone, home_zone) = (zone(&state.tz)?, zone(&state.home_tz)?);
        let calendar = state.cal.as_deref().map(CalendarRule::parse).transpose().map_err(|e| corrupt(e.to_string()))?;
        let tz = timezone.or(home_zone).unwrap_or(tz);
        let trigger = Trigger::restore(kind, self.job_rule.as_deref().unwrap_or_default(), anchor, tz)
            .map_err(|e| corrupt(e.to_string()))?;
        let overlap = match state.overlap.as_deref() {
            None => None,
            Some(o) => Some(crate::model::Overlap::parse(o).ok_or_else(|| corrupt(format!("overlap {o:?}")))?),
        };
        let misfire = match state.misfire.as_deref() {
            None => None,
            Some(m) => Some(crate::model::Misfire::parse(m).ok_or_else(|| corrupt(format!("misfire {m:?}")))?),
        };
        let alert_on = state
            .alert_on
            .iter()
            .map(|k| AlertKind::parse(k).ok_or_else(|| corrupt(format!("alert_on {k:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let ids =
            |list: &[String]| list.iter().map(|id| JobId::parse(id).map_err(&corrupt)).collect::<Result<Vec<_>, _>>();
        let follow = FollowUp {
            alert: state.alert,
            alert_on,
            alert_quiet_secs: state.alert_quiet,
            on_success: ids(&state.on_success)?,
            on_failure: ids(&state.on_failure)?,
            pause_after_failures: state.pause_after_failures,
            resume_after_secs: state.resume_after,
            deadline_secs: state.deadline,
        };
        let health = JobHealth {
            fail_streak: self.fail_streak.map_or(0, |n| u32::try_from(n).unwrap_or(0)),
            paused_reason: self.paused_reason.clone(),
            probe_at: self.probe_at.map(epoch_to_ts),
            probe_wait_secs: self.probe_wait,
            deadline_fire: self.deadline_fire.map(epoch_to_ts),
        };
        Ok(Job {
            id: JobId::parse(&self.id).map_err(corrupt)?,
            name: self.job_name.clone().unwrap_or_default(),
            cmd: state.cmd,
            trigger,
            next_run_time: self.next_run_time.map(epoch_to_ts),
            created: text_to_ts(&self.c_time).map_err(corrupt)?,
            updated: text_to_ts(&self.u_time).map_err(corrupt)?,
            timezone,
            calendar,
            home_zone,
            policy: crate::model::RunPolicy {
                timeout_secs: state.timeout,
                kill_grace_secs: state.kill_grace,
                retries: state.retries,
                retry_delay_secs: state.retry_delay,
                retry_backoff: state.retry_backoff,
                retry_max_delay_secs: state.retry_max_delay,
                misfire,
                misfire_grace_secs: state.misfire_grace,
                jitter_secs: state.jitter,
                overlap,
            },
            follow,
            health,
        })
    }
}

/// Freshly claimed rows, decoded.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The runs, earliest fire time first.
    pub runs: Vec<ClaimedRun>,
    /// Rows that cannot be decoded: the caller parks them (keeps the row, clears its schedule)
    /// so they cannot be claimed over and over.
    pub undecodable: Vec<String>,
    /// RuQi 1.x rows not adopted: the caller holds them for ever (see `legacy::UNADOPTED`),
    /// leaving the row as 1.x wrote it.
    pub unadopted: Vec<String>,
}

/// Decodes freshly claimed rows into runs (see [`Claimed`]).
pub fn claimed_runs(rows: Vec<JobRow>, tz: Tz) -> Claimed {
    let mut out = Claimed { runs: Vec::with_capacity(rows.len()), ..Claimed::default() };
    for row in rows {
        let (id, revision) = (row.id.clone(), row.revision);
        // A pending retry due now (the job's next time is the retry's): the claim is for it.
        let retry = match (row.retry_at, row.retry_attempt, row.retry_fire) {
            (Some(at), Some(attempt), Some(fire)) if Some(at) == row.next_run_time => Some(RetryPlan {
                at: epoch_to_ts(at),
                attempt: u32::try_from(attempt).unwrap_or(2),
                fire: epoch_to_ts(fire),
            }),
            _ => None,
        };
        match row.into_job(tz) {
            Ok(job) => match (job.next_run_time, retry) {
                (Some(_), Some(plan)) => out.runs.push(ClaimedRun::retry(job, plan, revision)),
                (Some(fire_time), None) => out.runs.push(ClaimedRun::scheduled(job, fire_time, revision)),
                (None, _) => out.undecodable.push(id),
            },
            Err(e @ StoreError::Unadopted { .. }) => {
                tracing::error!(job_id = %id, error = %e, "RuQi 1.x row kept as it is, not run");
                out.unadopted.push(id);
            }
            Err(e) => {
                tracing::error!(job_id = %id, error = %e, "undecodable job row paused");
                out.undecodable.push(id);
            }
        }
    }
    out.runs.sort_by_key(|r| r.fire_time);
    out
}

/// Encodes a job's `job_state` blob.
pub fn job_state(job: &Job) -> Vec<u8> {
    let state = JobState {
        v: 1,
        cmd: job.cmd.clone(),
        anchor_us: job.trigger.anchor().map(|t| t.timestamp_micros()),
        tz: job.timezone.map(|z| z.name().to_owned()),
        cal: job.calendar.as_ref().map(ToString::to_string),
        home_tz: job.home_zone.map(|z| z.name().to_owned()),
        timeout: job.policy.timeout_secs,
        kill_grace: job.policy.kill_grace_secs,
        retries: job.policy.retries,
        retry_delay: job.policy.retry_delay_secs,
        retry_backoff: job.policy.retry_backoff,
        retry_max_delay: job.policy.retry_max_delay_secs,
        misfire: job.policy.misfire.map(|m| m.as_str().to_owned()),
        misfire_grace: job.policy.misfire_grace_secs,
        jitter: job.policy.jitter_secs,
        overlap: job.policy.overlap.map(|o| o.as_str().to_owned()),
        alert: job.follow.alert.clone(),
        alert_on: job.follow.alert_on.iter().map(|k| k.as_str().to_owned()).collect(),
        alert_quiet: job.follow.alert_quiet_secs,
        on_success: job.follow.on_success.iter().map(ToString::to_string).collect(),
        on_failure: job.follow.on_failure.iter().map(ToString::to_string).collect(),
        pause_after_failures: job.follow.pause_after_failures,
        resume_after: job.follow.resume_after_secs,
        deadline: job.follow.deadline_secs,
    };
    serde_json::to_vec(&state).expect("job state serializes")
}

/// One `ruqi_jobs_history` row.
#[derive(Debug, sqlx::FromRow)]
pub struct HistoryRow {
    /// `id`
    pub id: i64,
    /// `job_id`
    pub job_id: String,
    /// `job_name`
    pub job_name: String,
    /// `cmd`
    pub cmd: String,
    /// `cmd_is_success`
    pub cmd_is_success: bool,
    /// `cmd_output`
    pub cmd_output: String,
    /// `cmd_cost`
    pub cmd_cost: f64,
    /// `scheduler_name`
    pub scheduler_name: String,
    /// `c_time`
    pub c_time: String,
    /// `fire_time`
    pub fire_time: Option<f64>,
    /// `run_id`
    pub run_id: Option<String>,
    /// `started`
    pub started: Option<f64>,
    /// `ended`
    pub ended: Option<f64>,
    /// `attempt`
    pub attempt: Option<i64>,
    /// `run_trigger`
    pub run_trigger: Option<String>,
    /// `outcome`
    pub outcome: Option<String>,
}

/// The columns `SELECT`ed for a [`HistoryRow`].
pub const HISTORY_COLUMNS: &str = "id, job_id, job_name, cmd, cmd_is_success, cmd_output, cmd_cost, scheduler_name, \
     c_time, fire_time, run_id, started, ended, attempt, run_trigger, outcome";

/// One `ruqi_runs` row (its output's length, not its output).
#[derive(Debug, sqlx::FromRow)]
pub struct RunRow {
    /// `run_id`
    pub run_id: String,
    /// `job_id`
    pub job_id: String,
    /// `job_name`
    pub job_name: String,
    /// `cmd`
    pub cmd: String,
    /// `fire_time`
    pub fire_time: f64,
    /// `run_trigger`
    pub run_trigger: String,
    /// `attempt`
    pub attempt: i64,
    /// `node`
    pub node: String,
    /// `state`
    pub state: String,
    /// `started`
    pub started: f64,
    /// `ended`
    pub ended: Option<f64>,
    /// `lease_until`
    pub lease_until: f64,
    /// `outcome`
    pub outcome: Option<String>,
    /// `kill_requested`
    pub kill_requested: bool,
    /// `params`
    pub params: Option<String>,
    /// `LENGTH(output)`
    pub output_len: Option<i64>,
}

impl RunRow {
    /// Decodes the row.
    pub fn into_record(self) -> Result<RunRecord, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { id: self.job_id.clone(), reason };
        let trigger = RunTrigger::parse(&self.run_trigger)
            .ok_or_else(|| corrupt(format!("run_trigger {:?}", self.run_trigger)))?;
        let state = match self.state.as_str() {
            "running" => RunState::Running,
            "waiting" => RunState::Waiting,
            "pending" => RunState::Pending,
            "ended" => RunState::Ended,
            other => return Err(corrupt(format!("run state {other:?}"))),
        };
        let outcome = match &self.outcome {
            Some(o) => Some(Outcome::parse(o).ok_or_else(|| corrupt(format!("run outcome {o:?}")))?),
            None => None,
        };
        Ok(RunRecord {
            run_id: self.run_id,
            job_id: self.job_id,
            job_name: self.job_name,
            cmd: self.cmd,
            fire_time: epoch_to_ts(self.fire_time),
            trigger,
            attempt: u32::try_from(self.attempt).unwrap_or(1),
            node: self.node,
            state,
            started: epoch_to_ts(self.started),
            ended: self.ended.map(epoch_to_ts),
            lease_until: epoch_to_ts(self.lease_until),
            outcome,
            kill_requested: self.kill_requested,
            params: self.params,
            output_len: self.output_len.unwrap_or(0).max(0) as u64,
        })
    }
}

impl HistoryRow {
    /// Decodes the row.
    pub fn into_record(self) -> Result<HistoryRecord, StoreError> {
        Ok(HistoryRecord {
            created: text_to_ts(&self.c_time)
                .map_err(|reason| StoreError::Corrupt { id: self.job_id.clone(), reason })?,
            id: self.id,
            job_id: self.job_id,
            job_name: self.job_name,
            cmd: self.cmd,
            success: self.cmd_is_success,
            output: self.cmd_output,
            cost: self.cmd_cost,
            scheduler_name: self.scheduler_name,
            fire_time: self.fire_time.map(epoch_to_ts),
            run: match (self.run_id, self.started, self.ended, self.run_trigger, self.outcome) {
                (Some(run_id), Some(started), Some(ended), Some(trigger), Some(outcome)) => Some(RunMeta {
                    run_id,
                    started: epoch_to_ts(started),
                    ended: epoch_to_ts(ended),
                    attempt: self.attempt.and_then(|a| u32::try_from(a).ok()).unwrap_or(1),
                    trigger: RunTrigger::parse(&trigger).unwrap_or(RunTrigger::Scheduled),
                    outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failed),
                }),
                _ => None,
            },
        })
    }
}

/// `ruqi_nodes` rows (name, version, started, seen, stopped) as [`NodeSeen`]s.
pub fn nodes(rows: Vec<(String, String, f64, f64, Option<f64>)>) -> Vec<crate::model::NodeSeen> {
    rows.into_iter()
        .map(|(name, version, started, seen, stopped)| crate::model::NodeSeen {
            name,
            version,
            started: epoch_to_ts(started),
            seen: epoch_to_ts(seen),
            stopped: stopped.map(epoch_to_ts),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_text_round_trip_to_the_microsecond() {
        for s in ["2026-11-24 10:00:00.123456", "2030-12-16 18:05:17.000001", "1999-01-01 00:00:00"] {
            let t = text_to_ts(s).unwrap();
            assert_eq!(epoch_to_ts(ts_to_epoch(t)), t, "{s}");
            assert_eq!(text_to_ts(&ts_to_text(t)).unwrap(), t, "{s}");
            assert!(is_exact(t), "{s}");
        }
        for s in ["9999-12-31 23:59:59", "2106-02-07 06:28:15.999999", "3000-01-01 00:00:00.5"] {
            assert!(is_exact(text_to_ts(s).unwrap()), "{s}");
        }
        assert!(!is_exact(text_to_ts("9999-12-31 23:59:59.999999").unwrap()));
    }
}
