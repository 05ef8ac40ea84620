//! An account's drives (contract section 11): how a listing's news of drives changes the
//! account's list ([`apply`]), which drive an entry belongs to ([`attribute`]), how many live
//! entries each holds ([`count_files`]), and `GET /users/{id}/drives` ([`list`]). The drives
//! themselves are kept in the account record (`crate::model::Drive` says why); the sync
//! (`crate::sync`) writes them with the cursor of the page that reported them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use crate::model::{Drive, DriveInfo, DriveReport, DriveStatus, FileEntry, MAX_DRIVES};

/// The account's drives after a page's report.
#[derive(Debug, PartialEq)]
pub struct Applied {
    pub drives: Vec<Drive>,
    /// The drives the report removed that were active: their entries are to be marked
    /// deleted.
    pub removed: Vec<String>,
}

/// The account's drives once `report` is applied to `current`. A drive the report names is
/// active (added if new, its name and kind brought up to date); one the report removes (or,
/// for a report of every drive, does not name) is removed, keeping its counters. Past
/// [`MAX_DRIVES`], removed drives make room for new ones, oldest in the list first; a new
/// drive that still finds none is left out, with a warning (its entries stay under the
/// account's own drive, see [`attribute`]).
pub fn apply(current: &[Drive], report: &DriveReport) -> Applied {
    let mut drives = current.to_vec();
    let mut removed = Vec::new();
    let mut remove = |drives: &mut Vec<Drive>, id: &str| {
        if let Some(drive) = drives.iter_mut().find(|d| d.id == id && d.is_active()) {
            drive.status = DriveStatus::Removed;
            removed.push(drive.id.clone());
        }
    };
    let (seen, gone): (&[DriveInfo], Vec<String>) = match report {
        DriveReport::All(all) => {
            let gone = current
                .iter()
                .filter(|drive| all.iter().all(|info| info.id != drive.id))
                .map(|drive| drive.id.clone())
                .collect();
            (all, gone)
        }
        DriveReport::Changed { seen, removed } => (seen, removed.clone()),
    };
    for id in &gone {
        remove(&mut drives, id);
    }
    for info in seen {
        if let Some(drive) = drives.iter_mut().find(|d| d.id == info.id) {
            drive.name = info.name.clone();
            drive.kind = info.kind;
            drive.status = DriveStatus::Active;
            continue;
        }
        if drives.len() >= MAX_DRIVES {
            match drives.iter().position(|d| !d.is_active()) {
                Some(oldest_removed) => {
                    drives.remove(oldest_removed);
                }
                None => {
                    tracing::warn!(
                        drive_id = %info.id,
                        max = MAX_DRIVES,
                        "the account has as many drives as the hub tracks; this one is left out"
                    );
                    continue;
                }
            }
        }
        drives.push(Drive::new(info.clone()));
    }
    Applied { drives, removed }
}

/// The account's own drive (My Drive, the OneDrive, the Dropbox): the first active drive of
/// such a kind.
fn home(drives: &[Drive]) -> Option<&Drive> {
    drives
        .iter()
        .find(|drive| drive.is_active() && drive.kind.is_home())
}

/// Makes each entry's `drive_id` the id of one of the account's drives: the provider's drive
/// of the item when it is an active drive of the account, else the account's own drive (a
/// file shared with the user from a drive the user is not in shows among the user's files).
/// A removal that names no drive keeps `None`: the store completes it from what the index
/// knew of the entry, its drive included.
pub fn attribute(drives: &[Drive], files: &mut [FileEntry]) {
    let Some(home) = home(drives) else {
        return;
    };
    for file in files {
        if file.deleted && file.drive_id.is_none() {
            continue;
        }
        let tracked = file
            .drive_id
            .as_deref()
            .is_some_and(|id| drives.iter().any(|d| d.id == id && d.is_active()));
        if !tracked {
            file.drive_id = Some(home.id.clone());
        }
    }
}

/// Index entries read per page when counting or marking a drive's entries.
pub const INDEX_PAGE: usize = 1000;

