//! The OAuth2 login against a wiremock stand-in of Google: state single use, expiry and
//! provider binding, PKCE, re-login keeping the account and its refresh token (or replacing
//! tokens it can no longer open), refusals, provider calls bounded by the request's deadline;
//! and against the testkit's providers: granular consent.

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use hub::config::Env;
use hub::crypto::Sealed;
use hub::deadline::Deadline;
use hub::login::{self, Callback, Started};
use hub::providers::http::RetryPolicy;
use hub::{Hub, HubError, ProviderError};
use secrecy::ExposeSecret;
use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn fixture() -> (MockServer, Hub, tempfile::TempDir) {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let base = server.uri();
    let env = Env::from_map([
        ("HUB_DATA_DIR", dir.path().display().to_string()),
        ("HUB_PUBLIC_URL", "https://hub.example".into()),
        ("GOOGLE_CLIENT_ID", "g-id".into()),
        ("GOOGLE_CLIENT_SECRET", "g-secret".into()),
        ("GOOGLE_AUTH_URL", format!("{base}/auth")),
        ("GOOGLE_TOKEN_URL", format!("{base}/token")),
        ("GOOGLE_REVOKE_URL", format!("{base}/revoke")),
        ("GOOGLE_API_URL", base.clone()),
        ("ONEDRIVE_CLIENT_ID", "m-id".into()),
        ("ONEDRIVE_CLIENT_SECRET", "m-secret".into()),
        ("ONEDRIVE_AUTHORITY_URL", base.clone()),
    ]);
    let hub = Hub::build(&env, RetryPolicy::default()).await.unwrap();
    Mock::given(method("GET"))
        .and(path("/oauth2/v3/userinfo"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"sub": "g-123", "email": "alice@example.com"})),
        )
        .mount(&server)
        .await;
    (server, hub, dir)
}

