//! Fan-out at scale: N accounts in the store, then `fanout::start` as `POST /sync` calls it,
//! then every continuation it leaves on the queue, until one job per account is queued; then
//! the same accounts again through the scheduled path (the EventBridge event), with the
//! deadline `functions/sync-fanout` derives from its real 29 s timeout.
//!
//! The continuations are taken from the queue the way the worker gets them: a consumer
//! receives everything the hub queued (on moto's SQS by `ReceiveMessage`, locally through a
//! stand-in of the Invoke API that the local queue calls), counts the jobs and hands each
//! `continue_fanout` message to `fanout::fan_out` with the worker's budget, as
//! `hub::sync::handle_batch` does. The consumer deletes the jobs without syncing them: this
//! measures the fan-out, not the sync.
//!
//! moto's SQS scans the whole queue for every message sent (its queue attributes count the
//! visible messages) and for every receipt deleted, so a queue that nobody drains gets slower
//! with every message, about 0.1 ms per queued message per message sent. The consumer keeps
//! it short, as the workers would, with many receive loops because each of its calls costs
//! moto about as much as a send, for the hub and the raw baseline alike. Even so moto moves
//! only some hundred messages a second on this machine, which is why the AWS run is scaled
//! down.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use futures::{StreamExt, TryStreamExt};
use hub::config::Env;
use hub::deadline::Deadline;
use hub::fanout::{self, SyncRequest, Trigger};
use hub::model::{Account, FanOutPosition, QueueMessage, SyncJob, SyncReason};
use hub::providers::http::RetryPolicy;
use hub::Hub;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::moto::{self, Resources};
use crate::support::{self, note, Result};

/// Chunks of ten in flight at once, as `hub::queue::sqs` sends them.
const CHUNKS_IN_FLIGHT: usize = 8;
/// Receive loops of the consumer that plays the worker fleet: enough to keep moto's queue
/// short while the hub sends with 8 calls in flight (measured: 4 loops let the queue grow
/// and every call slow down; 32 keep up).
const CONSUMERS: usize = 32;
/// How long the benchmark waits for a continuation or a delivery before calling it lost.
const PATIENCE: Duration = Duration::from_secs(300);

pub struct Options {
    /// Accounts on the AWS backend (moto); 0 skips it.
    pub aws_accounts: usize,
    /// Account counts on the local backend, one run each; empty skips it.
    pub local_accounts: Vec<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub runs: Vec<Run>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Run {
    pub backend: String,
    /// `POST /sync` or `schedule`.
    #[serde(default)]
    pub path: String,
    pub accounts: usize,
    pub seed_seconds: f64,
    pub seed_method: String,
    /// The first invocation, `fanout::start`: with `SyncReason::Manual` what `POST /sync`
    /// waits for; on the scheduled path the scheduled invocation.
    pub answer_seconds: f64,
    pub jobs_in_answer: usize,
    pub continuations: usize,
    /// From the start until the last continuation returned: every job handed to the queue.
    pub all_queued_seconds: f64,
    /// Of which spent waiting for continuations to come back through the queue.
    pub continuation_wait_seconds: f64,
    /// From the start until the consumer had received every job.
    pub all_delivered_seconds: f64,
    pub jobs_delivered: usize,
    /// The same number of messages sent by a tight `SendMessageBatch` loop (10 per call,
    /// the same chunks in flight, the same consumer); AWS only.
    pub raw_send_seconds: Option<f64>,
    /// The first invocation's Lambda deadline (the function's timeout) and the budget the
    /// hub gives itself in it (less the reserve, and `POST /sync`'s short budget).
    #[serde(default)]
    pub first_deadline_seconds: f64,
    #[serde(default)]
    pub first_budget_seconds: f64,
    /// The same for each continuation, run by the worker.
    #[serde(default)]
    pub continuation_deadline_seconds: f64,
    #[serde(default)]
    pub continuation_budget_seconds: f64,
    /// The longest continuation (`fan_out` as the worker runs it); 0 without continuations.
    #[serde(default)]
    pub longest_continuation_seconds: f64,
}

/// How the first invocation of a fan-out is triggered.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// `POST /sync`: a budget of `HTTP_BUDGET`, inside the function's deadline.
    Http,
    /// The EventBridge schedule: the function's deadline less the reserve.
    Schedule,
}

