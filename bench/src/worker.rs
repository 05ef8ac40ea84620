//! Worker: the first sync of one OneDrive account whose drive holds 10k, 50k and 100k files
//! (Graph delta pages of 1,000 from the testkit stand-in), each followed by an incremental
//! sync with 10 changes. Each sync runs in a child process (this binary's `worker-child`), so its peak
//! RSS is the sync's alone: the stand-in and its drives live in this, the parent, process.
//!
//! Tracing is not initialised in the child: the worker logs one line per file at info
//! level, and writing 100,000 lines would measure the terminal, not the sync.
//!
//! The references: the same pages fetched by a plain reqwest loop (no parsing beyond
//! finding the next link, no storage), and on moto the same file items written by a tight
//! `BatchWriteItem` loop (what the store can do, with nothing of the sync around it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use hub::config::Env;
use hub::login::Callback;
use hub::model::{AccountView, SyncJob, SyncReason};
use hub::providers::http::RetryPolicy;
use hub::sync::SyncResult;
use hub::Hub;
use hub_testkit::FakeProviders;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::moto::{self, Resources};
use crate::support::{self, note, Result};

pub const PAGE_SIZE: usize = 1000;
/// The `$select` the hub's OneDrive connector sends, so the reference loop fetches the same
/// pages.
const DELTA_SELECT: &str =
    "id,name,size,file,folder,root,deleted,lastModifiedDateTime,webUrl,parentReference,remoteItem,package";
const PROVIDER: &str = "onedrive";
/// `hub::store::dynamo`'s `BATCHES_IN_FLIGHT` (private there): the raw loop keeps as many
/// `BatchWriteItem` calls in flight as the hub's store does.
pub const HUB_BATCHES_IN_FLIGHT: usize = 4;

pub struct Options {
    /// Drive sizes of the first syncs on the local backend.
    pub local_sizes: Vec<usize>,
    /// Drive sizes of the first syncs on the AWS backend (moto); empty skips it. On both
    /// backends an incremental sync follows each first sync.
    pub aws_sizes: Vec<usize>,
    pub changes: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub page_size: usize,
    pub changes: usize,
    pub runs: Vec<SyncRun>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SyncRun {
    pub backend: String,
    /// `first` or `incremental`.
    pub kind: String,
    pub drive_files: usize,
    pub pages: u64,
    pub files_synced: u64,
    pub seconds: f64,
    /// The child's peak RSS at the end of the sync, and before it began (hub built).
    pub peak_rss_mb: f64,
    pub before_sync_rss_mb: f64,
    /// The same pages through a plain reqwest loop; first syncs only.
    pub fetch_only_seconds: Option<f64>,
    pub fetch_only_pages: Option<u64>,
    /// RSS at the end of the sync: anonymous (the worker's own memory) and file-backed
    /// (mapped files: locally LMDB's map of the index, page cache the kernel can reclaim).
    #[serde(default)]
    pub anon_rss_mb: f64,
    #[serde(default)]
    pub file_rss_mb: f64,
    /// The same file items written by a tight `BatchWriteItem` loop on the same moto; first
    /// syncs on moto only.
    #[serde(default)]
    pub raw_write_seconds: Option<f64>,
}

/// What `worker-child` prints as its last line.
#[derive(Debug, Serialize, Deserialize)]
struct ChildReport {
    seconds: f64,
    pages: u64,
    files: u64,
    peak_rss_kib: u64,
    before_sync_kib: u64,
    /// At the end of the sync: the process's own memory (heap, stacks) and the file pages it
    /// has mapped (locally, LMDB's map of the index), which the peak RSS counts together.
    #[serde(default)]
    anon_kib: u64,
    #[serde(default)]
    file_kib: u64,
}

pub async fn run(options: Options) -> Result<Results> {
    let loadavg_before = support::loadavg();
    let providers = FakeProviders::start().await;
    providers.set_graph_page_size(PAGE_SIZE);
    let mut runs = Vec::new();

    for &size in &options.local_sizes {
        let dir = tempfile::tempdir()?;
        let env = local_env(&providers, dir.path().to_path_buf());
        let drive = Drive::connect(&providers, env, size, &format!("local-{size}")).await?;
        runs.push(drive.first_sync("local").await?);
        if options.changes > 0 {
            runs.push(
                drive
                    .incremental_sync("local", &providers, options.changes)
                    .await?,
            );
        }
    }

    for &size in &options.aws_sizes {
        let endpoint = moto::endpoint()?;
        let sdk = moto::sdk_config(&endpoint).await;
        let resources = Resources::create(&sdk, "bench-worker").await?;
        let mut env = resources.hub_env(&endpoint);
        env.extend(providers.env_vars());
        let drive = Drive::connect(&providers, env, size, &format!("aws-{size}")).await?;
        let mut first = drive.first_sync("aws (moto)").await?;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let raw = raw_writes(&client, &resources.table, &drive.account_id).await?;
        note(
            "worker",
            format!(
                "  raw BatchWriteItem loop: {} items in {raw:.2} s (hub / raw {:.2})",
                first.files_synced,
                first.seconds / raw
            ),
        );
        first.raw_write_seconds = Some(raw);
        runs.push(first);
        if options.changes > 0 {
            runs.push(
                drive
                    .incremental_sync("aws (moto)", &providers, options.changes)
                    .await?,
            );
        }
    }

    Ok(Results {
        loadavg_before,
        loadavg_after: support::loadavg(),
        page_size: PAGE_SIZE,
        changes: options.changes,
        runs,
    })
}

fn local_env(providers: &FakeProviders, data_dir: PathBuf) -> Vec<(String, String)> {
    let mut env = moto::base_env();
    env.extend(providers.env_vars());
    env.push(("HUB_BACKEND".into(), "local".into()));
    env.push(("HUB_DATA_DIR".into(), data_dir.display().to_string()));
    env
}

/// Logs in through the hub as a browser would (consent at the stand-in, callback with its
/// code): the account is created by the hub with its tokens sealed, and the stand-in knows
/// the tokens.
pub async fn connect_account(hub: &Hub, provider: &str) -> Result<AccountView> {
    let consent = hub::login::begin(hub, provider).await?;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let answer = browser.get(&consent.consent_url).send().await?;
    let location = answer
        .headers()
        .get("location")
        .ok_or_else(|| {
            format!(
                "the consent page answered {} without a redirect",
                answer.status()
            )
        })?
        .to_str()?
        .to_string();
    let query: HashMap<String, String> = url::Url::parse(&location)?
        .query_pairs()
        .into_owned()
        .collect();
    // The browser that started the login brings its key back (the login's cookie).
    let callback = Callback::for_browser(
        &consent,
        Callback {
            code: query.get("code").cloned(),
            state: query.get("state").cloned(),
            error: query.get("error").cloned(),
            browser_key: None,
        },
    );
    Ok(hub::login::complete(hub, provider, callback).await?)
}

/// One connected account and its drive at the stand-in.
struct Drive {
    env: Vec<(String, String)>,
    user: String,
    account_id: String,
    access_token: String,
    files: Vec<String>,
}

impl Drive {
    async fn connect(
        providers: &FakeProviders,
        env: Vec<(String, String)>,
        size: usize,
        user: &str,
    ) -> Result<Drive> {
        providers.set_next_identity(PROVIDER, user, &format!("{user}@example.com"));
        let files = providers.add_files_for(PROVIDER, user, size);
        let hub = Hub::build(&Env::from_map(env.clone()), RetryPolicy::default()).await?;
        let account = connect_account(&hub, PROVIDER).await?;
        let stored = hub
            .store
            .get_account(&account.id)
            .await?
            .ok_or("the new account is not stored")?;
        let tokens = hub::tokens::open(hub.cipher.as_ref(), &stored).await?;
        Ok(Drive {
            env,
            user: user.to_string(),
            account_id: account.id,
            access_token: tokens.access_token.expose_secret().to_string(),
            files,
        })
    }

