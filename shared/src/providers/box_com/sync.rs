//! How a Box account is read: first `GET /events?stream_position=now` (where the changes
//! after the enumeration start), then a walk of the tree from the root folder `0`, folder by
//! folder (`GET /folders/{id}/items` with marker paging), then, in later syncs, the user's
//! `changes` event stream from the saved position (<https://developer.box.com/guides/events/>).
//!
//! Box "may return events more than once or out of chronological order", so the events are
//! not applied as they come: for every item a page of events names, the hub reads the item's
//! state now (`GET /files/{id}`, `GET /folders/{id}`); a 404 (trashed, purged, or under a
//! trashed folder) or an `item_status` other than `active` is a deletion, anything else the
//! entry as it is. Reading twice or in any order ends at Box's state.
//!
//! A folder's event says nothing of the items under it, whose paths (a move, a rename), or
//! presence (a restore, a copy) changed with it. So every live folder a page names is walked
//! again (its subtree, in the cursor like the first walk) before the events go on. A folder a
//! page names that is gone takes its subtree with it, unnamed: the enumeration starts over
//! (the worker reconciles what it no longer sees), at the cost of one full walk per such page.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::BoxConnector;
use crate::error::ProviderError;
use crate::model::{ContentHash, DriveInfo, DriveKind, DriveReport, FileEntry, FileKind};
use crate::providers::answers::Endpoint;
use crate::providers::http::read_json;
use crate::providers::{get_json, FilePage, NextPage};

/// What an entry needs of an item; Box answers only the base fields unless asked
/// (<https://developer.box.com/guides/api-calls/request-extra-fields/>).
pub(super) const FIELDS: &str =
    "type,id,name,size,sha1,modified_at,item_status,parent,path_collection";
/// Box's most per page of `/folders/{id}/items`
/// (<https://developer.box.com/reference/get-folders-id-items/>).
const ITEMS_LIMIT: usize = 1000;
/// Events per page: each distinct item an event names costs one read, so a page stays small.
const EVENTS_LIMIT: usize = 100;
/// Folder listings asked per page of the walk at most: small folders share a page.
const LISTINGS_PER_PAGE: usize = 10;
/// Box's root folder, "All Files" (<https://developer.box.com/guides/folders/>).
const ROOT: &str = "0";

/// Box names no drive: the hub gives the account's one this id, the same for every account.
pub const BOX_DRIVE_ID: &str = "box";

/// How long the hub reads on from a saved stream position: Box keeps the `changes` stream's
/// events 21 days (<https://developer.box.com/guides/events/parameters/stream-types/>) and
/// documents no answer for a position older than that, so a position saved longer than this
/// (an account paused for weeks, then connected again) starts the enumeration over, which
/// reconciles, rather than risk reading a stream with a gap.
const POSITION_LIFETIME: chrono::Duration = chrono::Duration::days(14);

/// A stream position and when Box gave it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Stream {
    position: String,
    at: DateTime<Utc>,
}

impl Stream {
    fn now(position: String) -> Stream {
        Stream {
            position,
            at: Utc::now(),
        }
    }

    fn too_old(&self, now: DateTime<Utc>) -> bool {
        now - self.at > POSITION_LIFETIME
    }
}

/// Where a Box sync stands, serialised as the opaque cursor.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "phase", rename_all = "snake_case")]
enum Cursor {
    /// Walking folders: the first of `folders` from `marker`, then the others. Events after
    /// `stream` are read next.
    Walk {
        stream: Stream,
        folders: Vec<String>,
        marker: Option<String>,
        /// The walk is a whole enumeration, whose end ends the sync; else a walk of subtrees
        /// inside the event stream, which goes on reading events after it.
        enumeration: bool,
    },
    /// Reading the events after `stream`.
    Events { stream: Stream },
}

impl Cursor {
    fn encode(&self) -> String {
        serde_json::to_string(self).expect("cursor JSON always serialises")
    }
}

