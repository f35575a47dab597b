//! `ask_user`: the model asks the person (or program) using the session a question,
//! optionally with choices, and gets the answer back as the tool call's result.
//!
//! This module owns what the model is told (the spec) and the rules a question and an
//! answer obey. The waiting is the runtime's (`runtime::input`): only a turn's live
//! state can wait for RespondToInput, so the turn intercepts calls of this tool instead
//! of running them here. The tool is offered only where someone may answer (an attended
//! session, see `SessionSource::is_attended`, and a turn not started unattended); it is
//! a read for the permission gate, so ASK mode never asks to confirm it and READ_ONLY
//! offers it (asking changes nothing). `run` is reached only where nobody can answer (a
//! model calling the tool without being offered it) and refuses.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Access, Tool, ToolContext, ToolOutcome, args};
use crate::domain::tool::ToolSpec;

/// The tool's name.
pub const NAME: &str = "ask_user";
/// At most this many choices.
pub const MAX_CHOICES: usize = 20;
/// Longest question, in characters.
pub const MAX_QUESTION_CHARS: usize = 4000;
/// Longest choice, in characters.
pub const MAX_CHOICE_CHARS: usize = 500;

/// The question tool (see the module doc).
#[derive(Clone, Copy, Debug, Default)]
pub struct AskUser;

/// A question as the model asked it, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub question: String,
    /// Suggested answers, in the model's order; empty for an open question.
    pub choices: Vec<String>,
    /// Whether an answer outside `choices` is accepted (always, without choices).
    pub allow_free_text: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    question: String,
    #[serde(default)]
    choices: Vec<String>,
    allow_free_text: Option<bool>,
}

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "question": {
                "type": "string",
                "minLength": 1,
                "description": "The question, complete and self-contained: the user sees it on its own."
            },
            "choices": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "maxItems": MAX_CHOICES,
                "description": "Answers to choose from, when there are a few sensible ones. Omit for an open question."
            },
            "allow_free_text": {
                "type": "boolean",
                "description": "With choices: whether the user may also answer something else. Default false."
            }
        },
        "required": ["question"],
        "additionalProperties": false
    })
}

impl Question {
    /// The question in a call's arguments, or what is wrong with them (told to the
    /// model as the call's error result).
    pub fn parse(arguments: Value) -> Result<Question, String> {
        let args: Args = args::parse(NAME, &parameters(), arguments)?;
        let question = args.question.trim().to_owned();
        if question.is_empty() {
            return Err("invalid arguments for `ask_user`: `question` is empty".into());
        }
        if question.chars().count() > MAX_QUESTION_CHARS {
            return Err(format!(
                "invalid arguments for `ask_user`: `question` is longer than {MAX_QUESTION_CHARS} characters"
            ));
        }
        if args.choices.len() > MAX_CHOICES {
            return Err(format!(
                "invalid arguments for `ask_user`: at most {MAX_CHOICES} `choices`"
            ));
        }
        let mut choices: Vec<String> = Vec::with_capacity(args.choices.len());
        for choice in &args.choices {
            let choice = choice.trim();
            if choice.is_empty() {
                return Err("invalid arguments for `ask_user`: a choice is empty".into());
            }
            if choice.chars().count() > MAX_CHOICE_CHARS {
                return Err(format!(
                    "invalid arguments for `ask_user`: a choice is longer than {MAX_CHOICE_CHARS} characters"
                ));
            }
            // The same choice twice would be one button showing twice.
            if !choices.iter().any(|c| c == choice) {
                choices.push(choice.to_owned());
            }
        }
        let allow_free_text = choices.is_empty() || args.allow_free_text.unwrap_or(false);
        Ok(Question {
            question,
            choices,
            allow_free_text,
        })
    }

