//! The run rollups the dashboard's charts read (migration 0011): per minute and per hour,
//! outcome and node (runs, cost, a fire-time lateness histogram), and per day (UTC), job and node
//! (runs, failures, cost). A group of run ends adds to them with one statement per table, in the transaction that
//! records the ends; each node writes its own rows, so nodes never wait on each other's. The
//! overview sums them, never reading history: its cost does not grow with history.

use std::collections::BTreeMap;

use sqlx::{Database, Encode, QueryBuilder, Type};

use super::RunEnd;
use super::rows::{epoch_to_ts, ts_to_epoch};
use crate::clock::Timestamp;
use crate::model::{JobStats, LATENESS_BOUNDS_MS, Outcome, RunTrigger, StatsBucket};

/// How long the hour and day rollups are kept (the minutes: a day).
pub const KEEP: chrono::Duration = chrono::Duration::days(8);
/// The lateness histogram's columns.
const LATE_COLUMNS: [&str; 14] =
    ["l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9", "l10", "l11", "l12", "l13"];

/// A minute's or hour's row to add to.
#[derive(Debug, Default, Clone)]
pub struct MinuteAdd {
    runs: i64,
    cost: f64,
    late_n: i64,
    late: [i64; 14],
}

/// A day's row of one job to add to.
#[derive(Debug, Default, Clone)]
pub struct JobDayAdd {
    runs: i64,
    failures: i64,
    cost: f64,
    cost_max: f64,
}

/// Rows by (minute or hour, outcome), in key order (so two transactions lock them in the same
/// order).
pub type Buckets = BTreeMap<(i64, &'static str), MinuteAdd>;

/// The rows a group of ends adds to: by minute, by hour, by (day, job).
pub type Rollup = (Buckets, Buckets, BTreeMap<(i64, String), JobDayAdd>);

/// Adds what `ends` add to the rollups at `now` to `into` (a missed fire time counts as `missed`
/// at `now`).
pub fn rollup(into: &mut Rollup, ends: &[RunEnd], now: Timestamp) {
    let (minutes, hours, days) = into;
    for end in ends {
        let (at, outcome, cost, late, job) = match (&end.history, end.run_row_end()) {
            (Some(h), _) => {
                let Some(meta) = &h.run else { continue };
                let late = matches!(meta.trigger, RunTrigger::Scheduled | RunTrigger::Retry)
                    .then(|| (meta.started - end.run.due).num_microseconds().unwrap_or(0).max(0) as f64 / 1000.0);
                (meta.ended, meta.outcome.as_str(), h.cost, late, h.job_id.as_str())
            }
            // A scheduled fire time skipped (missed, or one its calendar no longer admits).
            (None, _) if end.run.trigger == RunTrigger::Scheduled => {
                (now, "missed", 0.0, None, end.run.job.id.as_str())
            }
            _ => continue,
        };
        let secs = ts_to_epoch(at) as i64;
        for (map, width) in [(&mut *minutes, 60), (&mut *hours, 3600)] {
            let m = map.entry((secs - secs.rem_euclid(width), outcome)).or_default();
            m.runs += 1;
            m.cost += cost;
            if let Some(ms) = late {
                m.late_n += 1;
                m.late[LATENESS_BOUNDS_MS.iter().position(|b| ms <= *b).unwrap_or(13)] += 1;
            }
        }
        if outcome != "missed" {
            let j = days.entry((secs - secs.rem_euclid(86_400), job.to_owned())).or_default();
            j.runs += 1;
            j.failures += i64::from(outcome == Outcome::Failed.as_str() || outcome == Outcome::Timeout.as_str());
            j.cost += cost;
            j.cost_max = j.cost_max.max(cost);
        }
    }
}

/// `INSERT … VALUES …` of the minute (`table` `ruqi_stats_minute`, `key` `minute`) or hour rows;
/// the caller adds the dialect's add-on-conflict clause ([`bucket_conflict`]).
pub fn push_buckets<'a, DB>(q: &mut QueryBuilder<'a, DB>, table: &str, key: &str, rows: &'a Buckets, node: &'a str)
where
    DB: Database,
    f64: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
{
    q.push(format!("INSERT INTO {table} ({key}, outcome, node, runs, cost_sum, late_n, {}) ", LATE_COLUMNS.join(", ")));
    q.push_values(rows, |mut b, ((start, outcome), add)| {
        b.push_bind(*start as f64)
            .push_bind(*outcome)
            .push_bind(node)
            .push_bind(add.runs)
            .push_bind(add.cost)
            .push_bind(add.late_n);
        for n in add.late {
            b.push_bind(n);
        }
    });
}

