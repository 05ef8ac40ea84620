//! The sync worker against wiremock stand-ins of Graph and Drive: first and incremental syncs,
//! refresh when due and after a 401, refused refreshes, 410 resync, a sync killed half-way,
//! duplicate jobs and concurrent workers.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use chrono::Utc;
use hub::config::Env;
use hub::model::{Account, AccountStatus, SyncJob, SyncReason, SyncStatus, TokenSet};
use hub::providers::http::RetryPolicy;
use hub::sync::{self, SkipReason, SyncResult};
use hub::{tokens, Hub};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::sync::Notify;
use wiremock::matchers::{body_string_contains, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Fixture {
    server: MockServer,
    hub: Hub,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    fixture_with(&[]).await
}

/// The fixture with `overrides` on top of its variables, e.g. one provider endpoint pointed
/// at a [`gated_stand_in`].
async fn fixture_with(overrides: &[(&str, String)]) -> Fixture {
    let server = MockServer::start().await;
    common::mount_graph_drive(&server).await;
    common::mount_no_shared_drives(&server, "/google").await;
    let dir = tempfile::tempdir().unwrap();
    let base = server.uri();
    let mut vars = vec![
        ("HUB_DATA_DIR", dir.path().display().to_string()),
        ("ONEDRIVE_CLIENT_ID", "m-id".into()),
        ("ONEDRIVE_CLIENT_SECRET", "m-secret".into()),
        ("ONEDRIVE_AUTHORITY_URL", base.clone()),
        ("ONEDRIVE_GRAPH_URL", format!("{base}/v1.0")),
        ("GOOGLE_CLIENT_ID", "g-id".into()),
        ("GOOGLE_CLIENT_SECRET", "g-secret".into()),
        ("GOOGLE_TOKEN_URL", format!("{base}/google/token")),
        ("GOOGLE_API_URL", format!("{base}/google")),
    ];
    vars.extend(overrides.iter().cloned());
    let env = Env::from_map(vars);
    let retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(2),
    };
    let hub = Hub::build(&env, retry).await.unwrap();
    Fixture {
        server,
        hub,
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

    /// An account as a completed login leaves it.
    async fn account(
        &self,
        provider: &str,
        access: &str,
        refresh: &str,
        expires_in: chrono::Duration,
    ) -> Account {
        common::connected_account(&self.hub, provider, access, refresh, expires_in).await
    }

    async fn sync(&self, account: &Account) -> Result<SyncResult, hub::HubError> {
        let job = SyncJob {
            account_id: account.id.clone(),
            provider: account.provider.clone(),
            reason: SyncReason::Manual,
            requested_at: Utc::now(),
            stalled_requeues: 0,
        };
        sync::run(&self.hub, &job, sync::fresh_invocation()).await
    }

    async fn stored(&self, account: &Account) -> Account {
        self.hub
            .store
            .get_account(&account.id)
            .await
            .unwrap()
            .unwrap()
    }

    async fn stored_tokens(&self, account: &Account) -> TokenSet {
        tokens::open(self.hub.cipher.as_ref(), &self.stored(account).await)
            .await
            .unwrap()
    }

    async fn index(&self, account: &Account) -> Vec<hub::model::FileEntry> {
        self.hub
            .store
            .list_files(&account.id, None, 1000)
            .await
            .unwrap()
            .items
    }

    async fn requests_to(&self, wanted: &str) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.to_string().contains(wanted))
            .count()
    }

    /// Graph: the root delta is two pages, the second ending in `delta1`.
    async fn mount_full_enumeration(&self) {
        Mock::given(method("GET"))
            .and(path("/v1.0/me/drive/root/delta"))
            .and(query_param("token", "page2"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "value": [{"id": "f2", "name": "b.txt", "size": 2, "file": {"mimeType": "text/plain"}}],
                "@odata.deltaLink": self.delta("delta1"),
            })))
            .mount(&self.server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1.0/me/drive/root/delta"))
            .and(query_param(
                "$select",
                "id,name,size,file,folder,root,deleted,lastModifiedDateTime,webUrl,parentReference,\
                 remoteItem,package",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "value": [
                    {"id": "root", "name": "root", "root": {}, "folder": {"childCount": 2}},
                    {"id": "f1", "name": "a.txt", "size": 1, "file": {"mimeType": "text/plain"}}
                ],
                "@odata.nextLink": self.delta("page2"),
            })))
            .mount(&self.server)
            .await;
    }

    async fn mount_refresh(&self, old_refresh: &str, new_access: &str, new_refresh: &str) {
        Mock::given(method("POST"))
            .and(path("/common/oauth2/v2.0/token"))
            .and(body_string_contains(format!("refresh_token={old_refresh}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "token_type": "Bearer", "expires_in": 3600, "access_token": new_access, "refresh_token": new_refresh
            })))
            .up_to_n_times(1)
            .mount(&self.server)
            .await;
    }

    async fn mount_invalid_grant(&self) {
        Mock::given(method("POST"))
            .and(path("/common/oauth2/v2.0/token"))
            .respond_with(ResponseTemplate::new(400).set_body_json(
                json!({"error": "invalid_grant", "error_description": "AADSTS70008"}),
            ))
            .mount(&self.server)
            .await;
    }
}

