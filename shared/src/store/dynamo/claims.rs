//! Single-use claims: a conditional create, forgotten by the TTL.

use super::*;

#[async_trait]
impl ClaimStore for DynamoStore {
    async fn claim(&self, key: &str, expires_at: DateTime<Utc>) -> HubResult<bool> {
        let mut item = claim_key(key);
        item.insert(
            TTL_ATTRIBUTE.into(),
            AttributeValue::N(expires_at.timestamp().to_string()),
        );
        self.put_unless_held(
            self.client
                .put_item()
                .condition_expression("attribute_not_exists(pk)"),
            item,
        )
        .await
    }

    async fn release_claim(&self, key: &str) -> HubResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(claim_key(key)))
            .send()
            .await
            .map_err(|e| failed("DeleteItem", e))?;
        Ok(())
    }
}
