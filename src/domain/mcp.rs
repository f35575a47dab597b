//! MCP servers: tool servers users bring (Model Context Protocol), reached over a child
//! process's stdio or over Streamable HTTP, and the rules their config must follow.
//!
//! Secrets: every `env` value of a stdio server and every header value of an HTTP
//! server is treated as a secret (API keys and bearer tokens live there): stored
//! server-side, never returned (reads show [`secret::mask`]), never logged. A value a
//! client sends back masked means "keep the stored one".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Result, Timestamp, error::Violations, secret};

/// Longest server id: its tools are offered as `<id>__<tool>`, and providers cap tool
/// names at 64 characters (OpenAI), so the id leaves 30 for the tool's own name.
pub const MAX_ID_LEN: usize = 32;
/// What separates the server's id from the tool's name in the name the model sees.
pub const TOOL_SEPARATOR: &str = "__";

/// How Octo reaches an MCP server.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McpTransport {
    /// A child process speaking JSON-RPC on its stdin/stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        /// Set on top of the tool environment allow-list (`tool_env`). Values are secrets.
        env: BTreeMap<String, String>,
        /// Absolute; empty for the workspace root.
        working_dir: String,
    },
    /// MCP Streamable HTTP at `url`.
    Http {
        url: String,
        /// Sent with every request (e.g. `Authorization`). Values are secrets.
        headers: BTreeMap<String, String>,
    },
}

impl std::fmt::Debug for McpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            McpTransport::Stdio {
                command,
                args,
                env,
                working_dir,
            } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env", &env.keys().collect::<Vec<_>>())
                .field("working_dir", working_dir)
                .finish(),
            McpTransport::Http { url, headers } => f
                .debug_struct("Http")
                .field("url", url)
                .field("headers", &headers.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// A configured MCP server (`mcpServers/{id}` in the API).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McpServer {
    /// A slug: its tools are offered to the model as `<id>__<tool>`.
    pub id: String,
    pub display_name: String,
    /// A disabled server is not started and its tools are not offered.
    pub enabled: bool,
    pub transport: McpTransport,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    /// Bumped on every change; the etag.
    pub revision: i64,
}

impl McpServer {
    pub fn new(id: impl Into<String>, transport: McpTransport) -> Self {
        let now = Timestamp::now();
        McpServer {
            id: id.into(),
            display_name: String::new(),
            enabled: true,
            transport,
            create_time: now,
            update_time: now,
            revision: 1,
        }
    }

    /// The server as reads show it: every secret value masked.
    pub fn masked(&self) -> McpServer {
        let mut shown = self.clone();
        match &mut shown.transport {
            McpTransport::Stdio { env, .. } => mask_values(env),
            McpTransport::Http { headers, .. } => mask_values(headers),
        }
        shown
    }

    /// Puts back the stored secret where `self` (sent by a client) carries a masked one.
    pub fn keep_masked_secrets(&mut self, stored: &McpServer) {
        match (&mut self.transport, &stored.transport) {
            (McpTransport::Stdio { env, .. }, McpTransport::Stdio { env: old, .. }) => {
                keep_values(env, old)
            }
            (McpTransport::Http { headers, .. }, McpTransport::Http { headers: old, .. }) => {
                keep_values(headers, old)
            }
            _ => {}
        }
    }

    /// Checks the fields a client sets. Field paths are relative to the server.
    pub fn validate(&self) -> Result<()> {
        let mut v = Violations::new();
        if !is_valid_id(&self.id) {
            v.add(
                "id",
                format!(
                    "must be 1 to {MAX_ID_LEN} lowercase letters, digits and single hyphens, \
                     starting with a letter"
                ),
            );
        }
        if self.display_name.chars().count() > 256 {
            v.add("display_name", "must be at most 256 characters");
        }
        match &self.transport {
            McpTransport::Stdio {
                command,
                args,
                env,
                working_dir,
            } => {
                if command.trim().is_empty() {
                    v.add("stdio.command", "is required");
                }
                if command.len() > 4096 || command.contains('\0') {
                    v.add("stdio.command", "must be at most 4096 bytes, without NUL");
                }
                if args.len() > 256 {
                    v.add("stdio.args", "must be at most 256 arguments");
                }
                for (i, arg) in args.iter().enumerate() {
                    if arg.len() > 4096 || arg.contains('\0') {
                        v.add(
                            format!("stdio.args[{i}]"),
                            "must be at most 4096 bytes, without NUL",
                        );
                    }
                }
                if env.len() > 256 {
                    v.add("stdio.env", "must be at most 256 variables");
                }
                for (name, value) in env {
                    let field = format!("stdio.env[{name:?}]");
                    if !is_env_name(name) {
                        v.add(
                            &field,
                            "a variable name is letters, digits and _, not starting with a digit",
                        );
                    }
                    check_value(&mut v, &field, value);
                }
                if !working_dir.is_empty() && !std::path::Path::new(working_dir).is_absolute() {
                    v.add("stdio.working_dir", "must be an absolute path");
                }
            }
            McpTransport::Http { url, headers } => {
                match reqwest::Url::parse(url) {
                    Ok(parsed)
                        if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() =>
                    {
                        if !parsed.username().is_empty() || parsed.password().is_some() {
                            v.add(
                                "http.url",
                                "must not carry credentials: put them in a header",
                            );
                        }
                    }
                    _ => v.add("http.url", "must be an http:// or https:// URL"),
                }
                if headers.len() > 64 {
                    v.add("http.headers", "must be at most 64 headers");
                }
                for (name, value) in headers {
                    let field = format!("http.headers[{name:?}]");
                    if http_header_name_invalid(name) {
                        v.add(&field, "is not a valid HTTP header name");
                    } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                        v.add(&field, "is set by the MCP transport itself");
                    }
                    if value.contains(['\r', '\n']) {
                        v.add(&field, "must not contain line breaks");
                    }
                    check_value(&mut v, &field, value);
                }
            }
        }
        v.into_result()
    }

    /// The transport's short name: `stdio` or `http`.
    pub fn transport_name(&self) -> &'static str {
        match self.transport {
            McpTransport::Stdio { .. } => "stdio",
            McpTransport::Http { .. } => "http",
        }
    }
}

