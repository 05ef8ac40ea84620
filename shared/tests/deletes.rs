//! docs/API.md, "Deleting an account": `DELETE /users/{id}` always finishes. Once it has
//! answered 204 the account is gone for every route, its tokens are destroyed, no sync or push
//! runs for it and `account.deleted` is sent once; its index, feed, channels and push mark are
//! removed within the request's time or by a purge job on the sync queue; a repeated `DELETE`
//! answers 204 while that purge is pending and queues it again, 404 after. Every test runs on
//! both stores (the local one in a temp dir, DynamoDB on moto), behind the tests' store
//! wrapper (`support/hooked_store.rs`), which can cut a delete after its first step or slow
//! down its index deletes.

mod common;
#[path = "support/hooked_store.rs"]
mod hooked_store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{DelayRecorder as Recorded, EventRecorder};
use hooked_store::Hooked;
use hub::accounts;
use hub::deadline::Deadline;
use hub::model::{Account, FileEntry, Lease, PushChannel, QueueMessage, SyncJob, SyncReason};
use hub::store::dynamo::DynamoStore;
use hub::store::local::LocalStore;
use hub::store::{Store, Write};
use hub::sync::{self, SkipReason, SyncResult};
use hub::{Hub, HubError, HubResult};
use hub_testkit::FakeProviders;
use sha2::Digest as _;

// ------------------------------------------------------------------ the fixture

#[derive(Clone, Copy, Debug)]
enum Backend {
    Local,
    Dynamo,
}

struct Fixture {
    hub: Hub,
    store: Arc<Hooked>,
    queue: Arc<Recorded>,
    events: Arc<EventRecorder>,
    backend: Backend,
    dir: tempfile::TempDir,
    dynamo: Option<(aws_sdk_dynamodb::Client, String)>,
    _providers: FakeProviders,
}

const CHANNEL_SECRET: &str = "ch-1.secret";

async fn fixture(backend: Backend) -> Fixture {
    let providers = FakeProviders::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = providers.env_vars();
    env.push(("HUB_PUSH".into(), "on".into()));
    // Graph opens a drive subscription only for a grant that may write.
    env.push(("ONEDRIVE_SCOPES".into(), "Files.ReadWrite".into()));
    env.push(("HUB_WEBHOOK_URL".into(), "https://app.example/hooks".into()));
    env.push((
        "HUB_WEBHOOK_SECRET".into(),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwJf6zXZsZqeY=".into(),
    ));
    let mut hub = hub::testing::local_hub(dir.path(), &env).await;
    let (inner, dynamo): (Arc<dyn Store>, _) = match backend {
        Backend::Local => (Arc::new(LocalStore::open(dir.path()).unwrap()), None),
        Backend::Dynamo => {
            let (client, table) = common::dynamo_table().await;
            (
                Arc::new(DynamoStore::new(client.clone(), table.clone())),
                Some((client, table)),
            )
        }
    };
    let store = Arc::new(Hooked::new(inner));
    hub.store = store.clone();
    let queue = Arc::new(Recorded::default());
    hub.queue = queue.clone();
    let events = Arc::new(EventRecorder::default());
    hub.events = Some(events.clone());
    Fixture {
        hub,
        store,
        queue,
        events,
        backend,
        dir,
        dynamo,
        _providers: providers,
    }
}

impl Fixture {
    /// A connected Google account with `entries` index entries (and their feed), a push
    /// channel and a push mark.
    async fn account(&self, entries: usize) -> Account {
        let account =
            common::connected_account(&self.hub, "google", "at", "rt", chrono::Duration::hours(1))
                .await;
        let files: Vec<FileEntry> = (0..entries)
            .map(|i| FileEntry::new(format!("f{i:06}"), format!("file {i}")))
            .collect();
        for (i, chunk) in files.chunks(1000).enumerate() {
            self.hub
                .store
                .put_files(&account.id, chunk, 0, 1 + (i * 1000) as u64)
                .await
                .unwrap();
        }
        let now = Utc::now();
        self.hub
            .store
            .put_channel(&PushChannel {
                provider: "google".into(),
                id: "ch-1".into(),
                account_id: account.id.clone(),
                secret_hash: hex::encode(sha2::Sha256::digest(CHANNEL_SECRET.as_bytes())),
                resource_id: Some("resource-1".into()),
                expires_at: now + chrono::Duration::days(1),
                created_at: now,
                renew: false,
            })
            .await
            .unwrap();
        assert!(self
            .hub
            .store
            .mark_push_pending(&account.id, now, now + chrono::Duration::minutes(15))
            .await
            .unwrap());
        account
    }

