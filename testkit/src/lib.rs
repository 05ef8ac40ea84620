//! Local stand-ins of Google's and Microsoft's OAuth2 and drive APIs, for the hub's tests and
//! benchmarks. They speak the public protocols the hub is written against: the consent
//! redirect, form-encoded token requests with PKCE S256 checked, Google's refresh answers
//! without a refresh token, Microsoft's refresh-token rotation, `invalid_grant`, bearer
//! checks with 401, Drive v3 `files` and `changes` with page tokens and `fields` partial
//! responses, Graph `/me/drive/root/delta` with `@odata.nextLink` / `@odata.deltaLink` and
//! 410 for an expired link, and injected 429/5xx with `Retry-After`.
//!
//! Each provider has one user and one drive; `set_next_identity` changes who the next
//! consent logs in as.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const GOOGLE_CLIENT_ID: &str = "google-client-id";
pub const GOOGLE_CLIENT_SECRET: &str = "google-client-secret";
pub const ONEDRIVE_CLIENT_ID: &str = "onedrive-client-id";
pub const ONEDRIVE_CLIENT_SECRET: &str = "onedrive-client-secret";

/// Google or Microsoft.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Provider {
    Google,
    Microsoft,
}

impl Provider {
    fn parse(name: &str) -> Provider {
        match name {
            "google" => Provider::Google,
            "onedrive" | "microsoft" => Provider::Microsoft,
            other => panic!("no stand-in for provider {other}"),
        }
    }

    fn client(self) -> (&'static str, &'static str) {
        match self {
            Provider::Google => (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET),
            Provider::Microsoft => (ONEDRIVE_CLIENT_ID, ONEDRIVE_CLIENT_SECRET),
        }
    }

    fn unauthorized(self) -> Response {
        let body = match self {
            Provider::Google => {
                json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}})
            }
            Provider::Microsoft => {
                json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired or is not yet valid."}})
            }
        };
        (StatusCode::UNAUTHORIZED, Json(body)).into_response()
    }
}

#[derive(Clone, Debug)]
struct File {
    id: String,
    name: String,
    mime_type: String,
    size: Option<u64>,
    modified: String,
    deleted: bool,
    /// The change sequence number of the file's last change.
    seq: u64,
}

#[derive(Default)]
struct Drive {
    files: BTreeMap<String, File>,
    seq: u64,
    next_id: u64,
}

