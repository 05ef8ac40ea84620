//! The change feed in DynamoDB: one feed item per written page of the index, holding the
//! page's feed positions (sequence number and file id), under the account's partition.
//!
//! Why not an index of the entries: the `by-seq` local secondary index projected every
//! attribute of every entry and each change gives an entry a new `seq`, so DynamoDB charged
//! each change three times (the item, the old index entry out, the new one in: 38 write units
//! for a sync of ten changed files against 12 before the feed, BENCHMARKS.md). A feed item
//! costs one write unit per started KB of ids, once per page: about 0.05 per entry.
//!
//! - Write order: a page's feed item is written before its entries. An entry keeps its
//!   position under `feed_seq`, an attribute no index has. A feed position counts only while
//!   the entry it names is still at that position ([`Positioned`]), so a process that dies
//!   after the feed item and before (some of) its entries leaves positions that name entries
//!   still at their old places: they are skipped, and the entries stay where they were.
//!   Entries written before their feed item could be lost to the feed if the process died
//!   in between; this way nothing is.
//! - A later change of an entry leaves its old position in an older feed item: the reader
//!   skips it there and finds the entry at its new one ("each entry stands at the position of
//!   its latest change", docs/API.md, "Change feed").
//! - The account's `last_seq` reads the last feed item's highest number, one small query, so
//!   that a sync that died between its page and its cursor numbers the next page above it.
//! - Entries stored before this layout keep `seq` and stay in the `by-seq` index (an LSI
//!   cannot be dropped from a deployed table): the reader merges that index's entries with
//!   the feed items' in position order. An entry leaves the index the first time a sync
//!   rewrites it. `hub-migrate` moves the rest out (see `migrate_feed`).
//! - A feed item's key is `FEED#<its first sequence number, 20 digits>`: the feed items sort
//!   in position order and never overlap, since every page is numbered above the last one.
//!   The same page written again with the same numbers (a retry under the same watermark)
//!   finds its item taken and adds its positions to it rather than replacing them.

use serde::Deserialize;

use super::*;

/// The ids of one feed item at most, in bytes: DynamoDB's items end at 400 KB.
const FEED_ITEM_BYTES: usize = 300_000;
/// Feed items a reading query asks for at once.
const FEED_ITEMS_PER_QUERY: i32 = 25;

/// A feed item: the positions of one written page (or a part of a large one), in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct FeedRecord {
    seqs: Vec<u64>,
    ids: Vec<String>,
    /// The highest of `seqs`: what `last_seq` reads.
    last: u64,
}

impl FeedRecord {
    fn positions(&self) -> impl Iterator<Item = FeedPosition> + '_ {
        self.seqs
            .iter()
            .zip(&self.ids)
            .map(|(seq, id)| FeedPosition {
                seq: *seq,
                file_id: id.clone(),
            })
    }

    /// `self` with `other`'s positions added, each once, in position order.
    fn merged(&self, other: &FeedRecord) -> FeedRecord {
        let mut all: Vec<FeedPosition> = self.positions().chain(other.positions()).collect();
        all.sort();
        all.dedup();
        FeedRecord {
            last: all.last().map_or(0, |p| p.seq),
            seqs: all.iter().map(|p| p.seq).collect(),
            ids: all.into_iter().map(|p| p.file_id).collect(),
        }
    }
}

fn feed_sk(seq: u64) -> String {
    format!("{FEED_PREFIX}{seq:020}")
}

fn feed_key(account_id: &str, first_seq: u64) -> Item {
    key(account_pk(account_id), feed_sk(first_seq))
}

/// The item of a stored entry: its position under [`POSITION_ATTRIBUTE`], out of `by-seq`.
pub(super) fn stored_item(stored: &StoredFile, key: Item) -> HubResult<Item> {
    let mut item = to_item(stored, key)?;
    if let Some(seq) = item.remove(SEQ_ATTRIBUTE) {
        item.insert(POSITION_ATTRIBUTE.to_string(), seq);
    }
    Ok(item)
}

