//! The `ruqi` command: `serve` (the service), `migrate`, the client commands (`job`, `history`,
//! `scheduler`, `plugin list`) that talk to a running server, `plugin check FILE` (offline), `plugin
//! new NAME` (a plugin folder from a template) and `completions SHELL`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ruqi::config::{ConfigError, ServeArgs};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "ruqi", version, about = "RuQi (如期): whatever is scheduled arrives on time")]
struct Cli {
    /// Log lines as human-readable text (coloured only on a terminal) or one JSON object each,
    /// for log shippers. Which lines: `RUQI_LOG` (or `RUST_LOG`), e.g. `info,ruqi::dispatch=debug`.
    #[arg(long, global = true, env = "RUQI_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(flatten)]
    server: ruqi::cli::Server,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// `time LEVEL target: message key=value…`
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve RuQi's HTTP API and run the scheduler.
    Serve(ServeArgs),
    /// Inspect the executor plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Apply the store's migrations, adopt the job rows of a RuQi 1.x database, and exit.
    Migrate(MigrateArgs),
    /// Add, change, pause, resume, remove, show and list jobs on a running server.
    Job {
        #[command(subcommand)]
        command: ruqi::cli::JobCommand,
    },
    /// List and clear the run history of a running server.
    History {
        #[command(subcommand)]
        command: ruqi::cli::HistoryCommand,
    },
    /// Runs on a running server's cluster: list, show, follow the output of, and kill them.
    Run {
        #[command(subcommand)]
        command: ruqi::cli::RunCommand,
    },
    /// A running server's scheduler.
    Scheduler {
        #[command(subcommand)]
        command: ruqi::cli::SchedulerCommand,
    },
    /// The changes made through a running server's API (who, when, what changed).
    Audit {
        /// Only changes of this job.
        #[arg(long)]
        id: Option<String>,
        /// Only changes by this caller (a token's name).
        #[arg(long)]
        caller: Option<String>,
        /// Only changes at or after this time (YYYY-mm-dd HH:MM:SS, the server's zone).
        #[arg(long)]
        since: Option<String>,
        /// Only changes before this time.
        #[arg(long)]
        until: Option<String>,
        /// Page (from 1).
        #[arg(long, default_value_t = 1)]
        page: u64,
        /// Rows per page (0 = all).
        #[arg(long, default_value_t = 15)]
        page_size: u64,
    },
    /// The cluster's runs by outcome (last hour, last 7 days), lateness, slowest and failing jobs.
    Stats,
    /// Write every job of a running server as a jobs file (TOML) on standard output.
    Export,
    /// Make a running server's jobs match a jobs file: print the plan, then carry it out.
    Apply {
        /// The jobs file (`-` for standard input).
        #[arg(short, long)]
        file: std::path::PathBuf,
        /// Print the plan only.
        #[arg(long)]
        dry_run: bool,
        /// Also remove the server's jobs the file does not name.
        #[arg(long)]
        prune: bool,
    },
    /// The alerts of a running server's cluster.
    Alert {
        #[command(subcommand)]
        command: ruqi::cli::AlertCommand,
    },
    /// A running server's business calendars.
    Calendar {
        #[command(subcommand)]
        command: ruqi::cli::CalendarCommand,
    },
    /// Print a completion script for a shell (`ruqi completions bash > /etc/bash_completion.d/ruqi`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(clap::Args)]
struct MigrateArgs {
    /// Change nothing: print what would be converted from RuQi 1.x and what cannot be, with the reason.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// A running server's plugins; with `--plugins DIR`, load that folder here instead.
    List(Box<ServeArgs>),
    /// Load a plugin file here (no server): its description, prefixes, contract version, the
    /// memory it needs, the interfaces it imports, and whether this host accepts it (and why
    /// not). This also fills the compiled cache of the file's folder (`.cache` beside it).
    Check {
        /// The `.wasm` file.
        file: std::path::PathBuf,
    },
    /// Compile a plugin into a cache folder and print the entry written (the server runs this
    /// as a child process, so compiling never grows the serving process).
    #[command(hide = true)]
    Compile {
        /// The `.wasm` file, or `-` for stdin.
        file: std::path::PathBuf,
        /// The cache folder (`plugins/.cache`).
        #[arg(long)]
        cache: std::path::PathBuf,
    },
    /// Make a new plugin folder DIR/NAME from a template, serving cmds `NAME:…`, with its grants
    /// file and a README saying how to build and load it.
    New {
        /// The plugin's name, also its cmd prefix (`NAME:`): lowercase letters, digits and '-'.
        name: String,
        /// Its language.
        #[arg(long, value_enum)]
        lang: ruqi::scaffold::Lang,
        /// Where the folder is made.
        #[arg(long, default_value = "plugins")]
        dir: std::path::PathBuf,
    },
}

fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_env("RUQI_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,wasmtime=warn,cranelift=warn"));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => fmt.json().flatten_event(true).with_current_span(true).init(),
        LogFormat::Text => fmt.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

