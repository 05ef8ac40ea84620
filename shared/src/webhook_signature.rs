//! Standard Webhooks signatures (docs/API.md, "Events to the app"): `webhook-signature: v1,<base64
//! of HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{body}">`, keyed with the
//! base64-decoded part of the secret after `whsec_`
//! (<https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>).
//!
//! Written on `hmac` + `sha2` rather than the `standardwebhooks` crate: that crate (1.0.1,
//! unreleased since 2024) compares signatures by zipping the two strings, so a header
//! `v1,` with an empty signature verifies against any body; the hub's own check (used by its
//! tests) must not share that hole. Signing itself is the one HMAC call below.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The signature scheme's version tag.
pub const SIGNATURE_VERSION: &str = "v1";
/// The headers of a delivery.
pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// The specification recommends secrets of 24 to 64 bytes; a shorter key is refused at cold
/// start rather than used.
const MIN_SECRET_BYTES: usize = 24;
const MAX_SECRET_BYTES: usize = 64;

/// `HUB_WEBHOOK_SECRET`: the decoded key, never shown in `Debug` output or logs.
#[derive(Clone)]
pub struct WebhookSecret {
    key: SecretSlice<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

impl WebhookSecret {
    /// Reads `whsec_<base64>`; the error says what is wrong without repeating the value.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let encoded = raw
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| format!("must start with '{SECRET_PREFIX}'"))?;
        let key = B64
            .decode(encoded)
            .map_err(|_| format!("the part after '{SECRET_PREFIX}' must be standard base64"))?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(format!(
                "must decode to {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes (got {})",
                key.len()
            ));
        }
        Ok(WebhookSecret { key: key.into() })
    }

    fn mac(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret())
            .expect("HMAC takes a key of any length");
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` header value of one attempt.
    pub fn sign(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
        let digest = self
            .mac(webhook_id, timestamp, body)
            .finalize()
            .into_bytes();
        format!("{SIGNATURE_VERSION},{}", B64.encode(digest))
    }

    /// Whether one of the space-separated `v1,` signatures of `header` signs this delivery,
    /// compared in constant time (`Mac::verify_slice`). Checking the timestamp's age is the
    /// receiver's business (the testkit's receiver does it).
    pub fn verifies(&self, webhook_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        header
            .split(' ')
            .filter_map(|signature| signature.split_once(','))
            .filter(|(version, _)| *version == SIGNATURE_VERSION)
            .filter_map(|(_, encoded)| B64.decode(encoded).ok())
            .any(|digest| {
                self.mac(webhook_id, timestamp, body)
                    .verify_slice(&digest)
                    .is_ok()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's reference libraries' vector (standard-webhooks
    /// `libraries/rust/src/lib.rs`, `test_sign`; the same values in the JavaScript and
    /// Python libraries' tests).
    const VECTOR_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const VECTOR_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const VECTOR_TIMESTAMP: i64 = 1649367553;
    const VECTOR_BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
    const VECTOR_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn signs_the_specifications_test_vector() {
        let secret = WebhookSecret::parse(VECTOR_SECRET).unwrap();
        assert_eq!(
            secret.sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY.as_bytes()),
            VECTOR_SIGNATURE
        );
        assert!(secret.verifies(
            VECTOR_ID,
            VECTOR_TIMESTAMP,
            VECTOR_BODY.as_bytes(),
            VECTOR_SIGNATURE
        ));
    }

    #[test]
    fn verification_refuses_what_does_not_match() {
        let secret = WebhookSecret::parse(VECTOR_SECRET).unwrap();
        let body = VECTOR_BODY.as_bytes();
        for header in [
            "v1,",
            "",
            "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=",
            "v2,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kk",
        ] {
            assert!(
                !secret.verifies(VECTOR_ID, VECTOR_TIMESTAMP, body, header),
                "{header:?}"
            );
        }
        assert!(!secret.verifies(VECTOR_ID, VECTOR_TIMESTAMP + 1, body, VECTOR_SIGNATURE));
        assert!(!secret.verifies("msg_other", VECTOR_TIMESTAMP, body, VECTOR_SIGNATURE));
        // One good signature among several (a secret rotation) verifies.
        let several = format!("v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU= {VECTOR_SIGNATURE}");
        assert!(secret.verifies(VECTOR_ID, VECTOR_TIMESTAMP, body, &several));
    }

    #[test]
    fn malformed_secrets_are_refused_without_echoing_them() {
        for raw in [
            "C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "whsec_not base64!",
            "whsec_c2hvcnQ=",
        ] {
            let error = WebhookSecret::parse(raw).unwrap_err();
            assert!(!error.contains(raw), "{error}");
        }
        let secret = WebhookSecret::parse(VECTOR_SECRET).unwrap();
        assert!(!format!("{secret:?}").contains("C2FV"));
    }
}
