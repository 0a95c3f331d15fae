//! The `ruqi` command: `serve` (the service), `plugin list`, `migrate`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ruqi::config::{ConfigError, ServeArgs};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "ruqi", version, about = "RuQi (如期): whatever is scheduled arrives on time")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// Apply the store's migrations and exit.
    Migrate(ServeArgs),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Load the plugins folder and list each plugin, its prefixes and grants.
    List(ServeArgs),
}

fn init_tracing() {
    let filter = EnvFilter::try_from_env("RUQI_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,wasmtime=warn,cranelift=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => ruqi::app::serve(args.settings()?).await,
        Command::Plugin { command: PluginCommand::List(args) } => {
            let text = plugin_list(args).await?;
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(())
        }
        Command::Migrate(args) => {
            // Only the store matters here: no plugins folder or listen address is needed.
            let store = args.store_url()?;
            let url = ruqi::store::redact_url(&store);
            ruqi::store::open_with(&store, chrono_tz::UTC, true)
                .await
                .with_context(|| format!("cannot migrate store {url}"))?;
            tracing::info!(store = %url, "migrations applied");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
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
