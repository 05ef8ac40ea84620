//! Token refresh: when the access token is due, or refused once mid-listing. Microsoft
//! rotates the refresh token on every refresh, so the new tokens are stored before anything
//! else (retried through a short storage fault, a little past the deadline if need be); a
//! refused grant marks the account, and the app hears of it only once that write held.

use chrono::{Duration, Utc};

use super::account_change::{Change, Committed};
use super::state::{asked_to_wait, Session, SyncResult};
use crate::deadline::{Bounded, Deadline};
use crate::error::{HubError, HubResult, ProviderError};
use crate::events::{self, Event};
use crate::model::TokenSet;
use crate::retry::{retry, Attempt, RetryPolicy, Stopped};
use crate::tokens;

/// Refresh when the access token expires within this margin.
const REFRESH_MARGIN_MINUTES: i64 = 5;

impl Session<'_> {
    /// Refreshes the tokens when the access token expires within [`REFRESH_MARGIN_MINUTES`].
    /// `Some(result)` when the job ends here.
    pub(super) async fn refresh_if_due(&mut self) -> HubResult<Option<SyncResult>> {
        if self
            .tokens
            .expires_within(Duration::minutes(REFRESH_MARGIN_MINUTES), Utc::now())
        {
            return self.refresh().await;
        }
        Ok(None)
    }

    /// Refreshes and stores the new tokens at once (Microsoft has already invalidated the old
    /// refresh token). `Some(result)` when the job ends here.
    ///
    /// Bounded by the deadline like every provider call: a refresh cut short loses its answer,
    /// but a function stopped by its timeout would lose it too, and the whole batch with it.
    pub(super) async fn refresh(&mut self) -> HubResult<Option<SyncResult>> {
        let oauth = self.connector.oauth();
        let refreshed = match self
            .deadline
            .start_within(oauth.refresh(&self.tokens))
            .await
        {
            Bounded::Answered(refreshed) => refreshed,
            Bounded::OutOfTime => {
                return Ok(Some(SyncResult::Requeued {
                    after: std::time::Duration::ZERO,
                }))
            }
        };
        match refreshed {
            Ok(fresh) => {
                self.stats.refreshes += 1;
                // Microsoft has already invalidated the old refresh token: until stored, the
                // new one exists only here, so a short KMS or DynamoDB failure is retried
                // (bounded) rather than failing the job and losing the grant. Bounded in time
                // too: past the deadline by at most half the invocation's reserve.
                let grace = Deadline::after(self.deadline.remaining() + TOKENS_GRACE);
                match grace.within(self.store_tokens(fresh)).await {
                    Bounded::Answered(stored) => stored?,
                    Bounded::OutOfTime => {
                        tracing::error!(
                            "refreshed tokens not stored in time; the grant may be lost"
                        );
                        return Err(HubError::internal(
                            "the refreshed tokens could not be stored in time",
                        ));
                    }
                }
                Ok(None)
            }
            Err(ProviderError::InvalidGrant) => {
                // Another worker may have rotated the refresh token a moment ago: then the
                // stored tokens are newer than the ones refused and the account is fine
                // (`needs_reauth` adopts them and the sync goes on).
                tracing::warn!("refresh refused (invalid_grant)");
                self.needs_reauth().await
            }
            Err(e) => match asked_to_wait(&e) {
                Some(requeued) => Ok(Some(requeued)),
                None => Err(e.into()),
            },
        }
    }

    /// Marks the account `needs_reauth` and tells the app, after a refused refresh or an
    /// access the provider no longer gives ([`ProviderError::AccessLost`]). The refusal is
    /// written conditionally on the version this sync read, so tokens stored by another
    /// worker at any time since supersede it (`superseded`: `commit` adopts them) and
    /// `Ok(None)` says to go on with those; the app hears of it only once it is written, so
    /// an account that a concurrent refresh keeps active is never reported.
    pub(super) async fn needs_reauth(&mut self) -> HubResult<Option<SyncResult>> {
        let refusal = Change::NeedsReauth {
            at: Utc::now(),
            holder: self.holder.clone(),
        };
        if let Committed::Superseded = self.commit(refusal).await? {
            return Ok(None);
        }
        tracing::warn!("account needs re-authorisation");
        if let Err(error) = events::emit(self.hub, Event::reauth_required(&self.account)).await {
            // Not told: once the account is `needs_reauth` no job would retry, so it is put
            // back as it was and the job fails; its retry is refused again, and tells. Best
            // effort: when this write fails too, the event is lost.
            if let Err(undo) = self.commit(Change::ReauthUnreported).await {
                tracing::error!(error = %undo, "reauth_required neither sent nor undone");
            }
            return Err(error);
        }
        Ok(Some(SyncResult::NeedsReauth))
    }

    /// Seals and stores freshly refreshed tokens, each step retried on a storage or KMS
    /// failure by [`TOKENS_RETRY`]; then works with them (or with fresher ones another
    /// worker stored meanwhile, which `commit` adopted).
    pub(super) async fn store_tokens(&mut self, fresh: TokenSet) -> HubResult<()> {
        let (cipher, id, provider) = (
            self.hub.cipher.as_ref(),
            self.account.id.clone(),
            self.account.provider.clone(),
        );
        let sealed = retry_transient((), |()| {
            let (id, provider, fresh) = (&id, &provider, &fresh);
            async move { ((), tokens::seal(cipher, id, provider, fresh).await) }
        })
        .await?;
        let change = Change::Tokens {
            sealed,
            has_refresh_token: fresh.refresh_token.is_some(),
        };
        // A write that failed after DynamoDB applied it is found, on the next attempt, as a
        // change of tokens by "another worker": the ones this sync wrote, adopted.
        let committed = retry_transient(&mut *self, |session| {
            let change = change.clone();
            async move {
                let committed = session.commit(change).await;
                (session, committed)
            }
        })
        .await?;
        if let Committed::Yes = committed {
            self.tokens = fresh;
        }
        Ok(())
    }
}

