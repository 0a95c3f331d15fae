//! One conformance suite for every store backend: the same checks run on memory, SQLite and
//! MariaDB (the real server on 127.0.0.1:3306). Each test gets its own database.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use ruqi::clock::Timestamp;
use ruqi::model::{ClaimedRun, HistoryFilter, HistoryRecord, Job, JobFilter, JobId, NodeSeen, Page};
use ruqi::store::{FinishOutcome, JobStore, StoreError};
use ruqi::trigger::{Trigger, TriggerKind};
use ruqi_tests::MysqlDb;

const TZ: chrono_tz::Tz = chrono_tz::UTC;

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap()
}

fn job(id: &str, name: &str, kind: TriggerKind, rule: &str, created: Timestamp) -> Job {
    let trigger = Trigger::parse(kind, rule, TZ, created).unwrap();
    let next = trigger.next_fire(None, created);
    Job {
        id: JobId::parse(id).unwrap(),
        name: name.into(),
        cmd: format!("bash {id}.sh"),
        trigger,
        next_run_time: next,
        created,
        updated: created,
        timezone: None,
        calendar: None,
        home_zone: None,
        policy: Default::default(),
        follow: Default::default(),
        health: Default::default(),
    }
}

fn history(job_id: &str, fire: Timestamp, success: bool, node: &str) -> HistoryRecord {
    HistoryRecord {
        id: 0,
        job_id: job_id.into(),
        job_name: "n".into(),
        cmd: "x".repeat(200),
        success,
        output: "out".into(),
        cost: 0.25,
        scheduler_name: node.into(),
        created: fire + Duration::seconds(1),
        fire_time: Some(fire),
        // A scheduled run's id, derived from job and fire time: one row per fire time.
        run: Some(ruqi::model::RunMeta {
            run_id: ruqi::model::scheduled_run_id(&JobId::parse(job_id).unwrap(), fire),
            started: fire,
            ended: fire + Duration::seconds(1),
            attempt: 1,
            trigger: ruqi::model::RunTrigger::Scheduled,
            outcome: if success { ruqi::model::Outcome::Success } else { ruqi::model::Outcome::Failed },
        }),
    }
}

/// Keeps a backend's file or database alive for the test (dropped after the store).
type Guard = Box<dyn std::any::Any + Send>;

async fn backends() -> Vec<(&'static str, Arc<dyn JobStore>, Guard)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = ruqi::store::open(&format!("sqlite://{}", dir.path().join("s.db").display()), TZ).await.unwrap();
    let memory = ruqi::store::open("memory", TZ).await.unwrap();
    let mem_sqlite = ruqi::store::open("sqlite::memory:", TZ).await.unwrap();
    let db = MysqlDb::create("store").await;
    let mysql = ruqi::store::open(&db.url, TZ).await.unwrap();
    vec![
        ("sqlite", sqlite, Box::new(dir)),
        ("memory", memory, Box::new(())),
        ("sqlite-mem", mem_sqlite, Box::new(())),
        ("mysql", mysql, Box::new(db)),
    ]
}

