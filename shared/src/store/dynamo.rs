//! The DynamoDB store: one table, generic `pk`/`sk` keys and one GSI.
//!
//! | record          | pk                                | sk              | also                          |
//! |-----------------|-----------------------------------|-----------------|-------------------------------|
//! | account         | `ACCOUNT#<id>`                    | `ACCOUNT`       | `gsi1pk` `PROVIDER#<p>`, `gsi1sk` `<id>` |
//! | delete's tombstone | `ACCOUNT#<id>` (in the account's place) | `ACCOUNT` | `deleting_since`; no token, no `gsi1*` |
//! | provider identity | `IDENTITY#<provider>#<user id>` | `IDENTITY` (no owner) or `OWNER#<owner>` | `account_id` |
//! | owner's account | `OWNER#<owner>`                   | `<provider>#<id>` | `account_id`                |
//! | login state     | `STATE#<state>`                   | `STATE`         | `expires_at_epoch` (TTL)      |
//! | connect session | `SESSION#<token hash>`            | `SESSION`       | `expires_at_epoch` (TTL)      |
//! | claim           | `CLAIM#<key>`                     | `CLAIM`         | `expires_at_epoch` (TTL)      |
//! | file index entry| `ACCOUNT#<id>`                    | `FILE#<file id>`| `seq` (N): its place in the feed |
//!
//! An identity's records share a partition, one per owner, so that `DELETE` finds every
//! account holding a grant with one query; accounts without an owner keep version 1's key.
//! The owner's records list one owner's accounts (`/users?owner=`) in provider and id order
//! with one query; they are written and deleted in the account's own transactions.
//!
//! The `by-provider` index (`gsi1pk`, `gsi1sk`) lets fan-out page through one provider's
//! accounts. It projects the keys and `status` only: what fan-out reads. A sync rewrites the
//! account (cursor, outcome, tokens) without touching those, so DynamoDB writes nothing to the
//! index, which halves the write units of every sync (see BENCHMARKS.md). Account and files
//! share a partition so deleting an account is one query away.
//!
//! The `by-seq` local secondary index (`pk`, `seq`) orders an account's entries by their
//! place in the change feed, so that a feed page is one query however large the index, and
//! storing a page costs no read. It is sparse: only entries with a `seq` are in it, so the
//! account item (which has none) never is. It projects all attributes, since the feed
//! returns whole entries. LSIs allow strongly consistent reads, which the feed uses so that
//! every entry at most at the watermark it read is there.
//!
//! The `by-path` local secondary index (`pk`, `path_lower`) finds the entries at or under a
//! path that a provider removed (Dropbox reports a deleted folder by its path only): a
//! `begins_with` query, paged, strongly consistent so that entries stored earlier in the same
//! page are found. Sparse too: only entries with a path key are in it. It projects all
//! attributes, since a removal rewrites whole entries.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CancellationReason, ConditionCheck, Delete, DeleteRequest,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, KeysAndAttributes, LocalSecondaryIndex,
    Projection, ProjectionType, Put, PutRequest, ReturnValue, ScalarAttributeType,
    TimeToLiveSpecification, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    distinct_keys, storable, AccountScope, FeedEntry, FeedPage, FeedPosition, SpendingWrite, Store,
    StoredFile, Write,
};
use crate::deadline::Deadline;
use crate::error::{HubError, HubResult};
use crate::model::{
    Account, AccountStatus, AccountView, ConnectSession, Deletion, FileEntry, LoginState, Page,
    PushChannel,
};
use crate::retry::{retry, Attempt, RetryPolicy, Stopped};

