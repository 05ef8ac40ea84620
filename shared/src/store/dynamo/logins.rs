//! Login states, connect sessions, and the account writes that spend a session.

use super::*;

impl DynamoStore {
    /// `items` (an account's write) and the session's spend in one transaction. The spend's
    /// condition is that of [`LoginStore::spend_connect_session`]; a failed one outranks a failed
    /// account condition, since retrying cannot help then.
    async fn write_spending(
        &self,
        mut items: Vec<TransactWriteItem>,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> HubResult<SpendingWrite> {
        let spend = Update::builder()
            .table_name(&self.table)
            .set_key(Some(session_key(session_id)))
            .update_expression("SET #spent = :spent")
            .condition_expression("attribute_exists(pk) AND #spent = :unspent AND #end > :now")
            .expression_attribute_names("#spent", "spent")
            .expression_attribute_names("#end", SESSION_END_ATTRIBUTE)
            .expression_attribute_values(":spent", AttributeValue::Bool(true))
            .expression_attribute_values(":unspent", AttributeValue::Bool(false))
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .build()
            .map_err(HubError::internal)?;
        let session_index = items.len();
        items.push(TransactWriteItem::builder().update(spend).build());
        Ok(match self.transact(items).await? {
            Ok(()) => SpendingWrite::Done,
            Err(reasons) if reasons.get(session_index).is_some_and(condition_failed) => {
                SpendingWrite::SessionUnusable
            }
            Err(_) => SpendingWrite::Conflict,
        })
    }
}

#[async_trait]
impl LoginStore for DynamoStore {
    async fn create_account_spending(
        &self,
        account: &Account,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> HubResult<SpendingWrite> {
        if !storable(session_id) {
            return Ok(SpendingWrite::SessionUnusable);
        }
        let items = self.create_account_items(account)?;
        self.write_spending(items, session_id, now).await
    }

    async fn update_account_spending(
        &self,
        account: &Account,
        expected_version: u64,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> HubResult<SpendingWrite> {
        if !storable(session_id) {
            return Ok(SpendingWrite::SessionUnusable);
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(account_item(account)?))
            .condition_expression("version = :expected")
            .expression_attribute_values(
                ":expected",
                AttributeValue::N(expected_version.to_string()),
            )
            .build()
            .map_err(HubError::internal)?;
        let items = vec![TransactWriteItem::builder().put(put).build()];
        self.write_spending(items, session_id, now).await
    }

    async fn put_login_state(&self, state: &LoginState) -> HubResult<()> {
        let mut key = state_key(&state.state);
        key.insert(
            TTL_ATTRIBUTE.into(),
            AttributeValue::N(state.expires_at.timestamp().to_string()),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(state, key)?))
            .send()
            .await
            .map_err(|e| failed("PutItem", e))?;
        Ok(())
    }

    async fn put_connect_session(&self, session: &ConnectSession) -> HubResult<()> {
        let mut key = session_key(&session.id);
        key.insert(
            TTL_ATTRIBUTE.into(),
            AttributeValue::N((session.expires_at.timestamp() + SESSION_KEPT_SECONDS).to_string()),
        );
        key.insert(
            SESSION_END_ATTRIBUTE.into(),
            AttributeValue::N(session.expires_at.timestamp().to_string()),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(session, key)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| failed("PutItem", e))?;
        Ok(())
    }

    async fn get_connect_session(&self, id: &str) -> HubResult<Option<ConnectSession>> {
        if !storable(id) {
            return Ok(None);
        }
        self.get_record(session_key(id)).await
    }

    async fn spend_connect_session(&self, id: &str, now: DateTime<Utc>) -> HubResult<bool> {
        if !storable(id) {
            return Ok(false);
        }
        // The session's end is checked on its own number, not the TTL's (which keeps the item
        // an hour longer), nor on the RFC 3339 text, which does not order as a string.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(id)))
            .update_expression("SET #spent = :spent")
            .condition_expression("attribute_exists(pk) AND #spent = :unspent AND #end > :now")
            .expression_attribute_names("#spent", "spent")
            .expression_attribute_names("#end", SESSION_END_ATTRIBUTE)
            .expression_attribute_values(":spent", AttributeValue::Bool(true))
            .expression_attribute_values(":unspent", AttributeValue::Bool(false))
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .send()
            .await;
        Ok(conditional("UpdateItem", result)?.is_some())
    }

    async fn restore_connect_session(&self, id: &str) -> HubResult<bool> {
        if !storable(id) {
            return Ok(false);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(id)))
            .update_expression("SET #spent = :unspent")
            .condition_expression("attribute_exists(pk) AND #spent = :spent")
            .expression_attribute_names("#spent", "spent")
            .expression_attribute_values(":spent", AttributeValue::Bool(true))
            .expression_attribute_values(":unspent", AttributeValue::Bool(false))
            .send()
            .await;
        Ok(conditional("UpdateItem", result)?.is_some())
    }

    async fn take_login_state(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> HubResult<Option<LoginState>> {
        if !storable(state) {
            return Ok(None);
        }
        // A conditional delete is the single use: of two callbacks racing with one state,
        // exactly one gets the old item back.
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(state_key(state)))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let old = conditional("DeleteItem", result)?.and_then(|answer| answer.attributes);
        // DynamoDB deletes expired TTL items up to days late: expiry is checked here.
        let state: Option<LoginState> = old.map(from_item).transpose()?;
        Ok(state.filter(|s| s.expires_at > now))
    }
}
