//! One resolved configuration: built-in defaults, then the TOML file, then `OCTO_*`
//! environment variables, then command-line flags, later sources winning.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

use crate::providers::ProviderPolicy;

mod profiles;

pub use profiles::ProfileConfig;

/// Where Octo keeps its files when nothing says otherwise (XDG base directories).
pub fn default_config_path() -> PathBuf {
    xdg_dir("XDG_CONFIG_HOME", ".config").join("octo/config.toml")
}

fn default_data_dir() -> PathBuf {
    xdg_dir("XDG_DATA_HOME", ".local/share").join("octo")
}

fn xdg_dir(var: &str, home_relative: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        _ => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(home_relative),
    }
}

/// The server's configuration. Field names are the TOML keys and, upper-cased with an
/// `OCTO_` prefix, the environment variables (`OCTO_LISTEN`, `OCTO_TOKEN`, ...).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address serving gRPC, gRPC-Web and JSON/HTTP.
    pub listen: SocketAddr,
    /// Database and other state. Defaults to `$XDG_DATA_HOME/octo`.
    pub data_dir: PathBuf,
    /// The database: `postgres://user:password@host:port/db` for a cluster of servers
    /// on one Postgres, `sqlite:///path/octo.db`; default `<data_dir>/octo.db`.
    pub database_url: Option<String>,
    /// With a Postgres `database_url`: makes this server one of a cluster on that
    /// database (any server serves any session). Every server of the cluster uses the
    /// same token, which authenticates their calls to each other. Without it a second
    /// server on the database is refused.
    pub cluster_token: Option<String>,
    /// Where the other servers of the cluster reach this one (`http://host:port`).
    /// Default: `http://<listen>` (`https://` with TLS); required when listening on a
    /// wildcard address such as 0.0.0.0.
    pub advertise_address: Option<String>,
    /// A cluster server that stops renewing its leases for this long is presumed dead
    /// and its sessions move to live servers.
    pub lease_ttl_seconds: u64,
    /// Session working dirs must resolve inside this directory. Defaults to `<data_dir>/workspace`.
    pub workspace_root: Option<PathBuf>,
    /// Let sessions use any directory as working dir, not only those inside workspace_root.
    pub allow_any_working_dir: bool,
    /// Bearer token clients must send. Required on non-loopback addresses.
    pub token: Option<String>,
    /// Require the token on loopback addresses too.
    pub require_token: bool,
    /// Largest request or response message, in bytes.
    pub max_message_bytes: usize,
    /// Log filter, e.g. `info` or `octo=debug,info` (RUST_LOG wins when set).
    pub log: String,
    /// Seconds to wait for open requests and streams on shutdown before closing them.
    pub shutdown_grace_seconds: u64,
    /// Browser origins (`scheme://host[:port]`) allowed to call the server besides its
    /// own. Empty by default: pages on other origins get 403. `*` allows any origin and
    /// is accepted only together with `token`.
    pub cors_allowed_origins: Vec<String>,
    /// Host names served on a loopback address besides `localhost`, `127.0.0.1` and
    /// `[::1]` (any port). Other `Host` headers are refused: DNS rebinding protection.
    pub allowed_hosts: Vec<String>,
    /// PEM certificate chain: serve TLS on the one port (h2 and HTTP/1.1 by ALPN).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Models turns can use, by id (`models/{id}` in the API).
    pub models: BTreeMap<String, ModelConfig>,
    /// The id of the model turns use when neither the request nor the session names one.
    pub default_model: Option<String>,
    /// MCP tool servers, by id (`mcpServers/{id}` in the API): their tools are offered to
    /// the model as `<id>__<tool>`.
    pub mcp: BTreeMap<String, McpConfig>,
    /// Agent profiles, by id (`profiles/{id}` in the API), added to the database at start
    /// when missing.
    pub profiles: BTreeMap<String, ProfileConfig>,
    /// The id of the profile of new sessions that name none.
    pub default_profile: Option<String>,
    /// The system prompt of sessions that set none.
    pub system_prompt: String,
    /// Turns a session may have waiting behind the running one.
    pub max_queue_depth: usize,
    /// Model requests one turn may make before it fails with STEP_LIMIT.
    pub max_steps: u32,
    /// Longest a tool call may run.
    pub tool_timeout_seconds: u64,
    /// Environment variables tool commands get from the server's environment: names, or
    /// prefixes ending in `*`. `OCTO_*` and the models' `api_key_env` variables are
    /// never passed, whatever this says.
    pub tool_env: Vec<String>,
    /// The file the configuration was read from (set by `load`; not a setting).
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
    /// Bytes of tool output fed back to the model.
    pub max_tool_output_bytes: usize,
    /// Largest attachment of a message.
    pub max_attachment_bytes: usize,
    /// Events per session kept in memory for streams to resume from, while the session
    /// has subscribers.
    pub event_log_capacity: usize,
    /// Bytes of events (estimated heap size) a session with no subscriber keeps for
    /// streams to resume from; older resume points get a stream reset.
    pub event_log_bytes: usize,
    /// An idle session's live state is dropped after this many seconds.
    pub session_idle_seconds: u64,
    /// Days a session stays in the trash (DeleteSession) before it is purged for good;
    /// fractions allowed, 0 purges at the next retention pass.
    pub trash_retention_days: f64,
    /// Purge sessions, in the trash or not, with no activity for this many days. Unset
    /// (the default): sessions are kept until deleted.
    pub session_retention_days: Option<f64>,
    /// Seconds between retention passes; each purges at most 100 sessions.
    pub retention_interval_seconds: u64,
    /// Timeouts and retries of LLM provider requests.
    pub provider: ProviderConfig,
    /// Receives every turn.finished and schedule_run.finished notification (Standard
    /// Webhooks); needs `webhook_secret`.
    pub webhook_url: Option<String>,
    /// The `whsec_` secret server-level webhooks are signed with.
    pub webhook_secret: Option<String>,
    /// Retries of webhook deliveries (server-level and schedules' webhooks alike).
    pub webhooks: WebhookConfig,
    /// The confinement of tool commands (`[sandbox]`).
    pub sandbox: SandboxConfig,
    /// When and how a long conversation is summarised (`[compaction]`).
    pub compaction: CompactionConfig,
    /// Open connections served at once; beyond, requests get RESOURCE_EXHAUSTED. Keep it
    /// under the process's open-file limit (`ulimit -n`).
    pub max_connections: usize,
    /// Open server streams (Chat, StreamEvents, WatchSessions, any protocol) at once.
    pub max_streams: usize,
    /// A fire time missed while the server was down still runs (once) on start if it is
    /// at most this many seconds late; otherwise it is recorded as skipped.
    pub schedule_misfire_grace_seconds: u64,
    /// Serve the web UI at `/` (`--no-ui` turns it off).
    pub ui: bool,
    /// Size limits of the Files API (`[files]`).
    pub files: FilesConfig,
}

