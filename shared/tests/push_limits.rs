//! The public webhook routes bound their work (contract section 16): a body of at most 1 MB
//! (413 `payload_too_large` past it, never read whole), at most 100 notifications (400
//! `invalid_request` past it, before any lookup), each channel looked up once in one batched
//! read, nothing looked up with `HUB_PUSH=off`, and an answer within 2 seconds even when the
//! store is slow. Through the route `provider-webhooks` serves, on both stores; a store
//! wrapper counts every lookup the route makes.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration as Age, Utc};
use futures::StreamExt as _;
use hmac::{Hmac, Mac};
use hub::deadline::Deadline;
use hub::model::{
    Account, AccountView, ConnectSession, FileEntry, LoginState, Page, PushChannel, QueueMessage,
};
use hub::queue::JobQueue;
use hub::store::dynamo::DynamoStore;
use hub::store::{AccountScope, FeedPage, FeedPosition, Store, Write};
use hub::{Hub, HubResult};
use serde_json::{json, Value};
use sha2::Digest;
use tower::ServiceExt;

const APP_SECRET: &str = "dropbox-app-secret";

// ------------------------------------------------------------------ a store that counts

/// The store behind the route, counting every lookup a notification can cause, and slowed
/// by `delay` on each of them when set.
struct Watched {
    inner: Arc<dyn Store>,
    delay: Mutex<Duration>,
    get_channel: AtomicUsize,
    get_channels: AtomicUsize,
    channel_keys: AtomicUsize,
    get_account: AtomicUsize,
    identity_holders: AtomicUsize,
}

impl Watched {
    fn new(inner: Arc<dyn Store>) -> Self {
        Watched {
            inner,
            delay: Mutex::new(Duration::ZERO),
            get_channel: AtomicUsize::new(0),
            get_channels: AtomicUsize::new(0),
            channel_keys: AtomicUsize::new(0),
            get_account: AtomicUsize::new(0),
            identity_holders: AtomicUsize::new(0),
        }
    }