#[tokio::test]
async fn jobs_round_trip_and_crud_errors() {
    for (name, store, _dir) in backends().await {
        let a = job("a", "g1", TriggerKind::Interval, "10s", t0());
        let b = job("b", "g2", TriggerKind::Cron, "0 0 3 * * mon-fri", t0() + Duration::seconds(1));
        let d = job("d", "g1", TriggerKind::Date, "2030-12-16 18:05:17.682862", t0() + Duration::seconds(2));
        for j in [&a, &b, &d] {
            store.add_job(j).await.unwrap();
        }
        assert!(matches!(store.add_job(&a).await, Err(StoreError::AlreadyExists(_))), "{name}");
        for j in [&a, &b, &d] {
            assert_eq!(store.get_job(&j.id).await.unwrap().as_ref(), Some(j), "{name}: round trip of {}", j.id);
        }
        let ghost = JobId::parse("ghost").unwrap();
        assert!(store.get_job(&ghost).await.unwrap().is_none());
        assert!(matches!(store.remove_job(&ghost).await, Err(StoreError::NotFound(_))), "{name}");
        let mut g = job("ghost", "x", TriggerKind::Interval, "1s", t0());
        assert!(matches!(store.update_job(&g).await, Err(StoreError::NotFound(_))), "{name}");

        // update keeps created, replaces the rest; identical updates succeed
        g = Job {
            id: a.id.clone(),
            name: "renamed".into(),
            next_run_time: None,
            created: t0() + Duration::days(9),
            ..a.clone()
        };
        store.update_job(&g).await.unwrap();
        store.update_job(&g).await.unwrap();
        let got = store.get_job(&a.id).await.unwrap().unwrap();
        assert_eq!((got.name.as_str(), got.next_run_time, got.created), ("renamed", None, t0()), "{name}");

        // list: newest first, filters, paging, totals
        let ids = |v: Vec<Job>| v.into_iter().map(|j| j.id.to_string()).collect::<Vec<_>>();
        let (total, all) = store.list_jobs(&JobFilter::default(), Page::ALL).await.unwrap();
        assert_eq!((total, ids(all)), (3, vec!["d".to_owned(), "b".into(), "a".into()]), "{name}");
        let (total, page) = store.list_jobs(&JobFilter::default(), Page { offset: 1, limit: Some(1) }).await.unwrap();
        assert_eq!((total, ids(page)), (3, vec!["b".to_owned()]), "{name}");
        let f = JobFilter { job_name: Some("g1".into()), ..Default::default() };
        let (total, got) = store.list_jobs(&f, Page::ALL).await.unwrap();
        assert_eq!((total, ids(got)), (1, vec!["d".to_owned()]), "{name}: renamed a is no longer g1");
        let f = JobFilter { job_id: Some("b".into()), job_name: Some("g2".into()), ..Default::default() };
        assert_eq!(store.list_jobs(&f, Page::ALL).await.unwrap().0, 1, "{name}");

        store.remove_job(&b.id).await.unwrap();
        assert_eq!(store.list_jobs(&JobFilter::default(), Page::ALL).await.unwrap().0, 2, "{name}");

        // with_calendar: only the jobs that name a calendar
        let mut cal = job("cal", "c", TriggerKind::Cron, "0 0 9 * * *", t0());
        cal.calendar = Some(ruqi::calendar::CalendarRule::parse("cn:rest").unwrap());
        store.add_job(&cal).await.unwrap();
        let f = JobFilter { with_calendar: true, ..Default::default() };
        let (total, got) = store.list_jobs(&f, Page::ALL).await.unwrap();
        assert_eq!((total, ids(got)), (1, vec!["cal".to_owned()]), "{name}");
        let streamed: Vec<_> = futures_util::StreamExt::collect::<Vec<_>>(store.stream_jobs(&f).await.unwrap()).await;
        assert_eq!(streamed.len(), 1, "{name}");
        assert_eq!(
            streamed[0].as_ref().unwrap().calendar.as_ref().map(ToString::to_string).as_deref(),
            Some("cn:rest")
        );
    }
}

#[tokio::test]
async fn jobs_are_added_together_or_one_by_one() {
    for (name, store, _dir) in backends().await {
        let taken = job("taken", "n", TriggerKind::Interval, "10s", t0());
        store.add_job(&taken).await.unwrap();
        let new = |id: &str| job(id, "n", TriggerKind::Interval, "10s", t0());
        let list = vec![new("n1"), new("taken"), new("n2"), new("n1")];
        // Atomic: says which cannot be added, writes nothing.
        let added = store.add_jobs(&list, &[], true).await.unwrap();
        assert_eq!(added, [true, false, true, false], "{name}");
        assert!(store.get_job(&JobId::parse("n1").unwrap()).await.unwrap().is_none(), "{name}: nothing written");
        // Not atomic: the free ids are added (the second n1 is not: an earlier job has its id).
        let added = store.add_jobs(&list, &[], false).await.unwrap();
        assert_eq!(added, [true, false, true, false], "{name}");
        let (total, _) = store.list_jobs(&JobFilter::default(), Page::ALL).await.unwrap();
        assert_eq!(total, 3, "{name}");
        // More than one statement's worth of rows.
        let many: Vec<Job> = (0..2500).map(|i| new(&format!("m{i}"))).collect();
        let added = store.add_jobs(&many, &[], false).await.unwrap();
        assert!(added.iter().all(|a| *a), "{name}");
        let (total, all) = store.list_jobs(&JobFilter::default(), Page::ALL).await.unwrap();
        assert_eq!(total, 2503, "{name}");
        // Pages before, at and past the middle (the last ones read from the other end), and the
        // last, cut short: each its slice of the whole listing.
        let ids = |jobs: &[Job]| jobs.iter().map(|j| j.id.to_string()).collect::<Vec<_>>();
        for offset in [0, 1000, 1237, 1251, 1252, 1253, 2000, 2496, 2500, 2502, 2503, 2600] {
            let (n, page) = store.list_jobs(&JobFilter::default(), Page { offset, limit: Some(15) }).await.unwrap();
            let want: Vec<Job> = all.iter().skip(offset as usize).take(15).cloned().collect();
            assert_eq!((n, ids(&page)), (2503, ids(&want)), "{name}: offset {offset}");
        }
        let got = store.get_job(&JobId::parse("m2499").unwrap()).await.unwrap().unwrap();
        assert_eq!(got.trigger.rule(), many[2499].trigger.rule(), "{name}");
    }
}

