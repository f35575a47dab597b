//! Helpers for the tools' tests.

use std::{path::Path, time::Duration};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ToolContext, ToolOutput};

/// A context on `dir` (canonicalised) with a roomy output channel and a 30 s timeout.
pub(crate) fn context(dir: &Path) -> (ToolContext, mpsc::Receiver<ToolOutput>) {
    let (output, receiver) = mpsc::channel(1024);
    let context = ToolContext {
        working_dir: dir.canonicalize().expect("canonical working dir"),
        cancel: CancellationToken::new(),
        output,
        timeout: Duration::from_secs(30),
        max_output_bytes: 64 * 1024,
        env: super::env::ToolEnv::from_process(
            &super::env::DEFAULT_ALLOWED
                .iter()
                .map(|name| (*name).to_owned())
                .collect::<Vec<_>>(),
            &[],
        ),
        sandbox: super::sandbox::Sandbox::disabled(),
    };
    (context, receiver)
}

/// A temp dir with `work/` (the working dir) and a sibling `outside/` holding `secret.txt`;
/// `work/link` is a symlink to `outside/`, `work/file_link` to `outside/secret.txt`.
pub(crate) struct Sandbox {
    _dir: tempfile::TempDir,
    pub work: std::path::PathBuf,
    pub outside: std::path::PathBuf,
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().canonicalize().expect("canonical");
        let work = base.join("work");
        let outside = base.join("outside");
        std::fs::create_dir_all(&work).expect("mkdir work");
        std::fs::create_dir_all(&outside).expect("mkdir outside");
        std::fs::write(outside.join("secret.txt"), "top secret\n").expect("write secret");
        std::os::unix::fs::symlink(&outside, work.join("link")).expect("symlink");
        std::os::unix::fs::symlink(outside.join("secret.txt"), work.join("file_link"))
            .expect("symlink");
        Self {
            _dir: dir,
            work,
            outside,
        }
    }

    pub(crate) fn context(&self) -> (ToolContext, mpsc::Receiver<ToolOutput>) {
        context(&self.work)
    }

    pub(crate) fn write(&self, relative: &str, content: &str) {
        let path = self.work.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, content).expect("write");
    }

    /// The absolute path of `outside/secret.txt`, as a string argument.
    pub(crate) fn outside_secret(&self) -> String {
        self.outside
            .join("secret.txt")
            .to_string_lossy()
            .into_owned()
    }
}

/// Asserts a refused path: an error outcome that says the path is outside.
#[track_caller]
pub(crate) fn assert_outside(outcome: &super::ToolOutcome) {
    assert!(outcome.is_error, "{outcome:?}");
    assert!(
        outcome.output.contains("outside the working directory"),
        "{outcome:?}"
    );
    assert!(!outcome.output.contains("top secret"), "{outcome:?}");
}
