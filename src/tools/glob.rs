//! `glob`: files matching a glob pattern, `.gitignore` respected.

use std::path::{Component, Path};

use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Access, Tool, ToolContext, ToolOutcome, args, confine,
    support::{run_blocking, stopped},
    walk,
};
use crate::domain::tool::ToolSpec;

const NAME: &str = "glob";
/// At most this many paths are shown.
const MAX_RESULTS: usize = 1000;

/// Finds files by glob pattern inside the working dir.
#[derive(Clone, Copy, Debug, Default)]
pub struct Glob;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    pattern: String,
    path: Option<String>,
}

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "pattern": {
                "type": "string",
                "minLength": 1,
                "description": "Glob matched against file paths relative to `path`, e.g. `**/*.rs`, `src/**/mod.rs`, `*.{json,toml}`. `*` and `?` stay within one directory; `**` crosses directories."
            },
            "path": {
                "type": "string",
                "minLength": 1,
                "description": "Directory to search in, relative to the working directory (or absolute inside it). Default: the working directory."
            }
        },
        "required": ["pattern"],
        "additionalProperties": false
    })
}

#[async_trait::async_trait]
impl Tool for Glob {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.into(),
            description: format!(
                "Find files by name pattern in the working directory, recursively. Returns \
                 matching file paths relative to the working directory, sorted, one per \
                 line, at most {MAX_RESULTS}. Files ignored by .gitignore are skipped, as is \
                 `.git`; symlinks are not followed. Use `**/` to search all subdirectories, \
                 e.g. `**/*.rs`."
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
            match find(&working_dir, &args, token) {
                Ok(outcome) => outcome,
                Err(why) => ToolOutcome::error(why),
            }
        })
        .await
    }
}

/// The matcher of a glob pattern relative to a directory: `*` and `?` stay within one
/// directory, `**` crosses them; absolute patterns and `..` are refused (they would
/// describe paths the walk never visits).
pub(crate) fn matcher(pattern: &str) -> Result<GlobMatcher, String> {
    if Path::new(pattern).is_absolute()
        || Path::new(pattern)
            .components()
            .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(format!(
            "the pattern `{pattern}` must be relative and must not contain `..`; set `path` \
             to search another directory inside the working directory"
        ));
    }
    Ok(GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|err| format!("invalid glob pattern `{pattern}`: {err}"))?
        .compile_matcher())
}