    /// The answer as the model gets it (without surrounding whitespace), or why it is
    /// not acceptable: empty, longer than `max_bytes`, or not one of the choices when
    /// free text is not allowed.
    pub fn accept(&self, answer: &str, max_bytes: usize) -> Result<String, String> {
        let answer = answer.trim();
        if answer.is_empty() {
            return Err("must not be empty".into());
        }
        if answer.len() > max_bytes {
            return Err(format!(
                "is {} bytes; the limit is {max_bytes}",
                answer.len()
            ));
        }
        if !self.allow_free_text && !self.choices.iter().any(|c| c == answer) {
            return Err(format!(
                "must be one of the choices ({}); this question does not allow free text",
                self.choices
                    .iter()
                    .map(|c| format!("{c:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(answer.to_owned())
    }
}

#[async_trait::async_trait]
impl Tool for AskUser {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.into(),
            description: "Ask the user a question and wait for the answer, which is this \
                          tool's result. Use it when you cannot go on well without their \
                          decision or information (an ambiguous request, a choice between \
                          approaches, a missing value); do not ask what you can find out \
                          yourself. Give `choices` when a few answers make sense."
                .into(),
            parameters: parameters(),
        }
    }

    fn access(&self) -> Access {
        // Asking changes nothing: never confirmed, offered in READ_ONLY.
        Access::Read
    }

    /// Only reached where nobody can answer (the turn answers attended calls itself).
    async fn run(&self, _: Value, _: ToolContext) -> ToolOutcome {
        ToolOutcome::error(
            "nobody can answer questions in this turn (it runs unattended): decide \
             yourself, or say in your reply what you need to know",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_parse_with_choices_and_defaults() {
        let q = Question::parse(json!({"question": " Which one? ", "choices": ["a", " b ", "a"]}))
            .expect("valid");
        assert_eq!(
            q,
            Question {
                question: "Which one?".into(),
                choices: vec!["a".into(), "b".into()],
                allow_free_text: false,
            }
        );
        let open = Question::parse(json!({"question": "Name?"})).expect("valid");
        assert!(open.allow_free_text, "an open question takes any answer");
        let both = Question::parse(
            json!({"question": "Colour?", "choices": ["red"], "allow_free_text": true}),
        )
        .expect("valid");
        assert!(both.allow_free_text);
    }

    #[test]
    fn bad_questions_say_what_is_wrong() {
        for (arguments, expected) in [
            (json!({}), "missing required argument `question`"),
            (json!({"question": "  "}), "`question` is empty"),
            (
                json!({"question": "q", "choices": "a"}),
                "`choices` must be",
            ),
            (
                json!({"question": "q", "choices": [" "]}),
                "a choice is empty",
            ),
            (
                json!({"question": "q", "extra": 1}),
                "unknown argument `extra`",
            ),
            (
                json!({"question": "q", "choices": vec!["x"; MAX_CHOICES + 1]}),
                "at most 20",
            ),
        ] {
            let err = Question::parse(arguments.clone()).expect_err("invalid");
            assert!(err.contains(expected), "{arguments}: {err}");
        }
    }

    #[test]
    fn answers_must_fit_the_question() {
        let q = Question::parse(json!({"question": "q", "choices": ["Rust", "Go"]})).expect("q");
        assert_eq!(q.accept(" Go\n", 100), Ok("Go".into()));
        assert!(
            q.accept("go", 100)
                .expect_err("not a choice")
                .contains("\"Rust\", \"Go\"")
        );
        assert_eq!(q.accept("   ", 100), Err("must not be empty".into()));
        let open = Question::parse(json!({"question": "q"})).expect("q");
        assert_eq!(open.accept("anything", 100), Ok("anything".into()));
        assert!(open.accept(&"x".repeat(101), 100).is_err());
    }

    #[test]
    fn the_spec_is_a_read_with_a_closed_schema() {
        let spec = AskUser.spec();
        assert_eq!(spec.name, NAME);
        assert_eq!(spec.parameters["additionalProperties"], false);
        assert_eq!(spec.parameters["required"], json!(["question"]));
        assert_eq!(AskUser.access(), Access::Read);
    }
}
