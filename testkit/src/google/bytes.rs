//! What the Drive stand-in serves as files' bytes: bytes a test set, or bytes made up on the
//! fly from their offset (so that a file of a gigabyte is served without being held), and
//! the files Drive refuses to give: flagged as abusive, or kept from download by their
//! owner (`capabilities.canDownload` false).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// How long each piece of a made-up body is.
const CHUNK: u64 = 64 << 10;

/// A file's (or an export's) bytes.
#[derive(Clone, Debug)]
pub enum Body {
    Stored(Arc<[u8]>),
    /// `size` bytes, byte `i` being [`pattern_byte`]`(i)`: never held whole.
    Pattern {
        size: u64,
    },
}

/// Byte `i` of a [`Body::Pattern`]: 251 is prime, so the pattern does not line up with any
/// power-of-two chunk or range a client asks for, and a misplaced slice shows.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Stored(bytes) => bytes.len() as u64,
            Body::Pattern { size } => *size,
        }
    }

    /// The bytes as text, for a search of their content: stored UTF-8 only (made-up bytes
    /// hold no words).
    pub fn text(&self) -> Option<String> {
        match self {
            Body::Stored(bytes) => std::str::from_utf8(bytes).ok().map(str::to_string),
            Body::Pattern { .. } => None,
        }
    }

    /// The bytes `first..=last`, in pieces of at most [`CHUNK`], made as they are read.
    pub fn pieces(
        &self,
        first: u64,
        last: u64,
    ) -> impl futures::Stream<Item = Result<axum::body::Bytes, std::convert::Infallible>> {
        let body = self.clone();
        let end = (last + 1).min(body.len());
        futures::stream::iter((first..end).step_by(CHUNK as usize).map(move |start| {
            let stop = (start + CHUNK).min(end);
            Ok(match &body {
                Body::Stored(bytes) => {
                    axum::body::Bytes::copy_from_slice(&bytes[start as usize..stop as usize])
                }
                Body::Pattern { .. } => (start..stop).map(pattern_byte).collect::<Vec<u8>>().into(),
            })
        }))
    }
}

/// What the Drive stand-in knows of files' bytes beyond their [`crate::state::FileSpec`].
#[derive(Default)]
pub struct GoogleBytes {
    /// A file's own bytes, by file id; a file without is served [`Body::Pattern`] of its
    /// spec's size.
    pub content: HashMap<String, Body>,
    /// A native file's exports, by file id, the same whatever the format; a file without is
    /// exported as [`default_export`].
    pub exports: HashMap<String, Body>,
    /// Files Drive flagged as malware or abuse (`cannotDownloadAbusiveFile`).
    pub abusive: HashSet<String>,
    /// Files whose owner turned off download for readers (`capabilities.canDownload` false).
    pub download_disabled: HashSet<String>,
}

impl GoogleBytes {
    /// The bytes of the non-native file `id` whose spec says `size`.
    pub fn content_of(&self, id: &str, size: Option<u64>) -> Body {
        self.content.get(id).cloned().unwrap_or(Body::Pattern {
            size: size.unwrap_or(0),
        })
    }

    /// What exporting the native file `id` as `mime_type` gives.
    pub fn export_of(&self, id: &str, mime_type: &str) -> Body {
        self.exports
            .get(id)
            .cloned()
            .unwrap_or_else(|| Body::Stored(default_export(id, mime_type).into()))
    }
}

/// What the stand-in "converts" a native file to when a test set nothing: a line naming the
/// file and the format, so that a test sees which export it got.
pub fn default_export(id: &str, mime_type: &str) -> Vec<u8> {
    format!("file {id} exported as {mime_type}\n").into_bytes()
}
