//! `cron` trigger: RuQi's 6-field rule `second minute hour day month day_of_week` in
//! APScheduler 3's expression syntax (what RuQi 1.x vendors).
//!
//! Per field: `*`, `*/n`, `a`, `a-b`, `a-b/n`, `a/n` and comma lists; month names `jan`–`dec`
//! and weekday names `mon`–`sun` (case-insensitive, ranges allowed, matched without an end
//! anchor as APScheduler does); `last` in the day field. Day of week counts 0 = Monday.
//! Day and day of week must both match (AND, unlike Vixie cron).

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use chrono_tz::Tz;
use regex::Regex;
use std::sync::LazyLock;

use super::{TriggerError, local_to_utc};
use crate::clock::Timestamp;

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The fields in rule order with their value ranges.
const FIELDS: [(&str, u32, u32); 6] =
    [("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("day_of_week", 0, 6)];

static ALL_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\*(?:/(\d+))?$").unwrap());
static RANGE_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(\d+)(?:-(\d+))?(?:/(\d+))?$").unwrap());
static NAMES_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)^([a-z]+)(?:-([a-z]+))?").unwrap());
static LAST_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)^last").unwrap());

/// One comma-separated part of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    /// `*` or `*/step`.
    All { step: Option<u32> },
    /// `a`, `a-b`, `a/step`, `a-b/step` (`last` None with a step means "to the field's max").
    Range { first: u32, last: Option<u32>, step: Option<u32> },
    /// `jan`, `jan-mar`.
    Months { first: u32, last: u32 },
    /// `mon`, `mon-fri`.
    Weekdays { first: u32, last: u32 },
    /// `last`: the last day of the month.
    LastDay,
}

