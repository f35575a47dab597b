//! Inbound triggers: another system starts a turn with one signed HTTP call
//! (`POST /hooks/{trigger}`), and the record of each call that passed verification.
//!
//! A trigger holds a signing secret (input only: reads show [`secret::mask`]; a masked
//! value sent back keeps the stored one), how its calls are signed, where their turns
//! go (a new session per call, from a profile, or one fixed session) and the prompt
//! template that turns a payload into the user message.
//!
//! Delivery records are the replay store: a call's replay key (its `webhook-id`, or for
//! GitHub's scheme, which signs no id, its signature) is unique per trigger, so a replay
//! starts nothing. A call whose earlier delivery failed may come again (a sender's
//! retry); one that started a turn, or is being handled, may not.

use serde::{Deserialize, Serialize};

use super::{Result, Timestamp, error::Violations, prompt_template::PromptTemplate, secret};

/// How a trigger's calls are signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureScheme {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` (`v1,`
    /// HMAC-SHA256 of `id.timestamp.body`, a `whsec_` secret); 5 minutes' tolerance.
    #[default]
    StandardWebhooks,
    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, the secret
    /// used as it is. No signed timestamp or id: replays are refused by the signature.
    GitHub,
}

/// Shortest GitHub-scheme secret accepted.
pub const MIN_GITHUB_SECRET: usize = 16;
/// Longest secret accepted.
pub const MAX_SECRET: usize = 256;

/// A trigger (`triggers/{id}` in the API).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// A UUID or a slug: the last part of its URL, `/hooks/{id}`.
    pub id: String,
    pub display_name: String,
    /// A disabled trigger answers every call as an unknown one would.
    pub enabled: bool,
    pub scheme: SignatureScheme,
    /// The signing secret, stored server-side and never returned.
    pub secret: String,
    /// The profile (id) of the session each call creates; `None`: the default profile.
    pub profile: Option<String>,
    /// Every call's turn goes to this session (id) instead of a new one.
    pub session: Option<String>,
    /// See `prompt_template`; empty: the whole payload.
    pub prompt_template: String,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    /// Bumped on every change; the etag.
    pub revision: i64,
}

impl std::fmt::Debug for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trigger")
            .field("id", &self.id)
            .field("enabled", &self.enabled)
            .field("scheme", &self.scheme)
            .field("secret", &secret::MASK)
            .field("profile", &self.profile)
            .field("session", &self.session)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl Trigger {
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        let now = Timestamp::now();
        Trigger {
            id: id.into(),
            display_name: String::new(),
            enabled: true,
            scheme: SignatureScheme::StandardWebhooks,
            secret: secret.into(),
            profile: None,
            session: None,
            prompt_template: String::new(),
            create_time: now,
            update_time: now,
            revision: 1,
        }
    }

    /// The masked hint reads show in place of the secret.
    pub fn secret_hint(&self) -> String {
        secret::mask(&self.secret)
    }

    /// Checks the fields a client sets (not the references, nor the secret's form for
    /// its scheme: `webhooks::check_secret`). Field paths are relative to the trigger.
    pub fn validate(&self) -> Result<()> {
        let mut v = Violations::new();
        if self.display_name.chars().count() > super::session::MAX_DISPLAY_NAME_CHARS {
            v.add("display_name", "must be at most 256 characters");
        }
        if secret::is_masked(&self.secret) {
            v.add(
                "secret",
                "is a masked hint, not a secret; send the secret itself",
            );
        } else if self.secret.is_empty() {
            v.add("secret", "is required");
        } else if self.secret.len() > MAX_SECRET {
            v.add("secret", format!("must be at most {MAX_SECRET} bytes"));
        }
        if self.profile.is_some() && self.session.is_some() {
            v.add(
                "profile",
                "set profile (a new session per call) or session (one fixed session), not both",
            );
        }
        if let Err(err) = PromptTemplate::parse(&self.prompt_template) {
            v.add("prompt_template", err);
        }
        v.into_result()
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerDeliveryStatus {
    /// Verified and being handled.
    Received,
    /// Its turn was started (see the session and turn).
    Started,
    /// Verified, but no turn was started (see the error); the sender may retry it.
    Failed,
}

impl TriggerDeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerDeliveryStatus::Received => "received",
            TriggerDeliveryStatus::Started => "started",
            TriggerDeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            TriggerDeliveryStatus::Received,
            TriggerDeliveryStatus::Started,
            TriggerDeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One verified call of a trigger (`triggers/{t}/deliveries/{id}`).
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerDelivery {
    /// A UUIDv7: deliveries list newest first by it.
    pub id: String,
    pub trigger_id: String,
    /// Unique per trigger: the `webhook-id`, or `sha256=<hex>` for GitHub's scheme.
    pub replay_key: String,
    /// What the sender calls it: `webhook-id` or `X-GitHub-Delivery` (may be empty).
    pub message_id: String,
    /// `X-GitHub-Event`, or the payload's `type`; may be empty.
    pub event: String,
    pub status: TriggerDeliveryStatus,
    /// When it (last) arrived.
    pub receive_time: Timestamp,
    pub payload_bytes: i64,
    /// Calls with this replay key that were handled (a failed one may be retried).
    pub attempts: u32,
    pub session_id: Option<String>,
    pub turn_id: Option<String>,
    /// Why no turn was started; empty otherwise.
    pub error: String,
}

/// What claiming a call's replay key found.
#[derive(Clone, Debug, PartialEq)]
pub enum DeliveryClaim {
    /// The call is this one's to handle: the record as claimed (RECEIVED).
    Claimed(TriggerDelivery),
    /// A replay: the earlier record with the key (STARTED, or RECEIVED: being handled).
    Replayed(TriggerDelivery),
}

/// Delivery records kept per trigger: older ones are dropped (and with them their
/// replay keys, which matters only for GitHub's scheme: Standard Webhooks calls older
/// than the 5-minute tolerance are refused anyway).
pub const KEPT_DELIVERIES: usize = 1000;

/// The fields UpdateTrigger can change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerField {
    DisplayName,
    Disabled,
    SignatureScheme,
    Secret,
    Profile,
    Session,
    PromptTemplate,
}

