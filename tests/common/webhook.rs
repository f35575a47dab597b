//! What a Standard Webhooks receiver sees and checks: one request as received, its
//! headers, and the signature verified with the receiver's own HMAC (not Octo's code).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// One request as the receiver saw it.
pub struct Received {
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

pub fn header<'a>(received: &'a Received, name: &str) -> &'a str {
    received
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("header {name}"))
        .to_str()
        .expect("ascii header")
}

/// Verifies a request as a Standard Webhooks consumer would: a fresh timestamp and a
/// `v1` signature of `id.timestamp.body` with the `whsec_` secret's key.
pub fn verify(received: &Received, secret: &str) {
    let id = header(received, "webhook-id");
    let timestamp: i64 = header(received, "webhook-timestamp")
        .parse()
        .expect("integer timestamp");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!(
        (now - timestamp).abs() <= 60,
        "timestamp {timestamp} is not fresh (now {now})"
    );
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("prefix"))
        .expect("base64 key");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("hmac key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&received.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let signatures = header(received, "webhook-signature");
    assert!(
        signatures.split(' ').any(|s| s == expected),
        "no valid signature in {signatures:?}"
    );
}
