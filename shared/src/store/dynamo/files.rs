//! The file index and its change feed: entries under their account's partition, the feed
//! in feed items beside them (`feed.rs`; older entries through the `by-seq` index), removals
//! by path read through the `by-path` index.

use super::feed::stored_item;
use super::*;

/// The keys of `stored` in the `by-folder` index (none for an entry without a drive).
pub(super) fn folder_keys(account_id: &str, stored: &StoredFile) -> Item {
    match stored.drive_place() {
        Some((drive, place)) => HashMap::from([
            (
                DRIVE_KEY_ATTRIBUTE.to_string(),
                s(drive_key(account_id, drive)),
            ),
            (PLACE_ATTRIBUTE.to_string(), s(place)),
        ]),
        None => HashMap::new(),
    }
}

fn put_file_request(account_id: &str, stored: &StoredFile) -> HubResult<WriteRequest> {
    let mut key = file_key(account_id, &stored.entry.id);
    key.extend(folder_keys(account_id, stored));
    let put = PutRequest::builder()
        .set_item(Some(stored_item(stored, key)?))
        .build()
        .map_err(HubError::internal)?;
    Ok(WriteRequest::builder().put_request(put).build())
}

/// The file id of an index item's `sk`.
fn file_id_of(item: &Item) -> Option<String> {
    string_attr(item, "sk").and_then(|sk| sk.strip_prefix(FILE_PREFIX).map(str::to_string))
}

impl DynamoStore {
    async fn stored_file(&self, account_id: &str, file_id: &str) -> HubResult<Option<FileEntry>> {
        if !storable(account_id) || !storable(file_id) {
            return Ok(None);
        }
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(file_key(account_id, file_id)))
            .send()
            .await
            .map_err(|e| failed("GetItem", e))?;
        let stored: Option<StoredFile> = answer.item.map(from_item).transpose()?;
        Ok(stored.map(|stored| stored.entry))
    }

    /// The entries under `keys`, in that order, read with one `BatchGetItem` per hundred; an
    /// entry gone since its key was found is left out.
    async fn entries_of(&self, account_id: &str, ids: Vec<String>) -> HubResult<Vec<FileEntry>> {
        let keys = ids.iter().map(|id| file_key(account_id, id)).collect();
        let found: Vec<StoredFile> = self.batch_get(keys, None).await?;
        let mut by_id: HashMap<String, FileEntry> = found
            .into_iter()
            .map(|stored| (stored.entry.id.clone(), stored.entry))
            .collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// One page of an account's raw index items in file-id order, after the file id `after`.
    async fn query_files(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<Item>> {
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :files)")
            .expression_attribute_values(":pk", s(account_pk(account_id)))
            .expression_attribute_values(":files", s(FILE_PREFIX))
            .set_exclusive_start_key(after.map(|file_id| file_key(account_id, file_id)))
            .limit(page_limit(limit))
            .send()
            .await
            .map_err(|e| failed("Query", e))?;
        let next = answer
            .last_evaluated_key
            .as_ref()
            .and_then(|key| string_attr(key, "sk"))
            .and_then(|sk| sk.strip_prefix(FILE_PREFIX).map(str::to_string));
        Ok(Page {
            items: answer.items.unwrap_or_default(),
            next,
        })
    }
}

