//! `shell`: runs `/bin/sh -c command` in the working dir, in its own process group and
//! in the tool sandbox (`super::sandbox`: Landlock, resource limits, a cgroup where
//! one is writable), streaming stdout and stderr; cancel, timeout and drop kill the
//! whole group, and the whole cgroup (processes that left the group with `setsid` or a
//! double fork included).
//!
//! When the shell itself exits, whatever it left running (background jobs, daemons) is
//! killed too, so a command cannot outlive its call or hold the output pipes open. The
//! command gets the allow-listed environment only (`super::env`), and `TMPDIR` set to
//! its private temp dir, removed afterwards.

use std::{
    os::unix::process::ExitStatusExt,
    process::{ExitStatus, Stdio},
    time::Duration,
};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{
    io::AsyncReadExt,
    process::Command,
    time::{Instant, MissedTickBehavior},
};

use super::{
    Access, OutputStream, Tool, ToolContext, ToolOutcome, args,
    output::{HeadTail, StreamSink, Utf8Decoder},
    support::seconds,
};
use crate::domain::tool::ToolSpec;

const NAME: &str = "shell";
const READ_CHUNK: usize = 8 * 1024;
/// How often output held back by a full channel is offered again.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// After the shell exits and its group is killed, how long to keep reading pipes that
/// something outside the group (e.g. a `setsid` daemon) still holds open.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Runs a shell command in the working dir.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shell;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    command: String,
    timeout_seconds: Option<f64>,
}

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "minLength": 1,
                "description": "The command line, run by `/bin/sh -c` in the working directory."
            },
            "timeout_seconds": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "Kill the command after this many seconds. It can only shorten the session's own tool timeout."
            }
        },
        "required": ["command"],
        "additionalProperties": false
    })
}

#[async_trait::async_trait]
impl Tool for Shell {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: NAME.into(),
            description: "Run a shell command with `/bin/sh -c` in the working directory and \
                          return its combined stdout and stderr (long output keeps its start \
                          and end) and its exit code if non-zero. There is no stdin: \
                          interactive commands must not wait for input. The command and \
                          everything it starts are killed when it times out or the turn is \
                          cancelled, and background jobs are killed when the shell exits. \
                          Prefer read_file, list_dir, glob and grep for looking at files."
                .into(),
            parameters: parameters(),
        }
    }

    fn access(&self) -> Access {
        Access::Execute
    }

    async fn run(&self, arguments: Value, context: ToolContext) -> ToolOutcome {
        let args: Args = match args::parse(NAME, &parameters(), arguments) {
            Ok(args) => args,
            Err(why) => return ToolOutcome::error(why),
        };
        let limit = args
            .timeout_seconds
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .map_or(context.timeout, |asked| asked.min(context.timeout));
        run_command(&args.command, limit, &context).await
    }
}

/// Why the command was stopped before it finished.
enum Stop {
    Cancelled,
    TimedOut,
    WaitFailed(std::io::Error),
}

