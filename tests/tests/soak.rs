//! The soak test. Two real `ruqi serve` nodes (`--lease 3`) on one MariaDB database
//! run 1,000 interval jobs of three kinds — scripts, http-post to a receiver in this test,
//! baichuan publishing to the real Redis — for `RUQI_SOAK_SECS` seconds (60 by default, inside
//! `make test`; 600 in `make soak`), while chaos strikes at random moments (seeded; the seed is
//! printed, `RUQI_SOAK_SEED` replays it): kill -9 of a node (replaced at once), SIGSTOP of a node
//! past its lease then SIGCONT, a restart of the real MariaDB server and one of the real Redis.
//!
//! At the end it proves:
//! - every fire time is on its job's grid (`created + k·interval`), has at most one history row,
//!   and every grid point up to the end of the soak has one: nothing lost, nothing skipped as
//!   missed (the outages are far shorter than the 30 s misfire grace);
//! - nothing ran twice but what the documented at-least-once rule for runs cut off mid-way
//!   allows: each delivery the receivers saw (an HTTP request, a Baichuan message, a line the
//!   script wrote, each with its time) is matched to the recorded run of its job executing at
//!   that time; the deliveries no recorded run made all came near a blow, and are no more than
//!   the runs whose claims the nodes hit held (up to 3 × `--concurrency` a node); no
//!   delivery was made while a recorded run of the same job was going on (runs of one job never
//!   overlap), except by a node resuming from a stall; and every successful run delivered;
//! - only runs that could not succeed failed (baichuan while Redis was away);
//! - the API answered throughout: every request to a node neither stopped nor killed got an
//!   answer in RuQi's envelope within the timeout (`ERR_SERVER_EXCEPTION` with a reason, only
//!   while MariaDB was away);
//! - memory stayed flat on the node that lived the whole run.
//!
//! A summary goes to stderr (`--nocapture`); the nodes' logs are kept when a check fails
//! (`RUQI_SOAK_KEEP=1` keeps them anyway). The test stops and starts the machine's MariaDB and
//! Redis: it is a binary of its own (cargo runs test binaries one after another) and needs the
//! rights `make test` has.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use nix::sys::signal::Signal;
use ruqi_tests::cluster::{
    Cluster, NodeProcess, StoredJob, StoredRun, memory_kib_of, mysqladmin, percentile, redis_ping, start_mariadb,
    start_redis, stop_mariadb, stop_redis,
};
use ruqi_tests::install_plugin;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Jobs in the soak.
const JOBS: usize = 1000;
/// Intervals the jobs use, in turn (seconds): 1,000 jobs average 150 runs/s.
const INTERVALS: [u64; 2] = [5, 10];
/// Claim lease of the nodes (the minimum), so failover is quick.
const LEASE_S: u64 = 3;
/// Claims a node holds at most: its `--concurrency` (20 by default) running, twice as many
/// queued (the dispatcher's `QUEUE_PER_SLOT`), and those of runs that ended and wait for the
/// group commit of their end; a claim is let go only once its run's end is recorded. Each of
/// them may have delivered without being recorded when its node is killed, stopped or cut off
/// from the database (a fresh claim starts without a round trip to the database), so each may
/// run again elsewhere: the at-least-once rule for runs cut off mid-way.
const HELD_PER_NODE: usize = 3 * 20;
/// The service's misfire grace.
const MISFIRE_GRACE_S: f64 = 30.0;
/// How often the API of each node is asked.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// How long an API request may take. A request needing the database while MariaDB is away
/// waits for the pool's 5 s acquire timeout before answering `ERR_SERVER_EXCEPTION`.
const API_TIMEOUT: Duration = Duration::from_secs(8);
/// How often resident memory is sampled.
const RSS_EVERY: Duration = Duration::from_secs(2);
/// How long the cluster runs without chaos after the soak, before the nodes stop.
const SETTLE: Duration = Duration::from_secs(6);
/// After MariaDB answers again, how long `ERR_SERVER_EXCEPTION` still counts as part of the
/// outage (pooled connections are found dead and replaced).
const DB_RECOVERY: TimeDelta = TimeDelta::seconds(10);
/// Largest growth of resident memory allowed between the medians of the first and last thirds
/// of the run. A debug node under this load holds 50–60 MiB and grows by 0.3–1.5 MiB from one
/// third to the other (the noise of the allocator); 16 MiB lets a catch-up burst after an
/// outage settle in, yet flags a leak of ~7 KiB a run in a 60 s soak (~2,500 runs of the
/// witness between the two medians) and of ~0.7 KiB a run in a 600 s one.
const RSS_GROWTH_LIMIT_KIB: u64 = 16 * 1024;

/// The soak's length: `RUQI_SOAK_SECS` (at least 30), default 60.
fn soak_secs() -> u64 {
    std::env::var("RUQI_SOAK_SECS").ok().and_then(|s| s.parse().ok()).filter(|s| *s >= 30).unwrap_or(60)
}

/// A xorshift64 generator: enough randomness for chaos timing, reproducible from its seed.
struct XorShift(u64);

impl XorShift {
    /// `RUQI_SOAK_SEED`, or a fresh random seed.
    fn seed() -> u64 {
        let fresh = || u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().expect("8 bytes"));
        std::env::var("RUQI_SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(fresh).max(1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number in `lo..hi`.
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ---------------------------------------------------------------------------------------------
// Jobs and their receivers

/// The three kinds of job, told apart by the first letter of their id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Script,
    Http,
    Baichuan,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Script, Kind::Http, Kind::Baichuan];

    fn of(job_id: &str) -> Self {
        match job_id.as_bytes()[0] {
            b's' => Self::Script,
            b'h' => Self::Http,
            _ => Self::Baichuan,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Script => "script",
            Self::Http => "http-post",
            Self::Baichuan => "baichuan",
        }
    }
}

/// One job of the soak.
struct SoakJob {
    id: String,
    cmd: String,
    interval: u64,
}

