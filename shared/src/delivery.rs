//! Delivering events to the app (docs/API.md, "Events to the app"), the work of `app-webhooks`:
//! one signed POST per event to `HUB_WEBHOOK_URL`; any 2xx within [`ATTEMPT_TIMEOUT`] is
//! delivered, anything else (another status, a redirect, a timeout, a refused connection) is a
//! failure that the queue brings back after [`retry_delay`], until [`MAX_ATTEMPTS`] receives
//! send it to the dead-letter queue. The id and body come from the queue unchanged
//! ([`crate::events::QueuedEvent`]), so every attempt carries the same `webhook-id`.

use std::time::Duration;

use futures::StreamExt;
use oauth2::reqwest;

use crate::config::WebhookSettings;
use crate::deadline::Deadline;
use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use crate::model::QueuedEvent;
use crate::webhook_signature::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

/// How long the app has to answer one attempt (10 seconds: docs/API.md, "Events to the app").
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The `app-webhooks` function's timeout in `template.yaml`: a batch's attempts run side by
/// side, each within [`ATTEMPT_TIMEOUT`], with [`RESERVE`] left to report.
pub const FUNCTION_TIMEOUT: Duration = crate::deployment::APP_WEBHOOKS.timeout;
/// Kept back from the invocation's deadline to change visibilities and answer.
pub const RESERVE: Duration = crate::deployment::APP_WEBHOOKS.reserve;
/// Receives of one event before the dead-letter queue (the events queue's `maxReceiveCount`).
pub const MAX_ATTEMPTS: u32 = crate::deployment::EVENTS_QUEUE.max_receive_count;

/// The wait after the `attempt`-th failed delivery (kept with the events queue it paces, which
/// the local queue imitates too).
pub use crate::deployment::retry_delay;

/// Why one attempt failed (logged; never the app's answer body).
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The app answered, but not 2xx.
    Status(u16),
    /// No answer within the attempt's time.
    TimedOut,
    /// No connection, or a broken one.
    Unreachable(String),
}

/// The signed POST to the app.
pub struct Sender {
    client: reqwest::Client,
    settings: WebhookSettings,
}

impl Sender {
    pub fn new(settings: WebhookSettings) -> HubResult<Self> {
        let client = reqwest::Client::builder()
            // A redirect is not a delivery: following it would send the event elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(HubError::internal)?;
        Ok(Sender { client, settings })
    }

    /// One attempt, signed with this attempt's timestamp, within [`ATTEMPT_TIMEOUT`] and
    /// never past `deadline`.
    pub async fn deliver(&self, event: &QueuedEvent, deadline: Deadline) -> Result<u16, Failure> {
        let timestamp = chrono::Utc::now().timestamp();
        let signature =
            self.settings
                .signature(&event.webhook_id, timestamp, event.body.as_bytes());
        let budget = deadline.at_most(ATTEMPT_TIMEOUT).remaining();
        if budget.is_zero() {
            return Err(Failure::TimedOut);
        }
        let answer = self
            .client
            .post(&self.settings.url)
            .timeout(budget)
            .header("content-type", "application/json")
            .header(HEADER_ID, &event.webhook_id)
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(event.body.clone())
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => Ok(response.status().as_u16()),
            Ok(response) => Err(Failure::Status(response.status().as_u16())),
            Err(e) if e.is_timeout() => Err(Failure::TimedOut),
            Err(e) => Err(Failure::Unreachable(e.without_url().to_string())),
        }
    }
}

/// One record of an events batch, as SQS hands it over.
#[derive(Clone, Debug)]
pub struct EventRecord {
    pub message_id: String,
    pub receipt_handle: String,
    /// `ApproximateReceiveCount`: which attempt this is (1 the first time).
    pub receive_count: u32,
    pub body: String,
}

/// Delivers a batch, every record at once, and returns the ids of those that failed (SQS's
/// partial batch response). Each failed record is made visible again after
/// [`retry_delay`] of its attempt, instead of after the queue's visibility timeout. A body
/// that is not an event fails too, so it reaches the dead-letter queue to be looked at.
pub async fn handle_batch(
    hub: &Hub,
    sender: &Sender,
    records: Vec<EventRecord>,
    deadline: Deadline,
) -> Vec<String> {
    futures::stream::iter(records)
        .map(|record| async move {
            let delivered = match serde_json::from_str::<QueuedEvent>(&record.body) {
                Ok(event) => match sender.deliver(&event, deadline).await {
                    Ok(status) => {
                        tracing::info!(webhook_id = %event.webhook_id, event_type = %event.kind, attempt = record.receive_count, status, "event delivered");
                        true
                    }
                    Err(failure) => {
                        tracing::warn!(webhook_id = %event.webhook_id, event_type = %event.kind, attempt = record.receive_count, failure = ?failure, "event not delivered; it will be retried");
                        false
                    }
                },
                Err(e) => {
                    tracing::error!(message_id = %record.message_id, error = %e, "message is not an event");
                    false
                }
            };
            if delivered {
                return None;
            }
            if let Some(queue) = &hub.events {
                let delay = retry_delay(record.receive_count);
                if let Err(e) = queue.retry_after(&record.receipt_handle, delay).await {
                    // The queue's own visibility timeout brings it back then: sooner, not lost.
                    tracing::warn!(message_id = %record.message_id, error = %e, "could not delay the retry");
                }
            }
            Some(record.message_id)
        })
        .buffer_unordered(crate::queue::MAX_BATCH)
        .filter_map(|failed| async move { failed })
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_retries_within_two_minutes_and_spans_more_than_an_hour() {
        assert!(retry_delay(1) <= Duration::from_secs(120));
        let waited: Duration = (1..MAX_ATTEMPTS).map(retry_delay).sum();
        const { assert!(MAX_ATTEMPTS >= 5) };
        assert!(waited >= Duration::from_secs(3600), "{waited:?}");
        // Growing, and within SQS's 12-hour visibility limit.
        for attempt in 1..MAX_ATTEMPTS {
            assert!(retry_delay(attempt + 1) >= retry_delay(attempt));
            assert!(retry_delay(attempt) <= Duration::from_secs(43_200));
        }
    }
}
