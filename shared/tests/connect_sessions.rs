//! Connect sessions (docs/API.md, "Connect sessions") on both stores, against the testkit's
//! stand-ins: creation and its refusals, the login bound to the session's providers, the
//! callback that connects for the session's owner and spends the session, expiry, one spend out
//! of many concurrent ones, accounts keyed by owner, `/users?owner=` and DELETE's revocation
//! rule.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{Duration, Utc};
use hub::accounts;
use hub::connect::{self, NewSession};
use hub::crypto::{EncryptionContext, Sealed, TokenCipher};
use hub::deadline::Deadline;
use hub::events::QueuedEvent;
use hub::login::{self, Finished};
use hub::model::ConnectSession;
use hub::queue::EventQueue;
use hub::store::dynamo::DynamoStore;
use hub::{Hub, HubError, HubResult};
use hub_testkit::FakeProviders;
use zeroize::Zeroizing;

const RETURN_TO: &str = "https://app.example.com/return";

#[derive(Clone, Copy, Debug)]
enum Backend {
    Local,
    Dynamo,
}

const BACKENDS: [Backend; 2] = [Backend::Local, Backend::Dynamo];

async fn fixture(backend: Backend) -> (FakeProviders, Hub, tempfile::TempDir) {
    fixture_with(backend, false).await
}

/// The hub with Google and Microsoft configured, and Dropbox too when `dropbox`.
async fn fixture_with(backend: Backend, dropbox: bool) -> (FakeProviders, Hub, tempfile::TempDir) {
    let providers = FakeProviders::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut vars = providers.env_vars();
    if dropbox {
        vars.extend(providers.dropbox_env_vars());
    }
    vars.push((
        "HUB_ALLOWED_RETURN_URLS".into(),
        format!("{RETURN_TO}, http://127.0.0.1:1/done"),
    ));
    let mut hub = hub::testing::local_hub(dir.path(), &vars).await;
    if let Backend::Dynamo = backend {
        let (client, table) = common::dynamo_table().await;
        hub.store = Arc::new(DynamoStore::new(client, table));
    }
    (providers, hub, dir)
}

fn request(owner: &str, return_to: Option<&str>, providers: Option<&[&str]>) -> NewSession {
    NewSession {
        owner: Some(owner.into()),
        return_to: return_to.map(str::to_string),
        providers: providers.map(|names| names.iter().map(|n| n.to_string()).collect()),
    }
}

/// Follows the consent URL to the stand-in, which consents (or denies) at once, and hands
/// its redirect to the callback.
async fn consent(hub: &Hub, provider: &str, started: &login::Started) -> Finished {
    let callback = common::consent(started).await;
    login::finish_by(hub, provider, callback, Deadline::of_invocation(None)).await
}

async fn connect_with(hub: &Hub, token: &str, provider: &str) -> Finished {
    let url = login::begin_with(hub, provider, Some(token)).await.unwrap();
    consent(hub, provider, &url).await
}

