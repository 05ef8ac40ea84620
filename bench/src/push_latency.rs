//! Push latency: from a change at the provider's stand-in to the changed file in the index and
//! to the app's `sync.completed` (a signed event at the testkit webhook receiver), for Google
//! Drive, OneDrive and Dropbox. One connected account per provider, its first sync done
//! (which opens the Drive channel and the Graph subscription, Graph validating the address),
//! the Dropbox webhook registered. Each run adds a file at the stand-in and has the stand-in
//! send its notification to a copy of the `provider-webhooks` routes served by this process
//! (`hub::web::notification_response`), which queues a push job.
//!
//! On moto the queues are consumed as template.yaml's event source mappings do, batching
//! windows included (`crate::mappings`): the push queue (none), the sync queue (5 s: where push
//! jobs went before the push queue; `--push-queue off` measures that layout) and the events
//! queue to `app-webhooks` (1 s). Locally the local queue calls the worker at once, and the
//! latency stops at the index. Not included: the Lambda invoke itself (a cold start when no
//! worker is warm).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hub::config::Env;
use hub::delivery::Sender;
use hub::deployment;
use hub::model::{SyncJob, SyncReason};
use hub::providers::http::RetryPolicy;
use hub::Hub;
use hub_testkit::webhook_receiver::WebhookReceiver;
use hub_testkit::{
    Authenticity, FakeProviders, FileSpec, DEFAULT_DROPBOX_USER, DEFAULT_GOOGLE_USER,
    DEFAULT_MICROSOFT_USER,
};
use serde::{Deserialize, Serialize};

use crate::consumer::LocalInvoke;
use crate::mappings::{Function, Mapping};
use crate::moto::{self, Resources};
use crate::support::{self, note, Result, Summary};

const PROVIDERS: [&str; 3] = ["google", "onedrive", "dropbox"];
/// A pushed change not in the index after this long counts as lost, and the run stops.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);
/// How often the index is looked at while waiting (locally; on moto after each poll).
const CHECK_EVERY: Duration = Duration::from_millis(10);
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

pub struct Options {
    /// Notifications per provider and backend.
    pub runs: usize,
    /// The stand-ins' latency on every answer to the hub while measuring (none in the setup).
    pub latency: Duration,
    pub local: bool,
    pub aws: bool,
    /// Push jobs on their own queue (`PUSH_QUEUE_URL`, no batching window), as the template
    /// deploys them; `false` puts them on the sync queue, as before that queue existed.
    pub push_queue: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub runs: usize,
    #[serde(default)]
    pub latency_ms: f64,
    #[serde(default)]
    pub push_queue: bool,
    pub cases: Vec<Case>,
}

/// One provider on one backend.
#[derive(Debug, Serialize, Deserialize)]
pub struct Case {
    pub backend: String,
    pub provider: String,
    /// From the change at the stand-in (its notification sent at once) to the changed file
    /// in the index (ms).
    pub latency_ms: Summary,
    /// From the change to the app's `sync.completed` for it (ms); on moto only.
    #[serde(default)]
    pub completed_ms: Option<Summary>,
    /// How long the webhook took to answer the provider (ms): the check and the enqueue.
    pub webhook_answer_ms: Summary,
}

pub async fn run(options: Options) -> Result<Results> {
    let loadavg_before = support::loadavg();
    let mut cases = Vec::new();
    if options.local {
        cases.extend(backend_run(Backend::Local, &options).await?);
    }
    if options.aws {
        cases.extend(backend_run(Backend::Aws, &options).await?);
    }
    Ok(Results {
        loadavg_before,
        loadavg_after: support::loadavg(),
        runs: options.runs,
        latency_ms: support::ms(options.latency),
        push_queue: options.push_queue,
        cases,
    })
}

enum Backend {
    Local,
    Aws,
}

/// Whoever consumes the queues on this backend.
enum Consumer {
    /// The local queue calls it by itself.
    Local(LocalInvoke),
    /// The event source mappings, and the app receiving the events.
    Sqs(Mappings),
}

/// The template's event source mappings on moto, and where their queues are.
struct Mappings {
    sqs: aws_sdk_sqs::Client,
    queues: Vec<(String, Duration, bool)>,
    running: Vec<Mapping>,
    receiver: WebhookReceiver,
}

