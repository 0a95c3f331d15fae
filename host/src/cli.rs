//! The command-line client: `ruqi job …`, `ruqi history …`, `ruqi run …`, `ruqi scheduler …`,
//! `ruqi plugin list` talk to a running server through RuQi's HTTP API (`--server` / `RUQI_SERVER`, `--token`
//! / `RUQI_TOKEN`), print aligned tables (or the API's JSON with `--json`), and exit non-zero
//! with the server's reason when it refuses.

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::api::text;

/// Where the server is and how to talk to it.
#[derive(Debug, Clone, Args)]
pub struct Server {
    /// The server's base URL.
    #[arg(long, global = true, env = "RUQI_SERVER", default_value = "http://127.0.0.1:8585")]
    pub server: String,
    /// A bearer token, when the server has tokens.
    #[arg(long, global = true, env = "RUQI_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What a job is (for add and modify).
#[derive(Debug, Clone, Args)]
pub struct JobDef {
    /// The job's id.
    pub id: String,
    /// cron, interval or date.
    #[arg(long)]
    pub trigger: String,
    /// The rule: `0 20 2 * * *`, `10s`, `2030-12-16 18:03:17`, `now`.
    #[arg(long)]
    pub rule: String,
    /// What runs: `bash x.sh`, `http://host/path#{…}`, `/topic#{…}`, …
    #[arg(long)]
    pub cmd: String,
    /// A category.
    #[arg(long)]
    pub name: Option<String>,
    /// The IANA zone the rule is read in (default: the server's; modify keeps the job's).
    #[arg(long)]
    pub timezone: Option<String>,
    /// Fire only on a calendar's working days (`cn`) or rest days (`cn:rest`); `none` removes it.
    #[arg(long)]
    pub calendar: Option<String>,
    /// Seconds a run may take before it is stopped and recorded as `timeout` (0: no limit).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Seconds a stopped run's command gets between SIGTERM and SIGKILL.
    #[arg(long)]
    pub kill_grace: Option<u64>,
    /// Times a run ending failed or timeout is tried again (0-32).
    #[arg(long)]
    pub retries: Option<u64>,
    /// Seconds before the first retry (10).
    #[arg(long)]
    pub retry_delay: Option<u64>,
    /// Factor each further retry's delay grows by (2).
    #[arg(long)]
    pub retry_backoff: Option<f64>,
    /// Longest delay before a retry, seconds (3600).
    #[arg(long)]
    pub retry_max_delay: Option<u64>,
    /// Fire times found past the misfire grace: skip, once (the latest) or all.
    #[arg(long)]
    pub misfire: Option<String>,
    /// Seconds a run may start late (default: the server's).
    #[arg(long)]
    pub misfire_grace: Option<u64>,
    /// Spread fire times over this many seconds (an offset drawn from the job and fire time).
    #[arg(long)]
    pub jitter: Option<u64>,
    /// When a fire time comes while a run of the job goes on: skip, buffer_one, buffer_all,
    /// cancel_other or allow.
    #[arg(long)]
    pub overlap: Option<String>,
}

/// `ruqi job …`
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Add a job.
    Add(JobDef),
    /// Replace a job's trigger, rule, cmd and name.
    Modify(JobDef),
    /// Remove a job.
    Remove {
        /// The job's id.
        id: String,
    },
    /// Pause a job.
    Pause {
        /// The job's id.
        id: String,
    },
    /// Resume a job.
    Resume {
        /// The job's id.
        id: String,
    },
    /// Show a job.
    Show {
        /// The job's id.
        id: String,
    },
    /// A job's last runs, newest first (outcome, duration, when).
    Strip {
        /// The job's id.
        id: String,
        /// How many (1 to 200).
        #[arg(long, default_value_t = 50)]
        count: u64,
    },
    /// The versions of a job's definition, newest first.
    Versions {
        /// The job's id.
        id: String,
    },
    /// Make an earlier version of a job's definition current again.
    Rollback {
        /// The job's id.
        id: String,
        /// The version (`ruqi job versions`).
        version: u64,
    },
    /// Start a run of a job now (even a paused one); prints its run id.
    Run {
        /// The job's id.
        id: String,
        /// Start it even while another run of the job is going on (as `--overlap allow`).
        #[arg(long, conflicts_with = "overlap")]
        allow_overlap: bool,
        /// The overlap policy for this run (default: the job's): skip, buffer_one, buffer_all,
        /// cancel_other or allow.
        #[arg(long)]
        overlap: Option<String>,
        /// Text handed to the plugin with this run (shell-bridge: more arguments; http-post and
        /// baichuan: a JSON object merged into the body or message).
        #[arg(long)]
        params: Option<String>,
    },
    /// Run every fire time of a cron or interval job's rule in a window (in the job's zone),
    /// one after another; prints each fire time and its run id.
    Backfill {
        /// The job's id.
        id: String,
        /// The window's first instant, `YYYY-mm-dd HH:MM:SS`.
        #[arg(long)]
        start: String,
        /// The window's last instant (included).
        #[arg(long)]
        end: String,
        /// List the fire times, run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run them all at once (as slots free) instead of one after another.
        #[arg(long)]
        allow_overlap: bool,
    },
    /// List jobs (all of them, or a page).
    List {
        /// Only this name.
        #[arg(long)]
        name: Option<String>,
        /// Only this id.
        #[arg(long)]
        id: Option<String>,
        /// Page (from 1).
        #[arg(long)]
        page: Option<u64>,
        /// Rows per page.
        #[arg(long)]
        page_size: Option<u64>,
    },
}

