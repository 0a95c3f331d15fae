//! Settings: each one a flag, an environment variable (`RUQI_*`) and a key of an optional
//! TOML file (`--config` / `RUQI_CONFIG`); flag and env win over the file, the file over the
//! default. Validated once into [`Settings`]; a bad value is a one-line error naming it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use clap::Args;
use serde::Deserialize;

/// A setting that cannot be used. `Display` names it.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    /// The flag/key name.
    pub setting: &'static str,
    /// What is wrong.
    pub reason: String,
}

fn bad(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { setting, reason: reason.into() }
}

/// The settings as flags and environment variables (all optional: the file and defaults fill in).
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys as the flag names, `-` or `_`).
    #[arg(long, env = "RUQI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to serve RuQi's HTTP API on [default: 127.0.0.1:8585].
    #[arg(long, env = "RUQI_LISTEN")]
    pub listen: Option<String>,
    /// Store: sqlite://PATH, mysql://user:pass@host:port/db (shared by several nodes), memory
    /// [default: sqlite://ruqi.db].
    #[arg(long, env = "RUQI_STORE")]
    pub store: Option<String>,
    /// Folder whose *.wasm files are the executor plugins [default: plugins].
    #[arg(long, env = "RUQI_PLUGINS")]
    pub plugins: Option<PathBuf>,
    /// Folder of business calendars (NAME.toml) jobs may name [default: calendars beside the
    /// plugins folder].
    #[arg(long, env = "RUQI_CALENDARS")]
    pub calendars: Option<PathBuf>,
    /// Where script cmds are resolved and run [default: the current directory].
    #[arg(long, env = "RUQI_WORKDIR")]
    pub workdir: Option<PathBuf>,
    /// Comma-separated bearer tokens that may call every route; none (and no other tokens) =
    /// authentication off.
    #[arg(long, env = "RUQI_TOKENS")]
    pub tokens: Option<String>,
    /// Comma-separated bearer tokens that may only read (show, list, history, status).
    #[arg(long, env = "RUQI_READ_TOKENS")]
    pub read_tokens: Option<String>,
    /// File of bearer tokens, one per line: `TOKEN` (every route) or `TOKEN read-only`; blank
    /// lines and `#` comments are skipped. Added to --tokens / --read-tokens.
    #[arg(long, env = "RUQI_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Largest request body read, in bytes; a larger one is refused with ERR_BAD_PARAMS
    /// [default: 1048576].
    #[arg(long, env = "RUQI_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// IANA zone rules are read in and times shown in [default: the system's zone].
    #[arg(long, env = "RUQI_TIMEZONE")]
    pub timezone: Option<String>,
    /// Runs executing at once on this node [default: 20].
    #[arg(long, env = "RUQI_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Seconds a run may start late before it is skipped as missed [default: 30].
    #[arg(long, env = "RUQI_MISFIRE_GRACE")]
    pub misfire_grace: Option<u64>,
    /// Seconds a claim on a running job lasts without renewal [default: 10].
    #[arg(long, env = "RUQI_LEASE")]
    pub lease: Option<u64>,
    /// Milliseconds between looks at a store shared with other nodes, bounding how late a change
    /// made through another node is seen [default: 500 for mysql, off otherwise].
    #[arg(long, env = "RUQI_POLL_INTERVAL_MS")]
    pub poll_interval_ms: Option<u64>,
    /// Do not apply the store's migrations at start (run `ruqi migrate` first).
    #[arg(long, env = "RUQI_NO_MIGRATE")]
    pub no_migrate: bool,
    /// Seconds to let running runs finish on shutdown [default: 30].
    #[arg(long, env = "RUQI_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<u64>,
    /// Bytes of each run's whole output kept (`run_show`, `run_output`); history rows keep
    /// RuQi's 4,096-character summary [default: 1048576].
    #[arg(long, env = "RUQI_RUN_OUTPUT_LIMIT")]
    pub run_output_limit: Option<usize>,
    /// Seconds a stopped run's command gets between SIGTERM and SIGKILL, unless its job sets
    /// `kill_grace` [default: 5].
    #[arg(long, env = "RUQI_KILL_GRACE")]
    pub kill_grace: Option<u64>,
    /// Alert targets of the jobs that name none, comma-separated cmds served by plugins
    /// (`dingtalk:ops,http://hooks.example/ruqi`) [default: none].
    #[arg(long, env = "RUQI_ALERT")]
    pub alert: Option<String>,
    /// What those jobs are alerted of, comma-separated (failure, timeout, killed, recovery,
    /// missed, deadline, paused) [default: failure,timeout,recovery,deadline,paused].
    #[arg(long, env = "RUQI_ALERT_ON")]
    pub alert_on: Option<String>,
    /// The dashboard's address as users reach it (`https://ruqi.example.com`), for links in
    /// alerts [default: none, no links].
    #[arg(long, env = "RUQI_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The language of alert texts: `en` or `zh` [default: en].
    #[arg(long, env = "RUQI_ALERT_LANG")]
    pub alert_lang: Option<String>,
}

