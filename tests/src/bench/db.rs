//! The store a workload's node runs on, created fresh and removed afterwards (a SQLite file
//! under `target/bench`, or a `bench_` database on the local MariaDB), and the harness's own
//! reads of it: history rows carry each run's fire time and end (`c_time`), which the API
//! shows only to the second. Also the bulk copy of one job row that fills the store with
//! future date jobs exactly as `job_add` writes them.

use std::path::PathBuf;

use anyhow::Context;
use sqlx::{Executor, MySqlPool, Row, SqlitePool};

use super::progress::Progress;
use super::thousands;

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `sqlite://FILE`.
    Sqlite,
    /// `mysql://root@127.0.0.1:3306/bench_…`.
    Mysql,
}

impl Kind {
    /// Its name in the table.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Sqlite => "SQLite",
            Kind::Mysql => "MariaDB",
        }
    }

    /// Its name in progress lines and file names.
    pub fn short(self) -> &'static str {
        match self {
            Kind::Sqlite => "sqlite",
            Kind::Mysql => "mysql",
        }
    }
}

/// The MariaDB server (`RUQI_TEST_MYSQL`, default root on 127.0.0.1:3306).
pub fn mysql_server() -> String {
    ruqi_tests::mysql_server()
}

/// Creates database `name` on the local MariaDB.
pub async fn create_mysql_db(name: &str) -> anyhow::Result<()> {
    create_mysql_db_on(&mysql_server(), name).await
}

