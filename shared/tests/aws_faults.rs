//! AWS faults: KMS and DynamoDB throttling, injected by a proxy between the SDK and a moto
//! server. The SDK's bounded retries absorb a short burst; a lasting one fails the job, which
//! the worker reports as a batch item failure for SQS to retry.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::response::Response;
use chrono::Utc;
use hub::config::Env;
use hub::model::{Account, SyncJob, SyncReason};
use hub::providers::http::RetryPolicy;
use hub::sync::{self, Message};
use hub::Hub;
use oauth2::reqwest;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Requests to throttle, by `X-Amz-Target` (`usize::MAX` for ever), transactions to cancel
/// for a conflict, and what was seen. The proxy also refuses, as DynamoDB does and moto does
/// not, a `BatchWriteItem` that names one key twice.
#[derive(Clone, Default)]
struct Faults {
    throttle: Arc<Mutex<HashMap<String, usize>>>,
    cancel_transactions: Arc<Mutex<usize>>,
    /// BatchGetItem answers to give with every key left unprocessed.
    unprocessed_gets: Arc<Mutex<usize>>,
    seen: Arc<Mutex<HashMap<String, usize>>>,
    upstream: String,
}

impl Faults {
    fn throttle(&self, target: &str, times: usize) {
        self.throttle
            .lock()
            .unwrap()
            .insert(target.to_string(), times);
    }

    fn cancel_transactions(&self, times: usize) {
        *self.cancel_transactions.lock().unwrap() = times;
    }

    fn leave_gets_unprocessed(&self, times: usize) {
        *self.unprocessed_gets.lock().unwrap() = times;
    }

    fn seen(&self, target: &str) -> usize {
        self.seen.lock().unwrap().get(target).copied().unwrap_or(0)
    }
}