    async fn delete(&self, id: &str, budget: Duration) -> HubResult<()> {
        accounts::delete_by(&self.hub, id, Deadline::after(budget)).await
    }

    async fn index_len(&self, id: &str) -> usize {
        let (mut count, mut after) = (0, None);
        loop {
            let page = self
                .hub
                .store
                .list_files(id, after.as_deref(), 1000)
                .await
                .unwrap();
            count += page.items.len();
            match page.next {
                Some(next) => after = Some(next),
                None => return count,
            }
        }
    }

    /// The account's record as stored, raw: no sealed token may be left in it.
    async fn raw_record(&self, id: &str) -> String {
        match (&self.backend, &self.dynamo) {
            (Backend::Local, _) => std::fs::read_to_string(
                self.dir
                    .path()
                    .join("accounts")
                    .join(format!("{}.json", hex::encode(id))),
            )
            .unwrap_or_default(),
            (Backend::Dynamo, Some((client, table))) => {
                let item = client
                    .get_item()
                    .table_name(table)
                    .key(
                        "pk",
                        aws_sdk_dynamodb::types::AttributeValue::S(format!("ACCOUNT#{id}")),
                    )
                    .key(
                        "sk",
                        aws_sdk_dynamodb::types::AttributeValue::S("ACCOUNT".into()),
                    )
                    .consistent_read(true)
                    .send()
                    .await
                    .unwrap()
                    .item;
                format!("{item:?}")
            }
            (Backend::Dynamo, None) => unreachable!("a DynamoDB fixture has its table"),
        }
    }

    /// Runs the queued purge jobs as the worker gets them, each invocation with `budget`,
    /// until none is queued: how many invocations it took.
    async fn run_purge_jobs(&self, budget: Duration) -> usize {
        for invocations in 0..500 {
            let queued = self.queue.take();
            if queued.is_empty() {
                return invocations;
            }
            let messages = queued
                .into_iter()
                .enumerate()
                .map(|(i, (message, _delay))| {
                    assert!(
                        matches!(message, QueueMessage::Purge { .. }),
                        "only purge jobs: {message:?}"
                    );
                    sync::Message {
                        id: format!("m{invocations}-{i}"),
                        body: serde_json::to_string(&message).unwrap(),
                    }
                })
                .collect();
            let failed = sync::handle_batch(&self.hub, messages, Deadline::after(budget)).await;
            assert!(failed.is_empty(), "purge jobs failed: {failed:?}");
        }
        panic!("the purge never finished");
    }

    /// Moves the tombstone's start back, as if the request that began it were long over.
    async fn age_tombstone(&self, id: &str) {
        let mut deletion = self.hub.store.get_deletion(id).await.unwrap().unwrap();
        let version = deletion.version;
        deletion.deleting_since -= chrono::Duration::minutes(1);
        deletion.version += 1;
        assert_eq!(
            self.hub
                .store
                .update_deletion(&deletion, version)
                .await
                .unwrap(),
            Write::Done
        );
    }

    fn deleted_events(&self) -> Vec<serde_json::Value> {
        self.events
            .bodies()
            .into_iter()
            .filter(|b| b["type"] == "account.deleted")
            .collect()
    }

