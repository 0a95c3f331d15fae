//! The domain types shared by scheduler, dispatcher, store and api: jobs, runs, outcomes, history.
//!
//! No IO and no serialization here; each boundary converts to and from these types.

use std::fmt;

use crate::clock::Timestamp;
use crate::trigger::Trigger;

/// Longest job id the store accepts (the seed's `ruqi_jobs.id varchar(255)`).
pub const MAX_JOB_ID_LEN: usize = 255;
/// Longest job name the store accepts (the seed's `ruqi_jobs.job_name varchar(64)`).
pub const MAX_JOB_NAME_LEN: usize = 64;
/// Longest output kept in a history row (the seed's `cmd_output varchar(4096)`), in characters.
pub const MAX_OUTPUT_CHARS: usize = 4096;

/// A validated job id: non-empty, at most [`MAX_JOB_ID_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(String);

impl JobId {
    /// Validates a raw id.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("job_id must not be empty".into());
        }
        if raw.chars().count() > MAX_JOB_ID_LEN {
            return Err(format!("job_id is longer than {MAX_JOB_ID_LEN} characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job: what to run (`cmd`), when (`trigger`), and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Unique id.
    pub id: JobId,
    /// Free-form category name.
    pub name: String,
    /// The command a plugin executes.
    pub cmd: String,
    /// When it fires.
    pub trigger: Trigger,
    /// The next fire time; `None` means paused.
    pub next_run_time: Option<Timestamp>,
    /// When the job was added.
    pub created: Timestamp,
    /// When the job was last changed.
    pub updated: Timestamp,
    /// The job's own time zone (`timezone` of job_add); `None`: the node's `--timezone`.
    pub timezone: Option<chrono_tz::Tz>,
    /// The job's calendar (`calendar` of job_add): it fires only on the days it admits.
    pub calendar: Option<crate::calendar::CalendarRule>,
    /// The zone of the node that added it, which a job without its own `timezone` keeps (as a
    /// RuQi 1.x job kept its scheduler's zone in its pickled trigger), so nodes in different
    /// zones agree on its fire times. `None` (rows written before it was kept): each node's.
    pub home_zone: Option<chrono_tz::Tz>,
    /// How its runs are steered (all off by default: RuQi's behaviour).
    pub policy: RunPolicy,
    /// What its runs' ends set off: alerts, chained jobs, the circuit breaker, the deadline
    /// (all off by default).
    pub follow: FollowUp,
    /// Where it stands with its follow-ups (kept by the store, not set through the API).
    pub health: JobHealth,
}

/// A job's follow-up settings (`alert`, `on_success`, `pause_after_failures` … of
/// job_add/job_modify); the default sets nothing off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FollowUp {
    /// Alert targets: cmds served by plugins (`dingtalk:ops`, `http://…`); empty: the node's
    /// default targets, if any.
    pub alert: Vec<String>,
    /// What is alerted; empty: [`AlertKind::DEFAULT`].
    pub alert_on: Vec<AlertKind>,
    /// At most one alert of a kind per this many seconds ([`DEFAULT_ALERT_QUIET_SECS`] when
    /// unset; 0: every one).
    pub alert_quiet_secs: Option<u64>,
    /// Jobs that get a run (`trigger=chain`) when a run of this one succeeds.
    pub on_success: Vec<JobId>,
    /// Jobs that get a run when a run of this one fails (failed or timeout).
    pub on_failure: Vec<JobId>,
    /// The job is paused after this many failed or timed-out runs in a row.
    pub pause_after_failures: Option<u32>,
    /// A job the breaker paused gets a probe run after this many seconds (doubled after each
    /// failed probe, up to [`MAX_PROBE_WAIT_SECS`]).
    pub resume_after_secs: Option<u64>,
    /// A fire time with no successful run end this many seconds after it is alerted.
    pub deadline_secs: Option<u64>,
}

impl FollowUp {
    /// The kinds alerted (the job's, else the default ones).
    pub fn kinds(&self) -> &[AlertKind] {
        if self.alert_on.is_empty() { &AlertKind::DEFAULT } else { &self.alert_on }
    }

    /// The quiet window.
    pub fn quiet(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.alert_quiet_secs.unwrap_or(DEFAULT_ALERT_QUIET_SECS) as i64)
    }
}

