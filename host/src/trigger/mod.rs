//! Triggers: *when* a job fires. Parsing and normalisation of RuQi's rule dialect, and
//! `next_fire`, as pure functions of their inputs (no clock reads, no IO).
//!
//! - `cron`: 6 single-space-separated fields, seconds first, APScheduler 3 syntax.
//! - `interval`: `Ns|Nm|Nh|Nd`, fixed rate on the grid `start + k·interval`.
//! - `date`: one instant, `YYYY-mm-dd[ HH:MM:SS[.ffffff]]` or `now`.
//!
//! Rules are wall-clock times in the configured zone (`chrono_tz::Tz`). A local time that
//! does not exist (spring-forward gap) is moved forward by the gap, as pytz's `normalize`
//! does in APScheduler; a local time that occurs twice (fall-back) fires once, at its first
//! occurrence that is later than the previous fire time.

mod cron;
mod date;
mod interval;

use chrono::{NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

pub use cron::CronTrigger;
pub use date::DateTrigger;
pub use interval::IntervalTrigger;

use crate::clock::Timestamp;

/// Why a trigger spec was refused. `Display` is the `x-reason` text the API sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// `job_trigger` is none of `cron`, `interval`, `date`.
    #[error("Job_trigger not in jobs_map")]
    UnknownKind,
    /// The rule does not have the shape the trigger needs (RuQi's own check).
    #[error("Job_rule not match")]
    RuleNotMatch,
    /// The rule has the right shape but a value is out of range (RuQi answered this with
    /// `ERR_SERVER_EXCEPTION`; we name the problem).
    #[error("Job_rule not match: {0}")]
    InvalidValue(String),
}

/// The three trigger kinds, named as in the API's `job_trigger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    /// crontab-like rule.
    Cron,
    /// fixed period.
    Interval,
    /// one instant.
    Date,
}

impl TriggerKind {
    /// Parses `job_trigger`.
    pub fn parse(raw: &str) -> Result<Self, TriggerError> {
        match raw {
            "cron" => Ok(Self::Cron),
            "interval" => Ok(Self::Interval),
            "date" => Ok(Self::Date),
            _ => Err(TriggerError::UnknownKind),
        }
    }

    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cron => "cron",
            Self::Interval => "interval",
            Self::Date => "date",
        }
    }
}

/// A parsed trigger.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// See [`CronTrigger`].
    Cron(CronTrigger),
    /// See [`IntervalTrigger`].
    Interval(IntervalTrigger),
    /// See [`DateTrigger`].
    Date(DateTrigger),
}

impl Trigger {
    /// Parses a rule given through the API. `now` anchors `interval` grids and `date` `now`.
    pub fn parse(kind: TriggerKind, rule: &str, tz: Tz, now: Timestamp) -> Result<Self, TriggerError> {
        Ok(match kind {
            TriggerKind::Cron => Self::Cron(CronTrigger::parse(rule, tz)?),
            TriggerKind::Interval => Self::Interval(IntervalTrigger::parse(rule, now)?),
            TriggerKind::Date => Self::Date(DateTrigger::parse(rule, tz, now)?),
        })
    }

    /// Rebuilds a stored trigger from its kind, normalised rule and anchor (interval start
    /// or date instant), as the store keeps them.
    pub fn restore(kind: TriggerKind, rule: &str, anchor: Option<Timestamp>, tz: Tz) -> Result<Self, TriggerError> {
        Ok(match (kind, anchor) {
            (TriggerKind::Cron, _) => Self::Cron(CronTrigger::parse(rule, tz)?),
            (TriggerKind::Interval, Some(start)) => Self::Interval(IntervalTrigger::restore(rule, start)?),
            (TriggerKind::Date, Some(at)) => Self::Date(DateTrigger::restore(rule, at)),
            _ => return Err(TriggerError::InvalidValue("stored trigger has no anchor".into())),
        })
    }

    /// The kind.
    pub fn kind(&self) -> TriggerKind {
        match self {
            Self::Cron(_) => TriggerKind::Cron,
            Self::Interval(_) => TriggerKind::Interval,
            Self::Date(_) => TriggerKind::Date,
        }
    }

    /// The normalised rule, as RuQi stores and returns it.
    pub fn rule(&self) -> String {
        match self {
            Self::Cron(c) => c.rule(),
            Self::Interval(i) => i.rule(),
            Self::Date(d) => d.rule().to_owned(),
        }
    }

    /// What the store keeps besides the rule: interval start or date instant.
    pub fn anchor(&self) -> Option<Timestamp> {
        match self {
            Self::Cron(_) => None,
            Self::Interval(i) => Some(i.start()),
            Self::Date(d) => Some(d.at()),
        }
    }

