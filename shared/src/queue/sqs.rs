//! SQS: `SendMessageBatch` in chunks of ten, several chunks in flight, failed entries re-sent
//! a bounded number of times.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use futures::{StreamExt, TryStreamExt};

use super::{JobQueue, MAX_BATCH};
use crate::error::{HubError, HubResult};
use crate::model::QueueMessage;

const CHUNKS_IN_FLIGHT: usize = 8;
const ENTRY_RETRIES: u32 = 3;

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

    async fn send_chunk(&self, chunk: &[QueueMessage]) -> HubResult<()> {
        let mut entries = chunk
            .iter()
            .enumerate()
            .map(|(i, job)| {
                let body = serde_json::to_string(job).map_err(HubError::internal)?;
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .map_err(HubError::internal)
            })
            .collect::<HubResult<Vec<_>>>()?;
        for round in 0..=ENTRY_RETRIES {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(100 << round)).await;
            }
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
                return Ok(());
            }
            if let Some(fault) = failed.iter().find(|f| f.sender_fault()) {
                return Err(HubError::internal(format!(
                    "SQS refused a job: {} {}",
                    fault.code(),
                    fault.message().unwrap_or("")
                )));
            }
            entries.retain(|entry| failed.iter().any(|f| f.id() == entry.id()));
        }
        Err(HubError::internal(format!(
            "SQS failed {} jobs after {ENTRY_RETRIES} retries",
            entries.len()
        )))
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn enqueue(&self, messages: &[QueueMessage]) -> HubResult<()> {
        let chunks: Vec<Vec<QueueMessage>> =
            messages.chunks(MAX_BATCH).map(<[_]>::to_vec).collect();
        futures::stream::iter(chunks)
            .map(|chunk| async move { self.send_chunk(&chunk).await })
            .buffer_unordered(CHUNKS_IN_FLIGHT)
            .try_collect::<()>()
            .await
    }
}
