//! File content (docs/API.md, "File content"): what the hub's `content` function does with
//! a large Google Drive file, and how long the other providers' links take.
//!
//! - The release `content` binary, started as Lambda starts it against the Runtime API
//!   stand-in of [`crate::coldstart`], in `local` mode on a data directory shared with an
//!   in-process hub that connected a Google account at the testkit stand-in, synced it and
//!   made the link (`hub::content::locate`). Its one invocation is a function URL's `GET` of
//!   the link; its answer comes back streamed (a JSON prelude, 8 NUL bytes, the body), read
//!   here a chunk at a time, counted and checked against `hub_testkit::generated_byte`,
//!   never held. Throughput, and the process's memory: its `VmRSS` every 20 ms during the
//!   stream and its `VmHWM` at the end.
//! - The reference: the same file fetched from the same stand-in by a plain reqwest loop
//!   (`alt=media` with the account's token, chunks read and dropped).
//! - Microsoft, Dropbox and Box: `hub::content::locate` in process, to the provider's own
//!   link (the 302 of `GET /users/{id}/files/{file_id}/content`).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use http_body_util::BodyExt as _;
use hub::config::Env;
use hub::deadline::Deadline;
use hub::model::{SyncJob, SyncReason};
use hub::providers::http::RetryPolicy;
use hub::sync::SyncResult;
use hub::Hub;
use hub_testkit::{generated_byte, FakeProviders, FileSpec};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::coldstart::{self, RuntimeApi, PRELUDE_END, RESPONSE_MODE};
use crate::support::{self, note, percentile, Result, Summary};

/// The memory the hub's stream must stay under, whatever the file's size (the function's
/// memory is a setting of its own; the stream must not need more as files grow).
pub const RSS_TARGET_MB: f64 = 64.0;
/// The hub's stream against the plain fetch loop of the same bytes.
pub const THROUGHPUT_TARGET: f64 = 0.9;
/// How many bytes at each end of the body are checked one by one (in between, the first and
/// last byte of every chunk).
const CHECKED_ENDS: u64 = 64 << 10;

