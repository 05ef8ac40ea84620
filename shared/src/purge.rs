//! Deleting an account so that the delete always finishes (docs/API.md, "Deleting an account").
//!
//! `DELETE /users/{id}` stops the account's channels and revokes its grant first (they need
//! its live tokens: `crate::accounts`), then:
//!
//! 1. replaces the account with a tombstone ([`Deletion`]), one conditional write: the
//!    sealed tokens are gone with the account, its identity and owner records are removed in
//!    the same write, no read of accounts returns it (404 on every route, out of `/users` and
//!    the fan-out), and no sync's conditional write of it succeeds (a sync that finds it
//!    gone stops, and a job for it does nothing);
//! 2. puts a purge job on the sync queue, delayed past the end of this request;
//! 3. queues `account.deleted`, the event produced once and kept in the tombstone, and marks
//!    the tombstone announced;
//! 4. removes the index and its feed a page at a time until its deadline, then the channel
//!    records, the push mark and last the tombstone.
//!
//! A large account's index outlasts the request: the purge job goes on with it in the
//! sync-worker, a page at a time until its invocation's deadline, and requeues itself until
//! the index is empty. Every step is idempotent and the tombstone goes last, so a process
//! that dies anywhere leaves a tombstone whose purge job (or a repeated `DELETE`, which
//! answers 204 while the tombstone is there and queues the purge again) finishes the delete.
//!
//! `account.deleted` is sent once: by the `DELETE` whose tombstone write won (a racing or
//! repeated one finds the tombstone and sends nothing), or, when that request died before
//! sending it, by the purge job once that request is surely over ([`ORPHANED_AFTER`]). It
//! carries the same `webhook-id` whoever sends it.

use std::time::Duration;

use chrono::Utc;
use tracing::Instrument;

use crate::deadline::{Deadline, ANSWER_MARGIN, HTTP_FUNCTION_TIMEOUT};
use crate::error::{HubError, HubResult};
use crate::events::Event;
use crate::hub::Hub;
use crate::model::{Account, Deletion, PurgeJob, QueueMessage};
use crate::queue::MAX_DELAY;
use crate::store::{AccountStore, Write, PURGE_PAGE};

/// How long a `DELETE` purges before it leaves the rest to the purge job, at most (and never
/// past its deadline): an account of a few thousand entries is gone when it answers, and a
/// larger one does not keep its client waiting for its whole timeout.
pub const INLINE_PURGE_BUDGET: Duration = Duration::from_secs(5);

/// A tombstone not yet announced this long after its delete began was left by a request that
/// died: the HTTP functions' timeout has ended it, so sending its event now cannot make a
/// second one. The margin covers two clocks a few seconds apart.
pub const ORPHANED_AFTER: Duration = HTTP_FUNCTION_TIMEOUT.saturating_add(Duration::from_secs(5));

/// Tombstone writes tried while syncs keep changing the account.
const BEGIN_ATTEMPTS: usize = 5;

/// How far a purge got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Nothing of the account is left.
    Gone,
    /// Something is left; the purge can go on `after` from now.
    Pending { after: Duration },
}

/// The rest of `DELETE /users/{id}` once the channels are stopped and the grant revoked:
/// the tombstone, the purge job, the event, then the purge until `deadline` (at most
/// [`INLINE_PURGE_BUDGET`]). `AccountNotFound` only when there is neither an account nor a
/// delete of it under way.
pub async fn delete(hub: &Hub, account: Account, deadline: Deadline) -> HubResult<()> {
    let account_id = account.id.clone();
    let Some(deletion) = begin(hub.store.as_ref(), account).await? else {
        // Another delete began first: it announces, this one makes sure the purge goes on.
        return repeat(hub, &account_id).await;
    };
    // Queued before anything else: from here on a crash leaves the tombstone with its job
    // pending. Delayed past this request's deadline, so it does not purge beside this one;
    // it finds nothing left when this request finishes the purge itself.
    enqueue(hub, &account_id, deadline.remaining() + ANSWER_MARGIN).await?;
    let deletion = announce(hub, deletion).await?;
    let progress = purge(
        hub.store.as_ref(),
        deletion,
        deadline.at_most(INLINE_PURGE_BUDGET),
    )
    .await?;
    tracing::info!(account_id, ?progress, "account deleted");
    Ok(())
}

