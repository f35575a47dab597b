//! The `octo` command line: `serve` and the client subcommands.
