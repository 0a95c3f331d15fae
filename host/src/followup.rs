//! What goes on around runs: alerts, chains, the circuit breaker and deadlines.
//!
//! The dispatcher asks [`after_end`] what a run's end sets off (chained runs to queue, the
//! job's count of failed runs in a row, alerts); the store writes it in the transaction that
//! records the end, so nothing is lost or doubled when a node dies. [`follow_ups`] (a task per
//! node) then does, on whichever node gets there first: sends due alerts through the plugin
//! their target names (retried with backoff), starts the runs chains queued, probes the jobs
//! the breaker paused, and raises the deadlines that passed. Alert texts are written here, in
//! the node's language, from the facts the store keeps.

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use serde_json::json;

use crate::calendar::Calendars;
use crate::clock::Timestamp;
use crate::dispatch::{Dispatcher, HandRun, RunNowError};
use crate::model::{
    AlertDraft, AlertKind, AlertRecord, AlertState, ClaimedRun, Job, MAX_PROBE_WAIT_SECS, Outcome, Overlap, RunRecord,
    RunState, RunTrigger,
};
use crate::plugin::RunRequest;
use crate::store::{AfterEnd, DeadlineMove, StoreError, Streak};
use crate::trigger::format_python;

/// The node's alert settings (`--alert`, `--alert-on`, `--public-url`, `--alert-lang`).
#[derive(Debug, Clone, Default)]
pub struct AlertSettings {
    /// Targets of the jobs that name none.
    pub default_targets: Vec<String>,
    /// What those jobs are alerted of (empty: [`AlertKind::DEFAULT`]).
    pub default_kinds: Vec<AlertKind>,
    /// The dashboard's address as users reach it, for links in alerts.
    pub public_url: Option<String>,
    /// The language of alert texts.
    pub lang: Lang,
}

/// A language alerts are written in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Chinese.
    Zh,
}

impl Lang {
    /// Reads `en` or `zh`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "en" => Some(Self::En),
            "zh" => Some(Self::Zh),
            _ => None,
        }
    }
}

/// Bytes of the ending run's output handed to a chained run (in its `params`).
pub const CHAIN_OUTPUT_BYTES: usize = 64 * 1024;
/// Lines and characters of a run's output an alert carries.
const ALERT_OUTPUT_LINES: usize = 10;
const ALERT_OUTPUT_CHARS: usize = 1000;
/// Tries of an alert before it is given up as failed.
pub const ALERT_ATTEMPTS: u32 = 8;
/// Wait before an alert's second try; it doubles after each failed try, up to
/// [`ALERT_RETRY_MAX`].
const ALERT_RETRY_FIRST: Duration = Duration::from_secs(1);
const ALERT_RETRY_MAX: Duration = Duration::from_secs(300);
/// How long a node holds an alert it is sending before another may try it.
const ALERT_CLAIM: Duration = Duration::from_secs(60);
/// How often a node looks for due alerts, queued chained runs, probes and deadlines.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Alerts sent at once by one node.
const ALERTS_AT_ONCE: u32 = 16;
/// Longest answer of a target kept with its alert.
const ANSWER_CHARS: usize = 1000;

/// The alert targets and kinds that apply to `job` on a node with `settings`.
fn targets<'a>(job: &'a Job, settings: &'a AlertSettings) -> (&'a [String], &'a [AlertKind]) {
    if !job.follow.alert.is_empty() {
        return (&job.follow.alert, job.follow.kinds());
    }
    let kinds = if settings.default_kinds.is_empty() { &AlertKind::DEFAULT[..] } else { &settings.default_kinds };
    (&settings.default_targets, kinds)
}

/// The id of the run `target` gets when `run` ends (the same whichever node records the end).
pub fn chained_run_id(run_id: &str, target: &str) -> String {
    let name = format!("{run_id}\nchain\n{target}");
    uuid::Uuid::new_v5(&CHAIN_NAMESPACE, name.as_bytes()).simple().to_string()
}

/// The namespace of chained run ids.
const CHAIN_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5d1c_9b7e_41a2_4c0f_8e63_27b4_d9a1_0c58);

