//! Google Drive (Drive API v3) and Google's OAuth2 endpoints.
//!
//! First sync: `changes/startPageToken` is read *before* the enumeration so that nothing that
//! changes while `files.list` pages through the drives is missed, then `files.list` pages
//! through My Drive and each shared drive in turn (`listing`). Later syncs: `changes.list`
//! from the saved token to `newStartPageToken`, removed and trashed files included as deleted
//! entries, and drives joined or left.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::DateTime;
use oauth2::reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::answers::{self, AnswerClassifier, Endpoint, Refusal, Verdict};
use super::content::{ByteRange, ContentRefusal, ContentStream};
use super::http::ProviderHttp;
use super::oauth::{OAuthApp, OAuthEndpoints, Revocation};
use super::{
    get_json, ChannelRequest, Connector, FilePage, OpenedChannel, ProviderClient, ProviderName,
    ProviderSpec, PushStyle, Webhook,
};
use crate::config::Env;
use crate::error::{HubResult, ProviderError};
use crate::model::{ContentFormat, ContentSource, FileEntry, Identity, PushChannel, StreamSource};

pub const NAME: ProviderName = ProviderName::declare("google");

pub const SPEC: ProviderSpec = ProviderSpec {
    name: NAME,
    display_name: "Google Drive",
    in_both: true,
    // Drive's channel messages: the channel and its secret in `X-Goog-*` headers, no body
    // (<https://developers.google.com/drive/api/guides/push#receive-notifications>).
    webhook: Webhook::ChannelHeaders {
        id_header: "x-goog-channel-id",
        token_header: "x-goog-channel-token",
        state_header: "x-goog-resource-state",
        handshake_state: "sync",
    },
    client_id_var: "GOOGLE_CLIENT_ID",
    client_secret_var: "GOOGLE_CLIENT_SECRET",
    scopes_var: "GOOGLE_SCOPES",
    answers: &GoogleAnswers,
    build,
};

mod content;
mod listing;
mod search;

use listing::Cursor;
pub use listing::MY_DRIVE_ID;

/// `drive.readonly` reads files' bytes as well as their names, sizes and links (the index
/// needs only the metadata, file content the rest: docs/API.md, "File content"), and it
/// covers everything `drive.metadata.readonly` did; `openid email` gives the userinfo `sub`
/// and `email`.
const SCOPES: &[&str] = &[
    "openid",
    "email",
    "https://www.googleapis.com/auth/drive.readonly",
];

/// `changes.list` reports the changes of every drive the user can open (shared drives
/// included) under the same two flags as `files.list`; it has no `corpora`
/// (<https://developers.google.com/drive/api/reference/rest/v3/changes/list>).
const ALL_DRIVES_CHANGES: &[(&str, &str)] = &[
    ("supportsAllDrives", "true"),
    ("includeItemsFromAllDrives", "true"),
];
/// `changes/startPageToken` is asked as an application that supports shared drives too, like
/// the `changes.list` calls that follow the token
/// (<https://developers.google.com/drive/api/reference/rest/v3/changes/getStartPageToken>).
const ALL_DRIVES_START: &[(&str, &str)] = &[("supportsAllDrives", "true")];

pub struct GoogleDrive {
    oauth: OAuthApp,
    http: ProviderHttp,
    /// The same client for `files.list` calls that continue an enumeration (a page token, a
    /// shared drive named before), where some refusals mean "start over" ([`ListingAnswers`]).
    continued_listing_http: ProviderHttp,
    api_url: String,
}

fn build(env: &Env, client: ProviderClient) -> HubResult<Arc<dyn Connector>> {
    let oauth = OAuthApp::new(
        &client,
        OAuthEndpoints {
            auth_url: env.url_or(
                "GOOGLE_AUTH_URL",
                "https://accounts.google.com/o/oauth2/v2/auth",
            )?,
            token_url: env.url_or("GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token")?,
            revocation: Revocation::Rfc7009(
                env.url_or("GOOGLE_REVOKE_URL", "https://oauth2.googleapis.com/revoke")?,
            ),
            scopes: SCOPES,
            // Google's consent page lets the user untick the Drive box ("granular consent",
            // <https://developers.google.com/identity/protocols/oauth2/resources/granular-permissions>).
            required_scopes: &["https://www.googleapis.com/auth/drive.readonly"],
            content_scopes: &["https://www.googleapis.com/auth/drive.readonly"],
            // offline + consent: Google returns a refresh token on every consent, not only the
            // first, so a user who reconnects gets a working grant again.
            extra_auth_params: &[("access_type", "offline"), ("prompt", "consent")],
        },
    )?;
    Ok(Arc::new(GoogleDrive {
        oauth,
        continued_listing_http: client.http.answering_with(&ListingAnswers),
        http: client.http,
        api_url: env.url_or("GOOGLE_API_URL", "https://www.googleapis.com")?,
    }))
}