pub const PROVIDER_INDEX: &str = "by-provider";
pub const SEQ_INDEX: &str = "by-seq";
pub const PATH_INDEX: &str = "by-path";
/// An entry's lower-case path, the sort key of [`PATH_INDEX`].
const PATH_ATTRIBUTE: &str = "path_lower";
/// The feed's sequence number of an entry, the sort key of [`SEQ_INDEX`].
const SEQ_ATTRIBUTE: &str = "seq";
pub const TTL_ATTRIBUTE: &str = "expires_at_epoch";
const ACCOUNT_SK: &str = "ACCOUNT";
const FILE_PREFIX: &str = "FILE#";
/// BatchWriteItem's limit.
const BATCH_SIZE: usize = 25;
/// BatchGetItem's limit.
const GET_BATCH_SIZE: usize = 100;
/// The attribute only a tombstone ([`Deletion`]) has: an account item that carries it is
/// being deleted, and no read of accounts returns it.
const DELETING_ATTRIBUTE: &str = "deleting_since";
/// The attribute the `by-provider` index projects besides the keys.
const STATUS_ATTRIBUTE: &str = "status";
/// The account attributes a `/users` row shows ([`AccountView`]'s fields): what
/// `list_account_views` reads, leaving the sealed tokens and the sync state in the table.
const VIEW_ATTRIBUTES: &[&str] = &[
    "id",
    "email",
    "provider",
    "has_refresh_token",
    "status",
    "connected_at",
    "last_synced_at",
    "owner",
];
/// Chunks written at once: enough to hide latency, few enough not to throttle a new table.
const BATCHES_IN_FLIGHT: usize = 4;
/// An account's delete transaction that DynamoDB cancelled for a conflict with another
/// write or for throttling is tried again (a cancellation says nothing about the account
/// being gone), a few times, then reported as a failure the client retries.
const DELETE_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    base_delay: Duration::from_millis(50),
    max_delay: Duration::from_millis(800),
    max_retry_after: Duration::ZERO,
};
/// A conditional channel write cancelled for a conflict with another write of its items
/// (or throttling) is tried again as a delete is: the cancellation says nothing of the
/// account.
const CHANNEL_WRITE_RETRY: RetryPolicy = DELETE_RETRY;
/// Re-sending what a batch call left unprocessed: AWS asks for exponential backoff there
/// (BatchWriteItem and BatchGetItem API references), bounded so that a throttled table ends
/// the call with an error instead of holding the invocation.
const UNPROCESSED_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 9,
    base_delay: Duration::from_millis(50),
    max_delay: Duration::from_millis(3200),
    // DynamoDB asks for no particular wait.
    max_retry_after: Duration::ZERO,
};

type Item = HashMap<String, AttributeValue>;

/// The table key of an item: partition `pk`, sort `sk`.
fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn account_pk(id: &str) -> String {
    format!("ACCOUNT#{id}")
}

fn identity_pk(provider: &str, provider_user_id: &str) -> String {
    format!("IDENTITY#{provider}#{provider_user_id}")
}

/// The identity record of an owner's account; version 1's key when there is no owner.
fn identity_key(owner: Option<&str>, provider: &str, provider_user_id: &str) -> Item {
    let sk = match owner {
        None => "IDENTITY".to_string(),
        Some(owner) => format!("OWNER#{owner}"),
    };
    key(identity_pk(provider, provider_user_id), sk)
}

/// The record that lists an account under its owner.
fn owner_key(owner: &str, provider: &str, id: &str) -> Item {
    key(format!("OWNER#{owner}"), format!("{provider}#{id}"))
}

fn session_key(id: &str) -> Item {
    key(format!("SESSION#{id}"), "SESSION")
}

/// How long a session's item outlives the session, so that a callback that comes late still
/// finds where to send the browser back to (DynamoDB's TTL removes it after that).
const SESSION_KEPT_SECONDS: i64 = 3600;
/// A session's end in Unix seconds, what the spend's condition compares.
const SESSION_END_ATTRIBUTE: &str = "ends_at_epoch";

fn account_key(id: &str) -> Item {
    key(account_pk(id), ACCOUNT_SK)
}

/// The condition under which an account still takes writes that hang off it (its push
/// channels): its record is there and is not a tombstone ([`DELETING_ATTRIBUTE`]), so that a
/// channel confirmed after a `DELETE` began is refused and closed by the worker.
const ACCOUNT_LIVE: &str = "attribute_exists(pk) AND attribute_not_exists(deleting_since)";

