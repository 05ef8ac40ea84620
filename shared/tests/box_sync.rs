//! Box through the hub against the Box stand-in, on both stores (docs/API.md, "Box"): login,
//! the first sync (stream position first, then the walk from folder `0`), incremental syncs
//! from the event stream, whose repeated and out-of-order events leave the index equal to
//! Box's tree (uploads, renames, moves and copies of folders, trash, restore, purge), a
//! trashed folder taking its subtree with it, two workers refreshing the single-use refresh
//! token at once, and the revocation on delete.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hub::login;
use hub::model::{AccountStatus, FileEntry, SyncJob, SyncReason};
use hub::store::dynamo::DynamoStore;
use hub::sync::{self, SyncResult};
use hub::Hub;
use hub_testkit::{BoxChange, BoxKind, FakeProviders, BOX_ROOT_ID, DEFAULT_BOX_USER};

const USER: &str = DEFAULT_BOX_USER;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Local,
    Dynamo,
}

const BACKENDS: [Backend; 2] = [Backend::Local, Backend::Dynamo];

struct Bench {
    providers: FakeProviders,
    hub: Hub,
    account_id: String,
    _dir: tempfile::TempDir,
}

/// A hub on `backend` with Box configured against the stand-in, and the default Box user
/// connected.
async fn bench(backend: Backend, providers: FakeProviders) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let mut env = providers.env_vars();
    env.extend(providers.box_env_vars());
    let mut hub = hub::testing::local_hub(dir.path(), &env).await;
    if let Backend::Dynamo = backend {
        let (client, table) = common::dynamo_table().await;
        hub.store = Arc::new(DynamoStore::new(client, table));
    }
    let url = login::begin(&hub, "box").await.unwrap();
    let callback = common::consent(&url).await;
    let account = login::complete(&hub, "box", callback).await.unwrap();
    assert_eq!(account.email, hub_testkit::DEFAULT_BOX_EMAIL);
    Bench {
        providers,
        hub,
        account_id: account.id,
        _dir: dir,
    }
}

impl Bench {
    async fn sync(&self) -> SyncResult {
        let job = SyncJob {
            account_id: self.account_id.clone(),
            provider: "box".into(),
            reason: SyncReason::Manual,
            requested_at: Utc::now(),
            stalled_requeues: 0,
        };
        sync::run(&self.hub, &job, sync::fresh_invocation())
            .await
            .unwrap()
    }

    async fn index(&self) -> BTreeMap<String, FileEntry> {
        let (mut index, mut after) = (BTreeMap::new(), None);
        loop {
            let page = self
                .hub
                .store
                .list_files(&self.account_id, after.as_deref(), 100)
                .await
                .unwrap();
            index.extend(page.items.into_iter().map(|e| (e.id.clone(), e)));
            match page.next {
                Some(next) => after = Some(next),
                None => return index,
            }
        }
    }

    /// The live entries as (id, path), and Box's reachable items the same way: equal when
    /// the index is Box's tree.
    async fn assert_index_is_box(&self, when: &str) {
        let index = self.index().await;
        let live: Vec<(String, String)> = index
            .values()
            .filter(|e| !e.deleted)
            .map(|e| (e.id.clone(), e.path.clone().unwrap_or_default()))
            .collect();
        let mut at_box: Vec<(String, String)> = self
            .providers
            .box_items(USER)
            .into_iter()
            .map(|(kind, id, path)| (format!("{}_{id}", kind.as_str()), path))
            .collect();
        at_box.sort();
        assert_eq!(live, at_box, "{when}");
    }
}

fn synced(result: &SyncResult) -> bool {
    matches!(result, SyncResult::Synced { .. })
}

