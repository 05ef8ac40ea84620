//! The provider's API through the hub (docs/API.md, "Proxy"), against the strict stand-ins,
//! on both stores (the local one in a temp dir, DynamoDB on moto): a write through the proxy
//! is in the next sync's index for every provider; bodies pass byte for byte both ways; a
//! refused token is refreshed once (a rotated refresh token stored) and a refused refresh is
//! 409; every path that could leave the base is 400 before anything is sent; 413 and 502
//! past 6 MB; only the listed headers pass either way; a 429 comes back at once with its
//! `Retry-After`; and no token is ever in an answer or a log line.

mod common;
#[path = "support/drive_sync.rs"]
mod drive_sync;

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::on;
use axum::Router;
use hub::deadline::Deadline;
use hub::model::AccountStatus;
use hub::web::{answer_response, proxy_methods, Proxied, PROXY_ROUTE};
use hub::{Hub, HubError};
use hub_testkit::{FakeProviders, DEFAULT_BOX_USER};
use secrecy::ExposeSecret as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tower::ServiceExt as _;

use drive_sync::{index, sync, Backend, BACKENDS};

/// The scopes each provider grants writes with, asked beside the hub's own.
const WRITE_SCOPES: [(&str, &str); 4] = [
    (
        "GOOGLE_SCOPES",
        "https://www.googleapis.com/auth/drive.file",
    ),
    ("ONEDRIVE_SCOPES", "Files.ReadWrite"),
    ("DROPBOX_SCOPES", "files.content.write"),
    ("BOX_SCOPES", "root_readwrite"),
];

/// A hub with every stand-in configured (Box too), asking the write scopes unless told not
/// to, and the proxy's route served in process as the users function serves it.
struct Bench {
    hub: Arc<Hub>,
    providers: FakeProviders,
    _dir: tempfile::TempDir,
}

async fn bench(backend: Backend, write_scopes: bool) -> Bench {
    let providers = FakeProviders::start().await;
    let mut extra: Vec<(String, String)> = providers.box_env_vars();
    if write_scopes {
        extra.extend(WRITE_SCOPES.map(|(k, v)| (k.to_string(), v.to_string())));
    }
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

/// What the proxy answered.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn error(&self) -> (StatusCode, String) {
        let code = self.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (self.status, code)
    }
}

impl Bench {
    /// The users function's proxy route (its handler, without the API key in front).
    fn app(&self) -> Router {
        let handler = |State(hub): State<Arc<Hub>>, Proxied(request): Proxied| async move {
            let deadline = Deadline::after(Duration::from_secs(20));
            hub::proxy::forward(&hub, request, deadline)
                .await
                .map(answer_response)
        };
        Router::new()
            .route(PROXY_ROUTE, on(proxy_methods(), handler))
            .with_state(self.hub.clone())
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: to_bytes(body, 64 << 20).await.unwrap().to_vec(),
        }
    }

    /// `method /users/{account}/proxy/{path}` with a JSON body (or none).
    async fn call(&self, method: &str, account: &str, path: &str, body: Option<Value>) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/users/{account}/proxy/{path}"));
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    async fn connect(&self, provider: &str) -> String {
        drive_sync::connect(&self.hub, provider).await
    }
}

/// The index entry named `name`, if the account's index holds one.
async fn indexed(hub: &Hub, account: &str, name: &str) -> Option<hub::model::FileEntry> {
    index(hub, account)
        .await
        .into_values()
        .find(|entry| entry.name == name && !entry.deleted)
}