/// The TOML file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    #[serde(alias = "listen")]
    listen: Option<String>,
    store: Option<String>,
    plugins: Option<PathBuf>,
    calendars: Option<PathBuf>,
    workdir: Option<PathBuf>,
    tokens: Option<Vec<String>>,
    #[serde(alias = "read_tokens")]
    read_tokens: Option<Vec<String>>,
    #[serde(alias = "tokens_file")]
    tokens_file: Option<PathBuf>,
    #[serde(alias = "max_body_bytes")]
    max_body_bytes: Option<usize>,
    timezone: Option<String>,
    concurrency: Option<usize>,
    #[serde(alias = "misfire_grace")]
    misfire_grace: Option<u64>,
    lease: Option<u64>,
    #[serde(alias = "poll_interval_ms")]
    poll_interval_ms: Option<u64>,
    #[serde(alias = "shutdown_grace")]
    shutdown_grace: Option<u64>,
    #[serde(alias = "no_migrate")]
    no_migrate: Option<bool>,
    #[serde(alias = "run_output_limit")]
    run_output_limit: Option<usize>,
    #[serde(alias = "kill_grace")]
    kill_grace: Option<u64>,
    alert: Option<Vec<String>>,
    #[serde(alias = "alert_on")]
    alert_on: Option<Vec<String>>,
    #[serde(alias = "public_url")]
    public_url: Option<String>,
    #[serde(alias = "alert_lang")]
    alert_lang: Option<String>,
}

/// Default bytes of a run's whole output kept.
pub const DEFAULT_RUN_OUTPUT_LIMIT: usize = 1024 * 1024;
/// Largest `--run-output-limit` (a MySQL `MEDIUMBLOB` holds 16 MiB).
pub const MAX_RUN_OUTPUT_LIMIT: usize = 16 * 1024 * 1024 - 1;
/// Default seconds between SIGTERM and SIGKILL when a run is stopped.
pub const DEFAULT_KILL_GRACE_SECS: u64 = 5;
/// Largest kill grace, node-wide or per job.
pub const MAX_KILL_GRACE_SECS: u64 = 3600;

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Store URL.
    pub store: String,
    /// Plugins folder.
    pub plugins: PathBuf,
    /// Calendars folder (may be missing: no calendars).
    pub calendars: PathBuf,
    /// Work directory for scripts.
    pub workdir: PathBuf,
    /// Bearer tokens (full access and read-only).
    pub tokens: crate::api::Tokens,
    /// Largest request body read, in bytes.
    pub max_body_bytes: usize,
    /// Zone.
    pub timezone: Tz,
    /// Concurrent runs.
    pub concurrency: usize,
    /// Misfire grace.
    pub misfire_grace: Duration,
    /// Claim lease.
    pub lease: Duration,
    /// Cross-node poll interval.
    pub poll_interval: Option<Duration>,
    /// Shutdown grace.
    pub shutdown_grace: Duration,
    /// Apply the store's migrations at start.
    pub migrate: bool,
    /// Bytes of each run's whole output kept.
    pub run_output_limit: usize,
    /// Time a stopped run's command gets between SIGTERM and SIGKILL (unless its job sets one).
    pub kill_grace: Duration,
    /// Alert defaults, links and language.
    pub alerts: crate::followup::AlertSettings,
}

