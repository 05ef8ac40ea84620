//! The SQS event source mappings of template.yaml on moto, with their batching windows: a
//! mapping long-polls its queue and, once a message has come, keeps receiving until the batch
//! is full (ten) or `MaximumBatchingWindowInSeconds` has passed since the first one, then
//! invokes its function with the batch and deletes what did not fail (AWS Lambda Developer
//! Guide, "Using Lambda with Amazon SQS", batching behaviour). The windows are the ones
//! `hub::deployment` mirrors from the template (checked by shared/tests/template.rs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message as SqsMessage, MessageSystemAttributeName};
use hub::deadline::Deadline;
use hub::delivery::{EventRecord, Sender};
use hub::Hub;

use crate::consumer;
use crate::support::Result;

/// What a mapping invokes.
#[derive(Clone)]
pub enum Function {
    /// `sync-worker`: `hub::sync::handle_batch`.
    Worker,
    /// `app-webhooks`: `hub::delivery::handle_batch`.
    AppWebhooks(Arc<Sender>),
}

/// One event source mapping, running until [`Mapping::stop`].
pub struct Mapping {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Mapping {
    pub fn start(
        hub: Arc<Hub>,
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
        window: Duration,
        function: Function,
    ) -> Mapping {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            while !stopping.load(Ordering::SeqCst) {
                let batch = receive_batch(&sqs, &queue_url, window).await?;
                if batch.is_empty() {
                    continue;
                }
                let failed = invoke(&hub, &function, &batch).await;
                consumer::delete_succeeded(&sqs, &queue_url, &batch, &failed).await?;
            }
            Ok(())
        });
        Mapping { stop, task }
    }

    pub async fn stop(self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await?
    }
}

/// A batch as the mapping hands it over: after the first message, more until ten or the
/// window is over (none with a window of 0: what the first receive brought).
async fn receive_batch(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    window: Duration,
) -> Result<Vec<SqsMessage>> {
    let mut batch = receive(sqs, queue_url, Duration::from_secs(1)).await?;
    if batch.is_empty() {
        return Ok(batch);
    }
    let first = Instant::now();
    while batch.len() < hub::queue::MAX_BATCH && first.elapsed() < window {
        let left = window - first.elapsed();
        // Whole seconds of long polling, then short polls for the rest of the window.
        let wait = Duration::from_secs(left.as_secs().min(1));
        let more = receive(sqs, queue_url, wait).await?;
        if more.is_empty() && wait.is_zero() {
            tokio::time::sleep(left.min(Duration::from_millis(50))).await;
        }
        batch.extend(more);
    }
    Ok(batch)
}

async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    wait: Duration,
) -> Result<Vec<SqsMessage>> {
    let answer = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(hub::queue::MAX_BATCH as i32)
        .wait_time_seconds(wait.as_secs() as i32)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await?;
    Ok(answer.messages.unwrap_or_default())
}

/// One invocation of the mapping's function; the ids it reported failed.
async fn invoke(hub: &Hub, function: &Function, batch: &[SqsMessage]) -> Vec<String> {
    match function {
        Function::Worker => {
            hub::sync::handle_batch(
                hub,
                consumer::messages(batch),
                consumer::deadline(hub::deployment::SYNC_WORKER.timeout),
            )
            .await
        }
        Function::AppWebhooks(sender) => {
            let records = batch
                .iter()
                .map(|m| EventRecord {
                    message_id: m.message_id().unwrap_or_default().to_string(),
                    receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
                    receive_count: consumer::receive_count(m),
                    body: m.body().unwrap_or_default().to_string(),
                })
                .collect();
            let deadline =
                Deadline::after(hub::delivery::FUNCTION_TIMEOUT).less(hub::delivery::RESERVE);
            hub::delivery::handle_batch(hub, sender, records, deadline).await
        }
    }
}
