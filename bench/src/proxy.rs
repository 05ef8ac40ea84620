//! A counting HTTP proxy between the AWS SDK and moto, on 127.0.0.1: every request is
//! forwarded unchanged and counted by operation (`X-Amz-Target`, e.g.
//! `DynamoDB_20120810.PutItem`, or the `Action=` of query-protocol calls). For DynamoDB it
//! also estimates the capacity units each call would consume, from the items in the request
//! (writes) and the response (reads), since moto does not report them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::support::Result;

/// Requests and DynamoDB capacity units seen while counting.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    /// `Service.Operation` → requests.
    pub requests: BTreeMap<String, f64>,
    pub write_units: f64,
    /// The part of `write_units` spent on the change feed's `by-seq` index.
    #[serde(default)]
    pub feed_index_write_units: f64,
    /// The part of `write_units` spent on file items (`FILE#` sort keys) in the table.
    #[serde(default)]
    pub file_write_units: f64,
    /// The part of `write_units` spent on the change feed's items (`FEED#` sort keys): one
    /// per page a sync writes, holding the page's feed positions.
    #[serde(default)]
    pub feed_write_units: f64,
    /// The part of `write_units` spent on account items (`ACCOUNT` sort key) and their
    /// `by-provider` index: the lease, the cursor and the outcome are fields of the account.
    #[serde(default)]
    pub account_write_units: f64,
    pub read_units: f64,
    /// The largest account item written: what each account write pays for, twice.
    pub largest_item_bytes: usize,
}

impl Counts {
    pub fn add(&mut self, other: &Counts, factor: f64) {
        for (operation, n) in &other.requests {
            *self.requests.entry(operation.clone()).or_default() += n * factor;
        }
        self.write_units += other.write_units * factor;
        self.feed_index_write_units += other.feed_index_write_units * factor;
        self.file_write_units += other.file_write_units * factor;
        self.feed_write_units += other.feed_write_units * factor;
        self.account_write_units += other.account_write_units * factor;
        self.read_units += other.read_units * factor;
        self.largest_item_bytes = self.largest_item_bytes.max(other.largest_item_bytes);
    }

    pub fn service_requests(&self, service: &str) -> f64 {
        let prefix = format!("{service}.");
        self.requests
            .iter()
            .filter(|(op, _)| op.starts_with(&prefix))
            .map(|(_, n)| n)
            .sum()
    }
}

pub struct Proxy {
    pub url: String,
    shared: Arc<Shared>,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    counting: AtomicBool,
    counts: Mutex<Counts>,
    /// What the `by-provider` index holds of each account (keys and status), by `pk`, from
    /// every write seen, counted or not: an account write costs index units only when that
    /// changes, as DynamoDB charges.
    index_entries: Mutex<HashMap<String, String>>,
    /// What the `by-seq` index holds of each file item (its `seq`), by key, from every
    /// write seen: see [`feed_index_write_units`].
    feed_entries: Mutex<HashMap<String, String>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Result<Proxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            counting: AtomicBool::new(false),
            counts: Mutex::new(Counts::default()),
            index_entries: Mutex::new(HashMap::new()),
            feed_entries: Mutex::new(HashMap::new()),
        });
        let app = Router::new().fallback(forward).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Proxy { url, shared })
    }

    /// Starts counting from zero.
    pub fn start_counting(&self) {
        *self.shared.counts.lock().expect("counts lock") = Counts::default();
        self.shared.counting.store(true, Ordering::SeqCst);
    }

    /// Stops counting and returns what was counted.
    pub fn stop_counting(&self) -> Counts {
        self.shared.counting.store(false, Ordering::SeqCst);
        self.shared.counts.lock().expect("counts lock").clone()
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    match relay(&shared, request).await {
        Ok(response) => response,
        Err(e) => (StatusCode::BAD_GATEWAY, format!("proxy: {e}")).into_response(),
    }
}

