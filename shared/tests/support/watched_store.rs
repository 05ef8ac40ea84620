//! A store that counts the lookups a push notification causes, can make them slow, and can
//! hold a notification between its channel read and what it does next (to race it with a
//! `DELETE`). Included by the push tests that need it (`#[path]`), so that other test
//! binaries do not build it.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hub::deadline::Deadline;
use hub::model::{
    Account, AccountView, ConnectSession, Deletion, FileEntry, LoginState, Page, PathRemoval,
    PushChannel,
};
use hub::store::{
    AccountScope, AccountStore, ClaimStore, FeedPage, FeedPosition, FileStore, LoginStore,
    PushStore, SpendingWrite, Store, Write,
};
use hub::HubResult;
use tokio::sync::Notify;

/// The store behind the route, counting every lookup a notification can cause, and slowed
/// by `delay` on each of them when set.
pub struct Watched {
    inner: Arc<dyn Store>,
    delay: Mutex<Duration>,
    get_channel: AtomicUsize,
    get_channels: AtomicUsize,
    channel_keys: AtomicUsize,
    get_account: AtomicUsize,
    identity_holders: AtomicUsize,
    /// Set by [`Watched::hold_after_channel_read`]: the next channel read (single or batched)
    /// signals the first and waits for the second before it returns what it read.
    hold: Mutex<Option<(Arc<Notify>, Arc<Notify>)>>,
}

impl Watched {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Watched {
            inner,
            delay: Mutex::new(Duration::ZERO),
            get_channel: AtomicUsize::new(0),
            get_channels: AtomicUsize::new(0),
            channel_keys: AtomicUsize::new(0),
            get_account: AtomicUsize::new(0),
            identity_holders: AtomicUsize::new(0),
            hold: Mutex::new(None),
        }
    }

    /// The next channel read returns only once `release` is notified, and notifies `read`
    /// once it has read: the notification then acts on what it read before whatever the
    /// test does meanwhile.
    pub fn hold_after_channel_read(&self) -> (Arc<Notify>, Arc<Notify>) {
        let pair = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        *self.hold.lock().unwrap() = Some(pair.clone());
        pair
    }

    async fn held(&self) {
        let hold = self.hold.lock().unwrap().take();
        if let Some((read, release)) = hold {
            read.notify_one();
            release.notified().await;
        }
    }

    async fn lookup(&self, counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// Every lookup so far: (single channel reads, batched reads, keys in them, account
    /// reads, identity queries); the counters start again.
    pub fn take(&self) -> (usize, usize, usize, usize, usize) {
        (
            self.get_channel.swap(0, Ordering::SeqCst),
            self.get_channels.swap(0, Ordering::SeqCst),
            self.channel_keys.swap(0, Ordering::SeqCst),
            self.get_account.swap(0, Ordering::SeqCst),
            self.identity_holders.swap(0, Ordering::SeqCst),
        )
    }

    pub fn slow(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }
}

