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

use chrono::{NaiveDateTime, TimeZone};
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

/// The last year whose transitions the zone tables list; later years follow each zone's
/// rule, computed from a year of the same calendar (see [`proxy_year`]).
const LAST_LISTED_YEAR: i32 = 2099;

/// A year in 2072..=2099 with the same calendar as `year` (leap or not, and the same weekday on
/// 1 January), so its DST rules ("second Sunday in March") fall on the same dates. A 28-year
/// span with no skipped century leap day holds every one of the 14 kinds of year.
fn proxy_year(year: i32) -> i32 {
    let kind = |y: i32| {
        let jan1 = chrono::NaiveDate::from_ymd_opt(y, 1, 1).map(|d| chrono::Datelike::weekday(&d));
        (jan1, chrono::NaiveDate::from_ymd_opt(y, 2, 29).is_some())
    };
    let want = kind(year);
    (LAST_LISTED_YEAR - 27..=LAST_LISTED_YEAR).rev().find(|&p| kind(p) == want).unwrap_or(LAST_LISTED_YEAR)
}

/// `t` moved to its proxy year when it lies beyond the listed years (same month, day and time).
fn in_listed_years(t: NaiveDateTime) -> NaiveDateTime {
    use chrono::Datelike as _;
    if t.year() <= LAST_LISTED_YEAR { t } else { t.with_year(proxy_year(t.year())).unwrap_or(t) }
}

/// The UTC offset of `tz` at the instant `utc` (a naive UTC time), in seconds, following the
/// zone's rules beyond the listed years.
fn offset_at(tz: Tz, utc: NaiveDateTime) -> i64 {
    i64::from(tz.offset_from_utc_datetime(&in_listed_years(utc)).fix().local_minus_utc())
}

/// The wall-clock time in `tz` at `t` (DST applied in every year, 2100 and later included).
pub fn utc_to_local(t: Timestamp, tz: Tz) -> NaiveDateTime {
    t.naive_utc() + chrono::Duration::seconds(offset_at(tz, t.naive_utc()))
}

/// The instants a wall-clock time in `tz` names (none in a gap, two in a repeated hour).
fn local_instants(tz: Tz, local: NaiveDateTime) -> chrono::LocalResult<Timestamp> {
    let to_utc = |offset: i32| (local - chrono::Duration::seconds(i64::from(offset))).and_utc();
    match tz.from_local_datetime(&in_listed_years(local)) {
        chrono::LocalResult::Single(t) => chrono::LocalResult::Single(to_utc(t.offset().fix().local_minus_utc())),
        chrono::LocalResult::Ambiguous(a, b) => chrono::LocalResult::Ambiguous(
            to_utc(a.offset().fix().local_minus_utc()),
            to_utc(b.offset().fix().local_minus_utc()),
        ),
        chrono::LocalResult::None => chrono::LocalResult::None,
    }
}

/// Maps a wall-clock time in `tz` to an instant: a time in a DST gap moves forward by the
/// gap; of a time that occurs twice, the earliest occurrence strictly after `after` is taken
/// (`None` when neither is).
pub(crate) fn local_to_utc(tz: Tz, local: NaiveDateTime, after: Option<Timestamp>) -> Option<Timestamp> {
    let later = |t: Timestamp| after.is_none_or(|a| t > a);
    match local_instants(tz, local) {
        chrono::LocalResult::Single(t) => Some(t).filter(|t| later(*t)),
        chrono::LocalResult::Ambiguous(a, b) => {
            let (first, second) = if a <= b { (a, b) } else { (b, a) };
            [first, second].into_iter().find(|t| later(*t))
        }
        chrono::LocalResult::None => {
            // Use the offset in force before the gap: 02:30 in a 02:00→03:00 gap becomes 03:30.
            // The instant `local - 24h` read as UTC lies before the change in every zone (offsets
            // are within ±14h) and after the previous one (months earlier), so its offset is the
            // one before the gap. (6h was not enough east of UTC+6: Sydney fired an hour early.)
            let offset = offset_at(tz, local - chrono::Duration::hours(24));
            let utc = (local - chrono::Duration::seconds(offset)).and_utc();
            Some(utc).filter(|t| later(*t))
        }
    }
}

use chrono::Offset as _;

/// Formats an instant in `tz` as Python's `str(datetime)`: microseconds only when non-zero.
pub fn format_python(t: Timestamp, tz: Tz) -> String {
    let local = utc_to_local(t, tz);
    if t.timestamp_subsec_micros() == 0 {
        local.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

/// Formats an instant in `tz` as `YYYY-mm-dd HH:MM:SS` (microseconds truncated), RuQi's
/// JSON datetime format.
pub fn format_seconds(t: Timestamp, tz: Tz) -> String {
    utc_to_local(t, tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dst_goes_on_after_the_listed_years() {
        let ny = chrono_tz::America::New_York;
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        // summer: EDT (UTC-4), as APScheduler and the zone's rule say; winter: EST
        assert_eq!(local_to_utc(ny, at("2100-07-01 12:00:00"), None), Some(utc("2100-07-01 16:00:00")));
        assert_eq!(local_to_utc(ny, at("2100-01-15 12:00:00"), None), Some(utc("2100-01-15 17:00:00")));
        assert_eq!(local_to_utc(ny, at("2099-07-01 12:00:00"), None), Some(utc("2099-07-01 16:00:00")));
        assert_eq!(format_python(utc("2100-07-01 16:00:00"), ny), "2100-07-01 12:00:00");
        assert_eq!(format_seconds(utc("2400-02-29 12:00:00.5"), ny), "2400-02-29 07:00:00");
        // 2100's rule: second Sunday of March (the 14th) 02:00 → 03:00, first Sunday of November
        assert_eq!(local_to_utc(ny, at("2100-03-14 02:30:00"), None), Some(utc("2100-03-14 07:30:00")));
        let fall = local_to_utc(ny, at("2100-11-07 01:30:00"), None);
        assert_eq!(fall, Some(utc("2100-11-07 05:30:00")), "a repeated hour: the first occurrence");
        // south of the equator, DST spans the new year
        let syd = chrono_tz::Australia::Sydney;
        assert_eq!(local_to_utc(syd, at("2101-01-01 12:00:00"), None), Some(utc("2101-01-01 01:00:00")));
        assert_eq!(utc_to_local(utc("2100-12-31 14:00:00"), syd), at("2101-01-01 01:00:00"));
        for y in 2100..2600 {
            let p = proxy_year(y);
            assert!((2072..=2099).contains(&p), "{y} → {p}");
        }
    }

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
