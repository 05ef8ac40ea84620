//! The SQS batch consumer of `sync-worker`: each message of a batch to its job by its kind
//! (a sync job, or the next step of a fan-out), a few at once, and the ids of those that
//! failed for SQS's partial batch response.

use tracing::Instrument;

use super::session;
use crate::deadline::Deadline;
use crate::error::{HubError, HubResult};
use crate::fanout;
use crate::hub::Hub;
use crate::model::QueueMessage;

/// At most this many records of one batch sync at once: enough to overlap provider latency,
/// few enough to stay inside a small function's memory and the providers' rate limits.
pub const CONCURRENT_RECORDS: usize = 4;

/// One queue message: its id and body.
pub struct Message {
    pub id: String,
    pub body: String,
}

/// Kept back from the worker invocation's deadline: the longest store-and-requeue after the
/// last provider call (a page of up to a thousand entries in 40 `BatchWriteItem` calls, the
/// cursor, the requeue, each with its bounded retries), well inside the 120 s function.
pub const RESERVE: std::time::Duration = crate::deployment::SYNC_WORKER.reserve;

/// The deadline of a worker invocation that starts now, less [`RESERVE`]: for callers that
/// run the worker's code outside Lambda (tests, benchmarks: feature `testing`).
#[cfg(feature = "testing")]
pub fn fresh_invocation() -> Deadline {
    Deadline::after(crate::queue::local::WORKER_TIMEOUT).less(RESERVE)
}

/// Runs a batch of queue messages (sync jobs, and fan-out continuations) and returns the ids
/// of those that failed, for SQS's partial batch response: only they come back, after the
/// visibility timeout, until the redrive policy moves them to the dead-letter queue. A body
/// that is not a sync job fails too, so it lands in the dead-letter queue for inspection
/// instead of vanishing. No work starts past `deadline` (the invocation's less [`RESERVE`]):
/// a job out of time is requeued and reported done, so the batch always answers.
pub async fn handle_batch(hub: &Hub, messages: Vec<Message>, deadline: Deadline) -> Vec<String> {
    use futures::StreamExt;
    futures::stream::iter(messages)
        .map(|message| {
            let span = tracing::info_span!("message", message_id = %message.id);
            async move {
                let outcome = run_message(hub, &message.body, deadline).await;
                outcome.err().map(|_| message.id)
            }
            .instrument(span)
        })
        .buffer_unordered(CONCURRENT_RECORDS)
        .filter_map(|failed| async move { failed })
        .collect()
        .await
}

/// One message to its job, by its kind: this is where every kind of job the worker runs is
/// dispatched. `Err` makes it a batch item failure.
async fn run_message(hub: &Hub, body: &str, deadline: Deadline) -> HubResult<()> {
    match serde_json::from_str::<QueueMessage>(body) {
        Ok(QueueMessage::Sync(job)) => session::run(hub, &job, deadline).await.map(|_| ()),
        Ok(QueueMessage::FanOut { continue_fanout }) => {
            fanout::fan_out(hub, continue_fanout, deadline)
                .await
                .map(|_| ())
        }
        Ok(QueueMessage::Purge { purge_account }) => {
            crate::purge::run(hub, &purge_account, deadline)
                .await
                .map(|_| ())
        }
        Err(e) => {
            tracing::error!(error = %e, "message is neither a sync job, a fan-out nor a purge");
            Err(HubError::InvalidJson(format!(
                "the message is not a job the worker knows: {e}"
            )))
        }
    }
}
