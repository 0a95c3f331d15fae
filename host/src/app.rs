//! Wiring only: build the store, clock, plugin runtime, dispatcher, scheduler and router from
//! `Settings`; run until SIGTERM/SIGINT; then stop claiming, let runs finish (bounded), and
//! release this node's claims so another node can take over at once.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::calendar::Calendars;
use crate::clock::{AgreedClock, Clock, SystemClock};
use crate::config::Settings;
use crate::dispatch::{DispatchConfig, Dispatcher};
use crate::metrics::Metrics;
use crate::plugin::{Registry, Runtime};
use crate::scheduler::{Scheduler, SchedulerHandle};
use crate::store::{self, JobStore};

/// A running node, for `main` and for tests that start one in-process.
pub struct Node {
    /// The address it serves on.
    pub addr: SocketAddr,
    /// `host:port:pid`.
    pub name: String,
    /// The loaded plugins.
    pub registry: Arc<Registry>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Node {
    /// Asks the node to shut down and waits for it.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        self.task.await.context("node task panicked")?
    }

    /// Waits until the node stops (after a signal or `shutdown`).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("node task panicked")?
    }

    /// The token that stops the node.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

/// This node's name as RuQi forms it: `hostname:port:pid`.
pub fn node_name(port: u16) -> String {
    let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into());
    format!("{host}:{port}:{}", std::process::id())
}

/// Logs what adopting RuQi 1.x rows did (nothing when there were none).
pub fn log_adoption(report: &store::legacy::AdoptionReport) {
    use store::legacy::Adoption;
    let kept = report.jobs.iter().filter(|a| matches!(a, Adoption::Kept { .. })).count();
    if !report.jobs.is_empty() || report.history_rows > 0 {
        tracing::info!(
            adopted = report.jobs.len() - kept,
            kept,
            history_rows = report.history_rows,
            "RuQi 1.x rows adopted (kept rows are left as they were; see `ruqi migrate --dry-run`)"
        );
    }
}

/// Loads the plugins folder.
pub async fn load_plugins(settings: &Settings) -> anyhow::Result<Arc<Registry>> {
    let runtime = Arc::new(
        Runtime::new(settings.workdir.clone(), Some(settings.cache_dir()))?
            .with_output_limit(settings.run_output_limit),
    );
    Ok(Arc::new(Registry::open(runtime, settings.plugins.clone()).await?))
}

/// What a node is built with besides its settings: the seams tests replace.
#[derive(Clone, Default)]
pub struct Deps {
    /// The clock: `None` in production (the database's clock on a shared store, read every
    /// second, else the node's wall clock; steps watched in both cases), a `ManualClock` in
    /// tests (taken as it is).
    pub clock: Option<Arc<dyn Clock>>,
}

/// The clocks of a node: the one everything reads, and the agreed one behind it, if any.
struct Clocks {
    clock: Arc<dyn Clock>,
    agreed: Option<Arc<AgreedClock>>,
    /// Whether the node watches its time for steps (not a test's clock).
    watch_steps: bool,
}

