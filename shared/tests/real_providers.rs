//! The worker (`hub::sync::sync`) against the strict stand-ins of Drive v3 and Graph
//! (`hub_testkit::FakeProviders`): shared drives and files shared with the user, a stale
//! `files.list` page token mid-enumeration, an expired Graph delta link, an item repeated in a
//! delta page, Drive's 403 rate limits, and folders, parents and hashes for both providers.
//! Accounts are connected by a real login through the stand-ins' consent pages.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hub::model::{AccountStatus, ContentHash, FileEntry, FileKind, SyncJob, SyncReason};
use hub::sync::{SkipReason, SyncResult};
use hub::Hub;
use hub_testkit::{
    FakeProviders, FileSpec, DEFAULT_DROPBOX_USER, DEFAULT_GOOGLE_USER, DEFAULT_MICROSOFT_USER,
};

/// A local-backend hub pointed at the stand-ins, in its own data directory.
async fn hub_for(providers: &FakeProviders) -> (Hub, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub::testing::local_hub(dir.path(), &providers.env_vars()).await;
    (hub, dir)
}

/// Logs in as a browser would: the hub's consent URL, the stand-in's redirect back with a
/// code (it consents at once), the hub's callback. Returns the new account's id.
async fn connect(hub: &Hub, provider: &str) -> String {
    let consent = hub::login::begin(hub, provider).await.unwrap();
    let callback = common::consent(&consent).await;
    hub::login::complete(hub, provider, callback)
        .await
        .unwrap()
        .id
}

fn job(account_id: &str, provider: &str) -> SyncJob {
    SyncJob {
        account_id: account_id.to_string(),
        provider: provider.to_string(),
        reason: SyncReason::Manual,
        requested_at: Utc::now(),
        stalled_requeues: 0,
    }
}

async fn sync(hub: &Hub, account_id: &str, provider: &str) -> SyncResult {
    hub::sync::run(
        hub,
        &job(account_id, provider),
        hub::sync::fresh_invocation(),
    )
    .await
    .unwrap()
}

/// The account's index, by file id.
async fn index(hub: &Hub, account_id: &str) -> HashMap<String, FileEntry> {
    let page = hub.store.list_files(account_id, None, 1000).await.unwrap();
    assert!(page.next.is_none(), "the test drives fit one page");
    page.items
        .into_iter()
        .map(|entry| (entry.id.clone(), entry))
        .collect()
}

fn assert_synced(result: &SyncResult) {
    assert!(
        matches!(result, SyncResult::Synced { .. }),
        "the sync finished: {result:?}"
    );
}

// ---------------------------------------------------------------- Google Drive

#[tokio::test]
async fn shared_drive_and_shared_with_me_files_are_indexed_by_a_first_google_sync() {
    let providers = FakeProviders::start().await;
    let user = DEFAULT_GOOGLE_USER;
    providers.add_file("google", user, FileSpec::new("mine", "mine.txt"));
    providers.add_file(
        "google",
        user,
        FileSpec::new("team", "team.txt").in_shared_drive("0A-team-drive"),
    );
    providers.add_file(
        "google",
        user,
        FileSpec::new("from-bob", "from-bob.txt").shared_with_me(),
    );
    let (hub, _dir) = hub_for(&providers).await;
    let account = connect(&hub, "google").await;

    assert_synced(&sync(&hub, &account, "google").await);

    let index = index(&hub, &account).await;
    let team = &index["team"];
    assert_eq!(team.drive_id.as_deref(), Some("0A-team-drive"));
    assert!(!team.deleted);
    let shared = &index["from-bob"];
    assert_eq!(
        shared.drive_id.as_deref(),
        Some("my-drive"),
        "shared with the user, not in a shared drive: among the user's own"
    );
    assert_eq!(
        shared.parent_ids,
        Some(vec![]),
        "Drive gives no parents for a file in a folder the user cannot see"
    );
    assert_eq!(
        index["mine"].drive_id.as_deref(),
        Some("my-drive"),
        "My Drive has no drive id at Google: the hub's"
    );
}

