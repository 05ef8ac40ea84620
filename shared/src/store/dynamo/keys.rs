//! The table's key layout and the attribute names the code reads or conditions on (the
//! table of records is in this module's parent).

use super::*;

/// An entry's lower-case path, the sort key of [`PATH_INDEX`].
pub(super) const PATH_ATTRIBUTE: &str = "path_lower";
/// The feed's sequence number of an entry, the sort key of [`SEQ_INDEX`].
pub(super) const SEQ_ATTRIBUTE: &str = "seq";
/// An entry's account and drive, the partition key of [`FOLDER_INDEX`].
pub(super) const DRIVE_KEY_ATTRIBUTE: &str = "drive_key";
/// An entry's place in its drive ([`crate::store::place`]), the sort key of [`FOLDER_INDEX`].
pub(super) const PLACE_ATTRIBUTE: &str = "place";
/// Whether an entry is a tombstone: the one attribute [`FOLDER_INDEX`] projects besides the
/// keys, so that a listing leaves tombstones out (or keeps only them) before reading entries.
pub(super) const DELETED_ATTRIBUTE: &str = "deleted";
pub const TTL_ATTRIBUTE: &str = "expires_at_epoch";
pub(super) const ACCOUNT_SK: &str = "ACCOUNT";
pub(super) const FILE_PREFIX: &str = "FILE#";
/// The sort key prefix of the change feed's items (`feed.rs`), beside the entries.
pub(super) const FEED_PREFIX: &str = "FEED#";
/// Where an entry keeps its feed position: not `seq`, the `by-seq` index's sort key, which
/// would put the entry in that index (and charge every change to it three times).
pub(super) const POSITION_ATTRIBUTE: &str = "feed_seq";
/// The sort keys of an account's index, entries and feed items alike: `FEED#…` then
/// `FILE#…`, and nothing else of the account's partition (its `ACCOUNT` item stays).
pub(super) const INDEX_FIRST_SK: &str = FEED_PREFIX;
pub(super) const INDEX_END_SK: &str = "FILE$";
/// The attribute only a tombstone ([`Deletion`]) has: an account item that carries it is
/// being deleted, and no read of accounts returns it.
pub(super) const DELETING_ATTRIBUTE: &str = "deleting_since";
/// The attribute the `by-provider` index projects besides the keys.
pub(super) const STATUS_ATTRIBUTE: &str = "status";
/// The account attributes a `/users` row shows ([`AccountView`]'s fields): what
/// `list_account_views` reads, leaving the sealed tokens and the sync state in the table.
pub(super) const VIEW_ATTRIBUTES: &[&str] = &[
    "id",
    "email",
    "provider",
    "has_refresh_token",
    "status",
    "connected_at",
    "last_synced_at",
    "owner",
    "last_sync",
];

/// The table key of an item: partition `pk`, sort `sk`.
pub(super) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub(super) fn account_pk(id: &str) -> String {
    format!("ACCOUNT#{id}")
}

pub(super) fn identity_pk(provider: &str, provider_user_id: &str) -> String {
    format!("IDENTITY#{provider}#{provider_user_id}")
}

/// The identity record of an owner's account; version 1's key when there is no owner.
pub(super) fn identity_key(owner: Option<&str>, provider: &str, provider_user_id: &str) -> Item {
    let sk = match owner {
        None => "IDENTITY".to_string(),
        Some(owner) => format!("OWNER#{owner}"),
    };
    key(identity_pk(provider, provider_user_id), sk)
}

/// The record that lists an account under its owner.
pub(super) fn owner_key(owner: &str, provider: &str, id: &str) -> Item {
    key(format!("OWNER#{owner}"), format!("{provider}#{id}"))
}

pub(super) fn link_key(id: &str) -> Item {
    key(format!("LINK#{id}"), "LINK")
}

pub(super) fn session_key(id: &str) -> Item {
    key(format!("SESSION#{id}"), "SESSION")
}

/// How long a session's item outlives the session, so that a callback that comes late still
/// finds where to send the browser back to (DynamoDB's TTL removes it after that).
pub(super) const SESSION_KEPT_SECONDS: i64 = 3600;
/// A session's end in Unix seconds, what the spend's condition compares.
pub(super) const SESSION_END_ATTRIBUTE: &str = "ends_at_epoch";

pub(super) fn account_key(id: &str) -> Item {
    key(account_pk(id), ACCOUNT_SK)
}

/// The condition under which an account still takes writes that hang off it (its push
/// channels): its record is there and is not a tombstone ([`DELETING_ATTRIBUTE`]), so that a
/// channel confirmed after a `DELETE` began is refused and closed by the worker.
pub(super) const ACCOUNT_LIVE: &str =
    "attribute_exists(pk) AND attribute_not_exists(deleting_since)";

pub(super) fn claim_key(claim: &str) -> Item {
    key(format!("CLAIM#{claim}"), "CLAIM")
}

/// An account's push mark (a push job queued and not started): its own item, so that marking
/// never races the account's versioned writes.
pub(super) fn push_mark_key(account_id: &str) -> Item {
    key(format!("PUSH#{account_id}"), "PENDING")
}

/// A push channel, under its own key so that a notification finds it with one `GetItem`.
pub(super) fn channel_key(provider: &str, id: &str) -> Item {
    key(format!("CHANNEL#{provider}#{id}"), "CHANNEL")
}

pub(super) const ACCOUNT_CHANNEL_PREFIX: &str = "CHANNEL#";

/// The account's copy of one of its channels, beside its push mark: one `Query` lists them.
pub(super) fn account_channel_key(channel: &PushChannel) -> Item {
    key(
        format!("PUSH#{}", channel.account_id),
        format!(
            "{ACCOUNT_CHANNEL_PREFIX}{}#{}",
            channel.provider, channel.id
        ),
    )
}

/// A channel's records outlive its expiry by a day (a late notification still finds it and is
/// told apart from a forgery in the logs), then DynamoDB's TTL removes them.
pub(super) const CHANNEL_KEPT_SECONDS: i64 = 86_400;

pub(super) fn state_key(state: &str) -> Item {
    key(format!("STATE#{state}"), "STATE")
}

pub(super) fn file_key(account_id: &str, file_id: &str) -> Item {
    key(account_pk(account_id), format!("{FILE_PREFIX}{file_id}"))
}

/// The partition of drive `drive_id` of an account in [`FOLDER_INDEX`].
pub(super) fn drive_key(account_id: &str, drive_id: &str) -> String {
    format!("{account_id}#{drive_id}")
}

pub(super) fn account_item(account: &Account) -> HubResult<Item> {
    let mut key = account_key(&account.id);
    key.insert("gsi1pk".into(), s(format!("PROVIDER#{}", account.provider)));
    key.insert("gsi1sk".into(), s(&account.id));
    to_item(account, key)
}
