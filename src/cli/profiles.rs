//! `octo profiles ...`: agent profiles through the generated ProfileService client:
//! `add ID [FLAGS]`, `list`, `show ID`, `edit ID [FLAGS]` (only the flags given change),
//! `default ID` and `rm ID`. A session takes its profile's values when it is created
//! (`octo sessions create --profile ID`, `octo chat --new --profile ID`); editing a
//! profile changes new sessions only.

use std::io::Write;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use super::{
    GlobalArgs,
    client::Client,
    names::{model_name, resource_id, resource_name},
    output::{self, Column, Table, enum_label, long_time, now_unix, write_fields},
    sessions::{PermissionModeArg, ReasoningEffortArg},
};
use crate::pb;

const COLLECTION: &str = "profiles";

#[derive(Args, Debug, PartialEq)]
pub struct ProfilesArgs {
    #[command(subcommand)]
    pub command: ProfilesCommand,
}

#[derive(Subcommand, Debug, PartialEq)]
pub enum ProfilesCommand {
    /// Add a profile
    Add {
        /// The profile's id (a-z, 0-9, -), the last part of `profiles/{id}`
        id: String,
        #[command(flatten)]
        settings: ProfileFlags,
    },
    /// List profiles, the default first
    #[command(visible_alias = "ls")]
    List,
    /// Show one profile
    Show {
        /// Profile id or `profiles/{id}`
        id: String,
    },
    /// Change a profile (only the flags given; new sessions see it, existing ones not)
    #[command(visible_alias = "update")]
    Edit {
        /// Profile id or `profiles/{id}`
        id: String,
        #[command(flatten)]
        settings: ProfileFlags,
    },
    /// Make a profile the default (of sessions that name none)
    Default {
        /// Profile id or `profiles/{id}`
        id: String,
    },
    /// Delete a profile (sessions made from it keep their settings)
    #[command(visible_alias = "delete")]
    Rm {
        /// Profile id or `profiles/{id}`
        id: String,
    },
}

/// A profile's settings as flags; for `edit`, only the ones given change.
#[derive(Args, Debug, Default, PartialEq)]
pub struct ProfileFlags {
    /// Human-readable name
    #[arg(long = "name", value_name = "TEXT")]
    pub display_name: Option<String>,
    /// The persona: the system prompt of its sessions ("" for the server's)
    #[arg(long, value_name = "TEXT", conflicts_with = "system_prompt_file")]
    pub system_prompt: Option<String>,
    /// Read the system prompt from a file
    #[arg(long, value_name = "FILE")]
    pub system_prompt_file: Option<std::path::PathBuf>,
    /// Model id or `models/{id}` ("" for the server default)
    #[arg(long, short, value_name = "MODEL")]
    pub model: Option<String>,
    /// How hard the model should think
    #[arg(long, value_enum)]
    pub reasoning_effort: Option<ReasoningEffortArg>,
    /// Which tool calls need confirmation [default: the session's kind decides]
    #[arg(long, value_enum)]
    pub permission_mode: Option<PermissionModeArg>,
    /// An MCP server whose tools its sessions are offered (repeatable) [default: every
    /// enabled server]
    #[arg(long = "mcp-server", value_name = "ID", conflicts_with_all = ["no_mcp_servers", "all_mcp_servers"])]
    pub mcp_servers: Vec<String>,
    /// Offer no MCP server's tools
    #[arg(long, conflicts_with = "all_mcp_servers")]
    pub no_mcp_servers: bool,
    /// Offer every enabled MCP server's tools (the default)
    #[arg(long)]
    pub all_mcp_servers: bool,
    /// Working dir of its sessions: {session}, {date} and {profile} are filled in,
    /// e.g. "reviews/{date}/{session}" ("" for the workspace root)
    #[arg(long, value_name = "TEMPLATE")]
    pub working_dir: Option<String>,
    /// Make it the default profile
    #[arg(long = "default")]
    pub is_default: bool,
}

