//! `octo webhooks ...`: the webhook outbox for operators, through the generated
//! WebhookService client: `list [--state pending|delivered|dead]` (newest first) and
//! `retry ID` (a dead delivery is sent again with a fresh retry budget). Signing secrets
//! are never shown: the API has no field for them.

use std::io::Write;

use clap::{Args, Subcommand, ValueEnum};

use super::{
    GlobalArgs,
    client::Client,
    names::{resource_id, resource_name},
    output::{self, Column, Table, enum_label, long_time, now_unix, short_time, write_fields},
};
use crate::pb;

const COLLECTION: &str = "webhookDeliveries";

#[derive(Args, Debug, PartialEq)]
pub struct WebhooksArgs {
    #[command(subcommand)]
    pub command: WebhooksCommand,
}

#[derive(Subcommand, Debug, PartialEq)]
pub enum WebhooksCommand {
    /// List webhook deliveries, newest first
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Send a dead delivery again (a fresh retry budget, due now) and print it
    Retry {
        /// Delivery id (`msg_...`) or `webhookDeliveries/{id}`
        id: String,
    },
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct ListArgs {
    /// Only deliveries in this state
    #[arg(long, value_enum)]
    pub state: Option<StateArg>,
    /// Deliveries per page (server default 50, at most 500)
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub limit: Option<i32>,
    /// Follow next_page_token and list every delivery
    #[arg(long)]
    pub all: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    Pending,
    Delivered,
    Dead,
}

impl StateArg {
    fn pb(self) -> pb::WebhookDeliveryState {
        match self {
            StateArg::Pending => pb::WebhookDeliveryState::Pending,
            StateArg::Delivered => pb::WebhookDeliveryState::Delivered,
            StateArg::Dead => pb::WebhookDeliveryState::Dead,
        }
    }
}

pub async fn run(
    args: WebhooksArgs,
    global: &GlobalArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    // Validate before connecting, so mistakes fail fast even without a server.
    if let WebhooksCommand::Retry { id } = &args.command {
        resource_name(COLLECTION, id)?;
    }
    let client = global.connect().await?;
    execute(&client, args.command, global.json, out).await
}

/// Runs `command` on an open connection.
pub async fn execute(
    client: &Client,
    command: WebhooksCommand,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    match command {
        WebhooksCommand::List(args) => list(client, &args, json, out).await,
        WebhooksCommand::Retry { id } => {
            let delivery = client
                .webhooks()
                .retry_webhook_delivery(pb::RetryWebhookDeliveryRequest {
                    name: resource_name(COLLECTION, &id)?,
                })
                .await?
                .into_inner();
            if json {
                return output::write_json(out, &delivery);
            }
            write_delivery(out, &delivery)?;
            Ok(())
        }
    }
}

async fn list(
    client: &Client,
    args: &ListArgs,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let webhooks = client.webhooks();
    let request = pb::ListWebhookDeliveriesRequest {
        page_size: args.limit.unwrap_or(0),
        page_token: String::new(),
        state: args
            .state
            .map_or(pb::WebhookDeliveryState::Unspecified, StateArg::pb)
            .into(),
    };
    let (webhook_deliveries, next_page_token) =
        super::client::collect_pages(args.all, |page_token| {
            let mut webhooks = webhooks.clone();
            let request = pb::ListWebhookDeliveriesRequest {
                page_token,
                ..request.clone()
            };
            async move {
                let page = webhooks
                    .list_webhook_deliveries(request)
                    .await?
                    .into_inner();
                Ok((page.webhook_deliveries, page.next_page_token))
            }
        })
        .await?;
    let all = pb::ListWebhookDeliveriesResponse {
        webhook_deliveries,
        next_page_token,
    };
    if json {
        return output::write_json(out, &all);
    }
    if all.webhook_deliveries.is_empty() {
        writeln!(out, "No webhook deliveries.")?;
        return Ok(());
    }
    delivery_table(&all.webhook_deliveries, now_unix()).render(out)?;
    if !all.next_page_token.is_empty() {
        writeln!(out, "(more deliveries: use --all or a larger --limit)")?;
    }
    Ok(())
}

fn state_label(state: i32) -> String {
    pb::WebhookDeliveryState::try_from(state).map_or_else(
        |_| state.to_string(),
        |s| enum_label(s.as_str_name(), "WEBHOOK_DELIVERY_STATE_"),
    )
}

/// The `webhooks list` table.
pub fn delivery_table(deliveries: &[pb::WebhookDelivery], now: i64) -> Table {
    let mut table = Table::new([
        Column::left("ID"),
        Column::left("EVENT"),
        Column::left("STATE"),
        Column::right("ATTEMPTS"),
        Column::left("CREATED"),
        Column::left("URL").max_width(40),
        Column::left("LAST ERROR").max_width(60),
    ]);
    for d in deliveries {
        table.push_row([
            resource_id(COLLECTION, &d.name).to_owned(),
            d.event_type.clone(),
            state_label(d.state),
            d.attempts.to_string(),
            short_time(d.create_time.as_ref(), now),
            d.url.clone(),
            if d.last_error.is_empty() {
                "-".to_owned()
            } else {
                d.last_error.clone()
            },
        ]);
    }
    table
}

fn write_delivery(out: &mut dyn Write, d: &pb::WebhookDelivery) -> std::io::Result<()> {
    let now = now_unix();
    write_fields(
        out,
        &[
            ("Name", d.name.clone()),
            ("Event", d.event_type.clone()),
            ("State", state_label(d.state)),
            ("Attempts", d.attempts.to_string()),
            ("URL", d.url.clone()),
            ("Created", long_time(d.create_time.as_ref(), now)),
            ("Next attempt", long_time(d.next_attempt_time.as_ref(), now)),
            ("Last error", d.last_error.clone()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> WebhooksCommand {
        let cli = Cli::try_parse_from(std::iter::once("octo").chain(args.iter().copied()))
            .expect("parses");
        match cli.command {
            Command::Webhooks(args) => args.command,
            other => panic!("not webhooks: {other:?}"),
        }
    }

    #[test]
    fn list_and_retry_parse() {
        assert_eq!(
            parse(&["webhooks", "list", "--state", "dead"]),
            WebhooksCommand::List(ListArgs {
                state: Some(StateArg::Dead),
                ..ListArgs::default()
            })
        );
        assert_eq!(
            parse(&["webhooks", "retry", "msg_1"]),
            WebhooksCommand::Retry { id: "msg_1".into() }
        );
    }
}
