//! The accounts role: accounts, their identity and owner records, and the tombstones of
//! their deletes.

use async_trait::async_trait;

use super::Write;
use crate::error::HubResult;
use crate::model::{Account, AccountView, Deletion, Page};

/// How many index entries one [`AccountStore::purge_page`] of a delete removes: a DynamoDB query
/// page and 20 `BatchWriteItem` calls, about a second, so that a purge bounded by a deadline
/// overshoots it by little.
pub const PURGE_PAGE: usize = 500;

#[async_trait]
pub trait AccountStore: Send + Sync {
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
