//! `octo triggers ...`: inbound triggers through the generated TriggerService client:
//! `add ID [--github] [--secret-stdin] [--profile P | --session S] [--prompt TEMPLATE]`,
//! `list`, `show ID`, `rm ID` and `deliveries ID`.
//!
//! `add` generates the signing secret unless `--secret-stdin` gives one (Standard
//! Webhooks: a `whsec_` secret of 32 random bytes; GitHub: 32 random bytes in hex) and
//! prints it once, with the URL to call: the server shows only a masked hint after.

use std::io::{self, BufRead as _, IsTerminal as _, Write};

use anyhow::{Context as _, bail};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use clap::{Args, Subcommand};

use super::{
    GlobalArgs,
    client::Client,
    names::{profile_name, resource_id, resource_name, session_name},
    output::{self, Column, Table, enum_label, long_time, now_unix, short_time, write_fields},
};
use crate::pb;

const COLLECTION: &str = "triggers";

#[derive(Args, Debug, PartialEq)]
pub struct TriggersArgs {
    #[command(subcommand)]
    pub command: TriggersCommand,
}

#[derive(Subcommand, Debug, PartialEq)]
pub enum TriggersCommand {
    /// Add a trigger and print its URL and (once) its secret
    Add(AddArgs),
    /// List triggers
    #[command(visible_alias = "ls")]
    List,
    /// Show one trigger (its secret masked)
    Show {
        /// Trigger id or `triggers/{id}`
        id: String,
    },
    /// Delete a trigger and its delivery log
    #[command(visible_alias = "delete")]
    Rm {
        /// Trigger id or `triggers/{id}`
        id: String,
    },
    /// List a trigger's deliveries (verified calls), newest first
    Deliveries {
        /// Trigger id or `triggers/{id}`
        id: String,
        /// Deliveries per page (server default 50, at most 500)
        #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
        limit: Option<i32>,
    },
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct AddArgs {
    /// The trigger's id (a-z, 0-9, -): its URL is /hooks/{id}
    pub id: String,
    /// Human-readable name
    #[arg(long = "name", value_name = "TEXT")]
    pub display_name: Option<String>,
    /// Calls are signed the GitHub way (X-Hub-Signature-256) rather than per Standard
    /// Webhooks
    #[arg(long)]
    pub github: bool,
    /// Read the signing secret from the first line of stdin [default: generate one]
    #[arg(long)]
    pub secret_stdin: bool,
    /// Each call creates a session from this profile (id or `profiles/{id}`) [default:
    /// the default profile]
    #[arg(long, short = 'p', value_name = "PROFILE", conflicts_with = "session")]
    pub profile: Option<String>,
    /// Every call's turn goes to this session instead (id or `sessions/{id}`)
    #[arg(long, short, value_name = "SESSION")]
    pub session: Option<String>,
    /// The prompt: text with {{payload.some.field}}, {{payload}} and {{event}}
    /// [default: {{payload}}]
    #[arg(long, value_name = "TEMPLATE")]
    pub prompt: Option<String>,
    /// Add it disabled (calls are refused until it is enabled)
    #[arg(long)]
    pub disabled: bool,
}

/// A new random secret of the scheme.
fn generate_secret(github: bool) -> String {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).unwrap_or_else(|e| panic!("no random bytes for a secret: {e}"));
    if github {
        key.iter().map(|b| format!("{b:02x}")).collect()
    } else {
        format!("whsec_{}", STANDARD.encode(key))
    }
}

fn read_secret_from_stdin() -> anyhow::Result<String> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        eprint!("Signing secret (the input is echoed): ");
        let _ = io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let secret = line.trim();
    if secret.is_empty() {
        bail!("--secret-stdin: no secret on stdin");
    }
    Ok(secret.to_owned())
}