#[tokio::test]
async fn a_stale_listing_token_restarts_the_enumeration_and_reconciles_what_went_meanwhile() {
    let providers = FakeProviders::start().await;
    let user = DEFAULT_GOOGLE_USER;
    for id in ["a1", "a2", "a3", "a4", "a5"] {
        providers.add_file("google", user, FileSpec::new(id, format!("{id}.txt")));
    }
    providers.set_drive_max_page_size(2);
    let (hub, _dir) = hub_for(&providers).await;
    let hub = Arc::new(hub);
    let account = connect(&hub, "google").await;

    // Every answer takes a while, so that the test can act between the worker storing page 1
    // (with its cursor) and Drive answering its request for page 2.
    providers.set_latency(Duration::from_millis(700));
    let running = {
        let (hub, account) = (hub.clone(), account.clone());
        tokio::spawn(async move { sync(&hub, &account, "google").await })
    };
    let mut waited = Duration::ZERO;
    loop {
        let stored = hub.store.get_account(&account).await.unwrap().unwrap();
        if stored.cursor.is_some() {
            assert!(
                stored.cursor.as_deref().unwrap().contains("listing"),
                "page 1 stored, the enumeration under way: {:?}",
                stored.cursor
            );
            break;
        }
        assert!(waited < Duration::from_secs(20), "page 1 never stored");
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited += Duration::from_millis(5);
    }
    // Page 2's request is in flight: its token goes stale, and a file of page 1 goes away.
    providers.expire_listing_tokens();
    providers.delete_file_for("google", user, "a1");
    providers.set_latency(Duration::ZERO);

    assert_synced(&running.await.unwrap());
    assert_eq!(
        providers.requests("/google/drive/v3/changes/startPageToken"),
        2,
        "the restart read a new start page token before listing again"
    );
    let index = index(&hub, &account).await;
    assert!(index["a1"].deleted, "not seen again: reconciled as deleted");
    for id in ["a2", "a3", "a4", "a5"] {
        assert!(!index[id].deleted, "{id} is live");
    }
    let stored = hub.store.get_account(&account).await.unwrap().unwrap();
    assert!(
        !stored.listing.reconcile,
        "the reconciliation is finished with the enumeration"
    );

    // The next sync reads changes from the token taken before the new listing.
    providers.add_file("google", user, FileSpec::new("a6", "a6.txt"));
    assert_synced(&sync(&hub, &account, "google").await);
    assert!(!index_of(&hub, &account, "a6").await.deleted);
}

async fn index_of(hub: &Hub, account_id: &str, id: &str) -> FileEntry {
    index(hub, account_id)
        .await
        .remove(id)
        .expect("in the index")
}

#[tokio::test]
async fn drive_403_rate_limits_are_waited_out_and_the_sync_succeeds() {
    let providers = FakeProviders::start().await;
    providers.add_file("google", DEFAULT_GOOGLE_USER, FileSpec::new("f1", "f1.txt"));
    let (hub, _dir) = hub_for(&providers).await;
    let account = connect(&hub, "google").await;
    providers.fail_next_drive(403, "userRateLimitExceeded", 2);

    assert_synced(&sync(&hub, &account, "google").await);

    assert!(!index_of(&hub, &account, "f1").await.deleted);
}

#[tokio::test]
async fn google_folders_parents_and_md5_checksums_are_indexed() {
    let providers = FakeProviders::start().await;
    let user = DEFAULT_GOOGLE_USER;
    providers.add_file("google", user, FileSpec::folder("dir", "Reports"));
    providers.add_file(
        "google",
        user,
        FileSpec::new("inside", "q1.pdf").in_folder("dir"),
    );
    let (hub, _dir) = hub_for(&providers).await;
    let account = connect(&hub, "google").await;

    assert_synced(&sync(&hub, &account, "google").await);

    let index = index(&hub, &account).await;
    let folder = &index["dir"];
    assert_eq!(folder.kind, Some(FileKind::Folder));
    assert_eq!(
        folder.content_hash, None,
        "Drive has no checksum for folders"
    );
    assert_eq!(
        folder.parent_ids.as_ref().map(Vec::len),
        Some(1),
        "in My Drive's root"
    );
    let file = &index["inside"];
    assert_eq!(file.kind, Some(FileKind::File));
    assert_eq!(file.parent_ids, Some(vec!["dir".to_string()]));
    assert_eq!(file.path, None);
    assert_md5(file.content_hash.as_ref());
}

