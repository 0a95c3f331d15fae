//! Adopting a RuQi 1.x database in place: an operator stops the Python RuQi and starts ours on
//! the same MySQL database, and its jobs go on.
//!
//! A 1.x job row keeps APScheduler's state as a Python pickle in `job_state`; its plain columns
//! hold the trigger kind, the rule, the name, the next run time (NULL = paused) and the creation
//! time. Adoption rewrites each such row into our format: the cmd comes from the pickle (read by
//! [`pickle`], which never executes anything), everything else from the columns, the rule
//! normalised as `job_add` would, the next run time and the interval grid kept (the pickle's
//! exact microseconds where the column's float lost them), and the times of the row and of 1.x's
//! history rows converted from the 1.x node's local time (the `--timezone` given) to UTC.
//!
//! A row that cannot be converted is kept exactly as it is, except that our claim columns mark
//! it as held for ever ([`UNADOPTED`]), so no node claims it and it does not hold the scheduler's
//! sleep short; listings leave it out and `job_show` answers with the reason.

pub mod pickle;

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use sqlx::MySqlPool;

use super::StoreError;
use super::rows::{JobRow, epoch_to_ts, job_state, text_to_ts, ts_to_epoch, ts_to_text};
use crate::clock::Timestamp;
use crate::model::{Job, JobId};
use crate::trigger::{Trigger, TriggerKind, local_to_utc};
use pickle::LegacyTrigger;

/// The `claim_owner` that marks a 1.x row that could not be adopted (with a lease until year 9999).
pub const UNADOPTED: &str = "ruqi:unadopted-1.x-row";
/// The lease of an unadopted row: 9999-12-31 23:59:59 UTC, as epoch seconds.
pub const UNADOPTED_LEASE: f64 = 253_402_300_799.0;

/// Whether a `job_state` is in RuQi 1.x's format (anything but our JSON object).
pub fn is_legacy_state(state: &[u8]) -> bool {
    state.first() != Some(&b'{')
}

/// What adoption did, or would do, with one 1.x row.
#[derive(Debug, Clone, PartialEq)]
pub enum Adoption {
    /// Converted into `job`.
    Converted(Box<Job>),
    /// Kept as it was, for `reason`.
    Kept {
        /// The row's id.
        id: String,
        /// Why it could not be converted.
        reason: String,
    },
}

/// What an adoption pass found: the job rows, and how many 1.x history rows had their times
/// converted to UTC (or would have).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdoptionReport {
    /// Every 1.x job row seen.
    pub jobs: Vec<Adoption>,
    /// 1.x history rows whose `c_time` was converted from local time to UTC.
    pub history_rows: u64,
}

/// The instant a 1.x naive local time stood for in `tz`.
fn instant(tz: Tz, local: NaiveDateTime) -> Timestamp {
    local_to_utc(tz, local, None).unwrap_or_else(|| local.and_utc())
}

/// `exact` when it is within a millisecond of `approx` (the pickle keeps microseconds the
/// column's float may have rounded), else `approx`.
fn snap(approx: Timestamp, exact: Option<Timestamp>) -> Timestamp {
    exact.filter(|e| (*e - approx).num_milliseconds().abs() < 1).unwrap_or(approx)
}

