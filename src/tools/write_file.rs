//! `write_file`: creates or overwrites a file, creating parent directories inside the
//! working dir.

use std::{io::Write, os::unix::fs::OpenOptionsExt, path::Path};

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Access, Tool, ToolContext, ToolOutcome, args,
    change::{self, Before},
    confine,
    support::{run_blocking, stopped},
};
use crate::domain::tool::ToolSpec;

const NAME: &str = "write_file";

/// Writes a whole file inside the working dir.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteFile;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    content: String,
}

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "minLength": 1,
                "description": "File to write, relative to the working directory (or absolute inside it)."
            },
            "content": {
                "type": "string",
                "description": "The complete new content of the file."
            }
        },
        "required": ["path", "content"],
        "additionalProperties": false
    })
}

#[async_trait::async_trait]
impl Tool for WriteFile {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.into(),
            description: "Write a file in the working directory: creates it (and any missing \
                          parent directories) or replaces its whole content. To change part \
                          of an existing file prefer edit_file."
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
        let working_dir = context.working_dir.clone();
        run_blocking(&context, move |token| {
            let root = match confine::root(&working_dir) {
                Ok(root) => root,
                Err(why) => return ToolOutcome::error(why),
            };
            let path = match confine::for_write(&root, &args.path) {
                Ok(path) => path,
                Err(why) => return ToolOutcome::error(why),
            };
            if token.is_cancelled() {
                return stopped();
            }
            let shown = confine::display(&root, &path);
            let before = Before::read(&path);
            let existed = before != Before::Missing;
            match write_no_follow(&path, args.content.as_bytes()) {
                Ok(()) => ToolOutcome::ok(format!(
                    "{} `{shown}`: wrote {} bytes",
                    if existed { "overwrote" } else { "created" },
                    args.content.len()
                ))
                .with_change(change::describe(
                    &shown,
                    &before,
                    args.content.as_bytes(),
                )),
                Err(err) => ToolOutcome::error(format!("cannot write `{shown}`: {err}")),
            }
        })
        .await
    }
}

/// Writes `bytes` to `path`, refusing to follow a symlink in the last component (one
/// swapped in after the path was checked).
pub(crate) fn write_no_follow(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(bytes)?;
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::file::{FileChange, FileChangeKind};
    use crate::tools::test_support::{Sandbox, assert_outside};

    async fn run(sandbox: &Sandbox, arguments: Value) -> ToolOutcome {
        let (context, _output) = sandbox.context();
        WriteFile.run(arguments, context).await
    }

    #[tokio::test]
    async fn creates_and_overwrites() {
        let sandbox = Sandbox::new();
        let outcome = run(&sandbox, json!({"path": "a/b/c.txt", "content": "héllo\n"})).await;
        assert_eq!(
            outcome,
            ToolOutcome::ok("created `a/b/c.txt`: wrote 7 bytes").with_change(FileChange {
                path: "a/b/c.txt".into(),
                kind: FileChangeKind::Created,
                size: 7,
                diff: "--- /dev/null\n+++ b/a/b/c.txt\n@@ -0,0 +1 @@\n+héllo\n".into(),
                diff_truncated: false,
            })
        );
        let written = std::fs::read_to_string(sandbox.work.join("a/b/c.txt")).expect("read");
        assert_eq!(written, "héllo\n");

        let outcome = run(&sandbox, json!({"path": "a/b/c.txt", "content": ""})).await;
        assert_eq!(outcome.output, "overwrote `a/b/c.txt`: wrote 0 bytes");
        let [change] = &outcome.changes[..] else {
            panic!("one change: {outcome:?}");
        };
        assert_eq!((change.kind, change.size), (FileChangeKind::Modified, 0));
        assert_eq!(
            change.diff,
            "--- a/a/b/c.txt\n+++ b/a/b/c.txt\n@@ -1 +0,0 @@\n-héllo\n"
        );
        let written = std::fs::read_to_string(sandbox.work.join("a/b/c.txt")).expect("read");
        assert_eq!(written, "");
    }

    #[tokio::test]
    async fn refuses_directories_and_bad_arguments() {
        let sandbox = Sandbox::new();
        std::fs::create_dir(sandbox.work.join("dir")).expect("mkdir");
        let outcome = run(&sandbox, json!({"path": "dir", "content": "x"})).await;
        assert_eq!(outcome, ToolOutcome::error("`dir` is a directory"));
        let outcome = run(&sandbox, json!({"path": "a.txt"})).await;
        assert_eq!(
            outcome,
            ToolOutcome::error(
                "invalid arguments for `write_file`: missing required argument `content`"
            )
        );
        let outcome = run(&sandbox, json!({"path": "a.txt", "content": 5})).await;
        assert!(outcome.is_error && outcome.output.contains("`content` must be a string"));
    }

    #[tokio::test]
    async fn refuses_paths_outside_and_creates_nothing_there() {
        let sandbox = Sandbox::new();
        let outside_new = sandbox
            .outside
            .join("new.txt")
            .to_string_lossy()
            .into_owned();
        for path in [
            "../outside/new.txt".to_string(),
            "../escaped/new.txt".into(),
            outside_new,
            sandbox.outside_secret(),
            "link/new.txt".into(),
            "link/made/deep/new.txt".into(),
            "file_link".into(),
        ] {
            let outcome = run(&sandbox, json!({"path": path, "content": "pwned"})).await;
            assert_outside(&outcome);
        }
        let secret = std::fs::read_to_string(sandbox.outside.join("secret.txt")).expect("read");
        assert_eq!(secret, "top secret\n");
        assert!(!sandbox.outside.join("new.txt").exists());
        assert!(!sandbox.outside.join("made").exists());
        let base = sandbox.work.parent().expect("parent");
        assert!(!base.join("escaped").exists());
    }

    #[tokio::test]
    async fn refuses_a_dangling_symlink_out() {
        let sandbox = Sandbox::new();
        let target = sandbox.outside.join("not-yet");
        std::os::unix::fs::symlink(&target, sandbox.work.join("dangling")).expect("symlink");
        let outcome = run(&sandbox, json!({"path": "dangling", "content": "x"})).await;
        assert!(outcome.is_error, "{outcome:?}");
        assert!(!target.exists());
    }

    #[test]
    fn write_no_follow_refuses_a_symlink() {
        let sandbox = Sandbox::new();
        let err = write_no_follow(&sandbox.work.join("file_link"), b"x").expect_err("symlink");
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    }
}