    /// The next fire time: strictly after `prev` when there is one, otherwise the first
    /// fire time at or after `now`. `None` when the trigger will never fire again.
    pub fn next_fire(&self, prev: Option<Timestamp>, now: Timestamp) -> Option<Timestamp> {
        match self {
            Self::Cron(c) => c.next_fire(prev, now),
            Self::Interval(i) => Some(i.next_fire(prev, now)),
            Self::Date(d) => d.next_fire(prev),
        }
    }
}

/// Maps a wall-clock time in `tz` to an instant: a time in a DST gap moves forward by the
/// gap; of a time that occurs twice, the earliest occurrence strictly after `after` is taken
/// (`None` when neither is).
pub(crate) fn local_to_utc(tz: Tz, local: NaiveDateTime, after: Option<Timestamp>) -> Option<Timestamp> {
    let later = |t: Timestamp| after.is_none_or(|a| t > a);
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)).filter(|t| later(*t)),
        chrono::LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            let (first, second) = if a <= b { (a, b) } else { (b, a) };
            [first, second].into_iter().find(|t| later(*t))
        }
        chrono::LocalResult::None => {
            // Use the offset in force before the gap: 02:30 in a 02:00→03:00 gap becomes 03:30.
            // The instant `local - 24h` read as UTC lies before the change in every zone (offsets
            // are within ±14h) and after the previous one (months earlier), so its offset is the
            // one before the gap. (6h was not enough east of UTC+6: Sydney fired an hour early.)
            let before = local - chrono::Duration::hours(24);
            let offset = tz.offset_from_utc_datetime(&before).fix();
            let utc = (local - chrono::Duration::seconds(i64::from(offset.local_minus_utc()))).and_utc();
            Some(utc).filter(|t| later(*t))
        }
    }
}

use chrono::Offset as _;

/// Formats an instant in `tz` as Python's `str(datetime)`: microseconds only when non-zero.
pub fn format_python(t: Timestamp, tz: Tz) -> String {
    let local = t.with_timezone(&tz);
    if local.timestamp_subsec_micros() == 0 {
        local.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

/// Formats an instant in `tz` as `YYYY-mm-dd HH:MM:SS` (microseconds truncated), RuQi's
/// JSON datetime format.
pub fn format_seconds(t: Timestamp, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Timestamp {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap().and_utc()
    }

    #[test]
    fn kinds() {
        for (raw, ok) in
            [("cron", true), ("interval", true), ("date", true), ("Cron", false), ("", false), ("crontab", false)]
        {
            assert_eq!(TriggerKind::parse(raw).is_ok(), ok, "{raw}");
        }
        assert_eq!(TriggerKind::parse("x").unwrap_err().to_string(), "Job_trigger not in jobs_map");
    }

    #[test]
    fn local_time_mapping_across_dst() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let cases = [
            // (local, after, expected utc)
            ("2026-03-29 01:30:00", None, Some("2026-03-29 00:30:00")),
            ("2026-03-29 02:30:00", None, Some("2026-03-29 01:30:00")), // gap → 03:30 CEST
            ("2026-10-25 02:30:00", None, Some("2026-10-25 00:30:00")), // first occurrence (CEST)
            ("2026-10-25 02:30:00", Some("2026-10-25 00:30:00"), Some("2026-10-25 01:30:00")),
            ("2026-10-25 02:30:00", Some("2026-10-25 01:30:00"), None),
            ("2026-07-01 12:00:00", None, Some("2026-07-01 10:00:00")),
        ];
        let sydney: Tz = "Australia/Sydney".parse().unwrap();
        let lord_howe: Tz = "Australia/Lord_Howe".parse().unwrap();
        let gap = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        // 02:00 AEST → 03:00 AEDT: 02:30 is 03:30 AEDT (16:30Z); Lord Howe shifts by 30 minutes
        assert_eq!(local_to_utc(sydney, gap("2027-10-03 02:30:00"), None), Some(utc("2027-10-02 16:30:00")));
        assert_eq!(local_to_utc(lord_howe, gap("2027-10-03 02:15:00"), None), Some(utc("2027-10-02 15:45:00")));
        for (local, after, want) in cases {
            let local = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").unwrap();
            assert_eq!(local_to_utc(berlin, local, after.map(utc)), want.map(utc), "{local} after {after:?}");
        }
    }

    #[test]
    fn python_formats() {
        let tz: Tz = "UTC".parse().unwrap();
        assert_eq!(format_python(utc("2030-12-16 18:05:17.682862"), tz), "2030-12-16 18:05:17.682862");
        assert_eq!(format_python(utc("2030-12-16 18:05:17"), tz), "2030-12-16 18:05:17");
        assert_eq!(format_seconds(utc("2030-12-16 18:05:17.999"), tz), "2030-12-16 18:05:17");
        let sh: Tz = "Asia/Shanghai".parse().unwrap();
        assert_eq!(format_seconds(utc("2030-12-16 18:05:17"), sh), "2030-12-17 02:05:17");
    }
}
