//! `make bench`: figures and ratios for the costs RuQi cares about. Prints, does not assert:
//! speed goals are read here, never enforced by timed tests.
//!
//! - plugin runtime overhead: a no-op run through the wasmtime runtime (fresh `Store`,
//!   instantiate, call, drop), against the same no-op as a plain async call;
//! - due runs per second on the SQLite store: claim, execute (no-op plugin), write history,
//!   reschedule, for many jobs due at once;
//! - http-post: one run against a local HTTP server, against a plain reqwest POST;
//! - baichuan: one publish to the local Redis, against a plain redis-rs MULTI/EXEC;
//! - cluster: fire lateness of 1,000 one-second jobs on two `ruqi serve` nodes (release
//!   build) sharing one MariaDB database.

#![allow(clippy::print_stdout)] // a benchmark harness prints its figures

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ruqi::clock::{Clock, SystemClock};
use ruqi::dispatch::{DispatchConfig, Dispatcher};
use ruqi::model::{HistoryFilter, Job, JobId, Page};
use ruqi::plugin::{Grants, Registry, RunRequest, Runtime};
use ruqi::scheduler::{Scheduler, SchedulerHandle};
use ruqi::trigger::{Trigger, TriggerKind};
use tokio_util::sync::CancellationToken;

const TZ: chrono_tz::Tz = chrono_tz::UTC;

/// Median and 99th percentile of durations, in microseconds.
fn stats(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

fn request(cmd: &str) -> RunRequest {
    RunRequest {
        run_id: "bench".into(),
        job_id: "bench".into(),
        job_name: "bench".into(),
        cmd: cmd.into(),
        fire_time: "2026-11-24 10:00:00".into(),
    }
}

#[inline(never)]
async fn native_noop(request: &RunRequest) -> (bool, String) {
    (true, std::hint::black_box(request.cmd.clone()))
}

async fn plugin_overhead(runs: usize) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let runtime = Runtime::new(work.path().to_path_buf(), None)?;
    let plugin = runtime.load_file(&ruqi_tests::wasm("test-hostile"), Grants::default()).await?;
    let req = request("hostile:noop");
    for _ in 0..200 {
        runtime.execute(&plugin, &req).await;
    }
    let mut wasm = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let outcome = runtime.execute(&plugin, &req).await;
        wasm.push(t.elapsed());
        anyhow::ensure!(outcome.success(), "no-op run failed: {}", outcome.into_output());
    }
    let mut native = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(native_noop(&req).await);
        native.push(t.elapsed());
    }
    let (wm, wp) = stats(wasm);
    let (nm, np) = stats(native);
    println!("plugin no-op run ({runs} runs): median {wm:.1} µs, p99 {wp:.1} µs");
    println!("native no-op call ({runs} runs): median {nm:.3} µs, p99 {np:.3} µs");
    println!("  sandbox overhead per run: {:.1} µs (median)", wm - nm);
    Ok(())
}

