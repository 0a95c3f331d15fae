//! The figures of one run: rows of (workload, RuQi, peer, ratio), printed as one table and
//! written as JSON to `target/bench/latest.json` plus a timestamped copy.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::thousands;

/// Which way is better for a figure (sets the ratio's direction: ratio > 1 = RuQi better).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Times, latencies, CPU, missed runs.
    Lower,
    /// Rates.
    Higher,
}

/// How a figure is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds.
    Secs,
    /// Seconds shown as milliseconds.
    Millis,
    /// Seconds shown as microseconds.
    Micros,
    /// Per second.
    PerSec,
    /// A count.
    Count,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Secs => "s",
            Unit::Millis | Unit::Micros => "s", // stored in seconds, shown scaled
            Unit::PerSec => "1/s",
            Unit::Count => "count",
        }
    }

    fn show(self, v: f64) -> String {
        match self {
            Unit::Secs => format!("{v:.2} s"),
            Unit::Millis => format!("{:.1} ms", v * 1e3),
            Unit::Micros if v < 1e-5 => format!("{:.2} µs", v * 1e6),
            Unit::Micros => format!("{:.1} µs", v * 1e6),
            Unit::PerSec => format!("{}/s", thousands(v.round().max(0.0) as u64)),
            Unit::Count => thousands(v.round().max(0.0) as u64),
        }
    }
}

/// One side of a row: a figure, or why there is none ("n/a", "failed: …").
#[derive(Debug, Clone)]
pub enum Cell {
    /// A measured value (in the row's unit's base: seconds, per second, count).
    Value(f64),
    /// No figure, and why.
    Missing(String),
}

impl Cell {
    /// "n/a".
    pub fn na() -> Self {
        Cell::Missing("n/a".into())
    }

    /// A failure, shown short in the table (whole in the JSON).
    pub fn failed(why: impl std::fmt::Display) -> Self {
        Cell::Missing(format!("failed: {why}"))
    }

    /// A value, or n/a when absent or not finite.
    pub fn opt(v: Option<f64>) -> Self {
        match v {
            Some(v) if v.is_finite() => Cell::Value(v),
            _ => Cell::na(),
        }
    }

    fn value(&self) -> Option<f64> {
        match self {
            Cell::Value(v) => Some(*v),
            Cell::Missing(_) => None,
        }
    }

    fn show(&self, unit: Unit) -> String {
        match self {
            Cell::Value(v) => unit.show(*v),
            Cell::Missing(why) => {
                let one_line = why.lines().next().unwrap_or_default();
                if one_line.chars().count() > 48 {
                    format!("{}…", one_line.chars().take(47).collect::<String>())
                } else {
                    one_line.to_owned()
                }
            }
        }
    }

