//! The hub's AWS backend under `cargo lambda watch`: DynamoDB, KMS and SQS on a moto server,
//! and SQS event source mappings in front of `sync-worker` and `app-webhooks`, as Lambda's
//! would be.
//!
//! The mapping ([`SqsEventSource`]) receives batches of up to ten messages, invokes the
//! worker through the Lambda Invoke API that `cargo lambda watch` serves, deletes the
//! messages the worker did not report in `batchItemFailures`, and leaves the others to come
//! back when their visibility timeout ends, as Lambda does (`ReportBatchItemFailures`). An
//! invocation that never answers (a worker killed half-way) counts as a failure of its whole
//! batch once the function's timeout has passed.
//!
//! Simplifications against Lambda's mapping: one batch at a time (Lambda scales pollers with
//! the queue), and no batching window.

use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use oauth2::reqwest;
use serde_json::{json, Value};

/// The worker's function timeout in `template.yaml`.
const WORKER_TIMEOUT: Duration = hub::deployment::SYNC_WORKER.timeout;
/// The template's `maxReceiveCount` before the dead-letter queue.
const MAX_RECEIVES: u32 = hub::deployment::SYNC_QUEUE.max_receive_count;

/// DynamoDB, KMS and SQS resources of one hub on moto, laid out as `template.yaml` does.
pub struct AwsResources {
    pub endpoint: String,
    pub table: String,
    pub key_id: String,
    pub queue_url: String,
    pub dead_letter_url: String,
    /// The events queue for `app-webhooks` (template: `EventsQueue`).
    pub events_queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl AwsResources {
    /// Creates the table (with its indexes), the key and the queues on the test's moto server
    /// (`AWS_ENDPOINT_URL`, or one started for this process).
    pub async fn create() -> AwsResources {
        let endpoint = tokio::task::spawn_blocking(hub::testing::moto_endpoint)
            .await
            .expect("start moto");
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let table = format!("e2e-hub-{suffix}");
        hub::store::dynamo::create_table(&aws_sdk_dynamodb::Client::new(&config), &table)
            .await
            .expect("create the table");
        let key = aws_sdk_kms::Client::new(&config)
            .create_key()
            .send()
            .await
            .expect("create the key");
        let key_id = key.key_metadata().unwrap().key_id().to_string();
        let sqs = aws_sdk_sqs::Client::new(&config);
        let (queue_url, dead_letter_url) = queue_with_dead_letters(
            &sqs,
            &format!("e2e-sync-{suffix}"),
            // The function's timeout and a margin, so that a batch in flight is not
            // delivered twice (the template keeps six times the timeout).
            WORKER_TIMEOUT.as_secs() + 30,
            MAX_RECEIVES,
        )
        .await;
        // As the template's `EventsQueue`: app-webhooks' timeout and a margin, and six
        // attempts (the delivery schedule) before its dead-letter queue.
        let (events_queue_url, _) =
            queue_with_dead_letters(&sqs, &format!("e2e-events-{suffix}"), 120, 6).await;
        AwsResources {
            endpoint,
            table,
            key_id,
            queue_url,
            dead_letter_url,
            events_queue_url,
            sqs,
        }
    }

    /// The hub's environment for these resources (docs/API.md, "Configuration").
    pub fn env_vars(&self) -> Vec<(String, String)> {
        [
            ("HUB_BACKEND", "aws"),
            ("TABLE_NAME", &self.table),
            ("KMS_KEY_ID", &self.key_id),
            ("SYNC_QUEUE_URL", &self.queue_url),
            ("EVENTS_QUEUE_URL", &self.events_queue_url),
            // The test's app listens on http://127.0.0.1.
            ("HUB_WEBHOOK_ALLOW_HTTP", "true"),
            ("AWS_ENDPOINT_URL", &self.endpoint),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
    }

    /// Starts the event source mapping from the sync queue to `sync-worker` of the
    /// `cargo lambda watch` at `hub_url`; it stops when dropped.
    pub fn event_source(&self, hub_url: &str) -> SqsEventSource {
        self.mapping(&self.queue_url, "sync-worker", hub_url)
    }

    /// The same from the events queue to `app-webhooks`.
    pub fn events_source(&self, hub_url: &str) -> SqsEventSource {
        self.mapping(&self.events_queue_url, "app-webhooks", hub_url)
    }

    fn mapping(&self, queue_url: &str, function: &str, hub_url: &str) -> SqsEventSource {
        let mapping = Mapping {
            sqs: self.sqs.clone(),
            queue_url: queue_url.to_string(),
            invoke_url: format!("{hub_url}/2015-03-31/functions/{function}/invocations"),
            client: reqwest::Client::builder()
                .timeout(WORKER_TIMEOUT)
                .build()
                .unwrap(),
        };
        SqsEventSource {
            task: tokio::spawn(mapping.run()),
        }
    }

    /// How many messages the dead-letter queue holds.
    pub async fn dead_letters(&self) -> usize {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.dead_letter_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("read the dead-letter queue");
        attributes
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// A queue with its dead-letter queue after `max_receives`; their URLs.
async fn queue_with_dead_letters(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    visibility_seconds: u64,
    max_receives: u32,
) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let dead_letter_url = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .expect("create a dead-letter queue")
        .queue_url()
        .unwrap()
        .to_string();
    let dead_letter_arn = sqs
        .get_queue_attributes()
        .queue_url(&dead_letter_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("read the dead-letter queue's ARN")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("a queue ARN");
    let redrive = json!({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receives});
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_seconds.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .expect("create a queue")
        .queue_url()
        .unwrap()
        .to_string();
    (url, dead_letter_url)
}

/// A running event source mapping; dropping it stops the polling.
pub struct SqsEventSource {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SqsEventSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Mapping {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    invoke_url: String,
    client: reqwest::Client,
}

impl Mapping {
    async fn run(self) {
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await;
            let messages = match received {
                Ok(answer) => answer.messages.unwrap_or_default(),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if messages.is_empty() {
                continue;
            }
            let failed = self.invoke(&messages).await;
            let done: Vec<_> = messages
                .iter()
                .filter(|m| !failed.iter().any(|id| Some(id.as_str()) == m.message_id()))
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                        .unwrap()
                })
                .collect();
            if !done.is_empty() {
                let _ = self
                    .sqs
                    .delete_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(done))
                    .send()
                    .await;
            }
        }
    }

    /// Invokes the worker with one SQS event; the ids of the messages that failed (all of
    /// them when the invocation itself failed or never answered).
    async fn invoke(&self, messages: &[aws_sdk_sqs::types::Message]) -> Vec<String> {
        let all = || {
            messages
                .iter()
                .filter_map(|m| m.message_id().map(str::to_string))
                .collect()
        };
        let records: Vec<Value> = messages.iter().map(record).collect();
        let answer = self
            .client
            .post(&self.invoke_url)
            .json(&json!({ "Records": records }))
            .send()
            .await;
        let Ok(answer) = answer else { return all() };
        if !answer.status().is_success() {
            return all();
        }
        let Ok(body) = answer.json::<Value>().await else {
            return all();
        };
        body["batchItemFailures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_string))
            .collect()
    }
}

/// One message as Lambda's SQS event carries it.
fn record(message: &aws_sdk_sqs::types::Message) -> Value {
    let attributes: serde_json::Map<String, Value> = message
        .attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.as_str().to_string(), Value::String(value.clone())))
        .collect();
    json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:e2e-sync",
        "awsRegion": "us-east-1",
    })
}