impl DynamoStore {
    /// Up to `limit` + 1 feed entries of the `by-seq` index after `after`, at most at
    /// `watermark`: the entries stored before the feed items (`feed.rs`) and not rewritten
    /// since. Also whether the query was cut short by the 1 MB it returns at most.
    async fn legacy_changes(
        &self,
        account_id: &str,
        after: Option<&FeedPosition>,
        watermark: u64,
        limit: usize,
    ) -> HubResult<(Vec<FeedEntry>, bool)> {
        // An index query's start key is the index key and the table key of the last item.
        let start = after.map(|after| {
            let mut key = file_key(account_id, &after.file_id);
            key.insert(
                SEQ_ATTRIBUTE.into(),
                AttributeValue::N(after.seq.to_string()),
            );
            key
        });
        let from = after.map_or(0, |after| after.seq);
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(SEQ_INDEX)
            .key_condition_expression("pk = :pk AND #seq BETWEEN :from AND :watermark")
            .expression_attribute_names("#seq", SEQ_ATTRIBUTE)
            .expression_attribute_values(":pk", s(account_pk(account_id)))
            .expression_attribute_values(":from", AttributeValue::N(from.to_string()))
            .expression_attribute_values(":watermark", AttributeValue::N(watermark.to_string()))
            .set_exclusive_start_key(start)
            .limit(page_limit(limit) + 1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("Query", e))?;
        let truncated = answer.last_evaluated_key.is_some();
        let entries = answer
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let stored: StoredFile = from_item(item)?;
                let seq = stored
                    .seq
                    .ok_or_else(|| HubError::internal("an entry of by-seq has no seq"))?;
                Ok(FeedEntry {
                    seq,
                    entry: stored.entry,
                })
            })
            .collect::<HubResult<Vec<_>>>()?;
        Ok((entries, truncated))
    }

    /// Stores a page of entries (or tombstones): its feed item first, then the entries, so
    /// that a process dying in between loses no position (`feed.rs`).
    async fn write_page(&self, account_id: &str, stored: &[StoredFile]) -> HubResult<()> {
        if stored.is_empty() {
            return Ok(());
        }
        let positions: Vec<FeedPosition> = stored
            .iter()
            .filter_map(|stored| {
                stored.seq.map(|seq| FeedPosition {
                    seq,
                    file_id: stored.entry.id.clone(),
                })
            })
            .collect();
        self.write_feed(account_id, &positions).await?;
        let requests = stored
            .iter()
            .map(|stored| put_file_request(account_id, stored))
            .collect::<HubResult<Vec<_>>>()?;
        self.write_batches(requests).await
    }
}

#[async_trait]
impl FileStore for DynamoStore {
    async fn purge_files(&self, account_id: &str) -> HubResult<()> {
        if !storable(account_id) {
            return Ok(());
        }
        let mut pages = Pages::of(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :end")
                .expression_attribute_values(":pk", s(account_pk(account_id)))
                .expression_attribute_values(":first", s(INDEX_FIRST_SK))
                .expression_attribute_values(":end", s(INDEX_END_SK))
                .projection_expression("pk, sk")
                .consistent_read(true),
        );
        while let Some(keys) = pages.next().await? {
            self.write_batches(delete_requests(keys)?).await?;
        }
        Ok(())
    }

    async fn put_files(
        &self,
        account_id: &str,
        files: &[FileEntry],
        generation: u64,
        first_seq: u64,
    ) -> HubResult<()> {
        let now = Utc::now();
        let mut stored = Vec::with_capacity(files.len());
        for (seq, file) in (first_seq..).zip(files) {
            let known = if file.deleted {
                self.stored_file(account_id, &file.id).await?
            } else {
                None
            };
            if StoredFile::unknown_removal(file, known.as_ref()) {
                continue;
            }
            stored.push(StoredFile::stamped(file, known, generation, seq, now));
        }
        self.write_page(account_id, &stored).await
    }

