//! Push channels (two records each) and the push marks of queued jobs.

use super::*;

#[async_trait]
impl PushStore for DynamoStore {
    async fn mark_push_pending(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> HubResult<bool> {
        if !storable(account_id) {
            return Ok(false);
        }
        let mut item = push_mark_key(account_id);
        item.insert(
            TTL_ATTRIBUTE.into(),
            AttributeValue::N(until.timestamp().to_string()),
        );
        // DynamoDB's TTL deletes expired items late (within days): the condition reads the
        // expiry itself.
        let put = self
            .client
            .put_item()
            .condition_expression(format!(
                "attribute_not_exists(pk) OR {TTL_ATTRIBUTE} <= :now"
            ))
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()));
        self.put_unless_held(put, item).await
    }

    async fn clear_push_pending(&self, account_id: &str) -> HubResult<()> {
        if !storable(account_id) {
            return Ok(());
        }
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(push_mark_key(account_id)))
            .send()
            .await
            .map_err(|e| failed("DeleteItem", e))?;
        Ok(())
    }

    async fn put_channel(&self, channel: &PushChannel) -> HubResult<()> {
        if !channel_storable(channel) {
            return Err(HubError::internal("push channel key too long"));
        }
        let ttl =
            AttributeValue::N((channel.expires_at.timestamp() + CHANNEL_KEPT_SECONDS).to_string());
        // The account's copy first: a crash in between leaves a channel that no notification
        // finds but the worker sees, and removes.
        for key in [
            account_channel_key(channel),
            channel_key(&channel.provider, &channel.id),
        ] {
            let mut item = to_item(channel, key)?;
            item.insert(TTL_ATTRIBUTE.into(), ttl.clone());
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|e| failed("PutItem", e))?;
        }
        Ok(())
    }

    async fn put_channel_if_account_live(&self, channel: &PushChannel) -> HubResult<Write> {
        if !channel_storable(channel) {
            return Err(HubError::internal("push channel key too long"));
        }
        let ttl =
            AttributeValue::N((channel.expires_at.timestamp() + CHANNEL_KEPT_SECONDS).to_string());
        let mut puts = Vec::new();
        for key in [
            account_channel_key(channel),
            channel_key(&channel.provider, &channel.id),
        ] {
            let mut item = to_item(channel, key)?;
            item.insert(TTL_ATTRIBUTE.into(), ttl.clone());
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map_err(HubError::internal)?;
            puts.push(TransactWriteItem::builder().put(put).build());
        }
        // The account's condition first, so that its cancellation reason is the first.
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(account_key(&channel.account_id)))
            .condition_expression(ACCOUNT_LIVE)
            .build()
            .map_err(HubError::internal)?;
        let items: Vec<TransactWriteItem> =
            std::iter::once(TransactWriteItem::builder().condition_check(check).build())
                .chain(puts)
                .collect();
        // A conflict with another write of the same items (a delete under way) is tried
        // again, and then the account's condition decides.
        self.transact_guarded(items, 0, &CHANNEL_WRITE_RETRY, "the channel write")
            .await
    }

    async fn get_channels(
        &self,
        provider: &str,
        ids: &[String],
        deadline: Deadline,
    ) -> HubResult<Vec<PushChannel>> {
        let keys: Vec<Item> = distinct_keys(ids)
            .iter()
            .map(|id| channel_key(provider, id))
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Unprocessed keys are asked again with backoff, but never past the deadline: a
        // throttled table fails the notification (which the provider sends again) instead
        // of holding its answer.
        tokio::time::timeout(deadline.remaining(), self.batch_get(keys, None))
            .await
            .unwrap_or_else(|_| {
                Err(HubError::Unavailable(
                    "DynamoDB BatchGetItem of push channels unfinished at the deadline".into(),
                ))
            })
    }

    async fn get_channel(&self, provider: &str, id: &str) -> HubResult<Option<PushChannel>> {
        if !storable(id) {
            return Ok(None);
        }
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(channel_key(provider, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("GetItem", e))?;
        answer.item.map(from_item).transpose()
    }

    async fn account_channels(&self, account_id: &str) -> HubResult<Vec<PushChannel>> {
        if !storable(account_id) {
            return Ok(Vec::new());
        }
        let mut channels: Vec<PushChannel> = Vec::new();
        let mut pages = Pages::of(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :channels)")
                .expression_attribute_values(":pk", s(format!("PUSH#{account_id}")))
                .expression_attribute_values(":channels", s(ACCOUNT_CHANNEL_PREFIX))
                .consistent_read(true),
        );
        while let Some(items) = pages.next().await? {
            channels.extend(decode_all::<PushChannel>(Some(items))?);
        }
        channels.sort_by_key(|channel| channel.created_at);
        Ok(channels)
    }

    async fn delete_channel(&self, channel: &PushChannel) -> HubResult<()> {
        if !channel_storable(channel) {
            return Ok(());
        }
        for key in [
            channel_key(&channel.provider, &channel.id),
            account_channel_key(channel),
        ] {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .send()
                .await
                .map_err(|e| failed("DeleteItem", e))?;
        }
        Ok(())
    }
}