/// The 1,000 jobs: kinds and intervals in turn. `hook` is the receiver's URL, `topic` the
/// Baichuan topic of this run; each job names itself in what it delivers.
fn soak_jobs(hook: &str, topic: &str) -> Vec<SoakJob> {
    (0..JOBS)
        .map(|i| {
            let kind = Kind::ALL[i % 3];
            let id = format!("{}{i}", &kind.name()[..1]);
            let cmd = match kind {
                Kind::Script => format!("bash scripts/mark.sh {id}"),
                Kind::Http => format!(r#"{hook}#{{"job":"{id}"}}"#),
                Kind::Baichuan => format!(r#"{topic}#{{"job":"{id}"}}"#),
            };
            SoakJob { id, cmd, interval: INTERVALS[(i / 3) % INTERVALS.len()] }
        })
        .collect()
}

/// Adds the jobs through the given nodes in turn, paced over the longest interval so their grids
/// spread evenly over it (added at once, they would all fire within the same second).
async fn add_jobs(clients: &[ruqi_tests::Client], jobs: &[SoakJob]) {
    let start = Instant::now();
    let pace = Duration::from_secs(INTERVALS.iter().copied().max().expect("intervals")) / jobs.len() as u32;
    let mut adds = tokio::task::JoinSet::new();
    for (i, job) in jobs.iter().enumerate() {
        tokio::time::sleep_until((start + pace * i as u32).into()).await;
        let client = clients[i % clients.len()].clone();
        let (id, cmd, rule) = (job.id.clone(), job.cmd.clone(), format!("{}s", job.interval));
        adds.spawn(async move { client.add("interval", &id, &cmd, &rule).await });
    }
    while let Some(added) = adds.join_next().await {
        added.expect("job_add");
    }
}

/// When each job delivered something (epoch seconds), per job id.
type Deliveries = HashMap<String, Vec<f64>>;

/// A time in epoch seconds.
fn epoch(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

/// Writes `scripts/mark.sh`: appends its argument (the job id) and the time to `marks.log`, one
/// line a run, then works for 0.2 s (so a node killed or stopped often cuts a run off mid-way).
fn write_mark_script(cluster: &Cluster) {
    let script = "printf '%s %s\\n' \"$1\" \"$EPOCHREALTIME\" >> \"$(dirname \"$0\")/../marks.log\"\nsleep 0.2\n";
    std::fs::write(cluster.path().join("scripts/mark.sh"), script).expect("write mark.sh");
}

/// The script runs that happened, from the cluster's `marks.log`.
fn script_marks(cluster: &Cluster) -> Deliveries {
    let mut marks = Deliveries::new();
    for line in std::fs::read_to_string(cluster.path().join("marks.log")).unwrap_or_default().lines() {
        let (job, at) = line.split_once(' ').unwrap_or((line, ""));
        marks.entry(job.to_owned()).or_default().push(at.parse().unwrap_or(f64::NAN));
    }
    marks
}

/// The http-post jobs' receiver on 127.0.0.1: records each POST under the `job` of its JSON
/// body and answers JSON (a successful run). Returns its hook URL and what it received.
async fn receiver() -> (String, Arc<Mutex<Deliveries>>) {
    let received = Arc::new(Mutex::new(Deliveries::new()));
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let seen = seen.clone();
            async move {
                let job = body["job"].as_str().unwrap_or("?").to_owned();
                seen.lock().unwrap().entry(job).or_default().push(epoch(Utc::now()));
                axum::Json(json!({"stat": "OK"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
    let addr = listener.local_addr().expect("receiver addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
    (format!("http://{addr}/hook"), received)
}

/// A Baichuan worker for this run's topic: pops the queue as a worker would, and records each
/// message (each message id once, whatever happens) under the `job` of its data, at its
/// `created_at`.
struct Worker {
    queue: String,
    conn: Option<redis::aio::MultiplexedConnection>,
    seen: HashSet<String>,
    per_job: Deliveries,
    /// Messages without readable data (should stay 0: the plugin writes them in MULTI/EXEC).
    unreadable: u64,
}

impl Worker {
    fn new(topic: &str) -> Self {
        Self {
            queue: format!("mq:queue:{{{topic}}}"),
            conn: None,
            seen: HashSet::new(),
            per_job: Deliveries::new(),
            unreadable: 0,
        }
    }

    /// A connection to the local Redis, opened again after a failure.
    async fn conn(&mut self) -> Result<redis::aio::MultiplexedConnection, String> {
        if self.conn.is_none() {
            let client = redis::Client::open("redis://127.0.0.1:6379/0").map_err(|e| e.to_string())?;
            let conn = tokio::time::timeout(Duration::from_secs(3), client.get_multiplexed_async_connection())
                .await
                .map_err(|_| "connect timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            self.conn = Some(conn);
        }
        Ok(self.conn.clone().expect("connected"))
    }

    /// Runs `cmd` with a time limit; a failure drops the connection.
    async fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T, String> {
        let mut conn = self.conn().await?;
        let result = tokio::time::timeout(Duration::from_secs(3), cmd.query_async::<T>(&mut conn)).await;
        let result = result.map_err(|_| "timed out".to_owned()).and_then(|r| r.map_err(|e| e.to_string()));
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    /// Records the messages `ids` (each id once); deletes them if asked.
    async fn count(&mut self, ids: Vec<String>, delete: bool) -> Result<(), String> {
        for id in ids {
            if self.seen.contains(&id) {
                continue;
            }
            let key = format!("mq:msg:{id}");
            let fields: (Option<String>, Option<String>) =
                self.query(redis::cmd("HMGET").arg(&key).arg("data").arg("created_at")).await?;
            let job = fields.0.and_then(|d| serde_json::from_str::<Value>(&d).ok()?["job"].as_str().map(str::to_owned));
            let at = fields.1.and_then(|c| DateTime::parse_from_rfc3339(&c).ok()).map(|c| epoch(c.to_utc()));
            match (job, at) {
                (Some(job), Some(at)) => self.per_job.entry(job).or_default().push(at),
                _ => self.unreadable += 1,
            }
            if delete {
                self.query::<()>(redis::cmd("DEL").arg(&key)).await?;
            }
            self.seen.insert(id);
        }
        Ok(())
    }

    /// Pops everything queued and counts it.
    async fn drain(&mut self) -> Result<(), String> {
        loop {
            let pop = redis::cmd("LPOP").arg(&self.queue).arg(500).clone();
            let ids: Option<Vec<String>> = self.query(&pop).await?;
            match ids {
                Some(ids) if !ids.is_empty() => self.count(ids, true).await?,
                _ => return Ok(()),
            }
        }
    }

    /// Before Redis is shut down (and its data lost): holds every writer (`CLIENT PAUSE …
    /// WRITE`, so no message is published after it is read) and counts what is queued without
    /// writing. The shutdown ends the pause; publishes held meanwhile fail.
    async fn pause_and_count(&mut self) -> Result<(), String> {
        self.query::<()>(redis::cmd("CLIENT").arg("PAUSE").arg(20_000).arg("WRITE")).await?;
        let ids: Vec<String> = self.query(&redis::cmd("LRANGE").arg(&self.queue).arg(0).arg(-1).clone()).await?;
        self.count(ids, false).await
    }

    /// Deletes the queue and its registration in `mq:queues`.
    async fn clean_up(&mut self) -> Result<(), String> {
        let (del, srem) =
            (redis::cmd("DEL").arg(&self.queue).clone(), redis::cmd("SREM").arg("mq:queues").arg(&self.queue).clone());
        self.query::<()>(&del).await?;
        self.query::<()>(&srem).await
    }
}

// ---------------------------------------------------------------------------------------------
// Watching the nodes: which may be asked, their API answers, their memory

/// What a node is doing, as far as the chaos knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Live,
    Stopped,
    Dead,
}

/// A node as the monitors see it.
struct Watched {
    name: String,
    addr: SocketAddr,
    pid: u32,
    health: Health,
    /// Bumped at every change of `health`: a request that saw it change is not judged.
    changes: u64,
}

/// The nodes started so far, shared by the chaos and the monitors.
#[derive(Clone, Default)]
struct Watch(Arc<Mutex<Vec<Watched>>>);

impl Watch {
    /// Adds a node; returns its index.
    fn add(&self, node: &NodeProcess) -> usize {
        let mut nodes = self.0.lock().unwrap();
        let pid = node.pid().as_raw() as u32;
        nodes.push(Watched { name: node.name.clone(), addr: node.addr, pid, health: Health::Live, changes: 0 });
        nodes.len() - 1
    }

    fn set(&self, name: &str, health: Health) {
        let mut nodes = self.0.lock().unwrap();
        let n = nodes.iter_mut().find(|n| n.name == name).expect("watched node");
        n.health = health;
        n.changes += 1;
    }

    fn state(&self, idx: usize) -> (Health, u64) {
        let nodes = self.0.lock().unwrap();
        (nodes[idx].health, nodes[idx].changes)
    }

    fn node(&self, idx: usize) -> (String, SocketAddr) {
        let nodes = self.0.lock().unwrap();
        (nodes[idx].name.clone(), nodes[idx].addr)
    }

    /// (name, pid) of the nodes not killed.
    fn running(&self) -> Vec<(String, u32)> {
        let nodes = self.0.lock().unwrap();
        nodes.iter().filter(|n| n.health != Health::Dead).map(|n| (n.name.clone(), n.pid)).collect()
    }
}

/// The API record of one node.
#[derive(Default)]
struct NodeApi {
    answers: u64,
    latencies_ms: Vec<f64>,
    /// When `job_list` answered `ERR_SERVER_EXCEPTION` (request start).
    server_exceptions: Vec<DateTime<Utc>>,
    failures: Vec<String>,
}

/// API records per node name.
type ApiLog = Arc<Mutex<BTreeMap<String, NodeApi>>>;

/// One GET; the `stat` of an answer in RuQi's envelope (HTTP 200, JSON with `stat`, and an
/// `x-reason` unless OK), or what was wrong; and how long it took.
async fn probe(http: &reqwest::Client, addr: SocketAddr, path: &str) -> (Result<String, String>, Duration) {
    let started = Instant::now();
    let result = async {
        let resp = http.get(format!("http://{addr}{path}")).send().await.map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let reason = resp.headers().get("x-reason").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = resp.text().await.map_err(|e| format!("reading the body: {e:?}"))?;
        let stat = serde_json::from_str::<Value>(&text).ok().and_then(|b| b["stat"].as_str().map(str::to_owned));
        match stat {
            Some(stat) if status == 200 && (stat == "OK" || reason.as_deref().is_some_and(|r| !r.is_empty())) => {
                Ok(stat)
            }
            _ => Err(format!("not an envelope: HTTP {status}, x-reason {reason:?}, body {text:.200}")),
        }
    }
    .await;
    (result, started.elapsed())
}

/// Asks node `idx` for `scheduler_status` and a page of `job_list` every [`POLL_EVERY`] while
/// it is live, and records the answers; ends when the node is killed or `stop` fires.
async fn poll_node(watch: Watch, idx: usize, api: ApiLog, http: reqwest::Client, stop: CancellationToken) {
    let (name, addr) = watch.node(idx);
    let routes = ["/ruqi/scheduler_status", "/ruqi/job_list?page_index=1&page_size=5"];
    while !stop.is_cancelled() {
        let (health, changes) = watch.state(idx);
        if health == Health::Dead {
            return;
        }
        if health == Health::Live {
            let at = Utc::now();
            let (status, list) = tokio::join!(probe(&http, addr, routes[0]), probe(&http, addr, routes[1]));
            // a node stopped or killed meanwhile owes no answer
            if watch.state(idx) == (Health::Live, changes) {
                let mut api = api.lock().unwrap();
                let rec = api.entry(name.clone()).or_default();
                for (route, (result, took)) in routes.iter().zip([status, list]) {
                    rec.latencies_ms.push(took.as_secs_f64() * 1e3);
                    match result.as_deref() {
                        Ok("OK") => rec.answers += 1,
                        Ok("ERR_SERVER_EXCEPTION") if route.contains("job_list") => {
                            rec.answers += 1;
                            rec.server_exceptions.push(at);
                        }
                        Ok(stat) => rec.failures.push(format!("{at} {route}: stat {stat}")),
                        Err(e) => rec.failures.push(format!("{at} {route} after {took:?}: {e}")),
                    }
                }
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Resident memory samples (seconds since the soak began, KiB) per node name.
type RssLog = Arc<Mutex<BTreeMap<String, Vec<(f64, u64)>>>>;

/// Samples `VmRSS` of every node not killed every [`RSS_EVERY`] until `stop` fires.
async fn sample_memory(watch: Watch, rss: RssLog, t0: Instant, stop: CancellationToken) {
    while !stop.is_cancelled() {
        for (name, pid) in watch.running() {
            let (_, now) = memory_kib_of(pid);
            if now > 0 {
                rss.lock().unwrap().entry(name).or_default().push((t0.elapsed().as_secs_f64(), now));
            }
        }
        tokio::time::sleep(RSS_EVERY).await;
    }
}

/// Median of a sample (0 when empty).
fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Chaos

/// One disruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Kill,
    Stop,
    RestartMariaDb,
    RestartRedis,
}

/// The chaos plan: at least one of each event (several kills and stops in a long soak), in a
/// random order at random moments of the first 70 % of the soak, so its end is calm.
fn plan(secs: u64, rng: &mut XorShift) -> Vec<(Duration, Event)> {
    let per = |every: u64| (secs / every).max(1) as usize;
    let mut events = Vec::new();
    events.extend(std::iter::repeat_n(Event::Kill, per(60)));
    events.extend(std::iter::repeat_n(Event::Stop, per(60)));
    events.extend(std::iter::repeat_n(Event::RestartMariaDb, per(300)));
    events.extend(std::iter::repeat_n(Event::RestartRedis, per(300)));
    for i in (1..events.len()).rev() {
        events.swap(i, rng.below(i + 1));
    }
    let (from, to) = (secs as f64 * 0.15, secs as f64 * 0.7);
    let slot = (to - from) / events.len() as f64;
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| (Duration::from_secs_f64(from + slot * i as f64 + rng.between(0.0, slot * 0.5)), e))
        .collect()
}

/// Starts MariaDB and Redis again if the test ends (a failed assertion included) while one
/// of them is away, so the tests after it find them.
struct RestoreServices;

impl Drop for RestoreServices {
    fn drop(&mut self) {
        if !mysqladmin(&["ping"]) {
            let _ = start_mariadb();
        }
        if !redis_ping() {
            let _ = start_redis();
        }
    }
}

/// One blow of the chaos, for the checks and the summary.
struct Disruption {
    event: Event,
    /// What happened, for the summary.
    line: String,
    /// Just before the blow.
    from: DateTime<Utc>,
    /// When the service hit was back (the node replaced or resumed, the server answering).
    to: DateTime<Utc>,
    /// Runs that could deliver without being recorded on the nodes it hit ([`HELD_PER_NODE`] each).
    held: usize,
}

/// The soak's world: the cluster, its live nodes (`nodes[0]` is the witness, never killed, so
/// that one process lives the whole run and its memory can be judged) and the monitors.
struct Soak {
    cluster: Cluster,
    nodes: Vec<NodeProcess>,
    watch: Watch,
    api: ApiLog,
    http: reqwest::Client,
    stop: CancellationToken,
    worker: Arc<tokio::sync::Mutex<Worker>>,
    rng: XorShift,
    t0: Instant,
    disruptions: Vec<Disruption>,
}

impl Soak {
    /// A soak on `cluster` with no node yet; `worker` counts the Baichuan messages.
    fn new(cluster: Cluster, worker: Arc<tokio::sync::Mutex<Worker>>, seed: u64) -> Self {
        Self {
            cluster,
            nodes: Vec::new(),
            watch: Watch::default(),
            api: ApiLog::default(),
            http: reqwest::Client::builder().timeout(API_TIMEOUT).build().expect("http client"),
            stop: CancellationToken::new(),
            worker,
            rng: XorShift(seed),
            t0: Instant::now(),
            disruptions: Vec::new(),
        }
    }

    /// Starts a node, watches it and polls its API.
    async fn start_node(&mut self) -> NodeProcess {
        let node = self.cluster.start_node().await;
        let idx = self.watch.add(&node);
        tokio::spawn(poll_node(self.watch.clone(), idx, self.api.clone(), self.http.clone(), self.stop.clone()));
        node
    }

    /// Waits (up to 3 s) until `node` holds claims, so the blow cuts runs off mid-way; returns
    /// how many it holds.
    async fn claims_held(&self, node: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let held = self.cluster.claims_of(node).await.len();
            if held > 0 || Instant::now() > deadline {
                return held;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Records a blow that began at `from` and is over now.
    fn note(&mut self, event: Event, from: DateTime<Utc>, held: usize, what: String) {
        let at = self.t0.elapsed().as_secs_f64() - (Utc::now() - from).as_seconds_f64();
        let line = format!("t+{at:5.1}s {what}");
        eprintln!("soak: {line}");
        self.disruptions.push(Disruption { event, line, from, to: Utc::now(), held });
    }

    async fn run(&mut self, event: Event) {
        match event {
            Event::Kill => self.kill().await,
            Event::Stop => self.stall().await,
            Event::RestartMariaDb => self.restart_mariadb().await,
            Event::RestartRedis => self.restart_redis().await,
        }
    }

    /// kill -9 of a node other than the witness; a fresh node replaces it at once.
    async fn kill(&mut self) {
        let victim = self.nodes.remove(1 + self.rng.below(self.nodes.len() - 1));
        let held = self.claims_held(&victim.name).await;
        let (name, from) = (victim.name.clone(), Utc::now());
        self.watch.set(&name, Health::Dead);
        victim.kill9();
        let fresh = self.start_node().await;
        let what = format!("kill -9 {name} holding {held} claims; {} replaces it", fresh.name);
        self.nodes.push(fresh);
        self.note(Event::Kill, from, HELD_PER_NODE, what);
    }

    /// SIGSTOP of a random node for longer than the lease, then SIGCONT.
    async fn stall(&mut self) {
        let idx = self.rng.below(self.nodes.len());
        let pause = LEASE_S as f64 + self.rng.between(1.0, 3.0);
        let name = self.nodes[idx].name.clone();
        let held = self.claims_held(&name).await;
        let from = Utc::now();
        self.watch.set(&name, Health::Stopped);
        self.nodes[idx].signal(Signal::SIGSTOP);
        tokio::time::sleep(Duration::from_secs_f64(pause)).await;
        self.nodes[idx].signal(Signal::SIGCONT);
        self.watch.set(&name, Health::Live);
        self.note(Event::Stop, from, HELD_PER_NODE, format!("SIGSTOP {name} holding {held} claims for {pause:.1} s"));
    }

    /// Stops the MariaDB server, waits a little, starts it again.
    async fn restart_mariadb(&mut self) {
        // longer than the pool's 5 s acquire timeout: requests needing the database then fail
        let down = self.rng.between(4.0, 8.0);
        let from = Utc::now();
        tokio::task::spawn_blocking(stop_mariadb).await.expect("stop MariaDB").expect("stop MariaDB");
        tokio::time::sleep(Duration::from_secs_f64(down)).await;
        tokio::task::spawn_blocking(start_mariadb).await.expect("start MariaDB").expect("start MariaDB");
        let away = (Utc::now() - from).as_seconds_f64();
        self.note(
            Event::RestartMariaDb,
            from,
            HELD_PER_NODE * self.nodes.len(),
            format!("MariaDB restart: away {away:.1} s"),
        );
    }

    /// Stops Redis (`shutdown nosave`: its data is gone), waits a little, starts it again. What
    /// was queued is recorded first, with writers held so nothing published is lost unseen.
    async fn restart_redis(&mut self) {
        let down = self.rng.between(1.0, 3.0);
        let worker = self.worker.clone();
        let mut worker = worker.lock().await;
        let from = Utc::now();
        worker.pause_and_count().await.expect("record the queue before the Redis restart");
        tokio::task::spawn_blocking(stop_redis).await.expect("stop Redis").expect("stop Redis");
        tokio::time::sleep(Duration::from_secs_f64(down)).await;
        tokio::task::spawn_blocking(start_redis).await.expect("start Redis").expect("start Redis");
        drop(worker);
        let away = (Utc::now() - from).as_seconds_f64();
        self.note(
            Event::RestartRedis,
            from,
            HELD_PER_NODE * self.nodes.len(),
            format!("Redis restart: away {away:.1} s"),
        );
    }

    /// When `event` kept its service away, widened by `before` and `after`.
    fn windows(&self, event: Event, before: TimeDelta, after: TimeDelta) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        self.disruptions.iter().filter(|d| d.event == event).map(|d| (d.from - before, d.to + after)).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the outcome

/// A failed run as stored.
struct FailedRun {
    job_id: String,
    fire_time: f64,
    ended: DateTime<Utc>,
    output: String,
}

/// Every failed history row.
async fn failed_runs(cluster: &Cluster) -> Vec<FailedRun> {
    let mut conn = cluster.db.connect().await;
    let rows: Vec<(String, f64, String, String)> = sqlx::query_as(
        "SELECT job_id, fire_time, DATE_FORMAT(c_time, '%Y-%m-%d %H:%i:%s.%f'), cmd_output
         FROM ruqi_jobs_history WHERE cmd_is_success = 0 ORDER BY fire_time",
    )
    .fetch_all(&mut conn)
    .await
    .expect("read failed runs");
    rows.into_iter()
        .map(|(job_id, fire_time, ended, output)| FailedRun {
            job_id,
            fire_time,
            ended: chrono::NaiveDateTime::parse_from_str(&ended, "%Y-%m-%d %H:%M:%S%.f").expect("c_time").and_utc(),
            output,
        })
        .collect()
}

/// Per job: fire times off the job's grid, and grid points up to `until` (epoch seconds) with
/// no history row.
fn grid_check(jobs: &[StoredJob], runs: &[StoredRun], until: f64) -> (Vec<String>, Vec<String>) {
    let mut fires: HashMap<&str, Vec<f64>> = HashMap::new();
    for r in runs {
        fires.entry(r.job_id.as_str()).or_default().push(r.fire_time);
    }
    let (mut off_grid, mut missing) = (Vec::new(), Vec::new());
    for job in jobs {
        let interval: f64 = job.rule.as_deref().and_then(|r| r.strip_suffix('s')?.parse().ok()).expect("interval rule");
        let first = epoch(job.created) + interval;
        let mut ks = HashSet::new();
        for fire in fires.get(job.id.as_str()).map(Vec::as_slice).unwrap_or_default() {
            let k = (fire - first) / interval;
            if k < -1e-6 || (k - k.round()).abs() * interval > 1e-3 {
                off_grid.push(format!("{}@{fire:.6} (grid {first:.6} + k·{interval})", job.id));
            }
            ks.insert(k.round() as i64);
        }
        let last = ((until - first) / interval).floor() as i64;
        missing.extend(
            (0..=last).filter(|k| !ks.contains(k)).map(|k| format!("{}@{:.3}", job.id, first + k as f64 * interval)),
        );
    }
    (off_grid, missing)
}

/// (job, fire time) pairs with more than one history row.
fn doubled(runs: &[StoredRun]) -> Vec<String> {
    let mut unique = HashSet::new();
    runs.iter()
        .filter(|r| !unique.insert((r.job_id.as_str(), (r.fire_time * 1e6).round() as i64)))
        .map(|r| format!("{}@{:.6}", r.job_id, r.fire_time))
        .collect()
}

/// The warnings and errors in the nodes' logs (every node of the run, killed ones included).
fn log_warnings(cluster: &Cluster) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(cluster.path()).expect("cluster dir").flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") && path.file_name().is_some_and(|n| n != "marks.log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            lines.extend(text.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).map(str::to_owned));
        }
    }
    lines
}

/// The runs of one kind of job.
#[derive(Debug, Default)]
struct Tally {
    runs: u64,
    failed: u64,
    /// Deliveries no recorded run made (runs cut off mid-way and run again).
    extra: u64,
    /// Successful runs with no delivery (should be none).
    undelivered: u64,
    /// Failed runs that delivered all the same (a reply lost after the work was done).
    failed_delivered: u64,
}

/// Deliveries against recorded runs: a delivery made during a recorded run of its job (between
/// its start and end) is that run's; any other is extra.
struct DeliveryCheck {
    per_kind: BTreeMap<Kind, Tally>,
    /// (job, epoch seconds) of every extra delivery.
    extra: Vec<(String, f64)>,
    /// The extra deliveries made while a recorded run of the same job was going on: two runs of
    /// one job overlapped.
    overlapping: Vec<(String, f64)>,
    /// Successful runs with no delivery.
    undelivered: Vec<String>,
}

fn check_deliveries(jobs: &[SoakJob], runs: &[StoredRun], delivered: &Deliveries) -> DeliveryCheck {
    /// Rounding of the stored times (`c_time` in µs, `cmd_cost` a float).
    const SLACK_S: f64 = 0.005;
    let mut per_kind: BTreeMap<Kind, Tally> = Kind::ALL.iter().map(|k| (*k, Tally::default())).collect();
    let mut by_job: HashMap<&str, Vec<&StoredRun>> = HashMap::new();
    for r in runs {
        by_job.entry(r.job_id.as_str()).or_default().push(r);
    }
    let (mut extra, mut overlapping, mut undelivered) = (Vec::new(), Vec::new(), Vec::new());
    for job in jobs {
        let tally = per_kind.get_mut(&Kind::of(&job.id)).expect("kind");
        let mut recorded = by_job.remove(job.id.as_str()).unwrap_or_default();
        recorded.sort_by_key(|r| r.started);
        let mut made = vec![0u32; recorded.len()];
        for &at in delivered.get(&job.id).map(Vec::as_slice).unwrap_or_default() {
            // The run whose window holds it and has no delivery yet: one that started before it
            // first, then one that started within the slack after it. (A run that starts a few ms
            // after the previous run's delivery — a backlog on a fast store — must not take that
            // delivery from the run that made it.)
            let i = recorded.partition_point(|r| epoch(r.started) - SLACK_S <= at);
            let holds = |k: usize, slack: f64| {
                epoch(recorded[k].started) - slack <= at && at <= epoch(recorded[k].ended) + SLACK_S
            };
            let near = i.saturating_sub(4)..i;
            let slot = near
                .clone()
                .rev()
                .find(|&k| made[k] == 0 && holds(k, 0.0))
                .or_else(|| near.clone().rev().find(|&k| made[k] == 0 && holds(k, SLACK_S)));
            match slot {
                Some(k) => made[k] += 1,
                None => {
                    tally.extra += 1;
                    extra.push((job.id.clone(), at));
                    if near.clone().any(|k| holds(k, SLACK_S)) {
                        overlapping.push((job.id.clone(), at));
                    }
                }
            }
        }
        for (r, made) in recorded.iter().zip(made) {
            tally.runs += 1;
            match (r.success, made) {
                (true, 0) => {
                    tally.undelivered += 1;
                    undelivered.push(format!("{}@{:.3} on {}", r.job_id, r.fire_time, r.node));
                }
                (false, n) => {
                    tally.failed += 1;
                    tally.failed_delivered += u64::from(n > 0);
                }
                (true, _) => {}
            }
        }
    }
    DeliveryCheck { per_kind, extra, overlapping, undelivered }
}

/// Lateness (start − fire time, seconds) of every run, sorted; and `p50/max` in ms per window
/// of fire time from `t0` (a cluster falling behind shows as a trend).
fn lateness(runs: &[StoredRun], t0: DateTime<Utc>, window: f64) -> (Vec<f64>, Vec<String>) {
    let late_of = |r: &StoredRun| epoch(r.started) - r.fire_time;
    let mut all: Vec<f64> = runs.iter().map(late_of).collect();
    all.sort_by(f64::total_cmp);
    let mut by_window: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for r in runs {
        let at = r.fire_time - epoch(t0);
        by_window.entry((at / window).floor() as i64).or_default().push(late_of(r));
    }
    let windows = by_window
        .into_iter()
        .map(|(w, mut l)| {
            l.sort_by(f64::total_cmp);
            let (p50, max) = (percentile(&l, 50.0) * 1e3, l.last().copied().unwrap_or(0.0) * 1e3);
            format!("{:+.0}s {p50:.0}/{max:.0}", w as f64 * window)
        })
        .collect();
    (all, windows)
}

/// Every request to a live node that got no valid answer, and every `ERR_SERVER_EXCEPTION`
/// outside a MariaDB outage.
fn api_failures(api: &BTreeMap<String, NodeApi>, db_outages: &[(DateTime<Utc>, DateTime<Utc>)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (node, rec) in api {
        failures.extend(rec.failures.iter().map(|f| format!("{node}: {f}")));
        for at in &rec.server_exceptions {
            if !db_outages.iter().any(|(a, b)| (*a..=*b).contains(at)) {
                failures.push(format!("{node}: {at} job_list: ERR_SERVER_EXCEPTION while MariaDB was up"));
            }
        }
    }
    failures
}

/// Resident memory of one node over the run: medians of the first and last thirds of the
/// samples taken from `from` seconds on (after the warm-up), and the largest sample.
#[derive(Debug)]
struct MemoryTrend {
    samples: usize,
    first: u64,
    last: u64,
    max: u64,
}

fn memory_trend(samples: &[(f64, u64)], from: f64) -> MemoryTrend {
    let kept: Vec<u64> = samples.iter().filter(|(t, _)| *t >= from).map(|(_, kib)| *kib).collect();
    let third = kept.len() / 3;
    MemoryTrend {
        samples: kept.len(),
        first: median(kept[..third].to_vec()),
        last: median(kept[kept.len() - third..].to_vec()),
        max: kept.iter().copied().max().unwrap_or(0),
    }
}

/// When a blow's extra deliveries may come, as (seconds before it began, seconds after it was
/// over). Before: a run it cut off had started (the scripts work 0.2 s). After: a stalled node's
/// run that goes on for a moment once it resumes; for the database, a run end retried (each
/// try waits up to the pool's 5 s, then backs off) losing the race with a re-run.
fn neighbourhood(event: Event) -> (f64, f64) {
    match event {
        Event::Kill => (2.0, 2.0),
        Event::Stop => (2.0, 5.0),
        Event::RestartMariaDb => (2.0, 15.0),
        Event::RestartRedis => (2.0, 5.0),
    }
}

/// Whether `at` is in the neighbourhood of blow `d`.
fn near(d: &Disruption, at: f64) -> bool {
    let (before, after) = neighbourhood(d.event);
    epoch(d.from) - before <= at && at <= epoch(d.to) + after
}

/// Extra deliveries per blow (each goes to the last blow near it that could hit its kind: a
/// Redis restart only baichuan jobs): all of them and those after the blow was over; and those
/// near no blow.
fn attribute(extra: &[(String, f64)], blows: &[Disruption], t0: DateTime<Utc>) -> (Vec<[usize; 2]>, Vec<String>) {
    let mut by_blow = vec![[0usize; 2]; blows.len()];
    let mut calm = Vec::new();
    for (job, at) in extra {
        let hits = |d: &Disruption| (d.event != Event::RestartRedis || Kind::of(job) == Kind::Baichuan) && near(d, *at);
        match blows.iter().rposition(hits) {
            Some(i) => {
                by_blow[i][0] += 1;
                by_blow[i][1] += usize::from(*at > epoch(blows[i].to));
            }
            None => calm.push(format!("{job} at t+{:.3}s", at - epoch(t0))),
        }
    }
    (by_blow, calm)
}

/// The runs that could deliver without being recorded at blow `i` and at the blows before it
/// whose neighbourhoods reach its own (their extra deliveries may be counted as its: each goes
/// to the last blow near it).
fn held_near(blows: &[Disruption], i: usize) -> usize {
    let (before, _) = neighbourhood(blows[i].event);
    let from = epoch(blows[i].from) - before;
    blows[..=i].iter().filter(|d| from <= epoch(d.to) + neighbourhood(d.event).1).map(|d| d.held).sum()
}

/// The first `n` items, for assertion messages.
fn first<T>(v: &[T], n: usize) -> &[T] {
    &v[..v.len().min(n)]
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_two_nodes_under_chaos() {
    assert!(nix::unistd::geteuid().is_root(), "the soak restarts the local MariaDB and Redis: run it as root");
    let _restore = RestoreServices;
    let secs = soak_secs();
    let seed = XorShift::seed();
    eprintln!("soak: seed {seed} (RUQI_SOAK_SEED={seed} replays the chaos), {secs} s, {JOBS} jobs, 2 nodes");

    let (hook, http_received) = receiver().await;
    let topic = format!("/soak_{}/b", uuid::Uuid::new_v4().simple());
    let cluster = Cluster::new("soak", &["--lease", &LEASE_S.to_string()]).await;
    install_plugin(&cluster.plugins_dir(), "http-post", Some("hosts = [\"127.0.0.1:*\"]\ntimeout_secs = 30\n"));
    install_plugin(&cluster.plugins_dir(), "baichuan", None);
    write_mark_script(&cluster);
    let worker = Arc::new(tokio::sync::Mutex::new(Worker::new(&topic)));
    let mut soak = Soak::new(cluster, worker.clone(), seed);
    for _ in 0..2 {
        let node = soak.start_node().await;
        soak.nodes.push(node);
    }
    let witness = soak.nodes[0].name.clone();
    let jobs = soak_jobs(&hook, &topic);
    let adding = Instant::now();
    add_jobs(&[soak.nodes[0].client.clone(), soak.nodes[1].client.clone()], &jobs).await;
    eprintln!("soak: {JOBS} jobs added in {:.1} s", adding.elapsed().as_secs_f64());

    // the monitors: memory, and a Baichuan worker (the API pollers start with each node)
    soak.t0 = Instant::now();
    let t0_utc = Utc::now();
    let rss = RssLog::default();
    let sampler = tokio::spawn(sample_memory(soak.watch.clone(), rss.clone(), soak.t0, soak.stop.clone()));
    let consumer = {
        let (worker, stop) = (worker.clone(), soak.stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let _ = worker.lock().await.drain().await; // Redis away: recorded by the next drain
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    // the chaos, then calm until the end of the soak, then a settle whose fire times are not checked
    for (at, event) in plan(secs, &mut soak.rng) {
        tokio::time::sleep_until((soak.t0 + at).into()).await;
        soak.run(event).await;
    }
    tokio::time::sleep_until((soak.t0 + Duration::from_secs(secs)).into()).await;
    let until = Utc::now();
    tokio::time::sleep(SETTLE).await;
    soak.stop.cancel();
    sampler.await.expect("sampler");
    consumer.await.expect("consumer");
    let mut exits = Vec::new();
    for node in std::mem::take(&mut soak.nodes) {
        let name = node.name.clone();
        exits.push((name, tokio::task::spawn_blocking(move || node.terminate()).await.expect("terminate")));
    }

    // what was delivered
    let mut worker = worker.lock().await;
    worker.drain().await.expect("last drain of the Baichuan queue");
    worker.clean_up().await.expect("delete the soak's Redis keys");
    let mut delivered = script_marks(&soak.cluster);
    delivered.extend(http_received.lock().unwrap().drain());
    delivered.extend(worker.per_job.drain());

    // what was recorded, against the grids and the deliveries
    let runs = soak.cluster.runs().await;
    let stored_jobs = soak.cluster.jobs().await;
    let (off_grid, missing) = grid_check(&stored_jobs, &runs, epoch(until));
    let doubled = doubled(&runs);
    let warnings = log_warnings(&soak.cluster);
    let logged = |needle: &str| warnings.iter().filter(|l| l.contains(needle)).cloned().collect::<Vec<_>>();
    let missed_logged = logged("later than the misfire grace");
    let deliveries = check_deliveries(&jobs, &runs, &delivered);
    let (extra_by_blow, extra_in_calm) = attribute(&deliveries.extra, &soak.disruptions, t0_utc);
    // a stalled node's run may go on for a moment after it resumes, beside the run that took
    // over; anywhere else, two runs of one job at once break an invariant
    let overlapping: Vec<String> = deliveries
        .overlapping
        .iter()
        .filter(|(_, at)| !soak.disruptions.iter().any(|d| d.event == Event::Stop && near(d, *at)))
        .map(|(job, at)| format!("{job} at t+{:.3}s", at - epoch(t0_utc)))
        .collect();
    let held: usize = soak.disruptions.iter().map(|d| d.held).sum();
    let redis_away = soak.windows(Event::RestartRedis, TimeDelta::seconds(5), TimeDelta::seconds(5));
    let unexpected_failures: Vec<String> = failed_runs(&soak.cluster)
        .await
        .into_iter()
        .filter(|f| {
            Kind::of(&f.job_id) != Kind::Baichuan || !redis_away.iter().any(|(a, b)| (*a..=*b).contains(&f.ended))
        })
        .map(|f| format!("{}@{:.3} ended {}: {}", f.job_id, f.fire_time, f.ended, f.output))
        .collect();
    let window = (secs / 6).max(10) as f64;
    let (late, late_windows) = lateness(&runs, t0_utc, window);
    let api = std::mem::take(&mut *soak.api.lock().unwrap());
    let api_failures = api_failures(&api, &soak.windows(Event::RestartMariaDb, TimeDelta::zero(), DB_RECOVERY));
    let samples = rss.lock().unwrap().get(&witness).cloned().unwrap_or_default();
    let memory = memory_trend(&samples, secs as f64 * 0.15);
    let log_counts: Vec<String> = [
        ("later than the misfire grace", "missed-run warn lines"),
        ("claim lost before the run started", "not started (claim lost)"),
        ("cannot confirm the claim", "not started (store away)"),
        ("run cancelled", "cancelled mid-run"),
        ("claim was lost during the run", "finished after losing the claim"),
        ("cannot record run end", "run end retries"),
    ]
    .iter()
    .map(|(needle, label)| format!("{label} {}", logged(needle).len()))
    .collect();

    // summary
    eprintln!("soak: ---- summary (seed {seed}, {secs} s soak + {} s settle) ----", SETTLE.as_secs());
    for (i, (d, [extra, after])) in soak.disruptions.iter().zip(&extra_by_blow).enumerate() {
        eprintln!(
            "soak: chaos {} -> {extra} extra deliveries, {after} of them after it was over (at most {} held near it)",
            d.line,
            held_near(&soak.disruptions, i)
        );
    }
    eprintln!(
        "soak: {} runs ({:.0}/s) of {} jobs; doubled {}, off grid {}, missing {}; node logs: {}",
        runs.len(),
        runs.len() as f64 / (secs as f64 + SETTLE.as_secs_f64()),
        stored_jobs.len(),
        doubled.len(),
        off_grid.len(),
        missing.len(),
        log_counts.join(", ")
    );
    for (kind, t) in &deliveries.per_kind {
        eprintln!(
            "soak: {:9} runs {:6}  failed {:4} (of which delivered {})  extra deliveries {:3}  successful runs \
             undelivered {}",
            kind.name(),
            t.runs,
            t.failed,
            t.failed_delivered,
            t.extra,
            t.undelivered
        );
    }
    eprintln!(
        "soak: extra deliveries {} ({} in calm, {} during another run of the job; at most {held} runs held \
         at the blows); unreadable Baichuan messages {}",
        deliveries.extra.len(),
        extra_in_calm.len(),
        deliveries.overlapping.len(),
        worker.unreadable
    );
    eprintln!(
        "soak: lateness (start - fire time) p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; p50/max ms by {window:.0} s of \
         fire time: {}",
        percentile(&late, 50.0) * 1e3,
        percentile(&late, 99.0) * 1e3,
        late.last().copied().unwrap_or(0.0) * 1e3,
        late_windows.join(", ")
    );
    for (node, rec) in &api {
        let mut l = rec.latencies_ms.clone();
        l.sort_by(f64::total_cmp);
        eprintln!(
            "soak: API {node}: {} answers ({} ERR_SERVER_EXCEPTION), {} failures; p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms",
            rec.answers,
            rec.server_exceptions.len(),
            rec.failures.len(),
            percentile(&l, 50.0),
            percentile(&l, 99.0),
            l.last().copied().unwrap_or(0.0)
        );
    }
    eprintln!(
        "soak: RSS of {witness} (the whole run; {} samples after warm-up): first third median {} KiB, last third \
         median {} KiB, growth {} KiB, max {} KiB",
        memory.samples,
        memory.first,
        memory.last,
        memory.last as i64 - memory.first as i64,
        memory.max
    );

    // verdicts; the cluster's folder (node logs, marks.log) is kept if one fails or if asked
    let keep = std::env::var_os("RUQI_SOAK_KEEP").is_some();
    soak.cluster.dir.disable_cleanup(true);
    eprintln!("soak: node logs in {} (kept if the test fails or RUQI_SOAK_KEEP is set)", soak.cluster.path().display());
    for (name, status) in &exits {
        assert!(status.success(), "node {name} did not stop cleanly on SIGTERM: {status}");
    }
    assert!(doubled.is_empty(), "fire times with two history rows: {doubled:?}");
    assert!(off_grid.is_empty(), "fire times off their job's grid: {:?}", first(&off_grid, 20));
    assert!(
        missing.is_empty(),
        "{} fire times up to the end of the soak never ran (first: {:?}); logged as missed: {:?}",
        missing.len(),
        first(&missing, 20),
        first(&missed_logged, 20)
    );
    assert!(late.last().is_some_and(|l| *l < MISFIRE_GRACE_S), "the latest run started {:?} s late", late.last());
    assert!(
        deliveries.undelivered.is_empty(),
        "{} successful runs the receivers never saw: {:?}",
        deliveries.undelivered.len(),
        first(&deliveries.undelivered, 20)
    );
    assert!(extra_in_calm.is_empty(), "deliveries no recorded run made, far from any blow: {extra_in_calm:?}");
    assert!(
        overlapping.is_empty(),
        "{} deliveries made while a recorded run of the same job was going on (two runs of one job at once), not \
         by a stalled node: {:?}",
        overlapping.len(),
        first(&overlapping, 20)
    );
    for (i, [extra, _]) in extra_by_blow.iter().enumerate() {
        let bound = held_near(&soak.disruptions, i);
        assert!(
            *extra <= bound,
            "{extra} deliveries no recorded run made near the blow \"{}\", more than the {bound} claims held by the \
             nodes it and the blows near it hit",
            soak.disruptions[i].line
        );
    }
    assert!(
        unexpected_failures.is_empty(),
        "{} runs failed, not baichuan runs while Redis was away: {:?}",
        unexpected_failures.len(),
        first(&unexpected_failures, 20)
    );
    assert!(
        api_failures.is_empty(),
        "{} API requests to live nodes got no valid answer: {:?}",
        api_failures.len(),
        first(&api_failures, 20)
    );
    assert_eq!(worker.unreadable, 0, "Baichuan messages without readable data or created_at");
    assert!(memory.samples >= 9, "too few memory samples of the witness: {samples:?}");
    assert!(
        memory.last <= memory.first + RSS_GROWTH_LIMIT_KIB,
        "resident memory of {witness} grew by more than {RSS_GROWTH_LIMIT_KIB} KiB: {memory:?}, samples (s, KiB) \
         {samples:?}"
    );
    soak.cluster.dir.disable_cleanup(keep);
}

/// A run that starts within the slack after the previous run's delivery (a backlog on a fast
/// store) does not take that delivery: each run keeps its own, and none is "undelivered".
#[test]
fn a_delivery_belongs_to_the_run_that_made_it() {
    let at = |s: f64| DateTime::from_timestamp_micros((s * 1e6) as i64).unwrap();
    let run = |started: f64, ended: f64| StoredRun {
        job_id: "h1".into(),
        fire_time: started,
        node: "n".into(),
        started: at(started),
        ended: at(ended),
        success: true,
    };
    let jobs = [SoakJob { id: "h1".into(), cmd: String::new(), interval: 1 }];
    let runs = [run(1000.0, 1000.1), run(1000.101, 1000.2)];
    let delivered: Deliveries = [("h1".to_owned(), vec![1000.098, 1000.15])].into_iter().collect();
    let check = check_deliveries(&jobs, &runs, &delivered);
    assert!(check.undelivered.is_empty(), "{:?}", check.undelivered);
    assert!(check.extra.is_empty(), "{:?}", check.extra);
    // a second delivery during one run is extra, and seen as overlapping
    let delivered: Deliveries = [("h1".to_owned(), vec![1000.05, 1000.06, 1000.15])].into_iter().collect();
    let check = check_deliveries(&jobs, &runs, &delivered);
    assert_eq!((check.extra.len(), check.overlapping.len(), check.undelivered.len()), (1, 1, 0));
}
