//! The providers' download hosts: where a pre-authenticated link points (Graph's
//! `downloadUrl`, Box's `dl.boxcloud.com` URL, Dropbox's temporary link). Such a link needs no
//! token (whoever holds it reads the bytes), honours one `Range`, and dies after a while:
//! the stand-ins issue each with the lifetime its provider documents, and
//! `Handle::expire_download_links` makes every issued one answer as an expired one does. What
//! bytes a file holds: those a test gave it (`Handle::set_file_bytes`), else bytes derived
//! from its id and version, as many as its size. The hosts' answers: `download_host.rs`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use sha2::{Digest, Sha256};

/// One provider's download host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    pub(crate) fn expired(self) -> Response {
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
pub(crate) struct Issued {
    pub host: Host,
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub expires_at: Instant,
}

/// The bytes of files and the links issued to them.
#[derive(Default)]
pub(crate) struct Downloads {
    /// Bytes tests gave files, by (their provider's host, the drive or user the file is kept
    /// under, id).
    contents: HashMap<(Host, String, String), Vec<u8>>,
    /// Issued links by their secret.
    links: HashMap<String, Issued>,
}

impl Downloads {
    pub(crate) fn set_bytes(&mut self, host: Host, owner: &str, id: &str, bytes: Vec<u8>) {
        self.contents
            .insert((host, owner.to_string(), id.to_string()), bytes);
    }

    /// The live link of this secret on `host`, if any.
    pub(crate) fn link(&self, host: Host, secret: &str) -> Option<&Issued> {
        self.links.get(secret).filter(|link| link.host == host)
    }

    /// The bytes a test gave the file, if any: what a provider's search reads as content
    /// (made-up bytes hold no words).
    pub(crate) fn stored(&self, host: Host, owner: &str, id: &str) -> Option<&[u8]> {
        self.contents
            .get(&(host, owner.to_string(), id.to_string()))
            .map(Vec::as_slice)
    }

    /// The file's bytes: a test's, else `size` bytes derived from `version` (its id and
    /// version, so that the bytes change when the file does).
    pub(crate) fn bytes_of(
        &self,
        host: Host,
        owner: &str,
        id: &str,
        version: &str,
        size: u64,
    ) -> Vec<u8> {
        if let Some(bytes) = self
            .contents
            .get(&(host, owner.to_string(), id.to_string()))
        {
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

/// Deterministic bytes standing in for a conversion of `source` to `format`: a test can
/// compute them (`hub_testkit::converted_bytes`) and tell them from the source's.
pub fn converted(format: &str, source: &[u8]) -> Vec<u8> {
    let digest = hex::encode(Sha256::digest(source));
    match format {
        "pdf" => format!("%PDF-1.7\n% converted from {digest}\n%%EOF\n").into_bytes(),
        "html" => {
            format!("<!DOCTYPE html><html><body><p>{digest}</p></body></html>\n").into_bytes()
        }
        "md" => format!("# converted\n\n{digest}\n").into_bytes(),
        other => format!("{other}:{digest}").into_bytes(),
    }
}
