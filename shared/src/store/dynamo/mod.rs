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
//! | content link    | `LINK#<token hash>`               | `LINK`          | `expires_at_epoch` (TTL)      |
//! | file index entry| `ACCOUNT#<id>`                    | `FILE#<file id>`| `feed_seq` (N): its place in the feed (`seq` before feed items); `drive_key`, `place`: in its folder |
//! | feed item       | `ACCOUNT#<id>`                    | `FEED#<first seq, 20 digits>` | `seqs`, `ids`: a written page's feed positions; `last` |
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
//! The change feed is a feed item per written page, in the account's partition (`feed.rs`),
//! read strongly consistently so that every entry at most at the watermark is there. The
//! `by-seq` local secondary index (`pk`, `seq`) held the feed before: every entry in it with
//! all its attributes, three write units per change. An LSI cannot be dropped from a deployed
//! table, so it stays in the schema; entries stored before the feed items keep `seq` and are
//! read from it (sparse: entries written since have `feed_seq` instead and are not in it).
//!
//! The `by-folder` global secondary index (`drive_key` = `<account>#<drive>`, `place` = the
//! entry's folder then its id, see `crate::store::place`) lists one folder's entries, or one
//! drive's, reading only those: `GET /users/{id}/files?parent_id=` and `?drive_id=` cost what
//! they return, whatever the size of the account. A GSI because a deployed table can gain one
//! (an LSI exists only from the table's creation), and one GSI for both because CloudFormation
//! adds one per stack update. It projects the keys and `deleted` only, so that rewriting an
//! entry that stays in its folder (a sync's usual write) writes nothing to it; a listing reads
//! the entries it found with one `BatchGetItem` per hundred. Entries stored before it carry no
//! key of it until `hub-migrate` backfills them (docs/DEPLOY.md).
//!
//! The `by-path` local secondary index (`pk`, `path_lower`) finds the entries at or under a
//! path that a provider removed (Dropbox reports a deleted folder by its path only): a
//! `begins_with` query, paged, strongly consistent so that entries stored earlier in the same
//! page are found. Sparse too: only entries with a path key are in it. It projects all
//! attributes, since a removal rewrites whole entries.

mod accounts;
mod claims;
mod feed;
mod files;
mod keys;
mod links;
mod logins;
pub mod migrate;
mod push;
mod schema;

// The role files (accounts.rs, files.rs, ...) take the plumbing below, the keys and these
// imports from here (`use super::*`): one table, one set of helpers.
use keys::*;

pub use keys::TTL_ATTRIBUTE;
#[cfg(feature = "testing")]
pub use schema::create_table;
pub use schema::{FOLDER_INDEX, PATH_INDEX, PROVIDER_INDEX, SEQ_INDEX};

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{
    CancellationReason, ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put, PutRequest,
    ReturnValue, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    channel_storable, distinct_keys, place_prefix, read_place, storable, AccountScope,
    AccountStore, ClaimStore, FeedEntry, FeedPage, FeedPosition, FileStore, Folder, LinkStore,
    LoginStore, PushStore, Scan, SpendingWrite, StoredFile, Write, MAX_PATH_KEY_LEN,
};
use crate::deadline::Deadline;
use crate::error::{HubError, HubResult};
use crate::model::{
    Account, AccountStatus, AccountView, ConnectSession, ContentLink, Deletion, FileEntry,
    LoginState, Page, PathRemoval, PushChannel,
};
use crate::retry::{retry, Attempt, RetryPolicy, Stopped};

/// BatchWriteItem's limit.
const BATCH_SIZE: usize = 25;
/// BatchGetItem's limit.
const GET_BATCH_SIZE: usize = 100;
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

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
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

fn failed<E>(operation: &str, error: SdkError<E>) -> HubError
where
    E: std::error::Error + Send + Sync + 'static,
{
    HubError::internal(format!(
        "DynamoDB {operation} failed: {}",
        DisplayErrorContext(error)
    ))
}

/// Deletes of the items under `keys`, for a batch write.
fn delete_requests(keys: Vec<Item>) -> HubResult<Vec<WriteRequest>> {
    keys.into_iter()
        .map(|key| {
            DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map(|d| WriteRequest::builder().delete_request(d).build())
                .map_err(HubError::internal)
        })
        .collect()
}

