//! `octo turns list|show` and `octo cancel`: a session's turns through the generated
//! ChatService client.

use std::io::Write;

use clap::{Args, Subcommand};

use super::{
    GlobalArgs,
    client::Client,
    names::{resource_id, session_name, turn_id, turn_name},
    output::{self, Column, Table, enum_label, fit, long_time, now_unix, short_time, write_fields},
};
use crate::pb;

#[derive(Args, Debug, PartialEq)]
pub struct TurnsArgs {
    #[command(subcommand)]
    pub command: TurnsCommand,
}

#[derive(Subcommand, Debug, PartialEq)]
pub enum TurnsCommand {
    /// List a session's turns, newest first
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show a turn: status, usage, timing, error and tool calls
    #[command(visible_alias = "get")]
    Show(TurnArg),
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct ListArgs {
    /// Session id or `sessions/{id}`
    pub session: String,
    /// Turns per page (server default 50, at most 500)
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub limit: Option<i32>,
    /// Follow next_page_token and list every turn
    #[arg(long)]
    pub all: bool,
}

/// A turn named in full, or by its id and its session.
#[derive(Args, Debug, Default, PartialEq)]
pub struct TurnArg {
    /// `sessions/{session}/turns/{turn}`, or a turn id with --session
    #[arg(value_name = "TURN")]
    pub turn: String,
    /// The session of a bare turn id (an id or `sessions/{id}`)
    #[arg(long, short, value_name = "ID")]
    pub session: Option<String>,
}

impl TurnArg {
    /// The full turn name.
    pub fn name(&self) -> anyhow::Result<String> {
        turn_name(&self.turn, self.session.as_deref())
    }
}

/// Runs one `octo turns` subcommand against the server `global` names.
pub async fn run(
    args: TurnsArgs,
    global: &GlobalArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    // Validate names before connecting, so typos fail fast even without a server.
    match args.command {
        TurnsCommand::List(args) => {
            let session = session_name(&args.session)?;
            let client = global.connect().await?;
            list(&client, &session, &args, global.json, out).await
        }
        TurnsCommand::Show(turn) => {
            let name = turn.name()?;
            let client = global.connect().await?;
            show(&client, name, global.json, out).await
        }
    }
}

/// `octo cancel TURN`: cancels a queued or running turn and prints its status after.
pub async fn run_cancel(
    turn: TurnArg,
    global: &GlobalArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let name = turn.name()?;
    let client = global.connect().await?;
    cancel(&client, name, global.json, out).await
}

/// `turns list`: one page, or every page with `--all`.
pub async fn list(
    client: &Client,
    session: &str,
    args: &ListArgs,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let chat = client.chat();
    let request = pb::ListTurnsRequest {
        parent: session.to_owned(),
        page_size: args.limit.unwrap_or(0),
        page_token: String::new(),
    };
    let (turns, next_page_token) = super::client::collect_pages(args.all, |page_token| {
        let mut chat = chat.clone();
        let request = pb::ListTurnsRequest {
            page_token,
            ..request.clone()
        };
        async move {
            let page = chat.list_turns(request).await?.into_inner();
            Ok((page.turns, page.next_page_token))
        }
    })
    .await?;
    let all = pb::ListTurnsResponse {
        turns,
        next_page_token,
    };

    if json {
        return output::write_json(out, &all);
    }
    if all.turns.is_empty() {
        writeln!(out, "No turns.")?;
        return Ok(());
    }
    turn_table(&all.turns, now_unix()).render(out)?;
    if !all.next_page_token.is_empty() {
        writeln!(out, "(more turns: use --all or a larger --limit)")?;
    }
    Ok(())
}

/// The `turns list` table.
pub fn turn_table(turns: &[pb::Turn], now: i64) -> Table {
    let mut table = Table::new([
        Column::left("TURN"),
        Column::left("STATUS"),
        Column::left("MODEL").max_width(30),
        Column::right("TOKENS IN/OUT"),
        Column::right("LATENCY"),
        Column::left("STARTED"),
    ]);
    for turn in turns {
        let (input, output) = turn
            .usage
            .as_ref()
            .map_or((0, 0), |u| (u.input_tokens, u.output_tokens));
        table.push_row([
            turn_id(&turn.name).to_owned(),
            status_label(turn.status),
            model_label(&turn.model),
            format!("{input}/{output}"),
            turn.latency
                .as_ref()
                .map_or_else(|| "-".to_owned(), output::duration),
            short_time(turn.start_time.as_ref(), now),
        ]);
    }
    table
}

/// `turns show`.
pub async fn show(
    client: &Client,
    name: String,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let turn = client
        .chat()
        .get_turn(pb::GetTurnRequest { name })
        .await?
        .into_inner();
    if json {
        return output::write_json(out, &turn);
    }
    write_fields(out, &turn_fields(&turn, now_unix()))?;
    Ok(())
}

/// `cancel`: CancelTurn, then the turn's status.
pub async fn cancel(
    client: &Client,
    name: String,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let turn = client
        .chat()
        .cancel_turn(pb::CancelTurnRequest { name })
        .await?
        .into_inner();
    if json {
        return output::write_json(out, &turn);
    }
    writeln!(out, "{}", cancel_report(&turn))?;
    Ok(())
}

/// What `cancel` prints: the turn and its status, noting a turn that had already ended.
pub fn cancel_report(turn: &pb::Turn) -> String {
    let id = turn_id(&turn.name);
    let status = status_label(turn.status);
    match turn.status() {
        pb::TurnStatus::Cancelled | pb::TurnStatus::Queued | pb::TurnStatus::Running => {
            format!("Turn {id}: {status}")
        }
        _ => format!("Turn {id}: {status} (it had already finished)"),
    }
}

/// The rows of a turn's key/value block; empty values are left out when printed.
pub fn turn_fields(turn: &pb::Turn, now: i64) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("ID", turn_id(&turn.name).to_owned()),
        ("Name", turn.name.clone()),
        ("Status", status_label(turn.status)),
        ("Model", model_label(&turn.model)),
        ("User message", turn.user_message.clone()),
        (
            "Steps",
            if turn.step_count > 0 {
                turn.step_count.to_string()
            } else {
                String::new()
            },
        ),
        (
            "Usage",
            turn.usage.as_ref().map(usage_text).unwrap_or_default(),
        ),
        (
            "Latency",
            turn.latency
                .as_ref()
                .map(output::duration)
                .unwrap_or_default(),
        ),
        (
            "First token",
            turn.time_to_first_token
                .as_ref()
                .map(output::duration)
                .unwrap_or_default(),
        ),
        (
            "Error",
            turn.error
                .as_ref()
                .map(|e| error_text(e, 200))
                .unwrap_or_default(),
        ),
        ("Created", long_time(turn.create_time.as_ref(), now)),
        ("Started", long_time(turn.start_time.as_ref(), now)),
        ("Ended", long_time(turn.end_time.as_ref(), now)),
    ];
    for (i, record) in turn.tool_calls.iter().enumerate() {
        let key = if i == 0 { "Tool calls" } else { "" };
        fields.push((key, tool_call_text(record)));
    }
    fields
}

