//! A Microsoft account's drives (docs/API.md, "Drives") against the Graph stand-in, on both
//! stores (the local one in a temp dir, DynamoDB on moto): a work or school user's OneDrive
//! and the document libraries of the sites the user follows, each library's files under its
//! own `drive_id`; a site unfollowed removes its libraries and marks their entries deleted;
//! `ONEDRIVE_SITES=none` and personal accounts keep the OneDrive alone; a cursor saved before
//! drives (a bare delta link) keeps working; the periodic re-enumeration finds a deletion
//! delta left out; delta rounds leave unchanged parent folders out.

mod common;
#[path = "support/drive_sync.rs"]
mod drive_sync;

use std::collections::HashMap;

use chrono::Utc;
use hub::model::{Drive, DriveKind, DriveStatus, FileEntry, FileKind};
use hub::sync::SyncResult;
use hub::Hub;
use hub_testkit::{FakeProviders, FileSpec, DEFAULT_MICROSOFT_USER};

use drive_sync::Backend;
use serde_json::Value;

const USER: &str = DEFAULT_MICROSOFT_USER;

struct Fixture {
    hub: Hub,
    providers: FakeProviders,
    _dir: tempfile::TempDir,
}

async fn fixture(backend: Backend, extra: &[(&str, &str)]) -> Fixture {
    let providers = FakeProviders::start().await;
    let (hub, dir) = drive_sync::hub_on(&providers, backend, extra).await;
    Fixture {
        hub,
        providers,
        _dir: dir,
    }
}

impl Fixture {
    async fn connect(&self) -> String {
        drive_sync::connect(&self.hub, "onedrive").await
    }

    async fn sync(&self, account_id: &str) -> SyncResult {
        drive_sync::sync(&self.hub, "onedrive", account_id).await
    }

    async fn index(&self, account_id: &str) -> HashMap<String, FileEntry> {
        drive_sync::index(&self.hub, account_id).await
    }

    async fn drives(&self, account_id: &str) -> HashMap<String, Drive> {
        drive_sync::drives(&self.hub, account_id).await
    }

    async fn rewrite_cursor(
        &self,
        account_id: &str,
        change: impl FnOnce(Option<String>) -> String,
    ) {
        drive_sync::rewrite_cursor(&self.hub, account_id, change).await
    }

    async fn cursor(&self, account_id: &str) -> Value {
        let account = self
            .hub
            .store
            .get_account(account_id)
            .await
            .unwrap()
            .unwrap();
        serde_json::from_str(&account.cursor.expect("a cursor")).expect("a JSON cursor")
    }
}

const ONEDRIVE: &str = "drive-ms-user-1";

/// A work user following two sites: "Sales" with one library, "Team" with two.
fn work_user(providers: &FakeProviders) {
    providers.set_graph_business(true);
    providers.follow_site(
        USER,
        "contoso.sharepoint.com,s1,w1",
        "Sales",
        &[("b!sales-docs", "Documents")],
    );
    providers.follow_site(
        USER,
        "contoso.sharepoint.com,s2,w2",
        "Team",
        &[("b!team-docs", "Documents"), ("b!team-wiki", "Wiki")],
    );
    providers.add_file("onedrive", USER, FileSpec::new("MINE", "mine.txt"));
    providers.add_library_file("b!sales-docs", FileSpec::new("SALES1", "q1.xlsx"));
    providers.add_library_file("b!team-docs", FileSpec::folder("TFOLDER", "Plans"));
    providers.add_library_file(
        "b!team-docs",
        FileSpec::new("TEAM1", "plan.docx").in_folder("TFOLDER"),
    );
    providers.add_library_file("b!team-wiki", FileSpec::new("WIKI1", "home.md"));
}

