//! Cost: the AWS requests of one account-sync, counted by a proxy in front of moto, turned into
//! dollars per million account-syncs at us-east-1 list prices.
//!
//! An account-sync is its share of a scheduled fan-out (the `Query` pages and the
//! `SendMessageBatch` of its job), its share of a worker invocation of a batch of ten (the
//! event source mapping's `ReceiveMessage` and `DeleteMessageBatch`, one Lambda request), and
//! the worker's sync itself. Three cases: no changes, ten changed files, and no changes with
//! the access token due for a refresh (hourly syncs with hour-long tokens refresh about
//! every time).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use hub::config::Env;
use hub::fanout::{self, SyncRequest};
use hub::model::{QueueMessage, SyncJob, SyncReason};
use hub::providers::http::RetryPolicy;
use hub::Hub;
use hub_testkit::FakeProviders;
use serde::{Deserialize, Serialize};

use crate::consumer;
use crate::moto::{self, Resources};
use crate::proxy::{Counts, Proxy};
use crate::support::{note, Result};

/// List prices, us-east-1, in dollars per million (requests, units or GB-seconds).
pub const KMS_PER_MILLION: f64 = 3.0;
pub const DYNAMO_WRITE_PER_MILLION: f64 = 0.625;
pub const DYNAMO_READ_PER_MILLION: f64 = 0.125;
pub const SQS_PER_MILLION: f64 = 0.40;
pub const LAMBDA_REQUEST_PER_MILLION: f64 = 0.20;
pub const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
pub const LOGS_PER_GB: f64 = 0.50;

/// The worker's billed time per account-sync is not measurable here (the providers are on
/// loopback): this is docs/DEPLOY.md's assumption, at the template's worker memory.
pub const ASSUMED_SECONDS_PER_SYNC: f64 = 0.4;
pub const WORKER_MEMORY_MB: f64 = 256.0;

const PROVIDER: &str = "onedrive";

pub struct Options {
    /// Accounts the counted fan-out pages through.
    pub fanout_accounts: usize,
    /// Accounts per worker invocation (the template's `BatchSize`).
    pub batch: usize,
    /// Files in each connected drive (already synced once before counting).
    pub drive_files: usize,
    pub changes: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub fanout_accounts: usize,
    pub batch: usize,
    pub drive_files: usize,
    pub assumed_seconds_per_sync: f64,
    pub worker_memory_mb: f64,
    /// Per account, of one scheduled fan-out over `fanout_accounts`.
    pub fanout_share: Counts,
    pub scenarios: Vec<Scenario>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    /// Everything per account-sync: fan-out share, invocation share and the sync.
    pub per_sync: Counts,
    pub log_bytes_per_sync: f64,
    /// Wall time of the batch per account here (providers and moto on loopback).
    pub wall_ms_per_sync: f64,
    pub dollars_per_million: Dollars,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Dollars {
    pub kms: f64,
    pub dynamodb_writes: f64,
    pub dynamodb_reads: f64,
    pub sqs: f64,
    pub lambda_requests: f64,
    pub lambda_duration: f64,
    pub logs: f64,
    pub total: f64,
}

impl Dollars {
    pub fn of(per_sync: &Counts, log_bytes: f64) -> Dollars {
        let gb_seconds = ASSUMED_SECONDS_PER_SYNC * WORKER_MEMORY_MB / 1024.0;
        let mut dollars = Dollars {
            kms: per_sync.service_requests("KMS") * KMS_PER_MILLION,
            dynamodb_writes: per_sync.write_units * DYNAMO_WRITE_PER_MILLION,
            dynamodb_reads: per_sync.read_units * DYNAMO_READ_PER_MILLION,
            sqs: per_sync.service_requests("SQS") * SQS_PER_MILLION,
            lambda_requests: per_sync.service_requests("Lambda") * LAMBDA_REQUEST_PER_MILLION,
            lambda_duration: gb_seconds * LAMBDA_ARM_GB_SECOND * 1e6,
            logs: log_bytes / 1e9 * LOGS_PER_GB * 1e6,
            total: 0.0,
        };
        dollars.total = dollars.kms
            + dollars.dynamodb_writes
            + dollars.dynamodb_reads
            + dollars.sqs
            + dollars.lambda_requests
            + dollars.lambda_duration
            + dollars.logs;
        dollars
    }
}

/// Bytes of log lines the hub wrote, formatted as `hub::telemetry` formats them (JSON, one
/// line per event, info level) but counted instead of printed.
static LOG_BYTES: AtomicU64 = AtomicU64::new(0);

struct CountingWriter;

impl io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        LOG_BYTES.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn count_logs() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_target(false)
        .with_current_span(false)
        .flatten_event(true)
        .with_writer(|| CountingWriter)
        .try_init();
}

