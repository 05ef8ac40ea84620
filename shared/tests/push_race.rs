//! A `DELETE` racing push channel upkeep leaves nothing behind (issue 24, item 5), on both
//! stores: not the channel's records, and not a live subscription at the provider.
//!
//! - The worker stores an unconfirmed channel, then calls Graph's `POST /subscriptions`
//!   (held by the stand-in); the `DELETE` runs during the call and finds only the unconfirmed
//!   record. The worker's confirming write is conditional on the account, fails, and the
//!   worker deletes the subscription it just made.
//! - A `reauthorizationRequired` notice read its channel before the `DELETE`; its write after
//!   it is conditional too, and lands nowhere.
//! - Notices are honoured only for unexpired channels, and lifecycle notices only for
//!   channels the provider confirmed.

mod common;
#[path = "support/hooked_store.rs"]
mod hooked_store;

use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as Age, Utc};
use common::JobRecorder as Recorded;
use hooked_store::Hooked;
use hub::model::{Account, PushChannel, SyncJob, SyncReason};
use hub::store::dynamo::DynamoStore;
use hub::store::Write;
use hub::Hub;
use hub_testkit::FakeProviders;
use serde_json::json;
use sha2::Digest;

const GRAPH_USER: &str = hub_testkit::DEFAULT_MICROSOFT_USER;

#[derive(Clone, Copy)]
enum Backend {
    Local,
    Dynamo,
}

struct Bench {
    providers: FakeProviders,
    hub: Arc<Hub>,
    store: Arc<Hooked>,
    queue: Arc<Recorded>,
    account: Account,
    _dir: tempfile::TempDir,
}

/// A hub with push on, behind a receiver that serves `/webhooks/{provider}` as
/// `provider-webhooks` does (Graph validates the address against it), and one OneDrive
/// account connected through a real login at the stand-in.
async fn bench(backend: Backend) -> Bench {
    let providers = FakeProviders::start().await;
    providers.add_files("onedrive", 2);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut env = providers.env_vars();
    env.push(("HUB_PUSH".into(), "on".into()));
    // Graph opens a drive subscription only for a grant that may write.
    env.push(("ONEDRIVE_SCOPES".into(), "Files.ReadWrite".into()));
    env.push(("HUB_PUBLIC_URL".into(), public_url));
    let mut hub = hub::testing::local_hub(dir.path(), &env).await;
    if let Backend::Dynamo = backend {
        let (client, table) = common::dynamo_table().await;
        hub.store = Arc::new(DynamoStore::new(client, table));
    }
    let store = Arc::new(Hooked::new(hub.store.clone()));
    hub.store = store.clone();
    let queue = Arc::new(Recorded::default());
    hub.queue = queue.clone();
    let hub = Arc::new(hub);
    let routes = hub::web::with_fallbacks(hub::web::webhook_routes(hub.clone()));
    tokio::spawn(async move { axum::serve(listener, routes).await });
    let url = hub::login::begin(&hub, "onedrive").await.unwrap();
    let callback = common::consent(&url).await;
    let view = hub::login::complete(&hub, "onedrive", callback)
        .await
        .unwrap();
    let account = hub.store.get_account(&view.id).await.unwrap().unwrap();
    Bench {
        providers,
        hub,
        store,
        queue,
        account,
        _dir: dir,
    }
}

impl Bench {
    fn job(&self) -> SyncJob {
        SyncJob {
            account_id: self.account.id.clone(),
            provider: "onedrive".into(),
            reason: SyncReason::Manual,
            requested_at: Utc::now(),
            stalled_requeues: 0,
        }
    }

    async fn delete(&self) {
        hub::accounts::delete_by(&self.hub, &self.account.id, hub::sync::fresh_invocation())
            .await
            .unwrap();
    }

    async fn channels(&self) -> Vec<PushChannel> {
        self.hub
            .store
            .account_channels(&self.account.id)
            .await
            .unwrap()
    }

    fn jobs(&self) -> usize {
        std::mem::take(&mut *self.queue.0.lock().unwrap()).len()
    }
}

async fn delete_during_the_subscribe_call(backend: Backend) {
    let bench = bench(backend).await;
    // Graph takes 4 s to answer the worker's subscribe call.
    bench.providers.delay_next(
        "POST",
        "/graph/v1.0/subscriptions",
        Duration::from_secs(4),
        1,
    );
    let worker = {
        let (hub, job) = (bench.hub.clone(), bench.job());
        tokio::spawn(async move { hub::sync::run(&hub, &job, hub::sync::fresh_invocation()).await })
    };
    let asked = async {
        while bench.providers.requests("/graph/v1.0/subscriptions") == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), asked)
        .await
        .expect("the worker subscribes after its sync");
    // The DELETE finds only the unconfirmed record, and answers while Graph still holds the
    // call.
    let unconfirmed = bench.channels().await;
    assert_eq!(unconfirmed.len(), 1, "{unconfirmed:?}");
    assert!(unconfirmed[0].resource_id.is_none());
    bench.delete().await;
    assert!(bench.channels().await.is_empty());
    assert!(
        !worker.is_finished(),
        "the DELETE ran during the subscribe call"
    );

    let synced = worker.await.unwrap().unwrap();
    assert!(
        matches!(synced, hub::sync::SyncResult::Synced { .. }),
        "{synced:?}"
    );
    // Graph made the subscription; the worker deleted it again, and stored nothing.
    assert_eq!(bench.providers.requests("/graph/v1.0/subscriptions/"), 1);
    assert!(
        bench
            .providers
            .live_graph_subscriptions(GRAPH_USER)
            .is_empty(),
        "no subscription outlives the account"
    );
    assert!(bench.channels().await.is_empty());
    assert!(bench
        .hub
        .store
        .get_channel("onedrive", &unconfirmed[0].id)
        .await
        .unwrap()
        .is_none());
    assert!(bench
        .hub
        .store
        .get_account(&bench.account.id)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_delete_during_the_subscribe_call_leaves_no_channel_and_no_subscription_locally() {
    delete_during_the_subscribe_call(Backend::Local).await;
}

#[tokio::test]
async fn a_delete_during_the_subscribe_call_leaves_no_channel_and_no_subscription_on_dynamodb() {
    delete_during_the_subscribe_call(Backend::Dynamo).await;
}

/// Graph's `reauthorizationRequired` for the account's subscription, as Graph sends it.
fn renewal_notice(channel: &PushChannel, secret: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"value": [{
        "subscriptionId": channel.resource_id,
        "clientState": secret,
        "lifecycleEvent": "reauthorizationRequired",
    }]}))
    .unwrap()
}