/// What ends and what it ended with, for [`after_end`].
pub struct Ending<'a> {
    /// The run.
    pub run: &'a ClaimedRun,
    /// How it ended; `None`: its fire time was skipped as missed.
    pub outcome: Option<Outcome>,
    /// Its whole output.
    pub output: &'a str,
    /// When it ended.
    pub ended: Timestamp,
    /// Whether it is tried again (a failure that is retried is not one yet).
    pub retried: bool,
}

/// What the end of a run sets off for its job, or `None` when its job has no follow-ups.
pub fn after_end(
    end: &Ending<'_>,
    node: &str,
    calendars: &Calendars,
    tz: Tz,
    settings: &AlertSettings,
) -> Option<Box<AfterEnd>> {
    let (run, job) = (end.run, &end.run.job);
    let follow = &job.follow;
    let (targets, kinds) = targets(job, settings);
    let counts = follow.pause_after_failures.is_some() || !targets.is_empty();
    let failed = matches!(end.outcome, Some(Outcome::Failed | Outcome::Timeout)) && !end.retried;
    let chains = match end.outcome {
        Some(Outcome::Success) => &follow.on_success[..],
        _ if failed => &follow.on_failure[..],
        _ => &[],
    };
    let watches = end.outcome == Some(Outcome::Success) && job.health.deadline_fire.is_some_and(|w| end.ended >= w);
    let probe = run.trigger == RunTrigger::Probe;
    // A success of a job with no failures counted (as its claim read the count) changes
    // nothing, so the common case costs no statement. The read is stale only when another run
    // of the job ended meanwhile (`overlap=allow`): the next success then resets the count.
    let counts_end = counts && (end.outcome != Some(Outcome::Success) || job.health.fail_streak > 0);
    if !counts_end && chains.is_empty() && !watches && !probe {
        return None;
    }
    let draft = |kind: AlertKind, detail: String| {
        (!targets.is_empty() && kinds.contains(&kind)).then(|| AlertDraft {
            kind,
            job_id: job.id.to_string(),
            job_name: job.name.clone(),
            fire_time: Some(run.fire_time),
            run_id: Some(run.run_id.clone()),
            node: node.to_owned(),
            outcome: end.outcome,
            output: output_head(end.output),
            detail,
            targets: targets.to_vec(),
            quiet: follow.quiet(),
        })
    };
    let mut after = AfterEnd::default();
    let kind = match end.outcome {
        Some(Outcome::Failed) if failed => Some(AlertKind::Failure),
        Some(Outcome::Timeout) if failed => Some(AlertKind::Timeout),
        Some(Outcome::Killed) => Some(AlertKind::Killed),
        None => Some(AlertKind::Missed),
        _ => None,
    };
    after.alerts.extend(kind.and_then(|k| draft(k, String::new())));
    let deadline = |to: Option<Timestamp>| {
        let secs = chrono::Duration::seconds(follow.deadline_secs? as i64);
        Some(DeadlineMove { from: job.health.deadline_fire, to, due: to.map(|t| t + secs) })
    };
    if end.outcome == Some(Outcome::Success) && (counts_end || probe) {
        let resume = probe.then(|| {
            let next = calendars.next_for_job(job, tz, None, end.ended);
            (next, deadline(next).map(|w| DeadlineMove { from: None, ..w }))
        });
        after.streak = Some(Streak::Reset { resume });
        after.recovery = draft(AlertKind::Recovery, String::new());
    } else if failed && probe {
        let wait = (job.health.probe_wait_secs.unwrap_or(1.0) * 2.0).min(MAX_PROBE_WAIT_SECS as f64);
        let at = end.ended + chrono::Duration::microseconds((wait * 1e6) as i64);
        after.streak = Some(Streak::ProbeFailed { at, wait });
    } else if failed && counts {
        let streak = job.health.fail_streak + 1;
        let reason = format!(
            "paused by its circuit breaker after {streak} failed runs in a row (pause_after_failures={}); the last {} at {}",
            follow.pause_after_failures.unwrap_or(0),
            end.outcome.map_or("failed", Outcome::as_str),
            format_python(run.fire_time, job.zone(tz)),
        );
        let probe = follow.resume_after_secs.map(|s| (end.ended + chrono::Duration::seconds(s as i64), s as f64));
        after.paused = draft(AlertKind::Paused, reason.clone());
        after.streak = Some(Streak::Grow { pause_after: follow.pause_after_failures, reason, probe });
    }
    if watches {
        // The watched fire time (or a later one) ended well: watch the next one.
        let watched = job.health.deadline_fire.unwrap_or(run.fire_time);
        let base = if matches!(run.trigger, RunTrigger::Scheduled | RunTrigger::Retry) {
            watched.max(run.rule_fire)
        } else {
            watched
        };
        after.deadline = deadline(calendars.next_for_job(job, tz, Some(base), base));
    }
    for target in chains {
        after.chained.push(chained_run(end, target.as_str(), node));
    }
    Some(Box::new(after))
}

