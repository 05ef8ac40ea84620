//! The local queue: hands jobs to the `sync-worker` function through the Lambda Invoke API
//! (`POST /2015-03-31/functions/sync-worker/invocations`) that `cargo lambda watch` serves,
//! as SQS-shaped events of up to ten records.
//!
//! Like SQS it is asynchronous: `enqueue` returns once the deliveries are scheduled, and the
//! records the worker reports in `batchItemFailures` are delivered again with backoff, up to
//! [`MAX_RECEIVES`] times (the template's `maxReceiveCount`); then they are written to
//! `HUB_DATA_DIR/dead-letter/` as the dead-letter queue would hold them.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use oauth2::reqwest;
use serde::Deserialize;
use serde_json::json;

use super::{JobQueue, MAX_BATCH, MAX_DELAY};
use crate::error::{HubError, HubResult};
use crate::model::QueueMessage;

pub const WORKER_FUNCTION: &str = "sync-worker";
pub const MAX_RECEIVES: u32 = 5;
/// The worker's function timeout in `template.yaml`. An invocation that has not answered by
/// then failed, as Lambda would have stopped it: a worker process that died half-way never
/// answers (`cargo lambda watch` holds the request open), and its jobs must be delivered again.
pub const WORKER_TIMEOUT: Duration = Duration::from_secs(120);
const CONCURRENT_BATCHES: usize = 2;

#[derive(Clone, Debug)]
pub struct LocalQueue {
    client: reqwest::Client,
    invoke_url: String,
    dead_letter_dir: PathBuf,
    redelivery_delay: Duration,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchResponse {
    #[serde(default)]
    batch_item_failures: Vec<ItemFailure>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemFailure {
    item_identifier: String,
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
            invoke_url: format!("{invoke_base}/2015-03-31/functions/{WORKER_FUNCTION}/invocations"),
            dead_letter_dir: data_dir.join("dead-letter"),
            redelivery_delay: Duration::from_secs(2),
        })
    }

    /// Shorter redelivery backoff, for tests.
    pub fn with_redelivery_delay(mut self, delay: Duration) -> Self {
        self.redelivery_delay = delay;
        self
    }

    fn event(deliveries: &[Delivery], receive_count: u32) -> serde_json::Value {
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
                    "eventSourceARN": "arn:aws:sqs:local:000000000000:hub-sync-local",
                    "awsRegion": "local",
                })
            })
            .collect();
        json!({ "Records": records })
    }

    /// One invocation; the records to deliver again (all of them when the call failed).
    async fn invoke(&self, deliveries: &[Delivery], receive_count: u32) -> Vec<Delivery> {
        let answer = self
            .client
            .post(&self.invoke_url)
            .header("content-type", "application/json")
            .body(Self::event(deliveries, receive_count).to_string())
            .send()
            .await;
        let failed_ids: Option<Vec<String>> = match answer {
            Ok(response) if response.status().is_success() => match response.bytes().await {
                Ok(body) => serde_json::from_slice::<BatchResponse>(&body)
                    .ok()
                    .map(|r| {
                        r.batch_item_failures
                            .into_iter()
                            .map(|f| f.item_identifier)
                            .collect()
                    }),
                Err(_) => None,
            },
            Ok(response) => {
                tracing::warn!(
                    status = response.status().as_u16(),
                    "local worker invocation failed"
                );
                None
            }
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "local worker unreachable");
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
        for receive_count in 1..=MAX_RECEIVES {
            pending = self.invoke(&pending, receive_count).await;
            if pending.is_empty() {
                return;
            }
            tokio::time::sleep(self.redelivery_delay * receive_count).await;
        }
        for delivery in pending {
            tracing::error!(message_id = %delivery.message_id, "sync job dead-lettered after {MAX_RECEIVES} receives");
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

impl LocalQueue {
    /// Delivers `messages` after `delay`, as SQS's `DelaySeconds` would.
    fn schedule(&self, messages: &[QueueMessage], delay: Duration) -> HubResult<()> {
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
