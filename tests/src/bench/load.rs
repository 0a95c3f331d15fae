//! The HTTP load generator: `connections` tasks on one pooled reqwest client, each sending
//! `POST /ruqi/<route>` with the body for the next sequence number until a count is reached or
//! a time is up, timing every request. Concurrency is tasks on the harness's runtime (not
//! threads): the harness must leave the 2 cores to the server it measures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::progress::Progress;
use super::{percentile, thousands};

/// When the load stops.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// After this many requests in all.
    Count(u64),
    /// After this long.
    Time(Duration),
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Requests answered `stat: OK`.
    pub ok: u64,
    /// Requests that failed (transport error or another stat), and the first reason.
    pub failed: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Latencies of the OK requests, seconds, sorted.
    pub latencies: Vec<f64>,
}

impl LoadResult {
    /// OK requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency percentile, seconds.
    pub fn p(&self, p: f64) -> Option<f64> {
        percentile(&self.latencies, p)
    }

    /// An error unless every request was OK.
    pub fn all_ok(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.failed == 0,
            "{} of {} requests failed, first: {}",
            self.failed,
            self.ok + self.failed,
            self.first_error.as_deref().unwrap_or("?")
        );
        Ok(())
    }
}

/// Sends the load; `body(i)` is the JSON body of request `i` (0, 1, …).
pub async fn run(
    client: &reqwest::Client,
    url: String,
    connections: usize,
    until: Until,
    body: Arc<dyn Fn(u64) -> String + Send + Sync>,
    progress: &Progress,
    label: &str,
) -> LoadResult {
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = match until {
        Until::Time(d) => Some(started + d),
        Until::Count(_) => None,
    };
    let limit = match until {
        Until::Count(n) => n,
        Until::Time(_) => u64::MAX,
    };
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (client, url, body, next, done) = (client.clone(), url.clone(), body.clone(), next.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut failed, mut first_error) = (0u64, None::<String>);
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= limit {
                    break;
                }
                let t = Instant::now();
                let outcome = async {
                    let resp = client.post(&url).body(body(i)).send().await.map_err(|e| e.to_string())?;
                    let reason = resp.headers().get("x-reason").and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let text = resp.text().await.map_err(|e| e.to_string())?;
                    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
                    if v["stat"] == "OK" {
                        Ok(())
                    } else {
                        Err(format!("{} {}", v["stat"], reason.unwrap_or_default()))
                    }
                }
                .await;
                match outcome {
                    Ok(()) => lat.push(t.elapsed().as_secs_f64()),
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert(e);
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            (lat, failed, first_error)
        }));
    }
    let ticker = {
        let (done, progress, label) = (done.clone(), progress.clone(), label.to_owned());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let n = done.load(Ordering::Relaxed);
                let of = if limit == u64::MAX { String::new() } else { format!("/{}", thousands(limit)) };
                progress.update(&format!(
                    "{label}: {}{of} requests, {:.1} s",
                    thousands(n),
                    started.elapsed().as_secs_f64()
                ));
            }
        })
    };
    let mut result = LoadResult { ok: 0, failed: 0, first_error: None, elapsed: Duration::ZERO, latencies: Vec::new() };
    for t in tasks {
        match t.await {
            Ok((lat, failed, first_error)) => {
                result.ok += lat.len() as u64;
                result.latencies.extend(lat);
                result.failed += failed;
                if result.first_error.is_none() {
                    result.first_error = first_error;
                }
            }
            Err(e) => {
                result.failed += 1;
                result.first_error.get_or_insert(format!("load task: {e}"));
            }
        }
    }
    result.elapsed = started.elapsed();
    ticker.abort();
    result.latencies.sort_by(f64::total_cmp);
    result
}

/// The body of a `job_add`.
pub fn job_add_body(trigger: &str, id: &str, cmd: &str, rule: &str) -> String {
    serde_json::json!({"job_trigger": trigger, "job_id": id, "job_name": "bench", "cmd": cmd, "rule": rule}).to_string()
}
