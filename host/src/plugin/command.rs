//! Running the commands plugins ask for through `run-command`.
//!
//! By default no shell is involved: the command line is split with POSIX shell quoting rules
//! (the `shell-words` crate) into an argv, `argv[0]` must be a granted program, and `argv[1]`
//! must be a script file inside the script roots (the work directory and the roots granted in
//! the plugin's `.toml`), after resolving `..` and symlinks. The program is started with the
//! resolved script path, so a link swapped after the check cannot lead elsewhere. A line with
//! shell syntax (pipes, redirections, substitutions, separators) is refused with a reason,
//! because nothing would interpret it. Only an operator who grants `shell` gets RuQi 1.x's
//! behaviour back: the whole line given to `shell -c` after checking its first word.
//!
//! The command runs in its own process group. The group is killed when the command outlives
//! its time limit, and also when the run is abandoned (its future dropped: the plugin's own
//! time limit, or the job's claim lost), so nothing keeps running for a run that no longer
//! exists.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;

use super::bindings::ruqi::executor::host::CommandOutput;
use super::grants::Grants;
use crate::run::RunControl;

/// The first piece of shell syntax in `line` that only a shell would interpret, described
/// for a reason text; `None` when the line is plain words (quotes and backslashes allowed).
pub fn shell_syntax(line: &str) -> Option<&'static str> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut quote = Quote::None;
    let mut chars = line.chars().peekable();
    let mut word_start = true;
    while let Some(c) = chars.next() {
        match quote {
            Quote::Single => {
                if c == '\'' {
                    quote = Quote::None;
                }
                continue;
            }
            Quote::Double => {
                match c {
                    '"' => quote = Quote::None,
                    '\\' => {
                        chars.next();
                    }
                    '$' => return Some("an expansion ($)"),
                    '`' => return Some("a command substitution (`)"),
                    _ => {}
                }
                continue;
            }
            Quote::None => {}
        }
        let found = match c {
            '\\' => {
                chars.next();
                None
            }
            '\'' => {
                quote = Quote::Single;
                None
            }
            '"' => {
                quote = Quote::Double;
                None
            }
            '|' => Some("a pipe (|)"),
            '&' => Some("a control operator (&)"),
            ';' => Some("a command separator (;)"),
            '<' | '>' => Some("a redirection (< or >)"),
            '(' | ')' => Some("a subshell (parentheses)"),
            '`' => Some("a command substitution (`)"),
            '$' => Some("an expansion ($)"),
            '\n' | '\r' => Some("a line break"),
            '#' if word_start => Some("a comment (#)"),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
        word_start = c.is_whitespace();
    }
    None
}

/// Splits `line` into an argv with shell quoting rules (no expansion of any kind).
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let argv = shell_words::split(line).map_err(|e| format!("cannot split the command line: {e}"))?;
    if argv.is_empty() {
        return Err("empty command line".into());
    }
    Ok(argv)
}

/// The directories scripts may live in: the work directory and the granted roots (relative
/// roots are taken from the work directory), each with links resolved. Missing roots are left out.
fn script_roots(workdir: &Path, grants: &Grants) -> Vec<PathBuf> {
    std::iter::once(workdir.to_owned())
        .chain(grants.script_roots.iter().map(|r| workdir.join(r)))
        .filter_map(|r| r.canonicalize().ok())
        .collect()
}

/// Resolves `script` (relative to `workdir`) to the file it names, following `..` and links,
/// and checks that it lies inside the script roots.
pub fn jail(workdir: &Path, grants: &Grants, script: &str) -> Result<PathBuf, String> {
    let resolved = workdir.join(script).canonicalize().map_err(|_| format!("script {script:?} does not exist"))?;
    if !resolved.is_file() {
        return Err(format!("script {script:?} is not a file"));
    }
    if script_roots(workdir, grants).iter().any(|root| resolved.starts_with(root)) {
        Ok(resolved)
    } else {
        Err(format!(
            "script {script:?} is outside the work directory {} and the plugin's script_roots",
            workdir.display()
        ))
    }
}

/// Whether `path` may be used as a script: with a granted shell, whether it exists at all
/// (RuQi 1.x's check); otherwise, whether it is a file inside the script roots.
pub fn script_exists(workdir: &Path, grants: &Grants, path: &str) -> bool {
    match grants.shell {
        Some(_) => workdir.join(path).exists(),
        None => jail(workdir, grants, path).is_ok(),
    }
}