/// Google's reading of its refusals. Drive answers rate limits with 403 as well as 429, told
/// apart from a real refusal by `error.errors[0].reason`: `userRateLimitExceeded` and
/// `rateLimitExceeded` are retried with backoff like 429, any other 403 (such as
/// `insufficientPermissions` or `dailyLimitExceeded`) is a rejection
/// (<https://developers.google.com/drive/api/guides/handle-errors>).
#[derive(Debug)]
pub struct GoogleAnswers;

const RATE_LIMIT_REASONS: &[&str] = &["userRateLimitExceeded", "rateLimitExceeded"];

#[derive(Deserialize)]
struct ApiErrorBody {
    error: ApiError,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    errors: Vec<ApiErrorDetail>,
}

#[derive(Deserialize)]
struct ApiErrorDetail {
    reason: Option<String>,
    location: Option<String>,
}

/// The first of Drive's `error.errors[]`, when the body is Drive's error.
fn first_error_detail(body: &[u8]) -> Option<ApiErrorDetail> {
    serde_json::from_slice::<ApiErrorBody>(body)
        .ok()
        .and_then(|body| body.error.errors.into_iter().next())
}

impl AnswerClassifier for GoogleAnswers {
    fn classify(&self, refusal: &Refusal<'_>) -> Verdict {
        if refusal.endpoint == Endpoint::Api && refusal.status == StatusCode::FORBIDDEN {
            let reason = first_error_detail(refusal.body).and_then(|detail| detail.reason);
            if reason
                .as_deref()
                .is_some_and(|reason| RATE_LIMIT_REASONS.contains(&reason))
            {
                return Verdict::RetryAfterWait;
            }
            // "The user has not granted the app {appId} {verb} access to the file": the
            // grant refreshes but no longer covers what the hub reads (a scope withdrawn in
            // the user's Google Account) (<https://developers.google.com/workspace/drive/api/guides/handle-errors>).
            if reason.as_deref() == Some("insufficientPermissions") {
                return Verdict::AccessLost("Drive: insufficientPermissions".into());
            }
        }
        answers::common(refusal)
    }
}

/// Google's rules for a `files.list` call that continues an enumeration: one that sent a
/// `pageToken`, or lists a shared drive that `drives.list` named earlier. Either can only
/// start over: the worker then restarts from a new `startPageToken` read before the new
/// listing, so nothing changing meanwhile is missed, and reconciles what the new listing no
/// longer sees.
/// - Drive refuses a page token that went stale with 400 `invalid` on `location` `pageToken`
///   (Drive documents no lifetime for them).
/// - A shared drive the user left (or that was deleted) since `drives.list` answers 404
///   `notFound` on `driveId`; the new enumeration's `drives.list` no longer names it, so it
///   ends `removed` with its entries deleted.
///
/// Bound only to those calls: the same refusal of a `changes.list` token, or of My Drive's
/// first page, stays a rejection, since starting over would get the same answer and restart
/// every sync.
#[derive(Debug)]
pub struct ListingAnswers;

impl AnswerClassifier for ListingAnswers {
    fn classify(&self, refusal: &Refusal<'_>) -> Verdict {
        if refusal.endpoint == Endpoint::Api {
            let detail = first_error_detail(refusal.body);
            let on = |status, reason, location| {
                refusal.status == status
                    && detail.as_ref().is_some_and(|detail| {
                        detail.reason.as_deref() == Some(reason)
                            && detail.location.as_deref() == Some(location)
                    })
            };
            if on(StatusCode::BAD_REQUEST, "invalid", "pageToken")
                || on(StatusCode::NOT_FOUND, "notFound", "driveId")
            {
                return Verdict::CursorExpired;
            }
        }
        GoogleAnswers.classify(refusal)
    }
}

/// A `changes` channel lives at most a week
/// (<https://developers.google.com/drive/api/guides/push#optional-properties>).
const CHANNEL_LIFETIME: chrono::Duration = chrono::Duration::weeks(1);

/// Drive's Channel resource, as `changes.watch` answers it; `expiration` is int64 in
/// milliseconds, which Google's JSON writes as a string.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WatchAnswer {
    resource_id: String,
    expiration: Option<String>,
}

#[derive(Deserialize)]
struct UserInfo {
    sub: String,
    email: Option<String>,
}

#[async_trait]
impl Connector for GoogleDrive {
    async fn content(
        &self,
        access_token: &SecretString,
        file: &FileEntry,
        format: Option<ContentFormat>,
    ) -> Result<ContentSource, ContentRefusal> {
        self.locate_content(access_token, file, format).await
    }

