//! `octo chat`: send a message, then render the turn's event stream as it arrives.
//!
//! [`Renderer`] turns events into terminal text and is pure (events and a writer in,
//! text out). [`run`] drives one Chat call: what the turn says goes to stdout; the new
//! session's id, confirmation prompts, the model's questions (`ask_user`, see `input`),
//! notices and the closing summary go to stderr. Confirmations and questions are
//! answered from stdin lines, one at a time, oldest first; with stdin closed a
//! confirmation is denied and a question cancels the turn (nobody can answer it).
//! Ctrl-C cancels the turn (a second one quits at once). Exit status: 0 when the turn
//! succeeded, 1 when it did not, 130 after Ctrl-C.

use std::io::{self, IsTerminal, Write};

use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};

use super::{
    GlobalArgs,
    client::Client,
    names::{model_name, profile_name, session_id, session_name},
};
use crate::pb;

mod render;
mod stream;

pub use render::*;
use stream::{Answers, Interrupts, StreamOptions, stream_turn};

/// Exit status after Ctrl-C, as shells report a SIGINT.
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Args, Debug, PartialEq)]
pub struct ChatArgs {
    /// Session id or `sessions/{id}` to talk in
    #[arg(long, short, value_name = "ID", conflicts_with = "new")]
    pub session: Option<String>,
    /// Create a new session titled after the message (the default without --session)
    #[arg(long)]
    pub new: bool,
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
    /// The message; several words are joined with spaces
    #[arg(required = true, value_name = "MESSAGE")]
    pub message: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnBusyArg {
    /// Queue a new turn behind the running one
    Enqueue,
    /// Hand the message to the running turn at its next step
    Steer,
    /// Cancel the running turn, then run this one
    Interrupt,
    /// Fail instead
    Reject,
}

impl From<OnBusyArg> for pb::BusyPolicy {
    fn from(policy: OnBusyArg) -> Self {
        match policy {
            OnBusyArg::Enqueue => pb::BusyPolicy::Enqueue,
            OnBusyArg::Steer => pb::BusyPolicy::Steer,
            OnBusyArg::Interrupt => pb::BusyPolicy::Interrupt,
            OnBusyArg::Reject => pb::BusyPolicy::Reject,
        }
    }
}

/// Runs `octo chat`. A turn that does not succeed is an error (exit status 1); after
/// Ctrl-C the process exits with [`EXIT_INTERRUPTED`] once the turn has ended.
pub async fn run(
    args: ChatArgs,
    global: &GlobalArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    // Validate everything before connecting, so typos fail fast even without a server.
    let text = message_text(&args.message)?;
    let existing = args.session.as_deref().map(session_name).transpose()?;
    let model = args.model.as_deref().map(model_name).transpose()?;
    let profile = args.profile.as_deref().map(profile_name).transpose()?;
    let client = global.connect().await?;
    let mut err = io::stderr();

    let session = match existing {
        Some(session) => session,
        None => {
            let created = create_session(&client, model.clone(), profile).await?;
            writeln!(err, "Created session {}", session_id(&created.name))?;
            created.name
        }
    };
    let request = pb::ChatRequest {
        session,
        parts: vec![pb::Part {
            kind: Some(pb::part::Kind::Text(text)),
        }],
        on_busy: args.on_busy.map_or(pb::BusyPolicy::Unspecified, Into::into) as i32,
        model: model.unwrap_or_default(),
    };
    let options = StreamOptions {
        json: global.json,
        color: use_color(),
        stdin_terminal: io::stdin().is_terminal(),
        stderr_terminal: err.is_terminal(),
    };
    // Listen for Ctrl-C before the message goes out, so no press kills the process.
    let mut interrupts = Interrupts::install()?;
    let mut answers = Answers::default();
    let end = stream_turn(
        &client,
        request,
        options,
        &mut interrupts,
        &mut answers,
        out,
        &mut err,
    )
    .await?;
    out.flush()?;
    match end {
        End::Succeeded => Ok(()),
        End::Failed(reason) => Err(anyhow!(reason)),
        End::Interrupted => {
            let _ = err.flush();
            std::process::exit(EXIT_INTERRUPTED)
        }
    }
}

/// The message: the words joined with spaces; blank is an error.
pub(super) fn message_text(words: &[String]) -> anyhow::Result<String> {
    let text = words.join(" ");
    if text.trim().is_empty() {
        bail!("the message is empty");
    }
    Ok(text)
}

pub(super) async fn create_session(
    client: &Client,
    model: Option<String>,
    profile: Option<String>,
) -> anyhow::Result<pb::Session> {
    let session = pb::Session {
        // Untitled: the server titles it from the first message.
        source: pb::SessionSource::Manual as i32,
        model: model.unwrap_or_default(),
        profile: profile.unwrap_or_default(),
        ..Default::default()
    };
    let created = client
        .sessions()
        .create_session(pb::CreateSessionRequest {
            session: Some(session),
        })
        .await
        .context("cannot create a session")?
        .into_inner();
    Ok(created)
}

/// Colour only on a terminal, and not when `NO_COLOR` is set or `TERM` is `dumb`.
fn use_color() -> bool {
    io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> ChatArgs {
        match Cli::try_parse_from(args).expect("parses").command {
            Command::Chat(args) => args,
            other => panic!("not chat: {other:?}"),
        }
    }

    #[test]
    fn flags_parse() {
        let args = parse(&[
            "octo",
            "chat",
            "--session",
            "s1",
            "--model",
            "gpt",
            "--on-busy",
            "steer",
            "hello",
            "there",
        ]);
        assert_eq!(
            args,
            ChatArgs {
                session: Some("s1".into()),
                new: false,
                model: Some("gpt".into()),
                profile: None,
                on_busy: Some(OnBusyArg::Steer),
                message: vec!["hello".into(), "there".into()],
            }
        );
        assert_eq!(message_text(&args.message).expect("text"), "hello there");
        assert!(parse(&["octo", "chat", "--new", "hi"]).new);
        for bad in [
            &["octo", "chat"][..],
            &["octo", "chat", "--new", "--session", "s1", "hi"][..],
            &["octo", "chat", "--on-busy", "later", "hi"][..],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        assert!(message_text(&[" ".into()]).is_err());
        assert_eq!(
            pb::BusyPolicy::from(OnBusyArg::Interrupt),
            pb::BusyPolicy::Interrupt
        );
    }

    #[tokio::test]
    async fn bad_ids_fail_before_connecting() {
        let cli = Cli::try_parse_from([
            "octo",
            "--server",
            "http://127.0.0.1:1",
            "chat",
            "--session",
            "models/x",
            "hi",
        ])
        .expect("parses");
        let err = crate::cli::run(cli, &mut Vec::new())
            .await
            .expect_err("bad id");
        assert!(err.to_string().contains("session id"), "{err}");
    }
}