    /// Gone for every route: 404 on the account, its files and its feed; in no page of
    /// `/users`, no fan-out, no login's lookup; no sealed token left at rest.
    async fn assert_invisible(&self, account: &Account) {
        let id = &account.id;
        let not_found = |r: &HubResult<_>| matches!(r, Err(HubError::AccountNotFound(_)));
        assert!(not_found(
            &accounts::get(self.hub.store.as_ref(), id).await.map(|_| ())
        ));
        assert!(not_found(
            &accounts::files(self.hub.store.as_ref(), id, 10, None)
                .await
                .map(|_| ())
        ));
        assert!(not_found(
            &hub::changes::feed(self.hub.store.as_ref(), id, None, 10)
                .await
                .map(|_| ())
        ));
        let listed = accounts::page(self.hub.store.as_ref(), 1000, None)
            .await
            .unwrap();
        assert!(listed.accounts.iter().all(|a| a.id != *id), "not in /users");
        let active = self
            .hub
            .store
            .list_active_account_ids("google", None, 1000)
            .await
            .unwrap();
        assert!(!active.items.contains(id), "no fan-out job for it");
        assert!(self
            .hub
            .store
            .find_account(None, "google", &account.provider_user_id)
            .await
            .unwrap()
            .is_none());
        let raw = self.raw_record(id).await;
        assert!(
            !raw.contains("tokens") && !raw.contains("ciphertext"),
            "no sealed token at rest: {raw}"
        );
    }

    /// Nothing of the account left in the store.
    async fn assert_nothing_left(&self, account: &Account) {
        let id = &account.id;
        assert!(self.hub.store.get_deletion(id).await.unwrap().is_none());
        assert!(self.hub.store.get_account(id).await.unwrap().is_none());
        assert_eq!(self.index_len(id).await, 0, "no index entry");
        assert_eq!(self.hub.store.last_seq(id).await.unwrap(), 0, "no feed");
        assert!(self
            .hub
            .store
            .account_channels(id)
            .await
            .unwrap()
            .is_empty());
        assert!(self
            .hub
            .store
            .get_channel("google", "ch-1")
            .await
            .unwrap()
            .is_none());
        let now = Utc::now();
        assert!(
            self.hub
                .store
                .mark_push_pending(id, now, now + chrono::Duration::minutes(1))
                .await
                .unwrap(),
            "no push mark left"
        );
        self.hub.store.clear_push_pending(id).await.unwrap();
        assert!(self.raw_record(id).await.is_empty() || self.raw_record(id).await == "None");
        assert!(matches!(
            self.delete(id, Duration::from_secs(5)).await,
            Err(HubError::AccountNotFound(_))
        ));
    }
}

fn sync_job(account: &Account) -> SyncJob {
    SyncJob {
        account_id: account.id.clone(),
        provider: "google".into(),
        reason: SyncReason::Manual,
        requested_at: Utc::now(),
        stalled_requeues: 0,
    }
}

// ------------------------------------------------------------------ the tests

/// A delete whose process dies right after its first step (the tombstone) has already made
/// the account invisible, tokenless and unsyncable; a repeated `DELETE` answers 204 and
/// queues the purge, which removes everything and sends the event the dead request never
/// sent, once.
async fn a_delete_cut_after_its_first_step_is_finished_by_repeating_it(backend: Backend) {
    let f = fixture(backend).await;
    let account = f.account(50).await;
    f.store.cut_after_tombstone(true);
    let cut = tokio::time::timeout(
        Duration::from_secs(3),
        f.delete(&account.id, Duration::from_secs(10)),
    )
    .await;
    assert!(cut.is_err(), "the delete died after its first step");
    f.store.cut_after_tombstone(false);
    assert!(f.queue.take().is_empty(), "it died before queuing anything");

    f.assert_invisible(&account).await;
    // No sync runs for it, and the job does not touch the index either.
    let synced = sync::run(&f.hub, &sync_job(&account), sync::fresh_invocation())
        .await
        .unwrap();
    assert_eq!(synced, SyncResult::Skipped(SkipReason::AccountDeleted));
    assert_eq!(f.index_len(&account.id).await, 50);
    // A push notification on its channel queues nothing.
    // (The delete stopped the channel first, so it is unknown or its account is gone.)
    let pushed = hub::push::channel_notification(
        &f.hub,
        "google",
        Some("ch-1"),
        Some(CHANNEL_SECRET),
        false,
    )
    .await;
    assert!(
        matches!(&pushed, Ok(queued) if queued.jobs == 0)
            || matches!(pushed, Err(HubError::ForgedNotification))
    );
    assert!(f.queue.take().is_empty());

    // Repeated: 204, and the purge is queued.
    f.delete(&account.id, Duration::from_secs(10))
        .await
        .expect("a repeated DELETE while the purge is pending answers 204");
    // The job removes the index at once, and waits for the dead request's time to be over
    // before it sends the event that request never sent.
    assert_eq!(f.run_purge_jobs_once(Duration::from_secs(20)).await, 1);
    assert_eq!(f.index_len(&account.id).await, 0);
    assert!(f
        .hub
        .store
        .get_deletion(&account.id)
        .await
        .unwrap()
        .is_some());
    assert!(f.deleted_events().is_empty());
    let requeued = f.queue.take();
    assert_eq!(requeued.len(), 1);
    assert!(requeued[0].1 > Duration::ZERO, "{requeued:?}");
    f.age_tombstone(&account.id).await;
    f.queue.0.lock().unwrap().extend(requeued);
    f.run_purge_jobs(Duration::from_secs(20)).await;
    f.assert_nothing_left(&account).await;
    let deleted = f.deleted_events();
    assert_eq!(deleted.len(), 1, "account.deleted once: {deleted:?}");
    assert_eq!(deleted[0]["data"]["account_id"], account.id.as_str());
}

