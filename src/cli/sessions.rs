//! `octo sessions ...`: list, create, show, rename, pin, unpin, rm and export sessions
//! through the generated SessionService client.

use std::{collections::HashMap, io::Write, path::PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use prost_types::FieldMask;

use super::{
    GlobalArgs,
    client::Client,
    names::{model_name, session_id, session_name},
    output::{self, Column, Table, enum_label, fit, long_time, now_unix, write_fields},
};
use crate::pb;

#[derive(Args, Debug, PartialEq)]
pub struct SessionsArgs {
    #[command(subcommand)]
    pub command: SessionsCommand,
}

#[derive(Subcommand, Debug, PartialEq)]
pub enum SessionsCommand {
    /// List sessions: pinned first, then most recently active
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
    /// Delete a session and its history, cancelling any running turn
    #[command(visible_alias = "delete")]
    Rm {
        /// Session id or `sessions/{id}`
        id: String,
        /// Succeed when the session does not exist
        #[arg(long)]
        force_missing: bool,
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
    /// System prompt [default: the server's]
    #[arg(long, value_name = "TEXT")]
    pub system_prompt: Option<String>,
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
            remove(client, &id, force_missing, json, out).await
        }
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

/// The `sessions list` table, `width` columns wide at most where it can be (a
/// terminal's width; None: no limit, e.g. piped). Pinned sessions' titles start with
/// `*`; the title column gives way first (down to 12 characters), so on an 80-column
/// terminal a line fits: 36 (id) + 2 + 15 + 2 + 7 + 2 + 4 + 2 + 10 (active).
pub fn session_table(sessions: &[pb::Session], now: i64, width: Option<usize>) -> Table {
    let rows: Vec<[String; 5]> = sessions
        .iter()
        .map(|session| {
            let title = if session.display_name.is_empty() {
                "(untitled)".to_owned()
            } else {
                session.display_name.clone()
            };
            [
                session_id(&session.name).to_owned(),
                if session.pinned {
                    format!("* {title}")
                } else {
                    title
                },
                short_status(session.status),
                session.message_count.to_string(),
                active_time(
                    session
                        .last_active_time
                        .as_ref()
                        .or(session.update_time.as_ref()),
                    now,
                ),
            ]
        })
        .collect();
    let headers = ["ID", "TITLE", "STATUS", "MSGS", "ACTIVE"];
    let widest = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([headers[i].len()])
            .max()
            .unwrap_or(0)
    };
    // What the other columns and the 2-space gaps take; the title gets the rest.
    let others: usize = [0, 2, 3, 4].iter().map(|&i| widest(i)).sum::<usize>() + 2 * 4;
    let title_width = width
        .map(|w| w.saturating_sub(others).clamp(12, TITLE_WIDTH))
        .unwrap_or(TITLE_WIDTH);
    let mut table = Table::new([
        Column::left(headers[0]),
        Column::left(headers[1]).max_width(title_width),
        Column::left(headers[2]),
        Column::right(headers[3]),
        Column::left(headers[4]),
    ]);
    for row in rows {
        table.push_row(row);
    }
    table
}

/// The widest a title is shown in the list.
const TITLE_WIDTH: usize = 40;

/// A session status in at most 7 characters.
fn short_status(status: i32) -> String {
    match pb::SessionStatus::try_from(status) {
        Ok(pb::SessionStatus::AwaitingConfirmation) => "waiting".to_owned(),
        Ok(pb::SessionStatus::AwaitingInput) => "asking".to_owned(),
        _ => status_label(status),
    }
}

/// Relative while recent ("2m ago"), else the date (10 characters, not 25).
fn active_time(time: Option<&prost_types::Timestamp>, now: i64) -> String {
    match time {
        None => "-".to_owned(),
        Some(time) => output::relative(time, now)
            .unwrap_or_else(|| output::rfc3339(time).chars().take(10).collect()),
    }
}

/// The terminal's width when stdout is one (`COLUMNS` wins when set).
fn terminal_width() -> Option<usize> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return None;
    }
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return Some(columns);
    }
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes the winsize struct we pass, nothing else.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
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

