//! What a model's shell command sees of the server's environment: the allow-list
//! (`tool_env`), never a provider key named by `api_key_env`, never `OCTO_*`, never
//! anything else the operator exported. A real `octo serve` process with those in its
//! environment; the mock model runs `env` through the shell tool.

use crate::common;

use common::{collect_until, finishes, send_text, sent_turn, subscribe};
use octo::pb;

const CONFIG: &str = r#"
default_model = "mock"
tool_env = ["PATH", "HOME", "LANG", "LC_*", "EXTRA_ALLOWED", "SECRET_KEY_FOR_MODEL"]

[models.mock]
provider = "mock"
model = "mock"

[models.keyed]
provider = "openai"
model = "gpt-4.1-mini"
base_url = "http://127.0.0.1:9"
api_key_env = "SECRET_KEY_FOR_MODEL"
"#;

#[tokio::test]
async fn a_shell_command_sees_the_allow_list_and_no_secret() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join("octo.toml");
    std::fs::write(&config, CONFIG).expect("config");
    let mut command = common::octo_command();
    command
        .env("SECRET_KEY_FOR_MODEL", "sk-must-not-leak")
        .env("OPENAI_API_KEY", "sk-also-not")
        .env("OCTO_SYSTEM_PROMPT", "server setting")
        .env("EXTRA_ALLOWED", "visible")
        .env("LC_TIME", "C");
    let args: [&std::ffi::OsStr; 2] = ["--config".as_ref(), config.as_os_str()];
    let (_server, address) = common::spawn_serve_with(command, home.path(), &args).await;
    let channel = common::connect(&address).await;
    let mut sessions = pb::session_service_client::SessionServiceClient::new(channel.clone());
    let mut chat = pb::chat_service_client::ChatServiceClient::new(channel);
    let session =
        common::create_in_mode(&mut sessions, "env", pb::PermissionMode::AutoApprove).await;
    let mut events = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(
            &mut chat,
            &session.name,
            r#"/tool shell {"command": "env"}"#,
            pb::BusyPolicy::Enqueue,
        )
        .await
        .expect("send"),
    );
    let events = collect_until(&mut events, finishes(&turn.name)).await;
    let output: String = events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::session_event::Kind::ToolCallOutput(o)) => Some(o.text.clone()),
            _ => None,
        })
        .collect();
    let names: Vec<&str> = output
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .collect();
    assert!(names.contains(&"PATH"), "{output}");
    assert!(output.contains("EXTRA_ALLOWED=visible"), "{output}");
    assert!(output.contains("LC_TIME=C"), "{output}");
    for leak in ["sk-must-not-leak", "sk-also-not", "server setting"] {
        assert!(!output.contains(leak), "{leak} leaked: {output}");
    }
    assert!(
        !names.iter().any(|name| name.starts_with("OCTO_")),
        "{output}"
    );
}