/// Checks `line` against the grants and runs it (see the module doc).
pub async fn run(
    plugin: &str,
    grants: &Grants,
    workdir: &Path,
    line: &str,
    control: Option<&RunControl>,
) -> Result<CommandOutput, String> {
    let timeout = Duration::from_secs(grants.command_timeout_secs);
    let (program, args) = match &grants.shell {
        Some(shell) => {
            let first = line.split_whitespace().next().unwrap_or_default();
            if !grants.allows_program(first) {
                return Err(format!("program {first:?} is not granted to plugin {plugin}"));
            }
            (shell.clone(), vec!["-c".to_owned(), line.to_owned()])
        }
        None => {
            if let Some(syntax) = shell_syntax(line) {
                return Err(format!(
                    "{syntax} in the command line: commands run without a shell (granting `shell` to plugin \
                     {plugin} restores RuQi 1.x's shell)"
                ));
            }
            let mut argv = split(line)?;
            if !grants.allows_program(&argv[0]) {
                return Err(format!("program {:?} is not granted to plugin {plugin}", argv[0]));
            }
            let Some(script) = argv.get(1) else {
                return Err(format!("no script given to {}", argv[0]));
            };
            argv[1] = jail(workdir, grants, script)?.to_string_lossy().into_owned();
            let program = argv.remove(0);
            (program, argv)
        }
    };
    spawn(&program, &args, workdir, timeout, grants.output_limit, control).await
}

