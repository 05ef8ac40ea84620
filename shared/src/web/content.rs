//! File content over HTTP (docs/API.md, "File content"): the content route's 302, and the
//! answers of the hub's own content links, streamed.

use axum::body::Body;
use axum::extract::{FromRequestParts, Path};
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    LOCATION, RANGE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::QueryParams;
use crate::content::{ContentLocation, RangeAsked, Served, Shape, Want};
use crate::error::HubError;

/// The path of `GET /users/{id}/files/{file_id}/content`.
pub struct FilePath {
    pub account_id: String,
    pub file_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for FilePath {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map(|Path((account_id, file_id))| FilePath {
                account_id,
                file_id,
            })
            .map_err(|e| HubError::InvalidRequest(format!("bad path parameter: {e}")))
    }
}

/// The content route's query: `format` alone; any other parameter is a mistake the caller
/// should hear of.
pub struct ContentQuery {
    pub format: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ContentQuery {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let mut query = QueryParams::from_request_parts(parts, state).await?;
        let format = query.take("format");
        if let Some(unknown) = query.0.keys().next() {
            return Err(HubError::InvalidRequest(format!(
                "unknown parameter '{}': the content route takes format only",
                unknown.chars().take(40).collect::<String>()
            )));
        }
        Ok(ContentQuery { format })
    }
}

/// 302 to the bytes, the same in the body as JSON for a client that does not follow
/// redirects. Never cached: the URL expires.
pub fn redirect_response(location: ContentLocation) -> Response {
    let Ok(target) = HeaderValue::from_str(&location.url) else {
        return HubError::internal("a content URL is not a valid header value").into_response();
    };
    let mut response = (StatusCode::FOUND, Json(location)).into_response();
    let headers = response.headers_mut();
    headers.insert(LOCATION, target);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    response
}

/// What a request to a content link asks for: its method and `Range`.
pub fn want_of(method: &Method, headers: &HeaderMap) -> Result<Want, HubError> {
    match *method {
        Method::HEAD => Ok(Want::Headers),
        Method::GET => Ok(Want::Bytes(
            headers
                .get(RANGE)
                .and_then(|value| value.to_str().ok())
                .and_then(RangeAsked::parse),
        )),
        _ => Err(HubError::MethodNotAllowed),
    }
}

/// The characters RFC 8187's `attr-char` leaves as they are; every other byte of the name's
/// UTF-8 is percent-encoded in `filename*`.
const ATTR_CHAR_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment` with the name (RFC 6266): `filename*` in UTF-8 for every client that reads
/// it, and a plain `filename` of the name's printable ASCII for the others.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, ATTR_CHAR_ESCAPED)
    )
}

/// A content link's answer: the status and headers its shape says, and the provider's
/// bytes streamed through as they come (no body for `HEAD`, nor for a 416).
pub fn served_response(served: Served) -> Response {
    let Served {
        source,
        shape,
        body,
    } = served;
    let (status, length) = match shape {
        Shape::Whole { length } => (StatusCode::OK, length),
        Shape::Part { range, .. } => (StatusCode::PARTIAL_CONTENT, Some(range.len())),
        Shape::Unsatisfiable { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, Some(0)),
    };
    let body = match body {
        Some(stream) => Body::from_stream(stream.body),
        None => Body::empty(),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if source.rangeable() {
        headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    let mut set = |name, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set(CONTENT_TYPE, source.media_type.clone());
    set(CONTENT_DISPOSITION, content_disposition(&source.name));
    if let Some(length) = length {
        set(CONTENT_LENGTH, length.to_string());
    }
    match shape {
        Shape::Part { range, size } => set(CONTENT_RANGE, range.content_range(size)),
        Shape::Unsatisfiable { size } => set(CONTENT_RANGE, format!("bytes */{size}")),
        Shape::Whole { .. } => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_goes_in_filename_star_as_rfc_6266_says() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        assert_eq!(
            content_disposition("Année \"2026\" €.txt"),
            "attachment; filename=\"Ann_e _2026_ _.txt\"; \
             filename*=UTF-8''Ann%C3%A9e%20%222026%22%20%E2%82%AC.txt"
        );
        // A name cannot end the header early nor add one.
        let header = content_disposition("a\r\nSet-Cookie: x=1;.txt");
        assert!(HeaderValue::from_str(&header).is_ok());
        assert!(!header.contains('\r') && !header.contains('\n'), "{header}");
    }
}
