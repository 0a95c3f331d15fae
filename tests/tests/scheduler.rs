//! The scheduler and dispatcher on a `ManualClock`: due runs fire once each, misfires are
//! skipped, date jobs end, a slow run never overlaps the next one. No wall-clock sleeps
//! decide anything here; time moves only when the test moves it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use ruqi::clock::{Clock, ManualClock, Timestamp};
use ruqi::dispatch::{DispatchConfig, Dispatcher, RunExecutor};
use ruqi::model::{HistoryFilter, Job, JobId, Page};
use ruqi::plugin::{ExecOutcome, RunRequest};
use ruqi::scheduler::{Scheduler, SchedulerHandle};
use ruqi::store::JobStore;
use ruqi::trigger::{Trigger, TriggerKind};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

const TZ: chrono_tz::Tz = chrono_tz::UTC;

/// Records each run's fire time; optionally blocks each run until the test lets it finish.
#[derive(Default)]
struct Recorder {
    fired: Mutex<Vec<(String, String)>>,
    running: Mutex<usize>,
    max_running: Mutex<usize>,
    gate: Option<Arc<Semaphore>>,
}

#[async_trait]
impl RunExecutor for Recorder {
    async fn execute(&self, request: &RunRequest) -> ExecOutcome {
        {
            let mut r = self.running.lock().unwrap();
            *r += 1;
            let mut m = self.max_running.lock().unwrap();
            *m = (*m).max(*r);
        }
        self.fired.lock().unwrap().push((request.job_id.clone(), request.fire_time.clone()));
        if let Some(g) = &self.gate {
            g.acquire().await.unwrap().forget();
        }
        *self.running.lock().unwrap() -= 1;
        ExecOutcome::Finished { success: true, output: "ok".into() }
    }
}

struct Rig {
    clock: ManualClock,
    store: Arc<dyn JobStore>,
    recorder: Arc<Recorder>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap()
}

async fn rig(recorder: Recorder) -> Rig {
    let clock = ManualClock::new(t0());
    let store = ruqi::store::open("memory", TZ).await.unwrap();
    let recorder = Arc::new(recorder);
    let handle = SchedulerHandle::default();
    let metrics = Arc::new(ruqi::metrics::Metrics::new());
    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        recorder.clone(),
        Arc::new(clock.clone()),
        DispatchConfig {
            node: "test:1:1".into(),
            concurrency: 8,
            lease: Duration::from_secs(10),
            misfire_grace: Duration::from_secs(30),
            tz: TZ,
            calendars: Arc::new(ruqi::calendar::Calendars::none()),
            run_output_limit: 1 << 20,
            kill_grace: Duration::from_secs(5),
            alerts: Default::default(),
        },
        handle.notifier(),
        metrics.clone(),
    ));
    let scheduler = Scheduler::new(store.clone(), Arc::new(clock.clone()), dispatcher, handle, None);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(scheduler.run(cancel.clone()));
    Rig { clock, store, recorder, cancel, task }
}

impl Rig {
    async fn add(&self, id: &str, kind: TriggerKind, rule: &str) {
        let now = self.clock.now();
        let trigger = Trigger::parse(kind, rule, TZ, now).unwrap();
        let next = trigger.next_fire(None, now);
        let job = Job {
            id: JobId::parse(id).unwrap(),
            name: "n".into(),
            cmd: "x".into(),
            trigger,
            next_run_time: next,
            created: now,
            updated: now,
            timezone: None,
            calendar: None,
            home_zone: None,
            policy: Default::default(),
            follow: Default::default(),
            health: Default::default(),
        };
        self.store.add_job(&job).await.unwrap();
    }

    /// Moves the clock by `secs` one second at a time, letting the loop catch up each step.
    async fn tick(&self, secs: i64) {
        for _ in 0..secs {
            self.clock.advance(chrono::Duration::seconds(1));
            settle().await;
        }
    }

    fn fired(&self, id: &str) -> Vec<String> {
        self.recorder.fired.lock().unwrap().iter().filter(|(j, _)| j == id).map(|(_, t)| t.clone()).collect()
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap();
    }
}

/// Lets spawned tasks run until they block (the manual clock does not move by itself).
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
}

#[tokio::test]
async fn interval_fires_on_its_grid_once_per_fire_time() {
    let r = rig(Recorder::default()).await;
    r.add("i", TriggerKind::Interval, "2s").await;
    r.tick(7).await;
    assert_eq!(r.fired("i"), ["2026-11-24 10:00:02", "2026-11-24 10:00:04", "2026-11-24 10:00:06"]);
    let (n, rows) = r.store.list_history(&HistoryFilter::default(), Page::ALL).await.unwrap();
    assert_eq!(n, 3);
    assert!(rows.iter().all(|h| h.success && h.scheduler_name == "test:1:1"));
    r.stop().await;
}

#[tokio::test]
async fn date_jobs_fire_once_and_are_removed() {
    let r = rig(Recorder::default()).await;
    r.add("d", TriggerKind::Date, "2026-11-24 10:00:03").await;
    r.add("now", TriggerKind::Date, "now").await;
    settle().await;
    assert_eq!(r.fired("now").len(), 1, "`now` fires at once");
    r.tick(6).await;
    assert_eq!(r.fired("d"), ["2026-11-24 10:00:03"]);
    assert!(r.store.get_job(&JobId::parse("d").unwrap()).await.unwrap().is_none());
    r.stop().await;
}