/// `ruqi history …`
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// List runs, newest first.
    List {
        /// Only this job.
        #[arg(long)]
        id: Option<String>,
        /// Only this name.
        #[arg(long)]
        name: Option<String>,
        /// Only failed runs.
        #[arg(long, conflicts_with = "succeeded")]
        failed: bool,
        /// Only successful runs.
        #[arg(long)]
        succeeded: bool,
        /// Only runs of this node (host:port:pid).
        #[arg(long)]
        node: Option<String>,
        /// Page (from 1).
        #[arg(long, default_value_t = 1)]
        page: u64,
        /// Rows per page (0 = all).
        #[arg(long, default_value_t = 15)]
        page_size: u64,
        /// Show the whole output of each run.
        #[arg(long)]
        output: bool,
    },
    /// Delete old runs.
    Clear {
        /// Only this job.
        #[arg(long)]
        id: Option<String>,
        /// Only this name.
        #[arg(long)]
        name: Option<String>,
        /// Keep runs younger than this many days.
        #[arg(long, default_value_t = 180)]
        retention_days: u64,
        /// Delete at most this many.
        #[arg(long, default_value_t = 1000)]
        limit: u64,
    },
}

/// `ruqi run …`
#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Runs in progress on any node, and recent ones.
    List {
        /// Only this job's runs.
        #[arg(long)]
        id: Option<String>,
        /// Only running runs.
        #[arg(long, conflicts_with_all = ["ended", "waiting"])]
        running: bool,
        /// Only ended runs.
        #[arg(long, conflicts_with = "waiting")]
        ended: bool,
        /// Only runs waiting for the run of their job to end (its overlap policy).
        #[arg(long)]
        waiting: bool,
        /// Page (from 1).
        #[arg(long, default_value_t = 1)]
        page: u64,
        /// Rows per page (0 = all).
        #[arg(long, default_value_t = 15)]
        page_size: u64,
    },
    /// One run, with its whole output.
    Show {
        /// The run's id.
        run_id: String,
    },
    /// A run's output; with `-f`, followed until the run ends.
    Logs {
        /// The run's id.
        run_id: String,
        /// Keep printing what the run prints until it ends.
        #[arg(short, long)]
        follow: bool,
    },
    /// Stop a running run, whichever node runs it.
    Kill {
        /// The run's id.
        run_id: String,
    },
}

