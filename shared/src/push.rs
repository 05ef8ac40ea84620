//! Provider push notifications (docs/API.md, "Push notifications"), both halves:
//! - what `provider-webhooks` does with a notification once the web layer has read it, and
//!   nothing more, so that it answers within the providers' few seconds: check it, and queue
//!   one `push` sync job per account it names;
//! - the channels (Drive channels, Graph subscriptions) the worker keeps after a sync that
//!   finished ([`keep_channel`]), and that `DELETE /users/{id}` stops ([`close_channels`]).
//!
//! Coalescing ([`crate::jobs`]): a job is queued only when the account's job mark
//! ([`crate::store::PushStore::mark_push_pending`], a conditional write) was free; the worker
//! clears the mark when it starts a job. A burst of notifications while a job waits in the
//! queue (a push job, or any other) therefore queues nothing more, and one that comes once
//! the job has started queues the next, so a change made during a sync is not missed. A
//! replayed notification at worst queues one more sync.
//!
//! Each provider's rules (signatures, secrets, shapes) live in its own module behind
//! [`crate::providers::Connector`]; here only what every provider shares.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use chrono::{Duration, Utc};
use futures::StreamExt;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::deadline::Deadline;
use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use crate::model::{Account, AccountStatus, PushChannel, SyncJob, SyncReason, TokenSet};
use crate::providers::oauth::OAuthApp;
use crate::providers::{
    ChannelRequest, Connector, NoticeEvent, PushRefusal, PushStyle, SubscriptionNotice, MAX_NOTICES,
};
use crate::store::{Write, MAX_KEY_LEN};

/// The account's job mark and what queueing came to: see [`crate::jobs`], which every
/// producer of sync jobs shares.
pub use crate::jobs::{Queued, PENDING_FOR};

/// Identities looked up at once for one app-wide notification.
const LOOKUPS_IN_FLIGHT: usize = 8;

/// A webhook body is at most 1 MB (10^6 bytes: docs/API.md, "Push notifications"); more is 413
/// `payload_too_large`, refused while reading, so a bigger one is never held whole.
pub const MAX_BODY_BYTES: usize = 1_000_000;

/// A webhook's answer comes within 2 seconds (docs/API.md, "Push notifications").
pub const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// No new step (a lookup, a write, a job) starts after this: what was not done by then is
/// answered 503, and the provider sends the notification again (Graph, Google and Dropbox
/// all retry a failed delivery), when the jobs already queued coalesce it.
const WORK_WITHIN: std::time::Duration = std::time::Duration::from_millis(1500);

/// A step that started in time but hangs (a stalled store) is dropped here, leaving the
/// rest of [`ANSWER_WITHIN`] to answer.
const STOP_AFTER: std::time::Duration = std::time::Duration::from_millis(1800);
const _: () = assert!(
    WORK_WITHIN.as_millis() < STOP_AFTER.as_millis()
        && STOP_AFTER.as_millis() < ANSWER_WITHIN.as_millis()
);

/// Runs a notification's work within the route's answer time: at [`STOP_AFTER`] whatever is
/// under way is dropped and the answer is 503. A step dropped between a push mark and its
/// job leaves the mark to expire ([`PENDING_FOR`]); the schedule's polling covers that.
async fn within_answer_time<T>(
    work: impl std::future::Future<Output = HubResult<T>>,
) -> HubResult<T> {
    tokio::time::timeout(STOP_AFTER, work)
        .await
        .unwrap_or_else(|_| {
            tracing::warn!("push notification cut at its answer time");
            Err(HubError::Unavailable(
                "push notification not handled within its answer time".into(),
            ))
        })
}

/// Refuses to start another step once the work deadline passed.
fn time_left(deadline: &Deadline) -> HubResult<()> {
    if deadline.passed() {
        tracing::warn!("push notification unfinished at its deadline");
        return Err(HubError::Unavailable(
            "push notification unfinished at its deadline".into(),
        ));
    }
    Ok(())
}

