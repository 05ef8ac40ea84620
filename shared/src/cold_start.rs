//! A function whose cold start fails (a missing or malformed variable, an unreachable store)
//! still runs the Lambda runtime, answering every invocation with the reason, instead of
//! exiting. Exiting left the caller with nothing to read: under `cargo lambda watch` an
//! invocation of such a function never returned, and in AWS the caller saw only
//! `Runtime.ExitError`. The reason also goes to the log, once, at the cold start.
//!
//! An HTTP API event gets the API's error shape (docs/API.md, "Errors"): 500
//! `internal_error` with the reason as its message (configuration messages name variables,
//! never a secret's value). Any other event (a queue batch, a schedule, a direct invoke) gets a
//! function error carrying the reason, which `cargo lambda invoke` and `aws lambda invoke`
//! print and which makes SQS deliver the batch again, then dead-letter it, so no event is
//! lost while the function is misconfigured.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

use crate::error::HubError;

/// Logs why `function` cannot start and serves that reason to every invocation, until the
/// runtime stops it.
pub async fn serve_failure(function: &str, error: HubError) -> Result<(), Error> {
    let reason = reason(function, &error);
    tracing::error!(function, error = %error, "the function cannot start; every invocation answers with this error");
    let reason = reason.as_str();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        answer(&event.payload, reason)
    }))
    .await
}

fn reason(function: &str, error: &HubError) -> String {
    format!("{function} cannot start: {error}")
}

/// The answer to one invocation: an HTTP API response for an HTTP request, an error otherwise.
fn answer(event: &Value, reason: &str) -> Result<Value, Error> {
    if !is_http_request(event) {
        return Err(Error::from(reason.to_string()));
    }
    let body = json!({"error": "internal_error", "message": format!("{reason}.")});
    Ok(json!({
        "statusCode": 500,
        "headers": {"content-type": "application/json"},
        "body": body.to_string(),
        "isBase64Encoded": false,
    }))
}

/// API Gateway's HTTP API (payload 2.0, what the template and `cargo lambda watch` send) and
/// REST (1.0) requests, and function URL requests, all carry `requestContext` with the
/// request's method.
fn is_http_request(event: &Value) -> bool {
    let context = &event["requestContext"];
    context["http"]["method"].is_string() || context["httpMethod"].is_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MISSING: &str = "HUB_WEBHOOK_URL is required by app-webhooks";

    #[test]
    fn an_http_request_gets_the_apis_error_shape_with_the_reason() {
        let event: Value = serde_json::from_str(include_str!("../../events/config.json")).unwrap();
        let reason = reason("users", &HubError::Config(MISSING.into()));
        let answer = answer(&event, &reason).unwrap();
        assert_eq!(answer["statusCode"], 500);
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"], "internal_error");
        assert_eq!(
            body["message"],
            format!("users cannot start: configuration error: {MISSING}.")
        );
    }

    #[test]
    fn any_other_event_is_a_function_error_with_the_reason() {
        let batch: Value =
            serde_json::from_str(include_str!("../../events/app-webhooks-batch.json")).unwrap();
        let reason = reason("app-webhooks", &HubError::Config(MISSING.into()));
        let error = answer(&batch, &reason).unwrap_err().to_string();
        assert!(error.starts_with("app-webhooks cannot start: "), "{error}");
        assert!(error.contains(MISSING), "{error}");
    }
}
