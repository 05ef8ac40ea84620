//! Google Drive (Drive API v3) and Google's OAuth2 endpoints.
//!
//! First sync: `changes/startPageToken` is read *before* the enumeration so that nothing that
//! changes while `files.list` pages through the drive is missed, then `files.list` pages to the
//! end. Later syncs: `changes.list` from the saved token to `newStartPageToken`, removed and
//! trashed files included as deleted entries.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use oauth2::reqwest::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::answers::{self, AnswerClassifier, Endpoint, Refusal, Verdict};
use super::http::ProviderHttp;
use super::oauth::{OAuthApp, OAuthEndpoints};
use super::{get_json, Connector, FilePage, NextPage, ProviderClient, ProviderSpec};
use crate::config::Env;
use crate::error::{HubResult, ProviderError};
use crate::model::{FileEntry, Identity};

pub const NAME: &str = "google";

pub const SPEC: ProviderSpec = ProviderSpec {
    name: NAME,
    client_id_var: "GOOGLE_CLIENT_ID",
    client_secret_var: "GOOGLE_CLIENT_SECRET",
    answers: &GoogleAnswers,
    build,
};

/// `drive.metadata.readonly` is enough to index names, sizes and links; `openid email` gives
/// the userinfo `sub` and `email`.
const SCOPES: &[&str] = &[
    "openid",
    "email",
    "https://www.googleapis.com/auth/drive.metadata.readonly",
];

/// Drive answers only id, name and mimeType unless asked for more with `fields`.
const FILE_FIELDS: &str = "id,name,mimeType,size,modifiedTime,webViewLink,trashed";
const PAGE_SIZE: &str = "1000";

