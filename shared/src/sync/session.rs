//! One sync job from end to end, in three steps ([`run`]): the job starts (its coalescing
//! mark is cleared), the account syncs, and push upkeep follows a sync that finished. The
//! sync itself is the orchestration of its steps over one [`Session`]: the refresh when due,
//! the page listed before the lease, the lease, then page after page until the last one, and
//! the requeue of a job that stops short. Each step lives in its own file (`refresh`,
//! `listing`, `index_writer`, `account_change`); this one says in which order they run, and
//! is the only one that knows of push.

use chrono::{DateTime, Duration, Utc};
use tracing::Instrument;

use super::account_change::{Change, Committed};
use super::index_writer::Tally;
use super::listing::{repeated_cursor, Ahead, Peek, Position, Step};
use super::state::{Session, SkipReason, Stats, SyncResult};
use crate::deadline::{Bounded, Deadline};
use crate::error::{HubError, HubResult, ProviderError};
use crate::hub::Hub;
use crate::metrics::{self, Metric, Record};
use crate::model::{Account, AccountStatus, Lease, SyncJob, SyncOutcome};
use crate::providers::NextPage;
use crate::queue::MAX_DELAY;
use crate::tokens;

/// How long a lease outlives the worker's timeout (`Timeout` of `SyncWorkerFunction` in
/// template.yaml, mirrored by the local queue's [`crate::queue::local::WORKER_TIMEOUT`]):
/// Lambda has ended the invocation by then, so the holder of an expired lease cannot still
/// be writing, and clocks of two workers a few seconds apart do not matter.
const LEASE_MARGIN_SECONDS: i64 = 30;

/// Until when a lease taken at `now` holds.
fn lease_until(now: DateTime<Utc>) -> DateTime<Utc> {
    let timeout = Duration::from_std(crate::queue::local::WORKER_TIMEOUT)
        .expect("the worker timeout is a few minutes");
    now + timeout + Duration::seconds(LEASE_MARGIN_SECONDS)
}

/// Runs one sync job, inside one span that every log line of it carries. No provider call
/// starts or runs past `deadline`.
pub async fn run(hub: &Hub, job: &SyncJob, deadline: Deadline) -> HubResult<SyncResult> {
    let span = tracing::info_span!(
        "sync",
        account_id = %job.account_id,
        provider = %job.provider,
        reason = ?job.reason,
    );
    run_job(hub, job, deadline).instrument(span).await
}

async fn run_job(hub: &Hub, job: &SyncJob, deadline: Deadline) -> HubResult<SyncResult> {
    // The job starts: it no longer waits, so a notification or a `POST /sync` from now on
    // (which may announce a change this sync lists past) queues the next job
    // (`crate::jobs`).
    hub.store.clear_push_pending(&job.account_id).await?;
    let (result, finished) = sync_account(hub, job, deadline).await?;
    if let Some(session) = finished {
        push_upkeep(&session).await;
    }
    Ok(result)
}

/// Push upkeep, after a sync that finished: keeps the account's push channel alive, with
/// the account and tokens as the sync left them. Never fails the job (see
/// [`crate::push::keep_channel`]).
async fn push_upkeep(session: &Session<'_>) {
    crate::push::keep_channel(
        session.hub,
        session.connector.as_ref(),
        &session.account,
        &session.tokens,
        session.deadline,
    )
    .await;
}

/// Syncs the account a job names. Returns how the job ended and, when it synced to the end,
/// the session as it ended, for push upkeep.
async fn sync_account<'a>(
    hub: &'a Hub,
    job: &SyncJob,
    deadline: Deadline,
) -> HubResult<(SyncResult, Option<Session<'a>>)> {
    let started = std::time::Instant::now();
    let mut report = Report::default();
    let outcome = sync_account_reporting(hub, job, deadline, &mut report).await;
    let record = report.record(job, &outcome, started.elapsed());
    metrics::emit(hub.config.metrics_namespace.as_deref(), &record);
    outcome
}

/// What a job tells its metrics record besides its outcome.
#[derive(Default)]
struct Report {
    stats: Stats,
    /// The account's last completed sync is older than `HUB_STALE_SYNC_AFTER_MINUTES`.
    stale: bool,
}

