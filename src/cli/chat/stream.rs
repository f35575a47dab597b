//! Driving one Chat call: the event stream, Ctrl-C, and the answers to confirmations
//! and questions read from stdin.

use std::{
    collections::VecDeque,
    io::{self, BufRead, Write},
};

use anyhow::{Context, bail};
use tokio::sync::mpsc;

use super::*;
use crate::cli::{
    client::{Client, describe_error},
    input::{input_prompt, parse_answer},
    output::{self, enum_label, fit},
};
use crate::pb::{self, session_event::Kind};

#[derive(Clone, Copy, Debug)]
pub(super) struct StreamOptions {
    /// One canonical JSON event per line instead of the rendering.
    pub(super) json: bool,
    /// ANSI styling on stdout.
    pub(super) color: bool,
    /// Stdin is a terminal: unclear answers are asked again and typed answers not echoed.
    pub(super) stdin_terminal: bool,
    /// Stderr is a terminal, where Ctrl-C echoes `^C` in the middle of a line.
    pub(super) stderr_terminal: bool,
}

/// Ctrl-C presses, counted from [`Interrupts::install`] on.
pub(super) struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    /// Takes over SIGINT now (what `tokio::signal::ctrl_c` does on its first poll).
    pub(super) fn install() -> anyhow::Result<Self> {
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
pub(super) struct Answers {
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

pub(super) fn read_stdin_lines() -> mpsc::UnboundedReceiver<String> {
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
pub(super) async fn stream_turn(
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
