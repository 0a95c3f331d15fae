//! shell-bridge: runs RuQi's script cmds (`bash scripts/x.sh`, `python x.py a b`).
//!
//! Validation is RuQi's `_check_cmd`, with its reason text, plus what running without a shell
//! requires: a cmd is split into words with shell quoting rules and run as an argv, so shell
//! syntax (pipes, redirections, substitutions) is refused at add time with a reason instead of
//! being passed on as words, and the script must be a file inside the host's work directory
//! (or the script roots the operator granted). When the operator grants shell-bridge a
//! `shell`, RuQi 1.x's behaviour is back: the whole line goes to that shell.
//!
//! A WASI component cannot spawn processes, so execution goes through the host's
//! `run-command` capability, which enforces the same rules again and runs only the programs
//! the operator granted. It also serves the empty prefix: every cmd that no other plugin
//! claims is a script to RuQi, and is refused here with RuQi's reason.
//!
//! Params (a run started by hand with `job_run?params=`) are more arguments: they are split
//! into words with the same POSIX quoting rules as the cmd and under the same rules (no shell
//! syntax), then each word is quoted and appended to the cmd, so with a granted `shell` too a
//! param is one argument and never shell code. Params that cannot be split (an unbalanced
//! quote) or that hold shell syntax fail the run with the reason.

use ruqi_plugin_sdk::{Executor, PluginInfo, RunOutcome, RunRequest, host};

/// RuQi's reason for a script cmd it refuses.
const REASON: &str = "(scripts) Cmd does not meet expectations";

struct ShellBridge;

/// The first piece of shell syntax in `line` that only a shell would interpret, described
/// for a reason text; `None` when the line is plain words (quotes and backslashes allowed).
fn shell_syntax(line: &str) -> Option<&'static str> {
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

/// The words of `cmd` as the host will run them, or the reason it cannot be run.
fn words(cmd: &str, shell: bool) -> Result<Vec<String>, String> {
    if shell {
        return Ok(cmd.split_whitespace().map(str::to_owned).collect());
    }
    if let Some(syntax) = shell_syntax(cmd) {
        return Err(format!("{REASON}: {syntax} needs a shell, and script cmds run without one"));
    }
    shell_words::split(cmd).map_err(|e| format!("{REASON}: cannot split the cmd into words: {e}"))
}

/// `cmd` with the words of `params` appended as more arguments, each quoted so that it stays
/// one word whether the line is split by the host or given to a shell; or why it cannot be.
fn with_params(cmd: &str, params: Option<&str>) -> Result<String, String> {
    let Some(params) = params else {
        return Ok(cmd.to_owned());
    };
    if let Some(syntax) = shell_syntax(params) {
        return Err(format!("params refused: {syntax} is shell syntax; params are plain arguments"));
    }
    let words = shell_words::split(params).map_err(|e| format!("params refused: cannot split them into words: {e}"))?;
    let mut line = cmd.to_owned();
    for word in &words {
        line.push(' ');
        line.push_str(&shell_words::quote(word));
    }
    Ok(line)
}

impl Executor for ShellBridge {
    fn describe() -> PluginInfo {
        PluginInfo::new("shell-bridge", env!("CARGO_PKG_VERSION"), &["bash", "python", ""])
    }

    fn validate(cmd: String) -> Result<(), String> {
        if cmd.contains(';') || cmd.contains("&&") || cmd.contains("||") {
            return Err(REASON.into());
        }
        let shell = host::config("shell").is_some();
        let tokens = words(&cmd, shell)?;
        if tokens.len() < 2 || !matches!(tokens[0].as_str(), "bash" | "python") {
            return Err(REASON.into());
        }
        let script = tokens[1].as_str();
        if !host::path_exists(script) {
            let escapes = script.starts_with('/') || script.split('/').any(|part| part == "..");
            if escapes && !shell {
                return Err(format!("{REASON}: script {script} is outside the work directory and the script roots"));
            }
            return Err(REASON.into());
        }
        Ok(())
    }

    fn execute(run: RunRequest) -> Result<RunOutcome, String> {
        let line = with_params(&run.cmd, run.params.as_deref())?;
        let out = host::run_command(&line)?;
        Ok(RunOutcome { success: out.exit_code == Some(0), output: out.output })
    }
}

ruqi_plugin_sdk::export_plugin!(ShellBridge);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_quoted_arguments() {
        let cases = [
            (None, Ok("bash a.sh x")),
            (Some(""), Ok("bash a.sh x")),
            (Some("b c"), Ok("bash a.sh x b c")),
            (Some("'two words' \"it's\""), Ok("bash a.sh x 'two words' 'it'\\''s'")),
            (Some("'$HOME'"), Ok("bash a.sh x '$HOME'")),
            (
                Some("a; rm -rf /"),
                Err("params refused: a command separator (;) is shell syntax; params are plain arguments"),
            ),
            (Some("$(id)"), Err("params refused: an expansion ($) is shell syntax; params are plain arguments")),
            (Some("'open"), Err("params refused: cannot split them into words: missing closing quote")),
        ];
        for (params, want) in cases {
            let got = with_params("bash a.sh x", params);
            assert_eq!(got.as_deref(), want.map_err(str::to_owned).as_deref(), "{params:?}");
        }
    }
}