impl Expr {
    fn parse(field: usize, text: &str) -> Result<Self, TriggerError> {
        let (name, min, max) = FIELDS[field];
        let int = |s: &str| -> Result<u32, TriggerError> {
            s.parse::<u32>().map_err(|_| TriggerError::InvalidValue(format!("{name}: {s} is too large")))
        };
        let step_of = |s: Option<regex::Match<'_>>| -> Result<Option<u32>, TriggerError> {
            match s {
                None => Ok(None),
                Some(m) => match int(m.as_str())? {
                    0 => Err(TriggerError::InvalidValue(format!("{name}: increment must be higher than 0"))),
                    n => Ok(Some(n)),
                },
            }
        };
        if let Some(c) = ALL_RE.captures(text) {
            let step = step_of(c.get(1))?;
            if let Some(step) = step
                && step > max - min
            {
                return Err(TriggerError::InvalidValue(format!(
                    "{name}: the step value ({step}) is higher than the total range of the expression ({})",
                    max - min
                )));
            }
            return Ok(Self::All { step });
        }
        if let Some(c) = RANGE_RE.captures(text) {
            let first = int(&c[1])?;
            let step = step_of(c.get(3))?;
            let mut last = c.get(2).map(|m| int(m.as_str())).transpose()?;
            if last.is_none() && step.is_none() {
                last = Some(first);
            }
            if let Some(l) = last
                && first > l
            {
                return Err(TriggerError::InvalidValue(format!(
                    "{name}: the minimum value in a range must not be higher than the maximum"
                )));
            }
            if first < min || first > max {
                return Err(TriggerError::InvalidValue(format!("{name}: {first} is out of range {min}-{max}")));
            }
            if let Some(l) = last
                && l > max
            {
                return Err(TriggerError::InvalidValue(format!("{name}: {l} is out of range {min}-{max}")));
            }
            // APScheduler checks the step against `(last or max) - (first or min)`: an end of 0
            // counts as "no end" there (so `0-0/1` is accepted, and means 0).
            let span = last.filter(|l| *l != 0).unwrap_or(max) - if first == 0 { min } else { first };
            if let Some(step) = step
                && step > span
            {
                return Err(TriggerError::InvalidValue(format!(
                    "{name}: the step value ({step}) is higher than the total range of the expression ({span})"
                )));
            }
            return Ok(Self::Range { first, last, step });
        }
        if (name == "month" || name == "day_of_week")
            && let Some(c) = NAMES_RE.captures(text)
        {
            let (names, what): (&[&str], &str) =
                if name == "month" { (&MONTHS, "month") } else { (&WEEKDAYS, "weekday") };
            let index = |s: &str| {
                let lower = s.to_ascii_lowercase();
                names
                    .iter()
                    .position(|n| *n == lower)
                    .map(|i| i as u32)
                    .ok_or_else(|| TriggerError::InvalidValue(format!("{name}: invalid {what} name \"{s}\"")))
            };
            let first = index(&c[1])?;
            let last = c.get(2).map(|m| index(m.as_str())).transpose()?.unwrap_or(first);
            if last < first {
                return Err(TriggerError::InvalidValue(format!(
                    "{name}: the last {what} ({}) is before the first {what} ({})",
                    names[last as usize], names[first as usize]
                )));
            }
            return Ok(if name == "month" {
                Self::Months { first: first + 1, last: last + 1 }
            } else {
                Self::Weekdays { first, last }
            });
        }
        if name == "day" && LAST_RE.is_match(text) {
            return Ok(Self::LastDay);
        }
        Err(TriggerError::InvalidValue(format!("unrecognized expression \"{text}\" for field \"{name}\"")))
    }

    /// The values this expression admits in `min..=max` (`LastDay` is handled by the caller).
    fn values(&self, min: u32, max: u32) -> Vec<u32> {
        match *self {
            Self::All { step } => (min..=max).step_by(step.unwrap_or(1) as usize).collect(),
            Self::Range { first, last, step } => {
                (first.max(min)..=last.unwrap_or(max).min(max)).step_by(step.unwrap_or(1) as usize).collect()
            }
            Self::Months { first, last } | Self::Weekdays { first, last } => (first..=last).collect(),
            Self::LastDay => Vec::new(),
        }
    }

    fn render(&self) -> String {
        match *self {
            Self::All { step: None } => "*".into(),
            Self::All { step: Some(s) } => format!("*/{s}"),
            Self::Range { first, last, step } => {
                let range = match last {
                    Some(l) if l != first => format!("{first}-{l}"),
                    // `a-a/n` stays a range: `a/n` would read as "from a to the max" (APScheduler
                    // prints it that way, but it never parses its own text back; we do).
                    Some(l) if step.is_some() => format!("{first}-{l}"),
                    _ => first.to_string(),
                };
                match step {
                    Some(s) => format!("{range}/{s}"),
                    None => range,
                }
            }
            Self::Months { first, last } => names(&MONTHS, first - 1, last - 1),
            Self::Weekdays { first, last } => names(&WEEKDAYS, first, last),
            Self::LastDay => "last".into(),
        }
    }
}

fn names(list: &[&str], first: u32, last: u32) -> String {
    if first == last {
        list[first as usize].to_owned()
    } else {
        format!("{}-{}", list[first as usize], list[last as usize])
    }
}

/// A parsed cron rule.
#[derive(Debug, Clone, PartialEq)]
pub struct CronTrigger {
    exprs: [Vec<Expr>; 6],
    /// Bit sets of admitted values per field (bit n = value n).
    bits: [u64; 6],
    last_day: bool,
    tz: Tz,
}

