//! Sync fan-out: one job per matching active account onto the queue (`POST /sync` and the
//! schedule).

use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::deadline::Deadline;
use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use crate::jobs;
use crate::model::{AccountStatus, FanOutPosition, QueueMessage, SyncJob, SyncReason};
use crate::providers::{ProviderName, Registry, PROVIDERS};

/// Account ids read per round: the fan-out never holds all accounts at once.
const PAGE: usize = 500;
/// Jobs queued between two looks at the clock (ten `SendMessageBatch` calls, and the
/// accounts' job marks, written 16 at a time: see `crate::jobs`), so that a slow queue or
/// store delays the answer by a fraction of a second, not by a whole page.
const CHUNK: usize = 100;

/// The body of `POST /sync`; both fields optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    pub source_type: Option<String>,
    /// One account to sync; `user_id` on the wire.
    #[serde(rename = "user_id")]
    pub account_id: Option<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct SyncStarted {
    pub message: &'static str,
    pub target_providers: Vec<&'static str>,
    pub jobs_enqueued: usize,
}

/// The providers a `source_type` names (docs/API.md, "Sync jobs and timing"): `all` (the
/// default: every configured one), `both` (the configured providers whose module says
/// [`crate::providers::ProviderSpec::in_both`]: Google and OneDrive) or one provider.
fn target_providers(
    registry: &Registry,
    source_type: Option<&str>,
) -> HubResult<Vec<&'static str>> {
    match source_type.unwrap_or("all") {
        "all" => Ok(as_names(registry.configured_names())),
        "both" => Ok(registry
            .configured_specs()
            .filter(|spec| spec.in_both)
            .map(|spec| spec.name.as_str())
            .collect()),
        name if Registry::is_known(name) => Ok(vec![registry.for_sync(name)?.name().as_str()]),
        other => Err(HubError::InvalidSourceType(format!(
            "the source_type must be one of {} (got '{other}')",
            source_types().join(", ")
        ))),
    }
}

/// Every value `source_type` takes, from the registry's providers, so that a new provider is
/// named in the error without anyone editing it: `all`, `both` (with its providers), then each
/// provider.
fn source_types() -> Vec<String> {
    let both: Vec<&str> = PROVIDERS
        .iter()
        .filter(|spec| spec.in_both)
        .map(|spec| spec.name.as_str())
        .collect();
    let mut values = vec![
        "'all' (every configured provider)".to_string(),
        format!("'both' ({})", both.join(" and ")),
    ];
    values.extend(
        PROVIDERS
            .iter()
            .map(|spec| format!("'{}'", spec.name.as_str())),
    );
    values
}

fn as_names(names: Vec<ProviderName>) -> Vec<&'static str> {
    names.into_iter().map(ProviderName::as_str).collect()
}

fn job(account_id: &str, provider: &str, reason: SyncReason) -> SyncJob {
    SyncJob {
        account_id: account_id.to_string(),
        provider: provider.to_string(),
        reason,
        requested_at: Utc::now(),
        stalled_requeues: 0,
    }
}

/// How long `POST /sync` queues jobs before handing the rest to a continuation: the answer
/// comes within a few seconds whatever the number of accounts (API Gateway allows 29 s; the
/// benchmarks showed a longer budget only makes the caller wait, as the continuation
/// carries the rest anyway). Never past the invocation's own deadline.
pub const HTTP_BUDGET: Duration = Duration::from_secs(3);
/// Kept back from a fan-out invocation's deadline: the chunk under way when the budget runs
/// out (ten `SendMessageBatch` calls, each retried for up to about 3 s) and the continuation.
pub const RESERVE: Duration = crate::deployment::SYNC_FANOUT.reserve;
/// The scheduled fan-out's Lambda timeout (`template.yaml`), the budget when the invocation
/// states no usable deadline.
pub const FUNCTION_TIMEOUT: Duration = crate::deployment::SYNC_FANOUT.timeout;
/// How long a claimed step is remembered: longer than SQS keeps a message (14 days at most),
/// so no redelivery outlives it.
const CLAIM_DAYS: i64 = 15;
const _: () =
    assert!(CLAIM_DAYS as u64 * 86_400 > crate::deployment::SYNC_QUEUE.message_retention.as_secs());

