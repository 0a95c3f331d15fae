//! The burst, script and job_add workloads, RuQi and peer side by side (the interval and
//! listing workloads are in `interval.rs`), and [`Ctx`], what every workload is handed.
//!
//! RuQi's side always goes through a real `ruqi serve` on a fresh store; its figures come from
//! the store's history rows (run end = `c_time`). Every job is added before it is due: 200
//! far-future jobs are added first to time the adds, and the due second is chosen after the
//! time the rest should take (× 1.25 + 2 s).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::db::{Kind, Store, create_mysql_db, drop_mysql_db, remove_sqlite};
use super::load::{self, Until, job_add_body};
use super::node::{Node, NodeDir};
use super::peer::{Peer, num};
use super::progress::Progress;
use super::report::{Better, Cell, Report, Row, Unit};
use super::{Opts, epoch_now, thousands};

/// A far-future date rule: jobs that are stored and never due during a run.
pub const FAR: &str = "2100-01-01 00:00:00";

/// The peer, if it is to run.
pub enum PeerState {
    /// `--no-peer`.
    Off,
    /// The venv is ready.
    Ready(Peer),
    /// The venv could not be made.
    Broken(String),
}

/// What every workload is handed.
pub struct Ctx {
    /// The flags and sizes.
    pub opts: Opts,
    /// The progress line.
    pub progress: Progress,
    /// The figures so far.
    pub report: Report,
    /// The APScheduler side.
    pub peer: PeerState,
}

impl Ctx {
    /// Runs the peer with `args`; the cell text when it cannot give figures.
    pub async fn peer_run(&self, args: Vec<String>, label: &str, limit: Duration) -> Result<Value, Cell> {
        match &self.peer {
            PeerState::Off => Err(Cell::Missing("n/a (--no-peer)".into())),
            PeerState::Broken(why) => Err(Cell::failed(why)),
            PeerState::Ready(p) => {
                let started = Instant::now();
                let out = p.run(&args, &self.progress, limit).await.map_err(|e| Cell::failed(format!("{e:#}")));
                self.progress.note(&format!("  {label} (peer): {:.1} s", started.elapsed().as_secs_f64()));
                out
            }
        }
    }

    /// A SQLite file path for the peer under `target/bench` (removed first).
    pub fn peer_sqlite(&self, what: &str) -> PathBuf {
        let p = self.opts.out.join(format!("peer-{what}-{}.sqlite", std::process::id()));
        remove_sqlite(&p);
        p
    }
}

/// A peer figure from its JSON, or the reason there is none.
pub fn peer_cell(out: &Result<Value, Cell>, key: &str) -> Cell {
    match out {
        Ok(v) => Cell::opt(num(v, key)),
        Err(c) => c.clone(),
    }
}

/// Runs `work` on a fresh node on a fresh store of `kind`, then stops the node and deletes the
/// store whatever happened. A node that cannot start is a [`super::node::StartError`].
pub async fn with_node<T>(
    ctx: &Ctx,
    kind: Kind,
    tag: &str,
    work: impl AsyncFnOnce(&Node, &mut Store, &NodeDir) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let dir = NodeDir::new()?;
    let mut store = Store::create(kind, &ctx.opts.tag(tag), &ctx.opts.out).await?;
    let result = async {
        let node = Node::start(&ctx.opts.ruqi, &store.url, &dir).await?;
        let out = async {
            store.connect().await?;
            work(&node, &mut store, &dir).await
        }
        .await;
        node.stop().await;
        out
    }
    .await;
    store.remove().await;
    result
}

/// Adds `n` jobs through `job_add` (50 connections); `body(i)` is job `i`'s JSON.
pub async fn add_jobs(
    ctx: &Ctx,
    node: &Node,
    n: usize,
    label: &str,
    body: Arc<dyn Fn(u64) -> String + Send + Sync>,
) -> anyhow::Result<load::LoadResult> {
    let url = format!("{}/ruqi/job_add", node.base);
    let r = load::run(node.http(), url, 50, Until::Count(n as u64), body, &ctx.progress, label).await;
    r.all_ok()?;
    Ok(r)
}

