//! `read_file`: a text file's lines, numbered like `cat -n`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Access, Tool, ToolContext, ToolOutcome, args, confine,
    support::{run_blocking, stopped},
    text,
};
use crate::domain::tool::ToolSpec;

const NAME: &str = "read_file";
/// Lines shown when no `limit` is given.
const DEFAULT_LIMIT: usize = 2000;
/// Longer lines are cut.
const MAX_LINE_CHARS: usize = 2000;

/// Reads a text file inside the working dir.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadFile;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    offset: Option<usize>,
    limit: Option<usize>,
}

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "minLength": 1,
                "description": "File to read, relative to the working directory (or absolute inside it)."
            },
            "offset": {
                "type": "integer",
                "minimum": 1,
                "description": "First line to show, 1-based. Default 1."
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "description": format!("How many lines to show. Default {DEFAULT_LIMIT}.")
            }
        },
        "required": ["path"],
        "additionalProperties": false
    })
}

#[async_trait::async_trait]
impl Tool for ReadFile {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.into(),
            description: format!(
                "Read a text file in the working directory. Lines are numbered like `cat -n` \
                 (the number and a tab come before each line; they are not part of the \
                 file). Shows up to {DEFAULT_LIMIT} lines from `offset`; use `offset` and \
                 `limit` to page through long files. Lines longer than {MAX_LINE_CHARS} \
                 characters are cut. Binary files and files over {} are refused.",
                text::megabytes(text::MAX_TEXT_FILE_BYTES)
            ),
            parameters: parameters(),
        }
    }

    fn access(&self) -> Access {
        Access::Read
    }

    async fn run(&self, arguments: Value, context: ToolContext) -> ToolOutcome {
        let args: Args = match args::parse(NAME, &parameters(), arguments) {
            Ok(args) => args,
            Err(why) => return ToolOutcome::error(why),
        };
        let working_dir = context.working_dir.clone();
        let budget = context.max_output_bytes;
        run_blocking(&context, move |token| {
            if token.is_cancelled() {
                return stopped();
            }
            match read(&working_dir, &args, budget) {
                Ok(output) => ToolOutcome::ok(output),
                Err(why) => ToolOutcome::error(why),
            }
        })
        .await
    }
}

