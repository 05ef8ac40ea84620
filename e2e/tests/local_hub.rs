//! The whole flow through the real binaries under `cargo lambda watch`, with the local
//! backend and the provider stand-ins, driven with a plain HTTP client as a user would.

use std::collections::HashMap;

use hub::store::local::LocalStore;
use hub::store::{AccountStore, FileStore, PushStore};
use hub_e2e::{LocalHub, StatusCode, API_KEY};
use hub_testkit::{FakeProviders, FileSpec, DEFAULT_GOOGLE_USER};
use oauth2::reqwest::Method;
use serde_json::Value;

fn query_of(url: &str) -> HashMap<String, String> {
    oauth2::url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

async fn files_of(hub: &LocalHub, id: &str) -> Vec<Value> {
    let mut files = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/users/{id}/files?limit=500&deleted=any&cursor={c}"),
            None => format!("/users/{id}/files?limit=500&deleted=any"),
        };
        let (status, page) = hub.json(hub.authed(Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        files.extend(page["files"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return files,
        }
    }
}

async fn account(hub: &LocalHub, id: &str) -> Value {
    let (_, users) = hub.json(hub.authed(Method::GET, "/users")).await;
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// How many entries the store holds for the account: in its file index, and in its change
/// feed.
async fn stored_entries(store: &LocalStore, id: &str) -> (usize, usize) {
    let files = store.list_files(id, None, 1000).await.unwrap().items.len();
    let feed = store.changes(id, None, u64::MAX, 1000).await.unwrap();
    (files, feed.entries.len())
}

/// Waits until a sync of the account finished after `previous` (its last_synced_at).
async fn synced_after(hub: &LocalHub, id: &str, previous: &Value) -> Value {
    hub.eventually("the sync to finish", || async {
        let account = account(hub, id).await;
        (!account["last_synced_at"].is_null() && account["last_synced_at"] != *previous)
            .then_some(account)
    })
    .await
}

async fn sync(hub: &LocalHub, body: &str) -> (StatusCode, Value) {
    hub.json(
        hub.authed(Method::POST, "/sync")
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

/// The hub under test and the provider stand-ins behind it, shared by the steps of the flow
/// (one `cargo lambda watch` for all of them: starting it is what takes time).
struct Flow {
    providers: FakeProviders,
    hub: LocalHub,
}

/// The account ids of the two connected users.
struct Connected {
    alice_id: String,
    bob_id: String,
}

#[tokio::test]
async fn the_whole_flow_through_the_real_binaries() {
    let providers = FakeProviders::start().await;
    providers.add_files("google", 120);
    // A shared drive Alice is a member of, with two files: 122 Google files in all.
    providers.join_shared_drive(DEFAULT_GOOGLE_USER, "0A-team", "Team");
    for id in ["zteam-1", "zteam-2"] {
        let spec = FileSpec::new(id, format!("{id}.txt")).in_shared_drive("0A-team");
        providers.add_file("google", DEFAULT_GOOGLE_USER, spec);
    }
    providers.add_files("onedrive", 30);
    let hub = LocalHub::start(&providers.env_vars()).await;
    let flow = Flow { providers, hub };

    flow.config_is_public_and_management_needs_the_key().await;
    flow.the_login_redirect_carries_what_the_api_lists().await;
    flow.a_consent_link_forwarded_to_another_browser_connects_nothing()
        .await;
    let connected = flow.connect_one_google_and_one_microsoft_account().await;
    let alice_synced = flow.a_sync_lists_every_file(&connected).await;
    flow.drives_list_every_drive_and_name_the_entries(&connected)
        .await;
    let alice_synced = flow
        .a_second_sync_fetches_only_what_changed(&connected, alice_synced)
        .await;
    flow.expired_access_tokens_are_refreshed_by_the_worker(&connected, alice_synced)
        .await;
    flow.a_revoked_grant_needs_reauth_and_is_skipped(&connected)
        .await;
    flow.bad_input_gets_the_documented_errors().await;
    flow.deleting_revokes_and_removes_the_account_and_its_index(&connected)
        .await;
    flow.no_issued_token_is_in_the_logs_or_at_rest().await;
}

impl Flow {
    async fn config_is_public_and_management_needs_the_key(&self) {
        let hub = &self.hub;
        let (status, config) = hub.json(hub.get("/config")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(config["mode"], "multi-provider");
        let (status, error) = hub.json(hub.get("/users")).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
    }

    async fn the_login_redirect_carries_what_the_api_lists(&self) {
        let hub = &self.hub;
        let login = hub.get("/auth/google/login").send().await.unwrap();
        let consent = query_of(login.headers()["location"].to_str().unwrap());
        assert_eq!(consent["response_type"], "code");
        assert_eq!(
            consent["redirect_uri"],
            format!("{}/auth/google/callback", hub.url)
        );
        assert_eq!(consent["code_challenge_method"], "S256");
        assert_eq!(
            (consent["access_type"].as_str(), consent["prompt"].as_str()),
            ("offline", "consent")
        );
        // The cookie that binds the login to this browser (docs/API.md, "Logins"): named after
        // the state, for the login routes only, gone with the state; not `Secure` over http.
        let set_cookie = login.headers()["set-cookie"].to_str().unwrap();
        assert!(
            set_cookie.starts_with(&format!("hub_login_{}=", consent["state"])),
            "{set_cookie}"
        );
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/auth/", "Max-Age=600"] {
            assert!(set_cookie.contains(attribute), "{attribute}: {set_cookie}");
        }
        assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    }

    /// Two user agents: the login starts in the sender's, the consent and the callback
    /// happen in the victim's (a forwarded consent link). Nothing is connected, and the
    /// state dies with it, so the sender cannot replay the victim's code either.
    async fn a_consent_link_forwarded_to_another_browser_connects_nothing(&self) {
        let hub = &self.hub;
        let (cookie, callback) = hub.consent("google").await;
        let victim = hub_e2e::Client::builder()
            .redirect(oauth2::reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let (status, refused) = hub.json(victim.get(&callback)).await;
        assert_eq!(
            (status, refused["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_state")),
            "{refused}"
        );
        let (status, replayed) = hub
            .json(hub.client.get(&callback).header("cookie", cookie))
            .await;
        assert_eq!(
            (status, replayed["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_state")),
            "{replayed}"
        );
        let (_, users) = hub.json(hub.authed(Method::GET, "/users")).await;
        assert_eq!(users.as_array().unwrap().len(), 0, "{users}");
    }

    async fn connect_one_google_and_one_microsoft_account(&self) -> Connected {
        let hub = &self.hub;
        let (status, alice) = hub.log_in("google").await;
        assert_eq!(status, StatusCode::OK, "{alice}");
        assert_eq!(alice["status"], "active");
        assert_eq!(alice["has_refresh_token"], true);
        let (status, bob) = hub.log_in("onedrive").await;
        assert_eq!(status, StatusCode::OK, "{bob}");
        let (alice_id, bob_id) = (
            alice["id"].as_str().unwrap().to_string(),
            bob["id"].as_str().unwrap().to_string(),
        );
        let (_, users) = hub.json(hub.authed(Method::GET, "/users")).await;
        assert_eq!(users.as_array().unwrap().len(), 2);

        // Two logins in two tabs of one browser both finish, the later one first: each has
        // its own cookie, and the browser sends all of them.
        let first_tab = hub.consent("google").await;
        let second_tab = hub.consent("onedrive").await;
        let both = format!("{}; {}", first_tab.0, second_tab.0);
        for ((_, callback), id) in [(second_tab, &bob_id), (first_tab, &alice_id)] {
            let (status, again) = hub
                .json(hub.client.get(&callback).header("cookie", both.clone()))
                .await;
            assert_eq!(status, StatusCode::OK, "{again}");
            assert_eq!(again["id"], id.as_str(), "the same account again");
        }

        Connected { alice_id, bob_id }
    }

    /// Returns Alice's account after the sync.
    async fn a_sync_lists_every_file(&self, connected: &Connected) -> Value {
        let (hub, alice_id, bob_id) = (&self.hub, &connected.alice_id, &connected.bob_id);
        let (status, started) = sync(hub, r#"{"source_type": "both"}"#).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        assert_eq!(started["jobs_enqueued"], 2);
        let alice_synced = synced_after(hub, alice_id, &Value::Null).await;
        synced_after(hub, bob_id, &Value::Null).await;
        assert_eq!(files_of(hub, alice_id).await.len(), 122);
        assert_eq!(files_of(hub, bob_id).await.len(), 30);

        alice_synced
    }

    /// `GET /users/{id}/drives`: My Drive and the shared drive, each entry naming its drive,
    /// and the account row's `last_sync`.
    async fn drives_list_every_drive_and_name_the_entries(&self, connected: &Connected) {
        let (hub, alice_id) = (&self.hub, &connected.alice_id);
        let path = format!("/users/{alice_id}/drives");
        let (status, page) = hub.json(hub.authed(Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let drives = page["drives"].as_array().unwrap();
        let by_id = |id: &str| drives.iter().find(|d| d["id"] == id).cloned();
        let team = by_id("0A-team").expect("the shared drive is listed");
        assert_eq!(
            (
                &team["kind"],
                &team["status"],
                &team["name"],
                &team["file_count"]
            ),
            (
                &Value::from("shared_drive"),
                &Value::from("active"),
                &Value::from("Team"),
                &Value::from(2)
            ),
            "{team}"
        );
        assert!(team["last_synced_at"].is_string());
        let mine = by_id("my-drive").expect("My Drive is listed");
        assert_eq!(
            (&mine["kind"], &mine["file_count"]),
            (&Value::from("my_drive"), &Value::from(120))
        );
        let files = files_of(hub, alice_id).await;
        for file in &files {
            let expected = match file["id"].as_str().unwrap().starts_with("zteam-") {
                true => "0A-team",
                false => "my-drive",
            };
            assert_eq!(file["drive_id"], expected, "{file}");
            assert!(file["target_id"].is_null(), "{file}");
        }
        let row = account(hub, alice_id).await;
        assert_eq!(row["last_sync"]["outcome"], "ok", "{row}");
        assert!(row["last_sync"]["error"].is_null(), "{row}");
        let (status, error) = hub
            .json(hub.authed(Method::GET, "/users/nobody/drives"))
            .await;
        assert_eq!(
            (status, error["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("user_not_found"))
        );
        assert_eq!(
            hub.json(hub.get(&path)).await.0,
            StatusCode::UNAUTHORIZED,
            "a management route"
        );
    }

    async fn a_second_sync_fetches_only_what_changed(
        &self,
        connected: &Connected,
        alice_synced: Value,
    ) -> Value {
        let (hub, providers, alice_id) = (&self.hub, &self.providers, &connected.alice_id);
        // What a full sync asks Drive for (a start token, then every file) against what an
        // incremental one asks for (the changes since the stored token).
        let asked = || {
            (
                providers.requests("/google/drive/v3/changes/startPageToken")
                    + providers.requests("/google/drive/v3/files"),
                providers.requests("/google/drive/v3/changes?"),
            )
        };
        let (enumerations_before, changes_before) = asked();
        let changed = providers.change_files("google", 3);
        let (_, started) = sync(
            hub,
            &format!(r#"{{"source_type": "google", "user_id": "{alice_id}"}}"#),
        )
        .await;
        assert_eq!(started["jobs_enqueued"], 1);
        let alice_synced = synced_after(hub, alice_id, &alice_synced["last_synced_at"]).await;
        let files = files_of(hub, alice_id).await;
        assert_eq!(files.len(), 122);
        for id in &changed {
            let file = files.iter().find(|f| f["id"] == id.as_str()).unwrap();
            assert!(
                file["name"].as_str().unwrap().starts_with("renamed-"),
                "{file}"
            );
        }
        let (enumerations, changes) = asked();
        assert_eq!(
            enumerations, enumerations_before,
            "the second sync did not enumerate the drive again"
        );
        assert!(
            changes > changes_before,
            "the second sync asked Drive for its changes"
        );

        alice_synced
    }

    async fn expired_access_tokens_are_refreshed_by_the_worker(
        &self,
        connected: &Connected,
        alice_synced: Value,
    ) {
        let (hub, providers, alice_id) = (&self.hub, &self.providers, &connected.alice_id);
        providers.expire_access_tokens();
        sync(hub, &format!(r#"{{"user_id": "{alice_id}"}}"#)).await;
        let alice_synced = synced_after(hub, alice_id, &alice_synced["last_synced_at"]).await;
        assert_eq!(alice_synced["status"], "active");
    }

    async fn a_revoked_grant_needs_reauth_and_is_skipped(&self, connected: &Connected) {
        let (hub, providers, bob_id) = (&self.hub, &self.providers, &connected.bob_id);
        providers.expire_access_tokens();
        providers.revoke_refresh_tokens("onedrive");
        sync(hub, &format!(r#"{{"user_id": "{bob_id}"}}"#)).await;
        hub.eventually("needs_reauth", || async {
            (account(hub, bob_id).await["status"] == "needs_reauth").then_some(())
        })
        .await;
        let (_, started) = sync(hub, r#"{}"#).await;
        assert_eq!(
            started["jobs_enqueued"], 1,
            "only the active account is queued"
        );
    }

    async fn bad_input_gets_the_documented_errors(&self) {
        let hub = &self.hub;
        let (status, error) = sync(hub, r#"{"source_type": "icloud"}"#).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_source_type"))
        );
        // A provider the hub knows, without its client here.
        let (status, error) = sync(hub, r#"{"source_type": "dropbox"}"#).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("provider_not_configured"))
        );
        let (status, error) = sync(hub, "{not json").await;
        assert_eq!(
            (status, error["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_json"))
        );
        let (status, error) = sync(hub, r#"{"user_id": "nobody"}"#).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("user_not_found"))
        );
        let (status, error) = hub
            .json(hub.get("/auth/google/callback?code=x%20y&state=no%20such%20state"))
            .await;
        assert_eq!(
            (status, error["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_state"))
        );
    }

    async fn deleting_revokes_and_removes_the_account_and_its_index(&self, connected: &Connected) {
        let (hub, providers, alice_id) = (&self.hub, &self.providers, &connected.alice_id);
        // Once the account is gone no route shows its entries: the store the functions
        // share is read directly (LMDB serves several processes), before and after.
        let store = hub.store();
        let (files, feed) = stored_entries(&store, alice_id).await;
        assert!(
            files == 122 && feed > 0,
            "the index to remove: {files} files, {feed} feed entries"
        );
        let response = hub
            .authed(Method::DELETE, &format!("/users/{alice_id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(providers.revocations() >= 1);
        let (status, _) = hub
            .json(hub.authed(Method::GET, &format!("/users/{alice_id}/files")))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Not only the account: its index, feed, channels and tombstone are gone from the
        // store, within the request for a small index, or, when a sync was running, by the
        // purge job (through the local queue to the worker) once that sync has ended.

        hub.eventually("nothing of the account left", || async {
            let gone = store.get_account(alice_id).await.unwrap().is_none()
                && store.get_deletion(alice_id).await.unwrap().is_none()
                && store
                    .list_files(alice_id, None, 10)
                    .await
                    .unwrap()
                    .items
                    .is_empty()
                && store.last_seq(alice_id).await.unwrap() == 0
                && store.account_channels(alice_id).await.unwrap().is_empty();
            gone.then_some(())
        })
        .await;
        assert_eq!(
            stored_entries(&store, alice_id).await,
            (0, 0),
            "no entry of the index nor of the feed is left"
        );
        drop(store);
        // A purge job (the one the request queued, delayed past its deadline, or the one the
        // running sync queued when it gave its lease back) reached the worker through the
        // local queue: it finished the purge, or found nothing left.
        hub.eventually("a purge job to reach the worker", || async {
            hub.log()
                .lines()
                .any(|line| {
                    (line.contains("nothing left to purge") || line.contains("purge finished"))
                        && line.contains(alice_id.as_str())
                })
                .then_some(())
        })
        .await;
        let (status, _) = hub
            .json(hub.authed(Method::DELETE, &format!("/users/{alice_id}")))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    /// No token the stand-ins issued appears in the logs or in the data dir.
    async fn no_issued_token_is_in_the_logs_or_at_rest(&self) {
        let (hub, providers) = (&self.hub, &self.providers);
        let log = hub.log();
        let at_rest: Vec<String> = hub
            .data_files()
            .iter()
            .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
            .collect();
        for token in providers.issued_tokens() {
            assert!(!log.contains(&token), "a token leaked into the logs");
            assert!(
                at_rest.iter().all(|content| !content.contains(&token)),
                "a token rests in clear text"
            );
        }
        assert!(
            log.contains("\"message\":\"file\""),
            "the worker logs one line per file"
        );
    }
}

/// At `trace`, the most a user can ask for, the logs still hold no secret: not the API key of
/// the management requests, nor a login's `state` or PKCE challenge, nor a code or token the
/// stand-ins issued (the runtime would log each raw event, headers and query included, and the
/// HTTP and SDK crates their requests, were they not capped in `hub::telemetry`).
#[tokio::test]
async fn nothing_secret_is_logged_even_at_trace() {
    let providers = FakeProviders::start().await;
    providers.add_files("google", 5);
    providers.add_files("onedrive", 5);
    let mut env = providers.env_vars();
    env.push(("RUST_LOG".to_string(), "trace".to_string()));
    let hub = LocalHub::start(&env).await;

    let mut secrets = vec![API_KEY.to_string()];
    let mut ids = Vec::new();
    for provider in ["google", "onedrive"] {
        let (status, account) = hub.log_in(provider).await;
        assert_eq!(status, StatusCode::OK, "{account}");
        ids.push(account["id"].as_str().unwrap().to_string());
        let consent = providers
            .last_authorize_query(provider)
            .expect("the stand-in saw the authorization request");
        secrets.push(consent["state"].clone());
        secrets.push(consent["code_challenge"].clone());
    }
    let (status, _) = sync(&hub, r#"{"source_type": "both"}"#).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    for id in &ids {
        synced_after(&hub, id, &Value::Null).await;
        assert_eq!(files_of(&hub, id).await.len(), 5);
    }
    secrets.extend(providers.issued_tokens());

    let log = hub.log();
    assert!(
        log.contains("\"level\":\"TRACE\""),
        "the functions logged at trace"
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret ({} characters) is in the trace-level logs",
            secret.len()
        );
    }
}
