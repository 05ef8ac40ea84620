//! The account record's state machine: each [`Change`] a sync makes to the account, what it
//! leaves ([`applied`]), and when another worker's write overtook it ([`superseded`]); both
//! pure. Then the one conditional write that applies a change ([`Session::commit`]): every
//! account write of a sync goes through it, so the rules of the record live in one place.

use chrono::{DateTime, Utc};

use super::state::Session;
use crate::crypto::Sealed;
use crate::error::{HubError, HubResult};
use crate::model::{
    Account, AccountStatus, ChangeCount, Drive, Lease, Listing, SyncOutcome, SyncStatus,
};
use crate::store::Write;
use crate::tokens;

/// The `last_sync` error of an account whose grant the provider refused.
pub(super) const GRANT_REFUSED: &str = "grant_refused";

/// Attempts at a conditional write before giving the job back to the queue.
const WRITE_ATTEMPTS: usize = 5;

/// A change to the account record, applied to the latest version on conflict.
#[derive(Debug, Clone)]
pub(super) enum Change {
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
        /// The account's drives after the page, when it changed them or the sync recounted
        /// them.
        drives: Option<Vec<Drive>>,
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
    pub(super) fn needs_lease(&self) -> bool {
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
            drives,
            finished,
            ..
        } => {
            next.cursor = Some(to.clone());
            if let Some(drives) = drives {
                next.drives = drives.clone();
            }
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
                detail: Some("the provider refused the grant, or the access it gave".into()),
                error: Some(GRANT_REFUSED.into()),
            });
        }
    }
    next.version = account.version + 1;
    next
}

fn record_outcome(account: &mut Account, outcome: &SyncOutcome) {
    account.last_sync = Some(outcome.clone());
    if outcome.result == SyncStatus::Ok {
        account.last_synced_at = Some(outcome.finished_at);
        crate::drives::synced(&mut account.drives, outcome.finished_at);
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
pub(super) enum Committed {
    Yes,
    /// Another worker got there first: see [`superseded`].
    Superseded,
}

impl Session<'_> {
    /// The account as stored now; [`HubError::AccountDeletedDuringSync`] when it was
    /// deleted during the sync.
    pub(super) async fn reload(&self) -> HubResult<Account> {
        self.hub
            .store
            .get_account(&self.account.id)
            .await?
            .ok_or_else(|| HubError::AccountDeletedDuringSync(self.account.id.clone()))
    }

    /// Builds on `latest` from now on, with the tokens it holds.
    pub(super) async fn adopt(&mut self, latest: Account) -> HubResult<()> {
        if latest.tokens != self.account.tokens {
            self.tokens = tokens::open(self.hub.cipher.as_ref(), &latest).await?;
        }
        self.account = latest;
        Ok(())
    }

    /// Applies `change` to the account with a conditional write, re-reading and re-applying
    /// it when another writer got there first. A change of the enumeration is refused once
    /// another sync has taken the lease (this one's expired): that sync is listing now.
    pub(super) async fn commit(&mut self, change: Change) -> HubResult<Committed> {
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

#[cfg(test)]
mod tests;
