//! The file index role: index entries, their removals, and the change feed read from them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::HubResult;
use crate::model::{FileEntry, Page, PathRemoval};

#[async_trait]
pub trait FileStore: Send + Sync {
    /// Deletes every index entry of an account. A sync that finds its account deleted calls
    /// it after its last write, so entries it stored after the delete's own purge go too.
    async fn purge_files(&self, account_id: &str) -> HubResult<()>;

    /// Upserts index entries seen by enumeration `generation`, stamping each with the time
    /// it was stored (`changed_at`) and with the feed's sequence numbers `first_seq`,
    /// `first_seq + 1`, ... in the order given. A deleted entry keeps the metadata already
    /// known for the file, since providers report removals with little more than the id; a
    /// removal by id alone of an entry the index never held is left out
    /// ([`StoredFile::unknown_removal`]). The caller passes each id once.
    async fn put_files(
        &self,
        account_id: &str,
        files: &[FileEntry],
        generation: u64,
        first_seq: u64,
    ) -> HubResult<()>;

    /// Marks deleted, in one page of the index in file-id order after `after`, the live
    /// entries last seen before enumeration `generation`: what a restarted enumeration did
    /// not see again is gone at the provider. The tombstones take the sequence numbers
    /// from `first_seq` on. Returns how many it marked and where the next page starts
    /// (`None` at the end). Idempotent: a reconciliation killed half-way is simply run again.
    async fn mark_unseen_deleted(
        &self,
        account_id: &str,
        generation: u64,
        after: Option<&str>,
        limit: usize,
        first_seq: u64,
    ) -> HubResult<(u64, Option<String>)>;

    /// Marks deleted, in one page, the live entries whose path key ([`FileEntry::path_key`])
    /// `removal` names ([`PathRemoval::removes`]): a file, or a folder with everything under
    /// it, removed or replaced at the provider. The tombstones take the sequence numbers from `first_seq`
    /// on. `after` is where the previous page ended: an opaque position of this store.
    /// Returns how many it marked and where the next page starts (`None` at the end).
    /// Idempotent: entries already deleted are left as they are.
    async fn mark_path_deleted(
        &self,
        account_id: &str,
        removal: &PathRemoval,
        after: Option<&str>,
        limit: usize,
        first_seq: u64,
    ) -> HubResult<(u64, Option<String>)>;

    /// The highest sequence number among the account's entries (0 when none has one): what
    /// a sync that crashed between storing a page and committing it may have left above the
    /// watermark. One small read, whatever the size of the index.
    async fn last_seq(&self, account_id: &str) -> HubResult<u64>;

    /// Up to `limit` entries of the account's change feed, in sequence order, after the
    /// position `after` (from the start when `None`) and at most at `watermark`. Entries
    /// stored before the feed existed (without a sequence number) are not in it.
    async fn changes(
        &self,
        account_id: &str,
        after: Option<&FeedPosition>,
        watermark: u64,
        limit: usize,
    ) -> HubResult<FeedPage>;

    /// One entry of an account's index, deleted or not; `None` when the index has none.
    async fn get_file(&self, account_id: &str, file_id: &str) -> HubResult<Option<FileEntry>>;

