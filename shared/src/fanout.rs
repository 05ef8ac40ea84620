//! Sync fan-out: one job per matching active account onto the queue (`POST /sync` and the
//! schedule).

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use crate::model::{Account, AccountStatus, SyncJob, SyncReason};
use crate::providers::Registry;

/// Accounts read, and jobs queued, per round: the fan-out never holds all accounts at once.
const PAGE: usize = 500;

/// The body of `POST /sync`; both fields optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    pub source_type: Option<String>,
    pub user_id: Option<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct SyncStarted {
    pub message: &'static str,
    pub target_providers: Vec<&'static str>,
    pub jobs_enqueued: usize,
}

/// The providers a `source_type` names: `both` (every configured one) or one provider.
fn target_providers(
    registry: &Registry,
    source_type: Option<&str>,
) -> HubResult<Vec<&'static str>> {
    match source_type.unwrap_or("both") {
        "both" => Ok(registry.configured_names()),
        name if Registry::is_known(name) => Ok(vec![registry.get(name, true)?.name()]),
        other => Err(HubError::InvalidSourceType(other.to_string())),
    }
}

fn job(account: &Account, reason: SyncReason) -> SyncJob {
    SyncJob {
        user_id: account.id.clone(),
        provider: account.provider.clone(),
        reason,
        requested_at: Utc::now(),
    }
}

pub async fn start(hub: &Hub, request: SyncRequest, reason: SyncReason) -> HubResult<SyncStarted> {
    let targets = target_providers(&hub.providers, request.source_type.as_deref())?;
    let mut jobs_enqueued = 0;
    if let Some(user_id) = &request.user_id {
        let account = hub
            .store
            .get_account(user_id)
            .await?
            .ok_or_else(|| HubError::UserNotFound(user_id.clone()))?;
        if account.status == AccountStatus::Active && targets.contains(&account.provider.as_str()) {
            hub.queue.enqueue(&[job(&account, reason)]).await?;
            jobs_enqueued = 1;
        }
    } else {
        for provider in &targets {
            let mut after = None;
            loop {
                let page = hub
                    .store
                    .list_accounts(provider, after.as_deref(), PAGE)
                    .await?;
                let jobs: Vec<SyncJob> = page
                    .items
                    .iter()
                    .filter(|a| a.status == AccountStatus::Active)
                    .map(|a| job(a, reason))
                    .collect();
                hub.queue.enqueue(&jobs).await?;
                jobs_enqueued += jobs.len();
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
    }
    tracing::info!(?targets, jobs_enqueued, ?reason, "sync fan-out");
    Ok(SyncStarted {
        message: "Sync process started...",
        target_providers: targets,
        jobs_enqueued,
    })
}

/// True for the events a schedule sends: EventBridge rules (`aws.events`) and EventBridge
/// Scheduler targets whose input says so (`aws.scheduler`), both with `Scheduled Event`.
pub fn is_scheduled_event(event: &serde_json::Value) -> bool {
    let source = event.get("source").and_then(|s| s.as_str());
    let detail_type = event.get("detail-type").and_then(|s| s.as_str());
    matches!(source, Some("aws.events" | "aws.scheduler")) && detail_type == Some("Scheduled Event")
}
