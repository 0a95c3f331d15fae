//! The dispatcher: *who* runs a claimed run, how many at once, and recording the outcome.
//!
//! Each claimed run is a task; at most `concurrency` of them execute at once (a semaphore),
//! and the scheduler may claim a few more than that ([`Dispatcher::free_slots`]) so the next
//! runs are ready the moment a slot frees. A run's end goes to the **recorder**, one task that
//! writes the ends that arrive together in one store transaction (group commit: the history
//! rows and the jobs' next fire times) and then wakes the scheduler; a run whose end waits for
//! it holds no slot, so the next runs are claimed while the last ones are written. Misfire: a run found later
//! than the grace after its fire time is skipped (no history row, as in RuQi) and the job moves
//! to its next fire time; each miss is logged at `debug`, and at most one `warn` line per
//! [`MISSED_WARN_EVERY`] counts them (an overloaded node must not also flood its log).
//!
//! Fencing: a run executes only while its claim is provably held. A run that waited in the
//! queue long enough for its lease to be at risk confirms its claim before it starts. While it
//! executes, the same task renews the lease every third of it (no task of its own to leak:
//! the renewal lives and dies with the run). When a renewal finds the claim gone (another node
//! took the job over, or the job was removed), or renewals fail until the lease may have run
//! out, the run is cancelled: the plugin call is dropped (a command it started is killed with
//! its process group) and nothing is recorded for that fire time, which now belongs to whoever
//! holds the claim.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::calendar::Calendars;
use crate::clock::{Clock, Timestamp};
use crate::metrics::Metrics;
use crate::model::{
    ClaimedRun, HistoryRecord, Job, JobId, MAX_OUTPUT_CHARS, Misfire, Outcome, Overlap, Page, RetryPlan, RunFilter,
    RunMeta, RunRecord, RunState, RunTrigger, fresh_run_id, truncate_chars,
};
use crate::plugin::{ExecOutcome, Registry, RunRequest};
use crate::run::{RunControl, StopReason};
use crate::store::{FinishOutcome, JobStore, RunEnd, StoreError};
use crate::trigger::format_python;

/// Executes a run request; the plugin registry in the service, simpler things in tests.
#[async_trait]
pub trait RunExecutor: Send + Sync + 'static {
    /// Runs it.
    async fn execute(&self, request: &RunRequest) -> ExecOutcome;
    /// Runs it steered by `control` (stop signal, environment, live output); executors that
    /// cannot be steered run it plainly (a stop then drops the call).
    async fn execute_controlled(&self, request: &RunRequest, control: &RunControl) -> ExecOutcome {
        let _ = control;
        self.execute(request).await
    }
}

#[async_trait]
impl RunExecutor for Registry {
    async fn execute(&self, request: &RunRequest) -> ExecOutcome {
        Registry::execute(self, request).await
    }

    async fn execute_controlled(&self, request: &RunRequest, control: &RunControl) -> ExecOutcome {
        Registry::execute_controlled(self, request, Some(control)).await
    }
}

/// Settings of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// This node's name, `host:port:pid`.
    pub node: String,
    /// Runs at once on this node.
    pub concurrency: usize,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// How late a run may start (RuQi: 30 s).
    pub misfire_grace: Duration,
    /// Zone for the fire time shown to plugins, and of jobs without their own.
    pub tz: chrono_tz::Tz,
    /// The calendars jobs may name (their runs fire only on the days they admit).
    pub calendars: Arc<Calendars>,
    /// Bytes of a run's whole output kept with its run row (`--run-output-limit`).
    pub run_output_limit: usize,
    /// Time a stopped run's command gets between SIGTERM and SIGKILL, unless its job sets one.
    pub kill_grace: Duration,
    /// The node's alert settings (default targets, links, language).
    pub alerts: crate::followup::AlertSettings,
}

/// Run ends written in one transaction at most.
const RECORD_BATCH: usize = 512;
/// Claimed runs a node holds beyond its running ones, per slot: enough to keep the slots busy
/// between two claims, few enough to leave work to other nodes.
const QUEUE_PER_SLOT: usize = 1;
/// The queue may also be as long as the runs the node recorded in the last `TURNOVER_WINDOW`:
/// when runs are short, a run queued behind that many starts within about that long, and
/// claims of a few dozen runs at a time would hold the node back.
const TURNOVER_WINDOW: Duration = Duration::from_millis(200);
/// The longest queue the turnover gives.
const MAX_QUEUE: usize = 1024;

/// Ends of claimed runs the recorder may have waiting at most before the node claims no more:
/// beyond it the store is slower than the runs, and new claims would only wait longer.
const RECORDING_BOUND: usize = 2 * RECORD_BATCH;

/// The jobs whose runs this node holds: claimed and not yet recorded. A job is held at most
/// once, so a claim that comes back while its run is held here (its lease ran out during a slow
/// store call) cannot start a second run of it on this node.
#[derive(Default)]
struct Held {
    jobs: Mutex<HashSet<String>>,
    /// How many of them have ended and wait for the recorder: they hold no slot.
    recording: AtomicUsize,
    /// When the recorder wrote how many of them, over the last [`TURNOVER_WINDOW`].
    turnover: Mutex<std::collections::VecDeque<(tokio::time::Instant, usize)>>,
}

impl Held {
    /// Holds `job`: the number held now, or `None` when it was held already.
    fn take(&self, job: &str) -> Option<usize> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.insert(job.to_owned()).then_some(jobs.len())
    }

    /// Lets go of `jobs`; the number still held.
    fn release<'a>(&self, jobs: impl IntoIterator<Item = &'a str>) -> usize {
        let mut held = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        for job in jobs {
            held.remove(job);
        }
        held.len()
    }

    /// How many jobs are held.
    fn count(&self) -> usize {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// How many held runs have ended and wait for the recorder.
    fn recording(&self) -> usize {
        self.recording.load(Ordering::Acquire)
    }

    /// Counts a held run whose end goes to the recorder (before the recorder can see it).
    fn ending(&self) {
        self.recording.fetch_add(1, Ordering::AcqRel);
    }

    /// Takes back [`Held::ending`] of an end the recorder never got.
    fn not_ending(&self) {
        self.recording.fetch_sub(1, Ordering::AcqRel);
    }

    /// Notes that the recorder wrote `n` of them now.
    fn recorded(&self, n: usize) {
        self.recording.fetch_sub(n, Ordering::AcqRel);
        let now = tokio::time::Instant::now();
        let mut turnover = self.turnover.lock().unwrap_or_else(|p| p.into_inner());
        while turnover.front().is_some_and(|(at, _)| now.duration_since(*at) > TURNOVER_WINDOW) {
            turnover.pop_front();
        }
        turnover.push_back((now, n));
    }

    /// How many were recorded in the last [`TURNOVER_WINDOW`].
    fn turnover(&self) -> usize {
        let now = tokio::time::Instant::now();
        let turnover = self.turnover.lock().unwrap_or_else(|p| p.into_inner());
        turnover.iter().filter(|(at, _)| now.duration_since(*at) <= TURNOVER_WINDOW).map(|(_, n)| n).sum()
    }
}

