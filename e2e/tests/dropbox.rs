//! Dropbox through the real binaries under `cargo lambda watch`: login through the stand-in's
//! consent, `POST /sync {"source_type": "dropbox"}` syncing only the Dropbox account, a first
//! sync, an incremental one with a file added, one renamed and a folder tree deleted (one
//! `deleted` entry by path at Dropbox), a `reset` cursor, a refresh after expiry, and the
//! user's team getting a team space (the sync lists it from its root and `/users/{id}/drives`
//! shows the `team_space` drive replacing the `dropbox` one), and the grant revoked on
//! `DELETE`; `/files` and `/changes` show every deletion. On the local
//! backend and on the AWS backend (moto, an SQS event source in front of the worker).

use hub_e2e::aws::AwsResources;
use hub_e2e::feed::{index_of, FeedClient};
use hub_e2e::{LocalHub, StatusCode};
use hub_testkit::{FakeProviders, FileSpec, DEFAULT_DROPBOX_USER};
use oauth2::reqwest::Method;
use serde_json::Value;

const FILES_PAGE: usize = 3;
const CHANGES_PAGE: usize = 4;

/// `GET /users/{id}/drives`, as `(id, kind, status, file_count)` in the answer's order.
async fn drives(hub: &LocalHub, id: &str) -> Vec<(String, String, String, u64)> {
    let (status, page) = hub
        .json(hub.authed(Method::GET, &format!("/users/{id}/drives")))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["drives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|drive| {
            assert!(!drive["last_synced_at"].is_null(), "{drive}");
            (
                drive["id"].as_str().unwrap().to_string(),
                drive["kind"].as_str().unwrap().to_string(),
                drive["status"].as_str().unwrap().to_string(),
                drive["file_count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn dropbox_through_the_real_binaries_on_the_local_backend() {
    let providers = FakeProviders::start().await;
    let mut env = providers.env_vars();
    env.extend(providers.dropbox_env_vars());
    let hub = LocalHub::start(&env).await;
    dropbox_login_syncs_and_deletions_by_path(&providers, &hub).await;
}

#[tokio::test]
async fn dropbox_through_the_real_binaries_on_the_aws_backend() {
    let providers = FakeProviders::start().await;
    let aws = AwsResources::create().await;
    let mut env = providers.env_vars();
    env.extend(providers.dropbox_env_vars());
    env.extend(aws.env_vars());
    let hub = LocalHub::start(&env).await;
    let _worker_trigger = aws.event_source(&hub.url);
    dropbox_login_syncs_and_deletions_by_path(&providers, &hub).await;
    assert_eq!(aws.dead_letters().await, 0, "no job failed for good");
}

async fn dropbox_login_syncs_and_deletions_by_path(providers: &FakeProviders, hub: &LocalHub) {
    providers.set_dropbox_page_size(4);
    let user = DEFAULT_DROPBOX_USER;
    providers.add_file("dropbox", user, FileSpec::folder("id:docs", "Docs"));
    providers.add_file(
        "dropbox",
        user,
        FileSpec::new("id:a", "a.txt").in_folder("id:docs"),
    );
    providers.add_file(
        "dropbox",
        user,
        FileSpec::folder("id:sub", "Sub").in_folder("id:docs"),
    );
    providers.add_file(
        "dropbox",
        user,
        FileSpec::new("id:b", "b.txt").in_folder("id:sub"),
    );
    providers.add_file("dropbox", user, FileSpec::new("id:keep", "keep.txt"));
    providers.add_files("onedrive", 2);

    let (status, config) = hub.json(hub.get("/config")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        config["available_providers"]
            .as_array()
            .unwrap()
            .contains(&Value::from("dropbox")),
        "{config}"
    );
    let (status, account) = hub.log_in("dropbox").await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(account["provider"], "dropbox");
    let id = account["id"].as_str().unwrap().to_string();
    let (status, other) = hub.log_in("onedrive").await;
    assert_eq!(status, StatusCode::OK, "{other}");
    let other = other["id"].as_str().unwrap().to_string();

    // First sync: every entry, folders included, with Dropbox's paths.
    let mut client = FeedClient::new(CHANGES_PAGE);
    hub.sync_provider("dropbox", &id).await;
    assert!(
        hub.last_synced_at(&other).await.is_null(),
        "source_type dropbox leaves the OneDrive account alone"
    );
    client.catch_up(hub, &id).await;
    let index = index_of(hub, &id, FILES_PAGE).await;
    assert_eq!(index.len(), 5);
    assert_eq!(client.seen, index, "the feed ends at the index");
    let b = &index["id:b"];
    assert_eq!(b["path"], "/Docs/Sub/b.txt");
    assert_eq!(b["parent_ids"], serde_json::json!([]));
    assert_eq!(
        b["drive_id"], "dropbox",
        "the drive the hub gives a Dropbox account"
    );
    assert_eq!(b["content_hash"]["algorithm"], "dropbox");
    assert_eq!(index["id:sub"]["kind"], "folder");
    assert_eq!(
        drives(hub, &id).await,
        [("dropbox".into(), "dropbox".into(), "active".into(), 5)]
    );

    // A folder tree deleted, a file renamed, a file added.
    providers.delete_folder_tree("dropbox", user, "id:docs");
    providers.modify_file("dropbox", user, "id:keep", "kept.txt");
    providers.add_file("dropbox", user, FileSpec::new("id:new", "new.txt"));
    hub.sync_provider("dropbox", &id).await;
    client.catch_up(hub, &id).await;
    let index = index_of(hub, &id, FILES_PAGE).await;
    assert_eq!(client.seen, index, "the feed shows every deletion");
    for gone in ["id:docs", "id:a", "id:sub", "id:b"] {
        assert_eq!(index[gone]["deleted"], true, "{gone}: {}", index[gone]);
    }
    assert_eq!(index["id:keep"]["deleted"], false);
    assert_eq!(index["id:keep"]["path"], "/kept.txt");
    assert_eq!(index["id:new"]["deleted"], false);

    // A reset cursor while a file is deleted: the enumeration restarts and reconciles.
    providers.reset_cursors();
    providers.delete_file_for("dropbox", user, "id:new");
    hub.sync_provider("dropbox", &id).await;
    client.catch_up(hub, &id).await;
    let index = index_of(hub, &id, FILES_PAGE).await;
    assert_eq!(client.seen, index);
    assert_eq!(index["id:new"]["deleted"], true);

    // Expired access tokens: the worker refreshes once and syncs.
    providers.expire_access_tokens();
    providers.add_file("dropbox", user, FileSpec::new("id:late", "late.txt"));
    hub.sync_provider("dropbox", &id).await;
    let index = index_of(hub, &id, FILES_PAGE).await;
    assert_eq!(index["id:late"]["deleted"], false);

    // The user's team gets a team space: the next sync finds the new root, lists the team
    // space from its root (a team folder, the member folder holding the user's files) and
    // replaces the `dropbox` drive by the `team_space` one.
    let member_folder = providers.make_dropbox_team_member(user, "Acme");
    providers.add_file("dropbox", user, FileSpec::folder("id:team", "Handbook"));
    hub.sync_provider("dropbox", &id).await;
    client.catch_up(hub, &id).await;
    let index = index_of(hub, &id, FILES_PAGE).await;
    assert_eq!(client.seen, index, "the feed ends at the index");
    assert_eq!(index["id:team"]["path"], "/Handbook");
    assert_eq!(index[member_folder.as_str()]["kind"], "folder");
    let late = &index["id:late"];
    assert_eq!(late["deleted"], false, "{late}");
    assert!(
        late["path"].as_str().unwrap().ends_with("/late.txt") && late["path"] != "/late.txt",
        "the user's own file is under the member folder now: {late}"
    );
    let team_space = index["id:team"]["drive_id"].as_str().unwrap().to_string();
    let live = index.values().filter(|e| e["deleted"] == false).count() as u64;
    assert_eq!(
        drives(hub, &id).await,
        [
            ("dropbox".into(), "dropbox".into(), "removed".into(), 0),
            (team_space, "team_space".into(), "active".into(), live),
        ]
    );

    // DELETE revokes the grant at Dropbox.
    let revocations = providers.revocations();
    let response = hub
        .authed(Method::DELETE, &format!("/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        providers.revocations(),
        revocations + 1,
        "the grant was revoked"
    );
    let (status, _) = hub
        .json(hub.authed(Method::GET, &format!("/users/{id}")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
