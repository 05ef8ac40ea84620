//! SQS: `SendMessageBatch` in chunks of ten, several chunks in flight, failed entries re-sent
//! a bounded number of times. The same adapter serves the sync queue and the events queue,
//! each with its own URL.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use futures::{StreamExt, TryStreamExt};

use super::{EventQueue, JobQueue, MAX_BATCH, MAX_DELAY};
use crate::error::{HubError, HubResult};
use crate::model::{QueueMessage, QueuedEvent};
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
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsQueue {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// `delay_seconds` applies to every entry (SQS's per-message `DelaySeconds`).
    async fn send_chunk(&self, chunk: &[QueueMessage], delay_seconds: i32) -> HubResult<()> {
        let bodies = chunk
            .iter()
            .map(|job| serde_json::to_string(job).map_err(HubError::internal))
            .collect::<HubResult<Vec<_>>>()?;
        self.send_bodies(bodies, delay_seconds).await
    }

    /// Up to ten message bodies in one `SendMessageBatch`, failed entries re-sent.
    async fn send_bodies(&self, bodies: Vec<String>, delay_seconds: i32) -> HubResult<()> {
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
                .queue_url(&self.queue_url)
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
        let chunks: Vec<Vec<QueueMessage>> =
            messages.chunks(MAX_BATCH).map(<[_]>::to_vec).collect();
        futures::stream::iter(chunks)
            .map(|chunk| async move { self.send_chunk(&chunk, 0).await })
            .buffer_unordered(CHUNKS_IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    async fn enqueue_delayed(&self, message: &QueueMessage, delay: Duration) -> HubResult<()> {
        // Rounded up: a message must not come back before the wait the provider asked for.
        let delay_seconds = delay.min(MAX_DELAY).as_secs_f64().ceil() as i32;
        self.send_chunk(std::slice::from_ref(message), delay_seconds)
            .await
    }
}

#[async_trait]
impl EventQueue for SqsQueue {
    async fn publish(&self, event: &QueuedEvent) -> HubResult<()> {
        let body = serde_json::to_string(event).map_err(HubError::internal)?;
        self.send_bodies(vec![body], 0).await
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