/// The live entries of the account's index, counted by drive, a page of the index at a time.
pub async fn count_files(hub: &Hub, account_id: &str) -> HubResult<HashMap<String, u64>> {
    let (mut counts, mut after) = (HashMap::new(), None::<String>);
    loop {
        let page = hub
            .store
            .list_files(account_id, after.as_deref(), INDEX_PAGE)
            .await?;
        for entry in page.items.iter().filter(|entry| !entry.deleted) {
            if let Some(drive_id) = &entry.drive_id {
                *counts.entry(drive_id.clone()).or_insert(0) += 1;
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(counts),
        }
    }
}

/// The drives with their live entries counted as `counts` says.
pub fn with_counts(drives: &mut [Drive], counts: &HashMap<String, u64>) {
    for drive in drives {
        drive.file_count = counts.get(&drive.id).copied().unwrap_or(0);
    }
}

/// The active drives synced at `at`.
pub fn synced(drives: &mut [Drive], at: DateTime<Utc>) {
    for drive in drives.iter_mut().filter(|drive| drive.is_active()) {
        drive.last_synced_at = Some(at);
    }
}

/// `GET /users/{id}/drives`.
#[derive(Debug, Serialize, PartialEq)]
pub struct DrivesPage {
    pub drives: Vec<Drive>,
}

/// The account's drives, active and removed; `user_not_found` when there is no account.
pub async fn list(hub: &Hub, account_id: &str) -> HubResult<DrivesPage> {
    let account = hub
        .store
        .get_account(account_id)
        .await?
        .ok_or_else(|| HubError::AccountNotFound(account_id.to_string()))?;
    Ok(DrivesPage {
        drives: account.drives,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DriveKind;

    fn info(id: &str, kind: DriveKind) -> DriveInfo {
        DriveInfo {
            id: id.into(),
            name: format!("{id} name"),
            kind,
        }
    }

    fn ids(drives: &[Drive]) -> Vec<(&str, DriveStatus)> {
        drives.iter().map(|d| (d.id.as_str(), d.status)).collect()
    }

    #[test]
    fn a_report_of_every_drive_adds_the_new_and_removes_the_missing() {
        let first = apply(
            &[],
            &DriveReport::All(vec![
                info("my-drive", DriveKind::MyDrive),
                info("0Ateam", DriveKind::SharedDrive),
            ]),
        );
        assert!(first.removed.is_empty());
        let mut counted = first.drives.clone();
        counted[1].file_count = 7;
        let second = apply(
            &counted,
            &DriveReport::All(vec![info("my-drive", DriveKind::MyDrive)]),
        );
        assert_eq!(second.removed, ["0Ateam"]);
        assert_eq!(
            ids(&second.drives),
            [
                ("my-drive", DriveStatus::Active),
                ("0Ateam", DriveStatus::Removed)
            ]
        );
        assert_eq!(
            second.drives[1].file_count, 7,
            "counters stay until recounted"
        );
        // Removed once: a report that still leaves it out removes nothing more.
        let third = apply(
            &second.drives,
            &DriveReport::All(vec![info("my-drive", DriveKind::MyDrive)]),
        );
        assert!(third.removed.is_empty());
    }

    #[test]
    fn changes_remove_and_bring_back_drives() {
        let start = apply(
            &[],
            &DriveReport::All(vec![
                info("my-drive", DriveKind::MyDrive),
                info("0Ateam", DriveKind::SharedDrive),
            ]),
        );
        let left = apply(
            &start.drives,
            &DriveReport::Changed {
                seen: vec![],
                removed: vec!["0Ateam".into(), "0Anever-known".into()],
            },
        );
        assert_eq!(left.removed, ["0Ateam"], "an unknown drive is not removed");
        let back = apply(
            &left.drives,
            &DriveReport::Changed {
                seen: vec![
                    info("0Ateam", DriveKind::SharedDrive),
                    info("0Anew", DriveKind::SharedDrive),
                ],
                removed: vec![],
            },
        );
        assert_eq!(
            ids(&back.drives),
            [
                ("my-drive", DriveStatus::Active),
                ("0Ateam", DriveStatus::Active),
                ("0Anew", DriveStatus::Active)
            ]
        );
    }

    #[test]
    fn past_the_bound_removed_drives_make_room_and_then_new_ones_are_left_out() {
        let mut all = vec![info("my-drive", DriveKind::MyDrive)];
        all.extend((1..MAX_DRIVES).map(|n| info(&format!("0A{n}"), DriveKind::SharedDrive)));
        let full = apply(&[], &DriveReport::All(all));
        assert_eq!(full.drives.len(), MAX_DRIVES);
        let one_left = apply(
            &full.drives,
            &DriveReport::Changed {
                seen: vec![],
                removed: vec!["0A1".into()],
            },
        );
        let newcomer = |id: &str| DriveReport::Changed {
            seen: vec![info(id, DriveKind::SharedDrive)],
            removed: vec![],
        };
        let replaced = apply(&one_left.drives, &newcomer("0Afresh"));
        assert_eq!(replaced.drives.len(), MAX_DRIVES);
        assert!(replaced.drives.iter().all(|d| d.id != "0A1"));
        assert!(replaced.drives.iter().any(|d| d.id == "0Afresh"));
        let refused = apply(&replaced.drives, &newcomer("0Aone-too-many"));
        assert_eq!(refused.drives, replaced.drives);
    }

    #[test]
    fn entries_of_untracked_drives_belong_to_the_account_s_own() {
        let drives = apply(
            &[],
            &DriveReport::All(vec![
                info("my-drive", DriveKind::MyDrive),
                info("0Ateam", DriveKind::SharedDrive),
            ]),
        )
        .drives;
        let mut files = vec![
            FileEntry::new("mine", "mine.txt"),
            FileEntry {
                drive_id: Some("0Ateam".into()),
                ..FileEntry::new("team", "team.txt")
            },
            FileEntry {
                drive_id: Some("0Aforeign".into()),
                ..FileEntry::new("shared", "shared.txt")
            },
            FileEntry::tombstone("gone"),
        ];
        attribute(&drives, &mut files);
        let got: Vec<Option<&str>> = files.iter().map(|f| f.drive_id.as_deref()).collect();
        assert_eq!(
            got,
            [Some("my-drive"), Some("0Ateam"), Some("my-drive"), None]
        );
    }
}