async fn run_command(command_line: &str, limit: Duration, context: &ToolContext) -> ToolOutcome {
    if context.cancel.is_cancelled() {
        return ToolOutcome::cancelled("cancelled before the command started");
    }
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(command_line)
        .current_dir(&context.working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // The allow-listed environment only: the server's holds API keys and its own
    // settings (`OCTO_TOKEN`, ...), which are not the command's business.
    command.env_clear().envs(context.env.vars());
    let mut confinement = match context.sandbox.prepare(&context.working_dir) {
        Ok(confinement) => confinement,
        Err(err) => {
            tracing::error!(%err, "cannot prepare the tool sandbox");
            return ToolOutcome::error(format!("could not prepare the command's sandbox: {err}"));
        }
    };
    confinement.apply(&mut command);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            return ToolOutcome::error(format!(
                "could not start /bin/sh in `{}`: {err}",
                context.working_dir.display()
            ));
        }
    };
    // Declared after `child`, so on drop it kills the group before the child is dropped.
    let mut group = match child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) {
        Some(pid) => ProcessGroup::new(pid),
        None => return ToolOutcome::error("the shell exited before it could be tracked"),
    };
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return ToolOutcome::error("the shell's output pipes are missing");
    };
    tracing::debug!(pgid = group.pgid, command = command_line, "shell started");

    let mut capture = Capture::new(context);
    let started = Instant::now();
    let deadline = started
        .checked_add(limit)
        .unwrap_or_else(|| started + Duration::from_secs(365 * 24 * 3600));
    let mut out_buf = vec![0u8; READ_CHUNK];
    let mut err_buf = vec![0u8; READ_CHUNK];
    let (mut out_open, mut err_open) = (true, true);
    let mut status: Option<ExitStatus> = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    flush.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let stop = loop {
        if status.is_some() && !out_open && !err_open {
            break None;
        }
        tokio::select! {
            biased;
            () = context.cancel.cancelled() => break Some(Stop::Cancelled),
            () = tokio::time::sleep_until(deadline) => break Some(Stop::TimedOut),
            read = stdout.read(&mut out_buf), if out_open => match read {
                Ok(0) => out_open = false,
                Ok(n) => capture.data(OutputStream::Stdout, &out_buf[..n]),
                Err(err) => {
                    tracing::debug!(%err, "reading the shell's stdout failed");
                    out_open = false;
                }
            },
            read = stderr.read(&mut err_buf), if err_open => match read {
                Ok(0) => err_open = false,
                Ok(n) => capture.data(OutputStream::Stderr, &err_buf[..n]),
                Err(err) => {
                    tracing::debug!(%err, "reading the shell's stderr failed");
                    err_open = false;
                }
            },
            waited = child.wait(), if status.is_none() => match waited {
                Ok(exit) => {
                    status = Some(exit);
                    // Background jobs die with the shell; their pipe ends close with them.
                    group.kill();
                    confinement.kill_all();
                    drain_deadline = Some(Instant::now() + DRAIN_GRACE);
                }
                Err(err) => break Some(Stop::WaitFailed(err)),
            },
            () = sleep_until_opt(drain_deadline) => {
                tracing::debug!(
                    pgid = group.pgid,
                    "the shell exited but its output pipes stay open; no longer reading them"
                );
                out_open = false;
                err_open = false;
            },
            _ = flush.tick(), if capture.sink.has_pending() => capture.sink.flush(),
        }
    };

    // A stop that only cut short the reading of pipes left open after the shell exited
    // does not change how the command ended.
    let stop = match stop {
        Some(Stop::Cancelled | Stop::TimedOut) if status.is_some() => None,
        stop => stop,
    };
    if stop.is_some() {
        group.kill();
        confinement.kill_all();
        if status.is_none() {
            // SIGKILL was sent; reaping is prompt. Bounded all the same.
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(Ok(exit)) => status = Some(exit),
                Ok(Err(err)) => tracing::warn!(%err, "reaping the killed shell failed"),
                Err(_) => tracing::warn!(pgid = group.pgid, "the killed shell was not reaped"),
            }
        }
    }
    // The group was killed after the shell exited (or just now): nothing is left to kill.
    group.disarm();
    confinement.finish().await;
    let text = capture.finish();

    match stop {
        None => {
            let Some(exit) = status else {
                return ToolOutcome::error("the shell's exit status is missing");
            };
            completed(text, exit)
        }
        Some(Stop::Cancelled) => stopped(
            text,
            "cancelled; the command and its processes were killed".into(),
        ),
        Some(Stop::TimedOut) => stopped(
            text,
            format!(
                "timed out after {}; the command and its processes were killed",
                seconds(limit)
            ),
        ),
        Some(Stop::WaitFailed(err)) => {
            tracing::warn!(%err, "waiting for the shell failed");
            ToolOutcome::error(with_line(
                text,
                &format!("waiting for the command failed: {err}"),
            ))
        }
    }
}