/// Kills a process group when dropped, unless disarmed (its leader was seen to exit).
struct GroupKiller(Option<Pid>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Runs `program args…` in `workdir`, in its own process group; stdout and stderr go to one
/// pipe so their order is kept. On timeout, or when this future is dropped before the program
/// exits, the whole group is killed. With a run's `control`, the command gets the run's
/// environment, what it prints goes to the run's live output as it comes, and a stop of the run
/// sends the whole group SIGTERM and, after the run's kill grace, SIGKILL (background children
/// included).
async fn spawn(
    program: &str,
    args: &[String],
    workdir: &Path,
    timeout: Duration,
    limit: usize,
    control: Option<&RunControl>,
) -> Result<CommandOutput, String> {
    let (reader, writer) = nix::unistd::pipe().map_err(|e| format!("cannot create pipe: {e}"))?;
    let writer2: OwnedFd = writer.try_clone().map_err(|e| format!("cannot dup pipe: {e}"))?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer2))
        .process_group(0)
        .kill_on_drop(true);
    if let Some(c) = control {
        command.envs(c.env());
    }
    let mut child = command.spawn().map_err(|e| format!("cannot start {program}: {e}"))?;
    // The builder holds this process's copies of the pipe's write end: closed now, so the read
    // end sees EOF as soon as the command (and whatever it left running) is done writing.
    drop(command);
    let _running = control.map(RunControl::command_started);
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    let mut killer = GroupKiller(pgid);
    let mut pipe =
        tokio::net::unix::pipe::Receiver::from_owned_fd(reader).map_err(|e| format!("cannot read pipe: {e}"))?;

    let mut kept = Vec::with_capacity(limit.min(64 * 1024));
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + timeout;
    let mut status = None;
    let mut eof = false;
    let mut timed_out = false;
    // Read until EOF and exit; after the program exits, background children that keep the
    // pipe open get a short grace, then we stop reading (they are left running, as with RuQi,
    // unless the run was stopped: then the whole group goes).
    let mut drain_until: Option<tokio::time::Instant> = None;
    // Set when the run is stopped: SIGTERM was sent, SIGKILL is due then.
    let mut kill_at: Option<tokio::time::Instant> = None;
    let stop = async {
        match control {
            Some(c) => c.stopped().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop);
    while !(eof && status.is_some()) {
        let until = [Some(deadline), drain_until, kill_at].into_iter().flatten().min().unwrap_or(deadline);
        tokio::select! {
            n = pipe.read(&mut buf), if !eof => match n {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => {
                    let room = limit.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    if let Some(c) = control {
                        c.append(&buf[..n]);
                    }
                }
            },
            s = child.wait(), if status.is_none() => {
                status = Some(s.map_err(|e| format!("wait failed: {e}"))?);
                killer.0 = None;
                drain_until = Some(tokio::time::Instant::now() + Duration::from_millis(500));
            },
            _ = &mut stop, if kill_at.is_none() => {
                let grace = control.map_or(Duration::ZERO, RunControl::kill_grace);
                if let Some(pgid) = pgid {
                    let _ = killpg(pgid, Signal::SIGTERM);
                }
                kill_at = Some(tokio::time::Instant::now() + grace);
                drain_until = None;
            },
            _ = tokio::time::sleep_until(until) => {
                if kill_at.is_some_and(|k| k <= tokio::time::Instant::now()) {
                    if let Some(pgid) = pgid {
                        let _ = killpg(pgid, Signal::SIGKILL);
                    }
                    if status.is_none() {
                        status = Some(child.wait().await.map_err(|e| format!("wait failed: {e}"))?);
                    }
                    break;
                }
                if drain_until.is_some_and(|d| d <= tokio::time::Instant::now()) && status.is_some() {
                    break;
                }
                if status.is_none() {
                    timed_out = true;
                    drop(std::mem::replace(&mut killer, GroupKiller(None)));
                    status = Some(child.wait().await.map_err(|e| format!("wait failed: {e}"))?);
                }
                break;
            }
        }
    }
    if let (Some(at), Some(pgid)) = (kill_at, pgid) {
        // Stopped, and the leader is gone: what is left of its group (a child that ignores
        // SIGTERM) is killed when the grace ends, whether or not anyone still waits.
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let _ = killpg(pgid, Signal::SIGKILL);
        });
    }
    let status = status.expect("loop ends with a status");
    let mut output = String::from_utf8_lossy(&kept).into_owned();
    let trimmed = output.trim_end_matches('\n').len();
    output.truncate(trimmed);
    if timed_out {
        output = if output.is_empty() { "exe timeout".into() } else { format!("{output}\nexe timeout") };
    }
    Ok(CommandOutput { exit_code: if timed_out { None } else { status.code() }, output, timed_out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_syntax_outside_quotes_is_found() {
        let refused = [
            ("bash x.sh | sh", "pipe"),
            ("bash x.sh $(id)", "expansion"),
            ("bash x.sh `id`", "substitution"),
            ("bash x.sh > /tmp/x", "redirection"),
            ("bash x.sh < /etc/passwd", "redirection"),
            ("bash x.sh &", "control"),
            ("bash x.sh && id", "control"),
            ("bash x.sh; id", "separator"),
            ("bash x.sh\nid", "line break"),
            ("bash x.sh \"$HOME\"", "expansion"),
            ("bash x.sh \"`id`\"", "substitution"),
            ("bash x.sh (id)", "subshell"),
            ("bash x.sh #c", "comment"),
        ];
        for (line, what) in refused {
            let found = shell_syntax(line).unwrap_or_else(|| panic!("{line:?} passed"));
            assert!(found.contains(what), "{line:?}: {found}");
        }
        for line in [
            "bash x.sh a b",
            "python x.py 'a | b' \"c > d\" 'e$f' a\\|b",
            "bash x.sh a#b 'it''s'",
            "bash scripts/test.sh 你好",
        ] {
            assert_eq!(shell_syntax(line), None, "{line:?}");
        }
    }

    #[test]
    fn split_follows_shell_quoting() {
        assert_eq!(split("python x.py 'a b' \"c d\" e\\ f").unwrap(), ["python", "x.py", "a b", "c d", "e f"]);
        assert!(split("bash 'x.sh").is_err());
        assert!(split("   ").is_err());
    }

    #[test]
    fn scripts_are_jailed_to_the_roots() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let other = dir.path().join("other");
        std::fs::create_dir_all(work.join("scripts")).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(work.join("scripts/ok.sh"), "echo ok").unwrap();
        std::fs::write(other.join("x.sh"), "echo x").unwrap();
        std::os::unix::fs::symlink(other.join("x.sh"), work.join("scripts/link.sh")).unwrap();
        let work = work.canonicalize().unwrap();
        let g = Grants::default();
        assert!(jail(&work, &g, "scripts/ok.sh").is_ok());
        assert!(jail(&work, &g, "./scripts/../scripts/ok.sh").is_ok());
        for (bad, why) in [
            ("../other/x.sh", "outside"),
            (other.join("x.sh").to_str().unwrap(), "outside"),
            ("scripts/link.sh", "outside"),
            ("scripts/none.sh", "does not exist"),
            ("scripts", "not a file"),
        ] {
            let e = jail(&work, &g, bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let g = Grants { script_roots: vec![other.clone()], ..Grants::default() };
        assert!(jail(&work, &g, "scripts/link.sh").is_ok());
        assert!(jail(&work, &g, "../other/x.sh").is_ok());
        assert!(script_exists(&work, &Grants { shell: Some("/bin/sh".into()), ..Grants::default() }, "../other/x.sh"));
        assert!(!script_exists(&work, &Grants::default(), "../other/x.sh"));
    }
}