async fn libraries_of_followed_sites_are_drives_of_their_own(backend: Backend) {
    let f = fixture(backend, &[]).await;
    work_user(&f.providers);
    // Two sites a page: the stand-in pages `followedSites` and `drives` with nextLinks.
    f.providers.set_graph_page_size(2);
    let account = f.connect().await;
    let scope = f.providers.last_authorize_query("onedrive").unwrap()["scope"].clone();
    assert!(scope.split(' ').any(|s| s == "Sites.Read.All"), "{scope}");

    f.sync(&account).await;

    let drives = f.drives(&account).await;
    let mut kinds: Vec<(&str, DriveKind, &str, u64)> = drives
        .values()
        .map(|d| (d.id.as_str(), d.kind, d.name.as_str(), d.file_count))
        .collect();
    kinds.sort_by_key(|k| k.0);
    assert_eq!(
        kinds,
        [
            ("b!sales-docs", DriveKind::Library, "Documents", 1),
            ("b!team-docs", DriveKind::Library, "Documents", 2),
            ("b!team-wiki", DriveKind::Library, "Wiki", 1),
            (ONEDRIVE, DriveKind::Onedrive, "OneDrive", 1),
        ]
    );
    let index = f.index(&account).await;
    for (id, drive) in [
        ("MINE", ONEDRIVE),
        ("SALES1", "b!sales-docs"),
        ("TFOLDER", "b!team-docs"),
        ("TEAM1", "b!team-docs"),
        ("WIKI1", "b!team-wiki"),
    ] {
        assert_eq!(index[id].drive_id.as_deref(), Some(drive), "{id}");
        assert!(!index[id].deleted, "{id}");
    }
    assert_eq!(index["TEAM1"].parent_ids, Some(vec!["TFOLDER".to_string()]));

    // A later change in a library comes through its own delta link.
    f.providers
        .add_library_file("b!team-wiki", FileSpec::new("WIKI2", "faq.md"));
    f.sync(&account).await;
    assert_eq!(
        f.index(&account).await["WIKI2"].drive_id.as_deref(),
        Some("b!team-wiki")
    );

    // Unfollowing a site: its libraries are removed, their entries marked deleted.
    f.providers
        .unfollow_site(USER, "contoso.sharepoint.com,s2,w2");
    f.sync(&account).await;
    let drives = f.drives(&account).await;
    for id in ["b!team-docs", "b!team-wiki"] {
        assert_eq!(
            (drives[id].status, drives[id].file_count),
            (DriveStatus::Removed, 0),
            "{id}"
        );
    }
    assert_eq!(drives["b!sales-docs"].status, DriveStatus::Active);
    assert_eq!(drives[ONEDRIVE].status, DriveStatus::Active);
    let index = f.index(&account).await;
    for id in ["TFOLDER", "TEAM1", "WIKI1", "WIKI2"] {
        assert!(index[id].deleted, "{id} is marked deleted");
    }
    for id in ["MINE", "SALES1"] {
        assert!(!index[id].deleted, "{id}");
    }

    // A round with nothing new ends with nothing changed.
    let before = f.hub.store.get_account(&account).await.unwrap().unwrap();
    assert_eq!(
        f.sync(&account).await,
        SyncResult::Synced { pages: 1, files: 0 }
    );
    let after = f.hub.store.get_account(&account).await.unwrap().unwrap();
    assert_eq!(after.version, before.version + 1, "one write: nothing new");
}

#[tokio::test]
async fn local_libraries_of_followed_sites_are_drives_of_their_own() {
    libraries_of_followed_sites_are_drives_of_their_own(Backend::Local).await
}

#[tokio::test]
async fn dynamo_libraries_of_followed_sites_are_drives_of_their_own() {
    libraries_of_followed_sites_are_drives_of_their_own(Backend::Dynamo).await
}

