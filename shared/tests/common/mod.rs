//! Test harness: a real AWS-compatible server (moto in server mode) and the AWS clients
//! pointed at it.
//!
//! `scripts/test` starts one moto server and exports `AWS_ENDPOINT_URL`; a test run without
//! it starts its own with `scripts/moto` (see `hub::testing::moto_endpoint`), which stops
//! moto when the test process exits.
#![allow(dead_code)]

pub mod template;

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::Credentials;
use hub::events::QueuedEvent;
use hub::model::QueueMessage;
use hub::queue::{EventQueue, JobQueue};
use hub::HubResult;
use serde_json::Value;
use tokio::sync::OnceCell;

static MOTO: OnceCell<String> = OnceCell::const_new();

/// The endpoint of a running moto server, started once per test process.
pub async fn moto_endpoint() -> String {
    MOTO.get_or_init(|| async {
        tokio::task::spawn_blocking(hub::testing::moto_endpoint)
            .await
            .expect("start moto")
    })
    .await
    .clone()
}

/// SDK configuration for moto: fixed test credentials and region.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let endpoint = moto_endpoint().await;
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

/// A fresh name, so tests sharing one moto server never see each other's resources.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A new DynamoDB table laid out as the template's.
pub async fn dynamo_table() -> (aws_sdk_dynamodb::Client, String) {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let table = unique("hub");
    hub::store::dynamo::create_table(&client, &table)
        .await
        .expect("create table");
    (client, table)
}

/// A new symmetric KMS key.
pub async fn kms_key() -> (aws_sdk_kms::Client, String) {
    let client = aws_sdk_kms::Client::new(&sdk_config().await);
    let key = client.create_key().send().await.expect("create key");
    let id = key.key_metadata().unwrap().key_id().to_string();
    (client, id)
}

/// A new SQS queue.
pub async fn sqs_queue() -> (aws_sdk_sqs::Client, String) {
    let client = aws_sdk_sqs::Client::new(&sdk_config().await);
    let queue = client
        .create_queue()
        .queue_name(unique("jobs"))
        .send()
        .await
        .expect("create queue");
    (client, queue.queue_url().unwrap().to_string())
}

/// An account as a completed login leaves it, stored through the hub's own store and cipher.
pub async fn connected_account(
    hub: &hub::Hub,
    provider: &str,
    access: &str,
    refresh: &str,
    expires_in: chrono::Duration,
) -> hub::model::Account {
    use secrecy::SecretString;
    let tokens = hub::model::TokenSet {
        access_token: SecretString::from(access),
        refresh_token: Some(SecretString::from(refresh)),
        expires_at: Some(chrono::Utc::now() + expires_in),
    };
    let account = hub::testing::account(provider).sealed(hub, &tokens).await;
    assert_eq!(
        hub.store.create_account(&account).await.unwrap(),
        hub::store::Write::Done
    );
    account
}

/// Follows a login's consent URL to the provider stand-in, which consents at once (or
/// refuses, when told to), and returns the callback its redirect carries, as the browser
/// that started the login would bring it (with the login's cookie).
pub async fn consent(started: &hub::login::Started) -> hub::login::Callback {
    hub::login::Callback::for_browser(started, consent_elsewhere(&started.consent_url).await)
}

/// The callback a consent URL's redirect carries, as a browser that did not start the login
/// brings it (without the login's cookie): the consent link forwarded to someone else.
pub async fn consent_elsewhere(consent_url: &str) -> hub::login::Callback {
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(consent_url)
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    let query: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    hub::login::Callback {
        code: query.get("code").cloned(),
        state: query.get("state").cloned(),
        error: query.get("error").cloned(),
        browser_key: None,
    }
}

/// A job queue that keeps what was queued, to look at; the real queues have their own suites.
#[derive(Default)]
pub struct JobRecorder(pub Mutex<Vec<QueueMessage>>);

#[async_trait]
impl JobQueue for JobRecorder {
    async fn enqueue(&self, messages: &[QueueMessage]) -> HubResult<()> {
        self.0.lock().unwrap().extend_from_slice(messages);
        Ok(())
    }

    async fn enqueue_delayed(&self, message: &QueueMessage, _delay: Duration) -> HubResult<()> {
        self.0.lock().unwrap().push(message.clone());
        Ok(())
    }
}

