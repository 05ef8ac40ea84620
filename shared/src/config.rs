//! Configuration, read once per cold start from the environment (docs/API.md, "Configuration").
//!
//! Provider-specific variables (client ids, endpoints) are read by each provider's own module,
//! so that adding a provider never touches this file.

use std::collections::HashMap;
use std::path::PathBuf;

use secrecy::SecretString;
use url::Url;

use crate::deployment::{Function, Need};
use crate::error::{HubError, HubResult};
use crate::return_urls::ReturnAllowlist;
use crate::webhook_signature::WebhookSecret;

/// Where the environment comes from: the process, or a map in tests.
#[derive(Clone, Debug, Default)]
pub struct Env {
    overrides: Option<HashMap<String, String>>,
}

impl Env {
    /// The real process environment.
    pub fn process() -> Self {
        Env { overrides: None }
    }

    /// A fixed set of variables (tests, tools); nothing is read from the process.
    pub fn from_map<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env {
            overrides: Some(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// The variable's value; unset and empty are the same thing.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match &self.overrides {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn get_or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_string())
    }

    /// A variable that must hold an absolute http(s) URL; the trailing slash is dropped so
    /// paths can be appended with `format!`.
    pub fn url_or(&self, name: &str, default: &str) -> HubResult<String> {
        let raw = self.get_or(name, default);
        let parsed = Url::parse(&raw)
            .map_err(|e| HubError::Config(format!("{name} is not a valid URL ({e}): '{raw}'")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(HubError::Config(format!(
                "{name} must be an http or https URL"
            )));
        }
        Ok(raw.trim_end_matches('/').to_string())
    }

    fn required(&self, name: &str, why: &str) -> HubResult<String> {
        self.get(name)
            .ok_or_else(|| HubError::Config(format!("{name} is required {why}")))
    }
}

/// Which implementation of storage, encryption and queue to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded: files under `HUB_DATA_DIR`, a local key, the worker invoked through
    /// `cargo lambda watch`.
    Local,
    /// DynamoDB, KMS and SQS.
    Aws,
}

/// The AWS resource names, required in `aws` mode.
#[derive(Clone, Debug)]
pub struct AwsResources {
    pub table_name: String,
    pub kms_key_id: String,
    pub sync_queue_url: String,
    /// `PUSH_QUEUE_URL`: push jobs' queue, consumed without a batching window
    /// (docs/DEPLOY.md); push jobs go on the sync queue when it is unset.
    pub push_queue_url: Option<String>,
    /// `EVENTS_QUEUE_URL`: required when events are on (`HUB_WEBHOOK_URL` set).
    pub events_queue_url: Option<String>,
}

/// Where events go and how they are signed (docs/API.md, "Events to the app").
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// `HUB_WEBHOOK_URL`, as given.
    pub url: String,
    /// `HUB_WEBHOOK_SECRET`, required with the URL.
    pub secret: WebhookSecret,
    /// `HUB_WEBHOOK_SECRET_NEXT`, during a rotation: every delivery is signed with both, so
    /// that the app can switch its verifier to it before the hub drops the current one.
    pub next_secret: Option<WebhookSecret>,
}

