//! Business calendars: which days are working days. Operators keep them as TOML files in the
//! `calendars/` folder (`cn.toml`: China's public holidays and the weekend days made working days,
//! 调休); a job that names one (`calendar=cn`, or `calendar=cn:rest` for the inverse) fires only
//! on the days it admits.
//!
//! Working days are Monday to Friday, minus the year's `holidays`, plus its `workdays`. A year the
//! file does not list falls back to Monday to Friday, with a warning (once per calendar and year)
//! and a note on the job, so an operator knows to add the year. The folder is watched (`notify`)
//! and reloaded like the plugins folder; a file that does not parse is reported and the last good
//! version of that calendar stays in force.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{Datelike as _, NaiveDate, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::clock::Timestamp;
use crate::model::Job;
use crate::trigger::{Trigger, local_to_utc, utc_to_local};
#[cfg(doc)]
use crate::watch::DEBOUNCE;
use crate::watch::watch_folder;

/// Refused days a search for an admitted one may skip (one fire time each) before it gives up:
/// ten years of daily fire times and then some. A rule such as "Sundays, working days only" may
/// never fire in the fallback years.
const MAX_SKIPPED_DAYS: usize = 4_000;

/// Why a calendar or a job's calendar rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The job names a calendar no file defines.
    #[error("calendar {name:?} is not loaded (calendars: {known})")]
    Unknown {
        /// The name given.
        name: String,
        /// The loaded calendars, comma-separated, or `none`.
        known: String,
    },
    /// The rule is not `NAME` or `NAME:rest` / `NAME:work`.
    #[error("calendar {0:?} is not NAME, NAME:work or NAME:rest (e.g. cn, cn:rest)")]
    BadRule(String),
    /// A calendar file that cannot be read or does not parse.
    #[error("{file}: {reason}")]
    File {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The calendars folder cannot be watched.
    #[error("cannot watch the calendars folder {path}: {reason}")]
    Folder {
        /// The folder.
        path: String,
        /// The watcher's error.
        reason: String,
    },
}

/// Which days of a calendar a job fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Days {
    /// Working days (`calendar=cn`).
    Work,
    /// Rest days: weekends and holidays, not the weekend days made working days (`cn:rest`).
    Rest,
}

/// A job's calendar: a calendar's name and which of its days the job fires on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarRule {
    /// The calendar (its file's `name`).
    pub name: String,
    /// Working or rest days.
    pub days: Days,
}

impl CalendarRule {
    /// Parses `NAME`, `NAME:work` or `NAME:rest`.
    pub fn parse(raw: &str) -> Result<Self, CalendarError> {
        let (name, days) = match raw.split_once(':') {
            None => (raw, Days::Work),
            Some((name, "work")) => (name, Days::Work),
            Some((name, "rest")) => (name, Days::Rest),
            Some(_) => return Err(CalendarError::BadRule(raw.to_owned())),
        };
        if !valid_name(name) {
            return Err(CalendarError::BadRule(raw.to_owned()));
        }
        Ok(Self { name: name.to_owned(), days })
    }
}

impl std::fmt::Display for CalendarRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.days {
            Days::Work => f.write_str(&self.name),
            Days::Rest => write!(f, "{}:rest", self.name),
        }
    }
}

/// A calendar name: what a file stem may be (letters, digits, `-`, `_`; at most 64).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// One year of a calendar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Year {
    /// The notice the year's data comes from.
    pub notice: String,
    /// Days off (weekend days inside a holiday period may be listed too).
    pub holidays: BTreeSet<NaiveDate>,
    /// Weekend days made working days (调休).
    pub workdays: BTreeSet<NaiveDate>,
}

/// One calendar, as its file defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    /// Its name (the file's stem).
    pub name: String,
    /// What it is.
    pub description: String,
    /// Where its data comes from.
    pub source: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// The years it lists.
    pub years: BTreeMap<i32, Year>,
}

