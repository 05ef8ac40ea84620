//! Storage of accounts, pending logins and file indexes: DynamoDB in AWS, files on disk
//! locally. Both give the same guarantees, checked by one behavioural test suite:
//! - an account and its provider-identity record are created together or not at all, so a
//!   second login with the same identity finds and updates the same account;
//! - account updates are conditional on the version read, so a stale writer loses cleanly;
//! - a login state is consumed at most once, and an expired one is absent;
//! - accounts are keyed by owner, provider and provider identity: one identity connected by
//!   two owners is two accounts (accounts without an owner keep their version 1 keys);
//! - a connect session is spent at most once (a conditional write), and never once expired;
//! - file index writes are upserts;
//! - deleting an account first replaces it with a tombstone (no token, invisible to every
//!   read, its identity released) and removes its index, channels and push mark in bounded
//!   steps after, the tombstone last: a delete cut at any step is finished by running it
//!   again;
//! - every entry written carries the change feed's sequence number it was given, and the feed
//!   reads entries in that order up to a watermark;
//! - a push channel is found by its id alone (or many at once, batched), and deleting an
//!   account deletes its channels; a channel written on the condition that its account is
//!   live is not written once the account is gone;
//! - a push mark is taken by one caller at a time, until it is cleared or expires;
//! - a removal by path marks deleted the entry at that path and every entry under it, a page
//!   at a time, without reading the account's whole index at once.

pub mod dynamo;
pub mod local;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::deadline::Deadline;
use crate::error::HubResult;
use crate::model::{
    Account, AccountView, ConnectSession, Deletion, FileEntry, LoginState, Page, PushChannel,
};

/// How many index entries one [`Store::purge_page`] of a delete removes: a DynamoDB query
/// page and 20 `BatchWriteItem` calls, about a second, so that a purge bounded by a deadline
/// overshoots it by little.
pub const PURGE_PAGE: usize = 500;

/// Reads and tombstone writes [`Store::delete_account`] tries while syncs keep changing the
/// account.
const DELETE_ATTEMPTS: usize = 5;

/// How a conditional write ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Write {
    Done,
    /// The condition failed: the record changed (or appeared, or vanished) since it was read.
    Conflict,
}

/// How a write of an account that also spends a connect session ended: both happened, or
/// neither did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum SpendingWrite {
    Done,
    /// The account's condition failed (it changed, appeared or vanished since it was read):
    /// read it again and retry.
    Conflict,
    /// The session is spent, expired or gone: another callback of it connected first.
    SessionUnusable,
}

