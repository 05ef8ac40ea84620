//! The providers' download hosts' answers to a link `downloads.rs` issued: the bytes, one
//! `Range`, or the refusal of an expired link.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::downloads::Host;
use crate::state::{lock, Shared};

/// `GET` of a link on `host`: the bytes, or the one range asked (206 with `Content-Range`,
/// 416 beyond the end, RFC 9110 section 14). No `Authorization` is read.
pub(crate) async fn serve(
    host: Host,
    State(shared): State<Shared>,
    Path(secret): Path<String>,
    headers: HeaderMap,
) -> Response {
    let state = lock(&shared);
    let Some(link) = state.downloads.link(host, &secret) else {
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
    if first >= size {
        return Some(None);
    }
    if last < first {
        return None;
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
