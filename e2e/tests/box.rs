//! Box through the real binaries under `cargo lambda watch`: login through the stand-in's
//! consent, `POST /sync {"source_type": "box"}` syncing only the Box account, a first sync
//! (the walk from folder `0`, ids colliding across files and folders), an incremental one
//! from the event stream (repeated events, a file renamed, a folder moved, a file trashed, a
//! folder trashed with its subtree), refreshes with rotating refresh tokens, and the pair
//! revoked on `DELETE`; `/files` and `/changes` end equal to Box. On the local backend and on
//! the AWS backend (moto, an SQS event source in front of the worker).

use hub_e2e::aws::AwsResources;
use hub_e2e::feed::{index_of, FeedClient};
use hub_e2e::{LocalHub, StatusCode};
use hub_testkit::{BoxChange, BoxKind, FakeProviders, BOX_ROOT_ID, DEFAULT_BOX_USER};
use oauth2::reqwest::Method;
use serde_json::Value;

const FILES_PAGE: usize = 3;
const CHANGES_PAGE: usize = 4;
const USER: &str = DEFAULT_BOX_USER;

/// The index's live entries as (id, path), and Box's tree the same way.
fn assert_index_is_box(
    providers: &FakeProviders,
    index: &std::collections::BTreeMap<String, Value>,
) {
    let live: Vec<(String, String)> = index
        .iter()
        .filter(|(_, entry)| entry["deleted"] == false)
        .map(|(id, entry)| (id.clone(), entry["path"].as_str().unwrap_or("").to_string()))
        .collect();
    let mut at_box: Vec<(String, String)> = providers
        .box_items(USER)
        .into_iter()
        .map(|(kind, id, path)| (format!("{}_{id}", kind.as_str()), path))
        .collect();
    at_box.sort();
    assert_eq!(live, at_box);
}

#[tokio::test]
async fn box_through_the_real_binaries_on_the_local_backend() {
    let providers = FakeProviders::start().await;
    let mut env = providers.env_vars();
    env.extend(providers.box_env_vars());
    let hub = LocalHub::start(&env).await;
    box_login_syncs_and_revocation(&providers, &hub).await;
}

#[tokio::test]
async fn box_through_the_real_binaries_on_the_aws_backend() {
    let providers = FakeProviders::start().await;
    let aws = AwsResources::create().await;
    let mut env = providers.env_vars();
    env.extend(providers.box_env_vars());
    env.extend(aws.env_vars());
    let hub = LocalHub::start(&env).await;
    let _worker_trigger = aws.event_source(&hub.url);
    box_login_syncs_and_revocation(&providers, &hub).await;
    assert_eq!(aws.dead_letters().await, 0, "no job failed for good");
}

async fn box_login_syncs_and_revocation(providers: &FakeProviders, hub: &LocalHub) {
    let docs = providers.box_add_folder(USER, "Docs", BOX_ROOT_ID);
    let a = providers.box_add_file(USER, "a.txt", &docs);
    let sub = providers.box_add_folder(USER, "Sub", &docs);
    let b = providers.box_add_file(USER, "b.txt", &sub);
    let keep = providers.box_add_file(USER, "keep.txt", BOX_ROOT_ID);
    assert_eq!(docs, a, "a file and a folder share an id at Box");
    providers.add_files("onedrive", 2);

    let (status, config) = hub.json(hub.get("/config")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        config["available_providers"]
            .as_array()
            .unwrap()
            .contains(&Value::from("box")),
        "{config}"
    );
    let (status, account) = hub.log_in("box").await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(account["provider"], "box");
    assert_eq!(account["email"], hub_testkit::DEFAULT_BOX_EMAIL);
    let id = account["id"].as_str().unwrap().to_string();
    let (status, other) = hub.log_in("onedrive").await;
    assert_eq!(status, StatusCode::OK, "{other}");
    let other = other["id"].as_str().unwrap().to_string();

    // First sync: every item, folders included, each with its own id.
    let mut client = FeedClient::new(CHANGES_PAGE);
    hub.sync_provider("box", &id).await;
    assert!(
        hub.last_synced_at(&other).await.is_null(),
        "source_type box leaves the OneDrive account alone"
    );
    client.catch_up(hub, &id).await;
    let index = index_of(hub, &id, FILES_PAGE).await;
    assert_eq!(index.len(), 5);
    assert_eq!(client.seen, index, "the feed ends at the index");
    assert_index_is_box(providers, &index);
    let entry_b = &index[&format!("file_{b}")];
    assert_eq!(entry_b["path"], "/Docs/Sub/b.txt");
    assert_eq!(
        entry_b["parent_ids"],
        serde_json::json!([format!("folder_{sub}")])
    );
    assert_eq!(entry_b["drive_id"], "box");
    assert_eq!(entry_b["content_hash"]["algorithm"], "sha1");
    assert_eq!(index[&format!("folder_{docs}")]["kind"], "folder");
    assert_eq!(index[&format!("file_{a}")]["kind"], "file");

    // Repeated events; a rename, a folder moved, a file trashed, a new file.
    providers.box_repeat_events(USER, true);
    providers.box_change(
        USER,
        BoxKind::File,
        &keep,
        BoxChange::Rename("kept.txt".into()),
    );
    providers.box_change(
        USER,
        BoxKind::Folder,
        &sub,
        BoxChange::Move(BOX_ROOT_ID.into()),
    );
    providers.box_change(USER, BoxKind::File, &a, BoxChange::Trash);
    let new = providers.box_add_file(USER, "new.txt", BOX_ROOT_ID);
    hub.sync_provider("box", &id).await;
    client.catch_up(hub, &id).await;
    let index = index_of(hub, &id, FILES_PAGE).await;
    assert_eq!(client.seen, index, "the feed shows every change");
    assert_index_is_box(providers, &index);
    assert_eq!(index[&format!("file_{a}")]["deleted"], true);
    assert_eq!(index[&format!("file_{b}")]["path"], "/Sub/b.txt");
    assert_eq!(index[&format!("file_{keep}")]["path"], "/kept.txt");
    assert_eq!(index[&format!("file_{new}")]["deleted"], false);

    // A folder trashed takes its subtree; expired access tokens refresh (and rotate) first.
    providers.expire_access_tokens();
    providers.box_change(USER, BoxKind::Folder, &sub, BoxChange::Trash);
    hub.sync_provider("box", &id).await;
    client.catch_up(hub, &id).await;
    let index = index_of(hub, &id, FILES_PAGE).await;
    assert_eq!(client.seen, index);
    assert_index_is_box(providers, &index);
    assert_eq!(index[&format!("file_{b}")]["deleted"], true);

    // The rotated refresh token was kept: another refresh works.
    providers.expire_access_tokens();
    let late = providers.box_add_file(USER, "late.txt", BOX_ROOT_ID);
    hub.sync_provider("box", &id).await;
    let index = index_of(hub, &id, FILES_PAGE).await;
    assert_eq!(index[&format!("file_{late}")]["deleted"], false);

    // DELETE revokes the pair at Box.
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
        "the pair was revoked"
    );
    let (status, _) = hub
        .json(hub.authed(Method::GET, &format!("/users/{id}")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