fn read(working_dir: &std::path::Path, args: &Args, budget: usize) -> Result<String, String> {
    let root = confine::root(working_dir)?;
    let path = confine::existing(&root, &args.path)?;
    let shown = confine::display(&root, &path);
    let bytes = text::read_text(&path, &shown)?;
    let content = String::from_utf8_lossy(&bytes);
    let total = content.lines().count();
    if total == 0 {
        return Ok(format!("(`{shown}` is empty)"));
    }
    let offset = args.offset.unwrap_or(1);
    if offset > total {
        return Err(format!(
            "offset {offset} is past the end of `{shown}`, which has {total} lines"
        ));
    }
    let limit = args.limit.unwrap_or(DEFAULT_LIMIT);
    // Room for the closing note, so the whole result stays within the output bound.
    let budget = budget.saturating_sub(200);
    let mut out = String::new();
    let mut last = offset - 1;
    for (index, line) in content.lines().enumerate().skip(offset - 1).take(limit) {
        let number = index + 1;
        let line = match line.char_indices().nth(MAX_LINE_CHARS) {
            Some((cut, _)) => format!(
                "{}… [line cut at {MAX_LINE_CHARS} characters]",
                &line[..cut]
            ),
            None => line.to_owned(),
        };
        let numbered = format!("{number:>6}\t{line}\n");
        if out.len() + numbered.len() > budget && number > offset {
            break;
        }
        out.push_str(&numbered);
        last = number;
    }
    if last < total {
        out.push_str(&format!(
            "[showing lines {offset}-{last} of {total}; use offset={} to read more]\n",
            last + 1
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::{Sandbox, assert_outside};

    async fn run(sandbox: &Sandbox, arguments: Value) -> ToolOutcome {
        let (context, _output) = sandbox.context();
        ReadFile.run(arguments, context).await
    }

    #[tokio::test]
    async fn numbers_lines_like_cat_n() {
        let sandbox = Sandbox::new();
        sandbox.write("src/a.txt", "one\ntwo\r\nthree");
        let outcome = run(&sandbox, json!({"path": "src/a.txt"})).await;
        assert_eq!(
            outcome,
            ToolOutcome::ok("     1\tone\n     2\ttwo\n     3\tthree\n")
        );
        let absolute = sandbox.work.join("src/a.txt");
        let outcome = run(&sandbox, json!({"path": absolute})).await;
        assert!(
            !outcome.is_error && outcome.output.contains("three"),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn pages_with_offset_and_limit() {
        let sandbox = Sandbox::new();
        let content: String = (1..=10).map(|i| format!("line {i}\n")).collect();
        sandbox.write("a.txt", &content);
        let outcome = run(&sandbox, json!({"path": "a.txt", "offset": 4, "limit": 2})).await;
        assert_eq!(
            outcome,
            ToolOutcome::ok(
                "     4\tline 4\n     5\tline 5\n[showing lines 4-5 of 10; use offset=6 to read more]\n"
            )
        );
        let outcome = run(&sandbox, json!({"path": "a.txt", "offset": 10})).await;
        assert_eq!(outcome, ToolOutcome::ok("    10\tline 10\n"));
        let outcome = run(&sandbox, json!({"path": "a.txt", "offset": 11})).await;
        assert_eq!(
            outcome,
            ToolOutcome::error("offset 11 is past the end of `a.txt`, which has 10 lines")
        );
    }

    #[tokio::test]
    async fn stays_within_the_output_bound() {
        let sandbox = Sandbox::new();
        let content: String = (1..=5000)
            .map(|i| format!("line {i} {}\n", "x".repeat(50)))
            .collect();
        sandbox.write("big.txt", &content);
        let (mut context, _output) = sandbox.context();
        context.max_output_bytes = 4096;
        let outcome = ReadFile.run(json!({"path": "big.txt"}), context).await;
        assert!(!outcome.is_error);
        assert!(outcome.output.len() <= 4096, "{}", outcome.output.len());
        assert!(outcome.output.starts_with("     1\tline 1 "));
        assert!(
            outcome.output.contains("of 5000; use offset="),
            "{}",
            outcome.output
        );
    }

    #[tokio::test]
    async fn cuts_long_lines() {
        let sandbox = Sandbox::new();
        sandbox.write("long.txt", &"é".repeat(MAX_LINE_CHARS + 10));
        let outcome = run(&sandbox, json!({"path": "long.txt"})).await;
        assert_eq!(
            outcome.output,
            format!(
                "     1\t{}… [line cut at {MAX_LINE_CHARS} characters]\n",
                "é".repeat(MAX_LINE_CHARS)
            )
        );
    }

    #[tokio::test]
    async fn refuses_what_it_cannot_read() {
        let sandbox = Sandbox::new();
        std::fs::write(sandbox.work.join("bin"), b"\x7fELF\0\0\x01").expect("write");
        sandbox.write("empty.txt", "");
        std::fs::create_dir(sandbox.work.join("dir")).expect("mkdir");
        let big = std::fs::File::create(sandbox.work.join("huge.txt")).expect("create");
        big.set_len(text::MAX_TEXT_FILE_BYTES + 1).expect("set_len");

        let outcome = run(&sandbox, json!({"path": "bin"})).await;
        assert!(
            outcome.is_error && outcome.output.contains("binary"),
            "{outcome:?}"
        );
        let outcome = run(&sandbox, json!({"path": "huge.txt"})).await;
        assert!(
            outcome.is_error && outcome.output.contains("over the 10.0 MB limit"),
            "{outcome:?}"
        );
        let outcome = run(&sandbox, json!({"path": "dir"})).await;
        assert!(
            outcome.is_error && outcome.output.contains("is a directory"),
            "{outcome:?}"
        );
        let outcome = run(&sandbox, json!({"path": "missing.txt"})).await;
        assert_eq!(outcome, ToolOutcome::error("`missing.txt` does not exist"));
        let outcome = run(&sandbox, json!({"path": "empty.txt"})).await;
        assert_eq!(outcome, ToolOutcome::ok("(`empty.txt` is empty)"));
    }

    #[tokio::test]
    async fn refuses_paths_outside() {
        let sandbox = Sandbox::new();
        for path in [
            "../outside/secret.txt".to_string(),
            sandbox.outside_secret(),
            "link/secret.txt".into(),
            "file_link".into(),
        ] {
            assert_outside(&run(&sandbox, json!({ "path": path })).await);
        }
    }

    #[tokio::test]
    async fn bad_arguments_are_named() {
        let sandbox = Sandbox::new();
        let outcome = run(&sandbox, json!({"file": "a"})).await;
        assert!(outcome.is_error && outcome.output.contains("unknown argument `file`"));
        let outcome = run(&sandbox, json!({"path": "a", "limit": "all"})).await;
        assert_eq!(
            outcome,
            ToolOutcome::error(
                "invalid arguments for `read_file`: argument `limit` must be an integer, got a string"
            )
        );
    }

    #[test]
    fn spec_is_a_closed_object_schema() {
        let spec = ReadFile.spec();
        assert_eq!(spec.name, "read_file");
        assert_eq!(spec.parameters["type"], "object");
        assert_eq!(spec.parameters["required"], json!(["path"]));
        assert_eq!(spec.parameters["additionalProperties"], false);
        assert_eq!(ReadFile.access(), Access::Read);
    }
}
