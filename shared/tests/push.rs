//! Push notifications (docs/API.md, "Push notifications") on both stores: a Dropbox webhook
//! checked over its raw body, one `push` job per connected account of each identity it names,
//! coalesced while a job is queued and not started, and the mark cleared when the worker starts
//! the job.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{Duration as Age, Utc};
use hmac::{Hmac, Mac};
use hub::config::Env;
use hub::model::{Account, AccountStatus, QueueMessage, SyncReason};
use hub::providers::http::RetryPolicy;
use hub::push::{self, Queued};
use hub::queue::JobQueue;
use hub::store::dynamo::DynamoStore;
use hub::store::Write;
use hub::{Hub, HubError, HubResult};

const APP_SECRET: &str = "dropbox-app-secret";

/// Keeps what was queued; fails every call while `failing` is set.
#[derive(Default)]
struct Recorded {
    messages: Mutex<Vec<QueueMessage>>,
    failing: AtomicBool,
}

impl Recorded {
    fn take(&self) -> Vec<QueueMessage> {
        std::mem::take(&mut *self.messages.lock().unwrap())
    }
}

#[async_trait]
impl JobQueue for Recorded {
    async fn enqueue(&self, messages: &[QueueMessage]) -> HubResult<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(HubError::internal("queue down"));
        }
        self.messages.lock().unwrap().extend_from_slice(messages);
        Ok(())
    }

    async fn enqueue_delayed(&self, message: &QueueMessage, _delay: Duration) -> HubResult<()> {
        self.enqueue(std::slice::from_ref(message)).await
    }
}

enum Backend {
    Local,
    Dynamo,
}

async fn hub_on(
    backend: Backend,
    push: &str,
    dropbox: bool,
) -> (Hub, Arc<Recorded>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = vec![
        ("HUB_DATA_DIR", dir.path().display().to_string()),
        ("HUB_PUSH", push.to_string()),
    ];
    if dropbox {
        vars.push(("DROPBOX_CLIENT_ID", "dropbox-app-key".into()));
        vars.push(("DROPBOX_CLIENT_SECRET", APP_SECRET.into()));
    }
    let mut hub = Hub::build(&Env::from_map(vars), RetryPolicy::default())
        .await
        .unwrap();
    if let Backend::Dynamo = backend {
        let (client, table) = common::dynamo_table().await;
        hub.store = Arc::new(DynamoStore::new(client, table));
    }
    let recorded = Arc::new(Recorded::default());
    hub.queue = recorded.clone();
    (hub, recorded, dir)
}

async fn connect(hub: &Hub, identity: &str, owner: Option<&str>) -> Account {
    let mut account = hub::testing::account("dropbox").user(identity).build();
    account.owner = owner.map(str::to_string);
    assert_eq!(
        hub.store.create_account(&account).await.unwrap(),
        Write::Done
    );
    account
}

fn signed(body: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn notification(accounts: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "list_folder": {"accounts": accounts},
        "delta": {"users": [12345]}
    }))
    .unwrap()
}

/// The accounts the queued jobs name, each checked to be a `push` job of Dropbox.
fn pushed(messages: Vec<QueueMessage>) -> Vec<String> {
    let mut ids: Vec<String> = messages
        .into_iter()
        .map(|message| match message {
            QueueMessage::Sync(job) => {
                assert_eq!(job.reason, SyncReason::Push);
                assert_eq!(job.provider, "dropbox");
                job.account_id
            }
            other => panic!("not a sync job: {other:?}"),
        })
        .collect();
    ids.sort();
    ids
}

