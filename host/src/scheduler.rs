//! The scheduler: the timing loop that turns triggers into due runs.
//!
//! One pass: claim as many due runs as the dispatcher has free slots, hand them over, then
//! ask the store for the earliest next wake-up and sleep until then, until woken (a job was
//! changed, a run ended, `scheduler_wakeup`), or — for a store shared by several nodes —
//! until the poll interval passes, so changes made through other nodes are seen.
//!
//! Beside it, [`heartbeat`] writes the node's row in the store's node list every
//! [`NODE_HEARTBEAT`] (what `scheduler_nodes` and the dashboard show); on a shared store,
//! [`follow_database_clock`] reads the database's clock every [`CLOCK_READING_EVERY`] (the time
//! the nodes agree on); and [`follow_clock_steps`] notices the node's time jumping and moves
//! interval jobs on from now after a step back.

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
/// How often a node writes that it is alive (`scheduler_nodes`).
pub const NODE_HEARTBEAT: Duration = Duration::from_secs(5);

/// After calendars changed (a reload, or a start: the files may have changed while the node was
/// down): moves the next run of every active job that names one of `names` (every job that
/// names a calendar when `None`) to the first fire time the calendar now admits, from `now` on, so a day made a holiday
/// is skipped and a day made a working day fires. Runs already due are left to the dispatcher
/// (which skips a run its calendar no longer admits).
pub async fn follow_calendars(
    store: Arc<dyn JobStore>,
    calendars: Arc<crate::calendar::Calendars>,
    clock: Arc<dyn Clock>,
    node_tz: chrono_tz::Tz,
    names: Option<Vec<String>>,
    handle: SchedulerHandle,
) {
    let now = clock.now();
    let with_calendar = crate::model::JobFilter { with_calendar: true, ..Default::default() };
    let moved = move_next_runs(store.as_ref(), &with_calendar, now, "after a calendar change", |job| {
        if !job.calendar.as_ref().is_some_and(|c| names.as_ref().is_none_or(|names| names.contains(&c.name))) {
            return None;
        }
        let stored = job.next_run_time.filter(|t| *t > now)?;
        let next = calendars.next_for_job(job, node_tz, None, now);
        (next.is_some() && next != Some(stored)).then_some(next)
    })
    .await;
    if moved > 0 {
        tracing::info!(calendars = ?names, moved, "next runs recomputed for the calendars in force");
        handle.wake();
    }
}

/// Reads every job `filter` lets through and gives each the next run `next_of` says (`None`:
/// leave it be), `why` naming the occasion in the log lines. The number of jobs moved; a store
/// that cannot list its jobs moves none (their runs are checked when due).
async fn move_next_runs(
    store: &dyn JobStore,
    filter: &crate::model::JobFilter,
    now: Timestamp,
    why: &str,
    mut next_of: impl FnMut(&crate::model::Job) -> Option<Option<Timestamp>>,
) -> usize {
    use futures_util::StreamExt as _;
    let mut rows = match store.stream_jobs(filter).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list jobs {why}; their runs are checked when due");
            return 0;
        }
    };
    let mut moves = Vec::new();
    while let Some(row) = rows.next().await {
        match row {
            Ok(job) => {
                if let Some(next) = next_of(&job) {
                    moves.push((job, next));
                }
            }
            Err(e) => tracing::debug!(error = %e, "a job row skipped {why}"),
        }
    }
    drop(rows);
    let mut moved = 0;
    for (job, next) in moves {
        let id = job.id.clone();
        match store.update_job(&crate::model::Job { next_run_time: next, updated: now, ..job }).await {
            Ok(()) => moved += 1,
            Err(e) => tracing::warn!(job_id = %id, error = %e, "cannot move the job's next run {why}"),
        }
    }
    moved
}

/// How often a node on a shared store reads the database's clock.
pub const CLOCK_READING_EVERY: Duration = Duration::from_secs(1);
/// A reading whose round trip took longer than this is not taken (its midpoint is too vague).
const CLOCK_READING_MAX_TRIP: Duration = Duration::from_millis(500);
/// How far this node's wall clock may be off the database's before the node warns (log,
/// `/readyz`, `ruqi_clock_offset_seconds`). Runs and leases follow the database's clock anyway.
pub const CLOCK_SKEW_BOUND: chrono::Duration = chrono::Duration::seconds(1);