/// The errors of the single-item operations that take a condition.
trait ConditionalError: std::error::Error + Send + Sync + 'static {
    /// Whether the operation's condition held it back.
    fn condition_failed(&self) -> bool;
}

impl ConditionalError for PutItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalError for UpdateItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalError for DeleteItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// How a conditional single-item write ended: its answer when it was written, `None` when
/// its condition held it back, an error for any other failure. The one place that tells a
/// failed condition (an outcome the caller acts on) from a failed call.
fn conditional<T, E: ConditionalError>(
    operation: &str,
    result: Result<T, SdkError<E>>,
) -> HubResult<Option<T>> {
    match result {
        Ok(answer) => Ok(Some(answer)),
        Err(SdkError::ServiceError(e)) if e.err().condition_failed() => Ok(None),
        Err(e) => Err(failed(operation, e)),
    }
}

/// A conditional write's outcome, from whether it was written.
fn write_of(written: bool) -> Write {
    if written {
        Write::Done
    } else {
        Write::Conflict
    }
}

/// The `Limit` of one query page asked for `limit` items: at least one, at most a thousand.
fn page_limit(limit: usize) -> i32 {
    limit.clamp(1, 1000) as i32
}

/// Every page of a query, one at a time, each asked from where the last one ended
/// (`LastEvaluatedKey`): what reads or removes all of a partition's records.
struct Pages {
    query: QueryFluentBuilder,
    start: Option<Item>,
    done: bool,
}

impl Pages {
    fn of(query: QueryFluentBuilder) -> Self {
        Pages {
            query,
            start: None,
            done: false,
        }
    }

    /// The next page's items; `None` after the last page.
    async fn next(&mut self) -> HubResult<Option<Vec<Item>>> {
        if self.done {
            return Ok(None);
        }
        let answer = self
            .query
            .clone()
            .set_exclusive_start_key(self.start.take())
            .send()
            .await
            .map_err(|e| failed("Query", e))?;
        self.start = answer.last_evaluated_key;
        self.done = self.start.is_none();
        Ok(Some(answer.items.unwrap_or_default()))
    }
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

/// Why a transaction was cancelled, item by item (in the order of its items).
type Cancelled = Vec<CancellationReason>;

fn condition_failed(reason: &CancellationReason) -> bool {
    reason.code() == Some("ConditionalCheckFailed")
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
        Ok(conditional(
            "PutItem",
            put.table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await,
        )?
        .is_some())
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

    async fn write_batches(&self, requests: Vec<WriteRequest>) -> HubResult<()> {
        let chunks: Vec<Vec<WriteRequest>> =
            requests.chunks(BATCH_SIZE).map(<[_]>::to_vec).collect();
        futures::stream::iter(chunks.into_iter().map(|chunk| self.write_batch(chunk)))
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    /// Runs a transaction whose item at `guard` carries the condition that decides it:
    /// `Conflict` when that condition failed. A cancellation for any other reason (a conflict
    /// with another write of the same items, throttling) says nothing of that condition: it
    /// is tried again under `policy`, a few times, then reported as a failure the client
    /// retries. `what` names the write in the logs and the error.
    async fn transact_guarded(
        &self,
        items: Vec<TransactWriteItem>,
        guard: usize,
        policy: &RetryPolicy,
        what: &str,
    ) -> HubResult<Write> {
        let outcome = retry(policy, (), |()| {
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
                if reasons.get(guard).is_some_and(condition_failed) {
                    return Ok(Attempt::Done(Write::Conflict));
                }
                tracing::info!(?reasons, "DynamoDB cancelled {what}; trying again");
                Ok(Attempt::Again {
                    left: (),
                    retry_after: None,
                })
            }
        })
        .await;
        match outcome {
            Ok(written) => Ok(written),
            Err(Stopped::Failed(e)) => Err(e),
            Err(Stopped::Exhausted { attempts, .. }) => Err(HubError::internal(format!(
                "DynamoDB cancelled {what} {attempts} times"
            ))),
        }
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
}
