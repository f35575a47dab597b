//! The model's questions (`ask_user`) as `octo chat` asks them: the prompt shown on
//! stderr and how a typed line becomes the answer sent with RespondToInput. Pure: text
//! in, text out.

use super::output::fit;
use crate::pb;

/// Longest choice shown on its line of the prompt.
const CHOICE_CHARS: usize = 200;

/// The prompt for a question, ending without a newline where the answer is typed:
///
/// ```text
/// ? Which language?
///   1) Rust
///   2) Go
/// Answer [1-2]:
/// ```
pub fn input_prompt(request: &pb::InputRequest) -> String {
    let mut prompt = String::new();
    // One line per line of the question; control characters go.
    for line in request.question.lines() {
        let line: String = line.chars().filter(|c| !c.is_control()).collect();
        if prompt.is_empty() {
            prompt.push_str("? ");
        } else {
            prompt.push_str("  ");
        }
        prompt.push_str(&line);
        prompt.push('\n');
    }
    if prompt.is_empty() {
        prompt.push_str("?\n");
    }
    for (i, choice) in request.choices.iter().enumerate() {
        prompt.push_str(&format!(
            "  {}) {}\n",
            i + 1,
            fit(choice, Some(CHOICE_CHARS))
        ));
    }
    let hint = match (request.choices.len(), request.allow_free_text) {
        (0, _) => String::new(),
        (1, false) => " [1]".to_owned(),
        (1, true) => " [1, or your own answer]".to_owned(),
        (n, false) => format!(" [1-{n}]"),
        (n, true) => format!(" [1-{n}, or your own answer]"),
    };
    prompt.push_str(&format!("Answer{hint}: "));
    prompt
}

/// The answer a typed line gives: a choice's number, a choice's text in any case (sent
/// as the choice is written), or, where free text is allowed, the line itself. `Err`
/// says what to type instead.
pub fn parse_answer(request: &pb::InputRequest, line: &str) -> Result<String, String> {
    let line = line.trim();
    let choices = &request.choices;
    let valid = if choices.is_empty() {
        "an answer".to_owned()
    } else if request.allow_free_text {
        format!("a number from 1 to {}, or your own answer", choices.len())
    } else {
        format!("a number from 1 to {}", choices.len())
    };
    if line.is_empty() {
        return Err(format!("Please type {valid}."));
    }
    if let Ok(number) = line.parse::<usize>()
        && (1..=choices.len()).contains(&number)
    {
        return Ok(choices[number - 1].clone());
    }
    if let Some(choice) = choices.iter().find(|c| c.trim().eq_ignore_ascii_case(line)) {
        return Ok(choice.clone());
    }
    if request.allow_free_text || choices.is_empty() {
        return Ok(line.to_owned());
    }
    Err(format!("Please type {valid}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(choices: &[&str], allow_free_text: bool) -> pb::InputRequest {
        pb::InputRequest {
            name: "sessions/s/inputRequests/i".into(),
            question: "Which language?".into(),
            choices: choices.iter().map(|c| (*c).to_owned()).collect(),
            allow_free_text,
            ..Default::default()
        }
    }

    #[test]
    fn prompts_number_the_choices() {
        assert_eq!(
            input_prompt(&request(&["Rust", "Go"], false)),
            "? Which language?\n  1) Rust\n  2) Go\nAnswer [1-2]: "
        );
        assert_eq!(
            input_prompt(&request(&["Rust"], true)),
            "? Which language?\n  1) Rust\nAnswer [1, or your own answer]: "
        );
        let mut open = request(&[], true);
        open.question = "Your name?\nFull, please.\u{7}".into();
        assert_eq!(
            input_prompt(&open),
            "? Your name?\n  Full, please.\nAnswer: "
        );
    }

    #[test]
    fn answers_are_numbers_choices_or_free_text() {
        let closed = request(&["Rust", "Go"], false);
        assert_eq!(parse_answer(&closed, "2\n"), Ok("Go".into()));
        assert_eq!(parse_answer(&closed, " rust "), Ok("Rust".into()));
        assert_eq!(
            parse_answer(&closed, "3"),
            Err("Please type a number from 1 to 2.".into())
        );
        assert!(parse_answer(&closed, "Python").is_err());
        assert!(parse_answer(&closed, "").is_err());
        let free = request(&["Rust", "Go"], true);
        assert_eq!(parse_answer(&free, "Python"), Ok("Python".into()));
        assert_eq!(parse_answer(&free, "1"), Ok("Rust".into()));
        let open = request(&[], true);
        assert_eq!(
            parse_answer(&open, " Ada Lovelace "),
            Ok("Ada Lovelace".into())
        );
        assert_eq!(
            parse_answer(&open, " "),
            Err("Please type an answer.".into())
        );
    }
}