async fn sqlite_due_runs(jobs: usize, concurrency: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins)?;
    ruqi_tests::install_plugin(&plugins, "test-hostile", None);
    let runtime = Arc::new(Runtime::new(dir.path().to_path_buf(), None)?);
    let registry = Arc::new(Registry::open(runtime, plugins).await?);
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = ruqi::store::open(&url, TZ).await?;
    let clock = SystemClock;
    let now = clock.now();
    let day_ago = now - chrono::Duration::days(1);
    for i in 0..jobs {
        let trigger = Trigger::parse(TriggerKind::Interval, "1d", TZ, day_ago)?;
        let job = Job {
            id: JobId::parse(&format!("bench-{i}")).map_err(anyhow::Error::msg)?,
            name: "bench".into(),
            cmd: "hostile:noop".into(),
            trigger,
            next_run_time: Some(now),
            created: day_ago,
            updated: day_ago,
        };
        store.add_job(&job).await?;
    }
    let handle = SchedulerHandle::default();
    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        registry,
        Arc::new(SystemClock),
        DispatchConfig {
            node: "bench:0:0".into(),
            concurrency,
            lease: Duration::from_secs(30),
            misfire_grace: Duration::from_secs(3600),
            tz: TZ,
        },
        handle.notifier(),
        Arc::new(ruqi::metrics::Metrics::new()),
    ));
    let scheduler = Scheduler::new(store.clone(), Arc::new(SystemClock), dispatcher, handle, None);
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(scheduler.run(cancel.clone()));
    let one = Page { offset: 0, limit: Some(1) };
    loop {
        let (done, _) = store.list_history(&HistoryFilter::default(), one).await?;
        if done as usize >= jobs {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(300), "only {done} of {jobs} runs after 300 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    cancel.cancel();
    task.await.context("scheduler task")?;
    println!(
        "sqlite due runs ({jobs} jobs due at once, concurrency {concurrency}): {:.2} s, {:.0} runs/s",
        elapsed.as_secs_f64(),
        jobs as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// Times `runs` calls of `f` after 20 warm-up calls.
async fn time<F, Fut>(runs: usize, mut f: F) -> anyhow::Result<(f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for _ in 0..20 {
        f().await?;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await?;
        samples.push(t.elapsed());
    }
    Ok(stats(samples))
}

fn ratio_line(what: &str, plugin: (f64, f64), plain: &[(&str, (f64, f64))]) {
    println!("{what} via plugin: median {:.1} µs, p99 {:.1} µs", plugin.0, plugin.1);
    for (name, (m, p)) in plain {
        println!("  {name}: median {m:.1} µs, p99 {p:.1} µs; plugin/plain = {:.2}x", plugin.0 / m);
    }
}

async fn http_post(runs: usize) -> anyhow::Result<()> {
    let app = axum::Router::new().route(
        "/ok",
        axum::routing::post(|body: String| async move { format!("{{\"stat\":\"OK\",\"len\":{}}}", body.len()) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let work = tempfile::tempdir()?;
    let runtime = Runtime::new(work.path().to_path_buf(), None)?;
    let plugin = runtime.load_file(&ruqi_tests::wasm("http-post"), Grants::defaults_for("http-post")).await?;
    let url = format!("http://{addr}/ok");
    let req = request(&format!("{url}#{{\"str_info\":\"hi\"}}"));
    let via_plugin = time(runs, || async {
        let out = runtime.execute(&plugin, &req).await;
        anyhow::ensure!(out.success(), "http-post run failed: {}", out.into_output());
        Ok(())
    })
    .await?;
    let post = |client: reqwest::Client| {
        let url = url.clone();
        async move {
            let resp = client
                .post(&url)
                .header("content-type", "application/json")
                .body("{\"str_info\":\"hi\"}")
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success());
            serde_json::from_str::<serde_json::Value>(&resp.text().await?)?;
            Ok(())
        }
    };
    let fresh = time(runs, || post(reqwest::Client::new())).await?;
    let pooled_client = reqwest::Client::new();
    let pooled = time(runs, || post(pooled_client.clone())).await?;
    ratio_line(
        &format!("http-post run ({runs} runs, new connection each)"),
        via_plugin,
        &[("reqwest POST, new client each", fresh), ("reqwest POST, pooled connection", pooled)],
    );
    Ok(())
}

async fn baichuan(runs: usize) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let runtime = Runtime::new(work.path().to_path_buf(), None)?;
    let plugin = runtime.load_file(&ruqi_tests::wasm("baichuan"), Grants::defaults_for("baichuan")).await?;
    let topic = format!("/ruqi-bench-{}", uuid::Uuid::new_v4().simple());
    let req = request(&format!("{topic}#{{\"str_info\":\"mq\"}}"));
    let via_plugin = time(runs, || async {
        let out = runtime.execute(&plugin, &req).await;
        anyhow::ensure!(out.success(), "baichuan run failed: {}", out.into_output());
        Ok(())
    })
    .await?;
    let client = redis::Client::open("redis://127.0.0.1:6379/0")?;
    let queue = format!("mq:queue:{{{topic}}}");
    let publish = |mut con: redis::aio::MultiplexedConnection| {
        let queue = queue.clone();
        let topic = topic.clone();
        async move {
            let id = uuid::Uuid::new_v4().to_string();
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            let key = format!("mq:msg:{id}");
            let _: () = redis::pipe()
                .atomic()
                .sadd("mq:queues", &queue)
                .ignore()
                .hset_multiple(
                    &key,
                    &[
                        ("data", "{\"str_info\":\"mq\"}"),
                        ("origin", topic.as_str()),
                        ("status", "queued"),
                        ("created_at", now.as_str()),
                        ("enqueued_at", now.as_str()),
                        ("timeout", "180"),
                        ("ip", "127.0.0.1"),
                    ],
                )
                .ignore()
                .rpush(&queue, &id)
                .ignore()
                .query_async(&mut con)
                .await?;
            Ok(())
        }
    };
    let fresh = time(runs, || async { publish(client.get_multiplexed_async_connection().await?).await }).await?;
    let shared = client.get_multiplexed_async_connection().await?;
    let reused = time(runs, || publish(shared.clone())).await?;
    ratio_line(
        &format!("baichuan publish ({runs} runs, new connection each)"),
        via_plugin,
        &[("redis-rs MULTI/EXEC, new connection each", fresh), ("redis-rs MULTI/EXEC, reused connection", reused)],
    );
    // leave nothing behind
    let mut con = client.get_multiplexed_async_connection().await?;
    let ids: Vec<String> = redis::cmd("LRANGE").arg(&queue).arg(0).arg(-1).query_async(&mut con).await?;
    for id in ids {
        let _: () = redis::cmd("DEL").arg(format!("mq:msg:{id}")).query_async(&mut con).await?;
    }
    let _: () = redis::cmd("DEL").arg(&queue).query_async(&mut con).await?;
    let _: () = redis::cmd("SREM").arg("mq:queues").arg(&queue).query_async(&mut con).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `bench [SECTION…]` runs only the named sections (plugin, sqlite, http-post, baichuan, cluster).
    let only: Vec<String> = std::env::args().skip(1).collect();
    let want = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    println!("RuQi benchmarks (figures vary with the machine and the build profile)");
    if want("plugin") {
        plugin_overhead(5_000).await?;
    }
    if want("sqlite") {
        sqlite_due_runs(2_000, 20).await?;
    }
    if want("http-post") {
        http_post(500).await?;
    }
    if want("baichuan") {
        baichuan(500).await?;
    }
    if want("cluster") {
        cluster_lateness(1_000, 2, 30).await?;
    }
    Ok(())
}

/// Starts `nodes` release nodes on a fresh MariaDB database, adds `jobs` every-second echo
/// jobs, measures `seconds` after a warm-up, and prints how late runs started after their fire
/// time, runs per second, the spread across nodes, and any fire time missed or run twice.
async fn cluster_lateness(jobs: usize, nodes: usize, seconds: u64) -> anyhow::Result<()> {
    use ruqi_tests::cluster::{Cluster, percentile};
    let bin = std::env::current_exe()?.parent().context("bench dir")?.join("ruqi");
    anyhow::ensure!(bin.exists(), "{} missing: make bench builds it", bin.display());
    let mut cluster = Cluster::with_bin("bench", &[], bin).await;
    let mut procs = Vec::new();
    for _ in 0..nodes {
        procs.push(cluster.start_node().await);
    }
    for i in 0..jobs {
        procs[i % nodes].client.add("interval", &format!("b{i}"), "echo:bench", "1s").await;
    }
    let from = chrono::Utc::now() + chrono::Duration::seconds(3);
    tokio::time::sleep(Duration::from_secs(seconds + 3)).await;
    let to = chrono::Utc::now() - chrono::Duration::seconds(2);
    for p in procs {
        p.terminate();
    }
    let (from_e, to_e) = (from.timestamp_micros() as f64 / 1e6, to.timestamp_micros() as f64 / 1e6);
    let runs: Vec<_> =
        cluster.runs().await.into_iter().filter(|r| r.fire_time >= from_e && r.fire_time < to_e).collect();
    let mut late: Vec<f64> = runs.iter().map(|r| r.started.timestamp_micros() as f64 / 1e6 - r.fire_time).collect();
    late.sort_by(f64::total_cmp);
    let mut per_job: std::collections::HashMap<&str, Vec<f64>> = Default::default();
    for r in &runs {
        per_job.entry(&r.job_id).or_default().push(r.fire_time);
    }
    let (mut missed, mut twice) = (0usize, 0usize);
    for fires in per_job.values_mut() {
        fires.sort_by(f64::total_cmp);
        for w in fires.windows(2) {
            let gap = w[1] - w[0];
            if gap < 1e-6 {
                twice += 1;
            } else if gap > 1.5 {
                missed += (gap.round() as usize).saturating_sub(1);
            }
        }
    }
    let mut spread: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in &runs {
        *spread.entry(&r.node).or_default() += 1;
    }
    let window = to_e - from_e;
    println!(
        "cluster: {jobs} one-second jobs on {nodes} nodes (MariaDB), {:.0} s measured: {} runs = {:.0} runs/s \
         (expected {:.0}); missed fire times {missed}, run twice {twice}; spread {:?}",
        window,
        runs.len(),
        runs.len() as f64 / window,
        jobs as f64 * window,
        spread.values().collect::<Vec<_>>()
    );
    println!(
        "  fire lateness (start - fire time): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&late, 50.0) * 1e3,
        percentile(&late, 90.0) * 1e3,
        percentile(&late, 99.0) * 1e3,
        late.last().copied().unwrap_or(f64::NAN) * 1e3
    );
    Ok(())
}
