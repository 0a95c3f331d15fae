//! The MySQL/MariaDB store: production persistence and high availability. Any number of
//! nodes share one database; the seed's tables (migration 0001) plus the claim columns of 0002.
//!
//! A claim is one short transaction: `SELECT … FOR UPDATE SKIP LOCKED` picks due rows no other
//! node is claiming at that instant, and an `UPDATE` writes this node's name and lease on those
//! still claimable (it repeats the condition: on Galera a row that another member's node has
//! just claimed can look free to the read), so two nodes never claim the same row and never
//! wait for each other. Only the rows the `UPDATE` took are run. Connections use READ
//! COMMITTED, so a claim locks only the rows it takes (no gap locks). The claim stays on the
//! row while the run executes (renewed by the dispatcher); `finish_run` writes the history row
//! (`UNIQUE (job_id, fire_time)` of the runs a fire time made: a racing second row is dropped,
//! the first stands) and
//! reschedules, only if this node still holds the claim for that fire time.
//!
//! Datetimes are written as text and read back with `DATE_FORMAT`, so both backends decode
//! the same row types (`rows`). A transaction that fails is rolled back before its connection
//! goes back to the pool; deadlocks and lock-wait timeouts, also when reported at commit (a
//! Galera certification failure), are retried a few times, a few random milliseconds apart.
//!
//! On Galera (`wsrep_on`), every connection reads causally (`wsrep_sync_wait`), and nodes
//! migrating at once take turns through a row every member sees (`migrate_in_turn`).
//! [`JobStore::database_time`] is the server's clock, which the nodes sharing it follow.
//!
//! An address may name several hosts (`mysql://user:pass@h1:3306,h2:3306/db`): one pool each,
//! the first that answers and takes writes in use, a task moving off it when it fails a check
//! and back to an earlier host once that one passes checks again (`Hosts`, `watch_hosts`).

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono_tz::Tz;
use futures_util::StreamExt;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::{Executor, MySql, QueryBuilder};

use super::after::{
    ALERT_COLUMNS, ALERT_ORDER, AlertRow, CHAINING_JOBS, DUE_ALERTS, DUE_DEADLINES, DUE_PROBES, END_ALERT,
    MOVE_DEADLINE, PENDING_RUNS, REQUEUE_LOST_CHAINED, apply_after_end, push_alert_filter, queue_alert,
};
use super::audit::{
    AUDIT_COLUMNS, AUDIT_ORDER, AuditRow, VERSION, VERSIONS, VersionRow, insert_audits, push_audit_filter,
};
use super::legacy::{self, AdoptionReport, UNADOPTED, UNADOPTED_LEASE};
use super::query::{
    CLAIM_JOB, DROP_RUNS, END_LOST_RUNS, END_RUN, END_RUN_KEEP_OUTPUT, HISTORY_ORDER, HOLD_UNADOPTED, INSERT_HISTORY,
    INSERT_RUN, JOB_ORDER, KILL_REQUESTS, LIVE, LOST_RUNS, NEW_JOBS_PER_INSERT, NODE_FORGET, NODE_STOPPED, NODES_SINCE,
    PARK_JOB, PLAN_RETRY, RELEASE_CLAIM, RELEASE_CLAIMS, RELEASE_SUPERSEDED, REMOVE_JOB, RENEW_CLAIM, RENEW_RUNS,
    REQUEST_KILL, RUN_COLUMNS, RUN_ORDER, RUN_OUTPUT, UPDATE_JOB, bind_health, bind_plan_retry, bind_run, insert_jobs,
    job_count, paged_select, push_claimed_runs, push_history_filter, push_history_values, push_job_filter,
    push_old_runs, push_page, push_run_ends, push_run_filter, push_run_ids,
};
use super::rows::{
    HistoryRow, JobRow, RETRY_COLUMNS, RunRow, claimed_runs, epoch_to_ts, job_state, ts_to_epoch, ts_to_text,
};
use super::stats::{Rollup, prune_rollups, write_rollups};
use super::{DeadlineMove, FinishOutcome, JobStore, RowStream, RunEnd, StoreError, channel_stream};
use crate::clock::Timestamp;
use crate::model::StatsOverview;
use crate::model::{
    AlertDraft, AlertFilter, AlertRecord, AlertState, AuditEntry, AuditFilter, ClaimedRun, HistoryFilter,
    HistoryRecord, Job, JobFilter, JobId, JobVersion, NodeSeen, Outcome, Page, RetryPlan, RunFilter, RunRecord,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/mysql");

/// The `ruqi_jobs` columns of a [`JobRow`], datetimes as text.
const JOB_COLUMNS: &str = "id, next_run_time, job_state, job_name, job_trigger, job_rule, \
     DATE_FORMAT(u_time, '%Y-%m-%d %H:%i:%s.%f') AS u_time, DATE_FORMAT(c_time, '%Y-%m-%d %H:%i:%s.%f') AS c_time, revision, \
     fail_streak, paused_reason, probe_at, probe_wait, deadline_fire";
/// The `ruqi_jobs_history` columns of a [`HistoryRow`], datetimes as text.
const HISTORY_COLUMNS: &str = "id, job_id, job_name, cmd, cmd_is_success, cmd_output, cmd_cost, scheduler_name, \
     DATE_FORMAT(c_time, '%Y-%m-%d %H:%i:%s.%f') AS c_time, fire_time, run_id, started, ended, attempt, run_trigger, outcome";
/// Retries of a transaction that hit a deadlock, a lock-wait timeout or (Galera) a conflict at commit.
const TX_RETRIES: u32 = 5;

/// See the module doc.
#[derive(Debug, Clone)]
pub struct MysqlStore {
    hosts: Arc<Hosts>,
    tz: Tz,
    /// The earliest instant a claimed row can be taken over (its lease run out and it due), as
    /// the last [`JobStore::next_wakeup`] read it, in epoch microseconds (`i64::MAX`: no claimed
    /// row; `i64::MIN`: not read yet). A claim looks for such rows only once it has come: the
    /// claimed due rows are every run in flight on every node, and the rows a claim reads
    /// otherwise are the unclaimed due ones, a range of the `(claim_owner, next_run_time)`
    /// index. The wake-up reads it on every pass, so a lease that runs out is taken over by the
    /// pass it wakes, and a pass woken by it always looks (no pass finds nothing and wakes again).
    takeover_at: Arc<std::sync::atomic::AtomicI64>,
}

/// The database hosts a store address names, one pool each, and the one in use: the first
/// that answers and is ready, moved off when it fails and back when it has been ready again
/// for a while (see [`MysqlStore::watch_hosts`]).
#[derive(Debug)]
struct Hosts {
    /// Each host, in the address's order.
    pools: Vec<Host>,
    /// The index of the one in use.
    current: AtomicUsize,
}

/// One database host of a store's address and its connection pool.
#[derive(Debug)]
struct Host {
    /// `host:port`.
    label: String,
    options: MySqlConnectOptions,
    /// Replaced by a fresh pool when the store leaves the host (see [`Host::renew`]).
    pool: std::sync::RwLock<MySqlPool>,
}

impl Host {
    fn new(label: String, options: MySqlConnectOptions, pool: MySqlPool) -> Self {
        Self { label, options, pool: std::sync::RwLock::new(pool) }
    }

    /// The host's pool (a handle: cloning shares it).
    fn pool(&self) -> MySqlPool {
        self.pool.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Leaves the host for `to`: whatever still waits on the host's pool for a connection (a
    /// scheduler pass that began before the store left a dead host) gets one to `to` or fails
    /// at once, instead of waiting out the acquire timeout; a fresh pool, connecting when first
    /// used, takes the old one's place.
    ///
    /// A wait for a free slot ends when the old pool is closed (and its caller tries again on
    /// the host in use). A wait that is connecting does not look at the close: sqlx retries a
    /// refused connect (a killed server) until the acquire timeout. The old pool's next attempt
    /// goes to `to` instead, within its backoff (at most a fifth of that timeout), and the
    /// connection is closed when given back to the closed pool.
    fn renew(&self, to: &Host) {
        let fresh = MysqlStore::pool_options().connect_lazy_with(self.options.clone());
        let old = std::mem::replace(&mut *self.pool.write().unwrap_or_else(std::sync::PoisonError::into_inner), fresh);
        old.set_connect_options(to.options.clone());
        tokio::spawn(async move { old.close().await });
    }
}

impl Hosts {
    /// The pool of the host in use.
    fn current(&self) -> MySqlPool {
        self.pools[self.current.load(Ordering::Acquire)].pool()
    }
}

/// How often a store with several hosts checks the one in use (and an earlier one it left).
const HOST_CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a host check may take before the host counts as failed.
const HOST_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Checks in a row an earlier host must pass before the store moves back to it.
const HOST_BACK_AFTER: u32 = 5;

/// A deadlock (1213) or lock-wait timeout (1205): the transaction can simply run again.
fn is_transient(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|m| m.number() == 1213 || m.number() == 1205),
        _ => false,
    }
}

