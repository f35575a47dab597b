//! `[profiles.<id>]` tables: agent profiles seeded into the database at start when no
//! profile with that id exists (the API owns them from then on, as for models and MCP
//! servers), and `default_profile`.

use serde::{Deserialize, Serialize};

use crate::domain::{PermissionMode, ReasoningEffort, profile::Profile};

/// One `[profiles.<id>]` table. Every key is optional.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    /// The persona: the system prompt of its sessions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system_prompt: String,
    /// A model id (`models.<id>`, or one added over the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `off`, `low`, `medium` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// `ask`, `auto_approve` or `read_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<PermissionMode>,
    /// MCP server ids; unset: every enabled server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_servers: Option<Vec<String>>,
    /// The working-dir template (`{session}`, `{date}`, `{profile}`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
}

impl ProfileConfig {
    /// The profile this table describes, checked; errors name the table.
    pub fn to_profile(&self, id: &str) -> Result<Profile, String> {
        if !crate::domain::is_valid_model_id(id) {
            return Err(format!(
                "profiles.{id}: an id is 1-63 characters of a-z, 0-9 and -, starting with a \
                 letter"
            ));
        }
        let mut profile = Profile::new(id);
        profile.display_name = self.display_name.clone();
        profile.system_prompt = self.system_prompt.clone();
        profile.model = self.model.clone();
        profile.reasoning_effort = self.reasoning_effort.unwrap_or_default();
        profile.permission_mode = self.permission_mode;
        profile.mcp_servers = self.mcp_servers.clone();
        profile.working_dir_template = self.working_dir.clone();
        profile
            .validate()
            .map_err(|err| format!("profiles.{id}: {err}"))?;
        Ok(profile)
    }
}

/// Checks every `[profiles.<id>]` table and that `default_profile` names one of them.
pub(super) fn check(
    profiles: &std::collections::BTreeMap<String, ProfileConfig>,
    default_profile: Option<&str>,
) -> Result<(), String> {
    for (id, profile) in profiles {
        profile.to_profile(id)?;
    }
    match default_profile {
        Some(default) if !profiles.contains_key(default) => Err(format!(
            "default_profile {default:?} is not one of the configured profiles"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_become_checked_profiles() {
        let table: ProfileConfig = toml::from_str(
            r#"
            display_name = "Reviewer"
            system_prompt = "You review code."
            model = "gpt"
            reasoning_effort = "high"
            permission_mode = "read_only"
            mcp_servers = ["git"]
            working_dir = "reviews/{date}/{session}"
            "#,
        )
        .expect("parses");
        let profile = table.to_profile("reviewer").expect("valid");
        assert_eq!(profile.reasoning_effort, ReasoningEffort::High);
        assert_eq!(profile.permission_mode, Some(PermissionMode::ReadOnly));
        assert_eq!(profile.working_dir_template, "reviews/{date}/{session}");
        let bad = ProfileConfig {
            working_dir: "{home}".into(),
            ..ProfileConfig::default()
        };
        let err = bad.to_profile("x").expect_err("unknown placeholder");
        assert!(
            err.starts_with("profiles.x: ") && err.contains("working_dir_template"),
            "{err}"
        );
        assert!(ProfileConfig::default().to_profile("Not_An_Id").is_err());
        assert!(toml::from_str::<ProfileConfig>("permission_mode = \"yolo\"").is_err());
        let profiles = [("a".to_owned(), ProfileConfig::default())].into();
        assert!(check(&profiles, Some("a")).is_ok());
        assert!(
            check(&profiles, Some("b"))
                .unwrap_err()
                .contains("default_profile")
        );
    }
}
