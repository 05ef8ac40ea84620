//! docs/API.md, "Sync jobs and timing": a sync never runs into its invocation's deadline. Out
//! of time, or asked by a provider to wait longer than the hub waits, the worker stores its
//! place and requeues the account; the message is done, never failed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{DelayRecorder as Recorded, EventRecorder};
use hub::config::Env;
use hub::deadline::Deadline;
use hub::model::{QueueMessage, SyncJob, SyncReason};
use hub::providers::http::RetryPolicy;
use hub::sync::{self, Message};
use hub::Hub;
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Fixture {
    server: MockServer,
    hub: Hub,
    queue: Arc<Recorded>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let server = MockServer::start().await;
    common::mount_graph_drive(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let base = server.uri();
    let env = Env::from_map(vec![
        ("HUB_DATA_DIR", dir.path().display().to_string()),
        ("ONEDRIVE_CLIENT_ID", "m-id".into()),
        ("ONEDRIVE_CLIENT_SECRET", "m-secret".into()),
        ("ONEDRIVE_AUTHORITY_URL", base.clone()),
        ("ONEDRIVE_GRAPH_URL", format!("{base}/v1.0")),
    ]);
    let retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(1),
    };
    let mut hub = Hub::build(&env, retry).await.unwrap();
    let queue = Arc::new(Recorded::default());
    hub.queue = queue.clone();
    Fixture {
        server,
        hub,
        queue,
        _dir: dir,
    }
}

impl Fixture {
    fn delta(&self, token: &str) -> String {
        format!(
            "{}/v1.0/me/drive/root/delta?token={token}",
            self.server.uri()
        )
    }

    /// A OneDrive account whose access token is `access`; its job as a queue message.
    async fn account(&self, access: &str) -> (String, Message) {
        let account = common::connected_account(
            &self.hub,
            "onedrive",
            access,
            "refresh",
            chrono::Duration::hours(1),
        )
        .await;
        let job = QueueMessage::Sync(SyncJob {
            account_id: account.id.clone(),
            provider: "onedrive".into(),
            reason: SyncReason::Schedule,
            requested_at: chrono::Utc::now(),
            stalled_requeues: 0,
        });
        let message = Message {
            id: format!("m-{access}"),
            body: serde_json::to_string(&job).unwrap(),
        };
        (account.id, message)
    }
}

fn requeued_ids(queued: &[(QueueMessage, Duration)]) -> Vec<String> {
    queued
        .iter()
        .map(|(m, _)| match m {
            QueueMessage::Sync(job) => job.account_id.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_drive_bigger_than_one_invocation_finishes_across_several() {
    let mut f = fixture().await;
    let events = Arc::new(EventRecorder::default());
    f.hub.events = Some(events.clone());
    const PAGES: usize = 6;
    const PAGE_DELAY: Duration = Duration::from_millis(400);
    for page in 0..PAGES {
        let next = if page + 1 == PAGES {
            json!({"@odata.deltaLink": f.delta("done")})
        } else {
            json!({"@odata.nextLink": f.delta(&format!("p{}", page + 1))})
        };
        let mut body = json!({"value": [{"id": format!("f{page}"), "name": format!("{page}.txt"), "file": {}}]});
        body.as_object_mut()
            .unwrap()
            .extend(next.as_object().unwrap().clone());
        let answer = ResponseTemplate::new(200)
            .set_body_json(body)
            .set_delay(PAGE_DELAY);
        let mock = Mock::given(method("GET")).and(path("/v1.0/me/drive/root/delta"));
        let mock = if page == 0 {
            mock.and(query_param_is_missing("token"))
        } else {
            mock.and(query_param("token", format!("p{page}")))
        };
        mock.respond_with(answer).mount(&f.server).await;
    }
    let (id, message) = f.account("a").await;

    let mut pending = vec![message];
    let mut invocations = 0;
    while let Some(message) = pending.pop() {
        invocations += 1;
        assert!(invocations < 20, "the sync makes progress");
        // Room for about two slow pages per invocation.
        let deadline = Deadline::after(Duration::from_millis(1000));
        let failed = sync::handle_batch(&f.hub, vec![message], deadline).await;
        assert!(failed.is_empty(), "out of time is not a failure");
        for (queued, delay) in f.queue.take() {
            assert_eq!(delay, Duration::ZERO);
            pending.push(Message {
                id: format!("m{invocations}"),
                body: serde_json::to_string(&queued).unwrap(),
            });
        }
    }
    assert!(invocations >= 3, "{invocations} invocations");
    let account = f.hub.store.get_account(&id).await.unwrap().unwrap();
    assert_eq!(
        common::onedrive_link(account.cursor.as_deref()),
        Some(f.delta("done"))
    );
    let files = f.hub.store.list_files(&id, None, 100).await.unwrap();
    assert_eq!(files.items.len(), PAGES);
    // One `sync.completed`, at the end, for what every invocation of the sync stored.
    let completed = events.syncs_completed();
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert_eq!(completed[0]["files_changed"], PAGES);
    assert_eq!(completed[0]["files_deleted"], 0);
    assert_eq!(account.last_sync.unwrap().files_changed, PAGES as u64);
    assert!(account.unreported.is_zero());
}

#[tokio::test]
async fn a_long_retry_after_requeues_with_that_delay_and_is_not_a_failure() {
    let f = fixture().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "600"))
        .mount(&f.server)
        .await;
    let (id, message) = f.account("a").await;
    let failed = sync::handle_batch(
        &f.hub,
        vec![message],
        Deadline::after(Duration::from_secs(30)),
    )
    .await;
    assert!(failed.is_empty());
    let queued = f.queue.take();
    assert_eq!(requeued_ids(&queued), [id]);
    assert_eq!(queued[0].1, Duration::from_secs(600));
}

#[tokio::test]
async fn a_slow_job_is_requeued_and_fails_no_other_job_of_its_batch() {
    let f = fixture().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .and(header("authorization", "Bearer slow"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"value": [], "@odata.deltaLink": f.delta("d")}))
                .set_delay(Duration::from_secs(10)),
        )
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .and(header("authorization", "Bearer fast"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"value": [], "@odata.deltaLink": f.delta("d")})),
        )
        .mount(&f.server)
        .await;
    let (slow, slow_message) = f.account("slow").await;
    let (fast, fast_message) = f.account("fast").await;
    let started = std::time::Instant::now();
    let failed = sync::handle_batch(
        &f.hub,
        vec![slow_message, fast_message],
        Deadline::after(Duration::from_secs(2)),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the batch answers by its deadline"
    );
    assert!(failed.is_empty(), "both done: {failed:?}");
    assert_eq!(requeued_ids(&f.queue.take()), [slow]);
    let fast = f.hub.store.get_account(&fast).await.unwrap().unwrap();
    assert_eq!(
        common::onedrive_link(fast.cursor.as_deref()),
        Some(f.delta("d"))
    );
}