pub async fn run(options: Options) -> Result<Results> {
    count_logs();
    let endpoint = moto::endpoint()?;
    let sdk = moto::sdk_config(&endpoint).await;
    let resources = Resources::create(&sdk, "bench-cost").await?;
    let proxy = Proxy::start(&endpoint).await?;

    let providers = FakeProviders::start().await;
    let files = providers.add_files(PROVIDER, options.drive_files);
    // Every consent logs in a new user whose drive is a copy of the default user's.
    providers.fresh_identity_per_consent();
    let mut env = resources.hub_env(&proxy.url);
    env.extend(providers.env_vars());
    // Push on, with the `provider-webhooks` routes served by this process as the public URL:
    // Graph validates each new subscription by calling its address, so the first sync
    // (uncounted) opens the account's subscription, and the counted ones find it open, as in
    // a deployment whose notifications reach it.
    let webhooks = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    env.retain(|(k, _)| k != "HUB_PUBLIC_URL");
    env.push((
        "HUB_PUBLIC_URL".into(),
        format!("http://{}", webhooks.local_addr()?),
    ));
    env.push(("HUB_PUSH".into(), "on".into()));
    // Graph opens a drive subscription only for a grant that may write.
    env.push(("ONEDRIVE_SCOPES".into(), "Files.ReadWrite".into()));
    let hub = std::sync::Arc::new(Hub::build(&Env::from_map(env), RetryPolicy::default()).await?);
    let app = hub::web::webhook_routes(hub.clone());
    // Lives as long as the benchmark process.
    tokio::spawn(async move { axum::serve(webhooks, app).await });

    note("cost", format!("connecting 2 x {} accounts", options.batch));
    let mut fresh = Vec::new();
    for _ in 0..options.batch {
        fresh.push(crate::worker::connect_account(&hub, PROVIDER).await?.id);
    }
    // Tokens that expire inside the worker's 5-minute refresh margin: every sync refreshes.
    providers.set_access_token_lifetime(120);
    let mut expiring = Vec::new();
    for _ in 0..options.batch {
        expiring.push(crate::worker::connect_account(&hub, PROVIDER).await?.id);
    }
    for id in fresh.iter().chain(&expiring) {
        hub::sync::run(&hub, &job(id), hub::sync::fresh_invocation()).await?;
    }

    note(
        "cost",
        format!(
            "scheduled fan-out over {} accounts",
            options.fanout_accounts
        ),
    );
    let connected = 2 * options.batch;
    let sealed = moto::sample_sealed(&hub).await?;
    let extra: Vec<_> = (connected..options.fanout_accounts)
        .map(|i| moto::synthetic_account(if i % 2 == 0 { "google" } else { PROVIDER }, &sealed))
        .collect();
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    moto::seed_accounts(&dynamo, &resources.table, &extra).await?;
    let accounts = connected.max(options.fanout_accounts);
    proxy.start_counting();
    fanout::start(
        &hub,
        SyncRequest::default(),
        fanout::Trigger::new(SyncReason::Schedule, hub::sync::fresh_invocation(), None),
    )
    .await?;
    let mut fanout_run = proxy.stop_counting();
    // The scheduled invocation itself.
    *fanout_run
        .requests
        .entry("Lambda.Invoke".into())
        .or_default() += 1.0;
    let mut fanout_share = Counts::default();
    fanout_share.add(&fanout_run, 1.0 / accounts as f64);
    let direct_sqs = aws_sdk_sqs::Client::new(&sdk);
    direct_sqs
        .purge_queue()
        .queue_url(&resources.queue_url)
        .send()
        .await?;

    let counted_sqs = aws_sdk_sqs::Client::new(&moto::sdk_config(&proxy.url).await);
    let cases = [
        ("no changes", &fresh, 0),
        ("10 changed files", &fresh, options.changes),
        ("no changes, token refresh due", &expiring, 0),
    ];
    let mut scenarios = Vec::new();
    for (name, ids, changes) in cases {
        note("cost", format!("worker batch: {name}"));
        if changes > 0 {
            for id in ids.iter() {
                let account = hub.store.get_account(id).await?.ok_or("account gone")?;
                for (n, file) in files.iter().take(changes).enumerate() {
                    providers.modify_file(
                        PROVIDER,
                        &account.provider_user_id,
                        file,
                        &format!("changed-{n}.txt"),
                    );
                }
            }
        }
        // The jobs go on the queue uncounted: their SendMessageBatch is the fan-out share.
        enqueue_directly(&direct_sqs, &resources.queue_url, ids).await?;
        LOG_BYTES.store(0, Ordering::SeqCst);
        proxy.start_counting();
        let start = Instant::now();
        invoke_worker(&hub, &counted_sqs, &resources.queue_url, ids.len()).await?;
        let wall = start.elapsed();
        let mut batch = proxy.stop_counting();
        *batch.requests.entry("Lambda.Invoke".into()).or_default() += 1.0;
        let n = ids.len() as f64;
        let mut per_sync = fanout_share.clone();
        per_sync.add(&batch, 1.0 / n);
        let log_bytes_per_sync = LOG_BYTES.load(Ordering::SeqCst) as f64 / n;
        scenarios.push(Scenario {
            name: name.to_string(),
            dollars_per_million: Dollars::of(&per_sync, log_bytes_per_sync),
            per_sync,
            log_bytes_per_sync,
            wall_ms_per_sync: wall.as_secs_f64() * 1000.0 / n,
        });
    }

    Ok(Results {
        fanout_accounts: accounts,
        batch: options.batch,
        drive_files: options.drive_files,
        assumed_seconds_per_sync: ASSUMED_SECONDS_PER_SYNC,
        worker_memory_mb: WORKER_MEMORY_MB,
        fanout_share,
        scenarios,
    })
}