/// A stand-in endpoint served on the test's own runtime, built by `router` from its base
/// URL. Its handlers may wait for the test, which is how the tests below order events
/// between workers: wiremock's responders answer synchronously on the mock server's own
/// thread, so they can only delay an answer, never hold it until something has happened.
async fn gated_stand_in(router: impl FnOnce(String) -> Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(base.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Fails the test instead of hanging it when a gate is never opened.
async fn within_a_minute<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .expect("the workers deadlocked on a gate")
}

fn hours(n: i64) -> chrono::Duration {
    chrono::Duration::hours(n)
}

#[tokio::test]
async fn first_sync_enumerates_and_later_syncs_ask_only_for_changes() {
    let f = fixture().await;
    f.mount_full_enumeration().await;
    Mock::given(method("GET"))
        .and(query_param("token", "delta1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [
                {"id": "f1", "name": "a-renamed.txt", "size": 5, "file": {"mimeType": "text/plain"}},
                {"id": "f2", "deleted": {"state": "deleted"}}
            ],
            "@odata.deltaLink": f.delta("delta2"),
        })))
        .mount(&f.server)
        .await;
    let account = f.account("onedrive", "EwB.a", "M.r", hours(1)).await;

    assert_eq!(
        f.sync(&account).await.unwrap(),
        SyncResult::Synced { pages: 2, files: 2 }
    );
    let stored = f.stored(&account).await;
    assert_eq!(
        common::onedrive_link(stored.cursor.as_deref()),
        Some(f.delta("delta1"))
    );
    assert_eq!(
        stored.version,
        account.version + 3,
        "the lease, then one account write per page, the last one with the outcome \
         (which gives the lease back)"
    );
    assert!(stored.last_synced_at.is_some());
    assert_eq!(stored.last_sync.unwrap().result, SyncStatus::Ok);
    assert_eq!(
        f.index(&account)
            .await
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["a.txt", "b.txt"]
    );

    assert_eq!(
        f.sync(&account).await.unwrap(),
        SyncResult::Synced { pages: 1, files: 2 }
    );
    let index = f.index(&account).await;
    assert_eq!(index[0].name, "a-renamed.txt");
    assert!(index[1].deleted);
    assert_eq!(index[1].name, "b.txt", "the tombstone keeps the known name");
    let after_changes = f.stored(&account).await;
    assert_eq!(
        common::onedrive_link(after_changes.cursor.as_deref()),
        Some(f.delta("delta2"))
    );
    assert_eq!(
        after_changes.version,
        stored.version + 2,
        "a one-page sync writes twice: the lease, then the page with the outcome"
    );
    assert_eq!(after_changes.last_sync.unwrap().files_changed, 2);
    assert_eq!(
        f.requests_to("select=id").await,
        1,
        "the full enumeration ran once"
    );
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_first_and_the_rotated_refresh_token_stored() {
    let f = fixture().await;
    f.mount_full_enumeration().await;
    f.mount_refresh("M.old", "EwB.fresh", "M.rotated").await;
    let account = f
        .account(
            "onedrive",
            "EwB.stale",
            "M.old",
            chrono::Duration::minutes(4),
        )
        .await;

    assert!(matches!(
        f.sync(&account).await.unwrap(),
        SyncResult::Synced { .. }
    ));
    let tokens = f.stored_tokens(&account).await;
    assert_eq!(tokens.access_token.expose_secret(), "EwB.fresh");
    assert_eq!(tokens.refresh_token.unwrap().expose_secret(), "M.rotated");
    let listing = f.server.received_requests().await.unwrap();
    let listing = listing
        .iter()
        .find(|r| r.url.path().ends_with("/delta"))
        .unwrap();
    assert_eq!(listing.headers["authorization"], "Bearer EwB.fresh");
}

#[tokio::test]
async fn a_401_refreshes_once_and_a_second_401_fails_the_job() {
    let f = fixture().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer EwB.revoked",
        ))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"code": "InvalidAuthenticationToken"}})),
        )
        .mount(&f.server)
        .await;
    f.mount_full_enumeration().await;
    f.mount_refresh("M.1", "EwB.new", "M.2").await;
    let account = f.account("onedrive", "EwB.revoked", "M.1", hours(1)).await;
    assert!(matches!(
        f.sync(&account).await.unwrap(),
        SyncResult::Synced { .. }
    ));
    assert_eq!(f.requests_to("oauth2/v2.0/token").await, 1);

    // Refreshed tokens refused as well: no loop, the job fails for SQS to retry.
    let g = fixture().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&g.server)
        .await;
    g.mount_refresh("M.1", "EwB.new", "M.2").await;
    let account = g.account("onedrive", "EwB.a", "M.1", hours(1)).await;
    assert!(g.sync(&account).await.is_err());
    assert_eq!(g.requests_to("oauth2/v2.0/token").await, 1);
    assert_eq!(g.requests_to("/delta").await, 2);
}

#[tokio::test]
async fn a_refused_refresh_marks_the_account_and_is_not_retried() {
    let f = fixture().await;
    f.mount_invalid_grant().await;
    let account = f
        .account(
            "onedrive",
            "EwB.a",
            "M.revoked",
            chrono::Duration::minutes(-5),
        )
        .await;
    assert_eq!(f.sync(&account).await.unwrap(), SyncResult::NeedsReauth);
    let stored = f.stored(&account).await;
    assert_eq!(stored.status, AccountStatus::NeedsReauth);
    assert_eq!(stored.last_sync.unwrap().result, SyncStatus::NeedsReauth);
    // The next delivery of the same job does nothing and calls nobody.
    let before = f.server.received_requests().await.unwrap().len();
    assert_eq!(
        f.sync(&account).await.unwrap(),
        SyncResult::Skipped(SkipReason::NeedsReauth)
    );
    assert_eq!(f.server.received_requests().await.unwrap().len(), before);
    // And the fan-out leaves it out.
    let started = hub::fanout::start(
        &f.hub,
        Default::default(),
        hub::fanout::Trigger::new(SyncReason::Schedule, sync::fresh_invocation(), None),
    )
    .await
    .unwrap();
    assert_eq!(started.jobs_enqueued, 0);
}

