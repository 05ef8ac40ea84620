//! Drive's listings, drive by drive (contract section 11): My Drive with `corpora=user`, then
//! each shared drive the user is a member of (`drives.list`) with `corpora=drive`, then the
//! changes feed of them all. `files.list` documents `corpora=allDrives` as the one to avoid
//! ("Prefer 'user' or 'drive' to 'allDrives' for efficiency"): its answers may say
//! `incompleteSearch: true`, and a listing that skipped files would, after a restart, have the
//! hub mark them deleted. So the hub never uses it, and refuses any answer that says it is
//! incomplete (<https://developers.google.com/drive/api/reference/rest/v3/files/list>).
//!
//! The changes feed reports a drive the user joined or left as a change of `changeType`
//! `drive` (<https://developers.google.com/drive/api/reference/rest/v3/changes#Change>): a
//! removed one is reported to the worker as removed (which marks its entries deleted), and a
//! new (or renamed) one is listed with `corpora=drive` before the feed goes on, since Drive
//! reports no change for the files a joined drive already held.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{GoogleDrive, ALL_DRIVES_CHANGES, ALL_DRIVES_START};
use crate::error::ProviderError;
use crate::model::{ContentHash, DriveInfo, DriveKind, DriveReport, FileEntry, FileKind};
use crate::providers::{get_json, FilePage, NextPage};

/// Drive answers only id, name and mimeType unless asked for more with `fields`; `parents`,
/// `md5Checksum`, `driveId` and a shortcut's `shortcutDetails` too come only when named
/// (<https://developers.google.com/drive/api/guides/fields-parameter>).
pub(super) const FILE_FIELDS: &str =
    "id,name,mimeType,size,modifiedTime,webViewLink,trashed,parents,\
    md5Checksum,driveId,shortcutDetails(targetId)";
const PAGE_SIZE: &str = "1000";
/// `drives.list` takes at most 100 a page
/// (<https://developers.google.com/drive/api/reference/rest/v3/drives/list>).
const DRIVES_PAGE_SIZE: &str = "100";

/// Drive's folder and shortcut types
/// (<https://developers.google.com/drive/api/guides/mime-types>,
/// <https://developers.google.com/drive/api/guides/shortcuts>).
const FOLDER_MIME_TYPE: &str = "application/vnd.google-apps.folder";
const SHORTCUT_MIME_TYPE: &str = "application/vnd.google-apps.shortcut";

/// My Drive has no id of its own in Drive's API (only shared drives do): the hub gives it
/// this one, the same for every account (contract section 11: "an id the hub gives that
/// drive, stable for the account").
pub const MY_DRIVE_ID: &str = "my-drive";

/// Every listing says it supports shared drives and asks for their items: without both, a
/// shared drive's files (and those of shared drives shared with the user) are left out
/// (<https://developers.google.com/drive/api/guides/enable-shareddrives>).
pub(super) const SHARED_DRIVE_FLAGS: &[(&str, &str)] = &[
    ("supportsAllDrives", "true"),
    ("includeItemsFromAllDrives", "true"),
];

/// Where a Google sync stands, serialised as the opaque cursor.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub(super) enum Cursor {
    /// Listing drives with `files.list`, one after the other.
    Listing {
        /// The `changes` page token to read from once the drives are listed: taken before the
        /// first page of a whole enumeration, or the one after the changes page that named
        /// new drives (a catch-up).
        changes_from: String,
        /// A catch-up inside the changes feed: its end is not the end of the sync.
        catch_up: bool,
        /// The shared drive being listed; `None`: My Drive.
        drive: Option<String>,
        /// The next page of that drive's listing; `None`: its first.
        page_token: Option<String>,
        /// The shared drives to list after it.
        pending: Vec<String>,
    },
    /// Reading `changes.list` from `page_token`.
    Changes { page_token: String },
}

impl Cursor {
    pub(super) fn encode(&self) -> String {
        serde_json::to_string(self).expect("cursor JSON always serialises")
    }

