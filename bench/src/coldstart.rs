//! Cold start: each function's release binary started as Lambda starts it, against a local
//! stand-in of the Lambda Runtime API, with the hub's environment in `aws` mode pointed at
//! moto, so the configuration is read and the AWS SDK clients are built as in production.
//!
//! Per run: spawn → first `GET .../invocation/next` (init), → first `POST .../response`
//! (first answer), and the process's peak RSS (`VmHWM`) read right after that answer, while
//! the runtime is blocked on its second `next` poll.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use hub_testkit::webhook_receiver::WebhookReceiver;

use crate::moto::{self, Resources};
use crate::support::{self, note, Result, Summary};

/// Each function and the sample event of `events/` it answers on its first invocation.
pub const FUNCTIONS: [(&str, &str); 7] = [
    ("auth", "auth-login.json"),
    ("users", "config.json"),
    ("sync-fanout", "sync-schedule.json"),
    ("sync-worker", "sync-worker-batch.json"),
    ("provider-webhooks", "provider-webhooks-challenge.json"),
    ("app-webhooks", "app-webhooks-batch.json"),
    ("content", "content-link.json"),
];

/// A function whose sample event's right answer is an HTTP error: `content`'s sample names
/// a link never issued, and its answer is docs/API.md's 404 `not_found` after the store was
/// read (the whole cold path a real link takes before the provider: configuration, clients,
/// the link's lookup). A real link would need an account connected on moto with the
/// provider's stand-in reachable from the child, for a cold start that then also measures
/// the stand-in; `hub-bench content` measures the stream itself.
const EXPECTED_STATUS: [(&str, u64); 1] = [("content", 404)];

/// The Standard Webhooks secret `app-webhooks` signs with (any valid one does).
const WEBHOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// Published figures for a hello-world Rust function on arm64 (provided.al2023) in
/// maxday's lambda-perf: about 14 ms of init and 15 MB of memory.
pub const REFERENCE_INIT_MS: f64 = 14.0;
pub const REFERENCE_MEMORY_MB: f64 = 15.0;

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub runs_per_function: usize,
    pub arch: String,
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub functions: Vec<FunctionResult>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FunctionResult {
    pub function: String,
    pub event: String,
    pub binary_bytes: u64,
    /// Spawn to the first `next` poll.
    pub init_ms: Summary,
    /// Spawn to the first response.
    pub first_answer_ms: Summary,
    /// First `next` to the first response: the handler on a cold process.
    pub first_invoke_ms: Summary,
    pub peak_rss_mb: Summary,
    pub failed_runs: usize,
    /// The start of the first run's answer, to show the event was really handled.
    pub sample_answer: String,
}

pub struct Options {
    pub bin_dir: PathBuf,
    pub events_dir: PathBuf,
    pub runs: usize,
    pub log_dir: PathBuf,
}

pub async fn run(options: Options) -> Result<Results> {
    let endpoint = moto::endpoint()?;
    let sdk = moto::sdk_config(&endpoint).await;
    let resources = Resources::create(&sdk, "bench-cold").await?;
    // `app-webhooks` delivers its sample event here; it stops at cold start without a URL.
    let receiver = WebhookReceiver::start(WEBHOOK_SECRET).await;
    let loadavg_before = support::loadavg();
    let mut setups = Vec::new();
    for (function, event_file) in FUNCTIONS {
        let binary = options.bin_dir.join(function);
        let binary_bytes = std::fs::metadata(&binary)
            .map_err(|e| {
                format!(
                    "{}: {e} (build with cargo build --release)",
                    binary.display()
                )
            })?
            .len();
        setups.push(Setup {
            function,
            event_file,
            binary,
            binary_bytes,
            event: std::fs::read(options.events_dir.join(event_file))?,
            env: lambda_env(function, &resources, &endpoint, &receiver.url()),
            log: options.log_dir.join(format!("coldstart-{function}.log")),
            samples: Vec::new(),
            failed_runs: 0,
        });
    }
    // Round-robin over the functions, so a burst of load elsewhere on the machine spreads
    // over all of them instead of landing on one.
    for run in 0..options.runs {
        for setup in &mut setups {
            match cold_start(&setup.binary, &setup.env, &setup.event, &setup.log).await {
                Ok(sample) => setup.samples.push(sample),
                Err(e) => {
                    setup.failed_runs += 1;
                    let (function, log) = (setup.function, setup.log.display());
                    note(
                        "coldstart",
                        format!("{function} run {run} failed: {e} (log: {log})"),
                    );
                }
            }
        }
    }
    let functions = setups.into_iter().map(Setup::summarise).collect();
    Ok(Results {
        runs_per_function: options.runs,
        arch: std::env::consts::ARCH.to_string(),
        loadavg_before,
        loadavg_after: support::loadavg(),
        functions,
    })
}

