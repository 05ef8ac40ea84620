//! The file index and its change feed, kept in LMDB by [`FileIndex`].

use super::*;

impl LocalStore {
    /// Reads one page of the account's entries in file-id order and rewrites those `mark`
    /// gives a new state for, numbered from `first_seq`: how many, and where the page ends.
    async fn mark_page(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
        first_seq: u64,
        mark: impl Fn(StoredFile, u64, DateTime<Utc>) -> Option<StoredFile> + Send + 'static,
    ) -> HubResult<(u64, Option<String>)> {
        if !storable(account_id) {
            return Ok((0, None));
        }
        let (account_id, after) = (account_id.to_string(), after.map(str::to_string));
        self.run_index(move |index| {
            index.mark_page(&account_id, after.as_deref(), limit, first_seq, mark)
        })
        .await
    }
}

#[async_trait]
impl FileStore for LocalStore {
    async fn purge_files(&self, account_id: &str) -> HubResult<()> {
        if !storable(account_id) {
            return Ok(());
        }
        let account_id = account_id.to_string();
        self.run_index(move |index| index.purge(&account_id)).await
    }

    async fn put_files(
        &self,
        account_id: &str,
        files: &[FileEntry],
        generation: u64,
        first_seq: u64,
    ) -> HubResult<()> {
        if !storable(account_id) {
            return Err(HubError::internal("account id too long for the file index"));
        }
        let (account_id, files) = (account_id.to_string(), files.to_vec());
        self.run_index(move |index| {
            index.put(&account_id, &files, generation, first_seq, Utc::now())
        })
        .await
    }

    async fn mark_unseen_deleted(
        &self,
        account_id: &str,
        generation: u64,
        after: Option<&str>,
        limit: usize,
        first_seq: u64,
    ) -> HubResult<(u64, Option<String>)> {
        self.mark_page(
            account_id,
            after,
            limit,
            first_seq,
            move |stored, seq, now| {
                stored
                    .unseen_since(generation)
                    .then(|| stored.reconciled(generation, seq, now))
            },
        )
        .await
    }

    /// Reads the account's entries a page at a time in file-id order and marks those at or
    /// under the path: a development store has no path index, and a page of `limit` entries
    /// is all it holds at once. `after` is the page's last file id.
    async fn mark_path_deleted(
        &self,
        account_id: &str,
        removal: &PathRemoval,
        after: Option<&str>,
        limit: usize,
        first_seq: u64,
    ) -> HubResult<(u64, Option<String>)> {
        if !storable(account_id) {
            return Ok((0, None));
        }
        let removal = removal.clone();
        self.mark_page(
            account_id,
            after,
            limit,
            first_seq,
            move |stored, seq, now| {
                stored
                    .removed_with(&removal)
                    .then(|| stored.removed(seq, now))
            },
        )
        .await
    }

    async fn last_seq(&self, account_id: &str) -> HubResult<u64> {
        if !storable(account_id) {
            return Ok(0);
        }
        let account_id = account_id.to_string();
        self.run_index(move |index| index.last_seq(&account_id))
            .await
    }

    async fn changes(
        &self,
        account_id: &str,
        after: Option<&FeedPosition>,
        watermark: u64,
        limit: usize,
    ) -> HubResult<FeedPage> {
        if !storable(account_id) {
            return Ok(FeedPage {
                entries: Vec::new(),
                has_more: false,
            });
        }
        let (account_id, after) = (account_id.to_string(), after.cloned());
        let (entries, has_more) = self
            .run_index(move |index| index.changes(&account_id, after.as_ref(), watermark, limit))
            .await?;
        Ok(FeedPage {
            entries: entries
                .into_iter()
                .map(|(seq, entry)| FeedEntry { seq, entry })
                .collect(),
            has_more,
        })
    }

    async fn get_file(&self, account_id: &str, file_id: &str) -> HubResult<Option<FileEntry>> {
        if !storable(account_id) || !storable(file_id) {
            return Ok(None);
        }
        let (account_id, file_id) = (account_id.to_string(), file_id.to_string());
        let stored = self
            .run_index(move |index| index.entry(&account_id, &file_id))
            .await?;
        Ok(stored.map(|stored| stored.entry))
    }

    async fn list_folder(
        &self,
        account_id: &str,
        drive_id: &str,
        in_folder: Option<&Folder>,
        deleted: Option<bool>,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Scan> {
        if !storable(account_id) {
            return Ok(Scan::default());
        }
        let (account_id, drive_id) = (account_id.to_string(), drive_id.to_string());
        let (folder, after) = (in_folder.cloned(), after.map(str::to_string));
        self.run_index(move |index| {
            index.folder_page(
                &account_id,
                &drive_id,
                folder.as_ref(),
                deleted,
                after.as_deref(),
                limit,
            )
        })
        .await
    }

    async fn list_under_path(
        &self,
        account_id: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Scan> {
        if !storable(account_id) || prefix.is_empty() {
            return Ok(Scan::default());
        }
        let after: Option<(String, String)> = after
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| HubError::InvalidRequest("a malformed path position".into()))?;
        let (account_id, prefix) = (account_id.to_string(), prefix.to_string());
        let (mut scan, next) = self
            .run_index(move |index| index.path_page(&account_id, &prefix, after, limit))
            .await?;
        scan.next = next
            .map(|next| serde_json::to_string(&next))
            .transpose()
            .map_err(HubError::internal)?;
        Ok(scan)
    }

    async fn list_files(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<FileEntry>> {
        if !storable(account_id) {
            return Ok(Page::empty());
        }
        let (account_id, after) = (account_id.to_string(), after.map(str::to_string));
        let page = self
            .run_index(move |index| index.page(&account_id, after.as_deref(), limit))
            .await?;
        Ok(Page {
            items: page.items.into_iter().map(|stored| stored.entry).collect(),
            next: page.next,
        })
    }
}
