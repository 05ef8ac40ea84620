//! Querying the index at scale (docs/API.md, "File index and change feed"): a folder of 100
//! files listed (`parent_id`) in accounts of 1,000, 10,000 and 100,000 entries, on the local
//! store and on DynamoDB (moto), with the items each listing reads (what DynamoDB bills as
//! read units: a query reads the index items it returns and the entries they name) and its
//! time; then each other filter's items read per entry returned, in the largest account
//! (on moto the smallest).
//! On moto the listings and the filters are also sent through the recording proxy
//! ([`crate::proxy`]), which estimates the read units DynamoDB would bill for each call
//! (moto reports none): what a filter costs per entry it returns.
//!
//! The entries are written through the store (`put_files`, as the worker writes a page), so
//! the indexes hold what a sync would leave. Nothing here asserts a duration.

use std::time::Instant;

use hub::model::{Drive, DriveKind, DriveStatus, FileEntry, FileKind};
use hub::queries::{self, FileFilter, Parent};
use hub::store::{dynamo::DynamoStore, local::LocalStore, Store, Write};
use serde::{Deserialize, Serialize};

use crate::moto::{self, Resources};
use crate::proxy::Proxy;
use crate::support::{self, note, Result, Summary};

/// Files in the folder listed.
const FOLDER_SIZE: usize = 100;
/// Folders the rest of the account is spread over.
const OTHER_FOLDERS: usize = 500;
/// Entries per `put_files` call: a provider's page.
const PAGE: usize = 1000;
/// Listings timed per account: fewer on moto, which scans the whole table for every index
/// query (its times are moto's, not DynamoDB's; the items read are what DynamoDB bills).
const RUNS: usize = 20;
const MOTO_RUNS: usize = 5;

pub struct Options {
    pub sizes: Vec<usize>,
    pub aws_sizes: Vec<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub folder_listings: Vec<FolderListing>,
    pub filters: Vec<FilterCost>,
}

/// One folder's listing in an account of `account_entries`.
#[derive(Debug, Serialize, Deserialize)]
pub struct FolderListing {
    pub backend: String,
    pub account_entries: usize,
    pub returned: usize,
    /// Index items the listing read (the store's own count).
    pub items_read: u64,
    pub ms: Summary,
    /// One listing's read units, as the proxy estimates them (moto only).
    #[serde(default)]
    pub read_units: Option<f64>,
    /// How long writing the account's entries took (on moto, what the size costs).
    #[serde(default)]
    pub seed_seconds: f64,
}

/// What a filter reads for what it returns, in the largest local account.
#[derive(Debug, Serialize, Deserialize)]
pub struct FilterCost {
    pub backend: String,
    pub filter: String,
    pub account_entries: usize,
    pub returned: usize,
    pub items_read: u64,
    /// Every page's read units, as the proxy estimates them (moto only).
    #[serde(default)]
    pub read_units: Option<f64>,
    /// How long reading every page took.
    #[serde(default)]
    pub seconds: f64,
}

pub async fn run(options: Options) -> Result<Results> {
    let loadavg_before = support::loadavg();
    let mut folder_listings = Vec::new();
    let mut filters = Vec::new();
    for &size in &options.sizes {
        let dir = tempfile::tempdir()?;
        let store = LocalStore::open(dir.path())?;
        let started = Instant::now();
        let account = seed(&store, size).await?;
        let seed_seconds = started.elapsed().as_secs_f64();
        let mut listing = list_folder(&store, "local", &account, size, RUNS).await?;
        listing.seed_seconds = seed_seconds;
        folder_listings.push(listing);
        if Some(&size) == options.sizes.iter().max() {
            filters = filter_costs(&store, None, "local", &account, size).await?;
        }
    }
    if !options.aws_sizes.is_empty() {
        let endpoint = moto::endpoint()?;
        let sdk = moto::sdk_config(&endpoint).await;
        let proxy = Proxy::start(&endpoint).await?;
        let counted_sdk = moto::sdk_config(&proxy.url).await;
        for &size in &options.aws_sizes {
            let resources = Resources::create(&sdk, "bench-queries").await?;
            // Written and timed straight at moto; counted through the proxy.
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &resources.table);
            let counted = DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&counted_sdk),
                &resources.table,
            );
            let started = Instant::now();
            let account = seed(&store, size).await?;
            let seed_seconds = started.elapsed().as_secs_f64();
            let backend = "dynamodb (moto)";
            let mut listing = list_folder(&store, backend, &account, size, MOTO_RUNS).await?;
            listing.seed_seconds = seed_seconds;
            proxy.start_counting();
            list_folder(&counted, backend, &account, size, 1).await?;
            listing.read_units = Some(proxy.stop_counting().read_units);
            folder_listings.push(listing);
            // Moto scans the whole table for every index query, so each page of a filter
            // that reads the whole account costs seconds per thousand entries: the filters
            // run in the smallest account there (read units per returned entry are what
            // they show; the local store shows them at the largest size).
            if Some(&size) == options.aws_sizes.iter().min() {
                let costs = filter_costs(&counted, Some(&proxy), backend, &account, size);
                filters.extend(costs.await?);
            }
            note(
                "queries",
                format!(
                    "moto, {size} entries: written in {seed_seconds:.0} s, {} s with the reads",
                    started.elapsed().as_secs()
                ),
            );
        }
    }
    Ok(Results {
        loadavg_before,
        loadavg_after: support::loadavg(),
        folder_listings,
        filters,
    })
}