#[tokio::test]
async fn claims_are_exclusive_until_finished_or_expired() {
    for (name, store, _dir) in backends().await {
        let now = t0() + Duration::seconds(100);
        let due1 = job("due1", "n", TriggerKind::Interval, "10s", t0()); // next t0+10
        let due2 = job("due2", "n", TriggerKind::Interval, "5s", t0()); // next t0+5
        let later = job("later", "n", TriggerKind::Interval, "1h", t0());
        let mut paused = job("paused", "n", TriggerKind::Interval, "1s", t0());
        paused.next_run_time = None;
        for j in [&due1, &due2, &later, &paused] {
            store.add_job(j).await.unwrap();
        }
        assert_eq!(store.next_wakeup().await.unwrap(), Some(t0() + Duration::seconds(5)), "{name}");
        let lease = now + Duration::seconds(10);
        let claimed = store.claim_due(now, "n1", lease, 1).await.unwrap();
        assert_eq!(claimed.len(), 1, "{name}: limit respected");
        assert_eq!(claimed[0].job.id.as_str(), "due2", "{name}: earliest first");
        assert_eq!(claimed[0].fire_time, t0() + Duration::seconds(5));
        let rest = store.claim_due(now, "n2", lease, 10).await.unwrap();
        assert_eq!(rest.iter().map(|r| r.job.id.as_str()).collect::<Vec<_>>(), ["due1"], "{name}");
        assert!(store.claim_due(now, "n3", lease, 10).await.unwrap().is_empty(), "{name}: nothing claimable twice");
        // next wake-up: the lease expiry of the claimed due jobs, or the next unclaimed fire
        assert_eq!(store.next_wakeup().await.unwrap(), Some(lease), "{name}");

        // renewal by the owner only
        assert!(store.renew_claim(&due2.id, "n1", lease + Duration::seconds(5)).await.unwrap(), "{name}");
        assert!(!store.renew_claim(&due2.id, "n2", lease + Duration::seconds(50)).await.unwrap(), "{name}");

        // an expired lease is taken over; the old owner's finish is fenced off
        let after = lease + Duration::seconds(1);
        let taken = store.claim_due(after, "n3", after + Duration::seconds(10), 10).await.unwrap();
        assert_eq!(taken.iter().map(|r| r.job.id.as_str()).collect::<Vec<_>>(), ["due1"], "{name}: n2's lease expired");
        let h = history("due1", claimed_fire(&taken), true, "n2");
        let fenced = store.finish_run(&rest[0], "n2", Some(after), Some(&h), after).await.unwrap();
        assert_eq!(fenced, FinishOutcome::LostClaim, "{name}");
        let h3 = history("due1", claimed_fire(&taken), true, "n3");
        let next = t0() + Duration::seconds(20);
        assert_eq!(
            store.finish_run(&taken[0], "n3", Some(next), Some(&h3), after).await.unwrap(),
            FinishOutcome::Rescheduled
        );
        let (n, rows) = store
            .list_history(&HistoryFilter { job_id: Some("due1".into()), ..Default::default() }, Page::ALL)
            .await
            .unwrap();
        assert_eq!(n, 1, "{name}: one row per (job, fire time)");
        assert_eq!(rows[0].scheduler_name, "n2", "{name}: the first writer's row stands");
        assert_eq!(store.get_job(&due1.id).await.unwrap().unwrap().next_run_time, Some(next), "{name}");

        // release on shutdown
        assert_eq!(store.release_claims("n1").await.unwrap(), 1, "{name}");
        assert_eq!(
            store.claim_due(after, "n4", after, 10).await.unwrap().len(),
            2,
            "{name}: due1 (rescheduled, due) and due2"
        );
    }
}

#[tokio::test]
async fn a_stale_run_cannot_end_a_later_claim_of_the_same_node() {
    for (name, store, _guard) in backends().await {
        // n1 claims fire 1 and stalls past its lease; n2 takes over, runs it and reschedules;
        // n1 wakes, claims fire 2, and only then does its stale run of fire 1 try to finish.
        let j = job("stale", "n", TriggerKind::Interval, "10s", t0());
        store.add_job(&j).await.unwrap();
        let fire1 = t0() + Duration::seconds(10);
        let now = fire1 + Duration::seconds(1);
        let stale = store.claim_due(now, "n1", now + Duration::seconds(3), 10).await.unwrap();
        let later = now + Duration::seconds(5);
        let taken = store.claim_due(later, "n2", later + Duration::seconds(3), 10).await.unwrap();
        assert_eq!(taken.len(), 1, "{name}");
        let fire2 = t0() + Duration::seconds(20);
        let h2 = history("stale", fire1, true, "n2");
        let out = store.finish_run(&taken[0], "n2", Some(fire2), Some(&h2), later).await.unwrap();
        assert_eq!(out, FinishOutcome::Rescheduled, "{name}");
        let at2 = fire2 + Duration::milliseconds(10);
        let current = store.claim_due(at2, "n1", at2 + Duration::seconds(3), 10).await.unwrap();
        assert_eq!(current[0].fire_time, fire2, "{name}");
        let out = store
            .finish_run(&stale[0], "n1", Some(fire2), Some(&history("stale", fire1, false, "n1")), at2)
            .await
            .unwrap();
        assert_eq!(out, FinishOutcome::LostClaim, "{name}: the stale run must not release the current claim");
        assert!(store.claim_due(at2, "n3", at2, 10).await.unwrap().is_empty(), "{name}: fire 2 is still n1's");
        assert!(!store.renew_claim(&j.id, "n2", at2).await.unwrap(), "{name}");
        let (n, rows) = store.list_history(&HistoryFilter::default(), Page::ALL).await.unwrap();
        assert_eq!((n, rows[0].scheduler_name.as_str(), rows[0].success), (1, "n2", true), "{name}: first row kept");
        let out = store.finish_run(&current[0], "n1", Some(fire2 + Duration::seconds(10)), None, at2).await.unwrap();
        assert_eq!(out, FinishOutcome::Rescheduled, "{name}");
    }
}

