//! `list_dir`: one directory's entries, sorted, directories marked with `/`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Access, Tool, ToolContext, ToolOutcome, args, confine,
    support::{run_blocking, stopped},
};
use crate::domain::tool::ToolSpec;

const NAME: &str = "list_dir";
/// At most this many entries are shown.
const MAX_ENTRIES: usize = 1000;

/// Lists a directory inside the working dir.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListDir;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: Option<String>,
}

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "minLength": 1,
                "description": "Directory to list, relative to the working directory (or absolute inside it). Default: the working directory."
            }
        },
        "required": [],
        "additionalProperties": false
    })
}

#[async_trait::async_trait]
impl Tool for ListDir {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.into(),
            description: format!(
                "List one directory in the working directory (not recursive; use glob for \
                 that). Entries are sorted by name, one per line; directories end with `/`, \
                 symlinks show `name -> target`. Hidden and ignored files are included. At \
                 most {MAX_ENTRIES} entries are shown."
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
            if token.is_cancelled() {
                return stopped();
            }
            match list(&working_dir, args.path.as_deref().unwrap_or(".")) {
                Ok(output) => ToolOutcome::ok(output),
                Err(why) => ToolOutcome::error(why),
            }
        })
        .await
    }
}

fn list(working_dir: &std::path::Path, raw: &str) -> Result<String, String> {
    let root = confine::root(working_dir)?;
    let path = confine::existing(&root, raw)?;
    let shown = confine::display(&root, &path);
    if !path.is_dir() {
        return Err(format!(
            "`{shown}` is not a directory; use read_file to read a file"
        ));
    }
    let entries =
        std::fs::read_dir(&path).map_err(|err| format!("cannot list `{shown}`: {err}"))?;
    let mut lines = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                tracing::debug!(%err, dir = %path.display(), "skipping an unreadable entry");
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let line = match entry.file_type() {
            Ok(kind) if kind.is_dir() => format!("{name}/"),
            Ok(kind) if kind.is_symlink() => match std::fs::read_link(entry.path()) {
                Ok(target) => format!("{name} -> {}", target.display()),
                Err(_) => format!("{name} -> ?"),
            },
            _ => name,
        };
        lines.push(line);
    }
    if lines.is_empty() {
        return Ok(format!("(`{shown}` is empty)"));
    }
    lines.sort();
    let total = lines.len();
    lines.truncate(MAX_ENTRIES);
    let mut out = lines.join("\n");
    out.push('\n');
    if total > MAX_ENTRIES {
        out.push_str(&format!(
            "[… {} more entries not shown; use glob to narrow down]\n",
            total - MAX_ENTRIES
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
        ListDir.run(arguments, context).await
    }

    #[tokio::test]
    async fn lists_sorted_with_dirs_marked() {
        let sandbox = Sandbox::new();
        sandbox.write("b.txt", "");
        sandbox.write(".hidden", "");
        sandbox.write("a/inner.txt", "");
        let outcome = run(&sandbox, json!({})).await;
        let outside = sandbox.outside.display();
        assert_eq!(
            outcome,
            ToolOutcome::ok(format!(
                ".hidden\na/\nb.txt\nfile_link -> {outside}/secret.txt\nlink -> {outside}\n"
            ))
        );
        let outcome = run(&sandbox, json!({"path": "a"})).await;
        assert_eq!(outcome, ToolOutcome::ok("inner.txt\n"));
        let outcome = run(&sandbox, Value::Null).await;
        assert!(outcome.output.contains("b.txt"), "{outcome:?}");
    }

    #[tokio::test]
    async fn bounds_the_entry_count() {
        let sandbox = Sandbox::new();
        for i in 0..MAX_ENTRIES + 5 {
            sandbox.write(&format!("many/f{i:05}"), "");
        }
        let outcome = run(&sandbox, json!({"path": "many"})).await;
        assert_eq!(outcome.output.lines().count(), MAX_ENTRIES + 1);
        assert!(outcome.output.starts_with("f00000\nf00001\n"));
        assert!(
            outcome
                .output
                .ends_with("[… 5 more entries not shown; use glob to narrow down]\n")
        );
    }

    #[tokio::test]
    async fn errors() {
        let sandbox = Sandbox::new();
        sandbox.write("f.txt", "");
        std::fs::create_dir(sandbox.work.join("empty")).expect("mkdir");
        let outcome = run(&sandbox, json!({"path": "f.txt"})).await;
        assert!(outcome.is_error && outcome.output.contains("is not a directory"));
        let outcome = run(&sandbox, json!({"path": "nope"})).await;
        assert_eq!(outcome, ToolOutcome::error("`nope` does not exist"));
        let outcome = run(&sandbox, json!({"path": "empty"})).await;
        assert_eq!(outcome, ToolOutcome::ok("(`empty` is empty)"));
        let outcome = run(&sandbox, json!({"path": 3})).await;
        assert!(outcome.is_error && outcome.output.contains("`path` must be a string"));
    }

    #[tokio::test]
    async fn refuses_paths_outside() {
        let sandbox = Sandbox::new();
        let outside = sandbox.outside.to_string_lossy().into_owned();
        for path in [
            "..".to_string(),
            "../outside".into(),
            outside,
            "link".into(),
            "/".into(),
        ] {
            assert_outside(&run(&sandbox, json!({ "path": path })).await);
        }
    }
}
