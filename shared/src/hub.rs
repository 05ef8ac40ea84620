//! The hub's parts, built once per cold start and shared by every invocation.

use std::sync::Arc;

use crate::config::{Backend, Config, Env};
use crate::crypto::{kms::KmsCipher, local::LocalCipher, TokenCipher};
use crate::error::{HubError, HubResult};
use crate::providers::http::{ProviderHttp, RetryPolicy};
use crate::providers::Registry;
use crate::queue::{local::LocalQueue, sqs::SqsQueue, EventQueue, JobQueue};
use crate::store::{dynamo::DynamoStore, local::LocalStore, Store};

pub struct Hub {
    pub config: Config,
    pub providers: Registry,
    pub store: Arc<dyn Store>,
    pub cipher: Arc<dyn TokenCipher>,
    pub queue: Arc<dyn JobQueue>,
    /// The events queue; `None` when `HUB_WEBHOOK_URL` is unset (no events at all).
    pub events: Option<Arc<dyn EventQueue>>,
}

impl Hub {
    /// From the process environment.
    pub async fn from_env() -> HubResult<Self> {
        Self::build(&Env::process(), RetryPolicy::default()).await
    }

    /// Picks the backend named by `HUB_BACKEND`. In `aws` mode the SDK reads credentials,
    /// region and `AWS_ENDPOINT_URL` itself, so any AWS-compatible endpoint works.
    pub async fn build(env: &Env, retry: RetryPolicy) -> HubResult<Self> {
        let config = Config::from_env(env)?;
        let http = ProviderHttp::new(retry).map_err(|e| HubError::Config(e.to_string()))?;
        let providers = Registry::from_env(env, &config, &http)?;
        let adapters = match config.backend {
            Backend::Local => Adapters::local(&config)?,
            Backend::Aws => Adapters::aws(env, &config).await?,
        };
        Ok(Hub {
            config,
            providers,
            store: adapters.store,
            cipher: adapters.cipher,
            queue: adapters.queue,
            events: adapters.events,
        })
    }
}

/// The backend's adapters: where the hub stores, seals and queues.
struct Adapters {
    store: Arc<dyn Store>,
    cipher: Arc<dyn TokenCipher>,
    queue: Arc<dyn JobQueue>,
    /// `None` without `HUB_WEBHOOK_URL`: no events.
    events: Option<Arc<dyn EventQueue>>,
}

impl Adapters {
    fn local(config: &Config) -> HubResult<Self> {
        let dir = &config.local.data_dir;
        let events: Option<Arc<dyn EventQueue>> = match config.webhook.is_some() {
            true => Some(Arc::new(LocalQueue::events(
                &config.local.invoke_url,
                dir.clone(),
                config.local.event_retry_scale,
            )?)),
            false => None,
        };
        Ok(Adapters {
            store: Arc::new(LocalStore::open(dir)?),
            cipher: Arc::new(LocalCipher::load(config.local.key.as_ref(), dir)?),
            queue: Arc::new(LocalQueue::new(&config.local.invoke_url, dir.clone())?),
            events,
        })
    }

    async fn aws(env: &Env, config: &Config) -> HubResult<Self> {
        let resources = config.aws()?.clone();
        // Read through `Env` so a test can point one hub at an emulator without touching the
        // process environment; with the process environment this is what the SDK itself does.
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = env.get("AWS_ENDPOINT_URL") {
            loader = loader.endpoint_url(endpoint);
        }
        let sdk = loader.load().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let events: Option<Arc<dyn EventQueue>> = resources
            .events_queue_url
            .map(|url| Arc::new(SqsQueue::new(sqs.clone(), url)) as _);
        Ok(Adapters {
            store: Arc::new(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                resources.table_name,
            )),
            cipher: Arc::new(KmsCipher::new(
                aws_sdk_kms::Client::new(&sdk),
                resources.kms_key_id,
            )),
            queue: Arc::new(
                SqsQueue::new(sqs, resources.sync_queue_url)
                    .with_push_queue(resources.push_queue_url),
            ),
            events,
        })
    }
}