#[async_trait]
impl AccountStore for Watched {
    async fn get_account(&self, id: &str) -> HubResult<Option<Account>> {
        self.lookup(&self.get_account).await;
        self.inner.get_account(id).await
    }
    async fn find_account(
        &self,
        owner: Option<&str>,
        provider: &str,
        provider_user_id: &str,
    ) -> HubResult<Option<Account>> {
        self.inner
            .find_account(owner, provider, provider_user_id)
            .await
    }
    async fn identity_holders(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> HubResult<Vec<String>> {
        self.lookup(&self.identity_holders).await;
        self.inner
            .identity_holders(provider, provider_user_id)
            .await
    }
    async fn create_account(&self, account: &Account) -> HubResult<Write> {
        self.inner.create_account(account).await
    }
    async fn update_account(&self, account: &Account, expected_version: u64) -> HubResult<Write> {
        self.inner.update_account(account, expected_version).await
    }
    async fn begin_deletion(&self, account: &Account, deletion: &Deletion) -> HubResult<Write> {
        self.inner.begin_deletion(account, deletion).await
    }
    async fn get_deletion(&self, id: &str) -> HubResult<Option<Deletion>> {
        self.inner.get_deletion(id).await
    }
    async fn update_deletion(
        &self,
        deletion: &Deletion,
        expected_version: u64,
    ) -> HubResult<Write> {
        self.inner.update_deletion(deletion, expected_version).await
    }
    async fn purge_page(&self, account_id: &str, limit: usize) -> HubResult<bool> {
        self.inner.purge_page(account_id, limit).await
    }
    async fn end_deletion(&self, deletion: &Deletion) -> HubResult<Write> {
        self.inner.end_deletion(deletion).await
    }
    async fn list_accounts(
        &self,
        provider: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<Account>> {
        self.inner.list_accounts(provider, after, limit).await
    }
    async fn list_account_views(
        &self,
        scope: &AccountScope,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<AccountView>> {
        self.inner.list_account_views(scope, after, limit).await
    }
    async fn list_active_account_ids(
        &self,
        provider: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<String>> {
        self.inner
            .list_active_account_ids(provider, after, limit)
            .await
    }
}

#[async_trait]
impl FileStore for Watched {
    async fn purge_files(&self, account_id: &str) -> HubResult<()> {
        self.inner.purge_files(account_id).await
    }
    async fn put_files(
        &self,
        account_id: &str,
        files: &[FileEntry],
        generation: u64,
        first_seq: u64,
    ) -> HubResult<()> {
        self.inner
            .put_files(account_id, files, generation, first_seq)
            .await
    }
    async fn mark_unseen_deleted(
        &self,
        account_id: &str,
        generation: u64,
        after: Option<&str>,
        limit: usize,
        first_seq: u64,
    ) -> HubResult<(u64, Option<String>)> {
        self.inner
            .mark_unseen_deleted(account_id, generation, after, limit, first_seq)
            .await
    }
    async fn mark_path_deleted(
        &self,
        account_id: &str,
        removal: &PathRemoval,
        after: Option<&str>,
        limit: usize,
        first_seq: u64,
    ) -> HubResult<(u64, Option<String>)> {
        self.inner
            .mark_path_deleted(account_id, removal, after, limit, first_seq)
            .await
    }
    async fn last_seq(&self, account_id: &str) -> HubResult<u64> {
        self.inner.last_seq(account_id).await
    }
    async fn changes(
        &self,
        account_id: &str,
        after: Option<&FeedPosition>,
        watermark: u64,
        limit: usize,
    ) -> HubResult<FeedPage> {
        self.inner
            .changes(account_id, after, watermark, limit)
            .await
    }
    async fn list_files(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<FileEntry>> {
        self.inner.list_files(account_id, after, limit).await
    }
}

#[async_trait]
impl LoginStore for Watched {
    async fn put_login_state(&self, state: &LoginState) -> HubResult<()> {
        self.inner.put_login_state(state).await
    }
    async fn put_connect_session(&self, session: &ConnectSession) -> HubResult<()> {
        self.inner.put_connect_session(session).await
    }
    async fn get_connect_session(&self, id: &str) -> HubResult<Option<ConnectSession>> {
        self.inner.get_connect_session(id).await
    }
    async fn spend_connect_session(&self, id: &str, now: DateTime<Utc>) -> HubResult<bool> {
        self.inner.spend_connect_session(id, now).await
    }
    async fn create_account_spending(
        &self,
        account: &Account,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> HubResult<SpendingWrite> {
        self.inner
            .create_account_spending(account, session_id, now)
            .await
    }
    async fn update_account_spending(
        &self,
        account: &Account,
        expected_version: u64,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> HubResult<SpendingWrite> {
        self.inner
            .update_account_spending(account, expected_version, session_id, now)
            .await
    }
    async fn restore_connect_session(&self, id: &str) -> HubResult<bool> {
        self.inner.restore_connect_session(id).await
    }
    async fn take_login_state(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> HubResult<Option<LoginState>> {
        self.inner.take_login_state(state, now).await
    }
}

#[async_trait]
impl PushStore for Watched {
    async fn mark_push_pending(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> HubResult<bool> {
        self.inner.mark_push_pending(account_id, now, until).await
    }
    async fn clear_push_pending(&self, account_id: &str) -> HubResult<()> {
        self.inner.clear_push_pending(account_id).await
    }
    async fn put_channel(&self, channel: &PushChannel) -> HubResult<()> {
        self.inner.put_channel(channel).await
    }
    async fn put_channel_if_account_live(&self, channel: &PushChannel) -> HubResult<Write> {
        self.inner.put_channel_if_account_live(channel).await
    }
    async fn get_channel(&self, provider: &str, id: &str) -> HubResult<Option<PushChannel>> {
        self.lookup(&self.get_channel).await;
        let read = self.inner.get_channel(provider, id).await;
        self.held().await;
        read
    }
    async fn get_channels(
        &self,
        provider: &str,
        ids: &[String],
        deadline: Deadline,
    ) -> HubResult<Vec<PushChannel>> {
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "each channel asked for once");
        self.channel_keys.fetch_add(ids.len(), Ordering::SeqCst);
        self.lookup(&self.get_channels).await;
        let read = self.inner.get_channels(provider, ids, deadline).await;
        self.held().await;
        read
    }
    async fn account_channels(&self, account_id: &str) -> HubResult<Vec<PushChannel>> {
        self.inner.account_channels(account_id).await
    }
    async fn delete_channel(&self, channel: &PushChannel) -> HubResult<()> {
        self.inner.delete_channel(channel).await
    }
}

#[async_trait]
impl ClaimStore for Watched {
    async fn claim(&self, key: &str, expires_at: DateTime<Utc>) -> HubResult<bool> {
        self.inner.claim(key, expires_at).await
    }
    async fn release_claim(&self, key: &str) -> HubResult<()> {
        self.inner.release_claim(key).await
    }
}
