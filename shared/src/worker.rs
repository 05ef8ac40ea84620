//! The sync of one account: refresh the tokens when due, page through the provider's
//! listing, store each page of the file index and then the cursor that follows it.
//!
//! Safe to run twice for the same job, or twice at once for the same account:
//! - files are stored before the cursor that passes them, so a sync killed half-way resumes
//!   from the last stored page and misses nothing (a page may be stored twice: upserts);
//! - every account write is conditional on the version read. A worker that finds the cursor
//!   moved by another worker stops (the other one is ahead); one that finds the tokens
//!   refreshed by another adopts them. So a cursor never moves backwards and a rotated refresh
//!   token is never overwritten by an older one;
//! - one enumeration of an account at a time: a sync takes the account's lease (a field of
//!   the account, so the same conditional write) before it lists, keeps it on every write,
//!   and gives it back with its last one. A second sync that finds a live lease ends when
//!   the lease was taken after its job was asked for, and is requeued until the lease ends
//!   otherwise; one that finds its own lease taken stops. A lease outlasts the worker's invocation, so an
//!   expired one was left by a worker that is gone;
//! - each page's entries are numbered for the change feed (`crate::changes`) above the
//!   account's watermark `feed_seq`, and the page's cursor commit raises the watermark past
//!   them: the feed serves nothing above the watermark, so a reader never sees a number
//!   that a later entry could still land below.
//!
//! A sync never runs into its function's timeout (contract section 2, "Time"): no provider
//! call starts, or runs, past the deadline the caller passes, which keeps its own reserve for
//! storing the place. Then, or when a provider asks to wait longer than the retry engine
//! waits, the job goes back on the queue for the same account, delayed by the wait asked:
//! the message itself is done, so it neither uses up its receives nor fails its batch. That
//! cannot go on for ever: a job counts its requeues without a stored page and fails past
//! [`MAX_STALLED_REQUEUES`], and a provider that hands back the continuation cursor it was
//! asked with fails the job at once (see `repeated_cursor`).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tracing::Instrument;

use crate::crypto::Sealed;
use crate::deadline::Deadline;
use crate::error::{HubError, HubResult, ProviderError};
use crate::events::{self, Event};
use crate::fanout;
use crate::hub::Hub;
use crate::model::{
    Account, AccountStatus, ChangeCount, FileEntry, Lease, Listing, QueueMessage, SyncJob,
    SyncOutcome, SyncReason, SyncStatus, TokenSet,
};
use crate::providers::{Connector, FilePage, NextPage, RemovedPath};
use crate::queue::MAX_DELAY;
use crate::retry::{retry, Attempt, RetryPolicy, Stopped};
use crate::store::Write;
use crate::tokens;

/// Refresh when the access token expires within this margin.
const REFRESH_MARGIN_MINUTES: i64 = 5;
/// Attempts at a conditional write before giving the job back to the queue.
const WRITE_ATTEMPTS: usize = 5;
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

/// How a job ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncResult {
    Synced {
        pages: u64,
        files: u64,
    },
    /// The provider refused the refresh token: the account is marked `needs_reauth`.
    NeedsReauth,
    /// Nothing to do.
    Skipped(SkipReason),
    /// Out of time, or asked by the provider to wait: the place is stored and a job for the
    /// account is back on the queue, delivered `after` from now.
    Requeued {
        after: std::time::Duration,
    },
}

/// Why a job had nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The account was deleted after the job was queued.
    AccountDeleted,
    /// The job names another provider than the account's (a forged or stale message).
    ProviderMismatch,
    /// The account waits for its user to log in again.
    NeedsReauth,
    /// Another worker moved the cursor meanwhile: it is ahead of this one.
    AnotherWorkerAhead,
    /// Another worker holds the account's lease: it is syncing the account now.
    AnotherWorkerSyncing,
}

/// A change to the account record, applied to the latest version on conflict.
#[derive(Debug, Clone)]
enum Change {
    /// Take the lease before listing. `last_seq` is the highest sequence number found in
    /// the index: a sync that died between storing a page and saving its cursor left
    /// entries above the watermark, which the watermark now covers (they are states the
    /// index holds, above any position a reader was given) so that numbers stay unique.
    Acquire { lease: Lease, last_seq: u64 },
    /// Freshly refreshed tokens, already sealed for this account.
    Tokens {
        sealed: Sealed,
        has_refresh_token: bool,
    },
    /// The cursor after a stored page, the feed's watermark past its entries and what the
    /// page changed; with the outcome too when it was the last page (which gives the lease
    /// back, its changes reported).
    Cursor {
        from: Option<String>,
        to: String,
        feed_seq: u64,
        counted: ChangeCount,
        finished: Option<SyncOutcome>,
    },
    /// The saved cursor expired: enumerate again from scratch as a new generation, whose
    /// end marks deleted what it did not see again.
    Restart { from: Option<String> },
    /// A sync that found nothing new, without a lease: the cursor the provider answered
    /// with and the outcome, unless another sync moved the cursor or took the lease.
    NothingNew {
        from: Option<String>,
        to: String,
        outcome: SyncOutcome,
    },
    /// The job ends on a failure; the lease goes back if `holder` has it.
    Finished {
        outcome: SyncOutcome,
        holder: String,
    },
    /// The grant is gone; the lease goes back if `holder` has it.
    NeedsReauth { at: DateTime<Utc>, holder: String },
    /// A refusal written but not reported (its event could not be queued): the account is
    /// active again, so that the job's retry is refused again and reports it.
    ReauthUnreported,
    /// The sync stops short of its end (out of time, or told to wait) and is requeued: the
    /// lease goes back if `holder` has it, so that the requeued job can take it at once.
    Paused { holder: String },
}

impl Change {
    /// Whether only the holder of the lease may write it: the changes of an enumeration.
    fn needs_lease(&self) -> bool {
        matches!(self, Change::Cursor { .. } | Change::Restart { .. })
    }
}

/// Gives the lease back if `holder` has it; another sync's lease stays.
fn release(account: &mut Account, holder: &str) {
    if account
        .lease
        .as_ref()
        .is_some_and(|lease| lease.holder == holder)
    {
        account.lease = None;
    }
}