/// Whether a one-row `SHOW … LIKE 'name'` answers `ON` (no row: the server has no such
/// variable, as MySQL has no `wsrep_*`; MariaDB shows them even without Galera).
async fn show_on(conn: &mut MySqlConnection, show: &'static str) -> Result<bool, sqlx::Error> {
    let row: Option<(String, String)> = sqlx::query_as(show).fetch_optional(&mut *conn).await?;
    Ok(row.is_some_and(|(_, v)| v.eq_ignore_ascii_case("ON")))
}

/// The triggers that keep `ruqi_job_count` (migration 0012): each change of the number of jobs in
/// RuQi's format (`ruqi_format`, computed from `job_state`) added to the writer's slot.
const JOB_COUNT_TRIGGERS: [&str; 3] = [
    "CREATE TRIGGER IF NOT EXISTS ruqi_job_count_insert AFTER INSERT ON ruqi_jobs FOR EACH ROW
     INSERT INTO ruqi_job_count (slot, n) VALUES (COALESCE(@ruqi_count_slot, 0), COALESCE(NEW.ruqi_format, 0))
     ON DUPLICATE KEY UPDATE n = n + VALUES(n)",
    "CREATE TRIGGER IF NOT EXISTS ruqi_job_count_delete AFTER DELETE ON ruqi_jobs FOR EACH ROW
     INSERT INTO ruqi_job_count (slot, n) VALUES (COALESCE(@ruqi_count_slot, 0), -COALESCE(OLD.ruqi_format, 0))
     ON DUPLICATE KEY UPDATE n = n + VALUES(n)",
    "CREATE TRIGGER IF NOT EXISTS ruqi_job_count_update AFTER UPDATE ON ruqi_jobs FOR EACH ROW
     IF NOT (NEW.ruqi_format <=> OLD.ruqi_format) THEN
         INSERT INTO ruqi_job_count (slot, n)
         VALUES (COALESCE(@ruqi_count_slot, 0), COALESCE(NEW.ruqi_format, 0) - COALESCE(OLD.ruqi_format, 0))
         ON DUPLICATE KEY UPDATE n = n + VALUES(n);
     END IF",
];

/// `wsrep_sync_wait` on Galera: causal reads for `SELECT` (1) and for `UPDATE`/`DELETE` (2).
const WSREP_SYNC_WAIT: u32 = 3;

/// How long a node's turn at migrating lasts at most: another node takes the turn over after
/// it (the node died migrating), and gives up waiting after twice it.
const MIGRATION_TURN: Duration = Duration::from_secs(300);
/// How often a node waiting for its turn at migrating looks again.
const MIGRATION_TURN_POLL: Duration = Duration::from_millis(250);

/// Seconds a transaction may sit idle on the server before MariaDB ends it (see
/// `pool_options`).
const IDLE_TRANSACTION_TIMEOUT_S: u32 = 2;

