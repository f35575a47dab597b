//! The `octo` command line: `serve`, `init`, `config`, and client subcommands that talk
//! to a running server through the generated tonic clients:
//!
//! - `sessions list|create|show|rename|pin|unpin|rm|restore|purge|export` (`sessions.rs`;
//!   `rm` moves a session to the trash, `restore` brings it back, `purge` deletes it for good);
//! - `chat [--session ID | --new] [--model M] [--on-busy POLICY] MESSAGE` (`chat.rs`):
//!   sends a message and renders the turn's events as they stream (text inline, tool
//!   calls with their output, confirmation prompts and the model's questions answered
//!   from stdin (`input.rs`), Ctrl-C cancels the turn); exits 0 when the turn
//!   succeeded, 1 when not, 130 after Ctrl-C;
//! - `turns list SESSION`, `turns show TURN` and `cancel TURN` (`turns.rs`), where TURN
//!   is `sessions/{s}/turns/{t}` or a turn id with `--session`;
//! - `models list|show|add|update|rm|default|test|bench|providers` (`models.rs`): model
//!   configs; API keys come from stdin (`--api-key-stdin`) or `OCTO_MODEL_API_KEY`, never
//!   from arguments; `test` and `bench` exit 1 when a model fails;
//! - `schedules list|show|add|update|rm|run|runs` (`schedules.rs`): prompts run on a cron;
//! - `webhooks list [--state S]|retry ID` (`webhooks.rs`): the webhook outbox;
//! - `mcp add|list|show|rm|tools` (`mcp.rs`): MCP tool servers and the tools offered;
//! - `files ls|stat|get|put` (`files.rs`): a session's working dir (downloads and
//!   chunked uploads).
//! - `profiles add|list|show|edit|default|rm` (`profiles.rs`): agent profiles;
//! - `triggers add|list|show|rm|deliveries` (`triggers.rs`): inbound triggers.
//!
//! Every client command takes `--json` for proto3 canonical JSON (`chat --json`: one
//! event per line).
//!
//! Layout: one file per resource (`sessions.rs`, ...), each with a clap `Args` struct, a
//! `Subcommand` enum and `pub async fn run(args, &GlobalArgs, out)`. `client.rs` connects
//! (bearer-token interceptor, error text), `output.rs` prints (canonical JSON, tables,
//! key/value blocks), `names.rs` turns ids into resource names.
//!
//! Adding a resource (say `widgets`): write `src/cli/widgets.rs` like `sessions.rs` (or
//! `models.rs`, `schedules.rs`), add `pub mod widgets;`, a `Widgets(widgets::WidgetsArgs)`
//! variant to [`Command`] and its arm in [`run`]. Connect with `global.connect().await?`
//! and use the service's accessor on [`Client`] (`client.models()`, ...).

pub mod chat;
pub mod client;
pub mod completions;
pub mod config_cmd;
pub mod files;
pub mod input;
pub mod mcp;
pub mod models;
pub mod names;
pub mod output;
pub mod profiles;
pub mod run;
pub mod schedules;
pub mod serve;
pub mod sessions;
pub mod triggers;
pub mod turns;
pub mod webhooks;

use std::io::Write;

use clap::{Args, Parser, Subcommand};

use client::{Client, DEFAULT_SERVER};

/// Octo: host AI-agent sessions over gRPC, gRPC-Web and JSON/HTTP.
#[derive(Parser, Debug)]
#[command(name = "octo", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts, before or after its name.
#[derive(Args, Clone, Debug, PartialEq)]
pub struct GlobalArgs {
    /// Server URL for client commands: http://host:port, or https:// for TLS
    #[arg(
        long,
        global = true,
        env = "OCTO_SERVER",
        hide_env_values = true,
        help_heading = "Global options",
        value_name = "URL",
        default_value = DEFAULT_SERVER
    )]
    pub server: String,
    /// Bearer token: sent by client commands; for `serve`, the token clients must send
    #[arg(
        long,
        global = true,
        env = "OCTO_TOKEN",
        help_heading = "Global options",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// PEM file of a CA to trust (besides the system's) for an https:// --server
    #[arg(
        long,
        global = true,
        env = "OCTO_CA_CERT",
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Print machine-readable output (proto3 canonical JSON)
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
}

impl GlobalArgs {
    /// Connects to `--server` with `--token`.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        Client::connect(&self.server, self.token.as_deref(), self.ca_cert.as_deref()).await
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server until SIGINT or SIGTERM
    Serve(serve::ServeArgs),
    /// Write a commented default configuration file
    Init(config_cmd::InitArgs),
    /// Show the configuration or its path
    Config(config_cmd::ConfigArgs),
    /// Manage sessions
    #[command(visible_alias = "session")]
    Sessions(sessions::SessionsArgs),
    /// Send a message and stream the turn it starts
    Chat(chat::ChatArgs),
    /// Send a prompt and print only the answer; exit status from the turn (for scripts)
    Run(run::RunArgs),
    /// List and show a session's turns
    #[command(visible_alias = "turn")]
    Turns(turns::TurnsArgs),
    /// Cancel a queued or running turn
    Cancel(turns::TurnArg),
    /// Manage model configs: providers, keys, the default; test and benchmark them
    #[command(visible_alias = "model")]
    Models(models::ModelsArgs),
    /// Manage schedules: prompts run unattended on a cron
    #[command(visible_alias = "schedule")]
    Schedules(schedules::SchedulesArgs),
    /// List webhook deliveries and retry dead ones
    #[command(visible_alias = "webhook")]
    Webhooks(webhooks::WebhooksArgs),
    /// Print a shell completion script
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff): `octo man | man -l -`
    Man,
    /// Manage MCP tool servers and list the tools turns are offered
    Mcp(mcp::McpArgs),
    /// List, download and upload the files of a session's working dir
    #[command(visible_alias = "file")]
    Files(files::FilesArgs),
    /// Manage agent profiles: reusable session setups (persona, model, permissions)
    #[command(visible_alias = "profile")]
    Profiles(profiles::ProfilesArgs),
    /// Manage inbound triggers: signed HTTP calls that start turns
    #[command(visible_alias = "trigger")]
    Triggers(triggers::TriggersArgs),
}