/// One tool call on one line: `shell {"command":"ls"}: succeeded, exit 0`.
fn tool_call_text(record: &pb::ToolCallRecord) -> String {
    let (tool, arguments) = record
        .call
        .as_ref()
        .map_or(("?", ""), |c| (c.tool.as_str(), c.arguments_json.as_str()));
    let status = match pb::ToolCallStatus::try_from(record.status) {
        Ok(status) => enum_label(status.as_str_name(), "TOOL_CALL_STATUS_"),
        Err(_) => format!("unknown({})", record.status),
    };
    let mut text = format!("{tool} {}: {status}", fit(arguments, Some(60)));
    if let Some(code) = record.exit_code {
        text.push_str(&format!(", exit {code}"));
    }
    text
}

/// `REASON: message` of a turn error, cut to `max` characters.
pub fn error_text(error: &pb::TurnError, max: usize) -> String {
    let text = match (error.reason.is_empty(), error.message.is_empty()) {
        (false, false) => format!("{}: {}", error.reason, error.message),
        (false, true) => error.reason.clone(),
        (true, _) => error.message.clone(),
    };
    fit(&text, Some(max))
}

/// `25 in / 3 out tokens`, with reasoning and cached counts when there are any.
pub fn usage_text(usage: &pb::Usage) -> String {
    let mut text = format!(
        "{} in / {} out tokens",
        usage.input_tokens, usage.output_tokens
    );
    let mut extra = Vec::new();
    if usage.reasoning_tokens > 0 {
        extra.push(format!("{} reasoning", usage.reasoning_tokens));
    }
    if usage.cached_input_tokens > 0 {
        extra.push(format!("{} cached", usage.cached_input_tokens));
    }
    if !extra.is_empty() {
        text.push_str(&format!(" ({})", extra.join(", ")));
    }
    text
}

/// A turn status as a short label: `succeeded`, `cancelled`, ...
pub fn status_label(status: i32) -> String {
    match pb::TurnStatus::try_from(status) {
        Ok(pb::TurnStatus::Unspecified) => "-".to_owned(),
        Ok(status) => enum_label(status.as_str_name(), "TURN_STATUS_"),
        Err(_) => format!("unknown({status})"),
    }
}