fn claim_key(claim: &str) -> Item {
    key(format!("CLAIM#{claim}"), "CLAIM")
}

/// An account's push mark (a push job queued and not started): its own item, so that marking
/// never races the account's versioned writes.
fn push_mark_key(account_id: &str) -> Item {
    key(format!("PUSH#{account_id}"), "PENDING")
}

/// A push channel, under its own key so that a notification finds it with one `GetItem`.
fn channel_key(provider: &str, id: &str) -> Item {
    key(format!("CHANNEL#{provider}#{id}"), "CHANNEL")
}

const ACCOUNT_CHANNEL_PREFIX: &str = "CHANNEL#";

/// The account's copy of one of its channels, beside its push mark: one `Query` lists them.
fn account_channel_key(channel: &PushChannel) -> Item {
    key(
        format!("PUSH#{}", channel.account_id),
        format!(
            "{ACCOUNT_CHANNEL_PREFIX}{}#{}",
            channel.provider, channel.id
        ),
    )
}

/// A channel's records outlive its expiry by a day (a late notification still finds it and is
/// told apart from a forgery in the logs), then DynamoDB's TTL removes them.
const CHANNEL_KEPT_SECONDS: i64 = 86_400;

fn state_key(state: &str) -> Item {
    key(format!("STATE#{state}"), "STATE")
}

fn file_key(account_id: &str, file_id: &str) -> Item {
    key(account_pk(account_id), format!("{FILE_PREFIX}{file_id}"))
}

fn put_file_request(account_id: &str, stored: &StoredFile) -> HubResult<WriteRequest> {
    let put = PutRequest::builder()
        .set_item(Some(to_item(
            stored,
            file_key(account_id, &stored.entry.id),
        )?))
        .build()
        .map_err(HubError::internal)?;
    Ok(WriteRequest::builder().put_request(put).build())
}

fn to_item<T: Serialize>(value: &T, key: Item) -> HubResult<Item> {
    let mut item: Item = serde_dynamo::to_item(value)
        .map_err(|e| HubError::internal(format!("encoding item: {e}")))?;
    item.extend(key);
    Ok(item)
}

fn from_item<T: DeserializeOwned>(item: Item) -> HubResult<T> {
    serde_dynamo::from_item(item).map_err(|e| HubError::internal(format!("decoding item: {e}")))
}

fn decode_all<T: DeserializeOwned>(items: Option<Vec<Item>>) -> HubResult<Vec<T>> {
    items
        .unwrap_or_default()
        .into_iter()
        .map(from_item)
        .collect()
}

fn account_item(account: &Account) -> HubResult<Item> {
    let mut key = account_key(&account.id);
    key.insert("gsi1pk".into(), s(format!("PROVIDER#{}", account.provider)));
    key.insert("gsi1sk".into(), s(&account.id));
    to_item(account, key)
}

fn failed<E>(operation: &str, error: SdkError<E>) -> HubError
where
    E: std::error::Error + Send + Sync + 'static,
{
    HubError::internal(format!(
        "DynamoDB {operation} failed: {}",
        DisplayErrorContext(error)
    ))
}

/// The error of a batch call that stopped: its own failure, or what it still left
/// unprocessed when the rounds ran out.
fn batch_failed<S>(
    stopped: Stopped<S, HubError>,
    what: &str,
    count: impl Fn(&S) -> usize,
) -> HubError {
    match stopped {
        Stopped::Failed(error) => error,
        Stopped::Exhausted { left, attempts, .. } => HubError::internal(format!(
            "DynamoDB left {} {what} unprocessed after {attempts} attempts",
            count(&left)
        )),
    }
}

