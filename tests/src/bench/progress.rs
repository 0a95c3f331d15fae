//! The one progress line on stderr while a workload runs ("burst sqlite: 6,120/10,000 history
//! rows, 3.2 s"): rewritten in place on a terminal, otherwise printed at most every 5 s so a
//! log stays short.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where progress is shown. Cheap to clone (the peer's stderr reader holds a copy).
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Mutex<State>>,
    tty: bool,
}

struct State {
    last: Option<Instant>,
    shown: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// Progress on this process's stderr.
    pub fn new() -> Self {
        Self { inner: Arc::new(Mutex::new(State { last: None, shown: false })), tty: std::io::stderr().is_terminal() }
    }

    /// Shows `text` as the current progress.
    pub fn update(&self, text: &str) {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[K{text}");
            let _ = err.flush();
            state.shown = true;
        } else if state.last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            let _ = writeln!(err, "{text}");
            state.last = Some(Instant::now());
        }
    }

    /// A line that stays (a workload starting, a note).
    pub fn note(&self, text: &str) {
        self.clear();
        eprintln!("{text}");
    }

    /// Clears the progress line.
    pub fn clear(&self) {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if self.tty && state.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
        state.shown = false;
        state.last = None;
    }
}
