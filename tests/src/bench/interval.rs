//! The interval and listing workloads. One session per store and number of stored future jobs:
//! a node on a fresh store, `stored` copies of a far-future date job written straight into the
//! store (copies of the row `job_add` wrote), N one-second interval jobs added through the
//! API with their fire times spread evenly over the second (`add_spread`), then a measured window (runs/s, lateness = run end − fire time from the history rows,
//! the node's CPU per run from `/proc`, missed runs) and the listing latencies at those row
//! counts. The peer runs the interval workload on its memory and SQLite stores.

use std::time::{Duration, Instant};

use super::db::Kind;
use super::load::job_add_body;
use super::node::Node;
use super::report::{Better, Cell, Row, Unit};
use super::workloads::{Ctx, FAR, cell_or_abort, peer_cell, peer_on, with_node};
use super::{epoch_now, percentile, thousands};

/// RuQi's figures of one measured window.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Runs recorded with a fire time in the window, per second.
    pub runs_per_s: f64,
    /// Lateness percentiles, seconds.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// The latest run.
    pub max: Option<f64>,
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
    /// A second node's start on the stored jobs (listing, with stored jobs).
    pub startup: Option<Startup>,
}

/// A node's start on a store holding many jobs.
#[derive(Debug, Clone, Copy)]
pub struct Startup {
    /// Seconds from its spawn to `/readyz` answering 200.
    pub ready: f64,
    /// CPU seconds it used in its first 5 seconds.
    pub cpu: f64,
    /// Its resident memory after those 5 seconds, MB.
    pub rss_mb: f64,
}

/// Starts a second node on `url` (the stored jobs are far-future dates: it runs nothing) and
/// measures its start.
async fn measure_startup(ctx: &Ctx, url: &str, dir: &super::node::NodeDir, label: &str) -> anyhow::Result<Startup> {
    ctx.progress.update(&format!("{label}: a second node starting on the stored jobs"));
    let t = Instant::now();
    let node = Node::start(&ctx.opts.ruqi, url, dir).await?;
    let ready = loop {
        let ok = node.http().get(format!("{}/readyz", node.base)).send().await.is_ok_and(|r| r.status().is_success());
        if ok {
            break t.elapsed().as_secs_f64();
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(120), "the second node was not ready within 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(t.elapsed())).await;
    let cpu = node.cpu_seconds();
    let rss_mb = std::fs::read_to_string(format!("/proc/{}/status", node.pid()))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches("kB").trim().to_owned()))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0);
    node.stop().await;
    Ok(Startup { ready, cpu, rss_mb })
}

