//! One behavioural suite per trait (storage, token encryption, queue), run against both
//! implementations: the AWS ones on a moto server, the local ones on a temp dir.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as Age, Utc};
use hub::crypto::kms::KmsCipher;
use hub::crypto::local::LocalCipher;
use hub::crypto::{EncryptionContext, Sealed, TokenCipher};
use hub::deadline::Deadline;
use hub::model::{
    Account, AccountStatus, ChangeCount, ConnectSession, ContentHash, Drive, DriveKind,
    DriveStatus, FileEntry, FileKind, LoginState, PushChannel, QueueMessage, SyncJob, SyncOutcome,
    SyncReason, MAX_DRIVES,
};
use hub::model::{AccountView, PathRemoval};
use hub::queue::local::LocalQueue;
use hub::queue::sqs::SqsQueue;
use hub::queue::JobQueue;
use hub::store::dynamo::DynamoStore;
use hub::store::local::LocalStore;
use hub::store::{
    AccountScope, AccountStore, FeedPage, FeedPosition, FileStore, LoginStore, SpendingWrite,
    Store, Write,
};

fn sealed(tag: &str) -> Sealed {
    Sealed {
        data_key: None,
        nonce: "bm9uY2U=".into(),
        ciphertext: tag.into(),
    }
}

fn account(provider: &str, user: &str) -> Account {
    hub::testing::account(provider)
        .user(user)
        .tokens(sealed("v1"))
        .build()
}

fn file(id: &str, name: &str) -> FileEntry {
    FileEntry {
        kind: Some(FileKind::File),
        mime_type: Some("text/plain".into()),
        size: Some(42),
        modified_at: Some(Utc::now()),
        web_url: Some(format!("https://drive.example/{id}")),
        parent_ids: Some(vec!["root".into()]),
        content_hash: Some(ContentHash::new("md5", "0cc175b9c0f1b6a831c399e269772661")),
        ..FileEntry::new(id, name)
    }
}

/// Every entry of an account's index, page by page.
async fn whole_index(store: &dyn Store, account_id: &str) -> Vec<FileEntry> {
    let (mut listed, mut after) = (Vec::new(), None);
    loop {
        let page = store
            .list_files(account_id, after.as_deref(), 25)
            .await
            .unwrap();
        listed.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return listed,
        }
    }
}

/// The entries without the time the store stamped on them.
fn unstamped(entries: &[FileEntry]) -> Vec<FileEntry> {
    entries
        .iter()
        .map(|entry| FileEntry {
            changed_at: None,
            ..entry.clone()
        })
        .collect()
}

// ---------------------------------------------------------------- storage

async fn accounts_and_identities(store: &dyn Store) {
    let alice = account("google", &uuid::Uuid::new_v4().to_string());
    assert_eq!(store.create_account(&alice).await.unwrap(), Write::Done);
    assert_eq!(
        store.get_account(&alice.id).await.unwrap().as_ref(),
        Some(&alice)
    );
    let found = store
        .find_account(None, "google", &alice.provider_user_id)
        .await
        .unwrap();
    assert_eq!(found.map(|a| a.id), Some(alice.id.clone()));
    assert!(store
        .find_account(None, "onedrive", &alice.provider_user_id)
        .await
        .unwrap()
        .is_none());

    // A second account for the same identity loses: re-login must update the first one.
    let twin = Account {
        id: uuid::Uuid::new_v4().to_string(),
        ..alice.clone()
    };
    assert_eq!(store.create_account(&twin).await.unwrap(), Write::Conflict);
    assert!(store.get_account(&twin.id).await.unwrap().is_none());
    assert!(store.get_account("no-such-id").await.unwrap().is_none());
    assert!(store
        .get_account("../../etc/passwd")
        .await
        .unwrap()
        .is_none());
}

async fn conditional_updates(store: &dyn Store) {
    let original = account("onedrive", &uuid::Uuid::new_v4().to_string());
    assert_eq!(store.create_account(&original).await.unwrap(), Write::Done);

    let mut next = original.clone();
    next.cursor = Some("cursor-2".into());
    next.unreported = ChangeCount {
        stored: 40,
        deleted: 3,
    };
    next.version = 2;
    assert_eq!(store.update_account(&next, 1).await.unwrap(), Write::Done);
    assert_eq!(
        store.get_account(&original.id).await.unwrap().as_ref(),
        Some(&next),
        "the whole account, a sync's unreported changes included"
    );

    // A writer that read version 1 cannot move the cursor back.
    let mut stale = original.clone();
    stale.cursor = Some("cursor-1".into());
    stale.version = 2;
    assert_eq!(
        store.update_account(&stale, 1).await.unwrap(),
        Write::Conflict
    );
    assert_eq!(
        store
            .get_account(&original.id)
            .await
            .unwrap()
            .unwrap()
            .cursor
            .as_deref(),
        Some("cursor-2")
    );

    // Two writers racing from the same version: exactly one wins.
    let writers = (0..2).map(|i| {
        let mut candidate = next.clone();
        candidate.tokens = sealed(&format!("rotated-{i}"));
        candidate.version = 3;
        candidate
    });
    let results = futures::future::join_all(
        writers.map(|c| async move { (store.update_account(&c, 2).await.unwrap(), c) }),
    )
    .await;
    let winners: Vec<_> = results.iter().filter(|(w, _)| *w == Write::Done).collect();
    assert_eq!(winners.len(), 1, "one writer wins, the other loses cleanly");
    let stored = store.get_account(&original.id).await.unwrap().unwrap();
    assert_eq!(stored.tokens, winners[0].1.tokens);
    assert_eq!(stored.version, 3);
}

async fn provider_paging(store: &dyn Store) {
    let provider = format!("p{}", uuid::Uuid::new_v4().simple());
    let mut ids = HashSet::new();
    for i in 0..7 {
        let a = account(&provider, &format!("user-{i}"));
        ids.insert(a.id.clone());
        assert_eq!(store.create_account(&a).await.unwrap(), Write::Done);
    }
    assert_eq!(
        store
            .create_account(&account("other", "user-x"))
            .await
            .unwrap(),
        Write::Done
    );
    let (mut seen, mut after, mut pages) = (Vec::new(), None, 0);
    loop {
        let page = store
            .list_accounts(&provider, after.as_deref(), 3)
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|a| a.id));
        pages += 1;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert!(pages >= 3);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages come in id order");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), ids);
    let first = store.get_account(&seen[0]).await.unwrap().unwrap();
    let listed = store.list_accounts(&provider, None, 1).await.unwrap();
    assert_eq!(listed.items, vec![first], "whole accounts, as stored");

    // Fan-out's view: the ids of the active accounts only, paged the same way.
    for id in [&seen[1], &seen[4]] {
        let mut reauth = store.get_account(id).await.unwrap().unwrap();
        reauth.status = AccountStatus::NeedsReauth;
        reauth.version += 1;
        assert_eq!(
            store
                .update_account(&reauth, reauth.version - 1)
                .await
                .unwrap(),
            Write::Done
        );
    }
    let (mut active, mut after) = (Vec::new(), None);
    loop {
        let page = store
            .list_active_account_ids(&provider, after.as_deref(), 3)
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        active.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(i, _)| ![1, 4].contains(i))
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(
        active, expected,
        "active accounts in id order, none skipped"
    );
}

