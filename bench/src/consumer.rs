//! The sync-worker run as Lambda runs it, in this process: each invocation is a batch of queue
//! messages handed to `hub::sync::handle_batch` with a deadline of the function's timeout
//! less `hub::sync::RESERVE`, as functions/sync-worker/src/main.rs computes it.
//!
//! On moto it plays the SQS event source mapping (receive up to ten, delete the ones that did
//! not fail, leave the failed ones to come back); locally it is a stand-in of the Lambda
//! Invoke API that the local queue calls, so the local queue's own redelivery is measured.
//! Both record every invocation the same way. The SQS steps (`receive`, `delete_succeeded`)
//! serve the events queue's consumer in `crate::delivery` too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message as SqsMessage, MessageSystemAttributeName,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use hub::deadline::Deadline;
use hub::sync::Message;
use hub::Hub;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::support::Result;

/// One worker invocation, as measured here.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Invocation {
    pub messages: usize,
    pub failed: usize,
    pub seconds: f64,
    /// The highest `ApproximateReceiveCount` among its messages.
    pub max_receive_count: u32,
}

/// The deadline a worker invocation starting now gets from a function of `timeout`.
pub fn deadline(timeout: Duration) -> Deadline {
    Deadline::after(timeout).less(hub::sync::RESERVE)
}

/// Runs one batch and records it.
async fn invoke(
    hub: &Hub,
    messages: Vec<Message>,
    max_receive_count: u32,
    timeout: Duration,
) -> (Vec<String>, Invocation) {
    let count = messages.len();
    let start = Instant::now();
    let failed = hub::sync::handle_batch(hub, messages, deadline(timeout)).await;
    let invocation = Invocation {
        messages: count,
        failed: failed.len(),
        seconds: start.elapsed().as_secs_f64(),
        max_receive_count,
    };
    (failed, invocation)
}

/// The event source mapping on moto's SQS.
pub struct SqsConsumer {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub timeout: Duration,
}

impl SqsConsumer {
    /// One poll: receives a batch, runs it as one invocation and deletes the messages that
    /// succeeded. `None` when the queue had nothing to deliver.
    pub async fn poll(&self, hub: &Hub) -> Result<Option<Invocation>> {
        let received = receive(&self.sqs, &self.queue_url).await?;
        if received.is_empty() {
            return Ok(None);
        }
        let max_receive_count = received.iter().map(receive_count).max().unwrap_or(1);
        let (failed, invocation) =
            invoke(hub, messages(&received), max_receive_count, self.timeout).await;
        delete_succeeded(&self.sqs, &self.queue_url, &received, &failed).await?;
        Ok(Some(invocation))
    }
}

/// What an SQS event source mapping receives for one invocation: up to ten messages, with
/// their receive counts, after a long poll of up to a second.
pub async fn receive(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<Vec<SqsMessage>> {
    let answer = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(hub::queue::MAX_BATCH as i32)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await?;
    Ok(answer.messages.unwrap_or_default())
}

/// The received messages as the worker's `handle_batch` takes them.
pub fn messages(received: &[SqsMessage]) -> Vec<Message> {
    received
        .iter()
        .map(|m| Message {
            id: m.message_id().unwrap_or_default().to_string(),
            body: m.body().unwrap_or_default().to_string(),
        })
        .collect()
}

/// A received message's `ApproximateReceiveCount` (1 the first time).
pub fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Deletes the messages the function did not report failed, as the event source mapping
/// does: the failed ones come back after their visibility timeout.
pub async fn delete_succeeded(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    received: &[SqsMessage],
    failed: &[String],
) -> Result<()> {
    let entries: Vec<_> = received
        .iter()
        .enumerate()
        .filter(|(_, m)| !failed.iter().any(|id| Some(id.as_str()) == m.message_id()))
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .set_receipt_handle(m.receipt_handle().map(str::to_string))
                .build()
                .ok()
        })
        .collect();
    if !entries.is_empty() {
        sqs.delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await?;
    }
    Ok(())
}

/// A stand-in of the Lambda Invoke API that the local queue calls
/// (`POST /2015-03-31/functions/sync-worker/invocations`): runs each batch in this process
/// and answers its failures as the function's partial batch response.
pub struct LocalInvoke {
    pub url: String,
    listener: Mutex<Option<tokio::net::TcpListener>>,
    invocations: Arc<Mutex<Vec<Invocation>>>,
    in_flight: Arc<AtomicUsize>,
    timeout: Duration,
}

#[derive(Clone)]
struct InvokeState {
    hub: Arc<Hub>,
    invocations: Arc<Mutex<Vec<Invocation>>>,
    in_flight: Arc<AtomicUsize>,
    timeout: Duration,
}

impl LocalInvoke {
    /// Binds the address first: the hub is built with it as `HUB_LOCAL_INVOKE_URL`, then
    /// handed to [`LocalInvoke::serve`].
    pub async fn bind(timeout: Duration) -> Result<LocalInvoke> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Ok(LocalInvoke {
            url: format!("http://{}", listener.local_addr()?),
            listener: Mutex::new(Some(listener)),
            invocations: Arc::default(),
            in_flight: Arc::default(),
            timeout,
        })
    }

    pub fn serve(&self, hub: Arc<Hub>) {
        let state = InvokeState {
            hub,
            invocations: self.invocations.clone(),
            in_flight: self.in_flight.clone(),
            timeout: self.timeout,
        };
        let app = Router::new()
            .route(
                "/2015-03-31/functions/sync-worker/invocations",
                post(invoked),
            )
            .with_state(state);
        let listener = self.listener.lock().expect("listener lock").take();
        let listener = listener.expect("serve is called once");
        // Lives as long as the benchmark process.
        tokio::spawn(async move { axum::serve(listener, app).await });
    }

    /// Waits (up to the function's timeout) until no invocation is running: the account
    /// can show its sync ended while the invocation that ended it is still finishing.
    pub async fn settle(&self) {
        let start = Instant::now();
        while self.in_flight.load(Ordering::SeqCst) > 0 && start.elapsed() < self.timeout {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The invocations that have answered so far.
    pub fn invocations(&self) -> Vec<Invocation> {
        self.invocations.lock().expect("invocations lock").clone()
    }
}

async fn invoked(State(state): State<InvokeState>, body: Bytes) -> Json<Value> {
    state.in_flight.fetch_add(1, Ordering::SeqCst);
    let event: HashMap<String, Value> = serde_json::from_slice(&body).unwrap_or_default();
    let records = event.get("Records").and_then(Value::as_array);
    let mut messages = Vec::new();
    let mut max_receive_count = 1;
    for record in records.into_iter().flatten() {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        let count = text(record.pointer("/attributes/ApproximateReceiveCount"));
        max_receive_count = max_receive_count.max(count.parse().unwrap_or(1));
        messages.push(Message {
            id: text(record.get("messageId")),
            body: text(record.get("body")),
        });
    }
    let (failed, invocation) = invoke(&state.hub, messages, max_receive_count, state.timeout).await;
    state
        .invocations
        .lock()
        .expect("invocations lock")
        .push(invocation);
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    let failures: Vec<_> = failed
        .into_iter()
        .map(|id| json!({ "itemIdentifier": id }))
        .collect();
    Json(json!({ "batchItemFailures": failures }))
}
