//! The sync of one account: refresh the tokens when due, page through the provider's
//! listing, store each page of the file index and then the cursor that follows it.
//!
//! Safe to run twice for the same job, or twice at once for the same account:
//! - files are stored before the cursor that passes them, so a sync killed half-way resumes
//!   from the last stored page and misses nothing (a page may be stored twice: upserts);
//! - every account write is conditional on the version read. A worker that finds the cursor
//!   moved by another worker stops (the other one is ahead); one that finds the tokens
//!   refreshed by another adopts them. So a cursor never moves backwards and a rotated refresh
//!   token is never overwritten by an older one.

use std::sync::Arc;

use chrono::{Duration, Utc};

use crate::error::{HubError, HubResult, ProviderError};
use crate::fanout;
use crate::hub::Hub;
use crate::model::{Account, AccountStatus, QueueMessage, SyncJob, SyncOutcome, TokenSet};
use crate::providers::{Connector, NextPage};
use crate::store::Write;
use crate::tokens;

/// Refresh when the access token expires within this margin.
const REFRESH_MARGIN_MINUTES: i64 = 5;
/// Attempts at a conditional write before giving the job back to the queue.
const WRITE_ATTEMPTS: usize = 5;

/// How a job ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncResult {
    Synced {
        pages: u64,
        files: u64,
    },
    /// The provider refused the refresh token: the account is marked `needs_reauth`.
    NeedsReauth,
    /// Nothing to do: the account is gone, needs re-authorisation, or another worker is
    /// syncing it right now and is ahead of this one.
    Skipped(&'static str),
}

/// A change to the account record, applied to the latest version on conflict.
enum Change {
    Tokens(TokenSet),
    /// The cursor after a stored page; with the outcome too when it was the last page, so
    /// that a sync with nothing new writes the account once.
    Cursor {
        from: Option<String>,
        to: String,
        finished: Option<SyncOutcome>,
    },
    Finished(SyncOutcome),
    NeedsReauth,
}

/// What a conditional write found.
enum Committed {
    Yes,
    /// Another worker got there first: it moved the cursor (this one stops), or it stored
    /// fresh tokens while this one was about to give up on the grant (this one goes on).
    Superseded,
}

struct Session<'a> {
    hub: &'a Hub,
    connector: Arc<dyn Connector>,
    account: Account,
    tokens: TokenSet,
}

pub async fn sync(hub: &Hub, job: &SyncJob) -> HubResult<SyncResult> {
    let Some(account) = hub.store.get_account(&job.user_id).await? else {
        tracing::info!(account_id = %job.user_id, "account no longer exists; job dropped");
        return Ok(SyncResult::Skipped("account deleted"));
    };
    if account.provider != job.provider {
        tracing::warn!(account_id = %account.id, job_provider = %job.provider, "job names the wrong provider; dropped");
        return Ok(SyncResult::Skipped("provider mismatch"));
    }
    if account.status == AccountStatus::NeedsReauth {
        return Ok(SyncResult::Skipped("needs re-authorisation"));
    }
    let connector = hub.providers.for_sync(&account.provider)?;
    let tokens = tokens::open(hub, &account).await?;
    let mut session = Session {
        hub,
        connector,
        account,
        tokens,
    };
    let result = session.run().await;
    match &result {
        Ok(SyncResult::Synced { pages, files }) => {
            tracing::info!(account_id = %session.account.id, pages, files, "sync finished")
        }
        Ok(other) => {
            tracing::info!(account_id = %session.account.id, result = ?other, "sync ended")
        }
        Err(e) => {
            tracing::warn!(account_id = %session.account.id, error = %e, "sync failed; the queue will retry");
            let outcome = SyncOutcome {
                finished_at: Utc::now(),
                result: "failed".into(),
                files_changed: 0,
                detail: Some(e.to_string()),
            };
            // Best effort: the failure itself is what the queue acts on.
            let _ = session.commit(Change::Finished(outcome)).await;
        }
    }
    result
}

