//! One real `ruqi serve` process for a workload: a temporary folder with the plugins (the
//! built-ins plus the no-op `echo:` template) and a work directory, a free loopback port, its
//! CPU time from `/proc/PID/stat`, its Prometheus counters, and a SIGTERM stop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// RuQi could not be started: the one failure that makes the harness exit non-zero.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ruqi serve did not start: {}", self.0)
    }
}

impl std::error::Error for StartError {}

/// The folder a node runs in: `plugins/` and `work/` (with `scripts/x.sh`), and its log.
pub struct NodeDir {
    dir: tempfile::TempDir,
}

impl NodeDir {
    /// A fresh folder with shell-bridge, http-post, baichuan and the echo template installed
    /// (their default grants: shell-bridge may run `bash`), and `work/scripts/x.sh` = `true`.
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("ruqi-bench-").tempdir()?;
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins)?;
        for name in ["shell-bridge", "http-post", "baichuan", "template"] {
            let from = ruqi_tests::wasm(name);
            anyhow::ensure!(from.exists(), "{} missing (make plugins builds it)", from.display());
            std::fs::copy(&from, plugins.join(format!("{name}.wasm")))?;
        }
        let scripts = dir.path().join("work/scripts");
        std::fs::create_dir_all(&scripts)?;
        std::fs::write(scripts.join("x.sh"), "#!/bin/bash\ntrue\n")?;
        Ok(Self { dir })
    }

    /// `plugins/`.
    pub fn plugins(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// The work directory script cmds run in.
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A running `ruqi serve`.
pub struct Node {
    child: Child,
    /// `http://addr`.
    pub base: String,
    http: reqwest::Client,
}

/// Clock ticks per second of `/proc/PID/stat` times (USER_HZ, 100 on Linux's ABIs).
const TICKS: f64 = 100.0;

impl Node {
    /// Starts `bin serve` on `store` in UTC with `dir`'s plugins and work directory, and waits
    /// (up to 60 s) until it logs where it listens. The log filter is `RUQI_BENCH_LOG`, default
    /// `warn,ruqi::app=info`: a line per run would be disk and CPU the peer does not spend.
    pub async fn start(bin: &Path, store: &str, dir: &NodeDir) -> Result<Self, StartError> {
        let log = dir.path().join(format!("node-{}.log", chrono::Utc::now().timestamp_micros()));
        let err = std::fs::File::create(&log).map_err(|e| StartError(format!("log file: {e}")))?;
        let filter = std::env::var("RUQI_BENCH_LOG").unwrap_or_else(|_| "warn,ruqi::app=info".into());
        let mut child = Command::new(bin)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--timezone", "UTC", "--store", store, "--shutdown-grace", "5"])
            // job_add_many's bodies: 10,000 jobs are about 1.3 MB
            .args(["--max-body-bytes", "67108864"])
            .arg("--plugins")
            .arg(dir.plugins())
            .arg("--workdir")
            .arg(dir.work())
            .env("RUQI_LOG", filter)
            .env_remove("RUQI_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .map_err(|e| StartError(format!("{}: {e}", bin.display())))?;
        let started = Instant::now();
        let re = regex::Regex::new(r"listening on http://([0-9.:]+)").expect("regex");
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(c) = re.captures(&text) {
                let addr: SocketAddr = c[1].parse().map_err(|e| StartError(format!("address {}: {e}", &c[1])))?;
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(256)
                    .tcp_nodelay(true)
                    .timeout(Duration::from_secs(120))
                    .build()
                    .map_err(|e| StartError(format!("http client: {e}")))?;
                return Ok(Self { child, base: format!("http://{addr}"), http });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(StartError(format!("exited with {status}: {}", tail(&text, 2000))));
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StartError(format!("no `listening on` line within 60 s: {}", tail(&text, 2000))));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU seconds the process has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(self.pid()).unwrap_or(f64::NAN)
    }

    /// A client of this node (pooled connections).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET base + path_and_query` as JSON.
    pub async fn get(&self, path_and_query: &str) -> anyhow::Result<serde_json::Value> {
        let text = self.http.get(format!("{}{path_and_query}", self.base)).send().await?.text().await?;
        serde_json::from_str(&text).with_context(|| format!("{path_and_query}: not JSON: {}", tail(&text, 200)))
    }

    /// `POST /ruqi/<route>` with a JSON body; an error unless `stat` is OK.
    pub async fn call(&self, route: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let resp = self.http.post(format!("{}/ruqi/{route}", self.base)).body(body.to_string()).send().await?;
        let reason = resp.headers().get("x-reason").map(|v| v.to_str().unwrap_or_default().to_owned());
        let answer: serde_json::Value = serde_json::from_str(&resp.text().await?)?;
        anyhow::ensure!(answer["stat"] == "OK", "{route}: {} {}", answer["stat"], reason.unwrap_or_default());
        Ok(answer)
    }

    /// The sum of every sample of counter `name` (e.g. `ruqi_runs_missed_total`) on `/metrics`.
    pub async fn counter(&self, name: &str) -> anyhow::Result<f64> {
        let text = self.http.get(format!("{}/metrics", self.base)).send().await?.text().await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// SIGTERM, then waits (up to 30 s) for the exit; kills it after that.
    pub async fn stop(mut self) {
        let _ = kill(Pid::from_raw(self.pid() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// User + system CPU seconds of process `pid` (fields 14 and 15 of `/proc/PID/stat`).
pub fn cpu_seconds_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name (field 2) may hold spaces: count fields after its closing parenthesis
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS)
}

/// The last `n` bytes of `text` (on a char boundary).
pub fn tail(text: &str, n: usize) -> &str {
    let mut from = text.len().saturating_sub(n);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..]
}
