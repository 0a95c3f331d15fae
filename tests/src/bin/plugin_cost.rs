//! `plugin_cost`: what a plugin costs the host, measured through the plugin runtime
//! directly (no HTTP, no store): the component's size, its first compile, its load from the
//! compile cache, the host's RSS after loading it, the cost of one run (`Runtime::execute`: take
//! the instance made ahead of it or make one, call, and leave the drop and the next instance to
//! the background), median and p99, the CPU per run (background work included), and the RSS the
//! runs added (pooled memory kept resident, the instance kept ready). Prints, never asserts.
//!
//! ```text
//! plugin_cost [--runs N] [--gap MS] FILE.wasm CMD [FILE.wasm CMD …]
//! ```
//! `--gap MS` waits that long between runs (a node's runs are a second apart: caches go cold).
//! Each file is measured in a fresh runtime with a fresh cache folder (or the folder
//! `PLUGIN_COST_CACHE` names, to skip compiling when profiling), in order; run it in a release
//! build (`cargo run --release -p ruqi-tests --bin plugin_cost -- …`). Without `--gap`, a warm
//! loop: runs follow each other at once (often before the background has made the next instance),
//! so its figures are not a node's; `make bench` measures `cmd_cost` in a node.

#![allow(clippy::print_stdout)] // a benchmark prints its figures

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use ruqi::plugin::{Compiler, Grants, Runtime};

/// The resident set of this process, in MiB (Linux), else 0.
fn rss_mib() -> f64 {
    ruqi_tests::cluster::memory_kib_of(std::process::id()).1 as f64 / 1024.0
}

/// CPU time this process has used so far (all threads).
fn cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID).map_or(Duration::ZERO, Duration::from)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let (mut runs, mut gap) = (200, Duration::ZERO);
    loop {
        match args.first().map(String::as_str) {
            Some("--runs") => runs = args.get(1).context("--runs N")?.parse()?,
            Some("--gap") => gap = Duration::from_millis(args.get(1).context("--gap MS")?.parse()?),
            _ => break,
        }
        args.drain(..2);
    }
    anyhow::ensure!(
        !args.is_empty() && args.len().is_multiple_of(2),
        "usage: plugin_cost [--runs N] [--gap MS] FILE.wasm CMD …"
    );
    println!(
        "| plugin | size | first compile | load from cache | RSS after load | run median | run p99 | CPU per run | RSS after runs |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for pair in args.chunks(2) {
        let (file, cmd) = (PathBuf::from(&pair[0]), pair[1].clone());
        let size = std::fs::metadata(&file)?.len() as f64 / 1e6;
        // `PLUGIN_COST_CACHE=DIR` keeps compiled code between invocations (for profiling runs).
        let temp = tempfile::tempdir()?;
        let cache = std::env::var_os("PLUGIN_COST_CACHE").map_or_else(|| temp.path().to_owned(), PathBuf::from);
        let work = tempfile::tempdir()?;
        let grants = Grants::default();
        let compile = {
            let rt = Runtime::new(work.path().into(), Some(cache.clone()))?.with_compiler(Compiler::InProcess);
            let t = Instant::now();
            rt.load_file(&file, grants.clone()).await?;
            t.elapsed()
        };
        let rss_before = rss_mib();
        let rt = Runtime::new(work.path().into(), Some(cache.clone()))?;
        let t = Instant::now();
        let plugin = rt.load_file(&file, grants.clone()).await?;
        let load = t.elapsed();
        let rss_after = rss_mib();
        let req = ruqi_tests::run_request(&cmd, "bench");
        for _ in 0..20 {
            rt.execute(&plugin, &req, None).await;
        }
        let mut samples = Vec::with_capacity(runs);
        let cpu_before = cpu_time();
        for _ in 0..runs {
            tokio::time::sleep(gap).await;
            let t = Instant::now();
            let outcome = rt.execute(&plugin, &req, None).await;
            samples.push(t.elapsed());
            anyhow::ensure!(outcome.success(), "run failed: {}", outcome.into_output());
        }
        // What a run leaves to the background (dropping its instance, making the next) is its CPU too.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let cpu = (cpu_time() - cpu_before) / runs as u32;
        let rss_runs = rss_mib();
        samples.sort();
        let at = |q: f64| ms(samples[((samples.len() - 1) as f64 * q) as usize]);
        println!(
            "| {} | {size:.2} MB | {:.0} ms | {:.1} ms | +{:.0} MiB | {:.3} ms | {:.3} ms | {:.3} ms | +{:.0} MiB |",
            file.file_name().unwrap_or_default().to_string_lossy(),
            ms(compile),
            ms(load),
            rss_after - rss_before,
            at(0.5),
            at(0.99),
            ms(cpu),
            rss_runs - rss_after,
        );
    }
    Ok(())
}
