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

/// The management routes' bearer key, kept as a digest: comparing two fixed-length digests in
/// constant time leaks neither the key's bytes nor its length.
#[derive(Clone)]
pub struct ApiKey(Arc<[u8; 32]>);

impl ApiKey {
    pub fn new(key: &SecretString) -> Self {
        ApiKey(Arc::new(
            Sha256::digest(key.expose_secret().as_bytes()).into(),
        ))
    }

    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(digest.ct_eq(self.0.as_ref()))
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
}