/// Default quiet window of a job's alerts, seconds (10 minutes).
pub const DEFAULT_ALERT_QUIET_SECS: u64 = 600;
/// Longest wait between two probe runs of a job the breaker paused (a day).
pub const MAX_PROBE_WAIT_SECS: u64 = 86_400;

/// What the store keeps of a job's follow-ups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobHealth {
    /// Failed or timed-out runs in a row (kept for jobs with alerts or a breaker).
    pub fail_streak: u32,
    /// Why the breaker paused the job; `None` when it did not.
    pub paused_reason: Option<String>,
    /// When the paused job's probe run is due.
    pub probe_at: Option<Timestamp>,
    /// The wait before that probe, seconds.
    pub probe_wait_secs: Option<f64>,
    /// The fire time whose deadline is watched.
    pub deadline_fire: Option<Timestamp>,
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// A run failed.
    Failure,
    /// A run was stopped at its timeout.
    Timeout,
    /// A run was killed.
    Killed,
    /// A run succeeded after failed ones.
    Recovery,
    /// A fire time was skipped as missed (later than the misfire grace).
    Missed,
    /// A fire time had no successful run end by its deadline.
    Deadline,
    /// The circuit breaker paused the job.
    Paused,
}

impl AlertKind {
    /// Every kind, in the order the API lists them.
    pub const ALL: [Self; 7] =
        [Self::Failure, Self::Timeout, Self::Killed, Self::Recovery, Self::Missed, Self::Deadline, Self::Paused];
    /// Their names, in the same order.
    pub const NAMES: [&'static str; 7] = ["failure", "timeout", "killed", "recovery", "missed", "deadline", "paused"];
    /// What a job with alert targets and no `alert_on` is alerted of.
    pub const DEFAULT: [Self; 5] = [Self::Failure, Self::Timeout, Self::Recovery, Self::Deadline, Self::Paused];

    /// Its name in the API and the store.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The inverse of [`AlertKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::NAMES.iter().position(|n| *n == s).map(|i| Self::ALL[i])
    }
}

/// An alert to queue: what happened, to whom it goes; the store applies the quiet window.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDraft {
    /// What it is about.
    pub kind: AlertKind,
    /// The job.
    pub job_id: String,
    /// The job's name.
    pub job_name: String,
    /// The fire time concerned.
    pub fire_time: Option<Timestamp>,
    /// The run concerned.
    pub run_id: Option<String>,
    /// The node that saw it.
    pub node: String,
    /// The run's outcome.
    pub outcome: Option<Outcome>,
    /// The first lines of the run's output.
    pub output: String,
    /// A sentence more (why the job was paused, what the deadline was).
    pub detail: String,
    /// The targets (one row each).
    pub targets: Vec<String>,
    /// The job's quiet window.
    pub quiet: chrono::Duration,
}

/// Where an alert's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Waiting for its (next) try.
    Pending,
    /// Its target took it.
    Sent,
    /// Every try failed.
    Failed,
}

impl AlertState {
    /// Its name in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    /// The inverse of [`AlertState::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Sent, Self::Failed].into_iter().find(|a| a.as_str() == s)
    }
}

/// One alert and target as `ruqi_alerts` keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    /// Its id.
    pub id: i64,
    /// What happened (the facts of the draft).
    pub kind: AlertKind,
    /// The job.
    pub job_id: String,
    /// The job's name.
    pub job_name: String,
    /// Its target.
    pub target: String,
    /// The fire time concerned.
    pub fire_time: Option<Timestamp>,
    /// The run concerned.
    pub run_id: Option<String>,
    /// The node that saw it.
    pub node: String,
    /// The run's outcome.
    pub outcome: Option<Outcome>,
    /// The first lines of the run's output.
    pub output: String,
    /// A sentence more.
    pub detail: String,
    /// When it was queued.
    pub created: Timestamp,
    /// Its delivery's state.
    pub state: AlertState,
    /// Tries so far.
    pub attempts: u32,
    /// When it was sent.
    pub sent: Option<Timestamp>,
    /// What the target (its plugin) answered at the last try.
    pub answer: Option<String>,
    /// Alerts of the same job and kind the quiet window held back after it.
    pub suppressed: u64,
    /// Alerts of the same job and kind held back between the alert before it and this one.
    pub earlier_suppressed: u64,
}