/// A delete of 20,000 entries behind a store whose index deletes are slow answers within
/// its deadline; a repeated `DELETE` meanwhile answers 204; the purge job, bounded per
/// invocation and requeued until done, removes the rest; the event goes out once.
async fn a_large_delete_answers_in_time_and_its_purge_job_finishes(backend: Backend) {
    let f = fixture(backend).await;
    let account = f.account(20_000).await;
    f.store.slow_purge(Duration::from_millis(200));
    let budget = Duration::from_secs(2);
    let started = Instant::now();
    f.delete(&account.id, budget).await.unwrap();
    let emulator = f.store.tombstone_took();
    let took = started.elapsed() - emulator;
    assert!(
        took < budget + Duration::from_millis(500),
        "answered in {took:?}"
    );
    let left = f.index_len(&account.id).await;
    assert!(left > 0, "the slow store left entries for the purge job");
    f.assert_invisible(&account).await;
    assert_eq!(f.deleted_events().len(), 1);

    // Repeated during the purge: 204, the purge queued again.
    f.delete(&account.id, budget).await.unwrap();
    let queued = f.queue.take();
    assert!(
        queued.len() == 2
            && queued.iter().all(|(message, _)| matches!(
                message,
                QueueMessage::Purge { purge_account } if purge_account.account_id == account.id
            )),
        "{queued:?}"
    );
    f.queue.0.lock().unwrap().extend(queued);
    // Budgets of 3 s: each invocation must get through at least a page, which on a moto
    // busy with other tests' requests (scripts/test runs two lanes) took more than 1 s.
    let invocations = f.run_purge_jobs(Duration::from_secs(3)).await;
    assert!(
        invocations > 1,
        "bounded per invocation, requeued until done"
    );
    f.assert_nothing_left(&account).await;
    assert_eq!(f.deleted_events().len(), 1, "account.deleted once");
}

/// Two `DELETE`s at once: both answer (204, or 404 for one that finds everything done), the
/// event goes out once, nothing is left.
async fn racing_deletes_announce_once(backend: Backend) {
    let f = fixture(backend).await;
    let account = f.account(30).await;
    let budget = Duration::from_secs(5);
    let (a, b) = tokio::join!(f.delete(&account.id, budget), f.delete(&account.id, budget));
    let answered = [a, b];
    assert!(answered.iter().any(Result::is_ok), "{answered:?}");
    assert!(
        answered
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(HubError::AccountNotFound(_)))),
        "{answered:?}"
    );
    f.run_purge_jobs(Duration::from_secs(20)).await;
    f.assert_nothing_left(&account).await;
    assert_eq!(f.deleted_events().len(), 1, "account.deleted once");
}

