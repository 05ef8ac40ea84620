//! A file's bytes (docs/API.md, "File content"). The app never holds a token: it asks
//! `GET /users/{id}/files/{file_id}/content` ([`locate`]) and gets a short-lived URL that
//! serves the bytes to whoever holds it. Where the provider has a pre-authenticated link
//! (Graph, Dropbox, Box) it is that link, and no byte passes through the hub. Where it has
//! none (Drive's `alt=media` and exports, Dropbox Paper exports), it is a link of the hub's
//! content function, which streams the provider's answer as it comes ([`open`], gathered
//! and paced by [`delivery`]).
//!
//! A hub link is a random token of 256 bits; only its SHA-256 is stored, with the account,
//! the file, the format and an expiry ([`ContentLink`]). It is checked on every request
//! against the store (so it dies with its account) and the clock.

mod delivery;

use chrono::{DateTime, Duration, Utc};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::deadline::Deadline;
use crate::error::{HubError, HubResult, ProviderError};
use crate::hub::Hub;
use crate::model::{Account, ContentFormat, ContentLink, ContentSource, FileKind, StreamSource};
use std::sync::Arc;

use crate::providers::content::{ByteRange, ContentRefusal, ContentStream};
use crate::providers::Connector;
use crate::sync::Credentials;

/// How long a hub link serves its bytes (at most 15 minutes, docs/API.md "File content").
pub const LINK_LIFETIME_MINUTES: i64 = 15;

/// Where an app reads a file's bytes: the answer of the content route.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ContentLocation {
    /// The URL: the provider's own link, or the hub's.
    pub url: String,
    /// When it stops working, where known (the hub's links always; a provider's where it
    /// says).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether the bytes come through the hub's content function.
    pub streamed_by_hub: bool,
    /// The file's size, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The most bytes one answer of the hub's link carries (a Lambda function URL's limit on
    /// a streamed answer): a larger file is read with `Range` requests of at most this many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes_per_request: Option<u64>,
}

/// Finds where the bytes of an indexed file are, in `format` or its own, refreshing the
/// account's token first when it is due (or refused once).
pub async fn locate(
    hub: &Hub,
    account_id: &str,
    file_id: &str,
    format: Option<&str>,
    deadline: Deadline,
) -> HubResult<ContentLocation> {
    let format = format.map(parse_format).transpose()?;
    let account = hub
        .store
        .get_account(account_id)
        .await?
        .ok_or_else(|| HubError::AccountNotFound(account_id.to_string()))?;
    let file = hub
        .store
        .get_file(account_id, file_id)
        .await?
        .filter(|file| !file.deleted)
        .ok_or_else(|| HubError::FileNotFound(file_id.to_string()))?;
    match file.kind {
        Some(FileKind::Folder) => {
            return Err(HubError::NotDownloadable("a folder has no bytes".into()))
        }
        Some(FileKind::Shortcut) => {
            return Err(HubError::NotDownloadable(
                "a shortcut has no bytes; ask for its target_id".into(),
            ))
        }
        _ => {}
    }
    check_content_scopes(hub, &account)?;
    let mut credentials = Credentials::open(hub, account, deadline).await?;
    let connector = credentials.connector().clone();
    let source = credentials
        .call(|token| {
            let (connector, file) = (connector.clone(), &file);
            async move { within(deadline, connector.content(&token, file, format)).await }
        })
        .await?
        .map_err(|refusal| scope_withdrawn(&connector, refusal))?;
    match source {
        ContentSource::Link { url, expires_at } => Ok(ContentLocation {
            url,
            expires_at,
            streamed_by_hub: false,
            size: file.size,
            max_bytes_per_request: None,
        }),
        ContentSource::Streamed(source) => {
            let token = new_token();
            let expires_at = Utc::now() + Duration::minutes(LINK_LIFETIME_MINUTES);
            let link = ContentLink {
                id: link_id(&token),
                account_id: account_id.to_string(),
                source,
                expires_at,
            };
            hub.store.put_content_link(&link).await?;
            let limit = hub.config.content_answer_limit;
            Ok(ContentLocation {
                url: format!("{}/content/{token}", hub.config.content_url),
                expires_at: Some(expires_at),
                streamed_by_hub: true,
                size: link.source.size,
                max_bytes_per_request: limit.filter(|limit| {
                    link.source.size.is_none_or(|size| size > *limit)
                        || link.source.format.is_some()
                }),
            })
        }
    }
}