/// Storing refreshed tokens (sealing with KMS, then the account write) is tried again after
/// a failure of either: each SDK call already retries a throttled request a few times, so
/// these attempts cover a fault that outlasts one call's retries, a few seconds of it.
const TOKENS_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    base_delay: std::time::Duration::from_millis(200),
    max_delay: std::time::Duration::from_millis(1600),
    max_retry_after: std::time::Duration::ZERO,
};
/// How far past the deadline storing refreshed tokens may go: half of [`RESERVE`], whose
/// other half still stores the place and requeues.
const TOKENS_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `attempt` on `state` again, by [`TOKENS_RETRY`], while it fails with a storage or KMS
/// failure ([`HubError::Internal`]); any other error ends it. The state goes in and out of
/// each attempt (it may be the session itself).
async fn retry_transient<S, T, F, Fut>(state: S, mut attempt: F) -> HubResult<T>
where
    F: FnMut(S) -> Fut,
    Fut: std::future::Future<Output = (S, HubResult<T>)>,
{
    let outcome = retry(&TOKENS_RETRY, (state, None), |(state, _)| {
        let call = attempt(state);
        async move {
            match call.await {
                (_, Ok(done)) => Ok(Attempt::Done(done)),
                (state, Err(error @ HubError::Internal(_))) => {
                    tracing::warn!(error = %error, "storing refreshed tokens failed; trying again");
                    Ok(Attempt::Again {
                        left: (state, Some(error)),
                        retry_after: None,
                    })
                }
                (_, Err(error)) => Err(error),
            }
        }
    })
    .await;
    match outcome {
        Ok(done) => Ok(done),
        Err(Stopped::Failed(error)) => Err(error),
        Err(Stopped::Exhausted {
            left: (_, last), ..
        }) => Err(last.unwrap_or_else(|| HubError::internal("storing refreshed tokens failed"))),
    }
}
