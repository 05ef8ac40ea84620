//! Local stand-ins of Google's, Microsoft's and Dropbox's OAuth2 and drive APIs and push
//! notifications, for the hub's tests and benchmarks. They speak the public protocols the hub
//! is written against: the consent redirect, form-encoded token requests with PKCE S256
//! checked, Google's refresh answers without a refresh token, Microsoft's refresh-token
//! rotation, `invalid_grant`, bearer checks with 401, Drive v3 `files` and `changes` with page
//! tokens and `fields` partial responses, Graph `/me/drive/root/delta` with `@odata.nextLink` /
//! `@odata.deltaLink` and 410 for an expired link, Dropbox `list_folder` cursors with `reset`,
//! Drive channels, Graph subscriptions with their validation handshake, Dropbox's signed
//! webhooks, and injected 429/5xx with `Retry-After`. `README.md` lists what they check the way
//! the real services do (shared drives, Drive error reasons, stale listing tokens, granular
//! consent, Microsoft re-authorisation, repeated delta items, folders, parents and hashes,
//! Dropbox's call shapes and errors) and what they still simplify.
//!
//! ```no_run
//! # async fn demo() {
//! let providers = hub_testkit::FakeProviders::start().await;
//! providers.add_files("google", 10);
//! let env = providers.env_vars(); // point the hub at the stand-ins
//! # }
//! ```

mod dropbox;
mod google;
mod microsoft;
mod oauth;
mod push;
pub mod sample_drive;
mod state;
pub mod webhook_receiver;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State as Extract};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::json;

pub use push::{Authenticity, Delivery, LifecycleEvent};

/// `X-Dropbox-Signature` for `body` as Dropbox signs it (hex HMAC-SHA256 keyed with the
/// stand-in app's secret), for tests that send a webhook body of their own making.
pub fn dropbox_signature(body: &[u8]) -> String {
    push::dropbox_signature(body, state::DROPBOX_CLIENT_SECRET)
}
use state::{lock, Fault, Shared};
pub use state::{
    FileSpec, Provider, Reauthorization, DEFAULT_DROPBOX_EMAIL, DEFAULT_DROPBOX_USER,
    DEFAULT_GOOGLE_EMAIL, DEFAULT_GOOGLE_USER, DEFAULT_MICROSOFT_EMAIL, DEFAULT_MICROSOFT_USER,
    DROPBOX_CLIENT_ID, DROPBOX_CLIENT_SECRET, FOLDER_MIME_TYPE, GOOGLE_CLIENT_ID,
    GOOGLE_CLIENT_SECRET, ONEDRIVE_CLIENT_ID, ONEDRIVE_CLIENT_SECRET,
};