/// One change made through the API, as the audit trail keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Its id (0 before it is stored).
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// The node that served it.
    pub node: String,
    /// Who: the name of the caller's token (`anonymous` without tokens).
    pub caller: String,
    /// The caller's address.
    pub peer: String,
    /// The route (`job_modify`, `run_kill` …).
    pub action: String,
    /// The job it changed.
    pub job_id: Option<String>,
    /// The run it started or stopped.
    pub run_id: Option<String>,
    /// JSON: the parameters, and for a job the fields before and after.
    pub detail: String,
}

/// Which audit entries `list_audit` returns.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact job id.
    pub job_id: Option<String>,
    /// Exact caller.
    pub caller: Option<String>,
    /// At or after.
    pub since: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
}

/// One version of a job's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct JobVersion {
    /// The job.
    pub job_id: String,
    /// 1, 2, … per job.
    pub version: u32,
    /// When it was made.
    pub at: Timestamp,
    /// Who made it.
    pub caller: String,
    /// The job_add parameters that make it (JSON object).
    pub definition: String,
}

/// Upper bounds of the fire-time lateness histogram the run rollups keep, milliseconds (a last
/// bucket holds what is later).
pub const LATENESS_BOUNDS_MS: [f64; 13] =
    [5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0];

/// Runs of one minute or hour, as the dashboard's charts read them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsBucket {
    /// When it starts.
    pub start: Timestamp,
    /// Runs by outcome (`success`, `failed`, `timeout`, `killed`, `missed`).
    pub runs: std::collections::BTreeMap<String, u64>,
    /// Fire-time lateness of its scheduled runs, by [`LATENESS_BOUNDS_MS`] bucket.
    pub late: [u64; 14],
}

/// One job's runs over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStats {
    /// The job.
    pub job_id: String,
    /// Its runs.
    pub runs: u64,
    /// Those that failed or timed out.
    pub failures: u64,
    /// Their mean cost, seconds.
    pub cost_avg: f64,
    /// Their longest, seconds.
    pub cost_max: f64,
}

/// What the dashboard's overview draws.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsOverview {
    /// The last hour, by minute (minutes with no run left out).
    pub minutes: Vec<StatsBucket>,
    /// The last 7 days, by hour.
    pub hours: Vec<StatsBucket>,
    /// The jobs with the longest mean run, yesterday and today (UTC days).
    pub slowest: Vec<JobStats>,
    /// The jobs with the most failed runs, yesterday and today (UTC days).
    pub failing: Vec<JobStats>,
}

/// Which alerts `list_alerts` returns.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Exact job id.
    pub job_id: Option<String>,
    /// One kind.
    pub kind: Option<AlertKind>,
    /// One state.
    pub state: Option<AlertState>,
}

/// A job's run-control settings (`timeout`, `kill_grace`, `retries` … of job_add/job_modify);
/// the default is RuQi's behaviour.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunPolicy {
    /// A run still going after this many seconds is stopped and recorded as `timeout`.
    pub timeout_secs: Option<u64>,
    /// Seconds between SIGTERM and SIGKILL when a run's command is stopped (the node's
    /// `--kill-grace` when unset).
    pub kill_grace_secs: Option<u64>,
    /// Times a run ending `failed` or `timeout` is tried again (0 = never).
    pub retries: u32,
    /// Seconds before the first retry ([`DEFAULT_RETRY_DELAY_SECS`] when unset).
    pub retry_delay_secs: Option<u64>,
    /// Factor each further retry's delay grows by ([`DEFAULT_RETRY_BACKOFF`] when unset).
    pub retry_backoff: Option<f64>,
    /// Longest delay before a retry ([`DEFAULT_RETRY_MAX_DELAY_SECS`] when unset).
    pub retry_max_delay_secs: Option<u64>,
    /// What a node does with fire times found past the misfire grace (the node's behaviour,
    /// `skip`, when unset).
    pub misfire: Option<Misfire>,
    /// The job's misfire grace, seconds (the node's `--misfire-grace` when unset).
    pub misfire_grace_secs: Option<u64>,
    /// Each fire time is moved later by an offset in `[0, jitter)` seconds drawn from the job
    /// and the fire time (the same on every node), so jobs sharing a rule do not all start in
    /// the same instant.
    pub jitter_secs: Option<u64>,
    /// What happens when a fire time comes while a run of the job is going (`skip`, RuQi's
    /// behaviour, when unset).
    pub overlap: Option<Overlap>,
}

