//! Several real `ruqi serve` processes on one MariaDB database, for the high-availability
//! tests and the cluster benchmark: start, SIGKILL, SIGSTOP/SIGCONT, SIGTERM, and the
//! history read straight from the database (fire time included, which the API does not show).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{Client, MysqlDb, install_plugin, ruqi_bin, wait_until};

/// Peak and current resident memory of process `pid`, in KiB (`VmHWM`, `VmRSS`; 0 when gone).
pub fn memory_kib_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// One `ruqi serve` process.
pub struct NodeProcess {
    child: Child,
    /// Where it serves.
    pub addr: SocketAddr,
    /// `host:port:pid`, as in `scheduler_name`.
    pub name: String,
    /// Its log (stderr).
    pub log: PathBuf,
    /// Its client.
    pub client: Client,
}

/// The arguments of a lone `ruqi serve` on `store` in UTC, listening on a free loopback port.
pub fn node_args(store: &str, plugins: &Path, workdir: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> =
        ["--listen", "127.0.0.1:0", "--timezone", "UTC", "--store", store].map(Into::into).to_vec();
    args.extend(["--plugins".into(), plugins.into(), "--workdir".into(), workdir.into()]);
    args
}

impl NodeProcess {
    /// Runs `bin serve ARGS…` with its log (stderr) in `log`, and waits until it serves. The log
    /// filter is `RUQI_TEST_NODE_LOG` if set (e.g. `info,sqlx=warn,ruqi::dispatch=debug` to see
    /// every run start and end), else `info,sqlx=warn`.
    pub async fn serve(bin: &Path, args: &[std::ffi::OsString], log: PathBuf) -> Self {
        Self::serve_env(bin, args, log, &[]).await
    }

    /// [`NodeProcess::serve`] with more environment variables (e.g. libfaketime's).
    pub async fn serve_env(bin: &Path, args: &[std::ffi::OsString], log: PathBuf, env: &[(String, String)]) -> Self {
        let err = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(bin)
            .arg("serve")
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RUQI_LOG", std::env::var("RUQI_TEST_NODE_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()))
            .env_remove("RUQI_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn ruqi");
        let pid = child.id();
        let re = regex::Regex::new(r"listening on http://([0-9A-Za-z.:\[\]]+)").expect("regex");
        for _ in 0..600 {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(c) = re.captures(&text) {
                let addr: SocketAddr = c[1].parse().expect("addr");
                let host = nix::unistd::gethostname().expect("hostname").into_string().expect("utf-8 hostname");
                let name = format!("{host}:{}:{pid}", addr.port());
                return NodeProcess { child, addr, name, log, client: Client::new(addr) };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("node did not start within 30 s: {}", std::fs::read_to_string(&log).unwrap_or_default());
    }

    /// Peak and current resident memory of the process, in KiB (`VmHWM`, `VmRSS`).
    pub fn memory_kib(&self) -> (u64, u64) {
        memory_kib_of(self.child.id())
    }

    /// The process id.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Sends a signal.
    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).expect("signal node");
    }

    /// kill -9 and reap.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit (bounded).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal(Signal::SIGTERM);
        for _ in 0..400 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("node {} did not stop within 20 s of SIGTERM", self.name);
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = kill(self.pid(), Signal::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder (plugins, scripts, logs) and a database shared by the nodes it starts.
pub struct Cluster {
    /// The shared database.
    pub db: MysqlDb,
    /// Temporary folder: `plugins/`, `scripts/`, node logs.
    pub dir: tempfile::TempDir,
    /// Extra `serve` arguments for every node.
    pub args: Vec<String>,
    /// Binary to run (the debug build beside the tests by default).
    pub bin: PathBuf,
    /// The store url the nodes get (the database's own, or one through a [`Proxy`]).
    pub store_url: String,
    started: usize,
}

/// One history row as stored.
#[derive(Debug, Clone)]
pub struct StoredRun {
    /// `job_id`
    pub job_id: String,
    /// `fire_time` (epoch seconds)
    pub fire_time: f64,
    /// `scheduler_name`
    pub node: String,
    /// When the run started (`c_time - cmd_cost`).
    pub started: DateTime<Utc>,
    /// When it ended (`c_time`).
    pub ended: DateTime<Utc>,
    /// `cmd_is_success`
    pub success: bool,
}

/// One job row as stored.
#[derive(Debug, Clone)]
pub struct StoredJob {
    /// `id`
    pub id: String,
    /// `c_time`: when it was added (an interval job's grid is `c_time + k·interval`, k ≥ 1).
    pub created: DateTime<Utc>,
    /// `job_rule` (normalised: an interval is `"<seconds>s"`).
    pub rule: Option<String>,
}

/// `scripts/mark.sh [SECONDS]`: appends `job_id fire_time started` (epoch seconds; the start
/// read from the real clock even under libfaketime) to `marks.txt`, then sleeps `SECONDS`.
const MARK_SCRIPT: &str = r#"now=$(env -u LD_PRELOAD date +%s.%N)
fire=$(env -u LD_PRELOAD TZ=UTC date -d "$RUQI_FIRE_TIME" +%s.%N)
echo "$RUQI_JOB_ID $fire $now" >> marks.txt
sleep "${1:-0}"
"#;

/// One line of `marks.txt`: a run's own record that it started.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// The job.
    pub job_id: String,
    /// The fire time it ran for (epoch seconds).
    pub fire_time: f64,
    /// When it started, by the real clock (epoch seconds).
    pub started: f64,
}