/// The account as `change` leaves it, one version later. Pure: the conditional write and
/// its retries are [`Session::commit`]'s business.
fn applied(account: &Account, change: &Change) -> Account {
    let mut next = account.clone();
    match change {
        Change::Acquire { lease, last_seq } => {
            next.lease = Some(lease.clone());
            next.feed_seq = account.feed_seq.max(*last_seq);
        }
        Change::Tokens {
            sealed,
            has_refresh_token,
        } => {
            next.tokens = sealed.clone();
            next.has_refresh_token = *has_refresh_token;
            // A refresh that worked proves the grant is alive, whatever a racing worker
            // concluded from its own, older refresh token.
            next.status = AccountStatus::Active;
        }
        Change::Cursor {
            to,
            feed_seq,
            counted,
            finished,
            ..
        } => {
            next.cursor = Some(to.clone());
            next.feed_seq = account.feed_seq.max(*feed_seq);
            next.unreported = account.unreported + *counted;
            if let Some(outcome) = finished {
                record_outcome(&mut next, outcome);
                // Reported by the `sync.completed` queued before this write.
                next.unreported = ChangeCount::default();
                // The enumeration is complete, reconciled by the worker before this write.
                next.listing.reconcile = false;
                // Written only by the lease's holder (see `Session::commit`).
                next.lease = None;
            }
        }
        Change::NothingNew { to, outcome, .. } => {
            next.cursor = Some(to.clone());
            record_outcome(&mut next, outcome);
        }
        Change::Restart { .. } => {
            next.cursor = None;
            next.listing = Listing {
                generation: account.listing.generation + 1,
                reconcile: true,
            };
        }
        Change::Finished { outcome, holder } => {
            record_outcome(&mut next, outcome);
            release(&mut next, holder);
        }
        Change::Paused { holder } => release(&mut next, holder),
        Change::ReauthUnreported => next.status = AccountStatus::Active,
        Change::NeedsReauth { at, holder } => {
            release(&mut next, holder);
            next.status = AccountStatus::NeedsReauth;
            next.last_sync = Some(SyncOutcome {
                finished_at: *at,
                result: SyncStatus::NeedsReauth,
                files_changed: 0,
                detail: Some("the provider refused the refresh token".into()),
            });
        }
    }
    next.version = account.version + 1;
    next
}

/// Each id once, at its last occurrence, in the order of those last occurrences.
fn last_occurrences(files: Vec<FileEntry>) -> Vec<FileEntry> {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<FileEntry> = files
        .into_iter()
        .rev()
        .filter(|file| seen.insert(file.id.clone()))
        .collect();
    kept.reverse();
    kept
}

/// How many of a page's entries end in a deletion, each id counted once at its last state,
/// as [`last_occurrences`] stores them.
fn tombstones(files: &[FileEntry]) -> u64 {
    let mut last_state = std::collections::HashMap::new();
    for file in files {
        last_state.insert(file.id.as_str(), file.deleted);
    }
    last_state.values().filter(|deleted| **deleted).count() as u64
}

fn record_outcome(account: &mut Account, outcome: &SyncOutcome) {
    account.last_sync = Some(outcome.clone());
    if outcome.result == SyncStatus::Ok {
        account.last_synced_at = Some(outcome.finished_at);
    }
}

/// Whether `change`, refused because the account moved from `ours` to `latest`, has been
/// overtaken by another worker instead of needing to be applied again on top of `latest`:
/// that worker moved the cursor (it is ahead: this one stops), or stored other tokens (a
/// refresh of its own: they are current, and a grant this one saw refused is alive), or
/// took the lease this one wanted. Pure.
fn superseded(change: &Change, ours: &Account, latest: &Account) -> bool {
    match change {
        Change::Acquire { lease, .. } => latest
            .lease
            .as_ref()
            .is_some_and(|theirs| theirs.blocks(&lease.holder, Utc::now())),
        Change::Cursor { from, .. } | Change::Restart { from } => latest.cursor != *from,
        Change::NothingNew { from, .. } => {
            latest.cursor != *from
                || latest
                    .lease
                    .as_ref()
                    .is_some_and(|theirs| theirs.until > Utc::now())
        }
        Change::Tokens { .. } | Change::NeedsReauth { .. } => latest.tokens != ours.tokens,
        Change::Finished { .. } | Change::Paused { .. } => false,
        // Nothing to undo once another worker made the account active again.
        Change::ReauthUnreported => latest.status != AccountStatus::NeedsReauth,
    }
}

/// What a conditional write found.
enum Committed {
    Yes,
    /// Another worker got there first: see [`superseded`].
    Superseded,
}

struct Session<'a> {
    hub: &'a Hub,
    connector: Arc<dyn Connector>,
    account: Account,
    tokens: TokenSet,
    deadline: Deadline,
    /// When the job was asked for: a lease taken later covers it (see [`Lease::covers`]).
    requested_at: DateTime<Utc>,
    /// Why: `sync.completed` says it.
    reason: SyncReason,
    /// This sync's name on the account's lease.
    holder: String,
    /// Whether this invocation stored a page (its cursor committed), or found the account's
    /// sync under way in another worker: a requeue after that is not a stall.
    progressed: bool,
}

/// Syncs the account a job names, inside one span that every log line of it carries.
/// No provider call starts or runs past `deadline`.
pub async fn sync(hub: &Hub, job: &SyncJob, deadline: Deadline) -> HubResult<SyncResult> {
    let span = tracing::info_span!(
        "sync",
        account_id = %job.account_id,
        provider = %job.provider,
        reason = ?job.reason,
    );
    sync_account(hub, job, deadline).instrument(span).await
}

