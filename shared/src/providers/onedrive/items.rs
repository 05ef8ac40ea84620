//! Graph's driveItems as delta and children pages carry them, and the index entries they
//! become.
//!
//! Two kinds of item carry neither facet of their own a client might expect:
//! - A folder shared with the user and added to their OneDrive comes with a `remoteItem`
//!   facet (the folder's `id` and `parentReference.driveId` in the drive it lives in) and no
//!   `folder` facet of its own (<https://learn.microsoft.com/en-us/graph/api/resources/remoteitem>,
//!   <https://learn.microsoft.com/en-us/onedrive/developer/rest-api/concepts/using-sharing-links>):
//!   it is indexed as a folder, and its contents are listed from its own drive
//!   (`listing.rs`, the walk).
//! - A OneNote notebook is a `package` (type `oneNote`), not a folder of files
//!   (<https://learn.microsoft.com/en-us/graph/api/resources/package>): indexed as a file and
//!   never walked.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::model::{ContentHash, FileEntry, FileKind};

/// The `$select` of delta and children pages: what [`DriveItem`] reads. `parentReference`
/// carries the parent's `id` and the `driveId`; `file` carries `hashes`; `remoteItem` marks a
/// shared folder added to the drive, `package` a OneNote notebook.
pub(super) const ITEM_SELECT: &str = "id,name,size,file,folder,root,deleted,\
    lastModifiedDateTime,webUrl,parentReference,remoteItem,package";

#[derive(Deserialize)]
pub(super) struct DeltaPage {
    #[serde(default)]
    pub(super) value: Vec<DriveItem>,
    #[serde(rename = "@odata.nextLink")]
    pub(super) next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    pub(super) delta_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DriveItem {
    pub(super) id: String,
    name: Option<String>,
    size: Option<u64>,
    last_modified_date_time: Option<DateTime<Utc>>,
    web_url: Option<String>,
    file: Option<FileFacet>,
    folder: Option<serde_json::Value>,
    pub(super) root: Option<serde_json::Value>,
    deleted: Option<serde_json::Value>,
    parent_reference: Option<ParentReference>,
    pub(super) remote_item: Option<RemoteItem>,
}

/// The `remoteItem` facet: the item in the drive it lives in.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RemoteItem {
    pub(super) id: String,
    folder: Option<serde_json::Value>,
    parent_reference: Option<ParentReference>,
}

impl RemoteItem {
    /// The drive and id of a remote folder, whose contents are to be listed; `None` for a
    /// remote file.
    pub(super) fn folder(&self) -> Option<(String, String)> {
        self.folder.as_ref()?;
        let drive = self.parent_reference.as_ref()?.drive_id.clone()?;
        Some((drive, self.id.clone()))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileFacet {
    mime_type: Option<String>,
    hashes: Option<Hashes>,
}

/// Which hashes Graph computes depends on the drive: OneDrive for Business and SharePoint
/// give `sha256Hash` (not always) and `quickXorHash`, OneDrive personal `sha1Hash` and
/// `quickXorHash` (<https://learn.microsoft.com/en-us/graph/api/resources/hashes>).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Hashes {
    quick_xor_hash: Option<String>,
    sha1_hash: Option<String>,
}

impl Hashes {
    /// `quickXorHash`, else `sha1Hash` as `sha1`. Graph documents `quickXorHash` as "the only
    /// value that is guaranteed to be available for both OneDrive for work or school and
    /// OneDrive for home", and `sha256Hash` as "not supported. Don't use."
    /// (<https://learn.microsoft.com/en-us/graph/api/resources/hashes>), so a `sha256Hash`
    /// a drive still sends is not read: the same file keeps the same algorithm everywhere.
    fn content_hash(self) -> Option<ContentHash> {
        match (self.quick_xor_hash, self.sha1_hash) {
            (Some(quick_xor), _) => Some(ContentHash::new("quickXorHash", quick_xor)),
            (None, Some(sha1)) => Some(ContentHash::new("sha1", sha1)),
            (None, None) => None,
        }
    }
}

/// Delta's `parentReference` has the parent folder's `id` and the `driveId`, never a `path`
/// (<https://learn.microsoft.com/en-us/graph/api/driveitem-delta>, Remarks).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ParentReference {
    id: Option<String>,
    drive_id: Option<String>,
}

impl DriveItem {
    /// The entry of an item listed from the drive `listed_from`: its drive is its
    /// `parentReference.driveId` when it names one, else `listed_from`.
    pub(super) fn into_entry(self, listed_from: &str) -> FileEntry {
        self.entry_in(listed_from, None)
    }

    /// The entry of an item of a shared folder's contents: a child of the folder's top (its
    /// id `remote_top` in the drive it lives in) is a child of the user's item `local_top`.
    pub(super) fn into_walked_entry(
        self,
        listed_from: &str,
        remote_top: &str,
        local_top: &str,
    ) -> FileEntry {
        self.entry_in(listed_from, Some((remote_top, local_top)))
    }

    /// The entry of an item a search found: its drive is its `parentReference.driveId`, or
    /// none when it names none (the account's own drive then, as `drives::attribute` names
    /// an entry of no known drive).
    pub(super) fn into_found_entry(self) -> FileEntry {
        let mut entry = self.entry_in("", None);
        entry.drive_id = entry.drive_id.filter(|id| !id.is_empty());
        entry
    }

    pub(super) fn is_deleted(&self) -> bool {
        self.deleted.is_some()
    }

    /// A folder this item's contents are listed from: its own `folder` facet (in a walk).
    pub(super) fn is_folder(&self) -> bool {
        self.folder.is_some() && self.deleted.is_none()
    }

    fn entry_in(self, listed_from: &str, top: Option<(&str, &str)>) -> FileEntry {
        // The `folder` facet marks a folder, and so does a `remoteItem` facet with one (a
        // shared folder added to the drive); a deleted item carries neither and keeps the kind
        // the index already has. Anything else, a `package` included, is a file.
        let remote_folder = self
            .remote_item
            .as_ref()
            .is_some_and(|remote| remote.folder.is_some());
        let kind = match (&self.deleted, &self.folder, remote_folder) {
            (Some(_), _, _) => None,
            (None, Some(_), _) | (None, None, true) => Some(FileKind::Folder),
            (None, None, false) => Some(FileKind::File),
        };
        let (mut parent_id, drive_id) = match self.parent_reference {
            Some(parent) => (parent.id, parent.drive_id),
            None => (None, None),
        };
        if let Some((remote_top, local_top)) = top {
            if parent_id.as_deref() == Some(remote_top) {
                parent_id = Some(local_top.to_string());
            }
        }
        let (mime_type, content_hash) = match self.file {
            Some(file) => (file.mime_type, file.hashes.and_then(Hashes::content_hash)),
            None => (None, None),
        };
        FileEntry {
            id: self.id,
            name: self.name.unwrap_or_default(),
            kind,
            mime_type,
            size: self.size,
            modified_at: self.last_modified_date_time,
            web_url: self.web_url,
            deleted: self.deleted.is_some(),
            parent_ids: Some(parent_id.into_iter().collect()),
            drive_id: drive_id.or_else(|| Some(listed_from.to_string())),
            path: None,
            path_lower: None,
            content_hash,
            target_id: None,
            changed_at: None,
        }
    }
}