#[tokio::test]
async fn a_session_is_validated_when_created() {
    for backend in BACKENDS {
        let (_providers, hub, _dir) = fixture(backend).await;
        let code = |r: Result<_, HubError>| r.map(|_| ()).unwrap_err().code();
        let missing = NewSession::default();
        assert_eq!(
            code(connect::create(&hub, missing).await),
            "invalid_request"
        );
        for owner in ["", "has space", "a/b", &"x".repeat(129)] {
            assert_eq!(
                code(connect::create(&hub, request(owner, None, None)).await),
                "invalid_request",
                "{owner}"
            );
        }
        for providers in [&["nosuch"][..], &["dropbox"][..], &[][..]] {
            assert_eq!(
                code(connect::create(&hub, request("u-1", None, Some(providers))).await),
                "invalid_request",
                "{providers:?}"
            );
        }
        for bad in [
            "https://app.example.com.evil.net/return",
            "https://app.example.com/return/../admin",
            "//evil.net",
            "https://app.example.com@evil.net/return",
        ] {
            assert_eq!(
                code(connect::create(&hub, request("u-1", Some(bad), None)).await),
                "invalid_return_to",
                "{bad}"
            );
        }

        let created = connect::create(&hub, request("u-1", Some(RETURN_TO), None))
            .await
            .unwrap();
        assert_eq!(
            created.connect_url,
            format!(
                "{}/connect?session={}",
                hub.config.public_url, created.token
            )
        );
        let lifetime = created.expires_at - Utc::now();
        assert!(lifetime > Duration::minutes(29) && lifetime <= Duration::minutes(30));
        // Only the hash is kept.
        let stored = hub
            .store
            .get_connect_session(&connect::session_id(&created.token))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(stored.id, created.token);
        assert_eq!(stored.owner, "u-1");
        assert_eq!(stored.providers, ["google", "onedrive"]);
        assert!(hub
            .store
            .get_connect_session(&created.token)
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test]
async fn a_session_connects_one_account_for_its_owner_then_is_spent() {
    for backend in BACKENDS {
        let (providers, hub, _dir) = fixture(backend).await;
        let created = connect::create(&hub, request("u-1", Some(RETURN_TO), Some(&["google"])))
            .await
            .unwrap();
        // A provider the session does not offer, and tokens that are not one.
        for (provider, token) in [
            ("onedrive", created.token.as_str()),
            ("google", "not-a-token"),
            ("google", &"A".repeat(43)),
        ] {
            assert!(
                matches!(
                    login::begin_with(&hub, provider, Some(token)).await,
                    Err(HubError::InvalidSession)
                ),
                "{backend:?} {provider}"
            );
        }

        // A denied consent comes back to the app and leaves the session usable.
        providers.deny_next_consent();
        let denied = connect_with(&hub, &created.token, "google").await;
        assert_eq!(denied.return_to.as_deref(), Some(RETURN_TO));
        assert!(matches!(denied.result, Err(HubError::AuthorizationDenied)));
        connect::open(hub.store.as_ref(), Some(&created.token))
            .await
            .unwrap();

        let connected = connect_with(&hub, &created.token, "google").await;
        assert_eq!(connected.return_to.as_deref(), Some(RETURN_TO));
        let account = connected.result.unwrap();
        assert_eq!(account.owner.as_deref(), Some("u-1"));

        // Spent: neither the page nor a login can use it again.
        assert!(matches!(
            connect::open(hub.store.as_ref(), Some(&created.token)).await,
            Err(HubError::InvalidSession)
        ));
        assert!(matches!(
            login::begin_with(&hub, "google", Some(&created.token)).await,
            Err(HubError::InvalidSession)
        ));
    }
}

#[tokio::test]
async fn a_login_started_before_the_session_was_spent_cannot_connect_a_second_account() {
    for backend in BACKENDS {
        let (providers, hub, _dir) = fixture(backend).await;
        providers.fresh_identity_per_consent();
        let created = connect::create(&hub, request("u-1", Some(RETURN_TO), None))
            .await
            .unwrap();
        let first = login::begin_with(&hub, "google", Some(&created.token))
            .await
            .unwrap();
        let second = login::begin_with(&hub, "google", Some(&created.token))
            .await
            .unwrap();
        consent(&hub, "google", &first).await.result.unwrap();
        let late = consent(&hub, "google", &second).await;
        assert_eq!(late.return_to.as_deref(), Some(RETURN_TO));
        assert!(
            matches!(late.result, Err(HubError::InvalidSession)),
            "{backend:?}"
        );
        let owned = accounts::page_of(hub.store.as_ref(), Some("u-1"), 1000, None)
            .await
            .unwrap();
        assert_eq!(owned.accounts.len(), 1, "{backend:?}");
    }
}

#[tokio::test]
async fn an_expired_session_is_refused_and_cannot_be_spent() {
    for backend in BACKENDS {
        let (_providers, hub, _dir) = fixture(backend).await;
        let token = "E".repeat(43);
        let expired = ConnectSession {
            id: connect::session_id(&token),
            owner: "u-1".into(),
            providers: vec!["google".into()],
            return_to: None,
            expires_at: Utc::now() - Duration::seconds(5),
            spent: false,
        };
        hub.store.put_connect_session(&expired).await.unwrap();
        assert!(matches!(
            connect::open(hub.store.as_ref(), Some(&token)).await,
            Err(HubError::InvalidSession)
        ));
        assert!(matches!(
            login::begin_with(&hub, "google", Some(&token)).await,
            Err(HubError::InvalidSession)
        ));
        assert!(!hub
            .store
            .spend_connect_session(&expired.id, Utc::now())
            .await
            .unwrap());
        assert!(!hub
            .store
            .spend_connect_session("no-such-session", Utc::now())
            .await
            .unwrap());
    }
}

#[tokio::test]
async fn of_concurrent_spends_exactly_one_wins() {
    for backend in BACKENDS {
        let (_providers, hub, _dir) = fixture(backend).await;
        let hub = Arc::new(hub);
        let created = connect::create(&hub, request("u-1", None, None))
            .await
            .unwrap();
        let id = connect::session_id(&created.token);
        let spends = (0..8).map(|_| {
            let (hub, id) = (hub.clone(), id.clone());
            tokio::spawn(async move { hub.store.spend_connect_session(&id, Utc::now()).await })
        });
        let mut won = 0;
        for spend in futures::future::join_all(spends).await {
            if spend.unwrap().unwrap() {
                won += 1;
            }
        }
        assert_eq!(won, 1, "{backend:?}");
    }
}

#[tokio::test]
async fn accounts_are_keyed_by_owner_provider_and_identity() {
    for backend in BACKENDS {
        let (providers, hub, _dir) = fixture(backend).await;
        let session = |owner: &'static str| {
            let hub = &hub;
            async move {
                connect::create(hub, request(owner, None, None))
                    .await
                    .unwrap()
                    .token
            }
        };
        providers.set_next_identity("google", "g-shared", "shared@example.com");
        let alice = connect_with(&hub, &session("alice").await, "google")
            .await
            .result
            .unwrap();
        providers.set_next_identity("google", "g-shared", "shared@example.com");
        let bob = connect_with(&hub, &session("bob").await, "google")
            .await
            .result
            .unwrap();
        assert_ne!(alice.id, bob.id, "{backend:?}");
        assert_eq!(bob.owner.as_deref(), Some("bob"));
        providers.set_next_identity("google", "g-shared", "shared@example.com");
        let alice_again = connect_with(&hub, &session("alice").await, "google")
            .await
            .result
            .unwrap();
        assert_eq!(alice_again.id, alice.id, "{backend:?}");
        // A login without a session is version 1's account, with no owner.
        providers.set_next_identity("google", "g-shared", "shared@example.com");
        let url = login::begin(&hub, "google").await.unwrap();
        let anonymous = consent(&hub, "google", &url).await;
        assert_eq!(anonymous.return_to, None);
        let anonymous = anonymous.result.unwrap();
        assert_eq!(anonymous.owner, None);
        assert!(anonymous.id != alice.id && anonymous.id != bob.id);

        let listed = |owner: &'static str| {
            let hub = &hub;
            async move {
                accounts::page_of(hub.store.as_ref(), Some(owner), 1000, None)
                    .await
                    .unwrap()
                    .accounts
                    .into_iter()
                    .map(|a| a.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            listed("alice").await,
            std::slice::from_ref(&alice.id),
            "{backend:?}"
        );
        assert_eq!(listed("bob").await, std::slice::from_ref(&bob.id));
        assert!(listed("carol").await.is_empty());
        assert_eq!(
            accounts::page(hub.store.as_ref(), 1000, None)
                .await
                .unwrap()
                .accounts
                .len(),
            3
        );

        // Bob's account shares the grant: deleting Alice's revokes nothing.
        let revocations = providers.revocations();
        accounts::delete(&hub, &alice.id).await.unwrap();
        assert_eq!(providers.revocations(), revocations, "{backend:?}");
        accounts::delete(&hub, &bob.id).await.unwrap();
        assert_eq!(providers.revocations(), revocations);
        // The last holder's delete revokes the grant.
        accounts::delete(&hub, &anonymous.id).await.unwrap();
        assert_eq!(providers.revocations(), revocations + 1, "{backend:?}");
        assert!(listed("bob").await.is_empty());
    }
}

/// Shaped as Dropbox shapes account ids (40 characters), as the stand-in insists.
const SHARED_DROPBOX_ID: &str = "dbid:AAShared000000000000000000000000000";

/// Dropbox's revocation ends one login's token lineage, not the user's grant to the app: two
/// owners' accounts of one Dropbox identity are two lineages, and deleting one revokes its own
/// tokens while the other keeps working.
#[tokio::test]
async fn a_dropbox_delete_revokes_its_own_tokens_even_when_another_owner_holds_the_identity() {
    for backend in BACKENDS {
        let (providers, hub, _dir) = fixture_with(backend, true).await;
        let mut accounts_by_owner = Vec::new();
        for owner in ["alice", "bob"] {
            providers.set_next_identity("dropbox", SHARED_DROPBOX_ID, "shared@example.com");
            let token = connect::create(&hub, request(owner, None, None))
                .await
                .unwrap()
                .token;
            accounts_by_owner.push(connect_with(&hub, &token, "dropbox").await.result.unwrap());
        }
        let (alice, bob) = (&accounts_by_owner[0], &accounts_by_owner[1]);
        assert_ne!(alice.id, bob.id, "{backend:?}");
        let stored = |id: String| {
            let hub = &hub;
            async move { hub.store.get_account(&id).await.unwrap().unwrap() }
        };
        let alice_tokens = hub::tokens::open(hub.cipher.as_ref(), &stored(alice.id.clone()).await)
            .await
            .unwrap();
        let revocations = providers.revocations();
        accounts::delete(&hub, &alice.id).await.unwrap();
        assert_eq!(
            providers.revocations(),
            revocations + 1,
            "{backend:?}: Alice's lineage is revoked although Bob holds the same identity"
        );
        let dropbox = hub.providers.get("dropbox").unwrap();
        assert!(
            dropbox.identity(&alice_tokens.access_token).await.is_err(),
            "{backend:?}: Alice's access token is dead"
        );
        let bob_tokens = hub::tokens::open(hub.cipher.as_ref(), &stored(bob.id.clone()).await)
            .await
            .unwrap();
        let identity = dropbox.identity(&bob_tokens.access_token).await;
        assert_eq!(
            identity.map(|i| i.provider_user_id).ok().as_deref(),
            Some(SHARED_DROPBOX_ID),
            "{backend:?}: Bob's login is untouched"
        );
    }
}

#[tokio::test]
async fn owner_listings_page() {
    for backend in BACKENDS {
        let (providers, hub, _dir) = fixture(backend).await;
        providers.fresh_identity_per_consent();
        let mut ids = Vec::new();
        for provider in ["google", "onedrive", "google"] {
            let token = connect::create(&hub, request("pager", None, None))
                .await
                .unwrap()
                .token;
            ids.push(
                connect_with(&hub, &token, provider)
                    .await
                    .result
                    .unwrap()
                    .id,
            );
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = accounts::page_of(hub.store.as_ref(), Some("pager"), 2, after)
                .await
                .unwrap();
            assert!(page.accounts.len() <= 2);
            seen.extend(page.accounts.into_iter().map(|a| a.id));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        seen.sort();
        ids.sort();
        assert_eq!(seen, ids, "{backend:?}");
    }
}

// ------------------------------------------- the browser binding (docs/API.md, "Logins")

#[tokio::test]
async fn a_consent_link_forwarded_to_another_browser_connects_nothing() {
    for backend in BACKENDS {
        let (providers, hub, _dir) = fixture(backend).await;
        let created = connect::create(&hub, request("sender", Some(RETURN_TO), None))
            .await
            .unwrap();
        // The sender starts the login in their browser and forwards the consent link; the
        // victim consents in theirs, which holds no cookie of this login.
        let started = login::begin_with(&hub, "google", Some(&created.token))
            .await
            .unwrap();
        providers.set_next_identity("google", "g-victim", "victim@example.com");
        let victims = common::consent_elsewhere(&started.consent_url).await;
        let code = victims.code.clone();
        let refused =
            login::finish_by(&hub, "google", victims, Deadline::of_invocation(None)).await;
        assert!(
            matches!(refused.result, Err(HubError::InvalidState)),
            "{backend:?}: {:?}",
            refused.result
        );
        // Not matched to a browser of the session: no redirect into the app.
        assert_eq!(refused.return_to, None);
        // The sender's own browser cannot bring the victim's code back either: the state
        // died with the foreign callback.
        let replayed = login::Callback::for_browser(
            &started,
            login::Callback {
                code,
                state: Some(started.state.clone()),
                ..Default::default()
            },
        );
        let replayed =
            login::finish_by(&hub, "google", replayed, Deadline::of_invocation(None)).await;
        assert!(matches!(replayed.result, Err(HubError::InvalidState)));
        assert!(accounts::page(hub.store.as_ref(), 1000, None)
            .await
            .unwrap()
            .accounts
            .is_empty());
        // The session is untouched: its own user can still connect, in one browser.
        let connected = connect_with(&hub, &created.token, "google").await;
        assert_eq!(connected.result.unwrap().owner.as_deref(), Some("sender"));
    }
}

#[tokio::test]
async fn two_logins_in_two_tabs_of_one_browser_both_finish() {
    for backend in BACKENDS {
        let (providers, hub, _dir) = fixture(backend).await;
        providers.fresh_identity_per_consent();
        let first = connect::create(&hub, request("u-1", None, None))
            .await
            .unwrap();
        let second = connect::create(&hub, request("u-2", None, None))
            .await
            .unwrap();
        let first = login::begin_with(&hub, "google", Some(&first.token))
            .await
            .unwrap();
        let second = login::begin_with(&hub, "onedrive", Some(&second.token))
            .await
            .unwrap();
        // Each callback carries its own login's key; the later login finishes first.
        let late = consent(&hub, "onedrive", &second).await.result.unwrap();
        let early = consent(&hub, "google", &first).await.result.unwrap();
        assert_eq!(late.owner.as_deref(), Some("u-2"), "{backend:?}");
        assert_eq!(early.owner.as_deref(), Some("u-1"), "{backend:?}");
    }
}

#[tokio::test]
async fn require_session_refuses_logins_without_one() {
    let providers = FakeProviders::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut vars = providers.env_vars();
    vars.push(("HUB_REQUIRE_SESSION".into(), "true".into()));
    let hub = hub::testing::local_hub(dir.path(), &vars).await;
    assert!(matches!(
        login::begin(&hub, "google").await,
        Err(HubError::InvalidSession)
    ));
    // An unknown provider is still a 404, not a session error.
    assert!(matches!(
        login::begin(&hub, "icloud").await,
        Err(HubError::UnknownProvider(_))
    ));
    let created = connect::create(&hub, request("u-1", None, None))
        .await
        .unwrap();
    let connected = connect_with(&hub, &created.token, "google").await;
    assert_eq!(connected.result.unwrap().owner.as_deref(), Some("u-1"));
}

// ------------------------------------- the session is spent with the account (item 10)

/// Seals as the hub's cipher does, except while `failing`: then every seal fails, as a KMS
/// outage would.
struct FlakyCipher {
    inner: Arc<dyn TokenCipher>,
    failing: AtomicBool,
}

#[async_trait::async_trait]
impl TokenCipher for FlakyCipher {
    async fn seal(&self, plaintext: &[u8], context: &EncryptionContext) -> HubResult<Sealed> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(HubError::internal("KMS is unavailable"));
        }
        self.inner.seal(plaintext, context).await
    }

    async fn open(
        &self,
        sealed: &Sealed,
        context: &EncryptionContext,
    ) -> HubResult<Zeroizing<Vec<u8>>> {
        self.inner.open(sealed, context).await
    }
}

/// Publishes nothing while `failing` (an SQS outage), then records.
#[derive(Default)]
struct FlakyEvents {
    failing: AtomicBool,
    recorded: common::EventRecorder,
}

#[async_trait::async_trait]
impl EventQueue for FlakyEvents {
    async fn publish(&self, event: &QueuedEvent) -> HubResult<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(HubError::internal("SQS is unavailable"));
        }
        self.recorded.publish(event).await
    }

    async fn retry_after(&self, receipt_handle: &str, delay: std::time::Duration) -> HubResult<()> {
        self.recorded.retry_after(receipt_handle, delay).await
    }
}