impl MysqlStore {
    /// Connects to `url` (`mysql://user:pass@host:port/db`, `mariadb://` too; several hosts as
    /// `host1:port,host2:port`) and, when `migrate`, applies the migrations (several nodes
    /// starting at once take turns, on Galera too: see [`MysqlStore::migrate_in_turn`]). Without
    /// `migrate`, a database whose migrations are behind is refused with a message naming
    /// `ruqi migrate`. With several hosts, the first that answers and is ready is used, and a
    /// task watches it (see [`MysqlStore::watch_hosts`]).
    pub async fn open(url: &str, tz: Tz, migrate: bool) -> Result<Self, StoreError> {
        let hosts = Arc::new(Self::connect_hosts(url).await?);
        let pool = &hosts.current();
        if migrate {
            Self::migrate_in_turn(pool).await?;
        } else {
            let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = 1")
                    .fetch_one(pool)
                    .await
                    .unwrap_or(None);
            if applied.unwrap_or(0) < latest {
                return Err(StoreError::NotMigrated(format!(
                    "the database is at migration {} of {latest}; run `ruqi migrate` (or serve without --no-migrate)",
                    applied.unwrap_or(0)
                )));
            }
        }
        if hosts.pools.len() > 1 {
            tokio::spawn(Self::watch_hosts(Arc::downgrade(&hosts)));
        }
        Ok(Self { hosts, tz, takeover_at: Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN)) })
    }

    /// Applies the migrations, one node at a time across the whole database, Galera included.
    ///
    /// sqlx's own lock (`GET_LOCK`) holds on one server only: two Galera members grant it at
    /// once. So a node first takes its turn in a row every member sees: a conditional insert of
    /// `ruqi_migration_turn`'s one row, naming this node, that takes the row only when it is
    /// free or its turn ran out (a node that died migrating). Two members writing the row at
    /// once conflict at commit and one write loses; reads are causal (`wsrep_sync_wait`, see
    /// [`MysqlStore::pool_options`]), so the loser sees the winner's name and waits. The turn
    /// ends when the row is deleted.
    async fn migrate_in_turn(pool: &MySqlPool) -> Result<(), StoreError> {
        pool.execute(
            "CREATE TABLE IF NOT EXISTS ruqi_migration_turn (id TINYINT NOT NULL PRIMARY KEY,
             owner VARCHAR(64) NOT NULL, until DOUBLE NOT NULL) ENGINE = InnoDB",
        )
        .await?;
        let me = uuid::Uuid::new_v4().simple().to_string();
        let waited = std::time::Instant::now();
        let mut said = false;
        loop {
            let take = sqlx::query(
                "INSERT INTO ruqi_migration_turn (id, owner, until) VALUES (1, ?, UNIX_TIMESTAMP(NOW(6)) + ?)
                 ON DUPLICATE KEY UPDATE owner = IF(until < UNIX_TIMESTAMP(NOW(6)), VALUES(owner), owner),
                 until = IF(owner = VALUES(owner), VALUES(until), until)",
            )
            .bind(&me)
            .bind(MIGRATION_TURN.as_secs_f64())
            .execute(pool)
            .await
            .map_err(StoreError::from);
            match take {
                Ok(_) => {}
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(e),
            }
            let owner: Option<String> =
                sqlx::query_scalar("SELECT owner FROM ruqi_migration_turn WHERE id = 1").fetch_optional(pool).await?;
            if owner.as_deref() == Some(me.as_str()) {
                break;
            }
            if waited.elapsed() > MIGRATION_TURN * 2 {
                return Err(StoreError::NotMigrated(format!(
                    "another node has been migrating this database for {:?} (the row of ruqi_migration_turn)",
                    waited.elapsed()
                )));
            }
            if !said {
                tracing::info!("another node is migrating the database; waiting for its turn to end");
                said = true;
            }
            tokio::time::sleep(MIGRATION_TURN_POLL).await;
        }
        let result = MIGRATOR.run(pool).await;
        if result.is_ok() {
            Self::keep_job_count(pool).await;
        }
        let ended =
            sqlx::query("DELETE FROM ruqi_migration_turn WHERE id = 1 AND owner = ?").bind(&me).execute(pool).await;
        if let Err(e) = ended {
            tracing::warn!(error = %e, "cannot end this node's migration turn; it runs out by itself");
        }
        Ok(result?)
    }

    /// Creates the triggers that keep `ruqi_job_count` (migration 0012) and, once they exist, its
    /// starting count (slot -1). A server that refuses them (no `TRIGGER` privilege, or a binary
    /// log without `SUPER`) leaves the totals counted: this is logged, not an error.
    ///
    /// The starting count is the number of jobs minus the other slots' sum, both read in one
    /// snapshot: a change committed after the triggers exist moves both alike, so any snapshot
    /// gives the same start. It is taken again when the insert trigger is not the one it was
    /// taken with (the table was restored from a dump, with or without its triggers).
    async fn keep_job_count(pool: &MySqlPool) {
        let kept = async {
            let triggers: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.TRIGGERS
                 WHERE TRIGGER_SCHEMA = DATABASE()
                 AND TRIGGER_NAME IN ('ruqi_job_count_insert', 'ruqi_job_count_delete', 'ruqi_job_count_update')",
            )
            .fetch_one(pool)
            .await?;
            if triggers < JOB_COUNT_TRIGGERS.len() as i64 {
                pool.execute("DELETE FROM ruqi_job_count WHERE slot = -1").await?;
                for trigger in JOB_COUNT_TRIGGERS {
                    pool.execute(trigger).await?;
                }
            }
            let since: Option<String> = sqlx::query_scalar(
                "SELECT CAST(CREATED AS CHAR) FROM information_schema.TRIGGERS
                 WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME = 'ruqi_job_count_insert'",
            )
            .fetch_optional(pool)
            .await?;
            let started: Option<Option<String>> =
                sqlx::query_scalar("SELECT since FROM ruqi_job_count WHERE slot = -1").fetch_optional(pool).await?;
            if started.as_ref() == Some(&since) {
                return Ok(());
            }
            pool.execute("DELETE FROM ruqi_job_count WHERE slot = -1").await?;
            let mut conn = pool.acquire().await?;
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").await?;
            conn.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT").await?;
            let start: Result<i64, sqlx::Error> = sqlx::query_scalar(
                "SELECT CAST((SELECT COUNT(*) FROM ruqi_jobs WHERE ruqi_format = 1)
                      - (SELECT COALESCE(SUM(n), 0) FROM ruqi_job_count WHERE slot <> -1) AS SIGNED)",
            )
            .fetch_one(&mut *conn)
            .await;
            conn.execute("COMMIT").await?;
            sqlx::query("INSERT IGNORE INTO ruqi_job_count (slot, n, since) VALUES (-1, ?, ?)")
                .bind(start?)
                .bind(since)
                .execute(&mut *conn)
                .await?;
            Ok::<(), sqlx::Error>(())
        };
        if let Err(e) = kept.await {
            tracing::warn!(
                error = %e,
                "job_list's totals are counted at each listing: ruqi_job_count cannot be kept (are triggers allowed?)"
            );
        }
    }

    /// The number of jobs `filter` selects: without a filter, the sum of `ruqi_job_count`'s
    /// slots once its triggers run (see [`MysqlStore::keep_job_count`]), else counted.
    async fn count_jobs(&self, filter: &JobFilter) -> Result<i64, StoreError> {
        if *filter == JobFilter::default() {
            let (sum, first): (Option<i64>, Option<i16>) =
                sqlx::query_as("SELECT CAST(SUM(n) AS SIGNED), MIN(slot) FROM ruqi_job_count")
                    .fetch_one(&self.pool())
                    .await?;
            if let (Some(sum), Some(-1)) = (sum, first) {
                return Ok(sum);
            }
        }
        Ok(job_count::<MySql>(filter).build_query_scalar().fetch_one(&self.pool()).await?)
    }

    /// One try of [`JobStore::add_jobs`].
    async fn add_jobs_once(
        &self,
        jobs: &[Job],
        audits: &[(AuditEntry, Option<String>)],
        atomic: bool,
    ) -> Result<Vec<bool>, StoreError> {
        // Per chunk: the ids already taken are read, the rest go in one multi-row insert. A job
        // added by someone else in between (or an id equal under the column's collation) fails
        // that insert; the chunk is then inserted row by row, each taken id refused alone.
        let new_jobs = super::NewJobs::new(jobs);
        let mut inserted: HashSet<&str> = HashSet::with_capacity(new_jobs.fresh.len());
        let mut tx = self.pool().begin().await?;
        for chunk in new_jobs.fresh.chunks(NEW_JOBS_PER_INSERT) {
            let mut q = QueryBuilder::<MySql>::new("SELECT id FROM ruqi_jobs WHERE id IN (");
            let mut ids = q.separated(", ");
            for j in chunk {
                ids.push_bind(j.id.as_str());
            }
            q.push(")");
            let taken: HashSet<String> = q.build_query_scalar().fetch_all(&mut *tx).await?.into_iter().collect();
            let new: Vec<&Job> = chunk.iter().copied().filter(|j| !taken.contains(j.id.as_str())).collect();
            if new.is_empty() {
                continue;
            }
            match insert_jobs::<MySql>(&new).build().execute(&mut *tx).await {
                Ok(_) => inserted.extend(new.iter().map(|j| j.id.as_str())),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    for job in new {
                        match insert_jobs::<MySql>(&[job]).build().execute(&mut *tx).await {
                            Ok(_) => {
                                inserted.insert(job.id.as_str());
                            }
                            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        let added = new_jobs.added(|id| inserted.contains(id));
        if atomic && added.contains(&false) {
            tx.rollback().await?;
            return Ok(added);
        }
        for chunk in super::audits_of_added(audits, &added).chunks(super::AUDITS_PER_INSERT) {
            insert_audits!(tx, MySql, chunk);
        }
        tx.commit().await?;
        Ok(added)
    }

    /// The pool of the host in use.
    fn pool(&self) -> MySqlPool {
        self.hosts.current()
    }

    /// The addresses of each host `url` names (`user:pass@h1:3306,h2:3306/db?…`), in order.
    fn split_hosts(url: &str) -> Vec<String> {
        let url = match url.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => url.to_owned(),
        };
        let Some(rest) = url.strip_prefix("mysql://") else { return vec![url] };
        let (authority, tail) = rest.split_once('/').map_or((rest, String::new()), |(a, t)| (a, format!("/{t}")));
        let (userinfo, hosts) = authority.rsplit_once('@').map_or((None, authority), |(u, h)| (Some(u), h));
        hosts
            .split(',')
            .map(|host| match userinfo {
                Some(u) => format!("mysql://{u}@{}{tail}", host.trim()),
                None => format!("mysql://{}{tail}", host.trim()),
            })
            .collect()
    }

    /// The hosts of `url`, a pool each. One host: connected at once (an error if it does not
    /// answer). Several: each connected when first needed, the first that answers and is
    /// ready put in use; an error only when none is.
    async fn connect_hosts(url: &str) -> Result<Hosts, StoreError> {
        let urls = Self::split_hosts(url);
        let mut pools = Vec::with_capacity(urls.len());
        for u in &urls {
            let options = MySqlConnectOptions::from_str(u)
                .map_err(|e| StoreError::InvalidUrl(format!("{}: {e}", super::redact_url(u))))?;
            let label = u.split_once('@').map_or(u.as_str(), |(_, h)| h);
            let label = label.split('/').next().unwrap_or(label).to_owned();
            pools.push((label, options));
        }
        if pools.len() == 1 {
            let (label, options) = pools.remove(0);
            let pool = Self::pool_options().connect_with(options.clone()).await?;
            return Ok(Hosts { pools: vec![Host::new(label, options, pool)], current: AtomicUsize::new(0) });
        }
        let pools: Vec<Host> = pools
            .into_iter()
            .map(|(label, o)| {
                let pool = Self::pool_options().connect_lazy_with(o.clone());
                Host::new(label, o, pool)
            })
            .collect();
        let mut failures = Vec::new();
        for (i, host) in pools.iter().enumerate() {
            let label = &host.label;
            match Self::check_host(&host.pool()).await {
                Ok(()) => {
                    tracing::info!(host = %label, "store: using this database host");
                    return Ok(Hosts { pools, current: AtomicUsize::new(i) });
                }
                Err(why) => failures.push(format!("{label}: {why}")),
            }
        }
        Err(StoreError::Unavailable(format!("no database host answers and is ready ({})", failures.join("; "))))
    }

    /// Whether the host of `pool` answers and takes writes: not read-only, and (on Galera) a
    /// member ready for statements. The reason when not.
    async fn check_host(pool: &MySqlPool) -> Result<(), String> {
        let check = async {
            let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
            let read_only: i64 = sqlx::query_scalar("SELECT @@global.read_only")
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| e.to_string())?;
            if read_only != 0 {
                return Err("read-only".to_owned());
            }
            // Galera: only where replication is on must the member be ready for statements.
            if show_on(&mut conn, "SHOW GLOBAL VARIABLES LIKE 'wsrep_on'").await.map_err(|e| e.to_string())?
                && !show_on(&mut conn, "SHOW GLOBAL STATUS LIKE 'wsrep_ready'").await.map_err(|e| e.to_string())?
            {
                return Err("a Galera member not ready (wsrep_ready is not ON)".to_owned());
            }
            Ok(())
        };
        tokio::time::timeout(HOST_CHECK_TIMEOUT, check)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {HOST_CHECK_TIMEOUT:?}")))
    }

    /// Watches the hosts of a store with several, every [`HOST_CHECK_EVERY`], until the store is
    /// dropped: when the host in use fails a check, the first host (in the address's order)
    /// that passes one is put in use; when an earlier host than the one in use has passed
    /// [`HOST_BACK_AFTER`] checks in a row, the store moves back to it. Calls already waiting
    /// on the failed host fail (and are retried by their callers); new ones go to the new host.
    async fn watch_hosts(hosts: std::sync::Weak<Hosts>) {
        let mut tick = tokio::time::interval(HOST_CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut passed = 0u32;
        loop {
            tick.tick().await;
            let Some(hosts) = hosts.upgrade() else { return };
            let current = hosts.current.load(Ordering::Acquire);
            let failed = &hosts.pools[current];
            if let Err(why) = Self::check_host(&failed.pool()).await {
                passed = 0;
                for (i, other) in hosts.pools.iter().enumerate() {
                    if i != current && Self::check_host(&other.pool()).await.is_ok() {
                        hosts.current.store(i, Ordering::Release);
                        failed.renew(other);
                        tracing::warn!(failed = %failed.label, reason = %why, host = %other.label, "store: database host failed; using another");
                        break;
                    }
                }
                continue;
            }
            if current > 0 {
                let first = &hosts.pools[0];
                passed = if Self::check_host(&first.pool()).await.is_ok() { passed + 1 } else { 0 };
                if passed >= HOST_BACK_AFTER {
                    passed = 0;
                    hosts.current.store(0, Ordering::Release);
                    tracing::info!(host = %first.label, "store: back on the first database host");
                }
            }
        }
    }

    /// The settings of every pool.
    fn pool_options() -> MySqlPoolOptions {
        MySqlPoolOptions::new()
            .max_connections(10)
            .min_connections(1)
            // The API answers ERR_SERVER_EXCEPTION within this when the database is down.
            .acquire_timeout(Duration::from_secs(5))
            .idle_timeout(Duration::from_secs(300))
            .max_lifetime(Duration::from_secs(1800))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").await?;
                    // A node frozen inside a transaction (SIGSTOP, a VM pause) would keep its row
                    // locks, and `SKIP LOCKED` claims would pass those jobs by until it woke: the
                    // server ends such a transaction (and its connection) after this many idle
                    // seconds, well within a lease. Our transactions never wait on the client
                    // between statements. MariaDB has it; MySQL has not (the error is ignored).
                    let set = format!("SET SESSION idle_transaction_timeout = {}", IDLE_TRANSACTION_TIMEOUT_S);
                    if let Err(e) = conn.execute(set.as_str()).await {
                        tracing::debug!(error = %e, "idle_transaction_timeout not set (not MariaDB?)");
                    }
                    // The slot of `ruqi_job_count` this connection's job inserts and deletes
                    // count in (migration 0012): one of many, so writers rarely share a row.
                    conn.execute("SET @ruqi_count_slot = 1 + FLOOR(RAND() * 1023)").await?;
                    // Galera: a member applies the others' commits a little after they are
                    // certified, so a plain read may miss a claim another node just committed.
                    // Causal reads make each SELECT, UPDATE and DELETE wait until this member
                    // has applied every commit the cluster made before it (one round of the
                    // group's messages); the claim's `UPDATE` also repeats its read's condition
                    // (see `claim_in`).
                    if show_on(conn, "SHOW GLOBAL VARIABLES LIKE 'wsrep_on'").await? {
                        conn.execute(format!("SET SESSION wsrep_sync_wait = {WSREP_SYNC_WAIT}").as_str()).await?;
                    }
                    Ok(())
                })
            })
    }

    /// The connection pool of the first host of `url` that answers, migrations neither applied
    /// nor checked.
    async fn connect(url: &str) -> Result<MySqlPool, StoreError> {
        let hosts = Self::connect_hosts(url).await?;
        Ok(hosts.current())
    }

    /// What adopting the RuQi 1.x rows of the database at `url` would do, changing nothing and
    /// applying no migration (`ruqi migrate --dry-run`).
    pub async fn plan_adoption(url: &str, tz: Tz, now: Timestamp) -> Result<AdoptionReport, StoreError> {
        let pool = Self::connect(url).await?;
        let report = legacy::plan_mysql(&pool, tz, now).await;
        pool.close().await;
        report
    }

    async fn claim_in(
        conn: &mut MySqlConnection,
        now: Timestamp,
        node: &str,
        lease_until: Timestamp,
        limit: u32,
        leases: bool,
    ) -> Result<Vec<JobRow>, StoreError> {
        let now_e = ts_to_epoch(now);
        // The due rows, locked and read whole in one statement: the unclaimed ones, and when
        // `leases`, those whose lease ran out too.
        let due = if leases {
            "next_run_time <= ? AND (claim_owner IS NULL OR lease_until < ?)"
        } else {
            "claim_owner IS NULL AND next_run_time <= ?"
        };
        let sql = format!(
            "SELECT {JOB_COLUMNS}, {RETRY_COLUMNS} FROM ruqi_jobs WHERE {due}
             ORDER BY next_run_time LIMIT ? FOR UPDATE SKIP LOCKED"
        );
        let mut read = sqlx::query_as(&sql).bind(now_e);
        if leases {
            read = read.bind(now_e);
        }
        let mut rows: Vec<JobRow> = read.bind(i64::from(limit)).fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            return Ok(rows);
        }
        // The claim repeats the read's condition: only rows still claimable when written are
        // taken (on Galera a row another member's node just claimed can look free to the read).
        let lease_e = ts_to_epoch(lease_until);
        let now_text = ts_to_text(now);
        let mut q = QueryBuilder::<MySql>::new("UPDATE ruqi_jobs SET job_lock = 1, claim_owner = ");
        q.push_bind(node).push(", lease_until = ").push_bind(lease_e);
        q.push(", u_time = ").push_bind(now_text.as_str()).push(" WHERE id IN (");
        let mut list = q.separated(", ");
        for row in &rows {
            list.push_bind(row.id.as_str());
        }
        q.push(") AND next_run_time <= ").push_bind(now_e);
        q.push(" AND (claim_owner IS NULL OR lease_until < ").push_bind(now_e).push(")");
        let taken = q.build().execute(&mut *conn).await?.rows_affected();
        if taken == rows.len() as u64 {
            // Every row read was taken (the rows were locked by the read: the usual case).
            for row in &mut rows {
                row.u_time.clone_from(&now_text);
            }
            return Ok(rows);
        }
        if taken == 0 {
            return Ok(Vec::new());
        }
        // Some were not (Galera): only the rows this statement took are returned.
        let mut q =
            QueryBuilder::<MySql>::new(format!("SELECT {JOB_COLUMNS}, {RETRY_COLUMNS} FROM ruqi_jobs WHERE id IN ("));
        let mut list = q.separated(", ");
        for row in &rows {
            list.push_bind(row.id.as_str());
        }
        q.push(") AND claim_owner = ").push_bind(node).push(" AND lease_until = ").push_bind(lease_e);
        let back: Vec<JobRow> = q.build_query_as().fetch_all(&mut *conn).await?;
        if back.len() as u64 != taken {
            tracing::debug!(read = rows.len(), taken, returned = back.len(), "claim: rows taken and read back differ");
        }
        Ok(back)
    }

    /// Writes a group of ends; `None` (written only when not `careful`) when a run of the group
    /// no longer held its claim: the transaction is then rolled back and written again, careful.
    async fn finish_in(
        conn: &mut MySqlConnection,
        node: &str,
        ends: &[RunEnd],
        now: Timestamp,
        careful: bool,
    ) -> Result<Option<Vec<FinishOutcome>>, StoreError> {
        let Some(outcomes) = Self::finish_ends(conn, node, ends, now, careful).await? else {
            return Ok(None);
        };
        // What the ends set off (a run that lost its claim sets off nothing: its fire time is
        // the new owner's).
        for (end, outcome) in ends.iter().zip(&outcomes) {
            if end.after.is_some() && *outcome != FinishOutcome::LostClaim {
                apply_after_end!(conn, " ON DUPLICATE KEY UPDATE run_id = run_id", end, ts_to_epoch(now));
            }
        }
        Ok(Some(outcomes))
    }

    /// The ends themselves: history rows, run rows, reschedules and releases (see
    /// [`MysqlStore::finish_in`] for `careful`).
    async fn finish_ends(
        conn: &mut MySqlConnection,
        node: &str,
        ends: &[RunEnd],
        now: Timestamp,
        careful: bool,
    ) -> Result<Option<Vec<FinishOutcome>>, StoreError> {
        let rows: Vec<&HistoryRecord> = ends.iter().filter_map(|e| e.history.as_ref()).collect();
        if !rows.is_empty() {
            // Keep-first: a second row for the same (job, fire time) is dropped, not an error.
            let mut q = QueryBuilder::<MySql>::new(INSERT_HISTORY);
            push_history_values(&mut q, &rows);
            q.push(" ON DUPLICATE KEY UPDATE id = id");
            q.build().execute(&mut *conn).await?;
        }
        // The runs' rows: one statement ends those that executed, one drops those that did not.
        let ended: Vec<&RunEnd> = ends.iter().filter(|e| e.run_row_end().is_some()).collect();
        if !ended.is_empty() {
            // Ends a row this node runs, or writes it whole when its start is not written yet.
            let mine = "(node = VALUES(node) AND state = 'running')";
            let mut q = QueryBuilder::<MySql>::new("");
            push_run_ends(&mut q, &ended, node);
            q.push(format!(
                " ON DUPLICATE KEY UPDATE ended = IF({mine}, VALUES(ended), ended),
                 outcome = IF({mine}, VALUES(outcome), outcome), output = IF({mine}, VALUES(output), output),
                 state = IF({mine}, 'ended', state)"
            ));
            q.build().execute(&mut *conn).await?;
        }
        let dropped: Vec<&str> = ends.iter().filter(|e| e.history.is_none()).map(|e| e.run.run_id.as_str()).collect();
        if !dropped.is_empty() {
            let mut q = QueryBuilder::<MySql>::new(DROP_RUNS);
            q.push_bind(node).push(" AND run_id IN (");
            let mut ids = q.separated(", ");
            for id in &dropped {
                ids.push_bind(*id);
            }
            q.push(")");
            q.build().execute(&mut *conn).await?;
        }
        // Runs started by hand leave the schedule be; each releases the claim it took.
        let (scheduled, by_hand): (Vec<&RunEnd>, Vec<&RunEnd>) = ends.iter().partition(|e| e.run.reschedules());
        let mut released = std::collections::HashSet::new();
        for e in by_hand.iter().filter(|e| e.run.holds_claim) {
            let res = sqlx::query(RELEASE_CLAIM).bind(e.run.job.id.as_str()).bind(node).execute(&mut *conn).await?;
            if res.rows_affected() == 1 {
                released.insert(e.run.run_id.as_str());
            }
        }
        if scheduled.is_empty() {
            return Ok(Some(by_hand_outcomes(ends, &released)));
        }
        // Which runs still hold their claim. The usual case, every run of the group, costs no
        // read: each statement below changes a job's row only while its run's claim, revision
        // and fire time stand, and the counts it answers say whether every run's did. When one
        // did not, the caller rolls the group back and writes it again `careful`ly: the rows
        // locked and read first, so each run's outcome is known.
        let current: HashMap<String, (Option<String>, i64, Option<f64>)> = if careful {
            let mut q = QueryBuilder::<MySql>::new(
                "SELECT id, claim_owner, revision, next_run_time FROM ruqi_jobs WHERE id IN (",
            );
            let mut ids = q.separated(", ");
            for e in &scheduled {
                ids.push_bind(e.run.job.id.as_str());
            }
            q.push(") FOR UPDATE");
            let rows: Vec<(String, Option<String>, i64, Option<f64>)> =
                q.build_query_as().fetch_all(&mut *conn).await?;
            rows.into_iter().map(|(id, owner, rev, next)| (id.to_lowercase(), (owner, rev, next))).collect()
        } else {
            HashMap::new()
        };
        let row_of = |run: &ClaimedRun| current.get(&run.job.id.as_str().to_lowercase());
        let holds = |run: &ClaimedRun| {
            !careful
                || row_of(run).is_some_and(|(owner, rev, next)| {
                    owner.as_deref() == Some(node) && *rev == run.revision && *next == Some(ts_to_epoch(run.due))
                })
        };
        let resched: Vec<(&ClaimedRun, Timestamp, Option<RetryPlan>)> =
            scheduled.iter().filter(|e| holds(&e.run)).filter_map(|e| e.next.map(|t| (&e.run, t, e.retry))).collect();
        let ending: Vec<&ClaimedRun> =
            scheduled.iter().filter(|e| e.next.is_none() && holds(&e.run)).map(|e| &e.run).collect();
        // The claim each run must still hold, as a join condition on the derived table `v`.
        let claim_stands = |q: &mut QueryBuilder<'_, MySql>| {
            if !careful {
                q.push(" AND j.claim_owner = ").push_bind(node.to_owned());
                q.push(" AND j.revision = v.rev AND j.next_run_time = v.due");
            }
        };
        let mut changed = 0;
        if !resched.is_empty() {
            let mut q = QueryBuilder::<MySql>::new("UPDATE ruqi_jobs j JOIN (");
            // The retry columns go in the derived table only when a run of the group plans one.
            let plans = resched.iter().any(|(_, _, retry)| retry.is_some());
            for (i, (run, next, retry)) in resched.iter().enumerate() {
                q.push(if i == 0 { "SELECT " } else { " UNION ALL SELECT " });
                q.push_bind(run.job.id.as_str()).push(" AS vid, ").push_bind(ts_to_epoch(*next)).push(" AS next");
                if !careful {
                    push_claim_of(&mut q, run);
                }
                if plans {
                    q.push(", CAST(").push_bind(retry.map(|r| ts_to_epoch(r.at))).push(" AS DOUBLE) AS retry_at, ");
                    q.push("CAST(")
                        .push_bind(retry.map(|r| i64::from(r.attempt)))
                        .push(" AS SIGNED) AS retry_attempt, ");
                    q.push("CAST(").push_bind(retry.map(|r| ts_to_epoch(r.fire))).push(" AS DOUBLE) AS retry_fire");
                }
            }
            q.push(") v ON j.id = v.vid");
            claim_stands(&mut q);
            q.push(" SET j.next_run_time = v.next, j.job_lock = 0, j.claim_owner = NULL,");
            if plans {
                q.push(" j.retry_at = v.retry_at, j.retry_attempt = v.retry_attempt, j.retry_fire = v.retry_fire,");
            } else {
                q.push(" j.retry_at = NULL, j.retry_attempt = NULL, j.retry_fire = NULL,");
            }
            q.push(" j.lease_until = NULL, j.u_time = ").push_bind(ts_to_text(now));
            changed += q.build().execute(&mut *conn).await?.rows_affected();
        }
        if !ending.is_empty() {
            let mut q = QueryBuilder::<MySql>::new("DELETE j FROM ruqi_jobs j JOIN (");
            for (i, run) in ending.iter().enumerate() {
                q.push(if i == 0 { "SELECT " } else { " UNION ALL SELECT " });
                q.push_bind(run.job.id.as_str()).push(" AS vid");
                if !careful {
                    push_claim_of(&mut q, run);
                }
            }
            q.push(") v ON j.id = v.vid");
            claim_stands(&mut q);
            changed += q.build().execute(&mut *conn).await?.rows_affected();
        }
        if !careful && changed != (resched.len() + ending.len()) as u64 {
            tracing::debug!(
                runs = scheduled.len(),
                changed,
                "a run of the group lost its claim: written again with its rows read"
            );
            return Ok(None);
        }
        let mut outcomes = Vec::with_capacity(ends.len());
        for RunEnd { run, .. } in ends {
            if !run.reschedules() {
                outcomes.push(by_hand_outcome(run, &released));
                continue;
            }
            if holds(run) {
                outcomes.push(FinishOutcome::Rescheduled);
                continue;
            }
            // Rare: the API changed or removed the job during the run (release our claim), or
            // another node took it over (leave its claim be).
            let superseded = match row_of(run) {
                None => true,
                Some((owner, rev, _)) => owner.as_deref() == Some(node) && *rev != run.revision,
            };
            if superseded {
                sqlx::query(RELEASE_SUPERSEDED)
                    .bind(run.job.id.as_str())
                    .bind(node)
                    .bind(run.revision)
                    .execute(&mut *conn)
                    .await?;
            }
            outcomes.push(if superseded { FinishOutcome::Superseded } else { FinishOutcome::LostClaim });
        }
        Ok(Some(outcomes))
    }
}