pub struct Options {
    pub sizes: Vec<u64>,
    pub runs: usize,
    pub redirect_calls: usize,
    pub bin_dir: PathBuf,
    pub events_dir: PathBuf,
    pub log_dir: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub runs_per_size: usize,
    pub rss_target_mb: f64,
    pub throughput_target: f64,
    pub streams: Vec<StreamResult>,
    pub redirects: Vec<RedirectResult>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StreamResult {
    pub size_bytes: u64,
    /// The hub's stream: bytes over the time from the event handed to the runtime to the
    /// last byte (MB = 10^6 bytes).
    pub hub_mb_s: Summary,
    /// The event handed to the runtime to the first byte of the body.
    pub hub_first_byte_ms: Summary,
    /// The plain fetch loop: bytes over the time from the request to the last byte.
    pub baseline_mb_s: Summary,
    /// Bytes over the time from the first byte of the body to the last: the stream's own
    /// throughput, without what comes before its first byte (for the hub, the invocation's
    /// link, account and token reads; for both, the connection to the stand-in).
    #[serde(default)]
    pub hub_body_mb_s: Summary,
    #[serde(default)]
    pub baseline_body_mb_s: Summary,
    /// The request to the first byte of the body, for the fetch loop.
    #[serde(default)]
    pub baseline_first_byte_ms: Summary,
    /// The content process's `VmHWM` at the end of each stream (MiB).
    pub peak_rss_mb: Summary,
    /// The largest `VmRSS` sampled during each stream (MiB).
    pub sampled_rss_mb: Summary,
    pub rss_samples: usize,
    pub failed_runs: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RedirectResult {
    pub provider: String,
    pub ms: Summary,
    /// Nearest rank, as [`Summary`]'s percentiles.
    pub p95_ms: f64,
    /// Where the link led (its scheme, host and first path segment: the rest is the link's
    /// secret), to show it is the provider's own.
    pub sample_link: String,
}

pub async fn run(options: Options) -> Result<Results> {
    let loadavg_before = support::loadavg();
    let binary = options.bin_dir.join("content");
    if !binary.exists() {
        return Err(format!(
            "{}: missing (cargo build --release -p content)",
            binary.display()
        )
        .into());
    }
    let event = std::fs::read(options.events_dir.join("content-link.json"))?;
    let providers = FakeProviders::start().await;
    let user = hub_testkit::DEFAULT_GOOGLE_USER;
    for &size in &options.sizes {
        let mut spec = FileSpec::new(file_id(size), format!("{}.bin", label(size)));
        spec.mime_type = "application/octet-stream".into();
        providers.add_file("google", user, spec);
        providers.set_google_generated_content(user, &file_id(size), size);
    }
    let dir = tempfile::tempdir()?;
    let env = hub_env(&providers, dir.path().to_path_buf());
    let hub = Hub::build(&Env::from_map(env.clone()), RetryPolicy::default()).await?;
    let account = connect_and_sync(&hub, "google").await?;
    let access_token = access_token(&hub, &account).await?;
    let google_api = var(&env, "GOOGLE_API_URL")?;

    let mut streams = Vec::new();
    for &size in &options.sizes {
        let mut hub_runs = Vec::new();
        let mut baseline_runs = Vec::new();
        let mut failed_runs = 0;
        for run in 0..options.runs {
            let location =
                hub::content::locate(&hub, &account, &file_id(size), None, deadline()).await?;
            let token = location
                .url
                .rsplit_once("/content/")
                .map(|(_, token)| token.to_string())
                .ok_or("the link is not the hub's")?;
            let log = options
                .log_dir
                .join(format!("content-{}-{run}.log", label(size)));
            match stream_once(&binary, &env, &link_event(&event, &token)?, size, &log).await {
                Ok(sample) => hub_runs.push(sample),
                Err(e) => {
                    failed_runs += 1;
                    note("content", format!("{} run {run} failed: {e}", label(size)));
                }
            }
            let url = format!("{google_api}/drive/v3/files/{}", file_id(size));
            baseline_runs.push(fetch_loop(&url, &access_token, size).await?);
        }
        let result = StreamResult {
            size_bytes: size,
            hub_mb_s: Summary::of(&hub_runs.iter().map(|s| s.mb_s).collect::<Vec<_>>()),
            hub_first_byte_ms: Summary::of(
                &hub_runs.iter().map(|s| s.first_byte_ms).collect::<Vec<_>>(),
            ),
            baseline_mb_s: Summary::of(&baseline_runs.iter().map(|s| s.mb_s).collect::<Vec<_>>()),
            hub_body_mb_s: Summary::of(&hub_runs.iter().map(|s| s.body_mb_s).collect::<Vec<_>>()),
            baseline_body_mb_s: Summary::of(
                &baseline_runs
                    .iter()
                    .map(|s| s.body_mb_s)
                    .collect::<Vec<_>>(),
            ),
            baseline_first_byte_ms: Summary::of(
                &baseline_runs
                    .iter()
                    .map(|s| s.first_byte_ms)
                    .collect::<Vec<_>>(),
            ),
            peak_rss_mb: Summary::of(&hub_runs.iter().map(|s| s.peak_mb).collect::<Vec<_>>()),
            sampled_rss_mb: Summary::of(&hub_runs.iter().map(|s| s.sampled_mb).collect::<Vec<_>>()),
            rss_samples: hub_runs.iter().map(|s| s.samples).sum(),
            failed_runs,
        };
        note(
            "content",
            format!(
                "{}: hub {:.0} MB/s, fetch loop {:.0} MB/s (ratio {:.2}; body alone {:.0} \
                 against {:.0} MB/s, ratio {:.2}; first byte {:.1} against {:.1} ms), peak RSS \
                 {:.1} MB (sampled max {:.1} MB), {} failed",
                label(size),
                result.hub_mb_s.median,
                result.baseline_mb_s.median,
                result.hub_mb_s.median / result.baseline_mb_s.median,
                result.hub_body_mb_s.median,
                result.baseline_body_mb_s.median,
                result.hub_body_mb_s.median / result.baseline_body_mb_s.median,
                result.hub_first_byte_ms.median,
                result.baseline_first_byte_ms.median,
                result.peak_rss_mb.max,
                result.sampled_rss_mb.max,
                failed_runs
            ),
        );
        streams.push(result);
    }
    let redirects = redirects(&providers, options.redirect_calls).await?;
    Ok(Results {
        loadavg_before,
        loadavg_after: support::loadavg(),
        runs_per_size: options.runs,
        rss_target_mb: RSS_TARGET_MB,
        throughput_target: THROUGHPUT_TARGET,
        streams,
        redirects,
    })
}

fn file_id(size: u64) -> String {
    format!("bench-{size}")
}

/// `10MB`, `1GB`: sizes in decimal units, as the knob takes them.
pub fn label(size: u64) -> String {
    match size {
        s if s >= 1_000_000_000 && s % 1_000_000_000 == 0 => format!("{}GB", s / 1_000_000_000),
        s if s >= 1_000_000 && s % 1_000_000 == 0 => format!("{}MB", s / 1_000_000),
        s => format!("{s}B"),
    }
}

/// `10MB`, `1GB`, `4096` (decimal units, as [`label`] writes them).
pub fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim().to_ascii_uppercase().replace('_', "");
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text.as_str(), ""),
    };
    let scale = match unit {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("unknown size unit '{other}' (B, KB, MB or GB)").into()),
    };
    Ok(number
        .parse::<u64>()
        .map_err(|_| format!("'{text}' is not a size"))?
        * scale)
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

