//! The api: RuQi's HTTP surface. Owns the HTTP/JSON boundary; handlers turn parameters into
//! typed values once, then call the store, the plugin validator and the scheduler handle.
//!
//! Routing is RuQi's: an exact, case-sensitive path match after stripping one trailing `/`,
//! any HTTP method, the body read only for POST, and HTTP 400 for an unknown path. The token
//! is checked before the body is read, and a body is kept only up to `max_body_bytes`: a
//! larger one is refused in RuQi's envelope once the rest has been read and dropped (within a
//! bound), so that a client still sending gets the answer. Besides RuQi's routes:
//! `/healthz` and `/readyz` for orchestrators (no token needed: they reveal nothing), and
//! `/metrics` in Prometheus' text format (behind the token, read-only ones included), and the
//! web dashboard (`dashboard.rs`): its page at `/` and its files at `/ui/<file>`, no token needed
//! to load them (the page asks for one for its API calls).

pub mod audit;
mod auth;
pub mod bulk;
mod dashboard;
mod envelope;
mod follow;
mod health;
mod listing;
pub mod openapi;
pub mod pyjson;
pub mod routes;
mod ruqi;
mod stats;
pub mod text;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, Response, header};
use chrono_tz::Tz;

pub use auth::{Access, Tokens};

use crate::metrics::ApiLabels;
pub use envelope::{ApiError, Params, Reply};

use crate::clock::Clock;
use crate::scheduler::SchedulerHandle;
use crate::store::JobStore;

/// Checks a cmd at add/modify time; `Err` is the reason for `x-reason`.
#[async_trait]
pub trait CmdValidator: Send + Sync + 'static {
    /// Validates `cmd`.
    async fn validate(&self, cmd: &str) -> Result<(), String>;
    /// Whether plugins are there to run jobs (`/readyz`); `Err` says why not.
    fn ready(&self) -> Result<(), String> {
        Ok(())
    }
    /// Plugins loaded, and plugin files that failed to load (`/metrics`).
    fn counts(&self) -> (usize, usize) {
        (0, 0)
    }
    /// Every plugin file and its state (`plugin_list`).
    fn plugins(&self) -> Vec<crate::plugin::PluginStatus> {
        Vec::new()
    }
}

#[async_trait]
impl CmdValidator for crate::plugin::Registry {
    async fn validate(&self, cmd: &str) -> Result<(), String> {
        crate::plugin::Registry::validate(self, cmd).await
    }

    fn ready(&self) -> Result<(), String> {
        if self.counts().0 == 0 { Err(format!("no plugin loaded from {}", self.dir().display())) } else { Ok(()) }
    }

    fn counts(&self) -> (usize, usize) {
        crate::plugin::Registry::counts(self)
    }

    fn plugins(&self) -> Vec<crate::plugin::PluginStatus> {
        self.statuses()
    }
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Writes the audit trail (group commit).
    pub audit: Arc<audit::AuditWriter>,
    /// Writes the jobs `job_add` adds (group commit).
    pub jobs: Arc<bulk::JobWriter>,
    /// The store.
    pub store: Arc<dyn JobStore>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Validates cmds (the plugin registry).
    pub validator: Arc<dyn CmdValidator>,
    /// Wakes the scheduler and reads its status.
    pub scheduler: SchedulerHandle,
    /// Zone rules are read in and times printed in.
    pub tz: Tz,
    /// The calendars jobs may name.
    pub calendars: Arc<crate::calendar::Calendars>,
    /// Accepted bearer tokens; none = auth off.
    pub tokens: Arc<Tokens>,
    /// Largest request body read, in bytes.
    pub max_body_bytes: usize,
    /// The node's metrics (`/metrics`; requests are counted here).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// This node's name (`host:port:pid`).
    pub node: String,
    /// This node's dispatcher: runs started by hand, and kills of runs executing here.
    pub dispatcher: Arc<crate::dispatch::Dispatcher>,
}

/// The router: every request goes through [`handle`].
pub fn router(state: AppState) -> Router {
    Router::new().fallback(handle).with_state(state)
}

