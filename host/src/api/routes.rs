//! RuQi's routes as data: each route's names (the seed's and the 1.x alias), its parameters and
//! the shape of its `data`. One table serves the parameter check of every request and the
//! OpenAPI document (`openapi.rs`), so the two cannot disagree.

/// A RuQi route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `job_add` / `add_job`
    JobAdd,
    /// `job_add_many` (extension): add a list of jobs at once.
    JobAddMany,
    /// `job_modify` / `modify_job`
    JobModify,
    /// `job_remove` / `remove_job`
    JobRemove,
    /// `job_pause` / `pause_job`
    JobPause,
    /// `job_resume` / `resume_job`
    JobResume,
    /// `job_show` / `get_job`
    JobShow,
    /// `job_list` / `get_jobs`
    JobList,
    /// `job_history_list` / `get_history`
    HistoryList,
    /// `job_history_clear`
    HistoryClear,
    /// `scheduler_status` / `status`
    Status,
    /// `scheduler_wakeup` / `wakeup`
    Wakeup,
    /// `job_next_fire_times` (extension): the next fire times of a trigger and rule.
    NextFireTimes,
    /// `plugin_list` (extension): the plugins of this node.
    PluginList,
    /// `scheduler_nodes` (extension): the nodes seen recently on this store.
    Nodes,
    /// `calendar_list` (extension): the business calendars this node loaded.
    CalendarList,
    /// `calendar_days` (extension): a calendar's working and rest days in one month.
    CalendarDays,
    /// `job_run` (extension): start a run of a job now.
    JobRun,
    /// `run_list` (extension): runs in progress anywhere, and recent ones.
    RunList,
    /// `run_show` (extension): one run with its whole output.
    RunShow,
    /// `run_output` (extension): a run's output from a byte offset on (a live tail).
    RunOutput,
    /// `run_kill` (extension): stop a running run, on whichever node runs it.
    RunKill,
    /// `job_backfill` (extension): run (or list) the fire times of a past window.
    JobBackfill,
    /// `alert_list` (extension): the alerts queued and sent, newest first.
    AlertList,
    /// `audit_list` (extension): the changes made through the API, newest first.
    AuditList,
    /// `job_versions` (extension): the versions of a job's definition.
    JobVersions,
    /// `job_rollback` (extension): make an earlier version of a job's definition current.
    JobRollback,
    /// `job_export` (extension): every job's definition.
    JobExport,
    /// `stats_overview` (extension): what the dashboard's overview draws.
    StatsOverview,
    /// `job_strip` (extension): a job's last runs.
    JobStrip,
}

/// What a parameter holds (query strings carry text; a JSON body may carry the JSON type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text.
    Text,
    /// A non-negative integer (JSON number or decimal digits).
    Count,
    /// `true`/`false`/`1`/`0`.
    Flag,
    /// One of the given words.
    OneOf(&'static [&'static str]),
    /// A JSON list of objects, each a job's job_add parameters (in a query: that list as JSON text).
    Jobs,
}

/// One parameter of a route.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// What it means.
    pub doc: &'static str,
}

/// What `data` holds in a successful answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    /// No `data`: `{"stat": "OK"}`.
    None,
    /// `{"total", "list": [job…]}` (`job_list`).
    Jobs,
    /// One job (`job_show`).
    Job,
    /// `{"total", "list": [history row…]}`.
    History,
    /// `{"deleted"}`.
    Cleared,
    /// The scheduler's last pass.
    Status,
    /// `{"rule", "list": [time…]}`.
    FireTimes,
    /// `{"list": [plugin…]}`.
    Plugins,
    /// `{"total", "list": [node…]}`.
    Nodes,
    /// `{"total", "list": [calendar…]}`.
    Calendars,
    /// `{"calendar", "month", "covered", "workdays", "rest_days"}`.
    CalendarDays,
    /// `{"run_id", "job_id", "node"}`: a run started.
    RunStarted,
    /// `{"total", "list": [run…]}`.
    Runs,
    /// One run with its `output`.
    Run,
    /// `{"run_id", "state", "offset", "next_offset", "output"}`.
    RunOutput,
    /// `{"run_id", "node", "state", "kill_requested"}`.
    RunKill,
    /// `{"job_id", "count", "dry_run", "list": [{"fire_time", "run_id"}…]}`.
    Backfill,
    /// `{"total", "list": [alert…]}`.
    Alerts,
    /// `{"total", "list": [audit entry…]}`.
    Audit,
    /// `{"job_id", "total", "list": [version…]}`.
    Versions,
    /// `{"total", "list": [definition…]}`.
    Definitions,
    /// `{"minutes", "hours", "slowest", "failing"}`.
    Stats,
    /// `{"job_id", "total", "list": [run…]}`.
    Strip,
    /// `{"count", "added": [job id…], "refused": [{"index", "job_id", "stat", "reason"}…]}`.
    Added,
}

