//! The sync of one account: refresh the tokens when due, page through the provider's
//! listing, store each page of the file index and then the cursor that follows it.
//!
//! Safe to run twice for the same job, or twice at once for the same account:
//! - files are stored before the cursor that passes them, so a sync killed half-way resumes
//!   from the last stored page and misses nothing (a page may be stored twice: upserts);
//! - every account write is conditional on the version read. A worker that finds the cursor
//!   moved by another worker stops (the other one is ahead); one that finds the tokens
//!   refreshed by another adopts them. So a cursor never moves backwards and a rotated refresh
//!   token is never overwritten by an older one;
//! - one enumeration of an account at a time: a sync takes the account's lease (a field of
//!   the account, so the same conditional write) before it lists, keeps it on every write,
//!   and gives it back with its last one. A second sync that finds a live lease ends when
//!   the lease was taken after its job was asked for, and is requeued until the lease ends
//!   otherwise; one that finds its own lease taken stops. A lease outlasts the worker's invocation, so an
//!   expired one was left by a worker that is gone;
//! - each page's entries are numbered for the change feed (`crate::changes`) above the
//!   account's watermark `feed_seq`, and the page's cursor commit raises the watermark past
//!   them: the feed serves nothing above the watermark, so a reader never sees a number
//!   that a later entry could still land below.
//!
//! A sync never runs into its function's timeout (contract section 2, "Time"): no provider
//! call starts, or runs, past the deadline the caller passes, which keeps its own reserve for
//! storing the place. Then, or when a provider asks to wait longer than the retry engine
//! waits, the job goes back on the queue for the same account, delayed by the wait asked:
//! the message itself is done, so it neither uses up its receives nor fails its batch. That
//! cannot go on for ever: a job counts its requeues without a stored page and fails past
//! [`MAX_STALLED_REQUEUES`], and a provider that hands back the continuation cursor it was
//!
//! One file per concept, so that each reads on its own:
//! - [`batch`]: the SQS batch consumer: one queue message of each kind to its job;
//! - `session`: the orchestration of one sync (a [`Session`](session) over the account it
//!   reads), its lease and its requeue;
//! - `account_change`: the account record's state machine, pure (`Change`, `applied`,
//!   `superseded`), and the conditional write that applies it;
//! - `listing`: paging through the provider's listing, with its one-time recoveries;
//! - `index_writer`: storing a page of the index (and the removals it carries), then the
//!   cursor that passes it;
//! - `refresh`: refreshing the tokens and storing them before anything else can lose them.
//!
//! A sync job, as [`run`] runs it, is three steps: the job starts (its coalescing mark is
//! cleared), the account syncs, and push upkeep follows a sync that finished. The sync
//! proper knows nothing of push.

use tracing::Instrument;

use crate::deadline::Deadline;
use crate::error::HubResult;
use crate::hub::Hub;
use crate::model::SyncJob;

mod account_change;
pub mod batch;
mod index_writer;
mod listing;
mod refresh;
mod session;

pub use batch::{fresh_invocation, handle_batch, Message, CONCURRENT_RECORDS, RESERVE};
pub use session::MAX_STALLED_REQUEUES;

/// How a job ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncResult {
    Synced {
        pages: u64,
        files: u64,
    },
    /// The provider refused the refresh token: the account is marked `needs_reauth`.
    NeedsReauth,
    /// Nothing to do.
    Skipped(SkipReason),
    /// Out of time, or asked by the provider to wait: the place is stored and a job for the
    /// account is back on the queue, delivered `after` from now.
    Requeued {
        after: std::time::Duration,
    },
}

/// Why a job had nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The account was deleted after the job was queued.
    AccountDeleted,
    /// The job names another provider than the account's (a forged or stale message).
    ProviderMismatch,
    /// The account waits for its user to log in again.
    NeedsReauth,
    /// Another worker moved the cursor meanwhile: it is ahead of this one.
    AnotherWorkerAhead,
    /// Another worker holds the account's lease: it is syncing the account now.
    AnotherWorkerSyncing,
}

/// Runs one sync job, inside one span that every log line of it carries. No provider call
/// starts or runs past `deadline`.
pub async fn run(hub: &Hub, job: &SyncJob, deadline: Deadline) -> HubResult<SyncResult> {
    let span = tracing::info_span!(
        "sync",
        account_id = %job.account_id,
        provider = %job.provider,
        reason = ?job.reason,
    );
    run_job(hub, job, deadline).instrument(span).await
}

async fn run_job(hub: &Hub, job: &SyncJob, deadline: Deadline) -> HubResult<SyncResult> {
    // The job starts: it no longer waits, so a notification or a `POST /sync` from now on
    // (which may announce a change this sync lists past) queues the next job
    // (`crate::jobs`).
    hub.store.clear_push_pending(&job.account_id).await?;
    let (result, finished) = session::sync_account(hub, job, deadline).await;
    if let Some(finished) = finished {
        push_upkeep(hub, &finished, deadline).await;
    }
    result
}

/// Push upkeep, after a sync that finished: keeps the account's push channel alive, with
/// the account and tokens as the sync left them. Never fails the job (see
/// [`crate::push::keep_channel`]).
async fn push_upkeep(hub: &Hub, finished: &session::Finished, deadline: Deadline) {
    crate::push::keep_channel(
        hub,
        finished.connector.as_ref(),
        &finished.account,
        &finished.tokens,
        deadline,
    )
    .await;
}
