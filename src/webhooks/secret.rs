//! Standard Webhooks signing secrets: `whsec_` + base64 of a 24 to 64 byte key, and the
//! `v1,` HMAC-SHA256 signature of `{id}.{timestamp}.{payload}`. The key never appears in
//! errors or `Debug` output.

use std::fmt;

use base64::{
    Engine,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig, general_purpose::STANDARD},
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The prefix of a serialized signing secret.
const SECRET_PREFIX: &str = "whsec_";
/// Key sizes the spec allows: 24 bytes (192 bits) to 64 bytes (512 bits).
const MIN_KEY: usize = 24;
const MAX_KEY: usize = 64;
/// The size of generated keys.
const GENERATED_KEY: usize = 32;
/// Decodes base64 with or without its `=` padding.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A signing secret: `whsec_` + base64 of the key bytes.
#[derive(Clone)]
pub struct WebhookSecret {
    text: String,
    mac: Hmac<Sha256>,
}

impl WebhookSecret {
    /// Parses the `whsec_` form: base64 (padded or not) of a 24 to 64 byte key.
    /// Surrounding whitespace is ignored. Errors never include the secret.
    pub fn parse(s: &str) -> Result<Self, String> {
        let text = s.trim();
        let Some(encoded) = text.strip_prefix(SECRET_PREFIX) else {
            return Err(format!(
                "a webhook secret must start with `{SECRET_PREFIX}` followed by the base64 of \
                 its key"
            ));
        };
        let key = LENIENT_BASE64.decode(encoded).map_err(|_| {
            format!("the part of the webhook secret after `{SECRET_PREFIX}` is not valid base64")
        })?;
        if !(MIN_KEY..=MAX_KEY).contains(&key.len()) {
            return Err(format!(
                "a webhook secret's key must be {MIN_KEY} to {MAX_KEY} bytes; this one decodes \
                 to {} bytes",
                key.len()
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|_| "the webhook secret's key cannot be used with HMAC-SHA256".to_string())?;
        Ok(Self {
            text: text.to_string(),
            mac,
        })
    }

    /// A new secret of 32 random bytes from the operating system.
    ///
    /// # Panics
    ///
    /// When the operating system has no randomness to give (as `uuid` does then).
    pub fn generate() -> Self {
        let mut key = [0u8; GENERATED_KEY];
        getrandom::fill(&mut key)
            .unwrap_or_else(|e| panic!("cannot get random bytes for a webhook secret: {e}"));
        let text = format!("{SECRET_PREFIX}{}", STANDARD.encode(key));
        match Self::parse(&text) {
            Ok(secret) => secret,
            // 32 bytes of base64 with the prefix always parse.
            Err(e) => panic!("a generated webhook secret does not parse: {e}"),
        }
    }

    /// The `whsec_` form, to store.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{payload}")>`.
    pub fn sign(&self, id: &str, timestamp: i64, payload: &[u8]) -> String {
        format!(
            "v1,{}",
            STANDARD.encode(self.digest(id, timestamp, payload))
        )
    }

    /// Whether `header` (a `webhook-signature` value: space-separated signatures, e.g.
    /// `v1,<base64> v1,<base64>` while a sender rotates keys) holds this key's signature
    /// of the message. Each candidate is compared in constant time; other versions are
    /// skipped.
    pub fn verify(&self, id: &str, timestamp: i64, payload: &[u8], header: &str) -> bool {
        let expected = self.digest(id, timestamp, payload);
        let mut matched = subtle::Choice::from(0);
        for candidate in header.split_whitespace() {
            if let Some(encoded) = candidate.strip_prefix("v1,")
                && let Ok(given) = STANDARD.decode(encoded)
            {
                matched |= subtle::ConstantTimeEq::ct_eq(given.as_slice(), expected.as_slice());
            }
        }
        matched.into()
    }

    /// HMAC-SHA256(key, "{id}.{timestamp}.{payload}").
    fn digest(&self, id: &str, timestamp: i64, payload: &[u8]) -> Vec<u8> {
        let mut mac = self.mac.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(whsec_<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_published_test_vectors() {
        // From the Standard Webhooks / Svix reference libraries' tests.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("parse");
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let secret = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").expect("parse");
        assert_eq!(
            secret.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn verification_accepts_its_own_signature_among_others_and_nothing_else() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("parse");
        let body = br#"{"test": 2432232314}"#;
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, good));
        let rotated = format!("v1,Zm9v v2,{} {good}", &good[3..]);
        assert!(secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, &rotated));
        for (id, ts, body, header) in [
            ("msg_other", 1614265330, &body[..], good),
            ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, &body[..], good),
            ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, &b"{}"[..], good),
            (
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                &body[..],
                &good[3..],
            ),
            ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, &body[..], ""),
            (
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                &body[..],
                "v1,not base64!",
            ),
        ] {
            assert!(!secret.verify(id, ts, body, header), "{id} {ts} {header}");
        }
    }

    #[test]
    fn secret_parsing_says_what_is_wrong() {
        let no_prefix = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err();
        assert!(
            no_prefix.contains("must start with `whsec_`"),
            "{no_prefix}"
        );
        assert!(!no_prefix.contains("MfKQ"), "{no_prefix}");
        let not_base64 = WebhookSecret::parse("whsec_not*base64!").unwrap_err();
        assert!(not_base64.contains("not valid base64"), "{not_base64}");
        let short = format!("whsec_{}", STANDARD.encode([7u8; 23]));
        let short = WebhookSecret::parse(&short).unwrap_err();
        assert!(
            short.contains("24 to 64 bytes") && short.contains("23"),
            "{short}"
        );
        let long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert!(WebhookSecret::parse(&long).unwrap_err().contains("65"));
        assert!(WebhookSecret::parse("whsec_").is_err());
        assert!(WebhookSecret::parse("").is_err());
        // Both ends of the range, padded or not, and surrounding whitespace.
        for len in [MIN_KEY, MAX_KEY, 32] {
            let text = format!("whsec_{}", STANDARD.encode(vec![1u8; len]));
            assert_eq!(WebhookSecret::parse(&text).expect("valid").as_str(), text);
            let unpadded = text.trim_end_matches('=');
            assert_eq!(
                WebhookSecret::parse(unpadded).expect("valid").as_str(),
                unpadded
            );
        }
        let spaced = WebhookSecret::parse(" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").expect("ok");
        assert_eq!(spaced.as_str(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    }

    #[test]
    fn generated_secrets_are_random_32_byte_keys() {
        let a = WebhookSecret::generate();
        let b = WebhookSecret::generate();
        assert_ne!(a.as_str(), b.as_str());
        let key = STANDARD
            .decode(a.as_str().strip_prefix("whsec_").expect("prefix"))
            .expect("base64");
        assert_eq!(key.len(), 32);
        let again = WebhookSecret::parse(a.as_str()).expect("round trip");
        assert_eq!(again.sign("msg_x", 1, b"{}"), a.sign("msg_x", 1, b"{}"));
    }
}