/// An app-wide webhook notification (Dropbox's): `signature` is the header its provider's
/// [`crate::providers::Webhook::AppSigned`] names, `body` the raw body, checked before it is
/// read. Every connected account of each provider identity it names gets a push job (one
/// identity may be connected by several owners). With `HUB_PUSH=off` an authentic
/// notification is answered and queues nothing.
pub async fn app_notification(
    hub: &Hub,
    provider: &str,
    signature: Option<&str>,
    body: &[u8],
) -> HubResult<Queued> {
    let deadline = Deadline::after(WORK_WITHIN);
    within_answer_time(take_app_notification(
        hub, provider, signature, body, deadline,
    ))
    .await
}

async fn take_app_notification(
    hub: &Hub,
    provider: &str,
    signature: Option<&str>,
    body: &[u8],
    deadline: Deadline,
) -> HubResult<Queued> {
    let connector = hub.providers.get(provider)?;
    let provider = connector.name().as_str();
    let identities = connector
        .app_notification(signature, body)
        .map_err(|refusal| refused(provider, refusal))?;
    if !hub.config.push {
        tracing::info!(provider, "push notification ignored: HUB_PUSH is off");
        return Ok(Queued::default());
    }
    let mut identities: Vec<String> = identities
        .into_iter()
        // A key this long names no identity (see `MAX_KEY_LEN`): nothing to look up.
        .filter(|id| !id.is_empty() && id.len() <= MAX_KEY_LEN)
        .collect();
    identities.sort();
    identities.dedup();
    let outcomes: Vec<HubResult<Queued>> = futures::stream::iter(identities)
        .map(|identity| async move {
            time_left(&deadline)?;
            queue_for_identity(hub, provider, &identity).await
        })
        .buffer_unordered(LOOKUPS_IN_FLIGHT)
        .collect()
        .await;
    let mut queued = Queued::default();
    for outcome in outcomes {
        queued = queued.add(outcome?);
    }
    tracing::info!(
        provider,
        jobs = queued.jobs,
        coalesced = queued.coalesced,
        "push notification taken"
    );
    Ok(queued)
}

/// The answer to a refused notification: 401 for a forgery (logged without what
/// it carried), 400 for an authentic one in a shape the provider does not send.
fn refused(provider: &str, refusal: PushRefusal) -> HubError {
    match refusal {
        PushRefusal::Forged => {
            tracing::warn!(provider, "push notification refused: it does not check out");
            HubError::ForgedNotification
        }
        PushRefusal::Malformed(why) => HubError::InvalidRequest(why),
        PushRefusal::TooMany(count) => HubError::InvalidRequest(format!(
            "a notification names at most {MAX_NOTICES} items; this one names {count}"
        )),
        PushRefusal::Unsupported => {
            HubError::NotFound(format!("/webhooks/{provider} (no such notification)"))
        }
    }
}

/// Queues a push job for every active account holding the identity: a direct lookup of the
/// identity's records, never a scan.
async fn queue_for_identity(hub: &Hub, provider: &str, identity: &str) -> HubResult<Queued> {
    let mut queued = Queued::default();
    for account_id in hub.store.identity_holders(provider, identity).await? {
        // The identity records may name an account a crash left half-created or half-deleted.
        let Some(account) = hub.store.get_account(&account_id).await? else {
            continue;
        };
        queued = queued.add(queue_push_job(hub, &account).await?);
    }
    Ok(queued)
}

/// Queues one push job for the account unless one is queued and not started yet. Accounts
/// that must log in again are left alone: their sync would only be skipped.
pub async fn queue_push_job(hub: &Hub, account: &Account) -> HubResult<Queued> {
    if account.status != AccountStatus::Active {
        return Ok(Queued::default());
    }
    let job = SyncJob {
        account_id: account.id.clone(),
        provider: account.provider.clone(),
        reason: SyncReason::Push,
        requested_at: Utc::now(),
        stalled_requeues: 0,
    };
    crate::jobs::queue(hub, vec![job]).await
}

// ------------------------------------------------------------ channels kept by the worker

/// A channel that ends within this is renewed (Graph) or replaced (Drive) by the next sync
/// that finishes: with the hourly schedule, a day leaves many syncs to do it before it ends.
pub const RENEW_WITHIN: Duration = Duration::days(1);