async fn proxy(State(faults): State<Faults>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    *faults
        .seen
        .lock()
        .unwrap()
        .entry(target.clone())
        .or_default() += 1;
    let throttled = {
        let mut throttle = faults.throttle.lock().unwrap();
        match throttle.get_mut(&target) {
            Some(left) if *left > 0 => {
                *left = left.saturating_sub(1);
                true
            }
            _ => false,
        }
    };
    if throttled {
        let error_type = if target.starts_with("DynamoDB") {
            "com.amazonaws.dynamodb.v20120810#ThrottlingException"
        } else {
            "ThrottlingException"
        };
        return Response::builder()
            .status(400)
            .header("content-type", "application/x-amz-json-1.1")
            .body(Body::from(
                json!({"__type": error_type, "message": "Rate exceeded"}).to_string(),
            ))
            .unwrap();
    }
    let bytes = to_bytes(body, 16 << 20).await.unwrap();
    if target == "DynamoDB_20120810.BatchWriteItem" && names_a_key_twice(&bytes) {
        return dynamodb_error(
            "ValidationException",
            json!({"message": "Provided list of item keys contains duplicates"}),
        );
    }
    if target == "DynamoDB_20120810.BatchGetItem" {
        let mut left = faults.unprocessed_gets.lock().unwrap();
        if *left > 0 {
            *left = left.saturating_sub(1);
            // As DynamoDB answers past its limits: nothing read, every key given back.
            let request: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let responses: serde_json::Map<String, serde_json::Value> = request["RequestItems"]
                .as_object()
                .map(|tables| tables.keys().map(|t| (t.clone(), json!([]))).collect())
                .unwrap_or_default();
            return Response::builder()
                .status(200)
                .header("content-type", "application/x-amz-json-1.0")
                .body(Body::from(
                    json!({"Responses": responses, "UnprocessedKeys": request["RequestItems"]})
                        .to_string(),
                ))
                .unwrap();
        }
    }
    if target == "DynamoDB_20120810.TransactWriteItems" {
        let mut left = faults.cancel_transactions.lock().unwrap();
        if *left > 0 {
            *left = left.saturating_sub(1);
            return dynamodb_error(
                "TransactionCanceledException",
                json!({
                    "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]",
                    "CancellationReasons": [
                        {"Code": "None"},
                        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
                    ]
                }),
            );
        }
    }
    let url = format!(
        "{}{}",
        faults.upstream,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut forward = reqwest::Client::new()
        .request(parts.method.clone(), url)
        .body(bytes.to_vec());
    for (name, value) in &parts.headers {
        if name != "host" {
            forward = forward.header(name, value);
        }
    }
    let answer = forward.send().await.unwrap();
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        response = response.header(name, value);
    }
    response
        .body(Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}

/// A DynamoDB error answer as the service sends it (JSON 1.0 protocol).
fn dynamodb_error(kind: &str, mut body: serde_json::Value) -> Response {
    body["__type"] = json!(format!("com.amazonaws.dynamodb.v20120810#{kind}"));
    Response::builder()
        .status(400)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Whether a `BatchWriteItem` body puts or deletes one table key twice, which DynamoDB
/// refuses whole ("Provided list of item keys contains duplicates").
fn names_a_key_twice(body: &[u8]) -> bool {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let mut keys = std::collections::HashSet::new();
    let tables = request["RequestItems"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (table, writes) in tables {
        for write in writes.as_array().cloned().unwrap_or_default() {
            let item = if write["PutRequest"].is_object() {
                &write["PutRequest"]["Item"]
            } else {
                &write["DeleteRequest"]["Key"]
            };
            let key = (
                table.clone(),
                item["pk"].to_string(),
                item["sk"].to_string(),
            );
            if !keys.insert(key) {
                return true;
            }
        }
    }
    false
}

struct Fixture {
    hub: Hub,
    faults: Faults,
    _graph: MockServer,
}

async fn fixture() -> Fixture {
    fixture_with(
        json!([{"id": "f1", "name": "a.txt", "size": 1, "file": {"mimeType": "text/plain"}}]),
    )
    .await
}

/// The hub on moto behind the proxy, with a Graph whose delta answers `items` in one page.
async fn fixture_with(items: serde_json::Value) -> Fixture {
    // One set of test credentials for the whole process; the endpoint goes through `Env`.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    let faults = Faults {
        upstream: common::moto_endpoint().await,
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(proxy)
        .with_state(faults.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (_, table) = common::dynamo_table().await;
    let (_, key_id) = common::kms_key().await;
    let (_, queue_url) = common::sqs_queue().await;
    let graph = MockServer::start().await;
    common::mount_graph_drive(&graph).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": items,
            "@odata.deltaLink": format!("{}/v1.0/me/drive/root/delta?token=d1", graph.uri()),
        })))
        .mount(&graph)
        .await;
    let env = Env::from_map([
        ("HUB_BACKEND", "aws".to_string()),
        ("AWS_ENDPOINT_URL", proxy_url),
        ("TABLE_NAME", table),
        ("KMS_KEY_ID", key_id),
        ("SYNC_QUEUE_URL", queue_url),
        ("ONEDRIVE_CLIENT_ID", "m".into()),
        ("ONEDRIVE_CLIENT_SECRET", "s".into()),
        ("ONEDRIVE_GRAPH_URL", format!("{}/v1.0", graph.uri())),
        ("ONEDRIVE_AUTHORITY_URL", graph.uri()),
    ]);
    let hub = Hub::build(&env, RetryPolicy::default()).await.unwrap();
    Fixture {
        hub,
        faults,
        _graph: graph,
    }
}

impl Fixture {
    async fn account(&self) -> Account {
        common::connected_account(
            &self.hub,
            "onedrive",
            "EwB.a",
            "M.r",
            chrono::Duration::hours(1),
        )
        .await
    }

    async fn run_job(&self, account: &Account) -> Vec<String> {
        let job = SyncJob {
            account_id: account.id.clone(),
            provider: "onedrive".into(),
            reason: SyncReason::Schedule,
            requested_at: Utc::now(),
            stalled_requeues: 0,
        };
        let body = serde_json::to_string(&job).unwrap();
        sync::handle_batch(
            &self.hub,
            vec![Message {
                id: "job-1".into(),
                body,
            }],
            sync::fresh_invocation(),
        )
        .await
    }
}

