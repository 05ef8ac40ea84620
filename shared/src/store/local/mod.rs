//! The embedded store, under `HUB_DATA_DIR`, with no server: JSON files for the records,
//! and an LMDB environment for the file index and its change feed ([`file_index`]).
//!
//! Each function runs in its own process under `cargo lambda watch`, so the store must be safe
//! across processes: every file is replaced atomically (temp file, fsync, rename, fsync of the
//! directory), so a reader sees the old or the new record and never half of one, and every
//! read-modify-write holds an exclusive lock on `store.lock` (an OS file lock, released by the
//! kernel if the process dies). File names are the hex of the record's key: any id is a safe
//! name (no path traversal) and hex keeps the byte order, so pages come out in key order as in
//! DynamoDB. The file index is the one part written a thousand entries at a time, which a file
//! and an fsync per entry made slow: LMDB stores a page in one transaction, and serialises its
//! writers across processes by itself.
//!
//! ```text
//! accounts/<hex id>.json          identities/<hex provider:user>.json           (no owner)
//! states/<hex state>.json         identities/<hex provider:user>.owners/<sha256 owner>.json
//! sessions/<hex session id>.json  index/data.mdb, index/lock.mdb      (file index and feed)
//! claims/<hex key>.json           push-pending/<hex account id>.json
//! links/<hex link id>.json        (content links, swept with the login states)
//! channels/<hex provider:id>.json account-channels/<hex account id>/<hex provider:id>.json
//! ```
//!
//! A deleted account's file holds its tombstone (`deleting_since`, no token) until the purge
//! ends; every read of accounts skips it.
//!
//! An owner is up to 128 characters: its hash, not its hex, names its identity file, so that
//! the name stays within file-name limits.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

mod accounts;
mod claims;
mod disk;
mod file_index;
mod files;
mod links;
mod logins;
mod paths;
mod push;

// The role files (accounts.rs, files.rs, ...) take the plumbing below, the paths, the disk
// helpers and these imports from here (`use super::*`).
use disk::*;
use paths::*;

use super::{
    channel_storable, distinct_keys, storable, AccountScope, AccountStore, ClaimStore, FeedEntry,
    FeedPage, FeedPosition, FileStore, Folder, LinkStore, LoginStore, PushStore, Scan,
    SpendingWrite, StoredFile, Write,
};
use crate::deadline::Deadline;
use crate::error::{HubError, HubResult};
use crate::model::{
    Account, AccountStatus, AccountView, ConnectSession, ContentLink, Deletion, FileEntry,
    LoginState, Page, PathRemoval, PushChannel,
};
use file_index::FileIndex;

#[derive(Clone, Debug)]
pub struct LocalStore {
    root: Arc<PathBuf>,
    index: Arc<FileIndex>,
    /// When this process last removed expired login states (Unix seconds): DynamoDB's TTL
    /// does it in AWS; here the logins do it, at most once a minute.
    last_sweep: Arc<AtomicI64>,
}

/// Seconds between two sweeps of expired login states by one process.
const SWEEP_INTERVAL_SECONDS: i64 = 60;

const DIRS: &[&str] = &[
    "accounts",
    "identities",
    "states",
    "sessions",
    "claims",
    "links",
    "push-pending",
    "channels",
    "account-channels",
];

impl LocalStore {
    pub fn open(data_dir: &Path) -> HubResult<Self> {
        for dir in DIRS {
            fs::create_dir_all(data_dir.join(dir)).map_err(|e| {
                HubError::internal(format!("creating {}: {e}", data_dir.join(dir).display()))
            })?;
        }
        let local_error = |e: io::Error| HubError::internal(format!("local store: {e}"));
        let index = FileIndex::open(&data_dir.join("index")).map_err(local_error)?;
        // A data directory of an earlier version keeps its index in `files/`.
        {
            let _lock = lock(data_dir).map_err(local_error)?;
            index
                .import_json_layout(&data_dir.join("files"))
                .map_err(local_error)?;
        }
        Ok(LocalStore {
            root: Arc::new(data_dir.to_path_buf()),
            index,
            last_sweep: Arc::new(AtomicI64::new(0)),
        })
    }

    /// Whether this login should also sweep expired states (claims the sweep if so).
    fn sweep_due(&self) -> bool {
        let now = Utc::now().timestamp();
        let last = self.last_sweep.load(Ordering::Relaxed);
        now - last >= SWEEP_INTERVAL_SECONDS
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Runs blocking file work off the async threads.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Path) -> io::Result<T> + Send + 'static,
    ) -> HubResult<T> {
        let root = self.root.clone();
        blocking(move || work(&root)).await
    }

    /// Runs blocking work on the file index off the async threads.
    async fn run_index<T: Send + 'static>(
        &self,
        work: impl FnOnce(&FileIndex) -> io::Result<T> + Send + 'static,
    ) -> HubResult<T> {
        let index = self.index.clone();
        blocking(move || work(&index)).await
    }
}

/// Runs `work` on tokio's blocking threads, its I/O errors as the hub's.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> HubResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| HubError::internal(format!("local store task failed: {e}")))?
        .map_err(|e| HubError::internal(format!("local store: {e}")))
}

/// Holds the store-wide lock until dropped.
fn lock(root: &Path) -> io::Result<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join("store.lock"))?;
    file.lock()?;
    Ok(file)
}