    async fn open_content(
        &self,
        access_token: &SecretString,
        source: &StreamSource,
        range: Option<ByteRange>,
    ) -> Result<ContentStream, ContentRefusal> {
        self.open_stream(access_token, source, range).await
    }

    async fn search(
        &self,
        access_token: &SecretString,
        query: &str,
        limit: usize,
    ) -> Result<Vec<FileEntry>, ProviderError> {
        self.search_files(access_token, query, limit).await
    }

    fn name(&self) -> ProviderName {
        NAME
    }

    fn oauth(&self) -> &OAuthApp {
        &self.oauth
    }

    fn api_base(&self) -> &str {
        &self.api_url
    }

    async fn identity(&self, access_token: &SecretString) -> Result<Identity, ProviderError> {
        let info: UserInfo = get_json(
            &self.http,
            &format!("{}/oauth2/v3/userinfo", self.api_url),
            &[],
            access_token,
        )
        .await?;
        Ok(Identity {
            email: info.email.unwrap_or_default(),
            provider_user_id: info.sub,
        })
    }

    async fn list_page(
        &self,
        access_token: &SecretString,
        cursor: Option<&str>,
    ) -> Result<FilePage, ProviderError> {
        let Some(cursor) = cursor else {
            return self.start_listing(access_token).await;
        };
        match serde_json::from_str(cursor) {
            Ok(Cursor::Listing {
                changes_from,
                catch_up,
                drive,
                page_token,
                pending,
            }) => {
                self.list_drive(
                    access_token,
                    changes_from,
                    catch_up,
                    drive,
                    page_token,
                    pending,
                )
                .await
            }
            Ok(Cursor::Changes { page_token }) => {
                self.list_changes(access_token, &page_token).await
            }
            // A cursor we cannot read (from an older version, or damaged) is treated like an
            // expired one: the worker starts the enumeration over.
            Err(_) => Err(ProviderError::CursorExpired),
        }
    }

    fn push_style(&self) -> PushStyle {
        PushStyle::Channels
    }

    fn channel_lifetime(&self) -> chrono::Duration {
        CHANNEL_LIFETIME
    }

    /// `changes.watch` from the account's page token, with the shared-drive flags of
    /// `changes.list` so that the channel covers what the sync lists
    /// (<https://developers.google.com/drive/api/reference/rest/v3/changes/watch>).
    async fn open_channel(
        &self,
        access_token: &SecretString,
        request: &ChannelRequest<'_>,
    ) -> Result<OpenedChannel, ProviderError> {
        let page_token = request
            .cursor
            .and_then(Cursor::watch_token)
            .ok_or_else(|| ProviderError::Rejected("no page token to watch from yet".into()))?;
        let body = json!({
            "id": request.id,
            "type": "web_hook",
            "address": request.address,
            "token": request.secret.expose_secret(),
            "expiration": request.expires_at.timestamp_millis(),
        })
        .to_string();
        let url = format!("{}/drive/v3/changes/watch", self.api_url);
        let mut query = vec![("pageToken", page_token.as_str())];
        query.extend_from_slice(ALL_DRIVES_CHANGES);
        let response = self
            .http
            .send(Endpoint::Api, |client| {
                client
                    .post(&url)
                    .query(&query)
                    .bearer_auth(access_token.expose_secret())
                    // Built by hand: reqwest's `json` feature is not among the hub's.
                    .header("content-type", "application/json")
                    .body(body.clone())
            })
            .await?;
        let answer: WatchAnswer = super::http::read_json(response, "Drive").await?;
        let expires_at = answer
            .expiration
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(request.expires_at);
        Ok(OpenedChannel {
            resource_id: answer.resource_id,
            expires_at,
        })
    }

    /// `channels.stop` with the channel's id and `resourceId`
    /// (<https://developers.google.com/drive/api/reference/rest/v3/channels/stop>).
    async fn close_channel(
        &self,
        access_token: &SecretString,
        channel: &PushChannel,
    ) -> Result<(), ProviderError> {
        let Some(resource_id) = &channel.resource_id else {
            // Never confirmed by Drive: there is nothing to stop.
            return Ok(());
        };
        let body = json!({"id": channel.id, "resourceId": resource_id}).to_string();
        let url = format!("{}/drive/v3/channels/stop", self.api_url);
        self.http
            .send(Endpoint::Api, |client| {
                client
                    .post(&url)
                    .bearer_auth(access_token.expose_secret())
                    .header("content-type", "application/json")
                    .body(body.clone())
            })
            .await?;
        Ok(())
    }
}
