//! The contents of folders shared with the user and added to their OneDrive. Such a folder
//! comes in the OneDrive's delta as an item with a `remoteItem` facet; its contents live in
//! the sharer's drive and are not in the user's delta. Graph's v1.0 reference of delta lists
//! only drive roots (`/drives/{id}/root/delta` and the like, driveitem-delta, HTTP request);
//! delta on another folder is known to work on OneDrive personal only, so the hub lists the
//! folder's children, folder by folder, on both kinds of account:
//! `GET /drives/{driveId}/items/{id}/children`
//! (<https://learn.microsoft.com/en-us/graph/api/driveitem-list-children>).
//!
//! A walk runs when the shared folder comes in the delta: at the OneDrive's whole enumeration
//! (so at least every `RE_ENUMERATE_AFTER`, which also marks deleted what the folder no longer
//! holds) and whenever Graph reports the folder itself changed. It is part of the cursor, a
//! page of children per step, so a sync cut short resumes it; and it is bounded
//! ([`MAX_WALKS`], [`MAX_PENDING_FOLDERS`], [`MAX_WALKED_ITEMS`]).
//!
//! The contents' `drive_id` is the sharer's drive, which is none of the account's drives
//! unless it is a library the account syncs: `crate::drives::attribute` then files them
//! under the account's own drive, the OneDrive, as it does Google's files shared with the
//! user (docs/API.md, "Drives").

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::items::DeltaPage;
use super::OneDrive;
use crate::error::ProviderError;
use crate::model::FileEntry;
use crate::providers::get_json;

/// What a children page is asked for: what delta asks, the same entry either way.
pub(super) const CHILDREN_SELECT: &str = super::items::ITEM_SELECT;

/// The most shared folders a round walks; more wait for a later round's delta.
pub const MAX_WALKS: usize = 20;
/// The most folders all walks keep to list; deeper ones are left out, with a warning. The
/// walks live in the cursor, which the account record holds (DynamoDB: 400 KB an item):
/// this many Graph item ids (tens of bytes each) stay a few tens of KB.
pub const MAX_PENDING_FOLDERS: usize = 500;
/// The most items one walk lists; the rest of the folder is left out, with a warning.
pub const MAX_WALKED_ITEMS: u64 = 50_000;

/// One shared folder being listed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(super) struct Walk {
    /// The drive the folder lives in (`remoteItem.parentReference.driveId`).
    drive: String,
    /// The folder's id there (`remoteItem.id`).
    remote_top: String,
    /// The item's id in the user's OneDrive, which the folder's children name as parent.
    local_top: String,
    /// Folders (ids in `drive`) still to list, the current one first.
    folders: Vec<String>,
    /// The current folder's `@odata.nextLink`; `None`: its first page is next.
    link: Option<String>,
    /// Items listed so far.
    listed: u64,
}

impl Walk {
    pub(super) fn new(drive: String, remote_top: String, local_top: String) -> Self {
        Walk {
            drive,
            folders: vec![remote_top.clone()],
            remote_top,
            local_top,
            link: None,
            listed: 0,
        }
    }

    /// Whether it lists the same shared folder as `other`.
    pub(super) fn same_folder(&self, other: &Walk) -> bool {
        self.drive == other.drive && self.remote_top == other.remote_top
    }
}

/// Queues a walk of a shared folder unless one of it is queued, or [`MAX_WALKS`] are.
pub(super) fn queue(walks: &mut Vec<Walk>, walk: Walk) {
    if walks.iter().any(|w| w.same_folder(&walk)) {
        return;
    }
    if walks.len() >= MAX_WALKS {
        tracing::warn!(
            max = MAX_WALKS,
            "more shared folders to list than a round takes; this one waits"
        );
        return;
    }
    walks.push(walk);
}

impl OneDrive {
    /// One page of the first queued walk: its entries. The walk is dropped once done, past
    /// its bounds, or when Graph refuses it (the share was withdrawn: the folder's entries
    /// go at the next re-enumeration), so a shared folder never fails the sync.
    pub(super) async fn walk_page(
        &self,
        token: &SecretString,
        walks: &mut Vec<Walk>,
    ) -> Result<Vec<FileEntry>, ProviderError> {
        let mut pending: usize = walks.iter().map(|w| w.folders.len()).sum();
        let Some(walk) = walks.first_mut() else {
            return Ok(Vec::new());
        };
        let answer: Result<DeltaPage, ProviderError> = match (&walk.link, walk.folders.first()) {
            (Some(link), _) if !self.is_graph_link(link) => Err(ProviderError::Rejected(
                "a walk's link outside Graph".into(),
            )),
            (Some(link), _) => get_json(&self.http, link, &[], token).await,
            (None, Some(folder)) => {
                let url = format!(
                    "{}/drives/{}/items/{}/children",
                    self.graph_url, walk.drive, folder
                );
                get_json(&self.http, &url, &[("$select", CHILDREN_SELECT)], token).await
            }
            (None, None) => {
                walks.remove(0);
                return Ok(Vec::new());
            }
        };
        let page = match answer {
            Ok(page) => page,
            Err(e @ (ProviderError::AccessLost(_) | ProviderError::Rejected(_))) => {
                tracing::warn!(error = %e, "a shared folder could not be listed; left for now");
                walks.remove(0);
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let mut files = Vec::new();
        for item in page.value {
            if item.is_folder() {
                if pending < MAX_PENDING_FOLDERS {
                    walk.folders.push(item.id.clone());
                    pending += 1;
                } else {
                    tracing::warn!(
                        max = MAX_PENDING_FOLDERS,
                        "a shared folder is too deep to list whole; a subfolder is left out"
                    );
                }
            }
            files.push(item.into_walked_entry(&walk.drive, &walk.remote_top, &walk.local_top));
        }
        walk.listed += files.len() as u64;
        walk.link = match page.next_link {
            Some(next) => Some(self.answered_link(next)?),
            None => {
                walk.folders.remove(0);
                None
            }
        };
        let done = walk.link.is_none() && walk.folders.is_empty();
        if walk.listed >= MAX_WALKED_ITEMS && !done {
            tracing::warn!(
                max = MAX_WALKED_ITEMS,
                "a shared folder holds more items than the hub lists; the rest is left out"
            );
            walks.remove(0);
        } else if done {
            walks.remove(0);
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_queued_once_and_at_most_max_walks_are() {
        let mut walks = Vec::new();
        let walk = |n: usize| Walk::new("drive-b".into(), format!("F{n}"), format!("L{n}"));
        queue(&mut walks, walk(0));
        queue(&mut walks, walk(0));
        assert_eq!(walks.len(), 1, "the same shared folder once");
        for n in 1..MAX_WALKS + 5 {
            queue(&mut walks, walk(n));
        }
        assert_eq!(walks.len(), MAX_WALKS);
        assert_eq!(
            walks[0].folders,
            ["F0"],
            "a walk starts at the shared folder"
        );
    }
}
