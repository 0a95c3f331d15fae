//! Time as a dependency: the only place the service reads the wall clock.
//!
//! Everything that needs "now" or needs to sleep until an instant takes an `Arc<dyn Clock>`.
//! `SystemClock` is the node's wall clock (a node alone on its store); `AgreedClock` is the time
//! every node sharing a database agrees on: the database server's, read every second and carried
//! forward by this node's monotonic clock in between, so neither a node's skew nor a step of its
//! wall clock moves runs or leases. `ManualClock` lets tests move time by hand. [`StepWatch`]
//! notices when a clock's time jumps against the monotonic clock (an NTP step, a restored VM).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// An instant in time, always UTC inside the service; converted to the configured zone at the edges.
pub type Timestamp = DateTime<Utc>;

/// A source of the current time and a way to wait for a future instant.
#[async_trait]
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
    /// Resolves when `now() >= deadline` (or at once when it already is).
    async fn sleep_until(&self, deadline: Timestamp);
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        sleep_in_slices(self, deadline).await;
    }
}

/// The longest slice a sleeper waits before it reads its clock again: a clock whose time
/// jumps (a wall-clock step, a new reading of the database's clock) is followed within it.
const SLEEP_SLICE: std::time::Duration = std::time::Duration::from_secs(5);

/// Sleeps until `clock` says `deadline`, in slices of at most [`SLEEP_SLICE`].
async fn sleep_in_slices(clock: &dyn Clock, deadline: Timestamp) {
    loop {
        let Ok(left) = (deadline - clock.now()).to_std() else { return };
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(SLEEP_SLICE)).await;
    }
}

/// How far a reading of the database's clock may disagree with [`AgreedClock`]'s time, beyond
/// half its round trip, before the clock takes it: smaller differences are noise (the clock
/// would go back and forth by a millisecond).
const AGREED_TOLERANCE_MS: i64 = 5;

/// Time that every node sharing a database agrees on (see the module doc): the last reading of
/// the database's clock plus the monotonic time since. Until the first reading, the node's
/// wall clock.
#[derive(Debug)]
pub struct AgreedClock {
    state: Mutex<Agreed>,
}

#[derive(Debug, Clone, Copy)]
struct Agreed {
    /// A monotonic instant and the agreed time then.
    at: Instant,
    time: Timestamp,
    /// Whether the database's clock was read yet.
    read: bool,
}

impl Default for AgreedClock {
    fn default() -> Self {
        Self::new()
    }
}

impl AgreedClock {
    /// A clock on the node's wall time until its first reading.
    pub fn new() -> Self {
        Self { state: Mutex::new(Agreed { at: Instant::now(), time: Utc::now(), read: false }) }
    }

    /// Takes a reading of the database's clock: `time`, answered to a query sent at `sent` and
    /// answered at `received` (monotonic). The time then is taken as `time` plus half the round
    /// trip. Returns this node's wall clock minus the agreed time.
    pub fn observe(&self, sent: Instant, time: Timestamp, received: Instant) -> chrono::Duration {
        let half = chrono::Duration::from_std(received.saturating_duration_since(sent) / 2).unwrap_or_default();
        let read = time + half;
        let wall = Utc::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ours =
            state.time + chrono::Duration::from_std(received.saturating_duration_since(state.at)).unwrap_or_default();
        let tolerance = half + chrono::Duration::milliseconds(AGREED_TOLERANCE_MS);
        if !state.read || (read - ours).abs() > tolerance {
            *state = Agreed { at: received, time: read, read: true };
        }
        wall - read
    }
}

#[async_trait]
impl Clock for AgreedClock {
    fn now(&self) -> Timestamp {
        let state = *self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.time + chrono::Duration::from_std(state.at.elapsed()).unwrap_or_default()
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        sleep_in_slices(self, deadline).await;
    }
}

/// Notices a clock's time jumping: between two looks, its time moved by more than
/// [`StepWatch::BOUND`] more or less than the monotonic time that passed.
#[derive(Debug, Default)]
pub struct StepWatch {
    last: Option<(Timestamp, Instant)>,
}

impl StepWatch {
    /// The smallest jump taken as a step.
    pub const BOUND: chrono::Duration = chrono::Duration::seconds(1);

    /// Looks at `clock` now: the step since the last look (positive: forward), if any.
    pub fn look(&mut self, clock: &dyn Clock) -> Option<chrono::Duration> {
        let (now, at) = (clock.now(), Instant::now());
        let last = self.last.replace((now, at));
        let (then, then_at) = last?;
        let passed = chrono::Duration::from_std(at.saturating_duration_since(then_at)).unwrap_or_default();
        let step = (now - then) - passed;
        (step.abs() > Self::BOUND).then_some(step)
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
    moved: watch::Sender<Timestamp>,
}

impl ManualClock {
    /// A manual clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        let (moved, _) = watch::channel(start);
        Self { now: Arc::new(Mutex::new(start)), moved }
    }

    /// Moves the clock forward (or back) to `to`, waking every sleeper whose deadline passed.
    pub fn set(&self, to: Timestamp) {
        *self.now.lock().expect("clock lock") = to;
        self.moved.send_replace(to);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let to = self.now() + by;
        self.set(to);
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().expect("clock lock")
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        let mut rx = self.moved.subscribe();
        while self.now() < deadline {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn manual_clock_wakes_sleepers_when_advanced_past_deadline() {
        let start = Utc::now();
        let clock = ManualClock::new(start);
        let c2 = clock.clone();
        let mut sleeper = tokio::spawn(async move { c2.sleep_until(start + chrono::Duration::seconds(10)).await });
        // Tokio's own time is paused: a timeout elapses only once the sleeper has had every
        // chance to run and is still waiting, so these checks are not races.
        let hour = std::time::Duration::from_secs(3600);
        assert!(tokio::time::timeout(hour, &mut sleeper).await.is_err(), "before any move");
        clock.advance(chrono::Duration::seconds(5));
        assert!(tokio::time::timeout(hour, &mut sleeper).await.is_err(), "halfway: still asleep");
        clock.advance(chrono::Duration::seconds(5));
        tokio::time::timeout(hour, sleeper).await.expect("woken").unwrap();
    }
}