impl WebhookSettings {
    /// The `webhook-signature` header of one attempt: the current secret's signature, and
    /// the next one's during a rotation, space-separated as Standard Webhooks allows (a
    /// receiver accepts the request when one of them verifies).
    pub fn signature(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
        std::iter::once(&self.secret)
            .chain(self.next_secret.as_ref())
            .map(|secret| secret.sign(webhook_id, timestamp, body))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The embedded backend's settings.
#[derive(Clone, Debug)]
pub struct LocalSettings {
    pub data_dir: PathBuf,
    /// `HUB_LOCAL_KEY`; when unset a key is generated into the data dir.
    pub key: Option<SecretString>,
    /// Where the local queue invokes the worker: the Lambda Invoke API that
    /// `cargo lambda watch` serves. `HUB_LOCAL_INVOKE_URL`, default `HUB_PUBLIC_URL`
    /// (locally the hub *is* `cargo lambda watch`).
    pub invoke_url: String,
    /// `HUB_LOCAL_EVENT_RETRY_SCALE` (tests only, default 1): the factor applied to the
    /// webhook retry delays by the local queue, so a test sees six attempts in seconds.
    pub event_retry_scale: f64,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub backend: Backend,
    /// `HUB_PUBLIC_URL` without a trailing slash.
    pub public_url: String,
    /// `HUB_API_KEY`; only the management functions require it (see [`Config::api_key`]).
    api_key: Option<SecretString>,
    /// `HUB_API_KEY_NEXT`, during a rotation: accepted as well as `HUB_API_KEY`.
    api_key_next: Option<SecretString>,
    pub local: LocalSettings,
    aws: Option<AwsResources>,
    /// `HUB_ALLOWED_RETURN_URLS`: where connect sessions may return the browser (empty:
    /// sessions cannot have a `return_to`).
    pub return_urls: ReturnAllowlist,
    /// `None` when `HUB_WEBHOOK_URL` is unset: no events, and no queue calls for them.
    pub webhook: Option<WebhookSettings>,
    /// `HUB_PUSH`: whether the hub subscribes to the providers' push notifications and acts on
    /// them (docs/API.md, "Push notifications").
    pub push: bool,
    /// `HUB_REQUIRE_SESSION`: refuse logins without a connect session (docs/API.md, "Logins").
    pub require_session: bool,
    /// Where the hub's content links point (docs/API.md, "File content"): `HUB_CONTENT_URL`,
    /// the content function's URL in AWS; locally the hub's own address, where `cargo lambda
    /// watch` routes `/content/...` to the same function. No trailing slash.
    pub content_url: String,
    /// `HUB_CONTENT_MAX_ANSWER_BYTES`: the most bytes one streamed answer carries (a Lambda
    /// function URL's limit on a streamed response); a larger file is read in ranges. `None`
    /// locally: no limit.
    pub content_answer_limit: Option<u64>,
    /// `HUB_LOG_FILE_NAMES`: a log line per synced file, with its name (`true` by default
    /// locally, where it is how a user sees their files; `false` by default with
    /// `HUB_BACKEND=aws`, where file names in CloudWatch are a privacy and cost matter).
    pub log_file_names: bool,
    /// `HUB_METRICS_NAMESPACE`: the CloudWatch namespace of the hub's metrics
    /// (`crate::metrics`); unset, no metrics are written.
    pub metrics_namespace: Option<String>,
    /// `HUB_STALE_SYNC_AFTER_MINUTES` (default 180: three schedules of an hour): an active
    /// account whose last completed sync is older counts in the `StaleAccounts` metric.
    pub stale_sync_after: std::time::Duration,
}

/// The default of `HUB_STALE_SYNC_AFTER_MINUTES`: three periods of the template's default
/// schedule, `rate(1 hour)`.
pub const DEFAULT_STALE_SYNC_AFTER_MINUTES: u64 = 180;

pub const DEFAULT_PUBLIC_URL: &str = "http://localhost:9000";

impl Config {
    pub fn from_env(env: &Env) -> HubResult<Self> {
        let backend = match env
            .get_or("HUB_BACKEND", "local")
            .to_ascii_lowercase()
            .as_str()
        {
            "local" => Backend::Local,
            "aws" => Backend::Aws,
            other => {
                return Err(HubError::Config(format!(
                    "HUB_BACKEND must be 'local' or 'aws' (got '{other}')"
                )))
            }
        };
        let public_url = env.url_or("HUB_PUBLIC_URL", DEFAULT_PUBLIC_URL)?;
        let webhook = webhook_settings(env, backend)?;
        let aws = match backend {
            Backend::Aws => Some(AwsResources {
                table_name: env.required("TABLE_NAME", "when HUB_BACKEND=aws")?,
                kms_key_id: env.required("KMS_KEY_ID", "when HUB_BACKEND=aws")?,
                sync_queue_url: env.required("SYNC_QUEUE_URL", "when HUB_BACKEND=aws")?,
                push_queue_url: env.get("PUSH_QUEUE_URL").filter(|url| !url.is_empty()),
                events_queue_url: match webhook {
                    Some(_) => Some(env.required(
                        "EVENTS_QUEUE_URL",
                        "when HUB_BACKEND=aws and HUB_WEBHOOK_URL is set",
                    )?),
                    None => None,
                },
            }),
            Backend::Local => None,
        };
        let event_retry_scale = match env.get("HUB_LOCAL_EVENT_RETRY_SCALE") {
            None => 1.0,
            Some(raw) => raw
                .parse::<f64>()
                .ok()
                .filter(|scale| scale.is_finite() && *scale > 0.0 && *scale <= 1.0)
                .ok_or_else(|| {
                    HubError::Config(format!(
                        "HUB_LOCAL_EVENT_RETRY_SCALE must be a number above 0 and at most 1 (got '{raw}')"
                    ))
                })?,
        };
        let local = LocalSettings {
            data_dir: PathBuf::from(env.get_or("HUB_DATA_DIR", ".hub-data")),
            key: env.get("HUB_LOCAL_KEY").map(SecretString::from),
            invoke_url: env.url_or("HUB_LOCAL_INVOKE_URL", &public_url)?,
            event_retry_scale,
        };
        let push = push_setting(env, &public_url)?;
        let require_session = match env
            .get("HUB_REQUIRE_SESSION")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(HubError::Config(format!(
                    "HUB_REQUIRE_SESSION must be 'true' or 'false' (got '{other}')"
                )))
            }
        };
        let content_url = env.url_or("HUB_CONTENT_URL", &public_url)?;
        let content_answer_limit = match env.get("HUB_CONTENT_MAX_ANSWER_BYTES") {
            None => None,
            Some(raw) => Some(raw.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                HubError::Config(format!(
                    "HUB_CONTENT_MAX_ANSWER_BYTES must be a positive number of bytes (got '{raw}')"
                ))
            })?),
        };
        let return_urls = ReturnAllowlist::parse(env.get("HUB_ALLOWED_RETURN_URLS").as_deref())
            .map_err(|e| HubError::Config(format!("HUB_ALLOWED_RETURN_URLS: {e}")))?;
        let log_file_names = match env
            .get("HUB_LOG_FILE_NAMES")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None => backend == Backend::Local,
            Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(HubError::Config(format!(
                    "HUB_LOG_FILE_NAMES must be 'true' or 'false' (got '{other}')"
                )))
            }
        };
        let stale_minutes = match env.get("HUB_STALE_SYNC_AFTER_MINUTES") {
            None => DEFAULT_STALE_SYNC_AFTER_MINUTES,
            Some(raw) => raw.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                HubError::Config(format!(
                    "HUB_STALE_SYNC_AFTER_MINUTES must be a positive number of minutes (got '{raw}')"
                ))
            })?,
        };
        Ok(Config {
            log_file_names,
            metrics_namespace: env.get("HUB_METRICS_NAMESPACE"),
            stale_sync_after: std::time::Duration::from_secs(stale_minutes * 60),
            return_urls,
            backend,
            public_url,
            api_key: env.get("HUB_API_KEY").map(SecretString::from),
            api_key_next: env.get("HUB_API_KEY_NEXT").map(SecretString::from),
            local,
            aws,
            webhook,
            push,
            require_session,
            content_url,
            content_answer_limit,
        })
    }

    /// The bearer key of the management routes. Functions that serve them call this at
    /// cold start, so a missing key stops the function with a clear message instead of
    /// leaving the routes open.
    pub fn api_key(&self) -> HubResult<SecretString> {
        self.api_key.clone().ok_or_else(|| {
            HubError::Config("HUB_API_KEY is required (the management routes' bearer key)".into())
        })
    }

    /// The keys the management routes accept: `HUB_API_KEY`, and `HUB_API_KEY_NEXT` while a
    /// rotation is under way (docs/DEPLOY.md, "Rotating the API key and the webhook
    /// secret"). Fails as [`Config::api_key`] does without `HUB_API_KEY`.
    pub fn api_keys(&self) -> HubResult<Vec<SecretString>> {
        let mut keys = vec![self.api_key()?];
        keys.extend(self.api_key_next.clone());
        Ok(keys)
    }

    /// The AWS resource names; only present in `aws` mode.
    pub fn aws(&self) -> HubResult<&AwsResources> {
        self.aws.as_ref().ok_or_else(|| {
            HubError::Config("AWS resources are only configured when HUB_BACKEND=aws".into())
        })
    }

    /// The OAuth redirect URI of a provider, always built from `HUB_PUBLIC_URL`, never from
    /// request headers (a forged Host header must not redirect a code elsewhere).
    pub fn redirect_uri(&self, provider: &str) -> String {
        format!("{}/auth/{provider}/callback", self.public_url)
    }
}