/// The Files API's limits (`[files]`): downloads and uploads of a session's files.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// Larger files are not downloaded.
    pub max_download_bytes: u64,
    /// An upload may not make a file larger than this.
    pub max_upload_bytes: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            max_download_bytes: 64 * 1024 * 1024,
            max_upload_bytes: 16 * 1024 * 1024,
        }
    }
}

impl FilesConfig {
    /// The limits the runtime applies.
    pub fn limits(&self) -> crate::runtime::FileLimits {
        crate::runtime::FileLimits {
            max_download_bytes: self.max_download_bytes,
            max_upload_bytes: self.max_upload_bytes,
        }
    }
}

/// Timeouts and retries of LLM provider requests.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    pub connect_timeout_ms: u64,
    /// Longest silence on an open response stream.
    pub idle_timeout_ms: u64,
    /// Attempts before the first token (connect errors, 429, 5xx); 1 = no retry.
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for ProviderConfig {
    /// The provider layer's own defaults, so the numbers live in one place.
    fn default() -> Self {
        let policy = ProviderPolicy::default();
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        Self {
            connect_timeout_ms: ms(policy.connect_timeout),
            idle_timeout_ms: ms(policy.idle_timeout),
            max_attempts: policy.max_attempts,
            initial_backoff_ms: ms(policy.initial_backoff),
            max_backoff_ms: ms(policy.max_backoff),
        }
    }
}

impl ProviderConfig {
    /// The policy the provider adapters use.
    pub fn policy(&self) -> ProviderPolicy {
        use std::time::Duration;
        ProviderPolicy {
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            max_attempts: self.max_attempts,
            initial_backoff: Duration::from_millis(self.initial_backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms),
        }
    }
}