/// Default largest request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// Splits a comma-separated token list.
fn token_list(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

/// Reads a tokens file: `TOKEN` or `TOKEN read-only` per line, `#` comments.
fn tokens_file(path: &Path, into: &mut crate::api::Tokens) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| bad("tokens-file", format!("{}: {e}", path.display())))?;
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let mut words = line.split_whitespace();
        let Some(token) = words.next() else { continue };
        let (mut read_only, mut name) = (false, None);
        for word in words {
            match word {
                "read-only" if !read_only && name.is_none() => read_only = true,
                w if w.starts_with("name=") && w.len() > 5 && name.is_none() => name = Some(w[5..].to_owned()),
                _ => {
                    return Err(bad(
                        "tokens-file",
                        format!(
                            "{} line {}: expected `TOKEN`, `TOKEN read-only` or either with `name=NAME`",
                            path.display(),
                            n + 1
                        ),
                    ));
                }
            }
        }
        if read_only {
            into.read_only.push(token.to_owned())
        } else {
            into.full.push(token.to_owned())
        }
        if let Some(name) = name {
            into.names.push((token.to_owned(), name));
        }
    }
    Ok(())
}

/// Default poll interval for a store shared by several nodes.
pub const DEFAULT_SHARED_POLL_MS: u64 = 500;

/// The system's zone, or UTC when it cannot be told.
fn system_zone() -> Tz {
    iana_time_zone::get_timezone().ok().and_then(|n| n.parse().ok()).unwrap_or(chrono_tz::UTC)
}