#[tokio::test]
async fn a_sync_told_to_wait_every_time_fails_after_a_bound_so_that_it_dead_letters() {
    let f = fixture().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "600"))
        .mount(&f.server)
        .await;
    let (id, mut message) = f.account("a").await;
    // Each round delivers what the last one requeued, as SQS would after the delay.
    let mut rounds = 0;
    let failed = loop {
        rounds += 1;
        assert!(rounds <= 20, "requeued for ever");
        let failed = sync::handle_batch(
            &f.hub,
            vec![message],
            Deadline::after(Duration::from_secs(30)),
        )
        .await;
        let queued = f.queue.take();
        if !failed.is_empty() {
            assert!(queued.is_empty(), "a failed job is not requeued as well");
            break failed;
        }
        assert_eq!(requeued_ids(&queued), std::slice::from_ref(&id));
        let QueueMessage::Sync(job) = &queued[0].0 else {
            panic!("{queued:?}")
        };
        assert_eq!(job.stalled_requeues, rounds, "counted in the job");
        message = Message {
            id: format!("m-{rounds}"),
            body: serde_json::to_string(&queued[0].0).unwrap(),
        };
    };
    assert_eq!(rounds, sync::MAX_STALLED_REQUEUES + 1);
    assert_eq!(
        failed,
        [format!("m-{}", sync::MAX_STALLED_REQUEUES)],
        "a batch item failure: SQS retries it, then dead-letters it"
    );
    // The failure is on the account too.
    let redelivered = f.hub.store.get_account(&id).await.unwrap().unwrap();
    assert_eq!(
        redelivered.last_sync.unwrap().result,
        hub::model::SyncStatus::Failed
    );
}

#[tokio::test]
async fn a_requeue_after_a_stored_page_starts_the_count_again() {
    let f = fixture().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .and(query_param("token", "p2"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "600"))
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .and(query_param_is_missing("token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"value": [{"id": "f1", "name": "a.txt", "file": {}}], "@odata.nextLink": f.delta("p2")}),
        ))
        .mount(&f.server)
        .await;
    let (_, message) = f.account("a").await;
    let mut job: SyncJob = serde_json::from_str(&message.body).unwrap();
    job.stalled_requeues = sync::MAX_STALLED_REQUEUES;
    let message = Message {
        id: "m".into(),
        body: serde_json::to_string(&QueueMessage::Sync(job)).unwrap(),
    };
    let failed = sync::handle_batch(
        &f.hub,
        vec![message],
        Deadline::after(Duration::from_secs(30)),
    )
    .await;
    assert!(failed.is_empty(), "it stored a page: not a stall");
    let queued = f.queue.take();
    let QueueMessage::Sync(requeued) = &queued[0].0 else {
        panic!("{queued:?}")
    };
    assert_eq!(requeued.stalled_requeues, 0);
    let body = serde_json::to_value(&queued[0].0).unwrap();
    assert!(
        body.get("stalled_requeues").is_none(),
        "a count of 0 is not written (the job body stays as docs/API.md shows it): {body}"
    );
}
