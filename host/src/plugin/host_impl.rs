//! The host side of the WIT imports: per-run state (`RunState`), the `host` interface
//! (log, config, path-exists, run-command, redis-pipeline) and the `wasi:http` outgoing-request
//! hook, each answering only what the plugin was granted; the hook sends `http://` requests over
//! the plugin's kept-alive connections (`HttpPool`), `redis-pipeline` goes over its `RedisPool`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::bindings::ruqi::executor::host::{self, CommandOutput, LogLevel, RedisReply};
use super::bindings::ruqi::executor::types;
use super::command;
use super::grants::Grants;
use super::redis::RedisPool;
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
    /// The plugin's kept Redis connections (`redis-pipeline`).
    pub(super) redis: Arc<RedisPool>,
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
    pool: Arc<HttpPool>,
}

impl GrantedHosts {
    /// The hook for `grants`, sending `http://` requests over `pool`'s kept-alive connections.
    pub(super) fn new(grants: Arc<Grants>, pool: Arc<HttpPool>) -> Self {
        Self { hosts: grants, pool }
    }
}

/// The connections a loaded plugin keeps across its runs, each kind in a pool of its own. A
/// clone shares them.
#[derive(Clone, Default)]
pub struct Pools {
    /// `http://` connections (`wasi:http`).
    pub http: Arc<HttpPool>,
    /// Redis connections (`redis-pipeline`).
    pub redis: Arc<RedisPool>,
}

/// How long an idle kept-alive connection stays open.
const POOL_IDLE: Duration = Duration::from_secs(60);
/// Most idle connections kept per origin.
const POOL_IDLE_PER_ORIGIN: usize = 64;
/// Time limits of a request whose plugin set none (as `wasi:http`'s defaults).
const HTTP_DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The kept-alive `http://` connections of one loaded plugin, reused across its runs (hyper's
/// pooled client). It belongs to the plugin as loaded with its grants: a reload or a grant change
/// loads it anew with an empty pool, and the old pool, dropped with the old plugin once its last
/// run ends, closes every connection it held. `https://` requests take a new connection each.
pub struct HttpPool {
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        wasmtime_wasi_http::WasiBody,
    >,
}

impl HttpPool {
    /// An empty pool.
    pub fn new() -> Self {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(HTTP_DEFAULT_TIMEOUT));
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(POOL_IDLE_PER_ORIGIN)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        Self { client }
    }

    /// Sends `request` over a kept-alive connection to its origin (a new one if none is idle),
    /// within the request's first-byte time limit, and its answer's body within the limit
    /// between bytes.
    async fn send(
        &self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
    ) -> Result<http::Response<wasmtime_wasi_http::WasiBody>, wasmtime_wasi_http::Error> {
        use http_body_util::BodyExt;
        use wasmtime_wasi_http::Error;
        let connect = options.and_then(|o| o.connect_timeout).unwrap_or(HTTP_DEFAULT_TIMEOUT);
        let first_byte = options.and_then(|o| o.first_byte_timeout).unwrap_or(HTTP_DEFAULT_TIMEOUT);
        let between = options.and_then(|o| o.between_bytes_timeout).unwrap_or(HTTP_DEFAULT_TIMEOUT);
        let response = tokio::time::timeout(connect.saturating_add(first_byte), self.client.request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(|e| Error::Connect(std::io::Error::other(format!("{e:#}"))))?;
        Ok(response.map(|body| TimedBody::new(body, between).boxed_unsync()))
    }
}

impl Default for HttpPool {
    fn default() -> Self {
        Self::new()
    }
}

/// An answer's body that fails when no bytes arrive for its limit (`wasi:http`'s
/// between-bytes timeout).
struct TimedBody {
    body: hyper::body::Incoming,
    limit: Duration,
    wait: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl TimedBody {
    fn new(body: hyper::body::Incoming, limit: Duration) -> Self {
        let limit = limit.max(Duration::from_nanos(1));
        Self { body, limit, wait: Box::pin(tokio::time::sleep(limit)) }
    }
}

impl http_body::Body for TimedBody {
    type Data = bytes::Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        match std::pin::Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.limit;
                self.wait.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.wait.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(wasmtime_wasi_http::Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
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
        if uri.scheme_str() == Some("http") {
            let pool = self.pool.clone();
            return Box::new(async move {
                let res = pool.send(request, options).await?;
                Ok((res, Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>))
            });
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

    async fn redis_pipeline(&mut self, url: String, commands: Vec<Vec<Vec<u8>>>) -> Result<Vec<RedisReply>, String> {
        let entered = Instant::now();
        let result = self.redis.pipeline(&self.plugin, &self.grants, &url, commands).await;
        self.host_time += entered.elapsed();
        result
    }

    async fn redis_local_address(&mut self, url: String) -> Result<String, String> {
        let entered = Instant::now();
        let result = self.redis.local_address(&self.plugin, &self.grants, &url).await;
        self.host_time += entered.elapsed();
        result
    }
}