/// Converts one 1.x row (its `c_time`/`u_time` being 1.x local times in `tz`) into our job, or
/// says why it cannot be.
pub fn convert(row: &JobRow, tz: Tz, now: Timestamp) -> Result<Job, String> {
    let state = pickle::decode_job_state(&row.job_state).map_err(|e| e.to_string())?;
    let raw_kind = row.job_trigger.as_deref().unwrap_or_default();
    let kind = TriggerKind::parse(raw_kind).map_err(|_| format!("unknown trigger {raw_kind:?} (job_trigger)"))?;
    let pickled = match &state.trigger {
        LegacyTrigger::Date { .. } => TriggerKind::Date,
        LegacyTrigger::Interval { .. } => TriggerKind::Interval,
        LegacyTrigger::Cron { .. } => TriggerKind::Cron,
        LegacyTrigger::Other { class } => return Err(format!("unknown trigger class {class} in job_state")),
    };
    if pickled != kind {
        return Err(format!("job_trigger is {raw_kind} but job_state holds a {} trigger", pickled.as_str()));
    }
    let rule = row.job_rule.as_deref().ok_or("no job_rule")?;
    // A cron trigger that names a zone other than the node's keeps it as the job's own zone
    // (its rule, and the pickled next run time, are wall times there).
    let own_zone = match &state.trigger {
        LegacyTrigger::Cron { timezone: Some(name) } => {
            let zone = name.parse::<Tz>().map_err(|_| format!("unknown time zone {name:?} in job_state"))?;
            (zone != tz).then_some(zone)
        }
        _ => None,
    };
    let zone = own_zone.unwrap_or(tz);
    let parsed = Trigger::parse(kind, rule, zone, now).map_err(|e| format!("job_rule {rule:?}: {e}"))?;
    let column = row.next_run_time.map(epoch_to_ts);
    let pickled_next = state.next_run_time.map(|n| instant(zone, n));
    let created = text_to_ts(&row.c_time).map(|t| instant(tz, t.naive_utc())).map_err(|e| format!("c_time {e}"))?;
    let (trigger, next_run_time) = match (parsed, &state.trigger) {
        (Trigger::Interval(i), LegacyTrigger::Interval { start_date, .. }) => {
            // The grid goes on where 1.x left it: anchored on the next run (or, paused, on the
            // pickled start date; failing that, one interval after creation, as 1.x started it).
            let next = column.map(|c| snap(c, pickled_next));
            let anchor = next
                .or_else(|| start_date.map(|s| instant(tz, s)))
                .unwrap_or_else(|| created + chrono::Duration::seconds(i.seconds()));
            let restored = Trigger::restore(TriggerKind::Interval, &i.rule(), Some(anchor), tz)
                .map_err(|e| format!("job_rule {rule:?}: {e}"))?;
            (restored, next)
        }
        // A date fires at its rule's instant (exact, unlike the column's float) unless paused.
        (Trigger::Date(d), _) => {
            let at = d.at();
            (Trigger::Date(d), column.map(|_| at))
        }
        (cron, _) => (cron, column.map(|c| snap(c, pickled_next))),
    };
    let name = row.job_name.clone().or(state.job_name).unwrap_or_else(|| "run_cmd".to_owned());
    Ok(Job {
        id: JobId::parse(&row.id)?,
        name,
        cmd: state.cmd,
        trigger,
        next_run_time,
        created,
        updated: now,
        timezone: own_zone,
        calendar: None,
        home_zone: Some(tz),
        policy: Default::default(),
        follow: Default::default(),
        health: Default::default(),
    })
}

/// Converts each row; a row that cannot be converted is reported with its reason.
pub fn plan(rows: &[JobRow], tz: Tz, now: Timestamp) -> Vec<Adoption> {
    rows.iter()
        .map(|row| match convert(row, tz, now) {
            Ok(job) => Adoption::Converted(Box::new(job)),
            Err(reason) => Adoption::Kept { id: row.id.clone(), reason },
        })
        .collect()
}

/// The error for a 1.x row met where a job was expected (it was not adopted).
pub fn unadopted(row: &JobRow, tz: Tz) -> StoreError {
    let reason = match convert(row, tz, DateTime::<Utc>::UNIX_EPOCH) {
        Err(reason) => reason,
        Ok(_) => "not adopted yet (run `ruqi migrate`)".to_owned(),
    };
    StoreError::Unadopted { id: row.id.clone(), reason }
}

