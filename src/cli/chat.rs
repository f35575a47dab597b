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

use std::{
    collections::VecDeque,
    io::{self, BufRead, IsTerminal, Write},
};

use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};
use tokio::sync::mpsc;

use super::{
    GlobalArgs,
    client::{Client, describe_error},
    input::{input_prompt, parse_answer},
    names::{model_name, profile_name, session_id, session_name},
    output::{self, enum_label, fit},
    turns::{error_text, model_label, status_label, usage_text},
};
use crate::pb::{self, session_event::Kind};

/// Longest title a new session takes from its first message.
/// Longest tool arguments shown on a tool line.
const TOOL_ARGS_CHARS: usize = 200;
/// Longest tool result quoted after a failed or denied call.
const TOOL_RESULT_CHARS: usize = 200;
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

// ---------------------------------------------------------------------------------------
// Rendering: events in, text out.

const DIM: &str = "\x1b[2m";
const NORMAL: &str = "\x1b[22m";
const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const DEFAULT_COLOR: &str = "\x1b[39m";

/// Shown before a reasoning block.
pub const REASONING_PREFIX: &str = "thinking: ";
/// Tool output lines start with this.
pub const TOOL_OUTPUT_INDENT: &str = "  ";

/// What was written last.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Block {
    #[default]
    Nothing,
    Text,
    Reasoning,
    Tool,
}

/// Turns a turn's events into terminal text, one event at a time: text deltas inline,
/// reasoning set apart (dimmed in colour), tool calls as `⚙ tool {args}` with their
/// output indented and a `✓`/`✗` line when they finish.
#[derive(Debug)]
pub struct Renderer {
    color: bool,
    block: Block,
    /// The last character written ended a line (or nothing was written yet).
    line_start: bool,
}

impl Renderer {
    /// A renderer; `color` adds ANSI styling (for a terminal).
    pub fn new(color: bool) -> Self {
        Renderer {
            color,
            block: Block::Nothing,
            line_start: true,
        }
    }

    /// Writes what `event` shows. Events without a visible form write nothing.
    pub fn render(&mut self, event: &pb::SessionEvent, out: &mut dyn Write) -> io::Result<()> {
        match &event.kind {
            Some(Kind::TextDelta(delta)) => self.text(&delta.text, out),
            Some(Kind::ReasoningDelta(delta)) => self.reasoning(&delta.text, out),
            Some(Kind::MessageStarted(started)) if started.role() == pb::Role::Assistant => {
                // A new message starts on its own line.
                self.end_line(out)
            }
            Some(Kind::ToolCallStarted(started)) => {
                let (tool, arguments) = started
                    .tool_call
                    .as_ref()
                    .map_or(("?", ""), |c| (c.tool.as_str(), c.arguments_json.as_str()));
                self.end_line(out)?;
                let line = format!(
                    "⚙ {tool} {}\n",
                    fit(&compact_json(arguments), Some(TOOL_ARGS_CHARS))
                );
                self.write(out, &line)?;
                self.block = Block::Tool;
                Ok(())
            }
            Some(Kind::ToolCallOutput(output)) => self.tool_output(&output.text, out),
            Some(Kind::ToolCallFinished(finished)) => {
                self.end_line(out)?;
                let (ok, text) = tool_finished_text(finished);
                let line = match (ok, self.color) {
                    (true, true) => format!("{GREEN}✓{DEFAULT_COLOR} {text}\n"),
                    (false, true) => format!("{RED}✗{DEFAULT_COLOR} {text}\n"),
                    (true, false) => format!("✓ {text}\n"),
                    (false, false) => format!("✗ {text}\n"),
                };
                self.write(out, &line)?;
                self.block = Block::Tool;
                Ok(())
            }
            Some(Kind::TurnFinished(_)) => self.end_line(out),
            _ => Ok(()),
        }
    }

    /// Ends the current line if something is on it.
    pub fn end_line(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if !self.line_start {
            self.write(out, "\n")?;
        }
        Ok(())
    }

