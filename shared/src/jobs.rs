//! One waiting sync job per account.
//!
//! An account's job waits on the queue from when it is queued (by the fan-out, `POST /sync`,
//! a push notification, or the worker requeueing a sync that ran out of time or was told to
//! wait) until a worker starts it. While one waits, queueing a second would only sync the
//! account twice, and a sync requeued for a long `Retry-After` would soon have the schedule's
//! jobs piled on top of it. So every producer queues through here, behind the account's
//! job mark: the push mark of [`crate::push`] (`PUSH#<account> PENDING`, a conditional write,
//! [`crate::store::PushStore::mark_push_pending`]), which now stands for a waiting job of any
//! reason. A job is queued only when the mark was free; the worker clears it when it starts
//! a job ([`crate::sync`]), so a notification or a `POST /sync` that comes once the job has
//! started queues the next one, and a change made during a sync is not missed.
//!
//! A mark whose job was never queued (an invocation that died between the two) holds for
//! [`PENDING_FOR`] at most; a requeued job's mark holds for its delay on top of that.
//!
//! Cost: one conditional write per account per fan-out (a mark held fails its condition and
//! costs the same), beside the one SQS message it may save, and one delete per job when the
//! worker starts it; the fan-out writes its marks concurrently, so its time per chunk stays a
//! few round trips.

use chrono::Utc;
use futures::StreamExt;

use crate::error::HubResult;
use crate::hub::Hub;
use crate::model::{QueueMessage, SyncJob};
use crate::queue::MAX_DELAY;

/// How long a mark holds back further jobs when its own job does not start (the
/// notification's invocation died between the mark and the queue call, or the job sits behind
/// a long backlog): then the next producer queues again.
pub const PENDING_FOR: chrono::Duration = chrono::Duration::minutes(15);

/// Marks written at once by one producer.
const MARKS_IN_FLIGHT: usize = 16;

/// What queueing came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Queued {
    /// Jobs put on the queue.
    pub jobs: usize,
    /// Accounts whose job was already waiting: nothing queued for them.
    pub coalesced: usize,
}

impl Queued {
    /// Both counts summed (named as `crate::push`, its first user, calls it).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, other: Queued) -> Queued {
        self.jobs += other.jobs;
        self.coalesced += other.coalesced;
        self
    }
}

/// Queues each job whose account has no job waiting. A failed queue call frees the marks it
/// took (no job stands behind them) and fails.
pub async fn queue(hub: &Hub, jobs: Vec<SyncJob>) -> HubResult<Queued> {
    let total = jobs.len();
    let now = Utc::now();
    let marked: Vec<HubResult<Option<SyncJob>>> = futures::stream::iter(jobs)
        .map(|job| async move {
            let free = hub
                .store
                .mark_push_pending(&job.account_id, now, now + PENDING_FOR)
                .await?;
            Ok(free.then_some(job))
        })
        .buffered(MARKS_IN_FLIGHT)
        .collect()
        .await;
    let mut free = Vec::with_capacity(total);
    let mut failure = None;
    for mark in marked {
        match mark {
            Ok(Some(job)) => free.push(job),
            Ok(None) => {}
            Err(error) => failure = Some(error),
        }
    }
    let messages: Vec<QueueMessage> = free.iter().cloned().map(QueueMessage::Sync).collect();
    let sent = match failure {
        Some(error) => Err(error),
        None => hub.queue.enqueue(&messages).await,
    };
    if let Err(error) = sent {
        for job in &free {
            // Best effort: a mark left behind expires after `PENDING_FOR`.
            let _ = hub.store.clear_push_pending(&job.account_id).await;
        }
        return Err(error);
    }
    Ok(Queued {
        jobs: free.len(),
        coalesced: total - free.len(),
    })
}

/// Puts a job that stopped short back on the queue, delivered `after` from now (at most
/// [`MAX_DELAY`]), its account marked for that long plus [`PENDING_FOR`], so that no producer
/// piles a job on top of it meanwhile. The continuation is queued even when the mark is held
/// (a job queued since this one started, or a mark whose job was never queued): dropping it
/// for a job that may not exist could leave the sync stopped until the next trigger, and it
/// carries the job's count of requeues without progress (see [`crate::sync`]), which a
/// fresh job would reset. The mark is then taken over with this job's longer hold.
pub async fn requeue(hub: &Hub, job: &SyncJob, after: std::time::Duration) -> HubResult<()> {
    let after = after.min(MAX_DELAY);
    let now = Utc::now();
    let until = now + chrono::Duration::from_std(after).unwrap_or(PENDING_FOR) + PENDING_FOR;
    if !hub
        .store
        .mark_push_pending(&job.account_id, now, until)
        .await?
    {
        hub.store.clear_push_pending(&job.account_id).await?;
        hub.store
            .mark_push_pending(&job.account_id, now, until)
            .await?;
    }
    hub.queue
        .enqueue_delayed(&QueueMessage::Sync(job.clone()), after)
        .await
}
