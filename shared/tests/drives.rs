//! An account's drives (docs/API.md, "Drives") against the strict Drive stand-in: My Drive and
//! each shared drive listed on its own (the stand-in answers `corpora=allDrives` with
//! `incompleteSearch: true` and without the shared drives' files, as Drive may), every
//! entry's `drive_id` naming a drive `/users/{id}/drives` lists, a drive the user leaves
//! marked removed with its entries deleted in the feed, a drive joined later enumerated,
//! shortcuts, removals of ids the index never held, an account synced before drives existed,
//! and the account row's `last_sync`.

mod common;
#[path = "support/drive_sync.rs"]
mod drive_sync;

use hub::model::{DriveKind, DriveStatus, FileEntry, FileKind, SyncStatus};
use hub::store::Write;
use hub::Hub;
use hub_testkit::{FakeProviders, FileSpec, DEFAULT_GOOGLE_USER};

use drive_sync::{drives, index, Backend};

const USER: &str = DEFAULT_GOOGLE_USER;

async fn hub_for(providers: &FakeProviders) -> (Hub, tempfile::TempDir) {
    drive_sync::hub_on(providers, Backend::Local, &[]).await
}

async fn connect(hub: &Hub) -> String {
    drive_sync::connect(hub, "google").await
}

async fn sync(hub: &Hub, account_id: &str) {
    drive_sync::sync(hub, "google", account_id).await;
}

/// Every entry of the account's change feed, from the start.
async fn feed(hub: &Hub, account_id: &str) -> Vec<FileEntry> {
    let page = hub::changes::feed(hub.store.as_ref(), account_id, None, 1000)
        .await
        .unwrap();
    assert!(!page.has_more);
    page.changes
}

#[tokio::test]
async fn every_drive_is_listed_on_its_own_and_names_its_entries() {
    let providers = FakeProviders::start().await;
    providers.join_shared_drive(USER, "0A-team", "Team");
    providers.add_file("google", USER, FileSpec::new("mine", "mine.txt"));
    providers.add_file(
        "google",
        USER,
        FileSpec::new("team", "team.txt").in_shared_drive("0A-team"),
    );
    providers.add_file(
        "google",
        USER,
        FileSpec::new("from-bob", "from-bob.txt").shared_with_me(),
    );
    providers.add_file("google", USER, FileSpec::shortcut("link", "link", "team"));
    let (hub, _dir) = hub_for(&providers).await;
    let account = connect(&hub).await;
    assert_eq!(
        hub::accounts::get(hub.store.as_ref(), &account)
            .await
            .unwrap()
            .last_sync,
        None,
        "no sync yet"
    );

    sync(&hub, &account).await;

    let drives = drives(&hub, &account).await;
    assert_eq!(drives.len(), 2, "{drives:?}");
    let my_drive = &drives["my-drive"];
    assert_eq!(my_drive.kind, DriveKind::MyDrive);
    assert_eq!(
        my_drive.file_count, 3,
        "mine, the shortcut and what Bob shared"
    );
    assert!(my_drive.last_synced_at.is_some());
    let team = &drives["0A-team"];
    assert_eq!(
        (team.kind, team.status, team.name.as_str(), team.file_count),
        (DriveKind::SharedDrive, DriveStatus::Active, "Team", 1)
    );
    let index = index(&hub, &account).await;
    assert_eq!(index["team"].drive_id.as_deref(), Some("0A-team"));
    assert!(
        !index["team"].deleted,
        "the shared drive's files are indexed"
    );
    for id in ["mine", "from-bob", "link"] {
        assert_eq!(index[id].drive_id.as_deref(), Some("my-drive"), "{id}");
    }
    assert_eq!(index["link"].kind, Some(FileKind::Shortcut));
    assert_eq!(index["link"].target_id.as_deref(), Some("team"));
    assert_eq!(index["mine"].target_id, None);
    // Never the corpus whose answers may be incomplete.
    assert_eq!(providers.requests("/google/drive/v3/files?"), 2);
    let row = hub::accounts::get(hub.store.as_ref(), &account)
        .await
        .unwrap();
    let last_sync = row.last_sync.clone().expect("a last_sync after the sync");
    assert_eq!((last_sync.outcome, last_sync.error), (SyncStatus::Ok, None));
    let json = serde_json::to_value(&row).unwrap();
    assert_eq!(json["last_sync"]["outcome"], "ok");
    assert!(json["last_sync"]["error"].is_null());
}

#[tokio::test]
async fn a_drive_the_user_leaves_is_removed_and_its_entries_deleted_in_the_feed() {
    let providers = FakeProviders::start().await;
    providers.add_file("google", USER, FileSpec::new("mine", "mine.txt"));
    for id in ["t1", "t2"] {
        let spec = FileSpec::new(id, format!("{id}.txt")).in_shared_drive("0A-team");
        providers.add_file("google", USER, spec);
    }
    let (hub, _dir) = hub_for(&providers).await;
    let account = connect(&hub).await;
    sync(&hub, &account).await;
    assert_eq!(drives(&hub, &account).await["0A-team"].file_count, 2);

    providers.leave_shared_drive(USER, "0A-team");
    sync(&hub, &account).await;

    let team = &drives(&hub, &account).await["0A-team"];
    assert_eq!((team.status, team.file_count), (DriveStatus::Removed, 0));
    let index = index(&hub, &account).await;
    for id in ["t1", "t2"] {
        assert!(index[id].deleted, "{id} is marked deleted");
        assert_eq!(
            index[id].name,
            format!("{id}.txt"),
            "with what was known of it"
        );
    }
    assert!(!index["mine"].deleted);
    let feed = feed(&hub, &account).await;
    let tail: Vec<(&str, bool)> = feed
        .iter()
        .rev()
        .take(2)
        .map(|entry| (entry.id.as_str(), entry.deleted))
        .collect();
    assert_eq!(
        tail,
        [("t2", true), ("t1", true)],
        "each deletion is in the feed"
    );
}

