//! Sessions: their settings, counters, and the rules their fields obey.

use std::collections::BTreeMap;

use super::{Error, Result, Timestamp, error::Violations};

pub const MAX_DISPLAY_NAME_CHARS: usize = 256;
pub const MAX_SYSTEM_PROMPT_BYTES: usize = 64 * 1024;
pub const MAX_LABELS: usize = 64;
pub const MAX_LABEL_KEY_CHARS: usize = 63;
pub const MAX_LABEL_VALUE_CHARS: usize = 256;
pub const MAX_WORKING_DIR_BYTES: usize = 4096;
/// Characters of the latest message kept as the session's preview.
pub const PREVIEW_CHARS: usize = 160;

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningEffort {
    #[default]
    Default,
    Off,
    Low,
    Medium,
    High,
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PermissionMode {
    #[default]
    Ask,
    AutoApprove,
    ReadOnly,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SessionSource {
    Manual,
    Schedule,
    #[default]
    Api,
    Webhook,
}

impl SessionSource {
    /// Whether someone may be there to answer the model's questions (`ask_user`): a
    /// person (MANUAL) or the program driving the session (API). Schedule runs and
    /// webhooks run unattended: the model is not offered the question tool there.
    pub fn is_attended(self) -> bool {
        match self {
            SessionSource::Manual | SessionSource::Api => true,
            SessionSource::Schedule | SessionSource::Webhook => false,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SessionStatus {
    #[default]
    Idle,
    Running,
    AwaitingConfirmation,
    /// The model asked the user a question (`ask_user`).
    AwaitingInput,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub reasoning_tokens: i64,
    pub cached_input_tokens: i64,
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub id: String,
    pub display_name: String,
    /// Model id (not name); `None` for the server default.
    pub model: Option<String>,
    pub reasoning_effort: ReasoningEffort,
    /// Absolute, canonical path.
    pub working_dir: String,
    pub permission_mode: PermissionMode,
    pub system_prompt: String,
    pub labels: BTreeMap<String, String>,
    pub pinned: bool,
    pub source: SessionSource,
    pub message_count: i64,
    pub last_message_preview: String,
    pub usage: Usage,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    pub last_active_time: Timestamp,
    /// Incremented on every change; the etag is derived from it.
    pub revision: i64,
    pub forked_from: Option<String>,
    /// The MCP servers (ids) whose tools its turns are offered; `None`: every enabled one.
    pub mcp_servers: Option<Vec<String>>,
    /// When it was moved to the trash (AIP-164 soft delete); `None` while it is not.
    pub delete_time: Option<Timestamp>,
    /// When a trashed session is purged for good; set with `delete_time`.
    pub expire_time: Option<Timestamp>,
    /// The profile (id) it was set up from; `None` if none applied. Set at creation only.
    pub profile: Option<String>,
    /// Live state, owned by the runtime, not stored.
    pub status: SessionStatus,
    pub queue_depth: i32,
    pub active_turn: Option<String>,
}

impl Session {
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }

    /// Whether it is in the trash.
    pub fn is_deleted(&self) -> bool {
        self.delete_time.is_some()
    }

    /// Refuses a change to a session in the trash (AIP-164: soft-deleted resources are
    /// read-only until restored).
    pub fn check_not_deleted(&self) -> Result<()> {
        if self.is_deleted() {
            Err(session_deleted(&self.id))
        } else {
            Ok(())
        }
    }

    /// Checks a client-sent etag; an empty etag means "don't check".
    pub fn check_etag(&self, etag: &str) -> Result<()> {
        if etag.is_empty() || etag == self.etag() {
            Ok(())
        } else {
            Err(Error::EtagMismatch {
                resource: super::Resource::Session,
                name: format!("sessions/{}", self.id),
            })
        }
    }
}

/// The reason of the error a change to a session in the trash gets.
pub use crate::domain::reason::SESSION_DELETED;
/// The reason of the error purging a session that is not in the trash gets.
pub use crate::domain::reason::SESSION_NOT_DELETED;

/// FAILED_PRECONDITION: the session is in the trash, so it cannot change.
pub fn session_deleted(id: &str) -> Error {
    Error::FailedPrecondition {
        reason: SESSION_DELETED,
        message: format!(
            "sessions/{id} is in the trash and cannot change; restore it first (UndeleteSession, `octo sessions restore`)"
        ),
    }
}

/// FAILED_PRECONDITION: only a session in the trash can be purged.
pub fn session_not_deleted(id: &str) -> Error {
    Error::FailedPrecondition {
        reason: SESSION_NOT_DELETED,
        message: format!(
            "sessions/{id} is not in the trash; delete it first (DeleteSession moves it to the trash), then purge it"
        ),
    }
}

/// The settings a client chooses; what Create takes and Update changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionSettings {
    pub display_name: String,
    pub model: Option<String>,
    pub reasoning_effort: ReasoningEffort,
    /// As sent by the client; resolved against the workspace root by the runtime.
    pub working_dir: String,
    /// `None`: not chosen. A new session then takes its profile's, else the default of
    /// its kind (ASK, or AUTO_APPROVE for schedule runs...); an update sets ASK.
    pub permission_mode: Option<PermissionMode>,
    pub system_prompt: String,
    pub labels: BTreeMap<String, String>,
    pub pinned: bool,
    /// `None`: every enabled MCP server.
    pub mcp_servers: Option<Vec<String>>,
}

/// The fields an Update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionField {
    DisplayName,
    Model,
    ReasoningEffort,
    WorkingDir,
    PermissionMode,
    SystemPrompt,
    Labels,
    Pinned,
    McpServers,
}

impl SessionField {
    pub const ALL: [SessionField; 9] = [
        SessionField::DisplayName,
        SessionField::Model,
        SessionField::ReasoningEffort,
        SessionField::WorkingDir,
        SessionField::PermissionMode,
        SessionField::SystemPrompt,
        SessionField::Labels,
        SessionField::Pinned,
        SessionField::McpServers,
    ];

    /// The field's name in the API (proto field name).
    pub fn api_name(self) -> &'static str {
        match self {
            SessionField::DisplayName => "display_name",
            SessionField::Model => "model",
            SessionField::ReasoningEffort => "reasoning_effort",
            SessionField::WorkingDir => "working_dir",
            SessionField::PermissionMode => "permission_mode",
            SessionField::SystemPrompt => "system_prompt",
            SessionField::Labels => "labels",
            SessionField::Pinned => "pinned",
            SessionField::McpServers => "mcp_servers",
        }
    }
}

impl super::UpdatableField for SessionField {
    const ALL: &'static [Self] = &SessionField::ALL;

    fn api_name(self) -> &'static str {
        SessionField::api_name(self)
    }
}

