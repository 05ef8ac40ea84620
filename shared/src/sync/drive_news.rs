//! What a page says of the account's drives, applied by the sync that stores it: its entries
//! named by the account's drives, the entries of a drive the user lost marked deleted a page
//! of the index at a time (each in the feed), and the drives' counts at the sync's end. The
//! drives themselves are written with the page's cursor (`account_change`), so they move
//! with the listing they come from.

use super::state::Session;
use crate::drives::{self, Applied, INDEX_PAGE};
use crate::error::HubResult;
use crate::model::{Drive, FileEntry};
use crate::providers::FilePage;

impl Session<'_> {
    /// The account's drives after `page`'s news of them (`None`: it has none), and its
    /// entries named by them.
    pub(super) fn apply_drive_news(&self, page: &mut FilePage) -> Option<Applied> {
        let applied = page
            .drives
            .as_ref()
            .map(|report| drives::apply(&self.account.drives, report));
        let current = applied
            .as_ref()
            .map_or(self.account.drives.as_slice(), |applied| &applied.drives);
        drives::attribute(current, &mut page.files);
        applied
    }

    /// Marks deleted, a page of the index at a time, the live entries of a drive the user can
    /// no longer open, numbered from `first_seq`. Returns how many it marked. Run again after
    /// a crash (the page's cursor is not saved yet), it finds the ones it marked deleted
    /// already and goes on with the others.
    pub(super) async fn mark_drive_deleted(
        &self,
        drive_id: &str,
        first_seq: u64,
    ) -> HubResult<u64> {
        let (store, id) = (&self.hub.store, &self.account.id);
        let (mut marked, mut after) = (0u64, None::<String>);
        loop {
            let page = store.list_files(id, after.as_deref(), INDEX_PAGE).await?;
            let tombstones: Vec<FileEntry> = page
                .items
                .into_iter()
                .filter(|entry| !entry.deleted && entry.drive_id.as_deref() == Some(drive_id))
                .map(|entry| FileEntry {
                    deleted: true,
                    ..entry
                })
                .collect();
            if !tombstones.is_empty() {
                store
                    .put_files(
                        id,
                        &tombstones,
                        self.account.listing.generation,
                        first_seq + marked,
                    )
                    .await?;
                marked += tombstones.len() as u64;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        tracing::info!(
            drive_id,
            marked,
            "a drive the user lost: its entries marked deleted"
        );
        Ok(marked)
    }

    /// The drives as the sync's last page leaves them, with their live entries counted, when
    /// the sync changed the index or the drives (`changed`); `None` when they stay as they
    /// are. Counting reads the account's index once, which only a sync that stored something
    /// pays.
    pub(super) async fn counted_drives(
        &self,
        drives: Option<Vec<Drive>>,
        changed: bool,
    ) -> HubResult<Option<Vec<Drive>>> {
        if !changed && drives.as_ref().is_none_or(|d| *d == self.account.drives) {
            return Ok(drives);
        }
        let counts = drives::count_files(self.hub, &self.account.id).await?;
        let mut drives = drives.unwrap_or_else(|| self.account.drives.clone());
        drives::with_counts(&mut drives, &counts);
        Ok(Some(drives))
    }
}