    async fn lookup(&self, counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// Every lookup so far: (single channel reads, batched reads, keys in them, account
    /// reads, identity queries); the counters start again.
    fn take(&self) -> (usize, usize, usize, usize, usize) {
        (
            self.get_channel.swap(0, Ordering::SeqCst),
            self.get_channels.swap(0, Ordering::SeqCst),
            self.channel_keys.swap(0, Ordering::SeqCst),
            self.get_account.swap(0, Ordering::SeqCst),
            self.identity_holders.swap(0, Ordering::SeqCst),
        )
    }

    fn slow(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }
}

#[async_trait]
impl Store for Watched {
    async fn get_account(&self, id: &str) -> HubResult<Option<Account>> {
        self.lookup(&self.get_account).await;
        self.inner.get_account(id).await
    }
    async fn find_account(
        &self,
        owner: Option<&str>,
        provider: &str,
        provider_user_id: &str,
    ) -> HubResult<Option<Account>> {
        self.inner
            .find_account(owner, provider, provider_user_id)
            .await
    }
    async fn identity_holders(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> HubResult<Vec<String>> {
        self.lookup(&self.identity_holders).await;
        self.inner
            .identity_holders(provider, provider_user_id)
            .await
    }
    async fn create_account(&self, account: &Account) -> HubResult<Write> {
        self.inner.create_account(account).await
    }
    async fn update_account(&self, account: &Account, expected_version: u64) -> HubResult<Write> {
        self.inner.update_account(account, expected_version).await
    }
    async fn list_accounts(
        &self,
        provider: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<Account>> {
        self.inner.list_accounts(provider, after, limit).await
    }
    async fn list_account_views(
        &self,
        scope: &AccountScope,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<AccountView>> {
        self.inner.list_account_views(scope, after, limit).await
    }
    async fn list_active_account_ids(
        &self,
        provider: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<String>> {
        self.inner
            .list_active_account_ids(provider, after, limit)
            .await
    }
    async fn delete_account(&self, id: &str) -> HubResult<bool> {
        self.inner.delete_account(id).await
    }
    async fn purge_files(&self, account_id: &str) -> HubResult<()> {
        self.inner.purge_files(account_id).await
    }
    async fn claim(&self, key: &str, expires_at: DateTime<Utc>) -> HubResult<bool> {
        self.inner.claim(key, expires_at).await
    }
    async fn release_claim(&self, key: &str) -> HubResult<()> {
        self.inner.release_claim(key).await
    }
    async fn mark_push_pending(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> HubResult<bool> {
        self.inner.mark_push_pending(account_id, now, until).await
    }
    async fn clear_push_pending(&self, account_id: &str) -> HubResult<()> {
        self.inner.clear_push_pending(account_id).await
    }
    async fn put_channel(&self, channel: &PushChannel) -> HubResult<()> {
        self.inner.put_channel(channel).await
    }
    async fn put_channel_if_account_live(&self, channel: &PushChannel) -> HubResult<Write> {
        self.inner.put_channel_if_account_live(channel).await
    }
    async fn get_channel(&self, provider: &str, id: &str) -> HubResult<Option<PushChannel>> {
        self.lookup(&self.get_channel).await;
        self.inner.get_channel(provider, id).await
    }
    async fn get_channels(
        &self,
        provider: &str,
        ids: &[String],
        deadline: Deadline,
    ) -> HubResult<Vec<PushChannel>> {
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "each channel asked for once");
        self.channel_keys.fetch_add(ids.len(), Ordering::SeqCst);
        self.lookup(&self.get_channels).await;
        self.inner.get_channels(provider, ids, deadline).await
    }
    async fn account_channels(&self, account_id: &str) -> HubResult<Vec<PushChannel>> {
        self.inner.account_channels(account_id).await
    }
    async fn delete_channel(&self, channel: &PushChannel) -> HubResult<()> {
        self.inner.delete_channel(channel).await
    }
    async fn put_login_state(&self, state: &LoginState) -> HubResult<()> {
        self.inner.put_login_state(state).await
    }
    async fn put_connect_session(&self, session: &ConnectSession) -> HubResult<()> {
        self.inner.put_connect_session(session).await
    }
    async fn get_connect_session(&self, id: &str) -> HubResult<Option<ConnectSession>> {
        self.inner.get_connect_session(id).await
    }
    async fn spend_connect_session(&self, id: &str, now: DateTime<Utc>) -> HubResult<bool> {
        self.inner.spend_connect_session(id, now).await
    }
    async fn take_login_state(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> HubResult<Option<LoginState>> {
        self.inner.take_login_state(state, now).await
    }
    async fn put_files(
        &self,
        account_id: &str,
        files: &[FileEntry],
        generation: u64,
        first_seq: u64,
    ) -> HubResult<()> {
        self.inner
            .put_files(account_id, files, generation, first_seq)
            .await
    }
    async fn mark_unseen_deleted(
        &self,
        account_id: &str,
        generation: u64,
        after: Option<&str>,
        limit: usize,
        first_seq: u64,
    ) -> HubResult<(u64, Option<String>)> {
        self.inner
            .mark_unseen_deleted(account_id, generation, after, limit, first_seq)
            .await
    }
    async fn mark_path_deleted(
        &self,
        account_id: &str,
        path_lower: &str,
        after: Option<&str>,
        limit: usize,
        first_seq: u64,
    ) -> HubResult<(u64, Option<String>)> {
        self.inner
            .mark_path_deleted(account_id, path_lower, after, limit, first_seq)
            .await
    }
    async fn last_seq(&self, account_id: &str) -> HubResult<u64> {
        self.inner.last_seq(account_id).await
    }
    async fn changes(
        &self,
        account_id: &str,
        after: Option<&FeedPosition>,
        watermark: u64,
        limit: usize,
    ) -> HubResult<FeedPage> {
        self.inner
            .changes(account_id, after, watermark, limit)
            .await
    }
    async fn list_files(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<FileEntry>> {
        self.inner.list_files(account_id, after, limit).await
    }
}

// ------------------------------------------------------------------ the route

#[derive(Default)]
struct Recorded(Mutex<Vec<QueueMessage>>);

#[async_trait]
impl JobQueue for Recorded {
    async fn enqueue(&self, messages: &[QueueMessage]) -> HubResult<()> {
        self.0.lock().unwrap().extend_from_slice(messages);
        Ok(())
    }

    async fn enqueue_delayed(&self, message: &QueueMessage, _delay: Duration) -> HubResult<()> {
        self.enqueue(std::slice::from_ref(message)).await
    }
}

#[derive(Clone, Copy)]
enum Backend {
    Local,
    Dynamo,
}

struct Route {
    hub: Arc<Hub>,
    store: Arc<Watched>,
    queue: Arc<Recorded>,
    _dir: tempfile::TempDir,
}

async fn route(backend: Backend, push: &str) -> Route {
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        ("DROPBOX_CLIENT_ID", "dropbox-app-key"),
        ("DROPBOX_CLIENT_SECRET", APP_SECRET),
        ("HUB_PUSH", push),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let mut hub = hub::testing::local_hub(dir.path(), &extra).await;
    if let Backend::Dynamo = backend {
        let (client, table) = common::dynamo_table().await;
        hub.store = Arc::new(DynamoStore::new(client, table));
    }
    let store = Arc::new(Watched::new(hub.store.clone()));
    hub.store = store.clone();
    let queue = Arc::new(Recorded::default());
    hub.queue = queue.clone();
    Route {
        hub: Arc::new(hub),
        store,
        queue,
        _dir: dir,
    }
}

impl Route {
    /// Sends the request through the routes of `provider-webhooks`: its status, its JSON body
    /// (`Null` when not JSON) and how long the answer took.
    async fn send(&self, request: Request<Body>) -> (StatusCode, Value, Duration) {
        let app = hub::web::with_fallbacks(hub::web::webhook_routes(self.hub.clone()));
        let started = Instant::now();
        let response = app.oneshot(request).await.unwrap();
        let took = started.elapsed();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            took,
        )
    }

    fn jobs(&self) -> usize {
        std::mem::take(&mut *self.queue.0.lock().unwrap()).len()
    }
}

fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

fn signed_dropbox(body: Vec<u8>) -> Request<Body> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(&body);
    Request::post("/webhooks/dropbox")
        .header(
            "X-Dropbox-Signature",
            hex::encode(mac.finalize().into_bytes()),
        )
        .body(Body::from(body))
        .unwrap()
}

/// A Graph body of `count` items, item `i` naming channel `channel(i)` with a secret that is
/// not its (the ids are short so that 20,000 items stay under 1 MB).
fn graph_items(count: usize, channel: impl Fn(usize) -> String) -> Vec<u8> {
    let items: Vec<Value> = (0..count)
        .map(|i| json!({"subscriptionId": "s", "clientState": format!("{}.x", channel(i))}))
        .collect();
    serde_json::to_vec(&json!({ "value": items })).unwrap()
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// A genuine channel of a connected account: its secret, as the worker would have given it.
async fn genuine_channel(route: &Route) -> (PushChannel, String) {
    let account = hub::testing::account("onedrive").build();
    assert_eq!(
        route.hub.store.create_account(&account).await.unwrap(),
        Write::Done
    );
    let id = uuid::Uuid::new_v4().to_string();
    let secret = format!("{id}.genuine-secret");
    let now = Utc::now();
    let channel = PushChannel {
        provider: "onedrive".into(),
        id,
        account_id: account.id.clone(),
        secret_hash: hex::encode(sha2::Sha256::digest(secret.as_bytes())),
        resource_id: Some("subscription-1".into()),
        expires_at: now + Age::days(2),
        created_at: now,
        renew: false,
    };
    route.hub.store.put_channel(&channel).await.unwrap();
    (channel, secret)
}

// ------------------------------------------------------------------ the tests

async fn notice_caps(backend: Backend) {
    let route = route(backend, "on").await;

    // 20,000 bogus Graph items, under 1 MB: refused before a single lookup.
    let flood = graph_items(20_000, |i| format!("{i:x}"));
    assert!(flood.len() < 1_000_000, "{}", flood.len());
    let (status, body, _) = route.send(post("/webhooks/onedrive", flood)).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(route.store.take(), (0, 0, 0, 0, 0), "no lookup at all");

    // 101 is one too many; 100 bogus ones are read in one batch of 100 keys, and ignored.
    let (status, body, _) = route
        .send(post(
            "/webhooks/onedrive",
            graph_items(101, |i| format!("c{i}")),
        ))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(route.store.take(), (0, 0, 0, 0, 0));
    let (status, _, _) = route
        .send(post(
            "/webhooks/onedrive",
            graph_items(100, |i| format!("c{i}")),
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(route.store.take(), (0, 1, 100, 0, 0));
    assert_eq!(route.jobs(), 0);

    // 100 genuine items of one channel: one key read once, one account read, one job.
    let (channel, secret) = genuine_channel(&route).await;
    let items: Vec<Value> = (0..100)
        .map(|_| json!({"subscriptionId": "subscription-1", "clientState": secret}))
        .collect();
    let body = serde_json::to_vec(&json!({ "value": items })).unwrap();
    let (status, _, _) = route.send(post("/webhooks/onedrive", body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(route.store.take(), (0, 1, 1, 1, 0));
    assert_eq!(route.jobs(), 1, "one push job for {}", channel.account_id);

    // Dropbox: 20,000 (signed) account ids, or 101, are refused before any lookup; 100
    // distinct ones, each named twice, are looked up once each.
    let accounts = |count: usize| -> Vec<u8> {
        let ids: Vec<String> = (0..count).map(|i| format!("dbid:{i}")).collect();
        serde_json::to_vec(&json!({"list_folder": {"accounts": ids}})).unwrap()
    };
    for count in [20_000, 101] {
        let (status, body, _) = route.send(signed_dropbox(accounts(count))).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(route.store.take(), (0, 0, 0, 0, 0));
    }
    let ids: Vec<String> = (0..100).map(|i| format!("dbid:{}", i % 50)).collect();
    let twice = serde_json::to_vec(&json!({"list_folder": {"accounts": ids}})).unwrap();
    let (status, _, _) = route.send(signed_dropbox(twice)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(route.store.take(), (0, 0, 0, 0, 50));
}

#[tokio::test]
async fn notices_are_capped_and_each_channel_read_once_on_the_local_store() {
    notice_caps(Backend::Local).await;
}

#[tokio::test]
async fn notices_are_capped_and_each_channel_read_once_on_dynamodb() {
    notice_caps(Backend::Dynamo).await;
}

#[tokio::test]
async fn with_push_off_a_graph_notification_looks_nothing_up() {
    let route = route(Backend::Local, "off").await;
    let (channel, secret) = genuine_channel(&route).await;
    let mut items: Vec<Value> = (0..99)
        .map(|i| json!({"subscriptionId": "s", "clientState": format!("c{i}.x")}))
        .collect();
    items.push(
        json!({"subscriptionId": "subscription-1", "clientState": secret,
                      "lifecycleEvent": "reauthorizationRequired"}),
    );
    let body = serde_json::to_vec(&json!({ "value": items })).unwrap();
    let (status, _, _) = route.send(post("/webhooks/onedrive", body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(route.store.take(), (0, 0, 0, 0, 0));
    assert_eq!(route.jobs(), 0);
    let stored = route.hub.store.get_channel("onedrive", &channel.id).await;
    assert!(!stored.unwrap().unwrap().renew, "nothing written either");
    // The caps hold all the same.
    let (status, body, _) = route
        .send(post(
            "/webhooks/onedrive",
            graph_items(101, |i| format!("c{i}")),
        ))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn a_body_over_one_megabyte_is_refused_without_being_read_whole() {
    let route = route(Backend::Local, "on").await;
    // Exactly 1 MB (10^6 bytes) is taken.
    let mut exact = br#"{"value": []}"#.to_vec();
    exact.resize(1_000_000, b' ');
    let (status, _, _) = route.send(post("/webhooks/onedrive", exact)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // One byte more is 413, on every webhook route, with or without a Content-Length.
    let mut over = br#"{"value": []}"#.to_vec();
    over.resize(1_000_001, b' ');
    for path in [
        "/webhooks/onedrive",
        "/webhooks/google",
        "/webhooks/dropbox",
    ] {
        let declared = Request::post(path)
            .header("content-length", over.len())
            .body(Body::from(over.clone()))
            .unwrap();
        let (status, body, _) = route.send(declared).await;
        assert_error(
            status,
            &body,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        );
        // Streamed in chunks with no length: refused once past the cap, the rest unread.
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = pulled.clone();
        let chunks = futures::stream::iter(0..64).map(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])
        });
        let streamed = Request::post(path).body(Body::from_stream(chunks)).unwrap();
        let (status, body, _) = route.send(streamed).await;
        assert_error(
            status,
            &body,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        );
        let read = pulled.load(Ordering::SeqCst);
        assert!(read <= 17, "{read} chunks of 64 KiB read for a 1 MB cap");
    }
    assert_eq!(route.store.take(), (0, 0, 0, 0, 0));
}

async fn slow_store_answers_in_time(backend: Backend) {
    let route = route(backend, "on").await;
    let (channel, secret) = genuine_channel(&route).await;
    route.store.slow(Duration::from_secs(5));
    let graph = json!({"value": [{"subscriptionId": "subscription-1", "clientState": secret}]});
    let requests = [
        post("/webhooks/onedrive", serde_json::to_vec(&graph).unwrap()),
        Request::post("/webhooks/google")
            .header("X-Goog-Channel-ID", channel.id.clone())
            .header("X-Goog-Channel-Token", "t")
            .header("X-Goog-Resource-State", "change")
            .body(Body::empty())
            .unwrap(),
        signed_dropbox(
            serde_json::to_vec(&json!({"list_folder": {"accounts": ["dbid:1"]}})).unwrap(),
        ),
    ];
    for request in requests {
        let (status, body, took) = route.send(request).await;
        assert!(took < Duration::from_secs(2), "answered after {took:?}");
        assert_error(
            status,
            &body,
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
        );
    }
    assert_eq!(route.jobs(), 0);
    // A store that is slow but within the time still gets the job queued.
    route.store.slow(Duration::from_millis(200));
    let (status, _, took) = route
        .send(post(
            "/webhooks/onedrive",
            serde_json::to_vec(&graph).unwrap(),
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    assert_eq!(route.jobs(), 1);
}

#[tokio::test]
async fn a_slow_store_still_gets_an_answer_within_two_seconds_on_the_local_store() {
    slow_store_answers_in_time(Backend::Local).await;
}

#[tokio::test]
async fn a_slow_store_still_gets_an_answer_within_two_seconds_on_dynamodb() {
    slow_store_answers_in_time(Backend::Dynamo).await;
}