/// The profile the flags describe and the update-mask paths they set.
fn profile_from_flags(flags: &ProfileFlags) -> anyhow::Result<(pb::Profile, Vec<&'static str>)> {
    let mut profile = pb::Profile::default();
    let mut paths = Vec::new();
    if let Some(name) = &flags.display_name {
        profile.display_name = name.clone();
        paths.push("display_name");
    }
    if let Some(prompt) = &flags.system_prompt {
        profile.system_prompt = prompt.clone();
        paths.push("system_prompt");
    }
    if let Some(file) = &flags.system_prompt_file {
        profile.system_prompt = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        paths.push("system_prompt");
    }
    if let Some(model) = &flags.model {
        profile.model = if model.trim().is_empty() {
            String::new()
        } else {
            model_name(model)?
        };
        paths.push("model");
    }
    if let Some(effort) = flags.reasoning_effort {
        profile.reasoning_effort = pb::ReasoningEffort::from(effort) as i32;
        paths.push("reasoning_effort");
    }
    if let Some(mode) = flags.permission_mode {
        profile.permission_mode = pb::PermissionMode::from(mode) as i32;
        paths.push("permission_mode");
    }
    if !flags.mcp_servers.is_empty() || flags.no_mcp_servers {
        let names = flags
            .mcp_servers
            .iter()
            .map(|id| resource_name("mcpServers", id))
            .collect::<anyhow::Result<Vec<_>>>()?;
        profile.mcp_servers = Some(pb::McpServerSelection { names });
        paths.push("mcp_servers");
    } else if flags.all_mcp_servers {
        paths.push("mcp_servers");
    }
    if let Some(dir) = &flags.working_dir {
        profile.working_dir_template = dir.clone();
        paths.push("working_dir_template");
    }
    if flags.is_default {
        profile.is_default = true;
        paths.push("is_default");
    }
    Ok((profile, paths))
}

/// Runs one `octo profiles` subcommand against the server `global` names.
pub async fn run(
    args: ProfilesArgs,
    global: &GlobalArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    // Validate before connecting, so mistakes fail fast even without a server.
    let settings = match &args.command {
        ProfilesCommand::Add { id, settings } => {
            if id.contains('/') {
                bail!("give the profile's id (e.g. reviewer), not a name");
            }
            Some(profile_from_flags(settings)?)
        }
        ProfilesCommand::Edit { id, settings } => {
            resource_name(COLLECTION, id)?;
            let flags = profile_from_flags(settings)?;
            if flags.1.is_empty() {
                bail!("nothing to change: give at least one setting (see --help)");
            }
            Some(flags)
        }
        ProfilesCommand::Show { id }
        | ProfilesCommand::Default { id }
        | ProfilesCommand::Rm { id } => {
            resource_name(COLLECTION, id)?;
            None
        }
        ProfilesCommand::List => None,
    };
    let client = global.connect().await?;
    execute(&client, args.command, settings, global.json, out).await
}

