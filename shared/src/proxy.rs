//! The provider's whole API through the hub (docs/API.md, "Proxy"): an app sends
//! `{method} /users/{id}/proxy/{path}` and the hub sends the same method, path, query and
//! body to the account's provider under its configured API base, with the account's access
//! token. The app never holds the token, and the hub refreshes it with the sync's own code
//! ([`Credentials`]): a 401 refreshes once and repeats once, a rotated refresh token is
//! stored as the worker stores it.
//!
//! What passes is listed, not what is stopped: the request's [`FORWARDED_HEADERS`] and the
//! answer's [`RETURNED_HEADERS`], nothing else either way (no cookie, no `Authorization` of
//! the hub's, no hop-by-hop header, never the token). Bodies are bytes, never decoded.
//!
//! A path cannot leave the base: [`check_path`] refuses it before anything is sent, and the
//! URL built from it is checked to be under the base again after the URL parser read it.
//! The proxy never retries a 429 or a 5xx: the provider's answer, `Retry-After` included,
//! goes back at once and the app decides.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use oauth2::reqwest;
use percent_encoding::percent_decode_str;
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

use crate::deadline::{Bounded, Deadline};
use crate::error::{HubError, HubResult, ProviderError};
use crate::hub::Hub;
use crate::sync::{Credentials, RefusedToken};

/// The largest request body sent on and the largest answer passed back: 6 MB, the most a
/// Lambda function takes or gives in one synchronous invocation.
pub const MAX_BODY_BYTES: usize = 6 << 20;

/// The request headers sent on to the provider, lower-case; every other one stays here.
pub const FORWARDED_HEADERS: [&str; 5] = [
    "content-type",
    "accept",
    "range",
    "if-match",
    "if-none-match",
];

/// The provider's answer headers passed back, lower-case; every other one is dropped.
pub const RETURNED_HEADERS: [&str; 5] = [
    "content-type",
    "etag",
    "location",
    "retry-after",
    "content-range",
];

/// How many layers of percent-encoding [`check_path`] reads through: a provider path
/// needs one (a name's `%20`), a name holding `%` two. More is refused rather than read
/// further.
const MAX_ENCODINGS: usize = 3;

/// The methods the proxy takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    /// The method of this name (upper-case, as HTTP writes it); `None` for one the proxy
    /// does not take.
    pub fn named(name: &str) -> Option<Self> {
        Some(match name {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    fn to_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        }
    }
}

/// A request to send on, as the web layer read it.
#[derive(Clone, Debug)]
pub struct ProxyRequest {
    pub account_id: String,
    pub method: Method,
    /// The path under the provider's base as the request wrote it (percent-encoded, no
    /// leading slash).
    pub path: String,
    /// The query string as the request wrote it, without its `?`.
    pub query: Option<String>,
    /// Header names (lower-case) and values; only [`FORWARDED_HEADERS`] are sent.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
}

/// The provider's answer, to pass back as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyAnswer {
    pub status: u16,
    /// Only [`RETURNED_HEADERS`], lower-case names, in the provider's order.
    pub headers: Vec<(&'static str, Vec<u8>)>,
    pub body: Bytes,
}

