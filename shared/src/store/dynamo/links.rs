//! Content links: one item each, forgotten by the TTL after they expire.

use super::*;

#[async_trait]
impl LinkStore for DynamoStore {
    async fn put_content_link(&self, link: &ContentLink) -> HubResult<()> {
        let mut key = link_key(&link.id);
        key.insert(
            TTL_ATTRIBUTE.into(),
            AttributeValue::N(link.expires_at.timestamp().to_string()),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(link, key)?))
            .send()
            .await
            .map_err(|e| failed("PutItem", e))?;
        Ok(())
    }

    async fn get_content_link(&self, id: &str) -> HubResult<Option<ContentLink>> {
        if !storable(id) {
            return Ok(None);
        }
        self.get_record(link_key(id)).await
    }
}
