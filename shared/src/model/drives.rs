//! An account's drives (contract section 11): Google's My Drive and each shared drive, the
//! user's OneDrive, the Dropbox account. What the account record holds of each, and what a
//! provider's listing says of them.
//!
//! The drives live in the account record itself rather than in records of their own. A sync
//! writes the account conditionally on its version at every step (the cursor after each page,
//! the lease, the outcome), so a drive's status changes in the same write as the cursor of
//! the page that reported it: a drive is never `removed` without the cursor past that news,
//! nor the other way round, and only the lease's holder changes them. The price is the
//! record's size (DynamoDB takes at most 400 KB an item): [`MAX_DRIVES`] bounds the list.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The most drives an account record keeps. A drive is a few hundred bytes at most (its id,
/// name and counters), so this many stay far under DynamoDB's 400 KB per item with the rest
/// of the account. Past it, removed drives make room first (their tombstones are in the
/// index already); a drive that still finds no room is not tracked: its entries are kept
/// under the account's own drive, and a warning says so (see `crate::drives`).
pub const MAX_DRIVES: usize = 400;

/// What kind of drive it is, as `/users/{id}/drives` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriveKind {
    /// Google: the user's My Drive, with the files shared with the user.
    MyDrive,
    /// Google: a shared drive the user is a member of.
    SharedDrive,
    /// Microsoft: the user's OneDrive.
    Onedrive,
    /// Microsoft: a SharePoint or Teams document library.
    Library,
    /// Dropbox: the account as its user sees it.
    Dropbox,
    /// Dropbox: a team space (the team's root namespace).
    TeamSpace,
    /// Box: the user's Box.
    Box,
}

impl DriveKind {
    /// Whether it is the account's own drive: where an entry goes whose drive is none of the
    /// account's others (a file shared with the user from a drive the user is not in).
    pub fn is_home(self) -> bool {
        !matches!(self, DriveKind::SharedDrive | DriveKind::Library)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriveStatus {
    Active,
    /// The user can no longer open it: its entries are marked deleted.
    Removed,
}

/// A drive as the provider describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveInfo {
    /// The provider's drive id, or an id the hub gives the drive, stable for the account.
    pub id: String,
    pub name: String,
    pub kind: DriveKind,
}

/// One drive of an account, as the account record keeps it and `/users/{id}/drives` shows
/// it. Its place in the provider's listing is part of the connector's cursor, which the same
/// write stores (see the module's doc).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drive {
    pub id: String,
    pub name: String,
    pub kind: DriveKind,
    pub status: DriveStatus,
    /// The live entries of the drive in the index, counted when a sync that changed the
    /// index ended.
    pub file_count: u64,
    /// When a sync that covered the drive last ended well.
    pub last_synced_at: Option<DateTime<Utc>>,
}

impl Drive {
    /// A drive just reported, not yet synced.
    pub fn new(info: DriveInfo) -> Self {
        Drive {
            id: info.id,
            name: info.name,
            kind: info.kind,
            status: DriveStatus::Active,
            file_count: 0,
            last_synced_at: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.status == DriveStatus::Active
    }
}

/// What a page of a provider's listing says of the account's drives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriveReport {
    /// Every drive the user can open now (the first page of an enumeration): a tracked drive
    /// that is not among them is removed.
    All(Vec<DriveInfo>),
    /// What the changes feed said: drives that appeared or changed, and drives removed.
    Changed {
        seen: Vec<DriveInfo>,
        removed: Vec<String>,
    },
}