async fn only_the_onedrive(backend: Backend, extra: &[(&str, &str)], business: bool) {
    let f = fixture(backend, extra).await;
    work_user(&f.providers);
    f.providers.set_graph_business(business);
    let account = f.connect().await;
    f.sync(&account).await;
    let drives = f.drives(&account).await;
    assert_eq!(drives.keys().collect::<Vec<_>>(), [ONEDRIVE]);
    assert_eq!(drives[ONEDRIVE].file_count, 1);
    assert_eq!(f.providers.requests("/graph/v1.0/me/followedSites"), 0);
    f.providers
        .add_file("onedrive", USER, FileSpec::new("MINE2", "mine2.txt"));
    f.sync(&account).await;
    assert!(!f.index(&account).await["MINE2"].deleted);
    assert_eq!(f.providers.requests("/graph/v1.0/me/followedSites"), 0);
}

#[tokio::test]
async fn sites_none_syncs_only_the_onedrive_and_asks_no_site_scope() {
    for backend in [Backend::Local, Backend::Dynamo] {
        only_the_onedrive(backend, &[("ONEDRIVE_SITES", "none")], true).await;
    }
    let f = fixture(Backend::Local, &[("ONEDRIVE_SITES", "none")]).await;
    let started = hub::login::begin(&f.hub, "onedrive").await.unwrap();
    common::consent(&started).await;
    let scope = f.providers.last_authorize_query("onedrive").unwrap()["scope"].clone();
    assert!(!scope.contains("Sites."), "{scope}");
}

#[tokio::test]
async fn a_personal_account_keeps_its_onedrive_alone() {
    for backend in [Backend::Local, Backend::Dynamo] {
        only_the_onedrive(backend, &[], false).await;
    }
}

#[tokio::test]
async fn an_onedrive_sites_value_other_than_followed_or_none_is_refused_at_start() {
    let providers = FakeProviders::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut vars = providers.env_vars();
    vars.push(("HUB_BACKEND".into(), "local".into()));
    vars.push(("HUB_DATA_DIR".into(), dir.path().display().to_string()));
    vars.push(("ONEDRIVE_SITES".into(), "all".into()));
    let refused = Hub::build(
        &hub::config::Env::from_map(vars),
        hub::providers::http::RetryPolicy::default(),
    )
    .await
    .err()
    .expect("refused");
    assert!(refused.to_string().contains("ONEDRIVE_SITES"), "{refused}");
}

async fn a_bare_delta_link_saved_before_drives_keeps_working(backend: Backend) {
    let f = fixture(backend, &[]).await;
    work_user(&f.providers);
    let account = f.connect().await;
    f.sync(&account).await;
    let cursor = f.cursor(&account).await;
    let onedrive_link = cursor["drives"][0]["link"].as_str().unwrap().to_string();
    assert!(
        onedrive_link.contains("/me/drive/root/delta?token="),
        "{onedrive_link}"
    );
    // As a deployed stack holds it: the OneDrive's delta link alone.
    f.rewrite_cursor(&account, |_| onedrive_link).await;
    let listed = f
        .providers
        .requests("/graph/v1.0/me/drive/root/delta?%24select")
        + f.providers
            .requests("/graph/v1.0/me/drive/root/delta?$select");

    f.providers
        .add_file("onedrive", USER, FileSpec::new("LATER", "later.txt"));
    f.providers
        .add_library_file("b!sales-docs", FileSpec::new("SALES2", "q2.xlsx"));
    f.sync(&account).await;

    let index = f.index(&account).await;
    assert!(!index["LATER"].deleted);
    assert_eq!(index["SALES2"].drive_id.as_deref(), Some("b!sales-docs"));
    assert_eq!(
        f.providers
            .requests("/graph/v1.0/me/drive/root/delta?%24select")
            + f.providers
                .requests("/graph/v1.0/me/drive/root/delta?$select"),
        listed,
        "the OneDrive went on from its link, without a new enumeration"
    );
    let cursor = f.cursor(&account).await;
    assert_eq!(cursor["drives"].as_array().unwrap().len(), 4, "{cursor}");
}

#[tokio::test]
async fn local_a_bare_delta_link_saved_before_drives_keeps_working() {
    a_bare_delta_link_saved_before_drives_keeps_working(Backend::Local).await
}