/// What Lambda sets for a `provided.al2023` function, plus the hub's own variables and
/// those only one function needs (as the template sets them: Dropbox for the providers'
/// webhooks, the webhook URL and the events queue for the delivery).
fn lambda_env(
    function: &str,
    resources: &Resources,
    endpoint: &str,
    webhook_url: &str,
) -> Vec<(String, String)> {
    let mut env = resources.hub_env(endpoint);
    let own: Vec<(&str, &str)> = match function {
        // The sample event is Dropbox's challenge, which only a configured Dropbox answers.
        "provider-webhooks" => vec![
            ("DROPBOX_CLIENT_ID", hub_testkit::DROPBOX_CLIENT_ID),
            ("DROPBOX_CLIENT_SECRET", hub_testkit::DROPBOX_CLIENT_SECRET),
            ("HUB_PUSH", "on"),
        ],
        // The receiver is plain http on 127.0.0.1; the events queue is the benchmark's queue
        // (the delivery only touches it when an event fails).
        "app-webhooks" => vec![
            ("HUB_WEBHOOK_URL", webhook_url),
            ("HUB_WEBHOOK_ALLOW_HTTP", "true"),
            ("HUB_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("EVENTS_QUEUE_URL", &resources.queue_url),
        ],
        _ => Vec::new(),
    };
    env.extend(own.into_iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env.extend(lambda_vars(function));
    env
}

/// The variables Lambda itself sets for a `provided.al2023` function.
pub(crate) fn lambda_vars(function: &str) -> Vec<(String, String)> {
    let lambda = [
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/11/24/[$LATEST]0123456789abcdef".into(),
        ),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_SESSION_TOKEN", "testing".into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("_HANDLER", "bootstrap".into()),
    ];
    lambda
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

struct Sample {
    init_ms: f64,
    first_answer_ms: f64,
    peak_rss_kib: u64,
    answer: String,
}

/// One function under test and its measurements so far.
struct Setup {
    function: &'static str,
    event_file: &'static str,
    binary: PathBuf,
    binary_bytes: u64,
    event: Vec<u8>,
    env: Vec<(String, String)>,
    log: PathBuf,
    samples: Vec<Sample>,
    failed_runs: usize,
}

impl Setup {
    fn summarise(self) -> FunctionResult {
        let pick =
            |f: fn(&Sample) -> f64| Summary::of(&self.samples.iter().map(f).collect::<Vec<_>>());
        let result = FunctionResult {
            function: self.function.to_string(),
            event: self.event_file.to_string(),
            binary_bytes: self.binary_bytes,
            init_ms: pick(|s| s.init_ms),
            first_answer_ms: pick(|s| s.first_answer_ms),
            first_invoke_ms: pick(|s| s.first_answer_ms - s.init_ms),
            peak_rss_mb: pick(|s| s.peak_rss_kib as f64 / 1024.0),
            failed_runs: self.failed_runs,
            sample_answer: self
                .samples
                .first()
                .map(|s| s.answer.chars().take(160).collect())
                .unwrap_or_default(),
        };
        note(
            "coldstart",
            format!(
                "{}: init median {:.1} ms, first answer median {:.1} ms, peak RSS median {:.1} MB \
                 ({} runs, {} failed)",
                result.function,
                result.init_ms.median,
                result.first_answer_ms.median,
                result.peak_rss_mb.median,
                result.init_ms.count,
                result.failed_runs
            ),
        );
        result
    }
}

async fn cold_start(
    binary: &Path,
    env: &[(String, String)],
    event: &[u8],
    log: &Path,
) -> Result<Sample> {
    let api = Arc::new(RuntimeApi::new(event.to_vec()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = api.clone().router();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let log = File::create(log)?;
    let spawned = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("the function exited at once")?.to_string();

    let outcome = tokio::select! {
        _ = api.answered.notified() => Ok(()),
        status = child.wait() => Err(format!("the function exited before answering ({status:?})")),
        _ = tokio::time::sleep(Duration::from_secs(30)) => Err("no answer within 30 s".to_string()),
    };
    // Read before the kill: the process is idle in its second `next` poll now.
    let peak_rss_kib = support::proc_status_kib(&pid, "VmHWM").unwrap_or(0);
    let _ = child.kill().await;
    server.abort();
    outcome?;

    let timeline = api.timeline.lock().expect("timeline lock").clone();
    if let Some(error) = timeline.error {
        return Err(format!("the function reported an error: {error}").into());
    }
    let (Some(next_at), Some((answered_at, answer))) = (timeline.first_next, timeline.response)
    else {
        return Err("the runtime answered without polling".into());
    };
    refused(function_of(binary), &answer)?;
    Ok(Sample {
        init_ms: support::ms(next_at - spawned),
        first_answer_ms: support::ms(answered_at - spawned),
        peak_rss_kib,
        answer,
    })
}

/// An answer that says the event was not handled (an HTTP error, or an SQS batch with failed
/// items) fails the run: a cold start that ends in an error path measures the wrong thing.
fn refused(function: &str, answer: &str) -> Result<()> {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(answer) else {
        return Ok(());
    };
    let expected = EXPECTED_STATUS
        .iter()
        .find(|(name, _)| *name == function)
        .map(|(_, status)| *status);
    if let Some(want) = expected {
        return match json["statusCode"].as_u64() {
            Some(status) if status == want => Ok(()),
            status => Err(format!("the function answered {status:?}, not {want}: {answer}").into()),
        };
    }
    if let Some(status) = json["statusCode"].as_u64().filter(|s| *s >= 400) {
        return Err(format!("the function answered HTTP {status}: {answer}").into());
    }
    if json["batchItemFailures"]
        .as_array()
        .is_some_and(|failed| !failed.is_empty())
    {
        return Err(format!("the function failed items of its batch: {answer}").into());
    }
    Ok(())
}

/// The function a binary path names (its file name).
fn function_of(binary: &Path) -> &str {
    binary
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default()
}

/// A stand-in of the Lambda Runtime API that hands out one event and records when the
/// runtime asked for it and when it answered.
pub(crate) struct RuntimeApi {
    event: Bytes,
    request_id: String,
    pub(crate) timeline: Mutex<Timeline>,
    pub(crate) answered: Notify,
}

#[derive(Clone, Default)]
pub(crate) struct Timeline {
    pub(crate) first_next: Option<Instant>,
    pub(crate) response: Option<(Instant, String)>,
    pub(crate) error: Option<String>,
}

/// What a streaming function's runtime sends before the body (Lambda's response streaming
/// for function URLs): the answer's JSON prelude (status, headers, cookies), then 8 NUL bytes.
pub(crate) const PRELUDE_END: [u8; 8] = [0; 8];

/// The header a streaming function's runtime sends with its `/response`.
pub(crate) const RESPONSE_MODE: &str = "lambda-runtime-function-response-mode";

impl RuntimeApi {
    pub(crate) fn new(event: Vec<u8>) -> RuntimeApi {
        RuntimeApi {
            event: Bytes::from(event),
            request_id: uuid::Uuid::new_v4().to_string(),
            timeline: Mutex::new(Timeline::default()),
            answered: Notify::new(),
        }
    }

    fn router(self: Arc<Self>) -> Router {
        self.router_with(post(response))
    }

    /// The Runtime API with `response` answering `POST .../invocation/{id}/response`.
    pub(crate) fn router_with(
        self: Arc<Self>,
        response: axum::routing::MethodRouter<Arc<RuntimeApi>>,
    ) -> Router {
        Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", response)
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(error))
            .with_state(self)
    }

    pub(crate) fn finish(&self, outcome: std::result::Result<String, String>) {
        {
            let mut timeline = self.timeline.lock().expect("timeline lock");
            match outcome {
                Ok(body) => timeline.response = Some((Instant::now(), body)),
                Err(body) => timeline.error = Some(body),
            }
        }
        // notify_one keeps the wake-up if nobody waits yet.
        self.answered.notify_one();
    }
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> axum::response::Response {
    let first = {
        let mut timeline = api.timeline.lock().expect("timeline lock");
        let first = timeline.first_next.is_none();
        if first {
            timeline.first_next = Some(Instant::now());
        }
        first
    };
    if !first {
        // One invocation per process: later polls wait until the process is killed, as
        // Lambda freezes an idle environment.
        std::future::pending::<()>().await;
    }
    let deadline = chrono::Utc::now().timestamp_millis() + 900_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", api.request_id.clone());
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bench".into(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".into(),
    );
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, api.event.clone()).into_response()
}

/// A buffered answer is recorded as it is; a streamed one (the function URL's prelude, the
/// NULs, then the body) as the prelude with the body put in as `body`, the shape of a
/// buffered function URL answer, so that [`refused`] reads both alike.
async fn response(
    State(api): State<Arc<RuntimeApi>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let streamed = headers
        .get(RESPONSE_MODE)
        .is_some_and(|mode| mode.as_bytes().eq_ignore_ascii_case(b"streaming"));
    let split = body
        .windows(PRELUDE_END.len())
        .position(|window| window == PRELUDE_END);
    let answer = match (streamed, split) {
        (true, Some(at)) => {
            let rest = &body[at + PRELUDE_END.len()..];
            match serde_json::from_slice::<serde_json::Value>(&body[..at]) {
                Ok(mut prelude) => {
                    prelude["body"] = String::from_utf8_lossy(rest).into_owned().into();
                    prelude.to_string()
                }
                Err(_) => String::from_utf8_lossy(&body).into_owned(),
            }
        }
        _ => String::from_utf8_lossy(&body).into_owned(),
    };
    api.finish(Ok(answer));
    StatusCode::ACCEPTED
}

async fn error(State(api): State<Arc<RuntimeApi>>, body: Bytes) -> StatusCode {
    api.finish(Err(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_content_samples_404_counts_as_handled() {
        let not_found = r#"{"statusCode":404,"headers":{},"body":"{\"error\":\"not_found\"}"}"#;
        assert!(refused("content", not_found).is_ok());
        assert!(refused("users", not_found).is_err());
        assert!(refused("content", r#"{"statusCode":200}"#).is_err());
        assert!(refused("users", r#"{"statusCode":200}"#).is_ok());
    }
}
