//! `grep`: lines matching a regex, as `file:line: text`, `.gitignore` respected.

use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};
use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{
    Access, Tool, ToolContext, ToolOutcome, args, confine,
    support::{run_blocking, stopped},
    text, walk,
};
use crate::domain::tool::ToolSpec;

const NAME: &str = "grep";
/// The search stops after this many matching lines.
const MAX_MATCHES: usize = 500;
/// Longer matching lines are cut.
const MAX_LINE_CHARS: usize = 300;

/// Searches file contents by regex inside the working dir.
#[derive(Clone, Copy, Debug, Default)]
pub struct Grep;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    pattern: String,
    path: Option<String>,
    glob: Option<String>,
    #[serde(default)]
    case_insensitive: bool,
}

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "pattern": {
                "type": "string",
                "minLength": 1,
                "description": "Regular expression (Rust regex syntax, like ripgrep) searched for in each line."
            },
            "path": {
                "type": "string",
                "minLength": 1,
                "description": "File or directory to search, relative to the working directory (or absolute inside it). Default: the working directory."
            },
            "glob": {
                "type": "string",
                "minLength": 1,
                "description": "Only search files matching this glob, e.g. `*.rs` (matched against file names) or `src/**/*.ts` (a pattern with `/` is matched against paths relative to `path`)."
            },
            "case_insensitive": {
                "type": "boolean",
                "description": "Ignore case. Default false."
            }
        },
        "required": ["pattern"],
        "additionalProperties": false
    })
}

#[async_trait::async_trait]
impl Tool for Grep {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.into(),
            description: format!(
                "Search file contents in the working directory with a regular expression. \
                 Returns matching lines as `path:line: text` (paths relative to the working \
                 directory, line numbers 1-based), sorted by path, at most {MAX_MATCHES}. \
                 Files ignored by .gitignore, binary files and files over {} are skipped; \
                 symlinks are not followed.",
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
        run_blocking(&context, move |token| {
            match search(&working_dir, &args, token) {
                Ok(outcome) => outcome,
                Err(why) => ToolOutcome::error(why),
            }
        })
        .await
    }
}

/// Which files to search, by `glob`.
enum Filter {
    All,
    Name(GlobMatcher),
    Path(GlobMatcher),
}

impl Filter {
    fn new(glob: Option<&str>) -> Result<Self, String> {
        let Some(glob) = glob else {
            return Ok(Self::All);
        };
        let matcher = GlobBuilder::new(glob)
            .literal_separator(true)
            .build()
            .map_err(|err| format!("invalid glob `{glob}`: {err}"))?
            .compile_matcher();
        Ok(if glob.contains('/') {
            Self::Path(matcher)
        } else {
            Self::Name(matcher)
        })
    }

    fn accepts(&self, relative: &Path) -> bool {
        match self {
            Self::All => true,
            Self::Name(matcher) => relative
                .file_name()
                .is_some_and(|name| matcher.is_match(name)),
            Self::Path(matcher) => matcher.is_match(relative),
        }
    }
}

#[derive(Default)]
struct Results {
    lines: Vec<String>,
    full: bool,
    skipped_large: usize,
}