/// `ruqi scheduler …`
#[derive(Debug, Subcommand)]
pub enum SchedulerCommand {
    /// The node's last scheduler pass.
    Status,
    /// Make the node look at the store now.
    Wakeup,
    /// The nodes that used the store recently (up, stopped, or silent).
    Nodes {
        /// Nodes seen in the last this many minutes.
        #[arg(long, default_value_t = 10)]
        within_minutes: u64,
    },
}

/// `ruqi alert …`
#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Alerts queued and sent (one row per alert and target), newest first.
    List {
        /// Only this job's alerts.
        #[arg(long)]
        id: Option<String>,
        /// Only alerts of this kind (failure, timeout, killed, recovery, missed, deadline, paused).
        #[arg(long)]
        kind: Option<String>,
        /// Only pending, sent or failed alerts.
        #[arg(long)]
        state: Option<String>,
        /// Page (from 1).
        #[arg(long, default_value_t = 1)]
        page: u64,
        /// Rows per page (0 = all).
        #[arg(long, default_value_t = 15)]
        page_size: u64,
    },
}

/// `ruqi calendar …`
#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// The server's business calendars and the years each covers.
    List,
    /// A calendar's working and rest days in one month.
    Days {
        /// The calendar (e.g. cn).
        calendar: String,
        /// The month, YYYY-MM.
        month: String,
    },
}

/// A refusal or a failure to reach the server; `Display` is the line to print.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server answered with a stat other than OK.
    #[error("{stat}: {reason}")]
    Refused {
        /// RuQi's stat.
        stat: String,
        /// The `x-reason`.
        reason: String,
    },
    /// No usable answer.
    #[error("{0}")]
    Transport(String),
}

/// A client of one server.
pub struct Client {
    server: Server,
    http: reqwest::Client,
}

impl Client {
    /// A client for `server`.
    pub fn new(server: Server) -> Self {
        Self { server, http: reqwest::Client::new() }
    }

