//! Events to the app (contract section 7): what happened to an account, put on the events
//! queue by the code that made it happen, and delivered to `HUB_WEBHOOK_URL` by the
//! `app-webhooks` function ([`crate::delivery`]).
//!
//! An event gets its `webhook-id` and its body when it is produced: the queue carries both,
//! so every delivery attempt sends the same id and the same bytes (only `webhook-timestamp`
//! and the signature are per attempt). Event data is built from the account's public fields
//! only (the `/users` row and its parts): there is no field a token could travel in.
//!
//! Producers queue the event before they acknowledge the change it reports (the HTTP answer,
//! or the sync job's completion), and a failure to queue fails that request or job: a crash
//! in between loses no event silently, at worst it is queued for a change that is then
//! retried (the README's "Events to the app").

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::error::{HubError, HubResult};
use crate::hub::Hub;
/// The queue's record of an event lives with the other records ([`crate::model`]), below
/// the queues that carry it; it is named here too, where events are made.
pub use crate::model::QueuedEvent;
use crate::model::{Account, AccountView, SyncReason};

/// `account.reauth_required` data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReauthRequired {
    pub account_id: String,
    pub owner: Option<String>,
    pub provider: String,
    pub email: String,
}

/// `account.deleted` data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deleted {
    pub account_id: String,
    pub owner: Option<String>,
    pub provider: String,
}

/// `sync.completed` data: what one sync stored (entries present, entries marked deleted).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyncCompleted {
    pub account_id: String,
    pub owner: Option<String>,
    pub provider: String,
    pub reason: SyncReason,
    pub files_changed: u64,
    pub files_deleted: u64,
}

/// One event, before it is queued.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    AccountConnected(AccountView),
    ReauthRequired(ReauthRequired),
    Deleted(Deleted),
    SyncCompleted(SyncCompleted),
}

impl Event {
    pub fn connected(account: &AccountView) -> Self {
        Event::AccountConnected(account.clone())
    }

    pub fn reauth_required(account: &Account) -> Self {
        Event::ReauthRequired(ReauthRequired {
            account_id: account.id.clone(),
            owner: account.owner.clone(),
            provider: account.provider.clone(),
            email: account.email.clone(),
        })
    }

    pub fn deleted(account: &Account) -> Self {
        Event::Deleted(Deleted {
            account_id: account.id.clone(),
            owner: account.owner.clone(),
            provider: account.provider.clone(),
        })
    }

    /// `None` when the sync stored nothing: the contract sends `sync.completed` only for a
    /// sync that stored at least one change.
    pub fn sync_completed(
        account: &Account,
        reason: SyncReason,
        files_changed: u64,
        files_deleted: u64,
    ) -> Option<Self> {
        (files_changed + files_deleted > 0).then(|| {
            Event::SyncCompleted(SyncCompleted {
                account_id: account.id.clone(),
                owner: account.owner.clone(),
                provider: account.provider.clone(),
                reason,
                files_changed,
                files_deleted,
            })
        })
    }

    /// The contract's event type.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::AccountConnected(_) => "account.connected",
            Event::ReauthRequired(_) => "account.reauth_required",
            Event::Deleted(_) => "account.deleted",
            Event::SyncCompleted(_) => "sync.completed",
        }
    }

    fn data(&self) -> serde_json::Result<serde_json::Value> {
        match self {
            Event::AccountConnected(data) => serde_json::to_value(data),
            Event::ReauthRequired(data) => serde_json::to_value(data),
            Event::Deleted(data) => serde_json::to_value(data),
            Event::SyncCompleted(data) => serde_json::to_value(data),
        }
    }

    /// The event with its id and body fixed, as it goes on the queue.
    pub fn produce(&self, at: DateTime<Utc>) -> HubResult<QueuedEvent> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            timestamp: String,
            data: serde_json::Value,
        }
        let body = Body {
            kind: self.kind(),
            timestamp: at.to_rfc3339_opts(SecondsFormat::Millis, true),
            data: self.data().map_err(HubError::internal)?,
        };
        Ok(QueuedEvent {
            // The `msg_` prefix is the specification's example convention for ids.
            webhook_id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
            kind: self.kind().to_string(),
            body: serde_json::to_string(&body).map_err(HubError::internal)?,
        })
    }
}

