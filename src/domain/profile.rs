//! Profiles: the reusable part of a session's setup (persona, model, reasoning effort,
//! permission mode, MCP servers, a working-dir template), and how a new session takes
//! them. Exactly one profile is the default while any exists (the store keeps that in
//! its transactions, as for models).
//!
//! A session copies its profile's values when it is created, into the fields its
//! creator left unset (explicit fields win); afterwards the two are independent, so a
//! change to a profile reaches new sessions only.
//!
//! Working-dir templates are plain text with three placeholders, `{session}`,
//! `{date}` (UTC, `YYYY-MM-DD`) and `{profile}`; any other `{` is refused when the
//! profile is saved. Each placeholder's value is made of `[0-9a-z-]` only, so rendering
//! can never add a `..` or a `/`: the rendered path is confined to the workspace root
//! like any working dir a client sends (`runtime::workspace`).

use serde::{Deserialize, Serialize};

use super::{
    PermissionMode, ReasoningEffort, Result, Timestamp,
    error::Violations,
    session::{MAX_DISPLAY_NAME_CHARS, SessionSettings},
};

/// The placeholders a working-dir template may use.
pub const TEMPLATE_PLACEHOLDERS: [&str; 3] = ["{session}", "{date}", "{profile}"];

/// A stored profile (`profiles/{id}` in the API).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// A UUID or a slug (profiles from the configuration are named by their key).
    pub id: String,
    pub display_name: String,
    /// The persona; empty leaves the server's system prompt.
    pub system_prompt: String,
    /// A model id; `None` for the server default.
    pub model: Option<String>,
    pub reasoning_effort: ReasoningEffort,
    /// `None` leaves the session's default (ASK; AUTO_APPROVE for schedule runs;
    /// READ_ONLY for trigger sessions).
    pub permission_mode: Option<PermissionMode>,
    /// MCP server ids; `None`: every enabled server.
    pub mcp_servers: Option<Vec<String>>,
    /// See the module docs; empty: the workspace root.
    pub working_dir_template: String,
    pub is_default: bool,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    /// Bumped on every change; the etag.
    pub revision: i64,
}

impl Profile {
    /// A profile with nothing set.
    pub fn new(id: impl Into<String>) -> Self {
        let now = Timestamp::now();
        Profile {
            id: id.into(),
            display_name: String::new(),
            system_prompt: String::new(),
            model: None,
            reasoning_effort: ReasoningEffort::Default,
            permission_mode: None,
            mcp_servers: None,
            working_dir_template: String::new(),
            is_default: false,
            create_time: now,
            update_time: now,
            revision: 1,
        }
    }

    /// Checks the fields a client sets. Field paths are relative to the profile.
    pub fn validate(&self) -> Result<()> {
        let mut v = Violations::new();
        if self.display_name.chars().count() > MAX_DISPLAY_NAME_CHARS {
            v.add(
                "display_name",
                format!("must be at most {MAX_DISPLAY_NAME_CHARS} characters"),
            );
        }
        if self.display_name.chars().any(char::is_control) {
            v.add("display_name", "must not contain control characters");
        }
        // The fields a session takes follow the session's own rules.
        let as_session = SessionSettings {
            system_prompt: self.system_prompt.clone(),
            model: self.model.clone(),
            mcp_servers: self.mcp_servers.clone(),
            working_dir: self.working_dir_template.clone(),
            ..SessionSettings::default()
        };
        v.check(as_session.validate().map_err(|err| {
            match err {
                super::Error::InvalidArgument(violations) => super::Error::InvalidArgument(
                    violations
                        .into_iter()
                        .map(|mut violation| {
                            if violation.field == "working_dir" {
                                violation.field = "working_dir_template".into();
                            }
                            violation
                        })
                        .collect(),
                ),
                other => other,
            }
        }));
        if let Err(why) = check_template(&self.working_dir_template) {
            v.add("working_dir_template", why);
        }
        v.into_result()
    }

    /// Fills what `settings` leaves unset (empty, `None`, the default effort) with this
    /// profile's values. The working dir is [`Profile::working_dir`]'s to render.
    pub fn fill(&self, settings: &mut SessionSettings) {
        if settings.system_prompt.is_empty() {
            settings.system_prompt = self.system_prompt.clone();
        }
        if settings.model.is_none() {
            settings.model = self.model.clone();
        }
        if settings.reasoning_effort == ReasoningEffort::Default {
            settings.reasoning_effort = self.reasoning_effort;
        }
        if settings.permission_mode.is_none() {
            settings.permission_mode = self.permission_mode;
        }
        if settings.mcp_servers.is_none() {
            settings.mcp_servers = self.mcp_servers.clone();
        }
    }

    /// The working dir of a new session `session_id` created at `created`: the
    /// template with its placeholders filled in; `None` when the profile has none.
    pub fn working_dir(&self, session_id: &str, created: Timestamp) -> Option<String> {
        if self.working_dir_template.is_empty() {
            return None;
        }
        let date: String = created.to_rfc3339().chars().take(10).collect();
        Some(
            self.working_dir_template
                .replace("{session}", session_id)
                .replace("{date}", &date)
                .replace("{profile}", &self.id),
        )
    }
}

