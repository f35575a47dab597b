//! `octo schedules ...` as a user runs it: the real binary against a real server whose
//! default model is the built-in mock.

use crate::common;

use std::{process::Stdio, time::Duration};

use common::{TIMEOUT, TestServer};
use tokio::{io::AsyncWriteExt, process::Command};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.stdout))
    }

    /// The table row whose first cell is `id`.
    #[track_caller]
    fn row(&self, id: &str) -> &str {
        self.stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no row {id}:\n{}", self.stdout))
    }
}

async fn octo_run_with_stdin(server: &TestServer, args: &[&str], stdin: Option<&str>) -> Run {
    let mut command: Command = common::octo_command();
    command
        .arg("--server")
        .arg(server.url())
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("octo runs");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes()).await.expect("write stdin");
        drop(pipe);
    }
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .expect("octo finishes in time")
        .expect("octo runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn octo_run(server: &TestServer, args: &[&str]) -> Run {
    octo_run_with_stdin(server, args, None).await
}

#[tokio::test]
async fn schedules_add_with_a_bad_cron_shows_the_field_violation() {
    let server = TestServer::start().await;
    let bad = octo_run(
        &server,
        &[
            "schedules",
            "add",
            "--cron",
            "every tuesday-ish",
            "--prompt",
            "hi",
        ],
    )
    .await;
    assert_eq!(bad.code, Some(1), "{}", bad.stdout);
    assert!(
        bad.stderr
            .starts_with("error: invalid argument (INVALID_ARGUMENT)\n"),
        "{}",
        bad.stderr
    );
    let violation = bad
        .stderr
        .lines()
        .find(|l| l.trim_start().starts_with("schedule.cron: "))
        .unwrap_or_else(|| panic!("a field violation: {}", bad.stderr));
    assert_eq!(
        bad.stderr.matches(violation.trim()).count(),
        1,
        "said once: {}",
        bad.stderr
    );

    let bad_zone = octo_run(
        &server,
        &[
            "schedules",
            "add",
            "--cron",
            "0 9 * * *",
            "--prompt",
            "hi",
            "--time-zone",
            "Mars/Olympus_Mons",
        ],
    )
    .await;
    assert_eq!(bad_zone.code, Some(1), "{}", bad_zone.stdout);
    assert!(
        bad_zone.stderr.contains("INVALID_ARGUMENT"),
        "{}",
        bad_zone.stderr
    );

    let missing = octo_run(&server, &["schedules", "add", "--prompt", "hi"]).await;
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("--cron"), "{}", missing.stderr);

    let listed = octo_run(&server, &["schedules", "list"]).await;
    listed.assert_ok();
    assert!(listed.stdout.contains("No schedules"), "{}", listed.stdout);
}

