//! The fan-out: one job per active account, never all accounts at once, continued through
//! the queue when an invocation's time budget runs out.

mod common;

use common::JobRecorder as Recorded;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use hub::config::Env;
use hub::deadline::Deadline;
use hub::fanout::{self, SyncRequest, Trigger};
use hub::model::{AccountStatus, FanOutPosition, QueueMessage, SyncReason};
use hub::providers::http::RetryPolicy;
use hub::{Hub, HubError};

async fn hub_with(
    accounts: &[(&str, AccountStatus)],
    only_google: bool,
) -> (Hub, Arc<Recorded>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = vec![
        ("HUB_DATA_DIR", dir.path().display().to_string()),
        ("GOOGLE_CLIENT_ID", "g".to_string()),
        ("GOOGLE_CLIENT_SECRET", "s".to_string()),
    ];
    if !only_google {
        vars.push(("ONEDRIVE_CLIENT_ID", "m".into()));
        vars.push(("ONEDRIVE_CLIENT_SECRET", "s".into()));
    }
    let mut hub = Hub::build(&Env::from_map(vars), RetryPolicy::default())
        .await
        .unwrap();
    let recorded = Arc::new(Recorded::default());
    hub.queue = recorded.clone();
    for (i, (provider, status)) in accounts.iter().enumerate() {
        let account = hub::testing::account(provider)
            .id(format!("{provider}-{i:05}"))
            .user(&format!("u{i}"))
            .email("")
            .status(*status)
            .build();
        assert_eq!(
            hub.store.create_account(&account).await.unwrap(),
            hub::store::Write::Done
        );
    }
    (hub, recorded, dir)
}

fn manual() -> Trigger {
    Trigger::new(
        SyncReason::Manual,
        Deadline::after(Duration::from_secs(20)),
        None,
    )
}

fn take(recorded: &Recorded) -> Vec<QueueMessage> {
    std::mem::take(&mut *recorded.0.lock().unwrap())
}

#[tokio::test]
async fn a_fan_out_out_of_time_continues_through_the_queue_and_misses_no_one() {
    let mut accounts = vec![("google", AccountStatus::Active); 1100];
    accounts.extend(vec![("onedrive", AccountStatus::Active); 600]);
    accounts[7].1 = AccountStatus::NeedsReauth;
    let (hub, recorded, _dir) = hub_with(&accounts, false).await;
    let position = FanOutPosition {
        providers: vec!["google".into(), "onedrive".into()],
        after: None,
        reason: SyncReason::Schedule,
        chain: "c1".into(),
        step: 0,
    };

    // No time at all: each invocation still queues one chunk of 100, then hands over.
    let mut invocations = 1;
    let mut queued = fanout::fan_out(&hub, position, Deadline::after(Duration::ZERO))
        .await
        .unwrap();
    let mut jobs = HashSet::new();
    loop {
        let mut continuation = None;
        for message in take(&recorded) {
            match message {
                QueueMessage::Sync(job) => {
                    assert!(jobs.insert(job.account_id), "each account once")
                }
                QueueMessage::FanOut { continue_fanout } => continuation = Some(continue_fanout),
                other => panic!("a fan-out queues no {other:?}"),
            }
        }
        let Some(position) = continuation else { break };
        invocations += 1;
        queued += fanout::fan_out(&hub, position, Deadline::after(Duration::ZERO))
            .await
            .unwrap();
    }
    assert_eq!(
        jobs.len(),
        1699,
        "every active account, none in needs_reauth"
    );
    assert_eq!(queued, 1699);
    assert!(!jobs.contains("google-00007"));
    assert_eq!(
        invocations, 17,
        "11 chunks of Google accounts, 6 of OneDrive"
    );

    // With time to spare, one invocation does it all.
    let position = FanOutPosition {
        providers: vec!["google".into()],
        after: None,
        reason: SyncReason::Manual,
        chain: "c2".into(),
        step: 0,
    };
    assert_eq!(
        fanout::fan_out(&hub, position, Deadline::after(Duration::from_secs(60)))
            .await
            .unwrap(),
        1099
    );
    assert!(take(&recorded)
        .iter()
        .all(|m| matches!(m, QueueMessage::Sync(_))));
}

