//! The environment a tool's process gets: an allow-list, not the server's environment.
//! The server's environment holds what a model must never see (provider API keys named
//! by `api_key_env`, `OCTO_TOKEN` and the other `OCTO_*` settings, whatever else the
//! operator exported), and a model can print its environment with one `env` call.
//!
//! Names in the list are exact (`PATH`) or a prefix ending in `*` (`LC_*`). Whatever
//! the list says, `OCTO_*` and the variables named as secrets (API keys) are left out.
//! The values are read once, when the server starts.

use std::{ffi::OsString, sync::Arc};

/// What tool commands get by default: enough for a shell, a locale and a home.
pub const DEFAULT_ALLOWED: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_*", "TERM", "TZ", "TMPDIR",
];

/// The variables tool processes run with, computed once.
#[derive(Clone, Debug, Default)]
pub struct ToolEnv(Arc<[(OsString, OsString)]>);

impl ToolEnv {
    /// The variables of `vars` that `allowed` names, less `OCTO_*` and `secrets`.
    pub fn new(
        vars: impl IntoIterator<Item = (OsString, OsString)>,
        allowed: &[String],
        secrets: &[String],
    ) -> Self {
        let matches = |name: &[u8]| {
            allowed
                .iter()
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix.as_bytes()),
                    None => name == pattern.as_bytes(),
                })
        };
        let kept = vars
            .into_iter()
            .filter(|(name, _)| {
                let bytes = name.as_encoded_bytes();
                matches(bytes)
                    && !bytes.starts_with(b"OCTO_")
                    && !secrets.iter().any(|s| s.as_bytes() == bytes)
            })
            .collect::<Vec<_>>();
        ToolEnv(kept.into())
    }

    /// From this process's environment.
    pub fn from_process(allowed: &[String], secrets: &[String]) -> Self {
        Self::new(std::env::vars_os(), allowed, secrets)
    }

    pub fn vars(&self) -> impl Iterator<Item = (&OsString, &OsString)> {
        self.0.iter().map(|(name, value)| (name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(env: &ToolEnv) -> Vec<String> {
        env.vars()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn keeps_only_what_the_list_names_and_never_secrets_or_server_settings() {
        let vars = [
            "PATH",
            "HOME",
            "LC_ALL",
            "LC_TIME",
            "OPENAI_API_KEY",
            "OCTO_TOKEN",
            "OCTO_X",
            "AWS_SECRET_ACCESS_KEY",
            "MY_KEY",
        ]
        .map(|name| (OsString::from(name), OsString::from("v")));
        let allowed: Vec<String> = ["PATH", "HOME", "LC_*", "OCTO_*", "MY_KEY"]
            .map(String::from)
            .into();
        let env = ToolEnv::new(vars, &allowed, &["MY_KEY".to_owned()]);
        assert_eq!(names(&env), ["PATH", "HOME", "LC_ALL", "LC_TIME"]);
    }
}
