//! Push notifications: Drive `changes.watch` channels and `channels.stop`, Graph
//! `/subscriptions` with the validation handshake, and delivery of the notifications each
//! provider sends (Drive's `X-Goog-*` headers, Graph's change and lifecycle notifications,
//! Dropbox's signed webhook), to the addresses the hub registered.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::google::{drive_user, GoogleError};
use crate::microsoft::writes::{subscription_forbidden, writing_user};
use crate::microsoft::{files_user, graph_error};
use crate::oauth::query_map;
use crate::state::{
    lock, random_token, uid_of, Channel, Shared, Subscription, DROPBOX_CLIENT_SECRET,
};

/// Graph and Dropbox give the receiver 10 seconds to answer; so does the stand-in.
pub(crate) const RECEIVER_TIMEOUT: Duration = Duration::from_secs(10);

/// A Drive channel lives an hour unless asked otherwise, and a week at most for `changes`:
/// <https://developers.google.com/drive/api/guides/push#optional-properties>.
const DRIVE_CHANNEL_DEFAULT: chrono::Duration = chrono::Duration::hours(1);
const DRIVE_CHANNEL_MAX: chrono::Duration = chrono::Duration::weeks(1);

/// Graph's longest subscription for a driveItem: 42,300 minutes (under 30 days),
/// <https://learn.microsoft.com/en-us/graph/api/resources/subscription#subscription-lifetime>.
const GRAPH_SUBSCRIPTION_MAX: chrono::Duration = chrono::Duration::minutes(42_300);

/// The tenant Graph names for personal Microsoft accounts.
pub(crate) const CONSUMER_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Whether a notification carries the secret the subscriber registered, or a wrong one (as a
/// forger would), to check that the hub refuses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authenticity {
    Genuine,
    /// Drive: a wrong `X-Goog-Channel-Token`; Graph: a wrong `clientState`; Dropbox: a wrong
    /// `X-Dropbox-Signature`.
    Forged,
}

/// Graph's lifecycle notifications,
/// <https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events>.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// The subscription needs renewing (Graph sends this for every resource).
    ReauthorizationRequired,
    /// Graph removed the subscription: the stand-in forgets it too.
    SubscriptionRemoved,
    /// Graph could not deliver some notifications.
    Missed,
}

impl LifecycleEvent {
    fn name(self) -> &'static str {
        match self {
            LifecycleEvent::ReauthorizationRequired => "reauthorizationRequired",
            LifecycleEvent::SubscriptionRemoved => "subscriptionRemoved",
            LifecycleEvent::Missed => "missed",
        }
    }
}

/// One notification sent: where to, and the receiver's status (`None`: unreachable, or no
/// answer within [`RECEIVER_TIMEOUT`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub url: String,
    pub status: Option<u16>,
}

impl Subscription {
    fn json(&self) -> Value {
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": crate::state::ONEDRIVE_CLIENT_ID,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": graph_time(self.expiration),
            "creatorId": self.user,
            "latestSupportedTlsVersion": "v1_2",
        })
    }
}

fn graph_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(RECEIVER_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client with a timeout builds")
}

async fn deliver(request: reqwest::RequestBuilder, url: &str) -> Delivery {
    let status = request.send().await.ok().map(|r| r.status().as_u16());
    Delivery {
        url: url.to_string(),
        status,
    }
}

// ------------------------------------------------------------ Google Drive

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WatchRequest {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    address: Option<String>,
    token: Option<String>,
    /// Milliseconds since the epoch; Google's JSON writes int64 as a string, clients may send
    /// either.
    expiration: Option<Value>,
}

fn drive_bad_request(message: &str, reason: &str) -> Response {
    GoogleError::new(StatusCode::BAD_REQUEST, message)
        .with_reason(reason)
        .into_response()
}

fn millis_of(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => text.parse().ok(),
        other => other.as_i64(),
    }
}