/// Resolves at `deadline`, or never without one.
async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn completed(text: String, exit: ExitStatus) -> ToolOutcome {
    let (code, line) = match (exit.code(), exit.signal()) {
        (Some(code), _) => (code, format!("exit code: {code}")),
        (None, Some(signal)) => (
            128 + signal,
            format!("killed by signal {signal} (exit code: {})", 128 + signal),
        ),
        (None, None) => (-1, "exit status unknown".to_string()),
    };
    let output = if code != 0 {
        with_line(text, &line)
    } else if text.is_empty() {
        "(no output)".into()
    } else {
        text
    };
    ToolOutcome {
        output,
        is_error: code != 0,
        exit_code: Some(code),
        cancelled: false,
        changes: Vec::new(),
    }
}

fn stopped(text: String, why: String) -> ToolOutcome {
    ToolOutcome::cancelled(with_line(text, &why))
}

/// `text` followed by `line` on a line of its own.
fn with_line(mut text: String, line: &str) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text
}

/// The command's output: streamed to clients and kept (bounded) for the model.
struct Capture {
    sink: StreamSink,
    kept: HeadTail,
    stdout: Utf8Decoder,
    stderr: Utf8Decoder,
}

impl Capture {
    fn new(context: &ToolContext) -> Self {
        Self {
            sink: StreamSink::new(context.output.clone()),
            kept: HeadTail::new(context.max_output_bytes),
            stdout: Utf8Decoder::default(),
            stderr: Utf8Decoder::default(),
        }
    }

    fn data(&mut self, stream: OutputStream, bytes: &[u8]) {
        self.kept.push(bytes);
        let decoder = match stream {
            OutputStream::Stdout => &mut self.stdout,
            OutputStream::Stderr => &mut self.stderr,
        };
        let text = decoder.decode(bytes);
        self.sink.push(stream, text);
    }

    /// Streams what the decoders held back and returns the bounded combined output.
    fn finish(mut self) -> String {
        let rest = self.stdout.finish();
        self.sink.push(OutputStream::Stdout, rest);
        let rest = self.stderr.finish();
        self.sink.push(OutputStream::Stderr, rest);
        self.sink.finish();
        self.kept.render()
    }
}

/// The command's process group: SIGKILLed as a whole on [`kill`](Self::kill) and on
/// drop (a dropped tool future) unless disarmed.
struct ProcessGroup {
    pgid: libc::pid_t,
    armed: bool,
}

impl ProcessGroup {
    fn new(pgid: libc::pid_t) -> Self {
        Self {
            pgid,
            // pgid 0 or 1 would mean our own group or init's: never signal those.
            armed: pgid > 1,
        }
    }