impl Report {
    /// The job's one metrics record (`crate::metrics`): a job that dropped its message
    /// before reading an account writes its duration only.
    fn record<T>(
        &self,
        job: &SyncJob,
        outcome: &HubResult<(SyncResult, T)>,
        took: std::time::Duration,
    ) -> Record {
        let mut record = Record::new(crate::deployment::SYNC_WORKER.name)
            .dimension(metrics::DIMENSION_PROVIDER, job.provider.clone());
        record.set(Metric::SyncDuration, took.as_millis() as f64);
        record.set(Metric::SyncPages, self.stats.pages as f64);
        record.set(Metric::FilesChanged, self.stats.files as f64);
        record.set(Metric::TokenRefreshes, self.stats.refreshes as f64);
        record.set(Metric::StaleAccounts, f64::from(u8::from(self.stale)));
        match outcome {
            Ok((SyncResult::Synced { .. }, _)) => record.set(Metric::SyncsCompleted, 1.0),
            Ok((SyncResult::NeedsReauth, _)) => record.set(Metric::AccountsNeedingReauth, 1.0),
            Ok(_) => {}
            Err(e) => {
                record.set(Metric::SyncFailures, 1.0);
                record = record.dimension(metrics::DIMENSION_KIND, failure_code(e));
            }
        }
        record
    }
}

/// The code an alarm can count for a failed job (`client_rejected`: the provider refused
/// the hub's OAuth client, which the template's `ClientRejectedAlarm` watches).
fn failure_code(e: &HubError) -> &'static str {
    match e {
        HubError::Provider(refusal) => refusal.code(),
        other => other.code(),
    }
}

/// Whether an active account's last completed sync (or its connection, before any) is
/// older than `stale_after`: its jobs keep failing or stopping short.
fn is_stale(account: &Account, stale_after: std::time::Duration, now: DateTime<Utc>) -> bool {
    let since = account.last_synced_at.unwrap_or(account.connected_at);
    let stale_after = Duration::from_std(stale_after).unwrap_or(Duration::MAX);
    account.status == AccountStatus::Active && now - since > stale_after
}