    fn text(&mut self, text: &str, out: &mut dyn Write) -> io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        if self.block == Block::Reasoning {
            self.end_line(out)?;
        }
        self.block = Block::Text;
        self.write(out, text)
    }

    fn reasoning(&mut self, text: &str, out: &mut dyn Write) -> io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        if self.block != Block::Reasoning {
            self.end_line(out)?;
            self.block = Block::Reasoning;
            self.styled(out, REASONING_PREFIX)?;
        }
        self.styled(out, text)
    }

    /// Reasoning text, dimmed when in colour (reset after every piece, so an interrupted
    /// stream never leaves the terminal dim).
    fn styled(&mut self, out: &mut dyn Write, text: &str) -> io::Result<()> {
        if self.color {
            out.write_all(DIM.as_bytes())?;
            self.write(out, text)?;
            out.write_all(NORMAL.as_bytes())
        } else {
            self.write(out, text)
        }
    }

    fn tool_output(&mut self, text: &str, out: &mut dyn Write) -> io::Result<()> {
        if self.block != Block::Tool {
            self.end_line(out)?;
            self.block = Block::Tool;
        }
        for piece in text.split_inclusive('\n') {
            if self.line_start {
                self.write(out, TOOL_OUTPUT_INDENT)?;
            }
            self.write(out, piece)?;
        }
        Ok(())
    }

    fn write(&mut self, out: &mut dyn Write, text: &str) -> io::Result<()> {
        if let Some(last) = text.chars().last() {
            out.write_all(text.as_bytes())?;
            self.line_start = last == '\n';
        }
        Ok(())
    }
}

/// The text of a list of events, as [`Renderer`] writes them.
pub fn render_events(events: &[pb::SessionEvent], color: bool) -> String {
    let mut renderer = Renderer::new(color);
    let mut out = Vec::new();
    for event in events {
        // Writing to a Vec cannot fail.
        let _ = renderer.render(event, &mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Arguments JSON on one line (re-serialised compactly); the text itself if it is not JSON.
fn compact_json(arguments: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(value) => value.to_string(),
        Err(_) => arguments.to_owned(),
    }
}

/// Whether a finished tool call went well, and its line after `✓`/`✗`:
/// `shell (exit 0, 12ms)`, `shell failed (exit 1, 3ms)`, `shell denied: <why>`.
fn tool_finished_text(finished: &pb::ToolCallFinished) -> (bool, String) {
    let Some(record) = &finished.record else {
        return (false, "tool call finished".to_owned());
    };
    let tool = record.call.as_ref().map_or("?", |c| c.tool.as_str());
    let mut details = Vec::new();
    if let Some(code) = record.exit_code {
        details.push(format!("exit {code}"));
    }
    if let Some(duration) = &finished.duration {
        details.push(output::duration(duration));
    }
    let details = if details.is_empty() {
        String::new()
    } else {
        format!(" ({})", details.join(", "))
    };
    let result = record
        .result
        .as_ref()
        .map(|r| r.output.trim())
        .filter(|r| !r.is_empty())
        .map(|r| {
            let first = r.lines().next().unwrap_or_default();
            format!(": {}", fit(first, Some(TOOL_RESULT_CHARS)))
        })
        .unwrap_or_default();
    match record.status() {
        pb::ToolCallStatus::Succeeded => (true, format!("{tool}{details}")),
        // A process's output has streamed already; other tools' errors have not.
        pb::ToolCallStatus::Failed if record.exit_code.is_some() => {
            (false, format!("{tool} failed{details}"))
        }
        pb::ToolCallStatus::Failed => (false, format!("{tool} failed{details}{result}")),
        pb::ToolCallStatus::Denied => (false, format!("{tool} denied{result}")),
        pb::ToolCallStatus::Cancelled => (false, format!("{tool} cancelled{details}")),
        status => (
            false,
            format!(
                "{tool} {}{details}",
                enum_label(status.as_str_name(), "TOOL_CALL_STATUS_")
            ),
        ),
    }
}

/// The question asked for a confirmation, without a newline:
/// `Allow shell {"command":"ls"}? [y]es/[n]o/[a]lways: `.
pub fn confirmation_prompt(confirmation: &pb::Confirmation) -> String {
    let (tool, arguments) = confirmation
        .tool_call
        .as_ref()
        .map_or(("?", ""), |c| (c.tool.as_str(), c.arguments_json.as_str()));
    // The whole call: a person decides on it. One line, no control characters.
    let arguments = fit(&compact_json(arguments), None);
    format!("Allow {tool} {arguments}? [y]es/[n]o/[a]lways: ")
}

/// An answer to the confirmation prompt: `y`/`yes`, `n`/`no`, `a`/`always` (any case);
/// anything else is `None`.
pub fn parse_decision(answer: &str) -> Option<pb::ConfirmationDecision> {
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Some(pb::ConfirmationDecision::Allow),
        "n" | "no" => Some(pb::ConfirmationDecision::Deny),
        "a" | "always" => Some(pb::ConfirmationDecision::AllowAlways),
        _ => None,
    }
}

/// The line printed on stderr when a turn ends:
/// `succeeded · mock · 25 in / 3 out tokens · 1.2s`.
pub fn summary_line(turn: &pb::Turn) -> String {
    let mut parts = vec![status_label(turn.status)];
    if !turn.model.is_empty() {
        parts.push(model_label(&turn.model));
    }
    if let Some(usage) = turn
        .usage
        .as_ref()
        .filter(|u| u.input_tokens != 0 || u.output_tokens != 0)
    {
        parts.push(usage_text(usage));
    }
    if let Some(latency) = &turn.latency {
        parts.push(output::duration(latency));
    }
    format!("[{}]", parts.join(" · "))
}

/// What stderr says about an event besides the rendering, if anything.
pub fn notice(event: &pb::SessionEvent) -> Option<String> {
    match &event.kind {
        Some(Kind::TurnQueued(queued)) if queued.position > 1 => Some(format!(
            "(queued: {} turns ahead of this one)",
            queued.position - 1
        )),
        Some(Kind::Error(error)) => Some(format!("warning: {}: {}", error.reason, error.message)),
        Some(Kind::ContextCompacted(compacted)) => Some(format!(
            "(context compacted: {} earlier messages summarised, ~{} -> ~{} tokens)",
            compacted.replaced_messages, compacted.tokens_before, compacted.tokens_after
        )),
        _ => None,
    }
}

/// How a turn's end maps to the command's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The turn succeeded: exit 0.
    Succeeded,
    /// The turn failed, was cancelled elsewhere, or was interrupted: exit 1 with this text.
    Failed(String),
    /// Ctrl-C: exit 130.
    Interrupted,
}