/// See the module doc.
pub struct Dispatcher {
    store: Arc<dyn JobStore>,
    executor: Arc<dyn RunExecutor>,
    clock: Arc<dyn Clock>,
    config: DispatchConfig,
    slots: Arc<Semaphore>,
    /// Runs claimed and not yet recorded (queued, running, or waiting for the recorder).
    held: Arc<Held>,
    /// Set at shutdown: queued runs do not start (their claims are released).
    stopping: AtomicBool,
    tracker: TaskTracker,
    /// Where runs send their ends; taken (closed) at shutdown so the recorder drains and stops.
    ends: Mutex<Option<mpsc::UnboundedSender<RunEnd>>>,
    recorder: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Notified when runs end (slots are free and the jobs' next times are recorded).
    finished: Arc<Notify>,
    metrics: Arc<Metrics>,
    missed: MissedLog,
    /// Interval jobs the clock stepped back behind, by job id: the first fire time of each that
    /// had not run before the step (see [`Dispatcher::hold_replays`]).
    replays: Mutex<HashMap<String, Timestamp>>,
    /// The runs executing on this node, by run id, with their claims and whether their row is
    /// written yet (see [`Dispatcher::look_after_runs`]).
    local: Mutex<HashMap<String, Local>>,
}

/// A run executing on this node.
struct Local {
    control: RunControl,
    run: ClaimedRun,
    /// Whether its row is in the store (written at once for a run started by hand; by the
    /// first look after it for a scheduled one).
    written: bool,
}

/// A run asked for by hand (`job_run`, or a fire time of `job_backfill`).
#[derive(Debug, Clone)]
pub struct HandRun {
    /// Its job.
    pub job_id: JobId,
    /// `Manual` or `Backfill`.
    pub trigger: RunTrigger,
    /// The fire time it is for (a backfill's); now when `None`.
    pub fire_time: Option<Timestamp>,
    /// Its id, when chosen beforehand (a backfill answers its runs' ids); a fresh one otherwise.
    pub run_id: Option<String>,
    /// The overlap policy asked for with it; the job's when `None`.
    pub overlap: Option<Overlap>,
    /// Text handed to the plugin with the run.
    pub params: Option<String>,
}

impl HandRun {
    /// The run of `job` (claimed at `revision` when it `holds_claim`) asked for at `now`.
    fn run(&self, job: Job, revision: i64, holds_claim: bool, now: Timestamp) -> ClaimedRun {
        let fire_time = self.fire_time.unwrap_or(now);
        ClaimedRun {
            job,
            fire_time,
            revision,
            trigger: self.trigger,
            run_id: self.run_id.clone().unwrap_or_else(fresh_run_id),
            holds_claim,
            attempt: 1,
            rule_fire: fire_time,
            due: now,
            params: self.params.clone(),
        }
    }
}

/// Why `run_by_hand` could not start a run.
#[derive(Debug, thiserror::Error)]
pub enum RunNowError {
    /// A run of the job holds it and the overlap policy does not allow another.
    #[error("a run of job {0} is in progress (overlap=skip); pass overlap=allow to start another beside it")]
    Busy(String),
    /// A run of the job is going on and another already waits for it (`buffer_one`).
    #[error("a run of job {0} is in progress and another already waits for it (overlap=buffer_one)")]
    AlreadyWaiting(String),
    /// The node is shutting down.
    #[error("this node is shutting down")]
    Stopping,
    /// The store failed (or has no such job).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How often the node looks at its running runs: stores what they printed since, and looks for
/// kill requests made on other nodes.
pub const RUN_LOOK_EVERY: Duration = Duration::from_millis(500);

/// How often, at most, missed runs are summed up in one `warn` line.
pub const MISSED_WARN_EVERY: Duration = Duration::from_secs(10);

/// Counts missed runs between two `warn` lines.
#[derive(Default)]
struct MissedLog {
    /// Missed since the last line.
    count: AtomicU64,
    /// When the last line was written (epoch ms; 0 = never).
    last_ms: AtomicI64,
}

impl MissedLog {
    /// Counts one miss `late` after its fire time; writes the summary line when it is due.
    fn missed(&self, now: Timestamp, late: chrono::Duration) {
        tracing::debug!(late_s = late.num_seconds(), "run missed: later than the misfire grace");
        self.count.fetch_add(1, Ordering::Relaxed);
        let now_ms = now.timestamp_millis();
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == 0 || now_ms - last >= MISSED_WARN_EVERY.as_millis() as i64;
        if due && self.last_ms.compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            let count = self.count.swap(0, Ordering::Relaxed).max(1);
            tracing::warn!(
                missed = count,
                late_s = late.num_seconds(),
                "runs missed: later than the misfire grace (not run, no history row; the node is overloaded or was stopped)"
            );
        }
    }
}

/// The job's misfire grace: its own, else the node's.
fn misfire_grace(job: &Job, config: &DispatchConfig) -> chrono::Duration {
    let grace = job.policy.misfire_grace_secs.map_or(config.misfire_grace, Duration::from_secs);
    chrono::Duration::from_std(grace).unwrap_or_default()
}

/// Fire times stepped through to find the latest missed one (`misfire=once`); past that, the
/// first within the grace is taken instead.
const MAX_MISSED_STEPS: usize = 100_000;

/// The job's next fire time after `fire_time` (on a day its calendar admits, in its zone), by
/// its misfire policy for those already later than its misfire grace: skipped (the default),
/// the latest of them (`once`), or each in turn (`all`).
pub fn next_after(job: &Job, config: &DispatchConfig, fire_time: Timestamp, now: Timestamp) -> Option<Timestamp> {
    let grace = misfire_grace(job, config);
    let next = config.calendars.next_for_job(job, config.tz, Some(fire_time), now)?;
    if next + grace >= now {
        return Some(next);
    }
    match job.policy.misfire {
        Some(Misfire::All) => Some(next),
        Some(Misfire::Once) => {
            // The latest fire time not in the future: it runs once, late, and the job goes on.
            let mut latest = next;
            for _ in 0..MAX_MISSED_STEPS {
                match config.calendars.next_for_job(job, config.tz, Some(latest), now) {
                    Some(t) if t <= now => latest = t,
                    _ => return Some(latest),
                }
            }
            config.calendars.next_for_job(job, config.tz, None, now - grace)
        }
        _ => config.calendars.next_for_job(job, config.tz, None, now - grace),
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncate_bytes(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// What became of the claim during a renewal.
enum Renewal {
    /// Held until the given instant.
    Held(Timestamp),
    /// Gone (taken over, or the job removed).
    Lost,
    /// Could not tell (the store failed).
    Unknown,
}

impl Dispatcher {
    /// A dispatcher; `finished` is notified whenever runs end; runs are counted in `metrics`.
    /// Starts its recorder task (so it must be built inside the async runtime).
    pub fn new(
        store: Arc<dyn JobStore>,
        executor: Arc<dyn RunExecutor>,
        clock: Arc<dyn Clock>,
        config: DispatchConfig,
        finished: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let (tx, rx) = mpsc::unbounded_channel();
        let held = Arc::new(Held::default());
        let recorder = Recorder {
            store: store.clone(),
            clock: clock.clone(),
            node: config.node.clone(),
            held: held.clone(),
            metrics: metrics.clone(),
        };
        let recorder = tokio::spawn(recorder.run(rx, finished.clone()));
        Self {
            store,
            executor,
            clock,
            config,
            slots,
            held,
            stopping: AtomicBool::new(false),
            tracker: TaskTracker::new(),
            ends: Mutex::new(Some(tx)),
            recorder: Mutex::new(Some(recorder)),
            finished,
            metrics,
            missed: MissedLog::default(),
            replays: Mutex::new(HashMap::new()),
            local: Mutex::new(HashMap::new()),
        }
    }

    /// The metrics it records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// After the clock stepped back behind interval job `job`, whose first fire time not yet
    /// run was `first_unrun`, and the job was moved on from the new now: once the clock is back
    /// past `first_unrun`, the job's fire times before it ran already (before the step), and a
    /// late run of one of them is skipped rather than run again. Kept in memory until the job
    /// runs a fire time from `first_unrun` on.
    pub fn hold_replays(&self, job: &JobId, first_unrun: Timestamp) {
        self.replays.lock().unwrap_or_else(|p| p.into_inner()).insert(job.as_str().to_owned(), first_unrun);
    }

    /// The first fire time not run before a step back, when `fire_time` lies before it and the
    /// clock is back past it (a replay: skip it); forgets the job once it runs past it.
    fn replay_of(&self, job: &JobId, fire_time: Timestamp, now: Timestamp) -> Option<Timestamp> {
        let mut replays = self.replays.lock().unwrap_or_else(|p| p.into_inner());
        let first_unrun = *replays.get(job.as_str())?;
        if fire_time >= first_unrun {
            replays.remove(job.as_str());
            return None;
        }
        (now >= first_unrun).then_some(first_unrun)
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.config.node
    }

    /// The claim lease.
    pub fn lease(&self) -> Duration {
        self.config.lease
    }

    /// The store runs are recorded in.
    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.store
    }

    /// The clock runs are timed by.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// What executes runs (and delivers alerts).
    pub fn executor(&self) -> &Arc<dyn RunExecutor> {
        &self.executor
    }

    /// Its settings.
    pub fn config(&self) -> &DispatchConfig {
        &self.config
    }

    /// What the end of `end.run` sets off (see [`crate::followup::after_end`]).
    fn after(&self, end: &crate::followup::Ending<'_>) -> Option<Box<crate::store::AfterEnd>> {
        let c = &self.config;
        crate::followup::after_end(end, &c.node, &c.calendars, c.tz, &c.alerts)
    }

    /// How many more runs the scheduler may claim now: the running slots plus a queue, less
    /// the runs queued or running. The queue is [`QUEUE_PER_SLOT`] runs a slot, or as many runs
    /// as the node recorded in the last [`TURNOVER_WINDOW`] when that is more (short runs; up to
    /// [`MAX_QUEUE`]): runs that take long are not claimed ahead of when a slot can take them.
    /// Runs that ended and wait for the recorder hold no slot, so the next runs are claimed
    /// while the last ones are written (the two overlap), unless the recorder has
    /// [`RECORDING_BOUND`] of them waiting.
    pub fn free_slots(&self) -> usize {
        let recording = self.held.recording();
        if recording >= RECORDING_BOUND {
            return 0;
        }
        let slots = self.config.concurrency.max(1);
        let queue = (slots * QUEUE_PER_SLOT).max(self.held.turnover().min(MAX_QUEUE));
        (slots + queue).saturating_sub(self.held.count().saturating_sub(recording))
    }

    /// Runs in flight (queued or running).
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Takes a claimed run (leased until `lease_until`): it runs when a slot is free.
    pub fn dispatch(self: &Arc<Self>, run: ClaimedRun, lease_until: Timestamp) {
        if run.holds_claim {
            let Some(held) = self.held.take(run.job.id.as_str()) else {
                // This node holds the job already (its run goes on, or its end is not recorded
                // yet) and claimed it again because the claim's lease ran out meanwhile (a slow
                // store): the new claim only renewed the old one. Never two runs of one job at once.
                tracing::debug!(job_id = %run.job.id, "claimed again while held here: not run twice");
                return;
            };
            self.metrics.claims_held.set(held as i64);
        }
        let this = self.clone();
        let span = tracing::info_span!("run", job_id = %run.job.id, run_id = %run.run_id, fire_time = %run.fire_time);
        self.tracker.spawn(
            async move {
                let permit = this.slots.clone().acquire_owned().await;
                if permit.is_err() || this.stopping.load(Ordering::Acquire) {
                    this.ended(&run, None); // shutting down: not started, the claim is released
                    return;
                }
                this.run_one(run, lease_until).await;
                drop(permit);
            }
            .instrument(span),
        );
    }

    /// Hands a run's end to the recorder (or, for a run that recorded nothing, just lets go of it).
    fn ended(&self, run: &ClaimedRun, end: Option<RunEnd>) {
        let sent = match (end, self.ends.lock().unwrap_or_else(|p| p.into_inner()).as_ref()) {
            (Some(end), Some(tx)) => {
                // A run that let go of its claim as it started (`overlap=allow`) is not held.
                let held = end.run.holds_claim;
                if held {
                    self.held.ending();
                }
                let sent = tx.send(end).is_ok();
                if !sent && held {
                    self.held.not_ending();
                }
                sent
            }
            _ => false,
        };
        if !sent {
            // Nothing for the recorder: the run is no longer held once this returns.
            if run.holds_claim {
                let held = self.held.release([run.job.id.as_str()]);
                self.metrics.claims_held.set(held as i64);
            }
            self.finished.notify_one();
        }
    }

    async fn run_one(&self, run: ClaimedRun, lease_until: Timestamp) {
        let end = self.execute(&run, lease_until).await;
        // The recorder lets go of the run once its end is written.
        self.ended(&run, end);
    }

    /// Starts a run by hand on this node, even for a paused job, and answers its run id: a run
    /// of `job_run`, or one fire time of a backfill. It holds the job's claim like a scheduled
    /// run, so the overlap rule holds across the cluster. While another run holds the job, the
    /// policy (`ask.overlap`, else the job's) decides: `skip` refuses (`Busy`), `allow` runs it
    /// beside, `buffer_one`/`buffer_all` make it wait (its row says `waiting`) until the claim is
    /// free (`buffer_one`: unless one already waits), `cancel_other` asks for the running runs to
    /// be killed and waits. The returned handle ends when the run (or its wait) is over.
    pub async fn run_by_hand(self: &Arc<Self>, ask: HandRun) -> Result<(String, JoinHandle<()>), RunNowError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(RunNowError::Stopping);
        }
        let now = self.clock.now();
        let lease_until = now + chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        let job_id = &ask.job_id;
        let missing = || StoreError::NotFound(job_id.to_string());
        if ask.overlap == Some(Overlap::Allow) {
            let job = self.store.get_job(job_id).await?.ok_or_else(missing)?;
            return self.start_by_hand(ask.run(job, 0, false, now)).await;
        }
        if let Some((job, revision)) = self.store.claim_job(job_id, &self.config.node, lease_until, now).await? {
            let run = ask.run(job, revision, true, now);
            if self.held.take(run.job.id.as_str()).is_none() {
                // Claimed in the store, yet this node still holds a run of the job whose end it
                // has not recorded: the store's claim is this node's own.
                return self.wait_by_hand(ClaimedRun { holds_claim: true, ..run }, ask.overlap).await;
            }
            return self.start_by_hand(run).await;
        }
        let job = self.store.get_job(job_id).await?.ok_or_else(missing)?;
        let run = ask.run(job, 0, true, now);
        self.wait_by_hand(run, ask.overlap).await
    }

    /// A run asked for by hand while another run holds its job: what the overlap policy says.
    async fn wait_by_hand(
        self: &Arc<Self>,
        run: ClaimedRun,
        asked: Option<Overlap>,
    ) -> Result<(String, JoinHandle<()>), RunNowError> {
        let job_id = run.job.id.clone();
        let policy = asked.or(run.job.policy.overlap).unwrap_or(Overlap::Skip);
        let live = |state| RunFilter { job_id: Some(job_id.to_string()), state: Some(state) };
        match policy {
            Overlap::Skip => return Err(RunNowError::Busy(job_id.to_string())),
            Overlap::Allow => return self.start_by_hand(ClaimedRun { holds_claim: false, ..run }).await,
            Overlap::BufferOne => {
                let (waiting, _) =
                    self.store.list_runs(&live(RunState::Waiting), Page { offset: 0, limit: Some(1) }).await?;
                if waiting > 0 {
                    return Err(RunNowError::AlreadyWaiting(job_id.to_string()));
                }
            }
            Overlap::BufferAll => {}
            Overlap::CancelOther => {
                let (_, running) =
                    self.store.list_runs(&live(RunState::Running), Page { offset: 0, limit: Some(100) }).await?;
                for other in running {
                    if !self.stop_local(&other.run_id, StopReason::Replaced) {
                        self.store.request_kill(&other.run_id).await?;
                    }
                    tracing::info!(job_id = %job_id, run_id = %other.run_id, "run replaced by a run asked for by hand (overlap=cancel_other)");
                }
            }
        }
        let now = self.clock.now();
        let lease = chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        let mut record = self.run_record(&run, now);
        record.state = RunState::Waiting;
        record.lease_until = now + lease;
        self.store.start_run(&record).await?;
        let control = self.control_of(&run);
        let local = Local { control: control.clone(), run: run.clone(), written: true };
        self.local.lock().unwrap_or_else(|p| p.into_inner()).insert(run.run_id.clone(), local);
        let run_id = run.run_id.clone();
        let this = self.clone();
        let span =
            tracing::info_span!("run", job_id = %run.job.id, run_id = %run.run_id, trigger = run.trigger.as_str());
        let handle = self.tracker.spawn(
            async move {
                match this.wait_for_claim(&run, &control).await {
                    Some(run) => this.execute_by_hand(run).await,
                    None => {
                        this.local.lock().unwrap_or_else(|p| p.into_inner()).remove(&run.run_id);
                    }
                }
            }
            .instrument(span),
        );
        Ok((run_id, handle))
    }

    /// Waits until this node claims `run`'s job (the run then goes on, its row running), or
    /// the run is killed or the node stops (its row ends, `None`).
    async fn wait_for_claim(&self, run: &ClaimedRun, control: &RunControl) -> Option<ClaimedRun> {
        let stopped = control.stopped();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = &mut stopped => {
                    let end = self.clock.now();
                    let out = "killed while waiting for the run of its job to end";
                    if let Err(e) = self.store.end_run(&run.run_id, &self.config.node, Outcome::Killed, end, Some(out)).await {
                        tracing::warn!(error = %e, "cannot end the waiting run's row; it ends as lost when its lease runs out");
                    }
                    return None;
                }
                _ = tokio::time::sleep(RUN_LOOK_EVERY) => {}
            }
            let now = self.clock.now();
            if self.stopping.load(Ordering::Acquire) {
                let out = "not started: its node stopped while it waited";
                let _ = self.store.end_run(&run.run_id, &self.config.node, Outcome::Lost, now, Some(out)).await;
                return None;
            }
            let lease_until = now + chrono::Duration::from_std(self.config.lease).unwrap_or_default();
            match self.store.claim_job(&run.job.id, &self.config.node, lease_until, now).await {
                Ok(Some((job, revision))) => {
                    if self.held.take(job.id.as_str()).is_none() {
                        continue; // this node's own run of the job is not recorded yet
                    }
                    let run = ClaimedRun { job, revision, ..run.clone() };
                    if let Err(e) = self.store.start_run(&self.run_record(&run, now)).await {
                        tracing::warn!(error = %e, "cannot write the run's start; trying again");
                        self.held.release([run.job.id.as_str()]);
                        continue;
                    }
                    return Some(run);
                }
                Ok(None) => {}
                Err(StoreError::NotFound(_)) => {
                    let out = "not started: its job was removed while it waited";
                    let _ = self.store.end_run(&run.run_id, &self.config.node, Outcome::Lost, now, Some(out)).await;
                    return None;
                }
                Err(e) => tracing::warn!(error = %e, "cannot claim the job for a waiting run; trying again"),
            }
        }
    }

    /// Writes the row of a run asked for by hand and starts it (when a slot is free).
    async fn start_by_hand(self: &Arc<Self>, run: ClaimedRun) -> Result<(String, JoinHandle<()>), RunNowError> {
        // Its row exists before the id is answered, so the caller can look it up at once.
        if let Err(e) = self.store.start_run(&self.run_record(&run, self.clock.now())).await {
            // Not started; the claim taken in the store runs out with its lease.
            if run.holds_claim {
                self.held.release([run.job.id.as_str()]);
            }
            return Err(e.into());
        }
        let run_id = run.run_id.clone();
        let this = self.clone();
        let span =
            tracing::info_span!("run", job_id = %run.job.id, run_id = %run.run_id, trigger = run.trigger.as_str());
        let handle = self.tracker.spawn(async move { this.execute_by_hand(run).await }.instrument(span));
        Ok((run_id, handle))
    }

    /// Runs a run asked for by hand whose row is written, when a slot is free.
    async fn execute_by_hand(&self, run: ClaimedRun) {
        let lease_until = self.clock.now() + chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        let permit = self.slots.clone().acquire_owned().await;
        if permit.is_err() || self.stopping.load(Ordering::Acquire) {
            let out = "not started: its node stopped";
            let _ =
                self.store.end_run(&run.run_id, &self.config.node, Outcome::Lost, self.clock.now(), Some(out)).await;
            self.ended(&run, None);
            return;
        }
        self.run_one(run, lease_until).await;
        drop(permit);
    }

    /// Runs every fire time of `job_id` in `fires`, in order, each as a run asked for by hand
    /// with `trigger=backfill` and its id from `run_ids`: one after another (each waits for the
    /// job's claim, so for the one before it), or all at once with `overlap=allow` (as slots
    /// free). Killing one of them ends the backfill: the fire times after it are not run.
    pub fn backfill(self: &Arc<Self>, job_id: JobId, fires: Vec<(Timestamp, String)>, overlap: Option<Overlap>) {
        let this = self.clone();
        let span = tracing::info_span!("backfill", job_id = %job_id, fire_times = fires.len());
        self.tracker.spawn(
            async move {
                for (fire_time, run_id) in fires {
                    let ask = HandRun {
                        job_id: job_id.clone(),
                        trigger: RunTrigger::Backfill,
                        fire_time: Some(fire_time),
                        run_id: Some(run_id),
                        overlap: Some(overlap.unwrap_or(Overlap::BufferAll)),
                        params: None,
                    };
                    let (run_id, handle) = match this.run_by_hand(ask).await {
                        Ok(started) => started,
                        Err(e) => {
                            tracing::warn!(error = %e, "backfill stopped: a run could not start");
                            return;
                        }
                    };
                    if overlap == Some(Overlap::Allow) {
                        continue;
                    }
                    let _ = handle.await;
                    if let Ok(Some(run)) = this.store.get_run(&run_id).await
                        && run.outcome == Some(Outcome::Killed)
                    {
                        tracing::info!(run_id = %run_id, "backfill stopped: its run was killed");
                        return;
                    }
                }
            }
            .instrument(span),
        );
    }
    /// Whether the node is shutting down (it starts no more runs).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Stops a run executing on this node (`false` when it does not run here).
    pub fn stop_local(&self, run_id: &str, reason: StopReason) -> bool {
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        match local.get(run_id) {
            Some(l) => {
                l.control.stop(reason);
                true
            }
            None => false,
        }
    }

    /// The controls of the runs executing on this node whose rows are written.
    fn written_runs(&self) -> Vec<RunControl> {
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        local.values().filter(|l| l.written).map(|l| l.control.clone()).collect()
    }

    /// Writes the rows of the runs that have gone on for a look and have none yet: one statement
    /// for them all. Most runs are shorter: their row is written once, whole, with their end.
    async fn write_started(&self) {
        let unwritten: Vec<ClaimedRun> = self
            .local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|l| !l.written && l.control.age() >= RUN_LOOK_EVERY)
            .map(|l| l.run.clone())
            .collect();
        if unwritten.is_empty() {
            return;
        }
        let now = self.clock.now();
        let until = now + chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        match self.store.start_runs(&self.config.node, &unwritten, now, until).await {
            Ok(()) => {
                let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
                for run in &unwritten {
                    if let Some(l) = local.get_mut(&run.run_id) {
                        l.written = true;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, runs = unwritten.len(), "cannot write the rows of running runs"),
        }
    }

    /// Looks after this node's running runs until `cancel`: every [`RUN_LOOK_EVERY`] stores what
    /// they printed since the last look (the live tail other nodes read) and stops those a kill
    /// was asked for on any node; every third of the lease renews their rows' lease; and every
    /// few seconds ends, as `lost`, runs of any node whose lease ran out (the node died).
    pub async fn look_after_runs(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(RUN_LOOK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let renew_every = (self.config.lease / 3).max(RUN_LOOK_EVERY);
        let sweep_every = Duration::from_secs(5);
        let (mut last_renew, mut last_sweep) = (tokio::time::Instant::now(), tokio::time::Instant::now());
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.write_started().await;
            // Only runs whose row is written can be asked to be killed or read by other nodes.
            let runs = self.written_runs();
            if !runs.is_empty() {
                self.flush_output(&runs).await;
                let ids: Vec<String> = runs.iter().map(|c| c.run_id().to_owned()).collect();
                match self.store.kill_requests(&self.config.node, &ids).await {
                    Ok(ids) => {
                        for id in ids {
                            if self.stop_local(&id, StopReason::Killed) {
                                tracing::info!(run_id = %id, "kill asked for: stopping the run");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read kill requests"),
                }
                if last_renew.elapsed() >= renew_every {
                    last_renew = tokio::time::Instant::now();
                    let until = self.clock.now() + chrono::Duration::from_std(self.config.lease).unwrap_or_default();
                    if let Err(e) = self.store.renew_runs(&self.config.node, &ids, until).await {
                        tracing::warn!(error = %e, "cannot renew the leases of running runs");
                    }
                }
            }
            if last_sweep.elapsed() >= sweep_every {
                last_sweep = tokio::time::Instant::now();
                match self.store.end_lost_runs(self.clock.now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(runs = n, "runs ended as lost: their node stopped renewing them"),
                    Err(e) => tracing::debug!(error = %e, "cannot end lost runs"),
                }
            }
        }
    }

    /// Appends what `runs` (whose rows are written) printed since the last look to their stored
    /// output; a run shorter than a look has its output written once, with its end.
    async fn flush_output(&self, runs: &[RunControl]) {
        for control in runs {
            if let Some(piece) = control.unflushed()
                && let Err(e) = self.store.append_run_output(control.run_id(), &self.config.node, &piece).await
            {
                tracing::debug!(run_id = control.run_id(), error = %e, "cannot store live output");
            }
        }
    }

    /// Executes the run (or skips it as missed); the end to record, `None` when the claim was
    /// lost and nothing may be recorded.
    async fn execute(&self, run: &ClaimedRun, lease_until: Timestamp) -> Option<RunEnd> {
        let now = self.clock.now();
        let grace = misfire_grace(&run.job, &self.config);
        let scheduled = run.trigger == RunTrigger::Scheduled;
        // Late past the grace: skipped, unless the job's misfire policy runs it (`all`: each
        // runs; `once`: the latest missed one, so an earlier one gives way to it).
        let skipped = scheduled
            && run.due + grace < now
            && match run.job.policy.misfire {
                Some(Misfire::All) => false,
                Some(Misfire::Once) => self
                    .config
                    .calendars
                    .next_for_job(&run.job, self.config.tz, Some(run.fire_time), now)
                    .is_some_and(|t| t <= now),
                Some(Misfire::Skip) | None => true,
            };
        if scheduled && let Some(first_unrun) = self.replay_of(&run.job.id, run.fire_time, now) {
            tracing::info!("run skipped: the clock stepped back behind this fire time, which had run before the step");
            return Some(RunEnd {
                run: run.clone(),
                next: Some(first_unrun),
                history: None,
                output: None,
                retry: None,
                after: None,
            });
        }
        if skipped {
            let next = next_after(&run.job, &self.config, run.fire_time, now);
            self.missed.missed(now, now - run.due);
            self.metrics.runs_missed.inc();
            let ending = crate::followup::Ending { run, outcome: None, output: "", ended: now, retried: false };
            let after = self.after(&ending);
            return Some(RunEnd { run: run.clone(), next, history: None, output: None, retry: None, after });
        }
        if scheduled
            && let Some(rule) = &run.job.calendar
            && !self.config.calendars.admits(rule, run.fire_time, run.job.zone(self.config.tz))
        {
            // The calendar changed (reloaded) since this fire time was chosen.
            tracing::info!(calendar = %rule, "run skipped: its calendar no longer admits that day");
            let next = next_after(&run.job, &self.config, run.fire_time, now);
            return Some(RunEnd { run: run.clone(), next, history: None, output: None, retry: None, after: None });
        }
        let lease = chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        let mut held_until = lease_until;
        // Fencing before the start: a run that waited (queue, a stalled node) while its lease
        // ran down confirms the claim; a fresh claim needs no round trip.
        if run.holds_claim && now + lease - lease / 3 > held_until {
            match self.renew(run, now).await {
                Renewal::Held(until) => held_until = until,
                Renewal::Lost => {
                    tracing::warn!("claim lost before the run started; not running it");
                    return None;
                }
                Renewal::Unknown => {
                    tracing::warn!(
                        "cannot confirm the claim; not running now (the lease will expire and it is retried)"
                    );
                    return None;
                }
            }
        }
        // `overlap=allow`: the fire time is this node's now; the job moves on at once and lets go
        // of its claim, so the next fire time starts its run even while this one goes on.
        let detached;
        let run = if run.reschedules() && run.job.policy.overlap == Some(Overlap::Allow) {
            detached = self.let_go(run, now).await?;
            &detached
        } else {
            run
        };
        let fire_time = format_python(run.fire_time, self.config.tz);
        let control = self.control_of(run);
        let request = RunRequest {
            run_id: run.run_id.clone(),
            job_id: run.job.id.to_string(),
            job_name: run.job.name.clone(),
            cmd: run.job.cmd.clone(),
            fire_time,
            params: run.params.clone(),
        };
        // Nothing to write at the start: a run by hand has its row already, a scheduled one gets
        // it with its end or after one look (`look_after_runs`).
        let started = self.clock.now();
        tracing::debug!(cmd = %run.job.cmd, "run start");
        self.metrics
            .fire_lateness
            .observe((started - run.fire_time).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6);
        let written = matches!(run.trigger, RunTrigger::Manual | RunTrigger::Backfill);
        let local = Local { control: control.clone(), run: run.clone(), written };
        self.local.lock().unwrap_or_else(|p| p.into_inner()).insert(run.run_id.clone(), local);
        let result = self.steer(run, &request, &control, &mut held_until).await;
        self.local.lock().unwrap_or_else(|p| p.into_inner()).remove(&run.run_id);
        let Some(outcome) = result else {
            // The claim is lost: nothing is recorded for the fire time, which now belongs to
            // whoever holds the claim; the run's row says it was lost here (unless taken over).
            if let Err(e) =
                self.store.end_run(&run.run_id, &self.config.node, Outcome::Lost, self.clock.now(), None).await
            {
                tracing::debug!(error = %e, "cannot mark the run lost; it ends as lost when its lease runs out");
            }
            return None;
        };
        let ended = self.clock.now();
        let (success, outcome_kind, output) = match (control.reason(), outcome) {
            (None, Some(outcome)) => {
                let success = outcome.success();
                (success, if success { Outcome::Success } else { Outcome::Failed }, outcome.into_output())
            }
            (reason, outcome) => {
                let (kind, line) = match reason.unwrap_or(StopReason::Killed) {
                    StopReason::Killed => (Outcome::Killed, "run killed (run_kill)".to_owned()),
                    StopReason::Timeout => (
                        Outcome::Timeout,
                        format!("run stopped at its timeout of {}s", run.job.policy.timeout_secs.unwrap_or_default()),
                    ),
                    StopReason::Replaced => (
                        Outcome::Killed,
                        "run killed: the job's next fire time came, and its overlap policy (cancel_other) runs that instead"
                            .to_owned(),
                    ),
                };
                let printed = outcome.map_or_else(|| control.printed(), ExecOutcome::into_output);
                let printed = printed.trim_end_matches('\n');
                (false, kind, if printed.is_empty() { line } else { format!("{printed}\n{line}") })
            }
        };
        let whole = truncate_bytes(output, self.config.run_output_limit);
        let cost = (ended - started).num_microseconds().unwrap_or(0) as f64 / 1e6;
        tracing::debug!(success, cost, outcome = outcome_kind.as_str(), "run end");
        let history = HistoryRecord {
            id: 0,
            job_id: run.job.id.to_string(),
            job_name: run.job.name.clone(),
            cmd: run.job.cmd.clone(),
            success,
            output: truncate_chars(whole.clone(), MAX_OUTPUT_CHARS),
            cost,
            scheduler_name: self.config.node.clone(),
            created: ended,
            fire_time: Some(run.fire_time),
            run: Some(RunMeta {
                run_id: run.run_id.clone(),
                started,
                ended,
                attempt: run.attempt,
                trigger: run.trigger,
                outcome: outcome_kind,
            }),
        };
        // A scheduled run or retry that failed or timed out is tried again if the job has retries
        // left: the plan is written with the run's end, so it survives this node. One that let
        // go of the job's claim at its start (`overlap=allow`) plans it on the job's row now.
        let detached = !run.holds_claim && matches!(run.trigger, RunTrigger::Scheduled | RunTrigger::Retry);
        let mut retry = match outcome_kind {
            Outcome::Failed | Outcome::Timeout if run.reschedules() || detached => {
                run.job.policy.retry_delay(run.attempt, &run.run_id).map(|delay| RetryPlan {
                    at: ended + chrono::Duration::from_std(delay).unwrap_or_default(),
                    attempt: run.attempt + 1,
                    fire: run.rule_fire,
                })
            }
            _ => None,
        };
        let mut retry_planned = false;
        if detached && let Some(plan) = retry.take() {
            match self.store.plan_retry(&run.job.id, run.revision, plan).await {
                Ok(true) => {
                    retry_planned = true;
                    tracing::info!(attempt = plan.attempt, at = %plan.at, "run will be tried again")
                }
                Ok(false) => tracing::info!("no retry: the job fires again first, changed, or waits for a run already"),
                Err(e) => tracing::warn!(error = %e, "cannot plan the retry"),
            }
        } else if let Some(plan) = retry {
            tracing::info!(attempt = plan.attempt, at = %plan.at, "run will be tried again");
        }
        // The job goes on from the fire time of its rule (a retry's is the failed run's), by its
        // overlap policy for the fire times that came meanwhile; a retry due before its next
        // fire time comes first (one due after it gives way to that run), and before fire times
        // held back (they wait for the retry's end).
        let (regular, held) = if run.reschedules() { self.next_on_end(run, started, ended) } else { (None, None) };
        let (next, plan) = match (retry, held) {
            (Some(r), Some(_)) => (Some(r.at), Some(r)),
            (Some(r), None) => (Some(regular.map_or(r.at, |n| n.min(r.at))), Some(r)),
            (None, Some(h)) => (Some(h.at), Some(h)),
            (None, None) => (regular, None),
        };
        let retried = plan.is_some_and(|p| p.attempt > 1) || (detached && retry_planned);
        let ending = crate::followup::Ending { run, outcome: Some(outcome_kind), output: &whole, ended, retried };
        let after = self.after(&ending);
        Some(RunEnd { run: run.clone(), next, history: Some(history), output: Some(whole), retry: plan, after })
    }

    /// The job's next fire time after `run` (which started at `started` and ended at `ended`),
    /// and the fire time it holds back for the run's end, by the job's overlap policy for the
    /// fire times that came while the run went on: skipped (`skip`: the job goes on from the
    /// first fire time after the end), the latest held back (`buffer_one`, `cancel_other`), or
    /// each held back in turn (`buffer_all`; also a run that holds the claim of an `allow` job,
    /// a retry). A run kept the job busy from when it was due for as long as it took: one that
    /// started late (catching up after a failover or a stall) counts as if it had started when
    /// due, so the fire times it is late for follow the misfire policy, as do those missed
    /// before it started. A run that was itself held back, or a retry, kept the job busy since
    /// its rule's fire time.
    fn next_on_end(
        &self,
        run: &ClaimedRun,
        started: Timestamp,
        ended: Timestamp,
    ) -> (Option<Timestamp>, Option<RetryPlan>) {
        let (job, config) = (&run.job, &self.config);
        let Some(first) = next_after(job, config, run.rule_fire, ended) else { return (None, None) };
        let (busy_from, busy_until) = if run.trigger == RunTrigger::Retry || run.held_back() {
            (run.rule_fire, ended)
        } else {
            (run.due, run.due + (ended - started))
        };
        if first > busy_until || first < busy_from {
            return (Some(first), None);
        }
        // `first` and maybe more came while the run went on: step to the last of them.
        let (mut last, mut count) = (first, 1u64);
        for _ in 0..MAX_MISSED_STEPS {
            match config.calendars.next_for_job(job, config.tz, Some(last), ended) {
                Some(t) if t <= busy_until => (last, count) = (t, count + 1),
                _ => break,
            }
        }
        let hold = |fire| Some(RetryPlan { at: ended, attempt: 1, fire });
        match job.policy.overlap.unwrap_or(Overlap::Skip) {
            Overlap::Skip => {
                self.metrics.runs_overlap_skipped.inc_by(count);
                tracing::info!(
                    skipped = count,
                    "fire times skipped: they came while the job's run went on (overlap=skip)"
                );
                (next_after(job, config, last, ended), None)
            }
            Overlap::BufferOne | Overlap::CancelOther => {
                self.metrics.runs_overlap_skipped.inc_by(count - 1);
                (Some(ended), hold(last))
            }
            Overlap::BufferAll | Overlap::Allow => (Some(ended), hold(first)),
        }
    }

    /// Moves the job of `run` (an `overlap=allow` job's fire time, claimed) on to its next fire
    /// time and releases its claim before the run starts: the run, let go of the claim, is
    /// returned. `None` when the claim is no longer this node's, or the store failed (the lease
    /// then runs out and the fire time is claimed again).
    async fn let_go(&self, run: &ClaimedRun, now: Timestamp) -> Option<ClaimedRun> {
        let next = match run.trigger {
            // A retry was planned only before the job's next fire time, and the fire times
            // before it ran already: the job goes on from the first one after the retry's due.
            RunTrigger::Retry => self.config.calendars.next_for_job(&run.job, self.config.tz, None, run.due),
            _ => next_after(&run.job, &self.config, run.rule_fire, now),
        };
        if next.is_none() {
            // Its last fire time (a date job): nothing can come beside it; it keeps the claim.
            return Some(run.clone());
        }
        let end = RunEnd { run: run.clone(), next, history: None, output: None, retry: None, after: None };
        match self.store.finish_runs(&self.config.node, std::slice::from_ref(&end), now).await {
            Ok(outcomes) if outcomes.first() == Some(&FinishOutcome::Rescheduled) => {
                let held = self.held.release([run.job.id.as_str()]);
                self.metrics.claims_held.set(held as i64);
                self.finished.notify_one();
                Some(ClaimedRun { holds_claim: false, ..run.clone() })
            }
            Ok(_) => {
                tracing::info!("claim lost before the run started; not running it");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot move the job on (overlap=allow); not running now, the fire time is claimed again when its lease runs out");
                None
            }
        }
    }

    /// When a run of an `overlap=cancel_other` job holding its claim is replaced: the job's
    /// next fire time after the run's own (none for a paused job).
    fn replaced_at(&self, run: &ClaimedRun) -> Option<Timestamp> {
        if !run.holds_claim || run.job.policy.overlap != Some(Overlap::CancelOther) || run.job.next_run_time.is_none() {
            return None;
        }
        let (calendars, tz, now) = (&self.config.calendars, self.config.tz, self.clock.now());
        let after = if run.reschedules() { Some(run.rule_fire.max(now)) } else { None };
        match after {
            Some(t) => calendars.next_for_job(&run.job, tz, Some(t), now),
            None => calendars.next_for_job(&run.job, tz, None, now),
        }
    }

    /// A fresh control for `run`: its kill grace, and its environment for commands.
    fn control_of(&self, run: &ClaimedRun) -> RunControl {
        let fire_time = format_python(run.fire_time, self.config.tz);
        let kill_grace = run.job.policy.kill_grace_secs.map_or(self.config.kill_grace, Duration::from_secs);
        RunControl::new(&run.run_id, run.job.id.as_str(), &fire_time, kill_grace, self.config.run_output_limit)
    }

    /// The row of `run` starting on this node at `started`.
    fn run_record(&self, run: &ClaimedRun, started: Timestamp) -> RunRecord {
        let lease = chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        RunRecord::running(run, &self.config.node, started, started + lease)
    }

    /// Executes the run while renewing its claim, and stops it when asked to (a kill, its
    /// timeout): its commands get SIGTERM, then SIGKILL after the grace; a plugin that is not
    /// waiting on a command is dropped at once (the wasm guest interrupted, an HTTP request in
    /// flight dropped). The plugin's outcome (`None` inside when the call was dropped after a
    /// stop), or `None` when the claim was lost.
    async fn steer(
        &self,
        run: &ClaimedRun,
        request: &RunRequest,
        control: &RunControl,
        held_until: &mut Timestamp,
    ) -> Option<Option<ExecOutcome>> {
        let every = self.config.lease / 3;
        let execution = self.executor.execute_controlled(request, control);
        tokio::pin!(execution);
        let mut renewals = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let timeout = run.job.policy.timeout_secs.map(Duration::from_secs);
        let deadline = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        let stop = control.stopped();
        tokio::pin!(stop);
        let replaced_at = self.replaced_at(run);
        let clock = self.clock.clone();
        let replace = async move {
            match replaced_at {
                Some(t) => tokio::time::sleep((t - clock.now()).to_std().unwrap_or_default()).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(replace);
        loop {
            tokio::select! {
                biased;
                outcome = &mut execution => {
                    // Ended past its lease, which it could not renew meanwhile (the node was
                    // stalled): the fire time may be another node's now, so the claim is confirmed
                    // before anything is recorded.
                    if run.holds_claim && self.clock.now() >= *held_until {
                        match self.renew(run, self.clock.now()).await {
                            Renewal::Held(until) => *held_until = until,
                            Renewal::Lost | Renewal::Unknown => {
                                tracing::warn!("claim lost while the run was stalled past its lease: nothing recorded");
                                return None;
                            }
                        }
                    }
                    return Some(Some(outcome));
                }
                _ = &mut deadline, if !control.is_stopped() => control.stop(StopReason::Timeout),
                _ = &mut replace, if !control.is_stopped() => {
                    tracing::info!("the job's next fire time came: this run is replaced (overlap=cancel_other)");
                    control.stop(StopReason::Replaced);
                }
                _ = &mut stop => {
                    // A command gets its grace (and a second more to report); a guest that
                    // waits on nothing of ours is interrupted now.
                    let wait = if control.command_running() { control.kill_grace() + Duration::from_secs(1) } else { Duration::ZERO };
                    return Some(tokio::time::timeout(wait, &mut execution).await.ok());
                }
                _ = renewals.tick(), if run.holds_claim => match self.renew(run, self.clock.now()).await {
                    Renewal::Held(until) => *held_until = until,
                    Renewal::Lost => {
                        tracing::warn!("claim lost while running (taken over, or the job removed): run cancelled, nothing recorded");
                        return None;
                    }
                    Renewal::Unknown if self.clock.now() + chrono::Duration::from_std(every).unwrap_or_default() >= *held_until => {
                        tracing::warn!("claim renewals failed until the lease ran out: run cancelled, nothing recorded");
                        return None;
                    }
                    Renewal::Unknown => {}
                },
            }
        }
    }

    /// Extends this node's lease on the run's job.
    async fn renew(&self, run: &ClaimedRun, now: Timestamp) -> Renewal {
        let until = now + chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        match self.store.renew_claim(&run.job.id, &self.config.node, until).await {
            Ok(true) => Renewal::Held(until),
            Ok(false) => Renewal::Lost,
            Err(e) => {
                tracing::warn!(error = %e, "claim renewal failed");
                Renewal::Unknown
            }
        }
    }

    /// Stops accepting runs, waits up to `bound` for those in flight, then lets the recorder
    /// write what they left and stop.
    pub async fn shutdown(&self, bound: Duration) -> bool {
        self.stopping.store(true, Ordering::Release);
        self.tracker.close();
        let finished = tokio::time::timeout(bound, self.tracker.wait()).await.is_ok();
        self.ends.lock().unwrap_or_else(|p| p.into_inner()).take();
        let recorder = self.recorder.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(recorder) = recorder {
            let _ = recorder.await;
        }
        finished
    }
}

/// Writes run ends in batches (all that arrived while the previous batch was being written, up
/// to [`RECORD_BATCH`]), retrying store errors so no history row is lost.
struct Recorder {
    store: Arc<dyn JobStore>,
    clock: Arc<dyn Clock>,
    node: String,
    /// The dispatcher's held runs, let go once their ends are written.
    held: Arc<Held>,
    metrics: Arc<Metrics>,
}

impl Recorder {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<RunEnd>, finished: Arc<Notify>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        // What the recorded ends add to the run rollups (the dashboard's charts), written every
        // `ROLLUP_EVERY` off the ends' transactions.
        let mut sums = crate::store::Rollup::default();
        let mut written = tokio::time::Instant::now();
        loop {
            let pending = !(sums.0.is_empty() && sums.2.is_empty());
            let got = tokio::select! {
                n = rx.recv_many(&mut batch, RECORD_BATCH) => n,
                _ = tokio::time::sleep(ROLLUP_EVERY), if pending => {
                    self.write_rollups(&mut sums).await;
                    written = tokio::time::Instant::now();
                    continue;
                }
            };
            if got == 0 {
                break;
            }
            let mut delay = Duration::from_millis(100);
            let outcomes = loop {
                match self.store.finish_runs(&self.node, &batch, self.clock.now()).await {
                    Ok(outcomes) => break outcomes,
                    Err(e) => {
                        self.metrics.store_errors.inc();
                        tracing::error!(error = %e, runs = batch.len(), retry_in_ms = delay.as_millis() as u64, "cannot record run ends; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(10));
                    }
                }
            };
            for (end, outcome) in batch.iter().zip(outcomes) {
                let job_id = end.run.job.id.as_str();
                match outcome {
                    FinishOutcome::Rescheduled => {}
                    FinishOutcome::Superseded => {
                        tracing::info!(job_id, "job changed or removed during the run; its new schedule stands")
                    }
                    FinishOutcome::LostClaim => {
                        tracing::warn!(job_id, "claim was lost during the run; another node owns the job now")
                    }
                }
            }
            let claimed: Vec<&str> =
                batch.iter().filter(|e| e.run.holds_claim).map(|e| e.run.job.id.as_str()).collect();
            let held = self.held.release(claimed.iter().copied());
            self.held.recorded(claimed.len());
            self.metrics.claims_held.set(held as i64);
            crate::store::rollup(&mut sums, &batch, self.clock.now());
            batch.clear();
            finished.notify_one();
            if written.elapsed() >= ROLLUP_EVERY {
                self.write_rollups(&mut sums).await;
                written = tokio::time::Instant::now();
            }
        }
        self.write_rollups(&mut sums).await;
    }

    /// Writes the rollups summed since the last write (kept for the next try when the store
    /// fails: only the charts wait for them).
    async fn write_rollups(&self, sums: &mut crate::store::Rollup) {
        if sums.0.is_empty() && sums.2.is_empty() {
            return;
        }
        match self.store.add_rollups(&self.node, sums).await {
            Ok(()) => *sums = crate::store::Rollup::default(),
            Err(e) => tracing::warn!(error = %e, "cannot write the run rollups now; trying again"),
        }
    }
}

/// How often a node writes what its run ends added to the run rollups.
const ROLLUP_EVERY: Duration = Duration::from_secs(1);