/// Asked a little short of the provider's longest life, so that clocks a few seconds apart
/// never make the request too long.
const LIFETIME_MARGIN: Duration = Duration::minutes(1);

/// A channel the provider never confirmed (its subscribe call failed, or its worker died)
/// is forgotten after this.
const UNCONFIRMED_FOR: Duration = Duration::minutes(10);

/// Keeps the account's push channel alive after a successful sync (with `HUB_PUSH=on`, for
/// providers with per-account channels): opens one when none is live; when the live one ends
/// within [`RENEW_WITHIN`], or the provider asked for its renewal (Graph's
/// `reauthorizationRequired`), renews it in place where the provider can (Graph's `PATCH`),
/// else, or when that fails, opens a new one (new id, new secret) and then stops the old. A
/// new channel is stored before the provider is asked, since its first notification may come
/// before the call returns. Never fails the sync: a failure is logged, and the next sync tries
/// again.
pub async fn keep_channel(
    hub: &Hub,
    connector: &dyn Connector,
    account: &Account,
    tokens: &TokenSet,
    deadline: Deadline,
) {
    if !hub.config.push
        || connector.push_style() != PushStyle::Channels
        || account.status != AccountStatus::Active
    {
        return;
    }
    let needed = connector.channel_scopes();
    if !needed.is_empty() && !OAuthApp::granted_any(&account.scopes, needed) {
        tracing::debug!("the grant cannot open a push channel; polling keeps the account fresh");
        return;
    }
    if let Err(error) = renew_if_due(hub, connector, account, tokens, deadline).await {
        tracing::warn!(error = %error, "push channel not kept; the next sync tries again");
    }
}

