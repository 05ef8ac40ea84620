//! Large drive: the first sync of one OneDrive account whose drive holds 300,000 files, on a
//! stand-in that answers each request after 300 ms (closer to Graph than loopback), in delta
//! pages of 1,000. The worker runs as Lambda runs it (`crate::consumer`): each invocation has
//! the function's timeout less the worker's reserve, a sync out of time is requeued by the
//! hub as a new message, and the loop goes on until the account's first sync has ended.
//!
//! The question is whether a drive too large for one invocation still gets synced: how many
//! invocations it takes, whether any ran past its timeout or failed, and how many receives
//! the queue spent on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use hub::config::Env;
use hub::model::{QueueMessage, SyncJob, SyncReason, SyncStatus};
use hub::providers::http::RetryPolicy;
use hub::Hub;
use hub_testkit::FakeProviders;
use serde::{Deserialize, Serialize};

use crate::consumer::{Invocation, LocalInvoke, SqsConsumer};
use crate::moto::{self, Resources};
use crate::support::{self, note, Result};

const PROVIDER: &str = "onedrive";
const PAGE_SIZE: usize = 1000;
const DELTA_PATH: &str = "/graph/v1.0/me/drive/root/delta";

pub struct Options {
    pub files: usize,
    /// The stand-in's latency on every answer.
    pub latency: Duration,
    /// The worker function's timeout (template.yaml: 120 s); shorter forces more invocations.
    pub timeout: Duration,
    pub local: bool,
    pub aws: bool,
    /// The whole benchmark's time: a first sync still unfinished then is reported as such
    /// instead of waited for (scripts/bench stops a benchmark after 1,200 s).
    pub budget: Duration,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub files: usize,
    pub page_size: usize,
    pub latency_ms: f64,
    pub timeout_seconds: f64,
    pub reserve_seconds: f64,
    pub budget_seconds: f64,
    pub runs: Vec<Run>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Run {
    pub backend: String,
    /// Whether the first sync ended with its status `ok` before the benchmark gave up.
    pub completed: bool,
    /// Live entries in the account's index at the end; not counted on moto (see `aws_run`).
    pub files_indexed: Option<u64>,
    /// Delta pages the stand-in served.
    pub pages: u64,
    pub invocations: usize,
    pub longest_invocation_seconds: f64,
    /// Invocations that ran past the function's timeout (Lambda would have killed them).
    pub timeouts: usize,
    /// Messages an invocation reported failed.
    pub failures: usize,
    /// Messages received, all invocations together (each receive of a message counts).
    pub receives: usize,
    /// The highest `ApproximateReceiveCount` seen: 1 when no message came back.
    pub max_receive_count: u32,
    pub wall_seconds: f64,
}

pub async fn run(options: Options) -> Result<Results> {
    let loadavg_before = support::loadavg();
    let providers = FakeProviders::start().await;
    providers.set_graph_page_size(PAGE_SIZE);
    let give_up = Instant::now() + options.budget;
    let mut runs = Vec::new();
    // AWS first, the slower of the two: the local run has what is left of the budget.
    if options.aws {
        runs.push(aws_run(&providers, &options, give_up).await?);
    }
    if options.local {
        runs.push(local_run(&providers, &options, give_up).await?);
    }
    Ok(Results {
        loadavg_before,
        loadavg_after: support::loadavg(),
        files: options.files,
        page_size: PAGE_SIZE,
        latency_ms: support::ms(options.latency),
        timeout_seconds: options.timeout.as_secs_f64(),
        reserve_seconds: hub::sync::RESERVE.as_secs_f64(),
        budget_seconds: options.budget.as_secs_f64(),
        runs,
    })
}

async fn local_run(providers: &FakeProviders, options: &Options, give_up: Instant) -> Result<Run> {
    let dir = tempfile::tempdir()?;
    let invoke = LocalInvoke::bind(options.timeout).await?;
    let mut env = moto::base_env();
    env.extend(providers.env_vars());
    env.push(("HUB_BACKEND".into(), "local".into()));
    env.push(("HUB_DATA_DIR".into(), dir.path().display().to_string()));
    env.push(("HUB_LOCAL_INVOKE_URL".into(), invoke.url.clone()));
    let hub = Arc::new(Hub::build(&Env::from_map(env), RetryPolicy::default()).await?);
    invoke.serve(hub.clone());
    let account_id = connect(providers, &hub, "large-local", options).await?;

    let pages_before = providers.requests(DELTA_PATH);
    let start = Instant::now();
    hub.queue.enqueue(&[first_sync(&account_id)]).await?;
    // The local queue delivers by itself; this only watches the account.
    let mut completed = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if first_sync_ended(&hub, &account_id).await? {
            break true;
        }
        if Instant::now() > give_up {
            break false;
        }
    };
    let mut wall = start.elapsed();
    invoke.settle().await;
    // The invocation running when the budget ran out may have ended the sync meanwhile.
    if !completed && first_sync_ended(&hub, &account_id).await? {
        completed = true;
        wall = start.elapsed();
    }
    let pages = (providers.requests(DELTA_PATH) - pages_before) as u64;
    let run = summarise(
        "local",
        completed,
        Some(indexed_files(&hub, &account_id).await?),
        pages,
        &invoke.invocations(),
        wall,
        options.timeout,
    )
    .await?;
    Ok(run)
}