    fn kill(&self) {
        if !self.armed {
            return;
        }
        // SAFETY: kill(2) takes plain integers and touches no memory of ours; the target
        // is the group the spawned shell leads (pgid > 1, checked in `new`).
        let result = unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        if result != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::ESRCH) {
                tracing::warn!(pgid = self.pgid, %err, "killing the command's process group failed");
            }
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if self.armed {
            tracing::debug!(
                pgid = self.pgid,
                "shell run dropped; killing its process group"
            );
            self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::tools::{ToolOutput, test_support::context};

    async fn run(dir: &std::path::Path, arguments: Value) -> ToolOutcome {
        let (context, _output) = context(dir);
        Shell.run(arguments, context).await
    }

    /// Live (non-zombie) processes whose process group is `pgid`, from /proc/*/stat.
    fn group_members(pgid: i32) -> Vec<i32> {
        let mut members = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return members;
        };
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            // Processes may vanish while we look.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid pgrp ...`; comm may contain spaces and parentheses.
            let Some((_, after_comm)) = stat.rsplit_once(')') else {
                continue;
            };
            let fields: Vec<&str> = after_comm.split_whitespace().collect();
            let (Some(state), Some(pgrp)) = (fields.first(), fields.get(2)) else {
                continue;
            };
            if *state != "Z" && pgrp.parse::<i32>() == Ok(pgid) {
                members.push(pid);
            }
        }
        members
    }

    /// Polls (every 20 ms, for up to 10 s) until `done` holds; false if it never did.
    async fn eventually(mut done: impl FnMut() -> bool) -> bool {
        for _ in 0..500 {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        done()
    }

    /// Receives streamed output until `want` has appeared in `stream`; returns the text.
    async fn receive_until(
        output: &mut mpsc::Receiver<ToolOutput>,
        stream: OutputStream,
        want: &str,
    ) -> String {
        let mut text = String::new();
        let wait = async {
            while !text.contains(want) {
                match output.recv().await {
                    Some(chunk) if chunk.stream == stream => text.push_str(&chunk.text),
                    Some(_) => {}
                    None => break,
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(20), wait).await;
        text
    }

    #[tokio::test]
    async fn runs_in_the_working_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("here.txt"), "").expect("write");
        let outcome = run(dir.path(), json!({"command": "ls"})).await;
        assert_eq!(
            outcome,
            ToolOutcome {
                output: "here.txt\n".into(),
                is_error: false,
                exit_code: Some(0),
                cancelled: false,
                changes: Vec::new(),
            }
        );
        let outcome = run(dir.path(), json!({"command": "true"})).await;
        assert_eq!(outcome.output, "(no output)");
        let outcome = run(dir.path(), json!({"command": "cat"})).await;
        assert_eq!(outcome.exit_code, Some(0), "stdin is empty: {outcome:?}");
    }

    #[tokio::test]
    async fn reports_exit_codes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outcome = run(
            dir.path(),
            json!({"command": "echo out; echo err >&2; exit 3"}),
        )
        .await;
        assert!(outcome.is_error && !outcome.cancelled);
        assert_eq!(outcome.exit_code, Some(3));
        // Two pipes: which one is read first is up to the scheduler.
        let body = outcome
            .output
            .strip_suffix("exit code: 3")
            .expect("exit line");
        assert!(body == "out\nerr\n" || body == "err\nout\n", "{body}");
        let outcome = run(dir.path(), json!({"command": "kill -9 $$"})).await;
        assert_eq!(outcome.exit_code, Some(137));
        assert_eq!(outcome.output, "killed by signal 9 (exit code: 137)");
        let outcome = run(dir.path(), json!({"command": "no-such-command-octo"})).await;
        assert_eq!(outcome.exit_code, Some(127));
        assert!(outcome.output.contains("not found"), "{outcome:?}");
    }

    #[tokio::test]
    async fn streams_stdout_and_stderr_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (context, mut output) = context(dir.path());
        let command = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done";
        let outcome = Shell.run(json!({"command": command}), context).await;
        assert_eq!(outcome.exit_code, Some(0));
        let (mut out, mut err) = (String::new(), String::new());
        while let Ok(chunk) = output.try_recv() {
            match chunk.stream {
                OutputStream::Stdout => out.push_str(&chunk.text),
                OutputStream::Stderr => err.push_str(&chunk.text),
            }
        }
        assert_eq!(out, "out1\nout2\nout3\nout4\nout5\n");
        assert_eq!(err, "err1\nerr2\nerr3\nerr4\nerr5\n");
        // The combined result has every line, each stream in its own order.
        let lines: Vec<&str> = outcome.output.lines().collect();
        let outs: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with("out"))
            .collect();
        assert_eq!(outs, ["out1", "out2", "out3", "out4", "out5"]);
        assert_eq!(lines.len(), 10);
    }

    #[tokio::test]
    async fn streams_while_the_command_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (context, mut output) = context(dir.path());
        let cancel = context.cancel.clone();
        let task = tokio::spawn(async move {
            Shell
                .run(json!({"command": "echo started; sleep 1000"}), context)
                .await
        });
        // The chunk arrives while the command is still sleeping.
        let seen = receive_until(&mut output, OutputStream::Stdout, "started\n").await;
        assert_eq!(seen, "started\n");
        assert!(!task.is_finished());
        cancel.cancel();
        let outcome = task.await.expect("join");
        assert!(
            outcome.cancelled && outcome.output.starts_with("started\n"),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn cancel_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (context, mut output) = context(dir.path());
        let cancel = context.cancel.clone();
        let command = "echo $$; sleep 1000 & sleep 1000; echo never";
        let task =
            tokio::spawn(async move { Shell.run(json!({"command": command}), context).await });

        let first = receive_until(&mut output, OutputStream::Stdout, "\n").await;
        let pgid: i32 = first.trim().parse().expect("the shell's pid");
        // The shell and both sleeps are in the group before we cancel.
        assert!(
            eventually(|| group_members(pgid).len() >= 3).await,
            "{:?}",
            group_members(pgid)
        );

        cancel.cancel();
        let outcome = task.await.expect("join");
        assert!(outcome.cancelled && outcome.is_error, "{outcome:?}");
        assert_eq!(outcome.exit_code, None);
        assert!(outcome.output.contains("cancelled"), "{outcome:?}");
        assert!(!outcome.output.contains("never"), "{outcome:?}");
        assert!(
            eventually(|| group_members(pgid).is_empty()).await,
            "still running: {:?}",
            group_members(pgid)
        );
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (context, mut output) = context(dir.path());
        let command = "echo $$; sleep 1000 & sleep 1000";
        let run = Shell.run(json!({"command": command, "timeout_seconds": 1.5}), context);
        let (outcome, first) =
            tokio::join!(run, receive_until(&mut output, OutputStream::Stdout, "\n"));
        let pgid: i32 = first.trim().parse().expect("the shell's pid");
        assert!(outcome.cancelled && outcome.is_error, "{outcome:?}");
        assert!(
            outcome
                .output
                .ends_with("timed out after 1.5s; the command and its processes were killed"),
            "{outcome:?}"
        );
        assert!(
            eventually(|| group_members(pgid).is_empty()).await,
            "{:?}",
            group_members(pgid)
        );
    }

    #[tokio::test]
    async fn the_context_timeout_caps_the_argument() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut context, _output) = context(dir.path());
        context.timeout = Duration::from_millis(300);
        let outcome = Shell
            .run(
                json!({"command": "sleep 1000", "timeout_seconds": 500}),
                context,
            )
            .await;
        assert!(outcome.cancelled, "{outcome:?}");
        assert!(
            outcome.output.contains("timed out after 0.3s"),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn dropping_the_run_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (context, mut output) = context(dir.path());
        let command = "echo $$; sleep 1000 & sleep 1000";
        let task =
            tokio::spawn(async move { Shell.run(json!({"command": command}), context).await });
        let first = receive_until(&mut output, OutputStream::Stdout, "\n").await;
        let pgid: i32 = first.trim().parse().expect("the shell's pid");
        assert!(eventually(|| group_members(pgid).len() >= 3).await);
        task.abort();
        assert!(task.await.is_err_and(|err| err.is_cancelled()));
        assert!(
            eventually(|| group_members(pgid).is_empty()).await,
            "{:?}",
            group_members(pgid)
        );
    }

    #[tokio::test]
    async fn background_jobs_die_with_the_shell() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (context, _output) = context(dir.path());
        let outcome = Shell
            .run(
                json!({"command": "echo $$; sleep 1000 & echo bye"}),
                context,
            )
            .await;
        assert_eq!(outcome.exit_code, Some(0), "{outcome:?}");
        let pgid: i32 = outcome
            .output
            .lines()
            .next()
            .unwrap_or("")
            .parse()
            .expect("pid");
        assert!(outcome.output.ends_with("bye\n"));
        assert!(eventually(|| group_members(pgid).is_empty()).await);
    }

    #[tokio::test]
    async fn pipes_held_open_outside_the_group_do_not_hang_the_call() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (context, _output) = context(dir.path());
        // The `setsid` job leaves the group (so the kill misses it) and holds stdout for
        // 5 s; the shell waits until it has left, then exits.
        let command = "setsid sh -c 'touch left; sleep 5' & \
                       while [ ! -e left ]; do sleep 0.02; done; echo hi";
        let started = std::time::Instant::now();
        let outcome = Shell.run(json!({ "command": command }), context).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            outcome,
            ToolOutcome {
                output: "hi\n".into(),
                is_error: false,
                exit_code: Some(0),
                cancelled: false,
                changes: Vec::new(),
            }
        );
    }

    #[tokio::test]
    async fn bounds_the_output_keeping_head_and_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut context, _output) = context(dir.path());
        context.max_output_bytes = 1000;
        let command = "echo START; head -c 200000 /dev/zero | tr '\\0' x; echo; echo END; exit 2";
        let outcome = Shell.run(json!({"command": command}), context).await;
        assert_eq!(outcome.exit_code, Some(2));
        let body = outcome
            .output
            .strip_suffix("exit code: 2")
            .expect("exit line");
        assert!(body.len() <= 1000, "{}", body.len());
        assert!(body.starts_with("START\nxxx"), "{body}");
        assert!(body.ends_with("xxx\nEND\n"), "{body}");
        let total = "START\n".len() + 200_000 + "\nEND\n".len();
        let (head, rest) = body.split_once("\n[… ").expect("marker");
        let (omitted, tail) = rest.split_once(" bytes omitted …]\n").expect("marker");
        let omitted: usize = omitted.parse().expect("number");
        assert_eq!(head.len() + omitted + tail.len(), total);
    }

    #[tokio::test]
    async fn a_slow_consumer_never_blocks_the_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut context, _output) = context(dir.path());
        let (sender, mut receiver) = mpsc::channel(1);
        context.output = sender;
        // Nobody reads while this runs: 1000 lines through a channel of one.
        let command = "i=0; while [ $i -lt 1000 ]; do echo line $i; i=$((i+1)); done";
        let outcome = Shell.run(json!({"command": command}), context).await;
        assert_eq!(outcome.exit_code, Some(0));
        assert_eq!(outcome.output.lines().count(), 1000);
        assert!(
            receiver
                .recv()
                .await
                .is_some_and(|chunk| chunk.text.starts_with("line 0\n"))
        );
    }

    #[tokio::test]
    async fn bad_arguments_and_early_cancel() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outcome = run(dir.path(), json!({"cmd": "ls"})).await;
        assert!(outcome.is_error && outcome.output.contains("unknown argument `cmd`"));
        let outcome = run(dir.path(), json!({"command": "ls", "timeout_seconds": 0})).await;
        assert!(
            outcome
                .output
                .contains("`timeout_seconds` must be greater than 0"),
            "{outcome:?}"
        );
        let outcome = run(dir.path(), json!({"command": ["ls"]})).await;
        assert!(
            outcome
                .output
                .contains("`command` must be a string, got an array")
        );

        let (context, _output) = context(dir.path());
        context.cancel.cancel();
        let outcome = Shell.run(json!({"command": "touch made"}), context).await;
        assert!(outcome.cancelled);
        assert!(!dir.path().join("made").exists());
    }

    #[test]
    fn spec_and_access() {
        let spec = Shell.spec();
        assert_eq!(spec.name, "shell");
        assert_eq!(spec.parameters["required"], json!(["command"]));
        assert_eq!(Shell.access(), Access::Execute);
    }
}
