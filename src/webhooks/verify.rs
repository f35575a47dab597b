//! Verifying inbound webhooks (triggers): the signed parts of a call read from its
//! headers, the timestamp tolerance, and the signature check of either scheme. The
//! Standard Webhooks MAC is [`WebhookSecret`]'s, the same code that signs Octo's own
//! outgoing webhooks.
//!
//! Every comparison of a signature is constant time. What a call is refused for before
//! its trigger is looked up (a missing header, a stale timestamp) depends on the call
//! alone, never on whether the trigger exists, so those answers tell an attacker
//! nothing about which triggers exist; from there on an unknown trigger is verified
//! against a throwaway key ([`Verifier::stand_in`]) and refused like a bad signature.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::WebhookSecret;
use crate::domain::trigger::{MIN_GITHUB_SECRET, SignatureScheme};

/// How far a Standard Webhooks timestamp may be from now, either way.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The headers a call is verified by, as they arrived (names are case-insensitive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallHeaders {
    pub webhook_id: Option<String>,
    pub webhook_timestamp: Option<String>,
    pub webhook_signature: Option<String>,
    /// `X-Hub-Signature-256`.
    pub hub_signature: Option<String>,
    /// `X-GitHub-Delivery` (not signed: shown in the log only).
    pub github_delivery: Option<String>,
    /// `X-GitHub-Event` (not signed: shown in the log and the prompt's `{{event}}`).
    pub github_event: Option<String>,
}

/// The signed parts of a call, read from its headers alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignedCall {
    Standard {
        id: String,
        timestamp: i64,
        /// The `webhook-signature` value (one or more `v1,<base64>`).
        signatures: String,
    },
    GitHub {
        /// The `X-Hub-Signature-256` value, `sha256=<hex>`, lowercased.
        signature: String,
    },
}

/// Why a call was refused before any trigger was looked at: the header and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderError {
    pub header: &'static str,
    pub message: String,
}

fn header_error(header: &'static str, message: impl Into<String>) -> HeaderError {
    HeaderError {
        header,
        message: message.into(),
    }
}

impl SignedCall {
    /// Reads a call's signed parts: Standard Webhooks when `webhook-signature` is there,
    /// else GitHub's when `X-Hub-Signature-256` is. A Standard Webhooks timestamp more
    /// than [`TOLERANCE`] from `now` (Unix seconds) is refused here.
    pub fn read(headers: &CallHeaders, now: i64) -> Result<SignedCall, HeaderError> {
        let present = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        if let Some(signatures) = present(&headers.webhook_signature) {
            let id = present(&headers.webhook_id)
                .ok_or_else(|| header_error("webhook-id", "is required with webhook-signature"))?;
            if id.len() > 256 {
                return Err(header_error("webhook-id", "must be at most 256 bytes"));
            }
            let timestamp = present(&headers.webhook_timestamp)
                .ok_or_else(|| {
                    header_error("webhook-timestamp", "is required with webhook-signature")
                })?
                .parse::<i64>()
                .map_err(|_| {
                    header_error("webhook-timestamp", "must be whole seconds since 1970")
                })?;
            let tolerance = TOLERANCE.as_secs() as i64;
            if timestamp < now.saturating_sub(tolerance) {
                return Err(header_error(
                    "webhook-timestamp",
                    format!(
                        "is {} s old, more than the {} s tolerance (a replay, or a clock off)",
                        now.saturating_sub(timestamp),
                        tolerance
                    ),
                ));
            }
            if timestamp > now.saturating_add(tolerance) {
                return Err(header_error(
                    "webhook-timestamp",
                    format!("is more than {tolerance} s in the future (a clock off)"),
                ));
            }
            return Ok(SignedCall::Standard {
                id,
                timestamp,
                signatures,
            });
        }
        if let Some(signature) = present(&headers.hub_signature) {
            let signature = signature.to_ascii_lowercase();
            if !signature.starts_with("sha256=") {
                return Err(header_error("x-hub-signature-256", "must be sha256=<hex>"));
            }
            return Ok(SignedCall::GitHub { signature });
        }
        Err(header_error(
            "webhook-signature",
            "a signature is required: webhook-signature (Standard Webhooks, with webhook-id \
             and webhook-timestamp) or X-Hub-Signature-256 (GitHub)",
        ))
    }

    pub fn scheme(&self) -> SignatureScheme {
        match self {
            SignedCall::Standard { .. } => SignatureScheme::StandardWebhooks,
            SignedCall::GitHub { .. } => SignatureScheme::GitHub,
        }
    }

    /// What makes the call unique for replay protection: the signed `webhook-id`, or
    /// (GitHub signs no id) the signature itself.
    pub fn replay_key(&self) -> &str {
        match self {
            SignedCall::Standard { id, .. } => id,
            SignedCall::GitHub { signature } => signature,
        }
    }
}

/// A trigger's key, ready to verify calls.
pub enum Verifier {
    Standard(WebhookSecret),
    GitHub(Hmac<Sha256>),
}

/// Whether `secret` is usable with `scheme`; the error never includes it.
pub fn check_secret(scheme: SignatureScheme, secret: &str) -> Result<(), String> {
    Verifier::new(scheme, secret).map(drop)
}

