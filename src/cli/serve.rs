//! `octo serve`: resolve the configuration, set up logging, run the server.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use clap::Args;
use tracing_subscriber::EnvFilter;

use super::config_cmd::ConfigPathArg;
use crate::config::{Config, Overrides};

#[derive(Args, Clone, Debug, Default, PartialEq)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigPathArg,
    /// Address serving gRPC, gRPC-Web and JSON/HTTP, e.g. 127.0.0.1:50051
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Directory for the database and other state
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The database URL: postgres://user:password@host:port/db, or sqlite:///path
    #[arg(long = "database", value_name = "URL")]
    pub database_url: Option<String>,
    /// Session working dirs must resolve inside this directory
    #[arg(long, value_name = "DIR")]
    pub workspace_root: Option<PathBuf>,
    /// Require the token on loopback addresses too
    #[arg(long)]
    pub require_token: bool,
    /// Log filter, e.g. `info` or `octo=debug,info` (RUST_LOG wins when set)
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// Serve TLS with this PEM certificate chain (needs --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Add the built-in deterministic `mock` model (the default if none is set): try
    /// Octo without an API key
    #[arg(long)]
    pub demo: bool,
    /// Do not serve the web UI at / (config `ui = false`)
    #[arg(long)]
    pub no_ui: bool,
}

impl ServeArgs {
    /// The flags as config overrides; `token` is the global `--token`/`OCTO_TOKEN`.
    pub fn overrides(&self, token: Option<&str>) -> Overrides {
        Overrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            workspace_root: self.workspace_root.clone(),
            token: token.map(str::to_owned),
            require_token: self.require_token.then_some(true),
            log: self.log.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            ui: self.no_ui.then_some(false),
            demo: self.demo,
        }
    }
}

pub async fn run(args: ServeArgs, token: Option<&str>) -> anyhow::Result<()> {
    let config = Config::load(Some(&args.config.resolve()), &args.overrides(token))?;
    let telemetry = init_tracing(&config.log)?;
    tracing::info!(listen = %config.listen, data_dir = %config.data_dir.display(), "starting octo");
    let served = crate::server::serve(config).await;
    // After the graceful shutdown: the spans of the last requests and turns go out.
    telemetry.shutdown().await;
    served
}

/// Logs to stderr, filtered by RUST_LOG when set, else by `log`; exports traces when
/// the OpenTelemetry environment asks for them (see `telemetry`). A subscriber already
/// installed (by a test, say) is left in place.
fn init_tracing(log: &str) -> anyhow::Result<crate::telemetry::Telemetry> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(rust_log) if !rust_log.trim().is_empty() => EnvFilter::try_new(&rust_log)
            .with_context(|| format!("invalid RUST_LOG {rust_log:?}"))?,
        _ => EnvFilter::try_new(log).with_context(|| format!("invalid log filter {log:?}"))?,
    };
    crate::telemetry::init(filter)
}
