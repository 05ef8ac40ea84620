//! `HubError` as an HTTP response: its status and `{"error", "message"}` body (docs/API.md,
//! "Errors").

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::HubError;

/// The error's status as an HTTP status code.
pub fn status_code(error: &HubError) -> StatusCode {
    StatusCode::from_u16(error.status()).expect("HubError::status is always a valid HTTP status")
}

impl IntoResponse for HubError {
    fn into_response(self) -> Response {
        let status = status_code(&self);
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        } else {
            tracing::info!(code = self.code(), error = %self, "request refused");
        }
        let body = json!({ "error": self.code(), "message": self.public_message() });
        let mut response = (status, Json(body)).into_response();
        if let HubError::Unavailable(_) = self {
            // Nothing was wrong with the request: the caller may send it again at once.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ProviderError;

    #[test]
    fn every_class_of_error_maps_to_its_documented_status() {
        let cases = [
            (HubError::Unauthorized, StatusCode::UNAUTHORIZED),
            (
                HubError::ProviderNotConfigured {
                    provider: "google".into(),
                    for_sync: false,
                },
                StatusCode::NOT_FOUND,
            ),
            (
                HubError::ProviderNotConfigured {
                    provider: "google".into(),
                    for_sync: true,
                },
                StatusCode::BAD_REQUEST,
            ),
            (HubError::MethodNotAllowed, StatusCode::METHOD_NOT_ALLOWED),
            (
                HubError::Provider(ProviderError::InvalidGrant),
                StatusCode::BAD_GATEWAY,
            ),
            (
                HubError::internal("disk full"),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(status_code(&error), expected, "{error:?}");
        }
    }
}
