//! Storage of accounts, pending logins, connect sessions, file indexes and their change feed,
//! push channels and job marks, and fan-out claims: DynamoDB in AWS; locally, files on disk
//! with the file index and feed in LMDB. Both give the same guarantees, checked on both by the
//! behavioural suite of `shared/tests/backends.rs` (push marks by `push.rs` and `fanout.rs`;
//! fan-out claims only on the local store, by `fanout.rs`):
//! - an account and its provider-identity record are created together or not at all, so a
//!   second login with the same identity (for the same owner) finds and updates the same
//!   account;
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
//! - a content link is found by its id until it expires (an expired one may linger: its
//!   reader checks the time);
//! - a fan-out step is claimed once, until its claim is given back or expires;
//! - a removal by path marks deleted the entry at that path and every entry under it, a page
//!   at a time, without reading the account's whole index at once;
//! - a folder's or a drive's entries, and those under a path, are listed reading only them
//!   (`list_folder`, `list_under_path`), a page of at most `limit` index items at a time.
//!
//! [`Store`] is the sum of one trait per role ([`AccountStore`], [`FileStore`],
//! [`LoginStore`], [`PushStore`], [`ClaimStore`], [`LinkStore`]), each in its own file; every backend
//! implements each role in a file of the same name under its folder.

mod accounts;
mod claims;
pub mod dynamo;
mod files;
mod links;
pub mod local;
mod logins;
mod push;

pub use accounts::{AccountScope, AccountStore, PURGE_PAGE};
pub use claims::ClaimStore;
pub(crate) use files::StoredFile;
pub use files::{
    past_top, place, place_prefix, read_place, FeedEntry, FeedPage, FeedPosition, FileStore,
    Folder, Scan, MAX_PATH_KEY_LEN,
};
pub use links::LinkStore;
pub use logins::LoginStore;
pub(crate) use push::channel_storable;
pub use push::PushStore;

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

/// Everything a store does: the sum of its roles, so that one `Arc<dyn Store>` serves every
/// use case. Implemented for whatever implements every role.
pub trait Store:
    AccountStore + FileStore + LoginStore + PushStore + ClaimStore + LinkStore
{
}

impl<T: AccountStore + FileStore + LoginStore + PushStore + ClaimStore + LinkStore + ?Sized> Store
    for T
{
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