/// What happens when a fire time comes (or a run is asked for) while a run of the job is still
/// going; the same on every node, as the job's claim carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// The fire time is skipped (RuQi's behaviour) and counted in the metrics.
    Skip,
    /// It runs once the current run ends; at most one waits (the latest fire time).
    BufferOne,
    /// Every such fire time waits and runs, one after another, in order.
    BufferAll,
    /// The running run is killed, then the new one starts.
    CancelOther,
    /// The new run starts at once, beside the running one.
    Allow,
}

impl Overlap {
    /// Every policy, in the order the API lists them.
    pub const ALL: [Self; 5] = [Self::Skip, Self::BufferOne, Self::BufferAll, Self::CancelOther, Self::Allow];
    /// Their names, in the same order (what `overlap=` accepts).
    pub const NAMES: [&'static str; 5] = ["skip", "buffer_one", "buffer_all", "cancel_other", "allow"];

    /// Its name in the API and in `job_state` ([`Overlap::NAMES`] is in declaration order).
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The inverse of [`Overlap::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::NAMES.iter().position(|n| *n == s).map(|i| Self::ALL[i])
    }
}

/// What happens to fire times found later than the misfire grace (after downtime, or when
/// every node was down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misfire {
    /// Skipped (RuQi's behaviour): the job goes on from its next fire time.
    Skip,
    /// The latest of them runs once, then the job goes on from now.
    Once,
    /// Each of them runs, one after another, in order.
    All,
}

impl Misfire {
    /// Its name in the API and in `job_state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Once => "once",
            Self::All => "all",
        }
    }

    /// The inverse of [`Misfire::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Skip, Self::Once, Self::All].into_iter().find(|m| m.as_str() == s)
    }
}

/// Seconds before the first retry when a job does not say.
pub const DEFAULT_RETRY_DELAY_SECS: u64 = 10;
/// Growth of the retry delay when a job does not say.
pub const DEFAULT_RETRY_BACKOFF: f64 = 2.0;
/// Longest retry delay when a job does not say.
pub const DEFAULT_RETRY_MAX_DELAY_SECS: u64 = 3600;

impl RunPolicy {
    /// How much later than its rule's fire time `t` the job `job` fires: an offset in
    /// `[0, jitter)` drawn from the job id and `t` (FNV-1a), so every node computes the same.
    pub fn jitter_offset(&self, job: &JobId, t: Timestamp) -> chrono::Duration {
        let Some(jitter) = self.jitter_secs.filter(|j| *j > 0) else { return chrono::Duration::zero() };
        let draw = job
            .as_str()
            .bytes()
            .chain(t.timestamp_micros().to_le_bytes())
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        chrono::Duration::microseconds((draw % (jitter.saturating_mul(1_000_000))) as i64)
    }

    /// The wait before trying again after attempt `failed` (1 = the first try) failed: `None`
    /// when no retry is left. `retry_delay · retry_backoff^(failed-1)`, at most
    /// `retry_max_delay`, plus a jitter of up to 10% drawn from `run_id` (never less than the
    /// delay), so the retries of many jobs failing together spread out.
    pub fn retry_delay(&self, failed: u32, run_id: &str) -> Option<std::time::Duration> {
        if failed == 0 || failed > self.retries {
            return None;
        }
        let base = self.retry_delay_secs.unwrap_or(DEFAULT_RETRY_DELAY_SECS) as f64;
        let factor = self.retry_backoff.unwrap_or(DEFAULT_RETRY_BACKOFF).powi(failed.min(64) as i32 - 1);
        let max = self.retry_max_delay_secs.unwrap_or(DEFAULT_RETRY_MAX_DELAY_SECS) as f64;
        let delay = (base * factor).min(max);
        let draw =
            run_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        let jitter = delay * 0.1 * ((draw % 10_000) as f64 / 10_000.0);
        Some(std::time::Duration::from_secs_f64(delay + jitter))
    }
}

/// A run a job waits for, kept on its row so it survives any node: a retry of a failed run
/// (`attempt` ≥ 2), or a fire time its overlap policy held back while a run went on (`attempt`
/// 1: `buffer_one`, `buffer_all`, `cancel_other`), due when that run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPlan {
    /// When it is due.
    pub at: Timestamp,
    /// Its attempt number (2 for the first retry; 1 for a held-back fire time).
    pub attempt: u32,
    /// The fire time of the rule the run is for.
    pub fire: Timestamp,
}