    fn json(&self) -> Value {
        match self {
            Cell::Value(v) => json!(v),
            Cell::Missing(why) => json!({ "missing": why }),
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Section (burst, interval, …).
    pub section: String,
    /// What is measured.
    pub workload: String,
    /// RuQi's figure.
    pub ruqi: Cell,
    /// The peer's figure (APScheduler, or the baseline the row names).
    pub peer: Cell,
    /// Unit of both.
    pub unit: Unit,
    /// Which way is better.
    pub better: Better,
    /// Whether `peer` is a goal RuQi must reach, not a peer's figure.
    pub goal: bool,
}

impl Row {
    /// A row.
    pub fn new(section: &str, workload: impl Into<String>, unit: Unit, better: Better, ruqi: Cell, peer: Cell) -> Self {
        Self { section: section.into(), workload: workload.into(), ruqi, peer, unit, better, goal: false }
    }

    /// A row holding RuQi's figure against a goal (shown in the peer column as `goal …`; a
    /// ratio under 1 is marked missed).
    pub fn goal(section: &str, workload: impl Into<String>, unit: Unit, better: Better, ruqi: Cell, goal: f64) -> Self {
        Self { goal: true, ..Self::new(section, workload, unit, better, ruqi, Cell::Value(goal)) }
    }

    /// RuQi against the peer: > 1 means RuQi is better by that factor.
    pub fn ratio(&self) -> Option<f64> {
        let (r, p) = (self.ruqi.value()?, self.peer.value()?);
        let ratio = match self.better {
            Better::Higher => r / p,
            Better::Lower => p / r,
        };
        ratio.is_finite().then_some(ratio)
    }
}

fn show_ratio(r: Option<f64>) -> String {
    match r {
        None => "n/a".into(),
        Some(r) if r >= 100.0 => format!("{}x", thousands(r.round() as u64)),
        Some(r) if r >= 10.0 => format!("{r:.0}x"),
        Some(r) if r >= 0.1 => format!("{r:.2}x"),
        Some(r) if r < 0.0001 => "<0.0001x".into(),
        Some(r) => format!("{r:.4}x"),
    }
}

/// Every row of the run, plus notes printed under the table.
#[derive(Debug, Default)]
pub struct Report {
    /// The rows, in order.
    pub rows: Vec<Row>,
    /// Footnotes (how a peer was configured, why a cell is missing).
    pub notes: Vec<String>,
}

impl Report {
    /// Adds a row.
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// Adds a footnote once.
    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        if !self.notes.contains(&text) {
            self.notes.push(text);
        }
    }

    /// The table as text.
    pub fn table(&self) -> String {
        let head = ["workload", "RuQi", "peer", "ratio"];
        let cells: Vec<[String; 4]> = self
            .rows
            .iter()
            .map(|r| {
                let (peer, ratio) = if r.goal {
                    let missed = r.ratio().is_some_and(|x| x < 1.0);
                    let sign = if r.better == Better::Lower { "≤" } else { "≥" };
                    (
                        format!("goal {sign} {}", r.peer.show(r.unit)),
                        match r.ratio() {
                            None => "n/a".to_owned(),
                            Some(x) => format!("{}{}", show_ratio(Some(x)), if missed { " MISSED" } else { " met" }),
                        },
                    )
                } else {
                    (r.peer.show(r.unit), show_ratio(r.ratio()))
                };
                [format!("{}: {}", r.section, r.workload), r.ruqi.show(r.unit), peer, ratio]
            })
            .collect();
        let mut width = head.map(|h| h.chars().count());
        for c in &cells {
            for (w, s) in width.iter_mut().zip(c) {
                *w = (*w).max(s.chars().count());
            }
        }
        let line = |c: &[String; 4]| {
            let pad = |s: &str, w: usize| " ".repeat(w.saturating_sub(s.chars().count()));
            format!(
                "| {}{} | {}{} | {}{} | {}{} |\n",
                c[0],
                pad(&c[0], width[0]),
                pad(&c[1], width[1]),
                c[1],
                pad(&c[2], width[2]),
                c[2],
                pad(&c[3], width[3]),
                c[3]
            )
        };
        let mut out = line(&head.map(String::from));
        out.push_str(&format!(
            "|{}|{}:|{}:|{}:|\n",
            "-".repeat(width[0] + 2),
            "-".repeat(width[1] + 1),
            "-".repeat(width[2] + 1),
            "-".repeat(width[3] + 1)
        ));
        for c in &cells {
            out.push_str(&line(c));
        }
        out.push_str(
            "\nratio: how many times better RuQi is (peer/RuQi for times, RuQi/peer for rates); < 1 = worse.\n",
        );
        for n in &self.notes {
            out.push_str(&format!("- {n}\n"));
        }
        out
    }

    /// Writes `latest.json` and `bench-<UTC time>.json` under `dir`; returns the timestamped path.
    pub fn write_json(&self, dir: &Path, meta: Value) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "section": r.section,
                    "workload": r.workload,
                    "unit": r.unit.name(),
                    "better": if r.better == Better::Lower { "lower" } else { "higher" },
                    "ruqi": r.ruqi.json(),
                    "peer": r.peer.json(),
                    "goal": r.goal,
                    "ratio": r.ratio(),
                })
            })
            .collect();
        let doc = json!({ "meta": meta, "rows": rows, "notes": self.notes });
        let text = serde_json::to_string_pretty(&doc)?;
        let stamped = dir.join(format!("bench-{}.json", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")));
        std::fs::write(&stamped, &text)?;
        std::fs::write(dir.join("latest.json"), &text)?;
        Ok(stamped)
    }
}