fn string_attr(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

impl DynamoStore {
    /// One item by its key, read consistently: what was written before is seen.
    async fn get_item(&self, key: Item) -> HubResult<Option<Item>> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("GetItem", e))?;
        Ok(answer.item)
    }

    /// A conditional put of `item` (the condition set on `put`): whether it was written,
    /// `false` when the condition held it back (someone else holds the key).
    async fn put_unless_held(
        &self,
        put: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
        item: Item,
    ) -> HubResult<bool> {
        match put
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(failed("PutItem", e)),
        }
    }

    /// The record stored under `key`, if any.
    async fn get_record<T: DeserializeOwned>(&self, key: Item) -> HubResult<Option<T>> {
        self.get_item(key).await?.map(from_item).transpose()
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// Sends one BatchWriteItem chunk, re-sending unprocessed items with backoff.
    async fn write_batch(&self, requests: Vec<WriteRequest>) -> HubResult<()> {
        retry(&UNPROCESSED_RETRY, requests, |requests| async move {
            let answer = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(|e| failed("BatchWriteItem", e))?;
            let left = answer
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.table))
                .unwrap_or_default();
            Ok(if left.is_empty() {
                Attempt::Done(())
            } else {
                Attempt::Again {
                    left,
                    retry_after: None,
                }
            })
        })
        .await
        .map_err(|stopped| batch_failed(stopped, "items", Vec::len))
    }

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

    /// The records under `keys` that exist (each key once: DynamoDB refuses a batch that
    /// names one twice), decoded as `T`, in no particular order: BatchGetItem chunks,
    /// projected on `attributes` when given, re-asking for unprocessed keys with backoff.
    async fn batch_get<T: DeserializeOwned>(
        &self,
        keys: Vec<Item>,
        attributes: Option<&[&str]>,
    ) -> HubResult<Vec<T>> {
        // Every name goes through a placeholder: `status` is a DynamoDB reserved word.
        // The tombstone's marker is read too, so that an account deleted between the index
        // query and this read is left out.
        let attributes: Option<Vec<&str>> = attributes.map(|attributes| {
            let mut attributes = attributes.to_vec();
            attributes.push(DELETING_ATTRIBUTE);
            attributes
        });
        let placeholders: Vec<String> = attributes
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, _)| format!("#a{i}"))
            .collect();
        let mut records: Vec<T> = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(GET_BATCH_SIZE) {
            // Strongly consistent: an account whose `DELETE` has answered is in no page, and
            // a channel a worker just stored is found by its first notification.
            let mut wanted = KeysAndAttributes::builder()
                .consistent_read(true)
                .set_keys(Some(chunk.to_vec()));
            if let Some(attributes) = &attributes {
                wanted = wanted
                    .projection_expression(placeholders.join(", "))
                    .set_expression_attribute_names(Some(
                        placeholders
                            .iter()
                            .cloned()
                            .zip(attributes.iter().map(|name| name.to_string()))
                            .collect(),
                    ));
            }
            let wanted = wanted.build().map_err(HubError::internal)?;
            // What remains is the keys not yet answered, with the records found so far.
            let found = retry(
                &UNPROCESSED_RETRY,
                (wanted, Vec::new()),
                |(wanted, mut found): (KeysAndAttributes, Vec<T>)| async move {
                    let answer = self
                        .client
                        .batch_get_item()
                        .request_items(&self.table, wanted)
                        .send()
                        .await
                        .map_err(|e| failed("BatchGetItem", e))?;
                    let items = answer
                        .responses
                        .and_then(|mut by_table| by_table.remove(&self.table));
                    let live = items.map(|items| {
                        items
                            .into_iter()
                            .filter(|item| !item.contains_key(DELETING_ATTRIBUTE))
                            .collect()
                    });
                    found.extend(decode_all::<T>(live)?);
                    let left = answer
                        .unprocessed_keys
                        .and_then(|mut left| left.remove(&self.table))
                        .filter(|left| !left.keys().is_empty());
                    Ok(match left {
                        None => Attempt::Done(found),
                        Some(wanted) => Attempt::Again {
                            left: (wanted, found),
                            retry_after: None,
                        },
                    })
                },
            )
            .await
            .map_err(|stopped| batch_failed(stopped, "keys", |(wanted, _)| wanted.keys().len()))?;
            records.extend(found);
        }
        Ok(records)
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
            .limit(limit.clamp(1, 1000) as i32);
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
            .limit(limit.clamp(1, 1000) as i32)
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

    async fn write_batches(&self, requests: Vec<WriteRequest>) -> HubResult<()> {
        let chunks: Vec<Vec<WriteRequest>> =
            requests.chunks(BATCH_SIZE).map(<[_]>::to_vec).collect();
        futures::stream::iter(chunks.into_iter().map(|chunk| self.write_batch(chunk)))
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .try_collect::<()>()
            .await
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
        let outcome = retry(&DELETE_RETRY, (), |()| async {
            // The account's item second: its cancellation reason is the second one.
            let mut transaction = self
                .client
                .transact_write_items()
                .transact_items(delete(identity_key(
                    account.owner.as_deref(),
                    &account.provider,
                    &account.provider_user_id,
                ))?)
                .transact_items(tombstone.clone());
            if let Some(owner) = &account.owner {
                transaction = transaction.transact_items(delete(owner_key(
                    owner,
                    &account.provider,
                    &account.id,
                ))?);
            }
            let result = transaction.send().await;
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
            // Only the account's own condition says it changed; the other items have none.
            if reasons
                .get(1)
                .is_some_and(|r| r.code() == Some("ConditionalCheckFailed"))
            {
                return Ok(Attempt::Done(Write::Conflict));
            }
            tracing::info!(?reasons, "DynamoDB cancelled the delete; trying again");
            Ok(Attempt::Again {
                left: (),
                retry_after: None,
            })
        })
        .await;
        match outcome {
            Ok(written) => Ok(written),
            Err(Stopped::Failed(e)) => Err(e),
            Err(Stopped::Exhausted { attempts, .. }) => Err(HubError::internal(format!(
                "DynamoDB cancelled the delete {attempts} times"
            ))),
        }
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
            Some(item) => match self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition)
                .expression_attribute_values(":expected", expected)
                .send()
                .await
            {
                Ok(_) => Ok(Write::Done),
                Err(SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() =>
                {
                    Ok(Write::Conflict)
                }
                Err(e) => Err(failed("PutItem", e)),
            },
            None => match self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(account_key(id)))
                .condition_expression(condition)
                .expression_attribute_values(":expected", expected)
                .send()
                .await
            {
                Ok(_) => Ok(Write::Done),
                Err(SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() =>
                {
                    Ok(Write::Conflict)
                }
                Err(e) => Err(failed("DeleteItem", e)),
            },
        }
    }

    async fn get_file(&self, account_id: &str, file_id: &str) -> HubResult<Option<FileEntry>> {
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
            .limit(limit.clamp(1, 1000) as i32)
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

/// Why a transaction was cancelled, item by item (in the order of its items).
type Cancelled = Vec<CancellationReason>;

fn condition_failed(reason: &CancellationReason) -> bool {
    reason.code() == Some("ConditionalCheckFailed")
}

impl DynamoStore {
    /// The items that create an account: its identity record, the account, and its owner's
    /// listing, each only where none exists yet.
    fn create_account_items(&self, account: &Account) -> HubResult<Vec<TransactWriteItem>> {
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

    /// Runs a transaction: `Ok(Err(reasons))` when a condition failed or it collided with
    /// another transaction on the same items (both mean: read again and retry), an error
    /// for any other cancellation or failure.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> HubResult<Result<(), Cancelled>> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(SdkError::ServiceError(e)) if e.err().is_transaction_canceled_exception() => {
                let reasons = match e.err() {
                    TransactWriteItemsError::TransactionCanceledException(t) => {
                        t.cancellation_reasons().to_vec()
                    }
                    _ => Vec::new(),
                };
                let retryable = reasons
                    .iter()
                    .any(|r| condition_failed(r) || r.code() == Some("TransactionConflict"));
                if retryable {
                    Ok(Err(reasons))
                } else {
                    Err(HubError::internal(format!(
                        "DynamoDB transaction cancelled: {reasons:?}"
                    )))
                }
            }
            Err(e) => Err(failed("TransactWriteItems", e)),
        }
    }

    /// `items` (an account's write) and the session's spend in one transaction. The spend's
    /// condition is that of [`Store::spend_connect_session`]; a failed one outranks a failed
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
impl Store for DynamoStore {
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
        let mut start = None;
        loop {
            let answer = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(identity_pk(provider, provider_user_id)))
                .projection_expression("account_id")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| failed("Query", e))?;
            holders.extend(
                answer
                    .items
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|item| string_attr(item, "account_id")),
            );
            start = answer.last_evaluated_key;
            if start.is_none() {
                return Ok(holders);
            }
        }
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
        match result {
            Ok(_) => Ok(Write::Done),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(Write::Conflict)
            }
            Err(e) => Err(failed("PutItem", e)),
        }
    }

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
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :files)")
            .expression_attribute_values(":pk", s(account_pk(account_id)))
            .expression_attribute_values(":files", s(FILE_PREFIX))
            .projection_expression("pk, sk")
            .consistent_read(true)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| failed("Query", e))?;
        let deletes = answer
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|key| {
                DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(HubError::internal)
            })
            .collect::<HubResult<Vec<_>>>()?;
        // The feed is the `by-seq` index of these same items: it goes with them.
        self.write_batches(deletes).await?;
        Ok(answer.last_evaluated_key.is_none())
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

    async fn purge_files(&self, account_id: &str) -> HubResult<()> {
        if !storable(account_id) {
            return Ok(());
        }
        let mut start = None;
        loop {
            let answer = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :files)")
                .expression_attribute_values(":pk", s(account_pk(account_id)))
                .expression_attribute_values(":files", s(FILE_PREFIX))
                .projection_expression("pk, sk")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| failed("Query", e))?;
            let deletes = answer
                .items
                .unwrap_or_default()
                .into_iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(HubError::internal)
                })
                .collect::<HubResult<Vec<_>>>()?;
            self.write_batches(deletes).await?;
            start = answer.last_evaluated_key;
            if start.is_none() {
                return Ok(());
            }
        }
    }

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
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(failed("UpdateItem", e)),
        }
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
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(failed("UpdateItem", e)),
        }
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
        let old = match result {
            Ok(answer) => answer.attributes,
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                None
            }
            Err(e) => return Err(failed("DeleteItem", e)),
        };
        // DynamoDB deletes expired TTL items up to days late: expiry is checked here.
        let state: Option<LoginState> = old.map(from_item).transpose()?;
        Ok(state.filter(|s| s.expires_at > now))
    }

    async fn put_files(
        &self,
        account_id: &str,
        files: &[FileEntry],
        generation: u64,
        first_seq: u64,
    ) -> HubResult<()> {
        let now = Utc::now();
        let mut requests = Vec::with_capacity(files.len());
        for (seq, file) in (first_seq..).zip(files) {
            let known = if file.deleted {
                self.get_file(account_id, &file.id).await?
            } else {
                None
            };
            let stored = StoredFile::stamped(file, known, generation, seq, now);
            requests.push(put_file_request(account_id, &stored)?);
        }
        self.write_batches(requests).await
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
        let mut requests = Vec::new();
        for item in page.items {
            let stored: StoredFile = from_item(item)?;
            if stored.unseen_since(generation) {
                let seq = first_seq + requests.len() as u64;
                let tombstone = stored.reconciled(generation, seq, now);
                requests.push(put_file_request(account_id, &tombstone)?);
            }
        }
        let marked = requests.len() as u64;
        self.write_batches(requests).await?;
        Ok((marked, page.next))
    }

    async fn mark_path_deleted(
        &self,
        account_id: &str,
        path_lower: &str,
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
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PATH_INDEX)
            .key_condition_expression("pk = :pk AND begins_with(#path, :path)")
            .expression_attribute_names("#path", PATH_ATTRIBUTE)
            .expression_attribute_values(":pk", s(account_pk(account_id)))
            .expression_attribute_values(":path", s(path_lower))
            .set_exclusive_start_key(start)
            .limit(limit.clamp(1, 1000) as i32)
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
        let mut requests = Vec::new();
        for item in answer.items.unwrap_or_default() {
            let stored: StoredFile = from_item(item)?;
            if stored.removed_with(path_lower) {
                let seq = first_seq + requests.len() as u64;
                requests.push(put_file_request(account_id, &stored.removed(seq, now))?);
            }
        }
        let marked = requests.len() as u64;
        self.write_batches(requests).await?;
        Ok((marked, next))
    }

    async fn last_seq(&self, account_id: &str) -> HubResult<u64> {
        if !storable(account_id) {
            return Ok(0);
        }
        let answer = self
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
        let highest = answer
            .items
            .unwrap_or_default()
            .first()
            .and_then(|item| item.get(SEQ_ATTRIBUTE))
            .and_then(|value| value.as_n().ok())
            .map(|n| n.parse::<u64>().map_err(HubError::internal))
            .transpose()?;
        Ok(highest.unwrap_or(0))
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
        // One more than asked tells whether more remain without a second query.
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
            .limit((limit.clamp(1, 1000) + 1) as i32)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failed("Query", e))?;
        // Cut short by the 1 MB a query returns at most: more remain too.
        let truncated = answer.last_evaluated_key.is_some();
        let mut entries = answer
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
        let has_more = entries.len() > limit || truncated;
        entries.truncate(limit);
        Ok(FeedPage { entries, has_more })
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