impl Job {
    /// The zone the job's rules are read in and its times printed in.
    pub fn zone(&self, node: chrono_tz::Tz) -> chrono_tz::Tz {
        self.timezone.or(self.home_zone).unwrap_or(node)
    }
}

/// A run the scheduler claimed and hands to the dispatcher.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    /// The job as it was when claimed.
    pub job: Job,
    /// The fire time this run is for.
    pub fire_time: Timestamp,
    /// The job's revision when claimed; a different one at finish means the API changed it.
    pub revision: i64,
    /// Why it runs; a scheduled run also moves the job to its next fire time when it ends.
    pub trigger: RunTrigger,
    /// The run's id: [`scheduled_run_id`] for a scheduled fire time, a random one otherwise.
    pub run_id: String,
    /// Whether the run holds the job's claim (every run but a manual one started with
    /// `overlap=allow`): its end releases the claim.
    pub holds_claim: bool,
    /// 1 for the first try, then 2, 3 … for retries.
    pub attempt: u32,
    /// The fire time of the job's rule this run belongs to: `fire_time` for a scheduled run,
    /// the failed run's for a retry (the job goes on from there).
    pub rule_fire: Timestamp,
    /// When it became due: the job's `next_run_time` the claim was for (`fire_time`, or the end
    /// of the run a held-back fire time waited for). Lateness is measured from it.
    pub due: Timestamp,
    /// The `params` of a run started by hand, for its plugin.
    pub params: Option<String>,
}

impl ClaimedRun {
    /// The scheduled run of `job` for `fire_time`, claimed at `revision`.
    pub fn scheduled(job: Job, fire_time: Timestamp, revision: i64) -> Self {
        let run_id = scheduled_run_id(&job.id, fire_time);
        Self {
            job,
            fire_time,
            revision,
            trigger: RunTrigger::Scheduled,
            run_id,
            holds_claim: true,
            attempt: 1,
            rule_fire: fire_time,
            due: fire_time,
            params: None,
        }
    }

    /// The run `plan` of `job` stands for, claimed at `revision` when it came due: a retry, or
    /// the scheduled run of a held-back fire time (keeping that fire time's id).
    pub fn retry(job: Job, plan: RetryPlan, revision: i64) -> Self {
        if plan.attempt <= 1 {
            return Self { due: plan.at, ..Self::scheduled(job, plan.fire, revision) };
        }
        let run_id = scheduled_run_id(&job.id, plan.at);
        Self {
            job,
            fire_time: plan.at,
            revision,
            trigger: RunTrigger::Retry,
            // Stable for the retry's due time, like a scheduled run's, so a retry taken over
            // after its node died keeps its id.
            run_id,
            holds_claim: true,
            attempt: plan.attempt,
            rule_fire: plan.fire,
            due: plan.at,
            params: None,
        }
    }

    /// Whether its end moves the job on: a scheduled run or a retry that holds the job's claim
    /// (not a run started by hand, nor one `overlap=allow` let go of the claim at its start).
    pub fn reschedules(&self) -> bool {
        self.holds_claim && matches!(self.trigger, RunTrigger::Scheduled | RunTrigger::Retry)
    }

    /// Whether it is a fire time its overlap policy held back until a run ended.
    pub fn held_back(&self) -> bool {
        self.trigger == RunTrigger::Scheduled && self.due != self.fire_time
    }
}

/// The id of the scheduled run of `job` for `fire_time`: the same on every node and after a
/// failover (a name-based UUID of the job id and the fire time's microseconds), so a receiver
/// can drop a replay of the same fire time by it.
pub fn scheduled_run_id(job: &JobId, fire_time: Timestamp) -> String {
    let name = format!("{}\n{}", job.as_str(), fire_time.timestamp_micros());
    uuid::Uuid::new_v5(&RUN_ID_NAMESPACE, name.as_bytes()).simple().to_string()
}

/// A fresh id for a run that no fire time names (manual, retry, backfill).
pub fn fresh_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The namespace of scheduled run ids (a fixed random UUID: ids are RuQi's own).
const RUN_ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x8f1f_5a0e_2c4b_4f7e_9a61_3d2b_7c90_e415);

/// Why a run happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunTrigger {
    /// A fire time of the job's rule.
    Scheduled,
    /// Started by hand (`job_run`).
    Manual,
    /// A retry of a failed run.
    Retry,
    /// A past fire time run by `job_backfill`.
    Backfill,
    /// Set off by the end of a run of another job (`on_success`, `on_failure`).
    Chain,
    /// The circuit breaker's trial run of a job it paused (`resume_after`).
    Probe,
}

