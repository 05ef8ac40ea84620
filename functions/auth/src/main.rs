//! `auth`: the OAuth2 login (`GET /auth/{provider}/login`), its callback
//! (`GET /auth/{provider}/callback`) and the connect page (`GET /connect?session=`). Public
//! routes: the `state`, PKCE and the session's token protect them.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use hub::deadline::Deadline;
use hub::login;
use hub::web::{
    callback_response, clear_login_cookie, connect_page, login_response, with_fallbacks,
    CallbackParams, PathParam, QueryParams,
};
use hub::{Hub, HubError};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub::telemetry::init();
    let hub = Arc::new(Hub::from_env().await?);
    lambda_http::run(app(hub)).await
}

fn app(hub: Arc<Hub>) -> Router {
    with_fallbacks(
        Router::new()
            .route("/auth/{provider}/login", get(begin_login))
            .route("/auth/{provider}/callback", get(complete_login))
            .route("/connect", get(show_connect_page))
            .with_state(hub),
    )
}

/// The 302 to the consent page sets the login's cookie (section 16).
async fn begin_login(
    State(hub): State<Arc<Hub>>,
    PathParam(provider): PathParam,
    mut query: QueryParams,
) -> Result<Response, HubError> {
    let session = query.take("session");
    let started = login::begin_with(&hub, &provider, session.as_deref()).await?;
    Ok(login_response(&started, &hub.config.public_url))
}

/// The callback's provider calls end before the invocation's deadline, with a margin to
/// answer (the context is absent outside Lambda: then the function's timeout from now).
/// Whatever the outcome, the login's cookie goes: its state is spent.
async fn complete_login(
    State(hub): State<Arc<Hub>>,
    PathParam(provider): PathParam,
    invocation: Option<Extension<lambda_http::Context>>,
    CallbackParams(callback): CallbackParams,
) -> Response {
    let deadline = Deadline::of_invocation(invocation.map(|Extension(context)| context.deadline));
    let state = callback.state.clone();
    let response = callback_response(login::finish_by(&hub, &provider, callback, deadline).await);
    clear_login_cookie(response, state.as_deref(), &hub.config.public_url)
}

