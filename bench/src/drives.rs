//! Accounts of many drives, and Box: the first sync of a Google account that is a member of
//! 20 shared drives, of a Microsoft work account following sites with 20 document libraries,
//! and Box's first and incremental syncs, each against a plain reqwest loop of the same
//! provider pages (docs/API.md, "Drives").
//!
//! Each sync runs in process (`hub::sync::run`, invocation after invocation until it is
//! synced) on the local backend, a fresh data directory and account per run; the fetch loop
//! runs right after it against the same stand-in. The fetch loops make the requests the
//! connector's design needs with the same page sizes and fields, read every page and parse
//! it as JSON for the link to the next one (and Box's for the folders to walk), storing
//! nothing:
//!
//! - Google: `drives.list`, then each drive's `files.list` (`corpora=drive`), My Drive's
//!   (`corpora=user`), every page.
//! - Microsoft: `/me/drive/root/delta`, `/me/followedSites`, each site's `drives`, each
//!   library's `/drives/{id}/root/delta`, every page.
//! - Box, first sync: the tree walked from folder `0`, `/folders/{id}/items` with marker
//!   paging. Incremental: the `changes` events from the position the first sync left, and
//!   each item an event names read once (`/files/{id}`), as the connector reads every named
//!   item's state (Box's events come repeated and out of order).
//!
//! Nothing here asserts a duration.

use std::time::Instant;

use chrono::Utc;
use hub::config::Env;
use hub::model::{SyncJob, SyncReason};
use hub::providers::http::RetryPolicy;
use hub::sync::SyncResult;
use hub::Hub;
use hub_testkit::{BoxChange, BoxKind, FakeProviders, FileSpec};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::support::{self, note, Result, Summary};

/// Google `files.list` as the connector asks it (shared/src/providers/google/listing.rs).
const GOOGLE_FILE_FIELDS: &str = "nextPageToken,incompleteSearch,files(id,name,mimeType,size,\
    modifiedTime,webViewLink,trashed,parents,md5Checksum,driveId,shortcutDetails(targetId))";
/// Graph delta's `$select` as the connector sends it (see [`crate::worker`]).
const DELTA_SELECT: &str = "id,name,size,file,folder,root,deleted,lastModifiedDateTime,webUrl,\
    parentReference,remoteItem,package";
/// Box's item fields as the connector asks them (shared/src/providers/box_com/sync.rs).
const BOX_FIELDS: &str = "type,id,name,size,sha1,modified_at,item_status,parent,path_collection";
/// Libraries per followed site.
const LIBRARIES_PER_SITE: usize = 4;
/// Box folders the files are spread over, all under the root.
const BOX_FOLDERS: usize = 50;

