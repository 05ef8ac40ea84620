//! The AWS side of the benchmarks: a moto server (started by scripts/bench, which exports
//! `AWS_ENDPOINT_URL`), fresh resources in it, the hub's variables pointing at them, and fast
//! seeding of account items.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use hub::crypto::Sealed;
use hub::model::{Account, TokenSet};
use hub::Hub;

use crate::support::Result;

/// The hub's own variables that every benchmark sets: both providers configured, so a
/// fan-out covers both and the registry is built as in production.
pub fn base_env() -> Vec<(String, String)> {
    [
        ("HUB_API_KEY", "bench-api-key"),
        ("HUB_PUBLIC_URL", "https://hub.example"),
        ("GOOGLE_CLIENT_ID", hub_testkit::GOOGLE_CLIENT_ID),
        ("GOOGLE_CLIENT_SECRET", hub_testkit::GOOGLE_CLIENT_SECRET),
        ("ONEDRIVE_CLIENT_ID", hub_testkit::ONEDRIVE_CLIENT_ID),
        (
            "ONEDRIVE_CLIENT_SECRET",
            hub_testkit::ONEDRIVE_CLIENT_SECRET,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The moto server scripts/bench started.
pub fn endpoint() -> Result<String> {
    std::env::var("AWS_ENDPOINT_URL")
        .map_err(|_| "AWS_ENDPOINT_URL must name a moto server (scripts/bench starts one)".into())
}

/// SDK configuration for an AWS-compatible endpoint, with moto's fixed test credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

/// A table, a key and a queue of one benchmark, under fresh names.
#[derive(Clone, Debug)]
pub struct Resources {
    pub table: String,
    pub key_id: String,
    pub queue_url: String,
}

impl Resources {
    pub async fn create(sdk: &SdkConfig, prefix: &str) -> Result<Resources> {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let table = format!("{prefix}-{suffix}");
        let dynamo = aws_sdk_dynamodb::Client::new(sdk);
        hub::store::dynamo::create_table(&dynamo, &table).await?;
        let key = aws_sdk_kms::Client::new(sdk).create_key().send().await?;
        let key_id = key
            .key_metadata()
            .map(|m| m.key_id().to_string())
            .ok_or("KMS CreateKey answered without a key id")?;
        let queue = aws_sdk_sqs::Client::new(sdk)
            .create_queue()
            .queue_name(format!("{prefix}-{suffix}"))
            .send()
            .await?;
        let queue_url = queue
            .queue_url()
            .ok_or("SQS CreateQueue answered without a URL")?
            .to_string();
        Ok(Resources {
            table,
            key_id,
            queue_url,
        })
    }

    /// The hub's variables in `aws` mode, the AWS endpoint being `endpoint` (moto, or the
    /// counting proxy in front of it).
    pub fn hub_env(&self, endpoint: &str) -> Vec<(String, String)> {
        let mut env = base_env();
        env.extend(
            [
                ("HUB_BACKEND", "aws"),
                ("TABLE_NAME", &self.table),
                ("KMS_KEY_ID", &self.key_id),
                ("SYNC_QUEUE_URL", &self.queue_url),
                ("AWS_ENDPOINT_URL", endpoint),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env
    }
}

/// Tokens of a realistic size for seeded accounts, sealed once by the hub's own cipher: a
/// 1 KB access token (Google's are a few hundred bytes, Microsoft's 1.5 to 2.5 KB) and a
/// refresh token.
pub async fn sample_sealed(hub: &Hub) -> Result<Sealed> {
    let tokens = TokenSet {
        access_token: "a".repeat(1000).into(),
        refresh_token: Some("r".repeat(200).into()),
        expires_at: Some(Utc::now() + chrono::Duration::hours(1)),
    };
    Ok(hub::tokens::seal(hub.cipher.as_ref(), "seed", "google", &tokens).await?)
}

/// An active account as a login leaves it, with `sealed` as its tokens. Seeding reuses one
/// sealed value for every account: the fan-out never opens tokens, and the item keeps its
/// real size.
pub fn synthetic_account(provider: &str, sealed: &Sealed) -> Account {
    hub::testing::account(provider)
        .tokens(sealed.clone())
        .build()
}

/// The account item as `hub::store::dynamo` writes it: the record plus its table and
/// `by-provider` index keys.
pub fn account_item(account: &Account) -> Result<HashMap<String, AttributeValue>> {
    let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(account)?;
    let s = |v: String| AttributeValue::S(v);
    item.insert("pk".into(), s(format!("ACCOUNT#{}", account.id)));
    item.insert("sk".into(), s("ACCOUNT".into()));
    item.insert("gsi1pk".into(), s(format!("PROVIDER#{}", account.provider)));
    item.insert("gsi1sk".into(), s(account.id.clone()));
    Ok(item)
}

/// Writes account items with `BatchWriteItem`, 25 per call, several calls in flight:
/// `Store::create_account` is a transaction per account (with its identity record), far too
/// slow for seeding a hundred thousand. Identity records are not written: the fan-out never
/// reads them.
pub async fn seed_accounts(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    accounts: &[Account],
) -> Result<()> {
    let items = accounts
        .iter()
        .map(account_item)
        .collect::<Result<Vec<_>>>()?;
    write_items(client, table, items, 8).await
}

/// Writes items with `BatchWriteItem`, 25 per call (the API's limit), `in_flight` calls at
/// a time, re-sending what a call leaves unprocessed.
pub async fn write_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    items: Vec<HashMap<String, AttributeValue>>,
    in_flight: usize,
) -> Result<()> {
    let requests = items
        .into_iter()
        .map(|item| {
            let put = PutRequest::builder().set_item(Some(item)).build()?;
            Ok(WriteRequest::builder().put_request(put).build())
        })
        .collect::<Result<Vec<_>>>()?;
    let chunks: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[_]>::to_vec).collect();
    futures::stream::iter(chunks)
        .map(|mut chunk| async move {
            // moto processes everything at once, but keep to what DynamoDB's API allows anyway.
            while !chunk.is_empty() {
                let answer = client
                    .batch_write_item()
                    .request_items(table, chunk)
                    .send()
                    .await?;
                chunk = answer
                    .unprocessed_items
                    .and_then(|mut left| left.remove(table))
                    .unwrap_or_default();
            }
            Ok::<(), crate::support::BoxError>(())
        })
        .buffer_unordered(in_flight)
        .try_collect::<()>()
        .await
}