fn var(env: &[(String, String)], name: &str) -> Result<String> {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| format!("no {name}").into())
}

/// The local hub's variables, every stand-in configured, on `data_dir`.
fn hub_env(providers: &FakeProviders, data_dir: PathBuf) -> Vec<(String, String)> {
    let mut env = crate::moto::base_env();
    env.extend(providers.env_vars());
    env.extend(providers.dropbox_env_vars());
    env.extend(providers.box_env_vars());
    env.push(("HUB_BACKEND".into(), "local".into()));
    env.push(("HUB_DATA_DIR".into(), data_dir.display().to_string()));
    env
}

async fn connect_and_sync(hub: &Hub, provider: &str) -> Result<String> {
    let account = crate::worker::connect_account(hub, provider).await?.id;
    let job = SyncJob {
        account_id: account.clone(),
        provider: provider.into(),
        reason: SyncReason::Manual,
        requested_at: Utc::now(),
        stalled_requeues: 0,
    };
    match hub::sync::run(hub, &job, hub::sync::fresh_invocation()).await? {
        SyncResult::Synced { .. } => Ok(account),
        other => Err(format!("the {provider} sync did not finish: {other:?}").into()),
    }
}

async fn access_token(hub: &Hub, account: &str) -> Result<String> {
    let stored = hub
        .store
        .get_account(account)
        .await?
        .ok_or("the new account is not stored")?;
    let tokens = hub::tokens::open(hub.cipher.as_ref(), &stored).await?;
    Ok(tokens.access_token.expose_secret().to_string())
}

/// The sample event (a function URL's `GET`) for the link of `token`, the whole file (the
/// sample asks for a range).
fn link_event(sample: &[u8], token: &str) -> Result<Vec<u8>> {
    let mut event: serde_json::Value = serde_json::from_slice(sample)?;
    let path = format!("/content/{token}");
    event["rawPath"] = path.clone().into();
    event["requestContext"]["http"]["path"] = path.into();
    if let Some(headers) = event["headers"].as_object_mut() {
        headers.remove("range");
    }
    Ok(serde_json::to_vec(&event)?)
}

struct StreamSample {
    mb_s: f64,
    body_mb_s: f64,
    first_byte_ms: f64,
    peak_mb: f64,
    sampled_mb: f64,
    samples: usize,
}

/// What the streaming `/response` handler saw.
#[derive(Default)]
struct Received {
    prelude: Option<serde_json::Value>,
    body_bytes: u64,
    first_byte: Option<Instant>,
    last_byte: Option<Instant>,
    /// The first byte that differed from the generated file's, or the error trailer.
    fault: Option<String>,
}

/// Reads a streamed answer as it comes: the prelude up to the 8 NULs, then the body counted
/// and checked, nothing of it kept.
async fn read_streamed(headers: HeaderMap, body: Body, received: Arc<Mutex<Received>>) {
    let streamed = headers
        .get(RESPONSE_MODE)
        .is_some_and(|mode| mode.as_bytes().eq_ignore_ascii_case(b"streaming"));
    let mut state = Received::default();
    if !streamed {
        state.fault = Some("the answer was not streamed".into());
    }
    let mut prelude = Vec::new();
    let mut in_body = false;
    let mut offset = 0u64;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                state.fault.get_or_insert(format!("the stream broke: {e}"));
                break;
            }
        };
        let frame = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                // Trailers: the runtime reports an error that struck mid-stream there.
                if let Some(trailers) = frame.trailers_ref() {
                    if let Some(kind) = trailers.get("lambda-runtime-function-error-type") {
                        state.fault.get_or_insert(format!(
                            "the function failed mid-stream: {}",
                            String::from_utf8_lossy(kind.as_bytes())
                        ));
                    }
                }
                continue;
            }
        };
        let mut data: &[u8] = &frame;
        if !in_body {
            prelude.extend_from_slice(data);
            let Some(at) = prelude
                .windows(PRELUDE_END.len())
                .position(|w| w == PRELUDE_END)
            else {
                continue;
            };
            let start = at + PRELUDE_END.len();
            state.prelude = serde_json::from_slice(&prelude[..at]).ok();
            in_body = true;
            let rest = prelude[start..].to_vec();
            check(&rest, offset, &mut state);
            offset += rest.len() as u64;
            data = &[];
        }
        check(data, offset, &mut state);
        offset += data.len() as u64;
    }
    state.body_bytes = offset;
    *received.lock().expect("received lock") = state;
}

