//! Runs the hub as a user does: `cargo lambda watch` on a free loopback port, every function
//! in its own process, and a plain HTTP client; with the local backend by default, or with
//! the AWS backend on moto ([`aws`]).

pub mod aws;
pub mod browser;
pub mod feed;

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oauth2::reqwest;
use rustix::process::{kill_process, kill_process_group, Pid, Signal};
use serde_json::Value;

pub use oauth2::reqwest::{Client, Response, StatusCode};

pub const API_KEY: &str = "e2e-api-key";

/// How long one hub may run before its test is taken as stuck: the longest e2e test takes
/// about three minutes. A hang (a function instance that died, which `cargo lambda watch`
/// never restarts, leaves its invocations waiting for ever) must fail the run with the hub's
/// log, not hold CI until its own limit.
const STUCK_AFTER: Duration = Duration::from_secs(600);

/// A running `cargo lambda watch`, stopped (with its function processes) when dropped.
pub struct LocalHub {
    child: Child,
    pub url: String,
    pub data_dir: tempfile::TempDir,
    pub log_path: PathBuf,
    pub client: Client,
    /// The pid of the running `cargo lambda watch` (0 once stopped), for the watchdog.
    watched: Arc<AtomicU32>,
}

/// The `name=value` of the login cookie a `/auth/{provider}/login` answer sets: what a
/// browser sends back to the callback (the client keeps no cookies itself).
pub fn login_cookie(login: &Response) -> String {
    let set_cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("hub_login_"))
        .expect("the login sets its cookie");
    set_cookie.split(';').next().unwrap().trim().to_string()
}

/// A port nothing listens on now, on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The repository's top directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `cargo lambda watch` of the workspace on `port`, logging to the end of `log_path`.
fn spawn_watch(port: u16, env_file: &Path, log_path: &Path) -> Child {
    let log = File::options()
        .create(true)
        .append(true)
        .open(log_path)
        .unwrap();
    // scripts/lambda-watch execs `cargo lambda watch`: this child is cargo lambda itself.
    Command::new(workspace_root().join("scripts/lambda-watch"))
        .arg(port.to_string())
        .arg(env_file)
        .arg("--ignore-changes")
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        // Its own process group, so that stopping it cannot reach the test process.
        .process_group(0)
        .spawn()
        .expect("scripts/lambda-watch runs `cargo lambda watch`")
}

impl LocalHub {
    /// Starts the hub with `env` on top of the local defaults (`RUST_LOG` among them) and
    /// waits until it answers.
    pub async fn start(env: &[(String, String)]) -> LocalHub {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let data_dir = tempfile::tempdir().unwrap();
        let env_file = data_dir.path().join("hub.env");
        // The local defaults, each unless the test sets it (`HUB_BACKEND=aws`, or `RUST_LOG`:
        // the leak search runs at `trace`).
        let defaults = [
            ("HUB_BACKEND", "local".to_string()),
            (
                "HUB_DATA_DIR",
                data_dir.path().join("data").display().to_string(),
            ),
            ("HUB_PUBLIC_URL", url.clone()),
            ("HUB_API_KEY", API_KEY.to_string()),
            ("RUST_LOG", "info".to_string()),
        ];
        let mut lines: Vec<String> = defaults
            .iter()
            .filter(|(name, _)| !env.iter().any(|(set, _)| set == name))
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        lines.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        // Single quotes: cargo lambda's env-file parser refuses an unquoted `=` in a value
        // (a base64 secret's padding) and reads quoted values literally.
        let lines: Vec<String> = lines
            .into_iter()
            .map(|line| {
                let (name, value) = line.split_once('=').unwrap();
                assert!(
                    !value.contains('\''),
                    "{name}: no single quote in e2e values"
                );
                format!("{name}='{value}'")
            })
            .collect();
        std::fs::write(&env_file, lines.join("\n") + "\n").unwrap();
        let log_path = data_dir.path().join("watch.log");
        let child = spawn_watch(port, &env_file, &log_path);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap();
        let watched = Arc::new(AtomicU32::new(child.id()));
        watchdog(watched.clone(), log_path.clone());
        let mut hub = LocalHub {
            child,
            url,
            data_dir,
            log_path,
            client,
            watched,
        };
        hub.wait_until_ready().await;
        hub
    }

