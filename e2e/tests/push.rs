//! Push notifications through the real binaries under `cargo lambda watch` (docs/API.md, "Push
//! notifications"): with `HUB_PUSH=on`, after a first sync has opened the Drive channel and the
//! Graph subscription (Graph validating the hub's address on the way) and the Dropbox webhook
//! is registered (the challenge echoed), a change at each stand-in reaches `/changes` with no
//! `POST /sync`: the provider notifies `provider-webhooks`, which queues a push job for the
//! worker. Forged notifications are refused and sync nothing. On the local backend and on the
//! AWS backend (moto, an SQS event source in front of the worker).

use hub_e2e::aws::AwsResources;
use hub_e2e::{LocalHub, StatusCode};
use hub_testkit::{
    Authenticity, FakeProviders, FileSpec, DEFAULT_DROPBOX_USER, DEFAULT_GOOGLE_USER,
    DEFAULT_MICROSOFT_USER,
};
use oauth2::reqwest::Method;
use serde_json::Value;

fn push_env(providers: &FakeProviders) -> Vec<(String, String)> {
    let mut env = providers.env_vars();
    env.extend(providers.dropbox_env_vars());
    env.push(("HUB_PUSH".into(), "on".into()));
    // Graph opens a drive subscription only for a grant with a write scope
    // (docs/API.md, "Push notifications").
    env.push(("ONEDRIVE_SCOPES".into(), "Files.ReadWrite".into()));
    env
}

#[tokio::test]
async fn a_change_at_each_provider_reaches_the_feed_by_push_on_the_local_backend() {
    let providers = FakeProviders::start().await;
    let hub = LocalHub::start(&push_env(&providers)).await;
    changes_arrive_by_push(&providers, &hub).await;
}

#[tokio::test]
async fn a_change_at_each_provider_reaches_the_feed_by_push_on_the_aws_backend() {
    let providers = FakeProviders::start().await;
    let aws = AwsResources::create().await;
    let mut env = push_env(&providers);
    env.extend(aws.env_vars());
    let hub = LocalHub::start(&env).await;
    let _worker_trigger = aws.event_source(&hub.url);
    changes_arrive_by_push(&providers, &hub).await;
    assert_eq!(aws.dead_letters().await, 0, "no job failed for good");
}

async fn last_synced_at(hub: &LocalHub, id: &str) -> Value {
    let (_, account) = hub
        .json(hub.authed(Method::GET, &format!("/users/{id}")))
        .await;
    account["last_synced_at"].clone()
}

