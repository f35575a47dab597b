//! `octo mcp ...`: MCP tool servers through the generated McpServerService client:
//! `add ID -- COMMAND [ARGS...]` (stdio) or `add ID --url URL` (Streamable HTTP),
//! `list`, `show ID`, `rm ID`, and `tools [ID] [--session S]`.
//!
//! Secrets stay off the command line where possible: `--env NAME` (no `=`) takes the
//! value of NAME from this command's own environment, `--header-env NAME=VAR` a header's
//! value from the variable VAR. Reads show them masked.

use std::io::Write;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use super::{
    GlobalArgs,
    client::Client,
    names::{resource_id, resource_name, session_name},
    output::{self, Column, Table, enum_label, long_time, now_unix, write_fields},
};
use crate::pb;

const COLLECTION: &str = "mcpServers";

#[derive(Args, Debug, PartialEq)]
pub struct McpArgs {
    #[command(subcommand)]
    pub command: McpCommand,
}

#[derive(Subcommand, Debug, PartialEq)]
pub enum McpCommand {
    /// Add an MCP server: `add ID -- COMMAND [ARGS...]` or `add ID --url URL`
    Add(AddArgs),
    /// List MCP servers with their connection state
    #[command(visible_alias = "ls")]
    List,
    /// Show one MCP server
    Show {
        /// Server id or `mcpServers/{id}`
        id: String,
    },
    /// Stop and delete an MCP server
    #[command(visible_alias = "delete")]
    Rm {
        /// Server id or `mcpServers/{id}`
        id: String,
    },
    /// List tools with their source and permission: every tool, one server's, or what a
    /// session is offered
    Tools {
        /// Only this server's tools
        id: Option<String>,
        /// Only what this session's turns are offered (its permission mode decides)
        #[arg(long, value_name = "SESSION")]
        session: Option<String>,
    },
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct AddArgs {
    /// The server's id: the prefix of its tools (`ID__tool`)
    pub id: String,
    /// The Streamable HTTP endpoint (instead of a command)
    #[arg(long, value_name = "URL", conflicts_with_all = ["env", "working_dir"])]
    pub url: Option<String>,
    /// An HTTP header, NAME=VALUE (repeatable)
    #[arg(long = "header", value_name = "NAME=VALUE", requires = "url")]
    pub headers: Vec<String>,
    /// An HTTP header whose value is this command's environment variable VAR
    #[arg(long = "header-env", value_name = "NAME=VAR", requires = "url")]
    pub header_env: Vec<String>,
    /// A variable for the server's process, NAME=VALUE, or NAME to pass this command's
    /// own value (repeatable)
    #[arg(long, value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// The server's working directory (absolute; default: the workspace root)
    #[arg(long, value_name = "DIR")]
    pub working_dir: Option<String>,
    /// Human-readable name
    #[arg(long = "name", value_name = "TEXT")]
    pub display_name: Option<String>,
    /// Add it without starting it
    #[arg(long)]
    pub disabled: bool,
    /// The command and its arguments (after `--`)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub async fn run(
    args: McpArgs,
    global: &GlobalArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    // Validate before connecting, so mistakes fail fast even without a server.
    let add = match &args.command {
        McpCommand::Add(add) => Some(add_request(add, &|name| std::env::var(name).ok())?),
        McpCommand::Show { id }
        | McpCommand::Rm { id }
        | McpCommand::Tools { id: Some(id), .. } => {
            resource_name(COLLECTION, id)?;
            None
        }
        _ => None,
    };
    let client = global.connect().await?;
    execute(&client, args.command, add, global.json, out).await
}

async fn execute(
    client: &Client,
    command: McpCommand,
    add: Option<pb::CreateMcpServerRequest>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let mut mcp = client.mcp_servers();
    match command {
        McpCommand::Add(_) => {
            let request = add.context("the add request")?;
            let server = mcp.create_mcp_server(request).await?.into_inner();
            if json {
                return output::write_json(out, &server);
            }
            writeln!(out, "Added {}.", server.name)?;
            write_server(out, &server)?;
        }
        McpCommand::List => {
            let all = mcp
                .list_mcp_servers(pb::ListMcpServersRequest {})
                .await?
                .into_inner();
            if json {
                return output::write_json(out, &all);
            }
            if all.mcp_servers.is_empty() {
                writeln!(out, "No MCP servers.")?;
                return Ok(());
            }
            server_table(&all.mcp_servers).render(out)?;
        }
        McpCommand::Show { id } => {
            let server = mcp
                .get_mcp_server(pb::GetMcpServerRequest {
                    name: resource_name(COLLECTION, &id)?,
                })
                .await?
                .into_inner();
            if json {
                return output::write_json(out, &server);
            }
            write_server(out, &server)?;
        }
        McpCommand::Rm { id } => {
            let name = resource_name(COLLECTION, &id)?;
            mcp.delete_mcp_server(pb::DeleteMcpServerRequest {
                name: name.clone(),
                etag: String::new(),
            })
            .await?;
            if !json {
                writeln!(out, "Deleted {name}.")?;
            }
        }
        McpCommand::Tools { id, session } => {
            let request = pb::ListToolsRequest {
                mcp_server: id
                    .map(|id| resource_name(COLLECTION, &id))
                    .transpose()?
                    .unwrap_or_default(),
                session: session
                    .map(|s| session_name(&s))
                    .transpose()?
                    .unwrap_or_default(),
            };
            let tools = mcp.list_tools(request).await?.into_inner();
            if json {
                return output::write_json(out, &tools);
            }
            if tools.tools.is_empty() {
                writeln!(out, "No tools.")?;
                return Ok(());
            }
            tool_table(&tools.tools).render(out)?;
        }
    }
    Ok(())
}

/// The CreateMcpServer request `add` sends; `lookup` reads this command's environment.
fn add_request(
    args: &AddArgs,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<pb::CreateMcpServerRequest> {
    let transport = match (&args.url, args.command.split_first()) {
        (Some(url), None) => {
            let mut headers = std::collections::HashMap::new();
            for header in &args.headers {
                let Some((name, value)) = header.split_once('=') else {
                    bail!("--header {header:?}: expected NAME=VALUE");
                };
                headers.insert(name.trim().to_owned(), value.to_owned());
            }
            for header in &args.header_env {
                let Some((name, var)) = header.split_once('=') else {
                    bail!("--header-env {header:?}: expected NAME=VAR");
                };
                let value = lookup(var)
                    .with_context(|| format!("--header-env {name}: ${var} is not set"))?;
                headers.insert(name.trim().to_owned(), value);
            }
            pb::mcp_server::Transport::Http(pb::HttpTransport {
                url: url.clone(),
                headers,
            })
        }
        (None, Some((command, rest))) => {
            let mut env = std::collections::HashMap::new();
            for var in &args.env {
                let (name, value) = match var.split_once('=') {
                    Some((name, value)) => (name.to_owned(), value.to_owned()),
                    None => (
                        var.clone(),
                        lookup(var).with_context(|| format!("--env {var}: ${var} is not set"))?,
                    ),
                };
                env.insert(name, value);
            }
            pb::mcp_server::Transport::Stdio(pb::StdioTransport {
                command: command.clone(),
                args: rest.to_vec(),
                env,
                working_dir: args.working_dir.clone().unwrap_or_default(),
            })
        }
        (Some(_), Some(_)) => bail!("give either --url or a command after `--`, not both"),
        (None, None) => bail!("give the server's command after `--` (or --url URL)"),
    };
    Ok(pb::CreateMcpServerRequest {
        mcp_server: Some(pb::McpServer {
            display_name: args.display_name.clone().unwrap_or_default(),
            disabled: args.disabled,
            transport: Some(transport),
            ..Default::default()
        }),
        mcp_server_id: args.id.clone(),
    })
}

fn state_label(server: &pb::McpServer) -> String {
    server.status.as_ref().map_or_else(String::new, |s| {
        enum_label(s.state().as_str_name(), "MCP_SERVER_STATE_")
    })
}

fn endpoint(server: &pb::McpServer) -> (String, String) {
    match &server.transport {
        Some(pb::mcp_server::Transport::Stdio(stdio)) => {
            let mut line = stdio.command.clone();
            for arg in &stdio.args {
                line.push(' ');
                line.push_str(arg);
            }
            ("stdio".into(), line)
        }
        Some(pb::mcp_server::Transport::Http(http)) => ("http".into(), http.url.clone()),
        None => ("-".into(), String::new()),
    }
}

fn server_table(servers: &[pb::McpServer]) -> Table {
    let mut table = Table::new([
        Column::left("ID"),
        Column::left("STATE"),
        Column::right("TOOLS"),
        Column::left("TRANSPORT"),
        Column::left("ENDPOINT").max_width(50),
        Column::left("ERROR").max_width(60),
    ]);
    for server in servers {
        let status = server.status.clone().unwrap_or_default();
        let (transport, endpoint) = endpoint(server);
        table.push_row([
            resource_id(COLLECTION, &server.name).to_owned(),
            state_label(server),
            status.tool_count.to_string(),
            transport,
            endpoint,
            if status.error.is_empty() {
                "-".to_owned()
            } else {
                status.error.lines().next().unwrap_or_default().to_owned()
            },
        ]);
    }
    table
}

fn write_server(out: &mut dyn Write, server: &pb::McpServer) -> std::io::Result<()> {
    let now = now_unix();
    let status = server.status.clone().unwrap_or_default();
    let (transport, endpoint) = endpoint(server);
    let secrets = match &server.transport {
        Some(pb::mcp_server::Transport::Stdio(stdio)) => &stdio.env,
        Some(pb::mcp_server::Transport::Http(http)) => &http.headers,
        None => &std::collections::HashMap::new(),
    };
    let mut secrets: Vec<String> = secrets.iter().map(|(k, v)| format!("{k}={v}")).collect();
    secrets.sort();
    write_fields(
        out,
        &[
            ("Name", server.name.clone()),
            ("Display name", server.display_name.clone()),
            ("State", state_label(server)),
            ("Tools", status.tool_count.to_string()),
            ("Restarts", status.restarts.to_string()),
            ("Error", status.error.clone()),
            ("Transport", transport.clone()),
            (
                if transport == "http" {
                    "URL"
                } else {
                    "Command"
                },
                endpoint,
            ),
            (
                if transport == "http" {
                    "Headers"
                } else {
                    "Env"
                },
                secrets.join(" "),
            ),
            ("Created", long_time(server.create_time.as_ref(), now)),
        ],
    )
}

fn tool_table(tools: &[pb::Tool]) -> Table {
    let mut table = Table::new([
        Column::left("NAME"),
        Column::left("PERMISSION"),
        Column::left("SOURCE"),
        Column::left("DESCRIPTION").max_width(60),
    ]);
    for tool in tools {
        table.push_row([
            tool.name.clone(),
            enum_label(tool.permission().as_str_name(), "TOOL_PERMISSION_"),
            tool.source.clone(),
            tool.description
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> McpCommand {
        let cli = Cli::try_parse_from(std::iter::once("octo").chain(args.iter().copied()))
            .expect("parses");
        match cli.command {
            Command::Mcp(args) => args.command,
            other => panic!("not mcp: {other:?}"),
        }
    }

    #[test]
    fn add_builds_stdio_and_http_requests_with_secrets_from_the_environment() {
        let McpCommand::Add(add) = parse(&[
            "mcp",
            "add",
            "files",
            "--env",
            "TOKEN",
            "--env",
            "MODE=fast",
            "--",
            "npx",
            "-y",
            "server",
            "--flag",
        ]) else {
            panic!("add");
        };
        let lookup = |name: &str| (name == "TOKEN").then(|| "from-env".to_owned());
        let request = add_request(&add, &lookup).expect("request");
        assert_eq!(request.mcp_server_id, "files");
        let Some(pb::mcp_server::Transport::Stdio(stdio)) =
            request.mcp_server.expect("server").transport
        else {
            panic!("stdio");
        };
        assert_eq!(stdio.command, "npx");
        assert_eq!(stdio.args, ["-y", "server", "--flag"]);
        assert_eq!(stdio.env["TOKEN"], "from-env");
        assert_eq!(stdio.env["MODE"], "fast");

        let McpCommand::Add(add) = parse(&[
            "mcp",
            "add",
            "remote",
            "--url",
            "https://mcp.example.com/mcp",
            "--header-env",
            "Authorization=AUTH",
            "--header",
            "X-Team=core",
        ]) else {
            panic!("add");
        };
        let lookup = |name: &str| (name == "AUTH").then(|| "Bearer t".to_owned());
        let request = add_request(&add, &lookup).expect("request");
        let Some(pb::mcp_server::Transport::Http(http)) =
            request.mcp_server.expect("server").transport
        else {
            panic!("http");
        };
        assert_eq!(http.headers["Authorization"], "Bearer t");
        assert_eq!(http.headers["X-Team"], "core");

        let McpCommand::Add(add) = parse(&["mcp", "add", "x", "--env", "MISSING", "--", "c"])
        else {
            panic!("add");
        };
        assert!(add_request(&add, &|_| None).is_err(), "an unset variable");
        let McpCommand::Add(add) = parse(&["mcp", "add", "x"]) else {
            panic!("add");
        };
        assert!(
            add_request(&add, &|_| None).is_err(),
            "neither command nor url"
        );
    }

    #[test]
    fn list_show_rm_and_tools_parse() {
        assert_eq!(parse(&["mcp", "ls"]), McpCommand::List);
        assert_eq!(
            parse(&["mcp", "rm", "files"]),
            McpCommand::Rm { id: "files".into() }
        );
        assert_eq!(
            parse(&["mcp", "tools", "files", "--session", "abc"]),
            McpCommand::Tools {
                id: Some("files".into()),
                session: Some("abc".into())
            }
        );
    }
}