/// What a calendar says of one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayInfo {
    /// Whether it is a working day.
    pub working: bool,
    /// Whether the calendar lists the date's year (`false`: Monday to Friday was assumed).
    pub covered: bool,
}

impl Calendar {
    /// Parses a calendar file's text; `name` is the file's stem.
    pub fn parse(name: &str, file: &Path, text: &str) -> Result<Self, CalendarError> {
        let bad = |reason: String| CalendarError::File { file: file.display().to_string(), reason };
        let raw: FileShape = toml::from_str(text).map_err(|e| bad(one_line(&e.to_string())))?;
        if let Some(n) = raw.name.as_deref()
            && n != name
        {
            return Err(bad(format!("name = {n:?}, but the file is {name}.toml (they must agree)")));
        }
        let mut years = BTreeMap::new();
        for (key, y) in raw.years {
            let year: i32 =
                key.parse().ok().filter(|y| (1900..=9999).contains(y)).ok_or_else(|| bad(format!("year {key:?}")))?;
            let mut out = Year { notice: y.notice.unwrap_or_default(), ..Year::default() };
            for (list, into) in [(&y.holidays, &mut out.holidays), (&y.workdays, &mut out.workdays)] {
                for entry in list {
                    let (first, last) = date_range(entry).map_err(|e| bad(format!("year {year}: {e}")))?;
                    if first.year() != year || last.year() != year {
                        return Err(bad(format!("year {year}: {entry:?} is not in {year}")));
                    }
                    into.extend(first.iter_days().take_while(|d| *d <= last));
                }
            }
            if let Some(d) = out.holidays.intersection(&out.workdays).next() {
                return Err(bad(format!("{d} is both a holiday and a working day")));
            }
            years.insert(year, out);
        }
        Ok(Self {
            name: name.to_owned(),
            description: raw.description.unwrap_or_default(),
            source: raw.source.unwrap_or_default(),
            file: file.to_owned(),
            years,
        })
    }

    /// What the calendar says of `date`.
    pub fn day(&self, date: NaiveDate) -> DayInfo {
        let weekday = monday_to_friday(date);
        match self.years.get(&date.year()) {
            Some(y) => DayInfo {
                working: y.workdays.contains(&date) || (weekday && !y.holidays.contains(&date)),
                covered: true,
            },
            None => DayInfo { working: weekday, covered: false },
        }
    }
}

/// A calendar file's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    name: Option<String>,
    description: Option<String>,
    source: Option<String>,
    #[serde(default)]
    years: BTreeMap<String, YearShape>,
}

/// One `[years.YYYY]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YearShape {
    notice: Option<String>,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    workdays: Vec<String>,
}

/// `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD` (both ends included).
fn date_range(entry: &str) -> Result<(NaiveDate, NaiveDate), String> {
    let date = |s: &str| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|e| format!("{entry:?}: not YYYY-MM-DD ({e})"))
    };
    let (first, last) = match entry.split_once("..") {
        Some((a, b)) => (date(a)?, date(b)?),
        None => (date(entry)?, date(entry)?),
    };
    if last < first {
        return Err(format!("{entry:?}: the range ends before it starts"));
    }
    Ok((first, last))
}