/// A Box item as `FIELDS` selects it.
#[derive(Deserialize)]
pub(super) struct Item {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    name: Option<String>,
    size: Option<u64>,
    sha1: Option<String>,
    modified_at: Option<DateTime<Utc>>,
    item_status: Option<String>,
    parent: Option<Mini>,
    path_collection: Option<PathCollection>,
}

#[derive(Deserialize)]
struct Mini {
    id: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct PathCollection {
    entries: Vec<Mini>,
}

#[derive(Deserialize)]
struct Items {
    entries: Vec<Item>,
    next_marker: Option<String>,
}

#[derive(Deserialize)]
struct Events {
    entries: Vec<Event>,
    /// A number or a string, as Box's reference allows both.
    next_stream_position: Value,
}

#[derive(Deserialize)]
struct Event {
    source: Option<Value>,
}

fn position_of(value: &Value) -> Result<String, ProviderError> {
    match value {
        Value::String(text) if !text.is_empty() => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        _ => Err(ProviderError::Rejected(
            "Box answered events without next_stream_position".into(),
        )),
    }
}

/// The entry id of a Box item: its type and id, since files and folders are numbered apart.
fn entry_id(kind: &str, id: &str) -> String {
    format!("{kind}_{id}")
}

impl Item {
    fn is_folder(&self) -> bool {
        self.kind == "folder"
    }

    fn active(&self) -> bool {
        self.item_status
            .as_deref()
            .is_none_or(|status| status == "active")
    }

    /// `/A/B/name`: the folders of `path_collection` below the root, then the item.
    fn path(&self) -> Option<String> {
        let folders = self.path_collection.as_ref()?;
        let mut names: Vec<&str> = folders
            .entries
            .iter()
            .filter(|folder| folder.id != ROOT)
            .map(|folder| folder.name.as_deref().unwrap_or(""))
            .collect();
        names.push(self.name.as_deref()?);
        Some(format!("/{}", names.join("/")))
    }

    pub(super) fn into_entry(self) -> FileEntry {
        let id = entry_id(&self.kind, &self.id);
        if !self.active() {
            return FileEntry::tombstone(id);
        }
        let folder = self.is_folder();
        // Box's web app opens an item at these addresses; the API names none for an item
        // without a shared link.
        let web_url = format!("https://app.box.com/{}/{}", self.kind, self.id);
        FileEntry {
            kind: Some(if folder {
                FileKind::Folder
            } else {
                FileKind::File
            }),
            size: self.size,
            modified_at: self.modified_at,
            web_url: Some(web_url),
            path: self.path(),
            parent_ids: Some(
                self.parent
                    .iter()
                    .map(|parent| entry_id("folder", &parent.id))
                    .collect(),
            ),
            content_hash: self.sha1.clone().map(|sha1| ContentHash::new("sha1", sha1)),
            ..FileEntry::new(id, self.name.clone().unwrap_or_default())
        }
    }
}

fn home_drive() -> DriveInfo {
    DriveInfo {
        id: BOX_DRIVE_ID.into(),
        name: "Box".into(),
        kind: DriveKind::Box,
    }
}

/// One call of `list_page`.
pub(super) struct Sync<'a> {
    pub box_: &'a BoxConnector,
    pub access_token: &'a SecretString,
}