#[tokio::test]
async fn a_login_that_fails_to_store_its_account_leaves_the_session_usable() {
    for backend in BACKENDS {
        let (_providers, mut hub, _dir) = fixture(backend).await;
        let cipher = Arc::new(FlakyCipher {
            inner: hub.cipher.clone(),
            failing: AtomicBool::new(false),
        });
        hub.cipher = cipher.clone();
        let created = connect::create(&hub, request("u-1", Some(RETURN_TO), None))
            .await
            .unwrap();
        let started = login::begin_with(&hub, "google", Some(&created.token))
            .await
            .unwrap();
        // The tokens cannot be sealed: nothing is stored, and the session stays usable.
        cipher.failing.store(true, Ordering::SeqCst);
        let failed = consent(&hub, "google", &started).await;
        assert!(failed.result.is_err(), "{backend:?}");
        assert_eq!(failed.return_to.as_deref(), Some(RETURN_TO));
        cipher.failing.store(false, Ordering::SeqCst);
        connect::open(hub.store.as_ref(), Some(&created.token))
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: the session was lost: {e}"));
        assert!(accounts::page(hub.store.as_ref(), 1000, None)
            .await
            .unwrap()
            .accounts
            .is_empty());
        // The user's retry connects.
        let retried = connect_with(&hub, &created.token, "google").await;
        assert_eq!(retried.result.unwrap().owner.as_deref(), Some("u-1"));
    }
}