async fn mount_token(server: &MockServer, code: &str, access: &str, refresh: Option<&str>) {
    let mut answer = json!({"access_token": access, "expires_in": 3599, "token_type": "Bearer"});
    if let Some(refresh) = refresh {
        answer["refresh_token"] = json!(refresh);
    }
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains(format!("code={code}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .mount(server)
        .await;
}

/// The callback of `started`'s login with `code`, from the browser that started it.
fn callback(code: &str, started: &Started) -> Callback {
    Callback::for_browser(started, elsewhere(code, &started.state))
}

/// The callback of the login of `state` with `code`, from a browser without its cookie.
fn elsewhere(code: &str, state: &str) -> Callback {
    Callback {
        code: Some(code.into()),
        state: Some(state.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_login_connects_the_account_and_its_state_works_once() {
    let (server, hub, _dir) = fixture().await;
    mount_token(&server, "code-1", "ya29.one", Some("1//refresh-one")).await;
    let state = login::begin(&hub, "google").await.unwrap();
    assert!(state
        .consent_url
        .contains("redirect_uri=https%3A%2F%2Fhub.example%2Fauth%2Fgoogle%2Fcallback"));

    let account = login::complete(&hub, "google", callback("code-1", &state))
        .await
        .unwrap();
    assert_eq!(
        (account.email.as_str(), account.provider.as_str()),
        ("alice@example.com", "google")
    );
    assert!(account.has_refresh_token);
    let view = serde_json::to_string(&account).unwrap();
    assert!(
        !view.contains("ya29") && !view.contains("1//refresh"),
        "no token in the answer: {view}"
    );

    let again = login::complete(&hub, "google", callback("code-1", &state))
        .await
        .unwrap_err();
    assert!(matches!(again, HubError::InvalidState), "{again:?}");
}

#[tokio::test]
async fn a_state_is_bound_to_its_provider_and_spent_by_a_wrong_use() {
    let (_server, hub, _dir) = fixture().await;
    let state = login::begin(&hub, "google").await.unwrap();
    let wrong = login::complete(&hub, "onedrive", callback("c", &state))
        .await
        .unwrap_err();
    assert!(matches!(wrong, HubError::InvalidState));
    let right_but_spent = login::complete(&hub, "google", callback("c", &state))
        .await
        .unwrap_err();
    assert!(matches!(right_but_spent, HubError::InvalidState));
    let unknown = login::complete(&hub, "google", elsewhere("c", "never-issued"))
        .await
        .unwrap_err();
    assert!(matches!(unknown, HubError::InvalidState));
    let missing = login::complete(
        &hub,
        "google",
        Callback {
            code: Some("c".into()),
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(missing.unwrap_err(), HubError::InvalidState));
}

#[tokio::test]
async fn a_state_expires_after_ten_minutes() {
    let (_server, hub, _dir) = fixture().await;
    let state = login::begin(&hub, "google").await.unwrap();
    let mut pending = hub
        .store
        .take_login_state(&state.state, Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert!(pending.expires_at <= Utc::now() + chrono::Duration::minutes(10));
    pending.expires_at = Utc::now() - chrono::Duration::seconds(1);
    hub.store.put_login_state(&pending).await.unwrap();
    let expired = login::complete(&hub, "google", callback("c", &state))
        .await
        .unwrap_err();
    assert!(matches!(expired, HubError::InvalidState));
}

#[tokio::test]
async fn logging_in_again_updates_the_same_account_and_keeps_its_refresh_token() {
    let (server, hub, _dir) = fixture().await;
    mount_token(&server, "first", "ya29.one", Some("1//keep-me")).await;
    mount_token(&server, "second", "ya29.two", None).await;
    let first = login::complete(
        &hub,
        "google",
        callback("first", &login::begin(&hub, "google").await.unwrap()),
    )
    .await
    .unwrap();
    let second = login::complete(
        &hub,
        "google",
        callback("second", &login::begin(&hub, "google").await.unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(first.id, second.id);
    assert!(second.has_refresh_token);
    let stored = hub.store.get_account(&first.id).await.unwrap().unwrap();
    let tokens = hub::tokens::open(hub.cipher.as_ref(), &stored)
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "ya29.two");
    assert_eq!(tokens.refresh_token.unwrap().expose_secret(), "1//keep-me");
    let listed = hub::accounts::page(hub.store.as_ref(), hub::accounts::MAX_ACCOUNT_PAGE, None)
        .await
        .unwrap();
    assert_eq!(listed.accounts.len(), 1);
}

#[tokio::test]
async fn refusals_map_to_the_documented_errors() {
    let (server, hub, _dir) = fixture().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})))
        .mount(&server)
        .await;
    let state = login::begin(&hub, "google").await.unwrap();
    let refused = login::complete(&hub, "google", callback("stale-code", &state))
        .await
        .unwrap_err();
    assert!(matches!(
        refused,
        HubError::Provider(ProviderError::InvalidGrant)
    ));
    assert_eq!(refused.status(), 502);

    let state = login::begin(&hub, "google").await.unwrap();
    let denied = Callback::for_browser(
        &state,
        Callback {
            error: Some("access_denied".into()),
            state: Some(state.state.clone()),
            ..Default::default()
        },
    );
    assert!(matches!(
        login::complete(&hub, "google", denied).await.unwrap_err(),
        HubError::AuthorizationDenied
    ));
    // The denied login's state is spent too.
    assert!(matches!(
        login::complete(&hub, "google", callback("c", &state))
            .await
            .unwrap_err(),
        HubError::InvalidState
    ));

    assert!(matches!(
        login::begin(&hub, "icloud").await.unwrap_err(),
        HubError::UnknownProvider(_)
    ));
}

/// A hub whose providers are the testkit's stand-ins.
async fn stand_in_hub(providers: &hub_testkit::FakeProviders) -> (Hub, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = providers.env_vars();
    vars.push(("HUB_DATA_DIR".into(), dir.path().display().to_string()));
    vars.push(("HUB_PUBLIC_URL".into(), "https://hub.example".into()));
    let hub = Hub::build(&Env::from_map(vars), RetryPolicy::default())
        .await
        .unwrap();
    (hub, dir)
}

/// Consents at the stand-in as a browser would, and returns what the redirect carries.
async fn consent(hub: &Hub, provider: &str) -> Callback {
    let url = login::begin(hub, provider).await.unwrap();
    common::consent(&url).await
}

#[tokio::test]
async fn a_consent_without_the_drive_scope_is_refused_revoked_and_stores_nothing() {
    let providers = hub_testkit::FakeProviders::start().await;
    let handle = providers.handle();
    let (hub, _dir) = stand_in_hub(&providers).await;

    handle.set_next_identity("google", "g-partial", "partial@example.com");
    handle.grant_only_on_next_consent("google", "openid email");
    let callback = consent(&hub, "google").await;
    let refused = login::complete(&hub, "google", callback).await.unwrap_err();
    assert!(
        matches!(&refused, HubError::ScopeNotGranted { missing }
            if missing == &["https://www.googleapis.com/auth/drive.readonly"]),
        "{refused:?}"
    );
    assert_eq!(
        (refused.status(), refused.code()),
        (400, "scope_not_granted")
    );
    assert_eq!(handle.revocations(), 1, "the partial grant is revoked");
    assert!(hub::accounts::page(hub.store.as_ref(), 1000, None)
        .await
        .unwrap()
        .accounts
        .is_empty());
    assert!(hub
        .store
        .find_account(None, "google", "g-partial")
        .await
        .unwrap()
        .is_none());

    // Microsoft has no revocation endpoint: refused, nothing stored, nothing revoked.
    handle.set_next_identity("onedrive", "m-partial", "partial@example.com");
    handle.grant_only_on_next_consent("onedrive", "offline_access User.Read");
    let callback = consent(&hub, "onedrive").await;
    let refused = login::complete(&hub, "onedrive", callback)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "scope_not_granted", "{refused:?}");
    assert_eq!(handle.revocations(), 1);
    assert!(hub::accounts::page(hub.store.as_ref(), 1000, None)
        .await
        .unwrap()
        .accounts
        .is_empty());

    // A full consent afterwards connects as usual.
    handle.set_next_identity("google", "g-partial", "partial@example.com");
    let callback = consent(&hub, "google").await;
    let account = login::complete(&hub, "google", callback).await.unwrap();
    assert_eq!(account.email, "partial@example.com");
}

#[tokio::test]
async fn a_hanging_token_endpoint_is_a_provider_error_within_the_budget() {
    let (server, hub, _dir) = fixture().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "ya29.late", "token_type": "Bearer"}))
                .set_delay(Duration::from_secs(60)),
        )
        .mount(&server)
        .await;
    let state = login::begin(&hub, "google").await.unwrap();
    let started = Instant::now();
    let late = login::complete_by(
        &hub,
        "google",
        callback("slow-code", &state),
        Deadline::after(Duration::from_secs(1)),
    )
    .await
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(late, HubError::Provider(ProviderError::TimedOut { .. })),
        "{late:?}"
    );
    assert_eq!((late.status(), late.code()), (502, "provider_error"));
    assert!(hub::accounts::page(hub.store.as_ref(), 1000, None)
        .await
        .unwrap()
        .accounts
        .is_empty());
}

