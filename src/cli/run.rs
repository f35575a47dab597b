//! `octo run`: one prompt in, the answer out, for shell pipelines and CI jobs. It sends
//! with SendMessageAndWait (one request, no stream), prints only the final answer's
//! text (or the whole response with `--json`), and exits with the turn's outcome:
//!
//! | exit | when |
//! |---|---|
//! | 0 | the turn succeeded |
//! | 1 | it failed, was cancelled or interrupted, or the request failed (stderr says why) |
//! | 124 | it did not end within `--timeout` (it goes on; stderr names it), as `timeout(1)` |
//!
//! Nobody answers questions here, and the server knows it: a turn started by
//! SendMessageAndWait is not offered `ask_user`, so the model decides without asking.
//! (Confirmations are another matter: in an ASK session a shell or write call waits for
//! someone to answer it elsewhere, `octo chat` or the web UI, or for `--timeout`.)

use std::io::{self, Read, Write};

use anyhow::{Context, anyhow};
use clap::Args;

use super::{
    GlobalArgs,
    chat::{OnBusyArg, create_session, message_text},
    names::{model_name, profile_name, session_id, session_name},
    output,
};
use crate::pb;

/// The exit status when the wait ran out (the turn goes on), as `timeout(1)`.
pub const EXIT_TIMED_OUT: i32 = 124;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Session id or `sessions/{id}` [default: a new session titled after the prompt]
    #[arg(long, short, value_name = "ID")]
    pub session: Option<String>,
    /// Model id or `models/{id}` for this turn [default: the session's]
    #[arg(long, short, value_name = "MODEL")]
    pub model: Option<String>,
    /// The profile of the new session, an id or `profiles/{id}` [default: the default
    /// profile, if any]
    #[arg(long, short = 'p', value_name = "PROFILE", conflicts_with = "session")]
    pub profile: Option<String>,
    /// What to do when a turn is already running [default: enqueue]
    #[arg(long, value_enum, value_name = "POLICY")]
    pub on_busy: Option<OnBusyArg>,
    /// How long to wait for the answer (e.g. 90s, 10m; at most 1h) [default: 5m]
    #[arg(long, value_name = "DURATION", value_parser = output::parse_duration)]
    pub timeout: Option<prost_types::Duration>,
    /// The prompt; several words are joined with spaces; `-` reads it from stdin
    #[arg(required = true, value_name = "PROMPT")]
    pub prompt: Vec<String>,
}

pub async fn run(
    args: RunArgs,
    global: &GlobalArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let text = if args.prompt == ["-"] {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the prompt from stdin")?;
        message_text(&[text])?
    } else {
        message_text(&args.prompt)?
    };
    let existing = args.session.as_deref().map(session_name).transpose()?;
    let model = args.model.as_deref().map(model_name).transpose()?;
    let profile = args.profile.as_deref().map(profile_name).transpose()?;
    let client = global.connect().await?;
    let session = match existing {
        Some(session) => session,
        None => {
            let created = create_session(&client, model.clone(), profile).await?;
            // On stderr, so stdout is the answer alone; a script can follow up with it.
            writeln!(
                io::stderr(),
                "Created session {}",
                session_id(&created.name)
            )?;
            created.name
        }
    };
    let request = pb::SendMessageAndWaitRequest {
        session,
        parts: vec![pb::Part {
            kind: Some(pb::part::Kind::Text(text)),
        }],
        on_busy: args.on_busy.map_or(pb::BusyPolicy::Unspecified, Into::into) as i32,
        model: model.unwrap_or_default(),
        timeout: args.timeout,
    };
    let answered = match client.chat().send_message_and_wait(request).await {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == tonic::Code::DeadlineExceeded => {
            out.flush()?;
            io::stderr().write_all(super::describe_error(&anyhow!(status)).as_bytes())?;
            std::process::exit(EXIT_TIMED_OUT);
        }
        Err(status) => return Err(anyhow!(status)),
    };
    if global.json {
        output::write_json(out, &answered)?;
    } else if let Some(answer) = answered.replies.last() {
        let text = answer_text(answer);
        write!(out, "{text}")?;
        if !text.ends_with('\n') {
            writeln!(out)?;
        }
    }
    let turn = answered.turn.unwrap_or_default();
    match turn.status() {
        pb::TurnStatus::Succeeded => Ok(()),
        status => {
            let why = turn
                .error
                .map(|e| format!(": {} ({})", e.message, e.reason))
                .unwrap_or_default();
            Err(anyhow!(
                "the turn {}{why}",
                output::enum_label(status.as_str_name(), "TURN_STATUS_")
            ))
        }
    }
}

/// The text parts of a message, joined.
fn answer_text(message: &pb::Message) -> String {
    message
        .parts
        .iter()
        .filter_map(|p| match &p.kind {
            Some(pb::part::Kind::Text(text)) => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("")
}