async fn sync_account_reporting<'a>(
    hub: &'a Hub,
    job: &SyncJob,
    deadline: Deadline,
    report: &mut Report,
) -> HubResult<(SyncResult, Option<Session<'a>>)> {
    let Some(account) = hub.store.get_account(&job.account_id).await? else {
        // Deleted, or being deleted (then its purge removes everything, and this job does
        // nothing): see `crate::purge::after_sync`.
        crate::purge::after_sync(hub, &job.account_id, None).await?;
        tracing::info!("account no longer exists; job dropped");
        return Ok((SyncResult::Skipped(SkipReason::AccountDeleted), None));
    };
    if account.provider != job.provider {
        tracing::warn!(account_provider = %account.provider, "job names the wrong provider; dropped");
        return Ok((SyncResult::Skipped(SkipReason::ProviderMismatch), None));
    }
    if account.status == AccountStatus::NeedsReauth {
        return Ok((SyncResult::Skipped(SkipReason::NeedsReauth), None));
    }
    report.stale = is_stale(&account, hub.config.stale_sync_after, Utc::now());
    let connector = hub.providers.for_sync(&account.provider)?;
    let tokens = tokens::open(hub.cipher.as_ref(), &account).await?;
    let mut session = Session {
        hub,
        connector,
        account,
        tokens,
        deadline,
        requested_at: job.requested_at,
        reason: job.reason,
        holder: uuid::Uuid::new_v4().to_string(),
        progressed: false,
        stats: Default::default(),
    };
    let result = match session.run().await {
        Err(HubError::AccountDeletedDuringSync(_)) => {
            // Deleted during this sync: the delete's purge removes what it stored once this
            // sync has given its lease back (`crate::purge::after_sync`).
            crate::purge::after_sync(hub, &job.account_id, Some(&session.holder)).await?;
            tracing::info!("account deleted during its sync; its index removed");
            Ok(SyncResult::Skipped(SkipReason::AccountDeleted))
        }
        Err(HubError::Provider(ProviderError::DriveNotProvisioned)) => {
            // Not a failure for the queue to retry (every retry would get the same answer
            // until the user opens OneDrive): the account's last sync says so, and the next
            // scheduled sync looks again.
            let refusal = ProviderError::DriveNotProvisioned;
            tracing::warn!(
                error = refusal.code(),
                "the user's drive is not provisioned"
            );
            let outcome = SyncOutcome::failed(Utc::now(), refusal.to_string(), refusal.code());
            let holder = session.holder.clone();
            session.commit(Change::Finished { outcome, holder }).await?;
            Ok(SyncResult::Skipped(SkipReason::DriveNotProvisioned))
        }
        Err(HubError::Provider(ProviderError::AccessLost(why))) => {
            tracing::warn!(reason = %why, "the provider no longer gives the user access");
            match session.needs_reauth().await {
                Ok(Some(result)) => Ok(result),
                // Tokens another worker stored meanwhile: the job's retry tries with them.
                Ok(None) => Err(ProviderError::AccessLost(why).into()),
                Err(e) => Err(e),
            }
        }
        Ok(SyncResult::Requeued { after }) => {
            if session.holds_lease() {
                let holder = session.holder.clone();
                session.commit(Change::Paused { holder }).await?;
            }
            requeue(hub, job, after, session.progressed).await
        }
        other => other,
    };
    report.stats = session.stats;
    match result {
        Ok(SyncResult::Synced { pages, files }) => {
            tracing::info!(pages, files, "sync finished");
            Ok((SyncResult::Synced { pages, files }, Some(session)))
        }
        Ok(other) => {
            tracing::info!(result = ?other, "sync ended");
            Ok((other, None))
        }
        Err(e) => {
            // `error` is a code an alarm can count (see [`failure_code`]).
            let code = failure_code(&e);
            tracing::warn!(
                error = code,
                detail = %e,
                provider = %session.account.provider,
                "sync failed; the queue will retry"
            );
            let outcome = SyncOutcome::failed(Utc::now(), e.to_string(), code);
            // Best effort: the failure itself is what the queue acts on. Giving the lease
            // back lets the retry start at once instead of after the lease expires.
            let holder = session.holder.clone();
            let _ = session.commit(Change::Finished { outcome, holder }).await;
            Err(e)
        }
    }
}

/// Requeues in a row without progress after which a job fails instead (a batch item
/// failure: SQS brings the message back after its visibility timeout, and dead-letters it
/// after its receives when it still gets nowhere). A requeue asks for at most 15 minutes,
/// so 8 of them are up to two hours of a provider saying "wait" (or of invocations that
/// could not list one page), far past any real throttling window (Graph and Drive ask for
/// seconds to minutes), yet the job still ends in the dead-letter queue the same day instead
/// of coming back for ever. A requeue after a stored page starts the count again.
pub const MAX_STALLED_REQUEUES: u32 = 8;

/// Puts a job for the account back on the queue, `after` from now (at most SQS's 15 minutes),
/// counting the requeues in a row of a sync that did not store a page (`progressed`);
/// past [`MAX_STALLED_REQUEUES`] the job fails instead.
async fn requeue(
    hub: &Hub,
    job: &SyncJob,
    after: std::time::Duration,
    progressed: bool,
) -> HubResult<SyncResult> {
    let after = after.min(MAX_DELAY);
    let stalled_requeues = if progressed {
        0
    } else {
        job.stalled_requeues + 1
    };
    if stalled_requeues > MAX_STALLED_REQUEUES {
        tracing::warn!(
            stalled_requeues = job.stalled_requeues,
            "sync requeued too often without storing a page; failed for the queue's retries"
        );
        return Err(HubError::internal(format!(
            "the sync made no progress over {} requeues",
            job.stalled_requeues
        )));
    }
    let next = SyncJob {
        stalled_requeues,
        ..job.clone()
    };
    crate::jobs::requeue(hub, &next, after).await?;
    tracing::info!(
        after_secs = after.as_secs(),
        stalled_requeues,
        "sync requeued; it goes on from its stored place"
    );
    Ok(SyncResult::Requeued { after })
}

