//! The public webhook routes bound their work (docs/API.md, "Push notifications"): a body of at
//! most 1 MB (413 `payload_too_large` past it, never read whole), at most 100 notifications
//! (400 `invalid_request` past it, before any lookup), each channel looked up once in one
//! batched read, nothing looked up with `HUB_PUSH=off`, and an answer within 2 seconds even
//! when the store is slow. Through the route `provider-webhooks` serves, on both stores; a
//! store wrapper counts every lookup the route makes.

mod common;
#[path = "support/hooked_store.rs"]
mod hooked_store;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use chrono::{Duration as Age, Utc};
use common::JobRecorder as Recorded;
use futures::StreamExt as _;
use hmac::{Hmac, Mac};
use hooked_store::Hooked;
use hub::model::PushChannel;
use hub::store::dynamo::DynamoStore;
use hub::store::Write;
use hub::Hub;
use serde_json::{json, Value};
use sha2::Digest;
use tower::ServiceExt;

const APP_SECRET: &str = "dropbox-app-secret";

// ------------------------------------------------------------------ the route

#[derive(Clone, Copy)]
enum Backend {
    Local,
    Dynamo,
}

struct Route {
    hub: Arc<Hub>,
    store: Arc<Hooked>,
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
    let store = Arc::new(Hooked::new(hub.store.clone()));
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