pub struct Options {
    /// Shared drives (Google) and document libraries (Microsoft) of the account.
    pub drives: usize,
    /// Files in each of them.
    pub files_per_drive: usize,
    /// Files of the Box account.
    pub box_files: usize,
    /// Box items changed before the incremental sync.
    pub box_changes: usize,
    /// First syncs per case (each of a fresh account), each followed by its fetch loop.
    pub runs: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub runs_per_case: usize,
    pub cases: Vec<Case>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Case {
    /// `google, 20 shared drives`, `box, incremental`...
    pub name: String,
    pub provider: String,
    /// `first` or `incremental`.
    pub kind: String,
    pub drives: usize,
    /// Files the sync wrote (the last run's).
    pub files_synced: u64,
    pub sync_seconds: Summary,
    pub fetch_seconds: Summary,
    /// Requests of one fetch loop.
    pub fetch_requests: u64,
}

impl Case {
    /// Median sync time over median fetch-loop time.
    pub fn ratio(&self) -> f64 {
        self.sync_seconds.median / self.fetch_seconds.median
    }
}

pub async fn run(options: Options) -> Result<Results> {
    let loadavg_before = support::loadavg();
    let providers = FakeProviders::start().await;
    let mut cases = vec![
        google(&providers, &options).await?,
        microsoft(&providers, &options).await?,
    ];
    cases.extend(box_syncs(&providers, &options).await?);
    Ok(Results {
        loadavg_before,
        loadavg_after: support::loadavg(),
        runs_per_case: options.runs,
        cases,
    })
}

/// A local hub on a fresh data directory with every stand-in configured.
async fn fresh_hub(
    providers: &FakeProviders,
) -> Result<(Hub, Vec<(String, String)>, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let mut env = crate::moto::base_env();
    env.extend(providers.env_vars());
    env.extend(providers.box_env_vars());
    env.push(("HUB_BACKEND".into(), "local".into()));
    env.push(("HUB_DATA_DIR".into(), dir.path().display().to_string()));
    let hub = Hub::build(&Env::from_map(env.clone()), RetryPolicy::default()).await?;
    Ok((hub, env, dir))
}

fn var(env: &[(String, String)], name: &str) -> Result<String> {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| format!("no {name}").into())
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

/// Syncs `account` until it is synced, invocation after invocation; the seconds, and the
/// files the last invocation wrote.
async fn sync(hub: &Hub, account: &str, provider: &str) -> Result<(f64, u64)> {
    let started = Instant::now();
    for _ in 0..1000 {
        let job = SyncJob {
            account_id: account.into(),
            provider: provider.into(),
            reason: SyncReason::Manual,
            requested_at: Utc::now(),
            stalled_requeues: 0,
        };
        match hub::sync::run(hub, &job, hub::sync::fresh_invocation()).await? {
            SyncResult::Synced { files, .. } => {
                return Ok((started.elapsed().as_secs_f64(), files));
            }
            SyncResult::Requeued { .. } => {}
            other => return Err(format!("the {provider} sync did not finish: {other:?}").into()),
        }
    }
    Err(format!("the {provider} sync did not finish in 1000 invocations").into())
}

/// The time of `first` syncs (each of a fresh hub and account) and of the fetch loop after
/// each.
async fn first_syncs<F, Fut>(
    providers: &FakeProviders,
    provider: &str,
    runs: usize,
    fetch: F,
) -> Result<(Vec<f64>, Vec<f64>, u64, u64)>
where
    F: Fn(Vec<(String, String)>, String) -> Fut,
    Fut: std::future::Future<Output = Result<u64>>,
{
    let (mut syncs, mut fetches, mut files, mut requests) = (Vec::new(), Vec::new(), 0, 0);
    for _ in 0..runs.max(1) {
        let (hub, env, _dir) = fresh_hub(providers).await?;
        let account = crate::worker::connect_account(&hub, provider).await?.id;
        let (seconds, synced) = sync(&hub, &account, provider).await?;
        syncs.push(seconds);
        files = synced;
        let token = access_token(&hub, &account).await?;
        let started = Instant::now();
        requests = fetch(env, token).await?;
        fetches.push(started.elapsed().as_secs_f64());
    }
    Ok((syncs, fetches, files, requests))
}

fn case(
    name: String,
    provider: &str,
    kind: &str,
    drives: usize,
    (syncs, fetches, files, requests): (Vec<f64>, Vec<f64>, u64, u64),
) -> Case {
    let case = Case {
        name,
        provider: provider.into(),
        kind: kind.into(),
        drives,
        files_synced: files,
        sync_seconds: Summary::of(&syncs),
        fetch_seconds: Summary::of(&fetches),
        fetch_requests: requests,
    };
    note(
        "drives",
        format!(
            "{}: sync {:.2} s, fetch loop {:.2} s ({} requests): {:.2}x, {} files",
            case.name,
            case.sync_seconds.median,
            case.fetch_seconds.median,
            case.fetch_requests,
            case.ratio(),
            case.files_synced
        ),
    );
    case
}

async fn google(providers: &FakeProviders, options: &Options) -> Result<Case> {
    let user = hub_testkit::DEFAULT_GOOGLE_USER;
    for d in 0..options.drives {
        let drive = format!("0ASHARED{d:03}");
        providers.join_shared_drive(user, &drive, &format!("Team {d}"));
        for f in 0..options.files_per_drive {
            let id = format!("sd{d:03}f{f:06}");
            let spec = FileSpec::new(id.clone(), format!("{id}.txt")).in_shared_drive(&drive);
            providers.add_file("google", user, spec);
        }
    }
    let runs = first_syncs(providers, "google", options.runs, |env, token| async move {
        google_fetch(&var(&env, "GOOGLE_API_URL")?, &token).await
    })
    .await?;
    Ok(case(
        format!("google, {} shared drives", options.drives),
        "google",
        "first",
        options.drives,
        runs,
    ))
}

/// `drives.list`, then every drive's `files.list` pages; the requests made.
async fn google_fetch(api: &str, token: &str) -> Result<u64> {
    let client = reqwest::Client::new();
    let mut requests = 0;
    let mut drives = Vec::new();
    let mut page_token: Option<String> = None;
    loop {
        let mut query = vec![
            ("pageSize", "100".to_string()),
            ("fields", "nextPageToken,drives(id,name)".into()),
        ];
        query.extend(page_token.map(|t| ("pageToken", t)));
        let page = get_json(&client, &format!("{api}/drive/v3/drives"), &query, token).await?;
        requests += 1;
        drives.extend(
            page["drives"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["id"].as_str().map(str::to_string)),
        );
        match page["nextPageToken"].as_str() {
            Some(next) => page_token = Some(next.into()),
            None => break,
        }
    }
    for drive in std::iter::once(None).chain(drives.into_iter().map(Some)) {
        let mut page_token: Option<String> = None;
        loop {
            let mut query = vec![
                ("pageSize", "1000".to_string()),
                ("fields", GOOGLE_FILE_FIELDS.into()),
                ("q", "trashed = false".into()),
                ("spaces", "drive".into()),
                ("supportsAllDrives", "true".into()),
                ("includeItemsFromAllDrives", "true".into()),
            ];
            match &drive {
                Some(id) => query.extend([("corpora", "drive".into()), ("driveId", id.clone())]),
                None => query.push(("corpora", "user".into())),
            }
            query.extend(page_token.map(|t| ("pageToken", t)));
            let page = get_json(&client, &format!("{api}/drive/v3/files"), &query, token).await?;
            requests += 1;
            match page["nextPageToken"].as_str() {
                Some(next) => page_token = Some(next.into()),
                None => break,
            }
        }
    }
    Ok(requests)
}

async fn microsoft(providers: &FakeProviders, options: &Options) -> Result<Case> {
    let user = hub_testkit::DEFAULT_MICROSOFT_USER;
    providers.set_graph_business(true);
    let libraries: Vec<(String, String)> = (0..options.drives)
        .map(|l| (format!("b!library-{l:03}"), format!("Documents {l}")))
        .collect();
    for (s, site) in libraries.chunks(LIBRARIES_PER_SITE).enumerate() {
        let named: Vec<(&str, &str)> = site
            .iter()
            .map(|(id, name)| (id.as_str(), name.as_str()))
            .collect();
        let site_id = format!("contoso.sharepoint.com,site{s},web{s}");
        providers.follow_site(user, &site_id, &format!("Site {s}"), &named);
    }
    for (id, _) in &libraries {
        providers.add_files_for("onedrive", id, options.files_per_drive);
    }
    let runs = first_syncs(providers, "onedrive", options.runs, |env, token| async move {
        microsoft_fetch(&var(&env, "ONEDRIVE_GRAPH_URL")?, &token).await
    })
    .await?;
    providers.set_graph_business(false);
    Ok(case(
        format!("microsoft, {} document libraries", options.drives),
        "onedrive",
        "first",
        options.drives,
        runs,
    ))
}

/// The OneDrive's delta, the followed sites and their drives, every library's delta; the
/// requests made.
async fn microsoft_fetch(graph: &str, token: &str) -> Result<u64> {
    let client = reqwest::Client::new();
    let mut requests = 0;
    let delta = |root: String| format!("{root}/root/delta?$select={DELTA_SELECT}");
    let mut roots = vec![format!("{graph}/me/drive")];
    let mut sites = Vec::new();
    let mut url = Some(format!("{graph}/me/followedSites"));
    while let Some(next) = url {
        let page = get_json(&client, &next, &[], token).await?;
        requests += 1;
        sites.extend(ids(&page["value"]));
        url = page["@odata.nextLink"].as_str().map(str::to_string);
    }
    for site in sites {
        let mut url = Some(format!("{graph}/sites/{site}/drives"));
        while let Some(next) = url {
            let page = get_json(&client, &next, &[], token).await?;
            requests += 1;
            roots.extend(ids(&page["value"]).map(|id| format!("{graph}/drives/{id}")));
            url = page["@odata.nextLink"].as_str().map(str::to_string);
        }
    }
    for root in roots {
        let mut url = Some(delta(root));
        while let Some(next) = url {
            let page = get_json(&client, &next, &[], token).await?;
            requests += 1;
            url = page["@odata.nextLink"].as_str().map(str::to_string);
        }
    }
    Ok(requests)
}

fn ids(values: &Value) -> impl Iterator<Item = String> + '_ {
    values
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["id"].as_str().map(str::to_string))
}