async fn handle(State(state): State<AppState>, request: Request) -> Response<Body> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let path = path.strip_suffix('/').unwrap_or(path);
    let Some(route) = path.strip_prefix("/ruqi/").and_then(ruqi::Route::from_name) else {
        return match path {
            "/healthz" => health::live(),
            "/readyz" => health::ready(&state).await,
            "/openapi.json" => openapi::response(),
            "/metrics" => match auth::check(&state.tokens, &parts.headers) {
                Ok(_) => health::metrics(&state).await,
                Err(e) => envelope::respond(Err(e), started),
            },
            _ if let Some(page) = dashboard::response(path, &parts.headers) => page,
            _ => {
                state.metrics.api_requests.get_or_create(&ApiLabels { route: "other".into(), stat: "-" }).inc();
                envelope::not_found()
            }
        };
    };
    let result = match auth::check(&state.tokens, &parts.headers) {
        Ok(Access::ReadOnly) if !route.is_read_only() => Err(ApiError::Forbidden(format!(
            "this token is read-only; {} changes jobs or the scheduler",
            path.trim_start_matches("/ruqi/")
        ))),
        Ok(_) => match read_body(&parts, body, state.max_body_bytes).await {
            Ok(post_body) => match Params::parse(parts.uri.query(), list_body(route, post_body).as_deref()) {
                Ok(params) => {
                    let caller = audit::Caller {
                        name: state.tokens.caller(&parts.headers),
                        peer: parts
                            .extensions
                            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string()),
                    };
                    ruqi::call(&state, route, params, &caller).await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let stat = match &result {
        Ok(_) => "OK",
        Err(e) => e.stat(),
    };
    let name = path.trim_start_matches("/ruqi/").to_owned();
    state.metrics.api_requests.get_or_create(&ApiLabels { route: name, stat }).inc();
    let resp = envelope::respond(result, started);
    tracing::debug!(method = %parts.method, path, status = %resp.status(), "request");
    resp
}

/// A `job_add_many` body that is the list itself, as the object `{"jobs": …}` the envelope reads.
fn list_body(route: ruqi::Route, body: Option<axum::body::Bytes>) -> Option<axum::body::Bytes> {
    match body {
        Some(b) if route == ruqi::Route::JobAddMany && b.trim_ascii_start().starts_with(b"[") => {
            let mut wrapped = Vec::with_capacity(b.len() + 10);
            wrapped.extend_from_slice(b"{\"jobs\":");
            wrapped.extend_from_slice(&b);
            wrapped.push(b'}');
            Some(wrapped.into())
        }
        other => other,
    }
}

/// The body of a POST (RuQi reads no other), at most `limit` bytes. A larger one is refused,
/// but only after reading (and dropping) the rest of what the client sends, up to
/// [`DRAIN_BOUND`] bytes and [`DRAIN_TIME`]: a plain client (Python's `urllib`) writes its whole
/// body before it reads the answer, and would get a broken pipe, not the reason, from a server
/// that answered and closed early. Past the bound the connection is closed after the answer.
async fn read_body(
    parts: &axum::http::request::Parts,
    body: Body,
    limit: usize,
) -> Result<Option<axum::body::Bytes>, ApiError> {
    use http_body_util::BodyExt;
    if parts.method != Method::POST {
        return Ok(None);
    }
    let too_large = || {
        ApiError::BadParams(format!(
            "Param check exception: the request body is larger than {limit} bytes (setting max-body-bytes)"
        ))
    };
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut body = body;
    if declared.is_some_and(|n| n > limit as u64) {
        drain(&mut body).await;
        return Err(too_large());
    }
    let mut kept = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::BadParams("Param check exception: the request body could not be read".into()));
        };
        if let Ok(data) = frame.into_data() {
            if kept.len() + data.len() > limit {
                drain(&mut body).await;
                return Err(too_large());
            }
            kept.extend_from_slice(&data);
        }
    }
    Ok(Some(kept.freeze()))
}

/// Most bytes of a refused body read and dropped before answering.
const DRAIN_BOUND: u64 = 64 * 1024 * 1024;
/// Longest time spent reading a refused body before answering.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads and drops what is left of `body`, up to [`DRAIN_BOUND`] bytes and [`DRAIN_TIME`].
async fn drain(body: &mut Body) {
    use http_body_util::BodyExt;
    let mut read = 0u64;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while read < DRAIN_BOUND {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len() as u64),
                _ => break,
            }
        }
    })
    .await;
}