#[tokio::test]
async fn misfires_beyond_the_grace_are_skipped_without_history() {
    let r = rig(Recorder::default()).await;
    r.add("late", TriggerKind::Date, "2026-11-24 09:58:00").await; // 120 s in the past
    r.add("recent", TriggerKind::Date, "2026-11-24 09:59:45").await; // 15 s: within grace
    r.add("cron", TriggerKind::Cron, "*/10 * * * * *").await;
    settle().await;
    assert!(r.fired("late").is_empty());
    assert_eq!(r.fired("recent").len(), 1);
    assert!(r.store.get_job(&JobId::parse("late").unwrap()).await.unwrap().is_none(), "missed date job removed");
    let f = HistoryFilter { job_id: Some("late".into()), ..Default::default() };
    assert_eq!(r.store.list_history(&f, Page::ALL).await.unwrap().0, 0);
    // the scheduler is stalled (clock jumps 95 s): the cron catches up only within the grace
    r.tick(1).await; // 10:00:01
    r.clock.advance(chrono::Duration::seconds(95)); // 10:01:36
    settle().await;
    r.tick(1).await;
    let fired = r.fired("cron");
    assert_eq!(fired.first().map(String::as_str), Some("2026-11-24 10:00:00"));
    assert!(
        !fired.iter().any(|t| t.as_str() < "2026-11-24 10:01:06" && t.as_str() > "2026-11-24 10:00:00"),
        "{fired:?}"
    );
    assert!(
        fired.contains(&"2026-11-24 10:01:10".to_owned()) && fired.contains(&"2026-11-24 10:01:30".to_owned()),
        "{fired:?}"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_slow_run_never_overlaps_the_next_one() {
    let gate = Arc::new(Semaphore::new(0));
    let r = rig(Recorder { gate: Some(gate.clone()), ..Default::default() }).await;
    r.add("slow", TriggerKind::Interval, "1s").await;
    r.tick(5).await; // fire times 1..5 come while the first run is still going
    assert_eq!(r.fired("slow").len(), 1, "one run in flight");
    gate.add_permits(100);
    settle().await;
    r.tick(1).await;
    let fired = r.fired("slow");
    // RuQi's overlap rule (`skip`): the fire times that came during the run are skipped; the job
    // goes on from the first fire time after the run's end.
    assert_eq!(fired[..2], ["2026-11-24 10:00:01", "2026-11-24 10:00:06"], "skipped while running: {fired:?}");
    let mut sorted = fired.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), fired.len(), "no fire time twice");
    assert_eq!(*r.recorder.max_running.lock().unwrap(), 1);
    r.stop().await;
}

#[tokio::test]
async fn wakeup_and_status_reflect_the_next_run() {
    let clock = ManualClock::new(t0());
    let store = ruqi::store::open("memory", TZ).await.unwrap();
    let handle = SchedulerHandle::default();
    let metrics = Arc::new(ruqi::metrics::Metrics::new());
    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        Arc::new(Recorder::default()),
        Arc::new(clock.clone()),
        DispatchConfig {
            node: "n".into(),
            concurrency: 2,
            lease: Duration::from_secs(10),
            misfire_grace: Duration::from_secs(30),
            tz: TZ,
            calendars: Arc::new(ruqi::calendar::Calendars::none()),
            run_output_limit: 1 << 20,
            kill_grace: Duration::from_secs(5),
            alerts: Default::default(),
        },
        handle.notifier(),
        metrics.clone(),
    ));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(
        Scheduler::new(store.clone(), Arc::new(clock.clone()), dispatcher, handle.clone(), None).run(cancel.clone()),
    );
    settle().await;
    let s = handle.status();
    assert_eq!((s.check_time, s.next_wakeup_time, s.wait_seconds), (Some(t0()), None, Some(300.0)), "no jobs: 300 s");
    let trigger = Trigger::parse(TriggerKind::Interval, "1h", TZ, t0()).unwrap();
    let job = Job {
        id: JobId::parse("h").unwrap(),
        name: "n".into(),
        cmd: "x".into(),
        next_run_time: trigger.next_fire(None, t0()),
        trigger,
        created: t0(),
        updated: t0(),
        timezone: None,
        calendar: None,
        home_zone: None,
        policy: Default::default(),
        follow: Default::default(),
        health: Default::default(),
    };
    store.add_job(&job).await.unwrap();
    handle.wake();
    settle().await;
    let s = handle.status();
    assert_eq!(s.next_wakeup_time, Some(t0() + chrono::Duration::hours(1)));
    assert_eq!(s.wait_seconds, Some(3600.0));
    cancel.cancel();
    task.await.unwrap();
}

/// While its runs take long, a node claims no more than its slots and one queued run a slot
/// (its queue grows only with the runs it records): the other due runs stay for other nodes.
#[tokio::test]
async fn a_busy_node_leaves_the_runs_it_cannot_start_to_others() {
    let gate = Arc::new(Semaphore::new(0));
    let rig = rig(Recorder { gate: Some(gate.clone()), ..Default::default() }).await;
    for i in 0..100 {
        rig.add(&format!("j{i}"), TriggerKind::Interval, "10s").await;
    }
    rig.tick(10).await;
    assert_eq!(*rig.recorder.running.lock().unwrap(), 8, "every slot runs");
    let now = rig.clock.now();
    let rest = rig.store.claim_due(now, "other", now + chrono::Duration::seconds(10), 1000).await.unwrap();
    assert_eq!(rest.len(), 100 - 2 * 8, "8 running and 8 queued here, the rest left");
    gate.add_permits(1000);
    rig.stop().await;
}