/// The running stand-ins; the server stops when this is dropped. All the controls are on
/// [`Handle`], which this derefs to; [`FakeProviders::handle`] gives a clone to move around.
pub struct FakeProviders {
    handle: Handle,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Reads and changes the stand-ins' state; cheap to clone.
#[derive(Clone)]
pub struct Handle {
    url: String,
    state: Shared,
}

impl std::ops::Deref for FakeProviders {
    type Target = Handle;

    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for FakeProviders {
    fn drop(&mut self) {
        // Graceful, so that kept-alive connections close too instead of serving on.
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl FakeProviders {
    /// Starts on a free loopback port.
    pub async fn start() -> FakeProviders {
        FakeProviders::start_on(0).await
    }

    /// Starts on 127.0.0.1:`port` (0: any free port). Panics if the port cannot be bound.
    pub async fn start_on(port: u16) -> FakeProviders {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("binding 127.0.0.1:{port}: {e}"));
        let address = listener
            .local_addr()
            .expect("a bound socket has an address");
        let url = format!("http://{address}");
        let state = Arc::new(Mutex::new(state::State::new(url.clone())));
        let app = router(state.clone());
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await;
        });
        FakeProviders {
            handle: Handle { url, state },
            shutdown: Some(shutdown),
        }
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }
}

fn router(state: Shared) -> Router {
    let json_error = |status: StatusCode, message: &'static str| {
        move || async move {
            (
                status,
                Json(json!({"error": {"code": status.as_u16(), "message": message}})),
            )
        }
    };
    Router::new()
        .route(
            "/google/o/oauth2/v2/auth",
            oauth::authorize_endpoint(Provider::Google),
        )
        .route("/google/token", oauth::token_endpoint(Provider::Google))
        .route("/google/revoke", post(oauth::google_revoke))
        .route("/google/oauth2/v3/userinfo", get(google::userinfo))
        .route(
            "/google/drive/v3/changes/startPageToken",
            get(google::start_page_token),
        )
        .route("/google/drive/v3/files", get(google::list_files))
        .route("/google/drive/v3/drives", get(google::drives::list_drives))
        .route("/google/drive/v3/changes", get(google::list_changes))
        .route("/google/drive/v3/changes/watch", post(push::watch_changes))
        .route("/google/drive/v3/channels/stop", post(push::stop_channel))
        .route("/graph/v1.0/subscriptions", post(push::create_subscription))
        .route(
            "/graph/v1.0/subscriptions/{id}",
            patch(push::renew_subscription).delete(push::delete_subscription),
        )
        .route(
            "/microsoft/{tenant}/oauth2/v2.0/authorize",
            oauth::authorize_endpoint(Provider::Microsoft),
        )
        .route(
            "/microsoft/{tenant}/oauth2/v2.0/token",
            oauth::token_endpoint(Provider::Microsoft),
        )
        .route("/graph/v1.0/me", get(microsoft::me))
        .route("/graph/v1.0/me/drive", get(microsoft::my_drive))
        .route("/graph/v1.0/me/drive/root/delta", get(microsoft::delta))
        .route(
            "/dropbox/oauth2/authorize",
            oauth::authorize_endpoint(Provider::Dropbox),
        )
        .route(
            "/dropbox/oauth2/token",
            oauth::token_endpoint(Provider::Dropbox),
        )
        .route(
            "/dropbox/2/users/get_current_account",
            post(dropbox::get_current_account),
        )
        .route("/dropbox/2/files/list_folder", post(dropbox::list_folder))
        .route(
            "/dropbox/2/files/list_folder/continue",
            post(dropbox::list_folder_continue),
        )
        .route("/dropbox/2/auth/token/revoke", post(dropbox::revoke))
        .fallback(json_error(StatusCode::NOT_FOUND, "Not found"))
        .method_not_allowed_fallback(json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_and_inject_faults,
        ))
        .with_state(state)
}