async fn dropbox_webhook_suite(backend: Backend) {
    let (hub, queue, _dir) = hub_on(backend, "on", true).await;
    let identity = format!("dbid:{}", uuid::Uuid::new_v4().simple());
    let alone = connect(&hub, &identity, None).await;
    let owned = connect(&hub, &identity, Some("app-user-7")).await;
    let other = connect(&hub, "dbid:someone-else", None).await;
    let mut reauth = hub::testing::account("dropbox").user("dbid:reauth").build();
    reauth.status = AccountStatus::NeedsReauth;
    assert_eq!(
        hub.store.create_account(&reauth).await.unwrap(),
        Write::Done
    );

    // Forged: another key, or no signature at all. Nothing is queued, nothing is marked.
    let body = notification(&[&identity, "dbid:reauth", "dbid:nobody"]);
    for signature in [Some(signed(&body, "not-the-secret")), None] {
        let refused = push::app_notification(&hub, "dropbox", signature.as_deref(), &body).await;
        assert!(
            matches!(refused, Err(HubError::ForgedNotification)),
            "{refused:?}"
        );
    }
    // A valid signature over a body that is not Dropbox's is a 400, not a 5xx.
    let garbage = b"[1, 2]";
    let malformed =
        push::app_notification(&hub, "dropbox", Some(&signed(garbage, APP_SECRET)), garbage).await;
    assert!(
        matches!(malformed, Err(HubError::InvalidRequest(_))),
        "{malformed:?}"
    );
    assert!(queue.take().is_empty());

    // Genuine: both accounts of the identity, whatever their owner; not the one that must log
    // in again, nor an identity nobody connected.
    let signature = signed(&body, APP_SECRET);
    let queued = push::app_notification(&hub, "dropbox", Some(&signature), &body)
        .await
        .unwrap();
    assert_eq!(
        queued,
        Queued {
            jobs: 2,
            coalesced: 0
        }
    );
    let mut expected = vec![alone.id.clone(), owned.id.clone()];
    expected.sort();
    assert_eq!(pushed(queue.take()), expected);

    // A burst (and a replay) while the jobs are queued queues nothing more.
    for _ in 0..3 {
        let queued = push::app_notification(&hub, "dropbox", Some(&signature), &body)
            .await
            .unwrap();
        assert_eq!(
            queued,
            Queued {
                jobs: 0,
                coalesced: 2
            }
        );
    }
    assert!(queue.take().is_empty());

    // The worker starts one of them: that account's next notification queues again. The sync
    // itself ends at once (the account must log in again meanwhile), after clearing the mark.
    let mut started = hub.store.get_account(&alone.id).await.unwrap().unwrap();
    started.status = AccountStatus::NeedsReauth;
    started.version += 1;
    assert_eq!(
        hub.store
            .update_account(&started, alone.version)
            .await
            .unwrap(),
        Write::Done
    );
    let job = hub::model::SyncJob {
        account_id: alone.id.clone(),
        provider: "dropbox".into(),
        reason: SyncReason::Push,
        requested_at: Utc::now(),
        stalled_requeues: 0,
    };
    hub::sync::run(&hub, &job, hub::sync::fresh_invocation())
        .await
        .unwrap();
    started.status = AccountStatus::Active;
    started.version += 1;
    assert_eq!(
        hub.store
            .update_account(&started, started.version - 1)
            .await
            .unwrap(),
        Write::Done
    );
    let queued = push::app_notification(&hub, "dropbox", Some(&signature), &body)
        .await
        .unwrap();
    assert_eq!(
        queued,
        Queued {
            jobs: 1,
            coalesced: 1
        }
    );
    assert_eq!(pushed(queue.take()), vec![alone.id.clone()]);

    // A queue failure leaves no mark behind: the provider's retry queues the job.
    let other_body = notification(&["dbid:someone-else"]);
    let other_signature = signed(&other_body, APP_SECRET);
    queue.failing.store(true, Ordering::SeqCst);
    assert!(
        push::app_notification(&hub, "dropbox", Some(&other_signature), &other_body)
            .await
            .is_err()
    );
    queue.failing.store(false, Ordering::SeqCst);
    let queued = push::app_notification(&hub, "dropbox", Some(&other_signature), &other_body)
        .await
        .unwrap();
    assert_eq!(
        queued,
        Queued {
            jobs: 1,
            coalesced: 0
        }
    );
    assert_eq!(pushed(queue.take()), vec![other.id.clone()]);

    // Deleting an account removes its mark with it.
    assert!(hub::purge::delete_at_once(hub.store.as_ref(), &other.id)
        .await
        .unwrap());
    let now = Utc::now();
    assert!(hub
        .store
        .mark_push_pending(&other.id, now, now + Age::minutes(1))
        .await
        .unwrap());
}