/// The page lists the session's providers; a missing `session` is an invalid one.
async fn show_connect_page(State(hub): State<Arc<Hub>>, query: QueryParams) -> Response {
    connect_page(&hub, query.get("session").filter(|token| !token.is_empty())).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, StatusCode};
    use axum::body::to_bytes;
    use lambda_http::tower::ServiceExt;
    use serde_json::Value;

    async fn call(hub: Arc<Hub>, event: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        let request = lambda_http::request::from_str(event).expect("sample event parses");
        let response = app(hub).oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn login_event_redirects_to_the_consent_page() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let (status, headers, _) = call(hub, include_str!("../../../events/auth-login.json")).await;
        assert_eq!(status, StatusCode::FOUND);
        let location = headers[header::LOCATION].to_str().unwrap();
        assert!(location.starts_with("https://accounts.google.com/o/oauth2/v2/auth?"));
        for part in [
            "response_type=code",
            "code_challenge_method=S256",
            "access_type=offline",
            "prompt=consent",
            "state=",
        ] {
            assert!(location.contains(part), "{part} in {location}");
        }
        assert!(location
            .contains("redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fauth%2Fgoogle%2Fcallback"));
    }

    #[tokio::test]
    async fn redirect_uris_never_come_from_request_headers() {
        let dir = tempfile::tempdir().unwrap();
        let public = [(
            "HUB_PUBLIC_URL".to_string(),
            "https://hub.example.org".to_string(),
        )];
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &public).await);
        let forged = include_str!("../../../events/auth-login.json").replace(
            r#""host": "localhost:9000""#,
            r#""host": "evil.example", "x-forwarded-host": "evil.example""#,
        );
        assert!(forged.contains("evil.example"));
        let (status, headers, _) = call(hub, &forged).await;
        assert_eq!(status, StatusCode::FOUND);
        let location = headers[header::LOCATION].to_str().unwrap();
        assert!(
            location
                .contains("redirect_uri=https%3A%2F%2Fhub.example.org%2Fauth%2Fgoogle%2Fcallback"),
            "{location}"
        );
        assert!(!location.contains("evil"));
    }

    #[tokio::test]
    async fn callback_events_answer_the_contract_errors() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let (status, _, body) = call(
            hub.clone(),
            include_str!("../../../events/auth-callback.json"),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_state"))
        );
        let (status, _, body) = call(
            hub,
            include_str!("../../../events/auth-callback-denied.json"),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("authorization_denied"))
        );
        assert!(body["message"].as_str().unwrap().ends_with('.'));
    }

    #[tokio::test]
    async fn unknown_and_unconfigured_providers_are_404() {
        let dir = tempfile::tempdir().unwrap();
        let only_google = [("ONEDRIVE_CLIENT_SECRET".to_string(), String::new())];
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &only_google).await);
        let event = include_str!("../../../events/auth-login.json");
        let (status, _, body) =
            call(hub.clone(), &event.replace("/auth/google/", "/auth/box/")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_provider"))
        );
        let (status, _, body) = call(hub, &event.replace("/auth/google/", "/auth/onedrive/")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("provider_not_configured"))
        );
    }

    async fn page(hub: Arc<Hub>, event: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let request = lambda_http::request::from_str(event).expect("sample event parses");
        let response = app(hub).oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    fn with_session(event: &str, token: &str) -> String {
        let mut event: Value = serde_json::from_str(event).unwrap();
        event["rawQueryString"] = Value::String(format!("session={token}"));
        event["queryStringParameters"] = serde_json::json!({ "session": token });
        event.to_string()
    }

    fn assert_page_headers(headers: &axum::http::HeaderMap) {
        assert!(headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'none'") && csp.contains("frame-ancestors 'none'"));
    }

    #[tokio::test]
    async fn the_connect_page_lists_the_sessions_providers() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let created = hub::connect::create(
            &hub,
            hub::connect::NewSession {
                owner: Some("app-user-1".into()),
                return_to: None,
                providers: Some(vec!["onedrive".into(), "google".into()]),
            },
        )
        .await
        .unwrap();
        let event = include_str!("../../../events/connect-page.json");
        let (status, headers, html) = page(hub.clone(), &with_session(event, &created.token)).await;
        assert_eq!(status, StatusCode::OK);
        assert_page_headers(&headers);
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<html lang=\"en\">") && html.contains("<title>"));
        assert!(!html.contains("<script"));
        for (provider, name) in [
            ("google", "Google Drive"),
            ("onedrive", "Microsoft OneDrive"),
        ] {
            assert!(
                html.contains(&format!(
                    "href=\"&#x2F;auth&#x2F;{provider}&#x2F;login?session={}\"",
                    created.token
                )),
                "{html}"
            );
            assert!(html.contains(&format!("Connect {name}</a>")));
        }
        assert!(!html.contains("Dropbox"));
        // The login of a session goes to the consent page.
        let login = with_session(
            include_str!("../../../events/auth-login.json"),
            &created.token,
        );
        let (status, _, _) = call(hub.clone(), &login).await;
        assert_eq!(status, StatusCode::FOUND);
    }

    #[tokio::test]
    async fn an_invalid_session_gets_the_error_page() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let event = include_str!("../../../events/connect-page.json");
        let mut missing: Value = serde_json::from_str(event).unwrap();
        missing["rawQueryString"] = Value::String(String::new());
        missing["queryStringParameters"] = serde_json::json!({});
        for event in [
            event.to_string(),
            missing.to_string(),
            with_session(event, &"x".repeat(5000)),
            with_session(event, "%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        ] {
            let (status, headers, html) = page(hub.clone(), &event).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_page_headers(&headers);
            assert!(html.contains("invalid_session"));
            assert!(!html.contains("<script"));
        }
        // A login with an unknown session is the contract's JSON error.
        let login = with_session(include_str!("../../../events/auth-login.json"), "nope");
        let (status, _, body) = call(hub, &login).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_session"))
        );
    }
}
