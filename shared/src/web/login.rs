//! The login's HTTP side: the 302 to the consent page with the cookie that binds the login to
//! its browser (docs/API.md, "Logins"; RFC 9700 §4.7), and the provider's redirect to
//! `/auth/{provider}/callback` read as the domain's [`Callback`], with that cookie.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::connect::url_part;
use super::QueryParams;
use crate::connect::SESSION_LIFETIME_MINUTES;
use crate::error::HubError;
use crate::login::{Callback, Started, STATE_LIFETIME_MINUTES};
use crate::return_urls::ReturnAllowlist;

/// The login cookie's name for `state`. One name per state, not one fixed name: a user who
/// starts two logins in two tabs of one browser (two providers, or a retry) would otherwise
/// have the second overwrite the first's cookie, and the first tab's callback would fail.
/// Each cookie expires with its state, so they do not pile up.
pub fn login_cookie_name(state: &str) -> String {
    format!("{LOGIN_COOKIE_PREFIX}{state}")
}

const LOGIN_COOKIE_PREFIX: &str = "hub_login_";

/// The cookie that remembers, for the length of a connect session, where its app wants the
/// browser back. The callback of a state it cannot match (a consent page reached again with
/// the back button, after the login finished) names no session, so it answers the
/// `invalid_state` page (docs/API.md, "Logins"); this cookie lets that page link back to the
/// app rather than leave the person stranded at the hub. Only a URL the allowlist still
/// accepts is ever shown: the cookie is the browser's and is read as untrusted.
const RETURN_COOKIE: &str = "hub_return";

/// Whether `state` can name a cookie: our states are base64url, and anything else (the query
/// is the caller's) is never looked up nor echoed into a `Set-Cookie`, where a `;` could add
/// attributes.
fn cookie_safe(state: &str) -> bool {
    !state.is_empty()
        && state.len() <= 64
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The cookie's path: `/auth/` under `HUB_PUBLIC_URL`'s own path (empty for the usual
/// `https://host`), since the callback is reached there and a cookie of another path would
/// never be sent to it.
fn cookie_path(public_url: &str) -> String {
    let base = Url::parse(public_url)
        .map(|url| url.path().trim_end_matches('/').to_string())
        .unwrap_or_default();
    format!("{base}/auth/")
}

/// The cookie's attributes: not readable by scripts, sent on the provider's top-level
/// redirect back (`Lax`) but not on cross-site subrequests, only to the login routes, and
/// only over TLS when the hub is served over it.
fn cookie_attributes(public_url: &str, max_age: i64) -> String {
    let secure = if public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "Max-Age={max_age}; Path={}; HttpOnly; SameSite=Lax{secure}",
        cookie_path(public_url)
    )
}

/// The answer to `GET /auth/{provider}/login`: 302 to the consent page, setting the cookie
/// that holds the login's browser key for as long as its state lives.
pub fn login_response(started: &Started, public_url: &str) -> Response {
    let cookie = format!(
        "{}={}; {}",
        login_cookie_name(&started.state),
        started.browser_key.expose_secret(),
        cookie_attributes(public_url, STATE_LIFETIME_MINUTES * 60)
    );
    let mut response = match (
        HeaderValue::from_str(&started.consent_url),
        HeaderValue::from_str(&cookie),
    ) {
        (Ok(location), Ok(cookie)) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (header::SET_COOKIE, cookie),
            ],
        )
            .into_response(),
        // Both are built from URLs the config checked and base64url values.
        _ => {
            return HubError::internal("the login's headers are not valid header values")
                .into_response()
        }
    };
    // Percent-encoded: a cookie value holds no `;`, `,`, space or quote. A login without a
    // session forgets an earlier session's app: its pages offer to try again, not a way
    // back to an app that did not send the person.
    let remembered = match &started.return_to {
        Some(return_to) => format!(
            "{RETURN_COOKIE}={}; {}",
            url_part(return_to),
            cookie_attributes(public_url, SESSION_LIFETIME_MINUTES * 60)
        ),
        None => format!("{RETURN_COOKIE}=; {}", cookie_attributes(public_url, 0)),
    };
    if let Ok(cookie) = HeaderValue::from_str(&remembered) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The app's return address the browser remembers from its latest connect session (see