impl Drive {
    fn touch(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

struct Grant {
    provider: Provider,
    valid: bool,
    identity: Identity,
}

struct PendingCode {
    provider: Provider,
    redirect_uri: String,
    challenge: String,
    identity: Identity,
}

struct Fault {
    path_prefix: String,
    status: u16,
    retry_after: Option<String>,
    remaining: usize,
}

#[derive(Clone)]
struct Identity {
    id: String,
    email: String,
}

struct Inner {
    base_url: String,
    drives: HashMap<Provider, Drive>,
    identities: HashMap<Provider, Identity>,
    /// When set, each consent logs in a new user (`<id>-<n>`), for load tests.
    fresh_identities: bool,
    consents: u64,
    codes: HashMap<String, PendingCode>,
    access_tokens: HashMap<String, Grant>,
    refresh_tokens: HashMap<String, Grant>,
    issued: Vec<String>,
    revocations: usize,
    requests: Vec<String>,
    faults: Vec<Fault>,
    deny_next_consent: bool,
    /// Delta links carry the epoch they were issued in; `expire_delta_links` moves it on.
    delta_epoch: u64,
    graph_page_size: usize,
    expires_in: u64,
}

/// The running stand-ins; stopped when dropped.
pub struct FakeProviders {
    url: String,
    state: Arc<Mutex<Inner>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProviders {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

fn lock(state: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

impl FakeProviders {
    /// Starts on a free loopback port.
    pub async fn start() -> FakeProviders {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> FakeProviders {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let inner = Inner {
            base_url: url.clone(),
            drives: HashMap::from([
                (Provider::Google, Drive::default()),
                (Provider::Microsoft, Drive::default()),
            ]),
            identities: HashMap::from([
                (
                    Provider::Google,
                    Identity {
                        id: "google-user-1".into(),
                        email: "alice@example.com".into(),
                    },
                ),
                (
                    Provider::Microsoft,
                    Identity {
                        id: "ms-user-1".into(),
                        email: "bob@example.onmicrosoft.com".into(),
                    },
                ),
            ]),
            fresh_identities: false,
            consents: 0,
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            issued: Vec::new(),
            revocations: 0,
            requests: Vec::new(),
            faults: Vec::new(),
            deny_next_consent: false,
            delta_epoch: 0,
            graph_page_size: 200,
            expires_in: 3600,
        };
        let state = Arc::new(Mutex::new(inner));
        let app = Router::new()
            .route("/google/o/oauth2/v2/auth", get(consent_google))
            .route("/google/token", post(token_google))
            .route("/google/revoke", post(revoke_google))
            .route("/google/oauth2/v3/userinfo", get(google_userinfo))
            .route(
                "/google/drive/v3/changes/startPageToken",
                get(drive_start_page_token),
            )
            .route("/google/drive/v3/files", get(drive_files))
            .route("/google/drive/v3/changes", get(drive_changes))
            .route(
                "/microsoft/{tenant}/oauth2/v2.0/authorize",
                get(consent_microsoft),
            )
            .route(
                "/microsoft/{tenant}/oauth2/v2.0/token",
                post(token_microsoft),
            )
            .route("/graph/v1.0/me", get(graph_me))
            .route("/graph/v1.0/me/drive/root/delta", get(graph_delta))
            .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))) })
            .layer(middleware::from_fn_with_state(
                state.clone(),
                record_and_inject_faults,
            ))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeProviders { url, state, server }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The hub's variables pointing at the stand-ins, both providers configured.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let base = &self.url;
        [
            ("GOOGLE_CLIENT_ID", GOOGLE_CLIENT_ID.to_string()),
            ("GOOGLE_CLIENT_SECRET", GOOGLE_CLIENT_SECRET.to_string()),
            ("GOOGLE_AUTH_URL", format!("{base}/google/o/oauth2/v2/auth")),
            ("GOOGLE_TOKEN_URL", format!("{base}/google/token")),
            ("GOOGLE_REVOKE_URL", format!("{base}/google/revoke")),
            ("GOOGLE_API_URL", format!("{base}/google")),
            ("ONEDRIVE_CLIENT_ID", ONEDRIVE_CLIENT_ID.to_string()),
            ("ONEDRIVE_CLIENT_SECRET", ONEDRIVE_CLIENT_SECRET.to_string()),
            ("ONEDRIVE_AUTHORITY_URL", format!("{base}/microsoft")),
            ("ONEDRIVE_GRAPH_URL", format!("{base}/graph/v1.0")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut lock(&self.state))
    }

    /// Adds `n` files to the provider's drive; returns their ids.
    pub fn add_files(&self, provider: &str, n: usize) -> Vec<String> {
        let provider = Provider::parse(provider);
        self.with(|inner| {
            let drive = inner.drives.get_mut(&provider).unwrap();
            (0..n)
                .map(|_| {
                    drive.next_id += 1;
                    let number = drive.next_id;
                    let seq = drive.touch();
                    let id = format!("file{number:07}");
                    let google_doc = provider == Provider::Google && number % 10 == 0;
                    drive.files.insert(
                        id.clone(),
                        File {
                            id: id.clone(),
                            name: format!("file-{number:07}.txt"),
                            mime_type: if google_doc {
                                "application/vnd.google-apps.document".into()
                            } else {
                                "text/plain".into()
                            },
                            size: (!google_doc).then_some(100 + number),
                            modified: "2026-11-01T10:00:00.000Z".into(),
                            deleted: false,
                            seq,
                        },
                    );
                    id
                })
                .collect()
        })
    }

    /// Renames the first `n` live files to `renamed-…`; returns their ids.
    pub fn change_files(&self, provider: &str, n: usize) -> Vec<String> {
        let provider = Provider::parse(provider);
        self.with(|inner| {
            let drive = inner.drives.get_mut(&provider).unwrap();
            let ids: Vec<String> = drive
                .files
                .values()
                .filter(|f| !f.deleted)
                .take(n)
                .map(|f| f.id.clone())
                .collect();
            for id in &ids {
                let seq = drive.touch();
                let file = drive.files.get_mut(id).unwrap();
                file.name = format!("renamed-{}", file.name);
                file.modified = "2026-11-24T10:00:00.000Z".into();
                file.seq = seq;
            }
            ids
        })
    }

    /// Deletes a file: a removal in Drive's changes, a `deleted` facet in Graph's delta.
    pub fn delete_file(&self, provider: &str, id: &str) {
        let provider = Provider::parse(provider);
        self.with(|inner| {
            let drive = inner.drives.get_mut(&provider).unwrap();
            let seq = drive.touch();
            if let Some(file) = drive.files.get_mut(id) {
                file.deleted = true;
                file.seq = seq;
            }
        })
    }

    /// Who the next consent of this provider logs in as.
    pub fn set_next_identity(&self, provider: &str, id: &str, email: &str) {
        let provider = Provider::parse(provider);
        self.with(|inner| {
            inner.identities.insert(
                provider,
                Identity {
                    id: id.into(),
                    email: email.into(),
                },
            );
        })
    }

    /// From now on every consent logs in a different user (`<id>-<n>`, `user<n>@example.com`).
    pub fn fresh_identity_per_consent(&self) {
        self.with(|inner| inner.fresh_identities = true)
    }

    /// Every access token issued so far now answers 401.
    pub fn expire_access_tokens(&self) {
        self.with(|inner| {
            inner
                .access_tokens
                .values_mut()
                .for_each(|grant| grant.valid = false)
        })
    }

    /// The provider's refresh tokens are refused with `invalid_grant` from now on.
    pub fn revoke_refresh_tokens(&self, provider: &str) {
        let provider = Provider::parse(provider);
        self.with(|inner| {
            inner
                .refresh_tokens
                .values_mut()
                .filter(|g| g.provider == provider)
                .for_each(|g| g.valid = false)
        })
    }

    /// Graph delta links issued so far answer 410 Gone.
    pub fn expire_delta_links(&self) {
        self.with(|inner| inner.delta_epoch += 1)
    }

    /// The next consent is refused by the user (`error=access_denied`).
    pub fn deny_next_consent(&self) {
        self.with(|inner| inner.deny_next_consent = true)
    }

    /// The next `count` requests whose path starts with `path_prefix` answer `status`.
    pub fn fail_next(
        &self,
        path_prefix: &str,
        status: u16,
        retry_after: Option<&str>,
        count: usize,
    ) {
        self.with(|inner| {
            inner.faults.push(Fault {
                path_prefix: path_prefix.into(),
                status,
                retry_after: retry_after.map(Into::into),
                remaining: count,
            })
        })
    }

    pub fn set_graph_page_size(&self, size: usize) {
        self.with(|inner| inner.graph_page_size = size.max(1))
    }

    pub fn set_access_token_lifetime(&self, seconds: u64) {
        self.with(|inner| inner.expires_in = seconds)
    }

    /// Every code, access and refresh token handed out, to look for leaks.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.with(|inner| inner.issued.clone())
    }

    pub fn revocations(&self) -> usize {
        self.with(|inner| inner.revocations)
    }

    /// How many requests had a path starting with `path_prefix`.
    pub fn requests(&self, path_prefix: &str) -> usize {
        self.with(|inner| {
            inner
                .requests
                .iter()
                .filter(|p| p.starts_with(path_prefix))
                .count()
        })
    }
}

async fn record_and_inject_faults(State(state): Shared, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let fault = {
        let mut inner = lock(&state);
        inner.requests.push(path.clone());
        inner
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && path.starts_with(&f.path_prefix))
            .map(|f| {
                f.remaining -= 1;
                (f.status, f.retry_after.clone())
            })
    };
    match fault {
        Some((status, retry_after)) => {
            let mut response = (
                StatusCode::from_u16(status).unwrap(),
                Json(json!({"error": {"code": status, "message": "injected fault"}})),
            )
                .into_response();
            if let Some(value) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, value.parse().unwrap());
            }
            response
        }
        None => next.run(request).await,
    }
}