/// Runs one command. Output goes to `out`; errors are returned, and [`describe_error`]
/// turns them into the text to print on stderr.
pub async fn run(cli: Cli, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let Cli { global, command } = cli;
    match command {
        Command::Serve(args) => serve::run(args, global.token.as_deref()).await,
        Command::Init(args) => config_cmd::init(args, out),
        Command::Config(args) => config_cmd::run(args, global.json, out),
        Command::Sessions(args) => sessions::run(args, &global, out).await,
        Command::Chat(args) => chat::run(args, &global, out).await,
        Command::Run(args) => run::run(args, &global, out).await,
        Command::Turns(args) => turns::run(args, &global, out).await,
        Command::Cancel(turn) => turns::run_cancel(turn, &global, out).await,
        Command::Models(args) => models::run(args, &global, out).await,
        Command::Schedules(args) => schedules::run(args, &global, out).await,
        Command::Webhooks(args) => webhooks::run(args, &global, out).await,
        Command::Completions(args) => completions::completions(args, out),
        Command::Man => completions::man(out),
        Command::Mcp(args) => mcp::run(args, &global, out).await,
        Command::Files(args) => files::run(args, &global, out).await,
        Command::Profiles(args) => profiles::run(args, &global, out).await,
        Command::Triggers(args) => triggers::run(args, &global, out).await,
    }?;
    out.flush()?;
    Ok(())
}

pub use client::{describe_error, is_broken_pipe};

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, path::PathBuf};

    use super::*;

    #[test]
    fn command_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let before = Cli::try_parse_from([
            "octo",
            "--server",
            "http://h:1",
            "--token",
            "t",
            "--json",
            "sessions",
            "list",
        ])
        .expect("parses");
        let after = Cli::try_parse_from([
            "octo",
            "sessions",
            "list",
            "--server",
            "http://h:1",
            "--token",
            "t",
            "--json",
        ])
        .expect("parses");
        assert_eq!(before.global, after.global);
        assert_eq!(before.global.server, "http://h:1");
        assert_eq!(before.global.token.as_deref(), Some("t"));
        assert!(before.global.json);
    }

    #[test]
    fn serve_flags_become_overrides() {
        let cli = Cli::try_parse_from([
            "octo",
            "serve",
            "--config",
            "/tmp/octo.toml",
            "--listen",
            "0.0.0.0:8080",
            "--data-dir",
            "/var/lib/octo",
            "--workspace-root",
            "/srv",
            "--token",
            "secret",
            "--require-token",
            "--log",
            "debug",
        ])
        .expect("parses");
        let Command::Serve(args) = &cli.command else {
            panic!("not serve: {:?}", cli.command);
        };
        assert_eq!(args.config.path, Some(PathBuf::from("/tmp/octo.toml")));
        let overrides = args.overrides(cli.global.token.as_deref());
        assert_eq!(
            overrides.listen,
            Some("0.0.0.0:8080".parse::<SocketAddr>().expect("addr"))
        );
        assert_eq!(overrides.data_dir, Some(PathBuf::from("/var/lib/octo")));
        assert_eq!(overrides.workspace_root, Some(PathBuf::from("/srv")));
        assert_eq!(overrides.token.as_deref(), Some("secret"));
        assert_eq!(overrides.require_token, Some(true));
        assert_eq!(overrides.log.as_deref(), Some("debug"));

        let bare = Cli::try_parse_from(["octo", "serve"]).expect("parses");
        let Command::Serve(args) = &bare.command else {
            panic!("not serve");
        };
        // Absent flags leave the file and environment in charge.
        assert_eq!(args.overrides(None).require_token, None);
        assert_eq!(args.overrides(None).listen, None);

        assert!(Cli::try_parse_from(["octo", "serve", "--listen", "nope"]).is_err());
    }

    #[test]
    fn config_and_init_parse() {
        let cli =
            Cli::try_parse_from(["octo", "init", "--config", "x.toml", "--force"]).expect("parses");
        let Command::Init(args) = cli.command else {
            panic!("not init");
        };
        assert!(args.force);
        assert_eq!(args.config.path, Some(PathBuf::from("x.toml")));

        let cli = Cli::try_parse_from(["octo", "config", "path"]).expect("parses");
        assert!(matches!(
            cli.command,
            Command::Config(config_cmd::ConfigArgs {
                command: config_cmd::ConfigCommand::Path(_)
            })
        ));
        assert!(Cli::try_parse_from(["octo", "config"]).is_err());
        assert!(Cli::try_parse_from(["octo"]).is_err());
    }
}