/// A route's description.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The route.
    pub route: Route,
    /// The seed's name first, then the 1.x alias (same behaviour).
    pub names: &'static [&'static str],
    /// One line on what it does.
    pub summary: &'static str,
    /// Parameters that must be given.
    pub required: &'static [Param],
    /// Parameters that may be given.
    pub optional: &'static [Param],
    /// Its `data`.
    pub data: Data,
    /// Whether it changes nothing (a read-only token may call it).
    pub read_only: bool,
}

const fn text(name: &'static str, doc: &'static str) -> Param {
    Param { name, kind: Kind::Text, doc }
}

const JOB_ID: Param = text("job_id", "the job's id (unique)");
const TIMEZONE: Param = text(
    "timezone",
    "extension: the IANA zone the rule is read in and the job's times are printed in (default: the node's --timezone; job_modify without it keeps the job's zone)",
);
const CALENDAR: Param = text(
    "calendar",
    "extension: fire only on a business calendar's working days (`cn`) or rest days (`cn:rest`), in the job's zone; `none` removes it (job_modify without it keeps the job's calendar); not for date jobs",
);
const TIMEOUT: Param = Param {
    name: "timeout",
    kind: Kind::Count,
    doc: "extension: seconds a run may take; then it is stopped as by run_kill and recorded as `timeout` (0: no limit; job_modify without it keeps the job's)",
};
const KILL_GRACE: Param = Param {
    name: "kill_grace",
    kind: Kind::Count,
    doc: "extension: seconds a stopped run's command gets between SIGTERM and SIGKILL (default: the node's --kill-grace, 5; job_modify without it keeps the job's)",
};
const RETRIES: [Param; 4] = [
    Param {
        name: "retries",
        kind: Kind::Count,
        doc: "extension: times (0-32) a run ending `failed` or `timeout` is tried again, on any node (job_modify without it keeps the job's)",
    },
    Param { name: "retry_delay", kind: Kind::Count, doc: "extension: seconds before the first retry (10)" },
    text("retry_backoff", "extension: factor (1-100, decimals allowed) each further retry's delay grows by (2)"),
    Param {
        name: "retry_max_delay",
        kind: Kind::Count,
        doc: "extension: longest delay before a retry, seconds (3600)",
    },
];
const MISFIRE: [Param; 2] = [
    Param {
        name: "misfire",
        kind: Kind::OneOf(&["skip", "once", "all"]),
        doc: "extension: fire times found later than the misfire grace (downtime): skip (default), run the latest once, or run all in order",
    },
    Param {
        name: "misfire_grace",
        kind: Kind::Count,
        doc: "extension: seconds a run may start late (default: the node's --misfire-grace, 30)",
    },
];
/// The overlap policies, in the API's words.
const OVERLAPS: &[&str] = &crate::model::Overlap::NAMES;
const OVERLAP: Param = Param {
    name: "overlap",
    kind: Kind::OneOf(OVERLAPS),
    doc: "extension: when a fire time comes while a run of the job goes on (on any node): skip it (default), buffer_one (run the latest once the run ends), buffer_all (run each, in order), cancel_other (kill the running run, then start), allow (run beside it)",
};
const JITTER: Param = Param {
    name: "jitter",
    kind: Kind::Count,
    doc: "extension: each fire time is moved later by an offset below this many seconds, drawn from the job and the fire time (the same on every node); less than the rule's gap (0: none)",
};
/// The follow-up parameters of job_add and job_modify (job_modify without one keeps the job's).
const FOLLOW: [Param; 8] = [
    text(
        "alert",
        "extension: alert targets, comma-separated (or a JSON list): cmds served by plugins, e.g. `dingtalk:ops` (the notifier), `http://host/hook` (a JSON POST), `/topic` (a Baichuan message); `none` removes them (default: the node's --alert)",
    ),
    text(
        "alert_on",
        "extension: what is alerted, comma-separated: failure, timeout, killed, recovery, missed, deadline, paused (default: failure,timeout,recovery,deadline,paused)",
    ),
    Param {
        name: "alert_quiet",
        kind: Kind::Count,
        doc: "extension: at most one alert of a kind per this many seconds; the rest are counted (default 600; 0: every one)",
    },
    text(
        "on_success",
        "extension: job ids, comma-separated (or a JSON list), that get a run (trigger=chain) when a run of this job succeeds; its run_id and output reach them as params; `none` removes them",
    ),
    text(
        "on_failure",
        "extension: job ids that get a run when a run of this job fails or times out (after its retries)",
    ),
    Param {
        name: "pause_after_failures",
        kind: Kind::Count,
        doc: "extension: pause the job after this many failed or timed-out runs in a row, with a `paused` alert (0: never)",
    },
    Param {
        name: "resume_after",
        kind: Kind::Count,
        doc: "extension: a job its breaker paused gets a probe run after this many seconds; success resumes it, failure doubles the wait (up to a day; 0: no probe)",
    },
    Param {
        name: "deadline",
        kind: Kind::Count,
        doc: "extension: seconds after each fire time by which a run must have ended successfully, else a `deadline` alert (0: none)",
    },
];
const REPLACE: Param = Param {
    name: "replace",
    kind: Kind::Flag,
    doc: "extension: 1: every extension parameter not given takes its default instead of keeping the job's (what `ruqi apply` and job_rollback send)",
};
const RUN_ID: Param = text("run_id", "the run's id (run_list, job_run, history's run_id)");
const JOB: [Param; 5] = [
    Param { name: "job_trigger", kind: Kind::OneOf(&["cron", "interval", "date"]), doc: "how the job fires" },
    JOB_ID,
    text("job_name", "a category; null gives RuQi's default (run_cmd, run_http, run_mq)"),
    text(
        "cmd",
        "what runs: `bash x.sh`, `python x.py a b`, `http://host/path#{json}`, `/topic#{json}`, or a plugin's prefix",
    ),
    text(
        "rule",
        "cron: 6 fields, seconds first (`0 20 2 * * *`); interval: `10s`, `5m`, `2h`, `1d`; date: `YYYY-mm-dd HH:MM:SS[.ffffff]` or `now`",
    ),
];
const DISPLAY: Param = Param {
    name: "display",
    kind: Kind::OneOf(&["table", "text"]),
    doc: "table: JSON (default); text: a plain-text table",
};
const PAGE_INDEX: Param = Param { name: "page_index", kind: Kind::Count, doc: "1-based page (0 acts as 1)" };
const PAGE_SIZE: Param =
    Param { name: "page_size", kind: Kind::Count, doc: "rows per page, default 15; 0 = every row" };

