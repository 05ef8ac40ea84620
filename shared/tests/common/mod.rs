//! Test harness: a real AWS-compatible server (moto in server mode) and the AWS clients
//! pointed at it.
//!
//! `.ci/run` starts one moto server and exports `AWS_ENDPOINT_URL`; a test run without it
//! starts its own on a free loopback port, watched by a shell loop that stops moto when the
//! test process exits.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_sdk_dynamodb::config::Credentials;
use tokio::sync::OnceCell;

static MOTO: OnceCell<String> = OnceCell::const_new();

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The endpoint of a running moto server.
pub async fn moto_endpoint() -> String {
    MOTO.get_or_init(|| async {
        if let Ok(url) = std::env::var("AWS_ENDPOINT_URL") {
            return url;
        }
        let port = free_port();
        // Detached on purpose: the watchdog loop ends moto when this test process exits.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .arg("-c")
            .arg(r#"moto_server -H 127.0.0.1 -p "$1" >/dev/null 2>&1 & m=$!; while kill -0 "$2" 2>/dev/null; do sleep 1; done; kill $m"#)
            .arg("sh")
            .arg(port.to_string())
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .spawn()
            .expect("moto_server must be installed: pip install 'moto[server]'");
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto_server did not start on port {port}");
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
    let id = uuid::Uuid::new_v4().to_string();
    let tokens = hub::model::TokenSet {
        access_token: SecretString::from(access),
        refresh_token: Some(SecretString::from(refresh)),
        expires_at: Some(chrono::Utc::now() + expires_in),
    };
    let account = hub::model::Account {
        tokens: hub::tokens::seal(hub, &id, provider, &tokens)
            .await
            .unwrap(),
        id,
        provider: provider.into(),
        provider_user_id: uuid::Uuid::new_v4().to_string(),
        email: "user@example.com".into(),
        status: hub::model::AccountStatus::Active,
        connected_at: chrono::Utc::now(),
        last_synced_at: None,
        last_sync: None,
        has_refresh_token: true,
        cursor: None,
        listing: Default::default(),
        version: 1,
    };
    assert_eq!(
        hub.store.create_account(&account).await.unwrap(),
        hub::store::Write::Done
    );
    account
}
