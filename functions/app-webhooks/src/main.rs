//! `app-webhooks`: delivers the events of the events queue to `HUB_WEBHOOK_URL`, signed as
//! Standard Webhooks says (docs/API.md, "Events to the app"), and reports partial batch
//! failures: a failed event comes back after a delay that grows with its attempt (its
//! visibility is changed), then goes to the dead-letter queue.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use hub::deadline::Deadline;
use hub::delivery::{self, EventRecord, Sender};
use hub::queue::BatchResponse;
use hub::{Hub, HubError};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub::telemetry::init();
    let (hub, sender) = match start().await {
        Ok(started) => started,
        Err(error) => return hub::cold_start::serve_failure("app-webhooks", error).await,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        handle(hub.clone(), sender.clone(), event)
    }))
    .await
}

async fn start() -> Result<(Arc<Hub>, Arc<Sender>), HubError> {
    let hub = Arc::new(Hub::from_env().await?);
    hub::deployment::APP_WEBHOOKS.check(&hub.config)?;
    let sender = Arc::new(sender(&hub)?);
    Ok((hub, sender))
}

/// The function has nothing to do without a webhook URL: its cold start fails, and every
/// invocation answers with the reason (`hub::cold_start`).
fn sender(hub: &Hub) -> Result<Sender, HubError> {
    let settings =
        hub.config.webhook.clone().ok_or_else(|| {
            HubError::Config("HUB_WEBHOOK_URL is required by app-webhooks".into())
        })?;
    Sender::new(settings)
}

fn record(message: SqsMessage) -> EventRecord {
    let receive_count = message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|count| count.parse().ok())
        .unwrap_or(1);
    EventRecord {
        message_id: message.message_id.unwrap_or_default(),
        receipt_handle: message.receipt_handle.unwrap_or_default(),
        receive_count,
        body: message.body.unwrap_or_default(),
    }
}

async fn handle(
    hub: Arc<Hub>,
    sender: Arc<Sender>,
    event: LambdaEvent<SqsEvent>,
) -> Result<BatchResponse, Error> {
    let records = event.payload.records.into_iter().map(record).collect();
    let deadline = Deadline::of_lambda(event.context.deadline(), delivery::FUNCTION_TIMEOUT)
        .less(delivery::RESERVE);
    let failed = delivery::handle_batch(&hub, &sender, records, deadline).await;
    Ok(BatchResponse::failed(failed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub::events::Event;
    use hub_testkit::webhook_receiver::{Answer, WebhookReceiver};

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    async fn hub_for(dir: &std::path::Path, receiver: &WebhookReceiver) -> Arc<Hub> {
        let env = [
            ("HUB_WEBHOOK_URL".to_string(), receiver.url()),
            ("HUB_WEBHOOK_SECRET".to_string(), SECRET.to_string()),
        ];
        Arc::new(hub::testing::local_hub(dir, &env).await)
    }

    fn batch(bodies: &[(&str, String)]) -> SqsEvent {
        let mut event: SqsEvent =
            serde_json::from_str(include_str!("../../../events/app-webhooks-batch.json")).unwrap();
        let template = event.records[0].clone();
        event.records = bodies
            .iter()
            .map(|(id, body)| {
                let mut record = template.clone();
                record.message_id = Some(id.to_string());
                record.body = Some(body.clone());
                record
            })
            .collect();
        event
    }

    #[tokio::test]
    async fn the_sample_event_is_delivered_signed() {
        let receiver = WebhookReceiver::start(SECRET).await;
        let dir = tempfile::tempdir().unwrap();
        let hub = hub_for(dir.path(), &receiver).await;
        let sender = Arc::new(sender(&hub).unwrap());
        let event: SqsEvent =
            serde_json::from_str(include_str!("../../../events/app-webhooks-batch.json")).unwrap();
        let response = handle(hub, sender, LambdaEvent::new(event, Default::default()))
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
        let received = receiver.received();
        assert_eq!(received.len(), 1);
        assert!(received[0].verified, "{:?}", received[0]);
        assert_eq!(received[0].event_type(), "account.deleted");
    }

    #[tokio::test]
    async fn failures_are_reported_and_2xx_is_done() {
        let receiver = WebhookReceiver::start(SECRET).await;
        let dir = tempfile::tempdir().unwrap();
        let hub = hub_for(dir.path(), &receiver).await;
        let sender = Arc::new(sender(&hub).unwrap());
        let account = hub::testing::account("google").build();
        let event = Event::deleted(&account)
            .produce(chrono::Utc::now())
            .unwrap();
        let body = serde_json::to_string(&event).unwrap();
        receiver.answer_next(Answer::Status(500), 1);
        let first = handle(
            hub.clone(),
            sender.clone(),
            LambdaEvent::new(
                batch(&[("m1", body.clone()), ("garbage", "{not an event".into())]),
                Default::default(),
            ),
        )
        .await
        .unwrap();
        let failed: Vec<_> = first
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed.len(), 2);
        assert!(failed.contains(&"m1") && failed.contains(&"garbage"));
        let again = handle(
            hub,
            sender,
            LambdaEvent::new(batch(&[("m1", body)]), Default::default()),
        )
        .await
        .unwrap();
        assert!(again.batch_item_failures.is_empty());
        let received = receiver.received();
        assert_eq!(received.len(), 2);
        assert_eq!(received[0].webhook_id, event.webhook_id);
        assert_eq!(received[1].webhook_id, event.webhook_id);
        assert_eq!(received[0].body, received[1].body);
        assert!(received.iter().all(|r| r.verified));
    }

    #[tokio::test]
    async fn a_cold_start_without_a_webhook_url_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub::testing::local_hub(dir.path(), &[]).await;
        let error = sender(&hub).err().unwrap().to_string();
        assert!(error.contains("HUB_WEBHOOK_URL"), "{error}");
    }
}