/// The tool sandbox (`[sandbox]`): see `crate::tools::sandbox` and the README's
/// "Running tools safely".
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Confine what commands read and write with Landlock where the kernel has it:
    /// writes only in the session's working dir, a private temp dir and `writable`;
    /// everything readable but the data dir, the config file and `hidden`.
    pub confine_files: bool,
    pub writable: Vec<PathBuf>,
    pub hidden: Vec<PathBuf>,
    /// Let commands use TCP (false: bind and connect are refused; Landlock ABI 4+).
    pub network: bool,
    /// Per command, 0 for none: CPU seconds, the largest file it may write, its address
    /// space (off by default: the JVM, Go and Node reserve far more than they use), and
    /// processes (a cgroup cap where one is writable, else RLIMIT_NPROC, which counts all
    /// the server user's processes and does not bind root).
    pub cpu_seconds: u64,
    pub file_size_mb: u64,
    pub address_space_mb: u64,
    pub processes: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            confine_files: true,
            writable: Vec::new(),
            hidden: Vec::new(),
            network: true,
            // An hour of CPU: past the 600 s default tool timeout, so it only stops a
            // command whose timeout was raised; 4 GiB files; 1024 processes.
            cpu_seconds: 3600,
            file_size_mb: 4096,
            address_space_mb: 0,
            processes: 1024,
        }
    }
}

/// Compaction (`[compaction]`): see `crate::runtime::compaction`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CompactionConfig {
    /// Summarise the oldest messages when a request would fill more than this share of
    /// the model's context window (the rest is room for the answer).
    pub threshold: f64,
    /// The share of the window the newest messages kept as they are may fill; the
    /// summary replaces everything before them.
    pub keep: f64,
    /// The id of the model that writes summaries (a smaller, cheaper one); unset: the
    /// turn's own.
    pub model: Option<String>,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            threshold: 0.75,
            keep: 0.25,
            model: None,
        }
    }
}

/// Retries of webhook deliveries from the outbox.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Attempts per delivery, the first included; then it is dead (an operator may
    /// retry it).
    pub max_attempts: u32,
    /// The delay before the second attempt; it doubles for every further one.
    pub initial_backoff_ms: u64,
    /// The longest delay between attempts.
    pub max_backoff_ms: u64,
    /// The whole of one attempt.
    pub timeout_ms: u64,
}

impl Default for WebhookConfig {
    /// The webhook layer's own defaults, so the numbers live in one place.
    fn default() -> Self {
        let policy = crate::webhooks::WebhookPolicy::default();
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        Self {
            max_attempts: policy.max_attempts,
            initial_backoff_ms: ms(policy.initial_backoff),
            max_backoff_ms: ms(policy.max_backoff),
            timeout_ms: ms(policy.timeout),
        }
    }
}

impl WebhookConfig {
    /// The policy the delivery worker uses.
    pub fn policy(&self) -> crate::webhooks::WebhookPolicy {
        use std::time::Duration;
        crate::webhooks::WebhookPolicy {
            max_attempts: self.max_attempts.max(1),
            initial_backoff: Duration::from_millis(self.initial_backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms),
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
            ..crate::webhooks::WebhookPolicy::default()
        }
    }
}

/// One model turns can run against.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// `openai` (any OpenAI-compatible chat completions API), `anthropic` or `mock`.
    pub provider: String,
    /// The provider's model id, e.g. `gpt-4.1-mini`.
    #[serde(default)]
    pub model: String,
    /// Empty for the provider's default.
    #[serde(default)]
    pub base_url: String,
    /// The environment variable holding the API key (preferred over `api_key`).
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub api_key: Option<String>,
    /// Context window in tokens; 0 for unknown (history is then never trimmed).
    #[serde(default)]
    pub context_window: u32,
    #[serde(default)]
    pub max_output_tokens: u32,
    /// Provider-specific options (the mock's `reply`, `tokens`, `token_delay_ms`, `reasoning`).
    #[serde(default)]
    pub options: BTreeMap<String, serde_json::Value>,
}

impl ModelConfig {
    /// The built-in deterministic model of `octo serve --demo`.
    pub fn mock() -> Self {
        ModelConfig {
            provider: "mock".into(),
            model: "mock".into(),
            base_url: String::new(),
            api_key_env: None,
            api_key: None,
            context_window: 0,
            max_output_tokens: 0,
            options: BTreeMap::new(),
        }
    }
}

/// One `[mcp.<id>]` table: a stdio server (`command`, `args`, `env`, `working_dir`) or
/// a Streamable HTTP one (`url`, `headers`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Set for the server's process on top of `tool_env`'s allow-list.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Default: the workspace root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

impl McpConfig {
    /// A stdio server running `command` with `args`.
    pub fn stdio(command: impl Into<String>, args: &[&str]) -> Self {
        McpConfig {
            command: Some(command.into()),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            enabled: true,
            ..McpConfig::default()
        }
    }

