//! What the dashboard's charts read: `stats_overview` (runs per minute over the last hour and
//! per hour over the last 7 days by outcome, fire-time lateness p50/p99, the slowest and the
//! most failing jobs since yesterday (UTC days); from the store's run rollups, never from history) and
//! `job_strip` (a job's last runs, newest first: outcome, duration, when; an index read).

use serde_json::{Value, json};

use super::AppState;
use super::envelope::{ApiError, Params, Reply};
use crate::model::{JobId, JobStats, LATENESS_BOUNDS_MS, StatsBucket};
use crate::trigger::format_python;

/// Most runs `job_strip` answers.
const MAX_STRIP: u64 = 200;

/// The `q` quantile (0..1) of a lateness histogram, milliseconds, read linearly within its
/// bucket; `None` without runs.
pub fn quantile(late: &[u64; 14], q: f64) -> Option<f64> {
    let total: u64 = late.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0.0;
    for (i, n) in late.iter().enumerate() {
        let n = *n as f64;
        if n > 0.0 && seen + n >= rank {
            let low = if i == 0 { 0.0 } else { LATENESS_BOUNDS_MS[i - 1] };
            let high = LATENESS_BOUNDS_MS.get(i).copied().unwrap_or(low);
            return Some(low + (high - low) * ((rank - seen) / n).clamp(0.0, 1.0));
        }
        seen += n;
    }
    Some(LATENESS_BOUNDS_MS[12])
}

fn bucket(b: &StatsBucket, tz: chrono_tz::Tz) -> Value {
    let round = |v: Option<f64>| v.map(|ms| (ms * 10.0).round() / 10.0);
    json!({
        "start": format_python(b.start, tz),
        "epoch": b.start.timestamp(),
        "runs": b.runs,
        "late_p50_ms": round(quantile(&b.late, 0.5)),
        "late_p99_ms": round(quantile(&b.late, 0.99)),
    })
}

fn job(j: &JobStats) -> Value {
    json!({"job_id": j.job_id, "runs": j.runs, "failures": j.failures, "cost_avg": j.cost_avg, "cost_max": j.cost_max})
}

/// `stats_overview`.
pub async fn overview(state: &AppState) -> Result<Reply, ApiError> {
    let s = state.store.stats(state.clock.now()).await?;
    Ok(Reply::Data(json!({
        "minutes": s.minutes.iter().map(|b| bucket(b, state.tz)).collect::<Vec<_>>(),
        "hours": s.hours.iter().map(|b| bucket(b, state.tz)).collect::<Vec<_>>(),
        "slowest": s.slowest.iter().map(job).collect::<Vec<_>>(),
        "failing": s.failing.iter().map(job).collect::<Vec<_>>(),
    })))
}

/// `job_strip`.
pub async fn strip(state: &AppState, p: &Params, id: &JobId) -> Result<Reply, ApiError> {
    let count = match p.uint("count")? {
        Some(n) if n == 0 || n > MAX_STRIP => {
            return Err(ApiError::BadParams(format!("Param check failed: count must be from 1 to {MAX_STRIP}")));
        }
        n => n.unwrap_or(50),
    };
    let runs = state.store.last_runs(id.as_str(), count as u32).await?;
    let list: Vec<Value> = runs
        .iter()
        .map(|h| {
            json!({
                "run_id": h.run.as_ref().map(|m| m.run_id.as_str()),
                "outcome": h.run.as_ref().map_or(if h.success { "success" } else { "failed" }, |m| m.outcome.as_str()),
                "trigger": h.run.as_ref().map(|m| m.trigger.as_str()),
                "cost": h.cost,
                "ended": format_python(h.created, state.tz),
                "fire_time": h.fire_time.map(|t| format_python(t, state.tz)),
            })
        })
        .collect();
    Ok(Reply::Data(json!({"job_id": id.as_str(), "total": list.len(), "list": list})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_read_within_their_bucket() {
        let mut late = [0u64; 14];
        assert_eq!(quantile(&late, 0.5), None);
        late[0] = 100; // all within 5 ms
        assert!(quantile(&late, 0.5).is_some_and(|v| (v - 2.5).abs() < 1e-9));
        late[7] = 100; // half within (500, 1000] ms
        assert!(quantile(&late, 0.99).is_some_and(|v| v > 500.0 && v <= 1000.0));
        assert!(quantile(&late, 0.25).is_some_and(|v| v <= 5.0));
    }
}
