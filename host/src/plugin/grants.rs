//! Capability grants and limits per plugin, read from `plugins/<name>.toml` beside
//! `<name>.wasm`. An absent file means the plugin's safe defaults (only the built-in plugins
//! have any); an absent key means nothing of that kind is granted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
/// Default bytes of output kept from a command or a plugin (and of any other string a plugin
/// hands the host: a declared error, a log line), unless the node gives its own run output
/// limit (`--run-output-limit`, 1 MiB by default), which a plugin's default then follows.
pub const DEFAULT_OUTPUT_LIMIT: usize = 64 * 1024;
/// Default wall-clock limit of one `validate` call (it holds an API request).
pub const DEFAULT_VALIDATE_TIMEOUT_SECS: u64 = 5;

/// What the operator grants one plugin. Field names are the toml keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// Programs `run-command` may start (`argv[0]` of the command line).
    pub programs: Vec<String>,
    /// Folders besides the work directory where the scripts run by `run-command` may live
    /// (relative ones are taken from the work directory).
    pub script_roots: Vec<PathBuf>,
    /// A shell that runs whole command lines (`shell -c LINE`), as RuQi 1.x did. Off by
    /// default: granting it lets a cmd use pipes, redirections and substitutions, and lifts the
    /// script roots; anyone who can add a job can then run anything this service's user can.
    pub shell: Option<String>,
    /// HTTP origins the plugin may send requests to: `host` (the scheme's default port),
    /// `host:port`, `host:*` (any port), or `*` (anywhere).
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
    /// Wall-clock limit of one run, in seconds, whatever it waits on.
    pub timeout_secs: u64,
    /// Wall-clock limit of one `validate` call at job_add/job_modify, in seconds (its compute
    /// time is bounded by the smaller of this and `cpu_secs`).
    pub validate_timeout_secs: u64,
    /// Bytes of output kept.
    pub output_limit: usize,
    /// Whether the grants file set `output_limit` (else the node's run output limit applies).
    #[serde(skip)]
    pub output_limit_given: bool,
}

impl Default for Grants {
    fn default() -> Self {
        Self {
            programs: Vec::new(),
            script_roots: Vec::new(),
            shell: None,
            hosts: Vec::new(),
            sockets: Vec::new(),
            config: BTreeMap::new(),
            memory_mb: DEFAULT_MEMORY_MB,
            cpu_secs: DEFAULT_CPU_SECS,
            command_timeout_secs: DEFAULT_COMMAND_TIMEOUT_SECS,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            validate_timeout_secs: DEFAULT_VALIDATE_TIMEOUT_SECS,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            output_limit_given: false,
        }
    }
}

impl Grants {
    /// Whether a TCP connection to `addr` is granted: it is one of `sockets`, as written
    /// (`127.0.0.1:6379`, `[::1]:6379`).
    pub fn allows_socket(&self, addr: &std::net::SocketAddr) -> bool {
        let addr = addr.to_string();
        self.sockets.contains(&addr)
    }

    /// Whether an HTTP request to `host:port` is granted. Names compare case-insensitively;
    /// an entry without a port grants only `default_port` (80 for http, 443 for https).
    pub fn allows_origin(&self, host: &str, port: u16, default_port: u16) -> bool {
        let bare = |h: &str| h.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let host = bare(host);
        self.hosts.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            // `[v6]:port`, `name:port`, `name:*`; a bare IPv6 address has several colons.
            let (h, p) = match entry.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, Some(p)),
                _ => (entry.as_str(), None),
            };
            let port_ok = match p {
                None => port == default_port,
                Some("*") => true,
                Some(p) => p.parse::<u16>() == Ok(port),
            };
            port_ok && bare(h) == host
        })
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

    /// These grants, with `limit` as the output limit unless the grants file set one (an
    /// operator may grant a plugin less, or more, than the node's run output limit).
    pub fn with_default_output_limit(mut self, limit: usize) -> Self {
        if !self.output_limit_given {
            self.output_limit = limit;
        }
        self
    }

    /// Reads `<dir>/<stem>.toml` if present, else the defaults for `stem`.
    pub fn load(dir: &Path, stem: &str) -> Result<Self, PluginError> {
        let path = dir.join(format!("{stem}.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str::<Self>(&text)
                .map(|mut g| {
                    g.output_limit_given = text.parse::<toml::Table>().is_ok_and(|t| t.contains_key("output_limit"));
                    g
                })
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
            "programs={} script_roots={} shell={} hosts={} sockets={} config={} memory={}MiB cpu={}s timeout={}s \
             validate_timeout={}s command_timeout={}s output={}B",
            list(&self.programs),
            if self.script_roots.is_empty() {
                "-".to_owned()
            } else {
                self.script_roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(",")
            },
            self.shell.as_deref().unwrap_or("-"),
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
            self.validate_timeout_secs,
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
        let g = Grants::load(dir.path(), "shell-bridge").unwrap();
        assert_eq!((g.shell, g.validate_timeout_secs), (None, DEFAULT_VALIDATE_TIMEOUT_SECS), "no shell by default");
        assert!(Grants::load(dir.path(), "x").unwrap_err().to_string().contains("unknown field"));
    }

    #[test]
    fn hosts_are_granted_with_their_port() {
        let g = Grants {
            hosts: ["Example.org", "127.0.0.1:8080", "localhost:*", "[::1]:9000"].map(String::from).to_vec(),
            ..Grants::default()
        };
        let cases = [
            ("example.org", 80, 80, true),
            ("EXAMPLE.ORG", 443, 443, true),
            ("example.org", 8080, 80, false),
            ("127.0.0.1", 8080, 80, true),
            ("127.0.0.1", 8081, 80, false),
            ("127.0.0.1", 80, 80, false),
            ("localhost", 1234, 80, true),
            ("[::1]", 9000, 80, true),
            ("::1", 9001, 80, false),
            ("evil.org", 80, 80, false),
        ];
        for (host, port, default, want) in cases {
            assert_eq!(g.allows_origin(host, port, default), want, "{host}:{port}");
        }
        let any = Grants { hosts: vec!["*".into()], ..Grants::default() };
        assert!(any.allows_origin("anything", 1, 80));
        assert!(!Grants::default().allows_origin("127.0.0.1", 80, 80));
    }
}
