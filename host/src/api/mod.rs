//! The api: RuQi's HTTP surface. Owns the HTTP/JSON boundary; handlers turn parameters into
//! typed values once, then call the store, the plugin validator and the scheduler handle.
//!
//! Routing is RuQi's: an exact, case-sensitive path match after stripping one trailing `/`,
//! any HTTP method, the body read only for POST, and HTTP 400 for an unknown path.

mod auth;
mod envelope;
pub mod pyjson;
mod ruqi;
mod text;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, Uri};
use chrono_tz::Tz;

pub use envelope::{ApiError, Params, Reply};

use crate::clock::Clock;
use crate::scheduler::SchedulerHandle;
use crate::store::JobStore;

/// Checks a cmd at add/modify time; `Err` is the reason for `x-reason`.
#[async_trait]
pub trait CmdValidator: Send + Sync + 'static {
    /// Validates `cmd`.
    async fn validate(&self, cmd: &str) -> Result<(), String>;
}

#[async_trait]
impl CmdValidator for crate::plugin::Registry {
    async fn validate(&self, cmd: &str) -> Result<(), String> {
        crate::plugin::Registry::validate(self, cmd).await
    }
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
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
    /// Accepted bearer tokens; empty = auth off.
    pub tokens: Arc<[String]>,
}

/// The router: every request goes through [`handle`].
pub fn router(state: AppState) -> Router {
    Router::new().fallback(handle).with_state(state)
}

async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let started = Instant::now();
    let path = uri.path();
    let path = path.strip_suffix('/').unwrap_or(path);
    let Some(route) = path.strip_prefix("/ruqi/").and_then(ruqi::Route::from_name) else {
        return envelope::not_found();
    };
    if let Err(e) = auth::check(&state.tokens, &headers) {
        return envelope::respond(Err(e), started);
    }
    let post_body = (method == Method::POST).then_some(&body[..]);
    let result = match Params::parse(uri.query(), post_body) {
        Ok(params) => ruqi::call(&state, route, params).await,
        Err(e) => Err(e),
    };
    let resp = envelope::respond(result, started);
    tracing::debug!(%method, path, status = %resp.status(), "request");
    resp
}