    /// The server this table describes, checked.
    pub fn to_server(&self, id: &str) -> Result<crate::domain::mcp::McpServer, String> {
        use crate::domain::mcp::{McpServer, McpTransport};
        let transport = match (&self.command, &self.url) {
            (Some(command), None) if self.headers.is_empty() => McpTransport::Stdio {
                command: command.clone(),
                args: self.args.clone(),
                env: self.env.clone(),
                working_dir: self
                    .working_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
            },
            (None, Some(url))
                if self.args.is_empty() && self.env.is_empty() && self.working_dir.is_none() =>
            {
                McpTransport::Http {
                    url: url.clone(),
                    headers: self.headers.clone(),
                }
            }
            _ => {
                return Err(format!(
                    "mcp.{id}: set either command (with args, env, working_dir) for a stdio \
                     server or url (with headers) for a Streamable HTTP one"
                ));
            }
        };
        let mut server = McpServer::new(id, transport);
        server.enabled = self.enabled;
        server
            .validate()
            .map_err(|err| format!("mcp.{id}: {err}"))?;
        Ok(server)
    }
}

/// The default system prompt.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a capable software agent working in the user's \
working directory. Use the tools to inspect and change files and to run commands; keep answers \
short and say what you did.";

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: default_data_dir(),
            database_url: None,
            cluster_token: None,
            advertise_address: None,
            lease_ttl_seconds: 10,
            workspace_root: None,
            allow_any_working_dir: false,
            token: None,
            require_token: false,
            max_message_bytes: 16 * 1024 * 1024,
            log: "info".to_owned(),
            shutdown_grace_seconds: 10,
            cors_allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            tls_cert: None,
            tls_key: None,
            models: BTreeMap::new(),
            default_model: None,
            mcp: BTreeMap::new(),
            profiles: BTreeMap::new(),
            default_profile: None,
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_owned(),
            max_queue_depth: 16,
            max_steps: 50,
            tool_timeout_seconds: 600,
            tool_env: crate::tools::env::DEFAULT_ALLOWED
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
            config_file: None,
            max_tool_output_bytes: 64 * 1024,
            max_attachment_bytes: 10 * 1024 * 1024,
            event_log_capacity: 4096,
            event_log_bytes: 64 * 1024,
            session_idle_seconds: 60,
            trash_retention_days: 30.0,
            session_retention_days: None,
            retention_interval_seconds: 300,
            provider: ProviderConfig::default(),
            webhook_url: None,
            webhook_secret: None,
            webhooks: WebhookConfig::default(),
            sandbox: SandboxConfig::default(),
            compaction: CompactionConfig::default(),
            // 4096 connections of a few KiB each; streams are lighter (one task and a
            // subscription each), so twice as many.
            max_connections: 4096,
            max_streams: 8192,
            schedule_misfire_grace_seconds: 3600,
            ui: true,
            files: FilesConfig::default(),
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_root: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_token: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// `--no-ui`: `Some(false)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ui: Option<bool>,
    /// `--demo`: add the built-in mock model (and make it the default if there is none).
    #[serde(skip)]
    pub demo: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Rule(String),
}