/// `DELETE` of an account that is no longer live: 204 while its delete is under way (and the
/// purge is queued again, so that a lost or dead-lettered job cannot leave it half-done),
/// `AccountNotFound` once it is finished, or when there never was one.
pub async fn repeat(hub: &Hub, account_id: &str) -> HubResult<()> {
    if hub.store.get_deletion(account_id).await?.is_none() {
        return Err(HubError::AccountNotFound(account_id.to_string()));
    }
    enqueue(hub, account_id, Duration::ZERO).await?;
    tracing::info!(account_id, "delete under way; its purge queued again");
    Ok(())
}

/// Puts the tombstone in the account's place, re-reading the account when a sync changed
/// it meanwhile. `None` when the account is no longer live: another delete began first.
async fn begin(accounts: &dyn AccountStore, mut account: Account) -> HubResult<Option<Deletion>> {
    for _ in 0..BEGIN_ATTEMPTS {
        let now = Utc::now();
        let event = Event::deleted(&account).produce(now)?;
        let deletion = Deletion::of(&account, event, now);
        match accounts.begin_deletion(&account, &deletion).await? {
            Write::Done => return Ok(Some(deletion)),
            Write::Conflict => match accounts.get_account(&account.id).await? {
                Some(latest) => account = latest,
                None => return Ok(None),
            },
        }
    }
    Err(HubError::internal(
        "the account kept changing during its delete",
    ))
}

/// Queues the tombstone's `account.deleted` and marks it sent. The event is the one
/// produced when the delete began, so a second sender (after a crash between the two steps)
/// sends the same `webhook-id`, which the app de-duplicates.
async fn announce(hub: &Hub, deletion: Deletion) -> HubResult<Deletion> {
    if let Some(queue) = &hub.events {
        queue.publish(&deletion.event).await?;
        tracing::info!(webhook_id = %deletion.event.webhook_id, event_type = %deletion.event.kind, "event queued");
    }
    let announced = Deletion {
        announced: true,
        version: deletion.version + 1,
        ..deletion.clone()
    };
    match hub
        .store
        .update_deletion(&announced, deletion.version)
        .await?
    {
        Write::Done => Ok(announced),
        // Changed or ended meanwhile: go on with what is stored.
        Write::Conflict => Ok(hub
            .store
            .get_deletion(&deletion.account_id)
            .await?
            .unwrap_or(announced)),
    }
}

/// Removes the account's index a page at a time until `deadline`, then, once the index is
/// empty, no sync can still be writing and the event is out, the rest and the tombstone.
/// Every store call is bounded by the deadline: one cut short is simply done again.
pub async fn purge(
    accounts: &dyn AccountStore,
    deletion: Deletion,
    deadline: Deadline,
) -> HubResult<Progress> {
    let id = deletion.account_id.as_str();
    let out_of_time = Progress::Pending {
        after: Duration::ZERO,
    };
    loop {
        if deadline.passed() {
            return Ok(out_of_time);
        }
        match tokio::time::timeout(deadline.remaining(), accounts.purge_page(id, PURGE_PAGE)).await
        {
            Err(_) => return Ok(out_of_time),
            Ok(done) => {
                if done? {
                    break;
                }
            }
        }
    }
    let now = Utc::now();
    // A sync that held the lease when the delete began may store one more page until its
    // lease ends (`crate::sync`): the index is purged again after that.
    if let Some(until) = deletion
        .lease
        .as_ref()
        .map(|lease| lease.until)
        .filter(|until| *until > now)
    {
        return Ok(Progress::Pending {
            after: (until - now).to_std().unwrap_or_default(),
        });
    }
    if !deletion.announced {
        // The request that began the delete is still sending the event, or died before:
        // wait until it is surely over (see `run`).
        let orphaned = deletion.deleting_since
            + chrono::Duration::from_std(ORPHANED_AFTER).expect("a few seconds");
        return Ok(Progress::Pending {
            after: (orphaned - now).to_std().unwrap_or_default(),
        });
    }
    match tokio::time::timeout(deadline.remaining(), accounts.end_deletion(&deletion)).await {
        Err(_) => Ok(out_of_time),
        Ok(Err(e)) => Err(e),
        Ok(Ok(Write::Done)) => Ok(Progress::Gone),
        // Another purge ended it, or changed it (then the next run goes on from what is
        // stored).
        Ok(Ok(Write::Conflict)) => Ok(match accounts.get_deletion(id).await? {
            None => Progress::Gone,
            Some(_) => out_of_time,
        }),
    }
}

