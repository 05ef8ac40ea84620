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

mod file_index;

use super::{
    distinct_keys, storable, AccountScope, FeedEntry, FeedPage, FeedPosition, SpendingWrite, Store,
    StoredFile, Write,
};
use crate::deadline::Deadline;
use crate::error::{HubError, HubResult};
use crate::model::{
    Account, AccountStatus, AccountView, ConnectSession, Deletion, FileEntry, LoginState, Page,
    PushChannel,
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

#[derive(Serialize, Deserialize)]
struct IdentityRecord {
    account_id: String,
}

/// What an account's file holds: the account, or the tombstone of its delete in its place
/// (told apart by the tombstone's `deleting_since`, which an account never has).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum AccountFile {
    Deleting(Box<Deletion>),
    Live(Box<Account>),
}

impl AccountFile {
    fn live(self) -> Option<Account> {
        match self {
            AccountFile::Live(account) => Some(*account),
            AccountFile::Deleting(_) => None,
        }
    }

    fn deleting(self) -> Option<Deletion> {
        match self {
            AccountFile::Deleting(deletion) => Some(*deletion),
            AccountFile::Live(_) => None,
        }
    }
}

/// The live account stored at `path`: `None` for a tombstone too.
fn read_account(path: &Path) -> io::Result<Option<Account>> {
    Ok(read_json::<AccountFile>(path)?.and_then(AccountFile::live))
}

const DIRS: &[&str] = &[
    "accounts",
    "identities",
    "states",
    "sessions",
    "claims",
    "push-pending",
    "channels",
    "account-channels",
];

/// A push mark: a push job of the account is queued and not started, until `until`.
#[derive(Serialize, Deserialize)]
struct PushMark {
    until: DateTime<Utc>,
}

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

    /// Writes a short-lived record (a login state, a connect session) and, now and then,
    /// removes the expired ones: nothing else would, as no TTL runs here.
    async fn put_sweeping<T: Serialize + Send + 'static>(
        &self,
        path: PathBuf,
        record: T,
    ) -> HubResult<()> {
        let sweep = self.sweep_due();
        self.run(move |root| {
            write_durably(&path, &record)?;
            if sweep {
                remove_expired_states(root, Utc::now())?;
            }
            Ok(())
        })
        .await
    }

    /// Reads one page of the account's entries in file-id order and rewrites those `mark`
    /// gives a new state for, numbered from `first_seq`: how many, and where the page ends.
    async fn mark_page(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
        first_seq: u64,
        mark: impl Fn(StoredFile, u64, DateTime<Utc>) -> Option<StoredFile> + Send + 'static,
    ) -> HubResult<(u64, Option<String>)> {
        if !storable(account_id) {
            return Ok((0, None));
        }
        let (account_id, after) = (account_id.to_string(), after.map(str::to_string));
        self.run_index(move |index| {
            index.mark_page(&account_id, after.as_deref(), limit, first_seq, mark)
        })
        .await
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

fn file_name(key: &str) -> String {
    format!("{}.json", hex::encode(key))
}

fn key_of(name: &str) -> Option<String> {
    let hex_part = name.strip_suffix(".json")?;
    String::from_utf8(hex::decode(hex_part).ok()?).ok()
}

fn account_path(root: &Path, id: &str) -> PathBuf {
    root.join("accounts").join(file_name(id))
}

/// The identity record of an owner's account (version 1's name when there is no owner).
fn identity_path(
    root: &Path,
    owner: Option<&str>,
    provider: &str,
    provider_user_id: &str,
) -> PathBuf {
    match owner {
        None => root
            .join("identities")
            .join(file_name(&format!("{provider}:{provider_user_id}"))),
        Some(owner) => owners_dir(root, provider, provider_user_id).join(format!(
            "{}.json",
            hex::encode(sha2::Sha256::digest(owner.as_bytes()))
        )),
    }
}

/// Where the identity records of the owners of one provider identity are.
fn owners_dir(root: &Path, provider: &str, provider_user_id: &str) -> PathBuf {
    root.join("identities").join(format!(
        "{}.owners",
        hex::encode(format!("{provider}:{provider_user_id}"))
    ))
}

fn session_path(root: &Path, id: &str) -> PathBuf {
    root.join("sessions").join(file_name(id))
}

fn state_path(root: &Path, state: &str) -> PathBuf {
    root.join("states").join(file_name(state))
}

fn claim_path(root: &Path, key: &str) -> PathBuf {
    root.join("claims").join(file_name(key))
}

fn push_mark_path(root: &Path, account_id: &str) -> PathBuf {
    root.join("push-pending").join(file_name(account_id))
}

fn channel_path(root: &Path, provider: &str, id: &str) -> PathBuf {
    root.join("channels")
        .join(file_name(&format!("{provider}:{id}")))
}

/// The account's own copies of its channels, so that listing them reads one directory.
fn account_channels_dir(root: &Path, account_id: &str) -> PathBuf {
    root.join("account-channels").join(hex::encode(account_id))
}

fn account_channel_path(root: &Path, channel: &PushChannel) -> PathBuf {
    account_channels_dir(root, &channel.account_id)
        .join(file_name(&format!("{}:{}", channel.provider, channel.id)))
}

/// Removes every channel of the account (both records of each).
fn remove_channels(root: &Path, account_id: &str) -> io::Result<()> {
    let dir = account_channels_dir(root, account_id);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        // Under the lock no write is under way: a `.tmp-*` file was left by a crash.
        if path.extension().is_some_and(|ext| ext == "json") {
            if let Some(channel) = read_json::<PushChannel>(&path)? {
                remove_durably(&channel_path(root, &channel.provider, &channel.id))?;
            }
        }
        remove_durably(&path)?;
    }
    fs::remove_dir(&dir).or_else(|e| match e.kind() {
        io::ErrorKind::NotFound => Ok(()),
        _ => Err(e),
    })
}

