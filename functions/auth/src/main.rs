//! `auth`: the OAuth2 login (`GET /auth/{provider}/login`), its callback
//! (`GET /auth/{provider}/callback`) and the connect page (`GET /connect?session=`). Public
//! routes: the `state`, PKCE, the login's cookie and the session's token protect them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use hub::deadline::Deadline;
use hub::login;
use hub::web::{
    callback_response, clear_login_cookie, connect_page, login_response, with_fallbacks,
    CallbackAudience, CallbackParams, PathParam, QueryParams,
};
use hub::{Hub, HubError};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub::telemetry::init();
    match start().await {
        Ok(hub) => lambda_http::run(app(hub)).await,
        Err(error) => hub::cold_start::serve_failure("auth", error).await,
    }
}

async fn start() -> Result<Arc<Hub>, HubError> {
    let hub = Arc::new(Hub::from_env().await?);
    hub::deployment::AUTH.check(&hub.config)?;
    Ok(hub)
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

/// The 302 to the consent page sets the login's cookie (docs/API.md, "Logins").
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
    headers: HeaderMap,
    CallbackParams(callback): CallbackParams,
) -> Response {
    let deadline = Deadline::of_invocation(invocation.map(|Extension(context)| context.deadline));
    let state = callback.state.clone();
    let finished = login::finish_by(&hub, &provider, callback, deadline).await;
    let response = callback_response(
        finished,
        &provider,
        CallbackAudience::of(&headers, &hub.config.return_urls),
        &hub.config.public_url,
    );
    clear_login_cookie(response, state.as_deref(), &hub.config.public_url)
}

