//! Delivery: event delivery to the app on moto. The hub queues N events as its producers do
//! (`hub::events::emit`, one SQS request each), then `app-webhooks`' handling
//! (`hub::delivery::handle_batch` with the function's deadline) delivers them, batches of up
//! to ten received from the events queue by two consumers at once (the template's
//! `MaximumConcurrency: 2`), to the testkit webhook receiver, which checks every signature
//! as an app would. Events per second, and the AWS requests per delivered event counted by
//! the proxy in front of moto, turned into dollars with the list prices of `crate::cost`.
//!
//! The receiver is on loopback and answers at once: a real app's answer time adds to every
//! invocation's duration (and so to its GB-seconds) and lowers the throughput.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use futures::{StreamExt, TryStreamExt};
use hub::config::Env;
use hub::deadline::Deadline;
use hub::delivery::{EventRecord, Sender};
use hub::events::Event;
use hub::providers::http::RetryPolicy;
use hub::Hub;
use hub_testkit::webhook_receiver::WebhookReceiver;
use serde::{Deserialize, Serialize};

use crate::cost::{
    DYNAMO_READ_PER_MILLION, DYNAMO_WRITE_PER_MILLION, LAMBDA_ARM_GB_SECOND,
    LAMBDA_REQUEST_PER_MILLION, SQS_PER_MILLION,
};
use crate::moto::{self, Resources};
use crate::proxy::{Counts, Proxy};
use crate::support::{note, Result};

/// A Standard Webhooks secret (the one app-webhooks' tests use).
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
/// `app-webhooks` in template.yaml: `MemorySize: 128`, `MaximumConcurrency: 2`.
pub const WEBHOOKS_MEMORY_MB: f64 = 128.0;
const CONSUMERS: usize = 2;
/// Events not all delivered after this long end the run with what was delivered.
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