/// The queued run `target` gets when `end` ends.
fn chained_run(end: &Ending<'_>, target: &str, node: &str) -> RunRecord {
    let run = end.run;
    let mut output = end.output;
    if output.len() > CHAIN_OUTPUT_BYTES {
        let mut cut = CHAIN_OUTPUT_BYTES;
        while !output.is_char_boundary(cut) {
            cut -= 1;
        }
        output = &output[..cut];
    }
    let params = json!({
        "run_id": run.run_id,
        "job_id": run.job.id.as_str(),
        "outcome": end.outcome.map(Outcome::as_str),
        "node": node,
        "output": output,
    });
    RunRecord {
        run_id: chained_run_id(&run.run_id, target),
        job_id: target.to_owned(),
        job_name: String::new(),
        cmd: String::new(),
        fire_time: end.ended,
        trigger: RunTrigger::Chain,
        attempt: 1,
        node: String::new(),
        state: RunState::Pending,
        started: end.ended,
        ended: None,
        lease_until: end.ended,
        outcome: None,
        kill_requested: false,
        params: Some(params.to_string()),
        output_len: 0,
    }
}

/// The first lines of a run's output, as an alert carries them.
fn output_head(output: &str) -> String {
    let lines: Vec<&str> = output.trim_end().lines().take(ALERT_OUTPUT_LINES).collect();
    let mut head = lines.join("\n");
    if head.chars().count() > ALERT_OUTPUT_CHARS {
        head = head.chars().take(ALERT_OUTPUT_CHARS).collect::<String>() + "…";
    }
    head
}

/// The alert's message for people, in `lang`; times in `tz`.
pub fn alert_text(a: &AlertRecord, settings: &AlertSettings, tz: Tz) -> String {
    let zh = settings.lang == Lang::Zh;
    let id = &a.job_id;
    let title = match (a.kind, zh) {
        (AlertKind::Failure, false) => format!("job {id} failed"),
        (AlertKind::Timeout, false) => format!("job {id} timed out"),
        (AlertKind::Killed, false) => format!("job {id} was killed"),
        (AlertKind::Recovery, false) => format!("job {id} recovered"),
        (AlertKind::Missed, false) => format!("job {id} missed a fire time"),
        (AlertKind::Deadline, false) => format!("job {id} missed its deadline"),
        (AlertKind::Paused, false) => format!("job {id} was paused by its circuit breaker"),
        (AlertKind::Failure, true) => format!("任务 {id} 运行失败"),
        (AlertKind::Timeout, true) => format!("任务 {id} 运行超时"),
        (AlertKind::Killed, true) => format!("任务 {id} 被终止"),
        (AlertKind::Recovery, true) => format!("任务 {id} 已恢复"),
        (AlertKind::Missed, true) => format!("任务 {id} 错过了触发时间"),
        (AlertKind::Deadline, true) => format!("任务 {id} 未在截止时间前成功完成"),
        (AlertKind::Paused, true) => format!("任务 {id} 已被熔断暂停"),
    };
    let labels = if zh {
        ["任务", "触发时间", "节点", "执行", "结果", "说明", "输出"]
    } else {
        ["job", "fire time", "node", "run", "outcome", "detail", "output"]
    };
    let mut lines = vec![format!("[{}] {title}", if zh { "如期" } else { "RuQi" })];
    lines.push(format!("{}: {} ({})", labels[0], a.job_id, a.job_name));
    if let Some(t) = a.fire_time {
        lines.push(format!("{}: {} {}", labels[1], format_python(t, tz), tz.name()));
    }
    lines.push(format!("{}: {}", labels[2], a.node));
    if let Some(run) = &a.run_id {
        lines.push(format!("{}: {run}", labels[3]));
    }
    if let Some(o) = a.outcome {
        lines.push(format!("{}: {}", labels[4], o.as_str()));
    }
    if !a.detail.is_empty() {
        lines.push(format!("{}: {}", labels[5], a.detail));
    }
    if !a.output.is_empty() {
        lines.push(format!("{}:\n{}", labels[6], a.output));
    }
    if let Some(url) = run_url(a, settings) {
        lines.push(url);
    }
    if a.earlier_suppressed > 0 {
        lines.push(if zh {
            format!("(此前静默期内另有 {} 条同类告警未发送)", a.earlier_suppressed)
        } else {
            format!("({} more such alerts were held back by the quiet window before this one)", a.earlier_suppressed)
        });
    }
    lines.join("\n")
}