/// A stored entry as read back, with where it stands: `feed_seq` for entries of this layout,
/// `seq` (in `StoredFile`) for those of the `by-seq` index.
#[derive(Deserialize)]
struct Positioned {
    #[serde(default)]
    feed_seq: Option<u64>,
    #[serde(flatten)]
    stored: StoredFile,
}

impl DynamoStore {
    /// Writes the feed item of a page about to be stored (`positions` in order), before its
    /// entries: see the module's notes. A page over [`FEED_ITEM_BYTES`] of ids takes several.
    pub(super) async fn write_feed(
        &self,
        account_id: &str,
        positions: &[FeedPosition],
    ) -> HubResult<()> {
        let mut start = 0;
        while start < positions.len() {
            let mut bytes = 0;
            let mut end = start;
            while end < positions.len() && (end == start || bytes < FEED_ITEM_BYTES) {
                bytes += positions[end].file_id.len() + 8;
                end += 1;
            }
            let part = &positions[start..end];
            let record = FeedRecord {
                seqs: part.iter().map(|p| p.seq).collect(),
                ids: part.iter().map(|p| p.file_id.clone()).collect(),
                last: part.iter().map(|p| p.seq).max().unwrap_or(0),
            };
            self.put_feed_record(account_id, part[0].seq, record)
                .await?;
            start = end;
        }
        Ok(())
    }

    /// Puts a feed item unless its key is taken; if it is (the same page written again under
    /// the same watermark), adds its positions to the one there, so that an entry written by
    /// the first attempt keeps a position that names it.
    async fn put_feed_record(
        &self,
        account_id: &str,
        first_seq: u64,
        record: FeedRecord,
    ) -> HubResult<()> {
        let key = feed_key(account_id, first_seq);
        let put = self
            .client
            .put_item()
            .condition_expression("attribute_not_exists(pk)");
        if self
            .put_unless_held(put, to_item(&record, key.clone())?)
            .await?
        {
            return Ok(());
        }
        let there: FeedRecord = self.get_record(key.clone()).await?.unwrap_or_default();
        let merged = there.merged(&record);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&merged, key)?))
            .send()
            .await
            .map_err(|e| failed("PutItem", e))?;
        Ok(())
    }

    /// The highest feed position of the account, in the feed items or, for entries stored
    /// before them, in the `by-seq` index.
    pub(super) async fn highest_seq(&self, account_id: &str) -> HubResult<u64> {
        let feed = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :feed)")
            .expression_attribute_values(":pk", s(account_pk(account_id)))
            .expression_attribute_values(":feed", s(FEED_PREFIX))
            .projection_expression("#last")
            .expression_attribute_names("#last", "last")
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("Query", e))?;
        let in_feed = number_of(feed.items.unwrap_or_default().first(), "last")?;
        let legacy = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(SEQ_INDEX)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(account_pk(account_id)))
            .projection_expression("#seq")
            .expression_attribute_names("#seq", SEQ_ATTRIBUTE)
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("Query", e))?;
        let in_index = number_of(legacy.items.unwrap_or_default().first(), SEQ_ATTRIBUTE)?;
        Ok(in_feed.max(in_index))
    }

    /// Up to `limit` + 1 entries of the feed items after `after`, at most at `watermark`,
    /// each at a position that still names it, in position order.
    pub(super) async fn feed_entries(
        &self,
        account_id: &str,
        after: Option<&FeedPosition>,
        watermark: u64,
        limit: usize,
    ) -> HubResult<Vec<FeedEntry>> {
        let want = limit + 1;
        // The feed item holding `after` may hold later positions too: it starts the reading.
        let from = match after {
            Some(after) => self
                .feed_item_holding(account_id, after.seq)
                .await?
                .unwrap_or_else(|| feed_sk(after.seq.saturating_add(1))),
            None => feed_sk(0),
        };
        let mut pages = Pages::of(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(account_pk(account_id)))
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":to", s(feed_sk(watermark)))
                .limit(FEED_ITEMS_PER_QUERY)
                .consistent_read(true),
        );
        let mut found = Vec::new();
        while found.len() < want {
            let Some(items) = pages.next().await? else {
                break;
            };
            let mut candidates = Vec::new();
            for item in items {
                let record: FeedRecord = from_item(item)?;
                candidates.extend(record.positions().filter(|position| {
                    position.seq <= watermark && after.is_none_or(|after| position > after)
                }));
            }
            found.extend(self.still_there(account_id, candidates).await?);
        }
        found.truncate(want);
        Ok(found)
    }

    /// The sort key of the feed item whose positions include `seq`, if any.
    async fn feed_item_holding(&self, account_id: &str, seq: u64) -> HubResult<Option<String>> {
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :feed AND :at")
            .expression_attribute_values(":pk", s(account_pk(account_id)))
            .expression_attribute_values(":feed", s(FEED_PREFIX))
            .expression_attribute_values(":at", s(feed_sk(seq)))
            .projection_expression("sk, #last")
            .expression_attribute_names("#last", "last")
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("Query", e))?;
        let Some(item) = answer.items.unwrap_or_default().into_iter().next() else {
            return Ok(None);
        };
        let last = number_of(Some(&item), "last")?;
        Ok((last >= seq).then(|| string_attr(&item, "sk")).flatten())
    }

    /// The entries `positions` name that still stand there (in `positions`' order), read with
    /// one `BatchGetItem` per hundred.
    async fn still_there(
        &self,
        account_id: &str,
        positions: Vec<FeedPosition>,
    ) -> HubResult<Vec<FeedEntry>> {
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = positions.iter().map(|p| p.file_id.clone()).collect();
        let keys = distinct_keys(&ids)
            .iter()
            .map(|id| file_key(account_id, id))
            .collect();
        let current: HashMap<String, Positioned> = self
            .batch_get::<Positioned>(keys, None)
            .await?
            .into_iter()
            .map(|p| (p.stored.entry.id.clone(), p))
            .collect();
        Ok(positions
            .into_iter()
            .filter_map(|position| {
                let there = current.get(&position.file_id)?;
                (there.feed_seq == Some(position.seq)).then(|| FeedEntry {
                    seq: position.seq,
                    entry: there.stored.entry.clone(),
                })
            })
            .collect())
    }
}