/// A model name without its `models/` prefix; `-` when unset.
pub fn model_label(model: &str) -> String {
    if model.is_empty() {
        "-".to_owned()
    } else {
        resource_id("models", model).to_owned()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    fn finished_turn(now: i64) -> pb::Turn {
        pb::Turn {
            name: "sessions/s1/turns/t1".into(),
            status: pb::TurnStatus::Succeeded as i32,
            user_message: "sessions/s1/messages/m1".into(),
            model: "models/mock".into(),
            usage: Some(pb::Usage {
                input_tokens: 25,
                output_tokens: 3,
                ..Default::default()
            }),
            latency: Some(prost_types::Duration {
                seconds: 1,
                nanos: 500_000_000,
            }),
            start_time: ts(now - 120),
            step_count: 2,
            tool_calls: vec![pb::ToolCallRecord {
                call: Some(pb::ToolCall {
                    id: "call_1".into(),
                    tool: "shell".into(),
                    arguments_json: r#"{"command":"echo hi"}"#.into(),
                }),
                status: pb::ToolCallStatus::Succeeded as i32,
                exit_code: Some(0),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn commands_parse() {
        let cli = Cli::try_parse_from(["octo", "turns", "list", "s1", "-n", "5", "--all"])
            .expect("parses");
        assert!(matches!(
            cli.command,
            Command::Turns(TurnsArgs {
                command: TurnsCommand::List(ListArgs { ref session, limit: Some(5), all: true })
            }) if session == "s1"
        ));
        let cli = Cli::try_parse_from(["octo", "turns", "show", "t1", "--session", "s1"])
            .expect("parses");
        let Command::Turns(TurnsArgs {
            command: TurnsCommand::Show(turn),
        }) = cli.command
        else {
            panic!("not turns show");
        };
        assert_eq!(turn.name().expect("name"), "sessions/s1/turns/t1");
        let cli = Cli::try_parse_from(["octo", "cancel", "sessions/s1/turns/t1"]).expect("parses");
        let Command::Cancel(turn) = cli.command else {
            panic!("not cancel");
        };
        assert_eq!(turn.name().expect("name"), "sessions/s1/turns/t1");
        assert!(Cli::try_parse_from(["octo", "turns", "list"]).is_err());
        assert!(Cli::try_parse_from(["octo", "cancel"]).is_err());
    }

    #[tokio::test]
    async fn bad_turn_names_fail_before_connecting() {
        let cli = Cli::try_parse_from([
            "octo",
            "--server",
            "http://127.0.0.1:1",
            "cancel",
            "just-an-id",
        ])
        .expect("parses");
        let err = crate::cli::run(cli, &mut Vec::new())
            .await
            .expect_err("bad name");
        assert!(err.to_string().contains("--session"), "{err}");
    }

    #[test]
    fn table_shows_status_model_tokens_and_latency() {
        let now = 1_700_000_000;
        let running = pb::Turn {
            name: "sessions/s1/turns/t2".into(),
            status: pb::TurnStatus::Running as i32,
            ..Default::default()
        };
        let mut buf = Vec::new();
        turn_table(&[running, finished_turn(now)], now)
            .render(&mut buf)
            .expect("render");
        let text = String::from_utf8(buf).expect("utf8");
        assert_eq!(
            text,
            "TURN  STATUS     MODEL  TOKENS IN/OUT  LATENCY  STARTED\n\
             t2    running    -                0/0        -  -\n\
             t1    succeeded  mock            25/3     1.5s  2m ago\n"
        );
    }

    #[test]
    fn fields_show_usage_errors_and_tool_calls() {
        let mut turn = finished_turn(0);
        turn.tool_calls.push(pb::ToolCallRecord {
            call: Some(pb::ToolCall {
                tool: "read_file".into(),
                arguments_json: r#"{"path":"x"}"#.into(),
                ..Default::default()
            }),
            status: pb::ToolCallStatus::Denied as i32,
            ..Default::default()
        });
        turn.error = Some(pb::TurnError {
            reason: crate::domain::reason::PROVIDER_UNAVAILABLE.into(),
            message: "try later".into(),
        });
        let fields = turn_fields(&turn, 0);
        let get = |key| {
            fields
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("ID"), Some("t1"));
        assert_eq!(get("Status"), Some("succeeded"));
        assert_eq!(get("Model"), Some("mock"));
        assert_eq!(get("Usage"), Some("25 in / 3 out tokens"));
        assert_eq!(get("Latency"), Some("1.5s"));
        assert_eq!(get("Error"), Some("PROVIDER_UNAVAILABLE: try later"));
        assert_eq!(
            get("Tool calls"),
            Some(r#"shell {"command":"echo hi"}: succeeded, exit 0"#)
        );
        assert_eq!(get(""), Some(r#"read_file {"path":"x"}: denied"#));
    }

    #[test]
    fn cancel_reports_the_status_after() {
        let mut turn = finished_turn(0);
        assert_eq!(
            cancel_report(&turn),
            "Turn t1: succeeded (it had already finished)"
        );
        turn.status = pb::TurnStatus::Cancelled as i32;
        assert_eq!(cancel_report(&turn), "Turn t1: cancelled");
    }

    #[test]
    fn usage_mentions_reasoning_and_cache() {
        let usage = pb::Usage {
            input_tokens: 100,
            output_tokens: 40,
            reasoning_tokens: 30,
            cached_input_tokens: 80,
        };
        assert_eq!(
            usage_text(&usage),
            "100 in / 40 out tokens (30 reasoning, 80 cached)"
        );
    }
}