fn search(
    working_dir: &Path,
    args: &Args,
    token: &CancellationToken,
) -> Result<ToolOutcome, String> {
    let regex = RegexBuilder::new(&args.pattern)
        .case_insensitive(args.case_insensitive)
        .build()
        .map_err(|err| format!("invalid regex `{}`: {err}", args.pattern))?;
    let filter = Filter::new(args.glob.as_deref())?;
    let root = confine::root(working_dir)?;
    let base = confine::existing(&root, args.path.as_deref().unwrap_or("."))?;
    let mut results = Results::default();

    if base.is_file() {
        let shown = confine::display(&root, &base);
        match search_file(&base, &shown, &regex, &mut results) {
            FileSearch::Done => {}
            FileSearch::Binary => {
                return Ok(ToolOutcome::ok(format!(
                    "`{shown}` is a binary file; not searched"
                )));
            }
            FileSearch::TooLarge => {
                return Ok(ToolOutcome::ok(format!(
                    "`{shown}` is over {}; not searched",
                    text::megabytes(text::MAX_TEXT_FILE_BYTES)
                )));
            }
        }
    } else {
        for entry in walk::walk(&base) {
            if token.is_cancelled() {
                return Ok(stopped());
            }
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    tracing::debug!(%err, "grep: skipping an unreadable entry");
                    continue;
                }
            };
            if !entry.file_type().is_some_and(|kind| kind.is_file()) {
                continue;
            }
            let Ok(relative) = entry.path().strip_prefix(&base) else {
                continue;
            };
            if !filter.accepts(relative) {
                continue;
            }
            let shown = confine::display(&root, entry.path());
            if let FileSearch::TooLarge = search_file(entry.path(), &shown, &regex, &mut results) {
                results.skipped_large += 1;
            }
            if results.full {
                break;
            }
        }
    }

    let mut out = results.lines.join("\n");
    if results.lines.is_empty() {
        out = format!("no matches for `{}`", args.pattern);
    } else {
        out.push('\n');
    }
    if results.full {
        out.push_str(&format!(
            "[results stop at {MAX_MATCHES} matches; narrow the pattern, path or glob]\n"
        ));
    }
    if results.skipped_large > 0 {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!(
            "[{} file(s) over {} not searched]\n",
            results.skipped_large,
            text::megabytes(text::MAX_TEXT_FILE_BYTES)
        ));
    }
    Ok(ToolOutcome::ok(out))
}

enum FileSearch {
    Done,
    Binary,
    TooLarge,
}