    /// One page of an account's index in file-id order, starting after the file id `after`.
    async fn list_files(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<FileEntry>>;

    /// The entries of drive `drive_id` in the folder index ([`place`]): those `in_folder`
    /// only when given, else the whole drive, in the index's order, after the opaque
    /// position `after` (a [`Scan::next`] of the same listing). Reads at most `limit` index
    /// items; `deleted` keeps only tombstones (`Some(true)`) or leaves them out
    /// (`Some(false)`) before any entry is read.
    async fn list_folder(
        &self,
        account_id: &str,
        drive_id: &str,
        in_folder: Option<&Folder>,
        deleted: Option<bool>,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Scan>;

    /// The entries whose path key is `prefix` or starts with it (`prefix` in lower case, as
    /// [`FileEntry::path_key`]), in path order, after the opaque position `after`, reading at
    /// most `limit` index items.
    async fn list_under_path(
        &self,
        account_id: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Scan>;
}

/// A page of a listing through one of the index's secondary orders (folder or path): the
/// entries found, where the next page starts (`None` at the end), and how many index items
/// it read, the page's cost.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Scan {
    pub items: Vec<FileEntry>,
    pub next: Option<String>,
    pub read: u64,
}

/// The folder an entry is listed under in its drive's folder index: its parent folder's id;
/// for entries without parent ids (Dropbox, whose `parent_ids` are always `[]`) the path of
/// the folder above it; and the top of its drive when it has neither a parent nor a folder
/// above its path (Dropbox's top level, Google files shared with the user from a folder they
/// cannot see).
///
/// One folder per entry, the first of its `parent_ids`: Google Drive gives an item one
/// parent since 2020 (<https://developers.google.com/drive/api/guides/ref-single-parent>),
/// and the other providers always did. An entry whose top is the provider's root folder
/// (Drive's My Drive, a shared drive, OneDrive's root item, Box's folder `0`) is listed under
/// that folder's id: the index never holds those roots, so `crate::queries` finds a drive's
/// root as the folder above its entries that the index does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Folder {
    Top,
    Id(String),
    Path(String),
}

impl Folder {
    /// Where `entry` is listed.
    pub fn of(entry: &FileEntry) -> Folder {
        if let Some(parent) = entry.parent_ids.as_ref().and_then(|ids| ids.first()) {
            return Folder::Id(parent.clone());
        }
        match entry
            .path_key()
            .as_deref()
            .and_then(|key| key.rsplit_once('/'))
        {
            Some((above, _)) if !above.is_empty() => Folder::Path(above.to_string()),
            _ => Folder::Top,
        }
    }

    /// The folder's key in the index: its kind and name, so that an id never passes for a
    /// path.
    pub fn key(&self) -> String {
        match self {
            Folder::Top => "r".to_string(),
            Folder::Id(id) => format!("i:{id}"),
            Folder::Path(path) => format!("p:{path}"),
        }
    }

    /// The folder of a [`Folder::key`].
    pub fn from_key(key: &str) -> Option<Folder> {
        match key.split_at_checked(2) {
            _ if key == "r" => Some(Folder::Top),
            Some(("i:", id)) => Some(Folder::Id(id.to_string())),
            Some(("p:", path)) => Some(Folder::Path(path.to_string())),
            _ => None,
        }
    }
}

/// An entry's place in its drive's folder index, the order of [`FileStore::list_folder`]:
/// its folder's key, length first so that no key runs into the next, then its file id. Every
/// folder's entries are one range, in file-id order.
pub fn place(folder: &Folder, file_id: &str) -> String {
    format!("{}{file_id}", place_prefix(folder))
}

/// What every place in `folder` starts with.
pub fn place_prefix(folder: &Folder) -> String {
    let key = folder.key();
    format!("{:04x}{key}", key.len())
}

/// The place just past the top of a drive and before every other folder's entries: where a
/// listing that skips the top starts.
pub fn past_top() -> String {
    // The top's key is the only one of length 1; every other starts with `0002` or more.
    "0001s".to_string()
}

/// The folder and file id of a [`place`], if it is one.
pub fn read_place(place: &str) -> Option<(Folder, String)> {
    let len = usize::from_str_radix(place.get(..4)?, 16).ok()?;
    let key = place.get(4..4 + len)?;
    Some((Folder::from_key(key)?, place[4 + len..].to_string()))
}

/// Fills the blanks of a tombstone from what the index knew of the entry.
pub(crate) fn merge_tombstone(tombstone: &FileEntry, known: Option<FileEntry>) -> FileEntry {
    match known {
        Some(known) => FileEntry {
            id: tombstone.id.clone(),
            name: if tombstone.name.is_empty() {
                known.name
            } else {
                tombstone.name.clone()
            },
            kind: tombstone.kind.or(known.kind),
            mime_type: tombstone.mime_type.clone().or(known.mime_type),
            size: tombstone.size.or(known.size),
            modified_at: tombstone.modified_at.or(known.modified_at),
            web_url: tombstone.web_url.clone().or(known.web_url),
            deleted: true,
            parent_ids: tombstone.parent_ids.clone().or(known.parent_ids),
            drive_id: tombstone.drive_id.clone().or(known.drive_id),
            path: tombstone.path.clone().or(known.path),
            path_lower: tombstone.path_lower.clone().or(known.path_lower),
            content_hash: tombstone.content_hash.clone().or(known.content_hash),
            target_id: tombstone.target_id.clone().or(known.target_id),
            changed_at: tombstone.changed_at,
        },
        None => tombstone.clone(),
    }
}

/// A place in an account's change feed: the sequence number of an entry, and its file id
/// (which orders entries should two ever share a number).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeedPosition {
    pub seq: u64,
    pub file_id: String,
}