#[tokio::test]
async fn a_short_throttling_burst_is_absorbed_by_the_sdk_retries() {
    let f = fixture().await;
    let account = f.account().await;
    f.faults.throttle("DynamoDB_20120810.GetItem", 2);
    f.faults.throttle("TrentService.Decrypt", 1);
    let failed = tokio::time::timeout(Duration::from_secs(60), f.run_job(&account))
        .await
        .unwrap();
    assert!(failed.is_empty(), "the job succeeded after retries");
    assert!(f.faults.seen("DynamoDB_20120810.GetItem") >= 3);
    assert_eq!(f.faults.seen("TrentService.Decrypt"), 2);
    let stored = f.hub.store.get_account(&account.id).await.unwrap().unwrap();
    assert!(stored.last_synced_at.is_some());
}

#[tokio::test]
async fn lasting_kms_throttling_fails_the_job_after_bounded_retries() {
    let f = fixture().await;
    let account = f.account().await;
    f.faults.throttle("TrentService.Decrypt", usize::MAX);
    let failed = tokio::time::timeout(Duration::from_secs(60), f.run_job(&account))
        .await
        .unwrap();
    assert_eq!(failed, ["job-1"], "reported as a batch item failure");
    let attempts = f.faults.seen("TrentService.Decrypt");
    assert!(
        (2..=5).contains(&attempts),
        "bounded retries, not a loop: {attempts}"
    );
    // Nothing half-done: the account and its cursor are untouched.
    let stored = f.hub.store.get_account(&account.id).await.unwrap().unwrap();
    assert_eq!(stored.cursor, None);
    assert_eq!(stored.version, account.version);
}

#[tokio::test]
async fn lasting_dynamodb_throttling_fails_the_job_after_bounded_retries() {
    let f = fixture().await;
    let account = f.account().await;
    f.faults
        .throttle("DynamoDB_20120810.BatchWriteItem", usize::MAX);
    let failed = tokio::time::timeout(Duration::from_secs(60), f.run_job(&account))
        .await
        .unwrap();
    assert_eq!(failed, ["job-1"]);
    let attempts = f.faults.seen("DynamoDB_20120810.BatchWriteItem");
    assert!(
        (2..=5).contains(&attempts),
        "bounded retries, not a loop: {attempts}"
    );
    let stored = f.hub.store.get_account(&account.id).await.unwrap().unwrap();
    assert_eq!(stored.cursor, None, "the cursor never passes unsaved files");
}

#[tokio::test]
async fn an_item_twice_in_one_delta_page_is_stored_once_at_its_last_state() {
    // Graph documents that an item may appear more than once in a delta feed, the last
    // occurrence winning; DynamoDB refuses a batch holding one key twice.
    let f = fixture_with(json!([
        {"id": "f1", "name": "old.txt", "size": 1, "file": {"mimeType": "text/plain"}},
        {"id": "f2", "name": "b.txt", "size": 2, "file": {"mimeType": "text/plain"}},
        {"id": "f1", "name": "new.txt", "size": 3, "file": {"mimeType": "text/plain"}}
    ]))
    .await;
    let account = f.account().await;
    let failed = tokio::time::timeout(Duration::from_secs(60), f.run_job(&account))
        .await
        .unwrap();
    assert!(failed.is_empty(), "the page was stored");
    let index = f
        .hub
        .store
        .list_files(&account.id, None, 10)
        .await
        .unwrap()
        .items;
    let names: Vec<_> = index
        .iter()
        .map(|e| (e.id.as_str(), e.name.as_str()))
        .collect();
    assert_eq!(names, [("f1", "new.txt"), ("f2", "b.txt")]);
}

#[tokio::test]
async fn a_delete_cancelled_by_a_conflict_is_retried_and_never_reported_as_not_found() {
    let f = fixture().await;
    let account = f.account().await;
    f.faults.cancel_transactions(2);
    assert!(
        hub::purge::delete_at_once(f.hub.store.as_ref(), &account.id)
            .await
            .unwrap(),
        "deleted once the conflict passed"
    );
    assert!(f
        .hub
        .store
        .get_account(&account.id)
        .await
        .unwrap()
        .is_none());

    let other = f.account().await;
    f.faults.cancel_transactions(usize::MAX);
    let before = f.faults.seen("DynamoDB_20120810.TransactWriteItems");
    let refused = hub::purge::delete_at_once(f.hub.store.as_ref(), &other.id).await;
    assert!(
        matches!(&refused, Err(e) if e.status() >= 500),
        "a lasting conflict is a failure the client retries, not a 404: {refused:?}"
    );
    assert!(f.hub.store.get_account(&other.id).await.unwrap().is_some());
    let attempts = f.faults.seen("DynamoDB_20120810.TransactWriteItems") - before;
    assert_eq!(attempts, 4, "bounded retries");
}