/// The claim a run holds, as the derived table's `rev` and `due` columns.
fn push_claim_of(q: &mut QueryBuilder<'_, MySql>, run: &ClaimedRun) {
    q.push(", ")
        .push_bind(run.revision)
        .push(" AS rev, CAST(")
        .push_bind(ts_to_epoch(run.due))
        .push(" AS DOUBLE) AS due");
}

/// What ending a run started by hand did: its claim released (or it held none), or lost.
fn by_hand_outcome(run: &ClaimedRun, released: &std::collections::HashSet<&str>) -> FinishOutcome {
    if !run.holds_claim || released.contains(run.run_id.as_str()) {
        FinishOutcome::Rescheduled
    } else {
        FinishOutcome::LostClaim
    }
}

/// [`by_hand_outcome`] of every run of a group that has no scheduled run.
fn by_hand_outcomes(ends: &[RunEnd], released: &std::collections::HashSet<&str>) -> Vec<FinishOutcome> {
    ends.iter().map(|e| by_hand_outcome(&e.run, released)).collect()
}

/// Runs `body` in a transaction on one pooled connection: commit on success, an explicit
/// rollback on failure (so no connection goes back to the pool holding locks), and a few
/// immediate retries of deadlocks and lock-wait timeouts.
macro_rules! in_transaction {
    ($pool:expr, |$conn:ident| $body:expr) => {
        in_transaction!(@keep $pool, |$conn| $body, |_| true)
    };
    // A body that answers `Ok(None)` has its transaction rolled back (and `None` answered).
    ($pool:expr, |$conn:ident| $body:expr, or_rollback) => {
        in_transaction!(@keep $pool, |$conn| $body, |v: &Option<_>| v.is_some())
    };
    (@keep $pool:expr, |$conn:ident| $body:expr, $keep:expr) => {{
        let mut attempt = 0;
        loop {
            let mut tx = $pool.begin().await?;
            let result = {
                let $conn: &mut MySqlConnection = &mut *tx;
                $body.await
            };
            // A conflict may also be reported at commit (Galera's certification fails as 1213
            // there): it is retried like one found by a statement.
            let result = match result {
                Ok(v) if ($keep)(&v) => tx.commit().await.map(|()| v).map_err(StoreError::from),
                Ok(v) => tx.rollback().await.map(|()| v).map_err(StoreError::from),
                Err(e) => {
                    let _ = tx.rollback().await;
                    Err(e)
                }
            };
            match result {
                Ok(v) => break Ok::<_, StoreError>(v),
                Err(e) => {
                    attempt += 1;
                    if attempt > TX_RETRIES || !is_transient(&e) {
                        break Err(e);
                    }
                    tracing::debug!(error = %e, attempt, "transaction retried");
                    // Two nodes that conflicted (two Galera members certifying the same rows)
                    // would meet again if both retried at once: a few random milliseconds apart.
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(1..=4 * u64::from(attempt)))).await;
                }
            }
        }
    }};
}

