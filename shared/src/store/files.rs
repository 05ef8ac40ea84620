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
