//! One resolved configuration: built-in defaults, then the TOML file, then `OCTO_*`
//! environment variables, then command-line flags, later sources winning.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

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
    /// Origins allowed for browser (CORS) requests; `*` allows any.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: default_data_dir(),
            workspace_root: None,
            allow_any_working_dir: false,
            token: None,
            require_token: false,
            max_message_bytes: 16 * 1024 * 1024,
            log: "info".to_owned(),
            shutdown_grace_seconds: 10,
            cors_allowed_origins: vec!["*".to_owned()],
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
    pub workspace_root: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_token: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
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
            .merge(Env::prefixed("OCTO_").ignore(&["config", "server"]))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_message_bytes < 1024 {
            return Err(ConfigError::Rule(
                "max_message_bytes must be at least 1024".into(),
            ));
        }
        if matches!(&self.token, Some(token) if token.trim().is_empty()) {
            return Err(ConfigError::Rule("token must not be empty when set".into()));
        }
        Ok(())
    }

    /// The directory working dirs are confined to.
    pub fn workspace_root(&self) -> PathBuf {
        self.workspace_root
            .clone()
            .unwrap_or_else(|| self.data_dir.join("workspace"))
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("octo.db")
    }

    /// The configuration as TOML with secrets masked, for `octo config show`.
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.token = shown.token.as_deref().map(crate::domain::secret::mask);
        toml::to_string_pretty(&shown).unwrap_or_else(|err| format!("# cannot render: {err}\n"))
    }
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

# Origins allowed for browser requests (CORS); "*" allows any.
cors_allowed_origins = ["*"]
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
}