impl Path {
    const BOTH: [Path; 2] = [Path::Http, Path::Schedule];

    fn name(self) -> &'static str {
        match self {
            Path::Http => "POST /sync",
            Path::Schedule => "schedule",
        }
    }

    /// The trigger `functions/sync-fanout` builds for an invocation that starts now: Lambda's
    /// deadline is its 29 s timeout from now, and the handler keeps `RESERVE` back, as
    /// `main` does with the context's deadline.
    fn trigger(self) -> Trigger {
        let lambda_deadline = SystemTime::now() + fanout::FUNCTION_TIMEOUT;
        let deadline =
            Deadline::of_lambda(lambda_deadline, fanout::FUNCTION_TIMEOUT).less(fanout::RESERVE);
        match self {
            Path::Http => Trigger::new(SyncReason::Manual, deadline, None),
            // EventBridge's event id names the chain.
            Path::Schedule => Trigger::new(
                SyncReason::Schedule,
                deadline,
                Some(&uuid::Uuid::new_v4().to_string()),
            ),
        }
    }

    /// The budget `fanout::start` gives itself in that deadline.
    fn budget(self) -> Duration {
        let deadline = fanout::FUNCTION_TIMEOUT - fanout::RESERVE;
        match self {
            Path::Http => deadline.min(fanout::HTTP_BUDGET),
            Path::Schedule => deadline,
        }
    }
}

pub async fn run(options: Options) -> Result<Results> {
    let loadavg_before = support::loadavg();
    let mut runs = Vec::new();
    if options.aws_accounts > 0 {
        runs.extend(aws_runs(options.aws_accounts).await?);
    }
    for &n in &options.local_accounts {
        runs.extend(local_runs(n).await?);
    }
    Ok(Results {
        loadavg_before,
        loadavg_after: support::loadavg(),
        runs,
    })
}

/// Accounts alternating between the two providers, their tokens sealed once by the hub's own
/// cipher.
async fn seeded_accounts(hub: &Hub, n: usize) -> Result<Vec<Account>> {
    let sealed = moto::sample_sealed(hub).await?;
    Ok((0..n)
        .map(|i| {
            let provider = if i % 2 == 0 { "google" } else { "onedrive" };
            moto::synthetic_account(provider, &sealed)
        })
        .collect())
}

/// Both paths over the same seeded accounts, and the raw loop once.
async fn aws_runs(n: usize) -> Result<Vec<Run>> {
    let endpoint = moto::endpoint()?;
    let sdk = moto::sdk_config(&endpoint).await;
    let resources = Resources::create(&sdk, "bench-fanout").await?;
    let hub = Hub::build(
        &Env::from_map(resources.hub_env(&endpoint)),
        RetryPolicy::default(),
    )
    .await?;

    note("fanout", format!("aws: seeding {n} accounts into moto"));
    let accounts = seeded_accounts(&hub, n).await?;
    let seeding = Instant::now();
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    moto::seed_accounts(&dynamo, &resources.table, &accounts).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    drop(accounts);

    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (continuations, mut arrivals) = mpsc::unbounded_channel();
    let consumer = SqsConsumer::start(&sqs, &resources.queue_url, Some(continuations));
    let mut timings = Vec::new();
    for path in Path::BOTH {
        note(
            "fanout",
            format!("aws: fan-out of {n} accounts ({})", path.name()),
        );
        match drive(&hub, n, path, &mut arrivals, &consumer.jobs).await {
            Ok(run) => timings.push(run),
            Err(e) => {
                consumer.stop().await;
                return Err(e);
            }
        }
    }
    consumer.stop().await;

    note(
        "fanout",
        format!("aws: raw SendMessageBatch of {n} messages"),
    );
    let raw_send_seconds = raw_send(&sdk, n).await?;

    Ok(timings
        .into_iter()
        .map(|timings| Run {
            backend: "aws (moto)".into(),
            seed_seconds,
            seed_method: "BatchWriteItem of account items, 25 per call, 8 calls in flight".into(),
            raw_send_seconds: Some(raw_send_seconds),
            ..timings.into_run()
        })
        .collect())
}

