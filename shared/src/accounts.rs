//! Accounts and configuration: `/users`, `/users/{id}`, `/users/{id}/files`, `/config`.

use std::time::Duration;

use serde::Serialize;

use crate::cursor::{self, Position, Route};
use crate::deadline::Deadline;
use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use crate::model::{Account, AccountView};
use crate::providers::{ProviderName, Registry, PROVIDERS};
use crate::queries::{self, FileFilter};
use crate::store::{storable, AccountScope, AccountStore, Store};
use crate::tokens;

/// The page size of `/users` (docs/API.md, "Accounts"): 1000 unless asked, at most 1000.
pub const DEFAULT_ACCOUNT_PAGE: usize = 1000;
pub const MAX_ACCOUNT_PAGE: usize = 1000;
pub use crate::queries::{FileCursor, FilesPage, DEFAULT_FILE_PAGE, MAX_FILE_PAGE};

/// Where a page of `/users` ended: the last account's provider and id. Accounts are listed
/// provider by provider in [`PROVIDERS`] order, each provider's in id order, so this
/// position names exactly where the next page resumes, whatever was connected meanwhile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountPosition {
    pub provider: ProviderName,
    pub id: String,
}

impl Position for AccountPosition {
    const ROUTE: Route = Route::Users;

    /// `<provider>/<id>`: provider names hold no slash.
    fn write(&self) -> String {
        format!("{}/{}", self.provider, self.id)
    }

    /// A known provider and a storable id only: a key too long for DynamoDB would be a store
    /// error there, and a 5xx.
    fn read(text: &str) -> Option<Self> {
        let (provider, id) = text.split_once('/')?;
        let provider = ProviderName::known(provider)?;
        if id.is_empty() || !storable(id) {
            return None;
        }
        Some(AccountPosition {
            provider,
            id: id.to_string(),
        })
    }
}

impl AccountPosition {
    /// The opaque cursor clients send back (see [`crate::cursor`]).
    pub fn to_cursor(&self) -> String {
        cursor::encode(None, self)
    }

    /// What [`AccountPosition::to_cursor`] wrote; anything else is `invalid_request`.
    pub fn from_cursor(raw: &str) -> HubResult<Self> {
        cursor::decode::<AccountPosition>(raw)?.of(None)
    }
}

/// One page of `/users`: the rows, and where the next page starts while accounts remain.
#[derive(Debug, PartialEq)]
pub struct AccountsPage {
    pub accounts: Vec<AccountView>,
    pub next: Option<AccountPosition>,
}

/// [`page_of`] of every owner. Tests and benchmarks only (feature `testing`): the `users`
/// function always passes its `?owner=` filter, absent or not.
#[cfg(feature = "testing")]
pub async fn page(
    accounts: &dyn AccountStore,
    limit: usize,
    after: Option<AccountPosition>,
) -> HubResult<AccountsPage> {
    page_of(accounts, None, limit, after).await
}

/// Up to `limit` connected accounts after `after`, of every provider the hub knows (an
/// account outlives its provider's configuration: it still shows, and can still be deleted),
/// of one `owner`'s accounts when one is given (`/users?owner=`).
pub async fn page_of(
    accounts: &dyn AccountStore,
    owner: Option<&str>,
    limit: usize,
    after: Option<AccountPosition>,
) -> HubResult<AccountsPage> {
    let first = after.as_ref().map_or(0, |position| {
        PROVIDERS
            .iter()
            .position(|spec| spec.name == position.provider)
            .expect("positions name known providers")
    });
    // One row more than asked tells whether accounts remain, so the last page carries no
    // `Link` to an empty one.
    let wanted = limit + 1;
    let mut rows: Vec<AccountView> = Vec::with_capacity(wanted);
    'providers: for (index, spec) in PROVIDERS.iter().enumerate().skip(first) {
        let scope = match owner {
            Some(owner) => AccountScope::provider(spec.name.as_str()).owned_by(owner),
            None => AccountScope::provider(spec.name.as_str()),
        };
        let mut after_id = after
            .as_ref()
            .filter(|_| index == first)
            .map(|position| position.id.clone());
        loop {
            let page = accounts
                .list_account_views(&scope, after_id.as_deref(), wanted - rows.len())
                .await?;
            rows.extend(page.items);
            if rows.len() >= wanted {
                break 'providers;
            }
            match page.next {
                Some(next) => after_id = Some(next),
                None => break,
            }
        }
    }
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| AccountPosition {
            provider: ProviderName::known(&last.provider)
                .expect("rows come from the providers' scopes"),
            id: last.id.clone(),
        })
    } else {
        None
    };
    Ok(AccountsPage {
        accounts: rows,
        next,
    })
}