/// The format named by `format=`, or 400 `unsupported_format` naming the formats there are.
fn parse_format(name: &str) -> HubResult<ContentFormat> {
    ContentFormat::named(name).ok_or_else(|| {
        let known: Vec<&str> = ContentFormat::ALL.iter().map(|f| f.name()).collect();
        HubError::UnsupportedFormat(format!(
            "format must be one of {} (got '{}')",
            known.join(", "),
            name.chars().take(40).collect::<String>()
        ))
    })
}

/// An account connected before the hub asked for the read scopes keeps its index, but
/// gives no bytes until it is connected again.
fn check_content_scopes(hub: &Hub, account: &Account) -> HubResult<()> {
    let connector = hub.providers.get(&account.provider)?;
    let missing = connector.oauth().missing_content_scopes(&account.scopes);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(HubError::GrantLacksScopes { missing })
    }
}

/// A connector's call held to the request's deadline, given up as a provider that did not
/// answer in time.
async fn within<T>(
    deadline: Deadline,
    call: impl std::future::Future<Output = Result<T, ContentRefusal>>,
) -> Result<T, ContentRefusal> {
    let budget = deadline.remaining();
    match deadline.within(call).await {
        crate::deadline::Bounded::Answered(answer) => answer,
        crate::deadline::Bounded::OutOfTime => Err(ProviderError::TimedOut { budget }.into()),
    }
}

/// A download refused because the grant no longer holds what reading bytes needs (Graph
/// `accessDenied`, Box `insufficient_scope`, Dropbox `missing_scope`: a scope withdrawn at
/// the provider) is the same answer as for a grant that never held it: connect it again.
fn scope_withdrawn(connector: &Arc<dyn Connector>, refusal: ContentRefusal) -> HubError {
    match refusal {
        ContentRefusal::Provider(ProviderError::AccessLost(why)) => {
            tracing::info!(reason = %why, "the provider refused the download: access lost");
            HubError::GrantLacksScopes {
                missing: connector.oauth().content_scopes().to_vec(),
            }
        }
        other => other.into(),
    }
}

/// 256 random bits, base64url: the link's secret, only ever in its URL.
fn new_token() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What a link is stored under: the hash of its token, so that the store never holds a
/// working link.
fn link_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What a request to a hub link asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// `HEAD`: the headers only.
    Headers,
    /// `GET`, whole or one range.
    Bytes(Option<RangeAsked>),
}

/// A `Range` header's one range before it is checked against the file's size
/// (RFC 9110 section 14.1.2): `first-last`, `first-`, or the last `n` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeAsked {
    From { first: u64, last: Option<u64> },
    Suffix(u64),
}

impl RangeAsked {
    /// Reads a `Range` header. `None` for a header the hub ignores, as RFC 9110 lets a
    /// server do: another unit, several ranges, or a malformed one (the whole file is sent).
    pub fn parse(header: &str) -> Option<Self> {
        let spec = header.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (first, last) = spec.split_once('-')?;
        let number = |text: &str| -> Option<u64> {
            (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse().ok())
                .flatten()
        };
        if first.is_empty() {
            return number(last).map(RangeAsked::Suffix);
        }
        let first = number(first)?;
        let last = match last {
            "" => None,
            last => Some(number(last)?),
        };
        if last.is_some_and(|last| last < first) {
            return None;
        }
        Some(RangeAsked::From { first, last })
    }

    /// The bytes it names of a file of `size` bytes; `None` when none of them exist
    /// (416).
    pub fn within(self, size: u64) -> Option<ByteRange> {
        if size == 0 {
            return None;
        }
        match self {
            RangeAsked::From { first, last } if first < size => Some(ByteRange {
                first,
                last: last.unwrap_or(u64::MAX).min(size - 1),
            }),
            RangeAsked::From { .. } => None,
            RangeAsked::Suffix(0) => None,
            RangeAsked::Suffix(n) => Some(ByteRange {
                first: size.saturating_sub(n),
                last: size - 1,
            }),
        }
    }
}

/// What a hub link answers.
pub struct Served {
    pub source: StreamSource,
    pub shape: Shape,
    /// The bytes, for a `GET` that has any.
    pub body: Option<ContentStream>,
}

