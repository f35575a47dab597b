//! WebhookService: the outbox for operators. Parse the request, call the runtime's
//! [`Deliveries`], convert the answer. A delivery's signing secret is never converted:
//! it has no field in `pb::WebhookDelivery`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert::timestamp;
use crate::{
    domain::{
        Error, Result,
        outbox::{DeliveryState, OutboxDelivery},
    },
    pb::{self, webhook_service_server::WebhookService},
    runtime::Deliveries,
};

pub struct WebhookApi {
    deliveries: Arc<Deliveries>,
}

impl WebhookApi {
    pub fn new(deliveries: Arc<Deliveries>) -> Self {
        Self { deliveries }
    }
}

const COLLECTION: &str = "webhookDeliveries";

/// The id in `webhookDeliveries/{id}`: `msg_` and letters or digits.
fn parse_delivery_name(name: &str) -> Result<&str> {
    name.strip_prefix(COLLECTION)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| {
            id.strip_prefix("msg_").is_some_and(|rest| {
                !rest.is_empty()
                    && rest.len() <= 64
                    && rest.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        })
        .ok_or_else(|| {
            if name.is_empty() {
                Error::invalid("name", "is required")
            } else {
                Error::invalid(
                    "name",
                    format!("must be a name of the form {COLLECTION}/msg_{{id}}, got {name:?}"),
                )
            }
        })
}

fn state_from_pb(state: i32) -> Result<Option<DeliveryState>> {
    match pb::WebhookDeliveryState::try_from(state) {
        Ok(pb::WebhookDeliveryState::Unspecified) => Ok(None),
        Ok(pb::WebhookDeliveryState::Pending) => Ok(Some(DeliveryState::Pending)),
        Ok(pb::WebhookDeliveryState::Delivered) => Ok(Some(DeliveryState::Delivered)),
        Ok(pb::WebhookDeliveryState::Dead) => Ok(Some(DeliveryState::Dead)),
        Err(_) => Err(Error::invalid(
            "state",
            format!("{state} is not a delivery state"),
        )),
    }
}

fn state_pb(state: DeliveryState) -> pb::WebhookDeliveryState {
    match state {
        DeliveryState::Pending => pb::WebhookDeliveryState::Pending,
        DeliveryState::Delivered => pb::WebhookDeliveryState::Delivered,
        DeliveryState::Dead => pb::WebhookDeliveryState::Dead,
    }
}

/// A delivery as the API shows it: everything but the secret.
pub fn webhook_delivery_pb(d: &OutboxDelivery) -> pb::WebhookDelivery {
    pb::WebhookDelivery {
        name: format!("{COLLECTION}/{}", d.id),
        url: crate::domain::secret::mask_url(&d.url),
        event_type: d.event_type.clone(),
        state: state_pb(d.state).into(),
        attempts: i32::try_from(d.attempts).unwrap_or(i32::MAX),
        create_time: timestamp(d.create_time),
        next_attempt_time: (d.state == DeliveryState::Pending)
            .then(|| timestamp(d.next_attempt_time))
            .flatten(),
        update_time: timestamp(d.update_time),
        last_error: d.last_error.clone(),
        payload: d.payload.clone(),
    }
}

#[tonic::async_trait]
impl WebhookService for WebhookApi {
    async fn list_webhook_deliveries(
        &self,
        request: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::ListWebhookDeliveriesResponse>, Status> {
        let req = request.into_inner();
        let state = state_from_pb(req.state)?;
        let page = self
            .deliveries
            .list(state, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(pb::ListWebhookDeliveriesResponse {
            webhook_deliveries: page.deliveries.iter().map(webhook_delivery_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn retry_webhook_delivery(
        &self,
        request: Request<pb::RetryWebhookDeliveryRequest>,
    ) -> Result<Response<pb::WebhookDelivery>, Status> {
        let id = parse_delivery_name(&request.get_ref().name)?;
        let delivery = self.deliveries.retry(id).await?;
        Ok(Response::new(webhook_delivery_pb(&delivery)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(
            parse_delivery_name("webhookDeliveries/msg_0193abc").expect("valid"),
            "msg_0193abc"
        );
        for bad in [
            "",
            "webhookDeliveries/",
            "webhookDeliveries/x",
            "sessions/msg_1",
            "webhookDeliveries/msg_a/b",
        ] {
            assert!(parse_delivery_name(bad).is_err(), "{bad}");
        }
    }
}