/// Writes both records of a channel (under the lock).
fn write_channel(root: &Path, channel: &PushChannel) -> io::Result<()> {
    // The account's copy first: a crash in between leaves a channel that no notification
    // finds but the worker sees, and removes.
    let own = account_channel_path(root, channel);
    fs::create_dir_all(own.parent().expect("channel paths have a parent"))?;
    write_durably(&own, channel)?;
    write_durably(&channel_path(root, &channel.provider, &channel.id), channel)
}

/// Whether the account still takes push channels (under the lock): the one place that says
/// what a live account is to a channel write, should deletion ever leave something behind
/// the account record first.
fn account_live(root: &Path, account_id: &str) -> io::Result<bool> {
    // A tombstone is not live: a channel confirmed after a `DELETE` began is refused.
    Ok(read_account(&account_path(root, account_id))?.is_some())
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

fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes beside the target, flushes to disk, then renames over it: readers see the old file
/// or the new one, never a torn write. The directory is synced by the caller
/// ([`sync_dir`]), once per batch.
fn write_file<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let dir = path.parent().expect("store paths have a parent");
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(value).map_err(io::Error::other)?)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn write_durably<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    write_file(path, value)?;
    sync_dir(path.parent().expect("store paths have a parent"))
}

fn remove_durably(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(path.parent().expect("store paths have a parent")).map(|_| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The record names of a directory in key order, after `after`.
fn sorted_names(dir: &Path, after: Option<&str>) -> io::Result<Vec<String>> {
    let after = after.map(file_name);
    let mut names = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        if after.as_ref().is_none_or(|after| &name > after) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Reads records in name order until `limit` pass `keep`; the page's next key is the last
/// kept record's key when the page is full.
fn read_page<T: DeserializeOwned>(
    dir: &Path,
    after: Option<&str>,
    limit: usize,
    mut keep: impl FnMut(&T) -> bool,
) -> io::Result<Page<T>> {
    let mut items = Vec::new();
    let mut last_key = None;
    for name in sorted_names(dir, after)? {
        if items.len() == limit {
            break;
        }
        // A record deleted since the directory was read is simply skipped.
        if let Some(item) = read_json::<T>(&dir.join(&name))? {
            if keep(&item) {
                items.push(item);
                last_key = key_of(&name);
            }
        }
    }
    let next = if items.len() == limit { last_key } else { None };
    Ok(Page { items, next })
}

/// Removes the login states and connect sessions that expired: anonymous `/login` calls
/// must not grow `states/` without bound, nor the apps' sessions `sessions/`. A record that
/// cannot be read is left for the next sweep.
fn remove_expired_states(root: &Path, now: DateTime<Utc>) -> io::Result<()> {
    let _lock = lock(root)?;
    let states = root.join("states");
    for name in sorted_names(&states, None)? {
        let path = states.join(name);
        if let Ok(Some(state)) = read_json::<LoginState>(&path) {
            if state.expires_at <= now {
                fs::remove_file(&path)?;
            }
        }
    }
    sync_dir(&states)?;
    let sessions = root.join("sessions");
    for name in sorted_names(&sessions, None)? {
        let path = sessions.join(name);
        if let Ok(Some(session)) = read_json::<ConnectSession>(&path) {
            // Kept a while past its end, so that a callback that comes late still finds
            // where to send the browser back to.
            if session.expires_at + chrono::Duration::hours(1) <= now {
                fs::remove_file(&path)?;
            }
        }
    }
    sync_dir(&sessions)
}

/// Creates the account and its identity record when neither exists; the caller holds the
/// store's lock.
fn create_account_locked(root: &Path, account: &Account) -> io::Result<Write> {
    let identity = identity_path(
        root,
        account.owner.as_deref(),
        &account.provider,
        &account.provider_user_id,
    );
    let path = account_path(root, &account.id);
    // An identity left pointing at a tombstone (a crash in the middle of a delete) is
    // released too.
    let claimed = match read_json::<IdentityRecord>(&identity)? {
        Some(record) => read_account(&account_path(root, &record.account_id))?.is_some(),
        None => false,
    };
    if claimed || path.exists() {
        return Ok(Write::Conflict);
    }
    // The identity first, then the account: a crash between the two leaves an identity
    // pointing at no account, which counts as unclaimed and is overwritten by the next
    // login, so no orphan account ever shows in /users.
    let identities = root.join("identities");
    let parent = identity.parent().expect("identity paths have a parent");
    if parent != identities && !parent.exists() {
        fs::create_dir_all(parent)?;
        sync_dir(&identities)?;
    }
    write_durably(
        &identity,
        &IdentityRecord {
            account_id: account.id.clone(),
        },
    )?;
    write_durably(&path, account)?;
    Ok(Write::Done)
}

/// Replaces the account when it is still at `expected_version`; the caller holds the lock.
fn update_account_locked(
    root: &Path,
    account: &Account,
    expected_version: u64,
) -> io::Result<Write> {
    let path = account_path(root, &account.id);
    // A tombstone is no account: a sync's write of a deleted account fails.
    match read_account(&path)? {
        Some(stored) if stored.version == expected_version => {
            write_durably(&path, account)?;
            Ok(Write::Done)
        }
        _ => Ok(Write::Conflict),
    }
}

impl LocalStore {
    /// Runs an account write and spends the session under one lock, so no other callback
    /// sees the one without the other. The session is written spent first and given back
    /// when the account write does not happen: a crash in between loses the session (the
    /// app asks for another), where the other order could let a second callback connect a
    /// second account with it.
    async fn spending(
        &self,
        session_id: &str,
        now: DateTime<Utc>,
        write: impl FnOnce(&Path) -> io::Result<Write> + Send + 'static,
    ) -> HubResult<SpendingWrite> {
        if !storable(session_id) {
            return Ok(SpendingWrite::SessionUnusable);
        }
        let session_id = session_id.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = session_path(root, &session_id);
            let Some(session) = read_json::<ConnectSession>(&path)?.filter(|s| s.usable(now))
            else {
                return Ok(SpendingWrite::SessionUnusable);
            };
            write_durably(
                &path,
                &ConnectSession {
                    spent: true,
                    ..session.clone()
                },
            )?;
            let written = write(root);
            if !matches!(written, Ok(Write::Done)) {
                write_durably(&path, &session)?;
            }
            Ok(match written? {
                Write::Done => SpendingWrite::Done,
                Write::Conflict => SpendingWrite::Conflict,
            })
        })
        .await
    }
}

#[async_trait]
impl Store for LocalStore {
    async fn get_account(&self, id: &str) -> HubResult<Option<Account>> {
        if !storable(id) {
            return Ok(None);
        }
        let id = id.to_string();
        self.run(move |root| read_account(&account_path(root, &id)))
            .await
    }

    async fn find_account(
        &self,
        owner: Option<&str>,
        provider: &str,
        provider_user_id: &str,
    ) -> HubResult<Option<Account>> {
        let path_of_identity = identity_path(&self.root, owner, provider, provider_user_id);
        self.run(
            move |root| match read_json::<IdentityRecord>(&path_of_identity)? {
                Some(identity) => read_account(&account_path(root, &identity.account_id)),
                None => Ok(None),
            },
        )
        .await
    }

    async fn identity_holders(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> HubResult<Vec<String>> {
        let (provider, user) = (provider.to_string(), provider_user_id.to_string());
        self.run(move |root| {
            let mut holders = Vec::new();
            if let Some(record) =
                read_json::<IdentityRecord>(&identity_path(root, None, &provider, &user))?
            {
                holders.push(record.account_id);
            }
            let owners = owners_dir(root, &provider, &user);
            for name in sorted_names(&owners, None)? {
                if let Some(record) = read_json::<IdentityRecord>(&owners.join(name))? {
                    holders.push(record.account_id);
                }
            }
            Ok(holders)
        })
        .await
    }

    async fn create_account(&self, account: &Account) -> HubResult<Write> {
        let account = account.clone();
        self.run(move |root| {
            let _lock = lock(root)?;
            create_account_locked(root, &account)
        })
        .await
    }

    async fn update_account(&self, account: &Account, expected_version: u64) -> HubResult<Write> {
        let account = account.clone();
        self.run(move |root| {
            let _lock = lock(root)?;
            update_account_locked(root, &account, expected_version)
        })
        .await
    }

    async fn create_account_spending(
        &self,
        account: &Account,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> HubResult<SpendingWrite> {
        let account = account.clone();
        self.spending(session_id, now, move |root| {
            create_account_locked(root, &account)
        })
        .await
    }

    async fn update_account_spending(
        &self,
        account: &Account,
        expected_version: u64,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> HubResult<SpendingWrite> {
        let account = account.clone();
        self.spending(session_id, now, move |root| {
            update_account_locked(root, &account, expected_version)
        })
        .await
    }

    async fn list_accounts(
        &self,
        provider: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<Account>> {
        let (provider, after) = (provider.to_string(), after.map(str::to_string));
        let page = self
            .run(move |root| {
                read_page(
                    &root.join("accounts"),
                    after.as_deref(),
                    limit,
                    |file: &AccountFile| {
                        matches!(file, AccountFile::Live(a) if a.provider == provider)
                    },
                )
            })
            .await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .filter_map(AccountFile::live)
                .collect(),
            next: page.next,
        })
    }

    async fn list_account_views(
        &self,
        scope: &AccountScope,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<AccountView>> {
        // An account file is a few hundred bytes: reading it whole costs nothing here, and a
        // development store can filter the owner by reading (DynamoDB keeps an owner index).
        let scope = scope.clone();
        let after = after.map(str::to_string);
        let page = self
            .run(move |root| {
                read_page(
                    &root.join("accounts"),
                    after.as_deref(),
                    limit,
                    |file: &AccountFile| {
                        matches!(file, AccountFile::Live(a) if a.provider == scope.provider
                            && scope
                                .owner
                                .as_ref()
                                .is_none_or(|owner| a.owner.as_ref() == Some(owner)))
                    },
                )
            })
            .await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .filter_map(AccountFile::live)
                .map(|account| AccountView::from(&account))
                .collect(),
            next: page.next,
        })
    }

    async fn list_active_account_ids(
        &self,
        provider: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<String>> {
        let page = self.list_accounts(provider, after, limit).await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .filter(|a| a.status == AccountStatus::Active)
                .map(|a| a.id)
                .collect(),
            next: page.next,
        })
    }

    async fn begin_deletion(&self, account: &Account, deletion: &Deletion) -> HubResult<Write> {
        if !storable(&account.id) {
            return Ok(Write::Conflict);
        }
        let deletion = deletion.clone();
        let (owner, provider, user) = (
            account.owner.clone(),
            account.provider.clone(),
            account.provider_user_id.clone(),
        );
        let (id, version) = (account.id.clone(), account.version);
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = account_path(root, &id);
            match read_account(&path)? {
                Some(stored) if stored.version == version => {}
                _ => return Ok(Write::Conflict),
            }
            // The tombstone first, over the account (tokens and all): a crash right after
            // leaves an identity pointing at a tombstone, which counts as released (a new
            // login makes a new account) and which `end_deletion` removes.
            write_durably(&path, &AccountFile::Deleting(Box::new(deletion)))?;
            let identity = identity_path(root, owner.as_deref(), &provider, &user);
            if read_json::<IdentityRecord>(&identity)?.is_some_and(|record| record.account_id == id)
            {
                remove_durably(&identity)?;
            }
            Ok(Write::Done)
        })
        .await
    }

    async fn get_deletion(&self, id: &str) -> HubResult<Option<Deletion>> {
        if !storable(id) {
            return Ok(None);
        }
        let id = id.to_string();
        self.run(move |root| {
            Ok(read_json::<AccountFile>(&account_path(root, &id))?.and_then(AccountFile::deleting))
        })
        .await
    }

    async fn update_deletion(
        &self,
        deletion: &Deletion,
        expected_version: u64,
    ) -> HubResult<Write> {
        if !storable(&deletion.account_id) {
            return Ok(Write::Conflict);
        }
        let deletion = deletion.clone();
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = account_path(root, &deletion.account_id);
            match read_json::<AccountFile>(&path)?.and_then(AccountFile::deleting) {
                Some(stored) if stored.version == expected_version => {
                    write_durably(&path, &AccountFile::Deleting(Box::new(deletion)))?;
                    Ok(Write::Done)
                }
                _ => Ok(Write::Conflict),
            }
        })
        .await
    }

    async fn purge_page(&self, account_id: &str, limit: usize) -> HubResult<bool> {
        if !storable(account_id) {
            return Ok(true);
        }
        let account_id = account_id.to_string();
        self.run_index(move |index| index.purge_page(&account_id, limit))
            .await
    }

    async fn end_deletion(&self, deletion: &Deletion) -> HubResult<Write> {
        if !storable(&deletion.account_id) {
            return Ok(Write::Conflict);
        }
        let deletion = deletion.clone();
        self.run(move |root| {
            let _lock = lock(root)?;
            let id = &deletion.account_id;
            let path = account_path(root, id);
            match read_json::<AccountFile>(&path)?.and_then(AccountFile::deleting) {
                Some(stored) if stored.version == deletion.version => {}
                _ => return Ok(Write::Conflict),
            }
            remove_channels(root, id)?;
            remove_durably(&push_mark_path(root, id))?;
            let identity = identity_path(
                root,
                deletion.owner.as_deref(),
                &deletion.provider,
                &deletion.provider_user_id,
            );
            if read_json::<IdentityRecord>(&identity)?
                .is_some_and(|record| &record.account_id == id)
            {
                remove_durably(&identity)?;
            }
            // Last: while it is there, a repeated DELETE answers 204 and the purge goes on.
            remove_durably(&path)?;
            Ok(Write::Done)
        })
        .await
    }

    async fn purge_files(&self, account_id: &str) -> HubResult<()> {
        if !storable(account_id) {
            return Ok(());
        }
        let account_id = account_id.to_string();
        self.run_index(move |index| index.purge(&account_id)).await
    }

    async fn claim(&self, key: &str, _expires_at: DateTime<Utc>) -> HubResult<bool> {
        // Local claims are few (one per fan-out step) and are kept: nothing sweeps them.
        let key = key.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = claim_path(root, &key);
            if path.exists() {
                return Ok(false);
            }
            write_durably(&path, &())?;
            Ok(true)
        })
        .await
    }

    async fn mark_push_pending(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> HubResult<bool> {
        if !storable(account_id) {
            return Ok(false);
        }
        let account_id = account_id.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = push_mark_path(root, &account_id);
            if read_json::<PushMark>(&path)?.is_some_and(|mark| mark.until > now) {
                return Ok(false);
            }
            write_durably(&path, &PushMark { until })?;
            Ok(true)
        })
        .await
    }

    async fn clear_push_pending(&self, account_id: &str) -> HubResult<()> {
        if !storable(account_id) {
            return Ok(());
        }
        let account_id = account_id.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            remove_durably(&push_mark_path(root, &account_id)).map(|_| ())
        })
        .await
    }

    async fn put_channel(&self, channel: &PushChannel) -> HubResult<()> {
        if !storable(&channel.id) || !storable(&channel.account_id) {
            return Err(HubError::internal("push channel key too long"));
        }
        let channel = channel.clone();
        self.run(move |root| {
            let _lock = lock(root)?;
            write_channel(root, &channel)
        })
        .await
    }

    async fn put_channel_if_account_live(&self, channel: &PushChannel) -> HubResult<Write> {
        if !storable(&channel.id) || !storable(&channel.account_id) {
            return Err(HubError::internal("push channel key too long"));
        }
        let channel = channel.clone();
        self.run(move |root| {
            // Under the lock that `delete_account` takes too: the account cannot go between
            // the check and the writes.
            let _lock = lock(root)?;
            if !account_live(root, &channel.account_id)? {
                return Ok(Write::Conflict);
            }
            write_channel(root, &channel)?;
            Ok(Write::Done)
        })
        .await
    }

    async fn get_channel(&self, provider: &str, id: &str) -> HubResult<Option<PushChannel>> {
        if !storable(id) {
            return Ok(None);
        }
        let path = channel_path(&self.root, provider, id);
        self.run(move |_| read_json::<PushChannel>(&path)).await
    }

    async fn get_channels(
        &self,
        provider: &str,
        ids: &[String],
        deadline: Deadline,
    ) -> HubResult<Vec<PushChannel>> {
        let paths: Vec<PathBuf> = distinct_keys(ids)
            .iter()
            .map(|id| channel_path(&self.root, provider, id))
            .collect();
        // One blocking task for the whole batch; a disk that stalls past the deadline fails
        // the read instead of holding the notification's answer.
        let read = self.run(move |_| {
            let mut channels = Vec::new();
            for path in paths {
                channels.extend(read_json::<PushChannel>(&path)?);
            }
            Ok(channels)
        });
        tokio::time::timeout(deadline.remaining(), read)
            .await
            .unwrap_or_else(|_| {
                Err(HubError::Unavailable(
                    "push channels not read by the deadline".into(),
                ))
            })
    }

    async fn account_channels(&self, account_id: &str) -> HubResult<Vec<PushChannel>> {
        if !storable(account_id) {
            return Ok(Vec::new());
        }
        let dir = account_channels_dir(&self.root, account_id);
        self.run(move |_| {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let mut channels = Vec::new();
            for entry in entries {
                let path = entry?.path();
                // Skips a write under way (`.tmp-*`).
                if path.extension().is_none_or(|ext| ext != "json") {
                    continue;
                }
                if let Some(channel) = read_json::<PushChannel>(&path)? {
                    channels.push(channel);
                }
            }
            channels.sort_by_key(|channel| channel.created_at);
            Ok(channels)
        })
        .await
    }

    async fn delete_channel(&self, channel: &PushChannel) -> HubResult<()> {
        if !storable(&channel.id) || !storable(&channel.account_id) {
            return Ok(());
        }
        let channel = channel.clone();
        self.run(move |root| {
            let _lock = lock(root)?;
            remove_durably(&channel_path(root, &channel.provider, &channel.id))?;
            remove_durably(&account_channel_path(root, &channel)).map(|_| ())
        })
        .await
    }

    async fn release_claim(&self, key: &str) -> HubResult<()> {
        let key = key.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            remove_durably(&claim_path(root, &key)).map(|_| ())
        })
        .await
    }

    async fn put_login_state(&self, state: &LoginState) -> HubResult<()> {
        let path = state_path(&self.root, &state.state);
        self.put_sweeping(path, state.clone()).await
    }

    async fn put_connect_session(&self, session: &ConnectSession) -> HubResult<()> {
        let path = session_path(&self.root, &session.id);
        self.put_sweeping(path, session.clone()).await
    }

    async fn get_connect_session(&self, id: &str) -> HubResult<Option<ConnectSession>> {
        if !storable(id) {
            return Ok(None);
        }
        let id = id.to_string();
        self.run(move |root| read_json(&session_path(root, &id)))
            .await
    }

    async fn spend_connect_session(&self, id: &str, now: DateTime<Utc>) -> HubResult<bool> {
        if !storable(id) {
            return Ok(false);
        }
        let id = id.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = session_path(root, &id);
            match read_json::<ConnectSession>(&path)? {
                Some(mut session) if session.usable(now) => {
                    session.spent = true;
                    write_durably(&path, &session)?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
        .await
    }

    async fn restore_connect_session(&self, id: &str) -> HubResult<bool> {
        if !storable(id) {
            return Ok(false);
        }
        let id = id.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = session_path(root, &id);
            match read_json::<ConnectSession>(&path)? {
                Some(mut session) if session.spent => {
                    session.spent = false;
                    write_durably(&path, &session)?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
        .await
    }

    async fn take_login_state(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> HubResult<Option<LoginState>> {
        if !storable(state) {
            return Ok(None);
        }
        let state = state.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = state_path(root, &state);
            let found = read_json::<LoginState>(&path)?;
            if found.is_some() {
                remove_durably(&path)?;
            }
            Ok(found.filter(|s| s.expires_at > now))
        })
        .await
    }

    async fn put_files(
        &self,
        account_id: &str,
        files: &[FileEntry],
        generation: u64,
        first_seq: u64,
    ) -> HubResult<()> {
        if !storable(account_id) {
            return Err(HubError::internal("account id too long for the file index"));
        }
        let (account_id, files) = (account_id.to_string(), files.to_vec());
        self.run_index(move |index| {
            index.put(&account_id, &files, generation, first_seq, Utc::now())
        })
        .await
    }

    async fn mark_unseen_deleted(
        &self,
        account_id: &str,
        generation: u64,
        after: Option<&str>,
        limit: usize,
        first_seq: u64,
    ) -> HubResult<(u64, Option<String>)> {
        self.mark_page(
            account_id,
            after,
            limit,
            first_seq,
            move |stored, seq, now| {
                stored
                    .unseen_since(generation)
                    .then(|| stored.reconciled(generation, seq, now))
            },
        )
        .await
    }

    /// Reads the account's entries a page at a time in file-id order and marks those at or
    /// under the path: a development store has no path index, and a page of `limit` entries
    /// is all it holds at once. `after` is the page's last file id.
    async fn mark_path_deleted(
        &self,
        account_id: &str,
        path_lower: &str,
        after: Option<&str>,
        limit: usize,
        first_seq: u64,
    ) -> HubResult<(u64, Option<String>)> {
        if !storable(account_id) {
            return Ok((0, None));
        }
        let path_lower = path_lower.to_string();
        self.mark_page(
            account_id,
            after,
            limit,
            first_seq,
            move |stored, seq, now| {
                stored
                    .removed_with(&path_lower)
                    .then(|| stored.removed(seq, now))
            },
        )
        .await
    }

    async fn last_seq(&self, account_id: &str) -> HubResult<u64> {
        if !storable(account_id) {
            return Ok(0);
        }
        let account_id = account_id.to_string();
        self.run_index(move |index| index.last_seq(&account_id))
            .await
    }

    async fn changes(
        &self,
        account_id: &str,
        after: Option<&FeedPosition>,
        watermark: u64,
        limit: usize,
    ) -> HubResult<FeedPage> {
        if !storable(account_id) {
            return Ok(FeedPage {
                entries: Vec::new(),
                has_more: false,
            });
        }
        let (account_id, after) = (account_id.to_string(), after.cloned());
        let (entries, has_more) = self
            .run_index(move |index| index.changes(&account_id, after.as_ref(), watermark, limit))
            .await?;
        Ok(FeedPage {
            entries: entries
                .into_iter()
                .map(|(seq, entry)| FeedEntry { seq, entry })
                .collect(),
            has_more,
        })
    }

    async fn list_files(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<FileEntry>> {
        if !storable(account_id) {
            return Ok(Page::empty());
        }
        let (account_id, after) = (account_id.to_string(), after.map(str::to_string));
        let page = self
            .run_index(move |index| index.page(&account_id, after.as_deref(), limit))
            .await?;
        Ok(Page {
            items: page.items.into_iter().map(|stored| stored.entry).collect(),
            next: page.next,
        })
    }
}