/// A sync queue that records what was queued with its delay (zero when not delayed), for
/// tests of requeues and purge jobs.
#[derive(Default)]
pub struct DelayRecorder(pub Mutex<Vec<(QueueMessage, Duration)>>);

#[async_trait]
impl JobQueue for DelayRecorder {
    async fn enqueue(&self, messages: &[QueueMessage]) -> HubResult<()> {
        let mut queued = self.0.lock().unwrap();
        queued.extend(messages.iter().map(|m| (m.clone(), Duration::ZERO)));
        Ok(())
    }

    async fn enqueue_delayed(&self, message: &QueueMessage, delay: Duration) -> HubResult<()> {
        self.0.lock().unwrap().push((message.clone(), delay));
        Ok(())
    }
}

impl DelayRecorder {
    /// What was queued since the last call.
    pub fn take(&self) -> Vec<(QueueMessage, Duration)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// An events queue that records what producers queue, in order.
#[derive(Default)]
pub struct EventRecorder {
    pub queued: Mutex<Vec<QueuedEvent>>,
}

#[async_trait]
impl EventQueue for EventRecorder {
    async fn publish(&self, event: &QueuedEvent) -> HubResult<()> {
        self.queued.lock().unwrap().push(event.clone());
        Ok(())
    }

    async fn retry_after(&self, _receipt_handle: &str, _delay: Duration) -> HubResult<()> {
        Ok(())
    }
}

impl EventRecorder {
    pub fn bodies(&self) -> Vec<Value> {
        self.queued
            .lock()
            .unwrap()
            .iter()
            .map(|e| serde_json::from_str(&e.body).unwrap())
            .collect()
    }

    pub fn types(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .map(|b| b["type"].as_str().unwrap().to_string())
            .collect()
    }

    /// The `data` of each `sync.completed`.
    pub fn syncs_completed(&self) -> Vec<Value> {
        self.bodies()
            .into_iter()
            .filter(|b| b["type"] == "sync.completed")
            .map(|b| b["data"].clone())
            .collect()
    }
}

/// Graph's `GET /me/drive` on a mock server whose Graph base is `{uri}/v1.0`: a whole OneDrive
/// enumeration reads the drive first (its id names the entries' drive). Mounted first in
/// priority, so that a catch-all mock of the delta does not answer it.
pub async fn mount_graph_drive(server: &wiremock::MockServer) {
    use wiremock::matchers::{method, path};
    wiremock::Mock::given(method("GET"))
        .and(path("/v1.0/me/drive"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"id": "drive-1", "name": "OneDrive"})),
        )
        .with_priority(1)
        .mount(server)
        .await;
}

/// Dropbox's `users/get_current_account` for a user in no team space (root and home
/// namespaces are one), on a mock server whose `DROPBOX_API_URL` is `{uri}{api}`: a whole
/// Dropbox enumeration, and changes from a cursor of the home namespace, read it first.
pub async fn mount_dropbox_account(server: &wiremock::MockServer, api: &str) {
    use wiremock::matchers::{method, path};
    wiremock::Mock::given(method("POST"))
        .and(path(format!("{api}/2/users/get_current_account")))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "account_id": "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc",
                "email": "ada@example.com",
                "root_info": {".tag": "user", "root_namespace_id": "11", "home_namespace_id": "11"},
            })),
        )
        .with_priority(1)
        .mount(server)
        .await;
}

/// Drive's `drives.list` answering that the user is in no shared drive, on a mock server
/// whose `GOOGLE_API_URL` is `{uri}{api}`: a whole Google enumeration reads it first.
pub async fn mount_no_shared_drives(server: &wiremock::MockServer, api: &str) {
    use wiremock::matchers::{method, path};
    wiremock::Mock::given(method("GET"))
        .and(path(format!("{api}/drive/v3/drives")))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({"drives": []})),
        )
        .with_priority(1)
        .mount(server)
        .await;
}

/// The OneDrive's Graph link in a Microsoft account's cursor: the cursor itself when it is a
/// bare link (as saved before drives), else the link of the first drive of the connector's
/// JSON cursor (the OneDrive; see `hub::providers::onedrive`).
pub fn onedrive_link(cursor: Option<&str>) -> Option<String> {
    let cursor = cursor?;
    match serde_json::from_str::<serde_json::Value>(cursor) {
        Ok(json) => json["drives"][0]["link"].as_str().map(str::to_string),
        Err(_) => Some(cursor.to_string()),
    }
}
