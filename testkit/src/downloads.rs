//! The providers' download hosts: where a pre-authenticated link points (Graph's
//! `downloadUrl`, Box's `dl.boxcloud.com` URL, Dropbox's temporary link). Such a link needs no
//! token (whoever holds it reads the bytes), honours one `Range`, and dies after a while:
//! the stand-ins issue each with the lifetime its provider documents, and
//! `Handle::expire_download_links` makes every issued one answer as an expired one does. What
//! bytes a file holds: those a test gave it (`Handle::set_file_bytes`), else bytes derived
//! from its id and version, as many as its size.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::state::{lock, Provider, Shared};

/// One provider's download host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Host {
    Graph,
    Box,
    Dropbox,
}

impl Host {
    /// The first segment of its links' paths at the stand-ins: outside every API's prefix,
    /// as the real hosts are other hosts than the APIs'.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Host::Graph => "graph-download",
            Host::Box => "box-download",
            Host::Dropbox => "dropbox-download",
        }
    }

    /// How long its links work.
    fn lifetime(self) -> Duration {
        match self {
            // "Pre-authenticated download URLs are only valid for a short period of time (a
            // few minutes)" (https://learn.microsoft.com/en-us/graph/api/driveitem-get-content).
            Host::Graph => Duration::from_secs(5 * 60),
            // "In most cases the download URL is valid for 15 minutes"
            // (https://developer.box.com/guides/downloads/get-url).
            Host::Box => Duration::from_secs(15 * 60),
            // "The temporary link is valid for 4 hours"
            // (https://www.dropbox.com/developers/documentation/http/documentation#files-get_temporary_link).
            Host::Dropbox => Duration::from_secs(4 * 60 * 60),
        }
    }

    /// What an expired link answers. None of the three documents the status; these are
    /// refusals a client must not read as bytes: Graph's download host answers 401 (its
    /// `tempauth` no longer valid), Box's and Dropbox's content hosts 403 and 410.
    fn expired(self) -> Response {
        match self {
            Host::Graph => (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {"code": "unauthenticated", "message": "tempauth token expired"}})),
            )
                .into_response(),
            Host::Box => (StatusCode::FORBIDDEN, "Download URL expired").into_response(),
            Host::Dropbox => (StatusCode::GONE, "This temporary link has expired.").into_response(),
        }
    }
}

/// One issued link.
struct Issued {
    host: Host,
    bytes: Vec<u8>,
    media_type: String,
    expires_at: Instant,
}

/// The bytes of files and the links issued to them.
#[derive(Default)]
pub(crate) struct Downloads {
    /// Bytes tests gave files, by (provider, the drive or user the file is kept under, id).
    contents: HashMap<(Provider, String, String), Vec<u8>>,
    /// Issued links by their secret.
    links: HashMap<String, Issued>,
}

impl Downloads {
    pub(crate) fn set_bytes(&mut self, provider: Provider, owner: &str, id: &str, bytes: Vec<u8>) {
        self.contents
            .insert((provider, owner.to_string(), id.to_string()), bytes);
    }

    /// The bytes a test gave the file, if any.
    pub(crate) fn given(&self, provider: Provider, owner: &str, id: &str) -> Option<&Vec<u8>> {
        self.contents
            .get(&(provider, owner.to_string(), id.to_string()))
    }

    /// The file's bytes: a test's, else `size` bytes derived from `version` (its id and
    /// version, so that the bytes change when the file does).
    pub(crate) fn bytes_of(
        &self,
        provider: Provider,
        owner: &str,
        id: &str,
        version: &str,
        size: u64,
    ) -> Vec<u8> {
        if let Some(bytes) = self.given(provider, owner, id) {
            return bytes.clone();
        }
        let seed = Sha256::digest(version.as_bytes());
        (0..size as usize)
            .map(|i| seed[i % seed.len()] ^ (i as u8))
            .collect()
    }

    /// A new link on `host` serving `bytes` as `media_type`, and its URL.
    pub(crate) fn issue(
        &mut self,
        base_url: &str,
        host: Host,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> String {
        // Random, as the real hosts' are: the URL is the only credential.
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        self.links.insert(
            secret.clone(),
            Issued {
                host,
                bytes,
                media_type: media_type.to_string(),
                expires_at: Instant::now() + host.lifetime(),
            },
        );
        format!("{base_url}/{}/{secret}", host.prefix())
    }

    /// Every link issued so far answers as an expired one.
    pub(crate) fn expire_all(&mut self) {
        let past = Instant::now();
        self.links
            .values_mut()
            .for_each(|link| link.expires_at = past);
    }
}

/// `GET` of a link on `host`: the bytes, or the one range asked (206 with `Content-Range`,
/// 416 beyond the end, RFC 9110 section 14). No `Authorization` is read.
pub(crate) async fn serve(
    host: Host,
    State(shared): State<Shared>,
    Path(secret): Path<String>,
    headers: HeaderMap,
) -> Response {
    let state = lock(&shared);
    let Some(link) = state
        .downloads
        .links
        .get(&secret)
        .filter(|l| l.host == host)
    else {
        return (StatusCode::NOT_FOUND, "Not found").into_response();
    };
    if link.expires_at <= Instant::now() {
        return host.expired();
    }
    let size = link.bytes.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| one_range(v, size));
    let content_type = [(header::CONTENT_TYPE, link.media_type.clone())];
    match range {
        None => (
            StatusCode::OK,
            content_type,
            [(header::ACCEPT_RANGES, "bytes".to_string())],
            link.bytes.clone(),
        )
            .into_response(),
        Some(None) => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{size}"))],
        )
            .into_response(),
        Some(Some((first, last))) => (
            StatusCode::PARTIAL_CONTENT,
            content_type,
            [(
                header::CONTENT_RANGE,
                format!("bytes {first}-{last}/{size}"),
            )],
            link.bytes[first as usize..=last as usize].to_vec(),
        )
            .into_response(),
    }
}

/// A `Range` of one range: `None` to ignore it (the whole is sent), `Some(None)` when none
/// of its bytes exist, else the first and last byte.
fn one_range(header: &str, size: u64) -> Option<Option<(u64, u64)>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            if n == 0 || size == 0 {
                return Some(None);
            }
            (size.saturating_sub(n), size - 1)
        }
        (first, "") => (first.parse().ok()?, size.saturating_sub(1)),
        (first, last) => (first.parse().ok()?, last.parse::<u64>().ok()?),
    };
    if last < first {
        return None;
    }
    if first >= size {
        return Some(None);
    }
    Some(Some((first, last.min(size - 1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_writes_them() {
        assert_eq!(one_range("bytes=0-9", 100), Some(Some((0, 9))));
        assert_eq!(one_range("bytes=90-", 100), Some(Some((90, 99))));
        assert_eq!(one_range("bytes=-10", 100), Some(Some((90, 99))));
        assert_eq!(one_range("bytes=95-200", 100), Some(Some((95, 99))));
        assert_eq!(one_range("bytes=100-", 100), Some(None));
        assert_eq!(one_range("bytes=0-1,4-5", 100), None);
        assert_eq!(one_range("bytes=5-1", 100), None);
    }
}