impl ServeArgs {
    fn file(&self) -> Result<FileConfig, ConfigError> {
        match &self.config {
            None => Ok(FileConfig::default()),
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| bad("config", format!("{}: {e}", path.display())))?;
                toml::from_str(&text).map_err(|e| bad("config", format!("{}: {}", path.display(), e.message())))
            }
        }
    }

    /// Only the store url (flag, env or file), validated: what `ruqi migrate` needs.
    pub fn store_url(&self) -> Result<String, ConfigError> {
        self.store_from(&self.file()?)
    }

    fn store_from(&self, file: &FileConfig) -> Result<String, ConfigError> {
        let store = self.store.clone().or_else(|| file.store.clone()).unwrap_or_else(|| "sqlite://ruqi.db".into());
        if !crate::store::url_is_known(&store) {
            return Err(bad(
                "store",
                format!(
                    "{}: expected sqlite://PATH, mysql://user:pass@host:port/db or memory",
                    crate::store::redact_url(&store)
                ),
            ));
        }
        Ok(store)
    }

    /// Only the store url and the zone (flag, env or file), validated: what `ruqi migrate` needs
    /// (the zone is the one RuQi 1.x rows' local times are read in).
    pub fn store_and_zone(&self) -> Result<(String, Tz), ConfigError> {
        let file = self.file()?;
        Ok((self.store_from(&file)?, self.zone_from(&file)?))
    }

    fn zone_from(&self, file: &FileConfig) -> Result<Tz, ConfigError> {
        match self.timezone.clone().or(file.timezone.clone()) {
            Some(name) => name.parse::<Tz>().map_err(|_| bad("timezone", format!("{name}: not an IANA zone name"))),
            None => Ok(system_zone()),
        }
    }

    /// Merges flags/env, the file and defaults, and validates.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let mut file = self.file()?;
        let alerts = self.alert_settings(&mut file)?;
        let timezone = self.zone_from(&file)?;
        let listen_raw = self.listen.clone().or_else(|| file.listen.clone()).unwrap_or_else(|| "127.0.0.1:8585".into());
        let listen: SocketAddr = listen_raw.parse().map_err(|e| bad("listen", format!("{listen_raw}: {e}")))?;
        let store = self.store_from(&file)?;
        let plugins = self.plugins.clone().or(file.plugins).unwrap_or_else(|| "plugins".into());
        if !plugins.is_dir() {
            return Err(bad("plugins", format!("{}: no such folder", plugins.display())));
        }
        let calendars = self.calendars.clone().or(file.calendars).unwrap_or_else(|| {
            plugins
                .canonicalize()
                .unwrap_or_else(|_| plugins.clone())
                .parent()
                .map_or_else(|| PathBuf::from("calendars"), |p| p.join("calendars"))
        });
        let workdir = match self.workdir.clone().or(file.workdir) {
            Some(w) => w,
            None => std::env::current_dir().map_err(|e| bad("workdir", e.to_string()))?,
        };
        if !workdir.is_dir() {
            return Err(bad("workdir", format!("{}: no such folder", workdir.display())));
        }
        let workdir = workdir.canonicalize().map_err(|e| bad("workdir", e.to_string()))?;
        let mut tokens = crate::api::Tokens {
            full: match (&self.tokens, file.tokens) {
                (Some(t), _) => token_list(t),
                (None, Some(t)) => t,
                (None, None) => Vec::new(),
            },
            read_only: match (&self.read_tokens, file.read_tokens) {
                (Some(t), _) => token_list(t),
                (None, Some(t)) => t,
                (None, None) => Vec::new(),
            },
            names: Vec::new(),
        };
        if let Some(path) = self.tokens_file.clone().or(file.tokens_file.clone()) {
            tokens_file(&path, &mut tokens)?;
        }
        if tokens.full.iter().chain(&tokens.read_only).any(|t| t.chars().any(|c| c.is_whitespace() || c.is_control())) {
            return Err(bad("tokens", "a token cannot contain blanks or control characters"));
        }
        let max_body_bytes = self.max_body_bytes.or(file.max_body_bytes).unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < 1024 {
            return Err(bad("max-body-bytes", "must be at least 1024"));
        }
        let concurrency = self.concurrency.or(file.concurrency).unwrap_or(20);
        if concurrency == 0 {
            return Err(bad("concurrency", "must be at least 1"));
        }
        let lease = self.lease.or(file.lease).unwrap_or(10);
        if lease < 3 {
            return Err(bad("lease", "must be at least 3 seconds"));
        }
        let run_output_limit = self.run_output_limit.or(file.run_output_limit).unwrap_or(DEFAULT_RUN_OUTPUT_LIMIT);
        if !(4096..=MAX_RUN_OUTPUT_LIMIT).contains(&run_output_limit) {
            return Err(bad("run-output-limit", format!("must be from 4096 to {MAX_RUN_OUTPUT_LIMIT} bytes")));
        }
        let kill_grace = self.kill_grace.or(file.kill_grace).unwrap_or(DEFAULT_KILL_GRACE_SECS);
        if kill_grace > MAX_KILL_GRACE_SECS {
            return Err(bad("kill-grace", format!("must be at most {MAX_KILL_GRACE_SECS} seconds")));
        }
        let poll = self
            .poll_interval_ms
            .or(file.poll_interval_ms)
            .or(crate::store::is_shared(&store).then_some(DEFAULT_SHARED_POLL_MS));
        if poll == Some(0) {
            return Err(bad("poll-interval-ms", "must be at least 1"));
        }
        Ok(Settings {
            alerts,
            listen,
            store,
            plugins,
            calendars,
            workdir,
            tokens,
            max_body_bytes,
            timezone,
            concurrency,
            misfire_grace: Duration::from_secs(self.misfire_grace.or(file.misfire_grace).unwrap_or(30)),
            lease: Duration::from_secs(lease),
            poll_interval: poll.map(Duration::from_millis),
            shutdown_grace: Duration::from_secs(self.shutdown_grace.or(file.shutdown_grace).unwrap_or(30)),
            migrate: !(self.no_migrate || file.no_migrate.unwrap_or(false)),
            run_output_limit,
            kill_grace: Duration::from_secs(kill_grace),
        })
    }
}

