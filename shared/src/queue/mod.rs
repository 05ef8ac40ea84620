//! The sync job queue and the events queue: SQS in AWS; locally, direct invocations of the
//! consuming function (`sync-worker`, `app-webhooks`) through the Lambda Invoke API that
//! `cargo lambda watch` serves, with SQS-like redelivery.

pub mod local;
pub mod sqs;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::HubResult;
use crate::model::{QueueMessage, QueuedEvent};

/// SQS's batch limit, also used locally so the worker sees batches of the same shape.
pub const MAX_BATCH: usize = 10;
/// The longest delay SQS gives one message (`DelaySeconds`, 0 to 900: SendMessage API
/// reference); longer waits are cut to it.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Puts every message on the queue, or fails saying how many could not be queued.
    async fn enqueue(&self, messages: &[QueueMessage]) -> HubResult<()>;

    /// Puts one message on the queue, delivered no sooner than `delay` from now (at most
    /// [`MAX_DELAY`]).
    async fn enqueue_delayed(&self, message: &QueueMessage, delay: Duration) -> HubResult<()>;
}

/// The queue of events to the app (`EVENTS_QUEUE_URL`; locally the local queue invoking
/// `app-webhooks`).
#[async_trait]
pub trait EventQueue: Send + Sync {
    /// Puts the event on the queue, or fails (the producer then fails too: see
    /// [`crate::events`]).
    async fn publish(&self, event: &QueuedEvent) -> HubResult<()>;

    /// Delivers a message that failed again no sooner than `delay` from now, whatever the
    /// queue's own visibility timeout: SQS `ChangeMessageVisibility` on `receipt_handle`.
    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> HubResult<()>;
}

/// What a function fed by a queue answers (SQS's partial batch response, with
/// `ReportBatchItemFailures` on its event source): the ids of the records that failed, so only
/// those come back. `sync-worker` and `app-webhooks` answer it; the local queue reads it as SQS
/// would, so both sides use this one definition of the shape.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    /// Absent in an answer is none failed (SQS reads it so too).
    #[serde(default)]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

/// One failed record, by its message id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    pub item_identifier: String,
}

impl BatchResponse {
    /// The answer that names `message_ids` as failed.
    pub fn failed(message_ids: Vec<String>) -> Self {
        BatchResponse {
            batch_item_failures: message_ids
                .into_iter()
                .map(|item_identifier| BatchItemFailure { item_identifier })
                .collect(),
        }
    }

    /// The ids of the failed records.
    pub fn failed_ids(self) -> Vec<String> {
        self.batch_item_failures
            .into_iter()
            .map(|failure| failure.item_identifier)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape SQS reads from a function with `ReportBatchItemFailures`, byte for byte, and
    /// what the local queue reads back: an answer without the list fails nothing.
    #[test]
    fn the_batch_response_is_the_partial_batch_response_sqs_reads() {
        let response = BatchResponse::failed(vec!["m1".to_string(), "m2".to_string()]);
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"batchItemFailures":[{"itemIdentifier":"m1"},{"itemIdentifier":"m2"}]}"#
        );
        let back: BatchResponse =
            serde_json::from_str(&serde_json::to_string(&response).unwrap()).unwrap();
        assert_eq!(back, response);
        assert_eq!(
            serde_json::to_string(&BatchResponse::failed(Vec::new())).unwrap(),
            r#"{"batchItemFailures":[]}"#
        );
        let empty: BatchResponse = serde_json::from_str("{}").unwrap();
        assert!(empty.batch_item_failures.is_empty());
    }
}
