//! The logins role: login states, connect sessions, and the account writes that spend a
//! session.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SpendingWrite;
use crate::error::HubResult;
use crate::model::{Account, ConnectSession, LoginState};

#[async_trait]
pub trait LoginStore: Send + Sync {
    async fn put_login_state(&self, state: &LoginState) -> HubResult<()>;

    /// Stores a new connect session under its id (the hash of its token).
    async fn put_connect_session(&self, session: &ConnectSession) -> HubResult<()>;

    /// The session as stored, spent or expired alike (the callback still needs the
    /// `return_to` of an expired one); `None` when unknown.
    async fn get_connect_session(&self, id: &str) -> HubResult<Option<ConnectSession>>;

    /// Spends the session: true for one caller only, and only while it is unspent and not
    /// expired at `now` (a conditional write, so two callbacks cannot both spend it).
    async fn spend_connect_session(&self, id: &str, now: DateTime<Utc>) -> HubResult<bool>;

    /// [`AccountStore::create_account`](super::AccountStore::create_account) and [`LoginStore::spend_connect_session`] as one write: the
    /// account of a session's login is stored exactly when its session is spent, so a failed
    /// write leaves the session usable, and of two callbacks of one session exactly one
    /// connects.
    async fn create_account_spending(
        &self,
        account: &Account,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> HubResult<SpendingWrite>;

    /// [`AccountStore::update_account`](super::AccountStore::update_account) and [`LoginStore::spend_connect_session`] as one write.
    async fn update_account_spending(
        &self,
        account: &Account,
        expected_version: u64,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> HubResult<SpendingWrite>;

    /// Undoes a spend (the connected account's event could not be queued, so the login
    /// failed and its user must be able to retry with the same session): true when the
    /// session was spent and now is not.
    async fn restore_connect_session(&self, id: &str) -> HubResult<bool>;

    /// Removes and returns the state; `None` when unknown, already used or expired.
    async fn take_login_state(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> HubResult<Option<LoginState>>;
}
