//! The management routes' bearer API key.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::HubError;

/// The management routes' bearer keys (`HUB_API_KEY`, and `HUB_API_KEY_NEXT` during a
/// rotation), kept as digests: comparing fixed-length digests in constant time leaks neither
/// a key's bytes nor its length, and every key is compared, so the time does not say which
/// one matched.
#[derive(Clone)]
pub struct ApiKey(Arc<[[u8; 32]]>);

impl ApiKey {
    pub fn new(key: &SecretString) -> Self {
        Self::any_of(std::slice::from_ref(key))
    }

    /// Accepts each of `keys` (the current key, then the next one of a rotation).
    pub fn any_of(keys: &[SecretString]) -> Self {
        ApiKey(
            keys.iter()
                .map(|key| Sha256::digest(key.expose_secret().as_bytes()).into())
                .collect(),
        )
    }

    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let matched = self.0.iter().fold(subtle::Choice::from(0), |matched, key| {
            matched | digest.ct_eq(key)
        });
        bool::from(matched)
    }
}

/// Middleware: 401 `unauthorized` unless `Authorization: Bearer <HUB_API_KEY>`.
pub async fn require_api_key(State(key): State<ApiKey>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        Some(token) if key.matches(token) => next.run(request).await,
        _ => HubError::Unauthorized.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_matches_exactly() {
        let key = ApiKey::new(&SecretString::from("s3cret-key"));
        assert!(key.matches("s3cret-key"));
        assert!(!key.matches("s3cret-ke"));
        assert!(!key.matches("s3cret-key "));
        assert!(!key.matches(""));
    }

    #[test]
    fn during_a_rotation_both_keys_match_and_nothing_else() {
        let keys = [
            SecretString::from("current-key"),
            SecretString::from("next-key"),
        ];
        let key = ApiKey::any_of(&keys);
        assert!(key.matches("current-key"));
        assert!(key.matches("next-key"));
        assert!(!key.matches("current-keynext-key"));
        assert!(!key.matches("next-ke"));
        assert!(!key.matches(""));
        // Once promoted, the old key no longer opens the routes.
        let promoted = ApiKey::any_of(&keys[1..]);
        assert!(promoted.matches("next-key"));
        assert!(!promoted.matches("current-key"));
    }
}
