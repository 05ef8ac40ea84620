//! Querying the index (docs/API.md, "Files"): every filter of `GET /users/{id}/files`, its
//! paging and cursors, and what a folder listing costs, on both stores; the backfill of the
//! `by-folder` index on DynamoDB (moto).

mod common;

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use hub::model::{Account, Drive, DriveKind, DriveStatus, FileEntry, FileKind};
use hub::queries::{self, Deleted, FileCursor, FileFilter, Parent};
use hub::store::dynamo::DynamoStore;
use hub::store::local::LocalStore;
use hub::store::{FileStore, Store, Write};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn drive(id: &str, kind: DriveKind) -> Drive {
    Drive {
        id: id.into(),
        name: id.into(),
        kind,
        status: DriveStatus::Active,
        file_count: 0,
        last_synced_at: None,
    }
}

async fn account_with(store: &dyn Store, provider: &str, drives: Vec<Drive>) -> Account {
    let mut account = hub::testing::account(provider)
        .user(&uuid::Uuid::new_v4().to_string())
        .build();
    account.drives = drives;
    assert_eq!(store.create_account(&account).await.unwrap(), Write::Done);
    account
}

/// An entry of a drive: a file (with a media type) or a folder, under `parent`.
fn entry(id: &str, name: &str, drive: &str, parent: Option<&str>, kind: FileKind) -> FileEntry {
    FileEntry {
        kind: Some(kind),
        mime_type: match kind {
            FileKind::Folder => Some("application/vnd.google-apps.folder".into()),
            _ => Some(if name.ends_with(".pdf") {
                "application/pdf".into()
            } else {
                "text/plain".into()
            }),
        },
        modified_at: Some(at("2026-01-01T00:00:00Z")),
        parent_ids: Some(parent.into_iter().map(str::to_string).collect()),
        drive_id: Some(drive.into()),
        ..FileEntry::new(id, name)
    }
}

fn dropbox_entry(id: &str, path: &str, kind: FileKind) -> FileEntry {
    FileEntry {
        kind: Some(kind),
        path: Some(path.into()),
        path_lower: Some(path.to_lowercase()),
        parent_ids: Some(Vec::new()),
        drive_id: Some("dropbox".into()),
        ..FileEntry::new(id, path.rsplit('/').next().unwrap())
    }
}

/// Every entry `filter` lists, following the cursors `limit` at a time, and the index items
/// the pages read.
async fn all(
    store: &dyn Store,
    account_id: &str,
    filter: &FileFilter,
    limit: usize,
) -> (BTreeSet<String>, u64) {
    let (mut ids, mut read, mut cursor) = (BTreeSet::new(), 0, None::<FileCursor>);
    for _ in 0..1000 {
        let page = queries::files(store, account_id, filter, limit, cursor)
            .await
            .unwrap();
        assert!(page.files.len() <= limit);
        read += page.read;
        for file in page.files {
            assert!(ids.insert(file.id.clone()), "{} listed twice", file.id);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(hub::cursor::decode(&next).unwrap()),
            None => return (ids, read),
        }
    }
    panic!("the listing never ended");
}

