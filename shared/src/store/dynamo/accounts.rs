//! Accounts, their identity and owner records, and the tombstones of their deletes.

use super::*;

impl DynamoStore {
    /// The accounts of `ids` that exist, in id order.
    async fn get_accounts(&self, ids: &[String]) -> HubResult<Vec<Account>> {
        let mut accounts: Vec<Account> = self.batch_get_accounts(ids, None).await?;
        accounts.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(accounts)
    }

    /// The `/users` rows of the accounts of `ids` that exist, in id order, read with only
    /// [`VIEW_ATTRIBUTES`] (never the sealed tokens).
    async fn get_account_views(&self, ids: &[String]) -> HubResult<Vec<AccountView>> {
        let mut views: Vec<AccountView> =
            self.batch_get_accounts(ids, Some(VIEW_ATTRIBUTES)).await?;
        views.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(views)
    }

    /// The account records of `ids` that exist, decoded as `T`, in no particular order.
    async fn batch_get_accounts<T: DeserializeOwned>(
        &self,
        ids: &[String],
        attributes: Option<&[&str]>,
    ) -> HubResult<Vec<T>> {
        let keys: Vec<Item> = ids.iter().map(|id| account_key(id)).collect();
        self.batch_get(keys, attributes).await
    }

    /// One page of the `by-provider` index: the account ids (in order) and the key to go on
    /// from; with `active_only`, DynamoDB leaves out the accounts that need re-authorisation.
    async fn query_provider_index(
        &self,
        provider: &str,
        after: Option<&str>,
        limit: usize,
        active_only: bool,
    ) -> HubResult<Page<String>> {
        let gsi1pk = format!("PROVIDER#{provider}");
        let start = after.map(|id| {
            let mut key = account_key(id);
            key.insert("gsi1pk".into(), s(&gsi1pk));
            key.insert("gsi1sk".into(), s(id));
            key
        });
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PROVIDER_INDEX)
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", s(&gsi1pk))
            .projection_expression("gsi1sk")
            .set_exclusive_start_key(start)
            .limit(page_limit(limit));
        if active_only {
            let active = serde_dynamo::to_attribute_value(AccountStatus::Active)
                .map_err(HubError::internal)?;
            query = query
                .filter_expression("#status = :active")
                .expression_attribute_names("#status", STATUS_ATTRIBUTE)
                .expression_attribute_values(":active", active);
        }
        let answer = query.send().await.map_err(|e| failed("Query", e))?;
        let items = answer
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| string_attr(item, "gsi1sk"))
            .collect();
        let next = answer
            .last_evaluated_key
            .as_ref()
            .and_then(|key| string_attr(key, "gsi1sk"));
        Ok(Page { items, next })
    }

    /// One page of an owner's account ids of one provider, in id order, after `after`.
    async fn query_owner(
        &self,
        owner: &str,
        provider: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<String>> {
        let prefix = format!("{provider}#");
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :provider)")
            .expression_attribute_values(":pk", s(format!("OWNER#{owner}")))
            .expression_attribute_values(":provider", s(&prefix))
            .projection_expression("account_id")
            .consistent_read(true)
            .set_exclusive_start_key(after.map(|id| owner_key(owner, provider, id)))
            .limit(page_limit(limit))
            .send()
            .await
            .map_err(|e| failed("Query", e))?;
        let items = answer
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| string_attr(item, "account_id"))
            .collect();
        let next = answer
            .last_evaluated_key
            .as_ref()
            .and_then(|key| string_attr(key, "sk"))
            .and_then(|sk| sk.strip_prefix(&prefix).map(str::to_string));
        Ok(Page { items, next })
    }

    /// Puts the tombstone in the account's place (on the condition that the account is live
    /// at the version read) and deletes its identity and owner records, in one transaction.
    /// `Conflict` when the account's condition failed: it changed, or is gone or deleting. A
    /// transaction cancelled for any other reason (a conflict with a concurrent write,
    /// throttling) is tried again a few times, then reported as a failure the client retries,
    /// never as "not found".
    async fn begin_deletion_transaction(
        &self,
        account: &Account,
        deletion: &Deletion,
    ) -> HubResult<Write> {
        let delete = |key: Item| -> HubResult<TransactWriteItem> {
            Ok(TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key))
                        .build()
                        .map_err(HubError::internal)?,
                )
                .build())
        };
        // Replacing the whole item drops the sealed tokens and the `by-provider` keys.
        let tombstone = TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(to_item(deletion, account_key(&account.id))?))
                    .condition_expression(format!(
                        "version = :expected AND attribute_not_exists({DELETING_ATTRIBUTE})"
                    ))
                    .expression_attribute_values(
                        ":expected",
                        AttributeValue::N(account.version.to_string()),
                    )
                    .build()
                    .map_err(HubError::internal)?,
            )
            .build();
        // The account's item second: its cancellation reason is the second one.
        let mut items = vec![
            delete(identity_key(
                account.owner.as_deref(),
                &account.provider,
                &account.provider_user_id,
            ))?,
            tombstone,
        ];
        if let Some(owner) = &account.owner {
            items.push(delete(owner_key(owner, &account.provider, &account.id))?);
        }
        // Only the account's own condition says it changed; the other items have none.
        self.transact_guarded(items, 1, &DELETE_RETRY, "the delete")
            .await
    }

    /// A conditional write of the tombstone: a put (`item`) or a delete (`None`), on the
    /// condition that the stored tombstone is at `version`.
    async fn write_tombstone(
        &self,
        id: &str,
        item: Option<Item>,
        version: u64,
    ) -> HubResult<Write> {
        let condition = format!("version = :expected AND attribute_exists({DELETING_ATTRIBUTE})");
        let expected = AttributeValue::N(version.to_string());
        match item {
            Some(item) => Ok(write_of(
                conditional(
                    "PutItem",
                    self.client
                        .put_item()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .condition_expression(condition)
                        .expression_attribute_values(":expected", expected)
                        .send()
                        .await,
                )?
                .is_some(),
            )),
            None => Ok(write_of(
                conditional(
                    "DeleteItem",
                    self.client
                        .delete_item()
                        .table_name(&self.table)
                        .set_key(Some(account_key(id)))
                        .condition_expression(condition)
                        .expression_attribute_values(":expected", expected)
                        .send()
                        .await,
                )?
                .is_some(),
            )),
        }
    }

    /// The items that create an account: its identity record, the account, and its owner's
    /// listing, each only where none exists yet.
    pub(super) fn create_account_items(
        &self,
        account: &Account,
    ) -> HubResult<Vec<TransactWriteItem>> {
        let mut identity = identity_key(
            account.owner.as_deref(),
            &account.provider,
            &account.provider_user_id,
        );
        identity.insert("account_id".into(), s(&account.id));
        let put = |item: Item| -> HubResult<TransactWriteItem> {
            Ok(TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .map_err(HubError::internal)?,
                )
                .build())
        };
        let mut items = vec![put(identity)?, put(account_item(account)?)?];
        if let Some(owner) = &account.owner {
            let mut listed = owner_key(owner, &account.provider, &account.id);
            listed.insert("account_id".into(), s(&account.id));
            items.push(put(listed)?);
        }
        Ok(items)
    }
}