/// The link to the alert's run (else its job) on the dashboard, when the node knows its address.
fn run_url(a: &AlertRecord, settings: &AlertSettings) -> Option<String> {
    let base = settings.public_url.as_deref()?.trim_end_matches('/');
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    Some(match &a.run_id {
        Some(run) => format!("{base}/#/run?run_id={}", enc(run)),
        None => format!("{base}/#/edit?job_id={}", enc(&a.job_id)),
    })
}

/// The alert as a JSON object (what webhooks and queues receive).
pub fn alert_json(a: &AlertRecord, settings: &AlertSettings, tz: Tz) -> serde_json::Value {
    json!({
        "alert_id": a.id,
        "kind": a.kind.as_str(),
        "job_id": a.job_id,
        "job_name": a.job_name,
        "fire_time": a.fire_time.map(|t| format_python(t, tz)),
        "run_id": a.run_id,
        "node": a.node,
        "outcome": a.outcome.map(Outcome::as_str),
        "output": a.output,
        "detail": a.detail,
        "created": format_python(a.created, tz),
        "suppressed_before": a.earlier_suppressed,
        "url": run_url(a, settings),
        "text": alert_text(a, settings, tz),
    })
}

/// How an alert reaches `target`: the cmd its plugin runs, and the params it gets. A webhook
/// (`http://`, `https://`) or a queue topic (`/topic`) gets the alert's JSON `payload` after `#`;
/// a named target of a prefix (`dingtalk:ops`, `sms:oncall`: one word, no blank) gets the `text`
/// after `#`; a target that carries its own payload (`…#…`) runs as it is; a command
/// (`bash notify.sh`) runs as it is with the JSON as its params (shell-bridge passes them as
/// the script's last argument).
pub fn alert_cmd(target: &str, payload: &str, text: &str) -> (String, Option<String>) {
    if target.contains('#') {
        (target.to_owned(), None)
    } else if target.starts_with("http://") || target.starts_with("https://") || target.starts_with('/') {
        (format!("{target}#{payload}"), None)
    } else if !target.contains(char::is_whitespace) && target.contains(':') {
        (format!("{target}#{text}"), None)
    } else {
        (target.to_owned(), Some(payload.to_owned()))
    }
}

/// The cmd of a sample alert, for checking a target when a job names it.
pub fn sample_cmd(target: &str) -> String {
    alert_cmd(target, r#"{"kind":"failure","text":"RuQi alert check"}"#, "RuQi alert check").0
}

/// Sends the due alerts, starts queued chained runs, probes paused jobs and raises passed
/// deadlines, every second, until `cancel`.
pub async fn follow_ups(dispatcher: Arc<Dispatcher>, cancel: tokio_util::sync::CancellationToken) {
    let mut looks: u64 = 0;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
        if dispatcher.is_stopping() {
            return;
        }
        if let Err(e) = send_alerts(&dispatcher).await {
            tracing::warn!(error = %e, "cannot send alerts now; trying again");
        }
        if let Err(e) = start_chained(&dispatcher).await {
            tracing::warn!(error = %e, "cannot start chained runs now; trying again");
        }
        if let Err(e) = probe(&dispatcher).await {
            tracing::warn!(error = %e, "cannot start probe runs now; trying again");
        }
        if let Err(e) = deadlines(&dispatcher).await {
            tracing::warn!(error = %e, "cannot check deadlines now; trying again");
        }
        // The run rollups are kept for 8 days: pruned every 10 minutes (and at start).
        if looks.is_multiple_of(600) {
            let before = dispatcher.clock().now() - crate::store::STATS_KEEP;
            if let Err(e) = dispatcher.store().prune_stats(before).await {
                tracing::warn!(error = %e, "cannot prune the run rollups now");
            }
        }
        looks += 1;
    }
}

