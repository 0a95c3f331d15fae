//! The interval and listing workloads. One session per store and number of stored future jobs:
//! a node on a fresh store, `stored` copies of a far-future date job written straight into the
//! store (copies of the row `job_add` wrote), N one-second interval jobs added through the
//! API, then a measured window (runs/s, lateness = run end − fire time from the history rows,
//! the node's CPU per run from `/proc`, missed runs) and the listing latencies at those row
//! counts. The peer runs the interval workload on its memory and SQLite stores.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::db::Kind;
use super::load::job_add_body;
use super::node::Node;
use super::report::{Better, Cell, Row, Unit};
use super::workloads::{Ctx, FAR, add_jobs, cell_or_abort, peer_cell, peer_on, with_node};
use super::{epoch_now, percentile, thousands};

/// RuQi's figures of one measured window.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Runs recorded with a fire time in the window, per second.
    pub runs_per_s: f64,
    /// Lateness percentiles, seconds.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Node CPU seconds per finished run in the window.
    pub cpu_per_run: Option<f64>,
    /// Due fire times in the window with no run recorded.
    pub missed: f64,
    /// The node's missed-run counter over the window.
    pub missed_counter: f64,
}

/// One listing figure: p99 latency and the `total` the route answered.
#[derive(Debug, Clone)]
pub struct Listing {
    /// What was asked.
    pub what: String,
    /// 99th percentile latency, seconds.
    pub p99: Option<f64>,
    /// `data.total`.
    pub total: u64,
}

/// What one session measured.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The window (when the interval workload is selected).
    pub window: Option<Window>,
    /// The listing figures (when the listing workload is selected).
    pub listing: Vec<Listing>,
}