    /// POSTs `params` to `/ruqi/<route>`; the whole answer (`stat`, `data`) when it is OK.
    pub async fn call(&self, route: &str, params: Value) -> Result<Value, CliError> {
        let url = format!("{}/ruqi/{route}", self.server.server.trim_end_matches('/'));
        let mut req = self.http.post(&url).json(&params).timeout(std::time::Duration::from_secs(60));
        if let Some(t) = &self.server.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| CliError::Transport(format!("cannot reach {url}: {e}")))?;
        let reason = resp.headers().get("x-reason").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let status = resp.status();
        let body: Value =
            resp.json().await.map_err(|_| CliError::Transport(format!("{url}: HTTP {status}, not RuQi")))?;
        match body["stat"].as_str() {
            Some("OK") => Ok(body),
            Some(stat) => Err(CliError::Refused { stat: stat.to_owned(), reason }),
            None => Err(CliError::Transport(format!("{url}: HTTP {status}, no stat"))),
        }
    }

    fn out(&self, answer: &Value, table: impl FnOnce(&Value) -> String) -> String {
        if self.server.json { format!("{}\n", crate::api::pyjson::to_string(answer)) } else { table(&answer["data"]) }
    }

    /// Runs `ruqi job …`; the text to print.
    pub async fn job(&self, command: JobCommand) -> Result<String, CliError> {
        let done = |what: String| move |_: &Value| format!("{what}\n");
        Ok(match command {
            JobCommand::Add(def) => {
                let id = def.id.clone();
                self.out(&self.call("job_add", job_params(def)).await?, done(format!("added {id}")))
            }
            JobCommand::Modify(def) => {
                let id = def.id.clone();
                self.out(&self.call("job_modify", job_params(def)).await?, done(format!("modified {id}")))
            }
            JobCommand::Remove { id } => {
                self.out(&self.call("job_remove", json!({"job_id": id})).await?, done(format!("removed {id}")))
            }
            JobCommand::Pause { id } => {
                self.out(&self.call("job_pause", json!({"job_id": id})).await?, done(format!("paused {id}")))
            }
            JobCommand::Resume { id } => {
                self.out(&self.call("job_resume", json!({"job_id": id})).await?, done(format!("resumed {id}")))
            }
            JobCommand::Strip { id, count } => self
                .out(&self.call("job_strip", json!({"job_id": id, "count": count})).await?, |d| {
                    listing(d, &["ended", "outcome", "cost", "trigger", "fire_time", "run_id"])
                }),
            JobCommand::Versions { id } => self.out(&self.call("job_versions", json!({"job_id": id})).await?, |d| {
                let rows: Vec<Value> = d["list"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| {
                        let mut row = v.clone();
                        row["definition"] = json!(v["definition"].to_string());
                        row
                    })
                    .collect();
                listing(&json!({"list": rows}), &["version", "at", "caller", "current", "definition"])
            }),
            JobCommand::Rollback { id, version } => self.out(
                &self.call("job_rollback", json!({"job_id": id, "version": version})).await?,
                done(format!("{id} is at version {version}'s definition again")),
            ),
            JobCommand::Show { id } => self.out(&self.call("job_show", json!({"job_id": id})).await?, |d| {
                let mut names = vec!["job_id", "job_name", "job_trigger", "rule", "nexttime", "cmd"];
                names.extend(
                    [
                        "timezone",
                        "next_run_time_rfc3339",
                        "calendar",
                        "calendar_note",
                        "timeout",
                        "kill_grace",
                        "retries",
                        "retry_delay",
                        "retry_backoff",
                        "retry_max_delay",
                        "misfire",
                        "misfire_grace",
                        "jitter",
                        "overlap",
                        "alert",
                        "alert_on",
                        "alert_quiet",
                        "on_success",
                        "on_failure",
                        "pause_after_failures",
                        "resume_after",
                        "deadline",
                        "paused_reason",
                        "next_probe",
                        "failures_in_a_row",
                    ]
                    .into_iter()
                    .filter(|k| d.get(*k).is_some()),
                );
                fields(d, &names)
            }),
            JobCommand::Run { id, allow_overlap, overlap, params } => {
                let mut p = Map::new();
                p.insert("job_id".into(), id.into());
                put(&mut p, "overlap", overlap.or(allow_overlap.then(|| "allow".to_owned())).map(Value::from));
                put(&mut p, "params", params.map(Value::from));
                self.out(&self.call("job_run", Value::Object(p)).await?, |d| format!("{}\n", cell(&d["run_id"])))
            }
            JobCommand::Backfill { id, start, end, dry_run, allow_overlap } => {
                let mut p = json!({"job_id": id, "start": start, "end": end, "dry_run": dry_run});
                if allow_overlap {
                    p["overlap"] = "allow".into();
                }
                self.out(&self.call("job_backfill", p).await?, |d| {
                    let mut out = String::new();
                    for f in d["list"].as_array().into_iter().flatten() {
                        out.push_str(&format!("{}\t{}\n", cell(&f["fire_time"]), cell(&f["run_id"])));
                    }
                    out.push_str(&format!(
                        "{} fire times{}\n",
                        cell(&d["count"]),
                        if dry_run { " (dry run)" } else { "" }
                    ));
                    out
                })
            }
            JobCommand::List { name, id, page, page_size } => {
                let mut p = Map::new();
                put(&mut p, "job_name", name.map(Value::from));
                put(&mut p, "job_id", id.map(Value::from));
                put(&mut p, "page_index", page.map(Value::from));
                put(&mut p, "page_size", page_size.map(Value::from));
                self.out(&self.call("job_list", Value::Object(p)).await?, |d| {
                    listing(d, &["job_id", "job_name", "job_trigger", "rule", "next_run_time", "c_time", "cmd"])
                })
            }
        })
    }

    /// Runs `ruqi history …`; the text to print.
    pub async fn history(&self, command: HistoryCommand) -> Result<String, CliError> {
        Ok(match command {
            HistoryCommand::List { id, name, failed, succeeded, node, page, page_size, output } => {
                let mut p = Map::new();
                put(&mut p, "job_id", id.map(Value::from));
                put(&mut p, "job_name", name.map(Value::from));
                put(&mut p, "is_success", (failed || succeeded).then_some(Value::from(succeeded)));
                put(&mut p, "scheduler_name", node.map(Value::from));
                p.insert("page_index".into(), page.into());
                p.insert("page_size".into(), page_size.into());
                self.out(&self.call("job_history_list", Value::Object(p)).await?, |d| {
                    if output {
                        return d["list"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|r| {
                                format!(
                                    "== {} {} {}\n{}\n",
                                    cell(&r["id"]),
                                    cell(&r["c_time"]),
                                    cell(&r["job_id"]),
                                    cell(&r["cmd_output"])
                                )
                            })
                            .collect();
                    }
                    listing(
                        d,
                        &[
                            "id",
                            "c_time",
                            "job_id",
                            "job_name",
                            "cmd_is_success",
                            "cmd_cost",
                            "scheduler_name",
                            "cmd_output",
                        ],
                    )
                })
            }
            HistoryCommand::Clear { id, name, retention_days, limit } => {
                let mut p = Map::new();
                put(&mut p, "job_id", id.map(Value::from));
                put(&mut p, "job_name", name.map(Value::from));
                p.insert("retention_day".into(), retention_days.into());
                p.insert("limit_num".into(), limit.into());
                self.out(&self.call("job_history_clear", Value::Object(p)).await?, |d| {
                    format!("deleted {}\n", cell(&d["deleted"]))
                })
            }
        })
    }

    /// Runs `ruqi stats`: the cluster's runs over the last hour and the last 7 days, by
    /// outcome, the lateness of the last hour, the slowest and most failing jobs.
    pub async fn stats(&self) -> Result<String, CliError> {
        Ok(self.out(&self.call("stats_overview", json!({})).await?, |d| {
            let mut out = String::new();
            let totals = |buckets: &Value| {
                let mut by: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
                for b in buckets.as_array().into_iter().flatten() {
                    for (k, v) in b["runs"].as_object().into_iter().flatten() {
                        *by.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0);
                    }
                }
                let parts: Vec<String> = by.iter().map(|(k, v)| format!("{k} {v}")).collect();
                if parts.is_empty() { "no runs".to_owned() } else { parts.join(", ") }
            };
            out.push_str(&format!("last hour:   {}\n", totals(&d["minutes"])));
            out.push_str(&format!("last 7 days: {}\n", totals(&d["hours"])));
            if let Some(last) = d["minutes"].as_array().and_then(|m| m.last()) {
                out.push_str(&format!(
                    "lateness, minute of {}: p50 {} ms, p99 {} ms\n",
                    last["start"].as_str().unwrap_or_default(),
                    last["late_p50_ms"],
                    last["late_p99_ms"]
                ));
            }
            out.push_str("\nslowest jobs since yesterday (UTC):\n");
            out.push_str(&listing(&json!({"list": d["slowest"]}), &["job_id", "cost_avg", "cost_max", "runs"]));
            out.push_str("\nmost failing jobs since yesterday (UTC):\n");
            out.push_str(&listing(&json!({"list": d["failing"]}), &["job_id", "failures", "runs"]));
            out
        }))
    }

    /// Runs `ruqi audit`; the text to print.
    pub async fn audit(
        &self,
        id: Option<String>,
        caller: Option<String>,
        since: Option<String>,
        until: Option<String>,
        page: u64,
        page_size: u64,
    ) -> Result<String, CliError> {
        let mut p = Map::new();
        put(&mut p, "job_id", id.map(Value::from));
        put(&mut p, "caller", caller.map(Value::from));
        put(&mut p, "since", since.map(Value::from));
        put(&mut p, "until", until.map(Value::from));
        p.insert("page_index".into(), page.into());
        p.insert("page_size".into(), page_size.into());
        Ok(self.out(&self.call("audit_list", Value::Object(p)).await?, |d| {
            let rows: Vec<Value> = d["list"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    let mut row = e.clone();
                    let changed: Vec<String> = e["after"]
                        .as_object()
                        .map(|a| a.iter().map(|(k, v)| format!("{k}: {} -> {v}", e["before"][k])).collect())
                        .unwrap_or_default();
                    row["changed"] = json!(changed.join("; "));
                    row
                })
                .collect();
            listing(&json!({"list": rows}), &["at", "caller", "peer", "action", "job_id", "run_id", "changed"])
        }))
    }

    /// Runs `ruqi alert …`; the text to print.
    pub async fn alerts(&self, command: AlertCommand) -> Result<String, CliError> {
        let AlertCommand::List { id, kind, state, page, page_size } = command;
        let mut p = Map::new();
        put(&mut p, "job_id", id.map(Value::from));
        put(&mut p, "kind", kind.map(Value::from));
        put(&mut p, "state", state.map(Value::from));
        p.insert("page_index".into(), page.into());
        p.insert("page_size".into(), page_size.into());
        Ok(self.out(&self.call("alert_list", Value::Object(p)).await?, |d| {
            listing(d, &["id", "job_id", "kind", "target", "state", "attempts", "created", "sent", "suppressed"])
        }))
    }

    /// Runs `ruqi run …` (but `logs -f`: see [`Client::follow`]); the text to print.
    pub async fn runs(&self, command: RunCommand) -> Result<String, CliError> {
        Ok(match command {
            RunCommand::List { id, running, ended, waiting, page, page_size } => {
                let mut p = Map::new();
                put(&mut p, "job_id", id.map(Value::from));
                let state =
                    [(running, "running"), (ended, "ended"), (waiting, "waiting")].into_iter().find(|(on, _)| *on);
                put(&mut p, "state", state.map(|(_, s)| Value::from(s)));
                p.insert("page_index".into(), page.into());
                p.insert("page_size".into(), page_size.into());
                self.out(&self.call("run_list", Value::Object(p)).await?, |d| {
                    listing(
                        d,
                        &["run_id", "job_id", "node", "trigger", "attempt", "state", "outcome", "started", "elapsed"],
                    )
                })
            }
            RunCommand::Show { run_id } => self.out(&self.call("run_show", json!({"run_id": run_id})).await?, |d| {
                let head = fields(
                    d,
                    &[
                        "run_id",
                        "job_id",
                        "job_name",
                        "cmd",
                        "node",
                        "trigger",
                        "attempt",
                        "state",
                        "outcome",
                        "fire_time",
                        "started",
                        "ended",
                        "elapsed",
                        "output_bytes",
                    ],
                );
                format!("{head}--\n{}\n", cell(&d["output"]))
            }),
            RunCommand::Logs { run_id, .. } => {
                self.out(&self.call("run_show", json!({"run_id": run_id})).await?, |d| cell(&d["output"]))
            }
            RunCommand::Kill { run_id } => self.out(&self.call("run_kill", json!({"run_id": run_id})).await?, |d| {
                format!("kill asked of {} on {}\n", cell(&d["run_id"]), cell(&d["node"]))
            }),
        })
    }

    /// Follows a run's output (`ruqi run logs -f`): hands each new piece to `write` as the run
    /// prints it, until the run has ended and all of its output is written; its outcome.
    pub async fn follow(&self, run_id: &str, mut write: impl FnMut(&str)) -> Result<String, CliError> {
        let mut offset = 0u64;
        loop {
            let d = self.call("run_output", json!({"run_id": run_id, "offset": offset})).await?["data"].take();
            let piece = d["output"].as_str().unwrap_or_default();
            if !piece.is_empty() {
                write(piece);
            }
            let next = d["next_offset"].as_u64().unwrap_or(offset);
            let ended = d["state"] == "ended";
            if ended && next == offset {
                return Ok(cell(&d["outcome"]));
            }
            if next == offset {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
            offset = next;
        }
    }

    /// Runs `ruqi scheduler …`; the text to print.
    pub async fn scheduler(&self, command: SchedulerCommand) -> Result<String, CliError> {
        Ok(match command {
            SchedulerCommand::Status => self.out(&self.call("scheduler_status", json!({})).await?, |d| {
                fields(d, &["check_time", "next_wakeup_time", "wait_seconds"])
            }),
            SchedulerCommand::Wakeup => {
                self.out(&self.call("scheduler_wakeup", json!({})).await?, |_| "woken\n".into())
            }
            SchedulerCommand::Nodes { within_minutes } => self
                .out(&self.call("scheduler_nodes", json!({"within_minutes": within_minutes})).await?, |d| {
                    listing(d, &["name", "state", "this", "version", "started", "seen", "stopped"])
                }),
        })
    }

    /// Runs `ruqi calendar …`; the text to print.
    pub async fn calendars(&self, command: CalendarCommand) -> Result<String, CliError> {
        Ok(match command {
            CalendarCommand::List => self.out(&self.call("calendar_list", json!({})).await?, |d| {
                listing(d, &["name", "status", "years", "description", "file", "error"])
            }),
            CalendarCommand::Days { calendar, month } => self
                .out(&self.call("calendar_days", json!({"calendar": calendar, "month": month})).await?, |d| {
                    fields(d, &["calendar", "month", "covered", "workdays", "rest_days", "note"])
                }),
        })
    }

    /// Runs `ruqi plugin list` against the server; the text to print.
    pub async fn plugins(&self) -> Result<String, CliError> {
        Ok(self.out(&self.call("plugin_list", json!({})).await?, |d| {
            listing(d, &["status", "name", "version", "prefixes", "contract", "file", "grants", "error"])
        }))
    }
}