// ---------------------------------------------------------------- OAuth2

fn consent(state: &Mutex<Inner>, provider: Provider, query: &HashMap<String, String>) -> Response {
    let (client_id, _) = provider.client();
    for required in [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    ] {
        if !query.contains_key(required) {
            return (StatusCode::BAD_REQUEST, format!("missing {required}")).into_response();
        }
    }
    if query["response_type"] != "code"
        || query["client_id"] != client_id
        || query["code_challenge_method"] != "S256"
    {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let Ok(mut redirect) = url::Url::parse(&query["redirect_uri"]) else {
        return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response();
    };
    let mut inner = lock(state);
    if std::mem::take(&mut inner.deny_next_consent) {
        redirect
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("state", &query["state"]);
    } else {
        let code = random_token(match provider {
            Provider::Google => "4/gcode-",
            Provider::Microsoft => "M.code-",
        });
        inner.issued.push(code.clone());
        inner.consents += 1;
        let mut identity = inner.identities[&provider].clone();
        if inner.fresh_identities {
            identity = Identity {
                id: format!("{}-{}", identity.id, inner.consents),
                email: format!("user{}@example.com", inner.consents),
            };
        }
        inner.codes.insert(
            code.clone(),
            PendingCode {
                provider,
                redirect_uri: query["redirect_uri"].clone(),
                challenge: query["code_challenge"].clone(),
                identity,
            },
        );
        redirect
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &query["state"]);
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, redirect.to_string())],
    )
        .into_response()
}