/// Box's first sync, then its incremental sync after `box_changes` renames, each against
/// its fetch loop.
async fn box_syncs(providers: &FakeProviders, options: &Options) -> Result<Vec<Case>> {
    let user = hub_testkit::DEFAULT_BOX_USER;
    let folders: Vec<String> = (0..BOX_FOLDERS)
        .map(|f| providers.box_add_folder(user, &format!("folder {f}"), hub_testkit::BOX_ROOT_ID))
        .collect();
    let files: Vec<String> = (0..options.box_files)
        .map(|n| {
            providers.box_add_file(user, &format!("file {n}.txt"), &folders[n % folders.len()])
        })
        .collect();
    let first = first_syncs(providers, "box", options.runs, |env, token| async move {
        box_walk(&var(&env, "BOX_API_URL")?, &token).await
    })
    .await?;
    let first = case(
        format!("box, {} files in {BOX_FOLDERS} folders", options.box_files),
        "box",
        "first",
        1,
        first,
    );

    let (mut syncs, mut fetches, mut synced, mut requests) = (Vec::new(), Vec::new(), 0, 0);
    for run in 0..options.runs.max(1) {
        let (hub, env, _dir) = fresh_hub(providers).await?;
        let account = crate::worker::connect_account(&hub, "box").await?.id;
        sync(&hub, &account, "box").await?;
        let token = access_token(&hub, &account).await?;
        let api = var(&env, "BOX_API_URL")?;
        // Where the events stand now: the fetch loop reads from there, as the hub's cursor.
        let position = box_position(&api, &token).await?;
        for (n, file) in files.iter().take(options.box_changes).enumerate() {
            let name = format!("renamed {run}-{n}.txt");
            providers.box_change(user, BoxKind::File, file, BoxChange::Rename(name));
        }
        let (seconds, files) = sync(&hub, &account, "box").await?;
        syncs.push(seconds);
        synced = files;
        let started = Instant::now();
        requests = box_events(&api, &token, position).await?;
        fetches.push(started.elapsed().as_secs_f64());
    }
    let incremental = case(
        format!("box, incremental ({} renames)", options.box_changes),
        "box",
        "incremental",
        1,
        (syncs, fetches, synced, requests),
    );
    Ok(vec![first, incremental])
}