#[tokio::test]
async fn an_expired_delta_link_starts_the_enumeration_over() {
    let f = fixture().await;
    Mock::given(method("GET"))
        .and(query_param("token", "expired"))
        .respond_with(
            ResponseTemplate::new(410).set_body_json(json!({"error": {"code": "resyncRequired"}})),
        )
        .mount(&f.server)
        .await;
    f.mount_full_enumeration().await;
    let account = f.account("onedrive", "EwB.a", "M.r", hours(1)).await;
    let mut with_cursor = f.stored(&account).await;
    with_cursor.cursor = Some(f.delta("expired"));
    with_cursor.version = 2;
    assert_eq!(
        f.hub.store.update_account(&with_cursor, 1).await.unwrap(),
        hub::store::Write::Done
    );

    assert_eq!(
        f.sync(&account).await.unwrap(),
        SyncResult::Synced { pages: 2, files: 2 }
    );
    assert_eq!(
        common::onedrive_link(f.stored(&account).await.cursor.as_deref()),
        Some(f.delta("delta1"))
    );
}

#[tokio::test]
async fn a_sync_that_dies_half_way_resumes_from_the_last_stored_page() {
    let mut f = fixture().await;
    let events = Arc::new(common::EventRecorder::default());
    f.hub.events = Some(events.clone());
    // Page 2 fails past the bounded retries: the job fails after page 1 was stored.
    Mock::given(method("GET"))
        .and(query_param("token", "page2"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .mount(&f.server)
        .await;
    f.mount_full_enumeration().await;
    let account = f.account("onedrive", "EwB.a", "M.r", hours(1)).await;

    assert!(f.sync(&account).await.is_err());
    let stored = f.stored(&account).await;
    assert_eq!(
        common::onedrive_link(stored.cursor.as_deref()),
        Some(f.delta("page2")),
        "the cursor stops at the first unsaved page"
    );
    assert_eq!(stored.last_sync.unwrap().result, SyncStatus::Failed);
    assert_eq!(f.index(&account).await.len(), 1);

    // The redelivered job picks up at page 2 and does not enumerate again.
    assert_eq!(
        f.sync(&account).await.unwrap(),
        SyncResult::Synced { pages: 1, files: 1 }
    );
    assert_eq!(f.index(&account).await.len(), 2);
    assert_eq!(f.requests_to("select=id").await, 1);
    // The failed job's page is reported too, once, with the sync's end.
    let completed = events.syncs_completed();
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert_eq!(completed[0]["files_changed"], 2);
}

#[tokio::test]
async fn the_same_job_twice_leaves_the_same_result() {
    let f = fixture().await;
    f.mount_full_enumeration().await;
    Mock::given(method("GET"))
        .and(query_param("token", "delta1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"value": [], "@odata.deltaLink": f.delta("delta1")})),
        )
        .mount(&f.server)
        .await;
    let account = f.account("onedrive", "EwB.a", "M.r", hours(1)).await;
    f.sync(&account).await.unwrap();
    let (index, cursor) = (f.index(&account).await, f.stored(&account).await.cursor);
    assert_eq!(
        f.sync(&account).await.unwrap(),
        SyncResult::Synced { pages: 1, files: 0 }
    );
    assert_eq!(f.index(&account).await, index);
    assert_eq!(f.stored(&account).await.cursor, cursor);
}

#[tokio::test]
async fn concurrent_workers_never_move_the_cursor_back() {
    // The first page is answered only once the second worker has ended: the first one then
    // holds the account's lease, so the second one finds it and ends without listing (one
    // enumeration of an account at a time), and the first one's cursor stands. The second
    // job was asked for after the first sync started, which may list past what it was
    // asked for: it is requeued for when the lease ends.
    let first_on_the_first_page = Arc::new(Notify::new());
    let second_ended = Arc::new(Notify::new());
    let (on_page, ended) = (first_on_the_first_page.clone(), second_ended.clone());
    let graph = gated_stand_in(|base| {
        let drive = || async { Json(json!({"id": "drive-1", "name": "OneDrive"})) };
        Router::new().route("/v1.0/me/drive", get(drive)).route(
            "/v1.0/me/drive/root/delta",
            get(move |Query(query): Query<HashMap<String, String>>| async move {
                if query.get("token").map(String::as_str) == Some("page2") {
                    return Json(json!({
                        "value": [{"id": "f2", "name": "b.txt"}],
                        "@odata.deltaLink": format!("{base}/v1.0/me/drive/root/delta?token=delta1"),
                    }));
                }
                on_page.notify_one();
                ended.notified().await;
                Json(json!({
                    "value": [{"id": "f1", "name": "a.txt"}],
                    "@odata.nextLink": format!("{base}/v1.0/me/drive/root/delta?token=page2"),
                }))
            }),
        )
    })
    .await;
    let f = fixture_with(&[("ONEDRIVE_GRAPH_URL", format!("{graph}/v1.0"))]).await;
    let account = f.account("onedrive", "EwB.a", "M.r", hours(1)).await;
    let (a, b) = within_a_minute(async {
        tokio::join!(f.sync(&account), async {
            first_on_the_first_page.notified().await;
            let second = f.sync(&account).await;
            second_ended.notify_one();
            second
        })
    })
    .await;
    let results = [a.unwrap(), b.unwrap()];
    assert!(
        matches!(results[1], SyncResult::Requeued { after } if after.as_secs() > 60),
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .any(|r| matches!(r, SyncResult::Synced { .. })),
        "{results:?}"
    );
    assert_eq!(
        common::onedrive_link(f.stored(&account).await.cursor.as_deref()),
        Some(format!("{graph}/v1.0/me/drive/root/delta?token=delta1"))
    );
    assert_eq!(f.index(&account).await.len(), 2);
}

#[tokio::test]
async fn a_refresh_token_rotated_by_another_worker_is_adopted_not_lost() {
    // Both workers read the account with M.1. The first refresh with M.1 succeeds and
    // rotates it; the second is refused (M.1 is refused after its first use), and its
    // refusal is held until the first worker has stored M.2 and finished. The refusal's
    // conditional write then finds newer tokens: the second worker adopts them and syncs
    // with them instead of marking the account `needs_reauth`.
    let first_refresh_arrived = Arc::new(Notify::new());
    let release_first_refresh = Arc::new(Notify::new());
    let second_refresh_arrived = Arc::new(Notify::new());
    let release_refusal = Arc::new(Notify::new());
    let (arrived, release) = (first_refresh_arrived.clone(), release_first_refresh.clone());
    let (refused_arrived, release_refused) =
        (second_refresh_arrived.clone(), release_refusal.clone());
    let m1_used = Arc::new(AtomicBool::new(false));
    let authority = gated_stand_in(|_| {
        Router::new().route(
            "/common/oauth2/v2.0/token",
            post(move |form: String| async move {
                if form.contains("refresh_token=M.1") && !m1_used.swap(true, Ordering::SeqCst) {
                    arrived.notify_one();
                    release.notified().await;
                    return (
                        StatusCode::OK,
                        Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": "EwB.2", "refresh_token": "M.2"})),
                    );
                }
                refused_arrived.notify_one();
                release_refused.notified().await;
                (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "invalid_grant", "error_description": "AADSTS70008"})),
                )
            }),
        )
    })
    .await;
    let f = fixture_with(&[("ONEDRIVE_AUTHORITY_URL", authority)]).await;
    f.mount_full_enumeration().await;
    // What the adopting worker lists from the cursor the first one left.
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .and(query_param("token", "delta1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [], "@odata.deltaLink": f.delta("delta2"),
        })))
        .mount(&f.server)
        .await;
    let account = f
        .account("onedrive", "EwB.1", "M.1", chrono::Duration::minutes(1))
        .await;

    let first_done = Arc::new(Notify::new());
    let (a, b, ()) = within_a_minute(async {
        tokio::join!(
            async {
                let synced = f.sync(&account).await;
                first_done.notify_one();
                synced
            },
            async {
                first_refresh_arrived.notified().await;
                f.sync(&account).await
            },
            async {
                // The second worker has read M.1 and been refused: the first one stores
                // its rotated tokens and finishes before the refusal is answered.
                second_refresh_arrived.notified().await;
                release_first_refresh.notify_one();
                first_done.notified().await;
                release_refusal.notify_one();
            }
        )
    })
    .await;
    assert!(matches!(a.unwrap(), SyncResult::Synced { .. }));
    assert!(
        matches!(b.as_ref().unwrap(), SyncResult::Synced { .. }),
        "the refused worker adopted the rotated tokens and synced: {b:?}"
    );
    let stored = f.stored(&account).await;
    assert_eq!(
        stored.status,
        AccountStatus::Active,
        "the refusal was not written"
    );
    assert_eq!(
        f.stored_tokens(&account)
            .await
            .refresh_token
            .unwrap()
            .expose_secret(),
        "M.2"
    );
    // The adopting worker listed with the access token the other one stored.
    let listed_with: Vec<String> = f
        .server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.query().is_some_and(|q| q.contains("token=delta1")))
        .map(|r| r.headers["authorization"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(listed_with, ["Bearer EwB.2"]);
}

#[tokio::test]
async fn a_refusal_stored_before_the_rotated_refresh_token_gives_way_to_it() {
    // The first refresh with M.1 succeeds and rotates it, but its answer is held until the
    // second worker has had M.1 refused and given up on the grant; M.1 is refused after
    // its first use. The rotated tokens, stored last, make the account active again.
    let first_refresh_arrived = Arc::new(Notify::new());
    let release_first_refresh = Arc::new(Notify::new());
    let (arrived, release) = (first_refresh_arrived.clone(), release_first_refresh.clone());
    let m1_used = Arc::new(AtomicBool::new(false));
    let authority = gated_stand_in(|_| {
        Router::new().route(
            "/common/oauth2/v2.0/token",
            post(move |form: String| async move {
                if form.contains("refresh_token=M.1") && !m1_used.swap(true, Ordering::SeqCst) {
                    arrived.notify_one();
                    release.notified().await;
                    return (
                        StatusCode::OK,
                        Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": "EwB.2", "refresh_token": "M.2"})),
                    );
                }
                (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "invalid_grant", "error_description": "AADSTS70008"})),
                )
            }),
        )
    })
    .await;
    let f = fixture_with(&[("ONEDRIVE_AUTHORITY_URL", authority)]).await;
    f.mount_full_enumeration().await;
    let account = f
        .account("onedrive", "EwB.1", "M.1", chrono::Duration::minutes(1))
        .await;

    let (a, b) = within_a_minute(async {
        tokio::join!(f.sync(&account), async {
            first_refresh_arrived.notified().await;
            let refused = f.sync(&account).await;
            release_first_refresh.notify_one();
            refused
        })
    })
    .await;
    assert_eq!(
        b.unwrap(),
        SyncResult::NeedsReauth,
        "the racing worker had its refresh refused"
    );
    assert!(matches!(a.unwrap(), SyncResult::Synced { .. }));
    let stored = f.stored(&account).await;
    assert_eq!(
        stored.status,
        AccountStatus::Active,
        "the racing worker's refusal did not stick"
    );
    assert_eq!(
        f.stored_tokens(&account)
            .await
            .refresh_token
            .unwrap()
            .expose_secret(),
        "M.2"
    );
}