impl CronTrigger {
    /// Parses a rule: exactly 6 fields separated by single spaces.
    pub fn parse(rule: &str, tz: Tz) -> Result<Self, TriggerError> {
        // RuQi 1.x splits on single spaces; APScheduler then strips each field, so a tab or a
        // line break at either end of a field is fine (`0 0 12 * * *\n`).
        let parts: Vec<&str> = rule.split(' ').map(str::trim).collect();
        if parts.len() != 6 {
            return Err(TriggerError::RuleNotMatch);
        }
        let mut exprs: [Vec<Expr>; 6] = Default::default();
        let mut bits = [0u64; 6];
        let mut last_day = false;
        for (i, part) in parts.iter().enumerate() {
            let (_, min, max) = FIELDS[i];
            for text in part.split(',') {
                let e = Expr::parse(i, text)?;
                if e == Expr::LastDay {
                    last_day = true;
                }
                for v in e.values(min, max) {
                    bits[i] |= 1 << v;
                }
                exprs[i].push(e);
            }
        }
        Ok(Self { exprs, bits, last_day, tz })
    }

    /// The normalised rule: each field's expressions joined by `,`, fields by one space.
    pub fn rule(&self) -> String {
        self.exprs
            .iter()
            .map(|f| f.iter().map(Expr::render).collect::<Vec<_>>().join(","))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn has(&self, field: usize, v: u32) -> bool {
        self.bits[field] & (1 << v) != 0
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        let last = last_day_of_month(d.year(), d.month());
        (self.has(3, d.day()) || (self.last_day && d.day() == last)) && self.has(5, d.weekday().num_days_from_monday())
    }

    /// The first matching time of day at or after `from`.
    fn time_in_day(&self, from: NaiveTime) -> Option<NaiveTime> {
        for h in from.hour()..24 {
            if !self.has(2, h) {
                continue;
            }
            let m0 = if h == from.hour() { from.minute() } else { 0 };
            for m in m0..60 {
                if !self.has(1, m) {
                    continue;
                }
                let s0 = if h == from.hour() && m == from.minute() { from.second() } else { 0 };
                if let Some(s) = (s0..60).find(|s| self.has(0, *s)) {
                    return NaiveTime::from_hms_opt(h, m, s);
                }
            }
        }
        None
    }

    /// The first matching wall-clock time at or after `start`, searching at most 400 years
    /// (the Gregorian cycle, so a rule that matches nothing there never will).
    fn next_local(&self, start: NaiveDateTime) -> Option<NaiveDateTime> {
        let limit = start.year() + 401;
        let mut date = start.date();
        let mut from = start.time();
        while date.year() < limit {
            if !self.has(4, date.month()) {
                let (y, m) = if date.month() == 12 { (date.year() + 1, 1) } else { (date.year(), date.month() + 1) };
                date = NaiveDate::from_ymd_opt(y, m, 1)?;
                from = NaiveTime::MIN;
                continue;
            }
            if self.day_matches(date)
                && let Some(t) = self.time_in_day(from)
            {
                return Some(date.and_time(t));
            }
            date = date.succ_opt()?;
            from = NaiveTime::MIN;
        }
        None
    }

    /// Strictly after `prev`, or at/after `now` rounded up to a whole second.
    pub fn next_fire(&self, prev: Option<Timestamp>, now: Timestamp) -> Option<Timestamp> {
        let (mut start, after) = match prev {
            Some(p) => (super::utc_to_local(p, self.tz) + chrono::Duration::seconds(1), Some(p)),
            None => {
                let ceil = ceil_second(now);
                (super::utc_to_local(ceil, self.tz), Some(ceil - chrono::Duration::microseconds(1)))
            }
        };
        start = start.with_nanosecond(0)?;
        // A local time can map to an instant not after `after` (repeated hour): search on.
        for _ in 0..4 {
            let local = self.next_local(start)?;
            if let Some(t) = local_to_utc(self.tz, local, after) {
                return Some(t);
            }
            start = local + chrono::Duration::seconds(1);
        }
        None
    }
}

fn ceil_second(t: Timestamp) -> Timestamp {
    let floor = t.with_nanosecond(0).expect("valid");
    if floor == t { t } else { floor + chrono::Duration::seconds(1) }
}

fn last_day_of_month(year: i32, month: u32) -> u32 {
    let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).and_then(|d| d.pred_opt()).map_or(31, |d| d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Timestamp {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap().and_utc()
    }

    const UTC: Tz = chrono_tz::UTC;

    #[test]
    fn normalisation() {
        let cases = [
            ("* * * * * *", "* * * * * *"),
            ("00 05 * * * *", "0 5 * * * *"),
            ("0 20 2 * * *", "0 20 2 * * *"),
            ("0 0 0 * JAN-mar MON-fri", "0 0 0 * jan-mar mon-fri"),
            ("1-1 */1 1-5/2 last * sun", "1 */1 1-5/2 last * sun"),
            ("0,30 1-5/2 */2 1,15 * sat,sun", "0,30 1-5/2 */2 1,15 * sat,sun"),
            ("0 0 12 * * mon-fri/2", "0 0 12 * * mon-fri"),
            ("5/15 * * * * *", "5/15 * * * * *"),
            ("0 0 0 31 2 *", "0 0 0 31 2 *"),
            ("0 0 0 * dec *", "0 0 0 * dec *"),
            ("0 0 0 LAST * *", "0 0 0 last * *"),
            ("0 0 12 * * *\n", "0 0 12 * * *"),
            ("\t0 0 12 * * *", "0 0 12 * * *"),
            ("0 0 12\t * * *", "0 0 12 * * *"),
            ("0-0/1 0 0 * * *", "0-0/1 0 0 * * *"),
            ("0 0 12 * * 0-0/1", "0 0 12 * * 0-0/1"),
        ];
        for (rule, want) in cases {
            assert_eq!(CronTrigger::parse(rule, UTC).unwrap().rule(), want, "{rule}");
        }
    }

    #[test]
    fn shape_errors_are_rule_not_match() {
        for rule in ["* * * * *", "* * * * * * *", "*  * * * * *", "", " * * * * * *", "*\t* * * * *"] {
            assert_eq!(CronTrigger::parse(rule, UTC).unwrap_err(), TriggerError::RuleNotMatch, "{rule:?}");
        }
    }

    #[test]
    fn value_errors_are_precise() {
        let cases = [
            ("? * * * * *", "unrecognized expression"),
            ("L * * * * *", "unrecognized expression"),
            ("* * * 1#2 * *", "unrecognized expression"),
            ("61 * * * * *", "out of range"),
            ("*/70 * * * * *", "step value"),
            ("2-1 * * * * *", "must not be higher"),
            ("* * * * * 7", "out of range"),
            ("* * * 0 * *", "out of range"),
            ("* * * * 13 *", "out of range"),
            ("* * 24 * * *", "out of range"),
            ("*/0 * * * * *", "higher than 0"),
            ("* * * * * monday", "invalid weekday name"),
            ("* * * * foo *", "invalid month name"),
            ("* * * * mar-jan *", "before the first"),
            ("1, * * * * *", "unrecognized expression"),
            ("99999999999 * * * * *", "too large"),
        ];
        for (rule, want) in cases {
            let err = CronTrigger::parse(rule, UTC).unwrap_err().to_string();
            assert!(err.starts_with("Job_rule not match: ") && err.contains(want), "{rule}: {err}");
        }
    }

    #[test]
    fn next_fire_times() {
        // (rule, now, prev, expected)
        let cases: &[(&str, &str, Option<&str>, Option<&str>)] = &[
            ("0 0 12 * * 0", "2026-11-24 10:00:00", None, Some("2026-11-30 12:00:00")), // 0 = Monday
            ("0,30 1-5/2 */2 1,15 * sat,sun", "2026-11-24 10:00:00", None, Some("2027-05-01 00:01:00")),
            ("* * * * * *", "2026-11-24 10:00:00.5", None, Some("2026-11-24 10:00:01")),
            ("* * * * * *", "2026-11-24 10:00:00", None, Some("2026-11-24 10:00:00")),
            ("* * * * * *", "2026-11-24 10:00:00", Some("2026-11-24 10:00:00"), Some("2026-11-24 10:00:01")),
            ("*/15 * * * * *", "2026-11-24 10:00:16", None, Some("2026-11-24 10:00:30")),
            ("0 20 2 * * *", "2026-11-24 02:20:01", None, Some("2026-11-25 02:20:00")),
            ("0 0 0 last * *", "2026-02-10 00:00:00", None, Some("2026-02-28 00:00:00")),
            ("0 0 0 last * *", "2028-02-10 00:00:00", None, Some("2028-02-29 00:00:00")), // leap year
            ("0 0 0 last * *", "2026-04-30 00:00:01", None, Some("2026-05-31 00:00:00")),
            ("0 0 0 29 2 *", "2026-03-01 00:00:00", None, Some("2028-02-29 00:00:00")),
            ("0 0 0 31 * *", "2026-04-01 00:00:00", None, Some("2026-05-31 00:00:00")), // April has 30
            ("0 0 0 30 2 *", "2026-01-01 00:00:00", None, None),                        // never
            ("0 0 0 31 2 *", "2026-01-01 00:00:00", None, None),
            ("59 59 23 31 12 *", "2026-12-31 23:59:59", Some("2026-12-31 23:59:59"), Some("2027-12-31 23:59:59")),
            ("0 0 9 * jan-mar/2 *", "2026-03-31 09:00:01", None, Some("2027-01-01 09:00:00")),
            ("0 0 0 29 2 0", "2026-01-01 00:00:00", None, Some("2044-02-29 00:00:00")), // Feb 29 on a Monday
            ("0 0 0 1-7 * fri", "2026-11-24 00:00:00", None, Some("2026-12-04 00:00:00")), // first Friday
            ("5/20 * * * * *", "2026-11-24 10:00:46", None, Some("2026-11-24 10:01:05")),
            ("0-0/1 0 0 * * *", "2026-11-24 10:00:00", None, Some("2026-11-25 00:00:00")), // 0-0/1 is just 0
        ];
        for (rule, now, prev, want) in cases {
            let t = CronTrigger::parse(rule, UTC).unwrap();
            assert_eq!(t.next_fire(prev.map(utc), utc(now)), want.map(utc), "{rule} now={now} prev={prev:?}");
        }
    }

    #[test]
    fn next_fire_across_dst_in_berlin() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        // daily 02:30 local: on 2026-03-29 02:30 does not exist → 03:30 CEST (01:30 UTC)
        let t = CronTrigger::parse("0 30 2 * * *", tz).unwrap();
        let cases = [
            ("2026-03-28 01:30:00", Some("2026-03-28 01:30:00"), "2026-03-29 01:30:00"),
            ("2026-03-29 01:30:00", Some("2026-03-29 01:30:00"), "2026-03-30 00:30:00"),
            // fall back: 02:30 happens twice on 2026-10-25, fires once (first, CEST = 00:30 UTC)
            ("2026-10-24 00:30:00", Some("2026-10-24 00:30:00"), "2026-10-25 00:30:00"),
            ("2026-10-25 00:30:00", Some("2026-10-25 00:30:00"), "2026-10-26 01:30:00"),
        ];
        for (now, prev, want) in cases {
            assert_eq!(t.next_fire(prev.map(utc), utc(now)), Some(utc(want)), "prev={prev:?}");
        }
        // hourly in the gap hour: 01:59:59 CET then the next whole hour that exists
        let hourly = CronTrigger::parse("0 0 * * * *", tz).unwrap();
        assert_eq!(
            hourly.next_fire(Some(utc("2026-03-29 00:00:00")), utc("2026-03-29 00:00:00")),
            Some(utc("2026-03-29 01:00:00")) // 02:00 CET does not exist → 03:00 CEST
        );
    }

    #[test]
    fn next_fire_in_shanghai_is_local() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let t = CronTrigger::parse("0 20 2 * * *", tz).unwrap();
        assert_eq!(t.next_fire(None, utc("2026-11-24 00:00:00")), Some(utc("2026-11-24 18:20:00")));
    }
}