async fn consent_google(
    State(state): Shared,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    consent(&state, Provider::Google, &query)
}

async fn consent_microsoft(
    State(state): Shared,
    Path(_tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    consent(&state, Provider::Microsoft, &query)
}

/// Client authentication: form fields or HTTP Basic.
fn client_ok(provider: Provider, headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    let (id, secret) = provider.client();
    if form.get("client_id").map(String::as_str) == Some(id)
        && form.get("client_secret").map(String::as_str) == Some(secret)
    {
        return true;
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    basic.as_deref() == Some(&format!("{id}:{secret}"))
}

fn token(
    state: &Mutex<Inner>,
    provider: Provider,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Response {
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_encoded {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be form-encoded",
        );
    }
    if !client_ok(provider, headers, form) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    let mut inner = lock(state);
    let (rotate, identity) = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(pending) = form.get("code").and_then(|code| inner.codes.remove(code)) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown or used code",
                );
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let derived = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if pending.provider != provider || derived != pending.challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "PKCE verification failed",
                );
            }
            if form.get("redirect_uri") != Some(&pending.redirect_uri) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri mismatch",
                );
            }
            (true, pending.identity)
        }
        Some("refresh_token") => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            let valid = inner
                .refresh_tokens
                .get(&presented)
                .is_some_and(|g| g.valid && g.provider == provider);
            if !valid {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token is invalid or revoked",
                );
            }
            // Microsoft rotates: the old refresh token stops working at once. Google keeps it.
            let grant = inner.refresh_tokens.get_mut(&presented).unwrap();
            if provider == Provider::Microsoft {
                grant.valid = false;
            }
            (provider == Provider::Microsoft, grant.identity.clone())
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "unsupported grant_type",
            )
        }
    };
    let (access_prefix, refresh_prefix) = match provider {
        Provider::Google => ("gat-", "grt-"),
        Provider::Microsoft => ("mat-", "mrt-"),
    };
    let access = random_token(access_prefix);
    inner.access_tokens.insert(
        access.clone(),
        Grant {
            provider,
            valid: true,
            identity: identity.clone(),
        },
    );
    inner.issued.push(access.clone());
    let mut answer =
        json!({"access_token": access, "token_type": "Bearer", "expires_in": inner.expires_in});
    if rotate {
        let refresh = random_token(refresh_prefix);
        inner.refresh_tokens.insert(
            refresh.clone(),
            Grant {
                provider,
                valid: true,
                identity: identity.clone(),
            },
        );
        inner.issued.push(refresh.clone());
        answer["refresh_token"] = json!(refresh);
    }
    match provider {
        Provider::Google => {
            answer["scope"] =
                json!("openid email https://www.googleapis.com/auth/drive.metadata.readonly");
            answer["id_token"] = json!("fake.jwt.value");
        }
        Provider::Microsoft => {
            answer["scope"] = json!("Files.Read User.Read");
            answer["ext_expires_in"] = answer["expires_in"].clone();
        }
    }
    Json(answer).into_response()
}