fn ids(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

/// A Google account: My Drive (root `0AROOT`, never an entry) and a shared drive `0ASHARED`
/// (its root is its id), a folder with a tombstone, a file shared with the user without a
/// parent, and `bulk` more files in a folder of their own.
async fn google(store: &dyn Store, bulk: usize) -> Account {
    let account = account_with(
        store,
        "google",
        vec![
            drive("my-drive", DriveKind::MyDrive),
            drive("0ASHARED", DriveKind::SharedDrive),
        ],
    )
    .await;
    let mut report = entry(
        "report",
        "Report.pdf",
        "my-drive",
        Some("docs"),
        FileKind::File,
    );
    report.modified_at = Some(at("2026-01-10T00:00:00Z"));
    let mut entries = vec![
        entry("docs", "Docs", "my-drive", Some("0AROOT"), FileKind::Folder),
        report,
        entry(
            "notes",
            "notes.txt",
            "my-drive",
            Some("docs"),
            FileKind::File,
        ),
        entry("gone", "Gone.txt", "my-drive", Some("docs"), FileKind::File),
        entry("top", "Top.txt", "my-drive", Some("0AROOT"), FileKind::File),
        entry("shared", "Shared.pdf", "my-drive", None, FileKind::File),
        entry(
            "bulkdir",
            "Bulk",
            "my-drive",
            Some("0AROOT"),
            FileKind::Folder,
        ),
        entry(
            "plan",
            "Plan.pdf",
            "0ASHARED",
            Some("0ASHARED"),
            FileKind::File,
        ),
        entry(
            "team",
            "Team",
            "0ASHARED",
            Some("0ASHARED"),
            FileKind::Folder,
        ),
        entry(
            "inner",
            "inner.txt",
            "0ASHARED",
            Some("team"),
            FileKind::File,
        ),
    ];
    entries.extend((0..bulk).map(|n| {
        entry(
            &format!("bulk{n:05}"),
            &format!("bulk {n}.txt"),
            "my-drive",
            Some("bulkdir"),
            FileKind::File,
        )
    }));
    for (n, chunk) in entries.chunks(200).enumerate() {
        store
            .put_files(&account.id, chunk, 1, 1 + 200 * n as u64)
            .await
            .unwrap();
    }
    let last = 1 + entries.len() as u64;
    store
        .put_files(&account.id, &[FileEntry::tombstone("gone")], 1, last)
        .await
        .unwrap();
    account
}

fn parent(parent: Parent) -> FileFilter {
    FileFilter {
        parent: Some(parent),
        ..FileFilter::default()
    }
}

async fn every_filter(store: &dyn Store) {
    let account = google(store, 3).await;
    let id = &account.id;
    let bulk = ["bulk00000", "bulk00001", "bulk00002"];
    let live: Vec<&str> = [
        "docs", "report", "notes", "top", "shared", "bulkdir", "plan", "team", "inner",
    ]
    .into_iter()
    .chain(bulk)
    .collect();
    for limit in [1, 2, 100] {
        // The default leaves tombstones out.
        assert_eq!(
            all(store, id, &FileFilter::default(), limit).await.0,
            ids(&live)
        );
        let docs = parent(Parent::Id("docs".into()));
        assert_eq!(
            all(store, id, &docs, limit).await.0,
            ids(&["report", "notes"])
        );
        let tombstones = FileFilter {
            deleted: Deleted::Only,
            ..docs.clone()
        };
        assert_eq!(all(store, id, &tombstones, limit).await.0, ids(&["gone"]));
        let both = FileFilter {
            deleted: Deleted::Any,
            ..docs.clone()
        };
        assert_eq!(
            all(store, id, &both, limit).await.0,
            ids(&["report", "notes", "gone"])
        );
        // Each drive's top: My Drive's root folder, the shared drive's, and a file without a
        // parent.
        assert_eq!(
            all(store, id, &parent(Parent::Root), limit).await.0,
            ids(&["docs", "top", "shared", "bulkdir", "plan", "team"])
        );
        let shared_top = FileFilter {
            drive_id: Some("0ASHARED".into()),
            ..parent(Parent::Root)
        };
        assert_eq!(
            all(store, id, &shared_top, limit).await.0,
            ids(&["plan", "team"])
        );
        // A root folder's own id, which the index does not hold.
        assert_eq!(
            all(store, id, &parent(Parent::Id("0ASHARED".into())), limit)
                .await
                .0,
            ids(&["plan", "team"])
        );
        let shared_drive = FileFilter {
            drive_id: Some("0ASHARED".into()),
            ..FileFilter::default()
        };
        assert_eq!(
            all(store, id, &shared_drive, limit).await.0,
            ids(&["plan", "team", "inner"])
        );
        let folders = FileFilter {
            kind: Some(FileKind::Folder),
            ..FileFilter::default()
        };
        assert_eq!(
            all(store, id, &folders, limit).await.0,
            ids(&["docs", "bulkdir", "team"])
        );
        let pdfs = FileFilter {
            mime_type: Some("APPLICATION/PDF".into()),
            ..FileFilter::default()
        };
        assert_eq!(
            all(store, id, &pdfs, limit).await.0,
            ids(&["report", "shared", "plan"])
        );
        let named = FileFilter {
            name_prefix: Some(queries::lower("REP")),
            ..FileFilter::default()
        };
        assert_eq!(all(store, id, &named, limit).await.0, ids(&["report"]));
        let recent = FileFilter {
            modified_after: Some(at("2026-01-05T00:00:00Z")),
            ..FileFilter::default()
        };
        assert_eq!(all(store, id, &recent, limit).await.0, ids(&["report"]));
        let older = FileFilter {
            modified_before: Some(at("2026-01-05T00:00:00Z")),
            parent: Some(Parent::Id("docs".into())),
            ..FileFilter::default()
        };
        assert_eq!(all(store, id, &older, limit).await.0, ids(&["notes"]));
        let combined = FileFilter {
            parent: Some(Parent::Root),
            mime_type: Some("application/pdf".into()),
            ..FileFilter::default()
        };
        assert_eq!(
            all(store, id, &combined, limit).await.0,
            ids(&["shared", "plan"])
        );
    }
}

async fn paths(store: &dyn Store) {
    let account = account_with(store, "dropbox", vec![drive("dropbox", DriveKind::Dropbox)]).await;
    let entries = [
        dropbox_entry("id:docs", "/Docs", FileKind::Folder),
        dropbox_entry("id:a", "/Docs/a.txt", FileKind::File),
        dropbox_entry("id:sub", "/Docs/Sub", FileKind::Folder),
        dropbox_entry("id:b", "/Docs/Sub/B.txt", FileKind::File),
        dropbox_entry("id:x", "/Docsx.txt", FileKind::File),
        dropbox_entry("id:top", "/top.txt", FileKind::File),
    ];
    store.put_files(&account.id, &entries, 1, 1).await.unwrap();
    let id = &account.id;
    for limit in [1, 3, 100] {
        for prefix in ["/docs", "/DOCS/", "/Docs"] {
            let under = FileFilter {
                path_prefix: Some(queries::path_prefix(prefix)),
                ..FileFilter::default()
            };
            assert_eq!(
                all(store, id, &under, limit).await.0,
                ids(&["id:docs", "id:a", "id:sub", "id:b"]),
                "{prefix}"
            );
        }
        let everything = FileFilter {
            path_prefix: Some(queries::path_prefix("/")),
            ..FileFilter::default()
        };
        assert_eq!(all(store, id, &everything, limit).await.0.len(), 6);
        assert_eq!(
            all(store, id, &parent(Parent::Root), limit).await.0,
            ids(&["id:docs", "id:x", "id:top"])
        );
        // Dropbox entries have no parent ids: a folder's children are those of its path.
        assert_eq!(
            all(store, id, &parent(Parent::Id("id:docs".into())), limit)
                .await
                .0,
            ids(&["id:a", "id:sub"])
        );
    }
}

async fn cursors_are_bound_to_their_filters(store: &dyn Store) {
    let account = google(store, 3).await;
    let id = &account.id;
    let docs = parent(Parent::Id("docs".into()));
    let first = queries::files(store, id, &docs, 1, None).await.unwrap();
    let cursor = first.next_cursor.expect("a second page");
    let decode = |raw: &str| -> FileCursor { hub::cursor::decode(raw).unwrap() };
    let second = queries::files(store, id, &docs, 1, Some(decode(&cursor)))
        .await
        .unwrap();
    assert_ne!(second.files, first.files);
    let others = [
        FileFilter::default(),
        parent(Parent::Id("team".into())),
        FileFilter {
            deleted: Deleted::Any,
            ..docs.clone()
        },
        FileFilter {
            name_prefix: Some("r".into()),
            ..docs.clone()
        },
    ];
    for other in others {
        let error = queries::files(store, id, &other, 1, Some(decode(&cursor)))
            .await
            .unwrap_err();
        assert_eq!(error.code(), "invalid_request", "{other:?}");
    }
    // A cursor of the unfiltered listing from before the filters (a bare file id) goes on
    // where it was, and only without filters.
    let legacy = hub::cursor::encode(
        Some(id.as_str()),
        &queries::FilesPosition::Legacy("notes".into()),
    );
    let page = queries::files(store, id, &FileFilter::default(), 1, Some(decode(&legacy)))
        .await
        .unwrap();
    assert_eq!(page.files[0].id, "plan");
    let error = queries::files(store, id, &docs, 1, Some(decode(&legacy)))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_request");
}

/// A folder's listing reads the same whatever the size of the account around it.
async fn folder_listings_cost_what_they_return(store: &dyn Store) {
    let small = google(store, 10).await;
    let large = google(store, 600).await;
    let filters = [
        parent(Parent::Id("docs".into())),
        parent(Parent::Root),
        FileFilter {
            drive_id: Some("0ASHARED".into()),
            ..FileFilter::default()
        },
    ];
    for filter in filters {
        let (small_ids, small_read) = all(store, &small.id, &filter, 100).await;
        let (large_ids, large_read) = all(store, &large.id, &filter, 100).await;
        assert_eq!(small_ids, large_ids, "{filter:?}");
        assert_eq!(small_read, large_read, "{filter:?}");
        assert!(large_read < 40, "{filter:?} read {large_read}");
    }
    // A filter no index answers reads the account, `limit` items a page at most.
    let named = FileFilter {
        name_prefix: Some("report".into()),
        ..FileFilter::default()
    };
    let page = queries::files(store, &large.id, &named, 50, None)
        .await
        .unwrap();
    assert!(page.read <= 50);
    assert!(page.next_cursor.is_some());
    let (found, read) = all(store, &large.id, &named, 50).await;
    assert_eq!(found, ids(&["report"]));
    assert!(read >= 600);
}

async fn suite(store: &dyn Store) {
    every_filter(store).await;
    paths(store).await;
    cursors_are_bound_to_their_filters(store).await;
    folder_listings_cost_what_they_return(store).await;
}

#[tokio::test]
async fn local_store_answers_every_query() {
    let dir = tempfile::tempdir().unwrap();
    suite(&LocalStore::open(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn dynamo_store_answers_every_query() {
    let (client, table) = common::dynamo_table().await;
    suite(&DynamoStore::new(client, table)).await;
}

/// Entries written before the `by-folder` index carry none of its keys: the backfill gives
/// them theirs, once, and leaves alone what a sync rewrote.
#[tokio::test]
async fn the_backfill_puts_earlier_entries_in_the_folder_index() {
    let (client, table) = common::dynamo_table().await;
    let store = DynamoStore::new(client.clone(), &table);
    let account = google(&store, 3).await;
    let docs = parent(Parent::Id("docs".into()));
    assert_eq!(all(&store, &account.id, &docs, 10).await.0.len(), 2);
    // As a table written by the version before the index holds them.
    let items = client
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    let mut stripped = 0;
    for item in items.iter().filter(|item| item.contains_key("drive_key")) {
        client
            .update_item()
            .table_name(&table)
            .key("pk", item["pk"].clone())
            .key("sk", item["sk"].clone())
            .update_expression("REMOVE drive_key, place")
            .send()
            .await
            .unwrap();
        stripped += 1;
    }
    assert_eq!(stripped, 13);
    assert!(all(&store, &account.id, &docs, 10).await.0.is_empty());
    // A sync rewrites one entry before the backfill reaches it.
    let mut notes = entry(
        "notes",
        "notes.txt",
        "my-drive",
        Some("docs"),
        FileKind::File,
    );
    notes.size = Some(7);
    store
        .put_files(&account.id, &[notes], 2, 100)
        .await
        .unwrap();
    let report = store.backfill_folder_index().await.unwrap();
    assert_eq!((report.found, report.updated), (12, 12));
    assert_eq!(
        all(&store, &account.id, &docs, 10).await.0,
        ids(&["report", "notes"])
    );
    assert_eq!(
        all(&store, &account.id, &parent(Parent::Root), 10).await.0,
        ids(&["docs", "top", "shared", "bulkdir", "plan", "team"])
    );
    let again = store.backfill_folder_index().await.unwrap();
    assert_eq!((again.found, again.updated), (0, 0));
    let item = client
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("ACCOUNT#{}", account.id)))
        .key("sk", AttributeValue::S("FILE#notes".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["size"], AttributeValue::N("7".into()));
}
