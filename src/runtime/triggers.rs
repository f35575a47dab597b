//! Inbound triggers: the managed resource (in the store, managed over the API) and the
//! handling of a call to `POST /hooks/{trigger}` (`fire`).
//!
//! A call is handled in this order, each step refusing with nothing started:
//! 1. its signed parts are read from its headers, and a stale or future Standard
//!    Webhooks timestamp is refused (400): this depends on the call alone;
//! 2. the trigger is looked up and the signature verified in constant time; an unknown
//!    or disabled trigger, or one of the other scheme, is verified against a throwaway
//!    key, so it costs the same and is refused the same way as a bad signature (401);
//! 3. the call is claimed in the delivery log under its replay key: a replay (the key
//!    started a turn, or is being handled) is refused (409);
//! 4. the body is parsed as JSON, the prompt rendered, the target session found or
//!    created (source WEBHOOK, the trigger's profile, else the default profile;
//!    READ_ONLY unless a profile says otherwise: the payload is someone else's text and
//!    nobody is there to confirm), and the turn started unattended. A failure here is
//!    recorded on the delivery (FAILED, the sender may retry it) and answered.
//!
//! The body's size is bounded by the HTTP layer before any of this.

use std::sync::Arc;

use super::{BusyPolicy, Chat, NewSession, SendRequest, Sessions};
use crate::{
    domain::{
        Error, Part, PermissionMode, Resource, Result, SessionSource, Timestamp, new_id, page,
        prompt_template::PromptTemplate,
        session::SessionSettings,
        trigger::{DeliveryClaim, Trigger, TriggerDelivery, TriggerDeliveryStatus, TriggerField},
    },
    store::Store,
    webhooks::verify::{CallHeaders, SignedCall, Verifier, check_secret},
};

/// What a call that does not verify is told, whatever the cause: an unknown, disabled
/// or differently signed trigger reads the same as a wrong signature.
pub const NOT_VERIFIED: &str = "the request's signature does not verify for this trigger";

/// The label sessions a trigger creates carry, with the trigger's id.
pub const TRIGGER_LABEL: &str = "trigger";

/// One call as the HTTP layer hands it over.
#[derive(Clone, Debug)]
pub struct Call {
    /// The last segment of the URL, as sent.
    pub trigger: String,
    pub headers: CallHeaders,
    pub body: bytes::Bytes,
}

pub struct Triggers {
    store: Arc<dyn Store>,
    sessions: Arc<Sessions>,
    chat: Arc<Chat>,
}

fn not_found(id: &str) -> Error {
    Error::not_found(Resource::Trigger, format!("triggers/{id}"))
}

fn etag_mismatch(id: &str) -> Error {
    Error::EtagMismatch {
        resource: Resource::Trigger,
        name: format!("triggers/{id}"),
    }
}

impl Triggers {
    pub fn new(store: Arc<dyn Store>, sessions: Arc<Sessions>, chat: Arc<Chat>) -> Self {
        Self {
            store,
            sessions,
            chat,
        }
    }

    /// Every trigger, by id.
    pub async fn list(&self) -> Result<Vec<Trigger>> {
        self.store.list_triggers().await
    }

