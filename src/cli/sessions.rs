//! `octo sessions ...`: list, create, show, rename, pin, unpin, rm (to the trash),
//! restore, purge and export sessions through the generated SessionService client.
//! The trash commands are in `sessions/trash.rs`, the table and key/value block a
//! session prints as in `sessions/view.rs`.

mod trash;
mod view;

use std::{collections::HashMap, io::Write, path::PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use prost_types::FieldMask;

use super::{
    GlobalArgs,
    client::Client,
    names::{model_name, profile_name, session_id, session_name},
    output::{self, now_unix},
};
use crate::pb;
pub use view::{print_session, session_fields, session_table};
use view::{terminal_width, title_or_untitled};

#[derive(Args, Debug, PartialEq)]
pub struct SessionsArgs {
    #[command(subcommand)]
    pub command: SessionsCommand,
}

#[derive(Subcommand, Debug, PartialEq)]
pub enum SessionsCommand {
    /// List sessions: pinned first, then most recently active (not those in the trash)
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Create a session
    Create(CreateArgs),
    /// Show a session
    #[command(visible_alias = "get")]
    Show {
        /// Session id or `sessions/{id}`
        id: String,
    },
    /// Change a session's title
    Rename {
        /// Session id or `sessions/{id}`
        id: String,
        /// The new title
        title: String,
    },
    /// Pin a session so it lists first
    Pin {
        /// Session id or `sessions/{id}`
        id: String,
    },
    /// Unpin a session
    Unpin {
        /// Session id or `sessions/{id}`
        id: String,
    },
    /// Move a session to the trash, cancelling any running turn; it is deleted for good
    /// after the server's trash retention (30 days by default)
    #[command(visible_alias = "delete")]
    Rm {
        /// Session id or `sessions/{id}`
        id: String,
        /// Succeed when the session does not exist (or is in the trash already)
        #[arg(long)]
        force_missing: bool,
    },
    /// Restore a session from the trash
    #[command(visible_alias = "undelete")]
    Restore {
        /// Session id or `sessions/{id}`
        id: String,
    },
    /// Delete a session in the trash for good, now, with its history
    Purge {
        /// Session id or `sessions/{id}`
        id: String,
    },
    /// Summarise the oldest part of an idle session's conversation now (compaction);
    /// history and export keep every message
    Compact {
        /// Session id or `sessions/{id}`
        id: String,
    },
    /// Write the whole session (settings, messages, turns) as JSON
    Export {
        /// Session id or `sessions/{id}`
        id: String,
        /// Write to this file instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct ListArgs {
    /// Case-insensitive text search over titles and last messages
    #[arg(long, short)]
    pub query: Option<String>,
    /// Only pinned sessions
    #[arg(long)]
    pub pinned: bool,
    /// Sessions per page (server default 50, at most 500)
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub limit: Option<i32>,
    /// Follow next_page_token and list every matching session
    #[arg(long)]
    pub all: bool,
    /// List sessions in the trash too (their status shows `trash`)
    #[arg(long, visible_alias = "show-deleted")]
    pub deleted: bool,
    /// Label conditions joined with AND, e.g. 'labels.team = "core" AND labels.env:*'
    #[arg(long, value_name = "FILTER")]
    pub filter: Option<String>,
    /// The order: last_active_time, create_time or display_name, then asc or desc,
    /// optionally after `pinned desc,` (default "pinned desc, last_active_time desc")
    #[arg(long, value_name = "ORDER")]
    pub order_by: Option<String>,
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct CreateArgs {
    /// Title
    #[arg(long, short)]
    pub title: Option<String>,
    /// Directory tools run in; relative paths resolve against the server's workspace root
    #[arg(long, value_name = "DIR")]
    pub working_dir: Option<String>,
    /// Which tool calls need confirmation [default: the server's, ask]
    #[arg(long, value_enum)]
    pub permission_mode: Option<PermissionModeArg>,
    /// Model id or `models/{id}` [default: the server's]
    #[arg(long, short)]
    pub model: Option<String>,
    /// How hard the model should think
    #[arg(long, value_enum)]
    pub reasoning_effort: Option<ReasoningEffortArg>,
    /// A label (repeatable)
    #[arg(long = "label", short = 'l', value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// System prompt [default: the profile's, else the server's]
    #[arg(long, value_name = "TEXT")]
    pub system_prompt: Option<String>,
    /// The profile to start from, an id or `profiles/{id}`: it fills the settings not
    /// given here [default: the default profile, if any]
    #[arg(long, short = 'p', value_name = "PROFILE")]
    pub profile: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PermissionModeArg {
    Ask,
    AutoApprove,
    ReadOnly,
}

impl From<PermissionModeArg> for pb::PermissionMode {
    fn from(mode: PermissionModeArg) -> Self {
        match mode {
            PermissionModeArg::Ask => pb::PermissionMode::Ask,
            PermissionModeArg::AutoApprove => pb::PermissionMode::AutoApprove,
            PermissionModeArg::ReadOnly => pb::PermissionMode::ReadOnly,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReasoningEffortArg {
    Off,
    Low,
    Medium,
    High,
}

impl From<ReasoningEffortArg> for pb::ReasoningEffort {
    fn from(effort: ReasoningEffortArg) -> Self {
        match effort {
            ReasoningEffortArg::Off => pb::ReasoningEffort::Off,
            ReasoningEffortArg::Low => pb::ReasoningEffort::Low,
            ReasoningEffortArg::Medium => pb::ReasoningEffort::Medium,
            ReasoningEffortArg::High => pb::ReasoningEffort::High,
        }
    }
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// Runs one `octo sessions` subcommand against the server `global` names.
pub async fn run(
    args: SessionsArgs,
    global: &GlobalArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    // Validate ids before connecting, so typos fail fast even without a server.
    let command = args.command;
    if let Some(id) = command.id() {
        session_name(id)?;
    }
    let client = global.connect().await?;
    execute(&client, command, global.json, out).await
}

impl SessionsCommand {
    fn id(&self) -> Option<&str> {
        match self {
            SessionsCommand::List(_) | SessionsCommand::Create(_) => None,
            SessionsCommand::Show { id }
            | SessionsCommand::Rename { id, .. }
            | SessionsCommand::Pin { id }
            | SessionsCommand::Unpin { id }
            | SessionsCommand::Rm { id, .. }
            | SessionsCommand::Restore { id }
            | SessionsCommand::Purge { id }
            | SessionsCommand::Compact { id }
            | SessionsCommand::Export { id, .. } => Some(id),
        }
    }
}

/// Runs `command` on an open connection; output goes to `out`, as canonical JSON if `json`.
pub async fn execute(
    client: &Client,
    command: SessionsCommand,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    match command {
        SessionsCommand::List(args) => list(client, &args, json, out).await,
        SessionsCommand::Create(args) => create(client, args, json, out).await,
        SessionsCommand::Show { id } => show(client, &id, json, out).await,
        SessionsCommand::Rename { id, title } => {
            let session = pb::Session {
                display_name: title,
                ..Default::default()
            };
            let updated = update(client, &id, session, "display_name").await?;
            report_update(out, json, &updated, "Renamed")
        }
        SessionsCommand::Pin { id } => {
            let session = pb::Session {
                pinned: true,
                ..Default::default()
            };
            let updated = update(client, &id, session, "pinned").await?;
            report_update(out, json, &updated, "Pinned")
        }
        SessionsCommand::Unpin { id } => {
            let session = pb::Session {
                pinned: false,
                ..Default::default()
            };
            let updated = update(client, &id, session, "pinned").await?;
            report_update(out, json, &updated, "Unpinned")
        }
        SessionsCommand::Rm { id, force_missing } => {
            trash::remove(client, &id, force_missing, json, out).await
        }
        SessionsCommand::Restore { id } => trash::restore(client, &id, json, out).await,
        SessionsCommand::Purge { id } => trash::purge(client, &id, json, out).await,
        SessionsCommand::Export { id, output } => {
            export(client, &id, output.as_deref(), json, out).await
        }
        SessionsCommand::Compact { id } => compact(client, &id, json, out).await,
    }
}

/// `sessions compact`: CompactSession, and what it did.
async fn compact(
    client: &Client,
    id: &str,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let session = session_name(id)?;
    let answer = client
        .chat()
        .compact_session(pb::CompactSessionRequest { session })
        .await?
        .into_inner();
    if json {
        return output::write_json(out, &answer);
    }
    match (&answer.summary, answer.compacted) {
        (Some(summary), true) => writeln!(
            out,
            "Compacted: {} earlier messages summarised by {}, ~{} -> ~{} tokens\n\n{}",
            summary.replaced_messages,
            summary.model,
            summary.tokens_before,
            summary.tokens_after,
            summary.summary
        )?,
        _ => writeln!(
            out,
            "Nothing to compact: only the latest exchange is not summarised yet"
        )?,
    }
    Ok(())
}

/// `sessions list`: one page, or every page with `--all`.
pub async fn list(
    client: &Client,
    args: &ListArgs,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let sessions_client = client.sessions();
    let request = pb::ListSessionsRequest {
        page_size: args.limit.unwrap_or(0),
        query: args.query.clone().unwrap_or_default(),
        pinned: args.pinned.then_some(true),
        show_deleted: args.deleted,
        filter: args.filter.clone().unwrap_or_default(),
        order_by: args.order_by.clone().unwrap_or_default(),
        ..Default::default()
    };
    let (sessions, next_page_token) = super::client::collect_pages(args.all, |page_token| {
        let mut sessions_client = sessions_client.clone();
        let request = pb::ListSessionsRequest {
            page_token,
            ..request.clone()
        };
        async move {
            let page = sessions_client.list_sessions(request).await?.into_inner();
            Ok((page.sessions, page.next_page_token))
        }
    })
    .await?;
    let all = pb::ListSessionsResponse {
        sessions,
        next_page_token,
    };

    if json {
        return output::write_json(out, &all);
    }
    if all.sessions.is_empty() {
        writeln!(out, "No sessions.")?;
        return Ok(());
    }
    session_table(&all.sessions, now_unix(), terminal_width()).render(out)?;
    if !all.next_page_token.is_empty() {
        writeln!(out, "(more sessions: use --all or a larger --limit)")?;
    }
    Ok(())
}

/// `sessions create`: a MANUAL session with the given settings.
pub async fn create(
    client: &Client,
    args: CreateArgs,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let session = session_to_create(args)?;
    let created = client
        .sessions()
        .create_session(pb::CreateSessionRequest {
            session: Some(session),
        })
        .await?
        .into_inner();
    print_session(out, json, &created)
}

fn session_to_create(args: CreateArgs) -> anyhow::Result<pb::Session> {
    Ok(pb::Session {
        display_name: args.title.unwrap_or_default(),
        working_dir: args.working_dir.unwrap_or_default(),
        permission_mode: args
            .permission_mode
            .map_or(pb::PermissionMode::Unspecified, Into::into) as i32,
        reasoning_effort: args
            .reasoning_effort
            .map_or(pb::ReasoningEffort::Unspecified, Into::into) as i32,
        model: args
            .model
            .as_deref()
            .map(model_name)
            .transpose()?
            .unwrap_or_default(),
        labels: args.labels.into_iter().collect::<HashMap<_, _>>(),
        system_prompt: args.system_prompt.unwrap_or_default(),
        source: pb::SessionSource::Manual as i32,
        profile: args
            .profile
            .as_deref()
            .map(profile_name)
            .transpose()?
            .unwrap_or_default(),
        ..Default::default()
    })
}

/// `sessions show`.
pub async fn show(
    client: &Client,
    id: &str,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let name = session_name(id)?;
    let session = client
        .sessions()
        .get_session(pb::GetSessionRequest { name })
        .await?
        .into_inner();
    print_session(out, json, &session)
}

/// UpdateSession of the one field `path` of `session` on the session `id`.
async fn update(
    client: &Client,
    id: &str,
    mut session: pb::Session,
    path: &str,
) -> anyhow::Result<pb::Session> {
    session.name = session_name(id)?;
    let updated = client
        .sessions()
        .update_session(pb::UpdateSessionRequest {
            session: Some(session),
            update_mask: Some(FieldMask {
                paths: vec![path.to_owned()],
            }),
        })
        .await?
        .into_inner();
    Ok(updated)
}

fn report_update(
    out: &mut (dyn Write + Send),
    json: bool,
    session: &pb::Session,
    verb: &str,
) -> anyhow::Result<()> {
    if json {
        return output::write_json(out, session);
    }
    writeln!(
        out,
        "{verb} session {} ({})",
        session_id(&session.name),
        title_or_untitled(session)
    )?;
    Ok(())
}

/// `sessions export`: the archive as pretty canonical JSON, to `file` or to `out`.
pub async fn export(
    client: &Client,
    id: &str,
    file: Option<&std::path::Path>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let name = session_name(id)?;
    let archive = client
        .sessions()
        .export_session(pb::ExportSessionRequest { name: name.clone() })
        .await?
        .into_inner();
    let Some(file) = file else {
        return output::write_json(out, &archive);
    };
    let text = output::to_json_string(&archive)?;
    std::fs::write(file, text).with_context(|| format!("cannot write {}", file.display()))?;
    if !json {
        writeln!(
            out,
            "Exported session {} ({} messages, {} turns) to {}",
            session_id(&name),
            archive.messages.len(),
            archive.turns.len(),
            file.display()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> SessionsCommand {
        let cli = Cli::try_parse_from(args).expect("parses");
        match cli.command {
            Command::Sessions(args) => args.command,
            other => panic!("not a sessions command: {other:?}"),
        }
    }

    #[test]
    fn list_flags_parse() {
        assert_eq!(
            parse(&[
                "octo", "sessions", "list", "--query", "bug", "--pinned", "--limit", "5", "--all"
            ]),
            SessionsCommand::List(ListArgs {
                query: Some("bug".into()),
                pinned: true,
                limit: Some(5),
                all: true,
                ..ListArgs::default()
            })
        );
        assert_eq!(
            parse(&[
                "octo",
                "sessions",
                "list",
                "--show-deleted",
                "--filter",
                "labels.team = core",
                "--order-by",
                "create_time desc",
            ]),
            SessionsCommand::List(ListArgs {
                deleted: true,
                filter: Some("labels.team = core".into()),
                order_by: Some("create_time desc".into()),
                ..ListArgs::default()
            })
        );
        assert_eq!(
            parse(&["octo", "sessions", "ls"]),
            SessionsCommand::List(ListArgs::default())
        );
        assert!(Cli::try_parse_from(["octo", "sessions", "list", "--limit", "0"]).is_err());
    }

    #[test]
    fn create_flags_parse_into_a_manual_session() {
        let command = parse(&[
            "octo",
            "sessions",
            "create",
            "--title",
            "Fix the build",
            "--working-dir",
            "proj",
            "--permission-mode",
            "auto-approve",
            "--model",
            "gpt",
            "--label",
            "team=core",
            "--label",
            "k=a=b",
            "--system-prompt",
            "Be brief.",
        ]);
        let SessionsCommand::Create(args) = command else {
            panic!("not create: {command:?}");
        };
        let session = session_to_create(args).expect("session");
        assert_eq!(session.display_name, "Fix the build");
        assert_eq!(session.working_dir, "proj");
        assert_eq!(
            session.permission_mode,
            pb::PermissionMode::AutoApprove as i32
        );
        assert_eq!(session.model, "models/gpt");
        assert_eq!(session.labels.get("team").map(String::as_str), Some("core"));
        assert_eq!(session.labels.get("k").map(String::as_str), Some("a=b"));
        assert_eq!(session.system_prompt, "Be brief.");
        assert_eq!(session.source, pb::SessionSource::Manual as i32);

        for bad in [
            &["octo", "sessions", "create", "--label", "novalue"][..],
            &["octo", "sessions", "create", "--permission-mode", "yolo"][..],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn id_commands_parse() {
        assert_eq!(
            parse(&["octo", "sessions", "rename", "abc", "New title"]),
            SessionsCommand::Rename {
                id: "abc".into(),
                title: "New title".into()
            }
        );
        assert_eq!(
            parse(&["octo", "sessions", "rm", "sessions/abc", "--force-missing"]),
            SessionsCommand::Rm {
                id: "sessions/abc".into(),
                force_missing: true
            }
        );
        assert_eq!(
            parse(&["octo", "sessions", "undelete", "abc"]),
            SessionsCommand::Restore { id: "abc".into() }
        );
        assert_eq!(
            parse(&["octo", "sessions", "purge", "abc"]),
            SessionsCommand::Purge { id: "abc".into() }
        );
        assert_eq!(
            parse(&["octo", "sessions", "export", "abc", "-o", "out.json"]),
            SessionsCommand::Export {
                id: "abc".into(),
                output: Some("out.json".into())
            }
        );
        assert!(Cli::try_parse_from(["octo", "sessions", "show"]).is_err());
    }

    #[tokio::test]
    async fn bad_ids_fail_before_connecting() {
        let cli = Cli::try_parse_from([
            "octo",
            "--server",
            "http://127.0.0.1:1",
            "sessions",
            "show",
            "models/x",
        ])
        .expect("parses");
        let err = crate::cli::run(cli, &mut Vec::new())
            .await
            .expect_err("bad id");
        assert!(err.to_string().contains("session id"), "{err}");
    }
}
