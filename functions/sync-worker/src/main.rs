//! `sync-worker`: consumes the sync queue (SQS in AWS; locally the local queue invokes it
//! through `cargo lambda watch`): sync jobs, fan-out continuations and purge jobs. It reports
//! partial batch failures, so only the failed records come back (and, after
//! `maxReceiveCount`, go to the dead-letter queue).

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use hub::deadline::Deadline;
use hub::queue::BatchResponse;
use hub::sync::{self, Message};
use hub::Hub;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hub::telemetry::init();
    let hub = match start().await {
        Ok(hub) => hub,
        Err(error) => return hub::cold_start::serve_failure("sync-worker", error).await,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        handle(hub.clone(), event)
    }))
    .await
}

async fn start() -> Result<Arc<Hub>, hub::HubError> {
    let hub = Arc::new(Hub::from_env().await?);
    hub::deployment::SYNC_WORKER.check(&hub.config)?;
    Ok(hub)
}

async fn handle(hub: Arc<Hub>, event: LambdaEvent<SqsEvent>) -> Result<BatchResponse, Error> {
    let messages = event
        .payload
        .records
        .into_iter()
        .map(|record| Message {
            id: record.message_id.unwrap_or_default(),
            body: record.body.unwrap_or_default(),
        })
        .collect();
    // The invocation's own deadline, less the time kept to store places and requeue.
    let deadline = Deadline::of_lambda(event.context.deadline(), hub::queue::local::WORKER_TIMEOUT)
        .less(sync::RESERVE);
    let failed = sync::handle_batch(&hub, messages, deadline).await;
    Ok(BatchResponse::failed(failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_for_unknown_accounts_are_dropped_and_garbage_is_a_batch_failure() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        let mut event: SqsEvent =
            serde_json::from_str(include_str!("../../../events/sync-worker-batch.json")).unwrap();
        let mut garbage = event.records[0].clone();
        garbage.message_id = Some("garbage".into());
        garbage.body = Some("{not a job".into());
        event.records.push(garbage);
        let response = handle(hub, LambdaEvent::new(event, Default::default()))
            .await
            .unwrap();
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["garbage"]);
    }
}