impl super::UpdatableField for TriggerField {
    const ALL: &'static [Self] = &TriggerField::ALL;

    fn api_name(self) -> &'static str {
        TriggerField::api_name(self)
    }
}

impl TriggerField {
    pub const ALL: [TriggerField; 7] = [
        TriggerField::DisplayName,
        TriggerField::Disabled,
        TriggerField::SignatureScheme,
        TriggerField::Secret,
        TriggerField::Profile,
        TriggerField::Session,
        TriggerField::PromptTemplate,
    ];

    pub fn api_name(self) -> &'static str {
        match self {
            TriggerField::DisplayName => "display_name",
            TriggerField::Disabled => "disabled",
            TriggerField::SignatureScheme => "signature_scheme",
            TriggerField::Secret => "secret",
            TriggerField::Profile => "profile",
            TriggerField::Session => "session",
            TriggerField::PromptTemplate => "prompt_template",
        }
    }

    /// Copies this field from `from` into `to`. A masked or empty secret never
    /// overwrites the stored one.
    pub fn apply(self, from: &Trigger, to: &mut Trigger) {
        match self {
            TriggerField::DisplayName => to.display_name = from.display_name.clone(),
            TriggerField::Disabled => to.enabled = from.enabled,
            TriggerField::SignatureScheme => to.scheme = from.scheme,
            TriggerField::Secret => {
                if !from.secret.is_empty() && !secret::is_masked(&from.secret) {
                    to.secret = from.secret.clone();
                }
            }
            TriggerField::Profile => to.profile = from.profile.clone(),
            TriggerField::Session => to.session = from.session.clone(),
            TriggerField::PromptTemplate => to.prompt_template = from.prompt_template.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Error;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn validation_names_each_bad_field() {
        let mut t = Trigger::new("t", "");
        t.profile = Some("p".into());
        t.session = Some("s".into());
        t.prompt_template = "{{nope}}".into();
        let Err(Error::InvalidArgument(violations)) = t.validate() else {
            panic!("expected violations");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["secret", "profile", "prompt_template"]);
        assert!(Trigger::new("t", SECRET).validate().is_ok());
        let masked = Trigger::new("t", Trigger::new("t", SECRET).secret_hint());
        assert!(masked.validate().is_err());
    }

    #[test]
    fn a_masked_secret_never_overwrites_the_stored_one() {
        let mut stored = Trigger::new("t", SECRET);
        let mut sent = stored.clone();
        sent.secret = stored.secret_hint();
        TriggerField::Secret.apply(&sent, &mut stored);
        assert_eq!(stored.secret, SECRET);
        sent.secret = String::new();
        TriggerField::Secret.apply(&sent, &mut stored);
        assert_eq!(stored.secret, SECRET);
        assert!(!format!("{stored:?}").contains("MfKQ"));
    }
}