/// The page lists the session's providers; a missing `session` is an invalid one.
async fn show_connect_page(State(hub): State<Arc<Hub>>, query: QueryParams) -> Response {
    connect_page(&hub, query.get("session").filter(|token| !token.is_empty())).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use axum::http::{header, StatusCode};
    use lambda_http::tower::ServiceExt;
    use serde_json::Value;

    /// The function's answer to a sample event: status, headers and the raw body.
    async fn respond(
        hub: Arc<Hub>,
        event: &str,
    ) -> (StatusCode, axum::http::HeaderMap, axum::body::Bytes) {
        let request = lambda_http::request::from_str(event).expect("sample event parses");
        let response = app(hub).oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, 1 << 20).await.unwrap();
        (parts.status, parts.headers, bytes)
    }

    /// [`respond`] with a JSON body (`Null` when it is none).
    async fn call(hub: Arc<Hub>, event: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        let (status, headers, bytes) = respond(hub, event).await;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, body)
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
    async fn callback_events_answer_the_documented_errors() {
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

    /// A browser (its `Accept` prefers HTML) gets a page with the same status, saying what
    /// happened and offering to try again; a program keeps the JSON.
    #[tokio::test]
    async fn a_browser_gets_a_page_and_a_program_the_json() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let denied = include_str!("../../../events/auth-callback-denied.json");
        let browser = denied.replace(
            "\"accept\": \"application/json\"",
            "\"accept\": \"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\"",
        );
        assert_ne!(browser, denied, "the sample event names its Accept");
        let (status, headers, body) = respond(hub.clone(), &browser).await;
        let page = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(page.contains("Access was not allowed"), "{page}");
        assert!(
            page.replace("&#x2F;", "/")
                .contains("href=\"http://localhost:9000/auth/onedrive/login\""),
            "{page}"
        );
        assert!(
            !page.contains("authorization_denied"),
            "no raw code for a person"
        );
        for program in [
            denied.to_string(),
            denied.replace("application/json", "*/*"),
        ] {
            let (status, _, body) = call(hub.clone(), &program).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some("authorization_denied"))
            );
        }
    }

    #[tokio::test]
    async fn unknown_and_unconfigured_providers_are_404() {
        let dir = tempfile::tempdir().unwrap();
        let only_google = [("ONEDRIVE_CLIENT_SECRET".to_string(), String::new())];
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &only_google).await);
        let event = include_str!("../../../events/auth-login.json");
        let (status, _, body) = call(
            hub.clone(),
            &event.replace("/auth/google/", "/auth/icloud/"),
        )
        .await;
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

    /// [`respond`] with a page's text.
    async fn page(hub: Arc<Hub>, event: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let (status, headers, bytes) = respond(hub, event).await;
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
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
                    "href=\"http:&#x2F;&#x2F;localhost:9000&#x2F;auth&#x2F;{provider}&#x2F;login?session={}\"",
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

    /// A hub served under a path (`HUB_PUBLIC_URL=https://example.com/hub`, behind a proxy
    /// that maps `/hub/*` to the API) links to its login under that path, and its OAuth
    /// redirect URI keeps the path too.
    #[tokio::test]
    async fn the_connect_pages_links_keep_the_public_urls_path() {
        let dir = tempfile::tempdir().unwrap();
        let public = [(
            "HUB_PUBLIC_URL".to_string(),
            "https://example.com/hub".to_string(),
        )];
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &public).await);
        let created = hub::connect::create(
            &hub,
            hub::connect::NewSession {
                owner: Some("app-user-1".into()),
                return_to: None,
                providers: Some(vec!["google".into()]),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            created.connect_url,
            format!("https://example.com/hub/connect?session={}", created.token)
        );
        let event = include_str!("../../../events/connect-page.json");
        let (status, _, html) = page(hub.clone(), &with_session(event, &created.token)).await;
        assert_eq!(status, StatusCode::OK);
        // The page escapes `/` in attribute values (the token is base64url: nothing else).
        let href = format!(
            "href=\"{}\"",
            format!(
                "https://example.com/hub/auth/google/login?session={}",
                created.token
            )
            .replace('/', "&#x2F;")
        );
        assert!(html.contains(&href), "{href} in {html}");
        let login = with_session(
            include_str!("../../../events/auth-login.json"),
            &created.token,
        );
        let (status, headers, _) = call(hub, &login).await;
        assert_eq!(status, StatusCode::FOUND);
        let location = headers[header::LOCATION].to_str().unwrap();
        assert!(
            location.contains(
                "redirect_uri=https%3A%2F%2Fexample.com%2Fhub%2Fauth%2Fgoogle%2Fcallback"
            ),
            "{location}"
        );
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
        // A login with an unknown session is a JSON error, not a page.
        let login = with_session(include_str!("../../../events/auth-login.json"), "nope");
        let (status, _, body) = call(hub, &login).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_session"))
        );
    }

    /// The login event for `provider` (`?session=` when given).
    fn login_event(provider: &str, session: Option<&str>) -> String {
        let event = include_str!("../../../events/auth-login.json")
            .replace("/auth/google/", &format!("/auth/{provider}/"));
        match session {
            Some(token) => with_session(&event, token),
            None => event,
        }
    }

    /// The callback event a browser sends after the stand-in's consent: the redirect's
    /// query, and the cookies the browser holds for `/auth/`.
    fn callback_event(callback_url: &str, cookies: &[&str]) -> String {
        let url = reqwest::Url::parse(callback_url).unwrap();
        let mut event: Value =
            serde_json::from_str(include_str!("../../../events/auth-callback.json")).unwrap();
        event["rawQueryString"] = Value::String(url.query().unwrap_or_default().to_string());
        let params: serde_json::Map<String, Value> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        event["queryStringParameters"] = Value::Object(params);
        // API Gateway's payload 2.0 carries the request's cookies in `cookies`.
        event["cookies"] = serde_json::json!(cookies);
        event.to_string()
    }

    /// Starts a login through the handler and consents at the stand-in: the login's
    /// `name=value` cookie and the callback URL the stand-in redirects to.
    async fn consent_through_the_handler(hub: Arc<Hub>, session: Option<&str>) -> (String, String) {
        let (status, headers, _) = call(hub, &login_event("google", session)).await;
        assert_eq!(status, StatusCode::FOUND);
        let set_cookie = headers[header::SET_COOKIE].to_str().unwrap().to_string();
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        let consent_url = headers[header::LOCATION].to_str().unwrap();
        let consent = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(consent_url)
            .send()
            .await
            .unwrap();
        let callback = consent.headers()["location"].to_str().unwrap().to_string();
        (cookie, callback)
    }

    #[tokio::test]
    async fn a_login_sets_its_cookie_and_only_that_browser_finishes_it() {
        let providers = hub_testkit::FakeProviders::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut vars = providers.env_vars();
        vars.push(("HUB_PUBLIC_URL".into(), "https://hub.example".into()));
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &vars).await);

        let (status, headers, _) = call(hub.clone(), &login_event("google", None)).await;
        assert_eq!(status, StatusCode::FOUND);
        let set_cookie = headers[header::SET_COOKIE].to_str().unwrap();
        for attribute in [
            "HttpOnly",
            "SameSite=Lax",
            "Path=/auth/",
            "Max-Age=600",
            "Secure",
        ] {
            assert!(set_cookie.contains(attribute), "{attribute}: {set_cookie}");
        }
        assert!(set_cookie.starts_with("hub_login_"), "{set_cookie}");

        // Two user agents: the login in one, the consent and the callback in the other.
        let (cookie, callback) = consent_through_the_handler(hub.clone(), None).await;
        let (status, _, body) = call(hub.clone(), &callback_event(&callback, &[])).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_state"))
        );
        // Another login's key, under this login's cookie name, does not pass either.
        let (other, _) = consent_through_the_handler(hub.clone(), None).await;
        let (mine, other_callback) = consent_through_the_handler(hub.clone(), None).await;
        let forged = format!(
            "{}={}",
            mine.split_once('=').unwrap().0,
            other.split_once('=').unwrap().1
        );
        let (status, _, body) =
            call(hub.clone(), &callback_event(&other_callback, &[&forged])).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_state"))
        );
        // The state of the refused callback is spent: its own browser cannot use it now.
        let (status, _, _) = call(hub.clone(), &callback_event(&callback, &[&cookie])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(hub::accounts::page(hub.store.as_ref(), 10, None)
            .await
            .unwrap()
            .accounts
            .is_empty());

        // One browser, two tabs: the browser sends every login cookie it holds.
        let first = consent_through_the_handler(hub.clone(), None).await;
        let second = consent_through_the_handler(hub.clone(), None).await;
        for callback in [&second.1, &first.1] {
            let request = callback_event(callback, &["theme=dark", &first.0, &second.0]);
            let (status, headers, body) = call(hub.clone(), &request).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["provider"], "google");
            // The spent login's cookie is removed.
            let cleared = headers[header::SET_COOKIE].to_str().unwrap();
            assert!(cleared.contains("Max-Age=0"), "{cleared}");
        }
    }

    #[tokio::test]
    async fn require_session_refuses_a_login_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let strict = [("HUB_REQUIRE_SESSION".to_string(), "true".to_string())];
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &strict).await);
        let (status, headers, body) = call(hub, &login_event("google", None)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_session"))
        );
        assert!(headers.get(header::SET_COOKIE).is_none());
    }
}
