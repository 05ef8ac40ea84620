//! What one sync holds while it runs, and how it can end. The [`Session`] is the sync's hold
//! on one account: the record as last read (every write is conditional on its version),
//! the tokens, the deadline, its name on the lease. Each step of a sync (`listing`,
//! `index_writer`, `refresh`, `account_change`) is a method of it, in its own file; this one
//! is the floor they stand on, so that they import it and never each other's orchestration.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::deadline::Deadline;
use crate::error::ProviderError;
use crate::hub::Hub;
use crate::model::{Account, SyncReason, TokenSet};
use crate::providers::Connector;

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
    /// The user has no drive yet (a OneDrive never provisioned): recorded as the account's
    /// last sync (`drive_not_provisioned`); the next scheduled sync looks again.
    DriveNotProvisioned,
}

/// The requeue a provider error asks for: it outlived the retry engine's own waits and named
/// a wait of its own (`Retry-After`), which the queue's delay honours instead of holding the
/// invocation.
pub(super) fn asked_to_wait(error: &ProviderError) -> Option<SyncResult> {
    match error {
        ProviderError::Retryable {
            retry_after: Some(after),
            ..
        } => Some(SyncResult::Requeued { after: *after }),
        _ => None,
    }
}

/// One sync's hold on its account, from the job's start to its end (see the module's doc).
pub(super) struct Session<'a> {
    pub(super) hub: &'a Hub,
    pub(super) connector: Arc<dyn Connector>,
    pub(super) account: Account,
    pub(super) tokens: TokenSet,
    pub(super) deadline: Deadline,
    /// When the job was asked for: a lease taken later covers it (see [`Lease::covers`]).
    pub(super) requested_at: DateTime<Utc>,
    /// Why: `sync.completed` says it.
    pub(super) reason: SyncReason,
    /// This sync's name on the account's lease.
    pub(super) holder: String,
    /// Whether this invocation stored a page (its cursor committed), or found the account's
    /// sync under way in another worker: a requeue after that is not a stall.
    pub(super) progressed: bool,
    /// What this invocation did, for the job's metrics record (`crate::metrics`).
    pub(super) stats: Stats,
}

/// What one invocation of a sync did: pages and entries stored, tokens refreshed.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Stats {
    pub(super) pages: u64,
    pub(super) files: u64,
    pub(super) refreshes: u64,
}

impl Session<'_> {
    /// Whether this sync still holds the account's lease.
    pub(super) fn holds_lease(&self) -> bool {
        self.account
            .lease
            .as_ref()
            .is_some_and(|lease| lease.holder == self.holder)
    }
}