/// Sends the alerts due now (claimed, so one node sends each), each through its target's
/// plugin; a failed try is tried again later, up to [`ALERT_ATTEMPTS`].
async fn send_alerts(d: &Arc<Dispatcher>) -> Result<(), StoreError> {
    let (store, clock, config) = (d.store(), d.clock(), d.config());
    let now = clock.now();
    let until = now + chrono::Duration::from_std(ALERT_CLAIM).unwrap_or_default();
    let alerts = store.claim_alerts(&config.node, now, until, ALERTS_AT_ONCE).await?;
    let sends = alerts.into_iter().map(|alert| async move {
        let settings = &config.alerts;
        let payload = alert_json(&alert, settings, config.tz).to_string();
        let text = alert_text(&alert, settings, config.tz);
        let (cmd, params) = alert_cmd(&alert.target, &payload, &text);
        let request = RunRequest {
            run_id: format!("alert-{}", alert.id),
            job_id: alert.job_id.clone(),
            job_name: alert.job_name.clone(),
            cmd: cmd.clone(),
            fire_time: alert.fire_time.map(|t| format_python(t, config.tz)).unwrap_or_default(),
            params,
        };
        let outcome = d.executor().execute(&request).await;
        let success = outcome.success();
        let answer: String = outcome.into_output().chars().take(ANSWER_CHARS).collect();
        let now = clock.now();
        let (state, next_try) = if success {
            tracing::info!(job_id = %alert.job_id, kind = alert.kind.as_str(), target = %alert.target, "alert sent");
            (AlertState::Sent, None)
        } else if alert.attempts >= ALERT_ATTEMPTS {
            tracing::warn!(job_id = %alert.job_id, kind = alert.kind.as_str(), target = %alert.target, answer = %answer, "alert given up: every try failed");
            (AlertState::Failed, None)
        } else {
            let wait = ALERT_RETRY_FIRST.saturating_mul(1 << (alert.attempts.saturating_sub(1)).min(16)).min(ALERT_RETRY_MAX);
            tracing::info!(job_id = %alert.job_id, kind = alert.kind.as_str(), target = %alert.target, retry_in_ms = wait.as_millis() as u64, answer = %answer, "alert not taken; trying again");
            (AlertState::Pending, Some(now + chrono::Duration::from_std(wait).unwrap_or_default()))
        };
        if let Err(e) = store.end_alert(alert.id, &config.node, state, &answer, next_try, now).await {
            tracing::warn!(error = %e, "cannot record the alert's try; it is tried again when its claim runs out");
        }
    });
    futures_util::future::join_all(sends).await;
    Ok(())
}

/// Starts the runs chains queued (one node takes each), as runs of their jobs that wait for
/// a run in progress to end.
async fn start_chained(d: &Arc<Dispatcher>) -> Result<(), StoreError> {
    let free = d.free_slots();
    if free == 0 {
        return Ok(());
    }
    let lease_until = d.clock().now() + chrono::Duration::from_std(d.lease()).unwrap_or_default();
    let taken = d.store().take_pending_runs(d.node(), lease_until, free.min(64) as u32).await?;
    for run in taken {
        let Ok(job_id) = crate::model::JobId::parse(&run.job_id) else { continue };
        let ask = HandRun {
            job_id: job_id.clone(),
            trigger: RunTrigger::Chain,
            fire_time: Some(run.fire_time),
            run_id: Some(run.run_id.clone()),
            overlap: Some(Overlap::BufferAll),
            params: run.params.clone(),
        };
        match d.run_by_hand(ask).await {
            Ok(_) => tracing::info!(job_id = %job_id, run_id = %run.run_id, "chained run started"),
            Err(RunNowError::Store(StoreError::NotFound(_))) => {
                let out = "not started: its job was removed";
                d.store().end_run(&run.run_id, d.node(), Outcome::Lost, d.clock().now(), Some(out)).await?;
                tracing::warn!(job_id = %job_id, run_id = %run.run_id, "chained run not started: its job was removed");
            }
            // Its row stays waiting on this node: when its lease runs out it is queued again.
            Err(e) => tracing::warn!(job_id = %job_id, error = %e, "chained run not started now"),
        }
    }
    Ok(())
}