/// Deletes the account and everything of it at once, unbounded in time, with no event and
/// no purge job: begins its deletion, purges its index, ends the deletion. False when there
/// was no live account; what a tombstone or a late page of a sync left is removed then too.
/// Tests only (feature `testing`), which set up and clear accounts with it:
/// `DELETE /users/{id}` is [`delete`]'s, which announces the delete once and bounds every
/// step by the request's deadline.
#[cfg(feature = "testing")]
pub async fn delete_at_once(accounts: &dyn AccountStore, id: &str) -> HubResult<bool> {
    let existed = match accounts.get_account(id).await? {
        Some(account) => begin(accounts, account).await?.is_some(),
        None => false,
    };
    if let Some(deletion) = accounts.get_deletion(id).await? {
        while !accounts.purge_page(id, PURGE_PAGE).await? {}
        if accounts.end_deletion(&deletion).await? == Write::Conflict {
            return Err(HubError::internal(
                "the account's tombstone changed during its delete",
            ));
        }
    } else {
        // A late page of a sync that ran when an earlier delete ended.
        while !accounts.purge_page(id, PURGE_PAGE).await? {}
    }
    Ok(existed)
}

/// A purge job (the sync-worker's): goes on with the delete of the account until
/// `deadline`, and puts itself back on the queue while something is left. Nothing to do
/// when the delete is finished (the job the `DELETE` queued finds nothing when the request
/// purged everything itself). Sends the event of a delete whose request died before it did.
pub async fn run(hub: &Hub, job: &PurgeJob, deadline: Deadline) -> HubResult<Progress> {
    let span = tracing::info_span!("purge", account_id = %job.account_id);
    run_job(hub, job, deadline).instrument(span).await
}

async fn run_job(hub: &Hub, job: &PurgeJob, deadline: Deadline) -> HubResult<Progress> {
    let Some(mut deletion) = hub.store.get_deletion(&job.account_id).await? else {
        tracing::info!(account_id = %job.account_id, "nothing left to purge");
        return Ok(Progress::Gone);
    };
    let age = (Utc::now() - deletion.deleting_since)
        .to_std()
        .unwrap_or_default();
    if !deletion.announced && age >= ORPHANED_AFTER {
        deletion = announce(hub, deletion).await?;
    }
    let progress = purge(hub.store.as_ref(), deletion, deadline).await?;
    match progress {
        Progress::Gone => tracing::info!("purge finished"),
        Progress::Pending { after } => {
            enqueue(hub, &job.account_id, after).await?;
            tracing::info!(after_secs = after.as_secs(), "purge requeued");
        }
    }
    Ok(progress)
}

/// What a sync does about its account being gone, at its start (`holder` `None`) or found
/// during it by the sync holding the lease `holder`. With a delete under way, its purge
/// removes the index: a sync whose lease the tombstone kept gives it back, so that the purge
/// need not wait for the lease to expire, and queues the purge to go on at once. With no
/// tombstone either (a delete that ended), the sync removes what it may have stored since.
pub async fn after_sync(hub: &Hub, account_id: &str, holder: Option<&str>) -> HubResult<()> {
    for _ in 0..BEGIN_ATTEMPTS {
        let Some(deletion) = hub.store.get_deletion(account_id).await? else {
            return hub.store.purge_files(account_id).await;
        };
        let held = deletion
            .lease
            .as_ref()
            .is_some_and(|lease| Some(lease.holder.as_str()) == holder);
        if !held {
            return Ok(());
        }
        let released = Deletion {
            lease: None,
            version: deletion.version + 1,
            ..deletion.clone()
        };
        if hub
            .store
            .update_deletion(&released, deletion.version)
            .await?
            == Write::Done
        {
            return enqueue(hub, account_id, Duration::ZERO).await;
        }
    }
    // The tombstone kept changing: its purge waits for the lease to expire instead.
    Ok(())
}

/// Puts a purge job for the account on the sync queue, `after` from now (at most SQS's 15
/// minutes).
async fn enqueue(hub: &Hub, account_id: &str, after: Duration) -> HubResult<()> {
    let job = QueueMessage::Purge {
        purge_account: PurgeJob {
            account_id: account_id.to_string(),
            requested_at: Utc::now(),
        },
    };
    hub.queue.enqueue_delayed(&job, after.min(MAX_DELAY)).await
}