fn search_file(path: &Path, shown: &str, regex: &Regex, results: &mut Results) -> FileSearch {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.len() > text::MAX_TEXT_FILE_BYTES => return FileSearch::TooLarge,
        Ok(_) => {}
        Err(err) => {
            tracing::debug!(%err, path = %path.display(), "grep: cannot stat");
            return FileSearch::Done;
        }
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::debug!(%err, path = %path.display(), "grep: cannot read");
            return FileSearch::Done;
        }
    };
    if text::looks_binary(&bytes) {
        return FileSearch::Binary;
    }
    let content = String::from_utf8_lossy(&bytes);
    for (index, line) in content.lines().enumerate() {
        if !regex.is_match(line) {
            continue;
        }
        let line = match line.char_indices().nth(MAX_LINE_CHARS) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line.to_owned(),
        };
        results.lines.push(format!("{shown}:{}: {line}", index + 1));
        if results.lines.len() >= MAX_MATCHES {
            results.full = true;
            break;
        }
    }
    FileSearch::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::{Sandbox, assert_outside};

    async fn run(sandbox: &Sandbox, arguments: Value) -> ToolOutcome {
        let (context, _output) = sandbox.context();
        Grep.run(arguments, context).await
    }

    fn tree() -> Sandbox {
        let sandbox = Sandbox::new();
        sandbox.write(".gitignore", "target/\n");
        sandbox.write("src/main.rs", "fn main() {\n    println!(\"Hello\");\n}\n");
        sandbox.write("src/lib.rs", "// hello from lib\npub fn hello() {}\n");
        sandbox.write("notes.md", "say hello\n");
        sandbox.write("target/gen.rs", "fn hello() {}\n");
        std::fs::write(sandbox.work.join("blob.bin"), b"hello\0world").expect("write");
        sandbox
    }

    #[tokio::test]
    async fn finds_lines_sorted_skipping_ignored_and_binary_files() {
        let sandbox = tree();
        let outcome = run(&sandbox, json!({"pattern": "hello"})).await;
        assert_eq!(
            outcome,
            ToolOutcome::ok(
                "notes.md:1: say hello\nsrc/lib.rs:1: // hello from lib\nsrc/lib.rs:2: pub fn hello() {}\n"
            )
        );
        let outcome = run(
            &sandbox,
            json!({"pattern": "hello", "case_insensitive": true, "glob": "*.rs"}),
        )
        .await;
        assert_eq!(
            outcome,
            ToolOutcome::ok(
                "src/lib.rs:1: // hello from lib\nsrc/lib.rs:2: pub fn hello() {}\nsrc/main.rs:2:     println!(\"Hello\");\n"
            )
        );
        let outcome = run(
            &sandbox,
            json!({"pattern": r"fn \w+\(\)", "path": "src/main.rs"}),
        )
        .await;
        assert_eq!(outcome, ToolOutcome::ok("src/main.rs:1: fn main() {\n"));
        let outcome = run(&sandbox, json!({"pattern": "fn", "glob": "src/m*.rs"})).await;
        assert_eq!(outcome, ToolOutcome::ok("src/main.rs:1: fn main() {\n"));
        let outcome = run(&sandbox, json!({"pattern": "absent"})).await;
        assert_eq!(outcome, ToolOutcome::ok("no matches for `absent`"));
        let outcome = run(&sandbox, json!({"pattern": "hello", "path": "blob.bin"})).await;
        assert_eq!(
            outcome,
            ToolOutcome::ok("`blob.bin` is a binary file; not searched")
        );
    }

    #[tokio::test]
    async fn bounds_the_results() {
        let sandbox = Sandbox::new();
        let content: String = (0..MAX_MATCHES + 10)
            .map(|i| format!("match {i}\n"))
            .collect();
        sandbox.write("a.txt", &content);
        sandbox.write("b.txt", "match in b\n");
        sandbox.write("long.txt", &format!("match {}\n", "y".repeat(1000)));
        let outcome = run(&sandbox, json!({"pattern": "match", "path": "long.txt"})).await;
        assert_eq!(
            outcome,
            ToolOutcome::ok(format!(
                "long.txt:1: match {}…\n",
                "y".repeat(MAX_LINE_CHARS - 6)
            ))
        );
        let outcome = run(&sandbox, json!({"pattern": "^match"})).await;
        assert_eq!(outcome.output.lines().count(), MAX_MATCHES + 1);
        assert!(outcome.output.starts_with("a.txt:1: match 0\n"));
        assert!(outcome.output.ends_with(
            "a.txt:500: match 499\n[results stop at 500 matches; narrow the pattern, path or glob]\n"
        ));
    }

    #[tokio::test]
    async fn errors() {
        let sandbox = tree();
        let outcome = run(&sandbox, json!({"pattern": "a("})).await;
        assert!(
            outcome.is_error && outcome.output.contains("invalid regex `a(`"),
            "{outcome:?}"
        );
        let outcome = run(&sandbox, json!({"pattern": "a", "glob": "a["})).await;
        assert!(outcome.is_error && outcome.output.contains("invalid glob `a[`"));
        let outcome = run(&sandbox, json!({"pattern": "a", "path": "nope"})).await;
        assert_eq!(outcome, ToolOutcome::error("`nope` does not exist"));
        let outcome = run(&sandbox, json!({"pattern": "a", "case_insensitive": "yes"})).await;
        assert!(
            outcome
                .output
                .contains("`case_insensitive` must be a boolean, got a string")
        );
    }

    #[tokio::test]
    async fn never_leaves_the_working_dir() {
        let sandbox = tree();
        let outside = sandbox.outside.to_string_lossy().into_owned();
        for path in [
            "..".to_string(),
            "../outside/secret.txt".into(),
            outside,
            sandbox.outside_secret(),
            "link".into(),
            "link/secret.txt".into(),
            "file_link".into(),
        ] {
            assert_outside(&run(&sandbox, json!({"pattern": "secret", "path": path})).await);
        }
        let outcome = run(&sandbox, json!({"pattern": "secret"})).await;
        assert_eq!(outcome, ToolOutcome::ok("no matches for `secret`"));
    }
}