#[tokio::test]
async fn google_first_sync_then_changes() {
    let f = fixture().await;
    Mock::given(method("GET"))
        .and(path("/google/drive/v3/changes/startPageToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"startPageToken": "7"})))
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/google/drive/v3/files"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"files": [
            {"id": "d1", "name": "Doc", "mimeType": "application/vnd.google-apps.document"},
            {"id": "p1", "name": "photo.jpg", "mimeType": "image/jpeg", "size": "2048"}
        ]})))
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/google/drive/v3/changes"))
        .and(query_param("pageToken", "7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "newStartPageToken": "9",
            "changes": [{"removed": true, "fileId": "p1"}]
        })))
        .mount(&f.server)
        .await;
    let account = f.account("google", "ya29.a", "1//r", hours(1)).await;
    assert_eq!(
        f.sync(&account).await.unwrap(),
        SyncResult::Synced { pages: 1, files: 2 }
    );
    assert_eq!(
        f.sync(&account).await.unwrap(),
        SyncResult::Synced { pages: 1, files: 1 }
    );
    let index = f.index(&account).await;
    assert_eq!(index.len(), 2);
    assert_eq!(index[0].size, None);
    assert!(index[1].deleted && index[1].name == "photo.jpg");
    assert!(f.stored(&account).await.cursor.unwrap().contains("\"9\""));
}