async fn push_mark_suite(backend: Backend) {
    let (hub, _queue, _dir) = hub_on(backend, "on", true).await;
    let store = hub.store.clone();
    let id = uuid::Uuid::new_v4().to_string();
    let now = Utc::now();
    // Of many at once, one takes the mark.
    let attempts = (0..8).map(|_| {
        let store = store.clone();
        let id = id.clone();
        async move {
            store
                .mark_push_pending(&id, now, now + Age::minutes(15))
                .await
                .unwrap()
        }
    });
    let taken = futures::future::join_all(attempts).await;
    assert_eq!(taken.iter().filter(|t| **t).count(), 1, "{taken:?}");
    // An expired mark is free again, even before any sweep removed it.
    let later = now + Age::minutes(16);
    assert!(store
        .mark_push_pending(&id, later, later + Age::minutes(15))
        .await
        .unwrap());
    assert!(!store
        .mark_push_pending(&id, later, later + Age::minutes(15))
        .await
        .unwrap());
    store.clear_push_pending(&id).await.unwrap();
    assert!(store
        .mark_push_pending(&id, later, later + Age::minutes(15))
        .await
        .unwrap());
    // Keys too long to name a record are never marked, and clearing them is a no-op.
    let long = "x".repeat(200);
    assert!(!store.mark_push_pending(&long, now, later).await.unwrap());
    store.clear_push_pending(&long).await.unwrap();
}

#[tokio::test]
async fn dropbox_webhook_on_the_local_store() {
    dropbox_webhook_suite(Backend::Local).await;
}

#[tokio::test]
async fn dropbox_webhook_on_dynamodb() {
    dropbox_webhook_suite(Backend::Dynamo).await;
}

#[tokio::test]
async fn push_mark_on_the_local_store() {
    push_mark_suite(Backend::Local).await;
}

#[tokio::test]
async fn push_mark_on_dynamodb() {
    push_mark_suite(Backend::Dynamo).await;
}

#[tokio::test]
async fn push_off_answers_and_queues_nothing_and_unconfigured_dropbox_is_refused() {
    let (hub, queue, _dir) = hub_on(Backend::Local, "off", true).await;
    let account = connect(&hub, "dbid:quiet", None).await;
    let body = notification(&["dbid:quiet"]);
    let queued = push::app_notification(&hub, "dropbox", Some(&signed(&body, APP_SECRET)), &body)
        .await
        .unwrap();
    assert_eq!(queued, Queued::default());
    assert!(queue.take().is_empty());
    // Forgeries are refused all the same.
    assert!(matches!(
        push::app_notification(&hub, "dropbox", Some(&signed(&body, "x")), &body).await,
        Err(HubError::ForgedNotification)
    ));
    let now = Utc::now();
    assert!(hub
        .store
        .mark_push_pending(&account.id, now, now + Age::minutes(1))
        .await
        .unwrap());

    let (unconfigured, _, _dir) = hub_on(Backend::Local, "on", false).await;
    let refused = push::app_notification(&unconfigured, "dropbox", None, &body).await;
    assert!(
        matches!(refused, Err(HubError::ProviderNotConfigured { .. })),
        "{refused:?}"
    );
}

// ------------------------------------------------------------ Google Drive channels

/// A hub on `backend` behind a receiver that serves `POST /webhooks/{provider}` as
/// `provider-webhooks` does, with Google at the stand-in and one account of its default user
/// connected through a real login.
struct DriveBench {
    provider: &'static str,
    providers: hub_testkit::FakeProviders,
    hub: Arc<Hub>,
    queue: Arc<Recorded>,
    account: Account,
    _dir: tempfile::TempDir,
}

