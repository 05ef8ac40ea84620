//! Events to the app (docs/API.md, "Events to the app"): what the producers queue (login, sync,
//! refused refresh, delete) against the testkit's providers, with no token anywhere in them;
//! the delivery (2xx done, 500 and timeouts failed, the same `webhook-id` on every attempt);
//! the local queue's retries and dead letters through a stand-in of the Invoke API; an app that
//! is down costing a sync nothing; and the SQS events queue on moto with its redrive to the
//! dead-letter queue.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use common::EventRecorder;
use hub::deadline::Deadline;
use hub::delivery::{self, EventRecord, Failure, Sender};
use hub::events::{Event, QueuedEvent};
use hub::model::{SyncJob, SyncReason};
use hub::queue::EventQueue;
use hub::sync::SyncResult;
use hub::Hub;
use hub_testkit::webhook_receiver::{Answer, WebhookReceiver};
use hub_testkit::{FakeProviders, DEFAULT_GOOGLE_USER};
use serde_json::{json, Value};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwJf6zXZsZqeY=";

fn webhook_env(url: &str) -> Vec<(String, String)> {
    vec![
        ("HUB_WEBHOOK_URL".into(), url.into()),
        ("HUB_WEBHOOK_SECRET".into(), SECRET.into()),
    ]
}

/// A local hub at the stand-ins whose events go to a [`EventRecorder`].
async fn recording_hub(providers: &FakeProviders) -> (Hub, Arc<EventRecorder>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = providers.env_vars();
    env.extend(webhook_env("https://app.example/hooks"));
    let mut hub = hub::testing::local_hub(dir.path(), &env).await;
    assert!(hub.events.is_some(), "HUB_WEBHOOK_URL turns events on");
    let recorder = Arc::new(EventRecorder::default());
    hub.events = Some(recorder.clone());
    (hub, recorder, dir)
}

/// Logs in as a browser would, through the stand-in's consent page.
async fn connect(hub: &Hub, provider: &str) -> hub::model::AccountView {
    let consent = hub::login::begin(hub, provider).await.unwrap();
    let callback = common::consent(&consent).await;
    hub::login::complete(hub, provider, callback).await.unwrap()
}

async fn sync(hub: &Hub, account_id: &str, provider: &str) -> SyncResult {
    let job = SyncJob {
        account_id: account_id.into(),
        provider: provider.into(),
        reason: SyncReason::Manual,
        requested_at: Utc::now(),
        stalled_requeues: 0,
    };
    hub::sync::run(hub, &job, hub::sync::fresh_invocation())
        .await
        .unwrap()
}

#[tokio::test]
async fn login_sync_reauth_and_delete_queue_their_events_and_never_a_token() {
    let providers = FakeProviders::start().await;
    let (hub, recorder, _dir) = recording_hub(&providers).await;
    providers.add_files("google", 3);

    let account = connect(&hub, "google").await;
    assert_eq!(recorder.types(), ["account.connected"]);
    assert_eq!(
        recorder.bodies()[0]["data"],
        serde_json::to_value(&account).unwrap(),
        "the /users row"
    );

    // A first sync stores three files: one event with the counts.
    assert!(matches!(
        sync(&hub, &account.id, "google").await,
        SyncResult::Synced { .. }
    ));
    let completed = &recorder.bodies()[1];
    assert_eq!(completed["type"], "sync.completed");
    assert_eq!(
        completed["data"],
        json!({"account_id": account.id, "owner": null, "provider": "google",
               "reason": "manual", "files_changed": 3, "files_deleted": 0})
    );

    // Nothing new: no event.
    sync(&hub, &account.id, "google").await;
    assert_eq!(recorder.queued.lock().unwrap().len(), 2);

    // One file changed and one deleted.
    let files = providers.add_files("google", 1);
    providers.delete_file_for("google", DEFAULT_GOOGLE_USER, &files[0]);
    providers.change_files("google", 1);
    sync(&hub, &account.id, "google").await;
    let last = recorder.bodies().last().unwrap().clone();
    assert_eq!(last["type"], "sync.completed");
    assert_eq!(last["data"]["files_deleted"], 1, "{last}");
    assert_eq!(last["data"]["files_changed"], 1, "{last}");

    // The grant dies: one reauth_required, and the next job is skipped without another.
    providers.revoke_refresh_tokens("google");
    providers.expire_access_tokens();
    assert_eq!(
        sync(&hub, &account.id, "google").await,
        SyncResult::NeedsReauth
    );
    sync(&hub, &account.id, "google").await;
    let types = recorder.types();
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "account.reauth_required")
            .count(),
        1,
        "{types:?}"
    );
    assert_eq!(
        recorder.bodies().last().unwrap()["data"],
        json!({"account_id": account.id, "owner": null, "provider": "google", "email": account.email})
    );

    hub::accounts::delete(&hub, &account.id).await.unwrap();
    let last = recorder.bodies().last().unwrap().clone();
    assert_eq!(last["type"], "account.deleted");
    assert_eq!(
        last["data"],
        json!({"account_id": account.id, "owner": null, "provider": "google"})
    );

    // No token the stand-ins issued is in any queued event, nor the secret.
    let everything = serde_json::to_string(&*recorder.queued.lock().unwrap()).unwrap();
    let issued = providers.issued_tokens();
    assert!(!issued.is_empty());
    for token in issued {
        assert!(!everything.contains(&token), "a token is in an event");
    }
    assert!(!everything.contains(SECRET.trim_start_matches("whsec_")));
    // Every event has its own id.
    let mut ids: Vec<_> = recorder
        .queued
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.webhook_id.clone())
        .collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count);
}

