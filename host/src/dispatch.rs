//! The dispatcher: *who* runs a claimed run, how many at once, and recording the outcome.
//!
//! Each run is a task holding one permit of a semaphore (the concurrency bound) and the
//! job's claim (a [`HeldClaim`], renewed while it runs); its end writes history and the next
//! fire time in one store call. Misfire: a run found later than the grace after its fire time
//! is skipped (logged, no history row, as in RuQi) and the job moves to its next fire time.
//!
//! Fencing: a run executes only while its claim is provably held. When a renewal finds the
//! claim gone (another node took the job over, or the job was removed), or renewals fail
//! until the lease may have run out, the run is cancelled: the plugin call is dropped (a
//! command it started is killed with its process group) and nothing is recorded for that fire
//! time, which now belongs to whoever holds the claim.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::clock::{Clock, Timestamp};
use crate::model::{ClaimedRun, HistoryRecord, JobId, MAX_OUTPUT_CHARS, truncate_chars};
use crate::plugin::{ExecOutcome, Registry, RunRequest};
use crate::store::{FinishOutcome, JobStore};
use crate::trigger::{Trigger, format_python};

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
    /// Zone for the fire time shown to plugins.
    pub tz: chrono_tz::Tz,
}

/// A running run's claim: renewed by a task this owns (aborted when it is dropped, so an early
/// return or a panic cannot leave a lease renewed for ever); [`HeldClaim::lost`] resolves when
/// the claim can no longer be proven held.
struct HeldClaim {
    renewer: tokio::task::JoinHandle<()>,
    lost: CancellationToken,
}

impl HeldClaim {
    /// Resolves when the claim is lost.
    async fn lost(&self) {
        self.lost.cancelled().await;
    }
}

impl Drop for HeldClaim {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// See the module doc.
pub struct Dispatcher {
    store: Arc<dyn JobStore>,
    executor: Arc<dyn RunExecutor>,
    clock: Arc<dyn Clock>,
    config: DispatchConfig,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
    /// Notified when a run ends (a slot is free and the job's next time is known).
    finished: Arc<Notify>,
}

/// The next fire time after `fire_time`, skipping those already later than the grace.
pub fn next_after(trigger: &Trigger, fire_time: Timestamp, now: Timestamp, grace: Duration) -> Option<Timestamp> {
    let grace = chrono::Duration::from_std(grace).unwrap_or_default();
    let next = trigger.next_fire(Some(fire_time), now)?;
    if next + grace >= now { Some(next) } else { trigger.next_fire(None, now - grace) }
}

impl Dispatcher {
    /// A dispatcher; `finished` is notified whenever a run ends.
    pub fn new(
        store: Arc<dyn JobStore>,
        executor: Arc<dyn RunExecutor>,
        clock: Arc<dyn Clock>,
        config: DispatchConfig,
        finished: Arc<Notify>,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
        Self { store, executor, clock, config, slots, tracker: TaskTracker::new(), finished }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.config.node
    }

    /// The claim lease.
    pub fn lease(&self) -> Duration {
        self.config.lease
    }

    /// Free run slots right now (the scheduler claims no more than this).
    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }

    /// Runs in flight.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Starts a claimed run in its own task.
    pub fn dispatch(self: &Arc<Self>, run: ClaimedRun) {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            // The scheduler claims only what fits; should it not, hand the claim back.
            let this = self.clone();
            self.tracker.spawn(async move {
                let now = this.clock.now();
                let _ = this.store.finish_run(&run, &this.config.node, Some(run.fire_time), None, now).await;
            });
            return;
        };
        let this = self.clone();
        let span = tracing::info_span!("run", job_id = %run.job.id, fire_time = %run.fire_time);
        self.tracker.spawn(
            async move {
                this.run_one(run).await;
                drop(permit);
                this.finished.notify_one();
            }
            .instrument(span),
        );
    }

    async fn run_one(&self, run: ClaimedRun) {
        let now = self.clock.now();
        let grace = chrono::Duration::from_std(self.config.misfire_grace).unwrap_or_default();
        if run.fire_time + grace < now {
            let next = next_after(&run.job.trigger, run.fire_time, now, self.config.misfire_grace);
            tracing::warn!(late_s = (now - run.fire_time).num_seconds(), "run missed: later than the misfire grace");
            self.finish(&run, next, None).await;
            return;
        }
        // Fencing: a node that stalled past its lease must not run what another node took over.
        let lease_until = now + chrono::Duration::from_std(self.config.lease).unwrap_or_default();
        match self.store.renew_claim(&run.job.id, &self.config.node, lease_until).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("claim lost before the run started; not running it");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot confirm the claim; not running now (the lease will expire and it is retried)");
                return;
            }
        }
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let request = RunRequest {
            run_id,
            job_id: run.job.id.to_string(),
            job_name: run.job.name.clone(),
            cmd: run.job.cmd.clone(),
            fire_time: format_python(run.fire_time, self.config.tz),
        };
        tracing::info!(cmd = %run.job.cmd, "run start");
        let claim = self.hold_claim(&run.job.id, lease_until);
        let started = self.clock.now();
        let outcome = tokio::select! {
            outcome = self.executor.execute(&request) => outcome,
            () = claim.lost() => {
                tracing::warn!("claim lost while running: run cancelled, nothing recorded for this fire time");
                return;
            }
        };
        let ended = self.clock.now();
        drop(claim);
        let success = outcome.success();
        let output = truncate_chars(outcome.into_output(), MAX_OUTPUT_CHARS);
        let cost = (ended - started).num_microseconds().unwrap_or(0) as f64 / 1e6;
        tracing::info!(success, cost, "run end");
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
        let next = next_after(&run.job.trigger, run.fire_time, ended, self.config.misfire_grace);
        self.finish(&run, next, Some(&history)).await;
    }

    /// Keeps the claim on `id` (held until `held_until`) alive while the run executes.
    fn hold_claim(&self, id: &JobId, held_until: Timestamp) -> HeldClaim {
        let (store, clock, node, lease) =
            (self.store.clone(), self.clock.clone(), self.config.node.clone(), self.config.lease);
        let (id, lost) = (id.clone(), CancellationToken::new());
        let signal = lost.clone();
        let renewer = tokio::spawn(async move {
            let every = lease / 3;
            let margin = chrono::Duration::from_std(every).unwrap_or_default();
            let mut held_until = held_until;
            loop {
                tokio::time::sleep(every).await;
                let until = clock.now() + chrono::Duration::from_std(lease).unwrap_or_default();
                match store.renew_claim(&id, &node, until).await {
                    Ok(true) => held_until = until,
                    Ok(false) => {
                        tracing::warn!(job_id = %id, "claim renewal found the claim gone (taken over or job removed)");
                        signal.cancel();
                        return;
                    }
                    Err(e) if clock.now() + margin >= held_until => {
                        tracing::warn!(job_id = %id, error = %e, "claim renewals failed until the lease ran out");
                        signal.cancel();
                        return;
                    }
                    Err(e) => tracing::warn!(job_id = %id, error = %e, "claim renewal failed; retrying"),
                }
            }
        });
        HeldClaim { renewer, lost }
    }

    /// Records the end of a run, retrying store errors so no history row is lost.
    async fn finish(&self, run: &ClaimedRun, next: Option<Timestamp>, history: Option<&HistoryRecord>) {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.store.finish_run(run, &self.config.node, next, history, self.clock.now()).await {
                Ok(FinishOutcome::Rescheduled) => return,
                Ok(FinishOutcome::Superseded) => {
                    tracing::info!("job changed or removed during the run; its new schedule stands");
                    return;
                }
                Ok(FinishOutcome::LostClaim) => {
                    tracing::warn!("claim was lost during the run; another node owns the job now");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot record run end; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Stops accepting runs and waits up to `bound` for those in flight.
    pub async fn shutdown(&self, bound: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(bound, self.tracker.wait()).await.is_ok()
    }
}