#[tokio::test]
async fn mysql_adopts_ruqi_1x_tables_in_place() {
    // An operator's database as RuQi 1.x left it: the seed's DDL, second-precision times,
    // a short cmd column, no migration bookkeeping.
    let db = MysqlDb::create("adopt").await;
    let mut conn = db.connect().await;
    let seed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/mysql/0001_seed_tables.sql"))
            .unwrap();
    sqlx::raw_sql(&seed).execute(&mut conn).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO ruqi_jobs_history (job_id, job_name, cmd, cmd_is_success, cmd_output, cmd_cost, scheduler_name, c_time)
         VALUES ('old', '旧任务', 'bash old.sh', 1, '完成', 0.5, 'host:8585:12', '2025-01-02 03:04:05')",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    // Refused without migrating, with a message that says what to do.
    let err = ruqi::store::open_with(&db.url, TZ, false).await.err().expect("not migrated");
    assert!(err.to_string().contains("ruqi migrate"), "{err}");

    let store = ruqi::store::open(&db.url, TZ).await.unwrap();
    let (n, rows) = store.list_history(&HistoryFilter::default(), Page::ALL).await.unwrap();
    assert_eq!(n, 1);
    let row = &rows[0];
    assert_eq!((row.job_name.as_str(), row.output.as_str(), row.fire_time), ("旧任务", "完成", None));
    assert_eq!(row.created, Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap());
    // The upgraded table takes a long cmd whole, and many rows without a fire time.
    let mut long = history("new", t0(), true, "n1");
    long.cmd = format!("python {}.py", "x".repeat(300));
    let run = ClaimedRun::scheduled(job("new", "n", TriggerKind::Interval, "1s", t0()), t0(), 0);
    store.finish_run(&run, "n1", None, Some(&long), t0()).await.unwrap();
    let f = HistoryFilter { job_id: Some("new".into()), ..Default::default() };
    assert_eq!(store.list_history(&f, Page::ALL).await.unwrap().1[0].cmd, long.cmd);
    // Opening again (another node starting) applies nothing twice; now --no-migrate works.
    drop(ruqi::store::open(&db.url, TZ).await.unwrap());
    drop(ruqi::store::open_with(&db.url, TZ, false).await.unwrap());
}

fn claimed_fire(runs: &[ClaimedRun]) -> Timestamp {
    runs[0].fire_time
}

#[tokio::test]
async fn finishing_respects_api_changes_made_during_the_run() {
    for (name, store, _dir) in backends().await {
        let now = t0() + Duration::seconds(100);
        for id in ["modified", "removed", "date"] {
            let kind = if id == "date" { TriggerKind::Date } else { TriggerKind::Interval };
            let rule = if id == "date" { "2026-11-24 10:00:30" } else { "10s" };
            store.add_job(&job(id, "n", kind, rule, t0())).await.unwrap();
        }
        let runs = store.claim_due(now, "n1", now + Duration::seconds(10), 10).await.unwrap();
        assert_eq!(runs.len(), 3, "{name}");
        let by_id = |id: &str| runs.iter().find(|r| r.job.id.as_str() == id).unwrap().clone();

        // paused through the API while running: the pause stands, the claim is released
        let mut changed = by_id("modified").job;
        changed.next_run_time = None;
        store.update_job(&changed).await.unwrap();
        let out = store
            .finish_run(&by_id("modified"), "n1", Some(now), Some(&history("modified", now, true, "n1")), now)
            .await
            .unwrap();
        assert_eq!(out, FinishOutcome::Superseded, "{name}");
        assert_eq!(store.get_job(&changed.id).await.unwrap().unwrap().next_run_time, None, "{name}");
        assert_eq!(store.claim_due(now, "n2", now, 10).await.unwrap().len(), 0, "{name}: released, and paused");

        // removed while running: history is still written
        store.remove_job(&by_id("removed").job.id).await.unwrap();
        let out = store
            .finish_run(&by_id("removed"), "n1", Some(now), Some(&history("removed", now, false, "n1")), now)
            .await
            .unwrap();
        assert_eq!(out, FinishOutcome::Superseded, "{name}");
        let f = HistoryFilter { job_id: Some("removed".into()), ..Default::default() };
        assert_eq!(store.list_history(&f, Page::ALL).await.unwrap().0, 1, "{name}");

        // a finished date job (no next) is deleted
        let out = store.finish_run(&by_id("date"), "n1", None, None, now).await.unwrap();
        assert_eq!(out, FinishOutcome::Rescheduled, "{name}");
        assert!(store.get_job(&by_id("date").job.id).await.unwrap().is_none(), "{name}");
    }
}

