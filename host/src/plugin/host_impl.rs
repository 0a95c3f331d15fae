//! The host side of the WIT imports: per-run state (`RunState`), the `host` interface
//! (log, config, path-exists, run-command) and the `wasi:http` outgoing-request hook, each
//! answering only what the plugin was granted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::bindings::ruqi::executor::host::{self, CommandOutput, LogLevel};
use super::bindings::ruqi::executor::types;
use super::command;
use super::grants::Grants;
use super::runtime::{MemoryCap, bounded_line};
use super::stdio::Capture;

/// Everything one run's wasmtime `Store` carries.
pub struct RunState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) grants: Arc<Grants>,
    pub(super) workdir: Arc<PathBuf>,
    pub(super) plugin: Arc<str>,
    pub(super) job_id: String,
    /// When the guest was entered; with `host_time`, gives guest compute time.
    pub(super) started: Instant,
    /// Time spent inside host calls (a script's run time is not the guest's).
    pub(super) host_time: Duration,
    /// The memory limiter.
    pub(super) cap: MemoryCap,
    /// `wasi:http` state.
    pub(super) http: WasiHttpCtx,
    /// `wasi:http` hooks: the `hosts` grant.
    pub(super) http_hooks: GrantedHosts,
    /// The guest's stdout, as the WASI context writes it.
    pub(super) stdout: Capture,
    /// The guest's stderr.
    pub(super) stderr: Capture,
    /// The run this call executes (its stop signal, environment and live output); none for
    /// `describe` and `validate`, and for runs executed outside a node's dispatcher.
    pub(super) control: Option<crate::run::RunControl>,
}

/// The `wasi:http` hook enforcing a plugin's `hosts` grant: a request to any other origin (host
/// and port) fails with `HTTP-request-denied` before a connection is made. Every request goes
/// through it, so each hop of a redirect the plugin follows is checked again.
pub struct GrantedHosts {
    hosts: Arc<Grants>,
}

impl GrantedHosts {
    /// The hook for `grants`.
    pub(super) fn new(grants: Arc<Grants>) -> Self {
        Self { hosts: grants }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                ),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for GrantedHosts {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendFuture {
        let uri = request.uri();
        let host = uri.host().unwrap_or_default().to_owned();
        let default_port = if uri.scheme_str() == Some("https") { 443 } else { 80 };
        let port = uri.port_u16().unwrap_or(default_port);
        if !self.hosts.allows_origin(&host, port, default_port) {
            tracing::warn!(%host, port, "http request refused: origin not granted");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_hooks }
    }
}

impl RunState {
    /// Guest compute time so far.
    pub(super) fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time)
    }
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The shared types interface has no functions.
impl types::Host for RunState {}

impl host::Host for RunState {
    async fn log(&mut self, level: LogLevel, message: String) {
        let (plugin, job_id) = (&*self.plugin, self.job_id.as_str());
        // One bounded line: a plugin cannot flood the log or forge log lines.
        let message = bounded_line(&message, self.grants.output_limit);
        match level {
            LogLevel::Trace => tracing::trace!(plugin, job_id, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, job_id, "{message}"),
            LogLevel::Info => tracing::info!(plugin, job_id, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, job_id, "{message}"),
            LogLevel::Error => tracing::error!(plugin, job_id, "{message}"),
        }
    }

    async fn config(&mut self, key: String) -> Option<String> {
        match self.grants.config.get(&key) {
            Some(v) => Some(v.clone()),
            // Reserved: tells a plugin that whole lines go to a shell (RuQi 1.x's behaviour).
            None if key == "shell" => self.grants.shell.clone(),
            None => None,
        }
    }

    async fn path_exists(&mut self, path: String) -> bool {
        if self.grants.programs.is_empty() {
            return false;
        }
        let (workdir, grants) = (self.workdir.clone(), self.grants.clone());
        tokio::task::spawn_blocking(move || command::script_exists(&workdir, &grants, &path)).await.unwrap_or(false)
    }

    async fn run_command(&mut self, command_line: String) -> Result<CommandOutput, String> {
        let entered = Instant::now();
        let result =
            command::run(&self.plugin, &self.grants, &self.workdir, &command_line, self.control.as_ref()).await;
        self.host_time += entered.elapsed();
        result
    }
}
