//! The embedded store's file index and change feed: an LMDB environment (through `heed`)
//! under `HUB_DATA_DIR/index`, shared by the function processes of `cargo lambda watch`.
//!
//! A first sync writes its index a page at a time, and one JSON file and fsync per entry
//! made the local backend 89 times slower than the page fetches it stored. LMDB writes a
//! page in one transaction: one commit, two fsyncs, whatever the page's size. It is safe
//! across processes (its lock file serialises the writers with robust mutexes, so a writer
//! killed mid-transaction leaves nothing behind and blocks no one) and copy-on-write: a
//! reader sees the last commit, never half of a page, and a crash loses only the page whose
//! commit had not returned, which its sync, not having moved its cursor, lists again.
//!
//! Four databases, keyed by the account first so that an account's entries are one range:
//!
//! ```text
//! entries  <len(account)><account><file id>                    -> StoredFile as JSON
//! feed     <len(account)><account><seq: u64 BE><file id>         -> ()
//! places   <len(account)><account><len(drive)><drive><place>     -> ()
//! paths    <len(account)><account><path key> 0x00 <file id>      -> ()
//! ```
//!
//! `entries` is in file-id order, as DynamoDB's sort key: `/files` pages and the page-wise
//! markings walk it. `feed` is in feed-position order, as DynamoDB's `by-seq` index: the feed
//! and the account's last sequence number read only what they return. `places` is DynamoDB's
//! `by-folder` index (a drive's entries folder by folder, see `crate::store::place`) and
//! `paths` its `by-path` index: a folder or path listing reads only what it returns. Every
//! write of an entry moves its keys in the same transaction, so they never disagree. An
//! index written before `places` and `paths` existed gets them when it is opened
//! ([`SCHEMA`]).

use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::{fs, io};

use chrono::{DateTime, Utc};
use heed::types::{Bytes, Unit};
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, RoTxn, RwTxn, WithoutTls};

use super::super::{place_prefix, read_place, FeedPosition, Folder, Scan, StoredFile};
use crate::model::{FileEntry, Page};

/// The largest the index may grow. LMDB reserves it as address space, not disk: the data
/// file grows with what is stored.
const MAP_SIZE: usize = 16 << 30;

/// The layout version the `meta` database records: 1 once `places` and `paths` hold every
/// entry. An index without it (written before they existed) is brought to it when opened.
const SCHEMA: u32 = 1;
const SCHEMA_KEY: &[u8] = b"schema";

pub(super) struct FileIndex {
    env: Env<WithoutTls>,
    entries: Database<'static, Bytes, Bytes>,
    feed: Database<'static, Bytes, Unit>,
    places: Database<'static, Bytes, Unit>,
    paths: Database<'static, Bytes, Unit>,
    meta: Database<'static, Bytes, Bytes>,
}

impl std::fmt::Debug for FileIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileIndex")
            .field("path", &self.env.path())
            .finish_non_exhaustive()
    }
}

/// The indexes this process has open, by directory: LMDB must not be opened twice by one
/// process (heed refuses it), and the tests open many stores, some on the same directory.
/// Weak, so that an index closes with its last store.
static OPEN: LazyLock<Mutex<HashMap<PathBuf, Weak<FileIndex>>>> = LazyLock::new(Default::default);

fn heed_error(e: heed::Error) -> io::Error {
    match e {
        heed::Error::Io(e) => e,
        other => io::Error::other(format!("file index: {other}")),
    }
}

/// `<len(account)><account>`: what every key of the account starts with. The length byte
/// keeps one account's keys from running into another's whose id extends it.
fn account_prefix(account_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + account_id.len() + 48);
    // Account ids are at most `MAX_KEY_LEN` (100) bytes.
    key.push(account_id.len() as u8);
    key.extend_from_slice(account_id.as_bytes());
    key
}

fn entry_key(account_id: &str, file_id: &str) -> Vec<u8> {
    let mut key = account_prefix(account_id);
    key.extend_from_slice(file_id.as_bytes());
    key
}

fn feed_key(account_id: &str, seq: u64, file_id: &str) -> Vec<u8> {
    let mut key = account_prefix(account_id);
    key.extend_from_slice(&seq.to_be_bytes());
    key.extend_from_slice(file_id.as_bytes());
    key
}