/// Every route, in the order the document lists them.
pub const ROUTES: [Spec; 30] = [
    Spec {
        route: Route::JobAdd,
        names: &["job_add", "add_job"],
        summary: "Add a job",
        required: &JOB,
        optional: &[
            TIMEZONE, CALENDAR, TIMEOUT, KILL_GRACE, RETRIES[0], RETRIES[1], RETRIES[2], RETRIES[3], MISFIRE[0],
            MISFIRE[1], JITTER, OVERLAP, FOLLOW[0], FOLLOW[1], FOLLOW[2], FOLLOW[3], FOLLOW[4], FOLLOW[5], FOLLOW[6],
            FOLLOW[7],
        ],
        data: Data::None,
        read_only: false,
    },
    Spec {
        route: Route::JobAddMany,
        names: &["job_add_many"],
        summary: "Extension: add a list of jobs in one request and one transaction, each checked as job_add checks it; \
                  the answer lists the ids added and, for each job refused, its place in the list and why. With \
                  atomic=1 one refusal adds none (the answer is that refusal). The body may be the list itself",
        required: &[Param {
            name: "jobs",
            kind: Kind::Jobs,
            doc: "the jobs: a JSON list of objects of job_add parameters (at most 100,000)",
        }],
        optional: &[Param {
            name: "atomic",
            kind: Kind::Flag,
            doc: "1: all or nothing (default 0: the jobs that pass are added)",
        }],
        data: Data::Added,
        read_only: false,
    },
    Spec {
        route: Route::JobModify,
        names: &["job_modify", "modify_job"],
        summary: "Replace a job's trigger, rule, cmd and name (its next run time is recomputed; a paused job stays paused)",
        required: &JOB,
        optional: &[
            TIMEZONE, CALENDAR, TIMEOUT, KILL_GRACE, RETRIES[0], RETRIES[1], RETRIES[2], RETRIES[3], MISFIRE[0],
            MISFIRE[1], JITTER, OVERLAP, FOLLOW[0], FOLLOW[1], FOLLOW[2], FOLLOW[3], FOLLOW[4], FOLLOW[5], FOLLOW[6],
            FOLLOW[7], REPLACE,
        ],
        data: Data::None,
        read_only: false,
    },
    Spec {
        route: Route::JobRemove,
        names: &["job_remove", "remove_job"],
        summary: "Remove a job (its history stays); a job others chain to only with force=1",
        required: &[JOB_ID],
        optional: &[Param {
            name: "force",
            kind: Kind::Flag,
            doc: "extension: remove it even when other jobs chain to it (on_success, on_failure); their chains drop it",
        }],
        data: Data::None,
        read_only: false,
    },
    Spec {
        route: Route::JobPause,
        names: &["job_pause", "pause_job"],
        summary: "Pause a job",
        required: &[JOB_ID],
        optional: &[],
        data: Data::None,
        read_only: false,
    },
    Spec {
        route: Route::JobResume,
        names: &["job_resume", "resume_job"],
        summary: "Resume a job from now on (a trigger that will never fire again removes it)",
        required: &[JOB_ID],
        optional: &[],
        data: Data::None,
        read_only: false,
    },
    Spec {
        route: Route::JobShow,
        names: &["job_show", "get_job"],
        summary: "One job",
        required: &[JOB_ID],
        optional: &[],
        data: Data::Job,
        read_only: true,
    },
    Spec {
        route: Route::JobList,
        names: &["job_list", "get_jobs"],
        summary: "Jobs, newest first; every job unless page_index is given",
        required: &[],
        optional: &[text("job_id", "only this id"), text("job_name", "only this name"), DISPLAY, PAGE_INDEX, PAGE_SIZE],
        data: Data::Jobs,
        read_only: true,
    },
    Spec {
        route: Route::HistoryList,
        names: &["job_history_list", "get_history"],
        summary: "Run history, newest first, 15 rows a page by default",
        required: &[],
        optional: &[
            text("job_id", "only this job"),
            text("job_name", "only this name"),
            Param { name: "is_success", kind: Kind::Flag, doc: "only successful (true/1) or failed (false/0) runs" },
            text("scheduler_name", "only runs of this node (host:port:pid)"),
            DISPLAY,
            PAGE_INDEX,
            PAGE_SIZE,
        ],
        data: Data::History,
        read_only: true,
    },
    Spec {
        route: Route::HistoryClear,
        names: &["job_history_clear"],
        summary: "Delete old history rows",
        required: &[],
        optional: &[
            text("job_id", "only this job"),
            text("job_name", "only this name"),
            Param { name: "retention_day", kind: Kind::Count, doc: "keep rows younger than this many days (180)" },
            Param { name: "limit_num", kind: Kind::Count, doc: "delete at most this many rows (1000)" },
        ],
        data: Data::Cleared,
        read_only: false,
    },
    Spec {
        route: Route::Status,
        names: &["scheduler_status", "status"],
        summary: "This node's scheduler: last check, next wake-up, wait",
        required: &[],
        optional: &[],
        data: Data::Status,
        read_only: true,
    },
    Spec {
        route: Route::Wakeup,
        names: &["scheduler_wakeup", "wakeup"],
        summary: "Make this node's scheduler look at the store now",
        required: &[],
        optional: &[],
        data: Data::None,
        read_only: false,
    },
    Spec {
        route: Route::NextFireTimes,
        names: &["job_next_fire_times"],
        summary: "Extension: the normalised rule and next fire times of a trigger and rule, checked as job_add checks them",
        required: &[JOB[0], JOB[4]],
        optional: &[
            Param { name: "count", kind: Kind::Count, doc: "how many fire times (5, at most 50)" },
            TIMEZONE,
            CALENDAR,
        ],
        data: Data::FireTimes,
        read_only: true,
    },
    Spec {
        route: Route::PluginList,
        names: &["plugin_list"],
        summary: "Extension: this node's plugins, their prefixes, grants and limits, and files that failed to load",
        required: &[],
        optional: &[],
        data: Data::Plugins,
        read_only: true,
    },
    Spec {
        route: Route::Nodes,
        names: &["scheduler_nodes"],
        summary: "Extension: the nodes that used this store recently (up, stopped, or silent), this one included",
        required: &[],
        optional: &[Param {
            name: "within_minutes",
            kind: Kind::Count,
            doc: "nodes seen in the last this many minutes (10, at most 10080)",
        }],
        data: Data::Nodes,
        read_only: true,
    },
    Spec {
        route: Route::CalendarList,
        names: &["calendar_list"],
        summary: "Extension: the business calendars of this node (calendars/NAME.toml), the years each covers, and files that failed to parse",
        required: &[],
        optional: &[],
        data: Data::Calendars,
        read_only: true,
    },
    Spec {
        route: Route::CalendarDays,
        names: &["calendar_days"],
        summary: "Extension: a calendar's working days and rest days in one month",
        required: &[text("calendar", "the calendar's name (e.g. cn)"), text("month", "YYYY-MM")],
        optional: &[],
        data: Data::CalendarDays,
        read_only: true,
    },
    Spec {
        route: Route::JobRun,
        names: &["job_run"],
        summary: "Extension: start one run of a job now on this node, even a paused job; answers its run_id. While a run of the job goes on (on any node), the job's overlap policy decides: skip refuses, buffer_one/buffer_all wait (the run shows as waiting), cancel_other kills the running run first, allow runs beside it",
        required: &[JOB_ID],
        optional: &[
            Param {
                name: "overlap",
                kind: Kind::OneOf(OVERLAPS),
                doc: "the overlap policy for this run (default: the job's)",
            },
            text(
                "params",
                "text handed to the plugin with this run (at most 65536 bytes): shell-bridge appends it as arguments, http-post merges a JSON object into the body, baichuan into the message",
            ),
        ],
        data: Data::RunStarted,
        read_only: false,
    },
    Spec {
        route: Route::RunList,
        names: &["run_list"],
        summary: "Extension: runs in progress on any node and recent ones, most recently started first, 15 a page by default",
        required: &[],
        optional: &[
            text("job_id", "only this job's runs"),
            Param {
                name: "state",
                kind: Kind::OneOf(&["waiting", "running", "ended"]),
                doc: "only waiting (for the run of their job to end), running or ended runs",
            },
            PAGE_INDEX,
            PAGE_SIZE,
        ],
        data: Data::Runs,
        read_only: true,
    },
    Spec {
        route: Route::RunShow,
        names: &["run_show"],
        summary: "Extension: one run, with its whole output (as much as --run-output-limit keeps)",
        required: &[RUN_ID],
        optional: &[],
        data: Data::Run,
        read_only: true,
    },
    Spec {
        route: Route::RunOutput,
        names: &["run_output"],
        summary: "Extension: a run's output from byte `offset` on, also while it runs (call again from next_offset to follow it)",
        required: &[RUN_ID],
        optional: &[Param { name: "offset", kind: Kind::Count, doc: "the first byte wanted (0)" }],
        data: Data::RunOutput,
        read_only: true,
    },
    Spec {
        route: Route::RunKill,
        names: &["run_kill"],
        summary: "Extension: stop a running run, whichever node runs it (within 2 s): its commands get SIGTERM, then SIGKILL after the kill grace; recorded as `killed`",
        required: &[RUN_ID],
        optional: &[],
        data: Data::RunKill,
        read_only: false,
    },
    Spec {
        route: Route::JobBackfill,
        names: &["job_backfill"],
        summary: "Extension: run every fire time of a cron or interval job's rule in a window (its zone and calendar), one after another, marked trigger=backfill, on this node; answers the fire times and their run ids. At most 10,000 fire times",
        required: &[
            JOB_ID,
            text("start", "the window's first instant, YYYY-mm-dd HH:MM:SS[.ffffff] in the job's zone"),
            text("end", "the window's last instant (included), same format"),
        ],
        optional: &[
            Param { name: "dry_run", kind: Kind::Flag, doc: "1: list the fire times, run nothing" },
            Param {
                name: "overlap",
                kind: Kind::OneOf(&["buffer_all", "allow"]),
                doc: "buffer_all (default): one after another, each waiting for the job's run before it; allow: all at once (as this node's slots free)",
            },
        ],
        data: Data::Backfill,
        read_only: false,
    },
    Spec {
        route: Route::AlertList,
        names: &["alert_list"],
        summary: "Extension: the alerts queued and sent (one row per alert and target), newest first, 15 a page by default",
        required: &[],
        optional: &[
            text("job_id", "only this job's alerts"),
            Param { name: "kind", kind: Kind::OneOf(&crate::model::AlertKind::NAMES), doc: "only alerts of this kind" },
            Param {
                name: "state",
                kind: Kind::OneOf(&["pending", "sent", "failed"]),
                doc: "only alerts waiting for a (next) try, sent, or given up",
            },
            PAGE_INDEX,
            PAGE_SIZE,
        ],
        data: Data::Alerts,
        read_only: true,
    },
    Spec {
        route: Route::AuditList,
        names: &["audit_list"],
        summary: "Extension: the changes made through the API (add, modify, remove, pause, resume, run, kill, backfill, history clear, rollback), newest first, with the caller (its token's name), its address, the node, and for a job the fields before and after; 15 a page by default",
        required: &[],
        optional: &[
            text("job_id", "only changes of this job"),
            text("caller", "only changes by this caller (a token's name)"),
            text("since", "only changes at or after this time, YYYY-mm-dd HH:MM:SS in the node's zone"),
            text("until", "only changes before this time"),
            PAGE_INDEX,
            PAGE_SIZE,
        ],
        data: Data::Audit,
        read_only: true,
    },
    Spec {
        route: Route::JobVersions,
        names: &["job_versions"],
        summary: "Extension: the versions of a job's definition (each job_add, job_modify and job_rollback makes one), newest first",
        required: &[JOB_ID],
        optional: &[],
        data: Data::Versions,
        read_only: true,
    },
    Spec {
        route: Route::JobRollback,
        names: &["job_rollback"],
        summary: "Extension: make an earlier version of a job's definition current again (a new version; a removed job is added back)",
        required: &[JOB_ID, Param { name: "version", kind: Kind::Count, doc: "the version (job_versions)" }],
        optional: &[],
        data: Data::None,
        read_only: false,
    },
    Spec {
        route: Route::JobExport,
        names: &["job_export"],
        summary: "Extension: every job's definition (its job_add parameters, defaults left out; paused: true for a paused job), oldest first: what `ruqi export` writes and `ruqi apply` reads",
        required: &[],
        optional: &[],
        data: Data::Definitions,
        read_only: true,
    },
    Spec {
        route: Route::StatsOverview,
        names: &["stats_overview"],
        summary: "Extension: runs per minute (last hour) and per hour (last 7 days) by outcome with fire-time lateness p50/p99, and the slowest and most failing jobs since yesterday (UTC days), from rollups kept with the runs (8 days)",
        required: &[],
        optional: &[],
        data: Data::Stats,
        read_only: true,
    },
    Spec {
        route: Route::JobStrip,
        names: &["job_strip"],
        summary: "Extension: a job's last runs, newest first (outcome, duration, when): its run strip",
        required: &[JOB_ID],
        optional: &[Param { name: "count", kind: Kind::Count, doc: "how many, 1 to 200 (50)" }],
        data: Data::Strip,
        read_only: true,
    },
];

impl Route {
    /// The route for a path segment after `/ruqi/`.
    pub fn from_name(name: &str) -> Option<Self> {
        ROUTES.iter().find(|s| s.names.contains(&name)).map(|s| s.route)
    }

    /// Its description.
    pub fn spec(self) -> &'static Spec {
        ROUTES.iter().find(|s| s.route == self).expect("every route is in ROUTES")
    }

    /// Whether the route changes nothing (what a read-only token may call).
    pub fn is_read_only(self) -> bool {
        self.spec().read_only
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_one_spec_and_its_names_resolve() {
        for spec in &ROUTES {
            assert_eq!(spec.route.spec().names, spec.names);
            for name in spec.names {
                assert_eq!(Route::from_name(name), Some(spec.route), "{name}");
            }
        }
        assert_eq!(Route::from_name("JOB_ADD"), None);
        assert!(Route::JobShow.is_read_only() && !Route::Wakeup.is_read_only());
    }
}