/// The tree from the root, folder by folder, every page; the requests made.
async fn box_walk(api: &str, token: &str) -> Result<u64> {
    let client = reqwest::Client::new();
    let mut requests = 0;
    let mut folders = vec![hub_testkit::BOX_ROOT_ID.to_string()];
    while let Some(folder) = folders.pop() {
        let mut marker: Option<String> = None;
        loop {
            let mut query = vec![
                ("fields", BOX_FIELDS.to_string()),
                ("usemarker", "true".into()),
                ("limit", "1000".into()),
            ];
            query.extend(marker.map(|m| ("marker", m)));
            let url = format!("{api}/folders/{folder}/items");
            let page = get_json(&client, &url, &query, token).await?;
            requests += 1;
            for entry in page["entries"].as_array().into_iter().flatten() {
                if entry["type"] == "folder" {
                    folders.extend(entry["id"].as_str().map(str::to_string));
                }
            }
            match page["next_marker"].as_str().filter(|m| !m.is_empty()) {
                Some(next) => marker = Some(next.into()),
                None => break,
            }
        }
    }
    Ok(requests)
}

/// `stream_position=now`'s position.
async fn box_position(api: &str, token: &str) -> Result<Value> {
    let client = reqwest::Client::new();
    let query = [
        ("stream_type", "changes".to_string()),
        ("stream_position", "now".into()),
    ];
    let page = get_json(&client, &format!("{api}/events"), &query, token).await?;
    Ok(page["next_stream_position"].clone())
}

/// The events from `position` until a page is empty, and each item they name read once;
/// the requests made.
async fn box_events(api: &str, token: &str, position: Value) -> Result<u64> {
    let client = reqwest::Client::new();
    let mut requests = 0;
    let mut position = position;
    let mut named = std::collections::BTreeSet::new();
    loop {
        let at = match &position {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let query = [
            ("stream_type", "changes".to_string()),
            ("stream_position", at),
            ("limit", "100".into()),
        ];
        let page = get_json(&client, &format!("{api}/events"), &query, token).await?;
        requests += 1;
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        for event in &entries {
            let source = &event["source"];
            if let (Some(kind), Some(id)) = (source["type"].as_str(), source["id"].as_str()) {
                named.insert((kind.to_string(), id.to_string()));
            }
        }
        if entries.is_empty() {
            break;
        }
        position = page["next_stream_position"].clone();
    }
    for (kind, id) in named {
        let query = [("fields", BOX_FIELDS.to_string())];
        get_json(&client, &format!("{api}/{kind}s/{id}"), &query, token).await?;
        requests += 1;
    }
    Ok(requests)
}

async fn get_json(
    client: &reqwest::Client,
    url: &str,
    query: &[(&str, String)],
    token: &str,
) -> Result<Value> {
    let body = client
        .get(url)
        .query(query)
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    Ok(serde_json::from_slice(&body)?)
}
