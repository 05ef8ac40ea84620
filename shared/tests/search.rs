//! `GET /users/{id}/search` (docs/API.md, "Search") against the strict stand-ins, on both
//! stores (the local one in a temp dir, DynamoDB on moto): each provider's own search finds
//! files by name and by content, and answers each hit exactly as the index holds the same
//! file after a sync; a query with a quote and a backslash reaches the provider escaped as
//! its language wants; `limit` is honoured; bad queries are 400 and an unknown account 404; a
//! refused token is refreshed once, a refused refresh is 409.

mod common;
#[path = "support/drive_sync.rs"]
mod drive_sync;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use hub::deadline::Deadline;
use hub::model::FileEntry;
use hub::web::{PathParam, SearchQuery};
use hub::Hub;
use hub_testkit::{
    FakeProviders, FileSpec, BOX_ROOT_ID, DEFAULT_BOX_USER, DEFAULT_DROPBOX_USER,
    DEFAULT_GOOGLE_USER, DEFAULT_MICROSOFT_USER,
};
use serde_json::Value;
use tower::ServiceExt as _;

use drive_sync::{index, sync, Backend, BACKENDS};

/// The providers whose stand-ins search, with their default user and the path prefix of
/// the first call a search makes.
const PROVIDERS: [(&str, &str, &str); 4] = [
    ("google", DEFAULT_GOOGLE_USER, "/google/drive/v3/files"),
    (
        "onedrive",
        DEFAULT_MICROSOFT_USER,
        "/graph/v1.0/me/drive/root/search",
    ),
    // Dropbox's search first reads where the account is rooted, as the listing does.
    (
        "dropbox",
        DEFAULT_DROPBOX_USER,
        "/dropbox/2/users/get_current_account",
    ),
    ("box", DEFAULT_BOX_USER, "/box/2.0/search"),
];

/// The names given to the files every test drive holds.
const REPORT: &str = "Quarterly report.txt";
const NOTES: &str = "notes.txt";
const ODD: &str = r"it's a\b plan.txt";
const OTHER: &str = "unrelated.txt";

struct Bench {
    hub: Arc<Hub>,
    providers: FakeProviders,
    _dir: tempfile::TempDir,
}

async fn bench(backend: Backend) -> Bench {
    let providers = FakeProviders::start().await;
    let extra = providers.box_env_vars();
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (hub, dir) = drive_sync::hub_on(&providers, backend, &extra).await;
    Bench {
        hub: Arc::new(hub),
        providers,
        _dir: dir,
    }
}

impl Bench {
    /// The users function's search route (its handler, without the API key in front).
    fn app(&self) -> Router {
        let handler = |State(hub): State<Arc<Hub>>,
                       PathParam(id): PathParam,
                       SearchQuery(request): SearchQuery| async move {
            let deadline = Deadline::after(Duration::from_secs(20));
            hub::search::search(&hub, &id, &request, deadline)
                .await
                .map(Json)
        };
        Router::new()
            .route("/users/{id}/search", get(handler))
            .with_state(self.hub.clone())
    }

