//! `sync-fanout`: `POST /sync` (behind the API key) and the EventBridge schedule, both
//! queueing one sync job per matching active account whose job is not already waiting; what
//! a fan-out has no time left for goes on in the worker, as a continuation on the sync queue.
//!
//! One function serves two event shapes, so it reads the raw event and routes it: API Gateway
//! requests go through the axum router, scheduled events straight to the fan-out.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::post;
use axum::{Extension, Json, Router};
use hub::deadline::Deadline;
use hub::fanout::{self, SyncRequest, SyncStarted, Trigger};
use hub::model::SyncReason;
use hub::web::{require_api_key, with_fallbacks, ApiKey, JsonBody};
use hub::{Hub, HubError};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

mod apigw;

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub::telemetry::init();
    let (hub, router) = match start().await {
        Ok(started) => started,
        Err(error) => return hub::cold_start::serve_failure("sync-fanout", error).await,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        // Every answer comes from the hub, never from the function's (or API Gateway's)
        // timeout: the fan-out hands over to a continuation before this deadline.
        let deadline = Deadline::of_lambda(event.context.deadline(), fanout::FUNCTION_TIMEOUT)
            .less(fanout::RESERVE);
        handle(hub.clone(), router.clone(), event.payload, deadline)
    }))
    .await
}

async fn start() -> Result<(Arc<Hub>, Router), HubError> {
    let hub = Arc::new(Hub::from_env().await?);
    hub::deployment::SYNC_FANOUT.check(&hub.config)?;
    let router = app(hub.clone(), ApiKey::any_of(&hub.config.api_keys()?));
    Ok((hub, router))
}

async fn handle(
    hub: Arc<Hub>,
    router: Router,
    event: Value,
    deadline: Deadline,
) -> Result<Value, Error> {
    if fanout::is_scheduled_event(&event) {
        // EventBridge keeps the event id when Lambda retries the invocation.
        let trigger = Trigger::new(SyncReason::Schedule, deadline, event["id"].as_str());
        let started = fanout::start(&hub, SyncRequest::default(), trigger).await?;
        return Ok(serde_json::to_value(started)?);
    }
    let request: LambdaRequest = serde_json::from_value(event).map_err(|e| {
        Error::from(format!(
            "neither an API Gateway request nor a scheduled event: {e}"
        ))
    })?;
    let mut request: lambda_http::Request = request.into();
    request.extensions_mut().insert(deadline);
    let response = router.oneshot(request).await?;
    Ok(serde_json::to_value(
        apigw::to_http_api_response(response).await?,
    )?)
}

fn app(hub: Arc<Hub>, api_key: ApiKey) -> Router {
    with_fallbacks(
        Router::new()
            .route("/sync", post(start_sync))
            .route_layer(from_fn_with_state(api_key, require_api_key))
            .with_state(hub),
    )
}

async fn start_sync(
    State(hub): State<Arc<Hub>>,
    Extension(deadline): Extension<Deadline>,
    JsonBody(request): JsonBody<SyncRequest>,
) -> Result<(StatusCode, Json<SyncStarted>), HubError> {
    let trigger = Trigger::new(SyncReason::Manual, deadline, None);
    Ok((
        StatusCode::ACCEPTED,
        Json(fanout::start(&hub, request, trigger).await?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub::testing::DEV_API_KEY;
    use secrecy::SecretString;
    use serde_json::json;

    async fn invoke(event: &str) -> Value {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let router = app(hub.clone(), ApiKey::new(&SecretString::from(DEV_API_KEY)));
        let deadline = Deadline::after(std::time::Duration::from_secs(20));
        handle(hub, router, serde_json::from_str(event).unwrap(), deadline)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn http_sync_answers_202_in_the_http_api_format() {
        let answer = invoke(include_str!("../../../events/sync.json")).await;
        assert_eq!(answer["statusCode"], 202);
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"message": "Sync process started...", "target_providers": ["google", "onedrive"], "jobs_enqueued": 0})
        );
    }

    #[tokio::test]
    async fn malformed_json_is_invalid_json() {
        let answer = invoke(include_str!("../../../events/sync-bad-json.json")).await;
        assert_eq!(answer["statusCode"], 400);
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"], "invalid_json");
    }

    #[tokio::test]
    async fn bodies_that_are_not_a_json_object_are_invalid_json() {
        // API Gateway base64-encodes a body that is not text.
        let mut binary: Value =
            serde_json::from_str(include_str!("../../../events/sync.json")).unwrap();
        binary["body"] = json!("eP9PWLmAgQ==");
        binary["isBase64Encoded"] = json!(true);
        let array = include_str!("../../../events/sync.json")
            .replace(r#""{\"source_type\": \"both\"}""#, r#""[null]""#);
        for event in [binary.to_string(), array] {
            let answer = invoke(&event).await;
            assert_eq!(answer["statusCode"], 400, "{answer}");
            let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
            assert_eq!(body["error"], "invalid_json");
        }
    }

    /// `POST /sync` with `body` (a JSON text) through the HTTP API event: status and body.
    async fn post_sync(body: &str) -> (Value, Value) {
        let mut event: Value =
            serde_json::from_str(include_str!("../../../events/sync.json")).unwrap();
        event["body"] = json!(body);
        let answer = invoke(&event.to_string()).await;
        let parsed = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        (answer["statusCode"].clone(), parsed)
    }

    #[tokio::test]
    async fn an_array_body_is_called_valid_json_that_is_not_an_object() {
        let (status, body) = post_sync("[]").await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_json");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("valid JSON but an array") && message.contains("object"),
            "{message}"
        );
        assert!(!message.contains("not valid JSON"), "{message}");
        let (_, broken) = post_sync("{").await;
        assert!(
            broken["message"]
                .as_str()
                .unwrap()
                .contains("not valid JSON"),
            "{broken}"
        );
    }

    #[tokio::test]
    async fn an_unknown_source_type_names_all_both_and_every_provider() {
        let (status, body) = post_sync(r#"{"source_type": "icloud"}"#).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_source_type");
        let message = body["message"].as_str().unwrap();
        let named = hub::providers::PROVIDERS
            .iter()
            .map(|spec| spec.name.as_str())
            .chain(["all", "both", "icloud"]);
        for value in named {
            assert!(
                message.contains(&format!("'{value}'")),
                "{value}: {message}"
            );
        }
    }

    #[tokio::test]
    async fn the_schedule_syncs_every_provider() {
        let answer = invoke(include_str!("../../../events/sync-schedule.json")).await;
        assert_eq!(answer["target_providers"], json!(["google", "onedrive"]));
    }

    #[tokio::test]
    async fn other_events_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let router = app(hub.clone(), ApiKey::new(&SecretString::from(DEV_API_KEY)));
        let deadline = Deadline::after(std::time::Duration::from_secs(20));
        assert!(handle(hub, router, json!({"hello": "world"}), deadline)
            .await
            .is_err());
    }
}
