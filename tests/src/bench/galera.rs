//! The Galera workload: two nodes on a 3-member MariaDB Galera cluster started here (SQL on
//! 127.0.0.1:3351–3353, each node first on its own member and given all three), against the
//! same two nodes on the local MariaDB server, with the same one-second interval jobs; runs/s,
//! lateness (run end − fire time) and missed fire times from the history rows. The peer
//! column of these rows is the single server, not APScheduler.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ruqi_tests::galera::Galera;

use super::db::{Store, mysql_server};
use super::load::job_add_body;
use super::node::{Node, NodeDir};
use super::report::{Better, Cell, Row, Unit};
use super::workloads::{Ctx, add_jobs};
use super::{epoch_now, percentile, thousands};

/// Base port of the cluster (SQL on `BASE_PORT + i`; Galera's own ports 100, 200, 300 above).
const BASE_PORT: u16 = 3351;
/// At most this many jobs (two nodes share them; a larger load only measures saturation).
const MAX_JOBS: usize = 2_000;

/// One figure of [`Figures`].
pub type Figure = fn(&Figures) -> Option<f64>;

/// What two nodes did in the measured window.
pub struct Figures {
    /// Runs recorded with a fire time in the window, per second.
    pub runs_per_s: f64,
    /// Lateness (run end − fire time) p50, seconds.
    pub p50: Option<f64>,
    /// Lateness p99, seconds.
    pub p99: Option<f64>,
    /// Due fire times in the window with no run recorded.
    pub missed: f64,
}

/// Two nodes on database `name`, node A at `urls[0]`, node B at `urls[1]`; the harness reads
/// the history through `server`. With `spread`, the `n` jobs' fire times are spread evenly
/// over the second (as the interval workload's); otherwise they come as the adds did.
pub async fn two_nodes(
    ctx: &Ctx,
    server: &str,
    urls: [String; 2],
    n: usize,
    label: &str,
    spread: bool,
) -> anyhow::Result<Figures> {
    let secs = ctx.opts.sizes.interval_secs;
    let tag = ctx.opts.tag(label);
    let mut store = Store::create_on(server, &tag).await?;
    let result = async {
        let name = store.database().context("a MySQL store")?.to_owned();
        let dir = NodeDir::new()?;
        let (url_a, url_b) = (format!("{}/{name}", urls[0]), format!("{}/{name}", urls[1]));
        let (a, b) = tokio::join!(Node::start(&ctx.opts.ruqi, &url_a, &dir), Node::start(&ctx.opts.ruqi, &url_b, &dir));
        let (a, b) = (a?, b?);
        let out = async {
            store.connect().await?;
            if spread {
                super::interval::add_spread(ctx, &a, n, "i", label).await?;
            } else {
                let body = Arc::new(|i| job_add_body("interval", &format!("i{i}"), "echo:bench", "1s"));
                add_jobs(ctx, &a, n, &format!("{label}: adding"), body).await?;
            }
            let from = (epoch_now() + 2.0).ceil();
            let to = from + secs as f64;
            while epoch_now() < to + 2.0 {
                ctx.progress.update(&format!("{label}: {:.0}/{secs} s measured", (epoch_now() - from).max(0.0)));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let rows = store.runs_between(from, to).await?;
            let mut late: Vec<f64> = rows.iter().map(|r| r.end - r.fire).collect();
            late.sort_by(f64::total_cmp);
            Ok(Figures {
                runs_per_s: rows.len() as f64 / secs as f64,
                p50: percentile(&late, 50.0),
                p99: percentile(&late, 99.0),
                missed: (n as f64 * secs as f64 - rows.len() as f64).max(0.0),
            })
        }
        .await;
        a.stop().await;
        b.stop().await;
        out
    }
    .await;
    store.remove().await;
    result
}

/// The Galera rows (see the module doc).
pub async fn galera(ctx: &mut Ctx) -> anyhow::Result<()> {
    let n = ctx.opts.sizes.interval_jobs.min(MAX_JOBS);
    ctx.progress.update("galera: starting 3 members");
    let cluster = tokio::task::spawn_blocking(|| Galera::start(3, BASE_PORT))
        .await?
        .map_err(|e| anyhow::anyhow!("Galera cluster: {e}"))?;
    let single = mysql_server();
    let one = two_nodes(ctx, &single, [single.clone(), single.clone()], n, "galera_one", false).await;
    let hosts = |order: [usize; 3]| {
        let list: Vec<String> = order.iter().map(|i| cluster.addr(*i)).collect();
        format!("mysql://root@{}", list.join(","))
    };
    let three =
        two_nodes(ctx, &cluster.server_url(0), [hosts([0, 1, 2]), hosts([1, 2, 0])], n, "galera_three", false).await;
    drop(cluster);
    let what =
        format!("2 nodes, {} 1-s jobs, {} s, Galera 3 members", thousands(n as u64), ctx.opts.sizes.interval_secs);
    let cell = |r: &anyhow::Result<Figures>, f: Figure| match r {
        Ok(fig) => Cell::opt(f(fig)),
        Err(e) => Cell::failed(format!("{e:#}")),
    };
    let rows: [(&str, Unit, Better, Figure); 4] = [
        ("runs", Unit::PerSec, Better::Higher, |f| Some(f.runs_per_s)),
        ("lateness p50 (run end − fire time)", Unit::Millis, Better::Lower, |f| f.p50),
        ("lateness p99", Unit::Millis, Better::Lower, |f| f.p99),
        ("fire times missed", Unit::Count, Better::Lower, |f| Some(f.missed)),
    ];
    for (name, unit, better, f) in rows {
        ctx.report.push(Row::new("galera", format!("{what}: {name}"), unit, better, cell(&three, f), cell(&one, f)));
    }
    ctx.report.note("galera: the peer column is the same two nodes on one MariaDB server, not APScheduler");
    Ok(())
}
