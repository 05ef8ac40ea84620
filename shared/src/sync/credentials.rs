//! An account's live access token for a request outside the sync (file content, the proxy,
//! search): the sync's own refresh, not a second copy of it. A request holds the account
//! as a [`Session`] without a lease, so the refresh, its storage retries, the conditional
//! write that never overwrites a newer rotated token, and the `needs_reauth` mark with its
//! one event, are the very code a sync runs (`refresh`, `account_change`).

use std::future::Future;
use std::sync::Arc;

use chrono::Utc;
use secrecy::SecretString;

use super::state::{Session, SyncResult};
use crate::deadline::Deadline;
use crate::error::{HubError, HubResult, ProviderError};
use crate::hub::Hub;
use crate::model::{Account, AccountStatus, SyncReason};
use crate::providers::Connector;
use crate::tokens;

/// A request's hold on one account's tokens.
pub struct Credentials<'a> {
    session: Session<'a>,
}

impl<'a> Credentials<'a> {
    /// The account's tokens, refreshed first when the access token is due. An account that
    /// waits for its user, or whose refresh is refused now, is
    /// [`HubError::AccountNeedsReauth`]. No provider call starts past `deadline`.
    pub async fn open(hub: &'a Hub, account: Account, deadline: Deadline) -> HubResult<Self> {
        if account.status == AccountStatus::NeedsReauth {
            return Err(HubError::AccountNeedsReauth);
        }
        let connector = hub.providers.get(&account.provider)?;
        let tokens = tokens::open(hub.cipher.as_ref(), &account).await?;
        let mut credentials = Credentials {
            session: Session {
                hub,
                connector,
                account,
                tokens,
                deadline,
                requested_at: Utc::now(),
                // Read only by a sync's `sync.completed`, which a request never sends.
                reason: SyncReason::Manual,
                // Never holds the lease: a refusal written by this request releases
                // nothing of a sync's.
                holder: format!("request-{}", uuid::Uuid::new_v4()),
                progressed: false,
                stats: Default::default(),
            },
        };
        let ended = credentials.session.refresh_if_due().await?;
        credentials.went_on(ended)?;
        Ok(credentials)
    }

    pub fn access_token(&self) -> &SecretString {
        &self.session.tokens.access_token
    }

    pub fn connector(&self) -> &Arc<dyn Connector> {
        &self.session.connector
    }

    /// The account as last read or written.
    pub fn account(&self) -> &Account {
        &self.session.account
    }

    /// Calls the provider with the access token; when it refuses the token (401), refreshes
    /// once and calls once more, as the sync does mid-listing.
    pub async fn call<T, E, F, Fut>(&mut self, call: F) -> HubResult<Result<T, E>>
    where
        F: Fn(SecretString) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: RefusedToken,
    {
        let answer = call(self.access_token().clone()).await;
        match answer {
            Err(error) if error.is_refused_token() => {
                tracing::info!("access token refused; refreshing once");
                let ended = self.session.refresh().await?;
                self.went_on(ended)?;
                Ok(call(self.access_token().clone()).await)
            }
            answer => Ok(answer),
        }
    }

    /// Whether the request goes on after a refresh step: a refusal of the grant (the account
    /// is marked and the app told, by the sync's code) or a provider that asks to wait ends
    /// it.
    fn went_on(&self, ended: Option<SyncResult>) -> HubResult<()> {
        match ended {
            None => Ok(()),
            Some(SyncResult::NeedsReauth) => Err(HubError::AccountNeedsReauth),
            Some(SyncResult::Requeued { after }) if after.is_zero() => Err(HubError::Unavailable(
                "no time left to refresh the access token".into(),
            )),
            Some(SyncResult::Requeued { after }) => {
                Err(HubError::Provider(ProviderError::Retryable {
                    status: Some(429),
                    attempts: 1,
                    retry_after: Some(after),
                }))
            }
            Some(other) => Err(HubError::internal(format!(
                "a refresh ended the request as {other:?}"
            ))),
        }
    }
}

/// An error that may say the provider refused the access token.
pub trait RefusedToken {
    fn is_refused_token(&self) -> bool;
}

impl RefusedToken for ProviderError {
    fn is_refused_token(&self) -> bool {
        *self == ProviderError::Unauthorized
    }
}

impl RefusedToken for crate::providers::content::ContentRefusal {
    fn is_refused_token(&self) -> bool {
        matches!(
            self,
            crate::providers::content::ContentRefusal::Provider(ProviderError::Unauthorized)
        )
    }
}
