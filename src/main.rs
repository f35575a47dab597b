//! The `octo` binary: see `octo::cli`.

use std::{io::Write, process::ExitCode};

use clap::Parser;
use octo::cli::{Cli, describe_error, is_broken_pipe, run};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut stdout = std::io::stdout();
    match run(cli, &mut stdout).await {
        Ok(()) => ExitCode::SUCCESS,
        // Output piped into `head` and the like: nothing worth saying.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = stdout.flush();
            let _ = std::io::stderr().write_all(describe_error(&err).as_bytes());
            ExitCode::FAILURE
        }
    }
}