async fn keeps_the_index_equal_to_box(backend: Backend) {
    let providers = FakeProviders::start().await;
    // Small pages: the walk and the events go on across pages (and list_page calls).
    providers.set_box_page_sizes(2, 3);
    let docs = providers.box_add_folder(USER, "Docs", BOX_ROOT_ID);
    let a = providers.box_add_file(USER, "a.txt", BOX_ROOT_ID);
    let inner = providers.box_add_folder(USER, "Inner", &docs);
    let b = providers.box_add_file(USER, "b.txt", &inner);
    let c = providers.box_add_file(USER, "c.txt", &docs);
    for n in 0..25 {
        let folder = providers.box_add_folder(USER, &format!("Year {n}"), &inner);
        providers.box_add_file(USER, &format!("report {n}.pdf"), &folder);
    }
    assert_eq!(docs, a, "a file and a folder share an id at Box");
    let bench = bench(backend, providers).await;
    let p = &bench.providers;

    assert!(synced(&bench.sync().await));
    bench
        .assert_index_is_box(&format!("{backend:?}: first sync"))
        .await;
    let index = bench.index().await;
    let file_a = &index[&format!("file_{a}")];
    assert_eq!(
        file_a.parent_ids,
        Some(vec![format!("folder_{BOX_ROOT_ID}")])
    );
    assert_eq!(file_a.content_hash.as_ref().unwrap().algorithm, "sha1");
    assert_eq!(
        index[&format!("file_{b}")].path.as_deref(),
        Some("/Docs/Inner/b.txt")
    );
    assert_eq!(file_a.drive_id.as_deref(), Some("box"));
    let old_hash = file_a.content_hash.clone();

    // Repeated, out-of-order events; a new version, a rename, a folder moved (its subtree's
    // paths change without events), a folder copied (its contents come without events), a
    // file trashed then restored, another purged.
    p.box_repeat_events(USER, true);
    p.box_change(USER, BoxKind::File, &a, BoxChange::Upload);
    p.box_change(USER, BoxKind::File, &c, BoxChange::Rename("c2.txt".into()));
    let archive = p.box_add_folder(USER, "Archive", BOX_ROOT_ID);
    p.box_change(
        USER,
        BoxKind::Folder,
        &inner,
        BoxChange::Move(archive.clone()),
    );
    p.box_copy(USER, BoxKind::Folder, &archive, &docs);
    p.box_change(USER, BoxKind::File, &c, BoxChange::Trash);
    p.box_change(USER, BoxKind::File, &c, BoxChange::Restore);
    p.box_delete(USER, BoxKind::File, &a);
    let fresh = p.box_add_file(USER, "fresh.txt", BOX_ROOT_ID);
    assert!(synced(&bench.sync().await));
    bench
        .assert_index_is_box(&format!("{backend:?}: incremental sync"))
        .await;
    let index = bench.index().await;
    assert!(index[&format!("file_{a}")].deleted, "the purged file");
    assert!(!index[&format!("file_{fresh}")].deleted);
    assert_eq!(
        index[&format!("file_{b}")].path.as_deref(),
        Some("/Archive/Inner/b.txt"),
        "moved with its folder"
    );

    // More events than a page holds, none of them a folder's: one sync reads them all.
    let many: Vec<String> = (0..7)
        .map(|n| p.box_add_file(USER, &format!("many {n}.txt"), &docs))
        .collect();
    assert!(synced(&bench.sync().await));
    let index = bench.index().await;
    for id in &many {
        assert!(!index[&format!("file_{id}")].deleted, "{backend:?}: {id}");
    }

    // Nothing new: a sync that finds nothing.
    assert!(synced(&bench.sync().await));
    bench
        .assert_index_is_box(&format!("{backend:?}: nothing new"))
        .await;

    // A new version only changes the hash.
    let kept = p.box_add_file(USER, "kept.txt", &docs);
    assert!(synced(&bench.sync().await));
    let before = bench.index().await[&format!("file_{kept}")]
        .content_hash
        .clone();
    p.box_change(USER, BoxKind::File, &kept, BoxChange::Upload);
    assert!(synced(&bench.sync().await));
    let after = bench.index().await[&format!("file_{kept}")]
        .content_hash
        .clone();
    assert_ne!(before, after);
    assert_ne!(old_hash, None);

    // A trashed folder takes its subtree with it, though no event names it.
    p.box_change(USER, BoxKind::Folder, &archive, BoxChange::Trash);
    assert!(synced(&bench.sync().await));
    bench
        .assert_index_is_box(&format!("{backend:?}: folder trashed"))
        .await;
    assert!(bench.index().await[&format!("file_{b}")].deleted);

    // Restored, it comes back whole.
    p.box_change(USER, BoxKind::Folder, &archive, BoxChange::Restore);
    assert!(synced(&bench.sync().await));
    bench
        .assert_index_is_box(&format!("{backend:?}: folder restored"))
        .await;
    assert!(!bench.index().await[&format!("file_{b}")].deleted);
}

#[tokio::test]
async fn the_index_ends_equal_to_box_whatever_order_the_events_come_in() {
    for backend in BACKENDS {
        keeps_the_index_equal_to_box(backend).await;
    }
}

/// Two workers find the access token refused at once and refresh with the same single-use
/// refresh token: one gets the rotated pair, the other `invalid_grant`. The account survives:
/// the rotated pair is stored, and later syncs work with it.
async fn two_workers_refresh_at_once(backend: Backend) {
    let providers = FakeProviders::start().await;
    providers.box_add_file(USER, "a.txt", BOX_ROOT_ID);
    // Access tokens due within the worker's refresh margin: every sync refreshes first.
    providers.set_access_token_lifetime(60);
    let bench = bench(backend, providers).await;
    assert!(synced(&bench.sync().await));

    // The first refresh to arrive is held, so the other one rotates the token first and the
    // held one then presents a token already used: `invalid_grant`.
    let refreshes = bench.providers.requests("/box/oauth2/token");
    bench
        .providers
        .delay_next("POST", "/box/oauth2/token", Duration::from_millis(700), 1);
    bench.providers.box_add_file(USER, "b.txt", BOX_ROOT_ID);
    let (one, two) = tokio::join!(bench.sync(), bench.sync());
    assert_eq!(
        bench.providers.requests("/box/oauth2/token") - refreshes,
        2,
        "both workers refreshed with the same refresh token"
    );
    let account = bench
        .hub
        .store
        .get_account(&bench.account_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        account.status,
        AccountStatus::Active,
        "{backend:?}: {one:?} {two:?}"
    );
    assert!(synced(&one) || synced(&two), "{one:?} {two:?}");

    // The stored refresh token is the live one: another refresh and sync work.
    let c = bench.providers.box_add_file(USER, "c.txt", BOX_ROOT_ID);
    assert!(synced(&bench.sync().await));
    assert!(bench.index().await.contains_key(&format!("file_{c}")));
    bench
        .assert_index_is_box(&format!("{backend:?}: after rotation"))
        .await;
}