impl Clocks {
    /// The clock `deps` names, else the one the store calls for: on a store several nodes
    /// share, the database's, read once now so the first pass already follows it.
    async fn pick(deps: Deps, settings: &Settings, store: &dyn JobStore) -> Self {
        if let Some(clock) = deps.clock {
            return Self { clock, agreed: None, watch_steps: false };
        }
        if !store::is_shared(&settings.store) {
            return Self { clock: Arc::new(SystemClock), agreed: None, watch_steps: true };
        }
        let agreed = Arc::new(AgreedClock::new());
        match crate::scheduler::read_database_clock(store, &agreed).await {
            Ok(Some(offset)) => {
                tracing::info!(
                    offset_seconds = offset.num_milliseconds() as f64 / 1e3,
                    "runs and leases follow the database's clock (this node's offset from it)"
                );
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the database's clock yet; the node's own until it can"),
        }
        Self { clock: agreed.clone(), agreed: Some(agreed), watch_steps: true }
    }
}

/// Starts a node: binds, wires everything, and serves in the background.
pub async fn start(settings: Settings) -> anyhow::Result<Node> {
    start_with(settings, Deps::default()).await
}

/// [`start`] with the given dependencies.
pub async fn start_with(settings: Settings, deps: Deps) -> anyhow::Result<Node> {
    let store: Arc<dyn JobStore> = store::open_with(&settings.store, settings.timezone, settings.migrate)
        .await
        .with_context(|| format!("cannot open store {}", store::redact_url(&settings.store)))?;
    let clocks = Clocks::pick(deps, &settings, store.as_ref()).await;
    let clock = clocks.clock.clone();
    if settings.migrate {
        let report = store.adopt_legacy(clock.now()).await.context("cannot adopt the RuQi 1.x rows of the store")?;
        log_adoption(&report);
    }
    let registry = load_plugins(&settings).await?;
    let listener =
        TcpListener::bind(settings.listen).await.with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let name = node_name(addr.port());
    if !settings.tokens.enabled() && settings.exposed() {
        tracing::warn!(%addr, "authentication is off and the API listens beyond loopback; set --tokens");
    }

    let calendars = Arc::new(Calendars::load(&settings.calendars));
    let metrics = Arc::new(Metrics::new());
    registry.set_metrics(metrics.clone());
    let handle = SchedulerHandle::default();
    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        registry.clone(),
        clock.clone(),
        DispatchConfig {
            node: name.clone(),
            concurrency: settings.concurrency,
            lease: settings.lease,
            misfire_grace: settings.misfire_grace,
            tz: settings.timezone,
            calendars: calendars.clone(),
            run_output_limit: settings.run_output_limit,
            kill_grace: settings.kill_grace,
            alerts: settings.alerts.clone(),
        },
        handle.notifier(),
        metrics.clone(),
    ));
    let scheduler =
        Scheduler::new(store.clone(), clock.clone(), dispatcher.clone(), handle.clone(), settings.poll_interval);
    let heartbeat_clock = clock.clone();
    let state = AppState {
        audit: Arc::new(api::audit::AuditWriter::start(store.clone())),
        jobs: Arc::new(api::bulk::JobWriter::start(store.clone())),
        store: store.clone(),
        clock,
        node: name.clone(),
        validator: registry.clone(),
        scheduler: handle,
        tz: settings.timezone,
        calendars: calendars.clone(),
        tokens: Arc::new(settings.tokens.clone()),
        max_body_bytes: settings.max_body_bytes,
        metrics,
        dispatcher: dispatcher.clone(),
    };
    let cancel = CancellationToken::new();
    let watcher = registry.watch(cancel.clone()).context("cannot watch the plugins folder")?;
    // Jobs naming a calendar start from it again: those of the calendars a reload changed, and
    // at start every one (the files may have changed, or gone, while the node was down).
    let follow = {
        let (store, calendars, clock, tz, handle) =
            (store.clone(), calendars.clone(), state.clock.clone(), settings.timezone, state.scheduler.clone());
        move |names: Option<Vec<String>>| {
            let (store, calendars, clock, handle) = (store.clone(), calendars.clone(), clock.clone(), handle.clone());
            tokio::spawn(crate::scheduler::follow_calendars(store, calendars, clock, tz, names, handle));
        }
    };
    follow(None);
    let calendar_watcher = calendars
        .watch(cancel.clone(), move |names| follow(Some(names)))
        .context("cannot watch the calendars folder")?;
    let node_registry = registry.clone();
    let (step_calendars, step_handle) = (calendars.clone(), state.scheduler.clone());
    let task = {
        let (cancel, name) = (cancel.clone(), name.clone());
        tokio::spawn(async move {
            let scheduler_task = tokio::spawn(scheduler.run(cancel.clone()));
            let heartbeat_task =
                tokio::spawn(crate::scheduler::heartbeat(store.clone(), heartbeat_clock, name.clone(), cancel.clone()));
            let runs_task = tokio::spawn(dispatcher.clone().look_after_runs(cancel.clone()));
            tokio::spawn(crate::followup::follow_ups(dispatcher.clone(), cancel.clone()));
            if let Some(agreed) = clocks.agreed.clone() {
                let metrics = dispatcher.metrics().clone();
                tokio::spawn(crate::scheduler::follow_database_clock(store.clone(), agreed, metrics, cancel.clone()));
            }
            if clocks.watch_steps {
                tokio::spawn(crate::scheduler::follow_clock_steps(
                    store.clone(),
                    step_calendars,
                    clocks.clock.clone(),
                    settings.timezone,
                    step_handle,
                    dispatcher.clone(),
                    cancel.clone(),
                ));
            }
            let shutdown = cancel.clone();
            // No Nagle: an answer written in pieces (a streamed listing) must not wait for the
            // client's delayed ACK (40 ms a request on loopback).
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
            });
            let app = api::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
            let served =
                axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await;
            cancel.cancel();
            scheduler_task.await.context("scheduler panicked")?;
            heartbeat_task.await.context("heartbeat panicked")?;
            runs_task.await.context("run looker panicked")?;
            watcher.await.context("plugin watcher panicked")?;
            calendar_watcher.await.context("calendar watcher panicked")?;
            if !dispatcher.shutdown(settings.shutdown_grace).await {
                tracing::warn!(running = dispatcher.running(), "shutdown grace over with runs still going");
            }
            match store.release_claims(&name).await {
                Ok(n) => tracing::info!(released = n, "claims released"),
                Err(e) => tracing::warn!(error = %e, "could not release claims; they expire with their lease"),
            }
            served.context("http server failed")
        })
    };
    tracing::info!(%addr, node = %name, store = %store::redact_url(&settings.store), plugins = %settings.plugins.display(), "RuQi listening on http://{addr}");
    Ok(Node { addr, name, registry: node_registry, cancel, task })
}

/// Runs a node until SIGTERM or SIGINT.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let node = start(settings).await?;
    let cancel = node.cancel_token();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down: no new claims, waiting for running runs");
        cancel.cancel();
    });
    node.wait().await
}
