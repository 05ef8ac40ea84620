//! Graph's driveItems as delta pages carry them, and the index entries they become.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::model::{ContentHash, FileEntry, FileKind};

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
    id: String,
    name: Option<String>,
    size: Option<u64>,
    last_modified_date_time: Option<DateTime<Utc>>,
    web_url: Option<String>,
    file: Option<FileFacet>,
    folder: Option<serde_json::Value>,
    pub(super) root: Option<serde_json::Value>,
    deleted: Option<serde_json::Value>,
    parent_reference: Option<ParentReference>,
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
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ParentReference {
    id: Option<String>,
    drive_id: Option<String>,
}

impl DriveItem {
    /// The entry of an item listed from the drive `listed_from`: its drive is its
    /// `parentReference.driveId` when it names one, else `listed_from`.
    pub(super) fn into_entry(self, listed_from: &str) -> FileEntry {
        // The `folder` facet marks a folder; a deleted item carries neither facet and keeps
        // the kind the index already has.
        let kind = match (&self.deleted, &self.folder, &self.file) {
            (Some(_), _, _) => None,
            (None, Some(_), _) => Some(FileKind::Folder),
            (None, None, _) => Some(FileKind::File),
        };
        let (parent_id, drive_id) = match self.parent_reference {
            Some(parent) => (parent.id, parent.drive_id),
            None => (None, None),
        };
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
