//! A Microsoft account's listings, drive by drive (docs/API.md, "Drives"): the user's
//! OneDrive (`/me/drive/root/delta`) and, for a work or school account with
//! `ONEDRIVE_SITES=followed`, each document library of each SharePoint or Teams site the user
//! follows (`/drives/{id}/root/delta`), every drive with its own delta link.
//!
//! A sync round reads the drives one after the other, each from its saved link to its next
//! `@odata.deltaLink`. Which libraries there are is read again at the start of every round
//! (`GET /me/followedSites`, then `GET /sites/{id}/drives` per site): a library that is no
//! longer among them is reported removed (its entries are marked deleted by the sync), a new
//! one is enumerated from scratch. Libraries have no subscription (the hub subscribes to the
//! OneDrive's root only): the schedule keeps them fresh.
//!
//! Graph's delta may leave deletions out ("delta may not return all deletions" on some drive
//! types), so a drive whose last whole enumeration is older than [`RE_ENUMERATE_AFTER`] makes
//! the round answer [`ProviderError::CursorExpired`]: the sync enumerates every drive again
//! and reconciles, marking deleted what the new enumeration no longer finds, as after a 410.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::items::{DeltaPage, ITEM_SELECT};
use super::walk::{self, Walk};
use super::OneDrive;
use crate::error::ProviderError;
use crate::model::{DriveInfo, DriveKind, DriveReport};
use crate::providers::answers::Endpoint;
use crate::providers::{get_json, FilePage, NextPage};

/// How long a drive goes on delta links alone before it is enumerated again from scratch
/// (a reconciliation): a deletion delta left out is found within this long.
pub const RE_ENUMERATE_AFTER: chrono::Duration = chrono::Duration::days(7);

/// The most document libraries an account syncs (the first ones, in the order Graph lists
/// the followed sites and their drives); more are left out with a warning. Each library is
/// a delta call per round, a drive of the account record (`crate::model::MAX_DRIVES`) and a
/// delta link in the cursor (a few hundred bytes), which the same record holds.
pub const MAX_LIBRARIES: usize = 100;

/// The most pages of `followedSites` or of one site's `drives` read per round: a bound on
/// a round's start whatever Graph answers.
const MAX_LISTING_PAGES: usize = 20;

/// How many drives one call may go through while they have nothing new: a round of a
/// quiet account ends in one call (and one write), yet a call stays a bounded number of
/// requests.
const QUIET_DRIVES_PER_CALL: usize = 25;

/// Whether the libraries of followed sites are synced (`ONEDRIVE_SITES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sites {
    /// `followed` (the default): the OneDrive and the libraries of the sites the user follows.
    Followed,
    /// `none`: the OneDrive only.
    None,
}

/// One drive of the account and where its listing stands.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct DriveState {
    id: String,
    name: String,
    kind: DriveKind,
    /// Its `@odata.nextLink` while its pages are read, its `@odata.deltaLink` after; `None`:
    /// its whole enumeration has not begun.
    link: Option<String>,
    /// When its last whole enumeration began.
    enumerated_at: DateTime<Utc>,
}

impl DriveState {
    fn new(info: DriveInfo, now: DateTime<Utc>) -> Self {
        DriveState {
            id: info.id,
            name: info.name,
            kind: info.kind,
            link: None,
            enumerated_at: now,
        }
    }

    fn info(&self) -> DriveInfo {
        DriveInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind,
        }
    }
}

/// Where a Microsoft sync stands, serialised as the opaque cursor. A cursor saved before
/// drives (a bare Graph link) is read as the OneDrive's link ([`OneDrive::adopt_bare_link`]).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Cursor {
    /// `GET /me/drive` answered `driveType` `business`: only work or school accounts have
    /// followed sites.
    business: bool,
    /// The OneDrive first, then the libraries.
    drives: Vec<DriveState>,
    /// The drive the round is reading; `None`: the round is over (the next starts with
    /// re-reading the libraries).
    at: Option<usize>,
    /// Shared folders whose contents are being listed (`walk.rs`), before the round goes on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    walks: Vec<Walk>,
}

impl Cursor {
    fn encode(&self) -> String {
        serde_json::to_string(self).expect("cursor JSON always serialises")
    }

    fn infos(&self) -> Vec<DriveInfo> {
        self.drives.iter().map(DriveState::info).collect()
    }
}

/// A site as `followedSites` answers it (`$select=id`).
#[derive(Deserialize)]
struct Site {
    id: String,
}

/// A drive as `GET /me/drive` or `GET /sites/{id}/drives` answers it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphDrive {
    id: String,
    name: Option<String>,
    drive_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(bound = "T: serde::de::DeserializeOwned")]
struct Collection<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