/// A Graph page that is answered only once the test says so, after telling it the page was
/// asked for: explicit synchronisation between the worker and the test.
struct Gated {
    asked: std::sync::mpsc::SyncSender<()>,
    open: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    answer: ResponseTemplate,
}

impl wiremock::Respond for Gated {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let _ = self.asked.try_send(());
        let _ = self
            .open
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(20));
        self.answer.clone()
    }
}

#[tokio::test]
async fn an_account_deleted_during_its_sync_leaves_no_index_behind() {
    let f = fixture().await;
    let (asked_tx, asked) = std::sync::mpsc::sync_channel(1);
    let (open, open_rx) = std::sync::mpsc::sync_channel(1);
    Mock::given(method("GET"))
        .and(query_param("token", "page2"))
        .respond_with(Gated {
            asked: asked_tx,
            open: std::sync::Mutex::new(open_rx),
            answer: ResponseTemplate::new(200).set_body_json(json!({
                "value": [{"id": "f2", "name": "b.txt", "size": 2, "file": {"mimeType": "text/plain"}}],
                "@odata.deltaLink": f.delta("delta1"),
            })),
        })
        .mount(&f.server)
        .await;
    f.mount_full_enumeration().await;
    let account = f.account("onedrive", "EwB.a", "M.r", hours(1)).await;

    let sync = f.sync(&account);
    let delete_meanwhile = async {
        // Page 2 is asked for while page 1 is stored; once page 1 is in the index, the
        // account is deleted, its index purged, and only then does page 2 arrive and get
        // stored.
        tokio::task::spawn_blocking(move || asked.recv_timeout(Duration::from_secs(20)))
            .await
            .unwrap()
            .expect("page 2 asked for");
        let mut indexed = 0;
        for _ in 0..2000 {
            indexed = f.index(&account).await.len();
            if indexed == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(indexed, 1, "page 1 stored while page 2 is listed");
        assert!(
            hub::purge::delete_at_once(f.hub.store.as_ref(), &account.id)
                .await
                .unwrap()
        );
        open.send(()).unwrap();
    };
    let (result, ()) = tokio::join!(sync, delete_meanwhile);
    assert_eq!(
        result.unwrap(),
        SyncResult::Skipped(SkipReason::AccountDeleted)
    );
    assert!(f
        .hub
        .store
        .get_account(&account.id)
        .await
        .unwrap()
        .is_none());
    assert!(
        f.index(&account).await.is_empty(),
        "the page stored after the delete is removed by the sync that stored it"
    );
    assert_eq!(
        f.hub.store.last_seq(&account.id).await.unwrap(),
        0,
        "nor its change feed"
    );
}

#[tokio::test]
async fn a_provider_repeating_its_continuation_cursor_fails_the_job_instead_of_looping() {
    let f = fixture().await;
    // The first page hands over `loop`, and the page listed from `loop` hands `loop` back.
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .and(query_param("token", "loop"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"id": "f2", "name": "b.txt", "size": 2, "file": {"mimeType": "text/plain"}}],
            "@odata.nextLink": f.delta("loop"),
        })))
        .mount(&f.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .and(wiremock::matchers::query_param_is_missing("token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"id": "f1", "name": "a.txt", "size": 1, "file": {"mimeType": "text/plain"}}],
            "@odata.nextLink": f.delta("loop"),
        })))
        .mount(&f.server)
        .await;
    let account = f.account("onedrive", "EwB.a", "M.1", hours(1)).await;
    let job = SyncJob {
        account_id: account.id.clone(),
        provider: account.provider.clone(),
        reason: SyncReason::Manual,
        requested_at: Utc::now(),
        stalled_requeues: 0,
    };
    let ended = sync::run(
        &f.hub,
        &job,
        hub::deadline::Deadline::after(Duration::from_secs(3)),
    )
    .await;
    let error = ended.expect_err("a provider error, not a requeue of the same page");
    assert!(
        error
            .to_string()
            .contains("repeated its continuation cursor"),
        "{error}"
    );
    assert!(
        f.requests_to("token=loop").await <= 2,
        "asked once (and perhaps once ahead), not until the deadline"
    );
    let stored = f.stored(&account).await;
    assert_eq!(
        common::onedrive_link(stored.cursor.as_deref()),
        Some(f.delta("loop"))
    );
    assert!(
        stored.feed_seq <= 2,
        "the feed was not renumbered: {}",
        stored.feed_seq
    );
    assert_eq!(stored.last_sync.unwrap().result, SyncStatus::Failed);
}