/// Whether `date` is Monday to Friday: the working days of a year no calendar covers.
fn monday_to_friday(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// An error on one line (its whitespace, line breaks included, squashed), for a log line or an
/// API answer.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A calendar file's state, for listings.
#[derive(Debug, Clone)]
pub struct CalendarStatus {
    /// The calendar's name (the file's stem).
    pub name: String,
    /// The calendar in force (`None`: the file never parsed).
    pub calendar: Option<Arc<Calendar>>,
    /// Why the file on disk is not the one in force, when it does not parse.
    pub error: Option<String>,
}

/// The loaded set: calendars in force, and files that failed to parse.
#[derive(Debug, Default)]
struct Snapshot {
    calendars: BTreeMap<String, Arc<Calendar>>,
    failures: BTreeMap<String, String>,
}

/// The calendars of a node: loaded from its folder, reloaded when it changes, shared by the API
/// and the dispatcher.
#[derive(Debug)]
pub struct Calendars {
    /// The folder (`None`: no calendars).
    dir: Option<PathBuf>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// `(calendar, year)` fallbacks already warned about.
    warned: Mutex<HashSet<(String, i32)>>,
}

impl Calendars {
    /// No calendars at all.
    pub fn none() -> Self {
        Self { dir: None, snapshot: RwLock::default(), warned: Mutex::default() }
    }

    /// Loads every `*.toml` in `dir`; a missing folder means no calendars. Files that do not
    /// parse are reported (and listed) but do not stop the node.
    pub fn load(dir: &Path) -> Self {
        let this = Self { dir: Some(dir.to_owned()), snapshot: RwLock::default(), warned: Mutex::default() };
        this.reload();
        this
    }

    /// From a set of calendars (tests).
    #[cfg(test)]
    fn from_calendars(calendars: impl IntoIterator<Item = Calendar>) -> Self {
        let snap = Snapshot {
            calendars: calendars.into_iter().map(|c| (c.name.clone(), Arc::new(c))).collect(),
            failures: BTreeMap::new(),
        };
        Self { dir: None, snapshot: RwLock::new(Arc::new(snap)), warned: Mutex::default() }
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the folder again. A file that parses replaces its calendar; one that does not keeps
    /// the last good version in force; a removed file removes its calendar. Returns the names of
    /// the calendars whose days changed (added, changed or removed).
    pub fn reload(&self) -> Vec<String> {
        let Some(dir) = &self.dir else { return Vec::new() };
        let old = self.current();
        let mut next = Snapshot::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(dir = %dir.display(), "no calendars folder; jobs cannot name a calendar");
                *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
                return old.calendars.keys().cloned().collect();
            }
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot read the calendars folder; calendars unchanged");
                return Vec::new();
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect();
        files.sort();
        for file in files {
            let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            let parsed = if valid_name(&name) {
                std::fs::read_to_string(&file)
                    .map_err(|e| CalendarError::File { file: file.display().to_string(), reason: e.to_string() })
                    .and_then(|text| Calendar::parse(&name, &file, &text))
            } else {
                Err(CalendarError::File {
                    file: file.display().to_string(),
                    reason: "a calendar's file name is letters, digits, - and _ (NAME.toml)".into(),
                })
            };
            match parsed {
                Ok(cal) => {
                    if old.calendars.get(&name).is_none_or(|o| **o != cal) {
                        let years: Vec<i32> = cal.years.keys().copied().collect();
                        tracing::info!(calendar = %name, file = %file.display(), years = ?years, "calendar loaded");
                    }
                    next.calendars.insert(name, Arc::new(cal));
                }
                Err(e) => {
                    let kept = old.calendars.get(&name).cloned();
                    tracing::error!(calendar = %name, error = %e, kept_last_good = kept.is_some(), "calendar file refused");
                    if let Some(kept) = kept {
                        next.calendars.insert(name.clone(), kept);
                    }
                    next.failures.insert(name, e.to_string());
                }
            }
        }
        let names: BTreeSet<&String> = old.calendars.keys().chain(next.calendars.keys()).collect();
        let changed = names
            .into_iter()
            .filter(|n| old.calendars.get(*n).map(|c| &c.years) != next.calendars.get(*n).map(|c| &c.years))
            .cloned()
            .collect();
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        changed
    }

    /// Watches the folder and reloads [`DEBOUNCE`] after a `.toml` file changes, until `cancel`;
    /// `changed` is called with the names of the calendars whose days changed. A missing folder
    /// is not watched (create it and restart to add calendars).
    pub fn watch(
        self: &Arc<Self>,
        cancel: CancellationToken,
        changed: impl Fn(Vec<String>) + Send + Sync + 'static,
    ) -> Result<tokio::task::JoinHandle<()>, CalendarError> {
        let Some(dir) = self.dir.clone().filter(|d| d.is_dir()) else {
            return Ok(tokio::spawn(async {}));
        };
        let (this, changed, shown) = (self.clone(), Arc::new(changed), dir.display().to_string());
        watch_folder(&dir, &["toml"], cancel, move || {
            let (this, changed, shown) = (this.clone(), changed.clone(), shown.clone());
            async move {
                tracing::info!(dir = %shown, "calendars folder changed, reloading");
                if let Ok(names) = tokio::task::spawn_blocking(move || this.reload()).await
                    && !names.is_empty()
                {
                    changed(names);
                }
            }
        })
        .map_err(|e| CalendarError::Folder { path: dir.display().to_string(), reason: e.to_string() })
    }

    /// The calendar in force under `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Calendar>> {
        self.current().calendars.get(name).cloned()
    }

    /// Every calendar file and its state, by name.
    pub fn statuses(&self) -> Vec<CalendarStatus> {
        let snap = self.current();
        let names: BTreeSet<&String> = snap.calendars.keys().chain(snap.failures.keys()).collect();
        names
            .into_iter()
            .map(|n| CalendarStatus {
                name: n.clone(),
                calendar: snap.calendars.get(n).cloned(),
                error: snap.failures.get(n).cloned(),
            })
            .collect()
    }

    /// Checks a job's calendar rule given through the API: well formed and loaded.
    pub fn check(&self, raw: &str) -> Result<CalendarRule, CalendarError> {
        let rule = CalendarRule::parse(raw)?;
        if self.get(&rule.name).is_none() {
            let snap = self.current();
            let known = snap.calendars.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(CalendarError::Unknown {
                name: rule.name,
                known: if known.is_empty() { "none".into() } else { known },
            });
        }
        Ok(rule)
    }

    /// What `rule`'s calendar says of `date`; Monday to Friday when the calendar is not loaded
    /// (its file was removed after the job named it).
    pub fn day(&self, rule: &CalendarRule, date: NaiveDate) -> DayInfo {
        day_in(self.get(&rule.name).as_deref(), date)
    }

    /// Whether `rule` admits the local date of `t` in `tz`. A date its calendar does not cover
    /// is judged Monday to Friday, and warned about once per calendar and year.
    pub fn admits(&self, rule: &CalendarRule, t: Timestamp, tz: Tz) -> bool {
        self.admits_in(rule, self.get(&rule.name).as_deref(), t, tz)
    }

    /// [`Calendars::admits`] with `rule`'s calendar looked up already (`None`: not loaded).
    fn admits_in(&self, rule: &CalendarRule, calendar: Option<&Calendar>, t: Timestamp, tz: Tz) -> bool {
        let date = utc_to_local(t, tz).date();
        let info = day_in(calendar, date);
        if !info.covered {
            self.warn_fallback(rule, date.year());
        }
        info.working == (rule.days == Days::Work)
    }

    fn warn_fallback(&self, rule: &CalendarRule, year: i32) {
        let first = self.warned.lock().unwrap_or_else(|p| p.into_inner()).insert((rule.name.clone(), year));
        if first {
            tracing::warn!(
                calendar = %rule.name,
                year,
                "{}",
                fallback_note(&rule.name, year, self.get(&rule.name).is_some())
            );
        }
    }

    /// Why a job's fire time at `t` was judged on Monday to Friday, if it was: its calendar does
    /// not cover that year, or is not loaded. Shown on the job (`calendar_note`).
    pub fn note(&self, rule: &CalendarRule, t: Timestamp, tz: Tz) -> Option<String> {
        let date = utc_to_local(t, tz).date();
        let calendar = self.get(&rule.name);
        (!day_in(calendar.as_deref(), date).covered).then(|| fallback_note(&rule.name, date.year(), calendar.is_some()))
    }

    /// `job`'s next fire time ([`Calendars::next_fire`] with its trigger, its calendar and
    /// [`Job::zone`] on a node in `node_tz`), moved by its jitter ([`RunPolicy::jitter_offset`]:
    /// `prev`, a stored time, is its rule's time plus less than one gap of the rule).
    ///
    /// [`RunPolicy::jitter_offset`]: crate::model::RunPolicy::jitter_offset
    pub fn next_for_job(&self, job: &Job, node_tz: Tz, prev: Option<Timestamp>, now: Timestamp) -> Option<Timestamp> {
        let t = self.next_fire(job.calendar.as_ref(), &job.trigger, job.zone(node_tz), prev, now)?;
        Some(t + job.policy.jitter_offset(&job.id, t))
    }

    /// The trigger's next fire time (as [`Trigger::next_fire`]) on a day `rule` admits; the
    /// trigger's own when there is no rule. Days the rule refuses are skipped whole.
    pub fn next_fire(
        &self,
        rule: Option<&CalendarRule>,
        trigger: &Trigger,
        tz: Tz,
        prev: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let mut t = trigger.next_fire(prev, now)?;
        let Some(rule) = rule else { return Some(t) };
        let calendar = self.get(&rule.name);
        for _ in 0..MAX_SKIPPED_DAYS {
            if self.admits_in(rule, calendar.as_deref(), t, tz) {
                return Some(t);
            }
            // The first instant of the next local day (a midnight in a DST gap moves forward).
            let next_day = utc_to_local(t, tz).date().succ_opt()?.and_hms_opt(0, 0, 0)?;
            let start = local_to_utc(tz, next_day, Some(t))?;
            t = trigger.next_fire(Some(start - chrono::Duration::microseconds(1)), now)?;
        }
        None
    }
}