/// `sessions rm`.
pub async fn remove(
    client: &Client,
    id: &str,
    allow_missing: bool,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let name = session_name(id)?;
    client
        .sessions()
        .delete_session(pb::DeleteSessionRequest {
            name: name.clone(),
            allow_missing,
            ..Default::default()
        })
        .await?;
    if json {
        // DeleteSession returns google.protobuf.Empty, whose canonical JSON is `{}`.
        writeln!(out, "{{}}")?;
        return Ok(());
    }
    writeln!(out, "Deleted session {}", session_id(&name))?;
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

/// A session as canonical JSON, or as a key/value block.
pub fn print_session(
    out: &mut (dyn Write + Send),
    json: bool,
    session: &pb::Session,
) -> anyhow::Result<()> {
    if json {
        return output::write_json(out, session);
    }
    write_fields(out, &session_fields(session, now_unix()))?;
    Ok(())
}

/// The rows of a session's key/value block; empty values are left out when printed.
pub fn session_fields(session: &pb::Session, now: i64) -> Vec<(&'static str, String)> {
    let or_default = |value: &str| {
        if value.is_empty() {
            "(server default)".to_owned()
        } else {
            value.to_owned()
        }
    };
    let mut labels: Vec<_> = session
        .labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    labels.sort();
    let usage = session
        .usage
        .as_ref()
        .filter(|u| u.input_tokens != 0 || u.output_tokens != 0)
        .map(|u| {
            format!(
                "{} in / {} out tokens ({} reasoning, {} cached)",
                u.input_tokens, u.output_tokens, u.reasoning_tokens, u.cached_input_tokens
            )
        })
        .unwrap_or_default();
    vec![
        ("ID", session_id(&session.name).to_owned()),
        ("Name", session.name.clone()),
        ("Title", title_or_untitled(session)),
        ("Status", status_label(session.status)),
        ("Model", or_default(&session.model)),
        (
            "Reasoning",
            match pb::ReasoningEffort::try_from(session.reasoning_effort) {
                Ok(pb::ReasoningEffort::Unspecified) => "(model default)".to_owned(),
                Ok(effort) => enum_label(effort.as_str_name(), "REASONING_EFFORT_"),
                Err(_) => format!("unknown ({})", session.reasoning_effort),
            },
        ),
        (
            "Permission mode",
            match pb::PermissionMode::try_from(session.permission_mode) {
                Ok(pb::PermissionMode::Unspecified) => "(server default)".to_owned(),
                Ok(mode) => enum_label(mode.as_str_name(), "PERMISSION_MODE_"),
                Err(_) => format!("unknown ({})", session.permission_mode),
            },
        ),
        ("Working dir", session.working_dir.clone()),
        (
            "Source",
            match pb::SessionSource::try_from(session.source) {
                Ok(pb::SessionSource::Unspecified) => String::new(),
                Ok(source) => enum_label(source.as_str_name(), "SESSION_SOURCE_"),
                Err(_) => format!("unknown ({})", session.source),
            },
        ),
        (
            "Pinned",
            if session.pinned { "yes" } else { "no" }.to_owned(),
        ),
        ("Labels", labels.join(", ")),
        ("Messages", session.message_count.to_string()),
        (
            "Queued turns",
            if session.queue_depth > 0 {
                session.queue_depth.to_string()
            } else {
                String::new()
            },
        ),
        ("Active turn", session.active_turn.clone()),
        ("Forked from", session.forked_from.clone()),
        ("Usage", usage),
        ("Created", long_time(session.create_time.as_ref(), now)),
        ("Updated", long_time(session.update_time.as_ref(), now)),
        (
            "Last active",
            long_time(session.last_active_time.as_ref(), now),
        ),
        ("Last message", fit(&session.last_message_preview, Some(80))),
        ("System prompt", fit(&session.system_prompt, Some(80))),
    ]
}

fn title_or_untitled(session: &pb::Session) -> String {
    if session.display_name.is_empty() {
        "(untitled)".to_owned()
    } else {
        session.display_name.clone()
    }
}

fn status_label(status: i32) -> String {
    match pb::SessionStatus::try_from(status) {
        Ok(pb::SessionStatus::Unspecified) => "-".to_owned(),
        Ok(status) => enum_label(status.as_str_name(), "SESSION_STATUS_"),
        Err(_) => format!("unknown({status})"),
    }
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

    #[test]
    fn table_shows_ids_titles_and_statuses() {
        let now = 1_700_000_000;
        let sessions = vec![
            pb::Session {
                name: "sessions/0001".into(),
                display_name: "A very long title that goes on and on and on forever".into(),
                status: pb::SessionStatus::AwaitingConfirmation as i32,
                message_count: 12,
                pinned: true,
                last_active_time: Some(prost_types::Timestamp {
                    seconds: now - 120,
                    nanos: 0,
                }),
                ..Default::default()
            },
            pb::Session {
                name: "sessions/0002".into(),
                status: pb::SessionStatus::Idle as i32,
                ..Default::default()
            },
        ];
        let render = |width| {
            let mut buf = Vec::new();
            session_table(&sessions, now, width)
                .render(&mut buf)
                .expect("render");
            String::from_utf8(buf).expect("utf8")
        };
        let text = render(None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("ID    TITLE"), "{text}");
        assert!(
            lines[1].starts_with(
                "0001  * A very long title that goes on and on…  waiting    12  2m ago"
            ),
            "{text}"
        );
        assert!(lines[2].starts_with("0002  (untitled)"), "{text}");
        assert!(lines[2].ends_with("-"), "{text}");
        // Every column starts at the same offset on every line.
        let status_at = lines[0].find("STATUS").expect("STATUS");
        assert_eq!(&lines[2][status_at..status_at + 4], "idle");

        // Real ids are 36 characters: on an 80-column terminal every line fits.
        let sessions: Vec<pb::Session> = sessions
            .into_iter()
            .map(|s| pb::Session {
                name: format!(
                    "sessions/01a2375c-11e6-707f-b288-96f9736ef24{}",
                    &s.name[12..]
                ),
                last_active_time: Some(prost_types::Timestamp {
                    seconds: 1_600_000_000,
                    nanos: 0,
                }),
                ..s
            })
            .collect();
        let mut buf = Vec::new();
        session_table(&sessions, now, Some(80))
            .render(&mut buf)
            .expect("render");
        let text = String::from_utf8(buf).expect("utf8");
        for line in text.lines() {
            assert!(
                line.chars().count() <= 80,
                "{} > 80: {line}",
                line.chars().count()
            );
        }
        assert!(text.contains("2020-09-13"), "old times are dates: {text}");
    }

    #[test]
    fn key_value_block_shows_settings() {
        let session = pb::Session {
            name: "sessions/abc".into(),
            display_name: "T".into(),
            permission_mode: pb::PermissionMode::ReadOnly as i32,
            labels: [("b".into(), "2".into()), ("a".into(), "1".into())].into(),
            ..Default::default()
        };
        let fields = session_fields(&session, 0);
        let get = |key| {
            fields
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("ID"), Some("abc"));
        assert_eq!(get("Permission mode"), Some("read-only"));
        assert_eq!(get("Labels"), Some("a=1, b=2"));
        assert_eq!(get("Model"), Some("(server default)"));
    }
}
