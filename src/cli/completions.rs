//! `octo completions <shell>` and `octo man`: generated from the clap definitions the
//! binary parses with, so they never drift from the real flags.

use std::io::Write;

use clap::{Args, CommandFactory, ValueEnum};

use super::Cli;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    #[value(name = "powershell")]
    PowerShell,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for, e.g. `octo completions bash > /etc/bash_completion.d/octo`
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Writes the completion script for `args.shell`.
pub fn completions(args: CompletionsArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    use clap_complete::Shell as S;
    let shell = match args.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::PowerShell => S::PowerShell,
    };
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "octo", out);
    Ok(())
}

/// Writes the man page (roff), subcommands included: `octo man | man -l -`.
pub fn man(out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let command = Cli::command();
    clap_mangen::Man::new(command.clone()).render(out)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        // clap names are 'static: a man page per subcommand is made once per call.
        let name: &'static str = format!("octo-{}", sub.get_name()).leak();
        let sub = sub.clone().name(name).bin_name(name);
        writeln!(out)?;
        clap_mangen::Man::new(sub).render(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(write: impl FnOnce(&mut Vec<u8>) -> anyhow::Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).expect("generated");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn completions_know_the_subcommands_and_their_flags() {
        let bash = text(|out| completions(CompletionsArgs { shell: Shell::Bash }, out));
        for word in ["sessions", "schedules", "run", "--on-busy", "--timeout"] {
            assert!(bash.contains(word), "bash completion lacks {word}");
        }
        let fish = text(|out| completions(CompletionsArgs { shell: Shell::Fish }, out));
        assert!(
            fish.contains("complete -c octo"),
            "{}",
            &fish[..200.min(fish.len())]
        );
    }

    #[test]
    fn the_man_page_documents_every_subcommand() {
        let page = text(|out| man(out));
        assert!(page.starts_with(".ie") || page.contains(".TH octo"), "roff");
        for sub in ["octo-serve", "octo-sessions", "octo-run", "octo-webhooks"] {
            assert!(page.contains(&format!(".TH {sub}")), "man page lacks {sub}");
        }
    }
}