/// [`RETURN_COOKIE`]), when the allowlist still accepts it.
pub fn remembered_return(headers: &HeaderMap, allowlist: &ReturnAllowlist) -> Option<String> {
    let raw = cookie(headers, RETURN_COOKIE)?;
    let decoded = percent_encoding::percent_decode_str(&raw)
        .decode_utf8()
        .ok()?
        .into_owned();
    allowlist.allows(&decoded).then_some(decoded)
}

/// Adds to a callback's answer the removal of the login cookie its state names (a state
/// that could name one): the state is spent whatever the outcome.
pub fn clear_login_cookie(
    mut response: Response,
    state: Option<&str>,
    public_url: &str,
) -> Response {
    if let Some(state) = state.filter(|state| cookie_safe(state)) {
        let cookie = format!(
            "{}=; {}",
            login_cookie_name(state),
            cookie_attributes(public_url, 0)
        );
        if let Ok(cookie) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// The value of the cookie `name` among the request's `Cookie` headers (RFC 6265 §5.4: one
/// header of `name=value` pairs joined by `; `, possibly several headers over HTTP/2).
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_string())
        .filter(|value| !value.is_empty())
}

/// `code`, `state` and `error` of the callback's query (RFC 6749 §4.1.2 and §4.1.2.1; an
/// empty value counts as absent), and the browser key of the state's login cookie.
pub struct CallbackParams(pub Callback);

impl<S: Send + Sync> FromRequestParts<S> for CallbackParams {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let mut query = QueryParams::from_request_parts(parts, state).await?;
        let login_state = query.take("state");
        let browser_key = login_state
            .as_deref()
            .filter(|login_state| cookie_safe(login_state))
            .and_then(|login_state| cookie(&parts.headers, &login_cookie_name(login_state)))
            .map(SecretString::from);
        Ok(CallbackParams(Callback {
            code: query.take("code"),
            state: login_state,
            error: query.take("error"),
            browser_key,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_path_follows_the_public_url() {
        assert_eq!(cookie_path("https://hub.example"), "/auth/");
        assert_eq!(cookie_path("https://hub.example/"), "/auth/");
        assert_eq!(cookie_path("https://hub.example/prod"), "/prod/auth/");
        assert!(cookie_attributes("https://hub.example", 600).ends_with("; Secure"));
        assert!(!cookie_attributes("http://127.0.0.1:9000", 600).contains("Secure"));
    }

    #[test]
    fn the_remembered_return_is_shown_only_when_allowed() {
        let allowlist = ReturnAllowlist::parse(Some("https://app.example/return")).unwrap();
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::COOKIE,
                HeaderValue::from_str(&format!("{RETURN_COOKIE}={value}")).unwrap(),
            );
            remembered_return(&headers, &allowlist)
        };
        let remembered = url_part("https://app.example/return/x?tab=1");
        assert_eq!(
            with(&remembered).as_deref(),
            Some("https://app.example/return/x?tab=1")
        );
        assert_eq!(with(&url_part("https://evil.example/return")), None);
        assert_eq!(with("%FF"), None);
        assert_eq!(remembered_return(&HeaderMap::new(), &allowlist), None);
    }

    #[test]
    fn cookies_are_found_by_their_whole_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("other=1; hub_login_abc=key-a"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("hub_login_ab=key-b"),
        );
        assert_eq!(cookie(&headers, "hub_login_abc").as_deref(), Some("key-a"));
        assert_eq!(cookie(&headers, "hub_login_ab").as_deref(), Some("key-b"));
        assert_eq!(cookie(&headers, "hub_login_a"), None);
        assert!(!cookie_safe("abc; Domain=evil.example"));
        assert!(cookie_safe("AZaz09-_"));
    }
}