#[tokio::test]
async fn a_rotated_refresh_token_survives_short_kms_and_dynamodb_failures_after_the_refresh() {
    let f = fixture().await;
    // Microsoft rotates the refresh token: once this answer is out, M.r no longer works.
    Mock::given(method("POST"))
        .and(path("/common/oauth2/v2.0/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "expires_in": 3600, "access_token": "EwB.new", "refresh_token": "M.rotated"
        })))
        .up_to_n_times(1)
        .mount(&f._graph)
        .await;
    let account = common::connected_account(
        &f.hub,
        "onedrive",
        "EwB.a",
        "M.r",
        chrono::Duration::minutes(1),
    )
    .await;
    // Right after the refresh, sealing the new tokens (a KMS data key) and then writing
    // them (the account's PutItem) each fail for longer than one SDK call's own retries.
    f.faults.throttle("TrentService.GenerateDataKey", 4);
    f.faults.throttle("DynamoDB_20120810.PutItem", 4);
    let failed = tokio::time::timeout(Duration::from_secs(90), f.run_job(&account))
        .await
        .unwrap();
    assert!(failed.is_empty(), "the job succeeded: {failed:?}");
    assert!(f.faults.seen("TrentService.GenerateDataKey") >= 5);
    assert!(f.faults.seen("DynamoDB_20120810.PutItem") >= 5);
    let stored = f.hub.store.get_account(&account.id).await.unwrap().unwrap();
    let tokens = hub::tokens::open(f.hub.cipher.as_ref(), &stored)
        .await
        .unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(
        tokens.refresh_token.unwrap().expose_secret(),
        "M.rotated",
        "the rotated refresh token was stored, not lost"
    );
    assert!(stored.last_synced_at.is_some());
}

/// A notification's batched channel read asks again for what DynamoDB left unprocessed, but
/// never past its deadline; a conditional channel write cancelled by a conflict is retried.
#[tokio::test]
async fn unprocessed_channel_reads_are_retried_within_the_deadline() {
    let f = fixture().await;
    let account = f.account().await;
    let now = Utc::now();
    let channel = hub::model::PushChannel {
        provider: "onedrive".into(),
        id: uuid::Uuid::new_v4().to_string(),
        account_id: account.id.clone(),
        secret_hash: "0".repeat(64),
        resource_id: Some("subscription".into()),
        expires_at: now + chrono::Duration::days(1),
        created_at: now,
        renew: false,
    };
    f.faults.cancel_transactions(2);
    assert_eq!(
        f.hub
            .store
            .put_channel_if_account_live(&channel)
            .await
            .unwrap(),
        hub::store::Write::Done,
        "written once the conflict passed"
    );
    let ids = [channel.id.clone(), "unknown".to_string()];
    let deadline = || hub::deadline::Deadline::after(Duration::from_secs(1));

    f.faults.leave_gets_unprocessed(2);
    let before = f.faults.seen("DynamoDB_20120810.BatchGetItem");
    let found = f
        .hub
        .store
        .get_channels("onedrive", &ids, deadline())
        .await
        .unwrap();
    assert_eq!(found, vec![channel.clone()]);
    assert_eq!(f.faults.seen("DynamoDB_20120810.BatchGetItem") - before, 3);

    f.faults.leave_gets_unprocessed(usize::MAX);
    let started = std::time::Instant::now();
    let cut = f.hub.store.get_channels("onedrive", &ids, deadline()).await;
    assert!(
        matches!(&cut, Err(e) if e.status() == 503),
        "unfinished at the deadline: {cut:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    f.faults.leave_gets_unprocessed(0);
}