/// The prefix of drive `drive_id`'s keys in `places`; `None` for a drive id too long to be
/// one (no provider's is: they are at most a hundred characters).
fn drive_prefix(account_id: &str, drive_id: &str) -> Option<Vec<u8>> {
    let len = u8::try_from(drive_id.len()).ok()?;
    let mut key = account_prefix(account_id);
    key.push(len);
    key.extend_from_slice(drive_id.as_bytes());
    Some(key)
}

fn place_key(account_id: &str, stored: &StoredFile) -> Option<Vec<u8>> {
    let (drive, place) = stored.drive_place()?;
    let mut key = drive_prefix(account_id, drive)?;
    key.extend_from_slice(place.as_bytes());
    Some(key)
}

fn path_key(account_id: &str, path: &str, file_id: &str) -> Vec<u8> {
    let mut key = account_prefix(account_id);
    key.extend_from_slice(path.as_bytes());
    key.push(0);
    key.extend_from_slice(file_id.as_bytes());
    key
}

fn stored_path_key(account_id: &str, stored: &StoredFile) -> Option<Vec<u8>> {
    let path = stored.path_lower.as_deref()?;
    Some(path_key(account_id, path, &stored.entry.id))
}

/// The path and file id of a `paths` key, given the length of its account prefix.
fn path_position(key: &[u8], prefix_len: usize) -> io::Result<(String, String)> {
    let rest = &key[prefix_len..];
    // Paths hold no NUL: the last one ends the path (file ids hold none either).
    let at = rest
        .iter()
        .rposition(|b| *b == 0)
        .ok_or_else(|| io::Error::other("file index: a path key without its file id"))?;
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(io::Error::other);
    Ok((text(&rest[..at])?, text(&rest[at + 1..])?))
}

/// The feed position a feed key names, given the length of its account prefix.
fn feed_position(key: &[u8], prefix_len: usize) -> io::Result<FeedPosition> {
    let rest = &key[prefix_len..];
    let (seq, file_id) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| io::Error::other("file index: a feed key without its sequence number"))?;
    Ok(FeedPosition {
        seq: u64::from_be_bytes(*seq),
        file_id: String::from_utf8(file_id.to_vec()).map_err(io::Error::other)?,
    })
}

fn open_env(dir: &Path) -> heed::Result<Env<WithoutTls>> {
    // Safety: the environment is opened once per process (the registry `OPEN`), with LMDB's
    // default, durable flags, on a local directory that only LMDB writes.
    unsafe {
        EnvOpenOptions::new()
            .read_txn_without_tls()
            .map_size(MAP_SIZE)
            .max_dbs(5)
            .open(dir)
    }
}

/// Where a scan of an account's keys starts: just after `after`, or at the account's first.
fn lower_bound<'k>(prefix: &'k [u8], after: Option<&'k [u8]>) -> Bound<&'k [u8]> {
    match after {
        Some(after) => Bound::Excluded(after),
        None => Bound::Included(prefix),
    }
}

/// Deletes every key of `db` that starts with `prefix`.
fn delete_prefix<DC>(
    db: &Database<'static, Bytes, DC>,
    txn: &mut RwTxn<'_>,
    prefix: &[u8],
) -> io::Result<()>
where
    DC: for<'a> heed::BytesDecode<'a> + 'static,
{
    let mut keys = db.prefix_iter_mut(txn, prefix).map_err(heed_error)?;
    while keys.next().transpose().map_err(heed_error)?.is_some() {
        // Safety: nothing borrowed from the deleted entry is kept.
        unsafe { keys.del_current() }.map_err(heed_error)?;
    }
    Ok(())
}

fn decode(bytes: &[u8]) -> io::Result<StoredFile> {
    serde_json::from_slice(bytes).map_err(io::Error::other)
}

fn encode(stored: &StoredFile) -> io::Result<Vec<u8>> {
    serde_json::to_vec(stored).map_err(io::Error::other)
}