#[tokio::test]
async fn history_filters_paging_and_clearing() {
    for (name, store, _dir) in backends().await {
        store.add_job(&job("h", "n", TriggerKind::Interval, "1s", t0())).await.unwrap();
        // rows for two jobs over ten days, two nodes, alternating success
        for i in 0..10i64 {
            let fire = t0() - Duration::days(10 - i);
            for (jid, node) in [("h", "n1"), ("k", "n2")] {
                let run = ClaimedRun::scheduled(job(jid, "n", TriggerKind::Interval, "1s", t0()), fire, 0);
                store
                    .finish_run(&run, node, Some(fire), Some(&history(jid, fire, i % 2 == 0, node)), fire)
                    .await
                    .unwrap();
            }
        }
        let count = |f: HistoryFilter| {
            let store = store.clone();
            async move { store.list_history(&f, Page::ALL).await.unwrap().0 }
        };
        assert_eq!(count(HistoryFilter::default()).await, 20, "{name}");
        assert_eq!(count(HistoryFilter { job_id: Some("h".into()), ..Default::default() }).await, 10, "{name}");
        assert_eq!(count(HistoryFilter { success: Some(true), ..Default::default() }).await, 10, "{name}");
        assert_eq!(
            count(HistoryFilter { scheduler_name: Some("n2".into()), success: Some(false), ..Default::default() })
                .await,
            5,
            "{name}"
        );
        let (_, page) =
            store.list_history(&HistoryFilter::default(), Page { offset: 2, limit: Some(3) }).await.unwrap();
        assert_eq!(page.len(), 3, "{name}");
        assert!(page[0].created >= page[1].created && page[1].created >= page[2].created, "{name}: newest first");
        assert_eq!(page[0].cmd.len(), 200, "{name}: long cmds are kept whole");
        assert!(page[0].id > 0);
        // Every page, before and past the middle (read from the other end), is its slice of the
        // whole listing; so with a filter.
        for f in [HistoryFilter::default(), HistoryFilter { job_id: Some("k".into()), ..Default::default() }] {
            let (total, all) = store.list_history(&f, Page::ALL).await.unwrap();
            let ids = |rows: &[HistoryRecord]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
            for offset in 0..=total + 1 {
                for limit in [1, 3, 7] {
                    let (n, page) = store.list_history(&f, Page { offset, limit: Some(limit) }).await.unwrap();
                    let want = all.iter().skip(offset as usize).take(limit as usize).cloned().collect::<Vec<_>>();
                    assert_eq!((n, ids(&page)), (total, ids(&want)), "{name}: {f:?} offset {offset} limit {limit}");
                }
            }
        }

        // clear: older than a cut-off, matching the filter, at most `limit`, oldest first
        let cut = t0() - Duration::days(5);
        let f = HistoryFilter { job_id: Some("h".into()), ..Default::default() };
        assert_eq!(store.clear_history(&f, cut, 2).await.unwrap(), 2, "{name}");
        assert_eq!(store.clear_history(&f, cut, 100).await.unwrap(), 3, "{name}");
        assert_eq!(store.clear_history(&f, cut, 100).await.unwrap(), 0, "{name}");
        assert_eq!(count(f.clone()).await, 5, "{name}");
        assert_eq!(
            count(HistoryFilter { job_id: Some("k".into()), ..Default::default() }).await,
            10,
            "{name}: other job untouched"
        );
    }
}

#[tokio::test]
async fn sqlite_keeps_everything_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let j = job("keep", "n", TriggerKind::Cron, "*/5 * * * * *", t0());
    {
        let s = ruqi::store::open(&url, TZ).await.unwrap();
        s.add_job(&j).await.unwrap();
        let run = s.claim_due(t0() + Duration::seconds(1), "n1", t0() + Duration::seconds(11), 1).await.unwrap();
        s.finish_run(&run[0], "n1", Some(t0() + Duration::seconds(5)), Some(&history("keep", t0(), true, "n1")), t0())
            .await
            .unwrap();
    }
    let s = ruqi::store::open(&url, TZ).await.unwrap();
    let got = s.get_job(&j.id).await.unwrap().unwrap();
    assert_eq!(got.trigger, j.trigger);
    assert_eq!(got.next_run_time, Some(t0() + Duration::seconds(5)));
    assert_eq!(s.list_history(&HistoryFilter::default(), Page::ALL).await.unwrap().0, 1);
}