    /// The `changes` page token a channel watches from: the token a finished sync reads
    /// changes from next, or, mid-listing, the one the feed goes on from after it.
    pub(super) fn watch_token(cursor: &str) -> Option<String> {
        match serde_json::from_str(cursor).ok()? {
            Cursor::Changes { page_token } => Some(page_token),
            Cursor::Listing { changes_from, .. } => Some(changes_from),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShortcutDetails {
    target_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DriveFile {
    id: String,
    name: Option<String>,
    mime_type: Option<String>,
    /// int64 as a decimal string; absent for Google Docs, Sheets and folders.
    size: Option<String>,
    modified_time: Option<DateTime<Utc>>,
    web_view_link: Option<String>,
    #[serde(default)]
    trashed: bool,
    /// Absent for files shared with the user from a folder the user cannot see, and for
    /// shared-drive roots.
    #[serde(default)]
    parents: Vec<String>,
    /// Only for files with binary content: not for Google Docs, Sheets or folders.
    md5_checksum: Option<String>,
    /// The shared drive of the item; absent in My Drive and for files shared with the user.
    drive_id: Option<String>,
    /// Only for shortcuts.
    shortcut_details: Option<ShortcutDetails>,
}

impl DriveFile {
    pub(super) fn into_entry(self) -> FileEntry {
        let kind = match self.mime_type.as_deref() {
            Some(FOLDER_MIME_TYPE) => FileKind::Folder,
            Some(SHORTCUT_MIME_TYPE) => FileKind::Shortcut,
            _ => FileKind::File,
        };
        let target_id = match kind {
            FileKind::Shortcut => self.shortcut_details.and_then(|details| details.target_id),
            _ => None,
        };
        FileEntry {
            id: self.id,
            name: self.name.unwrap_or_default(),
            mime_type: self.mime_type,
            size: self.size.and_then(|s| s.parse().ok()),
            modified_at: self.modified_time,
            web_url: self.web_view_link,
            deleted: self.trashed,
            kind: Some(kind),
            parent_ids: Some(self.parents),
            drive_id: self.drive_id,
            path: None,
            path_lower: None,
            content_hash: self.md5_checksum.map(|md5| ContentHash::new("md5", md5)),
            target_id,
            changed_at: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileList {
    next_page_token: Option<String>,
    /// Drive's own word that it did not search every item of the corpus.
    #[serde(default)]
    incomplete_search: bool,
    #[serde(default)]
    files: Vec<DriveFile>,
}

/// A shared drive, as `drives.list` and a drive change carry it.
#[derive(Deserialize)]
struct SharedDrive {
    id: String,
    name: Option<String>,
}

impl SharedDrive {
    fn into_info(self) -> DriveInfo {
        DriveInfo {
            name: self.name.unwrap_or_default(),
            id: self.id,
            kind: DriveKind::SharedDrive,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DriveList {
    next_page_token: Option<String>,
    #[serde(default)]
    drives: Vec<SharedDrive>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Change {
    /// `file` or `drive`.
    change_type: Option<String>,
    file_id: Option<String>,
    #[serde(default)]
    removed: bool,
    file: Option<DriveFile>,
    drive_id: Option<String>,
    drive: Option<SharedDrive>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeList {
    next_page_token: Option<String>,
    new_start_page_token: Option<String>,
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartPageToken {
    start_page_token: String,
}

fn my_drive() -> DriveInfo {
    DriveInfo {
        id: MY_DRIVE_ID.into(),
        name: "My Drive".into(),
        kind: DriveKind::MyDrive,
    }
}

/// Where a listing goes once the drive it lists has no page left: the next pending drive,
/// else the changes feed (the sync's end, unless this was a catch-up inside the feed).
fn after_drive(changes_from: String, catch_up: bool, mut pending: Vec<String>) -> NextPage {
    if pending.is_empty() {
        let changes = Cursor::Changes {
            page_token: changes_from,
        }
        .encode();
        return if catch_up {
            NextPage::More(changes)
        } else {
            NextPage::Done(changes)
        };
    }
    let drive = pending.remove(0);
    NextPage::More(
        Cursor::Listing {
            changes_from,
            catch_up,
            drive: Some(drive),
            page_token: None,
            pending,
        }
        .encode(),
    )
}

impl GoogleDrive {
    /// A whole enumeration: the `changes` token first (so nothing that changes meanwhile is
    /// missed), then every shared drive of the user, then My Drive's first page. The page
    /// reports every drive.
    pub(super) async fn start_listing(
        &self,
        token: &SecretString,
    ) -> Result<FilePage, ProviderError> {
        let start: StartPageToken = get_json(
            &self.http,
            &format!("{}/drive/v3/changes/startPageToken", self.api_url),
            ALL_DRIVES_START,
            token,
        )
        .await?;
        let shared = self.shared_drives(token).await?;
        let pending = shared.iter().map(|drive| drive.id.clone()).collect();
        let mut drives = vec![my_drive()];
        drives.extend(shared);
        let page = self
            .list_drive(token, start.start_page_token, false, None, None, pending)
            .await?;
        Ok(page.with_drives(DriveReport::All(drives)))
    }

    /// Every shared drive the user is a member of, all pages of `drives.list`.
    async fn shared_drives(&self, token: &SecretString) -> Result<Vec<DriveInfo>, ProviderError> {
        let url = format!("{}/drive/v3/drives", self.api_url);
        let (mut drives, mut page_token) = (Vec::new(), None::<String>);
        loop {
            let mut query = vec![
                ("pageSize", DRIVES_PAGE_SIZE),
                ("fields", "nextPageToken,drives(id,name)"),
            ];
            if let Some(page_token) = &page_token {
                query.push(("pageToken", page_token));
            }
            let list: DriveList = get_json(&self.http, &url, &query, token).await?;
            drives.extend(list.drives.into_iter().map(SharedDrive::into_info));
            match list.next_page_token {
                // A page token handed back unchanged would list the same page for ever.
                Some(next) if page_token.as_ref() != Some(&next) => page_token = Some(next),
                Some(_) => {
                    return Err(ProviderError::Rejected(
                        "drives.list repeated its page token".into(),
                    ))
                }
                None => return Ok(drives),
            }
        }
    }

    /// One page of one drive's listing: My Drive (`corpora=user`: the user's files and those
    /// shared with the user) or one shared drive (`corpora=drive`).
    pub(super) async fn list_drive(
        &self,
        token: &SecretString,
        changes_from: String,
        catch_up: bool,
        drive: Option<String>,
        page_token: Option<String>,
        pending: Vec<String>,
    ) -> Result<FilePage, ProviderError> {
        let fields = format!("nextPageToken,incompleteSearch,files({FILE_FIELDS})");
        let mut query = vec![
            ("pageSize", PAGE_SIZE),
            ("fields", fields.as_str()),
            ("q", "trashed = false"),
            ("spaces", "drive"),
        ];
        query.extend_from_slice(SHARED_DRIVE_FLAGS);
        match &drive {
            Some(drive) => query.extend([("corpora", "drive"), ("driveId", drive.as_str())]),
            None => query.push(("corpora", "user")),
        }
        if let Some(page_token) = &page_token {
            query.push(("pageToken", page_token));
        }
        // My Drive's first page starts the enumeration; every other page continues it.
        let http = match (&drive, &page_token) {
            (None, None) => &self.http,
            _ => &self.continued_listing_http,
        };
        let list: FileList = get_json(
            http,
            &format!("{}/drive/v3/files", self.api_url),
            &query,
            token,
        )
        .await?;
        if list.incomplete_search {
            return Err(ProviderError::Rejected(
                "Drive answered a listing that says it is incomplete (incompleteSearch)".into(),
            ));
        }
        let next = match list.next_page_token {
            Some(page_token) => NextPage::More(
                Cursor::Listing {
                    changes_from,
                    catch_up,
                    drive,
                    page_token: Some(page_token),
                    pending,
                }
                .encode(),
            ),
            None => after_drive(changes_from, catch_up, pending),
        };
        Ok(FilePage::of_files(
            list.files.into_iter().map(DriveFile::into_entry).collect(),
            next,
        ))
    }

    /// One page of the changes of every drive: files changed or removed, and drives joined,
    /// changed or left. Joined or changed drives are listed next (a catch-up), then the feed
    /// goes on.
    pub(super) async fn list_changes(
        &self,
        token: &SecretString,
        page_token: &str,
    ) -> Result<FilePage, ProviderError> {
        let fields = format!(
            "nextPageToken,newStartPageToken,\
             changes(changeType,fileId,removed,driveId,drive(id,name),file({FILE_FIELDS}))"
        );
        let mut query = vec![
            ("pageToken", page_token),
            ("pageSize", PAGE_SIZE),
            ("fields", fields.as_str()),
            ("includeRemoved", "true"),
            ("spaces", "drive"),
        ];
        query.extend_from_slice(ALL_DRIVES_CHANGES);
        let list: ChangeList = get_json(
            &self.http,
            &format!("{}/drive/v3/changes", self.api_url),
            &query,
            token,
        )
        .await?;
        let (mut files, mut seen, mut removed) = (Vec::new(), Vec::new(), Vec::new());
        for change in list.changes {
            if change.change_type.as_deref() == Some("drive") {
                match (change.removed, change.drive, change.drive_id) {
                    (true, _, Some(id)) => removed.push(id),
                    (false, Some(drive), _) => seen.push(drive.into_info()),
                    _ => {}
                }
                continue;
            }
            match (change.removed, change.file, change.file_id) {
                (false, Some(file), _) => files.push(file.into_entry()),
                (_, file, Some(id)) => files.push(FileEntry {
                    name: file.and_then(|f| f.name).unwrap_or_default(),
                    ..FileEntry::tombstone(id)
                }),
                _ => {}
            }
        }
        let catch_up: Vec<String> = seen.iter().map(|drive| drive.id.clone()).collect();
        let next = match (list.next_page_token, list.new_start_page_token) {
            (next, done) if !catch_up.is_empty() => {
                let changes_from = next.or(done).ok_or_else(|| {
                    ProviderError::Rejected(
                        "Drive answered with neither nextPageToken nor newStartPageToken".into(),
                    )
                })?;
                after_drive(changes_from, true, catch_up)
            }
            (next, done) => {
                let changes_from = |page_token| Cursor::Changes { page_token }.encode();
                NextPage::from_links(
                    next.map(changes_from),
                    done.map(changes_from),
                    "nextPageToken nor newStartPageToken",
                )?
            }
        };
        let page = FilePage::of_files(files, next);
        if seen.is_empty() && removed.is_empty() {
            return Ok(page);
        }
        Ok(page.with_drives(DriveReport::Changed { seen, removed }))
    }
}