impl Session<'_> {
    pub(super) async fn run(&mut self) -> HubResult<SyncResult> {
        if let Some(ended) = self.refresh_if_due().await? {
            return Ok(ended);
        }
        let mut ahead = match self.unless_nothing_new().await? {
            Peek::Ended(result) => return Ok(result),
            Peek::Work(listed) => listed.map(|(from, page)| Ahead {
                from,
                answer: Bounded::Answered(Ok(page)),
            }),
        };
        if let Some(ended) = self.acquire_lease().await? {
            return Ok(ended);
        }
        if let Some(ended) = self.enumerate_drives_again().await? {
            return Ok(ended);
        }
        let mut tally = Tally::default();
        let mut position = Position {
            cursor: self.account.cursor.clone(),
            refreshed_after_401: false,
            restarted: false,
        };
        loop {
            // An answer listed ahead serves if the cursor did not move meanwhile.
            let answer = ahead
                .take()
                .filter(|ahead| ahead.from == position.cursor)
                .map(|ahead| ahead.answer);
            let page = match self.next_page(&mut position, answer).await? {
                Step::Page(page) => page,
                Step::Ended(result) => return Ok(result),
            };
            let more = match &page.next {
                NextPage::More(cursor) => Some(cursor.clone()),
                NextPage::Done(_) => None,
            };
            if more.is_some() && more == position.cursor {
                return Err(repeated_cursor().into());
            }
            // The next page is listed while this one is stored, so that the provider's
            // latency hides the store's (or the other way round). Only its answer is taken
            // early: it is stored in the next round, after the cursor that passes this page.
            let list_ahead = more.clone().map(|cursor| {
                let (connector, token) = (self.connector.clone(), self.tokens.access_token.clone());
                let deadline = self.deadline;
                async move {
                    let answer = deadline
                        .start_within(connector.list_page(&token, Some(&cursor)))
                        .await;
                    Ahead {
                        from: Some(cursor),
                        answer,
                    }
                }
            });
            let (stored, listed) = futures::join!(
                self.store_and_commit(page, &mut tally),
                futures::future::OptionFuture::from(list_ahead)
            );
            if let Some(ended) = stored? {
                return Ok(ended);
            }
            ahead = listed;
            position.cursor = more;
        }
    }

    /// An account synced before the hub knew of drives has a cursor and no drive: its
    /// entries name no drive (or the provider's, where `/drives` would list none). It is
    /// enumerated again from scratch, reconciling (as after an expired cursor), which names
    /// every entry by its drive and lists the drives; it happens once per account, since
    /// every connector reports the drives on the first page of an enumeration.
    async fn enumerate_drives_again(&mut self) -> HubResult<Option<SyncResult>> {
        if !self.account.drives.is_empty() || self.account.cursor.is_none() {
            return Ok(None);
        }
        tracing::info!("the account's drives are not known yet; enumerating again");
        let restart = Change::Restart {
            from: self.account.cursor.clone(),
        };
        Ok(match self.commit(restart).await? {
            Committed::Yes => None,
            Committed::Superseded => Some(SyncResult::Skipped(SkipReason::AnotherWorkerAhead)),
        })
    }

    /// Takes the account's lease for this enumeration; `Some(result)` when another sync
    /// holds it, which ends this job without an error: that sync lists the account now.
    pub(super) async fn acquire_lease(&mut self) -> HubResult<Option<SyncResult>> {
        let now = Utc::now();
        let busy = Some(SyncResult::Skipped(SkipReason::AnotherWorkerSyncing));
        if let Some(theirs) = self
            .account
            .lease
            .as_ref()
            .filter(|lease| lease.blocks(&self.holder, now))
        {
            if theirs.covers(self.requested_at) {
                tracing::info!("another worker is syncing the account; job ended");
                return Ok(busy);
            }
            // Asked for after that sync started (or by a sync that died): it may have
            // listed past what this job is for, so the job comes back when the lease ends.
            let after = (theirs.until - now).to_std().unwrap_or_default();
            // Not a stall: the account's sync moves on in the other worker, and its lease
            // ends by itself if that worker is gone.
            self.progressed = true;
            tracing::info!(
                after_secs = after.as_secs(),
                "another worker is syncing the account since before this job; requeued"
            );
            return Ok(Some(SyncResult::Requeued { after }));
        }
        let last_seq = self.hub.store.last_seq(&self.account.id).await?;
        let lease = Lease {
            holder: self.holder.clone(),
            since: Some(now),
            job_requested_at: Some(self.requested_at),
            until: lease_until(now),
        };
        match self.commit(Change::Acquire { lease, last_seq }).await? {
            Committed::Yes => Ok(None),
            Committed::Superseded => {
                tracing::info!("another worker took the account's lease first; job ended");
                Ok(busy)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SyncReason;

    fn job() -> SyncJob {
        SyncJob {
            account_id: "a".into(),
            provider: "google".into(),
            reason: SyncReason::Schedule,
            requested_at: Utc::now(),
            stalled_requeues: 0,
        }
    }

    #[test]
    fn an_account_is_stale_past_the_threshold_since_its_last_completed_sync() {
        let now = Utc::now();
        let hours = |h: i64| now - Duration::hours(h);
        let three_hours = std::time::Duration::from_secs(3 * 3600);
        let mut account = crate::testing::account("google").build();
        account.connected_at = hours(10);
        account.last_synced_at = Some(hours(2));
        assert!(!is_stale(&account, three_hours, now));
        account.last_synced_at = Some(hours(4));
        assert!(is_stale(&account, three_hours, now));
        // Never synced: counted from the connection.
        account.last_synced_at = None;
        assert!(is_stale(&account, three_hours, now));
        account.connected_at = hours(1);
        assert!(!is_stale(&account, three_hours, now));
        // An account waiting for its user is not a stale sync.
        account.connected_at = hours(10);
        account.status = AccountStatus::NeedsReauth;
        assert!(!is_stale(&account, three_hours, now));
    }

    /// The job's one record: its counts, its duration, and what the alarms count (a
    /// completed sync, a failure with its kind, an account turned `needs_reauth`).
    #[test]
    fn a_jobs_record_says_how_it_ended() {
        let report = Report {
            stats: Stats {
                pages: 3,
                files: 120,
                refreshes: 1,
            },
            stale: true,
        };
        let took = std::time::Duration::from_millis(1500);
        let synced: HubResult<(SyncResult, ())> = Ok((
            SyncResult::Synced {
                pages: 3,
                files: 120,
            },
            (),
        ));
        let record = report.record(&job(), &synced, took);
        assert_eq!(record.value(Metric::SyncsCompleted), Some(1.0));
        assert_eq!(record.value(Metric::SyncPages), Some(3.0));
        assert_eq!(record.value(Metric::FilesChanged), Some(120.0));
        assert_eq!(record.value(Metric::TokenRefreshes), Some(1.0));
        assert_eq!(record.value(Metric::SyncDuration), Some(1500.0));
        assert_eq!(record.value(Metric::StaleAccounts), Some(1.0));
        assert_eq!(record.value(Metric::SyncFailures), None);
        let emf = record.to_emf("hub/hub", 0);
        assert_eq!(emf["Provider"], "google");
        assert_eq!(emf["Function"], "sync-worker");

        let failed: HubResult<(SyncResult, ())> =
            Err(ProviderError::ClientRejected("invalid_client".into()).into());
        let record = Report::default().record(&job(), &failed, took);
        assert_eq!(record.value(Metric::SyncFailures), Some(1.0));
        assert_eq!(record.value(Metric::SyncsCompleted), None);
        assert_eq!(
            record.to_emf("hub/hub", 0)["Kind"],
            ProviderError::CLIENT_REJECTED
        );

        let reauth: HubResult<(SyncResult, ())> = Ok((SyncResult::NeedsReauth, ()));
        let record = Report::default().record(&job(), &reauth, took);
        assert_eq!(record.value(Metric::AccountsNeedingReauth), Some(1.0));
        assert_eq!(record.value(Metric::StaleAccounts), Some(0.0));
    }
}