impl Config {
    /// Resolves the configuration from `path` (or the default path; a missing file is
    /// fine), the environment and `overrides`.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let path = path
            .map(Path::to_path_buf)
            .unwrap_or_else(default_config_path);
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&path))
            .merge(Env::prefixed("OCTO_").filter(|key| is_config_key(key.as_str())))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(Box::new)?;
        let mut config = config;
        config.config_file = Some(path.clone());
        if overrides.demo {
            config
                .models
                .entry("mock".into())
                .or_insert_with(ModelConfig::mock);
            if config.default_model.is_none() {
                config.default_model = Some("mock".into());
            }
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match (&self.webhook_url, &self.webhook_secret) {
            (Some(_), None) => {
                return Err(ConfigError::Rule(
                    "webhook_url needs webhook_secret (whsec_ followed by base64 of 24 to 64 \
                     random bytes, e.g. from `openssl rand -base64 32`)"
                        .into(),
                ));
            }
            (_, Some(secret)) => {
                crate::webhooks::WebhookSecret::parse(secret)
                    .map_err(|err| ConfigError::Rule(format!("webhook_secret: {err}")))?;
            }
            _ => {}
        }
        let CompactionConfig {
            threshold, keep, ..
        } = self.compaction;
        if !(keep > 0.0 && keep < threshold && threshold <= 1.0) {
            return Err(ConfigError::Rule(format!(
                "compaction: need 0 < keep < threshold <= 1 (got keep = {keep}, threshold = \
                 {threshold})"
            )));
        }
        if self.max_message_bytes < 1024 {
            return Err(ConfigError::Rule(
                "max_message_bytes must be at least 1024".into(),
            ));
        }
        if let Some(default) = &self.default_model
            && !self.models.contains_key(default)
        {
            return Err(ConfigError::Rule(format!(
                "default_model {default:?} is not one of the configured models"
            )));
        }
        for (id, server) in &self.mcp {
            server.to_server(id).map_err(ConfigError::Rule)?;
        }
        profiles::check(&self.profiles, self.default_profile.as_deref())
            .map_err(ConfigError::Rule)?;
        if self.provider.max_attempts == 0 || self.provider.idle_timeout_ms == 0 {
            return Err(ConfigError::Rule(
                "provider.max_attempts and provider.idle_timeout_ms must be positive".into(),
            ));
        }
        if self.max_queue_depth == 0 || self.max_steps == 0 || self.event_log_capacity < 16 {
            return Err(ConfigError::Rule(
                "max_queue_depth and max_steps must be positive, event_log_capacity at least 16"
                    .into(),
            ));
        }
        self.check_retention()?;
        if matches!(&self.token, Some(token) if token.trim().is_empty()) {
            return Err(ConfigError::Rule("token must not be empty when set".into()));
        }
        crate::guard::check_config(
            &self.cors_allowed_origins,
            &self.allowed_hosts,
            self.token.is_some(),
        )
        .map_err(ConfigError::Rule)?;
        if let Some(url) = &self.database_url {
            crate::store::Backend::of(url)
                .map_err(|err| ConfigError::Rule(format!("database_url: {err}")))?;
        }
        self.check_cluster()?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Rule(
                "tls_cert and tls_key go together: set both (PEM files) or neither".into(),
            ));
        }
        Ok(())
    }

    fn check_retention(&self) -> Result<(), ConfigError> {
        let days = |d: f64| d.is_finite() && (0.0..=36_500.0).contains(&d);
        if !days(self.trash_retention_days) {
            return Err(ConfigError::Rule(
                "trash_retention_days must be between 0 and 36500".into(),
            ));
        }
        if let Some(d) = self.session_retention_days
            && !(days(d) && d > 0.0)
        {
            return Err(ConfigError::Rule(
                "session_retention_days must be above 0 and at most 36500 (leave it unset \
                 to keep sessions until deleted)"
                    .into(),
            ));
        }
        if self.retention_interval_seconds == 0 {
            return Err(ConfigError::Rule(
                "retention_interval_seconds must be positive".into(),
            ));
        }
        Ok(())
    }

    /// How long a session stays in the trash.
    pub fn trash_retention(&self) -> std::time::Duration {
        days(self.trash_retention_days)
    }

    /// How long a session may stay inactive before it is purged, if ever.
    pub fn session_retention(&self) -> Option<std::time::Duration> {
        self.session_retention_days.map(days)
    }

    fn check_cluster(&self) -> Result<(), ConfigError> {
        let Some(token) = &self.cluster_token else {
            return Ok(());
        };
        let postgres = self.database_url.as_deref().map(crate::store::Backend::of);
        if postgres != Some(Ok(crate::store::Backend::Postgres)) {
            return Err(ConfigError::Rule(
                "cluster_token needs a postgres:// database_url: the servers of a cluster share one Postgres"
                    .into(),
            ));
        }
        if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::Rule(
                "cluster_token must be at least 32 printable ASCII characters without spaces \
                 (e.g. from `openssl rand -hex 32`)"
                    .into(),
            ));
        }
        if !(1..=3600).contains(&self.lease_ttl_seconds) {
            return Err(ConfigError::Rule(
                "lease_ttl_seconds must be between 1 and 3600".into(),
            ));
        }
        match &self.advertise_address {
            Some(address) => {
                let parsed = address.parse::<http::Uri>().ok();
                let valid = parsed.as_ref().is_some_and(|uri| {
                    matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
                });
                if !valid {
                    return Err(ConfigError::Rule(format!(
                        "advertise_address {address:?} must be http://host:port or https://host:port"
                    )));
                }
            }
            None if self.listen.ip().is_unspecified() => {
                return Err(ConfigError::Rule(format!(
                    "listening on {} in a cluster needs advertise_address: the address other \
                     servers reach this one at (http://host:port)",
                    self.listen
                )));
            }
            None => {}
        }
        Ok(())
    }

    /// The address the other servers of a cluster reach this one at, given the bound
    /// address (port 0 resolved).
    pub fn advertised_address(&self, bound: std::net::SocketAddr) -> String {
        self.advertise_address.clone().unwrap_or_else(|| {
            let scheme = if self.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{bound}")
        })
    }

    /// The directory working dirs are confined to.
    pub fn workspace_root(&self) -> PathBuf {
        self.workspace_root
            .clone()
            .unwrap_or_else(|| self.data_dir.join("workspace"))
    }

    /// The SQLite database file.
    /// The sandbox as the tools take it: the data dir and the config file are never
    /// readable by commands; private temp dirs live in `<data_dir>/tmp`.
    pub fn sandbox_settings(&self) -> crate::tools::sandbox::SandboxSettings {
        let mb = |n: u64| n.saturating_mul(1024 * 1024);
        let mut hidden = vec![self.data_dir.clone()];
        hidden.extend(self.config_file.clone());
        hidden.extend(self.sandbox.hidden.iter().cloned());
        crate::tools::sandbox::SandboxSettings {
            confine_files: self.sandbox.confine_files,
            writable: self.sandbox.writable.clone(),
            hidden,
            network: self.sandbox.network,
            cpu_seconds: self.sandbox.cpu_seconds,
            file_size_bytes: mb(self.sandbox.file_size_mb),
            address_space_bytes: mb(self.sandbox.address_space_mb),
            processes: self.sandbox.processes,
            temp_root: self.data_dir.join("tmp"),
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("octo.db")
    }

    /// The configuration with every secret masked, for `octo config show`.
    pub fn masked(&self) -> Config {
        use crate::domain::secret::mask;
        let mut shown = self.clone();
        shown.token = shown.token.as_deref().map(mask);
        shown.webhook_secret = shown.webhook_secret.as_deref().map(mask);
        shown.cluster_token = shown.cluster_token.as_deref().map(mask);
        shown.database_url = shown
            .database_url
            .as_deref()
            .map(crate::domain::secret::mask_url);
        for model in shown.models.values_mut() {
            model.api_key = model.api_key.as_deref().map(mask);
        }
        for server in shown.mcp.values_mut() {
            for value in server.env.values_mut().chain(server.headers.values_mut()) {
                *value = mask(value);
            }
        }
        shown
    }

    /// [`Config::masked`] as TOML.
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(&self.masked())
            .unwrap_or_else(|err| format!("# cannot render: {err}\n"))
    }
}

