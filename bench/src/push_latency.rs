//! Push latency: from a provider's change notification to the changed file in the index, for
//! Google Drive, OneDrive and Dropbox. One connected account per provider, its first sync done
//! (which opens the Drive channel and the Graph subscription, Graph validating the address),
//! the Dropbox webhook registered. Each run adds a file at the stand-in and has the stand-in
//! send its notification to a copy of the `provider-webhooks` routes served by this process
//! (`hub::web::notification_response`), which queues a push job; the worker consumes it as
//! Lambda would (`crate::consumer`) until the file is in the index.
//!
//! Not included: the SQS event source's batching window and the Lambda invoke itself (here
//! the consumer polls the queue in a loop, or the local queue calls the worker at once).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hub::config::Env;
use hub::model::{SyncJob, SyncReason};
use hub::providers::http::RetryPolicy;
use hub::Hub;
use hub_testkit::{
    Authenticity, FakeProviders, FileSpec, DEFAULT_DROPBOX_USER, DEFAULT_GOOGLE_USER,
    DEFAULT_MICROSOFT_USER,
};
use serde::{Deserialize, Serialize};

use crate::consumer::{LocalInvoke, SqsConsumer};
use crate::moto::{self, Resources};
use crate::support::{self, note, Result, Summary};

const PROVIDERS: [&str; 3] = ["google", "onedrive", "dropbox"];
/// A pushed change not in the index after this long counts as lost, and the run stops.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);
/// How often the index is looked at while waiting (locally; on moto after each poll).
const CHECK_EVERY: Duration = Duration::from_millis(10);

pub struct Options {
    /// Notifications per provider and backend.
    pub runs: usize,
    /// The stand-ins' latency on every answer to the hub while measuring (none in the setup).
    pub latency: Duration,
    pub local: bool,
    pub aws: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub runs: usize,
    #[serde(default)]
    pub latency_ms: f64,
    pub cases: Vec<Case>,
}

/// One provider on one backend.
#[derive(Debug, Serialize, Deserialize)]
pub struct Case {
    pub backend: String,
    pub provider: String,
    /// From sending the notification to the changed file in the index (ms).
    pub latency_ms: Summary,
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
        cases,
    })
}

enum Backend {
    Local,
    Aws,
}

/// Whoever consumes the queue on this backend.
enum Consumer {
    /// The local queue calls it by itself.
    Local(LocalInvoke),
    Sqs(SqsConsumer),
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
            let consumer = SqsConsumer {
                sqs: aws_sdk_sqs::Client::new(&sdk),
                queue_url: resources.queue_url.clone(),
                timeout: hub::queue::local::WORKER_TIMEOUT,
            };
            (
                "aws (moto)",
                resources.hub_env(&endpoint),
                Consumer::Sqs(consumer),
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
    if let Consumer::Local(invoke) = &consumer {
        invoke.serve(hub.clone());
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
        let (mut latencies, mut answers) = (Vec::new(), Vec::new());
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
            let start = Instant::now();
            let status = notify(&providers, provider).await;
            answers.push(support::ms(start.elapsed()));
            if !matches!(status, Some(200 | 202)) {
                return Err(format!("{provider}: the webhook answered {status:?}").into());
            }
            wait_until_indexed(&hub, &consumer, account_id, &file_id, start).await?;
            latencies.push(support::ms(start.elapsed()));
        }
        let case = Case {
            backend: name.to_string(),
            provider: provider.to_string(),
            latency_ms: Summary::of(&latencies),
            webhook_answer_ms: Summary::of(&answers),
        };
        note(
            "push",
            format!(
                "  {name} {provider}: notification to index median {:.0} ms, max {:.0} ms (webhook answer median {:.1} ms)",
                case.latency_ms.median, case.latency_ms.max, case.webhook_answer_ms.median
            ),
        );
        cases.push(case);
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

async fn wait_until_indexed(
    hub: &Hub,
    consumer: &Consumer,
    account_id: &str,
    file_id: &str,
    start: Instant,
) -> Result<()> {
    loop {
        match consumer {
            Consumer::Local(_) => tokio::time::sleep(CHECK_EVERY).await,
            Consumer::Sqs(sqs) => {
                sqs.poll(hub).await?;
            }
        }
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