impl Session<'_> {
    async fn run(&mut self) -> HubResult<SyncResult> {
        let now = Utc::now();
        if self
            .tokens
            .expires_within(Duration::minutes(REFRESH_MARGIN_MINUTES), now)
        {
            if let Some(ended) = self.refresh().await? {
                return Ok(ended);
            }
        }
        let (mut pages, mut files) = (0u64, 0u64);
        let mut refreshed_after_401 = false;
        let mut restarted = false;
        // Where to read from; differs from the stored cursor only after a restart on 410.
        let mut position = self.account.cursor.clone();
        loop {
            let page = match self
                .connector
                .list_page(&self.tokens.access_token, position.as_deref())
                .await
            {
                Ok(page) => page,
                Err(ProviderError::Unauthorized) if !refreshed_after_401 => {
                    refreshed_after_401 = true;
                    if let Some(ended) = self.refresh().await? {
                        return Ok(ended);
                    }
                    continue;
                }
                Err(ProviderError::CursorExpired) if !restarted && position.is_some() => {
                    // Graph's 410 Gone: the delta link expired; enumerate again from scratch.
                    tracing::info!(account_id = %self.account.id, "change cursor expired; starting over");
                    restarted = true;
                    position = None;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            self.hub
                .store
                .put_files(&self.account.id, &page.files)
                .await?;
            for file in &page.files {
                tracing::info!(
                    account_id = %self.account.id,
                    file_id = %file.id,
                    name = %file.name,
                    modified_at = ?file.modified_at,
                    deleted = file.deleted,
                    "file"
                );
            }
            pages += 1;
            files += page.files.len() as u64;
            let last = matches!(page.next, NextPage::Done(_));
            let next = page.next.cursor().to_string();
            let change = Change::Cursor {
                from: self.account.cursor.clone(),
                to: next.clone(),
                finished: last.then(|| SyncOutcome {
                    finished_at: Utc::now(),
                    result: "ok".into(),
                    files_changed: files,
                    detail: None,
                }),
            };
            if let Committed::Superseded = self.commit(change).await? {
                return Ok(SyncResult::Skipped("another worker is ahead"));
            }
            if last {
                break;
            }
            position = Some(next);
        }
        Ok(SyncResult::Synced { pages, files })
    }

    /// Refreshes and stores the new tokens at once (Microsoft has already invalidated the old
    /// refresh token). `Some(result)` when the job ends here.
    async fn refresh(&mut self) -> HubResult<Option<SyncResult>> {
        match self.connector.oauth().refresh(&self.tokens).await {
            Ok(tokens) => {
                self.commit(Change::Tokens(tokens)).await?;
                Ok(None)
            }
            Err(ProviderError::InvalidGrant) => {
                // Another worker may have rotated the refresh token a moment ago: then the
                // stored one is newer than ours and the account is fine.
                let latest = self.reload().await?;
                if latest.tokens != self.account.tokens {
                    self.tokens = tokens::open(self.hub, &latest).await?;
                    self.account = latest;
                    return Ok(None);
                }
                tracing::warn!(account_id = %self.account.id, "refresh refused (invalid_grant); account needs re-authorisation");
                match self.commit(Change::NeedsReauth).await? {
                    Committed::Yes => Ok(Some(SyncResult::NeedsReauth)),
                    Committed::Superseded => Ok(None),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn reload(&self) -> HubResult<Account> {
        self.hub
            .store
            .get_account(&self.account.id)
            .await?
            .ok_or_else(|| HubError::internal("the account was deleted during its sync"))
    }

    /// Applies `change` to the account with a conditional write, re-reading and re-applying
    /// it when another writer got there first.
    async fn commit(&mut self, change: Change) -> HubResult<Committed> {
        let sealed = match &change {
            Change::Tokens(tokens) => Some(
                tokens::seal(self.hub, &self.account.id, &self.account.provider, tokens).await?,
            ),
            _ => None,
        };
        for _ in 0..WRITE_ATTEMPTS {
            let mut next = self.account.clone();
            match &change {
                Change::Tokens(tokens) => {
                    next.tokens = sealed.clone().expect("sealed above");
                    next.has_refresh_token = tokens.refresh_token.is_some();
                    // A refresh that worked proves the grant is alive, whatever a racing
                    // worker concluded from its own, older refresh token.
                    next.status = AccountStatus::Active;
                }
                Change::Cursor { to, finished, .. } => {
                    next.cursor = Some(to.clone());
                    if let Some(outcome) = finished {
                        record_outcome(&mut next, outcome);
                    }
                }
                Change::Finished(outcome) => record_outcome(&mut next, outcome),
                Change::NeedsReauth => {
                    next.status = AccountStatus::NeedsReauth;
                    next.last_sync = Some(SyncOutcome {
                        finished_at: Utc::now(),
                        result: "needs_reauth".into(),
                        files_changed: 0,
                        detail: Some("the provider refused the refresh token".into()),
                    });
                }
            }
            next.version = self.account.version + 1;
            if self
                .hub
                .store
                .update_account(&next, self.account.version)
                .await?
                == Write::Done
            {
                self.account = next;
                if let Change::Tokens(tokens) = &change {
                    self.tokens = tokens.clone();
                }
                return Ok(Committed::Yes);
            }
            let latest = self.reload().await?;
            match &change {
                Change::Cursor { from, .. } if latest.cursor != *from => {
                    return Ok(Committed::Superseded)
                }
                // Another worker refreshed since our refresh was refused: the grant is alive.
                Change::NeedsReauth if latest.tokens != self.account.tokens => {
                    self.tokens = tokens::open(self.hub, &latest).await?;
                    self.account = latest;
                    return Ok(Committed::Superseded);
                }
                Change::Tokens(_) if latest.tokens != self.account.tokens => {
                    // Someone else stored fresher tokens meanwhile: theirs are current.
                    self.tokens = tokens::open(self.hub, &latest).await?;
                    self.account = latest;
                    return Ok(Committed::Yes);
                }
                _ => {}
            }
            // Keep the tokens we hold in step with the record we now build on.
            if latest.tokens != self.account.tokens {
                self.tokens = tokens::open(self.hub, &latest).await?;
            }
            self.account = latest;
        }
        Err(HubError::internal(
            "the account kept changing during its sync",
        ))
    }
}

fn record_outcome(account: &mut Account, outcome: &SyncOutcome) {
    account.last_sync = Some(outcome.clone());
    if outcome.result == "ok" {
        account.last_synced_at = Some(outcome.finished_at);
    }
}

/// At most this many records of one batch sync at once: enough to overlap provider latency,
/// few enough to stay inside a small function's memory and the providers' rate limits.
pub const CONCURRENT_RECORDS: usize = 4;

/// One queue message: its id and body.
pub struct Message {
    pub id: String,
    pub body: String,
}

/// Runs a batch of queue messages (sync jobs, and fan-out continuations) and returns the ids of those that failed, for SQS's
/// partial batch response: only they come back, after the visibility timeout, until the
/// redrive policy moves them to the dead-letter queue. A body that is not a sync job fails
/// too, so it lands in the dead-letter queue for inspection instead of vanishing.
pub async fn handle_batch(hub: &Hub, messages: Vec<Message>) -> Vec<String> {
    use futures::StreamExt;
    futures::stream::iter(messages)
        .map(|message| async move {
            let outcome = match serde_json::from_str::<QueueMessage>(&message.body) {
                Ok(QueueMessage::Sync(job)) => sync(hub, &job).await.map(|_| ()),
                Ok(QueueMessage::FanOut { continue_fanout }) => {
                    fanout::fan_out(hub, continue_fanout, fanout::BACKGROUND_BUDGET).await.map(|_| ())
                }
                Err(e) => {
                    tracing::error!(message_id = %message.id, error = %e, "message is neither a sync job nor a fan-out");
                    Err(HubError::InvalidJson(e.to_string()))
                }
            };
            outcome.err().map(|_| message.id)
        })
        .buffer_unordered(CONCURRENT_RECORDS)
        .filter_map(|failed| async move { failed })
        .collect()
        .await
}
