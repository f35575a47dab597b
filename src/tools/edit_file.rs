//! `edit_file`: exact string replacement in a text file.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Access, Tool, ToolContext, ToolOutcome, args,
    change::{self, Before},
    confine,
    support::{run_blocking, stopped},
    text,
    write_file::write_no_follow,
};
use crate::domain::tool::ToolSpec;

const NAME: &str = "edit_file";

/// Replaces exact text in a file inside the working dir.
#[derive(Clone, Copy, Debug, Default)]
pub struct EditFile;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    old_string: String,
    new_string: String,
    #[serde(default)]
    replace_all: bool,
}

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "minLength": 1,
                "description": "File to edit, relative to the working directory (or absolute inside it)."
            },
            "old_string": {
                "type": "string",
                "minLength": 1,
                "description": "The exact text to replace, whitespace and indentation included (without read_file's line-number prefixes)."
            },
            "new_string": {
                "type": "string",
                "description": "The text to put in its place."
            },
            "replace_all": {
                "type": "boolean",
                "description": "Replace every occurrence. Default false: old_string must then occur exactly once."
            }
        },
        "required": ["path", "old_string", "new_string"],
        "additionalProperties": false
    })
}

#[async_trait::async_trait]
impl Tool for EditFile {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.into(),
            description: "Edit a text file in the working directory by exact string \
                          replacement: `old_string` is replaced by `new_string`. Unless \
                          `replace_all` is true, `old_string` must occur exactly once; include \
                          enough surrounding lines to make it unique. Read the file first so \
                          the text matches exactly."
                .into(),
            parameters: parameters(),
        }
    }

    fn access(&self) -> Access {
        Access::Write
    }

    async fn run(&self, arguments: Value, context: ToolContext) -> ToolOutcome {
        let args: Args = match args::parse(NAME, &parameters(), arguments) {
            Ok(args) => args,
            Err(why) => return ToolOutcome::error(why),
        };
        if args.old_string == args.new_string {
            return ToolOutcome::error("old_string and new_string are the same; nothing to change");
        }
        let working_dir = context.working_dir.clone();
        run_blocking(&context, move |token| {
            match edit(&working_dir, &args, token) {
                Ok(outcome) => outcome,
                Err(why) => ToolOutcome::error(why),
            }
        })
        .await
    }
}