impl RunTrigger {
    /// Its name in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Manual => "manual",
            Self::Retry => "retry",
            Self::Backfill => "backfill",
            Self::Chain => "chain",
            Self::Probe => "probe",
        }
    }

    /// The inverse of [`RunTrigger::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Scheduled, Self::Manual, Self::Retry, Self::Backfill, Self::Chain, Self::Probe]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The plugin reported success.
    Success,
    /// The plugin reported a failure (or trapped, or hit a limit of its grants).
    Failed,
    /// Stopped at the job's `timeout`.
    Timeout,
    /// Stopped by `run_kill`.
    Killed,
    /// Its node stopped renewing it (died, or lost the job's claim) before it ended.
    Lost,
}

impl Outcome {
    /// Its name in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
            Self::Killed => "killed",
            Self::Lost => "lost",
        }
    }

    /// The inverse of [`Outcome::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Success, Self::Failed, Self::Timeout, Self::Killed, Self::Lost].into_iter().find(|o| o.as_str() == s)
    }
}

/// Whether a run is going on or over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Queued by a chain: no node has taken it yet (any node may).
    Pending,
    /// Started by hand (or a backfill) while a run of its job goes on: it starts when that
    /// run ends (the job's overlap policy).
    Waiting,
    /// Executing on its node.
    Running,
    /// Over (see its [`Outcome`]).
    Ended,
}

impl RunState {
    /// Whether its node vouches for it (waiting or running).
    pub fn is_live(self) -> bool {
        matches!(self, Self::Waiting | Self::Running)
    }

    /// Its name in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Waiting => "waiting",
            Self::Running => "running",
            Self::Ended => "ended",
        }
    }
}

/// What history keeps of a run besides RuQi's columns.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMeta {
    /// The run's id.
    pub run_id: String,
    /// When it started.
    pub started: Timestamp,
    /// When it ended.
    pub ended: Timestamp,
    /// 1 for the first try.
    pub attempt: u32,
    /// Why it ran.
    pub trigger: RunTrigger,
    /// How it ended.
    pub outcome: Outcome,
}

/// One run as `ruqi_runs` keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// Its id.
    pub run_id: String,
    /// The job's id.
    pub job_id: String,
    /// The job's name when it started.
    pub job_name: String,
    /// The cmd it runs.
    pub cmd: String,
    /// The fire time it is for (a manual run: when it was asked for).
    pub fire_time: Timestamp,
    /// Why it runs.
    pub trigger: RunTrigger,
    /// 1 for the first try.
    pub attempt: u32,
    /// The node running (or that ran) it.
    pub node: String,
    /// Running or ended.
    pub state: RunState,
    /// When it started.
    pub started: Timestamp,
    /// When it ended.
    pub ended: Option<Timestamp>,
    /// Until when its node vouches for it (renewed while it runs).
    pub lease_until: Timestamp,
    /// How it ended.
    pub outcome: Option<Outcome>,
    /// Whether a kill was asked for.
    pub kill_requested: bool,
    /// The `params` of a manual run.
    pub params: Option<String>,
    /// Bytes of output stored so far (the whole output once ended).
    pub output_len: u64,
}

impl RunRecord {
    /// The row of `run`, running on `node` since `started`, vouched for until `lease_until`.
    pub fn running(run: &ClaimedRun, node: &str, started: Timestamp, lease_until: Timestamp) -> Self {
        Self {
            run_id: run.run_id.clone(),
            job_id: run.job.id.to_string(),
            job_name: run.job.name.clone(),
            cmd: run.job.cmd.clone(),
            fire_time: run.fire_time,
            trigger: run.trigger,
            attempt: run.attempt,
            node: node.to_owned(),
            state: RunState::Running,
            started,
            ended: None,
            lease_until,
            outcome: None,
            kill_requested: false,
            params: run.params.clone(),
            output_len: 0,
        }
    }
}

/// Filters of the run listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    /// Exact job id.
    pub job_id: Option<String>,
    /// Only running or only ended runs.
    pub state: Option<RunState>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// Whether it succeeded.
    pub success: bool,
    /// Output, already truncated to [`MAX_OUTPUT_CHARS`].
    pub output: String,
    /// Seconds it took.
    pub cost: f64,
}