/// The CreateTrigger request `add` sends.
fn add_request(args: &AddArgs, secret: String) -> anyhow::Result<pb::CreateTriggerRequest> {
    if args.id.contains('/') {
        bail!("give the trigger's id (e.g. github-issues), not a name");
    }
    Ok(pb::CreateTriggerRequest {
        trigger: Some(pb::Trigger {
            display_name: args.display_name.clone().unwrap_or_default(),
            disabled: args.disabled,
            signature_scheme: if args.github {
                pb::SignatureScheme::Github
            } else {
                pb::SignatureScheme::StandardWebhooks
            } as i32,
            secret,
            profile: args
                .profile
                .as_deref()
                .map(profile_name)
                .transpose()?
                .unwrap_or_default(),
            session: args
                .session
                .as_deref()
                .map(session_name)
                .transpose()?
                .unwrap_or_default(),
            prompt_template: args.prompt.clone().unwrap_or_default(),
            ..Default::default()
        }),
        trigger_id: args.id.clone(),
    })
}

pub async fn run(
    args: TriggersArgs,
    global: &GlobalArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    // Validate before connecting, so mistakes fail fast even without a server.
    let add = match &args.command {
        TriggersCommand::Add(add) => {
            let secret = if add.secret_stdin {
                read_secret_from_stdin()?
            } else {
                generate_secret(add.github)
            };
            Some((add_request(add, secret.clone())?, !add.secret_stdin))
        }
        TriggersCommand::Show { id }
        | TriggersCommand::Rm { id }
        | TriggersCommand::Deliveries { id, .. } => {
            resource_name(COLLECTION, id)?;
            None
        }
        TriggersCommand::List => None,
    };
    let client = global.connect().await?;
    execute(&client, args.command, add, global.json, out).await
}