impl Cluster {
    /// What `scripts/mark.sh` recorded so far, in the order written.
    pub fn marks(&self) -> Vec<Mark> {
        read_marks(&self.dir.path().join("marks.txt"))
    }

    /// A cluster folder with the echo and shell-bridge plugins, `scripts/work.sh`
    /// (sleeps `$1` seconds) and `scripts/mark.sh` (see [`Mark`]), on a database of its own.
    pub async fn new(tag: &str, args: &[&str]) -> Self {
        Self::with_bin(tag, args, ruqi_bin()).await
    }

    /// [`Cluster::new`] running the given `ruqi` binary (the bench uses the release build).
    pub async fn with_bin(tag: &str, args: &[&str], bin: PathBuf) -> Self {
        let db = MysqlDb::create(tag).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).expect("plugins dir");
        install_plugin(&plugins, "shell-bridge", None);
        install_plugin(&plugins, "template", None);
        let scripts = dir.path().join("scripts");
        std::fs::create_dir(&scripts).expect("scripts dir");
        std::fs::write(scripts.join("work.sh"), "sleep \"${1:-1}\"\necho done\n").expect("script");
        std::fs::write(scripts.join("mark.sh"), MARK_SCRIPT).expect("script");
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        let store_url = db.url.clone();
        Self { db, dir, args, bin, store_url, started: 0 }
    }

    /// Starts a node and waits until it serves.
    pub async fn start_node(&mut self) -> NodeProcess {
        self.start_node_env(&[]).await
    }

    /// [`Cluster::start_node`] with more environment variables (e.g. libfaketime's).
    pub async fn start_node_env(&mut self, env: &[(String, String)]) -> NodeProcess {
        self.started += 1;
        let (store, name) = (self.store_url.clone(), format!("node{}", self.started));
        self.start_node_at(&store, &name, env).await
    }

    /// Starts a node on `store` (not the cluster's own store url), its log `<name>.log`, and
    /// waits until it serves; several may be started at once.
    pub async fn start_node_at(&self, store: &str, name: &str, env: &[(String, String)]) -> NodeProcess {
        let log = self.dir.path().join(format!("{name}.log"));
        let mut args: Vec<std::ffi::OsString> =
            ["--listen", "127.0.0.1:0", "--timezone", "UTC", "--store", store].map(Into::into).to_vec();
        args.extend(["--plugins".into(), self.dir.path().join("plugins").into()]);
        args.extend(["--workdir".into(), self.dir.path().into()]);
        args.extend(self.args.iter().map(Into::into));
        NodeProcess::serve_env(&self.bin, &args, log, env).await
    }

    /// Every history row, oldest fire time first.
    pub async fn runs(&self) -> Vec<StoredRun> {
        runs_in(&mut self.db.connect().await).await
    }

    /// Every job as stored now, for checking fire times against the job's grid.
    pub async fn jobs(&self) -> Vec<StoredJob> {
        let mut conn = self.db.connect().await;
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, DATE_FORMAT(c_time, '%Y-%m-%d %H:%i:%s.%f'), job_rule FROM ruqi_jobs ORDER BY id",
        )
        .fetch_all(&mut conn)
        .await
        .expect("read jobs");
        rows.into_iter()
            .map(|(id, c_time, rule)| {
                let created = NaiveDateTime::parse_from_str(&c_time, "%Y-%m-%d %H:%M:%S%.f").expect("c_time").and_utc();
                StoredJob { id, created, rule }
            })
            .collect()
    }

    /// The plugins folder the nodes load (to install more plugins before starting them).
    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// The claims `node` holds now: (job id, fire time).
    pub async fn claims_of(&self, node: &str) -> Vec<(String, f64)> {
        let mut conn = self.db.connect().await;
        sqlx::query_as("SELECT id, next_run_time FROM ruqi_jobs WHERE claim_owner = ?")
            .bind(node)
            .fetch_all(&mut conn)
            .await
            .expect("read claims")
    }

    /// The cluster's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The starts (real time) of `job`'s runs, in order.