/// Who asked for a fan-out, and until when it may run.
#[derive(Clone, Debug)]
pub struct Trigger {
    pub reason: SyncReason,
    /// The invocation's deadline less [`RESERVE`]; `POST /sync` stops sooner, after
    /// [`HTTP_BUDGET`].
    pub deadline: Deadline,
    /// Names the chain of continuations: the schedule's event id, so that Lambda's retry of
    /// the same event claims the same first step and does nothing twice.
    pub chain: String,
}

impl Trigger {
    /// `chain` names the fan-out when its trigger has an id of its own that a retry keeps;
    /// otherwise it is a new one.
    pub fn new(reason: SyncReason, deadline: Deadline, chain: Option<&str>) -> Self {
        Trigger {
            reason,
            deadline,
            chain: chain.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string),
        }
    }
}

pub async fn start(hub: &Hub, request: SyncRequest, trigger: Trigger) -> HubResult<SyncStarted> {
    let reason = trigger.reason;
    let targets = target_providers(&hub.providers, request.source_type.as_deref())?;
    let jobs_enqueued = match &request.account_id {
        Some(account_id) => {
            let account = hub
                .store
                .get_account(account_id)
                .await?
                .ok_or_else(|| HubError::AccountNotFound(account_id.clone()))?;
            if account.status == AccountStatus::Active
                && targets.contains(&account.provider.as_str())
            {
                // Counted when a job of the account was already waiting too: one is on the
                // queue for it (`crate::jobs`).
                jobs::queue(hub, vec![job(&account.id, &account.provider, reason)]).await?;
                1
            } else {
                0
            }
        }
        None => {
            let deadline = match reason {
                SyncReason::Manual => trigger.deadline.earlier(Deadline::after(HTTP_BUDGET)),
                // Push jobs are queued one by one by `provider-webhooks`, never fanned out.
                SyncReason::Schedule | SyncReason::Push => trigger.deadline,
            };
            let position = FanOutPosition {
                providers: targets.iter().map(|p| p.to_string()).collect(),
                after: None,
                reason,
                chain: trigger.chain,
                step: 0,
            };
            fan_out(hub, position, deadline).await?
        }
    };
    tracing::info!(?targets, jobs_enqueued, ?reason, "sync fan-out");
    Ok(SyncStarted {
        message: "Sync process started...",
        target_providers: targets,
        jobs_enqueued,
    })
}

/// The claim of one step of a chain.
fn step_key(position: &FanOutPosition) -> String {
    format!("fanout#{}#{}", position.chain, position.step)
}

/// Queues a job per active account from `position` on, a page at a time. When `deadline`
/// comes first, the rest goes on the queue as the chain's next step, which the worker picks
/// up, so no invocation ever has to list every account. Each step runs once: a step already
/// claimed (a redelivered or duplicated continuation, a retried schedule) queues nothing; a
/// step that fails gives its claim back, for the queue's retry. Returns the jobs queued.
pub async fn fan_out(hub: &Hub, position: FanOutPosition, deadline: Deadline) -> HubResult<usize> {
    let key = step_key(&position);
    let expires_at = Utc::now() + chrono::Duration::days(CLAIM_DAYS);
    if !hub.store.claim(&key, expires_at).await? {
        tracing::info!(chain = %position.chain, step = position.step, "fan-out step already done; dropped");
        return Ok(0);
    }
    let result = fan_out_step(hub, position, deadline).await;
    if result.is_err() {
        // Best effort: the error itself is what the caller acts on.
        let _ = hub.store.release_claim(&key).await;
    }
    result
}

async fn fan_out_step(
    hub: &Hub,
    mut position: FanOutPosition,
    deadline: Deadline,
) -> HubResult<usize> {
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
            let jobs: Vec<SyncJob> = chunk
                .iter()
                .map(|id| job(id, &provider, position.reason))
                .collect();
            // An account whose job already waits (queued, or requeued by its sync) gets none
            // on top: it counts as queued, since one is on the queue for it.
            let done = jobs::queue(hub, jobs).await?;
            if done.coalesced > 0 {
                tracing::info!(
                    coalesced = done.coalesced,
                    "accounts whose job was already waiting"
                );
            }
            queued += done.jobs + done.coalesced;
            match (chunk.last(), &page.next) {
                (Some(id), _) if !rest.is_empty() => position.after = Some(id.clone()),
                (_, Some(next)) => position.after = Some(next.clone()),
                (_, None) => {
                    position.providers.remove(0);
                    position.after = None;
                }
            }
            // At least one chunk per invocation, so a continuation always makes progress.
            if !position.providers.is_empty() && deadline.passed() {
                position.step += 1;
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