/// `/users` rows, paged per provider in id order, each equal to the view of the stored
/// account (so DynamoDB's projection reads every field a row shows).
async fn account_views(store: &dyn Store) {
    let provider = format!("p{}", uuid::Uuid::new_v4().simple());
    let mut expected = Vec::new();
    for i in 0..5 {
        let mut a = account(&provider, &format!("user-{i}"));
        if i == 2 {
            a.status = AccountStatus::NeedsReauth;
            a.has_refresh_token = false;
            a.last_synced_at = Some(Utc::now());
        }
        assert_eq!(store.create_account(&a).await.unwrap(), Write::Done);
        expected.push(AccountView::from(&a));
    }
    let other = account(&format!("{provider}x"), "user-x");
    assert_eq!(store.create_account(&other).await.unwrap(), Write::Done);
    expected.sort_by(|a, b| a.id.cmp(&b.id));

    let scope = AccountScope::provider(&provider);
    let (mut seen, mut after) = (Vec::new(), None);
    loop {
        let page = store
            .list_account_views(&scope, after.as_deref(), 2)
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    // Timestamps go through the store's encoding: compare with what it gives back.
    let mut stored = Vec::new();
    for view in &expected {
        let account = store.get_account(&view.id).await.unwrap().unwrap();
        stored.push(AccountView::from(&account));
    }
    assert_eq!(seen, stored, "every row once, in id order, as stored");
    assert_eq!(
        seen.iter().map(|v| &v.id).collect::<Vec<_>>(),
        expected.iter().map(|v| &v.id).collect::<Vec<_>>()
    );
    assert_eq!(
        seen.iter()
            .filter(|v| v.status == AccountStatus::NeedsReauth && v.last_synced_at.is_some())
            .count(),
        1
    );
    let rest = store
        .list_account_views(&scope, Some(&seen[3].id), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.items,
        stored[4..].to_vec(),
        "resumes right after the id"
    );
    let none = store
        .list_account_views(&AccountScope::provider("nobody"), None, 10)
        .await
        .unwrap();
    assert_eq!((none.items.len(), none.next), (0, None));
}

/// An account's drives (as many as the record keeps, with long names: they fit DynamoDB's
/// item) and its `last_sync` come back as written, the row shows `last_sync`, and a removal
/// of an id the index never held leaves nothing while one of a held entry completes it.
async fn drives_and_last_sync(store: &dyn Store) {
    let mut owner = account("google", &uuid::Uuid::new_v4().to_string());
    assert_eq!(store.create_account(&owner).await.unwrap(), Write::Done);
    let version = owner.version;
    owner.drives = (0..MAX_DRIVES)
        .map(|n| Drive {
            id: format!("0A{n:038}"),
            name: format!("{n:0100}"),
            kind: if n == 0 {
                DriveKind::MyDrive
            } else {
                DriveKind::SharedDrive
            },
            status: if n % 7 == 3 {
                DriveStatus::Removed
            } else {
                DriveStatus::Active
            },
            file_count: n as u64 * 1000,
            last_synced_at: Some(Utc::now()),
        })
        .collect();
    owner.last_sync = Some(SyncOutcome {
        error: Some("provider_error".into()),
        detail: Some("HTTP 502".into()),
        ..SyncOutcome::ok(Utc::now(), 3)
    });
    owner.version += 1;
    assert_eq!(
        store.update_account(&owner, version).await.unwrap(),
        Write::Done
    );
    let stored = store.get_account(&owner.id).await.unwrap().unwrap();
    assert_eq!(stored.drives.len(), MAX_DRIVES);
    assert_eq!(stored.drives[3].status, DriveStatus::Removed);
    assert_eq!(stored.drives[5].file_count, 5000);
    assert_eq!(
        stored.last_sync.as_ref().unwrap().error.as_deref(),
        Some("provider_error")
    );
    let scope = AccountScope::provider("google");
    let mut row = None;
    let mut after: Option<String> = None;
    while row.is_none() {
        let page = store
            .list_account_views(&scope, after.as_deref(), 100)
            .await
            .unwrap();
        row = page.items.iter().find(|view| view.id == owner.id).cloned();
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let row = row.expect("the account is listed");
    assert_eq!(row, AccountView::from(&stored));
    let last_sync = row.last_sync.unwrap();
    assert_eq!(last_sync.error.as_deref(), Some("provider_error"));
    assert_eq!(last_sync.at, stored.last_sync.unwrap().finished_at);

    store
        .put_files(&owner.id, &[file("held", "held.txt")], 0, 1)
        .await
        .unwrap();
    let removals = [
        FileEntry::tombstone("held"),
        FileEntry::tombstone("never-held"),
    ];
    store.put_files(&owner.id, &removals, 0, 2).await.unwrap();
    let index = whole_index(store, &owner.id).await;
    assert_eq!(index.len(), 1, "{index:?}");
    assert!(index[0].deleted && index[0].name == "held.txt");
}

async fn login_states(store: &dyn Store) {
    let now = Utc::now();
    let state = |name: &str, expires_at| LoginState {
        state: name.into(),
        provider: "google".into(),
        pkce_verifier: sealed("verifier"),
        expires_at,
        session: None,
        browser_key_hash: Some("hex-sha256-of-the-browser-key".into()),
    };
    let fresh = format!("fresh-{}", uuid::Uuid::new_v4());
    store
        .put_login_state(&state(&fresh, now + Age::minutes(10)))
        .await
        .unwrap();
    assert_eq!(
        store
            .take_login_state(&fresh, now)
            .await
            .unwrap()
            .map(|s| s.state),
        Some(fresh.clone())
    );
    assert!(
        store.take_login_state(&fresh, now).await.unwrap().is_none(),
        "single use"
    );

    // Expired but not yet removed (DynamoDB's TTL deletes late): absent all the same.
    let old = format!("old-{}", uuid::Uuid::new_v4());
    store
        .put_login_state(&state(&old, now - Age::seconds(1)))
        .await
        .unwrap();
    assert!(store.take_login_state(&old, now).await.unwrap().is_none());
    assert!(store
        .take_login_state("never-issued", now)
        .await
        .unwrap()
        .is_none());

    // Two callbacks racing with one state: exactly one gets it.
    let raced = format!("raced-{}", uuid::Uuid::new_v4());
    store
        .put_login_state(&state(&raced, now + Age::minutes(10)))
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        store.take_login_state(&raced, now),
        store.take_login_state(&raced, now)
    );
    assert_eq!(a.unwrap().is_some() as u8 + b.unwrap().is_some() as u8, 1);
}

async fn file_index(store: &dyn Store) {
    let owner = account("google", &uuid::Uuid::new_v4().to_string());
    assert_eq!(store.create_account(&owner).await.unwrap(), Write::Done);
    // More than one BatchWriteItem (25) and more than one page.
    let files: Vec<FileEntry> = (0..60)
        .map(|i| file(&format!("f{i:03}!x"), &format!("name {i}")))
        .collect();
    let before = Utc::now();
    store.put_files(&owner.id, &files, 0, 1).await.unwrap();
    store
        .put_files(&owner.id, &files[..10], 0, 61)
        .await
        .unwrap();

    let listed = whole_index(store, &owner.id).await;
    assert_eq!(unstamped(&listed), files, "every file once, in id order");
    assert!(
        listed
            .iter()
            .all(|f| f.changed_at.is_some_and(|at| at >= before)),
        "each entry says when the hub stored it"
    );

    // A removal reported with only the id keeps what the index knew.
    let tombstone = FileEntry::tombstone("f001!x");
    store
        .put_files(&owner.id, &[tombstone], 0, 71)
        .await
        .unwrap();
    let page = store
        .list_files(&owner.id, Some("f000!x"), 1)
        .await
        .unwrap();
    assert_eq!(page.items[0].name, "name 1");
    assert!(page.items[0].deleted);
    assert_eq!(page.items[0].size, Some(42));

    // Deleting the account takes its index and identity with it.
    assert!(hub::purge::delete_at_once(store, &owner.id).await.unwrap());
    assert!(store.get_account(&owner.id).await.unwrap().is_none());
    assert!(store
        .find_account(None, "google", &owner.provider_user_id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .list_files(&owner.id, None, 100)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(!hub::purge::delete_at_once(store, &owner.id).await.unwrap());
    // The identity is free again.
    let again = Account {
        id: uuid::Uuid::new_v4().to_string(),
        ..owner
    };
    assert_eq!(store.create_account(&again).await.unwrap(), Write::Done);
}

/// After a restarted enumeration (generation 1) saw only some entries again, the others are
/// marked deleted, page by page, keeping what the index knew of them; running it again
/// changes nothing.
async fn reconciliation(store: &dyn Store) {
    let owner = account("onedrive", &uuid::Uuid::new_v4().to_string());
    assert_eq!(store.create_account(&owner).await.unwrap(), Write::Done);
    let files: Vec<FileEntry> = (0..30).map(|i| file(&format!("r{i:02}"), "x")).collect();
    store.put_files(&owner.id, &files, 0, 1).await.unwrap();
    let mut gone_before = FileEntry::tombstone("r29");
    gone_before.name = "already gone".into();
    store
        .put_files(&owner.id, &[gone_before], 0, 31)
        .await
        .unwrap();
    // The new enumeration sees the even ones again.
    let seen: Vec<FileEntry> = files.iter().step_by(2).cloned().collect();
    store.put_files(&owner.id, &seen, 1, 32).await.unwrap();

    let (mut marked, mut after) = (0, None);
    loop {
        let (count, next) = store
            .mark_unseen_deleted(&owner.id, 1, after.as_deref(), 7, 47 + marked)
            .await
            .unwrap();
        marked += count;
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(marked, 14, "the odd ones but the one already deleted");
    let index = whole_index(store, &owner.id).await;
    assert_eq!(index.len(), 30);
    for (i, entry) in index.iter().enumerate() {
        assert_eq!(entry.deleted, i % 2 == 1, "{entry:?}");
        assert_eq!(
            entry.size,
            Some(42),
            "a reconciled entry keeps its metadata"
        );
    }
    let (again, _) = store
        .mark_unseen_deleted(&owner.id, 1, None, 100, 61)
        .await
        .unwrap();
    assert_eq!(again, 0, "idempotent");
    assert!(hub::purge::delete_at_once(store, &owner.id).await.unwrap());
}

/// A removal by path (Dropbox's deleted folder): the entry at the path and everything under
/// it, found whatever the case of their display paths, page by page; a sibling whose name
/// merely starts with the folder's stays, and so do entries without a path.
async fn removals_by_path(store: &dyn Store) {
    let owner = account("dropbox", &uuid::Uuid::new_v4().to_string());
    assert_eq!(store.create_account(&owner).await.unwrap(), Write::Done);
    let at = |id: &str, path: &str| FileEntry {
        path: Some(path.into()),
        parent_ids: Some(vec![]),
        ..file(id, path.rsplit('/').next().unwrap())
    };
    let mut entries = vec![
        at("id:docs", "/Docs"),
        at("id:docsx", "/Docsx"),
        at("id:other", "/Other/a.txt"),
        file("no-path", "no path"),
    ];
    for i in 0..9 {
        entries.push(at(
            &format!("id:n{i}"),
            &format!("/docs/Sub{}/f{i}.txt", i % 3),
        ));
    }
    store.put_files(&owner.id, &entries, 0, 1).await.unwrap();

    let (mut marked, mut after, mut pages) = (0, None, 0);
    loop {
        let (count, next) = store
            .mark_path_deleted(
                &owner.id,
                &PathRemoval::subtree("/docs"),
                after.as_deref(),
                4,
                100 + marked,
            )
            .await
            .unwrap();
        marked += count;
        pages += 1;
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(marked, 10, "the folder and its nine descendants");
    assert!(pages > 1, "in pages");
    let index = whole_index(store, &owner.id).await;
    for entry in &index {
        let gone = entry.id == "id:docs" || entry.id.starts_with("id:n");
        assert_eq!(entry.deleted, gone, "{entry:?}");
        if gone {
            assert_eq!(entry.size, Some(42), "a removed entry keeps its metadata");
        }
    }
    let feed = store.changes(&owner.id, None, 1000, 1000).await.unwrap();
    let mut removed_seqs: Vec<u64> = feed
        .entries
        .iter()
        .filter(|e| e.entry.deleted)
        .map(|e| e.seq)
        .collect();
    removed_seqs.sort();
    assert_eq!(
        removed_seqs,
        (100..110).collect::<Vec<_>>(),
        "each tombstone its own seq"
    );

    let (again, _) = store
        .mark_path_deleted(&owner.id, &PathRemoval::subtree("/docs"), None, 100, 200)
        .await
        .unwrap();
    assert_eq!(again, 0, "idempotent");
    let (one, _) = store
        .mark_path_deleted(
            &owner.id,
            &PathRemoval::subtree("/other/a.txt"),
            None,
            100,
            200,
        )
        .await
        .unwrap();
    assert_eq!(one, 1, "a file by its own path");
    assert!(hub::purge::delete_at_once(store, &owner.id).await.unwrap());
}

/// Replacements by path (Dropbox's `files/list_folder` rule): the entry that arrives keeps
/// its place, another id at its path goes; a folder's replacement leaves what is under the
/// path, a file's takes it too. Entries keep the provider's own lower-case path as their key.
async fn replacements_by_path(store: &dyn Store) {
    let owner = account("dropbox", &uuid::Uuid::new_v4().to_string());
    assert_eq!(store.create_account(&owner).await.unwrap(), Write::Done);
    let at = |id: &str, path: &str, lower: &str| FileEntry {
        path: Some(path.into()),
        path_lower: Some(lower.into()),
        parent_ids: Some(vec![]),
        ..file(id, path.rsplit('/').next().unwrap())
    };
    let entries = vec![
        at("id:old-dir", "/Plans", "/plans"),
        at("id:child", "/Plans/a.txt", "/plans/a.txt"),
        at("id:new-dir", "/plans", "/plans"),
        // The provider's key, not a lower-casing of the display path.
        at("id:dotted", "/İzmir", "/izmir"),
    ];
    store.put_files(&owner.id, &entries, 0, 1).await.unwrap();
    let replaced_by = |id: &str, path: &str, entry_only: bool| PathRemoval {
        path_lower: path.into(),
        entry_only,
        keep: Some(id.into()),
    };
    let (marked, _) = store
        .mark_path_deleted(
            &owner.id,
            &replaced_by("id:new-dir", "/plans", true),
            None,
            100,
            10,
        )
        .await
        .unwrap();
    assert_eq!(marked, 1, "the other folder at the path, not its children");
    let (marked, _) = store
        .mark_path_deleted(&owner.id, &PathRemoval::subtree("/izmir"), None, 100, 11)
        .await
        .unwrap();
    assert_eq!(marked, 1, "matched on the provider's path_lower");
    let (marked, _) = store
        .mark_path_deleted(
            &owner.id,
            &replaced_by("id:file", "/plans", false),
            None,
            100,
            12,
        )
        .await
        .unwrap();
    assert_eq!(
        marked, 2,
        "a file takes the folder's path and everything under it"
    );
    let index = whole_index(store, &owner.id).await;
    let deleted: Vec<&str> = index
        .iter()
        .filter(|e| e.deleted)
        .map(|e| e.id.as_str())
        .collect();
    let mut deleted = deleted;
    deleted.sort();
    assert_eq!(
        deleted,
        ["id:child", "id:dotted", "id:new-dir", "id:old-dir"]
    );
    assert!(hub::purge::delete_at_once(store, &owner.id).await.unwrap());
}

/// A sync that stores a page after its account was deleted leaves entries under a deleted
/// account: its own purge, or a retried delete, removes them.
async fn index_left_after_a_delete(store: &dyn Store) {
    let owner = account("google", &uuid::Uuid::new_v4().to_string());
    assert_eq!(store.create_account(&owner).await.unwrap(), Write::Done);
    store
        .put_files(&owner.id, &[file("a", "a")], 0, 1)
        .await
        .unwrap();
    assert!(hub::purge::delete_at_once(store, &owner.id).await.unwrap());
    // The late page of a sync that was running.
    store
        .put_files(&owner.id, &[file("b", "b")], 0, 1)
        .await
        .unwrap();
    assert_eq!(whole_index(store, &owner.id).await.len(), 1);
    store.purge_files(&owner.id).await.unwrap();
    assert!(whole_index(store, &owner.id).await.is_empty());

    // A delete retried after such a page: 404, and nothing left either.
    store
        .put_files(&owner.id, &[file("c", "c")], 0, 1)
        .await
        .unwrap();
    assert!(!hub::purge::delete_at_once(store, &owner.id).await.unwrap());
    assert!(whole_index(store, &owner.id).await.is_empty());

    // Ids too long to be keys are simply unknown, not a failure.
    let long = "x".repeat(300);
    assert!(store.get_account(&long).await.unwrap().is_none());
    assert!(!hub::purge::delete_at_once(store, &long).await.unwrap());
    assert!(store
        .list_files(&long, None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .take_login_state(&long, Utc::now())
        .await
        .unwrap()
        .is_none());
}

/// A connect session's account and its spend are one write: both or neither (item 10).
async fn writes_that_spend_a_session(store: &dyn Store) {
    let session = |id: &str| ConnectSession {
        id: id.into(),
        owner: "app-user".into(),
        providers: vec!["google".into()],
        return_to: None,
        expires_at: Utc::now() + Age::minutes(30),
        spent: false,
    };
    let id = hub::connect::session_id(&uuid::Uuid::new_v4().to_string());
    store.put_connect_session(&session(&id)).await.unwrap();
    let mut first = account("google", &uuid::Uuid::new_v4().to_string());
    first.owner = Some("app-user".into());
    let now = Utc::now();

    // The account's condition fails (its identity is taken): nothing is written, and the
    // session stays usable.
    assert_eq!(store.create_account(&first).await.unwrap(), Write::Done);
    let twin = Account {
        id: uuid::Uuid::new_v4().to_string(),
        ..first.clone()
    };
    assert_eq!(
        store
            .create_account_spending(&twin, &id, now)
            .await
            .unwrap(),
        SpendingWrite::Conflict
    );
    assert!(store.get_account(&twin.id).await.unwrap().is_none());
    let kept = store.get_connect_session(&id).await.unwrap().unwrap();
    assert!(kept.usable(now), "a failed write leaves the session usable");

    // Both writes happen together.
    let mut updated = first.clone();
    updated.version = 2;
    assert_eq!(
        store
            .update_account_spending(&updated, 1, &id, now)
            .await
            .unwrap(),
        SpendingWrite::Done
    );
    assert_eq!(
        store.get_account(&first.id).await.unwrap().unwrap().version,
        2
    );
    assert!(store.get_connect_session(&id).await.unwrap().unwrap().spent);

    // A spent session writes nothing, whatever the account's condition.
    let other = account("google", &uuid::Uuid::new_v4().to_string());
    assert_eq!(
        store
            .create_account_spending(&other, &id, now)
            .await
            .unwrap(),
        SpendingWrite::SessionUnusable
    );
    assert!(store.get_account(&other.id).await.unwrap().is_none());
    let mut stale = updated.clone();
    stale.version = 3;
    assert_eq!(
        store
            .update_account_spending(&stale, 2, &id, now)
            .await
            .unwrap(),
        SpendingWrite::SessionUnusable
    );
    assert_eq!(
        store.get_account(&first.id).await.unwrap().unwrap().version,
        2
    );

    // Given back (the login's event could not be queued), it can be spent once more.
    assert!(store.restore_connect_session(&id).await.unwrap());
    assert!(
        !store.restore_connect_session(&id).await.unwrap(),
        "only a spent one"
    );
    assert_eq!(
        store
            .create_account_spending(&other, &id, now)
            .await
            .unwrap(),
        SpendingWrite::Done
    );
    assert!(store.get_account(&other.id).await.unwrap().is_some());

    // An expired or unknown session spends nothing.
    let expired = hub::connect::session_id(&uuid::Uuid::new_v4().to_string());
    store
        .put_connect_session(&ConnectSession {
            expires_at: Utc::now() - Age::seconds(1),
            ..session(&expired)
        })
        .await
        .unwrap();
    for id in [expired.as_str(), "no-such-session"] {
        let late = account("google", &uuid::Uuid::new_v4().to_string());
        assert_eq!(
            store.create_account_spending(&late, id, now).await.unwrap(),
            SpendingWrite::SessionUnusable
        );
        assert!(store.get_account(&late.id).await.unwrap().is_none());
    }

    // Two callbacks of one session racing with different identities: exactly one lands.
    let raced = hub::connect::session_id(&uuid::Uuid::new_v4().to_string());
    store.put_connect_session(&session(&raced)).await.unwrap();
    let candidates: Vec<Account> = (0..4)
        .map(|_| account("google", &uuid::Uuid::new_v4().to_string()))
        .collect();
    let results = futures::future::join_all(
        candidates
            .iter()
            .map(|c| store.create_account_spending(c, &raced, now)),
    )
    .await;
    let mut landed = 0;
    for (result, candidate) in results.into_iter().zip(&candidates) {
        let stored = store.get_account(&candidate.id).await.unwrap().is_some();
        match result.unwrap() {
            SpendingWrite::Done => {
                landed += 1;
                assert!(stored);
            }
            // A store may also answer a collision as a conflict to retry; the retry then
            // finds the session spent.
            _ => assert!(!stored),
        }
    }
    assert_eq!(landed, 1);
}

fn channel(provider: &str, account_id: &str) -> PushChannel {
    let now = Utc::now();
    PushChannel {
        provider: provider.into(),
        id: uuid::Uuid::new_v4().to_string(),
        account_id: account_id.into(),
        secret_hash: "0".repeat(64),
        resource_id: Some(format!("sub-{}", uuid::Uuid::new_v4())),
        expires_at: now + Age::days(2),
        created_at: now,
        renew: false,
    }
}

/// A notification's channels in one batched read, each once; a channel written on the
/// condition that its account is live lands while it is and never after its delete.
async fn push_channels(store: &dyn Store) {
    let owner = account("onedrive", &uuid::Uuid::new_v4().to_string());
    assert_eq!(store.create_account(&owner).await.unwrap(), Write::Done);
    // More than one BatchGetItem (100 keys) holds, written both ways.
    let mut stored = Vec::new();
    for i in 0..130 {
        let channel = channel("onedrive", &owner.id);
        if i % 2 == 0 {
            store.put_channel(&channel).await.unwrap();
        } else {
            assert_eq!(
                store.put_channel_if_account_live(&channel).await.unwrap(),
                Write::Done
            );
        }
        stored.push(channel);
    }
    let deadline = Deadline::after(Duration::from_secs(20));
    let mut asked: Vec<String> = stored.iter().map(|c| c.id.clone()).collect();
    // Named twice, unknown, of another provider, too long or empty: each once or not at all.
    asked.extend(stored.iter().take(10).map(|c| c.id.clone()));
    asked.extend(["no-such".to_string(), "x".repeat(300), String::new()]);
    let mut found = store
        .get_channels("onedrive", &asked, deadline)
        .await
        .unwrap();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    let mut expected = stored.clone();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(found, expected);
    assert!(store
        .get_channels("google", &asked, deadline)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .get_channels("onedrive", &[], deadline)
        .await
        .unwrap()
        .is_empty());

    // A conditional write replaces the channel while the account lives...
    let renewed = PushChannel {
        renew: true,
        ..stored[0].clone()
    };
    assert_eq!(
        store.put_channel_if_account_live(&renewed).await.unwrap(),
        Write::Done
    );
    assert_eq!(
        store.get_channel("onedrive", &renewed.id).await.unwrap(),
        Some(renewed.clone())
    );
    // ...and writes nothing once it is deleted (with its channels).
    assert!(hub::purge::delete_at_once(store, &owner.id).await.unwrap());
    assert!(store.account_channels(&owner.id).await.unwrap().is_empty());
    let late = channel("onedrive", &owner.id);
    for write in [&renewed, &late] {
        assert_eq!(
            store.put_channel_if_account_live(write).await.unwrap(),
            Write::Conflict
        );
        assert!(store
            .get_channel("onedrive", &write.id)
            .await
            .unwrap()
            .is_none());
    }
    assert!(store.account_channels(&owner.id).await.unwrap().is_empty());
    let never = channel("onedrive", "no-such-account");
    assert_eq!(
        store.put_channel_if_account_live(&never).await.unwrap(),
        Write::Conflict
    );
    assert!(store
        .get_channels("onedrive", std::slice::from_ref(&never.id), deadline)
        .await
        .unwrap()
        .is_empty());
}

/// A delete's tombstone: written only over the live account at the version read; from then
/// on no read of accounts returns it (lookups, listings, fan-out, the identity, an owner's
/// listing), no write of the account succeeds, and the identity is free for a new login. It
/// is changed and removed only at its own version, after the index is purged page by page.
async fn deletions(store: &dyn Store) {
    let owner = Account {
        owner: Some("app-user".into()),
        ..account("google", &uuid::Uuid::new_v4().to_string())
    };
    assert_eq!(store.create_account(&owner).await.unwrap(), Write::Done);
    let files: Vec<FileEntry> = (0..7).map(|i| file(&format!("d{i}"), "x")).collect();
    store.put_files(&owner.id, &files, 0, 1).await.unwrap();
    let event = hub::events::Event::deleted(&owner)
        .produce(Utc::now())
        .unwrap();
    let deletion = hub::model::Deletion::of(&owner, event, Utc::now());
    let stale = Account {
        version: owner.version + 1,
        ..owner.clone()
    };
    assert_eq!(
        store.begin_deletion(&stale, &deletion).await.unwrap(),
        Write::Conflict,
        "only over the version read"
    );
    assert_eq!(
        store.begin_deletion(&owner, &deletion).await.unwrap(),
        Write::Done
    );
    assert_eq!(
        store.begin_deletion(&owner, &deletion).await.unwrap(),
        Write::Conflict,
        "once"
    );
    assert!(store.get_account(&owner.id).await.unwrap().is_none());
    assert_eq!(
        store.get_deletion(&owner.id).await.unwrap().as_ref(),
        Some(&deletion)
    );
    let scope = AccountScope::provider("google");
    let everywhere = [
        store
            .list_accounts("google", None, 1000)
            .await
            .unwrap()
            .items
            .iter()
            .map(|a| a.id.clone())
            .collect::<Vec<_>>(),
        store
            .list_account_views(&scope, None, 1000)
            .await
            .unwrap()
            .items
            .iter()
            .map(|a| a.id.clone())
            .collect(),
        store
            .list_account_views(&scope.owned_by("app-user"), None, 1000)
            .await
            .unwrap()
            .items
            .iter()
            .map(|a| a.id.clone())
            .collect(),
        store
            .list_active_account_ids("google", None, 1000)
            .await
            .unwrap()
            .items,
        store
            .identity_holders("google", &owner.provider_user_id)
            .await
            .unwrap(),
    ];
    for ids in everywhere {
        assert!(!ids.contains(&owner.id), "{ids:?}");
    }
    assert!(store
        .find_account(Some("app-user"), "google", &owner.provider_user_id)
        .await
        .unwrap()
        .is_none());
    let synced = Account {
        version: deletion.version + 1,
        cursor: Some("later".into()),
        ..owner.clone()
    };
    assert_eq!(
        store.update_account(&synced, owner.version).await.unwrap(),
        Write::Conflict
    );
    assert_eq!(
        store
            .update_account(&synced, deletion.version)
            .await
            .unwrap(),
        Write::Conflict,
        "a tombstone is no account, whatever its version"
    );
    // A new login with the same identity makes a new account beside the tombstone.
    let again = Account {
        id: uuid::Uuid::new_v4().to_string(),
        ..owner.clone()
    };
    assert_eq!(store.create_account(&again).await.unwrap(), Write::Done);

    let announced = hub::model::Deletion {
        announced: true,
        version: deletion.version + 1,
        ..deletion.clone()
    };
    assert_eq!(
        store
            .update_deletion(&announced, owner.version)
            .await
            .unwrap(),
        Write::Conflict
    );
    assert_eq!(
        store
            .update_deletion(&announced, deletion.version)
            .await
            .unwrap(),
        Write::Done
    );
    assert_eq!(
        store.end_deletion(&deletion).await.unwrap(),
        Write::Conflict,
        "only at its own version"
    );
    assert!(!store.purge_page(&owner.id, 3).await.unwrap());
    assert_eq!(whole_index(store, &owner.id).await.len(), 4);
    assert!(!store.purge_page(&owner.id, 3).await.unwrap());
    assert!(store.purge_page(&owner.id, 3).await.unwrap());
    assert!(whole_index(store, &owner.id).await.is_empty());
    assert_eq!(store.last_seq(&owner.id).await.unwrap(), 0);
    assert_eq!(store.end_deletion(&announced).await.unwrap(), Write::Done);
    assert!(store.get_deletion(&owner.id).await.unwrap().is_none());
    assert_eq!(
        store.end_deletion(&announced).await.unwrap(),
        Write::Conflict
    );
    assert_eq!(
        store
            .find_account(Some("app-user"), "google", &owner.provider_user_id)
            .await
            .unwrap()
            .map(|a| a.id),
        Some(again.id.clone()),
        "the new login's account is untouched"
    );
    assert!(hub::purge::delete_at_once(store, &again.id).await.unwrap());
}

/// The feed's positions: each entry at its latest change, a page stored again under the
/// same numbers (a retry before its cursor moved) keeping both attempts' positions, pages of
/// one entry in position order, and the highest number for the next lease.
async fn feed_positions(store: &dyn Store) {
    let owner = account("google", &uuid::Uuid::new_v4().to_string());
    assert_eq!(store.create_account(&owner).await.unwrap(), Write::Done);
    let id = &owner.id;
    let (a, b, c) = (file("a", "a.txt"), file("b", "b.txt"), file("c", "c.txt"));
    store.put_files(id, &[a, b.clone()], 1, 1).await.unwrap();
    store.put_files(id, &[c], 1, 1).await.unwrap();
    store.put_files(id, &[b], 1, 3).await.unwrap();
    assert_eq!(store.last_seq(id).await.unwrap(), 3);
    let positions = |page: &FeedPage| -> Vec<(u64, String)> {
        page.entries
            .iter()
            .map(|e| (e.seq, e.entry.id.clone()))
            .collect()
    };
    let whole = store.changes(id, None, 3, 10).await.unwrap();
    assert_eq!(
        positions(&whole),
        [(1, "a".to_string()), (1, "c".into()), (3, "b".into())],
        "b only at its latest change; a and c both at 1"
    );
    assert!(!whole.has_more);
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = store.changes(id, after.as_ref(), 3, 1).await.unwrap();
        seen.extend(positions(&page));
        match (page.has_more, page.entries.last()) {
            (true, Some(last)) => {
                after = Some(FeedPosition {
                    seq: last.seq,
                    file_id: last.entry.id.clone(),
                })
            }
            _ => break,
        }
    }
    assert_eq!(seen, positions(&whole), "a page at a time");
    let below = store.changes(id, None, 2, 10).await.unwrap();
    assert_eq!(
        positions(&below),
        [(1, "a".to_string()), (1, "c".into())],
        "the watermark bounds it"
    );
    assert!(hub::purge::delete_at_once(store, id).await.unwrap());
    assert_eq!(store.last_seq(id).await.unwrap(), 0);
}

async fn store_suite(store: &dyn Store) {
    accounts_and_identities(store).await;
    conditional_updates(store).await;
    writes_that_spend_a_session(store).await;
    provider_paging(store).await;
    account_views(store).await;
    drives_and_last_sync(store).await;
    login_states(store).await;
    file_index(store).await;
    feed_positions(store).await;
    reconciliation(store).await;
    removals_by_path(store).await;
    replacements_by_path(store).await;
    index_left_after_a_delete(store).await;
    push_channels(store).await;
    deletions(store).await;
}

#[tokio::test]
async fn local_store_behaves() {
    let dir = tempfile::tempdir().unwrap();
    store_suite(&LocalStore::open(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn dynamo_store_behaves() {
    let (client, table) = common::dynamo_table().await;
    store_suite(&DynamoStore::new(client, table)).await;
}

/// A table of an earlier version held the feed in the `by-seq` index: each entry with its
/// `seq`. Those entries stay readable, merged in position order with the feed items, and
/// leave the index the first time a sync stores them again.
#[tokio::test]
async fn dynamo_feed_reads_entries_stored_before_feed_items() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (client, table) = common::dynamo_table().await;
    let store = DynamoStore::new(client.clone(), table.clone());
    let owner = account("google", &uuid::Uuid::new_v4().to_string());
    assert_eq!(store.create_account(&owner).await.unwrap(), Write::Done);
    let id = &owner.id;
    let pk = AttributeValue::S(format!("ACCOUNT#{id}"));
    store
        .put_files(id, &[file("old1", "a"), file("old2", "b")], 1, 1)
        .await
        .unwrap();
    // Back to the earlier layout: positions under `seq`, no feed item.
    for (file_id, seq) in [("old1", "1"), ("old2", "4")] {
        client
            .update_item()
            .table_name(&table)
            .key("pk", pk.clone())
            .key("sk", AttributeValue::S(format!("FILE#{file_id}")))
            .update_expression("REMOVE feed_seq SET seq = :seq")
            .expression_attribute_values(":seq", AttributeValue::N(seq.into()))
            .send()
            .await
            .unwrap();
    }
    client
        .delete_item()
        .table_name(&table)
        .key("pk", pk.clone())
        .key("sk", AttributeValue::S(format!("FEED#{:020}", 1)))
        .send()
        .await
        .unwrap();
    assert_eq!(store.last_seq(id).await.unwrap(), 4, "from the index");
    store
        .put_files(id, &[file("new", "c")], 1, 3)
        .await
        .unwrap();
    let ids = |page: &FeedPage| -> Vec<(u64, String)> {
        page.entries
            .iter()
            .map(|e| (e.seq, e.entry.id.clone()))
            .collect()
    };
    let feed = store.changes(id, None, 4, 10).await.unwrap();
    assert_eq!(
        ids(&feed),
        [
            (1, "old1".to_string()),
            (3, "new".into()),
            (4, "old2".into())
        ]
    );
    let after = FeedPosition {
        seq: 1,
        file_id: "old1".into(),
    };
    let page = store.changes(id, Some(&after), 4, 1).await.unwrap();
    assert_eq!(ids(&page), [(3, "new".to_string())]);
    assert!(page.has_more);
    // Stored again: out of the index, in the feed once, at its new place.
    store
        .put_files(id, &[file("old1", "a2")], 1, 5)
        .await
        .unwrap();
    let feed = store.changes(id, None, 5, 10).await.unwrap();
    assert_eq!(
        ids(&feed),
        [
            (3, "new".to_string()),
            (4, "old2".into()),
            (5, "old1".into())
        ]
    );
    assert_eq!(store.last_seq(id).await.unwrap(), 5);
    assert!(hub::purge::delete_at_once(&store, id).await.unwrap());
}

// ---------------------------------------------------------------- token encryption

const TOKEN: &[u8] = b"{\"access_token\":\"plain-secret-token-123\"}";

async fn cipher_suite(cipher: &dyn TokenCipher) {
    let mine = EncryptionContext::account("account-1", "google");
    let sealed = cipher.seal(TOKEN, &mine).await.unwrap();
    assert!(!serde_json::to_string(&sealed)
        .unwrap()
        .contains("plain-secret"));
    assert_eq!(&*cipher.open(&sealed, &mine).await.unwrap(), TOKEN);

    // Copied onto another account, or relabelled as another provider: refused.
    assert!(cipher
        .open(&sealed, &EncryptionContext::account("account-2", "google"))
        .await
        .is_err());
    assert!(cipher
        .open(
            &sealed,
            &EncryptionContext::account("account-1", "onedrive")
        )
        .await
        .is_err());

    // Tampering is detected.
    let mut tampered = sealed.clone();
    tampered.ciphertext = sealed
        .ciphertext
        .replacen(&sealed.ciphertext[..4], "AAAA", 1);
    assert!(cipher.open(&tampered, &mine).await.is_err());

    // A fresh nonce (and, with KMS, a fresh data key) per write.
    let again = cipher.seal(TOKEN, &mine).await.unwrap();
    assert_ne!(again.ciphertext, sealed.ciphertext);
}

#[tokio::test]
async fn local_cipher_behaves_and_keeps_its_key_private() {
    let dir = tempfile::tempdir().unwrap();
    let cipher = LocalCipher::load(None, dir.path()).unwrap();
    cipher_suite(&cipher).await;

    let key_file = dir.path().join("local.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // The generated key is reused by the next process.
    let sealed = cipher
        .seal(TOKEN, &EncryptionContext::account("a", "google"))
        .await
        .unwrap();
    let reloaded = LocalCipher::load(None, dir.path()).unwrap();
    assert_eq!(
        &*reloaded
            .open(&sealed, &EncryptionContext::account("a", "google"))
            .await
            .unwrap(),
        TOKEN
    );

    let bad = LocalCipher::load(Some(&"c2hvcnQ=".to_string().into()), dir.path());
    assert!(bad.err().unwrap().to_string().contains("32 bytes"));
}

#[tokio::test]
async fn kms_envelope_cipher_behaves() {
    let (client, key_id) = common::kms_key().await;
    let cipher = KmsCipher::new(client, key_id);
    cipher_suite(&cipher).await;
    let sealed = cipher
        .seal(TOKEN, &EncryptionContext::account("a", "google"))
        .await
        .unwrap();
    assert!(
        sealed.data_key.is_some(),
        "the encrypted data key is stored beside the ciphertext"
    );
}

// ---------------------------------------------------------------- at rest: no clear text

fn every_file_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(every_file_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

async fn store_sealed_account(store: &dyn Store, cipher: &dyn TokenCipher) -> Account {
    let mut owner = account("google", &uuid::Uuid::new_v4().to_string());
    owner.tokens = cipher
        .seal(TOKEN, &EncryptionContext::account(&owner.id, "google"))
        .await
        .unwrap();
    assert_eq!(store.create_account(&owner).await.unwrap(), Write::Done);
    owner
}

#[tokio::test]
async fn local_data_dir_holds_no_clear_token() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let cipher = LocalCipher::load(None, dir.path()).unwrap();
    store_sealed_account(&store, &cipher).await;
    for path in every_file_under(dir.path()) {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("plain-secret-token"),
            "{}",
            path.display()
        );
    }
}

#[tokio::test]
async fn dynamo_table_holds_no_clear_token() {
    let (client, table) = common::dynamo_table().await;
    let (kms, key_id) = common::kms_key().await;
    let store = DynamoStore::new(client.clone(), &table);
    let cipher = KmsCipher::new(kms, key_id);
    let owner = store_sealed_account(&store, &cipher).await;
    let items = client
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    assert!(!items.is_empty());
    assert!(!format!("{items:?}").contains("plain-secret-token"));

    // A stored ciphertext moved onto another account does not decrypt.
    let thief = EncryptionContext::account("another-account", "google");
    assert!(cipher.open(&owner.tokens, &thief).await.is_err());
}

// ---------------------------------------------------------------- two processes, one local store

const CHILD_DIR: &str = "HUB_TEST_CHILD_DATA_DIR";
const CHILD_NAME: &str = "HUB_TEST_CHILD_NAME";
const CHILD_ROUNDS: usize = 40;

/// Run by `two_processes_share_the_local_store` in child processes (ignored otherwise):
/// creates accounts and increments a shared counter with conditional updates.
#[tokio::test]
#[ignore = "child process of two_processes_share_the_local_store"]
async fn child_writer() {
    // Run on its own it has nothing to write to: fail loudly rather than pass having done
    // nothing.
    let dir = std::env::var(CHILD_DIR).expect(
        "child_writer runs under two_processes_share_the_local_store, which sets its directory",
    );
    let name = std::env::var(CHILD_NAME)
        .expect("child_writer runs under two_processes_share_the_local_store, which names it");
    let store = LocalStore::open(Path::new(&dir)).unwrap();
    for round in 0..CHILD_ROUNDS {
        assert_eq!(
            store
                .create_account(&account("google", &format!("{name}-{round}")))
                .await
                .unwrap(),
            Write::Done
        );
        store
            .put_files(
                "shared-index",
                &[file(&format!("{name}-{round}"), &name)],
                0,
                1,
            )
            .await
            .unwrap();
        loop {
            let counter = store.get_account("counter").await.unwrap().unwrap();
            let mut next = counter.clone();
            next.version += 1;
            if store.update_account(&next, counter.version).await.unwrap() == Write::Done {
                break;
            }
        }
    }
}

#[tokio::test]
async fn two_processes_share_the_local_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let mut counter = account("counter-provider", "counter");
    counter.id = "counter".into();
    assert_eq!(store.create_account(&counter).await.unwrap(), Write::Done);

    let children: Vec<_> = ["left", "right"]
        .into_iter()
        .map(|name| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["child_writer", "--exact", "--ignored", "--nocapture"])
                .env(CHILD_DIR, dir.path())
                .env(CHILD_NAME, name)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let counter = store.get_account("counter").await.unwrap().unwrap();
    assert_eq!(
        counter.version,
        1 + 2 * CHILD_ROUNDS as u64,
        "no increment lost"
    );
    let accounts = store.list_accounts("google", None, 1000).await.unwrap();
    assert_eq!(accounts.items.len(), 2 * CHILD_ROUNDS);
    let files = store.list_files("shared-index", None, 1000).await.unwrap();
    assert_eq!(files.items.len(), 2 * CHILD_ROUNDS);
    // No temp file was left behind.
    assert!(every_file_under(dir.path()).iter().all(|p| !p
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with(".tmp")));
}

// ---------------------------------------------------------------- queue

fn jobs(n: usize) -> Vec<QueueMessage> {
    (0..n)
        .map(|i| {
            QueueMessage::Sync(SyncJob {
                account_id: format!("user-{i}"),
                provider: "google".into(),
                reason: SyncReason::Manual,
                requested_at: Utc::now(),
                stalled_requeues: 0,
            })
        })
        .collect()
}

#[tokio::test]
async fn sqs_queue_sends_every_job() {
    let (client, url) = common::sqs_queue().await;
    let queue = SqsQueue::new(client.clone(), &url);
    let sent = jobs(25);
    queue.enqueue(&sent).await.unwrap();
    let mut received = Vec::new();
    for _ in 0..20 {
        let answer = client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for message in answer.messages() {
            received.push(serde_json::from_str::<QueueMessage>(message.body().unwrap()).unwrap());
        }
        if received.len() == sent.len() {
            break;
        }
    }
    received.sort_by_key(|m| format!("{m:?}"));
    let mut expected = sent.clone();
    expected.sort_by_key(|m| format!("{m:?}"));
    assert_eq!(received, expected);
}

/// Every message on `url`, received until `expected` have come (or twenty polls).
async fn drain(client: &aws_sdk_sqs::Client, url: &str, expected: usize) -> Vec<QueueMessage> {
    let mut received = Vec::new();
    for _ in 0..20 {
        if received.len() >= expected {
            break;
        }
        let answer = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for message in answer.messages() {
            received.push(serde_json::from_str::<QueueMessage>(message.body().unwrap()).unwrap());
        }
    }
    received
}

/// Push jobs go on the push queue (no batching window in the template), the others and
/// every delayed job on the sync queue.
#[tokio::test]
async fn sqs_queue_puts_push_jobs_on_the_push_queue() {
    let (client, url) = common::sqs_queue().await;
    let (_, push_url) = common::sqs_queue().await;
    let queue = SqsQueue::new(client.clone(), &url).with_push_queue(Some(push_url.clone()));
    let mut sent = jobs(14);
    for message in sent.iter_mut().step_by(2) {
        let QueueMessage::Sync(job) = message else {
            unreachable!()
        };
        job.reason = SyncReason::Push;
    }
    queue.enqueue(&sent).await.unwrap();
    queue
        .enqueue_delayed(&sent[0], std::time::Duration::ZERO)
        .await
        .unwrap();
    let is_push =
        |m: &QueueMessage| matches!(m, QueueMessage::Sync(job) if job.reason == SyncReason::Push);
    let pushed = drain(&client, &push_url, 7).await;
    assert_eq!(pushed.len(), 7);
    assert!(pushed.iter().all(is_push));
    let others = drain(&client, &url, 8).await;
    assert_eq!(others.len(), 8, "7 jobs and the delayed push job");
    assert_eq!(others.iter().filter(|m| is_push(m)).count(), 1);
}

#[tokio::test]
async fn sqs_queue_reports_a_missing_queue() {
    let (client, url) = common::sqs_queue().await;
    let queue = SqsQueue::new(client, format!("{url}-missing"));
    assert!(queue.enqueue(&jobs(3)).await.is_err());
}

/// A stand-in for `cargo lambda watch`'s Invoke API that fails chosen jobs.
mod invoke_api {
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::routing::post;
    use axum::{Json, Router};
    use serde_json::{json, Value};

    #[derive(Clone, Default)]
    pub struct Seen(pub Arc<Mutex<Vec<(String, String)>>>);

    /// Records `(user_id, receive count)` of every record; fails users named `fail-*` always
    /// and `flaky-*` on their first receive.
    pub async fn start() -> (String, Seen) {
        let seen = Seen::default();
        let app = Router::new()
            .route(
                "/2015-03-31/functions/sync-worker/invocations",
                post(invoke),
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    async fn invoke(State(seen): State<Seen>, Json(event): Json<Value>) -> Json<Value> {
        let mut failures = Vec::new();
        for record in event["Records"].as_array().unwrap() {
            let job: Value = serde_json::from_str(record["body"].as_str().unwrap()).unwrap();
            let user = job["user_id"].as_str().unwrap().to_string();
            let count = record["attributes"]["ApproximateReceiveCount"]
                .as_str()
                .unwrap()
                .to_string();
            if user.starts_with("fail-") || (user.starts_with("flaky-") && count == "1") {
                failures.push(json!({ "itemIdentifier": record["messageId"] }));
            }
            seen.0.lock().unwrap().push((user, count));
        }
        Json(json!({ "batchItemFailures": failures }))
    }
}

#[tokio::test]
async fn local_queue_redelivers_failures_then_dead_letters() {
    let (url, seen) = invoke_api::start().await;
    let dir = tempfile::tempdir().unwrap();
    let queue = LocalQueue::new(&url, dir.path().to_path_buf())
        .unwrap()
        .with_redelivery_delay(Duration::from_millis(10));
    let mut batch = jobs(12);
    for (i, user) in [(0, "flaky-1"), (1, "fail-1")] {
        if let QueueMessage::Sync(job) = &mut batch[i] {
            job.account_id = user.into();
        }
    }
    queue.enqueue(&batch).await.unwrap();

    let dead_letters = dir.path().join("dead-letter");
    for _ in 0..300 {
        if dead_letters.exists() && std::fs::read_dir(&dead_letters).unwrap().count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.0.lock().unwrap().clone();
    let receives = |user: &str| seen.iter().filter(|(u, _)| u == user).count();
    assert_eq!(receives("user-5"), 1, "a success is delivered once");
    assert_eq!(receives("flaky-1"), 2, "a failure is delivered again");
    assert_eq!(receives("fail-1"), hub::queue::local::MAX_RECEIVES as usize);
    let dead: Vec<_> = std::fs::read_dir(&dead_letters)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].contains("fail-1"));
    assert_eq!(
        seen.iter()
            .map(|(u, _)| u.clone())
            .collect::<HashSet<_>>()
            .len(),
        12,
        "every job delivered"
    );
}

#[tokio::test]
async fn concurrent_creates_in_one_process_all_land() {
    // The functions hold the backends as `Arc<dyn Trait>` shared by concurrent records.
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(LocalStore::open(dir.path()).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_account(&account("google", &format!("u{i}")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.await.unwrap(), Write::Done);
    }
}

/// The local store's crash windows and its earlier layout: a data directory of an earlier
/// version (one JSON file per index entry under `files/`, with a `.deleted-*` directory that
/// an interrupted purge left) has its index imported at start; expired login states are
/// swept by the logins themselves, so anonymous `/login` calls cannot grow `states/` without
/// bound.
#[tokio::test]
async fn local_store_cleans_up_after_crashes_and_expired_logins() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("files");
    let doomed = legacy.join(".deleted-crashed");
    std::fs::create_dir_all(&doomed).unwrap();
    std::fs::write(doomed.join("00.json"), "{}").unwrap();
    let account_dir = legacy.join(hex::encode("acct-old"));
    std::fs::create_dir_all(&account_dir).unwrap();
    let entry = file("f1", "kept.txt");
    let mut stored = serde_json::to_value(&entry).unwrap();
    stored["generation"] = 1.into();
    stored["seq"] = 7.into();
    std::fs::write(
        account_dir.join(format!("{}.json", hex::encode("f1"))),
        stored.to_string(),
    )
    .unwrap();
    std::fs::write(account_dir.join(".tmp-crashed"), "{\"torn").unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    assert!(!legacy.exists(), "the earlier layout is gone once imported");
    let imported = store.list_files("acct-old", None, 10).await.unwrap();
    assert_eq!(imported.items, [entry]);
    assert_eq!(store.last_seq("acct-old").await.unwrap(), 7);
    let feed = store.changes("acct-old", None, 7, 10).await.unwrap();
    assert_eq!(feed.entries.len(), 1);
    assert_eq!(feed.entries[0].seq, 7);

    let state = |name: &str, expires_at| LoginState {
        state: name.into(),
        provider: "google".into(),
        pkce_verifier: sealed("verifier"),
        expires_at,
        session: None,
        browser_key_hash: None,
    };
    let past = Utc::now() - Age::minutes(11);
    for i in 0..5 {
        store
            .put_login_state(&state(&format!("old-{i}"), past))
            .await
            .unwrap();
    }
    // Another process (a new store value: its own sweep clock) logs someone in.
    let other = LocalStore::open(dir.path()).unwrap();
    other
        .put_login_state(&state("live", Utc::now() + Age::minutes(10)))
        .await
        .unwrap();
    let left: Vec<String> = std::fs::read_dir(dir.path().join("states"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, [format!("{}.json", hex::encode("live"))]);
}

/// Stores of one data directory opened and dropped on many threads at once: the file index's
/// environment is shared while one is open and reopened once the last is gone, and nothing
/// written by one is lost to another. (The narrow window where a drop on another thread is
/// still closing the environment, which `FileIndex::open` waits out, is not forced here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_stores_open_and_close_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let path = dir.path().to_path_buf();
            tokio::spawn(async move {
                for round in 0..25 {
                    let store = LocalStore::open(&path).unwrap();
                    let id = format!("f{task}-{round}");
                    store
                        .put_files("acct", &[file(&id, "a.txt")], 1, 1)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let store = LocalStore::open(dir.path()).unwrap();
    assert_eq!(whole_index(&store, "acct").await.len(), 8 * 25);
}
