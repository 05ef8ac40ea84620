//! Generic extractors: JSON bodies, path parameters and query strings, each refusing bad input
//! with the API's error (docs/API.md, "Errors") instead of axum's text rejection.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use futures::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::HubError;

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
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            HubError::InvalidJson(format!("the request body is not valid JSON: {e}"))
        })?;
        // serde would read a struct from an array too; the API only takes objects. Such a body
        // is valid JSON, so the message must not say otherwise.
        if !value.is_object() {
            return Err(HubError::InvalidJson(format!(
                "the request body is valid JSON but {}, not the JSON object this route takes",
                json_kind(&value)
            )));
        }
        serde_json::from_value(value).map(JsonBody).map_err(|e| {
            HubError::InvalidJson(format!(
                "the request body's object is not as this route takes it: {e}"
            ))
        })
    }
}

/// "an array", "a string", ...: what a body that is not an object is.
fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
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

/// The body, read a chunk at a time and given up on as soon as it passes `limit` bytes (or
/// at once when its `Content-Length` says it will): a public route never holds more than
/// `limit` of whatever a sender streams at it. 413 `payload_too_large` in the API's error
/// shape; a body that breaks off is a 400.
pub(crate) async fn read_capped(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, HubError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(HubError::PayloadTooLarge { limit });
    }
    let mut read = Vec::new();
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk
            .map_err(|e| HubError::InvalidRequest(format!("the body could not be read: {e}")))?;
        if read.len() + chunk.len() > limit {
            return Err(HubError::PayloadTooLarge { limit });
        }
        read.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(read))
}