/// Queues `event` when events are on (`HUB_WEBHOOK_URL` set); without it, nothing happens
/// and no queue is called. An error here is the queue's, and fails the caller: see the
/// module's note on crashes.
pub async fn emit(hub: &Hub, event: Event) -> HubResult<()> {
    let Some(queue) = &hub.events else {
        return Ok(());
    };
    let queued = event.produce(Utc::now())?;
    queue.publish(&queued).await?;
    tracing::info!(webhook_id = %queued.webhook_id, event_type = %queued.kind, "event queued");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Sealed;
    use crate::model::AccountStatus;

    fn account() -> Account {
        Account {
            id: "a1".into(),
            provider: "google".into(),
            provider_user_id: "u1".into(),
            owner: None,
            email: "a@example.com".into(),
            status: AccountStatus::Active,
            connected_at: Utc::now(),
            last_synced_at: None,
            last_sync: None,
            has_refresh_token: true,
            tokens: Sealed {
                data_key: None,
                nonce: "n".into(),
                ciphertext: "sealed".into(),
            },
            cursor: None,
            listing: Default::default(),
            unreported: Default::default(),
            lease: None,
            drives: Vec::new(),
            feed_seq: 0,
            version: 1,
        }
    }

    #[test]
    fn bodies_have_the_contract_shape() {
        let account = account();
        let view = AccountView::from(&account);
        let at = "2026-01-02T03:04:05Z".parse().unwrap();
        let connected = Event::connected(&view).produce(at).unwrap();
        assert!(connected.webhook_id.starts_with("msg_"));
        let body: serde_json::Value = serde_json::from_str(&connected.body).unwrap();
        assert_eq!(body["type"], "account.connected");
        assert_eq!(body["timestamp"], "2026-01-02T03:04:05.000Z");
        assert_eq!(body["data"], serde_json::to_value(&view).unwrap());
        assert_eq!(body["data"]["owner"], serde_json::Value::Null);

        let reauth: serde_json::Value =
            serde_json::from_str(&Event::reauth_required(&account).produce(at).unwrap().body)
                .unwrap();
        assert_eq!(reauth["type"], "account.reauth_required");
        assert_eq!(
            reauth["data"],
            serde_json::json!({"account_id": account.id, "owner": null, "provider": "google", "email": account.email})
        );

        let deleted: serde_json::Value =
            serde_json::from_str(&Event::deleted(&account).produce(at).unwrap().body).unwrap();
        assert_eq!(
            deleted["data"],
            serde_json::json!({"account_id": account.id, "owner": null, "provider": "google"})
        );

        let synced = Event::sync_completed(&account, SyncReason::Manual, 3, 1).unwrap();
        let synced: serde_json::Value =
            serde_json::from_str(&synced.produce(at).unwrap().body).unwrap();
        assert_eq!(synced["type"], "sync.completed");
        assert_eq!(
            synced["data"],
            serde_json::json!({"account_id": account.id, "owner": null, "provider": "google",
                "reason": "manual", "files_changed": 3, "files_deleted": 1})
        );
    }

    #[test]
    fn a_sync_that_stored_nothing_has_no_event() {
        assert_eq!(
            Event::sync_completed(&account(), SyncReason::Schedule, 0, 0),
            None
        );
    }

    #[test]
    fn every_event_gets_its_own_id_once() {
        let event = Event::deleted(&account());
        let at = Utc::now();
        let (a, b) = (event.produce(at).unwrap(), event.produce(at).unwrap());
        assert_ne!(a.webhook_id, b.webhook_id);
        // The queue carries id and body together: a redelivery reads both back unchanged.
        let carried: QueuedEvent =
            serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(carried, a);
    }
}