fn job(account_id: &str) -> SyncJob {
    SyncJob {
        account_id: account_id.to_string(),
        provider: PROVIDER.to_string(),
        reason: SyncReason::Schedule,
        requested_at: chrono::Utc::now(),
        stalled_requeues: 0,
    }
}

async fn enqueue_directly(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    ids: &[String],
) -> Result<()> {
    let entries = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let body = serde_json::to_string(&QueueMessage::Sync(job(id)))?;
            Ok(SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .build()?)
        })
        .collect::<Result<Vec<_>>>()?;
    client
        .send_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await?;
    Ok(())
}

/// What the SQS event source mapping and the worker do for one batch: receive the messages
/// (the mapping's `ReceiveMessage` calls are billed to the account), run `handle_batch`, and
/// delete the ones that did not fail.
async fn invoke_worker(
    hub: &Hub,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    expected: usize,
) -> Result<()> {
    let mut received = Vec::new();
    while received.len() < expected {
        received.extend(consumer::receive(sqs, queue_url).await?);
    }
    let failed = hub::sync::handle_batch(
        hub,
        consumer::messages(&received),
        hub::sync::fresh_invocation(),
    )
    .await;
    if !failed.is_empty() {
        return Err(format!("{} jobs of the batch failed", failed.len()).into());
    }
    consumer::delete_succeeded(sqs, queue_url, &received, &failed).await?;
    Ok(())
}
