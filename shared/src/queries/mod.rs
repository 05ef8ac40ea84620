//! Querying the index: `GET /users/{id}/files` with its filters (docs/API.md, "Files").
//!
//! A query reads one of the index's orders, chosen by its filters, and applies the other
//! filters to what it read ([`FileFilter::matches`]):
//! - `parent_id`: the folder's entries in its drive's folder index (`FileStore::list_folder`),
//!   found through the folder's own entry; `root`, each drive's top (see [`plan`]);
//! - else `path_prefix`: the entries at or under the path (`FileStore::list_under_path`);
//! - else `drive_id`: the drive's entries in the folder index;
//! - else the whole index in file-id order.
//!
//! A page reads at most `limit` index items (and a few to find a drive's root), whatever it
//! keeps of them: a page may hold fewer than `limit` entries, even none, and still carry a
//! `next_cursor`. Its cursor names where it stopped and the filters' tag
//! ([`FileFilter::tag`]): a cursor sent with other filters is `invalid_request`.

mod filter;
mod plan;

use serde::{Deserialize, Serialize};

pub use filter::{lower, path_prefix, under_path, Deleted, FileFilter, Parent};
pub use plan::MAX_DEPTH;

use crate::cursor::{self, Cursor, Position, Route};
use crate::error::{HubError, HubResult};
use crate::model::FileEntry;
use crate::store::Store;

/// The page size of `/users/{id}/files`: 100 unless asked, at most 1000.
pub const DEFAULT_FILE_PAGE: usize = 100;
pub const MAX_FILE_PAGE: usize = 1000;

#[derive(Debug, Serialize, PartialEq)]
pub struct FilesPage {
    pub files: Vec<FileEntry>,
    pub next_cursor: Option<String>,
    /// The index items the page read: its cost, logged, and what the tests measure.
    #[serde(skip)]
    pub read: u64,
}

/// Where a page of `/users/{id}/files` ended, as its cursor carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilesPosition {
    /// A cursor from before the filters: the last file id of an unfiltered listing. Taken
    /// only without filters, where it still means what it meant.
    Legacy(String),
    Query(QueryPosition),
}

/// Where a filtered listing stopped: in which of its sources, and where in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryPosition {
    /// The filters' tag ([`FileFilter::tag`]).
    #[serde(rename = "f")]
    pub filters: String,
    /// The drive of a folder listing's source.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub drive: Option<String>,
    /// The folder of that source ([`crate::store::Folder::key`]); `None`: the whole drive.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// The store's position in the source; `None`: its start.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl Position for FilesPosition {
    const ROUTE: Route = Route::Files;

    /// A JSON object: no file id a provider gives starts with `{`, so a legacy cursor (a
    /// bare id) never reads as one.
    fn write(&self) -> String {
        match self {
            FilesPosition::Legacy(id) => id.clone(),
            FilesPosition::Query(position) => {
                serde_json::to_string(position).expect("a position always serialises")
            }
        }
    }

    fn read(text: &str) -> Option<Self> {
        if text.starts_with('{') {
            return serde_json::from_str(text).ok().map(FilesPosition::Query);
        }
        (!text.is_empty()).then(|| FilesPosition::Legacy(text.to_string()))
    }
}

/// A decoded `next_cursor` of a file index: whose index and filters are checked by [`files`].
pub type FileCursor = Cursor<FilesPosition>;

fn refused() -> HubError {
    HubError::InvalidRequest(
        "cursor was issued for other filters; send the filters it was issued with, or start \
         again without one"
            .into(),
    )
}

/// One page of an account's entries that pass `filter`: up to `limit` (1 to
/// [`MAX_FILE_PAGE`]) from where `after` ended (from the start without one). A cursor of
/// another account's index or of other filters is `invalid_request`.
pub async fn files(
    store: &dyn Store,
    account_id: &str,
    filter: &FileFilter,
    limit: usize,
    after: Option<FileCursor>,
) -> HubResult<FilesPage> {
    let Some(account) = store.get_account(account_id).await? else {
        return Err(HubError::AccountNotFound(account_id.to_string()));
    };
    let tag = filter.tag();
    let start = match after
        .map(|cursor| cursor.of(Some(account_id)))
        .transpose()?
    {
        None => None,
        Some(FilesPosition::Legacy(id)) if filter.is_default() => Some(QueryPosition {
            filters: tag.clone(),
            drive: None,
            folder: None,
            after: Some(id),
        }),
        Some(FilesPosition::Query(position)) if position.filters == tag => Some(position),
        Some(_) => return Err(refused()),
    };
    let mut drives: Vec<String> = account.drives.iter().map(|d| d.id.clone()).collect();
    drives.sort();
    drives.dedup();
    let page = plan::run(store, account_id, &drives, filter, start, limit).await?;
    tracing::info!(
        account_id,
        read = page.read,
        returned = page.files.len(),
        "files page"
    );
    Ok(FilesPage {
        files: page.files,
        read: page.read,
        next_cursor: page.next.map(|position| {
            cursor::encode(
                Some(account_id),
                &FilesPosition::Query(QueryPosition {
                    filters: tag.clone(),
                    ..position
                }),
            )
        }),
    })
}