/// `POST /drive/v3/changes/watch?pageToken=…`: a channel for the user's changes. The `sync`
/// message follows the answer, as at Google; it does not matter whether it is received.
pub(crate) async fn watch_changes(
    State(shared): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let query = query_map(&uri);
    let Ok(request) = serde_json::from_slice::<WatchRequest>(&body) else {
        return drive_bad_request("Parse Error", "parseError");
    };
    let channel = {
        let mut state = lock(&shared);
        let user = match drive_user(&state, &headers) {
            Ok(user) => user,
            Err(refusal) => return refusal.into_response(),
        };
        let Some(page_token) = query.get("pageToken").filter(|t| !t.is_empty()) else {
            return GoogleError::new(StatusCode::BAD_REQUEST, "Required parameter: pageToken")
                .with_reason("required")
                .on_parameter("pageToken")
                .into_response();
        };
        let Some(id) = request.id.filter(|id| !id.is_empty()) else {
            return drive_bad_request("Required: id", "required");
        };
        // `web_hook` (or `webhook`) is the one delivery type.
        if !matches!(request.kind.as_deref(), Some("web_hook" | "webhook")) {
            return drive_bad_request("Invalid value for: type", "invalid");
        }
        // Google wants https with a valid certificate; the stand-in also takes http, for
        // receivers on loopback in tests.
        let address = request.address.unwrap_or_default();
        let parsed = url::Url::parse(&address).ok();
        if !parsed.is_some_and(|u| matches!(u.scheme(), "https" | "http")) {
            return drive_bad_request(
                &format!("Invalid webhook URL: {address}"),
                "push.webhookUrlUnparseable",
            );
        }
        if state.channels.iter().any(|c| c.id == id) {
            return drive_bad_request(&format!("Channel id {id} not unique"), "channelIdNotUnique");
        }
        let now = Utc::now();
        let asked = request.expiration.as_ref().and_then(millis_of);
        let expiration = asked
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(now + DRIVE_CHANNEL_DEFAULT)
            .min(now + DRIVE_CHANNEL_MAX);
        let resource_uri = format!(
            "{}/google/drive/v3/changes?alt=json&pageToken={page_token}",
            state.base_url
        );
        let channel = Channel {
            id,
            resource_id: random_token("res-"),
            resource_uri,
            token: request.token,
            address,
            expiration,
            user,
            message_number: 0,
        };
        let answer = json!({
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": channel.resource_uri,
            "token": channel.token,
            "expiration": channel.expiration.timestamp_millis().to_string(),
        });
        state.channels.push(channel);
        answer
    };
    let id = channel["id"].as_str().unwrap_or_default().to_string();
    let background = shared.clone();
    tokio::spawn(async move {
        send_drive_message(&background, &id, "sync", Authenticity::Genuine).await;
    });
    Json(channel).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopRequest {
    id: Option<String>,
    resource_id: Option<String>,
}

/// `POST /drive/v3/channels/stop` `{"id", "resourceId"}`: 204, or 404 for no such channel.
pub(crate) async fn stop_channel(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<StopRequest>(&body) else {
        return drive_bad_request("Parse Error", "parseError");
    };
    let mut state = lock(&shared);
    if let Err(refusal) = drive_user(&state, &headers) {
        return refusal.into_response();
    }
    let (Some(id), Some(resource_id)) = (request.id, request.resource_id) else {
        return drive_bad_request("Required: id and resourceId", "required");
    };
    let before = state.channels.len();
    state
        .channels
        .retain(|c| !(c.id == id && c.resource_id == resource_id));
    if state.channels.len() == before {
        return GoogleError::new(
            StatusCode::NOT_FOUND,
            format!("Channel '{id}' not found for project 'stand-in'"),
        )
        .into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Sends one Drive message to a live channel, with the headers Google sends
/// (<https://developers.google.com/drive/api/guides/push#understanding-drive-api-notification-events>);
/// `None` if there is no such live channel.
pub(crate) async fn send_drive_message(
    shared: &Shared,
    channel_id: &str,
    resource_state: &str,
    authenticity: Authenticity,
) -> Option<Delivery> {
    let (address, headers) = {
        let mut state = lock(shared);
        let now = Utc::now();
        let channel = state
            .channels
            .iter_mut()
            .find(|c| c.id == channel_id && c.expiration > now)?;
        channel.message_number += 1;
        let token = match authenticity {
            Authenticity::Genuine => channel.token.clone(),
            Authenticity::Forged => Some(random_token("forged-")),
        };
        let expiration = channel
            .expiration
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let mut headers = vec![
            ("X-Goog-Channel-ID", channel.id.clone()),
            ("X-Goog-Channel-Expiration", expiration),
            ("X-Goog-Message-Number", channel.message_number.to_string()),
            ("X-Goog-Resource-ID", channel.resource_id.clone()),
            ("X-Goog-Resource-State", resource_state.to_string()),
            ("X-Goog-Resource-URI", channel.resource_uri.clone()),
        ];
        if let Some(token) = token {
            headers.push(("X-Goog-Channel-Token", token));
        }
        (channel.address.clone(), headers)
    };
    let mut request = http().post(&address);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    Some(deliver(request, &address).await)
}

/// The ids of the user's live Drive channels.
pub(crate) fn live_channels(shared: &Shared, user: &str) -> Vec<String> {
    let state = lock(shared);
    let now = Utc::now();
    let live = state
        .channels
        .iter()
        .filter(|c| c.user == user && c.expiration > now);
    live.map(|c| c.id.clone()).collect()
}

// ------------------------------------------------------------ Microsoft Graph

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionRequest {
    change_type: Option<String>,
    notification_url: Option<String>,
    lifecycle_notification_url: Option<String>,
    resource: Option<String>,
    expiration_date_time: Option<String>,
    client_state: Option<String>,
}

fn graph_bad_request(message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "InvalidRequest", message)
}

fn subscription_not_found(id: &str) -> Response {
    let message = format!("The object '{id}' was not found.");
    graph_error(StatusCode::NOT_FOUND, "ResourceNotFound", &message)
}

/// An expiration Graph accepts: in the future and at most 42,300 minutes ahead.
fn subscription_expiration(value: Option<&str>) -> Result<DateTime<Utc>, Box<Response>> {
    let Some(time) = value.and_then(|v| DateTime::parse_from_rfc3339(v).ok()) else {
        return Err(Box::new(graph_bad_request(
            "expirationDateTime must be a valid date and time.",
        )));
    };
    let time = time.with_timezone(&Utc);
    let now = Utc::now();
    if time <= now {
        return Err(Box::new(graph_bad_request(
            "Subscription expiration must be in the future.",
        )));
    }
    if time > now + GRAPH_SUBSCRIPTION_MAX {
        return Err(Box::new(graph_bad_request(
            "Subscription expiration can only be 42300 minutes in the future.",
        )));
    }
    Ok(time)
}

/// Graph's validation request: `POST {url}?validationToken=…` answered within 10 seconds with
/// 200, `text/plain` and exactly the token
/// (<https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks#notificationurl-validation>).
async fn validates(url: &str) -> bool {
    let token = format!("Validation: {}", random_token(""));
    let Ok(mut target) = url::Url::parse(url) else {
        return false;
    };
    target
        .query_pairs_mut()
        .append_pair("validationToken", &token);
    let Ok(answer) = http()
        .post(target)
        .header("content-type", "text/plain; charset=utf-8")
        .send()
        .await
    else {
        return false;
    };
    let plain = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let ok = answer.status() == reqwest::StatusCode::OK;
    ok && plain && answer.text().await.is_ok_and(|body| body == token)
}

/// `POST /subscriptions`: validates the notification URL (and the lifecycle one) first, and
/// refuses with 400 when a validation fails, as Graph does.
pub(crate) async fn create_subscription(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A drive subscription needs a write scope, as Graph's documentation says
    // (`microsoft::writes`).
    let user = {
        let state = lock(&shared);
        writing_user(&state, &headers, subscription_forbidden)
    };
    let user = match user {
        Ok(user) => user,
        Err(refusal) => return *refusal,
    };
    let Ok(request) = serde_json::from_slice::<SubscriptionRequest>(&body) else {
        return graph_bad_request("Invalid request body.");
    };
    // driveItem subscriptions support only `updated`, on the drive's root.
    if request.change_type.as_deref() != Some("updated") {
        return graph_bad_request("changeType must be 'updated' for driveItem subscriptions.");
    }
    let resource = request.resource.unwrap_or_default();
    let resource = resource.trim_start_matches('/');
    if !resource.eq_ignore_ascii_case("me/drive/root") {
        return graph_bad_request(&format!("Resource '{resource}' is not supported."));
    }
    if request.client_state.as_ref().is_some_and(|c| c.len() > 128) {
        return graph_bad_request("clientState can be at most 128 characters.");
    }
    let expiration = match subscription_expiration(request.expiration_date_time.as_deref()) {
        Ok(time) => time,
        Err(refusal) => return *refusal,
    };
    // Graph wants https; the stand-in also takes http, for receivers on loopback in tests.
    let notification_url = request.notification_url.unwrap_or_default();
    let urls = std::iter::once(&notification_url).chain(&request.lifecycle_notification_url);
    for url in urls {
        if !validates(url).await {
            return graph_bad_request(
                "Subscription validation request failed. Notification endpoint must respond \
                 with 200 OK to validation request.",
            );
        }
    }
    let subscription = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        user,
        change_type: "updated".to_string(),
        resource: resource.to_string(),
        notification_url,
        lifecycle_url: request.lifecycle_notification_url,
        expiration,
        client_state: request.client_state,
    };
    let answer = subscription.json();
    lock(&shared).subscriptions.push(subscription);
    (StatusCode::CREATED, Json(answer)).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RenewRequest {
    expiration_date_time: Option<String>,
}

/// `PATCH /subscriptions/{id}` `{"expirationDateTime"}`: 200 with the subscription.
pub(crate) async fn renew_subscription(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = lock(&shared);
    let user = match writing_user(&state, &headers, subscription_forbidden) {
        Ok(user) => user,
        Err(refusal) => return *refusal,
    };
    let Ok(request) = serde_json::from_slice::<RenewRequest>(&body) else {
        return graph_bad_request("Invalid request body.");
    };
    let expiration = match subscription_expiration(request.expiration_date_time.as_deref()) {
        Ok(time) => time,
        Err(refusal) => return *refusal,
    };
    let found = state
        .subscriptions
        .iter_mut()
        .find(|s| s.id == id && s.user == user);
    let Some(subscription) = found else {
        return subscription_not_found(&id);
    };
    subscription.expiration = expiration;
    Json(subscription.json()).into_response()
}

/// `DELETE /subscriptions/{id}`: 204, or 404 for no such subscription.
pub(crate) async fn delete_subscription(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = lock(&shared);
    let user = match files_user(&state, &headers) {
        Ok(user) => user,
        Err(refusal) => return *refusal,
    };
    let before = state.subscriptions.len();
    state
        .subscriptions
        .retain(|s| !(s.id == id && s.user == user));
    if state.subscriptions.len() == before {
        return subscription_not_found(&id);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// The user's live subscriptions.
pub(crate) fn live_subscriptions(shared: &Shared, user: &str) -> Vec<Subscription> {
    let state = lock(shared);
    let now = Utc::now();
    let live = state
        .subscriptions
        .iter()
        .filter(|s| s.user == user && s.expiration > now);
    live.cloned().collect()
}

fn client_state_of(subscription: &Subscription, authenticity: Authenticity) -> Option<String> {
    match authenticity {
        Authenticity::Genuine => subscription.client_state.clone(),
        Authenticity::Forged => Some(random_token("forged-")),
    }
}

/// A change notification for one subscription to its `notificationUrl`
/// (<https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks#receive-notifications>).
pub(crate) async fn send_graph_change(
    subscription: &Subscription,
    authenticity: Authenticity,
) -> Delivery {
    let body = json!({"value": [{
        "subscriptionId": subscription.id,
        "clientState": client_state_of(subscription, authenticity),
        "changeType": "updated",
        "resource": subscription.resource,
        "subscriptionExpirationDateTime": graph_time(subscription.expiration),
        "tenantId": CONSUMER_TENANT_ID,
    }]});
    let url = &subscription.notification_url;
    deliver(http().post(url).json(&body), url).await
}

/// A lifecycle notification to the subscription's `lifecycleNotificationUrl`; `None` if it
/// has none. `subscriptionRemoved` also ends the subscription.
pub(crate) async fn send_graph_lifecycle(
    shared: &Shared,
    subscription: &Subscription,
    event: LifecycleEvent,
) -> Option<Delivery> {
    let url = subscription.lifecycle_url.clone()?;
    if event == LifecycleEvent::SubscriptionRemoved {
        lock(shared)
            .subscriptions
            .retain(|s| s.id != subscription.id);
    }
    let body = json!({"value": [{
        "subscriptionId": subscription.id,
        "subscriptionExpirationDateTime": graph_time(subscription.expiration),
        "tenantId": CONSUMER_TENANT_ID,
        "clientState": subscription.client_state,
        "lifecycleEvent": event.name(),
    }]});
    Some(deliver(http().post(&url).json(&body), &url).await)
}

// ------------------------------------------------------------ Dropbox

/// Dropbox's verification request: `GET {uri}?challenge=…`, which the app must echo in a 200
/// within 10 seconds (<https://www.dropbox.com/developers/reference/webhooks#verification>).
pub(crate) async fn dropbox_verifies(uri: &str) -> bool {
    let challenge = random_token("");
    let Ok(mut target) = url::Url::parse(uri) else {
        return false;
    };
    target
        .query_pairs_mut()
        .append_pair("challenge", &challenge);
    let Ok(answer) = http().get(target).send().await else {
        return false;
    };
    answer.status() == reqwest::StatusCode::OK
        && answer.text().await.is_ok_and(|body| body == challenge)
}

/// Hex HMAC-SHA256 of the body keyed with the app secret, as in `X-Dropbox-Signature`.
pub(crate) fn dropbox_signature(body: &[u8], secret: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A notification naming these accounts, signed with the app secret (or not, when forged)
/// (<https://www.dropbox.com/developers/reference/webhooks#notifications>).
pub(crate) async fn send_dropbox_notification(
    uri: &str,
    accounts: &[String],
    authenticity: Authenticity,
) -> Delivery {
    let uids: Vec<u64> = accounts
        .iter()
        .filter_map(|a| uid_of(a).parse().ok())
        .collect();
    let body = json!({"list_folder": {"accounts": accounts}, "delta": {"users": uids}});
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let secret = match authenticity {
        Authenticity::Genuine => DROPBOX_CLIENT_SECRET.to_string(),
        Authenticity::Forged => random_token("not-the-app-secret-"),
    };
    let request = http()
        .post(uri)
        .header("content-type", "application/json")
        .header("X-Dropbox-Signature", dropbox_signature(&body, &secret))
        .body(body);
    deliver(request, uri).await
}