/// Creates database `name` on the MySQL server at `server` (`mysql://user@host:port`).
async fn create_mysql_db_on(server: &str, name: &str) -> anyhow::Result<()> {
    let admin = MySqlPool::connect(&format!("{server}/mysql")).await.with_context(|| format!("MySQL at {server}"))?;
    admin.execute(format!("DROP DATABASE IF EXISTS `{name}`").as_str()).await?;
    admin.execute(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4").as_str()).await?;
    admin.close().await;
    Ok(())
}

/// Drops database `name` (killing connections still on it first, so the drop never waits).
pub async fn drop_mysql_db(name: &str) {
    drop_mysql_db_on(&mysql_server(), name).await
}

/// [`drop_mysql_db`] on the server at `server`.
async fn drop_mysql_db_on(server: &str, name: &str) {
    let Ok(admin) = MySqlPool::connect(&format!("{server}/mysql")).await else { return };
    let ids: Vec<u64> = sqlx::query_scalar("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ?")
        .bind(name)
        .fetch_all(&admin)
        .await
        .unwrap_or_default();
    for id in ids {
        let _ = admin.execute(format!("KILL CONNECTION {id}").as_str()).await;
    }
    let _ = admin.execute(format!("DROP DATABASE IF EXISTS `{name}`").as_str()).await;
    admin.close().await;
}

/// Removes a SQLite file and its `-wal`/`-shm`/`-journal` companions.
pub fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// A fresh store for one node; [`Store::remove`] deletes it.
pub struct Store {
    /// Backend.
    pub kind: Kind,
    /// The URL `ruqi serve --store` gets.
    pub url: String,
    /// The MySQL server the database is on.
    server: String,
    file: Option<PathBuf>,
    db: Option<String>,
    sqlite: Option<SqlitePool>,
    mysql: Option<MySqlPool>,
}

/// One run as its history row records it.
#[derive(Debug, Clone, Copy)]
pub struct RunRow {
    /// Fire time, epoch seconds.
    pub fire: f64,
    /// When the run ended (`c_time`), epoch seconds.
    pub end: f64,
}

fn parse_time(text: &str) -> anyhow::Result<f64> {
    let t = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .with_context(|| format!("c_time {text:?}"))?
        .and_utc();
    Ok(t.timestamp_micros() as f64 / 1e6)
}

impl Store {
    /// A new empty store named after `tag` (the node creates the tables at start).
    pub async fn create(kind: Kind, tag: &str, dir: &std::path::Path) -> anyhow::Result<Self> {
        match kind {
            Kind::Sqlite => {
                std::fs::create_dir_all(dir)?;
                let file = dir.join(format!("ruqi-{tag}.db"));
                remove_sqlite(&file);
                Ok(Self {
                    kind,
                    url: format!("sqlite://{}", file.display()),
                    server: String::new(),
                    file: Some(file),
                    db: None,
                    sqlite: None,
                    mysql: None,
                })
            }
            Kind::Mysql => Self::create_on(&mysql_server(), tag).await,
        }
    }

    /// A new empty database `bench_<tag>` on the MySQL server at `server`.
    pub async fn create_on(server: &str, tag: &str) -> anyhow::Result<Self> {
        let name = format!("bench_{tag}");
        create_mysql_db_on(server, &name).await?;
        Ok(Self {
            kind: Kind::Mysql,
            url: format!("{server}/{name}"),
            server: server.to_owned(),
            file: None,
            db: Some(name),
            sqlite: None,
            mysql: None,
        })
    }

    /// The database's name (a MySQL store).
    pub fn database(&self) -> Option<&str> {
        self.db.as_deref()
    }

    /// Opens the harness's own connection (after the node has created the tables).
    pub async fn connect(&mut self) -> anyhow::Result<()> {
        match self.kind {
            Kind::Sqlite if self.sqlite.is_none() => {
                let opts: sqlx::sqlite::SqliteConnectOptions = self.url.parse()?;
                let opts = opts.busy_timeout(std::time::Duration::from_secs(30));
                self.sqlite = Some(sqlx::pool::PoolOptions::new().max_connections(2).connect_with(opts).await?);
            }
            Kind::Mysql if self.mysql.is_none() => {
                self.mysql = Some(sqlx::pool::PoolOptions::new().max_connections(2).connect(&self.url).await?);
            }
            _ => {}
        }
        Ok(())
    }

    /// How many history rows there are, and the latest run end among them (epoch seconds).
    pub async fn history_progress(&self) -> anyhow::Result<(u64, Option<f64>)> {
        let (count, last): (i64, Option<String>) = match self.kind {
            Kind::Sqlite => {
                sqlx::query_as("SELECT COUNT(*), MAX(c_time) FROM ruqi_jobs_history")
                    .fetch_one(self.sqlite.as_ref().context("not connected")?)
                    .await?
            }
            Kind::Mysql => {
                sqlx::query_as(
                    "SELECT COUNT(*), DATE_FORMAT(MAX(c_time), '%Y-%m-%d %H:%i:%s.%f') FROM ruqi_jobs_history",
                )
                .fetch_one(self.mysql.as_ref().context("not connected")?)
                .await?
            }
        };
        Ok((count as u64, last.as_deref().map(parse_time).transpose()?))
    }

    /// Every history row as (cmd, id, success, cmd_cost), in no order.
    pub async fn costs_by_cmd(&self) -> anyhow::Result<Vec<(String, i64, bool, f64)>> {
        const SQL: &str = "SELECT cmd, id, cmd_is_success <> 0, cmd_cost FROM ruqi_jobs_history";
        Ok(match self.kind {
            Kind::Sqlite => sqlx::query_as(SQL).fetch_all(self.sqlite.as_ref().context("not connected")?).await?,
            Kind::Mysql => sqlx::query_as(SQL).fetch_all(self.mysql.as_ref().context("not connected")?).await?,
        })
    }

    /// The runs whose fire time is in `[from, to)`.
    pub async fn runs_between(&self, from: f64, to: f64) -> anyhow::Result<Vec<RunRow>> {
        let rows: Vec<(Option<f64>, String)> = match self.kind {
            Kind::Sqlite => {
                sqlx::query_as("SELECT fire_time, c_time FROM ruqi_jobs_history WHERE fire_time >= ? AND fire_time < ?")
                    .bind(from)
                    .bind(to)
                    .fetch_all(self.sqlite.as_ref().context("not connected")?)
                    .await?
            }
            Kind::Mysql => {
                sqlx::query_as(
                    "SELECT fire_time, DATE_FORMAT(c_time, '%Y-%m-%d %H:%i:%s.%f') FROM ruqi_jobs_history
                     WHERE fire_time >= ? AND fire_time < ?",
                )
                .bind(from)
                .bind(to)
                .fetch_all(self.mysql.as_ref().context("not connected")?)
                .await?
            }
        };
        rows.into_iter()
            .filter_map(|(fire, end)| Some((fire?, end)))
            .map(|(fire, end)| Ok(RunRow { fire, end: parse_time(&end)? }))
            .collect()
    }

    /// Stores `n` copies of job `template` (a row `job_add` wrote), ids `f0`…, every column
    /// but `id` the same, in multi-row INSERTs of one transaction per batch.
    pub async fn copy_job(&self, template: &str, n: usize, progress: &Progress, label: &str) -> anyhow::Result<()> {
        const COLUMNS: &str = "id, next_run_time, job_state, job_lock, job_name, job_trigger, job_rule, u_time, c_time, \
                               claim_owner, lease_until, revision";
        let started = std::time::Instant::now();
        let select = match self.kind {
            Kind::Sqlite => {
                "SELECT next_run_time, job_state, job_lock + 0, job_name, job_trigger, job_rule, u_time, c_time, \
                             revision FROM ruqi_jobs WHERE id = ?"
            }
            Kind::Mysql => {
                "SELECT next_run_time, job_state, job_lock + 0, job_name, job_trigger, job_rule, \
                            DATE_FORMAT(u_time, '%Y-%m-%d %H:%i:%s.%f'), DATE_FORMAT(c_time, '%Y-%m-%d %H:%i:%s.%f'), \
                            revision FROM ruqi_jobs WHERE id = ?"
            }
        };
        macro_rules! copy {
            ($pool:expr, $db:ty, $batch:expr) => {{
                let pool = $pool.context("not connected")?;
                let row = sqlx::query(select).bind(template).fetch_one(pool).await.context("template job row")?;
                let next: Option<f64> = row.try_get(0)?;
                let state: Vec<u8> = row.try_get(1)?;
                let lock: i64 = row.try_get(2)?;
                let (name, trigger, rule): (Option<String>, Option<String>, Option<String>) =
                    (row.try_get(3)?, row.try_get(4)?, row.try_get(5)?);
                let (u_time, c_time): (String, String) = (row.try_get(6)?, row.try_get(7)?);
                let revision: i64 = row.try_get(8)?;
                let mut done = 0usize;
                while done < n {
                    let batch = $batch.min(n - done);
                    let mut q = sqlx::QueryBuilder::<$db>::new(format!("INSERT INTO ruqi_jobs ({COLUMNS}) "));
                    q.push_values(done..done + batch, |mut b, i| {
                        b.push_bind(format!("f{i}"))
                            .push_bind(next)
                            .push_bind(state.clone())
                            .push_bind(lock)
                            .push_bind(name.clone())
                            .push_bind(trigger.clone())
                            .push_bind(rule.clone())
                            .push_bind(u_time.clone())
                            .push_bind(c_time.clone())
                            .push_bind(None::<String>)
                            .push_bind(None::<f64>)
                            .push_bind(revision);
                    });
                    let mut tx = pool.begin().await?;
                    q.build().execute(&mut *tx).await?;
                    tx.commit().await?;
                    done += batch;
                    progress.update(&format!(
                        "{label}: stored {}/{} future jobs, {:.1} s",
                        thousands(done as u64),
                        thousands(n as u64),
                        started.elapsed().as_secs_f64()
                    ));
                }
            }};
        }
        match self.kind {
            Kind::Sqlite => copy!(self.sqlite.as_ref(), sqlx::Sqlite, 2_000usize),
            Kind::Mysql => copy!(self.mysql.as_ref(), sqlx::MySql, 2_000usize),
        }
        Ok(())
    }

    /// Closes the harness's connections and deletes the store (file or database).
    pub async fn remove(mut self) {
        if let Some(p) = self.sqlite.take() {
            p.close().await;
        }
        if let Some(p) = self.mysql.take() {
            p.close().await;
        }
        if let Some(f) = &self.file {
            remove_sqlite(f);
        }
        if let Some(db) = &self.db {
            drop_mysql_db_on(&self.server, db).await;
        }
    }
}