#[tokio::test]
async fn a_continuation_message_round_trips_through_the_worker() {
    let (hub, recorded, _dir) = hub_with(&[("google", AccountStatus::Active); 3], true).await;
    let message = QueueMessage::FanOut {
        continue_fanout: FanOutPosition {
            providers: vec!["google".into()],
            after: Some("google-00000".into()),
            reason: SyncReason::Schedule,
            chain: "c1".into(),
            step: 1,
        },
    };
    let body = serde_json::to_string(&message).unwrap();
    let failed = hub::sync::handle_batch(
        &hub,
        vec![hub::sync::Message {
            id: "m1".into(),
            body,
        }],
        hub::sync::fresh_invocation(),
    )
    .await;
    assert!(failed.is_empty());
    let users: Vec<String> = take(&recorded)
        .into_iter()
        .map(|m| match m {
            QueueMessage::Sync(job) => job.account_id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(users, ["google-00001", "google-00002"]);
}

#[tokio::test]
async fn sync_requests_are_checked() {
    let (hub, recorded, _dir) = hub_with(
        &[
            ("google", AccountStatus::Active),
            ("google", AccountStatus::NeedsReauth),
        ],
        true,
    )
    .await;
    let request = |source: Option<&str>, user: Option<&str>| SyncRequest {
        source_type: source.map(Into::into),
        account_id: user.map(Into::into),
    };

    let started = fanout::start(&hub, request(None, None), manual())
        .await
        .unwrap();
    assert_eq!(
        (started.target_providers, started.jobs_enqueued),
        (vec!["google"], 1)
    );
    let one = fanout::start(
        &hub,
        request(Some("google"), Some("google-00000")),
        manual(),
    )
    .await
    .unwrap();
    assert_eq!(one.jobs_enqueued, 1);
    let skipped = fanout::start(&hub, request(None, Some("google-00001")), manual())
        .await
        .unwrap();
    assert_eq!(
        skipped.jobs_enqueued, 0,
        "needs_reauth accounts are skipped"
    );
    assert_eq!(
        take(&recorded).len(),
        1,
        "the second request found the account's job still waiting (`hub::jobs`)"
    );

    let error = |r| async { fanout::start(&hub, r, manual()).await.unwrap_err() };
    assert!(matches!(
        error(request(Some("icloud"), None)).await,
        HubError::InvalidSourceType(_)
    ));
    assert!(matches!(
        error(request(Some(""), None)).await,
        HubError::InvalidSourceType(_)
    ));
    assert!(matches!(
        error(request(None, Some("nobody"))).await,
        HubError::AccountNotFound(_)
    ));
    let not_configured = error(request(Some("onedrive"), None)).await;
    assert_eq!(
        (not_configured.code(), not_configured.status()),
        ("provider_not_configured", 400)
    );
}

#[tokio::test]
async fn a_duplicated_continuation_queues_no_account_twice_and_forks_no_chain() {
    let (hub, recorded, _dir) = hub_with(&[("google", AccountStatus::Active); 250], true).await;
    // The deadline has passed: the step queues one chunk and hands the rest over.
    let trigger = Trigger::new(
        SyncReason::Schedule,
        Deadline::after(Duration::ZERO),
        Some("event-1"),
    );
    let first = fanout::start(&hub, SyncRequest::default(), trigger.clone())
        .await
        .unwrap();
    assert_eq!(first.jobs_enqueued, 100);
    // Lambda retries the same scheduled event: its first step is already done.
    let retried = fanout::start(&hub, SyncRequest::default(), trigger)
        .await
        .unwrap();
    assert_eq!(
        retried.jobs_enqueued, 0,
        "a retried schedule starts no second chain"
    );

    let mut jobs = HashSet::new();
    let mut steps = 0;
    let mut pending: Vec<QueueMessage> = take(&recorded);
    while !pending.is_empty() {
        let mut continuations = Vec::new();
        for message in pending {
            match message {
                QueueMessage::Sync(job) => {
                    assert!(jobs.insert(job.account_id), "each account once")
                }
                continuation @ QueueMessage::FanOut { .. } => continuations.push(continuation),
                other => panic!("a fan-out queues no {other:?}"),
            }
        }
        assert!(continuations.len() <= 1, "one chain: {continuations:?}");
        for continuation in continuations {
            steps += 1;
            let body = serde_json::to_string(&continuation).unwrap();
            // SQS delivers the continuation twice (at-least-once), in one batch.
            let failed = hub::sync::handle_batch(
                &hub,
                vec![
                    hub::sync::Message {
                        id: "m1".into(),
                        body: body.clone(),
                    },
                    hub::sync::Message {
                        id: "m2".into(),
                        body,
                    },
                ],
                Deadline::after(Duration::ZERO),
            )
            .await;
            assert!(
                failed.is_empty(),
                "a duplicate is done, not failed: {failed:?}"
            );
        }
        pending = take(&recorded);
    }
    assert_eq!(jobs.len(), 250);
    assert_eq!(steps, 2, "two continuations after the first step");
}

/// One job per active account of `accounts` is on the queue after each producer, whatever
/// it is: a fan-out, `POST /sync` for one account, or a sync requeued for a long wait.
async fn one_waiting_job_per_account(store: Arc<dyn hub::store::Store>) {
    let dir = tempfile::tempdir().unwrap();
    let vars = vec![
        ("HUB_DATA_DIR", dir.path().display().to_string()),
        ("GOOGLE_CLIENT_ID", "g".to_string()),
        ("GOOGLE_CLIENT_SECRET", "s".to_string()),
    ];
    let mut hub = Hub::build(&Env::from_map(vars), RetryPolicy::default())
        .await
        .unwrap();
    let recorded = Arc::new(Recorded::default());
    hub.queue = recorded.clone();
    hub.store = store;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let account = hub::testing::account("google")
            .user(&common::unique("u"))
            .email("")
            .build();
        assert_eq!(
            hub.store.create_account(&account).await.unwrap(),
            hub::store::Write::Done
        );
        ids.push(account.id);
    }
    let mine = |queued: Vec<QueueMessage>| -> Vec<String> {
        let mut jobs: Vec<String> = queued
            .into_iter()
            .filter_map(|m| match m {
                QueueMessage::Sync(job) if ids.contains(&job.account_id) => Some(job.account_id),
                _ => None,
            })
            .collect();
        jobs.sort();
        jobs
    };
    let request = |user: Option<&str>| SyncRequest {
        source_type: Some("google".into()),
        account_id: user.map(Into::into),
    };
    fanout::start(&hub, request(None), manual()).await.unwrap();
    assert_eq!(mine(take(&recorded)).len(), 3);

    // While those wait, neither the schedule nor `POST /sync` piles a second job on them.
    let again = fanout::start(&hub, request(None), manual()).await.unwrap();
    assert!(again.jobs_enqueued >= 3, "one is on the queue for each");
    let one = fanout::start(&hub, request(Some(&ids[0])), manual())
        .await
        .unwrap();
    assert_eq!(one.jobs_enqueued, 1);
    assert_eq!(
        mine(take(&recorded)),
        Vec::<String>::new(),
        "nothing more queued"
    );

    // A worker starts the first account's job (one it drops at once, naming another
    // provider): from then on a job for it is queued again, since the sync may list past a
    // change made now.
    let start = |id: &str| hub::model::SyncJob {
        account_id: id.to_string(),
        provider: "onedrive".into(),
        reason: SyncReason::Schedule,
        requested_at: chrono::Utc::now(),
        stalled_requeues: 0,
    };
    let started = hub::sync::run(&hub, &start(&ids[0]), hub::sync::fresh_invocation())
        .await
        .unwrap();
    assert!(matches!(started, hub::sync::SyncResult::Skipped(_)));
    fanout::start(&hub, request(Some(&ids[0])), manual())
        .await
        .unwrap();
    assert_eq!(mine(take(&recorded)), [ids[0].clone()]);

    // The second account's job starts and is requeued for a long Retry-After: its
    // continuation waits, and holds the fan-out off for that long too.
    hub::sync::run(&hub, &start(&ids[1]), hub::sync::fresh_invocation())
        .await
        .unwrap();
    hub::jobs::requeue(&hub, &start(&ids[1]), Duration::from_secs(900))
        .await
        .unwrap();
    assert_eq!(mine(take(&recorded)), [ids[1].clone()]);
    fanout::start(&hub, request(None), manual()).await.unwrap();
    assert_eq!(mine(take(&recorded)), Vec::<String>::new());
}

#[tokio::test]
async fn an_account_whose_job_waits_gets_no_second_one_in_the_local_store() {
    let dir = tempfile::tempdir().unwrap();
    one_waiting_job_per_account(Arc::new(
        hub::store::local::LocalStore::open(dir.path()).unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn an_account_whose_job_waits_gets_no_second_one_in_dynamodb() {
    let (client, table) = common::dynamo_table().await;
    one_waiting_job_per_account(Arc::new(hub::store::dynamo::DynamoStore::new(
        client, table,
    )))
    .await;
}