async fn backend_run(backend: Backend, options: &Options) -> Result<Vec<Case>> {
    let providers = FakeProviders::start().await;
    let webhooks = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let public_url = format!("http://{}", webhooks.local_addr()?);
    let dir = tempfile::tempdir()?;
    let (name, mut env, consumer) = match backend {
        Backend::Local => {
            let invoke = LocalInvoke::bind(hub::queue::local::WORKER_TIMEOUT).await?;
            let mut env = moto::base_env();
            env.push(("HUB_BACKEND".into(), "local".into()));
            env.push(("HUB_DATA_DIR".into(), dir.path().display().to_string()));
            env.push(("HUB_LOCAL_INVOKE_URL".into(), invoke.url.clone()));
            ("local", env, Consumer::Local(invoke))
        }
        Backend::Aws => {
            let endpoint = moto::endpoint()?;
            let sdk = moto::sdk_config(&endpoint).await;
            let resources = Resources::create(&sdk, "bench-push").await?;
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            let mut env = resources.hub_env(&endpoint);
            // (queue, its mapping's window, whether app-webhooks consumes it)
            let mut queues = vec![(
                resources.queue_url.clone(),
                deployment::SYNC_QUEUE.batching_window,
                false,
            )];
            if options.push_queue {
                let url = create_queue(&sqs, "bench-push-jobs").await?;
                env.push(("PUSH_QUEUE_URL".into(), url.clone()));
                queues.push((url, deployment::PUSH_QUEUE.batching_window, false));
            }
            let events = create_queue(&sqs, "bench-push-events").await?;
            queues.push((
                events.clone(),
                deployment::EVENTS_QUEUE.batching_window,
                true,
            ));
            let receiver = WebhookReceiver::start(SECRET).await;
            env.extend(
                [
                    ("EVENTS_QUEUE_URL", events),
                    ("HUB_WEBHOOK_URL", receiver.url()),
                    ("HUB_WEBHOOK_SECRET", SECRET.to_string()),
                    ("HUB_WEBHOOK_ALLOW_HTTP", "true".to_string()),
                ]
                .map(|(k, v)| (k.to_string(), v)),
            );
            let mappings = Mappings {
                sqs,
                queues,
                running: Vec::new(),
                receiver,
            };
            (
                if options.push_queue {
                    "aws (moto)"
                } else {
                    "aws (moto), push jobs on the sync queue"
                },
                env,
                Consumer::Sqs(mappings),
            )
        }
    };
    env.retain(|(k, _)| k != "HUB_PUBLIC_URL");
    env.extend(providers.env_vars());
    env.extend(providers.dropbox_env_vars());
    env.push(("HUB_PUSH".into(), "on".into()));
    // Graph opens a drive subscription only for a grant that may write.
    env.push(("ONEDRIVE_SCOPES".into(), "Files.ReadWrite".into()));
    env.push(("HUB_PUBLIC_URL".into(), public_url.clone()));
    let hub = Arc::new(Hub::build(&Env::from_map(env), RetryPolicy::default()).await?);
    let mut consumer = consumer;
    match &mut consumer {
        Consumer::Local(invoke) => invoke.serve(hub.clone()),
        Consumer::Sqs(mappings) => {
            let sender = match &hub.config.webhook {
                Some(settings) => Arc::new(Sender::new(settings.clone())?),
                None => return Err("events are not on".into()),
            };
            for (url, window, events) in &mappings.queues {
                let function = match events {
                    true => Function::AppWebhooks(sender.clone()),
                    false => Function::Worker,
                };
                mappings.running.push(Mapping::start(
                    hub.clone(),
                    mappings.sqs.clone(),
                    url.clone(),
                    *window,
                    function,
                ));
            }
        }
    }
    serve_webhooks(webhooks, hub.clone());

    note("push", format!("{name}: connecting and syncing 3 accounts"));
    let mut accounts = Vec::new();
    for provider in PROVIDERS {
        let account = crate::worker::connect_account(&hub, provider).await?;
        // The first sync, outside any measurement: it opens the channel or subscription.
        let job = SyncJob {
            account_id: account.id.clone(),
            provider: provider.to_string(),
            reason: SyncReason::Manual,
            requested_at: chrono::Utc::now(),
            stalled_requeues: 0,
        };
        hub::sync::run(&hub, &job, hub::sync::fresh_invocation()).await?;
        accounts.push(account.id);
    }
    if !providers
        .register_dropbox_webhook(&format!("{public_url}/webhooks/dropbox"))
        .await
    {
        return Err("the hub did not echo Dropbox's challenge".into());
    }
    if providers
        .live_drive_channels(DEFAULT_GOOGLE_USER)
        .is_empty()
        || providers
            .live_graph_subscriptions(DEFAULT_MICROSOFT_USER)
            .is_empty()
    {
        return Err("the first syncs opened no Drive channel or Graph subscription".into());
    }

    providers.set_latency(options.latency);
    let mut cases = Vec::new();
    for (provider, account_id) in PROVIDERS.iter().zip(&accounts) {
        let (mut latencies, mut answers, mut completions) = (Vec::new(), Vec::new(), Vec::new());
        for n in 0..options.runs {
            let file_id = match *provider {
                "dropbox" => format!("id:pushed-{n}"),
                _ => format!("{provider}-pushed-{n}"),
            };
            let user = match *provider {
                "google" => DEFAULT_GOOGLE_USER,
                "onedrive" => DEFAULT_MICROSOFT_USER,
                _ => DEFAULT_DROPBOX_USER,
            };
            providers.add_file(
                *provider,
                user,
                FileSpec::new(&file_id, format!("pushed-{n}.txt")),
            );
            let seen = match &consumer {
                Consumer::Sqs(mappings) => mappings.receiver.received().len(),
                Consumer::Local(_) => 0,
            };
            let start = Instant::now();
            let status = notify(&providers, provider).await;
            answers.push(support::ms(start.elapsed()));
            if !matches!(status, Some(200 | 202)) {
                return Err(format!("{provider}: the webhook answered {status:?}").into());
            }
            wait_until_indexed(&hub, account_id, &file_id, start).await?;
            latencies.push(support::ms(start.elapsed()));
            if let Consumer::Sqs(mappings) = &consumer {
                wait_for_completion(&mappings.receiver, seen, account_id, start).await?;
                completions.push(support::ms(start.elapsed()));
            }
        }
        let case = Case {
            backend: name.to_string(),
            provider: provider.to_string(),
            latency_ms: Summary::of(&latencies),
            webhook_answer_ms: Summary::of(&answers),
            completed_ms: (!completions.is_empty()).then(|| Summary::of(&completions)),
        };
        note(
            "push",
            format!(
                "  {name} {provider}: change to index median {:.0} ms, max {:.0} ms; to sync.completed median {} ms (webhook answer median {:.1} ms)",
                case.latency_ms.median,
                case.latency_ms.max,
                case.completed_ms.as_ref().map_or("-".to_string(), |s| format!("{:.0}", s.median)),
                case.webhook_answer_ms.median
            ),
        );
        cases.push(case);
    }
    if let Consumer::Sqs(mappings) = consumer {
        for mapping in mappings.running {
            mapping.stop().await?;
        }
    }
    Ok(cases)
}