#[async_trait]
impl AccountStore for DynamoStore {
    async fn get_account(&self, id: &str) -> HubResult<Option<Account>> {
        if !storable(id) {
            return Ok(None);
        }
        match self.get_item(account_key(id)).await? {
            Some(item) if !item.contains_key(DELETING_ATTRIBUTE) => from_item(item).map(Some),
            _ => Ok(None),
        }
    }

    async fn find_account(
        &self,
        owner: Option<&str>,
        provider: &str,
        provider_user_id: &str,
    ) -> HubResult<Option<Account>> {
        let identity = self
            .get_item(identity_key(owner, provider, provider_user_id))
            .await?;
        match identity
            .as_ref()
            .and_then(|item| string_attr(item, "account_id"))
        {
            Some(account_id) => self.get_account(&account_id).await,
            None => Ok(None),
        }
    }

    async fn identity_holders(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> HubResult<Vec<String>> {
        let mut holders = Vec::new();
        let mut pages = Pages::of(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(identity_pk(provider, provider_user_id)))
                .projection_expression("account_id")
                .consistent_read(true),
        );
        while let Some(items) = pages.next().await? {
            holders.extend(
                items
                    .iter()
                    .filter_map(|item| string_attr(item, "account_id")),
            );
        }
        Ok(holders)
    }