#[tokio::test]
async fn nodes_are_seen_stopped_and_forgotten() {
    for (name, store, _guard) in backends().await {
        let node = |n: &str, seen: Timestamp| NodeSeen {
            name: n.into(),
            version: "9.9.9".into(),
            started: t0(),
            seen,
            stopped: None,
        };
        store.node_seen(&node("a:1:1", t0())).await.unwrap();
        store.node_seen(&node("b:2:2", t0() + Duration::seconds(5))).await.unwrap();
        let seen = store.nodes(t0()).await.unwrap();
        assert_eq!(seen.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["b:2:2", "a:1:1"], "{name}");
        assert_eq!(seen[1], node("a:1:1", t0()), "{name}: the row round-trips");
        assert_eq!(store.nodes(t0() + Duration::seconds(1)).await.unwrap().len(), 1, "{name}: since");

        store.node_stopped("a:1:1", t0() + Duration::seconds(6)).await.unwrap();
        let a = store.nodes(t0()).await.unwrap().into_iter().find(|n| n.name == "a:1:1").unwrap();
        assert_eq!(a.stopped, Some(t0() + Duration::seconds(6)), "{name}: stopped");
        // a node starting again under the same name is running again
        store.node_seen(&node("a:1:1", t0() + Duration::seconds(7))).await.unwrap();
        let a = store.nodes(t0()).await.unwrap().into_iter().find(|n| n.name == "a:1:1").unwrap();
        assert_eq!(a.stopped, None, "{name}: seen again");

        // a week later, a heartbeat forgets the nodes silent since
        let later = t0() + Duration::days(8);
        store.node_seen(&node("c:3:3", later)).await.unwrap();
        let all = store.nodes(t0() - Duration::days(30)).await.unwrap();
        assert_eq!(all.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["c:3:3"], "{name}: forgotten");
    }
}

/// One group commit holding every kind of end: each run gets its own outcome, in order, and
/// only the runs whose claim still stands change their job.
#[tokio::test]
async fn a_group_of_ends_gets_one_outcome_per_run() {
    for (name, store, _dir) in backends().await {
        let now = t0() + Duration::seconds(100);
        for id in ["plain", "modified", "stolen", "date", "removed"] {
            let kind = if id == "date" { TriggerKind::Date } else { TriggerKind::Interval };
            let rule = if id == "date" { "2026-11-24 10:00:30" } else { "10s" };
            // "stolen" fires first, so a claim of one run takes it
            let created = if id == "stolen" { t0() - Duration::seconds(5) } else { t0() };
            store.add_job(&job(id, "n", kind, rule, created)).await.unwrap();
        }
        let runs = store.claim_due(now, "n1", now + Duration::seconds(10), 10).await.unwrap();
        assert_eq!(runs.len(), 5, "{name}");
        let by_id = |id: &str| runs.iter().find(|r| r.job.id.as_str() == id).unwrap().clone();
        let mut changed = by_id("modified").job;
        changed.next_run_time = None;
        store.update_job(&changed).await.unwrap();
        store.remove_job(&by_id("removed").job.id).await.unwrap();
        // n1's lease runs out and n2 takes "stolen" over
        let later = now + Duration::seconds(11);
        let taken = store.claim_due(later, "n2", later + Duration::seconds(10), 1).await.unwrap();
        assert_eq!(taken.iter().map(|r| r.job.id.as_str()).collect::<Vec<_>>(), ["stolen"], "{name}");

        let ends: Vec<ruqi::store::RunEnd> = ["plain", "modified", "stolen", "date", "removed"]
            .iter()
            .map(|id| {
                let run = by_id(id);
                let next = (*id != "date").then(|| run.fire_time + Duration::seconds(10));
                ruqi::store::RunEnd {
                    history: Some(history(id, run.fire_time, true, "n1")),
                    next,
                    run,
                    output: None,
                    retry: None,
                    after: None,
                }
            })
            .collect();
        let out = store.finish_runs("n1", &ends, later).await.unwrap();
        assert_eq!(
            out,
            [
                FinishOutcome::Rescheduled,
                FinishOutcome::Superseded,
                FinishOutcome::LostClaim,
                FinishOutcome::Rescheduled,
                FinishOutcome::Superseded,
            ],
            "{name}"
        );
        assert_eq!(store.list_history(&HistoryFilter::default(), Page::ALL).await.unwrap().0, 5, "{name}");
        let plain = store.get_job(&by_id("plain").job.id).await.unwrap().unwrap();
        assert_eq!(plain.next_run_time, Some(by_id("plain").fire_time + Duration::seconds(10)), "{name}");
        assert_eq!(store.get_job(&changed.id).await.unwrap().unwrap().next_run_time, None, "{name}: pause stands");
        assert!(store.get_job(&by_id("date").job.id).await.unwrap().is_none(), "{name}: date job deleted");
        let stolen = store.get_job(&by_id("stolen").job.id).await.unwrap().unwrap();
        assert_eq!(stolen.next_run_time, Some(by_id("stolen").fire_time), "{name}: n2's claim untouched");
    }
}

