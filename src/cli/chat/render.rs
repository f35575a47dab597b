//! Rendering a turn's events as terminal text: pure (events and a writer in, text
//! out), so it is tested without a terminal or a server.

use std::io::{self, Write};

use crate::cli::{
    output::{self, enum_label, fit},
    turns::{error_text, model_label, status_label, usage_text},
};
use crate::pb::{self, session_event::Kind};

/// Longest tool arguments shown on a tool line.
const TOOL_ARGS_CHARS: usize = 200;
/// Longest tool result quoted after a failed or denied call.
const TOOL_RESULT_CHARS: usize = 200;

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

#[cfg(test)]
mod tests {
    use super::*;

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
            reason: crate::domain::reason::PROVIDER_UNAVAILABLE.into(),
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
