//! `octo config show|path` and `octo init`: the configuration file, no server involved.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::config::{Config, DEFAULT_CONFIG_TOML, Overrides, default_config_path};

/// `--config PATH` (or `OCTO_CONFIG`), shared by the commands that read the file.
#[derive(Args, Clone, Debug, Default, PartialEq)]
pub struct ConfigPathArg {
    /// Configuration file [default: $XDG_CONFIG_HOME/octo/config.toml]
    #[arg(long = "config", env = "OCTO_CONFIG", value_name = "PATH")]
    pub path: Option<PathBuf>,
}

impl ConfigPathArg {
    /// The file that is (or would be) read.
    pub fn resolve(&self) -> PathBuf {
        self.path.clone().unwrap_or_else(default_config_path)
    }
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the resolved configuration (file, OCTO_* environment, defaults), token masked.
    Show(ConfigPathArg),
    /// Print the path of the configuration file that would be used.
    Path(ConfigPathArg),
}

#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    pub config: ConfigPathArg,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: ConfigArgs, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    match args.command {
        ConfigCommand::Show(path) => show(&path, json, out),
        ConfigCommand::Path(path) => {
            let path = path.resolve();
            if json {
                let value = serde_json::json!({
                    "path": path.display().to_string(),
                    "exists": path.exists(),
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            } else {
                writeln!(out, "{}", path.display())?;
            }
            Ok(())
        }
    }
}

fn show(path: &ConfigPathArg, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = Config::load(Some(&path.resolve()), &Overrides::default())?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&config.masked())?)?;
    } else {
        write!(out, "{}", config.to_masked_toml())?;
    }
    Ok(())
}

/// Writes the commented default configuration to the config path.
pub fn init(args: InitArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let path = args.config.resolve();
    write_default_config(&path, args.force)?;
    writeln!(out, "Wrote the default configuration to {}", path.display())?;
    Ok(())
}

fn write_default_config(path: &Path, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        bail!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        );
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        // The file may come to hold the token: readable by its owner only.
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(DEFAULT_CONFIG_TOML.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_the_default_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/dir/config.toml");
        let args = |force| InitArgs {
            config: ConfigPathArg {
                path: Some(path.clone()),
            },
            force,
        };

        let mut out = Vec::new();
        init(args(false), &mut out).expect("first init");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            DEFAULT_CONFIG_TOML
        );
        assert!(String::from_utf8_lossy(&out).contains("config.toml"));

        std::fs::write(&path, "log = \"debug\"\n").expect("write");
        let err = init(args(false), &mut Vec::new()).expect_err("exists");
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "log = \"debug\"\n"
        );

        init(args(true), &mut Vec::new()).expect("forced");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            DEFAULT_CONFIG_TOML
        );
    }

    #[test]
    fn show_masks_the_token_and_path_prints_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "token = \"a-very-long-secret-token\"\n").expect("write");
        let arg = ConfigPathArg {
            path: Some(path.clone()),
        };

        let mut out = Vec::new();
        show(&arg, false, &mut out).expect("show");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("****"), "{text}");
        assert!(!text.contains("a-very-long-secret-token"), "{text}");

        let mut out = Vec::new();
        let args = ConfigArgs {
            command: ConfigCommand::Path(arg),
        };
        run(args, false, &mut out).expect("path");
        assert_eq!(
            String::from_utf8(out).expect("utf8").trim_end(),
            path.display().to_string()
        );
    }
}
