//! Provider push notifications (contract section 8): what `provider-webhooks` does with a
//! notification once the web layer has read it, and nothing else, so that it answers within
//! the providers' few seconds: check it, and queue one `push` sync job per account it names.
//!
//! Coalescing: a job is queued only when the account's push mark
//! ([`crate::store::Store::mark_push_pending`], a conditional write) was free; the worker
//! clears the mark when it starts the job. A burst of notifications while the job waits in
//! the queue therefore queues nothing more, and one that comes once the job has started
//! queues the next, so a change made during a sync is not missed. A replayed notification at
//! worst queues one more sync.
//!
//! Each provider's rules (signatures, secrets, shapes) live in its own module behind
//! [`crate::providers::Connector`]; here only what every provider shares.

use chrono::{Duration, Utc};
use futures::StreamExt;

use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use crate::model::{Account, AccountStatus, QueueMessage, SyncJob, SyncReason};
use crate::providers::{dropbox, PushRefusal};
use crate::store::MAX_KEY_LEN;

/// How long a push mark holds back further jobs when its own job never starts (the
/// notification's invocation died between the mark and the queue call, or the job sits behind
/// a long backlog): then the next notification queues again.
pub const PENDING_FOR: Duration = Duration::minutes(15);

/// Identities looked up at once for one app-wide notification.
const LOOKUPS_IN_FLIGHT: usize = 8;

/// What a notification led to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Queued {
    /// Push jobs queued.
    pub jobs: usize,
    /// Accounts whose job was already queued and not started.
    pub coalesced: usize,
}

impl Queued {
    fn add(mut self, other: Queued) -> Queued {
        self.jobs += other.jobs;
        self.coalesced += other.coalesced;
        self
    }
}

/// A Dropbox webhook notification: `signature` is `X-Dropbox-Signature`, `body` the raw body,
/// checked before it is read. Every connected account of each Dropbox account id it names
/// gets a push job (one identity may be connected by several owners). With `HUB_PUSH=off`
/// an authentic notification is answered and queues nothing.
pub async fn dropbox_notification(
    hub: &Hub,
    signature: Option<&str>,
    body: &[u8],
) -> HubResult<Queued> {
    let connector = hub.providers.for_login(dropbox::NAME)?;
    let identities = connector
        .app_notification(signature, body)
        .map_err(|refusal| refused(dropbox::NAME, refusal))?;
    if !hub.config.push {
        tracing::info!(
            provider = dropbox::NAME,
            "push notification ignored: HUB_PUSH is off"
        );
        return Ok(Queued::default());
    }
    let mut identities: Vec<String> = identities
        .into_iter()
        // A key this long names no identity (see `MAX_KEY_LEN`): nothing to look up.
        .filter(|id| !id.is_empty() && id.len() <= MAX_KEY_LEN)
        .collect();
    identities.sort();
    identities.dedup();
    let outcomes: Vec<HubResult<Queued>> = futures::stream::iter(identities)
        .map(|identity| async move { queue_for_identity(hub, dropbox::NAME, &identity).await })
        .buffer_unordered(LOOKUPS_IN_FLIGHT)
        .collect()
        .await;
    let mut queued = Queued::default();
    for outcome in outcomes {
        queued = queued.add(outcome?);
    }
    tracing::info!(
        provider = dropbox::NAME,
        jobs = queued.jobs,
        coalesced = queued.coalesced,
        "push notification taken"
    );
    Ok(queued)
}

/// The contract's answer to a refused notification: 401 for a forgery (logged without what
/// it carried), 400 for an authentic one in a shape the provider does not send.
fn refused(provider: &str, refusal: PushRefusal) -> HubError {
    match refusal {
        PushRefusal::Forged => {
            tracing::warn!(provider, "push notification refused: it does not check out");
            HubError::ForgedNotification
        }
        PushRefusal::Malformed(why) => HubError::InvalidRequest(why),
        PushRefusal::Unsupported => {
            HubError::NotFound(format!("/webhooks/{provider} (no such notification)"))
        }
    }
}

/// Queues a push job for every active account holding the identity: a direct lookup of the
/// identity's records, never a scan.
async fn queue_for_identity(hub: &Hub, provider: &str, identity: &str) -> HubResult<Queued> {
    let mut queued = Queued::default();
    for account_id in hub.store.identity_holders(provider, identity).await? {
        // The identity records may name an account a crash left half-created or half-deleted.
        let Some(account) = hub.store.get_account(&account_id).await? else {
            continue;
        };
        queued = queued.add(queue_push_job(hub, &account).await?);
    }
    Ok(queued)
}

/// Queues one push job for the account unless one is queued and not started yet. Accounts
/// that must log in again are left alone: their sync would only be skipped.
pub async fn queue_push_job(hub: &Hub, account: &Account) -> HubResult<Queued> {
    if account.status != AccountStatus::Active {
        return Ok(Queued::default());
    }
    let now = Utc::now();
    if !hub
        .store
        .mark_push_pending(&account.id, now, now + PENDING_FOR)
        .await?
    {
        return Ok(Queued {
            jobs: 0,
            coalesced: 1,
        });
    }
    let job = QueueMessage::Sync(SyncJob {
        account_id: account.id.clone(),
        provider: account.provider.clone(),
        reason: SyncReason::Push,
        requested_at: now,
    });
    if let Err(error) = hub.queue.enqueue(&[job]).await {
        // No job stands behind the mark: free it, so the provider's retry queues one.
        hub.store.clear_push_pending(&account.id).await?;
        return Err(error);
    }
    Ok(Queued {
        jobs: 1,
        coalesced: 0,
    })
}