/// A channel of the bench's account with a secret the test knows.
async fn known_channel(bench: &Bench, confirmed: bool, expires_in: Age) -> (PushChannel, String) {
    let id = uuid::Uuid::new_v4().to_string();
    let secret = format!("{id}.known-secret");
    let channel = PushChannel {
        provider: "onedrive".into(),
        id,
        account_id: bench.account.id.clone(),
        secret_hash: hex::encode(sha2::Sha256::digest(secret.as_bytes())),
        resource_id: confirmed.then(|| format!("sub-{}", uuid::Uuid::new_v4())),
        expires_at: Utc::now() + expires_in,
        created_at: Utc::now(),
        renew: false,
    };
    assert_eq!(
        bench
            .hub
            .store
            .put_channel_if_account_live(&channel)
            .await
            .unwrap(),
        Write::Done
    );
    (channel, secret)
}

async fn renewal_notice_racing_a_delete(backend: Backend) {
    let bench = bench(backend).await;
    let (channel, secret) = known_channel(&bench, true, Age::days(2)).await;
    let (read, release) = bench.store.hold_after_channel_read();
    let notice = {
        let hub = bench.hub.clone();
        let body = renewal_notice(&channel, &secret);
        tokio::spawn(
            async move { hub::push::subscription_notification(&hub, "onedrive", &body).await },
        )
    };
    tokio::time::timeout(Duration::from_secs(10), read.notified())
        .await
        .expect("the notice reads its channel");
    // The notice has the channel in hand; the DELETE removes it and the account now.
    bench.delete().await;
    assert!(bench.channels().await.is_empty());
    release.notify_one();
    let queued = notice.await.unwrap().unwrap();
    assert_eq!(queued.jobs, 0, "no job for a deleted account");
    assert!(
        bench.channels().await.is_empty(),
        "the notice brought no record back"
    );
    assert!(bench
        .hub
        .store
        .get_channel("onedrive", &channel.id)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_renewal_notice_racing_a_delete_writes_nothing_locally() {
    renewal_notice_racing_a_delete(Backend::Local).await;
}

#[tokio::test]
async fn a_renewal_notice_racing_a_delete_writes_nothing_on_dynamodb() {
    renewal_notice_racing_a_delete(Backend::Dynamo).await;
}

#[tokio::test]
async fn notices_count_only_for_unexpired_channels_and_lifecycle_ones_for_confirmed_ones() {
    let bench = bench(Backend::Local).await;
    let notify = |body: Vec<u8>| {
        let hub = bench.hub.clone();
        async move {
            hub::push::subscription_notification(&hub, "onedrive", &body)
                .await
                .unwrap()
        }
    };
    // Expired: neither a change nor a renewal notice is taken.
    let (expired, secret) = known_channel(&bench, true, Age::minutes(-1)).await;
    let change = serde_json::to_vec(&json!({"value": [{
        "subscriptionId": expired.resource_id, "clientState": secret}]}))
    .unwrap();
    assert_eq!(notify(change).await.jobs, 0);
    assert_eq!(notify(renewal_notice(&expired, &secret)).await.jobs, 0);
    let stored = bench.hub.store.get_channel("onedrive", &expired.id).await;
    assert!(!stored.unwrap().unwrap().renew);
    assert_eq!(bench.jobs(), 0);

    // Not confirmed yet: a renewal notice (naming some subscription) is not taken, a change
    // is (it may beat Graph's answer to the subscribe call).
    let (unconfirmed, secret) = known_channel(&bench, false, Age::days(2)).await;
    let lifecycle = serde_json::to_vec(&json!({"value": [{
        "subscriptionId": "whatever", "clientState": secret,
        "lifecycleEvent": "reauthorizationRequired"}]}))
    .unwrap();
    assert_eq!(notify(lifecycle).await.jobs, 0);
    let stored = bench
        .hub
        .store
        .get_channel("onedrive", &unconfirmed.id)
        .await;
    assert!(!stored.unwrap().unwrap().renew);
    let change = serde_json::to_vec(&json!({"value": [{
        "subscriptionId": "whatever", "clientState": secret}]}))
    .unwrap();
    assert_eq!(notify(change).await.jobs, 1);

    // Live and confirmed: the renewal notice marks it.
    let (live, secret) = known_channel(&bench, true, Age::days(2)).await;
    notify(renewal_notice(&live, &secret)).await;
    let stored = bench.hub.store.get_channel("onedrive", &live.id).await;
    assert!(stored.unwrap().unwrap().renew);
}