/// An entry of the change feed, at its position.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedEntry {
    pub seq: u64,
    pub entry: FileEntry,
}

/// One page of the change feed; `has_more` while entries at most at the watermark remain.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedPage {
    pub entries: Vec<FeedEntry>,
    pub has_more: bool,
}

/// An index entry as stored: the entry, the enumeration it was last seen in, and its place
/// in the change feed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredFile {
    #[serde(flatten)]
    pub entry: FileEntry,
    /// [`crate::model::Listing::generation`] when this state was stored (0 before v2).
    #[serde(default)]
    pub generation: u64,
    /// The feed's sequence number of this state. Absent on entries stored before the feed
    /// existed, and left out rather than written as null: DynamoDB refuses a null index key,
    /// and an absent one keeps the entry out of the sparse `by-seq` index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The entry's path key, for removals by path (the sort key of DynamoDB's sparse `by-path`
    /// index): absent where the provider gives no path, and for paths longer than an index
    /// key may be ([`MAX_PATH_KEY_LEN`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_lower: Option<String>,
}

/// DynamoDB's limit on a sort key, in bytes. Dropbox paths are far shorter in practice; an
/// entry with a longer one is stored without a path key, and only a removal of its own id
/// (not of a folder above it) marks it deleted.
pub const MAX_PATH_KEY_LEN: usize = 1024;

impl StoredFile {
    /// Whether `file` is a removal, by id alone, of an entry the index never held (`known`
    /// is what it holds): nothing to mark, and a tombstone without a name would tell a reader
    /// nothing. Providers report such removals (Drive, for files of a drive the hub does not
    /// list); the store leaves them out, its sequence number unused.
    pub fn unknown_removal(file: &FileEntry, known: Option<&FileEntry>) -> bool {
        file.deleted && file.name.is_empty() && known.is_none()
    }

    /// `file` as it goes into the index now: a tombstone completed from what was `known`,
    /// stamped with the time, the enumeration and its feed sequence number.
    pub fn stamped(
        file: &FileEntry,
        known: Option<FileEntry>,
        generation: u64,
        seq: u64,
        now: DateTime<Utc>,
    ) -> Self {
        let mut entry = if file.deleted {
            merge_tombstone(file, known)
        } else {
            file.clone()
        };
        entry.changed_at = Some(now);
        let path_lower = entry
            .path_key()
            .filter(|key| !key.is_empty() && key.len() <= MAX_PATH_KEY_LEN);
        StoredFile {
            entry,
            generation,
            seq: Some(seq),
            path_lower,
        }
    }

    /// The folder it is listed under ([`Folder::of`]), from the path key the store keeps.
    pub fn folder(&self) -> Folder {
        let mut entry = self.entry.clone();
        entry.path_lower = self.path_lower.clone().or(entry.path_lower);
        Folder::of(&entry)
    }

    /// Its place in its drive's folder index: the drive and the [`place`]; `None` for an entry
    /// without a drive (a removal of an entry the index knew without one).
    pub fn drive_place(&self) -> Option<(&str, String)> {
        let drive = self.entry.drive_id.as_deref()?;
        Some((drive, place(&self.folder(), &self.entry.id)))
    }

    /// Whether `removal` marks it deleted: it is live, and its path is one the removal names.
    pub fn removed_with(&self, removal: &PathRemoval) -> bool {
        !self.entry.deleted
            && self
                .path_lower
                .as_deref()
                .is_some_and(|key| removal.removes(&self.entry.id, key))
    }

    /// The tombstone a removal by path stores in its place, at feed position `seq`. It keeps
    /// its generation: a removal is no sighting.
    pub fn removed(mut self, seq: u64, now: DateTime<Utc>) -> Self {
        self.entry.deleted = true;
        self.entry.changed_at = Some(now);
        self.seq = Some(seq);
        self
    }

    /// Whether a reconciliation at the end of enumeration `generation` marks it deleted: it
    /// is live and was not seen by that enumeration.
    pub fn unseen_since(&self, generation: u64) -> bool {
        !self.entry.deleted && self.generation < generation
    }

    /// The tombstone a reconciliation stores in its place, at feed position `seq`.
    pub fn reconciled(mut self, generation: u64, seq: u64, now: DateTime<Utc>) -> Self {
        self.entry.deleted = true;
        self.entry.changed_at = Some(now);
        self.generation = generation;
        self.seq = Some(seq);
        self
    }
}
