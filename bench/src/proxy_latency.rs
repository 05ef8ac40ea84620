//! The proxy's added latency (docs/API.md, "Proxy"): `GET /users/{id}/proxy/drive/v3/files/{id}`
//! on the release `users` binary under `cargo lambda watch`, against the same request sent
//! straight to the Google stand-in with the account's token, by the same client.
//!
//! - Single requests: each round one direct call, one through the hub, one of
//!   `hub::proxy::forward` in process (the hub's own work, without the emulator's HTTP to
//!   Lambda event to runtime round trip), one after the other.
//! - Concurrent: rounds of `concurrency` requests at once straight to the stand-in, then the
//!   same through the hub.
//!
//! Added latency is the hub's percentile less the direct one's, at the median and p99.
//! `cargo lambda watch` runs one instance per function unless told otherwise
//! (`--concurrency`, default 1), each instance serving one invocation at a time, as a Lambda
//! instance does; Lambda itself starts an instance per concurrent request. So the watch is
//! started with as many instances as requests in flight (`--instances`, default the
//! concurrency), warmed by concurrent rounds before anything is timed; with 1 instance the
//! concurrent figures are the emulator's queue, not the hub's work.
//!
//! The account is connected by an in-process hub on the local backend whose data directory
//! the watched functions share (as [`crate::content`] shares it with its function).

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hub::config::Env;
use hub::deadline::Deadline;
use hub::providers::http::RetryPolicy;
use hub::proxy::{Method, ProxyRequest};
use hub::Hub;
use hub_testkit::{FakeProviders, FileSpec};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};

use crate::support::{self, note, percentile, Result, Summary};

/// Targets of the issue: the median and p99 of the added latency, on loopback.
pub const MEDIAN_TARGET_MS: f64 = 5.0;
pub const P99_TARGET_MS: f64 = 20.0;
const FILE_ID: &str = "bench-proxy";
const API_KEY: &str = "bench-api-key";

pub struct Options {
    pub runs: usize,
    pub concurrency: usize,
    pub rounds: usize,
    /// `cargo lambda watch --concurrency`: instances of `users` it may start.
    pub instances: usize,
    pub workspace: PathBuf,
    pub log_dir: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub instances: usize,
    pub median_target_ms: f64,
    pub p99_target_ms: f64,
    pub single: Latencies,
    pub concurrent: Latencies,
}

/// One way of sending the requests, the direct call and the hub's side by side.
#[derive(Debug, Serialize, Deserialize)]
pub struct Latencies {
    /// Requests in flight at once.
    pub concurrency: usize,
    pub direct: Percentiles,
    pub hub: Percentiles,
    /// `hub::proxy::forward` in process (single requests only).
    pub in_process: Option<Percentiles>,
    pub failed: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: usize,
    pub median_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(ms: &[f64]) -> Percentiles {
        Percentiles {
            count: ms.len(),
            median_ms: percentile(ms, 0.5),
            p99_ms: percentile(ms, 0.99),
            max_ms: Summary::of(ms).max,
        }
    }
}

impl Latencies {
    /// The hub's median and p99 less the direct call's.
    pub fn added(&self) -> (f64, f64) {
        (
            self.hub.median_ms - self.direct.median_ms,
            self.hub.p99_ms - self.direct.p99_ms,
        )
    }
}

/// `cargo lambda watch` of the workspace, stopped with its process group when dropped.
struct Watch {
    child: Child,
    url: String,
}