/// Connects the fixture's user and makes Google's revocation endpoint answer with `revoke`.
async fn account_with_revocation(
    revoke: ResponseTemplate,
) -> (MockServer, Hub, tempfile::TempDir, String) {
    let (server, hub, dir) = fixture().await;
    mount_token(&server, "code-1", "ya29.one", Some("1//refresh-one")).await;
    let state = login::begin(&hub, "google").await.unwrap();
    let account = login::complete(&hub, "google", callback("code-1", &state))
        .await
        .unwrap();
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .respond_with(revoke)
        .mount(&server)
        .await;
    (server, hub, dir, account.id)
}

async fn assert_deleted_within_the_revoke_budget(hub: &Hub, server: &MockServer, id: &str) {
    let started = Instant::now();
    hub::accounts::delete_by(hub, id, Deadline::after(Duration::from_secs(14)))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took < hub::accounts::REVOKE_BUDGET + Duration::from_secs(1),
        "{took:?}"
    );
    assert!(hub.store.get_account(id).await.unwrap().is_none());
    assert!(hub
        .store
        .find_account(None, "google", "g-123")
        .await
        .unwrap()
        .is_none());
    let revocations = server.received_requests().await.unwrap();
    assert!(
        revocations.iter().any(|r| r.url.path() == "/revoke"),
        "the revocation was tried"
    );
}

