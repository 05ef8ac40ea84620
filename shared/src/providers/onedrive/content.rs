//! A file's bytes at Graph (docs/API.md, "File content"): `GET
//! /drives/{drive-id}/items/{item-id}/content` answers 302 with a pre-authenticated download
//! URL in `Location` (<https://learn.microsoft.com/en-us/graph/api/driveitem-get-content>),
//! which the hub hands on without following it; with `?format=pdf|html` the URL serves the
//! file converted (<https://learn.microsoft.com/en-us/graph/api/driveitem-get-content-format>).
//!
//! The index's entry names the item by its own drive: `drive_id` is the item's
//! `parentReference.driveId` (a document library's, or the sharer's drive for the contents of
//! a shared folder, `walk.rs`), so the call needs nothing more than the entry.

use secrecy::{ExposeSecret, SecretString};

use super::OneDrive;
use crate::model::{ContentFormat, ContentSource, FileEntry};
use crate::providers::answers::Endpoint;
use crate::providers::content::{redirect_link, ContentRefusal};

/// Why Graph finds no item where the entry says. The contents of a folder shared with the
/// user are filed under the user's own drive (`walk.rs`, docs/API.md "Drives"), so the entry
/// no longer names the sharer's drive that holds them; Graph addresses an item only within
/// its drive.
const GONE: &str = "deleted since the last sync, or in a folder another user shared, whose \
    drive the index does not keep";

/// The source extensions Graph converts to PDF, as the format page lists them.
const PDF_SOURCES: &[&str] = &[
    "csv", "doc", "docx", "odp", "ods", "odt", "pot", "potm", "potx", "pps", "ppsx", "ppsxm",
    "ppt", "pptm", "pptx", "rtf", "xls", "xlsx",
];

/// The source extensions Graph converts to HTML (Loop and Whiteboard files).
const HTML_SOURCES: &[&str] = &["loop", "fluid", "wbtx"];

/// The largest file Graph converts: "The maximum size limit for files to use format
/// conversion is 2 MB" (driveitem-get-content-format, v1.0).
const MAX_CONVERTED_SIZE: u64 = 2 * 1024 * 1024;

/// The formats Graph converts a file of this name to.
fn conversions(name: &str) -> Vec<ContentFormat> {
    let extension = name
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default();
    let mut formats = Vec::new();
    if PDF_SOURCES.contains(&extension.as_str()) {
        formats.push(ContentFormat::Pdf);
    }
    if HTML_SOURCES.contains(&extension.as_str()) {
        formats.push(ContentFormat::Html);
    }
    formats
}

impl OneDrive {
    pub(super) async fn content_link(
        &self,
        access_token: &SecretString,
        file: &FileEntry,
        format: Option<ContentFormat>,
    ) -> Result<ContentSource, ContentRefusal> {
        // Only items with the `file` facet have bytes; the index keeps the facet's MIME type,
        // so an entry without one is a `package` (a OneNote notebook: a folder of sections
        // at Microsoft, opened in OneNote), which `/content` does not serve.
        if file.mime_type.is_none() {
            return Err(ContentRefusal::NotDownloadable(
                "a OneNote notebook (a Graph package) has no bytes of its own".into(),
            ));
        }
        let Some(drive) = file.drive_id.as_deref() else {
            return Err(ContentRefusal::NotDownloadable(
                "the index does not say which drive holds this item".into(),
            ));
        };
        let mut url = format!(
            "{}/drives/{}/items/{}/content",
            self.graph_url,
            segment(drive),
            segment(&file.id)
        );
        if let Some(format) = format {
            let allowed = conversions(&file.name);
            if !allowed.contains(&format) {
                let can = match allowed.as_slice() {
                    [] => "Graph converts this file to no format: ask without one".to_string(),
                    formats => format!(
                        "Graph converts this file only to {}",
                        formats
                            .iter()
                            .map(|f| f.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                return Err(ContentRefusal::UnsupportedFormat(can));
            }
            if file.size.is_some_and(|size| size > MAX_CONVERTED_SIZE) {
                return Err(ContentRefusal::UnsupportedFormat(
                    "Graph converts files of at most 2 MB: ask for this one without format".into(),
                ));
            }
            url.push_str(&format!("?format={}", format.name()));
        }
        let response = self
            .http
            .send_for_redirect(Endpoint::Api, |client| {
                client.get(&url).bearer_auth(access_token.expose_secret())
            })
            .await?;
        Ok(ContentSource::Link {
            url: redirect_link(&response, "Microsoft", GONE)?,
            // Graph says only that the URL lasts "a short period of time (a few minutes)".
            expires_at: None,
        })
    }
}

/// An id as one path segment.
fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_converts_office_files_to_pdf_and_loop_files_to_html() {
        assert_eq!(conversions("Report.DOCX"), vec![ContentFormat::Pdf]);
        assert_eq!(conversions("b.xlsx"), vec![ContentFormat::Pdf]);
        assert_eq!(conversions("notes.loop"), vec![ContentFormat::Html]);
        assert!(conversions("photo.jpg").is_empty());
        assert!(conversions("paper.pdf").is_empty());
        assert!(conversions("no-extension").is_empty());
    }
}
