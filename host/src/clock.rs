//! Time as a dependency: the only place the service reads the wall clock.
//!
//! Everything that needs "now" or needs to sleep until an instant takes an `Arc<dyn Clock>`.
//! `SystemClock` is the real one; `ManualClock` lets tests move time by hand.

use std::sync::{Arc, Mutex};

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
        // Sleep in slices of at most a minute so a wall-clock jump (NTP step, suspended VM)
        // is noticed within a minute instead of after the whole monotonic duration.
        loop {
            let left = deadline - Utc::now();
            let Ok(left) = left.to_std() else { return };
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(std::time::Duration::from_secs(60))).await;
        }
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
