//! The host side of the WIT imports: per-run state (`RunState`), the `host` interface
//! (log, config, path-exists, run-command) and the `wasi:http` outgoing-request hook, each
//! answering only what the plugin was granted.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::bindings::ruqi::executor::host::{self, CommandOutput, LogLevel};
use super::bindings::ruqi::executor::types;
use super::grants::Grants;
use super::runtime::MemoryCap;

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
}

/// The `wasi:http` hook enforcing a plugin's `hosts` grant: a request to any other host fails
/// with `HTTP-request-denied` before a connection is made.
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
        let host = request.uri().host().unwrap_or_default().to_owned();
        if !self.hosts.allows_host(&host) {
            tracing::warn!(%host, "http request refused: host not granted");
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
        match level {
            LogLevel::Trace => tracing::trace!(plugin, job_id, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, job_id, "{message}"),
            LogLevel::Info => tracing::info!(plugin, job_id, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, job_id, "{message}"),
            LogLevel::Error => tracing::error!(plugin, job_id, "{message}"),
        }
    }

    async fn config(&mut self, key: String) -> Option<String> {
        self.grants.config.get(&key).cloned()
    }

    async fn path_exists(&mut self, path: String) -> bool {
        if self.grants.programs.is_empty() {
            return false;
        }
        tokio::fs::try_exists(self.workdir.join(path)).await.unwrap_or(false)
    }

    async fn run_command(&mut self, command_line: String) -> Result<CommandOutput, String> {
        let program = command_line.split_whitespace().next().unwrap_or_default();
        if !self.grants.allows_program(program) {
            return Err(format!("program {program:?} is not granted to plugin {}", self.plugin));
        }
        let entered = Instant::now();
        let timeout = Duration::from_secs(self.grants.command_timeout_secs);
        let result =
            run_shell(&self.grants.shell, &command_line, &self.workdir, timeout, self.grants.output_limit).await;
        self.host_time += entered.elapsed();
        result
    }
}

/// Runs `line` with `shell -c` in `workdir`, in its own process group; stdout and stderr go
/// to one pipe so their order is kept. On timeout the whole group is killed.
pub(crate) async fn run_shell(
    shell: &str,
    line: &str,
    workdir: &std::path::Path,
    timeout: Duration,
    limit: usize,
) -> Result<CommandOutput, String> {
    let (reader, writer) = nix::unistd::pipe().map_err(|e| format!("cannot create pipe: {e}"))?;
    let writer2: OwnedFd = writer.try_clone().map_err(|e| format!("cannot dup pipe: {e}"))?;
    let mut child = tokio::process::Command::new(shell)
        .arg("-c")
        .arg(line)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer2))
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {shell}: {e}"))?;
    let pgid = child.id().map(|id| nix::unistd::Pid::from_raw(id as i32));
    let mut pipe =
        tokio::net::unix::pipe::Receiver::from_owned_fd(reader).map_err(|e| format!("cannot read pipe: {e}"))?;

    let mut kept = Vec::with_capacity(limit.min(64 * 1024));
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + timeout;
    let mut status = None;
    let mut eof = false;
    let mut timed_out = false;
    // Read until EOF and exit; after the shell exits, background children that keep the pipe
    // open get a short grace, then we stop reading (they are left running, as with RuQi).
    let mut drain_until: Option<tokio::time::Instant> = None;
    while !(eof && status.is_some()) {
        let until = drain_until.map_or(deadline, |d| d.min(deadline));
        tokio::select! {
            n = pipe.read(&mut buf), if !eof => match n {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => {
                    let room = limit.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            },
            s = child.wait(), if status.is_none() => {
                status = Some(s.map_err(|e| format!("wait failed: {e}"))?);
                drain_until = Some(tokio::time::Instant::now() + Duration::from_millis(500));
            },
            _ = tokio::time::sleep_until(until) => {
                if status.is_none() {
                    timed_out = true;
                    if let Some(pgid) = pgid {
                        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                    }
                    status = Some(child.wait().await.map_err(|e| format!("wait failed: {e}"))?);
                }
                break;
            }
        }
    }
    let status = status.expect("loop ends with a status");
    let mut output = String::from_utf8_lossy(&kept).into_owned();
    let trimmed = output.trim_end_matches('\n').len();
    output.truncate(trimmed);
    if timed_out {
        output = if output.is_empty() { "exe timeout".into() } else { format!("{output}\nexe timeout") };
    }
    Ok(CommandOutput { exit_code: if timed_out { None } else { status.code() }, output, timed_out })
}