/// One account's row: `user_not_found` when there is none.
pub async fn get(accounts: &dyn AccountStore, account_id: &str) -> HubResult<AccountView> {
    accounts
        .get_account(account_id)
        .await?
        .map(|account| AccountView::from(&account))
        .ok_or_else(|| HubError::AccountNotFound(account_id.to_string()))
}

/// One page of an account's live entries, unfiltered: [`crate::queries::files`] with the
/// default filter.
pub async fn files(
    store: &dyn Store,
    account_id: &str,
    limit: usize,
    after: Option<FileCursor>,
) -> HubResult<FilesPage> {
    queries::files(store, account_id, &FileFilter::default(), limit, after).await
}

/// How long `DELETE /users/{id}` waits for the provider's revocation: a revocation is best
/// effort, and a slow or failing endpoint must not keep the account from being deleted.
pub const REVOKE_BUDGET: Duration = Duration::from_secs(3);

/// [`delete_by`] with the HTTP functions' whole timeout from now. Tests and benchmarks only
/// (feature `testing`): the `users` function passes its invocation's deadline.
#[cfg(feature = "testing")]
pub async fn delete(hub: &Hub, account_id: &str) -> HubResult<()> {
    delete_by(hub, account_id, Deadline::of_invocation(None)).await
}

/// Whether another owner's account holds a grant that revoking this account's tokens would
/// end too: a provider whose revocation ends the user's whole grant to the app (Google), and
/// another owner's account of the same provider identity. Then the revocation is skipped.
/// Dropbox's revocation ends one login's tokens only, so it always goes ahead.
async fn grant_shared(hub: &Hub, account: &Account) -> HubResult<bool> {
    let ends_the_grant = hub
        .providers
        .get(&account.provider)
        .is_ok_and(|connector| connector.oauth().revocation_ends_the_grant());
    if !ends_the_grant {
        return Ok(false);
    }
    let holders = hub
        .store
        .identity_holders(&account.provider, &account.provider_user_id)
        .await?;
    for id in holders.iter().filter(|id| **id != account.id) {
        // A record left by a crash names no account; only a live one holds a grant.
        if let Some(other) = hub.store.get_account(id).await? {
            if other.owner != account.owner {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Stops the account's channels and revokes the grant at the provider (best effort, within
/// [`REVOKE_BUDGET`] and never past `deadline`: a provider that is down, slow or has no
/// revocation endpoint does not keep the user's data here; skipped while another owner's
/// account shares the grant), then deletes the account as [`crate::purge`] says: at once
/// invisible and without tokens, its index purged until `deadline` and by a purge job after.
/// A repeated delete while that purge is pending succeeds and queues the purge again.
pub async fn delete_by(hub: &Hub, account_id: &str, deadline: Deadline) -> HubResult<()> {
    let Some(account) = hub.store.get_account(account_id).await? else {
        return crate::purge::repeat(hub, account_id).await;
    };
    // One budget for both best-effort calls: the channels first, since stopping them needs
    // the grant the revocation ends.
    let budget = deadline.at_most(REVOKE_BUDGET);
    crate::push::close_channels(hub, &account, budget).await;
    if grant_shared(hub, &account).await? {
        tracing::info!(
            account_id,
            "grant shared with another owner's account; not revoked"
        );
    } else {
        revoke(hub, &account, budget).await;
    }
    crate::purge::delete(hub, account, deadline).await
}

/// The best-effort revocation of `DELETE`: every failure is logged, none stops the delete.
async fn revoke(hub: &Hub, account: &Account, deadline: Deadline) {
    let account_id = account.id.as_str();
    match hub.providers.get(&account.provider) {
        Ok(connector) => match tokens::open(hub.cipher.as_ref(), account).await {
            Ok(tokens) => match deadline
                .at_most(REVOKE_BUDGET)
                .bound(connector.oauth().revoke(&tokens))
                .await
            {
                Ok(revoked) => tracing::info!(account_id, revoked, "grant revocation"),
                Err(e) => {
                    tracing::warn!(account_id, error = %e, "revocation failed; deleting anyway")
                }
            },
            Err(e) => {
                tracing::warn!(account_id, error = %e, "tokens unreadable; deleting without revocation")
            }
        },
        Err(_) => {
            tracing::warn!(account_id, provider = %account.provider, "provider not configured; deleting without revocation")
        }
    }
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ConfigView {
    pub available_providers: Vec<ProviderName>,
    pub mode: &'static str,
}

pub fn config(providers: &Registry) -> ConfigView {
    let available_providers = providers.configured_names();
    let mode = match available_providers.len() {
        0 => "unconfigured",
        1 => "single-provider",
        _ => "multi-provider",
    };
    ConfigView {
        available_providers,
        mode,
    }
}