/// One row of run history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRecord {
    /// Auto-increment id (0 before insertion).
    pub id: i64,
    /// The job's id.
    pub job_id: String,
    /// The job's name at the time of the run.
    pub job_name: String,
    /// The cmd that ran.
    pub cmd: String,
    /// Whether it succeeded.
    pub success: bool,
    /// Output (truncated).
    pub output: String,
    /// Seconds it took.
    pub cost: f64,
    /// The node that ran it, `host:port:pid`.
    pub scheduler_name: String,
    /// When the row was written.
    pub created: Timestamp,
    /// The fire time the run was for; at most one row per (job, fire time).
    pub fire_time: Option<Timestamp>,
    /// The run's id, times, attempt, trigger and outcome (rows written before runs had them: none).
    pub run: Option<RunMeta>,
}

/// Filters shared by job and history listings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    /// Exact job id.
    pub job_id: Option<String>,
    /// Exact job name.
    pub job_name: Option<String>,
    /// Only jobs that name a calendar (read without decoding the others: a node's start with a
    /// million stored jobs follows the calendars of the few that have one).
    pub with_calendar: bool,
}

/// Filters of the history listing and clearing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    /// Exact job id.
    pub job_id: Option<String>,
    /// Exact job name.
    pub job_name: Option<String>,
    /// Only successful (true) or failed (false) runs.
    pub success: Option<bool>,
    /// Exact node name.
    pub scheduler_name: Option<String>,
}

/// A node as the store last saw it (`scheduler_nodes`): every node writes its row every few
/// seconds while it runs, and marks it stopped when it shuts down cleanly.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSeen {
    /// The node's name (`host:port:pid`, as in history rows).
    pub name: String,
    /// Its RuQi version.
    pub version: String,
    /// When it started.
    pub started: Timestamp,
    /// When it last wrote its row.
    pub seen: Timestamp,
    /// When it shut down cleanly; `None` while it runs (or if it died).
    pub stopped: Option<Timestamp>,
}

/// A page request: `limit` rows after skipping `offset`; `None` means all rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return; `None` for no limit.
    pub limit: Option<u64>,
}

impl Page {
    /// Every row.
    pub const ALL: Page = Page { offset: 0, limit: None };
}

/// Truncates `s` to at most `max` characters, on a character boundary.
pub fn truncate_chars(mut s: String, max: usize) -> String {
    if let Some((idx, _)) = s.char_indices().nth(max) {
        s.truncate(idx);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_names_follow_the_policies() {
        for (i, o) in Overlap::ALL.into_iter().enumerate() {
            assert_eq!((o.as_str(), Overlap::parse(Overlap::NAMES[i])), (Overlap::NAMES[i], Some(o)));
        }
        assert_eq!(Overlap::BufferAll.as_str(), "buffer_all");
        assert_eq!(Overlap::parse("often"), None);
    }

    #[test]
    fn job_id_validation() {
        assert!(JobId::parse("").is_err());
        assert!(JobId::parse(&"x".repeat(255)).is_ok());
        assert!(JobId::parse(&"x".repeat(256)).is_err());
        assert_eq!(JobId::parse("/a/b").unwrap().as_str(), "/a/b");
    }

    #[test]
    fn retry_delays_back_off_up_to_the_max_with_a_small_jitter() {
        let p = RunPolicy {
            retries: 4,
            retry_delay_secs: Some(10),
            retry_backoff: Some(3.0),
            retry_max_delay_secs: Some(60),
            ..RunPolicy::default()
        };
        let secs = |n| p.retry_delay(n, "run-a").map(|d| d.as_secs_f64());
        for (n, base) in [(1, 10.0), (2, 30.0), (3, 60.0), (4, 60.0)] {
            let d = secs(n).unwrap();
            assert!(d >= base && d < base * 1.1, "attempt {n}: {d}");
        }
        assert_eq!(secs(5), None);
        assert_eq!(secs(0), None);
        assert_eq!(RunPolicy::default().retry_delay(1, "x"), None);
        assert_ne!(p.retry_delay(1, "run-a"), p.retry_delay(1, "run-b"), "jitter differs by run");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_chars("héllo".into(), 2), "hé");
        assert_eq!(truncate_chars("abc".into(), 10), "abc");
        assert_eq!(truncate_chars("如期而至".into(), 2), "如期");
    }
}
