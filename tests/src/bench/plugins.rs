//! The `plugins` workload: what one run of a plugin costs inside a node, for the echo
//! plugin of each language — the Rust `template` (`echo:`), and the Python and JavaScript
//! templates `make plugins` builds (`pyecho:`, `jsecho:`). A release `ruqi serve` on SQLite runs
//! one `1s` interval job per plugin, staggered by a third of a second so runs never overlap;
//! the figures are the history rows' `cmd_cost`, median and p99, after each job's first
//! runs. The peer column is the cost goal (0.1 ms for Rust, 0.5 ms for the others).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use ruqi_tests::{component_digest, copy_compiled};
use serde_json::json;

use super::db::Kind;
use super::node::{Node, NodeDir};
use super::percentile;
use super::report::{Better, Cell, Row, Unit};
use super::workloads::{Ctx, with_node};

/// The plugins measured: (label, component, cmd, goal in seconds).
fn plugins() -> [(&'static str, PathBuf, &'static str, f64); 3] {
    let polyglot = ruqi_tests::polyglot_dir().join("wasm");
    [
        ("Rust echo", ruqi_tests::wasm("template"), "echo:bench", 100e-6),
        ("Python echo", polyglot.join("template-python.wasm"), "pyecho:bench", 500e-6),
        ("JS echo", polyglot.join("template-js.wasm"), "jsecho:bench", 500e-6),
    ]
}

/// Runs of each job left out of the figures: the first run after a load.
const SKIPPED: usize = 2;

/// `job_add` until the node accepts `cmd` (its plugin may still be compiling), up to 3 minutes.
async fn add_when_loaded(node: &Node, id: &str, cmd: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let body = json!({"job_trigger": "interval", "job_id": id, "job_name": "bench", "cmd": cmd, "rule": "1s"});
    loop {
        match node.call("job_add", body.clone()).await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > Duration::from_secs(180) => return Err(e.context(format!("adding {cmd}"))),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The `plugins` workload.
pub async fn plugin_runs(ctx: &mut Ctx) -> anyhow::Result<()> {
    let runs = ctx.opts.sizes.plugin_runs;
    let list = plugins();
    for (_, file, _, _) in &list {
        anyhow::ensure!(file.is_file(), "{} missing (make plugins builds it)", file.display());
    }
    let progress = &ctx.progress;
    let costs = with_node(ctx, Kind::Sqlite, "plugins", async |node, store, dir: &NodeDir| {
        for (_, file, _, _) in &list {
            let name = file.file_name().context("file name")?;
            std::fs::copy(file, dir.plugins().join(name))?;
            // The polyglot test's compiled code: the node need not compile 12–18 MB components again.
            let digest = component_digest(file)?;
            copy_compiled(&ruqi_tests::polyglot_dir().join("cache"), &dir.plugins().join(".cache"), &[digest]);
        }
        // The node loads files dropped into its folder; the first adds wait until it has.
        for (i, (_, _, cmd, _)) in list.iter().enumerate() {
            progress.update(&format!("plugins: loading {cmd}"));
            let due = Instant::now() + Duration::from_millis(333 * i as u64);
            add_when_loaded(node, &format!("p{i}"), cmd).await?;
            tokio::time::sleep_until(due.into()).await;
        }
        let wanted = (runs + SKIPPED) * list.len();
        let started = Instant::now();
        loop {
            let (count, _) = store.history_progress().await?;
            progress.update(&format!("plugins: {count}/{wanted} runs"));
            if count as usize >= wanted {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(runs as u64 * 2 + 120),
                "only {count} of {wanted} runs recorded"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        store.costs_by_cmd().await
    })
    .await?;
    for (label, _, cmd, goal) in &list {
        let mut mine: Vec<(i64, bool, f64)> = costs.iter().filter(|c| c.0 == *cmd).map(|c| (c.1, c.2, c.3)).collect();
        mine.sort_by_key(|c| c.0);
        let failed = mine.iter().filter(|c| !c.1).count();
        let mut cost: Vec<f64> = mine.iter().skip(SKIPPED).map(|c| c.2).collect();
        cost.sort_by(f64::total_cmp);
        for (what, p) in [("median", 50.0), ("p99", 99.0)] {
            let ruqi = if failed > 0 {
                Cell::failed(format!("{failed} runs failed"))
            } else {
                Cell::opt(percentile(&cost, p))
            };
            let goal = if p == 50.0 { Cell::Value(*goal) } else { Cell::na() };
            let row = Row::new(
                "plugins",
                format!("{label} `{cmd}`: cmd_cost {what}"),
                Unit::Micros,
                Better::Lower,
                ruqi,
                goal,
            );
            ctx.report.push(row);
        }
    }
    ctx.report.note(format!(
        "plugins: cmd_cost of {runs} runs per plugin (1 s apart; first {SKIPPED} left out); the peer column is the goal for the median"
    ));
    Ok(())
}