/// Counts every request, delays it by the configured latency, and answers it with an
/// injected fault when one matches its path.
async fn record_and_inject_faults(
    Extract(state): Extract<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let method = request.method().as_str().to_string();
    let (fault, latency) = {
        let mut state = lock(&state);
        state.requests.push(request.uri().to_string());
        let held = state
            .delays
            .iter_mut()
            .find(|d| d.remaining > 0 && d.method == method && path.starts_with(&d.path_prefix))
            .map(|d| {
                d.remaining -= 1;
                d.delay
            })
            .unwrap_or_default();
        let fault = state
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && path.starts_with(&f.path_prefix))
            .map(|f| {
                f.remaining -= 1;
                (f.status, f.retry_after.clone(), f.reason.clone())
            });
        (fault, state.latency + held)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let Some((status, retry_after, reason)) = fault else {
        return next.run(request).await;
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let message = status.canonical_reason().unwrap_or("Injected fault");
    // Each provider's own error shape, so the hub's error parsing is exercised too.
    let mut response = if path.starts_with("/dropbox") {
        match (status, reason) {
            (StatusCode::TOO_MANY_REQUESTS, _) => {
                let seconds = retry_after.as_deref().and_then(|v| v.parse().ok());
                dropbox::too_many_requests(seconds.unwrap_or(1))
            }
            (_, Some(summary)) => dropbox::api_error(status, &summary),
            // Dropbox's 5xx answers are plain text.
            (_, None) => (status, message.to_string()).into_response(),
        }
    } else if path.starts_with("/google") {
        let error = google::GoogleError::new(status, message);
        match reason {
            Some(reason) => error.with_reason(&reason).into_response(),
            None => error.into_response(),
        }
    } else {
        let code = match status {
            StatusCode::TOO_MANY_REQUESTS => "activityLimitReached",
            StatusCode::SERVICE_UNAVAILABLE => "serviceNotAvailable",
            _ => "generalException",
        };
        microsoft::graph_error(status, code, message)
    };
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response.into_response()
}

impl Handle {
    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.url.clone()
    }

    /// The hub's variables pointing at the stand-ins, Google and Microsoft configured (add
    /// [`Handle::dropbox_env_vars`] to configure Dropbox too).
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
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    /// The hub's Dropbox variables (`DROPBOX_CLIENT_ID`, `DROPBOX_CLIENT_SECRET`,
    /// `DROPBOX_AUTH_URL`, `DROPBOX_TOKEN_URL`, `DROPBOX_API_URL`) pointing at the stand-in.
    /// Separate from [`Handle::env_vars`] so that hubs started without them keep syncing only
    /// Google and OneDrive for `source_type` `all`.
    pub fn dropbox_env_vars(&self) -> Vec<(String, String)> {
        let base = &self.url;
        [
            ("DROPBOX_CLIENT_ID", DROPBOX_CLIENT_ID.to_string()),
            ("DROPBOX_CLIENT_SECRET", DROPBOX_CLIENT_SECRET.to_string()),
            (
                "DROPBOX_AUTH_URL",
                format!("{base}/dropbox/oauth2/authorize"),
            ),
            ("DROPBOX_TOKEN_URL", format!("{base}/dropbox/oauth2/token")),
            ("DROPBOX_API_URL", format!("{base}/dropbox")),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    fn with<T>(&self, f: impl FnOnce(&mut state::State) -> T) -> T {
        f(&mut lock(&self.state))
    }

    // ------------------------------------------------------------ users and drives

    /// From now on consents of this provider log in as this user (until changed again).
    pub fn set_next_identity(&self, provider: impl Into<Provider>, id: &str, email: &str) {
        let provider = provider.into();
        self.with(|s| s.set_identity(provider, id, email))
    }

    /// From now on every consent logs in a new user (`<id>-<n>`, `user<n>@example.com`) whose
    /// drive starts as a copy of the current identity's drive, for load tests.
    pub fn fresh_identity_per_consent(&self) {
        self.with(|s| s.fresh_identities = true)
    }

    /// The next consent is refused by the user (`error=access_denied`). Instant mode only: on
    /// the interactive page the user's button decides.
    pub fn deny_next_consent(&self) {
        self.with(|s| s.deny_next_consent = true)
    }

    /// `true`: the authorize endpoints answer a checked request with an HTML consent page
    /// (the app's name, the provider's, the signed-in user's email, Allow and Deny buttons
    /// that post it back), for people and browser tests. `false` (the default): the stand-in
    /// consents at once with the redirect, for clients that follow redirects without a
    /// browser. Either way Allow is the instant consent and Deny the provider's refusal.
    pub fn interactive_consent(&self, interactive: bool) {
        self.with(|s| s.interactive_consent = interactive)
    }

    /// Adds `n` files (`file-00001.txt`, ...) to the default user's drive; returns their ids.
    pub fn add_files(&self, provider: impl Into<Provider>, n: usize) -> Vec<String> {
        let provider = provider.into();
        self.add_files_for(provider, provider.default_user(), n)
    }

    /// Adds `n` files to `user`'s drive; returns their ids.
    pub fn add_files_for(
        &self,
        provider: impl Into<Provider>,
        user: &str,
        n: usize,
    ) -> Vec<String> {
        let provider = provider.into();
        self.with(|s| s.add_files(provider, user, n))
    }

    /// Adds (or replaces) one file, recorded as a change.
    pub fn add_file(&self, provider: impl Into<Provider>, user: &str, file: FileSpec) {
        let provider = provider.into();
        self.with(|s| s.drive(provider, user).record(file, false))
    }

    /// Renames a file (and bumps its modified time). Panics if there is no such live file.
    /// Dropbox reports a rename as a `deleted` entry at the old path followed by the entry at
    /// the new one, and a renamed folder's contents again at their new paths.
    pub fn modify_file(&self, provider: impl Into<Provider>, user: &str, id: &str, new_name: &str) {
        let provider = provider.into();
        self.with(|s| {
            let drive = s.drive(provider, user);
            let mut spec = drive.live(id);
            spec.name = new_name.to_string();
            spec.modified_time = chrono::Utc::now();
            drive.record(spec, false);
            // Dropbox is path-based: a renamed folder's contents are at new paths, so its
            // feed reports them again (Graph and Drive track items by id and do not).
            if provider == Provider::Dropbox {
                for moved in drive.descendants(id) {
                    drive.record(moved, false);
                }
            }
        })
    }

    /// Renames the first `n` live files of the default user to `renamed-…`; returns their ids.
    pub fn change_files(&self, provider: impl Into<Provider>, n: usize) -> Vec<String> {
        let provider = provider.into();
        let user = provider.default_user();
        let ids: Vec<String> = self.with(|s| {
            let files = &s.drive(provider, user).files;
            let live = files.values().filter(|f| !f.deleted);
            live.take(n).map(|f| f.spec.id.clone()).collect()
        });
        for id in &ids {
            let name = self.with(|s| s.drive(provider, user).live(id).name);
            self.modify_file(provider, user, id, &format!("renamed-{name}"));
        }
        ids
    }

    /// Deletes a file of the default user: a removal in Drive's changes, a `deleted` facet in
    /// Graph's delta. Panics if there is no such live file.
    pub fn delete_file(&self, provider: impl Into<Provider>, id: &str) {
        let provider = provider.into();
        self.delete_file_for(provider, provider.default_user(), id)
    }

    /// Deletes a file of `user`, as [`Handle::delete_file`].
    pub fn delete_file_for(&self, provider: impl Into<Provider>, user: &str, id: &str) {
        let provider = provider.into();
        self.with(|s| {
            let drive = s.drive(provider, user);
            let spec = drive.live(id);
            drive.record(spec, true);
        })
    }

    /// Deletes a folder of `user` and everything under it. Dropbox then reports one `deleted`
    /// entry for the folder and none for its contents; Drive and Graph report each item.
    /// Panics if there is no such live folder.
    pub fn delete_folder_tree(&self, provider: impl Into<Provider>, user: &str, id: &str) {
        let provider = provider.into();
        self.with(|s| {
            let drive = s.drive(provider, user);
            let folder = drive.live(id);
            let contents = drive.descendants(id);
            // The folder goes first, so a feed in change order never shows a child deleted
            // under a live folder.
            for spec in std::iter::once(folder).chain(contents) {
                drive.record(spec, true);
            }
        })
    }

    // ------------------------------------------------------------ tokens and links

    /// Every access token issued so far now answers 401.
    pub fn expire_access_tokens(&self) {
        self.with(|s| s.access_tokens.values_mut().for_each(|t| t.expired = true))
    }

    /// The provider's refresh tokens issued so far are refused with `invalid_grant`.
    pub fn revoke_refresh_tokens(&self, provider: impl Into<Provider>) {
        let provider = provider.into();
        self.with(|s| {
            let grants = &s.grants;
            s.refresh_tokens
                .values_mut()
                .filter(|t| grants[t.grant].provider == provider)
                .for_each(|t| t.valid = false)
        })
    }

    /// Graph links (next and delta) issued so far answer 410 Gone with `resyncRequired`
    /// (inner code `resyncChangesApplyDifferences`) and a `Location` to enumerate afresh.
    pub fn expire_delta_links(&self) {
        self.with(|s| s.delta_epoch += 1)
    }

    /// Drive `files.list` page tokens issued so far are refused with 400 `invalid` on
    /// `pageToken`, as a stale listing token is; `changes` page tokens are not affected.
    pub fn expire_listing_tokens(&self) {
        self.with(|s| s.listing_epoch += 1)
    }

    /// Dropbox cursors issued so far answer 409 `reset` (`error_summary` `reset/...`): the
    /// client must list the folder afresh.
    pub fn reset_cursors(&self) {
        self.with(|s| s.cursor_epoch += 1)
    }

    /// The provider's next consent grants only those of the requested scopes that are in
    /// `scopes` (space-separated), as when the user unticks Google's Drive box; the token
    /// answer's `scope` says what was granted.
    pub fn grant_only_on_next_consent(&self, provider: impl Into<Provider>, scopes: &str) {
        let provider = provider.into();
        self.with(|s| s.next_consent_grants.insert(provider, scopes.to_string()));
    }

    /// The user withdraws, at the provider, every scope of its grants to the app but `keep`
    /// (space-separated): the grants still refresh, but every API call then answers as the
    /// provider does without the scope (Drive 403 `insufficientPermissions`, Graph 403
    /// `accessDenied`, Dropbox 401 `missing_scope`).
    pub fn withdraw_scopes(&self, provider: impl Into<Provider>, keep: &str) {
        let provider = provider.into();
        self.with(|s| {
            for grant in s.grants.iter_mut().filter(|g| g.provider == provider) {
                grant.scope = grant
                    .scope
                    .split_whitespace()
                    .filter(|scope| keep.split_whitespace().any(|kept| kept == *scope))
                    .collect::<Vec<_>>()
                    .join(" ");
            }
        })
    }

    /// Microsoft refresh tokens issued so far are refused with `interaction_required` or
    /// `consent_required` until the user consents again (a new consent gets working tokens).
    pub fn require_reauthorization(&self, reason: Reauthorization) {
        self.with(|s| {
            let grants = &s.grants;
            s.refresh_tokens
                .values_mut()
                .filter(|t| grants[t.grant].provider == Provider::Microsoft)
                .for_each(|t| t.reauthorization = Some(reason))
        })
    }

    /// The next Graph delta page holding this item of `user` lists it twice: its previous
    /// version first, then the current one (clients must keep the last occurrence).
    pub fn repeat_in_next_delta_page(&self, user: &str, id: &str) {
        self.with(|s| {
            s.delta_repeats.insert((user.to_string(), id.to_string()));
        })
    }

    /// Graph answers as a work or school account: `driveType` `business`, `quickXorHash` and
    /// the unsupported `sha256Hash` (no `sha1Hash`), and delta rounds also return the changed items' parent
    /// folders.
    pub fn set_graph_business(&self, business: bool) {
        self.with(|s| s.graph_business = business)
    }

    /// `expires_in` of token answers from now on, and how long those access tokens work.
    pub fn set_access_token_lifetime(&self, seconds: u64) {
        self.with(|s| s.token_lifetime = seconds)
    }

    // ------------------------------------------------------------ paging and faults

    /// Items per Graph delta page (default 200).
    pub fn set_graph_page_size(&self, size: usize) {
        self.with(|s| s.graph_page_size = size.max(1))
    }

    /// The most entries a Dropbox `list_folder` page holds (default 500); a smaller `limit`
    /// in the request wins, as `limit` is only a hint to Dropbox.
    pub fn set_dropbox_page_size(&self, size: usize) {
        self.with(|s| s.dropbox_page_size = size.max(1))
    }

    /// The most a Drive page holds whatever `pageSize` asks (default 1000, Drive's limit);
    /// lower it to make a client page through a small drive.
    pub fn set_drive_max_page_size(&self, size: usize) {
        self.with(|s| s.drive_max_page_size = size.max(1))
    }

    /// The next `count` requests whose path starts with `path_prefix` answer `status` with the
    /// provider's JSON error body, and `Retry-After: retry_after` when given (seconds or an
    /// HTTP-date).
    pub fn fail_next(
        &self,
        path_prefix: &str,
        status: u16,
        retry_after: Option<&str>,
        count: usize,
    ) {
        let fault = Fault {
            path_prefix: path_prefix.to_string(),
            status,
            retry_after: retry_after.map(str::to_string),
            remaining: count,
            reason: None,
        };
        self.with(|s| s.faults.push(fault))
    }

    /// The next `count` Drive API requests answer `status` with Drive's error body whose
    /// `errors[0].reason` is `reason`, e.g. 403 `userRateLimitExceeded` or `rateLimitExceeded`
    /// (domain `usageLimits`), or 403 `insufficientFilePermissions` (domain `global`), as
    /// <https://developers.google.com/drive/api/guides/handle-errors> shows them.
    pub fn fail_next_drive(&self, status: u16, reason: &str, count: usize) {
        let fault = Fault {
            path_prefix: "/google/drive".to_string(),
            status,
            retry_after: None,
            remaining: count,
            reason: Some(reason.to_string()),
        };
        self.with(|s| s.faults.push(fault))
    }

    /// The next `count` Dropbox API requests whose path starts with `path_prefix` (e.g.
    /// `/dropbox/2/files/list_folder`) answer 409 with the endpoint error `error_summary`
    /// names, e.g. `path/not_found`: `{"error_summary": "path/not_found/...", "error":
    /// {".tag": "path", "path": {".tag": "not_found"}}}`.
    pub fn fail_next_dropbox(&self, path_prefix: &str, error_summary: &str, count: usize) {
        let fault = Fault {
            path_prefix: path_prefix.to_string(),
            status: 409,
            retry_after: None,
            remaining: count,
            reason: Some(error_summary.to_string()),
        };
        self.with(|s| s.faults.push(fault))
    }

    /// The next `count` requests of `method` (e.g. `POST`) whose path starts with
    /// `path_prefix` (e.g. `/graph/v1.0/subscriptions`) are held for `delay` before they are
    /// handled: the window in which a test races them with something else. They are counted
    /// in [`Handle::requests`] on arrival, before the wait.
    pub fn delay_next(&self, method: &str, path_prefix: &str, delay: Duration, count: usize) {
        let held = state::Delay {
            method: method.to_ascii_uppercase(),
            path_prefix: path_prefix.to_string(),
            delay,
            remaining: count,
        };
        self.with(|s| s.delays.push(held))
    }

    /// Every answer from now on takes at least `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency)
    }

    // ------------------------------------------------------------ push notifications

    /// The ids of `user`'s live Drive channels (made by `changes.watch`, not stopped, not
    /// expired).
    pub fn live_drive_channels(&self, user: &str) -> Vec<String> {
        push::live_channels(&self.state, user)
    }

    /// Sends a `change` message to each of `user`'s live Drive channels, with the `X-Goog-*`
    /// headers Google sends; `Forged` puts a wrong `X-Goog-Channel-Token` in.
    pub async fn notify_drive_change(
        &self,
        user: &str,
        authenticity: Authenticity,
    ) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        for id in push::live_channels(&self.state, user) {
            let sent = push::send_drive_message(&self.state, &id, "change", authenticity).await;
            deliveries.extend(sent);
        }
        deliveries
    }

    /// The ids of `user`'s live Graph subscriptions.
    pub fn live_graph_subscriptions(&self, user: &str) -> Vec<String> {
        let live = push::live_subscriptions(&self.state, user);
        live.into_iter().map(|s| s.id).collect()
    }

    /// Sends a change notification (`changeType` `updated`) for each of `user`'s live Graph
    /// subscriptions to its `notificationUrl`; `Forged` puts a wrong `clientState` in. Graph
    /// expects 202.
    pub async fn notify_graph_change(
        &self,
        user: &str,
        authenticity: Authenticity,
    ) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        for subscription in push::live_subscriptions(&self.state, user) {
            deliveries.push(push::send_graph_change(&subscription, authenticity).await);
        }
        deliveries
    }

    /// Sends a lifecycle notification for each of `user`'s live Graph subscriptions that has
    /// a `lifecycleNotificationUrl`; `SubscriptionRemoved` also ends those subscriptions.
    pub async fn send_graph_lifecycle_event(
        &self,
        user: &str,
        event: LifecycleEvent,
    ) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        for subscription in push::live_subscriptions(&self.state, user) {
            let sent = push::send_graph_lifecycle(&self.state, &subscription, event).await;
            deliveries.extend(sent);
        }
        deliveries
    }

    /// Sets the Dropbox app's webhook URI as the console does: only if it passes Dropbox's
    /// verification (`GET ?challenge=` echoed in a 200 within 10 seconds). Returns whether
    /// it did.
    pub async fn register_dropbox_webhook(&self, uri: &str) -> bool {
        let verified = push::dropbox_verifies(uri).await;
        if verified {
            self.with(|s| s.dropbox_webhook = Some(uri.to_string()));
        }
        verified
    }

    /// Sends a Dropbox webhook notification naming `accounts` (`dbid:…`) to the registered
    /// URI, signed in `X-Dropbox-Signature` with the app secret (`Forged`: with another key).
    /// Panics if no webhook URI is registered (a test mistake).
    pub async fn notify_dropbox(&self, accounts: &[&str], authenticity: Authenticity) -> Delivery {
        let uri = self.with(|s| s.dropbox_webhook.clone());
        let uri = uri.expect("register_dropbox_webhook first");
        let accounts: Vec<String> = accounts.iter().map(|a| a.to_string()).collect();
        push::send_dropbox_notification(&uri, &accounts, authenticity).await
    }

    // ------------------------------------------------------------ what happened

    /// How many requests had a path (and query, as sent) starting with `path_prefix`.
    pub fn requests(&self, path_prefix: &str) -> usize {
        self.with(|s| {
            let matching = s.requests.iter().filter(|r| r.starts_with(path_prefix));
            matching.count()
        })
    }

    /// Every authorization code, access and refresh token handed out, to look for leaks.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.with(|s| s.issued.clone())
    }

    /// The tokens Google's revocation endpoint and Dropbox's `auth/token/revoke` accepted.
    pub fn revoked_tokens(&self) -> Vec<String> {
        self.with(|s| s.revoked.clone())
    }

    /// How many revocations were accepted.
    pub fn revocations(&self) -> usize {
        self.with(|s| s.revoked.len())
    }

    /// The query of the provider's latest authorization request, decoded.
    pub fn last_authorize_query(
        &self,
        provider: impl Into<Provider>,
    ) -> Option<HashMap<String, String>> {
        let provider = provider.into();
        self.with(|s| s.authorize_queries.get(&provider).cloned())
    }
}