async fn plugin_list(args: ServeArgs) -> anyhow::Result<String> {
    let settings = args.settings()?;
    let registry = ruqi::app::load_plugins(&settings).await?;
    let mut out = String::new();
    for s in registry.statuses() {
        match s {
            ruqi::plugin::PluginStatus::Loaded { file, name, version, prefixes, contract, grants } => {
                let prefixes: Vec<String> = prefixes.iter().map(|p| format!("{p:?}")).collect();
                out.push_str(&format!(
                    "{name} {version}  {}  prefixes: {}  contract: {contract}\n    {grants}\n",
                    file.display(),
                    prefixes.join(" ")
                ));
            }
            ruqi::plugin::PluginStatus::Failed { file, error } => {
                out.push_str(&format!("FAILED  {}  {error}\n", file.display()));
            }
        }
    }
    if out.is_empty() {
        out = format!("no plugins in {}\n", settings.plugins.display());
    }
    Ok(out)
}

/// Prints a client command's text, or fails with the server's reason.
fn print(result: Result<String, ruqi::cli::CliError>) -> anyhow::Result<()> {
    use std::io::Write;
    std::io::stdout().write_all(result?.as_bytes())?;
    Ok(())
}

/// `ruqi plugin check FILE`: loads the plugin with its grants, but with the largest memory
/// limit, so the memory it needs is measured even when its grant is too small; then judges it
/// against its real grants. Fails (non-zero) when this host would not load it.
async fn plugin_check(file: &std::path::Path) -> anyhow::Result<()> {
    use ruqi::plugin::{Contract, Grants, MAX_MEMORY_MB, PluginError};
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let grants = Grants::load(dir, stem)?;
    // The check itself compiles: it is the short-lived process.
    let runtime = ruqi::plugin::Runtime::new(std::env::current_dir()?, Some(dir.join(".cache")))?
        .with_compiler(ruqi::plugin::Compiler::InProcess);
    let started = std::time::Instant::now();
    let measuring = Grants { memory_mb: MAX_MEMORY_MB, ..grants.clone() };
    let p = match runtime.load_file(file, measuring).await {
        Ok(p) => p,
        Err(e @ PluginError::IncompatibleVersion { .. }) => {
            anyhow::bail!("{}\n  refused: {e}", file.display())
        }
        Err(e) => return Err(e.into()),
    };
    let prefixes: Vec<String> = p.info.prefixes.iter().map(|x| format!("{x:?}")).collect();
    let granted = grants.memory_mb.min(MAX_MEMORY_MB);
    let refusal = p.start_memory_refusal(granted);
    let verdict = refusal.as_ref().map_or_else(|| "accepted".to_owned(), |why| format!("refused: {why}"));
    let text = format!(
        "{} {}\n  prefixes: {}\n  contract: {} (this host speaks {})\n  memory: needs {} MiB at start, granted {granted} MiB\n  imports: {}\n  grants: {}\n  loaded in {:.2}s (compiled code cached in {})\n  {verdict}\n",
        p.info.name,
        p.info.version,
        prefixes.join(" "),
        p.contract,
        Contract::spoken(),
        p.initial_memory_mib(),
        p.imports.join(" "),
        grants.summary(),
        started.elapsed().as_secs_f64(),
        dir.join(".cache").display(),
    );
    // The report goes to stdout either way; a refusal also fails the command.
    print(Ok(text))?;
    anyhow::ensure!(refusal.is_none(), "{} {verdict}", file.display());
    Ok(())
}