    async fn first_sync(&self, backend: &str) -> Result<SyncRun> {
        let size = self.files.len();
        note("worker", format!("{backend}: first sync of {size} files"));
        let report = self.sync_in_child().await?;
        let graph = self
            .env
            .iter()
            .find(|(k, _)| k == "ONEDRIVE_GRAPH_URL")
            .map(|(_, v)| v.clone())
            .ok_or("no ONEDRIVE_GRAPH_URL")?;
        let fetch_only = fetch_pages(&graph, &self.access_token).await?;
        Ok(self.sync_run(backend, "first", report, Some(fetch_only)))
    }

    async fn incremental_sync(
        &self,
        backend: &str,
        providers: &FakeProviders,
        changes: usize,
    ) -> Result<SyncRun> {
        for (n, id) in self.files.iter().take(changes).enumerate() {
            providers.modify_file(PROVIDER, &self.user, id, &format!("changed-{n}.txt"));
        }
        note(
            "worker",
            format!("{backend}: incremental sync with {changes} changes"),
        );
        let report = self.sync_in_child().await?;
        Ok(self.sync_run(backend, "incremental", report, None))
    }

    fn sync_run(
        &self,
        backend: &str,
        kind: &str,
        report: ChildReport,
        fetch_only: Option<(f64, u64)>,
    ) -> SyncRun {
        let run = SyncRun {
            backend: backend.to_string(),
            kind: kind.to_string(),
            drive_files: self.files.len(),
            pages: report.pages,
            files_synced: report.files,
            seconds: report.seconds,
            peak_rss_mb: report.peak_rss_kib as f64 / 1024.0,
            before_sync_rss_mb: report.before_sync_kib as f64 / 1024.0,
            anon_rss_mb: report.anon_kib as f64 / 1024.0,
            file_rss_mb: report.file_kib as f64 / 1024.0,
            fetch_only_seconds: fetch_only.map(|(seconds, _)| seconds),
            fetch_only_pages: fetch_only.map(|(_, pages)| pages),
            raw_write_seconds: None,
        };
        note(
            "worker",
            format!(
                "  {} files in {} pages: {:.2} s, peak RSS {:.1} MB (fetch only: {})",
                run.files_synced,
                run.pages,
                run.seconds,
                run.peak_rss_mb,
                fetch_only.map_or("-".into(), |(s, pages)| format!("{s:.2} s, {pages} pages"))
            ),
        );
        run
    }