#[tokio::test]
async fn two_workers_refreshing_at_once_do_not_lose_the_account() {
    for backend in BACKENDS {
        two_workers_refresh_at_once(backend).await;
    }
}

#[tokio::test]
async fn deleting_a_box_account_revokes_its_tokens() {
    let providers = FakeProviders::start().await;
    let bench = bench(Backend::Local, providers).await;
    assert!(synced(&bench.sync().await));
    hub::accounts::delete(&bench.hub, &bench.account_id)
        .await
        .unwrap();
    assert_eq!(bench.providers.requests("/box/oauth2/revoke"), 1);
    let connector = bench.hub.providers.get("box").unwrap();
    let access_tokens: Vec<String> = bench
        .providers
        .issued_tokens()
        .into_iter()
        .filter(|token| token.starts_with("box-at-"))
        .collect();
    assert!(!access_tokens.is_empty());
    for token in access_tokens {
        let me = connector
            .identity(&secrecy::SecretString::from(token))
            .await;
        assert!(me.is_err(), "the revoked pair no longer works");
    }
}

/// The consent asks Box's read scope with PKCE; 429 with `Retry-After` and 5xx are waited out
/// by the retry engine; a refresh token Box no longer honours marks the account
/// `needs_reauth`.
#[tokio::test]
async fn box_throttling_is_waited_out_and_a_dead_refresh_token_needs_reauth() {
    let providers = FakeProviders::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = providers.env_vars();
    env.extend(providers.box_env_vars());
    let hub = hub::testing::local_hub(dir.path(), &env).await;
    let started = login::begin(&hub, "box").await.unwrap();
    let consent = reqwest::Url::parse(&started.consent_url).unwrap();
    let query: BTreeMap<String, String> = consent.query_pairs().into_owned().collect();
    assert_eq!(consent.path(), "/box/api/oauth2/authorize");
    assert_eq!(query["scope"], "root_readonly");
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["redirect_uri"].ends_with("/auth/box/callback"));
    drop(hub);

    let a = providers.box_add_file(USER, "a.txt", BOX_ROOT_ID);
    let bench = bench(Backend::Local, providers).await;
    bench
        .providers
        .fail_next("/box/2.0/folders/0/items", 429, Some("1"), 1);
    bench.providers.fail_next("/box/2.0/events", 503, None, 1);
    assert!(synced(&bench.sync().await));
    assert!(bench.index().await.contains_key(&format!("file_{a}")));

    bench.providers.revoke_refresh_tokens("box");
    bench.providers.expire_access_tokens();
    bench.sync().await;
    let account = bench
        .hub
        .store
        .get_account(&bench.account_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.status, AccountStatus::NeedsReauth);
}

/// A saved stream position older than Box keeps its events for (an account paused for weeks)
/// is not read on: the enumeration starts over and reconciles, so what changed meanwhile
/// without an event still reaches the index.
#[tokio::test]
async fn a_stream_position_saved_for_weeks_starts_the_enumeration_over() {
    for backend in BACKENDS {
        let providers = FakeProviders::start().await;
        let a = providers.box_add_file(USER, "a.txt", BOX_ROOT_ID);
        let bench = bench(backend, providers).await;
        assert!(synced(&bench.sync().await));

        let before = bench
            .hub
            .store
            .get_account(&bench.account_id)
            .await
            .unwrap()
            .unwrap();
        let mut cursor: serde_json::Value =
            serde_json::from_str(before.cursor.as_deref().unwrap()).unwrap();
        let weeks_ago = Utc::now() - chrono::Duration::days(20);
        cursor["stream"]["at"] = serde_json::json!(weeks_ago);
        let mut next = before.clone();
        next.cursor = Some(cursor.to_string());
        next.version += 1;
        assert_eq!(
            bench
                .hub
                .store
                .update_account(&next, before.version)
                .await
                .unwrap(),
            hub::store::Write::Done
        );
        // Gone from Box with no event the stale position would show.
        bench
            .providers
            .box_change(USER, BoxKind::File, &a, BoxChange::Purge);
        assert!(synced(&bench.sync().await));
        assert!(
            bench.index().await[&format!("file_{a}")].deleted,
            "{backend:?}: reconciled"
        );
        bench
            .assert_index_is_box(&format!("{backend:?}: after the restart"))
            .await;
    }
}