#[tokio::test]
async fn without_a_webhook_url_nothing_is_queued() {
    let providers = FakeProviders::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hub = hub::testing::local_hub(dir.path(), &providers.env_vars()).await;
    assert!(hub.events.is_none());
    // The producers run as usual (and would fail on a queue call: there is none).
    let account = connect(&hub, "google").await;
    hub::accounts::delete(&hub, &account.id).await.unwrap();
}

fn sender_to(url: &str) -> Sender {
    let config =
        hub::config::Config::from_env(&hub::config::Env::from_map(webhook_env(url))).unwrap();
    Sender::new(config.webhook.unwrap()).unwrap()
}

fn an_event() -> QueuedEvent {
    let account = hub::testing::account("onedrive").build();
    Event::deleted(&account).produce(Utc::now()).unwrap()
}

#[tokio::test]
async fn a_2xx_is_delivered_a_500_or_a_timeout_is_not_and_the_id_stays() {
    let receiver = WebhookReceiver::start(SECRET).await;
    let sender = sender_to(&receiver.url());
    let event = an_event();
    let deadline = || Deadline::after(Duration::from_secs(15));

    receiver.answer_next(Answer::Status(500), 1);
    assert_eq!(
        sender.deliver(&event, deadline()).await,
        Err(Failure::Status(500))
    );
    receiver.answer_next(Answer::Status(302), 1);
    assert_eq!(
        sender.deliver(&event, deadline()).await,
        Err(Failure::Status(302))
    );
    // A slow app: the attempt ends at the invocation's deadline (here shorter than 10 s).
    receiver.answer_next(Answer::Slow(Duration::from_secs(5)), 1);
    let started = Instant::now();
    assert_eq!(
        sender
            .deliver(&event, Deadline::after(Duration::from_millis(300)))
            .await,
        Err(Failure::TimedOut)
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(sender.deliver(&event, deadline()).await, Ok(204));

    let received = receiver.received();
    assert_eq!(received.len(), 4);
    for request in &received {
        assert_eq!(request.webhook_id, event.webhook_id);
        assert_eq!(request.body, event.body);
        assert!(request.verified, "{request:?}");
    }
    // An unreachable app is a failure too.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hooks", listener.local_addr().unwrap())
    };
    assert!(matches!(
        sender_to(&closed).deliver(&event, deadline()).await,
        Err(Failure::Unreachable(_))
    ));
}

/// A rotation of the signing secret (docs/DEPLOY.md, "Rotating the API key and the webhook
/// secret"): while `HUB_WEBHOOK_SECRET_NEXT` is set, an app that verifies with the current
/// secret and one that verifies with the next both accept the same delivery; once the next
/// secret is promoted, an app still on the old one refuses it.
#[tokio::test]
async fn during_a_secret_rotation_apps_on_either_secret_verify_the_delivery() {
    const NEXT: &str = "whsec_dGhpcyBpcyB0aGUgbmV4dCBzZWNyZXQga2V5IQ==";
    let sender = |url: &str, vars: &[(&str, &str)]| {
        let mut env = vec![("HUB_WEBHOOK_URL".to_string(), url.to_string())];
        env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = hub::config::Config::from_env(&hub::config::Env::from_map(env)).unwrap();
        Sender::new(config.webhook.unwrap()).unwrap()
    };
    let event = an_event();
    let deadline = || Deadline::after(Duration::from_secs(15));
    let on_current = WebhookReceiver::start(SECRET).await;
    let on_next = WebhookReceiver::start(NEXT).await;
    for receiver in [&on_current, &on_next] {
        let rotating = sender(
            &receiver.url(),
            &[
                ("HUB_WEBHOOK_SECRET", SECRET),
                ("HUB_WEBHOOK_SECRET_NEXT", NEXT),
            ],
        );
        assert_eq!(rotating.deliver(&event, deadline()).await, Ok(204));
        let received = receiver.received();
        assert_eq!(received.len(), 1);
        assert!(received[0].verified, "{:?}", received[0]);
    }
    // Promoted: the next secret is the only one; an app left on the old secret cannot
    // verify what it gets.
    let promoted = sender(&on_current.url(), &[("HUB_WEBHOOK_SECRET", NEXT)]);
    let _ = promoted.deliver(&event, deadline()).await;
    let received = on_current.received();
    assert_eq!(received.len(), 2);
    assert!(!received[1].verified, "{:?}", received[1]);
}