/// The result of a finished turn; `interrupted` when Ctrl-C was pressed.
pub fn turn_end(turn: &pb::Turn, interrupted: bool) -> End {
    if interrupted {
        return End::Interrupted;
    }
    if turn.status() == pb::TurnStatus::Succeeded {
        return End::Succeeded;
    }
    let mut text = format!("turn {}", status_label(turn.status));
    if let Some(error) = turn
        .error
        .as_ref()
        .filter(|e| !e.reason.is_empty() || !e.message.is_empty())
    {
        text.push_str(": ");
        text.push_str(&error_text(error, 1_000));
    }
    End::Failed(text)
}

// ---------------------------------------------------------------------------------------
// Driving one Chat call.

#[derive(Clone, Copy, Debug)]
struct StreamOptions {
    /// One canonical JSON event per line instead of the rendering.
    json: bool,
    /// ANSI styling on stdout.
    color: bool,
    /// Stdin is a terminal: unclear answers are asked again and typed answers not echoed.
    stdin_terminal: bool,
    /// Stderr is a terminal, where Ctrl-C echoes `^C` in the middle of a line.
    stderr_terminal: bool,
}

/// Ctrl-C presses, counted from [`Interrupts::install`] on.
struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    /// Takes over SIGINT now (what `tokio::signal::ctrl_c` does on its first poll).
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .context("cannot listen for Ctrl-C")?;
            Ok(Interrupts { signal })
        }
        #[cfg(not(unix))]
        Ok(Interrupts {})
    }

    /// The next press; never, when presses cannot be observed.
    async fn recv(&mut self) {
        #[cfg(unix)]
        if self.signal.recv().await.is_some() {
            return;
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_ok() {
            return;
        }
        std::future::pending::<()>().await
    }
}

/// Lines typed on stdin, read on a thread of their own (a blocking read cannot be
/// cancelled and must not hold up the exit). The thread starts at the first question.
#[derive(Debug, Default)]
struct Answers {
    lines: Option<mpsc::UnboundedReceiver<String>>,
    closed: bool,
}

impl Answers {
    /// The next line without its line ending; `None` once stdin is closed.
    async fn next(&mut self) -> Option<String> {
        if self.closed {
            return None;
        }
        let lines = self.lines.get_or_insert_with(read_stdin_lines);
        match lines.recv().await {
            Some(line) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
            None => {
                self.closed = true;
                None
            }
        }
    }
}