#[tokio::test]
async fn a_last_page_naming_the_saved_cursor_is_nothing_new_not_a_loop() {
    let f = fixture().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/me/drive/root/delta"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [],
            "@odata.deltaLink": f.delta("same"),
        })))
        .mount(&f.server)
        .await;
    let account = f.account("onedrive", "EwB.a", "M.1", hours(1)).await;
    assert!(matches!(
        f.sync(&account).await.unwrap(),
        SyncResult::Synced { .. }
    ));
    assert!(matches!(
        f.sync(&account).await.unwrap(),
        SyncResult::Synced { .. }
    ));
    assert_eq!(
        common::onedrive_link(f.stored(&account).await.cursor.as_deref()),
        Some(f.delta("same"))
    );
}

/// A stand-in of Google whose answers are endless: the token endpoint answers 503 with a
/// 20 MiB error page, every API call 200 with a 200 MiB body, both streamed a MiB at a time
/// (never held in the test's memory), counting the MiB taken from them.
async fn huge_google(sent: Arc<std::sync::atomic::AtomicUsize>) -> String {
    use axum::body::{Body, Bytes};
    use futures::StreamExt;
    let chunk = Bytes::from(vec![b' '; 1 << 20]);
    let stream = move |mib: usize, sent: Arc<std::sync::atomic::AtomicUsize>| {
        let chunk = chunk.clone();
        Body::from_stream(futures::stream::iter(0..mib).map(move |_| {
            sent.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(chunk.clone())
        }))
    };
    let (api, token) = (stream.clone(), stream);
    let (api_sent, token_sent) = (sent.clone(), sent);
    gated_stand_in(move |_| {
        Router::new()
            .route(
                "/google/token",
                post(move || {
                    let body = token(20, token_sent.clone());
                    async move { (StatusCode::SERVICE_UNAVAILABLE, body) }
                }),
            )
            .fallback(get(move || {
                let body = api(200, api_sent.clone());
                async move { (StatusCode::OK, body) }
            }))
    })
    .await
}

#[tokio::test]
async fn huge_answers_fail_their_own_jobs_and_not_the_batch() {
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let google = huge_google(sent.clone()).await;
    let f = fixture_with(&[
        ("GOOGLE_API_URL", format!("{google}/google")),
        ("GOOGLE_TOKEN_URL", format!("{google}/google/token")),
    ])
    .await;
    f.mount_full_enumeration().await;
    let healthy = f.account("onedrive", "EwB.a", "M.1", hours(1)).await;
    let huge_page = f.account("google", "ya29.a", "1//r", hours(1)).await;
    let huge_error = f
        .account("google", "ya29.b", "1//s", chrono::Duration::minutes(-5))
        .await;
    let message = |account: &Account| sync::Message {
        id: account.id.clone(),
        body: serde_json::to_string(&SyncJob {
            account_id: account.id.clone(),
            provider: account.provider.clone(),
            reason: SyncReason::Schedule,
            requested_at: Utc::now(),
            stalled_requeues: 0,
        })
        .unwrap(),
    };
    let mut failed = within_a_minute(sync::handle_batch(
        &f.hub,
        vec![message(&huge_page), message(&healthy), message(&huge_error)],
        sync::fresh_invocation(),
    ))
    .await;
    failed.sort();
    let mut expected = vec![huge_page.id.clone(), huge_error.id.clone()];
    expected.sort();
    assert_eq!(failed, expected, "each huge answer fails its own job only");
    assert_eq!(f.index(&healthy).await.len(), 2, "the healthy job synced");
    assert!(f.stored(&healthy).await.last_synced_at.is_some());
    // Read up to the caps (16 MiB of page, 64 KiB of error, and what the sockets buffer),
    // once each: not 200 MiB, and the oversized error page is not asked for again.
    let taken = sent.load(Ordering::SeqCst);
    assert!(taken < 64, "{taken} MiB were taken from the stand-in");
}

/// An events queue that, when `account.reauth_required` is queued, notes the account's
/// stored status at that moment, then lets a concurrent refresh win: it stores `winner`'s
/// tokens on the account (active), as another worker's refresh would.
struct WinnerAtReauthEvent {
    store: Arc<dyn hub::store::Store>,
    winner: hub::crypto::Sealed,
    seen: std::sync::Mutex<Vec<AccountStatus>>,
}