fn edit(
    working_dir: &std::path::Path,
    args: &Args,
    token: &tokio_util::sync::CancellationToken,
) -> Result<ToolOutcome, String> {
    let root = confine::root(working_dir)?;
    let path = confine::existing(&root, &args.path)?;
    let shown = confine::display(&root, &path);
    let bytes = text::read_text(&path, &shown)?;
    let content = String::from_utf8(bytes)
        .map_err(|_| format!("`{shown}` is not valid UTF-8; edit_file only edits UTF-8 text"))?;
    let count = content.matches(args.old_string.as_str()).count();
    match count {
        0 => {
            return Err(format!(
                "old_string was not found in `{shown}`; it must match exactly, whitespace \
                 included (read the file again to check)"
            ));
        }
        1 => {}
        n if !args.replace_all => {
            return Err(format!(
                "old_string occurs {n} times in `{shown}`; add surrounding context to make it \
                 unique, or set replace_all to replace every occurrence"
            ));
        }
        _ => {}
    }
    let updated = content.replace(args.old_string.as_str(), &args.new_string);
    if token.is_cancelled() {
        return Ok(stopped());
    }
    write_no_follow(&path, updated.as_bytes())
        .map_err(|err| format!("cannot write `{shown}`: {err}"))?;
    let before = Before::Content(content.into_bytes());
    Ok(ToolOutcome::ok(format!(
        "replaced {count} occurrence{} in `{shown}`",
        if count == 1 { "" } else { "s" }
    ))
    .with_change(change::describe(&shown, &before, updated.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::{Sandbox, assert_outside};

    async fn run(sandbox: &Sandbox, arguments: Value) -> ToolOutcome {
        let (context, _output) = sandbox.context();
        EditFile.run(arguments, context).await
    }

    fn read(sandbox: &Sandbox, path: &str) -> String {
        std::fs::read_to_string(sandbox.work.join(path)).expect("read")
    }

    #[tokio::test]
    async fn replaces_a_unique_string() {
        let sandbox = Sandbox::new();
        sandbox.write("src/a.rs", "fn a() {}\nfn b() {}\n");
        let outcome = run(
            &sandbox,
            json!({"path": "src/a.rs", "old_string": "fn b() {}", "new_string": "fn b() -> u8 { 1 }"}),
        )
        .await;
        assert_eq!(outcome.output, "replaced 1 occurrence in `src/a.rs`");
        assert!(!outcome.is_error);
        let [change] = &outcome.changes[..] else {
            panic!("one change: {outcome:?}");
        };
        assert_eq!(change.path, "src/a.rs");
        assert_eq!(
            change.diff,
            "--- a/src/a.rs\n+++ b/src/a.rs\n@@ -1,2 +1,2 @@\n fn a() {}\n-fn b() {}\n+fn b() -> u8 { 1 }\n"
        );
        assert_eq!(
            read(&sandbox, "src/a.rs"),
            "fn a() {}\nfn b() -> u8 { 1 }\n"
        );
    }

    #[tokio::test]
    async fn counts_ambiguous_matches_and_replaces_all_on_request() {
        let sandbox = Sandbox::new();
        sandbox.write("a.txt", "x = 1\nx = 1\nx = 1\n");
        let outcome = run(
            &sandbox,
            json!({"path": "a.txt", "old_string": "x = 1", "new_string": "x = 2"}),
        )
        .await;
        assert!(outcome.is_error);
        assert!(
            outcome.output.contains("occurs 3 times in `a.txt`"),
            "{outcome:?}"
        );
        assert_eq!(read(&sandbox, "a.txt"), "x = 1\nx = 1\nx = 1\n");

        let outcome = run(
            &sandbox,
            json!({"path": "a.txt", "old_string": "x = 1", "new_string": "x = 2", "replace_all": true}),
        )
        .await;
        assert_eq!(outcome.output, "replaced 3 occurrences in `a.txt`");
        assert_eq!(outcome.changes.len(), 1);
        assert_eq!(read(&sandbox, "a.txt"), "x = 2\nx = 2\nx = 2\n");
    }

    #[tokio::test]
    async fn errors_name_the_problem() {
        let sandbox = Sandbox::new();
        sandbox.write("a.txt", "hello\n");
        let outcome = run(
            &sandbox,
            json!({"path": "a.txt", "old_string": "bye", "new_string": "x"}),
        )
        .await;
        assert!(outcome.is_error && outcome.output.contains("was not found in `a.txt`"));
        let outcome = run(
            &sandbox,
            json!({"path": "a.txt", "old_string": "hello", "new_string": "hello"}),
        )
        .await;
        assert!(outcome.is_error && outcome.output.contains("are the same"));
        let outcome = run(
            &sandbox,
            json!({"path": "a.txt", "old_string": "", "new_string": "x"}),
        )
        .await;
        assert_eq!(
            outcome,
            ToolOutcome::error(
                "invalid arguments for `edit_file`: argument `old_string` must not be empty"
            )
        );
        let outcome = run(&sandbox, json!({"path": "a.txt", "old_string": "hello"})).await;
        assert!(
            outcome
                .output
                .contains("missing required argument `new_string`")
        );
        let outcome = run(
            &sandbox,
            json!({"path": "nope.txt", "old_string": "a", "new_string": "b"}),
        )
        .await;
        assert_eq!(outcome, ToolOutcome::error("`nope.txt` does not exist"));
        std::fs::write(sandbox.work.join("latin1.txt"), b"caf\xe9\n").expect("write");
        let outcome = run(
            &sandbox,
            json!({"path": "latin1.txt", "old_string": "caf", "new_string": "tea"}),
        )
        .await;
        assert!(outcome.is_error && outcome.output.contains("not valid UTF-8"));
        assert_eq!(read(&sandbox, "a.txt"), "hello\n");
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
            let outcome = run(
                &sandbox,
                json!({"path": path, "old_string": "top", "new_string": "no"}),
            )
            .await;
            assert_outside(&outcome);
        }
        let secret = std::fs::read_to_string(sandbox.outside.join("secret.txt")).expect("read");
        assert_eq!(secret, "top secret\n");
    }
}