/// The 1.x job rows of a database (only columns 1.x has, so this works before migrating);
/// `$cond` picks them.
macro_rules! legacy_rows {
    ($cond:literal) => {
        concat!(
            "SELECT id, next_run_time, job_state, job_name, job_trigger, job_rule,
     DATE_FORMAT(c_time, '%Y-%m-%d %H:%i:%s.%f') AS u_time, DATE_FORMAT(c_time, '%Y-%m-%d %H:%i:%s.%f') AS c_time,
     CAST(0 AS SIGNED) AS revision
     FROM ruqi_jobs WHERE ",
            $cond,
            " ORDER BY id"
        )
    };
}
/// The 1.x rows of a database our migrations may not have touched yet (a scan of `job_state`).
const LEGACY_ROWS: &str = legacy_rows!("LEFT(job_state, 1) <> '{'");
/// The 1.x rows of a migrated database: an index read on `ruqi_format` (migration 0005), so a
/// node starting on 1,000,000 jobs of ours does not read every `job_state`.
const LEGACY_ROWS_MIGRATED: &str = legacy_rows!("ruqi_format = 0");
/// Rewrites one 1.x row into our format, if it is still the row that was read (binds: state,
/// next, name, trigger, rule, c_time, u_time, id, old state).
const CONVERT_ROW: &str = "UPDATE ruqi_jobs SET job_state = ?, next_run_time = ?, job_name = ?, job_trigger = ?,
     job_rule = ?, c_time = ?, u_time = ?, job_lock = 0, claim_owner = NULL, lease_until = NULL,
     revision = revision + 1 WHERE id = ? AND job_state = ?";
/// History rows per batch when their times are converted one by one.
const HISTORY_BATCH: i64 = 1000;

/// Reads the 1.x rows and says what adoption would do with each, changing nothing (works on a
/// database our migrations have not touched yet).
pub async fn plan_mysql(pool: &MySqlPool, tz: Tz, now: Timestamp) -> Result<AdoptionReport, StoreError> {
    let rows: Vec<JobRow> = sqlx::query_as(LEGACY_ROWS).fetch_all(pool).await?;
    // Before our migration 0003 every history row is 1.x's; after it, the flagged ones are.
    let history_rows: i64 =
        match sqlx::query_scalar("SELECT COUNT(*) FROM ruqi_jobs_history WHERE c_time_local = 1").fetch_one(pool).await
        {
            Ok(n) => n,
            Err(_) => sqlx::query_scalar("SELECT COUNT(*) FROM ruqi_jobs_history").fetch_one(pool).await?,
        };
    Ok(AdoptionReport { jobs: plan(&rows, tz, now), history_rows: history_rows as u64 })
}

/// Adopts the 1.x rows of a migrated database in place (see the module doc).
pub async fn adopt_mysql(pool: &MySqlPool, tz: Tz, now: Timestamp) -> Result<AdoptionReport, StoreError> {
    let rows: Vec<JobRow> = sqlx::query_as(LEGACY_ROWS_MIGRATED).fetch_all(pool).await?;
    let jobs = plan(&rows, tz, now);
    for (row, adoption) in rows.iter().zip(&jobs) {
        match adoption {
            Adoption::Converted(job) => {
                sqlx::query(CONVERT_ROW)
                    .bind(job_state(job))
                    .bind(job.next_run_time.map(ts_to_epoch))
                    .bind(&job.name)
                    .bind(job.trigger.kind().as_str())
                    .bind(job.trigger.rule())
                    .bind(ts_to_text(job.created))
                    .bind(ts_to_text(job.updated))
                    .bind(&row.id)
                    .bind(&row.job_state)
                    .execute(pool)
                    .await?;
                tracing::info!(job_id = %row.id, trigger = job.trigger.kind().as_str(), rule = %job.trigger.rule(), "RuQi 1.x job adopted");
            }
            Adoption::Kept { id, reason } => {
                sqlx::query(&format!("{} AND job_state = ?", super::query::HOLD_UNADOPTED))
                    .bind(UNADOPTED)
                    .bind(UNADOPTED_LEASE)
                    .bind(id)
                    .bind(&row.job_state)
                    .execute(pool)
                    .await?;
                tracing::error!(job_id = %id, %reason, "RuQi 1.x job kept as it is (not adopted, not run)");
            }
        }
    }
    let history_rows = adopt_history(pool, tz).await?;
    Ok(AdoptionReport { jobs, history_rows })
}