#[tokio::test]
async fn dynamo_a_bare_delta_link_saved_before_drives_keeps_working() {
    a_bare_delta_link_saved_before_drives_keeps_working(Backend::Dynamo).await
}

async fn a_deletion_delta_left_out_is_found_by_the_periodic_enumeration(backend: Backend) {
    let f = fixture(backend, &[]).await;
    work_user(&f.providers);
    let account = f.connect().await;
    f.sync(&account).await;

    f.providers.drop_file_silently("onedrive", USER, "MINE");
    f.providers
        .drop_file_silently("onedrive", "b!sales-docs", "SALES1");
    f.sync(&account).await;
    let index = f.index(&account).await;
    assert!(
        !index["MINE"].deleted && !index["SALES1"].deleted,
        "delta said nothing"
    );

    // Past the bound, the next round enumerates every drive again and reconciles.
    let long_ago =
        Utc::now() - hub::providers::onedrive::RE_ENUMERATE_AFTER - chrono::Duration::hours(1);
    f.rewrite_cursor(&account, |cursor| {
        let mut cursor: Value = serde_json::from_str(&cursor.unwrap()).unwrap();
        cursor["drives"][1]["enumerated_at"] = Value::String(long_ago.to_rfc3339());
        cursor.to_string()
    })
    .await;
    f.sync(&account).await;

    let index = f.index(&account).await;
    assert!(
        index["MINE"].deleted,
        "the OneDrive's silent deletion is found"
    );
    assert!(index["SALES1"].deleted, "the library's too");
    for id in ["TEAM1", "WIKI1"] {
        assert!(!index[id].deleted, "{id}");
    }
    let cursor = f.cursor(&account).await;
    let enumerated: chrono::DateTime<Utc> =
        serde_json::from_value(cursor["drives"][1]["enumerated_at"].clone()).unwrap();
    assert!(
        Utc::now() - enumerated < chrono::Duration::minutes(5),
        "the clock starts again"
    );
}

#[tokio::test]
async fn local_a_deletion_delta_left_out_is_found_by_the_periodic_enumeration() {
    a_deletion_delta_left_out_is_found_by_the_periodic_enumeration(Backend::Local).await
}

#[tokio::test]
async fn dynamo_a_deletion_delta_left_out_is_found_by_the_periodic_enumeration() {
    a_deletion_delta_left_out_is_found_by_the_periodic_enumeration(Backend::Dynamo).await
}

#[tokio::test]
async fn delta_rounds_leave_unchanged_parent_folders_out() {
    let f = fixture(Backend::Local, &[("ONEDRIVE_SITES", "none")]).await;
    f.providers.set_graph_business(true);
    f.providers
        .add_file("onedrive", USER, FileSpec::folder("DIR", "Reports"));
    f.providers.add_file(
        "onedrive",
        USER,
        FileSpec::new("R1", "r1.txt").in_folder("DIR"),
    );
    let account = f.connect().await;
    f.sync(&account).await;

    f.providers
        .modify_file("onedrive", USER, "R1", "r1-final.txt");
    let result = f.sync(&account).await;
    assert_eq!(
        result,
        SyncResult::Synced { pages: 1, files: 1 },
        "the file alone, not the folder above it"
    );
}