/// The whole second at which `n` more adds are surely done, from 200 timed adds.
pub async fn pick_due(ctx: &Ctx, node: &Node, n: usize, label: &str) -> anyhow::Result<i64> {
    let cal =
        add_jobs(ctx, node, 200, label, Arc::new(|i| job_add_body("date", &format!("cal{i}"), "echo:bench", FAR)))
            .await?;
    Ok((epoch_now() + n as f64 / cal.rate() * 1.25 + 2.0).ceil() as i64)
}

/// `due` (epoch seconds) as a date rule of a node in UTC.
pub fn date_rule(due: i64) -> String {
    chrono::DateTime::from_timestamp(due, 0).expect("due second").format("%Y-%m-%d %H:%M:%S").to_string()
}

/// RuQi's burst figures.
#[derive(Debug, Clone)]
pub struct Burst {
    /// Seconds from the due second to the last history row's run end.
    pub last_end: Option<f64>,
    /// History rows seen.
    pub runs: u64,
    /// Whether adding ended after the due second.
    pub added_late: bool,
}

/// `n` date jobs running `cmd`, all due at one second, on a fresh node of `kind`.
pub async fn ruqi_burst(ctx: &Ctx, kind: Kind, n: usize, cmd: &str, label: &str) -> anyhow::Result<Burst> {
    ruqi_burst_with(ctx, kind, n, cmd, label, None).await
}