/// Takes one reading of the database's clock into `clock`: this node's wall clock minus it;
/// `None` when the store keeps no clock or the round trip took longer than
/// [`CLOCK_READING_MAX_TRIP`] (its midpoint too vague to take).
pub async fn read_database_clock(
    store: &dyn JobStore,
    clock: &crate::clock::AgreedClock,
) -> Result<Option<chrono::Duration>, crate::store::StoreError> {
    let sent = std::time::Instant::now();
    let time = store.database_time().await?;
    let received = std::time::Instant::now();
    Ok(time.filter(|_| received - sent <= CLOCK_READING_MAX_TRIP).map(|time| clock.observe(sent, time, received)))
}

/// Reads the database's clock into `clock` every [`CLOCK_READING_EVERY`] until `cancel` fires,
/// and publishes this node's offset from it. Warns when the offset goes beyond
/// [`CLOCK_SKEW_BOUND`] (and says when it is back), and notes a step of the node's wall clock
/// (the agreed time does not move with it).
pub async fn follow_database_clock(
    store: Arc<dyn JobStore>,
    clock: Arc<crate::clock::AgreedClock>,
    metrics: Arc<crate::metrics::Metrics>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(CLOCK_READING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut skewed = false;
    let mut last: Option<chrono::Duration> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let offset = match read_database_clock(store.as_ref(), &clock).await {
            Ok(Some(offset)) => offset,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the database's clock");
                continue;
            }
        };
        let seconds = offset.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        metrics.clock_offset.set(seconds);
        if let Some(before) = last.filter(|b| (offset - *b).abs() > crate::clock::StepWatch::BOUND) {
            metrics.clock_steps.inc();
            let step = (offset - before).num_milliseconds() as f64 / 1e3;
            tracing::warn!(
                step_seconds = step,
                "this node's wall clock stepped; runs follow the database's clock, which did not"
            );
        }
        last = Some(offset);
        if offset.abs() > CLOCK_SKEW_BOUND && !skewed {
            tracing::warn!(
                offset_seconds = seconds,
                "this node's clock is off the database's by more than {} s; runs and leases follow the database's, but check the node's time service",
                CLOCK_SKEW_BOUND.num_seconds()
            );
        } else if offset.abs() <= CLOCK_SKEW_BOUND && skewed {
            tracing::info!(offset_seconds = seconds, "this node's clock agrees with the database's again");
        }
        skewed = offset.abs() > CLOCK_SKEW_BOUND;
    }
}

/// Looks at `clock` every second until `cancel` fires; when its time jumped (see
/// [`crate::clock::StepWatch`]) the scheduler is woken, and after a step back every interval
/// job whose next run lies further ahead than one interval goes on from now: its next run is
/// the first point of its grid from now, instead of a time the step put an hour away. Cron and
/// date jobs keep their next run: the fire times before it ran already. After a step forward the
/// misfire policy decides what the runs now late do, but an interval job moved on after a step
/// back does not run again the fire times it ran before it.
pub async fn follow_clock_steps(
    store: Arc<dyn JobStore>,
    calendars: Arc<crate::calendar::Calendars>,
    clock: Arc<dyn Clock>,
    node_tz: chrono_tz::Tz,
    handle: SchedulerHandle,
    dispatcher: Arc<Dispatcher>,
    cancel: CancellationToken,
) {
    let metrics = dispatcher.metrics().clone();
    let mut watch = crate::clock::StepWatch::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(step) = watch.look(clock.as_ref()) else { continue };
        metrics.clock_steps.inc();
        let seconds = step.num_milliseconds() as f64 / 1e3;
        if step > chrono::Duration::zero() {
            tracing::warn!(
                step_seconds = seconds,
                "the clock stepped forward; runs now late follow the misfire policy"
            );
        } else {
            let moved = rebase_intervals(store.as_ref(), &calendars, &dispatcher, clock.now(), node_tz).await;
            tracing::warn!(
                step_seconds = seconds,
                interval_jobs_moved = moved,
                "the clock stepped back; interval jobs go on from now"
            );
        }
        handle.wake();
    }
}