/// `HUB_PUSH`: `on` or `off`; by default on exactly when `HUB_PUBLIC_URL` is https, since
/// Google and Microsoft deliver notifications only to https addresses (docs/API.md, "Push
/// notifications").
fn push_setting(env: &Env, public_url: &str) -> HubResult<bool> {
    match env
        .get("HUB_PUSH")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None => Ok(public_url.starts_with("https://")),
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => Err(HubError::Config(format!(
            "HUB_PUSH must be 'on' or 'off' (got '{other}')"
        ))),
    }
}

/// `HUB_WEBHOOK_URL` and `HUB_WEBHOOK_SECRET`. In `aws` mode the URL must be https (events
/// carry account data), unless `HUB_WEBHOOK_ALLOW_HTTP=true`, which only tests set.
fn webhook_settings(env: &Env, backend: Backend) -> HubResult<Option<WebhookSettings>> {
    let Some(raw_url) = env.get("HUB_WEBHOOK_URL") else {
        return Ok(None);
    };
    let url = Url::parse(&raw_url)
        .map_err(|e| HubError::Config(format!("HUB_WEBHOOK_URL is not a valid URL ({e})")))?;
    let allow_http = match env.get("HUB_WEBHOOK_ALLOW_HTTP").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(HubError::Config(
                "HUB_WEBHOOK_ALLOW_HTTP must be 'true' or 'false'".into(),
            ))
        }
    };
    match url.scheme() {
        "https" => {}
        "http" if backend == Backend::Local || allow_http => {}
        "http" => {
            return Err(HubError::Config(
                "HUB_WEBHOOK_URL must be https when HUB_BACKEND=aws".into(),
            ))
        }
        _ => {
            return Err(HubError::Config(
                "HUB_WEBHOOK_URL must be an http or https URL".into(),
            ))
        }
    }
    let raw_secret = env.get("HUB_WEBHOOK_SECRET").ok_or_else(|| {
        HubError::Config("HUB_WEBHOOK_SECRET is required when HUB_WEBHOOK_URL is set".into())
    })?;
    let secret = WebhookSecret::parse(&raw_secret)
        .map_err(|why| HubError::Config(format!("HUB_WEBHOOK_SECRET {why}")))?;
    let next_secret = env
        .get("HUB_WEBHOOK_SECRET_NEXT")
        .map(|raw| {
            WebhookSecret::parse(&raw)
                .map_err(|why| HubError::Config(format!("HUB_WEBHOOK_SECRET_NEXT {why}")))
        })
        .transpose()?;
    Ok(Some(WebhookSettings {
        url: url.to_string(),
        secret,
        next_secret,
    }))
}

