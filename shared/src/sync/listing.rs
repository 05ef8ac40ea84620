//! Paging through the provider's listing: one page at a time from a cursor, recovering
//! once from a refused access token and once from an expired cursor, and the one page
//! listed before the lease that lets most syncs (those that find nothing new) end with one
//! write. Every call is held to the sync's deadline
//! ([`crate::deadline::Deadline::start_within`]).

use chrono::Utc;

use super::account_change::{Change, Committed};
use super::state::{asked_to_wait, Session, SkipReason, SyncResult};
use crate::deadline::Bounded;
use crate::error::{HubResult, ProviderError};
use crate::model::SyncOutcome;
use crate::providers::{FilePage, NextPage};

/// A page that says "more" and hands back the very cursor it was listed from: followed, it
/// would be listed (stored, numbered for the feed) again for ever, so it is the provider's
/// error. Only a continuation counts: a last page whose cursor equals the saved one is a
/// legitimate "nothing new" (Drive's `newStartPageToken`, a Dropbox cursor with `has_more`
/// false, a Graph `deltaLink`), and every connector maps those to [`NextPage::Done`].
pub(super) fn repeated_cursor() -> ProviderError {
    ProviderError::Rejected("the provider repeated its continuation cursor".into())
}

/// Where the listing goes on from, and the one-time recoveries already spent on it.
pub(super) struct Position {
    /// Differs from the stored cursor only after a restart on an expired cursor.
    pub(super) cursor: Option<String>,
    pub(super) refreshed_after_401: bool,
    pub(super) restarted: bool,
}

/// What listing before the lease found: the job's end, or work for the leased enumeration
/// (with the page already listed, and the cursor it was listed from).
pub(super) enum Peek {
    Ended(SyncResult),
    Work(Option<(Option<String>, FilePage)>),
}

/// A page's answer listed ahead of its turn, and the cursor it was listed from.
pub(super) struct Ahead {
    pub(super) from: Option<String>,
    pub(super) answer: Bounded<Result<FilePage, ProviderError>>,
}

/// What the next step of a listing brought.
pub(super) enum Step {
    Page(FilePage),
    /// The job ends here (the grant is gone, or another worker is ahead).
    Ended(SyncResult),
}

impl Session<'_> {
    /// Most syncs find nothing new: those take no lease, and end with one write of the
    /// account (the cursor and the outcome, conditional on the version read). A sync lists
    /// one page first, from the stored cursor, when the last sync ended cleanly (no lease
    /// left, no changes waiting for their event) and no reconciliation is pending; an empty
    /// last page ends it here. Otherwise the page (with the cursor it was listed from) goes
    /// to the leased enumeration.
    /// Recoveries (a refresh after a 401, a restart on an expired cursor) are left to that
    /// enumeration, which asks again.
    pub(super) async fn unless_nothing_new(&mut self) -> HubResult<Peek> {
        if self.account.lease.is_some()
            || self.account.listing.reconcile
            || !self.account.unreported.is_zero()
            || self.account.cursor.is_none()
            || self.account.drives.is_empty()
        {
            return Ok(Peek::Work(None));
        }
        let from = self.account.cursor.clone();
        let call = self
            .connector
            .list_page(&self.tokens.access_token, from.as_deref());
        let page = match self.deadline.start_within(call).await {
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
            outcome: SyncOutcome::ok(Utc::now(), 0),
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

    /// The next page of the listing at `position`, recovering once from a refused access
    /// token (refresh, then ask again) and once from an expired cursor (a new enumeration
    /// from scratch, recorded on the account first so that a sync killed during it still
    /// reconciles when it resumes). `answer` is the listing's answer at `position` when it
    /// was asked ahead; the recoveries apply to it as to an answer asked here.
    pub(super) async fn next_page(
        &mut self,
        position: &mut Position,
        mut answer: Option<Bounded<Result<FilePage, ProviderError>>>,
    ) -> HubResult<Step> {
        loop {
            let answer = match answer.take() {
                Some(answer) => answer,
                None => {
                    let call = self
                        .connector
                        .list_page(&self.tokens.access_token, position.cursor.as_deref());
                    self.deadline.start_within(call).await
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
}
