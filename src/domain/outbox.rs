//! The webhook outbox: every outgoing webhook is a [`OutboxDelivery`] row, stored in the
//! same transaction as the state change that causes it (a turn's terminal write, a
//! schedule run's final update), then sent and retried by any live server until it is
//! delivered or dead.
//!
//! Contract:
//! - `id` is the Standard Webhooks `webhook-id` (`msg_…`): the same on every attempt, so
//!   receivers can drop duplicates. Delivery is at least once: a server that dies after
//!   sending but before recording the outcome leaves the delivery to be sent again once
//!   its claim expires.
//! - `payload` is the whole JSON body (`{"type", "timestamp", "data"}`), fixed when the
//!   delivery is made; every attempt sends the same bytes with a fresh
//!   `webhook-timestamp` and signature.
//! - `secret` is the `whsec_` text the body is signed with. It is stored in the database
//!   as it is (like a schedule's webhook secret and stored provider keys, the database
//!   is private to the server) and never leaves the server: not in the API, not in logs
//!   (`Debug` redacts it).
//! - States: `Pending` (due at `next_attempt_time`; a claim by a server pushes that time
//!   to the claim's end, so a claim that is never recorded expires by itself),
//!   `Delivered` (a 2xx answer) and `Dead` (the retry budget is spent or the failure is
//!   permanent; an operator may retry it, which makes it pending and due again).

use std::fmt;

use serde::Serialize;

use super::{Timestamp, Turn};

/// Where a delivery goes: a URL and the `whsec_` secret its body is signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub url: String,
    /// The `whsec_` text (validated where it is configured).
    pub secret: String,
}

impl fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("url", &self.url)
            .field("secret", &"whsec_<redacted>")
            .finish()
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Dead,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 3] = [Self::Pending, Self::Delivered, Self::Dead];

    /// The stored (and CLI) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

/// One notification to one receiver.
#[derive(Clone, PartialEq)]
pub struct OutboxDelivery {
    /// `msg_…`, the `webhook-id`.
    pub id: String,
    pub url: String,
    /// The `whsec_` text; never shown.
    pub secret: String,
    /// E.g. `turn.finished`, `schedule_run.finished`.
    pub event_type: String,
    /// The JSON body, sent as is on every attempt.
    pub payload: String,
    pub create_time: Timestamp,
    pub state: DeliveryState,
    /// Attempts recorded so far.
    pub attempts: u32,
    /// When a pending delivery is due (or its current claim ends).
    pub next_attempt_time: Timestamp,
    /// Why the last attempt failed; empty when none did.
    pub last_error: String,
    /// The server holding the current claim; empty when none does.
    pub claimed_by: String,
    /// When the last attempt was recorded.
    pub update_time: Timestamp,
}

impl fmt::Debug for OutboxDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxDelivery")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secret", &"whsec_<redacted>")
            .field("event_type", &self.event_type)
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .field("next_attempt_time", &self.next_attempt_time)
            .field("last_error", &self.last_error)
            .field("claimed_by", &self.claimed_by)
            .finish_non_exhaustive()
    }
}

/// The body: `{"type", "timestamp", "data"}` in that order.
#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    data: &'a serde_json::Value,
}

impl OutboxDelivery {
    /// A new pending delivery of `data` as an `event_type` event to `endpoint`, due now.
    pub fn new(endpoint: &WebhookEndpoint, event_type: &str, data: &serde_json::Value) -> Self {
        let now = Timestamp::now();
        let envelope = Envelope {
            event_type,
            timestamp: now.to_rfc3339(),
            data,
        };
        // A `Value` with string keys always serializes.
        let payload = serde_json::to_string(&envelope).unwrap_or_else(|_| "{}".into());
        Self {
            id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
            url: endpoint.url.clone(),
            secret: endpoint.secret.clone(),
            event_type: event_type.to_owned(),
            payload,
            create_time: now,
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_time: now,
            last_error: String::new(),
            claimed_by: String::new(),
            update_time: now,
        }
    }
}

/// What one attempt came to, as [`crate::store::OutboxStore::record_attempt`] stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; due again at the time.
    Retry {
        at: Timestamp,
        error: String,
    },
    /// Failed for good (budget spent or a permanent failure).
    Dead {
        error: String,
    },
}

/// How many deliveries are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
}

/// The webhook event a finished turn sends.
pub const TURN_FINISHED_EVENT: &str = "turn.finished";

/// A finished turn as webhook receivers get it: resource names as in the API.
pub fn turn_json(turn: &Turn) -> serde_json::Value {
    serde_json::json!({
        "session": format!("sessions/{}", turn.session_id),
        "turn": format!("sessions/{}/turns/{}", turn.session_id, turn.id),
        "status": turn.status,
        "model": turn.model.as_ref().map(|m| format!("models/{m}")),
        "error": turn.error.as_ref().map(|e| serde_json::json!({"reason": e.reason, "message": e.message})),
        "usage": {
            "input_tokens": turn.usage.input_tokens,
            "output_tokens": turn.usage.output_tokens,
        },
        "start_time": turn.start_time.map(Timestamp::to_rfc3339),
        "end_time": turn.end_time.map(Timestamp::to_rfc3339),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_delivery_carries_the_envelope_and_hides_its_secret() {
        let endpoint = WebhookEndpoint {
            url: "https://example.com/hook".into(),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        };
        let d = OutboxDelivery::new(&endpoint, "turn.finished", &serde_json::json!({"a": 1}));
        assert!(d.id.starts_with("msg_"));
        assert_eq!(d.state, DeliveryState::Pending);
        let body: serde_json::Value = serde_json::from_str(&d.payload).expect("json");
        assert_eq!(body["type"], "turn.finished");
        assert_eq!(body["data"]["a"], 1);
        assert!(
            d.payload
                .starts_with(r#"{"type":"turn.finished","timestamp":""#)
        );
        for text in [format!("{d:?}"), format!("{endpoint:?}")] {
            assert!(!text.contains("MfKQ9r8"), "{text}");
        }
    }

    #[test]
    fn states_parse_their_names() {
        for state in DeliveryState::ALL {
            assert_eq!(DeliveryState::parse(state.as_str()), Some(state));
        }
        assert_eq!(DeliveryState::parse("DEAD"), Some(DeliveryState::Dead));
        assert_eq!(DeliveryState::parse("gone"), None);
    }
}