/// A stand-in of `cargo lambda watch`'s Invoke API for `app-webhooks`: runs the function's
/// batch handling in-process against `consumer`, and answers its partial batch response.
async fn invoke_api(consumer: Arc<(Hub, Sender)>) -> String {
    async fn invoke(
        State(consumer): State<Arc<(Hub, Sender)>>,
        Json(event): Json<Value>,
    ) -> Json<Value> {
        let records = event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| EventRecord {
                message_id: r["messageId"].as_str().unwrap().into(),
                receipt_handle: r["receiptHandle"].as_str().unwrap().into(),
                receive_count: r["attributes"]["ApproximateReceiveCount"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
                body: r["body"].as_str().unwrap().into(),
            })
            .collect();
        let (hub, sender) = &*consumer;
        let failed = delivery::handle_batch(
            hub,
            sender,
            records,
            Deadline::after(delivery::FUNCTION_TIMEOUT),
        )
        .await;
        Json(
            json!({"batchItemFailures": failed.iter().map(|id| json!({"itemIdentifier": id})).collect::<Vec<_>>()}),
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route(
            "/2015-03-31/functions/app-webhooks/invocations",
            post(invoke),
        )
        .with_state(consumer);
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// A local hub whose events queue invokes the [`invoke_api`] stand-in, with the retry
/// schedule scaled down to milliseconds.
async fn local_pipeline(
    providers: &FakeProviders,
    receiver: &WebhookReceiver,
) -> (Hub, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = providers.env_vars();
    env.extend(webhook_env(&receiver.url()));
    let consumer = hub::testing::local_hub(dir.path(), &env).await;
    let sender = Sender::new(consumer.config.webhook.clone().unwrap()).unwrap();
    let base = invoke_api(Arc::new((consumer, sender))).await;
    env.push(("HUB_LOCAL_INVOKE_URL".into(), base));
    env.push(("HUB_LOCAL_EVENT_RETRY_SCALE".into(), "0.0001".into()));
    let hub = hub::testing::local_hub(dir.path(), &env).await;
    (hub, dir)
}

#[tokio::test]
async fn the_local_queue_retries_an_event_with_its_id_and_dead_letters_it_after_six_attempts() {
    let providers = FakeProviders::start().await;
    let receiver = WebhookReceiver::start(SECRET).await;
    let (hub, dir) = local_pipeline(&providers, &receiver).await;

    receiver.answer_next(Answer::Status(500), 2);
    let account = connect(&hub, "google").await;
    let received = receiver
        .wait_for(Duration::from_secs(20), |r| r.len() >= 3)
        .await;
    assert_eq!(received.len(), 3, "two failures, then delivered");
    assert!(received.iter().all(|r| r.verified));
    assert!(received
        .iter()
        .all(|r| r.webhook_id == received[0].webhook_id && r.body == received[0].body));
    assert_eq!(received[2].event_type(), "account.connected");
    assert_eq!(received[2].json()["data"]["id"], account.id);

    // An app that never answers 2xx: six attempts, then the dead-letter directory.
    receiver.answer_next(Answer::Status(503), 6);
    hub::accounts::delete(&hub, &account.id).await.unwrap();
    let received = receiver
        .wait_for(Duration::from_secs(20), |r| r.len() >= 9)
        .await;
    assert_eq!(received.len(), 9);
    let dead = dir.path().join("dead-letter-events");
    let mut waited = Duration::ZERO;
    while std::fs::read_dir(&dead).map_or(0, |d| d.count()) == 0 {
        assert!(waited < Duration::from_secs(10), "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    let letter = std::fs::read_dir(&dead).unwrap().next().unwrap().unwrap();
    let kept: QueuedEvent = serde_json::from_slice(&std::fs::read(letter.path()).unwrap()).unwrap();
    assert_eq!(kept.kind, "account.deleted");
    assert_eq!(kept.webhook_id, received[3].webhook_id);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        receiver.received().len(),
        9,
        "nothing after the last attempt"
    );
}

#[tokio::test]
async fn an_app_that_is_down_or_slow_never_slows_or_fails_a_sync() {
    let providers = FakeProviders::start().await;
    let receiver = WebhookReceiver::start(SECRET).await;
    let (hub, _dir) = local_pipeline(&providers, &receiver).await;
    providers.add_files("google", 5);
    receiver.answer_next(Answer::Slow(Duration::from_secs(30)), 10);
    let account = connect(&hub, "google").await;
    let started = Instant::now();
    assert!(matches!(
        sync(&hub, &account.id, "google").await,
        SyncResult::Synced { files: 5, .. }
    ));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

// ------------------------------------------------------------------------------ SQS

#[tokio::test]
async fn the_sqs_events_queue_carries_the_same_id_and_dead_letters_after_max_receives() {
    let sdk = common::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let create =
        |name: String, attributes: Vec<(aws_sdk_sqs::types::QueueAttributeName, String)>| {
            let sqs = sqs.clone();
            async move {
                let mut request = sqs.create_queue().queue_name(name);
                for (k, v) in attributes {
                    request = request.attributes(k, v);
                }
                request
                    .send()
                    .await
                    .unwrap()
                    .queue_url()
                    .unwrap()
                    .to_string()
            }
        };
    use aws_sdk_sqs::types::QueueAttributeName as Attr;
    let dlq = create(common::unique("events-dlq"), vec![]).await;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(Attr::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&Attr::QueueArn]
        .clone();
    let queue = create(
        common::unique("events"),
        vec![(
            Attr::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": delivery::MAX_ATTEMPTS})
                .to_string(),
        )],
    )
    .await;
    let events = Arc::new(hub::queue::sqs::SqsQueue::new(sqs.clone(), &queue));

    let receiver = WebhookReceiver::start(SECRET).await;
    let dir = tempfile::tempdir().unwrap();
    let mut consumer = hub::testing::local_hub(dir.path(), &webhook_env(&receiver.url())).await;
    consumer.events = Some(events.clone());
    let sender = Sender::new(consumer.config.webhook.clone().unwrap()).unwrap();

    let event = an_event();
    events.publish(&event).await.unwrap();
    receiver.answer_next(Answer::Status(500), delivery::MAX_ATTEMPTS as usize);
    for attempt in 1..=delivery::MAX_ATTEMPTS {
        // The function set the failed message's visibility to its retry delay (minutes):
        // the test makes it visible again at once to play the next attempt.
        let received = sqs
            .receive_message()
            .queue_url(&queue)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let message = &received.messages()[0];
        let count: u32 = message.attributes().unwrap()
            [&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount]
            .parse()
            .unwrap();
        assert_eq!(count, attempt);
        let record = EventRecord {
            message_id: message.message_id().unwrap().into(),
            receipt_handle: message.receipt_handle().unwrap().into(),
            receive_count: count,
            body: message.body().unwrap().into(),
        };
        let failed = delivery::handle_batch(
            &consumer,
            &sender,
            vec![record],
            Deadline::after(delivery::FUNCTION_TIMEOUT),
        )
        .await;
        assert_eq!(failed.len(), 1);
        // Delayed: not visible now.
        let hidden = sqs
            .receive_message()
            .queue_url(&queue)
            .send()
            .await
            .unwrap();
        assert!(hidden.messages().is_empty(), "the retry waits its delay");
        sqs.change_message_visibility()
            .queue_url(&queue)
            .receipt_handle(message.receipt_handle().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
    // The receive after the last attempt moves it to the dead-letter queue.
    let after = sqs
        .receive_message()
        .queue_url(&queue)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert!(after.messages().is_empty());
    let dead = sqs
        .receive_message()
        .queue_url(&dlq)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let kept: QueuedEvent = serde_json::from_str(dead.messages()[0].body().unwrap()).unwrap();
    assert_eq!(kept, event);
    let received = receiver.received();
    assert_eq!(received.len(), delivery::MAX_ATTEMPTS as usize);
    assert!(received
        .iter()
        .all(|r| r.webhook_id == event.webhook_id && r.verified));
}
