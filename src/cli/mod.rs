//! The `updraft` command line: `serve`, `migrate`, and the tools built on the library.

mod package;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::config::Config;
use crate::startup::Application;
use crate::store::Store;
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "updraft",
    version,
    about = "Firmware-over-the-air update service (OMA DM 1.2 + FUMO)"
)]
pub struct Cli {
    /// TOML configuration file; `UPDRAFT_*` environment variables override it.
    #[arg(long, global = true, env = "UPDRAFT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: admin API, console, DM endpoint, downloads and workers.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(ServeArgs),
    /// Run simulated OMA DM devices against a server (real HTTP, real DM messages).
    Simulate(Box<crate::simulator::SimulateArgs>),
    /// Build, sign, verify and apply firmware packages offline (no server needed).
    #[command(subcommand)]
    Package(Box<package::PackageCommand>),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Data folder of the embedded default (default ./updraft-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl Cli {
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Serve(args) => run_async(serve(self.config, args)),
            Command::Migrate(args) => run_async(migrate(self.config, args)),
            Command::Package(cmd) => package::run(*cmd),
            Command::Simulate(args) => run_async(simulate(*args)),
        }
    }
}

fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "updraft failed");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration, applies the command-line overrides, installs logging.
fn load_config(file: Option<PathBuf>, args: ServeArgs) -> anyhow::Result<Config> {
    let (mut config, warnings) = Config::load(file.as_deref(), std::env::vars())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    telemetry::init(&config.log);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

async fn serve(file: Option<PathBuf>, args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(file, args)?;
    let mut app = Application::build(config).await?;
    if let Some(token) = app.take_generated_admin_token() {
        // Printed once, on stdout, never logged: it is the only copy.
        println!(
            "Generated the bootstrap admin API token (shown only this once; keep it safe):\n  {}",
            token.expose_secret()
        );
        tracing::info!("generated a bootstrap admin API token; it was printed on stdout");
    }
    tracing::info!(listen = %app.local_addr(), "listening");
    app.run_until_signal().await
}

async fn migrate(file: Option<PathBuf>, args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(file, args)?;
    std::fs::create_dir_all(&config.data_dir)?;
    let store = Store::connect(&config).await?;
    store.migrate().await?;
    tracing::info!(database = store.backend_name(), "migrations applied");
    store.close().await?;
    Ok(())
}

async fn simulate(args: crate::simulator::SimulateArgs) -> anyhow::Result<()> {
    telemetry::init(&crate::config::LogConfig::default());
    crate::startup::install_tls_provider();
    let summary = crate::simulator::run(args).await?;
    if summary.ok() {
        Ok(())
    } else {
        anyhow::bail!("some simulated sessions failed")
    }
}