/// Both paths over the same seeded accounts.
async fn local_runs(n: usize) -> Result<Vec<Run>> {
    let dir = tempfile::tempdir()?;
    let invoke = InvokeStandIn::start().await?;
    let mut env = moto::base_env();
    env.push(("HUB_BACKEND".into(), "local".into()));
    env.push(("HUB_DATA_DIR".into(), dir.path().display().to_string()));
    env.push(("HUB_LOCAL_INVOKE_URL".into(), invoke.url.clone()));
    let hub = Hub::build(&Env::from_map(env), RetryPolicy::default()).await?;

    note("fanout", format!("local: seeding {n} accounts"));
    let accounts = seeded_accounts(&hub, n).await?;
    let seeding = Instant::now();
    let accounts_dir = dir.path().join("accounts");
    tokio::task::spawn_blocking(move || -> Result<()> {
        // The local store's layout (README, "Storage layout"): one JSON file per account,
        // named by the hex of its id. Written directly, without the store's per-record fsync
        // and lock, which would make seeding take many minutes.
        for account in &accounts {
            let path = accounts_dir.join(format!("{}.json", hex::encode(&account.id)));
            std::fs::write(path, serde_json::to_vec(account)?)?;
        }
        Ok(())
    })
    .await??;
    let seed_seconds = seeding.elapsed().as_secs_f64();

    let mut arrivals = invoke.take_continuations();
    let mut runs = Vec::new();
    for path in Path::BOTH {
        note(
            "fanout",
            format!("local: fan-out of {n} accounts ({})", path.name()),
        );
        let timings = drive(&hub, n, path, &mut arrivals, &invoke.jobs).await?;
        runs.push(Run {
            backend: "local".into(),
            seed_seconds,
            seed_method: "account files written directly in the local store's layout, no fsync"
                .into(),
            raw_send_seconds: None,
            ..timings.into_run()
        });
    }
    Ok(runs)
}

struct Timings {
    path: Path,
    accounts: usize,
    answer: Duration,
    jobs_in_answer: usize,
    continuations: usize,
    all_queued: Duration,
    continuation_wait: Duration,
    all_delivered: Duration,
    jobs_delivered: usize,
    longest_continuation: Duration,
}

impl Timings {
    fn into_run(self) -> Run {
        Run {
            backend: String::new(),
            path: self.path.name().to_string(),
            accounts: self.accounts,
            seed_seconds: 0.0,
            seed_method: String::new(),
            answer_seconds: self.answer.as_secs_f64(),
            jobs_in_answer: self.jobs_in_answer,
            continuations: self.continuations,
            all_queued_seconds: self.all_queued.as_secs_f64(),
            continuation_wait_seconds: self.continuation_wait.as_secs_f64(),
            all_delivered_seconds: self.all_delivered.as_secs_f64(),
            jobs_delivered: self.jobs_delivered,
            raw_send_seconds: None,
            first_deadline_seconds: fanout::FUNCTION_TIMEOUT.as_secs_f64(),
            first_budget_seconds: self.path.budget().as_secs_f64(),
            continuation_deadline_seconds: hub::queue::local::WORKER_TIMEOUT.as_secs_f64(),
            continuation_budget_seconds: (hub::queue::local::WORKER_TIMEOUT - hub::sync::RESERVE)
                .as_secs_f64(),
            longest_continuation_seconds: self.longest_continuation.as_secs_f64(),
        }
    }
}