impl ServeArgs {
    /// The alert settings: flags over the file's.
    fn alert_settings(&self, file: &mut FileConfig) -> Result<crate::followup::AlertSettings, ConfigError> {
        use crate::followup::{AlertSettings, Lang};
        let list = |flag: &Option<String>, file: Option<Vec<String>>| match flag {
            Some(raw) => raw.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(),
            None => file.unwrap_or_default(),
        };
        let default_targets: Vec<String> = list(&self.alert, file.alert.take());
        let default_kinds = list(&self.alert_on, file.alert_on.take())
            .iter()
            .map(|k| {
                crate::model::AlertKind::parse(k).ok_or_else(|| {
                    bad("alert-on", format!("{k:?} is not one of {}", crate::model::AlertKind::NAMES.join(", ")))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let public_url = self.public_url.clone().or(file.public_url.take());
        if let Some(url) = &public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(bad("public-url", "must start with http:// or https://"));
        }
        let lang = match self.alert_lang.clone().or(file.alert_lang.take()) {
            None => Lang::En,
            Some(l) => Lang::parse(&l).ok_or_else(|| bad("alert-lang", "must be en or zh"))?,
        };
        Ok(AlertSettings { default_targets, default_kinds, public_url, lang })
    }
}

impl Settings {
    /// Where compiled plugins are cached.
    pub fn cache_dir(&self) -> PathBuf {
        self.plugins.join(".cache")
    }

    /// Whether the listen address reaches beyond this machine.
    pub fn exposed(&self) -> bool {
        !self.listen.ip().is_loopback()
    }
}

/// Resolves a path relative to `base` unless it is absolute.
pub fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_owned() } else { base.join(p) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        let args =
            ServeArgs { plugins: Some(plugins.clone()), timezone: Some("Asia/Shanghai".into()), ..Default::default() };
        let s = args.settings().unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8585");
        assert_eq!(s.store, "sqlite://ruqi.db");
        assert_eq!(s.timezone, chrono_tz::Asia::Shanghai);
        assert!(!s.tokens.enabled() && s.poll_interval.is_none());
        assert_eq!(s.max_body_bytes, DEFAULT_MAX_BODY_BYTES);

        let file = dir.path().join("ruqi.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\ntokens = [\"a\"]\nstore = \"memory\"\n").unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            plugins: Some(plugins.clone()),
            store: Some("sqlite://x.db".into()),
            ..Default::default()
        };
        let s = args.settings().unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.tokens.full, vec!["a".to_owned()]);
        assert_eq!(s.store, "sqlite://x.db", "flag wins over file");
        assert!(s.exposed());