async fn execute(
    client: &Client,
    command: ProfilesCommand,
    settings: Option<(pb::Profile, Vec<&'static str>)>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let mut profiles = client.profiles();
    match command {
        ProfilesCommand::Add { id, .. } => {
            let (profile, _) = settings.context("the profile")?;
            let created = profiles
                .create_profile(pb::CreateProfileRequest {
                    profile: Some(profile),
                    profile_id: id,
                })
                .await?
                .into_inner();
            if json {
                return output::write_json(out, &created);
            }
            writeln!(out, "Added {}.", created.name)?;
            write_profile(out, &created)?;
        }
        ProfilesCommand::List => {
            let mut all = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = profiles
                    .list_profiles(pb::ListProfilesRequest {
                        page_size: 500,
                        page_token,
                    })
                    .await?
                    .into_inner();
                all.extend(page.profiles);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            if json {
                return output::write_json(
                    out,
                    &pb::ListProfilesResponse {
                        profiles: all,
                        next_page_token: String::new(),
                    },
                );
            }
            if all.is_empty() {
                writeln!(out, "No profiles.")?;
                return Ok(());
            }
            profile_table(&all).render(out)?;
        }
        ProfilesCommand::Show { id } => {
            let profile = profiles
                .get_profile(pb::GetProfileRequest {
                    name: resource_name(COLLECTION, &id)?,
                })
                .await?
                .into_inner();
            if json {
                return output::write_json(out, &profile);
            }
            write_profile(out, &profile)?;
        }
        ProfilesCommand::Edit { id, .. } => {
            let (mut profile, paths) = settings.context("the profile")?;
            profile.name = resource_name(COLLECTION, &id)?;
            let updated = profiles
                .update_profile(pb::UpdateProfileRequest {
                    profile: Some(profile),
                    update_mask: Some(prost_types::FieldMask {
                        paths: paths.into_iter().map(str::to_owned).collect(),
                    }),
                })
                .await?
                .into_inner();
            if json {
                return output::write_json(out, &updated);
            }
            writeln!(
                out,
                "Updated {} (new sessions use it; existing ones keep theirs).",
                updated.name
            )?;
            write_profile(out, &updated)?;
        }
        ProfilesCommand::Default { id } => {
            let updated = profiles
                .update_profile(pb::UpdateProfileRequest {
                    profile: Some(pb::Profile {
                        name: resource_name(COLLECTION, &id)?,
                        is_default: true,
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["is_default".into()],
                    }),
                })
                .await?
                .into_inner();
            if json {
                return output::write_json(out, &updated);
            }
            writeln!(out, "{} is the default profile.", updated.name)?;
        }
        ProfilesCommand::Rm { id } => {
            let name = resource_name(COLLECTION, &id)?;
            profiles
                .delete_profile(pb::DeleteProfileRequest {
                    name: name.clone(),
                    etag: String::new(),
                })
                .await?;
            if !json {
                writeln!(out, "Deleted {name}.")?;
            }
        }
    }
    Ok(())
}

fn mode_label(profile: &pb::Profile) -> String {
    match pb::PermissionMode::try_from(profile.permission_mode) {
        Ok(pb::PermissionMode::Unspecified) | Err(_) => "-".to_owned(),
        Ok(mode) => enum_label(mode.as_str_name(), "PERMISSION_MODE_"),
    }
}

fn mcp_label(profile: &pb::Profile) -> String {
    match &profile.mcp_servers {
        None => "(every enabled server)".to_owned(),
        Some(selection) if selection.names.is_empty() => "(none)".to_owned(),
        Some(selection) => selection
            .names
            .iter()
            .map(|name| resource_id("mcpServers", name))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn profile_table(profiles: &[pb::Profile]) -> Table {
    let mut table = Table::new([
        Column::left("ID"),
        Column::left("DEFAULT"),
        Column::left("NAME").max_width(30),
        Column::left("MODEL"),
        Column::left("PERMISSIONS"),
        Column::left("WORKING DIR").max_width(40),
    ]);
    for profile in profiles {
        table.push_row([
            resource_id(COLLECTION, &profile.name).to_owned(),
            if profile.is_default { "*" } else { "" }.to_owned(),
            profile.display_name.clone(),
            if profile.model.is_empty() {
                "-".to_owned()
            } else {
                resource_id("models", &profile.model).to_owned()
            },
            mode_label(profile),
            profile.working_dir_template.clone(),
        ]);
    }
    table
}

fn write_profile(out: &mut dyn Write, profile: &pb::Profile) -> std::io::Result<()> {
    let now = now_unix();
    write_fields(
        out,
        &[
            ("Name", profile.name.clone()),
            ("Display name", profile.display_name.clone()),
            (
                "Default",
                if profile.is_default { "yes" } else { "no" }.to_owned(),
            ),
            (
                "Model",
                if profile.model.is_empty() {
                    "(server default)".to_owned()
                } else {
                    profile.model.clone()
                },
            ),
            (
                "Reasoning",
                match pb::ReasoningEffort::try_from(profile.reasoning_effort) {
                    Ok(pb::ReasoningEffort::Unspecified) | Err(_) => String::new(),
                    Ok(effort) => enum_label(effort.as_str_name(), "REASONING_EFFORT_"),
                },
            ),
            ("Permission mode", mode_label(profile)),
            ("MCP servers", mcp_label(profile)),
            ("Working dir", profile.working_dir_template.clone()),
            ("System prompt", profile.system_prompt.clone()),
            ("Created", long_time(profile.create_time.as_ref(), now)),
            ("Updated", long_time(profile.update_time.as_ref(), now)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> ProfilesCommand {
        let cli = Cli::try_parse_from(std::iter::once("octo").chain(args.iter().copied()))
            .expect("parses");
        match cli.command {
            Command::Profiles(args) => args.command,
            other => panic!("not profiles: {other:?}"),
        }
    }

    #[test]
    fn flags_become_a_profile_and_its_mask() {
        let ProfilesCommand::Add { id, settings } = parse(&[
            "profiles",
            "add",
            "reviewer",
            "--name",
            "Reviewer",
            "--system-prompt",
            "You review.",
            "--model",
            "gpt",
            "--permission-mode",
            "read-only",
            "--mcp-server",
            "git",
            "--working-dir",
            "reviews/{date}/{session}",
            "--default",
        ]) else {
            panic!("add");
        };
        assert_eq!(id, "reviewer");
        let (profile, paths) = profile_from_flags(&settings).expect("profile");
        assert_eq!(profile.model, "models/gpt");
        assert_eq!(profile.permission_mode, pb::PermissionMode::ReadOnly as i32);
        assert_eq!(
            profile.mcp_servers.expect("selection").names,
            ["mcpServers/git"]
        );
        assert!(profile.is_default);
        assert_eq!(
            paths,
            [
                "display_name",
                "system_prompt",
                "model",
                "permission_mode",
                "mcp_servers",
                "working_dir_template",
                "is_default"
            ]
        );
        let ProfilesCommand::Edit { settings, .. } =
            parse(&["profiles", "edit", "reviewer", "--no-mcp-servers"])
        else {
            panic!("edit");
        };
        let (profile, paths) = profile_from_flags(&settings).expect("profile");
        assert_eq!(profile.mcp_servers.expect("none").names.len(), 0);
        assert_eq!(paths, ["mcp_servers"]);
        assert_eq!(parse(&["profiles", "ls"]), ProfilesCommand::List);
        assert!(
            Cli::try_parse_from([
                "octo",
                "profiles",
                "edit",
                "x",
                "--no-mcp-servers",
                "--mcp-server",
                "a"
            ])
            .is_err()
        );
    }
}
