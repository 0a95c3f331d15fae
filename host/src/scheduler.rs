//! The scheduler: the timing loop that turns triggers into due runs.
//!
//! One pass: claim as many due runs as the dispatcher has free slots, hand them over, then
//! ask the store for the earliest next wake-up and sleep until then, until woken (a job was
//! changed, a run ended, `scheduler_wakeup`), or — for a store shared by several nodes —
//! until the poll interval passes, so changes made through other nodes are seen.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, Timestamp};
use crate::dispatch::Dispatcher;
use crate::store::JobStore;

/// How long RuQi waits when there are no jobs.
pub const IDLE_WAIT: Duration = Duration::from_secs(300);
/// Longest wait between passes while the store fails: a recovered database is used again
/// within this.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Runs claimed in one statement at most.
const CLAIM_BATCH: usize = 64;

/// What the last pass saw, for `scheduler_status`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SchedulerStatus {
    /// When the last pass started.
    pub check_time: Option<Timestamp>,
    /// The earliest next run time it saw.
    pub next_wakeup_time: Option<Timestamp>,
    /// How long it then slept (seconds).
    pub wait_seconds: Option<f64>,
}

/// The handle the API uses: wake the loop, read its status.
#[derive(Debug, Clone, Default)]
pub struct SchedulerHandle {
    wake: Arc<Notify>,
    status: Arc<Mutex<SchedulerStatus>>,
}

impl SchedulerHandle {
    /// Makes the loop run a pass now (a pending wake-up is kept if it is busy).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The last pass's view.
    pub fn status(&self) -> SchedulerStatus {
        *self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The notifier, shared with the dispatcher so a finished run wakes the loop.
    pub fn notifier(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

/// See the module doc.
pub struct Scheduler {
    store: Arc<dyn JobStore>,
    clock: Arc<dyn Clock>,
    dispatcher: Arc<Dispatcher>,
    handle: SchedulerHandle,
    poll: Option<Duration>,
}

impl Scheduler {
    /// A scheduler; `poll` bounds each sleep (needed when other nodes share the store).
    pub fn new(
        store: Arc<dyn JobStore>,
        clock: Arc<dyn Clock>,
        dispatcher: Arc<Dispatcher>,
        handle: SchedulerHandle,
        poll: Option<Duration>,
    ) -> Self {
        Self { store, clock, dispatcher, handle, poll }
    }

    /// Runs passes until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let now = self.clock.now();
            let (wait, next, full) = match self.pass(now).await {
                Ok(v) => {
                    backoff = Duration::from_millis(200);
                    v
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "scheduler pass failed");
                    let w = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    (w, None, false)
                }
            };
            *self.handle.status.lock().unwrap_or_else(|p| p.into_inner()) = SchedulerStatus {
                check_time: Some(now),
                next_wakeup_time: next,
                wait_seconds: Some(wait.as_secs_f64()),
            };
            if full {
                continue; // more may be due: claim again at once
            }
            let deadline = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.handle.wake.notified() => {}
                _ = self.clock.sleep_until(deadline) => {}
            }
        }
    }

    /// One pass: claim and dispatch; returns how long to wait, the next wake-up time, and
    /// whether a full batch was claimed.
    async fn pass(&self, now: Timestamp) -> Result<(Duration, Option<Timestamp>, bool), crate::store::StoreError> {
        let free = self.dispatcher.free_slots().min(CLAIM_BATCH);
        let mut full = false;
        if free > 0 {
            let lease_until = now + chrono::Duration::from_std(self.dispatcher.lease()).unwrap_or_default();
            let runs = self.store.claim_due(now, self.dispatcher.node(), lease_until, free as u32).await?;
            full = runs.len() == free && free == CLAIM_BATCH;
            for run in runs {
                self.dispatcher.dispatch(run);
            }
        }
        let next = self.store.next_wakeup().await?;
        let mut wait = match next {
            None => IDLE_WAIT,
            Some(t) => (t - now).to_std().unwrap_or(Duration::ZERO),
        };
        if self.dispatcher.free_slots() == 0 {
            // Due runs wait for a slot: a finishing run wakes us.
            wait = wait.max(IDLE_WAIT);
        }
        if let Some(poll) = self.poll {
            wait = wait.min(poll);
        }
        Ok((wait, next, full))
    }
}