fn assert_md5(hash: Option<&ContentHash>) {
    let hash = hash.expect("a content hash");
    assert_eq!(hash.algorithm, "md5");
    assert!(
        hash.value.len() == 32 && hash.value.chars().all(|c| c.is_ascii_hexdigit()),
        "md5Checksum is 32 hex digits: {}",
        hash.value
    );
}

// ---------------------------------------------------------------- Microsoft Graph

#[tokio::test]
async fn an_expired_delta_link_restarts_and_marks_what_was_deleted_meanwhile() {
    let providers = FakeProviders::start().await;
    let user = DEFAULT_MICROSOFT_USER;
    for id in ["m1", "m2", "m3"] {
        providers.add_file("onedrive", user, FileSpec::new(id, format!("{id}.txt")));
    }
    let (hub, _dir) = hub_for(&providers).await;
    let account = connect(&hub, "onedrive").await;
    assert_synced(&sync(&hub, &account, "onedrive").await);

    // While the delta link is dead, m2 goes: the fresh enumeration simply lacks it.
    providers.expire_delta_links();
    providers.delete_file_for("onedrive", user, "m2");
    assert_synced(&sync(&hub, &account, "onedrive").await);

    let index = index(&hub, &account).await;
    assert!(
        index["m2"].deleted,
        "reconciled as deleted after the restart"
    );
    assert!(!index["m1"].deleted && !index["m3"].deleted);
    assert_eq!(
        index["m2"].name, "m2.txt",
        "the tombstone keeps what was known"
    );
}

#[tokio::test]
async fn an_item_twice_in_one_delta_page_is_stored_at_its_last_state() {
    let providers = FakeProviders::start().await;
    let user = DEFAULT_MICROSOFT_USER;
    providers.add_file("onedrive", user, FileSpec::new("m1", "draft.txt"));
    let (hub, _dir) = hub_for(&providers).await;
    let account = connect(&hub, "onedrive").await;
    assert_synced(&sync(&hub, &account, "onedrive").await);

    providers.modify_file("onedrive", user, "m1", "final.txt");
    providers.repeat_in_next_delta_page(user, "m1");
    assert_synced(&sync(&hub, &account, "onedrive").await);

    assert_eq!(index_of(&hub, &account, "m1").await.name, "final.txt");
}

/// A folder with a file in it, synced once: the index.
async fn synced_graph_folder(business: bool) -> HashMap<String, FileEntry> {
    let providers = FakeProviders::start().await;
    providers.set_graph_business(business);
    let user = DEFAULT_MICROSOFT_USER;
    providers.add_file("onedrive", user, FileSpec::folder("dir", "Reports"));
    providers.add_file(
        "onedrive",
        user,
        FileSpec::new("inside", "q1.pdf").in_folder("dir"),
    );
    let (hub, _dir) = hub_for(&providers).await;
    let account = connect(&hub, "onedrive").await;
    assert_synced(&sync(&hub, &account, "onedrive").await);
    let index = index(&hub, &account).await;

    assert!(
        index.keys().all(|id| !id.starts_with("root-")),
        "the drive root stays out of the index: {:?}",
        index.keys()
    );
    let folder = &index["dir"];
    assert_eq!(folder.kind, Some(FileKind::Folder), "folders are entries");
    assert_eq!(folder.content_hash, None);
    let drive = format!("drive-{user}");
    assert_eq!(folder.drive_id.as_deref(), Some(drive.as_str()));
    assert_eq!(
        folder.parent_ids,
        Some(vec![format!("root-{user}")]),
        "parentReference.id"
    );
    let file = &index["inside"];
    assert_eq!(file.kind, Some(FileKind::File));
    assert_eq!(file.parent_ids, Some(vec!["dir".to_string()]));
    assert_eq!(file.drive_id.as_deref(), Some(drive.as_str()));
    assert_eq!(file.path, None);
    index
}