    /// `GET /users/{account}/search?{query}`: the status and the JSON body.
    async fn search(&self, account: &str, query: &str) -> (StatusCode, Value) {
        let request = Request::get(format!("/users/{account}/search?{query}"))
            .body(Body::empty())
            .unwrap();
        let response = self.app().oneshot(request).await.unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// The names of the hits of `q`, and the hits.
    async fn hits(&self, account: &str, q: &str) -> Vec<FileEntry> {
        let query = format!("q={}", urlencoding(q));
        let (status, body) = self.search(account, &query).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        serde_json::from_value(body["files"].clone()).unwrap()
    }

    /// The test drive of `provider`: four files, two of them with content; and three
    /// `batch` files. Connected and synced; returns the account.
    async fn drive(&self, provider: &str, user: &str) -> String {
        let names = [REPORT, NOTES, ODD, OTHER].map(str::to_string);
        let batch = (1..=3).map(|i| format!("batch {i}.txt"));
        // Box numbers its items itself; the others take the stand-in's ids.
        let ids: Vec<String> = names
            .into_iter()
            .chain(batch)
            .enumerate()
            .map(|(i, name)| match provider {
                "box" => self.providers.box_add_file(user, &name, BOX_ROOT_ID),
                _ => {
                    let id = format!("{provider}-f{i}");
                    self.providers
                        .add_file(provider, user, FileSpec::new(id.clone(), name));
                    id
                }
            })
            .collect();
        let set = |id: &str, text: &str| match provider {
            "google" => self.providers.set_google_content(user, id, text.as_bytes()),
            _ => self
                .providers
                .set_file_bytes(provider, user, id, text.as_bytes()),
        };
        set(&ids[1], "The zebra migrates at dawn.");
        set(&ids[3], "nothing to see here");
        let account = drive_sync::connect(&self.hub, provider).await;
        sync(&self.hub, provider, &account).await;
        account
    }
}

/// `q`'s value percent-encoded for a query string.
fn urlencoding(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The entry as the index holds it, without when the index changed it (a hit was never
/// indexed).
fn as_indexed(mut entry: FileEntry) -> FileEntry {
    entry.changed_at = None;
    entry
}

#[tokio::test]
async fn each_provider_finds_by_name_and_content_as_the_index_holds_them() {
    for backend in BACKENDS {
        for (provider, user, _) in PROVIDERS {
            let bench = bench(backend).await;
            let account = bench.drive(provider, user).await;
            let indexed = index(&bench.hub, &account).await;
            let by_name = |hits: &[FileEntry]| -> Vec<String> {
                hits.iter().map(|hit| hit.name.clone()).collect()
            };
            let case = format!("{backend:?} {provider}");
            for (q, expected) in [("quarterly", REPORT), ("zebra", NOTES), (r"it's a\b", ODD)] {
                let hits = bench.hits(&account, q).await;
                assert_eq!(by_name(&hits), [expected], "{case}: {q}");
                let hit = hits.into_iter().next().unwrap();
                let entry = indexed.get(&hit.id).cloned().expect("the hit is indexed");
                assert_eq!(hit, as_indexed(entry), "{case}: {q} as the index holds it");
                assert!(hit.drive_id.is_some() && hit.kind.is_some(), "{case}");
            }
            assert!(bench.hits(&account, "giraffe").await.is_empty(), "{case}");
            let (status, body) = bench.search(&account, "q=batch&limit=2").await;
            assert_eq!(status, StatusCode::OK, "{case}");
            assert_eq!(body["files"].as_array().unwrap().len(), 2, "{case}");
            assert_eq!(bench.hits(&account, "batch").await.len(), 3, "{case}");
        }
    }
}

#[tokio::test]
async fn bad_queries_are_400_and_an_unknown_account_404() {
    let bench = bench(Backend::Local).await;
    let account = bench.drive("google", DEFAULT_GOOGLE_USER).await;
    let calls = bench.providers.requests("/google/drive/v3/files");
    let long = format!("q={}", "a".repeat(201));
    for query in [
        "q=",
        "limit=5",
        long.as_str(),
        "q=x&limit=0",
        "q=x&limit=101",
        "q=x&limit=ten",
        "q=x&page=2",
    ] {
        let (status, body) = bench.search(&account, query).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{query}"
        );
    }
    assert_eq!(bench.providers.requests("/google/drive/v3/files"), calls);
    let fits = format!("q={}", "a".repeat(200));
    assert_eq!(bench.search(&account, &fits).await.0, StatusCode::OK);
    let (status, body) = bench.search("no-such-account", "q=x").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("user_not_found"))
    );
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_and_a_refused_refresh_is_409() {
    for backend in BACKENDS {
        for (provider, user, path) in PROVIDERS {
            let bench = bench(backend).await;
            let account = bench.drive(provider, user).await;
            let case = format!("{backend:?} {provider}");
            let calls = bench.providers.requests(path);
            bench.providers.expire_access_tokens();
            assert_eq!(bench.hits(&account, "zebra").await.len(), 1, "{case}");
            // Refused once, asked once more.
            assert_eq!(bench.providers.requests(path) - calls, 2, "{case}");
            bench.providers.expire_access_tokens();
            bench.providers.revoke_refresh_tokens(provider);
            let (status, body) = bench.search(&account, "q=zebra").await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::CONFLICT, Some("account_needs_reauth")),
                "{case}"
            );
        }
    }
}