fn find(
    working_dir: &Path,
    args: &Args,
    token: &tokio_util::sync::CancellationToken,
) -> Result<ToolOutcome, String> {
    let pattern = args.pattern.as_str();
    let matcher = matcher(pattern)?;
    let root = confine::root(working_dir)?;
    let base = confine::existing(&root, args.path.as_deref().unwrap_or("."))?;
    let shown_base = confine::display(&root, &base);
    if !base.is_dir() {
        return Err(format!("`{shown_base}` is not a directory"));
    }

    let mut found = Vec::new();
    for entry in walk::walk(&base) {
        if token.is_cancelled() {
            return Ok(stopped());
        }
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                tracing::debug!(%err, "glob: skipping an unreadable entry");
                continue;
            }
        };
        if !entry.file_type().is_some_and(|kind| kind.is_file()) {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(&base) else {
            continue;
        };
        if matcher.is_match(relative) {
            found.push(confine::display(&root, entry.path()));
        }
    }
    if found.is_empty() {
        return Ok(ToolOutcome::ok(format!(
            "no files match `{pattern}` in `{shown_base}`"
        )));
    }
    found.sort();
    let total = found.len();
    found.truncate(MAX_RESULTS);
    let mut out = found.join("\n");
    out.push('\n');
    if total > MAX_RESULTS {
        out.push_str(&format!(
            "[… {} more files match; narrow the pattern or path]\n",
            total - MAX_RESULTS
        ));
    }
    Ok(ToolOutcome::ok(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::{Sandbox, assert_outside};

    async fn run(sandbox: &Sandbox, arguments: Value) -> ToolOutcome {
        let (context, _output) = sandbox.context();
        Glob.run(arguments, context).await
    }

    fn tree() -> Sandbox {
        let sandbox = Sandbox::new();
        sandbox.write(".gitignore", "target/\n*.log\n");
        sandbox.write("src/main.rs", "");
        sandbox.write("src/tools/mod.rs", "");
        sandbox.write("README.md", "");
        sandbox.write("target/debug/out.rs", "");
        sandbox.write("debug.log", "");
        sandbox.write(".github/ci.yml", "");
        sandbox.write(".git/config", "");
        std::fs::write(sandbox.outside.join("outside.rs"), "").expect("write");
        sandbox
    }

    #[tokio::test]
    async fn matches_sorted_relative_paths_respecting_gitignore() {
        let sandbox = tree();
        let outcome = run(&sandbox, json!({"pattern": "**/*.rs"})).await;
        assert_eq!(outcome, ToolOutcome::ok("src/main.rs\nsrc/tools/mod.rs\n"));
        let outcome = run(&sandbox, json!({"pattern": "*.rs"})).await;
        assert_eq!(outcome, ToolOutcome::ok("no files match `*.rs` in `.`"));
        let outcome = run(&sandbox, json!({"pattern": "*.rs", "path": "src"})).await;
        assert_eq!(outcome, ToolOutcome::ok("src/main.rs\n"));
        let outcome = run(&sandbox, json!({"pattern": "**/*.{yml,md}"})).await;
        assert_eq!(outcome, ToolOutcome::ok(".github/ci.yml\nREADME.md\n"));
        let outcome = run(&sandbox, json!({"pattern": "**/config"})).await;
        assert_eq!(
            outcome,
            ToolOutcome::ok("no files match `**/config` in `.`")
        );
    }

    #[tokio::test]
    async fn bounds_the_result_count() {
        let sandbox = Sandbox::new();
        for i in 0..MAX_RESULTS + 3 {
            sandbox.write(&format!("d/f{i:05}.txt"), "");
        }
        let outcome = run(&sandbox, json!({"pattern": "**/*.txt"})).await;
        assert_eq!(outcome.output.lines().count(), MAX_RESULTS + 1);
        assert!(outcome.output.starts_with("d/f00000.txt\n"));
        assert!(
            outcome
                .output
                .ends_with("[… 3 more files match; narrow the pattern or path]\n")
        );
    }

    #[tokio::test]
    async fn errors() {
        let sandbox = tree();
        let outcome = run(&sandbox, json!({"pattern": "a[", "path": "src"})).await;
        assert!(outcome.is_error && outcome.output.contains("invalid glob pattern `a[`"));
        let outcome = run(&sandbox, json!({"pattern": "../*"})).await;
        assert!(outcome.is_error && outcome.output.contains("must not contain `..`"));
        let outcome = run(&sandbox, json!({"pattern": "/etc/*"})).await;
        assert!(outcome.is_error && outcome.output.contains("must be relative"));
        let outcome = run(&sandbox, json!({"pattern": "*", "path": "README.md"})).await;
        assert_eq!(
            outcome,
            ToolOutcome::error("`README.md` is not a directory")
        );
        let outcome = run(&sandbox, json!({})).await;
        assert!(
            outcome
                .output
                .contains("missing required argument `pattern`")
        );
    }

    #[tokio::test]
    async fn never_leaves_the_working_dir() {
        let sandbox = tree();
        let outside = sandbox.outside.to_string_lossy().into_owned();
        for path in [
            "..".to_string(),
            "../outside".into(),
            outside,
            "link".into(),
        ] {
            assert_outside(&run(&sandbox, json!({"pattern": "**/*", "path": path})).await);
        }
        // The symlink to the outside dir is not followed by the walk.
        let outcome = run(&sandbox, json!({"pattern": "**/*.rs"})).await;
        assert!(!outcome.output.contains("outside.rs"), "{outcome:?}");
        let outcome = run(&sandbox, json!({"pattern": "**/secret.txt"})).await;
        assert_eq!(
            outcome,
            ToolOutcome::ok("no files match `**/secret.txt` in `.`")
        );
    }
}
