//! Dropbox team spaces (docs/API.md, "Dropbox"), against the strict Dropbox stand-in, on both
//! stores (the local one in a temp dir, DynamoDB on moto): a team member's listing is rooted
//! at the team space, so team folders are indexed with their paths and the drive is the team
//! space; a root that changes (422 `invalid_root` on a cursor rooted at the old one, or a home
//! cursor whose user now has a team space) starts the enumeration over and reconciles; a
//! plain user is listed as before, and a cursor saved before team spaces goes on.

mod common;
#[path = "support/drive_sync.rs"]
mod drive_sync;

use hub::model::{DriveKind, DriveStatus, FileEntry};
use hub::Hub;
use hub_testkit::{FakeProviders, FileSpec, DEFAULT_DROPBOX_USER};

use drive_sync::{drives, index, Backend, BACKENDS};

const USER: &str = DEFAULT_DROPBOX_USER;
const LISTINGS: &str = "/dropbox/2/files/list_folder";
const CONTINUES: &str = "/dropbox/2/files/list_folder/continue";

async fn hub_for(providers: &FakeProviders, backend: Backend) -> (Hub, tempfile::TempDir) {
    drive_sync::hub_on(providers, backend, &[]).await
}

async fn connect(hub: &Hub) -> String {
    drive_sync::connect(hub, "dropbox").await
}

async fn sync(hub: &Hub, account_id: &str) {
    drive_sync::sync(hub, "dropbox", account_id).await;
}

/// `list_folder` calls so far (not `continue`): each one is an enumeration from the start.
fn enumerations(providers: &FakeProviders) -> usize {
    providers.requests(LISTINGS) - providers.requests(CONTINUES)
}

/// A team-space member of "Acme" with a file of their own and a team folder holding a file.
/// Returns the member folder's id.
fn team_member(providers: &FakeProviders) -> String {
    providers.add_file("dropbox", USER, FileSpec::new("id:mine", "Mine.txt"));
    let member = providers.make_dropbox_team_member(USER, "Acme");
    team_folder(providers);
    member
}

fn team_folder(providers: &FakeProviders) {
    providers.add_file(
        "dropbox",
        USER,
        FileSpec::folder("id:marketing", "Marketing"),
    );
    let mut plan = FileSpec::new("id:plan", "Plan.txt");
    plan.parent = Some("id:marketing".into());
    providers.add_file("dropbox", USER, plan);
}

/// (path, drive id, deleted) of an entry.
fn state_of(entry: &FileEntry) -> (Option<&str>, Option<&str>, bool) {
    (
        entry.path.as_deref(),
        entry.drive_id.as_deref(),
        entry.deleted,
    )
}

#[tokio::test]
async fn a_team_member_s_team_folders_are_indexed_with_their_paths() {
    for backend in BACKENDS {
        let providers = FakeProviders::start().await;
        let member = team_member(&providers);
        let root = providers.dropbox_root_namespace(USER);
        let (hub, _dir) = hub_for(&providers, backend).await;
        let account = connect(&hub).await;
        sync(&hub, &account).await;

        let index = index(&hub, &account).await;
        let team = Some(root.as_str());
        assert_eq!(
            state_of(&index["id:plan"]),
            (Some("/Marketing/Plan.txt"), team, false),
            "{backend:?}"
        );
        assert_eq!(
            state_of(&index["id:marketing"]),
            (Some("/Marketing"), team, false)
        );
        assert_eq!(
            state_of(&index["id:mine"]),
            (Some("/Carol Example/Mine.txt"), team, false),
            "the member folder is a folder at the top of the team space"
        );
        assert_eq!(
            state_of(&index[&member]),
            (Some("/Carol Example"), team, false)
        );
        let drives = drives(&hub, &account).await;
        assert_eq!(drives.len(), 1, "{drives:?}");
        let drive = &drives[&root];
        assert_eq!(
            (
                drive.kind,
                drive.name.as_str(),
                drive.status,
                drive.file_count
            ),
            (DriveKind::TeamSpace, "Acme", DriveStatus::Active, 4)
        );

        // Changes come rooted at the team space too.
        let mut brief = FileSpec::new("id:brief", "Brief.txt");
        brief.parent = Some("id:marketing".into());
        providers.add_file("dropbox", USER, brief);
        let before = enumerations(&providers);
        sync(&hub, &account).await;
        assert_eq!(
            enumerations(&providers),
            before,
            "only changes were asked for"
        );
        let brief = index_entry(&hub, &account, "id:brief").await;
        assert_eq!(
            state_of(&brief),
            (Some("/Marketing/Brief.txt"), team, false)
        );

        // Removals and replacements by path hold under the team root: a file deleted and
        // another made at its path come as the new file alone, and replace it; a deleted
        // folder takes what was under it.
        providers.delete_file_for("dropbox", USER, "id:brief");
        let mut again = FileSpec::new("id:brief2", "Brief.txt");
        again.parent = Some("id:marketing".into());
        providers.add_file("dropbox", USER, again);
        sync(&hub, &account).await;
        let index = self::index(&hub, &account).await;
        assert!(index["id:brief"].deleted, "{:?}", index["id:brief"]);
        assert_eq!(
            state_of(&index["id:brief2"]),
            (Some("/Marketing/Brief.txt"), team, false)
        );
        providers.delete_folder_tree("dropbox", USER, "id:marketing");
        sync(&hub, &account).await;
        let index = self::index(&hub, &account).await;
        for id in ["id:marketing", "id:plan", "id:brief2"] {
            assert!(index[id].deleted, "{backend:?}: {id} {:?}", index[id]);
        }
        assert!(!index["id:mine"].deleted);
    }
}