/// A (validated) number of days as a duration.
fn days(days: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(days.clamp(0.0, 36_500.0) * 86_400.0)
}

/// Whether `key` (an `OCTO_*` variable without its prefix, any case) names a top-level
/// setting. Other `OCTO_*` variables (`OCTO_SERVER` of the client commands, a test
/// harness' `OCTO_BIN`) are not configuration and are left alone.
fn is_config_key(key: &str) -> bool {
    static KEYS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    })
    .iter()
    .any(|k| k.eq_ignore_ascii_case(key))
}

/// The commented default file `octo init` writes.
pub const DEFAULT_CONFIG_TOML: &str = r#"# Octo configuration. Every key can also be set as an OCTO_<KEY> environment variable
# (e.g. OCTO_LISTEN, OCTO_TOKEN) or, for some, a flag of `octo serve`; flags win over
# the environment, which wins over this file.

# Address serving gRPC, gRPC-Web and JSON/HTTP on one port.
# A non-loopback address requires `token`.
listen = "127.0.0.1:50051"

# Where the SQLite database lives. Default: $XDG_DATA_HOME/octo (~/.local/share/octo).
# data_dir = "/var/lib/octo"

# The database. Default: SQLite at <data_dir>/octo.db. Several servers on one Postgres
# form a cluster: postgres://user:password@host:5432/octo (or OCTO_DATABASE_URL).
# database_url = "postgres://octo:secret@db.internal:5432/octo"

# With a Postgres database_url: this server joins the cluster of servers on that
# database. The same secret on every server (e.g. `openssl rand -hex 32`).
# cluster_token = "..."
# Where the other servers reach this one. Default: http://<listen>.
# advertise_address = "http://10.0.0.5:50051"
# Seconds without a heartbeat before a server's sessions move to a live one.
lease_ttl_seconds = 10

# Session working dirs must resolve inside this directory. Default: <data_dir>/workspace.
# workspace_root = "/home/me/projects"

# Allow working dirs anywhere on the machine.
allow_any_working_dir = false

# Bearer token clients send as `authorization: Bearer <token>`.
# token = "change-me"

# Require the token on loopback addresses too.
require_token = false

# Largest request or response message in bytes.
max_message_bytes = 16777216

# Log filter (RUST_LOG wins when set).
log = "info"

# Seconds open requests and streams get to finish on shutdown.
shutdown_grace_seconds = 10

# Browser pages on other origins (scheme://host[:port]) allowed to call this server;
# its own origin always may. Empty: any other page gets 403, so a web page you visit
# cannot drive your agents. "*" allows every origin and needs `token`.
cors_allowed_origins = []

# Host names served on a loopback address besides localhost, 127.0.0.1 and [::1]
# (DNS rebinding protection: any other Host header is refused).
allowed_hosts = []