async fn token_google(
    State(state): Shared,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    token(&state, Provider::Google, &headers, &form)
}

async fn token_microsoft(
    State(state): Shared,
    Path(_tenant): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    token(&state, Provider::Microsoft, &headers, &form)
}

async fn revoke_google(
    State(state): Shared,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = lock(&state);
    let inner = &mut *inner;
    let token = form.get("token").cloned().unwrap_or_default();
    let mut known = false;
    for tokens in [&mut inner.refresh_tokens, &mut inner.access_tokens] {
        if let Some(grant) = tokens.get_mut(&token) {
            grant.valid = false;
            known = true;
        }
    }
    if !known {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "Token expired or revoked",
        );
    }
    inner.revocations += 1;
    Json(json!({})).into_response()
}

/// The grant behind a valid bearer token of this provider; `None` means 401.
fn bearer<'a>(inner: &'a Inner, provider: Provider, headers: &HeaderMap) -> Option<&'a Grant> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    inner
        .access_tokens
        .get(token)
        .filter(|grant| grant.valid && grant.provider == provider)
}

// ---------------------------------------------------------------- Google Drive v3

async fn google_userinfo(State(state): Shared, headers: HeaderMap) -> Response {
    let inner = lock(&state);
    let Some(grant) = bearer(&inner, Provider::Google, &headers) else {
        return Provider::Google.unauthorized();
    };
    let me = &grant.identity;
    Json(json!({"sub": me.id, "email": me.email, "email_verified": true})).into_response()
}

async fn drive_start_page_token(State(state): Shared, headers: HeaderMap) -> Response {
    let inner = lock(&state);
    if bearer(&inner, Provider::Google, &headers).is_none() {
        return Provider::Google.unauthorized();
    }
    let next = inner.drives[&Provider::Google].seq + 1;
    Json(json!({"kind": "drive#startPageToken", "startPageToken": next.to_string()}))
        .into_response()
}

/// The sub-fields asked for inside `name(...)` of a `fields` parameter.
fn subfields(fields: &str, name: &str) -> Option<Vec<String>> {
    let start = fields.find(&format!("{name}("))? + name.len() + 1;
    let mut depth = 1;
    for (i, c) in fields[start..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    let inner = &fields[start..start + i];
                    let mut parts = Vec::new();
                    let (mut level, mut current) = (0, String::new());
                    for c in inner.chars() {
                        match c {
                            '(' => level += 1,
                            ')' => level -= 1,
                            ',' if level == 0 => {
                                parts.push(std::mem::take(&mut current));
                                continue;
                            }
                            _ => {}
                        }
                        current.push(c);
                    }
                    parts.push(current);
                    return Some(parts.into_iter().map(|p| p.trim().to_string()).collect());
                }
            }
            _ => {}
        }
    }
    None
}