/// Starts the probe run of each job the breaker paused whose wait is over.
async fn probe(d: &Arc<Dispatcher>) -> Result<(), StoreError> {
    for job_id in d.store().due_probes(d.clock().now(), 16).await? {
        let ask = HandRun {
            job_id: job_id.clone(),
            trigger: RunTrigger::Probe,
            fire_time: None,
            run_id: None,
            overlap: Some(Overlap::Skip),
            params: None,
        };
        match d.run_by_hand(ask).await {
            Ok((run_id, _)) => tracing::info!(job_id = %job_id, run_id = %run_id, "probe run started"),
            Err(RunNowError::Busy(_)) => {} // its probe (or another run) is going on
            Err(e) => tracing::warn!(job_id = %job_id, error = %e, "probe run not started now"),
        }
    }
    Ok(())
}

/// Raises the deadlines that passed: the watch of each such job moves to its first fire time
/// whose deadline is still ahead (one node does it), and a `deadline` alert is queued.
async fn deadlines(d: &Arc<Dispatcher>) -> Result<(), StoreError> {
    let (store, config) = (d.store(), d.config());
    let now = d.clock().now();
    for job in store.due_deadlines(now, 64).await? {
        let (Some(watched), Some(secs)) = (job.health.deadline_fire, job.follow.deadline_secs) else { continue };
        let secs = chrono::Duration::seconds(secs as i64);
        let base = watched.max(now - secs);
        let to = job.next_run_time.and_then(|_| config.calendars.next_for_job(&job, config.tz, Some(base), base));
        let watch = DeadlineMove { from: Some(watched), to, due: to.map(|t| t + secs) };
        let (targets, kinds) = targets(&job, &config.alerts);
        let detail = format!(
            "no successful run of the fire time {} by {} (deadline {} s)",
            format_python(watched, job.zone(config.tz)),
            format_python(watched + secs, job.zone(config.tz)),
            secs.num_seconds()
        );
        let draft = (!targets.is_empty() && kinds.contains(&AlertKind::Deadline)).then(|| AlertDraft {
            kind: AlertKind::Deadline,
            job_id: job.id.to_string(),
            job_name: job.name.clone(),
            fire_time: Some(watched),
            run_id: None,
            node: config.node.clone(),
            outcome: None,
            output: String::new(),
            detail: detail.clone(),
            targets: targets.to_vec(),
            quiet: job.follow.quiet(),
        });
        if store.deadline_passed(&job.id, watch, draft.as_ref(), now).await? {
            tracing::warn!(job_id = %job.id, "{detail}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_target_gets_its_payload() {
        let (json, text) = (r#"{"k":1}"#, "job x failed");
        assert_eq!(alert_cmd("http://h/hook", json, text), (format!("http://h/hook#{json}"), None));
        assert_eq!(alert_cmd("/alerts", json, text), (format!("/alerts#{json}"), None));
        assert_eq!(alert_cmd("dingtalk:ops", json, text), ("dingtalk:ops#job x failed".to_owned(), None));
        assert_eq!(alert_cmd("wecom:x#fixed words", json, text), ("wecom:x#fixed words".to_owned(), None));
        assert_eq!(alert_cmd("bash notify.sh", json, text), ("bash notify.sh".to_owned(), Some(json.to_owned())));
    }

    #[test]
    fn chained_run_ids_are_stable_and_distinct() {
        assert_eq!(chained_run_id("r1", "b"), chained_run_id("r1", "b"));
        assert_ne!(chained_run_id("r1", "b"), chained_run_id("r1", "c"));
        assert_ne!(chained_run_id("r1", "b"), chained_run_id("r2", "b"));
    }
}