#[tokio::test]
async fn a_folder_created_through_the_proxy_is_in_the_next_syncs_index() {
    for backend in BACKENDS {
        let bench = bench(backend, true).await;
        let cases: [(&str, &str, &str, Value); 4] = [
            (
                "google",
                "POST",
                "drive/v3/files",
                json!({"name": "Proxied G", "mimeType": "application/vnd.google-apps.folder"}),
            ),
            (
                "onedrive",
                "POST",
                "me/drive/root/children",
                json!({"name": "Proxied M", "folder": {},
                       "@microsoft.graph.conflictBehavior": "fail"}),
            ),
            (
                "dropbox",
                "POST",
                "2/files/create_folder_v2",
                json!({"path": "/Proxied D", "autorename": false}),
            ),
            (
                "box",
                "POST",
                "folders",
                json!({"name": "Proxied B", "parent": {"id": "0"}}),
            ),
        ];
        for (provider, method, path, body) in cases {
            let account = bench.connect(provider).await;
            sync(&bench.hub, provider, &account).await;
            let name = body["name"]
                .as_str()
                .or_else(|| body["path"].as_str().map(|p| &p[1..]))
                .unwrap()
                .to_string();
            assert!(indexed(&bench.hub, &account, &name).await.is_none());
            let answer = bench.call(method, &account, path, Some(body)).await;
            assert!(
                answer.status.is_success(),
                "{provider} {backend:?}: {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
            sync(&bench.hub, provider, &account).await;
            let entry = indexed(&bench.hub, &account, &name).await;
            assert!(entry.is_some(), "{provider} {backend:?}: {name} indexed");
        }
        // The Graph folder's permissions and Drive's, read through the proxy too.
        let google = bench.connect("google").await;
        let created = bench
            .call(
                "POST",
                &google,
                "drive/v3/files?fields=id",
                Some(json!({"name": "Shared"})),
            )
            .await;
        let id = created.json()["id"].as_str().unwrap().to_string();
        let permissions = bench
            .call(
                "GET",
                &google,
                &format!("drive/v3/files/{id}/permissions"),
                None,
            )
            .await;
        assert_eq!(permissions.status, StatusCode::OK);
        assert_eq!(permissions.json()["permissions"][0]["role"], "owner");
        let onedrive = bench.connect("onedrive").await;
        let folder = bench
            .call(
                "POST",
                &onedrive,
                "me/drive/root/children",
                Some(json!({"name": "Shared M", "folder": {}})),
            )
            .await;
        assert_eq!(folder.status, StatusCode::CREATED);
        let id = folder.json()["id"].as_str().unwrap().to_string();
        let permissions = bench
            .call(
                "GET",
                &onedrive,
                &format!("me/drive/items/{id}/permissions"),
                None,
            )
            .await;
        assert_eq!(permissions.status, StatusCode::OK);
        assert_eq!(permissions.json()["value"][0]["roles"], json!(["owner"]));
    }
}

#[tokio::test]
async fn without_the_write_scopes_the_providers_refusal_comes_back_as_it_is() {
    let bench = bench(Backend::Local, false).await;
    let google = bench.connect("google").await;
    let answer = bench
        .call(
            "POST",
            &google,
            "drive/v3/files",
            Some(json!({"name": "x", "mimeType": "application/vnd.google-apps.folder"})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.json()["error"]["errors"][0]["reason"],
        "insufficientPermissions"
    );
    let onedrive = bench.connect("onedrive").await;
    let answer = bench
        .call(
            "POST",
            &onedrive,
            "me/drive/root/children",
            Some(json!({"name": "x", "folder": {}})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.json()["error"]["code"], "accessDenied");
}

#[tokio::test]
async fn bodies_pass_byte_for_byte_both_ways() {
    for backend in BACKENDS {
        let bench = bench(backend, true).await;
        // Not text in any encoding: every byte value, and sequences UTF-8 refuses.
        let mut bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        bytes.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, 0x00, 0x80]);
        let google = bench.connect("google").await;
        let request = Request::post(format!(
            "/users/{google}/proxy/upload/drive/v3/files?uploadType=media&fields=id,size,sha256Checksum"
        ))
        .header("content-type", "application/octet-stream")
        .body(Body::from(bytes.clone()))
        .unwrap();
        let answer = bench.send(request).await;
        assert_eq!(answer.status, StatusCode::OK, "{backend:?}");
        let file = answer.json();
        assert_eq!(file["size"], bytes.len().to_string());
        assert_eq!(file["sha256Checksum"], hex::encode(Sha256::digest(&bytes)));

        let account = bench.connect("box").await;
        let file_id = bench
            .providers
            .box_add_file(DEFAULT_BOX_USER, "photo.png", "0");
        let answer = bench
            .call(
                "GET",
                &account,
                &format!("files/{file_id}/thumbnail.png"),
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body, bench.providers.box_thumbnail(&file_id));
        assert!(String::from_utf8(answer.body.clone()).is_err());
    }
}

#[tokio::test]
async fn the_query_string_is_sent_as_it_was_written() {
    let bench = bench(Backend::Local, true).await;
    let google = bench.connect("google").await;
    let created = bench
        .call(
            "POST",
            &google,
            "drive/v3/files",
            Some(json!({"name": "q"})),
        )
        .await;
    let id = created.json()["id"].as_str().unwrap().to_string();
    // A percent-encoded comma beside plain ones, `%20` and `+`, `%2B%2F`: each kept as
    // written.
    let query = "fields=kind%2Cpermissions(id,role)&quotaUser=a%20b+c%2B%2F&prettyPrint=true";
    let path = format!("drive/v3/files/{id}/permissions?{query}");
    let answer = bench.call("GET", &google, &path, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(bench.providers.requests(&format!("/google/{path}")), 1);
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_and_a_rotated_refresh_token_stored() {
    for backend in BACKENDS {
        let bench = bench(backend, true).await;
        let account = bench.connect("onedrive").await;
        let stored = |hub: Arc<Hub>, id: String| async move {
            let account = hub.store.get_account(&id).await.unwrap().unwrap();
            let tokens = hub::tokens::open(hub.cipher.as_ref(), &account)
                .await
                .unwrap();
            tokens.refresh_token.unwrap().expose_secret().to_string()
        };
        let before = stored(bench.hub.clone(), account.clone()).await;
        let calls = bench.providers.requests("/graph/v1.0/me/drive");
        bench.providers.expire_access_tokens();
        let answer = bench.call("GET", &account, "me/drive", None).await;
        assert_eq!(answer.status, StatusCode::OK, "{backend:?}");
        assert_eq!(answer.json()["id"], "drive-ms-user-1");
        // Refused once, repeated once.
        assert_eq!(bench.providers.requests("/graph/v1.0/me/drive") - calls, 2);
        let after = stored(bench.hub.clone(), account.clone()).await;
        assert_ne!(
            after, before,
            "{backend:?}: the rotated refresh token is stored"
        );
        // The stored one works: the old one stopped working when it was rotated.
        bench.providers.expire_access_tokens();
        let again = bench.call("GET", &account, "me/drive", None).await;
        assert_eq!(again.status, StatusCode::OK, "{backend:?}");
    }
}

#[tokio::test]
async fn a_refused_refresh_is_409_account_needs_reauth() {
    for backend in BACKENDS {
        let bench = bench(backend, true).await;
        let account = bench.connect("onedrive").await;
        bench.providers.expire_access_tokens();
        bench.providers.revoke_refresh_tokens("onedrive");
        let answer = bench.call("GET", &account, "me/drive", None).await;
        assert_eq!(
            answer.error(),
            (StatusCode::CONFLICT, "account_needs_reauth".into()),
            "{backend:?}"
        );
        let stored = bench
            .hub
            .store
            .get_account(&account)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, AccountStatus::NeedsReauth);
        // Waiting for its user, it is refused before any call.
        let calls = bench.providers.requests("/");
        let answer = bench.call("GET", &account, "me/drive", None).await;
        assert_eq!(answer.error().1, "account_needs_reauth");
        assert_eq!(bench.providers.requests("/"), calls);
        let missing = bench.call("GET", "no-such-account", "me/drive", None).await;
        assert_eq!(
            missing.error(),
            (StatusCode::NOT_FOUND, "user_not_found".into())
        );
    }
}

#[tokio::test]
async fn paths_that_could_leave_the_base_are_400_before_anything_is_sent() {
    let bench = bench(Backend::Local, true).await;
    let account = bench.connect("google").await;
    let sent = bench.providers.requests("/");
    for path in [
        "/drive/v3/files",
        "//evil.example/x",
        "https://evil.example/x",
        "https:%2F%2Fevil.example/x",
        "x:y",
        "drive/v3/../../token",
        "drive/v3/..",
        "drive/./v3/files",
        "drive//v3/files",
        "drive\\v3",
        "drive/%2e%2e/%2E%2E/token",
        "drive/.%2e/token",
        "drive%2f%2fv3",
        "%2Fdrive/v3/files",
        "drive%5Cv3",
        "drive/%252e%252e/token",
        "drive/%25252e%25252e/token",
        "drive/%0d%0aHost:evil",
    ] {
        let request = Request::get(format!("/users/{account}/proxy/{path}"))
            .body(Body::empty())
            .unwrap();
        let answer = bench.send(request).await;
        assert_eq!(
            answer.error(),
            (StatusCode::BAD_REQUEST, "invalid_request".into()),
            "{path}"
        );
    }
    assert_eq!(bench.providers.requests("/"), sent, "nothing was sent");
}

#[tokio::test]
async fn bodies_and_answers_over_6_mb_are_413_and_502() {
    let bench = bench(Backend::Local, true).await;
    let account = bench.connect("onedrive").await;
    let sent = bench.providers.requests("/");
    let limit = hub::proxy::MAX_BODY_BYTES;
    let request = Request::put(format!(
        "/users/{account}/proxy/me/drive/root:/big.bin:/content"
    ))
    .header("content-type", "application/octet-stream")
    .body(Body::from(vec![7u8; limit + 1]))
    .unwrap();
    let answer = bench.send(request).await;
    assert_eq!(
        answer.error(),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
    );
    // Streamed without a length, it is cut off as it passes the limit.
    let chunks = (0..7).map(|_| Ok::<_, std::io::Error>(vec![1u8; 1 << 20]));
    let request = Request::put(format!(
        "/users/{account}/proxy/me/drive/root:/big.bin:/content"
    ))
    .body(Body::from_stream(futures::stream::iter(chunks)))
    .unwrap();
    assert_eq!(
        bench.send(request).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(bench.providers.requests("/"), sent, "nothing was sent");

    // A delta page of 40,000 items is well over 6 MB.
    bench.providers.set_graph_page_size(40_000);
    bench.providers.add_files("onedrive", 40_000);
    let answer = bench
        .call("GET", &account, "me/drive/root/delta", None)
        .await;
    assert_eq!(
        answer.error(),
        (StatusCode::BAD_GATEWAY, "response_too_large".into())
    );
    // A page of the usual size passes.
    bench.providers.set_graph_page_size(200);
    let answer = bench
        .call("GET", &account, "me/drive/root/delta", None)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn only_the_listed_headers_pass_either_way() {
    let bench = bench(Backend::Local, true).await;
    let account = bench.connect("box").await;
    let file_id = bench.providers.box_add_file(DEFAULT_BOX_USER, "a.png", "0");
    let path = format!("/box/2.0/files/{file_id}/thumbnail.png");
    let request = Request::get(format!(
        "/users/{account}/proxy/files/{file_id}/thumbnail.png"
    ))
    .header(
        "authorization",
        format!("Bearer {}", hub::testing::DEV_API_KEY),
    )
    .header("cookie", "session=app-cookie")
    .header("connection", "keep-alive, x-other")
    .header("keep-alive", "timeout=5")
    .header("x-other", "1")
    .header("x-forwarded-for", "203.0.113.9")
    .header("accept", "image/png")
    .header("if-none-match", "\"v1\"")
    .header("range", "bytes=0-99")
    .body(Body::empty())
    .unwrap();
    let answer = bench.send(request).await;
    assert_eq!(answer.status, StatusCode::OK);
    let seen = bench.providers.request_headers(&path);
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    for dropped in [
        "cookie",
        "connection",
        "keep-alive",
        "x-other",
        "x-forwarded-for",
    ] {
        assert!(
            seen.get(dropped).is_none(),
            "{dropped} reached the provider"
        );
    }
    let authorization = seen["authorization"].to_str().unwrap();
    assert!(
        authorization.starts_with("Bearer box-at-"),
        "{authorization}"
    );
    assert!(!authorization.contains(hub::testing::DEV_API_KEY));
    assert_eq!(seen["accept"], "image/png");
    assert_eq!(seen["if-none-match"], "\"v1\"");
    assert_eq!(seen["range"], "bytes=0-99");
    // The provider's cookie, request id and caching headers stay behind.
    let names: Vec<&str> = answer.headers.keys().map(|name| name.as_str()).collect();
    for name in &names {
        assert!(
            ["content-type", "content-length"].contains(name),
            "{name} came back: {names:?}"
        );
    }
    assert_eq!(answer.headers["content-type"], "image/png");
}

#[tokio::test]
async fn a_429_and_a_5xx_come_back_at_once_with_retry_after() {
    let bench = bench(Backend::Local, true).await;
    let account = bench.connect("onedrive").await;
    let calls = bench.providers.requests("/graph/v1.0/me/drive");
    bench
        .providers
        .fail_next("/graph/v1.0/me/drive", 429, Some("7"), 1);
    let answer = bench.call("GET", &account, "me/drive", None).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.headers["retry-after"], "7");
    assert_eq!(answer.json()["error"]["code"], "activityLimitReached");
    bench
        .providers
        .fail_next("/graph/v1.0/me/drive", 503, Some("3"), 1);
    let answer = bench.call("GET", &account, "me/drive", None).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers["retry-after"], "3");
    // One call each: the hub retried neither.
    assert_eq!(bench.providers.requests("/graph/v1.0/me/drive") - calls, 2);
}

#[tokio::test]
async fn out_of_time_is_503_without_waiting_past_the_deadline() {
    let bench = bench(Backend::Local, true).await;
    let account = bench.connect("onedrive").await;
    bench
        .providers
        .delay_next("GET", "/graph/v1.0/me/drive", Duration::from_secs(5), 1);
    let request = hub::proxy::ProxyRequest {
        account_id: account,
        method: hub::proxy::Method::Get,
        path: "me/drive".into(),
        query: None,
        headers: Vec::new(),
        body: Default::default(),
    };
    let started = std::time::Instant::now();
    let answer = hub::proxy::forward(
        &bench.hub,
        request,
        Deadline::after(Duration::from_millis(500)),
    )
    .await;
    assert!(
        matches!(answer, Err(HubError::Unavailable(_))),
        "{answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A `tracing` writer into memory, to read what the hub logged.
#[derive(Clone, Default)]
struct Logged(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logged {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logged {
    type Writer = Logged;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn every_call_is_logged_without_its_body_query_values_or_any_token() {
    let logged = Logged::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logged.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let bench = bench(Backend::Local, true).await;
    let mut answers = Vec::new();
    for provider in ["google", "onedrive", "dropbox", "box"] {
        let account = bench.connect(provider).await;
        bench.providers.expire_access_tokens();
        let (path, body) = match provider {
            "google" => (
                "drive/v3/files?fields=id,name",
                json!({"name": "secret-body-g"}),
            ),
            "onedrive" => (
                "me/drive/root/children",
                json!({"name": "secret-body-m", "folder": {}}),
            ),
            "dropbox" => (
                "2/files/create_folder_v2",
                json!({"path": "/secret-body-d"}),
            ),
            _ => (
                "folders?fields=name",
                json!({"name": "secret-body-b", "parent": {"id": "0"}}),
            ),
        };
        let answer = bench.call("POST", &account, path, Some(body)).await;
        assert!(answer.status.is_success(), "{provider}: {}", answer.status);
        answers.push(answer);
    }
    let _ = std::io::stdout().flush();
    let text = String::from_utf8(logged.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|line: &Value| line["fields"]["message"] == "proxied call")
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    let google = &lines[0]["fields"];
    assert_eq!(google["provider"], "google");
    assert_eq!(google["method"], "POST");
    assert_eq!(google["path"], "drive/v3/files");
    assert_eq!(google["query"], "fields");
    assert_eq!(google["status"], 200);
    assert!(google["elapsed_ms"].is_u64());
    assert!(google["account_id"].is_string());
    assert!(!text.contains("secret-body"), "a body was logged: {text}");
    assert!(!text.contains("id,name"), "a query value was logged");
    let tokens = bench.providers.issued_tokens();
    assert!(tokens.len() >= 8, "tokens were issued and refreshed");
    for token in &tokens {
        assert!(!text.contains(token.as_str()), "a token was logged");
        for answer in &answers {
            assert!(!String::from_utf8_lossy(&answer.body).contains(token.as_str()));
            for value in answer.headers.values() {
                assert!(!String::from_utf8_lossy(value.as_bytes()).contains(token.as_str()));
            }
        }
    }
}

/// Graph opens a drive subscription only with `Files.ReadWrite` or `Files.ReadWrite.All`:
/// the hub asks for one only for a grant that holds one, and polls the others; the
/// stand-in refuses a subscription without one, as Graph does.
#[tokio::test]
async fn only_a_grant_that_may_write_gets_a_graph_subscription() {
    for (scopes, subscribes) in [("", false), ("Files.ReadWrite", true)] {
        let providers = FakeProviders::start().await;
        let extra = [("HUB_PUSH", "on"), ("ONEDRIVE_SCOPES", scopes)];
        let (hub, _dir) = drive_sync::hub_on(&providers, Backend::Local, &extra).await;
        let account = drive_sync::connect(&hub, "onedrive").await;
        sync(&hub, "onedrive", &account).await;
        let asked = providers.requests("/graph/v1.0/subscriptions");
        assert_eq!(asked > 0, subscribes, "ONEDRIVE_SCOPES={scopes:?}");
        if subscribes {
            continue;
        }
        let stored = hub.store.get_account(&account).await.unwrap().unwrap();
        let tokens = hub::tokens::open(hub.cipher.as_ref(), &stored)
            .await
            .unwrap();
        let refused = reqwest::Client::new()
            .post(format!("{}/graph/v1.0/subscriptions", providers.base_url()))
            .bearer_auth(tokens.access_token.expose_secret())
            .json(&json!({
                "changeType": "updated",
                "resource": "me/drive/root",
                "notificationUrl": "https://hub.example/webhooks/onedrive",
                "expirationDateTime": (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 403);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "ExtensionError");
    }
}