/// The ids in the account's whole change feed.
async fn feed_ids(hub: &LocalHub, id: &str) -> Vec<String> {
    let (mut ids, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/users/{id}/changes?limit=100&cursor={c}"),
            None => format!("/users/{id}/changes?limit=100"),
        };
        let (status, page) = hub.json(hub.authed(Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for entry in page["changes"].as_array().unwrap() {
            ids.push(entry["id"].as_str().unwrap().to_string());
        }
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if page["has_more"] != true {
            return ids;
        }
    }
}

async fn changes_arrive_by_push(providers: &FakeProviders, hub: &LocalHub) {
    providers.add_files("google", 1);
    providers.add_files("onedrive", 1);
    providers.add_file(
        "dropbox",
        DEFAULT_DROPBOX_USER,
        FileSpec::new("id:first", "first.txt"),
    );
    let mut accounts = Vec::new();
    for provider in ["google", "onedrive", "dropbox"] {
        let (status, account) = hub.log_in(provider).await;
        assert_eq!(status, StatusCode::OK, "{account}");
        accounts.push(account["id"].as_str().unwrap().to_string());
    }
    let [google, onedrive, dropbox] = <[String; 3]>::try_from(accounts).unwrap();

    // The first sync of each account (the only POST /sync of the test) opens the channels.
    let (status, started) = hub
        .json(
            hub.authed(Method::POST, "/sync")
                .header("content-type", "application/json")
                .body(r#"{"source_type": "all"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["jobs_enqueued"], 3);
    for id in [&google, &onedrive, &dropbox] {
        hub.eventually("the first sync", || async {
            (!last_synced_at(hub, id).await.is_null()).then_some(())
        })
        .await;
    }
    hub.eventually("a live Drive channel and Graph subscription", || async {
        let drive = providers.live_drive_channels(DEFAULT_GOOGLE_USER).len();
        let graph = providers
            .live_graph_subscriptions(DEFAULT_MICROSOFT_USER)
            .len();
        (drive == 1 && graph == 1).then_some(())
    })
    .await;
    assert!(
        providers
            .register_dropbox_webhook(&format!("{}/webhooks/dropbox", hub.url))
            .await,
        "the hub echoes Dropbox's challenge"
    );

    // A change at each provider, waiting there for a notification.
    providers.add_file(
        "google",
        DEFAULT_GOOGLE_USER,
        FileSpec::new("g-pushed", "pushed.txt"),
    );
    providers.add_file(
        "onedrive",
        DEFAULT_MICROSOFT_USER,
        FileSpec::new("m-pushed", "pushed.txt"),
    );
    providers.add_file(
        "dropbox",
        DEFAULT_DROPBOX_USER,
        FileSpec::new("id:pushed", "pushed.txt"),
    );
    let pushed = [
        (&google, "g-pushed"),
        (&onedrive, "m-pushed"),
        (&dropbox, "id:pushed"),
    ];
    let mut synced_before = Vec::new();
    for (id, _) in pushed {
        synced_before.push(last_synced_at(hub, id).await);
    }

    // Forgeries are refused (Graph's ignored with a 202) and sync nothing.
    let forged = providers
        .notify_drive_change(DEFAULT_GOOGLE_USER, Authenticity::Forged)
        .await;
    assert_eq!(forged[0].status, Some(401));
    let forged = providers
        .notify_graph_change(DEFAULT_MICROSOFT_USER, Authenticity::Forged)
        .await;
    assert_eq!(forged[0].status, Some(202));
    let forged = providers
        .notify_dropbox(&[DEFAULT_DROPBOX_USER], Authenticity::Forged)
        .await;
    assert_eq!(forged.status, Some(401));
    // A job queued by a forgery would have run by now (a genuine notification's change is
    // in the feed within a second or two): none did, since every sync moves its account's
    // `last_synced_at`, and the waiting changes are not in the feed.
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    for ((id, file), before) in pushed.into_iter().zip(synced_before) {
        assert_eq!(
            last_synced_at(hub, id).await,
            before,
            "a forged notification started a sync"
        );
        assert!(
            !feed_ids(hub, id).await.iter().any(|seen| seen == file),
            "a forged notification brought {file} into the feed"
        );
    }

    // Then the genuine notifications: the feed has each change, with no POST /sync.
    let sent = providers
        .notify_drive_change(DEFAULT_GOOGLE_USER, Authenticity::Genuine)
        .await;
    assert_eq!(sent[0].status, Some(200));
    let sent = providers
        .notify_graph_change(DEFAULT_MICROSOFT_USER, Authenticity::Genuine)
        .await;
    assert_eq!(sent[0].status, Some(202));
    let sent = providers
        .notify_dropbox(&[DEFAULT_DROPBOX_USER], Authenticity::Genuine)
        .await;
    assert_eq!(sent.status, Some(200));
    for (id, file) in pushed {
        hub.eventually("the pushed change in the feed", || async {
            feed_ids(hub, id)
                .await
                .iter()
                .any(|seen| seen == file)
                .then_some(())
        })
        .await;
    }

    // DELETE stops the channel and deletes the subscription.
    for id in [&google, &onedrive] {
        let answer = hub
            .authed(Method::DELETE, &format!("/users/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    }
    assert!(providers
        .live_drive_channels(DEFAULT_GOOGLE_USER)
        .is_empty());
    assert!(providers
        .live_graph_subscriptions(DEFAULT_MICROSOFT_USER)
        .is_empty());
}

/// The bounds of docs/API.md, "Push notifications", through the real `provider-webhooks`
/// binary: a body naming 20,000 notifications is 400 and one over 1 MB is 413, each in the
/// API's error shape and within 2 seconds, on every webhook route.
#[tokio::test]
async fn the_webhook_routes_refuse_floods_within_two_seconds_through_the_binaries() {
    let providers = FakeProviders::start().await;
    let hub = LocalHub::start(&push_env(&providers)).await;
    // Warm the function up (its first invocation starts its process).
    let (status, _) = hub
        .json(hub.get("/webhooks/onedrive?validationToken=warm"))
        .await;
    assert_eq!(status, StatusCode::OK);

    let items: Vec<Value> = (0..20_000)
        .map(|i| serde_json::json!({"subscriptionId": "s", "clientState": format!("{i:x}.x")}))
        .collect();
    let flood = serde_json::to_vec(&serde_json::json!({ "value": items })).unwrap();
    assert!(flood.len() < 1_000_000);
    let accounts: Vec<String> = (0..20_000).map(|i| format!("dbid:{i}")).collect();
    let dropbox_flood =
        serde_json::to_vec(&serde_json::json!({"list_folder": {"accounts": accounts}})).unwrap();
    let dropbox_signature = hub_testkit::dropbox_signature(&dropbox_flood);
    let oversized = vec![b' '; 1_000_001];
    let cases = [
        ("/webhooks/onedrive", flood, None, 400, "invalid_request"),
        (
            "/webhooks/dropbox",
            dropbox_flood,
            Some(dropbox_signature),
            400,
            "invalid_request",
        ),
        (
            "/webhooks/onedrive",
            oversized.clone(),
            None,
            413,
            "payload_too_large",
        ),
        (
            "/webhooks/google",
            oversized.clone(),
            None,
            413,
            "payload_too_large",
        ),
        (
            "/webhooks/dropbox",
            oversized,
            None,
            413,
            "payload_too_large",
        ),
    ];
    for (path, body, signature, expected, code) in cases {
        let mut request = hub
            .client
            .post(format!("{}{path}", hub.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("X-Dropbox-Signature", signature);
        }
        let started = std::time::Instant::now();
        let (status, answer) = hub.json(request).await;
        let took = started.elapsed();
        assert_eq!(status.as_u16(), expected, "{path}: {answer}");
        assert_eq!(answer["error"], code, "{path}: {answer}");
        assert!(answer["message"].is_string(), "{answer}");
        assert!(
            took < std::time::Duration::from_secs(2),
            "{path} answered after {took:?}"
        );
    }
}

/// Issue 24 item 5 through the real binaries: Graph holds the worker's subscribe call while
/// `DELETE /users/{id}` answers 204; the worker then deletes the subscription it made, and
/// neither a subscription nor a channel record is left.
#[tokio::test]
async fn a_delete_during_the_subscribe_call_leaves_no_subscription_through_the_binaries() {
    let providers = FakeProviders::start().await;
    let hub = LocalHub::start(&push_env(&providers)).await;
    providers.add_files("onedrive", 1);
    let (status, account) = hub.log_in("onedrive").await;
    assert_eq!(status, StatusCode::OK, "{account}");
    let id = account["id"].as_str().unwrap().to_string();
    providers.delay_next(
        "POST",
        "/graph/v1.0/subscriptions",
        std::time::Duration::from_secs(8),
        1,
    );
    let (status, started) = hub
        .json(
            hub.authed(Method::POST, "/sync")
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"source_type": "onedrive", "user_id": "{id}"}}"#
                )),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    hub.eventually("the worker's subscribe call", || async {
        (providers.requests("/graph/v1.0/subscriptions") > 0).then_some(())
    })
    .await;
    let answer = hub
        .authed(Method::DELETE, &format!("/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        providers.requests("/graph/v1.0/subscriptions/"),
        0,
        "the DELETE answered while Graph held the subscribe call"
    );
    // Once Graph answers, the worker finds the account gone and deletes what it opened.
    hub.eventually("the worker's DELETE /subscriptions/{id}", || async {
        (providers.requests("/graph/v1.0/subscriptions/") > 0).then_some(())
    })
    .await;
    assert!(providers
        .live_graph_subscriptions(DEFAULT_MICROSOFT_USER)
        .is_empty());
    let channel_files: Vec<_> = hub
        .data_files()
        .into_iter()
        .filter(|path| {
            path.components().any(|c| {
                matches!(
                    c.as_os_str().to_str(),
                    Some("channels" | "account-channels")
                )
            })
        })
        .collect();
    assert!(channel_files.is_empty(), "{channel_files:?}");
    let (status, _) = hub
        .json(hub.authed(Method::GET, &format!("/users/{id}")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