/// `INSERT … VALUES …` of the job-day rows; the caller adds [`job_day_conflict`].
pub fn push_job_days<'a, DB>(q: &mut QueryBuilder<'a, DB>, rows: &'a BTreeMap<(i64, String), JobDayAdd>, node: &'a str)
where
    DB: Database,
    f64: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
{
    q.push("INSERT INTO ruqi_stats_job_day (day, job_id, node, runs, failures, cost_sum, cost_max) ");
    q.push_values(rows, |mut b, ((day, job), add)| {
        b.push_bind(*day as f64)
            .push_bind(job.as_str())
            .push_bind(node)
            .push_bind(add.runs)
            .push_bind(add.failures)
            .push_bind(add.cost)
            .push_bind(add.cost_max);
    });
}

/// The clause that adds a minute or hour row to the one stored: `new(col)` names the inserted
/// value in the dialect (`excluded.col`, `VALUES(col)`).
pub fn bucket_conflict(prefix: &str, new: impl Fn(&str) -> String) -> String {
    let mut cols = vec!["runs", "cost_sum", "late_n"];
    cols.extend(LATE_COLUMNS);
    let sets: Vec<String> = cols.iter().map(|c| format!("{c} = {c} + {}", new(c))).collect();
    format!("{prefix} {}", sets.join(", "))
}

/// The clause that adds a job-day row to the one stored.
pub fn job_day_conflict(prefix: &str, new: impl Fn(&str) -> String) -> String {
    format!(
        "{prefix} runs = runs + {}, failures = failures + {}, cost_sum = cost_sum + {}, cost_max = CASE WHEN cost_max > {} THEN cost_max ELSE {} END",
        new("runs"),
        new("failures"),
        new("cost_sum"),
        new("cost_max"),
        new("cost_max")
    )
}

/// The sum of an integer column, as an integer in both dialects (MySQL sums to a decimal).
fn sum(column: &str) -> String {
    format!("CAST(SUM({column}) AS SIGNED)")
}

/// The minutes since (binds: since): minute, outcome, runs and the histogram, summed over nodes.
pub fn minutes_sql() -> String {
    let late: Vec<String> = LATE_COLUMNS.iter().map(|c| sum(c)).collect();
    format!(
        "SELECT minute, outcome, {}, {} FROM ruqi_stats_minute WHERE minute >= ? GROUP BY minute, outcome",
        sum("runs"),
        late.join(", ")
    )
}

/// The hours since (binds: since), summed over nodes.
pub fn hours_sql() -> String {
    let late: Vec<String> = LATE_COLUMNS.iter().map(|c| sum(c)).collect();
    format!(
        "SELECT hour, outcome, {}, {} FROM ruqi_stats_hour WHERE hour >= ? GROUP BY hour, outcome",
        sum("runs"),
        late.join(", ")
    )
}

/// The jobs of the days since (binds: since), `order` first, 10 of them.
pub fn jobs_sql(order: &str) -> String {
    format!(
        "SELECT job_id, {}, {}, SUM(cost_sum), MAX(cost_max) FROM ruqi_stats_job_day WHERE day >= ?
         GROUP BY job_id HAVING SUM(runs) > 0 ORDER BY {order} LIMIT 10",
        sum("runs"),
        sum("failures")
    )
}
/// The slowest jobs first.
pub const SLOWEST: &str = "SUM(cost_sum) / SUM(runs) DESC, job_id";
/// The most failing jobs first (those with failures).
pub const FAILING: &str = "SUM(failures) DESC, job_id";

