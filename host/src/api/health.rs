//! Probes for orchestrators and load balancers: `/healthz` (the process serves HTTP) and
//! `/readyz` (the store answers and plugins are loaded, so jobs can be added and run), plain
//! text, HTTP 200 or 503, no token needed, nothing secret in them; and `/metrics` for
//! Prometheus (see `crate::metrics`).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Response, StatusCode, header};

use super::AppState;

/// How long the store may take to answer a readiness probe.
const STORE_PROBE: Duration = Duration::from_secs(2);

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// `/healthz`: the process is up.
pub fn live() -> Response<Body> {
    text(StatusCode::OK, "ok\n".into())
}

/// `/readyz`: the store answers within [`STORE_PROBE`] and at least one plugin is loaded; a
/// warning line when this node's clock is off the database's by more than
/// [`crate::scheduler::CLOCK_SKEW_BOUND`].
pub async fn ready(state: &AppState) -> Response<Body> {
    let mut problems = Vec::new();
    match tokio::time::timeout(STORE_PROBE, state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("store: {e}")),
        Err(_) => problems.push(format!("store: no answer within {}s", STORE_PROBE.as_secs())),
    }
    if let Err(e) = state.validator.ready() {
        problems.push(format!("plugins: {e}"));
    }
    // A node whose clock is off the database's still runs everything on time (it follows the
    // database's clock): ready, with a warning an operator sees.
    let offset = state.metrics.clock_offset.get();
    let warning = (offset.abs() > crate::scheduler::CLOCK_SKEW_BOUND.num_seconds() as f64).then(|| {
        format!(
            "warning: this node's clock is off the database's by {offset:+.3} s (runs follow the database's clock)\n"
        )
    });
    if problems.is_empty() {
        text(StatusCode::OK, format!("ready\n{}", warning.unwrap_or_default()))
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready\n{}\n", problems.join("\n")))
    }
}

/// `/metrics`: the node's metrics, the gauges read now (jobs stored: one `COUNT`).
pub async fn metrics(state: &AppState) -> Response<Body> {
    let m = &state.metrics;
    let page = crate::model::Page { offset: 0, limit: Some(0) };
    match tokio::time::timeout(STORE_PROBE, state.store.list_jobs(&Default::default(), page)).await {
        Ok(Ok((total, _))) => {
            m.jobs_stored.set(total as i64);
        }
        _ => {
            m.store_errors.inc();
        }
    }
    let (loaded, failed) = state.validator.counts();
    m.plugins_loaded.set(loaded as i64);
    m.plugin_load_failures.set(failed as i64);
    let mut resp = text(StatusCode::OK, m.encode());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}