impl From<Write> for SpendingWrite {
    /// A write that spends no session.
    fn from(write: Write) -> Self {
        match write {
            Write::Done => SpendingWrite::Done,
            Write::Conflict => SpendingWrite::Conflict,
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn get_account(&self, id: &str) -> HubResult<Option<Account>>;

    /// The account of a provider identity for `owner` (`None`: the accounts of logins
    /// without a session), if one is connected.
    async fn find_account(
        &self,
        owner: Option<&str>,
        provider: &str,
        provider_user_id: &str,
    ) -> HubResult<Option<Account>>;

    /// The ids of the accounts holding a provider identity, whatever their owner: what
    /// `DELETE` looks at before it revokes a grant that other accounts share. May name an
    /// account a crash left half-created; callers read the accounts they act on.
    async fn identity_holders(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> HubResult<Vec<String>>;

    /// Creates the account and its identity record (for its owner) together. `Conflict`
    /// when the owner already has this identity connected (a concurrent login won).
    async fn create_account(&self, account: &Account) -> HubResult<Write>;

    /// Replaces the account if its stored version is still `expected_version`. The caller
    /// passes the account with its version already advanced.
    async fn update_account(&self, account: &Account, expected_version: u64) -> HubResult<Write>;

    /// One page of a provider's accounts in id order, starting after `after`.
    async fn list_accounts(
        &self,
        provider: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<Account>>;

    /// One page of the `/users` rows of the accounts in `scope`, in id order, starting after
    /// the account id `after`. Reads only what a row shows: never the sealed tokens, so a
    /// page of a thousand rows stays small.
    async fn list_account_views(
        &self,
        scope: &AccountScope,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<AccountView>>;

    /// One page of the ids of a provider's active accounts in id order, starting after
    /// `after`: what fan-out needs, without reading whole accounts. `next` is set while
    /// accounts remain, even when this page holds no active one.
    async fn list_active_account_ids(
        &self,
        provider: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<String>>;

    /// Replaces the account with its tombstone `deletion` (see [`Deletion`]) if the stored
    /// account is still live at `account.version`, removing its identity and owner records
    /// with it: from then on no read of accounts returns it, no login finds it by its
    /// identity, no listing shows it, and no sync's conditional write of it succeeds.
    /// `Conflict` when the account changed, is gone, or is being deleted already.
    async fn begin_deletion(&self, account: &Account, deletion: &Deletion) -> HubResult<Write>;

    /// The tombstone of an account being deleted; `None` for a live account, and for an
    /// account that is not there at all.
    async fn get_deletion(&self, id: &str) -> HubResult<Option<Deletion>>;

    /// Replaces the tombstone if its stored version is still `expected_version` (the caller
    /// passes it with its version already advanced).
    async fn update_deletion(&self, deletion: &Deletion, expected_version: u64)
        -> HubResult<Write>;

    /// Deletes up to `limit` of the account's index entries, with their places in the feed:
    /// true when none is left. One bounded step of a purge, so that a caller with a deadline
    /// can stop between two.
    async fn purge_page(&self, account_id: &str, limit: usize) -> HubResult<bool>;

    /// The last step of a delete, once the index is empty: removes the account's push
    /// channels (both records of each), its push mark and (locally) an identity record a
    /// crash left pointing at it, then the tombstone itself if it is still at
    /// `deletion.version`. `Conflict` (the tombstone changed or is gone) leaves it as it is.
    async fn end_deletion(&self, deletion: &Deletion) -> HubResult<Write>;

    /// Deletes the account and everything of it at once, unbounded in time: begins its
    /// deletion, purges its index, ends the deletion. False when there was no live account;
    /// what a tombstone or a late page of a sync left is removed then too. Sends no event:
    /// `DELETE /users/{id}` is [`crate::purge`]'s, which announces the delete once and
    /// bounds every step by the request's deadline.
    async fn delete_account(&self, id: &str) -> HubResult<bool> {
        let mut existed = false;
        for _ in 0..DELETE_ATTEMPTS {
            let Some(account) = self.get_account(id).await? else {
                break;
            };
            let event = crate::events::Event::deleted(&account).produce(Utc::now())?;
            let deletion = Deletion::of(&account, event, Utc::now());
            if self.begin_deletion(&account, &deletion).await? == Write::Done {
                existed = true;
                break;
            }
        }
        if let Some(deletion) = self.get_deletion(id).await? {
            while !self.purge_page(id, PURGE_PAGE).await? {}
            if self.end_deletion(&deletion).await? == Write::Conflict {
                return Err(crate::error::HubError::internal(
                    "the account's tombstone changed during its delete",
                ));
            }
        } else if !existed && self.get_account(id).await?.is_some() {
            return Err(crate::error::HubError::internal(
                "the account kept changing during its delete",
            ));
        } else {
            // A late page of a sync that ran when an earlier delete ended.
            while !self.purge_page(id, PURGE_PAGE).await? {}
        }
        Ok(existed)
    }

    /// Deletes every index entry of an account. A sync that finds its account deleted calls
    /// it after its last write, so entries it stored after the delete's own purge go too.
    async fn purge_files(&self, account_id: &str) -> HubResult<()>;

    /// Takes the single-use marker `key`: true for the first caller only, whether the
    /// others come later or at the same time (a conditional create). The marker may be
    /// forgotten after `expires_at`. Makes a redelivered queue message a no-op.
    async fn claim(&self, key: &str, expires_at: DateTime<Utc>) -> HubResult<bool>;

    /// Gives a claimed marker back, so that the work it guarded can be done again (after a
    /// failure the queue retries).
    async fn release_claim(&self, key: &str) -> HubResult<()>;

    /// Marks a push job of the account queued and not yet started, until `until`: true when
    /// no such mark was live at `now` (the caller then queues the job), false while one is
    /// (that job will sync whatever this notification announces). A conditional write, so of
    /// two notifications at the same time only one queues. The expiry bounds what a mark
    /// whose job was never queued (a crash in between) can hold back.
    async fn mark_push_pending(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> HubResult<bool>;

    /// Clears the account's push mark: the worker starts its job (or the job could not be
    /// queued), so the next notification queues again.
    async fn clear_push_pending(&self, account_id: &str) -> HubResult<()>;

    /// Stores (or replaces) a push channel, findable by `(provider, id)` and among its
    /// account's channels.
    async fn put_channel(&self, channel: &PushChannel) -> HubResult<()>;

    /// Stores (or replaces) a push channel as [`Store::put_channel`] does, but only while its
    /// account is live ([`Write::Conflict`] otherwise, and nothing written), checked in the
    /// same atomic step as the write: a transaction with a condition on the account in
    /// DynamoDB, the store's lock locally. So a worker or a notification that read the
    /// account before a `DELETE` cannot bring its channel records back after it.
    async fn put_channel_if_account_live(&self, channel: &PushChannel) -> HubResult<Write>;

    /// The channel a notification names: one key lookup, never a scan. `None` when unknown
    /// (or the key is too long to name one).
    async fn get_channel(&self, provider: &str, id: &str) -> HubResult<Option<PushChannel>>;

    /// The channels of `provider` among `ids` that exist, in no particular order: a whole
    /// notification's channels in one batched read (DynamoDB `BatchGetItem`, its unprocessed
    /// keys asked again), each id once however often it is named. Ids that cannot name a
    /// channel are skipped. Fails rather than run past `deadline`.
    async fn get_channels(
        &self,
        provider: &str,
        ids: &[String],
        deadline: Deadline,
    ) -> HubResult<Vec<PushChannel>>;

    /// The account's channels, live or not.
    async fn account_channels(&self, account_id: &str) -> HubResult<Vec<PushChannel>>;

    /// Forgets a channel (both of its records); a no-op when it is already gone.
    async fn delete_channel(&self, channel: &PushChannel) -> HubResult<()>;

    async fn put_login_state(&self, state: &LoginState) -> HubResult<()>;

    /// Stores a new connect session under its id (the hash of its token).
    async fn put_connect_session(&self, session: &ConnectSession) -> HubResult<()>;

    /// The session as stored, spent or expired alike (the callback still needs the
    /// `return_to` of an expired one); `None` when unknown.
    async fn get_connect_session(&self, id: &str) -> HubResult<Option<ConnectSession>>;

    /// Spends the session: true for one caller only, and only while it is unspent and not
    /// expired at `now` (a conditional write, so two callbacks cannot both spend it).
    async fn spend_connect_session(&self, id: &str, now: DateTime<Utc>) -> HubResult<bool>;

    /// [`Store::create_account`] and [`Store::spend_connect_session`] as one write: the
    /// account of a session's login is stored exactly when its session is spent, so a failed
    /// write leaves the session usable, and of two callbacks of one session exactly one
    /// connects.
    async fn create_account_spending(
        &self,
        account: &Account,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> HubResult<SpendingWrite>;

    /// [`Store::update_account`] and [`Store::spend_connect_session`] as one write.
    async fn update_account_spending(
        &self,
        account: &Account,
        expected_version: u64,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> HubResult<SpendingWrite>;

    /// Undoes a spend (the connected account's event could not be queued, so the login
    /// failed and its user must be able to retry with the same session): true when the
    /// session was spent and now is not.
    async fn restore_connect_session(&self, id: &str) -> HubResult<bool>;

    /// Removes and returns the state; `None` when unknown, already used or expired.
    async fn take_login_state(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> HubResult<Option<LoginState>>;

    /// Upserts index entries seen by enumeration `generation`, stamping each with the time
    /// it was stored (`changed_at`) and with the feed's sequence numbers `first_seq`,
    /// `first_seq + 1`, ... in the order given. A deleted entry keeps the metadata already
    /// known for the file, since providers report removals with little more than the id.
    /// The caller passes each id once.
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
    /// is `path_lower` or starts with `path_lower/`: a file, or a folder with everything under
    /// it, removed at the provider. The tombstones take the sequence numbers from `first_seq`
    /// on. `after` is where the previous page ended: an opaque position of this store.
    /// Returns how many it marked and where the next page starts (`None` at the end).
    /// Idempotent: entries already deleted are left as they are.
    async fn mark_path_deleted(
        &self,
        account_id: &str,
        path_lower: &str,
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

    /// One page of an account's index in file-id order, starting after the file id `after`.
    async fn list_files(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<FileEntry>>;
}

/// Which accounts a listing covers: one provider's, and with `owner` only that owner's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountScope {
    pub provider: String,
    pub owner: Option<String>,
}

impl AccountScope {
    pub fn provider(provider: impl Into<String>) -> Self {
        AccountScope {
            provider: provider.into(),
            owner: None,
        }
    }

    /// Narrowed to one owner's accounts.
    pub fn owned_by(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }
}

/// Ids and states are ours (UUIDs, 43-character states) or a provider's (file ids of a few
/// dozen characters). A longer key cannot name a record: looking it up answers "absent"
/// instead of reaching a file-name or DynamoDB key-size limit.
pub const MAX_KEY_LEN: usize = 100;

/// An empty key names nothing either (and locally would name a whole directory).
pub(crate) fn storable(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN
}

/// The storable keys among `ids`, each once, in order: what a batched read asks for
/// (DynamoDB refuses a batch that names a key twice).
pub(crate) fn distinct_keys(ids: &[String]) -> Vec<String> {
    let mut keys: Vec<String> = ids.iter().filter(|id| storable(id)).cloned().collect();
    keys.sort_unstable();
    keys.dedup();
    keys
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
            content_hash: tombstone.content_hash.clone().or(known.content_hash),
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

/// Whether the entry with path key `key` is at `path_lower` or under it.
pub(crate) fn at_or_under(key: &str, path_lower: &str) -> bool {
    key.strip_prefix(path_lower)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl StoredFile {
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

    /// Whether a removal of `path_lower` marks it deleted: it is live and at or under it.
    pub fn removed_with(&self, path_lower: &str) -> bool {
        !self.entry.deleted
            && self
                .path_lower
                .as_deref()
                .is_some_and(|key| at_or_under(key, path_lower))
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