async fn execute(
    client: &Client,
    command: TriggersCommand,
    add: Option<(pb::CreateTriggerRequest, bool)>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let mut triggers = client.triggers();
    match command {
        TriggersCommand::Add(_) => {
            let (request, generated) = add.context("the add request")?;
            let secret = request
                .trigger
                .as_ref()
                .map(|t| t.secret.clone())
                .unwrap_or_default();
            let mut created = triggers.create_trigger(request).await?.into_inner();
            let url = format!("{}{}", client.url().trim_end_matches('/'), created.url_path);
            if json {
                // The one time the secret is shown: the caller generated or gave it.
                created.secret = secret;
                return output::write_json(out, &created);
            }
            writeln!(out, "Added {}.", created.name)?;
            write_trigger(out, &created, &url)?;
            if generated {
                writeln!(
                    out,
                    "Secret: {secret}\n(shown once: the server shows only a masked hint; sign \
                     calls with it)"
                )?;
            }
        }
        TriggersCommand::List => {
            let mut all = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = triggers
                    .list_triggers(pb::ListTriggersRequest {
                        page_size: 500,
                        page_token,
                    })
                    .await?
                    .into_inner();
                all.extend(page.triggers);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            if json {
                return output::write_json(
                    out,
                    &pb::ListTriggersResponse {
                        triggers: all,
                        next_page_token: String::new(),
                    },
                );
            }
            if all.is_empty() {
                writeln!(out, "No triggers.")?;
                return Ok(());
            }
            trigger_table(&all).render(out)?;
        }
        TriggersCommand::Show { id } => {
            let trigger = triggers
                .get_trigger(pb::GetTriggerRequest {
                    name: resource_name(COLLECTION, &id)?,
                })
                .await?
                .into_inner();
            if json {
                return output::write_json(out, &trigger);
            }
            let url = format!("{}{}", client.url().trim_end_matches('/'), trigger.url_path);
            write_trigger(out, &trigger, &url)?;
        }
        TriggersCommand::Rm { id } => {
            let name = resource_name(COLLECTION, &id)?;
            triggers
                .delete_trigger(pb::DeleteTriggerRequest {
                    name: name.clone(),
                    etag: String::new(),
                })
                .await?;
            if !json {
                writeln!(out, "Deleted {name}.")?;
            }
        }
        TriggersCommand::Deliveries { id, limit } => {
            let page = triggers
                .list_trigger_deliveries(pb::ListTriggerDeliveriesRequest {
                    parent: resource_name(COLLECTION, &id)?,
                    page_size: limit.unwrap_or(0),
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            if json {
                return output::write_json(out, &page);
            }
            if page.trigger_deliveries.is_empty() {
                writeln!(out, "No deliveries.")?;
                return Ok(());
            }
            delivery_table(&page.trigger_deliveries).render(out)?;
        }
    }
    Ok(())
}

fn scheme_label(trigger: &pb::Trigger) -> String {
    match pb::SignatureScheme::try_from(trigger.signature_scheme) {
        Ok(pb::SignatureScheme::Github) => "github".to_owned(),
        _ => "standard-webhooks".to_owned(),
    }
}

fn target_label(trigger: &pb::Trigger) -> String {
    if !trigger.session.is_empty() {
        trigger.session.clone()
    } else if !trigger.profile.is_empty() {
        format!("new session ({})", trigger.profile)
    } else {
        "new session (default profile)".to_owned()
    }
}

fn trigger_table(triggers: &[pb::Trigger]) -> Table {
    let mut table = Table::new([
        Column::left("ID"),
        Column::left("ENABLED"),
        Column::left("SIGNATURE"),
        Column::left("TARGET").max_width(50),
        Column::left("PATH"),
    ]);
    for trigger in triggers {
        table.push_row([
            resource_id(COLLECTION, &trigger.name).to_owned(),
            if trigger.disabled { "no" } else { "yes" }.to_owned(),
            scheme_label(trigger),
            target_label(trigger),
            trigger.url_path.clone(),
        ]);
    }
    table
}

fn write_trigger(out: &mut dyn Write, trigger: &pb::Trigger, url: &str) -> std::io::Result<()> {
    let now = now_unix();
    write_fields(
        out,
        &[
            ("Name", trigger.name.clone()),
            ("Display name", trigger.display_name.clone()),
            (
                "Enabled",
                if trigger.disabled { "no" } else { "yes" }.to_owned(),
            ),
            ("URL", format!("POST {url}")),
            ("Signature", scheme_label(trigger)),
            ("Secret", trigger.secret.clone()),
            ("Target", target_label(trigger)),
            (
                "Prompt",
                if trigger.prompt_template.is_empty() {
                    "{{payload}}".to_owned()
                } else {
                    trigger.prompt_template.clone()
                },
            ),
            ("Created", long_time(trigger.create_time.as_ref(), now)),
        ],
    )
}

fn delivery_table(deliveries: &[pb::TriggerDelivery]) -> Table {
    let now = now_unix();
    let mut table = Table::new([
        Column::left("RECEIVED"),
        Column::left("STATUS"),
        Column::left("EVENT"),
        Column::left("MESSAGE ID").max_width(36),
        Column::left("SESSION"),
        Column::left("ERROR").max_width(60),
    ]);
    for d in deliveries {
        table.push_row([
            short_time(d.receive_time.as_ref(), now),
            enum_label(d.status().as_str_name(), "TRIGGER_DELIVERY_STATUS_"),
            d.event.clone(),
            d.message_id.clone(),
            resource_id("sessions", &d.session).to_owned(),
            d.error.lines().next().unwrap_or_default().to_owned(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> TriggersCommand {
        let cli = Cli::try_parse_from(std::iter::once("octo").chain(args.iter().copied()))
            .expect("parses");
        match cli.command {
            Command::Triggers(args) => args.command,
            other => panic!("not triggers: {other:?}"),
        }
    }

    #[test]
    fn add_builds_the_request_and_secrets_are_generated_per_scheme() {
        let TriggersCommand::Add(add) = parse(&[
            "triggers",
            "add",
            "issues",
            "--github",
            "--profile",
            "triage",
            "--prompt",
            "New issue: {{payload.issue.title}}",
        ]) else {
            panic!("add");
        };
        let request = add_request(&add, "s".repeat(20)).expect("request");
        let trigger = request.trigger.expect("trigger");
        assert_eq!(request.trigger_id, "issues");
        assert_eq!(trigger.signature_scheme, pb::SignatureScheme::Github as i32);
        assert_eq!(trigger.profile, "profiles/triage");
        assert_eq!(
            trigger.prompt_template,
            "New issue: {{payload.issue.title}}"
        );
        assert!(generate_secret(false).starts_with("whsec_"));
        assert_eq!(generate_secret(true).len(), 64);
        assert!(
            Cli::try_parse_from([
                "octo",
                "triggers",
                "add",
                "x",
                "--profile",
                "p",
                "--session",
                "s"
            ])
            .is_err()
        );
        assert_eq!(
            parse(&["triggers", "deliveries", "issues"]),
            TriggersCommand::Deliveries {
                id: "issues".into(),
                limit: None
            }
        );
    }
}