    async fn create_account(&self, account: &Account) -> HubResult<Write> {
        let items = self.create_account_items(account)?;
        Ok(match self.transact(items).await? {
            Ok(()) => Write::Done,
            Err(_) => Write::Conflict,
        })
    }

    async fn update_account(&self, account: &Account, expected_version: u64) -> HubResult<Write> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(account_item(account)?))
            // A tombstone is no account: a sync's write of a deleted account fails.
            .condition_expression(format!(
                "version = :expected AND attribute_not_exists({DELETING_ATTRIBUTE})"
            ))
            .expression_attribute_values(
                ":expected",
                AttributeValue::N(expected_version.to_string()),
            )
            .send()
            .await;
        Ok(write_of(conditional("PutItem", result)?.is_some()))
    }

    async fn list_accounts(
        &self,
        provider: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<Account>> {
        // The index holds only keys and status: the accounts themselves come from the table.
        let ids = self
            .query_provider_index(provider, after, limit, false)
            .await?;
        Ok(Page {
            items: self.get_accounts(&ids.items).await?,
            next: ids.next,
        })
    }

    async fn list_account_views(
        &self,
        scope: &AccountScope,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<AccountView>> {
        let ids = match &scope.owner {
            Some(owner) => {
                self.query_owner(owner, &scope.provider, after, limit)
                    .await?
            }
            None => {
                self.query_provider_index(&scope.provider, after, limit, false)
                    .await?
            }
        };
        Ok(Page {
            items: self.get_account_views(&ids.items).await?,
            next: ids.next,
        })
    }

    async fn list_active_account_ids(
        &self,
        provider: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<String>> {
        self.query_provider_index(provider, after, limit, true)
            .await
    }

    async fn begin_deletion(&self, account: &Account, deletion: &Deletion) -> HubResult<Write> {
        if !storable(&account.id) {
            return Ok(Write::Conflict);
        }
        self.begin_deletion_transaction(account, deletion).await
    }

    async fn get_deletion(&self, id: &str) -> HubResult<Option<Deletion>> {
        if !storable(id) {
            return Ok(None);
        }
        match self.get_item(account_key(id)).await? {
            Some(item) if item.contains_key(DELETING_ATTRIBUTE) => from_item(item).map(Some),
            _ => Ok(None),
        }
    }

    async fn update_deletion(
        &self,
        deletion: &Deletion,
        expected_version: u64,
    ) -> HubResult<Write> {
        if !storable(&deletion.account_id) {
            return Ok(Write::Conflict);
        }
        let item = to_item(deletion, account_key(&deletion.account_id))?;
        self.write_tombstone(&deletion.account_id, Some(item), expected_version)
            .await
    }

    async fn purge_page(&self, account_id: &str, limit: usize) -> HubResult<bool> {
        if !storable(account_id) {
            return Ok(true);
        }
        // Up to `limit` entries and as many feed items (`feed.rs`): a page removes `limit`
        // entries as the local store's does, and the feed items, about one per page a sync
        // wrote, go along.
        let mut done = true;
        for prefix in [FILE_PREFIX, FEED_PREFIX] {
            let answer = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(account_pk(account_id)))
                .expression_attribute_values(":prefix", s(prefix))
                .projection_expression("pk, sk")
                .consistent_read(true)
                .limit(page_limit(limit))
                .send()
                .await
                .map_err(|e| failed("Query", e))?;
            // Older entries' `by-seq` entries go with them.
            self.write_batches(delete_requests(answer.items.unwrap_or_default())?)
                .await?;
            done &= answer.last_evaluated_key.is_none();
        }
        Ok(done)
    }

    async fn end_deletion(&self, deletion: &Deletion) -> HubResult<Write> {
        let id = &deletion.account_id;
        if !storable(id) {
            return Ok(Write::Conflict);
        }
        match self.get_deletion(id).await? {
            Some(stored) if stored.version == deletion.version => {}
            _ => return Ok(Write::Conflict),
        }
        for channel in self.account_channels(id).await? {
            self.delete_channel(&channel).await?;
        }
        self.clear_push_pending(id).await?;
        // Last: while it is there, a repeated DELETE answers 204 and the purge goes on.
        self.write_tombstone(id, None, deletion.version).await
    }
}
