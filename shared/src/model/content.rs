//! A file's bytes (docs/API.md, "File content"): the formats they can be asked in, where a
//! connector says they are ([`ContentSource`]), and the hub's own short-lived link to the
//! bytes it streams ([`ContentLink`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a file's bytes are, as its connector found them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentSource {
    /// A pre-authenticated link of the provider's own (Graph's downloadUrl, Dropbox's
    /// temporary link, Box's download redirect): it needs no token, and no byte passes
    /// through the hub.
    Link {
        url: String,
        /// When the provider lets it expire, where it says.
        expires_at: Option<DateTime<Utc>>,
    },
    /// No such link exists (Drive's `alt=media` and `files.export`, Dropbox's
    /// `files/export`): the hub streams the bytes itself, from what is here.
    Streamed(StreamSource),
}

/// What the hub's content function needs to stream a file: kept in its [`ContentLink`],
/// so that `HEAD` and range checks answer without asking the provider again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSource {
    /// The provider's id of the file.
    pub file_id: String,
    pub format: Option<ContentFormat>,
    /// The file's name as downloaded (with the format's extension for an export).
    pub name: String,
    pub media_type: String,
    /// The size in bytes, when known before reading (never, for an export).
    pub size: Option<u64>,
    /// Where the connector reads the bytes from when it is not its usual endpoint (a
    /// Drive `exportLinks` URL past the export size limit, a Dropbox path root): opaque to
    /// the hub, never a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locator: Option<String>,
}

impl StreamSource {
    /// Whether a `Range` can be honoured: the file's own bytes of a known size, not an
    /// export made on the fly.
    pub fn rangeable(&self) -> bool {
        self.format.is_none() && self.size.is_some()
    }
}

/// The hub's link to bytes it streams: bound to one account, one file and one format,
/// expiring. Stored under the hash of its token (the token itself is only in the URL the
/// app was given).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentLink {
    /// The SHA-256 of the token, hex.
    pub id: String,
    pub account_id: String,
    pub source: StreamSource,
    pub expires_at: DateTime<Utc>,
}

/// One value of `format`. Which pairs of file and format work is the provider's business
/// (its connector says); this is only the list of names the API takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentFormat {
    Pdf,
    Docx,
    Xlsx,
    Pptx,
    Odt,
    Ods,
    Odp,
    Rtf,
    Txt,
    Csv,
    Tsv,
    Html,
    Md,
    Epub,
    Png,
    Jpeg,
    Svg,
}

impl ContentFormat {
    pub const ALL: [ContentFormat; 17] = [
        ContentFormat::Pdf,
        ContentFormat::Docx,
        ContentFormat::Xlsx,
        ContentFormat::Pptx,
        ContentFormat::Odt,
        ContentFormat::Ods,
        ContentFormat::Odp,
        ContentFormat::Rtf,
        ContentFormat::Txt,
        ContentFormat::Csv,
        ContentFormat::Tsv,
        ContentFormat::Html,
        ContentFormat::Md,
        ContentFormat::Epub,
        ContentFormat::Png,
        ContentFormat::Jpeg,
        ContentFormat::Svg,
    ];

    /// The format of this name, as `format=` spells it.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|format| format.name() == name)
    }

    pub fn name(self) -> &'static str {
        self.extension()
    }

    /// The extension the downloaded file's name gets.
    pub fn extension(self) -> &'static str {
        match self {
            ContentFormat::Pdf => "pdf",
            ContentFormat::Docx => "docx",
            ContentFormat::Xlsx => "xlsx",
            ContentFormat::Pptx => "pptx",
            ContentFormat::Odt => "odt",
            ContentFormat::Ods => "ods",
            ContentFormat::Odp => "odp",
            ContentFormat::Rtf => "rtf",
            ContentFormat::Txt => "txt",
            ContentFormat::Csv => "csv",
            ContentFormat::Tsv => "tsv",
            ContentFormat::Html => "html",
            ContentFormat::Md => "md",
            ContentFormat::Epub => "epub",
            ContentFormat::Png => "png",
            ContentFormat::Jpeg => "jpeg",
            ContentFormat::Svg => "svg",
        }
    }

    /// The media type of the bytes in this format; for Google's exports, the `mimeType`
    /// that `files.export` and `exportLinks` name it by
    /// (<https://developers.google.com/drive/api/guides/ref-export-formats>).
    pub fn media_type(self) -> &'static str {
        match self {
            ContentFormat::Pdf => "application/pdf",
            ContentFormat::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            ContentFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
            ContentFormat::Pptx => {
                "application/vnd.openxmlformats-officedocument.presentationml.presentation"
            }
            ContentFormat::Odt => "application/vnd.oasis.opendocument.text",
            ContentFormat::Ods => "application/vnd.oasis.opendocument.spreadsheet",
            ContentFormat::Odp => "application/vnd.oasis.opendocument.presentation",
            ContentFormat::Rtf => "application/rtf",
            ContentFormat::Txt => "text/plain",
            ContentFormat::Csv => "text/csv",
            ContentFormat::Tsv => "text/tab-separated-values",
            ContentFormat::Html => "text/html",
            ContentFormat::Md => "text/markdown",
            ContentFormat::Epub => "application/epub+zip",
            ContentFormat::Png => "image/png",
            ContentFormat::Jpeg => "image/jpeg",
            ContentFormat::Svg => "image/svg+xml",
        }
    }

    /// The format whose media type this is (Google's `exportFormats` and `exportLinks` keys).
    pub fn of_media_type(media_type: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|format| format.media_type() == media_type)
    }
}

impl std::fmt::Display for ContentFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_is_found_by_its_name_and_its_media_type() {
        for format in ContentFormat::ALL {
            assert_eq!(ContentFormat::named(format.name()), Some(format));
            assert_eq!(
                ContentFormat::of_media_type(format.media_type()),
                Some(format)
            );
            assert_eq!(
                serde_json::to_value(format).unwrap(),
                serde_json::json!(format.name())
            );
        }
        for unknown in ["", "PDF", "doc", "jpg", "markdown"] {
            assert_eq!(ContentFormat::named(unknown), None, "{unknown}");
        }
    }
}
