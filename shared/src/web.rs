//! The HTTP side shared by the API functions: the contract's error shape, the bearer API key,
//! JSON bodies and parameters that answer bad input with a clear 4xx instead of a rejection
//! with a text body.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::HubError;

impl IntoResponse for HubError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        } else {
            tracing::info!(code = self.code(), error = %self, "request refused");
        }
        let body = json!({ "error": self.code(), "message": self.public_message() });
        (status, Json(body)).into_response()
    }
}

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

/// Answers unknown paths and methods in the contract's error shape.
pub fn with_fallbacks(router: Router) -> Router {
    router
        .fallback(|uri: Uri| async move { HubError::NotFound(uri.path().to_string()) })
        .method_not_allowed_fallback(|| async { HubError::MethodNotAllowed })
}

/// A JSON object body; an empty body is `T::default()`, anything else that is not a JSON
/// object of the right shape is `invalid_json`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for JsonBody<T> {
    type Rejection = HubError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| HubError::InvalidRequest(format!("the body could not be read: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(T::default()));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| HubError::InvalidJson(e.to_string()))?;
        // serde would read a struct from an array too; the API only takes objects.
        if !value.is_object() {
            return Err(HubError::InvalidJson(
                "the body must be a JSON object".into(),
            ));
        }
        serde_json::from_value(value)
            .map(JsonBody)
            .map_err(|e| HubError::InvalidJson(e.to_string()))
    }
}

/// A path parameter; one that does not decode is `invalid_request`, not a text rejection.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathParam(value))
            .map_err(|e| HubError::InvalidRequest(format!("bad path parameter: {e}")))
    }
}

/// The query string, percent-decoded leniently (`%20`, `+`, stray `%` all survive); the first
/// value of a repeated name wins.
pub struct QueryParams(pub HashMap<String, String>);

impl QueryParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Owned, with empty values treated as absent.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name).filter(|v| !v.is_empty())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut params = HashMap::new();
        if let Some(query) = parts.uri.query() {
            for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
                params
                    .entry(name.into_owned())
                    .or_insert_with(|| value.into_owned());
            }
        }
        Ok(QueryParams(params))
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
