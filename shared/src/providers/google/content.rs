//! A Drive file's bytes (docs/API.md, "File content"). Drive has no pre-authenticated link,
//! so every file is streamed through the hub: `files.get` says what the file is, then its
//! own bytes come from `alt=media` (with one `Range`) and a Google Docs, Sheets, Slides or
//! Drawings file's from `files.export`, or, past its 10 MB limit, from the file's
//! `exportLinks` (<https://developers.google.com/drive/api/guides/manage-downloads>).

use std::collections::BTreeMap;

use oauth2::reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{first_error_detail, GoogleAnswers, GoogleDrive};
use crate::error::ProviderError;
use crate::model::{ContentFormat, ContentSource, FileEntry, StreamSource};
use crate::providers::answers::{AnswerClassifier, Endpoint, Refusal, Verdict};
use crate::providers::content::{ByteRange, ContentRefusal, ContentStream};
use crate::providers::http::{self, ProviderHttp};

/// What the hub reads of the file: what it is, whether its owner lets it be downloaded, and
/// where its exports are beyond `files.export`'s limit.
const FILE_FIELDS: &str = "id,name,mimeType,size,capabilities/canDownload,exportLinks";
/// Drive's own types: folders, shortcuts and the Docs Editors' files, which have no bytes of
/// their own (<https://developers.google.com/drive/api/guides/mime-types>).
const NATIVE_PREFIX: &str = "application/vnd.google-apps.";
const FOLDER: &str = "application/vnd.google-apps.folder";
const SHORTCUT: &str = "application/vnd.google-apps.shortcut";
/// What is escaped of a file id in a URL path: all but RFC 3986's unreserved characters
/// (Drive's ids are letters, digits, `-` and `_`, kept as they are).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Where Google's `exportLinks` point; the token goes nowhere else but the API's own host.
const EXPORT_LINK_HOST: &str = "docs.google.com";

/// The 403 reasons of a download or an export that say something about the file, read apart
/// from a refusal of the token or a rate limit
/// (<https://developers.google.com/drive/api/guides/handle-errors>):
/// - `exportSizeLimitExceeded`: the export is over `files.export`'s 10 MB
///   (<https://developers.google.com/drive/api/reference/rest/v3/files/export>);
/// - `cannotDownloadAbusiveFile`: Drive flagged the file as malware or spam. Only its owner
///   may download it, by sending `acknowledgeAbuse=true`; the hub never does, since no
///   person has seen the warning: the bytes of a flagged file do not go out through a link
///   that anyone holding it may open;
/// - `fileNotDownloadable`, `cannotDownloadFile`, `fileNotExportable`: the file has no bytes
///   to give, or its owner keeps readers from downloading it.
const FILE_REASONS: &[&str] = &[
    "exportSizeLimitExceeded",
    "cannotDownloadAbusiveFile",
    "fileNotDownloadable",
    "cannotDownloadFile",
    "fileNotExportable",
];

/// How a refusal for one of [`FILE_REASONS`] is described, so that the connector can tell
/// it apart after the HTTP client has classified it.
fn refused_for(reason: &str) -> String {
    format!("Drive refused the file: {reason}")
}

/// Google's reading of refusals ([`GoogleAnswers`]), but the 403s of [`FILE_REASONS`] are
/// rejections the connector reads itself, never a lost access.
#[derive(Debug)]
struct ContentAnswers;

impl AnswerClassifier for ContentAnswers {
    fn classify(&self, refusal: &Refusal<'_>) -> Verdict {
        if refusal.endpoint == Endpoint::Api && refusal.status == StatusCode::FORBIDDEN {
            let reason = first_error_detail(refusal.body).and_then(|detail| detail.reason);
            if let Some(reason) = reason.filter(|r| FILE_REASONS.contains(&r.as_str())) {
                return Verdict::Reject(refused_for(&reason));
            }
        }
        GoogleAnswers.classify(refusal)
    }
}