/// A number attribute of an optional item (0 when absent).
fn number_of(item: Option<&Item>, name: &str) -> HubResult<u64> {
    item.and_then(|item| item.get(name))
        .and_then(|value| value.as_n().ok())
        .map(|n| n.parse::<u64>().map_err(HubError::internal))
        .transpose()
        .map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_written_again_adds_its_positions() {
        let record = |pairs: &[(u64, &str)]| FeedRecord {
            seqs: pairs.iter().map(|(s, _)| *s).collect(),
            ids: pairs.iter().map(|(_, id)| id.to_string()).collect(),
            last: pairs.iter().map(|(s, _)| *s).max().unwrap_or(0),
        };
        let first = record(&[(11, "a"), (12, "b")]);
        let again = record(&[(11, "c"), (12, "b"), (13, "d")]);
        assert_eq!(
            first.merged(&again),
            record(&[(11, "a"), (11, "c"), (12, "b"), (13, "d")])
        );
    }

    #[test]
    fn entries_keep_their_position_out_of_the_seq_index() {
        let stored = StoredFile {
            entry: FileEntry::new("f1", "a.txt"),
            generation: 1,
            seq: Some(7),
            path_lower: None,
        };
        let item = stored_item(&stored, file_key("acc", "f1")).unwrap();
        assert!(!item.contains_key(SEQ_ATTRIBUTE));
        assert_eq!(item[POSITION_ATTRIBUTE], AttributeValue::N("7".into()));
        let back: Positioned = from_item(item).unwrap();
        assert_eq!(back.feed_seq, Some(7));
        assert_eq!(back.stored.entry.id, "f1");
    }
}