/// Whether `id` is a well-formed MCP server id: a slug of at most [`MAX_ID_LEN`]
/// characters without `--` (so `<id>__<tool>` splits one way only).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && !id.contains("--")
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The name the model sees for `tool` of server `server`.
pub fn qualified_tool_name(server: &str, tool: &str) -> String {
    format!("{server}{TOOL_SEPARATOR}{tool}")
}

/// Whether a qualified tool name is one every provider accepts (`^[A-Za-z0-9_-]{1,64}$`,
/// OpenAI's rule, the strictest).
pub fn is_offerable_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// How a server's connection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum McpServerState {
    /// Not started (the server is disabled).
    Disabled,
    /// Starting or reconnecting.
    Connecting,
    Connected,
    /// The last attempt failed or the connection broke; a retry is scheduled.
    Failed,
}

/// A server's live state, as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct McpServerStatus {
    pub state: McpServerState,
    /// Why the last attempt failed or the connection broke; empty when connected.
    pub error: String,
    /// Tools the server offers (as last listed).
    pub tool_count: u32,
    /// Connection attempts that failed or broke since the server was configured.
    pub restarts: u32,
}

impl McpServerStatus {
    pub fn disabled() -> Self {
        McpServerStatus {
            state: McpServerState::Disabled,
            error: String::new(),
            tool_count: 0,
            restarts: 0,
        }
    }
}

/// Headers the Streamable HTTP transport sets itself.
const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "content-type",
    "content-length",
    "host",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn http_header_name_invalid(name: &str) -> bool {
    name.is_empty()
        || name.len() > 256
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_value(v: &mut Violations, field: &str, value: &str) {
    if value.len() > 16 * 1024 || value.contains('\0') {
        v.add(field, "must be at most 16 KiB, without NUL");
    }
    if secret::is_masked(value) {
        v.add(
            field,
            "is a masked value: send the real value (a masked one keeps the stored value \
             only when updating)",
        );
    }
}

fn mask_values(values: &mut BTreeMap<String, String>) {
    for value in values.values_mut() {
        *value = secret::mask(value);
    }
}

fn keep_values(values: &mut BTreeMap<String, String>, stored: &BTreeMap<String, String>) {
    for (name, value) in values.iter_mut() {
        if secret::is_masked(value)
            && let Some(old) = stored.get(name)
        {
            value.clone_from(old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stdio() -> McpServer {
        McpServer::new(
            "files",
            McpTransport::Stdio {
                command: "node".into(),
                args: vec!["server.js".into()],
                env: BTreeMap::from([("API_KEY".into(), "sk-0123456789abcdef".into())]),
                working_dir: String::new(),
            },
        )
    }

    #[test]
    fn ids_are_short_slugs_that_split_one_way() {
        for ok in ["a", "files", "git-hub", "x1", &"a".repeat(32)] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["", "A", "1a", "a-", "a--b", "a_b", "a__b", &"a".repeat(33)] {
            assert!(!is_valid_id(bad), "{bad}");
        }
        assert_eq!(
            qualified_tool_name("everything", "echo"),
            "everything__echo"
        );
        assert!(is_offerable_tool_name("everything__get-env"));
        assert!(!is_offerable_tool_name("everything__a.b"));
        assert!(!is_offerable_tool_name(&"a".repeat(65)));
    }

    #[test]
    fn validation_collects_every_violation_with_its_field() {
        assert!(stdio().validate().is_ok());
        let mut server = stdio();
        server.id = "Bad".into();
        server.transport = McpTransport::Stdio {
            command: " ".into(),
            args: vec!["a\0".into()],
            env: BTreeMap::from([("1X".into(), "v".into()), ("K".into(), "ab****cd".into())]),
            working_dir: "relative".into(),
        };
        let Err(crate::domain::Error::InvalidArgument(violations)) = server.validate() else {
            panic!("invalid");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "id",
                "stdio.command",
                "stdio.args[0]",
                "stdio.env[\"1X\"]",
                "stdio.env[\"K\"]",
                "stdio.working_dir"
            ]
        );
        let http = McpServer::new(
            "web",
            McpTransport::Http {
                url: "ftp://user:pw@host".into(),
                headers: BTreeMap::from([("Bad Name".into(), "a\r\nb".into())]),
            },
        );
        let Err(crate::domain::Error::InvalidArgument(violations)) = http.validate() else {
            panic!("invalid");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "http.url",
                "http.headers[\"Bad Name\"]",
                "http.headers[\"Bad Name\"]"
            ]
        );
    }

    #[test]
    fn secrets_are_masked_on_read_and_kept_when_sent_back_masked() {
        let stored = stdio();
        let shown = stored.masked();
        let McpTransport::Stdio { env, .. } = &shown.transport else {
            panic!("stdio");
        };
        assert_eq!(env["API_KEY"], "sk-0****cdef");
        assert!(!format!("{stored:?}").contains("sk-0123456789abcdef"));
        let mut update = shown.clone();
        update.keep_masked_secrets(&stored);
        assert_eq!(update.transport, stored.transport);
    }
}