async fn measure_window(
    ctx: &Ctx,
    node: &Node,
    store: &super::db::Store,
    n: usize,
    secs: u64,
    label: &str,
) -> anyhow::Result<Window> {
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
        p90: percentile(&late, 90.0),
        p99: percentile(&late, 99.0),
        max: late.last().copied(),
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
    let mut startup = None;
    with_node(ctx, kind, &tag, async |node, store, dir| {
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
            if ctx.opts.wants("listing") {
                let start = measure_startup(ctx, &store.url, dir, &label).await?;
                ctx.progress.note(&format!(
                    "  {label}: a node starts in {:.2} s, {:.2} s of CPU in its first 5 s, RSS {:.0} MB",
                    start.ready, start.cpu, start.rss_mb
                ));
                startup = Some(start);
            }
        }
        add_spread(ctx, node, n, "i", &label).await?;
        let mut s = Session::default();
        if ctx.opts.wants("interval") {
            let w = measure_window(ctx, node, store, n, ctx.opts.sizes.interval_secs, &label).await?;
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
        s.startup = startup;
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

/// The goal rows of a window: a p99 lateness on each store, and on SQLite the CPU per run; on
/// MariaDB also the share of due fire times run.
fn window_goals(ctx: &mut Ctx, what: &str, kind: Kind, w: &Window) {
    let n = ctx.opts.sizes.interval_jobs as f64 * ctx.opts.sizes.interval_secs as f64;
    let p99_goal = if kind == Kind::Sqlite { 0.005 } else { 0.025 };
    ctx.report.push(Row::goal(
        "interval",
        format!("{what}: lateness p99"),
        Unit::Millis,
        Better::Lower,
        Cell::opt(w.p99),
        p99_goal,
    ));
    ctx.report.push(Row::goal(
        "interval",
        format!("{what}: runs/s"),
        Unit::PerSec,
        Better::Higher,
        Cell::Value(w.runs_per_s),
        ctx.opts.sizes.interval_jobs as f64 * 0.999,
    ));
    if kind == Kind::Sqlite {
        ctx.report.push(Row::goal(
            "interval",
            format!("{what}: node CPU per run"),
            Unit::Micros,
            Better::Lower,
            Cell::opt(w.cpu_per_run),
            60e-6,
        ));
    } else if n > 0.0 {
        let run_share = ((n - w.missed) / n * 100.0).max(0.0);
        ctx.report.push(Row::goal(
            "interval",
            format!("{what}: % of due fire times run"),
            Unit::Count,
            Better::Higher,
            Cell::Value(run_share),
            99.9,
        ));
    }
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
            if let Some(w) = &session.window {
                window_goals(ctx, &what, *kind, w);
            }
            if *kind == Kind::Sqlite && *stored == 0 {
                window_rows(
                    ctx,
                    &format!("{jobs}, RuQi SQLite vs APScheduler memory store"),
                    &Ok(session.window.clone()),
                    &peer_memory,
                )?;
            }
        }
        if let Some(st) = &session.startup {
            let what = format!("{}{stored_text}: a node's start", kind.label());
            ctx.report.push(Row::goal(
                "startup",
                format!("{what}, to /readyz"),
                Unit::Secs,
                Better::Lower,
                Cell::Value(st.ready),
                5.0,
            ));
            ctx.report.push(Row::goal(
                "startup",
                format!("{what}, CPU in its first 5 s"),
                Unit::Secs,
                Better::Lower,
                Cell::Value(st.cpu),
                1.0,
            ));
            ctx.report.push(Row::goal(
                "startup",
                format!("{what}, RSS after 5 s (MB)"),
                Unit::Count,
                Better::Lower,
                Cell::opt(Some(st.rss_mb)),
                200.0,
            ));
        }
        for l in &session.listing {
            let goal = match l.what.as_str() {
                w if w.starts_with("job_list page 1 ") => Some(0.02),
                w if w.starts_with("job_list page ") && w.contains("the middle") => Some(0.05),
                _ => None,
            };
            if let (Some(goal), true) = (goal, *stored >= 1_000_000) {
                ctx.report.push(Row::goal(
                    "listing",
                    format!("{}{stored_text}: {} p99", kind.label(), l.what),
                    Unit::Millis,
                    Better::Lower,
                    Cell::opt(l.p99),
                    goal,
                ));
            }
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
    // Two nodes on one MariaDB database, the same jobs: together at least as fast as one.
    let one = sessions.iter().find_map(|(kind, stored, s)| {
        (*kind == Kind::Mysql && *stored == 0).then(|| s.as_ref().ok().and_then(|s| s.window.clone())).flatten()
    });
    if wants_interval && let Some(one) = one {
        let single = super::db::mysql_server();
        let two = super::galera::two_nodes(ctx, &single, [single.clone(), single.clone()], n, "iv_two", true).await;
        let what = format!("{jobs}, MariaDB, two nodes (peer column: one node)");
        let cell = |get: super::galera::Figure| match &two {
            Ok(f) => Cell::opt(get(f)),
            Err(e) => Cell::failed(format!("{e:#}")),
        };
        ctx.report.push(Row::goal(
            "interval",
            format!("{jobs}, MariaDB: two nodes' runs/s, at least one node's"),
            Unit::PerSec,
            Better::Higher,
            cell(|f| Some(f.runs_per_s)),
            one.runs_per_s,
        ));
        let rows: [(&str, Unit, super::galera::Figure, Option<f64>); 2] = [
            ("lateness p99", Unit::Millis, |f| f.p99, one.p99),
            ("due runs with no history row", Unit::Count, |f| Some(f.missed), Some(one.missed)),
        ];
        for (name, unit, get, peer) in rows {
            ctx.report.push(Row::new(
                "interval",
                format!("{what}: {name}"),
                unit,
                Better::Lower,
                cell(get),
                Cell::opt(peer),
            ));
        }
    }
    // The run rate with the most future jobs stored, as a share of the rate with none: MariaDB's
    // as flat as SQLite's.
    let rate = |kind: Kind, stored: usize| {
        sessions.iter().find_map(|(k, n, s)| {
            (*k == kind && *n == stored).then(|| s.as_ref().ok()?.window.as_ref().map(|w| w.runs_per_s)).flatten()
        })
    };
    let most = ctx.opts.sizes.stored.iter().copied().max().filter(|m| *m > 0);
    if wants_interval && let Some(most) = most {
        let share = |kind: Kind| Some(100.0 * rate(kind, most)? / rate(kind, 0)?);
        if let (Some(mysql), Some(sqlite)) = (share(Kind::Mysql), share(Kind::Sqlite)) {
            ctx.report.push(Row::goal(
                "interval",
                format!(
                    "{jobs}, MariaDB: runs/s with {} future jobs stored, % of those with none (limit: SQLite's)",
                    thousands(most as u64)
                ),
                Unit::Count,
                Better::Higher,
                Cell::Value(mysql),
                sqlite,
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

/// Lateness against load: for each load of `sizes.lateness_loads` one-second interval jobs on a
/// fresh SQLite node (their fire times spread evenly over the second, see [`add_spread`]), a window of `sizes.lateness_secs`; a row per load and percentile, and (full
/// runs) the plot `docs/lateness.svg`.
pub async fn lateness(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (loads, secs) = (ctx.opts.sizes.lateness_loads.clone(), ctx.opts.sizes.lateness_secs);
    let mut points = Vec::new();
    for n in loads {
        let label = format!("lateness {} jobs", thousands(n as u64));
        let w = with_node(ctx, Kind::Sqlite, &format!("late_{n}"), async |node, store, _dir| {
            add_spread(ctx, node, n, "l", &label).await?;
            measure_window(ctx, node, store, n, secs, &label).await
        })
        .await;
        let w = match w {
            Ok(w) => w,
            Err(e) if e.downcast_ref::<super::node::StartError>().is_some() => return Err(e),
            Err(e) => {
                ctx.progress.note(&format!("  {label}: failed: {e:#}"));
                continue;
            }
        };
        ctx.progress.note(&format!(
            "  {label}: {:.0} runs/s, p50 {:.1} p90 {:.1} p99 {:.1} max {:.1} ms, CPU/run {:.0} µs",
            w.runs_per_s,
            w.p50.unwrap_or(f64::NAN) * 1e3,
            w.p90.unwrap_or(f64::NAN) * 1e3,
            w.p99.unwrap_or(f64::NAN) * 1e3,
            w.max.unwrap_or(f64::NAN) * 1e3,
            w.cpu_per_run.unwrap_or(f64::NAN) * 1e6,
        ));
        let what = format!("{} 1-s jobs on SQLite, {secs} s", thousands(n as u64));
        for (name, v) in [("p50", w.p50), ("p90", w.p90), ("p99", w.p99), ("max", w.max)] {
            ctx.report.push(Row::new(
                "lateness",
                format!("{what}: {name} (run end − fire time)"),
                Unit::Millis,
                Better::Lower,
                Cell::opt(v),
                Cell::Missing("n/a (peers publish none)".into()),
            ));
        }
        if n == 10_000 {
            ctx.report.push(Row::goal(
                "lateness",
                format!("{what}: p99"),
                Unit::Millis,
                Better::Lower,
                Cell::opt(w.p99),
                0.005,
            ));
            ctx.report.push(Row::goal(
                "lateness",
                format!("{what}: node CPU per run"),
                Unit::Micros,
                Better::Lower,
                Cell::opt(w.cpu_per_run),
                60e-6,
            ));
        }
        points.push((n, w));
    }
    if !ctx.opts.quick && !points.is_empty() {
        let svg = lateness_svg(&points);
        let path = ctx.opts.root.join("docs/lateness.svg");
        std::fs::write(&path, svg)?;
        ctx.progress.note(&format!("  lateness plot: {}", path.display()));
    }
    Ok(())
}

/// Slices of a second the lateness workload's jobs are spread over.
const SPREAD_SLICES: usize = 100;

/// Adds `n` one-second interval jobs (`PREFIX0`, `PREFIX1`, …) whose fire times are spread evenly
/// over a second: a job's
/// first run is a second after it is added, so they are added in [`SPREAD_SLICES`] requests of
/// `job_add_many`, one every 10 ms (the jobs of one request share their fire time). A load of `n`
/// jobs is then `n` runs a second due evenly, not `n` due at once.
///
/// A build without `job_add_many` (measured with `--ruqi`; it answers "API Not Found") gets each slice's jobs
/// by `job_add`, 50 requests at a time; its fire times then spread over as long as that takes.
pub async fn add_spread(ctx: &Ctx, node: &Node, n: usize, prefix: &str, label: &str) -> anyhow::Result<()> {
    use futures_util::StreamExt as _;
    let url = format!("{}/ruqi/job_add_many", node.base);
    let one_url = format!("{}/ruqi/job_add", node.base);
    let per = n.div_ceil(SPREAD_SLICES);
    let slices: Vec<Vec<String>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(per)
        .map(|ids| ids.iter().map(|i| job_add_body("interval", &format!("{prefix}{i}"), "echo:bench", "1s")).collect())
        .collect();
    let slice = Duration::from_secs(1) / SPREAD_SLICES as u32;
    let started = tokio::time::Instant::now();
    let mut one_by_one = false;
    for (k, bodies) in slices.into_iter().enumerate() {
        tokio::time::sleep_until(started + slice * k as u32).await;
        ctx.progress.update(&format!("{label}: adding, slice {}/{SPREAD_SLICES}", k + 1));
        if !one_by_one {
            let jobs: Vec<serde_json::Value> =
                bodies.iter().map(|b| serde_json::from_str(b)).collect::<Result<_, _>>().expect("job_add body is JSON");
            let body = serde_json::Value::Array(jobs).to_string();
            let response = node.http().post(&url).body(body).send().await?;
            if response.headers().get("x-reason").is_some_and(|r| r == "API Not Found") {
                ctx.progress.note(&format!("  {label}: no job_add_many in this build; adding by job_add"));
                one_by_one = true;
            } else {
                let answer: serde_json::Value = response.json().await?;
                anyhow::ensure!(answer["stat"] == "OK", "job_add_many answered {answer}");
                anyhow::ensure!(answer["data"]["refused"] == serde_json::json!([]), "job_add_many refused {answer}");
                continue;
            }
        }
        let answers: Vec<anyhow::Result<serde_json::Value>> = futures_util::stream::iter(bodies)
            .map(|body| async {
                let answer: serde_json::Value = node.http().post(&one_url).body(body).send().await?.json().await?;
                Ok(answer)
            })
            .buffer_unordered(50)
            .collect()
            .await;
        for answer in answers {
            let answer = answer?;
            anyhow::ensure!(answer["stat"] == "OK", "job_add answered {answer}");
        }
    }
    let took = started.elapsed();
    if took > Duration::from_millis(1100) {
        ctx.progress
            .note(&format!("  {label}: the adds took {:.2} s: fire times spread over that", took.as_secs_f64()));
    }
    Ok(())
}

/// Reads one percentile of a window.
type Percentile = fn(&Window) -> Option<f64>;

/// The lateness plot: p50, p90, p99 and max (milliseconds, log scale) against the load (runs
/// due per second), one line each, as a self-contained SVG.
pub fn lateness_svg(points: &[(usize, Window)]) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 420.0, 70.0, 150.0, 40.0, 60.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let max_load = points.iter().map(|(n, _)| *n).max().unwrap_or(1) as f64;
    let ms = |v: Option<f64>| v.map(|v| (v * 1e3).max(0.1));
    let all: Vec<f64> =
        points.iter().flat_map(|(_, w)| [ms(w.p50), ms(w.p90), ms(w.p99), ms(w.max)]).flatten().collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).max(0.1).log10().floor();
    let hi = all.iter().copied().fold(0.1, f64::max).log10().ceil().max(lo + 1.0);
    let x = |n: f64| left + n / max_load * pw;
    let y = |v: f64| top + ph - (v.log10() - lo) / (hi - lo) * ph;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" \
         font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{left}\" y=\"22\" \
         font-size=\"14\">RuQi on SQLite: fire-time lateness (run end − fire time) against load</text>\n"
    );
    for decade in lo as i32..=hi as i32 {
        let v = 10f64.powi(decade);
        let label = if v >= 1.0 { format!("{v:.0} ms") } else { format!("{v} ms") };
        svg += &format!(
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" \
             text-anchor=\"end\">{label}</text>\n",
            left + pw,
            left - 6.0,
            y(v) + 4.0,
            y = y(v)
        );
    }
    for (n, _) in points {
        let px = x(*n as f64);
        svg += &format!(
            "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{top}\" y2=\"{}\" stroke=\"#eee\"/><text x=\"{px:.1}\" y=\"{}\" \
             text-anchor=\"middle\">{}</text>\n",
            top + ph,
            top + ph + 18.0,
            thousands(*n as u64)
        );
    }
    svg += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">one-second jobs (runs due per second)</text>\n",
        left + pw / 2.0,
        h - 16.0
    );
    let series: [(&str, &str, Percentile); 4] = [
        ("p50", "#1b9e77", |w| w.p50),
        ("p90", "#7570b3", |w| w.p90),
        ("p99", "#d95f02", |w| w.p99),
        ("max", "#e7298a", |w| w.max),
    ];
    for (i, (name, colour, get)) in series.iter().enumerate() {
        let pts: Vec<String> =
            points.iter().filter_map(|(n, w)| ms(get(w)).map(|v| format!("{:.1},{:.1}", x(*n as f64), y(v)))).collect();
        svg +=
            &format!("<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n", pts.join(" "));
        for p in &pts {
            let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
            svg += &format!("<circle cx=\"{cx}\" cy=\"{cy}\" r=\"3\" fill=\"{colour}\"/>\n");
        }
        let ly = top + 20.0 + i as f64 * 20.0;
        svg += &format!(
            "<line x1=\"{}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\"/><text x=\"{}\" \
             y=\"{}\">{name}</text>\n",
            left + pw + 16.0,
            left + pw + 40.0,
            left + pw + 46.0,
            ly + 4.0
        );
    }
    svg += "</svg>\n";
    svg
}