/// The answer's status and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The whole file (200), of this length when known.
    Whole { length: Option<u64> },
    /// One range of a file of `size` bytes (206).
    Part { range: ByteRange, size: u64 },
    /// The range asked is beyond the file (416), of `size` bytes.
    Unsatisfiable { size: u64 },
}

/// Serves a request to the hub link of `token`: checks the link (known, not expired, its
/// account still there), then opens the bytes at the provider, refreshing the token as a
/// sync does. A `HEAD` is answered from what the link holds, without the provider.
pub async fn open(hub: &Hub, token: &str, want: Want, deadline: Deadline) -> HubResult<Served> {
    let link = hub
        .store
        .get_content_link(&link_id(token))
        .await?
        .filter(|link| link.expires_at > Utc::now())
        .ok_or(HubError::ContentLinkInvalid)?;
    let account = hub
        .store
        .get_account(&link.account_id)
        .await?
        .ok_or(HubError::ContentLinkInvalid)?;
    let source = link.source;
    let range = match want {
        Want::Bytes(Some(asked)) if source.rangeable() => Some(asked),
        _ => None,
    };
    let limit = hub.config.content_answer_limit;
    let shape = match (range, source.size) {
        (Some(asked), Some(size)) => match asked.within(size) {
            Some(range) => Shape::Part { range, size },
            None => Shape::Unsatisfiable { size },
        },
        _ => Shape::Whole {
            length: source.size.filter(|_| source.format.is_none()),
        },
    };
    if let Some(limit) = limit {
        let carried = match shape {
            Shape::Whole { length } => length,
            Shape::Part { range, .. } => Some(range.len()),
            Shape::Unsatisfiable { .. } => None,
        };
        if carried.is_some_and(|carried| carried > limit) {
            return Err(HubError::InvalidRequest(format!(
                "one answer carries at most {limit} bytes: ask for this file in ranges \
                 (Range: bytes=first-last)"
            )));
        }
    }
    if want == Want::Headers || matches!(shape, Shape::Unsatisfiable { .. }) {
        return Ok(Served {
            source,
            shape,
            body: None,
        });
    }
    let mut credentials = Credentials::open(hub, account, deadline).await?;
    let connector = credentials.connector().clone();
    let part = match shape {
        Shape::Part { range, .. } => Some(range),
        _ => None,
    };
    let body = credentials
        .call(|token| {
            let (connector, source) = (connector.clone(), &source);
            async move { within(deadline, connector.open_content(&token, source, part)).await }
        })
        .await?
        .map_err(|refusal| scope_withdrawn(&connector, refusal))?;
    Ok(Served {
        source,
        shape,
        body: Some(delivery::delivered(body, deadline)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_writes_them() {
        let size = 1000;
        let cases = [
            ("bytes=0-99", Some((0, 99))),
            ("bytes=900-", Some((900, 999))),
            ("bytes=-100", Some((900, 999))),
            ("bytes=-5000", Some((0, 999))),
            ("bytes=990-5000", Some((990, 999))),
            (" bytes=5-5 ", Some((5, 5))),
        ];
        for (header, expected) in cases {
            let range = RangeAsked::parse(header).and_then(|asked| asked.within(size));
            assert_eq!(range.map(|r| (r.first, r.last)), expected, "{header}");
        }
        for ignored in [
            "bytes=0-1,5-6",
            "items=0-5",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=-",
            "",
        ] {
            assert_eq!(RangeAsked::parse(ignored), None, "{ignored}");
        }
        for unsatisfiable in ["bytes=1000-", "bytes=-0", "bytes=5000-6000"] {
            let asked = RangeAsked::parse(unsatisfiable).unwrap();
            assert_eq!(asked.within(size), None, "{unsatisfiable}");
        }
        assert_eq!(RangeAsked::parse("bytes=0-").unwrap().within(0), None);
    }

    #[test]
    fn a_link_is_stored_under_a_hash_that_does_not_reveal_it() {
        let token = new_token();
        assert_eq!(token.len(), 43);
        assert_ne!(new_token(), token);
        let id = link_id(&token);
        assert_eq!(id.len(), 64);
        assert!(!id.contains(&token));
        assert_eq!(link_id(&token), id);
    }
}