pub fn mark_starts(marks: &[Mark], job: &str) -> Vec<f64> {
    let mut s: Vec<f64> = marks.iter().filter(|m| m.job_id == job).map(|m| m.started).collect();
    s.sort_by(f64::total_cmp);
    s
}

/// The longest time `job` went without a run start within `[from, to]` (real time).
pub fn longest_silence(marks: &[Mark], job: &str, from: f64, to: f64) -> f64 {
    let mut points = vec![from];
    points.extend(mark_starts(marks, job).into_iter().filter(|t| *t > from && *t < to));
    points.push(to);
    points.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

/// The marks of a (job, fire time) marked before: the fire times run twice.
pub fn doubled_marks(marks: &[Mark]) -> Vec<&Mark> {
    let mut seen = std::collections::HashSet::new();
    marks.iter().filter(|m| !seen.insert((m.job_id.clone(), (m.fire_time * 1e3).round() as i64))).collect()
}

/// Every history row of the database `conn` uses, oldest fire time first.
pub async fn runs_in(conn: &mut sqlx::MySqlConnection) -> Vec<StoredRun> {
    let rows: Vec<(String, Option<f64>, String, String, f64, bool)> = sqlx::query_as(
        "SELECT job_id, fire_time, scheduler_name, DATE_FORMAT(c_time, '%Y-%m-%d %H:%i:%s.%f'), cmd_cost,
         cmd_is_success FROM ruqi_jobs_history ORDER BY fire_time, job_id",
    )
    .fetch_all(conn)
    .await
    .expect("read history");
    rows.into_iter()
        .map(|(job_id, fire, node, c_time, cost, success)| {
            let ended = NaiveDateTime::parse_from_str(&c_time, "%Y-%m-%d %H:%M:%S%.f").expect("c_time").and_utc();
            let started = ended - chrono::Duration::microseconds((cost * 1e6) as i64);
            StoredRun { job_id, fire_time: fire.expect("fire_time"), node, started, ended, success }
        })
        .collect()
}

/// The lines of a `marks.txt` written by `scripts/mark.sh`.
pub fn read_marks(path: &Path) -> Vec<Mark> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(Mark {
                job_id: f.next()?.to_owned(),
                fire_time: f.next()?.parse().ok()?,
                started: f.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// Checks that every job's fire times are unique and `step` seconds apart with no gap, and
/// returns how many runs each job had.
pub fn assert_each_fire_time_once(runs: &[StoredRun], step: f64) -> std::collections::BTreeMap<String, usize> {
    let mut by_job: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for r in runs {
        by_job.entry(r.job_id.clone()).or_default().push(r.fire_time);
    }
    let mut counts = std::collections::BTreeMap::new();
    for (job, mut fires) in by_job {
        fires.sort_by(f64::total_cmp);
        for w in fires.windows(2) {
            let gap = w[1] - w[0];
            assert!(gap > 1e-6, "job {job}: fire time {} recorded twice", w[0]);
            assert!(
                (gap - step).abs() < 1e-3,
                "job {job}: fire times {} and {} are {gap} s apart (missed)",
                w[0],
                w[1]
            );
        }
        counts.insert(job, fires.len());
    }
    counts
}

/// Percentiles (0–100) of a sample, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// A TCP proxy in front of MariaDB whose link can be cut: while cut, every proxied
/// connection is closed and new ones are closed at once, as when the server is down.
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let cut = std::sync::Arc::new(tokio::sync::watch::channel(0u64).0);
        let task = {
            let (up, cut) = (up.clone(), cut.clone());
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        continue; // dropped: the client sees the connection closed
                    }
                    let mut cut_rx = cut.subscribe();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else { return };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = cut_rx.changed() => {}
                        }
                    });
                }
            })
        };
        Self { addr, up, cut, task }
    }

    /// Cuts the link (closes every proxied connection) until [`Proxy::restore`].
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    /// Kills the host for good, as `kill -9` kills a server: every proxied connection is closed
    /// and the port stops listening, so a new connection is refused.
    pub fn kill(&self) {
        self.cut();
        self.task.abort();
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// The machine's MariaDB and Redis, stopped and started again as `make services` starts them
// (blocking: call them through `spawn_blocking`; they need the rights `make test` has).

/// Runs `mysqladmin -uroot -h127.0.0.1 ARGS…`; whether it succeeded.
pub fn mysqladmin(args: &[&str]) -> bool {
    Command::new("mysqladmin").args(["-uroot", "-h127.0.0.1"]).args(args).output().is_ok_and(|o| o.status.success())
}

/// Stops the local MariaDB server (`mysqladmin shutdown`) and waits until it no longer answers.
pub fn stop_mariadb() -> Result<(), String> {
    if !mysqladmin(&["shutdown"]) {
        return Err("mysqladmin shutdown failed".into());
    }
    if wait_until(Duration::from_secs(30), || !mysqladmin(&["ping"])) {
        Ok(())
    } else {
        Err("MariaDB still answers 30 s after mysqladmin shutdown".into())
    }
}

/// Starts the local MariaDB server as `make services` does and waits until it answers.
pub fn start_mariadb() -> Result<(), String> {
    let _ = std::fs::create_dir_all("/run/mysqld");
    let _ = Command::new("chown").args(["mysql:mysql", "/run/mysqld"]).status();
    let status = Command::new("start-stop-daemon")
        .args(["--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd"])
        .status()
        .map_err(|e| format!("start-stop-daemon: {e}"))?;
    if !status.success() {
        return Err(format!("could not start mariadbd: {status}"));
    }
    if wait_until(Duration::from_secs(60), || mysqladmin(&["ping"])) {
        Ok(())
    } else {
        Err("MariaDB did not answer within 60 s of its start".into())
    }
}

/// Whether the local Redis answers `PING`.
pub fn redis_ping() -> bool {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "ping"])
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"PONG"))
}

/// Stops the local Redis (`shutdown nosave`: its data is gone) and waits until it no longer answers.
pub fn stop_redis() -> Result<(), String> {
    let _ = Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"]).output();
    if wait_until(Duration::from_secs(30), || !redis_ping()) {
        Ok(())
    } else {
        Err("Redis still answers 30 s after shutdown".into())
    }
}

/// Starts the local Redis as `make services` does and waits until it answers.
pub fn start_redis() -> Result<(), String> {
    let status = Command::new("redis-server")
        .args(["--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no"])
        .status()
        .map_err(|e| format!("redis-server: {e}"))?;
    if !status.success() {
        return Err(format!("could not start redis-server: {status}"));
    }
    if wait_until(Duration::from_secs(30), redis_ping) {
        Ok(())
    } else {
        Err("Redis did not answer within 30 s of its start".into())
    }
}
