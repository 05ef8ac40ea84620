//! The one store wrapper of the tests: it hands every call to the store it wraps, so that a
//! new store method is delegated here once, and can be hooked where a test needs to see or
//! steer what the hub does:
//! - for push notifications, it counts the lookups they cause, can make each slow, and can
//!   hold one between its channel read and what it does next (to race it with a `DELETE`);
//! - for deletes, it can die right after a delete's first step (the tombstone is written,
//!   then that call hangs, as in a process that is gone), can make each page of an index
//!   purge slow, and times the tombstone's write.
//!
//! Included by the tests that need it (`#[path]`), so that other test binaries do not build
//! it.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hub::deadline::Deadline;
use hub::model::{
    Account, AccountView, ConnectSession, ContentLink, Deletion, FileEntry, LoginState, Page,
    PathRemoval, PushChannel,
};
use hub::store::{
    AccountScope, AccountStore, ClaimStore, FeedPage, FeedPosition, FileStore, Folder, LinkStore,
    LoginStore, PushStore, Scan, SpendingWrite, Store, Write,
};
use hub::HubResult;
use tokio::sync::Notify;

/// The store behind the hub under test, with every hook off until a test sets it.
pub struct Hooked {
    inner: Arc<dyn Store>,
    /// Added to every lookup a notification can cause ([`Hooked::slow`]).
    delay: Mutex<Duration>,
    get_channel: AtomicUsize,
    get_channels: AtomicUsize,
    channel_keys: AtomicUsize,
    get_account: AtomicUsize,
    identity_holders: AtomicUsize,
    /// Set by [`Hooked::hold_after_channel_read`]: the next channel read (single or batched)
    /// signals the first and waits for the second before it returns what it read.
    hold: Mutex<Option<(Arc<Notify>, Arc<Notify>)>>,
    /// Set by [`Hooked::cut_after_tombstone`].
    cut_after_tombstone: AtomicBool,
    /// Added to every page of an index purge ([`Hooked::slow_purge`]).
    purge_delay: Mutex<Duration>,
    /// How long the last tombstone's write took ([`Hooked::tombstone_took`]).
    tombstone_took: Mutex<Duration>,
}

impl Hooked {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Hooked {
            inner,
            delay: Mutex::new(Duration::ZERO),
            get_channel: AtomicUsize::new(0),
            get_channels: AtomicUsize::new(0),
            channel_keys: AtomicUsize::new(0),
            get_account: AtomicUsize::new(0),
            identity_holders: AtomicUsize::new(0),
            hold: Mutex::new(None),
            cut_after_tombstone: AtomicBool::new(false),
            purge_delay: Mutex::new(Duration::ZERO),
            tombstone_took: Mutex::new(Duration::ZERO),
        }
    }

    // ------------------------------------------------------------ push notifications

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

    /// Each lookup a notification can cause takes `delay` longer.
    pub fn slow(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    // ------------------------------------------------------------ deletes

    /// While `cut`, a delete dies right after its first step: the tombstone is written, then
    /// the call that wrote it never returns.
    pub fn cut_after_tombstone(&self, cut: bool) {
        self.cut_after_tombstone.store(cut, Ordering::SeqCst);
    }

    /// Each page of an index purge takes `delay` longer.
    pub fn slow_purge(&self, delay: Duration) {
        *self.purge_delay.lock().unwrap() = delay;
    }

    /// How long the last tombstone's write took: moto copies the whole table for every
    /// `TransactWriteItems` (to roll it back), seconds for a table of 20,000 items, which
    /// DynamoDB does not.
    pub fn tombstone_took(&self) -> Duration {
        *self.tombstone_took.lock().unwrap()
    }
}

#[async_trait]
impl AccountStore for Hooked {
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
        let started = Instant::now();
        let written = self.inner.begin_deletion(account, deletion).await?;
        *self.tombstone_took.lock().unwrap() = started.elapsed();
        if self.cut_after_tombstone.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(written)
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
        let delay = *self.purge_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
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
impl FileStore for Hooked {
    async fn purge_files(&self, account_id: &str) -> HubResult<()> {
        self.inner.purge_files(account_id).await
    }
    async fn get_file(&self, account_id: &str, file_id: &str) -> HubResult<Option<FileEntry>> {
        self.inner.get_file(account_id, file_id).await
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
    async fn list_folder(
        &self,
        account_id: &str,
        drive_id: &str,
        in_folder: Option<&Folder>,
        deleted: Option<bool>,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Scan> {
        self.inner
            .list_folder(account_id, drive_id, in_folder, deleted, after, limit)
            .await
    }
    async fn list_under_path(
        &self,
        account_id: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Scan> {
        self.inner
            .list_under_path(account_id, prefix, after, limit)
            .await
    }
}

#[async_trait]
impl LoginStore for Hooked {
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
impl PushStore for Hooked {
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
impl ClaimStore for Hooked {
    async fn claim(&self, key: &str, expires_at: DateTime<Utc>) -> HubResult<bool> {
        self.inner.claim(key, expires_at).await
    }
    async fn release_claim(&self, key: &str) -> HubResult<()> {
        self.inner.release_claim(key).await
    }
}

#[async_trait]
impl LinkStore for Hooked {
    async fn put_content_link(&self, link: &ContentLink) -> HubResult<()> {
        self.inner.put_content_link(link).await
    }
    async fn get_content_link(&self, id: &str) -> HubResult<Option<ContentLink>> {
        self.inner.get_content_link(id).await
    }
}