impl Sync<'_> {
    pub(super) async fn page(&self, cursor: Option<&str>) -> Result<FilePage, ProviderError> {
        let Some(cursor) = cursor else {
            return self.start().await;
        };
        // A cursor this module did not write cannot be read on: start over, reconciling.
        match serde_json::from_str(cursor).map_err(|_| ProviderError::CursorExpired)? {
            Cursor::Walk {
                stream,
                folders,
                marker,
                enumeration,
            } => self.walk(stream, folders, marker, enumeration).await,
            Cursor::Events { stream } if stream.too_old(Utc::now()) => {
                tracing::info!("the saved Box stream position is too old; enumerating again");
                Err(ProviderError::CursorExpired)
            }
            Cursor::Events { stream } => self.events(stream).await,
        }
    }

    /// Takes the stream position first, so that nothing changing during the walk is missed,
    /// then walks from the root.
    async fn start(&self) -> Result<FilePage, ProviderError> {
        let url = format!("{}/events", self.box_.api_url);
        let now: Events = get_json(
            &self.box_.http,
            &url,
            &[("stream_type", "changes"), ("stream_position", "now")],
            self.access_token,
        )
        .await?;
        let stream = Stream::now(position_of(&now.next_stream_position)?);
        let page = self.walk(stream, vec![ROOT.into()], None, true).await?;
        Ok(page.with_drives(DriveReport::All(vec![home_drive()])))
    }

    /// Lists folders from the cursor on until a page is full or a few listings were asked;
    /// the folders found join the walk. The cursor holds the folders still to list, so a
    /// folder with tens of thousands of subfolders makes a cursor of hundreds of kilobytes:
    /// the one Box shape whose cursor is not small.
    async fn walk(
        &self,
        stream: Stream,
        mut folders: Vec<String>,
        mut marker: Option<String>,
        enumeration: bool,
    ) -> Result<FilePage, ProviderError> {
        let mut files = Vec::new();
        let mut listings = 0;
        while let Some(folder) = folders.first().cloned() {
            if files.len() >= ITEMS_LIMIT || listings >= LISTINGS_PER_PAGE {
                break;
            }
            listings += 1;
            let items = self.list_folder(&folder, marker.as_deref()).await?;
            let mut found = Vec::new();
            for item in items.entries {
                if item.is_folder() && item.active() {
                    found.push(item.id.clone());
                }
                files.push(item.into_entry());
            }
            // Depth first: the subfolders go right after the folder being listed, so the
            // cursor holds the folders left along one path, not a whole level of the tree.
            folders.splice(1..1, found);
            marker = items.next_marker.filter(|marker| !marker.is_empty());
            if marker.is_none() {
                folders.remove(0);
            }
        }
        let next = match (folders.is_empty(), enumeration) {
            (false, _) => NextPage::More(
                Cursor::Walk {
                    stream,
                    folders,
                    marker,
                    enumeration,
                }
                .encode(),
            ),
            (true, true) => NextPage::Done(Cursor::Events { stream }.encode()),
            (true, false) => NextPage::More(Cursor::Events { stream }.encode()),
        };
        Ok(FilePage::of_files(files, next))
    }

    async fn list_folder(
        &self,
        folder: &str,
        marker: Option<&str>,
    ) -> Result<Items, ProviderError> {
        let url = format!("{}/folders/{folder}/items", self.box_.api_url);
        let limit = ITEMS_LIMIT.to_string();
        let mut query = vec![
            ("fields", FIELDS),
            ("usemarker", "true"),
            ("limit", limit.as_str()),
        ];
        if let Some(marker) = marker {
            query.push(("marker", marker));
        }
        get_json(&self.box_.http, &url, &query, self.access_token).await
    }

    /// One page of events: the state now of every item they name; the live folders among
    /// them walked again next; a folder gone starts the enumeration over.
    async fn events(&self, stream: Stream) -> Result<FilePage, ProviderError> {
        let url = format!("{}/events", self.box_.api_url);
        let limit = EVENTS_LIMIT.to_string();
        let page: Events = get_json(
            &self.box_.http,
            &url,
            &[
                ("stream_type", "changes"),
                ("stream_position", stream.position.as_str()),
                ("limit", limit.as_str()),
            ],
            self.access_token,
        )
        .await?;
        let next = Stream::now(position_of(&page.next_stream_position)?);
        // Box may answer fewer events than `limit` (and repeats count too): only an empty
        // page says the stream is read to its end.
        let read_all = page.entries.is_empty();
        let named: BTreeSet<(String, String)> = page
            .entries
            .iter()
            .filter_map(|event| {
                let source = event.source.as_ref()?;
                let kind = source.get("type")?.as_str()?;
                let id = source.get("id")?.as_str()?;
                matches!(kind, "file" | "folder").then(|| (kind.to_string(), id.to_string()))
            })
            .collect();
        let mut files = Vec::with_capacity(named.len());
        let mut walk_again = Vec::new();
        for (kind, id) in named {
            match self.item(&kind, &id).await? {
                Some(item) if item.active() => {
                    if item.is_folder() {
                        walk_again.push(item.id.clone());
                    }
                    files.push(item.into_entry());
                }
                // A folder gone took its subtree with it, unnamed: enumerate again.
                _ if kind == "folder" => return Err(ProviderError::CursorExpired),
                _ => files.push(FileEntry::tombstone(entry_id(&kind, &id))),
            }
        }
        let next = if !walk_again.is_empty() {
            NextPage::More(
                Cursor::Walk {
                    stream: next,
                    folders: walk_again,
                    marker: None,
                    enumeration: false,
                }
                .encode(),
            )
        } else {
            let cursor = Cursor::Events { stream: next }.encode();
            if read_all {
                NextPage::Done(cursor)
            } else {
                NextPage::More(cursor)
            }
        };
        Ok(FilePage::of_files(files, next))
    }

    /// The item's state now; `None` when Box answers 404 (trashed, purged, or under a
    /// trashed folder: <https://developer.box.com/reference/get-files-id-trash/>).
    async fn item(&self, kind: &str, id: &str) -> Result<Option<Item>, ProviderError> {
        let url = format!("{}/{kind}s/{id}", self.box_.api_url);
        let token = self.access_token.expose_secret();
        let answer = self
            .box_
            .http
            .send_unless_missing(Endpoint::Api, |client| {
                client
                    .get(&url)
                    .query(&[("fields", FIELDS)])
                    .bearer_auth(token)
            })
            .await?;
        match answer {
            Some(response) => read_json(response, "Box").await.map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_are_named_by_type_and_id_with_their_path_from_the_root() {
        let item: Item = serde_json::from_value(json!({
            "type": "file", "id": "12", "etag": "1", "name": "a.txt", "size": 3,
            "sha1": "85136c79cbf9fe36bb9d05d0639c70c265c18d37",
            "modified_at": "2026-11-30T10:00:00-08:00", "item_status": "active",
            "parent": {"type": "folder", "id": "12", "name": "Docs"},
            "path_collection": {"total_count": 2, "entries": [
                {"type": "folder", "id": "0", "name": "All Files"},
                {"type": "folder", "id": "12", "name": "Docs"}]}
        }))
        .unwrap();
        let entry = item.into_entry();
        assert_eq!(entry.id, "file_12");
        assert_eq!(entry.parent_ids, Some(vec!["folder_12".to_string()]));
        assert_eq!(entry.path.as_deref(), Some("/Docs/a.txt"));
        assert_eq!(
            entry.content_hash,
            Some(ContentHash::new(
                "sha1",
                "85136c79cbf9fe36bb9d05d0639c70c265c18d37"
            ))
        );
        assert_eq!(
            entry.web_url.as_deref(),
            Some("https://app.box.com/file/12")
        );

        let trashed: Item = serde_json::from_value(json!({
            "type": "folder", "id": "12", "name": "Docs", "item_status": "trashed"
        }))
        .unwrap();
        let tombstone = trashed.into_entry();
        assert_eq!(
            (tombstone.id.as_str(), tombstone.deleted),
            ("folder_12", true)
        );
    }

    #[test]
    fn a_position_saved_longer_than_its_lifetime_is_too_old() {
        let stream = Stream::now("1152922976252290886".into());
        assert!(!stream.too_old(stream.at + chrono::Duration::days(13)));
        assert!(stream.too_old(stream.at + chrono::Duration::days(15)));
        let cursor = Cursor::Events {
            stream: stream.clone(),
        };
        let read: Cursor = serde_json::from_str(&cursor.encode()).unwrap();
        assert_eq!(read, cursor);
    }

    #[test]
    fn stream_positions_may_be_numbers_or_strings() {
        assert_eq!(
            position_of(&json!(1152922976252290886u64)).unwrap(),
            "1152922976252290886"
        );
        assert_eq!(position_of(&json!("now-ish")).unwrap(), "now-ish");
        assert!(position_of(&json!(null)).is_err());
    }
}
