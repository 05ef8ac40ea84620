//! The index an app builds on, through the real binaries under `cargo lambda watch`, on the
//! local backend and on the AWS backend (moto, with an SQS event source in front of the
//! worker): a consent without the Drive scope stores nothing; a client that follows the change
//! feed from the start through a first sync, changes, deletions, a Graph 410 restart and a
//! crash mid-sync ends with exactly the index; `/users` is paged by its `Link` header.

use std::time::Duration;

use hub_e2e::aws::AwsResources;
use hub_e2e::feed::{index_of, FeedClient};
use hub_e2e::{LocalHub, StatusCode};
use hub_testkit::FakeProviders;
use oauth2::reqwest::Method;
use serde_json::Value;

const FILES_PAGE: usize = 7;
const CHANGES_PAGE: usize = 5;

async fn sync_and_wait(hub: &LocalHub, id: &str) {
    let (_, before) = hub
        .json(hub.authed(Method::GET, &format!("/users/{id}")))
        .await;
    let (status, started) = hub
        .json(
            hub.authed(Method::POST, "/sync")
                .header("content-type", "application/json")
                .body(format!(r#"{{"user_id": "{id}"}}"#)),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    hub.eventually("the sync to finish", || async {
        let (_, account) = hub
            .json(hub.authed(Method::GET, &format!("/users/{id}")))
            .await;
        (!account["last_synced_at"].is_null()
            && account["last_synced_at"] != before["last_synced_at"])
            .then_some(())
    })
    .await;
}

/// Asks for a sync of `id` and returns at once.
async fn ask_for_a_sync(hub: &LocalHub, id: &str) {
    let (status, started) = hub
        .json(
            hub.authed(Method::POST, "/sync")
                .header("content-type", "application/json")
                .body(format!(r#"{{"user_id": "{id}"}}"#)),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
}

#[tokio::test]
async fn the_feed_the_index_and_the_accounts_on_the_local_backend() {
    let providers = FakeProviders::start().await;
    let mut hub = LocalHub::start(&providers.env_vars()).await;
    the_feed_the_index_and_the_accounts(&providers, &mut hub).await;
}

#[tokio::test]
async fn the_feed_the_index_and_the_accounts_on_the_aws_backend() {
    let providers = FakeProviders::start().await;
    let aws = AwsResources::create().await;
    let mut env = providers.env_vars();
    env.extend(aws.env_vars());
    let mut hub = LocalHub::start(&env).await;
    let _worker_trigger = aws.event_source(&hub.url);
    the_feed_the_index_and_the_accounts(&providers, &mut hub).await;
    assert_eq!(aws.dead_letters().await, 0, "no job failed for good");
}

async fn the_feed_the_index_and_the_accounts(providers: &FakeProviders, hub: &mut LocalHub) {
    let files = providers.add_files("onedrive", 23);
    providers.set_graph_page_size(6);

    // Granular consent: the Drive box unticked stores nothing.
    providers.grant_only_on_next_consent("google", "openid email");
    let (status, refused) = hub.log_in("google").await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("scope_not_granted")),
        "{refused}"
    );
    let (_, users) = hub.json(hub.authed(Method::GET, "/users")).await;
    assert_eq!(users, serde_json::json!([]));

    let (status, bob) = hub.log_in("onedrive").await;
    assert_eq!(status, StatusCode::OK, "{bob}");
    let bob = bob["id"].as_str().unwrap().to_string();

    // The first sync, followed from the start of the feed.
    let mut client = FeedClient::new(CHANGES_PAGE);
    sync_and_wait(hub, &bob).await;
    client.catch_up(hub, &bob).await;
    let index = index_of(hub, &bob, FILES_PAGE).await;
    assert_eq!(index.len(), 23);
    assert_eq!(client.seen, index, "the feed ends at the index");
    let entry = index.values().next().unwrap();
    for field in [
        "kind",
        "parent_ids",
        "drive_id",
        "path",
        "content_hash",
        "target_id",
        "changed_at",
    ] {
        assert!(
            entry.get(field).is_some(),
            "{field} is never missing: {entry}"
        );
    }

    // Changes and a deletion: the client reads only what changed.
    let changed = providers.change_files("onedrive", 3);
    providers.delete_file("onedrive", &files[0]);
    sync_and_wait(hub, &bob).await;
    let before = client.seen.clone();
    client.catch_up(hub, &bob).await;
    let index = index_of(hub, &bob, FILES_PAGE).await;
    assert_eq!(client.seen, index);
    assert_eq!(index[&files[0]]["deleted"], true);
    for id in &changed {
        assert_ne!(before[id], index[id], "{id} changed");
    }

    // The delta link expires while a file is deleted: the restart reconciles it away.
    providers.expire_delta_links();
    providers.delete_file("onedrive", &files[1]);
    sync_and_wait(hub, &bob).await;
    client.catch_up(hub, &bob).await;
    let index = index_of(hub, &bob, FILES_PAGE).await;
    assert_eq!(
        client.seen, index,
        "the feed ends at the index after a restart"
    );
    assert_eq!(index[&files[1]]["deleted"], true, "not seen again: deleted");
    assert_eq!(index.values().filter(|f| f["deleted"] == false).count(), 21);

    // A nothing-new read keeps the position.
    let cursor = client.cursor.clone();
    client.catch_up(hub, &bob).await;
    assert_eq!(client.cursor, cursor);

    // The hub killed mid-sync (slow pages keep the sync in flight): the client reads what
    // was stored meanwhile; the job died with the hub (local) or comes back after its
    // visibility timeout (SQS), and the dead worker's lease lives on until it expires. One
    // more request for a sync is enough: it waits for the lease, then resumes.
    let added = providers.add_files("onedrive", 60);
    providers.set_latency(Duration::from_millis(400));
    ask_for_a_sync(hub, &bob).await;
    hub.eventually("a few pages of the sync stored", || async {
        let index = index_of(hub, &bob, FILES_PAGE).await;
        let stored = added.iter().filter(|id| index.contains_key(*id)).count();
        (stored >= 12).then_some(())
    })
    .await;
    assert!(hub.is_running("sync-worker"), "the sync is in flight");
    hub.crash_and_restart().await;
    providers.set_latency(Duration::ZERO);
    client.catch_up(hub, &bob).await;
    let partial = added
        .iter()
        .filter(|id| client.seen.contains_key(*id))
        .count();
    assert!(
        partial < added.len(),
        "the crash came mid-sync: {partial} seen"
    );
    sync_and_wait(hub, &bob).await;
    client.catch_up(hub, &bob).await;
    let index = index_of(hub, &bob, FILES_PAGE).await;
    assert_eq!(
        client.seen, index,
        "the feed ends at the index after a crash"
    );
    assert_eq!(index.values().filter(|f| f["deleted"] == false).count(), 81);

    // `/users` one row a page, by its Link header; `/users/{id}` one row.
    let (status, alice) = hub.log_in("google").await;
    assert_eq!(status, StatusCode::OK, "{alice}");
    let mut ids = Vec::new();
    let mut next = Some(format!("{}/users?limit=1", hub.url));
    while let Some(url) = next {
        let path = url
            .strip_prefix(&hub.url)
            .expect("links point at the hub")
            .to_string();
        let response = hub.authed(Method::GET, &path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        next = response.headers().get("link").map(|link| {
            let link = link.to_str().unwrap();
            assert!(link.ends_with(r#">; rel="next""#), "{link}");
            link[1..link.find('>').unwrap()].to_string()
        });
        let page: Value = response.json().await.unwrap();
        assert_eq!(page.as_array().unwrap().len(), 1);
        ids.push(page[0]["id"].as_str().unwrap().to_string());
    }
    ids.sort();
    let mut expected = vec![bob.clone(), alice["id"].as_str().unwrap().to_string()];
    expected.sort();
    assert_eq!(ids, expected);
    let (status, row) = hub
        .json(hub.authed(Method::GET, &format!("/users/{bob}")))
        .await;
    assert_eq!(
        (status, row["id"].as_str()),
        (StatusCode::OK, Some(bob.as_str()))
    );
}