        let args = ServeArgs {
            plugins: Some(plugins.clone()),
            store: Some("mysql://root@127.0.0.1:3306/test".into()),
            no_migrate: true,
            ..Default::default()
        };
        let s = args.settings().unwrap();
        assert_eq!(s.poll_interval, Some(Duration::from_millis(DEFAULT_SHARED_POLL_MS)), "shared stores are polled");
        assert!(!s.migrate);
    }

    #[test]
    fn errors_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().to_owned();
        let cases: Vec<(ServeArgs, &str)> = vec![
            (ServeArgs { listen: Some("nope".into()), plugins: Some(plugins.clone()), ..Default::default() }, "listen"),
            (
                ServeArgs { store: Some("postgres://x".into()), plugins: Some(plugins.clone()), ..Default::default() },
                "store",
            ),
            (ServeArgs { plugins: Some(dir.path().join("missing")), ..Default::default() }, "plugins"),
            (
                ServeArgs { timezone: Some("Mars/Base".into()), plugins: Some(plugins.clone()), ..Default::default() },
                "timezone",
            ),
            (ServeArgs { concurrency: Some(0), plugins: Some(plugins.clone()), ..Default::default() }, "concurrency"),
        ];
        for (args, setting) in cases {
            assert_eq!(args.settings().unwrap_err().setting, setting);
        }
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "colour = 1\n").unwrap();
        let err =
            ServeArgs { config: Some(file), plugins: Some(plugins), ..Default::default() }.settings().unwrap_err();
        assert_eq!(err.setting, "config");
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn tokens_from_flags_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().to_owned();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "# operators\nadmin-1\n\nviewer-1 read-only  # dashboards\n").unwrap();
        let args = ServeArgs {
            plugins: Some(plugins.clone()),
            tokens: Some("a, b".into()),
            read_tokens: Some("r".into()),
            tokens_file: Some(file.clone()),
            ..Default::default()
        };
        let t = args.settings().unwrap().tokens;
        assert_eq!(t.full, ["a", "b", "admin-1"]);
        assert_eq!(t.read_only, ["r", "viewer-1"]);
        std::fs::write(&file, "x writer\n").unwrap();
        let err = ServeArgs { plugins: Some(plugins.clone()), tokens_file: Some(file), ..Default::default() }
            .settings()
            .unwrap_err();
        assert_eq!(err.setting, "tokens-file");
        let err = ServeArgs { plugins: Some(plugins), max_body_bytes: Some(10), ..Default::default() }
            .settings()
            .unwrap_err();
        assert_eq!(err.setting, "max-body-bytes");
    }

    #[test]
    fn named_tokens_and_alert_settings() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().to_owned();
        let tokens = dir.path().join("tokens");
        std::fs::write(
            &tokens,
            "t1 name=ci-bot
t2 read-only name=dash
t3
",
        )
        .unwrap();
        let config = dir.path().join("ruqi.toml");
        std::fs::write(
            &config,
            "alert = [\"dingtalk:ops\"]\nalert_on = [\"failure\", \"paused\"]\nalert-lang = \"zh\"\n",
        )
        .unwrap();
        let base = || ServeArgs { plugins: Some(plugins.clone()), ..Default::default() };
        let s =
            ServeArgs { tokens_file: Some(tokens.clone()), config: Some(config.clone()), ..base() }.settings().unwrap();
        assert_eq!(
            (s.tokens.full.clone(), s.tokens.read_only.clone()),
            (vec!["t1".into(), "t3".into()], vec!["t2".into()])
        );
        assert_eq!(s.tokens.names, [("t1".into(), "ci-bot".into()), ("t2".into(), "dash".into())]);
        let a = &s.alerts;
        assert_eq!(a.default_targets, ["dingtalk:ops"]);
        assert_eq!(a.default_kinds, [crate::model::AlertKind::Failure, crate::model::AlertKind::Paused]);
        assert_eq!((a.lang, a.public_url.as_deref()), (crate::followup::Lang::Zh, None));
        // Flags win over the file.
        let s = ServeArgs {
            config: Some(config),
            alert: Some("http://h/hook, wecom:x".into()),
            public_url: Some("https://ruqi.example.com".into()),
            ..base()
        }
        .settings()
        .unwrap();
        assert_eq!(s.alerts.default_targets, ["http://h/hook", "wecom:x"]);
        assert_eq!(s.alerts.public_url.as_deref(), Some("https://ruqi.example.com"));
        for (args, setting) in [
            (ServeArgs { alert_on: Some("failure,bogus".into()), ..base() }, "alert-on"),
            (ServeArgs { alert_lang: Some("fr".into()), ..base() }, "alert-lang"),
            (ServeArgs { public_url: Some("ruqi.example.com".into()), ..base() }, "public-url"),
        ] {
            assert_eq!(args.settings().unwrap_err().setting, setting);
        }
        std::fs::write(&tokens, "t1 name=a name=b\n").unwrap();
        assert_eq!(ServeArgs { tokens_file: Some(tokens), ..base() }.settings().unwrap_err().setting, "tokens-file");
    }
}