impl Verifier {
    pub fn new(scheme: SignatureScheme, secret: &str) -> Result<Self, String> {
        match scheme {
            SignatureScheme::StandardWebhooks => {
                WebhookSecret::parse(secret).map(Verifier::Standard)
            }
            SignatureScheme::GitHub => {
                if secret.len() < MIN_GITHUB_SECRET || secret.chars().any(char::is_control) {
                    return Err(format!(
                        "a GitHub webhook secret must be at least {MIN_GITHUB_SECRET} characters, \
                         without control characters (e.g. from `openssl rand -hex 32`)"
                    ));
                }
                Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                    .map(Verifier::GitHub)
                    .map_err(|_| "the secret cannot be used with HMAC-SHA256".to_owned())
            }
        }
    }

    /// A throwaway key of `scheme`: an unknown trigger's calls cost the same work as a
    /// known one's, and verify never.
    pub fn stand_in(scheme: SignatureScheme) -> Self {
        let mut key = [0u8; 32];
        // Random, so not even a signature made for this key could exist; a fixed key
        // would do too, since the result is discarded.
        let _ = getrandom::fill(&mut key);
        match scheme {
            SignatureScheme::StandardWebhooks => {
                let text = format!("whsec_{}", STANDARD.encode(key));
                match WebhookSecret::parse(&text) {
                    Ok(secret) => Verifier::Standard(secret),
                    Err(_) => Verifier::GitHub(hmac_of(&key)),
                }
            }
            SignatureScheme::GitHub => Verifier::GitHub(hmac_of(&key)),
        }
    }

    /// Whether `call` is signed with this key over `body`. False when the schemes
    /// differ.
    pub fn verify(&self, call: &SignedCall, body: &[u8]) -> bool {
        match (self, call) {
            (
                Verifier::Standard(secret),
                SignedCall::Standard {
                    id,
                    timestamp,
                    signatures,
                },
            ) => secret.verify(id, *timestamp, body, signatures),
            (Verifier::GitHub(mac), SignedCall::GitHub { signature }) => {
                let Some(given) = signature.strip_prefix("sha256=").and_then(decode_hex) else {
                    // Still hash the body: a malformed signature costs what a wrong one does.
                    let _ = mac.clone().chain_update(body).finalize();
                    return false;
                };
                mac.clone().chain_update(body).verify_slice(&given).is_ok()
            }
            _ => false,
        }
    }
}

fn hmac_of(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
}

/// Lowercase or uppercase hex to bytes; None when it is not hex.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn standard(id: &str, ts: i64, sig: &str) -> CallHeaders {
        CallHeaders {
            webhook_id: Some(id.into()),
            webhook_timestamp: Some(ts.to_string()),
            webhook_signature: Some(sig.into()),
            ..CallHeaders::default()
        }
    }

    #[test]
    fn headers_say_what_is_missing_and_stale_or_future_timestamps_are_refused() {
        let call = SignedCall::read(&standard("msg_1", NOW - 299, "v1,x"), NOW).expect("fresh");
        assert_eq!(call.replay_key(), "msg_1");
        for (headers, header) in [
            (standard("msg_1", NOW - 301, "v1,x"), "webhook-timestamp"),
            (standard("msg_1", NOW + 301, "v1,x"), "webhook-timestamp"),
            (standard("", NOW, "v1,x"), "webhook-id"),
            (CallHeaders::default(), "webhook-signature"),
            (
                CallHeaders {
                    hub_signature: Some("md5=abc".into()),
                    ..CallHeaders::default()
                },
                "x-hub-signature-256",
            ),
        ] {
            assert_eq!(
                SignedCall::read(&headers, NOW).expect_err("refused").header,
                header
            );
        }
        let mut bad_ts = standard("msg_1", NOW, "v1,x");
        bad_ts.webhook_timestamp = Some("yesterday".into());
        assert!(SignedCall::read(&bad_ts, NOW).is_err());
    }

    #[test]
    fn both_schemes_verify_their_own_signatures_only() {
        // Standard Webhooks: the published test vector.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let call = SignedCall::read(
            &standard(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
            1614265330,
        )
        .expect("read");
        let verifier = Verifier::new(SignatureScheme::StandardWebhooks, secret).expect("key");
        assert!(verifier.verify(&call, body));
        assert!(!verifier.verify(&call, b"{}"));
        assert!(!Verifier::stand_in(SignatureScheme::StandardWebhooks).verify(&call, body));

        // GitHub: the example from GitHub's docs ("Hello, World!", secret "It's a Secret
        // to Everybody").
        let github =
            Verifier::new(SignatureScheme::GitHub, "It's a Secret to Everybody").expect("key");
        let call = SignedCall::read(
            &CallHeaders {
                hub_signature: Some(
                    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
                        .into(),
                ),
                ..CallHeaders::default()
            },
            NOW,
        )
        .expect("read");
        assert!(github.verify(&call, b"Hello, World!"));
        assert!(!github.verify(&call, b"Hello, World?"));
        assert!(!verifier.verify(&call, b"Hello, World!"), "schemes differ");
        let malformed = SignedCall::GitHub {
            signature: "sha256=zz".into(),
        };
        assert!(!github.verify(&malformed, b"Hello, World!"));
        assert!(check_secret(SignatureScheme::GitHub, "short").is_err());
        assert!(check_secret(SignatureScheme::StandardWebhooks, "plain").is_err());
    }
}
