//! `sync-worker`: consumes sync jobs from SQS and reports partial batch failures, so only
//! the failed records come back (and, after `maxReceiveCount`, go to the dead-letter queue).

use std::sync::Arc;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use hub::worker::{self, Message};
use hub::Hub;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub::telemetry::init();
    let hub = Arc::new(Hub::from_env().await?);
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        handle(hub.clone(), event)
    }))
    .await
}

async fn handle(hub: Arc<Hub>, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let messages = event
        .payload
        .records
        .into_iter()
        .map(|record| Message {
            id: record.message_id.unwrap_or_default(),
            body: record.body.unwrap_or_default(),
        })
        .collect();
    let failed = worker::handle_batch(&hub, messages).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    Ok(response)
}