impl OneDrive {
    /// One page of the account's listing from `cursor`.
    pub(super) async fn list(
        &self,
        token: &SecretString,
        cursor: Option<&str>,
    ) -> Result<FilePage, ProviderError> {
        let now = Utc::now();
        let Some(saved) = cursor else {
            return self.enumerate(token, now).await;
        };
        let mut cursor = match serde_json::from_str::<Cursor>(saved) {
            Ok(cursor) => cursor,
            Err(_) => self.adopt_bare_link(token, saved, now).await?,
        };
        let mut report = None;
        if cursor.at.is_none() {
            // A new round: each drive enumerated long enough ago is enumerated again.
            if cursor
                .drives
                .iter()
                .any(|d| now - d.enumerated_at > RE_ENUMERATE_AFTER)
            {
                tracing::info!("a drive's last whole enumeration is old; enumerating again");
                return Err(ProviderError::CursorExpired);
            }
            // With `ONEDRIVE_SITES=none` (set since the last round), libraries synced before
            // are dropped like unfollowed ones.
            let libraries = match cursor.business && self.sites == Sites::Followed {
                true => self.libraries(token).await?,
                false => Vec::new(),
            };
            report = refresh_libraries(&mut cursor, libraries, now);
            cursor.at = Some(0);
        }
        let page = self.read_drives(token, cursor).await?;
        Ok(match report {
            Some(report) => page.with_drives(report),
            None => page,
        })
    }

    /// A whole enumeration: which drives there are, then the OneDrive's first page. The page
    /// reports every drive.
    async fn enumerate(
        &self,
        token: &SecretString,
        now: DateTime<Utc>,
    ) -> Result<FilePage, ProviderError> {
        let (onedrive, business) = self.my_drive(token).await?;
        let mut drives = vec![DriveState::new(onedrive, now)];
        if business && self.sites == Sites::Followed {
            let libraries = self.libraries(token).await?;
            drives.extend(libraries.into_iter().map(|l| DriveState::new(l, now)));
        }
        let cursor = Cursor {
            business,
            drives,
            at: Some(0),
            walks: Vec::new(),
        };
        let all = DriveReport::All(cursor.infos());
        Ok(self.read_drives(token, cursor).await?.with_drives(all))
    }

    /// A cursor saved before drives: a Graph link of the OneDrive's listing (a `nextLink`
    /// mid-enumeration or the `deltaLink` after it). The round goes on from it, as the
    /// OneDrive's link; when that drive was last enumerated is not known, so the
    /// re-enumeration clock starts now. A link outside Graph is not followed: the sync
    /// starts over.
    async fn adopt_bare_link(
        &self,
        token: &SecretString,
        link: &str,
        now: DateTime<Utc>,
    ) -> Result<Cursor, ProviderError> {
        if !self.is_graph_link(link) {
            return Err(ProviderError::CursorExpired);
        }
        let (onedrive, business) = self.my_drive(token).await?;
        let mut drive = DriveState::new(onedrive, now);
        drive.link = Some(link.to_string());
        Ok(Cursor {
            business,
            drives: vec![drive],
            at: None,
            walks: Vec::new(),
        })
    }

    /// `GET /me/drive`: the OneDrive (its id is what its items' `parentReference.driveId`
    /// name) and whether it is a work or school one
    /// (<https://learn.microsoft.com/en-us/graph/api/drive-get>).
    async fn my_drive(&self, token: &SecretString) -> Result<(DriveInfo, bool), ProviderError> {
        let url = format!("{}/me/drive", self.graph_url);
        let drive: GraphDrive = get_json(&self.http, &url, &[], token).await?;
        let business = drive.drive_type.as_deref() == Some("business");
        let info = DriveInfo {
            name: drive.name.unwrap_or_else(|| "OneDrive".into()),
            id: drive.id,
            kind: DriveKind::Onedrive,
        };
        Ok((info, business))
    }