impl Drop for Watch {
    fn drop(&mut self) {
        // The watch and the functions it started share its process group (its own).
        let _ = Command::new("kill")
            .args(["-TERM", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

pub async fn run(options: Options) -> Result<Results> {
    let loadavg_before = support::loadavg();
    let providers = FakeProviders::start().await;
    let user = hub_testkit::DEFAULT_GOOGLE_USER;
    providers.add_file("google", user, FileSpec::new(FILE_ID, "report.pdf"));
    let dir = tempfile::tempdir()?;
    let mut env = crate::moto::base_env();
    env.extend(providers.env_vars());
    env.push(("HUB_BACKEND".into(), "local".into()));
    env.push(("HUB_DATA_DIR".into(), dir.path().display().to_string()));
    // The template's default level: each proxied call logs its line, as deployed.
    env.push(("RUST_LOG".into(), "info".into()));
    let hub = Hub::build(&Env::from_map(env.clone()), RetryPolicy::default()).await?;
    let account = crate::worker::connect_account(&hub, "google").await?.id;
    let stored = hub
        .store
        .get_account(&account)
        .await?
        .ok_or("the new account is not stored")?;
    let token = hub::tokens::open(hub.cipher.as_ref(), &stored)
        .await?
        .access_token
        .expose_secret()
        .to_string();
    let google_api = env
        .iter()
        .find(|(k, _)| k == "GOOGLE_API_URL")
        .map(|(_, v)| v.clone())
        .ok_or("no GOOGLE_API_URL")?;

    let mut watch = start_watch(&options, &env, dir.path())?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency.max(1) * 2)
        .timeout(Duration::from_secs(120))
        .build()?;
    let path = format!("drive/v3/files/{FILE_ID}");
    let query = "fields=id,name,size";
    let direct = Call {
        client: client.clone(),
        url: format!("{google_api}/{path}?{query}"),
        bearer: token,
    };
    let through_hub = Call {
        client: client.clone(),
        url: format!("{}/users/{account}/proxy/{path}?{query}", watch.url),
        bearer: API_KEY.into(),
    };
    wait_until_ready(&through_hub, &mut watch, &options.log_dir).await?;
    note(
        "proxy-latency",
        format!("warming {} instances of users", options.instances),
    );
    for _ in 0..3 {
        burst(&through_hub, options.concurrency).await;
    }

    let mut failed = 0;
    let (mut direct_ms, mut hub_ms, mut in_process_ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..options.runs {
        match direct.time().await {
            Ok(ms) => direct_ms.push(ms),
            Err(_) => failed += 1,
        }
        match through_hub.time().await {
            Ok(ms) => hub_ms.push(ms),
            Err(_) => failed += 1,
        }
        let request = ProxyRequest {
            account_id: account.clone(),
            method: Method::Get,
            path: path.clone(),
            query: Some(query.into()),
            headers: Vec::new(),
            body: Bytes::new(),
        };
        let started = Instant::now();
        let deadline = Deadline::after(Duration::from_secs(30));
        match hub::proxy::forward(&hub, request, deadline).await {
            Ok(answer) if answer.status == 200 => {
                in_process_ms.push(support::ms(started.elapsed()))
            }
            _ => failed += 1,
        }
    }
    let single = Latencies {
        concurrency: 1,
        direct: Percentiles::of(&direct_ms),
        hub: Percentiles::of(&hub_ms),
        in_process: Some(Percentiles::of(&in_process_ms)),
        failed,
    };
    report("single", &single);

    let (mut direct_ms, mut hub_ms, mut failed) = (Vec::new(), Vec::new(), 0);
    for _ in 0..options.rounds {
        let (times, failures) = burst(&direct, options.concurrency).await;
        direct_ms.extend(times);
        failed += failures;
        let (times, failures) = burst(&through_hub, options.concurrency).await;
        hub_ms.extend(times);
        failed += failures;
    }
    let concurrent = Latencies {
        concurrency: options.concurrency,
        direct: Percentiles::of(&direct_ms),
        hub: Percentiles::of(&hub_ms),
        in_process: None,
        failed,
    };
    report(&format!("{} concurrent", options.concurrency), &concurrent);
    drop(watch);
    Ok(Results {
        loadavg_before,
        loadavg_after: support::loadavg(),
        instances: options.instances,
        median_target_ms: MEDIAN_TARGET_MS,
        p99_target_ms: P99_TARGET_MS,
        single,
        concurrent,
    })
}

fn report(what: &str, latencies: &Latencies) {
    let (median, p99) = latencies.added();
    note(
        "proxy-latency",
        format!(
            "{what}: direct {:.2}/{:.2} ms, hub {:.2}/{:.2} ms (median/p99): added {median:.2} \
             ms median, {p99:.2} ms p99; {} failed",
            latencies.direct.median_ms,
            latencies.direct.p99_ms,
            latencies.hub.median_ms,
            latencies.hub.p99_ms,
            latencies.failed
        ),
    );
}

/// One GET with a bearer token, timed to the last byte of its answer.
#[derive(Clone)]
struct Call {
    client: reqwest::Client,
    url: String,
    bearer: String,
}

impl Call {
    async fn time(&self) -> Result<f64> {
        let started = Instant::now();
        let answer = self
            .client
            .get(&self.url)
            .bearer_auth(&self.bearer)
            .send()
            .await?;
        let status = answer.status();
        let body = answer.bytes().await?;
        let ms = support::ms(started.elapsed());
        if status != reqwest::StatusCode::OK {
            return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)).into());
        }
        Ok(ms)
    }
}

/// `n` calls at once: their times, and how many failed.
async fn burst(call: &Call, n: usize) -> (Vec<f64>, usize) {
    let outcomes = futures::future::join_all((0..n).map(|_| call.time())).await;
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    (
        outcomes.into_iter().filter_map(|o| o.ok()).collect(),
        failed,
    )
}

/// `users` built as `cargo lambda watch --release` runs it (`cargo run --release --bin
/// users`: features resolved for that package alone), then the watch on a free port with
/// the hub's variables.
fn start_watch(options: &Options, env: &[(String, String)], data_dir: &Path) -> Result<Watch> {
    let log_path = options.log_dir.join("proxy-latency-watch.log");
    std::fs::create_dir_all(&options.log_dir)?;
    let log = std::fs::File::create(&log_path)?;
    let built = Command::new("cargo")
        .args(["build", "--release", "--bin", "users"])
        .current_dir(&options.workspace)
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .status()?;
    if !built.success() {
        return Err(format!("cargo build --release --bin users: {built}").into());
    }
    let env_file = data_dir.join("watch.env");
    std::fs::write(&env_file, env_file_text(env)?)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new("cargo")
        .args(["lambda", "watch", "--release", "--ignore-changes"])
        .args(["--invoke-address", "127.0.0.1"])
        .args(["--invoke-port", &port.to_string()])
        .args(["--concurrency", &options.instances.max(1).to_string()])
        .arg("--env-file")
        .arg(&env_file)
        .current_dir(&options.workspace)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group, stopped whole by [`Watch`]'s drop.
        .process_group(0)
        .spawn()?;
    Ok(Watch {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

/// `NAME='value'` lines: cargo lambda's env-file parser refuses an unquoted `=` in a value
/// and reads single-quoted values literally.
pub fn env_file_text(env: &[(String, String)]) -> Result<String> {
    let mut text = String::new();
    for (name, value) in env {
        if value.contains('\'') || value.contains('\n') {
            return Err(format!("{name}: a quote or newline cannot go in the env file").into());
        }
        text.push_str(&format!("{name}='{value}'\n"));
    }
    Ok(text)
}

async fn wait_until_ready(call: &Call, watch: &mut Watch, log_dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some(exit) = watch.child.try_wait()? {
            return Err(format!(
                "cargo lambda watch exited ({exit}); see {}",
                log_dir.join("proxy-latency-watch.log").display()
            )
            .into());
        }
        match call.time().await {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!(
        "the hub did not answer the proxy within 600 s ({last}); see {}",
        log_dir.join("proxy-latency-watch.log").display()
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_values_are_quoted_and_quotes_refused() {
        let env = [("A".to_string(), "x=y==".to_string())];
        assert_eq!(env_file_text(&env).unwrap(), "A='x=y=='\n");
        assert!(env_file_text(&[("B".into(), "it's".into())]).is_err());
    }

    #[test]
    fn added_latency_is_the_difference_of_percentiles() {
        let latencies = Latencies {
            concurrency: 1,
            direct: Percentiles::of(&[1.0, 1.0, 2.0]),
            hub: Percentiles::of(&[3.0, 4.0, 9.0]),
            in_process: None,
            failed: 0,
        };
        assert_eq!(latencies.added(), (3.0, 7.0));
    }
}