#[tokio::test]
async fn a_login_whose_event_cannot_be_queued_gives_the_session_back() {
    for backend in BACKENDS {
        let (_providers, mut hub, _dir) = fixture(backend).await;
        let events = Arc::new(FlakyEvents::default());
        hub.events = Some(events.clone());
        let created = connect::create(&hub, request("u-1", None, None))
            .await
            .unwrap();
        events.failing.store(true, Ordering::SeqCst);
        let failed = connect_with(&hub, &created.token, "google").await;
        assert!(failed.result.is_err(), "{backend:?}");
        events.failing.store(false, Ordering::SeqCst);
        connect::open(hub.store.as_ref(), Some(&created.token))
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: the session was lost: {e}"));
        // The retry updates the same account and the app hears of it.
        let first = accounts::page(hub.store.as_ref(), 1000, None)
            .await
            .unwrap()
            .accounts;
        let retried = connect_with(&hub, &created.token, "google")
            .await
            .result
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(retried.id, first[0].id, "{backend:?}: the same account");
        assert_eq!(events.recorded.types(), ["account.connected"]);
        assert!(connect::open(hub.store.as_ref(), Some(&created.token))
            .await
            .is_err());
    }
}

#[tokio::test]
async fn of_two_tabs_of_one_session_racing_exactly_one_connects_and_the_other_grant_is_revoked() {
    for backend in BACKENDS {
        let (providers, hub, _dir) = fixture(backend).await;
        providers.fresh_identity_per_consent();
        let created = connect::create(&hub, request("u-1", Some(RETURN_TO), None))
            .await
            .unwrap();
        let tabs = [
            login::begin_with(&hub, "google", Some(&created.token))
                .await
                .unwrap(),
            login::begin_with(&hub, "google", Some(&created.token))
                .await
                .unwrap(),
        ];
        let callbacks = [
            common::consent(&tabs[0]).await,
            common::consent(&tabs[1]).await,
        ];
        // Both callbacks find the session usable and exchange their codes before either
        // stores its account: the provider answers neither exchange before both arrived.
        // It answers the second 1.5 s after the first, so that the two stores' writes follow
        // one another: moto runs two transactions at once without isolation (the one that
        // fails restores the table as it found it, erasing the other's write), which
        // DynamoDB never does; the session's spend is a condition either way.
        providers.hold_together(
            "POST",
            "/google/token",
            2,
            std::time::Duration::from_millis(1500),
        );
        let revocations = providers.revocations();
        let [a, b] = callbacks;
        let (a, b) = tokio::join!(
            login::finish_by(&hub, "google", a, Deadline::of_invocation(None)),
            login::finish_by(&hub, "google", b, Deadline::of_invocation(None)),
        );
        let results = [a.result, b.result];
        let connected: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(connected.len(), 1, "{backend:?}: {results:?}");
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(HubError::InvalidSession))),
            "{backend:?}: {results:?}"
        );
        let owned = accounts::page_of(hub.store.as_ref(), Some("u-1"), 1000, None)
            .await
            .unwrap()
            .accounts;
        assert_eq!(owned.len(), 1, "{backend:?}");
        assert_eq!(owned[0].id, connected[0].id);
        // The loser's grant (another identity, stored nowhere) is withdrawn.
        assert_eq!(
            providers.revocations(),
            revocations + 1,
            "{backend:?}: the losing tab's grant is revoked"
        );
    }
}
