//! Sync fan-out: one job per matching active account onto the queue (`POST /sync` and the
//! schedule).

use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use crate::model::{AccountStatus, FanOutPosition, QueueMessage, SyncJob, SyncReason};
use crate::providers::Registry;

/// Account ids read per round: the fan-out never holds all accounts at once.
const PAGE: usize = 500;
/// Jobs queued between two looks at the clock (ten `SendMessageBatch` calls), so that a
/// slow queue or store delays the answer by a fraction of a second, not by a whole page.
const CHUNK: usize = 100;

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
        name if Registry::is_known(name) => Ok(vec![registry.for_sync(name)?.name()]),
        other => Err(HubError::InvalidSourceType(other.to_string())),
    }
}

fn job(account_id: &str, provider: &str, reason: SyncReason) -> QueueMessage {
    QueueMessage::Sync(SyncJob {
        account_id: account_id.to_string(),
        provider: provider.to_string(),
        reason,
        requested_at: Utc::now(),
    })
}

/// How long `POST /sync` queues jobs before handing the rest to a continuation: the answer
/// comes within a few seconds whatever the number of accounts (API Gateway allows 29 s; the
/// benchmarks showed a longer budget only makes the caller wait, as the continuation
/// carries the rest anyway).
pub const HTTP_BUDGET: Duration = Duration::from_secs(3);
/// The same for the schedule and for continuations run by the worker (a 120 s function).
pub const BACKGROUND_BUDGET: Duration = Duration::from_secs(60);

pub async fn start(hub: &Hub, request: SyncRequest, reason: SyncReason) -> HubResult<SyncStarted> {
    let targets = target_providers(&hub.providers, request.source_type.as_deref())?;
    let jobs_enqueued = match &request.user_id {
        Some(user_id) => {
            let account = hub
                .store
                .get_account(user_id)
                .await?
                .ok_or_else(|| HubError::UserNotFound(user_id.clone()))?;
            if account.status == AccountStatus::Active
                && targets.contains(&account.provider.as_str())
            {
                hub.queue
                    .enqueue(&[job(&account.id, &account.provider, reason)])
                    .await?;
                1
            } else {
                0
            }
        }
        None => {
            let budget = match reason {
                SyncReason::Manual => HTTP_BUDGET,
                SyncReason::Schedule => BACKGROUND_BUDGET,
            };
            let position = FanOutPosition {
                providers: targets.iter().map(|p| p.to_string()).collect(),
                after: None,
                reason,
            };
            fan_out(hub, position, budget).await?
        }
    };
    tracing::info!(?targets, jobs_enqueued, ?reason, "sync fan-out");
    Ok(SyncStarted {
        message: "Sync process started...",
        target_providers: targets,
        jobs_enqueued,
    })
}

/// Queues a job per active account from `position` on, a page at a time. When `budget` runs
/// out first, the rest goes on the queue as a continuation that the worker picks up, so no
/// invocation ever has to list every account. Returns the jobs queued by this call.
pub async fn fan_out(
    hub: &Hub,
    mut position: FanOutPosition,
    budget: Duration,
) -> HubResult<usize> {
    let deadline = Instant::now() + budget;
    let mut queued = 0;
    while let Some(provider) = position.providers.first().cloned() {
        let page = hub
            .store
            .list_active_account_ids(&provider, position.after.as_deref(), PAGE)
            .await?;
        // An empty page still goes round once, to move on to its `next`.
        let mut rest = page.items.as_slice();
        loop {
            let (chunk, after_chunk) = rest.split_at(rest.len().min(CHUNK));
            rest = after_chunk;
            let jobs: Vec<QueueMessage> = chunk
                .iter()
                .map(|id| job(id, &provider, position.reason))
                .collect();
            hub.queue.enqueue(&jobs).await?;
            queued += jobs.len();
            match (chunk.last(), &page.next) {
                (Some(id), _) if !rest.is_empty() => position.after = Some(id.clone()),
                (_, Some(next)) => position.after = Some(next.clone()),
                (_, None) => {
                    position.providers.remove(0);
                    position.after = None;
                }
            }
            // At least one chunk per invocation, so a continuation always makes progress.
            if !position.providers.is_empty() && Instant::now() >= deadline {
                tracing::info!(queued, ?position, "fan-out continues in the background");
                hub.queue
                    .enqueue(&[QueueMessage::FanOut {
                        continue_fanout: position,
                    }])
                    .await?;
                return Ok(queued);
            }
            if rest.is_empty() {
                break;
            }
        }
    }
    Ok(queued)
}

/// True for the events a schedule sends: EventBridge rules (`aws.events`) and EventBridge
/// Scheduler targets whose input says so (`aws.scheduler`), both with `Scheduled Event`.
pub fn is_scheduled_event(event: &serde_json::Value) -> bool {
    let source = event.get("source").and_then(|s| s.as_str());
    let detail_type = event.get("detail-type").and_then(|s| s.as_str());
    matches!(source, Some("aws.events" | "aws.scheduler")) && detail_type == Some("Scheduled Event")
}