#[tokio::test]
async fn a_drive_joined_later_is_enumerated() {
    let providers = FakeProviders::start().await;
    providers.add_file("google", USER, FileSpec::new("mine", "mine.txt"));
    let (hub, _dir) = hub_for(&providers).await;
    let account = connect(&hub).await;
    sync(&hub, &account).await;

    // Files the drive held before the user joined come in no change of the feed.
    providers.join_shared_drive_holding(USER, "0A-new", "New", &["old1", "old2"]);
    sync(&hub, &account).await;

    let new = &drives(&hub, &account).await["0A-new"];
    assert_eq!(
        (new.status, new.name.as_str(), new.file_count),
        (DriveStatus::Active, "New", 2)
    );
    let index = index(&hub, &account).await;
    for id in ["old1", "old2"] {
        assert_eq!(index[id].drive_id.as_deref(), Some("0A-new"), "{id}");
    }
}

#[tokio::test]
async fn a_removal_of_an_id_the_index_never_held_leaves_no_tombstone() {
    let providers = FakeProviders::start().await;
    providers.add_file("google", USER, FileSpec::new("mine", "mine.txt"));
    let (hub, _dir) = hub_for(&providers).await;
    let account = connect(&hub).await;
    sync(&hub, &account).await;

    providers.add_file("google", USER, FileSpec::new("ghost", "ghost.txt"));
    providers.delete_file("google", "ghost");
    sync(&hub, &account).await;

    let index = index(&hub, &account).await;
    assert!(!index.contains_key("ghost"), "{:?}", index.get("ghost"));
}

#[tokio::test]
async fn an_account_synced_before_drives_existed_is_enumerated_again_once() {
    let providers = FakeProviders::start().await;
    providers.add_file("google", USER, FileSpec::new("mine", "mine.txt"));
    providers.add_file(
        "google",
        USER,
        FileSpec::new("team", "team.txt").in_shared_drive("0A-team"),
    );
    let (hub, _dir) = hub_for(&providers).await;
    let account = connect(&hub).await;
    sync(&hub, &account).await;
    // As an account written before drives: a cursor, no drive, entries without drive ids.
    let mut old = hub.store.get_account(&account).await.unwrap().unwrap();
    let version = old.version;
    old.drives.clear();
    old.version += 1;
    assert_eq!(
        hub.store.update_account(&old, version).await.unwrap(),
        Write::Done
    );
    let listings = providers.requests("/google/drive/v3/files?");

    sync(&hub, &account).await;
    assert_eq!(
        providers.requests("/google/drive/v3/files?"),
        listings + 2,
        "My Drive and the shared drive listed again"
    );
    assert_eq!(drives(&hub, &account).await.len(), 2);
    sync(&hub, &account).await;
    assert_eq!(
        providers.requests("/google/drive/v3/files?"),
        listings + 2,
        "once"
    );
}

/// A shared drive the user leaves after `drives.list` named it and before its listing
/// (between two pages, or a worker stopped half-way): Drive answers its listing 404
/// `notFound`. The enumeration starts over, so the drive ends `removed` with its entries
/// deleted, instead of every retry failing on the same page.
#[tokio::test]
async fn a_drive_left_in_the_middle_of_its_enumeration_starts_it_over() {
    let providers = FakeProviders::start().await;
    providers.add_file("google", USER, FileSpec::new("mine", "mine.txt"));
    providers.add_file(
        "google",
        USER,
        FileSpec::new("team", "team.txt").in_shared_drive("0A-team"),
    );
    let (hub, _dir) = hub_for(&providers).await;
    let account = connect(&hub).await;
    sync(&hub, &account).await;
    // As a worker that stopped after My Drive's listing: the shared drive is listed next.
    drive_sync::rewrite_cursor(&hub, &account, |cursor| {
        let changes: serde_json::Value = serde_json::from_str(&cursor.unwrap()).unwrap();
        serde_json::json!({
            "phase": "listing",
            "changes_from": changes["page_token"],
            "catch_up": false,
            "drive": "0A-team",
            "page_token": null,
            "pending": [],
        })
        .to_string()
    })
    .await;
    providers.leave_shared_drive(USER, "0A-team");

    sync(&hub, &account).await;

    assert_eq!(
        drives(&hub, &account).await["0A-team"].status,
        DriveStatus::Removed
    );
    let index = index(&hub, &account).await;
    assert!(index["team"].deleted, "the drive's entry is deleted");
    assert!(!index["mine"].deleted);
}
