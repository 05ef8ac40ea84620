//! The push role: push channels and the push marks of queued jobs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Write;
use crate::deadline::Deadline;
use crate::error::HubResult;
use crate::model::PushChannel;

#[async_trait]
pub trait PushStore: Send + Sync {
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

    /// Stores (or replaces) a push channel as [`PushStore::put_channel`] does, but only while its
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
}

/// Whether both of a channel's records can be named: its id and its account's id pass the
/// key-length gate ([`super::storable`]).
pub(crate) fn channel_storable(channel: &PushChannel) -> bool {
    super::storable(&channel.id) && super::storable(&channel.account_id)
}
