//! `date` trigger: one instant, `YYYY-mm-dd[( |T)HH:MM:SS[.ffffff]]` (anchored at the start
//! only, as RuQi's regex is) or `now`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use chrono_tz::Tz;
use regex::Regex;
use std::sync::LazyLock;

use super::{TriggerError, format_python, local_to_utc};

/// Python's `str(datetime)` of a naive time: microseconds only when non-zero.
fn format_naive(t: NaiveDateTime) -> String {
    if t.and_utc().timestamp_subsec_micros() == 0 {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}
use crate::clock::Timestamp;

static DATE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,6}))?)?").unwrap()
});

/// A parsed date trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct DateTrigger {
    at: Timestamp,
    rule: String,
}

impl DateTrigger {
    /// Parses an API rule in zone `tz`; `now` is the instant `now` stands for.
    pub fn parse(rule: &str, tz: Tz, now: Timestamp) -> Result<Self, TriggerError> {
        if rule == "now" {
            return Ok(Self { at: now, rule: format_python(now, tz) });
        }
        let c = DATE_RE.captures(rule).ok_or(TriggerError::RuleNotMatch)?;
        let num = |i: usize| c.get(i).map_or(0, |m| m.as_str().parse::<u32>().unwrap_or(u32::MAX));
        let invalid = || TriggerError::InvalidValue(format!("{} is not a valid date", &c[0]));
        // Python's datetime starts at year 1, as RuQi 1.x does.
        let year = c[1].parse::<i32>().ok().filter(|y| *y >= 1).ok_or_else(invalid)?;
        let date = NaiveDate::from_ymd_opt(year, num(2), num(3)).ok_or_else(invalid)?;
        // A fraction is a decimal fraction of a second: `.5` is 500000 µs.
        let micros = c.get(7).map_or(0, |m| {
            let digits = m.as_str();
            digits.parse::<u32>().unwrap_or(0) * 10u32.pow(6 - digits.len() as u32)
        });
        let time = NaiveTime::from_hms_micro_opt(num(4), num(5), num(6), micros).ok_or_else(invalid)?;
        let local = NaiveDateTime::new(date, time);
        let at = local_to_utc(tz, local, None).ok_or_else(invalid)?;
        // The rule is the wall time the user wrote, normalised (as 1.x showed it), even when a
        // DST gap moves the instant: only the next run time moves.
        Ok(Self { at, rule: format_naive(local) })
    }

    /// Rebuilds a stored trigger.
    pub fn restore(rule: &str, at: Timestamp) -> Self {
        Self { at, rule: rule.to_owned() }
    }

    /// The instant.
    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// Python's `str(run_date)`.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The instant once; nothing after it has fired.
    pub fn next_fire(&self, prev: Option<Timestamp>) -> Option<Timestamp> {
        prev.is_none().then_some(self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Timestamp {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap().and_utc()
    }

    #[test]
    fn accepted_forms_and_normalisation() {
        let tz = chrono_tz::UTC;
        let now = utc("2026-11-24 10:00:00.123456");
        let cases = [
            ("2030-12-16", "2030-12-16 00:00:00"),
            ("2030-1-2 3:4:5", "2030-01-02 03:04:05"),
            ("2030-12-16T18:03:17", "2030-12-16 18:03:17"),
            ("2030-12-16 18:05:17.682862", "2030-12-16 18:05:17.682862"),
            ("2030-12-16 18:05:17.5", "2030-12-16 18:05:17.500000"),
            ("2030-12-16 18:03:17xyz", "2030-12-16 18:03:17"),
            ("2030-12-16 18:03:17.000000", "2030-12-16 18:03:17"),
            ("2028-02-29 12:00:00", "2028-02-29 12:00:00"),
            ("2020-01-01 00:00:00", "2020-01-01 00:00:00"), // past dates are accepted
            ("now", "2026-11-24 10:00:00.123456"),
        ];
        for (rule, want) in cases {
            assert_eq!(DateTrigger::parse(rule, tz, now).unwrap().rule(), want, "{rule}");
        }
        for rule in ["20301216", "2030/12/16", "", "tomorrow", "NOW", "30-12-16"] {
            assert_eq!(DateTrigger::parse(rule, tz, now).unwrap_err(), TriggerError::RuleNotMatch, "{rule:?}");
        }
        for rule in [
            "2030-13-45",
            "2027-02-29",
            "2030-12-16 25:00:00",
            "2030-12-16 23:60:00",
            "2030-00-10",
            "0000-01-01 00:00:00",
        ] {
            assert!(matches!(DateTrigger::parse(rule, tz, now), Err(TriggerError::InvalidValue(_))), "{rule}");
        }
    }

    #[test]
    fn zone_and_once() {
        let sh: Tz = "Asia/Shanghai".parse().unwrap();
        let t = DateTrigger::parse("2030-12-16 18:03:17", sh, utc("2026-01-01 00:00:00")).unwrap();
        assert_eq!(t.at(), utc("2030-12-16 10:03:17"));
        assert_eq!(t.next_fire(None), Some(t.at()));
        assert_eq!(t.next_fire(Some(t.at())), None);
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // inside the spring-forward gap: moved forward by the gap
        let gap = DateTrigger::parse("2026-03-29 02:30:00", berlin, utc("2026-01-01 00:00:00")).unwrap();
        assert_eq!(gap.at(), utc("2026-03-29 01:30:00"));
        assert_eq!(gap.rule(), "2026-03-29 02:30:00", "the rule stays what the user wrote");
        let ny: Tz = "America/New_York".parse().unwrap();
        let gap = DateTrigger::parse("2027-03-14 02:30:00", ny, utc("2026-01-01 00:00:00")).unwrap();
        assert_eq!((gap.at(), gap.rule()), (utc("2027-03-14 07:30:00"), "2027-03-14 02:30:00"));
    }
}