async fn relay(shared: &Shared, request: Request) -> Result<Response> {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 64 << 20).await?;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers.clone();
    // Hop-by-hop and framing headers: reqwest sets its own for the body it sends.
    for name in ["host", "content-length", "transfer-encoding", "connection"] {
        headers.remove(name);
    }
    let answer = shared
        .client
        .request(parts.method.clone(), format!("{}{path}", shared.upstream))
        .headers(headers)
        .body(body.clone())
        .send()
        .await?;
    let status = answer.status();
    let mut response_headers = answer.headers().clone();
    let response_body = answer.bytes().await?;
    let operation = operation(&parts.headers, parts.uri.query(), &body);
    let dynamo = operation.starts_with("DynamoDB.") && status.is_success();
    let (index_writes, feed_writes) = if dynamo {
        let mut entries = shared.index_entries.lock().expect("index lock");
        let mut feed = shared.feed_entries.lock().expect("feed index lock");
        (
            index_write_units(&body, &mut entries),
            feed_index_write_units(&body, &mut feed),
        )
    } else {
        (0.0, 0.0)
    };
    if shared.counting.load(Ordering::SeqCst) {
        let (writes, reads) = if dynamo {
            let (writes, reads) = capacity_units(&operation, &body, &response_body);
            (writes + index_writes + feed_writes, reads)
        } else {
            (0.0, 0.0)
        };
        let split = if dynamo {
            write_units_by_item(&operation, &body)
        } else {
            WriteSplit::default()
        };
        let largest = if dynamo {
            largest_account_item(&body)
        } else {
            0
        };
        let mut counts = shared.counts.lock().expect("counts lock");
        *counts.requests.entry(operation).or_default() += 1.0;
        counts.write_units += writes;
        if dynamo {
            counts.feed_index_write_units += feed_writes;
            counts.file_write_units += split.files;
            counts.feed_write_units += split.feed;
            counts.account_write_units += split.accounts + index_writes;
        }
        counts.read_units += reads;
        counts.largest_item_bytes = counts.largest_item_bytes.max(largest);
    }
    // The body is re-framed by axum.
    response_headers.remove("transfer-encoding");
    response_headers.remove("content-length");
    response_headers.remove("connection");
    let mut response = Response::new(Body::from(response_body));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    Ok(response)
}

/// `Service.Operation` of an AWS call.
fn operation(headers: &HeaderMap, query: Option<&str>, body: &Bytes) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (prefix, op) = target.split_once('.').unwrap_or((target, "?"));
        let service = match prefix {
            p if p.starts_with("DynamoDB") => "DynamoDB",
            "TrentService" => "KMS",
            "AmazonSQS" => "SQS",
            other => other,
        };
        return format!("{service}.{op}");
    }
    // Query protocol: the service is in the signature's credential scope
    // (`Credential=AKID/20260101/us-east-1/sqs/aws4_request`), the operation in `Action=`.
    let service = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|scope| scope.split('/').nth(3))
        .map(|s| match s {
            "dynamodb" => "DynamoDB".to_string(),
            "kms" => "KMS".to_string(),
            "sqs" => "SQS".to_string(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| "unknown".into());
    let form = String::from_utf8_lossy(body);
    let action = [Some(form.as_ref()), query]
        .into_iter()
        .flatten()
        .flat_map(|pairs| url::form_urlencoded::parse(pairs.as_bytes()))
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| "?".into());
    format!("{service}.{action}")
}

