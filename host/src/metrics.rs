//! What the node measures about itself, served by `GET /metrics` in Prometheus' text format.
//! Built on the `prometheus-client` crate (the Prometheus project's Rust client, OpenMetrics
//! encoding, no global registry): one [`Metrics`] per node, passed to the parts that record.
//!
//! - `ruqi_runs_started_total{plugin}`, `ruqi_runs_finished_total{plugin,outcome}` (outcome:
//!   succeeded, failed, declared_failure, trapped, cpu_limit, timed_out, memory_limit, no_plugin, refused);
//! - `ruqi_run_duration_seconds{plugin}` and `ruqi_fire_lateness_seconds` (run start − fire time);
//! - `ruqi_runs_missed_total` (skipped as later than the misfire grace);
//! - `ruqi_runs_overlap_skipped_total` (fire times that came while a run of their job went on
//!   and that its overlap policy skipped);
//! - `ruqi_jobs_stored`, `ruqi_claims_held`, `ruqi_plugins_loaded`, `ruqi_plugin_load_failures`
//!   (gauges, read when scraped);
//! - `ruqi_store_errors_total` (scheduler passes and run records that failed and were retried);
//! - `ruqi_api_requests_total{route,stat}`;
//! - `ruqi_clock_offset_seconds` (this node's wall clock minus the database's, on a shared
//!   store; 0 alone) and `ruqi_clock_steps_total` (jumps of the node's time noticed).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a run counter or histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabel {
    /// The plugin's name.
    pub plugin: String,
}

/// Labels of a finished run.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    /// The plugin's name (`-` when no plugin serves the cmd).
    pub plugin: String,
    /// How it ended.
    pub outcome: &'static str,
}

/// Labels of an API request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// The route name as called (`job_add`, `get_jobs`, …; `other` for unknown paths).
    pub route: String,
    /// RuQi's `stat` of the answer (`OK`, `ERR`, …; `-` for non-envelope answers).
    pub stat: &'static str,
}

fn duration_histogram() -> Histogram {
    // 100 µs … ~1.6 h
    Histogram::new(exponential_buckets(0.0001, 4.0, 12))
}

/// Every metric of a node. Cheap to record into from any thread.
pub struct Metrics {
    registry: Registry,
    /// Runs started, by plugin.
    pub runs_started: Family<PluginLabel, Counter>,
    /// Runs finished, by plugin and outcome.
    pub runs_finished: Family<RunLabels, Counter>,
    /// Run duration, by plugin.
    pub run_duration: Family<PluginLabel, Histogram, fn() -> Histogram>,
    /// Run start minus fire time.
    pub fire_lateness: Histogram,
    /// Runs skipped as later than the misfire grace.
    pub runs_missed: Counter,
    /// Fire times skipped because a run of their job was going on (overlap `skip`, or those a
    /// `buffer_one`/`cancel_other` job did not keep).
    pub runs_overlap_skipped: Counter,
    /// Store calls of the scheduler and the recorder that failed (and were retried).
    pub store_errors: Counter,
    /// API requests by route and stat.
    pub api_requests: Family<ApiLabels, Counter>,
    /// Jobs in the store (set when scraped).
    pub jobs_stored: Gauge,
    /// Claims this node holds: runs claimed and not yet recorded.
    pub claims_held: Gauge,
    /// Plugins loaded (set when scraped).
    pub plugins_loaded: Gauge,
    /// Plugin files that failed to load (set when scraped).
    pub plugin_load_failures: Gauge,
    /// This node's wall clock minus the database's, in seconds, at the last reading.
    pub clock_offset: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Steps of this node's time noticed (the wall clock or, on a shared store, the database's).
    pub clock_steps: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, registered under the `ruqi_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ruqi");
        let m = Self {
            runs_started: Family::default(),
            runs_finished: Family::default(),
            run_duration: Family::new_with_constructor(duration_histogram),
            fire_lateness: duration_histogram(),
            runs_missed: Counter::default(),
            runs_overlap_skipped: Counter::default(),
            store_errors: Counter::default(),
            api_requests: Family::default(),
            jobs_stored: Gauge::default(),
            claims_held: Gauge::default(),
            plugins_loaded: Gauge::default(),
            plugin_load_failures: Gauge::default(),
            clock_offset: Gauge::default(),
            clock_steps: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("runs_started", "Runs started, by plugin", m.runs_started.clone());
        registry.register("runs_finished", "Runs finished, by plugin and outcome", m.runs_finished.clone());
        registry.register("run_duration_seconds", "Run duration, by plugin", m.run_duration.clone());
        registry.register("fire_lateness_seconds", "Run start minus fire time", m.fire_lateness.clone());
        registry.register("runs_missed", "Runs skipped as later than the misfire grace", m.runs_missed.clone());
        registry.register(
            "runs_overlap_skipped",
            "Fire times skipped because a run of their job was going on (its overlap policy)",
            m.runs_overlap_skipped.clone(),
        );
        registry.register("store_errors", "Store calls that failed and were retried", m.store_errors.clone());
        registry.register("api_requests", "API requests, by route and stat", m.api_requests.clone());
        registry.register("jobs_stored", "Jobs in the store", m.jobs_stored.clone());
        registry.register("claims_held", "Runs this node has claimed and not yet recorded", m.claims_held.clone());
        registry.register("plugins_loaded", "Plugins loaded", m.plugins_loaded.clone());
        registry.register("plugin_load_failures", "Plugin files that failed to load", m.plugin_load_failures.clone());
        registry.register(
            "clock_offset_seconds",
            "This node's wall clock minus the database's (the time the nodes agree on), at the last reading",
            m.clock_offset.clone(),
        );
        registry.register("clock_steps", "Jumps of this node's time noticed", m.clock_steps.clone());
        Self { registry, ..m }
    }

    /// Records a finished run.
    pub fn run_finished(&self, plugin: &str, outcome: &'static str, seconds: f64) {
        let plugin = plugin.to_owned();
        self.runs_finished.get_or_create(&RunLabels { plugin: plugin.clone(), outcome }).inc();
        self.run_duration.get_or_create(&PluginLabel { plugin }).observe(seconds);
    }

    /// The text exposition (`text/plain; version=0.0.4` compatible OpenMetrics text).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode metrics");
        }
        out
    }
}
