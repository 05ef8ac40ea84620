//! What the tests of an account's drives share (`drives.rs`, `dropbox_team.rs`,
//! `onedrive_drives.rs`): a hub on either store against the provider stand-ins, a login
//! through the stand-in's consent, a whole sync, the index and the drives by id, and a stored
//! cursor rewritten as a worker stopped half-way would leave it. Included with `#[path]` by
//! test files that also declare `mod common;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use hub::model::{Drive, FileEntry, SyncJob, SyncReason};
use hub::store::dynamo::DynamoStore;
use hub::store::Write;
use hub::sync::SyncResult;
use hub::Hub;
use hub_testkit::FakeProviders;

use crate::common;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Local,
    Dynamo,
}

pub const BACKENDS: [Backend; 2] = [Backend::Local, Backend::Dynamo];

/// A hub with every stand-in configured (`extra` added to their variables), on `backend`.
/// Keep the directory as long as the hub.
pub async fn hub_on(
    providers: &FakeProviders,
    backend: Backend,
    extra: &[(&str, &str)],
) -> (Hub, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = providers.env_vars();
    env.extend(providers.dropbox_env_vars());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut hub = hub::testing::local_hub(dir.path(), &env).await;
    if let Backend::Dynamo = backend {
        let (client, table) = common::dynamo_table().await;
        hub.store = Arc::new(DynamoStore::new(client, table));
    }
    (hub, dir)
}

/// Logs in to `provider` through the stand-in's consent page; returns the new account's id.
pub async fn connect(hub: &Hub, provider: &str) -> String {
    let consent = hub::login::begin(hub, provider).await.unwrap();
    let callback = common::consent(&consent).await;
    hub::login::complete(hub, provider, callback)
        .await
        .unwrap()
        .id
}

/// One sync job of the account, run to its end, which must be a finished sync.
pub async fn sync(hub: &Hub, provider: &str, account_id: &str) -> SyncResult {
    let job = SyncJob {
        account_id: account_id.to_string(),
        provider: provider.into(),
        reason: SyncReason::Manual,
        requested_at: Utc::now(),
        stalled_requeues: 0,
    };
    let result = hub::sync::run(hub, &job, hub::sync::fresh_invocation())
        .await
        .unwrap();
    assert!(
        matches!(result, SyncResult::Synced { .. }),
        "the sync finished: {result:?}"
    );
    result
}

/// The account's index by entry id (the test drives fit one page).
pub async fn index(hub: &Hub, account_id: &str) -> HashMap<String, FileEntry> {
    let page = hub.store.list_files(account_id, None, 1000).await.unwrap();
    assert!(page.next.is_none(), "the test drives fit one page");
    page.items
        .into_iter()
        .map(|entry| (entry.id.clone(), entry))
        .collect()
}

/// The account's drives as `/users/{id}/drives` answers them, by id.
pub async fn drives(hub: &Hub, account_id: &str) -> HashMap<String, Drive> {
    hub::drives::list(hub, account_id)
        .await
        .unwrap()
        .drives
        .into_iter()
        .map(|drive| (drive.id.clone(), drive))
        .collect()
}

/// Rewrites the account's stored cursor with `change`, as a conditional write.
pub async fn rewrite_cursor(
    hub: &Hub,
    account_id: &str,
    change: impl FnOnce(Option<String>) -> String,
) {
    let mut account = hub.store.get_account(account_id).await.unwrap().unwrap();
    let version = account.version;
    account.cursor = Some(change(account.cursor.take()));
    account.version += 1;
    assert_eq!(
        hub.store.update_account(&account, version).await.unwrap(),
        Write::Done
    );
}
