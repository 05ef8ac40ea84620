//! The sync job queue and the events queue: SQS in AWS; locally, direct invocations of the
//! consuming function (`sync-worker`, `app-webhooks`) through the Lambda Invoke API that
//! `cargo lambda watch` serves, with SQS-like redelivery.

pub mod local;
pub mod sqs;

use std::time::Duration;

use async_trait::async_trait;

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
