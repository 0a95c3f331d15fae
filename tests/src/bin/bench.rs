//! `make bench`: RuQi measured against APScheduler 3.x side by side, in one run.
//! RuQi's side is a real `ruqi serve` (release build) driven through its HTTP API; the peer is
//! `tests/bench/apscheduler_peer.py` in a virtualenv the harness makes under `target/bench/venv`,
//! configured as RuQi 1.x configures APScheduler. Prints ONE table (workload | RuQi | peer |
//! ratio) and writes the same figures to `target/bench/latest.json` plus a timestamped copy;
//! a progress line on stderr while each workload runs. Prints, never asserts: no test reads a
//! time.
//!
//! ```text
//! bench [--quick] [--no-peer] [--only burst,interval,lateness,add,script,listing,micro,plugins,galera] [--ruqi PATH]
//! ```
//! `--quick` (or `RUQI_BENCH_QUICK=1`): small sizes, the whole run under two minutes on a debug
//! or release binary. `--ruqi` (or `RUQI_BENCH_BIN`): the binary, default `target/release/ruqi`;
//! `RUQI_WASM_DIR`: the plugins it is given, default this tree's (`plugins/target/wasm32-wasip2/release`).
//! Exits non-zero only when RuQi itself cannot be started; a failing peer is a cell saying why.

#![allow(clippy::print_stdout)] // a benchmark harness prints its figures

#[path = "../bench/mod.rs"]
mod bench;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bench::progress::Progress;
use bench::report::{Better, Cell, Report, Row, Unit};
use bench::workloads::{Ctx, PeerState};
use bench::{Opts, Sizes, WORKLOADS};

const USAGE: &str = "usage: bench [--quick] [--no-peer] [--only NAME[,NAME…]] [--ruqi PATH]
workloads: burst, interval, lateness, add, script, listing, micro, plugins, galera";

