//! Signals to a real `octo serve` process: SIGHUP is logged and ignored (the server
//! keeps serving; nothing is reloaded live), SIGTERM stops it cleanly with status 0.

use crate::common;

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name}");
}

#[tokio::test]
async fn sighup_is_logged_and_ignored_and_sigterm_stops_cleanly() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut command = common::octo_command_in(home.path());
    let mut child = command
        .args([
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--log",
            "info",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn octo serve");
    let pid = child.id().expect("pid");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut next_line_with = async |needle: &str| {
        tokio::time::timeout(common::TIMEOUT, async {
            while let Some(line) = lines.next_line().await.expect("log") {
                if line.contains(needle) {
                    return line;
                }
            }
            panic!("the log ended before {needle:?}");
        })
        .await
        .expect("the log line in time (safety net)")
    };
    let listening = next_line_with("octo listening").await;
    let address = listening
        .split("address=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("address")
        .to_owned();

    signal(pid, "HUP");
    next_line_with("SIGHUP received and ignored").await;
    let ready = reqwest::get(format!("http://{address}/readyz"))
        .await
        .expect("still serving after SIGHUP");
    assert_eq!(ready.status().as_u16(), 200);

    signal(pid, "TERM");
    next_line_with("stopped").await;
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("exits in time (safety net)")
        .expect("wait");
    assert!(status.success(), "{status:?}");
}
