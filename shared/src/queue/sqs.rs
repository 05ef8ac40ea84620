//! SQS: `SendMessageBatch` in chunks of ten, several chunks in flight, failed entries re-sent
//! a bounded number of times. The same adapter serves the sync queue and the events queue,
//! each with its own URL. The sync queue's sends push jobs to the push queue when it has one
//! (`PUSH_QUEUE_URL`, [`SqsQueue::with_push_queue`]).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use futures::{StreamExt, TryStreamExt};

use super::{EventQueue, JobQueue, MAX_BATCH, MAX_DELAY};
use crate::error::{HubError, HubResult};
use crate::model::{QueueMessage, QueuedEvent, SyncReason};
use crate::retry::{retry, Attempt, RetryPolicy, Stopped};

const CHUNKS_IN_FLIGHT: usize = 8;
/// Re-sending the entries SQS failed without blaming the sender (its side, worth another try),
/// with the same bounded backoff as every other retry.
const FAILED_ENTRY_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    base_delay: Duration::from_millis(100),
    max_delay: Duration::from_millis(1600),
    // SQS asks for no particular wait.
    max_retry_after: Duration::ZERO,
};

#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
    /// Where [`JobQueue::enqueue`] puts push jobs: a queue the worker takes without a
    /// batching window (template.yaml `PushQueue`), so that a pushed change waits for no
    /// batch of the sync queue to fill. Delayed jobs (requeues) stay on the sync queue: they
    /// wait anyway, and only `provider-webhooks` may send to the push queue.
    push_queue_url: Option<String>,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsQueue {
            client,
            queue_url: queue_url.into(),
            push_queue_url: None,
        }
    }

    /// Push jobs given to [`JobQueue::enqueue`] go to `push_queue_url` (when set).
    pub fn with_push_queue(mut self, push_queue_url: Option<String>) -> Self {
        self.push_queue_url = push_queue_url;
        self
    }

    /// The queue `message` goes to when queued without a delay.
    fn queue_of(&self, message: &QueueMessage) -> &str {
        match (message, &self.push_queue_url) {
            (QueueMessage::Sync(job), Some(push)) if job.reason == SyncReason::Push => push,
            _ => &self.queue_url,
        }
    }

    /// `delay_seconds` applies to every entry (SQS's per-message `DelaySeconds`).
    async fn send_chunk(
        &self,
        queue_url: &str,
        chunk: &[QueueMessage],
        delay_seconds: i32,
    ) -> HubResult<()> {
        let bodies = chunk
            .iter()
            .map(|job| serde_json::to_string(job).map_err(HubError::internal))
            .collect::<HubResult<Vec<_>>>()?;
        self.send_bodies(queue_url, bodies, delay_seconds).await
    }

    /// Up to ten message bodies in one `SendMessageBatch`, failed entries re-sent.
    async fn send_bodies(
        &self,
        queue_url: &str,
        bodies: Vec<String>,
        delay_seconds: i32,
    ) -> HubResult<()> {
        let entries = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .delay_seconds(delay_seconds)
                    .build()
                    .map_err(HubError::internal)
            })
            .collect::<HubResult<Vec<_>>>()?;
        retry(&FAILED_ENTRY_RETRY, entries, |mut entries| async move {
            let answer = self
                .client
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries.clone()))
                .send()
                .await
                .map_err(|e| {
                    HubError::internal(format!(
                        "SQS SendMessageBatch failed: {}",
                        DisplayErrorContext(e)
                    ))
                })?;
            let failed = answer.failed();
            if failed.is_empty() {
                return Ok(Attempt::Done(()));
            }
            if let Some(fault) = failed.iter().find(|f| f.sender_fault()) {
                return Err(HubError::internal(format!(
                    "SQS refused a job: {} {}",
                    fault.code(),
                    fault.message().unwrap_or("")
                )));
            }
            entries.retain(|entry| failed.iter().any(|f| f.id() == entry.id()));
            Ok(Attempt::Again {
                left: entries,
                retry_after: None,
            })
        })
        .await
        .map_err(|stopped| match stopped {
            Stopped::Failed(error) => error,
            Stopped::Exhausted { left, attempts, .. } => HubError::internal(format!(
                "SQS failed {} jobs after {attempts} attempts",
                left.len()
            )),
        })
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn enqueue(&self, messages: &[QueueMessage]) -> HubResult<()> {
        let (pushed, others): (Vec<&QueueMessage>, Vec<&QueueMessage>) = messages
            .iter()
            .partition(|message| self.queue_of(message) != self.queue_url);
        let mut chunks: Vec<(String, Vec<QueueMessage>)> = Vec::new();
        for group in [pushed, others] {
            let Some(first) = group.first() else {
                continue;
            };
            let queue_url = self.queue_of(first).to_string();
            for chunk in group.chunks(MAX_BATCH) {
                let chunk = chunk.iter().map(|m| (*m).clone()).collect();
                chunks.push((queue_url.clone(), chunk));
            }
        }
        futures::stream::iter(chunks)
            .map(|(queue_url, chunk)| async move { self.send_chunk(&queue_url, &chunk, 0).await })
            .buffer_unordered(CHUNKS_IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    async fn enqueue_delayed(&self, message: &QueueMessage, delay: Duration) -> HubResult<()> {
        // Rounded up: a message must not come back before the wait the provider asked for.
        let delay_seconds = delay.min(MAX_DELAY).as_secs_f64().ceil() as i32;
        self.send_chunk(
            &self.queue_url,
            std::slice::from_ref(message),
            delay_seconds,
        )
        .await
    }
}

#[async_trait]
impl EventQueue for SqsQueue {
    async fn publish(&self, event: &QueuedEvent) -> HubResult<()> {
        let body = serde_json::to_string(event).map_err(HubError::internal)?;
        self.send_bodies(&self.queue_url, vec![body], 0).await
    }

    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> HubResult<()> {
        // SQS allows a visibility timeout of 0 to 43,200 s (12 hours).
        let seconds = delay.as_secs().min(43_200) as i32;
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| {
                HubError::internal(format!(
                    "SQS ChangeMessageVisibility failed: {}",
                    DisplayErrorContext(e)
                ))
            })?;
        Ok(())
    }
}