/// The fan-out's first invocation on `path`, then each continuation as it comes back from
/// the queue, run with the worker's deadline as `hub::sync::handle_batch` runs it, until one
/// job per account is queued and delivered.
async fn drive(
    hub: &Hub,
    accounts: usize,
    path: Path,
    continuations: &mut mpsc::UnboundedReceiver<FanOutPosition>,
    delivered: &Tally,
) -> Result<Timings> {
    delivered.clear();
    let trigger = path.trigger();
    let chain = trigger.chain.clone();
    let start = Instant::now();
    let answer = fanout::start(hub, SyncRequest::default(), trigger).await?;
    let answered = start.elapsed();
    note(
        "fanout",
        format!(
            "  first invocation ended after {:.2} s with {} jobs queued",
            answered.as_secs_f64(),
            answer.jobs_enqueued
        ),
    );
    let mut queued = answer.jobs_enqueued;
    let mut count = 0;
    let mut waited = Duration::ZERO;
    let mut longest = Duration::ZERO;
    while queued < accounts {
        let waiting = Instant::now();
        let position = tokio::time::timeout(PATIENCE, continuations.recv())
            .await
            .map_err(|_| format!("{queued} of {accounts} jobs queued and no continuation came"))?
            .ok_or("the consumer stopped")?;
        waited += waiting.elapsed();
        // A continuation left over from the other path's fan-out (one that had nothing
        // left to queue) is not part of this one.
        if position.chain != chain {
            continue;
        }
        count += 1;
        let invoked = Instant::now();
        queued += fanout::fan_out(hub, position, hub::sync::fresh_invocation()).await?;
        longest = longest.max(invoked.elapsed());
        note(
            "fanout",
            format!(
                "  continuation {count}: {queued} jobs queued after {:.1} s",
                start.elapsed().as_secs_f64()
            ),
        );
    }
    let all_queued = start.elapsed();
    let patience = Instant::now();
    while delivered.count() < accounts && patience.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Timings {
        path,
        accounts,
        answer: answered,
        jobs_in_answer: answer.jobs_enqueued,
        continuations: count,
        all_queued,
        continuation_wait: waited,
        all_delivered: start.elapsed(),
        jobs_delivered: delivered.count(),
        longest_continuation: longest,
    })
}

/// The accounts whose job arrived: SQS delivers at least once (moto, too, now and then
/// hands a message to two receivers), so jobs are counted once per account.
#[derive(Default)]
struct Tally {
    accounts: std::sync::Mutex<HashSet<String>>,
}

impl Tally {
    fn record(&self, account_id: String) {
        self.accounts.lock().expect("tally lock").insert(account_id);
    }

    /// Forgets every account, for the next fan-out over the same accounts.
    fn clear(&self) {
        self.accounts.lock().expect("tally lock").clear();
    }

    fn count(&self) -> usize {
        self.accounts.lock().expect("tally lock").len()
    }
}

