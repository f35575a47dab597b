//! The runtime's side of the webhook outbox: which deliveries a finished turn makes, the
//! store write that keeps them with the turn, and the operator's view (list, retry).
//!
//! Contract:
//! - A turn's terminal state is stored with [`store_finished_turn`]: the turn and its
//!   `turn.finished` deliveries (one per configured endpoint: the server-level webhook)
//!   in one transaction, fenced by the session's lease like every owner write. Then the
//!   local delivery worker is woken; other servers find the rows by polling.
//! - Nothing here sends HTTP: the worker (`crate::outbox`) does.
//! - [`Deliveries::list`] pages newest first (AIP-158 tokens bound to the state filter);
//!   secrets stay in the store, the API layer never converts them.

use std::sync::Arc;

use tokio::sync::Notify;

use super::Deps;
use crate::{
    domain::{
        Error, Result, Timestamp, Turn,
        cluster::Fence,
        outbox::{DeliveryState, OutboxDelivery, TURN_FINISHED_EVENT, WebhookEndpoint, turn_json},
        page,
    },
    store::Store,
};

/// Where the runtime's webhooks go, and how the delivery worker hears of new ones.
#[derive(Clone, Debug, Default)]
pub struct Outbox {
    /// The server-level webhook: hears about every finished turn.
    pub endpoint: Option<WebhookEndpoint>,
    /// Notified after deliveries are stored here, so the worker sends them at once.
    pub wake: Arc<Notify>,
}

impl Outbox {
    /// The deliveries a finished turn makes.
    pub fn turn_finished(&self, turn: &Turn) -> Vec<OutboxDelivery> {
        self.endpoint
            .iter()
            .map(|endpoint| OutboxDelivery::new(endpoint, TURN_FINISHED_EVENT, &turn_json(turn)))
            .collect()
    }

    /// Wakes the delivery worker (after deliveries were stored).
    pub fn stored(&self) {
        self.wake.notify_one();
    }
}

/// Stores a turn's terminal state with its `turn.finished` deliveries, in one
/// transaction (both or, with a stale fence or any error, neither).
pub(crate) async fn store_finished_turn(deps: &Deps, turn: &Turn, fence: Fence) -> Result<()> {
    let deliveries = deps.outbox.turn_finished(turn);
    deps.store.put_turn_with(turn, fence, &deliveries).await?;
    if !deliveries.is_empty() {
        deps.outbox.stored();
    }
    Ok(())
}

/// The operator's view of the outbox.
pub struct Deliveries {
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
}

/// One page of deliveries.
pub struct DeliveryPage {
    pub deliveries: Vec<OutboxDelivery>,
    pub next_page_token: String,
}

impl Deliveries {
    pub fn new(store: Arc<dyn Store>, outbox: &Outbox) -> Self {
        Self {
            store,
            wake: outbox.wake.clone(),
        }
    }

    /// Deliveries newest first, of one state or all.
    pub async fn list(
        &self,
        state: Option<DeliveryState>,
        page_size: i32,
        page_token: &str,
    ) -> Result<DeliveryPage> {
        let mut violations = crate::domain::error::Violations::new();
        let size = page::page_size(page_size)
            .map_err(|err| violations.check(Err(err)))
            .ok();
        let filters = page::fingerprint(&["state", state.map_or("", DeliveryState::as_str)]);
        let after = page::decode_token::<String>(page_token, filters)
            .map_err(|err| violations.check(Err(err)))
            .ok()
            .flatten();
        violations.into_result()?;
        let size = size.unwrap_or(page::DEFAULT_PAGE_SIZE);
        let mut deliveries = self
            .store
            .list_deliveries(state, after.as_deref(), size + 1)
            .await?;
        let next_page_token = if deliveries.len() > size {
            deliveries.truncate(size);
            deliveries
                .last()
                .map(|d| page::encode_token(&d.id, filters))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(DeliveryPage {
            deliveries,
            next_page_token,
        })
    }

    /// Makes a dead (or waiting) delivery due now and wakes the worker.
    pub async fn retry(&self, id: &str) -> Result<OutboxDelivery> {
        if id.is_empty() {
            return Err(Error::invalid(
                "name",
                "is required: webhookDeliveries/{id}",
            ));
        }
        let delivery = self.store.retry_delivery(id, Timestamp::now()).await?;
        self.wake.notify_one();
        Ok(delivery)
    }
}
