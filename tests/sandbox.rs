//! The tool sandbox on a real `octo serve` process: the mock model runs shell commands
//! that try to write outside the session's working dir, read the server's data dir and
//! config, leave a `setsid` daemon behind, and fork without bound. What this host cannot
//! enforce (no Landlock, no writable cgroup) is skipped with the reason printed, never
//! passed silently: the server's start log says the same.

use crate::common;

use std::path::Path;

use common::{collect_until, finishes, send_text, sent_turn, subscribe};
use octo::{pb, tools::sandbox::Sandbox};
use tonic::transport::Channel;

const CONFIG: &str = r#"
default_model = "mock"

[models.mock]
provider = "mock"
model = "mock"

[sandbox]
processes = 40
"#;

/// What this host supports, probed as the server probes it.
fn host() -> Sandbox {
    Sandbox::new(octo::tools::sandbox::SandboxSettings {
        confine_files: true,
        ..Default::default()
    })
}

struct Server {
    _child: tokio::process::Child,
    home: tempfile::TempDir,
    sessions: pb::session_service_client::SessionServiceClient<Channel>,
    chat: pb::chat_service_client::ChatServiceClient<Channel>,
}

impl Server {
    async fn start() -> Server {
        let home = tempfile::tempdir().expect("tempdir");
        let config = home.path().join("octo.toml");
        std::fs::write(&config, CONFIG).expect("config");
        let args: [&std::ffi::OsStr; 2] = ["--config".as_ref(), config.as_os_str()];
        let (child, address) = common::spawn_serve(home.path(), &args).await;
        let channel = common::connect(&address).await;
        Server {
            _child: child,
            home,
            sessions: pb::session_service_client::SessionServiceClient::new(channel.clone()),
            chat: pb::chat_service_client::ChatServiceClient::new(channel),
        }
    }

    /// Runs `command` through the shell tool in a new session; returns the tool's
    /// result text and the session's working dir.
    async fn shell(&mut self, command: &str) -> (String, String) {
        let session = common::create_in_mode(
            &mut self.sessions,
            "sandbox",
            pb::PermissionMode::AutoApprove,
        )
        .await;
        let mut events = subscribe(&mut self.chat, &session.name, 0).await;
        // A generous safety net: on a loaded 2-core machine a sandboxed command can take
        // seconds to start.
        let arguments = serde_json::json!({ "command": command, "timeout_seconds": 120 });
        let turn = sent_turn(
            &send_text(
                &mut self.chat,
                &session.name,
                &format!("/tool shell {arguments}"),
                pb::BusyPolicy::Enqueue,
            )
            .await
            .expect("send"),
        );
        let events = collect_until(&mut events, finishes(&turn.name)).await;
        (tool_result(&events), session.working_dir)
    }
}

fn tool_result(events: &[pb::SessionEvent]) -> String {
    events
        .iter()
        .find_map(|e| match &e.kind {
            Some(pb::session_event::Kind::ToolCallFinished(done)) => Some(
                done.record
                    .as_ref()
                    .and_then(|r| r.result.as_ref())
                    .map(|r| r.output.clone())
                    .unwrap_or_default(),
            ),
            _ => None,
        })
        .expect("a tool result")
}

/// A `sleep` duration no other process uses: this test binary's pid and `n`, so a
/// leftover from another run cannot be mistaken for this one's.
fn marker(n: u32) -> String {
    format!("9{}{n}", std::process::id())
}