/// A group whose runs all still hold their claims: each interval job moves on, each date job is
/// deleted, a history row per run, all in one write; a second write of the same group finds the
/// claims gone and changes nothing more.
#[tokio::test]
async fn a_group_whose_claims_all_stand_is_written_whole() {
    for (name, store, _dir) in backends().await {
        let now = t0() + Duration::seconds(100);
        let ids: Vec<String> = (0..40).map(|i| format!("g{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let (kind, rule) =
                if i % 4 == 0 { (TriggerKind::Date, "2026-11-24 10:00:30") } else { (TriggerKind::Interval, "10s") };
            store.add_job(&job(id, "n", kind, rule, t0())).await.unwrap();
        }
        let runs = store.claim_due(now, "n1", now + Duration::seconds(10), 100).await.unwrap();
        assert_eq!(runs.len(), 40, "{name}");
        let ends: Vec<ruqi::store::RunEnd> = runs
            .iter()
            .map(|run| ruqi::store::RunEnd {
                history: Some(history(run.job.id.as_str(), run.fire_time, true, "n1")),
                next: (run.job.trigger.kind() == TriggerKind::Interval).then(|| run.fire_time + Duration::seconds(10)),
                run: run.clone(),
                output: None,
                retry: None,
                after: None,
            })
            .collect();
        let out = store.finish_runs("n1", &ends, now).await.unwrap();
        assert!(out.iter().all(|o| *o == FinishOutcome::Rescheduled), "{name}: {out:?}");
        assert_eq!(store.list_history(&HistoryFilter::default(), Page::ALL).await.unwrap().0, 40, "{name}");
        for (i, id) in ids.iter().enumerate() {
            let job = store.get_job(&JobId::parse(id).unwrap()).await.unwrap();
            if i % 4 == 0 {
                assert!(job.is_none(), "{name}: date job {id} deleted");
            } else {
                let fire = runs.iter().find(|r| r.job.id.as_str() == id).unwrap().fire_time;
                assert_eq!(job.unwrap().next_run_time, Some(fire + Duration::seconds(10)), "{name}: {id}");
            }
        }
        // The same ends again: no claim stands any more, nothing changes.
        let again = store.finish_runs("n1", &ends, now).await.unwrap();
        assert!(again.iter().all(|o| *o != FinishOutcome::Rescheduled), "{name}: {again:?}");
        assert_eq!(store.list_history(&HistoryFilter::default(), Page::ALL).await.unwrap().0, 40, "{name}");
        assert_eq!(store.list_jobs(&Default::default(), Page::ALL).await.unwrap().0, 30, "{name}");
    }
}

/// A job given its own zone keeps it across a round trip, its cron rule read in that zone even
/// when the store is opened in another one.
#[tokio::test]
async fn a_job_keeps_its_own_zone() {
    for (name, store, _guard) in backends().await {
        let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
        let trigger = Trigger::parse(TriggerKind::Cron, "0 0 9 * * *", ny, t0()).unwrap();
        let mut j = job("zoned", "n", TriggerKind::Cron, "0 0 9 * * *", t0());
        j.next_run_time = trigger.next_fire(None, t0());
        j.trigger = trigger;
        j.timezone = Some(ny);
        store.add_job(&j).await.unwrap();
        let back = store.get_job(&j.id).await.unwrap().unwrap();
        assert_eq!(back, j, "{name}");
        // 09:00 in New York on 2026-11-24 is 14:00 UTC (EST), whatever the store's zone (UTC)
        assert_eq!(back.trigger.next_fire(None, t0()), Some(t0() + Duration::hours(4)), "{name}");
        assert_eq!(back.zone(TZ), ny, "{name}");
    }
}

/// Opening a new SQLite file is never refused as locked: the pool's other connections used to
/// open while the first applied the migrations, and one could find the file locked (seen once
/// in the dashboard test: `cannot open store …: database is locked`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sqlite_file_opens_whatever_else_starts_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let opens = (0..60).map(|i| {
        let url = format!("sqlite://{}", dir.path().join(format!("s{i}.db")).display());
        tokio::spawn(async move { ruqi::store::open_with(&url, TZ, true).await.map(drop).map_err(|e| e.to_string()) })
    });
    let mut refused = Vec::new();
    for open in opens.collect::<Vec<_>>() {
        if let Err(e) = open.await.unwrap() {
            refused.push(e);
        }
    }
    assert!(refused.is_empty(), "{} of 60 refused: {:?}", refused.len(), refused.first());
}