impl FileIndex {
    /// The index in `dir` (created if need be), shared with the other stores of this process
    /// that opened it.
    pub fn open(dir: &Path) -> io::Result<Arc<FileIndex>> {
        fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let mut open = OPEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(index) = open.get(&dir).and_then(Weak::upgrade) {
            return Ok(index);
        }
        let env = match open_env(&dir) {
            // The last store of this index is being dropped on another thread, and its
            // environment is still closing: wait for it, then open anew.
            Err(heed::Error::EnvAlreadyOpened) => {
                if let Some(closing) = heed::env_closing_event(&dir) {
                    closing.wait_timeout(std::time::Duration::from_secs(5));
                }
                open_env(&dir)
            }
            opened => opened,
        }
        .map_err(heed_error)?;
        // Reader slots of processes that died (a killed `cargo lambda watch`) would otherwise
        // keep old pages from being reused.
        env.clear_stale_readers().map_err(heed_error)?;
        let txn = env.write_txn().map_err(heed_error)?;
        let (entries, feed, places, paths, meta) = env
            .create_databases_and_commit(txn, |opener, txn| -> heed::Result<_> {
                let entries = opener.create_database(txn, Some("entries"))?;
                let feed = opener.create_database(txn, Some("feed"))?;
                let places = opener.create_database(txn, Some("places"))?;
                let paths = opener.create_database(txn, Some("paths"))?;
                let meta = opener.create_database(txn, Some("meta"))?;
                Ok(CommitOrAbort::<_, ()>::Commit((
                    entries, feed, places, paths, meta,
                )))
            })
            .map_err(heed_error)?
            .unwrap_commit();
        let index = FileIndex {
            env,
            entries,
            feed,
            places,
            paths,
            meta,
        };
        index.migrate()?;
        let index = Arc::new(index);
        open.retain(|_, index| index.strong_count() > 0);
        open.insert(dir, Arc::downgrade(&index));
        Ok(index)
    }

    /// Brings an index written by an earlier version to [`SCHEMA`]: gives every entry its
    /// `places` and `paths` keys, in one transaction with the version's mark, so that a crash
    /// half-way leaves the old layout, migrated again at the next open.
    fn migrate(&self) -> io::Result<()> {
        let mut txn = self.write()?;
        let version = self
            .meta
            .get(&txn, SCHEMA_KEY)
            .map_err(heed_error)?
            .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
            .map_or(0, u32::from_be_bytes);
        if version >= SCHEMA {
            return Ok(());
        }
        let mut keys = Vec::new();
        for item in self.entries.iter(&txn).map_err(heed_error)? {
            let (key, value) = item.map_err(heed_error)?;
            let account_len = usize::from(*key.first().unwrap_or(&0));
            let account_id = key
                .get(1..1 + account_len)
                .map(|id| String::from_utf8_lossy(id).into_owned())
                .unwrap_or_default();
            let stored = decode(value)?;
            keys.extend(place_key(&account_id, &stored).map(|key| (true, key)));
            keys.extend(stored_path_key(&account_id, &stored).map(|key| (false, key)));
        }
        for (place, key) in keys {
            let db = if place { &self.places } else { &self.paths };
            db.put(&mut txn, &key, &()).map_err(heed_error)?;
        }
        self.meta
            .put(&mut txn, SCHEMA_KEY, &SCHEMA.to_be_bytes())
            .map_err(heed_error)?;
        txn.commit().map_err(heed_error)
    }