fn read_stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (sender, receiver) = mpsc::unbounded_channel();
    // Without a thread the sender is dropped with the closure: stdin reads as closed.
    let _ = std::thread::Builder::new()
        .name("octo-stdin".to_owned())
        .spawn(move || {
            let stdin = io::stdin();
            loop {
                let mut line = String::new();
                match stdin.lock().read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if sender.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    receiver
}

/// Said on the first Ctrl-C.
const CANCELLING: &str = "cancelling the turn (press Ctrl-C again to quit)";

/// What woke the loop.
enum Step {
    Event(Box<Result<Option<pb::SessionEvent>, tonic::Status>>),
    Answer(Option<String>),
    Interrupt,
}

/// What waits for the person at the terminal.
#[derive(Clone, Debug)]
enum Waiting {
    Confirmation(pb::Confirmation),
    /// A question of the model (`ask_user`).
    Input(pb::InputRequest),
}

impl Waiting {
    fn name(&self) -> &str {
        match self {
            Waiting::Confirmation(c) => &c.name,
            Waiting::Input(i) => &i.name,
        }
    }

    fn prompt(&self) -> String {
        match self {
            Waiting::Confirmation(c) => confirmation_prompt(c),
            Waiting::Input(i) => input_prompt(i),
        }
    }
}

/// The state of one streamed turn.
struct Turn<'a> {
    client: &'a Client,
    options: StreamOptions,
    err: &'a mut (dyn Write + Send),
    /// `sessions/{s}/turns/{t}`, once an event names it.
    name: Option<String>,
    /// Ctrl-C was pressed.
    interrupted: bool,
    /// CancelTurn was called.
    cancel_sent: bool,
    /// Confirmations and questions to answer, oldest first; the first is being asked.
    waiting: VecDeque<Waiting>,
    /// stderr ends in an unanswered prompt (no newline yet).
    prompt_open: bool,
}

/// Sends the message and follows its turn to the end.
async fn stream_turn(
    client: &Client,
    request: pb::ChatRequest,
    options: StreamOptions,
    interrupts: &mut Interrupts,
    answers: &mut Answers,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> anyhow::Result<End> {
    let mut turn = Turn {
        client,
        options,
        err,
        name: None,
        interrupted: false,
        cancel_sent: false,
        waiting: VecDeque::new(),
        prompt_open: false,
    };
    let mut chat = client.chat();
    let call = chat.chat(request);
    tokio::pin!(call);
    let mut stream = loop {
        tokio::select! {
            response = &mut call => break response?.into_inner(),
            () = interrupts.recv() => {
                if turn.interrupted {
                    return Ok(End::Interrupted);
                }
                // The turn is not known yet: cancel it as soon as an event names it.
                turn.interrupted = true;
                turn.notice_interrupt(CANCELLING)?;
            }
        }
    };

    let mut renderer = Renderer::new(options.color);
    loop {
        let asking = !turn.waiting.is_empty();
        let step = tokio::select! {
            message = stream.message() => Step::Event(Box::new(message)),
            answer = answers.next(), if asking => Step::Answer(answer),
            () = interrupts.recv() => Step::Interrupt,
        };
        match step {
            Step::Event(message) => {
                let Some(event) = (*message)? else {
                    if turn.interrupted {
                        return Ok(End::Interrupted);
                    }
                    bail!("the event stream ended before the turn finished");
                };
                if options.json {
                    output::write_json_line(out, &event)?;
                } else {
                    renderer.render(&event, out)?;
                }
                out.flush()?;
                if let Some(end) = turn.on_event(&event).await? {
                    return Ok(end);
                }
            }
            Step::Answer(answer) => turn.on_answer(answer).await?,
            Step::Interrupt => {
                if turn.interrupted {
                    turn.notice_interrupt("quitting; the turn may still be running")?;
                    return Ok(End::Interrupted);
                }
                turn.interrupted = true;
                turn.notice_interrupt(CANCELLING)?;
                turn.cancel().await?;
            }
        }
    }
}

impl Turn<'_> {
    /// Handles an event after it was shown; `Some` when the turn is over.
    async fn on_event(&mut self, event: &pb::SessionEvent) -> anyhow::Result<Option<End>> {
        if self.name.is_none() {
            let named = match &event.kind {
                Some(Kind::TurnQueued(pb::TurnQueued { turn: Some(t), .. }))
                | Some(Kind::TurnStarted(pb::TurnStarted { turn: Some(t) })) => t.name.as_str(),
                _ => event.turn.as_str(),
            };
            if !named.is_empty() {
                self.name = Some(named.to_owned());
                if self.interrupted {
                    self.cancel().await?;
                }
            }
        }
        if let Some(text) = notice(event) {
            self.notice(&text)?;
        }
        match &event.kind {
            Some(Kind::ConfirmationRequested(requested)) => {
                if let Some(confirmation) = &requested.confirmation {
                    self.wait_for(Waiting::Confirmation(confirmation.clone()))?;
                }
            }
            Some(Kind::InputRequested(requested)) => {
                if let Some(request) = &requested.input_request {
                    self.wait_for(Waiting::Input(request.clone()))?;
                }
            }
            Some(Kind::ConfirmationResolved(resolved)) => {
                let how = match resolved.decision() {
                    pb::ConfirmationDecision::Unspecified => "confirmation withdrawn".to_owned(),
                    decision => format!(
                        "confirmation answered elsewhere: {}",
                        enum_label(decision.as_str_name(), "CONFIRMATION_DECISION_")
                    ),
                };
                self.resolved(&resolved.confirmation, &how)?;
            }
            Some(Kind::InputResolved(resolved)) => {
                let how = if resolved.answer.is_empty() {
                    "question withdrawn".to_owned()
                } else {
                    format!(
                        "question answered elsewhere: {}",
                        fit(&resolved.answer, Some(80))
                    )
                };
                self.resolved(&resolved.input_request, &how)?;
            }
            Some(Kind::TurnFinished(finished)) => {
                let turn = finished.turn.clone().unwrap_or_default();
                if !self.options.json {
                    self.notice(&summary_line(&turn))?;
                }
                return Ok(Some(turn_end(&turn, self.interrupted)));
            }
            _ => {}
        }
        Ok(None)
    }

    /// Queues what waits for an answer; asks at once when nothing else is being asked.
    fn wait_for(&mut self, waiting: Waiting) -> anyhow::Result<()> {
        self.waiting.push_back(waiting);
        if self.waiting.len() == 1 {
            self.ask()?;
        }
        Ok(())
    }

    /// A confirmation or question answered elsewhere or withdrawn (`how` says which);
    /// our own answers are off the list already.
    fn resolved(&mut self, name: &str, how: &str) -> anyhow::Result<()> {
        let Some(position) = self.waiting.iter().position(|w| w.name() == name) else {
            return Ok(());
        };
        self.waiting.remove(position);
        if position == 0 {
            self.notice(&format!("({how})"))?;
            if !self.waiting.is_empty() {
                self.ask()?;
            }
        }
        Ok(())
    }

    /// Handles a line typed for the first waiting confirmation or question (`None`:
    /// stdin closed).
    async fn on_answer(&mut self, answer: Option<String>) -> anyhow::Result<()> {
        let Some(waiting) = self.waiting.front().cloned() else {
            return Ok(());
        };
        if let (Some(line), false) = (&answer, self.options.stdin_terminal) {
            // Show what was piped in, as if typed.
            writeln!(self.err, "{}", fit(line, Some(80)))?;
        }
        if answer.is_some() {
            self.prompt_open = false;
        }
        match waiting {
            Waiting::Confirmation(confirmation) => {
                self.on_confirmation_answer(confirmation, answer).await
            }
            Waiting::Input(request) => self.on_input_answer(request, answer).await,
        }
    }

    async fn on_confirmation_answer(
        &mut self,
        confirmation: pb::Confirmation,
        answer: Option<String>,
    ) -> anyhow::Result<()> {
        let tool = confirmation
            .tool_call
            .as_ref()
            .map_or("the tool call", |c| c.tool.as_str())
            .to_owned();
        let decision = match answer {
            None => {
                self.notice(&format!("no answer (stdin is closed): denying {tool}"))?;
                pb::ConfirmationDecision::Deny
            }
            Some(line) => match parse_decision(&line) {
                Some(decision) => decision,
                None if self.options.stdin_terminal => {
                    write!(self.err, "Please answer y, n or a. ")?;
                    return self.ask();
                }
                None => {
                    self.notice(&format!(
                        "unrecognised answer {:?}: denying {tool}",
                        fit(&line, Some(40))
                    ))?;
                    pb::ConfirmationDecision::Deny
                }
            },
        };
        self.waiting.pop_front();
        let answered = self
            .client
            .chat()
            .respond_to_confirmation(pb::RespondToConfirmationRequest {
                name: confirmation.name.clone(),
                decision: decision as i32,
            })
            .await;
        if let Err(status) = answered {
            let text = describe_error(&anyhow::Error::new(status));
            self.notice(&format!(
                "cannot answer the confirmation: {}",
                text.trim_end()
            ))?;
        }
        self.ask()
    }

    /// A question's answer goes to the model; with stdin closed nobody can answer, so
    /// the turn is cancelled (it would wait for ever).
    async fn on_input_answer(
        &mut self,
        request: pb::InputRequest,
        answer: Option<String>,
    ) -> anyhow::Result<()> {
        let Some(line) = answer else {
            self.notice("no answer (stdin is closed): cancelling the turn")?;
            self.waiting.pop_front();
            return self.cancel().await;
        };
        let answer = match parse_answer(&request, &line) {
            Ok(answer) => answer,
            Err(hint) => {
                // The prompt is several lines: asked again below the hint.
                writeln!(self.err, "{hint}")?;
                return self.ask();
            }
        };
        self.waiting.pop_front();
        let answered = self
            .client
            .chat()
            .respond_to_input(pb::RespondToInputRequest {
                name: request.name.clone(),
                answer,
            })
            .await;
        if let Err(status) = answered {
            let text = describe_error(&anyhow::Error::new(status));
            self.notice(&format!("cannot answer the question: {}", text.trim_end()))?;
        }
        self.ask()
    }

    /// Prints the prompt for the first waiting confirmation or question, if any.
    fn ask(&mut self) -> anyhow::Result<()> {
        if let Some(waiting) = self.waiting.front() {
            write!(self.err, "{}", waiting.prompt())?;
            self.err.flush()?;
            self.prompt_open = true;
        }
        Ok(())
    }

    /// Calls CancelTurn once the turn is known; failures are reported, not fatal.
    async fn cancel(&mut self) -> anyhow::Result<()> {
        let Some(name) = self.name.clone() else {
            return Ok(());
        };
        if self.cancel_sent {
            return Ok(());
        }
        self.cancel_sent = true;
        let cancelled = self
            .client
            .chat()
            .cancel_turn(pb::CancelTurnRequest { name })
            .await;
        if let Err(status) = cancelled {
            let text = describe_error(&anyhow::Error::new(status));
            self.notice(&format!("cannot cancel the turn: {}", text.trim_end()))?;
        }
        Ok(())
    }

    /// A notice after Ctrl-C: on a terminal, on a line of its own after the echoed `^C`.
    fn notice_interrupt(&mut self, text: &str) -> anyhow::Result<()> {
        if self.options.stderr_terminal && !self.prompt_open {
            writeln!(self.err)?;
        }
        self.notice(text)
    }

    /// A line on stderr, after ending an open prompt.
    fn notice(&mut self, text: &str) -> anyhow::Result<()> {
        if self.prompt_open {
            writeln!(self.err)?;
            self.prompt_open = false;
        }
        writeln!(self.err, "{text}")?;
        self.err.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn event(kind: Kind) -> pb::SessionEvent {
        pb::SessionEvent {
            session: "sessions/s1".into(),
            turn: "sessions/s1/turns/t1".into(),
            kind: Some(kind),
            ..Default::default()
        }
    }

    fn text(text: &str) -> pb::SessionEvent {
        event(Kind::TextDelta(pb::TextDelta {
            message: "sessions/s1/messages/m1".into(),
            index: 0,
            text: text.into(),
        }))
    }

    fn reasoning(text: &str) -> pb::SessionEvent {
        event(Kind::ReasoningDelta(pb::ReasoningDelta {
            message: "sessions/s1/messages/m1".into(),
            index: 0,
            text: text.into(),
        }))
    }

    fn assistant_message() -> pb::SessionEvent {
        event(Kind::MessageStarted(pb::MessageStarted {
            message: "sessions/s1/messages/m2".into(),
            role: pb::Role::Assistant as i32,
        }))
    }

    fn shell_call() -> pb::ToolCall {
        pb::ToolCall {
            id: "call_1".into(),
            tool: "shell".into(),
            arguments_json: r#"{ "command": "echo hi" }"#.into(),
        }
    }

    fn tool_started() -> pb::SessionEvent {
        event(Kind::ToolCallStarted(pb::ToolCallStarted {
            tool_call: Some(shell_call()),
        }))
    }

    fn tool_output(text: &str) -> pb::SessionEvent {
        event(Kind::ToolCallOutput(pb::ToolCallOutput {
            tool_call_id: "call_1".into(),
            stream: pb::OutputStream::Stdout as i32,
            text: text.into(),
        }))
    }

    fn tool_finished(
        status: pb::ToolCallStatus,
        exit_code: Option<i32>,
        result: &str,
    ) -> pb::SessionEvent {
        event(Kind::ToolCallFinished(pb::ToolCallFinished {
            record: Some(pb::ToolCallRecord {
                call: Some(shell_call()),
                status: status as i32,
                result: Some(pb::ToolResult {
                    tool_call_id: "call_1".into(),
                    output: result.into(),
                    is_error: status != pb::ToolCallStatus::Succeeded,
                }),
                exit_code,
                ..Default::default()
            }),
            duration: Some(prost_types::Duration {
                seconds: 0,
                nanos: 12_000_000,
            }),
        }))
    }

    fn finished_turn(status: pb::TurnStatus) -> pb::Turn {
        pb::Turn {
            name: "sessions/s1/turns/t1".into(),
            status: status as i32,
            model: "models/mock".into(),
            usage: Some(pb::Usage {
                input_tokens: 25,
                output_tokens: 3,
                ..Default::default()
            }),
            latency: Some(prost_types::Duration {
                seconds: 1,
                nanos: 200_000_000,
            }),
            ..Default::default()
        }
    }

    fn turn_finished(status: pb::TurnStatus) -> pb::SessionEvent {
        event(Kind::TurnFinished(pb::TurnFinished {
            turn: Some(finished_turn(status)),
        }))
    }

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

    #[test]
    fn text_deltas_concatenate_inline_and_end_with_one_newline() {
        let events = [
            text("Echo: "),
            text("hello "),
            text(""),
            text("world"),
            turn_finished(pb::TurnStatus::Succeeded),
        ];
        assert_eq!(render_events(&events, false), "Echo: hello world\n");
        // A reply that ends its own line gets no blank line after it.
        let events = [text("done\n"), turn_finished(pb::TurnStatus::Succeeded)];
        assert_eq!(render_events(&events, false), "done\n");
        // Nothing shown, nothing added.
        assert_eq!(
            render_events(&[turn_finished(pb::TurnStatus::Failed)], false),
            ""
        );
    }

    #[test]
    fn reasoning_is_set_apart_and_dimmed_only_in_colour() {
        let events = [
            reasoning("Let me "),
            reasoning("think."),
            text("Answer."),
            turn_finished(pb::TurnStatus::Succeeded),
        ];
        assert_eq!(
            render_events(&events, false),
            "thinking: Let me think.\nAnswer.\n"
        );
        let colored = render_events(&events, true);
        assert_eq!(
            colored,
            "\x1b[2mthinking: \x1b[22m\x1b[2mLet me \x1b[22m\x1b[2mthink.\x1b[22m\nAnswer.\n"
        );
    }

    #[test]
    fn tool_calls_show_a_line_indented_output_and_the_result() {
        let events = [
            text("Let me look."),
            tool_started(),
            tool_output("hi\nsecond"),
            tool_output(" line\n"),
            tool_finished(pb::ToolCallStatus::Succeeded, Some(0), "hi\nsecond line\n"),
            assistant_message(),
            text("Tool shell returned: hi"),
            turn_finished(pb::TurnStatus::Succeeded),
        ];
        assert_eq!(
            render_events(&events, false),
            "Let me look.\n\
             ⚙ shell {\"command\":\"echo hi\"}\n\
             \x20 hi\n\
             \x20 second line\n\
             ✓ shell (exit 0, 12ms)\n\
             Tool shell returned: hi\n"
        );
        // Output without a final newline still gets the result on a line of its own.
        let events = [
            tool_started(),
            tool_output("oops"),
            tool_finished(pb::ToolCallStatus::Failed, Some(2), "oops"),
        ];
        assert_eq!(
            render_events(&events, false),
            "⚙ shell {\"command\":\"echo hi\"}\n  oops\n✗ shell failed (exit 2, 12ms)\n"
        );
        let colored = render_events(&events[2..], true);
        assert_eq!(colored, "\x1b[31m✗\x1b[39m shell failed (exit 2, 12ms)\n");
    }

    #[test]
    fn denied_cancelled_and_failed_tools_say_why() {
        let render = |event| render_events(&[event], false);
        assert_eq!(
            render(tool_finished(
                pb::ToolCallStatus::Denied,
                None,
                "the user denied this tool call"
            )),
            "✗ shell denied: the user denied this tool call\n"
        );
        assert_eq!(
            render(tool_finished(pb::ToolCallStatus::Cancelled, None, "")),
            "✗ shell cancelled (12ms)\n"
        );
        assert_eq!(
            render(tool_finished(
                pb::ToolCallStatus::Failed,
                None,
                "no such file\nmore detail"
            )),
            "✗ shell failed (12ms): no such file\n"
        );
    }

    #[test]
    fn long_tool_arguments_are_cut_on_the_tool_line_but_not_in_the_prompt() {
        let long = format!(r#"{{"content":"{}"}}"#, "x".repeat(500));
        let started = event(Kind::ToolCallStarted(pb::ToolCallStarted {
            tool_call: Some(pb::ToolCall {
                tool: "write_file".into(),
                arguments_json: long.clone(),
                ..Default::default()
            }),
        }));
        let line = render_events(&[started], false);
        assert!(
            line.starts_with("⚙ write_file {\"content\":\"xxx"),
            "{line}"
        );
        assert!(line.ends_with("…\n"), "{line}");
        let confirmation = pb::Confirmation {
            tool_call: Some(pb::ToolCall {
                tool: "write_file".into(),
                arguments_json: long.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(confirmation_prompt(&confirmation).contains(&long));
    }

    #[test]
    fn the_prompt_names_the_call_and_answers_parse() {
        let confirmation = pb::Confirmation {
            name: "sessions/s1/confirmations/c1".into(),
            tool_call: Some(shell_call()),
            ..Default::default()
        };
        assert_eq!(
            confirmation_prompt(&confirmation),
            "Allow shell {\"command\":\"echo hi\"}? [y]es/[n]o/[a]lways: "
        );
        use pb::ConfirmationDecision::{Allow, AllowAlways, Deny};
        for (answer, decision) in [
            ("y", Some(Allow)),
            ("YES\n", Some(Allow)),
            (" n ", Some(Deny)),
            ("no", Some(Deny)),
            ("a", Some(AllowAlways)),
            ("Always", Some(AllowAlways)),
            ("", None),
            ("maybe", None),
            ("yy", None),
        ] {
            assert_eq!(parse_decision(answer), decision, "{answer:?}");
        }
    }

    #[test]
    fn confirmations_print_nothing_on_stdout() {
        let requested = event(Kind::ConfirmationRequested(pb::ConfirmationRequested {
            confirmation: Some(pb::Confirmation::default()),
        }));
        assert_eq!(render_events(&[requested], false), "");
    }

    #[test]
    fn summary_and_end_follow_the_turn() {
        let succeeded = finished_turn(pb::TurnStatus::Succeeded);
        assert_eq!(
            summary_line(&succeeded),
            "[succeeded · mock · 25 in / 3 out tokens · 1.2s]"
        );
        assert_eq!(turn_end(&succeeded, false), End::Succeeded);
        assert_eq!(turn_end(&succeeded, true), End::Interrupted);

        let mut failed = finished_turn(pb::TurnStatus::Failed);
        failed.error = Some(pb::TurnError {
            reason: "PROVIDER_UNAVAILABLE".into(),
            message: "overloaded".into(),
        });
        assert_eq!(
            turn_end(&failed, false),
            End::Failed("turn failed: PROVIDER_UNAVAILABLE: overloaded".into())
        );
        let cancelled = finished_turn(pb::TurnStatus::Cancelled);
        assert_eq!(
            turn_end(&cancelled, false),
            End::Failed("turn cancelled".into())
        );
        assert_eq!(turn_end(&cancelled, true), End::Interrupted);
        assert_eq!(summary_line(&pb::Turn::default()), "[-]");
        let mut empty = finished_turn(pb::TurnStatus::Failed);
        empty.usage = Some(pb::Usage::default());
        empty.latency = None;
        assert_eq!(summary_line(&empty), "[failed · mock]");
    }

    #[test]
    fn notices_cover_queueing_and_errors() {
        let queued = |position| {
            event(Kind::TurnQueued(pb::TurnQueued {
                turn: None,
                position,
            }))
        };
        assert_eq!(notice(&queued(1)), None);
        assert_eq!(
            notice(&queued(3)).as_deref(),
            Some("(queued: 2 turns ahead of this one)")
        );
        let error = event(Kind::Error(pb::ErrorEvent {
            reason: "RATE_LIMITED".into(),
            message: "retrying".into(),
            retry_delay: None,
        }));
        assert_eq!(
            notice(&error).as_deref(),
            Some("warning: RATE_LIMITED: retrying")
        );
        assert_eq!(notice(&text("x")), None);
    }
}
