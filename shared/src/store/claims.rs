//! The claims role: single-use markers, such as those that make a fan-out step or a
//! redelivered queue message run once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::HubResult;

#[async_trait]
pub trait ClaimStore: Send + Sync {
    /// Takes the single-use marker `key`: true for the first caller only, whether the
    /// others come later or at the same time (a conditional create). The marker may be
    /// forgotten after `expires_at`. Makes a redelivered queue message a no-op.
    async fn claim(&self, key: &str, expires_at: DateTime<Utc>) -> HubResult<bool>;

    /// Gives a claimed marker back, so that the work it guarded can be done again (after a
    /// failure the queue retries).
    async fn release_claim(&self, key: &str) -> HubResult<()>;
}