const DRIVE_USER: &str = hub_testkit::DEFAULT_GOOGLE_USER;

async fn drive_bench(backend: Backend) -> DriveBench {
    bench(backend, "google").await
}

async fn bench(backend: Backend, provider: &'static str) -> DriveBench {
    use axum::routing::post;
    let providers = hub_testkit::FakeProviders::start().await;
    providers.add_files(provider, 3);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut env = providers.env_vars();
    env.push(("HUB_PUSH".into(), "on".into()));
    env.push(("HUB_PUBLIC_URL".into(), public_url));
    // Graph opens a drive subscription only for a grant that may write.
    env.push(("ONEDRIVE_SCOPES".into(), "Files.ReadWrite".into()));
    let mut hub = hub::testing::local_hub(dir.path(), &env).await;
    if let Backend::Dynamo = backend {
        let (client, table) = common::dynamo_table().await;
        hub.store = Arc::new(DynamoStore::new(client, table));
    }
    let queue = Arc::new(Recorded::default());
    hub.queue = queue.clone();
    let hub = Arc::new(hub);
    let receiver = axum::Router::new()
        .route(
            "/webhooks/{provider}",
            post(
                |axum::extract::State(hub): axum::extract::State<Arc<Hub>>,
                 axum::extract::Path(provider): axum::extract::Path<String>,
                 query: hub::web::QueryParams,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    hub::web::notification_response(&hub, &provider, &query, &headers, &body).await
                },
            ),
        )
        .with_state(hub.clone());
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let account = log_in(&hub, provider).await;
    DriveBench {
        provider,
        providers,
        hub,
        queue,
        account,
        _dir: dir,
    }
}

/// Consents at the stand-in as a browser would, and completes the callback.
async fn log_in(hub: &Hub, provider: &str) -> Account {
    let url = hub::login::begin(hub, provider).await.unwrap();
    let callback = common::consent(&url).await;
    let view = hub::login::complete(hub, provider, callback).await.unwrap();
    hub.store.get_account(&view.id).await.unwrap().unwrap()
}

impl DriveBench {
    async fn sync(&self) {
        self.sync_for(SyncReason::Schedule).await
    }

    async fn sync_for(&self, reason: SyncReason) {
        let job = hub::model::SyncJob {
            account_id: self.account.id.clone(),
            provider: self.provider.into(),
            reason,
            requested_at: Utc::now(),
            stalled_requeues: 0,
        };
        let result = hub::sync::run(&self.hub, &job, hub::sync::fresh_invocation())
            .await
            .unwrap();
        assert!(
            matches!(result, hub::sync::SyncResult::Synced { .. }),
            "{result:?}"
        );
    }

    async fn channels(&self) -> Vec<hub::model::PushChannel> {
        self.hub
            .store
            .account_channels(&self.account.id)
            .await
            .unwrap()
    }

    async fn statuses(&self, authenticity: hub_testkit::Authenticity) -> Vec<Option<u16>> {
        let deliveries = self
            .providers
            .notify_drive_change(DRIVE_USER, authenticity)
            .await;
        deliveries.into_iter().map(|d| d.status).collect()
    }
}