/// Creates the table as `template.yaml` does (keys, `by-provider`, `by-seq` and `by-path`
/// indexes, TTL), for tests,
/// benchmarks and local emulators.
pub async fn create_table(client: &Client, table: &str) -> HubResult<()> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attr_of = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
    };
    let attr = |name: &str| attr_of(name, ScalarAttributeType::S);
    let index = GlobalSecondaryIndex::builder()
        .index_name(PROVIDER_INDEX)
        .key_schema(key("gsi1pk", KeyType::Hash).map_err(HubError::internal)?)
        .key_schema(key("gsi1sk", KeyType::Range).map_err(HubError::internal)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes(STATUS_ATTRIBUTE)
                .build(),
        )
        .build()
        .map_err(HubError::internal)?;
    let path_index = LocalSecondaryIndex::builder()
        .index_name(PATH_INDEX)
        .key_schema(key("pk", KeyType::Hash).map_err(HubError::internal)?)
        .key_schema(key(PATH_ATTRIBUTE, KeyType::Range).map_err(HubError::internal)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(HubError::internal)?;
    let feed_index = LocalSecondaryIndex::builder()
        .index_name(SEQ_INDEX)
        .key_schema(key("pk", KeyType::Hash).map_err(HubError::internal)?)
        .key_schema(key(SEQ_ATTRIBUTE, KeyType::Range).map_err(HubError::internal)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(HubError::internal)?;
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash).map_err(HubError::internal)?)
        .key_schema(key("sk", KeyType::Range).map_err(HubError::internal)?)
        .attribute_definitions(attr("pk").map_err(HubError::internal)?)
        .attribute_definitions(attr("sk").map_err(HubError::internal)?)
        .attribute_definitions(attr("gsi1pk").map_err(HubError::internal)?)
        .attribute_definitions(attr("gsi1sk").map_err(HubError::internal)?)
        .attribute_definitions(
            attr_of(SEQ_ATTRIBUTE, ScalarAttributeType::N).map_err(HubError::internal)?,
        )
        .global_secondary_indexes(index)
        .attribute_definitions(attr(PATH_ATTRIBUTE).map_err(HubError::internal)?)
        .local_secondary_indexes(feed_index)
        .local_secondary_indexes(path_index)
        .send()
        .await
        .map_err(|e| failed("CreateTable", e))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(HubError::internal)?,
        )
        .send()
        .await
        .map_err(|e| failed("UpdateTimeToLive", e))?;
    Ok(())
}