/// Counts and checks one piece of the body at `offset`: every byte near the file's start,
/// else its first and last byte (a misplaced or repeated piece shows there, the pattern
/// being 251 long).
fn check(data: &[u8], offset: u64, state: &mut Received) {
    if data.is_empty() {
        return;
    }
    let now = Instant::now();
    state.first_byte.get_or_insert(now);
    state.last_byte = Some(now);
    if state.fault.is_some() {
        return;
    }
    let last = data.len() - 1;
    let positions: Box<dyn Iterator<Item = usize>> = if offset < CHECKED_ENDS {
        Box::new(0..data.len())
    } else {
        Box::new([0, last].into_iter())
    };
    for i in positions {
        let at = offset + i as u64;
        if data[i] != generated_byte(at) {
            state.fault = Some(format!(
                "byte {at} is {}, not {}",
                data[i],
                generated_byte(at)
            ));
            return;
        }
    }
}

/// One cold `content` process serving the whole file of `size` bytes.
async fn stream_once(
    binary: &std::path::Path,
    env: &[(String, String)],
    event: &[u8],
    size: u64,
    log: &std::path::Path,
) -> Result<StreamSample> {
    let api = Arc::new(RuntimeApi::new(event.to_vec()));
    let received = Arc::new(Mutex::new(Received::default()));
    let sink = received.clone();
    let done = api.clone();
    let handler = post(move |headers: HeaderMap, body: Body| async move {
        read_streamed(headers, body, sink).await;
        done.finish(Ok(String::new()));
        StatusCode::ACCEPTED
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = api.clone().router_with(handler);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let log = std::fs::File::create(log)?;
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .envs(coldstart::lambda_vars("content"))
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("the function exited at once")?.to_string();

    // VmRSS every 20 ms while the process lives: the stream's memory as it goes.
    let sampled_kib = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (pid, sampled_kib, samples) = (pid.clone(), sampled_kib.clone(), samples.clone());
        tokio::spawn(async move {
            loop {
                if let Some(kib) = support::proc_status_kib(&pid, "VmRSS") {
                    sampled_kib.fetch_max(kib, Ordering::Relaxed);
                    samples.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let outcome = tokio::select! {
        _ = api.answered.notified() => Ok(()),
        status = child.wait() => Err(format!("the function exited before answering ({status:?})")),
        _ = tokio::time::sleep(Duration::from_secs(600)) => Err("no answer within 600 s".to_string()),
    };
    sampler.abort();
    // The process is idle in its second `next` poll now.
    let peak_kib = support::proc_status_kib(&pid, "VmHWM").unwrap_or(0);
    let _ = child.kill().await;
    server.abort();
    outcome?;

    let handed = api
        .timeline
        .lock()
        .expect("timeline lock")
        .first_next
        .ok_or("the runtime answered without polling")?;
    if let Some(error) = api.timeline.lock().expect("timeline lock").error.clone() {
        return Err(format!("the function reported an error: {error}").into());
    }
    let received = std::mem::take(&mut *received.lock().expect("received lock"));
    if let Some(fault) = received.fault {
        return Err(fault.into());
    }
    let status = received
        .prelude
        .as_ref()
        .and_then(|prelude| prelude["statusCode"].as_u64());
    if status != Some(200) || received.body_bytes != size {
        return Err(format!(
            "the answer was {status:?} with {} of {size} bytes",
            received.body_bytes
        )
        .into());
    }
    let (Some(first), Some(last)) = (received.first_byte, received.last_byte) else {
        return Err("no body".into());
    };
    Ok(StreamSample {
        mb_s: size as f64 / 1e6 / (last - handed).as_secs_f64(),
        body_mb_s: size as f64 / 1e6 / (last - first).as_secs_f64(),
        first_byte_ms: support::ms(first - handed),
        peak_mb: peak_kib as f64 / 1024.0,
        sampled_mb: sampled_kib.load(Ordering::Relaxed) as f64 / 1024.0,
        samples: samples.load(Ordering::Relaxed) as usize,
    })
}

/// What one fetch loop measured.
struct FetchSample {
    mb_s: f64,
    body_mb_s: f64,
    first_byte_ms: f64,
}

/// The reference: the file's `alt=media` read a chunk at a time and dropped; MB/s from the
/// request to the last byte, and from the first byte to the last.
async fn fetch_loop(url: &str, access_token: &str, size: u64) -> Result<FetchSample> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut answer = client
        .get(url)
        .query(&[("alt", "media"), ("supportsAllDrives", "true")])
        .bearer_auth(access_token)
        .send()
        .await?
        .error_for_status()?;
    let mut state = Received::default();
    let mut offset = 0u64;
    while let Some(chunk) = answer.chunk().await? {
        check(&chunk, offset, &mut state);
        offset += chunk.len() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    let (Some(first), Some(last)) = (state.first_byte, state.last_byte) else {
        return Err("the fetch loop read no byte".into());
    };
    if let Some(fault) = state.fault {
        return Err(format!("the fetch loop read a wrong byte: {fault}").into());
    }
    if offset != size {
        return Err(format!("the fetch loop read {offset} of {size} bytes").into());
    }
    Ok(FetchSample {
        mb_s: size as f64 / 1e6 / seconds,
        body_mb_s: size as f64 / 1e6 / (last - first).as_secs_f64(),
        first_byte_ms: support::ms(first - started),
    })
}

/// `locate` of a small file at each provider with links of its own, `calls` times each.
async fn redirects(providers: &FakeProviders, calls: usize) -> Result<Vec<RedirectResult>> {
    let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let ms_user = hub_testkit::DEFAULT_MICROSOFT_USER;
    providers.add_file("onedrive", ms_user, FileSpec::new("BENCH", "data.bin"));
    providers.set_file_bytes("onedrive", ms_user, "BENCH", &bytes);
    let dropbox_user = hub_testkit::DEFAULT_DROPBOX_USER;
    providers.add_file(
        "dropbox",
        dropbox_user,
        FileSpec::new("id:bench", "data.bin"),
    );
    providers.set_file_bytes("dropbox", dropbox_user, "id:bench", &bytes);
    let box_user = hub_testkit::DEFAULT_BOX_USER;
    let box_file = providers.box_add_file(box_user, "data.bin", hub_testkit::BOX_ROOT_ID);
    providers.set_file_bytes("box", box_user, &box_file, &bytes);

    let dir = tempfile::tempdir()?;
    let env = hub_env(providers, dir.path().to_path_buf());
    let hub = Hub::build(&Env::from_map(env), RetryPolicy::default()).await?;
    let mut results = Vec::new();
    for (provider, file) in [
        ("onedrive", "BENCH".to_string()),
        ("dropbox", "id:bench".to_string()),
        ("box", format!("file_{box_file}")),
    ] {
        let account = connect_and_sync(&hub, provider).await?;
        let mut times = Vec::new();
        let mut sample_link = String::new();
        for _ in 0..calls {
            let started = Instant::now();
            let location = hub::content::locate(&hub, &account, &file, None, deadline()).await?;
            times.push(support::ms(started.elapsed()));
            if location.streamed_by_hub {
                return Err(format!("{provider}'s link is the hub's, not its own").into());
            }
            sample_link = link_shape(&location.url);
        }
        let ms = Summary::of(&times);
        let p95_ms = percentile(&times, 0.95);
        note(
            "content",
            format!(
                "{provider}: link in {:.1} ms median, {p95_ms:.1} ms p95",
                ms.median
            ),
        );
        results.push(RedirectResult {
            provider: provider.into(),
            ms,
            p95_ms,
            sample_link,
        });
    }
    Ok(results)
}

/// A pre-authenticated link without what makes it work: its origin and first path segment.
fn link_shape(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(url) => {
            let first = url.path_segments().and_then(|mut s| s.next()).unwrap_or("");
            format!("{}/{first}/…", url.origin().ascii_serialization())
        }
        Err(_) => "(not a URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_write_in_decimal_units() {
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size(" 1gb ").unwrap(), 1_000_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("3TB").is_err());
        assert_eq!(label(100_000_000), "100MB");
        assert_eq!(label(1_000_000_000), "1GB");
        assert_eq!(label(1234), "1234B");
    }

    #[test]
    fn a_links_secret_is_left_out() {
        let shape = link_shape("http://127.0.0.1:1/graph-download/secret?sig=x");
        assert_eq!(shape, "http://127.0.0.1:1/graph-download/…");
    }

    #[test]
    fn a_misplaced_piece_is_seen() {
        let piece: Vec<u8> = (0..1000u64)
            .map(|i| generated_byte(CHECKED_ENDS + i))
            .collect();
        let mut state = Received::default();
        check(&piece, CHECKED_ENDS, &mut state);
        assert!(state.fault.is_none());
        check(&piece, CHECKED_ENDS + 1, &mut state);
        assert!(state.fault.is_some());
    }
}