/// After a step back to `now`: moves each interval job whose next run is more than one interval
/// (and its jitter) away to the first point of its grid from `now`, and tells `dispatcher` that
/// its fire times before that next run ran already (see [`Dispatcher::hold_replays`]). The
/// number moved.
async fn rebase_intervals(
    store: &dyn JobStore,
    calendars: &crate::calendar::Calendars,
    dispatcher: &Dispatcher,
    now: Timestamp,
    node_tz: chrono_tz::Tz,
) -> usize {
    move_next_runs(store, &crate::model::JobFilter::default(), now, "after the clock stepped back", |job| {
        let crate::trigger::Trigger::Interval(interval) = &job.trigger else { return None };
        let step = chrono::Duration::seconds(interval.seconds());
        let gap = step
            + chrono::Duration::seconds(job.policy.jitter_secs.unwrap_or(0) as i64)
            + crate::clock::StepWatch::BOUND;
        let first_unrun = job.next_run_time.filter(|t| *t > now + gap)?;
        dispatcher.hold_replays(&job.id, first_unrun);
        // The grid point before the first one from now, as the "previous" fire time.
        let prev = interval.grid_point_from(now) - step;
        Some(calendars.next_for_job(job, node_tz, Some(prev), now))
    })
    .await
}

/// Writes `node`'s row every [`NODE_HEARTBEAT`] until `cancel` fires, then marks it stopped.
/// A failed write is only logged at `debug`: the scheduler's own passes report the store.
pub async fn heartbeat(store: Arc<dyn JobStore>, clock: Arc<dyn Clock>, name: String, cancel: CancellationToken) {
    let started = clock.now();
    loop {
        let now = clock.now();
        let node = crate::model::NodeSeen {
            name: name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started,
            seen: now,
            stopped: None,
        };
        if let Err(e) = store.node_seen(&node).await {
            tracing::debug!(error = %e, "cannot write this node's heartbeat");
        }
        let next = now + chrono::Duration::from_std(NODE_HEARTBEAT).unwrap_or_default();
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = clock.sleep_until(next) => {}
        }
    }
    if let Err(e) = store.node_stopped(&name, clock.now()).await {
        tracing::debug!(error = %e, "cannot mark this node stopped");
    }
}

/// Runs claimed in one statement at most.
const CLAIM_BATCH: usize = 256;

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
            let (wait, next) = match self.pass(now).await {
                Ok(Pass::Again) => continue, // a full batch: more may be due, claim again at once
                Ok(Pass::Wait(wait, next)) => {
                    backoff = Duration::from_millis(200);
                    (wait, next)
                }
                Err(e) => {
                    self.dispatcher.metrics().store_errors.inc();
                    tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "scheduler pass failed");
                    let w = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    (w, None)
                }
            };
            *self.handle.status.lock().unwrap_or_else(|p| p.into_inner()) = SchedulerStatus {
                check_time: Some(now),
                next_wakeup_time: next,
                wait_seconds: Some(wait.as_secs_f64()),
            };
            let deadline = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.handle.wake.notified() => {}
                _ = self.clock.sleep_until(deadline) => {}
            }
        }
    }

    /// One pass: claim what fits and dispatch it; then either go again at once (a full batch
    /// with room for more) or say how long to wait and the next wake-up time.
    async fn pass(&self, now: Timestamp) -> Result<Pass, crate::store::StoreError> {
        let free = self.dispatcher.free_slots().min(CLAIM_BATCH);
        if free > 0 {
            let lease_until = now + chrono::Duration::from_std(self.dispatcher.lease()).unwrap_or_default();
            let runs = self.store.claim_due(now, self.dispatcher.node(), lease_until, free as u32).await?;
            let full = runs.len() == free;
            for run in runs {
                self.dispatcher.dispatch(run, lease_until);
            }
            if full && self.dispatcher.free_slots() > 0 {
                return Ok(Pass::Again);
            }
        }
        let next = self.store.next_wakeup().await?;
        let mut wait = match next {
            None => IDLE_WAIT,
            Some(t) => (t - now).to_std().unwrap_or(Duration::ZERO),
        };
        if self.dispatcher.free_slots() == 0 {
            // Due runs wait for room: runs being recorded wake us.
            wait = wait.max(IDLE_WAIT);
        }
        if let Some(poll) = self.poll {
            wait = wait.min(poll);
        }
        Ok(Pass::Wait(wait, next))
    }
}

/// What a pass says to do next.
enum Pass {
    /// Claim again at once.
    Again,
    /// Sleep this long (or until woken); the earliest next run time seen.
    Wait(Duration, Option<Timestamp>),
}