async fn aws_run(providers: &FakeProviders, options: &Options, give_up: Instant) -> Result<Run> {
    let endpoint = moto::endpoint()?;
    let sdk = moto::sdk_config(&endpoint).await;
    let resources = Resources::create(&sdk, "bench-large").await?;
    let mut env = resources.hub_env(&endpoint);
    env.extend(providers.env_vars());
    let hub = Hub::build(&Env::from_map(env), RetryPolicy::default()).await?;
    let account_id = connect(providers, &hub, "large-aws", options).await?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    // The sync queue's visibility timeout in template.yaml, longer than any invocation: a
    // message being worked on is not delivered again meanwhile.
    sqs.set_queue_attributes()
        .queue_url(&resources.queue_url)
        .attributes(QueueAttributeName::VisibilityTimeout, "900")
        .send()
        .await?;
    let consumer = SqsConsumer {
        sqs,
        queue_url: resources.queue_url.clone(),
        timeout: options.timeout,
    };

    let pages_before = providers.requests(DELTA_PATH);
    let start = Instant::now();
    hub.queue.enqueue(&[first_sync(&account_id)]).await?;
    let mut invocations = Vec::new();
    let completed = loop {
        if let Some(invocation) = consumer.poll(&hub).await? {
            note(
                "large-drive",
                format!(
                    "  aws invocation {}: {} messages, {:.1} s",
                    invocations.len() + 1,
                    invocation.messages,
                    invocation.seconds
                ),
            );
            invocations.push(invocation);
        }
        if first_sync_ended(&hub, &account_id).await? {
            break true;
        }
        if Instant::now() > give_up {
            break false;
        }
    };
    let wall = start.elapsed();
    let pages = (providers.requests(DELTA_PATH) - pages_before) as u64;
    summarise(
        "aws (moto)",
        completed,
        // Not counted: reading 300,000 entries back costs moto about 4 s per 1 MB page (a
        // `Query` sorts the whole partition, a `Scan` walks the whole table, for every page),
        // half an hour here and nothing DynamoDB would spend. The sync's own `ok` outcome, set
        // only after its enumeration reached the end, is what `completed` reports.
        None,
        pages,
        &invocations,
        wall,
        options.timeout,
    )
    .await
}

/// Connects `user`'s account with its drive of `options.files` files, and only then slows
/// the stand-in down: the login is not what is measured.
async fn connect(
    providers: &FakeProviders,
    hub: &Hub,
    user: &str,
    options: &Options,
) -> Result<String> {
    providers.set_latency(Duration::ZERO);
    providers.set_next_identity(PROVIDER, user, &format!("{user}@example.com"));
    providers.add_files_for(PROVIDER, user, options.files);
    let account = crate::worker::connect_account(hub, PROVIDER).await?;
    providers.set_latency(options.latency);
    note(
        "large-drive",
        format!("{user}: first sync of {} files", options.files),
    );
    Ok(account.id)
}

fn first_sync(account_id: &str) -> QueueMessage {
    QueueMessage::Sync(SyncJob {
        account_id: account_id.to_string(),
        provider: PROVIDER.to_string(),
        reason: SyncReason::Manual,
        requested_at: chrono::Utc::now(),
        stalled_requeues: 0,
    })
}

/// The account's first sync has ended once it has a `last_sync` that is `ok` (a failed one
/// is left for the queue to retry, so the loop goes on).
async fn first_sync_ended(hub: &Hub, account_id: &str) -> Result<bool> {
    let account = hub
        .store
        .get_account(account_id)
        .await?
        .ok_or("the account is gone")?;
    Ok(account
        .last_sync
        .is_some_and(|outcome| outcome.result == SyncStatus::Ok))
}

/// Live entries of the account's index, a page at a time.
async fn indexed_files(hub: &Hub, account_id: &str) -> Result<u64> {
    let (mut count, mut after) = (0, None::<String>);
    loop {
        let page = hub
            .store
            .list_files(account_id, after.as_deref(), 1000)
            .await?;
        count += page.items.iter().filter(|f| !f.deleted).count() as u64;
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(count),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn summarise(
    backend: &str,
    completed: bool,
    files_indexed: Option<u64>,
    pages: u64,
    invocations: &[Invocation],
    wall: Duration,
    timeout: Duration,
) -> Result<Run> {
    let run = Run {
        backend: backend.to_string(),
        completed,
        files_indexed,
        pages,
        invocations: invocations.len(),
        longest_invocation_seconds: invocations.iter().map(|i| i.seconds).fold(0.0, f64::max),
        timeouts: invocations
            .iter()
            .filter(|i| i.seconds > timeout.as_secs_f64())
            .count(),
        failures: invocations.iter().map(|i| i.failed).sum(),
        receives: invocations.iter().map(|i| i.messages).sum(),
        max_receive_count: invocations
            .iter()
            .map(|i| i.max_receive_count)
            .max()
            .unwrap_or(0),
        wall_seconds: wall.as_secs_f64(),
    };
    note(
        "large-drive",
        format!(
            "  {backend}: completed {}, {} files indexed, {} pages, {} invocations (longest {:.1} s), {} failures, {} timeouts, {} receives, {:.1} s",
            run.completed,
            run.files_indexed.map_or("(not counted)".to_string(), |n| n.to_string()),
            run.pages,
            run.invocations,
            run.longest_invocation_seconds,
            run.failures,
            run.timeouts,
            run.receives,
            run.wall_seconds
        ),
    );
    Ok(run)
}
