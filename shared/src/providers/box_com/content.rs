//! A file's bytes at Box (docs/API.md, "File content"): `GET /files/{id}/content` answers 302
//! with the download URL in `Location` (<https://developer.box.com/reference/get-files-id-content/>),
//! which the hub hands on without following it; it works without a token and "in most cases"
//! for 15 minutes (<https://developer.box.com/guides/downloads/get-url>). Box converts
//! nothing, so no `format` is served. A file uploaded a moment ago may not be ready: Box
//! answers 202 with `Retry-After`, which the hub passes on as a provider that asked to wait.

use secrecy::{ExposeSecret, SecretString};

use super::BoxConnector;
use crate::error::ProviderError;
use crate::model::{ContentFormat, ContentSource, FileEntry};
use crate::providers::answers::Endpoint;
use crate::providers::content::{redirect_link, ContentRefusal};
use crate::providers::http::retry_after;

impl BoxConnector {
    pub(super) async fn content_link(
        &self,
        access_token: &SecretString,
        file: &FileEntry,
        format: Option<ContentFormat>,
    ) -> Result<ContentSource, ContentRefusal> {
        // Entries are `file_<id>` or `folder_<id>` (Box numbers files and folders apart).
        let Some(id) = file.id.strip_prefix("file_") else {
            return Err(ContentRefusal::NotDownloadable(
                "a Box folder has no bytes".into(),
            ));
        };
        if format.is_some() {
            return Err(ContentRefusal::UnsupportedFormat(
                "Box converts no file: ask for its own bytes, without format".into(),
            ));
        }
        let url = format!(
            "{}/files/{}/content",
            self.api_url,
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        );
        let response = self
            .http
            .send_for_redirect(Endpoint::Api, |client| {
                client.get(&url).bearer_auth(access_token.expose_secret())
            })
            .await?;
        if response.status() == reqwest::StatusCode::ACCEPTED {
            return Err(ContentRefusal::Provider(ProviderError::Retryable {
                status: Some(202),
                attempts: 1,
                retry_after: retry_after(response.headers()),
            }));
        }
        Ok(ContentSource::Link {
            url: redirect_link(&response, "Box", "trashed or deleted since the last sync")?,
            // "In most cases" 15 minutes, "subject to change without any prior notification".
            expires_at: None,
        })
    }
}