/// `ruqi plugin compile FILE --cache DIR` (hidden): what the server runs in a child process.
fn plugin_compile(file: &std::path::Path, cache: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    }
    let entry = ruqi::plugin::Runtime::compile_to_cache(&bytes, cache).map_err(|e| match e {
        ruqi::plugin::PluginError::Load { reason, .. } => anyhow::anyhow!("{reason}"),
        e => e.into(),
    })?;
    Ok(format!("{}\n", entry.display()))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let client = || ruqi::cli::Client::new(cli.server.clone());
    match cli.command {
        Command::Serve(args) => ruqi::app::serve(args.settings()?).await,
        Command::Plugin { command: PluginCommand::List(args) } if args.plugins.is_some() => {
            let text = plugin_list(*args).await?;
            print(Ok(text))
        }
        Command::Plugin { command: PluginCommand::List(_) } => print(client().plugins().await),
        Command::Plugin { command: PluginCommand::Check { file } } => plugin_check(&file).await,
        Command::Plugin { command: PluginCommand::Compile { file, cache } } => {
            print(Ok(tokio::task::spawn_blocking(move || plugin_compile(&file, &cache)).await??))
        }
        Command::Plugin { command: PluginCommand::New { name, lang, dir } } => {
            let folder = ruqi::scaffold::create(&dir, &name, lang)?;
            print(Ok(ruqi::scaffold::next_steps(&name, lang, &folder)))
        }
        Command::Job { command } => print(client().job(command).await),
        Command::History { command } => print(client().history(command).await),
        Command::Run { command: ruqi::cli::RunCommand::Logs { run_id, follow: true } } => {
            use std::io::Write;
            let outcome = client()
                .follow(&run_id, |piece| {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(piece.as_bytes());
                    let _ = out.flush();
                })
                .await?;
            tracing::debug!(%outcome, "run ended");
            Ok(())
        }
        Command::Run { command } => print(client().runs(command).await),
        Command::Scheduler { command } => print(client().scheduler(command).await),
        Command::Calendar { command } => print(client().calendars(command).await),
        Command::Alert { command } => print(client().alerts(command).await),
        Command::Audit { id, caller, since, until, page, page_size } => {
            print(client().audit(id, caller, since, until, page, page_size).await)
        }
        Command::Stats => print(client().stats().await),
        Command::Export => {
            let defs = ruqi::apply::server_jobs(&client()).await?;
            print(Ok(ruqi::apply::write_file(&defs).map_err(anyhow::Error::msg)?))
        }
        Command::Apply { file, dry_run, prune } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
            };
            let wanted = ruqi::apply::read_file(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let client = client();
            let plan = ruqi::apply::plan(&wanted, &ruqi::apply::server_jobs(&client).await?);
            print(Ok(ruqi::apply::describe(&plan, prune)))?;
            if !dry_run {
                ruqi::apply::carry_out(&client, &plan, prune).await?;
                print(Ok("applied\n".into()))?;
            }
            Ok(())
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "ruqi", &mut std::io::stdout());
            Ok(())
        }
        Command::Migrate(args) => migrate(args).await,
    }
}

/// `ruqi migrate [--dry-run]`: only the store (and the zone 1.x times are read in) matter here:
/// no plugins folder or listen address is needed.
async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let (store, tz) = args.serve.store_and_zone()?;
    let url = ruqi::store::redact_url(&store);
    let now = ruqi::clock::Clock::now(&ruqi::clock::SystemClock);
    let report = if args.dry_run {
        anyhow::ensure!(
            ruqi::store::is_shared(&store),
            "--dry-run reads a MySQL/MariaDB store (RuQi 1.x kept its jobs there)"
        );
        ruqi::store::MysqlStore::plan_adoption(&store, tz, now)
            .await
            .with_context(|| format!("cannot read store {url}"))?
    } else {
        let opened =
            ruqi::store::open_with(&store, tz, true).await.with_context(|| format!("cannot migrate store {url}"))?;
        tracing::info!(store = %url, "migrations applied");
        opened.adopt_legacy(now).await.with_context(|| format!("cannot adopt the RuQi 1.x rows of {url}"))?
    };
    ruqi::app::log_adoption(&report);
    use std::io::Write;
    std::io::stdout().write_all(adoption_text(&report, tz, args.dry_run).as_bytes())?;
    Ok(())
}

/// What adoption did or would do, a line per RuQi 1.x row.
fn adoption_text(report: &ruqi::store::legacy::AdoptionReport, tz: chrono_tz::Tz, dry_run: bool) -> String {
    use ruqi::store::legacy::Adoption;
    let (convert, keep) = if dry_run { ("would convert", "would keep") } else { ("converted", "kept") };
    let mut out = String::new();
    for a in &report.jobs {
        match a {
            Adoption::Converted(job) => out.push_str(&format!(
                "{convert} {}: {} {:?}, next run {}, cmd {:?}\n",
                job.id,
                job.trigger.kind().as_str(),
                job.trigger.rule(),
                job.next_run_time.map_or_else(|| "None (paused)".into(), |t| ruqi::trigger::format_python(t, tz)),
                job.cmd
            )),
            Adoption::Kept { id, reason } => out.push_str(&format!("{keep} {id} as it is: {reason}\n")),
        }
    }
    let history = if dry_run { "history rows whose times would move to UTC" } else { "history rows moved to UTC" };
    out.push_str(&format!(
        "RuQi 1.x job rows: {}, {history}: {} (zone {})\n",
        report.jobs.len(),
        report.history_rows,
        tz.name()
    ));
    out
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<ruqi::cli::CliError>().is_some() => {
            eprintln!("ruqi: {e}");
            ExitCode::FAILURE
        }
        Err(e) if e.downcast_ref::<ConfigError>().is_some() => {
            eprintln!("ruqi: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("ruqi: {e:#}");
            ExitCode::FAILURE
        }
    }
}
