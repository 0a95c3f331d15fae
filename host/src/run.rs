//! A run in flight, as the node that executes it steers it: the signal that stops it (a kill
//! or its job's timeout), how long a stopped command gets between SIGTERM and SIGKILL, the
//! environment a command learns its run from, and its output as it is printed (the live tail
//! the dispatcher appends to the run's row). Plain shared state: no IO here.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Why a run was stopped before it ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `run_kill`.
    Killed,
    /// The job's `timeout` passed.
    Timeout,
    /// A fire time of its job came and the job's overlap policy (`cancel_other`) replaces the
    /// running run with the new one.
    Replaced,
}

/// See the module doc. Cheap to clone; every clone steers the same run.
#[derive(Clone)]
pub struct RunControl(Arc<Inner>);

struct Inner {
    run_id: String,
    job_id: String,
    fire_time: String,
    kill_grace: Duration,
    stop: CancellationToken,
    reason: Mutex<Option<StopReason>>,
    output: Mutex<Output>,
    commands: AtomicUsize,
    made: std::time::Instant,
}

/// The output printed so far: at most `limit` bytes are kept, and `flushed` of them are stored.
struct Output {
    limit: usize,
    bytes: Vec<u8>,
    flushed: usize,
    dropped: u64,
}

impl RunControl {
    /// The control of run `run_id` of `job_id` for `fire_time` (as shown to plugins), keeping
    /// at most `output_limit` bytes of live output.
    pub fn new(run_id: &str, job_id: &str, fire_time: &str, kill_grace: Duration, output_limit: usize) -> Self {
        Self(Arc::new(Inner {
            run_id: run_id.to_owned(),
            job_id: job_id.to_owned(),
            fire_time: fire_time.to_owned(),
            kill_grace,
            stop: CancellationToken::new(),
            reason: Mutex::new(None),
            output: Mutex::new(Output { limit: output_limit, bytes: Vec::new(), flushed: 0, dropped: 0 }),
            commands: AtomicUsize::new(0),
            made: std::time::Instant::now(),
        }))
    }

    /// How long ago the run started (its control was made).
    pub fn age(&self) -> Duration {
        self.0.made.elapsed()
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.0.run_id
    }

    /// Stops the run; the first reason given is the one that counts.
    pub fn stop(&self, reason: StopReason) {
        let mut r = self.0.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.0.stop.cancel();
    }

    /// Why the run was stopped, if it was.
    pub fn reason(&self) -> Option<StopReason> {
        *self.0.reason.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once the run is asked to stop.
    pub async fn stopped(&self) {
        self.0.stop.cancelled().await
    }

    /// Whether the run is asked to stop.
    pub fn is_stopped(&self) -> bool {
        self.0.stop.is_cancelled()
    }

    /// Time a stopped command gets between SIGTERM and SIGKILL.
    pub fn kill_grace(&self) -> Duration {
        self.0.kill_grace
    }

    /// The environment a command of this run gets: `RUQI_RUN_ID`, `RUQI_JOB_ID`, `RUQI_FIRE_TIME`.
    pub fn env(&self) -> [(&'static str, &str); 3] {
        [("RUQI_RUN_ID", &self.0.run_id), ("RUQI_JOB_ID", &self.0.job_id), ("RUQI_FIRE_TIME", &self.0.fire_time)]
    }

    /// Adds what a command printed to the live output (past the limit it is only counted).
    pub fn append(&self, bytes: &[u8]) {
        let mut out = self.0.output.lock().unwrap_or_else(|p| p.into_inner());
        let room = out.limit.saturating_sub(out.bytes.len());
        let kept = bytes.len().min(room);
        out.bytes.extend_from_slice(&bytes[..kept]);
        out.dropped += (bytes.len() - kept) as u64;
    }

    /// The output printed since the last call (to append to the stored output), if any.
    pub fn unflushed(&self) -> Option<Vec<u8>> {
        let mut out = self.0.output.lock().unwrap_or_else(|p| p.into_inner());
        if out.flushed == out.bytes.len() {
            return None;
        }
        let piece = out.bytes[out.flushed..].to_vec();
        out.flushed = out.bytes.len();
        Some(piece)
    }

    /// Everything printed so far (as text), for a run that ends without an output of its own.
    pub fn printed(&self) -> String {
        let out = self.0.output.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&out.bytes).into_owned()
    }

    /// Marks a command of the run as running until the guard is dropped.
    pub fn command_started(&self) -> CommandGuard {
        self.0.commands.fetch_add(1, Ordering::AcqRel);
        CommandGuard(self.clone())
    }

    /// Whether a command of the run is running (a stop then waits for it to exit, up to the grace).
    pub fn command_running(&self) -> bool {
        self.0.commands.load(Ordering::Acquire) > 0
    }
}

/// See [`RunControl::command_started`].
pub struct CommandGuard(RunControl);

impl Drop for CommandGuard {
    fn drop(&mut self) {
        self.0.0.commands.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_stop_reason_counts_and_output_is_bounded_and_flushed_once() {
        let c = RunControl::new("r", "j", "2026-01-01 00:00:00", Duration::from_secs(1), 5);
        assert!(!c.is_stopped() && c.reason().is_none());
        c.stop(StopReason::Timeout);
        c.stop(StopReason::Killed);
        assert_eq!(c.reason(), Some(StopReason::Timeout));
        assert!(c.is_stopped());
        c.append(b"abc");
        assert_eq!(c.unflushed().as_deref(), Some(&b"abc"[..]));
        assert_eq!(c.unflushed(), None);
        c.append(b"defgh");
        assert_eq!(c.unflushed().as_deref(), Some(&b"de"[..]));
        assert_eq!(c.printed(), "abcde");
        let g = c.command_started();
        assert!(c.command_running());
        drop(g);
        assert!(!c.command_running());
        assert_eq!(c.env()[0], ("RUQI_RUN_ID", "r"));
    }
}
