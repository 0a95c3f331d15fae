//! A guest's stdout and stderr: captured per call, bounded, logged when the call ends, and
//! read back to explain a trap.
//!
//! Each stream keeps the *last* `output_limit` bytes written to it: the end of a Python
//! traceback or of a Rust panic message is what says why a call trapped. A write never fails
//! and never waits (a guest that prints a lot must not trap because of it); what falls out of
//! the window is only counted.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::runtime::bounded_line;

/// Bytes a guest may write in one `write` call (the `check-write` permit).
const WRITE_PERMIT: usize = 64 * 1024;

/// One captured stream: the WASI context holds a clone, the runtime reads it after the call.
#[derive(Clone)]
pub(super) struct Capture(Arc<Mutex<Tail>>);

struct Tail {
    limit: usize,
    /// Holds at most `2 * limit` bytes, of which the last `limit` count.
    buf: Vec<u8>,
    /// Bytes written in all.
    total: u64,
}

/// What a stream captured during one call.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Captured {
    /// The last bytes written (at most the limit), as text (invalid UTF-8 replaced).
    pub(super) text: String,
    /// Bytes written before those, not kept.
    pub(super) dropped: u64,
}

impl Capture {
    /// A stream keeping the last `limit` bytes.
    pub(super) fn new(limit: usize) -> Self {
        Self(Arc::new(Mutex::new(Tail { limit, buf: Vec::new(), total: 0 })))
    }

    fn push(&self, bytes: &[u8]) {
        let mut tail = self.0.lock().unwrap_or_else(|p| p.into_inner());
        tail.total += bytes.len() as u64;
        let limit = tail.limit;
        if bytes.len() >= limit {
            tail.buf.clear();
            tail.buf.extend_from_slice(&bytes[bytes.len() - limit..]);
            return;
        }
        tail.buf.extend_from_slice(bytes);
        if tail.buf.len() > 2 * limit {
            let excess = tail.buf.len() - limit;
            tail.buf.drain(..excess);
        }
    }

    /// Forgets what was written so far.
    pub(super) fn clear(&self) {
        let mut tail = self.0.lock().unwrap_or_else(|p| p.into_inner());
        tail.buf.clear();
        tail.total = 0;
    }