/// A field path in proto spelling: JSON's lowerCamelCase becomes snake_case.
pub fn snake_case(path: &str) -> String {
    path.chars()
        .flat_map(|c| {
            let lower = c.to_ascii_lowercase();
            let underscore = c.is_ascii_uppercase().then_some('_');
            underscore.into_iter().chain(std::iter::once(lower))
        })
        .collect()
}

impl SessionSettings {
    /// Checks the fields' bounds. Field paths are relative to the Session message.
    pub fn validate(&self) -> Result<()> {
        let mut v = Violations::new();
        if let Some(servers) = &self.mcp_servers {
            if servers.len() > 64 {
                v.add("mcp_servers.names", "must be at most 64 servers");
            }
            for (i, id) in servers.iter().enumerate() {
                if servers[..i].contains(id) {
                    v.add(format!("mcp_servers.names[{i}]"), "is listed twice");
                }
            }
        }
        let title_chars = self.display_name.chars().count();
        if title_chars > MAX_DISPLAY_NAME_CHARS {
            v.add(
                "display_name",
                format!("must be at most {MAX_DISPLAY_NAME_CHARS} characters (got {title_chars})"),
            );
        }
        if self.display_name.chars().any(char::is_control) {
            v.add("display_name", "must not contain control characters");
        }
        if self.system_prompt.len() > MAX_SYSTEM_PROMPT_BYTES {
            v.add(
                "system_prompt",
                format!(
                    "must be at most {MAX_SYSTEM_PROMPT_BYTES} bytes (got {})",
                    self.system_prompt.len()
                ),
            );
        }
        if self.working_dir.len() > MAX_WORKING_DIR_BYTES {
            v.add(
                "working_dir",
                format!("must be at most {MAX_WORKING_DIR_BYTES} bytes"),
            );
        }
        // Postgres text cannot hold NUL; the same rule on every backend.
        if self.system_prompt.contains('\0') {
            v.add("system_prompt", "must not contain NUL characters");
        }
        if self.working_dir.contains('\0') {
            v.add("working_dir", "must not contain NUL characters");
        }
        if let Some(model) = &self.model
            && !super::is_valid_model_id(model)
        {
            v.add("model", "must be a model name of the form models/{model}");
        }
        v.check(validate_labels(&self.labels));
        v.into_result()
    }
}

/// Whether `key` is a well-formed label key: 1-63 characters of a-z, 0-9, `_` or `-`,
/// starting with a letter.
pub fn is_label_key(key: &str) -> bool {
    !key.is_empty()
        && key.chars().count() <= MAX_LABEL_KEY_CHARS
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && key.starts_with(|c: char| c.is_ascii_lowercase())
}