async fn drive_channel_suite(backend: Backend) {
    let bench = drive_bench(backend).await;
    // The first sync opens a channel; it is stored with its secret hashed, never in clear.
    bench.sync().await;
    let live = bench.providers.live_drive_channels(DRIVE_USER);
    assert_eq!(live.len(), 1, "{live:?}");
    let channels = bench.channels().await;
    assert_eq!(channels.len(), 1);
    let first = channels[0].clone();
    assert_eq!(first.id, live[0]);
    assert!(first.resource_id.is_some());
    assert_eq!(first.secret_hash.len(), 64);
    assert!(first.expires_at > Utc::now() + Age::days(6));
    // A sync while it lives long enough keeps it.
    bench.sync().await;
    assert_eq!(bench.providers.live_drive_channels(DRIVE_USER), live);

    // A forged token is a 401 and queues nothing; a genuine change queues one push job, and a
    // burst while it waits queues nothing more.
    assert_eq!(
        bench.statuses(hub_testkit::Authenticity::Forged).await,
        vec![Some(401)]
    );
    assert!(bench.queue.take().is_empty());
    for _ in 0..3 {
        assert_eq!(
            bench.statuses(hub_testkit::Authenticity::Genuine).await,
            vec![Some(200)]
        );
    }
    let jobs = bench.queue.take();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    match &jobs[0] {
        QueueMessage::Sync(job) => {
            assert_eq!(job.account_id, bench.account.id);
            assert_eq!(job.reason, SyncReason::Push);
        }
        other => panic!("{other:?}"),
    }
    // An unknown channel is refused without a scan; `sync` messages queue nothing.
    let refused =
        push::channel_notification(&bench.hub, "google", Some("no-such"), None, false).await;
    assert!(matches!(refused, Err(HubError::ForgedNotification)));

    // Within a day of its end: a new channel (new id), then the old one is stopped.
    let mut ending = first.clone();
    ending.expires_at = Utc::now() + Age::hours(2);
    bench.hub.store.put_channel(&ending).await.unwrap();
    bench.sync().await;
    let renewed = bench.providers.live_drive_channels(DRIVE_USER);
    assert_eq!(renewed.len(), 1, "{renewed:?}");
    assert_ne!(renewed[0], first.id);
    let channels = bench.channels().await;
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].id, renewed[0]);
    assert!(bench
        .hub
        .store
        .get_channel("google", &first.id)
        .await
        .unwrap()
        .is_none());

    // A watch the provider refuses never fails the sync, and leaves no channel behind.
    let mut dying = channels[0].clone();
    dying.expires_at = Utc::now() + Age::hours(1);
    bench.hub.store.put_channel(&dying).await.unwrap();
    bench
        .providers
        .fail_next("/google/drive/v3/changes/watch", 400, None, 1);
    bench.sync().await;
    let channels = bench.channels().await;
    assert_eq!(channels.len(), 1, "the old one stays until a renewal works");
    assert_eq!(channels[0].id, dying.id);

    // DELETE stops the channel and leaves no record of it.
    hub::accounts::delete_by(&bench.hub, &bench.account.id, hub::sync::fresh_invocation())
        .await
        .unwrap();
    assert!(bench.providers.live_drive_channels(DRIVE_USER).is_empty());
    assert!(bench
        .hub
        .store
        .get_channel("google", &dying.id)
        .await
        .unwrap()
        .is_none());
    assert!(bench.channels().await.is_empty());
}

#[tokio::test]
async fn drive_channels_on_the_local_store() {
    drive_channel_suite(Backend::Local).await;
}

#[tokio::test]
async fn drive_channels_on_dynamodb() {
    drive_channel_suite(Backend::Dynamo).await;
}

// ------------------------------------------------------------ Microsoft Graph subscriptions

const GRAPH_USER: &str = hub_testkit::DEFAULT_MICROSOFT_USER;

impl DriveBench {
    async fn graph_statuses(&self, authenticity: hub_testkit::Authenticity) -> Vec<Option<u16>> {
        let deliveries = self
            .providers
            .notify_graph_change(GRAPH_USER, authenticity)
            .await;
        deliveries.into_iter().map(|d| d.status).collect()
    }

    async fn lifecycle(&self, event: hub_testkit::LifecycleEvent) -> Vec<Option<u16>> {
        let deliveries = self
            .providers
            .send_graph_lifecycle_event(GRAPH_USER, event)
            .await;
        deliveries.into_iter().map(|d| d.status).collect()
    }

    fn push_jobs(&self) -> usize {
        let jobs = self.queue.take();
        for job in &jobs {
            assert!(
                matches!(job, QueueMessage::Sync(job) if job.reason == SyncReason::Push
                    && job.account_id == self.account.id),
                "{job:?}"
            );
        }
        jobs.len()
    }
}