async fn sync_account(hub: &Hub, job: &SyncJob, deadline: Deadline) -> HubResult<SyncResult> {
    // The job starts: it no longer waits, so a notification or a `POST /sync` from now on
    // (which may announce a change this sync lists past) queues the next job
    // (`crate::jobs`).
    hub.store.clear_push_pending(&job.account_id).await?;
    let Some(account) = hub.store.get_account(&job.account_id).await? else {
        // Deleted, or being deleted (then its purge removes everything, and this job does
        // nothing): see `crate::purge::after_sync`.
        crate::purge::after_sync(hub, &job.account_id, None).await?;
        tracing::info!("account no longer exists; job dropped");
        return Ok(SyncResult::Skipped(SkipReason::AccountDeleted));
    };
    if account.provider != job.provider {
        tracing::warn!(account_provider = %account.provider, "job names the wrong provider; dropped");
        return Ok(SyncResult::Skipped(SkipReason::ProviderMismatch));
    }
    if account.status == AccountStatus::NeedsReauth {
        return Ok(SyncResult::Skipped(SkipReason::NeedsReauth));
    }
    let connector = hub.providers.for_sync(&account.provider)?;
    let tokens = tokens::open(hub, &account).await?;
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
    };
    let result = match session.run().await {
        Err(HubError::UserNotFound(_)) => {
            // Deleted during this sync: the delete's purge removes what it stored once this
            // sync has given its lease back (`crate::purge::after_sync`).
            crate::purge::after_sync(hub, &job.account_id, Some(&session.holder)).await?;
            tracing::info!("account deleted during its sync; its index removed");
            Ok(SyncResult::Skipped(SkipReason::AccountDeleted))
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
    if let Ok(SyncResult::Synced { .. }) = &result {
        crate::push::keep_channel(
            hub,
            session.connector.as_ref(),
            &session.account,
            &session.tokens,
            deadline,
        )
        .await;
    }
    match &result {
        Ok(SyncResult::Synced { pages, files }) => tracing::info!(pages, files, "sync finished"),
        Ok(other) => tracing::info!(result = ?other, "sync ended"),
        Err(e) => {
            tracing::warn!(error = %e, "sync failed; the queue will retry");
            let outcome = SyncOutcome {
                finished_at: Utc::now(),
                result: SyncStatus::Failed,
                files_changed: 0,
                detail: Some(e.to_string()),
            };
            // Best effort: the failure itself is what the queue acts on. Giving the lease
            // back lets the retry start at once instead of after the lease expires.
            let holder = session.holder.clone();
            let _ = session.commit(Change::Finished { outcome, holder }).await;
        }
    }
    result
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

/// What a provider call bounded by the deadline brought.
enum Bounded<T> {
    Answered(Result<T, ProviderError>),
    /// The deadline came first: the call was not made, or was dropped unanswered.
    OutOfTime,
}

/// Runs `call` unless `deadline` has passed, and never past it.
async fn bounded<T>(
    deadline: Deadline,
    call: impl std::future::Future<Output = Result<T, ProviderError>>,
) -> Bounded<T> {
    if deadline.passed() {
        return Bounded::OutOfTime;
    }
    match tokio::time::timeout(deadline.remaining(), call).await {
        Ok(answer) => Bounded::Answered(answer),
        Err(_) => Bounded::OutOfTime,
    }
}

/// The requeue a provider error asks for: it outlived the retry engine's own waits and named
/// a wait of its own (`Retry-After`), which the queue's delay honours instead of holding the
/// invocation.
fn asked_to_wait(error: &ProviderError) -> Option<SyncResult> {
    match error {
        ProviderError::Retryable {
            retry_after: Some(after),
            ..
        } => Some(SyncResult::Requeued { after: *after }),
        _ => None,
    }
}

/// A page that says "more" and hands back the very cursor it was listed from: followed, it
/// would be listed (stored, numbered for the feed) again for ever, so it is the provider's
/// error. Only a continuation counts: a last page whose cursor equals the saved one is a
/// legitimate "nothing new" (Drive's `newStartPageToken`, a Dropbox cursor with `has_more`
/// false, a Graph `deltaLink`), and every connector maps those to [`NextPage::Done`].
fn repeated_cursor() -> ProviderError {
    ProviderError::Rejected("the provider repeated its continuation cursor".into())
}

/// Where the listing goes on from, and the one-time recoveries already spent on it.
struct Position {
    /// Differs from the stored cursor only after a restart on an expired cursor.
    cursor: Option<String>,
    refreshed_after_401: bool,
    restarted: bool,
}

/// What listing before the lease found: the job's end, or work for the leased enumeration
/// (with the page already listed, and the cursor it was listed from).
enum Peek {
    Ended(SyncResult),
    Work(Option<(Option<String>, FilePage)>),
}

/// A page's answer listed ahead of its turn, and the cursor it was listed from.
struct Ahead {
    from: Option<String>,
    answer: Bounded<FilePage>,
}

/// What this invocation of an enumeration has stored so far (the whole sync's changes, for
/// its event, are the account's `unreported`).
#[derive(Default)]
struct Tally {
    pages: u64,
    /// Entries stored or marked deleted.
    files: u64,
}

/// What the next step of a listing brought.
enum Step {
    Page(FilePage),
    /// The job ends here (the grant is gone, or another worker is ahead).
    Ended(SyncResult),
}

/// Entries removed from the index per round of a reconciliation.
const RECONCILE_PAGE: usize = 500;

impl Session<'_> {
    async fn run(&mut self) -> HubResult<SyncResult> {
        if self
            .tokens
            .expires_within(Duration::minutes(REFRESH_MARGIN_MINUTES), Utc::now())
        {
            if let Some(ended) = self.refresh().await? {
                return Ok(ended);
            }
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
                    let answer =
                        bounded(deadline, connector.list_page(&token, Some(&cursor))).await;
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

    /// Stores a page, then commits the cursor that follows it (with the sync's outcome on the
    /// last page, after queueing its `sync.completed`). `Some(result)` when the job ends here.
    async fn store_and_commit(
        &mut self,
        page: FilePage,
        tally: &mut Tally,
    ) -> HubResult<Option<SyncResult>> {
        // Numbered from the watermark each time, so a page stored again after a crash
        // reuses its numbers (upserts) rather than leaving gaps above the watermark.
        let mut counted = self.store_page(page.files, page.removed_paths).await?;
        let last = matches!(page.next, NextPage::Done(_));
        if last && self.account.listing.reconcile {
            let marked = self
                .mark_unseen_deleted(self.account.feed_seq + counted.stored + 1)
                .await?;
            counted = counted
                + ChangeCount {
                    stored: marked,
                    deleted: marked,
                };
        }
        let feed_seq = self.account.feed_seq + counted.stored;
        tally.files += counted.stored;
        tally.pages += 1;
        // The whole sync's, from its first invocation.
        let sync_changes = self.account.unreported + counted;
        if let Some(event) = last
            .then(|| {
                Event::sync_completed(
                    &self.account,
                    self.reason,
                    sync_changes.stored - sync_changes.deleted,
                    sync_changes.deleted,
                )
            })
            .flatten()
        {
            // Queued before the commit that ends the job: a crash in between brings the
            // job back, and the app hears of these changes at least once.
            events::emit(self.hub, event).await?;
        }
        let change = Change::Cursor {
            from: self.account.cursor.clone(),
            to: page.next.cursor().to_string(),
            feed_seq,
            counted,
            finished: last.then(|| SyncOutcome {
                finished_at: Utc::now(),
                result: SyncStatus::Ok,
                files_changed: sync_changes.stored,
                detail: None,
            }),
        };
        if let Committed::Superseded = self.commit(change).await? {
            return Ok(Some(SyncResult::Skipped(SkipReason::AnotherWorkerAhead)));
        }
        self.progressed = true;
        Ok(last.then_some(SyncResult::Synced {
            pages: tally.pages,
            files: tally.files,
        }))
    }

    /// Most syncs find nothing new: those take no lease, and end with one write of the
    /// account (the cursor and the outcome, conditional on the version read). A sync lists
    /// one page first, from the stored cursor, when the last sync ended cleanly (no lease
    /// left, no changes waiting for their event) and no reconciliation is pending; an empty
    /// last page ends it here. Otherwise the page (with the cursor it was listed from) goes
    /// to the leased enumeration.
    /// Recoveries (a refresh after a 401, a restart on an expired cursor) are left to that
    /// enumeration, which asks again.
    async fn unless_nothing_new(&mut self) -> HubResult<Peek> {
        if self.account.lease.is_some()
            || self.account.listing.reconcile
            || !self.account.unreported.is_zero()
            || self.account.cursor.is_none()
        {
            return Ok(Peek::Work(None));
        }
        let from = self.account.cursor.clone();
        let call = self
            .connector
            .list_page(&self.tokens.access_token, from.as_deref());
        let page = match bounded(self.deadline, call).await {
            Bounded::OutOfTime => {
                return Ok(Peek::Ended(SyncResult::Requeued {
                    after: std::time::Duration::ZERO,
                }))
            }
            Bounded::Answered(Ok(page)) => page,
            Bounded::Answered(Err(ProviderError::Unauthorized | ProviderError::CursorExpired)) => {
                return Ok(Peek::Work(None))
            }
            Bounded::Answered(Err(e)) => match asked_to_wait(&e) {
                Some(requeued) => return Ok(Peek::Ended(requeued)),
                None => return Err(e.into()),
            },
        };
        let NextPage::Done(to) = &page.next else {
            return Ok(Peek::Work(Some((from, page))));
        };
        if !page.changes_nothing() {
            return Ok(Peek::Work(Some((from, page))));
        }
        let change = Change::NothingNew {
            from,
            to: to.clone(),
            outcome: SyncOutcome {
                finished_at: Utc::now(),
                result: SyncStatus::Ok,
                files_changed: 0,
                detail: None,
            },
        };
        match self.commit(change).await? {
            Committed::Yes => Ok(Peek::Ended(SyncResult::Synced { pages: 1, files: 0 })),
            // Another sync moved the cursor or holds the lease: it started after this
            // listing's cursor was read, and this listing found nothing since.
            Committed::Superseded => Ok(Peek::Ended(SyncResult::Skipped(
                SkipReason::AnotherWorkerSyncing,
            ))),
        }
    }

    /// Takes the account's lease for this enumeration; `Some(result)` when another sync
    /// holds it, which ends this job without an error: that sync lists the account now.
    async fn acquire_lease(&mut self) -> HubResult<Option<SyncResult>> {
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

    /// Whether this sync still holds the account's lease.
    fn holds_lease(&self) -> bool {
        self.account
            .lease
            .as_ref()
            .is_some_and(|lease| lease.holder == self.holder)
    }

    /// The next page of the listing at `position`, recovering once from a refused access
    /// token (refresh, then ask again) and once from an expired cursor (a new enumeration
    /// from scratch, recorded on the account first so that a sync killed during it still
    /// reconciles when it resumes). `answer` is the listing's answer at `position` when it
    /// was asked ahead; the recoveries apply to it as to an answer asked here.
    async fn next_page(
        &mut self,
        position: &mut Position,
        mut answer: Option<Bounded<FilePage>>,
    ) -> HubResult<Step> {
        loop {
            let answer = match answer.take() {
                Some(answer) => answer,
                None => {
                    let call = self
                        .connector
                        .list_page(&self.tokens.access_token, position.cursor.as_deref());
                    bounded(self.deadline, call).await
                }
            };
            let listed = match answer {
                Bounded::Answered(listed) => listed,
                // The cursor of the last stored page is saved: the next job goes on from it.
                Bounded::OutOfTime => {
                    return Ok(Step::Ended(SyncResult::Requeued {
                        after: std::time::Duration::ZERO,
                    }))
                }
            };
            match listed {
                Ok(page) => return Ok(Step::Page(page)),
                Err(ProviderError::Unauthorized) if !position.refreshed_after_401 => {
                    position.refreshed_after_401 = true;
                    if let Some(ended) = self.refresh().await? {
                        return Ok(Step::Ended(ended));
                    }
                }
                Err(ProviderError::CursorExpired)
                    if !position.restarted && position.cursor.is_some() =>
                {
                    tracing::info!("the saved cursor expired; enumerating again");
                    position.restarted = true;
                    let restart = Change::Restart {
                        from: self.account.cursor.clone(),
                    };
                    if let Committed::Superseded = self.commit(restart).await? {
                        return Ok(Step::Ended(SyncResult::Skipped(
                            SkipReason::AnotherWorkerAhead,
                        )));
                    }
                    position.cursor = None;
                }
                Err(e) => match asked_to_wait(&e) {
                    Some(requeued) => return Ok(Step::Ended(requeued)),
                    None => return Err(e.into()),
                },
            }
        }
    }

    /// Stores a page: its entries and tombstones, and its removals by path, in the page's
    /// order. Each removal splits the page: the entries before it are stored, then it marks
    /// deleted what is at or under its path (those entries included), then the entries after
    /// it are stored, so one re-created at the same path later in the page stays. Everything
    /// takes the feed's numbers just above the watermark, in that order. Returns how many
    /// entries it stored or marked, and how many of them are deletions.
    async fn store_page(
        &self,
        files: Vec<FileEntry>,
        removed: Vec<RemovedPath>,
    ) -> HubResult<ChangeCount> {
        let first_seq = self.account.feed_seq + 1;
        let mut deleted = tombstones(&files);
        let mut files = files.into_iter();
        let (mut taken, mut count) = (0usize, 0u64);
        for removal in removed {
            let before = removal.before.max(taken);
            let segment: Vec<FileEntry> = files.by_ref().take(before - taken).collect();
            taken += segment.len();
            count += self.store_files(segment, first_seq + count).await?;
            let marked = self
                .mark_path_deleted(&removal.path_lower, first_seq + count)
                .await?;
            count += marked;
            deleted += marked;
        }
        count += self.store_files(files.collect(), first_seq + count).await?;
        Ok(ChangeCount {
            stored: count,
            deleted,
        })
    }

    /// Stores entries, each id once at its last state among them (Graph documents that an
    /// item may come more than once in one delta page, and DynamoDB refuses a batch with two
    /// equal keys), numbered from `first_seq`. Returns how many were stored.
    async fn store_files(&self, files: Vec<FileEntry>, first_seq: u64) -> HubResult<u64> {
        if files.is_empty() {
            return Ok(0);
        }
        let files = last_occurrences(files);
        self.hub
            .store
            .put_files(
                &self.account.id,
                &files,
                self.account.listing.generation,
                first_seq,
            )
            .await?;
        for file in &files {
            tracing::info!(
                file_id = %file.id,
                name = %file.name,
                modified_at = ?file.modified_at,
                deleted = file.deleted,
                "file"
            );
        }
        Ok(files.len() as u64)
    }

    /// A removal by path: marks deleted, a page of the index at a time, the entry at
    /// `path_lower` and every entry under it, numbered from `first_seq`. Returns how many
    /// entries it marked.
    async fn mark_path_deleted(&self, path_lower: &str, first_seq: u64) -> HubResult<u64> {
        let (store, id) = (&self.hub.store, &self.account.id);
        let marked = mark_every_page(first_seq, |after, seq| async move {
            store
                .mark_path_deleted(id, path_lower, after.as_deref(), RECONCILE_PAGE, seq)
                .await
        })
        .await?;
        tracing::info!(marked, "entries at or under a removed path marked deleted");
        Ok(marked)
    }

    /// At the end of an enumeration that replaced an expired cursor: whatever it did not see
    /// again was deleted at the provider meanwhile. The tombstones take the feed's numbers
    /// from `first_seq` on. Returns how many entries it marked.
    async fn mark_unseen_deleted(&self, first_seq: u64) -> HubResult<u64> {
        let generation = self.account.listing.generation;
        let (store, id) = (&self.hub.store, &self.account.id);
        let marked = mark_every_page(first_seq, |after, seq| async move {
            store
                .mark_unseen_deleted(id, generation, after.as_deref(), RECONCILE_PAGE, seq)
                .await
        })
        .await?;
        tracing::info!(
            marked,
            "entries not seen again by the new enumeration marked deleted"
        );
        Ok(marked)
    }

    /// Refreshes and stores the new tokens at once (Microsoft has already invalidated the old
    /// refresh token). `Some(result)` when the job ends here.
    ///
    /// Bounded by the deadline like every provider call: a refresh cut short loses its answer,
    /// but a function stopped by its timeout would lose it too, and the whole batch with it.
    async fn refresh(&mut self) -> HubResult<Option<SyncResult>> {
        let oauth = self.connector.oauth();
        let refreshed = match bounded(self.deadline, oauth.refresh(&self.tokens)).await {
            Bounded::Answered(refreshed) => refreshed,
            Bounded::OutOfTime => {
                return Ok(Some(SyncResult::Requeued {
                    after: std::time::Duration::ZERO,
                }))
            }
        };
        match refreshed {
            Ok(fresh) => {
                // Microsoft has already invalidated the old refresh token: until stored, the
                // new one exists only here, so a short KMS or DynamoDB failure is retried
                // (bounded) rather than failing the job and losing the grant. Bounded in time
                // too: past the deadline by at most half the invocation's reserve.
                let budget = self.deadline.remaining() + TOKENS_GRACE;
                match tokio::time::timeout(budget, self.store_tokens(fresh)).await {
                    Ok(stored) => stored?,
                    Err(_) => {
                        tracing::error!(
                            "refreshed tokens not stored in time; the grant may be lost"
                        );
                        return Err(HubError::internal(
                            "the refreshed tokens could not be stored in time",
                        ));
                    }
                }
                Ok(None)
            }
            Err(ProviderError::InvalidGrant) => {
                // Another worker may have rotated the refresh token a moment ago: then the
                // stored tokens are newer than the ones refused and the account is fine. The
                // refusal is written conditionally on the version this sync read, so tokens
                // stored by another worker at any time since supersede it (`superseded`:
                // `commit` adopts them), and the app hears of it only once it is written: an
                // account that a concurrent refresh keeps active is never reported.
                let refusal = Change::NeedsReauth {
                    at: Utc::now(),
                    holder: self.holder.clone(),
                };
                if let Committed::Superseded = self.commit(refusal).await? {
                    return Ok(None);
                }
                tracing::warn!("refresh refused (invalid_grant); account needs re-authorisation");
                if let Err(error) =
                    events::emit(self.hub, Event::reauth_required(&self.account)).await
                {
                    // Not told: once the account is `needs_reauth` no job would retry, so it
                    // is put back as it was and the job fails; its retry is refused again,
                    // and tells. Best effort: when this write fails too, the event is lost.
                    if let Err(undo) = self.commit(Change::ReauthUnreported).await {
                        tracing::error!(error = %undo, "reauth_required neither sent nor undone");
                    }
                    return Err(error);
                }
                Ok(Some(SyncResult::NeedsReauth))
            }
            Err(e) => match asked_to_wait(&e) {
                Some(requeued) => Ok(Some(requeued)),
                None => Err(e.into()),
            },
        }
    }

    /// Seals and stores freshly refreshed tokens, each step retried on a storage or KMS
    /// failure by [`TOKENS_RETRY`]; then works with them (or with fresher ones another
    /// worker stored meanwhile, which `commit` adopted).
    async fn store_tokens(&mut self, fresh: TokenSet) -> HubResult<()> {
        let (hub, id, provider) = (
            self.hub,
            self.account.id.clone(),
            self.account.provider.clone(),
        );
        let sealed = retry_transient((), |()| {
            let (id, provider, fresh) = (&id, &provider, &fresh);
            async move { ((), tokens::seal(hub, id, provider, fresh).await) }
        })
        .await?;
        let change = Change::Tokens {
            sealed,
            has_refresh_token: fresh.refresh_token.is_some(),
        };
        // A write that failed after DynamoDB applied it is found, on the next attempt, as a
        // change of tokens by "another worker": the ones this sync wrote, adopted.
        let committed = retry_transient(&mut *self, |session| {
            let change = change.clone();
            async move {
                let committed = session.commit(change).await;
                (session, committed)
            }
        })
        .await?;
        if let Committed::Yes = committed {
            self.tokens = fresh;
        }
        Ok(())
    }

    /// The account as stored now; `UserNotFound` when it was deleted during the sync.
    async fn reload(&self) -> HubResult<Account> {
        self.hub
            .store
            .get_account(&self.account.id)
            .await?
            .ok_or_else(|| HubError::UserNotFound(self.account.id.clone()))
    }

    /// Builds on `latest` from now on, with the tokens it holds.
    async fn adopt(&mut self, latest: Account) -> HubResult<()> {
        if latest.tokens != self.account.tokens {
            self.tokens = tokens::open(self.hub, &latest).await?;
        }
        self.account = latest;
        Ok(())
    }

    /// Applies `change` to the account with a conditional write, re-reading and re-applying
    /// it when another writer got there first. A change of the enumeration is refused once
    /// another sync has taken the lease (this one's expired): that sync is listing now.
    async fn commit(&mut self, change: Change) -> HubResult<Committed> {
        for _ in 0..WRITE_ATTEMPTS {
            if change.needs_lease() && !self.holds_lease() {
                tracing::warn!("the account's lease was taken by another worker; stopping");
                return Ok(Committed::Superseded);
            }
            let next = applied(&self.account, &change);
            if self
                .hub
                .store
                .update_account(&next, self.account.version)
                .await?
                == Write::Done
            {
                self.account = next;
                return Ok(Committed::Yes);
            }
            let latest = self.reload().await?;
            let overtaken = superseded(&change, &self.account, &latest);
            self.adopt(latest).await?;
            if overtaken {
                return Ok(Committed::Superseded);
            }
        }
        Err(HubError::internal(
            "the account kept changing during its sync",
        ))
    }
}

/// Storing refreshed tokens (sealing with KMS, then the account write) is tried again after
/// a failure of either: each SDK call already retries a throttled request a few times, so
/// these attempts cover a fault that outlasts one call's retries, a few seconds of it.
const TOKENS_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    base_delay: std::time::Duration::from_millis(200),
    max_delay: std::time::Duration::from_millis(1600),
    max_retry_after: std::time::Duration::ZERO,
};
/// How far past the deadline storing refreshed tokens may go: half of [`RESERVE`], whose
/// other half still stores the place and requeues.
const TOKENS_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `attempt` on `state` again, by [`TOKENS_RETRY`], while it fails with a storage or KMS
/// failure ([`HubError::Internal`]); any other error ends it. The state goes in and out of
/// each attempt (it may be the session itself).
async fn retry_transient<S, T, F, Fut>(state: S, mut attempt: F) -> HubResult<T>
where
    F: FnMut(S) -> Fut,
    Fut: std::future::Future<Output = (S, HubResult<T>)>,
{
    let outcome = retry(&TOKENS_RETRY, (state, None), |(state, _)| {
        let call = attempt(state);
        async move {
            match call.await {
                (_, Ok(done)) => Ok(Attempt::Done(done)),
                (state, Err(error @ HubError::Internal(_))) => {
                    tracing::warn!(error = %error, "storing refreshed tokens failed; trying again");
                    Ok(Attempt::Again {
                        left: (state, Some(error)),
                        retry_after: None,
                    })
                }
                (_, Err(error)) => Err(error),
            }
        }
    })
    .await;
    match outcome {
        Ok(done) => Ok(done),
        Err(Stopped::Failed(error)) => Err(error),
        Err(Stopped::Exhausted {
            left: (_, last), ..
        }) => Err(last.unwrap_or_else(|| HubError::internal("storing refreshed tokens failed"))),
    }
}

/// At most this many records of one batch sync at once: enough to overlap provider latency,
/// few enough to stay inside a small function's memory and the providers' rate limits.
pub const CONCURRENT_RECORDS: usize = 4;

/// One queue message: its id and body.
pub struct Message {
    pub id: String,
    pub body: String,
}

/// Kept back from the worker invocation's deadline: the longest store-and-requeue after the
/// last provider call (a page of up to a thousand entries in 40 `BatchWriteItem` calls, the
/// cursor, the requeue, each with its bounded retries), well inside the 120 s function.
pub const RESERVE: std::time::Duration = crate::deployment::SYNC_WORKER.reserve;

/// The deadline of a worker invocation that starts now, less [`RESERVE`]: for callers that
/// run the worker's code outside Lambda (tests, benchmarks).
pub fn fresh_invocation() -> Deadline {
    Deadline::after(crate::queue::local::WORKER_TIMEOUT).less(RESERVE)
}

/// Runs a batch of queue messages (sync jobs, and fan-out continuations) and returns the ids
/// of those that failed, for SQS's partial batch response: only they come back, after the
/// visibility timeout, until the redrive policy moves them to the dead-letter queue. A body
/// that is not a sync job fails too, so it lands in the dead-letter queue for inspection
/// instead of vanishing. No work starts past `deadline` (the invocation's less [`RESERVE`]):
/// a job out of time is requeued and reported done, so the batch always answers.
pub async fn handle_batch(hub: &Hub, messages: Vec<Message>, deadline: Deadline) -> Vec<String> {
    use futures::StreamExt;
    futures::stream::iter(messages)
        .map(|message| {
            let span = tracing::info_span!("message", message_id = %message.id);
            async move {
                let outcome = match serde_json::from_str::<QueueMessage>(&message.body) {
                    Ok(QueueMessage::Sync(job)) => sync(hub, &job, deadline).await.map(|_| ()),
                    Ok(QueueMessage::FanOut { continue_fanout }) => {
                        fanout::fan_out(hub, continue_fanout, deadline)
                            .await
                            .map(|_| ())
                    }
                    Ok(QueueMessage::Purge { purge_account }) => {
                        crate::purge::run(hub, &purge_account, deadline)
                            .await
                            .map(|_| ())
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "message is neither a sync job nor a fan-out");
                        Err(HubError::InvalidJson(e.to_string()))
                    }
                };
                outcome.err().map(|_| message.id)
            }
            .instrument(span)
        })
        .buffer_unordered(CONCURRENT_RECORDS)
        .filter_map(|failed| async move { failed })
        .collect()
        .await
}

/// Runs a store marking that goes a page of the index at a time (`mark_page(after, first seq)`
/// answers how many it marked and where the next page starts) to the end of the index,
/// numbering the marked entries from `first_seq` on. Returns how many it marked.
async fn mark_every_page<F, Page>(first_seq: u64, mut mark_page: F) -> HubResult<u64>
where
    F: FnMut(Option<String>, u64) -> Page,
    Page: std::future::Future<Output = HubResult<(u64, Option<String>)>>,
{
    let (mut marked, mut after) = (0, None);
    loop {
        let (count, next) = mark_page(after.take(), first_seq + marked).await?;
        marked += count;
        match next {
            Some(next) => after = Some(next),
            None => return Ok(marked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            id: "a1".into(),
            provider: "onedrive".into(),
            provider_user_id: "u1".into(),
            owner: None,
            email: "a@example.com".into(),
            status: AccountStatus::Active,
            connected_at: Utc::now(),
            last_synced_at: None,
            last_sync: None,
            has_refresh_token: true,
            tokens: sealed("old"),
            cursor: Some("c1".into()),
            listing: Listing::default(),
            unreported: Default::default(),
            lease: None,
            feed_seq: 0,
            version: 7,
        }
    }

    fn sealed(tag: &str) -> Sealed {
        Sealed {
            data_key: None,
            nonce: "n".into(),
            ciphertext: tag.into(),
        }
    }

    fn outcome(result: SyncStatus) -> SyncOutcome {
        SyncOutcome {
            finished_at: Utc::now(),
            result,
            files_changed: 3,
            detail: None,
        }
    }

    #[test]
    fn the_last_occurrence_of_an_id_wins() {
        let mut stale = FileEntry::new("f1", "old.txt");
        stale.size = Some(1);
        let mut fresh = FileEntry::new("f1", "new.txt");
        fresh.size = Some(2);
        let other = FileEntry::new("f2", "b.txt");
        let kept = last_occurrences(vec![stale, other.clone(), fresh.clone()]);
        assert_eq!(kept, vec![other, fresh]);
    }

    #[test]
    fn a_restart_opens_a_new_generation_that_the_last_page_closes() {
        let before = account();
        let restarted = applied(
            &before,
            &Change::Restart {
                from: before.cursor.clone(),
            },
        );
        assert_eq!(restarted.cursor, None);
        assert_eq!(
            restarted.listing,
            Listing {
                generation: 1,
                reconcile: true
            }
        );
        let middle = applied(
            &restarted,
            &Change::Cursor {
                from: None,
                to: "p2".into(),
                feed_seq: 0,
                counted: ChangeCount::default(),
                finished: None,
            },
        );
        assert!(
            middle.listing.reconcile,
            "still reconciling mid-enumeration"
        );
        let done = applied(
            &middle,
            &Change::Cursor {
                from: Some("p2".into()),
                to: "d1".into(),
                feed_seq: 0,
                counted: ChangeCount::default(),
                finished: Some(outcome(SyncStatus::Ok)),
            },
        );
        assert_eq!(
            done.listing,
            Listing {
                generation: 1,
                reconcile: false
            }
        );
    }

    #[test]
    fn every_change_advances_the_version_once() {
        let before = account();
        let changes = [
            Change::Tokens {
                sealed: sealed("new"),
                has_refresh_token: false,
            },
            Change::Cursor {
                from: Some("c1".into()),
                to: "c2".into(),
                feed_seq: 0,
                counted: ChangeCount::default(),
                finished: None,
            },
            Change::Finished {
                outcome: outcome(SyncStatus::Failed),
                holder: "h1".into(),
            },
            Change::NeedsReauth {
                at: Utc::now(),
                holder: "h1".into(),
            },
        ];
        for change in &changes {
            assert_eq!(applied(&before, change).version, 8, "{change:?}");
        }
    }

    #[test]
    fn fresh_tokens_reactivate_the_account() {
        let mut before = account();
        before.status = AccountStatus::NeedsReauth;
        let after = applied(
            &before,
            &Change::Tokens {
                sealed: sealed("new"),
                has_refresh_token: false,
            },
        );
        assert_eq!(after.tokens, sealed("new"));
        assert!(!after.has_refresh_token);
        assert_eq!(after.status, AccountStatus::Active);
        assert_eq!(after.cursor, before.cursor, "the cursor is not touched");
    }

    #[test]
    fn the_last_page_records_the_outcome_with_the_cursor() {
        let before = account();
        let ok = outcome(SyncStatus::Ok);
        let after = applied(
            &before,
            &Change::Cursor {
                from: Some("c1".into()),
                to: "c2".into(),
                feed_seq: 0,
                counted: ChangeCount::default(),
                finished: Some(ok.clone()),
            },
        );
        assert_eq!(after.cursor.as_deref(), Some("c2"));
        assert_eq!(after.last_sync, Some(ok.clone()));
        assert_eq!(after.last_synced_at, Some(ok.finished_at));

        let middle = applied(
            &before,
            &Change::Cursor {
                from: Some("c1".into()),
                to: "c2".into(),
                feed_seq: 0,
                counted: ChangeCount::default(),
                finished: None,
            },
        );
        assert_eq!(middle.last_sync, None, "a middle page records no outcome");
    }

    #[test]
    fn a_failure_is_recorded_without_moving_last_synced_at() {
        let before = account();
        let after = applied(
            &before,
            &Change::Finished {
                outcome: outcome(SyncStatus::Failed),
                holder: "h1".into(),
            },
        );
        assert_eq!(after.last_sync.unwrap().result, SyncStatus::Failed);
        assert_eq!(after.last_synced_at, None);
    }

    #[test]
    fn a_refused_grant_marks_the_account() {
        let after = applied(
            &account(),
            &Change::NeedsReauth {
                at: Utc::now(),
                holder: "h1".into(),
            },
        );
        assert_eq!(after.status, AccountStatus::NeedsReauth);
        assert_eq!(after.last_sync.unwrap().result, SyncStatus::NeedsReauth);
        assert_eq!(
            after.tokens,
            sealed("old"),
            "the tokens stay for a later look"
        );
    }

    #[test]
    fn a_moved_cursor_supersedes_a_cursor_change_only() {
        let ours = account();
        let mut latest = account();
        latest.version = 8;
        latest.cursor = Some("c9".into());
        let cursor = Change::Cursor {
            from: Some("c1".into()),
            to: "c2".into(),
            feed_seq: 0,
            counted: ChangeCount::default(),
            finished: None,
        };
        assert!(superseded(&cursor, &ours, &latest));
        assert!(!superseded(
            &Change::Finished {
                outcome: outcome(SyncStatus::Failed),
                holder: "h1".into(),
            },
            &ours,
            &latest
        ));
        latest.cursor = ours.cursor.clone();
        assert!(
            !superseded(&cursor, &ours, &latest),
            "another change of the record (a refresh) is applied again on top"
        );
    }

    #[test]
    fn tokens_stored_by_another_worker_supersede_a_refresh_and_a_refusal() {
        let ours = account();
        let mut latest = account();
        latest.tokens = sealed("theirs");
        let refresh = Change::Tokens {
            sealed: sealed("new"),
            has_refresh_token: true,
        };
        let refusal = Change::NeedsReauth {
            at: Utc::now(),
            holder: "h1".into(),
        };
        assert!(superseded(&refresh, &ours, &latest));
        assert!(superseded(&refusal, &ours, &latest));
        latest.tokens = ours.tokens.clone();
        assert!(!superseded(&refresh, &ours, &latest));
        assert!(!superseded(&refusal, &ours, &latest));
    }

    fn lease(holder: &str, seconds_left: i64) -> Lease {
        Lease {
            holder: holder.into(),
            since: Some(Utc::now()),
            job_requested_at: None,
            until: Utc::now() + Duration::seconds(seconds_left),
        }
    }

    #[test]
    fn the_lease_is_taken_with_the_watermark_over_what_a_dead_sync_left() {
        let mut before = account();
        before.feed_seq = 10;
        let taken = applied(
            &before,
            &Change::Acquire {
                lease: lease("me", 150),
                last_seq: 14,
            },
        );
        assert_eq!(taken.lease.as_ref().unwrap().holder, "me");
        assert_eq!(
            taken.feed_seq, 14,
            "entries left above the watermark join the feed"
        );
        let page = applied(
            &taken,
            &Change::Cursor {
                from: Some("c1".into()),
                to: "c2".into(),
                feed_seq: 17,
                counted: ChangeCount::default(),
                finished: None,
            },
        );
        assert_eq!(page.feed_seq, 17);
        assert!(page.lease.is_some(), "kept mid-enumeration");
        let done = applied(
            &page,
            &Change::Cursor {
                from: Some("c2".into()),
                to: "c3".into(),
                feed_seq: 17,
                counted: ChangeCount::default(),
                finished: Some(outcome(SyncStatus::Ok)),
            },
        );
        assert_eq!(done.lease, None, "given back with the last page");
    }

    #[test]
    fn a_syncs_changes_add_up_across_its_pages_and_invocations_until_its_end() {
        let page = |counted, finished| Change::Cursor {
            from: None,
            to: "c".into(),
            feed_seq: 0,
            counted,
            finished,
        };
        let two = ChangeCount {
            stored: 2,
            deleted: 1,
        };
        let first = applied(&account(), &page(two, None));
        let paused = applied(
            &first,
            &Change::Paused {
                holder: "me".into(),
            },
        );
        let failed = applied(
            &paused,
            &Change::Finished {
                outcome: outcome(SyncStatus::Failed),
                holder: "me".into(),
            },
        );
        let second = applied(&failed, &page(two, None));
        assert_eq!(
            second.unreported,
            ChangeCount {
                stored: 4,
                deleted: 2
            },
            "kept through a pause and a failure"
        );
        let done = applied(&second, &page(two, Some(outcome(SyncStatus::Ok))));
        assert!(done.unreported.is_zero(), "reported with the last page");
    }

    #[test]
    fn a_failure_gives_back_only_its_own_lease() {
        let mut before = account();
        before.lease = Some(lease("other", 60));
        let failed = Change::Finished {
            outcome: outcome(SyncStatus::Failed),
            holder: "me".into(),
        };
        assert!(applied(&before, &failed).lease.is_some());
        before.lease = Some(lease("me", 60));
        assert_eq!(applied(&before, &failed).lease, None);
    }

    #[test]
    fn a_live_lease_of_another_sync_supersedes_taking_it_and_an_expired_one_does_not() {
        let ours = account();
        let mut latest = account();
        let acquire = Change::Acquire {
            lease: lease("me", 150),
            last_seq: 0,
        };
        latest.lease = Some(lease("other", 60));
        assert!(superseded(&acquire, &ours, &latest));
        latest.lease = Some(lease("other", -1));
        assert!(!superseded(&acquire, &ours, &latest));
        latest.lease = None;
        assert!(!superseded(&acquire, &ours, &latest));
    }

    #[test]
    fn nothing_new_moves_the_cursor_and_records_the_outcome_unless_a_sync_got_there() {
        let mut ours = account();
        ours.cursor = Some("c1".into());
        ours.feed_seq = 9;
        let nothing_new = Change::NothingNew {
            from: Some("c1".into()),
            to: "c2".into(),
            outcome: outcome(SyncStatus::Ok),
        };
        let next = applied(&ours, &nothing_new);
        assert_eq!(next.cursor.as_deref(), Some("c2"));
        assert!(next.last_synced_at.is_some());
        assert_eq!((next.lease, next.feed_seq), (None, 9), "no lease, no feed");

        let mut latest = ours.clone();
        assert!(!superseded(&nothing_new, &ours, &latest), "unchanged");
        latest.lease = Some(lease("other", 60));
        assert!(superseded(&nothing_new, &ours, &latest), "a sync holds it");
        latest.lease = Some(lease("other", -1));
        assert!(!superseded(&nothing_new, &ours, &latest), "a dead one");
        latest.cursor = Some("c3".into());
        assert!(superseded(&nothing_new, &ours, &latest), "a sync moved it");
    }
}
