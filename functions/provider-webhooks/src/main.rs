//! `provider-webhooks`: the providers' push notifications (`GET|POST /webhooks/{provider}`,
//! docs/API.md, "Push notifications"). Public: each provider's signature or channel secret
//! protects it. It only checks and queues, so it answers within the providers' few seconds.

use std::sync::Arc;

use axum::Router;
use hub::web::{webhook_routes, with_fallbacks};
use hub::Hub;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub::telemetry::init();
    match start().await {
        Ok(hub) => lambda_http::run(app(hub)).await,
        Err(error) => hub::cold_start::serve_failure("provider-webhooks", error).await,
    }
}

async fn start() -> Result<Arc<Hub>, hub::HubError> {
    let hub = Arc::new(Hub::from_env().await?);
    hub::deployment::PROVIDER_WEBHOOKS.check(&hub.config)?;
    Ok(hub)
}

fn app(hub: Arc<Hub>) -> Router {
    with_fallbacks(webhook_routes(hub))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body};
    use axum::http::{HeaderMap, Request, StatusCode};
    use hmac::{Hmac, Mac};
    use lambda_http::tower::ServiceExt;

    const APP_SECRET: &str = "dropbox-app-secret";

    async fn hub(dir: &std::path::Path) -> Arc<Hub> {
        let extra = [
            ("DROPBOX_CLIENT_ID", "dropbox-app-key"),
            ("DROPBOX_CLIENT_SECRET", APP_SECRET),
            ("HUB_PUSH", "on"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        Arc::new(hub::testing::local_hub(dir, &extra).await)
    }

    async fn send(hub: &Arc<Hub>, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let response = app(hub.clone()).oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    fn get(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).unwrap()
    }

    fn signed_post(body: &str, secret: &str) -> Request<Body> {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        Request::post("/webhooks/dropbox")
            .header("content-type", "application/json")
            .header(
                "X-Dropbox-Signature",
                hex::encode(mac.finalize().into_bytes()),
            )
            .body(Body::from(body.to_string()))
            .unwrap()
    }

    #[tokio::test]
    async fn the_dropbox_challenge_is_echoed_as_plain_text_with_nosniff() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path()).await;
        let (status, headers, body) =
            send(&hub, get("/webhooks/dropbox?challenge=%3Cb%3Ehi%3C%2Fb%3E")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "<b>hi</b>");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let (status, _, body) = send(&hub, get("/webhooks/dropbox")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("invalid_request"), "{body}");
    }

    #[tokio::test]
    async fn the_sample_challenge_event_is_answered_as_dropbox_expects() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path()).await;
        let request = lambda_http::request::from_str(include_str!(
            "../../../events/provider-webhooks-challenge.json"
        ))
        .expect("sample event parses");
        let (parts, event_body) = request.into_parts();
        let request = Request::from_parts(parts, Body::from(event_body.to_vec()));
        let (status, headers, body) = send(&hub, request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "dropbox-challenge-1");
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }

    #[tokio::test]
    async fn graph_validation_tokens_are_echoed_on_get_and_post() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path()).await;
        let uri = "/webhooks/onedrive?validationToken=Validation%3A%20Testing%20client";
        for request in [get(uri), Request::post(uri).body(Body::empty()).unwrap()] {
            let (status, headers, body) = send(&hub, request).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, "Validation: Testing client");
            assert!(headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain"));
        }
        // A notice that checks out against no subscription is ignored: 202, as Graph expects.
        let notice = r#"{"value": [{"subscriptionId": "s", "clientState": "c.x"}]}"#;
        let request = Request::post("/webhooks/onedrive")
            .body(Body::from(notice))
            .unwrap();
        assert_eq!(send(&hub, request).await.0, StatusCode::ACCEPTED);
        // Google: no such channel.
        let request = Request::post("/webhooks/google")
            .header("X-Goog-Channel-ID", "unknown")
            .header("X-Goog-Channel-Token", "t")
            .header("X-Goog-Resource-State", "change")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&hub, request).await.0, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn notifications_are_checked_and_refusals_are_documented_errors() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path()).await;
        let body = r#"{"list_folder": {"accounts": ["dbid:nobody"]}, "delta": {"users": [1]}}"#;
        let (status, _, answer) = send(&hub, signed_post(body, "forged")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(answer.contains("\"unauthorized\""), "{answer}");
        // No account holds the identity: nothing to queue, and the notification is taken.
        let (status, _, _) = send(&hub, signed_post(body, APP_SECRET)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, answer) = send(&hub, get("/webhooks/icloud?challenge=x")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(answer.contains("unknown_provider"), "{answer}");
        let (status, _, answer) = send(
            &hub,
            Request::delete("/webhooks/dropbox")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(answer.contains("method_not_allowed"), "{answer}");
    }
}
