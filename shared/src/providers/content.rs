//! What a connector answers when asked for a file's bytes (docs/API.md, "File content"):
//! the refusals it can give, the one range it is asked for, and the stream of bytes it
//! opens for the hub to pass on.

use std::pin::Pin;

use futures::Stream;

use crate::error::{HubError, ProviderError};
use crate::model::ContentFormat;

/// Why a connector gives no bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentRefusal {
    /// The provider failed or refused the call (a 401 first refreshes and asks again).
    Provider(ProviderError),
    /// A file the provider gives no bytes of: a folder, a form, a file its owner keeps from
    /// being downloaded, one flagged as abusive.
    NotDownloadable(String),
    /// A file with no bytes of its own (a Google Doc): these formats export it.
    ExportRequired(Vec<ContentFormat>),
    /// A format this file cannot be given in; the sentence says which it can.
    UnsupportedFormat(String),
    /// The provider no longer has the file of this id (deleted since the index last heard
    /// of it): 404 `file_not_found`, as for a file the index holds as deleted.
    FileGone(String),
}

impl From<ProviderError> for ContentRefusal {
    fn from(error: ProviderError) -> Self {
        ContentRefusal::Provider(error)
    }
}

impl From<ContentRefusal> for HubError {
    fn from(refusal: ContentRefusal) -> Self {
        match refusal {
            ContentRefusal::Provider(error) => HubError::Provider(error),
            ContentRefusal::NotDownloadable(why) => HubError::NotDownloadable(why),
            ContentRefusal::ExportRequired(formats) => HubError::ExportRequired {
                formats: formats.iter().map(|f| f.name().to_string()).collect(),
            },
            ContentRefusal::UnsupportedFormat(why) => HubError::UnsupportedFormat(why),
            ContentRefusal::FileGone(file_id) => HubError::FileNotFound(file_id),
        }
    }
}

/// One byte range of a file, as `Range: bytes=` asks it (RFC 9110 section 14.1.2), already
/// checked against the file's size: `first..=last`, both within the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Range` header asking for it.
    pub fn header(&self) -> String {
        format!("bytes={}-{}", self.first, self.last)
    }

    /// The `Content-Range` header of an answer carrying it.
    pub fn content_range(&self, size: u64) -> String {
        format!("bytes {}-{}/{}", self.first, self.last, size)
    }
}

/// A provider's bytes, read as they come: never held whole, so the memory a download takes
/// does not grow with the file.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send>>;

/// The bytes a connector opened.
pub struct ContentStream {
    /// Their length, when the provider said it.
    pub length: Option<u64>,
    pub body: ByteStream,
}

impl ContentStream {
    /// The body of a provider's answer, streamed.
    pub fn of(response: reqwest::Response) -> Self {
        use futures::TryStreamExt as _;
        ContentStream {
            length: response.content_length(),
            body: Box::pin(response.bytes_stream().map_err(std::io::Error::other)),
        }
    }
}

/// The pre-authenticated link a `/content` call redirected to (Graph's and Box's answer a
/// 302 whose `Location` is the download URL): an absolute `https` URL, or `http` on a
/// loopback host (the stand-ins). A 404 is `gone`: what the provider's not finding the
/// file means for it.
pub fn redirect_link(
    response: &reqwest::Response,
    provider: &str,
    gone: &str,
) -> Result<String, ContentRefusal> {
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(ContentRefusal::NotDownloadable(format!(
            "{provider} does not find this file: {gone}"
        )));
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .filter(|_| response.status().is_redirection());
    let Some(location) = location else {
        return Err(ContentRefusal::Provider(ProviderError::Rejected(format!(
            "{provider} answered HTTP {} without a download link",
            response.status().as_u16()
        ))));
    };
    match url::Url::parse(location) {
        Ok(url) if url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)) => {
            Ok(url.to_string())
        }
        _ => Err(ContentRefusal::Provider(ProviderError::Rejected(format!(
            "{provider} redirected to a download link that is not an https URL"
        )))),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}