    async fn mark_unseen_deleted(
        &self,
        account_id: &str,
        generation: u64,
        after: Option<&str>,
        limit: usize,
        first_seq: u64,
    ) -> HubResult<(u64, Option<String>)> {
        let page = self.query_files(account_id, after, limit).await?;
        let now = Utc::now();
        let mut tombstones = Vec::new();
        for item in page.items {
            let stored: StoredFile = from_item(item)?;
            if stored.unseen_since(generation) {
                let seq = first_seq + tombstones.len() as u64;
                tombstones.push(stored.reconciled(generation, seq, now));
            }
        }
        self.write_page(account_id, &tombstones).await?;
        Ok((tombstones.len() as u64, page.next))
    }

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
        // An index query's start key is the index key and the table key of the last item:
        // the position is that item's path key and file id.
        let start = match after {
            Some(after) => {
                let (path, file_id): (String, String) = serde_json::from_str(after)
                    .map_err(|e| HubError::internal(format!("a by-path position: {e}")))?;
                let mut key = file_key(account_id, &file_id);
                key.insert(PATH_ATTRIBUTE.into(), s(path));
                Some(key)
            }
            None => None,
        };
        // `begins_with` also finds `/a/bc` for `/a/b`: those are left by `removed_with`.
        let condition = match removal.entry_only {
            true => "pk = :pk AND #path = :path",
            false => "pk = :pk AND begins_with(#path, :path)",
        };
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PATH_INDEX)
            .key_condition_expression(condition)
            .expression_attribute_names("#path", PATH_ATTRIBUTE)
            .expression_attribute_values(":pk", s(account_pk(account_id)))
            .expression_attribute_values(":path", s(removal.path_lower.as_str()))
            .set_exclusive_start_key(start)
            .limit(page_limit(limit))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("Query", e))?;
        let next = answer
            .last_evaluated_key
            .as_ref()
            .map(|key| {
                let path = string_attr(key, PATH_ATTRIBUTE);
                let file_id = string_attr(key, "sk")
                    .and_then(|sk| sk.strip_prefix(FILE_PREFIX).map(str::to_string));
                match (path, file_id) {
                    (Some(path), Some(file_id)) => {
                        serde_json::to_string(&(path, file_id)).map_err(HubError::internal)
                    }
                    _ => Err(HubError::internal("a by-path page ended without its key")),
                }
            })
            .transpose()?;
        let now = Utc::now();
        let mut tombstones = Vec::new();
        for item in answer.items.unwrap_or_default() {
            let stored: StoredFile = from_item(item)?;
            if stored.removed_with(removal) {
                let seq = first_seq + tombstones.len() as u64;
                tombstones.push(stored.removed(seq, now));
            }
        }
        self.write_page(account_id, &tombstones).await?;
        Ok((tombstones.len() as u64, next))
    }

    async fn last_seq(&self, account_id: &str) -> HubResult<u64> {
        if !storable(account_id) {
            return Ok(0);
        }
        self.highest_seq(account_id).await
    }

    async fn changes(
        &self,
        account_id: &str,
        after: Option<&FeedPosition>,
        watermark: u64,
        limit: usize,
    ) -> HubResult<FeedPage> {
        if !storable(account_id) || after.is_some_and(|after| !storable(&after.file_id)) {
            return Ok(FeedPage {
                entries: Vec::new(),
                has_more: false,
            });
        }
        // Each source's first `limit` + 1 entries after `after`: merged, their first `limit`
        // are the feed's, and one more in either says more remain.
        let (mut entries, legacy_cut) = self
            .legacy_changes(account_id, after, watermark, limit)
            .await?;
        let legacy_last = entries.last().map(|e| (e.seq, e.entry.id.clone()));
        entries.extend(
            self.feed_entries(account_id, after, watermark, limit)
                .await?,
        );
        // The index's query cut short by the 1 MB it returns: nothing past its last entry is
        // known to be complete.
        let bound = legacy_cut.then_some(legacy_last).flatten();
        entries.sort_by(|a, b| (a.seq, &a.entry.id).cmp(&(b.seq, &b.entry.id)));
        if let Some(bound) = bound {
            entries.retain(|e| (e.seq, e.entry.id.as_str()) <= (bound.0, bound.1.as_str()));
        }
        let has_more = entries.len() > limit || legacy_cut;
        entries.truncate(limit);
        Ok(FeedPage { entries, has_more })
    }

    async fn get_file(&self, account_id: &str, file_id: &str) -> HubResult<Option<FileEntry>> {
        self.stored_file(account_id, file_id).await
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
        if !storable(account_id) || !storable(drive_id) {
            return Ok(Scan::default());
        }
        let partition = drive_key(account_id, drive_id);
        // An index query's start key is the index key and the table key of the last item:
        // the place holds the file id. A place that names no file (where a listing that skips
        // the top starts) still names a position.
        let start = match after {
            Some(after) => {
                let file_id = read_place(after).map(|(_, id)| id).unwrap_or_default();
                let mut key = key(account_pk(account_id), format!("{FILE_PREFIX}{file_id}"));
                key.insert(DRIVE_KEY_ATTRIBUTE.into(), s(&partition));
                key.insert(PLACE_ATTRIBUTE.into(), s(after));
                Some(key)
            }
            None => None,
        };
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(FOLDER_INDEX)
            .expression_attribute_names("#drive", DRIVE_KEY_ATTRIBUTE)
            .expression_attribute_values(":drive", s(&partition))
            .set_exclusive_start_key(start)
            .limit(page_limit(limit));
        query = match in_folder {
            Some(folder) => query
                .key_condition_expression("#drive = :drive AND begins_with(#place, :folder)")
                .expression_attribute_names("#place", PLACE_ATTRIBUTE)
                .expression_attribute_values(":folder", s(place_prefix(folder))),
            None => query.key_condition_expression("#drive = :drive"),
        };
        if let Some(deleted) = deleted {
            query = query
                .filter_expression("#deleted = :deleted")
                .expression_attribute_names("#deleted", DELETED_ATTRIBUTE)
                .expression_attribute_values(":deleted", AttributeValue::Bool(deleted));
        }
        let answer = query.send().await.map_err(|e| failed("Query", e))?;
        let next = answer
            .last_evaluated_key
            .as_ref()
            .and_then(|key| string_attr(key, PLACE_ATTRIBUTE));
        let read = answer.scanned_count.max(0) as u64;
        let ids: Vec<String> = answer
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(file_id_of)
            .collect();
        let items = self.entries_of(account_id, ids).await?;
        Ok(Scan {
            read: read + items.len() as u64,
            items,
            next,
        })
    }

    async fn list_under_path(
        &self,
        account_id: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Scan> {
        if !storable(account_id) || prefix.is_empty() || prefix.len() > MAX_PATH_KEY_LEN {
            return Ok(Scan::default());
        }
        let start = match after {
            Some(after) => {
                let (path, file_id): (String, String) = serde_json::from_str(after)
                    .map_err(|_| HubError::InvalidRequest("a malformed path position".into()))?;
                let mut key = file_key(account_id, &file_id);
                key.insert(PATH_ATTRIBUTE.into(), s(path));
                Some(key)
            }
            None => None,
        };
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PATH_INDEX)
            .key_condition_expression("pk = :pk AND begins_with(#path, :path)")
            .expression_attribute_names("#path", PATH_ATTRIBUTE)
            .expression_attribute_values(":pk", s(account_pk(account_id)))
            .expression_attribute_values(":path", s(prefix))
            .set_exclusive_start_key(start)
            .limit(page_limit(limit))
            .send()
            .await
            .map_err(|e| failed("Query", e))?;
        let next = answer
            .last_evaluated_key
            .as_ref()
            .map(
                |key| match (string_attr(key, PATH_ATTRIBUTE), file_id_of(key)) {
                    (Some(path), Some(file_id)) => {
                        serde_json::to_string(&(path, file_id)).map_err(HubError::internal)
                    }
                    _ => Err(HubError::internal("a by-path page ended without its key")),
                },
            )
            .transpose()?;
        let read = answer.scanned_count.max(0) as u64;
        let items = answer
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<StoredFile>(item).map(|stored| stored.entry))
            .collect::<HubResult<Vec<_>>>()?;
        Ok(Scan { items, next, read })
    }

    async fn list_files(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<FileEntry>> {
        if !storable(account_id) || after.is_some_and(|after| !storable(after)) {
            return Ok(Page::empty());
        }
        let page = self.query_files(account_id, after, limit).await?;
        let items = page
            .items
            .into_iter()
            .map(|item| from_item::<StoredFile>(item).map(|stored| stored.entry))
            .collect::<HubResult<_>>()?;
        Ok(Page {
            items,
            next: page.next,
        })
    }
}