async fn graph_subscription_suite(backend: Backend) {
    use hub_testkit::{Authenticity, LifecycleEvent};
    let bench = bench(backend, "onedrive").await;
    // The first sync subscribes (Graph validates the address against the hub first).
    bench.sync().await;
    let live = bench.providers.live_graph_subscriptions(GRAPH_USER);
    assert_eq!(live.len(), 1, "{live:?}");
    let channels = bench.channels().await;
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].resource_id.as_deref(), Some(live[0].as_str()));
    assert!(channels[0].expires_at > Utc::now() + Age::days(20));

    // A wrong clientState is ignored (202, nothing queued); a genuine change queues one job,
    // and more while it waits queue nothing.
    assert_eq!(
        bench.graph_statuses(Authenticity::Forged).await,
        vec![Some(202)]
    );
    assert_eq!(bench.push_jobs(), 0);
    for _ in 0..2 {
        assert_eq!(
            bench.graph_statuses(Authenticity::Genuine).await,
            vec![Some(202)]
        );
    }
    assert_eq!(bench.push_jobs(), 1);

    // reauthorizationRequired: the push sync renews the same subscription in place.
    let ending = only_channel(&bench).await;
    assert_eq!(
        bench
            .lifecycle(LifecycleEvent::ReauthorizationRequired)
            .await,
        vec![Some(202)]
    );
    assert!(bench.channels().await[0].renew);
    assert_eq!(bench.push_jobs(), 0, "the job queued before covers it");
    bench.sync_for(SyncReason::Push).await;
    let renewed = bench.channels().await;
    assert_eq!(renewed.len(), 1);
    assert!(!renewed[0].renew);
    assert_eq!(renewed[0].resource_id, ending.resource_id);
    assert_eq!(bench.providers.live_graph_subscriptions(GRAPH_USER), live);

    // Renewal by PATCH when it ends within a day.
    let mut soon = renewed[0].clone();
    soon.expires_at = Utc::now() + Age::hours(2);
    bench.hub.store.put_channel(&soon).await.unwrap();
    bench.sync().await;
    let patched = bench.channels().await;
    assert_eq!(patched[0].resource_id, soon.resource_id);
    assert!(patched[0].expires_at > Utc::now() + Age::days(20));

    // missed queues a sync.
    assert_eq!(
        bench.lifecycle(LifecycleEvent::Missed).await,
        vec![Some(202)]
    );
    assert_eq!(bench.push_jobs(), 1);
    bench.sync_for(SyncReason::Push).await;

    // subscriptionRemoved: forgotten at once, and the sync it queues subscribes again.
    assert_eq!(
        bench.lifecycle(LifecycleEvent::SubscriptionRemoved).await,
        vec![Some(202)]
    );
    assert!(bench.channels().await.is_empty());
    assert_eq!(bench.push_jobs(), 1);
    bench.sync_for(SyncReason::Push).await;
    let again = bench.providers.live_graph_subscriptions(GRAPH_USER);
    assert_eq!(again.len(), 1);
    assert_ne!(again, live);

    // A body that is not Graph's is a 400; DELETE deletes the subscription.
    let refused = push::subscription_notification(&bench.hub, "onedrive", b"[]").await;
    assert!(
        matches!(refused, Err(HubError::InvalidRequest(_))),
        "{refused:?}"
    );
    hub::accounts::delete_by(&bench.hub, &bench.account.id, hub::sync::fresh_invocation())
        .await
        .unwrap();
    assert!(bench
        .providers
        .live_graph_subscriptions(GRAPH_USER)
        .is_empty());
    assert!(bench.channels().await.is_empty());
}

/// The account's one channel as it is now.
async fn only_channel(bench: &DriveBench) -> hub::model::PushChannel {
    let channels = bench.channels().await;
    assert_eq!(channels.len(), 1);
    channels[0].clone()
}

#[tokio::test]
async fn graph_subscriptions_on_the_local_store() {
    graph_subscription_suite(Backend::Local).await;
}

#[tokio::test]
async fn graph_subscriptions_on_dynamodb() {
    graph_subscription_suite(Backend::Dynamo).await;
}
