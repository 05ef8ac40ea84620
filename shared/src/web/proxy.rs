//! The proxy over HTTP (docs/API.md, "Proxy"): the request read into a
//! [`ProxyRequest`] (the path and query as they were written, the listed headers only, the
//! body as bytes up to the limit) and the provider's answer written back with only the
//! listed headers.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodFilter;
use percent_encoding::percent_decode_str;

use super::extract::read_capped;
use crate::error::HubError;
use crate::proxy::{
    Method, ProxyAnswer, ProxyRequest, FORWARDED_HEADERS, MAX_BODY_BYTES, RETURNED_HEADERS,
};

/// The route's path, as the router and the template write it.
pub const PROXY_ROUTE: &str = "/users/{id}/proxy/{*path}";

/// The methods the route takes: `GET|POST|PUT|PATCH|DELETE`.
pub fn proxy_methods() -> MethodFilter {
    MethodFilter::GET
        .or(MethodFilter::POST)
        .or(MethodFilter::PUT)
        .or(MethodFilter::PATCH)
        .or(MethodFilter::DELETE)
}

/// A proxy request read from HTTP.
pub struct Proxied(pub ProxyRequest);

impl<S: Send + Sync> FromRequest<S> for Proxied {
    type Rejection = HubError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let method = Method::named(parts.method.as_str()).ok_or(HubError::MethodNotAllowed)?;
        // The raw path, not the router's decoded parameter: the provider gets the path's
        // bytes as the app wrote them, and `check_path` sees every encoding of it.
        let (account_id, path) = split_path(parts.uri.path()).ok_or_else(|| {
            HubError::InvalidRequest("the path must be /users/{id}/proxy/{path}".into())
        })?;
        let headers = FORWARDED_HEADERS
            .iter()
            .flat_map(|name| {
                parts
                    .headers
                    .get_all(*name)
                    .iter()
                    .map(|value| (name.to_string(), value.as_bytes().to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let body = read_capped(&parts.headers, body, MAX_BODY_BYTES).await?;
        Ok(Proxied(ProxyRequest {
            account_id,
            method,
            path,
            query: parts.uri.query().map(str::to_string),
            headers,
            body,
        }))
    }
}

/// `/users/{id}/proxy/{path}` as (the decoded id, the path as written).
fn split_path(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/users/")?;
    let (id, rest) = rest.split_once('/')?;
    let path = rest.strip_prefix("proxy/")?;
    let id = percent_decode_str(id).decode_utf8().ok()?.into_owned();
    Some((id, path.to_string()))
}

/// The provider's status, the listed headers and the body's bytes as they came.
pub fn answer_response(answer: ProxyAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, Body::from(answer.body)).into_response();
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        if !RETURNED_HEADERS.contains(&name) {
            continue;
        }
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_kept_as_written_and_the_id_decoded() {
        assert_eq!(
            split_path("/users/acc%2D1/proxy/me/drive/root:/A%20B:/children"),
            Some(("acc-1".into(), "me/drive/root:/A%20B:/children".into()))
        );
        assert_eq!(
            split_path("/users/a/proxy//evil"),
            Some(("a".into(), "/evil".into()))
        );
        assert_eq!(split_path("/users/a/files/x"), None);
    }
}