/// [`ruqi_burst`] with run-control parameters (`timeout`, `retries` …) added to every job.
pub async fn ruqi_burst_with(
    ctx: &Ctx,
    kind: Kind,
    n: usize,
    cmd: &str,
    label: &str,
    policy: Option<serde_json::Value>,
) -> anyhow::Result<Burst> {
    let cmd = cmd.to_owned();
    with_node(ctx, kind, &format!("burst_{}", kind.short()), async |node, store, _dir| {
        let due = pick_due(ctx, node, n, label).await?;
        let rule = date_rule(due);
        let body = move |i: u64| {
            let plain = job_add_body("date", &format!("b{i}"), &cmd, &rule);
            match &policy {
                None => plain,
                Some(extra) => {
                    let mut v: serde_json::Value = serde_json::from_str(&plain).expect("job_add body is JSON");
                    if let (Some(map), Some(more)) = (v.as_object_mut(), extra.as_object()) {
                        map.extend(more.clone());
                    }
                    v.to_string()
                }
            }
        };
        add_jobs(ctx, node, n, label, Arc::new(body)).await?;
        let added_late = epoch_now() > due as f64;
        let (mut last_count, mut last_change) = (u64::MAX, Instant::now());
        loop {
            let (count, last) = store.history_progress().await?;
            let t = epoch_now() - due as f64;
            ctx.progress.update(&format!(
                "{label}: {}/{} history rows, {}",
                thousands(count),
                thousands(n as u64),
                if t < 0.0 { format!("due in {:.1} s", -t) } else { format!("{t:.1} s") }
            ));
            if count >= n as u64 || (t > 0.0 && last_change.elapsed() > Duration::from_secs(60)) {
                return Ok(Burst { last_end: last.map(|l| l - due as f64), runs: count, added_late });
            }
            if count != last_count {
                (last_count, last_change) = (count, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
}

fn burst_note(report: &mut Report, label: &str, n: usize, b: &anyhow::Result<Burst>) {
    if let Ok(b) = b {
        if b.runs < n as u64 {
            report.note(format!("{label}: RuQi recorded only {} of {} runs (stalled 60 s)", b.runs, n));
        }
        if b.added_late {
            report.note(format!("{label}: RuQi's adds ended after the due second"));
        }
    }
}

/// Passes a node start failure up (the harness then exits non-zero); anything else is a cell.
pub fn cell_or_abort<T>(r: &anyhow::Result<T>, f: impl Fn(&T) -> Cell) -> anyhow::Result<Cell> {
    match r {
        Ok(v) => Ok(f(v)),
        Err(e) if e.downcast_ref::<super::node::StartError>().is_some() => Err(anyhow::anyhow!("{e:#}")),
        Err(e) => Ok(Cell::failed(format!("{e:#}"))),
    }
}

fn peer_burst_args(what: &str, store: &str, n: usize, extra: &[(&str, String)]) -> Vec<String> {
    let mut a = vec![what.to_owned(), "--store".into(), store.into(), "--n".into(), n.to_string()];
    for (k, v) in extra {
        a.push((*k).to_owned());
        a.push(v.clone());
    }
    a
}

/// A `bench_peer_…` database for the peer, its SQLAlchemy URL.
async fn peer_mysql(ctx: &Ctx, what: &str) -> anyhow::Result<(String, String)> {
    let name = format!("bench_peer_{}", ctx.opts.tag(what));
    create_mysql_db(&name).await?;
    let server = super::db::mysql_server().replacen("mysql://", "mysql+pymysql://", 1);
    Ok((name.clone(), format!("{server}/{name}")))
}

/// Runs the peer on `store` (sqlite, mysql or memory) for `workload`, with its files cleaned up.
pub async fn peer_on(
    ctx: &Ctx,
    workload: &str,
    store: &str,
    mut args: Vec<String>,
    label: &str,
    limit: Duration,
) -> Result<Value, Cell> {
    if matches!(ctx.peer, PeerState::Off) {
        return Err(Cell::Missing("n/a (--no-peer)".into()));
    }
    let sqlite = ctx.peer_sqlite(workload);
    let mut db = None;
    match store {
        "sqlite" => args.extend(["--sqlite-path".into(), sqlite.display().to_string()]),
        "mysql" => match peer_mysql(ctx, workload).await {
            Ok((name, url)) => {
                args.extend(["--mysql-url".into(), url]);
                db = Some(name);
            }
            Err(e) => return Err(Cell::failed(format!("peer database: {e:#}"))),
        },
        _ => {}
    }
    let out = ctx.peer_run(args, label, limit).await;
    remove_sqlite(&sqlite);
    if let Some(name) = db {
        drop_mysql_db(&name).await;
    }
    out
}

/// Burst: `n` no-op date jobs due at one second, on SQLite and MariaDB; the peer on its SQLite,
/// MariaDB and memory stores.
pub async fn burst(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n = ctx.opts.sizes.burst;
    let mut ruqi = Vec::new();
    for kind in [Kind::Sqlite, Kind::Mysql] {
        let label = format!("burst {}", kind.short());
        let b = ruqi_burst(ctx, kind, n, "echo:bench", &label).await;
        burst_note(&mut ctx.report, &label, n, &b);
        ctx.progress.note(&format!("  {label}: {}", summary(&b)));
        ruqi.push((kind, cell_or_abort(&b, |b| Cell::opt(b.last_end))?));
    }
    let limit = Duration::from_secs(n as u64 / 20 + 300);
    let mut peers = Vec::new();
    for store in ["sqlite", "mysql", "memory"] {
        let out =
            peer_on(ctx, "burst", store, peer_burst_args("burst", store, n, &[]), &format!("burst {store}"), limit)
                .await;
        if let Ok(v) = &out {
            if v["added_late"] == true {
                ctx.report.note(format!("burst {store}: APScheduler's adds ended after the due second"));
            }
            if num(v, "missed").unwrap_or(0.0) > 0.0 {
                ctx.report.note(format!("burst {store}: APScheduler missed {} runs (misfire grace 30 s)", v["missed"]));
            }
        }
        peers.push(peer_cell(&out, "last_end_s"));
    }
    let what = format!("{} no-op date jobs due at one second → last run ended", thousands(n as u64));
    for ((kind, r), p) in ruqi.iter().zip(&peers) {
        ctx.report.push(Row::new(
            "burst",
            format!("{what}, {}", kind.label()),
            Unit::Secs,
            Better::Lower,
            r.clone(),
            p.clone(),
        ));
    }
    for (kind, r) in &ruqi {
        let goal = if *kind == Kind::Sqlite { 0.35 } else { 0.5 };
        ctx.report.push(Row::goal(
            "burst",
            format!("{what}, {}", kind.label()),
            Unit::Secs,
            Better::Lower,
            r.clone(),
            goal,
        ));
    }
    ctx.report.push(Row::new(
        "burst",
        format!("{what}, RuQi SQLite vs APScheduler memory store"),
        Unit::Secs,
        Better::Lower,
        ruqi[0].1.clone(),
        peers[2].clone(),
    ));
    // The same burst with run control set on every job (a timeout and retries, which succeeding
    // runs never use): what the policies cost a run, against the plain rows above.
    let policy = serde_json::json!({"timeout": 600, "retries": 3, "retry_delay": 5});
    for (kind, plain) in &ruqi {
        let label = format!("burst {} timeout+retries", kind.short());
        let b = ruqi_burst_with(ctx, *kind, n, "echo:bench", &label, Some(policy.clone())).await;
        burst_note(&mut ctx.report, &label, n, &b);
        ctx.progress.note(&format!("  {label}: {}", summary(&b)));
        let with = cell_or_abort(&b, |b| Cell::opt(b.last_end))?;
        ctx.report.push(Row::new(
            "burst",
            format!("{what}, {}, timeout and retries set (peer column: the same without)", kind.label()),
            Unit::Secs,
            Better::Lower,
            with,
            plain.clone(),
        ));
    }
    Ok(())
}

fn summary(b: &anyhow::Result<Burst>) -> String {
    match b {
        Ok(b) => format!("{} runs, last ended {:.2} s after the due second", b.runs, b.last_end.unwrap_or(f64::NAN)),
        Err(e) => format!("failed: {e:#}"),
    }
}

/// Script burst: `n` date jobs `bash scripts/x.sh` due at one second on SQLite; the peer on its
/// memory store with subprocess.run; the floor is the same commands through `xargs -P 8`.
pub async fn script(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n = ctx.opts.sizes.script;
    let label = "script sqlite";
    let b = ruqi_burst(ctx, Kind::Sqlite, n, "bash scripts/x.sh", label).await;
    burst_note(&mut ctx.report, label, n, &b);
    ctx.progress.note(&format!("  {label}: {}", summary(&b)));
    let r = cell_or_abort(&b, |b| Cell::opt(b.last_end))?;
    let dir = NodeDir::new()?;
    let work = dir.work();
    let peer = peer_on(
        ctx,
        "script",
        "memory",
        peer_burst_args("script", "memory", n, &[("--workdir", work.display().to_string())]),
        "script memory",
        Duration::from_secs(n as u64 / 5 + 300),
    )
    .await;
    ctx.progress.update("script floor: xargs -P 8");
    let started = Instant::now();
    let floor = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("seq {n} | xargs -P 8 -n 1 bash scripts/x.sh"))
        .current_dir(&work)
        .status()
        .await;
    let floor = match floor {
        Ok(s) if s.success() => Cell::Value(started.elapsed().as_secs_f64()),
        Ok(s) => Cell::failed(format!("xargs: {s}")),
        Err(e) => Cell::failed(format!("xargs: {e}")),
    };
    let what = format!("{} `bash scripts/x.sh` date jobs due at one second → last run ended", thousands(n as u64));
    ctx.report.push(Row::new(
        "script",
        format!("{what} (peer: memory store, 20 threads)"),
        Unit::Secs,
        Better::Lower,
        r.clone(),
        peer_cell(&peer, "last_end_s"),
    ));
    ctx.report.push(Row::new(
        "script",
        format!("{what} vs the floor: xargs -P 8, no scheduler (peer col)"),
        Unit::Secs,
        Better::Lower,
        r,
        floor,
    ));
    Ok(())
}

/// job_add over HTTP at 50 connections for a while, on SQLite and MariaDB; the peer: add_job
/// in one thread on its SQLite / MariaDB store (what 1.x does per request).
pub async fn add(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (secs, conns) = (ctx.opts.sizes.add_secs, ctx.opts.sizes.add_connections);
    for kind in [Kind::Sqlite, Kind::Mysql] {
        let label = format!("add {}", kind.short());
        let r = with_node(ctx, kind, &format!("add_{}", kind.short()), async |node, _store, _dir| {
            let url = format!("{}/ruqi/job_add", node.base);
            let body: Arc<dyn Fn(u64) -> String + Send + Sync> =
                Arc::new(|i| job_add_body("date", &format!("a{i}"), "echo:bench", FAR));
            let r =
                load::run(node.http(), url, conns, Until::Time(Duration::from_secs(secs)), body, &ctx.progress, &label)
                    .await;
            r.all_ok()?;
            Ok(r)
        })
        .await;
        if let Ok(r) = &r {
            ctx.progress.note(&format!(
                "  {label}: {:.0} req/s, p99 {:.1} ms",
                r.rate(),
                r.p(99.0).unwrap_or(f64::NAN) * 1e3
            ));
        }
        let rate = cell_or_abort(&r, |r| Cell::Value(r.rate()))?;
        let p99 = cell_or_abort(&r, |r| Cell::opt(r.p(99.0)))?;
        let store = kind.short();
        let peer = peer_on(
            ctx,
            "add",
            store,
            vec!["add".into(), "--store".into(), store.into(), "--seconds".into(), secs.to_string()],
            &label,
            Duration::from_secs(secs + 120),
        )
        .await;
        let what = format!("job_add, {conns} connections, {}", kind.label());
        ctx.report.push(Row::new(
            "add",
            format!("{what}: requests/s (peer: add_job, 1 thread)"),
            Unit::PerSec,
            Better::Higher,
            rate,
            peer_cell(&peer, "adds_per_s"),
        ));
        ctx.report.push(Row::new(
            "add",
            format!("{what}: p99 latency (peer: one add_job)"),
            Unit::Millis,
            Better::Lower,
            p99,
            peer_cell(&peer, "p99_s"),
        ));
        let goal = if kind == Kind::Sqlite { 10_000.0 } else { 5_000.0 };
        ctx.report.push(Row::goal(
            "add",
            format!("{what}: requests/s"),
            Unit::PerSec,
            Better::Higher,
            rate_again(&r),
            goal,
        ));
        let (total, per) = ctx.opts.sizes.add_many;
        let label = format!("add_many {}", kind.short());
        let many = with_node(ctx, kind, &format!("many_{}", kind.short()), async |node, _store, _dir| {
            add_many(ctx, node, total, per, &label).await
        })
        .await;
        if let Ok(rate) = &many {
            ctx.progress.note(&format!("  {label}: {rate:.0} jobs/s"));
        }
        let cell = cell_or_abort(&many, |r| Cell::Value(*r))?;
        let what = format!(
            "job_add_many, {} jobs in requests of {}, {}: jobs/s",
            thousands(total as u64),
            thousands(per as u64),
            kind.label()
        );
        if kind == Kind::Sqlite {
            ctx.report.push(Row::goal("add", what, Unit::PerSec, Better::Higher, cell, 100_000.0));
        } else {
            ctx.report.push(Row::new("add", what, Unit::PerSec, Better::Higher, cell, Cell::na()));
        }
    }
    Ok(())
}

/// The rate of a load's requests, again (for a goal row beside the peer's).
fn rate_again(r: &anyhow::Result<load::LoadResult>) -> Cell {
    match r {
        Ok(r) => Cell::Value(r.rate()),
        Err(e) => Cell::failed(format!("{e:#}")),
    }
}

/// Adds `total` jobs through `job_add_many`, `per` jobs a request, one request after another;
/// jobs added per second.
async fn add_many(ctx: &Ctx, node: &Node, total: usize, per: usize, label: &str) -> anyhow::Result<f64> {
    let bodies: Vec<String> = (0..total)
        .collect::<Vec<_>>()
        .chunks(per)
        .map(|ids| {
            let jobs: Vec<serde_json::Value> = ids
                .iter()
                .map(|i| serde_json::json!({"job_trigger": "date", "job_id": format!("m{i}"), "job_name": "bench", "cmd": "echo:bench", "rule": FAR}))
                .collect();
            serde_json::Value::Array(jobs).to_string()
        })
        .collect();
    let url = format!("{}/ruqi/job_add_many", node.base);
    let started = Instant::now();
    let mut added = 0u64;
    for (n, body) in bodies.into_iter().enumerate() {
        ctx.progress.update(&format!("{label}: request {}", n + 1));
        let answer: serde_json::Value = node.http().post(&url).body(body).send().await?.json().await?;
        anyhow::ensure!(answer["stat"] == "OK", "job_add_many answered {answer}");
        added += answer["data"]["count"].as_u64().unwrap_or(0);
    }
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(added == total as u64, "job_add_many added {added} of {total} jobs");
    Ok(total as f64 / secs)
}
