//! The `octo` command line run against a test server, as a user runs it: stdin closed,
//! output captured, the safety-net timeout.

use std::process::Stdio;

use super::{TIMEOUT, TestServer, octo_command};

/// What one `octo` run printed and how it ended.
pub struct Run {
    pub code: Option<i32>,
    /// Stdout as text (lossy); `stdout_bytes` holds it exactly.
    pub stdout: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// Asserts the run exited 0, showing its output otherwise.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Stdout parsed as JSON (`--json` output).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.stdout))
    }
}

/// `octo --server <server> <args>`.
pub async fn octo(server: &TestServer, args: &[&str]) -> Run {
    octo_with(server, args, |_| {}).await
}

/// `octo --server <server> <args>`, with `tweak` setting the environment or directory.
pub async fn octo_with(
    server: &TestServer,
    args: &[&str],
    tweak: impl FnOnce(&mut tokio::process::Command),
) -> Run {
    let mut command = octo_command();
    command
        .arg("--server")
        .arg(server.url())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tweak(&mut command);
    let output = tokio::time::timeout(TIMEOUT, command.output())
        .await
        .expect("octo finishes in time")
        .expect("octo runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stdout_bytes: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