/// Converts the `c_time` of 1.x history rows (flagged `c_time_local`) from local time in `tz`
/// to UTC: in one statement when `tz` kept one offset over their whole span, else row by row.
async fn adopt_history(pool: &MySqlPool, tz: Tz) -> Result<u64, StoreError> {
    let span: (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT DATE_FORMAT(MIN(c_time), '%Y-%m-%d %H:%i:%s.%f'), DATE_FORMAT(MAX(c_time), '%Y-%m-%d %H:%i:%s.%f')
         FROM ruqi_jobs_history WHERE c_time_local = 1",
    )
    .fetch_one(pool)
    .await?;
    let (Some(first), Some(last)) = span else { return Ok(0) };
    let (first, last) = (text_to_ts(&first).map_err(corrupt)?, text_to_ts(&last).map_err(corrupt)?);
    if let Some(offset) = constant_offset(tz, first, last) {
        let done = sqlx::query(
            "UPDATE ruqi_jobs_history SET c_time = c_time - INTERVAL ? SECOND, c_time_local = 0 WHERE c_time_local = 1",
        )
        .bind(i64::from(offset))
        .execute(pool)
        .await?;
        return Ok(done.rows_affected());
    }
    let mut converted = 0;
    loop {
        let batch: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, DATE_FORMAT(c_time, '%Y-%m-%d %H:%i:%s.%f') FROM ruqi_jobs_history
             WHERE c_time_local = 1 ORDER BY id LIMIT ?",
        )
        .bind(HISTORY_BATCH)
        .fetch_all(pool)
        .await?;
        if batch.is_empty() {
            return Ok(converted);
        }
        let mut tx = pool.begin().await?;
        for (id, local) in &batch {
            let utc = instant(tz, text_to_ts(local).map_err(corrupt)?.naive_utc());
            sqlx::query("UPDATE ruqi_jobs_history SET c_time = ?, c_time_local = 0 WHERE id = ?")
                .bind(ts_to_text(utc))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        converted += batch.len() as u64;
    }
}

fn corrupt(reason: String) -> StoreError {
    StoreError::Corrupt { id: "ruqi_jobs_history".into(), reason }
}

/// The UTC offset (seconds east) `tz` had throughout the local times `first..=last`, if it
/// had only one.
fn constant_offset(tz: Tz, first: Timestamp, last: Timestamp) -> Option<i32> {
    let offset = |t: Timestamp| tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc();
    let start = offset(first - chrono::Duration::days(1));
    let mut t = first;
    while t <= last + chrono::Duration::days(1) {
        if offset(t) != start {
            return None;
        }
        t += chrono::Duration::hours(12);
    }
    Some(start)
}

#[cfg(test)]
mod tests {
    use super::pickle::tests::{FX_CRON_NIGHTLY, FX_DATE_US, FX_UNICODE, edit, hex};
    use super::*;
    use crate::trigger::format_python;

    fn row(id: &str, next: Option<f64>, state: &[u8], trigger: &str, rule: &str) -> JobRow {
        JobRow {
            id: id.into(),
            next_run_time: next,
            job_state: state.to_vec(),
            job_name: Some("fixture".into()),
            job_trigger: Some(trigger.into()),
            job_rule: Some(rule.into()),
            u_time: "2026-11-25 02:16:44.000000".into(),
            c_time: "2026-11-25 02:16:44.000000".into(),
            revision: 0,
            retry_at: None,
            retry_attempt: None,
            retry_fire: None,
            fail_streak: None,
            paused_reason: None,
            probe_at: None,
            probe_wait: None,
            deadline_fire: None,
        }
    }