#[tokio::test]
async fn schedules_add_list_update_run_runs_and_rm() {
    let server = TestServer::start().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let added = octo_run_with_stdin(
        &server,
        &[
            "--json",
            "schedules",
            "add",
            "--cron",
            "0 3 * * *",
            "--time-zone",
            "Europe/Paris",
            "--prompt",
            "Say hello",
            "--name",
            "Nightly",
            "--model",
            "mock",
            "--webhook-url",
            "http://127.0.0.1:9/hook",
            "--webhook-secret-stdin",
        ],
        Some(&format!("{secret}\n")),
    )
    .await;
    added.assert_ok();
    let schedule = added.json();
    let name = schedule["name"].as_str().expect("name").to_owned();
    let id = name.strip_prefix("schedules/").expect("a schedule name");
    assert_eq!(schedule["enabled"], true, "{schedule}");
    assert_eq!(schedule["cron"], "0 3 * * *");
    assert_eq!(schedule["model"], "models/mock");
    assert!(schedule["nextRunTime"].is_string(), "{schedule}");
    assert!(!added.stdout.contains(secret), "{}", added.stdout);

    // The plain output shows the next run time.
    let shown = octo_run(&server, &["schedules", "show", id]).await;
    shown.assert_ok();
    assert!(shown.stdout.contains("Next run"), "{}", shown.stdout);
    assert!(shown.stdout.contains("Europe/Paris"), "{}", shown.stdout);
    assert!(!shown.stdout.contains(secret), "{}", shown.stdout);

    let listed = octo_run(&server, &["schedules", "list"]).await;
    listed.assert_ok();
    let row = listed.row(id);
    for cell in ["Nightly", "0 3 * * *", "Europe/Paris", "yes"] {
        assert!(row.contains(cell), "{cell}: {}", listed.stdout);
    }
    assert!(row.ends_with('-'), "no run yet: {}", listed.stdout);

    let updated = octo_run(
        &server,
        &[
            "--json",
            "schedule",
            "update",
            &name,
            "--disable",
            "--name",
            "Nightly (off)",
            "--max-attempts",
            "2",
        ],
    )
    .await;
    updated.assert_ok();
    let schedule = updated.json();
    assert_ne!(schedule["enabled"], true, "disabled: {schedule}");
    assert!(
        schedule.get("nextRunTime").is_none(),
        "no next run while disabled: {schedule}"
    );
    assert_eq!(schedule["displayName"], "Nightly (off)");
    assert_eq!(schedule["prompt"], "Say hello", "untouched: {schedule}");
    assert_eq!(schedule["retryPolicy"]["maxAttempts"], 2, "{schedule}");
    let listed = octo_run(&server, &["schedules", "ls"]).await;
    let row = listed.row(id);
    assert!(row.contains(" no "), "{}", listed.stdout);

    let nothing = octo_run(&server, &["schedules", "update", id]).await;
    assert_eq!(nothing.code, Some(1));

    // A manual run works on a disabled schedule too.
    let run = octo_run(&server, &["--json", "schedules", "run", id]).await;
    run.assert_ok();
    let started = run.json();
    let run_name = started["name"].as_str().expect("run name").to_owned();
    assert!(run_name.starts_with(&format!("{name}/runs/")), "{run_name}");
    let run_id = run_name.rsplit('/').next().expect("run id").to_owned();
    assert_eq!(started["trigger"], "RUN_TRIGGER_MANUAL");
    assert!(
        ["RUN_STATUS_PENDING", "RUN_STATUS_RUNNING"]
            .contains(&started["status"].as_str().unwrap_or("")),
        "{started}"
    );

    // Poll until the run has finished (the mock model answers at once).
    let finished = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let runs = octo_run(&server, &["--json", "schedules", "runs", id]).await;
            runs.assert_ok();
            let value = runs.json();
            let newest = value["runs"][0].clone();
            if newest["status"] == "RUN_STATUS_SUCCEEDED" || newest["status"] == "RUN_STATUS_FAILED"
            {
                return newest;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the run finishes within 60 s");
    assert_eq!(finished["status"], "RUN_STATUS_SUCCEEDED", "{finished}");
    assert_eq!(finished["name"], run_name.as_str());
    let session = finished["session"].as_str().expect("session").to_owned();
    let turn = finished["turn"].as_str().expect("turn").to_owned();
    assert!(session.starts_with("sessions/"), "{finished}");
    assert!(turn.starts_with(&format!("{session}/turns/")), "{finished}");

    let runs = octo_run(&server, &["schedules", "runs", &name, "--limit", "5"]).await;
    runs.assert_ok();
    let header = runs.stdout.lines().next().expect("header");
    assert!(header.starts_with("RUN"), "{}", runs.stdout);
    let row = runs.row(&run_id);
    for cell in [
        "manual",
        "succeeded",
        session.trim_start_matches("sessions/"),
        turn.rsplit('/').next().expect("turn id"),
    ] {
        assert!(row.contains(cell), "{cell}: {}", runs.stdout);
    }
    // The run's session holds the exchange.
    let shown = octo_run(&server, &["--json", "sessions", "show", &session]).await;
    shown.assert_ok();

    // The schedule remembers its last run.
    let listed = octo_run(&server, &["schedules", "list"]).await;
    assert!(listed.row(id).ends_with("succeeded"), "{}", listed.stdout);

    let removed = octo_run(&server, &["schedules", "rm", id]).await;
    removed.assert_ok();
    assert!(
        removed.stdout.contains(&format!("Deleted schedule {id}")),
        "{}",
        removed.stdout
    );
    let gone = octo_run(&server, &["schedules", "show", id]).await;
    assert_eq!(gone.code, Some(1));
    assert!(gone.stderr.contains("NOT_FOUND"), "{}", gone.stderr);
    octo_run(&server, &["schedules", "rm", id, "--force-missing"])
        .await
        .assert_ok();
    // The run's session stays.
    octo_run(&server, &["sessions", "show", &session])
        .await
        .assert_ok();
}