/// What `calendar` (`None`: not loaded) says of `date`: Monday to Friday when it is not loaded.
fn day_in(calendar: Option<&Calendar>, date: NaiveDate) -> DayInfo {
    match calendar {
        Some(cal) => cal.day(date),
        None => DayInfo { working: monday_to_friday(date), covered: false },
    }
}

/// The note and warning for a fallback to Monday to Friday.
fn fallback_note(name: &str, year: i32, loaded: bool) -> String {
    if loaded {
        format!(
            "calendar {name} has no data for {year}: Monday to Friday are taken as its working days; add {year} to {name}.toml"
        )
    } else {
        format!("calendar {name} is not loaded: Monday to Friday are taken as its working days")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::TriggerKind;

    const SAMPLE: &str = r#"
name = "cn"
description = "test"
source = "test"
[years.2026]
holidays = ["2026-10-01..2026-10-07"]
workdays = ["2026-09-20", "2026-10-10"]
"#;

    fn cals() -> Calendars {
        Calendars::from_calendars([Calendar::parse("cn", Path::new("cn.toml"), SAMPLE).unwrap()])
    }

    fn at(s: &str) -> Timestamp {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap().and_utc()
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn working_days_are_weekdays_minus_holidays_plus_workdays() {
        let c = cals().get("cn").unwrap();
        assert!(c.day(d("2026-09-30")).working); // Wednesday
        assert!(!c.day(d("2026-10-01")).working); // holiday Thursday
        assert!(c.day(d("2026-10-10")).working); // adjusted Saturday
        assert!(!c.day(d("2026-10-11")).working); // Sunday
        assert!(c.day(d("2026-10-12")).covered);
        let past = c.day(d("2027-01-01"));
        assert!(past.working && !past.covered); // a Friday, by the fallback
    }

    #[test]
    fn next_fire_skips_refused_days_whole() {
        let cals = cals();
        let rule = CalendarRule::parse("cn").unwrap();
        let every_second =
            Trigger::parse(TriggerKind::Cron, "* * * * * *", Tz::UTC, at("2026-01-01 00:00:00")).unwrap();
        // Every second of the golden week is refused: the next is the first second of 10-08.
        let next = cals.next_fire(Some(&rule), &every_second, Tz::UTC, None, at("2026-09-30 23:59:59"));
        assert_eq!(next, Some(at("2026-09-30 23:59:59")));
        let next = cals.next_fire(
            Some(&rule),
            &every_second,
            Tz::UTC,
            Some(at("2026-09-30 23:59:59")),
            at("2026-09-30 23:59:59"),
        );
        assert_eq!(next, Some(at("2026-10-08 00:00:00")));
        let nine = Trigger::parse(TriggerKind::Cron, "0 0 9 * * *", Tz::UTC, at("2026-01-01 00:00:00")).unwrap();
        let next =
            cals.next_fire(Some(&rule), &nine, Tz::UTC, Some(at("2026-10-08 09:00:00")), at("2026-10-08 09:00:00"));
        assert_eq!(next, Some(at("2026-10-09 09:00:00")));
        let next =
            cals.next_fire(Some(&rule), &nine, Tz::UTC, Some(at("2026-10-09 09:00:00")), at("2026-10-09 09:00:00"));
        assert_eq!(next, Some(at("2026-10-10 09:00:00")), "the adjusted Saturday fires");
        let rest = CalendarRule::parse("cn:rest").unwrap();
        let next =
            cals.next_fire(Some(&rest), &nine, Tz::UTC, Some(at("2026-09-29 09:00:00")), at("2026-09-29 09:00:00"));
        assert_eq!(next, Some(at("2026-10-01 09:00:00")), "the first rest day");
    }

    #[test]
    fn days_are_local_to_the_jobs_zone() {
        let cals = cals();
        let rule = CalendarRule::parse("cn").unwrap();
        let shanghai: Tz = "Asia/Shanghai".parse().unwrap();
        // 2026-09-30 20:00 UTC is 10-01 04:00 in Shanghai: a holiday there.
        let hourly = Trigger::parse(TriggerKind::Cron, "0 0 * * * *", shanghai, at("2026-01-01 00:00:00")).unwrap();
        let next =
            cals.next_fire(Some(&rule), &hourly, shanghai, Some(at("2026-09-30 15:30:00")), at("2026-09-30 15:30:00"));
        assert_eq!(next, Some(at("2026-10-07 16:00:00")), "10-08 00:00 in Shanghai");
    }

    #[test]
    fn a_rule_that_never_fires_gives_none() {
        let cals = Calendars::from_calendars([Calendar::parse("x", Path::new("x.toml"), "").unwrap()]);
        let sundays = Trigger::parse(TriggerKind::Cron, "0 0 9 * * sun", Tz::UTC, at("2026-01-01 00:00:00")).unwrap();
        let rule = CalendarRule::parse("x").unwrap();
        assert_eq!(cals.next_fire(Some(&rule), &sundays, Tz::UTC, None, at("2026-01-01 00:00:00")), None);
    }

    #[test]
    fn rules_and_files_are_checked() {
        assert_eq!(CalendarRule::parse("cn:rest").unwrap().to_string(), "cn:rest");
        assert_eq!(CalendarRule::parse("cn:work").unwrap().to_string(), "cn");
        for bad in ["", "cn:holiday", "../x", "c n"] {
            assert!(CalendarRule::parse(bad).is_err(), "{bad:?}");
        }
        let f = Path::new("x.toml");
        for bad in [
            "[years.2026]\nholidays = [\"2026-13-01\"]",
            "[years.2026]\nholidays = [\"2027-01-01\"]",
            "[years.2026]\nholidays = [\"2026-01-05..2026-01-01\"]",
            "[years.2026]\nholidays = [\"2026-01-05\"]\nworkdays = [\"2026-01-05\"]",
            "name = \"y\"",
            "colour = 1",
        ] {
            assert!(Calendar::parse("x", f, bad).is_err(), "{bad:?}");
        }
        assert!(matches!(cals().check("us"), Err(CalendarError::Unknown { .. })));
    }

    #[test]
    fn the_shipped_china_calendar_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../calendars/cn.toml");
        let cal = Calendar::parse("cn", &path, &std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(cal.years.keys().next(), Some(&2020));
        assert!(!cal.day(d("2025-10-01")).working, "National Day");
        assert!(cal.day(d("2025-09-28")).working, "the Sunday made a working day");
        assert!(!cal.day(d("2026-02-16")).working, "Spring Festival");
    }
}