pub fn validate_labels(labels: &BTreeMap<String, String>) -> Result<()> {
    let mut v = Violations::new();
    if labels.len() > MAX_LABELS {
        v.add(
            "labels",
            format!("at most {MAX_LABELS} labels (got {})", labels.len()),
        );
    }
    for (key, value) in labels {
        if !is_label_key(key) {
            v.add(
                format!("labels[{key:?}]"),
                format!(
                    "key must be 1-{MAX_LABEL_KEY_CHARS} characters of a-z, 0-9, '_' or '-', starting with a letter"
                ),
            );
        }
        if value.chars().count() > MAX_LABEL_VALUE_CHARS {
            v.add(
                format!("labels[{key:?}]"),
                format!("value must be at most {MAX_LABEL_VALUE_CHARS} characters"),
            );
        }
    }
    v.into_result()
}

/// How long a title the server gives an untitled session may be.
pub const TITLE_CHARS: usize = 60;

/// The title the server gives an untitled session from its first message: the text on
/// one line, cut at a word boundary to at most [`TITLE_CHARS`] characters (with `…`
/// when cut), without control characters. Empty when the text has no words.
pub fn title(text: &str) -> String {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| w.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = String::new();
    for word in &words {
        let needed = out.chars().count() + usize::from(!out.is_empty()) + word.chars().count();
        if needed > TITLE_CHARS {
            if out.is_empty() {
                // One long word: cut it.
                out = word.chars().take(TITLE_CHARS - 1).collect();
            }
            out.push('…');
            return out;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The preview of a text: its first characters on one line.
pub fn preview(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = one_line.chars();
    let head: String = chars.by_ref().take(PREVIEW_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_title_is_the_first_words_on_one_line() {
        use super::{TITLE_CHARS, title};
        assert_eq!(title("  hello\n\tworld  "), "hello world");
        assert_eq!(title("a\u{7}b"), "ab");
        assert_eq!(title(" \n "), "");
        let long = "word ".repeat(30);
        let cut = title(&long);
        assert!(cut.chars().count() <= TITLE_CHARS, "{cut}");
        assert!(cut.ends_with("word…"), "{cut}");
        let one = "x".repeat(100);
        assert_eq!(title(&one).chars().count(), TITLE_CHARS);
    }

    use super::*;
    use crate::domain::UpdatableField;

    #[test]
    fn labels_reject_bad_keys_and_name_the_key() {
        let mut labels = BTreeMap::new();
        labels.insert("ok-key_1".to_owned(), "v".to_owned());
        assert!(validate_labels(&labels).is_ok());
        labels.insert("Bad Key".to_owned(), "v".to_owned());
        match validate_labels(&labels) {
            Err(Error::InvalidArgument(v)) => {
                assert_eq!(v.len(), 1);
                assert_eq!(v[0].field, "labels[\"Bad Key\"]");
            }
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn settings_report_every_bad_field() {
        let settings = SessionSettings {
            display_name: "x".repeat(MAX_DISPLAY_NAME_CHARS + 1),
            system_prompt: "y".repeat(MAX_SYSTEM_PROMPT_BYTES + 1),
            model: Some("Not An Id".into()),
            ..Default::default()
        };
        let Err(Error::InvalidArgument(v)) = settings.validate() else {
            panic!("expected violations");
        };
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["display_name", "system_prompt", "model"]);
    }

    #[test]
    fn nul_characters_are_refused_in_stored_text() {
        let settings = SessionSettings {
            display_name: "a\0b".into(),
            system_prompt: "be\0brief".into(),
            working_dir: "dir\0".into(),
            ..Default::default()
        };
        let Err(Error::InvalidArgument(v)) = settings.validate() else {
            panic!("expected violations");
        };
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["display_name", "system_prompt", "working_dir"]);
    }

    #[test]
    fn mask_paths_accept_proto_and_json_names() {
        assert_eq!(
            SessionField::from_api_name("display_name"),
            Some(SessionField::DisplayName)
        );
        assert_eq!(
            SessionField::from_api_name("displayName"),
            Some(SessionField::DisplayName)
        );
        assert_eq!(SessionField::from_api_name("status"), None);
        assert_eq!(SessionField::from_api_name("Display_Name"), None);
    }

    #[test]
    fn preview_is_one_bounded_line() {
        assert_eq!(preview("hello\n  world"), "hello world");
        let long = "a".repeat(PREVIEW_CHARS + 10);
        let p = preview(&long);
        assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.ends_with('…'));
    }
}
