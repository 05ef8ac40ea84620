//! Accounts and configuration: `/users`, `/users/{id}`, `/users/{id}/files`, `/config`.

use std::time::Duration;

use serde::Serialize;

use crate::deadline::Deadline;
use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use crate::model::{AccountView, FileEntry};
use crate::providers::PROVIDERS;
use crate::tokens;

/// Accounts read from the store per round trip.
const ACCOUNT_PAGE: usize = 500;
/// The contract's page size of `/users/{id}/files`: 100 unless asked, at most 1000.
pub const DEFAULT_FILE_PAGE: usize = 100;
pub const MAX_FILE_PAGE: usize = 1000;

/// Every connected account, of every provider the hub knows (an account outlives its
/// provider's configuration: it still shows, and can still be deleted).
pub async fn list(hub: &Hub) -> HubResult<Vec<AccountView>> {
    let mut views = Vec::new();
    for spec in PROVIDERS {
        let mut after = None;
        loop {
            let page = hub
                .store
                .list_accounts(spec.name, after.as_deref(), ACCOUNT_PAGE)
                .await?;
            views.extend(page.items.iter().map(AccountView::from));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok(views)
}

#[derive(Debug, Serialize, PartialEq)]
pub struct FilesPage {
    pub files: Vec<FileEntry>,
    pub next_cursor: Option<String>,
}

/// One page of an account's file index: up to `limit` files (1 to [`MAX_FILE_PAGE`]) after
/// the file id `after`. `next_cursor` is opaque to clients: the hex of the last file id, which
/// the web layer (`web::FilesQuery`) decodes back into `after`.
pub async fn files(
    hub: &Hub,
    account_id: &str,
    limit: usize,
    after: Option<String>,
) -> HubResult<FilesPage> {
    if hub.store.get_account(account_id).await?.is_none() {
        return Err(HubError::UserNotFound(account_id.to_string()));
    }
    let page = hub
        .store
        .list_files(account_id, after.as_deref(), limit)
        .await?;
    Ok(FilesPage {
        files: page.items,
        next_cursor: page.next.map(hex::encode),
    })
}

/// How long `DELETE /users/{id}` waits for the provider's revocation: a revocation is best
/// effort, and a slow or failing endpoint must not keep the account from being deleted.
pub const REVOKE_BUDGET: Duration = Duration::from_secs(3);

/// [`delete_by`] with the HTTP functions' whole timeout from now.
pub async fn delete(hub: &Hub, account_id: &str) -> HubResult<()> {
    delete_by(hub, account_id, Deadline::of_invocation(None)).await
}

/// Revokes the grant at the provider (best effort, within [`REVOKE_BUDGET`] and never past
/// `deadline`: a provider that is down, slow or has no revocation endpoint does not keep the
/// user's data here), then deletes the account, its tokens and its file index.
pub async fn delete_by(hub: &Hub, account_id: &str, deadline: Deadline) -> HubResult<()> {
    let account = hub
        .store
        .get_account(account_id)
        .await?
        .ok_or_else(|| HubError::UserNotFound(account_id.to_string()))?;
    match hub.providers.for_login(&account.provider) {
        Ok(connector) => match tokens::open(hub, &account).await {
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
    if !hub.store.delete_account(account_id).await? {
        return Err(HubError::UserNotFound(account_id.to_string()));
    }
    tracing::info!(account_id, "account deleted");
    Ok(())
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ConfigView {
    pub available_providers: Vec<&'static str>,
    pub mode: &'static str,
}

pub fn config(hub: &Hub) -> ConfigView {
    let available_providers = hub.providers.configured_names();
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