#[tokio::test]
async fn graph_business_folders_parents_and_quick_xor_hashes_are_indexed() {
    let index = synced_graph_folder(true).await;
    let hash = index["inside"].content_hash.clone().expect("a hash");
    assert_eq!(
        hash.algorithm, "quickXorHash",
        "the one hash Graph guarantees, not the unsupported sha256Hash a business drive sends"
    );
    assert_eq!(hash.value.len(), 28, "20 bytes in base64");
}

#[tokio::test]
async fn graph_personal_folders_parents_and_quick_xor_hashes_are_indexed() {
    let index = synced_graph_folder(false).await;
    let hash = index["inside"].content_hash.clone().expect("a hash");
    assert_eq!(
        hash.algorithm, "quickXorHash",
        "quickXorHash before sha1Hash"
    );
    assert!(!hash.value.is_empty());
}

/// A local hub with Dropbox configured too.
async fn dropbox_hub(providers: &FakeProviders) -> (Hub, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = providers.env_vars();
    env.extend(providers.dropbox_env_vars());
    let hub = hub::testing::local_hub(dir.path(), &env).await;
    (hub, dir)
}

#[tokio::test]
async fn a_dropbox_consent_without_files_metadata_read_stores_nothing_and_is_revoked() {
    let providers = FakeProviders::start().await;
    let (hub, _dir) = dropbox_hub(&providers).await;
    providers.grant_only_on_next_consent("dropbox", "account_info.read");
    let consent = hub::login::begin(&hub, "dropbox").await.unwrap();
    let callback = common::consent(&consent).await;
    let refused = hub::login::complete(&hub, "dropbox", callback)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "scope_not_granted", "{refused}");
    assert_eq!(providers.revocations(), 1, "the partial grant was revoked");
    assert!(hub
        .store
        .list_accounts("dropbox", None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn dropbox_409_other_than_reset_fails_the_sync_and_429_is_waited_out() {
    let providers = FakeProviders::start().await;
    let (hub, _dir) = dropbox_hub(&providers).await;
    providers.add_files("dropbox", 3);
    let id = connect(&hub, "dropbox").await;
    assert_synced(&sync(&hub, &id, "dropbox").await);

    providers.add_files("dropbox", 1);
    providers.fail_next("/dropbox/2/files/list_folder/continue", 429, Some("1"), 1);
    assert_synced(&sync(&hub, &id, "dropbox").await);
    assert_eq!(index(&hub, &id).await.len(), 4);

    providers.fail_next_dropbox(
        "/dropbox/2/files/list_folder/continue",
        "path/not_found/..",
        1,
    );
    let failed = hub::sync::run(&hub, &job(&id, "dropbox"), hub::sync::fresh_invocation())
        .await
        .unwrap_err();
    let message = failed.to_string();
    assert!(message.contains("path/not_found"), "{message}");
    let account = hub.store.get_account(&id).await.unwrap().unwrap();
    assert!(
        account.cursor.is_some(),
        "the cursor stays for the next try"
    );
    assert_synced(&sync(&hub, &id, "dropbox").await);
}

/// Dropbox reports changes by path: a file deleted and another created at its path between
/// two syncs come as the new file alone. The new entry replaces the old one (and, where a
/// file takes a folder's path, everything under the folder), as `files/list_folder` says.
#[tokio::test]
async fn a_dropbox_entry_arriving_at_a_path_held_by_another_id_replaces_it() {
    let providers = FakeProviders::start().await;
    let (hub, _dir) = dropbox_hub(&providers).await;
    let user = DEFAULT_DROPBOX_USER;
    providers.add_file("dropbox", user, FileSpec::new("id:old", "Report.txt"));
    providers.add_file("dropbox", user, FileSpec::folder("id:dir", "Plans"));
    providers.add_file(
        "dropbox",
        user,
        FileSpec::new("id:inside", "q1.txt").in_folder("id:dir"),
    );
    providers.add_file("dropbox", user, FileSpec::folder("id:kept", "Kept"));
    providers.add_file(
        "dropbox",
        user,
        FileSpec::new("id:kept-child", "a.txt").in_folder("id:kept"),
    );
    let id = connect(&hub, "dropbox").await;
    assert_synced(&sync(&hub, &id, "dropbox").await);
    assert_eq!(index(&hub, &id).await.len(), 5);

    providers.delete_file_for("dropbox", user, "id:old");
    providers.add_file("dropbox", user, FileSpec::new("id:new", "report.txt"));
    providers.delete_folder_tree("dropbox", user, "id:dir");
    providers.add_file("dropbox", user, FileSpec::new("id:file", "Plans"));
    providers.delete_folder_tree("dropbox", user, "id:kept");
    providers.add_file("dropbox", user, FileSpec::folder("id:kept2", "Kept"));
    providers.add_file(
        "dropbox",
        user,
        FileSpec::new("id:kept-child2", "b.txt").in_folder("id:kept2"),
    );
    assert_synced(&sync(&hub, &id, "dropbox").await);
    let index = index(&hub, &id).await;
    let deleted = |id: &str| index[id].deleted;
    assert!(deleted("id:old"), "a file replaced by another at its path");
    assert!(!deleted("id:new"));
    assert!(deleted("id:dir"), "a folder replaced by a file");
    assert!(deleted("id:inside"), "and everything under it");
    assert!(!deleted("id:file"));
    assert!(deleted("id:kept"), "a folder replaced by another folder");
    assert!(!deleted("id:kept2") && !deleted("id:kept-child2"));
    assert!(
        deleted("id:kept-child"),
        "what was in the replaced folder comes as its own deletion"
    );
}

/// Dropbox documents no case-folding rule for `path_lower`: the hub keeps Dropbox's value
/// and matches deletions on it, never on its own lower-casing of `path_display` (the
/// stand-in folds 'İ' to 'i', where Rust's `to_lowercase` gives "i̇").
#[tokio::test]
async fn dropbox_deletions_match_dropbox_s_own_path_lower() {
    let providers = FakeProviders::start().await;
    let (hub, _dir) = dropbox_hub(&providers).await;
    let user = DEFAULT_DROPBOX_USER;
    providers.add_file("dropbox", user, FileSpec::folder("id:dir", "İzmir"));
    providers.add_file(
        "dropbox",
        user,
        FileSpec::new("id:in", "Notes.txt").in_folder("id:dir"),
    );
    let id = connect(&hub, "dropbox").await;
    assert_synced(&sync(&hub, &id, "dropbox").await);
    providers.delete_folder_tree("dropbox", user, "id:dir");
    assert_synced(&sync(&hub, &id, "dropbox").await);
    let index = index(&hub, &id).await;
    assert!(index["id:dir"].deleted, "the folder's deletion matched");
    assert!(index["id:in"].deleted, "and so did everything under it");
    assert_eq!(
        index["id:in"].path.as_deref(),
        Some("/İzmir/Notes.txt"),
        "the display path stays as Dropbox shows it"
    );
}

// ---------------------------------------------------------------- access lost, client refused

/// The user withdraws the hub's read scope at the provider after connecting: the grant still
/// refreshes, but every call is refused as the provider refuses it. The account is marked
/// `needs_reauth` and the app told (`account.reauth_required`) instead of failing every job
/// for ever; the next job does nothing.
#[tokio::test]
async fn losing_access_after_connecting_marks_the_account_needs_reauth() {
    // What each provider keeps when the user takes the files scope away.
    let cases = [
        ("google", "openid email"),
        ("onedrive", "openid offline_access User.Read"),
        ("dropbox", "account_info.read"),
    ];
    for (provider, keep) in cases {
        let providers = FakeProviders::start().await;
        let (mut hub, _dir) = dropbox_hub(&providers).await;
        let events = Arc::new(common::EventRecorder::default());
        hub.events = Some(events.clone());
        let id = connect(&hub, provider).await;
        assert_synced(&sync(&hub, &id, provider).await);
        providers.withdraw_scopes(provider, keep);
        assert_eq!(
            sync(&hub, &id, provider).await,
            SyncResult::NeedsReauth,
            "{provider}"
        );
        let account = hub.store.get_account(&id).await.unwrap().unwrap();
        assert_eq!(account.status, AccountStatus::NeedsReauth, "{provider}");
        assert!(
            events
                .types()
                .contains(&"account.reauth_required".to_string()),
            "{provider}: {:?}",
            events.types()
        );
        assert_eq!(
            sync(&hub, &id, provider).await,
            SyncResult::Skipped(SkipReason::NeedsReauth),
            "{provider}"
        );
    }
}

/// A provider refusing the hub's own OAuth client (here: a client secret the provider no
/// longer accepts) fails the job as `client_rejected` and leaves the account as it was: the
/// app's client is at fault, not the user's grant.
#[tokio::test]
async fn a_refused_client_fails_the_job_and_leaves_the_account_active() {
    let providers = FakeProviders::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hub = hub::testing::local_hub(dir.path(), &providers.env_vars()).await;
    let id = connect(&hub, "google").await;
    assert_synced(&sync(&hub, &id, "google").await);
    drop(hub);

    // The same data, and a client secret the provider refuses (rotated at the provider).
    let mut env = providers.env_vars();
    for (name, value) in env.iter_mut() {
        if name == "GOOGLE_CLIENT_SECRET" {
            *value = "an-expired-secret".into();
        }
    }
    let hub = hub::testing::local_hub(dir.path(), &env).await;
    providers.expire_access_tokens();
    let failed = hub::sync::run(&hub, &job(&id, "google"), hub::sync::fresh_invocation())
        .await
        .unwrap_err();
    match &failed {
        hub::HubError::Provider(refusal) => assert_eq!(refusal.code(), "client_rejected"),
        other => panic!("not the provider's refusal: {other:?}"),
    }
    let account = hub.store.get_account(&id).await.unwrap().unwrap();
    assert_eq!(
        account.status,
        AccountStatus::Active,
        "no damage to the account"
    );
    assert!(account.has_refresh_token);
}

/// A work or school user whose OneDrive was never provisioned: Graph answers 404 "User's
/// mysite not found.". The job ends without a retry (every retry would get the same answer),
/// the account's last sync says `drive_not_provisioned`, and once the user has a drive the
/// next sync lists it.
#[tokio::test]
async fn an_unprovisioned_onedrive_is_recorded_not_retried() {
    let providers = FakeProviders::start().await;
    let (hub, _dir) = hub_for(&providers).await;
    providers.set_graph_business(true);
    providers.set_onedrive_provisioned(DEFAULT_MICROSOFT_USER, false);
    let id = connect(&hub, "onedrive").await;
    assert_eq!(
        sync(&hub, &id, "onedrive").await,
        SyncResult::Skipped(SkipReason::DriveNotProvisioned)
    );
    let row = hub::accounts::get(hub.store.as_ref(), &id).await.unwrap();
    let last_sync = serde_json::to_value(&row).unwrap()["last_sync"].clone();
    assert_eq!(last_sync["outcome"], "failed", "{last_sync}");
    assert_eq!(last_sync["error"], "drive_not_provisioned", "{last_sync}");
    assert_eq!(row.status, AccountStatus::Active);

    providers.set_onedrive_provisioned(DEFAULT_MICROSOFT_USER, true);
    providers.add_files("onedrive", 2);
    assert_synced(&sync(&hub, &id, "onedrive").await);
    assert_eq!(index(&hub, &id).await.len(), 2);
}
