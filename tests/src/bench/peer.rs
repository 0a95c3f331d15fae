//! The APScheduler peer: a virtualenv under `target/bench/venv` with the pins of
//! `tests/bench/requirements.txt` (reinstalled only when that file changes), and runs of
//! `tests/bench/apscheduler_peer.py` whose stderr `PROGRESS` lines feed the progress line and
//! whose last stdout line is its JSON figures.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::progress::Progress;

/// A ready peer: the venv's python and the script.
#[derive(Debug, Clone)]
pub struct Peer {
    python: PathBuf,
    script: PathBuf,
}

/// FNV-1a of the requirements text: the venv's stamp (stable across Rust versions, unlike
/// `DefaultHasher`).
fn fnv(text: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

async fn run_quiet(cmd: &mut tokio::process::Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.stdin(Stdio::null()).output().await.with_context(|| what.to_owned())?;
    anyhow::ensure!(
        out.status.success(),
        "{what}: {}: {}",
        out.status,
        super::node::tail(&String::from_utf8_lossy(&out.stderr), 600)
    );
    Ok(())
}

impl Peer {
    /// Creates (or reuses) the venv: `python3 -m venv`, then `pip install -r requirements.txt`
    /// unless the stamp file holds the requirements' hash.
    pub async fn ensure(root: &Path, out: &Path, progress: &Progress) -> anyhow::Result<Self> {
        let reqs = root.join("tests/bench/requirements.txt");
        let script = root.join("tests/bench/apscheduler_peer.py");
        let venv = out.join("venv");
        let stamp = venv.join(".requirements-hash");
        let want = fnv(&std::fs::read(&reqs).with_context(|| reqs.display().to_string())?);
        let python = venv.join("bin/python");
        if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) || !python.exists() {
            progress.update("peer: creating the APScheduler virtualenv (python3 -m venv, pip install)");
            std::fs::create_dir_all(out)?;
            run_quiet(tokio::process::Command::new("python3").arg("-m").arg("venv").arg(&venv), "python3 -m venv")
                .await?;
            run_quiet(
                tokio::process::Command::new(&python)
                    .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
                    .arg(&reqs),
                "pip install -r tests/bench/requirements.txt",
            )
            .await?;
            std::fs::write(&stamp, &want)?;
            progress.clear();
        }
        Ok(Self { python, script })
    }

    /// Runs the peer with `args` (workload first) and returns its JSON figures; its progress
    /// lines become the progress line; a run longer than `limit` is killed.
    pub async fn run(&self, args: &[String], progress: &Progress, limit: Duration) -> anyhow::Result<Value> {
        let mut child = tokio::process::Command::new(&self.python)
            .arg(&self.script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("start the peer")?;
        let stderr = child.stderr.take().context("peer stderr")?;
        let stdout = child.stdout.take().context("peer stdout")?;
        let errors = {
            let progress = progress.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                let mut kept: Vec<String> = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    match line.strip_prefix("PROGRESS ") {
                        Some(p) => progress.update(&format!("peer: {p}")),
                        None => {
                            kept.push(line);
                            if kept.len() > 20 {
                                kept.remove(0);
                            }
                        }
                    }
                }
                kept.join("\n")
            })
        };
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut last = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if !line.trim().is_empty() {
                    last = line;
                }
            }
            last
        });
        let status = match tokio::time::timeout(limit, child.wait()).await {
            Ok(s) => s?,
            Err(_) => {
                let _ = child.kill().await;
                anyhow::bail!("peer still running after {} s, killed", limit.as_secs());
            }
        };
        let last = reader.await.unwrap_or_default();
        let err = errors.await.unwrap_or_default();
        match serde_json::from_str::<Value>(&last) {
            Ok(v) if status.success() => Ok(v),
            _ => {
                let why = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_owned();
                anyhow::bail!("peer {status}: {why}")
            }
        }
    }
}

/// `v[key]` as a number, if it is one.
pub fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}