    /// What was written so far (the window of the last `limit` bytes).
    pub(super) fn captured(&self) -> Captured {
        let tail = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let kept = &tail.buf[tail.buf.len().saturating_sub(tail.limit)..];
        // The window may start inside a UTF-8 sequence: skip its continuation bytes.
        let start = kept.iter().take(3).take_while(|b| (**b & 0xC0) == 0x80).count();
        Captured {
            text: String::from_utf8_lossy(&kept[start..]).into_owned(),
            dropped: tail.total - (kept.len() - start) as u64,
        }
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Which call a capture belongs to: the fields its log events carry.
#[derive(Debug, Clone, Copy)]
pub(super) enum Call<'a> {
    /// `describe`, when the plugin is loaded.
    Describe,
    /// `validate` of a cmd at job_add/job_modify.
    Validate {
        /// the cmd
        cmd: &'a str,
    },
    /// `execute` of one run.
    Execute {
        /// the job
        job_id: &'a str,
        /// the fire time the run is for
        fire_time: &'a str,
    },
}

/// Which stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    /// stdout: logged at info.
    Stdout,
    /// stderr: logged at warn.
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// Logs what a call wrote to `stream`: one event per non-empty line, each line one bounded
/// log line (control characters escaped), info for stdout and warn for stderr, with the
/// fields `plugin`, `stream` and `job_id` + `fire_time` (a run) or `cmd` (a validate).
pub(super) fn log(plugin: &str, call: Call<'_>, stream: Stream, captured: &Captured, line_limit: usize) {
    if captured.dropped > 0 && !captured.text.is_empty() {
        emit(plugin, call, stream, &format!("[{} earlier bytes not kept (output_limit)]", captured.dropped));
    }
    for line in captured.text.lines().filter(|l| !l.trim().is_empty()) {
        emit(plugin, call, stream, &bounded_line(line, line_limit));
    }
}

fn emit(plugin: &str, call: Call<'_>, stream: Stream, line: &str) {
    let name = stream.name();
    match (call, stream) {
        (Call::Execute { job_id, fire_time }, Stream::Stdout) => {
            tracing::info!(job_id, fire_time, plugin, stream = name, "{line}");
        }
        (Call::Execute { job_id, fire_time }, Stream::Stderr) => {
            tracing::warn!(job_id, fire_time, plugin, stream = name, "{line}");
        }
        (Call::Validate { cmd }, Stream::Stdout) => {
            tracing::info!(cmd = %bounded_line(cmd, 300), plugin, stream = name, "{line}");
        }
        (Call::Validate { cmd }, Stream::Stderr) => {
            tracing::warn!(cmd = %bounded_line(cmd, 300), plugin, stream = name, "{line}");
        }
        (Call::Describe, Stream::Stdout) => tracing::info!(plugin, stream = name, "{line}"),
        (Call::Describe, Stream::Stderr) => tracing::warn!(plugin, stream = name, "{line}"),
    }
}

/// Lines guest runtimes write on their way down that say nothing about the cause: Rust's hint
/// about backtraces, and StarlingMonkey's (componentize-js) abort notice.
const NOISE: [&str; 2] = ["note: run with `RUST_BACKTRACE", "Redirecting call to abort() to mozalloc_abort"];

/// Panic messages of language runtimes that printed the real error just before panicking:
/// componentize-py prints the Python traceback, then panics with this.
const RUNTIME_WRAPPERS: [&str; 1] = ["Python function threw an unexpected exception"];

/// componentize-js's report when an export throws something other than a string (an `Error`):
/// the thrown value is lost, so a plugin that printed its own report before (the templates'
/// `reportErrors`) has the real message in the report before this one.
const JS_OBJECT_THROWN: &str = "expected a string, received [object]";

/// Drops a trailing `Stack:` block (a JavaScript error report's frames).
fn drop_stack(lines: &mut Vec<&str>) {
    let frames = lines.iter().rev().take_while(|l| l.starts_with(char::is_whitespace)).count();
    if lines.len() > frames && lines[lines.len() - frames - 1] == "Stack:" {
        lines.truncate(lines.len() - frames - 1);
    }
}

/// The part of a guest's stderr that says why it trapped, on one line (`None` when it wrote
/// nothing useful):
/// - a Rust panic: its message (the lines after `thread '…' panicked at FILE:LINE:COL:`);
///   but when the panic is a language runtime's wrapper ([`RUNTIME_WRAPPERS`]), the line the
///   runtime printed before it (a Python traceback's last line, `ValueError: …`);
/// - a JavaScript error report (`MESSAGE`, `Stack:`, indented frames): its message;
/// - anything else: the last non-empty line.
pub(super) fn cause(stderr: &str) -> Option<String> {
    let mut lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !NOISE.iter().any(|n| l.starts_with(n)))
        .collect();
    drop_stack(&mut lines);
    if lines.len() > 1 && lines.last() == Some(&JS_OBJECT_THROWN) {
        let mut before = lines[..lines.len() - 1].to_vec();
        drop_stack(&mut before);
        if before.len() < lines.len() - 1
            && let Some(message) = before.last()
        {
            return Some(message.trim().to_owned());
        }
    }
    let panic_header = |l: &&str| l.starts_with("thread '") && l.contains(" panicked at ") && l.ends_with(':');
    if let Some(at) = lines.iter().rposition(panic_header) {
        let message = lines[at + 1..].iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
        if RUNTIME_WRAPPERS.contains(&message.as_str()) && at > 0 {
            return Some(lines[at - 1].trim().to_owned());
        }
        if !message.is_empty() {
            return Some(message);
        }
    }
    lines.last().map(|l| l.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_keeps_the_last_bytes_and_counts_the_rest() {
        let c = Capture::new(8);
        c.push(b"hello ");
        assert_eq!(c.captured(), Captured { text: "hello ".into(), dropped: 0 });
        c.push(b"world");
        assert_eq!(c.captured(), Captured { text: "lo world".into(), dropped: 3 });
        for _ in 0..100 {
            c.push(b"abc");
        }
        assert_eq!(c.captured(), Captured { text: "bcabcabc".into(), dropped: 303 });
        c.push(&[b'x'; 20]);
        assert_eq!(c.captured().text, "xxxxxxxx");
        // a window starting inside a character skips its rest
        let c = Capture::new(4);
        c.push("a如期".as_bytes());
        assert_eq!(c.captured(), Captured { text: "期".into(), dropped: 4 });
    }

    #[test]
    fn the_cause_of_a_trap_is_found_in_stderr() {
        let cases = [
            // Rust panic (std prints it, then aborts)
            (
                "thread '<unnamed>' panicked at src/lib.rs:48:23:\nhostile plugin panics\non purpose\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
                Some("hostile plugin panics on purpose"),
            ),
            // Python traceback
            (
                "Traceback (most recent call last):\n  File \"app.py\", line 19, in execute\n    raise ValueError(\"a bug in execute\")\nValueError: a bug in execute\n\n",
                Some("ValueError: a bug in execute"),
            ),
            // componentize-py: the traceback, then its runtime's panic
            (
                "Traceback (most recent call last):\n  File \"/0/app.py\", line 12, in validate\nValueError: a bug in validate\nthread '<unnamed>' (1) panicked at runtime/src/lib.rs:1293:29:\nPython function threw an unexpected exception\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
                Some("ValueError: a bug in validate"),
            ),
            // componentize-js: an error report, then the abort notice
            (
                "expected a string, received [undefined]\nStack:\n  _utf8AllocateAndEncode@/tmp/x/initializer.js:18:11\n  export_executor_0_1_0$execute@/tmp/x/initializer.js:392:45\n\nRedirecting call to abort() to mozalloc_abort\n",
                Some("expected a string, received [undefined]"),
            ),
            // componentize-js after the templates' own report of a thrown Error
            (
                "Error: a bug in execute\nStack:\n  execute@plugin.js:40:11\nexpected a string, received [object]\nStack:\n  _utf8AllocateAndEncode@/tmp/x/initializer.js:18:11\n\nRedirecting call to abort() to mozalloc_abort\n",
                Some("Error: a bug in execute"),
            ),
            // … and without it: the wrapper is all there is
            (
                "expected a string, received [object]\nStack:\n  f@x.js:1:1\n",
                Some("expected a string, received [object]"),
            ),
            ("a line\n  indented, no Stack: header\n", Some("indented, no Stack: header")),
            ("", None),
            ("\n  \n", None),
        ];
        for (stderr, want) in cases {
            assert_eq!(cause(stderr).as_deref(), want, "{stderr:?}");
        }
    }
}
