//! The local queue: hands jobs to the `sync-worker` function (and events to `app-webhooks`)
//! through the Lambda Invoke API (`POST /2015-03-31/functions/<function>/invocations`) that
//! `cargo lambda watch` serves, as SQS-shaped events of up to ten records.
//!
//! Like SQS it is asynchronous: `enqueue` returns once the deliveries are scheduled, and the
//! records the function reports in `batchItemFailures` are delivered again with backoff, up
//! to the template's `maxReceiveCount`; then they are written to
//! `HUB_DATA_DIR/dead-letter/` (`dead-letter-events/` for events) as the dead-letter queue
//! would hold them. Sync jobs come back after a linear backoff; events after the delays of
//! [`crate::deployment::retry_delay`], the ones `app-webhooks` sets as the message's visibility
//! in AWS.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use oauth2::reqwest;
use serde_json::json;

use super::{BatchResponse, EventQueue, JobQueue, MAX_BATCH, MAX_DELAY};
use crate::deployment::{self, retry_delay};
use crate::error::{HubError, HubResult};
use crate::model::{QueueMessage, QueuedEvent};

pub const WORKER_FUNCTION: &str = "sync-worker";
pub const EVENTS_FUNCTION: &str = "app-webhooks";
pub const MAX_RECEIVES: u32 = deployment::SYNC_QUEUE.max_receive_count;
/// The worker's function timeout in `template.yaml`. An invocation that has not answered by
/// then failed, as Lambda would have stopped it: a worker process that died half-way never
/// answers (`cargo lambda watch` holds the request open), and its jobs must be delivered again.
pub const WORKER_TIMEOUT: Duration = deployment::SYNC_WORKER.timeout;
const CONCURRENT_BATCHES: usize = 2;
/// Invocations one process has waiting in `cargo lambda watch` at most. Watch queues at most
/// 100 requests per function and, once that queue is full, blocks every function's requests
/// (cargo-lambda 1.9, `RequestCache::upsert` awaits the full channel under its global lock,
/// which the function's own `pop` needs): a burst of requeued jobs froze the whole hub. Each
/// enqueue has its own batches, so only a bound shared by the process keeps the total small.
static INVOCATIONS_IN_FLIGHT: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(8);

#[derive(Clone, Debug)]
pub struct LocalQueue {
    client: reqwest::Client,
    function: &'static str,
    invoke_url: String,
    dead_letter_dir: PathBuf,
    redelivery: Redelivery,
}

/// When a failed record comes back.
#[derive(Clone, Copy, Debug)]
enum Redelivery {
    /// Sync jobs: `delay` times the receive count, [`MAX_RECEIVES`] receives.
    Linear { delay: Duration },
    /// Events: [`retry_delay`] of the receive count, scaled by `scale` (1 but in
    /// tests), the events queue's `maxReceiveCount` ([`deployment::EVENTS_QUEUE`]) receives.
    Webhook { scale: f64 },
}

impl Redelivery {
    fn max_receives(self) -> u32 {
        match self {
            Redelivery::Linear { .. } => MAX_RECEIVES,
            Redelivery::Webhook { .. } => deployment::EVENTS_QUEUE.max_receive_count,
        }
    }

    fn after(self, receive_count: u32) -> Duration {
        match self {
            Redelivery::Linear { delay } => delay * receive_count,
            Redelivery::Webhook { scale } => retry_delay(receive_count).mul_f64(scale),
        }
    }
}

/// A job in flight, with the id the worker names it by.
#[derive(Clone)]
struct Delivery {
    message_id: String,
    body: String,
}

impl LocalQueue {
    /// `invoke_base` is the `cargo lambda watch` address, e.g. `http://localhost:9000`.
    pub fn new(invoke_base: &str, data_dir: PathBuf) -> HubResult<Self> {
        let client = reqwest::Client::builder()
            .timeout(WORKER_TIMEOUT)
            .build()
            .map_err(HubError::internal)?;
        Ok(LocalQueue {
            client,
            function: WORKER_FUNCTION,
            invoke_url: format!("{invoke_base}/2015-03-31/functions/{WORKER_FUNCTION}/invocations"),
            dead_letter_dir: data_dir.join("dead-letter"),
            redelivery: Redelivery::Linear {
                delay: Duration::from_secs(2),
            },
        })
    }

    /// The events queue: invokes `app-webhooks`, retrying failed events after the webhook
    /// schedule times `retry_scale` (`HUB_LOCAL_EVENT_RETRY_SCALE`, 1 unless a test shortens
    /// it).
    pub fn events(invoke_base: &str, data_dir: PathBuf, retry_scale: f64) -> HubResult<Self> {
        let client = reqwest::Client::builder()
            .timeout(deployment::APP_WEBHOOKS.timeout)
            .build()
            .map_err(HubError::internal)?;
        Ok(LocalQueue {
            client,
            function: EVENTS_FUNCTION,
            invoke_url: format!("{invoke_base}/2015-03-31/functions/{EVENTS_FUNCTION}/invocations"),
            dead_letter_dir: data_dir.join("dead-letter-events"),
            redelivery: Redelivery::Webhook { scale: retry_scale },
        })
    }