pub struct GoogleDrive {
    oauth: OAuthApp,
    http: ProviderHttp,
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
            revoke_url: Some(
                env.url_or("GOOGLE_REVOKE_URL", "https://oauth2.googleapis.com/revoke")?,
            ),
            scopes: SCOPES,
            // offline + consent: Google returns a refresh token on every consent, not only the
            // first, so a user who reconnects gets a working grant again.
            extra_auth_params: &[("access_type", "offline"), ("prompt", "consent")],
        },
    )?;
    Ok(Arc::new(GoogleDrive {
        oauth,
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
}

impl AnswerClassifier for GoogleAnswers {
    fn classify(&self, refusal: &Refusal<'_>) -> Verdict {
        if refusal.endpoint == Endpoint::Api && refusal.status == StatusCode::FORBIDDEN {
            let reason = serde_json::from_slice::<ApiErrorBody>(refusal.body)
                .ok()
                .and_then(|body| body.error.errors.into_iter().next())
                .and_then(|detail| detail.reason);
            if reason.is_some_and(|reason| RATE_LIMIT_REASONS.contains(&reason.as_str())) {
                return Verdict::RetryAfterWait;
            }
        }
        answers::common(refusal)
    }
}

/// Where a Google sync stands, serialised as the opaque cursor.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "phase", rename_all = "snake_case")]
enum Cursor {
    /// Enumerating with `files.list`; `start_page_token` was taken before the first page.
    Listing {
        start_page_token: String,
        page_token: String,
    },
    /// Reading `changes.list` from `page_token`.
    Changes { page_token: String },
}

impl Cursor {
    fn encode(&self) -> String {
        serde_json::to_string(self).expect("cursor JSON always serialises")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DriveFile {
    id: String,
    name: Option<String>,
    mime_type: Option<String>,
    /// int64 as a decimal string; absent for Google Docs, Sheets and folders.
    size: Option<String>,
    modified_time: Option<DateTime<Utc>>,
    web_view_link: Option<String>,
    #[serde(default)]
    trashed: bool,
}

impl DriveFile {
    fn into_entry(self) -> FileEntry {
        FileEntry {
            id: self.id,
            name: self.name.unwrap_or_default(),
            mime_type: self.mime_type,
            size: self.size.and_then(|s| s.parse().ok()),
            modified_at: self.modified_time,
            web_url: self.web_view_link,
            deleted: self.trashed,
            kind: None,
            parent_ids: None,
            drive_id: None,
            path: None,
            content_hash: None,
            changed_at: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileList {
    next_page_token: Option<String>,
    #[serde(default)]
    files: Vec<DriveFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Change {
    file_id: Option<String>,
    #[serde(default)]
    removed: bool,
    file: Option<DriveFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeList {
    next_page_token: Option<String>,
    new_start_page_token: Option<String>,
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartPageToken {
    start_page_token: String,
}

#[derive(Deserialize)]
struct UserInfo {
    sub: String,
    email: Option<String>,
}

impl GoogleDrive {
    async fn start_listing(&self, token: &SecretString) -> Result<FilePage, ProviderError> {
        let start: StartPageToken = get_json(
            &self.http,
            &format!("{}/drive/v3/changes/startPageToken", self.api_url),
            &[],
            token,
        )
        .await?;
        self.list_files(token, start.start_page_token, None).await
    }

    async fn list_files(
        &self,
        token: &SecretString,
        start_page_token: String,
        page_token: Option<&str>,
    ) -> Result<FilePage, ProviderError> {
        let fields = format!("nextPageToken,files({FILE_FIELDS})");
        let mut query = vec![
            ("pageSize", PAGE_SIZE),
            ("fields", fields.as_str()),
            ("q", "trashed = false"),
            ("spaces", "drive"),
        ];
        if let Some(page_token) = page_token {
            query.push(("pageToken", page_token));
        }
        let list: FileList = get_json(
            &self.http,
            &format!("{}/drive/v3/files", self.api_url),
            &query,
            token,
        )
        .await?;
        let next = match list.next_page_token {
            Some(page_token) => NextPage::More(
                Cursor::Listing {
                    start_page_token,
                    page_token,
                }
                .encode(),
            ),
            None => NextPage::Done(
                Cursor::Changes {
                    page_token: start_page_token,
                }
                .encode(),
            ),
        };
        Ok(FilePage {
            files: list.files.into_iter().map(DriveFile::into_entry).collect(),
            next,
        })
    }

    async fn list_changes(
        &self,
        token: &SecretString,
        page_token: &str,
    ) -> Result<FilePage, ProviderError> {
        let fields =
            format!("nextPageToken,newStartPageToken,changes(fileId,removed,file({FILE_FIELDS}))");
        let query = [
            ("pageToken", page_token),
            ("pageSize", PAGE_SIZE),
            ("fields", fields.as_str()),
            ("includeRemoved", "true"),
            ("spaces", "drive"),
        ];
        let list: ChangeList = get_json(
            &self.http,
            &format!("{}/drive/v3/changes", self.api_url),
            &query,
            token,
        )
        .await?;
        let files = list
            .changes
            .into_iter()
            .filter_map(
                |change| match (change.removed, change.file, change.file_id) {
                    (false, Some(file), _) => Some(file.into_entry()),
                    (_, file, Some(id)) => Some(FileEntry {
                        name: file
                            .as_ref()
                            .and_then(|f| f.name.clone())
                            .unwrap_or_default(),
                        id,
                        mime_type: None,
                        size: None,
                        modified_at: None,
                        web_url: None,
                        deleted: true,
                        kind: None,
                        parent_ids: None,
                        drive_id: None,
                        path: None,
                        content_hash: None,
                        changed_at: None,
                    }),
                    _ => None,
                },
            )
            .collect();
        let changes_from = |page_token| Cursor::Changes { page_token }.encode();
        let next = NextPage::from_links(
            list.next_page_token.map(changes_from),
            list.new_start_page_token.map(changes_from),
            "nextPageToken nor newStartPageToken",
        )?;
        Ok(FilePage { files, next })
    }
}

#[async_trait]
impl Connector for GoogleDrive {
    fn name(&self) -> &'static str {
        NAME
    }

    fn oauth(&self) -> &OAuthApp {
        &self.oauth
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
                start_page_token,
                page_token,
            }) => {
                self.list_files(access_token, start_page_token, Some(&page_token))
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
}