    pub async fn get(&self, id: &str) -> Result<Trigger> {
        self.store
            .get_trigger(id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// Every violation at once: the fields, the secret's form for its scheme and the
    /// references (the profile and the session exist, the session is not in the
    /// trash). Field paths are relative to the trigger.
    async fn check(&self, trigger: &Trigger) -> Result<()> {
        let mut v = crate::domain::error::Violations::new();
        v.check(trigger.validate());
        let secret_present =
            !trigger.secret.is_empty() && !crate::domain::secret::is_masked(&trigger.secret);
        if secret_present && let Err(err) = check_secret(trigger.scheme, &trigger.secret) {
            v.add("secret", err);
        }
        if let Some(profile) = &trigger.profile
            && self.store.get_profile(profile).await?.is_none()
        {
            v.add("profile", format!("profiles/{profile} does not exist"));
        }
        if let Some(session) = &trigger.session {
            match self.sessions.get(session).await {
                Ok(target) if target.is_deleted() => v.add(
                    "session",
                    format!("sessions/{session} is in the trash; restore it first"),
                ),
                Ok(_) => {}
                Err(Error::NotFound { .. }) => {
                    v.add("session", format!("sessions/{session} does not exist"))
                }
                Err(err) => return Err(err),
            }
        }
        v.into_result()
    }

    /// Stores a new trigger (id given or generated).
    pub async fn create(&self, mut trigger: Trigger) -> Result<Trigger> {
        if trigger.id.is_empty() {
            trigger.id = new_id();
        } else if !crate::domain::is_valid_model_id(&trigger.id) {
            return Err(Error::invalid(
                "trigger_id",
                "must be 1-63 characters of a-z, 0-9 and -, starting with a letter and not \
                 ending with -",
            ));
        }
        self.check(&trigger)
            .await
            .map_err(|e| e.within("trigger."))?;
        let now = Timestamp::now();
        trigger.create_time = now;
        trigger.update_time = now;
        trigger.revision = 1;
        self.store.create_trigger(&trigger).await?;
        tracing::info!(trigger = %trigger.id, scheme = ?trigger.scheme, "trigger created");
        Ok(trigger)
    }

    /// Changes `fields` to their values in `changes` (a masked or empty secret keeps the
    /// stored one); with an expected revision (the etag), only if it still is that.
    pub async fn update(
        &self,
        id: &str,
        changes: &Trigger,
        fields: &[TriggerField],
        expected_revision: Option<i64>,
    ) -> Result<Trigger> {
        let current = self.get(id).await?;
        if expected_revision.is_some_and(|r| r != current.revision) {
            return Err(etag_mismatch(id));
        }
        let mut updated = current.clone();
        for field in fields {
            field.apply(changes, &mut updated);
        }
        self.check(&updated)
            .await
            .map_err(|e| e.within("trigger."))?;
        updated.update_time = Timestamp::now();
        updated.revision = current.revision + 1;
        if !self
            .store
            .update_trigger(&updated, current.revision)
            .await?
        {
            return Err(etag_mismatch(id));
        }
        tracing::info!(trigger = %id, "trigger updated");
        Ok(updated)
    }

    /// Deletes a trigger and its delivery log.
    pub async fn delete(&self, id: &str, expected_revision: Option<i64>) -> Result<()> {
        if let Some(expected) = expected_revision
            && self.get(id).await?.revision != expected
        {
            return Err(etag_mismatch(id));
        }
        if !self.store.delete_trigger(id).await? {
            return Err(not_found(id));
        }
        tracing::info!(trigger = %id, "trigger deleted");
        Ok(())
    }

    /// One page of a trigger's deliveries, newest first, and the next page's token.
    pub async fn deliveries(
        &self,
        id: &str,
        page_token: &str,
        page_size: i32,
    ) -> Result<(Vec<TriggerDelivery>, String)> {
        self.get(id).await?;
        let limit = page::page_size(page_size)?;
        let fingerprint = page::fingerprint(&["trigger_deliveries", id]);
        let before: Option<String> = page::decode_token(page_token, fingerprint)?;
        let mut deliveries = self
            .store
            .list_trigger_deliveries(id, before.as_deref(), limit + 1)
            .await?;
        let next = if deliveries.len() > limit {
            deliveries.truncate(limit);
            deliveries
                .last()
                .map(|d| page::encode_token(&d.id, fingerprint))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((deliveries, next))
    }

    /// Handles one call (see the module docs). Returns its delivery, STARTED, with the
    /// session and turn.
    pub async fn fire(&self, call: Call) -> Result<TriggerDelivery> {
        let now = Timestamp::now();
        let signed = SignedCall::read(&call.headers, now.to_unix().0)
            .map_err(|err| Error::invalid(err.header, err.message))?;
        let trigger = if crate::domain::is_valid_model_id(&call.trigger) {
            self.store.get_trigger(&call.trigger).await?
        } else {
            None
        };
        let trigger = trigger.filter(|t| t.enabled && t.scheme == signed.scheme());
        let verifier = trigger
            .as_ref()
            .and_then(|t| Verifier::new(t.scheme, &t.secret).ok())
            .unwrap_or_else(|| Verifier::stand_in(signed.scheme()));
        let verified = verifier.verify(&signed, &call.body);
        let Some(trigger) = trigger.filter(|_| verified) else {
            tracing::info!(trigger = %call.trigger, "trigger call refused: unknown trigger or a signature that does not verify");
            return Err(Error::Unauthenticated(NOT_VERIFIED.into()));
        };

        let payload = serde_json::from_slice::<serde_json::Value>(&call.body);
        let event = match (&signed, &payload) {
            (SignedCall::GitHub { .. }, _) => call.headers.github_event.clone(),
            (SignedCall::Standard { .. }, Ok(payload)) => {
                payload["type"].as_str().map(str::to_owned)
            }
            _ => None,
        }
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect::<String>();
        let message_id = match &signed {
            SignedCall::Standard { id, .. } => id.clone(),
            SignedCall::GitHub { .. } => call.headers.github_delivery.clone().unwrap_or_default(),
        };
        let claim = TriggerDelivery {
            id: new_id(),
            trigger_id: trigger.id.clone(),
            replay_key: signed.replay_key().to_owned(),
            message_id: message_id.chars().take(256).collect(),
            event: event.clone(),
            status: TriggerDeliveryStatus::Received,
            receive_time: now,
            payload_bytes: call.body.len() as i64,
            attempts: 0,
            session_id: None,
            turn_id: None,
            error: String::new(),
        };
        let mut delivery = match self.store.claim_delivery(&claim).await? {
            DeliveryClaim::Claimed(delivery) => delivery,
            DeliveryClaim::Replayed(earlier) => {
                tracing::info!(trigger = %trigger.id, delivery = %earlier.id, "trigger call refused: a replay");
                return Err(Error::AlreadyExists {
                    resource: Resource::TriggerDelivery,
                    name: format!("triggers/{}/deliveries/{}", trigger.id, earlier.id),
                });
            }
        };

        let started = match payload {
            Ok(payload) => self.start(&trigger, &payload, &event).await,
            Err(err) => Err(Error::invalid("body", format!("is not JSON: {err}"))),
        };
        match &started {
            Ok((session, turn)) => {
                delivery.status = TriggerDeliveryStatus::Started;
                delivery.session_id = Some(session.clone());
                delivery.turn_id = Some(turn.clone());
            }
            Err(err) => {
                delivery.status = TriggerDeliveryStatus::Failed;
                delivery.error = match err {
                    // The cause is the server's, not the caller's: it goes to the log.
                    Error::Internal(cause) => {
                        tracing::warn!(trigger = %trigger.id, error = %cause, "trigger call failed");
                        "internal error (see the server's log)".to_owned()
                    }
                    other => other.to_string(),
                };
            }
        }
        if let Err(err) = self.store.finish_delivery(&delivery).await {
            tracing::warn!(trigger = %trigger.id, delivery = %delivery.id, error = %err, "cannot record how a trigger call ended");
        }
        started?;
        tracing::info!(trigger = %trigger.id, delivery = %delivery.id, session = ?delivery.session_id, turn = ?delivery.turn_id, "trigger call started a turn");
        Ok(delivery)
    }

    /// Renders the prompt, finds or creates the session and starts the turn: the
    /// session's and the turn's ids.
    async fn start(
        &self,
        trigger: &Trigger,
        payload: &serde_json::Value,
        event: &str,
    ) -> Result<(String, String)> {
        let template = PromptTemplate::parse(&trigger.prompt_template)
            .map_err(|err| Error::Internal(format!("a stored prompt template: {err}")))?;
        let prompt = template.render(payload, event);
        if prompt.trim().is_empty() {
            return Err(Error::invalid(
                "body",
                "the prompt rendered from this payload is empty",
            ));
        }
        let session_id = match &trigger.session {
            Some(id) => {
                // A session in the trash fails the call saying so (SESSION_DELETED).
                self.sessions.get(id).await?.check_not_deleted()?;
                id.clone()
            }
            None => {
                let settings = SessionSettings {
                    labels: [(TRIGGER_LABEL.to_owned(), trigger.id.clone())].into(),
                    ..SessionSettings::default()
                };
                self.sessions
                    .create(NewSession {
                        settings,
                        source: SessionSource::Webhook,
                        profile: trigger.profile.clone(),
                        fallback_mode: PermissionMode::ReadOnly,
                    })
                    .await?
                    .id
            }
        };
        let (_, turn) = self
            .chat
            .send(SendRequest {
                session_id: session_id.clone(),
                parts: vec![Part::Text { text: prompt }],
                on_busy: BusyPolicy::Enqueue,
                model: None,
                // Nobody is there to answer the model's questions.
                unattended: true,
            })
            .await?;
        Ok((session_id, turn.id))
    }
}