/// Processes whose command line is exactly `words` (NUL-separated in /proc).
fn processes_running(words: &[&str]) -> Vec<String> {
    let wanted = words.join("\0") + "\0";
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == wanted.as_bytes()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn commands_write_only_in_their_working_dir_and_cannot_read_the_servers_files() {
    if !host().confines_files() {
        eprintln!(
            "SKIPPED: this kernel has no Landlock (5.13+, enabled at boot): files are not confined here"
        );
        return;
    }
    let mut server = Server::start().await;
    let outside = server.home.path().join("outside.txt");
    let data_dir = server.home.path().join("data/octo");
    let config = server.home.path().join("octo.toml");
    assert!(
        data_dir.join("octo.db").exists(),
        "the data dir is where the test thinks"
    );
    let command = format!(
        "echo inside > inside.txt && cat inside.txt; \
         echo tmp > \"$TMPDIR/t\" && cat \"$TMPDIR/t\"; \
         echo escaped > {outside}; \
         cat {db} > /dev/null && echo READ-DB; \
         cat {config} && echo READ-CONFIG; \
         ls {data} && echo LISTED-DATA; \
         head -c 5 /etc/passwd && echo; \
         echo done",
        outside = outside.display(),
        db = data_dir.join("octo.db").display(),
        config = config.display(),
        data = data_dir.display(),
    );
    let (output, working_dir) = server.shell(&command).await;
    assert!(output.contains("inside\ntmp\n"), "{output}");
    assert!(
        !outside.exists(),
        "a write outside the working dir went through: {output}"
    );
    assert!(
        output.contains("Permission denied"),
        "the refused accesses say so: {output}"
    );
    for leak in ["READ-DB", "READ-CONFIG", "LISTED-DATA", "[sandbox]"] {
        assert!(!output.contains(leak), "{leak}: {output}");
    }
    // Reads outside the hidden paths still work, and the command ran to its end.
    assert!(
        output.contains("root:"),
        "/etc/passwd is readable: {output}"
    );
    assert!(output.trim_end().ends_with("done"), "{output}");
    assert_eq!(
        std::fs::read_to_string(Path::new(&working_dir).join("inside.txt")).expect("written"),
        "inside\n"
    );
}

#[tokio::test]
async fn a_setsid_daemon_dies_with_its_command() {
    if !host().kills_descendants() {
        eprintln!("SKIPPED: no writable cgroup here: {}", host().describe());
        return;
    }
    let mut server = Server::start().await;
    // Started with setsid (its own session and process group) and by a double fork;
    // the shell exits at once, so only the cgroup still knows them.
    let (first, second) = (marker(1), marker(2));
    let (output, _) = server
        .shell(&format!(
            "setsid sleep {first} > /dev/null 2>&1 < /dev/null & \
             (setsid sleep {second} > /dev/null 2>&1 &) ; echo started"
        ))
        .await;
    assert!(output.contains("started"), "{output}");
    for marker in [first, second] {
        assert!(
            processes_running(&["sleep", &marker]).is_empty(),
            "sleep {marker} outlived its command"
        );
    }
}

#[tokio::test]
async fn a_setsid_daemon_is_gone_after_cancel() {
    if !host().kills_descendants() {
        eprintln!("SKIPPED: no writable cgroup here: {}", host().describe());
        return;
    }
    let server = Server::start().await;
    let (mut sessions, mut chat) = (server.sessions.clone(), server.chat.clone());
    let session =
        common::create_in_mode(&mut sessions, "cancel", pb::PermissionMode::AutoApprove).await;
    let mut events = subscribe(&mut chat, &session.name, 0).await;
    let daemon = marker(3);
    let arguments = serde_json::json!({
        "command": format!("setsid sleep {daemon} > /dev/null 2>&1 < /dev/null & echo up; sleep 600")
    });
    let turn = sent_turn(
        &send_text(
            &mut chat,
            &session.name,
            &format!("/tool shell {arguments}"),
            pb::BusyPolicy::Enqueue,
        )
        .await
        .expect("send"),
    );
    collect_until(&mut events, |e| {
        matches!(&e.kind, Some(pb::session_event::Kind::ToolCallOutput(o)) if o.text.contains("up"))
    })
    .await;
    // The daemon may still be between fork and exec: wait for it.
    common::eventually("the daemon to run", async || {
        (!processes_running(&["sleep", &daemon]).is_empty()).then_some(())
    })
    .await;
    chat.cancel_turn(pb::CancelTurnRequest {
        name: turn.name.clone(),
    })
    .await
    .expect("cancel");
    collect_until(&mut events, finishes(&turn.name)).await;
    assert!(
        processes_running(&["sleep", &daemon]).is_empty(),
        "the setsid daemon outlived the cancel"
    );
}

#[tokio::test]
async fn a_fork_bomb_is_held_by_the_process_cap() {
    if !host().kills_descendants() {
        eprintln!(
            "SKIPPED: no writable cgroup (no process cap for root): {}",
            host().describe()
        );
        return;
    }
    let mut server = Server::start().await;
    // 40 processes at most ([sandbox] processes): forks fail beyond (dash says "Cannot
    // fork", bash "Resource temporarily unavailable"); the command ends one way or
    // another (the shell may not even fork its `sleep`), and its cgroup is killed.
    let arguments = "bomb() { bomb | bomb & }; bomb; sleep 2; echo still-here";
    let (output, _) = server.shell(arguments).await;
    assert!(
        output.contains("Cannot fork") || output.contains("Resource temporarily unavailable"),
        "the process cap refused forks: {output}"
    );
    // The server still serves, and nothing of the bomb is left.
    let (after, _) = server.shell("echo alive").await;
    assert!(after.contains("alive"), "{after}");
}
