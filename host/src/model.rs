//! The domain types shared by scheduler, dispatcher, store and api: jobs, runs, outcomes, history.
//!
//! No IO and no serialization here; each boundary converts to and from these types.

use std::fmt;

use crate::clock::Timestamp;
use crate::trigger::Trigger;

/// Longest job id the store accepts (the seed's `ruqi_jobs.id varchar(255)`).
pub const MAX_JOB_ID_LEN: usize = 255;
/// Longest job name the store accepts (the seed's `ruqi_jobs.job_name varchar(64)`).
pub const MAX_JOB_NAME_LEN: usize = 64;
/// Longest output kept in a history row (the seed's `cmd_output varchar(4096)`), in characters.
pub const MAX_OUTPUT_CHARS: usize = 4096;

/// A validated job id: non-empty, at most [`MAX_JOB_ID_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(String);

impl JobId {
    /// Validates a raw id.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("job_id must not be empty".into());
        }
        if raw.chars().count() > MAX_JOB_ID_LEN {
            return Err(format!("job_id is longer than {MAX_JOB_ID_LEN} characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job: what to run (`cmd`), when (`trigger`), and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Unique id.
    pub id: JobId,
    /// Free-form category name.
    pub name: String,
    /// The command a plugin executes.
    pub cmd: String,
    /// When it fires.
    pub trigger: Trigger,
    /// The next fire time; `None` means paused.
    pub next_run_time: Option<Timestamp>,
    /// When the job was added.
    pub created: Timestamp,
    /// When the job was last changed.
    pub updated: Timestamp,
    /// The job's own time zone (`timezone` of job_add); `None`: the node's `--timezone`.
    pub timezone: Option<chrono_tz::Tz>,
    /// The job's calendar (`calendar` of job_add): it fires only on the days it admits.
    pub calendar: Option<crate::calendar::CalendarRule>,
    /// The zone of the node that added it, which a job without its own `timezone` keeps (as a
    /// RuQi 1.x job kept its scheduler's zone in its pickled trigger), so nodes in different
    /// zones agree on its fire times. `None` (rows written before it was kept): each node's.
    pub home_zone: Option<chrono_tz::Tz>,
}

impl Job {
    /// The zone the job's rules are read in and its times printed in.
    pub fn zone(&self, node: chrono_tz::Tz) -> chrono_tz::Tz {
        self.timezone.or(self.home_zone).unwrap_or(node)
    }
}

/// A run the scheduler claimed and hands to the dispatcher.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    /// The job as it was when claimed.
    pub job: Job,
    /// The fire time this run is for.
    pub fire_time: Timestamp,
    /// The job's revision when claimed; a different one at finish means the API changed it.
    pub revision: i64,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// Whether it succeeded.
    pub success: bool,
    /// Output, already truncated to [`MAX_OUTPUT_CHARS`].
    pub output: String,
    /// Seconds it took.
    pub cost: f64,
}

/// One row of run history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRecord {
    /// Auto-increment id (0 before insertion).
    pub id: i64,
    /// The job's id.
    pub job_id: String,
    /// The job's name at the time of the run.
    pub job_name: String,
    /// The cmd that ran.
    pub cmd: String,
    /// Whether it succeeded.
    pub success: bool,
    /// Output (truncated).
    pub output: String,
    /// Seconds it took.
    pub cost: f64,
    /// The node that ran it, `host:port:pid`.
    pub scheduler_name: String,
    /// When the row was written.
    pub created: Timestamp,
    /// The fire time the run was for; at most one row per (job, fire time).
    pub fire_time: Option<Timestamp>,
}

/// Filters shared by job and history listings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    /// Exact job id.
    pub job_id: Option<String>,
    /// Exact job name.
    pub job_name: Option<String>,
}

/// Filters of the history listing and clearing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    /// Exact job id.
    pub job_id: Option<String>,
    /// Exact job name.
    pub job_name: Option<String>,
    /// Only successful (true) or failed (false) runs.
    pub success: Option<bool>,
    /// Exact node name.
    pub scheduler_name: Option<String>,
}

/// A node as the store last saw it (`scheduler_nodes`): every node writes its row every few
/// seconds while it runs, and marks it stopped when it shuts down cleanly.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSeen {
    /// The node's name (`host:port:pid`, as in history rows).
    pub name: String,
    /// Its RuQi version.
    pub version: String,
    /// When it started.
    pub started: Timestamp,
    /// When it last wrote its row.
    pub seen: Timestamp,
    /// When it shut down cleanly; `None` while it runs (or if it died).
    pub stopped: Option<Timestamp>,
}

/// A page request: `limit` rows after skipping `offset`; `None` means all rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return; `None` for no limit.
    pub limit: Option<u64>,
}

impl Page {
    /// Every row.
    pub const ALL: Page = Page { offset: 0, limit: None };
}

/// Truncates `s` to at most `max` characters, on a character boundary.
pub fn truncate_chars(mut s: String, max: usize) -> String {
    if let Some((idx, _)) = s.char_indices().nth(max) {
        s.truncate(idx);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_id_validation() {
        assert!(JobId::parse("").is_err());
        assert!(JobId::parse(&"x".repeat(255)).is_ok());
        assert!(JobId::parse(&"x".repeat(256)).is_err());
        assert_eq!(JobId::parse("/a/b").unwrap().as_str(), "/a/b");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_chars("héllo".into(), 2), "hé");
        assert_eq!(truncate_chars("abc".into(), 10), "abc");
        assert_eq!(truncate_chars("如期而至".into(), 2), "如期");
    }
}