#[tokio::test]
async fn a_hanging_revocation_does_not_keep_an_account_from_being_deleted() {
    let (server, hub, _dir, id) =
        account_with_revocation(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
            .await;
    assert_deleted_within_the_revoke_budget(&hub, &server, &id).await;
}

#[tokio::test]
async fn a_revocation_answering_503_forever_does_not_keep_an_account_from_being_deleted() {
    let (server, hub, _dir, id) = account_with_revocation(
        ResponseTemplate::new(503)
            .insert_header("retry-after", "2")
            .set_body_json(json!({"error": "backend_error"})),
    )
    .await;
    assert_deleted_within_the_revoke_budget(&hub, &server, &id).await;
}

#[tokio::test]
async fn logging_in_again_replaces_tokens_that_can_no_longer_be_opened() {
    let (server, hub, _dir) = fixture().await;
    mount_token(&server, "first", "ya29.one", Some("1//old")).await;
    mount_token(&server, "second", "ya29.two", Some("1//new")).await;
    let state = login::begin(&hub, "google").await.unwrap();
    let first = login::complete(&hub, "google", callback("first", &state))
        .await
        .unwrap();
    // As if the hub's key had changed since the tokens were sealed.
    let mut stored = hub.store.get_account(&first.id).await.unwrap().unwrap();
    stored.tokens = Sealed {
        data_key: None,
        nonce: "bm90LWEtbm9uY2U".into(),
        ciphertext: "Z2FyYmFnZQ".into(),
    };
    stored.version += 1;
    assert_eq!(
        hub.store
            .update_account(&stored, stored.version - 1)
            .await
            .unwrap(),
        hub::store::Write::Done
    );
    assert!(hub::tokens::open(hub.cipher.as_ref(), &stored)
        .await
        .is_err());

    let state = login::begin(&hub, "google").await.unwrap();
    let second = login::complete(&hub, "google", callback("second", &state))
        .await
        .unwrap();
    assert_eq!(second.id, first.id);
    assert!(second.has_refresh_token);
    let stored = hub.store.get_account(&first.id).await.unwrap().unwrap();
    let tokens = hub::tokens::open(hub.cipher.as_ref(), &stored)
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "ya29.two");
    assert_eq!(tokens.refresh_token.unwrap().expose_secret(), "1//new");
}

#[tokio::test]
async fn only_the_browser_that_started_a_login_can_finish_it() {
    let (server, hub, _dir) = fixture().await;
    mount_token(&server, "code-1", "ya29.one", Some("1//refresh-one")).await;
    // Another browser: no cookie, or another login's key.
    let started = login::begin(&hub, "google").await.unwrap();
    let other = login::begin(&hub, "google").await.unwrap();
    for foreign in [
        elsewhere("code-1", &started.state),
        Callback {
            browser_key: Some(other.browser_key.clone()),
            ..elsewhere("code-1", &started.state)
        },
    ] {
        let refused = login::complete(&hub, "google", foreign).await.unwrap_err();
        assert!(matches!(refused, HubError::InvalidState), "{refused:?}");
        // The state is spent by the foreign callback: its code cannot be replayed from the
        // right browser.
    }
    let replayed = login::complete(&hub, "google", callback("code-1", &started))
        .await
        .unwrap_err();
    assert!(matches!(replayed, HubError::InvalidState), "{replayed:?}");
    assert!(hub::accounts::page(hub.store.as_ref(), 1000, None)
        .await
        .unwrap()
        .accounts
        .is_empty());
    // A denial from another browser is a denial, and spends the state too.
    let denied = Callback {
        error: Some("access_denied".into()),
        ..elsewhere("", &other.state)
    };
    assert!(matches!(
        login::complete(&hub, "google", denied).await.unwrap_err(),
        HubError::AuthorizationDenied
    ));
    // Nothing of the key is stored, only its hash.
    let pending = login::begin(&hub, "google").await.unwrap();
    let stored = hub
        .store
        .take_login_state(&pending.state, Utc::now())
        .await
        .unwrap()
        .unwrap();
    let key = pending.browser_key.expose_secret();
    let stored = serde_json::to_string(&stored).unwrap();
    assert!(!stored.contains(key), "{stored}");
    assert!(stored.contains("browser_key_hash"), "{stored}");
}

#[tokio::test]
async fn two_logins_in_one_browser_finish_in_any_order() {
    let (server, hub, _dir) = fixture().await;
    mount_token(&server, "first", "ya29.one", Some("1//one")).await;
    mount_token(&server, "second", "ya29.two", Some("1//two")).await;
    let first = login::begin(&hub, "google").await.unwrap();
    let second = login::begin(&hub, "google").await.unwrap();
    assert_ne!(
        first.browser_key.expose_secret(),
        second.browser_key.expose_secret()
    );
    let b = login::complete(&hub, "google", callback("second", &second))
        .await
        .unwrap();
    let a = login::complete(&hub, "google", callback("first", &first))
        .await
        .unwrap();
    assert_eq!(a.id, b.id, "the same identity: one account");
}