async fn a_shared_folder_added_to_the_onedrive_is_listed_from_its_own_drive(
    backend: Backend,
    business: bool,
) {
    let f = fixture(backend, &[]).await;
    f.providers.set_graph_business(business);
    // Two items a page: the children of the shared folder come in several pages.
    f.providers.set_graph_page_size(2);
    let sharer = "ms-user-2";
    f.providers
        .add_file("onedrive", sharer, FileSpec::folder("PROJECT", "Project"));
    for (id, name) in [("S1", "a.txt"), ("S2", "b.txt"), ("S3", "c.txt")] {
        f.providers.add_file(
            "onedrive",
            sharer,
            FileSpec::new(id, name).in_folder("PROJECT"),
        );
    }
    f.providers.add_file(
        "onedrive",
        sharer,
        FileSpec::folder("SUB", "Sub").in_folder("PROJECT"),
    );
    f.providers.add_file(
        "onedrive",
        sharer,
        FileSpec::new("DEEP", "d.txt").in_folder("SUB"),
    );
    f.providers
        .add_file("onedrive", sharer, FileSpec::new("NOT-SHARED", "x.txt"));
    f.providers.add_file(
        "onedrive",
        USER,
        FileSpec::remote_folder("LOCAL-PROJECT", "Project", sharer, "PROJECT"),
    );
    f.providers.add_file(
        "onedrive",
        USER,
        FileSpec::onenote_notebook("NOTEBOOK", "Notes"),
    );
    let account = f.connect().await;

    f.sync(&account).await;

    let index = f.index(&account).await;
    assert_eq!(
        index["LOCAL-PROJECT"].kind,
        Some(FileKind::Folder),
        "a folder, not a file"
    );
    assert_eq!(
        index["NOTEBOOK"].kind,
        Some(FileKind::File),
        "a notebook is not a folder"
    );
    for (id, parent) in [
        ("S1", "LOCAL-PROJECT"),
        ("S2", "LOCAL-PROJECT"),
        ("S3", "LOCAL-PROJECT"),
        ("SUB", "LOCAL-PROJECT"),
        ("DEEP", "SUB"),
    ] {
        let entry = index.get(id).unwrap_or_else(|| panic!("{id} is indexed"));
        assert!(!entry.deleted, "{id}");
        assert_eq!(entry.parent_ids, Some(vec![parent.to_string()]), "{id}");
        assert_eq!(
            entry.drive_id.as_deref(),
            Some(ONEDRIVE),
            "{id}: under the user's own drive"
        );
    }
    assert_eq!(index["SUB"].kind, Some(FileKind::Folder));
    assert!(!index.contains_key("NOT-SHARED"));
    assert!(
        !index.contains_key("PROJECT"),
        "the folder is the user's item, once"
    );
    assert_eq!(
        f.drives(&account).await.keys().collect::<Vec<_>>(),
        [ONEDRIVE]
    );
    // A notebook is not walked: only the shared folder and its subfolder were listed.
    assert_eq!(
        f.providers
            .requests("/graph/v1.0/drives/drive-ms-user-1/items/"),
        0
    );
}

#[tokio::test]
async fn local_a_shared_folder_added_to_a_personal_onedrive_is_listed_from_its_own_drive() {
    a_shared_folder_added_to_the_onedrive_is_listed_from_its_own_drive(Backend::Local, false).await
}

#[tokio::test]
async fn dynamo_a_shared_folder_added_to_a_work_onedrive_is_listed_from_its_own_drive() {
    a_shared_folder_added_to_the_onedrive_is_listed_from_its_own_drive(Backend::Dynamo, true).await
}

#[tokio::test]
async fn libraries_synced_before_onedrive_sites_became_none_are_removed() {
    let f = fixture(Backend::Local, &[]).await;
    work_user(&f.providers);
    let account = f.connect().await;
    f.sync(&account).await;
    assert_eq!(f.drives(&account).await.len(), 4);

    // The same data, served by a hub started with ONEDRIVE_SITES=none.
    let Fixture {
        hub,
        providers,
        _dir,
    } = f;
    drop(hub);
    let mut env = providers.env_vars();
    env.push(("ONEDRIVE_SITES".into(), "none".into()));
    let none = Fixture {
        hub: hub::testing::local_hub(_dir.path(), &env).await,
        providers,
        _dir,
    };
    none.sync(&account).await;

    let drives = none.drives(&account).await;
    for id in ["b!sales-docs", "b!team-docs", "b!team-wiki"] {
        assert_eq!(drives[id].status, DriveStatus::Removed, "{id}");
    }
    assert_eq!(drives[ONEDRIVE].status, DriveStatus::Active);
    let index = none.index(&account).await;
    assert!(index["SALES1"].deleted && index["WIKI1"].deleted);
    assert!(!index["MINE"].deleted);
}