/// Rolls rows `(start, outcome, runs, l0..l13)` up into buckets.
pub fn buckets(rows: Vec<sqlx_row::StatsRow>) -> Vec<StatsBucket> {
    let mut by: BTreeMap<i64, StatsBucket> = BTreeMap::new();
    for r in rows {
        let b = by
            .entry(r.start as i64)
            .or_insert_with(|| StatsBucket { start: epoch_to_ts(r.start), ..Default::default() });
        *b.runs.entry(r.outcome).or_default() += r.runs.max(0) as u64;
        for (i, n) in r.late.iter().enumerate() {
            b.late[i] += (*n).max(0) as u64;
        }
    }
    by.into_values().collect()
}

/// Job rows `(job_id, runs, failures, cost_sum, cost_max)` as stats.
pub fn job_stats(rows: Vec<(String, i64, i64, f64, f64)>, failing: bool) -> Vec<JobStats> {
    rows.into_iter()
        .filter(|r| !failing || r.2 > 0)
        .map(|(job_id, runs, failures, cost, cost_max)| JobStats {
            job_id,
            runs: runs.max(0) as u64,
            failures: failures.max(0) as u64,
            cost_avg: if runs > 0 { cost / runs as f64 } else { 0.0 },
            cost_max,
        })
        .collect()
}

/// Rows of the bucket queries, decoded by position.
pub mod sqlx_row {
    /// One `(start, outcome, runs, l0..l13)` row.
    #[derive(Debug)]
    pub struct StatsRow {
        /// The bucket's start, epoch seconds.
        pub start: f64,
        /// The outcome.
        pub outcome: String,
        /// Runs.
        pub runs: i64,
        /// The lateness histogram.
        pub late: [i64; 14],
    }

    impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for StatsRow
    where
        usize: sqlx::ColumnIndex<R>,
        f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
            let mut late = [0i64; 14];
            for (i, n) in late.iter_mut().enumerate() {
                *n = row.try_get(3 + i)?;
            }
            Ok(Self { start: row.try_get(0)?, outcome: row.try_get(1)?, runs: row.try_get(2)?, late })
        }
    }
}

/// Adds `$rollup` (a `&Rollup`) to the rollups on `$conn` (a `$db` connection), as `$node`'s
/// rows: one statement per table. `$prefix(keys)` is the dialect's on-conflict clause for the
/// table's keys, `$new(col)` how it names an inserted value.
macro_rules! write_rollups {
    ($conn:expr, $db:ty, $rollup:expr, $node:expr, $prefix:expr, $new:expr) => {{
        use $crate::store::stats as rollups;
        let (minutes, hours, days): &rollups::Rollup = $rollup;
        for (table, key, rows) in [("ruqi_stats_minute", "minute", minutes), ("ruqi_stats_hour", "hour", hours)] {
            if !rows.is_empty() {
                let mut q = sqlx::QueryBuilder::<$db>::new("");
                rollups::push_buckets(&mut q, table, key, rows, $node);
                q.push(rollups::bucket_conflict(&$prefix(&format!("{key}, outcome, node")), $new));
                q.build().execute(&mut *$conn).await?;
            }
        }
        if !days.is_empty() {
            let mut q = sqlx::QueryBuilder::<$db>::new("");
            rollups::push_job_days(&mut q, days, $node);
            q.push(rollups::job_day_conflict(&$prefix("day, job_id, node"), $new));
            q.build().execute(&mut *$conn).await?;
        }
    }};
}
pub(crate) use write_rollups;

/// Deletes the rollups older than their keep (`before` = now − [`KEEP`]; minutes: a day).
macro_rules! prune_rollups {
    ($pool:expr, $before:expr) => {{
        let before: $crate::clock::Timestamp = $before;
        let day_ago = $crate::store::rows::ts_to_epoch(before + $crate::store::stats::KEEP - chrono::Duration::days(1));
        let before = $crate::store::rows::ts_to_epoch(before);
        for (sql, bound) in [
            ("DELETE FROM ruqi_stats_minute WHERE minute < ?", day_ago),
            ("DELETE FROM ruqi_stats_hour WHERE hour < ?", before),
            ("DELETE FROM ruqi_stats_job_day WHERE day < ?", before),
        ] {
            sqlx::query(sql).bind(bound).execute($pool).await?;
        }
    }};
}
pub(crate) use prune_rollups;
