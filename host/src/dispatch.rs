//! The dispatcher: *who* runs a claimed run, how many at once, and recording the outcome.
//!
//! Each claimed run is a task; at most `concurrency` of them execute at once (a semaphore),
//! and the scheduler may claim a few more than that ([`Dispatcher::free_slots`]) so the next
//! runs are ready the moment a slot frees. A run's end goes to the **recorder**, one task that
//! writes the ends that arrive together in one store transaction (group commit: the history
//! rows and the jobs' next fire times) and then wakes the scheduler. Misfire: a run found later
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

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::calendar::Calendars;
use crate::clock::{Clock, Timestamp};
use crate::metrics::Metrics;
use crate::model::{ClaimedRun, HistoryRecord, Job, MAX_OUTPUT_CHARS, truncate_chars};
use crate::plugin::{ExecOutcome, Registry, RunRequest};
use crate::store::{FinishOutcome, JobStore, RunEnd};
use crate::trigger::format_python;

/// Executes a run request; the plugin registry in the service, simpler things in tests.
#[async_trait]
pub trait RunExecutor: Send + Sync + 'static {
    /// Runs it.
    async fn execute(&self, request: &RunRequest) -> ExecOutcome;
}

#[async_trait]
impl RunExecutor for Registry {
    async fn execute(&self, request: &RunRequest) -> ExecOutcome {
        Registry::execute(self, request).await
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
}

/// Run ends written in one transaction at most.
const RECORD_BATCH: usize = 512;
/// Claimed runs a node holds beyond its running ones, per slot: enough to keep the slots busy
/// between two claims, few enough to leave work to other nodes.
const QUEUE_PER_SLOT: usize = 1;

/// The jobs whose runs this node holds: claimed and not yet recorded. A job is held at most
/// once, so a claim that comes back while its run is held here (its lease ran out during a slow
/// store call) cannot start a second run of it on this node.
#[derive(Default)]
struct Held {
    jobs: Mutex<HashSet<String>>,
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
}

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

/// The job's next fire time after `fire_time` (on a day its calendar admits, in its zone),
/// skipping those already later than the misfire grace.
pub fn next_after(job: &Job, config: &DispatchConfig, fire_time: Timestamp, now: Timestamp) -> Option<Timestamp> {
    let grace = chrono::Duration::from_std(config.misfire_grace).unwrap_or_default();
    let next = config.calendars.next_for_job(job, config.tz, Some(fire_time), now)?;
    if next + grace >= now { Some(next) } else { config.calendars.next_for_job(job, config.tz, None, now - grace) }
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
        }
    }

    /// The metrics it records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.config.node
    }

    /// The claim lease.
    pub fn lease(&self) -> Duration {
        self.config.lease
    }

    /// How many more runs the scheduler may claim now: the running slots plus a small queue,
    /// less the runs already held.
    pub fn free_slots(&self) -> usize {
        let capacity = self.config.concurrency.max(1) * (1 + QUEUE_PER_SLOT);
        capacity.saturating_sub(self.held.count())
    }

    /// Runs in flight (queued or running).
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Takes a claimed run (leased until `lease_until`): it runs when a slot is free.
    pub fn dispatch(self: &Arc<Self>, run: ClaimedRun, lease_until: Timestamp) {
        let Some(held) = self.held.take(run.job.id.as_str()) else {
            // This node holds the job already (its run goes on, or its end is not recorded yet)
            // and claimed it again because the claim's lease ran out meanwhile (a slow store):
            // the new claim only renewed the old one. Never two runs of one job at once.
            tracing::debug!(job_id = %run.job.id, "claimed again while held here: not run twice");
            return;
        };
        self.metrics.claims_held.set(held as i64);
        let this = self.clone();
        let span = tracing::info_span!("run", job_id = %run.job.id, fire_time = %run.fire_time);
        self.tracker.spawn(
            async move {
                let permit = this.slots.clone().acquire_owned().await;
                if permit.is_err() || this.stopping.load(Ordering::Acquire) {
                    this.ended(run.job.id.as_str(), None); // shutting down: not started, the claim is released
                    return;
                }
                this.run_one(run, lease_until).await;
                drop(permit);
            }
            .instrument(span),
        );
    }

    /// Hands a run's end to the recorder (or, for a run that recorded nothing, just lets go of it).
    fn ended(&self, job_id: &str, end: Option<RunEnd>) {
        let sent = match (end, self.ends.lock().unwrap_or_else(|p| p.into_inner()).as_ref()) {
            (Some(end), Some(tx)) => tx.send(end).is_ok(),
            _ => false,
        };
        if !sent {
            // Nothing for the recorder: the run is no longer held once this returns.
            let held = self.held.release([job_id]);
            self.metrics.claims_held.set(held as i64);
            self.finished.notify_one();
        }
    }

    async fn run_one(&self, run: ClaimedRun, lease_until: Timestamp) {
        let end = self.execute(&run, lease_until).await;
        // The recorder lets go of the run once its end is written.
        self.ended(run.job.id.as_str(), end);
    }

    /// Executes the run (or skips it as missed); the end to record, `None` when the claim was
    /// lost and nothing may be recorded.
    async fn execute(&self, run: &ClaimedRun, lease_until: Timestamp) -> Option<RunEnd> {
        let now = self.clock.now();
        let grace = chrono::Duration::from_std(self.config.misfire_grace).unwrap_or_default();
        if run.fire_time + grace < now {
            let next = next_after(&run.job, &self.config, run.fire_time, now);
            self.missed.missed(now, now - run.fire_time);
            self.metrics.runs_missed.inc();
            return Some(RunEnd { run: run.clone(), next, history: None });
        }
        if let Some(rule) = &run.job.calendar
            && !self.config.calendars.admits(rule, run.fire_time, run.job.zone(self.config.tz))
        {
            // The calendar changed (reloaded) since this fire time was chosen.
            tracing::info!(calendar = %rule, "run skipped: its calendar no longer admits that day");
            let next = next_after(&run.job, &self.config, run.fire_time, now);
            return Some(RunEnd { run: run.clone(), next, history: None });
        }
        let lease = chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        let every = self.config.lease / 3;
        let mut held_until = lease_until;
        // Fencing before the start: a run that waited (queue, a stalled node) while its lease
        // ran down confirms the claim; a fresh claim needs no round trip.
        if now + lease - lease / 3 > held_until {
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
        let request = RunRequest {
            run_id: uuid::Uuid::new_v4().simple().to_string(),
            job_id: run.job.id.to_string(),
            job_name: run.job.name.clone(),
            cmd: run.job.cmd.clone(),
            fire_time: format_python(run.fire_time, self.config.tz),
        };
        tracing::debug!(cmd = %run.job.cmd, "run start");
        let started = self.clock.now();
        self.metrics
            .fire_lateness
            .observe((started - run.fire_time).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6);
        let execution = self.executor.execute(&request);
        tokio::pin!(execution);
        let mut renewals = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let outcome = loop {
            tokio::select! {
                biased;
                outcome = &mut execution => break outcome,
                _ = renewals.tick() => match self.renew(run, self.clock.now()).await {
                    Renewal::Held(until) => held_until = until,
                    Renewal::Lost => {
                        tracing::warn!("claim lost while running (taken over, or the job removed): run cancelled, nothing recorded");
                        return None;
                    }
                    Renewal::Unknown if self.clock.now() + chrono::Duration::from_std(every).unwrap_or_default() >= held_until => {
                        tracing::warn!("claim renewals failed until the lease ran out: run cancelled, nothing recorded");
                        return None;
                    }
                    Renewal::Unknown => {}
                },
            }
        };
        let ended = self.clock.now();
        let success = outcome.success();
        let output = truncate_chars(outcome.into_output(), MAX_OUTPUT_CHARS);
        let cost = (ended - started).num_microseconds().unwrap_or(0) as f64 / 1e6;
        tracing::debug!(success, cost, "run end");
        let history = HistoryRecord {
            id: 0,
            job_id: run.job.id.to_string(),
            job_name: run.job.name.clone(),
            cmd: run.job.cmd.clone(),
            success,
            output,
            cost,
            scheduler_name: self.config.node.clone(),
            created: ended,
            fire_time: Some(run.fire_time),
        };
        let next = next_after(&run.job, &self.config, run.fire_time, ended);
        Some(RunEnd { run: run.clone(), next, history: Some(history) })
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
        while rx.recv_many(&mut batch, RECORD_BATCH).await > 0 {
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
            let held = self.held.release(batch.iter().map(|e| e.run.job.id.as_str()));
            self.metrics.claims_held.set(held as i64);
            batch.clear();
            finished.notify_one();
        }
    }
}