pub struct Options {
    pub events: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub events: usize,
    pub consumers: usize,
    pub memory_mb: f64,
    /// Distinct events the receiver got with a valid signature; requests without one.
    pub verified: usize,
    pub unverified: usize,
    /// Events delivered more than once (SQS delivers at least once; the app dedupes by
    /// `webhook-id`): valid requests beyond the first of each id.
    pub duplicates: usize,
    /// From the first receive to the last event delivered.
    pub seconds: f64,
    pub events_per_second: f64,
    /// `SendMessage` of the events, per event.
    pub publish_seconds: f64,
    /// Batches handled (Lambda invocations), empty receives excluded.
    pub invocations: usize,
    /// The batches' durations added up: the time in `handle_batch`, not in SQS calls.
    pub invocation_seconds: f64,
    pub failed: usize,
    /// Everything per delivered event: publishing, receiving, deleting, the invocations.
    pub per_event: Counts,
    pub gb_seconds_per_event: f64,
    pub dollars_per_million: EventDollars,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct EventDollars {
    pub sqs: f64,
    pub dynamodb: f64,
    pub lambda_requests: f64,
    pub lambda_duration: f64,
    pub total: f64,
}

pub async fn run(options: Options) -> Result<Results> {
    let loadavg_before = crate::support::loadavg();
    let endpoint = moto::endpoint()?;
    let sdk = moto::sdk_config(&endpoint).await;
    let resources = Resources::create(&sdk, "bench-delivery").await?;
    let events_queue = aws_sdk_sqs::Client::new(&sdk)
        .create_queue()
        .queue_name(format!("bench-events-{}", uuid::Uuid::new_v4().simple()))
        // The events queue's visibility timeout in template.yaml.
        .attributes(QueueAttributeName::VisibilityTimeout, "120")
        .send()
        .await?
        .queue_url()
        .ok_or("SQS CreateQueue answered without a URL")?
        .to_string();
    let proxy = Proxy::start(&endpoint).await?;
    let receiver = WebhookReceiver::start(SECRET).await;
    let mut env = resources.hub_env(&proxy.url);
    env.extend(
        [
            ("EVENTS_QUEUE_URL", events_queue.clone()),
            ("HUB_WEBHOOK_URL", receiver.url()),
            ("HUB_WEBHOOK_SECRET", SECRET.to_string()),
            ("HUB_WEBHOOK_ALLOW_HTTP", "true".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let hub = Hub::build(&Env::from_map(env), RetryPolicy::default()).await?;
    let settings = hub.config.webhook.clone().ok_or("events are not on")?;
    let sender = Sender::new(settings)?;

    note("delivery", format!("queueing {} events", options.events));
    let account = hub::testing::account("onedrive").build();
    proxy.start_counting();
    let start = Instant::now();
    futures::stream::iter(0..options.events)
        .map(|_| hub::events::emit(&hub, Event::deleted(&account)))
        .buffer_unordered(8)
        .try_collect::<()>()
        .await?;
    let publish_seconds = start.elapsed().as_secs_f64();
    let published = proxy.stop_counting();

    note("delivery", format!("delivering with {CONSUMERS} consumers"));
    let sqs = aws_sdk_sqs::Client::new(&moto::sdk_config(&proxy.url).await);
    proxy.start_counting();
    let start = Instant::now();
    let consumer = Consumer {
        hub: &hub,
        sender: &sender,
        sqs: &sqs,
        queue_url: &events_queue,
        receiver: &receiver,
        events: options.events,
        start,
    };
    let batches: Vec<Vec<Batch>> =
        futures::future::try_join_all((0..CONSUMERS).map(|_| consumer.run())).await?;
    let seconds = start.elapsed().as_secs_f64();
    let delivering = proxy.stop_counting();
    let batches: Vec<Batch> = batches.into_iter().flatten().collect();

    let received = receiver.received();
    let verified = distinct_verified(&receiver);
    let duplicates = received.iter().filter(|r| r.verified).count() - verified;
    let invocations = batches.len();
    // Lambda bills each invocation's duration rounded up to the millisecond.
    let gb_seconds: f64 = batches
        .iter()
        .map(|b| (b.seconds * 1000.0).ceil() / 1000.0 * WEBHOOKS_MEMORY_MB / 1024.0)
        .sum();
    let delivered = verified.max(1) as f64;
    let mut per_event = Counts::default();
    per_event.add(&published, 1.0 / delivered);
    per_event.add(&delivering, 1.0 / delivered);
    *per_event
        .requests
        .entry("Lambda.Invoke".into())
        .or_default() += invocations as f64 / delivered;
    let gb_seconds_per_event = gb_seconds / delivered;
    let mut dollars = EventDollars {
        sqs: per_event.service_requests("SQS") * SQS_PER_MILLION,
        dynamodb: per_event.write_units * DYNAMO_WRITE_PER_MILLION
            + per_event.read_units * DYNAMO_READ_PER_MILLION,
        lambda_requests: per_event.service_requests("Lambda") * LAMBDA_REQUEST_PER_MILLION,
        lambda_duration: gb_seconds_per_event * LAMBDA_ARM_GB_SECOND * 1e6,
        total: 0.0,
    };
    dollars.total =
        dollars.sqs + dollars.dynamodb + dollars.lambda_requests + dollars.lambda_duration;
    let results = Results {
        loadavg_before,
        loadavg_after: crate::support::loadavg(),
        events: options.events,
        consumers: CONSUMERS,
        memory_mb: WEBHOOKS_MEMORY_MB,
        verified,
        unverified: received.iter().filter(|r| !r.verified).count(),
        duplicates,
        seconds,
        events_per_second: verified as f64 / seconds,
        publish_seconds,
        invocations,
        invocation_seconds: batches.iter().map(|b| b.seconds).sum(),
        failed: batches.iter().map(|b| b.failed).sum(),
        per_event,
        gb_seconds_per_event,
        dollars_per_million: dollars,
    };
    note(
        "delivery",
        format!(
            "  {} of {} delivered and verified ({} duplicates) in {:.2} s ({:.0} events/s), {} invocations, {} failed; ${:.2} per million events",
            results.verified,
            results.events,
            results.duplicates,
            results.seconds,
            results.events_per_second,
            results.invocations,
            results.failed,
            results.dollars_per_million.total
        ),
    );
    Ok(results)
}

/// Distinct `webhook-id`s the receiver got with a valid signature.
fn distinct_verified(receiver: &WebhookReceiver) -> usize {
    let received = receiver.received();
    let ids: HashSet<&str> = received
        .iter()
        .filter(|r| r.verified)
        .map(|r| r.webhook_id.as_str())
        .collect();
    ids.len()
}

/// One handled batch.
struct Batch {
    seconds: f64,
    failed: usize,
}

/// What the events queue's event source mapping and `app-webhooks` do, for one of the
/// concurrent consumers.
struct Consumer<'a> {
    hub: &'a Hub,
    sender: &'a Sender,
    sqs: &'a aws_sdk_sqs::Client,
    queue_url: &'a str,
    receiver: &'a WebhookReceiver,
    events: usize,
    start: Instant,
}

impl Consumer<'_> {
    /// Receives and delivers until the receiver has every event (or time is up).
    async fn run(&self) -> Result<Vec<Batch>> {
        let mut batches = Vec::new();
        while self.receiver.received().len() < self.events && self.start.elapsed() < GIVE_UP_AFTER {
            let received = crate::consumer::receive(self.sqs, self.queue_url).await?;
            if received.is_empty() {
                continue;
            }
            let records = received
                .iter()
                .map(|m| EventRecord {
                    message_id: m.message_id().unwrap_or_default().to_string(),
                    receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
                    receive_count: crate::consumer::receive_count(m),
                    body: m.body().unwrap_or_default().to_string(),
                })
                .collect();
            let invoked = Instant::now();
            let deadline =
                Deadline::after(hub::delivery::FUNCTION_TIMEOUT).less(hub::delivery::RESERVE);
            let failed =
                hub::delivery::handle_batch(self.hub, self.sender, records, deadline).await;
            batches.push(Batch {
                seconds: invoked.elapsed().as_secs_f64(),
                failed: failed.len(),
            });
            crate::consumer::delete_succeeded(self.sqs, self.queue_url, &received, &failed).await?;
        }
        Ok(batches)
    }
}