/// A Drive file resource limited to `wanted` (Drive's default without `fields`: kind, id,
/// name, mimeType).
fn drive_file(file: &File, wanted: Option<&[String]>) -> Value {
    let mut all = Map::new();
    all.insert("kind".into(), json!("drive#file"));
    all.insert("id".into(), json!(file.id));
    all.insert("name".into(), json!(file.name));
    all.insert("mimeType".into(), json!(file.mime_type));
    if let Some(size) = file.size {
        all.insert("size".into(), json!(size.to_string()));
    }
    all.insert("modifiedTime".into(), json!(file.modified));
    all.insert(
        "webViewLink".into(),
        json!(format!("https://drive.google.com/file/d/{}/view", file.id)),
    );
    all.insert("trashed".into(), json!(file.deleted));
    let default = ["kind", "id", "name", "mimeType"].map(String::from);
    let wanted = wanted.unwrap_or(&default);
    Value::Object(
        all.into_iter()
            .filter(|(k, _)| wanted.contains(k))
            .collect(),
    )
}

fn page_size(query: &HashMap<String, String>) -> usize {
    query
        .get("pageSize")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
        .clamp(1, 1000)
}

async fn drive_files(
    State(state): Shared,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let inner = lock(&state);
    if bearer(&inner, Provider::Google, &headers).is_none() {
        return Provider::Google.unauthorized();
    }
    let offset: usize = match query.get("pageToken") {
        None => 0,
        Some(token) => match URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
        {
            Some(offset) => offset,
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": {"code": 400, "message": "Invalid pageToken"}})),
                )
                    .into_response()
            }
        },
    };
    let skip_trashed = query
        .get("q")
        .is_some_and(|q| q.replace(' ', "") == "trashed=false");
    let wanted = query.get("fields").and_then(|f| subfields(f, "files"));
    let size = page_size(&query);
    let live: Vec<&File> = inner.drives[&Provider::Google]
        .files
        .values()
        .filter(|f| !(skip_trashed && f.deleted))
        .collect();
    let page: Vec<Value> = live
        .iter()
        .skip(offset)
        .take(size)
        .map(|f| drive_file(f, wanted.as_deref()))
        .collect();
    let mut answer = json!({"kind": "drive#fileList", "incompleteSearch": false, "files": page});
    if offset + size < live.len() {
        answer["nextPageToken"] = json!(URL_SAFE_NO_PAD.encode((offset + size).to_string()));
    }
    Json(answer).into_response()
}

async fn drive_changes(
    State(state): Shared,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let inner = lock(&state);
    if bearer(&inner, Provider::Google, &headers).is_none() {
        return Provider::Google.unauthorized();
    }
    let Some(from) = query.get("pageToken").and_then(|t| t.parse::<u64>().ok()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"code": 400, "message": "Invalid pageToken"}})),
        )
            .into_response();
    };
    let drive = &inner.drives[&Provider::Google];
    let wanted = query.get("fields").and_then(|f| {
        subfields(f, "changes").and_then(|c| {
            c.iter()
                .find(|p| p.starts_with("file("))
                .and_then(|p| subfields(p, "file"))
        })
    });
    let mut changed: Vec<&File> = drive.files.values().filter(|f| f.seq >= from).collect();
    changed.sort_by_key(|f| f.seq);
    let size = page_size(&query);
    let page: Vec<Value> = changed
        .iter()
        .take(size)
        .map(|f| {
            let mut change = json!({"kind": "drive#change", "changeType": "file", "time": f.modified, "removed": f.deleted, "fileId": f.id});
            if !f.deleted {
                change["file"] = drive_file(f, wanted.as_deref());
            }
            change
        })
        .collect();
    let mut answer = json!({"kind": "drive#changeList", "changes": page});
    match changed.get(size) {
        Some(next) => answer["nextPageToken"] = json!(next.seq.to_string()),
        None => answer["newStartPageToken"] = json!((drive.seq + 1).to_string()),
    }
    Json(answer).into_response()
}