// The check lives with the configuration it reads, so that `deployment` (the code's copy of
// `template.yaml`) stays at the bottom and imports nothing of the hub's.
impl Function {
    /// The cold-start check of the function's needs, run by its `main` right after the
    /// configuration is read: a missing one stops the function at once with its name, rather
    /// than failing (or, for the API key, leaving the routes open) at the first request.
    pub fn check(&self, config: &Config) -> HubResult<()> {
        for need in self.needs {
            match need {
                Need::ApiKey => {
                    config.api_key()?;
                }
                Need::Webhook if config.webhook.is_none() => {
                    return Err(HubError::Config(format!(
                        "HUB_WEBHOOK_URL is required by {}",
                        self.name
                    )))
                }
                Need::Webhook => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = Config::from_env(&Env::from_map([("HUB_API_KEY", "k")])).unwrap();
        assert_eq!(config.backend, Backend::Local);
        assert_eq!(config.public_url, "http://localhost:9000");
        assert_eq!(config.local.data_dir, PathBuf::from(".hub-data"));
        assert_eq!(config.local.invoke_url, "http://localhost:9000");
        assert_eq!(
            config.redirect_uri("google"),
            "http://localhost:9000/auth/google/callback"
        );
        assert!(config.aws().is_err());
        assert!(config.return_urls.is_empty());
        assert!(!config.push, "push is off behind an http public URL");
        assert!(
            !config.require_session,
            "logins without a session are allowed"
        );
    }

    #[test]
    fn require_session_is_true_or_false() {
        let read = |value: &str| {
            Config::from_env(&Env::from_map([("HUB_REQUIRE_SESSION", value)]))
                .map(|config| config.require_session)
        };
        assert!(read("true").unwrap());
        assert!(read("TRUE").unwrap());
        assert!(!read("false").unwrap());
        let err = read("yes").unwrap_err().to_string();
        assert!(err.contains("HUB_REQUIRE_SESSION"), "{err}");
    }

    /// A public URL with a path (the hub behind a proxy under `/hub`) keeps it in every URL
    /// built from it.
    #[test]
    fn a_public_url_with_a_path_keeps_it() {
        let config = Config::from_env(&Env::from_map([(
            "HUB_PUBLIC_URL",
            "https://example.com/hub/",
        )]))
        .unwrap();
        assert_eq!(config.public_url, "https://example.com/hub");
        assert_eq!(
            config.redirect_uri("dropbox"),
            "https://example.com/hub/auth/dropbox/callback"
        );
    }

    #[test]
    fn push_follows_the_public_url_unless_set() {
        let push = |vars: &[(&str, &str)]| Config::from_env(&Env::from_map(vars.iter().copied()));
        let https = ("HUB_PUBLIC_URL", "https://hub.example");
        assert!(push(&[https]).unwrap().push);
        assert!(!push(&[https, ("HUB_PUSH", "off")]).unwrap().push);
        assert!(push(&[("HUB_PUSH", "ON")]).unwrap().push);
        let err = push(&[("HUB_PUSH", "yes")]).unwrap_err().to_string();
        assert!(err.contains("HUB_PUSH"), "{err}");
    }

    #[test]
    fn aws_mode_names_the_missing_variable() {
        let err = Config::from_env(&Env::from_map([
            ("HUB_BACKEND", "aws"),
            ("TABLE_NAME", "t"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("KMS_KEY_ID"), "{err}");
    }

    #[test]
    fn malformed_values_are_named() {
        let err = Config::from_env(&Env::from_map([("HUB_BACKEND", "cloud")])).unwrap_err();
        assert!(err.to_string().contains("HUB_BACKEND"));
        let err = Config::from_env(&Env::from_map([("HUB_PUBLIC_URL", "not a url")])).unwrap_err();
        assert!(err.to_string().contains("HUB_PUBLIC_URL"));
        let err = Config::from_env(&Env::from_map([(
            "HUB_ALLOWED_RETURN_URLS",
            "https://app.example/ok,//evil.net",
        )]))
        .unwrap_err();
        assert!(err.to_string().contains("HUB_ALLOWED_RETURN_URLS"), "{err}");
    }

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    #[test]
    fn events_are_off_without_a_webhook_url() {
        let config = Config::from_env(&Env::from_map([("HUB_WEBHOOK_SECRET", "garbage")])).unwrap();
        assert!(config.webhook.is_none());
    }

    #[test]
    fn webhook_settings_name_what_is_wrong() {
        let error = |vars: &[(&str, &str)]| {
            Config::from_env(&Env::from_map(vars.iter().copied()))
                .unwrap_err()
                .to_string()
        };
        let url = ("HUB_WEBHOOK_URL", "https://app.example/hooks");
        assert!(error(&[url]).contains("HUB_WEBHOOK_SECRET is required"));
        let malformed = error(&[url, ("HUB_WEBHOOK_SECRET", "whsec_!!")]);
        assert!(malformed.contains("HUB_WEBHOOK_SECRET"), "{malformed}");
        assert!(!malformed.contains("whsec_!!"), "{malformed}");
        assert!(error(&[
            ("HUB_WEBHOOK_URL", "not a url"),
            ("HUB_WEBHOOK_SECRET", SECRET)
        ])
        .contains("HUB_WEBHOOK_URL"));
        let aws = [
            ("HUB_BACKEND", "aws"),
            ("TABLE_NAME", "t"),
            ("KMS_KEY_ID", "k"),
            ("SYNC_QUEUE_URL", "q"),
            ("HUB_WEBHOOK_SECRET", SECRET),
        ];
        let mut plain = aws.to_vec();
        plain.push(("HUB_WEBHOOK_URL", "http://app.example/hooks"));
        plain.push(("EVENTS_QUEUE_URL", "e"));
        assert!(error(&plain).contains("must be https"));
        plain.push(("HUB_WEBHOOK_ALLOW_HTTP", "true"));
        assert!(Config::from_env(&Env::from_map(plain)).is_ok());
        let mut no_queue = aws.to_vec();
        no_queue.push(url);
        assert!(error(&no_queue).contains("EVENTS_QUEUE_URL"));
        let config =
            Config::from_env(&Env::from_map([url, ("HUB_WEBHOOK_SECRET", SECRET)])).unwrap();
        assert_eq!(config.webhook.unwrap().url, "https://app.example/hooks");
        assert!(
            error(&[("HUB_LOCAL_EVENT_RETRY_SCALE", "0")]).contains("HUB_LOCAL_EVENT_RETRY_SCALE")
        );
    }

    #[test]
    fn missing_api_key_is_an_error_only_where_needed() {
        let config =
            Config::from_env(&Env::from_map([("HUB_PUBLIC_URL", "https://hub.example/")])).unwrap();
        assert_eq!(config.public_url, "https://hub.example");
        assert!(config
            .api_key()
            .unwrap_err()
            .to_string()
            .contains("HUB_API_KEY"));
    }

    /// A valid value for each variable a function may require.
    fn value(var: &str) -> &'static str {
        match var {
            "HUB_BACKEND" => "aws",
            "HUB_PUBLIC_URL" => "https://hub.example/base",
            "HUB_WEBHOOK_URL" => "https://app.example/hooks",
            "HUB_WEBHOOK_SECRET" => "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "HUB_API_KEY" => "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
            _ => "configured",
        }
    }

    fn starts(function: &Function, vars: &[&str]) -> HubResult<()> {
        let env = Env::from_map(vars.iter().map(|var| (*var, value(var))));
        let config = Config::from_env(&env)?;
        function.check(&config)
    }

    /// `required_env` is exactly what the code requires at cold start in an `aws`
    /// deployment: with those variables alone each function starts, and without any one of
    /// those the code requires (all but the deployment's own, which the code defaults) it
    /// does not.
    #[test]
    fn each_functions_required_variables_are_exactly_what_its_cold_start_needs() {
        for function in crate::deployment::FUNCTIONS {
            let required = function.required_env();
            starts(function, &required)
                .unwrap_or_else(|e| panic!("{} with {required:?}: {e}", function.name));
            for missing in required.iter().filter(|var| {
                !crate::deployment::DEPLOYMENT_ENV
                    .iter()
                    .any(|(name, _)| name == *var)
            }) {
                let rest: Vec<&str> = required
                    .iter()
                    .copied()
                    .filter(|var| var != missing)
                    .collect();
                let error = starts(function, &rest)
                    .expect_err(&format!("{} starts without {missing}", function.name));
                assert!(
                    error.to_string().contains(missing),
                    "{}: {error}",
                    function.name
                );
            }
        }
    }
}

/// The settings of running the hub for a while: rotations, logs, metrics.
#[cfg(test)]
mod operations_tests;
