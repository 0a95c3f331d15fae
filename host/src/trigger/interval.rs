//! `interval` trigger: RuQi's `Ns|Nm|Nh|Nd` rule, fixed-rate on the grid `start + k·interval`
//! where `start` = the time the trigger was built (add or modify) + one interval.

use chrono::Duration;
use regex::Regex;
use std::sync::LazyLock;

use super::TriggerError;
use crate::clock::Timestamp;

/// The latest first run an interval may have: 9999-12-31 23:59:59 UTC, Python's `datetime.max`
/// (RuQi 1.x crashed on intervals past it; any shorter one is accepted, as APScheduler does).
pub const LATEST_FIRST_RUN_EPOCH: i64 = 253_402_300_799;

static TOKEN_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[0-9]+|[a-z]+").unwrap());

/// A parsed interval.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalTrigger {
    seconds: i64,
    start: Timestamp,
}

/// Parses the rule to whole seconds with RuQi's quirks: only `[0-9]+|[a-z]+` tokens count
/// (so `10 s`, `-5s`, `10s!` pass), exactly two, the second a unit; 0 becomes 1.
fn parse_seconds(rule: &str) -> Result<i64, TriggerError> {
    let tokens: Vec<&str> = TOKEN_RE.find_iter(rule).map(|m| m.as_str()).collect();
    let [number, unit] = tokens[..] else { return Err(TriggerError::RuleNotMatch) };
    let factor: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(TriggerError::RuleNotMatch),
    };
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TriggerError::RuleNotMatch);
    }
    let seconds = number.parse::<i64>().ok().and_then(|n| n.checked_mul(factor)).ok_or_else(too_long)?;
    Ok(seconds.max(1))
}

fn too_long() -> TriggerError {
    TriggerError::InvalidValue(
        "interval: the first run would come after 9999-12-31 23:59:59, the latest time kept".into(),
    )
}

impl IntervalTrigger {
    /// Parses an API rule; the grid starts one interval after `now`, which must be no later
    /// than [`LATEST_FIRST_RUN_EPOCH`].
    pub fn parse(rule: &str, now: Timestamp) -> Result<Self, TriggerError> {
        let seconds = parse_seconds(rule)?;
        let start = Duration::try_seconds(seconds)
            .and_then(|d| now.checked_add_signed(d))
            .filter(|s| s.timestamp() <= LATEST_FIRST_RUN_EPOCH)
            .ok_or_else(too_long)?;
        Ok(Self { seconds, start })
    }

    /// Rebuilds a stored trigger from its normalised rule and grid start.
    pub fn restore(rule: &str, start: Timestamp) -> Result<Self, TriggerError> {
        Ok(Self { seconds: parse_seconds(rule)?, start })
    }

    /// `"<seconds>s"`.
    pub fn rule(&self) -> String {
        format!("{}s", self.seconds)
    }

    /// The first point of the grid.
    pub fn start(&self) -> Timestamp {
        self.start
    }

    /// The period in seconds.
    pub fn seconds(&self) -> i64 {
        self.seconds
    }

    /// The first point at or after `now` of the grid extended both ways (also before its
    /// start): where the job goes on after the clock stepped back behind its next run.
    pub fn grid_point_from(&self, now: Timestamp) -> Timestamp {
        let step_us = self.seconds.saturating_mul(1_000_000);
        let behind = (now - self.start).num_microseconds().unwrap_or(i64::MAX);
        let k = behind.div_euclid(step_us) + i64::from(behind.rem_euclid(step_us) != 0);
        self.start.checked_add_signed(Duration::microseconds(k.saturating_mul(step_us))).unwrap_or(self.start)
    }

    /// `prev + interval`, or the first grid point at or after `now`.
    pub fn next_fire(&self, prev: Option<Timestamp>, now: Timestamp) -> Timestamp {
        // Saturating throughout: a stored rule far beyond what parse accepts must not panic.
        let step_us = self.seconds.saturating_mul(1_000_000);
        let later = |t: Timestamp, us: i64| t.checked_add_signed(Duration::microseconds(us)).unwrap_or(t);
        match prev {
            Some(p) => later(p, step_us),
            None if self.start > now => self.start,
            None => self.grid_point_from(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    fn utc(s: &str) -> Timestamp {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap().and_utc()
    }

    #[test]
    fn the_grid_goes_on_before_its_start() {
        let t = IntervalTrigger::parse("10s", utc("2026-11-24 10:00:00.25")).unwrap();
        // Start 10:00:10.25; an hour before it, the grid point at or after 09:00:03.
        assert_eq!(t.grid_point_from(utc("2026-11-24 09:00:03")), utc("2026-11-24 09:00:10.25"));
        assert_eq!(t.grid_point_from(utc("2026-11-24 09:00:10.25")), utc("2026-11-24 09:00:10.25"));
        assert_eq!(t.grid_point_from(utc("2026-11-24 10:00:10.26")), utc("2026-11-24 10:00:20.25"));
    }

    #[test]
    fn normalisation_with_ruqi_quirks() {
        let now = utc("2026-11-24 10:00:00");
        let ok = [
            ("10s", "10s"),
            ("1m", "60s"),
            ("2h", "7200s"),
            ("1d", "86400s"),
            ("0s", "1s"),
            ("10 s", "10s"),
            ("10s!", "10s"),
            ("-5s", "5s"),
            ("007s", "7s"),
            ("1200s", "1200s"),
            ("36500d", "3153600000s"),
            ("36501d", "3153686400s"),
            ("100000d", "8640000000s"),
        ];
        for (rule, want) in ok {
            assert_eq!(IntervalTrigger::parse(rule, now).unwrap().rule(), want, "{rule}");
        }
        for rule in ["10S", "1h30m", "5.5s", "10sec", "s10", " ", "", "10", "s", "10x", "abc s"] {
            assert_eq!(IntervalTrigger::parse(rule, now).unwrap_err(), TriggerError::RuleNotMatch, "{rule:?}");
        }
        for rule in ["99999999999d", "2914000d", "99999999999999999999999s", "9223372036854775807s"] {
            assert!(matches!(IntervalTrigger::parse(rule, now), Err(TriggerError::InvalidValue(_))), "{rule}");
        }
    }

    #[test]
    fn fixed_rate_grid() {
        let t = IntervalTrigger::parse("10s", utc("2026-11-24 10:00:00.25")).unwrap();
        assert_eq!(t.start(), utc("2026-11-24 10:00:10.25"));
        let cases = [
            (None, "2026-11-24 10:00:01", "2026-11-24 10:00:10.25"),
            (None, "2026-11-24 10:00:10.25", "2026-11-24 10:00:10.25"),
            (None, "2026-11-24 10:00:10.26", "2026-11-24 10:00:20.25"),
            (None, "2026-11-24 10:05:00", "2026-11-24 10:05:00.25"),
            (Some("2026-11-24 10:00:20.25"), "2026-11-24 10:09:00", "2026-11-24 10:00:30.25"),
        ];
        for (prev, now, want) in cases {
            assert_eq!(t.next_fire(prev.map(utc), utc(now)), utc(want), "prev={prev:?} now={now}");
        }
    }
}