/// An account of `size` entries in its My Drive: the listed folder with its
/// [`FOLDER_SIZE`] files, and the rest spread over [`OTHER_FOLDERS`] folders.
async fn seed(store: &dyn Store, size: usize) -> Result<String> {
    let mut account = hub::testing::account("google")
        .user(&uuid::Uuid::new_v4().to_string())
        .build();
    account.drives = vec![Drive {
        id: "my-drive".into(),
        name: "My Drive".into(),
        kind: DriveKind::MyDrive,
        status: DriveStatus::Active,
        file_count: 0,
        last_synced_at: None,
    }];
    if store.create_account(&account).await? != Write::Done {
        return Err("the account could not be created".into());
    }
    let started = Instant::now();
    let entry = |id: String, parent: &str, kind: FileKind| FileEntry {
        kind: Some(kind),
        mime_type: Some(match kind {
            FileKind::Folder => "application/vnd.google-apps.folder".into(),
            _ => "application/pdf".into(),
        }),
        size: Some(48_211),
        modified_at: Some(chrono::Utc::now()),
        parent_ids: Some(vec![parent.to_string()]),
        drive_id: Some("my-drive".into()),
        ..FileEntry::new(id.clone(), format!("{id}.pdf"))
    };
    let mut entries = vec![entry("listed".into(), "0AROOT", FileKind::Folder)];
    entries
        .extend((0..OTHER_FOLDERS).map(|n| entry(format!("dir{n}"), "0AROOT", FileKind::Folder)));
    entries.extend((0..FOLDER_SIZE).map(|n| entry(format!("in{n}"), "listed", FileKind::File)));
    let rest = size.saturating_sub(entries.len());
    entries.extend((0..rest).map(|n| {
        let folder = format!("dir{}", n % OTHER_FOLDERS);
        entry(format!("f{n:07}"), &folder, FileKind::File)
    }));
    let mut seq = 1;
    for page in entries.chunks(PAGE) {
        store.put_files(&account.id, page, 0, seq).await?;
        seq += page.len() as u64;
    }
    note(
        "queries",
        format!(
            "{} entries written in {:.1} s",
            entries.len(),
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(account.id)
}

async fn list_folder(
    store: &dyn Store,
    backend: &str,
    account_id: &str,
    size: usize,
    runs: usize,
) -> Result<FolderListing> {
    let filter = FileFilter {
        parent: Some(Parent::Id("listed".into())),
        ..FileFilter::default()
    };
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let page = queries::files(store, account_id, &filter, FOLDER_SIZE + 1, None).await?;
        times.push(support::ms(started.elapsed()));
        last = Some(page);
    }
    let page = last.ok_or("no listing ran")?;
    if page.files.len() != FOLDER_SIZE {
        return Err(format!(
            "the folder listed {} entries, not {FOLDER_SIZE}",
            page.files.len()
        )
        .into());
    }
    Ok(FolderListing {
        backend: backend.into(),
        account_entries: size,
        returned: page.files.len(),
        items_read: page.read,
        ms: Summary::of(&times),
        read_units: None,
        seed_seconds: 0.0,
    })
}

/// Every page of each filter, what it read and what it returned (and, with the proxy in
/// front of `store`, the read units it would be billed).
async fn filter_costs(
    store: &dyn Store,
    proxy: Option<&Proxy>,
    backend: &str,
    account_id: &str,
    size: usize,
) -> Result<Vec<FilterCost>> {
    let cases: Vec<(&str, FileFilter)> = vec![
        (
            "parent_id=<folder of 100>",
            FileFilter {
                parent: Some(Parent::Id("listed".into())),
                ..FileFilter::default()
            },
        ),
        (
            "parent_id=root",
            FileFilter {
                parent: Some(Parent::Root),
                ..FileFilter::default()
            },
        ),
        (
            "drive_id=my-drive",
            FileFilter {
                drive_id: Some("my-drive".into()),
                ..FileFilter::default()
            },
        ),
        (
            "kind=folder",
            FileFilter {
                kind: Some(FileKind::Folder),
                ..FileFilter::default()
            },
        ),
        (
            "name_prefix=in (100 match)",
            FileFilter {
                name_prefix: Some("in".into()),
                ..FileFilter::default()
            },
        ),
    ];
    let mut costs = Vec::new();
    for (name, filter) in cases {
        let (mut returned, mut read, mut cursor) = (0, 0, None);
        let started = Instant::now();
        if let Some(proxy) = proxy {
            proxy.start_counting();
        }
        loop {
            let page = queries::files(store, account_id, &filter, 1000, cursor).await?;
            returned += page.files.len();
            read += page.read;
            match page.next_cursor {
                Some(next) => cursor = Some(hub::cursor::decode(&next)?),
                None => break,
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let read_units = proxy.map(|proxy| proxy.stop_counting().read_units);
        note(
            "queries",
            format!("{backend}, {name}: {returned} returned, {read} read in {seconds:.1} s"),
        );
        costs.push(FilterCost {
            backend: backend.into(),
            filter: name.into(),
            account_entries: size,
            returned,
            items_read: read,
            read_units,
            seconds,
        });
    }
    Ok(costs)
}