fn parse_args() -> anyhow::Result<Opts> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().unwrap_or(root);
    let mut quick = std::env::var("RUQI_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut peer = true;
    let mut only = Vec::new();
    let mut ruqi = std::env::var_os("RUQI_BENCH_BIN").map(PathBuf::from);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--no-peer" => peer = false,
            "--only" => only.extend(args.next().context(USAGE)?.split(',').map(|s| s.trim().to_owned())),
            "--ruqi" => ruqi = Some(PathBuf::from(args.next().context(USAGE)?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    for o in &only {
        anyhow::ensure!(WORKLOADS.contains(&o.as_str()), "unknown workload {o}\n{USAGE}");
    }
    let ruqi = ruqi.unwrap_or_else(|| root.join("target/release/ruqi"));
    let out = root.join("target/bench");
    let sizes = if quick { Sizes::quick() } else { Sizes::full() };
    Ok(Opts { quick, peer, only, ruqi, root, out, sizes })
}

async fn micro(ctx: &mut Ctx) {
    let (plugin_runs, io_runs) = ctx.opts.sizes.micro_runs;
    let parts: [(&str, anyhow::Result<Vec<Row>>); 3] = [
        ("plugin no-op run", {
            ctx.progress.update("micro: plugin no-op runs");
            bench::micro::plugin_overhead(plugin_runs).await
        }),
        ("http-post run", {
            ctx.progress.update("micro: http-post runs");
            bench::micro::http_post(io_runs).await
        }),
        ("baichuan publish", {
            ctx.progress.update("micro: baichuan publishes");
            bench::micro::baichuan(io_runs).await
        }),
    ];
    for (what, rows) in parts {
        match rows {
            Ok(rows) => rows.into_iter().for_each(|r| ctx.report.push(r)),
            Err(e) => ctx.report.push(Row::new(
                "micro",
                what,
                Unit::Micros,
                Better::Lower,
                Cell::failed(format!("{e:#}")),
                Cell::na(),
            )),
        }
    }
    ctx.report.note("micro: the peer column is the plain Rust baseline each row names, not APScheduler");
}

async fn run(ctx: &mut Ctx) -> anyhow::Result<()> {
    let step = |ctx: &Ctx, name: &str| ctx.progress.note(&format!("== {name}"));
    if ctx.opts.wants("burst") {
        step(ctx, "burst");
        bench::workloads::burst(ctx).await?;
    }
    if ctx.opts.wants("interval") || ctx.opts.wants("listing") {
        step(ctx, "interval / listing");
        bench::interval::interval_and_listing(ctx).await?;
    }
    if ctx.opts.wants("lateness") {
        step(ctx, "lateness");
        bench::interval::lateness(ctx).await?;
    }
    if ctx.opts.wants("add") {
        step(ctx, "add");
        bench::workloads::add(ctx).await?;
    }
    if ctx.opts.wants("script") {
        step(ctx, "script");
        bench::workloads::script(ctx).await?;
    }
    if ctx.opts.wants("micro") {
        step(ctx, "micro");
        micro(ctx).await;
    }
    if ctx.opts.wants("galera") {
        step(ctx, "galera");
        if let Err(e) = bench::galera::galera(ctx).await {
            ctx.progress.note(&format!("galera: {e:#}"));
            ctx.report.push(Row::new(
                "galera",
                "2 nodes on 3 Galera members",
                Unit::PerSec,
                Better::Higher,
                Cell::failed(format!("{e:#}")),
                Cell::na(),
            ));
        }
    }
    if ctx.opts.wants("plugins") {
        step(ctx, "plugins");
        if let Err(e) = bench::plugins::plugin_runs(ctx).await {
            ctx.progress.note(&format!("plugins: {e:#}"));
            ctx.report.push(Row::new(
                "plugins",
                "echo runs",
                Unit::Micros,
                Better::Lower,
                Cell::failed(format!("{e:#}")),
                Cell::na(),
            ));
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = parse_args()?;
    let started = Instant::now();
    let progress = Progress::new();
    anyhow::ensure!(
        opts.ruqi.exists(),
        "{} missing: `make bench` builds it (or pass --ruqi PATH / RUQI_BENCH_BIN)",
        opts.ruqi.display()
    );
    std::fs::create_dir_all(&opts.out)?;
    let needs_peer = ["burst", "interval", "add", "script"].iter().any(|w| opts.wants(w));
    let peer = if !opts.peer || !needs_peer {
        PeerState::Off
    } else {
        match bench::peer::Peer::ensure(&opts.root, &opts.out, &progress).await {
            Ok(p) => PeerState::Ready(p),
            Err(e) => {
                progress.note(&format!("peer unavailable: {e:#}"));
                PeerState::Broken(format!("{e:#}"))
            }
        }
    };
    progress.note(&format!(
        "RuQi bench ({} mode), ruqi = {}, peer = {}",
        if opts.quick { "quick" } else { "full" },
        opts.ruqi.display(),
        match &peer {
            PeerState::Off => "off",
            PeerState::Ready(_) => "APScheduler (target/bench/venv)",
            PeerState::Broken(_) => "broken",
        }
    ));
    let mut ctx = Ctx { opts, progress, report: Report::default(), peer };
    if !matches!(ctx.peer, PeerState::Off) {
        ctx.report.note(
            "peer: APScheduler 3.11 BackgroundScheduler, ThreadPoolExecutor(20), misfire_grace_time=30, coalesce=False \
             (as RuQi 1.x); SQLAlchemyJobStore with SQLAlchemy's defaults (its SQLite file in rollback-journal mode)",
        );
    }
    ctx.report.note(
        "RuQi: `ruqi serve` with --concurrency 20 --misfire-grace 30 (defaults), log filter warn (RUQI_BENCH_LOG), \
         cmd echo:bench (the template plugin), figures read from its history rows",
    );
    let outcome = run(&mut ctx).await;
    ctx.progress.clear();
    let meta = serde_json::json!({
        "mode": if ctx.opts.quick { "quick" } else { "full" },
        "ruqi": ctx.opts.ruqi.display().to_string(),
        "peer": !matches!(ctx.peer, PeerState::Off),
        "only": ctx.opts.only,
        "sizes": format!("{:?}", ctx.opts.sizes),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "finished": chrono::Utc::now().to_rfc3339(),
        "seconds": started.elapsed().as_secs_f64(),
        "aborted": outcome.as_ref().err().map(|e| format!("{e:#}")),
    });
    println!("{}", ctx.report.table());
    let path = ctx.report.write_json(&ctx.opts.out, meta)?;
    println!(
        "figures: {} (and target/bench/latest.json); {:.0} s in all",
        path.strip_prefix(&ctx.opts.root).unwrap_or(&path).display(),
        started.elapsed().as_secs_f64()
    );
    outcome
}
