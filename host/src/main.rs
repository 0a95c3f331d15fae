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
    /// A running server's scheduler.
    Scheduler {
        #[command(subcommand)]
        command: ruqi::cli::SchedulerCommand,
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
    /// memory it needs, and whether this host accepts it (this also fills the compiled cache).
    Check {
        /// The `.wasm` file.
        file: std::path::PathBuf,
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
            ruqi::plugin::PluginStatus::Loaded { file, name, version, prefixes, grants } => {
                let prefixes: Vec<String> = prefixes.iter().map(|p| format!("{p:?}")).collect();
                out.push_str(&format!(
                    "{name} {version}  {}  prefixes: {}\n    {grants}\n",
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

/// `ruqi plugin check FILE`.
async fn plugin_check(file: &std::path::Path) -> anyhow::Result<String> {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let grants = ruqi::plugin::Grants::load(dir, stem)?;
    let runtime = ruqi::plugin::Runtime::new(std::env::current_dir()?, Some(dir.join(".cache")))?;
    let started = std::time::Instant::now();
    let p = runtime.load_file(file, grants).await?;
    let prefixes: Vec<String> = p.info.prefixes.iter().map(|x| format!("{x:?}")).collect();
    Ok(format!(
        "{} {}\n  prefixes: {}\n  contract: {} (this host speaks ruqi:executor@{}): accepted\n  memory: needs {} MiB at start, granted {} MiB\n  grants: {}\n  loaded in {:.2}s\n",
        p.info.name,
        p.info.version,
        prefixes.join(" "),
        p.contract,
        ruqi::plugin::WIT_VERSION,
        p.initial_memory_mib(),
        p.grants.memory_mb,
        p.grants.summary(),
        started.elapsed().as_secs_f64()
    ))
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
        Command::Plugin { command: PluginCommand::Check { file } } => print(Ok(plugin_check(&file).await?)),
        Command::Plugin { command: PluginCommand::New { name, lang, dir } } => {
            let folder = ruqi::scaffold::create(&dir, &name, lang)?;
            print(Ok(ruqi::scaffold::next_steps(&name, lang, &folder)))
        }
        Command::Job { command } => print(client().job(command).await),
        Command::History { command } => print(client().history(command).await),
        Command::Scheduler { command } => print(client().scheduler(command).await),
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
