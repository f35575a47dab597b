//! Agent profiles end to end: ProfileService over gRPC and JSON, sessions and schedule
//! runs set up from a profile (explicit fields win, the profile's persona reaches the
//! model, a change reaches new sessions only), `[profiles.<id>]` seeding, and the
//! `octo profiles` CLI.

use crate::common;

use common::{TIMEOUT, TestServer, reason, violated_fields};
use octo::pb::{self, profile_service_client::ProfileServiceClient};
use serde_json::json;
use tonic::{Code, transport::Channel};

type Profiles = ProfileServiceClient<Channel>;

async fn profiles(server: &TestServer) -> Profiles {
    ProfileServiceClient::new(server.channel().await)
}

fn reviewer() -> pb::Profile {
    pb::Profile {
        display_name: "Code reviewer".into(),
        system_prompt: "You are the reviewer persona.".into(),
        permission_mode: pb::PermissionMode::ReadOnly as i32,
        reasoning_effort: pb::ReasoningEffort::High as i32,
        mcp_servers: Some(pb::McpServerSelection { names: vec![] }),
        working_dir_template: "reviews/{profile}/{session}".into(),
        ..Default::default()
    }
}

async fn create_profile(client: &mut Profiles, id: &str, profile: pb::Profile) -> pb::Profile {
    client
        .create_profile(pb::CreateProfileRequest {
            profile: Some(profile),
            profile_id: id.into(),
        })
        .await
        .expect("create profile")
        .into_inner()
}

async fn create_session(server: &TestServer, session: pb::Session) -> pb::Session {
    server
        .sessions()
        .await
        .create_session(pb::CreateSessionRequest {
            session: Some(session),
        })
        .await
        .expect("create session")
        .into_inner()
}

/// The final answer of one turn sent and waited for.
async fn answer(server: &TestServer, session: &str, text: &str) -> String {
    let response = tokio::time::timeout(
        TIMEOUT,
        server
            .chat()
            .await
            .send_message_and_wait(pb::SendMessageAndWaitRequest {
                session: session.into(),
                parts: vec![common::text(text)],
                ..Default::default()
            }),
    )
    .await
    .expect("in time")
    .expect("send and wait")
    .into_inner();
    common::message_text(response.replies.last().expect("a reply"))
}