async fn measure_window(
    ctx: &Ctx,
    node: &Node,
    store: &super::db::Store,
    n: usize,
    label: &str,
) -> anyhow::Result<Window> {
    let secs = ctx.opts.sizes.interval_secs;
    let from = (epoch_now() + 1.0).ceil();
    let to = from + secs as f64;
    while epoch_now() < from {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu0 = node.cpu_seconds();
    let fin0 = node.counter("ruqi_runs_finished_total").await?;
    let missed0 = node.counter("ruqi_runs_missed_total").await?;
    let (mut prev, mut prev_t) = (fin0, Instant::now());
    while epoch_now() < to {
        tokio::time::sleep(Duration::from_secs_f64((to - epoch_now()).clamp(0.0, 1.0))).await;
        let fin = node.counter("ruqi_runs_finished_total").await?;
        ctx.progress.update(&format!(
            "{label}: {:.0}/{secs} s measured, {} runs/s (due {})",
            epoch_now() - from,
            thousands(((fin - prev) / prev_t.elapsed().as_secs_f64()).round() as u64),
            thousands(n as u64)
        ));
        (prev, prev_t) = (fin, Instant::now());
    }
    let cpu1 = node.cpu_seconds();
    let fin1 = node.counter("ruqi_runs_finished_total").await?;
    ctx.progress.update(&format!("{label}: letting the window's last runs end (2 s)"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let missed1 = node.counter("ruqi_runs_missed_total").await?;
    ctx.progress.update(&format!("{label}: reading the window's history rows"));
    let rows = store.runs_between(from, to).await?;
    let mut late: Vec<f64> = rows.iter().map(|r| r.end - r.fire).collect();
    late.sort_by(f64::total_cmp);
    let finished = fin1 - fin0;
    Ok(Window {
        runs_per_s: rows.len() as f64 / secs as f64,
        p50: percentile(&late, 50.0),
        p99: percentile(&late, 99.0),
        cpu_per_run: (finished > 0.0).then(|| (cpu1 - cpu0) / finished),
        missed: (n as f64 * secs as f64 - rows.len() as f64).max(0.0),
        missed_counter: missed1 - missed0,
    })
}

async fn measure_listing(ctx: &Ctx, node: &Node, label: &str) -> anyhow::Result<Vec<Listing>> {
    let first = node.get("/ruqi/job_list?page_index=1&page_size=15").await?;
    let jobs = first["data"]["total"].as_u64().unwrap_or(0);
    let middle = (jobs / 15 / 2).max(1);
    let queries = [
        ("job_list page 1 (15 a page)".to_owned(), "/ruqi/job_list?page_index=1&page_size=15".to_owned()),
        (
            format!("job_list page {} (15 a page, the middle)", thousands(middle)),
            format!("/ruqi/job_list?page_index={middle}&page_size=15"),
        ),
        (
            "job_history_list page 1 (15 a page)".to_owned(),
            "/ruqi/job_history_list?page_index=1&page_size=15".to_owned(),
        ),
        (
            "job_history_list job_id=i0 page 1".to_owned(),
            "/ruqi/job_history_list?job_id=i0&page_index=1&page_size=15".to_owned(),
        ),
        // The dashboard's overview (run rollups, never history) and a job's run strip.
        ("stats_overview".to_owned(), "/ruqi/stats_overview".to_owned()),
        ("job_strip job_id=i0 (50 runs)".to_owned(), "/ruqi/job_strip?job_id=i0".to_owned()),
    ];
    let mut out = Vec::new();
    for (what, q) in queries {
        let mut lat = Vec::new();
        let mut total = 0;
        // at most ~20 s a query: a listing that grows with the stored rows must not stall the run
        let started = Instant::now();
        for i in 0..ctx.opts.sizes.listing_requests + 3 {
            if i > 5 && started.elapsed() > Duration::from_secs(20) {
                break;
            }
            ctx.progress.update(&format!("{label}: {what}, request {i}"));
            let t = Instant::now();
            let v = node.get(&q).await?;
            let took = t.elapsed().as_secs_f64();
            anyhow::ensure!(v["stat"] == "OK", "{q}: {}", v["stat"]);
            total = v["data"]["total"].as_u64().unwrap_or(0);
            if i >= 3 {
                lat.push(took);
            }
        }
        lat.sort_by(f64::total_cmp);
        let what = if lat.len() < ctx.opts.sizes.listing_requests {
            format!("{what} ({} requests in 20 s)", lat.len())
        } else {
            what
        };
        out.push(Listing { what, p99: percentile(&lat, 99.0), total });
    }
    Ok(out)
}

async fn session(ctx: &Ctx, kind: Kind, stored: usize) -> anyhow::Result<Session> {
    let n = ctx.opts.sizes.interval_jobs;
    let label = if stored == 0 {
        format!("interval {}", kind.short())
    } else {
        format!("interval {} +{} stored", kind.short(), thousands(stored as u64))
    };
    let tag = format!("iv_{}_{stored}", kind.short());
    with_node(ctx, kind, &tag, async |node, store, _dir| {
        if stored > 0 {
            node.call(
                "job_add",
                serde_json::json!({"job_trigger": "date", "job_id": "tmpl", "job_name": "bench",
                "cmd": "echo:bench", "rule": FAR}),
            )
            .await?;
            let t = Instant::now();
            store.copy_job("tmpl", stored, &ctx.progress, &label).await?;
            ctx.progress.note(&format!(
                "  {label}: stored {} future jobs in {:.1} s",
                thousands(stored as u64),
                t.elapsed().as_secs_f64()
            ));
        }
        add_jobs(ctx, node, n, &label, Arc::new(|i| job_add_body("interval", &format!("i{i}"), "echo:bench", "1s")))
            .await?;
        let mut s = Session::default();
        if ctx.opts.wants("interval") {
            let w = measure_window(ctx, node, store, n, &label).await?;
            ctx.progress.note(&format!(
                "  {label}: {:.0} runs/s, lateness p50 {:.1} ms p99 {:.1} ms, CPU/run {:.0} µs, missed {}",
                w.runs_per_s,
                w.p50.unwrap_or(f64::NAN) * 1e3,
                w.p99.unwrap_or(f64::NAN) * 1e3,
                w.cpu_per_run.unwrap_or(f64::NAN) * 1e6,
                w.missed
            ));
            if w.missed_counter > 0.0 {
                ctx.progress.note(&format!(
                    "  {label}: the node skipped {} runs as later than the misfire grace",
                    w.missed_counter
                ));
            }
            s.window = Some(w);
        } else {
            tokio::time::sleep(Duration::from_secs(3)).await; // some history to list
        }
        if ctx.opts.wants("listing") {
            s.listing = measure_listing(ctx, node, &label).await?;
        }
        Ok(s)
    })
    .await
}

fn window_rows(
    ctx: &mut Ctx,
    what: &str,
    w: &anyhow::Result<Option<Window>>,
    peer: &Result<serde_json::Value, Cell>,
) -> anyhow::Result<()> {
    let n = ctx.opts.sizes.interval_jobs;
    let f =
        |get: fn(&Window) -> Option<f64>| cell_or_abort(w, |w| w.as_ref().map_or(Cell::na(), |w| Cell::opt(get(w))));
    let rows = [
        (
            format!("runs/s (due {})", thousands(n as u64)),
            Unit::PerSec,
            Better::Higher,
            f(|w| Some(w.runs_per_s))?,
            "runs_per_s",
        ),
        ("lateness p50 (run end − fire time)".into(), Unit::Millis, Better::Lower, f(|w| w.p50)?, "lateness_p50_s"),
        ("lateness p99".into(), Unit::Millis, Better::Lower, f(|w| w.p99)?, "lateness_p99_s"),
        ("scheduler CPU per run".into(), Unit::Micros, Better::Lower, f(|w| w.cpu_per_run)?, "cpu_per_run_s"),
        (
            "due runs with no history row 2 s after the window".into(),
            Unit::Count,
            Better::Lower,
            f(|w| Some(w.missed))?,
            "missed",
        ),
    ];
    for (name, unit, better, ruqi, key) in rows {
        ctx.report.push(Row::new("interval", format!("{what}: {name}"), unit, better, ruqi, peer_cell(peer, key)));
    }
    Ok(())
}

/// Runs the interval and/or listing sessions (whichever are selected) on SQLite and MariaDB at
/// each stored count, then the peer's interval runs, and adds the rows.
pub async fn interval_and_listing(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (n, secs) = (ctx.opts.sizes.interval_jobs, ctx.opts.sizes.interval_secs);
    let mut sessions = Vec::new();
    for kind in [Kind::Sqlite, Kind::Mysql] {
        for stored in ctx.opts.sizes.stored.clone() {
            let s = session(ctx, kind, stored).await;
            if let Err(e) = &s {
                if e.downcast_ref::<super::node::StartError>().is_some() {
                    return Err(anyhow::anyhow!("{e:#}"));
                }
                ctx.progress.note(&format!("  interval {} +{stored}: failed: {e:#}", kind.short()));
            }
            sessions.push((kind, stored, s));
        }
    }
    let wants_interval = ctx.opts.wants("interval");
    let peer_args = |store: &str| {
        vec![
            "interval".into(),
            "--store".into(),
            store.into(),
            "--n".into(),
            n.to_string(),
            "--seconds".into(),
            secs.to_string(),
        ]
    };
    let limit = Duration::from_secs(n as u64 / 50 + secs + 300);
    let no_peer = || Err(Cell::na());
    let (peer_sqlite, peer_memory) = if wants_interval {
        let s = peer_on(ctx, "interval", "sqlite", peer_args("sqlite"), "interval sqlite", limit).await;
        let m = peer_on(ctx, "interval", "memory", peer_args("memory"), "interval memory", limit).await;
        (s, m)
    } else {
        (no_peer(), no_peer())
    };
    let jobs = format!("{} 1-s jobs, {} s", thousands(n as u64), secs);
    for (kind, stored, s) in &sessions {
        let Ok(session) = s else {
            if wants_interval {
                let failed: anyhow::Result<Option<Window>> =
                    Err(anyhow::anyhow!("{:#}", s.as_ref().err().map(|e| format!("{e:#}")).unwrap_or_default()));
                window_rows(ctx, &format!("{jobs}, {}", kind.label()), &failed, &no_peer())?;
            }
            continue;
        };
        let stored_text = if *stored == 0 { String::new() } else { format!(" +{} stored", thousands(*stored as u64)) };
        if wants_interval {
            let what = format!("{jobs}, {}{stored_text}", kind.label());
            let peer = if *kind == Kind::Sqlite && *stored == 0 { peer_sqlite.clone() } else { Err(Cell::na()) };
            window_rows(ctx, &what, &Ok(session.window.clone()), &peer)?;
            if *kind == Kind::Sqlite && *stored == 0 {
                window_rows(
                    ctx,
                    &format!("{jobs}, RuQi SQLite vs APScheduler memory store"),
                    &Ok(session.window.clone()),
                    &peer_memory,
                )?;
            }
        }
        for l in &session.listing {
            ctx.report.push(Row::new(
                "listing",
                format!("{}{stored_text}, total {}: {} p99", kind.label(), thousands(l.total), l.what),
                Unit::Millis,
                Better::Lower,
                Cell::opt(l.p99),
                Cell::Missing("n/a (no such API)".into()),
            ));
        }
    }
    if wants_interval && sessions.iter().any(|(_, stored, _)| *stored > 0) {
        ctx.report.note(
            "interval: the peer runs only at 0 stored future jobs (adding 100,000 jobs to its SQL store takes minutes)",
        );
    }
    Ok(())
}