    /// The document libraries of the sites the user follows, at most [`MAX_LIBRARIES`]:
    /// `GET /me/followedSites`, then `GET /sites/{id}/drives` for each
    /// (<https://learn.microsoft.com/en-us/graph/api/sites-list-followed>,
    /// <https://learn.microsoft.com/en-us/graph/api/drive-list>). Both need
    /// `Sites.Read.All`; a token without it (the scope not granted, or no admin consent in
    /// the tenant) is refused 403, which here means no libraries rather than a lost account:
    /// the OneDrive still syncs.
    async fn libraries(&self, token: &SecretString) -> Result<Vec<DriveInfo>, ProviderError> {
        let url = format!("{}/me/followedSites", self.graph_url);
        let sites: Vec<Site> = match self.collection(token, url, "id").await {
            Ok(sites) => sites,
            Err(ProviderError::AccessLost(why)) => {
                tracing::warn!(
                    why,
                    "Graph refused the followed sites (is Sites.Read.All granted?); \
                     syncing the OneDrive only"
                );
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let mut libraries = Vec::new();
        for site in sites {
            let url = format!("{}/sites/{}/drives", self.graph_url, site.id);
            // A site the user follows but may no longer open (or that is gone) is skipped:
            // its libraries end up removed, and the rest still sync.
            let drives: Vec<GraphDrive> =
                match self.collection(token, url, "id,name,driveType").await {
                    Ok(drives) => drives,
                    Err(e @ (ProviderError::AccessLost(_) | ProviderError::Rejected(_))) => {
                        tracing::warn!(error = %e, "a followed site's libraries could not be read");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
            for drive in drives {
                if drive.drive_type.as_deref() != Some("documentLibrary") {
                    continue;
                }
                if libraries.iter().any(|l: &DriveInfo| l.id == drive.id) {
                    continue;
                }
                if libraries.len() == MAX_LIBRARIES {
                    tracing::warn!(
                        max = MAX_LIBRARIES,
                        "the user follows more document libraries than the hub syncs; \
                         the others are left out"
                    );
                    return Ok(libraries);
                }
                libraries.push(DriveInfo {
                    name: drive.name.unwrap_or_else(|| "Documents".into()),
                    id: drive.id,
                    kind: DriveKind::Library,
                });
            }
        }
        Ok(libraries)
    }

    /// Every item of a Graph collection, following `@odata.nextLink` for at most
    /// [`MAX_LISTING_PAGES`] pages.
    async fn collection<T: serde::de::DeserializeOwned>(
        &self,
        token: &SecretString,
        first: String,
        select: &str,
    ) -> Result<Vec<T>, ProviderError> {
        let mut items = Vec::new();
        let mut page: Collection<T> =
            get_json(&self.http, &first, &[("$select", select)], token).await?;
        for _ in 1..MAX_LISTING_PAGES {
            items.append(&mut page.value);
            let Some(next) = page.next_link.take() else {
                return Ok(items);
            };
            let next = self.answered_link(next)?;
            page = get_json(&self.http, &next, &[], token).await?;
        }
        items.append(&mut page.value);
        if page.next_link.is_some() {
            tracing::warn!(
                max = MAX_LISTING_PAGES,
                "a Graph collection has more pages than the hub reads; the rest is left out"
            );
        }
        Ok(items)
    }

    /// Reads the drives from `cursor.at` on: one page of the current drive (or of a queued
    /// walk of a shared folder), and more while what was read holds nothing new (at most
    /// [`QUIET_DRIVES_PER_CALL`] steps). The round is done after the last drive's `deltaLink`
    /// once no walk is left.
    async fn read_drives(
        &self,
        token: &SecretString,
        mut cursor: Cursor,
    ) -> Result<FilePage, ProviderError> {
        let mut files = Vec::new();
        for _ in 0..QUIET_DRIVES_PER_CALL {
            if !cursor.walks.is_empty() {
                files.extend(self.walk_page(token, &mut cursor.walks).await?);
                if !files.is_empty() {
                    break;
                }
                continue;
            }
            let at = cursor.at.unwrap_or(0);
            let Some(drive) = cursor.drives.get(at) else {
                cursor.at = None;
                return Ok(FilePage::of_files(files, NextPage::Done(cursor.encode())));
            };
            let page = self.delta_page(token, drive).await?;
            let (id, more) = (drive.id.clone(), page.next_link.is_some());
            let next = NextPage::from_links(
                page.next_link.map(|l| self.answered_link(l)).transpose()?,
                page.delta_link.map(|l| self.answered_link(l)).transpose()?,
                "@odata.nextLink nor @odata.deltaLink",
            )?;
            cursor.drives[at].link = Some(next.cursor().to_string());
            for item in &page.value {
                let shared_folder = item.remote_item.as_ref().and_then(|r| r.folder());
                if let (Some((drive, remote_top)), false) = (shared_folder, item.is_deleted()) {
                    walk::queue(
                        &mut cursor.walks,
                        Walk::new(drive, remote_top, item.id.clone()),
                    );
                }
            }
            // A drive's root is not a file of the user's.
            files.extend(
                page.value
                    .into_iter()
                    .filter(|item| item.root.is_none())
                    .map(|item| item.into_entry(&id)),
            );
            if more {
                return Ok(FilePage::of_files(files, NextPage::More(cursor.encode())));
            }
            cursor.at = Some(at + 1);
            if at + 1 == cursor.drives.len() && cursor.walks.is_empty() {
                cursor.at = None;
                return Ok(FilePage::of_files(files, NextPage::Done(cursor.encode())));
            }
            if !files.is_empty() {
                break;
            }
        }
        Ok(FilePage::of_files(files, NextPage::More(cursor.encode())))
    }

    /// One delta page of `drive`: from its saved link, or the first of a whole enumeration.
    /// Every call says `deltaExcludeParent`: without it, Graph returns with each changed item
    /// the folders above it, unchanged
    /// (<https://learn.microsoft.com/en-us/graph/api/driveitem-delta>, request headers).
    async fn delta_page(
        &self,
        token: &SecretString,
        drive: &DriveState,
    ) -> Result<DeltaPage, ProviderError> {
        let (url, query): (String, &[(&str, &str)]) = match &drive.link {
            // A saved link that does not point into Graph is not followed: start over.
            Some(link) if !self.is_graph_link(link) => return Err(ProviderError::CursorExpired),
            Some(link) => (link.clone(), &[]),
            None if drive.kind == DriveKind::Onedrive => (
                format!("{}/me/drive/root/delta", self.graph_url),
                &[("$select", ITEM_SELECT)],
            ),
            None => (
                format!("{}/drives/{}/root/delta", self.graph_url, drive.id),
                &[("$select", ITEM_SELECT)],
            ),
        };
        let response = self
            .http
            .send(Endpoint::Api, |client| {
                client
                    .get(&url)
                    .query(query)
                    .bearer_auth(token.expose_secret())
                    // The header Graph's v1.0 reference names, and the `Prefer` form the
                    // OneDrive API took; a service ignores a preference it does not know.
                    .header("deltaExcludeParent", "true")
                    .header("Prefer", "deltaExcludeParent")
            })
            .await?;
        crate::providers::http::read_json(response, "Graph").await
    }
}

/// Brings the cursor's libraries in line with `libraries` as read now: a new one starts
/// unenumerated, a gone one is dropped (with its link). Returns the report of every drive
/// when the set or a name changed, `None` when it stayed as it was (a round that finds
/// nothing new then changes nothing).
fn refresh_libraries(
    cursor: &mut Cursor,
    libraries: Vec<DriveInfo>,
    now: DateTime<Utc>,
) -> Option<DriveReport> {
    let before = cursor.infos();
    let mut kept: Vec<DriveState> = cursor
        .drives
        .iter()
        .filter(|d| d.kind != DriveKind::Library)
        .cloned()
        .collect();
    for library in libraries {
        let state = match cursor.drives.iter().find(|d| d.id == library.id) {
            Some(known) => DriveState {
                name: library.name,
                ..known.clone()
            },
            None => DriveState::new(library, now),
        };
        kept.push(state);
    }
    cursor.drives = kept;
    let after = cursor.infos();
    (after != before).then_some(DriveReport::All(after))
}

/// Reads `ONEDRIVE_SITES`: `followed` (the default) or `none`.
pub(super) fn sites_setting(value: Option<String>) -> Result<Sites, String> {
    match value.as_deref() {
        None | Some("followed") => Ok(Sites::Followed),
        Some("none") => Ok(Sites::None),
        Some(other) => Err(format!(
            "ONEDRIVE_SITES must be 'followed' or 'none' (got '{other}')"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library(id: &str, name: &str) -> DriveInfo {
        DriveInfo {
            id: id.into(),
            name: name.into(),
            kind: DriveKind::Library,
        }
    }

    #[test]
    fn the_setting_is_followed_none_or_refused() {
        assert_eq!(sites_setting(None), Ok(Sites::Followed));
        assert_eq!(sites_setting(Some("none".into())), Ok(Sites::None));
        let refused = sites_setting(Some("all".into())).unwrap_err();
        assert!(refused.contains("ONEDRIVE_SITES"), "{refused}");
    }

    #[test]
    fn libraries_read_again_keep_their_links_and_report_only_a_change() {
        let now = Utc::now();
        let onedrive = DriveInfo {
            id: "od".into(),
            name: "OneDrive".into(),
            kind: DriveKind::Onedrive,
        };
        let mut cursor = Cursor {
            business: true,
            drives: vec![
                DriveState::new(onedrive, now),
                DriveState::new(library("a", "A"), now),
            ],
            at: None,
            walks: Vec::new(),
        };
        cursor.drives[1].link = Some("link-a".into());
        assert_eq!(
            refresh_libraries(&mut cursor, vec![library("a", "A")], now),
            None
        );
        let report = refresh_libraries(&mut cursor, vec![library("b", "B")], now);
        let Some(DriveReport::All(all)) = report else {
            panic!("a change is reported: {report:?}")
        };
        let ids: Vec<&str> = all.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["od", "b"]);
        assert_eq!(cursor.drives[1].link, None, "a new library starts afresh");
        let back = refresh_libraries(&mut cursor, vec![library("b", "B2")], now);
        assert!(back.is_some(), "a renamed library is reported");
    }
}