#[tokio::test]
async fn profiles_are_managed_with_exactly_one_default() {
    let server = TestServer::start().await;
    let mut client = profiles(&server).await;
    let first = create_profile(&mut client, "reviewer", reviewer()).await;
    assert_eq!(first.name, "profiles/reviewer");
    assert!(first.is_default, "the first profile becomes the default");
    assert_eq!(first.permission_mode, pb::PermissionMode::ReadOnly as i32);
    assert_eq!(
        first.mcp_servers,
        Some(pb::McpServerSelection { names: vec![] })
    );
    let second = create_profile(
        &mut client,
        "",
        pb::Profile {
            display_name: "generated id".into(),
            model: "models/mock".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(!second.is_default);
    assert!(
        second.name.len() > "profiles/".len() + 30,
        "{}",
        second.name
    );
    assert_eq!(
        second.permission_mode,
        pb::PermissionMode::Unspecified as i32
    );
    assert_eq!(second.mcp_servers, None, "unset stays unset");

    // Paged, the default first.
    let page = client
        .list_profiles(pb::ListProfilesRequest {
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page.profiles[0].name, "profiles/reviewer");
    let rest = client
        .list_profiles(pb::ListProfilesRequest {
            page_size: 1,
            page_token: page.next_page_token,
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(rest.profiles[0].name, second.name);
    assert!(rest.next_page_token.is_empty());

    // Making the second the default clears the first; a stale etag changes nothing.
    let update = |profile: pb::Profile, paths: &[&str]| pb::UpdateProfileRequest {
        profile: Some(profile),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    };
    let promoted = client
        .update_profile(update(
            pb::Profile {
                name: second.name.clone(),
                is_default: true,
                system_prompt: "not in the mask".into(),
                ..Default::default()
            },
            &["is_default"],
        ))
        .await
        .expect("make default")
        .into_inner();
    assert!(promoted.is_default);
    assert_eq!(promoted.system_prompt, "", "only masked fields change");
    let old = client
        .get_profile(pb::GetProfileRequest {
            name: "profiles/reviewer".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert!(!old.is_default);
    let stale = client
        .update_profile(update(
            pb::Profile {
                name: old.name.clone(),
                display_name: "x".into(),
                etag: first.etag.clone(),
                ..Default::default()
            },
            &["display_name"],
        ))
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    let unknown = client
        .update_profile(update(old.clone(), &["profile"]))
        .await
        .expect_err("not a field");
    assert_eq!(violated_fields(&unknown), ["update_mask"]);

    // Bad values name their fields, every one at once.
    let bad = client
        .create_profile(pb::CreateProfileRequest {
            profile: Some(pb::Profile {
                working_dir_template: "work/{user}".into(),
                model: "models/nope".into(),
                system_prompt: "nul\0".into(),
                ..Default::default()
            }),
            profile_id: "bad".into(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&bad),
        ["profile.system_prompt", "profile.working_dir_template"]
    );
    let missing_model = client
        .create_profile(pb::CreateProfileRequest {
            profile: Some(pb::Profile {
                model: "models/nope".into(),
                ..Default::default()
            }),
            profile_id: "bad".into(),
        })
        .await
        .expect_err("no such model");
    assert_eq!(violated_fields(&missing_model), ["profile.model"]);
    let bad_id = client
        .create_profile(pb::CreateProfileRequest {
            profile: Some(pb::Profile::default()),
            profile_id: "Bad Id".into(),
        })
        .await
        .expect_err("bad id");
    assert_eq!(violated_fields(&bad_id), ["profile_id"]);

    // Deleting the default promotes the other one.
    client
        .delete_profile(pb::DeleteProfileRequest {
            name: second.name.clone(),
            etag: String::new(),
        })
        .await
        .expect("delete");
    let left = client
        .get_profile(pb::GetProfileRequest {
            name: "profiles/reviewer".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert!(left.is_default);
    let gone = client
        .get_profile(pb::GetProfileRequest {
            name: second.name.clone(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(reason(&gone), "PROFILE_NOT_FOUND");
}

#[tokio::test]
async fn sessions_take_their_profile_where_they_set_nothing_and_keep_it() {
    let server = TestServer::start().await;
    let mut client = profiles(&server).await;
    create_profile(&mut client, "reviewer", reviewer()).await;

    // Nothing set: everything from the profile, the persona included.
    let from_profile = create_session(
        &server,
        pb::Session {
            profile: "profiles/reviewer".into(),
            ..Default::default()
        },
    )
    .await;
    let id = from_profile.name.trim_start_matches("sessions/");
    assert_eq!(from_profile.profile, "profiles/reviewer");
    assert_eq!(from_profile.system_prompt, "You are the reviewer persona.");
    assert_eq!(
        from_profile.permission_mode,
        pb::PermissionMode::ReadOnly as i32
    );
    assert_eq!(
        from_profile.reasoning_effort,
        pb::ReasoningEffort::High as i32
    );
    assert_eq!(
        from_profile.mcp_servers,
        Some(pb::McpServerSelection { names: vec![] })
    );
    let expected_dir = server
        .workspace()
        .canonicalize()
        .expect("root")
        .join("reviews/reviewer")
        .join(id);
    assert_eq!(from_profile.working_dir, expected_dir.display().to_string());
    assert!(expected_dir.is_dir(), "the templated dir is created");
    let context = answer(&server, &from_profile.name, "/context").await;
    assert!(
        context.contains("system: You are the reviewer persona."),
        "{context}"
    );
    // READ_ONLY from the profile: the model is offered read tools only.
    let tools = answer(&server, &from_profile.name, "/tools").await;
    assert!(
        tools.contains("read_file") && !tools.contains("shell"),
        "{tools}"
    );

    // Explicit fields win over the profile.
    let explicit = create_session(
        &server,
        pb::Session {
            profile: "profiles/reviewer".into(),
            system_prompt: "Mine.".into(),
            permission_mode: pb::PermissionMode::AutoApprove as i32,
            working_dir: "mine".into(),
            mcp_servers: None,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(explicit.system_prompt, "Mine.");
    assert_eq!(
        explicit.permission_mode,
        pb::PermissionMode::AutoApprove as i32
    );
    assert!(
        explicit.working_dir.ends_with("/mine"),
        "{}",
        explicit.working_dir
    );
    assert_eq!(explicit.profile, "profiles/reviewer");

    // Without a profile, the default one applies (the first profile is the default).
    let by_default = create_session(&server, common::session("plain")).await;
    assert_eq!(by_default.profile, "profiles/reviewer");
    assert_eq!(by_default.system_prompt, "You are the reviewer persona.");

    // A change reaches new sessions only.
    client
        .update_profile(pb::UpdateProfileRequest {
            profile: Some(pb::Profile {
                name: "profiles/reviewer".into(),
                system_prompt: "You are the new persona.".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .expect("update");
    let old = server
        .sessions()
        .await
        .get_session(pb::GetSessionRequest {
            name: from_profile.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(old.system_prompt, "You are the reviewer persona.");
    let context = answer(&server, &from_profile.name, "/context").await;
    assert!(context.contains("reviewer persona"), "{context}");
    let newer = create_session(
        &server,
        pb::Session {
            profile: "profiles/reviewer".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(newer.system_prompt, "You are the new persona.");

    // An unknown profile is NOT_FOUND, as an unknown model is; a malformed name is a
    // field violation; the profile is not updatable.
    let mut sessions = server.sessions().await;
    let unknown = sessions
        .create_session(pb::CreateSessionRequest {
            session: Some(pb::Session {
                profile: "profiles/nope".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("unknown profile");
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(reason(&unknown), "PROFILE_NOT_FOUND");
    let malformed = sessions
        .create_session(pb::CreateSessionRequest {
            session: Some(pb::Session {
                profile: "reviewer".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("malformed");
    assert_eq!(violated_fields(&malformed), ["session.profile"]);
    let immutable = sessions
        .update_session(pb::UpdateSessionRequest {
            session: Some(pb::Session {
                name: newer.name.clone(),
                profile: "profiles/other".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["profile".into()],
            }),
        })
        .await
        .expect_err("immutable");
    assert_eq!(violated_fields(&immutable), ["update_mask"]);

    // Sessions made from a deleted profile keep their settings.
    client
        .delete_profile(pb::DeleteProfileRequest {
            name: "profiles/reviewer".into(),
            etag: String::new(),
        })
        .await
        .expect("delete");
    let kept = sessions
        .get_session(pb::GetSessionRequest {
            name: newer.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(kept.system_prompt, "You are the new persona.");
    assert_eq!(kept.profile, "profiles/reviewer");
}

#[tokio::test]
async fn schedule_runs_start_from_the_schedules_profile() {
    let server = TestServer::start().await;
    let mut client = profiles(&server).await;
    create_profile(&mut client, "reviewer", reviewer()).await;
    let mut schedules = server.schedules().await;
    let bad = schedules
        .create_schedule(pb::CreateScheduleRequest {
            schedule: Some(pb::Schedule {
                cron: "0 9 * * *".into(),
                prompt: "review".into(),
                profile: "profiles/nope".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("unknown profile");
    assert_eq!(violated_fields(&bad), ["schedule.profile"]);
    let schedule = schedules
        .create_schedule(pb::CreateScheduleRequest {
            schedule: Some(pb::Schedule {
                cron: "0 9 * * *".into(),
                prompt: "/context".into(),
                profile: "profiles/reviewer".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(schedule.profile, "profiles/reviewer");
    assert_eq!(
        schedule.permission_mode,
        pb::PermissionMode::Unspecified as i32,
        "unset: the profile's, else AUTO_APPROVE"
    );
    schedules
        .run_schedule(pb::RunScheduleRequest {
            name: schedule.name.clone(),
        })
        .await
        .expect("run");
    let run = common::eventually("the run ends", async || {
        let runs = schedules
            .list_schedule_runs(pb::ListScheduleRunsRequest {
                parent: schedule.name.clone(),
                ..Default::default()
            })
            .await
            .expect("runs")
            .into_inner()
            .runs;
        runs.into_iter()
            .find(|r| r.status == pb::RunStatus::Succeeded as i32)
    })
    .await;
    let session = server
        .sessions()
        .await
        .get_session(pb::GetSessionRequest {
            name: run.session.clone(),
        })
        .await
        .expect("session")
        .into_inner();
    assert_eq!(session.profile, "profiles/reviewer");
    assert_eq!(session.source, pb::SessionSource::Schedule as i32);
    assert_eq!(
        session.permission_mode,
        pb::PermissionMode::ReadOnly as i32,
        "the profile's mode, not the schedules' AUTO_APPROVE fallback"
    );
    let history = common::history(&mut server.chat().await, &run.session).await;
    assert!(
        history
            .iter()
            .any(|m| common::message_text(m).contains("system: You are the reviewer persona.")),
        "the persona reached the model"
    );
}

#[tokio::test]
async fn profiles_over_json_and_seeded_from_the_config() {
    let server = TestServer::start_with(|config| {
        config.profiles.insert(
            "ops".into(),
            octo::config::ProfileConfig {
                system_prompt: "You are on call.".into(),
                permission_mode: Some(octo::domain::PermissionMode::Ask),
                ..Default::default()
            },
        );
        config.profiles.insert(
            "triage".into(),
            octo::config::ProfileConfig {
                display_name: "Triage".into(),
                working_dir: "triage/{date}".into(),
                ..Default::default()
            },
        );
        config.default_profile = Some("triage".into());
    })
    .await;
    let http = reqwest::Client::new();
    let base = server.url();
    let listed: serde_json::Value = http
        .get(format!("{base}/v1/profiles"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = listed["profiles"]
        .as_array()
        .expect("profiles")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["profiles/triage", "profiles/ops"],
        "the configured default first"
    );
    assert_eq!(listed["profiles"][0]["isDefault"], true);

    let created = http
        .post(format!("{base}/v1/profiles?profileId=writer"))
        .json(&json!({"systemPrompt": "You write docs.", "permissionMode": "PERMISSION_MODE_AUTO_APPROVE"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 200);
    let created: serde_json::Value = created.json().await.expect("json");
    assert_eq!(created["name"], "profiles/writer");
    let patched: serde_json::Value = http
        .patch(format!(
            "{base}/v1/profiles/writer?updateMask=workingDirTemplate"
        ))
        .json(&json!({"workingDirTemplate": "docs/{session}"}))
        .send()
        .await
        .expect("patch")
        .json()
        .await
        .expect("json");
    assert_eq!(patched["workingDirTemplate"], "docs/{session}");
    assert_eq!(patched["systemPrompt"], "You write docs.");

    let session: serde_json::Value = http
        .post(format!("{base}/v1/sessions"))
        .json(&json!({"profile": "profiles/writer"}))
        .send()
        .await
        .expect("create session")
        .json()
        .await
        .expect("json");
    assert_eq!(session["profile"], "profiles/writer");
    assert_eq!(session["permissionMode"], "PERMISSION_MODE_AUTO_APPROVE");
    let id = session["name"]
        .as_str()
        .expect("name")
        .trim_start_matches("sessions/");
    assert!(
        session["workingDir"]
            .as_str()
            .expect("dir")
            .ends_with(&format!("/docs/{id}")),
        "{session}"
    );
    // The configured default, with its dated template.
    let plain: serde_json::Value = http
        .post(format!("{base}/v1/sessions"))
        .json(&json!({}))
        .send()
        .await
        .expect("create session")
        .json()
        .await
        .expect("json");
    assert_eq!(plain["profile"], "profiles/triage");
    let today: String = octo::domain::Timestamp::now()
        .to_rfc3339()
        .chars()
        .take(10)
        .collect();
    assert!(
        plain["workingDir"]
            .as_str()
            .expect("dir")
            .ends_with(&format!("/triage/{today}")),
        "{plain}"
    );
    let unknown = http
        .post(format!("{base}/v1/sessions"))
        .json(&json!({"profile": "profiles/nope"}))
        .send()
        .await
        .expect("create session");
    assert_eq!(unknown.status(), 404);
    let deleted = http
        .delete(format!("{base}/v1/profiles/writer"))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 200);
}

use common::cli::octo;

#[tokio::test]
async fn the_cli_adds_lists_edits_uses_and_removes_profiles() {
    let server = TestServer::start().await;
    let added = octo(
        &server,
        &[
            "profiles",
            "add",
            "reviewer",
            "--name",
            "Code reviewer",
            "--system-prompt",
            "You review.",
            "--permission-mode",
            "read-only",
            "--working-dir",
            "reviews/{session}",
        ],
    )
    .await
    .ok();
    assert!(
        added.stdout.contains("Added profiles/reviewer."),
        "{}",
        added.stdout
    );
    assert!(added.stdout.contains("read-only"), "{}", added.stdout);
    octo(&server, &["profiles", "add", "writer", "--model", "mock"])
        .await
        .ok();
    let list = octo(&server, &["profiles", "list"]).await.ok();
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert!(lines[0].starts_with("ID"), "{}", list.stdout);
    assert!(
        lines[1].starts_with("reviewer") && lines[1].contains('*'),
        "{}",
        list.stdout
    );
    assert!(
        lines[2].starts_with("writer") && lines[2].contains("mock"),
        "{}",
        list.stdout
    );

    let edited = octo(
        &server,
        &[
            "profiles",
            "edit",
            "writer",
            "--system-prompt",
            "You write.",
        ],
    )
    .await
    .ok();
    assert!(
        edited.stdout.contains("new sessions use it"),
        "{}",
        edited.stdout
    );
    octo(&server, &["profiles", "default", "writer"]).await.ok();
    let shown = octo(&server, &["--json", "profiles", "show", "writer"])
        .await
        .ok();
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).expect("json");
    assert_eq!(shown["isDefault"], true);
    assert_eq!(shown["systemPrompt"], "You write.");

    let session = octo(
        &server,
        &["--json", "sessions", "create", "--profile", "reviewer"],
    )
    .await
    .ok();
    let session: serde_json::Value = serde_json::from_str(&session.stdout).expect("json");
    assert_eq!(session["profile"], "profiles/reviewer");
    assert_eq!(session["systemPrompt"], "You review.");
    let answer = octo(&server, &["run", "--profile", "reviewer", "/context"])
        .await
        .ok();
    assert!(
        answer.stdout.contains("system: You review."),
        "{}",
        answer.stdout
    );

    let unknown = octo(&server, &["sessions", "create", "--profile", "nope"]).await;
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown.stderr.contains("profiles/nope"),
        "{}",
        unknown.stderr
    );
    octo(&server, &["profiles", "rm", "reviewer"]).await.ok();
    let shown = octo(&server, &["profiles", "show", "reviewer"]).await;
    assert_eq!(shown.code, Some(1));
}