    #[test]
    fn fixture_rows_convert_with_their_grid_and_exact_times() {
        let now = text_to_ts("2026-11-29 00:00:00").unwrap();
        let utc = chrono_tz::UTC;
        let (date_us, unicode) = (hex(FX_DATE_US), hex(FX_UNICODE));
        let job = convert(
            &row("fx-date-us", Some(1938067200.12346), &date_us, "date", "2031-06-01 08:00:00.123456"),
            utc,
            now,
        )
        .unwrap();
        assert_eq!(job.cmd, "bash scripts/test.sh micro");
        assert_eq!(job.trigger.rule(), "2031-06-01 08:00:00.123456");
        assert_eq!(format_python(job.next_run_time.unwrap(), utc), "2031-06-01 08:00:00.123456");
        let job = convert(&row("fx-unicode", Some(1795580204.18213), &unicode, "interval", "7200s"), utc, now).unwrap();
        assert_eq!(job.cmd, "bash scripts/test.sh 你好");
        assert_eq!(format_python(job.next_run_time.unwrap(), utc), "2026-11-25 04:16:44.182132");
        assert_eq!(job.created, text_to_ts("2026-11-25 02:16:44").unwrap());
        // the grid goes on from 1.x's next run time, whatever now is
        let next = job.trigger.next_fire(None, now).unwrap();
        assert_eq!(format_python(next, utc), "2026-11-29 00:16:44.182132");
        // in another zone, the 1.x local times are read in it
        let sh = chrono_tz::Asia::Shanghai;
        let job = convert(&row("fx-unicode", Some(1795580204.18213), &unicode, "interval", "7200s"), sh, now).unwrap();
        assert_eq!(job.created, text_to_ts("2026-11-24 18:16:44").unwrap());
    }

    #[test]
    fn a_cron_job_keeps_the_zone_its_pickle_names() {
        let now = text_to_ts("2026-11-29 00:00:00").unwrap();
        let zoned = |zone: &str| {
            let tz = format!("S'jitter'\np85\nNsS'timezone'\ncpytz\n_p\n(S'{zone}'\nI28800\nI0\nS'CST'\ntR");
            edit(&hex(FX_CRON_NIGHTLY), "S'jitter'\np85\nN", &tz)
        };
        // a zone other than the node's: the job keeps it, its rule read there
        let job =
            convert(&row("n", None, &zoned("Asia/Shanghai"), "cron", "0 20 2 * * *"), chrono_tz::UTC, now).unwrap();
        assert_eq!(job.timezone, Some(chrono_tz::Asia::Shanghai));
        let next = job.trigger.next_fire(None, now).unwrap();
        assert_eq!(format_python(next, chrono_tz::UTC), "2026-11-29 18:20:00", "02:20 in Shanghai");
        // the node's own zone: nothing to keep (the job shows as 1.x showed it)
        let job = convert(&row("n", None, &zoned("UTC"), "cron", "0 20 2 * * *"), chrono_tz::UTC, now).unwrap();
        assert_eq!(job.timezone, None);
        let e = convert(&row("n", None, &zoned("Mars/Base"), "cron", "0 20 2 * * *"), chrono_tz::UTC, now).unwrap_err();
        assert!(e.contains("Mars/Base"), "{e}");
    }

    #[test]
    fn rows_that_cannot_be_converted_say_why() {
        let now = text_to_ts("2026-11-29 00:00:00").unwrap();
        let unicode = hex(FX_UNICODE);
        let cases: [(JobRow, &str); 4] = [
            (row("a", None, b"(dp1\nS'garbage", "interval", "7200s"), "pickle"),
            (row("b", None, &unicode, "cron", "0 0 3 * * *"), "job_trigger is cron but job_state holds a interval"),
            (row("c", None, &unicode, "weekly", "7200s"), "unknown trigger \"weekly\""),
            (row("d", None, &unicode, "interval", "soon"), "job_rule \"soon\""),
        ];
        for (r, why) in cases {
            let e = convert(&r, chrono_tz::UTC, now).unwrap_err();
            assert!(e.contains(why), "{}: {e}", r.id);
        }
        assert!(is_legacy_state(&unicode) && !is_legacy_state(br#"{"v":1}"#));
    }

    #[test]
    fn constant_offsets_are_found() {
        let (a, b) = (text_to_ts("2020-01-01 00:00:00").unwrap(), text_to_ts("2026-11-01 00:00:00").unwrap());
        assert_eq!(constant_offset(chrono_tz::Asia::Shanghai, a, b), Some(8 * 3600));
        assert_eq!(constant_offset(chrono_tz::UTC, a, b), Some(0));
        assert_eq!(constant_offset(chrono_tz::Europe::Berlin, a, b), None);
        let summer = text_to_ts("2026-07-01 00:00:00").unwrap();
        assert_eq!(constant_offset(chrono_tz::Europe::Berlin, summer, summer + chrono::Duration::days(30)), Some(7200));
    }
}