    /// Shorter redelivery backoff of sync jobs, for tests.
    pub fn with_redelivery_delay(mut self, delay: Duration) -> Self {
        self.redelivery = Redelivery::Linear { delay };
        self
    }

    fn event(&self, deliveries: &[Delivery], receive_count: u32) -> serde_json::Value {
        let source = format!("arn:aws:sqs:local:000000000000:hub-{}-local", self.function);
        let records: Vec<_> = deliveries
            .iter()
            .map(|d| {
                json!({
                    "messageId": d.message_id,
                    "receiptHandle": format!("local-{}-{receive_count}", d.message_id),
                    "body": d.body,
                    "attributes": {
                        "ApproximateReceiveCount": receive_count.to_string(),
                        "SentTimestamp": chrono::Utc::now().timestamp_millis().to_string(),
                    },
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": source,
                    "awsRegion": "local",
                })
            })
            .collect();
        json!({ "Records": records })
    }

    /// One invocation; the records to deliver again (all of them when the call failed).
    async fn invoke(&self, deliveries: &[Delivery], receive_count: u32) -> Vec<Delivery> {
        let _in_flight = INVOCATIONS_IN_FLIGHT
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let answer = self
            .client
            .post(&self.invoke_url)
            .header("content-type", "application/json")
            .body(self.event(deliveries, receive_count).to_string())
            .send()
            .await;
        let failed_ids: Option<Vec<String>> = match answer {
            Ok(response) if response.status().is_success() => match response.bytes().await {
                Ok(body) => serde_json::from_slice::<BatchResponse>(&body)
                    .ok()
                    .map(BatchResponse::failed_ids),
                Err(_) => None,
            },
            Ok(response) => {
                tracing::warn!(
                    status = response.status().as_u16(),
                    function = self.function,
                    "local invocation failed"
                );
                None
            }
            Err(e) => {
                tracing::warn!(function = self.function, error = %e.without_url(), "local function unreachable");
                None
            }
        };
        match failed_ids {
            Some(ids) => deliveries
                .iter()
                .filter(|d| ids.contains(&d.message_id))
                .cloned()
                .collect(),
            None => deliveries.to_vec(),
        }
    }

    async fn deliver(self, mut pending: Vec<Delivery>) {
        let max_receives = self.redelivery.max_receives();
        for receive_count in 1..=max_receives {
            pending = self.invoke(&pending, receive_count).await;
            if pending.is_empty() {
                return;
            }
            if receive_count < max_receives {
                tokio::time::sleep(self.redelivery.after(receive_count)).await;
            }
        }
        for delivery in pending {
            tracing::error!(function = self.function, message_id = %delivery.message_id, "message dead-lettered after {max_receives} receives");
            let path = self
                .dead_letter_dir
                .join(format!("{}.json", delivery.message_id));
            let written = std::fs::create_dir_all(&self.dead_letter_dir)
                .and_then(|_| std::fs::write(&path, &delivery.body));
            if let Err(e) = written {
                tracing::error!(error = %e, "could not write the dead-letter record");
            }
        }
    }
}

#[async_trait]
impl JobQueue for LocalQueue {
    async fn enqueue(&self, messages: &[QueueMessage]) -> HubResult<()> {
        self.schedule(messages, Duration::ZERO)
    }

    async fn enqueue_delayed(&self, message: &QueueMessage, delay: Duration) -> HubResult<()> {
        self.schedule(std::slice::from_ref(message), delay.min(MAX_DELAY))
    }
}

#[async_trait]
impl EventQueue for LocalQueue {
    async fn publish(&self, event: &QueuedEvent) -> HubResult<()> {
        self.schedule(std::slice::from_ref(event), Duration::ZERO)
    }

    /// The local queue brings a failed event back itself, after [`retry_delay`] of
    /// its receive count (see [`LocalQueue::events`]): the delay the function asks for is
    /// that one already, so there is no visibility to change.
    async fn retry_after(&self, _receipt_handle: &str, _delay: Duration) -> HubResult<()> {
        Ok(())
    }
}

impl LocalQueue {
    /// Delivers `messages` after `delay`, as SQS's `DelaySeconds` would.
    fn schedule<M: serde::Serialize>(&self, messages: &[M], delay: Duration) -> HubResult<()> {
        let deliveries = messages
            .iter()
            .map(|message| {
                Ok(Delivery {
                    message_id: uuid::Uuid::new_v4().to_string(),
                    body: serde_json::to_string(message).map_err(HubError::internal)?,
                })
            })
            .collect::<HubResult<Vec<_>>>()?;
        let queue = self.clone();
        // Detached, as SQS is: the caller answers at once and the worker runs meanwhile
        // (`cargo lambda watch` keeps this process alive between invocations). A couple of
        // batches at a time, as a small event-source concurrency would.
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let batches: Vec<Vec<Delivery>> =
                deliveries.chunks(MAX_BATCH).map(<[_]>::to_vec).collect();
            futures::stream::iter(batches)
                .for_each_concurrent(CONCURRENT_BATCHES, |batch| queue.clone().deliver(batch))
                .await;
        });
        Ok(())
    }
}