#[async_trait::async_trait]
impl hub::queue::EventQueue for WinnerAtReauthEvent {
    async fn publish(&self, event: &hub::events::QueuedEvent) -> hub::HubResult<()> {
        if event.kind != "account.reauth_required" {
            return Ok(());
        }
        let body: serde_json::Value = serde_json::from_str(&event.body).unwrap();
        let id = body["data"]["account_id"].as_str().unwrap();
        let now = self.store.get_account(id).await?.unwrap();
        self.seen.lock().unwrap().push(now.status);
        let mut won = now.clone();
        won.tokens = self.winner.clone();
        won.status = AccountStatus::Active;
        won.version = now.version + 1;
        assert_eq!(
            self.store.update_account(&won, now.version).await?,
            hub::store::Write::Done
        );
        Ok(())
    }

    async fn retry_after(&self, _: &str, _: Duration) -> hub::HubResult<()> {
        Ok(())
    }
}

#[tokio::test]
async fn reauth_required_is_sent_only_once_the_refusal_is_written() {
    let mut f = fixture().await;
    f.mount_invalid_grant().await;
    f.mount_full_enumeration().await;
    let account = f
        .account("onedrive", "EwB.a", "M.1", chrono::Duration::minutes(-5))
        .await;
    let winner = TokenSet {
        access_token: "EwB.2".to_string().into(),
        refresh_token: Some("M.2".to_string().into()),
        expires_at: Some(Utc::now() + hours(1)),
    };
    let events = Arc::new(WinnerAtReauthEvent {
        store: f.hub.store.clone(),
        winner: tokens::seal(f.hub.cipher.as_ref(), &account.id, "onedrive", &winner)
            .await
            .unwrap(),
        seen: Default::default(),
    });
    f.hub.events = Some(events.clone());
    let ended = f.sync(&account).await.unwrap();
    let seen = events.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [AccountStatus::NeedsReauth],
        "the app is told only about a refusal already written"
    );
    assert_eq!(ended, SyncResult::NeedsReauth);
    assert_eq!(
        f.stored_tokens(&account)
            .await
            .refresh_token
            .unwrap()
            .expose_secret(),
        "M.2",
        "the winner's tokens are kept"
    );
}

/// What a concurrent refresh stores: the store, the account, its new sealed tokens.
type Winner = (Arc<dyn hub::store::Store>, Account, hub::crypto::Sealed);

#[tokio::test]
async fn a_refresh_stored_by_another_worker_before_the_refusal_is_written_sends_nothing() {
    // The other worker's refresh lands while this one's is being refused: the refusal's
    // conditional write finds newer tokens, adopts them and syncs with them.
    let recorder = Arc::new(common::EventRecorder::default());
    let slot: Arc<std::sync::Mutex<Option<Winner>>> = Default::default();
    let winner_slot = slot.clone();
    let authority = gated_stand_in(move |_| {
        Router::new().route(
            "/common/oauth2/v2.0/token",
            post(move || {
                let winner_slot = winner_slot.clone();
                async move {
                    let (store, account, sealed) = winner_slot.lock().unwrap().clone().unwrap();
                    let now = store.get_account(&account.id).await.unwrap().unwrap();
                    let mut won = now.clone();
                    won.tokens = sealed;
                    won.version = now.version + 1;
                    assert_eq!(
                        store.update_account(&won, now.version).await.unwrap(),
                        hub::store::Write::Done
                    );
                    (
                        StatusCode::BAD_REQUEST,
                        Json(json!({"error": "invalid_grant", "error_description": "AADSTS70008"})),
                    )
                }
            }),
        )
    })
    .await;
    let mut f = fixture_with(&[("ONEDRIVE_AUTHORITY_URL", authority)]).await;
    f.hub.events = Some(recorder.clone());
    f.mount_full_enumeration().await;
    let account = f
        .account("onedrive", "EwB.a", "M.1", chrono::Duration::minutes(-5))
        .await;
    let winner = TokenSet {
        access_token: "EwB.2".to_string().into(),
        refresh_token: Some("M.2".to_string().into()),
        expires_at: Some(Utc::now() + hours(1)),
    };
    let sealed = tokens::seal(f.hub.cipher.as_ref(), &account.id, "onedrive", &winner)
        .await
        .unwrap();
    *slot.lock().unwrap() = Some((f.hub.store.clone(), account.clone(), sealed));
    assert!(matches!(
        f.sync(&account).await.unwrap(),
        SyncResult::Synced { .. }
    ));
    assert!(
        !recorder
            .types()
            .contains(&"account.reauth_required".to_string()),
        "{:?}",
        recorder.types()
    );
    assert_eq!(f.stored(&account).await.status, AccountStatus::Active);
}