/// The stand-in sends its notification of a change for the default user; the webhook's
/// status.
async fn notify(providers: &FakeProviders, provider: &str) -> Option<u16> {
    match provider {
        "google" => {
            let sent = providers
                .notify_drive_change(DEFAULT_GOOGLE_USER, Authenticity::Genuine)
                .await;
            sent.first().and_then(|d| d.status)
        }
        "onedrive" => {
            let sent = providers
                .notify_graph_change(DEFAULT_MICROSOFT_USER, Authenticity::Genuine)
                .await;
            sent.first().and_then(|d| d.status)
        }
        _ => {
            providers
                .notify_dropbox(&[DEFAULT_DROPBOX_USER], Authenticity::Genuine)
                .await
                .status
        }
    }
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, prefix: &str) -> Result<String> {
    Ok(sqs
        .create_queue()
        .queue_name(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await?
        .queue_url()
        .ok_or("SQS CreateQueue answered without a URL")?
        .to_string())
}

/// Waits for the app's `sync.completed` of a push sync of the account, among the events
/// after the first `seen`.
async fn wait_for_completion(
    receiver: &WebhookReceiver,
    seen: usize,
    account_id: &str,
    start: Instant,
) -> Result<()> {
    let left = GIVE_UP_AFTER.saturating_sub(start.elapsed());
    let received = receiver
        .wait_for(left, |received| {
            received.iter().skip(seen).any(|r| completes(r, account_id))
        })
        .await;
    match received.iter().skip(seen).any(|r| completes(r, account_id)) {
        true => Ok(()),
        false => Err(format!("no sync.completed of {account_id} after {GIVE_UP_AFTER:?}").into()),
    }
}

fn completes(received: &hub_testkit::webhook_receiver::Received, account_id: &str) -> bool {
    let event = received.json();
    received.verified
        && event["type"] == "sync.completed"
        && event["data"]["account_id"] == account_id
        && event["data"]["reason"] == "push"
}

async fn wait_until_indexed(
    hub: &Hub,
    account_id: &str,
    file_id: &str,
    start: Instant,
) -> Result<()> {
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        if indexed(hub, account_id, file_id).await? {
            return Ok(());
        }
        if start.elapsed() > GIVE_UP_AFTER {
            return Err(format!("{file_id} not in the index after {GIVE_UP_AFTER:?}").into());
        }
    }
}

/// Whether the file is a live entry of the account's index (a small one: a few files).
async fn indexed(hub: &Hub, account_id: &str, file_id: &str) -> Result<bool> {
    let mut after = None::<String>;
    loop {
        let page = hub
            .store
            .list_files(account_id, after.as_deref(), 1000)
            .await?;
        if page.items.iter().any(|f| f.id == file_id && !f.deleted) {
            return Ok(true);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(false),
        }
    }
}

/// The `provider-webhooks` function's routes, served by this process for the stand-ins to
/// notify.
fn serve_webhooks(listener: tokio::net::TcpListener, hub: Arc<Hub>) {
    let app = hub::web::webhook_routes(hub);
    // Lives as long as the benchmark process.
    tokio::spawn(async move { axum::serve(listener, app).await });
}
