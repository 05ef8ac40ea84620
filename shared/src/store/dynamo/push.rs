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
        if !storable(&channel.id) || !storable(&channel.account_id) {
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
        if !storable(&channel.id) || !storable(&channel.account_id) {
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
        let outcome = retry(&CHANNEL_WRITE_RETRY, (), |()| {
            let items = items.clone();
            async move {
                let result = self
                    .client
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .send()
                    .await;
                let reasons = match result {
                    Ok(_) => return Ok(Attempt::Done(Write::Done)),
                    Err(SdkError::ServiceError(e)) => match e.err() {
                        TransactWriteItemsError::TransactionCanceledException(t) => {
                            t.cancellation_reasons().to_vec()
                        }
                        _ => return Err(failed("TransactWriteItems", SdkError::ServiceError(e))),
                    },
                    Err(e) => return Err(failed("TransactWriteItems", e)),
                };
                if reasons
                    .first()
                    .is_some_and(|r| r.code() == Some("ConditionalCheckFailed"))
                {
                    return Ok(Attempt::Done(Write::Conflict));
                }
                // A conflict with another write of the same items (a delete under way):
                // tried again, and then the account's condition decides.
                tracing::info!(
                    ?reasons,
                    "DynamoDB cancelled the channel write; trying again"
                );
                Ok(Attempt::Again {
                    left: (),
                    retry_after: None,
                })
            }
        })
        .await;
        match outcome {
            Ok(write) => Ok(write),
            Err(Stopped::Failed(e)) => Err(e),
            Err(Stopped::Exhausted { attempts, .. }) => Err(HubError::internal(format!(
                "DynamoDB cancelled the channel write {attempts} times"
            ))),
        }
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
        let mut start = None;
        loop {
            let answer = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :channels)")
                .expression_attribute_values(":pk", s(format!("PUSH#{account_id}")))
                .expression_attribute_values(":channels", s(ACCOUNT_CHANNEL_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| failed("Query", e))?;
            channels.extend(decode_all::<PushChannel>(answer.items)?);
            start = answer.last_evaluated_key;
            if start.is_none() {
                channels.sort_by_key(|channel| channel.created_at);
                return Ok(channels);
            }
        }
    }

    async fn delete_channel(&self, channel: &PushChannel) -> HubResult<()> {
        if !storable(&channel.id) || !storable(&channel.account_id) {
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
