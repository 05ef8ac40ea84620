//! Schema migrations of a deployed table, run by the operator with `hub-migrate`
//! (docs/DEPLOY.md, "Upgrading"): what a new index needs of the items written before it.

use super::files::folder_keys;
use super::*;

/// Items a scan page reads at most.
const SCAN_PAGE: i32 = 500;

/// What a backfill did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backfill {
    /// Index entries without `by-folder` keys that the scan found.
    pub found: u64,
    /// Those it gave their keys.
    pub updated: u64,
}

impl DynamoStore {
    /// Gives every index entry written before the `by-folder` index its keys in it (entries
    /// without a drive have none to give). Scans the table once, a page at a time, and
    /// updates each entry on the condition that it is unchanged since the scan read it (same
    /// `seq`, still without keys): an entry a sync rewrote meanwhile got its keys from that
    /// write, and one an account's delete removed is not brought back. Safe to run again, and
    /// alongside the running hub.
    pub async fn backfill_folder_index(&self) -> HubResult<Backfill> {
        let mut report = Backfill::default();
        let mut start = None;
        loop {
            let answer = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(sk, :files) AND attribute_not_exists(#drive)")
                .expression_attribute_names("#drive", DRIVE_KEY_ATTRIBUTE)
                .expression_attribute_values(":files", s(FILE_PREFIX))
                .set_exclusive_start_key(start.take())
                .limit(SCAN_PAGE)
                .send()
                .await
                .map_err(|e| failed("Scan", e))?;
            for item in answer.items.unwrap_or_default() {
                report.found += 1;
                let (Some(pk), Some(sk)) = (string_attr(&item, "pk"), string_attr(&item, "sk"))
                else {
                    continue;
                };
                let Some(account_id) = pk.strip_prefix("ACCOUNT#").map(str::to_string) else {
                    continue;
                };
                // The entry's feed position, under either layout's attribute.
                let seq = [POSITION_ATTRIBUTE, SEQ_ATTRIBUTE]
                    .into_iter()
                    .find_map(|name| item.get(name).map(|value| (name, value.clone())));
                let stored: StoredFile = from_item(item)?;
                let keys = folder_keys(&account_id, &stored);
                if keys.is_empty() {
                    continue;
                }
                if self.set_folder_keys(key(pk, sk), keys, seq).await? {
                    report.updated += 1;
                }
            }
            start = answer.last_evaluated_key;
            if start.is_none() {
                return Ok(report);
            }
        }
    }

    /// Sets `keys` on the entry at `key` if it still has feed position `seq` (under the
    /// attribute named with it) and no keys: whether it did.
    async fn set_folder_keys(
        &self,
        key: Item,
        keys: Item,
        seq: Option<(&str, AttributeValue)>,
    ) -> HubResult<bool> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("SET #drive = :drive, #place = :place")
            .expression_attribute_names("#drive", DRIVE_KEY_ATTRIBUTE)
            .expression_attribute_names("#place", PLACE_ATTRIBUTE)
            .expression_attribute_names("#seq", SEQ_ATTRIBUTE)
            .expression_attribute_names("#position", POSITION_ATTRIBUTE);
        for (name, value) in keys {
            let placeholder = if name == DRIVE_KEY_ATTRIBUTE {
                ":drive"
            } else {
                ":place"
            };
            update = update.expression_attribute_values(placeholder, value);
        }
        update = match seq {
            Some((name, seq)) => {
                let condition = match name == SEQ_ATTRIBUTE {
                    true => "attribute_exists(pk) AND attribute_not_exists(#drive) AND #seq = :seq AND attribute_not_exists(#position)",
                    false => "attribute_exists(pk) AND attribute_not_exists(#drive) AND #position = :seq AND attribute_not_exists(#seq)",
                };
                update
                    .condition_expression(condition)
                    .expression_attribute_values(":seq", seq)
            }
            None => update.condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(#drive) AND attribute_not_exists(#seq) AND attribute_not_exists(#position)",
            ),
        };
        Ok(conditional("UpdateItem", update.send().await)?.is_some())
    }
}
