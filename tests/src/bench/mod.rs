//! The pieces of `make bench` (the benchmark harness): RuQi through a real `ruqi serve` process
//! and its HTTP API, APScheduler 3.x in a virtualenv as the peer, the same workloads on both,
//! one table and one JSON file of figures. `bench.rs` holds `main`, the flags and the order.

pub mod db;
pub mod galera;
pub mod interval;
pub mod load;
pub mod micro;
pub mod node;
pub mod peer;
pub mod plugins;
pub mod progress;
pub mod report;
pub mod workloads;

use std::path::PathBuf;

/// How big each workload is: the full sizes, or `--quick` ones for a run of under
/// two minutes on a debug or release binary.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Date jobs due at one second (burst).
    pub burst: usize,
    /// One-second interval jobs (interval).
    pub interval_jobs: usize,
    /// Seconds the interval workload is measured.
    pub interval_secs: u64,
    /// Future date jobs stored beside the interval jobs, one interval session each.
    pub stored: Vec<usize>,
    /// Seconds of job_add load (add).
    pub add_secs: u64,
    /// Connections of the job_add load.
    pub add_connections: usize,
    /// Script date jobs due at one second (script).
    pub script: usize,
    /// Requests per listing figure (listing).
    pub listing_requests: usize,
    /// Runs per micro figure (micro): plugin no-op runs, then http-post and baichuan runs.
    pub micro_runs: (usize, usize),
    /// Runs of each echo plugin, a second apart (plugins).
    pub plugin_runs: usize,
    /// Jobs added through `job_add_many`, and jobs per request (add).
    pub add_many: (usize, usize),
    /// Loads (one-second jobs) of the lateness plot, and the window at each, seconds.
    pub lateness_loads: Vec<usize>,
    /// The window of each load, seconds (lateness).
    pub lateness_secs: u64,
}

impl Sizes {
    /// The sizes of a full run (~10–20 minutes).
    pub fn full() -> Self {
        Self {
            burst: 10_000,
            interval_jobs: 10_000,
            interval_secs: 60,
            stored: vec![0, 100_000, 1_000_000],
            add_secs: 10,
            add_connections: 50,
            script: 1_000,
            listing_requests: 50,
            micro_runs: (5_000, 500),
            plugin_runs: 200,
            add_many: (100_000, 10_000),
            lateness_loads: vec![1_000, 2_500, 5_000, 7_500, 10_000],
            lateness_secs: 20,
        }
    }

    /// The sizes of `--quick`.
    pub fn quick() -> Self {
        Self {
            burst: 300,
            interval_jobs: 500,
            // the full run takes 10 s; 6 keeps the whole quick run under two minutes with the
            // peer's SQLite store (its adds are fsync-bound, ~50–150/s here)
            interval_secs: 6,
            stored: vec![0],
            add_secs: 2,
            add_connections: 50,
            script: 100,
            listing_requests: 50,
            micro_runs: (2_000, 200),
            plugin_runs: 12,
            add_many: (2_000, 500),
            lateness_loads: vec![100, 300],
            lateness_secs: 3,
        }
    }
}

/// What this run does, from the flags.
#[derive(Debug, Clone)]
pub struct Opts {
    /// `--quick`: small sizes.
    pub quick: bool,
    /// Without `--no-peer`: run the APScheduler side too.
    pub peer: bool,
    /// `--only`: the workloads to run (all when empty).
    pub only: Vec<String>,
    /// The `ruqi` binary (`--ruqi`, `RUQI_BENCH_BIN`, default `target/release/ruqi`).
    pub ruqi: PathBuf,
    /// The repository's root.
    pub root: PathBuf,
    /// `target/bench`: the venv, peer files and the JSON figures.
    pub out: PathBuf,
    /// The sizes.
    pub sizes: Sizes,
}

/// The workloads, in the order they run.
pub const WORKLOADS: [&str; 9] =
    ["burst", "interval", "lateness", "add", "script", "listing", "micro", "plugins", "galera"];

impl Opts {
    /// Whether `name` is selected.
    pub fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }

    /// A short tag for database and file names: `<what>_<pid>`.
    pub fn tag(&self, what: &str) -> String {
        format!("{what}_{}", std::process::id())
    }
}

/// `12345` → `12,345`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Nearest-rank percentile (0–100) of sorted values; `None` when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    Some(sorted[rank.min(sorted.len() - 1)])
}

/// Now as epoch seconds (the harness measures wall-clock instants to compare with the
/// times the schedulers record).
pub fn epoch_now() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}