    /// Runs `worker-child` with this account's environment and reads its report.
    async fn sync_in_child(&self) -> Result<ChildReport> {
        let output = tokio::process::Command::new(std::env::current_exe()?)
            .arg("worker-child")
            .arg(&self.account_id)
            .arg(PROVIDER)
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stderr(std::process::Stdio::inherit())
            .output()
            .await?;
        if !output.status.success() {
            return Err(format!("worker-child failed: {}", output.status).into());
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout
            .lines()
            .last()
            .ok_or("worker-child printed nothing")?;
        Ok(serde_json::from_str(last)?)
    }
}

/// `worker-child ACCOUNT PROVIDER`: one `hub::sync::run` with the hub built from the process
/// environment; prints a JSON report.
pub async fn child(account_id: &str, provider: &str) -> Result<()> {
    let hub = Hub::from_env().await?;
    let before_sync_kib = support::own_peak_rss_kib();
    let job = SyncJob {
        account_id: account_id.to_string(),
        provider: provider.to_string(),
        reason: SyncReason::Manual,
        requested_at: chrono::Utc::now(),
        stalled_requeues: 0,
    };
    let start = Instant::now();
    let result = hub::sync::run(&hub, &job, hub::sync::fresh_invocation()).await?;
    let seconds = start.elapsed().as_secs_f64();
    let SyncResult::Synced { pages, files } = result else {
        return Err(format!("the sync did not run: {result:?}").into());
    };
    let report = ChildReport {
        seconds,
        pages,
        files,
        peak_rss_kib: support::own_peak_rss_kib(),
        before_sync_kib,
        anon_kib: support::proc_status_kib("self", "RssAnon").unwrap_or(0),
        file_kib: support::proc_status_kib("self", "RssFile").unwrap_or(0),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// The reference for the store: the file items the hub's first sync wrote for `account_id`,
/// read back as stored (so the key shape and attributes are the hub's own), written again
/// under another account id by a tight loop of `BatchWriteItem`s, 25 items per call and as
/// many calls in flight as the hub's store keeps. Returns the seconds of the writes alone.
async fn raw_writes(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    account_id: &str,
) -> Result<f64> {
    let items = stored_file_items(client, table, account_id).await?;
    // Another account, so nothing overwrites the hub's items; the table's indexes (`by-seq`,
    // `by-path`) are local to the partition and see the same attributes.
    let pk = AttributeValue::S(format!("ACCOUNT#raw-{}", uuid::Uuid::new_v4()));
    let items = items
        .into_iter()
        .map(|mut item| {
            item.insert("pk".into(), pk.clone());
            item
        })
        .collect();
    let start = Instant::now();
    moto::write_items(client, table, items, HUB_BATCHES_IN_FLIGHT).await?;
    Ok(start.elapsed().as_secs_f64())
}

/// Every `FILE#` item of the account, page by page.
async fn stored_file_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    account_id: &str,
) -> Result<Vec<HashMap<String, AttributeValue>>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let answer = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :file)")
            .expression_attribute_values(":pk", AttributeValue::S(format!("ACCOUNT#{account_id}")))
            .expression_attribute_values(":file", AttributeValue::S("FILE#".into()))
            .set_exclusive_start_key(start)
            .send()
            .await?;
        items.extend(answer.items.unwrap_or_default());
        start = answer.last_evaluated_key;
        if start.is_none() {
            return Ok(items);
        }
    }
}

/// The delta pages through a plain reqwest loop: the floor any sync of this drive has.
/// Returns the seconds and the pages fetched.
async fn fetch_pages(graph_url: &str, access_token: &str) -> Result<(f64, u64)> {
    let client = reqwest::Client::new();
    let mut url = format!("{graph_url}/me/drive/root/delta?$select={DELTA_SELECT}");
    let start = Instant::now();
    let mut pages = 0;
    loop {
        pages += 1;
        let body = client
            .get(&url)
            .bearer_auth(access_token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        match next_link(&body) {
            Some(next) => url = next,
            None => break,
        }
    }
    Ok((start.elapsed().as_secs_f64(), pages))
}

/// The `@odata.nextLink` of a delta page, found without parsing the page.
fn next_link(page: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"@odata.nextLink\":\"";
    let start = page.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let length = page[start..].iter().position(|&b| b == b'"')?;
    String::from_utf8(page[start..start + length].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn finds_the_next_link_only() {
        let page = br#"{"value":[],"@odata.nextLink":"http://127.0.0.1:1/delta?token=abc"}"#;
        assert_eq!(
            next_link(page).as_deref(),
            Some("http://127.0.0.1:1/delta?token=abc")
        );
        assert_eq!(next_link(br#"{"@odata.deltaLink":"x"}"#), None);
    }
}
