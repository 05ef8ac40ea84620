//! The hub's parts, built once per cold start and shared by every invocation.

use std::sync::Arc;

use crate::config::{Backend, Config, Env};
use crate::crypto::{kms::KmsCipher, local::LocalCipher, TokenCipher};
use crate::error::{HubError, HubResult};
use crate::providers::http::{ProviderHttp, RetryPolicy};
use crate::providers::Registry;
use crate::queue::{local::LocalQueue, sqs::SqsQueue, JobQueue};
use crate::store::{dynamo::DynamoStore, local::LocalStore, Store};

pub struct Hub {
    pub config: Config,
    pub providers: Registry,
    pub store: Arc<dyn Store>,
    pub cipher: Arc<dyn TokenCipher>,
    pub queue: Arc<dyn JobQueue>,
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
        let (store, cipher, queue): (Arc<dyn Store>, Arc<dyn TokenCipher>, Arc<dyn JobQueue>) =
            match config.backend {
                Backend::Local => {
                    let dir = &config.local.data_dir;
                    (
                        Arc::new(LocalStore::open(dir)?),
                        Arc::new(LocalCipher::load(config.local.key.as_ref(), dir)?),
                        Arc::new(LocalQueue::new(&config.local.invoke_url, dir.clone())?),
                    )
                }
                Backend::Aws => {
                    let resources = config.aws()?.clone();
                    // Read through `Env` so a test can point one hub at an emulator without
                    // touching the process environment; with the process environment this is
                    // what the SDK itself does.
                    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
                    if let Some(endpoint) = env.get("AWS_ENDPOINT_URL") {
                        loader = loader.endpoint_url(endpoint);
                    }
                    let sdk = loader.load().await;
                    (
                        Arc::new(DynamoStore::new(
                            aws_sdk_dynamodb::Client::new(&sdk),
                            resources.table_name,
                        )),
                        Arc::new(KmsCipher::new(
                            aws_sdk_kms::Client::new(&sdk),
                            resources.kms_key_id,
                        )),
                        Arc::new(SqsQueue::new(
                            aws_sdk_sqs::Client::new(&sdk),
                            resources.sync_queue_url,
                        )),
                    )
                }
            };
        Ok(Hub {
            config,
            providers,
            store,
            cipher,
            queue,
        })
    }
}