/// Sends `request` to the account's provider and returns its answer, refreshing the token
/// first when it is due and once more when the provider refuses it. Refusals before
/// anything is sent: 400 `invalid_request` (the path), 413 (the body), 404 (the account),
/// 409 `account_needs_reauth` (a refused refresh). An answer over [`MAX_BODY_BYTES`] is 502
/// `response_too_large`; no answer by `deadline`, 503.
pub async fn forward(
    hub: &Hub,
    request: ProxyRequest,
    deadline: Deadline,
) -> HubResult<ProxyAnswer> {
    check_path(&request.path)?;
    if request.body.len() > MAX_BODY_BYTES {
        return Err(HubError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    let account = hub
        .store
        .get_account(&request.account_id)
        .await?
        .ok_or_else(|| HubError::AccountNotFound(request.account_id.clone()))?;
    let provider = account.provider.clone();
    let connector = hub.providers.get(&provider)?;
    let url = target_url(
        connector.api_base(),
        &request.path,
        request.query.as_deref(),
    )?;
    let started = Instant::now();
    let mut credentials = Credentials::open(hub, account, deadline).await?;
    let answer = credentials
        .call(|token| send(&url, &request, token, deadline))
        .await;
    let answer = match answer {
        Ok(Ok(answer)) | Ok(Err(Failure::RefusedToken(answer))) => Ok(answer),
        Ok(Err(Failure::TooLarge)) => Err(HubError::ResponseTooLarge {
            limit: MAX_BODY_BYTES,
        }),
        Ok(Err(Failure::OutOfTime)) => Err(HubError::Unavailable(
            "the provider did not answer the proxied call in time".into(),
        )),
        Ok(Err(Failure::Transport(what))) => Err(HubError::Provider(ProviderError::Rejected(
            format!("the proxied call failed: {what}"),
        ))),
        Err(error) => Err(error),
    };
    let status = match &answer {
        Ok(answer) => answer.status,
        Err(error) => error.status(),
    };
    tracing::info!(
        account_id = %request.account_id,
        provider = %provider,
        method = request.method.as_str(),
        path = %request.path,
        query = %query_names(request.query.as_deref()),
        status,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "proxied call"
    );
    answer
}

/// Refuses a path that could leave the provider's base, before anything is sent: one that
/// is empty or absolute, starts with a scheme (`x:`), holds `//`, a backslash, a `.` or `..`
/// segment or a control character, in its own bytes or once percent-decoded (up to
/// [`MAX_ENCODINGS`] times: `%2e%2e`, `%252e%252e`). A URL parser reads `%2e` as a dot and
/// a provider may decode `%2f` into a slash, so what is checked is every form the path may
/// take on the way.
pub fn check_path(path: &str) -> HubResult<()> {
    let refuse = |why: &str| Err(HubError::InvalidRequest(format!("the proxied path {why}")));
    if path.is_empty() {
        return refuse("is empty: name a path under the provider's API");
    }
    let mut layer = path.to_string();
    for _ in 0..=MAX_ENCODINGS {
        if let Some(why) = leaves_the_base(&layer) {
            return refuse(why);
        }
        let decoded =
            String::from_utf8_lossy(&percent_decode_str(&layer).collect::<Vec<u8>>()).into_owned();
        if decoded == layer {
            return Ok(());
        }
        layer = decoded;
    }
    refuse("is percent-encoded more times than a provider's path is")
}

/// Why one form of a path could leave the base, if it could.
fn leaves_the_base(path: &str) -> Option<&'static str> {
    if path.starts_with('/') {
        return Some("must be relative to the provider's API, not absolute");
    }
    if path.contains("//") {
        return Some("must not hold //");
    }
    if path.contains('\\') {
        return Some("must not hold a backslash");
    }
    if path.chars().any(char::is_control) {
        return Some("must not hold a control character");
    }
    let first = path.split('/').next().unwrap_or_default();
    if first.contains(':') {
        return Some("must not start with a scheme");
    }
    if path
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
    {
        return Some("must not hold . or .. segments");
    }
    None
}

/// `{base}/{path}?{query}`, checked to be under the base once parsed (same origin, the
/// base's path as its prefix).
fn target_url(base: &str, path: &str, query: Option<&str>) -> HubResult<Url> {
    let base_url = Url::parse(base).map_err(|e| HubError::Config(format!("API base: {e}")))?;
    let mut text = format!("{}/{path}", base.trim_end_matches('/'));
    if let Some(query) = query {
        text.push('?');
        text.push_str(query);
    }
    let url = Url::parse(&text).map_err(|e| {
        HubError::InvalidRequest(format!("the proxied path is not a URL path: {e}"))
    })?;
    let prefix = format!("{}/", base_url.path().trim_end_matches('/'));
    if url.origin() != base_url.origin() || !url.path().starts_with(&prefix) {
        return Err(HubError::InvalidRequest(
            "the proxied path must stay under the provider's API".into(),
        ));
    }
    Ok(url)
}

/// The query's parameter names, for the log: their values may be anything (a search, a
/// page token), so they stay out.
fn query_names(query: Option<&str>) -> String {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split('=').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("&")
}

/// Why one attempt gave no answer to pass back.
#[derive(Debug)]
enum Failure {
    /// The provider refused the token (401): refreshed and repeated once; the second 401
    /// is passed back as the provider's answer.
    RefusedToken(ProxyAnswer),
    TooLarge,
    OutOfTime,
    /// No answer (connection, timeout): what kind, never the URL.
    Transport(&'static str),
}

impl RefusedToken for Failure {
    fn is_refused_token(&self) -> bool {
        matches!(self, Failure::RefusedToken(_))
    }
}

/// The proxy's client: the settings of the providers' client (no redirects, which the app
/// gets as they are, so the token never follows one elsewhere; rustls), but no timeout of
/// its own and no retries: the request's deadline bounds it, and the app decides on a 429
/// or a 5xx.
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!(
                "cloud-drive-connector-hub/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .expect("the proxy's HTTP client builds with static settings")
    })
}

