//! Writing a page of the file index, then the cursor that passes it: entries first (each id
//! once, at its last state), removals by path in the page's order, the reconciliation that
//! ends a new enumeration, and the feed's numbers above the account's watermark. The cursor
//! commit (with the outcome on the last page, after its `sync.completed` is queued) is what
//! makes a page count.

use chrono::Utc;

use super::account_change::{Change, Committed};
use super::state::{Session, SkipReason, SyncResult};
use crate::error::HubResult;
use crate::events::{self, Event};
use crate::model::{ChangeCount, FileEntry, PathRemoval, SyncOutcome};
use crate::providers::{FilePage, NextPage, RemovedPath};

/// What this invocation of an enumeration has stored so far (the whole sync's changes, for
/// its event, are the account's `unreported`).
#[derive(Default)]
pub(super) struct Tally {
    pub(super) pages: u64,
    /// Entries stored or marked deleted.
    pub(super) files: u64,
}

/// Entries removed from the index per round of a reconciliation.
const RECONCILE_PAGE: usize = 500;

/// Each id once, at its last occurrence, in the order of those last occurrences.
fn last_occurrences(files: Vec<FileEntry>) -> Vec<FileEntry> {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<FileEntry> = files
        .into_iter()
        .rev()
        .filter(|file| seen.insert(file.id.clone()))
        .collect();
    kept.reverse();
    kept
}

/// How many of a page's entries end in a deletion, each id counted once at its last state,
/// as [`last_occurrences`] stores them.
fn tombstones(files: &[FileEntry]) -> u64 {
    let mut last_state = std::collections::HashMap::new();
    for file in files {
        last_state.insert(file.id.as_str(), file.deleted);
    }
    last_state.values().filter(|deleted| **deleted).count() as u64
}