async fn renew_if_due(
    hub: &Hub,
    connector: &dyn Connector,
    account: &Account,
    tokens: &TokenSet,
    deadline: Deadline,
) -> HubResult<()> {
    let now = Utc::now();
    let channels = hub.store.account_channels(&account.id).await?;
    let current = channels
        .iter()
        .filter(|channel| channel.live(now))
        .max_by_key(|channel| channel.created_at);
    if let Some(current) = current {
        if !current.renew && current.live(now + RENEW_WITHIN) {
            return Ok(());
        }
        // In place where the provider can (Graph's PATCH); else, or if that fails (the
        // subscription is gone), a new one replaces it.
        let until = now + connector.channel_lifetime() - LIFETIME_MARGIN;
        match deadline
            .bound(connector.renew_channel(&tokens.access_token, current, until))
            .await
        {
            Ok(Some(expires_at)) => {
                let renewed = PushChannel {
                    expires_at,
                    renew: false,
                    ..current.clone()
                };
                if !keep_if_account_live(hub, &renewed).await? {
                    // Deleted during the renewal: its DELETE may have stopped the
                    // subscription before the renewal reached it, or not. Stop it again.
                    close_for_deleted_account(hub, connector, tokens, &renewed, deadline).await;
                    return Ok(());
                }
                tracing::info!(channel_id = %renewed.id, %expires_at, "push channel renewed");
                return Ok(());
            }
            Ok(None) => {}
            Err(error) => {
                tracing::info!(channel_id = %current.id, error = %error, "push channel not renewed in place; replacing it")
            }
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let secret = channel_secret(&id);
    let mut channel = PushChannel {
        provider: account.provider.clone(),
        id,
        account_id: account.id.clone(),
        secret_hash: secret_hash(&secret),
        resource_id: None,
        expires_at: now + connector.channel_lifetime() - LIFETIME_MARGIN,
        created_at: now,
        renew: false,
    };
    if !keep_if_account_live(hub, &channel).await? {
        tracing::info!("account deleted since its sync read it; no push channel opened");
        return Ok(());
    }
    let address = format!("{}/webhooks/{}", hub.config.public_url, account.provider);
    let request = ChannelRequest {
        id: &channel.id,
        address: &address,
        secret: &secret,
        expires_at: channel.expires_at,
        cursor: account.cursor.as_deref(),
    };
    let opened = match deadline
        .bound(connector.open_channel(&tokens.access_token, &request))
        .await
    {
        Ok(opened) => opened,
        Err(error) => {
            hub.store.delete_channel(&channel).await?;
            return Err(error.into());
        }
    };
    channel.resource_id = Some(opened.resource_id);
    channel.expires_at = opened.expires_at;
    if !keep_if_account_live(hub, &channel).await? {
        // A DELETE ran during the subscribe call: it found only the unconfirmed record, so
        // nothing stopped what the provider just opened. Stop it here, and store nothing.
        close_for_deleted_account(hub, connector, tokens, &channel, deadline).await;
        return Ok(());
    }
    tracing::info!(channel_id = %channel.id, expires_at = %channel.expires_at, "push channel opened");
    // The old ones: live ones are stopped at the provider, the others only forgotten (an
    // unconfirmed one of a sync running now is left to that sync).
    for old in channels {
        if old.resource_id.is_none() && old.created_at > now - UNCONFIRMED_FOR {
            continue;
        }
        close(hub, connector, tokens, &old, deadline).await;
    }
    Ok(())
}

/// Stores the channel only while its account is live (true), in one atomic step with the
/// check ([`crate::store::PushStore::put_channel_if_account_live`]). Every channel write after a
/// provider call or a notice goes through here, so that a `DELETE` that ran meanwhile is
/// not undone: the one place that says what "the account still exists" means to push.
async fn keep_if_account_live(hub: &Hub, channel: &PushChannel) -> HubResult<bool> {
    Ok(hub.store.put_channel_if_account_live(channel).await? == Write::Done)
}

/// What a worker opened or renewed for an account deleted meanwhile: stopped at the
/// provider (Graph `DELETE /subscriptions/{id}`, Drive `channels/stop`) with the tokens the
/// sync holds, and no record kept.
async fn close_for_deleted_account(
    hub: &Hub,
    connector: &dyn Connector,
    tokens: &TokenSet,
    channel: &PushChannel,
    deadline: Deadline,
) {
    tracing::info!(channel_id = %channel.id, "account deleted during the provider call; stopping the push channel");
    close(hub, connector, tokens, channel, deadline).await;
}

/// Stops a channel at the provider (best effort, logged) and forgets it.
async fn close(
    hub: &Hub,
    connector: &dyn Connector,
    tokens: &TokenSet,
    channel: &PushChannel,
    deadline: Deadline,
) {
    if channel.live(Utc::now()) {
        match deadline
            .bound(connector.close_channel(&tokens.access_token, channel))
            .await
        {
            Ok(()) => tracing::info!(channel_id = %channel.id, "push channel stopped"),
            Err(error) => {
                tracing::warn!(channel_id = %channel.id, error = %error, "push channel not stopped; it ends at its expiry")
            }
        }
    }
    if let Err(error) = hub.store.delete_channel(channel).await {
        tracing::warn!(channel_id = %channel.id, error = %error, "push channel record not removed");
    }
}

/// `DELETE /users/{id}`: stops the account's channels first (the provider needs the live
/// token for that), best effort and never past `deadline`; their records go with the account.
pub async fn close_channels(hub: &Hub, account: &Account, deadline: Deadline) {
    let Ok(connector) = hub.providers.get(&account.provider) else {
        return;
    };
    if connector.push_style() != PushStyle::Channels {
        return;
    }
    let channels = match hub.store.account_channels(&account.id).await {
        Ok(channels) if channels.is_empty() => return,
        Ok(channels) => channels,
        Err(error) => {
            tracing::warn!(error = %error, "push channels not read; not stopped");
            return;
        }
    };
    let tokens = match crate::tokens::open(hub.cipher.as_ref(), account).await {
        Ok(tokens) => tokens,
        Err(error) => {
            tracing::warn!(error = %error, "tokens unreadable; push channels not stopped");
            return;
        }
    };
    for channel in channels {
        close(hub, connector.as_ref(), &tokens, &channel, deadline).await;
    }
}

/// A notification on a channel: `channel_id` must name a live channel of `provider` (one key
/// lookup) and `secret` match its secret (compared in constant time), else it is refused as
/// forged and queues nothing. A `handshake` (Drive's `sync` message, sent when the channel
/// opens) is taken and queues nothing either.
pub async fn channel_notification(
    hub: &Hub,
    provider: &str,
    channel_id: Option<&str>,
    secret: Option<&str>,
    handshake: bool,
) -> HubResult<Queued> {
    let deadline = Deadline::after(WORK_WITHIN);
    within_answer_time(take_channel_notification(
        hub, provider, channel_id, secret, handshake, deadline,
    ))
    .await
}

async fn take_channel_notification(
    hub: &Hub,
    provider: &str,
    channel_id: Option<&str>,
    secret: Option<&str>,
    handshake: bool,
    deadline: Deadline,
) -> HubResult<Queued> {
    let found = match channel_id {
        Some(id) => hub.store.get_channel(provider, id).await?,
        None => None,
    };
    let Some(channel) = found.filter(|channel| channel.expires_at > Utc::now()) else {
        tracing::warn!(provider, "push notification refused: no such live channel");
        return Err(HubError::ForgedNotification);
    };
    if !secret_matches(&channel, secret) {
        tracing::warn!(provider, channel_id = %channel.id, "push notification refused: wrong channel secret");
        return Err(HubError::ForgedNotification);
    }
    if handshake || !hub.config.push {
        return Ok(Queued::default());
    }
    time_left(&deadline)?;
    let Some(account) = hub.store.get_account(&channel.account_id).await? else {
        return Ok(Queued::default());
    };
    time_left(&deadline)?;
    let queued = queue_push_job(hub, &account).await?;
    tracing::info!(provider, account_id = %account.id, jobs = queued.jobs, coalesced = queued.coalesced, "push notification taken");
    Ok(queued)
}

/// A channel's secret: its own id, a dot, and 32 random bytes in base64url (80 characters;
/// Drive allows 256, Graph's `clientState` 128). The id in front lets a Graph notice, which
/// names only Graph's subscription id, find the channel stored before Graph named it, with
/// one key lookup.
fn channel_secret(id: &str) -> SecretString {
    let mut random = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut random);
    SecretString::from(format!("{id}.{}", B64URL.encode(random)))
}

/// Whether `presented` is the channel's secret: its hash compared in constant time.
fn secret_matches(channel: &PushChannel, presented: Option<&str>) -> bool {
    presented.is_some_and(|secret| {
        let hash = secret_hash(&SecretString::from(secret.to_string()));
        bool::from(hash.as_bytes().ct_eq(channel.secret_hash.as_bytes()))
    })
}

/// What is stored of a channel secret: its SHA-256, hex.
fn secret_hash(secret: &SecretString) -> String {
    hex::encode(Sha256::digest(secret.expose_secret().as_bytes()))
}

/// A notification for subscriptions (Graph's `{"value": [...]}`, at most [`MAX_NOTICES`]
/// items): each item must carry its subscription's secret (`clientState`), whose channel id
/// part names the stored channel; the channels of all items are read in one batch, each
/// once. Items that do not check out are ignored (and counted in the logs, without their
/// secret), as Graph's documentation says. A change or `missed` queues the push job;
/// `reauthorizationRequired` marks the channel for renewal (only while its account is live)
/// and `subscriptionRemoved` forgets it, each with a push job whose sync then renews or
/// re-creates it: the route itself makes no provider call. With `HUB_PUSH=off` the items
/// are read and nothing is looked up.
pub async fn subscription_notification(
    hub: &Hub,
    provider: &str,
    body: &[u8],
) -> HubResult<Queued> {
    let deadline = Deadline::after(WORK_WITHIN);
    within_answer_time(take_subscription_notices(hub, provider, body, deadline)).await
}

async fn take_subscription_notices(
    hub: &Hub,
    provider: &str,
    body: &[u8],
    deadline: Deadline,
) -> HubResult<Queued> {
    let connector = hub.providers.get(provider)?;
    let notices = connector
        .subscription_notices(body)
        .map_err(|refusal| refused(provider, refusal))?;
    if !hub.config.push {
        tracing::info!(provider, "push notification ignored: HUB_PUSH is off");
        return Ok(Queued::default());
    }
    // Each channel once, however many items name it.
    let ids: Vec<String> = notices
        .iter()
        .filter_map(channel_id_of)
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .map(str::to_string)
        .collect();
    let channels: HashMap<String, PushChannel> = if ids.is_empty() {
        HashMap::new()
    } else {
        hub.store
            .get_channels(provider, &ids, deadline)
            .await?
            .into_iter()
            .map(|channel| (channel.id.clone(), channel))
            .collect()
    };
    // What the checked items ask, each channel and account once however often it is named.
    let now = Utc::now();
    let mut renew: BTreeMap<&str, &PushChannel> = BTreeMap::new();
    let mut removed: BTreeMap<&str, &PushChannel> = BTreeMap::new();
    let mut accounts: BTreeSet<&str> = BTreeSet::new();
    let mut ignored = 0usize;
    for notice in &notices {
        let Some(channel) = checked_channel(&channels, notice, now) else {
            ignored += 1;
            continue;
        };
        match notice.event {
            NoticeEvent::Changed | NoticeEvent::Missed => {}
            NoticeEvent::RenewalRequired => {
                renew.insert(&channel.id, channel);
            }
            NoticeEvent::Removed => {
                removed.insert(&channel.id, channel);
            }
        }
        accounts.insert(&channel.account_id);
    }
    if ignored > 0 {
        tracing::warn!(
            provider,
            ignored,
            "subscription notices ignored: they do not check out"
        );
    }
    for (id, channel) in renew {
        if removed.contains_key(id) {
            continue;
        }
        time_left(&deadline)?;
        let marked = PushChannel {
            renew: true,
            ..channel.clone()
        };
        // Conditional: a notice read before a DELETE must not bring the channel back after.
        if !keep_if_account_live(hub, &marked).await? {
            tracing::info!(channel_id = %channel.id, "renewal notice for a deleted account; ignored");
            accounts.remove(channel.account_id.as_str());
        }
    }
    for channel in removed.into_values() {
        time_left(&deadline)?;
        hub.store.delete_channel(channel).await?;
    }
    let mut queued = Queued::default();
    for account_id in accounts {
        time_left(&deadline)?;
        if let Some(account) = hub.store.get_account(account_id).await? {
            time_left(&deadline)?;
            queued = queued.add(queue_push_job(hub, &account).await?);
        }
    }
    tracing::info!(
        provider,
        jobs = queued.jobs,
        coalesced = queued.coalesced,
        "subscription notification taken"
    );
    Ok(queued)
}

/// The channel id a notice's secret names (the part before its dot), if any.
fn channel_id_of(notice: &SubscriptionNotice) -> Option<&str> {
    notice
        .secret
        .as_deref()
        .and_then(|secret| secret.split_once('.'))
        .map(|(id, _)| id)
}

/// The stored channel a notice is for, when the notice is to be honoured: the channel has not
/// expired, the notice carries its secret, and it names the channel's subscription. A channel
/// the provider has not confirmed yet (the notice came before Graph's answer to the subscribe
/// call: docs/API.md, "Push notifications") takes a change or `missed`, which only queue a
/// sync, and for [`UNCONFIRMED_FOR`] at most; never a lifecycle notice that would write or
/// remove it, since nothing yet ties it to the subscription the notice names.
fn checked_channel<'a>(
    channels: &'a HashMap<String, PushChannel>,
    notice: &SubscriptionNotice,
    now: chrono::DateTime<Utc>,
) -> Option<&'a PushChannel> {
    let channel = channels.get(channel_id_of(notice)?)?;
    if channel.expires_at <= now {
        return None;
    }
    let named = match channel.resource_id.as_deref() {
        Some(subscription) => subscription == notice.subscription_id,
        None => {
            matches!(notice.event, NoticeEvent::Changed | NoticeEvent::Missed)
                && channel.created_at > now - UNCONFIRMED_FOR
        }
    };
    (named && secret_matches(channel, notice.secret.as_deref())).then_some(channel)
}