/// One attempt: the request with the token, its answer read whole up to the cap, all
/// within the deadline.
async fn send(
    url: &Url,
    request: &ProxyRequest,
    token: SecretString,
    deadline: Deadline,
) -> Result<ProxyAnswer, Failure> {
    let mut builder = client()
        .request(request.method.to_reqwest(), url.clone())
        .bearer_auth(token.expose_secret());
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        if !FORWARDED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        if let Ok(value) = reqwest::header::HeaderValue::from_bytes(value) {
            builder = builder.header(name, value);
        }
    }
    if !request.body.is_empty()
        || matches!(request.method, Method::Post | Method::Put | Method::Patch)
    {
        builder = builder.body(request.body.clone());
    }
    let exchange = async {
        let response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = RETURNED_HEADERS
            .iter()
            .flat_map(|name| {
                response
                    .headers()
                    .get_all(*name)
                    .iter()
                    .map(|value| (*name, value.as_bytes().to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let body = read_at_most(response, MAX_BODY_BYTES).await?;
        let answer = ProxyAnswer {
            status,
            headers,
            body,
        };
        if status == 401 {
            return Err(Failure::RefusedToken(answer));
        }
        Ok(answer)
    };
    match deadline.within(exchange).await {
        Bounded::Answered(answer) => answer,
        Bounded::OutOfTime => Err(Failure::OutOfTime),
    }
}

/// The answer's body, given up on as soon as it is known to pass `cap`.
async fn read_at_most(mut response: reqwest::Response, cap: usize) -> Result<Bytes, Failure> {
    if response.content_length().unwrap_or(0) > cap as u64 {
        return Err(Failure::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > cap {
            return Err(Failure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// reqwest's errors print the URL, whose query may hold anything: only the kind of failure.
fn transport(error: reqwest::Error) -> Failure {
    Failure::Transport(if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_leave_the_base_are_refused_in_every_encoding() {
        for refused in [
            "",
            "/drive/v3/files",
            "https://evil.example/x",
            "x:y",
            "javascript:alert(1)",
            "drive//v3",
            "drive/v3/../../x",
            "..",
            "drive/./files",
            "drive\\v3",
            "drive/%2e%2e/x",
            "drive/%2E%2E/x",
            "drive/.%2e/x",
            "drive%2f%2fevil",
            "%2Fdrive",
            "drive%5cv3",
            "drive/%252e%252e/x",
            "drive/%25252e%25252e/x",
            "https%3A//evil.example",
            "drive/%0d%0aHost:%20evil",
            "a%2525252525252e",
        ] {
            let error = check_path(refused).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{refused:?}");
        }
    }

    #[test]
    fn provider_paths_pass() {
        for path in [
            "drive/v3/files",
            "drive/v3/files/abc/permissions",
            "me/drive/root:/My%20Folder/a.txt:/content",
            "drives/b!x-Y_1/items/01ABC/children",
            "2/files/create_folder_v2",
            "folders",
            "files/123/content",
            "me/drive/root:/100%25.txt:",
            "v1.0/x.y/z",
        ] {
            check_path(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    }

    #[test]
    fn the_url_stays_under_the_base_with_the_query_as_written() {
        let url = target_url(
            "http://127.0.0.1:9/graph/v1.0",
            "me/drive/root:/My%20Folder:/children",
            Some("$select=id,name&q=a%20b+c&x=%2B&x=2"),
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/graph/v1.0/me/drive/root:/My%20Folder:/children\
             ?$select=id,name&q=a%20b+c&x=%2B&x=2"
        );
        let google = target_url("https://www.googleapis.com", "drive/v3/files", None).unwrap();
        assert_eq!(google.as_str(), "https://www.googleapis.com/drive/v3/files");
        // What check_path refuses is refused here too, if it ever got this far.
        for escaping in ["../x", "%2e%2e/x", "@evil.example"] {
            let url = target_url("https://api.box.com/2.0", escaping, None);
            if let Ok(url) = url {
                assert_eq!(url.host_str(), Some("api.box.com"), "{escaping}");
                assert!(url.path().starts_with("/2.0/"), "{escaping}");
            }
        }
        assert!(target_url("https://api.box.com/2.0", "../x", None).is_err());
    }

    #[test]
    fn the_log_names_query_parameters_without_their_values() {
        assert_eq!(
            query_names(Some("q=secret%20name&pageToken=abc&flag")),
            "q&pageToken&flag"
        );
        assert_eq!(query_names(None), "");
    }
}
