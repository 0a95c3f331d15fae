//! Capability grants and limits per plugin, read from `plugins/<name>.toml` beside
//! `<name>.wasm`. An absent file means the plugin's safe defaults (only the built-in plugins
//! have any); an absent key means nothing of that kind is granted.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::PluginError;

/// Default guest memory limit.
pub const DEFAULT_MEMORY_MB: u64 = 64;
/// Default limit on guest compute time per run (time spent in host calls does not count).
pub const DEFAULT_CPU_SECS: u64 = 30;
/// Default limit on one command run through `run-command` (RuQi's 3600 s).
pub const DEFAULT_COMMAND_TIMEOUT_SECS: u64 = 3600;
/// Default wall-clock limit of one run: a command's limit plus a minute for the plugin itself.
pub const DEFAULT_TIMEOUT_SECS: u64 = DEFAULT_COMMAND_TIMEOUT_SECS + 60;
/// Default bytes of output kept from a command or a plugin.
pub const DEFAULT_OUTPUT_LIMIT: usize = 64 * 1024;

/// What the operator grants one plugin. Field names are the toml keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// Programs `run-command` may start (the first word of the command line).
    pub programs: Vec<String>,
    /// The shell that runs granted command lines.
    pub shell: String,
    /// Hosts the plugin may send HTTP requests to (`*` = any).
    pub hosts: Vec<String>,
    /// `host:port` addresses the plugin may open TCP connections to.
    pub sockets: Vec<String>,
    /// Values the plugin reads with `config(key)`.
    pub config: BTreeMap<String, String>,
    /// Guest memory limit in MiB.
    pub memory_mb: u64,
    /// Guest compute time limit per run, in seconds.
    pub cpu_secs: u64,
    /// Time limit of one `run-command`, in seconds (the whole process group is killed).
    pub command_timeout_secs: u64,
    /// Wall-clock limit of one run (or one validation), in seconds, whatever it waits on.
    pub timeout_secs: u64,
    /// Bytes of output kept.
    pub output_limit: usize,
}

impl Default for Grants {
    fn default() -> Self {
        Self {
            programs: Vec::new(),
            shell: "/bin/sh".into(),
            hosts: Vec::new(),
            sockets: Vec::new(),
            config: BTreeMap::new(),
            memory_mb: DEFAULT_MEMORY_MB,
            cpu_secs: DEFAULT_CPU_SECS,
            command_timeout_secs: DEFAULT_COMMAND_TIMEOUT_SECS,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            output_limit: DEFAULT_OUTPUT_LIMIT,
        }
    }
}

impl Grants {
    /// Whether an HTTP request to `host` is granted (`*` grants any host; names compare
    /// case-insensitively).
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.hosts.iter().any(|h| h == "*" || h.eq_ignore_ascii_case(host))
    }

    /// The safe defaults of a built-in plugin, by file stem; nothing for any other plugin.
    pub fn defaults_for(name: &str) -> Self {
        let mut g = Self::default();
        match name {
            "shell-bridge" => g.programs = vec!["bash".into(), "python".into()],
            "http-post" => {
                g.hosts = vec!["*".into()];
                // RuQi's 90 s request timeout, with room for redirects.
                g.cpu_secs = 120;
                g.timeout_secs = 120;
            }
            "baichuan" => {
                g.sockets = vec!["127.0.0.1:6379".into()];
                g.config.insert("redis_url".into(), "redis://127.0.0.1:6379/0".into());
                g.timeout_secs = 30;
            }
            _ => {}
        }
        g
    }

    /// Reads `<dir>/<stem>.toml` if present, else the defaults for `stem`.
    pub fn load(dir: &Path, stem: &str) -> Result<Self, PluginError> {
        let path = dir.join(format!("{stem}.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| PluginError::Grants { path: path.display().to_string(), reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::defaults_for(stem)),
            Err(e) => Err(PluginError::Grants { path: path.display().to_string(), reason: e.to_string() }),
        }
    }

    /// Whether `program` (a command line's first word) is granted.
    pub fn allows_program(&self, program: &str) -> bool {
        self.programs.iter().any(|p| p == program)
    }

    /// One line for `ruqi plugin list`.
    pub fn summary(&self) -> String {
        let list = |v: &[String]| if v.is_empty() { "-".to_owned() } else { v.join(",") };
        format!(
            "programs={} hosts={} sockets={} config={} memory={}MiB cpu={}s timeout={}s command_timeout={}s output={}B",
            list(&self.programs),
            list(&self.hosts),
            list(&self.sockets),
            if self.config.is_empty() {
                "-".to_owned()
            } else {
                self.config.keys().cloned().collect::<Vec<_>>().join(",")
            },
            self.memory_mb,
            self.cpu_secs,
            self.timeout_secs,
            self.command_timeout_secs,
            self.output_limit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Grants::load(dir.path(), "shell-bridge").unwrap().allows_program("bash"));
        assert!(Grants::load(dir.path(), "other").unwrap().programs.is_empty());
        std::fs::write(dir.path().join("shell-bridge.toml"), "programs = [\"bash\"]\nmemory_mb = 16\n").unwrap();
        let g = Grants::load(dir.path(), "shell-bridge").unwrap();
        assert!(g.allows_program("bash") && !g.allows_program("python"));
        assert_eq!(g.memory_mb, 16);
        std::fs::write(dir.path().join("x.toml"), "programz = []\n").unwrap();
        assert!(Grants::load(dir.path(), "x").unwrap_err().to_string().contains("unknown field"));
    }
}