// ---------------------------------------------------------------- Microsoft Graph

async fn graph_me(State(state): Shared, headers: HeaderMap) -> Response {
    let inner = lock(&state);
    let Some(grant) = bearer(&inner, Provider::Microsoft, &headers) else {
        return Provider::Microsoft.unauthorized();
    };
    let me = &grant.identity;
    // Personal accounts often have no `mail`: the hub must fall back to the sign-in name.
    Json(json!({"id": me.id, "displayName": "Bob", "mail": null, "userPrincipalName": me.email}))
        .into_response()
}

/// A delta link's position: changes since `since`, from `offset`, issued in `epoch`.
fn delta_token(since: u64, offset: usize, epoch: u64) -> String {
    format!("{since}.{offset}.{epoch}")
}

async fn graph_delta(
    State(state): Shared,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let inner = lock(&state);
    if bearer(&inner, Provider::Microsoft, &headers).is_none() {
        return Provider::Microsoft.unauthorized();
    }
    let (since, offset) = match query.get("token") {
        None => (0, 0),
        Some(token) => {
            let parts: Vec<u64> = token.split('.').filter_map(|p| p.parse().ok()).collect();
            match parts[..] {
                [since, offset, epoch] if epoch == inner.delta_epoch => (since, offset as usize),
                [_, _, _] => {
                    let gone = json!({"error": {"code": "resyncRequired", "message": "Resync required. Replace any local items with the server's version (including deletes) if you're sure that the service was up to date with your local changes when you last sync'd."}});
                    return (StatusCode::GONE, Json(gone)).into_response();
                }
                _ => {
                    return (
                        StatusCode::BAD_REQUEST,
                        Json(json!({"error": {"code": "invalidRequest"}})),
                    )
                        .into_response()
                }
            }
        }
    };
    let select: Option<Vec<String>> = query
        .get("$select")
        .map(|s| s.split(',').map(str::to_string).collect());
    let drive = &inner.drives[&Provider::Microsoft];
    // A fresh enumeration lists live files and the root; a delta lists every change since.
    let mut items: Vec<Value> = Vec::new();
    if since == 0 {
        items.push(json!({"id": "root-item", "name": "root", "root": {}, "folder": {"childCount": drive.files.len()}}));
    }
    items.extend(
        drive
            .files
            .values()
            .filter(|f| {
                if since == 0 {
                    !f.deleted
                } else {
                    f.seq >= since
                }
            })
            .map(|f| {
                if f.deleted {
                    json!({"id": f.id, "name": f.name, "deleted": {"state": "deleted"}})
                } else {
                    json!({
                        "id": f.id, "name": f.name, "size": f.size.unwrap_or(0),
                        "lastModifiedDateTime": f.modified.replace(".000Z", "Z"),
                        "webUrl": format!("https://onedrive.live.com/?id={}", f.id),
                        "file": {"mimeType": f.mime_type},
                        "parentReference": {"id": "root-item", "path": "/drive/root:"}
                    })
                }
            }),
    );
    let page_size = inner.graph_page_size;
    let page: Vec<Value> = items
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|item| match &select {
            Some(keys) => Value::Object(
                item.as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| keys.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            None => item.clone(),
        })
        .collect();
    let base = format!("{}/graph/v1.0/me/drive/root/delta", inner.base_url);
    let mut answer = json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(driveItem)", "value": page});
    if offset + page_size < items.len() {
        answer["@odata.nextLink"] = json!(format!(
            "{base}?token={}",
            delta_token(since, offset + page_size, inner.delta_epoch)
        ));
    } else {
        answer["@odata.deltaLink"] = json!(format!(
            "{base}?token={}",
            delta_token(drive.seq + 1, 0, inner.delta_epoch)
        ));
    }
    Json(answer).into_response()
}