/// Which of [`FILE_REASONS`] the error is, if any.
fn file_reason(error: &ProviderError) -> Option<&'static str> {
    match error {
        ProviderError::Rejected(description) => FILE_REASONS
            .iter()
            .copied()
            .find(|reason| *description == refused_for(reason)),
        _ => None,
    }
}

/// A refusal of a download or export, as the hub says it.
fn refusal_of(error: ProviderError) -> ContentRefusal {
    match file_reason(&error) {
        Some("cannotDownloadAbusiveFile") => ContentRefusal::NotDownloadable(
            "Drive flagged this file as malware or spam; only its owner can download it, \
             from Drive"
                .into(),
        ),
        Some("cannotDownloadFile") => {
            ContentRefusal::NotDownloadable("the file's owner has turned off downloading it".into())
        }
        Some("fileNotDownloadable" | "fileNotExportable") => {
            ContentRefusal::NotDownloadable("Drive gives no bytes of this file".into())
        }
        _ => ContentRefusal::Provider(error),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DriveFile {
    id: String,
    name: String,
    mime_type: String,
    /// int64 as a string; absent for Drive's own types.
    size: Option<String>,
    capabilities: Option<Capabilities>,
    #[serde(default)]
    export_links: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Capabilities {
    can_download: Option<bool>,
}

/// `about.get`'s `exportFormats`: each native type and the media types it exports to
/// (<https://developers.google.com/drive/api/reference/rest/v3/about>).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct About {
    #[serde(default)]
    export_formats: BTreeMap<String, Vec<String>>,
}

fn names(formats: &[ContentFormat]) -> String {
    formats
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name of an export: the file's name with the format's extension.
fn export_name(name: &str, format: ContentFormat) -> String {
    let extension = format!(".{}", format.extension());
    if name.to_ascii_lowercase().ends_with(&extension) {
        name.to_string()
    } else {
        format!("{name}{extension}")
    }
}

impl GoogleDrive {
    fn content_http(&self) -> ProviderHttp {
        self.http.answering_with(&ContentAnswers)
    }

    /// `{GOOGLE_API_URL}/drive/v3/files/{id}`, the id encoded as one path segment.
    fn file_url(&self, id: &str) -> String {
        let segment = percent_encoding::utf8_percent_encode(id, PATH_SEGMENT);
        format!("{}/drive/v3/files/{segment}", self.api_url)
    }

    /// What [`super::Connector::content`] answers for Drive.
    pub(super) async fn locate_content(
        &self,
        access_token: &SecretString,
        file: &FileEntry,
        format: Option<ContentFormat>,
    ) -> Result<ContentSource, ContentRefusal> {
        let http = self.content_http();
        let url = self.file_url(&file.id);
        let query = [("supportsAllDrives", "true"), ("fields", FILE_FIELDS)];
        let answer = http
            .send_unless_missing(Endpoint::Api, |client| {
                client
                    .get(&url)
                    .query(&query)
                    .bearer_auth(access_token.expose_secret())
            })
            .await?
            .ok_or_else(|| ContentRefusal::FileGone(file.id.clone()))?;
        let found: DriveFile = http::read_json(answer, "Drive").await?;
        match found.mime_type.as_str() {
            FOLDER => {
                return Err(ContentRefusal::NotDownloadable(
                    "a folder has no bytes".into(),
                ))
            }
            SHORTCUT => {
                return Err(ContentRefusal::NotDownloadable(
                    "a shortcut has no bytes; ask for its target_id".into(),
                ))
            }
            _ => {}
        }
        if found.capabilities.and_then(|c| c.can_download) == Some(false) {
            return Err(ContentRefusal::NotDownloadable(
                "the file's owner has turned off downloading it".into(),
            ));
        }
        if !found.mime_type.starts_with(NATIVE_PREFIX) {
            if let Some(format) = format {
                return Err(ContentRefusal::UnsupportedFormat(format!(
                    "Drive converts only Google Docs, Sheets, Slides and Drawings; ask for this \
                     file without format (got {format})"
                )));
            }
            let size = found.size.as_deref().and_then(|size| size.parse().ok());
            return Ok(ContentSource::Streamed(StreamSource {
                file_id: found.id,
                format: None,
                name: found.name,
                media_type: found.mime_type,
                size,
                locator: None,
            }));
        }
        let formats = self
            .export_formats(&http, access_token, &found.mime_type)
            .await?;
        if formats.is_empty() {
            return Err(ContentRefusal::NotDownloadable(format!(
                "Drive exports a file of type {} to no format the hub serves",
                found.mime_type
            )));
        }
        let Some(format) = format else {
            return Err(ContentRefusal::ExportRequired(formats));
        };
        if !formats.contains(&format) {
            return Err(ContentRefusal::UnsupportedFormat(format!(
                "this file exports only as {} (got {format})",
                names(&formats)
            )));
        }
        Ok(ContentSource::Streamed(StreamSource {
            locator: found.export_links.get(format.media_type()).cloned(),
            file_id: found.id,
            format: Some(format),
            name: export_name(&found.name, format),
            media_type: format.media_type().to_string(),
            size: None,
        }))
    }

    /// The formats Drive exports a native file of `mime_type` to, in Drive's order: those of
    /// its `exportFormats` that the hub names.
    async fn export_formats(
        &self,
        http: &ProviderHttp,
        access_token: &SecretString,
        mime_type: &str,
    ) -> Result<Vec<ContentFormat>, ProviderError> {
        let url = format!("{}/drive/v3/about", self.api_url);
        let answer = http
            .send(Endpoint::Api, |client| {
                client
                    .get(&url)
                    .query(&[("fields", "exportFormats")])
                    .bearer_auth(access_token.expose_secret())
            })
            .await?;
        let about: About = http::read_json(answer, "Drive").await?;
        let mut formats = Vec::new();
        let targets = about.export_formats.get(mime_type).into_iter().flatten();
        for format in targets.filter_map(|target| ContentFormat::of_media_type(target)) {
            if !formats.contains(&format) {
                formats.push(format);
            }
        }
        Ok(formats)
    }

    /// What [`super::Connector::open_content`] answers for Drive.
    pub(super) async fn open_stream(
        &self,
        access_token: &SecretString,
        source: &StreamSource,
        range: Option<ByteRange>,
    ) -> Result<ContentStream, ContentRefusal> {
        let http = self.content_http();
        let url = self.file_url(&source.file_id);
        let answer = match source.format {
            None => {
                let query = [("alt", "media"), ("supportsAllDrives", "true")];
                http.send_unless_missing(Endpoint::Api, |client| {
                    let request = client
                        .get(&url)
                        .query(&query)
                        .bearer_auth(access_token.expose_secret())
                        .timeout(http::STREAM_TIMEOUT);
                    match range {
                        Some(range) => request.header("range", range.header()),
                        None => request,
                    }
                })
                .await
            }
            Some(format) => {
                let export = format!("{url}/export");
                let query = [("mimeType", format.media_type())];
                let exported = http
                    .send_unless_missing(Endpoint::Api, |client| {
                        client
                            .get(&export)
                            .query(&query)
                            .bearer_auth(access_token.expose_secret())
                            .timeout(http::STREAM_TIMEOUT)
                    })
                    .await;
                match exported {
                    Err(error) if file_reason(&error) == Some("exportSizeLimitExceeded") => {
                        self.open_export_link(&http, access_token, source).await
                    }
                    other => other,
                }
            }
        }
        .map_err(refusal_of)?
        .ok_or_else(|| ContentRefusal::FileGone(source.file_id.clone()))?;
        if range.is_some() && answer.status() != StatusCode::PARTIAL_CONTENT {
            return Err(ContentRefusal::Provider(ProviderError::Rejected(format!(
                "Drive answered a range with HTTP {}",
                answer.status().as_u16()
            ))));
        }
        Ok(ContentStream::of(answer))
    }

    /// An export past `files.export`'s limit, from the file's `exportLinks` URL, which has
    /// none. The bearer token goes to it only when it is on Google's export host or the API's
    /// own: the URL came from an answer, and a token is never sent anywhere else.
    async fn open_export_link(
        &self,
        http: &ProviderHttp,
        access_token: &SecretString,
        source: &StreamSource,
    ) -> Result<Option<oauth2::reqwest::Response>, ProviderError> {
        let link = source.locator.as_deref().ok_or_else(|| {
            ProviderError::Rejected(
                "the export is past Drive's export size limit and the file has no export link"
                    .into(),
            )
        })?;
        if !trusted_export_link(link, &self.api_url) {
            return Err(ProviderError::Rejected(
                "the file's export link is not on Google's host".into(),
            ));
        }
        http.send_unless_missing(Endpoint::Api, |client| {
            client
                .get(link)
                .bearer_auth(access_token.expose_secret())
                .timeout(http::STREAM_TIMEOUT)
        })
        .await
    }
}

/// Whether `link` is on Google's export host over HTTPS, or on the origin of the API at
/// `api_url` (the stand-in's, in tests): the only places the bearer token may go.
fn trusted_export_link(link: &str, api_url: &str) -> bool {
    let Ok(link) = url::Url::parse(link) else {
        return false;
    };
    let google = link.scheme() == "https"
        && link.host_str() == Some(EXPORT_LINK_HOST)
        && link.port().is_none()
        && link.username().is_empty();
    let api = url::Url::parse(api_url).is_ok_and(|api| api.origin() == link.origin())
        && link.has_host()
        && link.username().is_empty();
    google || api
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_is_named_with_its_extension_once() {
        assert_eq!(export_name("Notes", ContentFormat::Md), "Notes.md");
        assert_eq!(export_name("Budget.PDF", ContentFormat::Pdf), "Budget.PDF");
        assert_eq!(export_name("a.docx", ContentFormat::Pdf), "a.docx.pdf");
    }

    #[test]
    fn the_token_goes_only_to_googles_export_host_or_the_apis_own() {
        let api = "https://www.googleapis.com";
        for trusted in [
            "https://docs.google.com/feeds/download/documents/export/Export?id=1&exportFormat=pdf",
            "https://www.googleapis.com/drive/v3/files/1/export?mimeType=application/pdf",
        ] {
            assert!(trusted_export_link(trusted, api), "{trusted}");
        }
        for refused in [
            "http://docs.google.com/feeds/download/x",
            "https://docs.google.com.evil.test/feeds/download/x",
            "https://evil.test/?https://docs.google.com/",
            "https://docs.google.com:8443/feeds/download/x",
            "https://user@docs.google.com/feeds/download/x",
            "https://sheets.googleapis.com/x",
            "not a url",
            "",
        ] {
            assert!(!trusted_export_link(refused, api), "{refused}");
        }
        let stand_in = "http://127.0.0.1:4000/google";
        assert!(trusted_export_link(
            "http://127.0.0.1:4000/google/feeds/download/export?id=1",
            stand_in
        ));
        assert!(!trusted_export_link(
            "http://127.0.0.1:4001/google/feeds/download/export?id=1",
            stand_in
        ));
    }

    #[test]
    fn only_file_reasons_are_read_back_from_an_error() {
        let error = ProviderError::Rejected(refused_for("exportSizeLimitExceeded"));
        assert_eq!(file_reason(&error), Some("exportSizeLimitExceeded"));
        let other = ProviderError::Rejected("HTTP 403: exportSizeLimitExceeded".into());
        assert_eq!(file_reason(&other), None);
        assert_eq!(file_reason(&ProviderError::Unauthorized), None);
    }
}