fn job_params(def: JobDef) -> Value {
    let mut p =
        json!({"job_trigger": def.trigger, "job_id": def.id, "job_name": def.name, "cmd": def.cmd, "rule": def.rule});
    if let (Some(tz), Some(map)) = (def.timezone, p.as_object_mut()) {
        map.insert("timezone".into(), tz.into());
    }
    if let (Some(cal), Some(map)) = (def.calendar, p.as_object_mut()) {
        map.insert("calendar".into(), cal.into());
    }
    if let (Some(t), Some(map)) = (def.timeout, p.as_object_mut()) {
        map.insert("timeout".into(), t.into());
    }
    if let Some(map) = p.as_object_mut() {
        for (key, value) in [
            ("kill_grace", def.kill_grace.map(Value::from)),
            ("retries", def.retries.map(Value::from)),
            ("retry_delay", def.retry_delay.map(Value::from)),
            ("retry_backoff", def.retry_backoff.map(|f| Value::from(f.to_string()))),
            ("retry_max_delay", def.retry_max_delay.map(Value::from)),
            ("misfire", def.misfire.map(Value::from)),
            ("misfire_grace", def.misfire_grace.map(Value::from)),
            ("jitter", def.jitter.map(Value::from)),
            ("overlap", def.overlap.map(Value::from)),
        ] {
            put(map, key, value);
        }
    }
    p
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.into(), v);
    }
}

/// A JSON value as a table cell: text as it is, null as `-`, lists joined.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// Some fields of one object, a line each.
fn fields(data: &Value, names: &[&str]) -> String {
    let rows: Vec<Vec<String>> = names.iter().map(|k| vec![(*k).to_owned(), cell(&data[*k])]).collect();
    let layout = text::Layout::new(&["", ""], &rows);
    rows.iter().map(|r| layout.line(r)).collect()
}

/// `data.list` as a table of `columns`, with the total.
fn listing(data: &Value, columns: &[&str]) -> String {
    let rows: Vec<Vec<String>> = data["list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            columns.iter().map(|c| cell(&r[*c]).lines().next().unwrap_or_default().chars().take(80).collect()).collect()
        })
        .collect();
    let total = data["total"].as_u64().unwrap_or(rows.len() as u64);
    text::table(columns, &rows, total)
}