impl Session<'_> {
    /// Stores a page, then commits the cursor that follows it (with the sync's outcome on the
    /// last page, after queueing its `sync.completed`). `Some(result)` when the job ends here.
    pub(super) async fn store_and_commit(
        &mut self,
        mut page: FilePage,
        tally: &mut Tally,
    ) -> HubResult<Option<SyncResult>> {
        let drive_news = self.apply_drive_news(&mut page);
        // Numbered from the watermark each time, so a page stored again after a crash
        // reuses its numbers (upserts) rather than leaving gaps above the watermark.
        let mut counted = self.store_page(page.files, page.removed_paths).await?;
        let (drives, removed) = match drive_news {
            Some(applied) => (Some(applied.drives), applied.removed),
            None => (None, Vec::new()),
        };
        for drive_id in &removed {
            let marked = self
                .mark_drive_deleted(drive_id, self.account.feed_seq + counted.stored + 1)
                .await?;
            counted = counted
                + ChangeCount {
                    stored: marked,
                    deleted: marked,
                };
        }
        let last = matches!(page.next, NextPage::Done(_));
        if last && self.account.listing.reconcile {
            let marked = self
                .mark_unseen_deleted(self.account.feed_seq + counted.stored + 1)
                .await?;
            counted = counted
                + ChangeCount {
                    stored: marked,
                    deleted: marked,
                };
        }
        let feed_seq = self.account.feed_seq + counted.stored;
        tally.files += counted.stored;
        tally.pages += 1;
        self.stats.pages += 1;
        self.stats.files += counted.stored;
        // One line per page, whatever `HUB_LOG_FILE_NAMES` says of the lines per file.
        tracing::info!(
            entries = counted.stored,
            deleted = counted.deleted,
            last,
            "page stored"
        );
        // The whole sync's, from its first invocation.
        let sync_changes = self.account.unreported + counted;
        let drives = match last {
            true => self.counted_drives(drives, sync_changes.stored > 0).await?,
            false => drives,
        };
        if let Some(event) = last
            .then(|| {
                Event::sync_completed(
                    &self.account,
                    self.reason,
                    sync_changes.stored - sync_changes.deleted,
                    sync_changes.deleted,
                )
            })
            .flatten()
        {
            // Queued before the commit that ends the job: a crash in between brings the
            // job back, and the app hears of these changes at least once.
            events::emit(self.hub, event).await?;
        }
        let change = Change::Cursor {
            from: self.account.cursor.clone(),
            to: page.next.cursor().to_string(),
            feed_seq,
            counted,
            drives,
            finished: last.then(|| SyncOutcome::ok(Utc::now(), sync_changes.stored)),
        };
        if let Committed::Superseded = self.commit(change).await? {
            return Ok(Some(SyncResult::Skipped(SkipReason::AnotherWorkerAhead)));
        }
        self.progressed = true;
        Ok(last.then_some(SyncResult::Synced {
            pages: tally.pages,
            files: tally.files,
        }))
    }

    /// Stores a page: its entries and tombstones, and its removals by path, in the page's
    /// order. Each removal splits the page: the entries before it are stored, then it marks
    /// deleted what is at or under its path (those entries included), then the entries after
    /// it are stored, so one re-created at the same path later in the page stays. Everything
    /// takes the feed's numbers just above the watermark, in that order. Returns how many
    /// entries it stored or marked, and how many of them are deletions.
    pub(super) async fn store_page(
        &self,
        files: Vec<FileEntry>,
        removed: Vec<RemovedPath>,
    ) -> HubResult<ChangeCount> {
        let first_seq = self.account.feed_seq + 1;
        let mut deleted = tombstones(&files);
        let mut files = files.into_iter();
        let (mut taken, mut count) = (0usize, 0u64);
        for removal in removed {
            let before = removal.before.max(taken);
            let segment: Vec<FileEntry> = files.by_ref().take(before - taken).collect();
            taken += segment.len();
            count += self.store_files(segment, first_seq + count).await?;
            let marked = self
                .mark_path_deleted(&removal.removal, first_seq + count)
                .await?;
            count += marked;
            deleted += marked;
        }
        count += self.store_files(files.collect(), first_seq + count).await?;
        Ok(ChangeCount {
            stored: count,
            deleted,
        })
    }

    /// Stores entries, each id once at its last state among them (Graph documents that an
    /// item may come more than once in one delta page, and DynamoDB refuses a batch with two
    /// equal keys), numbered from `first_seq`. Returns how many were stored.
    pub(super) async fn store_files(
        &self,
        files: Vec<FileEntry>,
        first_seq: u64,
    ) -> HubResult<u64> {
        if files.is_empty() {
            return Ok(0);
        }
        let files = last_occurrences(files);
        self.hub
            .store
            .put_files(
                &self.account.id,
                &files,
                self.account.listing.generation,
                first_seq,
            )
            .await?;
        // A line per file names the file: what a local user reads to see their files, but
        // in AWS file names in CloudWatch are a privacy and cost matter, so the template
        // leaves them out unless the operator asks (`HUB_LOG_FILE_NAMES`).
        for file in files.iter().filter(|_| self.hub.config.log_file_names) {
            tracing::info!(
                file_id = %file.id,
                name = %file.name,
                modified_at = ?file.modified_at,
                deleted = file.deleted,
                "file"
            );
        }
        Ok(files.len() as u64)
    }

    /// A removal by path: marks deleted, a page of the index at a time, the entries `removal`
    /// names, numbered from `first_seq`. Returns how many entries it marked.
    pub(super) async fn mark_path_deleted(
        &self,
        removal: &PathRemoval,
        first_seq: u64,
    ) -> HubResult<u64> {
        let (store, id) = (&self.hub.store, &self.account.id);
        let marked = mark_every_page(first_seq, |after, seq| async move {
            store
                .mark_path_deleted(id, removal, after.as_deref(), RECONCILE_PAGE, seq)
                .await
        })
        .await?;
        tracing::info!(marked, "entries at or under a removed path marked deleted");
        Ok(marked)
    }

    /// At the end of an enumeration that replaced an expired cursor: whatever it did not see
    /// again was deleted at the provider meanwhile. The tombstones take the feed's numbers
    /// from `first_seq` on. Returns how many entries it marked.
    pub(super) async fn mark_unseen_deleted(&self, first_seq: u64) -> HubResult<u64> {
        let generation = self.account.listing.generation;
        let (store, id) = (&self.hub.store, &self.account.id);
        let marked = mark_every_page(first_seq, |after, seq| async move {
            store
                .mark_unseen_deleted(id, generation, after.as_deref(), RECONCILE_PAGE, seq)
                .await
        })
        .await?;
        tracing::info!(
            marked,
            "entries not seen again by the new enumeration marked deleted"
        );
        Ok(marked)
    }
}

/// Runs a store marking that goes a page of the index at a time (`mark_page(after, first seq)`
/// answers how many it marked and where the next page starts) to the end of the index,
/// numbering the marked entries from `first_seq` on. Returns how many it marked.
async fn mark_every_page<F, Page>(first_seq: u64, mut mark_page: F) -> HubResult<u64>
where
    F: FnMut(Option<String>, u64) -> Page,
    Page: std::future::Future<Output = HubResult<(u64, Option<String>)>>,
{
    let (mut marked, mut after) = (0, None);
    loop {
        let (count, next) = mark_page(after.take(), first_seq + marked).await?;
        marked += count;
        match next {
            Some(next) => after = Some(next),
            None => return Ok(marked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_occurrence_of_an_id_wins() {
        let mut stale = FileEntry::new("f1", "old.txt");
        stale.size = Some(1);
        let mut fresh = FileEntry::new("f1", "new.txt");
        fresh.size = Some(2);
        let other = FileEntry::new("f2", "b.txt");
        let kept = last_occurrences(vec![stale, other.clone(), fresh.clone()]);
        assert_eq!(kept, vec![other, fresh]);
    }
}