# Serve TLS on the one port (PEM files). Without TLS on a non-loopback address the
# token travels in clear text.
# tls_cert = "/etc/octo/cert.pem"
# tls_key = "/etc/octo/key.pem"

# Open connections and server streams (Chat, StreamEvents, WatchSessions) served at
# once; beyond them requests get RESOURCE_EXHAUSTED. Keep max_connections under the
# open-file limit (ulimit -n).
max_connections = 4096
max_streams = 8192

# Turns a session may queue behind the running one; model requests per turn; limits.
max_queue_depth = 16
max_steps = 50
tool_timeout_seconds = 600
# The environment variables tool commands (the shell) get from the server's: names, or
# prefixes ending in `*`. Never OCTO_* or a model's api_key_env, whatever this says.
tool_env = ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_*", "TERM", "TZ", "TMPDIR"]
max_tool_output_bytes = 65536
max_attachment_bytes = 10485760
# Events each live session keeps for streams to resume from: up to event_log_capacity
# events while it has subscribers, and only the newest event_log_bytes when it has none.
event_log_capacity = 4096
event_log_bytes = 65536
session_idle_seconds = 60

# The trash: DeleteSession (`octo sessions rm`) moves a session there, read-only and
# restorable (`octo sessions restore`); it is purged for good this many days later
# (fractions allowed), or at once with `octo sessions purge`.
trash_retention_days = 30.0
# Also purge sessions with no activity for this many days, in the trash or not.
# Off by default: sessions stay until deleted.
# session_retention_days = 365
# Seconds between retention passes (each purges at most 100 sessions).
retention_interval_seconds = 300

# Schedules: a fire time missed while the server was down runs once on start if it is at
# most this late (seconds); otherwise it is recorded as a skipped run.
schedule_misfire_grace_seconds = 3600

# Serve the web UI at http://<listen>/ (`octo serve --no-ui` turns it off).
ui = true

# A URL that receives every turn.finished and schedule_run.finished notification, signed
# per the Standard Webhooks spec with webhook_secret (whsec_ + base64 of random bytes).
# webhook_url = "https://example.com/octo-hooks"
# webhook_secret = "whsec_..."

# The model turns use when neither the message nor the session names one.
# default_model = "gpt"

# Timeouts and retries of model requests (retries happen only before the first token).
[provider]
connect_timeout_ms = 10000
idle_timeout_ms = 120000
max_attempts = 4
initial_backoff_ms = 500
max_backoff_ms = 20000

# Retries of webhook deliveries (kept in the database's outbox until delivered): 8
# attempts with delays doubling from 30 s span about an hour, long enough to ride out a
# receiver's restart or deploy; then the delivery is dead until an operator retries it
# (`octo webhooks retry`).
[webhooks]
max_attempts = 8
initial_backoff_ms = 30000
max_backoff_ms = 2400000
timeout_ms = 10000

# What tool commands (the shell) may do. Landlock (Linux 5.13+) confines files: writes
# only in the session's working dir, a private TMPDIR and `writable`; everything is
# readable but the data dir, this file and `hidden`. A cgroup per command, where the
# server may create one, kills every process a command started (setsid included) and
# holds `processes` even for root. 0 turns a limit off. `octo serve` logs at start what
# this host enforces.
[sandbox]
confine_files = true
writable = []
hidden = []
network = true
cpu_seconds = 3600
file_size_mb = 4096
address_space_mb = 0
processes = 1024

# Long conversations: when a request would fill more than `threshold` of the model's
# context window, the oldest messages are summarised by the model (or by `model`, the id
# of a smaller one, e.g. "mini") into one summary that later requests use in their
# place; the newest messages, up to `keep` of the window, stay as they are. History and
# export keep every original message. `octo sessions compact <id>` does it on demand.
[compaction]
threshold = 0.75
keep = 0.25
# model = "mini"

# The Files API (list, download and upload a session's working dir): the largest file
# served as a download and the largest file an upload may make, in bytes.
[files]
max_download_bytes = 67108864
max_upload_bytes = 16777216

# Models, by id (`models/<id>` in the API). `provider` is `openai` (any OpenAI-compatible
# chat completions API: OpenAI, DeepSeek, OpenRouter, Groq, Ollama, vLLM, LM Studio,
# LiteLLM), `anthropic`, or `mock` (built in, deterministic; `octo serve --demo` adds it).
# [models.gpt]
# provider = "openai"
# model = "gpt-4.1-mini"
# api_key_env = "OPENAI_API_KEY"
#
# [models.local]
# provider = "openai"
# model = "qwen2.5-coder:7b"
# base_url = "http://127.0.0.1:11434/v1"
#
# [models.claude]
# provider = "anthropic"
# model = "claude-sonnet-4-5"
# api_key_env = "ANTHROPIC_API_KEY"
# context_window = 200000