/// Whether `template` has no `..` and every brace of it belongs to a known placeholder.
fn check_template(template: &str) -> std::result::Result<(), String> {
    if std::path::Path::new(template)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err("must not contain '..' components".into());
    }
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        let tail = &rest[at..];
        match TEMPLATE_PLACEHOLDERS.iter().find(|p| tail.starts_with(**p)) {
            Some(placeholder) => rest = &tail[placeholder.len()..],
            None => {
                let shown: String = tail.chars().take(24).collect();
                return Err(format!(
                    "unknown placeholder at {shown:?}: use {}",
                    TEMPLATE_PLACEHOLDERS.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// The fields UpdateProfile can change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileField {
    DisplayName,
    SystemPrompt,
    Model,
    ReasoningEffort,
    PermissionMode,
    McpServers,
    WorkingDirTemplate,
    IsDefault,
}

impl super::UpdatableField for ProfileField {
    const ALL: &'static [Self] = &ProfileField::ALL;

    fn api_name(self) -> &'static str {
        ProfileField::api_name(self)
    }
}

impl ProfileField {
    pub const ALL: [ProfileField; 8] = [
        ProfileField::DisplayName,
        ProfileField::SystemPrompt,
        ProfileField::Model,
        ProfileField::ReasoningEffort,
        ProfileField::PermissionMode,
        ProfileField::McpServers,
        ProfileField::WorkingDirTemplate,
        ProfileField::IsDefault,
    ];

    /// The proto field name.
    pub fn api_name(self) -> &'static str {
        match self {
            ProfileField::DisplayName => "display_name",
            ProfileField::SystemPrompt => "system_prompt",
            ProfileField::Model => "model",
            ProfileField::ReasoningEffort => "reasoning_effort",
            ProfileField::PermissionMode => "permission_mode",
            ProfileField::McpServers => "mcp_servers",
            ProfileField::WorkingDirTemplate => "working_dir_template",
            ProfileField::IsDefault => "is_default",
        }
    }

    /// Copies this field from `from` into `to`.
    pub fn apply(self, from: &Profile, to: &mut Profile) {
        match self {
            ProfileField::DisplayName => to.display_name = from.display_name.clone(),
            ProfileField::SystemPrompt => to.system_prompt = from.system_prompt.clone(),
            ProfileField::Model => to.model = from.model.clone(),
            ProfileField::ReasoningEffort => to.reasoning_effort = from.reasoning_effort,
            ProfileField::PermissionMode => to.permission_mode = from.permission_mode,
            ProfileField::McpServers => to.mcp_servers = from.mcp_servers.clone(),
            ProfileField::WorkingDirTemplate => {
                to.working_dir_template = from.working_dir_template.clone()
            }
            ProfileField::IsDefault => to.is_default = from.is_default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Error;

    #[test]
    fn templates_take_known_placeholders_only() {
        for ok in [
            "",
            "reviews",
            "reviews/{date}/{session}",
            "{profile}-{session}",
            "/abs/{date}",
        ] {
            assert!(check_template(ok).is_ok(), "{ok}");
        }
        for bad in [
            "{user}",
            "a/{session",
            "x}",
            "{{session}}",
            "{ date }",
            "a/../b",
        ] {
            assert!(check_template(bad).is_err(), "{bad}");
        }
        let mut p = Profile::new("reviewer");
        p.working_dir_template = "reviews/{date}/{profile}/{session}".into();
        let created = Timestamp::from_unix(1_767_225_600, 0); // 2026-01-01T00:00:00Z
        assert_eq!(
            p.working_dir("0190-ab", created).as_deref(),
            Some("reviews/2026-01-01/reviewer/0190-ab")
        );
        p.working_dir_template.clear();
        assert_eq!(p.working_dir("s", created), None);
    }

    #[test]
    fn validation_names_each_bad_field() {
        let mut p = Profile::new("p");
        p.display_name = "a\nb".into();
        p.system_prompt = "x\0".into();
        p.model = Some("Not A Model".into());
        p.mcp_servers = Some(vec!["a".into(), "a".into()]);
        p.working_dir_template = "../{nope}".into();
        let Err(Error::InvalidArgument(violations)) = p.validate() else {
            panic!("expected violations");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "display_name",
                "mcp_servers.names[1]",
                "system_prompt",
                "model",
                "working_dir_template"
            ]
        );
        assert!(Profile::new("ok").validate().is_ok());
    }

    #[test]
    fn explicit_settings_win_and_unset_ones_come_from_the_profile() {
        let mut p = Profile::new("p");
        p.system_prompt = "You review code.".into();
        p.model = Some("gpt".into());
        p.reasoning_effort = ReasoningEffort::High;
        p.permission_mode = Some(PermissionMode::ReadOnly);
        p.mcp_servers = Some(vec!["git".into()]);
        let mut unset = SessionSettings::default();
        p.fill(&mut unset);
        assert_eq!(unset.system_prompt, "You review code.");
        assert_eq!(unset.model.as_deref(), Some("gpt"));
        assert_eq!(unset.reasoning_effort, ReasoningEffort::High);
        assert_eq!(unset.permission_mode, Some(PermissionMode::ReadOnly));
        assert_eq!(unset.mcp_servers, Some(vec!["git".to_owned()]));
        let mut explicit = SessionSettings {
            system_prompt: "Mine.".into(),
            model: Some("mini".into()),
            reasoning_effort: ReasoningEffort::Low,
            permission_mode: Some(PermissionMode::Ask),
            mcp_servers: Some(Vec::new()),
            ..SessionSettings::default()
        };
        let before = explicit.clone();
        p.fill(&mut explicit);
        assert_eq!(explicit, before);
    }
}