    async fn wait_until_ready(&mut self) {
        // The first request to a function builds it: allow for a cold build.
        let deadline = Instant::now() + Duration::from_secs(600);
        while Instant::now() < deadline {
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("cargo lambda watch exited ({exit}); log:\n{}", self.log());
            }
            if let Ok(response) = self.client.get(format!("{}/config", self.url)).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("the hub did not answer; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.url))
    }

    /// A management request with the API key.
    pub fn authed(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(API_KEY)
    }

    pub async fn json(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => panic!("the hub did not answer: {e}; log:\n{}", self.log()),
        };
        let status = response.status();
        let body = response.bytes().await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Polls `check` until it returns `Some`, for the asynchronous queue.
    pub async fn eventually<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            if let Some(value) = check().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("timed out waiting for {what}; log:\n{}", self.log());
    }

    /// `GET /users/{id}`'s `last_synced_at` (`null` before the first sync ends well).
    pub async fn last_synced_at(&self, account_id: &str) -> Value {
        let (_, account) = self
            .json(self.authed(reqwest::Method::GET, &format!("/users/{account_id}")))
            .await;
        account["last_synced_at"].clone()
    }

    /// `POST /sync {"source_type": provider}` for an app with one account of that provider:
    /// one job, for that account only; waits for its sync to finish.
    pub async fn sync_provider(&self, provider: &str, account_id: &str) {
        let before = self.last_synced_at(account_id).await;
        let (status, started) = self
            .json(
                self.authed(reqwest::Method::POST, "/sync")
                    .header("content-type", "application/json")
                    .body(serde_json::json!({ "source_type": provider }).to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        assert_eq!(started["target_providers"], serde_json::json!([provider]));
        assert_eq!(started["jobs_enqueued"], 1);
        self.eventually(&format!("the {provider} sync to finish"), || async {
            let now = self.last_synced_at(account_id).await;
            (!now.is_null() && now != before).then_some(())
        })
        .await;
    }

    /// Follows a login as a browser would: hub, consent page (the stand-in consents at once),
    /// hub callback with the login's cookie. Returns the callback's answer.
    pub async fn log_in(&self, provider: &str) -> (StatusCode, Value) {
        let (cookie, callback) = self.consent(provider).await;
        self.json(self.client.get(&callback).header("cookie", cookie))
            .await
    }

    /// Starts a login and consents at the stand-in: the login's cookie (as `name=value`, what
    /// the browser sends back) and the callback URL the stand-in redirects to.
    pub async fn consent(&self, provider: &str) -> (String, String) {
        let login = self
            .get(&format!("/auth/{provider}/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::FOUND);
        let cookie = login_cookie(&login);
        let consent_url = login.headers()["location"].to_str().unwrap().to_string();
        let consent = self.client.get(&consent_url).send().await.unwrap();
        assert_eq!(consent.status(), StatusCode::FOUND, "the stand-in consents");
        let callback = consent.headers()["location"].to_str().unwrap().to_string();
        assert!(
            callback.starts_with(&format!("{}/auth/{provider}/callback?", self.url)),
            "{callback}"
        );
        (cookie, callback)
    }

    /// Kills (SIGKILL) every process of the hub at once, as a power cut or an out-of-memory
    /// kill would, then starts it again on the same port and data. Whatever was in flight is
    /// lost, queued jobs included (the local queue lives in the process that enqueued them).
    pub async fn crash_and_restart(&mut self) {
        self.stop(Signal::KILL);
        let port = self.url.rsplit(':').next().unwrap().parse().unwrap();
        let env_file = self.data_dir.path().join("hub.env");
        self.child = spawn_watch(port, &env_file, &self.log_path);
        self.watched.store(self.child.id(), Ordering::SeqCst);
        self.wait_until_ready().await;
    }

    /// Sends `signal` to every process of the hub and waits for `cargo lambda watch` to end.
    fn stop(&mut self, signal: Signal) {
        stop_process_tree(&mut self.child, signal);
    }

    /// Whether any process of the hub runs `function`'s binary.
    pub fn is_running(&self, function: &str) -> bool {
        let binary = format!("target/debug/{function}");
        self.processes()
            .iter()
            .any(|(_, program)| program.ends_with(&binary))
    }

    /// The processes under this hub's `cargo lambda watch`, with their programs.
    fn processes(&self) -> Vec<(Pid, String)> {
        descendants(self.child.id())
    }

    /// The hub's local store, opened beside the running functions (its file lock and LMDB
    /// are safe across processes): for checks of what is at rest.
    pub fn store(&self) -> hub::store::local::LocalStore {
        hub::store::local::LocalStore::open(&self.data_dir.path().join("data")).unwrap()
    }

    /// Every file under the data dir, for at-rest checks.
    pub fn data_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(&self.data_dir.path().join("data"), &mut files);
        files
    }
}

/// Sends `signal` to every process under `leader` (a child started as the leader of a process
/// group of its own, such as `cargo lambda watch` or `scripts/dev`) and waits for it to end:
/// the descendants first, since `cargo lambda watch` starts each function in a process group of
/// its own that the leader's group does not hold, then the leader's whole group.
pub fn stop_process_tree(leader: &mut Child, signal: Signal) {
    for (pid, _) in descendants(leader.id()) {
        let _ = kill_process(pid, signal);
    }
    if let Some(group) = Pid::from_raw(leader.id() as i32) {
        let _ = kill_process_group(group, signal);
    }
    let _ = leader.wait();
}

/// The processes that descend from `root` (read from /proc), with their programs.
pub fn descendants(root: u32) -> Vec<(Pid, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let program = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        if descends_from(pid, root) {
            if let Some(pid) = Pid::from_raw(pid as i32) {
                found.push((pid, String::from_utf8_lossy(program).into_owned()));
            }
        }
    }
    found
}

impl Drop for LocalHub {
    fn drop(&mut self) {
        self.watched.store(0, Ordering::SeqCst);
        self.stop(Signal::TERM);
    }
}

/// Ends the whole test process, with the hub's log, if the hub still runs after
/// [`STUCK_AFTER`]: stops the hub's processes first (they live in process groups of their
/// own, which the test process's end would not reach).
fn watchdog(watched: Arc<AtomicU32>, log_path: PathBuf) {
    std::thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < STUCK_AFTER {
            if watched.load(Ordering::SeqCst) == 0 {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        let leader = watched.load(Ordering::SeqCst);
        if leader == 0 {
            return;
        }
        for (pid, _) in descendants(leader) {
            let _ = kill_process(pid, Signal::KILL);
        }
        if let Some(group) = Pid::from_raw(leader as i32) {
            let _ = kill_process_group(group, Signal::KILL);
        }
        eprintln!(
            "e2e: a hub ran for {} s: its test is stuck; the hub's log:\n{}",
            STUCK_AFTER.as_secs(),
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::process::exit(1);
    });
}

/// Whether `ancestor` is `pid`'s parent, grandparent, ... (read from /proc).
fn descends_from(mut pid: u32, ancestor: u32) -> bool {
    while pid > 1 {
        // `pid (comm) state ppid ...`: the fields after the last ')'.
        let Some(parent) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let (_, rest) = stat.rsplit_once(')')?;
                rest.split_whitespace().nth(1)?.parse().ok()
            })
        else {
            return false;
        };
        if parent == ancestor {
            return true;
        }
        pid = parent;
    }
    false
}