# Agent profiles, by id (`profiles/<id>` in the API): the reusable part of a session's
# setup. A new session takes its profile's values for the fields it leaves unset; one
# that names no profile takes `default_profile` (else the first profile added).
# `working_dir` may use {session}, {date} and {profile}. Added to the database at start
# when missing; managed with `octo profiles` after that.
# default_profile = "reviewer"
# [profiles.reviewer]
# display_name = "Code reviewer"
# system_prompt = "You review code changes. Be specific; never change files."
# model = "gpt"
# reasoning_effort = "high"
# permission_mode = "read_only"
# mcp_servers = []
# working_dir = "reviews/{date}/{session}"

# MCP tool servers, by id (`mcpServers/<id>` in the API): their tools are offered to the
# model as `<id>__<tool>`. A tool the server marks read-only runs without asking in ASK
# mode; any other asks first (and is not offered in READ_ONLY mode). A stdio server runs
# with the `tool_env` allow-list plus its own `env`; `env` and `headers` values are
# secrets (masked on read).
# [mcp.everything]
# command = "npx"
# args = ["-y", "@modelcontextprotocol/server-everything"]
#
# [mcp.remote]
# url = "https://mcp.example.com/mcp"
# headers = { Authorization = "Bearer ..." }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_parses_to_the_defaults() {
        let parsed: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(DEFAULT_CONFIG_TOML))
            .extract()
            .expect("default config parses");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn database_urls_are_checked_and_shown_masked() {
        let config = Config {
            database_url: Some("postgres://octo:hunter2@db:5432/octo".into()),
            ..Config::default()
        };
        assert!(config.validate().is_ok());
        let shown = config.to_masked_toml();
        assert!(
            shown.contains("postgres://octo:****@db:5432/octo"),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        let bad = Config {
            database_url: Some("mysql://octo:hunter2@db/octo".into()),
            ..Config::default()
        };
        let err = bad.validate().expect_err("not a database URL").to_string();
        assert!(
            err.contains("database_url") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn ui_is_on_by_default_and_off_by_file_or_flag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "").expect("write");
        assert!(
            Config::load(Some(&path), &Overrides::default())
                .expect("load")
                .ui
        );
        let no_ui = Overrides {
            ui: Some(false),
            ..Overrides::default()
        };
        assert!(!Config::load(Some(&path), &no_ui).expect("load").ui);
        std::fs::write(&path, "ui = false\n").expect("write");
        assert!(
            !Config::load(Some(&path), &Overrides::default())
                .expect("load")
                .ui
        );
    }

    #[test]
    fn overrides_win_over_file_and_unknown_keys_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nlog = \"debug\"\n").expect("write");
        let overrides = Overrides {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 2))),
            ..Overrides::default()
        };
        let config = Config::load(Some(&path), &overrides).expect("load");
        assert_eq!(config.listen.port(), 2);
        assert_eq!(config.log, "debug");

        std::fs::write(&path, "listn = \"127.0.0.1:1\"\n").expect("write");
        let err = Config::load(Some(&path), &Overrides::default()).expect_err("typo rejected");
        assert!(err.to_string().contains("listn"), "{err}");
    }

    #[test]
    fn mcp_tables_become_servers_and_mixed_ones_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[mcp.files]\ncommand = \"npx\"\nargs = [\"-y\", \"server\"]\nenv = { TOKEN = \"secret-0123456789\" }\n\n\
             [mcp.remote]\nurl = \"https://mcp.example.com/mcp\"\nenabled = false\n",
        )
        .expect("write");
        let config = Config::load(Some(&path), &Overrides::default()).expect("load");
        let files = config.mcp["files"].to_server("files").expect("stdio");
        assert_eq!(files.transport_name(), "stdio");
        assert!(files.enabled);
        let remote = config.mcp["remote"].to_server("remote").expect("http");
        assert_eq!(remote.transport_name(), "http");
        assert!(!remote.enabled);
        assert!(!config.to_masked_toml().contains("secret-0123456789"));

        std::fs::write(
            &path,
            "[mcp.both]\ncommand = \"a\"\nurl = \"http://h/mcp\"\n",
        )
        .expect("write");
        let err = Config::load(Some(&path), &Overrides::default()).expect_err("both");
        assert!(err.to_string().contains("mcp.both"), "{err}");
        std::fs::write(&path, "[mcp.Bad]\ncommand = \"a\"\n").expect("write");
        let err = Config::load(Some(&path), &Overrides::default()).expect_err("bad id");
        assert!(err.to_string().contains("mcp.Bad"), "{err}");
    }
}