    fn read(&self) -> io::Result<RoTxn<'_, WithoutTls>> {
        self.env.read_txn().map_err(heed_error)
    }

    fn write(&self) -> io::Result<RwTxn<'_>> {
        self.env.write_txn().map_err(heed_error)
    }

    fn get(&self, txn: &RoTxn<'_, WithoutTls>, key: &[u8]) -> io::Result<Option<StoredFile>> {
        self.entries
            .get(txn, key)
            .map_err(heed_error)?
            .map(decode)
            .transpose()
    }

    /// Removes the feed, place and path keys of `old`, a state of an entry.
    fn unkey(&self, txn: &mut RwTxn<'_>, account_id: &str, old: &StoredFile) -> io::Result<()> {
        if let Some(seq) = old.seq {
            self.feed
                .delete(txn, &feed_key(account_id, seq, &old.entry.id))
                .map_err(heed_error)?;
        }
        if let Some(key) = place_key(account_id, old) {
            self.places.delete(txn, &key).map_err(heed_error)?;
        }
        if let Some(key) = stored_path_key(account_id, old) {
            self.paths.delete(txn, &key).map_err(heed_error)?;
        }
        Ok(())
    }

    /// Stores `stored` in place of the state `old`, moving its feed, place and path keys.
    fn replace(
        &self,
        txn: &mut RwTxn<'_>,
        account_id: &str,
        old: Option<&StoredFile>,
        stored: &StoredFile,
    ) -> io::Result<()> {
        let id = &stored.entry.id;
        if let Some(old) = old {
            self.unkey(txn, account_id, old)?;
        }
        self.entries
            .put(txn, &entry_key(account_id, id), &encode(stored)?)
            .map_err(heed_error)?;
        if let Some(seq) = stored.seq {
            self.feed
                .put(txn, &feed_key(account_id, seq, id), &())
                .map_err(heed_error)?;
        }
        if let Some(key) = place_key(account_id, stored) {
            self.places.put(txn, &key, &()).map_err(heed_error)?;
        }
        if let Some(key) = stored_path_key(account_id, stored) {
            self.paths.put(txn, &key, &()).map_err(heed_error)?;
        }
        Ok(())
    }

    /// Stores a page of a listing, numbered from `first_seq`, in one transaction.
    pub fn put(
        &self,
        account_id: &str,
        files: &[FileEntry],
        generation: u64,
        first_seq: u64,
        now: DateTime<Utc>,
    ) -> io::Result<()> {
        let mut txn = self.write()?;
        for (seq, file) in (first_seq..).zip(files) {
            let old = self.get(&txn, &entry_key(account_id, &file.id))?;
            if StoredFile::unknown_removal(file, old.as_ref().map(|old| &old.entry)) {
                continue;
            }
            let known = old
                .as_ref()
                .filter(|_| file.deleted)
                .map(|old| old.entry.clone());
            let stored = StoredFile::stamped(file, known, generation, seq, now);
            self.replace(&mut txn, account_id, old.as_ref(), &stored)?;
        }
        txn.commit().map_err(heed_error)
    }

    /// Reads up to `limit` entries after file id `after` and rewrites, in the same
    /// transaction, those `mark` gives a new state for, numbered from `first_seq`: how many,
    /// and the page's last file id when the page is full.
    pub fn mark_page(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
        first_seq: u64,
        mark: impl Fn(StoredFile, u64, DateTime<Utc>) -> Option<StoredFile>,
    ) -> io::Result<(u64, Option<String>)> {
        let mut txn = self.write()?;
        let page = self.page_in(&txn, account_id, after, limit)?;
        let now = Utc::now();
        let mut marked = 0;
        for stored in page.items {
            let old = stored.clone();
            if let Some(state) = mark(stored, first_seq + marked, now) {
                self.replace(&mut txn, account_id, Some(&old), &state)?;
                marked += 1;
            }
        }
        txn.commit().map_err(heed_error)?;
        Ok((marked, page.next))
    }

    /// The entry of one file, as stored.
    pub fn entry(&self, account_id: &str, file_id: &str) -> io::Result<Option<StoredFile>> {
        self.get(&self.read()?, &entry_key(account_id, file_id))
    }

    /// Up to `limit` entries after file id `after`, in file-id order.
    pub fn page(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> io::Result<Page<StoredFile>> {
        self.page_in(&self.read()?, account_id, after, limit)
    }

    fn page_in(
        &self,
        txn: &RoTxn<'_, WithoutTls>,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> io::Result<Page<StoredFile>> {
        let prefix = account_prefix(account_id);
        let start = after.map(|after| entry_key(account_id, after));
        let lower = lower_bound(&prefix, start.as_deref());
        let mut items = Vec::new();
        for item in self
            .entries
            .range(txn, &(lower, Bound::Unbounded))
            .map_err(heed_error)?
        {
            let (key, value) = item.map_err(heed_error)?;
            if !key.starts_with(&prefix) || items.len() == limit {
                break;
            }
            items.push(decode(value)?);
        }
        let next = (items.len() == limit)
            .then(|| {
                items
                    .last()
                    .map(|stored: &StoredFile| stored.entry.id.clone())
            })
            .flatten();
        Ok(Page { items, next })
    }

    /// Up to `limit` keys of drive `drive_id` (in `folder` only, when given) after the place
    /// `after`, their entries (tombstones only, or none, as `deleted` says), and the last
    /// place read when the page is full.
    pub fn folder_page(
        &self,
        account_id: &str,
        drive_id: &str,
        folder: Option<&Folder>,
        deleted: Option<bool>,
        after: Option<&str>,
        limit: usize,
    ) -> io::Result<Scan> {
        let Some(drive) = drive_prefix(account_id, drive_id) else {
            return Ok(Scan::default());
        };
        let txn = self.read()?;
        let mut prefix = drive.clone();
        if let Some(folder) = folder {
            prefix.extend_from_slice(place_prefix(folder).as_bytes());
        }
        let start = after.map(|after| [drive.as_slice(), after.as_bytes()].concat());
        let lower = lower_bound(&prefix, start.as_deref());
        let mut scan = Scan::default();
        let mut last = None;
        for item in self
            .places
            .range(&txn, &(lower, Bound::Unbounded))
            .map_err(heed_error)?
        {
            let (key, ()) = item.map_err(heed_error)?;
            if !key.starts_with(&prefix) || scan.read == limit as u64 {
                break;
            }
            let place = String::from_utf8(key[drive.len()..].to_vec()).map_err(io::Error::other)?;
            let (_, file_id) = read_place(&place)
                .ok_or_else(|| io::Error::other("file index: a malformed place key"))?;
            scan.read += 1;
            last = Some(place);
            let stored = self.get(&txn, &entry_key(account_id, &file_id))?;
            if let Some(stored) =
                stored.filter(|stored| deleted.is_none_or(|d| stored.entry.deleted == d))
            {
                scan.items.push(stored.entry);
            }
        }
        scan.next = last.filter(|_| scan.read == limit as u64);
        Ok(scan)
    }

    /// Up to `limit` entries whose path key starts with `prefix`, in path order after the
    /// position `after` (path and file id), and that position of the last one when the page
    /// is full.
    pub fn path_page(
        &self,
        account_id: &str,
        prefix: &str,
        after: Option<(String, String)>,
        limit: usize,
    ) -> io::Result<(Scan, Option<(String, String)>)> {
        let txn = self.read()?;
        let account = account_prefix(account_id);
        let key_prefix = [account.as_slice(), prefix.as_bytes()].concat();
        let start = after.map(|(path, id)| path_key(account_id, &path, &id));
        let lower = lower_bound(&key_prefix, start.as_deref());
        let mut scan = Scan::default();
        let mut last = None;
        for item in self
            .paths
            .range(&txn, &(lower, Bound::Unbounded))
            .map_err(heed_error)?
        {
            let (key, ()) = item.map_err(heed_error)?;
            if !key.starts_with(&key_prefix) || scan.read == limit as u64 {
                break;
            }
            let (path, file_id) = path_position(key, account.len())?;
            scan.read += 1;
            if let Some(stored) = self.get(&txn, &entry_key(account_id, &file_id))? {
                scan.items.push(stored.entry);
            }
            last = Some((path, file_id));
        }
        let next = last.filter(|_| scan.read == limit as u64);
        Ok((scan, next))
    }

    /// The account's highest feed sequence number, 0 when it has none.
    pub fn last_seq(&self, account_id: &str) -> io::Result<u64> {
        let txn = self.read()?;
        let prefix = account_prefix(account_id);
        let last = self
            .feed
            .rev_prefix_iter(&txn, &prefix)
            .map_err(heed_error)?
            .next()
            .transpose()
            .map_err(heed_error)?;
        match last {
            Some((key, ())) => Ok(feed_position(key, prefix.len())?.seq),
            None => Ok(0),
        }
    }

    /// Up to `limit` feed entries after `after` and at most at `watermark`, in position
    /// order, and whether more such entries follow.
    pub fn changes(
        &self,
        account_id: &str,
        after: Option<&FeedPosition>,
        watermark: u64,
        limit: usize,
    ) -> io::Result<(Vec<(u64, FileEntry)>, bool)> {
        let txn = self.read()?;
        let prefix = account_prefix(account_id);
        let start = after.map(|after| feed_key(account_id, after.seq, &after.file_id));
        let lower = lower_bound(&prefix, start.as_deref());
        let mut entries = Vec::new();
        for item in self
            .feed
            .range(&txn, &(lower, Bound::Unbounded))
            .map_err(heed_error)?
        {
            let (key, ()) = item.map_err(heed_error)?;
            if !key.starts_with(&prefix) {
                break;
            }
            let position = feed_position(key, prefix.len())?;
            if position.seq > watermark {
                break;
            }
            if entries.len() == limit {
                return Ok((entries, true));
            }
            let stored = self.get(&txn, &entry_key(account_id, &position.file_id))?;
            if let Some(stored) = stored.filter(|stored| stored.seq == Some(position.seq)) {
                entries.push((position.seq, stored.entry));
            }
        }
        Ok((entries, false))
    }

    /// Removes the account's entries and feed, in one transaction.
    pub fn purge(&self, account_id: &str) -> io::Result<()> {
        let prefix = account_prefix(account_id);
        let mut txn = self.write()?;
        delete_prefix(&self.entries, &mut txn, &prefix)?;
        delete_prefix(&self.feed, &mut txn, &prefix)?;
        delete_prefix(&self.places, &mut txn, &prefix)?;
        delete_prefix(&self.paths, &mut txn, &prefix)?;
        txn.commit().map_err(heed_error)
    }

    /// Removes up to `limit` of the account's entries (first in file-id order) and their
    /// feed keys, in one transaction: true when none is left.
    pub fn purge_page(&self, account_id: &str, limit: usize) -> io::Result<bool> {
        let mut txn = self.write()?;
        let page = self.page_in(&txn, account_id, None, limit)?;
        for stored in &page.items {
            self.entries
                .delete(&mut txn, &entry_key(account_id, &stored.entry.id))
                .map_err(heed_error)?;
            self.unkey(&mut txn, account_id, stored)?;
        }
        let done = page.next.is_none();
        if done {
            // Feed, place and path keys always move with their entries; this is only the
            // belt to that.
            let prefix = account_prefix(account_id);
            delete_prefix(&self.feed, &mut txn, &prefix)?;
            delete_prefix(&self.places, &mut txn, &prefix)?;
            delete_prefix(&self.paths, &mut txn, &prefix)?;
        }
        txn.commit().map_err(heed_error)?;
        Ok(done)
    }

    /// Brings in the index of an earlier version of the store, one JSON file per entry
    /// under `files/<hex account id>/`, then removes those files. Entries the index already
    /// holds are kept: a crash between the commit and the removal imports the same files
    /// again, and by then a sync may have stored newer states.
    pub fn import_json_layout(&self, files_dir: &Path) -> io::Result<()> {
        if !files_dir.exists() {
            return Ok(());
        }
        for account_dir in fs::read_dir(files_dir)? {
            let account_dir = account_dir?.path();
            let name = account_dir
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            // `.deleted-*`: a purge that a crash interrupted.
            let account_id = hex::decode(&name)
                .ok()
                .and_then(|id| String::from_utf8(id).ok());
            if let (Some(account_id), false) = (account_id, name.starts_with('.')) {
                let mut txn = self.write()?;
                for file in fs::read_dir(&account_dir)? {
                    let path = file?.path();
                    if path.extension().is_none_or(|ext| ext != "json") {
                        continue; // a `.tmp-*` file a crash left
                    }
                    let stored = decode(&fs::read(&path)?)?;
                    let key = entry_key(&account_id, &stored.entry.id);
                    if self.entries.get(&txn, &key).map_err(heed_error)?.is_none() {
                        self.replace(&mut txn, &account_id, None, &stored)?;
                    }
                }
                txn.commit().map_err(heed_error)?;
            }
            fs::remove_dir_all(&account_dir)?;
        }
        fs::remove_dir(files_dir)
    }
}

#[cfg(test)]
mod tests;