/// The worker fleet's share of the queue traffic: receive, count, delete.
struct SqsConsumer {
    jobs: Arc<Tally>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SqsConsumer {
    fn start(
        client: &aws_sdk_sqs::Client,
        queue_url: &str,
        continuations: Option<mpsc::UnboundedSender<FanOutPosition>>,
    ) -> SqsConsumer {
        let jobs = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..CONSUMERS)
            .map(|_| {
                let (client, queue_url) = (client.clone(), queue_url.to_string());
                let (jobs, stop, continuations) =
                    (jobs.clone(), stop.clone(), continuations.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        if let Err(e) =
                            receive_once(&client, &queue_url, &jobs, continuations.as_ref()).await
                        {
                            note("fanout", format!("consumer: {e}"));
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                })
            })
            .collect();
        SqsConsumer { jobs, stop, tasks }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn receive_once(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    jobs: &Tally,
    continuations: Option<&mpsc::UnboundedSender<FanOutPosition>>,
) -> Result<()> {
    let answer = client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .visibility_timeout(600)
        .send()
        .await?;
    let mut receipts = Vec::new();
    for (i, message) in answer.messages().iter().enumerate() {
        match serde_json::from_str::<QueueMessage>(message.body().unwrap_or_default()) {
            Ok(QueueMessage::Sync(job)) => jobs.record(job.account_id),
            Ok(QueueMessage::FanOut { continue_fanout }) => {
                if let Some(continuations) = continuations {
                    let _ = continuations.send(continue_fanout);
                }
            }
            Ok(other) => note("fanout", format!("consumer: unexpected message: {other:?}")),
            Err(e) => note("fanout", format!("consumer: unexpected message: {e}")),
        }
        if let Some(handle) = message.receipt_handle() {
            receipts.push(
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()?,
            );
        }
    }
    if !receipts.is_empty() {
        client
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(receipts))
            .send()
            .await?;
    }
    Ok(())
}

/// The queue's own speed: `n` job-sized messages in a tight loop, 10 per call, the same
/// chunks in flight as the hub, onto a fresh queue with the same consumer.
async fn raw_send(sdk: &aws_config::SdkConfig, n: usize) -> Result<f64> {
    let client = aws_sdk_sqs::Client::new(sdk);
    let queue_url = client
        .create_queue()
        .queue_name(format!("bench-raw-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await?
        .queue_url()
        .ok_or("no queue URL")?
        .to_string();
    // Job bodies as the hub writes them, one account each.
    let body = || {
        serde_json::to_string(&QueueMessage::Sync(SyncJob {
            account_id: uuid::Uuid::new_v4().to_string(),
            provider: "onedrive".into(),
            reason: SyncReason::Manual,
            requested_at: chrono::Utc::now(),
            stalled_requeues: 0,
        }))
    };
    let consumer = SqsConsumer::start(&client, &queue_url, None);
    let start = Instant::now();
    let chunks: Vec<usize> = (0..n)
        .step_by(10)
        .map(|first| (n - first).min(10))
        .collect();
    let sent = futures::stream::iter(chunks)
        .map(|size| {
            let entries = (0..size)
                .map(|i| {
                    Ok(SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body()?)
                        .build()?)
                })
                .collect::<Result<Vec<_>>>();
            let (client, queue_url) = (&client, &queue_url);
            async move {
                client
                    .send_message_batch()
                    .queue_url(queue_url)
                    .set_entries(Some(entries?))
                    .send()
                    .await?;
                Ok::<(), crate::support::BoxError>(())
            }
        })
        .buffer_unordered(CHUNKS_IN_FLIGHT)
        .try_collect::<()>()
        .await;
    let seconds = start.elapsed().as_secs_f64();
    consumer.stop().await;
    sent?;
    Ok(seconds)
}

/// A stand-in of the Lambda Invoke API that the local queue calls
/// (`POST /2015-03-31/functions/sync-worker/invocations`): counts the jobs, passes
/// continuations on, and reports no failures.
struct InvokeStandIn {
    url: String,
    jobs: Arc<Tally>,
    continuations: std::sync::Mutex<Option<mpsc::UnboundedReceiver<FanOutPosition>>>,
}

#[derive(Clone)]
struct InvokeState {
    jobs: Arc<Tally>,
    continuations: mpsc::UnboundedSender<FanOutPosition>,
}

impl InvokeStandIn {
    async fn start() -> Result<InvokeStandIn> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (sender, receiver) = mpsc::unbounded_channel();
        let jobs = Arc::new(Tally::default());
        let state = InvokeState {
            jobs: jobs.clone(),
            continuations: sender,
        };
        let app = Router::new()
            .route(
                "/2015-03-31/functions/sync-worker/invocations",
                post(invoked),
            )
            .with_state(state);
        // Lives as long as the benchmark process.
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(InvokeStandIn {
            url,
            jobs,
            continuations: std::sync::Mutex::new(Some(receiver)),
        })
    }

    fn take_continuations(&self) -> mpsc::UnboundedReceiver<FanOutPosition> {
        self.continuations
            .lock()
            .expect("continuations lock")
            .take()
            .expect("taken once")
    }
}

async fn invoked(State(state): State<InvokeState>, body: Bytes) -> Json<Value> {
    let event: HashMap<String, Value> = serde_json::from_slice(&body).unwrap_or_default();
    let records = event.get("Records").and_then(Value::as_array);
    for record in records.into_iter().flatten() {
        let body = record
            .get("body")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match serde_json::from_str::<QueueMessage>(body) {
            Ok(QueueMessage::Sync(job)) => state.jobs.record(job.account_id),
            Ok(QueueMessage::FanOut { continue_fanout }) => {
                let _ = state.continuations.send(continue_fanout);
            }
            Ok(other) => note(
                "fanout",
                format!("invoke stand-in: unexpected record: {other:?}"),
            ),
            Err(e) => note("fanout", format!("invoke stand-in: unexpected record: {e}")),
        }
    }
    Json(json!({"batchItemFailures": []}))
}