async fn index_entry(hub: &Hub, account_id: &str, id: &str) -> FileEntry {
    index(hub, account_id).await.remove(id).expect("indexed")
}

#[tokio::test]
async fn a_cursor_rooted_at_an_old_root_starts_over_and_reconciles() {
    for backend in BACKENDS {
        let providers = FakeProviders::start().await;
        team_member(&providers);
        let first_root = providers.dropbox_root_namespace(USER);
        let (hub, _dir) = hub_for(&providers, backend).await;
        let account = connect(&hub).await;
        sync(&hub, &account).await;

        // The team moves to a new root: the same files, in a drive of the new id.
        providers.move_dropbox_team_root(USER);
        let second_root = providers.dropbox_root_namespace(USER);
        let before = enumerations(&providers);
        sync(&hub, &account).await;
        assert_eq!(
            enumerations(&providers),
            before + 1,
            "{backend:?}: enumerated again"
        );
        let index = index(&hub, &account).await;
        let team = Some(second_root.as_str());
        assert_eq!(
            state_of(&index["id:plan"]),
            (Some("/Marketing/Plan.txt"), team, false)
        );
        let moved = drives(&hub, &account).await;
        assert_eq!(moved[&first_root].status, DriveStatus::Removed);
        assert_eq!(moved[&second_root].status, DriveStatus::Active);

        // The user leaves the team space: the team folders are gone, the member folder's
        // content is the whole Dropbox again, at its own paths.
        providers.leave_dropbox_team(USER);
        sync(&hub, &account).await;
        let index = self::index(&hub, &account).await;
        assert!(index["id:plan"].deleted, "{:?}", index["id:plan"]);
        assert!(index["id:marketing"].deleted);
        assert_eq!(
            state_of(&index["id:mine"]),
            (Some("/Mine.txt"), Some("dropbox"), false)
        );
        let drives = drives(&hub, &account).await;
        assert_eq!(drives[&second_root].status, DriveStatus::Removed);
        assert_eq!(
            (
                drives["dropbox"].kind,
                drives["dropbox"].status,
                drives["dropbox"].file_count
            ),
            (DriveKind::Dropbox, DriveStatus::Active, 1)
        );
    }
}

#[tokio::test]
async fn a_plain_user_whose_team_gets_a_team_space_is_listed_again_at_the_root() {
    for backend in BACKENDS {
        let providers = FakeProviders::start().await;
        providers.add_file("dropbox", USER, FileSpec::new("id:mine", "Mine.txt"));
        let (hub, _dir) = hub_for(&providers, backend).await;
        let account = connect(&hub).await;
        sync(&hub, &account).await;
        assert_eq!(
            state_of(&index_entry(&hub, &account, "id:mine").await),
            (Some("/Mine.txt"), Some("dropbox"), false)
        );

        // A listing without the header still works for the member (it sees the member
        // folder): only reading the account's root finds the team space.
        providers.make_dropbox_team_member(USER, "Acme");
        team_folder(&providers);
        let root = providers.dropbox_root_namespace(USER);
        sync(&hub, &account).await;
        let index = index(&hub, &account).await;
        let team = Some(root.as_str());
        assert_eq!(
            state_of(&index["id:mine"]),
            (Some("/Carol Example/Mine.txt"), team, false),
            "{backend:?}"
        );
        assert_eq!(
            state_of(&index["id:plan"]),
            (Some("/Marketing/Plan.txt"), team, false)
        );
        let drives = drives(&hub, &account).await;
        assert_eq!(drives["dropbox"].status, DriveStatus::Removed);
        assert_eq!(drives[&root].kind, DriveKind::TeamSpace);
    }
}

#[tokio::test]
async fn a_plain_user_is_listed_as_before_and_a_cursor_saved_before_team_spaces_goes_on() {
    for backend in BACKENDS {
        let providers = FakeProviders::start().await;
        providers.add_file("dropbox", USER, FileSpec::new("id:mine", "Mine.txt"));
        let (hub, _dir) = hub_for(&providers, backend).await;
        let account = connect(&hub).await;
        sync(&hub, &account).await;

        // A cursor as this hub saved it before team spaces: Dropbox's own cursor, bare.
        drive_sync::rewrite_cursor(&hub, &account, |cursor| {
            let cursor = cursor.unwrap();
            let bare = cursor.rsplit(';').next().unwrap().to_string();
            assert_eq!(
                cursor, bare,
                "a home listing's cursor is still Dropbox's own"
            );
            bare
        })
        .await;

        providers.add_file("dropbox", USER, FileSpec::new("id:new", "New.txt"));
        let before = enumerations(&providers);
        sync(&hub, &account).await;
        assert_eq!(
            enumerations(&providers),
            before,
            "{backend:?}: changes only"
        );
        let index = index(&hub, &account).await;
        assert_eq!(
            state_of(&index["id:new"]),
            (Some("/New.txt"), Some("dropbox"), false)
        );
        assert!(!index["id:mine"].deleted);
        let drives = drives(&hub, &account).await;
        assert_eq!(drives.len(), 1);
        assert_eq!(drives["dropbox"].kind, DriveKind::Dropbox);
    }
}