/// A cipher that fails its next `failures` seals, as KMS does during a short outage.
struct FlakySeals {
    inner: Arc<dyn hub::crypto::TokenCipher>,
    failures: std::sync::atomic::AtomicUsize,
    seals: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl hub::crypto::TokenCipher for FlakySeals {
    async fn seal(
        &self,
        plaintext: &[u8],
        context: &hub::crypto::EncryptionContext,
    ) -> hub::HubResult<hub::crypto::Sealed> {
        self.seals.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if failing {
            return Err(hub::HubError::internal("KMS: ThrottlingException"));
        }
        self.inner.seal(plaintext, context).await
    }

    async fn open(
        &self,
        sealed: &hub::crypto::Sealed,
        context: &hub::crypto::EncryptionContext,
    ) -> hub::HubResult<zeroize::Zeroizing<Vec<u8>>> {
        self.inner.open(sealed, context).await
    }
}

#[tokio::test]
async fn a_rotated_refresh_token_survives_a_short_kms_failure_right_after_the_refresh() {
    let mut f = fixture().await;
    f.mount_full_enumeration().await;
    f.mount_refresh("M.1", "EwB.new", "M.2").await;
    let account = f
        .account("onedrive", "EwB.a", "M.1", chrono::Duration::minutes(1))
        .await;
    let flaky = Arc::new(FlakySeals {
        inner: f.hub.cipher.clone(),
        failures: 2.into(),
        seals: 0.into(),
    });
    f.hub.cipher = flaky.clone();
    assert!(matches!(
        f.sync(&account).await.unwrap(),
        SyncResult::Synced { .. }
    ));
    assert_eq!(
        flaky.seals.load(Ordering::SeqCst),
        3,
        "two failures, then sealed"
    );
    assert_eq!(
        f.stored_tokens(&account)
            .await
            .refresh_token
            .unwrap()
            .expose_secret(),
        "M.2",
        "the rotated refresh token is stored, not lost"
    );
    assert_eq!(
        f.requests_to("oauth2/v2.0/token").await,
        1,
        "refreshed once"
    );
}

#[tokio::test]
async fn dropbox_and_drive_continuations_that_repeat_their_cursor_fail_and_final_ones_do_not() {
    let server = MockServer::start().await;
    common::mount_no_shared_drives(&server, "/google").await;
    common::mount_dropbox_account(&server, "/dropbox").await;
    let base = server.uri();
    let f = fixture_with(&[
        ("DROPBOX_CLIENT_ID", "d-id".into()),
        ("DROPBOX_CLIENT_SECRET", "d-secret".into()),
        ("DROPBOX_API_URL", format!("{base}/dropbox")),
        ("GOOGLE_API_URL", format!("{base}/google")),
    ])
    .await;
    // Dropbox: `has_more` with the cursor it was continued from is a loop.
    Mock::given(method("POST"))
        .and(path("/dropbox/2/files/list_folder"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entries": [{".tag": "file", "id": "id:a", "name": "a.txt", "path_lower": "/a.txt",
                "path_display": "/a.txt", "size": 1, "rev": "015f1a2b3c4d5e6f",
                "client_modified": "2026-11-01T09:00:00Z", "server_modified": "2026-11-01T09:00:00Z"}],
            "cursor": "c1", "has_more": true
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/dropbox/2/files/list_folder/continue"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entries": [], "cursor": "c1", "has_more": true
        })))
        .mount(&server)
        .await;
    // Drive: a `files` page whose `nextPageToken` is the one it was asked with.
    Mock::given(method("GET"))
        .and(path("/google/drive/v3/changes/startPageToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"startPageToken": "s1"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/google/drive/v3/files"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "files": [], "nextPageToken": "p1"
        })))
        .mount(&server)
        .await;
    for provider in ["dropbox", "google"] {
        let account = f.account(provider, "at", "rt", hours(1)).await;
        let job = SyncJob {
            account_id: account.id.clone(),
            provider: provider.into(),
            reason: SyncReason::Manual,
            requested_at: Utc::now(),
            stalled_requeues: 0,
        };
        let deadline = hub::deadline::Deadline::after(Duration::from_secs(3));
        let error = sync::run(&f.hub, &job, deadline).await.expect_err(provider);
        assert!(
            error
                .to_string()
                .contains("repeated its continuation cursor"),
            "{provider}: {error}"
        );
    }

    // A Dropbox cursor handed back with `has_more` false is "nothing new", every time.
    server.reset().await;
    common::mount_dropbox_account(&server, "/dropbox").await;
    Mock::given(method("POST"))
        .and(path("/dropbox/2/files/list_folder"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entries": [], "cursor": "c9", "has_more": false
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/dropbox/2/files/list_folder/continue"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entries": [], "cursor": "c9", "has_more": false
        })))
        .mount(&server)
        .await;
    let account = f.account("dropbox", "at2", "rt2", hours(1)).await;
    for _ in 0..2 {
        assert!(matches!(
            f.sync(&account).await.unwrap(),
            SyncResult::Synced { .. }
        ));
    }
    assert_eq!(f.stored(&account).await.cursor.as_deref(), Some("c9"));
}

/// An events queue that refuses its first event, then records.
#[derive(Default)]
struct DownOnce {
    refused: AtomicBool,
    recorded: common::EventRecorder,
}

#[async_trait::async_trait]
impl hub::queue::EventQueue for DownOnce {
    async fn publish(&self, event: &hub::events::QueuedEvent) -> hub::HubResult<()> {
        if !self.refused.swap(true, Ordering::SeqCst) {
            return Err(hub::HubError::internal("SQS: ServiceUnavailable"));
        }
        self.recorded.publish(event).await
    }

    async fn retry_after(&self, _: &str, _: Duration) -> hub::HubResult<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_refusal_whose_event_cannot_be_queued_is_undone_and_reported_by_the_retry() {
    let mut f = fixture().await;
    f.mount_invalid_grant().await;
    let events = Arc::new(DownOnce::default());
    f.hub.events = Some(events.clone());
    let account = f
        .account("onedrive", "EwB.a", "M.1", chrono::Duration::minutes(-5))
        .await;
    assert!(
        f.sync(&account).await.is_err(),
        "the job fails, for SQS to retry"
    );
    assert_eq!(
        f.stored(&account).await.status,
        AccountStatus::Active,
        "not left needs_reauth unreported"
    );
    assert_eq!(f.sync(&account).await.unwrap(), SyncResult::NeedsReauth);
    assert_eq!(events.recorded.types(), ["account.reauth_required"]);
    assert_eq!(f.stored(&account).await.status, AccountStatus::NeedsReauth);
}
