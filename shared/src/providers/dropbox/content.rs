//! A file's bytes at Dropbox (docs/API.md, "File content"). A file's own bytes:
//! `files/get_temporary_link`, whose `link` serves them without a token for 4 hours
//! (<https://www.dropbox.com/developers/documentation/http/documentation#files-get_temporary_link>).
//! A Paper doc (`.paper`) has none (`is_downloadable: false`): it is exported as Markdown or
//! HTML by `files/export` on the content host
//! (<https://www.dropbox.com/developers/documentation/http/documentation#files-export>),
//! which has no link of its own, so the hub streams it through its content function. Dropbox
//! converts nothing else. Both calls are rooted as the listing is (`Dropbox-API-Path-Root`
//! for a team space, [`Root`]).

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::root::Root;
use super::{Dropbox, DROPBOX_DRIVE_ID, REFUSED};
use crate::error::ProviderError;
use crate::model::{ContentFormat, ContentSource, FileEntry, StreamSource};
use crate::providers::answers::Endpoint;
use crate::providers::content::{ContentRefusal, ContentStream};
use crate::providers::http::STREAM_TIMEOUT;

/// How long a temporary link works, as Dropbox documents it.
const LINK_LIFETIME_HOURS: i64 = 4;

/// The formats a Paper doc exports as, and `export_format`'s name of each.
const PAPER_EXPORTS: [(ContentFormat, &str); 2] = [
    (ContentFormat::Md, "markdown"),
    (ContentFormat::Html, "html"),
];

#[derive(Deserialize)]
struct TemporaryLink {
    link: String,
}

fn is_paper(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".paper")
}

/// The root the entry was listed under: its drive is the team space's root namespace, or
/// the account's own (home).
fn root_of(drive_id: Option<&str>) -> Root {
    match drive_id {
        Some(id) if id != DROPBOX_DRIVE_ID => Root::TeamSpace(id.to_string()),
        _ => Root::Home,
    }
}

/// Dropbox's endpoint errors that say this file gives no bytes, as the hub's refusal.
fn refusal(error: ProviderError) -> ContentRefusal {
    let summary = match &error {
        ProviderError::Rejected(why) => why.strip_prefix(REFUSED).unwrap_or(""),
        _ => "",
    };
    let why = if summary.starts_with("path/not_found") {
        "Dropbox does not find this file: deleted since the last sync"
    } else if summary.starts_with("path/not_file") {
        "a Dropbox folder has no bytes"
    } else if summary.starts_with("unsupported_file") || summary.starts_with("non_exportable") {
        "Dropbox gives no bytes of this kind of file"
    } else if summary.starts_with("not_allowed") {
        "Dropbox does not allow this file to be downloaded"
    } else {
        return ContentRefusal::Provider(error);
    };
    ContentRefusal::NotDownloadable(why.into())
}

/// JSON for an HTTP header: Dropbox wants every character beyond ASCII escaped there
/// (<https://www.dropbox.com/developers/reference/json-encoding>).
fn header_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .chars()
        .map(|c| match c {
            c if c.is_ascii() => c.to_string(),
            c => c
                .encode_utf16(&mut [0; 2])
                .iter()
                .map(|unit| format!("\\u{unit:04x}"))
                .collect(),
        })
        .collect()
}

impl Dropbox {
    pub(super) async fn content_source(
        &self,
        access_token: &SecretString,
        file: &FileEntry,
        format: Option<ContentFormat>,
    ) -> Result<ContentSource, ContentRefusal> {
        let root = root_of(file.drive_id.as_deref());
        if is_paper(&file.name) {
            let exports: Vec<ContentFormat> = PAPER_EXPORTS.iter().map(|(f, _)| *f).collect();
            let Some(format) = format else {
                return Err(ContentRefusal::ExportRequired(exports));
            };
            if !exports.contains(&format) {
                return Err(ContentRefusal::UnsupportedFormat(
                    "a Paper doc exports only as md or html".into(),
                ));
            }
            let stem = &file.name[..file.name.len() - ".paper".len()];
            return Ok(ContentSource::Streamed(StreamSource {
                file_id: file.id.clone(),
                format: Some(format),
                name: format!("{stem}.{}", format.extension()),
                media_type: format.media_type().into(),
                size: None,
                locator: match root {
                    Root::Home => None,
                    Root::TeamSpace(id) => Some(id),
                },
            }));
        }
        if format.is_some() {
            return Err(ContentRefusal::UnsupportedFormat(
                "Dropbox converts only Paper docs (to md or html): ask for this file's own \
                 bytes, without format"
                    .into(),
            ));
        }
        let answer: TemporaryLink = self
            .rpc(
                "files/get_temporary_link",
                Some(json!({ "path": file.id })),
                &root,
                access_token,
            )
            .await
            .map_err(refusal)?;
        Ok(ContentSource::Link {
            url: answer.link,
            expires_at: Some(Utc::now() + chrono::Duration::hours(LINK_LIFETIME_HOURS)),
        })
    }

    /// `files/export` of a Paper doc, its bytes streamed as they come.
    pub(super) async fn export(
        &self,
        access_token: &SecretString,
        source: &StreamSource,
    ) -> Result<ContentStream, ContentRefusal> {
        let Some((_, export_format)) = PAPER_EXPORTS
            .iter()
            .find(|(format, _)| Some(*format) == source.format)
        else {
            return Err(ContentRefusal::UnsupportedFormat(
                "a Paper doc exports only as md or html".into(),
            ));
        };
        let argument = header_json(&json!({
            "path": source.file_id,
            "export_format": export_format,
        }));
        let root = match &source.locator {
            Some(id) => Root::TeamSpace(id.clone()),
            None => Root::Home,
        };
        let path_root = root.header();
        let url = format!("{}/2/files/export", self.content_url);
        let response = self
            .http
            .send(Endpoint::Api, |client| {
                let mut request = client
                    .post(&url)
                    .bearer_auth(access_token.expose_secret())
                    .header("Dropbox-API-Arg", &argument)
                    .timeout(STREAM_TIMEOUT);
                if let Some(path_root) = &path_root {
                    request = request.header("Dropbox-API-Path-Root", path_root);
                }
                request
            })
            .await
            .map_err(refusal)?;
        Ok(ContentStream::of(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_json_escapes_what_is_not_ascii() {
        let value = json!({"path": "/Café 🎉.paper"});
        assert_eq!(
            header_json(&value),
            r#"{"path":"/Caf\u00e9 \ud83c\udf89.paper"}"#
        );
    }

    #[test]
    fn entries_are_rooted_where_they_were_listed() {
        assert_eq!(root_of(None), Root::Home);
        assert_eq!(root_of(Some(DROPBOX_DRIVE_ID)), Root::Home);
        assert_eq!(root_of(Some("77")), Root::TeamSpace("77".into()));
    }
}