/// A sync that held the account's lease when the delete began may still store a page until
/// its lease ends: the purge ends no earlier, unless that sync, finding its account gone,
/// gives the lease back; then it purges that page too, at once.
async fn the_purge_outwaits_a_running_syncs_lease(backend: Backend) {
    let f = fixture(backend).await;
    let mut account = f.account(10).await;
    let mut leased = account.clone();
    leased.lease = Some(Lease {
        holder: "a-running-sync".into(),
        since: Some(Utc::now()),
        job_requested_at: None,
        until: Utc::now() + chrono::Duration::seconds(3),
    });
    let lease_end = Instant::now() + Duration::from_secs(3);
    leased.version += 1;
    assert_eq!(
        f.hub
            .store
            .update_account(&leased, account.version)
            .await
            .unwrap(),
        Write::Done
    );
    account = leased;
    f.delete(&account.id, Duration::from_secs(5)).await.unwrap();
    assert!(f
        .hub
        .store
        .get_deletion(&account.id)
        .await
        .unwrap()
        .is_some());
    // The running sync's last page, after the delete's purge.
    f.hub
        .store
        .put_files(&account.id, &[FileEntry::new("late", "late.txt")], 0, 100)
        .await
        .unwrap();
    let queued = f.queue.take();
    assert_eq!(queued.len(), 1);
    f.queue.0.lock().unwrap().extend(queued);
    // Run now: the lease holds, so the job is requeued for when it ends.
    assert_eq!(f.run_purge_jobs_once(Duration::from_secs(10)).await, 1);
    let requeued = f.queue.take();
    assert_eq!(requeued.len(), 1);
    assert!(requeued[0].1 > Duration::ZERO && requeued[0].1 <= Duration::from_secs(3));
    assert!(f
        .hub
        .store
        .get_deletion(&account.id)
        .await
        .unwrap()
        .is_some());
    // Another sync's end changes nothing; the holder's, finding its account gone, gives
    // the lease back and queues the purge at once.
    hub::purge::after_sync(&f.hub, &account.id, Some("another-sync"))
        .await
        .unwrap();
    assert!(f.queue.take().is_empty());
    hub::purge::after_sync(&f.hub, &account.id, Some("a-running-sync"))
        .await
        .unwrap();
    f.run_purge_jobs(Duration::from_secs(10)).await;
    f.assert_nothing_left(&account).await;
    assert!(
        Instant::now() < lease_end,
        "the purge ended with the lease given back, before it expired"
    );
}

impl Fixture {
    /// One invocation of the queued jobs; what it requeues stays queued.
    async fn run_purge_jobs_once(&self, budget: Duration) -> usize {
        let messages: Vec<_> = self
            .queue
            .take()
            .into_iter()
            .enumerate()
            .map(|(i, (message, _))| sync::Message {
                id: format!("once-{i}"),
                body: serde_json::to_string(&message).unwrap(),
            })
            .collect();
        let count = messages.len();
        let failed = sync::handle_batch(&self.hub, messages, Deadline::after(budget)).await;
        assert!(failed.is_empty());
        count
    }
}

#[tokio::test]
async fn local_a_delete_cut_after_its_first_step_is_finished_by_repeating_it() {
    a_delete_cut_after_its_first_step_is_finished_by_repeating_it(Backend::Local).await;
}

#[tokio::test]
async fn dynamo_a_delete_cut_after_its_first_step_is_finished_by_repeating_it() {
    a_delete_cut_after_its_first_step_is_finished_by_repeating_it(Backend::Dynamo).await;
}

#[tokio::test]
async fn local_a_large_delete_answers_in_time_and_its_purge_job_finishes() {
    a_large_delete_answers_in_time_and_its_purge_job_finishes(Backend::Local).await;
}

#[tokio::test]
async fn dynamo_a_large_delete_answers_in_time_and_its_purge_job_finishes() {
    a_large_delete_answers_in_time_and_its_purge_job_finishes(Backend::Dynamo).await;
}

#[tokio::test]
async fn local_racing_deletes_announce_once() {
    racing_deletes_announce_once(Backend::Local).await;
}

#[tokio::test]
async fn dynamo_racing_deletes_announce_once() {
    racing_deletes_announce_once(Backend::Dynamo).await;
}

#[tokio::test]
async fn local_the_purge_outwaits_a_running_syncs_lease() {
    the_purge_outwaits_a_running_syncs_lease(Backend::Local).await;
}

#[tokio::test]
async fn dynamo_the_purge_outwaits_a_running_syncs_lease() {
    the_purge_outwaits_a_running_syncs_lease(Backend::Dynamo).await;
}