/// Estimated (write, read) capacity units of a successful DynamoDB call in the table, on-demand
/// rules: a write costs one unit per started KB of the item; transactions cost double; a
/// strongly consistent read one unit per started 4 KB of what it returned, an eventually
/// consistent one (every index query, every batch get) half that. The index's share is
/// [`index_write_units`].
pub fn capacity_units(operation: &str, request: &[u8], response: &[u8]) -> (f64, f64) {
    let request: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
    let response: Value = serde_json::from_slice(response).unwrap_or(Value::Null);
    let put_units = |item: &Value| {
        let Some(item) = item.as_object() else {
            return 0.0;
        };
        (item_size(item) as f64 / 1024.0).ceil().max(1.0)
    };
    let write_request_units = |request: &Value| {
        if let Some(put) = request.get("PutRequest").or_else(|| request.get("Put")) {
            put_units(&put["Item"])
        } else {
            // A delete's size is the stored item's, which the request does not carry.
            1.0
        }
    };
    let consistent = request["ConsistentRead"].as_bool().unwrap_or(false);
    let read_units = |bytes: usize| {
        let units = (bytes as f64 / 4096.0).ceil().max(1.0);
        if consistent {
            units
        } else {
            units / 2.0
        }
    };
    let items_size = |items: &Value| -> usize {
        items
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .map(item_size)
            .sum()
    };
    match operation.trim_start_matches("DynamoDB.") {
        "PutItem" => (put_units(&request["Item"]), 0.0),
        "DeleteItem" | "UpdateItem" => (1.0, 0.0),
        "BatchWriteItem" => {
            let units = per_table_entries(&request["RequestItems"])
                .map(write_request_units)
                .sum();
            (units, 0.0)
        }
        "TransactWriteItems" => {
            let units: f64 = request["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .map(write_request_units)
                .sum();
            (2.0 * units, 0.0)
        }
        "GetItem" => {
            let size = response["Item"].as_object().map_or(0, item_size);
            (0.0, read_units(size))
        }
        "Query" | "Scan" => {
            // Billed on every item read, before a filter expression drops some: those
            // dropped are taken to be of the returned items' average size.
            let returned = items_size(&response["Items"]);
            let count = response["Count"].as_u64().unwrap_or(0);
            let scanned = response["ScannedCount"].as_u64().unwrap_or(count);
            let read = match count {
                0 => returned,
                count => returned * scanned.max(count) as usize / count as usize,
            };
            (0.0, read_units(read))
        }
        "BatchGetItem" => {
            // Each item is rounded up to 4 KB on its own.
            let units = per_table_entries(&response["Responses"])
                .filter_map(Value::as_object)
                .map(|item| read_units(item_size(item)))
                .sum();
            (0.0, units)
        }
        _ => (0.0, 0.0),
    }
}

/// The table's write units of one write call, split by the kind of item written (the
/// indexes are counted apart).
#[derive(Debug, Default, PartialEq)]
pub struct WriteSplit {
    pub files: f64,
    pub feed: f64,
    pub accounts: f64,
    pub other: f64,
}

/// [`capacity_units`]'s write units of a call, by the sort key of each item it writes or
/// deletes: `FILE#…` (file entries), `FEED#…` (the change feed's items), `ACCOUNT` (the
/// account, with its lease, cursor and outcome), anything else (claims, sessions, push
/// marks...).
pub fn write_units_by_item(operation: &str, request: &[u8]) -> WriteSplit {
    let request: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
    let mut split = WriteSplit::default();
    // Each entry: the item or key it writes, and the units capacity_units charges for it.
    let mut add = |target: &Value, units: f64| {
        let sk = target["sk"]["S"].as_str().unwrap_or_default();
        let kind = if sk.starts_with("FILE#") {
            &mut split.files
        } else if sk.starts_with("FEED#") {
            &mut split.feed
        } else if sk == "ACCOUNT" {
            &mut split.accounts
        } else {
            &mut split.other
        };
        *kind += units;
    };
    let put_units = |item: &Value| {
        item.as_object().map_or(0.0, |item| {
            (item_size(item) as f64 / 1024.0).ceil().max(1.0)
        })
    };
    match operation.trim_start_matches("DynamoDB.") {
        "PutItem" => add(&request["Item"], put_units(&request["Item"])),
        "DeleteItem" | "UpdateItem" => add(&request["Key"], 1.0),
        "BatchWriteItem" => {
            for entry in per_table_entries(&request["RequestItems"]) {
                match entry.get("PutRequest") {
                    Some(put) => add(&put["Item"], put_units(&put["Item"])),
                    None => add(&entry["DeleteRequest"]["Key"], 1.0),
                }
            }
        }
        "TransactWriteItems" => {
            for entry in request["TransactItems"].as_array().into_iter().flatten() {
                match entry.get("Put") {
                    Some(put) => add(&put["Item"], 2.0 * put_units(&put["Item"])),
                    None => {
                        let key = ["Update", "Delete", "ConditionCheck"]
                            .iter()
                            .find_map(|kind| entry.get(*kind))
                            .map_or(&Value::Null, |op| &op["Key"]);
                        add(key, 2.0);
                    }
                }
            }
        }
        _ => {}
    }
    split
}

/// The `by-provider` index's write units for the account items a write request puts: the
/// index projects the keys and `status` (under 1 KB), so a put costs one index unit when it
/// creates the entry or changes one of those, and none otherwise (DynamoDB writes nothing to
/// an index whose projected attributes did not change).
pub fn index_write_units(request: &[u8], entries: &mut HashMap<String, String>) -> f64 {
    let request: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
    let mut units = 0.0;
    for item in account_puts(&request) {
        let projected = ["gsi1pk", "gsi1sk", "status"].map(|name| item.get(name).cloned());
        let projected = serde_json::to_string(&projected).unwrap_or_default();
        let pk = item.get("pk").map(Value::to_string).unwrap_or_default();
        if entries.insert(pk, projected.clone()).as_ref() != Some(&projected) {
            units += 1.0;
        }
    }
    units
}

/// The change feed's `by-seq` local secondary index's write units for the file items a write
/// request puts or deletes. The index is sparse (only items with `seq`) and projects every
/// attribute, so DynamoDB charges it as a table: a put of a new entry costs one unit per
/// started KB; a put that gives an entry a new `seq` (every change of a file) deletes the old
/// index entry (one unit) and puts the new one; a delete of an indexed item deletes its entry
/// (one unit). (Amazon DynamoDB Developer Guide, "Provisioned throughput considerations for
/// Local Secondary Indexes".)
pub fn feed_index_write_units(request: &[u8], entries: &mut HashMap<String, String>) -> f64 {
    let request: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
    let key = |item: &Map<String, Value>| {
        let part = |name: &str| item.get(name).map(Value::to_string).unwrap_or_default();
        format!("{}|{}", part("pk"), part("sk"))
    };
    let mut units = 0.0;
    let transact = request["TransactItems"].as_array().into_iter().flatten();
    let batch: Vec<&Value> = per_table_entries(&request["RequestItems"]).collect();
    let puts = std::iter::once(&request["Item"])
        .chain(transact.clone().map(|t| &t["Put"]["Item"]))
        .chain(batch.iter().map(|w| &w["PutRequest"]["Item"]))
        .filter_map(Value::as_object);
    for item in puts {
        let before = entries.remove(&key(item));
        match item.get("seq").map(Value::to_string) {
            Some(seq) => {
                if before.as_ref().is_some_and(|old| *old != seq) {
                    units += 1.0;
                }
                units += (item_size(item) as f64 / 1024.0).ceil().max(1.0);
                entries.insert(key(item), seq);
            }
            None if before.is_some() => units += 1.0,
            None => {}
        }
    }
    let deletes = std::iter::once(&request["Key"])
        .chain(transact.map(|t| &t["Delete"]["Key"]))
        .chain(batch.iter().map(|w| &w["DeleteRequest"]["Key"]))
        .filter_map(Value::as_object);
    for item in deletes {
        if entries.remove(&key(item)).is_some() {
            units += 1.0;
        }
    }
    units
}

/// The size of the account item a `PutItem` or transaction writes (0 if none).
fn largest_account_item(request: &[u8]) -> usize {
    let request: Value = serde_json::from_slice(request).unwrap_or(Value::Null);
    account_puts(&request).map(item_size).max().unwrap_or(0)
}

/// The entries of every table of a `RequestItems` or `Responses` map.
fn per_table_entries(by_table: &Value) -> impl Iterator<Item = &Value> {
    by_table
        .as_object()
        .into_iter()
        .flat_map(|tables| tables.values())
        .filter_map(Value::as_array)
        .flatten()
}

/// The account items (those carrying the `by-provider` keys) a write request puts: a
/// `PutItem`, the puts of a transaction, the put requests of a batch.
fn account_puts(request: &Value) -> impl Iterator<Item = &Map<String, Value>> {
    let transact = request["TransactItems"].as_array().into_iter().flatten();
    let batch = per_table_entries(&request["RequestItems"]);
    std::iter::once(&request["Item"])
        .chain(transact.map(|t| &t["Put"]["Item"]))
        .chain(batch.map(|w| &w["PutRequest"]["Item"]))
        .filter_map(Value::as_object)
        .filter(|item| item.contains_key("gsi1pk"))
}

/// DynamoDB's item size: attribute names plus values, in bytes.
pub fn item_size(item: &Map<String, Value>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|m| m.iter().next()) else {
        return 0;
    };
    let text = |v: &Value| v.as_str().map_or(0, str::len);
    // Numbers: about one byte per two significant digits, plus one.
    let number = |v: &Value| text(v) / 2 + 1;
    // Binary values travel as base64.
    let binary = |v: &Value| text(v) * 3 / 4;
    let list = |v: &Value, size: &dyn Fn(&Value) -> usize| -> usize {
        v.as_array().into_iter().flatten().map(size).sum()
    };
    match kind.as_str() {
        "S" => text(inner),
        "N" => number(inner),
        "B" => binary(inner),
        "BOOL" | "NULL" => 1,
        "SS" => list(inner, &text),
        "NS" => list(inner, &number),
        "BS" => list(inner, &binary),
        "L" => 3 + list(inner, &|v| 1 + value_size(v)),
        "M" => {
            3 + inner.as_object().map_or(0, |m| {
                m.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum()
            })
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_operations_by_target_or_action() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-target", "TrentService.Decrypt".parse().unwrap());
        assert_eq!(operation(&headers, None, &Bytes::new()), "KMS.Decrypt");
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host"
                .parse()
                .unwrap(),
        );
        let body = Bytes::from_static(b"Action=ReceiveMessage&Version=2012-11-05");
        assert_eq!(operation(&headers, None, &body), "SQS.ReceiveMessage");
    }

    #[test]
    fn file_writes_count_for_the_feed_index_by_their_seq() {
        let put = |seq: Option<u64>| {
            let mut item =
                json!({"pk": {"S": "ACCOUNT#a"}, "sk": {"S": "FILE#1"}, "name": {"S": "x"}});
            if let Some(seq) = seq {
                item["seq"] = json!({"N": seq.to_string()});
            }
            json!({"RequestItems": {"t": [{"PutRequest": {"Item": item}}]}}).to_string()
        };
        let mut entries = HashMap::new();
        assert_eq!(
            feed_index_write_units(put(Some(1)).as_bytes(), &mut entries),
            1.0,
            "new"
        );
        assert_eq!(
            feed_index_write_units(put(Some(7)).as_bytes(), &mut entries),
            2.0,
            "changed: the old entry out, the new one in"
        );
        assert_eq!(
            feed_index_write_units(put(None).as_bytes(), &mut entries),
            1.0,
            "out of the sparse index"
        );
        assert_eq!(
            feed_index_write_units(put(None).as_bytes(), &mut entries),
            0.0
        );
        feed_index_write_units(put(Some(8)).as_bytes(), &mut entries);
        let delete = json!({"RequestItems": {"t": [{"DeleteRequest": {"Key": {"pk": {"S": "ACCOUNT#a"}, "sk": {"S": "FILE#1"}}}}]}});
        assert_eq!(
            feed_index_write_units(delete.to_string().as_bytes(), &mut entries),
            1.0
        );
    }

    #[test]
    fn account_writes_count_for_the_index_only_when_its_projection_changes() {
        let item = |status: &str, blob: &str| {
            json!({"Item": {"pk": {"S": "ACCOUNT#a"}, "gsi1pk": {"S": "PROVIDER#google"}, "gsi1sk": {"S": "a"}, "status": {"S": status}, "blob": {"S": blob.repeat(1500)}}}).to_string()
        };
        let (writes, _) = capacity_units("DynamoDB.PutItem", item("active", "x").as_bytes(), b"{}");
        assert_eq!(writes, 2.0, "the table: 2 started KB");
        let mut entries = HashMap::new();
        assert_eq!(
            index_write_units(item("active", "x").as_bytes(), &mut entries),
            1.0,
            "created"
        );
        assert_eq!(
            index_write_units(item("active", "y").as_bytes(), &mut entries),
            0.0,
            "unprojected change"
        );
        assert_eq!(
            index_write_units(item("needs_reauth", "y").as_bytes(), &mut entries),
            1.0,
            "status"
        );
        let file = json!({"RequestItems": {"t": [{"PutRequest": {"Item": {"pk": {"S": "ACCOUNT#a"}, "sk": {"S": "FILE#1"}}}}]}});
        let (writes, _) = capacity_units(
            "DynamoDB.BatchWriteItem",
            file.to_string().as_bytes(),
            b"{}",
        );
        assert_eq!(writes, 1.0);
    }

    #[test]
    fn write_units_are_split_by_the_kind_of_item() {
        let key = |sk: &str| json!({"pk": {"S": "ACCOUNT#a"}, "sk": {"S": sk}});
        let batch = json!({"RequestItems": {"t": [
            {"PutRequest": {"Item": key("FILE#1")}},
            {"DeleteRequest": {"Key": key("FILE#2")}},
            {"PutRequest": {"Item": key("FEED#00000000000000000001")}},
        ]}});
        let split = write_units_by_item("DynamoDB.BatchWriteItem", batch.to_string().as_bytes());
        assert_eq!((split.files, split.feed), (2.0, 1.0));
        let update = json!({"Key": key("ACCOUNT")});
        let split = write_units_by_item("DynamoDB.UpdateItem", update.to_string().as_bytes());
        assert_eq!(split.accounts, 1.0);
        let transact = json!({"TransactItems": [{"Put": {"Item": key("ACCOUNT")}}, {"Delete": {"Key": key("CLAIM#x")}}]});
        let split = write_units_by_item(
            "DynamoDB.TransactWriteItems",
            transact.to_string().as_bytes(),
        );
        assert_eq!((split.accounts, split.other), (2.0, 2.0));
    }

    #[test]
    fn index_queries_are_eventually_consistent() {
        let response = json!({"Items": [{"a": {"S": "x".repeat(5000)}}]});
        let (_, reads) = capacity_units("DynamoDB.Query", b"{}", response.to_string().as_bytes());
        assert_eq!(reads, 1.0);
        let request = json!({"ConsistentRead": true});
        let (_, reads) = capacity_units(
            "DynamoDB.GetItem",
            request.to_string().as_bytes(),
            json!({"Item": {"a": {"S": "x"}}}).to_string().as_bytes(),
        );
        assert_eq!(reads, 1.0);
    }

    #[test]
    fn a_filtered_query_pays_for_the_items_it_dropped() {
        let item = json!({"a": {"S": "x".repeat(4000)}});
        let response = |scanned: u64| {
            json!({"Items": [item.clone()], "Count": 1, "ScannedCount": scanned}).to_string()
        };
        let (_, all_returned) = capacity_units("DynamoDB.Query", b"{}", response(1).as_bytes());
        let (_, ten_read) = capacity_units("DynamoDB.Query", b"{}", response(10).as_bytes());
        assert_eq!(all_returned, 0.5);
        assert_eq!(ten_read, 5.0);
    }
}