/// `job_list`'s total on MariaDB: kept by triggers once the server lets a node create them,
/// counting what every writer does (a RuQi 1.x node's rows included); counted before that.
#[tokio::test]
async fn mysql_totals_count_every_writer_once_triggers_keep_them() {
    let db = MysqlDb::create("count").await;
    let mut root = db.connect().await;
    // An account that may do everything in the database but create triggers.
    let user = format!("ruqi_t_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let mut admin = MysqlDb::admin().await;
    for sql in [
        format!("CREATE USER '{user}'@'%'"),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, CREATE VIEW, LOCK TABLES, REFERENCES
             ON `{}`.* TO '{user}'@'%'",
            db.name
        ),
    ] {
        sqlx::Executor::execute(&mut admin, sql.as_str()).await.unwrap();
    }
    let all = JobFilter::default();
    let total =
        |store: Arc<dyn JobStore>| async move { store.list_jobs(&JobFilter::default(), Page::ALL).await.unwrap().0 };
    async fn triggers(conn: &mut sqlx::MySqlConnection) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
            .fetch_one(conn)
            .await
            .unwrap()
    }
    async fn start(conn: &mut sqlx::MySqlConnection) -> Option<i64> {
        sqlx::query_scalar("SELECT n FROM ruqi_job_count WHERE slot = -1").fetch_optional(conn).await.unwrap()
    }

    // Refused the triggers: the node serves, and its totals are counted.
    let url = db.url.replacen("root@", &format!("{user}@"), 1);
    let refused = ruqi::store::open(&url, TZ).await.unwrap();
    let new = |id: &str| job(id, "n", TriggerKind::Interval, "10s", t0());
    refused.add_jobs(&[new("a"), new("b"), new("c")], &[], false).await.unwrap();
    assert_eq!(total(refused.clone()).await, 3);
    assert_eq!((triggers(&mut root).await, start(&mut root).await), (0, None));
    drop(refused);

    // A node allowed to creates them, and the count starts from the jobs already there.
    let store = ruqi::store::open(&db.url, TZ).await.unwrap();
    assert_eq!((triggers(&mut root).await, start(&mut root).await), (3, Some(3)));
    assert_eq!(total(store.clone()).await, 3);
    store.add_jobs(&[new("d"), new("e")], &[], false).await.unwrap();
    assert_eq!(total(store.clone()).await, 5);

    // Another writer (a RuQi 1.x node: no slot of its own): a job in our format, one it wrote
    // in its own (a pickle, not listed), that one rewritten in ours, and a delete.
    let copy = |id: &str, state: &str| {
        format!(
            "INSERT INTO ruqi_jobs (id, next_run_time, job_state, job_lock, job_name, job_trigger, job_rule, u_time, c_time)
             SELECT '{id}', next_run_time, {state}, job_lock, job_name, job_trigger, job_rule, u_time, c_time
             FROM ruqi_jobs WHERE id = 'a'"
        )
    };
    let mut other = db.connect().await;
    let steps: [(String, u64); 5] = [
        (copy("x1", "job_state"), 6),
        (copy("x2", "'\\x80\\x04pickle'"), 6),
        ("UPDATE ruqi_jobs SET job_state = (SELECT job_state FROM (SELECT job_state FROM ruqi_jobs WHERE id = 'a') s) WHERE id = 'x2'".into(), 7),
        ("UPDATE ruqi_jobs SET job_state = 'pickle' WHERE id = 'x1'".into(), 6),
        ("DELETE FROM ruqi_jobs WHERE id IN ('a', 'x1')".into(), 5),
    ];
    for (sql, want) in steps {
        sqlx::Executor::execute(&mut other, sql.as_str()).await.unwrap();
        let counted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ruqi_jobs WHERE ruqi_format = 1")
            .fetch_one(&mut root)
            .await
            .unwrap();
        assert_eq!((total(store.clone()).await, counted as u64), (want, want), "after {sql}");
    }
    store.remove_job(&JobId::parse("b").unwrap()).await.unwrap();
    assert_eq!(total(store.clone()).await, 4);
    // A filtered listing is still counted; the kept count is for the unfiltered one.
    let f = JobFilter { job_id: Some("c".into()), ..Default::default() };
    assert_eq!(store.list_jobs(&f, Page::ALL).await.unwrap().0, 1);
    assert_eq!(store.list_jobs(&all, Page::ALL).await.unwrap().1.len(), 4);
    // Another node starting later changes nothing.
    drop(ruqi::store::open(&db.url, TZ).await.unwrap());
    assert_eq!((start(&mut root).await, total(store.clone()).await), (Some(3), 4));
    // The table restored from a dump without the triggers (here: one dropped, a row deleted
    // meanwhile): the next node to migrate starts the count again.
    sqlx::raw_sql("DROP TRIGGER ruqi_job_count_delete; DELETE FROM ruqi_jobs WHERE id = 'x2'")
        .execute(&mut root)
        .await
        .unwrap();
    drop(ruqi::store::open(&db.url, TZ).await.unwrap());
    // 3 jobs (c, d, e); the other slots hold +1 since the first start (see the steps above).
    assert_eq!((triggers(&mut root).await, start(&mut root).await), (3, Some(2)));
    assert_eq!(total(store.clone()).await, 3);
    let _ = sqlx::Executor::execute(&mut admin, format!("DROP USER '{user}'@'%'").as_str()).await;
}