#[async_trait]
impl JobStore for MysqlStore {
    async fn add_jobs(
        &self,
        jobs: &[Job],
        audits: &[(AuditEntry, Option<String>)],
        atomic: bool,
    ) -> Result<Vec<bool>, StoreError> {
        // A node numbering a version of the same job at once collides on its key: tried again.
        let mut attempt = 0;
        loop {
            match self.add_jobs_once(jobs, audits, atomic).await {
                Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() && attempt < 5 => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        // sqlx asks for CLIENT_FOUND_ROWS (matched rows are counted) and the statement bumps
        // `revision` anyway: an identical update still finds its job (RuQi 1.x's same-second bug).
        let q = sqlx::query(UPDATE_JOB)
            .bind(job.next_run_time.map(ts_to_epoch))
            .bind(job_state(job))
            .bind(&job.name)
            .bind(job.trigger.kind().as_str())
            .bind(job.trigger.rule())
            .bind(ts_to_text(job.updated));
        let res = bind_health(q, job).bind(job.id.as_str()).execute(&self.pool()).await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound(job.id.to_string()));
        }
        Ok(())
    }

    async fn remove_job(&self, id: &JobId) -> Result<(), StoreError> {
        let res = sqlx::query(REMOVE_JOB).bind(id.as_str()).execute(&self.pool()).await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound(id.to_string()));
        }
        Ok(())
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        let row: Option<JobRow> = sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM ruqi_jobs WHERE id = ?"))
            .bind(id.as_str())
            .fetch_optional(&self.pool())
            .await?;
        row.map(|r| r.into_job(self.tz)).transpose()
    }

    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<(u64, Vec<Job>), StoreError> {
        let total = self.count_jobs(filter).await?;
        let mut q = paged_select::<MySql>(JOB_COLUMNS, "ruqi_jobs", JOB_ORDER, page, total as u64, |q| {
            push_job_filter(q, filter)
        });
        let rows: Vec<JobRow> = q.build_query_as().fetch_all(&self.pool()).await?;
        Ok((total as u64, rows.into_iter().map(|r| r.into_job(self.tz)).collect::<Result<_, _>>()?))
    }

    async fn stream_jobs(&self, filter: &JobFilter) -> Result<RowStream<Job>, StoreError> {
        let (pool, filter, tz) = (self.pool().clone(), filter.clone(), self.tz);
        Ok(channel_stream(move |tx| async move {
            let mut q = QueryBuilder::<MySql>::new(format!("SELECT {JOB_COLUMNS} FROM ruqi_jobs"));
            push_job_filter(&mut q, &filter);
            q.push(JOB_ORDER);
            let mut rows = q.build_query_as::<JobRow>().fetch(&pool);
            while let Some(row) = rows.next().await {
                let job = row.map_err(StoreError::from).and_then(|r| r.into_job(tz));
                if tx.send(job).await.is_err() {
                    return;
                }
            }
        }))
    }

    async fn next_wakeup(&self) -> Result<Option<Timestamp>, StoreError> {
        // Two index reads on (claim_owner, next_run_time), not a table scan: the first unclaimed
        // fire time as `ORDER BY … LIMIT 1` (MariaDB ran `MIN()` over `claim_owner IS NULL` as a
        // range of every unclaimed row: 0.3 s a pass at 1,000,000 jobs), and the claimed rows
        // (the runs in flight), whose first takeover time also tells claims when to look for it.
        let (free, leased): (Option<f64>, Option<f64>) = sqlx::query_as(
            "SELECT (SELECT next_run_time FROM ruqi_jobs WHERE claim_owner IS NULL AND next_run_time IS NOT NULL
                     ORDER BY next_run_time LIMIT 1),
                    (SELECT MIN(GREATEST(next_run_time, COALESCE(lease_until, next_run_time))) FROM ruqi_jobs
                     WHERE claim_owner > '' AND next_run_time IS NOT NULL)",
        )
        .fetch_one(&self.pool())
        .await?;
        let takeover = leased.map_or(i64::MAX, |t| epoch_to_ts(t).timestamp_micros());
        self.takeover_at.store(takeover, Ordering::Release);
        Ok(match (free, leased) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(epoch_to_ts))
    }

    async fn database_time(&self) -> Result<Option<Timestamp>, StoreError> {
        // Microseconds since the epoch, whatever the session's time zone.
        let us: i64 = sqlx::query_scalar("SELECT TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6))")
            .fetch_one(&self.pool())
            .await?;
        Ok(chrono::DateTime::from_timestamp_micros(us))
    }

    async fn claim_due(
        &self,
        now: Timestamp,
        node: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedRun>, StoreError> {
        let tz = self.tz;
        let leases = now.timestamp_micros() >= self.takeover_at.load(Ordering::Acquire);
        let claimed = in_transaction!(self.pool(), |conn| async {
            let rows = Self::claim_in(conn, now, node, lease_until, limit, leases).await?;
            let claimed = claimed_runs(rows, tz);
            Ok::<_, StoreError>(claimed)
        })?;
        for id in claimed.undecodable {
            // Keep the row (nothing is lost) but park it so it cannot loop.
            sqlx::query(PARK_JOB).bind(&id).execute(&self.pool()).await?;
        }
        for id in claimed.unadopted {
            sqlx::query(HOLD_UNADOPTED).bind(UNADOPTED).bind(UNADOPTED_LEASE).bind(&id).execute(&self.pool()).await?;
        }
        Ok(claimed.runs)
    }

    async fn renew_claim(&self, id: &JobId, node: &str, lease_until: Timestamp) -> Result<bool, StoreError> {
        let res = sqlx::query(RENEW_CLAIM)
            .bind(ts_to_epoch(lease_until))
            .bind(id.as_str())
            .bind(node)
            .execute(&self.pool())
            .await?;
        Ok(res.rows_affected() == 1)
    }

    async fn finish_run(
        &self,
        run: &ClaimedRun,
        node: &str,
        next: Option<Timestamp>,
        history: Option<&HistoryRecord>,
        now: Timestamp,
    ) -> Result<FinishOutcome, StoreError> {
        let end = RunEnd { run: run.clone(), next, history: history.cloned(), output: None, retry: None, after: None };
        Ok(self.finish_runs(node, std::slice::from_ref(&end), now).await?[0])
    }

    async fn finish_runs(&self, node: &str, ends: &[RunEnd], now: Timestamp) -> Result<Vec<FinishOutcome>, StoreError> {
        let fast = in_transaction!(self.pool(), |conn| Self::finish_in(conn, node, ends, now, false), or_rollback)?;
        match fast {
            Some(outcomes) => Ok(outcomes),
            None => Ok(in_transaction!(self.pool(), |conn| Self::finish_in(conn, node, ends, now, true))?
                .expect("a careful write has every outcome")),
        }
    }

    async fn adopt_legacy(&self, now: Timestamp) -> Result<AdoptionReport, StoreError> {
        legacy::adopt_mysql(&self.pool(), self.tz, now).await
    }

    async fn claim_job(
        &self,
        id: &JobId,
        node: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Option<(Job, i64)>, StoreError> {
        let row: Option<JobRow> = in_transaction!(self.pool(), |conn| async {
            let res = sqlx::query(CLAIM_JOB)
                .bind(node)
                .bind(ts_to_epoch(lease_until))
                .bind(ts_to_text(now))
                .bind(id.as_str())
                .bind(ts_to_epoch(now))
                .execute(&mut *conn)
                .await?;
            let row: Option<JobRow> = sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM ruqi_jobs WHERE id = ?"))
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            match row {
                None => Err(StoreError::NotFound(id.to_string())),
                Some(_) if res.rows_affected() == 0 => Ok(None),
                some => Ok(some),
            }
        })?;
        match row {
            Some(row) => {
                let revision = row.revision;
                Ok(Some((row.into_job(self.tz)?, revision)))
            }
            None => Ok(None),
        }
    }

    async fn plan_retry(&self, id: &JobId, revision: i64, plan: RetryPlan) -> Result<bool, StoreError> {
        let res = bind_plan_retry(sqlx::query(PLAN_RETRY), id, revision, &plan).execute(&self.pool()).await?;
        Ok(res.rows_affected() == 1)
    }

    async fn start_runs(
        &self,
        node: &str,
        runs: &[ClaimedRun],
        started: Timestamp,
        lease_until: Timestamp,
    ) -> Result<(), StoreError> {
        if runs.is_empty() {
            return Ok(());
        }
        // A row another node still runs (it died: this is the take-over) starts again here; an
        // ended one (this run's end was written first) stays. MySQL assigns left to right.
        let taken = "(state = 'running' AND node <> VALUES(node))";
        let mut q = QueryBuilder::<MySql>::new("");
        push_claimed_runs(&mut q, runs, node, ts_to_epoch(started), ts_to_epoch(lease_until));
        q.push(format!(
            " ON DUPLICATE KEY UPDATE started = IF({taken}, VALUES(started), started),
             lease_until = IF({taken}, VALUES(lease_until), lease_until),
             kill_requested = IF({taken}, 0, kill_requested), output = IF({taken}, VALUES(output), output),
             node = IF({taken}, VALUES(node), node)"
        ));
        q.build().execute(&self.pool()).await?;
        Ok(())
    }

    async fn start_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        bind_run(
            sqlx::query(&format!(
                "{INSERT_RUN} ON DUPLICATE KEY UPDATE node = VALUES(node), state = VALUES(state), started = VALUES(started),
                 ended = NULL, lease_until = VALUES(lease_until), outcome = NULL, kill_requested = 0,
                 output = VALUES(output)"
            )),
            run,
        )
        .execute(&self.pool())
        .await?;
        Ok(())
    }

    async fn append_run_output(&self, run_id: &str, node: &str, bytes: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE ruqi_runs SET output = CONCAT(output, ?) WHERE run_id = ? AND node = ? AND state = 'running'",
        )
        .bind(bytes)
        .bind(run_id)
        .bind(node)
        .execute(&self.pool())
        .await?;
        Ok(())
    }

    async fn renew_runs(&self, node: &str, run_ids: &[String], lease_until: Timestamp) -> Result<(), StoreError> {
        if run_ids.is_empty() {
            return Ok(());
        }
        let mut q = QueryBuilder::<MySql>::new(RENEW_RUNS);
        q.push_bind(ts_to_epoch(lease_until)).push(" WHERE ").push(LIVE).push(" AND node = ").push_bind(node);
        push_run_ids(&mut q, run_ids);
        q.build().execute(&self.pool()).await?;
        Ok(())
    }

    async fn end_run(
        &self,
        run_id: &str,
        node: &str,
        outcome: Outcome,
        now: Timestamp,
        output: Option<&str>,
    ) -> Result<(), StoreError> {
        let q = match output {
            Some(out) => sqlx::query(END_RUN).bind(ts_to_epoch(now)).bind(outcome.as_str()).bind(out.as_bytes()),
            None => sqlx::query(END_RUN_KEEP_OUTPUT).bind(ts_to_epoch(now)).bind(outcome.as_str()),
        };
        q.bind(run_id).bind(node).execute(&self.pool()).await?;
        Ok(())
    }

    async fn end_lost_runs(&self, now: Timestamp) -> Result<u64, StoreError> {
        let now = ts_to_epoch(now);
        let ids: Vec<String> = sqlx::query_scalar(LOST_RUNS).bind(now).fetch_all(&self.pool()).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        sqlx::query(REQUEUE_LOST_CHAINED).bind(now).execute(&self.pool()).await?;
        let mut q = QueryBuilder::<MySql>::new(END_LOST_RUNS);
        q.push_bind(now).push(" WHERE ").push(LIVE).push(" AND lease_until < ").push_bind(now);
        push_run_ids(&mut q, &ids);
        Ok(q.build().execute(&self.pool()).await?.rows_affected())
    }

    async fn request_kill(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        sqlx::query(REQUEST_KILL).bind(run_id).execute(&self.pool()).await?;
        self.get_run(run_id).await
    }

    async fn kill_requests(&self, node: &str, run_ids: &[String]) -> Result<Vec<String>, StoreError> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = QueryBuilder::<MySql>::new(KILL_REQUESTS);
        q.push_bind(node);
        push_run_ids(&mut q, run_ids);
        Ok(q.build_query_scalar().fetch_all(&self.pool()).await?)
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let row: Option<RunRow> = sqlx::query_as(&format!("SELECT {RUN_COLUMNS} FROM ruqi_runs WHERE run_id = ?"))
            .bind(run_id)
            .fetch_optional(&self.pool())
            .await?;
        row.map(RunRow::into_record).transpose()
    }

    async fn run_output(&self, run_id: &str, offset: u64, max: u64) -> Result<Vec<u8>, StoreError> {
        let piece: Option<Option<Vec<u8>>> = sqlx::query_scalar(RUN_OUTPUT)
            .bind(offset.saturating_add(1).min(i64::MAX as u64) as i64)
            .bind(max.min(i64::MAX as u64) as i64)
            .bind(run_id)
            .fetch_optional(&self.pool())
            .await?;
        Ok(piece.flatten().unwrap_or_default())
    }

    async fn list_runs(&self, filter: &RunFilter, page: Page) -> Result<(u64, Vec<RunRecord>), StoreError> {
        let mut count = QueryBuilder::<MySql>::new("SELECT COUNT(*) FROM ruqi_runs");
        push_run_filter(&mut count, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool()).await?;
        let mut q = QueryBuilder::<MySql>::new(format!("SELECT {RUN_COLUMNS} FROM ruqi_runs"));
        push_run_filter(&mut q, filter);
        q.push(RUN_ORDER);
        push_page(&mut q, page);
        let rows: Vec<RunRow> = q.build_query_as().fetch_all(&self.pool()).await?;
        Ok((total as u64, rows.into_iter().map(RunRow::into_record).collect::<Result<_, _>>()?))
    }

    async fn release_claims(&self, node: &str) -> Result<u64, StoreError> {
        let res = sqlx::query(RELEASE_CLAIMS).bind(node).execute(&self.pool()).await?;
        Ok(res.rows_affected())
    }

    async fn list_history(&self, filter: &HistoryFilter, page: Page) -> Result<(u64, Vec<HistoryRecord>), StoreError> {
        let mut count = QueryBuilder::<MySql>::new("SELECT COUNT(*) FROM ruqi_jobs_history");
        let _ = push_history_filter(&mut count, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool()).await?;
        let mut q =
            paged_select::<MySql>(HISTORY_COLUMNS, "ruqi_jobs_history", HISTORY_ORDER, page, total as u64, |q| {
                let _ = push_history_filter(q, filter);
            });
        let rows: Vec<HistoryRow> = q.build_query_as().fetch_all(&self.pool()).await?;
        Ok((total as u64, rows.into_iter().map(HistoryRow::into_record).collect::<Result<_, _>>()?))
    }

    async fn stream_history(&self, filter: &HistoryFilter) -> Result<RowStream<HistoryRecord>, StoreError> {
        let (pool, filter) = (self.pool().clone(), filter.clone());
        Ok(channel_stream(move |tx| async move {
            let mut q = QueryBuilder::<MySql>::new(format!("SELECT {HISTORY_COLUMNS} FROM ruqi_jobs_history"));
            let _ = push_history_filter(&mut q, &filter);
            q.push(HISTORY_ORDER);
            let mut rows = q.build_query_as::<HistoryRow>().fetch(&pool);
            while let Some(row) = rows.next().await {
                if tx.send(row.map_err(StoreError::from).and_then(HistoryRow::into_record)).await.is_err() {
                    return;
                }
            }
        }))
    }

    async fn clear_history(&self, filter: &HistoryFilter, before: Timestamp, limit: u64) -> Result<u64, StoreError> {
        // MySQL has no LIMIT in an IN subquery, but a single-table DELETE takes ORDER BY/LIMIT.
        let mut q = QueryBuilder::<MySql>::new("DELETE FROM ruqi_jobs_history");
        let filtered = push_history_filter(&mut q, filter);
        q.push(if filtered { " AND c_time < " } else { " WHERE c_time < " }).push_bind(ts_to_text(before));
        q.push(" ORDER BY c_time, id LIMIT ").push_bind(limit.min(i64::MAX as u64) as i64);
        let deleted = q.build().execute(&self.pool()).await?.rows_affected();
        // The runs' rows (and whole outputs) go with their history.
        let mut q = QueryBuilder::<MySql>::new("DELETE FROM ruqi_runs");
        push_old_runs(&mut q, filter, ts_to_epoch(before));
        q.push(" ORDER BY started LIMIT ").push_bind(limit.min(i64::MAX as u64) as i64);
        q.build().execute(&self.pool()).await?;
        Ok(deleted)
    }

    async fn node_seen(&self, node: &NodeSeen) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ruqi_nodes (name, version, started, seen, stopped) VALUES (?, ?, ?, ?, NULL)
             ON DUPLICATE KEY UPDATE version = VALUES(version), started = VALUES(started),
             seen = VALUES(seen), stopped = NULL",
        )
        .bind(&node.name)
        .bind(&node.version)
        .bind(ts_to_epoch(node.started))
        .bind(ts_to_epoch(node.seen))
        .execute(&self.pool())
        .await?;
        sqlx::query(NODE_FORGET)
            .bind(ts_to_epoch(node.seen - super::NODE_FORGOTTEN_AFTER))
            .execute(&self.pool())
            .await?;
        Ok(())
    }

    async fn node_stopped(&self, name: &str, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(NODE_STOPPED).bind(ts_to_epoch(now)).bind(name).execute(&self.pool()).await?;
        Ok(())
    }

    async fn nodes(&self, since: Timestamp) -> Result<Vec<NodeSeen>, StoreError> {
        let rows: Vec<(String, String, f64, f64, Option<f64>)> =
            sqlx::query_as(NODES_SINCE).bind(ts_to_epoch(since)).fetch_all(&self.pool()).await?;
        Ok(super::rows::nodes(rows))
    }

    async fn record_audits(&self, entries: &[(AuditEntry, Option<String>)]) -> Result<(), StoreError> {
        // Two nodes numbering the same job's version at once collide on its key: tried again.
        let mut attempt = 0;
        loop {
            let res = in_transaction!(self.pool(), |conn| async {
                insert_audits!(conn, MySql, entries);
                Ok::<_, StoreError>(())
            });
            match res {
                Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() && attempt < 5 => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn list_audit(&self, filter: &AuditFilter, page: Page) -> Result<(u64, Vec<AuditEntry>), StoreError> {
        let mut count = QueryBuilder::<MySql>::new("SELECT COUNT(*) FROM ruqi_audit");
        push_audit_filter(&mut count, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool()).await?;
        let mut q = QueryBuilder::<MySql>::new(format!("SELECT {AUDIT_COLUMNS} FROM ruqi_audit"));
        push_audit_filter(&mut q, filter);
        q.push(AUDIT_ORDER);
        push_page(&mut q, page);
        let rows: Vec<AuditRow> = q.build_query_as().fetch_all(&self.pool()).await?;
        Ok((total as u64, rows.into_iter().map(AuditEntry::from).collect()))
    }

    async fn list_versions(&self, job_id: &str) -> Result<Vec<JobVersion>, StoreError> {
        let rows: Vec<VersionRow> = sqlx::query_as(VERSIONS).bind(job_id).fetch_all(&self.pool()).await?;
        rows.into_iter().map(VersionRow::into_version).collect()
    }

    async fn get_version(&self, job_id: &str, version: u32) -> Result<Option<JobVersion>, StoreError> {
        let row: Option<VersionRow> =
            sqlx::query_as(VERSION).bind(job_id).bind(i64::from(version)).fetch_optional(&self.pool()).await?;
        row.map(VersionRow::into_version).transpose()
    }

    async fn stats(&self, now: Timestamp) -> Result<StatsOverview, StoreError> {
        use super::stats::{
            FAILING, SLOWEST, buckets, hours_sql, job_stats, jobs_sql, minutes_sql, sqlx_row::StatsRow,
        };
        let since = |d: chrono::Duration| ts_to_epoch(now - d);
        let minutes: Vec<StatsRow> =
            sqlx::query_as(&minutes_sql()).bind(since(chrono::Duration::hours(1))).fetch_all(&self.pool()).await?;
        let hours: Vec<StatsRow> =
            sqlx::query_as(&hours_sql()).bind(since(chrono::Duration::days(7))).fetch_all(&self.pool()).await?;
        // The jobs of yesterday and today (UTC days).
        let today = ts_to_epoch(now) - ts_to_epoch(now).rem_euclid(86_400.0);
        let day = today - 86_400.0;
        let slowest = sqlx::query_as(&jobs_sql(SLOWEST)).bind(day).fetch_all(&self.pool()).await?;
        let failing = sqlx::query_as(&jobs_sql(FAILING)).bind(day).fetch_all(&self.pool()).await?;
        Ok(StatsOverview {
            minutes: buckets(minutes),
            hours: buckets(hours),
            slowest: job_stats(slowest, false),
            failing: job_stats(failing, true),
        })
    }

    async fn add_rollups(&self, node: &str, rollup: &Rollup) -> Result<(), StoreError> {
        in_transaction!(self.pool(), |conn| async {
            write_rollups!(conn, MySql, rollup, node, |_: &str| " ON DUPLICATE KEY UPDATE".to_owned(), |c: &str| {
                format!("VALUES({c})")
            });
            Ok::<_, StoreError>(())
        })
    }

    async fn prune_stats(&self, before: Timestamp) -> Result<(), StoreError> {
        prune_rollups!(&self.pool(), before);
        Ok(())
    }

    async fn last_runs(&self, job_id: &str, n: u32) -> Result<Vec<HistoryRecord>, StoreError> {
        let rows: Vec<HistoryRow> = sqlx::query_as(&format!(
            "SELECT {HISTORY_COLUMNS} FROM ruqi_jobs_history WHERE job_id = ? ORDER BY id DESC LIMIT {n}"
        ))
        .bind(job_id)
        .fetch_all(&self.pool())
        .await?;
        rows.into_iter().map(HistoryRow::into_record).collect()
    }

    async fn jobs_chaining_to(&self, id: &JobId) -> Result<Vec<Job>, StoreError> {
        let rows: Vec<JobRow> =
            sqlx::query_as(&format!("SELECT {JOB_COLUMNS}{CHAINING_JOBS}")).fetch_all(&self.pool()).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.into_job(self.tz).ok())
            .filter(|j| j.follow.on_success.contains(id) || j.follow.on_failure.contains(id))
            .collect())
    }

    async fn take_pending_runs(
        &self,
        node: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let rows: Vec<RunRow> = in_transaction!(self.pool(), |conn| async {
            let ids: Vec<String> = sqlx::query_scalar(&format!("{PENDING_RUNS}{limit} FOR UPDATE SKIP LOCKED"))
                .fetch_all(&mut *conn)
                .await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut q = QueryBuilder::<MySql>::new("UPDATE ruqi_runs SET state = 'waiting', node = ");
            q.push_bind(node).push(", lease_until = ").push_bind(ts_to_epoch(lease_until));
            q.push(" WHERE state = 'pending'");
            push_run_ids(&mut q, &ids);
            q.build().execute(&mut *conn).await?;
            let mut q = QueryBuilder::<MySql>::new(format!(
                "SELECT {RUN_COLUMNS} FROM ruqi_runs WHERE state = 'waiting' AND node = "
            ));
            q.push_bind(node);
            push_run_ids(&mut q, &ids);
            Ok::<_, StoreError>(q.build_query_as().fetch_all(&mut *conn).await?)
        })?;
        rows.into_iter().map(RunRow::into_record).collect()
    }

    async fn due_probes(&self, now: Timestamp, limit: u32) -> Result<Vec<JobId>, StoreError> {
        let ids: Vec<String> =
            sqlx::query_scalar(&format!("{DUE_PROBES}{limit}")).bind(ts_to_epoch(now)).fetch_all(&self.pool()).await?;
        Ok(ids.iter().filter_map(|id| JobId::parse(id).ok()).collect())
    }

    async fn due_deadlines(&self, now: Timestamp, limit: u32) -> Result<Vec<Job>, StoreError> {
        let rows: Vec<JobRow> = sqlx::query_as(&format!("SELECT {JOB_COLUMNS}{DUE_DEADLINES}{limit}"))
            .bind(ts_to_epoch(now))
            .fetch_all(&self.pool())
            .await?;
        Ok(rows.into_iter().filter_map(|r| r.into_job(self.tz).ok()).collect())
    }

    async fn deadline_passed(
        &self,
        job: &JobId,
        watch: DeadlineMove,
        alert: Option<&AlertDraft>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let Some(from) = watch.from else { return Ok(false) };
        in_transaction!(self.pool(), |conn| async {
            let moved = sqlx::query(MOVE_DEADLINE)
                .bind(watch.to.map(ts_to_epoch))
                .bind(watch.due.map(ts_to_epoch))
                .bind(job.as_str())
                .bind(ts_to_epoch(from))
                .execute(&mut *conn)
                .await?
                .rows_affected()
                > 0;
            if moved && let Some(draft) = alert {
                queue_alert!(conn, draft, ts_to_epoch(now));
            }
            Ok::<_, StoreError>(moved)
        })
    }

    async fn claim_alerts(
        &self,
        node: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let now = ts_to_epoch(now);
        let rows: Vec<AlertRow> = in_transaction!(self.pool(), |conn| async {
            let ids: Vec<i64> = sqlx::query_scalar(&format!("{DUE_ALERTS}{limit} FOR UPDATE SKIP LOCKED"))
                .bind(now)
                .bind(now)
                .fetch_all(&mut *conn)
                .await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let list = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            sqlx::query(&format!(
                "UPDATE ruqi_alerts SET claim_owner = ?, claim_until = ?, attempts = attempts + 1 WHERE id IN ({list})"
            ))
            .bind(node)
            .bind(ts_to_epoch(until))
            .execute(&mut *conn)
            .await?;
            Ok::<_, StoreError>(
                sqlx::query_as(&format!("SELECT {ALERT_COLUMNS} FROM ruqi_alerts WHERE id IN ({list}) ORDER BY id"))
                    .fetch_all(&mut *conn)
                    .await?,
            )
        })?;
        rows.into_iter().map(AlertRow::into_record).collect()
    }

    async fn end_alert(
        &self,
        id: i64,
        node: &str,
        state: AlertState,
        answer: &str,
        next_try: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(END_ALERT)
            .bind(state.as_str())
            .bind(answer)
            .bind(ts_to_epoch(next_try.unwrap_or(now)))
            .bind((state == AlertState::Sent).then(|| ts_to_epoch(now)))
            .bind(id)
            .bind(node)
            .execute(&self.pool())
            .await?;
        Ok(())
    }

    async fn list_alerts(&self, filter: &AlertFilter, page: Page) -> Result<(u64, Vec<AlertRecord>), StoreError> {
        let mut count = QueryBuilder::<MySql>::new("SELECT COUNT(*) FROM ruqi_alerts");
        push_alert_filter(&mut count, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool()).await?;
        let mut q = QueryBuilder::<MySql>::new(format!("SELECT {ALERT_COLUMNS} FROM ruqi_alerts"));
        push_alert_filter(&mut q, filter);
        q.push(ALERT_ORDER);
        push_page(&mut q, page);
        let rows: Vec<AlertRow> = q.build_query_as().fetch_all(&self.pool()).await?;
        Ok((total as u64, rows.into_iter().map(AlertRow::into_record).collect::<Result<_, _>>()?))
    }
}
